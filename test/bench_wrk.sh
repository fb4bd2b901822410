#!/usr/bin/env bash
# make bench, first part (issue 16): mdmd against nginx with a load generator
# that keeps up (wrk, given the devices' client certificates by the
# LD_PRELOAD shim bin/wrkcert.so).  The server (mdmd and its Redis, or nginx)
# is pinned to one core, wrk to the other, and every figure comes with the
# CPU each side used, so a client-bound run shows itself: when the client's
# CPU is near DURATION seconds, the client, not the server, set the rate.
#   idle polls:     mdmd vs nginx (same certificate kind, same TLS 1.3 suite,
#                   mutual TLS, keep-alive, an empty 200 answer), RUNS runs,
#                   ratio per run and the median; the polls after a device's
#                   first are answered from memory (idle_cache_ms), so one
#                   more run with idle_cache_ms 0 gives the cost of an Idle
#                   poll that asks Redis
#   command cycle:  CYCLE_DEVICES devices acknowledging DeviceInformation
#                   results from deep queues, commands/s and CPU per command
#   memory:         Redis bytes per idle device at LOAD_DEVICES devices
#                   (written through the store's own scripts by bin/devload),
#                   bytes per DeviceInformation history entry, and mdmd's RSS
#                   per idle keep-alive connection at IDLE_CONNS connections
set -u
BIN=${BIN:-bin}
RUNS=${RUNS:-3}
DURATION=${DURATION:-5}          # seconds per wrk run
IDLE_CONC=${IDLE_CONC:-64}       # idle-poll connections
IDLE_THREADS=${IDLE_THREADS:-2}  # wrk threads (one device each)
CYCLE_DEVICES=${CYCLE_DEVICES:-8}
CYCLE_QUEUE=${CYCLE_QUEUE:-60000}  # commands queued (all devices) before each cycle run
LOAD_DEVICES=${LOAD_DEVICES:-100000}
IDLE_CONNS=${IDLE_CONNS:-10000}
SCPU=${SERVER_CPU:-0}; CCPU=${CLIENT_CPU:-1}
TOP=$(cd "$(dirname "$0")/.." && pwd)
case "$BIN" in /*) ;; *) BIN="$TOP/$BIN" ;; esac
T=$(mktemp -d /tmp/mdmd-benchw.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; [ -n "${KEEP:-}" ] && echo "kept $T" || rm -rf "$T"; }
trap cleanup EXIT
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk): skipping"; exit 0; }
PIN_S=(); PIN_C=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    PIN_S=(taskset -c "$SCPU"); PIN_C=(taskset -c "$CCPU")
    echo "server pinned to cpu $SCPU, client to cpu $CCPU"
else
    echo "fewer than 2 cpus (or no taskset): nothing pinned, server and client share"
fi
echo "load average now: $(cut -d' ' -f1-3 /proc/loadavg) (figures are only as quiet as the machine)"

wait_for() {
    local limit=$(( $(date +%s) + $1 )); shift
    until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -ge $limit ] && return 1; sleep 0.05; done
}
ticks() { local s=0 p; for p in "$@"; do s=$(( s + $(awk '{print $14 + $15}' /proc/$p/stat 2>/dev/null || echo 0) )); done; echo $s; }
TCK=$(getconf CLK_TCK)
median() { sort -g | awk '{a[NR]=$1} END{if (NR == 0) print "-"; else if (NR % 2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
# Runs wrk on the client core; prints its output, then "client_cpu_s=X".
wrk_run() {
    "${PIN_C[@]}" bash -c '"$@"; times' wrk "$@" 2>&1 | awk '
        /^[0-9]+m[0-9.]+s [0-9]+m[0-9.]+s$/ { n++; if (n == 2) { split($1, u, /[ms]/); split($2, s, /[ms]/);
            printf "client_cpu_s=%.2f\n", u[1]*60 + u[2] + s[1]*60 + s[2] } next } { print }'
}
rps_of() { sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$1"; }
req_of() { sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$1"; }
ccpu_of() { sed -n 's/^client_cpu_s=//p' "$1"; }
errs_of() { grep -E 'Non-2xx|Socket errors|cycle_non200=[1-9]' "$1" | tr '\n' ' '; }

# ---- mdmd, with its private Redis, on the server core ----
D=$T/d; mkdir -p "$D"
cat >"$D/mdmd.conf" <<CONF
listen 127.0.0.1:0
mdm_listen 127.0.0.1:0
port_file $D/ports
data_dir $D/var
server_names localhost 127.0.0.1
log_level warn
max_connections $(( IDLE_CONNS + 1000 ))
enroll_require_issued no
${BENCH_CONF:-}
CONF
want=$(( IDLE_CONNS + 4096 ))
[ "$(ulimit -n)" -ge $want ] || ulimit -n $want 2>/dev/null || \
    echo "ulimit -n $want refused (hard limit $(ulimit -Hn)): IDLE_CONNS=$IDLE_CONNS may not fit"
# MDMD_WRAP (e.g. "valgrind --tool=callgrind"): mdmd runs under it; BENCH_HOOK
# is run as "$BENCH_HOOK start|end idle|cycle PID" around each measured phase
# (callgrind_control -z / -d: instructions per phase, repeatable on a busy machine).
"${PIN_S[@]}" ${MDMD_WRAP:-} "$BIN/mdmd" -c "$D/mdmd.conf" 2>"$T/mdmd.log" &
MDMD=$!; PIDS+=("$MDMD")
hook() { [ -z "${BENCH_HOOK:-}" ] || $BENCH_HOOK "$1" "$2" "$MDMD"; }
wait_for 600 test -s "$D/ports" || { echo "mdmd did not start"; cat "$T/mdmd.log"; exit 1; }
PUB=$(awk '$1=="listen"{print $2}' "$D/ports"); MDM=$(awk '$1=="mdm_listen"{print $2}' "$D/ports")
CA=$D/var/ca/ca.crt; KEY=$(cat "$D/var/api.key")
SOCK=$D/var/redis/redis.sock
R() { redis-cli -s "$SOCK" "$@"; }
REDIS=$(R info server | sed -n 's/^process_id:\([0-9]*\).*/\1/p' | tr -d '\r')
echo "mdmd pid=$MDMD redis-server pid=$REDIS"

# Devices: IDLE_THREADS idle pollers and CYCLE_DEVICES for the command cycle,
# enrolled by mdmsim (Authenticate, TokenUpdate); their key + certificates go
# to the identities files wrkcert.so reads.
"$BIN/mdmsim" --url "https://127.0.0.1:$MDM/mdm" --ca "$CA" --ca-key "$D/var/ca/ca.key" \
    -n "$IDLE_THREADS" -c 2 --udid-prefix IDLE --identities "$T/idle.pem" -q >"$T/e1.out" 2>&1
"$BIN/mdmsim" --url "https://127.0.0.1:$MDM/mdm" --ca "$CA" --ca-key "$D/var/ca/ca.key" \
    -n "$CYCLE_DEVICES" -c 8 --udid-prefix CYC --identities "$T/cyc.pem" -q >"$T/e2.out" 2>&1
grep -q "enrolled=$CYCLE_DEVICES " "$T/e2.out" || { echo "enrollment failed:"; cat "$T/e1.out" "$T/e2.out"; exit 1; }
SHIM=("env" "LD_PRELOAD=$BIN/wrkcert.so")

# ---- nginx, the yardstick, on the same core with the same TLS ----
have_nginx=0
if command -v nginx >/dev/null; then
    NP=$("$BIN/freeport"); mkdir -p "$T/nginx"
    # mdmd's Idle answer is an empty 200; nginx's is too (its headers: Server,
    # Date, Content-Type, Content-Length, Connection; bytes per answer below).
    cat >"$T/nginx/nginx.conf" <<NGX
worker_processes 1;
pid $T/nginx/pid;
error_log $T/nginx/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $T/nginx; proxy_temp_path $T/nginx; fastcgi_temp_path $T/nginx;
    uwsgi_temp_path $T/nginx; scgi_temp_path $T/nginx;
    keepalive_requests 100000000; keepalive_timeout 120s;
    server {
        listen 127.0.0.1:$NP ssl;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate $D/var/ca/server.crt; ssl_certificate_key $D/var/ca/server.key;
        ssl_client_certificate $CA; ssl_verify_client on;
        location / { return 200 ""; }
    }
}
NGX
    "${PIN_S[@]}" nginx -c "$T/nginx/nginx.conf" -g 'daemon off;' 2>"$T/nginx/stderr" &
    NGINX=$!; PIDS+=("$NGINX")
    wait_for 5 test -s "$T/nginx/pid" && wait_for 5 bash -c "echo > /dev/tcp/127.0.0.1/$NP" && have_nginx=1
    [ $have_nginx = 1 ] || { echo "nginx did not start:"; cat "$T/nginx/stderr"; }
fi
nginx_pids() { echo "$NGINX" $(pgrep -P "$NGINX"); }
for p in "$MDM" ${NP:+$NP}; do
    printf '%s ' "port $p:"; echo | openssl s_client -connect 127.0.0.1:$p -cert <(openssl x509 -in "$T/idle.pem") \
        -key "$T/idle.pem" 2>/dev/null | grep -E '^New,|Cipher is' | head -1
done

echo "== idle polls: wrk -t$IDLE_THREADS -c$IDLE_CONC -d${DURATION}s, keep-alive, mutual TLS, $RUNS runs"
WRK_IDLE=(-t"$IDLE_THREADS" -c"$IDLE_CONC" -d"${DURATION}s" -s "$TOP/test/bench/idle.lua")
: >"$T/ratios"; : >"$T/m_us"; : >"$T/r_us"; : >"$T/n_us"
for run in $(seq 1 "$RUNS"); do
    hook start idle; m0=$(ticks "$MDMD"); r0=$(ticks "$REDIS")
    wrk_run "${SHIM[@]}" WRKCERT_FILE=$T/idle.pem wrk "${WRK_IDLE[@]}" "https://127.0.0.1:$MDM/mdm" >"$T/wm.out"
    m1=$(ticks "$MDMD"); r1=$(ticks "$REDIS"); hook end idle
    mr=$(rps_of "$T/wm.out"); mn=$(req_of "$T/wm.out")
    mus=$(awk -v t=$((m1 - m0)) -v n="$mn" -v k="$TCK" 'BEGIN{printf "%.1f", n ? t / k / n * 1e6 : 0}')
    rus=$(awk -v t=$((r1 - r0)) -v n="$mn" -v k="$TCK" 'BEGIN{printf "%.1f", n ? t / k / n * 1e6 : 0}')
    echo "$mus" >>"$T/m_us"; echo "$rus" >>"$T/r_us"
    line="run=$run mdmd_rps=$mr mdmd_cpu_s=$(awk -v t=$((m1 - m0)) -v k=$TCK 'BEGIN{printf "%.2f", t/k}') redis_cpu_s=$(awk -v t=$((r1 - r0)) -v k=$TCK 'BEGIN{printf "%.2f", t/k}') client_cpu_s=$(ccpu_of "$T/wm.out") mdmd_us_per_req=$mus redis_us_per_req=$rus bytes_per_answer=$(awk -v n="$mn" '/read$/{v=$(NF-1); u=substr(v, length(v)-1); x=v+0; if (u=="KB") x*=1024; else if (u=="MB") x*=1048576; else if (u=="GB") x*=1073741824; printf "%.0f", n ? x/n : 0}' "$T/wm.out") $(errs_of "$T/wm.out")"
    if [ $have_nginx = 1 ]; then
        n0=$(ticks $(nginx_pids))
        wrk_run "${SHIM[@]}" WRKCERT_FILE=$T/idle.pem wrk "${WRK_IDLE[@]}" "https://127.0.0.1:$NP/mdm" >"$T/wn.out"
        n1=$(ticks $(nginx_pids))
        nr=$(rps_of "$T/wn.out"); nn=$(req_of "$T/wn.out")
        nus=$(awk -v t=$((n1 - n0)) -v n="$nn" -v k="$TCK" 'BEGIN{printf "%.1f", n ? t / k / n * 1e6 : 0}')
        echo "$nus" >>"$T/n_us"
        ratio=$(awk -v a="$mr" -v b="$nr" 'BEGIN{printf "%.3f", b ? a / b : 0}')
        echo "$ratio" >>"$T/ratios"
        line="$line nginx_rps=$nr nginx_cpu_s=$(awk -v t=$((n1 - n0)) -v k=$TCK 'BEGIN{printf "%.2f", t/k}') nginx_client_cpu_s=$(ccpu_of "$T/wn.out") nginx_us_per_req=$nus nginx_bytes_per_answer=$(awk -v n="$nn" '/read$/{v=$(NF-1); u=substr(v, length(v)-1); x=v+0; if (u=="KB") x*=1024; else if (u=="MB") x*=1048576; printf "%.0f", n ? x/n : 0}' "$T/wn.out") ratio=$ratio $(errs_of "$T/wn.out")"
    fi
    echo "idle $line"
done
mem_hits=$(curl -s --max-time 10 --cacert "$CA" -H "Authorization: Bearer $KEY" "https://127.0.0.1:$PUB/metrics" |
    awk '$1 == "mdmd_idle_cache_answers_total" { print $2 }')
echo "idle polls answered from memory (idle_cache_ms, docs/REDIS.md \"Idle polls\"): ${mem_hits:-0} of all runs' polls above"
# The same polls with every one a Redis call (idle_cache_ms 0): a second mdmd
# on the same Redis and CA, one run, for the figure without the memory.
D2=$T/d2; mkdir -p "$D2/var"; cp -r "$D/var/ca" "$D2/var/ca"
sed -e "s|^port_file .*|port_file $D2/ports|" -e "s|^data_dir .*|data_dir $D2/var|" "$D/mdmd.conf" >"$D2/mdmd.conf"
printf 'redis %s\nidle_cache_ms 0\n' "$SOCK" >>"$D2/mdmd.conf"
"${PIN_S[@]}" "$BIN/mdmd" -c "$D2/mdmd.conf" 2>"$T/mdmd2.log" &
MDMD2=$!; PIDS+=("$MDMD2")
if wait_for 60 test -s "$D2/ports"; then
    MDM2=$(awk '$1=="mdm_listen"{print $2}' "$D2/ports"); sleep 0.5
    m0=$(ticks "$MDMD2"); r0=$(ticks "$REDIS")
    wrk_run "${SHIM[@]}" WRKCERT_FILE=$T/idle.pem wrk "${WRK_IDLE[@]}" "https://127.0.0.1:$MDM2/mdm" >"$T/wm2.out"
    m1=$(ticks "$MDMD2"); r1=$(ticks "$REDIS")
    mr=$(rps_of "$T/wm2.out"); mn=$(req_of "$T/wm2.out")
    echo "idle_no_memory mdmd_rps=$mr mdmd_us_per_req=$(awk -v t=$((m1 - m0)) -v n="$mn" -v k="$TCK" 'BEGIN{printf "%.1f", n ? t / k / n * 1e6 : 0}') redis_us_per_req=$(awk -v t=$((r1 - r0)) -v n="$mn" -v k="$TCK" 'BEGIN{printf "%.1f", n ? t / k / n * 1e6 : 0}') client_cpu_s=$(ccpu_of "$T/wm2.out") vs_last_nginx=$(awk -v a="$mr" -v b="${nr:-0}" 'BEGIN{printf "%.3f", b ? a / b : 0}') $(errs_of "$T/wm2.out")"
else
    echo "idle_no_memory: the second mdmd did not start"; cat "$T/mdmd2.log"
fi
kill "$MDMD2" 2>/dev/null; wait "$MDMD2" 2>/dev/null
echo "idle_median mdmd_us_per_req=$(median <"$T/m_us") redis_us_per_req=$(median <"$T/r_us") nginx_us_per_req=$(median <"$T/n_us") mdmd_vs_nginx=$(median <"$T/ratios") (goal >= 0.5)"
echo "   (a client_cpu_s near ${DURATION} means wrk was the bottleneck for that run: the ratio then understates the server)"

echo "== command cycle: $CYCLE_DEVICES devices (wrk -t$CYCLE_DEVICES -c$CYCLE_DEVICES), each acknowledging DeviceInformation results, $RUNS runs"
CUDIDS=$(seq -f "CYC-%06g" 0 $((CYCLE_DEVICES - 1)) | paste -sd, -)
depth() { local s=0 u; for u in ${CUDIDS//,/ }; do s=$(( s + $(R llen "mdm:q:{$u}") )); done; echo $s; }
mindepth() { local m=-1 u d; for u in ${CUDIDS//,/ }; do d=$(R llen "mdm:q:{$u}"); { [ $m -lt 0 ] || [ "$d" -lt $m ]; } && m=$d; done; echo $m; }
fill() {
    local tries=0
    while [ "$(depth)" -lt "$CYCLE_QUEUE" ] && [ $tries -lt 30 ]; do
        WRK_UDIDS=$CUDIDS WRK_KEY=$KEY wrk -t1 -c8 -d1s -s "$TOP/test/bench/enqueue.lua" \
            "https://127.0.0.1:$PUB/v1/commands" >"$T/enq.out" 2>&1
        tries=$((tries + 1))
    done
    grep -E 'Non-2xx|Socket errors' "$T/enq.out"
}
: >"$T/c_rate"; : >"$T/c_m"; : >"$T/c_r"
for run in $(seq 1 "$RUNS"); do
    fill
    R config resetstat >/dev/null   # commandstats: this run's commands only
    hook start cycle; q0=$(depth); m0=$(ticks "$MDMD"); r0=$(ticks "$REDIS")
    e0="0 0"
    wrk_run "${SHIM[@]}" WRKCERT_FILE=$T/cyc.pem wrk -t"$CYCLE_DEVICES" -c"$CYCLE_DEVICES" -d"${DURATION}s" \
        -s "$TOP/test/bench/cycle.lua" "https://127.0.0.1:$MDM/mdm" >"$T/cy.out"
    m1=$(ticks "$MDMD"); r1=$(ticks "$REDIS"); hook end cycle; q1=$(depth)
    e1=$(R info commandstats | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),usec=\([0-9]*\),.*/\1 \2/p')
    # Commands the scripts ran (every cmdstat but the EVALSHAs and our LLENs): a
    # count, not a time, so it compares across machines and loads.
    inner=$(R info commandstats | tr -d '\r' | awk -F'[:=,]' '/^cmdstat_/ && $1 != "cmdstat_evalsha" && $1 != "cmdstat_llen" && $1 != "cmdstat_config" && $1 != "cmdstat_info" {s += $3} END{print s + 0}')
    acks=$(sed -n 's/.*cycle_acks=\([0-9]*\).*/\1/p' "$T/cy.out")
    secs=$(sed -n 's/^ *[0-9]* requests in \([0-9.]*\)s.*/\1/p' "$T/cy.out")
    rate=$(awk -v a="${acks:-0}" -v s="${secs:-0}" 'BEGIN{printf "%.0f", s ? a / s : 0}')
    mus=$(awk -v t=$((m1 - m0)) -v n="${acks:-0}" -v k="$TCK" 'BEGIN{printf "%.1f", n ? t / k / n * 1e6 : 0}')
    rus=$(awk -v t=$((r1 - r0)) -v n="${acks:-0}" -v k="$TCK" 'BEGIN{printf "%.1f", n ? t / k / n * 1e6 : 0}')
    eus=$(echo "$e0 $e1" | awk '{c = $3 - $1; printf "%.1f", c ? ($4 - $2) / c : 0}')
    echo "$rate" >>"$T/c_rate"; echo "$mus" >>"$T/c_m"; echo "$rus" >>"$T/c_r"
    dry=""; [ "$(mindepth)" -le 0 ] && dry=" QUEUE_RAN_DRY(raise CYCLE_QUEUE)"
    echo "cycle run=$run commands_per_s=$rate acks=${acks:-0} queue_drained=$((q0 - q1)) mdmd_cpu_s=$(awk -v t=$((m1 - m0)) -v k=$TCK 'BEGIN{printf "%.2f", t/k}') redis_cpu_s=$(awk -v t=$((r1 - r0)) -v k=$TCK 'BEGIN{printf "%.2f", t/k}') client_cpu_s=$(ccpu_of "$T/cy.out") mdmd_us_per_cmd=$mus redis_us_per_cmd=$rus redis_evalsha_us_per_call=$eus redis_calls_per_cmd=$(awk -v c="$inner" -v n="${acks:-0}" 'BEGIN{printf "%.1f", n ? c / n : 0}') $(errs_of "$T/cy.out")$dry"
done
echo "cycle_median commands_per_s=$(median <"$T/c_rate") mdmd_us_per_cmd=$(median <"$T/c_m") redis_us_per_cmd=$(median <"$T/c_r") (goal >= 8000/s)"
R info commandstats | grep -E '^cmdstat_(evalsha|xadd|hset|zadd)' | tr -d '\r' | sed 's/^/  /'
u0=CYC-000000
hl=$(R xlen "mdm:res:{$u0}"); hb=$(R memory usage "mdm:res:{$u0}" samples 0)
echo "history_bytes_per_entry=$(( hl > 0 ? hb / hl : 0 )) (mdm:res:{$u0}: $hl DeviceInformation results, $hb bytes; goal <= 400)"

if [ "$LOAD_DEVICES" -gt 0 ]; then
echo "== memory: $LOAD_DEVICES idle devices written through the store's scripts (bin/devload)"
mem() { R info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p' | tr -d '\r'; }
mem0=$(mem)
"${PIN_C[@]}" "$BIN/devload" "$SOCK" "$LOAD_DEVICES" LOAD
mem1=$(mem)
echo "redis_bytes_per_idle_device=$(( (mem1 - mem0) / LOAD_DEVICES )) (used_memory delta / $LOAD_DEVICES; goal <= 1536)"
echo "  one device: record $(R memory usage 'mdm:dev:{LOAD-000050}' samples 0) B, fields $(R hlen 'mdm:dev:{LOAD-000050}');" \
     "mdm:idx $(R memory usage mdm:idx) B for $(R zcard mdm:idx) members; mdm:devices $(R memory usage mdm:devices) B;" \
     "mdm:events $(R memory usage mdm:events) B for $(R xlen mdm:events) events"

fi
[ "$IDLE_CONNS" -gt 0 ] || exit 0
echo "== mdmd RSS per idle keep-alive connection: $IDLE_CONNS connections (one Idle poll each, then idle)"
openssl x509 -in "$T/idle.pem" -out "$T/c.crt"; openssl pkey -in "$T/idle.pem" -out "$T/c.key"
cn=$(openssl x509 -in "$T/c.crt" -noout -subject -nameopt multiline | sed -n 's/ *commonName *= *//p')
rss0=$(awk '/VmRSS/{print $2}' /proc/$MDMD/status)
mkfifo "$T/hold"
"${PIN_C[@]}" python3 "$TOP/test/bench/idleconns.py" "$MDM" "$T/c.crt" "$T/c.key" "$cn" "$IDLE_CONNS" <"$T/hold" >"$T/ic.out" 2>&1 &
ICP=$!; PIDS+=("$ICP")
exec 9>"$T/hold"
wait_for 300 grep -q '^open=' "$T/ic.out"
rss1=$(awk '/VmRSS/{print $2}' /proc/$MDMD/status)
open=$(sed -n 's/^open=\([0-9]*\).*/\1/p' "$T/ic.out")
cat "$T/ic.out"
echo "mdmd_rss_kb_before=$rss0 with_connections=$rss1 rss_bytes_per_idle_connection=$(( open > 0 ? (rss1 - rss0) * 1024 / open : 0 ))"
exec 9>&-
wait "$ICP" 2>/dev/null

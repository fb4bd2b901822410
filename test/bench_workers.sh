#!/usr/bin/env bash
# make bench (after bench.sh): idle polls/s and commands/s with workers 1 and
# 2 (docs/WORKERS.md) against the one private Redis, with the CPU seconds per
# request of mdmd (supervisor and every worker), redis-server and the client
# (mdmsim), from /proc and getrusage.  WORKERS, DEVICES, COMMANDS (per
# device), IDLE_CYCLES and CONC can be set in the environment.  REDIS_SEEDS
# and REDIS_PIDS (bench_cluster.sh: a Redis Cluster's seeds and its
# redis-server pids) run the same rows on that Redis instead, labelled
# REDIS_LABEL; it is emptied (FLUSHALL on every master) before each row.
set -u
BIN=${BIN:-bin}
WORKERS=${WORKERS:-1 2}
DEVICES=${DEVICES:-1000}
COMMANDS=${COMMANDS:-5}
IDLE_CYCLES=${IDLE_CYCLES:-20}
CONC=${CONC:-64}
REDIS_SEEDS=${REDIS_SEEDS:-}
TOP=$(cd "$(dirname "$0")/.." && pwd)
case "$BIN" in /*) ;; *) BIN="$TOP/$BIN" ;; esac
T=$(mktemp -d /tmp/mdmd-benchw.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; [ -n "${KEEP:-}" ] && echo "kept $T" || rm -rf "$T"; }
trap cleanup EXIT
HZ=$(getconf CLK_TCK)

wait_for() {
    local limit=$(( $(date +%s) + $1 )); shift
    until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -ge $limit ] && return 1; sleep 0.05; done
}
field() { tr ' ' '\n' <"$1" | sed -n "s/^$2=//p"; }
# ticks PID...: utime + stime of the processes, in clock ticks.
ticks() {
    local s=0 p
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] || continue
        s=$((s + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
    done
    echo "$s"
}
# The mdmd processes: the supervisor and its mdmd children (not redis-server).
mdmd_pids() {
    echo "$1"
    for c in $(pgrep -P "$1"); do [ "$(cat "/proc/$c/comm" 2>/dev/null)" = mdmd ] && echo "$c"; done
}
redis_pid() { pgrep -P "$1" -x redis-server | head -n 1; }
# run_sim OUT ARGS...: mdmsim with ARGS; its CPU seconds (user + sys) in OUT.cpu.
run_sim() {
    local out=$1; shift
    /usr/bin/time -f '%U %S' -o "$out.time" "${SIM[@]}" "$@" >"$out" 2>&1
    awk '{printf "%.3f", $1 + $2}' "$out.time" >"$out.cpu"
}
# per_us TICKS N: microseconds of CPU per request.
per_us() { awk -v t="$1" -v n="$2" -v hz="$HZ" 'BEGIN{printf "%.0f", n ? t / hz * 1e6 / n : 0}'; }

ROWS=()
for W in $WORKERS; do
    D=$T/w$W
    mkdir -p "$D"
    cat >"$D/mdmd.conf" <<CONF
listen 127.0.0.1:0
mdm_listen 127.0.0.1:0
port_file $D/ports
data_dir $D/var
server_names localhost 127.0.0.1
log_level warn
max_connections 20000
enroll_require_issued no
workers $W
${REDIS_SEEDS:+redis ${REDIS_SEEDS:-}}
CONF
    for a in ${REDIS_SEEDS:+${REDIS_SEEDS//,/ }}; do
        redis-cli -p "${a##*:}" role | head -n 1 | grep -q '^master$' && redis-cli -p "${a##*:}" flushall >/dev/null
    done
    "$BIN/mdmd" -c "$D/mdmd.conf" 2>"$T/mdmd-$W.log" &
    MDMD=$!; PIDS+=("$MDMD")
    wait_for 60 test -s "$D/ports" || { echo "mdmd (workers $W) did not start"; cat "$T/mdmd-$W.log"; exit 1; }
    PUB=$(awk '$1=="listen"{print $2}' "$D/ports"); MDM=$(awk '$1=="mdm_listen"{print $2}' "$D/ports")
    CA=$D/var/ca/ca.crt
    wait_for 30 curl -sf --cacert "$CA" "https://127.0.0.1:$PUB/healthz"
    KEY=$(cat "$D/var/api.key")
    SIM=("$BIN/mdmsim" --url "https://127.0.0.1:$MDM/mdm" --ca "$CA" --ca-key "$D/var/ca/ca.key"
         -n "$DEVICES" -c "$CONC" --identities "$T/ids-$W" -q)
    run_sim "$T/enroll-$W" || { echo "enroll failed"; cat "$T/enroll-$W"; exit 1; }
    RP=${REDIS_PIDS:-$(redis_pid "$MDMD")}
    mapfile -t MP < <(mdmd_pids "$MDMD")

    echo "== workers $W: idle polls, $IDLE_CYCLES per device, $DEVICES devices, $CONC at a time"
    m0=$(ticks "${MP[@]}"); r0=$(ticks $RP)
    run_sim "$T/idle-$W" --skip-enroll --cycles "$IDLE_CYCLES"
    m1=$(ticks "${MP[@]}"); r1=$(ticks $RP)
    cat "$T/idle-$W"
    ireq=$(field "$T/idle-$W" requests); irps=$(field "$T/idle-$W" rps)
    icli=$(awk -v c="$(cat "$T/idle-$W.cpu")" -v n="$ireq" 'BEGIN{printf "%.0f", n ? c * 1e6 / n : 0}')
    imd=$(per_us $((m1 - m0)) "$ireq"); ird=$(per_us $((r1 - r0)) "$ireq")

    echo "== workers $W: $COMMANDS commands per device, queued over REST, then one cycle"
    udids=$(seq -f "SIM-%06g" 0 $((DEVICES - 1)) | sed 's/.*/"&"/' | paste -sd, -)
    for i in $(seq 1 "$COMMANDS"); do
        # 503 retry_safe (a replica's WAIT ran short): the same request again.
        for try in 1 2 3 4 5; do
            code=$(curl -s -o "$T/enq" -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer $KEY" \
                -H 'Content-Type: application/json' \
                -d "{\"udids\":[$udids],\"command_uuid\":\"bench-$W-$i\",\"command\":{\"RequestType\":\"SecurityInfo\"}}" "https://127.0.0.1:$PUB/v1/commands")
            [ "$code" = 503 ] || break
            sleep 0.2
        done
        [ "$code" = 201 ] || { echo "enqueue failed: $code $(cat "$T/enq")"; exit 1; }
    done
    m0=$(ticks "${MP[@]}"); r0=$(ticks $RP); t0=$(date +%s%N)
    run_sim "$T/cmd-$W" --skip-enroll
    t1=$(date +%s%N); m1=$(ticks "${MP[@]}"); r1=$(ticks $RP)
    cat "$T/cmd-$W"
    ncmd=$(field "$T/cmd-$W" acknowledged)
    cps=$(awk -v n="$ncmd" -v ns=$((t1 - t0)) 'BEGIN{printf "%.0f", ns ? n * 1e9 / ns : 0}')
    ccli=$(awk -v c="$(cat "$T/cmd-$W.cpu")" -v n="$ncmd" 'BEGIN{printf "%.0f", n ? c * 1e6 / n : 0}')
    cmd=$(per_us $((m1 - m0)) "$ncmd"); crd=$(per_us $((r1 - r0)) "$ncmd")
    ROWS+=("$(printf '%-7s %10s %8s %8s %8s %10s %8s %8s %8s' "$W" "$irps" "$imd" "$ird" "$icli" \
        "$cps" "$cmd" "$crd" "$ccli")")
    kill -TERM "$MDMD"; wait "$MDMD" 2>/dev/null
done

echo "== workers: ${REDIS_LABEL:-one private Redis}, $(nproc) CPUs; CPU in µs per request (a command: its"
echo "   poll, the command sent and its answer), mdmd = supervisor + all workers"
printf '%-7s %10s %8s %8s %8s %10s %8s %8s %8s\n' workers polls/s mdmd redis client \
    cmds/s mdmd redis client
for r in "${ROWS[@]}"; do echo "$r"; done
echo "on paper (docs/WORKERS.md): N cores, Redis local: polls/s ~ min((N-1) / mdmd_us_per_poll,"
echo "1 / redis_us_per_poll) x 1e6; commands/s ~ min((N-1) / mdmd_us_per_cmd, 1 / redis_us_per_cmd) x 1e6"

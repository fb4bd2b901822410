#!/usr/bin/env bash
# Faults with 1,000 simulated devices, and nothing lost:
#  - kill -9 of Redis mid-run, restart from its AOF;
#  - the mock APNs sends GOAWAY, answers 500, stalls, or drops the connection
#    during a bulk push;
#  - SIGTERM to mdmd under load, then a restart.
. "$(dirname "$0")/lib.sh"
N=${FAULT_DEVICES:-1000}

REDIS_PORT=$(free_port)
mkdir -p "$T/redis"
start_aof_redis() {
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly yes \
        --appendfsync always --dir "$T/redis" --daemonize no >>"$T/redis.log" 2>&1 &
    REDIS_PID=$!; PIDS+=("$REDIS_PID")
    # PONG, not just an answer: while it loads its AOF Redis says LOADING.
    wait_for 20 out_is PONG redis-cli -p "$REDIS_PORT" ping
}
make_push_pki && start_mock_apns && start_aof_redis || { fail "setup"; finish; }
D=$T/a
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT" "push_coalesce_ms 50" "redis_history_len 50" "max_connections 5000"
apns_conf >>"$D/mdmd.conf"
start_mdmd "$D" || { fail "mdmd starts"; finish; }
# Keep the ports across restarts: mdmsim keeps its URL.
sed -i -e "s/^listen .*/listen 127.0.0.1:$PUB/" -e "s/^mdm_listen .*/mdm_listen 127.0.0.1:$MDM/" "$D/mdmd.conf"
SIM=("$BIN/mdmsim" --url "https://127.0.0.1:$MDM/mdm" --ca "$CA" --ca-key "$D/var/ca/ca.key"
     --identities "$T/ids" --topic "$TOPIC" --udid-prefix F -n "$N" -c 64 -q)
"${SIM[@]}" >"$T/enroll.out" 2>&1
check "$N devices enroll" test "$(R zcard mdm:devices)" = "$N"
all=$(seq -f '"F-%06g"' 0 $((N - 1)) | paste -sd, -)
enqueue() { api POST /v1/commands "{\"udids\":[$all],\"command\":{\"RequestType\":\"$1\"}}" >/dev/null; jget "$T/api" command_uuid; }

# Every (device, command) pair is finished exactly once in Redis or still queued.
audit() {   # $@: command UUIDs
    redis-cli -p "$REDIS_PORT" --eval /dev/stdin , "$@" <<'LUA'
local bad, done, queued = 0, 0, 0
for _, u in ipairs(redis.call('ZRANGE', 'mdm:devices', 0, -1)) do
  local res = redis.call('XRANGE', 'mdm:res:{' .. u .. '}', '-', '+')
  local q = redis.call('LRANGE', 'mdm:q:{' .. u .. '}', 0, -1)
  for _, id in ipairs(ARGV) do
    local n = 0
    for _, e in ipairs(res) do if e[2][2] == id then n = n + 1 end end
    local inq = 0
    for _, x in ipairs(q) do if x == id then inq = inq + 1 end end
    if n + inq ~= 1 then bad = bad + 1 end
    done = done + n; queued = queued + inq
  end
end
return {bad, done, queued}
LUA
}

# --- 1. kill -9 Redis in the middle of a command wave ---
C1=$(enqueue ProfileList); C2=$(enqueue SecurityInfo); C3=$(enqueue CertificateList)
"${SIM[@]}" --skip-enroll --duration 180 --allow-status 503 --ledger "$T/ledger1" >"$T/sim1.out" 2>&1 &
SIMPID=$!; PIDS+=("$SIMPID")
check "load is running before the kill" wait_for 20 bash -c "[ \$(wc -l <'$T/ledger1' 2>/dev/null || echo 0) -ge 300 ]"
kill -9 "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null
check "mdmd answers 503 while Redis is gone" wait_for 5 out_is 503 http_code https://127.0.0.1:$PUB/healthz --cacert "$CA"
nconn=$(grep -c 'event=redis_connected' "$T/mdmd.log")
nready=$(grep -c 'Ready to accept connections' "$T/redis.log")
start_aof_redis
t0=$(( $(date +%s%N) / 1000000 ))
check "/healthz is 200 again once Redis is back" \
    wait_for 5 out_is 200 http_code https://127.0.0.1:$PUB/healthz --cacert "$CA"
# mdmd's side of it: from Redis answering PONG to mdmd's own redis_connected
# (its handshake done), read off the log's timestamp.  At most one backoff
# (STORE_BACKOFF_MAX_MS 250; an attempt that met LOADING waits one more) plus
# the handshake.  Not the /healthz round trip: under this load a TLS handshake
# through the busy loop alone took a few hundred ms and made it flaky.
# The store's events run ahead of the requests' (two loop priorities:
# main_base_new), so the backoff timer and the handshake replies are not
# queued behind the 64 sessions' callbacks; before that, a busy ASan loop
# made this 1029 ms once (1025 and 594 ms in two runs here).
line=$(grep 'event=redis_connected' "$T/mdmd.log" | sed -n "$((nconn + 1))p")
ts=$(echo "$line" | sed 's/^ts=\([^ ]*\) .*/\1/')
# From Redis' own "Ready to accept connections" (its AOF loaded), not from
# when redis-cli here saw PONG, which came later and made this look shorter.
rts=$(grep 'Ready to accept connections' "$T/redis.log" | sed -n "$((nready + 1))p" |
    sed 's/^[0-9]*:M \([0-9]* [A-Za-z]* [0-9]* [0-9:.]*\) .*/\1/')
r0=$(date -d "$rts" +%s%3N 2>/dev/null) && t0=$r0
ms=999999
[ -n "$ts" ] && ms=$(( $(date -d "$ts" +%s%3N) - t0 ))
echo "reconnect: ${ms} ms after Redis was ready ($rts); $(echo "$line" | grep -o 'attempt_ms=.*')"
check "mdmd is connected again within a second of Redis being back (${ms} ms)" \
    test "$ms" -lt 1000
check "every command finishes after the restart" wait_for 150 bash -c \
    "[ \$(redis-cli -p $REDIS_PORT eval \"local n=0 for _,u in ipairs(redis.call('ZRANGE','mdm:devices',0,-1)) do n=n+redis.call('LLEN','mdm:q:{'..u..'}') end return n\" 0) = 0 ]"
kill -INT "$SIMPID"; wait "$SIMPID"
a=$(audit "$C1" "$C2" "$C3" | paste -sd' ')
check "each of $((3 * N)) commands finished exactly once or still queued (bad done queued: $a)" test "${a%% *}" = 0
check "no device saw a finished command again" grep -q 'proto_errors=0' "$T/sim1.out"
check "no command in the device ledger twice" test -z "$(awk '{print $1, $2}' "$T/ledger1" | sort | uniq -d)"
lines=$(wc -l <"$T/ledger1")
check "ledger entries are all in Redis ($lines)" bash -c "[ \$(awk '{print \$2}' '$T/ledger1' | sort | uniq -c | awk '{s+=\$1} END{print s}') = $lines ] && [ $lines -le $((3 * N)) ]"

# --- 2. APNs faults during a bulk push: every push ends delivered or recorded failed ---
apns_round() {   # $1: name, rest: mock flags
    local name=$1; shift
    kill "$APNS_PID" 2>/dev/null; wait "$APNS_PID" 2>/dev/null
    : >"$T/pushes"
    start_mock_apns "$@" || return 1
    sed -i "s/^apns_port .*/apns_port $APNS_PORT/" "$D/mdmd.conf"
    kill -TERM "$MDMD_PID"; wait "$MDMD_PID"
    start_mdmd "$D" || return 1
    R eval "for _,u in ipairs(redis.call('ZRANGE','mdm:devices',0,-1)) do redis.call('HDEL','mdm:dev:{'..u..'}','last_push_outcome','token_invalid') end" 0 >/dev/null
    enqueue RestartDevice >/dev/null
    wait_for 60 bash -c "[ \$(redis-cli -p $REDIS_PORT eval \"local n=0 for _,u in ipairs(redis.call('ZRANGE','mdm:devices',0,-1)) do if redis.call('HEXISTS','mdm:dev:{'..u..'}','last_push_outcome')==1 then n=n+1 end end return n\" 0) = $N ]"
}
outcomes() { R eval "local c={} for _,u in ipairs(redis.call('ZRANGE','mdm:devices',0,-1)) do local o=redis.call('HGET','mdm:dev:{'..u..'}','last_push_outcome') or 'none' c[o]=(c[o] or 0)+1 end local r={} for k,v in pairs(c) do r[#r+1]=k..'='..v end table.sort(r) return r" 0 | paste -sd' '; }
apns_round goaway --goaway-after 100; o=$(outcomes)
check "GOAWAY every 100 streams: all $N pushes delivered ($o)" test "$o" = "ok=$N"
apns_round drop --drop-after 300; o=$(outcomes)
check "connection dropped mid-batch: all $N pushes delivered ($o)" test "$o" = "ok=$N"
apns_round stall --delay-ms 1500; o=$(outcomes)
check "stalling APNs: all $N pushes delivered ($o)" test "$o" = "ok=$N"
apns_round 500 --mode 500; o=$(outcomes)
check "APNs answering 500: every push recorded as failed ($o)" test "$o" = "failed=$N"
check "failed pushes carry their status" test "$(R hget 'mdm:dev:{F-000007}' last_push_status)" = 500
check "failed pushes are in the event stream" bash -c "[ \$(redis-cli -p $REDIS_PORT xrevrange mdm:events + - count 5000 | grep -cx push_failed) -ge $N ]"

# --- 3. SIGTERM under load, then restart: nothing queued is lost ---
kill "$APNS_PID" 2>/dev/null; wait "$APNS_PID" 2>/dev/null
start_mock_apns && sed -i "s/^apns_port .*/apns_port $APNS_PORT/" "$D/mdmd.conf"
kill -TERM "$MDMD_PID"; wait "$MDMD_PID"; start_mdmd "$D"
C4=$(enqueue InstalledApplicationList); C5=$(enqueue DeviceLock)
"${SIM[@]}" --skip-enroll --duration 180 --allow-status 503 --ledger "$T/ledger3" >"$T/sim3.out" 2>&1 &
SIMPID=$!; PIDS+=("$SIMPID")
check "load is running before SIGTERM" wait_for 20 bash -c "[ \$(wc -l <'$T/ledger3' 2>/dev/null || echo 0) -ge 200 ]"
kill -TERM "$MDMD_PID"; wait "$MDMD_PID"; rc=$?
check "SIGTERM under load exits 0" test "$rc" = 0
check "in-flight requests completed (no shutdown timeout)" bash -c "! grep -q event=shutdown_timeout '$T/mdmd.log'"
start_mdmd "$D"
check "after the restart every queue drains" wait_for 150 bash -c \
    "[ \$(redis-cli -p $REDIS_PORT eval \"local n=0 for _,u in ipairs(redis.call('ZRANGE','mdm:devices',0,-1)) do n=n+redis.call('LLEN','mdm:q:{'..u..'}') end return n\" 0) = 0 ]"
kill -INT "$SIMPID"; wait "$SIMPID"
a=$(audit "$C4" "$C5" | paste -sd' ')
check "each of $((2 * N)) commands finished exactly once (bad done queued: $a)" test "${a%% *}" = 0
check "no device saw a finished command again" grep -q 'proto_errors=0' "$T/sim3.out"
kill -TERM "$MDMD_PID"; wait "$MDMD_PID"
check "no sanitizer report" bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$T/mdmd.log'"
finish

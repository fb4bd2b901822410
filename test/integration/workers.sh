#!/usr/bin/env bash
# workers 2 (core/super.h): one supervisor, two workers on the same ports and
# the one private redis-server.  Both workers answer; a worker killed with -9
# leaves no failed request for a client that retries on a reset, and comes
# back; SIGHUP reaches both (a bad config reaches neither); one push per
# device and window across workers; a bulk job runs once; SIGTERM drains and
# exits 0.  To make a given worker answer, the other is stopped (SIGSTOP):
# a stopped worker does not accept, the shared queue goes to the running one.
. "$(dirname "$0")/lib.sh"

make_push_pki || { fail "push PKI"; finish; }
start_mock_apns || { fail "mock APNs starts"; finish; }
HP=$(free_port)
python3 "$TOP/test/tools/hookrecv.py" --port "$HP" --secret s3cret --log "$T/hook.log" --threaded \
    >"$T/hookrecv.log" 2>&1 &
PIDS+=($!)
D=$T/a
write_conf "$D" "workers 2" "push_coalesce_ms 1500" "log_level debug" "job_push_backlog 50" \
    "webhook_url http://127.0.0.1:$HP/hook" "webhook_secret s3cret"
apns_conf >>"$D/mdmd.conf"
start_mdmd "$D" || { fail "mdmd starts"; finish; }
SUP=$MDMD_PID
# wpid N: the pid of worker N (the latest start).
wpid() { grep -o "worker=super event=worker_started n=$1 pid=[0-9]*" "$T/mdmd.log" | tail -n 1 | sed 's/.*pid=//'; }
both_ready() { [ "$(grep -cE 'worker=[12] event=ready' "$T/mdmd.log")" -ge "${1:-2}" ]; }
check "both workers are ready" wait_for 60 both_ready
W1=$(wpid 1); W2=$(wpid 2)
KEY=$(cat "$D/var/api.key")
R() { redis-cli -s "$D/var/redis/redis.sock" "$@"; }
# which [curl args]: the worker that answered /metrics.
which() {
    curl -s --max-time 10 --cacert "$CA" "$@" "https://127.0.0.1:$PUB/metrics" |
        sed -n 's/^mdmd_worker{worker="\([0-9]*\)"} 1$/\1/p'
}
auth=(-H "Authorization: Bearer $KEY")
# The W- devices' events (the group began before they enrolled): in the
# stream, and delivered (distinct ids answered 200).
w_events() { R eval "local n = 0
for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
  for i = 1, #e[2], 2 do
    if e[2][i] == 'udid' and string.sub(e[2][i + 1], 1, 2) == 'W-' then n = n + 1 end
  end
end
return n" 1 mdm:events; }
delivered() { awk '$1 == 200 && $4 ~ /^W-/ { print $2 }' "$T/hook.log" | sort -u | wc -l; }
all_delivered() { local n; n=$(w_events); [ "$n" -ge 40 ] && [ "$(delivered)" = "$n" ]; }

check "the supervisor runs one redis-server" test "$(pgrep -c -P "$SUP" -x redis-server)" = 1
check "the workers run none" test -z "$(pgrep -P "$W1" -x redis-server)$(pgrep -P "$W2" -x redis-server)"
check "log lines say which worker" bash -c "grep -q 'worker=1 event=redis_connected' '$T/mdmd.log' &&
    grep -q 'worker=2 event=redis_connected' '$T/mdmd.log' && grep -q 'worker=super event=supervisor_started' '$T/mdmd.log'"
kill -STOP "$W1"; a=$(which "${auth[@]}"); kill -CONT "$W1"
kill -STOP "$W2"; b=$(which "${auth[@]}"); kill -CONT "$W2"
check "worker 2 answers on the public port (got '$a')" test "$a" = 2
check "worker 1 answers on the same port (got '$b')" test "$b" = 1
check "/metrics labels the process' series, not Redis'" bash -c "curl -s --cacert '$CA' -H 'Authorization: Bearer $KEY' \
    https://127.0.0.1:$PUB/metrics >'$T/m1' && grep -q '^mdmd_redis_up{worker=\"[12]\"} 1' '$T/m1' &&
    grep -q '^mdmd_devices 0' '$T/m1' && grep -q '^mdmd_workers 2' '$T/m1'"

# The webhook group begins at the stream's end on a worker's first look
# (hook_next.lua): the events from then on are delivered.
check "webhook: the consumer group exists" wait_for 20 bash -c "redis-cli -s '$D/var/redis/redis.sock' xinfo groups mdm:events | grep -q '^hook:'"

# --- one push per device and window across workers ---
SIM=("$BIN/mdmsim" --url "https://127.0.0.1:$MDM/mdm" --ca "$CA" --ca-key "$D/var/ca/ca.key"
     --identities "$T/ids" --topic "$TOPIC" -q)
"${SIM[@]}" -n 20 --udid-prefix W >"$T/enroll.out" 2>&1
api GET '/v1/devices?limit=100' >/dev/null
check "20 simulated devices enroll" test "$(grep -o '"W-0000[0-9]*"' "$T/api" | sort -u | wc -l)" = 20
check "webhook: every event of the 20 enrollments is delivered" wait_for 20 all_delivered
p0=$(wc -l <"$T/pushes" 2>/dev/null || echo 0)
kill -STOP "$W1"; api POST /v1/commands '{"udids":["W-000000"],"command":{"RequestType":"DeviceInformation","Queries":["DeviceName"]}}' >/dev/null; kill -CONT "$W1"
kill -STOP "$W2"; c=$(api POST /v1/commands '{"udids":["W-000000"],"command":{"RequestType":"ProfileList"}}'); kill -CONT "$W2"
check "two enqueues, one on each worker (201)" test "$c" = 201
check "enqueues reached both workers" bash -c "grep -q 'worker=1 event=request listener=public .*path=/v1/commands' '$T/mdmd.log' &&
    grep -q 'worker=2 event=request listener=public .*path=/v1/commands' '$T/mdmd.log'"
check "the push went out" wait_for 10 bash -c "[ \$(wc -l <'$T/pushes') -gt $p0 ]"
check "the other worker's push folded into it" wait_for 10 grep -q 'event=push_coalesced udid=W-000000 by=another_worker' "$T/mdmd.log"
check "one push for both wake-ups ($(($(wc -l <"$T/pushes") - p0)))" test "$(($(wc -l <"$T/pushes") - p0))" = 1

# --- a bulk job is run by one worker, once ---
p0=$(wc -l <"$T/pushes")
code=$(api POST /v1/commands '{"filter":"all_enrolled","command":{"RequestType":"SecurityInfo"}}')
JOB=$(jget "$T/api" job_id); JU=$(jget "$T/api" command_uuid)
check "the bulk job starts (202)" test "$code" = 202
check "and finishes" wait_for 30 bash -c "curl -s --cacert '$CA' -H 'Authorization: Bearer $KEY' \
    https://127.0.0.1:$PUB/v1/jobs/$JOB | grep -q '\"state\":\"done\"'"
api GET "/v1/jobs/$JOB" >/dev/null
check "it queued 20 commands" test "$(jget "$T/api" queued)" = 20
check "one worker ran it" test "$(grep -c "event=job_started job=$JOB" "$T/mdmd.log")" = 1
once=1
for i in $(seq 0 19); do
    api GET "/v1/devices/W-$(printf %06d "$i")" >/dev/null
    [ "$(grep -o "$JU" "$T/api" | wc -l)" = 1 ] || once=0
done
check "each device has the command queued once" test "$once" = 1
check "each device pushed once" wait_for 10 bash -c "[ \$((\$(wc -l <'$T/pushes') - $p0)) = 20 ]"

# --- webhooks: a consumer per worker, each event delivered once ---
# fields NAME: the values of NAME in redis-cli's flat XINFO output.
fields() { awk -v k="$1" 'p == k { print } { p = $0 }'; }
check "webhook: none twice" test "$(awk '$1 == 200 { print $2 }' "$T/hook.log" | sort | uniq -d | wc -l)" = 0
GRP=$(R xinfo groups mdm:events | fields name | head -n 1)
check "webhook: one consumer per worker ($(R xinfo consumers mdm:events "$GRP" | fields name | paste -sd ' '))" \
    test "$(R xinfo consumers mdm:events "$GRP" | fields name | grep -cE -- '-w[12]$')" = 2

# --- kill -9 a worker under a client that retries on a reset ---
(
    for i in $(seq 150); do
        curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 --retry 5 --retry-all-errors \
            --retry-delay 0 --cacert "$CA" "https://127.0.0.1:$PUB/healthz"
    done
) >"$T/codes" 2>/dev/null &
LOOP=$!
wait_for 10 bash -c "[ \$(wc -l <'$T/codes') -ge 20 ]"
kill -9 "$W1"
wait "$LOOP"
check "150 requests, all 200, across the kill" test "$(grep -cx 200 "$T/codes")" = 150
check "the supervisor logs the death" grep -q "worker=super event=worker_died n=1 status=137" "$T/mdmd.log"
check "and starts worker 1 again" wait_for 10 grep -q "worker=super event=worker_restarted n=1" "$T/mdmd.log"
check "which gets ready" wait_for 30 both_ready 3
W1=$(wpid 1)
kill -STOP "$W2"; b=$(which "${auth[@]}"); kill -CONT "$W2"
check "the new worker 1 answers" test "$b" = 1
check "/metrics counts the restart" grep -q '^mdmd_worker_restarts_total{worker="1"} 1' <(curl -s --cacert "$CA" "${auth[@]}" "https://127.0.0.1:$PUB/metrics")

# --- SIGHUP: every worker reloads, or none ---
reloads() { grep -c "worker=$1 event=reloaded" "$T/mdmd.log"; }
check "/metrics needs the key before" test "$(http_code "https://127.0.0.1:$PUB/metrics" --cacert "$CA")" = 401
echo "metrics_public yes" >>"$D/mdmd.conf"
kill -HUP "$SUP"
check "worker 1 reloads" wait_for 10 out_is 1 reloads 1
check "worker 2 reloads" wait_for 10 out_is 1 reloads 2
kill -STOP "$W1"; a=$(which); kill -CONT "$W1"
kill -STOP "$W2"; b=$(which); kill -CONT "$W2"
check "both serve /metrics without the key now ($a $b)" test "$a$b" = 21
cp "$D/mdmd.conf" "$T/good.conf"
sed -i 's/^metrics_public yes$/metrics_public no/' "$D/mdmd.conf"
echo "max_connections 0" >>"$D/mdmd.conf"
kill -HUP "$SUP"
check "a bad config is refused by the supervisor" wait_for 10 grep -q "worker=super event=reload_failed .*max_connections" "$T/mdmd.log"
check "no worker reloaded it" test "$(reloads 1)$(reloads 2)" = 11
kill -STOP "$W1"; a=$(which); kill -CONT "$W1"
kill -STOP "$W2"; b=$(which); kill -CONT "$W2"
check "both keep the old settings ($a $b)" test "$a$b" = 21
cp "$T/good.conf" "$D/mdmd.conf"

# --- a dead worker's bulk job: another worker resumes it where it was ---
N=600
R eval "for i = 1, tonumber(ARGV[1]) do
  local u = string.format('RES-%06d', i)
  redis.call('HSET', 'mdm:dev:{' .. u .. '}', 'udid', u, 'state', 'enrolled', 'topic', ARGV[2],
             'token', string.format('%064x', i), 'push_magic', 'M' .. i)
  redis.call('ZADD', 'mdm:devices', 0, u)
end" 0 $N "$TOPIC" >/dev/null
LIST=$(seq -f "RES-%06g" 1 $N | sed 's/.*/"&"/' | paste -sd, -)
# resume_case WHAT BODY READY: the job of BODY starts on worker 1, waits for
# APNs (stopped), worker 1 is killed; another worker resumes and finishes it.
resume_case() {
    local what=$1 body=$2 ready=$3 want=$4
    kill -STOP "$APNS_PID" # no APNs answers: the job waits at job_push_backlog (50)
    kill -STOP "$W2"; code=$(api POST /v1/commands "$body"); kill -CONT "$W2"
    JOB=$(jget "$T/api" job_id); JU=$(jget "$T/api" command_uuid)
    check "$what: starts on worker 1 (202)" bash -c "[ $code = 202 ] && grep -q 'worker=1 event=job_started job=$JOB' '$T/mdmd.log'"
    check "$what: waits for APNs" wait_for 10 grep -q "worker=1 event=job_push_wait job=$JOB" "$T/mdmd.log"
    kill -9 "$W1"
    # Worker 2, or worker 1 started again, whichever looks first after the lease.
    check "$what: another worker adopts it when the lease runs out" wait_for 20 grep -qE "worker=[12] event=job_adopted job=$JOB position=[1-9]" "$T/mdmd.log"
    kill -CONT "$APNS_PID"
    check "$what: and finishes it" wait_for 30 bash -c "curl -s --cacert '$CA' -H 'Authorization: Bearer $KEY' \
        https://127.0.0.1:$PUB/v1/jobs/$JOB | grep -q '\"state\":\"done\"'"
    api GET "/v1/jobs/$JOB" >/dev/null
    check "$what: the record counts every device once ($(jget "$T/api" queued) queued)" test "$(jget "$T/api" queued)" = "$want"
    bad=$(R eval "local bad = 0
for i = 1, tonumber(ARGV[1]) do
  local n = 0
  for _, c in ipairs(redis.call('LRANGE', string.format('mdm:q:{RES-%06d}', i), 0, -1)) do
    if c == ARGV[2] then n = n + 1 end
  end
  if n ~= 1 then bad = bad + 1 end
end
return bad" 0 $N "$JU")
    check "$what: each of the $N devices has the command queued once (not: $bad)" test "$bad" = 0
    check "$what: worker 1 comes back" wait_for 30 both_ready "$ready"
    W1=$(wpid 1)
}
resume_case "filter job" '{"filter":"all_enrolled","command":{"RequestType":"CertificateList"}}' 4 $((N + 20))
resume_case "list job" "{\"udids\":[$LIST],\"async\":true,\"command\":{\"RequestType\":\"ProfileList\"}}" 5 $N

# --- SIGTERM: the workers drain, the supervisor exits 0 ---
kill -TERM "$SUP"; wait "$SUP"; rc=$?
check "SIGTERM exits 0" test "$rc" = 0
check "both workers exited 0" bash -c "grep -q 'worker=super event=worker_exited n=1 status=0' '$T/mdmd.log' &&
    grep -q 'worker=super event=worker_exited n=2 status=0' '$T/mdmd.log'"
RP=$(grep -o 'event=embedded_redis_spawned pid=[0-9]*' "$T/mdmd.log" | sed 's/.*pid=//')
check "no worker or redis-server is left" bash -c "! kill -0 $W1 2>/dev/null && ! kill -0 $W2 2>/dev/null &&
    [ -n '$RP' ] && ! kill -0 $RP 2>/dev/null"
check "no sanitizer report" bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$T/mdmd.log'"
finish

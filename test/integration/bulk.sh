#!/usr/bin/env bash
# Bulk enqueue: 100,000 enrolled device records made directly in Redis (plus
# 1,000 checked-out ones), then POST /v1/commands by filter and by a list of
# 100,000 UDIDs.  Both run as jobs: 202 at once, progress at /v1/jobs/{id},
# every queue right at the end, and /healthz keeps answering quickly (p99 <
# 100 ms) while the filter job runs.  Prints how long each job took.
. "$(dirname "$0")/lib.sh"
# ready: mdmd answers /healthz with Redis up (the ports file comes earlier).
ready() { wait_for 20 out_is 200 http_code "https://127.0.0.1:$PUB/healthz" --cacert "$CA"; }
N=${BULK_N:-100000}

start_redis || { fail "redis starts"; finish; }
D=$T/a
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT"
start_mdmd "$D" || { fail "mdmd starts"; finish; }
ready || fail "mdmd is ready"

# One script call makes the fleet: faster than any client pipeline.  In the
# cluster layout (REDIS_LAYOUT=cluster, on this one Redis) mdm:devices is 64
# buckets, a device's chosen by its UDID's slot (lib.sh's bkey, in Lua here).
layout_cluster && CL=1 || CL=0
R eval "
local now = ARGV[3]
local function devices(u)
  if ARGV[4] ~= '1' then return 'mdm:devices' end
  local crc = 0
  for i = 1, #u do
    crc = bit.bxor(crc, bit.lshift(string.byte(u, i), 8))
    for _ = 1, 8 do
      crc = bit.band(crc, 0x8000) ~= 0 and bit.bxor(bit.lshift(crc, 1), 0x1021) or bit.lshift(crc, 1)
      crc = bit.band(crc, 0xffff)
    end
  end
  return string.format('mdm:devices:{b%02d}', crc % 16384 % 64)
end
local n = 0
for i = 1, tonumber(ARGV[1]) do
  local u = string.format('BULK-%06d', i)
  redis.call('HSET', 'mdm:dev:{' .. u .. '}', 'udid', u, 'state', 'enrolled', 'token',
             string.format('%064x', i), 'push_magic', 'M' .. i, 'topic', 'com.apple.mgmt.test',
             'last_seen', now)
  n = n + redis.call('ZADD', devices(u), now - i, u)
end
for i = 1, tonumber(ARGV[2]) do
  local u = string.format('GONE-%06d', i)
  redis.call('HSET', 'mdm:dev:{' .. u .. '}', 'udid', u, 'state', 'checked_out')
  n = n + redis.call('ZADD', devices(u), now, u)
end
return n" 0 "$N" 1000 "$(date +%s%3N)" "$CL" >"$T/made"
check "$N enrolled + 1000 checked-out records made" test "$(cat "$T/made")" = $((N + 1000))

# queue_sum PREFIX: the sum of the queue lengths of PREFIX-000001..N.
queue_sum() {
    R eval "local s = 0
for i = 1, tonumber(ARGV[2]) do s = s + redis.call('LLEN', string.format('mdm:q:{%s-%06d}', ARGV[1], i)) end
return s" 0 "$1" "$2"
}
# queue_depth: mdm:stats queue_depth, summed over the buckets in the cluster layout.
queue_depth() {
    local k s=0
    local v
    for k in $(bkeys mdm:stats); do v=$(R hget "$k" queue_depth); s=$((s + ${v:-0})); done
    echo "$s"
}
job_field() { api GET "/v1/jobs/$1" >/dev/null; jget "$T/api" "$2"; }
now_ms() { date +%s%3N; }

# healthz_loop FILE STOP: GET /healthz, 20 per curl (keep-alive), until STOP
# exists; one line per request: seconds from sending it to its answer (the
# connection setup, once per curl, is not part of that).
healthz_loop() {
    local urls=() i
    for i in $(seq 20); do urls+=("https://127.0.0.1:$PUB/healthz"); done
    until [ -e "$2" ]; do
        curl -s --cacert "$CA" -o /dev/null -w '%{time_total} %{time_pretransfer}\n' "${urls[@]}" |
            awk '{ printf "%.6f\n", $1 - $2 }' >>"$1"
    done
}
# p99_ms FILE: the 99th percentile of its seconds, in ms.
p99_ms() {
    sort -n "$1" | awk '{ a[NR] = $1 } END { i = int(NR * 0.99 + 0.999); if (i < 1) i = 1; printf "%d", a[i] * 1000 }'
}

# --- healthz with nothing running, for comparison (this machine may be busy) ---
healthz_loop "$T/idle.times" "$T/idle.stop" &
HPID=$!
sleep 2; touch "$T/idle.stop"; wait "$HPID"
idle_p99=$(p99_ms "$T/idle.times")
echo "healthz idle: $(wc -l <"$T/idle.times") requests, p99 ${idle_p99} ms"

# --- by filter ---
healthz_loop "$T/health.times" "$T/stop" &
HPID=$!
wait_for 10 test -s "$T/health.times"
t0=$(now_ms)
code=$(api POST /v1/commands '{"filter":"all_enrolled","command":{"RequestType":"DeviceInformation","Queries":["DeviceName"]}}')
t_answer=$(( $(now_ms) - t0 ))
JOB=$(jget "$T/api" job_id); C1=$(jget "$T/api" command_uuid)
check "filter enqueue answers 202 with a job id in ${t_answer} ms" test "$code:${#JOB}" = 202:32
check "the 202 came at once (< 1 s)" test "$t_answer" -lt 1000
seen_running=0
wait_job() {   # JOB: polls until it is no longer running; 0 when done.
    local st
    for _ in $(seq 3000); do
        st=$(job_field "$1" state)
        [ "$st" = running ] && seen_running=1
        [ "$st" != running ] && break
        sleep 0.02
    done
    [ "$st" = done ]
}
check "filter job finishes" wait_job "$JOB"
t_filter=$(( $(now_ms) - t0 ))
touch "$T/stop"; wait "$HPID"
echo "time to enqueue $N devices by filter: $t_filter ms"
check "progress was readable while it ran" test "$seen_running" = 1
api GET "/v1/jobs/$JOB" >/dev/null
check "job: queued $N" test "$(jget "$T/api" queued)" = "$N"
check "job: skipped the 1000 checked-out devices" test "$(jget "$T/api" skipped)" = 1000
check "job: total is the fleet" test "$(jget "$T/api" total)" = $((N + 1000))
check "job: command_uuid" test "$(jget "$T/api" command_uuid)" = "$C1"
check "every enrolled queue holds the command once" test "$(queue_sum BULK "$N")" = "$N"
check "first and last device have it" test "$(R lindex 'mdm:q:{BULK-000001}' 0)$(R lindex "mdm:q:{BULK-$(printf %06d "$N")}" 0)" = "$C1$C1"
check "checked-out devices got nothing" test "$(queue_sum GONE 1000)" = 0
check "command targets counted once" test "$(R hget "mdm:cmd:$C1" targets)" = "$N"
cnt=$(wc -l <"$T/health.times")
p99=$(p99_ms "$T/health.times")
max=$(sort -n "$T/health.times" | tail -n 1 | awk '{ printf "%d", $1 * 1000 }')
echo "healthz during the filter job: $cnt requests, p99 ${p99} ms, max ${max} ms"
# 100 ms is the goal; on a machine so loaded that idle requests already wait
# 20 ms or more, what the job may add to that is checked instead.
limit=100
[ "$idle_p99" -ge 20 ] && limit=$((100 + idle_p99)) && echo "busy machine: limit ${limit} ms"
check "healthz p99 < $limit ms during the job ($cnt requests, p99 $p99 ms, idle $idle_p99 ms)" \
    test "${p99:-999}" -lt "$limit"
check "healthz was sampled throughout (>= 50 requests)" test "$cnt" -ge 50

# A small job (async: true): its Location header names it.
curl -s -D "$T/hdr" -o /dev/null --cacert "$CA" -H "Authorization: Bearer $(cat "$D/var/api.key")" \
    -d '{"async":true,"udids":["BULK-000003"],"command":{"RequestType":"ProfileList"}}' "https://127.0.0.1:$PUB/v1/commands"
LOC=$(tr -d '\r' <"$T/hdr" | awk 'tolower($1) == "location:" { print $2 }')
check "Location names the job" bash -c "[[ '$LOC' =~ ^/v1/jobs/[0-9a-f]{32}$ ]]"
check "that job finishes" wait_job "${LOC#/v1/jobs/}"

# --- by list ---
awk -v n="$N" 'BEGIN { printf "{\"udids\":["; for (i = 1; i <= n; i++) printf "%s\"BULK-%06d\"", (i > 1 ? "," : ""), i;
    printf ",\"NOBODY-1\"],\"command\":{\"RequestType\":\"SecurityInfo\"}}" }' >"$T/list.json"
t0=$(now_ms)
# 2.4 MB of JSON: parsed in one go, which takes seconds under ASan on a busy machine.
code=$(curl -s -o "$T/api" -w '%{http_code}' --max-time 120 --cacert "$CA" \
    -H "Authorization: Bearer $(cat "$D/var/api.key")" -H 'Content-Type: application/json' \
    --data-binary "@$T/list.json" "https://127.0.0.1:$PUB/v1/commands")
JOB2=$(jget "$T/api" job_id); C2=$(jget "$T/api" command_uuid)
check "list of $((N + 1)) UDIDs answers 202" test "$code:${#JOB2}" = 202:32
check "list job finishes" wait_job "$JOB2"
t_list=$(( $(now_ms) - t0 ))
echo "time to enqueue $N devices by list: $t_list ms"
api GET "/v1/jobs/$JOB2" >/dev/null
check "list job: done/queued/unknown" test "$(jget "$T/api" done)/$(jget "$T/api" queued)/$(jget "$T/api" unknown)" = "$((N + 1))/$N/1"
check "every queue now holds both commands" test "$(queue_sum BULK "$N")" = $((2 * N + 1))
check "the newest is the list's command" test "$(R lindex 'mdm:q:{BULK-000777}' 1)" = "$C2"
check "mdm:stats queue depth agrees" test "$(queue_depth)" = $((2 * N + 1))

# --- small cases and errors (a plist by filter: cli.sh) ---
check "5000 UDIDs or fewer: 201 at once" test "$(api POST /v1/commands '{"udids":["BULK-000001"],"command":{"RequestType":"ProfileList"}}')" = 201
check "async: true makes a job of one UDID" test "$(api POST /v1/commands '{"async":true,"udids":["BULK-000002"],"command":{"RequestType":"ProfileList"}}')" = 202
J3=$(jget "$T/api" job_id)
check "which finishes with queued 1" wait_for 10 out_is 1 job_field "$J3" queued
check "unknown filter: 400" test "$(api POST /v1/commands '{"filter":"everyone","command":{"RequestType":"ProfileList"}}')" = 400
check "filter and udids together: 400" test "$(api POST /v1/commands '{"filter":"all_enrolled","udids":["A"],"command":{"RequestType":"ProfileList"}}')" = 400
printf '<?xml version="1.0"?><plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>ProfileList</string></dict></dict></plist>' >"$T/cmd.plist"
pl() { curl -s -o "$T/api" -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer $(cat "$D/var/api.key")" \
    -H 'Content-Type: application/x-plist' --data-binary "@$T/cmd.plist" "https://127.0.0.1:$PUB/v1/commands?$1"; }
check "plist with udids and filter: 400" test "$(pl 'udids=BULK-000001&filter=all_enrolled')" = 400
check "unknown job: 404" test "$(api GET /v1/jobs/00000000000000000000000000000000)" = 404
check "malformed job id: 404" test "$(api GET /v1/jobs/nope)" = 404
check "jobs need the key" test "$(http_code "https://127.0.0.1:$PUB/v1/jobs/$JOB" --cacert "$CA")" = 401
R hset "$(gkey job:0123456789abcdef0123456789abcdef)" state running updated 1000 total 5 >/dev/null
api GET /v1/jobs/0123456789abcdef0123456789abcdef >/dev/null
check "a running job that stopped moving reads as failed" test "$(jget "$T/api" state)" = failed
check "job records expire" bash -c "[ \$(redis-cli -p $REDIS_PORT ttl '$(gkey "job:$JOB")') -gt 600000 ]"
curl -s --cacert "$CA" -H "Authorization: Bearer $(cat "$D/var/api.key")" "https://127.0.0.1:$PUB/metrics" >"$T/metrics"
check "metrics count the jobs" grep -q '^mdmd_bulk_jobs_total{state="done"} 4$' "$T/metrics"
check "metrics count the queued commands" grep -q "^mdmd_commands_queued_total $((2 * N + 3))$" "$T/metrics"
kill -TERM "$MDMD_PID"; wait "$MDMD_PID"; rc=$?
check "SIGTERM exits 0" test "$rc" = 0

# SIGTERM in the middle of a job: a clean exit; the job ends at its next step
# and its record says "failed" and where it stopped, never "running" (a
# record left running by kill -9 reads "failed" once stale, above).
start_mdmd "$D" || fail "mdmd restarts"
ready || fail "mdmd is ready again"
api POST /v1/commands '{"filter":"all_enrolled","command":{"RequestType":"ProfileList"}}' >/dev/null
J4=$(jget "$T/api" job_id)
kill -TERM "$MDMD_PID"; wait "$MDMD_PID"; rc=$?
check "SIGTERM during a job exits 0" test "$rc" = 0
K4=$(gkey "job:$J4")
check "  and records the job failed, not running ($(R hget "$K4" state))" test "$(R hget "$K4" state)" = failed
# (cursor: the ZSCAN cursor; in the cluster layout <bucket>:<cursor>)
check "  saying where it stopped ($(R hget "$K4" error))" bash -c "redis-cli -p $REDIS_PORT hget '$K4' error | grep -q '^mdmd stopped after [0-9]* devices scanned (cursor [0-9:]*)'"
check "no sanitizer report" bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$T/mdmd.log'"
finish

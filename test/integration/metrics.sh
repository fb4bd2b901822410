#!/usr/bin/env bash
# GET /metrics: the key guards it, the text is valid exposition format, and
# the numbers move with real traffic: HTTP requests by endpoint and status,
# check-in latency, enrollments, commands queued and reported, queue depth
# (mdm:stats), pushes, Redis round trips; and it still answers with Redis down.
. "$(dirname "$0")/lib.sh"
# ready: mdmd answers /healthz with Redis up (the ports file comes earlier).
ready() { wait_for 20 out_is 200 http_code "https://127.0.0.1:$PUB/healthz" --cacert "$CA"; }

start_redis || { fail "redis starts"; finish; }
D=$T/a
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT" "enroll_require_issued no"
start_mdmd "$D" || { fail "mdmd starts"; finish; }
ready || fail "mdmd is ready"
KEY=$(cat "$D/var/api.key")

scrape() {
    curl -s --max-time 10 --cacert "$CA" -H "Authorization: Bearer $KEY" -o "$T/metrics" \
        -w '%{http_code} %{content_type}' "https://127.0.0.1:$PUB/metrics"
}
# m SERIES: its value in the last scrape ("" when absent).
m() { awk -v k="$1" '$1 == k { print $2 }' "$T/metrics"; }

check "no key: 401" test "$(http_code "https://127.0.0.1:$PUB/metrics" --cacert "$CA")" = 401
out=$(scrape)
check "with the key: 200 text/plain 0.0.4" test "$out" = "200 text/plain; version=0.0.4; charset=utf-8"
check "every line is a comment or 'series value'" bash -c "! grep -vE '^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+(\{[a-z_]+=\"[^\"]*\"(,[a-z_]+=\"[^\"]*\")*\})? [-+0-9.e]+(Inf)?)$' '$T/metrics'"
check "each family has one TYPE line" bash -c "[ \$(grep '^# TYPE' '$T/metrics' | sort | uniq -d | wc -l) = 0 ]"
check "build info carries the version" test "$(m 'mdmd_build_info{version="'"$("$BIN/mdmd" --version | cut -d' ' -f2)"'"}')" = 1
check "redis is up" test "$(m mdmd_redis_up)" = 1
check "queue depth starts at 0" test "$(m mdmd_queue_depth)" = 0
check "no push certificate: apns_configured 0" test "$(m mdmd_apns_configured)" = 0
check "the open connection is counted" bash -c "[ '$(m 'mdmd_http_connections{listener="public"}')' -ge 0 ]"
check "the 401 was counted" test "$(m 'mdmd_http_requests_total{listener="public",endpoint="/metrics",status="401"}')" = 1

# Traffic: enroll, queue, fetch, acknowledge.
U=MET-1
enroll_device d1 $U >/dev/null
api POST /v1/commands '{"udids":["'$U'","GHOST-9"],"command":{"RequestType":"DeviceInformation","Queries":["DeviceName"]}}' >/dev/null
C1=$(jget "$T/api" command_uuid)
http_code "https://127.0.0.1:$PUB/nowhere" --cacert "$CA" >/dev/null
scrape >/dev/null
check "authenticate counted" test "$(m mdmd_authenticates_total)" = 1
check "enrollment counted" test "$(m mdmd_enrollments_total)" = 1
check "command queued counted" test "$(m mdmd_commands_queued_total)" = 1
check "unknown target counted" test "$(m mdmd_commands_not_queued_total)" = 1
check "queue depth 1" test "$(m mdmd_queue_depth)" = 1
check "devices 1" test "$(m mdmd_devices)" = 1
check "POST /v1/commands 201 counted" test "$(m 'mdmd_http_requests_total{listener="public",endpoint="/v1/commands",status="201"}')" = 1
check "unmatched path counted as (none) 404" test "$(m 'mdmd_http_requests_total{listener="public",endpoint="(none)",status="404"}')" = 1
check "check-in latency histogram: 2 check-ins" test "$(m 'mdmd_http_request_duration_seconds_count{listener="mdm",endpoint="/mdm/checkin"}')" = 2
check "histogram +Inf bucket equals count" test "$(m 'mdmd_http_request_duration_seconds_bucket{listener="mdm",endpoint="/mdm/checkin",le="+Inf"}')" = 2
check "push without certificate counted as unconfigured" test "$(m 'mdmd_pushes_total{outcome="unconfigured"}')" = 1
rtt=$(m mdmd_redis_roundtrip_seconds_count)
check "redis round trips measured" bash -c "[ '${rtt:-0}' -gt 3 ]"

poll d1 $U Idle
poll d1 $U Acknowledged "$C1" QueryResponses "<dict><key>DeviceName</key><string>x</string></dict>"
scrape >/dev/null
check "Idle and Acknowledged reports counted" test "$(m 'mdmd_command_reports_total{status="Idle"}'):$(m 'mdmd_command_reports_total{status="Acknowledged"}')" = 1:1
check "queue depth back to 0" test "$(m mdmd_queue_depth)" = 0
check "connect latency observed" test "$(m 'mdmd_http_request_duration_seconds_count{listener="mdm",endpoint="/mdm/connect"}')" = 2
check "redis round trips grew" bash -c "[ '$(m mdmd_redis_roundtrip_seconds_count)' -gt '$rtt' ]"

# The depth counter follows every way out of a queue.
for i in 1 2 3; do api POST /v1/commands '{"udids":["'$U'"],"command":{"RequestType":"ProfileList"}}' >/dev/null; done
scrape >/dev/null
check "three more queued" test "$(m mdmd_queue_depth)" = 3
api DELETE "/v1/devices/$U/commands" >/dev/null
scrape >/dev/null
check "queue clear brings it to 0" test "$(m mdmd_queue_depth)" = 0
api POST /v1/commands '{"udids":["'$U'"],"command":{"RequestType":"ProfileList"}}' >/dev/null
plist_msg "$T/co" MessageType CheckOut UDID "$U" Topic com.apple.mgmt.test
mdm_put /mdm/checkin d1 "$T/co" application/x-apple-aspen-mdm-checkin >/dev/null
scrape >/dev/null
check "check-out drops its queue from the depth" test "$(m mdmd_queue_depth)" = 0
check "check-out counted" test "$(m mdmd_checkouts_total)" = 1
check "agrees with the queues in Redis" test "$(R llen "mdm:q:{$U}")" = 0

# Redis down: the scrape still answers, says so, and has no stale depth.
stop_redis
wait_for 5 out_is 0 bash -c "curl -s --cacert '$CA' -H 'Authorization: Bearer $KEY' https://127.0.0.1:$PUB/metrics | awk '\$1==\"mdmd_redis_up\"{print \$2}'"
out=$(scrape)
check "redis down: still 200" test "${out%% *}" = 200
check "redis down: redis_up 0" test "$(m mdmd_redis_up)" = 0
check "redis down: no queue depth" test -z "$(m mdmd_queue_depth)"

# metrics_public: no key needed.
kill -TERM "$MDMD_PID"; wait "$MDMD_PID"
echo "metrics_public yes" >>"$D/mdmd.conf"
start_mdmd "$D" || fail "mdmd restarts"
check "metrics_public yes: 200 without a key" test "$(http_code "https://127.0.0.1:$PUB/metrics" --cacert "$CA")" = 200
kill -TERM "$MDMD_PID"; wait "$MDMD_PID"; rc=$?
check "SIGTERM exits 0" test "$rc" = 0
check "no sanitizer report" bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$T/mdmd.log'"
finish

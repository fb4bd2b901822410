#!/usr/bin/env bash
# Fleet operations (issue 19).  Webhooks: a receiver that fails the first
# deliveries and then goes down for a while gets every event, signed, in
# order per device, across an mdmd restart; a target that keeps failing
# dead-letters its events, which replay delivers with the same id.  Queue
# surgery: the pending list with states, delete one, priority to the head,
# cancel across devices as a job.  Re-push against the mock APNs, the push
# ledger, push_unanswered, the push-to-check-in histogram, stale devices.
. "$(dirname "$0")/lib.sh"

SECRET=s3cret-for-tests
HP=$(free_port); DP=$(free_port)
python3 "$TOP/test/tools/hookrecv.py" --port "$HP" --secret "$SECRET" --log "$T/hook.log" \
    --fail-first 3 --down-after 8 --down-for 3 >"$T/hookrecv.log" 2>&1 &
PIDS+=($!)
python3 "$TOP/test/tools/hookrecv.py" --port "$DP" --secret "$SECRET" --log "$T/dead.log" \
    --heal "$T/heal" >"$T/hookrecv2.log" 2>&1 &
PIDS+=($!)

make_push_pki || { fail "push PKI"; finish; }
start_mock_apns || { fail "mock APNs starts"; finish; }
start_redis || { fail "redis starts"; finish; }
D=$T/a
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT" \
    "webhook_url http://127.0.0.1:$HP/hook http://127.0.0.1:$DP/dead" "webhook_secret $SECRET" \
    "webhook_retry_max_s 1" "webhook_max_age_s 20" "webhook_timeout_s 2" \
    "push_coalesce_ms 0" "repush_after_s 1" "repush_max_s 2" "repush_max_attempts 3" \
    "notnow_repush_s 1" "stale_after_s 60" "cert_validity_days 10"
apns_conf >>"$D/mdmd.conf"
start_mdmd "$D" || { fail "mdmd starts"; finish; }
check "a consumer group per webhook URL" wait_for 10 bash -c \
    "[ \$(redis-cli -p $REDIS_PORT xinfo groups mdm:events 2>/dev/null | grep -c '^hook:') = 2 ]"

# 30 events over 3 devices; restart mdmd (kill -9) in the middle.
ev() { R xadd mdm:events '*' type test udid "DEV-$(( $1 % 3 ))" seq "$1" time "$(date +%s%3N)" >/dev/null; }
for i in $(seq 1 15); do ev "$i"; done
wait_for 20 grep -q '^200 .* 1 DEV-' "$T/hook.log"
kill -9 "$MDMD_PID"; wait "$MDMD_PID" 2>/dev/null
for i in $(seq 16 30); do ev "$i"; done
start_mdmd "$D" || fail "mdmd restarts"
# (the test's own 30 events, by seq: mdmd's own, e.g. cert_expiring at start, go there too)
check "every event arrives (receiver failing, down, mdmd restarted)" wait_for 60 bash -c \
    "[ \$(awk '\$1==200 && \$6==\"/hook\" && \$5 ~ /^[0-9]+\$/ {print \$5}' '$T/hook.log' | sort -un | wc -l) = 30 ]"
check "the receiver failed and went down meanwhile" bash -c \
    "[ \$(grep -c '^500 ' '$T/hook.log') = 3 ] && grep -q '^DOWN' '$T/hook.log'"
check "every signature verifies" bash -c "! awk '\$1 ~ /^[0-9]+\$/ && \$3 != 1' '$T/hook.log' | grep -q ."
check "a retried event keeps its delivery id" bash -c \
    "first=\$(awk '\$1==500{print \$2; exit}' '$T/hook.log'); awk -v f=\"\$first\" '\$1==200 && \$2==f' '$T/hook.log' | grep -q ."
check "order per device holds (first deliveries)" bash -c "
    for d in DEV-0 DEV-1 DEV-2; do
        awk -v d=\$d '\$1==200 && \$4==d && \$6==\"/hook\" && !seen[\$5]++ {print \$5}' '$T/hook.log' > '$T/ord'
        sort -n -c '$T/ord' || exit 1
    done"

# The failing target: events older than webhook_max_age_s are dead-lettered.
# (webhook_max_age_s leaves the recovering receiver 20 s: the restart of an
# ASan mdmd on a loaded machine took more than the 7 s it once had.)
check "a target that keeps failing dead-letters its events" wait_for 60 bash -c \
    "[ \$(redis-cli -p $REDIS_PORT xlen mdm:hook:dead) -ge 30 ]"
api GET /v1/webhooks >/dev/null
check "GET /v1/webhooks lists both targets" bash -c "grep -q '\"url\":\"http://127.0.0.1:$HP/hook\"' '$T/api' && grep -q '\"dead\":' '$T/api'"
check "GET /v1/webhooks/dead-letter" test "$(api GET '/v1/webhooks/dead-letter?count=5')" = 200
check "dead letters carry the payload and the error" bash -c "grep -q '\"error\":\"HTTP 503\"' '$T/api' && grep -q 'payload' '$T/api'"
DEAD_ID=$(R xrange mdm:hook:dead - + COUNT 1 | sed -n 5p)
check "nothing of the receiver that came back was dead-lettered" bash -c "! redis-cli -p $REDIS_PORT xrange mdm:hook:dead - + | grep -q '/hook\$'"
check "replay with a bad id: 400" test "$(api POST /v1/webhooks/dead-letter/replay '{"ids":["x;y"]}')" = 400
touch "$T/heal"
NDEAD=$(R xlen mdm:hook:dead)
check "replay all: 200" test "$(api POST /v1/webhooks/dead-letter/replay '{}')" = 200
check "replay counts what it moved" test "$(jget "$T/api" replayed)" = "$NDEAD"
check "replayed events arrive with their original delivery id" wait_for 30 bash -c \
    "[ \$(awk '\$1==200{print \$2}' '$T/dead.log' | sort -u | wc -l) -ge 30 ] && grep -q '^200 $DEAD_ID ' '$T/dead.log'"
check "the dead-letter stream is empty after replay" test "$(R xlen mdm:hook:dead)" = 0

# Real events: an enrollment reaches the webhook as JSON.
enroll_device d1 WH-1
check "enrollment events are delivered" wait_for 20 bash -c \
    "awk '\$1==200 && \$4==\"WH-1\"' '$T/hook.log' | grep -q ."

api GET /metrics >/dev/null
curl -s --cacert "$CA" -H "Authorization: Bearer $(cat "$D/var/api.key")" "https://127.0.0.1:$PUB/metrics" >"$T/metrics"
m() { awk -v k="$1" '$1 == k { print $2 }' "$T/metrics"; }
check "metrics: delivered" bash -c "[ '$(m mdmd_webhook_delivered_total)' -ge 1 ]"
check "metrics: failures and retries" bash -c "[ '$(m mdmd_webhook_failures_total)' -ge 1 ] && [ '$(m mdmd_webhook_retries_total)' -ge 1 ]"
check "metrics: dead-lettered" bash -c "[ '$(m mdmd_webhook_dead_total)' -ge 1 ]"
check "metrics: lag series present" test -n "$(m mdmd_webhook_lag_seconds)"

# --- queue surgery ---
enroll_device q1 Q-1; enroll_device q2 Q-2
cmd() { api POST /v1/commands "{\"udids\":[$1],${3:+\"priority\":\"$3\",}\"command\":{\"RequestType\":\"$2\"}}" >/dev/null; jget "$T/api" command_uuid; }
A1=$(cmd '"Q-1"' ProfileList); A2=$(cmd '"Q-1"' CertificateList); A3=$(cmd '"Q-1"' InstalledApplicationList)
check "pending: 200" test "$(api GET /v1/devices/Q-1/commands/pending)" = 200
check "pending lists three, oldest first, queued" bash -c "tr '{' '\n' <'$T/api' | grep -o '\"uuid\":\"[^\"]*\"\|\"state\":\"[a-z]*\"' | tr -d '\n' | grep -q '\"state\":\"queued\"\"uuid\":\"$A1\"\"state\":\"queued\"\"uuid\":\"$A2\"\"state\":\"queued\"\"uuid\":\"$A3\"' || grep -q '$A1.*$A2.*$A3' '$T/api'"
check "pending carries the body" grep -q 'ProfileList' "$T/api"
poll q1 Q-1 Idle
check "the device gets the oldest" test "$NEXT" = "$A1"
api GET /v1/devices/Q-1/commands/pending >/dev/null
check "it is now sent, with a time" bash -c "grep -o '{[^}]*$A1[^}]*}' '$T/api' | grep -q '\"state\":\"sent\"' && grep -o '{[^}]*$A1[^}]*}' '$T/api' | grep -q '\"sent_at\":[1-9]'"
poll q1 Q-1 NotNow "$A1"
api GET /v1/devices/Q-1/commands/pending >/dev/null
check "a NotNow'd command is marked notnow" bash -c "grep -o '{[^}]*$A1[^}]*}' '$T/api' | grep -q '\"state\":\"notnow\"'"
check "delete one: 204" test "$(api DELETE "/v1/devices/Q-1/commands/$A2")" = 204
check "delete it again: 404" test "$(api DELETE "/v1/devices/Q-1/commands/$A2")" = 404
check "delete on an unknown device: 404" test "$(api DELETE "/v1/devices/NOPE-1/commands/$A2")" = 404
check "delete a malformed uuid: 400" test "$(api DELETE "/v1/devices/Q-1/commands/a;b")" = 400
check "the queue lost just that one" test "$(R lrange 'mdm:q:{Q-1}' 0 -1 | tr '\n' ' ')" = "$A1 $A3 "
check "a command_canceled event" bash -c "redis-cli -p $REDIS_PORT xrange '$(bkey mdm:events Q-1)' - + | grep -q command_canceled"
L=$(cmd '"Q-1"' DeviceLock high)
check "priority high goes to the head" test "$(R lindex 'mdm:q:{Q-1}' 0)" = "$L"
# The urgent path is idempotent per CommandUUID like every other (#13).
n0=$(R llen 'mdm:q:{Q-1}')
check "priority high, the same UUID again: 201" test "$(api POST /v1/commands '{"udids":["Q-1"],"priority":"high","command_uuid":"'$L'","command":{"RequestType":"DeviceLock"}}')" = 201
check "and it is not queued twice" test "$(R llen 'mdm:q:{Q-1}')" = "$n0"
check "priority high, the same UUID with another body: 409" test "$(api POST /v1/commands '{"udids":["Q-1"],"priority":"high","command_uuid":"'$L'","command":{"RequestType":"EraseDevice"}}')" = 409
check "bad priority: 400" test "$(api POST /v1/commands '{"udids":["Q-1"],"priority":"urgent","command":{"RequestType":"DeviceLock"}}')" = 400
check "priority with a filter: 400" test "$(api POST /v1/commands '{"filter":"all_enrolled","priority":"high","command":{"RequestType":"DeviceLock"}}')" = 400
poll q1 Q-1 Idle
check "the urgent command is sent next" test "$NEXT" = "$L"
X=$(cmd '"Q-1","Q-2"' SecurityInfo)
check "cancel everywhere: 202" test "$(api DELETE "/v1/commands/$X")" = 202
JOB=$(jget "$T/api" job_id)
check "the cancel job finishes" wait_for 10 bash -c "curl -s --cacert '$CA' -H 'Authorization: Bearer $(cat "$D/var/api.key")' https://127.0.0.1:$PUB/v1/jobs/$JOB | grep -q '\"state\":\"done\"'"
check "it took the command off both queues" bash -c "! redis-cli -p $REDIS_PORT lrange 'mdm:q:{Q-1}' 0 -1 | grep -q $X && ! redis-cli -p $REDIS_PORT lrange 'mdm:q:{Q-2}' 0 -1 | grep -q $X"
api GET "/v1/jobs/$JOB" >/dev/null
check "the job counts 2 cancelled" grep -q '"canceled":"\?2' "$T/api"

# --- re-push, the push ledger, push_unanswered, push-to-check-in ---
enroll_topic() { # NAME UDID: enroll_device with the push certificate's topic
    make_client_cert "$1" "$CA" "$D/var/ca/ca.key" "$2" || return 1
    plist_msg "$T/$1.auth" MessageType Authenticate UDID "$2" Topic "$TOPIC"
    [ "$(mdm_put /mdm/checkin "$1" "$T/$1.auth" application/x-apple-aspen-mdm-checkin)" = 200 ] || return 1
    plist_msg "$T/$1.tok" MessageType TokenUpdate UDID "$2" Topic "$TOPIC" PushMagic "MAGIC-$2" \
        Token "<data>$(head -c 32 /dev/urandom | base64)</data>"
    [ "$(mdm_put /mdm/checkin "$1" "$T/$1.tok" application/x-apple-aspen-mdm-checkin)" = 200 ]
}
enroll_topic p1 P-1 || fail "P-1 enrolls"
TOK=$(R hget 'mdm:dev:{P-1}' token)
P1=$(cmd '"P-1"' ProfileList)
check "the first push" wait_for 5 grep -q "^$TOK " "$T/pushes"
check "a device that does not answer is pushed again, 3 times, then flagged" wait_for 20 bash -c \
    "[ \"\$(redis-cli -p $REDIS_PORT hget 'mdm:dev:{P-1}' push_unanswered)\" != '' ]"
check "1 push + 3 re-pushes" test "$(grep -c "^$TOK " "$T/pushes")" = 4
check "backoff: the re-pushes spread over 5 s or more" bash -c \
    "[ \$(( \$(redis-cli -p $REDIS_PORT hget 'mdm:dev:{P-1}' push_unanswered) - \$(redis-cli -p $REDIS_PORT hget 'mdm:dev:{P-1}' push_wait) )) -ge 5000 ]"
check "a push_unanswered event" bash -c "redis-cli -p $REDIS_PORT xrange mdm:events - + | grep -q push_unanswered"
check "the ledger: 200" test "$(api GET /v1/devices/P-1/pushes)" = 200
check "the ledger has the pushes with apns-id and status" bash -c \
    "[ \$(grep -o '\"apns_id\":\"[^\"]' '$T/api' | wc -l) = 4 ] && grep -q '\"status\":200' '$T/api' && grep -q '\"push_unanswered\":true' '$T/api'"
poll p1 P-1 Idle
check "the check-in clears the flag" test "$(R hget 'mdm:dev:{P-1}' push_unanswered)" = ""
curl -s --cacert "$CA" -H "Authorization: Bearer $(cat "$D/var/api.key")" "https://127.0.0.1:$PUB/metrics" >"$T/metrics"
check "push-to-check-in histogram observed it" test "$(m mdmd_push_to_checkin_seconds_count)" = 1
check "re-pushes logged and counted" bash -c "[ \$(grep -c 'event=repush udid=P-1\$' '$T/mdmd.log') = 3 ] && [ '$(m mdmd_repush_total)' -ge 3 ]"
n=$(grep -c "^$TOK " "$T/pushes")
poll p1 P-1 NotNow "$P1"
check "NotNow: re-pushed after notnow_repush_s" wait_for 5 bash -c "[ \$(grep -c '^$TOK ' '$T/pushes') -gt $n ]"
poll p1 P-1 Idle
check "...which it is" test "$NEXT" = "$P1"

# --- stale devices ---
R zadd "$(bkey mdm:devices OLD-1)" "$(( $(date +%s%3N) - 3600000 ))" OLD-1 >/dev/null
R hset 'mdm:dev:{OLD-1}' udid OLD-1 state enrolled >/dev/null
check "GET /v1/fleet: 200" test "$(api GET /v1/fleet)" = 200
check "it reports the stale device" bash -c "grep -q '\"stale\":1' '$T/api' && grep -q 'OLD-1' '$T/api'"
check "stale_after_s out of range: 400" test "$(api GET '/v1/fleet?stale_after_s=0')" = 400
curl -s --cacert "$CA" -H "Authorization: Bearer $(cat "$D/var/api.key")" "https://127.0.0.1:$PUB/metrics" >"$T/metrics"
check "metrics: stale devices" test "$(m mdmd_devices_stale)" = 1

# --- mdmctl ---
CTL=("$BIN/mdmctl" --url "https://127.0.0.1:$PUB" --key-file "$D/var/api.key" --cacert "$CA")
Z=$(cmd '"Q-2"' ProfileList)
check "mdmctl pending: a table with the state" bash -c "'${CTL[0]}' ${CTL[*]:1} pending Q-2 | grep -q '$Z *ProfileList *queued'"
check "mdmctl enqueue --urgent goes to the head" bash -c \
    "'${CTL[0]}' ${CTL[*]:1} enqueue --udid Q-2 --urgent --json '{\"RequestType\":\"DeviceLock\"}' >/dev/null && \
     '${CTL[0]}' ${CTL[*]:1} pending Q-2 | sed -n 2p | grep -q DeviceLock"
check "mdmctl cancel UDID UUID" bash -c "'${CTL[0]}' ${CTL[*]:1} cancel Q-2 $Z >/dev/null && ! '${CTL[0]}' ${CTL[*]:1} pending Q-2 | grep -q $Z"
check "mdmctl cancel UUID: a job" bash -c "'${CTL[0]}' ${CTL[*]:1} cancel $Z 2>/dev/null | grep -q job_id"
check "mdmctl webhooks" bash -c "'${CTL[0]}' ${CTL[*]:1} webhooks | grep -q '/hook'"
check "mdmctl replay" bash -c "'${CTL[0]}' ${CTL[*]:1} replay | grep -q 'replaying 0 dead letters'"
check "mdmctl pushes" bash -c "'${CTL[0]}' ${CTL[*]:1} pushes P-1 | grep -q apns_id"
check "mdmctl stale" bash -c "'${CTL[0]}' ${CTL[*]:1} stale | grep -q OLD-1"

# --- expiry guards: a 2-day push certificate, 10-day server and SCEP RA certificates ---
curl -s --cacert "$CA" -H "Authorization: Bearer $(cat "$D/var/api.key")" "https://127.0.0.1:$PUB/metrics" >"$T/metrics"
check "days left: push certificate 1" test "$(m 'mdmd_cert_expiry_days{cert="apns"}')" = 1
check "days left: server certificate 9" test "$(m 'mdmd_cert_expiry_days{cert="server"}')" = 9
check "days left: SCEP RA 9" test "$(m 'mdmd_cert_expiry_days{cert="scep_ra"}')" = 9
check "days left: the MDM CA, years" bash -c "[ '$(m 'mdmd_cert_expiry_days{cert="ca"}')' -gt 3000 ]"
check "a warning in the log for each" bash -c "grep -q 'event=cert_expiring what=apns days_left=1' '$T/mdmd.log' && grep -q 'event=cert_expiring what=server days_left=9' '$T/mdmd.log' && ! grep -q 'cert_expiring what=ca ' '$T/mdmd.log'"
xrange_all mdm:events >"$T/evdump"
# what/not_after/threshold of each cert_expiring event (mdmd renews a server or
# RA certificate this close to expiry at each start: a new certificate, a new event).
awk '/^cert_expiring$/{e=1} e&&/^what$/{getline w} e&&/^not_after$/{getline n} e&&/^threshold_days$/{getline t} e&&/^time$/{print w, n, t; e=0}' "$T/evdump" | sort >"$T/expev"
check "cert_expiring events: the push certificate once (threshold 1), across the restart" \
    test "$(awk '$1=="apns"{print $3}' "$T/expev" | tr '\n' ' ')" = "1 "
check "server and RA: threshold 14, one event per certificate" bash -c \
    "[ \$(awk '\$1==\"server\"||\$1==\"scep_ra\"' '$T/expev' | wc -l) -ge 2 ] && ! awk '\$1!=\"apns\" && \$3!=14' '$T/expev' | grep -q . && [ -z \"\$(uniq -d '$T/expev')\" ]"

check "no sanitizer report" bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$T/mdmd.log'"
finish

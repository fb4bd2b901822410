#!/usr/bin/env bash
# The dashboard's aggregates and the console's live feed and queue surgery
# (issue 19).  REST first: devices by OS version (mdm:os, kept by the
# check-in scripts), command results and push outcomes per minute
# (mdm:rate:*, with a TTL); then test/browser/fleetui.mjs in headless
# Chromium: the live feed shows an event as it happens, the charts are drawn,
# and a device's queue is inspected, cut and cancelled from its page
# (screenshots console-dashboard-live.png, console-queue.png in $T).
. "$(dirname "$0")/lib.sh"

make_push_pki || { fail "push PKI"; finish; }
start_mock_apns || { fail "mock APNs starts"; finish; }
start_redis || { fail "redis starts"; finish; }
D=$T/a
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT" "push_coalesce_ms 0" "repush_after_s 0" \
    "feed_poll_ms 100" "notnow_repush_s 0"
apns_conf >>"$D/mdmd.conf"
start_mdmd "$D" || { fail "mdmd starts"; finish; }
check "mdmd is up with Redis" wait_for 30 out_is 200 http_code "https://127.0.0.1:$PUB/healthz" --cacert "$CA"

enroll_os() { # NAME UDID OSVERSION: enrolled under the push certificate's topic
    make_client_cert "$1" "$CA" "$D/var/ca/ca.key" "$2" || return 1
    plist_msg "$T/$1.auth" MessageType Authenticate UDID "$2" Topic "$TOPIC" OSVersion "$3" \
        ProductName iPhone15,2 SerialNumber "SN-$2"
    [ "$(mdm_put /mdm/checkin "$1" "$T/$1.auth" application/x-apple-aspen-mdm-checkin)" = 200 ] || return 1
    plist_msg "$T/$1.tok" MessageType TokenUpdate UDID "$2" Topic "$TOPIC" PushMagic "MAGIC-$2" \
        Token "<data>$(head -c 32 /dev/urandom | base64)</data>"
    [ "$(mdm_put /mdm/checkin "$1" "$T/$1.tok" application/x-apple-aspen-mdm-checkin)" = 200 ]
}
enroll_os q1 Q-1 17.5 && enroll_os q2 Q-2 17.5 && enroll_os q3 Q-3 17.5 || fail "devices enroll"
charts() { api GET '/v1/fleet?charts=1' >/dev/null; python3 -c "import json,sys; d=json.load(open('$T/api')); print($1)"; }
check "OS versions: three on 17.5" test "$(charts 'json.dumps(d["os_versions"], sort_keys=True)')" = '{"17.5": 3}'
# Q-3 updates (its DeviceInformation answer), then checks out.
cmd() { api POST /v1/commands "{\"udids\":[$1],\"command\":{\"RequestType\":\"$2\"}}" >/dev/null; jget "$T/api" command_uuid; }
api POST /v1/commands '{"udids":["Q-3"],"command":{"RequestType":"DeviceInformation","Queries":["OSVersion"]}}' >/dev/null
I=$(jget "$T/api" command_uuid)
poll q3 Q-3 Idle
poll q3 Q-3 Acknowledged "$I" QueryResponses '<dict><key>OSVersion</key><string>18.1</string></dict>'
check "a DeviceInformation answer moves the device to 18.1" test \
    "$(charts 'json.dumps(d["os_versions"], sort_keys=True)')" = '{"17.5": 2, "18.1": 1}'
plist_msg "$T/q3.co" MessageType CheckOut UDID Q-3 Topic "$TOPIC"
mdm_put /mdm/checkin q3 "$T/q3.co" application/x-apple-aspen-mdm-checkin >/dev/null
check "a checked-out device leaves the count" test "$(charts 'json.dumps(d["os_versions"], sort_keys=True)')" = '{"17.5": 2}'
enroll_os q3 Q-3 18.1 || fail "Q-3 enrolls again"
check "it is counted again when it comes back" test \
    "$(charts 'json.dumps(d["os_versions"], sort_keys=True)')" = '{"17.5": 2, "18.1": 1}'

# Command results and push outcomes this minute.
E=$(cmd '"Q-2"' ProfileList); N=$(cmd '"Q-2"' CertificateList)
poll q2 Q-2 Idle; poll q2 Q-2 Error "$E"; poll q2 Q-2 NotNow "$N"
check "commands per minute: 60 minutes, oldest first" test "$(charts 'len(d["commands_per_minute"])')" = 60
check "this minute: 1 Acknowledged, 1 Error, 1 NotNow" bash -c "[ \"\$(python3 -c \"import json; d=json.load(open('$T/api')); n={}
for m in d['commands_per_minute'][-2:]:
    for k, v in m['n'].items(): n[k] = n.get(k, 0) + v
print(json.dumps(n, sort_keys=True))\")\" = '{\"Acknowledged\": 1, \"Error\": 1, \"NotNow\": 1}' ]"
pushes_ok() { charts 'sum(m["n"].get("ok", 0) for m in d["pushes_per_minute"])'; }
check "pushes per minute: each push the mock APNs accepted" wait_for 10 out_is "$(wc -l <"$T/pushes")" pushes_ok
K=$(R keys 'mdm:rate:cmd:*' | head -1)
check "a per-minute counter expires (TTL at most 2 h)" bash -c "t=\$(redis-cli -p $REDIS_PORT ttl '$K'); [ \$t -gt 7000 ] && [ \$t -le 7200 ]"
check "without charts=1 (and for /metrics) no chart data" test "$(api GET /v1/fleet >/dev/null; grep -c os_versions "$T/api")" = 0

# --- the browser ---
if [ ! -x /usr/bin/chromium ] || [ ! -d "$TOP/test/browser/node_modules/playwright-core" ]; then
    echo "SKIP: the browser part needs /usr/bin/chromium and playwright-core (make deps)"
    finish
fi
api POST /v1/users '{"username":"admin","password":"admin-pw-123","role":"admin"}' >/dev/null
# Q-1: a command sent and NotNow'd, two waiting; X is queued on Q-2 too.
A1=$(cmd '"Q-1"' ProfileList); A2=$(cmd '"Q-1"' SecurityInfo); X=$(cmd '"Q-1","Q-2"' InstalledApplicationList)
poll q1 Q-1 Idle; poll q1 Q-1 NotNow "$A1"
BASE="https://127.0.0.1:$PUB" ADMIN_USER=admin ADMIN_PASS=admin-pw-123 UDID=Q-1 UDID2=Q-2 X_UUID=$X \
    REDIS_PORT=$REDIS_PORT SHOTDIR=$T PROFILE_DIR="$T/chromium-profile" \
    timeout 150 node "$TOP/test/browser/fleetui.mjs" >"$T/browser.log" 2>&1
rc=$?
while IFS= read -r line; do
    case "$line" in
        "ok   "*) ok "browser: ${line#ok   }" ;;
        "FAIL "*) fail "browser: ${line#FAIL }" ;;
        "     ("*) echo "$line" ;;
    esac
done <"$T/browser.log"
check "the browser test ran to its end" test "$rc" = 0 || tail -n 20 "$T/browser.log"
check "screenshots saved" bash -c "[ -s '$T/console-dashboard-live.png' ] && [ -s '$T/console-queue.png' ]"
check "the delete and the cancel reached Redis" bash -c \
    "! redis-cli -p $REDIS_PORT lrange 'mdm:q:{Q-1}' 0 -1 | grep -q '$X' && ! redis-cli -p $REDIS_PORT lrange 'mdm:q:{Q-2}' 0 -1 | grep -q '$X' && [ \$(redis-cli -p $REDIS_PORT llen 'mdm:q:{Q-1}') = 2 ]"
check "no sanitizer report" bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$T/mdmd.log'"
finish

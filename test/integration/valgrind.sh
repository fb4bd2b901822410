#!/usr/bin/env bash
# One short run of the release build under valgrind: start, enroll a device,
# a command cycle, admin reads, declarative management, a Redis outage, SIGTERM.  Passes only when
# valgrind reports no errors and no definite or indirect leaks.
. "$(dirname "$0")/lib.sh"
RBIN=$TOP/bin
if ! command -v valgrind >/dev/null || [ ! -x "$RBIN/mdmd" ]; then
    echo "skip: valgrind or the release build ($RBIN/mdmd) is missing"; finish
fi
start_redis || { fail "redis starts"; finish; }
D=$T/a
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT" "redis_timeout_ms 5000"
rm -f "$D/ports"
(cd "$D" && exec valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
    --show-leak-kinds=definite,indirect --log-file="$T/valgrind.log" "$RBIN/mdmd" -c "$D/mdmd.conf") >>"$T/mdmd.log" 2>&1 &
MDMD_PID=$!; PIDS+=("$MDMD_PID")
wait_for 120 test -s "$D/ports" || { fail "mdmd starts under valgrind"; finish; }
PUB=$(awk '$1=="listen"{print $2}' "$D/ports"); MDM=$(awk '$1=="mdm_listen"{print $2}' "$D/ports")
CA="$D/var/ca/ca.crt"
# 90 s: valgrind runs one thread at a time, and the first start's RSA key
# generation on the crypto worker shares that lane with the loop (a full
# make test on 2 busy cores once took over 30 s to the first answer).
check "healthz under valgrind" wait_for 90 out_is 200 http_code https://127.0.0.1:$PUB/healthz --cacert "$CA"
U=VG-1
check "a device enrolls" enroll_device v1 $U
api POST /v1/commands '{"udids":["'$U'"],"command":{"RequestType":"DeviceInformation","Queries":["DeviceName"]}}' >/dev/null
C=$(jget "$T/api" command_uuid)
poll v1 $U Idle
check "the command is delivered" test "$NEXT" = "$C"
poll v1 $U Acknowledged "$C" QueryResponses "<dict><key>DeviceName</key><string>x</string></dict>"
check "the result is stored" test "$CODE" = 200
# Polled: under valgrind the SCEP RA key generated at startup holds the crypto
# worker, which also converts the history to JSON, for 8-15 s (RSA key
# generation time varies): one 10 s try was a coin toss.
check "history reads back" wait_for 40 out_is 200 api GET "/v1/devices/$U/commands"
check "device list" test "$(api GET /v1/devices)" = 200
# Declarative management: every path once (a refusal, a walk, each endpoint, a status report).
ddmreq() {
    plist_msg "$T/ddm" MessageType DeclarativeManagement UDID $U Endpoint "$1" ${2:+Data "<data>$(printf '%s' "$2" | base64 -w0)</data>"}
    mdm_put /mdm/checkin v1 "$T/ddm" application/x-apple-aspen-mdm-checkin
}
check "a bad declaration is refused" test "$(api PUT /v1/declarations/vg.bad '{"Type":"com.apple.configuration.passcode.settings","Identifier":"vg.bad","Payload":{"MinimumLength":"x"}}')" = 400
check "a declaration is stored" test "$(api PUT /v1/declarations/vg.pass '{"Type":"com.apple.configuration.passcode.settings","Identifier":"vg.pass","Payload":{"MinimumLength":6}}')" = 201
api PUT /v1/declaration-sets/vg '{"declarations":["vg.pass"]}' >/dev/null
check "an assignment starts a walk" test "$(api PUT /v1/declaration-sets/vg/assignment '{"udids":["'$U'"]}')" = 200
check "the walk queues DeclarativeManagement" wait_for 20 bash -c "[ \"\$(redis-cli -p $REDIS_PORT llen 'mdm:q:{$U}')\" = 1 ]"
check "tokens, items, a declaration" bash -c "[ $(ddmreq tokens) = 200 ] && [ $(ddmreq declaration-items) = 200 ] && [ $(ddmreq declaration/configuration/vg.pass) = 200 ] && [ $(ddmreq declaration/configuration/nope) = 404 ]"
check "a status report" test "$(ddmreq status '{"StatusItems":{"device":{"operating-system":{"version":"17.5"}},"management":{"declarations":{"configurations":[{"identifier":"vg.pass","server-token":"x","active":true,"valid":"valid"}]}}},"Errors":[],"FullReport":true}')" = 200
check "status and fleet read back" bash -c "[ $(api GET /v1/devices/$U/status) = 200 ] && [ $(api GET '/v1/ddm/status?item=device.operating-system.version&value=17.5') = 200 ] && [ $(api GET '/v1/ddm/status?failed=1') = 200 ]"
printf 'data' >"$T/asset"
check "asset data stored and fetched by the device" bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' --cacert '$CA' -X PUT -H 'Authorization: Bearer $(cat "$D/var/api.key")' --data-binary @'$T/asset' https://127.0.0.1:$PUB/v1/assets/vg.txt) = 201 ] && [ \$(curl -s -o '$T/asset.out' -w '%{http_code}' --cacert '$CA' --cert '$T/v1.crt' --key '$T/v1.key' https://127.0.0.1:$MDM/v1/assets/vg.txt) = 200 ] && cmp -s '$T/asset' '$T/asset.out'"
check "lists and deletes" bash -c "[ $(api GET /v1/declarations) = 200 ] && [ $(api GET /v1/declaration-sets/vg) = 200 ] && [ $(api DELETE /v1/declaration-sets/vg) = 204 ] && [ $(api DELETE /v1/declarations/vg.pass) = 204 ]"
printf 'garbage' >"$T/g"
check "a malformed body is refused" test "$(mdm_put /mdm/connect v1 "$T/g")" = 400
stop_redis
check "Redis down: 503" wait_for 10 out_is 503 http_code https://127.0.0.1:$PUB/healthz --cacert "$CA"
start_redis "$REDIS_PORT"
check "Redis back: 200" wait_for 10 out_is 200 http_code https://127.0.0.1:$PUB/healthz --cacert "$CA"
kill -TERM "$MDMD_PID"; wait "$MDMD_PID"; rc=$?
check "valgrind: no errors, no definite or indirect leaks (exit $rc)" test "$rc" = 0
[ "$rc" != 0 ] && head -n 60 "$T/valgrind.log"
finish

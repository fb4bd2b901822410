#!/usr/bin/env bash
# One short run of the release build under valgrind: start, enroll a device,
# a command cycle, admin reads, a Redis outage, SIGTERM.  Passes only when
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
check "healthz under valgrind" wait_for 30 out_is 200 http_code https://127.0.0.1:$PUB/healthz --cacert "$CA"
U=VG-1
check "a device enrolls" enroll_device v1 $U
api POST /v1/commands '{"udids":["'$U'"],"command":{"RequestType":"DeviceInformation","Queries":["DeviceName"]}}' >/dev/null
C=$(jget "$T/api" command_uuid)
poll v1 $U Idle
check "the command is delivered" test "$NEXT" = "$C"
poll v1 $U Acknowledged "$C" QueryResponses "<dict><key>DeviceName</key><string>x</string></dict>"
check "the result is stored" test "$CODE" = 200
check "history reads back" test "$(api GET "/v1/devices/$U/commands")" = 200
check "device list" test "$(api GET /v1/devices)" = 200
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

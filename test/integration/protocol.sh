#!/usr/bin/env bash
# The MDM check-in and command protocol over real mutual TLS, against a real
# Redis (with AOF, so it can be killed and restarted), plus the admin API.
. "$(dirname "$0")/lib.sh"
FIX=$TOP/../shared/fixtures/nanomdm

REDIS_PORT=$(free_port)
mkdir -p "$T/redis"
start_aof_redis() {
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly yes \
        --appendfsync always --dir "$T/redis" --daemonize no >>"$T/redis.log" 2>&1 &
    REDIS_PID=$!; PIDS+=("$REDIS_PID")
    wait_for 5 redis-cli -p "$REDIS_PORT" ping
}
# On a Redis Cluster (CLUSTER_SEEDS, cluster.sh) the suite runs on it; the
# Redis restart below is then cluster.sh's failover instead.
if [ -n "${CLUSTER_SEEDS:-}" ]; then start_redis; else start_aof_redis; fi || { fail "redis starts"; finish; }
D=$T/a
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT" "max_body_size 65536" "redis_history_len 50"
start_mdmd "$D" || { fail "mdmd starts"; finish; }
check "api.key created with mode 0600" test "$(stat -c %a "$D/var/api.key")" = 600

# --- enrollment by check-in ---
U=SIM-PROTO-1
check "Authenticate + TokenUpdate answer 200" enroll_device d1 $U
check "device is enrolled" test "$(R hget "mdm:dev:{$U}" state)" = enrolled
check "token stored as lowercase hex" \
    test "$(R hget "mdm:dev:{$U}" token)" = 47e8eec062c2f729ec1703c1b3e18f1971d85f00be76445d34080baa701b5f51
check "push magic stored" test "$(R hget "mdm:dev:{$U}" push_magic)" = "MAGIC-$U"
check "serial from Authenticate stored" test "$(R hget "mdm:dev:{$U}" serial_number)" = "SN-$U"
check "enrolled event written" evgrep -q '^enrolled$'
check "device in mdm:devices" test -n "$(R zscore "$(bkey mdm:devices $U)" $U)"

# --- admin API ---
check "no key: 401" test "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" https://127.0.0.1:$PUB/v1/devices)" = 401
check "wrong key: 401" test "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" -H 'Authorization: Bearer nope' https://127.0.0.1:$PUB/v1/devices)" = 401
check "bad JSON: 400" test "$(api POST /v1/commands '{"udids":')" = 400
check "missing RequestType: 400" test "$(api POST /v1/commands '{"udids":["'$U'"],"command":{}}')" = 400
check "unknown RequestType: 400" test "$(api POST /v1/commands '{"udids":["'$U'"],"command":{"RequestType":"MakeCoffee"}}')" = 400
check "missing required key: 400 naming it" bash -c "test \"\$(cd / && true)\" = '' && [ $(api POST /v1/commands '{"udids":["'$U'"],"command":{"RequestType":"InstallProfile"}}') = 400 ] && grep -q Payload '$T/api'"
check "wrong key type: 400" test "$(api POST /v1/commands '{"udids":["'$U'"],"command":{"RequestType":"DeviceLock","Message":5}}')" = 400
check "unknown device: 404" test "$(api GET /v1/devices/NOPE)" = 404
check "no udids: 400" test "$(api POST /v1/commands '{"udids":[],"command":{"RequestType":"DeviceInformation"}}')" = 400

code=$(api POST /v1/commands '{"udids":["'$U'","GHOST-1"],"command":{"RequestType":"DeviceInformation","Queries":["DeviceName","OSVersion"]}}')
C1=$(jget "$T/api" command_uuid)
check "enqueue answers 201" test "$code" = 201
check "enqueue counts queued and unknown" bash -c "grep -q '\"queued\":1' '$T/api' && grep -q '\"unknown_udids\":\[\"GHOST-1\"\]' '$T/api'"
check "command stored once" test "$(R hget mdm:cmd:$C1 request_type)" = DeviceInformation
check "queued for the device" test "$(R lrange "mdm:q:{$U}" 0 -1)" = "$C1"

# --- command cycle ---
poll d1 $U Idle
check "Idle gets the queued command" test "$CODE:$NEXT" = "200:$C1"
check "command carries RequestType and Queries" bash -c "grep -q DeviceInformation '$T/resp' && grep -q OSVersion '$T/resp'"
poll d1 $U Acknowledged "$C1" QueryResponses "<dict><key>DeviceName</key><string>Kim's phone</string><key>OSVersion</key><string>17.5.1</string><key>BatteryLevel</key><real>0.5</real></dict>"
check "Acknowledged: 200 and nothing left" test "$CODE:$NEXT:$(wc -c <"$T/resp")" = "200::0"
check "queue empty" test "$(R llen "mdm:q:{$U}")" = 0
check "history has the result" test "$(R xrevrange "mdm:res:{$U}" + - count 1 | grep -a -A1 -x status | tail -1)" = Acknowledged
check "DeviceInformation updates the record" test "$(R hget "mdm:dev:{$U}" os_version)" = 17.5.1
check "battery level recorded" test "$(R hget "mdm:dev:{$U}" battery_level)" = 0.5
check "history via REST, newest first, result as JSON" bash -c "[ $(api GET "/v1/devices/$U/commands") = 200 ] && grep -q '\"DeviceName\":\"Kim' '$T/api' && grep -q '\"status\":\"Acknowledged\"' '$T/api'"

# --- NotNow ---
api POST /v1/commands '{"udids":["'$U'"],"command":{"RequestType":"ProfileList"}}' >/dev/null; A=$(jget "$T/api" command_uuid)
api POST /v1/commands '{"udids":["'$U'"],"command":{"RequestType":"SecurityInfo"}}' >/dev/null; B=$(jget "$T/api" command_uuid)
poll d1 $U Idle;            check "Idle -> A" test "$NEXT" = "$A"
poll d1 $U NotNow "$A";     check "NotNow A -> B" test "$NEXT" = "$B"
poll d1 $U NotNow "$B";     check "NotNow B -> nothing" test "$CODE:$NEXT" = "200:"
check "both still queued and marked" test "$(R llen "mdm:q:{$U}"):$(R scard "mdm:notnow:{$U}")" = 2:2
poll d1 $U Idle;            check "Idle brings A back" test "$NEXT" = "$A"
check "marks cleared by Idle" test "$(R scard "mdm:notnow:{$U}")" = 0
poll d1 $U Error "$A" ErrorChain "<array><dict><key>ErrorCode</key><integer>12021</integer><key>ErrorDomain</key><string>MCMDMErrorDomain</string><key>LocalizedDescription</key><string>No</string><key>USEnglishDescription</key><string>No</string></dict></array>"
check "Error finishes A and sends B" test "$NEXT" = "$B"
check "error chain stored as JSON" bash -c "redis-cli -p $REDIS_PORT xrevrange 'mdm:res:{$U}' + - count 1 | grep -q '\"ErrorCode\":12021'"
poll d1 $U CommandFormatError "$B"
check "CommandFormatError finishes B" test "$CODE:$NEXT:$(R llen "mdm:q:{$U}")" = "200::0"
check "CommandFormatError recorded" bash -c "redis-cli -p $REDIS_PORT xrevrange 'mdm:res:{$U}' + - count 1 | grep -qx CommandFormatError"
# The fleet writes of connect.lua land in the device's bucket (cluster
# layout: by fleet_apply.lua after the answer, so polled).
check "command_finished in the device's event stream" wait_for 5 bash -c \
    "redis-cli -p $REDIS_PORT xrange '$(bkey mdm:events "$U")' - + | grep -q -x SecurityInfo"
rate_seen() { # the CommandFormatError of this minute or the last one, in $U's bucket
    local m=$(( $(date +%s) / 60 ))
    [ "$(R hget "$(bkey mdm:rate:cmd:$m "$U")" CommandFormatError)" = 1 ] ||
        [ "$(R hget "$(bkey mdm:rate:cmd:$((m - 1)) "$U")" CommandFormatError)" = 1 ]
}
check "the minute's command outcomes counted in the device's bucket" wait_for 5 rate_seen
# A queued command whose body expired is dropped on the way to the next.
api POST /v1/commands '{"udids":["'$U'"],"command":{"RequestType":"ProfileList"}}' >/dev/null; A=$(jget "$T/api" command_uuid)
api POST /v1/commands '{"udids":["'$U'"],"command":{"RequestType":"SecurityInfo"}}' >/dev/null; B=$(jget "$T/api" command_uuid)
R del "mdm:cmd:$A" >/dev/null
# (the cluster layout tells an expired body by when the device was given it)
layout_cluster && R zadd "mdm:cmdto:{$U}" 1 "$A" >/dev/null
poll d1 $U Idle

check "an expired body is passed over: the next one sent, the dead one dropped" \
    test "$NEXT:$(R lrange "mdm:q:{$U}" 0 -1)" = "$B:$B"
poll d1 $U Acknowledged "$B"
check "queue empty again" test "$CODE:$NEXT:$(R llen "mdm:q:{$U}")" = "200::0"
if layout_cluster; then
    # A body that a node does not return though the device was given the
    # command just now (a master back empty after a failover, before it
    # learnt it lost its slots) is not taken for expired: 503, the command
    # stays queued, and it is sent once its body can be read again.
    api POST /v1/commands '{"udids":["'$U'"],"command":{"RequestType":"CertificateList"}}' >/dev/null
    C=$(jget "$T/api" command_uuid)
    R rename "mdm:cmd:$C" "{mdm:cmd:$C}.away" >/dev/null # the same slot
    poll d1 $U Idle
    check "a body unreadable, not expired: 503, still queued" test "$CODE:$(R lrange "mdm:q:{$U}" 0 -1)" = "503:$C"
    R rename "{mdm:cmd:$C}.away" "mdm:cmd:$C" >/dev/null
    poll d1 $U Idle
    check "  sent once it can be read" test "$CODE:$NEXT" = "200:$C"
    poll d1 $U Acknowledged "$C"
fi
poll d1 $U Acknowledged 11111111-2222-3333-4444-555555555555
check "result for an unknown UUID: 200, stored as not queued" \
    bash -c "[ $CODE = 200 ] && redis-cli -p $REDIS_PORT xrevrange 'mdm:res:{$U}' + - count 1 | grep -a -A1 -x queued | tail -1 | grep -qx 0"

# --- bad input changes nothing ---
api POST /v1/commands '{"udids":["'$U'"],"command":{"RequestType":"DeviceLock","Message":"hi"}}' >/dev/null; L=$(jget "$T/api" command_uuid)
before=$(R --no-raw dump "mdm:q:{$U}"; R xlen "mdm:res:{$U}"; R hget "mdm:dev:{$U}" last_seen)
printf '<?xml version="1.0"?><plist><dict><key>UDID</key><string>%s' $U >"$T/bad.plist"
check "malformed plist: 400" test "$(mdm_put /mdm/connect d1 "$T/bad.plist")" = 400
plist_msg "$T/nostatus.plist" UDID $U
check "missing Status: 400" test "$(mdm_put /mdm/connect d1 "$T/nostatus.plist")" = 400
plist_msg "$T/noid.plist" UDID $U Status Acknowledged
check "Acknowledged without CommandUUID: 400" test "$(mdm_put /mdm/connect d1 "$T/noid.plist")" = 400
head -c 100000 /dev/zero | tr '\0' 'x' >"$T/big.plist"
check "body over max_body_size: 413" test "$(mdm_put /mdm/connect d1 "$T/big.plist")" = 413
make_client_cert other "$CA" "$D/var/ca/ca.key" SIM-OTHER
plist_msg "$T/other.plist" UDID $U Status Idle
check "CN differs from UDID: 403" test "$(mdm_put /mdm/connect other "$T/other.plist")" = 403
check "logged as cn_mismatch" grep -q "event=device_refused udid=$U .*reason=cn_mismatch" "$T/mdmd.log"
plist_msg "$T/other-auth.plist" MessageType Authenticate UDID $U Topic x
check "CN differs from UDID at Authenticate: 403" \
    test "$(mdm_put /mdm/checkin other "$T/other-auth.plist" application/x-apple-aspen-mdm-checkin)" = 403
make_client_cert d1b "$CA" "$D/var/ca/ca.key" $U
plist_msg "$T/d1b.plist" UDID $U Status Idle
check "same CN, not the certificate bound at Authenticate: 403" test "$(mdm_put /mdm/connect d1b "$T/d1b.plist")" = 403
plist_msg "$T/ghost.plist" UDID SIM-OTHER Status Idle
check "unknown device: 403" test "$(mdm_put /mdm/connect other "$T/ghost.plist")" = 403
after=$(R --no-raw dump "mdm:q:{$U}"; R xlen "mdm:res:{$U}"; R hget "mdm:dev:{$U}" last_seen)
check "refused requests changed nothing in Redis" test "$before" = "$after"
check "refusals are logged with a reason" grep -q 'event=device_refused udid=SIM-PROTO-1 .*reason=cert_mismatch' "$T/mdmd.log"
check "never 401 on the MDM listener" bash -c "! grep -q 'status=401' '$T/mdmd.log'"

# --- a binary plist whose string holds a NUL byte (libplist would abort) ---
check "NUL inside a binary plist string: 400" test "$(mdm_put /mdm/connect d1 "$TOP/test/fuzz/regress/mdm_body/nul-in-binary-string.bplist")" = 400
printf '<plist><dict><key>UDID</key><string>%s\0x</string><key>Status</key><string>Idle</string></dict></plist>' $U >"$T/nul.xml"
check "raw NUL inside an XML string: 400" test "$(mdm_put /mdm/connect d1 "$T/nul.xml")" = 400
check "and mdmd is still serving" test "$(http_code https://127.0.0.1:$PUB/healthz --cacert "$CA")" = 200

# --- binary plist, single /mdm endpoint ---
plist_msg "$T/idle.xml" UDID $U Status Idle
plistutil -i "$T/idle.xml" -o "$T/idle.bin" -f bin 2>/dev/null || plistutil -i "$T/idle.xml" -o "$T/idle.bin"
check "binary plist accepted on /mdm" bash -c "[ \$(head -c 6 '$T/idle.bin') = bplist ] && [ $(mdm_put /mdm d1 "$T/idle.bin") = 200 ] && grep -q '$L' '$T/resp'"

# --- answer heads: one Date (made once a second by http.c, RFC 1123, GMT) ---
curl -si --cacert "$CA" --cert "$T/d1.crt" --key "$T/d1.key" -X PUT --data-binary @"$T/idle.xml" \
    https://127.0.0.1:$MDM/mdm/connect | tr -d '\r' >"$T/head"
check "MDM answer: exactly one Date header, RFC 1123 GMT" bash -c "[ \$(grep -ci '^date:' '$T/head') = 1 ] && grep -qE '^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT$' '$T/head'"
check "MDM answer: HTTP/1.1 200 with Content-Length" bash -c "head -1 '$T/head' | grep -q '^HTTP/1.1 200' && grep -qi '^content-length: [0-9]' '$T/head'"
curl -si --http1.0 --cacert "$CA" https://127.0.0.1:$PUB/healthz | tr -d '\r' >"$T/head10"
check "HTTP/1.0 answer: no Date header, as evhttp answers it" bash -c "head -1 '$T/head10' | grep -q ' 200' && ! grep -qi '^date:' '$T/head10'"

# --- Redis restarted between enqueue and poll: nothing lost ---
if [ -z "${CLUSTER_SEEDS:-}" ]; then
kill -9 "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null
poll d1 $U Idle
check "Redis down: device gets 503, not 401/403" test "$CODE" = 503
start_aof_redis
check "after Redis restart the queued command is still sent" wait_for 5 bash -c "[ \$(curl -s -o '$T/r2' -w '%{http_code}' --cacert '$CA' --cert '$T/d1.crt' --key '$T/d1.key' -X PUT --data-binary @'$T/idle.xml' https://127.0.0.1:$MDM/mdm/connect) = 200 ] && grep -q '$L' '$T/r2'"
fi
poll d1 $U Acknowledged "$L"
check "and finishes normally" test "$CODE:$NEXT:$(R llen "mdm:q:{$U}")" = "200::0"

# --- queue clear, re-enrollment, checkout ---
api POST /v1/commands '{"udids":["'$U'"],"command":{"RequestType":"RestartDevice"}}' >/dev/null
check "GET device shows the queue" bash -c "[ $(api GET /v1/devices/$U) = 200 ] && grep -q RestartDevice <(redis-cli -p $REDIS_PORT hget mdm:cmd:\$(grep -o '\"queue\":\[\"[^\"]*' '$T/api' | cut -d'\"' -f4) request_type)"
check "DELETE queue answers dropped:1" bash -c "[ $(api DELETE /v1/devices/$U/commands) = 200 ] && grep -q '\"dropped\":1' '$T/api'"
check "queue empty after DELETE" test "$(R llen "mdm:q:{$U}")" = 0
api POST /v1/commands '{"udids":["'$U'"],"command":{"RequestType":"RestartDevice"}}' >/dev/null
hist=$(R xlen "mdm:res:{$U}")
check "re-Authenticate answers 200" test "$(mdm_put /mdm/checkin d1 "$T/d1.auth" application/x-apple-aspen-mdm-checkin)" = 200
check "re-Authenticate dropped the queue, kept history" test "$(R llen "mdm:q:{$U}"):$(R xlen "mdm:res:{$U}")" = "0:$hist"
check "state back to authenticated" test "$(R hget "mdm:dev:{$U}" state)" = authenticated
plist_msg "$T/out.plist" MessageType CheckOut UDID $U Topic com.apple.mgmt.test
check "CheckOut answers 200" test "$(mdm_put /mdm/checkin d1 "$T/out.plist" application/x-apple-aspen-mdm-checkin)" = 200
check "checked out, history kept" test "$(R hget "mdm:dev:{$U}" state):$(R xlen "mdm:res:{$U}")" = "checked_out:$hist"
poll d1 $U Idle
check "checked-out device: 403" test "$CODE" = 403
plist_msg "$T/ua.plist" MessageType UserAuthenticate UDID $U
check "UserAuthenticate: 410" test "$(mdm_put /mdm/checkin d1 "$T/ua.plist" application/x-apple-aspen-mdm-checkin)" = 410
check "devices list pages" bash -c "[ $(api GET '/v1/devices?limit=1') = 200 ] && grep -q '\"total\":1' '$T/api'"
check "devices list filters by state" bash -c "[ $(api GET '/v1/devices?state=enrolled') = 200 ] && grep -q '\"devices\":\[\]' '$T/api'"

# --- real device fixtures, as they are ---
if [ -d "$FIX" ]; then
    for pair in "ipad:663b07bb783e9ade1dae4fbb92ea12afc0ce5b69:1" "imac:66ADE930-5FDF-5EC4-8429-15640684C489:2"; do
        IFS=: read -r n u i <<<"$pair"
        make_client_cert "$n" "$CA" "$D/var/ca/ca.key" "$u"
        check "fixture Authenticate.$i accepted" test "$(mdm_put /mdm/checkin "$n" "$FIX/Authenticate.$i.plist" application/x-apple-aspen-mdm-checkin)" = 200
        check "fixture TokenUpdate.$i accepted" test "$(mdm_put /mdm/checkin "$n" "$FIX/TokenUpdate.$i.plist" application/x-apple-aspen-mdm-checkin)" = 200
        check "fixture $i enrolled" test "$(R hget "mdm:dev:{$u}" state)" = enrolled
    done
    check "fixture 1 token hex" test "$(R hget 'mdm:dev:{663b07bb783e9ade1dae4fbb92ea12afc0ce5b69}' token)" = \
        47e8eec062c2f729ec1703c1b3e18f1971d85f00be76445d34080baa701b5f51
    check "fixture 1 push magic" test "$(R hget 'mdm:dev:{663b07bb783e9ade1dae4fbb92ea12afc0ce5b69}' push_magic)" = CEFDF0BD-E342-4A27-8742-E930EA116B0A
    check "fixture 1 unlock token stored" test "$(R hget 'mdm:dev:{663b07bb783e9ade1dae4fbb92ea12afc0ce5b69}' unlock_token | head -c 8)" = 44415441
    check "fixture 1 topic" test "$(R hget 'mdm:dev:{663b07bb783e9ade1dae4fbb92ea12afc0ce5b69}' topic)" = com.apple.mgmt.External.e0bd1eac-1f17-4c8e-8a63-dd17d3dd35d9
    check "fixture 2 serial" test "$(R hget 'mdm:dev:{66ADE930-5FDF-5EC4-8429-15640684C489}' serial_number)" = C02MT66KFLHH
    check "fixture DeviceInformation.1 accepted" test "$(mdm_put /mdm/connect imac "$FIX/DeviceInformation.1.plist")" = 200
    check "fixture result in history" bash -c "redis-cli -p $REDIS_PORT xrange 'mdm:res:{66ADE930-5FDF-5EC4-8429-15640684C489}' - + | grep -q 76eda240-5488-4989-8339-f2ae160113c4"
else
    echo "skip: fixtures ($FIX) absent"
fi

# --- a raw command plist (for what JSON cannot express) ---
U2=SIM-PROTO-2
check "second device enrolls" enroll_device d2 $U2
cat >"$T/raw.plist" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>InstallProfile</string>
<key>Payload</key><data>PHBsaXN0Lz4=</data></dict></dict></plist>
XML
code=$(curl -s -o "$T/api" -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer $(cat "$D/var/api.key")" \
    -H 'Content-Type: application/x-apple-plist' --data-binary @"$T/raw.plist" "https://127.0.0.1:$PUB/v1/commands?udids=$U2")
RAW=$(jget "$T/api" command_uuid)
check "raw plist command accepted" test "$code" = 201
poll d2 $U2 Idle
check "raw plist command delivered with its data intact" bash -c "[ '$NEXT' = '$RAW' ] && grep -q 'PHBsaXN0Lz4=' '$T/resp'"
code=$(curl -s -o "$T/api" -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer $(cat "$D/var/api.key")" \
    -H 'Content-Type: application/x-apple-plist' --data-binary @"$T/raw.plist" "https://127.0.0.1:$PUB/v1/commands")
check "raw plist without ?udids: 400" test "$code" = 400

# --- mdmsim against the real server: NotNow and Error answers, ledger = Redis ---
SIM=("$BIN/mdmsim" --url "https://127.0.0.1:$MDM/mdm" --ca "$CA" --ca-key "$D/var/ca/ca.key"
     --identities "$T/ids" --udid-prefix LEDG -n 20 -c 8 -q)
"${SIM[@]}" >"$T/sim1.out" 2>&1
udids=$(seq -f '"LEDG-%06g"' 0 19 | paste -sd, -)
for rt in ProfileList SecurityInfo CertificateList; do
    api POST /v1/commands "{\"udids\":[$udids],\"command\":{\"RequestType\":\"$rt\"}}" >/dev/null
done
"${SIM[@]}" --skip-enroll --cycles 12 --notnow-rate 0.3 --error-rate 0.2 --seed 7 --ledger "$T/ledger" >"$T/sim2.out" 2>&1
check "mdmsim run without errors" grep -q 'http_errors=0 .*proto_errors=0' "$T/sim2.out"
check "every command finished once: 60 ledger lines" test "$(wc -l <"$T/ledger")" = 60
check "ledger has NotNow-free Errors and Acks" bash -c "grep -q ' Error$' '$T/ledger' && grep -q ' Acknowledged$' '$T/ledger'"
total=0; for i in $(seq 0 19); do total=$((total + $(R xlen "mdm:res:{LEDG-$(printf %06d $i)}"))); done
check "Redis history holds exactly the ledger's 60 results" test "$total" = 60
left=0; for i in $(seq 0 19); do left=$((left + $(R llen "mdm:q:{LEDG-$(printf %06d $i)}"))); done
check "all 20 queues drained" test "$left" = 0

kill -TERM "$MDMD_PID"; wait "$MDMD_PID"; rc=$?
check "SIGTERM exits 0" test "$rc" = 0
check "no sanitizer report" bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$T/mdmd.log'"
finish

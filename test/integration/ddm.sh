#!/usr/bin/env bash
# Declarative Device Management (docs/DDM.md), end to end over real mutual TLS
# against a real redis-server: declarations checked against Apple's schema,
# sets and assignment, the DeclarativeManagement check-in (tokens,
# declaration-items, declaration, status) with its sync-token semantics, the
# DeclarativeManagement command queued and pushed where a token moved, status
# folded per enrollment and across the fleet, a user channel apart from the
# device's, then mdmsim devices syncing on their own.
. "$(dirname "$0")/lib.sh"
NSIM=${DDM_DEVICES:-200}
start_redis || { fail "redis starts"; finish; }
D=$T/a
make_push_pki || { fail "push PKI"; finish; }
start_mock_apns || { fail "mock APNs starts"; finish; }
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT" "push_coalesce_ms 0"
apns_conf >>"$D/mdmd.conf"
start_mdmd "$D" || { fail "mdmd starts"; finish; }

# ddm_enroll NAME UDID: enroll_device with the push certificate's topic.
ddm_enroll() {
    local n=$1 u=$2
    make_client_cert "$n" "$CA" "$D/var/ca/ca.key" "$u" || return 1
    plist_msg "$T/$n.auth" MessageType Authenticate UDID "$u" Topic "$TOPIC" \
        SerialNumber "SN-$u" ProductName iPhone15,2 OSVersion 17.5 DeviceName "Phone $u"
    [ "$(mdm_put /mdm/checkin "$n" "$T/$n.auth" application/x-apple-aspen-mdm-checkin)" = 200 ] || return 1
    plist_msg "$T/$n.tok" MessageType TokenUpdate UDID "$u" Topic "$TOPIC" \
        PushMagic "MAGIC-$u" Token "<data>$(printf "%s" "$u" | openssl dgst -sha256 -binary | base64 -w0)</data>"
    [ "$(mdm_put /mdm/checkin "$n" "$T/$n.tok" application/x-apple-aspen-mdm-checkin)" = 200 ]
}

# ddm NAME UDID ENDPOINT [DATA-FILE [USERID]]: one DeclarativeManagement check-in.
ddm() {
    local n=$1 u=$2 ep=$3 data=${4:-} uid=${5:-}
    local extra=()
    [ -n "$data" ] && extra+=(Data "<data>$(base64 -w0 "$data")</data>")
    [ -n "$uid" ] && extra+=(UserID "$uid")
    plist_msg "$T/$n.ddm" MessageType DeclarativeManagement UDID "$u" Endpoint "$ep" "${extra[@]}"
    mdm_put /mdm/checkin "$n" "$T/$n.ddm" application/x-apple-aspen-mdm-checkin
}
jq_() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

U=SIM-DDM-1; V=SIM-DDM-2
check "device 1 enrolls" ddm_enroll d1 $U
check "device 2 enrolls" ddm_enroll d2 $V
check "nothing queued at enrollment without declarations" test "$(R llen "mdm:q:{$U}")" = 0

# --- declarations, checked against Apple's schema ---
SU='{"Type":"com.apple.configuration.softwareupdate.enforcement.specific","Identifier":"com.example.su","Payload":{"TargetOSVersion":"18.1","TargetLocalDateTime":"2026-12-31T18:00:00"}}'
check "softwareupdate enforcement declaration: 201" test "$(api PUT /v1/declarations/com.example.su "$SU")" = 201
check "the answer says created" grep -q '"created":true' "$T/api"
check "missing required key refused naming it" bash -c "[ $(api PUT /v1/declarations/bad1 '{"Type":"com.apple.configuration.softwareupdate.enforcement.specific","Identifier":"bad1","Payload":{"TargetOSVersion":"18.1"}}') = 400 ] && grep -q 'Payload.TargetLocalDateTime is required' '$T/api'"
check "wrong type refused naming the key" bash -c "[ $(api PUT /v1/declarations/bad2 '{"Type":"com.apple.configuration.passcode.settings","Identifier":"bad2","Payload":{"MinimumLength":"six"}}') = 400 ] && grep -q 'Payload.MinimumLength must be an integer' '$T/api'"
check "out of range refused naming the key" bash -c "[ $(api PUT /v1/declarations/bad3 '{"Type":"com.apple.configuration.passcode.settings","Identifier":"bad3","Payload":{"MinimumLength":99}}') = 400 ] && grep -q 'Payload.MinimumLength must be between 0 and 16' '$T/api'"
check "value not allowed refused naming the key" bash -c "[ $(api PUT /v1/declarations/bad4 '{"Type":"com.apple.configuration.management.test","Identifier":"bad4","Payload":{"Echo":"x","ReturnStatus":"Maybe"}}') = 400 ] && grep -q 'Payload.ReturnStatus must be one of: Installed, Failed, Unlocked' '$T/api'"
check "unknown key refused naming it" bash -c "[ $(api PUT /v1/declarations/bad5 '{"Type":"com.apple.configuration.passcode.settings","Identifier":"bad5","Payload":{"MinLength":4}}') = 400 ] && grep -q 'Payload.MinLength is not a key' '$T/api'"
check "nested key checked" bash -c "[ $(api PUT /v1/declarations/bad6 '{"Type":"com.apple.asset.data","Identifier":"bad6","Payload":{"Reference":{"ContentType":"text/plain"}}}') = 400 ] && grep -q 'Payload.Reference.DataURL is required' '$T/api'"
check "unknown type refused" bash -c "[ $(api PUT /v1/declarations/bad7 '{"Type":"com.apple.configuration.coffee","Identifier":"bad7","Payload":{}}') = 400 ] && grep -q 'not a declaration type Apple defines' '$T/api'"
check "Identifier must match the path" test "$(api PUT /v1/declarations/other "$SU")" = 400
check "bad JSON: 400" test "$(api PUT /v1/declarations/x '{')" = 400
check "refusals are logged" grep -q 'event=ddm_declaration_refused id=bad2' "$T/mdmd.log"
check "nothing refused was stored" test "$(R exists "$(gkey ddm:decl:bad2)")" = 0
TEST_DECL='{"Type":"com.apple.configuration.management.test","Identifier":"com.example.test","Payload":{"Echo":"hello"}}'
ACT='{"Type":"com.apple.activation.simple","Identifier":"com.example.act","Payload":{"StandardConfigurations":["com.example.su","com.example.test"]}}'
check "management.test declaration: 201" test "$(api PUT /v1/declarations/com.example.test "$TEST_DECL")" = 201
check "activation: 201" test "$(api PUT /v1/declarations/com.example.act "$ACT")" = 201
api GET /v1/declarations/com.example.su >/dev/null
TOK1=$(jget "$T/api" server_token)
check "GET gives the server token and kind" bash -c "[ ${#TOK1} = 32 ] && grep -q '\"kind\":\"configuration\"' '$T/api'"
check "PUT of the same content: 200, token unchanged" bash -c "[ $(api PUT /v1/declarations/com.example.su "$SU") = 200 ] && grep -q '\"changed\":false' '$T/api'"
check "list has three declarations" bash -c "[ $(api GET /v1/declarations) = 200 ] && [ \$(grep -o '\"identifier\"' '$T/api' | wc -l) = 3 ]"

# --- sets and assignment ---
check "set with an unknown declaration refused naming it" bash -c "[ $(api PUT /v1/declaration-sets/base '{"declarations":["com.example.su","nope.x"]}') = 400 ] && grep -q 'nope.x' '$T/api'"
check "set: 201" test "$(api PUT /v1/declaration-sets/base '{"declarations":["com.example.su","com.example.test","com.example.act"]}')" = 201
check "assignment to an unknown device refused" bash -c "[ $(api PUT /v1/declaration-sets/base/assignment '{"udids":["GHOST"]}') = 400 ] && grep -q GHOST '$T/api'"
check "assignment to a set that does not exist: 404" test "$(api PUT /v1/declaration-sets/nope/assignment '{"udids":[]}')" = 404
ddm d2 $V tokens >/dev/null; cp "$T/resp" "$T/v.tok0"
check "assignment: 200 with a job" bash -c "[ $(api PUT /v1/declaration-sets/base/assignment '{"udids":["'$U'"]}') = 200 ] && grep -q job_id '$T/api'"
JOB=$(jget "$T/api" job_id)
check "the walk ends" wait_for 10 bash -c "[ \"\$(redis-cli -p $REDIS_PORT hget $(gkey job:$JOB) state)\" = done ]"
check "job readable over REST" bash -c "[ $(api GET /v1/jobs/$JOB) = 200 ] && grep -q '\"request_type\":\"DeclarativeManagement\"' '$T/api'"
check "DeclarativeManagement queued for the assigned device only" \
    test "$(R llen "mdm:q:{$U}"):$(R llen "mdm:q:{$V}")" = 1:0
check "the device was pushed" wait_for 5 grep -q "^$(R hget "mdm:dev:{$U}" token) MAGIC-$U 200" "$T/pushes"
poll d1 $U Idle
grep -A1 '<key>Data</key>' "$T/resp" | tail -1 | sed 's/<[^>]*>//g' | tr -d '\t ' | base64 -d >"$T/cmd.data"
check "the command is DeclarativeManagement with Data holding the tokens" \
    bash -c "grep -q DeclarativeManagement '$T/resp' && grep -q '\"SyncTokens\":{\"DeclarationsToken\"' '$T/cmd.data'"
CMD=$NEXT
poll d1 $U Acknowledged "$CMD"
check "acknowledged: queue empty" test "$(R llen "mdm:q:{$U}")" = 0

# --- the protocol ---
check "tokens: 200" test "$(ddm d1 $U tokens)" = 200
ST1=$(jq_ "$T/resp" 'd["SyncTokens"]["DeclarationsToken"]')
check "TokensResponse has SyncTokens.DeclarationsToken and Timestamp" python3 -c "
import json; d=json.load(open('$T/resp'))['SyncTokens']
assert d['Timestamp'].endswith('Z') and len(d['Timestamp'])==20 and len(d['DeclarationsToken'])==40"
check "the command's Data carried the same token" grep -q "$ST1" "$T/cmd.data"
check "declaration-items: 200" test "$(ddm d1 $U declaration-items)" = 200
check "items: the three, each kind in its list, with server tokens" python3 -c "
import json; d=json.load(open('$T/resp'))
a=d['Declarations']
assert d['DeclarationsToken']=='$ST1'
assert [x['Identifier'] for x in a['Configurations']]==['com.example.su','com.example.test'], a
assert [x['Identifier'] for x in a['Activations']]==['com.example.act']
assert a['Assets']==[] and a['Management']==[]
assert a['Configurations'][0]['ServerToken']=='$TOK1'"
check "declaration fetch: 200 with the declaration" bash -c "[ $(ddm d1 $U declaration/configuration/com.example.su) = 200 ] && python3 -c \"import json; d=json.load(open('$T/resp')); assert d['Type'].endswith('enforcement.specific') and d['ServerToken']=='$TOK1' and d['Payload']['TargetOSVersion']=='18.1'\""
check "a declaration not in the enrollment's set: 404" test "$(ddm d2 $V declaration/configuration/com.example.su)" = 404
check "the wrong kind: 404" test "$(ddm d1 $U declaration/asset/com.example.su)" = 404
check "a bad endpoint: 400" test "$(ddm d1 $U declaration/x)" = 400
check "no Endpoint: 400" bash -c "$(declare -f plist_msg mdm_put); T=$T CA=$CA MDM=$MDM; plist_msg $T/ne MessageType DeclarativeManagement UDID $U; [ \$(mdm_put /mdm/checkin d1 $T/ne application/x-apple-aspen-mdm-checkin) = 400 ]"
check "another device's certificate: 403" test "$(ddm d2 $U tokens)" = 403
check "an unassigned device's token did not move" bash -c "[ $(ddm d2 $V tokens) = 200 ] && python3 -c \"import json; a=json.load(open('$T/v.tok0')); b=json.load(open('$T/resp')); assert a['SyncTokens']==b['SyncTokens']\""
check "tokens again: the same token" bash -c "[ $(ddm d1 $U tokens) = 200 ] && grep -q '$ST1' '$T/resp'"

# --- asset data, behind the device's own identity ---
printf 'hello asset' >"$T/asset.txt"
code=$(curl -s -o "$T/api" -w '%{http_code}' --cacert "$CA" -X PUT -H "Authorization: Bearer $(cat "$D/var/api.key")" \
    -H 'Content-Type: text/plain' --data-binary @"$T/asset.txt" "https://127.0.0.1:$PUB/v1/assets/hello.txt")
check "asset data stored: 201" test "$code" = 201
check "the answer is the Reference for a declaration" python3 -c "
import json,hashlib; d=json.load(open('$T/api')); r=d['Reference']
assert r['DataURL'].endswith('/v1/assets/hello.txt') and r['Size']==11 and r['ContentType']=='text/plain'
assert r['Hash-SHA-256']==hashlib.sha256(b'hello asset').hexdigest() and d['Authentication']=={'Type':'MDM'}"
python3 -c "
import json; d=json.load(open('$T/api'))
print(json.dumps({'Type':'com.apple.asset.data','Identifier':'com.example.asset','Payload':{'Reference':d['Reference'],'Authentication':d['Authentication']}}))" >"$T/asset.json"
check "an asset declaration pointing at it passes the schema" test "$(api PUT /v1/declarations/com.example.asset "$(cat "$T/asset.json")")" = 201
assetget() { curl -s -o "$T/asset.out" -w '%{http_code}' --cacert "$CA" --cert "$T/$1.crt" --key "$T/$1.key" "https://127.0.0.1:$MDM/v1/assets/$2"; }
check "the device fetches it with its identity: 200, the bytes" bash -c "[ $(assetget d1 hello.txt) = 200 ] && cmp -s '$T/asset.txt' '$T/asset.out'"
make_client_cert ghost "$CA" "$D/var/ca/ca.key" GHOST-1
check "a certificate of no enrolled device: 403" test "$(assetget ghost hello.txt)" = 403
check "no client certificate: refused" bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' --cacert '$CA' 'https://127.0.0.1:$MDM/v1/assets/hello.txt') != 200 ]"
check "unknown asset: 404" test "$(assetget d1 nope.bin)" = 404
check "the admin side lists it" bash -c "[ $(api GET /v1/assets) = 200 ] && grep -q hello.txt '$T/api'"
check "and deletes it" bash -c "[ $(api DELETE /v1/assets/hello.txt) = 204 ] && [ $(assetget d1 hello.txt) = 404 ]"
api DELETE /v1/declarations/com.example.asset >/dev/null

# A changed declaration: its server token and the sync token move; the device is told.
SU2='{"Type":"com.apple.configuration.softwareupdate.enforcement.specific","Identifier":"com.example.su","Payload":{"TargetOSVersion":"18.2","TargetLocalDateTime":"2026-12-31T18:00:00","DetailsURL":"https://example.com/os"}}'
check "changed declaration: 200, changed, with a job" bash -c "[ $(api PUT /v1/declarations/com.example.su "$SU2") = 200 ] && grep -q '\"changed\":true' '$T/api' && grep -q job_id '$T/api'"
JOB=$(jget "$T/api" job_id)
check "the walk ends" wait_for 10 bash -c "[ \"\$(redis-cli -p $REDIS_PORT hget $(gkey job:$JOB) state)\" = done ]"
check "a new DeclarativeManagement for the device" test "$(R llen "mdm:q:{$U}"):$(R llen "mdm:q:{$V}")" = 1:0
ddm d1 $U tokens >/dev/null
check "the sync token moved" bash -c "! grep -q '$ST1' '$T/resp'"
ddm d1 $U declaration-items >/dev/null
check "the server token moved" bash -c "! grep -q '$TOK1' '$T/resp'"
check "two changes before the device polls leave one command" bash -c "
    api() { curl -s -o /dev/null -w '%{http_code}' --cacert $CA -X PUT -H 'Authorization: Bearer $(cat $D/var/api.key)' --data-binary \"\$2\" https://127.0.0.1:$PUB\$1; }
    api /v1/declarations/com.example.test '{\"Type\":\"com.apple.configuration.management.test\",\"Identifier\":\"com.example.test\",\"Payload\":{\"Echo\":\"two\"}}' >/dev/null
    sleep 1
    api /v1/declarations/com.example.test '{\"Type\":\"com.apple.configuration.management.test\",\"Identifier\":\"com.example.test\",\"Payload\":{\"Echo\":\"three\"}}' >/dev/null
    sleep 1; [ \$(redis-cli -p $REDIS_PORT llen 'mdm:q:{$U}') = 1 ]"

# --- status ---
cat >"$T/status1.json" <<JSON
{"StatusItems":{"device":{"operating-system":{"version":"17.5","build-version":"21F79"},"model":{"family":"iPhone"}},
 "softwareupdate":{"install-state":"downloading","pending-version":{"os-version":"18.2","build-version":"22C152","target-local-date-time":"2026-12-31T18:00:00"}},
 "management":{"declarations":{"activations":[{"identifier":"com.example.act","server-token":"x","active":true,"valid":"valid"}],
  "configurations":[{"identifier":"com.example.su","server-token":"y","active":true,"valid":"valid"},
   {"identifier":"com.example.test","server-token":"z","active":false,"valid":"invalid","reasons":[{"code":"Error.ConfigurationFailed","description":"Echo failed"}]}],
  "assets":[],"management":[]}}},
 "Errors":[],"FullReport":true}
JSON
check "status report: 200" test "$(ddm d1 $U status "$T/status1.json")" = 200
check "status without Data: 400" test "$(ddm d1 $U status)" = 400
echo 'not json' >"$T/junk"
check "status that is not JSON: 400" test "$(ddm d1 $U status "$T/junk")" = 400
check "report appended to the stream" test "$(R xlen "mdm:ddm:reports:{$U}")" = 1
check "status item folded into the hash" test "$(R hget "mdm:ddm:status:{$U}" softwareupdate.install-state)" = '"downloading"'
check "nested items by their full names" test "$(R hget "mdm:ddm:status:{$U}" device.operating-system.version)" = '"17.5"'
check "GET status: items and declarations" bash -c "[ $(api GET /v1/devices/$U/status) = 200 ] && python3 -c \"
import json; d=json.load(open('$T/api')); s=d['status_items']
assert s['softwareupdate.install-state']=='downloading'
assert s['softwareupdate.pending-version']['os-version']=='18.2'
assert s['device.operating-system.version']=='17.5'
c={x['identifier']:x for x in s['management.declarations']['configurations']}
assert c['com.example.test']['valid']=='invalid' and c['com.example.su']['active'] is True
assert d['invalid_declarations']==['configuration/com.example.test']\""
check "status changes went to the event stream" bash -c "for k in $(bkeys mdm:events | tr '\n' ' '); do redis-cli -p $REDIS_PORT xrevrange \$k + - count 1; done | grep -q 'softwareupdate.install-state'"
check "fleet: failed declarations" bash -c "[ $(api GET '/v1/ddm/status?failed=1') = 200 ] && grep -q '\"enrollment\":\"$U\"' '$T/api' && ! grep -q '$V' '$T/api'"
ddm d2 $V status "$T/status1.json" >/dev/null
sed 's/"17.5"/"18.2"/; s/"valid":"invalid"/"valid":"valid"/' "$T/status1.json" >"$T/status2.json"
check "incremental report: 200" test "$(ddm d2 $V status "$T/status2.json")" = 200
check "fleet: not on the required OS version" bash -c "[ $(api GET '/v1/ddm/status?item=device.operating-system.version&value=18.2&not=1') = 200 ] && grep -q '\"enrollment\":\"$U\"' '$T/api' && ! grep -q '\"$V\"' '$T/api'"
check "fleet: on it" bash -c "[ $(api GET '/v1/ddm/status?item=device.operating-system.version&value=18.2') = 200 ] && grep -q '\"$V\"' '$T/api' && ! grep -q '\"$U\"' '$T/api'"
check "fixed declaration leaves the failed view" bash -c "[ $(api GET '/v1/ddm/status?failed=1') = 200 ] && ! grep -q '\"$V\"' '$T/api'"
cat >"$T/status3.json" <<JSON
{"StatusItems":{"softwareupdate":{"install-state":"installing"},"management":{"declarations":{"configurations":[{"identifier":"com.example.test","server-token":"z2","active":true,"valid":"valid"}]}}},"Errors":[]}
JSON
ddm d1 $U status "$T/status3.json" >/dev/null
check "incremental: one item changes, the others stay" bash -c "[ \$(redis-cli -p $REDIS_PORT hget 'mdm:ddm:status:{$U}' softwareupdate.install-state) = '\"installing\"' ] && [ \$(redis-cli -p $REDIS_PORT hget 'mdm:ddm:status:{$U}' device.operating-system.version) = '\"17.5\"' ]"
check "incremental: a declaration's state merges, the others stay" bash -c "[ \$(redis-cli -p $REDIS_PORT hlen 'mdm:ddm:dstatus:{$U}') = 3 ] && [ \$(redis-cli -p $REDIS_PORT scard 'mdm:ddm:invalid:{$U}') = 0 ]"
printf '%s' '{"StatusItems":{"softwareupdate":{"install-state":"none"}},"Errors":[],"FullReport":true}' >"$T/s4"
check "full report: 200" test "$(ddm d1 $U status "$T/s4")" = 200
check "full report replaces: only what it holds is left" test "$(R hkeys "mdm:ddm:status:{$U}" | tr '\n' ' ')" = "softwareupdate.install-state "
check "device status for an enrollment that never synced: 404" test "$(api GET /v1/devices/NOPE/status)" = 404
check "fleet without a filter: 400" test "$(api GET /v1/ddm/status)" = 400

# --- mdmctl ---
ddm d1 $U status "$T/status1.json" >/dev/null
CTL=("$BIN/mdmctl" --url "https://127.0.0.1:$PUB" --key-file "$D/var/api.key" --cacert "$CA")
printf '%s' '{"Type":"com.apple.configuration.passcode.settings","Identifier":"com.example.pass","Payload":{"MinimumLength":6}}' >"$T/pass.json"
check "mdmctl declare" bash -c "${CTL[*]} declare '$T/pass.json' | grep -q 'com.example.pass created'"
printf '%s' '{"Type":"com.apple.configuration.passcode.settings","Identifier":"com.example.pass2","Payload":{"MinimumLength":"6"}}' >"$T/pass2.json"
check "mdmctl declare: a bad one fails, naming the key" bash -c "! ${CTL[*]} declare '$T/pass2.json' 2>'$T/ctl.err' && grep -q 'Payload.MinimumLength must be an integer' '$T/ctl.err'"
check "mdmctl declarations lists it" bash -c "${CTL[*]} declarations | grep -q 'com.example.pass .*com.apple.configuration.passcode.settings'"
check "mdmctl set-put" bash -c "${CTL[*]} set-put pass com.example.pass | grep -q 'set stored'"
check "mdmctl assign names the job" bash -c "${CTL[*]} assign pass --udid $V | grep -q 'mdmctl job '"
check "mdmctl set shows the assignment" bash -c "${CTL[*]} set pass | grep -q '$V'"
check "mdmctl status shows items and declarations" bash -c "${CTL[*]} status $U > '$T/ctl.out' && grep -q 'softwareupdate.install-state' '$T/ctl.out' && grep -q 'configurations  *com.example.su  *valid active' '$T/ctl.out'"
check "mdmctl fleet-status --failed" bash -c "${CTL[*]} fleet-status --failed | grep -q '$U'"
check "mdmctl fleet-status --item --value --not" bash -c "${CTL[*]} fleet-status --item device.operating-system.version --value 18.2 --not | grep -q '$U'"
check "mdmctl set-rm" bash -c "${CTL[*]} set-rm pass | grep -q deleted"
check "mdmctl declaration-rm" bash -c "${CTL[*]} declaration-rm com.example.pass | grep -q deleted"

# --- a user channel, apart from the device's ---
check "set for the user channel: 201" test "$(api PUT /v1/declaration-sets/alice '{"declarations":["com.example.test"]}')" = 201
# The user channel as its UserAuthenticate and TokenUpdate leave it (checkin.sh
# drives those): enrolled, with a push token of its own.
R hset "mdm:dev:{$U}:alice-id" state enrolled token "$(printf 'a%.0s' $(seq 64))" push_magic PM-ALICE >/dev/null
R sadd "mdm:channels:{$U}" alice-id >/dev/null
check "assigned to $U:alice-id" test "$(api PUT /v1/declaration-sets/alice/assignment '{"udids":["'$U':alice-id"]}')" = 200
chan_cmds() {   # the RequestTypes queued on the user channel
    for id in $(redis-cli -p $REDIS_PORT lrange "mdm:q:{$U}:alice-id" 0 -1); do
        redis-cli -p $REDIS_PORT hget "mdm:cmd:$id" request_type
    done
}
check "the user channel is sent DeclarativeManagement on its own queue" \
    wait_for 10 bash -c "$(declare -f chan_cmds); U=$U REDIS_PORT=$REDIS_PORT; chan_cmds | grep -qx DeclarativeManagement"
ddm d1 $U declaration-items "" alice-id >/dev/null
check "the user channel gets its own set" python3 -c "
import json; a=json.load(open('$T/resp'))['Declarations']
assert [x['Identifier'] for x in a['Configurations']]==['com.example.test'] and a['Activations']==[], a"
ddm d1 $U declaration-items >/dev/null
check "the device channel does not get the user's" python3 -c "
import json; a=json.load(open('$T/resp'))['Declarations']
assert [x['Identifier'] for x in a['Configurations']]==['com.example.su','com.example.test'] and len(a['Activations'])==1"
check "user channel: a declaration of the device's set is not served" test "$(ddm d1 $U declaration/configuration/com.example.su "" alice-id)" = 404
check "user channel status apart" bash -c "[ $(ddm d1 $U status "$T/status3.json" alice-id) = 200 ] && [ \$(redis-cli -p $REDIS_PORT hget 'mdm:ddm:status:{$U}:alice-id' softwareupdate.install-state) = '\"installing\"' ] && [ $(api GET "/v1/devices/$U/status?user_id=alice-id") = 200 ]"
check "user channel keys carry the device's hash tag" bash -c "redis-cli -p $REDIS_PORT --scan --pattern 'mdm:ddm:*alice-id*' | grep -v '{$U}' | wc -l | grep -qx 0"
check "bad UserID: 400" test "$(ddm d1 $U tokens "" 'a{b}')" = 400

# --- deleting ---
check "delete a declaration in a set: 204" test "$(api DELETE /v1/declarations/com.example.test)" = 204
check "it left its sets" test "$(R sismember "$(gkey ddm:set:base:decls)" com.example.test)" = 0
check "delete a set: 204" test "$(api DELETE /v1/declaration-sets/alice)" = 204
check "its assignment went" test "$(R exists "mdm:ddm:sets:{$U}:alice-id")" = 0
check "unknown: 404" test "$(api DELETE /v1/declaration-sets/alice)" = 404

# --- mdmsim devices: enroll, get the command, sync, report, update their OS ---
SIM=("$BIN/mdmsim" --url "https://127.0.0.1:$MDM/mdm" --ca "$CA" --ca-key "$D/var/ca/ca.key"
     --udid-prefix DDMSIM -n "$NSIM" -c "${DDM_CONC:-32}" --topic "$TOPIC" --identities "$T/ids" -q)
# walk_done: waits for the job named in $T/api to finish; JOB is its id.
WAIT=$((60 + NSIM / 50)) # seconds; make bench runs this with 10,000 devices
walk_done() { JOB=$(jget "$T/api" job_id); wait_for $WAIT bash -c "[ \"\$(redis-cli -p $REDIS_PORT hget $(gkey job:$JOB) state)\" = done ]"; }
sim_ok() { grep -q ' http_errors=0 .*net_errors=0 proto_errors=0 ' "$1"; }
sim_val() { sed -n "s/.* $2=\([0-9]*\).*/\1/p" "$1"; }
# fleet_count QUERY: simulated devices the fleet view lists for QUERY, every page.
fleet_count() {
    local off=0 n=0
    : >"$T/fleet.all"
    while [ "$off" != -1 ]; do
        [ "$(api GET "/v1/ddm/status?$1&limit=1000&offset=$off")" = 200 ] || { echo -1; return; }
        n=$((n + $(grep -o '"enrollment":"DDMSIM-' "$T/api" | wc -l)))
        cat "$T/api" >>"$T/fleet.all"
        off=$(jget "$T/api" next_offset)
    done
    echo "$n"
}
check "$NSIM simulated devices enroll" "${SIM[@]}" --cycles 1
FAIL_DECL='{"Type":"com.apple.configuration.management.test","Identifier":"com.example.fail","Payload":{"Echo":"no","ReturnStatus":"Failed"}}'
check "a declaration that fails on the device: 201" test "$(api PUT /v1/declarations/com.example.fail "$FAIL_DECL")" = 201
api PUT /v1/declaration-sets/canary '{"declarations":["com.example.fail"]}' >/dev/null
check "canary set for one simulated device" bash -c "[ $(api PUT /v1/declaration-sets/canary/assignment '{"udids":["DDMSIM-000000"]}') = 200 ]"
walk_done
check "everyone gets the base set" test "$(api PUT /v1/declaration-sets/base/assignment '{"everyone":true}')" = 200
check "the walk ends" walk_done
check "a command for each simulated device" test "$(R hget $(gkey job:$JOB) queued)" -ge "$NSIM"
W=SIM-DDM-3
check "a device that enrolls now (everyone has a set)" ddm_enroll d3 $W
check "gets DeclarativeManagement with its first TokenUpdate" bash -c "[ \$(redis-cli -p $REDIS_PORT llen 'mdm:q:{$W}') = 1 ] && [ \$(redis-cli -p $REDIS_PORT hget mdm:cmd:\$(redis-cli -p $REDIS_PORT lindex 'mdm:q:{$W}' 0) request_type) = DeclarativeManagement ]"
"${SIM[@]}" --skip-enroll --cycles 4 --ddm-sync >"$T/sim1.out" 2>&1
check "mdmsim: no errors over $NSIM devices, 4 cycles" sim_ok "$T/sim1.out"
check "every device synced and reported" test "$(sim_val "$T/sim1.out" ddm_reports)" -ge "$((NSIM * 4))"
check "each fetched its declarations (2, the canary 3)" test "$(sim_val "$T/sim1.out" ddm_fetched)" = "$((NSIM * 2 + 1))"
check "the fleet is on 18.2 after the enforced update" \
    test "$(fleet_count 'item=device.operating-system.version&value=18.2')" = "$NSIM"
check "install-state none again everywhere" \
    test "$(fleet_count 'item=softwareupdate.install-state&value=none&not=1')" = 0
redis-cli -p "$REDIS_PORT" xrange 'mdm:ddm:reports:{DDMSIM-000001}' - + >"$T/reports.txt"
check "the update went through downloading, prepared, installing, none in the reports" python3 -c "
import json
st=[json.loads(l)['StatusItems']['softwareupdate']['install-state'] for l in open('$T/reports.txt') if l.startswith('{')]
assert st[-4:]==['downloading','prepared','installing','none'], st"
"${SIM[@]}" -n 1 --skip-enroll --cycles 1 --ddm-sync --ddm-user sim-user >"$T/simu.out" 2>&1
check "mdmsim on a user channel: no errors" sim_ok "$T/simu.out"
check "its status is the user channel's, its set empty" bash -c "[ \$(redis-cli -p $REDIS_PORT hget 'mdm:ddm:status:{DDMSIM-000000}:sim-user' device.operating-system.version) = '\"17.5\"' ] && [ \$(redis-cli -p $REDIS_PORT hlen 'mdm:ddm:dstatus:{DDMSIM-000000}:sim-user') = 0 ]"
check "the canary's failure is in the failed view, alone" bash -c "[ $(fleet_count failed=1) = 1 ] && grep -q '\"DDMSIM-000000\"' '$T/fleet.all'"
check "its status names the reason" bash -c "[ $(api GET /v1/devices/DDMSIM-000000/status) = 200 ] && grep -q Error.ConfigurationFailed '$T/api'"
# synced TOKEN: how many simulated devices report com.example.su with that server token.
synced() {
    R eval "local n = 0
      for i = 0, $((NSIM - 1)) do
        local v = redis.call('HGET', string.format('mdm:ddm:dstatus:{DDMSIM-%06d}', i),
                             'configuration/com.example.su')
        if v and string.find(v, ARGV[1], 1, true) then n = n + 1 end
      end
      return n" 0 "$1"
}
su_token() { api GET /v1/declarations/com.example.su >/dev/null; grep -o '"server_token":"[0-9a-f]*' "$T/api" | cut -d'"' -f4; }
# Devices that wait for pushes, as phones do: a change reaches them through APNs.
"${SIM[@]}" --skip-enroll --push-file "$T/pushes" --duration $((120 + 3 * WAIT)) >"$T/sim2.out" 2>&1 &
SIMPID=$!; PIDS+=("$SIMPID")
sleep 1
for n in 1 2; do
    SU3='{"Type":"com.apple.configuration.softwareupdate.enforcement.specific","Identifier":"com.example.su","Payload":{"TargetOSVersion":"18.2","TargetLocalDateTime":"2027-01-1'$n'T18:00:00"}}'
    t0=$(date +%s%N)
    check "change $n to a declaration" test "$(api PUT /v1/declarations/com.example.su "$SU3")" = 200
    check "change $n: the walk ends" walk_done
    check "change $n: a command for every device" test "$(R hget $(gkey job:$JOB) queued)" -ge "$NSIM"
    echo "change $n: the walk queued $(R hget $(gkey job:$JOB) queued) commands in $(( $(R hget $(gkey job:$JOB) finished) - $(R hget $(gkey job:$JOB) created) )) ms"
    tok=$(su_token)
    check "change $n reaches all $NSIM devices (pushed, synced, reported)" wait_for $WAIT bash -c "[ \$($(declare -f R synced); REDIS_PORT=$REDIS_PORT NSIM=$NSIM; synced $tok) = $NSIM ]"
    echo "change $n: $NSIM devices converged in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
done
kill -TERM "$SIMPID"; wait "$SIMPID" 2>/dev/null
check "mdmsim (push mode): no errors" sim_ok "$T/sim2.out"
check "the first change fetched everything, the second just the changed declaration" \
    test "$(sim_val "$T/sim2.out" ddm_fetched)" = "$((NSIM * 2 + 1 + NSIM))"
finish

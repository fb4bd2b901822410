#!/usr/bin/env bash
# The check-in messages beyond Authenticate/TokenUpdate/CheckOut (issue 17),
# end to end: mdmsim over real mutual TLS against a real Redis sends each
# one (--step) and the answers and Redis are checked.
. "$(dirname "$0")/lib.sh"
start_redis || { fail "redis starts"; finish; }
make_push_pki && start_mock_apns || { fail "mock APNs starts"; finish; }
D=$T/a
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/maid.key" 2>/dev/null
openssl pkey -in "$T/maid.key" -pubout -out "$T/maid.pub" 2>/dev/null
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT" "token_source_dir $T/tokens" "push_coalesce_ms 0" \
    "token_jwt_key_file $T/maid.key"
apns_conf >>"$D/mdmd.conf"
start_mdmd "$D" || { fail "mdmd starts"; finish; }
check "bootstrap.key created with mode 0600" test "$(stat -c %a "$D/var/bootstrap.key")" = 600

CTL=("$BIN/mdmctl" --url "https://127.0.0.1:$PUB" --key-file "$D/var/api.key" --cacert "$CA")
SIM=("$BIN/mdmsim" --url "https://127.0.0.1:$MDM/mdm" --ca "$CA" --ca-key "$D/var/ca/ca.key"
     --identities "$T/ids" --udid-prefix CHK --topic "$TOPIC")
U=CHK-000000
# sim STEP...: the enrolled device sends the steps; their lines in $T/out.
sim() {
    local a=()
    for s in "$@"; do a+=(--step "$s"); done
    "${SIM[@]}" -q --skip-enroll "${a[@]}" >"$T/out" 2>"$T/sim.err"
}
line() { grep "name=$1 " "$T/out"; }
has() { line "$1" | grep -q -- "$2"; }

"${SIM[@]}" -q >"$T/enroll.out" 2>&1
check "mdmsim enrolls" test "$(R hget "mdm:dev:{$U}" state)" = enrolled

# --- every MessageType of the schema: handled or refused as Apple documents ---
sim raw:DeclarativeManagement raw:MakeCoffee bad-bootstrap user-auth:501-USER
check "DeclarativeManagement without an Endpoint: a 400 from handlers/ddm (ddm.sh covers the rest)" has raw:DeclarativeManagement http=400
check "an unknown MessageType: 400" has raw:MakeCoffee http=400
check "a key of the wrong type (BootstrapToken as a string): 400" has bad-bootstrap http=400
check "the 400 is logged naming the key" grep -q 'event=checkin_malformed .*reason="BootstrapToken must be data"' "$T/mdmd.log"
check "UserAuthenticate with user_channel decline: 410" has user-auth:501-USER http=410

# --- bootstrap token: escrow, encryption at rest, round trip, clear ---
TOK="BOOTSTRAP-SECRET-$RANDOM$RANDOM"
sim "set-bootstrap:$TOK" get-bootstrap
check "SetBootstrapToken: 200" has "set-bootstrap:$TOK" http=200
check "GetBootstrapToken returns it" has get-bootstrap "http=200 BootstrapToken=$TOK"
check "stored sealed (s1:<key id>:...)" bash -c "R() { redis-cli -p $REDIS_PORT \"\$@\"; }; R hget 'mdm:dev:{$U}' bootstrap_token | grep -q '^s1:[0-9a-f]\{16\}:'"
check "redis holds no plaintext of it anywhere" eval "! R --no-raw hgetall 'mdm:dev:{$U}' | grep -q '$TOK' && ! evgrep -q '$TOK'"
check "the log holds no plaintext of it" bash -c "! grep -q '$TOK' '$T/mdmd.log'"
OLD=$(R hget "mdm:dev:{$U}" bootstrap_token)
"$BIN/mdmd" -c "$D/mdmd.conf" bootstrap-key rotate >"$T/rot.out" 2>&1
check "bootstrap-key rotate: a new key, the escrowed token sealed again" \
    grep -q 'tokens sealed again, 0 failed' "$T/rot.out"
NEW=$(R hget "mdm:dev:{$U}" bootstrap_token)
check "the token is under the new key (first line of the key file)" \
    test "${NEW:3:16}" = "$(head -1 "$D/var/bootstrap.key" | cut -d' ' -f1)" -a "${OLD:3:16}" != "${NEW:3:16}"
check "the old key is kept until pruned" test "$(wc -l <"$D/var/bootstrap.key")" = 2
"$BIN/mdmd" -c "$D/mdmd.conf" bootstrap-key prune >"$T/rot.out" 2>&1
check "bootstrap-key prune drops the key no token uses" grep -q '^1 keys dropped' "$T/rot.out"
check "one key left, mode 0600" test "$(wc -l <"$D/var/bootstrap.key"):$(stat -c %a "$D/var/bootstrap.key")" = 1:600
sim get-bootstrap
check "GetBootstrapToken after rotation and prune: the same token" has get-bootstrap "BootstrapToken=$TOK"
# A sealed token copied to another device's record does not open there.
"${SIM[@]}" -q --offset 1 >/dev/null 2>&1
R hset "mdm:dev:{CHK-000001}" bootstrap_token "$(R hget "mdm:dev:{$U}" bootstrap_token)" >/dev/null
"${SIM[@]}" -q --skip-enroll --offset 1 --step get-bootstrap >"$T/out" 2>/dev/null
check "a sealed token moved to another UDID does not open (bound to the UDID)" \
    bash -c "grep -q 'name=get-bootstrap .*http=200' '$T/out' && ! grep -q BootstrapToken= '$T/out'"
check "admin read over REST: explicit endpoint" test "$(api GET "/v1/devices/$U/bootstrap-token")" = 200
check "admin read gives the token (base64)" test "$(jget "$T/api" bootstrap_token | base64 -d)" = "$TOK"
check "mdmctl bootstrap-token" test "$("${CTL[@]}" bootstrap-token "$U" | base64 -d)" = "$TOK"
check "admin read is logged" grep -q "event=bootstrap_token_read udid=$U by=api" "$T/mdmd.log"
check "admin read is an event" eval "evgrep -A1 -x by | grep -qx api"
check "device view does not show the token" bash -c "[ \$(curl -s -o '$T/dev.json' -w '%{http_code}' --cacert '$CA' -H 'Authorization: Bearer $(cat "$D/var/api.key")' https://127.0.0.1:$PUB/v1/devices/$U) = 200 ] && ! grep -q 'bootstrap_token\"' '$T/dev.json'"
sim set-bootstrap: get-bootstrap
check "an empty SetBootstrapToken clears it" test "$(R hexists "mdm:dev:{$U}" bootstrap_token)" = 0
check "GetBootstrapToken without a token: 200, key omitted" \
    bash -c "grep -q 'name=get-bootstrap .*http=200\$' '$T/out'"
check "admin read without a token: 404" test "$(api GET "/v1/devices/$U/bootstrap-token")" = 404

# --- AwaitingConfiguration and DeviceConfigured ---
sim awaiting
check "TokenUpdate AwaitingConfiguration true is recorded" test "$(R hget "mdm:dev:{$U}" awaiting_configuration)" = true
api POST /v1/commands '{"udids":["'$U'"],"command":{"RequestType":"DeviceConfigured"}}' >/dev/null
"${SIM[@]}" -q --skip-enroll >"$T/out" 2>&1
check "DeviceConfigured acknowledged releases the device" test "$(R hget "mdm:dev:{$U}" awaiting_configuration)" = false
check "device_configured event" evgrep -qx device_configured

# --- ReturnToService: off by default, fleet-wide, per device, with the token ---
sim rts
check "ReturnToService off by default: Enabled false" has rts "http=200 ReturnToService.Enabled=false"
WIFI=$(printf WIFI-PROFILE-XML | base64); MDMP=$(printf MDM-PROFILE-XML | base64)
check "fleet setting: PUT /v1/return-to-service" \
    test "$(api PUT /v1/return-to-service '{"enabled":true,"wifi_profile":"'$WIFI'","preserve_apps":false}')" = 200
sim "set-bootstrap:RTS-TOKEN-1" rts
check "fleet-wide on: Enabled true" has rts "ReturnToService.Enabled=true"
check "with the fleet's Wi-Fi profile" has rts "ReturnToService.WiFiProfileData=WIFI-PROFILE-XML"
check "no bootstrap token without app preservation" bash -c "! grep 'name=rts ' '$T/out' | grep -q BootstrapToken"
check "per device: PUT /v1/devices/{udid}/return-to-service" \
    test "$(api PUT "/v1/devices/$U/return-to-service" '{"enabled":true,"mdm_profile":"'$MDMP'","preserve_apps":true}')" = 200
sim rts
check "the device's setting wins: its MDM profile" has rts "ReturnToService.MDMProfileData=MDM-PROFILE-XML"
check "and not the fleet's Wi-Fi profile" bash -c "! grep 'name=rts ' '$T/out' | grep -q WiFiProfileData"
check "app preservation: the escrowed bootstrap token" has rts "ReturnToService.BootstrapToken=RTS-TOKEN-1"
rts_source() { R xrevrange "$(bkey mdm:events "$U")" + - count 1 | grep -A1 -x source | grep -qx device; }
check "logged as an event with its source" wait_for 5 rts_source
check "GET the device setting" bash -c "[ \$(curl -s -o '$T/rts.json' -w '%{http_code}' --cacert '$CA' -H 'Authorization: Bearer $(cat "$D/var/api.key")' https://127.0.0.1:$PUB/v1/devices/$U/return-to-service) = 200 ] && grep -q '\"preserve_apps\":true' '$T/rts.json'"
check "bad body: 400" test "$(api PUT /v1/return-to-service '{"enabled":"yes"}')" = 400
api PUT "/v1/devices/$U/return-to-service" '{"enabled":false}' >/dev/null
sim rts
check "per device off: Enabled false although the fleet is on" has rts "ReturnToService.Enabled=false"
api DELETE "/v1/devices/$U/return-to-service" >/dev/null
printf MDMCTL-WIFI >"$T/wifi.mobileconfig"
check "mdmctl rts --on sets the fleet's setting" "${CTL[@]}" rts --on --wifi-profile "$T/wifi.mobileconfig"
sim rts
check "and the device gets it" has rts "ReturnToService.WiFiProfileData=MDMCTL-WIFI"
check "mdmctl rts --clear" "${CTL[@]}" rts --clear
sim rts
check "both deleted: off" has rts "ReturnToService.Enabled=false"

# --- GetToken: per TokenServiceType, from REST or the configuration ---
sim get-token:com.apple.maid get-token:com.apple.watch.pairing "get-token:bad/type"
check "no source for the type: 400 (Apple's answer for an unknown type)" has get-token:com.apple.maid http=400
check "malformed type: 400" has "get-token:bad/type" http=400
check "PUT /v1/token-sources/{type}" \
    test "$(api PUT /v1/token-sources/com.apple.maid '{"kind":"static","data":"'$(printf MAID-TOKEN-1 | base64)'"}')" = 200
mkdir -p "$T/tokens" && printf WATCH-TOKEN-1 >"$T/tokens/com.apple.watch.pairing"
sim get-token:com.apple.maid get-token:com.apple.watch.pairing
check "GetToken answers TokenData from the REST source" has get-token:com.apple.maid "http=200 TokenData=MAID-TOKEN-1"
check "and from token_source_dir" has get-token:com.apple.watch.pairing "http=200 TokenData=WATCH-TOKEN-1"
check "GET /v1/token-sources lists it" bash -c "[ \$(curl -s -o '$T/ts.json' -w '%{http_code}' --cacert '$CA' -H 'Authorization: Bearer $(cat "$D/var/api.key")' https://127.0.0.1:$PUB/v1/token-sources) = 200 ] && grep -q com.apple.maid '$T/ts.json'"
check "GET a source: kind and size, never the token" bash -c "[ \$(curl -s -o '$T/ts1.json' -w '%{http_code}' --cacert '$CA' -H 'Authorization: Bearer $(cat "$D/var/api.key")' https://127.0.0.1:$PUB/v1/token-sources/com.apple.maid) = 200 ] && grep -q '\"size\":12' '$T/ts1.json' && ! grep -q 'MAID\|TUFJR' '$T/ts1.json'"
check "a bad kind: 400" test "$(api PUT /v1/token-sources/x.y '{"kind":"magic"}')" = 400
check "a jwt source without issuer: 400" test "$(api PUT /v1/token-sources/x.y '{"kind":"jwt"}')" = 400
check "a jwt source for com.apple.maid" \
    test "$(api PUT /v1/token-sources/com.apple.maid '{"kind":"jwt","issuer":"SERVER-UUID-1"}')" = 200
sim get-token:com.apple.maid get-token:com.apple.maid
JWT1=$(grep -m1 'name=get-token:com.apple.maid ' "$T/out" | sed -n 's/.*TokenData=\([^ ]*\).*/\1/p')
JWT2=$(grep 'name=get-token:com.apple.maid ' "$T/out" | tail -1 | sed -n 's/.*TokenData=\([^ ]*\).*/\1/p')
b64url() { local s=$(printf %s "$1" | tr '_-' '/+'); while [ $(( ${#s} % 4 )) != 0 ]; do s="$s="; done; printf %s "$s" | base64 -d; }
CLAIMS=$(b64url "$(printf %s "$JWT1" | cut -d. -f2)")
check "GetToken com.apple.maid: a JWT, header RS256" bash -c "[ \"\$(printf %s '$JWT1' | cut -d. -f1)\" = \"\$(printf '{\"alg\":\"RS256\",\"typ\":\"JWT\"}' | base64 -w0 | tr '+/' '-_' | tr -d =)\" ]"
check "its claims: iss, iat, jti, service_type as Apple asks" bash -c "printf %s '$CLAIMS' | grep -q '\"iss\":\"SERVER-UUID-1\"' && printf %s '$CLAIMS' | grep -q '\"service_type\":\"com.apple.maid\"' && printf %s '$CLAIMS' | grep -q '\"iat\":[0-9]' && printf %s '$CLAIMS' | grep -q '\"jti\":\"[0-9A-Fa-f-]\{36\}\"'"
printf %s "$JWT1" | cut -d. -f1,2 | tr -d '\n' >"$T/jwt.in"
b64url "$(printf %s "$JWT1" | cut -d. -f3)" >"$T/jwt.sig"
check "its signature verifies with the key's public half (RS256)" \
    openssl dgst -sha256 -verify "$T/maid.pub" -signature "$T/jwt.sig" "$T/jwt.in"
check "a fresh token (new jti) per request" test -n "$JWT2" -a "$JWT1" != "$JWT2"

# --- user channels: policy accept, own token, own queue and NotNow marks ---
echo "user_channel accept" >>"$D/mdmd.conf"
kill -HUP "$MDMD_PID"
wait_for 10 grep -q event=reloaded "$T/mdmd.log" || fail "SIGHUP reload"
sim user-auth:USER-A user-token:USER-A ipad-token:alice@example.com
check "UserAuthenticate accepted: 200 with an empty DigestChallenge (macOS)" \
    bash -c "grep 'name=user-auth:USER-A ' '$T/out' | grep -q 'http=200 DigestChallenge=\$'"
check "user-channel TokenUpdate: 200" has user-token:USER-A http=200
check "the channel's record is enrolled" test "$(R hget "mdm:dev:{$U}:USER-A" state)" = enrolled
check "with its own token" bash -c "t=\$(redis-cli -p $REDIS_PORT hget 'mdm:dev:{$U}:USER-A' token); [ \${#t} = 64 ] && [ \"\$t\" != \"\$(redis-cli -p $REDIS_PORT hget 'mdm:dev:{$U}' token)\" ]"
check "and its own push magic" test "$(R hget "mdm:dev:{$U}:USER-A" push_magic)" = UMAGIC-USER-A
check "the device's own token is untouched" test "$(R hget "mdm:dev:{$U}" push_magic)" != UMAGIC-USER-A
check "Shared iPad (all-F UserID): channel by UserShortName" \
    test "$(R hget "mdm:dev:{$U}:alice@example.com" state)" = enrolled
check "the device lists its channels" test "$(R smembers "mdm:channels:{$U}" | sort | tr '\n' ' ')" = "USER-A alice@example.com "
check "REST: GET /v1/devices/{udid}/channels" bash -c "[ \$(curl -s -o '$T/ch.json' -w '%{http_code}' --cacert '$CA' -H 'Authorization: Bearer $(cat "$D/var/api.key")' https://127.0.0.1:$PUB/v1/devices/$U/channels) = 200 ] && grep -q USER-A '$T/ch.json'"
check "mdmctl channels lists them as UDID:USER" bash -c "'$BIN/mdmctl' --url https://127.0.0.1:$PUB --key-file '$D/var/api.key' --cacert '$CA' channels $U | grep -qx '$U:USER-A'"
check "channels stay out of mdm:devices" test "$(R zscore "$(bkey mdm:devices $U)" "$U:USER-A")" = ""

api POST /v1/commands '{"udids":["'$U:USER-A'"],"command":{"RequestType":"ProfileList"}}' >/dev/null
CU=$(jget "$T/api" command_uuid)
api POST /v1/commands '{"udids":["'$U'"],"command":{"RequestType":"SecurityInfo"}}' >/dev/null
CD=$(jget "$T/api" command_uuid)
check "a command for <UDID>:<user> goes on the channel's queue" \
    bash -c "[ -n '$CU' ] && [ \"\$(redis-cli -p $REDIS_PORT lrange 'mdm:q:{$U}:USER-A' 0 -1)\" = '$CU' ]"
check "the channel is woken with its own token and push magic" \
    wait_for 10 grep -q "^$(R hget "mdm:dev:{$U}:USER-A" token) UMAGIC-USER-A " "$T/pushes"
check "the device's queue has only its own" test "$(R lrange "mdm:q:{$U}" 0 -1)" = "$CD"
check "REST shows the channel's queue" bash -c "[ \$(curl -s -o '$T/cd.json' -w '%{http_code}' --cacert '$CA' -H 'Authorization: Bearer $(cat "$D/var/api.key")' 'https://127.0.0.1:$PUB/v1/devices/$U:USER-A') = 200 ] && grep -q '$CU' '$T/cd.json'"
check "mdmctl device UDID:USER shows the channel's queue" bash -c "'$BIN/mdmctl' --url https://127.0.0.1:$PUB --key-file '$D/var/api.key' --cacert '$CA' device '$U:USER-A' | grep -q '$CU'"
"${SIM[@]}" -q --skip-enroll --notnow-rate 1 --seed 1 --step user-poll:USER-A >"$T/out" 2>&1
check "the channel's poll gets only its command" has user-poll:USER-A "commands=1 types=ProfileList"
check "NotNow on the channel marks it in the channel's set" test "$(R smembers "mdm:notnow:{$U}:USER-A")" = "$CU"
check "and keeps it queued there" test "$(R lrange "mdm:q:{$U}:USER-A" 0 -1)" = "$CU"
check "the device's NotNow is its own" test "$(R smembers "mdm:notnow:{$U}")" = "$CD"
"${SIM[@]}" -q --skip-enroll --step user-poll:USER-A >"$T/out" 2>&1
check "the next channel poll gets it again and acknowledges it" has user-poll:USER-A "commands=1 types=ProfileList"
check "the channel's queue is empty" test "$(R llen "mdm:q:{$U}:USER-A")" = 0
check "its result is in the channel's history" bash -c "redis-cli -p $REDIS_PORT xrange 'mdm:res:{$U}:USER-A' - + | grep -qx $CU"
check "not in the device's history" bash -c "! redis-cli -p $REDIS_PORT xrange 'mdm:res:{$U}' - + | grep -qx $CU"
check "the device's command went to the device" test "$(R llen "mdm:q:{$U}")" = 0
check "REST history of the channel" bash -c "[ \$(curl -s -o '$T/h.json' -w '%{http_code}' --cacert '$CA' -H 'Authorization: Bearer $(cat "$D/var/api.key")' 'https://127.0.0.1:$PUB/v1/devices/$U:USER-A/commands') = 200 ] && grep -q '$CU' '$T/h.json'"
check "the ':' may come percent-encoded (%3A, as browsers send it)" test "$(api GET "/v1/devices/$U%3AUSER-A")" = 200
check "a malformed user part: 400" test "$(api GET "/v1/devices/$U:bad%20user")" = 400
api POST /v1/commands '{"udids":["'$U:alice@example.com'"],"command":{"RequestType":"SecurityInfo"}}' >/dev/null
"${SIM[@]}" -q --skip-enroll --step ipad-poll:alice@example.com >"$T/out" 2>&1
check "Shared iPad's user channel (all-F UserID, UserShortName) gets its own command" \
    has ipad-poll:alice@example.com "commands=1 types=SecurityInfo"
check "and its result is in that channel's history" \
    test "$(R xlen "mdm:res:{$U}:alice@example.com")" = 1
"${SIM[@]}" -q --skip-enroll --step user-poll:NOBODY >"$T/out" 2>&1
check "a poll on a channel that never began: 200, nothing" has user-poll:NOBODY "commands=0"

# --- a new Authenticate (re-enrollment) ends the device's user channels ---
"${SIM[@]}" -q --skip-enroll --offset 1 --step user-token:USER-B >"$T/out" 2>&1
check "a second device's channel" test "$(R hget "mdm:dev:{CHK-000001}:USER-B" state)" = enrolled
"${SIM[@]}" -q --offset 1 >"$T/out" 2>&1
check "its re-enrollment ends the channel" test "$(R hget "mdm:dev:{CHK-000001}:USER-B" state)" = checked_out
"${SIM[@]}" -q --skip-enroll --offset 1 --step user-poll:USER-B >"$T/out" 2>&1
check "an ended channel's poll: 200, nothing" has user-poll:USER-B "commands=0"

# --- CheckOut of the device ends its user channels ---
api POST /v1/commands '{"udids":["'$U:USER-A'"],"command":{"RequestType":"ProfileList"}}' >/dev/null
sim raw:CheckOut
check "CheckOut: 200" has raw:CheckOut http=200
check "the channel is checked out" test "$(R hget "mdm:dev:{$U}:USER-A" state)" = checked_out
check "its queue is gone" test "$(R exists "mdm:q:{$U}:USER-A")" = 0
check "the channel set is gone" test "$(R exists "mdm:channels:{$U}")" = 0
check "user_channel_ended events (re-enrollment 1, CheckOut 2)" test "$(xrange_all mdm:events | grep -cx user_channel_ended)" = 3
check "queue_depth counted the dropped command" test "$(hsum mdm:stats queue_depth)" = 0

# --- migration of 1,000 devices enrolled elsewhere ---
python3 - "$T/migrate.json" <<'PY'
import base64, json, sys
def plist(d):
    body = ''.join('<key>%s</key>%s' % (k, v) for k, v in d.items())
    x = ('<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict>%s</dict></plist>' % body)
    return base64.b64encode(x.encode()).decode()
s = lambda v: '<string>%s</string>' % v
msgs = []
for i in range(1000):
    u = 'MIG-%06d' % i
    msgs.append(plist({'MessageType': s('Authenticate'), 'UDID': s(u), 'Topic': s('com.apple.mgmt.test'),
                       'SerialNumber': s('SNMIG%06d' % i), 'DeviceName': s('Migrated %d' % i)}))
    tok = base64.b64encode(bytes([i % 256]) * 32).decode()
    msgs.append(plist({'MessageType': s('TokenUpdate'), 'UDID': s(u), 'Topic': s('com.apple.mgmt.test'),
                       'PushMagic': s('MAGIC-' + u), 'Token': '<data>%s</data>' % tok}))
json.dump({'messages': msgs}, open(sys.argv[1], 'w'))
PY
t0=$(date +%s%N)
code=$(api POST /v1/migrate "@$T/migrate.json")
t1=$(date +%s%N)
echo "migrate: 1000 devices (2000 messages) in $(( (t1 - t0) / 1000000 )) ms"
check "POST /v1/migrate of 1,000 devices: 200" test "$code" = 200
check "1,000 records created" test "$(jget "$T/api" created)" = 1000
check "enrolled, with their push tokens as hex" \
    test "$(R hget 'mdm:dev:{MIG-000007}' state):$(R hget 'mdm:dev:{MIG-000007}' token)" = "enrolled:$(printf '07%.0s' $(seq 32))"
check "push magic and Authenticate's fields" \
    test "$(R hget 'mdm:dev:{MIG-000999}' push_magic):$(R hget 'mdm:dev:{MIG-000999}' serial_number)" = MAGIC-MIG-000999:SNMIG000999
check "in the fleet and the search index" bash -c "[ $(for k in $(bkeys mdm:devices); do R zcard "$k"; done | awk '{s += $1} END {print s}') -ge 1000 ] && redis-cli -p $REDIS_PORT zrangebylex '$(bkey mdm:idx MIG-000123)' '[snmig000123' '[snmig000123\xff' | grep -q MIG-000123"
check "migrated events" test "$(for k in $(bkeys mdm:events); do R xrange "$k" - +; done | grep -cx migrated)" = 1000
code=$(api POST /v1/migrate "@$T/migrate.json")
check "again: live records are left alone (skipped)" test "$code:$(jget "$T/api" created)" = 200:0
check "a bad message: 400 naming it" bash -c "[ \$(curl -s -o '$T/m.json' -w '%{http_code}' --cacert '$CA' -H 'Authorization: Bearer $(cat "$D/var/api.key")' -d '{\"messages\":[\"bm90IGEgcGxpc3Q=\"]}' https://127.0.0.1:$PUB/v1/migrate) = 400 ] && grep -q 'messages\[0\]' '$T/m.json'"
MSIM=("$BIN/mdmsim" --url "https://127.0.0.1:$MDM/mdm" --ca "$CA" --ca-key "$D/var/ca/ca.key" --udid-prefix MIG -q --skip-enroll --topic "$TOPIC")
"${MSIM[@]}" --identities "$T/mig1" >"$T/out" 2>&1
check "a migrated device's first poll with an MDM-CA identity: accepted" grep -q 'http_errors=0' "$T/out"
check "that certificate is bound to it now" test -n "$(R hget 'mdm:dev:{MIG-000000}' cert_fp)"
"${MSIM[@]}" --identities "$T/mig2" >"$T/out" 2>&1
check "another certificate for it afterwards: refused" grep -q 'http_status=403' "$T/out"
finish

#!/usr/bin/env bash
# Users and content (issue 5, part A): the `mdmd user` CLI, /v1/users, password
# hashing and login throttling, configuration/provisioning profiles and apps
# with their assignments, and the provisioning queued at the first TokenUpdate.
# Real Redis, real TLS.
. "$(dirname "$0")/lib.sh"

TOPIC=com.apple.mgmt.test   # what enroll_device's devices say they listen on
make_push_pki || { fail "push PKI"; finish; }
start_mock_apns || { fail "mock APNs starts"; finish; }
start_redis || { fail "redis starts"; finish; }
D=$T/u
# Devices here enroll by check-in with certificates the test makes.
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT" "enroll_require_issued no" "push_coalesce_ms 0" \
    "provision_on_enroll yes"
apns_conf >>"$D/mdmd.conf"
start_mdmd "$D" || { fail "mdmd starts"; finish; }

# --- REST users ---
check "create user: 201" test "$(api POST /v1/users '{"username":"alice","password":"alice-pw-1","role":"user"}')" = 201
check "create answers name and role" bash -c "grep -q '\"username\":\"alice\"' '$T/api' && grep -q '\"role\":\"user\"' '$T/api'"
check "create admin: 201" test "$(api POST /v1/users '{"username":"root.admin@example.com","password":"admin-pw-1","role":"admin"}')" = 201
check "duplicate: 409" test "$(api POST /v1/users '{"username":"alice","password":"other-pw-1","role":"user"}')" = 409
check "bad role: 400" test "$(api POST /v1/users '{"username":"bob","password":"bob-pw-123","role":"god"}')" = 400
check "bad name: 400" test "$(api POST /v1/users '{"username":"bad name","password":"bob-pw-123","role":"user"}')" = 400
check "short password: 400" test "$(api POST /v1/users '{"username":"bob","password":"short","role":"user"}')" = 400
check "no password: 400" test "$(api POST /v1/users '{"username":"bob","role":"user"}')" = 400
check "not JSON: 400" test "$(api POST /v1/users 'nope')" = 400
check "bob was not created" test "$(R exists $(gkey user:bob))" = 0

H=$(R hget $(gkey user:alice) hash)
check "hash format pbkdf2-sha256\$iter\$salt\$hash" \
    bash -c "echo '$H' | grep -Eq '^pbkdf2-sha256\\\$[0-9]+\\\$[A-Za-z0-9+/]{22}==\\\$[A-Za-z0-9+/]{43}=\$'"
check "iterations >= 600000" test "$(echo "$H" | cut -d'$' -f2)" -ge 600000
check "salt is random (two users, two salts)" \
    test "$(echo "$H" | cut -d'$' -f3)" != "$(R hget $(gkey user:root.admin@example.com) hash | cut -d'$' -f3)"
check "role stored" test "$(R hget $(gkey user:alice) role)" = user
check "created stored" test -n "$(R hget $(gkey user:alice) created)"
check "mdm:users holds both" test "$(R smembers $(gkey users) | sort | tr '\n' ' ')" = "alice root.admin@example.com "
check "password not stored in clear" bash -c "! redis-cli -p $REDIS_PORT --no-raw hgetall $(gkey user:alice) | grep -q alice-pw-1"
check "password not logged" bash -c "! grep -q 'alice-pw-1' '$T/mdmd.log'"

check "list: 200" test "$(api GET /v1/users)" = 200
check "list has both, sorted, no hash" bash -c "grep -q '\"users\":\[{\"username\":\"alice\"' '$T/api' && grep -q root.admin '$T/api' && ! grep -q pbkdf2 '$T/api'"
check "get: 200" test "$(api GET /v1/users/alice)" = 200
check "get shows role and iterations" bash -c "grep -q '\"role\":\"user\"' '$T/api' && grep -q '\"iterations\":600000' '$T/api'"
check "get unknown: 404" test "$(api GET /v1/users/nobody)" = 404
check "no API key: 401" test "$(http_code "https://127.0.0.1:$PUB/v1/users" --cacert "$CA")" = 401

# --- verify (the login check behind POST /enroll) ---
check "verify right password: 200" test "$(api POST /v1/users/alice/verify '{"password":"alice-pw-1"}')" = 200
check "verify answers the role" bash -c "grep -q '\"valid\":true' '$T/api' && grep -q '\"role\":\"user\"' '$T/api'"
check "verify wrong password: 403" test "$(api POST /v1/users/alice/verify '{"password":"wrong-pw-1"}')" = 403
check "verify unknown user: 403" test "$(api POST /v1/users/nobody/verify '{"password":"wrong-pw-1"}')" = 403

# --- password change ---
check "set password: 204" test "$(api PUT /v1/users/alice/password '{"password":"alice-pw-2"}')" = 204
check "hash changed" test "$(R hget $(gkey user:alice) hash)" != "$H"
check "old password refused" test "$(api POST /v1/users/alice/verify '{"password":"alice-pw-1"}')" = 403
check "new password accepted" test "$(api POST /v1/users/alice/verify '{"password":"alice-pw-2"}')" = 200
check "set password of unknown user: 404" test "$(api PUT /v1/users/nobody/password '{"password":"whatever-1"}')" = 404
check "set short password: 400" test "$(api PUT /v1/users/alice/password '{"password":"x"}')" = 400

# --- delete ---
api POST /v1/users '{"username":"carol","password":"carol-pw-1","role":"user"}' >/dev/null
check "delete: 204" test "$(api DELETE /v1/users/carol)" = 204
check "deleted from Redis" test "$(R exists $(gkey user:carol)):$(R sismember $(gkey users) carol)" = 0:0
check "delete again: 404" test "$(api DELETE /v1/users/carol)" = 404
check "wrong method: 405" test "$(api PATCH /v1/users/alice)" = 405

# --- the CLI (same config file, blocking Redis connection) ---
cli() { "$BIN/mdmd" -c "$D/mdmd.conf" user "$@" >"$T/cli.out"; }
check "cli add with --password-stdin" bash -c "echo 'dave-pw-123' | '$BIN/mdmd' -c '$D/mdmd.conf' user add dave --role admin --password-stdin >'$T/cli.out' 2>&1"
check "cli add stored an admin with a 600000-iteration hash" \
    test "$(R hget $(gkey user:dave) role):$(R hget $(gkey user:dave) hash | cut -d'$' -f1,2)" = 'admin:pbkdf2-sha256$600000'
check "cli user can log in through the API" test "$(api POST /v1/users/dave/verify '{"password":"dave-pw-123"}')" = 200
check "cli add with --password" cli add erin --role user --password erin-pw-123
check "cli add again fails" bash -c "! '$BIN/mdmd' -c '$D/mdmd.conf' user add erin --role user --password erin-pw-123 2>'$T/cli.err' && grep -q exists '$T/cli.err'"
check "cli add without --role: usage error 2" bash -c "'$BIN/mdmd' -c '$D/mdmd.conf' user add frank --password frank-pw-123 2>/dev/null; [ \$? = 2 ]"
check "cli add with a bad role: 2" bash -c "'$BIN/mdmd' -c '$D/mdmd.conf' user add frank --role root --password frank-pw-123 2>/dev/null; [ \$? = 2 ]"
check "cli add with a bad name: 2" bash -c "'$BIN/mdmd' -c '$D/mdmd.conf' user add 'fr ank' --role user --password frank-pw-123 2>/dev/null; [ \$? = 2 ]"
check "cli add with a short password fails" bash -c "! '$BIN/mdmd' -c '$D/mdmd.conf' user add frank --role user --password short 2>/dev/null && [ \$(redis-cli -p $REDIS_PORT exists $(gkey user:frank)) = 0 ]"
check "cli list shows users and roles" bash -c "'$BIN/mdmd' -c '$D/mdmd.conf' user list >'$T/cli.out' && grep -Eq '^dave +admin' '$T/cli.out' && grep -Eq '^erin +user' '$T/cli.out'"
check "cli passwd from stdin" bash -c "echo 'erin-pw-456' | '$BIN/mdmd' -c '$D/mdmd.conf' user passwd erin >/dev/null"
check "new password works, old does not" \
    test "$(api POST /v1/users/erin/verify '{"password":"erin-pw-456"}'):$(api POST /v1/users/erin/verify '{"password":"erin-pw-123"}')" = 200:403
check "cli passwd of an unknown user fails" bash -c "! echo 'xxxx-pw-456' | '$BIN/mdmd' -c '$D/mdmd.conf' user passwd nobody 2>/dev/null"
check "cli del" cli del erin
check "cli del removed it" test "$(R exists $(gkey user:erin)):$(R sismember $(gkey users) erin)" = 0:0
check "cli del again fails" bash -c "! '$BIN/mdmd' -c '$D/mdmd.conf' user del erin 2>/dev/null"
check "cli user is visible in the REST list" bash -c "[ \$(curl -s -o '$T/api' -w '%{http_code}' --cacert '$CA' -H \"Authorization: Bearer \$(cat '$D/var/api.key')\" https://127.0.0.1:$PUB/v1/users) = 200 ] && grep -q '\"username\":\"dave\",\"role\":\"admin\"' '$T/api'"
write_conf "$T/priv"
check "cli with the private Redis not running: says so, exits 1" bash -c "
    '$BIN/mdmd' -c '$T/priv/mdmd.conf' user list 2>'$T/cli.err'; rc=\$?
    [ \$rc = 1 ] && grep -q 'private Redis' '$T/cli.err' && grep -q 'not running' '$T/cli.err'"
R del $(gkey loginfail:addr:127.0.0.1) >/dev/null

# --- login throttling: per user ---
R del $(gkey loginfail:addr:127.0.0.1) >/dev/null
for i in 1 2 3 4 5; do api POST /v1/users/alice/verify '{"password":"nope-nope"}' >/dev/null; done
check "5 failures counted for the user" test "$(R get $(gkey loginfail:user:alice))" = 5
check "user counter expires (TTL set)" test "$(R ttl $(gkey loginfail:user:alice))" -gt 0
code=$(curl -s -D "$T/hdr" -o "$T/api" -w '%{http_code}' --cacert "$CA" -X POST \
    -H "Authorization: Bearer $(cat "$D/var/api.key")" --data-binary '{"password":"alice-pw-2"}' \
    "https://127.0.0.1:$PUB/v1/users/alice/verify")
check "6th attempt, even right: 429" test "$code" = 429
check "429 carries Retry-After" bash -c "grep -iq '^Retry-After: [1-9]' '$T/hdr'"
check "other users are not limited by it" test "$(api POST /v1/users/root.admin@example.com/verify '{"password":"admin-pw-1"}')" = 200
R del $(gkey loginfail:user:alice) >/dev/null
check "after the window: right password works" test "$(api POST /v1/users/alice/verify '{"password":"alice-pw-2"}')" = 200

# --- login throttling: per address ---
R del $(gkey loginfail:addr:127.0.0.1) >/dev/null
# 16 failures as if made before (each real one costs a PBKDF2 hash: slow under
# ASan), then 4 real ones from different names: the address counts them all.
R set $(gkey loginfail:addr:127.0.0.1) 16 EX 300 >/dev/null
for i in 1 2 3 4; do api POST /v1/users/ghost$i/verify '{"password":"nope-nope"}' >/dev/null; done
check "20 failures counted for the address" test "$(R get $(gkey loginfail:addr:127.0.0.1))" = 20
check "21st from the address: 429 though the password is right" \
    test "$(api POST /v1/users/alice/verify '{"password":"alice-pw-2"}')" = 429
R del $(gkey loginfail:addr:127.0.0.1) >/dev/null
api POST /v1/users/alice/verify '{"password":"bad-one-1"}' >/dev/null
api POST /v1/users/alice/verify '{"password":"alice-pw-2"}' >/dev/null
check "success: user counter gone, address counter kept" \
    test "$(R exists $(gkey loginfail:user:alice)):$(R get $(gkey loginfail:addr:127.0.0.1))" = 0:1
R del $(gkey loginfail:addr:127.0.0.1) >/dev/null

# --- parallel attempts cannot overshoot the limit (counted before checking) ---
api POST /v1/users '{"username":"gina","password":"gina-pw-123","role":"user"}' >/dev/null
R del $(gkey loginfail:addr:127.0.0.1) >/dev/null
for i in $(seq 1 10); do
    curl -s -o /dev/null -w '%{http_code}\n' --cacert "$CA" -X POST -H "Authorization: Bearer $(cat "$D/var/api.key")" \
        --data-binary '{"password":"wrong-pw-00"}' "https://127.0.0.1:$PUB/v1/users/gina/verify" >"$T/par.$i" &
done
wait_for 30 bash -c "[ \$(cat '$T'/par.* 2>/dev/null | wc -l) = 10 ]"
check "10 parallel wrong passwords: exactly 5 checked (403), 5 refused (429)" \
    test "$(cat "$T"/par.* | sort | uniq -c | tr -s ' ' | tr '\n' ' ')" = " 5 403  5 429 "
check "and the user's counter is exactly 5" test "$(R get $(gkey loginfail:user:gina))" = 5
R del $(gkey loginfail:user:gina) $(gkey loginfail:addr:127.0.0.1) >/dev/null

# --- the same login behind the enrollment page (POST /enroll, form fields) ---
# enroll_login USER PASSWORD: prints the status; headers in $T/hdr, body in $T/enroll.out.
enroll_login() {
    curl -s -D "$T/hdr" -o "$T/enroll.out" -w '%{http_code}' --max-time 10 --cacert "$CA" \
        --data-urlencode "username=$1" --data-urlencode "password=$2" "https://127.0.0.1:$PUB/enroll"
}
check "POST /enroll, right password: 200 and a profile" \
    bash -c "[ \$(curl -s -D '$T/hdr' -o /dev/null -w '%{http_code}' --cacert '$CA' --data-urlencode username=alice --data-urlencode password=alice-pw-2 https://127.0.0.1:$PUB/enroll) = 200 ] && grep -qi '^Content-Type: application/x-apple-aspen-config' '$T/hdr'"
check "POST /enroll, wrong password: 401" test "$(enroll_login alice wrong-pw-99)" = 401
check "POST /enroll, unknown user: 401" test "$(enroll_login nobody wrong-pw-99)" = 401
for i in 1 2 3 4; do enroll_login alice wrong-pw-99 >/dev/null; done
check "POST /enroll, 6th try after 5 failures: 429" test "$(enroll_login alice alice-pw-2)" = 429
check "POST /enroll 429 carries Retry-After" grep -iq '^Retry-After: [1-9]' "$T/hdr"
check "the enrollment page and verify share the counters" \
    test "$(api POST /v1/users/alice/verify '{"password":"alice-pw-2"}')" = 429
R del $(gkey loginfail:user:alice) $(gkey loginfail:user:nobody) $(gkey loginfail:addr:127.0.0.1) >/dev/null


# --- configuration profiles ---
# profile FILE ID [TYPE]: a .mobileconfig (ID "" leaves PayloadIdentifier out).
profile() {
    {
        echo '<?xml version="1.0" encoding="UTF-8"?>'
        echo '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">'
        echo '<plist version="1.0"><dict>'
        echo '<key>PayloadContent</key><array/>'
        echo "<key>PayloadDisplayName</key><string>Profile $2</string>"
        [ -n "$2" ] && echo "<key>PayloadIdentifier</key><string>$2</string>"
        echo "<key>PayloadType</key><string>${3:-Configuration}</string>"
        echo '<key>PayloadUUID</key><string>6A0C1E2D-3B4F-4A5B-8C6D-7E8F9A0B1C2D</string>'
        echo '<key>PayloadVersion</key><integer>1</integer>'
        echo '</dict></plist>'
    } >"$1"
}
# upload PATH FILE: POSTs a file as it is; prints the status, body in $T/api.
upload() {
    curl -s -o "$T/api" -w '%{http_code}' --max-time 10 --cacert "$CA" -X POST \
        -H "Authorization: Bearer $(cat "$D/var/api.key")" -H 'Content-Type: application/octet-stream' \
        --data-binary "@$2" "https://127.0.0.1:$PUB$1"
}
# cms_sign IN OUT: a DER CMS SignedData with the content attached, as Apple signs.
make_client_cert signer "$CA" "$D/var/ca/ca.key" "Profile Signer"
cms_sign() { openssl cms -sign -binary -nodetach -outform DER -in "$1" -signer "$T/signer.crt" -inkey "$T/signer.key" -out "$2"; }
# the stored body, byte for byte
stored_body() { redis-cli -p "$REDIS_PORT" --raw hget "$1" body | head -c -1; }

profile "$T/wifi.mobileconfig" com.example.wifi
profile "$T/bin.xml" com.example.bin && plistutil -i "$T/bin.xml" -o "$T/bin.mobileconfig" -f bin
profile "$T/signed.xml" com.example.signed && cms_sign "$T/signed.xml" "$T/signed.mobileconfig"
profile "$T/wrongtype.mobileconfig" com.example.wrong com.apple.wifi.managed
profile "$T/noid.mobileconfig" ""
echo "this is not a plist" >"$T/junk.mobileconfig"
cp "$T/signed.mobileconfig" "$T/broken.mobileconfig"
# flip a byte inside the signed content: the signature no longer matches
off=$(grep -abo 'Profile com.example.signed' "$T/broken.mobileconfig" | head -1 | cut -d: -f1)
printf 'X' | dd of="$T/broken.mobileconfig" bs=1 seek="$off" conv=notrunc 2>/dev/null

check "XML profile: 201" test "$(upload /v1/profiles "$T/wifi.mobileconfig")" = 201
check "answer names the PayloadIdentifier" grep -q '"identifier":"com.example.wifi"' "$T/api"
check "raw bytes stored once under the identifier" cmp -s <(stored_body $(gkey profile:com.example.wifi)) "$T/wifi.mobileconfig"
check "metadata stored" test "$(R hget $(gkey profile:com.example.wifi) name):$(R hget $(gkey profile:com.example.wifi) signed)" = "Profile com.example.wifi:0"
check "same identifier again: 200, replaced" bash -c "[ \$(curl -s -o '$T/api' -w '%{http_code}' --cacert '$CA' -H 'Authorization: Bearer $(cat "$D/var/api.key")' --data-binary @'$T/wifi.mobileconfig' https://127.0.0.1:$PUB/v1/profiles) = 200 ] && grep -q '\"replaced\":true' '$T/api'"
check "binary plist profile: 201" test "$(upload /v1/profiles "$T/bin.mobileconfig")" = 201
check "CMS-signed profile: 201" test "$(upload /v1/profiles "$T/signed.mobileconfig")" = 201
check "signed profile stored as signed, as uploaded" \
    bash -c "[ \$(redis-cli -p $REDIS_PORT hget $(gkey profile:com.example.signed) signed) = 1 ] && cmp -s <(redis-cli -p $REDIS_PORT --raw hget $(gkey profile:com.example.signed) body | head -c -1) '$T/signed.mobileconfig'"
check "broken signature: 400" test "$(upload /v1/profiles "$T/broken.mobileconfig")" = 400
check "broken signature: says so" grep -q 'signature' "$T/api"
check "not a plist: 400" test "$(upload /v1/profiles "$T/junk.mobileconfig")" = 400
check "not a plist: says so" grep -q 'not a plist' "$T/api"
check "wrong PayloadType: 400" test "$(upload /v1/profiles "$T/wrongtype.mobileconfig")" = 400
check "wrong PayloadType: says so" grep -q 'PayloadType must be Configuration (found com.apple.wifi.managed)' "$T/api"
check "no PayloadIdentifier: 400" test "$(upload /v1/profiles "$T/noid.mobileconfig")" = 400
check "no PayloadIdentifier: says so" grep -q 'PayloadIdentifier is missing' "$T/api"
check "refused uploads stored nothing" test "$(R scard $(gkey profiles))" = 3
check "list: 200" test "$(api GET /v1/profiles)" = 200
check "list has the three, sorted, without bodies" bash -c "grep -o '\"id\":\"[^\"]*\"' '$T/api' | tr '\n' ' ' | grep -qx '\"id\":\"com.example.bin\" \"id\":\"com.example.signed\" \"id\":\"com.example.wifi\" ' && ! grep -q '\"body\"' '$T/api'"
check "get: 200 with the body as base64" bash -c "[ \$(curl -s -o '$T/api' -w '%{http_code}' --cacert '$CA' -H 'Authorization: Bearer $(cat "$D/var/api.key")' https://127.0.0.1:$PUB/v1/profiles/com.example.wifi) = 200 ] && sed -n 's/.*\"body\":\"\([^\"]*\)\".*/\1/p' '$T/api' | base64 -d | cmp -s - '$T/wifi.mobileconfig'"
code=$(curl -s -D "$T/hdr" -o "$T/raw" -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer $(cat "$D/var/api.key")" "https://127.0.0.1:$PUB/v1/profiles/com.example.signed?raw=1")
check "get ?raw=1: the exact bytes, as a profile" bash -c "[ $code = 200 ] && cmp -s '$T/raw' '$T/signed.mobileconfig' && grep -qi '^Content-Type: application/x-apple-aspen-config' '$T/hdr'"
check "get unknown: 404" test "$(api GET /v1/profiles/com.example.none)" = 404
check "delete: 204" test "$(api DELETE /v1/profiles/com.example.bin)" = 204
check "deleted: gone from Redis" test "$(R exists $(gkey profile:com.example.bin)):$(R sismember $(gkey profiles) com.example.bin)" = 0:0
check "delete again: 404" test "$(api DELETE /v1/profiles/com.example.bin)" = 404
check "profiles need the API key" test "$(http_code "https://127.0.0.1:$PUB/v1/profiles" --cacert "$CA")" = 401

# --- provisioning profiles ---
prov() {
    {
        echo '<?xml version="1.0" encoding="UTF-8"?>'
        echo '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">'
        echo '<plist version="1.0"><dict>'
        echo '<key>AppIDName</key><string>Example App</string>'
        echo '<key>ExpirationDate</key><date>2030-01-02T03:04:05Z</date>'
        echo '<key>Name</key><string>Example Distribution</string>'
        echo '<key>TeamName</key><string>Example Inc.</string>'
        [ -n "$2" ] && echo "<key>UUID</key><string>$2</string>"
        echo '<key>Version</key><integer>1</integer>'
        echo '</dict></plist>'
    } >"$1"
}
PP=0F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9
prov "$T/pp.plist" $PP && cms_sign "$T/pp.plist" "$T/pp.mobileprovision"
prov "$T/ppnouuid.plist" "" && cms_sign "$T/ppnouuid.plist" "$T/ppnouuid.mobileprovision"
check "unsigned provisioning profile: 400" test "$(upload /v1/provisioning-profiles "$T/pp.plist")" = 400
check "unsigned: says it must be CMS-signed" grep -q 'CMS-signed' "$T/api"
check "provisioning profile without UUID: 400" test "$(upload /v1/provisioning-profiles "$T/ppnouuid.mobileprovision")" = 400
check "signed provisioning profile: 201" test "$(upload /v1/provisioning-profiles "$T/pp.mobileprovision")" = 201
check "identified by its UUID, bytes stored" cmp -s <(stored_body $(gkey provprofile:$PP)) "$T/pp.mobileprovision"
check "list shows name and expiry" bash -c "[ \$(curl -s -o '$T/api' -w '%{http_code}' --cacert '$CA' -H 'Authorization: Bearer $(cat "$D/var/api.key")' https://127.0.0.1:$PUB/v1/provisioning-profiles) = 200 ] && grep -q '\"uuid\":\"$PP\"' '$T/api' && grep -q '\"expires\":\"2030-01-02T03:04:05Z\"' '$T/api' && grep -q '\"name\":\"Example Distribution\"' '$T/api'"
prov "$T/pp2.plist" 11111111-2222-4333-8444-555555555555 && cms_sign "$T/pp2.plist" "$T/pp2.mobileprovision"
upload /v1/provisioning-profiles "$T/pp2.mobileprovision" >/dev/null
check "delete provisioning profile: 204" test "$(api DELETE /v1/provisioning-profiles/11111111-2222-4333-8444-555555555555)" = 204
check "only one left" test "$(R smembers $(gkey provprofiles))" = $PP

# --- apps ---
check "app by manifest: 201" test "$(api POST /v1/apps '{"identifier":"com.example.manifest","manifest_url":"https://apps.example.com/m.plist","name":"In-house"}')" = 201
check "app by store id: 201" test "$(api POST /v1/apps '{"identifier":"com.example.store","itunes_store_id":361309726}')" = 201
check "both sources: 400" test "$(api POST /v1/apps '{"identifier":"com.example.x","itunes_store_id":1,"manifest_url":"https://a/b"}')" = 400
check "no source: 400" test "$(api POST /v1/apps '{"identifier":"com.example.x"}')" = 400
check "http manifest: 400" test "$(api POST /v1/apps '{"identifier":"com.example.x","manifest_url":"http://a/b"}')" = 400
check "store id not a number: 400" test "$(api POST /v1/apps '{"identifier":"com.example.x","itunes_store_id":"12"}')" = 400
check "bad identifier: 400" test "$(api POST /v1/apps '{"identifier":"com example","itunes_store_id":12}')" = 400
check "refused apps stored nothing" test "$(R scard $(gkey apps))" = 2
check "app list: both, typed" bash -c "[ \$(curl -s -o '$T/api' -w '%{http_code}' --cacert '$CA' -H 'Authorization: Bearer $(cat "$D/var/api.key")' https://127.0.0.1:$PUB/v1/apps) = 200 ] && grep -q '\"itunes_store_id\":361309726' '$T/api' && grep -q '\"manifest_url\":\"https://apps.example.com/m.plist\"' '$T/api'"
api POST /v1/apps '{"identifier":"com.example.gone","itunes_store_id":5}' >/dev/null
check "delete app: 204" test "$(api DELETE /v1/apps/com.example.gone)" = 204
api POST /v1/apps '{"identifier":"com.example.swap","manifest_url":"https://apps.example.com/s.plist","name":"Swap"}' >/dev/null
check "re-publishing an app replaces its fields: 200" test "$(api POST /v1/apps '{"identifier":"com.example.swap","itunes_store_id":77}')" = 200
check "no field of the old version is left" \
    test "$(R hexists $(gkey app:com.example.swap) manifest_url):$(R hexists $(gkey app:com.example.swap) name):$(R hget $(gkey app:com.example.swap) itunes_store_id)" = 0:0:77
api DELETE /v1/apps/com.example.swap >/dev/null

# --- assignment ---
check "assign wifi to alice: 200" test "$(api PUT /v1/profiles/com.example.wifi/assignment '{"users":["alice"],"everyone":false}')" = 200
check "assignment stored" test "$(R smembers $(gkey assign:profile:com.example.wifi)):$(R hget $(gkey profile:com.example.wifi) everyone)" = alice:0
check "uploading it again keeps the assignment" bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' --cacert '$CA' -H 'Authorization: Bearer $(cat "$D/var/api.key")' --data-binary @'$T/wifi.mobileconfig' https://127.0.0.1:$PUB/v1/profiles) = 200 ] && [ \"\$(redis-cli -p $REDIS_PORT smembers $(gkey assign:profile:com.example.wifi))\" = alice ]"
check "unknown user: 400 naming it" bash -c "[ \$(curl -s -o '$T/api' -w '%{http_code}' --cacert '$CA' -X PUT -H 'Authorization: Bearer $(cat "$D/var/api.key")' --data-binary '{\"users\":[\"alice\",\"zed\"]}' https://127.0.0.1:$PUB/v1/profiles/com.example.wifi/assignment) = 400 ] && grep -q zed '$T/api'"
check "refused assignment changed nothing" test "$(R smembers $(gkey assign:profile:com.example.wifi))" = alice
check "assign unknown profile: 404" test "$(api PUT /v1/profiles/com.example.none/assignment '{"users":["alice"]}')" = 404
check "assign with a bad body: 400" test "$(api PUT /v1/profiles/com.example.wifi/assignment '{"users":"alice"}')" = 400
check "signed profile to everyone: 200" test "$(api PUT /v1/profiles/com.example.signed/assignment '{"users":[],"everyone":true}')" = 200
check "provisioning profile to alice: 200" test "$(api PUT /v1/provisioning-profiles/$PP/assignment '{"users":["alice"]}')" = 200
check "manifest app to alice and dave: 200" test "$(api PUT /v1/apps/com.example.manifest/assignment '{"users":["alice","dave"]}')" = 200
check "store app to everyone: 200" test "$(api PUT /v1/apps/com.example.store/assignment '{"everyone":true}')" = 200
check "get shows the assignment" bash -c "[ \$(curl -s -o '$T/api' -w '%{http_code}' --cacert '$CA' -H 'Authorization: Bearer $(cat "$D/var/api.key")' https://127.0.0.1:$PUB/v1/apps/com.example.manifest) = 200 ] && grep -q '\"users\":\[\"alice\",\"dave\"\]' '$T/api' && grep -q '\"everyone\":false' '$T/api'"
check "deleting a user drops its assignments" bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' --cacert '$CA' -X DELETE -H 'Authorization: Bearer $(cat "$D/var/api.key")' https://127.0.0.1:$PUB/v1/users/dave) = 204 ] && [ \"\$(redis-cli -p $REDIS_PORT smembers $(gkey assign:app:com.example.manifest))\" = alice ]"

# --- provisioning at the first TokenUpdate ---
# checkin NAME FILE: one check-in message; prints the status.
checkin() { mdm_put /mdm/checkin "$1" "$2" application/x-apple-aspen-mdm-checkin; }
UA=PROV-ALICE-1
make_client_cert pa "$CA" "$D/var/ca/ca.key" $UA
plist_msg "$T/pa.auth" MessageType Authenticate UDID $UA Topic $TOPIC SerialNumber SN-PA
plist_msg "$T/pa.tok" MessageType TokenUpdate UDID $UA Topic $TOPIC PushMagic "MAGIC-$UA" \
    Token "<data>R+juwGLC9ynsFwPBs+GPGXHYXwC+dkRdNAgLqnAbX1E=</data>"
check "Authenticate: 200" test "$(checkin pa "$T/pa.auth")" = 200
check "nothing queued at Authenticate" test "$(R llen "mdm:q:{$UA}")" = 0
R hset "mdm:dev:{$UA}" user alice >/dev/null   # what the OTA enrollment records
check "first TokenUpdate: 200" test "$(checkin pa "$T/pa.tok")" = 200
Q=($(R lrange "mdm:q:{$UA}" 0 -1))
types=""; for u in "${Q[@]}"; do types="$types$(R hget mdm:cmd:$u request_type) "; done
check "queued in order: 2 profiles, provisioning profile, 2 apps, DeviceInformation" test "$types" = \
    "InstallProfile InstallProfile InstallProvisioningProfile InstallApplication InstallApplication DeviceInformation "
check "each command stored once, with one target" bash -c "for u in ${Q[*]}; do [ \$(redis-cli -p $REDIS_PORT hget mdm:cmd:\$u targets) = 1 ] && [ \$(redis-cli -p $REDIS_PORT ttl mdm:cmd:\$u) -gt 0 ] || exit 1; done"
check "fresh UUIDs" test "$(printf '%s\n' "${Q[@]}" | sort -u | wc -l)" = 6
check "the device was woken" wait_for 10 grep -q "MAGIC-$UA 200" "$T/pushes"

# data_of FILE KEY: the bytes of the <data> value of KEY in an XML plist.
data_of() { sed -n "/<key>$2<\/key>/,/<\/data>/p" "$1" | sed -e "s/<key>$2<\/key>//" -e 's/<[^>]*>//g' | tr -d ' \t\n' | base64 -d; }
poll pa $UA Idle
check "Idle gets the first: the signed profile (sorted by id)" test "$CODE:$NEXT" = "200:${Q[0]}"
check "InstallProfile carries the stored bytes as data" cmp -s <(data_of "$T/resp" Payload) "$T/signed.mobileconfig"
poll pa $UA Acknowledged "${Q[0]}"
check "then the wifi profile assigned to alice" test "$NEXT" = "${Q[1]}"
check "wifi payload is the stored profile" cmp -s <(data_of "$T/resp" Payload) "$T/wifi.mobileconfig"
poll pa $UA Acknowledged "${Q[1]}"
check "then the provisioning profile, its bytes" bash -c "[ '$NEXT' = '${Q[2]}' ] && grep -q InstallProvisioningProfile '$T/resp'"
check "provisioning profile payload is the .mobileprovision" cmp -s <(data_of "$T/resp" ProvisioningProfile) "$T/pp.mobileprovision"
poll pa $UA Acknowledged "${Q[2]}"
check "then the manifest app, managed" bash -c "[ '$NEXT' = '${Q[3]}' ] && grep -q 'https://apps.example.com/m.plist' '$T/resp' && grep -A1 ManagementFlags '$T/resp' | grep -q '<integer>1</integer>'"
poll pa $UA Acknowledged "${Q[3]}"
check "then the store app by iTunesStoreID" bash -c "[ '$NEXT' = '${Q[4]}' ] && grep -A1 iTunesStoreID '$T/resp' | grep -q '<integer>361309726</integer>'"
poll pa $UA Acknowledged "${Q[4]}"
check "then DeviceInformation with its queries" bash -c "[ '$NEXT' = '${Q[5]}' ] && grep -q DeviceInformation '$T/resp' && grep -q '<string>SerialNumber</string>' '$T/resp' && grep -q '<string>OSVersion</string>' '$T/resp'"
poll pa $UA Acknowledged "${Q[5]}" QueryResponses "<dict><key>DeviceName</key><string>Alice phone</string><key>OSVersion</key><string>17.6</string><key>SerialNumber</key><string>SN-PA</string></dict>"
check "nothing left; the record shows the collected information" \
    test "$CODE:$NEXT:$(R llen "mdm:q:{$UA}"):$(R hget "mdm:dev:{$UA}" device_name)" = "200::0:Alice phone"
check "a second TokenUpdate queues nothing" bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' --cacert '$CA' --cert '$T/pa.crt' --key '$T/pa.key' -X PUT -H 'Content-Type: application/x-apple-aspen-mdm-checkin' --data-binary @'$T/pa.tok' https://127.0.0.1:$MDM/mdm/checkin) = 200 ] && [ \$(redis-cli -p $REDIS_PORT llen 'mdm:q:{$UA}') = 0 ]"

UB=PROV-NOUSER-1
check "a device without a user enrolls" enroll_device pb $UB
QB=($(R lrange "mdm:q:{$UB}" 0 -1))
types=""; for u in "${QB[@]}"; do types="$types$(R hget mdm:cmd:$u request_type) "; done
check "it gets only the everyone content, then DeviceInformation" test "$types" = "InstallProfile InstallApplication DeviceInformation "
check "its profile is the one assigned to everyone" bash -c "redis-cli -p $REDIS_PORT --raw hget mdm:cmd:${QB[0]} plist | grep -q InstallProfile && [ '$(R hget mdm:cmd:${QB[1]} request_type)' = InstallApplication ]"


# provision_on_enroll no (applied by SIGHUP): a new device's queue stays empty.
sed -i 's/^provision_on_enroll yes$/provision_on_enroll no/' "$D/mdmd.conf"
kill -HUP "$MDMD_PID"
check "SIGHUP reloads the configuration" wait_for 10 grep -q 'event=reloaded' "$T/mdmd.log"
UC=PROV-OFF-1
check "with provisioning off, a device enrolls" enroll_device pc $UC
check "and nothing is queued for it" test "$(R llen "mdm:q:{$UC}"):$(R hget "mdm:dev:{$UC}" state)" = 0:enrolled


# --- the CLI against the private Redis of a running mdmd (no `redis` set) ---
if start_mdmd "$T/priv"; then
    D=$T/priv
    check "cli add on the private Redis of the running mdmd" \
        bash -c "echo 'pat-pw-1234' | '$BIN/mdmd' -c '$T/priv/mdmd.conf' user add pat --role admin --password-stdin >/dev/null"
    check "that mdmd logs the user in" test "$(api POST /v1/users/pat/verify '{"password":"pat-pw-1234"}')" = 200
    check "cli list on the private Redis" bash -c "'$BIN/mdmd' -c '$T/priv/mdmd.conf' user list | grep -Eq '^pat +admin'"
else
    fail "second mdmd with a private Redis starts"
fi

finish

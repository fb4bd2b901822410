#!/usr/bin/env bash
# Over-the-air enrollment end to end (issue 5, DESIGN.md "OTA enrollment"):
# mdmsim walks the profile service as an iPhone does (login, phase 1 signed
# with its own device certificate, phase 2 signed with the OTA identity, then
# Authenticate + TokenUpdate with the issued identity and the provisioning
# commands); openssl plays the device for the refusals (replayed and expired
# challenges, a broken signature, foreign signers); the issued-certificate
# registry, the binding at Authenticate and the revocations; every profile
# served is checked against Apple's schema in ../shared (skipped, and said
# so, when it is absent).
. "$(dirname "$0")/lib.sh"
SCHEMA=$TOP/../shared/apple-device-management/mdm/profiles
TOPIC=com.apple.mgmt.External.0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b
PW='correct horse battery'

start_redis || { fail "redis starts"; finish; }

# The devices' own CA (Apple's iPhone Device CA in real life) and a foreign one.
mkca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
        -keyout "$T/$1.key" -out "$T/$1.crt" -days 2 2>/dev/null
}
mkca dca "Test iPhone Device CA" && mkca other "Some Other CA" || { fail "test CAs"; finish; }

PUBP=$(free_port); MDMP=$(free_port)
D=$T/a
conf() {
    write_conf "$D" "listen 127.0.0.1:$PUBP" "mdm_listen 127.0.0.1:$MDMP" \
        "public_url https://127.0.0.1:$PUBP" "mdm_url https://127.0.0.1:$MDMP" \
        "redis 127.0.0.1:$REDIS_PORT" "apns_topic $TOPIC" "enroll_device_ca_file $T/dca.crt" \
        "enroll_require_issued yes" "provision_on_enroll yes" "crypto_threads 2" "$@"
}
conf
start_mdmd "$D" || { fail "mdmd starts"; finish; }
SIM=("$BIN/mdmsim" --url "https://127.0.0.1:$MDM/mdm" --ca "$CA" --enroll-ota "https://127.0.0.1:$PUB"
     --user alice --password "$PW" --device-ca "$T/dca.crt" --device-ca-key "$T/dca.key" -q)

# (password hashing is slow under the sanitizers: a long timeout)
code=$(curl -s -o "$T/api" -w '%{http_code}' --max-time 120 --cacert "$CA" -H "Authorization: Bearer $(cat "$D/var/api.key")" \
    -H 'Content-Type: application/json' --data "{\"username\":\"alice\",\"password\":\"$PW\",\"role\":\"user\"}" "https://127.0.0.1:$PUB/v1/users")
check "user alice created" test "$code" = 201

# --- the page ---
code=$(curl -s -D "$T/page.h" -o "$T/page" -w '%{http_code}' --cacert "$CA" "https://127.0.0.1:$PUB/enroll")
check "GET /enroll: 200 HTML" bash -c "[ $code = 200 ] && grep -qi '^content-type: text/html' '$T/page.h'"
check "page links the CA certificate" grep -q 'href="/mdm/ca"' "$T/page"
check "page has the login form" bash -c "grep -q 'action=\"/enroll\"' '$T/page' && grep -q 'name=\"username\"' '$T/page' && grep -q 'name=\"password\"' '$T/page'"
check "page loads nothing from elsewhere" bash -c "! grep -Eq '(src|href)=\"(https?:)?//' '$T/page'"
# form POSTs; prints the status, body in $T/form, headers in $T/form.h
login() { curl -s -D "$T/form.h" -o "$T/form" -w '%{http_code}' --cacert "$CA" --data "$1" "https://127.0.0.1:$PUB/enroll"; }
code=$(login 'username=alice&password=nope')
check "wrong password: 401 and the page again" bash -c "[ $code = 401 ] && grep -q 'Wrong user name or password' '$T/form' && grep -q 'name=\"password\"' '$T/form'"
code=$(login 'username=mallory&password=nope')
check "unknown user: 401, same answer" bash -c "[ $code = 401 ] && grep -q 'Wrong user name or password' '$T/form'"
check "missing password: 400" test "$(login 'username=alice')" = 400
for i in 1 2 3 4 5 6; do code=$(login 'username=mallory&password=guess'); [ "$code" = 429 ] && break; done
check "repeated failures for one name: 429, the page, Retry-After" bash -c "[ $code = 429 ] &&
    grep -q 'Too many failed sign-ins' '$T/form' && grep -qi '^retry-after: [1-9]' '$T/form.h'"
check "no profile served to a failed login" bash -c "! grep -qi 'aspen-config' '$T/form.h'"
check "refused logins left no challenge behind" test "$(scan_all "$(gkey 'enroll:chal:*')" | wc -l)" = 0

# --- content assigned to alice: provisioning after enrollment ---
cat >"$T/wifi.mobileconfig" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>PayloadContent</key><array/>
<key>PayloadDisplayName</key><string>Wi-Fi</string><key>PayloadIdentifier</key><string>com.example.enroll.wifi</string>
<key>PayloadType</key><string>Configuration</string><key>PayloadUUID</key><string>2B1C0D9E-8F7A-4B6C-9D5E-4F3A2B1C0D9E</string>
<key>PayloadVersion</key><integer>1</integer></dict></plist>
EOF
up=$(curl -s -o "$T/api" -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer $(cat "$D/var/api.key")" \
    -H 'Content-Type: application/octet-stream' --data-binary "@$T/wifi.mobileconfig" "https://127.0.0.1:$PUB/v1/profiles")
check "profile uploaded" test "$up" = 201
check "and assigned to alice" test "$(api PUT /v1/profiles/com.example.enroll.wifi/assignment '{"users":["alice"]}')" = 200
cat >"$T/pp.plist" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>AppIDName</key><string>Example App</string>
<key>ExpirationDate</key><date>2030-01-02T03:04:05Z</date><key>Name</key><string>Example Distribution</string>
<key>UUID</key><string>5C4B3A29-1807-4F6E-9D5C-4B3A29180706</string><key>Version</key><integer>1</integer></dict></plist>
EOF
make_client_cert ppsigner "$CA" "$D/var/ca/ca.key" "Provisioning Signer" &&
openssl cms -sign -binary -nodetach -outform DER -in "$T/pp.plist" -signer "$T/ppsigner.crt" -inkey "$T/ppsigner.key" -out "$T/pp.mobileprovision"
up=$(curl -s -o "$T/api" -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer $(cat "$D/var/api.key")" \
    -H 'Content-Type: application/octet-stream' --data-binary "@$T/pp.mobileprovision" "https://127.0.0.1:$PUB/v1/provisioning-profiles")
check "provisioning profile uploaded" test "$up" = 201
check "and assigned to alice" test "$(api PUT /v1/provisioning-profiles/5C4B3A29-1807-4F6E-9D5C-4B3A29180706/assignment '{"users":["alice"]}')" = 200
check "app published" test "$(api POST /v1/apps '{"identifier":"com.example.enroll.app","itunes_store_id":361309726}')" = 201
check "and assigned to alice" test "$(api PUT /v1/apps/com.example.enroll.app/assignment '{"users":["alice"]}')" = 200

# --- full enrollment: three devices at once ---
"${SIM[@]}" -n 3 -c 3 --udid-prefix OTA --dump-dir "$T/dump" --ledger "$T/ledger" >"$T/sim1.out" 2>"$T/sim1.err"
rc=$?
check "mdmsim enrolls 3 devices over the air without an error" bash -c "[ $rc = 0 ] && grep -q 'ota_enrolled=3 ' '$T/sim1.out' && grep -q ' enrolled=3 ' '$T/sim1.out'"
[ "$rc" = 0 ] || cat "$T/sim1.err"
U=OTA-000000
check "device records enrolled" bash -c "for i in 0 1 2; do [ \"\$(redis-cli -p $REDIS_PORT hget 'mdm:dev:{OTA-00000'\$i'}' state)\" = enrolled ] || exit 1; done"
check "device record links the user" test "$(R hget "mdm:dev:{$U}" user)" = alice
fp=$(openssl x509 -in "$T/dump/$U.identity.pem" -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1)
check "the identity issued in phase 2 is the one bound at Authenticate" \
    test "$(R hget "mdm:dev:{$U}" issued_fp):$(R hget "mdm:dev:{$U}" cert_fp)" = "$fp:$fp"
check "registry: device identity issued to the UDID and user" \
    test "$(R hmget "mdm:cert:$fp" kind state udid user | paste -sd:)" = "device:issued:$U:alice"
ofp=$(openssl x509 -in "$T/dump/$U.ota.pem" -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1)
check "registry: OTA identity used up" test "$(R hmget "mdm:cert:$ofp" kind state revoked_reason | paste -sd:)" = "ota:revoked:used"
check "identity certificate: CN = UDID, issued by the MDM CA, clientAuth" bash -c "
    openssl x509 -in '$T/dump/$U.identity.pem' -noout -subject | grep -q 'CN *= *$U' &&
    openssl verify -CAfile '$CA' -purpose sslclient '$T/dump/$U.identity.pem' >/dev/null 2>&1"
check "identity key is RSA 2048 (device_key_type)" bash -c "openssl x509 -in '$T/dump/$U.identity.pem' -noout -text | grep -q 'Public-Key: (2048 bit)'"
check "challenge used up" test "$(scan_all "$(gkey 'enroll:chal:*')" | wc -l)" = 0
check "cert_issued events written" test "$(xrange_all mdm:events | grep -cx cert_issued)" = 3
check "provisioning commands arrived and were acknowledged (4 per device)" bash -c "
    for i in 0 1 2; do for c in InstallProfile InstallProvisioningProfile InstallApplication DeviceInformation; do
        grep -q \"^OTA-00000\$i .* \$c Acknowledged\" '$T/ledger' || exit 1; done; done"
check "DeviceInformation filled the record" test "$(R hget "mdm:dev:{$U}" os_version)" = 17.5

# --- the profiles: signed by the server, served as they should be ---
check "every profile verifies against the MDM CA" bash -c "for f in '$T'/dump/$U.*.mobileconfig; do
    openssl cms -verify -inform DER -in \"\$f\" -CAfile '$CA' -purpose any -binary -out /dev/null 2>/dev/null || exit 1; done"
check "signer is the TLS server certificate" bash -c "openssl cms -verify -inform DER -in '$T/dump/$U.mdm.mobileconfig' -CAfile '$CA' -purpose any -signer '$T/signer.pem' -out /dev/null 2>/dev/null && cmp -s <(openssl x509 -in '$T/signer.pem' -outform DER) <(openssl x509 -in '$D/var/ca/server.crt' -outform DER)"
check "Profile Service asks for the attributes and posts to /enroll/ota" bash -c "grep -q '<string>https://127.0.0.1:$PUB/enroll/ota</string>' '$T/dump/$U.service.plist' &&
    for a in UDID VERSION PRODUCT SERIAL IMEI MEID DEVICE_NAME; do grep -q \"<string>\$a</string>\" '$T/dump/$U.service.plist' || exit 1; done"
check "MDM payload: URLs, topic, access rights, check-out" bash -c "f='$T/dump/$U.mdm.plist';
    grep -q '<string>https://127.0.0.1:$MDM/mdm/connect</string>' \$f && grep -q '<string>https://127.0.0.1:$MDM/mdm/checkin</string>' \$f &&
    grep -q '<string>$TOPIC</string>' \$f && grep -A1 AccessRights \$f | grep -q '<integer>8191</integer>' &&
    grep -A1 CheckOutWhenRemoved \$f | grep -q '<true/>' && grep -A1 SignMessage \$f | grep -q '<false/>'"
check "MDM payload's identity UUID names the PKCS12 payload" bash -c "f='$T/dump/$U.mdm.plist';
    id=\$(grep -A1 IdentityCertificateUUID \$f | sed -n 's/.*<string>\(.*\)<\/string>.*/\1/p');
    [ -n \"\$id\" ] && grep -B12 \"<string>\$id</string>\" \$f | grep -q com.apple.security.pkcs12"

# --- Apple's schema ---
mkdir -p "$T/schema"
# The Profile Service payload is not in the schema files; this is what Apple's
# "Over-the-Air Profile Delivery and Configuration" document specifies.
cat >"$T/schema/Profile Service.yaml" <<'EOF'
title: Profile Service
payloadkeys:
- key: PayloadContent
  type: <dictionary>
  presence: required
  subkeys:
  - key: URL
    type: <string>
    presence: required
    format: ^https://.*$
  - key: DeviceAttributes
    type: <array>
    presence: required
    subkeys:
    - key: DeviceAttributesItem
      type: <string>
      rangelist:
      - UDID
      - VERSION
      - PRODUCT
      - SERIAL
      - MAC_ADDRESS_EN0
      - DEVICE_NAME
      - IMEI
      - MEID
      - ICCID
      - COMPROMISED
  - key: Challenge
    type: <string>
    presence: optional
EOF
if [ -f "$SCHEMA/TopLevel.yaml" ]; then
    "$BIN/profcheck" -s "$SCHEMA" -s "$T/schema" "$T"/dump/*.plist >"$T/profcheck.out"; rc=$?
    check "every profile served has the keys Apple's schema requires, with its types (9 profiles)" \
        bash -c "[ $rc = 0 ] && grep -q '^profiles=9 ' '$T/profcheck.out'"
    [ "$rc" = 0 ] || cat "$T/profcheck.out"
    check "the check covers every key of every payload (> 250)" \
        test "$(sed -n 's/.*keys=\([0-9]*\).*/\1/p' "$T/profcheck.out")" -gt 250
    # The checker must catch what it is there for.
    sed -e 's/<key>Topic<\/key>/<key>Topique<\/key>/' "$T/dump/$U.mdm.plist" >"$T/bad1.plist"
    check "schema check catches a missing required key" bash -c "'$BIN/profcheck' -s '$SCHEMA' '$T/bad1.plist' | grep -q 'required key Topic is missing'"
    sed -e '/<key>AccessRights<\/key>/{n;s/<integer>8191<\/integer>/<string>8191<\/string>/}' "$T/dump/$U.mdm.plist" >"$T/bad2.plist"
    check "schema check catches a wrong type" bash -c "'$BIN/profcheck' -s '$SCHEMA' '$T/bad2.plist' | grep -q 'AccessRights: has type <string>'"
    sed -e 's/<key>SignMessage<\/key>/<key>SignMessages<\/key>/' "$T/dump/$U.mdm.plist" >"$T/bad3.plist"
    check "schema check catches a key the schema does not have" bash -c "'$BIN/profcheck' -s '$SCHEMA' '$T/bad3.plist' | grep -q 'SignMessages: is not a key'"
else
    echo "skip: Apple's schema ($SCHEMA) is absent: profiles not checked against it"
fi

# --- the device side by hand (openssl): refusals ---
# devcert NAME CA CN: a certificate of CA for the device (phase 1 signer).
devcert() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$3" \
        -keyout "$T/$1.key" -out "$T/$1.csr" 2>/dev/null &&
    openssl x509 -req -in "$T/$1.csr" -CA "$T/$2.crt" -CAkey "$T/$2.key" -CAcreateserial -days 2 \
        -out "$T/$1.crt" 2>/dev/null && cat "$T/$1.crt" "$T/$1.key" >"$T/$1.pem"
}
# attrs FILE UDID CHALLENGE: the plist a device signs.
attrs() {
    plist_msg "$1" UDID "$2" VERSION 21F79 PRODUCT iPhone15,2 SERIAL "SN-$2" DEVICE_NAME "Phone $2" CHALLENGE "$3"
}
# sign IN PEM OUT: CMS SignedData, content attached, as iOS sends it.
sign() { openssl cms -sign -binary -nodetach -outform DER -in "$1" -signer "$2" -out "$3" 2>/dev/null; }
# ota FILE: POSTs a signed reply; prints the status, body in $T/ota.
ota() { curl -s -o "$T/ota" -w '%{http_code}' --cacert "$CA" -H 'Content-Type: application/pkcs7-signature' --data-binary "@$1" "https://127.0.0.1:$PUB/enroll/ota"; }
# challenge: logs alice in through mdmsim (it checks the profile) and prints the challenge.
challenge() {
    "${SIM[@]}" --udid-prefix "$1" --dump-dir "$T/d-$1" --enroll-until service >/dev/null 2>&1 &&
    grep -A1 '<key>Challenge</key>' "$T/d-$1/$1-000000.service.plist" | sed -n 's/.*<string>\(.*\)<\/string>.*/\1/p'
}
devcert dev1 dca DEVICE-1 && devcert foreign other DEVICE-2 && devcert foreign_ota other PH2-000000

CH=$(challenge HAND)
check "login through mdmsim gives a challenge" test -n "$CH"
attrs "$T/a1.plist" HAND-1 "$CH" && sign "$T/a1.plist" "$T/dev1.pem" "$T/a1.p7"
code=$(ota "$T/a1.p7")
check "phase 1 signed by a device certificate: 200, a signed profile" bash -c "[ $code = 200 ] && openssl cms -verify -inform DER -in '$T/ota' -CAfile '$CA' -purpose any -binary 2>/dev/null | grep -q com.apple.security.pkcs12"
check "replayed challenge: 403" test "$(ota "$T/a1.p7")" = 403
CH=$(challenge HAND2)
attrs "$T/a2.plist" HAND-2 "$CH" && sign "$T/a2.plist" "$T/foreign.pem" "$T/a2.p7"
check "phase 1 signed by a certificate of another CA: 403" test "$(ota "$T/a2.p7")" = 403
attrs "$T/a2b.plist" HAND-2 "$CH" && sign "$T/a2b.plist" "$T/dev1.pem" "$T/a2b.p7"
cp "$T/a2b.p7" "$T/a2x.p7"
# flip one byte of the signature (the DER ends with it)
sz=$(stat -c %s "$T/a2x.p7"); b=$(tail -c 5 "$T/a2x.p7" | head -c 1 | od -An -tu1 | tr -d ' ')
printf "$(printf '\\%03o' $(( (b + 1) % 256 )))" | dd of="$T/a2x.p7" bs=1 seek=$((sz - 5)) conv=notrunc 2>/dev/null
check "broken signature: 400" test "$(ota "$T/a2x.p7")" = 400
echo "not cms" >"$T/junk.p7"
check "not CMS at all: 400" test "$(ota "$T/junk.p7")" = 400
check "the refused replies did not use up the challenge: the good one still works" test "$(ota "$T/a2b.p7")" = 200
attrs "$T/a3.plist" HAND-3 "NotAChallengeOfOursNotAChallenge" && sign "$T/a3.plist" "$T/dev1.pem" "$T/a3.p7"
check "unknown challenge: 403" test "$(ota "$T/a3.p7")" = 403
# Guessing: 20 unknown challenges per address and window, then 429 without a lookup.
n0=$(R get "$(gkey chalfail:addr:127.0.0.1)")
for i in $(seq 30); do c=$(ota "$T/a3.p7"); [ "$c" = 429 ] && break; done
check "guessing challenges: 429 at the 21st unknown one from an address (had $n0)" test "$c:$i" = "429:$((21 - n0))"
CH=$(challenge HAND4)
attrs "$T/a4.plist" HAND-4 "$CH" && sign "$T/a4.plist" "$T/dev1.pem" "$T/a4.p7"
code=$(curl -s -D "$T/a4.hdr" -o /dev/null -w '%{http_code}' --cacert "$CA" -H 'Content-Type: application/pkcs7-signature' --data-binary "@$T/a4.p7" "https://127.0.0.1:$PUB/enroll/ota")
check "while limited, a good challenge is refused too: 429 with Retry-After" \
    bash -c "[ $code = 429 ] && grep -iq '^Retry-After: [1-9]' '$T/a4.hdr'"
check "and not used up" test "$(R exists "$(gkey "enroll:chal:$CH")")" = 1
check "the refusal is logged with the address" grep -q 'event=enroll_refused udid=HAND-4 phase=1 status=429 .*peer=127.0.0.1' "$T/mdmd.log"
R del "$(gkey chalfail:addr:127.0.0.1)" >/dev/null
check "once the window is over it works" test "$(ota "$T/a4.p7")" = 200

# phase 2 with foreign signers
"${SIM[@]}" --udid-prefix PH2 --dump-dir "$T/d-ph2" --enroll-until ota >/dev/null 2>&1
check "mdmsim stops after phase 1 with the OTA identity" test -s "$T/d-ph2/PH2-000000.ota.pem"
P=PH2-000000
attrs "$T/b1.plist" $P "" && sign "$T/b1.plist" "$T/foreign_ota.pem" "$T/b1.p7"
check "OTA reply signed by a certificate from another CA: 403" test "$(ota "$T/b1.p7")" = 403
make_client_cert mdmfake "$CA" "$D/var/ca/ca.key" $P && cat "$T/mdmfake.crt" "$T/mdmfake.key" >"$T/mdmfake.pem"
sign "$T/b1.plist" "$T/mdmfake.pem" "$T/b2.p7"
check "OTA reply signed by an MDM-CA certificate that is no OTA identity: 403" test "$(ota "$T/b2.p7")" = 403
attrs "$T/b3.plist" PH2-OTHER "" && sign "$T/b3.plist" "$T/d-ph2/$P.ota.pem" "$T/b3.p7"
check "OTA identity used for another UDID: 403" test "$(ota "$T/b3.p7")" = 403
sign "$T/b1.plist" "$T/d-ph2/$P.ota.pem" "$T/b4.p7"
code=$(ota "$T/b4.p7")
check "OTA reply signed by the OTA identity: 200, the MDM profile" bash -c "[ $code = 200 ] && openssl cms -verify -inform DER -in '$T/ota' -CAfile '$CA' -purpose any -binary 2>/dev/null | grep -q com.apple.mdm"
check "OTA identity works once: 403" test "$(ota "$T/b4.p7")" = 403
check "refusals logged with their reason" grep -q 'event=enroll_refused udid=PH2-000000 phase=2 status=403 reason="enrollment identity already used"' "$T/mdmd.log"

# --- binding at Authenticate ---
# checkin PEM FILE: a check-in with the identity in PEM; prints the status.
checkin() { curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" --cert "$1" -X PUT -H 'Content-Type: application/x-apple-aspen-mdm-checkin' --data-binary "@$2" "https://127.0.0.1:$MDM/mdm/checkin"; }
connect() { curl -s -o "$T/resp" -w '%{http_code}' --cacert "$CA" --cert "$1" -X PUT --data-binary "@$2" "https://127.0.0.1:$MDM/mdm/connect"; }
plist_msg "$T/ph2.auth" MessageType Authenticate UDID $P Topic $TOPIC
check "the OTA identity cannot check in: 403" test "$(checkin "$T/d-ph2/$P.ota.pem" "$T/ph2.auth")" = 403
check "once enrolled over the air, no other certificate of the CA: 403" test "$(checkin "$T/mdmfake.pem" "$T/ph2.auth")" = 403
check "refused as cert_mismatch" grep -q "event=device_refused udid=$P .*reason=cert_mismatch" "$T/mdmd.log"
make_client_cert fresh "$CA" "$D/var/ca/ca.key" FRESH-1 && cat "$T/fresh.crt" "$T/fresh.key" >"$T/fresh.pem"
plist_msg "$T/fresh.auth" MessageType Authenticate UDID FRESH-1 Topic $TOPIC
check "a certificate of the CA that enrollment did not issue: 403 (enroll_require_issued)" test "$(checkin "$T/fresh.pem" "$T/fresh.auth")" = 403
check "refused as not_issued, nothing recorded" bash -c "grep -q 'event=device_refused udid=FRESH-1 .*reason=not_issued' '$T/mdmd.log' && [ \$(redis-cli -p $REDIS_PORT exists 'mdm:dev:{FRESH-1}') = 0 ]"

# --- re-enrollment: the old identity is revoked ---
cp "$T/dump/OTA-000001.identity.pem" "$T/old1.pem"
plist_msg "$T/idle1.plist" UDID OTA-000001 Status Idle
check "before: the identity works" test "$(connect "$T/old1.pem" "$T/idle1.plist")" = 200
"${SIM[@]}" --udid-prefix OTA --offset 1 --dump-dir "$T/d-re1" --enroll-until mdm >/dev/null 2>&1
check "re-enrollment issued a new identity" bash -c "[ -s '$T/d-re1/OTA-000001.identity.pem' ] && ! cmp -s '$T/d-re1/OTA-000001.identity.pem' '$T/old1.pem'"
check "the old identity is refused at once (revoked): 403" test "$(connect "$T/old1.pem" "$T/idle1.plist")" = 403
check "refused as revoked" grep -q "event=device_refused udid=OTA-000001 .*reason=revoked" "$T/mdmd.log"
old1=$(openssl x509 -in "$T/old1.pem" -outform DER | sha256sum | cut -d' ' -f1)
check "registry: old identity revoked (reenrolled)" test "$(R hmget "mdm:cert:$old1" state revoked_reason | paste -sd:)" = "revoked:reenrolled"
plist_msg "$T/re1.auth" MessageType Authenticate UDID OTA-000001 Topic $TOPIC
check "the old identity cannot authenticate again: 403" test "$(checkin "$T/old1.pem" "$T/re1.auth")" = 403
check "the new identity authenticates: 200" test "$(checkin "$T/d-re1/OTA-000001.identity.pem" "$T/re1.auth")" = 200
check "and polls: 200" test "$(connect "$T/d-re1/OTA-000001.identity.pem" "$T/idle1.plist")" = 200
cp "$T/dump/OTA-000000.identity.pem" "$T/old0.pem"
"${SIM[@]}" --udid-prefix OTA -n 1 --dump-dir "$T/d-re0" >"$T/sim2.out" 2>&1
check "full re-enrollment of a UDID with mdmsim: enrolled again" bash -c "grep -q 'ota_enrolled=1 ' '$T/sim2.out' && grep -q ' enrolled=1 ' '$T/sim2.out' && [ \"\$(redis-cli -p $REDIS_PORT hget 'mdm:dev:{OTA-000000}' state)\" = enrolled ]"
plist_msg "$T/idle0.plist" UDID OTA-000000 Status Idle
check "its old identity: 403" test "$(connect "$T/old0.pem" "$T/idle0.plist")" = 403

# --- CheckOut, then re-enrollment ---
U2=OTA-000002
cp "$T/dump/$U2.identity.pem" "$T/old2.pem"
plist_msg "$T/out2.plist" MessageType CheckOut UDID $U2 Topic $TOPIC
plist_msg "$T/idle2.plist" UDID $U2 Status Idle
check "CheckOut: 200" test "$(checkin "$T/old2.pem" "$T/out2.plist")" = 200
old2=$(openssl x509 -in "$T/old2.pem" -outform DER | sha256sum | cut -d' ' -f1)
check "checked out; certificate revoked (checkout)" test "$(R hget "mdm:dev:{$U2}" state):$(R hmget "mdm:cert:$old2" state revoked_reason | paste -sd:)" = "checked_out:revoked:checkout"
check "after CheckOut the identity is refused: 403" test "$(connect "$T/old2.pem" "$T/idle2.plist")" = 403
plist_msg "$T/auth2.plist" MessageType Authenticate UDID $U2 Topic $TOPIC
check "and cannot authenticate again: 403" test "$(checkin "$T/old2.pem" "$T/auth2.plist")" = 403
"${SIM[@]}" --udid-prefix OTA --offset 2 -n 1 --dump-dir "$T/d-re2" --ledger "$T/ledger2" >"$T/sim3.out" 2>&1
check "re-enrollment after CheckOut: enrolled, provisioned again" bash -c "grep -q ' enrolled=1 ' '$T/sim3.out' && [ \"\$(redis-cli -p $REDIS_PORT hget 'mdm:dev:{$U2}' state)\" = enrolled ] && grep -q InstallProfile '$T/ledger2'"
check "the old identity stays refused: 403" test "$(connect "$T/old2.pem" "$T/idle2.plist")" = 403

# --- SIGHUP loads the signing identity again; enrollment goes on ---
kill -HUP "$MDMD_PID"
check "SIGHUP reloads" wait_for 10 grep -q 'event=reloaded' "$T/mdmd.log"
check "after SIGHUP the profiles are still signed and verify" test -n "$(challenge HUP)"

# --- expired challenge and OTA identity (short TTL) ---
kill -TERM "$MDMD_PID"; wait "$MDMD_PID"
conf "enroll_challenge_ttl_s 1"
start_mdmd "$D" || fail "mdmd restarts with a 1 s challenge TTL"
CH=$(challenge EXP)
attrs "$T/e1.plist" EXP-1 "$CH" && sign "$T/e1.plist" "$T/dev1.pem" "$T/e1.p7"
check "the challenge expires in Redis" wait_for 5 bash -c "[ \$(redis-cli -p $REDIS_PORT exists '$(gkey "enroll:chal:$CH")') = 0 ]"
check "expired challenge: 403" test "$(ota "$T/e1.p7")" = 403
"${SIM[@]}" --udid-prefix EXP2 --dump-dir "$T/d-exp" --enroll-until ota >/dev/null 2>&1
attrs "$T/e2.plist" EXP2-000000 "" && sign "$T/e2.plist" "$T/d-exp/EXP2-000000.ota.pem" "$T/e2.p7"
sleep 1.5   # past the 1 s TTL of the OTA identity: waiting is the point here
check "expired OTA identity: 403" test "$(ota "$T/e2.p7")" = 403
check "refused as expired" grep -q 'udid=EXP2-000000 phase=2 status=403 reason="enrollment identity expired"' "$T/mdmd.log"

check "never 401 on the MDM listener" bash -c "! grep -q 'listener=mdm .*status=401' '$T/mdmd.log'"
check "no password, key or PKCS12 in the log" bash -c "! grep -qiE 'correct horse|BEGIN|MII[A-Za-z0-9+/]{20}' '$T/mdmd.log'"
kill -TERM "$MDMD_PID"; wait "$MDMD_PID"; rc=$?
check "SIGTERM exits 0" test "$rc" = 0
check "no sanitizer report" bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$T/mdmd.log' '$T'/sim*.out '$T'/sim*.err"
finish

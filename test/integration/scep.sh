#!/usr/bin/env bash
# SCEP (RFC 8894) and Mdm-Signature (docs/SCEP.md): Debian's scepclient and
# mdmsim against mdmd's /scep, the SCEP enrollment profile, device requests
# signed instead of mutual TLS, renewal, a proxy's Client-Cert header.
. "$(dirname "$0")/lib.sh"
YAML=$TOP/../shared/apple-device-management/mdm/profiles
TOPIC=com.apple.mgmt.External.5cef0000-0000-4000-8000-00000000c0de
STATIC=static-Chall3nge-$RANDOM
TOKEN=enroll-token-$RANDOM$RANDOM

command -v scepclient >/dev/null || { fail "scepclient installed (make deps: Debian package scep)"; finish; }
start_redis || { fail "redis starts"; finish; }

# --- helpers ---

# sig B64-of-a-detached-CMS-signature over FILE by $T/NAME.{crt,key}
sig() { openssl cms -sign -binary -in "$2" -signer "$T/$1.crt" -inkey "$T/$1.key" -outform DER | base64 -w0; }
# sig_put PATH BODY SIGNATURE [CONTENT-TYPE]: a PUT to the MDM listener without a
# client certificate; prints the status, body in $T/resp.
sig_put() {
    curl -s -o "$T/resp" -w '%{http_code}' --max-time 10 --cacert "$CA" -X PUT \
        -H "Content-Type: ${4:-application/x-apple-aspen-mdm}" -H "Mdm-Signature: $3" \
        --data-binary "@$2" "https://127.0.0.1:$MDM$1"
}
checkin_msg() {   # FILE TYPE UDID
    if [ "$2" = TokenUpdate ]; then
        plist_msg "$1" MessageType TokenUpdate UDID "$3" Topic "$TOPIC" PushMagic "MAGIC-$3" \
            Token "<data>R+juwGLC9ynsFwPBs+GPGXHYXwC+dkRdNAgLqnAbX1E=</data>"
    else
        plist_msg "$1" MessageType "$2" UDID "$3" Topic "$TOPIC" SerialNumber "SN-$3"
    fi
}
fp_of() { openssl x509 -in "$1" -outform DER | sha256sum | cut -c1-64; }
# scep_client DIR CN [scepclient flags]: runs scepclient with DIR/key.pem; output in DIR/out.
scep_client() {
    local d=$1 cn=$2; shift 2
    mkdir -p "$d"
    SSL_CERT_FILE=$CA timeout 60 scepclient -private-key "$d/key.pem" -cn "$cn" "$@" >"$d/out" 2>&1
}
CHECKIN=application/x-apple-aspen-mdm-checkin

# === A: RSA CA (it answers SCEP itself), plain-HTTP SCEP listener, mdm_auth any ===
D=$T/a
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT" "ca_key_type rsa2048" "scep_listen 127.0.0.1:0" \
    "scep_challenge $STATIC" "apns_topic $TOPIC" "mdm_auth any" "mdm_client_cert optional" \
    "enroll_profile_token $TOKEN" "mdm_trust_client_cert_header yes" "mdm_trusted_proxies 192.0.2.7"
start_mdmd "$D" || { fail "mdmd starts"; finish; }
SCEPP=$(awk '$1=="scep_listen"{print $2}' "$D/ports")
check "port_file names the SCEP listener" test -n "$SCEPP"
PLAIN=http://127.0.0.1:$SCEPP/scep
HTTPS=https://127.0.0.1:$PUB/scep

curl -s --cacert "$CA" "$HTTPS?operation=GetCACaps" >"$T/caps"
for c in POSTPKIOperation SHA-256 SHA-1 AES DES3 SCEPStandard Renewal; do
    check "GetCACaps lists $c" grep -qx "$c" "$T/caps"
done
ct=$(curl -s -o "$T/cacert.der" -w '%{content_type}' "$PLAIN?operation=GetCACert")
check "GetCACert is application/x-x509-ca-cert" test "$ct" = application/x-x509-ca-cert
check "GetCACert is the CA, DER" cmp -s "$T/cacert.der" <(openssl x509 -in "$CA" -outform DER)
check "plain listener serves nothing but /scep" test "$(http_code "http://127.0.0.1:$SCEPP/healthz")" = 404
check "unknown operation: 400" test "$(http_code "$PLAIN?operation=Nope")" = 400
check "PKIOperation with garbage: 400" \
    test "$(http_code "$PLAIN?operation=PKIOperation" --data-binary 'not a pkiMessage')" = 400
check "GET PKIOperation with bad base64: 400" \
    test "$(http_code "$PLAIN?operation=PKIOperation&message=%%%")" = 400

# --- scepclient: static challenge, plain HTTP ---
U1=SCEP-DEV-0001
check "scepclient enrolls with the static challenge" \
    scep_client "$T/sc1" $U1 -server-url "$PLAIN" -challenge "$STATIC"
C1=$T/sc1/client.pem
check "certificate CN is the requested UDID" \
    bash -c "openssl x509 -in '$C1' -noout -subject | grep -q 'CN *= *$U1\$'"
check "issuer is the MDM CA" \
    test "$(openssl x509 -in "$C1" -noout -issuer | sed 's/^issuer=//')" = "$(openssl x509 -in "$CA" -noout -subject | sed 's/^subject=//')"
check "certificate verifies against the CA for clientAuth" \
    openssl verify -CAfile "$CA" -purpose sslclient "$C1"
check "EKU is clientAuth only" \
    test "$(openssl x509 -in "$C1" -noout -ext extendedKeyUsage | tail -n 1 | tr -d ' ')" = "TLSWebClientAuthentication"
check "keyUsage as the CSR asked, within policy" \
    bash -c "openssl x509 -in '$C1' -noout -ext keyUsage | grep -q 'Digital Signature, Key Encipherment'"
check "not a CA" bash -c "openssl x509 -in '$C1' -noout -ext basicConstraints | grep -q 'CA:FALSE'"
FP1=$(fp_of "$C1")
check "registered: mdm:cert source scep, device identity of the UDID" \
    test "$(R hget mdm:cert:$FP1 source):$(R hget mdm:cert:$FP1 kind):$(R hget mdm:cert:$FP1 udid):$(R hget mdm:cert:$FP1 state)" = "scep:device:$U1:issued"
check "the next Authenticate must present it (issued_fp)" test "$(R hget "mdm:dev:{$U1}" issued_fp)" = "$FP1"
# (the cluster layout writes events just after the answer: polled)
ev_fp() { xrange_all mdm:events | grep -A1 -x fp | grep -qx "$1"; }
check "cert_issued event with source scep" wait_for 5 ev_fp "$FP1"

# --- over HTTPS too, with the log naming the cipher scepclient chose ---
check "scepclient over HTTPS" scep_client "$T/sc2" SCEP-DEV-0002 -server-url "$HTTPS" -challenge "$STATIC"
check "log names the envelope cipher" grep -q 'event=scep_enrolled cn="SCEP-DEV-0002" .*cipher=' "$T/mdmd.log"

# --- wrong challenge: CertRep FAILURE badRequest ---
scep_client "$T/sc3" SCEP-DEV-0003 -server-url "$PLAIN" -challenge wrong-challenge
check "wrong challenge: scepclient gets FAILURE badRequest" grep -q 'failInfo: badRequest' "$T/sc3/out"
check "wrong challenge: no certificate" test ! -e "$T/sc3/client.pem"
scep_client "$T/sc4" SCEP-DEV-0004 -server-url "$PLAIN"
check "no challenge: FAILURE badRequest" grep -q 'failInfo: badRequest' "$T/sc4/out"
scep_client "$T/sc5" 'bad"cn' -server-url "$PLAIN" -challenge "$STATIC"
check "CN with a quote: FAILURE badRequest" grep -q 'failInfo: badRequest' "$T/sc5/out"
check "logged as cn_malformed" grep -q 'event=scep_refused .*reason=cn_malformed' "$T/mdmd.log"

# --- a Subject CN that is not a UDID: the profile's %HardwareUUID% sent as is ---
check "scepclient with CN %HardwareUUID% gets a certificate" \
    scep_client "$T/sc8" '%HardwareUUID%' -server-url "$PLAIN" -challenge "$STATIC"
cp "$T/sc8/client.pem" "$T/f1.crt"; cp "$T/sc8/key.pem" "$T/f1.key"; FPF=$(fp_of "$T/f1.crt")
check "registered unbound, to bind at Authenticate" \
    test "$(R hget mdm:cert:$FPF udid):$(R hget mdm:cert:$FPF bind)" = ":authenticate"
check "no device record named after the CN" test "$(R exists 'mdm:dev:{%HardwareUUID%}')" = 0
checkin_msg "$T/authf" Authenticate SCEP-FREE-1; checkin_msg "$T/tokf" TokenUpdate SCEP-FREE-1
plist_msg "$T/idlef" UDID SCEP-FREE-1 Status Idle
check "a request before Authenticate: 403" test "$(mdm_put /mdm/connect f1 "$T/idlef")" = 403
check "its Authenticate with the device's UDID: 200" test "$(mdm_put /mdm/checkin f1 "$T/authf" $CHECKIN)" = 200
check "bound to that UDID now, and its issued identity" \
    test "$(R hget mdm:cert:$FPF udid):$(R hget 'mdm:dev:{SCEP-FREE-1}' issued_fp)" = "SCEP-FREE-1:$FPF"
check "cert_bound event" evgrep -qx cert_bound
code=$(mdm_put /mdm/checkin f1 "$T/tokf" $CHECKIN)
check "TokenUpdate: enrolled" test "$code:$(R hget 'mdm:dev:{SCEP-FREE-1}' state)" = 200:enrolled
check "command endpoint: 200" test "$(mdm_put /mdm/connect f1 "$T/idlef")" = 200
checkin_msg "$T/authf2" Authenticate SCEP-FREE-2
check "the bound certificate cannot Authenticate another UDID: 403" test "$(mdm_put /mdm/checkin f1 "$T/authf2" $CHECKIN)" = 403
check "refusal logged as cn_mismatch" grep -q "event=device_refused udid=SCEP-FREE-2 .*reason=cn_mismatch" "$T/mdmd.log"
check "SCEP-FREE-2 not recorded" test "$(R exists 'mdm:dev:{SCEP-FREE-2}')" = 0
make_client_cert plainid "$CA" "$D/var/ca/ca.key" not-a-udid-cn
check "an MDM CA certificate SCEP did not issue, CN not the UDID: 403" \
    test "$(mdm_put /mdm/checkin plainid "$T/authf2" $CHECKIN)" = 403
check "logged as cn_mismatch" grep -c "event=device_refused udid=SCEP-FREE-2 .*reason=cn_mismatch" "$T/mdmd.log" | grep -qx 2
cp "$T/f1.crt" "$T/sc8/old.pem"
check "renewal of the CN-free identity" scep_client "$T/sc8" '%HardwareUUID%' -server-url "$PLAIN"
cp "$T/sc8/client.pem" "$T/f2.crt"; cp "$T/sc8/key.pem" "$T/f2.key"; FPF2=$(fp_of "$T/f2.crt")
check "the new one keeps the binding (UDID, bind=authenticate)" \
    test "$FPF2" != "$FPF" -a "$(R hget mdm:cert:$FPF2 udid):$(R hget mdm:cert:$FPF2 bind)" = "SCEP-FREE-1:authenticate"
check "the enrollment moved to it" test "$(R hget 'mdm:dev:{SCEP-FREE-1}' cert_fp)" = "$FPF2"
code=$(mdm_put /mdm/connect f2 "$T/idlef"):$(mdm_put /mdm/connect f1 "$T/idlef")
check "new identity: 200, old one: 403" test "$code" = 200:403
check "refusals logged with the reason" grep -q 'event=scep_refused .*reason=challenge_unknown_or_used' "$T/mdmd.log"

# --- the SCEP enrollment profile ---
K=$(cat "$D/var/api.key")
prof() { curl -s -o "$T/prof.$1" -w '%{http_code} %{content_type}' --cacert "$CA" "${@:2}"; }
check "profile without credentials: 401" test "$(prof none "https://127.0.0.1:$PUB/enroll/profile")" = "401 application/json"
check "profile with a wrong token: 401" test "$(prof bad "https://127.0.0.1:$PUB/enroll/profile?token=nope")" = "401 application/json"
check "profile with the token: signed aspen-config" \
    test "$(prof tok "https://127.0.0.1:$PUB/enroll/profile?token=$TOKEN")" = "200 application/x-apple-aspen-config"
check "unsigned profile with only the token: 403" \
    test "$(prof tok0 "https://127.0.0.1:$PUB/enroll/profile?token=$TOKEN&signed=0" | cut -c1-3)" = 403
check "profile with the API key (Bearer): 200" \
    test "$(prof key "https://127.0.0.1:$PUB/enroll/profile" -H "Authorization: Bearer $K" | cut -c1-3)" = 200
check "unsigned profile for the admin: XML" \
    test "$(prof xml "https://127.0.0.1:$PUB/enroll/profile?signed=0" -H "Authorization: Bearer $K" | cut -c1-3)" = 200
check "signed profile verifies against the CA" \
    bash -c "openssl cms -verify -inform DER -in '$T/prof.tok' -CAfile '$CA' -purpose any -binary -out '$T/prof.tok.xml' 2>/dev/null"
X=$T/prof.xml
check "unsigned profile is an XML plist" plistutil -i "$X" -o /dev/null
# key NAME: the value element following <key>NAME</key> (one line in libplist's XML)
after_key() { grep -A1 "<key>$2</key>" "$1" | sed -n '2p' | sed 's/^[[:space:]]*//'; }
# Every key name in the profile is one Apple's schema defines for these payloads.
bad_keys=$(grep -o '<key>[^<]*</key>' "$X" | sed 's/<[^>]*>//g' | sort -u | while read -r k; do
    cat "$YAML/TopLevel.yaml" "$YAML/CommonPayloadKeys.yaml" "$YAML/com.apple.security.root.yaml" \
        "$YAML/com.apple.security.scep.yaml" "$YAML/com.apple.mdm.yaml" | grep -qE "^ *- key: $k\$" || echo "$k"; done)
check "every profile key is in Apple's schema (unknown: ${bad_keys:-none})" test -z "$bad_keys"
for k in URL Name Subject Challenge Keysize 'Key Type' 'Key Usage'; do
    check "SCEP payload key '$k' present and in com.apple.security.scep.yaml" \
        bash -c "grep -q '<key>$k</key>' '$X' && grep -qE '^ *- key: $k\$' '$YAML/com.apple.security.scep.yaml'"
done
check "Keysize 2048, Key Usage 5, Key Type RSA" \
    test "$(after_key "$X" Keysize):$(after_key "$X" 'Key Usage'):$(after_key "$X" 'Key Type')" = "<integer>2048</integer>:<integer>5</integer>:<string>RSA</string>"
check "Subject CN is the %HardwareUUID% placeholder" bash -c "tr -d ' \t\n' <'$X' | grep -q '<key>Subject</key><array><array><array><string>CN</string><string>%HardwareUUID%</string></array></array></array>'"
check "SCEP URL is scep_url (<public_url>/scep)" bash -c "after_key() { grep -A1 \"<key>\$2</key>\" \"\$1\" | sed -n 2p; }; after_key '$X' URL | grep -q '/scep</string>'"
SCEP_UUID=$(awk '/<string>com.apple.security.scep<\/string>/{s=1} s&&/<key>PayloadUUID<\/key>/{getline; gsub(/.*<string>|<\/string>.*/,""); print; exit}' "$X")
check "IdentityCertificateUUID points at the SCEP payload" \
    test -n "$SCEP_UUID" -a "$(after_key "$X" IdentityCertificateUUID)" = "<string>$SCEP_UUID</string>"
check "SignMessage true" test "$(after_key "$X" SignMessage)" = "<true/>"
check "Topic, ServerURL, CheckInURL" bash -c "grep -q '<string>$TOPIC</string>' '$X' && grep -q '/mdm/connect</string>' '$X' && grep -q '/mdm/checkin</string>' '$X'"
check "CA root payload carries the CA" bash -c "grep -q com.apple.security.root '$X'"
CH_XML=$(after_key "$X" Challenge | sed 's/<[^>]*>//g')
CH_TOK=$(after_key "$T/prof.tok.xml" Challenge | sed 's/<[^>]*>//g')
check "each profile has its own one-time challenge" test -n "$CH_XML" -a -n "$CH_TOK" -a "$CH_XML" != "$CH_TOK"
check "challenge stored with a TTL" bash -c "[ \$(redis-cli -p $REDIS_PORT ttl '$(gkey "scep:chal:$CH_TOK")') -gt 0 ]"

# --- the profile after a login: the challenge is bound to the user ---
check "a user to log in with" test "$(api POST /v1/users '{"username":"sam","password":"sam-pw-12345","role":"user"}')" = 201
login() { curl -s -o "$T/prof.login" -w '%{http_code}' --cacert "$CA" --data-urlencode "username=$1" \
    --data-urlencode "password=$2" "https://127.0.0.1:$PUB/enroll/profile"; }
check "login with a wrong password: 401" test "$(login sam wrong-password)" = 401
code=$(login sam sam-pw-12345)
check "login: 200, a signed profile" bash -c "[ $code = 200 ] && openssl cms -verify -inform DER -in '$T/prof.login' -CAfile '$CA' -purpose any -binary -out '$T/prof.login.xml' 2>/dev/null"
CH_LOGIN=$(after_key "$T/prof.login.xml" Challenge | sed 's/<[^>]*>//g')
check "its challenge belongs to the user" test -n "$CH_LOGIN" -a "$(R get "$(gkey "scep:chal:$CH_LOGIN")")" = sam
check "login without a password: 400" \
    test "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" --data 'username=sam' "https://127.0.0.1:$PUB/enroll/profile")" = 400
check "a wrong challenge counted against the address" test "$(R get "$(gkey chalfail:addr:127.0.0.1)")" -ge 1
R set "$(gkey chalfail:addr:127.0.0.1)" 20 EX 300 >/dev/null   # as after 20 wrong guesses
scep_client "$T/sc9" SCEP-DEV-0009 -server-url "$PLAIN" -challenge "$CH_LOGIN"
check "guessing: after 20 wrong challenges even a good one gets FAILURE badRequest" grep -q 'failInfo: badRequest' "$T/sc9/out"
check "logged as challenge_rate_limited" grep -q 'event=scep_refused .*reason=challenge_rate_limited' "$T/mdmd.log"
check "the good challenge was not used up" test "$(R exists "$(gkey "scep:chal:$CH_LOGIN")")" = 1
R del "$(gkey chalfail:addr:127.0.0.1)" >/dev/null

# --- a challenge is no claim on a device another user enrolled ---
R hset 'mdm:dev:{SCEP-FREE-1}' user alice >/dev/null   # as if alice had enrolled it
check "scepclient: another CN-free identity (static challenge)" \
    scep_client "$T/sc10" '%HardwareUUID%' -server-url "$PLAIN" -challenge "$STATIC"
cp "$T/sc10/client.pem" "$T/f3.crt"; cp "$T/sc10/key.pem" "$T/f3.key"
check "it cannot take over alice's enrolled device: 403" test "$(mdm_put /mdm/checkin f3 "$T/authf" $CHECKIN)" = 403
check "the device keeps its identity" test "$(R hget 'mdm:dev:{SCEP-FREE-1}' cert_fp)" = "$FPF2"
scep_client "$T/sc11" SCEP-FREE-1 -server-url "$PLAIN" -challenge "$STATIC"
check "nor get a certificate for its UDID (FAILURE badRequest)" grep -q 'failInfo: badRequest' "$T/sc11/out"
check "logged as cert_mismatch" grep -q 'event=scep_refused .*cn="SCEP-FREE-1" .*reason=cert_mismatch' "$T/mdmd.log"
R hset 'mdm:dev:{SCEP-FREE-1}' user sam >/dev/null     # now sam's, and sam's challenge
check "with its owner's challenge, a new identity" \
    scep_client "$T/sc12" '%HardwareUUID%' -server-url "$PLAIN" -challenge "$CH_LOGIN"
cp "$T/sc12/client.pem" "$T/f4.crt"; cp "$T/sc12/key.pem" "$T/f4.key"
check "re-enrolls the device: 200" test "$(mdm_put /mdm/checkin f4 "$T/authf" $CHECKIN)" = 200
check "the old identity is revoked (replaced)" test "$(R hget mdm:cert:$FPF2 revoked_reason)" = replaced

# --- mdmsim: SCEP with the profile's challenge, then Mdm-Signature only ---
SIM=("$BIN/mdmsim" --url "https://127.0.0.1:$MDM/mdm" --ca "$CA" --topic "$TOPIC")
"${SIM[@]}" --scep "$HTTPS" --scep-profile "$T/prof.tok" --mdm-signature --udid-prefix SIMSIG \
    --duration 30 --ledger "$T/ledger" >"$T/sim1.out" 2>"$T/sim1.err" &
SIM_PID=$!; PIDS+=("$SIM_PID")
U=SIMSIG-000000
check "mdmsim enrolls over SCEP and Mdm-Signature" wait_for 20 out_is enrolled R hget "mdm:dev:{$U}" state
check "the one-time challenge is gone" test "$(R exists "$(gkey "scep:chal:$CH_TOK")")" = 0
check "the bound certificate is the SCEP one" test "$(R hget "mdm:cert:$(R hget "mdm:dev:{$U}" cert_fp)" source)" = scep
check "requested with the profile's Subject as is (CN %HardwareUUID%)" \
    grep -q "event=scep_enrolled cn=\"%HardwareUUID%\" fp=$(R hget "mdm:dev:{$U}" cert_fp)" "$T/mdmd.log"
check "bound to the UDID at Authenticate" test "$(R hget "mdm:cert:$(R hget "mdm:dev:{$U}" cert_fp)" udid)" = "$U"
api POST /v1/commands '{"udids":["'$U'"],"command":{"RequestType":"DeviceInformation","Queries":["DeviceName"]}}' >/dev/null
CMD=$(jget "$T/api" command_uuid)
check "a command cycle over signed requests" wait_for 20 grep -q "$U $CMD DeviceInformation Acknowledged" "$T/ledger"
check "result stored" wait_for 5 bash -c "redis-cli -p $REDIS_PORT xrange 'mdm:res:{$U}' - + | grep -qx '$CMD'"
kill -INT "$SIM_PID"; wait "$SIM_PID"; rc=$?
check "mdmsim ends cleanly (no HTTP, network or protocol error)" test "$rc" = 0

"${SIM[@]}" --scep "$HTTPS" --scep-profile "$T/prof.tok" --udid-prefix SIMREPLAY -q >"$T/sim2.out" 2>"$T/sim2.err"
rc=$?
check "a replayed one-time challenge fails (FAILURE badRequest)" \
    bash -c "[ $rc != 0 ] && grep -q 'scep_failed udid=SIMREPLAY-000000 failInfo=2' '$T/sim2.err'"
check "no certificate for the replay" test "$(R exists 'mdm:dev:{SIMREPLAY-000000}')" = 0

# --- GET PKIOperation, every envelope cipher, mutual TLS with the SCEP identity ---
for c in aes128 des3 des; do
    "${SIM[@]}" --scep "$PLAIN" --scep-challenge "$STATIC" --scep-cipher $c --scep-get \
        --udid-prefix GET-$c -q >"$T/sim-$c.out" 2>&1
    check "GET PKIOperation ($c envelope), then mutual TLS: enrolled" test "$(R hget "mdm:dev:{GET-$c-000000}" state)" = enrolled
done

# --- RFC 8894 2.3: a signer key that is not the CSR's; older algorithms, each refusable ---
scep_sim() { "${SIM[@]}" --scep "$PLAIN" --scep-challenge "$STATIC" -q "$@" >"$T/sim-alg.out" 2>&1; }
scep_sim --scep-signer throwaway --udid-prefix THROW
check "a client signing its PKCSReq with a throwaway self-signed key enrolls" \
    test "$(R hget 'mdm:dev:{THROW-000000}' state)" = enrolled
check "logged as signer=throwaway" grep -q 'event=scep_enrolled cn="THROW-000000" .*signer=throwaway' "$T/mdmd.log"
scep_sim --scep-digest sha1 --udid-prefix SHA1
check "a SHA-1 signer digest is accepted" test "$(R hget 'mdm:dev:{SHA1-000000}' state)" = enrolled
scep_sim --scep-key-bits 1024 --udid-prefix RSA1K
check "an RSA 1024 CSR is refused by default (badRequest key_not_allowed)" \
    bash -c "[ \"\$(redis-cli -p $REDIS_PORT exists 'mdm:dev:{RSA1K-000000}')\" = 0 ] && grep -q 'cn=\"RSA1K-000000\" .*reason=key_not_allowed' '$T/mdmd.log'"
printf '%s\n' "scep_allow_throwaway_signer no" "scep_allow_sha1 no" "scep_allow_des no" \
    "scep_allow_rsa1024 yes" >>"$D/mdmd.conf"
kill -HUP "$MDMD_PID"
wait_for 10 grep -q event=reloaded "$T/mdmd.log" || fail "SIGHUP reload"
scep_sim --scep-signer throwaway --udid-prefix THROWNO
check "scep_allow_throwaway_signer no: refused (badMessageCheck)" \
    bash -c "grep -q 'failInfo=1' '$T/sim-alg.out' && grep -q 'reason=signer_key_not_csr_key' '$T/mdmd.log'"
scep_sim --scep-digest sha1 --udid-prefix SHA1NO
check "scep_allow_sha1 no: refused (badAlg)" \
    bash -c "grep -q 'failInfo=0' '$T/sim-alg.out' && grep -q 'reason=sha1_refused' '$T/mdmd.log'"
scep_sim --scep-cipher des --udid-prefix DESNO
check "scep_allow_des no: refused (badAlg)" \
    bash -c "grep -q 'failInfo=0' '$T/sim-alg.out' && grep -q 'reason=des_refused' '$T/mdmd.log'"
scep_sim --scep-key-bits 1024 --udid-prefix RSA1KOK
# (the certificate is issued; mdmsim's own TLS library then refuses a 1024-bit client key)
check "scep_allow_rsa1024 yes: an RSA 1024 CSR gets its certificate" \
    grep -q 'event=scep_enrolled cn="RSA1KOK-000000" ' "$T/mdmd.log"
sed -i '/^scep_allow_/d' "$D/mdmd.conf"
kill -HUP "$MDMD_PID"
wait_for 10 bash -c "[ \$(grep -c event=reloaded '$T/mdmd.log') -ge 2 ]" || fail "SIGHUP reload back"

# --- Mdm-Signature by hand (openssl cms), with scepclient's identity ---
cp "$C1" "$T/s1.crt"; cp "$T/sc1/key.pem" "$T/s1.key"
checkin_msg "$T/auth1" Authenticate $U1
checkin_msg "$T/tok1" TokenUpdate $U1
check "signed Authenticate: 200" test "$(sig_put /mdm/checkin "$T/auth1" "$(sig s1 "$T/auth1")" $CHECKIN)" = 200
check "signature over a different body: 403" test "$(sig_put /mdm/checkin "$T/tok1" "$(sig s1 "$T/auth1")" $CHECKIN)" = 403
check "refusal logged as bad_signature" grep -q "event=device_refused udid=$U1 .*reason=bad_signature" "$T/mdmd.log"
check "403 has no body" test ! -s "$T/resp"
openssl cms -sign -binary -nodetach -in "$T/tok1" -signer "$T/s1.crt" -inkey "$T/s1.key" -outform DER -out "$T/attached"
check "an attached (not detached) signature: 403" test "$(sig_put /mdm/checkin "$T/tok1" "$(base64 -w0 "$T/attached")" $CHECKIN)" = 403
check "garbage signature: 403" test "$(sig_put /mdm/checkin "$T/tok1" 'bm90IGNtcw==' $CHECKIN)" = 403
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=Other CA" \
    -keyout "$T/other-ca.key" -out "$T/other-ca.crt" -days 2 2>/dev/null
make_client_cert foreign "$T/other-ca.crt" "$T/other-ca.key" $U1
check "signer from another CA: 403" test "$(sig_put /mdm/checkin "$T/tok1" "$(sig foreign "$T/tok1")" $CHECKIN)" = 403
check "refusal logged as untrusted" grep -q "event=device_refused udid=$U1 .*reason=untrusted" "$T/mdmd.log"
check "signed TokenUpdate: 200, enrolled" \
    bash -c "[ $(sig_put /mdm/checkin "$T/tok1" "$(sig s1 "$T/tok1")" $CHECKIN) = 200 ] && [ \$(redis-cli -p $REDIS_PORT hget 'mdm:dev:{$U1}' state) = enrolled ]"
check "binding is the signer's certificate" test "$(R hget "mdm:dev:{$U1}" cert_fp)" = "$FP1"
plist_msg "$T/other" UDID SCEP-DEV-0002 Status Idle
check "signature by another device's identity for this UDID: 403" test "$(sig_put /mdm/connect "$T/other" "$(sig s1 "$T/other")")" = 403
check "no signature and no certificate: 403" \
    test "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" -X PUT --data-binary @"$T/tok1" "https://127.0.0.1:$MDM/mdm/checkin")" = 403
check "Client-Cert from an address not in mdm_trusted_proxies: ignored (403)" \
    test "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" -X PUT -H "Client-Cert: :$(openssl x509 -in "$C1" -outform DER | base64 -w0):" --data-binary @"$T/tok1" "https://127.0.0.1:$MDM/mdm/checkin")" = 403

api POST /v1/commands '{"udids":["'$U1'"],"command":{"RequestType":"ProfileList"}}' >/dev/null; C2=$(jget "$T/api" command_uuid)
plist_msg "$T/idle1" UDID $U1 Status Idle
# Enrollment may have queued commands of its own: walk the queue to ours.
next=""; for i in 1 2 3 4 5 6; do
    sig_put /mdm/connect "$T/idle1" "$(sig s1 "$T/idle1")" >/dev/null
    next=$(grep -A1 '<key>CommandUUID</key>' "$T/resp" | sed -n 's/.*<string>\(.*\)<\/string>.*/\1/p')
    [ "$next" = "$C2" ] || [ -z "$next" ] && break
    plist_msg "$T/ack1" UDID $U1 Status Acknowledged CommandUUID "$next"
    cp "$T/ack1" "$T/idle1"
done
check "signed Idle gets the queued command" test "$next" = "$C2"
plist_msg "$T/ack1" UDID $U1 Status Acknowledged CommandUUID "$C2"
check "signed Acknowledged: 200" test "$(sig_put /mdm/connect "$T/ack1" "$(sig s1 "$T/ack1")")" = 200
check "its result is stored" bash -c "redis-cli -p $REDIS_PORT xrange 'mdm:res:{$U1}' - + | grep -qx '$C2'"

# --- push tokens are not unique: two devices with one token ---
cp "$T/sc2/client.pem" "$T/s2.crt"; cp "$T/sc2/key.pem" "$T/s2.key"
checkin_msg "$T/auth2" Authenticate SCEP-DEV-0002; checkin_msg "$T/tok2" TokenUpdate SCEP-DEV-0002
sig_put /mdm/checkin "$T/auth2" "$(sig s2 "$T/auth2")" $CHECKIN >/dev/null
sig_put /mdm/checkin "$T/tok2" "$(sig s2 "$T/tok2")" $CHECKIN >/dev/null
check "a second device with the same token enrolls" test "$(R hget 'mdm:dev:{SCEP-DEV-0002}' state)" = enrolled
check "both keep the token" test "$(R hget "mdm:dev:{$U1}" token)" = "$(R hget 'mdm:dev:{SCEP-DEV-0002}' token)"
check "a command reaches both" \
    bash -c "[ $(api POST /v1/commands '{"udids":["'$U1'","SCEP-DEV-0002"],"command":{"RequestType":"SecurityInfo"}}') = 201 ] && grep -q '\"queued\":2' '$T/api'"

# --- renewal: scepclient again with its certificate: a RenewalReq signed by it ---
cp "$C1" "$T/sc1/old.pem"
check "scepclient renews (no challenge)" scep_client "$T/sc1" $U1 -server-url "$PLAIN"
FPN=$(fp_of "$C1")
check "a new certificate" test -n "$FPN" -a "$FPN" != "$FP1"
check "the enrollment moved to it" test "$(R hget "mdm:dev:{$U1}" cert_fp)" = "$FPN"
check "the old one is revoked (renewed)" test "$(R hget mdm:cert:$FP1 state):$(R hget mdm:cert:$FP1 revoked_reason)" = revoked:renewed
check "the new one records what it renewed" test "$(R hget mdm:cert:$FPN renewed_from)" = "$FP1"
ev_rebound() { xrange_all mdm:events | grep -A1 -x rebound | tail -n 1 | grep -qx 1; }
check "cert_renewed event, rebound" wait_for 5 ev_rebound
cp "$C1" "$T/s1.crt"; cp "$T/sc1/old.pem" "$T/s1old.crt"; cp "$T/sc1/key.pem" "$T/s1old.key"
plist_msg "$T/idle2" UDID $U1 Status Idle
check "old identity after renewal: 403" test "$(sig_put /mdm/connect "$T/idle2" "$(sig s1old "$T/idle2")")" = 403
check "new identity after renewal: 200" test "$(sig_put /mdm/connect "$T/idle2" "$(sig s1 "$T/idle2")")" = 200
check "state stays enrolled" test "$(R hget "mdm:dev:{$U1}" state)" = enrolled
# A device that missed the answer renews again with its old identity (within
# the hour).  scepclient writes its result over -certificate: copies.
cp "$T/sc1/old.pem" "$T/sc1/retry1.pem"
check "a retried renewal with the old identity is answered" \
    scep_client "$T/sc1" $U1 -server-url "$PLAIN" -certificate "$T/sc1/retry1.pem"
FPR=$(fp_of "$T/sc1/retry1.pem")
check "the retry's certificate is now bound" test -n "$FPR" -a "$(R hget "mdm:dev:{$U1}" cert_fp)" = "$FPR" -a "$FPR" != "$FPN"
check "the one it replaced is revoked (renewal_retried)" \
    test "$(R hget mdm:cert:$FPN state):$(R hget mdm:cert:$FPN revoked_reason)" = revoked:renewal_retried
R hset mdm:cert:$FP1 revoked_at 1 >/dev/null   # as if the renewal were hours old
cp "$T/sc1/old.pem" "$T/sc1/retry2.pem"
scep_client "$T/sc1" $U1 -server-url "$PLAIN" -certificate "$T/sc1/retry2.pem"
check "after the grace the old identity cannot renew (badRequest)" grep -q 'failInfo: badRequest' "$T/sc1/out"
check "the retry's certificate stays bound" test "$(R hget "mdm:dev:{$U1}" cert_fp)" = "$FPR"
cp "$T/sc1/retry1.pem" "$C1"
# scepclient wants an RSA key (PKCS#1): another CA's RSA identity for the same CN.
mkdir -p "$T/sc6"
openssl genrsa -traditional -out "$T/sc6/key.pem" 2048 2>/dev/null &&
openssl req -new -key "$T/sc6/key.pem" -subj "/CN=$U1" -out "$T/sc6/req.csr" 2>/dev/null &&
openssl x509 -req -in "$T/sc6/req.csr" -CA "$T/other-ca.crt" -CAkey "$T/other-ca.key" -CAcreateserial \
    -days 2 -extfile "$T/foreign.ext" -out "$T/sc6/cert.pem" 2>/dev/null
scep_client "$T/sc6" $U1 -server-url "$PLAIN" -certificate "$T/sc6/cert.pem"
check "renewal signed by another CA's certificate: FAILURE badRequest" grep -q 'failInfo: badRequest' "$T/sc6/out"
check "logged as renewal_signer_not_ours" grep -q 'reason=renewal_signer_not_ours' "$T/mdmd.log"
check "the enrollment did not move" test "$(R hget "mdm:dev:{$U1}" cert_fp)" = "$FPR"

# === B: EC CA: an RSA RA answers; MDM listener takes signatures only ===
D2=$T/b
write_conf "$D2" "redis 127.0.0.1:$REDIS_PORT" "scep_challenge $STATIC" "apns_topic $TOPIC" \
    "mdm_auth signature" "mdm_client_cert none"
MDM_A=$MDM; CA_A=$CA; PUB_A=$PUB
start_mdmd "$D2" || { fail "mdmd (EC CA) starts"; finish; }
# The RA key is made on the crypto worker after startup: 503 until then.
check "GetCACert answers once the RA is made" \
    wait_for 30 out_is 200 http_code "https://127.0.0.1:$PUB/scep?operation=GetCACert" --cacert "$CA"
check "an RA was created (0600 key)" test "$(stat -c %a "$D2/var/ca/scep_ra.key" 2>&1)" = 600
ct=$(curl -s -o "$T/cacert-ra" -w '%{content_type}' --cacert "$CA" "https://127.0.0.1:$PUB/scep?operation=GetCACert")
check "GetCACert is application/x-x509-ca-ra-cert" test "$ct" = application/x-x509-ca-ra-cert
check "it holds the RA and the CA" \
    test "$(openssl pkcs7 -inform DER -in "$T/cacert-ra" -print_certs 2>/dev/null | grep -c '^subject=')" = 2
RAFP=$(openssl x509 -in "$D2/var/ca/scep_ra.crt" -outform DER | sha256sum | cut -c1-64)
check "scepclient enrolls through the RA (-ca-fingerprint)" \
    scep_client "$T/sc7" RA-DEV-1 -server-url "https://127.0.0.1:$PUB/scep" -challenge "$STATIC" -ca-fingerprint "$RAFP"
check "issued by the EC CA" openssl verify -CAfile "$CA" -purpose sslclient "$T/sc7/client.pem"
"$BIN/mdmsim" --url "https://127.0.0.1:$MDM/mdm" --ca "$CA" --topic "$TOPIC" --scep "https://127.0.0.1:$PUB/scep" \
    --scep-challenge "$STATIC" --mdm-signature --udid-prefix RASIM -n 2 -q >"$T/sim-ra.out" 2>&1
check "mdmsim through the RA, Mdm-Signature only: 2 enrolled, no errors" \
    grep -q 'enrolled=2 .*http_errors=0 .*net_errors=0 proto_errors=0' "$T/sim-ra.out"
cp "$T/sc7/client.pem" "$T/r1.crt"; cp "$T/sc7/key.pem" "$T/r1.key"
checkin_msg "$T/authr" Authenticate RA-DEV-1
check "mdm_auth signature: a signed Authenticate: 200" \
    test "$(sig_put /mdm/checkin "$T/authr" "$(sig r1 "$T/authr")" $CHECKIN)" = 200
check "mdm_client_cert none: a client certificate is not even asked for, no signature: 403" \
    test "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" --cert "$T/r1.crt" --key "$T/r1.key" -X PUT --data-binary @"$T/authr" "https://127.0.0.1:$MDM/mdm/checkin")" = 403
check "refusal logged as no_signature" grep -q 'event=device_refused udid=RA-DEV-1 .*reason=no_signature' "$T/mdmd.log"

# === C: behind a proxy: no client certificates, RFC 9440 Client-Cert from 127.0.0.1 ===
D3=$T/c
write_conf "$D3" "redis 127.0.0.1:$REDIS_PORT" "data_dir $D/var" "ca_key_type rsa2048" "apns_topic $TOPIC" \
    "mdm_auth mtls" "mdm_client_cert none" "mdm_trust_client_cert_header yes" "mdm_trusted_proxies 10.0.0.1 127.0.0.1"
start_mdmd "$D3" || { fail "mdmd (proxy mode) starts"; finish; }
CA=$D/var/ca/ca.crt   # the CA of A (the same data_dir)
cc_put() {
    curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" -X PUT -H "Content-Type: $CHECKIN" \
        -H "Client-Cert: :$(openssl x509 -in "$1" -outform DER | base64 -w0):" --data-binary @"$2" \
        "https://127.0.0.1:$MDM/mdm/checkin"
}
check "Client-Cert from a trusted proxy: 200" test "$(cc_put "$C1" "$T/tok1")" = 200
check "Client-Cert with another CA's certificate: 403" test "$(cc_put "$T/foreign.crt" "$T/tok1")" = 403
check "Client-Cert with the renewed-away certificate: 403" test "$(cc_put "$T/sc1/old.pem" "$T/tok1")" = 403
check "malformed Client-Cert: 403" \
    test "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" -X PUT -H 'Client-Cert: :!!:' --data-binary @"$T/tok1" "https://127.0.0.1:$MDM/mdm/checkin")" = 403
check "mdm_auth mtls ignores Mdm-Signature: 403" test "$(sig_put /mdm/checkin "$T/tok1" "$(sig s1 "$T/tok1")" $CHECKIN)" = 403

# --- configuration guards ---
check "mdm_client_cert none with mdm_auth mtls and no proxy header: refused" \
    bash -c "! '$BIN/mdmd' -t -o mdm_auth=mtls -o mdm_client_cert=none >/dev/null 2>&1"
check "unknown mdm_auth: refused" bash -c "! '$BIN/mdmd' -t -o mdm_auth=maybe >/dev/null 2>&1"
check "mdm_auth signature with mdm_client_cert none: accepted" \
    bash -c "'$BIN/mdmd' -t -o mdm_auth=signature -o mdm_client_cert=none >/dev/null 2>&1"
finish

#!/usr/bin/env bash
# The web console (issue 7, items 1 and 2).  First its HTTP surface with
# curl: redirects, embedded files and their headers, path traversal, login,
# the session cookie, CSRF, search, and every way a session ends.  Then the
# admin's whole flow in headless Chromium (test/browser/console.mjs): log
# in, find a simulated device, issue DeviceInformation from the form, see
# mdmsim's answer in the history, log out; it saves a screenshot of the
# device page to $T/console-device.png (KEEP=1 keeps it).
. "$(dirname "$0")/lib.sh"

if [ ! -x /usr/bin/chromium ]; then
    echo "SKIP: /usr/bin/chromium is missing and make deps could not install it"
    finish
fi

make_push_pki || { fail "push PKI"; finish; }
start_mock_apns || { fail "mock APNs starts"; finish; }
start_redis || { fail "redis starts"; finish; }
D=$T/c
# Simulated devices enroll with certificates they make themselves, and one
# over the air (its user goes into the search index): fixed ports, because
# the enrollment profiles carry the URLs.
PUBP=$(free_port); MDMP=$(free_port)
write_conf "$D" "listen 127.0.0.1:$PUBP" "mdm_listen 127.0.0.1:$MDMP" \
    "public_url https://127.0.0.1:$PUBP" "mdm_url https://127.0.0.1:$MDMP" \
    "redis 127.0.0.1:$REDIS_PORT" "enroll_require_issued no" "push_coalesce_ms 0" \
    "device_key_type ec256"
apns_conf >>"$D/mdmd.conf"
start_mdmd "$D" || { fail "mdmd starts"; finish; }
B="https://localhost:$PUB"
# The ports file comes before Redis answers: wait for /healthz to say it does.
check "mdmd is up with Redis" wait_for 30 out_is 200 http_code "$B/healthz" --cacert "$CA"

# c METHOD PATH [curl args]: prints the status; headers in $T/h, body in $T/b.
c() {
    local m=$1 p=$2; shift 2
    curl -s -o "$T/b" -D "$T/h" -w '%{http_code}' --max-time 10 --cacert "$CA" -X "$m" "$@" "$B$p"
}
hdr() { grep -i "^$1:" "$T/h" | head -n 1 | cut -d' ' -f2- | tr -d '\r'; }
# login NAME PASSWORD: sets LOGIN (the status), SID and CSRF.
login() {
    LOGIN=$(c POST /console/api/login -H 'Content-Type: application/json' \
        --data-binary "{\"username\":\"$1\",\"password\":\"$2\"}")
    SID=$(hdr Set-Cookie | sed -n 's/^__Host-mdmd_session=\([0-9a-f]*\);.*/\1/p')
    CSRF=$(jget "$T/b" csrf)
}
ck() { echo "Cookie: __Host-mdmd_session=$1"; }
skey() { echo "$(gkey session:)$(printf %s "$1" | sha1sum | cut -d' ' -f1)"; }

SIM=("$BIN/mdmsim" --url "https://127.0.0.1:$MDM/mdm" --ca "$CA" --ca-key "$D/var/ca/ca.key"
     --identities "$T/ids" --topic "$TOPIC")
"${SIM[@]}" -q -n 3 --udid-prefix CONSOLE >"$T/enroll.out" 2>&1
# ZCARD summed over the buckets of an index (the key itself in the single layout).
zcard_all() { local n=0 k; for k in $(bkeys "$1"); do n=$((n + $(R zcard "$k"))); done; echo $n; }
check "three simulated devices enroll" test "$(zcard_all mdm:devices)" = 3
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=Test Device CA" \
    -keyout "$T/dca.key" -out "$T/dca.crt" -days 2 2>/dev/null
api POST /v1/users '{"username":"carol","password":"carol-pw-123","role":"user"}' >/dev/null
"$BIN/mdmsim" --url "https://127.0.0.1:$MDM/mdm" --ca "$CA" --topic "$TOPIC" -q --udid-prefix OTA \
    --enroll-ota "https://127.0.0.1:$PUB" --user carol --password carol-pw-123 \
    --device-ca "$T/dca.crt" --device-ca-key "$T/dca.key" >"$T/ota.out" 2>&1
check "a device enrolls over the air for carol" test "$(R hget 'mdm:dev:{OTA-000000}' user)" = carol
U0=CONSOLE-000000; U=CONSOLE-000001; EVIL=CONSOLE-000002
SERIAL=$(R hget "mdm:dev:{$U}" serial_number)
R hset "mdm:dev:{$EVIL}" device_name '<img src=x onerror=alert(1)>' >/dev/null

# --- static files ---
st=$(c GET /); check "GET /: 302 to /console/" test "$st $(hdr Location)" = "302 /console/"
st=$(c GET /console); check "GET /console: 302" test "$st $(hdr Location)" = "302 /console/"
st=$(c GET /console/)
check "GET /console/: the page" test "$st $(hdr Content-Type)" = "200 text/html; charset=utf-8"
check "strict CSP" bash -c "grep -qi \"^content-security-policy: default-src 'none'; script-src 'self'; style-src 'self';\" '$T/h'"
check "no framing, no sniffing" test "$(hdr X-Frame-Options) $(hdr X-Content-Type-Options)" = "DENY nosniff"
check "the page loads app.js and style.css" bash -c "grep -q 'src=\"app.js\"' '$T/b' && grep -q 'href=\"style.css\"' '$T/b'"
check "no inline script or style" bash -c "! grep -Eq '<script>|<style|style=' '$T/b'"
st=$(c GET /console/app.js)
check "app.js: text/javascript" test "$st $(hdr Content-Type)" = "200 text/javascript; charset=utf-8"
check "app.js is the file in web/" cmp -s "$T/b" "$TOP/web/app.js"
etag=$(hdr ETag)
check "ETag revalidation: 304" test "$(c GET /console/app.js -H "If-None-Match: $etag")" = 304
check "style.css: text/css" test "$(c GET /console/style.css)$(hdr Content-Type)" = "200text/css; charset=utf-8"
check "favicon.svg: image/svg+xml" test "$(c GET /console/favicon.svg)$(hdr Content-Type)" = "200image/svg+xml"
check "HEAD /console/: 200, no body" test "$(curl -s -I -o /dev/null -w '%{http_code} %{size_download}' \
    --cacert "$CA" "$B/console/")" = "200 0"
check "unknown file: 404" test "$(c GET /console/nope.js)" = 404
check "../ is no way out: 404" test "$(c GET /console/../mdmd.conf --path-as-is)" = 404
check "encoded ../: 404" test "$(c GET /console/%2e%2e%2fmdmd.conf)" = 404
check "nested name: 404" test "$(c GET /console/x/app.js)" = 404

# --- login and session ---
api POST /v1/users '{"username":"admin","password":"admin-pw-123","role":"admin"}' >/dev/null
check "API without a session: 401" test "$(c GET /console/api/devices)" = 401
check "login takes JSON only: 415" test "$(c POST /console/api/login --data 'username=admin&password=admin-pw-123')" = 415
# (each login costs a password hash, slow under the sanitizers: the browser
# part checks a wrong password.)
login carol carol-pw-123; check "a non-admin user: 403" test "$LOGIN" = 403
check "no session for them" test -z "$SID"
login admin admin-pw-123; check "admin logs in: 200" test "$LOGIN" = 200
cookie=$(hdr Set-Cookie)
check "cookie: __Host-, 256-bit id" bash -c "echo '$cookie' | grep -Eq '^__Host-mdmd_session=[0-9a-f]{64};'"
check "cookie: Path=/; Secure; HttpOnly; SameSite=Strict" \
    bash -c "echo '$cookie' | grep -q '; Path=/; Secure; HttpOnly; SameSite=Strict'"
check "API answers are not cached" test "$(hdr Cache-Control)" = no-store
check "CSRF token in the answer" bash -c "echo '$CSRF' | grep -Eq '^[0-9a-f]{64}$'"
check "Redis keeps the SHA-1 of the id, not the id" \
    bash -c "[ \"\$(redis-cli -p $REDIS_PORT exists '$(skey "$SID")')\" = 1 ] && ! redis-cli -p $REDIS_PORT --scan --pattern '$(gkey session:)*' | grep -q '$SID'"
ttl=$(R ttl "$(skey "$SID")")
check "idle expiry set (8 h)" test "$ttl" -gt 28000 -a "$ttl" -le 28800
check "GET session: the user" test "$(c GET /console/api/session -H "$(ck "$SID")")$(jget "$T/b" user)" = 200admin

# --- search and the REST handlers behind the session ---
c GET "/console/api/devices?q=$(echo "$SERIAL" | tr 'A-Z' 'a-z')" -H "$(ck "$SID")" >/dev/null
check "search: serial prefix, any case, finds one device" \
    test "$(grep -o '"udid":"[^"]*"' "$T/b" | sort -u | tr '\n' ' ')" = "\"udid\":\"$U\" "
c GET "/console/api/devices?q=console-00000&limit=2" -H "$(ck "$SID")" >/dev/null
check "search: UDID prefix, paged" bash -c "[ \$(grep -o '\"udid\":' '$T/b' | wc -l) = 2 ] && grep -q '\"next_offset\":2' '$T/b'"
c GET "/console/api/devices?q=iphone%20console-000000" -H "$(ck "$SID")" >/dev/null
check "search: device name prefix" bash -c "grep -q '\"udid\":\"$U0\"' '$T/b'"
c GET "/console/api/devices?q=CAR" -H "$(ck "$SID")" >/dev/null
check "search: user name prefix" bash -c "grep -q '\"udid\":\"OTA-000000\"' '$T/b' && grep -q '\"user\":\"carol\"' '$T/b'"
c GET "/console/api/devices?q=nothing-like-this" -H "$(ck "$SID")" >/dev/null
check "search: no match, empty page" bash -c "grep -q '\"devices\":\\[\\]' '$T/b'"
check "search index: 4 entries per device at most" test "$(zcard_all mdm:idx)" -le 16
[ "$(api GET "/v1/devices?q=$SERIAL")" = 200 ] && grep -q "\"udid\":\"$U\"" "$T/api"
check "REST search finds the device too" test $? = 0
st=$(c GET /console/api/schema -H "$(ck "$SID")")
check "GET schema" bash -c "[ $st = 200 ] && grep -q '\"request_type\":\"DeviceInformation\",\"keys\":\\[{\"name\":\"Queries\",\"type\":\"array\"' '$T/b'"
check "unknown console API path: 404" test "$(c GET /console/api/nothing -H "$(ck "$SID")")" = 404
check "console API reaches only /v1: 404 for /metrics" test "$(c GET /console/api/../metrics --path-as-is -H "$(ck "$SID")")" = 404

# --- CSRF ---
cmd='{"udids":["'$U0'"],"command":{"RequestType":"SecurityInfo"}}'
q0=$(R llen "mdm:q:{$U0}")   # enrollment may have queued its own commands
check "POST without the CSRF token: 403" test "$(c POST /console/api/commands -H "$(ck "$SID")" \
    -H 'Content-Type: application/json' --data-binary "$cmd")" = 403
# A wrong token: the last character changed (to 1 when it was 0: "${CSRF%?}0"
# alone was the right token for one session in 16).
case $CSRF in *0) bad=${CSRF%?}1 ;; *) bad=${CSRF%?}0 ;; esac
check "POST with a wrong CSRF token: 403" test "$(c POST /console/api/commands -H "$(ck "$SID")" \
    -H "X-CSRF-Token: $bad" -H 'Content-Type: application/json' --data-binary "$cmd")" = 403
check "nothing was queued" test "$(R llen "mdm:q:{$U0}")" = "$q0"
check "POST with the token: 201" test "$(c POST /console/api/commands -H "$(ck "$SID")" \
    -H "X-CSRF-Token: $CSRF" -H 'Content-Type: application/json' --data-binary "$cmd")" = 201
check "queued once" test "$(R llen "mdm:q:{$U0}")" = $((q0 + 1))
check "clear queue from the console" test "$(c DELETE "/console/api/devices/$U0/commands" -H "$(ck "$SID")" \
    -H "X-CSRF-Token: $CSRF")$(jget "$T/b" dropped)" = "200$((q0 + 1))"
check "the queue is empty" test "$(R llen "mdm:q:{$U0}")" = 0
check "the console action is logged with its user" grep -q "event=console_request user=admin method=DELETE path=/v1/devices/$U0/commands" "$T/mdmd.log"
check "logout without the CSRF token: 403" test "$(c POST /console/api/logout -H "$(ck "$SID")")" = 403

# --- how sessions end ---
S1=$SID; C1=$CSRF
login admin admin-pw-123; S2=$SID
check "logout: 200" test "$(c POST /console/api/logout -H "$(ck "$S1")" -H "X-CSRF-Token: $C1")" = 200
check "logout clears the cookie" bash -c "grep -qi '^set-cookie: __Host-mdmd_session=;.*Max-Age=0' '$T/h'"
check "after logout the session is refused" test "$(c GET /console/api/session -H "$(ck "$S1")")" = 401
check "and gone from Redis" test "$(R exists "$(skey "$S1")")" = 0
check "the admin's other session lives on" test "$(c GET /console/api/session -H "$(ck "$S2")")" = 200
R expire "$(skey "$S2")" 100 >/dev/null
c GET /console/api/session -H "$(ck "$S2")" >/dev/null
check "each request slides the idle expiry" test "$(R ttl "$(skey "$S2")")" -gt 28000
R hset "$(skey "$S2")" created 1 >/dev/null
check "older than console_session_max_s: refused" test "$(c GET /console/api/session -H "$(ck "$S2")")" = 401
# Sessions written straight into Redis, as the login writes them, so that
# deletion, demotion and password changes are tested without more (slow)
# password hashing.
fake() {   # fake SID USER
    R hset "$(skey "$1")" user "$2" csrf x created "$(date +%s%3N)" \
        user_updated "$(R hget "$(gkey user:$2)" updated)" >/dev/null
    R expire "$(skey "$1")" 600 >/dev/null
}
F1=$(printf '%064d' 1); F2=$(printf '%064d' 2); F3=$(printf '%064d' 3)
fake "$F1" ghost; fake "$F2" carol; fake "$F3" admin
check "a session of a deleted user: refused" test "$(c GET /console/api/session -H "$(ck "$F1")")" = 401
check "a session of a user who is not an admin: refused" test "$(c GET /console/api/session -H "$(ck "$F2")")" = 401
check "(a well-formed session works)" test "$(c GET /console/api/session -H "$(ck "$F3")")" = 200
F4=$(printf '%064d' 4); fake "$F4" admin
R pexpire "$(skey "$F4")" 1 >/dev/null
wait_for 5 out_is 0 R exists "$(skey "$F4")"
check "an idle session that expired: refused" test "$(c GET /console/api/session -H "$(ck "$F4")")" = 401
api PUT /v1/users/admin/password '{"password":"admin-pw-456"}' >/dev/null
check "a password change ends the user's sessions" test "$(c GET /console/api/session -H "$(ck "$F3")")" = 401
check "a made-up session id: 401" test "$(c GET /console/api/session -H "$(ck "$(printf '%064d' 7)")")" = 401
check "no session id in the log" bash -c "! grep -qE '$S1|$S2|$F3' '$T/mdmd.log'"
check "no password in the log" bash -c "! grep -q 'admin-pw-123' '$T/mdmd.log'"

# --- the browser ---
if [ ! -d "$TOP/test/browser/node_modules/playwright-core" ]; then
    fail "playwright-core is installed" "make deps runs npm ci in test/browser"
    finish
fi
"${SIM[@]}" -n 3 --udid-prefix CONSOLE --skip-enroll --push-file "$T/pushes" --duration 300 \
    >"$T/sim.out" 2>&1 &
PIDS+=("$!")
cat >"$T/console.mobileconfig" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>
<key>PayloadType</key><string>Configuration</string>
<key>PayloadVersion</key><integer>1</integer>
<key>PayloadIdentifier</key><string>com.example.console</string>
<key>PayloadUUID</key><string>6B0C1F47-3D0A-4D53-9E0F-3C2B1A0D9E8F</string>
<key>PayloadDisplayName</key><string>Console test profile</string>
<key>PayloadContent</key><array/>
</dict></plist>
EOF
PROFILE="$T/console.mobileconfig" BASE=$B ADMIN_USER=admin ADMIN_PASS=admin-pw-456 UDID=$U UDID_EVIL=$EVIL SERIAL=$SERIAL \
    SHOT="$T/console-device.png" PROFILE_DIR="$T/chromium-profile" \
    timeout 240 node "$TOP/test/browser/console.mjs" >"$T/browser.log" 2>&1
rc=$?
while IFS= read -r line; do
    case "$line" in
        "ok   "*) ok "browser: ${line#ok   }" ;;
        "FAIL "*) fail "browser: ${line#FAIL }" ;;
    esac
done <"$T/browser.log"
check "the browser test ran to its end" test "$rc" = 0 || tail -n 20 "$T/browser.log"
check "screenshot of the device page saved" test -s "$T/console-device.png"
echo "screenshot: $T/console-device.png"
check "no sanitizer report" bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$T/mdmd.log'"
# The fleet dashboard (issue 19): test/browser/fleet.mjs.
BASE=$B ADMIN_USER=admin ADMIN_PASS=admin-pw-456 UDID=$U SHOT="$T/console-device.png" \
    PROFILE_DIR="$T/chromium-profile" timeout 120 node "$TOP/test/browser/fleet.mjs" >"$T/browser-fleet.log" 2>&1
rc=$?
while IFS= read -r line; do
    case "$line" in
        "ok   "*) ok "browser: ${line#ok   }" ;;
        "FAIL "*) fail "browser: ${line#FAIL }" ;;
    esac
done <"$T/browser-fleet.log"
check "the dashboard browser test ran to its end" test "$rc" = 0 || tail -n 20 "$T/browser-fleet.log"
check "screenshot of the dashboard saved" test -s "$T/console-dashboard.png"
finish

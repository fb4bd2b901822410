#!/usr/bin/env bash
# Abuse cases on the MDM (mutual-TLS) listener: every refused handshake is
# refused and logged once, as event=tls_refused with its reason and the
# client's address:port; mdmd keeps serving a good device.  Each client runs
# from a port chosen here (curl --local-port), so the log line can be matched
# to it.  Revoked certificates are refused after the handshake (403,
# reason=revoked): enroll.sh covers the real flow ("refused as revoked"); here
# only a registry entry set by hand, which also checks the cached fingerprint.
. "$(dirname "$0")/lib.sh"

start_redis || { fail "redis starts"; finish; }
D=$T/a
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT"
start_mdmd "$D" || { fail "mdmd starts"; finish; }
CAKEY=$D/var/ca/ca.key
URL=https://127.0.0.1:$MDM/mdm/connect

# cert_with NAME CA_CRT CA_KEY CN EXT [openssl ca dates...]: like make_client_cert
# with the extensions EXT (one per line); with -startdate/-enddate it signs with
# `openssl ca`, since openssl x509 in OpenSSL 3.0 cannot set past dates.
cert_with() {
    local n=$1 cacrt=$2 cakey=$3 cn=$4 ext=$5; shift 5
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$cn" \
        -keyout "$T/$n.key" -out "$T/$n.csr" 2>/dev/null || return 1
    if [ $# = 0 ]; then
        printf '%b\n' "$ext" >"$T/$n.ext"
        openssl x509 -req -in "$T/$n.csr" -CA "$cacrt" -CAkey "$cakey" -CAcreateserial \
            -days 2 -extfile "$T/$n.ext" -out "$T/$n.crt" 2>/dev/null
        return
    fi
    mkdir -p "$T/cadb"; : >"$T/cadb/index.txt"; [ -f "$T/cadb/serial" ] || echo 1000 >"$T/cadb/serial"
    printf '[ca]\ndefault_ca=d\n[d]\ndatabase=%s\nserial=%s\nnew_certs_dir=%s\ndefault_md=sha256\npolicy=p\nunique_subject=no\n[p]\ncommonName=supplied\n[x]\n%b\n' \
        "$T/cadb/index.txt" "$T/cadb/serial" "$T/cadb" "$ext" >"$T/cadb/$n.cnf"
    openssl ca -batch -notext -config "$T/cadb/$n.cnf" -cert "$cacrt" -keyfile "$cakey" \
        -extensions x -in "$T/$n.csr" -out "$T/$n.crt" "$@" 2>/dev/null
}
CLIENT='extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature'

# try NAME [curl args]: one request from a fresh local port; sets PORT and CODE.
try() {
    PORT=$(free_port)
    CODE=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --local-port "$PORT" \
        --cacert "$CA" "${@:2}" 2>/dev/null)
    [ -n "$CODE" ] || CODE=000
}
# logged REASON: mdmd logged the refusal of the last try, with its reason.
logged() {
    wait_for 5 grep -q "level=warn event=tls_refused listener=mdm peer=127.0.0.1:$PORT reason=$1\( \|$\)" "$T/mdmd.log"
}
# refused NAME REASON [curl args]: no HTTP answer, and the line is logged.
refused() {
    local n=$1 r=$2; shift 2
    try "$n" "$@" "$URL"
    check "$n: refused in the handshake" test "$CODE" = 000
    check "$n: logged as $r with the peer address" logged "$r"
    PORTS+=("$PORT")
}
PORTS=()

# A good device first: it must still be served at the end.
check "a good device enrolls" enroll_device good ABUSE-GOOD-1
plist_msg "$T/idle.plist" UDID ABUSE-GOOD-1 Status Idle

refused "no client certificate" no_client_certificate

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=Evil CA" \
    -keyout "$T/evil-ca.key" -out "$T/evil-ca.crt" -days 2 2>/dev/null
cert_with evil "$T/evil-ca.crt" "$T/evil-ca.key" ABUSE-EVIL "$CLIENT"
refused "certificate from another CA" unknown_ca --cert "$T/evil.crt" --key "$T/evil.key"
check "another CA: the line names the subject and issuer" \
    grep -q "peer=127.0.0.1:$PORT .*subject=\"/CN=ABUSE-EVIL\" issuer=\"/CN=Evil CA\"" "$T/mdmd.log"

cert_with expired "$CA" "$CAKEY" ABUSE-EXPIRED "$CLIENT" -startdate 20200101000000Z -enddate 20200102000000Z
check "the expired certificate is signed by the MDM CA" bash -c \
    "openssl verify -no_check_time -CAfile '$CA' '$T/expired.crt' >/dev/null"
refused "expired certificate" certificate_expired --cert "$T/expired.crt" --key "$T/expired.key"

cert_with future "$CA" "$CAKEY" ABUSE-FUTURE "$CLIENT" -startdate 20400101000000Z -enddate 20410101000000Z
refused "not yet valid certificate" certificate_not_yet_valid --cert "$T/future.crt" --key "$T/future.key"

cert_with srvonly "$CA" "$CAKEY" ABUSE-SRV 'extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature'
refused "serverAuth-only extended key usage" wrong_key_usage --cert "$T/srvonly.crt" --key "$T/srvonly.key"

cert_with signonly "$CA" "$CAKEY" ABUSE-KU 'keyUsage=keyCertSign'
refused "keyCertSign-only key usage" wrong_key_usage --cert "$T/signonly.crt" --key "$T/signonly.key"

# Not TLS at all: curl's gopher client sends the selector as it is.
try garbage "gopher://127.0.0.1:$MDM/1%01%02garbage-not-a-ClientHello"
check "garbage bytes: no TLS answer" test "$CODE" = 000
check "garbage bytes: logged as not_tls with the peer address" logged not_tls
PORTS+=("$PORT")
try plain "http://127.0.0.1:$MDM/mdm/connect"
check "plain HTTP: no HTTP answer" test "$CODE" = 000
check "plain HTTP: logged as plain_http" logged plain_http
PORTS+=("$PORT")

# A client that offers only TLS 1.1 (SECLEVEL 0 so that OpenSSL sends it at all).
refused "TLS 1.1-only client" unsupported_protocol --tlsv1.1 --tls-max 1.1 \
    --ciphers 'DEFAULT@SECLEVEL=0' --cert "$T/good.crt" --key "$T/good.key"

# Exactly one line per refused handshake.
one_line_each() {
    local p
    for p in "${PORTS[@]}"; do
        [ "$(grep -c "event=tls_refused listener=mdm peer=127.0.0.1:$p " "$T/mdmd.log")" = 1 ] ||
            { echo "port $p: $(grep -c "peer=127.0.0.1:$p " "$T/mdmd.log") lines"; return 1; }
    done
}
check "each refused handshake logged exactly once" one_line_each

# Clients that connect and close at once (port probes, TCP health checks) or
# go away mid-handshake are no warning.
( exec 3<>"/dev/tcp/127.0.0.1/$MDM" ) 2>/dev/null
( exec 3<>"/dev/tcp/127.0.0.1/$MDM" && printf '\026\003\001\002\000\001' >&3 ) 2>/dev/null
check "connections closed before or during the ClientHello: no warning" \
    bash -c "! grep -q 'level=warn .*reason=client_' '$T/mdmd.log'"

# A flood of garbage: lines are capped per second, the rest counted.
before=$(grep -c 'event=tls_refused' "$T/mdmd.log")
flood=()
for i in $(seq 1 120); do
    ( exec 3<>"/dev/tcp/127.0.0.1/$MDM" && printf 'junk\r\n\r\n' >&3 && cat <&3 >/dev/null ) 2>/dev/null &
    flood+=($!)
done
wait "${flood[@]}"   # not a bare wait: redis and mdmd are children too
# The most tls_refused lines logged within one second since the flood began.
per_second_max() {
    tail -n +"$((before + 1))" <(grep 'event=tls_refused' "$T/mdmd.log") |
        cut -c4-22 | uniq -c | sort -rn | head -n 1 | awk '{print $1}'
}
check "a flood of 120 garbage connections: at most 20 lines a second" test "$(per_second_max)" -le 20
# The dropped lines are counted on the next line written (in a later second:
# one more refusal makes sure there is one).
suppressed_reported() {
    curl -s -o /dev/null --max-time 2 "gopher://127.0.0.1:$MDM/1junk" >/dev/null 2>&1
    grep 'event=tls_refused' "$T/mdmd.log" | tail -n +"$((before + 1))" | grep -q 'suppressed=[1-9]'
}
check "and a later line says how many were suppressed" wait_for 5 suppressed_reported

# Still alive, still serving the good device, and the fingerprint it computes
# (cached per certificate) is the certificate's SHA-256.
poll good ABUSE-GOOD-1 Idle
check "a good device is still served (200)" test "$CODE" = 200
FP=$(openssl x509 -in "$T/good.crt" -outform DER | sha256sum | cut -d' ' -f1)
check "the device's recorded fingerprint is its certificate's SHA-256" \
    test "$(R hget "mdm:dev:{ABUSE-GOOD-1}" cert_fp)" = "$FP"
# Two requests on one keep-alive connection: the second uses the fingerprint
# cached on the certificate object.
codes=$(curl -s -o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\n' --max-time 10 \
    --cacert "$CA" --cert "$T/good.crt" --key "$T/good.key" -X PUT \
    -H 'Content-Type: application/x-apple-aspen-mdm' --data-binary "@$T/idle.plist" "$URL" "$URL")
check "two requests on one connection (cached fingerprint): both 200" \
    test "$(echo $codes)" = "200 1 200 0"
R hset "mdm:cert:$FP" state revoked revoked_reason test >/dev/null
R publish mdm:poke ABUSE-GOOD-1 >/dev/null # what a revoking script says (docs/REDIS.md, "Idle polls")
poll good ABUSE-GOOD-1 Idle
check "revoked certificate: 403 after the handshake" test "$CODE" = 403
check "revoked certificate: logged as revoked" \
    grep -q "event=device_refused udid=ABUSE-GOOD-1 .*reason=revoked" "$T/mdmd.log"
check "healthz still 200" test "$(http_code "https://127.0.0.1:$PUB/healthz" --cacert "$CA")" = 200

kill -TERM "$MDMD_PID"; wait "$MDMD_PID"; rc=$?
check "SIGTERM exits 0" test "$rc" = 0
check "no sanitizer report" bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$T/mdmd.log'"
finish

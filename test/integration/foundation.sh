#!/usr/bin/env bash
# Foundation: two TLS listeners on one loop, CA bootstrap, Redis state in
# /healthz across a Redis restart, SIGHUP reload, SIGTERM, config errors.
. "$(dirname "$0")/lib.sh"

start_redis || { fail "redis starts"; finish; }
D=$T/a
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT"
start_mdmd "$D" || { fail "mdmd starts"; finish; }
ok "mdmd starts and writes its ports"

check "CA key is mode 0600" test "$(stat -c %a "$D/var/ca/ca.key")" = 600
check "server cert chains to the CA" openssl verify -CAfile "$CA" "$D/var/ca/server.crt"
sans=$(openssl x509 -in "$D/var/ca/server.crt" -noout -ext subjectAltName 2>/dev/null)
check "server cert names localhost, 127.0.0.1, ::1" \
    bash -c "grep -q 'DNS:localhost' <<<'$sans' && grep -q 'IP Address:127.0.0.1' <<<'$sans' && grep -q 'IP Address:0:0:0:0:0:0:0:1' <<<'$sans'"

check "healthz 200 over 1-way TLS (127.0.0.1)" test "$(http_code https://127.0.0.1:$PUB/healthz --cacert "$CA")" = 200
check "healthz 200 by host name localhost" test "$(http_code https://localhost:$PUB/healthz --cacert "$CA")" = 200
body=$(curl -s --cacert "$CA" https://127.0.0.1:$PUB/healthz)
check "healthz says redis up" grep -q '"redis":"up"' <<<"$body"
check "1-way listener refuses TLS 1.1" bash -c "! curl -s --cacert '$CA' --tls-max 1.1 https://127.0.0.1:$PUB/healthz"
check "unknown path is 404" test "$(http_code https://127.0.0.1:$PUB/nope --cacert "$CA")" = 404
check "wrong method is 405" test "$(http_code https://127.0.0.1:$PUB/healthz --cacert "$CA" -X DELETE)" = 405

curl -s --cacert "$CA" -o "$T/ca.der" "https://127.0.0.1:$PUB/mdm/ca"
openssl x509 -in "$CA" -outform der -out "$T/ca.expect.der"
check "GET /mdm/ca serves the CA as DER" cmp -s "$T/ca.der" "$T/ca.expect.der"
ctype=$(curl -s --cacert "$CA" -o /dev/null -w '%{content_type}' "https://127.0.0.1:$PUB/mdm/ca")
check "DER content type is application/x-x509-ca-cert" test "$ctype" = "application/x-x509-ca-cert"
curl -s --cacert "$CA" -o "$T/ca.pem" "https://127.0.0.1:$PUB/mdm/ca?format=pem"
check "?format=pem serves the same CA as PEM" cmp -s "$T/ca.pem" "$CA"
check "?format=bogus is 400" test "$(http_code "https://127.0.0.1:$PUB/mdm/ca?format=x" --cacert "$CA")" = 400

# MDM listener: mutual TLS only.
check "MDM listener refuses a client without a certificate" \
    test "$(http_code https://127.0.0.1:$MDM/nope --cacert "$CA")" = 000
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=Evil CA" \
    -keyout "$T/evil-ca.key" -out "$T/evil-ca.crt" -days 2 2>/dev/null
make_client_cert evil "$T/evil-ca.crt" "$T/evil-ca.key" 0000-EVIL
check "MDM listener refuses a certificate from another CA" \
    test "$(http_code https://127.0.0.1:$MDM/nope --cacert "$CA" --cert "$T/evil.crt" --key "$T/evil.key")" = 000
make_client_cert dev "$CA" "$D/var/ca/ca.key" 0000-DEVICE
check "MDM listener accepts a certificate issued by the MDM CA" \
    test "$(http_code https://127.0.0.1:$MDM/nope --cacert "$CA" --cert "$T/dev.crt" --key "$T/dev.key")" = 404
check "1-way listener does not ask for a client certificate" \
    bash -c "! openssl s_client -connect 127.0.0.1:$PUB -CAfile '$CA' </dev/null 2>/dev/null | grep -q 'Acceptable client certificate CA names'"
n=$(curl -sv --cacert "$CA" --cert "$T/dev.crt" --key "$T/dev.key" \
    "https://127.0.0.1:$MDM/a" "https://127.0.0.1:$MDM/b" 2>&1 | grep -c 'Re-using existing connection')
check "keep-alive on the MDM listener" test "$n" -ge 1
n=$(curl -sv --cacert "$CA" "https://127.0.0.1:$PUB/healthz" "https://127.0.0.1:$PUB/healthz" 2>&1 | grep -c 'Re-using existing connection')
check "keep-alive on the 1-way listener" test "$n" -ge 1

# Redis goes away and comes back; mdmd is not restarted.
stop_redis
check "healthz 503 while Redis is down" wait_for 5 out_is 503 http_code https://127.0.0.1:$PUB/healthz --cacert "$CA"
start_redis "$REDIS_PORT"
check "healthz 200 again once Redis is back" wait_for 5 out_is 200 http_code https://127.0.0.1:$PUB/healthz --cacert "$CA"

# SIGHUP: a bad file changes nothing; a good one is applied.
cp "$D/mdmd.conf" "$D/good.conf"
echo "max_connections many" >>"$D/mdmd.conf"
kill -HUP "$MDMD_PID"
check "SIGHUP with a bad config logs why and keeps running" wait_for 5 grep -q 'event=reload_failed' "$T/mdmd.log"
check "still serving after the failed reload" test "$(http_code https://127.0.0.1:$PUB/healthz --cacert "$CA")" = 200
cp "$D/good.conf" "$D/mdmd.conf"; echo "log_level debug" >>"$D/mdmd.conf"
kill -HUP "$MDMD_PID"
check "SIGHUP with a good config reloads" wait_for 5 grep -q 'event=reloaded' "$T/mdmd.log"
check "serving after the reload" test "$(http_code https://127.0.0.1:$PUB/healthz --cacert "$CA")" = 200

# SIGTERM with a request in flight: Redis is frozen, so /healthz waits for the
# Redis timeout; mdmd must answer it before exiting 0, and accept nothing new.
kill -STOP "$REDIS_PID"
seen=$(grep -c 'event=request listener=public .*path=/healthz' "$T/mdmd.log")
curl -s -o "$T/inflight" -w '%{http_code}' --max-time 20 --cacert "$CA" https://127.0.0.1:$PUB/healthz >"$T/inflight.code" &
CURL=$!
# The request has reached its handler (log_level debug was set by the reload above).
check "the request is in flight" wait_for 10 bash -c "[ \$(grep -c 'event=request listener=public .*path=/healthz' '$T/mdmd.log') -gt $seen ]"
kill -TERM "$MDMD_PID"
check "after SIGTERM no new connection is accepted" wait_for 5 out_is 000 http_code https://127.0.0.1:$PUB/healthz --cacert "$CA"
wait "$CURL"
check "the in-flight request still got its answer (503, Redis frozen)" test "$(cat "$T/inflight.code")" = 503
kill -CONT "$REDIS_PID"
wait "$MDMD_PID"; rc=$?
check "SIGTERM exits 0" test "$rc" = 0
check "no sanitizer report" bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$T/mdmd.log'"

# Config errors: non-zero exit, file:line in the message.
printf 'listen 127.0.0.1:0\n# fine\nmax_body_size huge\n' >"$T/bad.conf"
"$BIN/mdmd" -c "$T/bad.conf" >"$T/bad.out" 2>&1; rc=$?
check "bad config exits non-zero" test "$rc" -ne 0
check "bad config names file and line" grep -q "$T/bad.conf:3: max_body_size" "$T/bad.out"
"$BIN/mdmd" -c "$T/bad.conf" -t >/dev/null 2>&1; rc=$?
check "-t rejects the bad config" test "$rc" -ne 0
"$BIN/mdmd" -c "$D/good.conf" -t >/dev/null 2>&1; rc=$?
check "-t accepts the good config" test "$rc" = 0
"$BIN/mdmd" -c "$D/good.conf" -o nosuch=1 -t >"$T/ov.out" 2>&1; rc=$?
check "unknown -o key is refused" bash -c "test $rc -ne 0 && grep -q 'command line:1: nosuch: unknown key' '$T/ov.out'"

# No Redis configured: mdmd runs its own, on a unix socket with AOF, and stops it.
E=$T/b
write_conf "$E"
sed -i 's|^data_dir .*|data_dir var|' "$E/mdmd.conf"   # relative, as make run has it
start_mdmd "$E" || fail "mdmd with private redis starts"
check "private redis: healthz 200" wait_for 10 out_is 200 http_code https://127.0.0.1:$PUB/healthz --cacert "$E/var/ca/ca.crt"
check "private redis: socket under the data dir" test -S "$E/var/redis/redis.sock"
check "private redis: AOF on" bash -c "redis-cli -s '$E/var/redis/redis.sock' config get appendonly | grep -qx yes"
rpid=$(redis-cli -s "$E/var/redis/redis.sock" info server | awk -F: '/^process_id/{print $2}' | tr -d '\r')
kill -TERM "$MDMD_PID"; wait "$MDMD_PID"; rc=$?
check "private redis: mdmd exits 0" test "$rc" = 0
check "private redis: stopped with mdmd" bash -c "! kill -0 $rpid 2>/dev/null"
check "same CA on restart" bash -c "cp '$D/var/ca/ca.crt' '$T/ca1.crt'"
start_mdmd "$D" >/dev/null 2>&1 || true
check "restart keeps the CA" cmp -s "$T/ca1.crt" "$D/var/ca/ca.crt"
kill -TERM "$MDMD_PID" 2>/dev/null; wait "$MDMD_PID" 2>/dev/null
finish

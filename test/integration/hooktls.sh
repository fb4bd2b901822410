#!/usr/bin/env bash
# https:// webhooks (issue 19): the receiver's certificate is verified
# (webhook_ca_file here; the system store by default), with its host name or
# IP address, and SNI is sent.  A receiver with a certificate from another CA,
# or for another name, is refused: each attempt is retried and logged with the
# reason, and the events end in the dead-letter stream (nothing lost).
. "$(dirname "$0")/lib.sh"

SECRET=tls-secret
# A test CA and three receiver certificates: right, from another CA, for another name.
mkcert() { # NAME CA SAN
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
        -keyout "$T/$1.key" -out "$T/$1.csr" 2>/dev/null &&
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$3" >"$T/$1.ext" &&
    openssl x509 -req -in "$T/$1.csr" -CA "$T/$2.crt" -CAkey "$T/$2.key" -CAcreateserial -days 2 \
        -extfile "$T/$1.ext" -out "$T/$1.crt" 2>/dev/null
}
for ca in hookca otherca; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=Test $ca" \
        -keyout "$T/$ca.key" -out "$T/$ca.crt" -days 2 2>/dev/null
done
mkcert good hookca "DNS:localhost,IP:127.0.0.1" && mkcert badca otherca "DNS:localhost,IP:127.0.0.1" &&
    mkcert badname hookca "DNS:wrong.example" || { fail "certificates"; finish; }
recv() { # NAME PORT
    python3 "$TOP/test/tools/hookrecv.py" --port "$2" --secret "$SECRET" --log "$T/$1.log" \
        --tls-cert "$T/$1.crt" --tls-key "$T/$1.key" >"$T/recv-$1.out" 2>&1 &
    PIDS+=($!)
}
G=$(free_port); B=$(free_port); N=$(free_port)
recv good "$G"; recv badca "$B"; recv badname "$N"
start_redis || { fail "redis starts"; finish; }
D=$T/a
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT" \
    "webhook_url https://localhost:$G/hook https://127.0.0.1:$G/ip https://localhost:$B/badca https://localhost:$N/badname" \
    "webhook_secret $SECRET" "webhook_ca_file $T/hookca.crt" \
    "webhook_retry_max_s 1" "webhook_max_age_s 6" "webhook_timeout_s 2"
start_mdmd "$D" || { fail "mdmd starts"; finish; }
check "four consumer groups" wait_for 10 bash -c \
    "[ \$(redis-cli -p $REDIS_PORT xinfo groups '$(bkey mdm:events DEV-0)' 2>/dev/null | grep -c '^hook:') = 4 ]"
for i in $(seq 1 10); do
    R xadd "$(bkey mdm:events "DEV-$((i % 2))")" '*' type test udid "DEV-$((i % 2))" seq "$i" time "$(date +%s%3N)" >/dev/null
done
got() { awk -v p="$1" '$1==200 && $6==p && $5 ~ /^[0-9]+$/ {print $5}' "$T/good.log" | sort -un | wc -l; }
check "https://localhost: all 10 delivered" wait_for 30 out_is 10 got /hook
check "https://127.0.0.1 (an IP address in the certificate): all 10 delivered" wait_for 30 out_is 10 got /ip
check "signatures verify" bash -c "! awk '\$1 ~ /^[0-9]+\$/ && \$3 != 1' '$T/good.log' | grep -q ."
check "SNI: localhost for the host name" grep -q '^SNI localhost$' "$T/good.log"
check "no SNI for the IP address (RFC 6066)" grep -q '^SNI -$' "$T/good.log"
echo "     (TLS handshakes for 20 deliveries: $(grep -c '^SNI' "$T/good.log"))"
check "another CA: refused, retried, logged with the reason" wait_for 20 grep -q \
    "event=webhook_retry url=https://localhost:$B/badca .*error=\"TLS: \(unable to get local issuer certificate\|self-signed certificate in certificate chain\)\"" "$T/mdmd.log"
check "another name: refused as a hostname mismatch" wait_for 20 grep -q \
    "event=webhook_retry url=https://localhost:$N/badname .*error=\"TLS: hostname mismatch\"" "$T/mdmd.log"
check "neither receiver ever got a request" bash -c "! grep -q '^[0-9]' '$T/badca.log' 2>/dev/null && ! grep -q '^[0-9]' '$T/badname.log' 2>/dev/null"
check "after webhook_max_age_s, every event of each is dead-lettered, none lost" wait_for 60 bash -c \
    "[ \"\$(redis-cli -p $REDIS_PORT xrange '$(gkey hook:dead)' - + | grep -c '^https://localhost:$B/badca\$')\" -ge 10 ] && [ \"\$(redis-cli -p $REDIS_PORT xrange '$(gkey hook:dead)' - + | grep -c '^https://localhost:$N/badname\$')\" -ge 10 ]"
check "the dead letters carry the TLS error" bash -c "redis-cli -p $REDIS_PORT xrange '$(gkey hook:dead)' - + | grep -q '^TLS: hostname mismatch\$'"
check "each delivered once (acknowledged after its 2xx)" test \
    "$(awk '$1==200 && $6=="/hook" && $5 ~ /^[0-9]+$/' "$T/good.log" | wc -l)" = 10
check "no sanitizer report" bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$T/mdmd.log'"
finish

#!/usr/bin/env bash
# Push certificate renewal (issue 19): a renewal is installed only when its
# topic is the enrolled devices' (REST PUT /v1/push-certificate, mdmctl
# push-cert, SIGHUP after the files changed), otherwise refused with both
# topics named unless forced (?force=1, --force, apns_allow_topic_change);
# a renewal that is installed pushes at once over a new connection.
. "$(dirname "$0")/lib.sh"

make_push_pki || { fail "push PKI"; finish; }
start_mock_apns || { fail "mock APNs starts"; finish; }
start_redis || { fail "redis starts"; finish; }
D=$T/a
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT" "push_coalesce_ms 0" "repush_after_s 0"
# Copies: the test overwrites the files mdmd reads.
cp "$T/push.crt" "$T/run.crt"; cp "$T/push.key" "$T/run.key"
apns_conf | sed -e "s|$T/push.crt|$T/run.crt|" -e "s|$T/push.key|$T/run.key|" >>"$D/mdmd.conf"
start_mdmd "$D" || { fail "mdmd starts"; finish; }

# mkpush NAME TOPIC: $T/NAME.pem, certificate and key, from the test APNs CA.
mkpush() {
    openssl req -new -newkey rsa:2048 -nodes -subj "/UID=$2/CN=APSP:$1" \
        -keyout "$T/$1.key" -out "$T/$1.csr" 2>/dev/null &&
    openssl x509 -req -in "$T/$1.csr" -CA "$T/apns-ca.crt" -CAkey "$T/apns-ca.key" \
        -CAcreateserial -days 30 -extfile "$T/push.ext" -out "$T/$1.crt" 2>/dev/null &&
    cat "$T/$1.crt" "$T/$1.key" >"$T/$1.pem"
}
OTHER=com.apple.mgmt.External.99999999-0000-4000-8000-000000000000
mkpush renew "$TOPIC" && mkpush other "$OTHER" && mkpush renew2 "$TOPIC" || fail "certificates"
put() { # PEM-FILE [QUERY]
    curl -s -o "$T/api" -w '%{http_code}' --max-time 10 --cacert "$CA" -X PUT \
        -H "Authorization: Bearer $(cat "$D/var/api.key")" -H 'Content-Type: application/x-pem-file' \
        --data-binary "@$1" "https://127.0.0.1:$PUB/v1/push-certificate${2:-}"
}
topic_now() { api GET /v1/push-certificate >/dev/null; jget "$T/api" topic; }

check "GET: the running topic" test "$(topic_now)" = "$TOPIC"
# A device enrolled under the push certificate's topic.
make_client_cert p1 "$CA" "$D/var/ca/ca.key" P-1 || fail "client cert"
plist_msg "$T/p1.auth" MessageType Authenticate UDID P-1 Topic "$TOPIC"
plist_msg "$T/p1.tok" MessageType TokenUpdate UDID P-1 Topic "$TOPIC" PushMagic MAGIC-P-1 \
    Token "<data>$(head -c 32 /dev/urandom | base64)</data>"
[ "$(mdm_put /mdm/checkin p1 "$T/p1.auth" application/x-apple-aspen-mdm-checkin)" = 200 ] &&
    [ "$(mdm_put /mdm/checkin p1 "$T/p1.tok" application/x-apple-aspen-mdm-checkin)" = 200 ] ||
    fail "a device enrolls under the topic"
TOK=$(R hget 'mdm:dev:{P-1}' token)
cmd() { api POST /v1/commands '{"udids":["P-1"],"command":{"RequestType":"ProfileList"}}' >/dev/null; }
cmd
check "the first push" wait_for 5 grep -q "^$TOK " "$T/pushes"

check "not PEM: 400" test "$(put /etc/hostname)" = 400
printf -- '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' >"$T/junk.pem"
check "unusable PEM: 400" test "$(put "$T/junk.pem")" = 400
check "another topic: 409" test "$(put "$T/other.pem")" = 409
check "409 names both topics" bash -c "grep -q '\"fleet_topic\":\"$TOPIC\"' '$T/api' && grep -q '\"new_topic\":\"$OTHER\"' '$T/api'"
check "the refusal is logged with both topics" grep -q "event=push_cert_refused why=topic_differs fleet_topic=$TOPIC new_topic=$OTHER" "$T/mdmd.log"
check "the running certificate is unchanged" test "$(topic_now)" = "$TOPIC"
check "the files are unchanged" cmp -s "$T/run.crt" "$T/push.crt"
check "no upload file left behind" test ! -e "$T/run.crt.upload"

check "a renewal with the same topic: 200" test "$(put "$T/renew.pem")" = 200
check "it is in the files" bash -c "cmp -s '$T/run.crt' '$T/renew.pem' && cmp -s '$T/run.key' '$T/renew.pem'"
check "the key file is private" test "$(stat -c %a "$T/run.key")" = 600
api GET /v1/push-certificate >/dev/null; na=$(jget "$T/api" not_after)
check "GET: its expiry (30 days)" test $(( (na - $(date +%s)) / 86400 )) -ge 29
n=$(grep -c "^$TOK " "$T/pushes")
cmd
check "a push after the renewal (new connection, new certificate)" wait_for 10 bash -c \
    "[ \$(grep -c '^$TOK ' '$T/pushes') -gt $n ]"
check "the push connection was reopened" bash -c "[ \$(grep -c 'event=apns_connected' '$T/mdmd.log') -ge 2 ]"

CTL=("$BIN/mdmctl" --url "https://127.0.0.1:$PUB" --key-file "$D/var/api.key" --cacert "$CA")
"${CTL[@]}" push-cert "$T/other.pem" >"$T/ctl.out" 2>&1; rc=$?
check "mdmctl push-cert: another topic refused (exit 1, both topics)" bash -c \
    "[ $rc = 1 ] && grep -q '$OTHER is not the enrolled devices. $TOPIC' '$T/ctl.out'"
check "mdmctl push-cert --force installs it" bash -c \
    "'${CTL[0]}' ${CTL[*]:1} push-cert '$T/other.pem' --force | grep -q 'installed: topic $OTHER'"
check "the forced install is logged" grep -q "event=push_cert_topic_forced fleet_topic=$TOPIC new_topic=$OTHER" "$T/mdmd.log"
check "GET: the new topic" test "$(topic_now)" = "$OTHER"
check "REST ?force=1 back to the fleet's topic: 200" test "$(put "$T/renew.pem" '?force=1')" = 200
check "mdmctl push-cert: the running one" bash -c "'${CTL[0]}' ${CTL[*]:1} push-cert | grep -q '$TOPIC'"

# SIGHUP after the files changed.
hup() { # waits for the reload's log line count to grow
    local n; n=$(grep -c 'event=reloaded' "$T/mdmd.log")
    kill -HUP "$MDMD_PID"
    wait_for 10 bash -c "[ \$(grep -c 'event=reloaded' '$T/mdmd.log') -gt $n ]"
}
cp "$T/other.crt" "$T/run.crt"; cp "$T/other.key" "$T/run.key"
hup
check "SIGHUP with another topic: refused, both named" wait_for 10 grep -q \
    "event=reload_partial reason=\"push certificate refused: its topic $OTHER is not the enrolled devices' $TOPIC" "$T/mdmd.log"
check "SIGHUP: the old certificate keeps running" test "$(topic_now)" = "$TOPIC"
cp "$T/renew2.crt" "$T/run.crt"; cp "$T/renew2.key" "$T/run.key"
hup
check "SIGHUP with a renewal of the same topic: installed" wait_for 10 bash -c \
    "[ \$(grep -c 'event=push_cert_installed topic=$TOPIC' '$T/mdmd.log') -ge 3 ]"
n=$(grep -c 'event=push_cert_installed' "$T/mdmd.log")
hup # (push_cert_same() is decided before the reloaded line)
check "SIGHUP with the files unchanged: nothing installed" test "$(grep -c 'event=push_cert_installed' "$T/mdmd.log")" = "$n"
cp "$T/other.crt" "$T/run.crt"; cp "$T/other.key" "$T/run.key"
echo "apns_allow_topic_change yes" >>"$D/mdmd.conf"
hup
check "SIGHUP with apns_allow_topic_change yes: installed" wait_for 10 out_is "$OTHER" topic_now
n=$(grep -c "^$TOK " "$T/pushes")
cmd
check "a device of the old topic is not pushed with the new one" wait_for 10 grep -q \
    'event=push_skipped udid=P-1 reason=topic_mismatch' "$T/mdmd.log"
check "...and nothing reached APNs" test "$(grep -c "^$TOK " "$T/pushes")" = "$n"
check "no sanitizer report" bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$T/mdmd.log'"
finish

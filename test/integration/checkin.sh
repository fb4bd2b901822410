#!/usr/bin/env bash
# The check-in messages beyond Authenticate/TokenUpdate/CheckOut (issue 17),
# end to end: mdmsim over real mutual TLS against a real Redis sends each
# one (--step) and the answers and Redis are checked.
. "$(dirname "$0")/lib.sh"
start_redis || { fail "redis starts"; finish; }
D=$T/a
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT" "token_source_dir $T/tokens"
start_mdmd "$D" || { fail "mdmd starts"; finish; }
check "bootstrap.key created with mode 0600" test "$(stat -c %a "$D/var/bootstrap.key")" = 600

SIM=("$BIN/mdmsim" --url "https://127.0.0.1:$MDM/mdm" --ca "$CA" --ca-key "$D/var/ca/ca.key"
     --identities "$T/ids" --udid-prefix CHK)
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
check "DeclarativeManagement: declined with 501 (its own issue)" has raw:DeclarativeManagement http=501
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
check "redis holds no plaintext of it anywhere" bash -c "! redis-cli -p $REDIS_PORT --no-raw hgetall 'mdm:dev:{$U}' | grep -q '$TOK' && ! redis-cli -p $REDIS_PORT xrange mdm:events - + | grep -q '$TOK'"
check "the log holds no plaintext of it" bash -c "! grep -q '$TOK' '$T/mdmd.log'"
# A sealed token copied to another device's record does not open there.
"${SIM[@]}" -q --offset 1 >/dev/null 2>&1
R hset "mdm:dev:{CHK-000001}" bootstrap_token "$(R hget "mdm:dev:{$U}" bootstrap_token)" >/dev/null
"${SIM[@]}" -q --skip-enroll --offset 1 --step get-bootstrap >"$T/out" 2>/dev/null
check "a sealed token moved to another UDID does not open (bound to the UDID)" \
    bash -c "grep -q 'name=get-bootstrap .*http=200' '$T/out' && ! grep -q BootstrapToken= '$T/out'"
check "admin read over REST: explicit endpoint" test "$(api GET "/v1/devices/$U/bootstrap-token")" = 200
check "admin read gives the token (base64)" test "$(jget "$T/api" bootstrap_token | base64 -d)" = "$TOK"
check "admin read is logged" grep -q "event=bootstrap_token_read udid=$U by=api" "$T/mdmd.log"
check "admin read is an event" bash -c "redis-cli -p $REDIS_PORT xrange mdm:events - + | grep -A1 -x by | grep -qx api"
check "device view does not show the token" bash -c "[ \$(curl -s -o '$T/dev.json' -w '%{http_code}' --cacert '$CA' -H 'Authorization: Bearer $(cat "$D/var/api.key")' https://127.0.0.1:$PUB/v1/devices/$U) = 200 ] && ! grep -q 'bootstrap_token\"' '$T/dev.json'"
sim set-bootstrap: get-bootstrap
check "an empty SetBootstrapToken clears it" test "$(R hexists "mdm:dev:{$U}" bootstrap_token)" = 0
check "GetBootstrapToken without a token: 200, key omitted" \
    bash -c "grep -q 'name=get-bootstrap .*http=200\$' '$T/out'"
check "admin read without a token: 404" test "$(api GET "/v1/devices/$U/bootstrap-token")" = 404
finish

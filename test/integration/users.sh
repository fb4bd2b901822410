#!/usr/bin/env bash
# Users and content (issue 5, part A): the `mdmd user` CLI, /v1/users, password
# hashing and login throttling, configuration/provisioning profiles and apps
# with their assignments, and the provisioning queued at the first TokenUpdate.
# Real Redis, real TLS.
. "$(dirname "$0")/lib.sh"

start_redis || { fail "redis starts"; finish; }
D=$T/u
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT"
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
check "bob was not created" test "$(R exists mdm:user:bob)" = 0

H=$(R hget mdm:user:alice hash)
check "hash format pbkdf2-sha256\$iter\$salt\$hash" \
    bash -c "echo '$H' | grep -Eq '^pbkdf2-sha256\\\$[0-9]+\\\$[A-Za-z0-9+/]{22}==\\\$[A-Za-z0-9+/]{43}=\$'"
check "iterations >= 600000" test "$(echo "$H" | cut -d'$' -f2)" -ge 600000
check "salt is random (two users, two salts)" \
    test "$(echo "$H" | cut -d'$' -f3)" != "$(R hget mdm:user:root.admin@example.com hash | cut -d'$' -f3)"
check "role stored" test "$(R hget mdm:user:alice role)" = user
check "created stored" test -n "$(R hget mdm:user:alice created)"
check "mdm:users holds both" test "$(R smembers mdm:users | sort | tr '\n' ' ')" = "alice root.admin@example.com "
check "password not stored in clear" bash -c "! redis-cli -p $REDIS_PORT --no-raw hgetall mdm:user:alice | grep -q alice-pw-1"
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
check "hash changed" test "$(R hget mdm:user:alice hash)" != "$H"
check "old password refused" test "$(api POST /v1/users/alice/verify '{"password":"alice-pw-1"}')" = 403
check "new password accepted" test "$(api POST /v1/users/alice/verify '{"password":"alice-pw-2"}')" = 200
check "set password of unknown user: 404" test "$(api PUT /v1/users/nobody/password '{"password":"whatever-1"}')" = 404
check "set short password: 400" test "$(api PUT /v1/users/alice/password '{"password":"x"}')" = 400

# --- delete ---
api POST /v1/users '{"username":"carol","password":"carol-pw-1","role":"user"}' >/dev/null
check "delete: 204" test "$(api DELETE /v1/users/carol)" = 204
check "deleted from Redis" test "$(R exists mdm:user:carol):$(R sismember mdm:users carol)" = 0:0
check "delete again: 404" test "$(api DELETE /v1/users/carol)" = 404
check "wrong method: 405" test "$(api PATCH /v1/users/alice)" = 405

# --- the CLI (same config file, blocking Redis connection) ---
cli() { "$BIN/mdmd" -c "$D/mdmd.conf" user "$@" >"$T/cli.out"; }
check "cli add with --password-stdin" bash -c "echo 'dave-pw-123' | '$BIN/mdmd' -c '$D/mdmd.conf' user add dave --role admin --password-stdin >'$T/cli.out' 2>&1"
check "cli add stored an admin with a 600000-iteration hash" \
    test "$(R hget mdm:user:dave role):$(R hget mdm:user:dave hash | cut -d'$' -f1,2)" = 'admin:pbkdf2-sha256$600000'
check "cli user can log in through the API" test "$(api POST /v1/users/dave/verify '{"password":"dave-pw-123"}')" = 200
check "cli add with --password" cli add erin --role user --password erin-pw-123
check "cli add again fails" bash -c "! '$BIN/mdmd' -c '$D/mdmd.conf' user add erin --role user --password erin-pw-123 2>'$T/cli.err' && grep -q exists '$T/cli.err'"
check "cli add without --role: usage error 2" bash -c "'$BIN/mdmd' -c '$D/mdmd.conf' user add frank --password frank-pw-123 2>/dev/null; [ \$? = 2 ]"
check "cli add with a bad role: 2" bash -c "'$BIN/mdmd' -c '$D/mdmd.conf' user add frank --role root --password frank-pw-123 2>/dev/null; [ \$? = 2 ]"
check "cli add with a bad name: 2" bash -c "'$BIN/mdmd' -c '$D/mdmd.conf' user add 'fr ank' --role user --password frank-pw-123 2>/dev/null; [ \$? = 2 ]"
check "cli add with a short password fails" bash -c "! '$BIN/mdmd' -c '$D/mdmd.conf' user add frank --role user --password short 2>/dev/null && [ \$(redis-cli -p $REDIS_PORT exists mdm:user:frank) = 0 ]"
check "cli list shows users and roles" bash -c "'$BIN/mdmd' -c '$D/mdmd.conf' user list >'$T/cli.out' && grep -Eq '^dave +admin' '$T/cli.out' && grep -Eq '^erin +user' '$T/cli.out'"
check "cli passwd from stdin" bash -c "echo 'erin-pw-456' | '$BIN/mdmd' -c '$D/mdmd.conf' user passwd erin >/dev/null"
check "new password works, old does not" \
    test "$(api POST /v1/users/erin/verify '{"password":"erin-pw-456"}'):$(api POST /v1/users/erin/verify '{"password":"erin-pw-123"}')" = 200:403
check "cli passwd of an unknown user fails" bash -c "! echo 'xxxx-pw-456' | '$BIN/mdmd' -c '$D/mdmd.conf' user passwd nobody 2>/dev/null"
check "cli del" cli del erin
check "cli del removed it" test "$(R exists mdm:user:erin):$(R sismember mdm:users erin)" = 0:0
check "cli del again fails" bash -c "! '$BIN/mdmd' -c '$D/mdmd.conf' user del erin 2>/dev/null"
check "cli user is visible in the REST list" bash -c "[ \$(curl -s -o '$T/api' -w '%{http_code}' --cacert '$CA' -H \"Authorization: Bearer \$(cat '$D/var/api.key')\" https://127.0.0.1:$PUB/v1/users) = 200 ] && grep -q '\"username\":\"dave\",\"role\":\"admin\"' '$T/api'"
write_conf "$T/priv"
check "cli with the private Redis not running: says so, exits 1" bash -c "
    '$BIN/mdmd' -c '$T/priv/mdmd.conf' user list 2>'$T/cli.err'; rc=\$?
    [ \$rc = 1 ] && grep -q 'private Redis' '$T/cli.err' && grep -q 'not running' '$T/cli.err'"
R del mdm:loginfail:addr:127.0.0.1 >/dev/null

# --- login throttling: per user ---
R del mdm:loginfail:addr:127.0.0.1 >/dev/null
for i in 1 2 3 4 5; do api POST /v1/users/alice/verify '{"password":"nope-nope"}' >/dev/null; done
check "5 failures counted for the user" test "$(R get mdm:loginfail:user:alice)" = 5
check "user counter expires (TTL set)" test "$(R ttl mdm:loginfail:user:alice)" -gt 0
code=$(curl -s -D "$T/hdr" -o "$T/api" -w '%{http_code}' --cacert "$CA" -X POST \
    -H "Authorization: Bearer $(cat "$D/var/api.key")" --data-binary '{"password":"alice-pw-2"}' \
    "https://127.0.0.1:$PUB/v1/users/alice/verify")
check "6th attempt, even right: 429" test "$code" = 429
check "429 carries Retry-After" bash -c "grep -iq '^Retry-After: [1-9]' '$T/hdr'"
check "other users are not limited by it" test "$(api POST /v1/users/root.admin@example.com/verify '{"password":"admin-pw-1"}')" = 200
R del mdm:loginfail:user:alice >/dev/null
check "after the window: right password works" test "$(api POST /v1/users/alice/verify '{"password":"alice-pw-2"}')" = 200

# --- login throttling: per address ---
R del mdm:loginfail:addr:127.0.0.1 >/dev/null
for i in $(seq 1 20); do api POST /v1/users/ghost$i/verify '{"password":"nope-nope"}' >/dev/null; done
check "20 failures counted for the address" test "$(R get mdm:loginfail:addr:127.0.0.1)" = 20
check "21st from the address: 429 though the password is right" \
    test "$(api POST /v1/users/alice/verify '{"password":"alice-pw-2"}')" = 429
R del mdm:loginfail:addr:127.0.0.1 >/dev/null
api POST /v1/users/alice/verify '{"password":"bad-one-1"}' >/dev/null
api POST /v1/users/alice/verify '{"password":"alice-pw-2"}' >/dev/null
check "success: user counter gone, address counter kept" \
    test "$(R exists mdm:loginfail:user:alice):$(R get mdm:loginfail:addr:127.0.0.1)" = 0:1
R del mdm:loginfail:addr:127.0.0.1 >/dev/null

finish

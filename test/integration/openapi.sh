#!/usr/bin/env bash
# GET /v1/openapi.json serves docs/openapi.json as built, to anyone; and
# `mdmd --routes` lists the routes test/unit/test_openapi.c holds it against.
. "$(dirname "$0")/lib.sh"

start_redis || { fail "redis starts"; finish; }
D=$T/a
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT"
start_mdmd "$D" || { fail "mdmd starts"; finish; }
out=$(curl -s --cacert "$CA" -o "$T/doc" -w '%{http_code} %{content_type}' "https://127.0.0.1:$PUB/v1/openapi.json")
check "served without a key, as JSON" test "$out" = "200 application/json"
check "byte for byte docs/openapi.json" cmp "$T/doc" "$TOP/docs/openapi.json"
check "an OpenAPI 3 document" grep -q '"openapi": "3\.' "$T/doc"
"$BIN/mdmd" --routes >"$T/routes"
check "--routes lists both listeners" bash -c "grep -q '^public GET /v1/devices$' '$T/routes' && grep -q '^mdm PUT /mdm/connect$' '$T/routes'"
check "--routes includes the document's own route" grep -q '^public GET /v1/openapi.json$' "$T/routes"
# Every /v1 path of the document reaches a handler (never the 404 of no route).
# A time limit: GET /v1/events is a stream that never ends (this hung the suite).
for p in $(grep -o '^    "/v1/[^"]*"' "$TOP/docs/openapi.json" | tr -d '" ' | sed 's/{[^}]*}/X/g'); do
    curl -s -m 3 --cacert "$CA" -o "$T/r" -H "Authorization: Bearer $(cat "$D/var/api.key")" "https://127.0.0.1:$PUB$p"
    grep -q 'no such endpoint' "$T/r" && fail "GET $p reaches no route"
done
ok "every documented /v1 path has a route"
kill -TERM "$MDMD_PID"; wait "$MDMD_PID"; rc=$?
check "SIGTERM exits 0" test "$rc" = 0
finish

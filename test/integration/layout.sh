#!/usr/bin/env bash
# The cluster key layout (docs/REDIS.md, "Redis Cluster") on one Redis, for
# what fans out and what lives in {g}: a dataset made by mdmd in the single
# layout, `mdmctl migrate-layout` (idempotent, resumable), then mdmd in the
# cluster layout reads it: the device list merged over the buckets and paged,
# the search, users, DDM declarations and sets, a device's declaration-items
# (the split calls), /metrics and the fleet numbers.  Seconds.
. "$(dirname "$0")/lib.sh"
unset REDIS_LAYOUT
start_redis || { fail "redis starts"; finish; }
D=$T/a
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT" "enroll_require_issued no"
start_mdmd "$D" || { fail "mdmd starts"; finish; }
wait_for 20 out_is 200 http_code "https://127.0.0.1:$PUB/healthz" --cacert "$CA"
TOPIC=com.apple.mgmt.test
ddm() {
    plist_msg "$T/$1.ddm" MessageType DeclarativeManagement UDID "$2" Endpoint "$3"
    mdm_put /mdm/checkin "$1" "$T/$1.ddm" application/x-apple-aspen-mdm-checkin
}

# --- the single layout's dataset, made by mdmd ---
for i in 1 2 3 4 5; do enroll_device d$i "LAY-$i" >/dev/null || fail "device $i enrolls"; sleep 0.01; done
check "user: 201" test "$(api POST /v1/users '{"username":"alice","password":"alice-pw-1","role":"user"}')" = 201
DECL='{"Type":"com.apple.configuration.management.test","Identifier":"com.example.t","Payload":{"Echo":"hi"}}'
check "declaration: 201" test "$(api PUT /v1/declarations/com.example.t "$DECL")" = 201
check "set: 201" test "$(api PUT /v1/declaration-sets/base '{"declarations":["com.example.t"]}')" = 201
check "assignment: 200" test "$(api PUT /v1/declaration-sets/base/assignment '{"udids":["LAY-1"]}')" = 200
ddm d1 LAY-1 declaration-items >/dev/null
cp "$T/resp" "$T/items.single" 2>/dev/null
check "single layout: the names as always" test "$(R exists mdm:user:alice):$(R exists mdm:ddm:decl:com.example.t):$(R zcard mdm:devices)" = 1:1:5
kill "$MDMD_PID"; wait "$MDMD_PID" 2>/dev/null

# --- the migration, in place (one Redis: the per-device keys stay as they are) ---
MIG=("$BIN/mdmctl" migrate-layout --from "127.0.0.1:$REDIS_PORT" --to "127.0.0.1:$REDIS_PORT")
check "migrate-layout runs" bash -c "'${MIG[0]}' ${MIG[*]:1} > '$T/mig1' 2> '$T/mig1.err'"
cat "$T/mig1"
export REDIS_LAYOUT=cluster
check "users into {g}" test "$(R hget "$(gkey user:alice)" role):$(R sismember "$(gkey users)" alice)" = user:1
check "declarations and sets into {g}" test "$(R hget "$(gkey ddm:decl:com.example.t)" identifier):$(R smembers "$(gkey ddm:set:base:targets)")" = com.example.t:LAY-1
sum=0; for k in $(bkeys mdm:devices); do sum=$((sum + $(R zcard "$k"))); done
check "mdm:devices rebuilt in the devices' buckets" test "$sum:$(R zscore "$(bkey mdm:devices LAY-3)" LAY-3)" = "5:$(R zscore mdm:devices LAY-3)"
check "mdm:idx rebuilt in the devices' buckets" test "$(R zrangebylex "$(bkey mdm:idx LAY-4)" '[sn-lay-4' '[sn-lay-4\xff' | wc -l)" -ge 1
check "the per-device keys as they were" test "$(R hget 'mdm:dev:{LAY-2}' serial_number)" = SN-LAY-2
n1=$(R dbsize)
check "a second run: the same dataset" bash -c "'${MIG[0]}' ${MIG[*]:1} > '$T/mig2' 2>&1 && [ \$(redis-cli -p $REDIS_PORT dbsize) = $n1 ]"
R hset "$(gkey migrate)" phase fleet cursor 0 >/dev/null   # as if stopped after the keys
check "an interrupted run resumes where it stopped" bash -c "'${MIG[0]}' ${MIG[*]:1} > '$T/mig3' 2>&1 && grep -q 'resuming: phase fleet' '$T/mig3'"
check "...and ends done, the same dataset" test "$(R hget "$(gkey migrate)" phase):$(R dbsize)" = "done:$n1"
check "a bad address: exit 1, a message" bash -c "'${MIG[0]}' migrate-layout --from 127.0.0.1:1 --to 127.0.0.1:1 > '$T/mig4' 2>&1; [ \$? = 1 ] && grep -q 'cannot connect' '$T/mig4'"

# --- mdmd in the cluster layout reads it ---
E=$T/b
write_conf "$E" "redis 127.0.0.1:$REDIS_PORT" "enroll_require_issued no" "provision_on_enroll yes" "provision_retry_s 1"
cp -r "$D/var" "$E/" 2>/dev/null
D=$E
start_mdmd "$D" || { fail "mdmd starts in the cluster layout"; finish; }
wait_for 20 out_is 200 http_code "https://127.0.0.1:$PUB/healthz" --cacert "$CA"
api GET '/v1/devices?limit=2' >/dev/null; cp "$T/api" "$T/p1"
check "devices: the newest two, merged over the buckets" bash -c "grep -o '\"udid\":\"LAY-[0-9]\"' '$T/p1' | tr '\n' ' ' | grep -qx '\"udid\":\"LAY-5\" \"udid\":\"LAY-4\" '"
check "...total 5, next 2" bash -c "grep -q '\"total\":5' '$T/p1' && grep -q '\"next_offset\":2' '$T/p1'"
api GET '/v1/devices?limit=2&offset=2' >/dev/null; cp "$T/api" "$T/p2"
api GET '/v1/devices?limit=2&offset=4' >/dev/null; cp "$T/api" "$T/p3"
check "...the pages after: 3 2, then 1 and the end" bash -c "grep -o 'LAY-[0-9]' '$T/p2' | sort -u | tr '\n' ' ' | grep -qx 'LAY-2 LAY-3 ' && grep -o 'LAY-[0-9]' '$T/p3' | sort -u | tr -d '\n' | grep -qx LAY-1 && grep -q '\"next_offset\":-1' '$T/p3'"
api GET '/v1/devices?q=sn-lay-3' >/dev/null
check "search: merged over the buckets' indexes" bash -c "grep -q '\"udid\":\"LAY-3\"' '$T/api' && ! grep -q LAY-2 '$T/api'"
api GET '/v1/devices?q=PHONE%20LAY' >/dev/null
check "search: every match, each device once" test "$(grep -o '"udid":"LAY-[0-9]"' "$T/api" | sort -u | wc -l):$(grep -o '"udid":"LAY-[0-9]"' "$T/api" | wc -l)" = 5:5
check "users: listed from {g}" bash -c "[ $(api GET /v1/users) = 200 ] && grep -q alice '$T/api'"
check "declarations: listed from {g}" bash -c "[ $(api GET /v1/declarations) = 200 ] && grep -q com.example.t '$T/api'"
check "set: its targets from {g}" bash -c "[ $(api GET /v1/declaration-sets/base) = 200 ] && grep -q LAY-1 '$T/api'"
check "declaration-items through the split calls: 200" test "$(ddm d1 LAY-1 declaration-items)" = 200
check "...the same declarations and token as before" cmp -s "$T/resp" "$T/items.single"
check "another device has none" bash -c "[ $(ddm d2 LAY-2 declaration-items) = 200 ] && ! grep -q com.example.t '$T/resp'"
check "a declaration fetched: 200" test "$(ddm d1 LAY-1 declaration/configuration/com.example.t)" = 200
check "the enrollment recorded in its bucket" test "$(R zscore "$(bkey mdm:ddm:enrollments LAY-1)" LAY-1 | grep -c .)" = 1
check "assignment moved to another device" bash -c "[ $(api PUT /v1/declaration-sets/base/assignment '{"udids":["LAY-2"]}') = 200 ] && [ \"\$(redis-cli -p $REDIS_PORT smembers 'mdm:ddm:sets:{LAY-1}')\" = '' ] && [ \"\$(redis-cli -p $REDIS_PORT smembers 'mdm:ddm:sets:{LAY-2}')\" = base ]"
check "assignment to an unknown device refused, nothing changed" bash -c "[ $(api PUT /v1/declaration-sets/base/assignment '{"udids":["GHOST"]}') = 400 ] && grep -q GHOST '$T/api' && [ \"\$(redis-cli -p $REDIS_PORT smembers 'mdm:ddm:sets:{LAY-2}')\" = base ]"
check "fleet numbers summed over the buckets" bash -c "[ $(api GET /v1/fleet) = 200 ] && grep -q '\"devices\":5' '$T/api'"
check "charts: each minute once, not added up over the buckets" bash -c "[ $(api GET '/v1/fleet?charts=1') = 200 ] && python3 -c \"import json,sys,time; d=json.load(open('$T/api')); t=[m['t'] for m in d['commands_per_minute']]; n=time.time()*1000; sys.exit(not (len(t) == 60 and all(b - a == 60000 for a, b in zip(t, t[1:])) and n - 120000 < t[-1] <= n))\""
# The DDM fleet view merged over the buckets: two enrollments with invalid
# declarations (in two buckets), status items read on each device's slot.
for u in LAY-4 LAY-5; do R sadd "$(bkey mdm:ddm:failed $u)" $u >/dev/null; done
R sadd 'mdm:ddm:invalid:{LAY-4}' a b >/dev/null; R sadd 'mdm:ddm:invalid:{LAY-5}' a >/dev/null
check "DDM fleet: the failed, sorted, with their counts" bash -c "[ $(api GET '/v1/ddm/status?failed=1') = 200 ] && python3 -c \"import json,sys; d=json.load(open('$T/api')); sys.exit(not ([(e['enrollment'], e['value']) for e in d['enrollments']] == [('LAY-4', 2), ('LAY-5', 1)] and d['total'] == 2))\""
R hset 'mdm:ddm:status:{LAY-1}' device.operating-system.version '"18.2"' >/dev/null
check "DDM fleet: an item's value, over the enrollments' buckets" bash -c "[ $(api GET '/v1/ddm/status?item=device.operating-system.version&value=18.2') = 200 ] && grep -q '\"enrollment\":\"LAY-1\"' '$T/api' && ! grep -q LAY-2 '$T/api'"
check "DDM fleet: not that value (missing included)" bash -c "[ $(api GET '/v1/ddm/status?item=device.operating-system.version&value=18.2&not=1') = 200 ] && grep -q '\"enrollment\":\"LAY-2\"' '$T/api' && ! grep -q LAY-1 '$T/api'"
R zadd "$(bkey mdm:provision LAY-3)" 1 LAY-3 >/dev/null   # a provisioning left pending
check "the provisioning timer walks the buckets" wait_for 10 grep -q 'event=provision_retry udid=LAY-3' "$T/mdmd.log"
# Claimed: rescored, or already gone (the retry's provisioning finished and
# took it off the bucket: provision.lua in the cluster layout).
claimed() { local sc; sc=$(R zscore "$(bkey mdm:provision LAY-3)" LAY-3); [ -z "$sc" ] || [ "$sc" -gt 1 ]; }
check "...and claimed it (rescored, or done)" claimed
check "user added in the cluster layout: {g}" bash -c "[ $(api POST /v1/users '{"username":"bob","password":"bob-pw-123","role":"user"}') = 201 ] && [ \$(redis-cli -p $REDIS_PORT exists 'mdm:{g}:user:bob') = 1 ] && [ \$(redis-cli -p $REDIS_PORT exists mdm:user:bob) = 0 ]"
check "mdmd user list (the CLI's connection) in the cluster layout" bash -c "'$BIN/mdmd' -c '$D/mdmd.conf' user list | grep -q bob"
finish

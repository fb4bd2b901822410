#!/usr/bin/env bash
# Queues and commands in the cluster key layout (docs/REDIS.md, "Redis
# Cluster"), forced on one Redis (redis_layout cluster): an enqueue stores the
# body by its own call, queues per slot and records the UUID per device
# (mdm:cmdto:{UDID}); idempotency per CommandUUID (the same body: queued once
# per device; another: 409) for a request sent again, a job run again and a
# job step whose progress call ran twice; the queue depth per bucket; filter
# and cancel jobs walking the 64 mdm:devices buckets; the pending list, queue
# surgery, and WAIT before the 201; then the same on a real cluster of 3
# masters and 3 replicas, and WAIT there on every master written.  About 15 s.
export REDIS_LAYOUT=cluster
. "$(dirname "$0")/lib.sh"
ready() { wait_for 20 out_is 200 http_code "https://127.0.0.1:$PUB/healthz" --cacert "$CA"; }
N=300

start_redis || { fail "redis starts"; finish; }
D=$T/a
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT"
start_mdmd "$D" || { fail "mdmd starts"; finish; }
ready || fail "mdmd is ready"

# The fleet, made directly: QL-001..N enrolled, QL-GONE checked out, each in
# its bucket of mdm:devices (the UDID's slot modulo 64, lib.sh's bkey).
R eval "
local function bucket(u)
  local crc = 0
  for i = 1, #u do
    crc = bit.bxor(crc, bit.lshift(string.byte(u, i), 8))
    for _ = 1, 8 do
      crc = bit.band(crc, 0x8000) ~= 0 and bit.bxor(bit.lshift(crc, 1), 0x1021) or bit.lshift(crc, 1)
      crc = bit.band(crc, 0xffff)
    end
  end
  return string.format('mdm:devices:{b%02d}', crc % 16384 % 64)
end
for i = 1, tonumber(ARGV[1]) do
  local u = string.format('QL-%03d', i)
  redis.call('HSET', 'mdm:dev:{' .. u .. '}', 'udid', u, 'state', 'enrolled', 'topic', 'com.apple.mgmt.test')
  redis.call('ZADD', bucket(u), i, u)
end
redis.call('HSET', 'mdm:dev:{QL-GONE}', 'udid', 'QL-GONE', 'state', 'checked_out')
redis.call('ZADD', bucket('QL-GONE'), 0, 'QL-GONE')
return 1" 0 "$N" >/dev/null
check "the fleet spreads over the buckets" test "$(for k in $(bkeys mdm:devices); do R exists "$k"; done | grep -c 1)" -gt 32

depth() {
    local k v s=0
    for k in $(bkeys mdm:stats); do v=$(R hget "$k" queue_depth); s=$((s + ${v:-0})); done
    echo "$s"
}
# qsum UUID: how many of QL-001..N hold UUID, and how often in all.
qsum() {
    R eval "local n = 0
for i = 1, tonumber(ARGV[2]) do
  for _, id in ipairs(redis.call('LRANGE', string.format('mdm:q:{QL-%03d}', i), 0, -1)) do
    if id == ARGV[1] then n = n + 1 end
  end
end
return n" 0 "$1" "$N"
}
udids=$(seq -f '"QL-%03g"' 1 $N | sed 's/QL-\([0-9]\)"/QL-00\1"/; s/QL-\([0-9][0-9]\)"/QL-0\1"/' | paste -sd,)

# --- a list, through POST /v1/commands ---
body='{"command_uuid":"00000001-0000-4000-8000-00000000c0de","udids":['"$udids"',"QL-GONE","NOBODY"],"command":{"RequestType":"ProfileList"}}'
check "enqueue of $N devices: 201" test "$(api POST /v1/commands "$body")" = 201
check "  queued $N, the checked-out and the unknown one named" bash -c "[ '$(jget "$T/api" queued)' = $N ] && grep -q '\"unknown_udids\":\[\"QL-GONE\",\"NOBODY\"\]' '$T/api'"
check "  every device queue holds it once" test "$(qsum 00000001-0000-4000-8000-00000000c0de)" = "$N"
check "  the body is stored once, targets counted" test "$(R hget mdm:cmd:00000001-0000-4000-8000-00000000c0de request_type):$(R hget mdm:cmd:00000001-0000-4000-8000-00000000c0de targets)" = "ProfileList:$N"
check "  given-to is per device (mdm:cmdto:{UDID}, UUID -> time)" test -n "$(R zscore 'mdm:cmdto:{QL-007}' 00000001-0000-4000-8000-00000000c0de)"
check "  no fleet-wide mdm:cmdto:<UUID>" test "$(R exists mdm:cmdto:00000001-0000-4000-8000-00000000c0de)" = 0
check "  mdm:cmdto:{UDID} expires" bash -c "[ \$(redis-cli -p $REDIS_PORT ttl 'mdm:cmdto:{QL-007}') -gt 2000000 ]"
check "  the queue depth, summed over the buckets" test "$(depth)" = "$N"
check "  counted in more than one bucket" test "$(for k in $(bkeys mdm:stats); do R hget "$k" queue_depth; done | grep -c .)" -gt 1
check "the same request again: 201" test "$(api POST /v1/commands "$body")" = 201
check "  queues nothing twice (already_queued $N)" bash -c "[ '$(jget "$T/api" queued)' = 0 ] && [ '$(jget "$T/api" already_queued)' = $N ] && [ '$(qsum 00000001-0000-4000-8000-00000000c0de)' = $N ] && [ '$(depth)' = $N ]"
other='{"command_uuid":"00000001-0000-4000-8000-00000000c0de","udids":["QL-001"],"command":{"RequestType":"CertificateList"}}'
check "the same UUID, another body: 409" test "$(api POST /v1/commands "$other")" = 409
check "  nothing queued" bash -c "[ '$(R llen 'mdm:q:{QL-001}')' = 1 ] && [ '$(depth)' = $N ]"
check "priority high: 201" test "$(api POST /v1/commands '{"command_uuid":"0000000f-0000-4000-8000-00000000c0de","priority":"high","udids":["QL-002"],"command":{"RequestType":"DeviceLock"}}')" = 201
check "  to the head of the queue" test "$(R lindex 'mdm:q:{QL-002}' 0)" = 0000000f-0000-4000-8000-00000000c0de

# --- a list job (async), then the same job again ---
job_field() { api GET "/v1/jobs/$1" >/dev/null; jget "$T/api" "$2"; }
jbody='{"async":true,"command_uuid":"00000002-0000-4000-8000-00000000c0de","udids":['"$udids"',"NOBODY"],"command":{"RequestType":"SecurityInfo"}}'
check "a list job: 202" test "$(api POST /v1/commands "$jbody")" = 202
J1=$(jget "$T/api" job_id)
check "  it finishes" wait_for 20 out_is done job_field "$J1" state
check "  done/queued/unknown/skipped" test "$(job_field "$J1" done)/$(jget "$T/api" queued)/$(jget "$T/api" unknown)/$(jget "$T/api" skipped)" = "$((N + 1))/$N/1/0"
check "  the record is in {g}" test "$(R hget "$(gkey "job:$J1")" state)" = done
check "  every device holds it once" test "$(qsum 00000002-0000-4000-8000-00000000c0de)" = "$N"
check "the same job again (a resumed or doubled job)" test "$(api POST /v1/commands "$jbody")" = 202
J2=$(jget "$T/api" job_id)
check "  it finishes" wait_for 20 out_is done job_field "$J2" state
check "  having queued nothing (skipped $N)" test "$(job_field "$J2" queued)/$(jget "$T/api" skipped)" = "0/$N"
check "  the queues are unchanged" test "$(qsum 00000002-0000-4000-8000-00000000c0de):$(depth)" = "$N:$((2 * N + 1))"

# A step's progress call run twice (its reply was lost, the step was sent
# again): counted once, and the stored position wins.
step() { R eval "$(printf 'local MDM_CLUSTER = true\n'; cat "$TOP/store/lua/job_step.lua")" 1 "$(gkey job:ql-step)" "$@"; }
step list 0 1000 50 40 2 8 "" >/dev/null
check "job_step: a step sent again is a replay" test "$(step list 0 1001 50 0 0 50 "" | head -n 1)" = 1
check "  and counts nothing twice" test "$(R hget "$(gkey job:ql-step)" queued):$(R hget "$(gkey job:ql-step)" next)" = 40:50

# --- a filter job: the 64 buckets walked ---
check "filter all_enrolled: 202" test "$(api POST /v1/commands '{"filter":"all_enrolled","command_uuid":"00000003-0000-4000-8000-00000000c0de","command":{"RequestType":"DeviceInformation","Queries":["OSVersion"]}}')" = 202
J3=$(jget "$T/api" job_id)
check "  it finishes" wait_for 20 out_is done job_field "$J3" state
check "  total/queued/skipped: the fleet, the enrolled, the checked-out one" test "$(job_field "$J3" total)/$(jget "$T/api" queued)/$(jget "$T/api" skipped)" = "$((N + 1))/$N/1"
check "  every enrolled device holds it once" test "$(qsum 00000003-0000-4000-8000-00000000c0de)" = "$N"
check "  the checked-out one got nothing" test "$(R llen 'mdm:q:{QL-GONE}')" = 0
check "  targets counted once" test "$(R hget mdm:cmd:00000003-0000-4000-8000-00000000c0de targets)" = "$N"

# --- one device's queue: pending, delete one, clear ---
check "pending: 200" test "$(api GET /v1/devices/QL-005/commands/pending)" = 200
check "  the bodies read from mdm:cmd:<UUID>" bash -c "grep -q '\"request_type\":\"ProfileList\"' '$T/api' && grep -q '\"request_type\":\"DeviceInformation\"' '$T/api' && grep -q 'CommandUUID' '$T/api' && grep -q '\"created\":[1-9]' '$T/api'"
check "  oldest first" test "$(grep -o '"uuid":"[^"]*' "$T/api" | cut -d'"' -f4 | cut -c8 | tr -d '\n')" = 123
check "pending of an unknown device: 404" test "$(api GET /v1/devices/NOBODY/commands/pending)" = 404
d0=$(depth)
check "delete one: 204" test "$(api DELETE /v1/devices/QL-005/commands/00000002-0000-4000-8000-00000000c0de)" = 204
check "  gone from the queue" test "$(R lrange 'mdm:q:{QL-005}' 0 -1 | tr '\n' ' ')" = "00000001-0000-4000-8000-00000000c0de 00000003-0000-4000-8000-00000000c0de "
check "  the depth moved (its bucket's fleet write)" wait_for 5 out_is $((d0 - 1)) depth
check "  a command_canceled event in the device's bucket" bash -c "redis-cli -p $REDIS_PORT xrange '$(bkey mdm:events QL-005)' - + | grep -q command_canceled"
check "delete it again: 404" test "$(api DELETE /v1/devices/QL-005/commands/00000002-0000-4000-8000-00000000c0de)" = 404
check "clear the queue: 200" test "$(api DELETE /v1/devices/QL-005/commands)" = 200
check "  dropped 2" grep -q '"dropped":2' "$T/api"
check "  the depth moved" wait_for 5 out_is $((d0 - 3)) depth

# --- cancel everywhere: the buckets walked ---
d0=$(depth)
check "cancel 00000003-0000-4000-8000-00000000c0de everywhere: 202" test "$(api DELETE /v1/commands/00000003-0000-4000-8000-00000000c0de)" = 202
J4=$(jget "$T/api" job_id)
check "  the cancel job finishes" wait_for 20 out_is done job_field "$J4" state
check "  counted $((N - 1)) cancelled (QL-005's was cleared)" test "$(job_field "$J4" canceled)" = $((N - 1))
check "  no queue holds it" test "$(qsum 00000003-0000-4000-8000-00000000c0de)" = 0
check "  the depth moved" wait_for 5 out_is $((d0 - N + 1)) depth

# --- WAIT before the 201: a replica that answers, then none ---
RP=$(free_port)
R config set repl-diskless-sync-delay 0 >/dev/null
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --replicaof 127.0.0.1 "$REDIS_PORT" \
    --dir "$T" --daemonize no >"$T/replica.log" 2>&1 &
RPID=$!; PIDS+=("$RPID")
check "a replica in sync" wait_for 10 bash -c "redis-cli -p $RP info replication | grep -q 'master_link_status:up'"
kill -TERM "$MDMD_PID"; wait "$MDMD_PID"
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT" "redis_wait_replicas 1" "redis_wait_ms 500"
start_mdmd "$D" || fail "mdmd restarts"
ready || fail "mdmd is ready again"
check "with a replica: 201" test "$(api POST /v1/commands '{"command_uuid":"00000004-0000-4000-8000-00000000c0de","udids":["QL-010","QL-200"],"command":{"RequestType":"ProfileList"}}')" = 201
kill -9 "$RPID"; wait "$RPID" 2>/dev/null
wait_for 10 bash -c "redis-cli -p $REDIS_PORT info replication | grep -q 'connected_slaves:0'"
check "without: 503, retry_safe" bash -c "[ '$(api POST /v1/commands '{"command_uuid":"00000005-0000-4000-8000-00000000c0de","udids":["QL-011"],"command":{"RequestType":"ProfileList"}}')' = 503 ] && grep -q retry_safe '$T/api'"
check "no sanitizer report" bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$T/mdmd.log'"
kill -TERM "$MDMD_PID"; wait "$MDMD_PID"
stop_redis

# --- the same on a real Redis Cluster (3 masters, 3 replicas), where a
# script's reply comes from a node's connection and every key must be in its
# script's slot ---
PORTS=(); BUS=()
for i in 0 1 2 3 4 5; do PORTS+=("$(free_port)"); BUS+=("$(free_port)"); done
for i in 0 1 2 3 4 5; do
    mkdir -p "$T/node$i"
    redis-server --port "${PORTS[$i]}" --cluster-port "${BUS[$i]}" --bind 127.0.0.1 \
        --cluster-enabled yes --cluster-config-file "$T/node$i/nodes.conf" --save "" \
        --cluster-node-timeout 1000 --repl-diskless-sync-delay 0 \
        --appendonly no --dir "$T/node$i" --daemonize no >"$T/node$i.log" 2>&1 &
    NODE_PID[$i]=$!; PIDS+=("$!")
done
for i in 0 1 2 3 4 5; do wait_for 5 redis-cli -p "${PORTS[$i]}" ping || fail "node $i starts"; done
addrs=(); for p in "${PORTS[@]}"; do addrs+=("127.0.0.1:$p"); done
check "a cluster of 3 masters, 3 replicas" bash -c "redis-cli --cluster create ${addrs[*]} --cluster-replicas 1 --cluster-yes >'$T/create.log' 2>&1"
cluster_ok() { for p in "${PORTS[@]}"; do redis-cli -p "$p" cluster info | grep -q 'cluster_state:ok' || return 1; done; }
check "cluster_state:ok" wait_for 20 cluster_ok
synced() {
    for p in "${PORTS[@]}"; do
        redis-cli -p "$p" role | head -n 1 | grep -q '^master$' || continue
        redis-cli -p "$p" info replication | grep -q 'slave0:.*state=online' || return 1
    done
}
check "every replica in sync" wait_for 20 synced
C() { redis-cli -c -p "${PORTS[0]}" "$@"; }
M=60
for i in $(seq 1 $M); do
    u=$(printf 'RC-%03d' "$i")
    printf 'HSET mdm:dev:{%s} udid %s state enrolled\nZADD %s %d %s\n' "$u" "$u" "$(bkey mdm:devices "$u")" "$i" "$u"
done >"$T/fleet.cmds"
# One redis-cli -c per line (it follows MOVED), all from one shell loop.
while read -r line; do C $line >/dev/null; done <"$T/fleet.cmds"
D=$T/c
write_conf "$D" "redis $(IFS=,; echo "${addrs[*]}")" "redis_wait_ms 500"
start_mdmd "$D" || fail "mdmd starts on the cluster"
ready || fail "mdmd is ready on the cluster"
RU=$(seq -f 'RC-%03g' 1 $M | sed 's/.*/"&"/' | paste -sd,)
K1=00000001-0000-4000-8000-00000000beef; K2=00000002-0000-4000-8000-00000000beef
check "cluster: enqueue of $M: 201, queued $M" bash -c "[ '$(api POST /v1/commands '{"command_uuid":"'$K1'","udids":['"$RU"'],"command":{"RequestType":"ProfileList"}}')' = 201 ] && grep -q '\"queued\":$M' '$T/api'"
on_masters() { # how many masters hold some device queue
    for p in "${PORTS[@]}"; do
        redis-cli -p "$p" role | head -n 1 | grep -q '^master$' &&
            redis-cli -p "$p" --scan --pattern 'mdm:q:*' | head -n 1
    done | grep -c .
}
check "  on every master" test "$(on_masters)" = 3
check "  again: queued 0" bash -c "[ '$(api POST /v1/commands '{"command_uuid":"'$K1'","udids":['"$RU"'],"command":{"RequestType":"ProfileList"}}')' = 201 ] && grep -q '\"queued\":0' '$T/api'"
check "  another body: 409" test "$(api POST /v1/commands '{"command_uuid":"'$K1'","udids":["RC-001"],"command":{"RequestType":"SecurityInfo"}}')" = 409
check "cluster: a filter job" test "$(api POST /v1/commands '{"filter":"all_enrolled","command_uuid":"'$K2'","command":{"RequestType":"SecurityInfo"}}')" = 202
J5=$(jget "$T/api" job_id)
check "  done, queued $M" bash -c "$(declare -f wait_for out_is api jget job_field); T='$T' D='$D' CA='$CA' PUB='$PUB'; wait_for 20 out_is done job_field $J5 state && [ \$(job_field $J5 queued) = $M ]"
check "cluster: pending carries both bodies" bash -c "[ '$(api GET /v1/devices/RC-005/commands/pending)' = 200 ] && grep -q '\"request_type\":\"ProfileList\"' '$T/api' && grep -q '\"request_type\":\"SecurityInfo\"' '$T/api'"
check "cluster: delete one" test "$(api DELETE "/v1/devices/RC-005/commands/$K2")" = 204
check "cluster: cancel everywhere" test "$(api DELETE "/v1/commands/$K1")" = 202
J6=$(jget "$T/api" job_id)
check "  cancels $M" bash -c "$(declare -f wait_for out_is api jget job_field); T='$T' D='$D' CA='$CA' PUB='$PUB'; wait_for 20 out_is done job_field $J6 state && [ \$(job_field $J6 canceled) = $M ]"
metric_depth() { curl -s --cacert "$CA" -H "Authorization: Bearer $(cat "$D/var/api.key")" "https://127.0.0.1:$PUB/metrics" | awk '$1 == "mdmd_queue_depth" { print $2 }'; }
check "cluster: /metrics queue depth over the buckets ($M - 1)" wait_for 5 out_is $((M - 1)) metric_depth
# The SHA1 of each of these scripts' cluster-layout text (store.c prepends the
# layout line): no error from Redis names one of them.
mine=$(for f in enqueue cmd_put job_step job_set job_start job_cmd job_live job_udids stats \
    queue_clear queue_delete queue_pending cancel_step fleet_apply; do
    { printf 'local MDM_CLUSTER = true\n'; cat "$TOP/store/lua/prelude.lua" "$TOP/store/lua/$f.lua"; } |
        sha1sum | cut -c1-40
done | paste -sd'|')
check "cluster: none of these scripts left its slot" bash -c "! grep -E 'non local key|CROSSSLOT' '$T/mdmd.log' | grep -qE '$mine'"
check "  (a script error names its SHA1)" bash -c "! grep -E 'non local key' '$T/mdmd.log' | grep -vq 'script: [0-9a-f]\{40\}'"

# WAIT on every master written: the replica of a master that does not hold
# the command's body, but holds some of the devices, is killed; an enqueue to
# every device must then not be answered 201 (those queues may not survive
# that master's failover), though the body's own master has its replica.
K3=00000003-0000-4000-8000-00000000beef
for i in 0 1 2 3 4 5; do
    p=${PORTS[$i]}
    redis-cli -p "$p" role | head -n 1 | grep -q '^master$' || continue
    if redis-cli -p "$p" get "mdm:cmd:$K3" | grep -q MOVED; then OTHER=$p; else BODY=$p; fi
done
for i in 0 1 2 3 4 5; do
    [ "$(redis-cli -p "${PORTS[$i]}" role | sed -n 3p)" = "${OTHER:-x}" ] && VICTIM=$i
done
check "a master without the body, and its replica" test -n "${BODY:-}${OTHER:-}${VICTIM:-}"
kill -9 "${NODE_PID[$VICTIM]}"; wait "${NODE_PID[$VICTIM]}" 2>/dev/null
check "cluster: enqueue to every device, one master's replica gone: 503, retry_safe" bash -c "[ '$(api POST /v1/commands '{"command_uuid":"'$K3'","udids":['"$RU"'],"command":{"RequestType":"ProfileList"}}')' = 503 ] && grep -q retry_safe '$T/api'"
check "  logged as enqueue_not_replicated" grep -q "event=enqueue_not_replicated uuid=$K3" "$T/mdmd.log"
check "no sanitizer report" bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$T/mdmd.log'"
finish

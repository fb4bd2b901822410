#!/usr/bin/env bash
# Redis Cluster on loopback (3 masters + 3 replicas of Debian's redis-server,
# made by redis-cli --cluster create) under store/'s router: the unit binary
# test_cluster's live part (keys spread over every master, a slot migrated
# under traffic: ASK then MOVED, kill -9 of a master during a wave of
# WAIT-acknowledged writes: none lost), then mdmd itself on the seed list.
. "$(dirname "$0")/lib.sh"

# --- redis_wait_replicas on a single Redis with one replica: an enqueue is
# answered 201 only once the replica has it; with the replica gone, 503 (safe
# to retry), never a 201 that a failover could lose. ---
start_redis || fail "redis starts"
RP=$(free_port); mkdir -p "$T/replica"
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --dir "$T/replica" \
    --replicaof 127.0.0.1 "$REDIS_PORT" --daemonize no >"$T/replica.log" 2>&1 &
REPLICA_PID=$!; PIDS+=("$REPLICA_PID")
check "the replica is in sync" \
    wait_for 10 bash -c "redis-cli -p $REDIS_PORT info replication | grep -q 'slave0:.*state=online'"
D=$T/w
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT" "redis_wait_replicas 1" "redis_wait_ms 300"
start_mdmd "$D" || fail "mdmd starts"
U=SIM-WAIT-1
check "enroll a device" enroll_device w1 $U
check "enqueue with the replica there: 201" \
    test "$(api POST /v1/commands '{"udids":["'$U'"],"command":{"RequestType":"ProfileList"}}')" = 201
check "the replica has the queue" test "$(redis-cli -p "$RP" llen "mdm:q:{$U}")" = 1
kill -9 "$REPLICA_PID"; wait "$REPLICA_PID" 2>/dev/null
check "replica gone: enqueue answers 503, retry_safe" bash -c \
    "[ \"\$(cd / && true)\" = '' ] && [ $(api POST /v1/commands '{"udids":["'$U'"],"command":{"RequestType":"CertificateList"}}') = 503 ] && grep -q '\"retry_safe\": *true' '$T/api'"
check "logged as enqueue_not_replicated" grep -q 'event=enqueue_not_replicated' "$T/mdmd.log"
kill -TERM "$MDMD_PID"; wait "$MDMD_PID" 2>/dev/null
stop_redis

PORTS=(); BUS=()
for i in 0 1 2 3 4 5; do PORTS+=("$(free_port)"); BUS+=("$(free_port)"); done
start_node() {
    local i=$1 d="$T/node$1"
    mkdir -p "$d"
    # cluster-node-timeout 1000: a failover within a few seconds, for the test's budget.
    redis-server --port "${PORTS[$i]}" --cluster-port "${BUS[$i]}" --bind 127.0.0.1 \
        --cluster-enabled yes --cluster-config-file "$d/nodes.conf" --cluster-node-timeout 1000 \
        --repl-diskless-sync-delay 0 --save "" --appendonly no --dir "$d" --daemonize no \
        >"$T/node$i.log" 2>&1 &
    PIDS+=("$!")
}
for i in 0 1 2 3 4 5; do start_node "$i"; done
for i in 0 1 2 3 4 5; do wait_for 5 redis-cli -p "${PORTS[$i]}" ping || fail "node $i starts"; done
addrs=(); for p in "${PORTS[@]}"; do addrs+=("127.0.0.1:$p"); done
check "redis-cli --cluster create (3 masters, 3 replicas)" \
    bash -c "redis-cli --cluster create ${addrs[*]} --cluster-replicas 1 --cluster-yes >'$T/create.log' 2>&1"
cluster_ok() {
    for p in "${PORTS[@]}"; do
        redis-cli -p "$p" cluster info | grep -q 'cluster_state:ok' || return 1
    done
}
check "cluster_state:ok on every node" wait_for 20 cluster_ok
masters() {
    for p in "${PORTS[@]}"; do
        redis-cli -p "$p" role | head -n 1 | grep -q '^master$' && printf '%s ' "$p"
    done
}
MASTERS=$(masters)
check "three masters" test "$(echo $MASTERS | wc -w)" = 3
SEEDS=$(IFS=,; echo "${addrs[*]}")
replicas_synced() {
    for p in $MASTERS; do
        redis-cli -p "$p" info replication | grep -q 'slave0:.*state=online' || return 1
    done
}
check "every master has its replica in sync" wait_for 20 replicas_synced

# mdmd first, while every master is there: it takes the seed list and finds the cluster.
D=$T/a
write_conf "$D" "redis $SEEDS"
start_mdmd "$D" || fail "mdmd starts on the seed list"
check "mdmd found the cluster (event=redis_cluster)" \
    wait_for 10 grep -q 'event=redis_cluster .*slots=16384' "$T/mdmd.log"
check "mdmd connected to all three masters" \
    wait_for 10 bash -c "[ \$(grep -c 'event=redis_connected' '$T/mdmd.log') -ge 4 ]"
metric() {
    curl -s --max-time 10 --cacert "$CA" -H "Authorization: Bearer $(cat "$D/var/api.key")" \
        "https://127.0.0.1:$PUB/metrics" | awk -v k="$1" '$1 == k { print $2 }'
}
check "/metrics: mdmd_redis_up 1" wait_for 10 out_is 1 metric mdmd_redis_up
check "/metrics: three masters, all connected" \
    test "$(metric mdmd_redis_cluster_masters) $(metric mdmd_redis_cluster_masters_up)" = "3 3"
kill -TERM "$MDMD_PID"; wait "$MDMD_PID" 2>/dev/null
check "mdmd on the cluster: no sanitizer report" \
    bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$T/mdmd.log'"

# test_cluster kills the first master with kill -9 during its wave; once a
# replica took over its slots, the killed node comes back (it rejoins as the
# new master's replica), so that writes to that shard can be acknowledged again.
VICTIM=${MASTERS%% *}
revive() {
    local i
    for i in 0 1 2 3 4 5; do [ "${PORTS[$i]}" = "$VICTIM" ] && break; done
    wait_for 60 bash -c "! redis-cli -p $VICTIM ping" || return
    # Not before its replica was promoted: without persistence it would come back
    # as an empty master, and its replica would copy that (Redis' own warning).
    promoted() {
        local n=0 p
        for p in "${PORTS[@]}"; do
            [ "$p" = "$VICTIM" ] && continue
            redis-cli -p "$p" role 2>/dev/null | head -n 1 | grep -q '^master$' && n=$((n + 1))
        done
        [ "$n" = 3 ] && redis-cli -p "${PORTS[$(( (i + 1) % 6 ))]}" cluster info | grep -q cluster_state:ok
    }
    wait_for 30 promoted || { echo "no failover"; return; }
    start_node "$i"
    echo "revived 127.0.0.1:$VICTIM"
}
revive >"$T/revive.log" 2>&1 &
REVIVER=$!
CLUSTER_SEEDS=$SEEDS CLUSTER_MASTERS=$MASTERS "$BIN/test_cluster" >"$T/live.log" 2>&1
rc=$?
wait "$REVIVER"
# The revived node's pid is not in PIDS (it was started in a subshell): by its port.
REVIVED=$(redis-cli -p "$VICTIM" info server 2>/dev/null | sed -n 's/^process_id:\([0-9]*\).*/\1/p')
[ -n "$REVIVED" ] && PIDS+=("$REVIVED")
sed 's/^/    /' "$T/live.log"
for t in t_live_spread t_live_migrate t_live_failover; do
    check "$t" grep -q "^ok   $t" "$T/live.log"
done
check "test_cluster exits 0" test "$rc" = 0

# --- mdmd on the cluster (the cluster key layout, docs/REDIS.md) ---
whole() { # (masters' status is its last port's: not a test)
    cluster_ok || return 1
    MASTERS=$(masters)
    [ "$(echo $MASTERS | wc -w)" = 3 ] && replicas_synced
}
if wait_for 60 whole; then ok "the cluster is whole again (3 masters, each with its replica)"; else
    fail "the cluster is whole again (3 masters, each with its replica)"
    for p in "${PORTS[@]}"; do
        echo "    $p: $(redis-cli -p "$p" role | head -n 1) $(redis-cli -p "$p" cluster info | grep cluster_state | tr -d '\r') $(redis-cli -p "$p" info replication | grep -E '^slave0|master_link_status' | tr -d '\r')"
    done
fi
MASTERS=$(masters)
# The enrollment and device-protocol suites, as they run on a single Redis
# (their own checks read Redis through redis-cli -c and the layout's names).
# checkin.sh, scep.sh and users.sh pass there too (CLUSTER_SUITES="enroll
# checkin scep users protocol"); the default keeps make test's budget.
for suite in ${CLUSTER_SUITES:-enroll protocol}; do
    CLUSTER_SEEDS=$SEEDS bash "$TOP/test/integration/$suite.sh" >"$T/suite-$suite.log" 2>&1
    src=$?
    grep -E '^FAIL|passed,' "$T/suite-$suite.log" | sed "s/^/    $suite: /"
    check "$suite.sh passes on the cluster" test "$src" = 0
done

# A master killed with kill -9 during a wave of commands to 1,000 devices:
# every command answered 201 is finished or still queued afterwards (zero
# lost); a report lost with the master's unreplicated writes makes its
# command be sent again (at least once): those are counted, not failed.
D=$T/wave
write_conf "$D" "redis $SEEDS" "redis_wait_ms 2000" "redis_timeout_ms 2000"
start_mdmd "$D" || fail "mdmd starts for the wave"
N=${WAVE_DEVICES:-1000}; K=${WAVE_COMMANDS:-8}
SIM=("$BIN/mdmsim" --url "https://127.0.0.1:$MDM/mdm" --ca "$CA" --ca-key "$D/var/ca/ca.key"
     --udid-prefix WAVE --identities "$T/wave.pem" -q -n "$N" -c 32)
check "$N devices enroll through mdmd on the cluster" \
    bash -c "$(printf '%q ' "${SIM[@]}") >'$T/wave-enroll.log' 2>&1"
UDIDS=$(for ((i = 0; i < N; i++)); do printf '"WAVE-%06d",' "$i"; done); UDIDS="[${UDIDS%,}]"
# Enqueue K commands to every device, each retried while it answers 503
# (retry_safe: the same command_uuid queues once); the UUIDs answered 201 are kept.
enqueue_wave() {
    local k c t
    for ((k = 0; k < K; k++)); do
        t=$(( $(date +%s) + 60 ))
        while :; do
            c=$(api POST /v1/commands '{"udids":'"$UDIDS"',"command_uuid":"wave-'$k'","command":{"RequestType":"DeviceInformation","Queries":["DeviceName"]}}')
            [ "$c" = 201 ] && { echo "wave-$k" >>"$T/wave.acked"; break; }
            echo "wave-$k $c" >>"$T/wave.retries"
            [ "$(date +%s)" -ge "$t" ] && break
            sleep 0.2
        done
        [ "$k" = $((K / 3)) ] && touch "$T/wave.kill"
    done
}
: >"$T/wave.acked"
"${SIM[@]}" --skip-enroll --duration 600 --interval 1 --ledger "$T/wave.ledger" >"$T/wave-sim.log" 2>&1 &
SIMPID=$!; PIDS+=("$SIMPID")
enqueue_wave &
ENQ=$!
wait_for 120 test -e "$T/wave.kill"
VICTIM=${MASTERS%% *}
kill -9 "$(redis-cli -p "$VICTIM" info server | sed -n 's/^process_id:\([0-9]*\).*/\1/p' | tr -d '\r')"
echo "    killed the master on port $VICTIM during the wave"
revive >"$T/revive2.log" 2>&1 &
REVIVER=$!
wait "$ENQ"
wait "$REVIVER"
REVIVED=$(redis-cli -p "$VICTIM" info server 2>/dev/null | sed -n 's/^process_id:\([0-9]*\).*/\1/p' | tr -d '\r')
[ -n "$REVIVED" ] && PIDS+=("$REVIVED")
check "every enqueue of the wave was answered 201 in the end" test "$(wc -l <"$T/wave.acked")" = "$K"
# Done when every queue is empty (the devices keep polling), or 120 s.
queued() {
    for ((i = 0; i < N; i++)); do printf 'LLEN mdm:q:{WAVE-%06d}\n' "$i"; done |
        redis-cli -c -p "$REDIS_PORT" 2>/dev/null | awk '{s += $1} END {print s + 0}'
}
REDIS_PORT=${SEEDS%%,*}; REDIS_PORT=${REDIS_PORT##*:}
wait_for 120 out_is 0 queued
kill -TERM "$SIMPID"; wait "$SIMPID" 2>/dev/null
# What is still queued, "UDID UUID" a line; then per command answered 201:
# lost = devices that neither reported it nor still have it queued.
for ((i = 0; i < N; i++)); do printf 'ECHO WAVE-%06d\nLRANGE mdm:q:{WAVE-%06d} 0 -1\n' "$i" "$i"; done |
    redis-cli -c -p "$REDIS_PORT" 2>/dev/null >"$T/wave.q"
# What each device's history holds (finished: its result is stored), the same way.
for ((i = 0; i < N; i++)); do printf 'ECHO WAVE-%06d\nXRANGE mdm:res:{WAVE-%06d} - +\n' "$i" "$i"; done |
    redis-cli -c -p "$REDIS_PORT" 2>/dev/null | grep -aE '^(WAVE|wave)-' >"$T/wave.h"
read -r lost twice unstored < <(python3 - "$T/wave.acked" "$T/wave.ledger" "$T/wave.q" "$N" "$T/wave.h" <<'PY'
import collections, sys
acked = open(sys.argv[1]).read().split()
seen = collections.Counter()
for line in open(sys.argv[2]):
    f = line.split()
    if len(f) >= 2:
        seen[(f[0], f[1])] += 1
def pairs(path):  # each device's ECHO, then what it holds
    out, dev = set(), None
    for line in open(path):
        w = line.strip()
        if w.startswith('WAVE-'):
            dev = w
        elif w and dev:
            out.add((dev, w))
    return out
queued, stored = pairs(sys.argv[3]), pairs(sys.argv[5])
n = int(sys.argv[4])
lost = twice = unstored = 0
for uuid in acked:
    for i in range(n):
        u = 'WAVE-%06d' % i
        if seen[(u, uuid)] > 1:
            twice += 1
        # Finished is a stored result (a report whose answer was lost is
        # stored, though the device did not hear so); else still queued.
        if (u, uuid) not in stored and (u, uuid) not in queued:
            lost += 1
            if lost <= 10:
                print(u, uuid, file=open(sys.argv[1] + '.lost', 'a'))
        if seen[(u, uuid)] and (u, uuid) not in stored:
            unstored += 1
print(lost, twice, unstored)
PY
)
still=$(grep -c '^wave-' "$T/wave.q")
echo "    wave: $N devices x $K commands, $(wc -l <"$T/wave.ledger") reports accepted, $(grep -c '^wave-' "$T/wave.h") results stored, still queued=$still lost=$lost sent_twice=$twice accepted_not_stored=$unstored enqueue_retries=$(cat "$T/wave.retries" 2>/dev/null | wc -l)"
# What Redis says of the first lost ones: history entries, the device's
# record of being given it, its "sent" mark.
while read -r u id; do
    echo "    lost $u $id: history=$(redis-cli -c -p "$REDIS_PORT" xrange "mdm:res:{$u}" - + | grep -cx "$id") given=$(redis-cli -c -p "$REDIS_PORT" zscore "mdm:cmdto:{$u}" "$id") sent=$(redis-cli -c -p "$REDIS_PORT" hget "mdm:sent:{$u}" "$id") ledger_lines=$(grep -c "^$u " "$T/wave.ledger")"
done < <(cat "$T/wave.acked.lost" 2>/dev/null)
check "the wave lost no command answered 201 (its result stored, or still queued)" test "$lost" = 0
check "  every report the devices were told was accepted is stored" test "$unstored" = 0
check "mdmd logged the failover (redis_cluster refresh)" grep -q 'event=redis_cluster' "$T/mdmd.log"
kill -TERM "$MDMD_PID"; wait "$MDMD_PID" 2>/dev/null
finish

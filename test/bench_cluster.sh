#!/usr/bin/env bash
# make bench (after bench.sh): the Redis half of a device request through
# store/'s router, on one Redis and on a 3-master Redis Cluster (3 masters + 3
# replicas, as test/integration/cluster.sh makes it), with the CPU split
# between the client (mdmd's store code: test_cluster's CLUSTER_BENCH mode)
# and every redis-server, per request.  OPS requests, 64 in flight.
#
# Then mdmd itself on that cluster (the cluster key layout): bench_workers.sh's
# rows (idle polls/s and commands/s, workers 1 and 2, CPU per request of mdmd,
# of every redis-server and of the client), beside its rows on one Redis.
set -u
BIN=${BIN:-bin}
OPS=${OPS:-200000}
TOP=$(cd "$(dirname "$0")/.." && pwd)
case "$BIN" in /*) ;; *) BIN="$TOP/$BIN" ;; esac
T=$(mktemp -d /tmp/mdmd-benchc.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT

wait_for() {
    local limit=$(( $(date +%s) + $1 )); shift
    until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -ge $limit ] && return 1; sleep 0.05; done
}
# CPU seconds (user + system) of the given pids, from /proc.
cpu_of() {
    local hz=$(getconf CLK_TCK) sum=0 p
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] || continue
        sum=$((sum + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo "$sum $hz" | awk '{printf "%.3f", $1 / $2}'
}
run() { # label seeds pids...
    local label=$1 seeds=$2; shift 2
    local c0; c0=$(cpu_of "$@")
    local out; out=$(CLUSTER_SEEDS=$seeds CLUSTER_BENCH=$OPS "$BIN/test_cluster" 2>/dev/null)
    local c1; c1=$(cpu_of "$@")
    local ops; ops=$(echo "$out" | sed -n 's/.*ops=\([0-9]*\) .*/\1/p')
    echo "$label: $out redis_cpu_us_per_op=$(echo "$c0 $c1 $ops" | awk '{printf "%.1f", ($2 - $1) * 1e6 / ($3 ? $3 : 1)}')"
}

echo "== one Redis"
P=$("$BIN/freeport"); mkdir -p "$T/single"
redis-server --port "$P" --bind 127.0.0.1 --save '' --appendonly no --dir "$T/single" \
    --daemonize no >"$T/single.log" 2>&1 &
SINGLE=$!; PIDS+=("$SINGLE")
wait_for 5 redis-cli -p "$P" ping || { echo "redis did not start"; exit 1; }
run "single" "127.0.0.1:$P" "$SINGLE"
kill -9 "$SINGLE"; wait "$SINGLE" 2>/dev/null

echo "== Redis Cluster, 3 masters + 3 replicas"
PORTS=(); NODE_PIDS=()
for i in 0 1 2 3 4 5; do
    p=$("$BIN/freeport"); b=$("$BIN/freeport"); PORTS+=("$p"); mkdir -p "$T/n$i"
    redis-server --port "$p" --cluster-port "$b" --bind 127.0.0.1 --cluster-enabled yes \
        --cluster-config-file "$T/n$i/nodes.conf" --save '' --appendonly no --dir "$T/n$i" \
        --daemonize no >"$T/n$i.log" 2>&1 &
    NODE_PIDS+=("$!"); PIDS+=("$!")
done
for p in "${PORTS[@]}"; do wait_for 5 redis-cli -p "$p" ping || { echo "node $p"; exit 1; }; done
addrs=(); for p in "${PORTS[@]}"; do addrs+=("127.0.0.1:$p"); done
redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$T/create.log" 2>&1
wait_for 20 bash -c "redis-cli -p ${PORTS[0]} cluster info | grep -q cluster_state:ok" ||
    { echo "cluster not ok"; exit 1; }
# Every master's replica in sync: mdmd's enqueue WAITs for one (redis_wait_replicas).
# (and in the seed's CLUSTER SLOTS: the table mdmd reads names them).
synced() {
    local p
    for p in "${PORTS[@]}"; do
        redis-cli -p "$p" role | head -n 1 | grep -q '^master$' || continue
        redis-cli -p "$p" info replication | grep -q 'slave0:.*state=online' || return 1
    done
    # Redis 7 leaves out of CLUSTER SLOTS a replica that has replicated
    # nothing yet (offset 0): a write per master moves it.
    for p in "${PORTS[@]}"; do redis-cli -c -p "$p" set "bench:sync:$p" 1 >/dev/null; done
    [ "$(redis-cli -p "${PORTS[0]}" cluster slots | grep -c '^127\.0\.0\.1$')" = 6 ]
}
wait_for 30 synced || { echo "replicas not in sync"; exit 1; }
run "cluster" "$(IFS=,; echo "${addrs[*]}")" "${NODE_PIDS[@]}"
echo "(redis_cpu is every redis-server, replicas included; on paper, M masters on M cores serve"
echo " about M times the single-Redis rate, as long as the client side has the cores to send it)"
echo "== mdmd on the cluster (redis_layout auto: the cluster layout)"
REDIS_SEEDS=$(IFS=,; echo "${addrs[*]}") REDIS_PIDS="${NODE_PIDS[*]}" \
    REDIS_LABEL="Redis Cluster 3 masters + 3 replicas (cluster layout)" BIN=$BIN bash "$TOP/test/bench_workers.sh"

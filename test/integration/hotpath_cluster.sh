#!/usr/bin/env bash
# hotpath_cluster.sh: the device hot path on a real Redis Cluster (3 masters
# on loopback, no replicas: cluster.sh does failover): Authenticate,
# TokenUpdate, a command sent (its body by HMGET from another slot) and
# acknowledged, the fleet writes applied to the device's bucket and the
# outbox emptied, CheckOut; no device
# request fails on a script that leaves its slot.  About 8 s.
. "$(dirname "$0")/lib.sh"
PORTS=(); BUS=()
for i in 0 1 2; do PORTS+=("$(free_port)"); BUS+=("$(free_port)"); done
for i in 0 1 2; do
    d="$T/node$i"; mkdir -p "$d"
    redis-server --port "${PORTS[$i]}" --cluster-port "${BUS[$i]}" --bind 127.0.0.1 \
        --cluster-enabled yes --cluster-config-file "$d/nodes.conf" --cluster-node-timeout 1000 \
        --save "" --appendonly no --dir "$d" --daemonize no >"$T/node$i.log" 2>&1 &
    PIDS+=("$!")
done
for i in 0 1 2; do wait_for 5 redis-cli -p "${PORTS[$i]}" ping; done
addrs=(); for p in "${PORTS[@]}"; do addrs+=("127.0.0.1:$p"); done
redis-cli --cluster create ${addrs[*]} --cluster-replicas 0 --cluster-yes >"$T/create.log" 2>&1
ok_all() { for p in "${PORTS[@]}"; do redis-cli -p "$p" cluster info | grep -q 'cluster_state:ok' || return 1; done; }
check "cluster ok" wait_for 20 ok_all
SEEDS=$(IFS=,; echo "${addrs[*]}")
export CLUSTER_SEEDS=$SEEDS
REDIS_PORT=${PORTS[0]}
R() { redis-cli -c -p "${PORTS[0]}" "$@"; }
D=$T/m
write_conf "$D" "redis $SEEDS"
start_mdmd "$D" || fail "mdmd starts"
for u in RC-1 RC-2 RC-3; do check "enroll $u" enroll_device "${u,,}" "$u"; done
U=RC-1
poll rc-1 $U Idle; check "Idle: 200 nothing" test "$CODE:$NEXT" = "200:"
R hset mdm:cmd:RCU-1 plist '<?xml version="1.0"?><plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>ProfileList</string></dict><key>CommandUUID</key><string>RCU-1</string></dict></plist>' request_type ProfileList >/dev/null
R rpush "mdm:q:{$U}" RCU-1 >/dev/null
R publish mdm:poke $U >/dev/null # what enqueue.lua says (docs/REDIS.md, "Idle polls")
poll rc-1 $U Idle; check "the command is sent (body by HMGET)" test "$CODE:$NEXT" = "200:RCU-1"
poll rc-1 $U Acknowledged RCU-1; check "acknowledged, nothing more" test "$CODE:$NEXT" = "200:"
check "history has it" bash -c "redis-cli -c -p ${PORTS[0]} xrange 'mdm:res:{$U}' - + | grep -qx ProfileList"
check "command_finished in the bucket" wait_for 5 bash -c "redis-cli -c -p ${PORTS[0]} xrange '$(bkey mdm:events $U)' - + | grep -qx command_finished"
check "outbox drained" wait_for 5 bash -c "[ \$(redis-cli -c -p ${PORTS[0]} hlen 'mdm:fx:{$U}') = 1 ]"
check "devices in buckets" test -n "$(R zscore "$(bkey mdm:devices RC-2)" RC-2)"
sim_checkout() { plist_msg "$T/co.plist" MessageType CheckOut UDID RC-3 Topic com.apple.mgmt.test; mdm_put /mdm/checkin rc-3 "$T/co.plist" application/x-apple-aspen-mdm-checkin; }
check "CheckOut: 200" test "$(sim_checkout)" = 200
check "no device request failed" bash -c "! grep -E 'event=device_request_failed' '$T/mdmd.log'"
check "RC-3 checked out, out of the OS count" \
    test "$(R hget 'mdm:dev:{RC-3}' state):$(R hget 'mdm:dev:{RC-3}' os_counted)" = "checked_out:"
kill -TERM "$MDMD_PID"; wait "$MDMD_PID" 2>/dev/null
finish

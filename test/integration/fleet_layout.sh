#!/usr/bin/env bash
# fleet_layout.sh: the webhooks in the cluster key layout on one Redis
# (docs/REDIS.md, "Redis Cluster"): hooktls.sh again with
# REDIS_LAYOUT=cluster, so that make test runs a consumer group per bucket
# stream of mdm:events, the dead letters in {g} and the ack split from the
# park on every run.  fleet.sh (webhooks, re-push) and ddm.sh (the
# DeclarativeManagement walk) pass in it too (ddm.sh is too slow to repeat here):
#   REDIS_LAYOUT=cluster BIN=build-san/bin bash test/integration/<suite>.sh
cd "$(dirname "$0")" || exit 2
p=0; f=0
for s in hooktls; do
    out=$(REDIS_LAYOUT=cluster bash "$s.sh" 2>&1); rc=$?
    printf '%s\n' "$out" | grep -E '^(ok|FAIL) ' | sed "s/^\(ok\|FAIL\) /\1 $s: /"
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    [ -n "$line" ] || { echo "FAIL $s: no result line (exit $rc)"; f=$((f + 1)); continue; }
    p=$((p + ${line%% passed*})); n=${line#*passed, }; n=${n%% failed*}
    [ "$rc" != 0 ] && [ "$n" = 0 ] && n=1
    f=$((f + n))
done
echo "$p passed, $f failed"
[ "$f" = 0 ]

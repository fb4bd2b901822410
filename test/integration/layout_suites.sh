#!/usr/bin/env bash
# layout_suites.sh: suites of the single layout again in the cluster key
# layout on one Redis (REDIS_LAYOUT=cluster, docs/REDIS.md, "Redis Cluster"),
# so that make test runs the layout's paths on every run:
#   protocol, checkin: the fleet writes (fx: outbox, fleet_apply.lua), the
#     command bodies' cache, the registry split of Authenticate and CheckOut;
#   scep, push: the calls in turn of scep_issue/scep_renew (the transaction
#     in {g}, scep_old.lua's gate, scep_rebind.lua), the bucketed re-push;
#   hooktls: a webhook consumer group per bucket stream of mdm:events, the
#     dead letters in {g}, the ack split from the park.
# OTA enrollment and provisioning run on a real cluster in cluster.sh; users,
# enroll, partial, fleet and ddm pass in the layout too (too slow to repeat):
#   REDIS_LAYOUT=cluster BIN=build-san/bin bash test/integration/<suite>.sh
cd "$(dirname "$0")" || exit 2
p=0; f=0
for s in protocol checkin scep push hooktls; do
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

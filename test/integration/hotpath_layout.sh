#!/usr/bin/env bash
# hotpath_layout.sh: the device hot path in the cluster key layout on one
# Redis (docs/REDIS.md, "Redis Cluster"): protocol.sh and checkin.sh again
# with REDIS_LAYOUT=cluster (a few seconds), so that make test runs the
# layout's fleet writes (fx: outbox, fleet_apply.lua), the command bodies'
# cache and the registry split of Authenticate and CheckOut on every run.
# enroll.sh, scep.sh, partial.sh, push.sh and users.sh pass in it too:
#   REDIS_LAYOUT=cluster BIN=build-san/bin bash test/integration/<suite>.sh
cd "$(dirname "$0")" || exit 2
p=0; f=0
for s in protocol checkin; do
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

#!/usr/bin/env bash
# enroll_layout.sh: SCEP enrollment and renewal and the push paths in the
# cluster key layout on one Redis (docs/REDIS.md, "Redis Cluster",
# Enrollment): scep.sh and push.sh again with REDIS_LAYOUT=cluster (about
# 25 s), so that make test runs the calls in turn of scep_issue/scep_renew
# (the transaction in {g}, scep_old.lua's gate, scep_rebind.lua) and the
# bucketed re-push schedule on every run.  OTA enrollment and provisioning
# run on a real cluster in cluster.sh (enroll.sh there); users.sh passes in
# the layout too:
#   REDIS_LAYOUT=cluster BIN=build-san/bin bash test/integration/users.sh
cd "$(dirname "$0")" || exit 2
p=0; f=0
for s in scep push; do
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

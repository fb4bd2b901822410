#!/usr/bin/env bash
# Part of make bench: a changed declaration reaching DDM_DEVICES (10,000)
# simulated devices.  Runs test/integration/ddm.sh at that size (make test
# runs it with 200): each change is PUT over REST, the walk queues
# DeclarativeManagement and pushes through the mock APNs, every mdmsim device
# (waiting for pushes, as phones do) polls, syncs (tokens, items, the changed
# declaration) and reports; "converged" is when every device's stored status
# names the new server token.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
export DDM_DEVICES=${DDM_DEVICES:-10000}
export DDM_CONC=${DDM_CONC:-256} # devices active at once in mdmsim
echo "== declarative management: a changed declaration reaching $DDM_DEVICES devices"
BIN=${BIN:-bin} bash "$TOP/test/integration/ddm.sh" >"${TMPDIR:-/tmp}/bench_ddm.$$" 2>&1
rc=$?
grep -E '^change [0-9]:|passed,' "${TMPDIR:-/tmp}/bench_ddm.$$"
grep '^FAIL' "${TMPDIR:-/tmp}/bench_ddm.$$"
rm -f "${TMPDIR:-/tmp}/bench_ddm.$$"
exit $rc

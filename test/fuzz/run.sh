#!/bin/sh
# Runs every fuzz target for FUZZ_SECONDS (default 5) on a scratch copy of its
# seed corpus (test/fuzz/corpus/<name>), after replaying the committed
# regression inputs (test/fuzz/regress/<name>, one file per crash fixed).
# One line per target, then "N passed, N failed".  A crash keeps its input.
top=$(cd "$(dirname "$0")/../.." && pwd)
secs=${FUZZ_SECONDS:-5}
passed=0; failed=0
for f in "$top"/build-fuzz/bin/fuzz_*; do
    [ -x "$f" ] || continue
    name=${f##*/fuzz_}
    work=$(mktemp -d /tmp/mdmd-fuzz.XXXXXX)
    mkdir -p "$work/corpus"
    cp "$top/test/fuzz/corpus/$name/"* "$work/corpus/" 2>/dev/null
    ok=1
    if [ -d "$top/test/fuzz/regress/$name" ]; then
        "$f" -runs=1 "$top/test/fuzz/regress/$name"/* >"$work/regress.log" 2>&1 || ok=0
    fi
    if [ $ok = 1 ]; then
        (cd "$work" && "$f" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=1048576 \
            -artifact_prefix="$work/" corpus >"$work/fuzz.log" 2>&1) || ok=0
    fi
    if [ $ok = 1 ]; then
        passed=$((passed + 1))
        cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$work/fuzz.log" | tail -n 1)
        echo "ok   fuzz_$name: $(grep -oE 'stat::number_of_executed_units: [0-9]+|^#[0-9]+' "$work/fuzz.log" | tail -n 1 | grep -oE '[0-9]+$') runs in ${secs}s, ${cov:-cov: ?}"
        rm -rf "$work"
    else
        failed=$((failed + 1))
        echo "FAIL fuzz_$name: see $work"
        grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$work"/*.log | head -n 10
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]

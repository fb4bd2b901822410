#!/bin/sh
# Runs every unit test binary and every integration script, adds up their
# "N passed, N failed" lines, and ends with the total.  BIN names the build.
BIN=${BIN:-bin}
export BIN
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 2
passed=0; failed=0
tally() {   # $1 = name, $2 = log file, $3 = exit status; $secs: how long it took
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$2" | tail -n 1)
    if [ -z "$line" ]; then
        echo "FAIL $1: no result line (exit $3)"; sed 's/^/    /' "$2" | tail -n 40
        failed=$((failed + 1)); return
    fi
    p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
    if [ "$3" != 0 ] && [ "$f" = 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$f" != 0 ]; then
        echo "FAIL $1: $line (${secs}s)"
        grep '^FAIL ' "$2" | sed 's/^/    /'
        grep -v '^ok \|^FAIL ' "$2" | sed 's/^/    /' | tail -n 40
    else
        echo "ok   $1: $line (${secs}s)"
    fi
}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for t in "$BIN"/test_*; do
    [ -x "$t" ] || continue
    n=$(basename "$t")
    t0=$(date +%s); "$t" >"$tmp/$n.log" 2>&1; rc=$?; secs=$(($(date +%s) - t0))
    tally "$n" "$tmp/$n.log" $rc
done
for t in test/integration/*.sh; do
    [ -f "$t" ] || continue
    n=$(basename "$t" .sh)
    [ "$n" = lib ] && continue
    # A hung suite fails and the run goes on (openapi.sh once waited forever
    # on the SSE stream, and CI's limit ended the whole run with no result).
    t0=$(date +%s); timeout -k 10 "${SUITE_TIMEOUT_S:-300}" bash "$t" >"$tmp/$n.log" 2>&1; rc=$?
    secs=$(($(date +%s) - t0))
    [ $rc = 124 ] && echo "FAIL $n: timed out after ${SUITE_TIMEOUT_S:-300} s" >>"$tmp/$n.log"
    tally "$n" "$tmp/$n.log" $rc
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]

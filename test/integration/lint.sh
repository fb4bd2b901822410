#!/usr/bin/env bash
# make lint's checks (test/lint.py: clang-format, own header first, no
# unused project include, no include cycle between modules) as a suite.
. "$(dirname "$0")/lib.sh"
cd "$TOP" || exit 2
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    echo "skip: not a git checkout (the checks list the files git tracks)"
    finish
fi
python3 test/lint.py >"$T/lint.out" 2>&1
while IFS= read -r line; do
    case $line in
        ok\ *) ok "${line#ok }" ;;
        FAIL\ *) fail "${line#FAIL }" ;;
        *) echo "$line" ;;
    esac
done <"$T/lint.out"
finish

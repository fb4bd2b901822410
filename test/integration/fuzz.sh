#!/usr/bin/env bash
# make test runs every libFuzzer target briefly (make fuzz runs them longer).
top=$(cd "$(dirname "$0")/../.." && pwd)
FUZZ_SECONDS=${FUZZ_SECONDS:-5} sh "$top/test/fuzz/run.sh"

#!/usr/bin/env bash
# Store callbacks are typed (issue 13): a callback of the wrong type given to
# a store call, or put in the wrong member of union store_cb, does not compile.
. "$(dirname "$0")/lib.sh"
CC=${CC:-cc}
FLAGS=(-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fsyntax-only -I/usr/include/hiredis)
SRC=$TOP/test/compile/store_cb.c
check "the right callback types compile" "$CC" "${FLAGS[@]}" "$SRC"
"$CC" "${FLAGS[@]}" -DWRONG "$SRC" >"$T/wrong.log" 2>&1; rc=$?
check "a mismatched callback does not compile" test "$rc" != 0
check "both mismatches are reported" test "$(grep -c 'incompatible pointer type\|incompatible-pointer-types' "$T/wrong.log")" -ge 2
check "no cast through a generic function pointer is left in store/" \
    bash -c "! grep -rnE 'store_any_fn|\(void \(\*\)\(void\)\)' '$TOP/store'"
finish

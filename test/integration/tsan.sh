#!/usr/bin/env bash
# Code the loop and the crypto worker share, under ThreadSanitizer: the shape
# limits SIGHUP sets while the worker parses (test/tsan/limits_race.c).
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 2
passed=0; failed=0
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
pkgs="libplist-2.0 jansson libevent openssl"
if ! gcc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter -fsanitize=thread -g -O1 $(pkg-config --cflags $pkgs) -o "$out/limits_race" \
        test/tsan/limits_race.c handlers/apple/apple_plist.c handlers/apple/apple_xml.c \
        handlers/apple/mdm_schema.c core/shape.c \
        core/util.c $(pkg-config --libs $pkgs) -lpthread 2>"$out/cc.log"; then
    echo "FAIL tsan: limits_race does not build"; cat "$out/cc.log"; failed=$((failed + 1))
elif TSAN_OPTIONS=halt_on_error=1:exitcode=66 "$out/limits_race" >"$out/run.log" 2>&1; then
    echo "ok   tsan: apple_plist_set_limits during apple_plist_parse/apple_plist_json_load on another thread: no data race"
    passed=$((passed + 1))
else
    echo "FAIL tsan: apple_plist_set_limits races with the worker's parse"; grep -E 'WARNING|SUMMARY|#[0-3] ' "$out/run.log" | head -n 12
    failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]

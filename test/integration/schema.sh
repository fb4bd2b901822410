#!/usr/bin/env bash
# The command and check-in tables compiled into mdmd must match Apple's schema in
# ../shared (skipped, and said so, when ../shared is absent).
. "$(dirname "$0")/lib.sh"
S=$TOP/../shared/apple-device-management/mdm/commands
if [ ! -d "$S" ]; then
    echo "skip: $S is absent"
    finish
fi
sh "$TOP/test/gen_schema.sh" "$S" >"$T/mdm_schema.c"
check "handlers/apple/mdm_schema.c is what test/gen_schema.sh derives from the schema" \
    diff -u "$TOP/handlers/apple/mdm_schema.c" "$T/mdm_schema.c"
n=$(ls "$S"/*.yaml | wc -l)
m=$(grep -c '^    {"[A-Za-z]*", mdm_keys_' "$TOP/handlers/apple/mdm_schema.c")
check "one table entry per command file ($n)" test "$n" = "$m"
C=$TOP/../shared/apple-device-management/mdm/checkin
sh "$TOP/test/gen_checkin_schema.sh" "$C" >"$T/mdm_checkin_schema.c"
check "handlers/apple/mdm_checkin_schema.c is what test/gen_checkin_schema.sh derives" \
    diff -u "$TOP/handlers/apple/mdm_checkin_schema.c" "$T/mdm_checkin_schema.c"
n=$(ls "$C"/*.yaml | wc -l)
m=$(grep -c '^    {"[A-Za-z]*", mdm_checkin_keys_' "$TOP/handlers/apple/mdm_checkin_schema.c")
check "one table entry per check-in message file ($n)" test "$n" = "$m"
finish

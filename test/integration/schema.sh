#!/usr/bin/env bash
# The command, check-in and declaration tables compiled into mdmd must match
# Apple's schema in ../shared (skipped, and said so, when ../shared is absent).
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

# Declarative management: declaration types and status items (test/gen_ddm_schema.py).
DS=$TOP/../shared/apple-device-management/declarative
if ! python3 -c 'import yaml' 2>/dev/null; then
    echo "skip: python3-yaml is not installed (apt-get install python3-yaml)"
    finish
fi
python3 "$TOP/test/gen_ddm_schema.py" "$DS" >"$T/ddm_schema.c"
check "handlers/apple/ddm_schema.c is what test/gen_ddm_schema.py derives from the schema" \
    diff -u "$TOP/handlers/apple/ddm_schema.c" "$T/ddm_schema.c"
n=$(grep -l "^  declarationtype:" $(find "$DS/declarations" -mindepth 2 -name "*.yaml") | wc -l)
m=$(grep -c '^    {"com\.apple\.[a-z0-9.-]*", "[a-z]*", ddm_k[0-9]*},' "$TOP/handlers/apple/ddm_schema.c")
check "one table entry per declaration file ($n; declarationbase.yaml is the base)" test "$n" = "$m"
n=$(grep -l '^  statusitemtype:' "$DS"/status/*.yaml | wc -l)
m=$(sed -n '/ddm_status_items\[\] = {/,/^};/p' "$TOP/handlers/apple/ddm_schema.c" | grep -c '^    "')
check "one status item per status file ($n)" test "$n" = "$m"
finish

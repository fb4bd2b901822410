#!/usr/bin/env bash
# The static half of the cluster-safe key layout: no script of store/lua
# builds key names outside the known worklist (test/lua_keys.allow), and the
# worklist names no script that is already clean (test/lua_keys.py).
. "$(dirname "$0")/lib.sh"
check "lua_keys.py --check" python3 "$TOP/test/lua_keys.py" --check
# The check can fail: a script that builds a key name it did not get in KEYS.
mkdir -p "$T/lua"
cp -r "$TOP/store/lua/." "$T/lua/"
check "a script building a key outside the worklist is caught" bash -c "
    d=\$(mktemp -d '$T/top.XXXXXX'); mkdir -p \"\$d/store\" \"\$d/test\"
    cp -r '$T/lua' \"\$d/store/lua\"; cp '$TOP/test/lua_keys.py' '$TOP/test/lua_keys.allow' \"\$d/test/\"
    printf \"return redis.call('GET', 'mdm:stats')\\n\" >\"\$d/store/lua/zz_new.lua\"
    ! python3 \"\$d/test/lua_keys.py\" --check >/dev/null"
finish

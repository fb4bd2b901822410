#!/usr/bin/env python3
"""lua_keys.py: which scripts of store/lua build key names instead of taking
them in KEYS.  Redis Cluster needs every key a script touches declared in KEYS
and all of them in one slot (docs/REDIS.md, "Redis Cluster"); a key name made
inside the script ('mdm:...' literals, mdm_key()/ddm_key() of the prelude) is
what breaks that.  A script calling a prelude function inherits the function's
key names (transitively).

  lua_keys.py            the report: script -> key names it builds
  lua_keys.py --check    exit 1 when a script outside test/lua_keys.allow
                         builds key names, or one inside no longer does (the
                         list only shrinks: it is the cluster-layout worklist)
"""
import os
import re
import sys

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
LUA = os.path.join(TOP, 'store', 'lua')
ALLOW = os.path.join(TOP, 'test', 'lua_keys.allow')
LIT = re.compile(r"""['"](mdm:[A-Za-z0-9_:]*)""")
# Pub/sub channels, not keys: PUBLISH is cluster-wide and takes no slot.
CHANNELS = {'mdm:poke'}


def strip_comments(text):
    return '\n'.join(line.split('--', 1)[0] if not re.search(r"""['"][^'"]*--""", line)
                     else line for line in text.splitlines())


def prelude_functions(text):
    """name -> body of each top-level 'local function' of the prelude."""
    funcs, name, body = {}, None, []
    for line in text.splitlines():
        m = re.match(r'local function (\w+)', line)
        if m:
            if name:
                funcs[name] = '\n'.join(body)
            name, body = m.group(1), [line]
        elif name:
            body.append(line)
    if name:
        funcs[name] = '\n'.join(body)
    return funcs


def keys_of(body, funcs, seen):
    found = set(LIT.findall(body)) - CHANNELS
    for f, fbody in funcs.items():
        if f not in seen and re.search(r'\b%s\s*\(' % f, body):
            seen.add(f)
            found |= keys_of(fbody, funcs, seen)
    return found


def report():
    funcs = prelude_functions(strip_comments(open(os.path.join(LUA, 'prelude.lua')).read()))
    out = {}
    for fn in sorted(os.listdir(LUA)):
        if not fn.endswith('.lua') or fn == 'prelude.lua':
            continue
        body = strip_comments(open(os.path.join(LUA, fn)).read())
        keys = keys_of(body, funcs, set())
        if keys:
            out[fn] = sorted(keys)
    return out


def main():
    out = report()
    if '--check' not in sys.argv:
        for fn, keys in out.items():
            print('%-24s %s' % (fn, ' '.join(keys)))
        print('%d of %d scripts build key names' %
              (len(out), len([f for f in os.listdir(LUA) if f.endswith('.lua')]) - 1))
        return 0
    allow = {l.strip() for l in open(ALLOW) if l.strip() and not l.startswith('#')}
    bad = 0
    for fn in sorted(set(out) - allow):
        print('FAIL %s builds key names it did not get in KEYS: %s' % (fn, ' '.join(out[fn])))
        bad += 1
    for fn in sorted(allow - set(out)):
        print('FAIL %s is cluster-safe now: take it out of test/lua_keys.allow' % fn)
        bad += 1
    print('%d scripts on the worklist (test/lua_keys.allow), %d problems' % (len(allow), bad))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python3
"""lint.py: the house rules a compiler does not check (make lint).

  format      every C file is as clang-format (.clang-format) leaves it
  own-header  a module's .c includes its own header first: X.h when it
              exists, else the header named after its folder
  includes    every project header a file includes is used: at least one
              name it declares appears in the file
  cycles      no include cycle between modules (a module is a folder;
              handlers/<name>/ is one of its own)

Prints "ok CHECK" or "FAIL CHECK: file: why" lines; exits 1 on any failure.
Generated files (handlers/apple/mdm_schema.c, mdm_checkin_schema.c, ddm_schema.c) are not formatted by hand and
are left out of "format"."""
import os
import re
import subprocess
import sys

GENERATED = {'handlers/apple/mdm_schema.c', 'handlers/apple/mdm_checkin_schema.c',
             'handlers/apple/ddm_schema.c'}
fails = []


def files():
    out = subprocess.run(['git', 'ls-files', '*.c', '*.h'], capture_output=True, text=True,
                         check=True).stdout.split()
    return [f for f in out if os.path.isfile(f)]


def strip_comments(s):
    s = re.sub(r'/\*.*?\*/', ' ', s, flags=re.S)
    s = re.sub(r'//[^\n]*', ' ', s)
    return re.sub(r'"(\\.|[^"\\\n])*"', '""', s)


def fail(check, f, why):
    fails.append((check, f, why))


def check_format(fs):
    todo = [f for f in fs if f not in GENERATED]
    r = subprocess.run(['clang-format', '--dry-run', '-Werror'] + todo, capture_output=True,
                       text=True)
    first = {}
    for l in r.stderr.splitlines():
        m = re.match(r'^([^:]+):(\d+):\d+: error: code should be clang-formatted', l)
        if m and m.group(1) not in first:
            first[m.group(1)] = m.group(2)
    for f, line in first.items():
        fail('format', f, 'from line %s on, not as clang-format leaves it (make format)' % line)
    if r.returncode != 0 and not any(c == 'format' for c, _, _ in fails):
        fail('format', '-', r.stderr.strip()[:300] or 'clang-format failed')


def includes(f):
    out = []
    for l in open(f, encoding='utf-8', errors='replace'):
        m = re.match(r'^\s*#\s*include\s+"([^"]+)"', l)
        if m:
            out.append(os.path.normpath(os.path.join(os.path.dirname(f), m.group(1))))
    return out


def defined(f):
    """The functions f defines for other files (not static)."""
    s = strip_comments(open(f, encoding='utf-8', errors='replace').read())
    return set(re.findall(r'^(?!static\b)[A-Za-z_][\w \t*]*?\b(\w+)\s*\([^;{]*\)\s*\{', s,
                          flags=re.M))


def own_header(f, headers=None):
    """The header that declares what f defines: X.h for X.c, or the module
    header (ca.h for ca_pw.c), found by the names it declares."""
    d, b = os.path.split(f)
    h = os.path.join(d, b[:-2] + '.h')
    if os.path.isfile(h) or headers is None:
        return h if os.path.isfile(h) else None
    mine = defined(f)
    for h in headers:
        if os.path.dirname(h) == d and mine & declared(h):
            return h
    return None


def check_own_header(fs):
    headers = sorted(h for h in fs if h.endswith('.h'))
    for f in fs:
        if not f.endswith('.c') or f.startswith('test/') or f in GENERATED:
            continue
        h = own_header(f, headers)
        inc = includes(f)
        if h is not None and (not inc or inc[0] != h):
            fail('own-header', f, 'the first include must be "%s"' % os.path.basename(h))


def declared(h):
    s = strip_comments(open(h, encoding='utf-8', errors='replace').read())
    names = set(re.findall(r'^\s*#\s*define\s+(\w+)', s, flags=re.M))
    names |= set(re.findall(r'\b(?:struct|enum|union)\s+(\w+)\s*\{', s))
    names |= set(re.findall(r'\btypedef\b[^;]*?\b(\w+)\s*(?:\(|;|\[)', s))
    names |= set(re.findall(r'\b(\w+)\s*\(', s)) - {'__attribute__', 'format', 'const', 'void', 'char', 'int', 'unsigned', 'long', 'struct'}   # prototypes
    names |= set(re.findall(r'\bextern\b[^;]*?\b(\w+)\s*(?:\[\s*\])?\s*;', s))
    for body in re.findall(r'\benum\b[^{;]*\{([^}]*)\}', s):              # enum constants
        names |= set(re.findall(r'\b([A-Za-z_]\w*)\s*(?:=[^,]*)?(?:,|$)', body))
    # opaque types: the header's own ("struct store;" in store.h), not the
    # forward declarations of other modules' types it only mentions
    stem, folder = os.path.basename(h)[:-2], os.path.basename(os.path.dirname(h))
    names |= {n for n in re.findall(r'\bstruct\s+(\w+)\s*;', s)
              if n.startswith(stem) or (folder and n.startswith(folder))}
    return names - {'if', 'while', 'for', 'return', 'sizeof', 'defined'}


def fields(h):
    s = strip_comments(open(h, encoding='utf-8', errors='replace').read())
    out = set()
    for body in re.findall(r'\bstruct\s+\w+\s*\{(.*?)\n\};', s, flags=re.S):
        out |= set(re.findall(r'(\w+)\s*(?:\[[^]]*\])?\s*(?::\s*\d+)?\s*;', body))
    return out


def check_includes(fs):
    # A public struct's fields are its header's names too (cf->redis_timeout_ms
    # needs conf.h), but only those no other header's struct has.
    own = {h: fields(h) for h in fs if h.endswith('.h')}
    seen = {}
    for h, fl in own.items():
        for n in fl:
            seen[n] = seen.get(n, 0) + 1
    cache = {}
    for f in fs:
        if f.startswith('test/'):
            continue    # the tools are one file each, their headers parts of it
        text = strip_comments(open(f, encoding='utf-8', errors='replace').read())
        text = re.sub(r'(?m)^\s*#\s*include[^\n]*', '', text)
        words = set(re.findall(r'\w+', text))
        members = set(re.findall(r'(?:->|\.)\s*(\w+)', text))
        for h in includes(f):
            if not os.path.isfile(h) or h == own_header(f):
                continue
            if h not in cache:
                cache[h] = (declared(h), {n for n in own.get(h, ()) if seen[n] == 1})
            if not (cache[h][0] & words) and not (cache[h][1] & members):
                fail('includes', f, 'includes "%s" but uses none of its names' % h)


# The program's entry points wire every module together; they are no module's
# part, so their includes make no cycle.
ENTRY = {'core/main.c', 'core/cli.c'}


def module(f):
    if f in ENTRY:
        return 'main'
    parts = f.split('/')
    if parts[0] == 'handlers' and len(parts) > 2:
        return 'handlers/' + parts[1]
    return parts[0] if len(parts) > 1 else '.'


def check_cycles(fs):
    edges = {}
    for f in fs:
        if f.startswith('test/'):
            continue
        for h in includes(f):
            a, b = module(f), module(h)
            if a != b:
                edges.setdefault(a, set()).add(b)
    state = {}

    def visit(n, path):
        state[n] = 1
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                fail('cycles', n, 'include cycle: ' + ' -> '.join(path[path.index(m):] + [m]))
            elif m not in state:
                visit(m, path + [m])
        state[n] = 2

    for n in sorted(edges):
        if n not in state:
            visit(n, [n])


def main():
    fs = files()
    checks = [('format', check_format), ('own-header', check_own_header),
              ('includes', check_includes), ('cycles', check_cycles)]
    only = sys.argv[1:]
    for name, fn in checks:
        if only and name not in only:
            continue
        before = len(fails)
        fn(fs)
        if len(fails) == before:
            print('ok %s' % name)
        for c, f, why in fails[before:]:
            print('FAIL %s: %s: %s' % (c, f, why))
    return 1 if fails else 0


sys.exit(main())

#!/usr/bin/env python3
"""Hostile plists and JSON for the shape limits (hostile.sh, fuzz seeds).

hostile.py KIND SIZE OUT [KEY=VALUE...]
  deep-xml    SIZE levels of <array> (or <dict><key>k</key>) nesting
  deep-bin    a binary plist with SIZE nested arrays, one distinct object each
  wide-xml    one array of SIZE <true/> elements
  wide-bin    one array of SIZE references to a single `true` object
  fanout-bin  a binary plist whose shared sub-arrays expand to 2^SIZE nodes
  cycle-bin   a binary plist whose array contains itself (a reference cycle)
  big-string  an XML plist with one SIZE-byte string
  deep-json   SIZE levels of [ nesting
  dict-bin    a dict holding KEY=VALUE strings and a deep-bin array at "Deep"
With dict=1 (xml kinds) the nesting sits inside a dict that carries the
KEY=VALUE strings, so a check-in or report is otherwise well-formed.
"""
import struct
import sys

HEAD = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
        b'"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n<plist version="1.0">')


def kv_xml(kv):
    return b"".join(b"<key>%s</key><string>%s</string>" % (k.encode(), v.encode())
                    for k, v in kv.items())


def wrap_xml(inner, kv):
    if kv:
        return HEAD + b"<dict>" + kv_xml(kv) + b"<key>Deep</key>" + inner + b"</dict></plist>\n"
    return HEAD + inner + b"</plist>\n"


def bplist(objects, top=0):
    """objects: encoded objects (bytes) whose refs are already ref_size wide."""
    offsets, pos = [], 8
    for o in objects:
        offsets.append(pos)
        pos += len(o)
    off_size = 4 if pos < 2 ** 32 else 8
    return b"".join([b"bplist00"] + objects + [off.to_bytes(off_size, "big") for off in offsets]
                    + [struct.pack(">6xBBQQQ", off_size, REF, len(objects), top, pos)])


REF = 4


def count(marker, n):
    if n < 15:
        return bytes([marker | n])
    return bytes([marker | 0xF, 0x12]) + n.to_bytes(4, "big")


def ref(i):
    return i.to_bytes(REF, "big")


def deep_bin(n, kv=None):
    objs = [count(0xA0, 1) + ref(i + 1) for i in range(n)] + [b"\x09"]
    if not kv:
        return bplist(objs)
    # dict at the end: keys, values, then "Deep" -> object 0
    base = len(objs)
    strs = []
    for k, v in list(kv.items()) + [("Deep", None)]:
        strs.append(k)
    keys = [base + 1 + i for i in range(len(strs))]
    vals = []
    extra = []
    for k, v in kv.items():
        vals.append(base + 1 + len(strs) + len(extra))
        extra.append(v)
    vals.append(0)
    d = count(0xD0, len(strs)) + b"".join(ref(k) for k in keys) + b"".join(ref(v) for v in vals)
    enc = [count(0x50, len(s)) + s.encode() for s in strs + extra]
    return bplist(objs + [d] + enc, top=base)


def main():
    kind, size, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    kv = dict(a.split("=", 1) for a in sys.argv[4:] if not a.startswith("dict="))
    if kind == "deep-xml":
        data = wrap_xml(b"<array>" * size + b"</array>" * size, kv)
    elif kind == "wide-xml":
        data = wrap_xml(b"<array>" + b"<true/>" * size + b"</array>", kv)
    elif kind == "big-string":
        data = wrap_xml(b"<string>" + b"x" * size + b"</string>", kv)
    elif kind == "deep-bin":
        data = deep_bin(size, kv)
    elif kind == "wide-bin":
        data = bplist([count(0xA0, size) + ref(1) * size, b"\x09"])
    elif kind == "fanout-bin":
        # object i: [i+1, i+1]; object SIZE: true.  2^SIZE leaves, SIZE+1 objects.
        data = bplist([count(0xA0, 2) + ref(i + 1) * 2 for i in range(size)] + [b"\x09"])
    elif kind == "cycle-bin":
        # 0: [1, 0]  (contains itself), 1: true
        data = bplist([count(0xA0, 2) + ref(1) + ref(0), b"\x09"])
    elif kind == "deep-json":
        data = b"[" * size + b"]" * size
    else:
        sys.exit("unknown kind " + kind)
    with open(out, "wb") as f:
        f.write(data)


if __name__ == "__main__":
    main()

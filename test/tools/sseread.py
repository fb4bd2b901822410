#!/usr/bin/env python3
"""A Server-Sent Events reader for test/integration/feed.sh, loopback only.

Connects over TLS (--cacert), GETs --path with the bearer key (--key-file)
and an optional Last-Event-ID, and appends one line per message to --out:
"<receive ms> <id or -> <event or message> <data>", and "PING <ms>" for a
heartbeat comment; "END <ms>" when the server ends the stream cleanly,
"CLOSED <ms>" when the connection drops.  --slow: a tiny receive buffer,
and never read after the headers (a slow reader)."""
import argparse, socket, ssl, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--cacert", required=True)
ap.add_argument("--key-file", required=True)
ap.add_argument("--path", default="/v1/events")
ap.add_argument("--last-id", default="")
ap.add_argument("--out", required=True)
ap.add_argument("--slow", action="store_true")
a = ap.parse_args()
now = lambda: int(time.time() * 1000)
out = open(a.out, "a", buffering=1)

ctx = ssl.create_default_context(cafile=a.cacert)
raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
if a.slow:
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
raw.connect(("127.0.0.1", a.port))
s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
key = open(a.key_file).read().strip()
req = "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\nAccept: text/event-stream\r\n" % (a.path, key)
if a.last_id:
    req += "Last-Event-ID: %s\r\n" % a.last_id
s.sendall((req + "\r\n").encode())
f = s.makefile("rb")
status = f.readline().decode().strip()
out.write("STATUS %s\n" % status.split(" ")[1])
while True:  # headers
    l = f.readline()
    if l in (b"\r\n", b""):
        break
if a.slow:
    while True:
        time.sleep(1)

buf = b""
def chunks():
    while True:
        size = f.readline()
        if not size:
            return
        n = int(size.strip() or b"0", 16)
        if n == 0:
            f.readline()
            yield None
            return
        d = f.read(n)
        f.read(2)
        yield d

ev = {}
try:
    for c in chunks():
        if c is None:
            out.write("END %d\n" % now())
            sys.exit(0)
        buf += c
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            line = line.decode()
            if line == "":
                if ev:
                    out.write("%d %s %s %s\n" % (now(), ev.get("id", "-"), ev.get("event", "message"),
                                                 ev.get("data", "")))
                ev = {}
            elif line.startswith(":"):
                if line.strip() == ": ping":
                    out.write("PING %d\n" % now())
            else:
                k, _, v = line.partition(":")
                ev[k] = v[1:] if v.startswith(" ") else v
except (OSError, ValueError):
    pass
out.write("CLOSED %d\n" % now())

#!/usr/bin/env python3
"""healthz_probe.py PORT STOPFILE CAFILE [PATH]: GET PATH (/healthz) every 20 ms
on one keep-alive TLS connection until STOPFILE exists; prints "slow ..." for each
answer over 50 ms (stderr), then "probes=N worst_ms=X errors=N"."""
import os
import socket
import ssl
import sys
import time

port, stop = int(sys.argv[1]), sys.argv[2]
path = sys.argv[4] if len(sys.argv) > 4 else "/healthz"
c = ssl.create_default_context(cafile=sys.argv[3])
c.check_hostname = False
s = c.wrap_socket(socket.create_connection(("127.0.0.1", port)))
worst, n, errs = 0.0, 0, 0
while not os.path.exists(stop):
    t0 = time.monotonic()
    try:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = s.recv(4096)
            if not d:
                raise OSError("closed")
            buf += d
        head, _, body = buf.partition(b"\r\n\r\n")
        ln = int([l.split(b":")[1] for l in head.split(b"\r\n")
                  if l.lower().startswith(b"content-length")][0])
        while len(body) < ln:
            body += s.recv(4096)
    except OSError:
        errs += 1
        s = c.wrap_socket(socket.create_connection(("127.0.0.1", port)))
        continue
    dt = time.monotonic() - t0
    if dt > 0.05:
        sys.stderr.write("slow %.1f ms at %s.%03d\n" % (dt * 1000, time.strftime("%H:%M:%S", time.gmtime()),
                                                      time.time() * 1000 % 1000))
    worst = max(worst, dt)
    n += 1
    time.sleep(0.02)
print("probes=%d worst_ms=%.1f errors=%d" % (n, worst * 1000, errs))

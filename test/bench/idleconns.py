#!/usr/bin/env python3
"""make bench: opens N mutual-TLS keep-alive connections to the MDM listener,
sends one Idle poll on each, and holds them open (idle) until stdin closes or
a line arrives.  Prints "open=N failed=F" once all are up.
  idleconns.py PORT CERT KEY UDID N"""
import socket
import ssl
import sys

port, cert, key, udid, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.load_cert_chain(cert, key)
body = ('<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict>'
        '<key>Status</key><string>Idle</string><key>UDID</key><string>%s</string>'
        '</dict></plist>\n' % udid).encode()
req = (b'PUT /mdm HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-apple-aspen-mdm\r\n'
       b'Content-Length: %d\r\n\r\n' % len(body)) + body
held, failed = [], 0
for i in range(n):
    try:
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(port)), timeout=30))
        s.sendall(req)
        got = b''
        while b'\r\n\r\n' not in got:
            chunk = s.recv(4096)
            if not chunk:
                raise OSError("closed")
            got += chunk
        if not got.startswith(b'HTTP/1.1 200'):
            raise OSError(got[:40])
        held.append(s)
    except OSError as e:
        failed += 1
        if failed <= 3:
            print("idleconns: connection %d: %s" % (i, e), file=sys.stderr)
print("open=%d failed=%d" % (len(held), failed), flush=True)
sys.stdin.readline()

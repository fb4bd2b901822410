#!/usr/bin/env python3
"""A webhook receiver for test/integration/fleet.sh, on loopback only.

Every POST's signature is checked (X-Mdmd-Signature: sha256=HMAC-SHA256 of the
body under --secret); each delivery is logged as one line to --log:
"<status> <X-Mdmd-Delivery> <sig ok 0|1> <udid> <seq>".  It answers 500 to the
first --fail-first deliveries, goes down (closes its socket) for --down-for
seconds after --down-after successes, and answers 503 to paths under /dead
until the file --heal exists.  With --tls-cert/--tls-key it serves HTTPS and
logs "SNI <server name>" for each handshake ("SNI -" without one)."""
import argparse, hashlib, hmac, http.server, json, os, socketserver, ssl, time

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--secret", default="")
ap.add_argument("--log", required=True)
ap.add_argument("--fail-first", type=int, default=0)
ap.add_argument("--down-after", type=int, default=-1)
ap.add_argument("--down-for", type=float, default=0)
ap.add_argument("--heal", default="/nonexistent")
# One thread per connection: several mdmd workers keep a connection each
# (workers.sh); without it the second waits behind the first's keep-alive.
ap.add_argument("--threaded", action="store_true")
ap.add_argument("--tls-cert", default="")
ap.add_argument("--tls-key", default="")
a = ap.parse_args()
tls = None
if a.tls_cert:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(a.tls_cert, a.tls_key)
    def sni(sock, name, ctx):
        with open(a.log, "a") as f:
            f.write("SNI %s\n" % (name or "-"))
    tls.sni_callback = sni
state = {"seen": 0, "ok": 0, "down": False}


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        want = "sha256=" + hmac.new(a.secret.encode(), body, hashlib.sha256).hexdigest()
        sig_ok = hmac.compare_digest(want, self.headers.get("X-Mdmd-Signature", ""))
        try:
            ev = json.loads(body)
        except ValueError:
            ev = {}
        state["seen"] += 1
        if self.path.startswith("/dead") and not os.path.exists(a.heal):
            code = 503
        elif state["seen"] <= a.fail_first:
            code = 500
        else:
            code = 200
        with open(a.log, "a") as f:
            f.write("%d %s %d %s %s %s\n" % (code, self.headers.get("X-Mdmd-Delivery", "-"),
                                             1 if sig_ok else 0, ev.get("udid", "-"),
                                             ev.get("seq", "-"), self.path))
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()
        if code == 200 and not self.path.startswith("/dead"):
            state["ok"] += 1
            if state["ok"] == a.down_after:
                state["down"] = True
                self.close_connection = True


class S(socketserver.TCPServer):
    allow_reuse_address = True

    def get_request(self):  # a failed handshake is an OSError: handle_request drops it
        sock, addr = self.socket.accept()
        if tls is not None:
            sock.settimeout(5)
            sock = tls.wrap_socket(sock, server_side=True)
        return sock, addr


if a.threaded:
    class S(socketserver.ThreadingMixIn, S):
        daemon_threads = True


while True:
    srv = S(("127.0.0.1", a.port), H)
    while not state["down"]:
        srv.handle_request()
    srv.server_close()
    with open(a.log, "a") as f:
        f.write("DOWN\n")
    time.sleep(a.down_for)
    state["down"] = False
    a.down_after = -1

#!/usr/bin/env python3
"""redisproxy.py: a loopback TCP proxy in front of redis-server that injects one
fault when asked (tests only).

    redisproxy.py --target PORT --port-file FILE --ctl FILE

It forwards every byte both ways.  The control file holds one rule,
"MATCH NTH ACTION DOWN_MS", read again whenever it changes; a new rule starts
its count at zero and fires once:
  MATCH    a byte string (no spaces) looked for in what clients send
  NTH      fire on its NTH occurrence
  ACTION   drop_before: close every connection without forwarding the data
           that matched (the command never runs);
           drop_after: forward it, let Redis run it, then close every
           connection before the reply gets back (done, but the client cannot
           know);
           stall: forward it and hold back every reply for DOWN_MS, then close
  DOWN_MS  then refuse (accept and close) new connections this long
Each fired rule is logged to stderr and appended to FILE.fired."""
import argparse
import os
import socket
import threading
import time

lock = threading.Lock()
conns = set()                 # (client, server) socket pairs
rule = None                   # [match, nth, action, down_ms, seen]
rule_mtime = 0.0
down_until = 0.0
hold_until = 0.0
mute = threading.Event()      # drop_after: replies are discarded until the close


def load_rule(ctl):
    global rule, rule_mtime
    try:
        st = os.stat(ctl)
    except OSError:
        return
    if st.st_mtime == rule_mtime:
        return
    rule_mtime = st.st_mtime
    with open(ctl) as f:
        parts = f.read().split()
    rule = [parts[0].encode(), int(parts[1]), parts[2], int(parts[3]), 0] if len(parts) == 4 else None


def close_all():
    for c, s in list(conns):
        for x in (c, s):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            x.close()
    conns.clear()


def fired(ctl, what):
    with open(ctl + '.fired', 'a') as f:
        f.write(what + '\n')
    print('redisproxy: fired ' + what, flush=True)


def on_client_data(ctl, data):
    """Returns (forward, then): then is None, 'close' or 'hold'."""
    global rule, down_until, hold_until
    load_rule(ctl)
    if rule is None:
        return True, None
    rule[4] += data.count(rule[0])
    if rule[4] < rule[1]:
        return True, None
    match, nth, action, down_ms, _ = rule
    rule = None
    down_until = time.monotonic() + (down_ms / 1000.0 if action != 'stall' else 0)
    fired(ctl, '%s %d %s %d' % (match.decode(), nth, action, down_ms))
    if action == 'drop_before':
        return False, 'close'
    if action == 'drop_after':
        mute.set()                            # no reply gets back: closed first
        return True, 'close'
    hold_until = time.monotonic() + down_ms / 1000.0
    return True, 'hold'


def pump_up(ctl, c, s):
    while True:
        try:
            data = c.recv(65536)
        except OSError:
            return
        if not data:
            return
        with lock:
            fwd, then = on_client_data(ctl, data)
        if fwd:
            try:
                s.sendall(data)
            except OSError:
                return
        if then == 'close':
            time.sleep(0.05 if fwd else 0)   # drop_after: Redis runs it first
            with lock:
                close_all()
                mute.clear()
            return


def pump_down(c, s):
    while True:
        try:
            data = s.recv(65536)
        except OSError:
            return
        if not data:
            return
        if mute.is_set():
            return
        wait = hold_until - time.monotonic()
        if wait > 0:
            time.sleep(wait)
            with lock:
                close_all()
            return
        try:
            c.sendall(data)
        except OSError:
            return


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--target', type=int, required=True)
    ap.add_argument('--port-file', required=True)
    ap.add_argument('--ctl', required=True)
    a = ap.parse_args()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(('127.0.0.1', 0))
    ls.listen(64)
    with open(a.port_file + '.tmp', 'w') as f:
        f.write('%d\n' % ls.getsockname()[1])
    os.rename(a.port_file + '.tmp', a.port_file)
    while True:
        c, _ = ls.accept()
        if time.monotonic() < down_until:
            c.close()
            continue
        try:
            s = socket.create_connection(('127.0.0.1', a.target))
        except OSError:
            c.close()
            continue
        with lock:
            conns.add((c, s))
        threading.Thread(target=pump_up, args=(a.ctl, c, s), daemon=True).start()
        threading.Thread(target=pump_down, args=(c, s), daemon=True).start()


if __name__ == '__main__':
    main()

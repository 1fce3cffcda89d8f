#!/usr/bin/python3
"""Mixed client load for the soak and valgrind checks: keep-alive GETs,
HEADs, POSTs with bodies (checked against an echo), malformed requests,
and a few slowloris connections, for a duration or a number of requests.
Prints one JSON summary of what the clients observed.

usage: fault_load.py PORT [--seconds S] [--requests N] [--threads T]
                          [--slow N] [--bad-every K]
"""
import argparse
import json
import os
import random
import socket
import sys
import threading
import time

# The test client shared with the e2e tests (tests/lib/, not tests/e2e/).
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests",
                                "lib"))
from httpc import Conn  # noqa: E402


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.status = {}
        self.truncated = 0     # response cut short (clean close, no lie)
        self.conn_errors = 0   # connect/reset/timeouts on the client side
        self.bad_body = 0      # a 200 whose body was wrong: must stay 0
        self.slow_cut = 0      # slowloris connections closed by lbproxy
        self.slow_408 = 0

    def add(self, **kw):
        with self.lock:
            for k, v in kw.items():
                if k == "status":
                    self.status[v] = self.status.get(v, 0) + 1
                    self.requests += 1
                else:
                    setattr(self, k, getattr(self, k) + v)


def worker(port, st, stop, seed, bad_every):
    rng = random.Random(seed)
    c = None
    n = 0
    while not stop.is_set():
        try:
            if c is None:
                c = Conn(port, timeout=10)
            n += 1
            kind = rng.random()
            if bad_every and n % bad_every == 0:
                c.send(b"GET / HTTP/1.1\r\nHost : t\r\n\r\n")
                r = c.read()
                st.add(status=r.status if r else 0)
                c.close()
                c = None
                continue
            if kind < 0.1:
                body = rng.randbytes(rng.choice([10, 1000, 70000]))
                r = c.request("POST", "/echo", body=body)
                if r is None:
                    raise EOFError("closed")
                if r.status == 200 and r.body != body:
                    st.add(bad_body=1)
            elif kind < 0.15:
                r = c.request("HEAD", "/h")
            else:
                r = c.request("GET", f"/g{n}")
            if r is None:
                raise EOFError("closed")
            st.add(status=r.status)
            if r.status != 200 or n % 100 == 0 or \
                    (r.header("connection") or "").lower() == "close":
                c.close()
                c = None
        except EOFError as e:
            st.add(truncated=1 if "truncated" in str(e) else 0,
                   conn_errors=0 if "truncated" in str(e) else 1)
            if c:
                c.close()
            c = None
        except OSError:
            st.add(conn_errors=1)
            if c:
                c.close()
            c = None
    if c:
        c.close()


def slowloris(port, st, stop, n):
    """Keeps about n slow-header connections open, replacing the cut ones."""
    socks = []
    while not stop.is_set():
        while len(socks) < n:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"GET /slow HTTP/1.1\r\nHost: t\r\n")
                s.setblocking(False)
                socks.append(s)
            except OSError:
                break
        time.sleep(0.5)
        keep = []
        for s in socks:
            try:
                b = s.recv(4096)
                if b.startswith(b"HTTP/1.1 408"):
                    st.add(slow_408=1)
                if not b or b.startswith(b"HTTP/1.1 408"):
                    st.add(slow_cut=1)
                    s.close()
                    continue
            except BlockingIOError:
                try:
                    s.send(b"X")
                except OSError:
                    pass
            except OSError:
                st.add(slow_cut=1)
                s.close()
                continue
            keep.append(s)
        socks = keep
    for s in socks:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--seconds", type=float, default=0)
    ap.add_argument("--requests", type=int, default=0)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--slow", type=int, default=20)
    ap.add_argument("--bad-every", type=int, default=500)
    a = ap.parse_args()
    st = Stats()
    stop = threading.Event()
    ths = [threading.Thread(target=worker, args=(a.port, st, stop, i,
                                                 a.bad_every), daemon=True)
           for i in range(a.threads)]
    if a.slow:
        ths.append(threading.Thread(target=slowloris,
                                    args=(a.port, st, stop, a.slow),
                                    daemon=True))
    t0 = time.monotonic()
    for t in ths:
        t.start()
    last = t0
    while True:
        time.sleep(0.2)
        now = time.monotonic()
        if a.seconds and now - t0 >= a.seconds:
            break
        if a.requests and st.requests >= a.requests:
            break
        if now - last >= 10:
            last = now
            print(f"  {now - t0:6.0f}s {st.requests} requests",
                  file=sys.stderr, flush=True)
    stop.set()
    for t in ths:
        t.join(20)
    out = {
        "seconds": round(time.monotonic() - t0, 1),
        "requests": st.requests,
        "status": {str(k): v for k, v in sorted(st.status.items())},
        "truncated": st.truncated,
        "conn_errors": st.conn_errors,
        "bad_body": st.bad_body,
        "slow_cut": st.slow_cut,
        "slow_408": st.slow_408,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()

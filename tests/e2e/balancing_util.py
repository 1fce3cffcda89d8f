"""Helpers for the balancing and health e2e tests: a stack of lbbackends
behind one lbproxy, sequential and concurrent clients that record which
backend answered (X-Backend-Id), and polling of the backends' /stats and
the proxy's /api/stats."""
import json
import socket
import threading
import time

from httpc import Conn, get
from lbtest import free_port, wait_port


def backend_stats(port):
    """The emulator's own counters (GET /stats straight to the backend)."""
    return json.loads(get(port, "/stats").body)


def admin_backends(admin_port):
    """backends[] of the proxy's /api/stats, keyed by id."""
    d = json.loads(get(admin_port, "/api/stats").body)
    return {b["id"]: b for b in d["backends"]}


def stack(procs, specs, mode="round-robin", sets=(), extra=(), admin=False):
    """Starts one lbbackend per spec (id, [flags]) and an lbproxy in front
    of them (hermetic: --config /dev/null).  A spec's id may carry
    ",weight=N".  Returns (backends, proxy); proxy.admin is the admin port
    when admin=True."""
    bes, addrs = [], []
    for spec in specs:
        bid, flags = spec[0], list(spec[1])
        name, _, weight = bid.partition(",")
        b = procs.backend(bid=name, extra=flags)
        bes.append(b)
        addrs.append(f"{b.port},id={name}" + (f",{weight}" if weight else ""))
    args = ["--config", "/dev/null", "--mode", mode, "--persistent"]
    for s in sets:
        args += ["--set", s]
    aport = free_port() if admin else None
    px = procs.proxy(addrs, extra=args + list(extra), admin=aport)
    if aport:
        wait_port(aport, proc=px)
    px.admin = aport
    return bes, px


def seq_ids(port, n):
    """n sequential requests on one keep-alive connection: a list of
    (backend id or None, status)."""
    out = []
    with Conn(port) as c:
        for _ in range(n):
            r = c.request(path="/")
            out.append((r.header("x-backend-id"), r.status))
    return out


def seq_for(port, seconds):
    """Sequential requests for a while: a list of (t, id, status), t from
    the start in seconds."""
    out = []
    t0 = time.monotonic()
    with Conn(port) as c:
        while True:
            t = time.monotonic() - t0
            if t >= seconds:
                return out
            r = c.request(path="/")
            out.append((t, r.header("x-backend-id"), r.status))


def load(port, clients, seconds, t0=None):
    """`clients` closed-loop clients (one keep-alive connection each, next
    request as soon as the answer is in) for `seconds`: a list of
    (t, id, status) with t the completion time from t0 (monotonic; default
    now).  A failed connection is reopened; its error is recorded as
    status 0."""
    t0 = time.monotonic() if t0 is None else t0
    end = time.monotonic() + seconds
    results, lock = [], threading.Lock()

    def client():
        mine = []
        c = None
        while time.monotonic() < end:
            try:
                if c is None:
                    c = Conn(port, timeout=10)
                r = c.request(path="/")
                mine.append((time.monotonic() - t0, r.header("x-backend-id"),
                             r.status))
                if r.header("connection") == "close":
                    c.close()
                    c = None
            except (OSError, EOFError, ValueError):
                mine.append((time.monotonic() - t0, None, 0))
                if c is not None:
                    c.close()
                c = None
        if c is not None:
            c.close()
        with lock:
            results.extend(mine)

    ts = [threading.Thread(target=client) for _ in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(seconds + 30)
    return sorted(results)


def count(rows, bid, lo=None, hi=None):
    """Rows answered by backend bid (optionally with lo <= t < hi)."""
    return sum(1 for r in rows if r[1] == bid
               and (lo is None or r[0] >= lo) and (hi is None or r[0] < hi))


def share(rows, bid, lo, hi):
    """Fraction of the rows in [lo, hi) answered by bid (None if empty)."""
    sel = [r for r in rows if lo <= r[0] < hi]
    return (count(sel, bid) / len(sel)) if sel else None


class Blackhole:
    """A port that completes TCP handshakes (kernel backlog) but never
    accepts or answers: the model of a hung backend."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()

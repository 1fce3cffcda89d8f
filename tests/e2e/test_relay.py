"""End-to-end tests of the quickbench's L4 relay (scripts/bench/relay.c).

They prove that the relay carries keep-alive requests over one upstream
connection per client connection, picks backends round-robin per client
connection, relays a 1 MB body both ways intact, stops reading the upstream
while a slow reader lets bytes pend (bounded memory), closes each side when
the other closes or fails without harming other sessions, and exits
cleanly on SIGTERM -- so the benchmark's floor row cannot silently measure
a broken relay.  Real ./lbbackend processes on free loopback ports;
readiness by polling; every process stopped at teardown.
"""
import hashlib
import json
import os
import select
import signal
import socket
import subprocess
import time

import pytest

from conftest import ROOT
from httpc import Conn, read_response
from lbtest import free_port, rss_kb

RELAY = os.path.join(ROOT, os.environ.get("RELAY", "build/bench/relay"))


@pytest.fixture(autouse=True)
def relay_built():
    if not os.access(RELAY, os.X_OK):
        pytest.fail(f"{RELAY} is missing: run `make relay`")


def start_relay(procs, backend_ports):
    """Starts the relay and waits, by polling its log, for its listening
    line (no probe connection, so round-robin starts at the first
    backend)."""
    port = free_port()
    p = procs.start([RELAY, str(port)] + [str(b) for b in backend_ports],
                    name="relay", stdin=subprocess.DEVNULL)
    p.port = port
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"relay exited with {p.returncode}: "
                               f"{open(p.logfile).read()}")
        with open(p.logfile) as f:
            if "listening on" in f.read():
                return p
        time.sleep(0.02)
    raise TimeoutError("relay did not report listening")


@pytest.fixture(autouse=True)
def relay_exits_cleanly(procs):
    """Every relay a test left running must exit 0 on SIGTERM and print its
    summary (under the sanitizer build this also runs the leak check)."""
    yield
    for p in procs.procs:
        if os.path.basename(p.args[0]) == "relay" and p.poll() is None:
            rc = procs.stop(p)
            with open(p.logfile, errors="replace") as f:
                log = f.read()
            assert rc == 0, log
            assert "relay: exit:" in log, log


def backend_stats(port):
    with Conn(port) as c:
        r = c.request(path="/stats")
    assert r.status == 200
    return json.loads(r.body)


def wait_for(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def test_keepalive_requests_share_one_upstream_connection(procs):
    a = procs.backend(bid="A")
    b = procs.backend(bid="B")
    before = [backend_stats(x.port)["accepts"] for x in (a, b)]
    r = start_relay(procs, [a.port, b.port])
    with Conn(r.port) as c:
        ids = []
        for i in range(10):
            resp = c.request(path=f"/item/{i}")
            assert resp.status == 200
            ids.append(resp.header("x-backend-id"))
            assert ids[-1].encode() in resp.body
    assert ids == ["A"] * 10
    after = [backend_stats(x.port)["accepts"] for x in (a, b)]
    # One upstream connection in all; the second /stats call's own
    # connection is the other accept counted on each backend.
    assert [y - x - 1 for x, y in zip(before, after)] == [1, 0]


def test_client_connections_alternate_backends(procs):
    a = procs.backend(bid="A")
    b = procs.backend(bid="B")
    r = start_relay(procs, [a.port, b.port])
    ids = []
    for _ in range(6):
        with Conn(r.port) as c:
            resp = c.request()
            assert resp.status == 200
            ids.append(resp.header("x-backend-id"))
    assert ids == ["A", "B"] * 3


def epoll_interests(pid):
    """{fd: events} as the relay registered them with epoll, read from
    /proc/PID/fdinfo of its epoll descriptor."""
    d = f"/proc/{pid}/fd"
    for fd in os.listdir(d):
        try:
            if os.readlink(f"{d}/{fd}") != "anon_inode:[eventpoll]":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        out = {}
        for line in lines:
            w = line.split()
            if w and w[0] == "tfd:":
                out[int(w[1])] = int(w[3], 16)
        return out
    return {}



def post_echo(sock, f, body):
    sock.sendall(b"POST /echo HTTP/1.1\r\nHost: test\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body) + body)
    return read_response(f, "POST")


def small_rcvbuf_conn(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Set before connect, so the advertised window stays small too.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(20)
    s.connect(("127.0.0.1", port))
    return s, s.makefile("rb")


def test_megabyte_post_echoed_intact(procs):
    e = procs.backend(bid="E", extra=["--echo"])
    r = start_relay(procs, [e.port])
    body = os.urandom(1 << 20)
    s, f = small_rcvbuf_conn(r.port)
    try:
        resp = post_echo(s, f, body)
        assert resp.status == 200
        assert len(resp.body) == len(body)
        assert hashlib.sha256(resp.body).digest() == \
            hashlib.sha256(body).digest()
        # The connection is still usable after the large transfer.
        resp = post_echo(s, f, b"hello")
        assert (resp.status, resp.body) == (200, b"hello")
    finally:
        f.close()
        s.close()


def test_slow_reader_stops_the_relay_reading_upstream(procs):
    """16 MB is more than the kernel buffers on the way hold (1 MB is not:
    loopback send buffers grow to 4 MB), so with a client that does not
    read, the relay's send to it goes short: the relay must keep the rest,
    wait for EPOLLOUT on the client and stop polling the upstream for
    input, with memory bounded; then deliver every byte once the client
    reads."""
    e = procs.backend(bid="E", extra=["--echo"])
    r = start_relay(procs, [e.port])
    rss0 = rss_kb(r.pid)
    body = os.urandom(16 << 20)
    s, f = small_rcvbuf_conn(r.port)
    try:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: test\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        both, stopped = select.EPOLLIN | select.EPOLLOUT, 0

        def backpressure():
            ev = epoll_interests(r.pid).values()
            # client: read it, write to it; upstream: neither
            return (any(m & both == both for m in ev)
                    and any(m & both == stopped for m in ev))

        assert wait_for(backpressure, timeout=10), epoll_interests(r.pid)
        assert rss_kb(r.pid) - rss0 < 4096
        resp = read_response(f, "POST")
        assert resp.status == 200
        assert len(resp.body) == len(body)
        assert hashlib.sha256(resp.body).digest() == \
            hashlib.sha256(body).digest()
        assert wait_for(lambda: not backpressure())
    finally:
        f.close()
        s.close()


def test_upstream_close_closes_the_client(procs):
    a = procs.backend(bid="A")
    r = start_relay(procs, [a.port])
    with Conn(r.port) as c:
        resp = c.request(headers=[("Connection", "close")])
        assert resp.status == 200
        assert c.closed_by_peer()


def test_client_close_closes_the_upstream(procs):
    a = procs.backend(bid="A")
    r = start_relay(procs, [a.port])
    with Conn(r.port) as c:
        assert c.request().status == 200
        # This /stats connection and the relay's upstream.
        assert backend_stats(a.port)["open_connections"] == 2
    assert wait_for(lambda: backend_stats(a.port)["open_connections"] == 1)


def test_refused_backend_closes_only_its_client(procs):
    a = procs.backend(bid="A")
    dead = free_port()  # nothing listens there
    r = start_relay(procs, [dead, a.port])
    with Conn(r.port, timeout=5) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        assert c.closed_by_peer()
    with Conn(r.port) as c:
        resp = c.request()
        assert (resp.status, resp.header("x-backend-id")) == (200, "A")
    assert r.poll() is None
    assert procs.stop(r) == 0
    with open(r.logfile) as f:
        assert "2 sessions, 1 connect failures" in f.read()


def test_sigterm_exits_zero_with_a_summary(procs):
    a = procs.backend(bid="A")
    r = start_relay(procs, [a.port])
    with Conn(r.port) as c:
        assert c.request().status == 200
        # An open session at exit is closed and freed, not leaked.
        assert procs.stop(r, signal.SIGTERM) == 0
    with open(r.logfile) as f:
        assert "relay: exit: 1 sessions, 0 connect failures" in f.read()


@pytest.mark.parametrize("args", [[], ["8080"], ["x", "8081"],
                                  ["8080", "70000"], ["8080", "0"]])
def test_bad_arguments_exit_2(args):
    p = subprocess.run([RELAY] + args, capture_output=True, timeout=10)
    assert p.returncode == 2
    assert b"usage: relay" in p.stderr

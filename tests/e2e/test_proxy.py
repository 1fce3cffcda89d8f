"""The proxy core end to end: real ./lbproxy in front of real ./lbbackend
processes (or a scriptable raw backend where exact bytes matter) proves
forwarding, keep-alive, pipelining, bodies, framing, backpressure, hop-by-hop
rules, error answers, retries, drain and both connection models."""
import hashlib
import json
import os
import random
import signal
import socket
import threading
import time
import urllib.request

import pytest

from httpc import Conn, get
from lbtest import free_port, rss_kb
from rawbackend import RawBackend, ok


def backend_stats(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats",
                                timeout=5) as r:
        return json.loads(r.read())


@pytest.fixture
def raw():
    made = []

    def make(respond, **kw):
        b = RawBackend(respond, **kw)
        made.append(b)
        return b
    yield make
    for b in made:
        b.close()


def test_round_robin_keepalive_and_pipelining_in_order(procs):
    a = procs.backend(bid="A")
    b = procs.backend(bid="B")
    px = procs.proxy([a.port, b.port], extra=["--mode", "round-robin"])
    with Conn(px.port) as c:
        ids = [c.request(path=f"/k{i}").header("x-backend-id")
               for i in range(6)]
        assert ids == ["A", "B"] * 3
        # ten pipelined requests in one write, answered in order
        c.send(b"".join(f"GET /p{i} HTTP/1.1\r\nHost: t\r\n\r\n".encode()
                        for i in range(10)))
        got = [c.read() for _ in range(10)]
        assert all(r.status == 200 for r in got)
        assert [r.header("x-backend-id") for r in got] == ["A", "B"] * 5


def test_pipelined_responses_keep_request_order(procs, raw):
    # the backend answers with the path, slow for even requests
    def respond(conn, n, head, body):
        path = head.split(" ")[1]
        if path.endswith(("0", "2", "4")):
            time.sleep(0.05)
        return ok(path.encode())
    be = raw(respond)
    px = procs.proxy([be.port])
    with Conn(px.port) as c:
        c.send(b"".join(f"GET /r{i} HTTP/1.1\r\nHost: t\r\n\r\n".encode()
                        for i in range(6)))
        assert [c.read().body for _ in range(6)] == \
            [f"/r{i}".encode() for i in range(6)]


@pytest.mark.parametrize("size", [0, 1, 65537, 1024 * 1024])
def test_post_body_echoed_intact(procs, size):
    be = procs.backend(extra=["--echo"])
    px = procs.proxy([be.port])
    body = random.Random(size).randbytes(size)
    with Conn(px.port) as c:
        r = c.request("POST", "/echo", body=body)
        assert r.status == 200
        assert hashlib.sha256(r.body).hexdigest() == \
            hashlib.sha256(body).hexdigest()
        # and the connection is still good for the next one
        assert c.request("GET", "/").status == 200


def test_chunked_request_body_rechunked_and_echoed(procs):
    be = procs.backend(extra=["--echo"])
    px = procs.proxy([be.port])
    rng = random.Random(7)
    body = rng.randbytes(1024 * 1024 + 13)
    with Conn(px.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n")
        i = 0
        while i < len(body):
            n = rng.randint(1, 70000)
            part = body[i:i + n]
            c.send(b"%x;ext=1\r\n" % len(part) + part + b"\r\n")
            i += n
        c.send(b"0\r\n\r\n")
        r = c.read()
        assert r.status == 200
        assert hashlib.sha256(r.body).digest() == \
            hashlib.sha256(body).digest()


def test_expect_100_continue(procs):
    be = procs.backend(extra=["--echo"])
    px = procs.proxy([be.port])
    with Conn(px.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
               b"Expect: 100-continue\r\n\r\n")
        interim = c.read()
        assert interim.status == 100
        c.send(b"hello")
        r = c.read()
        assert r.status == 200 and r.body == b"hello"


def test_head_204_304_framing_keeps_connections_usable(procs, raw):
    def respond(conn, n, head, body):
        path = head.split(" ")[1]
        if path == "/204":
            return b"HTTP/1.1 204 No Content\r\n\r\n"
        if path == "/304":
            # a 304 carries the Content-Length of the representation
            return b"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n"
        if head.startswith("HEAD"):
            return b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n"
        return ok(b"after")
    be = raw(respond)
    px = procs.proxy([be.port], extra=["--persistent"])
    with Conn(px.port, timeout=5) as c:
        for _ in range(2):
            assert c.request("GET", "/204").status == 204
            r = c.request("GET", "/304")
            assert r.status == 304 and r.header("content-length") == "100"
            r = c.request("HEAD", "/x")
            assert r.status == 200 and r.header("content-length") == "50"
            assert c.request("GET", "/after").body == b"after"
    assert be.accepts == 1  # one pooled connection served everything


def test_close_delimited_response_is_rechunked(procs, raw):
    be = raw(lambda c, n, h, b: b"HTTP/1.1 200 OK\r\nConnection: close\r\n"
             b"\r\nuntil the end", close_after=lambda c, n: True)
    px = procs.proxy([be.port])
    with Conn(px.port) as c:
        r = c.request()
        assert r.header("transfer-encoding") == "chunked"
        assert r.body == b"until the end"
        assert c.request().body == b"until the end"  # client stays alive


def test_hop_by_hop_stripped_and_forwarding_headers_added(procs, raw):
    be = raw(lambda c, n, h, b: ok())
    px = procs.proxy([be.port])
    with Conn(px.port) as c:
        c.send(b"GET /h HTTP/1.1\r\nHost: example.test\r\n"
               b"Connection: keep-alive, X-Secret, X-Forwarded-For\r\n"
               b"X-Secret: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n"
               b"Proxy-Connection: keep-alive\r\nUpgrade: websocket\r\n"
               b"Trailer: X-T\r\nX-Forwarded-For: 10.9.9.9\r\n"
               b"Via: 1.0 upstream-cache\r\nX-Keep: yes\r\n\r\n")
        assert c.read().status == 200
    head = be.heads[0].lower()
    for gone in ("x-secret", "keep-alive", "\r\nte:", "proxy-connection",
                 "upgrade", "trailer", "10.9.9.9", "\r\nconnection:"):
        assert gone not in head, gone
    assert "host: example.test" in head
    assert "x-keep: yes" in head
    assert "x-forwarded-for: 127.0.0.1" in head
    assert "x-forwarded-proto: http" in head
    assert "via: 1.0 upstream-cache, 1.1 lbproxy" in head


def test_client_xff_is_extended(procs, raw):
    be = raw(lambda c, n, h, b: ok())
    px = procs.proxy([be.port])
    get(px.port, headers=[("X-Forwarded-For", "192.0.2.1")])
    assert "x-forwarded-for: 192.0.2.1, 127.0.0.1" in be.heads[0].lower()


def test_response_hop_by_hop_stripped(procs, raw):
    be = raw(lambda c, n, h, b: ok(b"x", b"Connection: X-Drop\r\n"
                                   b"X-Drop: 1\r\nKeep-Alive: 5\r\n"))
    px = procs.proxy([be.port])
    r = get(px.port)
    assert r.header("x-drop") is None and r.header("keep-alive") is None
    assert r.header("via") == "1.1 lbproxy"


def test_502_when_every_backend_is_down(procs):
    dead = [free_port(), free_port()]
    px = procs.proxy(dead)
    with Conn(px.port) as c:
        r = c.request()
        assert r.status == 502
        assert c.request().status == 502  # connection still served


def test_connect_refused_goes_to_next_backend(procs):
    live = procs.backend(bid="L")
    px = procs.proxy([free_port(), live.port], extra=["--mode", "round-robin"])
    with Conn(px.port) as c:
        for _ in range(6):
            r = c.request()
            assert r.status == 200 and r.header("x-backend-id") == "L"


def test_504_on_hanging_backend(procs):
    be = procs.backend(extra=["--hang-rate", "1"])
    px = procs.proxy([be.port], extra=["--set", "timeouts.upstream_ms=300"])
    t0 = time.monotonic()
    r = get(px.port)
    assert r.status == 504
    assert 0.25 < time.monotonic() - t0 < 5


def test_stale_pooled_connection_is_retried_on_a_fresh_one(procs, raw):
    # the backend drops every connection silently at its second request:
    # the classic keep-alive race, seen from the proxy
    def respond(conn, n, head, body):
        return ok(b"fresh") if n == 1 else None
    be = raw(respond)
    px = procs.proxy([be.port], extra=["--persistent",
                                       "--set", "health.max_fails=0"])
    with Conn(px.port) as c:
        for _ in range(5):
            r = c.request()
            assert r.status == 200 and r.body == b"fresh"
    # requests 2..5 each met a pooled connection that died (4 lost heads)
    # and were retried on a fresh one
    assert be.accepts == 5 and len(be.heads) == 5 + 4


def test_pooled_connection_closed_by_backend_is_not_used(procs, raw):
    be = raw(lambda c, n, h, b: ok(b"x"), close_after=lambda c, n: True)
    px = procs.proxy([be.port], extra=["--persistent"])
    for _ in range(5):
        assert get(px.port).status == 200
    assert be.accepts == 5


def test_400_on_malformed_request_then_close(procs):
    be = procs.backend()
    px = procs.proxy([be.port])
    with Conn(px.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n")
        r = c.read()
        assert r.status == 400 and r.header("connection") == "close"
        assert c.closed_by_peer()


def test_431_on_oversized_head(procs):
    be = procs.backend()
    px = procs.proxy([be.port])
    with Conn(px.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 20000 +
               b"\r\n\r\n")
        r = c.read()
        assert r.status == 431
        assert c.closed_by_peer()


def test_431_on_too_many_headers(procs):
    be = procs.backend()
    px = procs.proxy([be.port], extra=["--set", "limits.max_headers=10"])
    hs = b"".join(b"X-%d: v\r\n" % i for i in range(20))
    with Conn(px.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n" + hs + b"\r\n")
        assert c.read().status == 431


def test_413_on_body_over_the_limit(procs):
    be = procs.backend(extra=["--echo"])
    px = procs.proxy([be.port], extra=["--set", "limits.max_body_bytes=1000"])
    with Conn(px.port) as c:
        c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n")
        r = c.read()
        assert r.status == 413
        assert c.closed_by_peer()
    assert backend_stats(be.port)["requests"] == 0


def test_non_persistent_opens_one_upstream_connection_per_request(procs):
    be = procs.backend()
    px = procs.proxy([be.port], extra=["--non-persistent"])
    before = backend_stats(be.port)["accepts"]
    with Conn(px.port) as c:
        for _ in range(20):
            assert c.request().status == 200
    st = backend_stats(be.port)
    # the /stats connection itself is the one extra accept
    assert st["requests"] == 20 and st["accepts"] - before - 1 == 20


CLK_TCK = os.sysconf("SC_CLK_TCK")


def tcp_sockets(port):
    """{(local, remote): (state, seconds left on its timer)} of the sockets
    with 127.0.0.1:port at either end; the state is hex, as in
    /proc/net/tcp."""
    out = {}
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            ports = {int(cols[1].rsplit(":", 1)[1], 16),
                     int(cols[2].rsplit(":", 1)[1], 16)}
            if port in ports:
                left = int(cols[5].split(":")[1], 16) / CLK_TCK
                out[(cols[1], cols[2])] = (cols[3], left)
    return out


CLOSING_STATES = {"04", "05", "08", "09", "0B"}  # FIN_WAIT1/2, CLOSE_WAIT,
# LAST_ACK, CLOSING: a close still under way


def settled_sockets(port, timeout=10.0):
    """tcp_sockets(port) once no close involving the port is under way."""
    deadline = time.monotonic() + timeout
    while True:
        st = tcp_sockets(port)
        if not CLOSING_STATES & {s for s, _ in st.values()} or \
                time.monotonic() > deadline:
            return st
        time.sleep(0.02)


def new_time_waits(port, before):
    """TIME_WAIT sockets on the port that were not in TIME_WAIT in the
    snapshot `before` (a settled_sockets result), or were and have started
    a fresh timer since: on loopback Linux lets a connect recycle an older
    TIME_WAIT with the same four-tuple (net.ipv4.tcp_tw_reuse=2), and a
    backend on a port number an earlier test used gets the same
    ephemeral-port sequence, so a plain count before and after can lose
    one.  A timer only runs down; a recycled socket's starts again."""
    n = 0
    for key, (state, left) in settled_sockets(port).items():
        was_state, was_left = before.get(key, (None, 0.0))
        if state == "06" and (was_state != "06" or left > was_left + 0.02):
            n += 1
    return n


@pytest.mark.parametrize("reset", [True, False])
def test_non_persistent_close_leaves_no_time_wait_with_reset(procs, reset):
    # After a complete response lbproxy ends a one-shot upstream connection
    # with an RST (pool.reset_on_close, the default): neither side keeps a
    # TIME_WAIT socket.  With the option off, the ordinary FIN close leaves
    # one per request on the backend's side.
    be = procs.backend()
    px = procs.proxy([be.port], extra=[
        "--non-persistent", "--set",
        f"pool.reset_on_close={'true' if reset else 'false'}"])
    before = settled_sockets(be.port)  # the readiness probe's own close
    with Conn(px.port) as c:
        for i in range(20):
            r = c.request(path=f"/n{i}")
            assert r.status == 200 and r.body
    tw = new_time_waits(be.port, before)
    if reset:
        assert tw == 0
    else:
        assert tw >= 20


def test_persistent_reuses_upstream_connections(procs):
    be = procs.backend()
    px = procs.proxy([be.port], extra=["--persistent"])
    before = backend_stats(be.port)["accepts"]
    with Conn(px.port) as c:
        for _ in range(20):
            assert c.request().status == 200
    st = backend_stats(be.port)
    assert st["requests"] == 20 and st["accepts"] - before - 1 == 1


def test_http10_client_keepalive_and_close(procs):
    be = procs.backend()
    px = procs.proxy([be.port])
    with Conn(px.port) as c:
        r = c.request(version="1.0", headers=[("Connection", "keep-alive")])
        assert r.status == 200 and r.version == "HTTP/1.0"
        assert r.header("connection") == "keep-alive"
        r = c.request(version="1.0")
        assert r.status == 200
        assert c.closed_by_peer()



def test_slow_reader_of_a_huge_response_keeps_memory_bounded(procs):
    be = procs.backend(extra=["--body-bytes", str(1 << 30)])
    px = procs.proxy([be.port])
    base = rss_kb(px.pid)
    with Conn(px.port, timeout=10) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.send(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        got = 0
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:  # read about 1 MB/s
            got += len(c.sock.recv(100000))
            time.sleep(0.1)
        grown = rss_kb(px.pid) - base
    assert got > 1_000_000
    assert grown < 4096, f"lbproxy grew by {grown} KiB for one slow reader"


def test_graceful_drain_finishes_in_flight_requests(procs):
    be = procs.backend(extra=["--profile", "fixed:600ms"])
    px = procs.proxy([be.port])
    results = []

    def one():
        try:
            results.append(get(px.port).status)
        except Exception as e:  # noqa: BLE001 - recorded as a failure
            results.append(repr(e))
    threads = [threading.Thread(target=one) for _ in range(5)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while backend_stats(be.port)["in_service"] < 5:
        assert time.monotonic() < deadline, "requests never reached backend"
        time.sleep(0.01)
    px.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(10)
    assert results == [200] * 5
    assert px.wait(10) == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", px.port), timeout=1)


def test_bad_flag_exits_2_with_a_message(procs):
    import subprocess
    from conftest import LBPROXY
    p = subprocess.run([LBPROXY, "--mode", "nonsense"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 2 and "mode" in p.stderr


def test_sighup_reload_swaps_backends_without_dropping_connections(procs,
                                                                   tmp_path):
    a = procs.backend(bid="A")
    b = procs.backend(bid="B")
    ini = tmp_path / "lb.ini"
    ini.write_text(f"[proxy]\nmode = round-robin\n[backends]\n"
                   f"A = 127.0.0.1:{a.port}\n")
    port = free_port()
    from conftest import LBPROXY
    px = procs.start([LBPROXY, "--config", str(ini), "--listen",
                      f"127.0.0.1:{port}", "--admin", "off", "--log", "off"],
                     port=port)
    with Conn(port) as c:
        assert c.request().header("x-backend-id") == "A"
        ini.write_text(f"[proxy]\nmode = round-robin\n[backends]\n"
                       f"B = 127.0.0.1:{b.port}\n")
        px.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while True:  # the same client connection sees the new set
            r = c.request()
            assert r.status == 200
            if r.header("x-backend-id") == "B":
                break
            assert time.monotonic() < deadline, "reload never took effect"
            time.sleep(0.02)
    # a broken file is refused and the running set stays
    ini.write_text("[proxy]\nmode = nonsense\n")
    px.send_signal(signal.SIGHUP)
    for _ in range(3):
        assert get(port).header("x-backend-id") == "B"
    assert px.poll() is None


def test_make_install_honours_prefix_and_destdir(tmp_path):
    import subprocess
    from conftest import ROOT
    dest = tmp_path / "root"
    # a plain build, whatever make (e.g. `make asan`) runs this test
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "SANITIZE")}
    subprocess.run(["make", "-s", "install", f"DESTDIR={dest}",
                    "PREFIX=/opt/lb"], cwd=ROOT, check=True, timeout=300,
                   capture_output=True, env=env)
    base = dest / "opt" / "lb"
    for f in ("bin/lbproxy", "bin/lbbackend", "etc/lbproxy/lbproxy.ini",
              "share/lbproxy/dashboard/index.html",
              "lib/systemd/system/lbproxy.service"):
        assert (base / f).exists(), f
    unit = (base / "lib/systemd/system/lbproxy.service").read_text()
    assert "/opt/lb/bin/lbproxy" in unit and "/usr/local" not in unit
    p = subprocess.run([str(base / "bin/lbproxy"), "--check", "--config",
                        str(base / "etc/lbproxy/lbproxy.ini")],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, p.stderr

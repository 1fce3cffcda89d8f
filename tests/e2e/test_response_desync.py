"""Response desync, end to end: a raw backend writes crafted bytes and no
client may ever read another response's bytes as its own.  Interim (1xx)
responses are relayed to HTTP/1.1 clients (dropped for HTTP/1.0) and the
final response follows intact, in one write, split or byte by byte; a
backend that sends more than the cap of 1xx gets a 502, not a stall.
Bytes a backend sends beyond its response (a body longer than its
Content-Length, a body after a HEAD, 204 or 304 answer) never reach the
next request on that connection, whether that request is the same client's
pipelined one or another client's arriving in the same loop round, at every
read boundary around each multiple of the buffer size.  A client that
pipelines requests and then half-closes gets every answer, in order."""
import os
import signal
import socket
import threading
import time

import pytest

from hardening_util import statuses
from lbtest import proc_state, read_until_close, wait_until
from httpc import Conn
from rawbackend import HeadServer, RawBackend, ok

# A valid response as a body: if a client ever parses it as a response, the
# proxy let a backend's bytes split the stream.
SPLIT = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!"
HTTP_MAX_INTERIM = 32  # include/http.h

# ---- interim responses ----


def interim_bytes(n, code):
    one = (f"HTTP/1.1 {code} Early Hints\r\n"
           "Link: </style.css>; rel=preload\r\n\r\n").encode()
    if code == 100:
        one = b"HTTP/1.1 100 Continue\r\n\r\n"
    return one * n


def final_bytes():
    return (b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(SPLIT)).encode()
            + b"\r\n\r\n" + SPLIT)


def interim_server(n, code, split):
    """Answers each request with n interim responses, then the final one,
    written as one piece, two pieces, or a byte at a time."""

    def handle(conn, head):
        data = interim_bytes(n, code) + final_bytes()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if split == "one":
            conn.sendall(data)
        elif split == "two":
            cut = len(interim_bytes(n, code)) // 2 + 3
            conn.sendall(data[:cut])
            time.sleep(0.02)
            conn.sendall(data[cut:])
        else:
            for i in range(len(data)):
                conn.sendall(data[i:i + 1])
                time.sleep(0.0005)
        time.sleep(0.3)  # keep the connection open: no EOF to lean on

    return HeadServer(handle)


@pytest.mark.parametrize("code", [100, 103])
@pytest.mark.parametrize("n,split", [(1, "one"), (1, "two"), (1, "bytes"),
                                     (2, "one"), (2, "two"), (2, "bytes"),
                                     (200, "one"), (200, "two")])
@pytest.mark.parametrize("version", ["1.1", "1.0"])
def test_interim_responses_then_final(procs, code, n, split, version):
    srv = interim_server(n, code, split)
    try:
        px = procs.proxy([srv.port], extra=[
            "--mode", "round-robin", "--persistent",
            "--set", "timeouts.upstream_ms=5000"])
        t0 = time.monotonic()
        with Conn(px.port, timeout=4) as c:
            c.send(f"GET /x HTTP/{version}\r\nHost: t\r\n\r\n".encode())
            got = []
            while True:
                r = c.read()
                assert r is not None, "connection closed without a response"
                got.append(r)
                if r.status >= 200:
                    break
        elapsed = time.monotonic() - t0
        final = got[-1]
        assert elapsed < 3, f"the final response took {elapsed:.1f} s"
        if n > HTTP_MAX_INTERIM:
            assert final.status == 502
        else:
            assert final.status == 200
            assert final.body == SPLIT
            assert final.header("content-length") == str(len(SPLIT))
        interims = got[:-1]
        if version == "1.0":
            assert interims == [], "a 1xx reached an HTTP/1.0 client"
        else:
            assert len(interims) == min(n, HTTP_MAX_INTERIM)
            for r in interims:
                assert r.status == code
                assert r.header("content-length") is None
                if code == 103:
                    assert r.header("link") == "</style.css>; rel=preload"
    finally:
        srv.close()


def test_interim_then_another_request_on_the_connection(procs):
    """After a relayed 1xx and its final response, the client connection
    and the pooled upstream connection both carry the next request."""
    def respond(conn_no, req_no, head, body):
        return interim_bytes(1, 103) + ok(f"r{req_no}".encode())

    be = RawBackend(respond)
    try:
        px = procs.proxy([be.port], extra=["--mode", "round-robin",
                                           "--persistent"])
        with Conn(px.port, timeout=4) as c:
            for i in (1, 2, 3):
                c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                assert c.read().status == 103
                r = c.read()
                assert (r.status, r.body) == (200, f"r{i}".encode())
        assert be.accepts == 1
    finally:
        be.close()


def test_101_to_a_plain_request_is_a_502(procs):
    srv = HeadServer(lambda conn, head: conn.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n"
        b"Connection: upgrade\r\n\r\n" + SPLIT))
    try:
        px = procs.proxy([srv.port], extra=["--mode", "round-robin"])
        with Conn(px.port, timeout=4) as c:
            r = c.request(path="/")
            assert r.status == 502
    finally:
        srv.close()


# ---- bytes after the response ----

BUF = 16384 + 2048  # default limits.buffer_bytes + the framing reserve


class GatedBackend(RawBackend):
    """Answers /ok at once and /case/... only once the test opens the gate,
    so the test can stop the proxy while the crafted bytes arrive."""

    def __init__(self):
        self.arrived = threading.Event()
        self.gate = threading.Event()
        super().__init__(self.answer)

    def answer(self, conn_no, req_no, head, body):
        line = head.split("\r\n", 1)[0]
        method, path = line.split(" ")[:2]
        if path == "/ok":
            return ok(b"ok")
        kind, size = path.split("/")[2:4]
        self.arrived.set()
        self.gate.wait(5)
        return crafted(method, kind, int(size))


def crafted(method, kind, size):
    """A response whose bytes up to its end number `size`, then bytes that
    belong to no request."""
    if kind == "cl":  # a body longer than its Content-Length
        for n in range(size, 0, -1):
            resp = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n
            if len(resp) + n == size:
                return resp + b"b" * n + SPLIT
        raise ValueError(size)
    # HEAD, 204 and 304: the head ends at `size`, padded with a hop-by-hop
    # header (dropped on the way, so the rebuilt head fits), and a body
    # follows that the status forbids
    status = {"head": b"200 OK", "204": b"204 No Content",
              "304": b"304 Not Modified"}[kind]
    head = (b"HTTP/1.1 " + status + b"\r\nContent-Length: 5\r\n"
            b"Keep-Alive: ")
    pad = size - len(head) - 4
    resp = head + b"p" * pad + b"\r\n\r\n"
    assert len(resp) == size
    return resp + SPLIT[-5:] if kind == "head" else resp + SPLIT


def stop(p):
    """SIGSTOP, and wait until it has taken effect (it is delivered
    asynchronously: a process still running could handle what the test
    sends next before stopping)."""
    os.kill(p.pid, signal.SIGSTOP)
    wait_until(lambda: proc_state(p.pid) == "T", timeout=5, step=0.001,
               what="the proxy stopped")


def cont(p):
    os.kill(p.pid, signal.SIGCONT)


def run_case(px, be, method, kind, size, other_client):
    be.arrived.clear()
    be.gate.clear()
    a = Conn(px.port, timeout=5)
    b = Conn(px.port, timeout=5) if other_client else None
    try:
        req = f"{method} /case/{kind}/{size} HTTP/1.1\r\nHost: t\r\n\r\n"
        nxt = b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n"
        a.send(req.encode() + (b"" if other_client else nxt))
        assert be.arrived.wait(5)
        stop(px)  # the crafted bytes and the next request meet in one round
        try:
            be.gate.set()
            time.sleep(0.05)
            if other_client:
                b.send(nxt)
                time.sleep(0.05)
        finally:
            cont(px)
        r1 = a.read(method)
        if kind == "cl":
            assert r1.status == 200 and set(r1.body) == {ord("b")}
        else:
            assert r1.status == {"head": 200, "204": 204, "304": 304}[kind]
        r2 = (b or a).read()
        assert r2 is not None and r2.body == b"ok", \
            f"{kind} {size}: the next request got {r2 and r2.body!r}"
    finally:
        a.close()
        if b:
            b.close()


@pytest.fixture
def gated(procs):
    be = GatedBackend()
    px = procs.proxy([be.port], extra=["--mode", "round-robin",
                                       "--persistent"])
    try:
        yield px, be
    finally:
        cont(px)
        be.close()


def boundary_sizes(multiples):
    return [k * BUF + d for k in multiples for d in (-1, 0, 1)]


@pytest.mark.parametrize("size", [300] + boundary_sizes((1, 2, 3, 4)))
def test_body_longer_than_content_length_same_client(gated, size):
    run_case(*gated, "GET", "cl", size, other_client=False)


@pytest.mark.parametrize("size", [300] + boundary_sizes((1, 2, 3, 4)))
def test_body_longer_than_content_length_other_client(gated, size):
    run_case(*gated, "GET", "cl", size, other_client=True)


# A head cannot pass the buffer, so its end meets a read boundary only
# below and at 1x the buffer (a byte more is a 502, checked elsewhere).
@pytest.mark.parametrize("kind,method", [("head", "HEAD"), ("204", "GET"),
                                         ("304", "GET")])
@pytest.mark.parametrize("size", [200, BUF - 2, BUF - 1, BUF])
@pytest.mark.parametrize("other_client", [False, True])
def test_body_after_bodiless_answer(gated, kind, method, size, other_client):
    run_case(*gated, method, kind, size, other_client)


def junk_on_idle(conn):
    """Sends bytes nobody asked for on a connection the proxy holds idle,
    then answers "reused" to any request that still comes on it (it would
    get the junk as its response)."""
    conn.sendall(SPLIT)
    conn.settimeout(1)
    try:
        if conn.recv(4096):
            conn.sendall(ok(b"reused"))
    except OSError:
        pass


def test_bytes_arriving_on_an_idle_pooled_connection_close_it(procs):
    """Stray bytes that come later, while the connection sits in the pool,
    close it: the next request goes out on a new connection."""
    def handle(conn, head):
        conn.sendall(ok(b"ok"))
        time.sleep(0.1)  # the connection is idle in the pool then
        junk_on_idle(conn)

    srv = HeadServer(handle)
    try:
        px = procs.proxy([srv.port], extra=["--mode", "round-robin",
                                            "--persistent"])
        with Conn(px.port, timeout=4) as c:
            assert c.request(path="/").body == b"ok"
            time.sleep(0.3)
            r = c.request(path="/")
            assert (r.status, r.body) == (200, b"ok")
        assert srv.accepts == 2
    finally:
        srv.close()


def test_stray_bytes_and_a_request_in_one_round(procs):
    """Stray bytes on an idle pooled connection and a request that would
    take that connection become ready in one dispatch round, the request
    first (the proxy is stopped while both arrive): the take from the pool
    sees that the connection's event is still to come and asks the
    socket, so the junk is never taken for the response and the request
    goes out on a new connection.  (A take with no event pending for the
    connection asks no syscall: loop_io_maybe_ready.)"""
    send_junk = threading.Event()

    def handle(conn, head):
        if conn_count[0] == 0:
            conn_count[0] += 1
            conn.sendall(ok(b"ok"))
            send_junk.wait(5)
            junk_on_idle(conn)
        else:
            conn.sendall(ok(b"fresh"))

    conn_count = [0]
    srv = HeadServer(handle)
    try:
        px = procs.proxy([srv.port], extra=["--mode", "round-robin",
                                            "--persistent"])
        with Conn(px.port, timeout=4) as c:
            assert c.request(path="/").body == b"ok"
            time.sleep(0.2)  # pooled, several rounds ago
            stop(px)
            try:
                c.send(b"GET /two HTTP/1.1\r\nHost: t\r\n\r\n")
                time.sleep(0.05)
                send_junk.set()
                time.sleep(0.05)
            finally:
                cont(px)
            r = c.read()
            assert (r.status, r.body) == (200, b"fresh"), r.body
        assert srv.accepts == 2
    finally:
        send_junk.set()
        srv.close()


# ---- pipelining and half-close ----


@pytest.mark.parametrize("n", [1, 3, 8])
def test_pipelined_requests_then_half_close(procs, n):
    be = procs.backend(bid="A")
    px = procs.proxy([be.port], extra=["--mode", "round-robin",
                                       "--persistent"])
    with socket.create_connection(("127.0.0.1", px.port), timeout=5) as s:
        s.sendall(b"".join(f"GET /{i} HTTP/1.1\r\nHost: t\r\n\r\n".encode()
                           for i in range(n)))
        s.shutdown(socket.SHUT_WR)
        data, closed = read_until_close(s, timeout=5)
    assert statuses(data) == [200] * n
    assert closed


def test_half_close_after_a_partial_request(procs):
    """Complete requests before the FIN are answered; the incomplete one
    after them is dropped with a clean close."""
    be = procs.backend(bid="A")
    px = procs.proxy([be.port], extra=["--mode", "round-robin",
                                       "--persistent"])
    with socket.create_connection(("127.0.0.1", px.port), timeout=5) as s:
        s.sendall(b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"GET /2 HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"GET /3 HTTP/1.1\r\nHo")
        s.shutdown(socket.SHUT_WR)
        t0 = time.monotonic()
        data, closed = read_until_close(s, timeout=5)
    assert statuses(data) == [200, 200]
    assert closed and time.monotonic() - t0 < 2


def test_half_close_with_a_body_request_in_the_pipeline(procs):
    be = procs.backend(bid="A")
    px = procs.proxy([be.port], extra=["--mode", "round-robin",
                                       "--persistent"])
    with socket.create_connection(("127.0.0.1", px.port), timeout=5) as s:
        s.sendall(b"POST /1 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\n"
                  b"abcGET /2 HTTP/1.1\r\nHost: t\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        data, closed = read_until_close(s, timeout=5)
    assert statuses(data) == [200, 200]
    assert closed

"""End-to-end tests of ./lbbackend, the latency-emulating backend.

They prove that each latency profile produces its distribution, that the
worker limit queues requests FIFO, that phases switch on time, that each
fault happens at its rate, that keep-alive, pipelining, echo and the
counters behave as the proxy's own tests expect, and that the server
survives bad input and descriptor exhaustion.  Every backend runs on a free
loopback port with a fixed --seed, so the sampled values are reproducible;
wall-clock checks only assert bounds with wide margins.
"""
import hashlib
import json
import math
import os
import random
import resource
import selectors
import signal
import socket
import statistics
import subprocess
import time

import pytest

from conftest import LBBACKEND, ROOT
from lbtest import free_port


# ---------------------------------------------------------------- helpers

@pytest.fixture(autouse=True)
def graceful_exit(procs):
    """Every backend a test left running must stop cleanly on SIGTERM (exit
    0; under the sanitizer build this also runs the leak check)."""
    yield
    for p in procs.procs:
        if p.poll() is None:
            rc = procs.stop(p)
            with open(p.logfile, errors="replace") as f:
                assert rc == 0, f.read()


class Response:
    def __init__(self, status, headers, body, raw_head):
        self.status = status
        self.headers = headers
        self.body = body
        self.raw_head = raw_head

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    @property
    def service_us(self):
        return int(self.header("x-service-us"))

    @property
    def queue_us(self):
        return int(self.header("x-queue-us"))


class Client:
    """A raw HTTP/1.1 client on one connection: sends bytes, parses
    responses (Content-Length or chunked), so pipelining stays visible."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        b = self.sock.recv(262144)
        if not b:
            raise EOFError("connection closed")
        self.buf += b

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, head_request=False):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        raw_head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw_head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for ln in lines[1:]:
            k, v = ln.split(b":", 1)
            headers[k.decode().strip().lower()] = v.decode().strip()
        body = b""
        if head_request:
            pass
        elif "content-length" in headers:
            body = self._exact(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            parts = []
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    self._line()
                    break
                parts.append(self._exact(size))
                self._exact(2)
            body = b"".join(parts)
        return Response(status, headers, body, raw_head)

    def request(self, method="GET", path="/", headers=(), body=b""):
        self.send(build(method, path, headers, body))
        return self.read_response(head_request=(method == "HEAD"))

    def at_eof(self, timeout=5.0):
        """True when the server closed (EOF or reset) within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                b = self.sock.recv(65536)
                if not b:
                    return True
                self.buf += b
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False


def build(method="GET", path="/", headers=(), body=b""):
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    for k, v in headers:
        head += f"{k}: {v}\r\n"
    if body and not any(k.lower() in ("content-length", "transfer-encoding")
                        for k, _ in headers):
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def stats(port):
    with Client(port) as c:
        r = c.request("GET", "/stats")
        assert r.status == 200
        return json.loads(r.body)


class StatsConn(Client):
    """One persistent connection for /stats, so polling adds no accepts."""

    def get(self):
        r = self.request("GET", "/stats")
        assert r.status == 200
        return json.loads(r.body)

    def wait_for(self, pred, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            s = self.get()
            if pred(s):
                return s
            if time.monotonic() > deadline:
                raise AssertionError(f"stats never satisfied: {s}")
            time.sleep(0.01)


def backend(procs, *extra, seed=1):
    args = ["--seed", str(seed), *extra] if seed is not None else list(extra)
    return procs.backend(bid="T1", extra=args)


def concurrent_requests(port, n, conns, path="/"):
    """n GET requests spread over `conns` keep-alive connections that run at
    once; returns [(response, wall seconds)] in completion order."""
    sel = selectors.DefaultSelector()
    remaining = n
    results = []
    clients = []
    for _ in range(min(conns, n)):
        c = Client(port)
        c.sock.setblocking(False)
        clients.append(c)
    req = build("GET", path)

    def start(c):
        nonlocal remaining
        remaining -= 1
        c.t0 = time.monotonic()
        c.sock.setblocking(True)
        c.sock.sendall(req)
        c.sock.setblocking(False)
        sel.register(c.sock, selectors.EVENT_READ, c)

    for c in clients:
        start(c)
    deadline = time.monotonic() + 60
    while len(results) < n:
        assert time.monotonic() < deadline, "responses did not come"
        for key, _ in sel.select(timeout=1.0):
            c = key.data
            b = c.sock.recv(65536)
            assert b, "server closed a keep-alive connection"
            c.buf += b
            if b"\r\n\r\n" not in c.buf:
                continue
            head, rest = c.buf.split(b"\r\n\r\n", 1)
            clen = int([ln.split(b":", 1)[1] for ln in head.split(b"\r\n")
                        if ln.lower().startswith(b"content-length:")][0])
            if len(rest) < clen:
                continue
            c.sock.setblocking(True)
            c.buf = c.buf
            r = c.read_response()
            c.sock.setblocking(False)
            results.append((r, time.monotonic() - c.t0))
            sel.unregister(c.sock)
            if remaining > 0:
                start(c)
    for c in clients:
        c.close()
    sel.close()
    return results


def binomial_ok(count, n, p, k=5.0):
    sd = math.sqrt(n * p * (1 - p))
    return abs(count - n * p) <= k * sd + 1


# ------------------------------------------------------------- basics

def test_default_answer_carries_id_and_timing_headers(procs):
    b = backend(procs)
    with Client(b.port) as c:
        r = c.request()
        assert r.status == 200
        assert r.header("x-backend-id") == "T1"
        assert b"T1" in r.body
        assert r.service_us == 0 and r.queue_us == 0
        h = c.request("HEAD", "/")
        assert h.status == 200 and h.body == b""
        assert int(h.header("content-length")) == len(r.body)
        assert c.request().status == 200  # still in sync after HEAD


def test_body_bytes_sets_exact_body_size(procs):
    b = backend(procs, "--body-bytes", "100000")
    with Client(b.port) as c:
        c.send(build() * 3)  # large bodies, pipelined
        for _ in range(3):
            r = c.read_response()
            assert len(r.body) == 100000
    b0 = backend(procs, "--body-bytes", "0")
    with Client(b0.port) as c:
        r = c.request()
        assert r.status == 200 and r.body == b""


def test_health_is_immediate_and_not_counted(procs):
    b = backend(procs, "--profile", "fixed:2s", "--workers", "1")
    slow = Client(b.port)
    slow.send(build())  # occupies the only worker for 2 s
    with StatsConn(b.port) as st:
        st.wait_for(lambda s: s["in_service"] == 1)
        with Client(b.port) as c:
            t0 = time.monotonic()
            r = c.request("GET", "/health")
            assert r.status == 200 and r.header("x-backend-id") == "T1"
            assert time.monotonic() - t0 < 1.0  # not queued behind 2 s
        s = st.get()
        assert s["requests"] == 1 and s["health_checks"] == 1
    slow.close()


def test_fail_health_answers_503(procs):
    b = backend(procs, "--fail-health")
    with Client(b.port) as c:
        assert c.request("GET", "/health").status == 503
        assert c.request("GET", "/").status == 200


# ------------------------------------------------------------- profiles

PROFILES = [
    # (profile, mean us, variance us^2)
    ("fixed:20ms", 20000, 0),
    ("uniform:5ms-15ms", 10000, 10000 ** 2 / 12),
    ("exp:10ms+2ms", 12000, 10000 ** 2),
    ("lognormal:8ms,0.5", 8000 * math.exp(0.125),
     (math.exp(0.25) - 1) * 8000 ** 2 * math.exp(0.25)),
    ("bimodal:2ms,30ms,0.2", 0.8 * 2000 + 0.2 * 30000,
     0.2 * 0.8 * 28000 ** 2),
]


@pytest.mark.parametrize("profile,mean,var", PROFILES,
                         ids=[p[0] for p in PROFILES])
def test_profile_distribution(procs, profile, mean, var):
    n = 400
    b = backend(procs, "--profile", profile, seed=7)
    res = concurrent_requests(b.port, n, conns=40)
    samples = [r.service_us for r, _ in res]
    walls = [w for _, w in res]
    # The sampled service times follow the profile: 5 standard errors.
    tol = 5 * math.sqrt(var / n) + 1
    assert abs(statistics.mean(samples) - mean) <= tol, \
        (statistics.mean(samples), mean, tol)
    # Each answer left no earlier than its service time (timer precision
    # is 1 ms, rounded up), and the overhead stays bounded.
    for (r, w) in res:
        assert w >= r.service_us / 1e6 - 0.0005, (w, r.service_us)
    assert statistics.mean(walls) >= mean / 1e6 - tol / 1e6
    assert statistics.mean(walls) <= mean / 1e6 + 0.05
    if profile.startswith("lognormal"):
        below = sum(s < 8000 for s in samples)
        assert binomial_ok(below, n, 0.5)
    if profile.startswith("bimodal"):
        assert set(samples) == {2000, 30000}
        assert binomial_ok(samples.count(30000), n, 0.2)
    if profile.startswith("uniform"):
        assert all(5000 <= s <= 15000 for s in samples)


def test_same_seed_same_samples(procs):
    runs = []
    for _ in range(2):
        b = backend(procs, "--profile", "exp:1ms", seed=42)
        with Client(b.port) as c:
            runs.append([c.request().service_us for _ in range(30)])
        procs.stop(b)
    assert runs[0] == runs[1]
    assert len(set(runs[0])) > 20


# ------------------------------------------------------------- workers

def test_worker_limit_queues_the_extra_request(procs):
    """K+1 concurrent requests on K workers: the last waits a full
    service time in the queue, then needs one more."""
    service = 0.3
    b = backend(procs, "--profile", "fixed:300ms", "--workers", "2")
    res = concurrent_requests(b.port, 3, conns=3)
    walls = sorted(w for _, w in res)
    queues = sorted(r.queue_us for r, _ in res)
    assert queues[:2] == [0, 0]
    # Margins cover the time between the three sends.
    assert queues[2] >= service * 1e6 - 50000
    assert walls[2] >= 2 * service - 0.05
    # One worker sat idle while the third request was served: 300 ms of
    # idle worker time, plus both workers' since it ended.
    idle = stats(b.port)["idle_worker_us"] / 1e6
    assert service - 0.05 <= idle <= service + 0.15
    # unlimited workers: all three in parallel
    b0 = backend(procs, "--profile", "fixed:300ms", "--workers", "0")
    res = concurrent_requests(b0.port, 3, conns=3)
    assert all(r.queue_us == 0 for r, _ in res)
    assert max(w for _, w in res) < 2 * service - 0.05


def test_queue_is_fifo(procs):
    b = backend(procs, "--profile", "fixed:100ms", "--workers", "1")
    clients = []
    with StatsConn(b.port) as st:
        for i in range(4):
            c = Client(b.port)
            c.send(build("GET", f"/q{i}"))
            clients.append(c)
            # the next one is sent only once this one is in the server
            st.wait_for(lambda s, i=i: s["requests"] == i + 1)
        s = st.get()
        assert s["max_queued"] >= 2
    done = []
    sel = selectors.DefaultSelector()
    for i, c in enumerate(clients):
        sel.register(c.sock, selectors.EVENT_READ, i)
    deadline = time.monotonic() + 10
    while len(done) < 4 and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            if key.data not in done:
                done.append(key.data)
                sel.unregister(key.fileobj)
    sel.close()
    assert done == [0, 1, 2, 3]
    queues = [c.read_response().queue_us for c in clients]
    assert queues == sorted(queues) and queues[3] >= 150000
    for c in clients:
        c.close()


# ------------------------------------------------------------- phases

def test_phases_switch_on_time(procs):
    b = backend(procs, "--profile", "fixed:1ms",
                "--phase", "1s:fixed:30ms", "--phase", "2s:fixed:3ms")
    seen = {}
    with Client(b.port) as c:
        # Locate the backend's start on our clock through its uptime: the
        # stats request was handled between t_send and t_recv.
        t_send = time.monotonic()
        up = json.loads(c.request("GET", "/stats").body)["uptime_us"] / 1e6
        t_recv = time.monotonic()
        start_lo, start_hi = t_send - up, t_recv - up
        while time.monotonic() < start_hi + 2.5:
            sent = time.monotonic()
            r = c.request()
            got = time.monotonic()
            # Windows that hold whatever the scheduling delays.
            if got < start_lo + 1.0:
                assert r.service_us == 1000
                seen[0] = True
            elif sent > start_hi + 1.0 and got < start_lo + 2.0:
                assert r.service_us == 30000
                seen[1] = True
            elif sent > start_hi + 2.0:
                assert r.service_us == 3000
                seen[2] = True
            else:
                assert r.service_us in (1000, 30000, 3000)
        assert seen.get(1) and seen.get(2), seen
        if start_hi - start_lo < 0.2 and t_recv < start_lo + 0.8:
            assert seen.get(0), seen
        s = c.request("GET", "/stats")
        s = json.loads(s.body)
        assert s["phase"] == 2 and s["profile"] == "fixed:3ms"


# ------------------------------------------------------------- faults

def test_error_rate(procs):
    n, p = 400, 0.3
    b = backend(procs, "--error-rate", str(p), seed=3)
    errors = 0
    with Client(b.port) as c:
        for _ in range(n):
            r = c.request()
            assert r.status in (200, 500)
            assert r.header("x-backend-id") == "T1"
            errors += r.status == 500
    assert binomial_ok(errors, n, p), errors
    s = stats(b.port)
    assert s["errors"] == errors and s["requests"] == n


def test_reset_rate(procs):
    n, p = 300, 0.3
    b = backend(procs, "--reset-rate", str(p), seed=4)
    resets = 0
    for _ in range(n):
        with Client(b.port) as c:
            c.send(build())
            try:
                r = c.read_response()
                assert r.status == 200
            except (ConnectionResetError, EOFError):
                resets += 1
    assert binomial_ok(resets, n, p), resets
    s = stats(b.port)
    assert s["resets"] == resets and s["requests"] == n


def test_reset_is_an_rst(procs):
    b = backend(procs, "--reset-rate", "1")
    with Client(b.port) as c:
        c.send(build())
        with pytest.raises(ConnectionResetError):
            c.sock.recv(100)
            c.sock.recv(100)


def test_hang_rate(procs):
    n, p = 200, 0.3
    b = backend(procs, "--hang-rate", str(p), seed=5)
    clients = [Client(b.port) for _ in range(n)]
    for c in clients:
        c.send(build())
    with StatsConn(b.port) as st:
        s = st.wait_for(lambda s: s["requests"] == n)
        hangs = s["hangs"]
        assert binomial_ok(hangs, n, p), hangs
        sel = selectors.DefaultSelector()
        for c in clients:
            sel.register(c.sock, selectors.EVENT_READ, c)
        answered = set()
        deadline = time.monotonic() + 10
        while len(answered) < n - hangs and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                c = key.data
                r = c.read_response()
                assert r.status == 200
                answered.add(c)
                sel.unregister(c.sock)
        assert len(answered) == n - hangs
        # the rest stay open and silent
        assert sel.select(timeout=0.3) == []
        sel.close()
        for c in clients:
            c.close()
        st.wait_for(lambda s: s["open_connections"] == 1)


def test_fault_rates_add_up(procs):
    n = 600
    b = backend(procs, "--error-rate", "0.2", "--reset-rate", "0.1",
                "--hang-rate", "0.1", seed=9)
    clients = [Client(b.port) for _ in range(n)]
    for c in clients:
        c.send(build())
    with StatsConn(b.port) as st:
        s = st.wait_for(lambda s: s["requests"] == n)
    for key, p in (("errors", 0.2), ("resets", 0.1), ("hangs", 0.1)):
        assert binomial_ok(s[key], n, p), (key, s[key])
    assert s["responses"] == n - s["errors"] - s["resets"] - s["hangs"]
    for c in clients:
        c.close()


# ------------------------------------------------------- keep-alive, pipelining

def test_pipelined_requests_answer_in_order(procs):
    b = backend(procs, "--profile", "uniform:0ms-5ms")
    n = 20
    st = StatsConn(b.port)
    before = st.get()
    with Client(b.port) as c:
        reqs = b""
        for i in range(n):
            reqs += build("POST", "/echo", body=f"req-{i}".encode())
            if i % 5 == 2:
                reqs += build("GET", "/health")
        c.send(reqs)
        for i in range(n):
            r = c.read_response()
            assert r.body == f"req-{i}".encode()
            if i % 5 == 2:
                assert c.read_response().body == b"ok\n"
        # services differ, yet answers kept request order
    s = st.get()
    st.close()
    assert s["accepts"] - before["accepts"] == 1
    assert s["requests"] == n


def test_requests_split_at_random_points(procs):
    """Heads, chunk sizes and bodies cut anywhere across reads still parse,
    and the answers come back in order."""
    b = backend(procs)
    rnd = random.Random(3)
    wire, want = b"", []
    for i in range(60):
        body = rnd.randbytes(rnd.randrange(0, 3000))
        if i % 3 == 0:
            wire += build("POST", "/echo", [("Transfer-Encoding", "chunked")])
            pos = 0
            while pos < len(body):
                n = rnd.randrange(1, 700)
                wire += b"%x\r\n%s\r\n" % (len(body[pos:pos + n]),
                                            body[pos:pos + n])
                pos += n
            wire += b"0\r\n\r\n"
        else:
            wire += build("POST", f"/echo?i={i}", [("X-Pad", "p" * i)],
                          body)
        want.append(body)
    with Client(b.port) as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pos = 0
        while pos < len(wire):
            n = rnd.choice([1, 2, 5, 17, 100, 1500, 9000])
            c.send(wire[pos:pos + n])
            pos += n
            if rnd.random() < 0.05:
                time.sleep(0.001)  # let some pieces arrive alone
        for body in want:
            assert c.read_response().body == body


def test_keep_alive_and_connection_close(procs):
    b = backend(procs)
    st = StatsConn(b.port)
    before = st.get()["accepts"]
    with Client(b.port) as c:
        for _ in range(50):
            assert c.request().status == 200
        r = c.request("GET", "/", headers=[("Connection", "close")])
        assert r.header("connection") == "close"
        assert c.at_eof()
    with Client(b.port) as c:  # HTTP/1.0 closes unless asked to keep alive
        c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_response()
        assert r.header("connection") == "keep-alive"
        c.send(b"GET / HTTP/1.0\r\n\r\n")
        assert c.read_response().status == 200
        assert c.at_eof()
    assert st.get()["accepts"] - before == 2
    st.close()


def test_half_closed_client_still_gets_its_answers(procs):
    b = backend(procs, "--profile", "fixed:20ms")
    with Client(b.port) as c:
        c.send(build() * 3)
        c.sock.shutdown(socket.SHUT_WR)
        for _ in range(3):
            assert c.read_response().status == 200
        assert c.at_eof()


# ------------------------------------------------------------- echo

def test_echo_1mb_body_exact(procs):
    b = backend(procs, "--profile", "fixed:5ms")
    body = random.Random(1).randbytes(1 << 20)
    with Client(b.port) as c:
        for _ in range(2):  # twice on one connection
            r = c.request("POST", "/echo", body=body)
            assert r.status == 200
            assert len(r.body) == len(body)
            assert hashlib.sha256(r.body).digest() == \
                hashlib.sha256(body).digest()


def test_echo_chunked_body_exact(procs):
    b = backend(procs)
    rnd = random.Random(2)
    chunks = [rnd.randbytes(rnd.choice([1, 7, 100, 4096, 65536, 200000]))
              for _ in range(25)]
    wire = b"".join(b"%x\r\n%s\r\n" % (len(ch), ch) for ch in chunks) + \
        b"0\r\n\r\n"
    with Client(b.port) as c:
        c.send(build("POST", "/echo",
                     headers=[("Transfer-Encoding", "chunked")]) + wire)
        r = c.read_response()
        assert r.body == b"".join(chunks)
        assert c.request().status == 200  # framing kept after the chunks


def test_echo_flag_echoes_every_path_and_limits_size(procs):
    b = backend(procs, "--echo", "--max-body", "1000")
    with Client(b.port) as c:
        assert c.request("PUT", "/any/path", body=b"x" * 1000).body == \
            b"x" * 1000
        assert c.request("GET", "/nobody").body == b""
        r = c.request("POST", "/big", body=b"y" * 1001)
        assert r.status == 413
        assert c.at_eof()


def test_expect_100_continue(procs):
    b = backend(procs)
    with Client(b.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
               b"Content-Length: 5\r\n\r\n")
        assert c.read_response().status == 100  # before the body is sent
        c.send(b"hello")
        r = c.read_response()
        assert r.status == 200 and r.body == b"hello"


def test_echo_headers_returns_the_head_verbatim(procs):
    b = backend(procs)
    head = (b"POST /echo-headers?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"X-Forwarded-For: 10.0.0.1\r\nweird-Case: v a l\r\n"
            b"Content-Length: 5\r\n\r\n")
    with Client(b.port) as c:
        c.send(head + b"hello")
        r = c.read_response()
        assert r.body == head
        assert r.header("x-request-body-bytes") == "5"
        # the header form works on any path
        r = c.request("GET", "/some", headers=[("X-Echo-Headers", "1")])
        assert r.body.startswith(b"GET /some HTTP/1.1\r\n")
        assert b"X-Echo-Headers: 1\r\n" in r.body


def test_log_requests_writes_raw_heads(procs, tmp_path):
    log = tmp_path / "requests.jsonl"
    b = backend(procs, "--log-requests", str(log))
    head = b"POST /a HTTP/1.1\r\nHost: h\r\nX-Odd: \xff\t\"q\"\r\n" \
        b"Content-Length: 10\r\n\r\n"
    with Client(b.port) as c:
        c.send(head + b"0123456789")
        assert c.read_response().status == 200
    with Client(b.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        assert c.read_response().status == 400
    lines = [json.loads(ln) for ln in log.read_text().splitlines()]
    assert lines[0]["head"].encode("latin-1") == head
    assert lines[0]["body_bytes"] == 10
    assert "error" in lines[1]


# ------------------------------------------------------------- counters

def test_accepts_counts_connections(procs):
    b = backend(procs)
    with StatsConn(b.port) as st:
        before = st.get()
        for _ in range(25):
            with Client(b.port) as c:
                c.request()
        with Client(b.port) as c:  # one connection, several requests
            for _ in range(5):
                c.request()
            c.request("GET", "/health")
        s = st.get()
    assert s["accepts"] - before["accepts"] == 26
    assert s["requests"] - before["requests"] == 30
    assert s["health_checks"] == 1


# ------------------------------------------------------------- robustness

@pytest.mark.parametrize("raw", [
    b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\nab",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET / HTTP/1.1\nHost: x\n\n",
    b"\x00\x01\x02 garbage\r\n\r\n",
], ids=["no-colon", "cl-and-te", "cl-list", "bad-chunk", "bare-lf", "binary"])
def test_malformed_request_gets_400_and_close(procs, raw):
    b = backend(procs)
    with Client(b.port) as c:
        c.send(raw)
        r = c.read_response()
        assert r.status == 400
        assert r.header("connection") == "close"
        assert c.at_eof()
    assert stats(b.port)["bad_requests"] == 1


def test_upgrade_is_ignored_and_connect_refused(procs):
    b = backend(procs)
    with Client(b.port) as c:
        c.send(b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n"
               b"Upgrade: h2c\r\n\r\n" + build("GET", "/b"))
        assert c.read_response().status == 200
        assert c.read_response().status == 200  # still HTTP/1.1
    with Client(b.port) as c:
        c.send(b"CONNECT example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response().status == 405
        assert c.at_eof()


def test_oversized_head_gets_431(procs):
    b = backend(procs)
    with Client(b.port) as c:
        c.send(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n")
        r = c.read_response()
        assert r.status == 431
        assert c.at_eof()
    with Client(b.port) as c:  # still serving
        assert c.request().status == 200


def test_client_gone_while_queued_frees_nothing_wrong(procs):
    b = backend(procs, "--profile", "fixed:200ms", "--workers", "1")
    cs = [Client(b.port) for _ in range(4)]
    for c in cs:
        c.send(build())
    with StatsConn(b.port) as st:
        st.wait_for(lambda s: s["requests"] == 4)
        for c in cs[1:]:  # abort the queued ones (RST)
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                              b"\x01\x00\x00\x00\x00\x00\x00\x00")
            c.close()
        assert cs[0].read_response().status == 200
        s = st.wait_for(lambda s: s["queued"] == 0 and s["in_service"] == 0)
        assert s["open_connections"] == 2
        with Client(b.port) as c:
            assert c.request().status == 200
    cs[0].close()


def test_sigterm_and_sigint_exit_zero(procs):
    for sig in (signal.SIGTERM, signal.SIGINT):
        b = backend(procs, "--profile", "fixed:1s")
        idle = Client(b.port)
        busy = Client(b.port)
        busy.send(build())
        with Client(b.port) as c:
            c.request("GET", "/health")
        assert procs.stop(b, sig=sig) == 0
        idle.close()
        busy.close()


def test_emfile_does_not_spin(procs):
    port = free_port()

    def low_fd_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32))

    p = procs.start([LBBACKEND, "--port", str(port), "--id", "T1"],
                    port=port, preexec_fn=low_fd_limit)
    clients = []
    for _ in range(60):  # more than the backend can hold
        clients.append(socket.create_connection(("127.0.0.1", port)))
    with open(f"/proc/{p.pid}/stat") as f:
        before = f.read().split()
    time.sleep(1.0)  # measure CPU use while the listener is starved
    with open(f"/proc/{p.pid}/stat") as f:
        after = f.read().split()
    ticks = sum(int(after[i]) - int(before[i]) for i in (13, 14))
    hz = os.sysconf("SC_CLK_TCK")
    assert ticks / hz < 0.5, f"{ticks} ticks of CPU while starved"
    for c in clients:
        c.close()
    deadline = time.monotonic() + 10
    while True:  # the listener comes back once descriptors are free
        try:
            with Client(port, timeout=2) as c:
                s = json.loads(c.request("GET", "/stats").body)
                break
        except (OSError, EOFError):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert s["accept_errors"] > 0
    assert p.poll() is None


# ------------------------------------------------------------- config

def test_config_section_and_override(procs):
    port = free_port()
    p = procs.start([LBBACKEND, "--config", "config/backends.ini",
                     "--section", "B", "--port", str(port), "--seed", "1"],
                    port=port)
    s = stats(port)
    assert s["id"] == "B" and s["workers"] == 16
    assert s["profile"] == "lognormal:15ms,0.4"
    with Client(port) as c:
        assert c.request().header("x-backend-id") == "B"
    assert procs.stop(p) == 0


def test_bad_flags_exit_2_with_message(tmp_path):
    ini = tmp_path / "bad.ini"
    ini.write_text("[A]\nport = 1\nprofile = gauss:3ms\n")
    for args in (["--profile", "fixed:10"], ["--workers", "-1"],
                 ["--config", str(ini), "--section", "A"]):
        r = subprocess.run([LBBACKEND, *args], capture_output=True,
                           timeout=10, cwd=ROOT)
        assert r.returncode == 2, args
        assert b"lbbackend:" in r.stderr
    r = subprocess.run([LBBACKEND, "--config", str(ini), "--section", "A"],
                       capture_output=True, timeout=10)
    assert f"{ini}:3:".encode() in r.stderr

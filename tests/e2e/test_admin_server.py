"""The admin listener over real sockets: it serves the dashboard's files and
npm libraries, refuses path traversal, answers /api/stats per the JSON
contract, streams SSE events every second, exposes Prometheus metrics that
promtool accepts, lists and streams CSV logs, and speaks HTTP/1.1 keep-alive
and pipelining with bounded requests.  It runs the admin module alone
(tests/admin_harness.c, synthetic traffic), so it needs no proxy core."""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import time

import pytest

from conftest import ROOT
from httpc import Conn, get
from lbtest import free_port, rss_kb
from lbtest import wait_until as wait_for

HARNESS = os.path.join(ROOT, os.environ.get("ADMIN_HARNESS",
                                            "build/tests/admin_harness"))
PROMTOOL = shutil.which("promtool")
SECRET = b"top secret, outside the served directories\n"


@pytest.fixture
def admin(procs, tmp_path):
    """The harness on a free port, with a dashboard dir, node_modules beside
    it, a logs dir and a secret file that must never be served."""
    dash = tmp_path / "dashboard"
    (dash / "sub").mkdir(parents=True)
    (dash / "index.html").write_text("<!doctype html><title>t</title>\n")
    (dash / "app.js").write_text("console.log(1);\n")
    (dash / "sub" / "index.html").write_text("sub index\n")
    (dash / ".env").write_bytes(SECRET)
    vendor = tmp_path / "node_modules" / "uplot" / "dist"
    vendor.mkdir(parents=True)
    (vendor / "uPlot.min.css").write_text(".u{}\n")
    (tmp_path / "secret.txt").write_bytes(SECRET)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a_persistent.csv").write_text("timestamp,client\n1,2\n")
    (logs / "notes.txt").write_text("not a log\n")
    (logs / ".hidden.csv").write_bytes(SECRET)
    port = free_port()
    p = procs.start([HARNESS, str(port), str(dash), str(logs)], port=port,
                    name="admin_harness")
    p.port = port
    p.tmp = tmp_path
    p.logs = logs
    yield p
    # A clean exit on SIGTERM (also catches crashes in teardown paths).
    assert procs.stop(p) == 0


def test_static_files_vendor_and_head(admin):
    r = get(admin.port, "/")
    assert r.status == 200
    assert r.header("content-type") == "text/html; charset=utf-8"
    assert r.body.startswith(b"<!doctype html>")
    r = get(admin.port, "/app.js")
    assert r.header("content-type").startswith("text/javascript")
    r = get(admin.port, "/vendor/uplot/dist/uPlot.min.css?v=1")
    assert r.status == 200 and r.body == b".u{}\n"
    assert r.header("content-type").startswith("text/css")
    with Conn(admin.port) as c:
        r = c.request("HEAD", "/app.js")
        assert r.status == 200
        assert r.header("content-length") == str(len("console.log(1);\n"))
        # No body came with HEAD: the next response follows at once.
        r = c.request("GET", "/nope.js")
        assert r.status == 404
        r = c.request("GET", "/sub")
        assert r.status == 301 and r.header("location") == "/sub/"
        r = c.request("GET", "/sub/")
        assert r.status == 200 and r.body == b"sub index\n"


@pytest.mark.parametrize("path", [
    "/../secret.txt", "/%2e%2e/secret.txt", "/vendor/../../secret.txt",
    "/vendor/%2E%2E/%2e%2e/secret.txt", "/.env", "/sub/..%2f..%2fsecret.txt",
    "/logs/..%2fsecret.txt", "/logs/.hidden.csv", "/a%5c..%5csecret.txt",
])
def test_path_traversal_refused(admin, path):
    with Conn(admin.port) as c:
        r = c.request("GET", path)
    assert r.status in (400, 404), (path, r.status)
    assert SECRET not in r.body


def stats(port, path="/api/stats"):
    r = get(port, path)
    assert r.status == 200
    assert r.header("content-type") == "application/json"
    assert r.header("cache-control") == "no-store"
    assert r.header("access-control-allow-origin") == "*"
    return json.loads(r.body)


def test_api_stats_contract(admin):
    # Wait until two complete seconds of synthetic traffic exist.
    d = wait_for(lambda: (lambda d: d if d["history"]["requests"]["A"][-2] > 0
                          else None)(stats(admin.port)))
    assert d["version"] and d["mode"] == "adaptive_ewma"
    assert d["persistent"] is True and d["window_s"] == 10
    assert abs(d["time"] - time.time()) < 5
    t = d["total"]
    for k in ("requests", "errors", "rps", "in_flight", "bytes_in",
              "bytes_out", "latency_ms"):
        assert k in t
    assert [b["id"] for b in d["backends"]] == ["A", "B", "C"]
    for i, b in enumerate(d["backends"]):
        assert b["index"] == i and b["address"] == f"127.0.0.1:{8081 + i}"
        assert b["health"] == "up" and b["reason"] == ""
        assert b["pool_idle"] == i + 1
        for k in ("total", "http_5xx", "connect", "timeout", "reset",
                  "bad_response"):
            assert k in b["errors"]
        # The harness gives backend i a latency of i+1 ms.
        assert abs(b["latency_ms"]["p50"] - (i + 1)) <= 0.02 * (i + 1)
        assert b["rps"] > 0 and b["last_second"]["requests"] > 0
    c = d["backends"][2]
    assert c["errors"]["http_5xx"] > 0 and c["errors"]["http_5xx"] == c["errors"]["total"]
    assert t["requests"] > sum(b["requests"] for b in d["backends"])  # lbproxy's own 400s
    h = d["history"]
    assert len(h["t"]) == 60 and h["t"] == sorted(h["t"])
    for f in ("requests", "errors", "p50_ms", "p99_ms", "score"):
        assert sorted(h[f]) == ["A", "B", "C"] and all(
            len(v) == 60 for v in h[f].values())
    assert h["score"]["A"][-1] is not None  # sampled once per second
    # ?window= narrows the window.
    assert stats(admin.port, "/api/stats?window=1")["window_s"] == 1
    # Cumulative counters only grow.
    d2 = stats(admin.port)
    assert d2["total"]["requests"] >= t["requests"]


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed")
def test_metrics_pass_promtool(admin):
    r = get(admin.port, "/metrics")
    assert r.status == 200
    assert r.header("content-type").startswith("text/plain; version=0.0.4")
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=r.body,
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr.decode() + p.stdout.decode()
    text = r.body.decode()
    assert 'lbproxy_requests_total{backend="A"}' in text
    assert 'lbproxy_request_duration_seconds_bucket{backend="C",le="+Inf"}' in text
    assert 'lbproxy_backend_up{backend="B"} 1' in text


def read_events(sock, n, timeout=6.0):
    """Reads the stream until n `event: stats` events arrived."""
    sock.settimeout(timeout)
    buf = b""
    deadline = time.monotonic() + timeout
    while buf.count(b"event: stats\ndata: ") < n or not buf.endswith(b"\n\n"):
        if time.monotonic() > deadline:
            raise TimeoutError(buf[-300:])
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError(buf[-300:])
        buf += chunk
    return buf


def test_sse_stream(admin):
    # A subscriber that never reads must not hold the others back.
    stalled = socket.create_connection(("127.0.0.1", admin.port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(b"GET /api/stream HTTP/1.1\r\nHost: t\r\n\r\n")
    with socket.create_connection(("127.0.0.1", admin.port)) as s:
        s.sendall(b"GET /api/stream HTTP/1.1\r\nHost: t\r\n\r\n")
        t0 = time.monotonic()
        buf = read_events(s, 3)
        elapsed = time.monotonic() - t0
        head, _, body = buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert b"Content-Type: text/event-stream" in head
        assert b"Cache-Control: no-store" in head
        assert body.startswith(b"retry: 1000\n\n")
        events = [e for e in body.split(b"\n\n") if e.startswith(b"event:")]
        times = []
        for e in events[:3]:
            ev, data = e.split(b"\n", 1)
            assert ev == b"event: stats" and data.startswith(b"data: ")
            d = json.loads(data[6:])
            assert [b["id"] for b in d["backends"]] == ["A", "B", "C"]
            times.append(d["time"])
        # The first event comes at once, then one per second: three events
        # take between ~1 and a few seconds.
        assert times == sorted(times)
        assert 0.5 < elapsed < 5.5, elapsed
    # The admin still answers while the stalled subscriber is connected.
    assert get(admin.port, "/api/stats").status == 200
    stalled.close()


def test_posted_events_reach_stats_and_stream(admin):
    """POST /api/event keeps one line per post (bounded, loopback only) and
    every /api/stats and /api/stream snapshot carries the ring."""
    assert stats(admin.port)["events"] == []
    with Conn(admin.port) as c:
        r = c.request("POST", "/api/event?level=warn",
                      body=b"B slows down 10x\n")
        assert r.status == 200 and json.loads(r.body) == {"id": 1}
        # keep-alive goes on after a POST
        r = c.request("POST", "/api/event", body=b'say "hi"')
        assert r.status == 200 and json.loads(r.body) == {"id": 2}
        assert c.request("POST", "/api/event", body=b"x" * 161).status == 413
        assert c.request("POST", "/api/event", body=b"a\x01b").status == 400
        assert c.request("POST", "/api/event?level=x",
                         body=b"hi").status == 400
    with Conn(admin.port) as c:  # a large body: 413 and the connection ends
        assert c.request("POST", "/api/event",
                         body=b"x" * 70000).status == 413
    assert get(admin.port, "/api/event").status == 404
    with Conn(admin.port) as c:
        assert c.request("POST", "/api/stats", body=b"x").status == 405
    ev = stats(admin.port)["events"]
    assert [(e["id"], e["level"], e["text"]) for e in ev] == [
        (1, "warn", "B slows down 10x"), (2, "info", 'say "hi"')]
    assert abs(ev[0]["time"] - time.time()) < 60
    with socket.create_connection(("127.0.0.1", admin.port)) as s:
        s.sendall(b"GET /api/stream HTTP/1.1\r\nHost: t\r\n\r\n")
        body = read_events(s, 1).partition(b"\r\n\r\n")[2]
        data = [e for e in body.split(b"\n\n") if e.startswith(b"event:")][0]
        d = json.loads(data.split(b"\n", 1)[1][6:])
        assert [e["text"] for e in d["events"]] == ["B slows down 10x",
                                                     'say "hi"']


def test_keepalive_pipelining_and_limits(admin):
    with Conn(admin.port) as c:
        c.send(b"GET /api/stats HTTP/1.1\r\nHost: t\r\n\r\n"
               b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"
               b"HEAD /index.html HTTP/1.1\r\nHost: t\r\n\r\n"
               b"GET /missing HTTP/1.1\r\nHost: t\r\n\r\n")
        r1, r2 = c.read(), c.read()
        r3, r4 = c.read("HEAD"), c.read()
        assert r1.status == 200 and json.loads(r1.body)["window_s"] == 10
        assert r2.status == 200 and b"lbproxy_requests_total" in r2.body
        assert r3.status == 200 and r3.body == b""
        assert r4.status == 404
        r = c.request("POST", "/api/stats", body=b"x=1")
        assert r.status == 405 and r.header("allow") == "GET, HEAD"
        # Still alive after all that; Connection: close is honoured.
        r = c.request("GET", "/", headers=[("Connection", "close")])
        assert r.status == 200 and r.header("connection") == "close"
        assert c.closed_by_peer()
    with Conn(admin.port) as c:
        r = c.request("GET", "/", version="1.0")
        assert r.status == 200 and c.closed_by_peer()
    with Conn(admin.port) as c:
        r = c.request("GET", "/", headers=[("X-Big", "x" * 20000)])
        assert r.status == 431 and c.closed_by_peer()
    with Conn(admin.port) as c:
        r = c.request("GET", "/" + "a" * 3000)
        assert r.status == 414 and c.closed_by_peer()
    with Conn(admin.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        r = c.read()
        assert r.status == 400 and c.closed_by_peer()



def test_logs_listing_and_streaming(admin):
    r = get(admin.port, "/logs/?format=json")
    assert r.status == 200 and r.header("content-type") == "application/json"
    names = [f["name"] for f in json.loads(r.body)["files"]]
    assert names == ["a_persistent.csv"]
    r = get(admin.port, "/logs/")
    assert r.status == 200 and b'href="/logs/a_persistent.csv"' in r.body
    r = get(admin.port, "/logs/a_persistent.csv")
    assert r.status == 200 and r.header("content-type").startswith("text/csv")
    assert r.body == b"timestamp,client\n1,2\n"
    assert get(admin.port, "/logs/notes.txt").status == 404
    assert get(admin.port, "/logs/none.csv").status == 404

    # A large log is streamed, not loaded: the server's memory stays far
    # below the file's size while a slow client reads it.
    big = admin.logs / "big.csv"
    row = b"2026-11-25T14:03:01.123456Z,127.0.0.1:1,GET,/x,A,a,200,1,2,,,,1.000,0,m,persistent,0,\n"
    with open(big, "wb") as f:
        for _ in range(64):
            f.write(row * 8192)
    size = big.stat().st_size
    want = hashlib.sha256(big.read_bytes()).hexdigest()
    rss0 = rss_kb(admin.pid)
    with Conn(admin.port) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.send(b"GET /logs/big.csv HTTP/1.1\r\nHost: t\r\n\r\n")
        line = c.f.readline()
        assert line.startswith(b"HTTP/1.1 200")
        hdrs = {}
        while True:
            h = c.f.readline()
            if h == b"\r\n":
                break
            k, _, v = h.decode().partition(":")
            hdrs[k.lower()] = v.strip()
        assert int(hdrs["content-length"]) == size
        got = hashlib.sha256()
        first = c.f.read(1 << 20)
        got.update(first)
        time.sleep(0.2)  # let the server hit a full socket
        peak = rss_kb(admin.pid)
        left = size - len(first)
        while left:
            chunk = c.f.read(min(left, 1 << 20))
            assert chunk
            got.update(chunk)
            left -= len(chunk)
        assert got.hexdigest() == want
        # Keep-alive still works after a sendfile body.
        assert c.request("GET", "/api/stats").status == 200
    assert peak - rss0 < size // 1024 // 4, (rss0, peak, size)

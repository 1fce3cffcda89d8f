"""The front door end to end: real ./lbproxy with ./lbbackend processes on
Unix sockets (both connection models, mixed with TCP, health-checked),
request ids (kept, generated, replaced, echoed, logged), PROXY protocol
v1/v2 headers on the listener (the real client address in the log and
X-Forwarded-For; a missing, garbage, too-long or slow header refused
without harm to other clients) and send_proxy towards a small Python
backend that parses the header it receives."""
import csv
import re
import socket
import struct
import threading
import time

import pytest

from conftest import LBBACKEND, LBPROXY
from httpc import Conn, read_response
from lbtest import free_port, http_json, wait_port, wait_until
from rawbackend import V2_SIG, RawBackend, read_proxy_header

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}"
                   r"-[0-9a-f]{12}$")


def wait_unix(path, proc, timeout=10.0):
    """Polls until a Unix socket at path accepts a connection."""
    def ready():
        if proc.poll() is not None:
            raise RuntimeError(f"backend exited with {proc.returncode}")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            try:
                s.connect(path)
                return True
            except OSError:
                return False
    wait_until(ready, timeout, what=f"a listener on {path}")


def unix_backend(procs, tmp_path, bid, extra=()):
    path = str(tmp_path / f"{bid}.sock")
    p = procs.start([LBBACKEND, "--unix", path, "--id", bid, *extra],
                    name=f"backend-{bid}")
    wait_unix(path, p)
    p.path = path
    return p


def proxy(procs, backends, extra=(), admin=None):
    """lbproxy in front of backend specs ("unix:PATH" or "127.0.0.1:PORT")."""
    port = free_port()
    args = [LBPROXY, "--config", "/dev/null",
            "--listen", f"127.0.0.1:{port}",
            "--admin", f"127.0.0.1:{admin}" if admin else "off"]
    for b in backends:
        args += ["--backend", b]
    if "--log" not in extra:
        args += ["--log", "off"]
    p = procs.start(args + list(extra), port=port, name="lbproxy")
    p.port = port
    if admin:
        wait_port(admin, proc=p)
    return p



def log_rows(procs, px, path):
    """Stops the proxy (which flushes the log) and reads the CSV rows."""
    assert procs.stop(px) == 0
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def echoed_head(resp):
    """The request head the backend received (X-Echo-Headers: 1)."""
    return resp.body.decode("latin-1")


def head_field(head, name):
    vals = [ln.split(":", 1)[1].strip() for ln in head.split("\r\n")[1:]
            if ln.lower().startswith(name.lower() + ":")]
    return vals


# ---------------------------------------------------- Unix-socket backends

@pytest.mark.parametrize("model", ["--persistent", "--non-persistent"])
def test_unix_backends_mixed_with_tcp_in_both_models(procs, tmp_path, model):
    a = unix_backend(procs, tmp_path, "U1")
    b = unix_backend(procs, tmp_path, "U2")
    c = procs.backend(bid="T")
    admin = free_port()
    log = str(tmp_path / "log.csv")
    px = proxy(procs, [f"unix:{a.path}", f"unix:{b.path},weight=1,id=sockB",
                       f"127.0.0.1:{c.port}"],
               extra=[model, "--log", log], admin=admin)
    seen = []
    with Conn(px.port) as conn:
        for i in range(9):
            r = conn.request(path=f"/u{i}", headers=[("X-Echo-Headers", "1")])
            assert r.status == 200
            seen.append(r.header("x-backend-id"))
            head = echoed_head(r)
            assert head_field(head, "X-Forwarded-For") == ["127.0.0.1"]
            if model == "--non-persistent":
                assert head_field(head, "Connection") == ["close"]
            else:
                assert head_field(head, "Connection") == []
    assert seen == ["U1", "U2", "T"] * 3
    st = http_json(admin)
    addrs = {x["id"]: x["address"] for x in st["backends"]}
    assert addrs == {"A": f"unix:{a.path}", "sockB": f"unix:{b.path}",
                     "C": f"127.0.0.1:{c.port}"}
    rows = log_rows(procs, px, log)
    assert [r["backend_addr"] for r in rows[:3]] == [
        f"unix:{a.path}", f"unix:{b.path}", f"127.0.0.1:{c.port}"]
    assert {r["backend_id"] for r in rows} == {"A", "sockB", "C"}
    reused = [r["reused"] for r in rows]
    if model == "--persistent":
        # the first request of each backend connects, the rest reuse it
        assert reused == ["0"] * 3 + ["1"] * 6
    else:
        assert reused == ["0"] * 9


def test_unix_backend_missing_socket_fails_over_and_health_checks(
        procs, tmp_path):
    good = unix_backend(procs, tmp_path, "G")
    sick = unix_backend(procs, tmp_path, "S", extra=["--fail-health"])
    missing = str(tmp_path / "nobody.sock")
    admin = free_port()
    px = proxy(procs, [f"unix:{good.path}", f"unix:{missing}",
                       f"unix:{sick.path}"],
               extra=["--set", "health.check_path=/health",
                      "--set", "health.check_interval_ms=100"], admin=admin)

    def health():
        return {x["id"]: x["health"] for x in http_json(admin)["backends"]}
    h = wait_until(lambda: (lambda v: v if v["A"] == "up" and v["B"] != "up"
                            and v["C"] != "up" else None)(health()),
                   what="the unix backends' health settles")
    assert h["A"] == "up"
    for i in range(6):
        with Conn(px.port) as conn:
            r = conn.request(path=f"/f{i}")
            assert r.status == 200
            assert r.header("x-backend-id") == "G"


# -------------------------------------------------------------- request ids

def test_request_ids_kept_generated_replaced_echoed_and_logged(
        procs, tmp_path):
    b = procs.backend(bid="A")
    log = str(tmp_path / "log.csv")
    px = proxy(procs, [f"127.0.0.1:{b.port}"],
               extra=["--log", log, "--request-id-echo"])
    sent, got = [], []
    cases = [
        [],                                     # none: generated
        [("X-Request-Id", "client-abc.123_~")],  # sane: kept
        [("X-Request-Id", "has space")],
        [("X-Request-Id", "a,b")],
        [("X-Request-Id", "x" * 129)],           # too long
        [("X-Request-Id", "one"), ("X-Request-Id", "two")],
        [("X-Request-Id", "y" * 128)],           # longest kept
    ]
    with Conn(px.port) as conn:
        for hs in cases:
            r = conn.request(headers=hs + [("X-Echo-Headers", "1")])
            assert r.status == 200
            upstream = head_field(echoed_head(r), "X-Request-Id")
            assert len(upstream) == 1, upstream
            assert r.header_all("x-request-id") == upstream
            sent.append(hs)
            got.append(upstream[0])
    assert UUID4.match(got[0])
    assert got[1] == "client-abc.123_~"
    for g in got[2:6]:
        assert UUID4.match(g), g
    assert got[6] == "y" * 128
    assert len(set(got)) == len(got)
    rows = log_rows(procs, px, log)
    assert [r["request_id"] for r in rows] == got


def test_request_id_not_echoed_by_default_and_off_passes_through(
        procs, tmp_path):
    b = procs.backend(bid="A")
    px = proxy(procs, [f"127.0.0.1:{b.port}"])
    with Conn(px.port) as conn:
        r = conn.request(headers=[("X-Echo-Headers", "1")])
        assert r.header("x-request-id") is None
        assert UUID4.match(head_field(echoed_head(r), "X-Request-Id")[0])
    procs.stop(px)
    log = str(tmp_path / "off.csv")
    px = proxy(procs, [f"127.0.0.1:{b.port}"],
               extra=["--request-id", "false", "--request-id-echo",
                      "--log", log])
    with Conn(px.port) as conn:
        r = conn.request(headers=[("X-Echo-Headers", "1")])
        assert head_field(echoed_head(r), "X-Request-Id") == []
        r = conn.request(headers=[("X-Echo-Headers", "1"),
                                  ("X-Request-Id", "bad id")])
        assert head_field(echoed_head(r), "X-Request-Id") == ["bad id"]
        assert r.header("x-request-id") is None
    rows = log_rows(procs, px, log)
    assert [r["request_id"] for r in rows] == ["", ""]


# ---------------------------------------------- PROXY protocol, listener side

def v2_header(src, dst, sport, dport, tlv=b"", command=0x21):
    fam = socket.AF_INET6 if ":" in src else socket.AF_INET
    addrs = (socket.inet_pton(fam, src) + socket.inet_pton(fam, dst) +
             struct.pack("!HH", sport, dport))
    body = addrs + tlv
    famb = 0x21 if fam == socket.AF_INET6 else 0x11
    return V2_SIG + bytes([command, famb]) + struct.pack("!H", len(body)) + \
        body


def raw_request(port, data, timeout=5.0, chunks=None):
    """Sends data (or the chunks one by one), returns everything read."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        for ch in chunks or [data]:
            s.sendall(ch)
            if chunks:
                time.sleep(0.01)
        f = s.makefile("rb")
        r = read_response(f)
        f.close()
        return r
    finally:
        s.close()


def closed_without_answer(sock, timeout=5.0):
    """True when the server closed sock without sending a byte."""
    sock.settimeout(timeout)
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True


def test_proxy_protocol_v1_v2_carry_the_real_address(procs, tmp_path):
    b = procs.backend(bid="A")
    admin = free_port()
    log = str(tmp_path / "log.csv")
    px = proxy(procs, [f"127.0.0.1:{b.port}"],
               extra=["--proxy-protocol", "--log", log], admin=admin)
    # (the start-up probe's connection, without a header, was refused)
    before = http_json(admin)["total"]["proxy_protocol"]
    req = b"GET /pp HTTP/1.1\r\nHost: t\r\nX-Echo-Headers: 1\r\n\r\n"
    # v1 with the request in the same packet
    r = raw_request(px.port, b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n" +
                    req)
    assert r.status == 200
    assert head_field(echoed_head(r), "X-Forwarded-For") == ["203.0.113.7"]
    # v2 over IPv6 with a TLV, sent in pieces
    h = v2_header("2001:db8::9", "::1", 4444, 80, tlv=b"\x04\x00\x03abc")
    r = raw_request(px.port, None,
                    chunks=[h[:5], h[5:14], h[14:20], h[20:], req])
    assert r.status == 200
    assert head_field(echoed_head(r), "X-Forwarded-For") == ["2001:db8::9"]
    # v2 LOCAL (the balancer's own check): the peer's address stays
    r = raw_request(px.port, V2_SIG + b"\x20\x00\x00\x00" + req)
    assert r.status == 200
    assert head_field(echoed_head(r), "X-Forwarded-For") == ["127.0.0.1"]
    # v1 UNKNOWN and keep-alive after the header
    s = socket.create_connection(("127.0.0.1", px.port), timeout=5)
    s.sendall(b"PROXY UNKNOWN\r\n" + req + req)
    f = s.makefile("rb")
    assert read_response(f).status == 200
    assert read_response(f).status == 200
    f.close()
    s.close()
    st = http_json(admin)["total"]["proxy_protocol"]
    assert st == {"accepted": before["accepted"] + 4,
                  "refused": before["refused"]}
    rows = log_rows(procs, px, log)
    assert [r["client"] for r in rows[:2]] == ["203.0.113.7:5555",
                                               "[2001:db8::9]:4444"]
    assert rows[2]["client"].startswith("127.0.0.1:")


def test_proxy_protocol_refusals_leave_other_clients_alone(procs, tmp_path):
    b = procs.backend(bid="A")
    admin = free_port()
    px = proxy(procs, [f"127.0.0.1:{b.port}"],
               extra=["--proxy-protocol",
                      "--set", "timeouts.client_header_ms=700"], admin=admin)
    before = http_json(admin)["total"]["proxy_protocol"]
    good = socket.create_connection(("127.0.0.1", px.port), timeout=5)
    good.sendall(b"PROXY TCP4 198.51.100.1 127.0.0.1 1 2\r\n")
    gf = good.makefile("rb")

    def good_request():
        good.sendall(b"GET /g HTTP/1.1\r\nHost: t\r\n\r\n")
        return read_response(gf).status
    assert good_request() == 200

    bad = {
        "missing": b"GET / HTTP/1.1\r\nHost: t\r\n\r\n",
        "garbage": bytes(range(256)),
        "too long": b"PROXY UNKNOWN " + b"x" * 200,
        "bad v2": V2_SIG + b"\x21\x12\x00\x0c" + b"\x00" * 12,  # UDP
    }
    for what, data in bad.items():
        s = socket.create_connection(("127.0.0.1", px.port), timeout=5)
        s.sendall(data)
        assert closed_without_answer(s), what
        s.close()
        assert good_request() == 200
    # slow: half a header, then nothing: closed at the header timeout
    t0 = time.monotonic()
    slow = socket.create_connection(("127.0.0.1", px.port), timeout=5)
    slow.sendall(b"PROXY TCP4 1.2.3.4 ")
    assert good_request() == 200
    assert closed_without_answer(slow)
    took = time.monotonic() - t0
    assert 0.5 < took < 4.0, took
    slow.close()
    # a header trickled one byte at a time also runs out of time
    trickle = socket.create_connection(("127.0.0.1", px.port), timeout=5)
    closed = False
    for ch in b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n" * 3:
        try:
            trickle.sendall(bytes([ch]))
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        time.sleep(0.05)
    assert closed or closed_without_answer(trickle)
    trickle.close()
    assert good_request() == 200
    st = http_json(admin)["total"]["proxy_protocol"]
    assert st == {"accepted": before["accepted"] + 1,
                  "refused": before["refused"] + 6}
    gf.close()
    good.close()


# --------------------------------------------- send_proxy, towards backends

class ProxyProtoBackend:
    """A RawBackend whose connections start with a PROXY header; it answers
    every request with that header's text and records, per connection, the
    header and the paths that followed it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.conns = {}  # conn_no -> (header text, [paths])
        self.raw = RawBackend(self._respond, preamble=read_proxy_header)
        self.port = self.raw.port

    def _respond(self, conn_no, req_no, head, body):
        hdr = self.raw.preambles[conn_no]
        with self.lock:
            self.conns.setdefault(conn_no, (hdr, []))[1].append(
                head.split(" ")[1])
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (
            len(hdr), hdr.encode())

    def records(self, without=None):
        with self.lock:
            return [(h, list(p)) for _, (h, p) in sorted(self.conns.items())
                    if without is None or without not in p]

    def close(self):
        self.raw.close()


@pytest.fixture
def ppbackend():
    b = ProxyProtoBackend()
    yield b
    b.close()


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_send_proxy_once_per_upstream_connection(procs, ppbackend, version):
    px = proxy(procs, [f"127.0.0.1:{ppbackend.port}"],
               extra=["--send-proxy", version])
    with Conn(px.port) as conn:
        cport = conn.sock.getsockname()[1]
        bodies = [conn.request(path=f"/p{i}").body.decode() for i in range(3)]
    if version == "v1":
        want = f"PROXY TCP4 127.0.0.1 127.0.0.1 {cport} {px.port}"
    else:
        want = f"v2 127.0.0.1 127.0.0.1 {cport} {px.port}"
    assert bodies == [want] * 3
    # one pooled connection, one header, three requests after it
    assert ppbackend.records() == [(want, ["/p0", "/p1", "/p2"])]


def test_send_proxy_non_persistent_chained_and_health_checks(procs,
                                                             ppbackend):
    px = proxy(procs, [f"127.0.0.1:{ppbackend.port}"],
               extra=["--send-proxy", "v2", "--non-persistent",
                      "--proxy-protocol",
                      "--set", "health.check_path=/health",
                      "--set", "health.check_interval_ms=100"])
    # the address from the inbound PROXY header goes on to the backend
    s = socket.create_connection(("127.0.0.1", px.port), timeout=5)
    s.sendall(b"PROXY TCP6 2001:db8::5 ::1 6000 443\r\n" +
              b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n" +
              b"GET /b HTTP/1.1\r\nHost: t\r\n\r\n")
    f = s.makefile("rb")
    assert read_response(f).body == b"v2 2001:db8::5 ::1 6000 443"
    assert read_response(f).body == b"v2 2001:db8::5 ::1 6000 443"
    f.close()
    s.close()
    recs = ppbackend.records(without="/health")
    # non-persistent: a connection (and a header) per request
    assert recs == [("v2 2001:db8::5 ::1 6000 443", ["/a"]),
                    ("v2 2001:db8::5 ::1 6000 443", ["/b"])]
    checks = wait_until(lambda: [h for h, p in ppbackend.records()
                                 if p == ["/health"]],
                        what="a health check connection")
    assert set(checks) == {"v2 LOCAL"}


def test_unix_backend_with_send_proxy_v1_is_served(procs, tmp_path):
    # a Unix-socket backend behind send_proxy: the emulator does not speak
    # PROXY, so it must refuse the request line "PROXY ..." - proving the
    # header really goes first on a Unix connection too
    a = unix_backend(procs, tmp_path, "U")
    px = proxy(procs, [f"unix:{a.path}"], extra=["--send-proxy", "v1"])
    with Conn(px.port) as conn:
        r = conn.request()
        assert r.status in (400, 502)
    procs.stop(px)
    px = proxy(procs, [f"unix:{a.path}"])
    with Conn(px.port) as conn:
        assert conn.request().status == 200

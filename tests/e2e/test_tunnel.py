"""End-to-end tests of WebSocket and other Upgrade tunnels through lbproxy.

They prove that an upgrade request reaches the backend with its Upgrade and
Connection headers, that a 101 turns the session into a byte tunnel (text,
binary, fragmented and control frames and 1 MiB of frames echoed intact by
lbbackend's /ws, raw bytes of another protocol, bytes sent right behind
the handshake and bytes right behind the 101 carried, the close handshake
and half-closes forwarded) in both connection models; that the tunnel's
idle timeout, a reset, a hang-up on a stalled side and the drain deadline
close it and its upstream connection is never pooled; that a client that
stops reading while the backend floods it leaves lbproxy's memory where it
was; that any
other answer to an upgrade request is a normal response on a connection
that stays usable, h2c is not upgraded and a 101 nobody asked for is a
502; and that the CSV log, /api/stats and /metrics count the tunnels.  The
emulator's endpoint itself (bad frames, too big frames) is checked
directly.  Real ./lbproxy and ./lbbackend processes on free loopback ports;
the WebSocket framing is tests/lib/wsclient.py.
"""
import csv
import os
import socket
import struct
import threading
import time

import pytest

from httpc import Conn
from lbtest import (cpu_seconds, free_port, http_json, http_text, rss_kb,
                    wait_port, wait_until)
from rawbackend import RawBackend
from wsclient import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG,
                      OP_TEXT, WebSocket, frame)

MODELS = ["--persistent", "--non-persistent"]




def stack(procs, model="--persistent", extra=(), admin=False, log=None):
    be = procs.backend(bid="W")
    args = [model, *extra]
    if log:
        args += ["--log", log]
    ap = free_port() if admin else None
    px = procs.proxy([be.port], extra=args, admin=ap)
    if ap:
        wait_port(ap, proc=px)
    px.admin = ap
    return be, px


@pytest.mark.parametrize("model", MODELS)
def test_handshake_text_binary_ping_and_close(procs, model):
    be, px = stack(procs, model)
    with WebSocket(px.port) as ws:
        h = ws.handshake()
        assert h["x-backend-id"] == ["W"]
        ws.send(OP_TEXT, "grüß dich".encode())
        assert ws.recv() == (True, OP_TEXT, "grüß dich".encode())
        blob = os.urandom(300)
        ws.send(OP_BINARY, blob)
        assert ws.recv() == (True, OP_BINARY, blob)
        ws.send(OP_TEXT, b"")
        assert ws.recv() == (True, OP_TEXT, b"")
        # a fragmented message with a ping between its fragments
        ws.send(OP_TEXT, b"frag-", fin=False)
        ws.send(OP_PING, b"are you there")
        ws.send(OP_CONT, b"ment", fin=True)
        assert ws.recv() == (False, OP_TEXT, b"frag-")
        assert ws.recv() == (True, OP_PONG, b"are you there")
        assert ws.recv() == (True, OP_CONT, b"ment")
        assert ws.close_handshake(1000) == 1000
    assert http_json(be.port, "/stats")["ws_upgrades"] == 1


@pytest.mark.parametrize("model", MODELS)
def test_megabyte_of_frames_echoed_intact(procs, model):
    """1 MiB in frames of every length class (7-bit, 16-bit, 64-bit),
    sent from a thread while the main one reads, so neither side waits on
    the other's buffers."""
    be, px = stack(procs, model)
    sizes = [125, 126, 65535, 65536, 400000] + [8192] * 64 + [1] * 50
    frames = [os.urandom(n) for n in sizes]
    total = sum(sizes)
    assert total >= 1 << 20
    with WebSocket(px.port, timeout=20) as ws:
        ws.handshake()
        t = threading.Thread(target=lambda: [ws.send(OP_BINARY, f)
                                             for f in frames])
        t.start()
        got = [ws.recv() for _ in frames]
        t.join()
        assert [g[2] for g in got] == frames
        assert all(g[0] and g[1] == OP_BINARY for g in got)
        assert ws.close_handshake() == 1000


def test_bytes_sent_behind_the_handshake_go_into_the_tunnel(procs):
    """A client that sends its first frames in the same write as the
    handshake: lbproxy read them with the request and must pass them on
    after the 101, not parse them as a next request."""
    be, px = stack(procs)
    with WebSocket(px.port) as ws:
        ws.handshake(after=frame(OP_TEXT, b"early") + frame(OP_TEXT, b"bird"))
        assert ws.recv() == (True, OP_TEXT, b"early")
        assert ws.recv() == (True, OP_TEXT, b"bird")


@pytest.mark.parametrize("model", MODELS)
def test_bytes_behind_the_101_reach_the_client(procs, model):
    """/ws?flood=N sends N bytes of frames right behind its 101, in the
    same writes: what lbproxy read past the 101 head is tunnel data."""
    be, px = stack(procs, model)
    with WebSocket(px.port) as ws:
        ws.handshake(path="/ws?flood=100000")
        n = 0
        while n < 100000:
            fin, op, payload = ws.recv()
            assert fin and op == OP_BINARY and set(payload) == {ord("f")}
            n += len(payload)
        assert n == 100000
        ws.send(OP_TEXT, b"still echoing")
        assert ws.recv() == (True, OP_TEXT, b"still echoing")


def test_half_close_is_forwarded_both_ways(procs):
    """The client ends its sending direction right after a frame: lbproxy
    forwards the end (shutdown) to the backend after the frame, the
    backend's echo still comes back, then its end reaches the client."""
    be, px = stack(procs)
    with WebSocket(px.port) as ws:
        ws.handshake()
        ws.send(OP_TEXT, b"last words")
        ws.sock.shutdown(socket.SHUT_WR)
        assert ws.recv() == (True, OP_TEXT, b"last words")
        assert ws.sock.recv(1) == b""
    wait_until(lambda: http_json(be.port, "/stats")["open_connections"] == 1,
               what="the backend side of the tunnel closed")


def test_idle_timeout_closes_the_tunnel_and_it_is_not_pooled(procs,
                                                             tmp_path):
    """tunnel_idle_ms ends a tunnel in which nothing moves; its upstream
    connection is closed, not pooled (in persistent mode a pooled one
    would stay open at the backend), and the CSV log has one record with
    status 101 and the bytes of each way."""
    log = str(tmp_path / "tunnel.csv")
    be, px = stack(procs, "--persistent", extra=["--tunnel-idle-ms", "400"],
                   admin=True, log=log)
    with WebSocket(px.port) as ws:
        ws.handshake()
        ws.send(OP_TEXT, b"x" * 1000)
        assert ws.recv() == (True, OP_TEXT, b"x" * 1000)
        st = http_json(px.admin, "/api/stats")["total"]["tunnels"]
        assert st == {"open": 1, "total": 1}
        t0 = time.monotonic()
        ws.sock.settimeout(10)
        assert ws.sock.recv(1) == b""  # closed by lbproxy, no close frame
        idle = time.monotonic() - t0
        assert 0.3 < idle < 5, idle
    # only the /stats connection itself is open at the backend
    wait_until(lambda: http_json(be.port, "/stats")["open_connections"] == 1,
               what="the tunnel's upstream connection closed")
    st = http_json(px.admin, "/api/stats")["total"]["tunnels"]
    assert st == {"open": 0, "total": 1}
    # the next request cannot have the tunnel's connection from the pool
    accepts = http_json(be.port, "/stats")["accepts"]
    with Conn(px.port) as c:
        assert c.request(path="/").status == 200
    # one for that request, one for this /stats query
    assert http_json(be.port, "/stats")["accepts"] == accepts + 2

    def rows():
        if not os.path.exists(log):
            return None
        with open(log, newline="") as f:
            r = list(csv.DictReader(f))
        return r if len(r) == 2 else None
    row, after = wait_until(rows, what="the two CSV records")
    assert after["path"] == "/" and after["reused"] in ("0", "false")
    assert row["path"] == "/ws"
    assert row["status"] == "101"
    assert row["error"] == "timeout"
    # handshake plus frame each way: the client's masked frame is 1008
    # bytes, the echo 1004
    assert int(row["req_bytes"]) > 1008
    assert int(row["resp_bytes"]) > 1004
    assert float(row["total_ms"]) >= 400
    assert float(row["upstream_ms"]) < float(row["total_ms"])


def test_client_that_stops_reading_keeps_memory_bounded(procs):
    """The backend floods 64 MiB at a client that reads nothing: lbproxy
    stops reading the backend once its buffers for that direction are
    full, so the backend's sends stall far short of 64 MiB and lbproxy's
    memory stays where it was; then the client reads it all."""
    be, px = stack(procs)
    rss0 = rss_kb(px.pid)
    flood = 64 << 20
    ws = WebSocket(px.port, timeout=20, rcvbuf=65536)
    try:
        ws.handshake(path=f"/ws?flood={flood}")
        last = [-1]

        def stalled():
            # bytes_out counts the /stats answers too (under 2 KiB each)
            out = http_json(be.port, "/stats")["bytes_out"]
            same, last[0] = 0 <= out - last[0] < 2048, out
            return same
        wait_until(stalled, timeout=20, step=0.3,
                   what="the backend's sends stalled")
        assert last[0] < flood // 2, last[0]
        assert rss_kb(px.pid) - rss0 < 4096
        n = 0
        while n < flood:
            fin, op, payload = ws.recv()
            n += len(payload)
        assert n == flood
    finally:
        ws.close()


@pytest.mark.parametrize("model", MODELS)
def test_refused_upgrade_is_a_normal_response(procs, model):
    """A backend that does not switch answers as usual: a 400 to a bad
    handshake on /ws, a 200 from a path that ignores Upgrade; either way
    the client connection goes on with the next request.  The upstream
    connection of an upgrade request is not pooled even then (a backend
    that refused may still have switched): three requests, three
    connections, in both models."""
    be, px = stack(procs, model)
    accepts = http_json(be.port, "/stats")["accepts"]
    with WebSocket(px.port) as ws:
        ws.request(extra=b"", key="not-a-valid-key")
        status, h = ws.read_head()
        assert status == 400
        assert "upgrade" not in h
        ws._take(int(h["content-length"][0]))
        ws.request(path="/echo-headers")
        status, h = ws.read_head()
        assert status == 200
        body = ws._take(int(h["content-length"][0])).lower()
        assert b"\r\nupgrade: websocket\r\n" in body  # it was forwarded
        assert b"\r\nconnection: upgrade\r\n" in body
        ws.send_raw(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        status, h = ws.read_head()
        assert status == 200
        assert ws._take(3) == b"ok\n"
    st = http_json(be.port, "/stats")
    assert st["ws_upgrades"] == 0
    assert st["accepts"] == accepts + 3 + 1  # and this /stats query's


def test_h2c_is_not_upgraded(procs):
    """Upgrade: h2c is refused on purpose: the backend gets a plain
    HTTP/1.1 request without Upgrade, Connection's upgrade or the options
    it names, and answers in HTTP/1.1."""
    be, px = stack(procs)
    with Conn(px.port) as c:
        r = c.request(path="/echo-headers", headers=[
            ("Upgrade", "h2c"), ("Connection", "Upgrade, HTTP2-Settings"),
            ("HTTP2-Settings", "AAMAAABkAAQAoAAAAAIAAAAA")])
        assert r.status == 200
        head = r.body.lower()
        assert b"upgrade" not in head
        assert b"http2-settings" not in head
        assert r.header("upgrade") is None
        assert c.request(path="/").status == 200


def test_101_to_a_request_that_did_not_ask_is_a_502(procs):
    """A backend that answers 101 to everything: to an h2c request (whose
    upgrade lbproxy dropped) and to a plain one, that is a 502, never a
    tunnel."""
    heads = []

    def respond(conn_no, req_no, head, body):
        heads.append(head)
        return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n"
                b"Connection: Upgrade\r\n\r\n")
    rb = RawBackend(respond)
    try:
        px = procs.proxy([rb.port], extra=["--set", "health.max_fails=0",
                                           "--set", "retry.on=connect"])
        for hdrs in ([("Upgrade", "h2c"), ("Connection", "Upgrade")], []):
            with Conn(px.port) as c:
                assert c.request(path="/", headers=hdrs).status == 502
        assert heads and all("upgrade" not in h.lower().split("\r\n", 1)[1]
                             for h in heads)
    finally:
        rb.close()


def test_stats_and_metrics_count_tunnels(procs):
    be, px = stack(procs, admin=True)
    socks = []
    try:
        for _ in range(3):
            ws = WebSocket(px.port)
            ws.handshake()
            socks.append(ws)
        assert http_json(px.admin, "/api/stats")["total"]["tunnels"] == \
            {"open": 3, "total": 3}
        m = http_text(px.admin, "/metrics")
        assert "\nlbproxy_tunnels_open 3\n" in m
        assert "\nlbproxy_tunnels_total 3\n" in m
        socks.pop().close_handshake()
    finally:
        for ws in socks:
            ws.close()
    wait_until(lambda: http_json(px.admin, "/api/stats")["total"]["tunnels"]
               == {"open": 0, "total": 3})
    assert "\nlbproxy_tunnels_open 0\n" in http_text(px.admin, "/metrics")


# ---- the emulator's endpoint, directly ----

@pytest.mark.parametrize("bad,code", [
    (frame(OP_TEXT, b"unmasked", mask=False), 1002),
    (frame(OP_TEXT, b"rsv", rsv=4), 1002),
    (frame(0x3, b"reserved opcode"), 1002),
    (frame(OP_CONT, b"no message"), 1002),
    (frame(OP_PING, b"x" * 126), 1002),
    (frame(OP_PING, b"frag", fin=False), 1002),
    (frame(OP_BINARY, b"y" * ((1 << 20) + 1)), 1009),
], ids=["unmasked", "rsv", "opcode", "stray-cont", "long-ping",
        "frag-ping", "too-big"])
def test_backend_answers_a_bad_frame_with_close(procs, bad, code):
    be = procs.backend(bid="W")
    with WebSocket(be.port) as ws:
        ws.handshake()
        ws.send(OP_TEXT, b"fine")
        assert ws.recv() == (True, OP_TEXT, b"fine")
        try:
            ws.send_raw(bad)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it may close before reading all of a big frame
        fin, op, payload = ws.recv()
        assert (fin, op) == (True, OP_CLOSE)
        assert struct.unpack("!H", payload)[0] == code


def test_backend_largest_frame_is_echoed(procs):
    be = procs.backend(bid="W")
    blob = os.urandom(1 << 20)
    with WebSocket(be.port, timeout=20) as ws:
        ws.handshake()
        t = threading.Thread(target=ws.send, args=(OP_BINARY, blob))
        t.start()
        assert ws.recv() == (True, OP_BINARY, blob)
        t.join()


# ---- more ways a tunnel starts and ends ----

def test_tunnel_on_a_pooled_connection_leaves_the_pool(procs):
    """In persistent mode a handshake may take a pooled connection: it
    becomes the tunnel's and is closed with it, never given back."""
    be, px = stack(procs, "--persistent", admin=True)
    with Conn(px.port) as c:
        assert c.request(path="/").status == 200
    wait_until(lambda: http_json(px.admin, "/api/stats")["backends"][0]
               ["pool_idle"] == 1)
    accepts = http_json(be.port, "/stats")["accepts"]
    with WebSocket(px.port) as ws:
        ws.handshake()
        assert http_json(px.admin, "/api/stats")["backends"][0][
            "pool_idle"] == 0
        ws.send(OP_BINARY, b"pooled")
        assert ws.recv() == (True, OP_BINARY, b"pooled")
        assert ws.close_handshake() == 1000
    # the tunnel used the pooled connection: no new one for it (one accept
    # is this /stats query's)
    assert http_json(be.port, "/stats")["accepts"] == accepts + 1
    wait_until(lambda: http_json(be.port, "/stats")["open_connections"] == 1)
    assert http_json(px.admin, "/api/stats")["backends"][0]["pool_idle"] == 0


def test_client_reset_closes_the_upstream_side(procs):
    be, px = stack(procs)
    ws = WebSocket(px.port)
    ws.handshake()
    ws.send(OP_TEXT, b"bye")
    assert ws.recv() == (True, OP_TEXT, b"bye")
    ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                       struct.pack("ii", 1, 0))
    ws.close()  # RST
    wait_until(lambda: http_json(be.port, "/stats")["open_connections"] == 1,
               what="the tunnel's upstream connection closed")
    with WebSocket(px.port) as ws2:  # lbproxy is fine
        ws2.handshake()
        ws2.send(OP_TEXT, b"next")
        assert ws2.recv() == (True, OP_TEXT, b"next")


def test_drain_deadline_ends_open_tunnels(procs):
    """SIGTERM lets a tunnel run until drain_ms, then closes it and
    exits 0."""
    be, px = stack(procs, extra=["--set", "timeouts.drain_ms=500"])
    with WebSocket(px.port) as ws:
        ws.handshake()
        t0 = time.monotonic()
        px.send_signal(15)
        ws.send(OP_TEXT, b"during the drain")
        assert ws.recv() == (True, OP_TEXT, b"during the drain")
        ws.sock.settimeout(10)
        assert ws.sock.recv(1) == b""
        assert px.wait(10) == 0
        assert 0.3 < time.monotonic() - t0 < 8


def test_backend_takes_frames_behind_the_handshake_and_floods_at_once(
        procs):
    """Directly to the emulator: frames in the same write as the handshake
    are echoed, and a flood starts right after the 101 without the client
    sending anything."""
    be = procs.backend(bid="W")
    with WebSocket(be.port) as ws:
        ws.handshake(after=frame(OP_TEXT, b"early") + frame(OP_PING, b"p"))
        assert ws.recv() == (True, OP_TEXT, b"early")
        assert ws.recv() == (True, OP_PONG, b"p")
    with WebSocket(be.port) as ws:
        ws.handshake(path="/ws?flood=20000")
        n = 0
        while n < 20000:
            n += len(ws.recv()[2])
        assert n == 20000


class UpgradeBackend:
    """A raw backend for "other" upgrades: answers the first request head
    of each connection with a 101 to `Upgrade: raw` followed by `after` in
    the same send; then echoes what it gets until the peer ends (echo), or
    neither reads nor writes (stuck: a tunnel towards it fills up)."""

    def __init__(self, after=b"", echo=True):
        self.after, self.echo = after, echo
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.conns = []
        self.heads = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._conn, args=(c,), daemon=True).start()

    def _conn(self, c):
        try:
            if not self.echo:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            head = b""
            while b"\r\n\r\n" not in head:
                head += c.recv(4096)
            head, rest = head.split(b"\r\n\r\n", 1)
            self.heads.append(head.decode("latin-1"))
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: raw\r\n"
                      b"Connection: Upgrade\r\n\r\n" + self.after)
            if not self.echo:
                return
            if rest:
                c.sendall(rest)
            while True:
                data = c.recv(65536)
                if not data:
                    c.shutdown(socket.SHUT_WR)
                    return
                c.sendall(data)
        except OSError:
            return

    def close(self):
        self.lsock.close()
        for c in self.conns:
            c.close()


def raw_upgrade(port, after=b""):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /raw HTTP/1.1\r\nHost: t\r\nUpgrade: raw\r\n"
              b"Connection: Upgrade\r\n\r\n" + after)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        assert chunk, buf
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return s, head.decode("latin-1").lower(), rest


def read_exactly(s, n, have=b""):
    while len(have) < n:
        chunk = s.recv(65536)
        assert chunk, have
        have += chunk
    return have


@pytest.mark.parametrize("model", MODELS)
def test_other_upgrade_carries_bytes_behind_the_101(procs, model):
    """Any protocol, not only WebSocket: the backend sends bytes in the same
    send as its 101, so lbproxy reads them with the head; they are the
    tunnel's first bytes.  Then raw bytes go both ways, and the client's end
    of stream comes back as the backend's."""
    be = UpgradeBackend(after=b"hello-after-101")
    try:
        px = procs.proxy([be.port], extra=[model])
        s, head, rest = raw_upgrade(px.port)
        assert "\r\nupgrade: raw" in head
        assert read_exactly(s, 15, rest) == b"hello-after-101"
        blob = os.urandom(200000)
        t = threading.Thread(target=s.sendall, args=(blob,))
        t.start()
        assert read_exactly(s, len(blob)) == blob
        t.join()
        s.shutdown(socket.SHUT_WR)
        assert s.recv(1) == b""
        s.close()
        assert "\r\nupgrade: raw" in be.heads[0].lower()
        assert "\r\nconnection: upgrade" in be.heads[0].lower()
    finally:
        be.close()


def test_reset_of_a_stalled_client_closes_the_tunnel_without_spinning(
        procs):
    """A client whose bytes lbproxy cannot pass on (the backend reads
    nothing, so lbproxy stopped reading the client) resets: with no read
    asked for, epoll reports the reset as a hang-up over and over; lbproxy
    must take it as the end of the tunnel at once, not spin until the idle
    timeout."""
    be = UpgradeBackend(echo=False)
    try:
        admin = free_port()
        px = procs.proxy([be.port], admin=admin,
                         extra=["--set", "health.max_fails=0"])
        wait_port(admin, proc=px)
        s, _, _ = raw_upgrade(px.port)
        s.setblocking(False)
        sent, blob = 0, b"z" * 65536
        for _ in range(20000):  # until every buffer on the way is full
            try:
                sent += s.send(blob)
            except BlockingIOError:
                time.sleep(0.05)
                try:
                    sent += s.send(blob)
                except BlockingIOError:
                    break
        assert http_json(admin, "/api/stats")["total"]["tunnels"]["open"] == 1
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
        s.close()  # RST
        wait_until(lambda: http_json(admin, "/api/stats")["total"]["tunnels"]
                   ["open"] == 0, timeout=5, what="the tunnel closed")
        cpu0 = cpu_seconds(px.pid)
        time.sleep(1)
        assert cpu_seconds(px.pid) - cpu0 < 0.2
    finally:
        be.close()

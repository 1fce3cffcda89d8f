"""Request smuggling and malformed HTTP, end to end: every vector is sent as
raw bytes to a real ./lbproxy in front of a recording backend, and the test
asserts both what the client got (an error and a closed connection, or a
normal answer) and what the backend saw on the wire (nothing, or exactly one
normalised request).  Then the response side: framing conflicts, bytes after
a response, truncated bodies and when a pooled connection may be reused."""
import io
import socket
import threading
import time

import pytest

from hardening_util import RecordingBackend, statuses
from httpc import Conn, read_response
from lbtest import exchange, read_until_close
from rawbackend import ok


@pytest.fixture
def rec():
    made = []

    def make(respond=None, **kw):
        b = RecordingBackend(respond or (lambda c, n, h, body: ok(b"fine")),
                             **kw)
        made.append(b)
        return b
    yield make
    for b in made:
        b.close()


@pytest.fixture
def stack(procs, rec):
    """One recording backend behind one lbproxy (persistent pool)."""
    be = rec()
    px = procs.proxy([be.port], extra=["--persistent",
                                       "--set", "health.max_fails=0",
                                       "--set", "limits.max_body_bytes=1000"])
    return px, be


H = b"Host: t\r\n"

# (id, raw request bytes, acceptable statuses).  The client must get exactly
# one of them, then a closed connection; the backend must see no byte.
REJECTED = [
    ("cl-and-te", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", {400}),
    ("te-and-cl", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked"
     b"\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", {400}),
    ("cl-duplicate-same", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3"
     b"\r\nContent-Length: 3\r\n\r\nabc", {400}),
    ("cl-duplicate-differ", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3"
     b"\r\nContent-Length: 4\r\n\r\nabcd", {400}),
    ("cl-comma-list", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3, 3"
     b"\r\n\r\nabc", {400}),
    ("cl-plus-sign", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +3"
     b"\r\n\r\nabc", {400}),
    ("cl-negative", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1"
     b"\r\n\r\n", {400}),
    ("cl-hex", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0x3"
     b"\r\n\r\nabc", {400}),
    ("cl-overflow", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: "
     b"99999999999999999999999\r\n\r\n", {400, 413}),
    ("te-xchunked", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: "
     b"xchunked\r\n\r\n0\r\n\r\n", {400, 501}),
    ("te-chunked-identity", b"POST / HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", {400, 501}),
    ("te-gzip-chunked", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: "
     b"gzip, chunked\r\n\r\n0\r\n\r\n", {501}),
    ("te-identity", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: "
     b"identity\r\n\r\n", {400, 501}),
    ("te-twice", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked"
     b"\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", {400}),
    ("te-vertical-tab", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding:"
     b"\x0bchunked\r\n\r\n0\r\n\r\n", {400}),
    ("te-space-before-colon", b"POST / HTTP/1.1\r\n" + H +
     b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", {400}),
    ("te-http10", b"POST / HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked"
     b"\r\n\r\n0\r\n\r\n", {400}),
    ("te-trailing-tab", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding:"
     b" chunked\t\r\n\r\n0\r\n\r\n", {400}),
    ("chunk-ext-two", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding:"
     b" chunked\r\n\r\n3;a=b;c=d\r\nabc\r\n0\r\n\r\n", {400}),
    ("chunk-ext-space", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding:"
     b" chunked\r\n\r\n3; a=b\r\nabc\r\n0\r\n\r\n", {400}),
    ("te-line-folded", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding:\r\n"
     b" chunked\r\n\r\n0\r\n\r\n", {400}),
    ("chunk-size-invalid", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding:"
     b" chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", {400}),
    ("chunk-size-overflow", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding:"
     b" chunked\r\n\r\n1ffffffffffffffffff\r\nabc\r\n0\r\n\r\n", {400}),
    ("chunk-size-negative", b"POST / HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n", {400}),
    ("chunk-size-junk", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding:"
     b" chunked\r\n\r\n3 x\r\nabc\r\n0\r\n\r\n", {400}),
    ("chunk-size-over-limit", b"POST / HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\nfffffff\r\nabc", {413}),
    ("chunk-size-huge", b"POST / HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc", {413}),
    ("chunk-missing-crlf", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding:"
     b" chunked\r\n\r\n3\r\nabcX0\r\n\r\n", {400}),
    ("chunk-bare-lf", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding:"
     b" chunked\r\n\r\n3\nabc\n0\n\n", {400}),
    ("body-over-limit", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1001"
     b"\r\n\r\n", {413}),
    ("bare-lf", b"GET / HTTP/1.1\n" + b"Host: t\n\n", {400}),
    ("bare-lf-header", b"GET / HTTP/1.1\r\nHost: t\nX: y\r\n\r\n", {400}),
    ("bare-cr", b"GET / HTTP/1.1\rHost: t\r\r", {400}),
    ("bare-cr-header", b"GET / HTTP/1.1\r\nHost: t\rX: y\r\n\r\n", {400}),
    ("cr-z-trick", b"GET / HTTP/1.1\r\nHost: t\r\n\rZGET /x HTTP/1.1\r\n"
     b"Host: t\r\n\r\n", {400}),
    ("obs-fold", b"GET / HTTP/1.1\r\n" + H + b"X-A: 1\r\n 2\r\n\r\n", {400}),
    ("obs-fold-tab", b"GET / HTTP/1.1\r\n" + H + b"X-A: 1\r\n\t2\r\n\r\n",
     {400}),
    ("nul-in-value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n",
     {400}),
    ("nul-in-name", b"GET / HTTP/1.1\r\n" + H + b"X-\x00A: b\r\n\r\n", {400}),
    ("ctl-in-value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x01b\r\n\r\n",
     {400}),
    ("del-in-value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x7fb\r\n\r\n",
     {400}),
    ("ctl-in-name", b"GET / HTTP/1.1\r\n" + H + b"X\x01A: b\r\n\r\n", {400}),
    ("space-before-colon", b"GET / HTTP/1.1\r\nHost : t\r\n\r\n", {400}),
    ("tab-before-colon", b"GET / HTTP/1.1\r\n" + H + b"X-A\t: b\r\n\r\n",
     {400}),
    ("empty-name", b"GET / HTTP/1.1\r\n" + H + b": b\r\n\r\n", {400}),
    ("leading-space-first-header", b"GET / HTTP/1.1\r\n Host: t\r\n\r\n",
     {400}),
    ("method-invalid", b"G@T / HTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("method-unknown", b"FOO / HTTP/1.1\r\n" + H + b"\r\n", {400, 501}),
    ("method-lowercase", b"get / HTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("method-connect", b"CONNECT t:443 HTTP/1.1\r\n" + H + b"\r\n",
     {400, 405}),
    ("target-relative", b"GET foo HTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("target-space", b"GET /a b HTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("target-ctl", b"GET /a\x01b HTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("target-del", b"GET /a\x7fb HTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("target-https-absolute", b"GET https://t/ HTTP/1.1\r\n" + H + b"\r\n",
     {400}),
    ("target-authority-get", b"GET t:80 HTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("target-asterisk-get", b"GET * HTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("http09", b"GET /\r\n\r\n", {400, 505}),
    ("http20", b"GET / HTTP/2.0\r\n" + H + b"\r\n", {505}),
    ("http12", b"GET / HTTP/1.2\r\n" + H + b"\r\n", {505}),
    ("http30", b"GET / HTTP/3.0\r\n" + H + b"\r\n", {505}),
    ("http-lowercase", b"GET / http/1.1\r\n" + H + b"\r\n", {400}),
    ("version-garbage", b"GET / HTTP/1.x\r\n" + H + b"\r\n", {400}),
    ("connection-host", b"GET / HTTP/1.1\r\n" + H + b"Connection: Host"
     b"\r\n\r\n", {400}),
    ("connection-cl", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\n"
     b"Connection: Content-Length\r\n\r\nabc", {400}),
    ("connection-te", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: "
     b"chunked\r\nConnection: close, Transfer-Encoding\r\n\r\n0\r\n\r\n",
     {400}),
    ("host-missing", b"GET / HTTP/1.1\r\n\r\n", {400}),
    ("host-twice", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", {400}),
    ("host-twice-same", b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
     {400}),
    ("host-invalid", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", {400}),
    ("host-slash", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", {400}),
    ("absolute-authority-userinfo", b"GET http://u@evil/ HTTP/1.1\r\n" + H
     + b"\r\n", {400}),
    ("absolute-empty-authority", b"GET http:/// HTTP/1.1\r\n" + H + b"\r\n",
     {400}),
    ("expect-unknown", b"POST / HTTP/1.1\r\n" + H + b"Expect: 200-ok\r\n"
     b"Content-Length: 1\r\n\r\nx", {417}),
]


@pytest.mark.parametrize("raw,want", [(r, w) for _, r, w in REJECTED],
                         ids=[i for i, _, _ in REJECTED])
def test_rejected_before_the_backend(stack, raw, want):
    px, be = stack
    data, closed = exchange(px.port, raw)
    got = statuses(data)
    assert len(got) == 1 and got[0] in want, data[:300]
    assert b"Connection: close" in data
    assert closed, "lbproxy kept a connection it could not frame"
    assert be.all_raw() == b"" and be.heads == []
    # and the proxy is still fine for the next client
    with Conn(px.port) as c:
        assert c.request().status == 200


def one_head(be):
    assert len(be.heads) == 1, be.heads
    return be.heads[0]


def raw_head_and_body(be):
    """The single request the backend saw: (head text, raw body bytes)."""
    raw = be.all_raw()
    head, _, body = raw.partition(b"\r\n\r\n")
    return head.decode("latin-1"), body


def test_te_case_and_whitespace_are_normalised(stack):
    px, be = stack
    data, _ = exchange(px.port, b"POST /n HTTP/1.1\r\n" + H +
                       b"Transfer-Encoding: \t Chunked \r\n"
                       b"Connection: close\r\n\r\n"
                       b"3\r\nabc\r\n0\r\n\r\n")
    assert statuses(data) == [200]
    head, body = raw_head_and_body(be)
    assert "\r\nTransfer-Encoding: chunked" in head
    assert "Chunked" not in head
    assert body == b"3\r\nabc\r\n0\r\n\r\n"


def test_chunk_extensions_and_trailers_are_normalised_away(stack):
    px, be = stack
    data, _ = exchange(px.port, b"POST /e HTTP/1.1\r\n" + H +
                       b"Transfer-Encoding: chunked\r\nConnection: close"
                       b"\r\n\r\n3;a=\"b;c\"\r\nabc\r\n2;x\r\nde\r\n"
                       b"0;last=1\r\nX-Trailer: t\r\n\r\n")
    assert statuses(data) == [200]
    _, body = raw_head_and_body(be)
    assert body == b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    assert be.bodies == [b"abcde"]


def test_absolute_form_becomes_origin_form_with_host(stack):
    px, be = stack
    data, _ = exchange(px.port, b"GET http://Example.test:8080/p?q=1 "
                       b"HTTP/1.1\r\nHost: other\r\nConnection: close"
                       b"\r\n\r\n")
    assert statuses(data) == [200]
    head = one_head(be)
    assert head.startswith("GET /p?q=1 HTTP/1.1\r\n")
    assert "\r\nHost: Example.test:8080" in head
    assert "other" not in head


def test_request_line_with_double_space_is_rebuilt(stack):
    px, be = stack
    data, _ = exchange(px.port, b"GET  /d HTTP/1.1\r\n" + H +
                       b"Connection: close\r\n\r\n")
    assert statuses(data) == [200]
    assert one_head(be).startswith("GET /d HTTP/1.1\r\nHost: t\r\n")


def test_absolute_form_without_path(stack):
    px, be = stack
    data, _ = exchange(px.port, b"GET http://a.test HTTP/1.1\r\nHost: a.test"
                       b"\r\nConnection: close\r\n\r\n")
    assert statuses(data) == [200]
    assert one_head(be).startswith("GET / HTTP/1.1\r\n")


@pytest.mark.parametrize("conn", [b"close, X-Forwarded-For",
                                  b"X-Forwarded-For, Via, X-Forwarded-Proto"])
def test_connection_naming_our_headers_does_not_drop_them(stack, conn):
    px, be = stack
    data, _ = exchange(px.port, b"GET / HTTP/1.1\r\n" + H +
                       b"X-Forwarded-For: 6.6.6.6\r\nConnection: " + conn +
                       b"\r\n\r\n", timeout=2)
    assert statuses(data) == [200]
    head = one_head(be).lower() + "\r\n"
    assert "\r\nx-forwarded-for: 127.0.0.1\r\n" in head
    assert "6.6.6.6" not in head
    assert "\r\nx-forwarded-proto: http\r\n" in head
    assert "\r\nvia: 1.1 lbproxy\r\n" in head


@pytest.mark.parametrize("extra", [
    b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n",
    b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
    b"HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n",
], ids=["websocket", "h2c"])
def test_upgrade_without_101_is_never_tunnelled(stack, extra):
    """A backend that answers an upgrade request with a 200 did not
    switch: the bytes after the answer are HTTP again.  The WebSocket
    upgrade reached it (Upgrade, Connection: upgrade); h2c never does."""
    px, be = stack
    with socket.create_connection(("127.0.0.1", px.port), timeout=5) as s:
        s.sendall(b"GET /ws HTTP/1.1\r\n" + H + extra + b"\r\n")
        f = s.makefile("rb")
        from httpc import read_response
        r = read_response(f)
        assert r.status == 200 and r.body == b"fine"
        # bytes after the head are HTTP again, not a tunnel: a frame is
        # garbage, answered with 400 and a close
        s.sendall(b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58")
        r2 = read_response(f)
        assert r2.status == 400
        assert f.read(1) == b""
    head = one_head(be).lower() + "\r\n"
    if "websocket" in extra.decode():
        assert "\r\nupgrade: websocket\r\n" in head
        assert "\r\nconnection: upgrade\r\n" in head
        assert "sec-websocket-key" in head  # an end-to-end header stays
    else:
        assert "upgrade" not in head and "http2-settings" not in head
    assert head.startswith("get /ws http/1.1")


def test_request_hidden_in_a_content_length_body(stack):
    px, be = stack
    hidden = b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"
    data, _ = exchange(px.port, b"POST /outer HTTP/1.1\r\n" + H +
                       b"Content-Length: %d\r\n\r\n" % len(hidden) + hidden +
                       b"GET /second HTTP/1.1\r\n" + H +
                       b"Connection: close\r\n\r\n")
    assert statuses(data) == [200, 200]
    assert [h.split(" ")[1] for h in be.heads] == ["/outer", "/second"]
    assert be.bodies[0] == hidden
    assert b"/smuggled" not in be.all_raw().split(hidden)[1]


def test_request_hidden_in_a_chunked_body(stack):
    px, be = stack
    hidden = b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"
    data, _ = exchange(px.port, b"POST /outer HTTP/1.1\r\n" + H +
                       b"Transfer-Encoding: chunked\r\n\r\n" +
                       b"%x\r\n" % len(hidden) + hidden + b"\r\n0\r\n\r\n" +
                       b"GET /second HTTP/1.1\r\n" + H +
                       b"Connection: close\r\n\r\n")
    assert statuses(data) == [200, 200]
    assert [h.split(" ")[1] for h in be.heads] == ["/outer", "/second"]
    assert be.bodies[0] == hidden


def test_zero_length_chunked_with_smuggled_request_after(stack):
    # a classic CL.TE payload sent with TE only: the bytes after the final
    # chunk are the next request, which lbproxy frames itself (and rejects)
    px, be = stack
    data, closed = exchange(px.port, b"POST / HTTP/1.1\r\n" + H +
                            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                            b"G")
    assert statuses(data)[:1] == [200]
    assert len(be.heads) == 1
    assert be.bodies == [b""]


def test_get_with_body_is_framed_by_its_length(stack):
    px, be = stack
    data, _ = exchange(px.port, b"GET /g HTTP/1.1\r\n" + H +
                       b"Content-Length: 5\r\nConnection: close\r\n\r\n"
                       b"GET /")
    assert statuses(data) == [200]
    assert be.bodies == [b"GET /"]
    assert "\r\nContent-Length: 5" in one_head(be)


def test_chunked_total_over_limit_is_413_or_closed(stack):
    # each chunk is small, the sum exceeds max_body_bytes (1000)
    px, be = stack
    with socket.create_connection(("127.0.0.1", px.port), timeout=5) as s:
        s.sendall(b"POST / HTTP/1.1\r\n" + H +
                  b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(30):
                s.sendall(b"64\r\n" + b"x" * 100 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        data, closed = read_until_close(s)
    assert closed
    got = statuses(data)
    # either a 413 before anything was answered, or a close
    assert got in ([413], []), data[:200]
    assert sum(len(b) for b in be.bodies) <= 1000


def test_pipelined_requests_after_an_error_are_not_forwarded(stack):
    px, be = stack
    data, closed = exchange(px.port, b"GET /a HTTP/1.1\r\n" + H + b"\r\n"
                            b"GET /b HTTP/1.1\r\nHost : t\r\n\r\n"
                            b"GET /c HTTP/1.1\r\n" + H + b"\r\n")
    assert statuses(data) == [200, 400]
    assert closed
    assert [h.split(" ")[1] for h in be.heads] == ["/a"]


# ---- response side ----

def test_response_with_cl_and_te_is_502_and_connection_dropped(procs, rec):
    def respond(conn, n, head, body):
        if "/bad" in head.split("\r\n")[0]:
            return (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        return ok(b"good")
    be = rec(respond)
    px = procs.proxy([be.port], extra=["--persistent",
                                       "--set", "health.max_fails=0"])
    with Conn(px.port) as c:
        assert c.request(path="/ok").body == b"good"
        assert c.request(path="/bad").status == 502
    with Conn(px.port) as c:
        assert c.request(path="/ok").body == b"good"
    # the bad response's connection was not reused for the last request
    assert be.accepts == 2


@pytest.mark.parametrize("resp", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n"
    b"abcde",
    b"HTTP/1.1 200 OK\r\nContent-Length: 4, 5\r\n\r\nabcde",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabcde",
    b"HTTP/1.1 200 OK\nContent-Length: 1\n\nx",
    b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nX A: b\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\n\r\n",
    b"HTTP/2.0 200 OK\r\nContent-Length: 1\r\n\r\nx",
    b"HTTX/1.1 200 OK\r\n\r\n",
    b"garbage\r\n\r\n",
], ids=["two-cl", "cl-list", "te-gzip", "bare-lf", "nul",
        "space-name", "101", "http2", "bad-proto", "garbage"])
def test_invalid_response_is_502(procs, rec, resp):
    be = rec(lambda c, n, h, b: resp if "/bad" in h.split("\r\n")[0]
             else ok(b"good"))
    px = procs.proxy([be.port], extra=["--persistent",
                                       "--set", "health.max_fails=0"])
    with Conn(px.port) as c:
        assert c.request(path="/ok").body == b"good"
        r = c.request(path="/bad")
        assert r.status == 502
        assert b"abcde" not in r.body
    with Conn(px.port) as c:
        assert c.request(path="/ok").body == b"good"
    assert be.accepts == 2


def test_bytes_after_a_response_never_reach_the_next_client(procs, rec):
    evil = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL"

    def respond(conn, n, head, body):
        return ok(head.split(" ")[1].encode()) + evil
    be = rec(respond)
    px = procs.proxy([be.port], extra=["--persistent",
                                       "--set", "health.max_fails=0"])
    for i in range(5):
        with Conn(px.port) as c:
            r = c.request(path=f"/r{i}")
            assert r.status == 200 and r.body == f"/r{i}".encode()
    with Conn(px.port) as c:  # and on one client connection
        for i in range(5):
            assert c.request(path=f"/k{i}").body == f"/k{i}".encode()
    assert be.accepts == 10  # no connection with stray bytes was reused


def test_unsolicited_response_on_an_idle_connection(procs):
    """A backend writes a second response later, on the pooled connection
    while it is idle: lbproxy must drop that connection, never deliver it."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    lsock.settimeout(0.2)
    port = lsock.getsockname()[1]
    stop = threading.Event()
    accepts = []
    written = threading.Event()

    def serve_conn(conn):
        conn.settimeout(5)
        buf = b""
        n = 0
        try:
            while not stop.is_set():
                while b"\r\n\r\n" not in buf:
                    d = conn.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                n += 1
                path = head.split(b" ")[1]
                conn.sendall(ok(path))
                if n == 1 and len(accepts) == 1:
                    time.sleep(0.2)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4"
                                 b"\r\n\r\nEVIL")
                    written.set()
        except OSError:
            pass
        finally:
            conn.close()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            accepts.append(conn)
            threading.Thread(target=serve_conn, args=(conn,),
                             daemon=True).start()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        px = procs.proxy([port], extra=["--persistent",
                                        "--set", "health.max_fails=0"])
        with Conn(px.port) as c:
            assert c.request(path="/first").body == b"/first"
            assert written.wait(5)
            time.sleep(0.1)  # let lbproxy see the stray bytes
            for i in range(3):
                r = c.request(path=f"/n{i}")
                assert r.status == 200 and r.body == f"/n{i}".encode()
        assert len(accepts) == 2
    finally:
        stop.set()
        lsock.close()
        t.join(5)


def test_body_shorter_than_content_length_is_not_presented_complete(
        procs, rec):
    be = rec(lambda c, n, h, b: b"HTTP/1.1 200 OK\r\nContent-Length: 100"
             b"\r\n\r\nonly this", close_after=lambda c, n: True)
    px = procs.proxy([be.port], extra=["--persistent",
                                       "--set", "health.max_fails=0"])
    for _ in range(5):
        data, closed = exchange(px.port, b"GET / HTTP/1.1\r\n" + H +
                                b"\r\n")
        assert closed
        # a 502 if nothing was relayed yet, else a body cut short
        if statuses(data) == [502]:
            continue
        with pytest.raises(EOFError):
            read_response(io.BytesIO(data))


def test_truncated_chunked_response_has_no_final_chunk(procs, rec):
    be = rec(lambda c, n, h, b: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: "
             b"chunked\r\n\r\n5\r\nhello\r\n3\r\nab",
             close_after=lambda c, n: True)
    px = procs.proxy([be.port], extra=["--persistent",
                                       "--set", "health.max_fails=0"])
    data, closed = exchange(px.port, b"GET / HTTP/1.1\r\n" + H + b"\r\n")
    assert closed
    assert statuses(data) in ([200], [502])
    assert not data.endswith(b"0\r\n\r\n")
    assert b"\r\n0\r\n" not in data.split(b"\r\n\r\n", 1)[1]


def test_invalid_chunk_in_response_closes_without_final_chunk(procs, rec):
    # the head is already relayed when the bad chunk size arrives: the only
    # honest ending is a close without the final chunk
    be = rec(lambda c, n, h, b: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: "
             b"chunked\r\n\r\n5\r\nhello\r\nzz\r\n")
    px = procs.proxy([be.port], extra=["--persistent",
                                       "--set", "health.max_fails=0"])
    data, closed = exchange(px.port, b"GET / HTTP/1.1\r\n" + H + b"\r\n",
                            timeout=2)
    # a 502 if nothing was relayed yet, else a cut-off body and a close
    assert statuses(data) in ([200], [502])
    assert closed or statuses(data) == [502]
    assert b"\r\n0\r\n\r\n" not in data


def test_truncated_close_delimited_response_to_http10(procs, rec):
    # read-until-close is complete by definition: it must arrive whole
    be = rec(lambda c, n, h, b: b"HTTP/1.0 200 OK\r\n\r\nall of it",
             close_after=lambda c, n: True)
    px = procs.proxy([be.port])
    data, closed = exchange(px.port, b"GET / HTTP/1.0\r\n\r\n")
    assert closed and data.endswith(b"all of it")


def test_body_longer_than_content_length_is_cut_and_connection_dropped(
        procs, rec):
    be = rec(lambda c, n, h, b: b"HTTP/1.1 200 OK\r\nContent-Length: 3"
             b"\r\n\r\nabcEXTRA")
    px = procs.proxy([be.port], extra=["--persistent",
                                       "--set", "health.max_fails=0"])
    with Conn(px.port) as c:
        r = c.request()
        assert r.body == b"abc"
        r = c.request()
        assert r.body == b"abc"
    assert be.accepts == 2


def test_pool_reuse_only_after_clean_response(procs, rec):
    be = rec(lambda c, n, h, b: ok(b"x"))
    px = procs.proxy([be.port], extra=["--persistent"])
    with Conn(px.port) as c:
        for _ in range(10):
            assert c.request().status == 200
    assert be.accepts == 1


def test_early_response_before_the_body_closes_cleanly(procs):
    """A backend that answers 413 before reading a big body: the client gets
    that answer, and the upstream connection is not reused."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    port = lsock.getsockname()[1]
    accepts = []

    def serve():
        while True:
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            accepts.append(1)
            try:
                buf = b""
                while b"\r\n\r\n" not in buf:
                    d = conn.recv(65536)
                    if not d:
                        break
                    buf += d
                if b"/big" in buf:
                    conn.sendall(b"HTTP/1.1 413 Too Big\r\nContent-Length: 3"
                                 b"\r\nConnection: close\r\n\r\nbig")
                    conn.shutdown(socket.SHUT_WR)
                    time.sleep(0.3)
                else:
                    conn.sendall(ok(b"small"))
                    time.sleep(0.3)
            except OSError:
                pass
            finally:
                conn.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        px = procs.proxy([port], extra=["--set", "health.max_fails=0"])
        with Conn(px.port) as c:
            c.send(b"POST /big HTTP/1.1\r\n" + H +
                   b"Content-Length: 50000000\r\n\r\n")
            sent = 0
            try:
                c.sock.settimeout(0.2)
                while sent < 50_000_000:
                    c.sock.send(b"x" * 65536)
                    sent += 65536
            except (socket.timeout, BrokenPipeError, ConnectionResetError):
                pass
            c.sock.settimeout(5)
            r = c.read()
            assert r.status == 413 and r.body == b"big"
        with Conn(px.port) as c:
            assert c.request(path="/s").body == b"small"
    finally:
        lsock.close()
        t.join(5)


def test_empty_header_values_are_forwarded(stack):
    # regression (found by fuzz_request): an empty value looked folded
    px, be = stack
    data, _ = exchange(px.port, b"GET / HTTP/1.1\r\n" + H + b"X-Empty:\r\n"
                       b"X-Blank: \r\nConnection: close\r\n\r\n")
    assert statuses(data) == [200]
    head = one_head(be)
    assert "\r\nX-Empty: \r\n" in head and "\r\nX-Blank: \r\n" in head


def test_http10_request_without_host_gets_an_empty_host(stack):
    px, be = stack
    data, _ = exchange(px.port, b"GET /old HTTP/1.0\r\n\r\n")
    assert statuses(data) == [200]
    assert one_head(be).startswith("GET /old HTTP/1.1\r\nHost: \r\n")

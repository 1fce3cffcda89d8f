"""A scriptable HTTP backend for tests that need exact bytes on the wire.

RawBackend runs a thread that accepts connections on 127.0.0.1 (or `host`:
any address the calling thread's network namespace has) and hands each
received request head (and body, by Content-Length) to a `respond(conn_no,
req_no, head, body)` function, which returns the bytes to send (or None to
close without answering).  It records every head it saw and counts accepts.
An optional `preamble(conn)` reads what a connection starts with before its
first request (a PROXY protocol header) and returns (what it read, the
bytes after it); `preambles[conn_no]` keeps the first; read_proxy_header is
that reader for a PROXY protocol v1 or v2 header.
"""
import socket
import struct
import threading

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


class RawBackend:
    def __init__(self, respond, close_after=None, preamble=None,
                 host="127.0.0.1", sock=None):
        self.respond = respond
        self.preamble = preamble
        self.preambles = {}
        self.close_after = close_after  # callable(conn_no, req_no) -> bool
        # sock: a fresh TCP socket to listen on, e.g. one made in another
        # network namespace (tests/lib/netns.py); default a new one here.
        self.sock = sock or socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(128)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.heads = []
        self.bodies = []
        self.accepts = 0
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.accepts += 1
                conn_no = self.accepts
            threading.Thread(target=self._conn, args=(conn, conn_no),
                             daemon=True).start()

    def _conn(self, conn, conn_no):
        conn.settimeout(10)
        buf = b""
        req_no = 0
        try:
            if self.preamble:
                what, buf = self.preamble(conn)
                with self.lock:
                    self.preambles[conn_no] = what
            while not self.stopping:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                length = 0
                chunked = False
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                    if name.strip().lower() == b"transfer-encoding":
                        chunked = True
                if chunked:
                    body, buf = self._read_chunked(conn, buf)
                else:
                    while len(buf) < length:
                        data = conn.recv(65536)
                        if not data:
                            return
                        buf += data
                    body, buf = buf[:length], buf[length:]
                req_no += 1
                with self.lock:
                    self.heads.append(head.decode("latin-1"))
                    self.bodies.append(body)
                out = self.respond(conn_no, req_no, head.decode("latin-1"),
                                   body)
                if out is None:
                    return
                conn.sendall(out)
                if self.close_after and self.close_after(conn_no, req_no):
                    return
        except OSError:
            return
        finally:
            conn.close()

    @staticmethod
    def _read_chunked(conn, buf):
        body = b""
        while True:
            while b"\r\n" not in buf:
                buf += conn.recv(65536)
            line, buf = buf.split(b"\r\n", 1)
            size = int(line.split(b";")[0], 16)
            while len(buf) < size + 2:
                buf += conn.recv(65536)
            body += buf[:size]
            buf = buf[size + 2:]
            if size == 0:
                return body, buf

    def close(self):
        self.stopping = True
        self.sock.close()


def read_proxy_header(conn):
    """A RawBackend preamble: the PROXY header a connection starts with, as
    text ("PROXY TCP4 ...", "v2 SRC DST SPORT DPORT", "v2 LOCAL")."""
    buf = b""
    while len(buf) < 16:
        d = conn.recv(4096)
        if not d:
            raise OSError("closed before a PROXY header")
        buf += d
    if buf.startswith(b"PROXY "):
        while b"\r\n" not in buf:
            buf += conn.recv(4096)
        line, buf = buf.split(b"\r\n", 1)
        return line.decode(), buf
    assert buf.startswith(V2_SIG), buf[:16]
    n = 16 + struct.unpack("!H", buf[14:16])[0]
    while len(buf) < n:
        buf += conn.recv(4096)
    hdr, buf = buf[:n], buf[n:]
    if hdr[12] == 0x20:
        return "v2 LOCAL", buf
    fam, alen = {0x11: (socket.AF_INET, 4), 0x21: (socket.AF_INET6, 16)}[
        hdr[13]]
    a = hdr[16:]
    src = socket.inet_ntop(fam, a[:alen])
    dst = socket.inet_ntop(fam, a[alen:2 * alen])
    sp, dp = struct.unpack("!HH", a[2 * alen:2 * alen + 4])
    return f"v2 {src} {dst} {sp} {dp}", buf


class HeadServer(RawBackend):
    """Reads one request head from each connection and hands the connection
    to `handle(conn, head)`, which sends what it likes (or resets); the
    connection is closed afterwards."""

    def __init__(self, handle):
        self.handle = handle  # set before the accepting thread starts
        super().__init__(respond=None)

    def _conn(self, conn, conn_no):
        try:
            conn.settimeout(2)
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = conn.recv(4096)
                if not d:
                    break
                buf += d
            self.handle(conn, buf)
        except OSError:
            pass
        finally:
            conn.close()


def ok(body=b"ok", extra=b""):
    return (b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\n" + extra + b"\r\n" + body)

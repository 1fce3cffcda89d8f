"""A raw-socket WebSocket client (RFC 6455) for the tunnel tests and
scripts/tunnelbench.py: the opening handshake over a plain socket, masked
client frames, the server's unmasked frames read back whole, and the close
handshake.  Written here so the tests need no outside library; it checks
what it reads (Sec-WebSocket-Accept, a server frame is never masked) so a
broken tunnel cannot pass.
"""
import base64
import hashlib
import os
import socket
import struct

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA


def accept_of(key):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def frame(op, payload=b"", fin=True, mask=True, rsv=0):
    """One client frame: masked with a random key unless mask=False."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | op
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, m | n)
    elif n <= 0xFFFF:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    k = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")
              ).to_bytes(n, "big") if n else b""
    return head + key + masked


class WebSocket:
    """One connection: handshake() then send()/recv() frames."""

    def __init__(self, port, timeout=10, rcvbuf=None):
        """Connects to 127.0.0.1:port; rcvbuf sets SO_RCVBUF first (a
        small one makes a client that does not read stall its sender
        sooner)."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        self.head = None

    def send_raw(self, data):
        self.sock.sendall(data)

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"closed with {len(self.buf)} of {n} bytes")
            self.buf += chunk

    def _take(self, n):
        self._fill(n)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_head(self):
        """The HTTP response head (status, {lowercase name: value}); what
        follows it stays buffered."""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("closed before a response head")
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        self.head = (status, headers)
        return status, headers

    def request(self, path="/ws", key=None, extra=b"", upgrade=b"websocket",
                connection=b"Upgrade", after=b""):
        """Sends an opening handshake (and `after` right behind it, in the
        same write); returns the key used."""
        key = key or base64.b64encode(os.urandom(16)).decode()
        self.send_raw(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n"
                      b"Upgrade: " + upgrade + b"\r\n"
                      b"Connection: " + connection + b"\r\n"
                      b"Sec-WebSocket-Key: " + key.encode() + b"\r\n"
                      b"Sec-WebSocket-Version: 13\r\n" + extra + b"\r\n"
                      + after)
        return key

    def handshake(self, path="/ws", after=b""):
        """The whole opening handshake; asserts a correct 101."""
        key = self.request(path, after=after)
        status, h = self.read_head()
        assert status == 101, (status, h)
        assert h["upgrade"][0].lower() == "websocket", h
        assert "upgrade" in h["connection"][0].lower(), h
        assert h["sec-websocket-accept"] == [accept_of(key)], h
        return h

    def send(self, op, payload=b"", fin=True):
        self.send_raw(frame(op, payload, fin))

    def recv(self):
        """One server frame: (fin, opcode, payload); server frames must
        not be masked."""
        b0, b1 = self._take(2)
        assert not b1 & 0x80, "a server frame came masked"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._take(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._take(8))[0]
        return bool(b0 & 0x80), b0 & 0x0F, self._take(n)

    def close_handshake(self, code=1000):
        """Sends close with `code`; returns the code the server answered
        with, after checking that the connection then ends."""
        self.send(OP_CLOSE, struct.pack("!H", code))
        fin, op, payload = self.recv()
        assert fin and op == OP_CLOSE, (fin, op, payload)
        assert self.sock.recv(1) == b"", "bytes after the server's close"
        return struct.unpack("!H", payload)[0] if payload else None

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

"""Helpers for the hardening tests (smuggling, faults, exhaustion); the
raw exchange, the slow-header clients and the /proc probes they also use
are in tests/lib/lbtest.py.

RecordingBackend is a RawBackend that also keeps every byte each upstream
connection delivered, so a test can assert exactly what the backend saw on
the wire (not only what its own parser made of it)."""
import io
import threading
import time

from httpc import Conn, read_response
from rawbackend import RawBackend


class _Tap:
    """Wraps a socket so that every received byte is also recorded."""

    def __init__(self, sock, sink):
        self._sock = sock
        self._sink = sink

    def recv(self, n):
        b = self._sock.recv(n)
        self._sink.extend(b)
        return b

    def __getattr__(self, name):
        return getattr(self._sock, name)


class RecordingBackend(RawBackend):
    def __init__(self, respond, **kw):
        self.raw = {}  # conn_no -> bytearray of everything received
        super().__init__(respond, **kw)

    def _conn(self, conn, conn_no):
        sink = bytearray()
        with self.lock:
            self.raw[conn_no] = sink
        super()._conn(_Tap(conn, sink), conn_no)

    def all_raw(self):
        with self.lock:
            return b"".join(bytes(self.raw[k]) for k in sorted(self.raw))


def statuses(data):
    """Status codes of the responses in a byte stream, parsed in order with
    the strict test client; a response cut short still counts."""
    f = io.BytesIO(data)
    out = []
    while True:
        pos = f.tell()
        try:
            r = read_response(f)
        except (EOFError, ValueError):
            line = data[pos:pos + 12]
            if line.startswith(b"HTTP/1.") and line[9:12].isdigit():
                out.append(int(line[9:12]))
            break
        if r is None:
            break
        out.append(r.status)
    return out




class Load:
    """A bounded closed-loop load: `n` threads each doing keep-alive GETs
    through the proxy, counting outcomes, until stop()."""

    def __init__(self, port, n=4, path="/", reconnect_every=50):
        self.port = port
        self.path = path
        self.reconnect_every = reconnect_every
        self.ok = 0
        self.errors = 0
        self.status = {}
        self.truncated = 0  # responses that ended early (never "complete")
        self.lock = threading.Lock()
        self.stopping = False
        self.threads = [threading.Thread(target=self._run, daemon=True)
                        for _ in range(n)]
        self.events = []  # (monotonic time, ok?)

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def _note(self, ok, status=None, truncated=False):
        with self.lock:
            if ok:
                self.ok += 1
            else:
                self.errors += 1
            if status is not None:
                self.status[status] = self.status.get(status, 0) + 1
            if truncated:
                self.truncated += 1
            self.events.append((time.monotonic(), ok))

    def _run(self):
        c = None
        n = 0
        while not self.stopping:
            try:
                if c is None:
                    c = Conn(self.port, timeout=5)
                r = c.request(path=self.path)
                if r is None:
                    raise EOFError("closed")
                self._note(r.status == 200, r.status)
                n += 1
                if r.status != 200 or n % self.reconnect_every == 0 or \
                        (r.header("connection") or "").lower() == "close":
                    c.close()
                    c = None
            except EOFError as e:
                self._note(False, truncated="truncated" in str(e))
                if c:
                    c.close()
                c = None
            except OSError:
                self._note(False)
                if c:
                    c.close()
                c = None
        if c:
            c.close()

    def stop(self):
        self.stopping = True
        for t in self.threads:
            t.join(15)

    def total(self):
        return self.ok + self.errors

    def errors_after(self, t):
        with self.lock:
            return sum(1 for ts, ok in self.events if ts >= t and not ok)

    def count_after(self, t):
        with self.lock:
            return sum(1 for ts, ok in self.events if ts >= t)

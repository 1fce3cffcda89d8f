"""Helpers for the hardening tests (smuggling, faults, exhaustion).

RecordingBackend is a RawBackend that also keeps every byte each upstream
connection delivered, so a test can assert exactly what the backend saw on
the wire (not only what its own parser made of it)."""
import os
import socket
import threading
import time

from conftest import fd_count, rss_kb  # noqa: F401 (re-exported)
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


def read_until_close(sock, timeout=5.0):
    """Everything the peer sends until it closes (or timeout); also reports
    whether the peer closed."""
    sock.settimeout(0.5)
    chunks = []
    deadline = time.monotonic() + timeout
    closed = False
    while time.monotonic() < deadline:
        try:
            b = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            closed = True
            break
        if not b:
            closed = True
            break
        chunks.append(b)
    return b"".join(chunks), closed


def exchange(port, raw, timeout=5.0):
    """Sends raw bytes (keeping the write side open) and returns (bytes
    received until close, closed?)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return read_until_close(s, timeout)


def statuses(data):
    """Status codes of the responses in a byte stream, parsed in order with
    the strict test client; a response cut short still counts."""
    import io
    from httpc import read_response
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




def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


def wait_until(pred, timeout=10.0, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


class Load:
    """A bounded closed-loop load: `n` threads each doing keep-alive GETs
    through the proxy, counting outcomes, until stop()."""

    def __init__(self, port, n=4, path="/", reconnect_every=50):
        from httpc import Conn
        self.Conn = Conn
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
                    c = self.Conn(self.port, timeout=5)
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


class SlowClients:
    """`n` connections that each send the start of a request head and then
    (optionally) one more header byte now and then, never finishing it
    (slowloris).  Bounded: the caller closes them."""

    def __init__(self, port, n, head=b"GET / HTTP/1.1\r\nHost: t\r\n"):
        import selectors
        self.sel = selectors.DefaultSelector()
        self.socks = []
        self.data = {}
        self.closed_at = {}
        self.t0 = time.monotonic()
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(head)
            s.setblocking(False)
            self.socks.append(s)
            self.data[s.fileno()] = b""
            self.sel.register(s, selectors.EVENT_READ)

    def trickle(self):
        """Sends one more header byte on every open connection."""
        for s in self.socks:
            if s.fileno() in self.closed_at or s.fileno() < 0:
                continue
            try:
                s.send(b"X")
            except OSError:
                pass

    def poll(self, timeout=0.1):
        """Reads what arrived; records when each connection was closed."""
        for key, _ in self.sel.select(timeout):
            s = key.fileobj
            try:
                b = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                b = b""
            if b:
                self.data[s.fileno()] += b
            else:
                self.closed_at[s.fileno()] = time.monotonic()
                self.sel.unregister(s)

    def nclosed(self):
        return len(self.closed_at)

    def close(self):
        for s in self.socks:
            try:
                self.sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()
        self.sel.close()

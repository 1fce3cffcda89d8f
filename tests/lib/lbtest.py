"""Helpers shared by the e2e tests (tests/e2e/) and the by-hand test scripts
(scripts/*.py): free ports, readiness and condition polling, /proc probes of
a process, a raw exchange over one connection, and a crowd of slow-header
clients.

It lives in tests/lib/ beside httpc.py (the strict test client) so that
neither side imports the other's private modules: tests/e2e/conftest.py and
each script put this folder on sys.path.  Nothing here knows pytest.
"""
import http.client
import inspect
import json
import os
import selectors
import socket
import time
import urllib.request


def free_port():
    """A port that was free a moment ago (bind to 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0, proc=None):
    """Polls until 127.0.0.1:port accepts a connection; raises
    RuntimeError at once if `proc` (a Popen) exits first, TimeoutError
    after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} "
                               f"before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def _describe(pred):
    try:
        return inspect.getsource(pred).strip()
    except (OSError, TypeError):
        return repr(pred)


def wait_until(pred, timeout=10.0, what=None, step=0.02):
    """Polls pred() until it returns a true value and returns that value.
    pred() is called at least once after the deadline; if it is still
    false, raises TimeoutError naming `what` (default: pred's source)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for "
                               f"{what or _describe(pred)} (last: {v!r})")
        time.sleep(step)


def rss_kb(pid):
    """Resident set size of a process, KiB (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    """Open descriptors of a process."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def proc_state(pid):
    """The one-letter state of a process from /proc (T = stopped), "" when
    it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return ""
    return s[s.rfind(")") + 2:].split()[0]


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


def read_until_close(sock, timeout=5.0):
    """Everything the peer sends until it closes (or timeout); also reports
    whether the peer closed (EOF or reset)."""
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
    """Sends raw bytes to 127.0.0.1:port (keeping the write side open) and
    returns (bytes received until close or timeout, closed?)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return read_until_close(s, timeout)


class SlowClients:
    """`n` connections that each send the start of a request head and then
    (optionally) one more header byte now and then, never finishing it
    (slowloris).  Bounded: the caller closes them."""

    def __init__(self, port, n, head=b"GET / HTTP/1.1\r\nHost: t\r\n"):
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


def http_text(port, path, timeout=5.0):
    """The body of GET http://127.0.0.1:PORT/PATH as text (an error status
    raises urllib.error.HTTPError): for the admin listener's pages."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",
                                timeout=timeout) as r:
        return r.read().decode()


def http_json(port, path="/api/stats", timeout=5.0):
    """The same, parsed as JSON (by default the admin's /api/stats)."""
    return json.loads(http_text(port, path, timeout))


def write_token(dirpath, token, mode=0o600):
    """Writes a runtime-API bearer token file (proxy.admin_token_file) into
    dirpath; returns its path."""
    path = os.path.join(str(dirpath), "token")
    with open(path, "w") as f:
        f.write(token + "\n")
    os.chmod(path, mode)
    return path


def admin_call(port, method, path, body=None, token=None, headers=None,
               timeout=5.0):
    """One call to the admin listener's runtime API: body (a dict is sent as
    JSON; bytes or str as they are), the bearer token if given.  Returns
    (status, the http.client response, the parsed JSON body or None)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if body is not None:
        h["Content-Type"] = "application/json"
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
    finally:
        c.close()
    return r.status, r, json.loads(data) if data else None

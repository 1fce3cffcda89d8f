"""A strict little HTTP/1.1 client for tests: raw requests out, responses
parsed one at a time from a buffered reader (so pipelined responses can be
read in order)."""
import socket


class Response:
    def __init__(self, status, reason, headers, body, version):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (lower-name, value)
        self.body = body
        self.version = version

    def header(self, name):
        vals = [v for n, v in self.headers if n == name.lower()]
        return vals[-1] if vals else None

    def header_all(self, name):
        return [v for n, v in self.headers if n == name.lower()]


def read_response(f, method="GET"):
    """Reads one response from a binary file object; None on clean EOF."""
    line = f.readline(65537)
    if not line:
        return None
    version, _, rest = line.rstrip(b"\r\n").partition(b" ")
    code, _, reason = rest.partition(b" ")
    headers = []
    while True:
        h = f.readline(65537)
        if h in (b"\r\n", b"\n", b""):
            break
        n, _, v = h.rstrip(b"\r\n").partition(b":")
        headers.append((n.strip().lower().decode(), v.strip().decode()))
    status = int(code)
    r = Response(status, reason.decode(), headers, b"", version.decode())
    te = r.header("transfer-encoding")
    cl = r.header("content-length")
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return r
    if te and "chunked" in te.lower():
        body = b""
        while True:
            size_line = f.readline()
            if not size_line:
                raise EOFError("truncated chunked body")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                while f.readline() not in (b"\r\n", b""):
                    pass
                break
            chunk = f.read(size)
            if len(chunk) < size:
                raise EOFError("truncated chunk")
            body += chunk
            f.readline()
        r.body = body
    elif cl is not None:
        n = int(cl)
        r.body = f.read(n)
        if len(r.body) < n:
            raise EOFError("truncated body")
    else:
        r.body = f.read()
    return r


class Conn:
    """One client connection to 127.0.0.1:port."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        self.f = self.sock.makefile("rb")

    def send(self, raw):
        self.sock.sendall(raw)

    def request(self, method="GET", path="/", headers=(), body=b"",
                version="1.1"):
        hs = [f"{method} {path} HTTP/{version}", "Host: test"]
        hs += [f"{k}: {v}" for k, v in headers]
        if body:
            hs.append(f"Content-Length: {len(body)}")
        self.send(("\r\n".join(hs) + "\r\n\r\n").encode() + body)
        return read_response(self.f, method)

    def read(self, method="GET"):
        return read_response(self.f, method)

    def closed_by_peer(self):
        """True if the server closed the connection (EOF, no more bytes)."""
        try:
            return self.f.read(1) == b""
        except (ConnectionResetError, socket.timeout):
            return True

    def close(self):
        self.f.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def get(port, path="/", **kw):
    with Conn(port) as c:
        return c.request(path=path, **kw)

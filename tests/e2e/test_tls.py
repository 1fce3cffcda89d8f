"""TLS termination end to end: real ./lbproxy with --tls-listen in front of
real backends, certificates made at test time (ECDSA P-256), and clients
from Python's ssl module, `openssl s_client` and `curl --resolve`.  Proves
requests and bodies cross TLS intact with X-Forwarded-Proto: https, SNI
picks the certificate (wildcards in one label), ALPN answers http/1.1,
sessions resume (and do not when resumption is off), hostile handshakes
(garbage, silence, a dribble, a truncated record) end in a clean close
or at the handshake deadline without disturbing other clients, the
counters and the CSV log say what happened, and SIGHUP swaps certificates
while a bad one is refused."""
import csv
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

from httpc import read_response
from lbtest import free_port, http_json, http_text, rss_kb, wait_until
from rawbackend import RawBackend, ok
from tlscerts import make_cert

OPENSSL = shutil.which("openssl")
CURL = shutil.which("curl")
pytestmark = pytest.mark.skipif(not OPENSSL, reason="needs openssl")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("certs"))
    return {
        "dflt": make_cert(d, "dflt", "default.test", ["default.test"]),
        "b": make_cert(d, "b", "b.test", ["b.test"]),
        "w": make_cert(d, "w", "w.test", ["w.test", "*.w.test"]),
        "b2": make_cert(d, "b2", "b.test", ["b.test"]),
    }


def tls_proxy(procs, backends, pairs, extra=(), admin=None):
    """lbproxy with a TLS listener serving `pairs` (cert, key); p.tls_port."""
    port = free_port()
    args = ["--tls-listen", f"127.0.0.1:{port}"]
    for cert, key in pairs:
        args += ["--tls-cert", cert, "--tls-key", key]
    p = procs.proxy(backends, extra=args + list(extra), admin=admin)
    p.tls_port = port
    return p


def client_ctx(*cas, alpn=("http/1.1",), **kw):
    ctx = ssl.create_default_context()
    for ca in cas:
        ctx.load_verify_locations(ca)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def tls_conn(port, ctx, host, session=None, timeout=10):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname=host, session=session)


def https_get(s, path="/", host="t", headers=()):
    hs = [f"GET {path} HTTP/1.1", f"Host: {host}", *headers]
    s.sendall(("\r\n".join(hs) + "\r\n\r\n").encode())
    return read_response(s.makefile("rb"))


def served_subject(port, servername=None, extra=()):
    """The subject and ALPN line `openssl s_client` reports."""
    args = [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", *extra]
    args += ["-servername", servername] if servername else ["-noservername"]
    out = subprocess.run(args, input=b"", capture_output=True,
                         timeout=20).stdout.decode()
    subj = [ln for ln in out.splitlines() if ln.startswith("subject=")]
    alpn = [ln for ln in out.splitlines() if "ALPN" in ln]
    return (subj[0] if subj else None), (alpn[0] if alpn else None), out




def closed_within(sock, seconds):
    """Reads until EOF (alert bytes allowed); True if EOF came in time."""
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


class Handshaker:
    """A TLS client over a raw socket through memory BIOs, so a test
    decides exactly which bytes go out and when."""

    def __init__(self, port, ctx, host):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname=host)

    def client_hello(self):
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return self.out.read()

    def finish(self):
        """Completes the handshake, sending whole flights."""
        for _ in range(100):
            try:
                self.obj.do_handshake()
                self.sock.sendall(self.out.read())
                return
            except ssl.SSLWantReadError:
                self.sock.sendall(self.out.read())
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("closed during the handshake")
                self.inc.write(data)
        raise TimeoutError("handshake did not finish")

    def record(self, plain):
        self.obj.write(plain)
        return self.out.read()


# ---- requests over TLS ----

def test_https_request_reaches_backend_with_forwarded_proto(procs, certs):
    be = RawBackend(lambda c, n, head, body: ok(b"hi"))
    try:
        px = tls_proxy(procs, [be.port], [certs["b"]])
        with tls_conn(px.tls_port, client_ctx(certs["b"][0],
                                               alpn=("h2", "http/1.1")),
                      "b.test") as s:
            assert s.selected_alpn_protocol() == "http/1.1"
            assert s.version() in ("TLSv1.3", "TLSv1.2")
            r = https_get(s, host="b.test")
            assert r.status == 200 and r.body == b"hi"
        # and the plain listener still says http
        raw = socket.create_connection(("127.0.0.1", px.port), timeout=5)
        raw.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(raw.makefile("rb")).status == 200
        raw.close()
        heads = [h.lower() for h in be.heads]
        assert "x-forwarded-proto: https" in heads[0]
        assert "x-forwarded-proto: http\r" in heads[1]
    finally:
        be.close()


def test_bodies_pipelining_and_large_responses_cross_tls_intact(procs, certs):
    echo = procs.backend(extra=["--echo"])
    big = procs.backend(bid="B", extra=["--body-bytes", str(3 * 1024 * 1024)])
    px = tls_proxy(procs, [echo.port], [certs["b"]])
    ctx = client_ctx(certs["b"][0])
    body = os.urandom(1024 * 1024 + 17)
    with tls_conn(px.tls_port, ctx, "b.test") as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: b\r\nContent-Length: "
                  + str(len(body)).encode() + b"\r\n\r\n" + body)
        f = s.makefile("rb")
        r = read_response(f)
        assert r.status == 200 and r.body == body
        # ten pipelined requests in one record, answered in order
        s.sendall(b"".join(b"POST /echo HTTP/1.1\r\nHost: b\r\n"
                           b"Content-Length: 2\r\n\r\n%02d" % i
                           for i in range(10)))
        assert [read_response(f).body for _ in range(10)] == \
            [b"%02d" % i for i in range(10)]
    px2 = tls_proxy(procs, [big.port], [certs["b"]])
    with tls_conn(px2.tls_port, ctx, "b.test") as s:
        # a slow reader: 3 MiB arrive whole through the backpressure
        s.sendall(b"GET /big HTTP/1.1\r\nHost: b\r\n\r\n")
        time.sleep(0.3)
        r = read_response(s.makefile("rb"))
        assert r.status == 200 and len(r.body) == 3 * 1024 * 1024


def test_connection_close_over_tls_many_times(procs, certs):
    # each answer ends its session while the drive loop is still running
    # (a use-after-free of the TLS state under ASan before the fix)
    be = procs.backend()
    px = tls_proxy(procs, [be.port], [certs["b"]])
    ctx = client_ctx(certs["b"][0])
    fails = []

    def worker():
        for _ in range(40):
            try:
                with tls_conn(px.tls_port, ctx, "b.test") as s:
                    r = https_get(s, headers=["Connection: close"])
                    if r.status != 200:
                        fails.append(r.status)
            except OSError as e:
                fails.append(e)
    ths = [threading.Thread(target=worker) for _ in range(5)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    assert fails == [] and px.poll() is None


@pytest.mark.skipif(not CURL, reason="needs curl")
def test_curl_resolve_https(procs, certs):
    be = procs.backend(bid="A")
    px = tls_proxy(procs, [be.port], [certs["dflt"], certs["b"]])
    out = subprocess.run(
        [CURL, "-sS", "--resolve", f"b.test:{px.tls_port}:127.0.0.1",
         "--cacert", certs["b"][0], "-o", "-", "-w", "\n%{http_code}",
         f"https://b.test:{px.tls_port}/x"],
        capture_output=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().rsplit("\n", 1)[1] == "200"


# ---- certificates, ALPN, resumption ----

def test_sni_picks_the_certificate_and_alpn_says_http11(procs, certs):
    be = procs.backend()
    px = tls_proxy(procs, [be.port],
                   [certs["dflt"], certs["b"], certs["w"]])
    cases = {None: "default.test", "b.test": "b.test", "B.Test": "b.test",
             "w.test": "w.test", "x.w.test": "w.test",
             "a.x.w.test": "default.test", "unknown.test": "default.test"}
    for name, cn in cases.items():
        subj, alpn, out = served_subject(px.tls_port, name,
                                         ["-alpn", "h2,http/1.1"])
        assert subj is not None, out
        assert subj.endswith(f"CN = {cn}"), (name, subj)
        assert alpn == "ALPN protocol: http/1.1", (name, alpn)
    # Python's verifying client agrees for the wildcard
    with tls_conn(px.tls_port, client_ctx(certs["w"][0]), "api.w.test") as s:
        assert https_get(s).status == 200


def resumed_pair(port, ctx, host):
    """Two connections, the second offering the first one's session."""
    with tls_conn(port, ctx, host) as s:
        assert https_get(s).status == 200  # the tickets arrive with it
        sess = s.session
        assert not s.session_reused
    with tls_conn(port, ctx, host, session=sess) as s:
        assert https_get(s).status == 200
        return s.session_reused


@pytest.mark.parametrize("version", ["TLSv1_3", "TLSv1_2"])
def test_sessions_resume_and_are_counted(procs, certs, tmp_path, version):
    be = procs.backend()
    admin = free_port()
    log = tmp_path / "tls.csv"
    px = tls_proxy(procs, [be.port], [certs["b"]], admin=admin,
                   extra=["--log", str(log), "--set", "proxy.log_flush_ms=10"])
    v = getattr(ssl.TLSVersion, version)
    ctx = client_ctx(certs["b"][0], minimum_version=v, maximum_version=v)
    assert resumed_pair(px.tls_port, ctx, "b.test")
    t = wait_until(lambda: http_json(admin)["total"]["tls"]
                   if http_json(admin)["total"]["tls"]["handshakes"] >= 2
                   else None)
    assert t["resumed"] == 1 and t["handshakes"] == 2
    metrics = http_text(admin, "/metrics")
    assert 'lbproxy_tls_handshakes_total{kind="resumed"} 1' in metrics
    assert 'lbproxy_tls_handshakes_total{kind="full"} 1' in metrics
    rows = wait_until(lambda: (lambda r: r if len(r) >= 2 else None)(
        list(csv.DictReader(open(log)))))
    want = "TLSv1.3" if version == "TLSv1_3" else "TLSv1.2"
    assert [r["tls_version"] for r in rows] == [want, want]
    assert [r["tls_resumed"] for r in rows] == ["0", "1"]
    assert all(r["tls_cipher"] and float(r["tls_handshake_ms"]) >= 0
               for r in rows)


def test_a_resumed_connection_gets_a_fresh_ticket(procs, certs):
    """Each connection offers the ticket of the one before, as a client
    that uses every ticket once does (RFC 8446 C.4; wrk reconnects so):
    every one after the first resumes and leaves with a new ticket.  A
    resumption that issued none (OpenSSL's TLS 1.3 default when the
    ticket key callback does not ask for a renewal) left such a client
    with a spent ticket, so every other connection was a full
    handshake."""
    be = procs.backend()
    px = tls_proxy(procs, [be.port], [certs["b"]])
    ctx = client_ctx(certs["b"][0], minimum_version=ssl.TLSVersion.TLSv1_3)
    sess = None
    for i in range(5):
        with tls_conn(px.tls_port, ctx, "b.test", session=sess) as s:
            assert https_get(s).status == 200  # the tickets arrive with it
            assert s.session_reused == (i > 0), i
            assert sess is None or s.session.id != sess.id, i
            sess = s.session


def test_tickets_outlive_a_reload(procs, certs):
    # the ticket keys belong to the process, not to one configuration
    be = procs.backend()
    px = tls_proxy(procs, [be.port], [certs["b"]])
    ctx = client_ctx(certs["b"][0])
    with tls_conn(px.tls_port, ctx, "b.test") as s:
        assert https_get(s).status == 200
        sess = s.session
    px.send_signal(signal.SIGHUP)
    wait_until(lambda: "reloaded" in open(px.logfile).read())
    with tls_conn(px.tls_port, ctx, "b.test", session=sess) as s:
        assert https_get(s).status == 200
        assert s.session_reused


def test_resumption_off_means_full_handshakes(procs, certs):
    be = procs.backend()
    px = tls_proxy(procs, [be.port], [certs["b"]],
                   extra=["--set", "tls.resumption=false"])
    for v in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        ctx = client_ctx(certs["b"][0], minimum_version=v, maximum_version=v)
        assert not resumed_pair(px.tls_port, ctx, "b.test")


def test_min_version_refuses_older_clients(procs, certs):
    be = procs.backend()
    admin = free_port()
    px = tls_proxy(procs, [be.port], [certs["b"]], admin=admin,
                   extra=["--set", "tls.min_version=TLS1.3"])
    ctx = client_ctx(certs["b"][0], maximum_version=ssl.TLSVersion.TLSv1_2)
    with pytest.raises(ssl.SSLError):
        tls_conn(px.tls_port, ctx, "b.test")
    wait_until(lambda: http_json(admin)["total"]["tls"]["failed"]["version"]
               == 1)


# ---- hostile handshakes ----

def assert_still_serving(px, ctx):
    with tls_conn(px.tls_port, ctx, "b.test") as s:
        assert https_get(s).status == 200
    assert px.poll() is None


def test_hostile_handshakes_close_cleanly_and_others_go_on(procs, certs):
    be = procs.backend()
    admin = free_port()
    px = tls_proxy(procs, [be.port], [certs["b"]], admin=admin,
                   extra=["--set", "tls.handshake_ms=800"])
    ctx = client_ctx(certs["b"][0])

    def failed():
        return http_json(admin)["total"]["tls"]["failed"]

    # plain HTTP (garbage for TLS) instead of a ClientHello: closed at once
    g = socket.create_connection(("127.0.0.1", px.tls_port), timeout=5)
    g.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n" + b"\x00" * 64)
    assert closed_within(g, 3)
    g.close()
    wait_until(lambda: failed()["protocol"] == 1)

    # silence, half a ClientHello, and a dribble: all closed at the
    # handshake deadline while a normal client is served meanwhile
    t0 = time.monotonic()
    silent = socket.create_connection(("127.0.0.1", px.tls_port))
    half = Handshaker(px.tls_port, ctx, "b.test")
    half.sock.sendall(half.client_hello()[:20])
    drib = Handshaker(px.tls_port, ctx, "b.test")
    hello = drib.client_hello()
    stop = threading.Event()

    def dribble():
        for i in range(len(hello)):
            if stop.is_set():
                return
            try:
                drib.sock.sendall(hello[i:i + 1])
            except OSError:
                return
            time.sleep(0.1)
    th = threading.Thread(target=dribble, daemon=True)
    th.start()
    with tls_conn(px.tls_port, ctx, "b.test") as s:
        assert https_get(s).status == 200
    for sock in (silent, half.sock, drib.sock):
        assert closed_within(sock, 5)
    took = time.monotonic() - t0
    stop.set()
    th.join()
    assert 0.6 < took < 5, took
    for sock in (silent, half.sock, drib.sock):
        sock.close()
    wait_until(lambda: failed()["timeout"] == 3)
    assert_still_serving(px, ctx)


def test_idle_tls_connections_stay_small(procs, certs):
    # 400 idle TLS connections after a 15 KB echo each (so OpenSSL's record
    # buffers were filled): a fraction of a second after their last byte
    # they keep none of them (measured about 14 KiB per plain-GET
    # connection, make tlsidle; the bound here leaves room for lbproxy's
    # pool of free buffers), each is served again with new ones, and a
    # new client is served
    be = procs.backend(extra=["--echo"])
    px = tls_proxy(procs, [be.port], [certs["b"]])
    ctx = client_ctx(certs["b"][0])
    body = os.urandom(15000)
    req = (b"POST /e HTTP/1.1\r\nHost: b\r\nContent-Length: 15000\r\n\r\n"
           + body)
    assert_still_serving(px, ctx)
    before = rss_kb(px.pid)
    idle = []
    try:
        for _ in range(400):
            s = tls_conn(px.tls_port, ctx, "b.test")
            s.sendall(req)
            assert read_response(s.makefile("rb")).body == body
            idle.append(s)
        # ASan's redzones and quarantine make RSS say nothing there
        if "san" not in os.environ.get("LBPROXY", ""):
            # 47 KiB each with the buffers kept
            wait_until(lambda: rss_kb(px.pid) - before < 400 * 30, 5)
        for s in idle[::40]:
            s.sendall(req)
            assert read_response(s.makefile("rb")).body == body
        assert_still_serving(px, ctx)
    finally:
        for s in idle:
            s.close()


def test_slow_but_timely_handshake_and_truncated_record(procs, certs):
    be = procs.backend()
    px = tls_proxy(procs, [be.port], [certs["b"]])
    ctx = client_ctx(certs["b"][0])
    # the ClientHello one byte at a time, then a request: served
    h = Handshaker(px.tls_port, ctx, "b.test")
    for b in h.client_hello():
        h.sock.sendall(bytes([b]))
        time.sleep(0.002)
    h.finish()
    h.sock.sendall(h.record(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"))
    got = b""
    while b"\r\n\r\n" not in got:
        data = h.sock.recv(65536)
        assert data
        h.inc.write(data)
        try:
            got += h.obj.read(65536)
        except ssl.SSLWantReadError:
            pass
    assert got.startswith(b"HTTP/1.1 200")
    h.sock.close()
    # a record cut short, then the client goes: lbproxy closes it
    t = Handshaker(px.tls_port, ctx, "b.test")
    t.sock.sendall(t.client_hello())
    t.finish()
    rec = t.record(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    t.sock.sendall(rec[:len(rec) // 2])
    t.sock.shutdown(socket.SHUT_WR)
    assert closed_within(t.sock, 5)
    t.sock.close()
    # and a record that claims more than a record may hold
    x = Handshaker(px.tls_port, ctx, "b.test")
    x.sock.sendall(x.client_hello())
    x.finish()
    x.sock.sendall(b"\x17\x03\x03\xff\xff" + b"\x00" * 512)
    assert closed_within(x.sock, 5)
    x.sock.close()
    assert_still_serving(px, ctx)


def test_renegotiation_is_refused(procs, certs):
    be = procs.backend()
    px = tls_proxy(procs, [be.port], [certs["b"]])
    # s_client renegotiates on a line "R" (TLS 1.2 has renegotiation)
    p = subprocess.Popen([OPENSSL, "s_client", "-tls1_2", "-connect",
                          f"127.0.0.1:{px.tls_port}", "-servername", "b.test"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    try:
        out, _ = p.communicate(b"R\n", timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert b"RENEGOTIATING" in out
    assert b"no renegotiation" in out
    with tls_conn(px.tls_port, client_ctx(certs["b"][0]), "b.test") as s:
        assert https_get(s).status == 200


# ---- reload and configuration ----

def wait_log(p, text, timeout=10):
    return wait_until(lambda: text in open(p.logfile).read(), timeout,
                      what=f"'{text}' in the lbproxy log")


def test_reload_swaps_certificates_and_refuses_a_bad_one(procs, certs,
                                                         tmp_path):
    cert, key = str(tmp_path / "live.pem"), str(tmp_path / "live.key")
    shutil.copy(certs["b"][0], cert)
    shutil.copy(certs["b"][1], key)
    be = procs.backend()
    px = tls_proxy(procs, [be.port], [(cert, key)])
    old = client_ctx(certs["b"][0])
    new = client_ctx(certs["b2"][0])
    opened = tls_conn(px.tls_port, old, "b.test")
    assert https_get(opened).status == 200
    shutil.copy(certs["b2"][0], cert)
    shutil.copy(certs["b2"][1], key)
    px.send_signal(signal.SIGHUP)
    wait_log(px, "reloaded")
    with tls_conn(px.tls_port, new, "b.test") as s:  # verifies against b2
        assert https_get(s).status == 200
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_conn(px.tls_port, old, "b.test")
    assert https_get(opened).status == 200  # the open one goes on
    opened.close()
    # a broken certificate: the reload is refused, b2 stays
    with open(cert, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot base64\n")
    px.send_signal(signal.SIGHUP)
    wait_log(px, "reload failed")
    assert "live.pem" in open(px.logfile).read()
    # a key that does not match the certificate: refused as well
    shutil.copy(certs["b2"][0], cert)
    shutil.copy(certs["b"][1], key)
    px.send_signal(signal.SIGHUP)
    wait_until(lambda: open(px.logfile).read().count("reload failed") == 2)
    with tls_conn(px.tls_port, new, "b.test") as s:
        assert https_get(s).status == 200


def test_reload_under_load_fails_no_request(procs, certs, tmp_path):
    cert, key = str(tmp_path / "live.pem"), str(tmp_path / "live.key")
    shutil.copy(certs["b"][0], cert)
    shutil.copy(certs["b"][1], key)
    be = procs.backend()
    px = tls_proxy(procs, [be.port], [(cert, key)])
    ctx = client_ctx(certs["b"][0], certs["b2"][0])  # trusts either
    stop = threading.Event()
    done, fails = [0], []

    def client(keep):
        s = None
        while not stop.is_set():
            try:
                if s is None:
                    s = tls_conn(px.tls_port, ctx, "b.test")
                r = https_get(s, headers=[] if keep else
                              ["Connection: close"])
                if r.status != 200:
                    fails.append(r.status)
                done[0] += 1
                if not keep:
                    s.close()
                    s = None
            except (OSError, ValueError) as e:
                fails.append(repr(e))
                s = None
        if s:
            s.close()
    ths = [threading.Thread(target=client, args=(k,)) for k in (1, 0, 0)]
    for t in ths:
        t.start()
    try:
        for i in range(4):
            src = certs["b2" if i % 2 == 0 else "b"]
            shutil.copy(src[0], cert + ".new")
            shutil.copy(src[1], key + ".new")
            os.replace(key + ".new", key)
            os.replace(cert + ".new", cert)
            px.send_signal(signal.SIGHUP)
            wait_until(lambda: open(px.logfile).read().count("reloaded")
                       == i + 1)
            time.sleep(0.2)
    finally:
        stop.set()
        for t in ths:
            t.join()
    assert fails == [] and done[0] > 20, (fails[:3], done[0])


def run_check(args):
    from conftest import LBPROXY
    return subprocess.run([LBPROXY, "--config", "/dev/null", "--backend",
                           "127.0.0.1:1", "--admin", "off", "--log", "off",
                           *args], capture_output=True, timeout=20)


def test_configuration_errors_are_reported(certs, tmp_path):
    c, k = certs["b"]
    r = run_check(["--tls-listen", "127.0.0.1:1", "--check"])
    assert r.returncode == 2 and b"needs a certificate" in r.stderr
    r = run_check(["--tls-key", k, "--tls-cert", c, "--check"])
    assert r.returncode == 2 and b"--tls-key" in r.stderr
    r = run_check(["--tls-cert", c, "--check"])
    assert r.returncode == 2 and b"has no key" in r.stderr
    r = run_check(["--set", "tls.min_version=SSL3", "--check"])
    assert r.returncode == 2 and b"min_version" in r.stderr
    r = run_check(["--tls-cert", c, "--tls-key", k, "--check"])
    assert r.returncode == 0 and b"cert = " + c.encode() in r.stdout
    bad = tmp_path / "bad.pem"
    bad.write_text("nothing\n")
    port = free_port()
    r = run_check(["--listen", f"127.0.0.1:{free_port()}", "--tls-listen",
                   f"127.0.0.1:{port}", "--tls-cert", str(bad), "--tls-key",
                   k])
    assert r.returncode == 1 and b"bad.pem" in r.stderr

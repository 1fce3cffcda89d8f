"""TLS towards backends end to end: real ./lbproxy in front of real
./lbbackend processes serving TLS (--tls-cert/--tls-key) with certificates
made at test time by a throwaway CA.  Proves requests and bodies cross
TLS to the backend in both connection models; pooled TLS connections are
reused (the backend accepts one connection for many requests) and
connections without keep-alive resume their session; a certificate from
another CA or for another name fails the connect, which goes to another
backend or ends in a 502, counted in upstream_tls and named in the CSV
log; verification off accepts a self-signed certificate; the SNI sent is
the configured name; a backend answering garbage or stalling the
handshake ends cleanly (502, connect timeout); hedges and health checks
speak TLS to a TLS backend; a reload with a bad CA file is refused."""
import csv
import json
import os
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import LBPROXY
from dnstest import Dns
from lbtest import (admin_call, free_port, http_json, read_until_close,
                    wait_until, write_token)
from rawbackend import RawBackend
from tlscerts import OPENSSL, make_ca, make_cert, make_signed

pytestmark = pytest.mark.skipif(not OPENSSL, reason="needs openssl")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    ca = make_ca(d, "ca")
    other = make_ca(d, "other")
    bad = os.path.join(d, "bad-ca.pem")
    with open(bad, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot base64 at all\n"
                "-----END CERTIFICATE-----\n")
    return {
        "dir": d,
        "ca": ca[0],
        "bad_ca": bad,
        # for 127.0.0.1 and backend.test, signed by ca
        "ip": make_signed(d, "ip", ca, "backend.test", ["backend.test"],
                          ["127.0.0.1"]),
        # a name only: a connect to 127.0.0.1 does not match it
        "name": make_signed(d, "name", ca, "backend.test",
                            ["backend.test"]),
        # signed by another CA
        "other": make_signed(d, "otherca", other, "backend.test",
                             ["backend.test"], ["127.0.0.1"]),
        "self": make_cert(d, "self", "self.test", ["self.test"],
                          ["127.0.0.1"]),
    }


def tls_backend(procs, pair, bid="A", extra=()):
    return procs.backend(bid=bid, extra=["--tls-cert", pair[0],
                                         "--tls-key", pair[1], *extra])


def proxy(procs, specs, extra=(), admin=True, log=None):
    """lbproxy with --backend SPEC each (e.g. "127.0.0.1:N,tls")."""
    port = free_port()
    aport = free_port() if admin else None
    args = []
    for sp in specs:
        args += ["--backend", sp]
    args += ["--log", log] if log else []
    p = procs.proxy([], extra=args + list(extra), admin=aport)
    p.admin = aport
    return p


def get(port, path="/", body=None, timeout=10):
    """One request on a new connection: (status, body bytes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        method = "POST" if body is not None else "GET"
        head = f"{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
        if body is not None:
            head += f"Content-Length: {len(body)}\r\n"
        s.sendall(head.encode() + b"\r\n" + (body or b""))
        data, _ = read_until_close(s, timeout)
    finally:
        s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    return status, rest


def backend_stats(pki, b):
    """The emulator's /stats, asked over TLS (one accept of its own)."""
    ctx = ssl.create_default_context(cafile=pki["ca"])
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", b.port), timeout=10)
    s = ctx.wrap_socket(raw)  # no SNI: the emulator shows the proxy's
    try:
        s.sendall(b"GET /stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                  b"\r\n")
        data, _ = read_until_close(s, 10)
    finally:
        s.close()
    return json.loads(data.partition(b"\r\n\r\n")[2])


def upstream_tls(p):
    return http_json(p.admin)["total"]["upstream_tls"]


def ca_flag(pki):
    return ["--set", f"pool.upstream_tls_ca_file={pki['ca']}"]


def test_persistent_reuses_pooled_tls_connections(procs, pki):
    b = tls_backend(procs, pki["ip"])
    p = proxy(procs, [f"127.0.0.1:{b.port},tls"], ["--persistent",
                                                   *ca_flag(pki)])
    before = backend_stats(pki, b)  # (its readiness probe was accepted)
    for i in range(20):
        st, body = get(p.port)
        assert st == 200 and b"backend A" in body, (i, st, body)
    st = backend_stats(pki, b)
    assert st["requests"] == 20
    # one pooled connection carried every request (+1: this /stats query)
    assert st["accepts"] - before["accepts"] == 2, (before, st)
    assert st["tls_handshakes"] - before["tls_handshakes"] == 2, st
    u = upstream_tls(p)
    assert u["handshakes"] == 1 and u["failures"] == 0, u


def test_non_persistent_resumes_sessions(procs, pki):
    b = tls_backend(procs, pki["ip"])
    p = proxy(procs, [f"127.0.0.1:{b.port},tls"], ["--non-persistent",
                                                   *ca_flag(pki)])
    for i in range(10):
        st, _ = get(p.port)
        assert st == 200, i
    st = backend_stats(pki, b)
    assert st["accepts"] >= 11, st  # a connection per request
    # the first is a full handshake; the others offer its session
    assert st["tls_resumed"] >= 8, st
    u = upstream_tls(p)
    assert u["handshakes"] == 10 and u["resumed"] >= 8, u


@pytest.mark.parametrize("model", ["--persistent", "--non-persistent"])
def test_bodies_cross_intact(procs, pki, model):
    b = tls_backend(procs, pki["ip"], extra=["--echo"])
    p = proxy(procs, [f"127.0.0.1:{b.port},tls"], [model, *ca_flag(pki)])
    payload = os.urandom(300_000)
    for _ in range(3):
        st, body = get(p.port, "/echo", body=payload)
        assert st == 200 and body == payload


def test_wrong_ca_fails_over_and_is_counted(procs, pki, tmp_path):
    bad = tls_backend(procs, pki["other"], bid="A")
    good = procs.backend(bid="B")  # plain TCP beside it
    log = str(tmp_path / "x.csv")
    p = proxy(procs, [f"127.0.0.1:{bad.port},tls", f"127.0.0.1:{good.port}"],
              ["--mode", "round-robin", "--persistent", *ca_flag(pki)],
              log=log)
    for _ in range(4):
        st, body = get(p.port)
        assert st == 200 and b"backend B" in body
    u = upstream_tls(p)
    assert u["failures"] >= 1 and u["verify_failures"] == u["failures"], u
    assert u["handshakes"] == 0, u
    assert backend_stats(pki, bad)["requests"] == 0


def test_wrong_ca_alone_is_a_502_named_in_the_log(procs, pki, tmp_path):
    bad = tls_backend(procs, pki["other"])
    log = str(tmp_path / "x.csv")
    p = proxy(procs, [f"127.0.0.1:{bad.port},tls"], ca_flag(pki), log=log)
    st, _ = get(p.port)
    assert st == 502
    assert upstream_tls(p)["verify_failures"] >= 1

    def rows():
        with open(log) as f:
            return list(csv.DictReader(f))
    wait_until(lambda: len(rows()) >= 1, what="the CSV row")
    assert rows()[0]["error"] == "upstream_tls", rows()[0]
    assert "certificate verify failed" in open(p.logfile).read()


def test_host_name_is_checked_and_sni_sent(procs, pki):
    # the certificate names backend.test only: 127.0.0.1 does not match
    b = tls_backend(procs, pki["name"])
    p = proxy(procs, [f"127.0.0.1:{b.port},tls"], ca_flag(pki))
    assert get(p.port)[0] == 502
    assert upstream_tls(p)["verify_failures"] >= 1
    procs.stop(p)
    # the name to send and check, given: accepted, and it is the SNI
    q = proxy(procs, [f"127.0.0.1:{b.port},tls"],
              [*ca_flag(pki), "--set", "pool.upstream_tls_sni=backend.test"])
    assert get(q.port)[0] == 200
    assert upstream_tls(q)["failures"] == 0
    # the emulator shows the SNI of the last handshake: the proxy's
    st, body = get(q.port, "/stats")
    assert st == 200 and b'"tls_sni":"backend.test"' in body, body


def test_numeric_address_sends_no_sni(procs, pki):
    b = tls_backend(procs, pki["ip"])
    p = proxy(procs, [f"127.0.0.1:{b.port},tls"], ca_flag(pki))
    st, body = get(p.port, "/stats")
    assert st == 200 and b'"tls_sni":""' in body, body


def test_verify_false_accepts_self_signed(procs, pki):
    b = tls_backend(procs, pki["self"])
    p = proxy(procs, [f"127.0.0.1:{b.port},tls"])
    assert get(p.port)[0] == 502  # the system's CAs do not know it
    procs.stop(p)
    q = proxy(procs, [f"127.0.0.1:{b.port},tls"],
              ["--set", "pool.upstream_tls_verify=false"])
    for _ in range(3):
        assert get(q.port)[0] == 200
    assert upstream_tls(q)["failures"] == 0


def test_garbage_instead_of_server_hello(procs, pki):
    def greet(conn):
        conn.recv(65536)  # the ClientHello
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" * 8)
        return None, b""

    raw = RawBackend(lambda *a: None, preamble=greet)
    try:
        p = proxy(procs, [f"127.0.0.1:{raw.port},tls"], ca_flag(pki))
        for _ in range(3):
            assert get(p.port)[0] == 502
        u = upstream_tls(p)
        assert u["failures"] >= 3 and u["verify_failures"] == 0, u
        assert p.poll() is None
    finally:
        raw.close()


def test_stalled_handshake_is_a_connect_timeout(procs, pki):
    # a listener that never accepts: the TCP connect completes (backlog),
    # the ServerHello never comes
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    good = tls_backend(procs, pki["ip"], bid="B")
    try:
        port = ls.getsockname()[1]
        p = proxy(procs, [f"127.0.0.1:{port},tls"],
                  [*ca_flag(pki), "--set", "timeouts.upstream_connect_ms=300"])
        t0 = time.monotonic()
        assert get(p.port)[0] == 502
        took = time.monotonic() - t0
        assert 0.25 < took < 3, took
        procs.stop(p)
        # beside a good one, the request goes there
        q = proxy(procs, [f"127.0.0.1:{port},tls",
                          f"127.0.0.1:{good.port},tls"],
                  [*ca_flag(pki), "--mode", "round-robin",
                   "--set", "timeouts.upstream_connect_ms=300"])
        for _ in range(2):
            st, body = get(q.port)
            assert st == 200 and b"backend B" in body
    finally:
        ls.close()


def test_hedge_speaks_tls(procs, pki):
    slow = tls_backend(procs, pki["ip"], bid="A",
                       extra=["--profile", "fixed:3s"])
    fast = tls_backend(procs, pki["ip"], bid="B")
    p = proxy(procs, [f"127.0.0.1:{slow.port},tls",
                      f"127.0.0.1:{fast.port},tls"],
              [*ca_flag(pki), "--mode", "round-robin",
               "--set", "retry.per_try_max_ms=100",
               "--set", "retry.per_try_min_ms=50"])
    t0 = time.monotonic()
    st, body = get(p.port)  # round-robin starts at A
    assert st == 200 and b"backend B" in body
    assert time.monotonic() - t0 < 2.5
    s = http_json(p.admin)["total"]
    assert s["hedge_wins"] >= 1, s
    assert s["upstream_tls"]["failures"] == 0


def test_health_checks_over_tls(procs, pki):
    good = tls_backend(procs, pki["ip"], bid="A")
    bad = tls_backend(procs, pki["other"], bid="B")
    p = proxy(procs, [f"127.0.0.1:{good.port},tls",
                      f"127.0.0.1:{bad.port},tls"],
              [*ca_flag(pki), "--set", "health.check_path=/health",
               "--set", "health.check_interval_ms=100"])
    wait_until(lambda: backend_stats(pki, good)["health_checks"] >= 3,
               what="health checks over TLS reach A")

    def states():
        return {b["id"]: b["health"] for b in http_json(p.admin)["backends"]}
    wait_until(lambda: states().get("B") == "down", what="B down")
    assert states()["A"] == "up"
    assert backend_stats(pki, bad)["health_checks"] == 0
    for _ in range(4):
        st, body = get(p.port)
        assert st == 200 and b"backend A" in body


def test_reload_with_bad_ca_is_refused(procs, pki, tmp_path):
    b = tls_backend(procs, pki["ip"])
    conf = tmp_path / "lb.ini"

    def write(ca):
        conf.write_text(f"[pool]\nupstream_tls_ca_file = {ca}\n"
                        f"[backends]\nA = 127.0.0.1:{b.port}, tls\n")
    write(pki["ca"])
    p = proxy(procs, [], ["--config", str(conf)])
    assert get(p.port)[0] == 200
    write(pki["bad_ca"])
    p.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload failed" in open(p.logfile).read(),
               what="the reload refused")
    assert pki["bad_ca"] in open(p.logfile).read()
    assert get(p.port)[0] == 200  # the running pools kept their CA
    # a CA that does not sign the backend's certificate: accepted, and
    # read: new connections fail verification
    write(os.path.join(pki["dir"], "other.pem"))
    p.send_signal(signal.SIGHUP)
    wait_until(lambda: "reloaded" in open(p.logfile).read(), what="reload")
    assert get(p.port)[0] == 502
    assert upstream_tls(p)["verify_failures"] >= 1


def test_reload_with_bad_ca_is_refused_with_workers(procs, pki, tmp_path):
    b = tls_backend(procs, pki["ip"])
    conf = tmp_path / "lb.ini"
    conf.write_text(f"[pool]\nupstream_tls_ca_file = {pki['ca']}\n"
                    f"[backends]\nA = 127.0.0.1:{b.port}, tls\n")
    p = proxy(procs, [], ["--config", str(conf), "--workers", "2"],
              admin=False)
    wait_until(lambda: get(p.port)[0] == 200, what="workers serving")
    conf.write_text(conf.read_text().replace(pki["ca"], pki["bad_ca"]))
    p.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload failed" in open(p.logfile).read(),
               what="the master refusing the reload")
    for _ in range(4):
        assert get(p.port)[0] == 200


@pytest.mark.parametrize("workers", ["1", "2"])
def test_bad_ca_at_start_exits(procs, pki, workers):
    b = tls_backend(procs, pki["ip"])
    port = free_port()
    r = subprocess.run([LBPROXY, "--listen", f"127.0.0.1:{port}",
                        "--admin", "off", "--log", "off",
                        "--workers", workers,
                        "--backend", f"127.0.0.1:{b.port},tls",
                        "--set", f"pool.upstream_tls_ca_file={pki['bad_ca']}"],
                       capture_output=True, timeout=10)
    assert r.returncode != 0
    assert b"upstream TLS" in r.stderr, r.stderr


def test_named_backend_sends_and_checks_its_name(procs, pki, tmp_path):
    """A backend by DNS name (resolved by our DNS server on loopback):
    its name is the SNI and the name its certificate must carry, so a
    certificate for the name alone (no IP address) is accepted."""
    b = tls_backend(procs, pki["name"])
    dns = Dns(tmp_path, {"ttl": 60, "names": {
        "backend.test": {"A": ["127.0.0.1"]}}})
    try:
        ini = tmp_path / "lb.ini"
        ini.write_text(f"[dns]\nresolvers = 127.0.0.1:{dns.port}\n"
                       f"timeout_ms = 300\n"
                       f"[pool]\nupstream_tls_ca_file = {pki['ca']}\n"
                       f"[backends]\nW = backend.test:{b.port}, tls\n")
        p = proxy(procs, [], ["--config", str(ini)])
        wait_until(lambda: any(x["address"].startswith("127.0.0.1:")
                               for x in http_json(p.admin)["backends"]),
                   what="the name resolved")
        st, body = get(p.port, "/stats")
        assert st == 200 and b'"tls_sni":"backend.test"' in body, body
        assert upstream_tls(p)["failures"] == 0
    finally:
        dns.close()


def api_post(admin, token, path, body):
    """POST a JSON body to the runtime API: (status, parsed answer)."""
    st, _, doc = admin_call(admin, "POST", path, body, token)
    return st, doc


def api_proxy(procs, tmp_path, specs, extra=()):
    """proxy() with the runtime API on (a token file), round-robin."""
    token = "tls-api-token-0123456789"
    p = proxy(procs, specs, ["--mode", "round-robin", "--set",
                             f"proxy.admin_token_file="
                             f"{write_token(tmp_path, token)}", *extra])
    p.token = token
    return p


@pytest.mark.parametrize("workers", ["1", "2"])
def test_runtime_api_adds_a_tls_backend(procs, pki, tmp_path, workers):
    """A pool whose configuration names a CA file (no TLS backend yet) takes
    a TLS backend from the runtime API; with --workers 2 every worker
    follows and speaks TLS to it."""
    a = procs.backend(bid="A")
    c = tls_backend(procs, pki["ip"], bid="C")
    p = api_proxy(procs, tmp_path, [f"127.0.0.1:{a.port}"],
                  [*ca_flag(pki), "--workers", workers])
    st, doc = api_post(p.admin, p.token, "/api/pools/default/backends",
                       {"id": "C", "address": f"127.0.0.1:{c.port}",
                        "tls": True})
    assert st == 201 and doc["tls"] is True and "tls_name" not in doc, doc
    before = backend_stats(pki, c)
    seen = []
    for _ in range(40):  # new connections: spread over the workers
        stc, body = get(p.port)
        assert stc == 200, (stc, body)
        seen.append(body)
    assert any(b"backend C" in x for x in seen), seen
    after = backend_stats(pki, c)
    assert after["requests"] > before["requests"]
    assert after["tls_handshakes"] > before["tls_handshakes"]
    # every follower took it (sharedgen.c warns of a slot it cannot fill)
    assert "backend C at" not in open(p.logfile).read()


def test_runtime_api_tls_name_is_sent_and_checked(procs, pki, tmp_path):
    c = tls_backend(procs, pki["name"], bid="C")  # backend.test only
    a = procs.backend(bid="A")
    p = api_proxy(procs, tmp_path, [f"127.0.0.1:{a.port}"], ca_flag(pki))
    st, doc = api_post(p.admin, p.token, "/api/pools/default/backends",
                       {"id": "C", "address": f"127.0.0.1:{c.port}",
                        "tls_name": "backend.test"})
    assert st == 201 and doc["tls"] is True, doc
    assert doc["tls_name"] == "backend.test", doc
    bodies = [get(p.port, "/stats")[1] for _ in range(4)]
    assert any(b'"tls_sni":"backend.test"' in b for b in bodies), bodies
    assert upstream_tls(p)["failures"] == 0
    st, doc = api_post(p.admin, p.token, "/api/pools/default/backends",
                       {"id": "D", "address": f"127.0.0.1:{c.port}",
                        "tls_name": "not a name!"})
    assert st == 400 and "tls_name" in doc["error"], doc
    st, doc = api_post(p.admin, p.token, "/api/pools/default/backends",
                       {"id": "D", "address": f"127.0.0.1:{c.port}",
                        "tls": False, "tls_name": "backend.test"})
    assert st == 400 and "tls_name" in doc["error"], doc
    # a Unix socket has no name of its own to verify
    st, doc = api_post(p.admin, p.token, "/api/pools/default/backends",
                       {"id": "U", "address": f"unix:{tmp_path}/u.sock",
                        "tls": True})
    assert st == 400 and "tls_name" in doc["error"], doc
    ids = [b["id"] for b in http_json(p.admin)["backends"]]
    assert ids == ["A", "C"], ids


def test_runtime_api_tls_needs_a_tls_ready_pool(procs, pki, tmp_path):
    """Without a CA file or a TLS backend in its configuration a pool has no
    TLS client: adding a TLS backend is refused, and nothing changes."""
    a = procs.backend(bid="A")
    c = tls_backend(procs, pki["ip"], bid="C")
    p = api_proxy(procs, tmp_path, [f"127.0.0.1:{a.port}"])
    st, doc = api_post(p.admin, p.token, "/api/pools/default/backends",
                       {"id": "C", "address": f"127.0.0.1:{c.port}",
                        "tls": True})
    assert st == 400 and "upstream_tls_ca_file" in doc["error"], doc
    ids = [b["id"] for b in http_json(p.admin)["backends"]]
    assert ids == ["A"], ids
    st, doc = api_post(p.admin, p.token, "/api/pools/default/backends",
                       {"id": "C", "address": f"127.0.0.1:{c.port}",
                        "tls": "yes"})
    assert st == 400, doc

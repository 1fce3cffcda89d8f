"""The runtime API on the admin listener (docs/api.md), through the real
./lbproxy and ./lbbackend: a call without the right bearer token gets 401 and
changes nothing; an added backend gets traffic at once; shares follow a new
weight; a backend drained under concurrent load finishes its requests (no
client sees a failure), its in-flight count falls to 0, and then it gets no
new request; maintenance stops traffic and health checks until ready;
remove, bad JSON and unknown names answer as documented; a reload replaces
the runtime changes."""
import http.client
import json
import signal
import threading
import time

import pytest

from conftest import LBPROXY
import lbtest
from lbtest import admin_call, free_port, http_json, wait_port, wait_until

TOKEN = "s3cret-token-0123456789abcdef"


def write_token(tmp_path, token=TOKEN, mode=0o600):
    return lbtest.write_token(tmp_path, token, mode)


class Stack:
    """Backends A and B (and C, started, not configured), lbproxy with the
    runtime API on, round-robin, persistent."""

    def __init__(self, procs, tmp_path, extra=(), backend_extra=()):
        self.procs = procs
        self.be = {b: procs.backend(bid=b, extra=backend_extra)
                   for b in "ABC"}
        self.admin = free_port()
        self.proxy = procs.proxy(
            [self.be["A"].port, self.be["B"].port], admin=self.admin,
            extra=["--mode", "round-robin", "--persistent", "--set",
                   f"proxy.admin_token_file={write_token(tmp_path)}",
                   *extra])
        wait_port(self.admin, proc=self.proxy)  # bound after the listener

    def api(self, method, path, body=None, token=TOKEN, headers=None):
        """(status, response headers, parsed JSON body)."""
        return admin_call(self.admin, method, path, body, token, headers)

    def backends(self):
        """/api/stats's backends by id."""
        return {b["id"]: b for b in http_json(self.admin)["backends"]}

    def get(self, n, conn=None):
        """n GET / through the proxy on one connection: backend ids."""
        c = conn or http.client.HTTPConnection("127.0.0.1", self.proxy.port,
                                               timeout=10)
        ids = []
        for _ in range(n):
            c.request("GET", "/")
            r = c.getresponse()
            r.read()
            assert r.status == 200
            ids.append(r.getheader("X-Backend-Id"))
        if conn is None:
            c.close()
        return ids


@pytest.fixture
def stack(procs, tmp_path):
    return Stack(procs, tmp_path)


def test_wrong_or_missing_token_changes_nothing(stack):
    before = {k: (v["weight"], v["state"]) for k, v in
              stack.backends().items()}
    assert before == {"A": (1, "up"), "B": (1, "up")}
    c_addr = f"127.0.0.1:{stack.be['C'].port}"
    calls = [("GET", "/api/pools", None),
             ("POST", "/api/pools/default/backends",
              {"id": "C", "address": c_addr}),
             ("DELETE", "/api/pools/default/backends/B", None),
             ("PATCH", "/api/pools/default/backends/A", {"weight": 5}),
             ("POST", "/api/pools/default/backends/B", {"state": "drain"}),
             ("PATCH", "/api/pools/default/backends/B", {"state": "maint"})]
    auths = [None, "", "wrong", TOKEN + "x", TOKEN[:-1], "Basic " + TOKEN]
    for method, path, body in calls:
        for t in auths:
            if t is None:
                st, r, doc = stack.api(method, path, body, token=None)
            elif t.startswith("Basic"):
                st, r, doc = stack.api(method, path, body, token=None,
                                       headers={"Authorization": t})
            else:
                st, r, doc = stack.api(method, path, body, token=t)
            assert st == 401, (method, path, t, doc)
            assert r.getheader("WWW-Authenticate").startswith("Bearer")
            assert "error" in doc
    # two Authorization headers, one of them right: refused too
    c = http.client.HTTPConnection("127.0.0.1", stack.admin, timeout=5)
    c.putrequest("DELETE", "/api/pools/default/backends/B")
    c.putheader("Authorization", "Bearer " + TOKEN)
    c.putheader("Authorization", "Bearer wrong")
    c.endheaders()
    assert c.getresponse().status == 401
    c.close()
    after = {k: (v["weight"], v["state"]) for k, v in
             stack.backends().items()}
    assert after == before
    assert sorted(set(stack.get(20))) == ["A", "B"]
    st, _, doc = stack.api("GET", "/api/pools")
    assert st == 200
    assert [b["id"] for b in doc["pools"][0]["backends"]] == ["A", "B"]


def test_add_backend_gets_traffic_and_remove(stack):
    c_addr = f"127.0.0.1:{stack.be['C'].port}"
    st, _, doc = stack.api("POST", "/api/pools/default/backends",
                           {"id": "C", "address": c_addr, "weight": 1})
    assert st == 201, doc
    assert doc["id"] == "C" and doc["address"] == c_addr
    assert doc["state"] == "up" and doc["weight"] == 1
    b = stack.backends()
    assert b["C"]["address"] == c_addr and b["C"]["state"] == "up"
    ids = stack.get(60)
    assert ids.count("C") == 20 and ids.count("A") == 20, ids
    st, _, doc = stack.api("POST", "/api/pools/default/backends",
                           {"id": "C", "address": c_addr})
    assert st == 409
    # remove B: no more traffic, gone from the views
    st, _, doc = stack.api("DELETE", "/api/pools/default/backends/B")
    assert st == 200 and doc["state"] == "removed"
    assert set(stack.backends()) == {"A", "C"}
    assert "B" not in stack.get(30)
    st, _, _ = stack.api("DELETE", "/api/pools/default/backends/B")
    assert st == 404
    # the same id comes back, from zero
    st, _, doc = stack.api(
        "POST", "/api/pools/default/backends",
        {"id": "B", "address": f"127.0.0.1:{stack.be['B'].port}"})
    assert st == 201
    assert stack.backends()["B"]["requests"] == 0
    assert "B" in stack.get(30)


def test_weight_shares_follow(stack):
    st, _, doc = stack.api("PATCH", "/api/pools/default/backends/A",
                           {"weight": 3})
    assert st == 200 and doc["weight"] == 3
    assert stack.backends()["A"]["weight"] == 3
    ids = stack.get(400)
    # smooth weighted round-robin is exact over whole rounds
    assert ids.count("A") == 300 and ids.count("B") == 100
    st, _, doc = stack.api("POST", "/api/pools/default/backends/A",
                           {"weight": 1})
    assert st == 200
    ids = stack.get(100)
    assert ids.count("A") == 50


class Load:
    """`n` client threads, each looping GET / on its own keep-alive
    connection until stopped (or `limit_s` passes): counts per backend
    and every failure."""

    def __init__(self, port, n=16, limit_s=30.0):
        self.port, self.stop_at = port, time.monotonic() + limit_s
        self.lock = threading.Lock()
        self.ids, self.failures = {}, []
        self.running = True
        self.threads = [threading.Thread(target=self.run) for _ in range(n)]
        for t in self.threads:
            t.start()

    def run(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while self.running and time.monotonic() < self.stop_at:
            try:
                c.request("GET", "/")
                r = c.getresponse()
                r.read()
                with self.lock:
                    if r.status != 200:
                        self.failures.append(r.status)
                    bid = r.getheader("X-Backend-Id")
                    self.ids[bid] = self.ids.get(bid, 0) + 1
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.failures.append(repr(e))
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", self.port,
                                               timeout=10)
        c.close()

    def count(self, bid):
        with self.lock:
            return self.ids.get(bid, 0)

    def stop(self):
        self.running = False
        for t in self.threads:
            t.join(15)


def test_drain_under_load(procs, tmp_path):
    # 20 ms per request: with 16 clients, several are always in flight
    s = Stack(procs, tmp_path, backend_extra=["--profile", "fixed:20ms"])
    load = Load(s.proxy.port)
    try:
        wait_until(lambda: s.backends()["B"]["in_flight"] > 0, timeout=10,
                   what="requests in flight on B")
        st, _, doc = s.api("PATCH", "/api/pools/default/backends/B",
                           {"state": "drain"})
        assert st == 200
        assert doc["admin_state"] == "drain"
        assert doc["state"] in ("draining", "drained")
        saw = {doc["state"]}

        def drained():
            b = s.backends()["B"]
            saw.add(b["state"])
            return b["in_flight"] == 0 and b["state"] == "drained"
        wait_until(drained, timeout=10, what="B drained")
        assert saw <= {"draining", "drained"}
        served = s.backends()["B"]["requests"]
        at_client = load.count("B")
        # a second of load more: nothing new reaches B
        t_end = time.monotonic() + 1.0
        a0 = load.count("A")
        while time.monotonic() < t_end:
            time.sleep(0.1)
        assert load.count("A") > a0 + 50
        assert s.backends()["B"]["requests"] == served
        assert load.count("B") == at_client
        # ready again: B is back in the rotation
        st, _, _ = s.api("PATCH", "/api/pools/default/backends/B",
                         {"state": "ready"})
        assert st == 200
        wait_until(lambda: load.count("B") > at_client + 10, timeout=10,
                   what="traffic to B again")
    finally:
        load.stop()
    assert load.failures == []
    assert s.backends()["B"]["errors"]["total"] == 0


def test_maint_stops_traffic_and_checks(procs, tmp_path):
    log = tmp_path / "b-requests.log"
    be_a = procs.backend(bid="A")
    be_b = procs.backend(bid="B", extra=["--log-requests", str(log)])
    admin = free_port()
    proxy = procs.proxy([be_a.port, be_b.port], admin=admin, extra=[
        "--mode", "round-robin", "--set",
        f"proxy.admin_token_file={write_token(tmp_path)}",
        "--set", "health.check_path=/health",
        "--set", "health.check_interval_ms=100"])
    wait_port(admin, proc=proxy)
    s = Stack.__new__(Stack)
    s.admin, s.proxy = admin, proxy

    def checks():
        if not log.exists():
            return 0
        return sum('/health' in line for line in log.read_text().splitlines())
    wait_until(lambda: checks() >= 2, timeout=10, what="checks of B")
    st, _, doc = s.api("PATCH", "/api/pools/default/backends/B",
                       {"state": "maint"})
    assert st == 200 and doc["state"] == "maint"
    assert s.backends()["B"]["state"] == "maint"
    assert s.backends()["B"]["admin_state"] == "maint"
    n = checks()
    assert set(s.get(20)) == {"A"}
    time.sleep(0.6)  # six check intervals: none may reach B
    assert checks() <= n + 1  # one may have been on the wire
    st, _, doc = s.api("PATCH", "/api/pools/default/backends/B",
                       {"state": "ready"})
    assert st == 200 and doc["state"] == "up"
    wait_until(lambda: checks() > n + 1, timeout=5, what="checks resume")
    assert "B" in s.get(20)


def test_bad_requests(stack):
    base = "/api/pools/default/backends"
    c_addr = f"127.0.0.1:{stack.be['C'].port}"
    cases = [
        ("POST", base, b"{not json", 400),
        ("POST", base, b"[1, 2]", 400),
        ("POST", base, {"id": "C"}, 400),
        ("POST", base, {"id": "C", "address": "nowhere"}, 400),
        ("POST", base, {"id": "C", "address": c_addr, "colour": "red"}, 400),
        ("POST", base, {"id": "bad id", "address": c_addr}, 400),
        ("POST", base, {"id": "C", "address": c_addr, "weight": 0}, 400),
        ("POST", base, {"id": "C", "address": c_addr, "weight": 1.5}, 400),
        ("POST", base, {"id": "C", "address": c_addr, "weight": "2"}, 400),
        ("POST", base, {"id": 7, "address": c_addr}, 400),
        ("PATCH", base + "/A", {"state": "sleeping"}, 400),
        ("PATCH", base + "/A", {"weight": 2, "state": "off"}, 400),
        ("PATCH", base + "/A", {}, 400),
        ("PATCH", base + "/Z", {"weight": 2}, 404),
        ("DELETE", base + "/Z", None, 404),
        ("GET", "/api/pools/nosuch", None, 404),
        ("POST", "/api/pools/nosuch/backends",
         {"id": "C", "address": c_addr}, 404),
        ("GET", "/api/pools/default/other", None, 404),
        ("PUT", base + "/A", {"weight": 2}, 405),
        ("DELETE", "/api/pools", None, 405),
        ("POST", base, json.dumps({"id": "C", "address": c_addr,
                                   "pad": "x" * 5000}), 413),
    ]
    for method, path, body, want in cases:
        st, r, doc = stack.api(method, path, body)
        assert st == want, (method, path, body, doc)
        assert "error" in doc
        if want == 405:
            assert r.getheader("Allow")
    # nothing changed: A at weight 1 (the half-valid PATCH did not apply)
    b = stack.backends()
    assert set(b) == {"A", "B"} and b["A"]["weight"] == 1
    assert b["A"]["state"] == "up"
    st, _, doc = stack.api("GET", base + "/A")
    assert st == 200 and doc["id"] == "A" and doc["in_flight"] == 0


def test_reload_replaces_runtime_changes(stack):
    st, _, _ = stack.api(
        "POST", "/api/pools/default/backends",
        {"id": "C", "address": f"127.0.0.1:{stack.be['C'].port}"})
    assert st == 201
    st, _, _ = stack.api("PATCH", "/api/pools/default/backends/A",
                         {"weight": 4})
    assert st == 200
    stack.get(10)
    a_requests = stack.backends()["A"]["requests"]
    stack.proxy.send_signal(signal.SIGHUP)
    wait_until(lambda: set(stack.backends()) == {"A", "B"}, timeout=10,
               what="the file's set back after SIGHUP")
    b = stack.backends()
    assert b["A"]["weight"] == 1
    assert b["A"]["requests"] == a_requests  # kept by id
    assert "C" not in stack.get(20)


def test_api_off_and_token_file_checks(procs, tmp_path):
    be = procs.backend(bid="A")
    admin = free_port()
    wait_port(admin, proc=procs.proxy([be.port], admin=admin))
    c = http.client.HTTPConnection("127.0.0.1", admin, timeout=5)
    c.request("GET", "/api/pools",
              headers={"Authorization": "Bearer " + TOKEN})
    r = c.getresponse()
    assert r.status == 404 and "off" in json.loads(r.read())["error"]
    c.close()
    # a token file others may read, or too short a token: refused at start
    for token, mode in ((TOKEN, 0o644), ("short", 0o600)):
        path = write_token(tmp_path, token, mode)
        p = procs.start([LBPROXY, "--listen", f"127.0.0.1:{free_port()}",
                         "--admin", f"127.0.0.1:{free_port()}",
                         "--backend", f"127.0.0.1:{be.port}", "--log", "off",
                         "--set", f"proxy.admin_token_file={path}"])
        assert p.wait(10) != 0
        assert "admin_token_file" in open(p.logfile).read()

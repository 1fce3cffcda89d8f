"""--workers N through the real ./lbproxy: a master and N worker processes
on one listener, the balancers, passive health and request stats shared
between the workers (docs/workers.md).  It checks that both workers serve
and that one view (/api/stats, /metrics) counts every request of both;
that round-robin alternates exactly over requests that two workers serve
(one balancer, not one each) and that max_fails failures eject a backend
once, whichever worker saw them; that a worker killed with SIGKILL is
replaced within a second and leaves nothing counted in flight; that
SIGHUP moves every worker to the new configuration with the stats
following the backends; that SIGTERM drains an in-flight request and
exits 0; and that a start-up failure ends the master with an error."""
import json
import os
import signal
import socket
import threading
import time

import pytest

from conftest import LBPROXY
from httpc import Conn, get
from lbtest import free_port, wait_port, wait_until
from rawbackend import RawBackend


def children(pid):
    """The master's worker pids."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return sorted(int(x) for x in f.read().split())
    except FileNotFoundError:
        return []


def stats(px):
    return json.loads(get(px.admin, "/api/stats").body)


def metrics(px):
    return get(px.admin, "/metrics").body.decode()


def metric_sum(text, name):
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))


def start(procs, backends, extra=(), workers=2, config=None):
    port, admin = free_port(), free_port()
    args = [LBPROXY, "--config", config or "/dev/null", "--listen",
            f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}", "--log",
            "off", "--workers", str(workers)]
    for b in backends:
        args += ["--backend", b]
    p = procs.start(args + list(extra), port=port, name="lbproxy")
    wait_port(admin, proc=p)
    p.port, p.admin = port, admin
    wait_until(lambda: len(children(p.pid)) == workers, timeout=5,
               what=f"{workers} workers")
    return p


def spread_conns(px, want=2, limit=60):
    """Keep-alive connections opened one by one until every worker holds
    one (the kernel wakes whichever worker it wakes): the list."""
    conns = []
    try:
        for _ in range(limit):
            c = Conn(px.port)
            c.request(path="/")  # accepted, and counted in its row
            conns.append(c)
            rows = stats(px)["workers"]
            if sum(1 for r in rows if r["connections"] > 0) >= want:
                return conns
            time.sleep(0.01)
    except BaseException:
        for c in conns:
            c.close()
        raise
    for c in conns:
        c.close()
    pytest.fail(f"{limit} connections all went to one worker")


@pytest.mark.parametrize("listener", [(), ("--shared-listener",)],
                         ids=["reuseport", "shared-listener"])
def test_both_workers_serve_and_one_view_counts_every_request(procs,
                                                              listener):
    bes = [procs.backend(bid=b) for b in "ABC"]
    px = start(procs, [f"127.0.0.1:{b.port},id={i}"
                       for b, i in zip(bes, "ABC")], listener)
    n_threads, per = 4, 60
    statuses = []

    def client():
        for _ in range(per):
            r = get(px.port, "/", headers=[("Connection", "close")])
            statuses.append(r.status)

    ts = [threading.Thread(target=client) for _ in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    n = n_threads * per
    assert statuses == [200] * n
    wait_until(lambda: stats(px)["total"]["requests"] == n, timeout=5,
               what=f"{n} requests counted")
    d = stats(px)
    rows = d["workers"]
    assert [r["index"] for r in rows] == [0, 1]
    assert sorted(r["pid"] for r in rows) == children(px.pid)
    assert sum(r["requests"] for r in rows) == n
    assert all(r["requests"] > 0 for r in rows), rows
    assert sum(b["requests"] for b in d["backends"]) == n
    assert all(b["in_flight"] == 0 and b["in_flight_by_worker"] == [0, 0]
               for b in d["backends"]), d["backends"]
    m = metrics(px)
    assert metric_sum(m, "lbproxy_requests_total") == n
    assert metric_sum(m, "lbproxy_worker_requests_total") == n
    assert 'lbproxy_worker_up{worker="1"} 1' in m


def test_round_robin_alternates_exactly_across_workers(procs):
    """One shared balancer: requests sent one at a time over connections
    held by both workers still go A, B, C, A, ...  (a balancer per worker
    would restart the rotation each time the worker changes)."""
    bes = [procs.backend(bid=b) for b in "ABC"]
    px = start(procs, [f"127.0.0.1:{b.port},id={i}"
                       for b, i in zip(bes, "ABC")])
    conns = spread_conns(px)
    try:
        ids = []
        for k in range(60):
            r = conns[k % len(conns)].request(path="/")
            assert r.status == 200
            ids.append(r.header("x-backend-id"))
    finally:
        for c in conns:
            c.close()
    start_at = "ABC".index(ids[0])
    want = ["ABC"[(start_at + k) % 3] for k in range(60)]
    assert ids == want


def test_max_fails_ejects_once_whichever_worker_saw_them(procs):
    """Passive health is shared: with max_fails=3 the failing backend gets
    exactly 3 requests before it is ejected, though both workers send to
    it (per-worker counts would let each worker send 3)."""
    seen = []

    def respond(conn_no, req_no, head, body):
        seen.append(conn_no)
        return b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"

    good = procs.backend(bid="A")
    bad = RawBackend(respond)
    try:
        px = start(procs, [f"127.0.0.1:{good.port},id=A",
                           f"127.0.0.1:{bad.port},id=B"],
                   ["--set", "health.max_fails=3",
                    "--set", "health.fail_timeout_ms=60000",
                    "--set", "health.max_eject_ms=60000",
                    "--set", "limits.max_retries=0"])
        conns = spread_conns(px)
        try:
            for k in range(60):
                conns[k % len(conns)].request(path="/")
        finally:
            for c in conns:
                c.close()
        b = {x["id"]: x for x in stats(px)["backends"]}["B"]
        assert b["health"] == "ejected", b
        assert len(seen) == 3, seen
    finally:
        bad.close()


def test_a_killed_worker_is_replaced_and_leaves_nothing_in_flight(procs):
    be = procs.backend(bid="A", extra=["--profile", "fixed:50ms"])
    px = start(procs, [f"127.0.0.1:{be.port}"])
    stop = threading.Event()
    errors = []

    def client():
        while not stop.is_set():
            try:
                get(px.port, "/", headers=[("Connection", "close")])
            except OSError as e:  # the killed worker's own connections
                errors.append(e)

    ts = [threading.Thread(target=client) for _ in range(8)]
    for t in ts:
        t.start()
    try:
        wait_until(lambda: stats(px)["total"]["in_flight"] > 0, timeout=5,
                   what="requests in flight")
        before = children(px.pid)
        victim = max(before)  # worker 1 (forked second): not the admin's
        t_kill = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        after = wait_until(
            lambda: (len(children(px.pid)) == 2
                     and victim not in children(px.pid)
                     and children(px.pid)), timeout=5, step=0.005,
            what="a replacement worker")
        assert time.monotonic() - t_kill < 1.0
        assert len(set(after) - set(before)) == 1
        time.sleep(0.5)  # the replacement serves too
    finally:
        stop.set()
        for t in ts:
            t.join(10)
    assert len(errors) <= 8, errors  # at most each client's one in flight
    wait_until(lambda: stats(px)["total"]["in_flight"] == 0, timeout=5,
               what="in-flight back to 0")
    d = stats(px)
    assert all(b["in_flight_by_worker"] == [0, 0] for b in d["backends"])
    assert [r["restarts"] for r in d["workers"]] in ([0, 1], [1, 0])
    assert 'lbproxy_worker_restarts_total{worker="1"} 1' in metrics(px) or \
        'lbproxy_worker_restarts_total{worker="0"} 1' in metrics(px)


def test_sighup_moves_every_worker_to_the_new_configuration(procs, tmp_path):
    bes = [procs.backend(bid=b) for b in "ABC"]
    conf = tmp_path / "lb.ini"
    conf.write_text(f"[backends]\nA = 127.0.0.1:{bes[0].port}\n"
                    f"B = 127.0.0.1:{bes[1].port}\n")
    px = start(procs, [], config=str(conf))
    for _ in range(20):
        assert get(px.port, "/", headers=[("Connection", "close")]).status == 200
    wait_until(lambda: stats(px)["total"]["requests"] == 20, timeout=5)
    a_before = {b["id"]: b for b in stats(px)["backends"]}["A"]["requests"]
    old = children(px.pid)
    conf.write_text(conf.read_text() + f"C = 127.0.0.1:{bes[2].port}\n")
    px.send_signal(signal.SIGHUP)
    wait_until(lambda: len(children(px.pid)) == 2
               and not set(children(px.pid)) & set(old), timeout=15,
               what="the old workers drained and gone")
    wait_port(px.admin)
    wait_until(lambda: len(stats(px)["backends"]) == 3, timeout=5,
               what="the new worker 0's admin")
    ids = set()
    for _ in range(30):
        r = get(px.port, "/", headers=[("Connection", "close")])
        assert r.status == 200
        ids.add(r.header("x-backend-id"))
    assert ids == {"A", "B", "C"}
    d = stats(px)
    a_after = {b["id"]: b for b in d["backends"]}["A"]["requests"]
    assert a_after >= a_before + 1  # followed by id, not started over
    assert d["total"]["requests"] == 50


def test_sigterm_drains_in_flight_requests_and_exits_0(procs):
    be = procs.backend(bid="A", extra=["--profile", "fixed:700ms"])
    px = start(procs, [f"127.0.0.1:{be.port}"])
    workers = children(px.pid)
    out = {}

    def slow():
        out["r"] = get(px.port, "/")

    t = threading.Thread(target=slow)
    t.start()
    wait_until(lambda: stats(px)["total"]["in_flight"] == 1, timeout=5)
    px.send_signal(signal.SIGTERM)
    t.join(10)
    assert out["r"].status == 200
    assert px.wait(10) == 0
    assert all(not os.path.exists(f"/proc/{w}") or
               open(f"/proc/{w}/stat").read().split()[2] == "Z"
               for w in workers)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", px.port), timeout=1)


def test_a_listener_in_use_fails_the_start(procs):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        port = s.getsockname()[1]
        p = procs.start([LBPROXY, "--config", "/dev/null", "--listen",
                         f"127.0.0.1:{port}", "--admin", "off", "--log",
                         "off", "--workers", "2", "--backend",
                         "127.0.0.1:1"], name="lbproxy")
        assert p.wait(10) == 1
        assert "Address already in use" in open(p.logfile).read()
    finally:
        s.close()


def test_counters_each_worker_keeps_are_summed_in_the_view(procs):
    """Counters a worker keeps for itself (here PROXY-protocol refusals)
    reach worker 0's /api/stats as the sum over both: 20 connections
    without a header, spread over two SO_REUSEPORT listeners, all count."""
    be = procs.backend(bid="A")
    px = start(procs, [f"127.0.0.1:{be.port}"], ["--proxy-protocol"])
    time.sleep(0.3)  # the readiness probes' refusals published (100 ms)
    base = stats(px)["total"]["proxy_protocol"]["refused"]
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", px.port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            s.settimeout(5)
            try:
                while s.recv(4096):
                    pass
            except ConnectionResetError:  # refused: closed with data unread
                pass
    wait_until(lambda: stats(px)["total"]["proxy_protocol"]["refused"]
               == base + 20, timeout=5, what="20 refusals counted")


def test_a_backend_added_through_the_api_is_reached_by_every_worker(
        procs, tmp_path):
    """Worker 0 applies the runtime API's change and publishes its table;
    worker 1 follows it before its next pick: connections held by both
    workers reach the new backend, and the shared round-robin alternates
    A, B over all of them."""
    a, b = procs.backend(bid="A"), procs.backend(bid="B")
    token = tmp_path / "token"
    token.write_text("s3cret-token-for-the-workers-test\n")
    token.chmod(0o600)
    px = start(procs, [f"127.0.0.1:{a.port},id=A"],
               ["--set", f"proxy.admin_token_file={token}"])
    auth = [("Authorization", "Bearer s3cret-token-for-the-workers-test"),
            ("Content-Type", "application/json")]
    conns = spread_conns(px)
    try:
        body = json.dumps({"id": "B", "address": f"127.0.0.1:{b.port}"})
        with Conn(px.admin) as c:
            r = c.request("POST", "/api/pools/default/backends",
                          headers=auth, body=body.encode())
        assert r.status == 201, r.body
        time.sleep(0.2)  # past slow start's first share (none configured)
        seen = [set() for _ in conns]
        ids = []
        for k in range(40):  # two in a row on each: A then B on every one
            i = (k // 2) % len(conns)
            r = conns[i].request(path="/")
            assert r.status == 200
            seen[i].add(r.header("x-backend-id"))
            ids.append(r.header("x-backend-id"))
        assert all(x == {"A", "B"} for x in seen), seen
        assert all(ids[k] != ids[k + 1] for k in range(len(ids) - 1)), ids
    finally:
        for c in conns:
            c.close()
    # worker 0 (the API's and DNS's) replaced: its successor starts from
    # the published table, so B is still there and can be removed
    w0 = stats(px)["workers"][0]["pid"]
    os.kill(w0, signal.SIGKILL)
    wait_until(lambda: stats(px)["workers"][0]["pid"] not in (0, w0),
               timeout=5, what="a new worker 0")
    assert {b["id"] for b in stats(px)["backends"]
            if b["state"] != "removed"} == {"A", "B"}
    conns = spread_conns(px)
    try:
        with Conn(px.admin) as c:  # and removed again, for both
            r = c.request("DELETE", "/api/pools/default/backends/B",
                          headers=auth)
        assert r.status == 200, r.body
        for k in range(10):
            r = conns[k % len(conns)].request(path="/")
            assert r.header("x-backend-id") == "A"
    finally:
        for c in conns:
            c.close()

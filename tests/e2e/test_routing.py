"""Pools and routes end to end: real ./lbproxy with ./lbbackend processes
in several [pool.NAME] sections.  Checks the documented matching order
(exact host, wildcards nearest first, host-less routes, the default pool;
longest prefix first), 404 versus 421, the absolute-form target, each
pool's own settings (policy, connection model, health checks), per-pool
stats in /api/stats and /metrics (the pool label), the CSV log's pool
column, and a SIGHUP reload whose counters follow backends by pool and
id."""
import csv
import signal
import socket
import threading
import time

from conftest import LBPROXY
from httpc import read_response
from lbtest import free_port, http_json, http_text, wait_port, wait_until


def ask(port, host, path="/", target=None):
    """One request with the given Host (None: no Host field, HTTP/1.0)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        line = f"GET {target or path} HTTP/1.{0 if host is None else 1}\r\n"
        hs = "" if host is None else f"Host: {host}\r\n"
        s.sendall((line + hs + "Connection: close\r\n\r\n").encode())
        return read_response(s.makefile("rb"))


def who(port, host, path="/", target=None):
    r = ask(port, host, path, target)
    return r.header("x-backend-id") if r.status == 200 else r.status


def start(procs, tmp_path, text, admin=None, log=None):
    ini = tmp_path / "lb.ini"
    ini.write_text(text)
    port = free_port()
    args = [LBPROXY, "--config", str(ini), "--listen", f"127.0.0.1:{port}",
            "--admin", f"127.0.0.1:{admin}" if admin else "off",
            "--log", str(log) if log else "off"]
    p = procs.start(args, port=port, name="lbproxy")
    if admin:  # bound just after the proxy's own listener
        wait_port(admin, proc=p)
    p.port = port
    p.ini = ini
    return p


def test_matching_order(procs, tmp_path):
    b = {i: procs.backend(bid=i) for i in ("D", "API", "V2", "WWW", "EU", "ANY")}
    text = f"""
[backends]
D = 127.0.0.1:{b['D'].port}
[pool.api.backends]
API = 127.0.0.1:{b['API'].port}
[pool.v2.backends]
V2 = 127.0.0.1:{b['V2'].port}
[pool.www.backends]
WWW = 127.0.0.1:{b['WWW'].port}
[pool.eu.backends]
EU = 127.0.0.1:{b['EU'].port}
[pool.any.backends]
ANY = 127.0.0.1:{b['ANY'].port}
[route.api]
host = api.example.com
path_prefix = /v1/
pool = api
[route.api2]
host = api.example.com
path_prefix = /v1/beta/
pool = v2
[route.www]
host = *.example.com
pool = www
[route.eu]
host = *.eu.example.com
pool = eu
[route.static]
path_prefix = /static/
pool = any
"""
    lb = start(procs, tmp_path, text)
    port = lb.port
    assert who(port, "api.example.com", "/v1/x") == "API"
    assert who(port, "api.example.com", "/v1/beta/x") == "V2"
    # exact host, no prefix fits: the wildcard, then host-less, then default
    assert who(port, "api.example.com", "/other") == "WWW"
    assert who(port, "a.b.example.com") == "WWW"
    assert who(port, "x.eu.example.com") == "EU"
    assert who(port, "example.com", "/static/a") == "ANY"
    assert who(port, "example.com", "/") == "D"
    assert who(port, None, "/static/x") == "ANY"
    assert who(port, None, "/") == "D"
    # the Host is compared without case, port and trailing dot
    assert who(port, "API.Example.COM:8080", "/v1/") == "API"
    assert who(port, "api.example.com.", "/v1/") == "API"
    # an absolute-form target names the host (and wins over Host)
    assert who(port, "other.org", target="http://api.example.com/v1/z") == \
        "API"


def test_404_and_421(procs, tmp_path):
    a = procs.backend(bid="A")
    text = f"""
[pool.api.backends]
A = 127.0.0.1:{a.port}
[route.api]
host = api.example.com
path_prefix = /v1/
pool = api
"""
    admin = free_port()
    lb = start(procs, tmp_path, text, admin=admin)
    assert who(lb.port, "api.example.com", "/v1/") == "A"
    r = ask(lb.port, "api.example.com", "/v2/")
    assert r.status == 404
    r = ask(lb.port, "unknown.example.org", "/v1/")
    assert (r.status, r.reason) == (421, "Misdirected Request")
    assert ask(lb.port, None, "/v1/").status == 421
    st = wait_until(lambda: (s := http_json(admin))["total"]["requests"] == 4
                    and s)
    assert st["total"]["errors"] == 3
    assert [p["name"] for p in st["pools"]] == ["api"]
    # one pool shares the total's series: its totals are the proxy's
    assert st["pools"][0]["requests"] == 4
    assert st["backends"][0]["pool"] == "api"
    assert st["backends"][0]["key"] == "api/A"


def test_pool_settings_stats_log(procs, tmp_path):
    a, b, c = (procs.backend(bid=i) for i in ("A", "B", "C"))
    bad = procs.backend(bid="BAD", extra=["--fail-health"])
    text = f"""
[proxy]
mode = round-robin
persistent = true
[backends]
A = 127.0.0.1:{a.port}
[pool.api]
mode = least-conn
persistent = false
check_path = /health
check_interval_ms = 100
[pool.api.backends]
B = 127.0.0.1:{b.port}
C = 127.0.0.1:{c.port}
BAD = 127.0.0.1:{bad.port}
[route.api]
host = api.test
pool = api
"""
    admin = free_port()
    log = tmp_path / "routes.csv"
    lb = start(procs, tmp_path, text, admin=admin, log=log)
    # the api pool's health checks take BAD out; the default pool has none
    wait_until(lambda: {x["id"]: x["health"] for x in http_json(admin)
                        ["backends"] if x["pool"] == "api"}["BAD"] == "down",
               timeout=10)
    seen = {}
    for i in range(20):
        host = "api.test" if i % 2 else "www.test"
        w = who(lb.port, host)
        seen[w] = seen.get(w, 0) + 1
    assert seen.get("A") == 10
    assert seen.get("B", 0) + seen.get("C", 0) == 10
    assert "BAD" not in seen
    st = wait_until(lambda: (s := http_json(admin))["total"]["requests"] == 20
                    and s)
    pools = {p["name"]: p for p in st["pools"]}
    assert pools["default"]["mode"] == "round-robin"
    assert pools["default"]["persistent"] is True
    assert pools["api"]["mode"] == "least-conn"
    assert pools["api"]["persistent"] is False
    assert pools["default"]["requests"] == 10
    assert pools["api"]["requests"] == 10
    keys = {x["key"]: x["requests"] for x in st["backends"]}
    assert keys["default/A"] == 10
    assert keys["api/B"] + keys["api/C"] == 10
    assert set(st["history"]["requests"]) == set(keys)
    m = http_text(admin, "/metrics")
    assert 'lbproxy_requests_total{pool="default",backend="A"} 10\n' in m
    assert f'lbproxy_requests_total{{pool="api",backend="B"}} ' \
           f'{keys["api/B"]}\n' in m
    assert 'lbproxy_backend_up{pool="api",backend="BAD"} 0\n' in m
    # the log names each row's pool, policy and connection model
    procs.stop(lb)
    rows = list(csv.DictReader(open(log)))
    assert len(rows) == 20
    for r in rows:
        if r["pool"] == "api":
            assert r["backend_id"] in ("B", "C")
            assert (r["mode"], r["conn_model"]) == ("least-conn",
                                                    "non_persistent")
        else:
            assert r["pool"] == "default" and r["backend_id"] == "A"
            assert (r["mode"], r["conn_model"]) == ("round-robin",
                                                    "persistent")


def test_reload_follows_pool_and_id(procs, tmp_path):
    a, b, c = (procs.backend(bid=i) for i in ("A", "B", "C"))
    base = f"""
[backends]
A = 127.0.0.1:{a.port}
[pool.api.backends]
B = 127.0.0.1:{b.port}
[pool.old.backends]
C = 127.0.0.1:{c.port}
[route.api]
host = api.test
pool = api
[route.old]
host = old.test
pool = old
"""
    admin = free_port()
    lb = start(procs, tmp_path, base, admin=admin)
    for host in ["api.test"] * 3 + ["old.test"] * 2 + ["x.test"]:
        assert who(lb.port, host) in ("A", "B", "C")
    wait_until(lambda: http_json(admin)["total"]["requests"] == 6)
    # pool old goes; api gets C beside B; the default pool keeps A
    lb.ini.write_text(f"""
[backends]
A = 127.0.0.1:{a.port}
[pool.api.backends]
B = 127.0.0.1:{b.port}
C = 127.0.0.1:{c.port}
[route.api]
host = api.test
pool = api
""")
    lb.send_signal(signal.SIGHUP)
    wait_until(lambda: "api/C" in {x["key"] for x in
                                   http_json(admin)["backends"]})
    st = http_json(admin)
    keys = {x["key"]: x["requests"] for x in st["backends"]}
    assert keys == {"default/A": 1, "api/B": 3, "api/C": 0}
    assert st["total"]["requests"] == 6
    assert [p["name"] for p in st["pools"]] == ["default", "api"]
    # old.test has no route now: the default pool takes it
    assert who(lb.port, "old.test") == "A"
    got = {who(lb.port, "api.test") for _ in range(6)}
    assert got == {"B", "C"}


def test_queue_shared_by_pools_has_no_head_of_line_blocking(procs, tmp_path):
    """max_conns queues of two pools share one FIFO: a waiter of a full
    pool does not hold up those of another pool behind it."""
    slow = procs.backend(bid="SLOW", extra=["--profile", "fixed:1500ms"])
    fast = procs.backend(bid="FAST", extra=["--profile", "fixed:50ms"])
    text = f"""
[pool.slow]
max_conns = 1
[pool.slow.backends]
S = 127.0.0.1:{slow.port}
[pool.fast]
max_conns = 1
[pool.fast.backends]
F = 127.0.0.1:{fast.port}
[route.slow]
host = slow.test
pool = slow
[route.fast]
host = fast.test
pool = fast
"""
    lb = start(procs, tmp_path, text)
    results = {}

    def one(name, host):
        t0 = time.monotonic()
        results[name] = (who(lb.port, host), time.monotonic() - t0)

    threads = []
    for i in range(3):  # one in flight on SLOW, two waiting
        threads.append(threading.Thread(target=one,
                                        args=(f"s{i}", "slow.test")))
        threads[-1].start()
        time.sleep(0.05)
    t0 = time.monotonic()
    for i in range(3):  # queued behind them, for another pool
        threads.append(threading.Thread(target=one,
                                        args=(f"f{i}", "fast.test")))
        threads[-1].start()
    for t in threads:
        t.join(15)
    fast_done = max(results[f"f{i}"][1] for i in range(3))
    assert all(results[f"f{i}"][0] == "FAST" for i in range(3))
    assert all(results[f"s{i}"][0] == "SLOW" for i in range(3))
    # three 50 ms requests one at a time, not after the slow pool's 1.5 s
    assert time.monotonic() - t0 < 4.6  # the slow ones, for the record
    assert fast_done < 1.0, results

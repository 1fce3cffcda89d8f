"""Backends found through DNS, end to end: real ./lbproxy with a pool whose
backends are a name (`name:port`, A records) or an SRV name, resolved by
c-ares against a DNS server of our own on loopback (tests/lib/dnsserver.py)
and real ./lbbackend processes on 127.0.0.1, .2 and .3.  Checks that the
pool takes the answer's addresses; that when the answer changes from
{A, B} to {B, C} under load, traffic follows within resolve_interval_ms +
1 s with no failed request; that a DNS server that stops answering (or
says NXDOMAIN) changes nothing and is reported; that SRV weights and ports
become backends; and that a reload keeps the resolved set while DNS is
silent.  Nothing leaves 127.0.0.1/8."""
import signal
import threading
import time

import pytest

from conftest import LBBACKEND, LBPROXY
from dnstest import Dns
from httpc import Conn
from lbtest import free_port, http_json, wait_port, wait_until

INTERVAL_MS = 1000


def backend(procs, ip, port, bid):
    p = procs.start([LBBACKEND, "--listen-address", ip, "--port", str(port),
                     "--id", bid], name=f"backend-{bid}")
    wait_until(lambda: _accepts(ip, port, p), 10, what=f"{ip}:{port}")
    return p


def _accepts(ip, port, proc):
    import socket
    if proc.poll() is not None:
        raise RuntimeError(f"backend exited with {proc.returncode}")
    try:
        with socket.create_connection((ip, port), timeout=0.5):
            return True
    except OSError:
        return False


def start_proxy(procs, tmp_path, dns_port, spec, extra_ini="", extra=()):
    ini = tmp_path / "lb.ini"
    ini.write_text(f"""
[dns]
resolvers = 127.0.0.1:{dns_port}
resolve_interval_ms = {INTERVAL_MS}
timeout_ms = 300
[pool.web]
mode = round-robin
[pool.web.backends]
W = {spec}
[route.web]
pool = web
{extra_ini}""")
    port, admin = free_port(), free_port()
    p = procs.start([LBPROXY, "--config", str(ini), "--listen",
                     f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}",
                     "--log", "off", *extra], port=port, name="lbproxy")
    wait_port(admin)
    p.port, p.admin, p.ini = port, admin, ini
    return p


def web_backends(admin):
    """address -> backend row of pool web (removed ones left out)."""
    return {b["address"]: b for b in http_json(admin)["backends"]
            if b["pool"] == "web" and b.get("state") != "removed"}


class Load:
    """Four keep-alive clients in a loop (bounded by `seconds`), noting
    when each backend id answered and every failure."""

    def __init__(self, port, seconds=15.0):
        self.port, self.end = port, time.monotonic() + seconds
        self.first, self.last, self.failures, self.ok = {}, {}, [], 0
        self.lock = threading.Lock()
        self.stop = False
        self.threads = [threading.Thread(target=self.run) for _ in range(4)]
        for t in self.threads:
            t.start()

    def run(self):
        c = None
        while not self.stop and time.monotonic() < self.end:
            try:
                c = c or Conn(self.port)
                r = c.request(path="/")
                now = time.monotonic()
                who = r.header("x-backend-id")
                with self.lock:
                    if r.status != 200:
                        self.failures.append(r.status)
                    else:
                        self.ok += 1
                        self.first.setdefault(who, now)
                        self.last[who] = now
            except (OSError, EOFError) as e:
                with self.lock:
                    self.failures.append(repr(e))
                c = None

    def close(self):
        self.stop = True
        for t in self.threads:
            t.join(20)


@pytest.fixture
def dns(tmp_path):
    d = Dns(tmp_path, {"ttl": 1, "names": {}})
    yield d
    d.close()


def zone(ips, ttl=1):
    return {"ttl": ttl, "names": {"web.test": {"A": ips}}}


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "2-workers"])
def test_answer_change_followed_without_failures(procs, tmp_path, dns,
                                                 workers):
    """With --workers 2, worker 0 resolves and applies the answer; worker
    1 follows the table it publishes, so both serve C and drop A."""
    port = free_port()
    for ip, bid in (("127.0.0.1", "A"), ("127.0.0.2", "B"),
                    ("127.0.0.3", "C")):
        backend(procs, ip, port, bid)
    dns.set(zone(["127.0.0.1", "127.0.0.2"]))
    lb = start_proxy(procs, tmp_path, dns.port, f"web.test:{port}",
                     extra=("--workers", str(workers)))
    wait_until(lambda: set(web_backends(lb.admin)) ==
               {f"127.0.0.1:{port}", f"127.0.0.2:{port}"}, 5)
    load = Load(lb.port)
    try:
        time.sleep(1.0)
        changed = time.monotonic()
        dns.set(zone(["127.0.0.2", "127.0.0.3"]))
        wait_until(lambda: "C" in load.first, 5, what="C serving")
        time.sleep(1.5)
    finally:
        load.close()
    print(f"\n{load.ok} requests, failures {load.failures}; after the "
          f"change C first served at +{load.first['C'] - changed:.3f} s, "
          f"A last at +{load.last['A'] - changed:.3f} s")
    assert load.failures == []
    assert load.ok > 100
    # traffic follows within the interval + 1 s
    assert load.first["C"] - changed <= INTERVAL_MS / 1000 + 1.0
    assert load.last["A"] - changed <= INTERVAL_MS / 1000 + 1.0
    assert load.last["B"] > load.first["C"]  # B, kept, served throughout
    rows = web_backends(lb.admin)
    assert set(rows) == {f"127.0.0.2:{port}", f"127.0.0.3:{port}"}
    st = http_json(lb.admin)
    names = {d["name"]: d for d in st["dns"]}
    assert names["web.test"]["status"] == "ok"
    assert names["web.test"]["addresses"] == 2


def test_silent_or_failing_dns_changes_nothing(procs, tmp_path, dns):
    port = free_port()
    for ip, bid in (("127.0.0.1", "A"), ("127.0.0.2", "B")):
        backend(procs, ip, port, bid)
    dns.set(zone(["127.0.0.1", "127.0.0.2"]))
    lb = start_proxy(procs, tmp_path, dns.port, f"web.test:{port}")
    wait_until(lambda: len(web_backends(lb.admin)) == 2, 5)
    load = Load(lb.port)
    try:
        z = zone(["127.0.0.1", "127.0.0.2"])
        z["silent"] = True
        dns.set(z)
        wait_until(lambda: {d["name"]: d for d in http_json(lb.admin)
                            ["dns"]}["web.test"]["status"] == "error", 8)
        dns.set({"ttl": 1, "names": {}})  # NXDOMAIN now
        wait_until(lambda: {d["name"]: d for d in http_json(lb.admin)
                            ["dns"]}["web.test"]["status"] == "empty", 8)
        time.sleep(1.0)
    finally:
        load.close()
    assert load.failures == []
    assert set(load.last) == {"A", "B"}
    assert len(web_backends(lb.admin)) == 2  # the last good set stays
    # and a reload while DNS is down keeps it too
    lb.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert len(web_backends(lb.admin)) == 2
    r = Conn(lb.port).request(path="/")
    assert r.status == 200


def test_srv_ports_and_weights(procs, tmp_path, dns):
    p1, p2 = free_port(), free_port()
    backend(procs, "127.0.0.1", p1, "A")
    backend(procs, "127.0.0.2", p2, "B")
    dns.set({"ttl": 1, "names": {
        "_http._tcp.web.test": {"SRV": [
            {"priority": 10, "weight": 3, "port": p1, "target": "a.test"},
            {"priority": 10, "weight": 1, "port": p2, "target": "b.test"},
            {"priority": 20, "weight": 9, "port": p2, "target": "c.test"}]},
        "a.test": {"A": ["127.0.0.1"]},
        "b.test": {"A": ["127.0.0.2"]},
        "c.test": {"A": ["127.0.0.3"]}}})
    lb = start_proxy(procs, tmp_path, dns.port, "srv:_http._tcp.web.test")
    wait_until(lambda: len(web_backends(lb.admin)) == 2, 5)
    rows = web_backends(lb.admin)
    assert rows[f"127.0.0.1:{p1}"]["weight"] == 3
    assert rows[f"127.0.0.2:{p2}"]["weight"] == 1
    seen = {}
    with Conn(lb.port) as c:
        for _ in range(40):
            w = c.request(path="/").header("x-backend-id")
            seen[w] = seen.get(w, 0) + 1
    assert seen == {"A": 30, "B": 10}  # smooth weighted round-robin 3:1

"""The resolver (src/resolver.c, c-ares on the event loop) against a DNS
server of our own on loopback (tests/lib/dnsserver.py): names resolve at
start, a changed answer is reported within the interval plus a second and
an unchanged one is not, a TTL shorter than the interval is honoured, SRV
records give ports and weights (lowest priority only), NXDOMAIN, empty
answers, server failures and a silent server are reported as failures and
recovered from, every malformed answer ends in an error report while the
harness keeps running, and unwatch/destroy (also from inside a callback or
with queries in flight) stop every callback and leak nothing under ASan.
It runs the resolver alone (tests/dns_harness.c); nothing leaves
127.0.0.1."""
import json
import os
import subprocess
import time

import pytest

from conftest import LBPROXY, ROOT
from dnstest import Dns, Lines

HARNESS = os.path.join(ROOT, os.environ.get("DNS_HARNESS",
                                            "build/tests/dns_harness"))


class Harness:
    def __init__(self, tmp_path, servers, specs, interval_ms=1000,
                 timeout_ms=300):
        self.err = open(tmp_path / "dns_harness.err", "w")
        self.proc = subprocess.Popen(
            [HARNESS, "--servers", servers, "--timeout-ms", str(timeout_ms),
             "--interval-ms", str(interval_ms), *specs],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
            text=True, cwd=ROOT)
        self.lines = Lines(self.proc)
        self.lines.next(lambda m: m["event"] == "ready", 10, "ready")

    def send(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def answer(self, watch, pred=lambda a: True, timeout=10.0):
        return self.lines.next(
            lambda m: m["event"] == "answer" and m["watch"] == watch and
            pred(m), timeout, f"answer of watch {watch}")

    def quit(self):
        """Ends the harness through resolver_destroy + loop_destroy; under
        ASan a leak or a bad access makes the exit status non-zero."""
        if self.proc.poll() is None:
            self.send("quit")
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()
        rc = self.proc.returncode
        err = open(self.err.name).read()
        assert rc == 0, f"dns_harness exit {rc}: {err[-3000:]}"


def addrs(answer):
    return [(a["addr"], a["weight"]) for a in answer["addrs"]]


ZONE = {
    "ttl": 300,
    "names": {
        "web.test": {"A": ["10.0.0.1", "10.0.0.2"], "AAAA": ["fd00::1"]},
        "a.test": {"A": ["10.1.0.1"]},
        "b.test": {"A": ["10.1.0.2"], "AAAA": ["fd00::2"]},
        "c.test": {"A": ["10.1.0.3"]},
        "_http._tcp.web.test": {"SRV": [
            {"priority": 10, "weight": 5, "port": 8080, "target": "a.test"},
            {"priority": 10, "weight": 0, "port": 8081, "target": "b.test"},
            {"priority": 20, "weight": 9, "port": 9999, "target": "c.test"},
        ]},
        "empty.test": {},
        "sf.test": {"rcode": "SERVFAIL"},
    },
}


@pytest.fixture
def dns(tmp_path):
    d = Dns(tmp_path, ZONE)
    yield d
    d.close()


@pytest.fixture
def run(tmp_path, dns):
    """run(specs, **kw) -> a harness on dns; each one quits at teardown
    and must exit 0."""
    started = []

    def start(specs, **kw):
        h = Harness(tmp_path, f"127.0.0.1:{dns.port}", specs, **kw)
        started.append(h)
        return h

    yield start
    for h in started:
        h.quit()


def test_initial_resolution_sorted_with_ttl(run):
    h = run(["host:web.test:8080", "host:a.test:80"])
    a = h.answer(0)
    assert a["status"] == "ok" and a["changed"] is True
    assert addrs(a) == [("10.0.0.1:8080", 1), ("10.0.0.2:8080", 1),
                        ("[fd00::1]:8080", 1)]
    assert a["ttl"] == 300 and a["next_ms"] == 1000  # the interval first
    assert a["addrs"][0]["target"] == "web.test"
    assert addrs(h.answer(1)) == [("10.1.0.1:80", 1)]


def test_change_seen_within_interval_unchanged_not_reported(run, dns):
    h = run(["host:web.test:80"], interval_ms=1000)
    h.answer(0)
    before = dns.count("web.test")
    # Two or three unchanged re-resolutions: queried, never reported.
    assert h.lines.drain(2.5) == []
    assert dns.count("web.test") >= before + 2
    zone = json.loads(json.dumps(ZONE))
    zone["names"]["web.test"] = {"A": ["10.0.0.2", "10.0.0.3"]}
    dns.set(zone)
    t0 = time.monotonic()
    a = h.answer(0, timeout=5)
    took = time.monotonic() - t0
    assert a["status"] == "ok" and a["changed"] is True
    assert addrs(a) == [("10.0.0.2:80", 1), ("10.0.0.3:80", 1)]
    assert took < 2.0, f"change seen after {took:.2f} s (interval 1 s)"


def test_ttl_shorter_than_interval_honoured(run, dns):
    zone = json.loads(json.dumps(ZONE))
    zone["names"]["web.test"]["ttl"] = 1
    dns.set(zone)
    h = run(["host:web.test:80"], interval_ms=30000)
    a = h.answer(0)
    assert a["ttl"] == 1 and a["next_ms"] == 1000
    zone["names"]["web.test"]["A"] = ["10.0.0.7"]
    dns.set(zone)
    t0 = time.monotonic()
    a = h.answer(0, lambda m: m["changed"], timeout=5)
    assert time.monotonic() - t0 < 3.0  # the TTL, not the 30-s interval
    assert addrs(a) == [("10.0.0.7:80", 1), ("[fd00::1]:80", 1)]


def test_srv_ports_weights_lowest_priority(run, dns):
    h = run(["srv:_http._tcp.web.test"])
    a = h.answer(0)
    assert a["status"] == "ok" and a["kind"] == "srv"
    # priority 20 (c.test) is a fail-over group: not used; weight 0 -> 1
    assert addrs(a) == [("10.1.0.1:8080", 5), ("10.1.0.2:8081", 1),
                        ("[fd00::2]:8081", 1)]
    assert {x["priority"] for x in a["addrs"]} == {10}
    assert [x["target"] for x in a["addrs"]] == ["a.test", "b.test", "b.test"]
    # new weights, one target gone (NXDOMAIN): the rest is the new set
    zone = json.loads(json.dumps(ZONE))
    zone["names"]["_http._tcp.web.test"]["SRV"] = [
        {"priority": 5, "weight": 3, "port": 7000, "target": "a.test"},
        {"priority": 5, "weight": 2, "port": 7001, "target": "gone.test"},
    ]
    dns.set(zone)
    a = h.answer(0, timeout=5)
    assert a["status"] == "ok" and a["changed"] is True
    assert addrs(a) == [("10.1.0.1:7000", 3)]
    # only "." targets: the service is not offered
    zone["names"]["_http._tcp.web.test"]["SRV"] = [
        {"priority": 0, "weight": 0, "port": 1, "target": "."}]
    dns.set(zone)
    a = h.answer(0, timeout=5)
    assert a["status"] == "empty" and a["addrs"] == []
    assert a["reason"] == "service not offered"


def test_srv_many_records_bounded(run, dns):
    """100 records (over TCP): the lowest priority's found after them, and
    100 of one priority cut to 64 with one lookup for their one target."""
    zone = json.loads(json.dumps(ZONE))
    many = [{"priority": 20, "weight": 1, "port": 1000 + i,
             "target": "c.test"} for i in range(100)]
    zone["names"]["_a._tcp.many.test"] = {"SRV": many + [
        {"priority": 10, "weight": 2, "port": 80, "target": "a.test"},
        {"priority": 10, "weight": 3, "port": 81, "target": "a.test"}]}
    zone["names"]["_b._tcp.many.test"] = {"SRV": many}
    dns.set(zone)
    h = run(["srv:_a._tcp.many.test", "srv:_b._tcp.many.test"],
            interval_ms=30000)
    a = h.answer(0)
    assert addrs(a) == [("10.1.0.1:80", 2), ("10.1.0.1:81", 3)]
    b = h.answer(1)
    assert b["status"] == "ok" and len(b["addrs"]) == 64
    assert b["dropped"] == 36
    assert {x["addr"] for x in b["addrs"]} == {
        f"10.1.0.3:{1000 + i}" for i in range(64)}
    assert dns.wait_query(lambda m: m["q"] == "_b._tcp.many.test" and
                          m["tcp"])
    assert dns.count("c.test") == 1  # one lookup per distinct target


def test_nxdomain_empty_servfail_reported_then_recovery(run, dns):
    h = run(["host:nope.test:80", "host:empty.test:80", "host:sf.test:80",
             "host:web.test:80"])
    assert h.answer(0)["status"] == "empty"
    assert h.answer(1)["reason"] == "no records"
    sf = h.answer(2)
    assert sf["status"] == "error" and sf["addrs"] == []
    assert sf["reason"] == "servers refused or failed"
    good = h.answer(3)
    # the name disappears: a failure, with no addresses, said once
    zone = json.loads(json.dumps(ZONE))
    del zone["names"]["web.test"]
    dns.set(zone)
    a = h.answer(3, timeout=5)
    assert a["status"] == "empty" and a["reason"] == "nxdomain"
    assert a["addrs"] == [] and a["changed"] is False and a["failures"] == 1
    n = dns.count("web.test")
    assert [m for m in h.lines.drain(2.5) if m.get("watch") == 3] == []
    assert dns.count("web.test") > n  # retried, not re-reported
    # it comes back with the set it had: ok again, but not a change
    dns.set(ZONE)
    a = h.answer(3, timeout=6)
    assert a["status"] == "ok" and a["changed"] is False
    assert addrs(a) == addrs(good) and a["failures"] == 0


def test_silent_server_reported_then_recovery(run, dns):
    h = run(["host:web.test:80", "srv:_http._tcp.web.test"])
    first = h.answer(0)
    h.answer(1)
    dns.set(dict(ZONE, silent=True))
    a = h.answer(0, timeout=6)
    assert a["status"] == "error" and a["reason"] == "timeout"
    s = h.answer(1, timeout=6)
    assert s["status"] == "error" and s["reason"] == "timeout"
    dns.set(ZONE)
    a = h.answer(0, timeout=8)
    assert a["status"] == "ok" and a["changed"] is False
    assert addrs(a) == addrs(first)
    assert h.answer(1, timeout=8)["status"] == "ok"


def test_cname_followed_loop_is_an_error(run, dns):
    zone = json.loads(json.dumps(ZONE))
    zone["names"].update({
        "alias.test": {"CNAME": "mid.test", "ttl": 20},
        "mid.test": {"CNAME": "web.test"},
        "loop1.test": {"CNAME": "loop2.test"},
        "loop2.test": {"CNAME": "loop1.test"},
    })
    dns.set(zone)
    h = run(["host:alias.test:80", "host:loop1.test:80"])
    a = h.answer(0)
    assert a["status"] == "ok" and a["ttl"] == 20  # the chain's shortest
    assert addrs(a) == [("10.0.0.1:80", 1), ("10.0.0.2:80", 1),
                        ("[fd00::1]:80", 1)]
    assert a["addrs"][0]["target"] == "alias.test"
    loop = h.answer(1)
    assert loop["status"] == "empty" and loop["addrs"] == []


MALFORMED = {
    # mode: (spec, reason)
    "truncated": ("host:m-truncated.test:80", "malformed answer"),
    "ptrloop": ("host:m-ptrloop.test:80", "malformed answer"),
    "count": ("host:m-count.test:80", "malformed answer"),
    "rdlen": ("host:m-rdlen.test:80", "malformed answer"),
    "wrongid": ("host:m-wrongid.test:80", "timeout"),  # ignored by c-ares
    "garbage": ("host:m-garbage.test:80", "timeout"),
    "empty": ("host:m-empty.test:80", "timeout"),
    "badname": ("srv:_x._tcp.m-badname.test", "bad target name in answer"),
}


def test_malformed_answers_error_and_harness_survives(run, dns):
    zone = json.loads(json.dumps(ZONE))
    for mode in MALFORMED:
        zone["names"][f"m-{mode}.test"] = {"malformed": mode}
    zone["names"]["_x._tcp.m-badname.test"] = {
        "malformed": "badname",
        "SRV": [{"priority": 1, "weight": 1, "port": 80, "target": "x"}]}
    zone["names"]["m-huge.test"] = {"malformed": "huge"}
    dns.set(zone)
    specs = [spec for spec, _ in MALFORMED.values()] + ["host:m-huge.test:80"]
    h = run(specs)
    for i, (mode, (spec, reason)) in enumerate(MALFORMED.items()):
        a = h.answer(i, timeout=8)
        assert a["status"] == "error", (mode, a)
        assert a["reason"] == reason, (mode, a)
        assert a["addrs"] == []
    # 200 A records: truncated over UDP, fetched over TCP, cut to 64
    huge = h.answer(len(MALFORMED), timeout=8)
    assert huge["status"] == "ok" and len(huge["addrs"]) == 64
    assert huge["dropped"] == 200 - 64
    assert dns.wait_query(lambda m: m["q"] == "m-huge.test" and m["tcp"])
    # several rounds of hostile answers later the resolver still works
    time.sleep(2.5)
    h.send("watch host:web.test:80")
    assert h.answer(len(specs))["status"] == "ok"
    assert h.proc.poll() is None


def test_unwatch_and_destroy_from_callback(run, dns):
    h = run(["host:web.test:80"])
    h.send("unwatch-on-answer 1")
    h.send("watch host:a.test:80")
    h.answer(1)
    h.lines.next(lambda m: m["event"] == "unwatched", 5, "unwatched")
    zone = json.loads(json.dumps(ZONE))
    zone["names"]["a.test"]["A"] = ["10.1.0.9"]
    zone["names"]["web.test"]["A"] = ["10.0.0.9"]
    dns.set(zone)
    h.answer(0, lambda m: m["changed"], timeout=5)  # watch 0 still runs
    h.send("destroy-on-answer")
    zone["names"]["web.test"]["A"] = ["10.0.0.8"]
    dns.set(zone)
    h.answer(0, timeout=5)
    h.lines.next(lambda m: m["event"] == "destroyed", 5, "destroyed")
    late = h.lines.drain(2.5)
    assert [m for m in late if m["event"] == "answer"] == []


def test_destroy_with_queries_in_flight(run, dns):
    dns.set(dict(ZONE, silent=True))
    specs = ["host:web.test:80", "host:a.test:80", "srv:_http._tcp.web.test"]
    h = run(specs, timeout_ms=2000)
    time.sleep(0.3)
    h.send("queries")
    q = h.lines.next(lambda m: m["event"] == "queries", 5, "queries")
    assert q["n"] == len(specs)
    h.send("unwatch 1")  # a watch removed with its query in flight
    h.send("destroy")
    h.lines.next(lambda m: m["event"] == "destroyed", 5, "destroyed")
    assert [m for m in h.lines.drain(1.0) if m["event"] == "answer"] == []


def test_named_backend_checked(tmp_path):
    """Named backends pass --check and print back as written; a bad port
    is refused.  (Running with them is tests/e2e/test_discovery.py.)"""
    ok = subprocess.run([LBPROXY, "--config", "/dev/null", "--backend",
                         "web.test:80", "--backend",
                         "srv:_http._tcp.web.test", "--check"],
                        capture_output=True, text=True, timeout=10)
    assert ok.returncode == 0, ok.stderr
    assert "A = web.test:80" in ok.stdout
    assert "B = srv:_http._tcp.web.test" in ok.stdout
    bad = subprocess.run([LBPROXY, "--config", "/dev/null", "--backend",
                          "web.test:99999"], capture_output=True, text=True,
                         timeout=10)
    assert bad.returncode == 2 and "--backend: expected" in bad.stderr

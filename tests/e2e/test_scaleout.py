"""Scale-out: two ./lbproxy instances that share nothing but their
configuration, behind the kernel's nftables numgen DNAT on a virtual IP
(kube-proxy's nftables mode), with the backends in a third namespace
(tests/lib/netns.py builds the network; docs/scale-out.md).  It proves
that new connections alternate between the instances and both serve;
that kill -9 of one instance loses exactly its in-flight requests and the
new connections the rule still sends it, and none once the rule drops it;
and that the backends see the real client in X-Forwarded-For and, with
send_proxy, in a PROXY v1 header naming the client's own port.

These tests talk to 10.77.x addresses, but only inside namespaces they
create and delete: nothing leaves the machine.  Skipped, with the reason,
where network namespaces or nftables are not available."""
import json
import os
import signal
import threading
import time

import pytest

from conftest import LBBACKEND, LBPROXY
from httpc import read_response
from lbtest import wait_until
from rawbackend import RawBackend, read_proxy_header

import netns
from netns import BACKENDS, CLIENT, VIP, instance_addr

BACKEND_PORT = 8081


@pytest.fixture(scope="module")
def net():
    reason = netns.unavailable()
    if reason:
        pytest.skip(reason)
    n = netns.Network(instances=2)
    try:
        yield n
    finally:
        n.close()


class Cluster:
    """What one test starts inside the network; stop() ends it all."""

    def __init__(self, net, tmp_path):
        self.net = net
        self.tmp = tmp_path
        self.started = []
        net.set_members([0, 1])

    def _start(self, ns, args, name):
        p = self.net.start(ns, args, str(self.tmp / f"{name}.log"))
        self.started.append(p)
        return p

    def backend(self, extra=()):
        p = self._start(self.net.backends,
                        [LBBACKEND, "--listen-address", BACKENDS, "--port",
                         str(BACKEND_PORT), "--id", "A", "--quiet", *extra],
                        "backend")
        self.net.wait_listen(self.net.backends, BACKENDS, BACKEND_PORT, p)
        return p

    def instances(self, backend, extra=()):
        """Both instances, the same flags for each but their address."""
        out = []
        for i, ns in enumerate(self.net.lbs):
            addr = instance_addr(i)
            p = self._start(ns, [LBPROXY, "--config", "/dev/null",
                                 "--listen", f"{addr}:80",
                                 "--admin", "127.0.0.1:5002", "--log", "off",
                                 "--backend", backend, *extra], f"lb{i + 1}")
            self.net.wait_listen(ns, addr, 80, p)
            self.net.wait_listen(ns, "127.0.0.1", 5002, p)
            out.append(p)
        return out

    def stop(self):
        for p in self.started:
            self.net.stop(p, signal.SIGKILL)


@pytest.fixture
def cluster(net, tmp_path):
    c = Cluster(net, tmp_path)
    try:
        yield c
    finally:
        c.stop()


def get(net, ns, addr, port, path="/", headers=(), timeout=5.0):
    """One GET on a new connection made from inside ns; returns (the
    client's local port, the response)."""
    s = net.socket(ns)
    try:
        s.settimeout(timeout)
        s.connect((addr, port))
        lport = s.getsockname()[1]
        hdrs = "".join(f"{k}: {v}\r\n" for k, v in headers)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: app\r\n{hdrs}"
                  "Connection: close\r\n\r\n".encode())
        with s.makefile("rb") as f:
            r = read_response(f)
        assert r is not None, f"{addr}:{port} closed without a response"
        return lport, r
    finally:
        s.close()


def stats(net, i):
    """Instance i's /api/stats, read from inside its namespace."""
    _, r = get(net, net.lbs[i], "127.0.0.1", 5002, "/api/stats")
    assert r.status == 200
    return json.loads(r.body)


def test_new_connections_alternate_and_both_instances_serve(net, cluster):
    cluster.backend()
    cluster.instances(f"{BACKENDS}:{BACKEND_PORT}")
    assert "numgen inc mod 2" in net.ruleset()
    n = 40
    for _ in range(n):
        _, r = get(net, net.client, VIP, 80)
        assert r.status == 200 and r.header("x-backend-id") == "A"
    # numgen inc: one shared counter, so sequential connections alternate
    # exactly; stats count a request when it is finished, so poll.
    wait_until(lambda: [stats(net, i)["total"]["requests"]
                        for i in (0, 1)] == [n // 2, n // 2], timeout=5,
               what="20 requests on each instance")


def test_backends_see_the_real_client_in_x_forwarded_for(net, cluster):
    cluster.backend()
    cluster.instances(f"{BACKENDS}:{BACKEND_PORT}")
    for i in range(6):
        _, r = get(net, net.client, VIP, 80, headers=[("X-Echo-Headers",
                                                       "1")])
        head = r.body.decode("latin-1")
        # DNAT rewrites the destination only: each instance's peer is the
        # client itself, and that is what it appends.
        assert f"\r\nX-Forwarded-For: {CLIENT}\r\n" in head, head
    # A client-supplied chain is kept and extended by the real peer.
    _, r = get(net, net.client, VIP, 80, headers=[
        ("X-Echo-Headers", "1"), ("X-Forwarded-For", "203.0.113.9")])
    assert (f"\r\nX-Forwarded-For: 203.0.113.9, {CLIENT}\r\n"
            in r.body.decode("latin-1"))


def test_backends_see_the_client_port_in_a_proxy_header(net, cluster):
    def respond(conn_no, req_no, head, body):
        hdr = raw.preambles[conn_no].encode()
        return (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                % (len(hdr), hdr))

    raw = RawBackend(respond, preamble=read_proxy_header, host=BACKENDS,
                     sock=net.socket(net.backends))
    try:
        cluster.instances(f"{BACKENDS}:{raw.port}",
                          ["--send-proxy", "v1", "--non-persistent"])
        seen = set()
        for _ in range(6):
            lport, r = get(net, net.client, VIP, 80)
            proto, fam, src, dst, sport, dport = r.body.decode().split()
            assert (proto, fam, src, sport, dport) == (
                "PROXY", "TCP4", CLIENT, str(lport), "80"), r.body
            seen.add(dst)
        # The address each instance was reached at, after DNAT: both.
        assert seen == {instance_addr(0), instance_addr(1)}
    finally:
        raw.close()


class Load:
    """`threads` closed-loop clients, each a new connection per request
    through the VIP, recording (start, connected, end, outcome) with
    outcome ok, refused (the connect was refused), dropped (connected,
    then closed before a whole response) or another error's name."""

    def __init__(self, net, threads, limit_s):
        self.net = net
        self.stop_at = time.monotonic() + limit_s
        self.stopping = threading.Event()
        self.records = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True)
                        for _ in range(threads)]
        for t in self.threads:
            t.start()

    def _one(self):
        t0 = time.monotonic()
        tc = None
        s = self.net.socket(self.net.client)
        try:
            s.settimeout(3)
            try:
                s.connect((VIP, 80))
            except ConnectionRefusedError:
                return (t0, None, time.monotonic(), "refused")
            tc = time.monotonic()
            s.sendall(b"GET / HTTP/1.1\r\nHost: app\r\n"
                      b"Connection: close\r\n\r\n")
            with s.makefile("rb") as f:
                r = read_response(f)
            out = "ok" if r is not None and r.status == 200 else (
                "dropped" if r is None else f"status {r.status}")
        except (ConnectionResetError, BrokenPipeError):
            out = "dropped"
        except Exception as e:  # noqa: BLE001 -- recorded and asserted on
            out = type(e).__name__
        finally:
            s.close()
        return (t0, tc, time.monotonic(), out)

    def _run(self):
        while not self.stopping.is_set() and time.monotonic() < self.stop_at:
            rec = self._one()
            with self.lock:
                self.records.append(rec)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(10)
        assert not any(t.is_alive() for t in self.threads)
        return list(self.records)


def test_kill_one_instance_loses_only_its_in_flight_requests(net, cluster):
    # 100 ms per request: each instance always holds several in flight.
    cluster.backend(["--profile", "fixed:100ms"])
    lb1, lb2 = cluster.instances(f"{BACKENDS}:{BACKEND_PORT}")
    threads = 12
    load = Load(net, threads, limit_s=15)
    try:
        time.sleep(1.0)  # the load's first phase, both instances up
        t_kill = time.monotonic()
        os.kill(lb1.pid, signal.SIGKILL)
        lb1.wait(5)
        t_dead = time.monotonic()  # reaped: its sockets are closed
        time.sleep(1.0)  # the rule still sends every other connection there
        t_update = time.monotonic()
        net.set_members([1])  # what a controller does: drop the dead one
        t_updated = time.monotonic()
        time.sleep(1.0)
    finally:
        recs = load.stop()
    assert lb2.poll() is None

    outcomes = {o for *_, o in recs}
    assert outcomes <= {"ok", "refused", "dropped"}, outcomes
    before = [r for r in recs if r[2] < t_kill]
    assert len(before) >= 50 and all(o == "ok" for *_, o in before)

    # In flight at the kill: one request per client thread.  Connections
    # alternate between the instances, so about half were on lb1: those,
    # and only those, are lost (lb2's in-flight requests all finish).
    at_kill = [r for r in recs if r[0] < t_kill < r[2]]
    dropped = [r for r in recs if r[3] == "dropped"]
    assert len(at_kill) >= threads - 2
    # A connect begun after lb1 was reaped meets no listener there: it is
    # refused, never dropped.  (When connect() returned is no witness: the
    # kernel may finish the handshake into lb1's queue before the kill and
    # the client thread note it after the reap, on a loaded machine; and a
    # connect begun between the kill and the reap may be reset by the
    # closing listener, never having connected.)
    late = [(round(r[0] - t_kill, 3), r[1] and round(r[1] - t_kill, 3),
             round(r[2] - t_kill, 3)) for r in dropped if r[0] >= t_dead]
    assert not late, ("a connection begun after lb1 died was dropped "
                      "(start, connected, end after the kill; reaped at "
                      f"{t_dead - t_kill:.3f})", late)
    lost = [r for r in dropped if r[1] is not None]  # requests, not connects
    assert len(at_kill) / 4 <= len(lost) <= 3 * len(at_kill) / 4, (
        len(lost), len(at_kill))

    # Until the rule changes, every other new connection is DNATed to the
    # dead instance's address, where nothing listens: refused at once.
    window = [r for r in recs if t_dead < r[0] and r[2] < t_update]
    refused = [r for r in window if r[3] == "refused"]
    assert len(window) >= 20
    assert 0.3 <= len(refused) / len(window) <= 0.7, (len(refused),
                                                      len(window))
    assert all(t_kill <= r[0] < t_updated
               for r in recs if r[3] == "refused")

    # Once the dead instance is out of the map, nothing fails.
    after = [r for r in recs if r[0] > t_updated]
    assert len(after) >= 50 and all(o == "ok" for *_, o in after)


def test_planned_removal_out_of_the_map_then_sigterm_loses_nothing(
        net, cluster):
    # The orderly way out: the controller drops the instance from the map
    # (tracked connections stay pinned to it), then SIGTERM lets it finish
    # what it holds (drain_ms) while new connections go to the other.
    cluster.backend(["--profile", "fixed:100ms"])
    lb1, lb2 = cluster.instances(f"{BACKENDS}:{BACKEND_PORT}")
    load = Load(net, 12, limit_s=15)
    try:
        time.sleep(1.0)
        t_update = time.monotonic()
        net.set_members([1])
        time.sleep(0.2)  # a connection DNATed just before is accepted by now
        lb1.send_signal(signal.SIGTERM)
        assert lb1.wait(5) == 0
        t_gone = time.monotonic()
        time.sleep(1.0)
    finally:
        recs = load.stop()
    assert lb2.poll() is None
    # lb1 held requests when it was told to go: they finished, as did all
    # others, before and after.
    assert sum(r[0] < t_update < r[2] for r in recs) >= 10
    assert len([r for r in recs if r[0] > t_gone]) >= 50
    bad = [r for r in recs if r[3] != "ok"]
    assert not bad, bad[:5]

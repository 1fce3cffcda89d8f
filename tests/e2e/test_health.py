"""Active health checks through the real ./lbproxy: a backend whose /health
fails is marked down and gets no traffic even though it serves requests
fine, comes back when its /health recovers, and the admin API says so;
refused, hung and garbage-answering backends are marked down without any
traffic; 2xx and 3xx pass; checks survive a reload and leak no sockets."""
import signal

import pytest

from balancing_util import (Blackhole, admin_backends, backend_stats,
                            seq_ids, stack)
from lbtest import fd_count, free_port, wait_until
from rawbackend import RawBackend

INTERVAL = 100  # ms, the smallest allowed: fall/rise take ~2 intervals
HC = ("health.check_path=/health", f"health.check_interval_ms={INTERVAL}")


def health_of(px, bid):
    return admin_backends(px.admin)[bid]


def wait_health(px, bid, want, timeout=5.0):
    return wait_until(lambda: health_of(px, bid)["health"] == want
                      and health_of(px, bid), timeout=timeout,
                      what=f"backend {bid} {want}")


def test_failing_health_means_no_traffic_until_it_recovers(procs):
    """A backend whose /health answers 503 is marked down by the checks and
    gets no requests although its normal answers are fine; restarted with a
    healthy /health on the same port, it is marked up and gets its
    round-robin share again."""
    bes, px = stack(procs, [("A", []), ("B", ["--fail-health"])],
                    sets=HC, admin=True)
    a, b = bes
    st = wait_health(px, "B", "down")
    assert st["reason"] == "health check failed", st
    assert health_of(px, "A")["health"] == "up"
    before = backend_stats(b.port)["requests"]
    ids = seq_ids(px.port, 60)
    assert all(i == "A" and s == 200 for i, s in ids), ids
    after = backend_stats(b.port)
    assert after["requests"] == before, after
    assert after["health_checks"] >= 2, after

    procs.stop(b)
    b2 = procs.backend(port=b.port, bid="B")
    wait_health(px, "B", "up")
    assert health_of(px, "B")["reason"] == ""
    ids = seq_ids(px.port, 40)
    assert all(s == 200 for _, s in ids)
    assert sum(1 for i, _ in ids if i == "B") == 20, ids
    assert backend_stats(b2.port)["requests"] == 20


def test_checks_run_without_traffic(procs):
    """Checks are independent of traffic: with no request at all, a
    refused port and a hung one (handshake completes, no answer: the
    check's deadline) are marked down, a healthy backend stays up."""
    hole = Blackhole()
    try:
        dead = free_port()
        bes, px = stack(procs, [("A", [])], sets=HC, admin=True, extra=[
            "--backend", f"127.0.0.1:{dead},id=DEAD",
            "--backend", f"127.0.0.1:{hole.port},id=HUNG"])
        wait_health(px, "DEAD", "down")
        wait_health(px, "HUNG", "down")
        wait_until(lambda: backend_stats(bes[0].port)["health_checks"] >= 4,
                   what="4 checks of A")
        st = admin_backends(px.admin)
        assert st["A"]["health"] == "up", st
        assert st["A"]["requests"] == 0, st
    finally:
        hole.close()


# (answer to GET /health, expected health)
ANSWERS = [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "up"),
    (b"HTTP/1.0 204 No Content\r\n\r\n", "up"),
    (b"HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n", "up"),
    (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "down"),
    (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
     "down"),
    (b"HTTP/1.1 2000 OK\r\n\r\n", "down"),
    (b"HTTP/2 200\r\n\r\n", "down"),
    (b"garbage\r\n\r\n", "down"),
    (b"HTTP/1.1 200 OK" + b"x" * 400, "down"),  # no end of status line
    (None, "down"),  # closed without an answer
]


@pytest.mark.parametrize("answer,want", ANSWERS,
                         ids=[str(i) for i in range(len(ANSWERS))])
def test_status_line_verdict(procs, answer, want):
    """Only a well-formed HTTP/1.x status line with a 2xx or 3xx code
    passes; errors, garbage, an endless status line or a close without an
    answer fail, and a passing backend stays up over several checks."""
    seen = []

    def respond(conn_no, req_no, head, body):
        seen.append(head)
        return answer

    rb = RawBackend(respond)
    try:
        _, px = stack(procs, [("A", [])], sets=HC, admin=True,
                      extra=["--backend", f"127.0.0.1:{rb.port},id=R"])
        if want == "down":
            wait_health(px, "R", "down")
        else:
            wait_until(lambda: len(seen) >= 5, what="5 checks")
            assert health_of(px, "R")["health"] == "up"
        head = seen[0] + "\r\n"
        assert head.startswith("GET /health HTTP/1.1\r\n"), head
        assert f"\r\nHost: 127.0.0.1:{rb.port}" in head, head
        assert "\r\nConnection: close" in head, head
    finally:
        rb.close()


def test_checks_follow_reload_and_leak_no_sockets(procs):
    """After a reload (SIGHUP) the new generation is checked too (the
    failing backend is down again in it), and many checks of a refused and
    a hung backend leave the proxy's open descriptors unchanged."""
    hole = Blackhole()
    try:
        dead = free_port()
        bes, px = stack(procs, [("A", []), ("B", ["--fail-health"])],
                        sets=HC, admin=True, extra=[
                            "--backend", f"127.0.0.1:{dead},id=DEAD",
                            "--backend", f"127.0.0.1:{hole.port},id=HUNG"])
        for bid in ("B", "DEAD", "HUNG"):
            wait_health(px, bid, "down")
        fds = fd_count(px.pid)
        n0 = backend_stats(bes[1].port)["health_checks"]
        px.send_signal(signal.SIGHUP)
        # The new generation starts with every backend up, and its checks
        # mark B down again.
        wait_until(lambda: backend_stats(bes[1].port)["health_checks"]
                   >= n0 + 20, what="20 more checks of B")
        st = admin_backends(px.admin)
        assert st["B"]["health"] == "down", st
        assert st["DEAD"]["health"] == "down", st
        assert st["HUNG"]["health"] == "down", st
        ids = seq_ids(px.port, 10)
        assert all(i == "A" and s == 200 for i, s in ids), ids
        # At most one check socket per backend may be open when counting;
        # a leak would add one per check (20 or more here).
        assert fd_count(px.pid) <= fds + 3, (fds, fd_count(px.pid))
        assert px.poll() is None
    finally:
        hole.close()

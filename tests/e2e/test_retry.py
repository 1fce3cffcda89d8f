"""Retries, end to end: a real ./lbproxy in front of raw backends.  What
`[retry] on` names is retried on another backend and nothing else: a 5xx
passes through unless `5xx` is named, and then only for idempotent requests
with another backend left; the retry budget bounds extra attempts (a budget
of nothing turns a dead backend's connect failures into 502s), and
/api/stats and /metrics count what it did."""

import pytest

from httpc import Conn
from lbtest import free_port, http_json, http_text
from rawbackend import RawBackend, ok


def fail500(conn_no, req_no, head, body):
    return (b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\n"
            b"oops")


def good(conn_no, req_no, head, body):
    return ok(b"good")


def statuses(port, n, method="GET", body=b""):
    out = []
    for _ in range(n):
        with Conn(port, timeout=5) as c:
            r = c.request(method=method, path="/", body=body)
            out.append(r.status)
    return out


def stats(admin):
    return http_json(admin)["total"]


def metrics(admin):
    return http_text(admin, "/metrics")


def start(procs, ports, extra=()):
    """lbproxy round-robin, passive health off (a failing backend stays in
    the rotation, so every test meets it as often as round-robin says)."""
    admin = free_port()
    px = procs.proxy(ports, admin=admin,
                     extra=["--mode", "round-robin", "--persistent",
                            "--set", "health.max_fails=0", *extra])
    return px, admin


def test_5xx_passes_through_by_default(procs):
    a, b = RawBackend(fail500), RawBackend(good)
    try:
        px, admin = start(procs, [a.port, b.port])
        got = statuses(px.port, 20)
        assert got.count(500) == 10 and got.count(200) == 10, got
        assert stats(admin)["retries_5xx"] == 0
    finally:
        a.close()
        b.close()


def test_retry_on_5xx_for_idempotent_requests(procs):
    a, b = RawBackend(fail500), RawBackend(good)
    try:
        px, admin = start(procs, [a.port, b.port],
                          ["--set", "retry.on=connect,reset,timeout,5xx"])
        assert statuses(px.port, 20) == [200] * 20
        t = stats(admin)
        hits = len(a.heads)  # each answered 500, each retried on b
        assert hits >= 5, hits
        assert t["retries_5xx"] == hits and t["retries"] == hits, t
        assert f'lbproxy_retries_total{{reason="5xx"}} {hits}' in metrics(admin)
        # the failing backend's own counters show each 500 it answered
        # (the client saw none: the total's errors stay 0)
        full = http_json(admin)
        errs = full["backends"][0]["errors"]
        assert errs["total"] == hits and errs["http_5xx"] == hits, errs
        assert full["total"]["errors"] == 0, full["total"]
        # a POST is not retried: its 500 reaches the client
        before = len(a.heads)
        got = statuses(px.port, 6, method="POST", body=b"x")
        assert got.count(500) == len(a.heads) - before > 0, got
    finally:
        a.close()
        b.close()


def test_5xx_is_the_answer_when_no_backend_is_left(procs):
    a = RawBackend(fail500)
    try:
        px, admin = start(procs, [a.port],
                          ["--set", "retry.on=5xx"])
        with Conn(px.port, timeout=5) as c:
            r = c.request(path="/")
            assert (r.status, r.body) == (500, b"oops")
        assert stats(admin)["retries_5xx"] == 0
    finally:
        a.close()


def test_a_budget_of_nothing_retries_nothing(procs):
    dead = free_port()  # nothing listens: connect refused
    b = RawBackend(good)
    try:
        px, admin = start(procs, [dead, b.port],
                          ["--set", "retry.budget_percent=0",
                           "--set", "retry.budget_min=0"])
        got = statuses(px.port, 10)
        assert got.count(502) == 5 and got.count(200) == 5, got
        t = stats(admin)
        assert t["retry_budget_refused"] == 5 and t["retries"] == 0, t
        assert "lbproxy_retry_budget_refused_total 5" in metrics(admin)
    finally:
        b.close()


def test_default_budget_retries_connect_failures(procs):
    dead = free_port()
    b = RawBackend(good)
    try:
        px, admin = start(procs, [dead, b.port])
        assert statuses(px.port, 10) == [200] * 10
        t = stats(admin)
        assert t["retries"] == 5 and t["retry_budget_refused"] == 0, t
    finally:
        b.close()


def test_retry_on_none_answers_connect_failures(procs):
    dead = free_port()
    b = RawBackend(good)
    try:
        px, admin = start(procs, [dead, b.port],
                          ["--set", "retry.on=none"])
        got = statuses(px.port, 10)
        assert got.count(502) == 5 and got.count(200) == 5, got
    finally:
        b.close()


@pytest.mark.parametrize("hedge", ["true", "false"])
def test_a_frozen_backend_costs_a_request_one_per_try_deadline(procs, hedge):
    """A backend that stops answering (SIGSTOP) holds a request no longer
    than its per-try deadline: a hedge goes to another backend and its
    answer wins (with `hedge = false` the attempt is cancelled and the
    request sent there), within the retry budget."""
    import os
    import signal
    import time
    a = procs.backend(bid="A", extra=["--profile", "fixed:1ms"])
    b = procs.backend(bid="B", extra=["--profile", "fixed:1ms"])
    px, admin = start(procs, [a.port, b.port],
                      extra=["--set", f"retry.hedge={hedge}"])
    with Conn(px.port, timeout=5) as c:
        for _ in range(40):  # both backends get a latency tail
            assert c.request(path="/").status == 200
        os.kill(b.pid, signal.SIGSTOP)
        try:
            worst = 0.0
            for _ in range(20):
                t0 = time.monotonic()
                r = c.request(path="/")
                worst = max(worst, time.monotonic() - t0)
                assert r.status == 200
        finally:
            os.kill(b.pid, signal.SIGCONT)
    # per_try_min_ms is 50: well under a second, never upstream_ms (30 s)
    assert worst < 0.5, worst
    total = stats(admin)
    if hedge == "true":
        assert total["hedges"] >= 1 and total["hedge_wins"] >= 1, total
        assert total["per_try_retries"] == 0
    else:
        assert total["per_try_retries"] >= 1 and total["hedges"] == 0, total


def test_per_try_deadline_never_turns_a_slow_answer_into_an_error(procs):
    """With no other backend left, an attempt past its per-try deadline goes
    on: the slow answer arrives, not a 504."""
    import time

    def respond(conn_no, req_no, head, body):
        if " /slow " in head.split("\r\n", 1)[0]:
            time.sleep(0.4)  # far past 4 x the tail of ~0 ms answers
        return ok(b"late" if "/slow" in head else b"fast")

    be = RawBackend(respond)
    try:
        px, admin = start(procs, [be.port])
        with Conn(px.port, timeout=5) as c:
            for _ in range(20):
                assert c.request(path="/").body == b"fast"
            r = c.request(path="/slow")
            assert (r.status, r.body) == (200, b"late")
        assert stats(admin)["per_try_retries"] == 0
    finally:
        be.close()


def slow_on(path_delay, tag):
    """A backend answering `tag` at once, and `tag-slow` after the delay
    for /slow (a request past its per-try deadline: 50 ms at the least)."""
    import time

    def respond(conn_no, req_no, head, body):
        if " /slow " in head.split("\r\n", 1)[0]:
            time.sleep(path_delay)
            return ok(tag + b"-slow")
        return ok(tag)
    return respond


def csv_rows(path, want, timeout=5.0):
    """The CSV log's rows once `want` of them are written (1-s flushes)."""
    import csv
    import time
    deadline = time.monotonic() + timeout
    rows = []
    while time.monotonic() < deadline:
        try:
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
        except FileNotFoundError:
            rows = []
        if len(rows) >= want:
            break
        time.sleep(0.1)
    return rows


def test_the_first_answer_wins_and_the_loser_is_never_pooled(procs, tmp_path):
    """A request past its per-try deadline gets a hedge at the other
    backend; whichever head comes first is relayed (A's, 0.3 s, against
    B's 1.5 s), the other attempt's connection is closed, so B's late
    answer never becomes a later request's response; the CSV log says
    how the hedge ended."""
    import time
    a = RawBackend(slow_on(0.3, b"A"))
    b = RawBackend(slow_on(1.5, b"B"))
    log = tmp_path / "req.csv"
    try:
        px, admin = start(procs, [a.port, b.port],
                          ["--log", str(log), "--set", "proxy.log_flush_ms=50"])
        with Conn(px.port, timeout=5) as c:
            for _ in range(20):
                assert c.request(path="/").status == 200
            t0 = time.monotonic()
            r = c.request(path="/slow")
            took = time.monotonic() - t0
            assert (r.status, r.body) == (200, b"A-slow"), r.body
            assert took < 1.0, took
            end = time.monotonic() + 2.0  # past B's late answer
            n = 0
            while time.monotonic() < end and n < 200:
                r = c.request(path="/")
                assert r.status == 200 and r.body in (b"A", b"B"), r.body
                n += 1
                time.sleep(0.01)
        t = stats(admin)
        assert t["hedges"] == 1 and t["retries"] == 1, t
        rows = csv_rows(log, 21 + n)
        slow = [row for row in rows if row["path"] == "/slow"]
        assert len(slow) == 1, rows[-3:]
        assert slow[0]["hedge"] == ("won" if t["hedge_wins"] else "lost")
        assert slow[0]["retries"] == "1"
        assert {row["hedge"] for row in rows if row["path"] == "/"} == \
            {"none"}
        assert "lbproxy_hedges_total 1" in metrics(admin)
    finally:
        a.close()
        b.close()


def test_a_request_that_is_not_idempotent_is_never_hedged(procs):
    """A POST waits on its one backend until upstream_ms: 504, no hedge."""
    import time

    def respond(conn_no, req_no, head, body):
        if head.startswith("POST"):
            time.sleep(1.5)
        return ok(b"x")
    a, b = RawBackend(respond), RawBackend(respond)
    try:
        px, admin = start(procs, [a.port, b.port],
                          ["--set", "timeouts.upstream_ms=600"])
        with Conn(px.port, timeout=5) as c:
            for _ in range(10):
                assert c.request(path="/").status == 200
            t0 = time.monotonic()
            r = c.request(method="POST", path="/", body=b"data")
            assert r.status == 504 and time.monotonic() - t0 >= 0.5
        t = stats(admin)
        assert t["hedges"] == 0 and t["retries"] == 0, t
    finally:
        a.close()
        b.close()


def test_a_budget_of_nothing_hedges_nothing(procs):
    """With no room in the retry budget the first attempt goes on alone
    and its slow answer is the one relayed."""
    a, b = RawBackend(slow_on(0.3, b"A")), RawBackend(slow_on(0.3, b"B"))
    try:
        px, admin = start(procs, [a.port, b.port],
                          ["--set", "retry.budget_percent=0",
                           "--set", "retry.budget_min=0"])
        with Conn(px.port, timeout=5) as c:
            for _ in range(20):
                assert c.request(path="/").status == 200
            r = c.request(path="/slow")
            assert r.status == 200 and r.body.endswith(b"-slow")
        t = stats(admin)
        assert t["hedges"] == 0 and t["retries"] == 0, t
    finally:
        a.close()
        b.close()


def test_a_hedge_that_cannot_connect_leaves_the_first_attempt(procs):
    """The hedge's backend refuses the connect: the hedge fails, the first
    attempt's answer arrives, the dead backend's error is counted."""
    dead = free_port()  # nothing listens
    a = RawBackend(slow_on(0.4, b"A"))
    try:
        px, admin = start(procs, [a.port, dead])
        with Conn(px.port, timeout=5) as c:
            for _ in range(20):
                assert c.request(path="/").status == 200
            r = c.request(path="/slow")
            assert (r.status, r.body) == (200, b"A-slow")
        t = stats(admin)
        assert t["hedge_wins"] == 0, t
    finally:
        a.close()

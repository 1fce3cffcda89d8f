"""Circuit breaking with a queue, end to end: with max_conns per backend,
lbproxy never has more requests in flight on a backend than the limit
(counted by the backend itself); requests beyond it wait in a FIFO queue
and go out as slots free; past max_queue, or after queue_timeout_ms, the
client gets a 503 with Retry-After; nothing else is lost; /api/stats
shows the queue."""
import json
import threading
import time
import urllib.request

from httpc import Conn
from lbtest import free_port
from rawbackend import RawBackend, ok


class SlowCounting(RawBackend):
    """Answers after `delay` seconds and records the most requests it held
    at once."""

    def __init__(self, delay):
        self.delay = delay
        self.now = 0
        self.most = 0
        self.count_lock = threading.Lock()
        super().__init__(self.answer)

    def answer(self, conn_no, req_no, head, body):
        with self.count_lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(self.delay)
        with self.count_lock:
            self.now -= 1
        return ok(b"done")


def burst(port, n, timeout=10):
    """n concurrent GETs; returns [(status, retry_after, seconds)]."""
    out = [None] * n

    def one(i):
        t0 = time.monotonic()
        try:
            with Conn(port, timeout=timeout) as c:
                r = c.request(path=f"/{i}")
                out[i] = (r.status, r.header("retry-after"),
                          time.monotonic() - t0)
        except OSError as e:
            out[i] = (repr(e), None, time.monotonic() - t0)

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
        time.sleep(0.01)  # arrive in order
    for t in ts:
        t.join(timeout + 5)
    return out


def api(admin):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/api/stats",
                                timeout=5) as r:
        return json.loads(r.read())["total"]


def start(procs, be, sets):
    admin = free_port()
    args = ["--mode", "least-conn", "--persistent"]
    for s in sets:
        args += ["--set", s]
    return procs.proxy([b.port for b in be], admin=admin, extra=args), admin


def test_max_conns_caps_in_flight_and_the_queue_holds_the_rest(procs):
    be = SlowCounting(0.3)
    try:
        px, admin = start(procs, [be], ["limits.max_conns=2",
                                        "limits.max_queue=3"])
        got = burst(px.port, 8)
        statuses = [g[0] for g in got]
        assert statuses.count(200) == 5, got  # 2 in flight + 3 queued
        assert statuses.count(503) == 3, got
        assert all(g[1] == "1" for g in got if g[0] == 503), got
        assert be.most == 2, be.most
        q = api(admin)["queue"]
        assert q["total"] == 3 and q["full"] == 3 and q["length"] == 0, q
        assert q["wait_ms"] > 0
    finally:
        be.close()


def test_queue_timeout_answers_503(procs):
    be = SlowCounting(1.5)
    try:
        px, admin = start(procs, [be], ["limits.max_conns=1",
                                        "limits.queue_timeout_ms=300"])
        got = burst(px.port, 2)
        assert got[0][0] == 200, got
        status, retry_after, secs = got[1]
        assert (status, retry_after) == (503, "1"), got
        assert secs < 1.2, got  # answered at the queue timeout, not later
        assert api(admin)["queue"]["timeouts"] == 1
        assert be.most == 1
    finally:
        be.close()


def test_a_full_backend_sends_requests_to_the_others(procs):
    slow, fast = SlowCounting(0.5), SlowCounting(0.0)
    try:
        px, admin = start(procs, [slow, fast], ["limits.max_conns=1"])
        got = burst(px.port, 6)
        assert [g[0] for g in got] == [200] * 6, got
        assert slow.most == 1 and fast.most == 1
    finally:
        slow.close()
        fast.close()

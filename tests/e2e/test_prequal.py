"""mode = prequal through the real ./lbproxy and three ./lbbackend: the
probes reach the backends (counted at the emulators' /stats) at no more
than prequal_max_probe_rate, also while idle; a slow backend (a latency
profile) gets a smaller share than the fast ones; a backend without the
probe endpoint (--no-probe: 404) still serves its share, stood in for by
lbproxy's own view, and is not probed again at once; the probe counters
show in /api/stats and /metrics.

Bounds are wide on purpose (2-core noisy machine): the rate bound is a
token bucket, so the count is bounded by rate x time since the start plus
its burst, whatever the load."""
import time

from balancing_util import admin_backends, backend_stats, count, load, stack
from lbtest import http_text, wait_until

RATE = 200  # probes per second, the bound the tests set
BURST = RATE // 20 + 1  # the bucket's 50-ms burst, and its first token


def probes_at(bes):
    return {b.id: backend_stats(b.port)["probes"] for b in bes}


def prequal(procs, specs, rate=RATE):
    t0 = time.monotonic()
    bes, px = stack(procs, specs, mode="prequal", admin=True,
                    sets=(f"balancer.prequal_max_probe_rate={rate}",))
    for b, spec in zip(bes, specs):
        b.id = spec[0]
    return t0, bes, px


def test_probes_bounded_and_the_slow_backend_gets_less(procs):
    """Under 8 closed-loop clients for 3 s, the backends see probes (each
    of them), at most RATE per second since lbproxy started in all; C,
    40 ms where A and B take 2 ms, gets well under half the share of
    either."""
    t0, bes, px = prequal(procs, [
        ("A", ["--profile", "fixed:2ms", "--workers", "4"]),
        ("B", ["--profile", "fixed:2ms", "--workers", "4"]),
        ("C", ["--profile", "fixed:40ms", "--workers", "4"]),
    ])
    rows = load(px.port, clients=8, seconds=3.0)
    assert rows and all(s == 200 for _, _, s in rows)
    seen = probes_at(bes)
    elapsed = time.monotonic() - t0
    per = {b: count(rows, b) for b in "ABC"}
    assert per["C"] < 0.5 * min(per["A"], per["B"]), per
    assert all(n > 0 for n in seen.values()), seen
    assert sum(seen.values()) <= RATE * elapsed + BURST, (seen, elapsed)
    # Probes per request stay far below r_probe = 3: the bound holds them.
    assert sum(seen.values()) < len(rows), (seen, len(rows))
    # lbproxy counts what it sent: at least what arrived.
    adm = admin_backends(px.admin)
    sent = sum(adm[b]["probes"]["sent"] for b in "ABC")
    assert sent >= sum(seen.values()), (adm, seen)
    assert all(adm[b]["probes"]["fallback"] == 0 for b in "ABC"), adm
    assert adm["C"]["score"] > adm["A"]["score"], adm
    metrics = http_text(px.admin, "/metrics")
    assert 'lbproxy_backend_probes_total{backend="A",result="sent"}' \
        in metrics


def test_idle_probes_keep_coming(procs):
    """Without any request the pool is refreshed by the idle probe: one
    every 100 ms (prequal_idle_probe_ms), about 10 per second in all."""
    _, bes, px = prequal(procs, [("A", []), ("B", []), ("C", [])])
    first = sum(probes_at(bes).values())
    time.sleep(1.5)
    got = sum(probes_at(bes).values()) - first
    assert 5 <= got <= 40, got


def test_backend_without_the_probe_endpoint_still_serves(procs):
    """B answers its probe with 404 (--no-probe): it is probed once, not
    again within the 10-s retry, and still gets a fair part of the
    traffic, chosen on lbproxy's own view of it; no request fails."""
    _, bes, px = prequal(procs, [
        ("A", ["--profile", "fixed:2ms", "--workers", "4"]),
        ("B", ["--profile", "fixed:2ms", "--workers", "4", "--no-probe"]),
    ])
    wait_until(lambda: probes_at(bes)["B"] >= 1, timeout=5,
               what="B probed once")
    rows = load(px.port, clients=6, seconds=2.0)
    assert rows and all(s == 200 for _, _, s in rows)
    per = {b: count(rows, b) for b in "AB"}
    assert per["B"] > 0.15 * len(rows), per
    seen = probes_at(bes)
    assert seen["B"] <= 2, seen  # the first one, maybe a retry at 10 s
    assert seen["A"] > 0, seen
    adm = admin_backends(px.admin)
    assert adm["B"]["probes"]["fallback"] > 0, adm
    assert adm["A"]["probes"]["fallback"] == 0, adm
    assert backend_stats(bes[1].port)["requests"] == per["B"]

#!/usr/bin/python3
"""drain: a backend drained through the runtime API under load
(`make drain`).

    scripts/bench/drain.py                     3 rounds, the default mode
    scripts/bench/drain.py -r 1 -d 6 --drain-at 2 --mode round-robin

Per round, fresh processes: three `lbbackend --profile fixed:20ms`
backends (CPU 1; 20 ms per request, so with 100 connections about 100
requests are always in flight in all), lbproxy (CPU 0) with the runtime
API on (a bearer token in a file of the run directory), and `wrk -t1 -c100`
(CPU 1) through it for --duration seconds.  At --drain-at seconds (or
as soon after, within 2 s, as B has a request in flight) the script
sends `PATCH /api/pools/default/backends/B {"state":"drain"}` with the
token, after one with a wrong token and one with none (each must get
401 and change nothing), then polls /api/stats every 10 ms until B shows
`in_flight` 0 and `state` "drained".  It notes B's request count then, at
lbproxy (/api/stats) and at B itself (the emulator's /stats, health checks
not counted), and again after wrk ends.

Figures per round: wrk's requests and errors (connect, read, write,
timeout, status >= 400), B's in-flight at the moment of the drain, the
time until it was drained, the requests B was given after it was drained
(at lbproxy and at B), and what the two bad tokens changed.  The target
(issue 16): zero failed requests, B's in-flight falls to 0, then B gets
no new request, and a wrong or missing token changes nothing.

Writes results.csv and summary.md (printed too) into the run directory
logs/bench/drain-<time>/.  Everything it starts is stopped on exit, on
failure, on timeout and on Ctrl-C.
"""
import argparse
import csv
import json
import os
import statistics
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

sys.path.insert(0, os.path.join(bl.ROOT, "tests", "lib"))
from lbtest import admin_call, write_token  # noqa: E402

TOKEN = "drain-bench-token-0123456789abcdef"
FIELDS = ["round", "mode", "requests", "rps", "errors", "err_status",
          "in_flight_at_drain", "drain_ms", "b_after_drained_proxy",
          "b_after_drained_backend", "bad_token_statuses",
          "bad_token_changed", "b_requests_total"]


def api(port, method, path, body=None, token=TOKEN):
    """One admin call; returns (status, parsed JSON or None)."""
    st, _, doc = admin_call(port, method, path, body, token)
    return st, doc


def backend_b(admin):
    """B's entry in lbproxy's /api/stats."""
    _, doc = api(admin, "GET", "/api/stats", token=None)
    for b in doc["backends"]:
        if b["id"] == "B":
            return b
    raise RuntimeError("no backend B in /api/stats")


def served_by(port):
    """Requests the emulator served, health checks not counted."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats",
                                timeout=5) as r:
        s = json.loads(r.read())
    return s["requests"] - s["health_checks"]


def start_proxy(args, backends, d):
    """lbproxy with the runtime API on; returns (Proc, port, admin port)."""
    token = write_token(d, TOKEN)
    port, admin = bl.free_port(), bl.free_port()
    cmd = [bl.LBPROXY, "--listen", f"127.0.0.1:{port}", "--admin",
           f"127.0.0.1:{admin}", "--mode", args.mode, "--persistent",
           "--log", "off", "--set", f"proxy.admin_token_file={token}"]
    for bid, p, _ in backends:
        cmd += ["--backend", f"127.0.0.1:{p},id={bid}"]
    px = bl.Proc(cmd, bl.PROXY_CPU, os.path.join(d, "lbproxy.log"),
                 "lbproxy")
    if not (bl.wait_port(port, px) and bl.wait_port(admin, px)):
        px.stop()
        raise RuntimeError(f"lbproxy did not start: {px.tail()}")
    return px, port, admin


class Drainer(threading.Thread):
    """At t0 + at: the two bad calls, the drain, then polls until B is
    drained; records what it saw."""

    def __init__(self, admin, b_port, at, timeout):
        super().__init__(daemon=True)
        self.admin, self.b_port = admin, b_port
        self.at, self.timeout = at, timeout
        self.t0 = time.monotonic()
        self.res = {}
        self.error = None

    def run(self):
        try:
            self._run()
        except Exception as e:  # reported by the main thread
            self.error = e

    def _run(self):
        time.sleep(max(0.0, self.t0 + self.at - time.monotonic()))
        # drain B while it has requests in flight (an adaptive policy may
        # have none on it at a given moment): up to 2 s more
        until = time.monotonic() + 2.0
        while (backend_b(self.admin)["in_flight"] == 0
               and time.monotonic() < until):
            time.sleep(0.005)
        before = backend_b(self.admin)
        path = "/api/pools/default/backends/B"
        bad = [api(self.admin, "PATCH", path, {"state": "drain"},
                   token=t)[0] for t in ("wrong-" + TOKEN, None)]
        after_bad = backend_b(self.admin)
        self.res["bad_token_statuses"] = " ".join(map(str, bad))
        self.res["bad_token_changed"] = int(
            after_bad["admin_state"] != before["admin_state"]
            or after_bad["weight"] != before["weight"])
        self.res["in_flight_at_drain"] = after_bad["in_flight"]
        t = time.monotonic()
        st, _ = api(self.admin, "PATCH", path, {"state": "drain"})
        if st != 200:
            raise RuntimeError(f"drain answered {st}")
        while True:
            b = backend_b(self.admin)
            if b["in_flight"] == 0 and b["state"] == "drained":
                break
            if time.monotonic() - t > self.timeout:
                raise RuntimeError(f"B not drained after {self.timeout} s: "
                                   f"{b}")
            time.sleep(0.01)
        self.res["drain_ms"] = round((time.monotonic() - t) * 1000, 1)
        self.proxy_at_drained = b["requests"]
        self.backend_at_drained = served_by(self.b_port)


def one_round(args, k, scen, out):
    d = os.path.join(out, f"round{k}")
    os.makedirs(d, exist_ok=True)
    backends = bl.start_backends(scen, d)
    px = None
    try:
        px, port, admin = start_proxy(args, backends, d)
        b_port = [p for bid, p, _ in backends if bid == "B"][0]
        dr = Drainer(admin, b_port, args.drain_at, args.duration)
        dr.start()
        summ, _ = bl.run_wrk(port, scen, args.duration,
                             os.path.join(d, "wrk.txt"),
                             os.path.join(d, "wrk.json"))
        dr.join(timeout=args.duration + 10)
        if dr.error or dr.is_alive():
            raise RuntimeError(f"round {k}: {dr.error or 'drain hung'}")
        end_b = backend_b(admin)
        e = summ["errors"]
        row = dict(round=k, mode=args.mode, requests=summ["requests"],
                   rps=round(summ["requests"] * 1e6 / summ["duration_us"]),
                   errors=sum(e.values()), err_status=e["status"],
                   b_after_drained_proxy=end_b["requests"]
                   - dr.proxy_at_drained,
                   b_after_drained_backend=served_by(b_port)
                   - dr.backend_at_drained,
                   b_requests_total=end_b["requests"], **dr.res)
        if not px.poll() is None:
            raise RuntimeError("lbproxy exited during the run")
        return row
    finally:
        if px:
            px.stop()
        for _, _, p in backends:
            p.stop()


def summary(rows, args):
    met = all(r["errors"] == 0 and r["b_after_drained_proxy"] == 0
              and r["b_after_drained_backend"] == 0
              and r["bad_token_statuses"] == "401 401"
              and r["bad_token_changed"] == 0 for r in rows)
    lines = [f"drain: backend B drained under wrk -t1 -c{args.conns} "
             f"-d{args.duration}s at t = {args.drain_at} s, three "
             f"lbbackend --profile {args.profile}, lbproxy --mode "
             f"{args.mode} --persistent", "",
             "| round | requests | req/s | errors | B in flight at drain "
             "| drained after ms | B's requests after drained (lbproxy / B) "
             "| bad tokens | changed |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['round']} | {r['requests']} | {r['rps']} | {r['errors']} "
            f"| {r['in_flight_at_drain']} | {r['drain_ms']} "
            f"| {r['b_after_drained_proxy']} / "
            f"{r['b_after_drained_backend']} | {r['bad_token_statuses']} "
            f"| {r['bad_token_changed']} |")
    lines += ["", f"median drained after: "
              f"{statistics.median(r['drain_ms'] for r in rows)} ms",
              "target (zero failed requests, B's in-flight to 0, then no "
              "new request to B, bad tokens 401 and no change): "
              + ("met" if met else "NOT met")]
    return "\n".join(lines) + "\n", met


def main(argv):
    ap = argparse.ArgumentParser(description="drain a backend under load")
    ap.add_argument("-r", "--rounds", type=int,
                    default=int(os.environ.get("REPEAT", 3)))
    ap.add_argument("-d", "--duration", type=int,
                    default=int(os.environ.get("DURATION", 10)),
                    help="wrk's seconds per round (10)")
    ap.add_argument("--drain-at", type=float, default=4.0,
                    help="seconds into the run (4)")
    ap.add_argument("-c", "--conns", type=int, default=100)
    ap.add_argument("--mode", default="adaptive_ewma")
    ap.add_argument("--profile", default="fixed:20ms",
                    help="lbbackend --profile of all three (fixed:20ms)")
    ap.add_argument("--out", default=os.environ.get("OUT", ""))
    args = ap.parse_args(argv)
    if args.rounds < 1 or not 0 < args.drain_at < args.duration:
        ap.error("want --rounds >= 1 and 0 < --drain-at < --duration")
    out, _, scen = bl.tool_start("drain", args.out, "drain",
                                 args.rounds * (args.duration + 30) + 30)
    scen.backends = [(b, ["--profile", args.profile, "--quiet"])
                     for b in "ABC"]
    scen.connections = args.conns
    scen.timeout = f"{args.duration}s"
    rows = [one_round(args, k, scen, out) for k in range(1, args.rounds + 1)]
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    text, met = summary(rows, args)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text)
    print(text, end="")
    print(f"results: {out}")
    return 0 if met else 1


if __name__ == "__main__":
    bl.tool_main(main)

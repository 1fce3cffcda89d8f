#!/usr/bin/python3
"""openbench: balancing measured open-loop, at fixed offered rates (`make openbench`).

    scripts/bench/openbench.py                       capped, 50/80/95% of its bound
    OFFERED=0.8,0.95 SCENARIOS=capped CONFIGS=lb-ewma-p,haproxy-lc-reuse \\
        scripts/bench/openbench.py
    OFFERED=2000 SCENARIOS=hetero scripts/bench/openbench.py   (req/s)
    scripts/bench/openbench.py --check-mmk           the generator vs M/M/K

Closed-loop wrk (each connection sends its next request when the last
returns) trades throughput against tail latency and hides queueing delay.
Here each configuration gets the same offered load: Poisson arrivals at a
fixed rate from build/bench/openloop, enough keep-alive connections that
an arrival never waits for one (the `waited` column counts any that did),
latency from each request's intended send time.  OFFERED is a list of
fractions of the scenario's capacity bound (sum of workers / mean service
time over its backends, from their --profile and --workers) or, above 1,
requests/s; a scenario without a capacity bound (unlimited workers) runs
at the req/s in OFFERED or else at its own `open_rates`.  Per scenario,
offered load and configuration: fresh backends (CPU 1) and proxy (CPU 0),
one run of DURATION s (20; at least the scenario's min_duration, so hang's
freeze falls inside it) after WARMUP s (2).

Writes results.csv, summary.md (p50/p90/p99/p99.9, delivered rate,
waited, errors per row) and plots/openloop-<scenario>.png (p99 against
offered load, one line per configuration) into logs/bench/open-<time>/.

--check-mmk: one lbbackend with K = 8 workers of exp 5 ms (capacity
1600 req/s), offered 10% (calibration: what the path adds to the service
time) and then 95% of it; the queueing delay measured (mean at 95% minus
mean at 10%) against the Erlang C prediction for M/M/8.
"""
import argparse
import csv
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchconf as bc  # noqa: E402
import benchlib as bl  # noqa: E402
import benchreport as br  # noqa: E402

OPENLOOP = os.path.join(bl.ROOT, os.environ.get("OPENLOOP",
                                                "build/bench/openloop"))
DEFAULT_CONFIGS = ["lb-ewma-p", "lb-lc-p", "lb-p2c-p", "lb-prequal-p",
                   "haproxy-lc-reuse", "nginx-lc-ka"]
FIELDS = ["scenario", "config", "offered_frac", "offered_rps",
          "delivered_rps", "requests", "ok", "errors", "status_errors",
          "unfinished", "waited", "mean_ms", "p50_ms", "p90_ms", "p99_ms",
          "p999_ms", "max_ms", "send_lag_p99_ms", "proxy_cpu_us_per_req",
          "p99_floor_ms"]

UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def duration_ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * UNIT[m.group(2)]


def mean_service_ms(profile):
    """The mean of an lbbackend profile (fixed:, exp:, uniform:A-B, each
    with an optional +BASE); None for one this does not know."""
    kind, _, rest = profile.partition(":")
    rest, _, base = rest.partition("+")
    b = duration_ms(base) if base else 0.0
    if kind in ("fixed", "exp"):
        return duration_ms(rest) + b
    if kind == "uniform":
        lo, _, hi = rest.partition("-")
        return (duration_ms(lo) + duration_ms(hi)) / 2 + b
    return None


def backend_caps(scen):
    """Per backend: (its --profile, workers / mean service in req/s,
    whether a --phase changes the profile); None when a backend has no
    worker limit or an unknown profile."""
    caps = []
    for _, args in scen.backends:
        a = dict(zip(args[::2], args[1::2]))
        k = int(a.get("--workers", "0"))
        prof = a.get("--profile", "fixed:0ms")
        m = mean_service_ms(prof)
        if k <= 0 or not m:
            return None
        caps.append((prof, k * 1000.0 / m, "--phase" in args))
    return caps


def capacity(scen):
    """Sum over the backends of workers / mean service (req/s), or None
    when a backend has no worker limit or an unknown profile."""
    caps = backend_caps(scen)
    return sum(c for _, c, _ in caps) if caps is not None else None


def service_tail(profile, x_ms):
    """P(service time > x_ms) for an lbbackend profile (fixed:, exp:,
    uniform:A-B, each with an optional +BASE); None for one this does not
    know."""
    kind, _, rest = profile.partition(":")
    rest, _, base = rest.partition("+")
    x = x_ms - (duration_ms(base) if base else 0.0)
    if kind == "fixed":
        return 1.0 if x < duration_ms(rest) else 0.0
    if kind == "exp":
        return 1.0 if x <= 0 else math.exp(-x / duration_ms(rest))
    if kind == "uniform":
        lo, _, hi = rest.partition("-")
        lo, hi = duration_ms(lo), duration_ms(hi)
        if hi <= lo:
            return 1.0 if x < lo else 0.0
        return min(1.0, max(0.0, (hi - x) / (hi - lo)))
    return None


def tail_floor(scen, rate, q=0.99):
    """The lowest q-quantile of latency (ms) that any policy sending each
    request to one backend, once, could reach at `rate` req/s: no queueing
    and no path, only the backends' service times, with every backend
    filled up to its whole capacity in the order that leaves the fewest
    requests above x (the fractional-knapsack optimum of the mixture's
    tail at x; the minimum tail falls as x grows, so x is found by
    bisection).  Unreachable (a backend at 100% utilisation queues without
    bound), so a true lower bound; None without a capacity bound, for an
    unknown profile, a backend whose profile changes (--phase), or at or
    above capacity."""
    caps = backend_caps(scen)
    if caps is None or any(ph or service_tail(p, 0.0) is None
                           for p, _, ph in caps):
        return None
    caps = [(p, c) for p, c, _ in caps]
    if rate <= 0 or rate >= sum(c for _, c in caps):
        return None

    def best_tail(x):
        left, tail = rate, 0.0
        for t, c in sorted((service_tail(p, x), c) for p, c in caps):
            take = min(c, left)
            tail += take / rate * t
            left -= take
            if left <= 0:
                break
        return tail

    lo, hi = 0.0, 1.0
    while best_tail(hi) > 1 - q:
        hi *= 2
        if hi > 1e7:
            return None
    for _ in range(60):
        mid = (lo + hi) / 2
        if best_tail(mid) > 1 - q:
            lo = mid
        else:
            hi = mid
    return hi


def scenario_rates(scen, offered):
    """The (offered, req/s) pairs a scenario runs at: fractions of its
    capacity bound (and any req/s given), or, for a scenario without one,
    the req/s given or else its open_rates; None when there are none."""
    cap = capacity(scen)
    if cap is not None:
        return [(f, f * cap if f <= 1 else f) for f in offered]
    rates = [f for f in offered if f > 1] or scen.open_rates
    return [(r, r) for r in rates] or None


def openloop(port, rate, duration, warmup, conns, out_json, seed=1):
    cmd = ["taskset", "-c", bl.LOAD_CPU, OPENLOOP, "--target",
           f"127.0.0.1:{port}", "--rate", f"{rate:.3f}", "--duration",
           str(duration + warmup), "--warmup", str(warmup), "--conns",
           str(conns), "--seed", str(seed), "--out", out_json]
    r = subprocess.run(cmd, capture_output=True, text=True,
                       timeout=duration + warmup + 60)
    if r.returncode != 0:
        raise RuntimeError(f"openloop failed: {r.stderr.strip()}")
    with open(out_json) as f:
        return json.loads(f.readline())


def conns_for(rate, scen):
    """Connections enough that an arrival never waits: the rate times a
    generous latency bound (2 s), within 50..4000."""
    return max(50, min(4000, int(rate * 2.0)))


def one_run(scen, cfg, frac, rate, args, out):
    tag = f"-{scen.name}-{frac}"
    backends = bl.start_backends(scen, out, f"{tag}-{cfg.name}")
    proxy = None
    try:
        proxy = bl.start_proxy(cfg, backends, out, tag=tag)
        cpu0 = proxy.cpu()
        js = os.path.join(out, "openloop", f"{scen.name}-{cfg.name}-{frac}.json")
        os.makedirs(os.path.dirname(js), exist_ok=True)
        res = openloop(proxy.port, rate, max(args.duration,
                                             scen.min_duration),
                       args.warmup, conns_for(rate, scen), js)
        cpu = proxy.cpu() - cpu0
    finally:
        if proxy:
            proxy.stop()
        for _, _, p in backends:
            p.stop()
    row = {k: res.get(k, "") for k in FIELDS}
    row.update({"scenario": scen.name, "config": cfg.name,
                "offered_frac": frac, "offered_rps": f"{rate:.1f}"})
    done = res.get("ok", 0)
    row["proxy_cpu_us_per_req"] = (f"{cpu * 1e6 / done:.2f}"
                                   if done and cfg.kind != "direct" else "")
    floor = tail_floor(scen, rate)
    row["p99_floor_ms"] = f"{floor:.1f}" if floor is not None else ""
    return row


def plot(rows, scen_name, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for cfg in sorted({r["config"] for r in rows}):
        pts = sorted((float(r["offered_rps"]), float(r["p99_ms"]))
                     for r in rows if r["config"] == cfg)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                label=cfg)
    floors = sorted({(float(r["offered_rps"]), float(r["p99_floor_ms"]))
                     for r in rows if r.get("p99_floor_ms")})
    if floors:
        ax.plot([p[0] for p in floors], [p[1] for p in floors], "k--",
                label="floor: service times only, one try")
    ax.set_xlabel("offered load (req/s, Poisson arrivals)")
    ax.set_ylabel("p99 latency from intended send (ms)")
    ax.set_yscale("log")
    ax.set_title(f"{scen_name}: open-loop p99 against offered load")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    path = os.path.join(out, "plots", f"openloop-{scen_name}.png")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def table(rows):
    head = ["scenario", "offered", "config", "delivered req/s", "p50 ms",
            "p90 ms", "p99 ms", "p99.9 ms", "waited", "errors",
            "CPU us/req", "p99 floor ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        off = (f"{float(r['offered_frac']):.0%} ({float(r['offered_rps']):.0f}/s)"
               if float(r["offered_frac"]) <= 1 else f"{r['offered_rps']}/s")
        lines.append("| " + " | ".join([
            r["scenario"], off, r["config"], f"{float(r['delivered_rps']):.0f}",
            f"{float(r['p50_ms']):.1f}", f"{float(r['p90_ms']):.1f}",
            f"{float(r['p99_ms']):.1f}", f"{float(r['p999_ms']):.1f}",
            str(r["waited"]), str(int(r["errors"]) + int(r["unfinished"])),
            r["proxy_cpu_us_per_req"] or "—",
            r.get("p99_floor_ms") or "—"]) + " |")
    lines.append("\np99 floor: the lowest p99 any policy that sends each "
                 "request to one backend once could reach at that rate, "
                 "from the backends' service-time distributions alone "
                 "(no queueing, no path; openbench.tail_floor).")
    return "\n".join(lines) + "\n"


def erlang_c(c, a):
    """The probability that an arrival waits in M/M/c with offered load a
    (Erlang C)."""
    s = sum(a ** k / math.factorial(k) for k in range(c))
    top = a ** c / math.factorial(c) * c / (c - a)
    return top / (s + top)


def check_mmk(args, out):
    k, svc_ms = 8, 5.0
    cap = k * 1000.0 / svc_ms
    port = bl.free_port()
    p = bl.Proc([bl.LBBACKEND, "--port", str(port), "--id", "A", "--profile",
                 f"exp:{svc_ms:g}ms", "--workers", str(k), "--quiet"],
                bl.PROXY_CPU, os.path.join(out, "backend.log"), "backend")
    try:
        if not bl.wait_port(port, p):
            raise RuntimeError("lbbackend did not start")
        low = openloop(port, 0.1 * cap, args.duration, args.warmup, 200,
                       os.path.join(out, "mmk-10.json"))
        high = openloop(port, 0.95 * cap, args.duration, args.warmup, 2000,
                        os.path.join(out, "mmk-95.json"))
    finally:
        p.stop()
    lam, mu = 0.95 * cap, 1000.0 / svc_ms
    wq_ms = erlang_c(k, lam / mu) / (k * mu - lam) * 1000.0
    measured = high["mean_ms"] - low["mean_ms"]
    ratio = measured / wq_ms
    text = (f"M/M/{k}, exp {svc_ms:g} ms, capacity {cap:.0f} req/s, "
            f"{args.duration} s runs after {args.warmup} s.\n\n"
            f"| offered | mean ms | p99 ms | waited |\n|---|---|---|---|\n"
            f"| 10% ({0.1 * cap:.0f}/s) | {low['mean_ms']:.2f} | "
            f"{low['p99_ms']:.2f} | {low['waited']} |\n"
            f"| 95% ({lam:.0f}/s) | {high['mean_ms']:.2f} | "
            f"{high['p99_ms']:.2f} | {high['waited']} |\n\n"
            f"queueing delay: measured {measured:.2f} ms (mean at 95% minus "
            f"mean at 10%), Erlang C predicts {wq_ms:.2f} ms: ratio "
            f"{ratio:.2f} ({'within' if abs(ratio - 1) <= 0.2 else 'outside'}"
            f" 20%)\n")
    return text, abs(ratio - 1) <= 0.2


def main(argv):
    env = os.environ
    ap = argparse.ArgumentParser(description="open-loop balancing benchmark")
    ap.add_argument("--offered", default=env.get("OFFERED") or "0.5,0.8,0.95")
    ap.add_argument("--scenarios", default=env.get("SCENARIOS") or "capped")
    ap.add_argument("--configs", default=env.get("CONFIGS") or
                    ",".join(DEFAULT_CONFIGS))
    ap.add_argument("-d", "--duration", type=int,
                    default=int(env.get("DURATION") or 20))
    ap.add_argument("--warmup", type=int, default=int(env.get("WARMUP") or 2))
    ap.add_argument("--check-mmk", action="store_true")
    ap.add_argument("--out", default=env.get("OUT", ""))
    args = ap.parse_args(argv)
    if not os.access(OPENLOOP, os.X_OK):
        raise SystemExit(f"openbench: {OPENLOOP} is missing; run make")
    if not shutil.which("taskset"):
        raise SystemExit("openbench: taskset is missing")
    offered = [float(x) for x in args.offered.split(",") if x]
    names = bc.select_configs(args.configs)
    scens = []
    for s in args.scenarios.replace(",", " ").split():
        path = os.path.join(bl.ROOT, "config", "scenarios", s + ".ini")
        if not os.path.exists(path):
            raise SystemExit(f"openbench: no scenario {s}")
        scens.append(bc.Scenario.load(path))
    secs = 2 * (args.duration + args.warmup + 15) if args.check_mmk else sum(
        len(scenario_rates(sc, offered) or []) * len(names)
        * (max(args.duration, sc.min_duration) + args.warmup + 15)
        for sc in scens)
    out, _, _ = bl.tool_start("openbench", args.out, "open", secs + 60)
    br.write_facts(out, {"openbench": " ".join(argv) or "defaults"})
    t0 = time.monotonic()
    try:
        if args.check_mmk:
            text, ok = check_mmk(args, out)
            with open(os.path.join(out, "summary.md"), "w") as f:
                f.write(text)
            print(text, end="")
            return 0 if ok else 1
        rows, failed = [], 0
        for scen in scens:
            pairs = scenario_rates(scen, offered)
            if pairs is None:
                print(f"openbench: {scen.name} has no capacity bound and "
                      f"no open_rates: give OFFERED in req/s",
                      file=sys.stderr)
                failed += 1
                continue
            for frac, rate in pairs:
                for name in names:
                    try:
                        r = one_run(scen, bc.CONFIGS[name], frac, rate, args,
                                    out)
                    except (RuntimeError, OSError,
                            subprocess.TimeoutExpired) as e:
                        failed += 1
                        print(f"{scen.name} {frac} {name}: FAILED: {e}")
                        continue
                    rows.append(r)
                    print(f"{scen.name:8s} {rate:7.0f}/s {name:17s} "
                          f"p50 {float(r['p50_ms']):7.1f}  p99 "
                          f"{float(r['p99_ms']):7.1f} ms  delivered "
                          f"{float(r['delivered_rps']):6.0f}/s  waited "
                          f"{r['waited']}", flush=True)
    except bl.Timeout as e:
        print(f"openbench: timed out: {e}", file=sys.stderr)
        return 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        bl.Proc.stop_all()
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        w.writerows(rows)
    for scen in scens:
        plot([r for r in rows if r["scenario"] == scen.name], scen.name, out)
    br.write_summary(out, table(rows), t0, "summary.md, results.csv, plots/")
    return 1 if failed or not rows else 0


if __name__ == "__main__":
    bl.tool_main(main)

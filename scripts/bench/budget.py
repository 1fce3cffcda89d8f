#!/usr/bin/python3
"""budget: every backend slows down at once; what hedging costs (`make budget`).

    scripts/bench/budget.py                  1 round, the three variants
    scripts/bench/budget.py -r 3             3 rounds, medians

Per variant and round: three `lbbackend --profile exp:2ms` backends (CPU 1)
that all turn 10x slower (`--phase 5s:exp:20ms --phase 11s:exp:2ms`), lbproxy
adaptive_ewma persistent (CPU 0) with its CSV log, and `wrk -t1 -c100 -d16s`
(CPU 1).  A per-try deadline is a multiple of each backend's own latency
tail, so when every backend slows at once the first deadlines pass before
the tails catch up: that is when hedges could multiply the load, and the
retry budget (`[retry] budget_percent`, `budget_min`) is what stops them.

Variants, all lb-ewma-p:
  hedge      the defaults (hedges on a per-try deadline, within the budget)
  no-hedge   `retry.per_try_min_ms=0`: no per-try deadline, no hedge
  no-budget  `retry.budget_percent=100, retry.budget_min=1000000`: hedges
             with the budget out of the way (what the budget prevents)

Figures: requests/s over the run, p99 and max, and from the CSV log the
extra attempts (the retries column: hedges and retries) as a share of the
requests, over the whole run and within the slow phase.  The target: with
the budget, extra attempts <= 20% of requests and requests/s no worse than
no-hedge's.  Writes results.csv and summary.md into logs/bench/budget-<time>/.
"""
import argparse
import csv
import os
import shutil
import signal
import statistics
import sys
import time
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchconf as bc  # noqa: E402
import benchlib as bl  # noqa: E402
import benchreport as br  # noqa: E402

VARIANTS = {
    "hedge": [],
    "no-hedge": ["retry.per_try_min_ms=0"],
    "no-budget": ["retry.budget_percent=100", "retry.budget_min=1000000"],
}
TARGET_SHARE = 0.20
RUN_SLACK = 10


def log_figures(path, slow_from, slow_to):
    """(requests, extra attempts, hedges, hedge wins, requests in the slow
    phase, extra attempts in it) from an lbproxy CSV log; the phase is
    given in Unix seconds."""
    n = extra = hedges = wins = pn = pextra = 0
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                retries = int(row["retries"])
                t = datetime.fromisoformat(
                    row["timestamp"].replace("Z", "+00:00")).timestamp()
            except (KeyError, ValueError):
                continue
            n += 1
            extra += retries
            hedges += row.get("hedge", "none") != "none"
            wins += row.get("hedge") == "won"
            if slow_from <= t < slow_to:
                pn += 1
                pextra += retries
    return n, extra, hedges, wins, pn, pextra


def one_run(variant, k, args, scen, out):
    cfg = bc.Config(f"lb-ewma-p-{variant}", "lbproxy", "adaptive_ewma", True,
                    VARIANTS[variant])
    tag = f"-r{k}"
    t_backends = time.time()
    backends = bl.start_backends(scen, out, f"{tag}-{variant}")
    proxy = None
    log_csv = os.path.join(out, "proxies", cfg.name + tag, "requests.csv")
    os.makedirs(os.path.dirname(log_csv), exist_ok=True)
    try:
        proxy = bl.start_proxy(cfg, backends, out, log_csv=log_csv, tag=tag)
        be0 = sum(bl.tree_cpu_seconds(p.pid) for _, _, p in backends)
        px0 = proxy.cpu()
        raw = os.path.join(out, "wrk", f"{cfg.name}{tag}.txt")
        js = os.path.join(out, "wrk", f"{cfg.name}{tag}.json")
        start = time.time()
        summ, wrk_cpu = bl.run_wrk(proxy.port, scen, args.duration, raw, js)
        end = time.time()
        px_cpu = proxy.cpu() - px0
        be_cpu = sum(bl.tree_cpu_seconds(p.pid) for _, _, p in backends) - be0
    finally:
        if proxy:
            proxy.stop()  # flushes the CSV log
        for _, _, p in backends:
            p.stop()
    row = br.result_row(scen, cfg, k, start, end, summ, px_cpu, be_cpu,
                        wrk_cpu, out, raw, js, log_csv)
    n, extra, hedges, wins, pn, pextra = log_figures(
        log_csv, t_backends + args.slow_start,
        t_backends + args.slow_start + args.slow_len)
    row.update({"variant": variant, "log_requests": n, "extra": extra,
                "hedges": hedges, "hedge_wins": wins,
                "extra_share": f"{extra / n:.4f}" if n else "",
                "phase_requests": pn,
                "phase_extra_share": f"{pextra / pn:.4f}" if pn else ""})
    return row


def _med(rows, key):
    vals = [float(r[key]) for r in rows if r.get(key) not in ("", None)]
    return statistics.median(vals) if vals else None


def table(rows, args):
    head = ["variant", "req/s", "p99 ms", "max ms", "errors",
            "extra attempts / requests", "in the slow phase", "hedges",
            "hedge wins", "target"]
    lines = [
        f"wrk -t1 -c{args.conns} -d{args.duration}s, lbproxy adaptive_ewma "
        f"persistent, three `lbbackend --profile exp:2ms` all 10x slower "
        f"(exp:20ms) from t={args.slow_start:g} s for {args.slow_len:g} s; "
        f"{args.rounds} round(s), medians.  target (hedge): extra attempts "
        f"<= {TARGET_SHARE:.0%} of requests, req/s >= no-hedge's.",
        "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    base = _med([r for r in rows if r["variant"] == "no-hedge"], "rps")
    for v in VARIANTS:
        rs = [r for r in rows if r["variant"] == v]
        if not rs:
            lines.append(f"| {v} | " + " | ".join(["failed"] *
                                                   (len(head) - 1)) + " |")
            continue
        rps, share = _med(rs, "rps"), _med(rs, "extra_share")
        pshare = _med(rs, "phase_extra_share")
        verdict = "(reference)"
        if v == "hedge":
            missed = []
            if share is None or share > TARGET_SHARE or \
                    (pshare or 0) > TARGET_SHARE:
                missed.append("extra attempts")
            if base is not None and rps < base:
                missed.append("req/s")
            verdict = "met" if not missed else "missed: " + ", ".join(missed)
        lines.append("| " + " | ".join([
            v, f"{rps:.0f}", f"{_med(rs, 'p99_ms'):.1f}",
            f"{_med(rs, 'max_ms'):.0f}", f"{_med(rs, 'errors'):.0f}",
            f"{share:.1%}" if share is not None else "—",
            f"{pshare:.1%}" if pshare is not None else "—",
            f"{_med(rs, 'hedges'):.0f}", f"{_med(rs, 'hedge_wins'):.0f}",
            verdict]) + " |")
    return "\n".join(lines) + "\n"


def main(argv):
    env = os.environ
    ap = argparse.ArgumentParser(
        description="all backends 10x slower at once: hedges within budget")
    ap.add_argument("-d", "--duration", type=int,
                    default=int(env.get("DURATION") or 16))
    ap.add_argument("--slow-start", type=float, default=5.0)
    ap.add_argument("--slow-len", type=float, default=6.0)
    ap.add_argument("-r", "--rounds", type=int,
                    default=int(env.get("REPEAT") or 1))
    ap.add_argument("-c", "--conns", type=int, default=100)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--out", default=env.get("OUT", ""))
    args = ap.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        if v not in VARIANTS:
            ap.error(f"unknown variant {v!r}; known: {', '.join(VARIANTS)}")
    if min(args.duration, args.rounds, args.conns) < 1 or \
            args.slow_start + args.slow_len > args.duration:
        ap.error("positive --duration/--rounds/--conns; the slow phase "
                 "must end within --duration")
    for t in ("wrk", "taskset"):
        if not shutil.which(t):
            raise SystemExit(f"budget: {t} is missing")
    n_runs = len(variants) * args.rounds
    out, _, scen = bl.tool_start("budget", args.out, "budget",
                                 n_runs * (args.duration + RUN_SLACK) + 60)
    slow_ms = f"{args.slow_start * 1000:.0f}ms"
    back_ms = f"{(args.slow_start + args.slow_len) * 1000:.0f}ms"
    scen.backends = [(b, ["--profile", "exp:2ms", "--phase",
                          f"{slow_ms}:exp:20ms", "--phase",
                          f"{back_ms}:exp:2ms", "--quiet"]) for b in "ABC"]
    scen.connections = args.conns
    scen.timeout = f"{args.duration}s"
    br.write_facts(out, {"budget": " ".join(argv) or "defaults"})
    print(f"budget: {len(variants)} variant(s) x {args.rounds} round(s), "
          f"wrk -c{args.conns} -d{args.duration}s "
          f"(~{br.fmt_secs(n_runs * (args.duration + 2))})", flush=True)
    rows, failed = [], 0
    t0 = time.monotonic()
    try:
        for k in range(1, args.rounds + 1):
            for v in (variants if k % 2 else variants[::-1]):
                try:
                    r = one_run(v, k, args, scen, out)
                except (RuntimeError, OSError) as e:
                    failed += 1
                    print(f"round {k} {v:10s} FAILED: {e}", flush=True)
                    continue
                rows.append(r)
                print(f"round {k} {v:10s} {float(r['rps']):8.0f} req/s  p99 "
                      f"{float(r['p99_ms']):6.1f} ms  extra "
                      f"{r['extra']}/{r['log_requests']}  hedges "
                      f"{r['hedges']} (won {r['hedge_wins']})", flush=True)
    except bl.Timeout as e:
        print(f"budget: timed out: {e}", file=sys.stderr)
        failed += 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        bl.Proc.stop_all()
    if rows:
        with open(os.path.join(out, "results.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    br.write_summary(out, table(rows, args), t0)
    return 1 if failed or not rows else 0


if __name__ == "__main__":
    bl.tool_main(main)

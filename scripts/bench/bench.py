#!/usr/bin/python3
"""bench: the benchmark matrix (`make bench`), the quick proxy benchmark
(`make quickbench`) and the CSV log's cost (`make logcost`).

    scripts/bench/bench.py            every scenario in config/scenarios/
    scripts/bench/bench.py --quick    direct vs L4 relay floor vs lbproxy vs
                                      nginx, 0 ms backends
    scripts/bench/bench.py --logcost  lbproxy persistent round-robin with its
                                      CSV request log off and on, 0 ms
                                      backends, alternating

Environment overrides: SCENARIOS (names, comma or space separated),
DURATION, REPEAT, CONNS, THREADS, WARMUP (seconds), RESTART (scenario|run:
backends and proxy started once per scenario or afresh for each run, with
the same seeds), CONFIGS (configuration
names or "all"), LOG (on|off: lbproxy's CSV request log; on for the matrix,
off for quickbench; --logcost sets it per configuration), OUT (run
directory), ANALYZE (0 skips the report).

Method (docs/benchmarks.md): the proxy under test is pinned to CPU 0, wrk
and the backends to CPU 1.  Per scenario the backends start once (or per
run when the scenario says restart = run, so that phase schedules start
with the run), every configuration's proxy starts and is warmed up, then
runs are interleaved across configurations (round k starts at the k-th
configuration) and repeated; the report gives medians.
"""
import os
import shutil
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchconf as bc  # noqa: E402
import benchlib as bl  # noqa: E402
import benchreport as br  # noqa: E402

DEFAULT_ORDER = ["flat", "hetero", "capped", "flaky", "degrade"]
# relay (an L4 relay, one upstream connection per client connection) sits
# next to the persistent rows it is the floor of.
QUICK_CONFIGS = ["direct", "relay", "lb-rr-p", "nginx-rr-ka", "lb-rr-np",
                 "nginx-rr-close"]
# How the quick table names the configurations that are not proxies.
QUICK_LABELS = {"relay": "relay (L4 floor, not a proxy)"}
LOGCOST_CONFIGS = ["lb-rr-p", "lb-rr-p-log"]
LOGCOST_LABELS = {"lb-rr-p": "lb-rr-p (log off)",
                  "lb-rr-p-log": "lb-rr-p-log (log on)"}


def log(run_dir, msg):
    print(msg, flush=True)
    with open(os.path.join(run_dir, "bench.log"), "a") as f:
        f.write(msg + "\n")


class Clock:
    """Elapsed time and a remaining-time estimate over the planned work."""

    def __init__(self, scenarios):
        self.t0 = time.monotonic()
        self.overhead = 0.3  # seconds per run beyond wrk's duration
        self.remaining = {}
        for s in scenarios:
            self.remaining[s.name] = self.estimate(s)

    def estimate(self, s, runs_done=0, warm_done=False):
        n = len(s.configs)
        runs = n * s.repeat - runs_done
        if s.restart == "run":
            per = s.duration + s.warmup + 1.0 + self.overhead
            return runs * per
        warm = 0 if warm_done else n * (s.warmup + 0.4) + 1.0
        return warm + runs * (s.duration + self.overhead)

    def line(self):
        el = time.monotonic() - self.t0
        left = sum(self.remaining.values())
        return f"elapsed {br.fmt_secs(el)}, ~{br.fmt_secs(left)} left"


def rotate(items, k):
    k %= max(1, len(items))
    return items[k:] + items[:k]


def measure(scen, cfg, k, proxy, backends, sd, run_dir, writer, tag=""):
    """One measured wrk run through proxy; returns the result row."""
    base = f"{cfg.name}-r{k}{tag}"
    raw = os.path.join(sd, "wrk", base + ".txt")
    js = os.path.join(sd, "wrk", base + ".json")
    bl.wait_backends_idle(backends)
    cpu0 = proxy.cpu()
    be0 = sum(bl.tree_cpu_seconds(p.pid) for _, _, p in backends)
    idle0 = bl.backends_idle(backends)
    start = time.time()
    summ, wrk_cpu = bl.run_wrk(proxy.port, scen, scen.duration, raw, js,
                               scheme=proxy.scheme)
    end = time.time()
    idle1 = bl.backends_idle(backends)
    cpu1 = proxy.cpu()
    be1 = sum(bl.tree_cpu_seconds(p.pid) for _, _, p in backends)
    row = br.result_row(scen, cfg, k, start, end, summ, cpu1 - cpu0,
                        be1 - be0, wrk_cpu, run_dir, raw, js, proxy.log_csv)
    row["idle_workers_pct"] = bl.idle_pct(idle0, idle1, end - start)
    writer.add(row)
    return row


def brief(row):
    return (f"    -> {float(row['rps']):10.0f} rps  p50 {row['p50_ms']} ms  "
            f"p99 {row['p99_ms']} ms  errors {row['errors']}"
            + (f"  cpu {row['proxy_cpu_us_per_req']} us/req"
               if row["proxy_cpu_us_per_req"] else ""))


def lbproxy_log(scen, cfg, sd, log_on, tag=""):
    if cfg.log is not None:
        log_on = cfg.log
    if cfg.kind != "lbproxy" or not log_on:
        return None
    d = os.path.join(sd, "lbproxy")
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, f"{cfg.name}{tag}.csv")


def warm(scen, proxy, sd, run_dir):
    """Warm-up run; returns None when fine, else the reason it is broken."""
    if scen.warmup <= 0:
        return None
    base = f"{proxy.cfg.name}-warmup"
    raw = os.path.join(sd, "wrk", base + ".txt")
    js = os.path.join(sd, "wrk", base + ".json")
    try:
        summ, _ = bl.run_wrk(proxy.port, scen, scen.warmup, raw, js,
                             scheme=proxy.scheme)
    except RuntimeError as e:
        return str(e)
    if not proxy.alive():
        return f"exited during warm-up: {proxy.proc.tail()}"
    ok = summ["requests"] - summ["errors"]["status"]
    if summ["requests"] == 0 or ok <= 0:
        return (f"warm-up served no successful request "
                f"(requests {summ['requests']}, errors {summ['errors']})")
    return None


def run_scenario(scen, run_dir, writer, clock, state):
    sd = os.path.join(run_dir, scen.name)
    os.makedirs(sd, exist_ok=True)
    log_on = state["log_on"]
    cfgs = [bc.CONFIGS[n] for n in scen.configs]
    broken = {}
    n_runs = len(cfgs) * scen.repeat
    done = 0
    log(run_dir, f"== scenario {scen.name}: {scen.description}")
    for note in scen.notes:
        log(run_dir, f"   note: {note}")
    log(run_dir, f"   wrk -t{scen.threads} -c{scen.connections} "
        f"-d{scen.duration}s, {scen.repeat} run(s) x {len(cfgs)} "
        f"configurations, warm-up {scen.warmup} s, restart per "
        f"{scen.restart}")

    def progress(cfg, k):
        state["n"] += 1
        log(run_dir, f"[{state['n']:3d}/{state['total']}] {scen.name:8s} "
            f"{cfg.name:18s} run {k}/{scen.repeat}  {clock.line()}")

    def after(t_run):
        # Keep a running mean of the per-run overhead for the estimate.
        over = max(0.0, t_run - scen.duration
                   - (scen.warmup if scen.restart == "run" else 0))
        clock.overhead = 0.7 * clock.overhead + 0.3 * over

    if scen.restart == "scenario":
        backends = bl.start_backends(scen, sd)
        proxies = {}
        try:
            for cfg in cfgs:
                try:
                    proxies[cfg.name] = bl.start_proxy(
                        cfg, backends, sd, lbproxy_log(scen, cfg, sd, log_on))
                except RuntimeError as e:
                    broken[cfg.name] = str(e)
            for cfg in cfgs:
                if cfg.name in proxies:
                    why = warm(scen, proxies[cfg.name], sd, run_dir)
                    if why:
                        broken[cfg.name] = why
            for name, why in broken.items():
                log(run_dir, f"   SKIP {name}: {why}")
            clock.remaining[scen.name] = clock.estimate(scen, 0, True)
            for k in range(1, scen.repeat + 1):
                for cfg in rotate(cfgs, k - 1):
                    if cfg.name in broken:
                        state["n"] += 1
                        done += 1
                        continue
                    progress(cfg, k)
                    t = time.monotonic()
                    px = proxies[cfg.name]
                    if not px.alive():
                        # Something else on this shared machine may have
                        # signalled it: say so, start it again, warm it up.
                        log(run_dir, f"   {cfg.name} exited while idle "
                            f"(exit {px.proc.poll()}): {px.proc.tail(2)}; "
                            "restarting it")
                        try:
                            px = bl.start_proxy(cfg, backends, sd,
                                                px.log_csv or None)
                            proxies[cfg.name] = px
                            why = warm(scen, px, sd, run_dir)
                            if why:
                                raise RuntimeError(why)
                        except RuntimeError as e:
                            broken[cfg.name] = str(e)
                            log(run_dir, f"   FAIL {cfg.name}: {e}")
                            done += 1
                            continue
                    try:
                        row = measure(scen, cfg, k, px, backends, sd,
                                      run_dir, writer)
                        log(run_dir, brief(row))
                    except RuntimeError as e:
                        broken[cfg.name] = str(e)
                        log(run_dir, f"   FAIL {cfg.name}: {e}")
                    if not px.alive():
                        broken[cfg.name] = (f"exited during run {k}: "
                                            f"{px.proc.tail()}")
                        log(run_dir, f"   FAIL {cfg.name}: "
                            f"{broken[cfg.name]}")
                    done += 1
                    after(time.monotonic() - t)
                    clock.remaining[scen.name] = clock.estimate(scen, done,
                                                                True)
        finally:
            for px in proxies.values():
                px.stop()
            for _, _, p in backends:
                p.stop()
    else:
        for k in range(1, scen.repeat + 1):
            for cfg in rotate(cfgs, k - 1):
                if cfg.name in broken:
                    state["n"] += 1
                    done += 1
                    continue
                progress(cfg, k)
                t = time.monotonic()
                tag = f"-r{k}"
                backends = []
                px = None
                try:
                    backends = bl.start_backends(scen, sd, f"-{cfg.name}{tag}")
                    px = bl.start_proxy(cfg, backends, sd,
                                        lbproxy_log(scen, cfg, sd, log_on,
                                                    tag), tag)
                    why = warm(scen, px, sd, run_dir)
                    if why:
                        raise RuntimeError(why)
                    row = measure(scen, cfg, k, px, backends, sd, run_dir,
                                  writer)
                    log(run_dir, brief(row))
                    if not px.alive():
                        raise RuntimeError(f"exited during run {k}: "
                                           f"{px.proc.tail()}")
                except RuntimeError as e:
                    broken[cfg.name] = str(e)
                    log(run_dir, f"   FAIL {cfg.name}: {e}")
                finally:
                    if px:
                        px.stop()
                    for _, _, p in backends:
                        p.stop()
                done += 1
                after(time.monotonic() - t)
                clock.remaining[scen.name] = clock.estimate(scen, done)
    clock.remaining[scen.name] = 0
    with open(os.path.join(run_dir, "broken.txt"), "a") as f:
        for name, why in broken.items():
            f.write(f"{scen.name}\t{name}\t{' '.join(why.split())}\n")
    return broken


def load_scenarios(env):
    sdir = os.path.join(bl.ROOT, "config", "scenarios")
    avail = {os.path.splitext(f)[0]: os.path.join(sdir, f)
             for f in sorted(os.listdir(sdir)) if f.endswith(".ini")}
    want = env.get("SCENARIOS", "").replace(",", " ").split()
    if not want:
        want = [n for n in DEFAULT_ORDER if n in avail]
        want += [n for n in avail if n not in want]
    out = []
    for n in want:
        if n not in avail:
            raise SystemExit(f"bench: no scenario {n!r} in config/scenarios "
                             f"(have: {' '.join(avail)})")
        s = bc.Scenario.load(avail[n])
        s.apply_env(env)
        out.append(s)
    return out


def zero_ms_scenario(name, description, configs, warmup, env):
    """Three 0 ms backends, wrk -t1 -c100 -d10s, REPEAT 3 (overridable)."""
    s = bc.Scenario(name)
    s.description = description
    s.backends = [(b, ["--profile", "fixed:0ms", "--workers", "0"])
                  for b in "ABC"]
    s.duration = 10
    s.warmup = warmup
    s.configs = list(configs)
    s.apply_env(env)
    return s


def quick_scenario(env):
    return zero_ms_scenario(
        "quick", "three 0 ms backends (fixed:0ms, unlimited workers): "
        "proxy overhead; direct = wrk to backend A alone; "
        "relay = L4 relay floor, not a proxy", QUICK_CONFIGS, 2, env)


def logcost_scenario(env):
    # Both proxies start once; rounds alternate which goes first
    # (off on, on off, ...).
    return zero_ms_scenario(
        "logcost", "lbproxy persistent round-robin, three 0 ms backends: "
        "lb-rr-p = --log off, lb-rr-p-log = --log FILE",
        LOGCOST_CONFIGS, 1, env)


def med(rows, key):
    vals = [float(r[key]) for r in rows if r.get(key) not in ("", None)]
    return statistics.median(vals) if vals else float("nan")


def config_table(rows, scen, labels):
    """The table of medians per configuration, in scen.configs order.

    Returns (lines, medians by configuration name)."""
    by = {}
    for r in rows:
        by.setdefault(r["config"], []).append(r)
    lines = [f"wrk -t{scen.threads} -c{scen.connections} "
             f"-d{scen.duration}s, medians of {scen.repeat} runs; "
             f"proxy on CPU {bl.PROXY_CPU}, wrk + backends on CPU "
             f"{bl.LOAD_CPU}", "",
             "| configuration | runs | rps | mean ms | p50 ms | p99 ms | "
             "p99.9 ms | errors | proxy CPU us/req | load CPU busy |",
             "|" + "---|" * 10]
    m = {}
    for name in scen.configs:
        rs = by.get(name, [])
        label = labels.get(name, name)
        if not rs:
            lines.append(f"| {label} | 0 | (failed, see bench.log) "
                         "|||||||")
            continue
        m[name] = {k: med(rs, k) for k in
                   ("rps", "mean_ms", "p50_ms", "p99_ms", "p999_ms",
                    "errors", "proxy_cpu_us_per_req", "load_cpu_busy")}
        v = m[name]
        cpu = ("-" if name == "direct"
               else f"{v['proxy_cpu_us_per_req']:.1f}")
        lines.append(f"| {label} | {len(rs)} | {v['rps']:.0f} | "
                     f"{v['mean_ms']:.3f} | {v['p50_ms']:.3f} | "
                     f"{v['p99_ms']:.3f} | {v['p999_ms']:.3f} | "
                     f"{v['errors']:.0f} | {cpu} | "
                     f"{v['load_cpu_busy']:.2f} |")
    return lines, m


def ratio_table(m, pairs):
    lines = ["| ratio | rps | p99 | CPU per request |", "|---|---|---|---|"]
    for a, b in pairs:
        if a in m and b in m:
            ca = m[a]["proxy_cpu_us_per_req"]
            cb = m[b]["proxy_cpu_us_per_req"]
            cpu = "-" if b == "direct" else f"{ca / cb:.3f}"
            lines.append(f"| {a} / {b} | {m[a]['rps'] / m[b]['rps']:.2f} | "
                         f"{m[a]['p99_ms'] / m[b]['p99_ms']:.2f} | {cpu} |")
    return lines


def write_summary(lines, run_dir):
    text = "\n".join(lines) + "\n"
    with open(os.path.join(run_dir, "summary.md"), "w") as f:
        f.write(text)
    return text


def quick_summary(rows, scen, run_dir):
    """The quickbench table (medians), the lbproxy/nginx ratios and both
    proxies' ratios to the relay floor."""
    table, m = config_table(rows, scen, QUICK_LABELS)
    table[0] += "; lbproxy --log off, nginx access_log off"
    lines = [f"quickbench: {scen.description}"] + table + [""]
    lines += ratio_table(m, (("lb-rr-p", "nginx-rr-ka"),
                             ("lb-rr-np", "nginx-rr-close"),
                             ("lb-rr-p", "direct"), ("nginx-rr-ka", "direct"),
                             ("lb-rr-p", "relay"), ("nginx-rr-ka", "relay"),
                             ("lb-rr-p-route1", "lb-rr-p"),
                             ("lb-rr-p-routes1k", "lb-rr-p")))
    lines.append("")
    lines.append("load CPU busy = (wrk + backends CPU seconds) / run seconds "
                 "on CPU 1; near 1.00 the load side, not the proxy, limits "
                 "throughput.")
    if "relay" in m:
        lines.append("")
        lines.append("relay = an L4 TCP relay (scripts/bench/relay.c), not a "
                     "proxy: one upstream connection per client connection, "
                     "bytes copied blindly, 2 recv + 2 send per request "
                     "like lbproxy.  Its CPU per request is the kernel "
                     "floor every proxy here pays at least; what a proxy "
                     "spends above it is, roughly, its own user-space work "
                     "(parsing, balancing, header rewriting).")
    return write_summary(lines, run_dir)


def logcost_summary(rows, scen, run_dir):
    """The two configurations' medians, the on/off ratios and how many CSV
    rows the logging proxy wrote (warm-up included)."""
    table, m = config_table(rows, scen, LOGCOST_LABELS)
    lines = [f"logcost: {scen.description}"] + table + [""]
    lines += ratio_table(m, (("lb-rr-p-log", "lb-rr-p"),))
    csv_path = os.path.join(run_dir, scen.name, "lbproxy", "lb-rr-p-log.csv")
    if os.path.exists(csv_path):
        with open(csv_path, "rb") as f:
            n = sum(1 for _ in f) - 1
        lines += ["", f"{max(n, 0)} CSV rows written by lb-rr-p-log "
                  f"({os.path.relpath(csv_path, run_dir)}, warm-up "
                  "included)"]
    return write_summary(lines, run_dir)


def check_tools(scenarios):
    kinds = {bc.CONFIGS[c].kind for s in scenarios for c in s.configs}
    need = ["wrk", "taskset"] + [k for k in ("nginx", "haproxy")
                                 if k in kinds]
    missing = [t for t in need if not shutil.which(t)]
    bins = [bl.LBPROXY, bl.LBBACKEND]
    if any("relay" in s.configs for s in scenarios):
        bins.append(bl.RELAY)
    for b in bins:
        if not os.access(b, os.X_OK):
            raise SystemExit(f"bench: {b} is missing; run make first")
    if missing:
        raise SystemExit("bench: missing " + " ".join(missing)
                         + "; run scripts/install-deps.sh --bench")
    if len(os.sched_getaffinity(0)) < 2:
        print("bench: warning: fewer than 2 CPUs available; pinning to CPU "
              "0 and 1 will fail", file=sys.stderr)


def open_stage(env, scenarios, run_dir):
    """make bench's open-loop stage (issue 19): openbench.py over
    OPEN_SCENARIOS (default: capped, when the run has it) at OFFERED
    (0.5,0.8,0.95 of each capacity bound; req/s for a scenario without
    one, else its open_rates), OPEN_CONFIGS (openbench's default set),
    OPEN_DURATION s (10) each, into RUN_DIR/open/.  OPEN=0 skips it.
    Returns that directory, or None when the stage did not run or
    failed."""
    if env.get("OPEN", "1") == "0":
        return None
    names = env.get("OPEN_SCENARIOS")
    if names is None:
        names = "capped" if any(s.name == "capped" for s in scenarios) else ""
    if not names.strip():
        return None
    import openbench
    out = os.path.join(run_dir, "open")
    cmd = ["/usr/bin/python3", os.path.abspath(openbench.__file__),
           "--out", out, "--scenarios", names,
           "--offered", env.get("OFFERED") or "0.5,0.8,0.95",
           "--configs", env.get("OPEN_CONFIGS")
           or ",".join(openbench.DEFAULT_CONFIGS),
           "-d", env.get("OPEN_DURATION") or "10", "--warmup", "2"]
    log(run_dir, "bench: open-loop stage: " + " ".join(cmd[2:]))
    import subprocess
    r = subprocess.run(cmd)
    if r.returncode != 0:
        log(run_dir, f"bench: the open-loop stage failed (exit "
            f"{r.returncode}); see {os.path.relpath(out, bl.ROOT)}")
        return out if os.path.exists(os.path.join(out, "summary.md")) \
            else None
    return out


def append_open_report(run_dir, out):
    """The open-loop summary and its plots at the end of report.md."""
    with open(os.path.join(out, "summary.md")) as f:
        text = f.read()
    plots = sorted(p for p in os.listdir(os.path.join(out, "plots"))
                   if p.endswith(".png")) \
        if os.path.isdir(os.path.join(out, "plots")) else []
    with open(os.path.join(run_dir, "report.md"), "a") as f:
        f.write("\n## Open loop (Poisson arrivals at fixed offered "
                "rates)\n\nLatency from each request's intended send time, "
                "so queueing shows (docs/benchmarks.md, make openbench).\n\n"
                + text + "\n")
        for p in plots:
            f.write(f"![{p}](open/plots/{p})\n\n")


def main(argv):
    if "-h" in argv or "--help" in argv:
        print(__doc__.strip())
        return 0
    unknown = [a for a in argv if a not in ("--quick", "--logcost")]
    if unknown:
        print(f"bench: unknown argument {unknown[0]!r} (settings come from "
              "the environment; --help lists them)", file=sys.stderr)
        return 2
    variant = ("quick" if "--quick" in argv
               else "logcost" if "--logcost" in argv else "")
    env = os.environ
    scenarios = {"quick": lambda: [quick_scenario(env)],
                 "logcost": lambda: [logcost_scenario(env)],
                 "": lambda: load_scenarios(env)}[variant]()
    check_tools(scenarios)
    ts = time.strftime("%Y%m%d-%H%M%S")
    run_dir = env.get("OUT") or os.path.join(
        bl.ROOT, "logs", "bench", (variant + "-" if variant else "") + ts)
    run_dir = os.path.abspath(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    log_on = env.get("LOG", "on" if not variant else "off") != "off"
    sdir = os.path.join(run_dir, "scenarios")
    os.makedirs(sdir, exist_ok=True)
    for s in scenarios:
        if s.path:
            shutil.copy(s.path, sdir)
    with open(os.path.join(run_dir, "effective.txt"), "w") as f:
        for s in scenarios:
            f.write(f"[{s.name}] duration={s.duration} repeat={s.repeat} "
                    f"warmup={s.warmup} threads={s.threads} "
                    f"connections={s.connections} path={s.path_url} "
                    f"timeout={s.timeout} restart={s.restart} "
                    f"lbproxy_log={'on' if log_on else 'off'}\n"
                    f"  configs={' '.join(s.configs)}\n")
            for bid, args in s.backends:
                f.write(f"  backend {bid}: {' '.join(args)}\n")
    br.write_facts(run_dir, {"command": " ".join(
        [f"{k}={env[k]}" for k in ("SCENARIOS", "DURATION", "REPEAT",
                                   "CONNS", "THREADS", "WARMUP", "RESTART",
                                   "CONFIGS",
                                   "LOG") if env.get(k)]
        + [{"quick": "make quickbench", "logcost": "make logcost",
            "": "make bench"}[variant]])})
    clock = Clock(scenarios)
    total = sum(len(s.configs) * s.repeat for s in scenarios)
    log(run_dir, f"bench: run directory {os.path.relpath(run_dir, bl.ROOT)}"
        f"; {total} runs planned, estimated {clock.line().split(', ')[1]}")
    writer = br.ResultsWriter(os.path.join(run_dir, "results.csv"))
    state = {"n": 0, "total": total, "log_on": log_on}
    rows = []
    try:
        for s in scenarios:
            run_scenario(s, run_dir, writer, clock, state)
    except KeyboardInterrupt:
        log(run_dir, "bench: interrupted; results so far are in "
            "results.csv")
        return 130
    finally:
        bl.Proc.stop_all()
        writer.close()
    open_out = None if variant else open_stage(env, scenarios, run_dir)
    log(run_dir, f"bench: done in {br.fmt_secs(time.monotonic() - clock.t0)}"
        f"; results in {os.path.relpath(run_dir, bl.ROOT)}/results.csv")
    import csv
    with open(os.path.join(run_dir, "results.csv")) as f:
        rows = list(csv.DictReader(f))
    if variant:
        summary = {"quick": quick_summary, "logcost": logcost_summary}
        print()
        print(summary[variant](rows, scenarios[0], run_dir))
        print(f"written to {os.path.relpath(run_dir, bl.ROOT)}/summary.md")
    elif env.get("ANALYZE", "1") != "0":
        import subprocess
        r = subprocess.run(["/usr/bin/python3",
                            os.path.join(bl.ROOT, "scripts", "analyze"),
                            run_dir])
        if r.returncode != 0:
            print("bench: scripts/analyze failed; the raw results are "
                  "complete", file=sys.stderr)
        elif open_out:
            append_open_report(run_dir, open_out)
    return 0


if __name__ == "__main__":
    import signal

    def _term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    sys.exit(main(sys.argv[1:]))

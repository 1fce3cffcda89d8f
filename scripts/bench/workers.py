#!/usr/bin/python3
"""workers: what `--workers 2` keeps and costs against `--workers 1`
(`make workers`; what each figure means: docs/workers-bench.md).

    scripts/bench/workers.py                      every part, 3 rounds
    DURATION=3 REPEAT=1 scripts/bench/workers.py
    scripts/bench/workers.py --parts cost --configs w1,w2,w2-sl

Parts (issue 17's targets), each with its own backends:
  capped  config/scenarios/capped.ini (bound 1400 req/s), lbproxy MODE
          (adaptive_ewma): req/s x bound, p99, the p99 ratio w2 / w1
  cost    quickbench's flat set, round-robin persistent: CPU per request
          of the master and every worker (/proc), the ratio to w1
  view    in every multi-worker capped and cost run: requests in
          /api/stats and /metrics against wrk's count
  fault   three exp:2ms backends under wrk -c100, a worker SIGKILLed:
          failed share, time until `pgrep -P master` shows a new worker
          (polled every 10 ms), each backend's in-flight after the load
  hang    scripts/bench/hang.py with --set proxy.workers=2, its table

Configurations: w1, w2 (a SO_REUSEPORT listener per worker, the
default), w2-sl (--shared-listener: one listener), w2-private (a
balancer per worker, shared_balancers=false: what sharing buys), base
(LBPROXY_BASE's build without the workers key).  lbproxy on CPU 0 (its
workers inherit it unless WORKER_CPUS= sets worker_cpus), wrk and the
backends on CPU 1.  Environment: DURATION, REPEAT, WARMUP, CONNS, PARTS,
CONFIGS, MODE, FAULT_DURATION, KILL_AT, KILL_WORKER, WORKER_CPUS,
HANG_WORKERS, HANG_CONFIGS, HANG_DURATION, HANG_REPEAT, OUT.  Writes
results.csv and summary.md into logs/bench/workers-<time>/; stops
everything it started on every way out.
"""
import argparse
import csv
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import types
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchconf as bc  # noqa: E402
import benchlib as bl  # noqa: E402
import benchreport as br  # noqa: E402
import bench  # noqa: E402
from openbench import capacity  # noqa: E402

PARTS = ("capped", "cost", "fault", "hang")
# Issue 17's targets.
T_BOUND = 0.97  # capped, w2: req/s >= 0.97 x the bound
T_P99 = 1.10  # capped: p99 w2 / w1
T_VIEW = 0.001  # view: |counted - wrk| / wrk
T_FAIL = 0.005  # fault: failed / attempts
T_REPLACE_MS = 1000.0  # fault: a replacement worker within 1 s
T_COST = 1.10  # cost: CPU/request w2 / w1
T_COST_BASE = 1.03  # cost: w1 / today's (base)
REPLACE_WAIT = 5.0  # seconds the pgrep poll runs at most
# bench.measure() hands each row to a writer; rows are written at the end.
NO_WRITER = types.SimpleNamespace(add=lambda row: None)
FIELDS = br.RESULT_FIELDS + [
    "part", "workers", "reuseport", "bound_rps", "of_bound",
    "worker_requests", "worker_restarts", "stats_requests",
    "metrics_requests", "stats_client_closed", "metrics_client_closed",
    "view_settle_s", "attempts", "failed", "failed_share", "killed_pid",
    "replaced_pid", "replace_ms", "restart_logged", "inflight_first",
    "inflight_last", "inflight_zero_ms"]


# ------------------------------------------------------ the admin listener

def admin_get(port, path, timeout=2.0):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",
                                timeout=timeout) as r:
        return r.read()


def api_stats(port):
    return json.loads(admin_get(port, "/api/stats"))


METRIC = re.compile(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)")


def metrics(port):
    """/metrics as [(name, labels text, value)]."""
    out = []
    for line in admin_get(port, "/metrics").decode().splitlines():
        m = METRIC.match(line)
        if m and not line.startswith("#"):
            out.append((m.group(1), m.group(2) or "", float(m.group(3))))
    return out


def view(port):
    """The counters both admin views give, summed over their series:
    requests and client_closed errors from /api/stats and from /metrics,
    in-flight and the per-worker rows of /api/stats."""
    s = api_stats(port)
    m = metrics(port)
    return {
        "stats_requests": s["total"]["requests"],
        "stats_client_closed": sum(b["errors"].get("client_closed", 0)
                                   for b in s["backends"]),
        "in_flight": s["total"]["in_flight"],
        "backend_in_flight": {b["id"]: b["in_flight"] for b in s["backends"]},
        "metrics_requests": int(sum(v for n, _, v in m
                                    if n == "lbproxy_requests_total")),
        "metrics_client_closed": int(sum(
            v for n, lab, v in m if n == "lbproxy_errors_total"
            and 'kind="client_closed"' in lab)),
        "workers": {w["index"]: w for w in s.get("workers", [])},
    }


def settle(port, quiet, limit=5.0):
    """Polls view() every 100 ms until nothing is in flight and both
    request counts held still for `quiet` seconds (requests that wrk's
    close cut off are counted when lbproxy notices); returns (view,
    seconds waited).  Bounded by `limit`."""
    t0 = time.monotonic()
    last, since = None, t0
    while True:
        v = view(port)
        key = (v["stats_requests"], v["metrics_requests"])
        now = time.monotonic()
        if last is None or key != last or v["in_flight"]:
            last, since = key, now
        elif now - since >= quiet:
            return v, now - t0
        if now - t0 > limit:
            return v, now - t0
        time.sleep(0.1)


def wait_workers(port, n, proc, timeout=10.0):
    """Polls /api/stats until n workers are up; returns its view.  With
    n = 1 a stats without a "workers" array (today's build) is fine."""
    deadline = time.monotonic() + timeout
    err = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"lbproxy exited: {proc.tail()}")
        try:
            v = view(port)
            up = [w for w in v["workers"].values() if w.get("up")]
            if len(up) == n or (n == 1 and not v["workers"]):
                return v
            err = f"{len(up)} of {n} workers up"
        except (OSError, ValueError, KeyError) as e:
            err = str(e)
        time.sleep(0.05)
    raise RuntimeError(f"workers not up after {timeout:.0f} s: {err}")


# --------------------------------------------------------- configurations

def lb_config(name, mode, admin_port, args):
    """A benchlib Config for one of w1, w2, w2-sl, base, with the admin
    listener on admin_port (start_proxy passes --admin off first; the
    --set after it wins)."""
    workers = 1 if name in ("w1", "base") else 2
    sets = [f"proxy.admin=127.0.0.1:{admin_port}"]
    if name != "base":
        sets.append(f"proxy.workers={workers}")
    if name == "w2-sl":
        sets.append("proxy.reuseport=false")
    if name == "w2-private":
        sets.append("proxy.shared_balancers=false")
    if workers > 1 and args.worker_cpus:
        sets.append(f"proxy.worker_cpus={args.worker_cpus}")
    cfg = bc.Config(name, "lbproxy", mode, True, sets)
    if name == "base":
        cfg.exe = os.path.abspath(bl.LBPROXY_BASE)
    cfg.workers = workers
    cfg.reuseport = workers > 1 and name != "w2-sl"
    return cfg


class Started:
    """A started configuration: the Proxy, its admin port and workers."""

    def __init__(self, cfg, proxy, admin):
        self.cfg, self.proxy, self.admin = cfg, proxy, admin


def start(name, mode, backends, out, args, tag=""):
    admin = bl.free_port()
    cfg = lb_config(name, mode, admin, args)
    proxy = bl.start_proxy(cfg, backends, out, tag=tag)
    try:
        if not bl.wait_port(admin, proxy.proc):
            raise RuntimeError(f"{name}: admin port not up: "
                               f"{proxy.proc.tail()}")
        wait_workers(admin, cfg.workers, proxy.proc)
    except BaseException:
        proxy.stop()
        raise
    return Started(cfg, proxy, admin)


def stop(st):
    """Stops the master's session (SIGTERM, then SIGKILL); then any worker
    seen that is still running as this binary (a worker outside the
    session would otherwise outlive the run)."""
    seen = children(st.proxy.proc.pid)
    st.proxy.stop()
    exe = os.path.realpath(st.cfg.exe or bl.LBPROXY)
    for pid in seen:
        try:
            if os.path.realpath(f"/proc/{pid}/exe") == exe:
                os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def children(pid):
    """The pids whose parent is pid (pgrep -P)."""
    r = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                       text=True, timeout=5)
    return {int(x) for x in r.stdout.split()}


def worker_split(before, after, key):
    """Per-worker deltas of key ("requests", "restarts") as "a b"."""
    w0, w1 = before["workers"], after["workers"]
    return " ".join(str(w1[i].get(key, 0) - w0.get(i, {}).get(key, 0))
                    for i in sorted(w1))


# ------------------------------------------------------ capped and cost

def measured_part(part, scen, names, mode, out, args, rows, bound=None):
    """Backends once, every configuration started and warmed up, then
    REPEAT rounds that rotate which configuration goes first (bench.py's
    method).  Each row gets the view figures."""
    sd = os.path.join(out, part)
    backends = bl.start_backends(scen, sd)
    started = {}
    try:
        for n in names:
            started[n] = start(n, mode, backends, sd, args)
            why = bench.warm(scen, started[n].proxy, sd, out)
            if why:
                raise RuntimeError(f"{n}: {why}")
        for k in range(1, scen.repeat + 1):
            for n in bench.rotate(list(names), k - 1):
                st = started[n]
                before, _ = settle(st.admin, 0.0)
                row = bench.measure(scen, st.proxy.cfg, k, st.proxy,
                                    backends, sd, out, NO_WRITER, f"-{part}")
                after, waited = settle(st.admin, args.settle)
                if not st.proxy.alive():
                    raise RuntimeError(f"{n} exited: {st.proxy.proc.tail()}")
                row.update(part=part, workers=st.cfg.workers,
                           reuseport=int(st.cfg.reuseport),
                           view_settle_s=f"{waited:.2f}")
                for key in ("stats_requests", "metrics_requests",
                            "stats_client_closed", "metrics_client_closed"):
                    row[key] = after[key] - before[key]
                row["worker_requests"] = worker_split(before, after,
                                                      "requests")
                row["worker_restarts"] = worker_split(before, after,
                                                      "restarts")
                if bound:
                    row["bound_rps"] = f"{bound:.0f}"
                    row["of_bound"] = f"{float(row['rps']) / bound:.4f}"
                rows.append(row)
                print(f"  {part} {n:5s} round {k}: {float(row['rps']):8.0f} "
                      f"req/s  p99 {float(row['p99_ms']):7.1f} ms  cpu "
                      f"{row['proxy_cpu_us_per_req']} us/req  wrk "
                      f"{row['requests']} stats {row['stats_requests']} "
                      f"metrics {row['metrics_requests']}  per worker "
                      f"{row['worker_requests'] or '-'}", flush=True)
    finally:
        for st in started.values():
            stop(st)
        for _, _, p in backends:
            p.stop()


# ------------------------------------------------------------------ fault

def kill_own_wrk():
    """SIGKILL to the wrk this process started (run_wrk in a thread that
    an exception left behind)."""
    for pid in children(os.getpid()):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == "wrk":
                    os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def fault_run(name, k, args, out, rows):
    """One kill -9 of a worker under wrk load."""
    scen = bc.Scenario("fault")
    scen.backends = [(b, ["--profile", "exp:2ms", "--quiet"]) for b in "ABC"]
    scen.connections = args.conns
    scen.timeout = "2s"
    sd = os.path.join(out, "fault")
    tag = f"-{name}-r{k}"
    backends = bl.start_backends(scen, sd, tag)
    st = t_wrk = None
    wrk = {}
    try:
        st = start(name, args.mode, backends, sd, args, tag)
        master = st.proxy.proc.pid
        why = bench.warm(scen, st.proxy, sd, out)
        if why:
            raise RuntimeError(f"{name}: {why}")
        v0 = view(st.admin)
        victim = v0["workers"].get(args.kill_worker, {}).get("pid")
        if not victim:
            raise RuntimeError(f"no worker {args.kill_worker} in /api/stats "
                               f"workers: {sorted(v0['workers'])}")
        raw = os.path.join(sd, "wrk", f"{name}{tag}.txt")
        js = os.path.join(sd, "wrk", f"{name}{tag}.json")
        cpu0 = st.proxy.cpu()

        def load():
            try:
                wrk["out"] = bl.run_wrk(st.proxy.port, scen,
                                        args.fault_duration, raw, js)
            except (RuntimeError, OSError) as e:
                wrk["error"] = e
        t = threading.Thread(target=load, daemon=True)
        t_wrk = t
        start_unix = time.time()
        t0 = time.monotonic()
        t.start()
        time.sleep(max(0.0, t0 + args.kill_at - time.monotonic()))
        kids = children(master)
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        new, replace_ms = None, None
        while time.monotonic() - killed < REPLACE_WAIT:
            fresh = children(master) - kids - {victim}
            if fresh:
                replace_ms = (time.monotonic() - killed) * 1000
                new = min(fresh)
                break
            time.sleep(0.01)
        t.join(args.fault_duration + 60)
        end_unix = time.time()
        if "error" in wrk or "out" not in wrk:
            raise RuntimeError(f"wrk: {wrk.get('error', 'did not finish')}")
        summ, wrk_cpu = wrk["out"]
        px_cpu = st.proxy.cpu() - cpu0
        # In-flight per backend after the load, until all are 0 (bounded).
        t1 = time.monotonic()
        first = last = None
        zero_ms = None
        while time.monotonic() - t1 < 5.0:
            try:
                last = view(st.admin)["backend_in_flight"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.05)
                continue
            first = first or last
            if not any(last.values()):
                zero_ms = (time.monotonic() - t1) * 1000
                break
            time.sleep(0.05)
        try:
            v1 = view(st.admin)
        except (OSError, ValueError, KeyError):
            v1 = {"workers": {}}
        alive = st.proxy.alive()
    finally:
        if t_wrk and t_wrk.is_alive():
            kill_own_wrk()
        if st:
            stop(st)
        for _, _, p in backends:
            p.stop()
    with open(st.proxy.proc.log_path, errors="replace") as f:
        logged = any("restarting" in line and f"pid {victim}" in line
                     for line in f)
    row = br.result_row(scen, st.proxy.cfg, k, start_unix, end_unix, summ,
                        px_cpu, 0.0, wrk_cpu, out, raw, js, "")
    e = summ["errors"]
    sock = e["connect"] + e["read"] + e["write"] + e["timeout"]
    attempts = summ["requests"] + sock
    failed = sock + e["status"]
    fmt = (lambda d: " ".join(f"{b}={n}" for b, n in sorted(d.items()))
           if d is not None else "")
    row.update(part="fault", workers=st.cfg.workers,
               reuseport=int(st.cfg.reuseport), attempts=attempts,
               failed=failed,
               failed_share=f"{failed / attempts:.5f}" if attempts else "",
               killed_pid=victim, replaced_pid=new or "",
               replace_ms=f"{replace_ms:.0f}" if replace_ms is not None
               else "", restart_logged=int(logged),
               worker_restarts=worker_split(v0, v1, "restarts")
               if v1["workers"] else "",
               inflight_first=fmt(first), inflight_last=fmt(last),
               inflight_zero_ms=f"{zero_ms:.0f}" if zero_ms is not None
               else "")
    if not alive:
        row["restart_logged"] = "master died"
    rows.append(row)
    print(f"  fault {name:5s} round {k}: {failed}/{attempts} failed "
          f"({row['failed_share']}), replacement after "
          f"{row['replace_ms'] or '-'} ms, in flight after "
          f"{row['inflight_first']} -> {row['inflight_last']}", flush=True)


# ------------------------------------------------------------------- hang

def hang_seconds(args):
    """A bound on the hang part's time: hang.py's runs plus slack."""
    runs = (len(args.hang_workers) * args.hang_rounds * 2
            * len(args.hang_configs.split(",")))
    return runs * (args.hang_duration + 15) + 60


def hang_part(args, out):
    """hang.py with --set proxy.workers=N, once per HANG_WORKERS; returns
    the summary text of each."""
    text = []
    for n in args.hang_workers:
        d = os.path.join(out, f"hang-w{n}")
        cmd = [sys.executable, os.path.join(HERE, "hang.py"), "--configs",
               args.hang_configs, "-d", str(args.hang_duration),
               "--hang-start", str(args.hang_start), "--hang-len",
               str(args.hang_len), "-r", str(args.hang_rounds), "--out", d,
               "--set", f"proxy.workers={n}"]
        if args.worker_cpus and n > 1:
            cmd += ["--set", f"proxy.worker_cpus={args.worker_cpus}"]
        print(f"  hang --workers {n}: {' '.join(cmd[2:])}", flush=True)
        with open(d + ".log", "w") as log:
            p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, cwd=bl.ROOT)
            try:
                rc = p.wait(hang_seconds(args) / len(args.hang_workers))
            except BaseException:
                # SIGTERM: hang.py stops what it started, then exits.
                p.terminate()
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                raise
        summary = os.path.join(d, "summary.md")
        if os.path.exists(summary):
            with open(summary) as f:
                body = f.read().strip()
        else:
            body = f"hang.py failed (exit {rc}): see {d}.log"
        text.append((n, rc, body))
    return text


# -------------------------------------------------------------- summary

def _med(rows, key):
    vals = [float(r[key]) for r in rows if r.get(key) not in ("", None)]
    return statistics.median(vals) if vals else None


def _f(v, fmt="{:.0f}"):
    return "—" if v is None else fmt.format(v)


def _by(rows, part, name):
    return [r for r in rows if r["part"] == part and r["config"] == name]


def capped_table(rows, names, scen, bound, mode):
    head = ["config", "req/s", "x bound", "p99 ms", "errors",
            "requests per worker", "target"]
    lines = [f"### capped: {scen.description}",
             "", f"lbproxy --mode {mode} --persistent; wrk -t{scen.threads} "
             f"-c{scen.connections} -d{scen.duration}s; bound {bound:.0f} "
             f"req/s; {scen.repeat} round(s), medians.  target (w2, w2-sl): "
             f">= {T_BOUND} x bound, p99 <= {T_P99} x w1's.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    p99_w1 = _med(_by(rows, "capped", "w1"), "p99_ms")
    for n in names:
        rs = _by(rows, "capped", n)
        if not rs:
            continue
        frac, p99 = _med(rs, "of_bound"), _med(rs, "p99_ms")
        verdict = "(reference)"
        if n.startswith("w2"):
            missed = []
            if frac < T_BOUND:
                missed.append("bound")
            if p99_w1 and p99 > T_P99 * p99_w1:
                missed.append("p99")
            verdict = "met" if not missed else "missed: " + ", ".join(missed)
        lines.append("| " + " | ".join([
            n, _f(_med(rs, "rps")), _f(frac, "{:.3f}"), _f(p99, "{:.1f}"),
            _f(_med(rs, "errors")), " / ".join(
                r["worker_requests"] or "-" for r in rs), verdict]) + " |")
    rps_w1 = _med(_by(rows, "capped", "w1"), "rps")
    for n in names:
        w = _by(rows, "capped", n)
        if n.startswith("w2") and p99_w1 and w:
            lines += ["", f"{n} / w1: req/s {_med(w, 'rps') / rps_w1:.3f}, "
                      f"p99 {_med(w, 'p99_ms') / p99_w1:.2f} (medians)"]
    return lines


def view_table(rows):
    head = ["part", "config", "round", "wrk requests", "/api/stats",
            "/metrics", "stats - wrk", "of wrk", "in 0..conns",
            "client_closed (stats / metrics)", "target"]
    lines = ["### one view: requests counted by the admin listener",
             "", "Each multi-worker run: the requests /api/stats "
             "(total.requests) and /metrics (sum of lbproxy_requests_total) "
             "added during the run, against wrk's count.  wrk stops "
             "counting at its deadline while up to one request per "
             "connection is still in flight; lbproxy finishes and counts "
             "those, so stats - wrk lies in 0..connections whatever the "
             f"run's length.  target: within {T_VIEW:.1%} of wrk's count "
             "(needs at least 1000 x connections requests: the flat runs, "
             "not the capped ones), /api/stats = /metrics.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r["part"] not in ("capped", "cost") or int(r["workers"]) < 2:
            continue
        wrk = int(r["requests"])
        diff = int(r["stats_requests"]) - wrk
        share = abs(diff) / wrk if wrk else 1.0
        both = r["stats_requests"] == r["metrics_requests"]
        missed = ([] if share <= T_VIEW else ["0.1%"]) + \
            ([] if both else ["stats != metrics"])
        lines.append("| " + " | ".join([
            r["part"], r["config"], str(r["run"]), str(wrk),
            str(r["stats_requests"]), str(r["metrics_requests"]),
            f"{diff:+d}", f"{share:.3%}",
            "yes" if 0 <= diff <= int(r["connections"]) else "NO",
            f"{r['stats_client_closed']} / {r['metrics_client_closed']}",
            "met" if not missed else "missed: " + ", ".join(missed)])
            + " |")
    return lines


def fault_table(rows, args):
    head = ["config", "round", "req/s", "failed / attempts", "failed %",
            "replacement after ms", "restarts (per worker)",
            "in flight after the load", "0 after ms", "target"]
    lines = ["### fault: kill -9 of a worker under load", "",
             f"three `lbbackend --profile exp:2ms`, lbproxy --mode "
             f"{args.mode}; wrk -c{args.conns} -d{args.fault_duration}s; "
             f"worker {args.kill_worker} killed at t={args.kill_at:g} s.  "
             "failed = wrk's socket errors (connect, read, write, timeout) "
             "+ non-2xx; attempts = wrk's requests + its socket errors.  "
             "replacement = a new child in `pgrep -P master` (polled every "
             f"10 ms, {REPLACE_WAIT:g} s at most).  target: < "
             f"{T_FAIL:.1%} failed, a replacement within "
             f"{T_REPLACE_MS:.0f} ms, in-flight back to 0.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in (r for r in rows if r["part"] == "fault"):
        missed = []
        if r["failed_share"] == "" or float(r["failed_share"]) >= T_FAIL:
            missed.append("failed")
        if r["replace_ms"] == "" or float(r["replace_ms"]) > T_REPLACE_MS:
            missed.append("replacement")
        if r["inflight_zero_ms"] == "":
            missed.append("in-flight")
        lines.append("| " + " | ".join([
            r["config"], str(r["run"]), f"{float(r['rps']):.0f}",
            f"{r['failed']} / {r['attempts']}",
            f"{float(r['failed_share']):.3%}" if r["failed_share"] else "—",
            r["replace_ms"] or "none", r["worker_restarts"] or "—",
            f"{r['inflight_first']} → {r['inflight_last']}",
            r["inflight_zero_ms"] or "never",
            "met" if not missed else "missed: " + ", ".join(missed)])
            + " |")
    return lines


def cost_table(rows, names, scen):
    head = ["config", "req/s", "p99 ms", "CPU us/request", "x w1",
            "load CPU busy", "target"]
    lines = [f"### cost: {scen.description}", "",
             f"lbproxy round-robin --persistent (quickbench's lb-rr-p); "
             f"wrk -t{scen.threads} -c{scen.connections} "
             f"-d{scen.duration}s; CPU = utime + stime of the master and "
             "every worker over the run; "
             f"{scen.repeat} round(s), medians.  target: w2 <= {T_COST} x "
             f"w1; w1 <= {T_COST_BASE} x base (today's build, when "
             "LBPROXY_BASE is given).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    c1 = _med(_by(rows, "cost", "w1"), "proxy_cpu_us_per_req")
    cb = _med(_by(rows, "cost", "base"), "proxy_cpu_us_per_req")
    for n in names:
        rs = _by(rows, "cost", n)
        if not rs:
            continue
        c = _med(rs, "proxy_cpu_us_per_req")
        verdict = "(reference)"
        if n.startswith("w2") and c1:
            verdict = "met" if c <= T_COST * c1 else "missed"
        elif n == "w1" and cb:
            verdict = ("met" if c <= T_COST_BASE * cb else "missed") + \
                f" ({c / cb:.3f} x base)"
        lines.append("| " + " | ".join([
            n, _f(_med(rs, "rps")), _f(_med(rs, "p99_ms"), "{:.1f}"),
            _f(c, "{:.2f}"), _f(c / c1 if c1 else None, "{:.3f}"),
            _f(_med(rs, "load_cpu_busy"), "{:.2f}"), verdict]) + " |")
    return lines


# ----------------------------------------------------------------- main

def parse(argv):
    env = os.environ
    ap = argparse.ArgumentParser(description="--workers 2 against "
                                 "--workers 1: capped, view, fault, cost, "
                                 "hang")
    ap.add_argument("--parts", default=env.get("PARTS") or ",".join(PARTS))
    ap.add_argument("--configs", default=env.get("CONFIGS") or "w1,w2",
                    help="w1, w2, w2-sl, w2-private, base (needs "
                    "LBPROXY_BASE)")
    ap.add_argument("-d", "--duration", type=int,
                    default=int(env.get("DURATION") or 10))
    ap.add_argument("-r", "--rounds", type=int,
                    default=int(env.get("REPEAT") or 3))
    ap.add_argument("-c", "--conns", type=int,
                    default=int(env.get("CONNS") or 100))
    ap.add_argument("--warmup", type=int,
                    default=int(env.get("WARMUP") or 1))
    ap.add_argument("--mode", default=env.get("MODE") or "adaptive_ewma")
    ap.add_argument("--settle", type=float, default=1.0,
                    help="seconds the admin counts must hold still after a "
                    "run before they are read (1)")
    ap.add_argument("--fault-duration", type=int,
                    default=int(env.get("FAULT_DURATION") or 10))
    ap.add_argument("--kill-at", type=float,
                    default=float(env.get("KILL_AT") or 0))
    ap.add_argument("--kill-worker", type=int,
                    default=int(env.get("KILL_WORKER") or 1))
    ap.add_argument("--worker-cpus", default=env.get("WORKER_CPUS", ""))
    ap.add_argument("--hang-workers", default=env.get("HANG_WORKERS") or "2")
    ap.add_argument("--hang-configs",
                    default=env.get("HANG_CONFIGS") or "lb-ewma-p")
    ap.add_argument("--hang-duration", type=int,
                    default=int(env.get("HANG_DURATION") or 16))
    ap.add_argument("--hang-rounds", type=int,
                    default=int(os.environ.get("HANG_REPEAT") or 1))
    ap.add_argument("--hang-start", type=float, default=5.0)
    ap.add_argument("--hang-len", type=float, default=6.0)
    ap.add_argument("--out", default=env.get("OUT", ""))
    args = ap.parse_args(argv)
    args.parts = [p for p in args.parts.split(",") if p]
    args.configs = [c for c in args.configs.split(",") if c]
    args.hang_workers = [int(n) for n in args.hang_workers.split(",") if n]
    for p in args.parts:
        if p not in PARTS:
            ap.error(f"unknown part {p!r}; known: {', '.join(PARTS)}")
    for c in args.configs:
        if c not in ("w1", "w2", "w2-sl", "w2-private", "base"):
            ap.error(f"unknown configuration {c!r}; "
                     "known: w1 w2 w2-sl w2-private base")
        if c == "base" and not bl.LBPROXY_BASE:
            ap.error("base needs LBPROXY_BASE=path of another lbproxy")
    if min(args.duration, args.rounds, args.conns, args.fault_duration) < 1:
        ap.error("positive --duration, --rounds, --conns, --fault-duration")
    if not args.kill_at:
        args.kill_at = args.fault_duration / 2
    if not 0 < args.kill_at < args.fault_duration:
        ap.error("--kill-at must fall within --fault-duration")
    return args


def no_workers_key():
    """"" when LBPROXY takes [proxy] workers, else its complaint."""
    r = subprocess.run([bl.LBPROXY, "--check", "--config", "/dev/null",
                        "--backend", "127.0.0.1:1", "--set",
                        "proxy.workers=2"], capture_output=True,
                       text=True, timeout=10)
    if r.returncode == 0:
        return ""
    return ((r.stdout + r.stderr).strip().splitlines() or ["?"])[-1]


def main(argv):
    args = parse(argv)
    for b in (bl.LBPROXY, bl.LBBACKEND):
        if not os.access(b, os.X_OK):
            raise SystemExit(f"workers: {b} is missing; run make first")
    for t in ("wrk", "taskset", "pgrep"):
        if not shutil.which(t):
            raise SystemExit(f"workers: {t} is missing")
    why = no_workers_key()
    if why:
        raise SystemExit(f"workers: this lbproxy has no [proxy] workers: "
                         f"{why}")
    capped = bc.Scenario.load(os.path.join(bl.ROOT, "config", "scenarios",
                                           "capped.ini"))
    capped.duration, capped.repeat = args.duration, args.rounds
    capped.warmup, capped.connections = args.warmup, args.conns
    bound = capacity(capped)
    flat = bench.zero_ms_scenario(
        "flat", "three 0 ms backends (fixed:0ms, unlimited workers), "
        "quickbench's set", [], args.warmup, {})
    flat.duration, flat.repeat = args.duration, args.rounds
    flat.warmup, flat.connections = args.warmup, args.conns
    multi = [c for c in args.configs if c.startswith("w2")]
    runs = (len(args.configs) * args.rounds * 2 * (args.duration + 2)
            + len(multi) * args.rounds * (args.fault_duration + 4))
    timeout = runs + 120 + (hang_seconds(args) if "hang" in args.parts
                            else 0)
    out, _, _ = bl.tool_start("workers", args.out, "workers", timeout)
    br.write_facts(out, {"workers": " ".join(argv) or "defaults"})
    print(f"workers: parts {','.join(args.parts)}, configurations "
          f"{','.join(args.configs)}, {args.rounds} round(s), "
          f"{args.duration}-s runs", flush=True)
    rows, lines, failed = [], [], 0
    t0 = time.monotonic()
    hangs = []
    try:
        for part in args.parts:
            try:
                if part == "capped":
                    measured_part("capped", capped, args.configs, args.mode,
                                  out, args, rows, bound)
                elif part == "cost":
                    measured_part("cost", flat, args.configs, "round-robin",
                                  out, args, rows)
                elif part == "fault":
                    for k in range(1, args.rounds + 1):
                        for n in multi:
                            fault_run(n, k, args, out, rows)
                elif part == "hang":
                    hangs = hang_part(args, out)
                    failed += sum(1 for _, rc, _ in hangs if rc)
            except (RuntimeError, OSError,
                    subprocess.SubprocessError) as e:
                failed += 1
                print(f"workers: {part} FAILED: {e}", flush=True)
    except bl.Timeout as e:
        print(f"workers: timed out: {e}", file=sys.stderr)
        failed += 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        bl.Proc.stop_all()
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    lines = [f"workers: lbproxy --workers 1 vs 2 ({', '.join(args.configs)})"
             f"; every lbproxy process on CPU {bl.PROXY_CPU}"
             + (f" (worker_cpus {args.worker_cpus})" if args.worker_cpus
                else "")
             + f", wrk and backends on CPU {bl.LOAD_CPU}.", ""]
    if any(r["part"] == "capped" for r in rows):
        lines += capped_table(rows, args.configs, capped, bound,
                              args.mode) + [""]
    if any(r["part"] in ("capped", "cost") and int(r["workers"]) > 1
           for r in rows):
        lines += view_table(rows) + [""]
    if any(r["part"] == "fault" for r in rows):
        lines += fault_table(rows, args) + [""]
    if any(r["part"] == "cost" for r in rows):
        lines += cost_table(rows, args.configs, flat) + [""]
    for n, _, body in hangs:
        lines += [f"### hang (scripts/bench/hang.py) with --workers {n}", "",
                  body, ""]
    br.write_summary(out, "\n".join(lines), t0, "summary.md and results.csv")
    return 1 if failed or not (rows or hangs) else 0


if __name__ == "__main__":
    bl.tool_main(main)

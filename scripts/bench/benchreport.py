"""benchreport: what a benchmark run writes -- results.csv rows, the
machine facts (machine.json, machine.txt) and summary.md."""
import csv
import json
import os
import platform
import subprocess
import sys
import time

from benchenv import LBPROXY, LOAD_CPU, PROXY_CPU, ROOT


# ------------------------------------------------------------ results file

RESULT_FIELDS = [
    "scenario", "config", "kind", "mode", "conn_model", "run", "restart",
    "start_unix", "end_unix", "threads", "connections", "duration_s",
    "requests", "rps", "bytes", "mean_ms", "stdev_ms", "min_ms", "p50_ms",
    "p75_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "err_connect",
    "err_read", "err_write", "err_timeout", "err_status", "errors",
    "proxy_cpu_s", "proxy_cpu_us_per_req", "backends_cpu_s", "wrk_cpu_s",
    "load_cpu_busy", "idle_workers_pct", "wrk_raw", "wrk_json", "proxy_log",
]


def ms(us):
    """Microseconds (integer or float from wrk) as a millisecond string."""
    return f"{float(us) / 1000.0:.3f}"


def result_row(scen, cfg, run, start, end, summ, proxy_cpu, be_cpu,
               wrk_cpu, run_dir, raw, js, log_csv):
    e = summ["errors"]
    nerr = sum(e[k] for k in ("connect", "read", "write", "timeout",
                              "status"))
    req = summ["requests"]
    secs = summ["duration_us"] / 1e6
    rel = (lambda p: os.path.relpath(p, run_dir) if p else "")
    return {
        "scenario": scen.name, "config": cfg.name, "kind": cfg.kind,
        "mode": cfg.mode, "conn_model": cfg.conn_model, "run": run,
        "restart": scen.restart, "start_unix": f"{start:.3f}",
        "end_unix": f"{end:.3f}", "threads": scen.threads,
        "connections": scen.connections, "duration_s": f"{secs:.3f}",
        "requests": req, "rps": f"{summ['rps']:.3f}",
        "bytes": summ["bytes"],
        "mean_ms": ms(summ["mean_us"]), "stdev_ms": ms(summ["stdev_us"]),
        "min_ms": ms(summ["min_us"]), "p50_ms": ms(summ["p50_us"]),
        "p75_ms": ms(summ["p75_us"]), "p90_ms": ms(summ["p90_us"]),
        "p99_ms": ms(summ["p99_us"]), "p999_ms": ms(summ["p999_us"]),
        "max_ms": ms(summ["max_us"]),
        "err_connect": e["connect"], "err_read": e["read"],
        "err_write": e["write"], "err_timeout": e["timeout"],
        "err_status": e["status"], "errors": nerr,
        "proxy_cpu_s": f"{proxy_cpu:.2f}" if cfg.kind != "direct" else "",
        "proxy_cpu_us_per_req": (f"{proxy_cpu * 1e6 / req:.2f}"
                                 if cfg.kind != "direct" and req else ""),
        "backends_cpu_s": f"{be_cpu:.2f}", "wrk_cpu_s": f"{wrk_cpu:.2f}",
        "load_cpu_busy": f"{(be_cpu + wrk_cpu) / secs:.2f}" if secs else "",
        "idle_workers_pct": "",
        "wrk_raw": rel(raw), "wrk_json": rel(js), "proxy_log": rel(log_csv),
    }


class ResultsWriter:
    """results.csv, one row per configuration x run, flushed per row."""

    def __init__(self, path):
        self.f = open(path, "w", newline="")
        self.w = csv.DictWriter(self.f, RESULT_FIELDS)
        self.w.writeheader()
        self.f.flush()

    def add(self, row):
        self.w.writerow(row)
        self.f.flush()

    def close(self):
        self.f.close()


# ----------------------------------------------------------- machine facts

def _cmd(args):
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=10,
                           cwd=ROOT)
        return (r.stdout + r.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e})"


def machine_facts():
    """CPU, kernel, tool versions and lbproxy's git revision."""
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    rev = _cmd(["git", "rev-parse", "--short", "HEAD"])
    dirty = _cmd(["git", "status", "--porcelain", "--untracked-files=no"])
    facts = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "hostname": platform.node(),
        "cpu_model": model,
        "cpus_online": os.cpu_count(),
        "cpus_allowed": len(os.sched_getaffinity(0)),
        "kernel": " ".join(platform.uname()[2:4]),
        "loadavg": open("/proc/loadavg").read().strip(),
        "nginx": _cmd(["nginx", "-v"]).replace("nginx version: ", ""),
        "haproxy": _cmd(["haproxy", "-v"]).splitlines()[0],
        "wrk": _cmd(["wrk", "-v"]).splitlines()[0].split(" [")[0],
        "lbproxy_git": rev + (" (dirty tree)" if dirty else ""),
        "lbproxy_version": _cmd([LBPROXY, "--version"]).splitlines()[0]
        if os.path.exists(LBPROXY) else "missing",
        "python": sys.version.split()[0],
        "pinning": f"proxy CPU {PROXY_CPU}; wrk + backends CPU {LOAD_CPU}",
    }
    gov = "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"
    if os.path.exists(gov):
        facts["governor"] = open(gov).read().strip()
    return facts


def write_facts(run_dir, extra=None):
    facts = machine_facts()
    if extra:
        facts.update(extra)
    with open(os.path.join(run_dir, "machine.json"), "w") as f:
        json.dump(facts, f, indent=2)
        f.write("\n")
    with open(os.path.join(run_dir, "machine.txt"), "w") as f:
        for k, v in facts.items():
            f.write(f"{k}: {v}\n")
    return facts


def write_summary(out, text, t0, what="summary.md"):
    """Writes summary.md into the run directory and prints it, then where
    the results went and how long the run took (t0: time.monotonic())."""
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text)
    print()
    print(text, end="")
    print(f"written to {os.path.relpath(out, ROOT)}/{what} "
          f"({fmt_secs(time.monotonic() - t0)})")


def fmt_secs(s):
    s = int(round(s))
    return f"{s // 60}m{s % 60:02d}s"

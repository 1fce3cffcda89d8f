#!/usr/bin/python3
"""scaleout: two lbproxy instances behind an nftables numgen VIP against one
(`make scaleout`; docs/scale-out.md).

    scripts/bench/scaleout.py                 3 rounds of one and two
    DURATION=5 REPEAT=1 scripts/bench/scaleout.py

The network of tests/lib/netns.py (network namespaces: a client, a router
with the VIP and its numgen DNAT, one namespace per instance, the
backends), with the backends of a scenario (default config/scenarios/
capped.ini: three lbbackends whose --workers cap them at 1400 req/s in
all) on CPU 1, wrk from the client namespace at the VIP, also on CPU 1,
and the instances on CPU 0.  Configurations, alternated per round:

  one   one instance behind the VIP (the map holds only it)
  two   two instances behind the VIP, the same flags; numgen spreads wrk's
        connections over them and each balances on its own

Each instance: MODE (default adaptive_ewma), persistent, no CSV log.  The
figure: requests/s as a fraction of the scenario's capacity bound (sum of
workers / mean service time), the target two >= 0.95 x the bound; beside
it p99, errors and each instance's share of the requests.  Needs root,
`ip` and `nft`.  Writes results.csv and summary.md into
logs/bench/scaleout-<time>/.
"""
import argparse
import csv
import json
import os
import shutil
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "lib"))
import benchconf as bc  # noqa: E402
import benchlib as bl  # noqa: E402
import benchreport as br  # noqa: E402
import netns  # noqa: E402
from openbench import capacity  # noqa: E402

TARGET = 0.95
CONFIGS = {"one": 1, "two": 2}
FIELDS = br.RESULT_FIELDS + ["instances", "bound_rps", "of_bound",
                             "instance_requests"]


def stats_requests(net, i):
    """Instance i's total requests from its /api/stats (inside its
    namespace)."""
    s = net.socket(net.lbs[i])
    try:
        s.settimeout(5)
        s.connect(("127.0.0.1", 5002))
        s.sendall(b"GET /api/stats HTTP/1.1\r\nHost: a\r\n"
                  b"Connection: close\r\n\r\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    finally:
        s.close()
    body = data.split(b"\r\n\r\n", 1)[1]
    return json.loads(body)["total"]["requests"]


def start_backends(net, scen, out):
    procs = []
    for k, (bid, args) in enumerate(scen.backends):
        port = 8081 + k
        p = net.start(net.backends,
                      [bl.LBBACKEND, "--listen-address", netns.BACKENDS,
                       "--port", str(port), "--id", bid, "--seed",
                       str(1000 + k), "--quiet"] + args,
                      os.path.join(out, f"backend-{bid}.log"), bl.LOAD_CPU)
        net.wait_listen(net.backends, netns.BACKENDS, port, p)
        procs.append((bid, port, p))
    return procs


def start_instances(net, n, backends, mode, out, tag):
    procs = []
    for i in range(n):
        addr = netns.instance_addr(i)
        cmd = [bl.LBPROXY, "--config", "/dev/null", "--listen",
               f"{addr}:80", "--admin", "127.0.0.1:5002", "--log", "off",
               "--mode", mode, "--persistent"]
        for bid, port, _ in backends:
            cmd += ["--backend", f"{netns.BACKENDS}:{port},id={bid}"]
        p = net.start(net.lbs[i], cmd,
                      os.path.join(out, f"lb{i + 1}{tag}.log"), bl.PROXY_CPU)
        net.wait_listen(net.lbs[i], addr, 80, p)
        net.wait_listen(net.lbs[i], "127.0.0.1", 5002, p)
        procs.append(p)
    net.set_members(range(n))
    return procs


def one_run(net, name, k, scen, backends, mode, out, bound):
    n = CONFIGS[name]
    tag = f"-{name}-r{k}"
    lbs = start_instances(net, n, backends, mode, out, tag)
    wrk = ["ip", "netns", "exec", net.client]
    try:
        if scen.warmup:
            bl.run_wrk(80, scen, scen.warmup,
                       os.path.join(out, "wrk", f"warmup{tag}.txt"),
                       os.path.join(out, "wrk", f"warmup{tag}.json"),
                       host=netns.VIP, prefix=wrk)
        base = [stats_requests(net, i) for i in range(n)]
        be0 = sum(bl.tree_cpu_seconds(p.pid) for _, _, p in backends)
        px0 = sum(bl.tree_cpu_seconds(p.pid) for p in lbs)
        raw = os.path.join(out, "wrk", f"{name}{tag}.txt")
        js = os.path.join(out, "wrk", f"{name}{tag}.json")
        start = time.time()
        summ, wrk_cpu = bl.run_wrk(80, scen, scen.duration, raw, js,
                                   host=netns.VIP, prefix=wrk)
        end = time.time()
        px_cpu = sum(bl.tree_cpu_seconds(p.pid) for p in lbs) - px0
        be_cpu = sum(bl.tree_cpu_seconds(p.pid)
                     for _, _, p in backends) - be0
        per = [stats_requests(net, i) - base[i] for i in range(n)]
        dead = [i + 1 for i, p in enumerate(lbs) if p.poll() is not None]
        if dead:
            raise RuntimeError(f"instance(s) {dead} exited during the run")
    finally:
        for p in lbs:
            net.stop(p)
    cfg = bc.Config(name, "lbproxy", mode, True,
                    note=f"{n} instance(s) behind the nftables VIP")
    row = br.result_row(scen, cfg, k, start, end, summ, px_cpu, be_cpu,
                        wrk_cpu, out, raw, js, "")
    row.update({"instances": n, "bound_rps": f"{bound:.0f}",
                "of_bound": f"{float(row['rps']) / bound:.4f}",
                "instance_requests": " ".join(map(str, per))})
    return row


def _med(rows, key):
    return statistics.median(float(r[key]) for r in rows)


def table(rows, scen, mode, bound):
    head = ["configuration", "req/s", "x bound", "p99 ms", "errors",
            "requests per instance", "target"]
    lines = [
        f"scenario {scen.name} ({scen.description}); bound "
        f"{bound:.0f} req/s.  wrk -t{scen.threads} -c{scen.connections} "
        f"-d{scen.duration}s from the client namespace at the VIP "
        f"{netns.VIP}:80 (nftables numgen DNAT); lbproxy --mode {mode} "
        f"--persistent on CPU 0, wrk and backends on CPU 1; "
        f"{len({r['run'] for r in rows})} round(s), medians.", "",
        "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in CONFIGS:
        rs = [r for r in rows if r["config"] == name]
        if not rs:
            continue
        frac = _med(rs, "of_bound")
        verdict = "(reference)"
        if name == "two":
            verdict = ("met" if frac >= TARGET else "missed") + \
                f" (>= {TARGET:g} x bound)"
        shares = " / ".join(r["instance_requests"].replace(" ", "+")
                            for r in rs)
        lines.append("| " + " | ".join([
            name, f"{_med(rs, 'rps'):.0f}", f"{frac:.3f}",
            f"{_med(rs, 'p99_ms'):.1f}", f"{_med(rs, 'errors'):.0f}",
            shares, verdict]) + " |")
    one = [r for r in rows if r["config"] == "one"]
    two = [r for r in rows if r["config"] == "two"]
    if one and two:
        lines += ["", f"two / one: {_med(two, 'rps') / _med(one, 'rps'):.3f}"
                  " (requests/s, medians)"]
    return "\n".join(lines) + "\n"


def main(argv):
    env = os.environ
    ap = argparse.ArgumentParser(description="two lbproxy instances behind "
                                 "an nftables VIP against one")
    ap.add_argument("--scenario", default=os.path.join(
        bl.ROOT, "config", "scenarios", "capped.ini"))
    ap.add_argument("-d", "--duration", type=int,
                    default=int(env.get("DURATION") or 10))
    ap.add_argument("-r", "--rounds", type=int,
                    default=int(env.get("REPEAT") or 3))
    ap.add_argument("--mode", default=env.get("MODE") or "adaptive_ewma")
    ap.add_argument("--out", default=env.get("OUT", ""))
    args = ap.parse_args(argv)
    reason = netns.unavailable()
    if reason:
        raise SystemExit(f"scaleout: {reason}")
    for t in ("wrk", "taskset"):
        if not shutil.which(t):
            raise SystemExit(f"scaleout: {t} is missing")
    scen = bc.Scenario.load(args.scenario)
    scen.apply_env({k: env.get(k) for k in ("CONNS", "THREADS", "WARMUP")})
    scen.duration = args.duration
    bound = capacity(scen)
    if not bound:
        raise SystemExit(f"scaleout: {scen.name} has no capacity bound "
                         "(every backend needs --workers and a known "
                         "profile)")
    out = os.path.abspath(args.out or os.path.join(
        bl.ROOT, "logs", "bench",
        "scaleout-" + time.strftime("%Y%m%d-%H%M%S")))
    os.makedirs(out, exist_ok=True)
    br.write_facts(out, {"scaleout": " ".join(argv) or "defaults"})
    runs = len(CONFIGS) * args.rounds
    print(f"scaleout: {scen.name}, one and two instances x {args.rounds} "
          f"round(s), {args.duration}-s runs "
          f"(~{br.fmt_secs(runs * (args.duration + scen.warmup + 1))})",
          flush=True)
    t0 = time.monotonic()
    net = netns.Network(instances=max(CONFIGS.values()))
    rows = []
    try:
        backends = start_backends(net, scen, out)
        for k in range(1, args.rounds + 1):
            names = list(CONFIGS) if k % 2 else list(CONFIGS)[::-1]
            for name in names:
                r = one_run(net, name, k, scen, backends, args.mode, out,
                            bound)
                print(f"  {name} round {k}: {float(r['rps']):.0f} req/s "
                      f"({float(r['of_bound']):.3f} x bound), "
                      f"per instance {r['instance_requests']}", flush=True)
                rows.append(r)
    finally:
        net.close()
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        w.writerows(rows)
    br.write_summary(out, table(rows, scen, args.mode, bound), t0)
    return 0


if __name__ == "__main__":
    bl.tool_main(main)

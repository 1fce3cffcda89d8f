#!/usr/bin/python3
"""idlemem: resident memory per idle keep-alive client connection, lbproxy
against nginx and HAProxy (`make idlemem`).

    scripts/bench/idlemem.py                  N=10000, 3 rounds, every proxy
    scripts/bench/idlemem.py -n 200 -r 1      a quick look
    scripts/bench/idlemem.py --proxies lbproxy

Per proxy and round: three `lbbackend --profile fixed:0ms` backends and the
proxy start on free loopback ports (proxy pinned to CPU 0, backends and this
client to CPU 1); a warm-up connection sends a few requests, then the
proxy's VmRSS is read (before).  N client connections are opened, each sends
ONE keep-alive GET and reads its response (at most --window of them in
flight, like a wrk -c load, so that buffers borrowed per request are counted
at that concurrency, not N), then all N stay idle for --settle seconds and
VmRSS is read again (after, the median of three samples).  The figure is
(after - before) / N in KiB; every connection is checked to be still open
after the measurement.  For nginx the worker's RSS is measured (the master
does not hold client connections).  The kernel's socket memory is not in
RSS and not counted, for any proxy.

Proxies: lbproxy `--mode round-robin --persistent --log off --admin off`
(plus --set limits.max_clients above N), nginx and HAProxy as in the
benchmark (scripts/peers/*.in: worker_processes 1 / nbthread 1, upstream
keep-alive).  A peer that is not installed is skipped.  Rounds rotate the
order of the proxies; the table gives medians.  Everything this script
starts is stopped on exit, also on failure, timeout or Ctrl-C.
"""
import argparse
import csv
import os
import resource
import selectors
import shutil
import signal
import socket
import statistics
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchconf as bc  # noqa: E402
import benchlib as bl  # noqa: E402

PROXIES = ["lbproxy", "nginx", "haproxy"]
REQUEST = bl.GET_REQUEST
# Descriptors this process needs beyond its N client sockets.
FD_SPARE = 200


def rss_kib(pid):
    """VmRSS of pid in KiB, from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def measured_pid(kind, proc, deadline):
    """The process that holds the client connections: nginx's worker (the
    one child of the master), else the proxy itself."""
    if kind != "nginx":
        return proc.pid
    while time.monotonic() < deadline:
        kids = children(proc.pid)
        if kids:
            return kids[0]
        time.sleep(0.02)
    raise RuntimeError("nginx started no worker")


def warm_up(port, requests, deadline):
    """A few requests on one connection, so that first-use allocations and
    the upstream pool's first connections are in the 'before' figure."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        for _ in range(requests):
            s.sendall(REQUEST)
            st = bl.read_response(s, deadline)
            if st != 200:
                raise RuntimeError(f"warm-up answered {st}")


def open_connections(port, n, deadline):
    socks = []
    try:
        for _ in range(n):
            if time.monotonic() > deadline:
                raise bl.Timeout(f"opening connections ({len(socks)} of "
                                 f"{n})")
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            # Closed with an RST: no TIME_WAIT left behind by N sockets.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         struct.pack("ii", 1, 0))
            s.setblocking(False)
            socks.append(s)
    except BaseException:
        close_all(socks)
        raise
    return socks


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def one_get_each(socks, window, deadline):
    """Each socket sends one GET and reads its response, at most window in
    flight.  Returns the number of 200 answers."""
    sel = selectors.DefaultSelector()
    bufs = {}
    nxt = 0
    ok = 0
    done = 0

    def start(i):
        s = socks[i]
        if s.send(REQUEST) != len(REQUEST):
            raise RuntimeError("short send of a small request")
        bufs[s.fileno()] = b""
        sel.register(s, selectors.EVENT_READ, i)

    try:
        while nxt < len(socks) and nxt < window:
            start(nxt)
            nxt += 1
        while done < len(socks):
            left = deadline - time.monotonic()
            if left <= 0:
                raise bl.Timeout(f"requests ({done} of {len(socks)} "
                                 "answered)")
            for key, _ in sel.select(min(left, 1.0)):
                s = key.fileobj
                chunk = s.recv(65536)
                if not chunk:
                    raise RuntimeError("a connection closed before its "
                                       "response")
                bufs[s.fileno()] += chunk
                st = bl.response_done(bufs[s.fileno()])
                if not st:
                    continue
                sel.unregister(s)
                del bufs[s.fileno()]
                ok += st == 200
                done += 1
                if nxt < len(socks):
                    start(nxt)
                    nxt += 1
    finally:
        sel.close()
    return ok


def still_open(socks):
    """How many sockets have neither EOF nor stray data waiting."""
    sel = selectors.DefaultSelector()
    try:
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        ready = len(sel.select(0))
    finally:
        sel.close()
    return len(socks) - ready


def rss_settled(pid, settle):
    time.sleep(settle)
    samples = []
    for _ in range(3):
        samples.append(rss_kib(pid))
        time.sleep(0.2)
    return statistics.median(samples)


def proxy_config(kind, n):
    if kind == "lbproxy":
        base = bc.CONFIGS["lb-rr-p"]
        return bc.Config("lbproxy", "lbproxy", base.mode, True,
                         [f"limits.max_clients={n + 64}"])
    if kind == "nginx":
        return bc.CONFIGS["nginx-rr-ka"]
    return bc.CONFIGS["haproxy-rr-reuse"]


def capacity(kind, n):
    """(connections to open, HAProxy maxconn) for this proxy.  HAProxy
    refuses to start unless the open-file limit covers 2 x maxconn (a
    server socket per client one), so under a hard limit of 20000 it holds
    a little under 10000 idle connections: it is measured at that N."""
    if kind != "haproxy":
        return n, n + 64
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    maxconn = min(n + 64, (hard - 100) // 2)
    return min(n, maxconn - 16), maxconn


def measure(kind, n, args, backends, out, tag, deadline):
    """One proxy, one round: returns a dict of the figures."""
    n, maxconn = capacity(kind, n)
    cfg = proxy_config(kind, n)
    px = bl.start_proxy(cfg, backends, out, None, tag, maxconn=maxconn)
    socks = []
    try:
        pid = measured_pid(kind, px.proc, deadline)
        warm_up(px.port, args.warmup, deadline)
        before = rss_settled(pid, args.settle)
        t0 = time.monotonic()
        socks = open_connections(px.port, n, deadline)
        ok = one_get_each(socks, args.window, deadline)
        t_load = time.monotonic() - t0
        after = rss_settled(pid, args.settle)
        alive = still_open(socks)
        if not px.alive():
            raise RuntimeError(f"exited: {px.proc.tail()}")
        if ok != n or alive != n:
            raise RuntimeError(f"{ok} of {n} requests answered 200, "
                               f"{alive} of {n} connections still open")
        return {"proxy": kind, "n": n, "before_kib": before,
                "after_kib": after,
                "kib_per_conn": (after - before) / n, "load_s": t_load}
    finally:
        close_all(socks)
        px.stop()


def fd_budget(n):
    """Raises this process's soft open-file limit to the hard limit (the
    proxies inherit it) and checks that N client sockets fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    # The proxy holds N client sockets plus upstream ones; so does this
    # client (N sockets).  Each is one process, so each needs N + spare.
    if n + FD_SPARE > soft:
        raise SystemExit(f"idlemem: N={n} needs {n + FD_SPARE} open files "
                         f"per process; the hard limit is {hard} "
                         f"(use -n {max(1, soft - FD_SPARE)} or less)")


def table(rows, order, n, rounds, skipped):
    by = {}
    for r in rows:
        by.setdefault(r["proxy"], []).append(r)
    lines = [f"idlemem: N={n} idle keep-alive client connections, one GET "
             f"each, medians of {rounds} round(s); proxy on CPU "
             f"{bl.PROXY_CPU}, client + backends on CPU {bl.LOAD_CPU}", "",
             "| proxy | runs | N | RSS before MiB | RSS after MiB | "
             "KiB per idle connection | every run |",
             "|---|---|---|---|---|---|---|"]
    med = {}
    for kind in order:
        rs = by.get(kind, [])
        if not rs:
            why = skipped.get(kind, "failed, see the log above")
            lines.append(f"| {kind} | 0 | - | ({why}) ||||")
            continue
        med[kind] = statistics.median(r["kib_per_conn"] for r in rs)
        b = statistics.median(r["before_kib"] for r in rs) / 1024
        a = statistics.median(r["after_kib"] for r in rs) / 1024
        every = " ".join(f"{r['kib_per_conn']:.2f}" for r in rs)
        lines.append(f"| {kind} | {len(rs)} | {rs[0]['n']} | {b:.1f} | "
                     f"{a:.1f} | "
                     f"{med[kind]:.2f} | {every} |")
    ratios = [f"lbproxy / {peer} {med['lbproxy'] / med[peer]:.1f}x"
              for peer in ("nginx", "haproxy")
              if "lbproxy" in med and med.get(peer, 0) > 0]
    if ratios:
        lines += ["", "per idle connection: " + ", ".join(ratios)]
    return "\n".join(lines) + "\n", med


def main(argv):
    ap = argparse.ArgumentParser(
        description="KiB of proxy RSS per idle keep-alive connection")
    ap.add_argument("-n", "--conns", type=int,
                    default=int(os.environ.get("N", 10000)),
                    help="idle client connections (default 10000, env N)")
    ap.add_argument("-r", "--rounds", type=int,
                    default=int(os.environ.get("REPEAT", 3)),
                    help="rounds over the proxies (default 3, env REPEAT)")
    ap.add_argument("--proxies", default=os.environ.get("PROXIES", ""),
                    help="comma-separated subset of " + ",".join(PROXIES))
    ap.add_argument("--window", type=int, default=100,
                    help="requests in flight while the GETs run (100)")
    ap.add_argument("--warmup", type=int, default=20,
                    help="warm-up requests before 'before' (20)")
    ap.add_argument("--settle", type=float, default=1.0,
                    help="idle seconds before reading RSS (1.0)")
    ap.add_argument("--timeout", type=float, default=600,
                    help="bound on the whole run in seconds (600)")
    ap.add_argument("--out", default=os.environ.get("OUT", ""),
                    help="run directory (logs/bench/idlemem-<time>)")
    args = ap.parse_args(argv)
    if args.conns < 1 or args.rounds < 1 or args.window < 1:
        ap.error("-n, -r and --window must be positive")
    want = [p for p in args.proxies.replace(",", " ").split()] or PROXIES
    for p in want:
        if p not in PROXIES:
            ap.error(f"unknown proxy {p!r}")
    fd_budget(args.conns)
    for b in (bl.LBPROXY, bl.LBBACKEND):
        if not os.access(b, os.X_OK):
            raise SystemExit(f"idlemem: {b} is missing; run make first")
    if not shutil.which("taskset"):
        raise SystemExit("idlemem: taskset is missing (util-linux)")
    skipped = {p: "not installed" for p in want
               if p != "lbproxy" and not shutil.which(p)}
    order = [p for p in want if p not in skipped]
    for p, why in skipped.items():
        print(f"idlemem: skipping {p}: {why}", flush=True)

    out, deadline, scen = bl.tool_start("idlemem", args.out, "idlemem",
                                        args.timeout)
    rows = []
    failed = 0
    t0 = time.monotonic()
    try:
        backends = bl.start_backends(scen, out)
        for k in range(args.rounds):
            for kind in order[k % len(order):] + order[:k % len(order)]:
                try:
                    r = measure(kind, args.conns, args, backends, out,
                                f"-r{k + 1}", deadline)
                except (RuntimeError, OSError) as e:
                    failed += 1
                    print(f"round {k + 1} {kind:8s} FAILED: {e}", flush=True)
                    continue
                r["round"] = k + 1
                rows.append(r)
                print(f"round {k + 1} {kind:8s} N={r['n']}  before "
                      f"{r['before_kib'] / 1024:7.1f} MiB  after "
                      f"{r['after_kib'] / 1024:7.1f} MiB  "
                      f"{r['kib_per_conn']:6.2f} KiB/conn  (load "
                      f"{r['load_s']:.1f} s)", flush=True)
    except bl.Timeout as e:
        print(f"idlemem: timed out: {e}", file=sys.stderr)
        failed += 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        bl.Proc.stop_all()
    text, med = table(rows, order, args.conns, args.rounds, skipped)
    print()
    print(text, end="")
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text)
    fields = ["round", "proxy", "n", "before_kib", "after_kib",
              "kib_per_conn", "load_s"]
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{r[k]:.3f}" if isinstance(r[k], float)
                            else r[k]) for k in fields})
    print(f"written to {os.path.relpath(out, bl.ROOT)}/summary.md and "
          "results.csv "
          f"({time.monotonic() - t0:.0f} s)")
    return 1 if failed or not rows else 0


if __name__ == "__main__":
    bl.tool_main(main)

#!/usr/bin/python3
"""callgrind: user-space instructions per proxied request (`make callgrind`,
`make callgrind-np`).

    scripts/bench/callgrind.py                     persistent
    scripts/bench/callgrind.py --non-persistent    a connection per request
    scripts/bench/callgrind.py -r 3                three runs, the median

`./lbproxy --mode round-robin --persistent|--non-persistent --log off
--admin off` (`--log FILE` with --log) runs under `valgrind
--tool=callgrind` (pinned to CPU 0) in front of three `lbbackend --profile
fixed:0ms` backends (CPU 1, like this client).  The client opens --conns
keep-alive connections and sends --warmup requests, one at a time,
round-robin over the connections; then `callgrind_control --zero` clears
the counters, --requests more requests go the same way, and
`callgrind_control --dump` writes the counters of exactly that stretch.
instructions/request = the dump's Ir total / --requests: every user-space
instruction lbproxy and its libraries executed (the kernel's work is not
counted), including the event loop's share and any timer that fired
meanwhile.

--tls sends the requests over TLS 1.3 to lbproxy's TLS listener (an
ECDSA P-256 certificate made for the run), on keep-alive connections made
before the warm-up; with --tls-handshakes each request comes on a new
connection (`Connection: close`) whose handshake resumes the previous
one's session, so the figure is one resumed handshake and its request.

--workers N counts the master and every worker: callgrind_control
reaches only the process valgrind started, so each run is two whole runs,
start to SIGTERM, one serving --warmup + --requests requests and one the
warm-up alone; their difference over --requests is the figure (every
process's dump summed).

One request in flight at a time makes the count repeatable (the same
events in the same order every run; seconds are not).  --inflight keeps
one request per connection in flight instead, which lets epoll_wait return
several events at once, as under wrk.

Prints `instructions/request: N` and writes the dump, `callgrind_annotate`'s
top functions and the valgrind log into the run directory
(logs/bench/callgrind-<variant>-<time>/).  Everything it starts is stopped
on exit.
"""
import argparse
import glob
import os
import re
import selectors
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchconf as bc  # noqa: E402
import benchlib as bl  # noqa: E402


def callgrind_control(pid, what, timeout=30):
    r = subprocess.run(["callgrind_control", what, str(pid)],
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0 or "OK" not in r.stdout:
        raise RuntimeError(f"callgrind_control {what} {pid} failed: "
                           f"{(r.stdout + r.stderr).strip()}")


def dump_total(path):
    """The Ir total of one callgrind dump (its summary line)."""
    with open(path) as f:
        for line in f:
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError(f"{path}: no summary line")


def sequential(socks, count, deadline):
    """count requests, one at a time, round-robin over socks."""
    for i in range(count):
        s = socks[i % len(socks)]
        s.sendall(bl.GET_REQUEST)
        st = bl.read_response(s, deadline)
        if st != 200:
            raise RuntimeError(f"request {i} answered {st}")


def in_flight(socks, count, deadline):
    """count requests, one in flight on every connection."""
    sel = selectors.DefaultSelector()
    bufs = {}
    sent = done = 0
    try:
        for s in socks:
            if sent < count:
                s.sendall(bl.GET_REQUEST)
                sent += 1
                bufs[s] = b""
                sel.register(s, selectors.EVENT_READ)
        while done < count:
            if time.monotonic() > deadline:
                raise bl.Timeout(f"{done} of {count} answered")
            for key, _ in sel.select(1.0):
                s = key.fileobj
                chunk = s.recv(65536)
                if not chunk:
                    raise RuntimeError("connection closed by the proxy")
                bufs[s] += chunk
                st = bl.response_done(bufs[s])
                if not st:
                    continue
                if st != 200:
                    raise RuntimeError(f"a request answered {st}")
                done += 1
                bufs[s] = b""
                if sent < count:
                    s.sendall(bl.GET_REQUEST)
                    sent += 1
                else:
                    sel.unregister(s)
    finally:
        sel.close()


CLOSE_REQUEST = bl.GET_REQUEST.replace(b"\r\n\r\n",
                                      b"\r\nConnection: close\r\n\r\n")


def open_conns(port, n, tls=None):
    """n keep-alive client connections to the proxy (TCP_NODELAY), over
    TLS when tls is a client context."""
    out = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            s = tls.wrap_socket(s, server_hostname="localhost")
        out.append(s)
    return out


class Handshakes:
    """--tls-handshakes: each request on a new TLS connection with
    `Connection: close`, resuming the session the previous one left (as
    tlsbench's close load, whose wrk resumes); count() of them resumed."""

    def __init__(self, port, ctx):
        self.port, self.ctx, self.session, self.resumed = port, ctx, None, 0

    def __call__(self, socks, count, deadline):
        for i in range(count):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s = self.ctx.wrap_socket(s, server_hostname="localhost",
                                     session=self.session)
            try:
                s.sendall(CLOSE_REQUEST)
                st = bl.read_response(s, deadline)
                if st != 200:
                    raise RuntimeError(f"request {i} answered {st}")
                self.resumed += s.session_reused
                self.session = s.session  # its tickets came with the answer
            finally:
                s.close()


def tls_setup(args, d):
    """--tls: a certificate made for the run and a TLS 1.3 client context
    trusting it; (lbproxy flags, context), or ([], None) without."""
    if not args.tls:
        return [], None
    cert, key, _ = bl.bench_cert(d)
    ctx = ssl.create_default_context(cafile=cert)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ["--tls-cert", cert, "--tls-key", key, "--set",
            "tls.min_version=TLS1.3"], ctx


def start_proxy(args, backends, d, port, tls_flags=()):
    """lbproxy under callgrind, its dumps into d, once it listens (on its
    TLS listener, `port`, with tls_flags)."""
    mode = "--non-persistent" if args.non_persistent else "--persistent"
    cmd = ["valgrind", "--tool=callgrind",
           f"--callgrind-out-file={d}/callgrind.out.%p",
           bl.LBPROXY, "--listen",
           f"127.0.0.1:{bl.free_port() if tls_flags else port}", "--mode",
           "round-robin", mode, "--log",
           os.path.join(d, "lbproxy.csv") if args.log else "off",
           "--admin", "off"]
    for bid, p, _ in backends:
        cmd += ["--backend", f"127.0.0.1:{p},id={bid}"]
    if tls_flags:
        cmd += ["--tls-listen", f"127.0.0.1:{port}", *tls_flags]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    if args.routes:
        nroutes, npools = args.routes
        ini = os.path.join(d, "routes.ini")
        with open(ini, "w") as f:
            f.write(bc.routes_ini(nroutes, npools)(backends))
        cmd += ["--config", ini]
    cmd += args.proxy_arg
    px = bl.Proc(cmd, bl.PROXY_CPU, os.path.join(d, "valgrind.log"),
                 "lbproxy-callgrind")
    if not bl.wait_port(port, px, timeout=60):
        px.stop(timeout=30)
        raise RuntimeError(f"lbproxy under valgrind did not start: "
                           f"{px.tail()}")
    return px


def whole_run(args, backends, d, count, deadline):
    """--workers: one lbproxy (master and workers) under callgrind serving
    count requests, then SIGTERM; the Ir of every process's dump at exit
    (callgrind_control reaches only the master, not what it forked)."""
    os.makedirs(d, exist_ok=True)
    port = bl.free_port()
    px = start_proxy(args, backends, d, port)
    socks = []
    try:
        time.sleep(2)  # every worker up (wait_port saw the first)
        socks += open_conns(port, args.conns)
        (in_flight if args.inflight else sequential)(socks, count, deadline)
    finally:
        for s in socks:
            s.close()
        px.stop(timeout=60)
    dumps = glob.glob(f"{d}/callgrind.out.*")
    want = 1 + args.workers if args.workers > 1 else 1
    if len(dumps) != want:
        raise RuntimeError(f"expected {want} dumps, found {dumps}")
    return sum(dump_total(x) for x in dumps), max(dumps, key=dump_total)


def one_run_workers(args, backends, out, k, deadline):
    """The instructions of --requests requests with --workers N: a run
    serving warm-up + requests less one serving the warm-up alone, both
    from start to exit (what starting and stopping cost cancels)."""
    d = os.path.join(out, f"run{k}")
    base, _ = whole_run(args, backends, d + "-warmup", args.warmup, deadline)
    total, dump = whole_run(args, backends, d, args.warmup + args.requests,
                            deadline)
    print(f"run {k}: {total - base} instructions for {args.requests} "
          f"requests over {args.workers} workers and the master: "
          f"{(total - base) / args.requests:.0f} per request", flush=True)
    return total - base, dump


def one_run(args, backends, out, k, deadline):
    """One lbproxy under callgrind; returns (Ir total, dump path)."""
    if args.workers:
        return one_run_workers(args, backends, out, k, deadline)
    port = bl.free_port()
    d = os.path.join(out, f"run{k}")
    os.makedirs(d, exist_ok=True)
    tls_flags, ctx = tls_setup(args, d)
    px = start_proxy(args, backends, d, port, tls_flags)
    socks = []
    try:
        drive = in_flight if args.inflight else sequential
        if args.tls_handshakes:
            drive = Handshakes(port, ctx)
        else:
            socks += open_conns(port, args.conns, ctx)
        drive(socks, args.warmup, deadline)
        callgrind_control(px.pid, "--zero")
        t0 = time.monotonic()
        drive(socks, args.requests, deadline)
        secs = time.monotonic() - t0
        before = set(glob.glob(f"{d}/callgrind.out.{px.pid}.*"))
        callgrind_control(px.pid, "--dump")
        dumps = sorted(set(glob.glob(f"{d}/callgrind.out.{px.pid}.*"))
                       - before)
        if len(dumps) != 1:
            raise RuntimeError(f"expected one new dump, found {dumps}")
        total = dump_total(dumps[0])
        print(f"run {k}: {total} instructions for {args.requests} requests "
              f"({args.requests / secs:.0f} req/s under valgrind): "
              f"{total / args.requests:.0f} per request", flush=True)
        made = args.warmup + args.requests
        if args.tls_handshakes and drive.resumed < made - 1:
            raise RuntimeError(f"only {drive.resumed} of {made} handshakes "
                               "resumed")
        return total, dumps[0]
    finally:
        for s in socks:
            s.close()
        px.stop(timeout=30)


def annotate(dump, out_path, total, requests, top):
    """The `top` functions by self instructions, per request, from
    callgrind_annotate (written whole to out_path).  The functions on the
    stack when the counters were zeroed (main ... loop_run's caller) are
    listed with the whole total; they are left out."""
    r = subprocess.run(["callgrind_annotate", "--inclusive=no",
                        "--threshold=100", dump],
                       capture_output=True, text=True, timeout=60)
    with open(out_path, "w") as f:
        f.write(r.stdout)
    rows = []
    for line in r.stdout.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*([\d.]+)%\)\s+(\S.*)$", line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        ir = int(m.group(1).replace(",", ""))
        if ir >= total:
            continue
        where = m.group(3)
        fn = where.split(" [")[0].rsplit(":", 1)[-1]
        obj = os.path.basename(where.split(" [")[-1].rstrip("]"))
        rows.append(f"{ir / requests:8.0f}  {float(m.group(2)):5.1f}%  "
                    f"{fn}  ({obj})")
    return rows[:top]


def routes_arg(text):
    """--routes N,P: two counts, N = P = 0 or N >= P >= 2."""
    try:
        n, p = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("want N,P") from None
    if not (n == p == 0 or n >= p >= 2):
        raise argparse.ArgumentTypeError("want 0,0 or N >= P >= 2")
    return n, p


def main(argv):
    ap = argparse.ArgumentParser(
        description="user-space instructions per request (callgrind)")
    ap.add_argument("--non-persistent", action="store_true",
                    help="lbproxy --non-persistent (default --persistent)")
    ap.add_argument("-n", "--requests", type=int, default=2000,
                    help="measured requests (2000)")
    ap.add_argument("--warmup", type=int, default=200,
                    help="requests before the counters are zeroed (200)")
    ap.add_argument("-c", "--conns", type=int, default=4,
                    help="keep-alive client connections (4)")
    ap.add_argument("--log", action="store_true",
                    help="lbproxy --log FILE (in the run directory) instead "
                    "of --log off: the CSV log's user-space cost")
    ap.add_argument("--inflight", action="store_true",
                    help="one request in flight per connection, not one "
                    "in all")
    ap.add_argument("-r", "--runs", type=int,
                    default=int(os.environ.get("REPEAT", 1)),
                    help="runs; the median is reported (1, env REPEAT)")
    ap.add_argument("--proxy-arg", action="append", default=[],
                    metavar="FLAG",
                    help="one more lbproxy flag (repeatable), e.g. "
                    "--proxy-arg=--request-id=false")
    ap.add_argument("--workers", type=int, default=0,
                    help="lbproxy --workers N: every process counted, by "
                    "the difference of two whole runs (0: one process, "
                    "zeroed and dumped around the measured requests)")
    ap.add_argument("--routes", type=routes_arg, default=None,
                    metavar="N,P",
                    help="every request through the route table: N host "
                    "routes over P pools as in quickbench's "
                    "lb-rr-p-routes1k (1000,100), or 0,0 for one host-less "
                    "route (lb-rr-p-route1)")
    ap.add_argument("--tls", action="store_true",
                    help="the client connections over TLS 1.3 (lbproxy's "
                    "TLS listener, an ECDSA P-256 certificate made for the "
                    "run)")
    ap.add_argument("--tls-handshakes", action="store_true",
                    help="with --tls: each request on a new connection "
                    "(Connection: close) whose handshake resumes the "
                    "previous one's session, as tlsbench's close load")
    ap.add_argument("--top", type=int, default=12,
                    help="functions listed from the last run (12)")
    ap.add_argument("--timeout", type=float, default=600,
                    help="bound on the whole run in seconds (600)")
    ap.add_argument("--out", default=os.environ.get("OUT", ""),
                    help="run directory (logs/bench/callgrind-<time>)")
    args = ap.parse_args(argv)
    if min(args.requests, args.conns, args.runs) < 1 or args.warmup < 0:
        ap.error("--requests, --conns and --runs must be positive")
    if args.tls_handshakes and (not args.tls or args.inflight):
        ap.error("--tls-handshakes needs --tls and not --inflight")
    if args.tls and args.workers:
        ap.error("--tls is measured with one process (no --workers)")
    for t in ("valgrind", "callgrind_control", "taskset"):
        if not shutil.which(t):
            raise SystemExit(f"callgrind: {t} is missing (apt-get install "
                             "valgrind util-linux)")
    for b in (bl.LBPROXY, bl.LBBACKEND):
        if not os.access(b, os.X_OK):
            raise SystemExit(f"callgrind: {b} is missing; run make first")
    variant = "non-persistent" if args.non_persistent else "persistent"
    if args.log:
        variant += "-log"
    if args.workers:
        variant += f"-workers{args.workers}"
    if args.routes:
        variant += "-routes{}x{}".format(*args.routes)
    if args.tls:
        variant += "-tls-handshakes" if args.tls_handshakes else "-tls"
    out, deadline, scen = bl.tool_start("callgrind", args.out,
                                        f"callgrind-{variant}", args.timeout)
    totals = []
    dump = None
    print(f"callgrind: lbproxy round-robin {variant}, {args.conns} "
          f"connection(s), {args.warmup} warm-up + {args.requests} measured "
          f"requests, {'one per connection' if args.inflight else 'one'} "
          f"in flight, {args.runs} run(s)", flush=True)
    try:
        backends = bl.start_backends(scen, out)
        for k in range(1, args.runs + 1):
            total, dump = one_run(args, backends, out, k, deadline)
            totals.append(total)
    except (RuntimeError, OSError, bl.Timeout) as e:
        print(f"callgrind: failed: {e}", file=sys.stderr)
        return 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        bl.Proc.stop_all()
    per = [t / args.requests for t in totals]
    top = annotate(dump, os.path.join(out, "annotate.txt"), totals[-1],
                   args.requests, args.top)
    if top:
        print("\ntop functions, last run (self instructions per request, "
              "share):")
        for line in top:
            print("  " + line)
    if len(per) > 1:
        print("\nruns: " + ", ".join(f"{p:.0f}" for p in per))
    text = (f"lbproxy round-robin {variant}, {args.requests} requests on "
            f"{args.conns} connection(s)\n"
            f"instructions/request: {statistics.median(per):.0f}\n")
    with open(os.path.join(out, "summary.txt"), "w") as f:
        f.write(text)
    print(f"\nwritten to {os.path.relpath(out, bl.ROOT)}/")
    print(f"instructions/request: {statistics.median(per):.0f}")
    return 0


if __name__ == "__main__":
    bl.tool_main(main)

#!/usr/bin/python3
"""tlsidle: resident memory per idle TLS client connection of lbproxy
(`make tlsidle`), beside the same figure for plain connections in the same
run.

    scripts/bench/tlsidle.py               N=5000
    scripts/bench/tlsidle.py -n 200        a quick look

One `lbbackend --profile fixed:0ms` and lbproxy (`--config /dev/null`,
round-robin, persistent, log and admin off, TLS on a second listener with
an ECDSA P-256 certificate made for the run) start on free loopback ports,
lbproxy pinned to CPU 0 and this client to CPU 1.  For each listener,
plain then TLS: a warm-up connection sends a few requests, VmRSS is read
(before), N connections are opened (TLS: a full TLS 1.3 handshake each,
no resumption), each sends ONE keep-alive GET and reads its 200, then all
stay idle for --settle seconds and VmRSS is read again (the median of
three samples).  The figure is (after - before) / N in KiB; the plain
connections are closed before the TLS ones open.  Then nginx and HAProxy
(--peers; tlsbench.py's configurations, same certificate, one worker;
nginx's worker is measured) serve the same N idle TLS connections.  The kernel's socket
memory is not in RSS and not counted.  Everything started is stopped on
exit.
"""
import argparse
import os
import resource
import shutil
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from idlemem import measured_pid, rss_settled  # noqa: E402
from tlsbench import start as start_peer  # noqa: E402

REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"


def read_200(s):
    buf = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("closed before the response")
        buf += chunk
        st = bl.response_done(buf)
        if st:
            if st != 200:
                raise RuntimeError(f"answered {st}")
            return


def connect(port, ctx):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    if ctx:
        s = ctx.wrap_socket(s, server_hostname="localhost")
    s.sendall(REQUEST)
    read_200(s)
    return s


def measure(pid, port, ctx, n, settle):
    w = connect(port, ctx)
    for _ in range(3):
        w.sendall(REQUEST)
        read_200(w)
    before = rss_settled(pid, settle)
    socks = []
    try:
        t0 = time.monotonic()
        for _ in range(n):
            socks.append(connect(port, ctx))
        took = time.monotonic() - t0
        after = rss_settled(pid, settle)
        alive = sum(1 for s in socks if s.fileno() >= 0)
    finally:
        for s in socks:
            s.close()
        w.close()
    return before, after, took, alive


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=5000)
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--peers", default="nginx,haproxy")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < a.n + 200:
        sys.exit(f"tlsidle: open-file limit {hard} < {a.n + 200}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    out = os.path.abspath(a.out or os.path.join(
        bl.ROOT, "logs", "bench", "tlsidle-" + time.strftime("%Y%m%d-%H%M%S")))
    os.makedirs(out, exist_ok=True)
    os.sched_setaffinity(0, {int(bl.LOAD_CPU)})
    cert, key, pem = bl.bench_cert(out)
    ctx = ssl.create_default_context(cafile=cert)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    rows = []
    try:
        bport, port, tport = bl.free_port(), bl.free_port(), bl.free_port()
        be = bl.Proc([bl.LBBACKEND, "--port", str(bport), "--profile",
                      "fixed:0ms", "--quiet"], bl.LOAD_CPU,
                     os.path.join(out, "backend.log"), "backend")
        bl.wait_port(bport, be)
        px = bl.Proc([bl.LBPROXY, "--config", "/dev/null", "--listen",
                      f"127.0.0.1:{port}", "--backend", f"127.0.0.1:{bport}",
                      "--admin", "off", "--log", "off", "--tls-listen",
                      f"127.0.0.1:{tport}", "--tls-cert", cert, "--tls-key",
                      key, "--set", f"limits.max_clients={2 * a.n + 64}"],
                     bl.PROXY_CPU, os.path.join(out, "lbproxy.log"),
                     "lbproxy")
        bl.wait_port(port, px)
        for name, p, c in (("lbproxy plain", port, None),
                           ("lbproxy tls", tport, ctx)):
            rows.append((name,) + measure(px.pid, p, c, a.n, a.settle))
        px.stop()
        # the peers with the same certificate (tlsbench's configurations)
        for kind in [k for k in a.peers.split(",") if k and shutil.which(k)]:
            pport = bl.free_port()
            pp = start_peer(kind, pport, [("A", bport, be)],
                            (cert, key, pem), True, out)
            pid = measured_pid(kind, pp, time.monotonic() + 10)
            rows.append((f"{kind} tls",) + measure(pid, pport, ctx, a.n,
                                                   a.settle))
            pp.stop()
        print("| connections | N | RSS before KiB | after KiB | KiB per "
              "connection | open time s |")
        print("|---|---|---|---|---|---|")
        for name, before, after, took, alive in rows:
            print(f"| {name} | {alive} | {before:.0f} | {after:.0f} | "
                  f"{(after - before) / a.n:.2f} | {took:.1f} |")
    finally:
        bl.Proc.stop_all()
    return 0


if __name__ == "__main__":
    bl.tool_main(main)

#!/usr/bin/python3
"""tunnelbench: two figures of WebSocket tunnels through lbproxy, against
./lbbackend's /ws?flood=N (the backend sends N bytes of frames).

    scripts/tunnelbench.py mem [N]          (default 100)
        N tunnels whose clients read nothing while the backend floods
        them: waits until the backend's sends stall (every buffer on the
        way is full) and prints lbproxy's RSS growth per tunnel - with the
        backpressure rule, the two buffers of the stalled direction plus
        the request state, whatever the backend would send.
    scripts/tunnelbench.py throughput [RUNS]  (default 5)
        1 GiB from the backend to one client, through lbproxy and through
        the blind L4 relay (build/bench/relay, `make relay`: the kernel
        floor), alternated; lbproxy and the relay on CPU 0, the backend and
        the client on CPU 1; prints each run and the medians in MiB/s.

Starts its own processes on free loopback ports and stops them at the end.
"""
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
from lbtest import free_port, rss_kb, wait_port  # noqa: E402
from wsclient import OP_TEXT, WebSocket  # noqa: E402

LBPROXY = os.path.join(ROOT, "lbproxy")
LBBACKEND = os.path.join(ROOT, "lbbackend")
RELAY = os.path.join(ROOT, "build", "bench", "relay")


def start(procs, args, port):
    procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL))
    wait_port(port, proc=procs[-1])
    return procs[-1]


def lbproxy_args(port, backend):
    return [LBPROXY, "--listen", f"127.0.0.1:{port}", "--admin", "off",
            "--log", "off", "--backend", f"127.0.0.1:{backend}"]


def mem(n):
    bp, pp = free_port(), free_port()
    procs = []
    try:
        start(procs, [LBBACKEND, "--port", str(bp)], bp)
        px = start(procs, lbproxy_args(pp, bp), pp)
        with WebSocket(pp) as ws:
            ws.handshake()
            ws.send(OP_TEXT, b"warm-up")
            ws.recv()
        time.sleep(0.3)
        rss0 = rss_kb(px.pid)
        tunnels = []
        for _ in range(n):
            ws = WebSocket(pp, rcvbuf=4096)
            ws.handshake(path="/ws?flood=1000000000")
            tunnels.append(ws)
        last = -1
        for _ in range(120):  # until the backend's sends stall
            time.sleep(1)
            with urllib.request.urlopen(f"http://127.0.0.1:{bp}/stats") as r:
                out = json.loads(r.read())["bytes_out"]
            if out - last < 4096:
                break
            last = out
        rss1 = rss_kb(px.pid)
        print(f"{n} stalled flooding tunnels: the backend sent "
              f"{out / 2**20:.1f} MiB into kernel buffers, lbproxy RSS "
              f"{rss0} -> {rss1} KiB, +{(rss1 - rss0) / n:.1f} KiB per "
              f"tunnel")
        for ws in tunnels:
            ws.close()
    finally:
        for p in procs:
            p.kill()
            p.wait()


def receive(port, n):
    """MiB/s of one /ws?flood=n read in big chunks (frames not parsed)."""
    ws = WebSocket(port, timeout=30)
    ws.handshake(path=f"/ws?flood={n}")
    want = n + (n // 8192) * 4  # payload and 4-byte frame heads
    got, buf = len(ws.buf), bytearray(1 << 20)
    t0 = time.monotonic()
    while got < want:
        k = ws.sock.recv_into(buf)
        if not k:
            raise EOFError(f"closed after {got} of {want} bytes")
        got += k
    dt = time.monotonic() - t0
    ws.close()
    return got / dt / 2**20


def throughput(runs):
    if not os.access(RELAY, os.X_OK):
        sys.exit(f"{RELAY} is missing: run `make relay`")
    bp, pp, rp = free_port(), free_port(), free_port()
    procs = []
    try:
        start(procs, ["taskset", "-c", "1", LBBACKEND, "--port", str(bp)], bp)
        start(procs, ["taskset", "-c", "0", *lbproxy_args(pp, bp)], pp)
        start(procs, ["taskset", "-c", "0", RELAY, str(rp), str(bp)], rp)
        os.sched_setaffinity(0, {1})
        res = {"relay": [], "lbproxy": []}
        for _ in range(runs):
            res["relay"].append(receive(rp, 1 << 30))
            res["lbproxy"].append(receive(pp, 1 << 30))
        for name, v in res.items():
            print(f"{name:8s} " + " ".join(f"{x:5.0f}" for x in v) +
                  f"   median {statistics.median(v):.0f} MiB/s")
        print(f"ratio lbproxy/relay (medians): "
              f"{statistics.median(res['lbproxy']) / statistics.median(res['relay']):.2f}")
    finally:
        for p in procs:
            p.kill()
            p.wait()


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else "mem"
    arg = int(sys.argv[2]) if len(sys.argv) > 2 else None
    if what == "mem":
        mem(arg or 100)
    elif what == "throughput":
        throughput(arg or 5)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

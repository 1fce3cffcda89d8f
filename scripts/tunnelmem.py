#!/usr/bin/python3
"""tunnelmem: lbproxy's memory with N WebSocket tunnels whose client reads
nothing while the backend floods it (lbbackend /ws?flood=N).

Starts one ./lbbackend and ./lbproxy on free loopback ports, opens one
tunnel to warm up, then N stalled ones, waits until the backend's sends
stop (every buffer on the way is full), and prints lbproxy's RSS growth per
tunnel: with the backpressure rule it is the two buffers of the stalled
direction plus the request state, whatever the backend would send.

    scripts/tunnelmem.py [N]        (default 100)
"""
import json
import os
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
from lbtest import free_port, rss_kb, wait_port  # noqa: E402
from wsclient import OP_TEXT, WebSocket  # noqa: E402


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    bp, pp = free_port(), free_port()
    procs = []
    try:
        procs.append(subprocess.Popen([os.path.join(ROOT, "lbbackend"),
                                       "--port", str(bp)],
                                      stdout=subprocess.DEVNULL))
        wait_port(bp, proc=procs[-1])
        procs.append(subprocess.Popen(
            [os.path.join(ROOT, "lbproxy"), "--listen", f"127.0.0.1:{pp}",
             "--admin", "off", "--log", "off",
             "--backend", f"127.0.0.1:{bp}"], stderr=subprocess.DEVNULL))
        px = procs[-1]
        wait_port(pp, proc=px)
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


if __name__ == "__main__":
    main()

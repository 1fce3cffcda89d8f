#!/usr/bin/python3
"""Benchmark (by hand, not a test): throughput of normal traffic through
lbproxy with and without a crowd of slow-header (slowloris) connections.

Starts one lbbackend and lbproxy (pinned to CPU 0; wrk, the backend and the
slow clients on CPU 1), then alternates wrk runs without and with SLOW
connections that each trickle one header byte every second, ROUNDS times,
and reports the median requests/s of each and their ratio.

usage: scripts/slowloris_bench.py [--slow 5000] [--seconds 5] [--rounds 3]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
# Helpers shared with the e2e tests (tests/lib/, not tests/e2e/).
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
from lbtest import SlowClients, free_port, wait_port  # noqa: E402


def wrk(port, seconds):
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c32",
                          f"-d{seconds}s", f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock_errs = re.search(r"Socket errors: (.*)", out)
    return float(m.group(1)), (errs.group(1) if errs else "0"), \
        (sock_errs.group(1) if sock_errs else "none")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--slow", type=int, default=5000)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    bport, pport = free_port(), free_port()
    procs = []
    try:
        procs.append(subprocess.Popen(
            ["taskset", "-c", "1", os.path.join(ROOT, "lbbackend"),
             "--port", str(bport), "--quiet"]))
        wait_port(bport)
        procs.append(subprocess.Popen(
            ["taskset", "-c", "0", os.path.join(ROOT, "lbproxy"),
             "--config", "/dev/null", "--listen", f"127.0.0.1:{pport}",
             "--admin", "off", "--log", "off", "--persistent",
             "--backend", f"127.0.0.1:{bport}",
             "--set", "timeouts.client_header_ms=600000",
             "--set", "limits.max_clients=20000"]))
        wait_port(pport)
        os.sched_setaffinity(0, {1})
        wrk(pport, 1)  # warm-up
        base, crowd = [], []
        for r in range(a.rounds):
            rps, non2xx, serr = wrk(pport, a.seconds)
            base.append(rps)
            print(f"round {r}: without slow clients {rps:9.0f} req/s "
                  f"(non-2xx {non2xx}, socket errors {serr})", flush=True)
            t0 = time.monotonic()
            sc = SlowClients(pport, a.slow)
            opened = time.monotonic() - t0
            stop = threading.Event()

            def trickle():
                while not stop.wait(1.0):
                    sc.trickle()
                    sc.poll(0)
            th = threading.Thread(target=trickle, daemon=True)
            th.start()
            rps, non2xx, serr = wrk(pport, a.seconds)
            crowd.append(rps)
            stop.set()
            th.join()
            alive = a.slow - sc.nclosed()
            sc.close()
            print(f"round {r}: with {a.slow} slow clients ({alive} still "
                  f"open, opened in {opened:.1f}s) {rps:9.0f} req/s "
                  f"(non-2xx {non2xx}, socket errors {serr})", flush=True)
        mb, mc = statistics.median(base), statistics.median(crowd)
        print(f"median without {mb:.0f} req/s, with {mc:.0f} req/s, "
              f"ratio {mc / mb:.2f}")
    finally:
        for p in procs:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""A stand-in for lbproxy's admin listener, for developing the dashboard.

Development aid only: the browser test runs against the real lbproxy.  It
follows the admin JSON contract (docs/dashboard.md): GET / and dashboard
files, /vendor/<pkg>/<path> from node_modules, /api/stats, /api/stream (SSE,
one `stats` event a second), /logs/?format=json and /logs/NAME.csv.  Three
simulated backends A, B, C (C gets ejected now and then).

    /usr/bin/python3 tests/browser/mock_admin.py --port 5002 [--logs-dir DIR]
"""
import argparse
import json
import math
import os
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MIME = {".html": "text/html; charset=utf-8", ".js": "text/javascript",
        ".mjs": "text/javascript", ".css": "text/css", ".json":
        "application/json", ".png": "image/png", ".svg": "image/svg+xml",
        ".csv": "text/csv; charset=utf-8"}
IDS = ["A", "B", "C"]
BASE_MS = {"A": 2.0, "B": 5.0, "C": 9.0}


class Sim:
    """Per-second fake traffic for three backends, 60 s of history."""

    def __init__(self):
        self.lock = threading.Lock()
        self.start = time.time()
        self.hist = []          # list of (t, {id: (req, err, p50, p99, score)})
        self.total_req = {i: 0 for i in IDS}
        self.total_err = {i: 0 for i in IDS}
        self.health = {i: "up" for i in IDS}
        now = int(time.time())
        for t in range(now - 60, now):
            self._tick(t)

    def _tick(self, t):
        phase = (t % 90)
        self.health["C"] = "ejected" if 40 <= phase < 48 else (
            "probing" if phase == 48 else "up")
        row = {}
        load = 900 + 300 * math.sin(t / 15.0)
        weights = {i: 1.0 / BASE_MS[i] for i in IDS}
        if self.health["C"] != "up":
            weights["C"] = 0.0
        s = sum(weights.values())
        for i in IDS:
            n = int(load * weights[i] / s * random.uniform(0.9, 1.1))
            err = random.randint(0, 2) if i == "C" and phase in (38, 39) else 0
            p50 = BASE_MS[i] * random.uniform(0.9, 1.2) if n else 0.0
            p99 = p50 * random.uniform(2.0, 3.5) if n else 0.0
            score = BASE_MS[i] * random.uniform(0.8, 1.3)
            row[i] = (n, err, p50, p99, score)
            self.total_req[i] += n
            self.total_err[i] += err
        self.hist.append((t, row))
        self.hist = self.hist[-60:]

    def advance(self):
        with self.lock:
            now = int(time.time())
            while self.hist[-1][0] < now - 1:
                self._tick(self.hist[-1][0] + 1)

    def snapshot(self, mode):
        self.advance()
        with self.lock:
            last = self.hist[-10:]
            bks = []
            tot_rps = 0.0
            for k, i in enumerate(IDS):
                rps = sum(r[i][0] for _, r in last) / len(last)
                tot_rps += rps
                p50 = last[-1][1][i][2]
                p99 = last[-1][1][i][3]
                bks.append({
                    "index": k, "id": i, "address": "127.0.0.1:%d" % (8081 + k),
                    "weight": 1, "health": self.health[i],
                    "reason": "" if self.health[i] == "up" else
                    "3 consecutive connect errors",
                    "in_flight": random.randint(0, 4),
                    "pool_idle": random.randint(2, 8),
                    "score": last[-1][1][i][4], "requests": self.total_req[i],
                    "rps": rps,
                    "errors": {"total": self.total_err[i],
                               "http_5xx": 0, "connect": self.total_err[i],
                               "timeout": 0, "reset": 0, "bad_response": 0},
                    "bytes_in": self.total_req[i] * 80,
                    "bytes_out": self.total_req[i] * 200,
                    "latency_ms": {"mean": p50 * 1.1, "p50": p50,
                                   "p90": p99 * 0.7, "p99": p99,
                                   "p999": p99 * 1.5},
                    "last_second": {"requests": last[-1][1][i][0],
                                    "errors": last[-1][1][i][1],
                                    "p50_ms": p50, "p99_ms": p99}})
            hist = {"t": [t for t, _ in self.hist]}
            for key, col in (("requests", 0), ("errors", 1), ("p50_ms", 2),
                             ("p99_ms", 3), ("score", 4)):
                hist[key] = {i: [r[i][col] for _, r in self.hist] for i in IDS}
            treq = sum(self.total_req.values())
            terr = sum(self.total_err.values())
            return {
                "version": "0.1.0", "mode": mode, "persistent": True,
                "time": time.time(), "uptime_s": time.time() - self.start,
                "window_s": 10,
                "total": {"requests": treq, "errors": terr, "rps": tot_rps,
                          "in_flight": sum(b["in_flight"] for b in bks),
                          "bytes_in": treq * 80, "bytes_out": treq * 200,
                          "latency_ms": {"mean": 5.0, "p50": 4.0, "p90": 9.0,
                                         "p99": 20.0, "p999": 30.0}},
                "backends": bks, "history": hist}


def write_sample_csv(path, seconds=120):
    """A CSV log in the contract's columns, for the CSV view."""
    cols = ("timestamp,client,method,path,backend_id,backend_addr,status,"
            "req_bytes,resp_bytes,connect_ms,ttfb_ms,upstream_ms,total_ms,"
            "reused,mode,conn_model,retries,error")
    t0 = int(time.time()) - seconds - 5
    with open(path, "w") as f:
        f.write(cols + "\n")
        for s in range(seconds):
            for k, i in enumerate(IDS):
                for _ in range(int(200 / BASE_MS[i])):
                    us = random.randint(0, 999999)
                    ts = time.strftime("%Y-%m-%dT%H:%M:%S",
                                       time.gmtime(t0 + s)) + ".%06dZ" % us
                    up = BASE_MS[i] * random.lognormvariate(0, 0.4)
                    err = "timeout" if random.random() < 0.002 else ""
                    st = 504 if err else 200
                    f.write("%s,127.0.0.1:4000%d,GET,/,%s,127.0.0.1:%d,%d,"
                            "78,210,,%.3f,%.3f,%.3f,1,adaptive_ewma,"
                            "persistent,0,%s\n" % (ts, k, i, 8081 + k, st,
                                                   up * 0.8, up, up + 0.05,
                                                   err))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sim = None
    logs_dir = None
    mode = "adaptive_ewma"

    def log_message(self, fmt, *args):
        pass

    def send_body(self, code, ctype, body):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def send_file(self, path):
        if not os.path.isfile(path):
            self.send_body(404, "text/plain", b"not found\n")
            return
        with open(path, "rb") as f:
            body = f.read()
        ext = os.path.splitext(path)[1]
        self.send_body(200, MIME.get(ext, "application/octet-stream"), body)

    def do_GET(self):
        url = urlsplit(self.path)
        p = url.path
        if ".." in p:
            self.send_body(400, "text/plain", b"bad path\n")
        elif p == "/api/stats":
            body = json.dumps(self.sim.snapshot(self.mode)).encode()
            self.send_body(200, "application/json", body)
        elif p == "/api/stream":
            self.stream()
        elif p == "/logs/" and parse_qs(url.query).get("format") == ["json"]:
            out = []
            for n in sorted(os.listdir(self.logs_dir)):
                fp = os.path.join(self.logs_dir, n)
                if n.endswith(".csv") and os.path.isfile(fp):
                    st = os.stat(fp)
                    out.append({"name": n, "size": st.st_size,
                                "mtime": int(st.st_mtime)})
            self.send_body(200, "application/json", json.dumps(out).encode())
        elif p.startswith("/logs/"):
            self.send_file(os.path.join(self.logs_dir, p[len("/logs/"):]))
        elif p.startswith("/vendor/"):
            self.send_file(os.path.join(ROOT, "node_modules",
                                        p[len("/vendor/"):]))
        else:
            name = "index.html" if p == "/" else p.lstrip("/")
            self.send_file(os.path.join(ROOT, "dashboard", name))

    def stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            while True:
                data = json.dumps(self.sim.snapshot(self.mode))
                self.wfile.write(b"event: stats\ndata: " + data.encode() +
                                 b"\n\n")
                self.wfile.flush()
                time.sleep(1.0)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=5002)
    ap.add_argument("--logs-dir", default=None)
    args = ap.parse_args()
    logs = args.logs_dir or os.path.join(ROOT, "logs", "mock")
    os.makedirs(logs, exist_ok=True)
    sample = os.path.join(logs, "mock_adaptive_ewma_persistent.csv")
    if not os.path.exists(sample):
        write_sample_csv(sample)
    Handler.sim = Sim()
    Handler.logs_dir = logs
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    print("mock admin on http://127.0.0.1:%d/ (logs: %s)" % (args.port, logs),
          file=sys.stderr)
    srv.serve_forever()


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""A stand-in for lbproxy's admin listener, for developing the dashboard.

Development aid only: the browser test runs against the real lbproxy.  It
follows the admin JSON contract (docs/dashboard.md): GET / and dashboard
files, /vendor/<pkg>/<path> from node_modules, /api/stats, /api/stream (SSE,
one `stats` event a second), /logs/?format=json and /logs/NAME.csv.  Three
simulated backends A, B, C (C gets ejected now and then); with --pools, two
pools that both have an A: default (A, B; adaptive_ewma, persistent) and api
(A, C; least-conn, non-persistent), keyed default/A … as lbproxy does.

    /usr/bin/python3 tests/browser/mock_admin.py --port 5002 [--logs-dir DIR]
                                                 [--pools]
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
# (pool, id, base latency in ms); a backend's key is its id with one pool,
# pool/id with several
ONE_POOL = [("default", "A", 2.0), ("default", "B", 5.0),
            ("default", "C", 9.0)]
TWO_POOLS = [("default", "A", 2.0), ("default", "B", 5.0),
             ("api", "A", 3.0), ("api", "C", 9.0)]
POOL_MODES = {"default": ("adaptive_ewma", True),
              "api": ("least-conn", False)}


def keyed(backends):
    """{key: (pool, id, base_ms)} in configuration order."""
    named = any(p != "default" for p, _, _ in backends)
    return {("%s/%s" % (p, i) if named else i): (p, i, ms)
            for p, i, ms in backends}


class Sim:
    """Per-second fake traffic for the backends, 60 s of history."""

    def __init__(self, backends=ONE_POOL):
        self.lock = threading.Lock()
        self.start = time.time()
        self.bk = keyed(backends)
        self.keys = list(self.bk)
        self.hist = []          # list of (t, {key: (req, err, p50, p99, score)})
        self.total_req = {i: 0 for i in self.keys}
        self.total_err = {i: 0 for i in self.keys}
        self.health = {i: "up" for i in self.keys}
        now = int(time.time())
        for t in range(now - 60, now):
            self._tick(t)

    def _tick(self, t):
        phase = (t % 90)
        flaky = [k for k in self.keys if self.bk[k][1] == "C"]
        for k in flaky:
            self.health[k] = "ejected" if 40 <= phase < 48 else (
                "probing" if phase == 48 else "up")
        row = {}
        load = 900 + 300 * math.sin(t / 15.0)
        weights = {i: 1.0 / self.bk[i][2] for i in self.keys}
        for k in flaky:
            if self.health[k] != "up":
                weights[k] = 0.0
        s = sum(weights.values())
        for i in self.keys:
            ms = self.bk[i][2]
            n = int(load * weights[i] / s * random.uniform(0.9, 1.1))
            err = random.randint(0, 2) if i in flaky and phase in (38, 39) \
                else 0
            p50 = ms * random.uniform(0.9, 1.2) if n else 0.0
            p99 = p50 * random.uniform(2.0, 3.5) if n else 0.0
            score = ms * random.uniform(0.8, 1.3)
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
            for k, i in enumerate(self.keys):
                rps = sum(r[i][0] for _, r in last) / len(last)
                tot_rps += rps
                p50 = last[-1][1][i][2]
                p99 = last[-1][1][i][3]
                bks.append({
                    "index": k, "id": self.bk[i][1], "pool": self.bk[i][0],
                    "key": i, "address": "127.0.0.1:%d" % (8081 + k),
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
                hist[key] = {i: [r[i][col] for _, r in self.hist]
                             for i in self.keys}
            treq = sum(self.total_req.values())
            terr = sum(self.total_err.values())
            pools = self.pools(bks, mode)
            return {
                "version": "0.1.0", "mode": pools[0]["mode"],
                "persistent": pools[0]["persistent"],
                "time": time.time(), "uptime_s": time.time() - self.start,
                "window_s": 10,
                "total": {"requests": treq, "errors": terr, "rps": tot_rps,
                          "in_flight": sum(b["in_flight"] for b in bks),
                          "bytes_in": treq * 80, "bytes_out": treq * 200,
                          "latency_ms": {"mean": 5.0, "p50": 4.0, "p90": 9.0,
                                         "p99": 20.0, "p999": 30.0}},
                "backends": bks, "pools": pools, "history": hist}

    def pools(self, bks, mode):
        """The "pools" array: each pool's totals from its backends."""
        out = []
        for name in dict.fromkeys(b["pool"] for b in bks):
            mine = [b for b in bks if b["pool"] == name]
            pm, persistent = POOL_MODES.get(name, (mode, True))
            if name == "default":
                pm = mode
            p99 = max(b["latency_ms"]["p99"] for b in mine)
            out.append({
                "name": name, "mode": pm, "persistent": persistent,
                "backends": len(mine),
                "requests": sum(b["requests"] for b in mine),
                "errors": sum(b["errors"]["total"] for b in mine),
                "rps": round(sum(b["rps"] for b in mine), 1),
                "latency_ms": {"mean": p99 / 3, "p50": p99 / 4,
                               "p90": p99 / 2, "p99": p99, "p999": p99}})
        return out


def write_sample_csv(path, seconds=120, backends=ONE_POOL):
    """A CSV log in the contract's columns, for the CSV view (with the pool
    column for several pools)."""
    cols = ("timestamp,client,method,path,backend_id,backend_addr,status,"
            "req_bytes,resp_bytes,connect_ms,ttfb_ms,upstream_ms,total_ms,"
            "reused,mode,conn_model,retries,error")
    named = backends is not ONE_POOL
    if named:
        cols += ",hedge,request_id,tls_version,tls_cipher,tls_resumed," \
                "tls_handshake_ms,pool"
    t0 = int(time.time()) - seconds - 5
    with open(path, "w") as f:
        f.write(cols + "\n")
        for s in range(seconds):
            for k, (pool, i, ms) in enumerate(backends):
                pm, persistent = POOL_MODES.get(pool, ("adaptive_ewma", True))
                model = "persistent" if persistent else "non_persistent"
                tail = ",none,,,,,,%s" % pool if named else ""
                for _ in range(int(200 / ms)):
                    us = random.randint(0, 999999)
                    ts = time.strftime("%Y-%m-%dT%H:%M:%S",
                                       time.gmtime(t0 + s)) + ".%06dZ" % us
                    err = "timeout" if random.random() < 0.002 else ""
                    st = 504 if err else 200
                    up = ms * random.lognormvariate(0, 0.4)
                    f.write("%s,127.0.0.1:4000%d,GET,/,%s,127.0.0.1:%d,%d,"
                            "78,210,,%.3f,%.3f,%.3f,1,%s,%s,0,%s%s\n"
                            % (ts, k, i, 8081 + k, st, up * 0.8, up,
                               up + 0.05, pm, model, err, tail))


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
    ap.add_argument("--pools", action="store_true",
                    help="two pools, default (A, B) and api (A, C)")
    args = ap.parse_args()
    backends = TWO_POOLS if args.pools else ONE_POOL
    logs = args.logs_dir or os.path.join(ROOT, "logs", "mock")
    os.makedirs(logs, exist_ok=True)
    sample = os.path.join(logs, "mock_pools.csv" if args.pools
                          else "mock_adaptive_ewma_persistent.csv")
    if not os.path.exists(sample):
        write_sample_csv(sample, backends=backends)
    Handler.sim = Sim(backends)
    Handler.logs_dir = logs
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    print("mock admin on http://127.0.0.1:%d/ (logs: %s)" % (args.port, logs),
          file=sys.stderr)
    srv.serve_forever()


if __name__ == "__main__":
    main()

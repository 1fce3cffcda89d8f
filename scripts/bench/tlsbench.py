#!/usr/bin/python3
"""tlsbench: https through lbproxy, nginx and HAProxy (`make tlsbench`):
requests/s and CPU per request with wrk -t1 -c100 over TLS 1.3.

    scripts/bench/tlsbench.py                     10-s runs, 3 rounds
    scripts/bench/tlsbench.py -d 5 -r 1           a quick look
    scripts/bench/tlsbench.py --proxies lbproxy   no peers

Three `lbbackend --profile fixed:0ms` backends (ids A, B, C) and one proxy
at a time, each configured as equivalently as it allows: one worker or
thread, round-robin, pooled keep-alive upstream connections, no access
log, the same ECDSA P-256 certificate made for the run, TLS 1.3 only,
ALPN http/1.1.  The proxy is pinned to CPU 0, wrk and the backends to
CPU 1.  Loads:

- keep-alive: wrk's 100 connections each carry many requests;
- close: `-H "Connection: close"`, a new connection (and handshake) per
  request; wrk resumes TLS sessions, so these are resumed handshakes;
- close-full: the same with resumption off on the server (lbproxy
  `tls.resumption=false`, nginx `ssl_session_tickets off` and no cache,
  HAProxy `no-tls-tickets` and `tune.ssl.cachesize 0`): full handshakes.

`--upstream-tls`: the backends serve TLS too (`lbbackend --tls-cert`)
and lbproxy reaches them with `,tls`, verifying the run's certificate:
TLS on both sides (lbproxy only; the peers are not configured for it).

Rounds alternate the proxies (A B C, B C A, ...); the table gives the
median of the rounds and the proxy's CPU seconds (utime+stime of its
process tree) per 1,000 requests.  A peer that is not installed is
skipped.  Everything started is stopped on exit, also on failure.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchconf as bc  # noqa: E402
import benchlib as bl  # noqa: E402

PROXIES = ["lbproxy", "nginx", "haproxy"]
LOADS = ["keep-alive", "close", "close-full"]

NGINX_CONF = """worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
worker_rlimit_nofile 65536;
events {{ worker_connections 16384; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    keepalive_requests 1000000;
    upstream backends {{
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port} ssl backlog=4096;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.3;
        {resumption}
        location / {{
            proxy_pass http://backends;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""

HAPROXY_CFG = """global
    nbthread 1
    maxconn 8000
    {cache}
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
    http-reuse always
frontend f
    bind 127.0.0.1:{port} ssl crt {pem} alpn http/1.1 ssl-min-ver TLSv1.3 {tickets}
    default_backend b
backend b
    balance roundrobin
{servers}
"""


def start(kind, port, backends, certs, resumption, d, upstream_tls=False):
    cert, key, pem = certs
    log = os.path.join(d, f"{kind}.log")
    if kind == "lbproxy":
        args = [bl.LBPROXY, "--config", "/dev/null", "--mode", "round-robin",
                "--persistent", "--listen", f"127.0.0.1:{bl.free_port()}",
                "--tls-listen", f"127.0.0.1:{port}", "--tls-cert", cert,
                "--tls-key", key, "--admin", "off", "--log", "off",
                "--set", "tls.min_version=TLS1.3",
                "--set", f"tls.resumption={'true' if resumption else 'false'}"]
        for _, bport, _ in backends:
            args += ["--backend",
                     f"127.0.0.1:{bport}{',tls' if upstream_tls else ''}"]
        if upstream_tls:
            args += ["--set", f"pool.upstream_tls_ca_file={cert}"]
    elif kind == "nginx":
        for t in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(d, "tmp", t), exist_ok=True)
        servers = "\n".join(f"        server 127.0.0.1:{p};"
                            for _, p, _ in backends)
        res = ("ssl_session_cache shared:TLS:10m; ssl_session_tickets on;"
               if resumption else
               "ssl_session_cache off; ssl_session_tickets off;")
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(d=d, servers=servers, port=port,
                                      cert=cert, key=key, resumption=res))
        args = ["nginx", "-p", d, "-c", conf, "-g", "daemon off;"]
    else:
        servers = "\n".join(f"    server {b} 127.0.0.1:{p}"
                            for b, p, _ in backends)
        conf = os.path.join(d, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(HAPROXY_CFG.format(
                port=port, pem=pem, servers=servers,
                cache="" if resumption else "tune.ssl.cachesize 0",
                tickets="" if resumption else "no-tls-tickets"))
        args = ["haproxy", "-f", conf, "-db"]
    p = bl.Proc(args, bl.PROXY_CPU, log, kind)
    if not bl.wait_port(port, p):
        raise RuntimeError(f"{kind} did not start: {p.tail()}")
    return p


def run_wrk(port, duration, close, raw, js):
    if os.path.exists(js):
        os.unlink(js)
    cmd = ["taskset", "-c", bl.LOAD_CPU, "wrk", "-t1", "-c100", "-d",
           f"{duration}s", "--latency", "-s", bl.LUA]
    if close:
        cmd += ["-H", "Connection: close"]
    cmd.append(f"https://127.0.0.1:{port}/")
    with open(raw, "wb") as out:
        subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT,
                       env=dict(os.environ, WRK_JSON=js),
                       timeout=duration + 60, check=True)
    with open(js) as f:
        return json.loads(f.readline())


def one_run(kind, load, backends, certs, duration, d, upstream_tls=False):
    port = bl.free_port()
    p = start(kind, port, backends, certs, load != "close-full", d,
              upstream_tls)
    try:
        # warm-up: handshakes, pools and caches
        run_wrk(port, 1, load != "keep-alive",
                os.path.join(d, f"{kind}-{load}-warm.txt"),
                os.path.join(d, f"{kind}-{load}-warm.json"))
        cpu0 = bl.tree_cpu_seconds(p.pid)
        s = run_wrk(port, duration, load != "keep-alive",
                    os.path.join(d, f"{kind}-{load}.txt"),
                    os.path.join(d, f"{kind}-{load}.json"))
        cpu = bl.tree_cpu_seconds(p.pid) - cpu0
    finally:
        p.stop()
    n = max(1, s["requests"])
    return s["rps"], cpu * 1000.0 / n, s


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-d", "--duration", type=int, default=10)
    ap.add_argument("-r", "--rounds", type=int, default=3)
    ap.add_argument("--proxies", default=",".join(PROXIES))
    ap.add_argument("--loads", default=",".join(LOADS))
    ap.add_argument("--out", default=None)
    ap.add_argument("--upstream-tls", action="store_true",
                    help="TLS to the backends too (lbproxy only)")
    a = ap.parse_args(argv)
    kinds = [k for k in a.proxies.split(",")
             if k == "lbproxy" or shutil.which(k)]
    if a.upstream_tls:
        kinds = ["lbproxy"]
    loads = a.loads.split(",")
    out = os.path.abspath(a.out or os.path.join(
        bl.ROOT, "logs", "bench", "tlsbench-" + time.strftime("%Y%m%d-%H%M%S")))
    os.makedirs(out, exist_ok=True)
    scen = bc.Scenario("tlsbench")
    scen.backends = [(b, ["--profile", "fixed:0ms", "--workers", "0",
                          "--quiet"]) for b in "ABC"]
    res = {}
    try:
        certs = bl.bench_cert(out)
        if a.upstream_tls:
            for _, args in scen.backends:
                args += ["--tls-cert", certs[0], "--tls-key", certs[1]]
        backends = bl.start_backends(scen, out)
        for rnd in range(a.rounds):
            order = kinds[rnd % len(kinds):] + kinds[:rnd % len(kinds)]
            for load in loads:
                for kind in order:
                    d = os.path.join(out, f"r{rnd}")
                    os.makedirs(d, exist_ok=True)
                    rps, cpu_k, s = one_run(kind, load, backends, certs,
                                            a.duration, d, a.upstream_tls)
                    errs = sum(s.get("errors", {}).values())
                    print(f"round {rnd + 1} {load:10} {kind:8} "
                          f"{rps:9.0f} req/s  {cpu_k:6.3f} CPU-s/1k req  "
                          f"errors {errs}", flush=True)
                    res.setdefault((load, kind), []).append((rps, cpu_k))
    finally:
        bl.Proc.stop_all()
    print()
    print("| load | proxy | requests/s (median) | CPU ms per 1,000 requests "
          "(median) |")
    print("|---|---|---|---|")
    for load in loads:
        for kind in kinds:
            v = res.get((load, kind))
            if not v:
                continue
            print(f"| {load} | {kind} | "
                  f"{statistics.median(x[0] for x in v):.0f} | "
                  f"{statistics.median(x[1] for x in v) * 1000:.0f} |")
    return 0


if __name__ == "__main__":
    bl.tool_main(main)

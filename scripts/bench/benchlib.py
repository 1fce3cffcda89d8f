"""benchlib: the pieces shared by the benchmark matrix and the quick
benchmark -- configurations, scenarios, pinned processes, peers, wrk runs,
CPU accounting and machine facts.

Everything runs as the current user; every file a run produces (peer
configs, pid and log files, raw wrk output, lbproxy CSV logs) lands in the
run directory.  Pinning follows docs/benchmarks.md: the proxy under test on
CPU 0, wrk and the backends on CPU 1.
"""
import configparser
import csv
import json
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LUA = os.path.join(ROOT, "scripts", "wrk", "report.lua")
PEERS = os.path.join(ROOT, "scripts", "peers")
LBPROXY = os.path.join(ROOT, os.environ.get("LBPROXY", "lbproxy"))
# Another lbproxy build to compare with in the same run (for example one of
# an older commit, built in a worktree): configurations base-rr-p and
# base-rr-np run it.  Unset: those configurations do not exist.
LBPROXY_BASE = os.environ.get("LBPROXY_BASE", "")
LBBACKEND = os.path.join(ROOT, os.environ.get("LBBACKEND", "lbbackend"))
# The L4 relay of the "relay" configuration (scripts/bench/relay.c, built by
# `make` / `make relay` into build/bench/relay).
RELAY = os.path.join(ROOT, os.environ.get("RELAY", "build/bench/relay"))

PROXY_CPU = "0"
LOAD_CPU = "1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- configs

class Config:
    """One configuration of the matrix: which proxy and how it is set up.

    kind: lbproxy | nginx | haproxy | relay | direct
    persistent: upstream connections reused (keep-alive pool) or one per
    request.  The relay is a blind L4 relay, one upstream connection per
    client connection: the kernel floor under every proxy, not a proxy.
    """

    def __init__(self, name, kind, mode="", persistent=True, sets=(),
                 note="", log=None, ini=None, tls=False):
        self.name = name
        self.kind = kind
        self.mode = mode
        self.persistent = persistent
        self.sets = list(sets)
        self.note = note
        self.exe = None  # lbproxy binary; None: LBPROXY
        # lbproxy's CSV request log: None follows the run's LOG setting,
        # True keeps it on whatever LOG says (the --logcost pair).
        self.log = log
        # lbproxy: a function of the backends [(id, port, ...)] giving the
        # text of a --config file (pools and routes); None: no file
        self.ini = ini
        # clients reach it over TLS 1.3 (https; the run's certificate)
        self.tls = tls

    @property
    def conn_model(self):
        if self.kind == "direct":
            return "direct"
        return "persistent" if self.persistent else "non_persistent"

    @property
    def family(self):
        return {"lbproxy": "lbproxy", "direct": "direct",
                "relay": "relay"}.get(self.kind, "peer")


def routes_ini(nroutes, npools):
    """A --config text: with nroutes 0, one host-less route to the default
    pool; else npools pools of the same backends and nroutes exact host
    routes spread over them, one of which (host 127.0.0.1, what wrk sends)
    leads to the default pool.  Every request then goes through the route
    table."""
    def text(backends):
        if nroutes == 0:
            return "[route.all]\npool = default\n"
        out = []
        for i in range(1, npools):
            out.append(f"[pool.p{i}.backends]")
            out += [f"{bid} = 127.0.0.1:{p}" for bid, p, *_ in backends]
        for i in range(nroutes - 1):
            out += [f"[route.r{i}]", f"host = h{i}.example.com",
                    f"pool = p{1 + i % (npools - 1)}"]
        out += ["[route.wrk]", "host = 127.0.0.1", "pool = default"]
        return "\n".join(out) + "\n"
    return text


def _all_configs():
    out = []
    for mode, short in (("round-robin", "rr"), ("adaptive_sma", "sma"),
                        ("adaptive_ewma", "ewma")):
        out.append(Config(f"lb-{short}-p", "lbproxy", mode, True))
        out.append(Config(f"lb-{short}-np", "lbproxy", mode, False))
    out.append(Config("lb-lc-p", "lbproxy", "least-conn", True))
    out.append(Config("lb-p2c-p", "lbproxy", "p2c-peak-ewma", True))
    out.append(Config("lb-prequal-p", "lbproxy", "prequal", True,
                      note="Prequal (probes to the emulator's /probe; "
                      "docs/balancing.md), a reference policy"))
    out.append(Config("lb-sma-noload-p", "lbproxy", "adaptive_sma", True,
                      ["balancer.load_aware=false"],
                      "plain argmin of the estimate (prototype behaviour)"))
    out.append(Config("lb-ewma-noload-p", "lbproxy", "adaptive_ewma", True,
                      ["balancer.load_aware=false"],
                      "plain argmin of the estimate (prototype behaviour)"))
    out.append(Config("lb-ewma-fill-p", "lbproxy", "adaptive_ewma", True,
                      ["balancer.ewma_score=fill"],
                      "opt-in score: free workers first (docs/balancing.md)"))
    out.append(Config("lb-ewma-nohedge-p", "lbproxy", "adaptive_ewma", True,
                      ["retry.hedge=false"],
                      "per-try deadlines cancel and retry instead of "
                      "hedging (the default before hedges)"))
    if LBPROXY_BASE:
        for persistent, tail in ((True, "p"), (False, "np")):
            c = Config(f"base-rr-{tail}", "lbproxy", "round-robin", persistent,
                       note=f"lb-rr-{tail} run by LBPROXY_BASE={LBPROXY_BASE}")
            c.exe = os.path.abspath(LBPROXY_BASE)
            out.append(c)
    out.append(Config("lb-rr-p-route1", "lbproxy", "round-robin", True,
                      note="lb-rr-p behind one host-less route to the "
                      "default pool (the routing cost)", ini=routes_ini(0, 0)))
    out.append(Config("lb-rr-p-routes1k", "lbproxy", "round-robin", True,
                      note="lb-rr-p's backends as one of 100 pools behind "
                      "1,000 host routes (the lookup at scale)",
                      ini=routes_ini(1000, 100)))
    out.append(Config("lb-rr-p-log", "lbproxy", "round-robin", True,
                      note="lb-rr-p with its CSV request log always on "
                      "(bench.py --logcost)", log=True))
    tls_note = ("clients over TLS 1.3 (ECDSA P-256, ALPN http/1.1, "
                "tickets and a session cache), plain HTTP to the backends")
    out.append(Config("lb-rr-p-tls", "lbproxy", "round-robin", True,
                      note="lb-rr-p with " + tls_note, tls=True))
    out.append(Config("nginx-rr-ka-tls", "nginx", "round_robin", True,
                      note="nginx-rr-ka with " + tls_note, tls=True))
    out.append(Config("haproxy-rr-reuse-tls", "haproxy", "roundrobin", True,
                      note="haproxy-rr-reuse with " + tls_note, tls=True))
    for bal, short in (("round_robin", "rr"), ("least_conn", "lc")):
        out.append(Config(f"nginx-{short}-ka", "nginx", bal, True))
        out.append(Config(f"nginx-{short}-close", "nginx", bal, False))
    for bal, short in (("roundrobin", "rr"), ("leastconn", "lc")):
        out.append(Config(f"haproxy-{short}-reuse", "haproxy", bal, True))
        out.append(Config(f"haproxy-{short}-close", "haproxy", bal, False))
    out.append(Config("direct", "direct", "", True,
                      note="wrk straight to backend A (one backend)"))
    out.append(Config("relay", "relay", "round-robin", True,
                      note="L4 TCP relay floor (scripts/bench/relay.c), "
                      "not a proxy: round-robin per client connection, "
                      "bytes copied blindly"))
    return {c.name: c for c in out}


CONFIGS = _all_configs()
# The default matrix: every proxy, not the references (direct, relay) nor
# opt-in variants (named explicitly in CONFIGS=).
MATRIX = [n for n in CONFIGS
          if n not in ("direct", "relay", "lb-ewma-fill-p", "lb-rr-p-log",
                       "lb-prequal-p",
                       "lb-ewma-nohedge-p", "lb-rr-p-route1",
                       "lb-rr-p-routes1k")
          and not n.startswith("base-") and not CONFIGS[n].tls]


def select_configs(spec):
    """Config names from "all", "matrix" or a comma/space separated list."""
    spec = (spec or "").replace(",", " ").split()
    if not spec or spec == ["all"] or spec == ["matrix"]:
        return list(MATRIX)
    names = []
    for s in spec:
        if s == "all":
            names += [n for n in MATRIX if n not in names]
        elif s in CONFIGS:
            names.append(s)
        else:
            raise SystemExit(f"bench: unknown configuration {s!r}; known: "
                             + " ".join(CONFIGS))
    return names


# --------------------------------------------------------------- scenarios

class Scenario:
    """A scenario file from config/scenarios/: three backends and a load."""

    def __init__(self, name, path=None):
        self.name = name
        self.path = path
        self.description = ""
        self.backends = []  # [(id, [args...])]
        self.duration = 5
        self.min_duration = 0
        self.repeat = 3
        self.warmup = 1
        self.threads = 1
        self.connections = 100
        self.path_url = "/"
        self.timeout = "2s"
        self.restart = "scenario"  # or "run": backends + proxy per run
        self.headers = []  # wrk -H lines ("Connection: close")
        # open-loop req/s for a scenario without a capacity bound
        self.open_rates = []
        self.configs = list(MATRIX)
        self.notes = []

    @classmethod
    def load(cls, path):
        cp = configparser.ConfigParser(inline_comment_prefixes=("#", ";"),
                                       interpolation=None)
        cp.optionxform = str  # keep backend ids as written
        with open(path) as f:
            cp.read_file(f)
        name = os.path.splitext(os.path.basename(path))[0]
        s = cls(name, path)
        sc = cp["scenario"]
        s.description = " ".join(sc.get("description", "").split())
        s.duration = int(sc.get("duration", s.duration))
        s.min_duration = int(sc.get("min_duration", s.min_duration))
        s.repeat = int(sc.get("repeat", s.repeat))
        s.warmup = int(sc.get("warmup", s.warmup))
        s.threads = int(sc.get("threads", s.threads))
        s.connections = int(sc.get("connections", s.connections))
        s.path_url = sc.get("path", s.path_url)
        s.timeout = sc.get("timeout", s.timeout)
        s.restart = sc.get("restart", s.restart)
        s.headers = [h.strip() for h in sc.get("headers", "").split("|")
                     if h.strip()]
        s.open_rates = [float(x) for x in sc.get("open_rates", "").split()]
        if s.restart not in ("scenario", "run"):
            raise SystemExit(f"{path}: restart must be scenario or run")
        s.configs = select_configs(sc.get("configs", "all"))
        for bid, args in cp["backends"].items():
            s.backends.append((bid, shlex.split(args)))
        if len(s.backends) < 1:
            raise SystemExit(f"{path}: [backends] is empty")
        return s

    def apply_env(self, env):
        """Applies DURATION, REPEAT, CONNS, THREADS, WARMUP, RESTART,
        CONFIGS."""
        if env.get("DURATION"):
            d = int(env["DURATION"])
            if d < self.min_duration:
                self.notes.append(
                    f"DURATION={d} raised to this scenario's minimum "
                    f"{self.min_duration} s (its phases need it)")
                d = self.min_duration
            self.duration = d
        if env.get("REPEAT"):
            self.repeat = int(env["REPEAT"])
        if env.get("CONNS"):
            self.connections = int(env["CONNS"])
        if env.get("THREADS"):
            self.threads = int(env["THREADS"])
        if env.get("WARMUP"):
            self.warmup = int(env["WARMUP"])
        if env.get("RESTART"):
            if env["RESTART"] not in ("scenario", "run"):
                raise SystemExit("RESTART must be scenario or run")
            self.restart = env["RESTART"]
        if env.get("CONFIGS"):
            self.configs = select_configs(env["CONFIGS"])


# --------------------------------------------------------------- processes

def free_port():
    """A port that was free a moment ago (bind to 0, read, close)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=10.0):
    """Polls until 127.0.0.1:port accepts; False if proc died or timed out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


class Proc:
    """A pinned child process in its own session, output to a log file."""

    live = []

    def __init__(self, args, cpu, log_path, name):
        self.name = name
        self.args = args
        self.log_path = log_path
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        self.log = open(log_path, "ab")
        self.log.write(("$ " + " ".join(shlex.quote(a) for a in args)
                        + "\n").encode())
        self.log.flush()
        # taskset execs the program: the pid below is the program's own.
        self.p = subprocess.Popen(["taskset", "-c", cpu] + args,
                                  stdout=self.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, cwd=ROOT,
                                  start_new_session=True)
        self.pid = self.p.pid
        Proc.live.append(self)

    def poll(self):
        return self.p.poll()

    def tail(self, n=5):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:]).strip()
        except OSError:
            return ""

    def stop(self, timeout=5.0):
        if self.p.poll() is None:
            try:
                # The whole session we created: nginx's master and worker.
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.p.wait()
        self.log.close()
        if self in Proc.live:
            Proc.live.remove(self)

    @classmethod
    def stop_all(cls):
        for p in list(cls.live):
            p.stop(timeout=2.0)


def tree_cpu_seconds(pid):
    """utime+stime of pid and all its descendants (seconds), from /proc."""
    stats = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rfind(")") + 2:].split()
        # rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
        stats[int(d)] = (int(rest[1]), int(rest[11]) + int(rest[12]))
    want = {pid}
    grew = True
    while grew:
        grew = False
        for p, (ppid, _) in stats.items():
            if ppid in want and p not in want:
                want.add(p)
                grew = True
    return sum(stats[p][1] for p in want if p in stats) / CLK_TCK


# ---------------------------------------------------------------- backends

def start_backends(scen, outdir, tag=""):
    """Starts the scenario's backends pinned to the load CPU.

    Returns [(id, port, Proc)]; raises RuntimeError when one fails."""
    out = []
    for i, (bid, args) in enumerate(scen.backends):
        port = free_port()
        cmd = [LBBACKEND, "--port", str(port), "--id", bid] + args
        if "--seed" not in args:
            cmd += ["--seed", str(1000 + i)]
        p = Proc(cmd, LOAD_CPU,
                 os.path.join(outdir, "backends", f"{bid}{tag}.log"),
                 f"backend-{bid}")
        out.append((bid, port, p))
        if not wait_port(port, p):
            for _, _, q in out:
                q.stop()
            raise RuntimeError(f"backend {bid} did not start: {p.tail()}")
    return out


def backend_stats(port):
    """lbbackend's /stats as a dict; None when it does not answer."""
    try:
        with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/stats", timeout=1) as r:
            return json.loads(r.read())
    except (OSError, ValueError):
        return None


def wait_backends_idle(backends, timeout=5.0):
    """Waits until every backend (lbbackend /stats) has nothing in service
    or queued: requests that the previous run's proxy left behind when wrk
    stopped (a proxy need not abort them) must not load the next run's
    first seconds.  Returns the seconds waited (timeout when they never
    drained, or a backend did not answer)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        busy = False
        for _, port, _ in backends:
            s = backend_stats(port)
            if s is None:
                return timeout
            if s.get("in_service", 0) or s.get("queued", 0):
                busy = True
        if not busy:
            break
        time.sleep(0.02)
    return time.monotonic() - t0


def backends_idle(backends):
    """(idle worker-us, workers) summed over the backends with a worker
    limit, from lbbackend /stats; None when one did not answer."""
    idle = workers = 0
    for _, port, _ in backends:
        s = backend_stats(port)
        if s is None:
            return None
        if s.get("workers", 0) > 0:
            idle += s.get("idle_worker_us", 0)
            workers += s["workers"]
    return idle, workers


def idle_pct(before, after, secs):
    """The share of the backends' worker time left idle between two
    backends_idle() readings secs apart, as a percentage string ("" with
    no worker limit or a missing reading): what the balancer wasted of a
    capacity-bound set."""
    if not before or not after or not after[1] or secs <= 0:
        return ""
    return f"{100.0 * (after[0] - before[0]) / (after[1] * secs * 1e6):.2f}"


# ------------------------------------------------------------------ proxies

def bench_cert(d):
    """An ECDSA P-256 certificate for 127.0.0.1 and localhost, made once
    per directory d with the openssl command: (cert, key, cert+key PEM)
    paths, the last for HAProxy's crt."""
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "cert.key")
    pem = os.path.join(d, "both.pem")
    if not os.path.exists(pem):
        os.makedirs(d, exist_ok=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", cert, "-days", "2", "-subj",
                        "/CN=127.0.0.1", "-addext",
                        "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                       check=True, capture_output=True, timeout=60)
        with open(pem, "w") as f:
            f.write(open(cert).read() + open(key).read())
    return cert, key, pem


def _fill(template, values):
    with open(os.path.join(PEERS, template)) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace(f"@{k}@", v)
    return text


def nginx_conf(cfg, port, backends, d):
    cert = bench_cert(d) if cfg.tls else None
    user = ""
    if os.geteuid() == 0:
        # As root the master would hand the worker to "nobody"; stay root.
        import grp
        import pwd
        user = "user %s %s;" % (pwd.getpwuid(os.geteuid()).pw_name,
                                grp.getgrgid(os.getegid()).gr_name)
    servers = "\n".join(f"        server 127.0.0.1:{p};"
                        for _, p, _ in backends)
    return _fill("nginx.conf.in", {
        "USER": user,
        "DIR": d,
        "PORT": str(port),
        "BALANCE": "least_conn;" if cfg.mode == "least_conn" else "",
        "SERVERS": servers,
        "KEEPALIVE": ("keepalive 64;\n        keepalive_requests 1000000;"
                      if cfg.persistent else ""),
        "HTTP11": ('proxy_http_version 1.1;\n'
                   '            proxy_set_header Connection "";'
                   if cfg.persistent else ""),
        "SSL": "ssl " if cfg.tls else "",
        "TLS": (f"ssl_certificate {cert[0]};\n"
                f"        ssl_certificate_key {cert[1]};\n"
                "        ssl_protocols TLSv1.3;\n"
                "        ssl_session_cache shared:TLS:10m;\n"
                "        ssl_session_tickets on;"
                if cfg.tls else ""),
    })


def haproxy_cfg(cfg, port, backends, d, maxconn=4096):
    servers = "\n".join(f"    server {bid} 127.0.0.1:{p}"
                        for bid, p, _ in backends)
    return _fill("haproxy.cfg.in", {
        "PORT": str(port),
        "BALANCE": cfg.mode,
        "REUSE": ("http-reuse always" if cfg.persistent
                  else "option http-server-close"),
        "SERVERS": servers,
        "MAXCONN": str(maxconn),
        "TLS": (f" ssl crt {bench_cert(d)[2]} alpn http/1.1 "
                "ssl-min-ver TLSv1.3" if cfg.tls else ""),
    })


class Proxy:
    """A started configuration: the port wrk hits and the process (None for
    direct)."""

    def __init__(self, cfg, port, proc, log_csv=""):
        self.cfg = cfg
        self.port = port
        self.scheme = "https" if cfg.tls else "http"
        self.proc = proc
        self.log_csv = log_csv

    def cpu(self):
        return tree_cpu_seconds(self.proc.pid) if self.proc else 0.0

    def alive(self):
        return self.proc is None or self.proc.poll() is None

    def stop(self):
        if self.proc:
            self.proc.stop()


def start_proxy(cfg, backends, outdir, log_csv=None, tag="", maxconn=4096):
    """Starts one configuration pinned to the proxy CPU.

    log_csv: lbproxy's --log file, or None for --log off.
    maxconn: HAProxy's connection limit (the idle-memory benchmark holds
    more client connections than the benchmarks' 4096).
    Returns a Proxy; raises RuntimeError when it does not come up."""
    if cfg.kind == "direct":
        return Proxy(cfg, backends[0][1], None)
    port = free_port()
    d = os.path.join(outdir, "proxies", cfg.name + tag)
    os.makedirs(d, exist_ok=True)
    logf = os.path.join(d, "stdout.log")
    if cfg.kind == "lbproxy":
        # with TLS, wrk's port is the TLS listener; the plain one is unused
        plain = free_port() if cfg.tls else port
        cmd = [cfg.exe or LBPROXY, "--listen", f"127.0.0.1:{plain}",
               "--admin", "off",
               "--mode", cfg.mode,
               "--persistent" if cfg.persistent else "--non-persistent",
               "--log", log_csv if log_csv else "off"]
        for bid, p, _ in backends:
            cmd += ["--backend", f"127.0.0.1:{p},id={bid}"]
        for s in cfg.sets:
            cmd += ["--set", s]
        if cfg.ini:
            ini = os.path.join(d, "lbproxy.ini")
            with open(ini, "w") as f:
                f.write(cfg.ini(backends))
            cmd += ["--config", ini]
        if cfg.tls:
            cert, key, _ = bench_cert(d)
            cmd += ["--tls-listen", f"127.0.0.1:{port}", "--tls-cert", cert,
                    "--tls-key", key, "--set", "tls.min_version=TLS1.3"]
    elif cfg.kind == "nginx":
        for t in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(d, "tmp", t), exist_ok=True)
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(nginx_conf(cfg, port, backends, d))
        cmd = ["nginx", "-p", d + "/", "-c", conf, "-g", "daemon off;"]
    elif cfg.kind == "haproxy":
        conf = os.path.join(d, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(haproxy_cfg(cfg, port, backends, d, maxconn))
        cmd = ["haproxy", "-f", conf, "-db"]
    elif cfg.kind == "relay":
        if not os.access(RELAY, os.X_OK):
            raise RuntimeError(f"{RELAY} is missing; run make relay")
        cmd = [RELAY, str(port)] + [str(p) for _, p, _ in backends]
    else:
        raise ValueError(cfg.kind)
    p = Proc(cmd, PROXY_CPU, logf, cfg.name)
    if not wait_port(port, p):
        p.stop()
        raise RuntimeError(f"{cfg.name} did not start: {p.tail()}")
    return Proxy(cfg, port, p, log_csv or "")


# --------------------------------------------------------------------- wrk

def run_wrk(port, scen, duration, raw_path, json_path, host="127.0.0.1",
            prefix=(), scheme="http"):
    """Runs wrk pinned to the load CPU; returns (summary dict, wrk CPU s).

    The summary is the JSON line written by scripts/wrk/report.lua; raw
    output goes to raw_path.  host: the address wrk connects to; prefix:
    a command wrk runs under (`ip netns exec NS`, which execs it).  Raises
    RuntimeError if wrk fails."""
    os.makedirs(os.path.dirname(raw_path), exist_ok=True)
    if os.path.exists(json_path):
        os.unlink(json_path)
    url = f"{scheme}://{host}:{port}{scen.path_url}"
    cmd = list(prefix) + [
        "taskset", "-c", LOAD_CPU, "wrk", "-t", str(scen.threads),
        "-c", str(scen.connections), "-d", f"{duration}s",
        "--timeout", scen.timeout, "--latency", "-s", LUA]
    for h in scen.headers:
        cmd += ["-H", h]
    cmd.append(url)
    env = dict(os.environ, WRK_JSON=json_path)
    with open(raw_path, "wb") as out:
        out.write(("$ " + " ".join(shlex.quote(a) for a in cmd)
                   + "\n").encode())
        out.flush()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env)
        try:
            deadline = time.monotonic() + duration + 60
            while True:
                pid, status, ru = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    p.kill()
                    pid, status, ru = os.wait4(p.pid, 0)
                    break
                time.sleep(0.02)
        except BaseException:
            p.kill()
            raise
        p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0 or not os.path.exists(json_path):
        raise RuntimeError(f"wrk failed (exit {p.returncode}), see "
                           f"{raw_path}")
    with open(json_path) as f:
        summary = json.loads(f.readline())
    return summary, ru.ru_utime + ru.ru_stime


# ------------------------------------------------ a minimal HTTP/1.1 client
# For the measurements that need exact control over connections and
# requests (idlemem.py, callgrind.py), where wrk's load would not do.

# wrk's request: a Host header and nothing else.
GET_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


class Timeout(Exception):
    """A measurement ran past its deadline."""


def read_response(sock, deadline):
    """One whole response on a blocking socket; returns its status code."""
    buf = b""
    while True:
        if time.monotonic() > deadline:
            raise Timeout("response")
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed before a response")
        buf += chunk
        st = response_done(buf)
        if st:
            return st


def response_done(buf):
    """The status code once buf holds a complete Content-Length response,
    else 0.  (lbbackend and all three proxies answer with Content-Length.)"""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return 0
    head = buf[:end].decode("latin-1").split("\r\n")
    length = 0
    for h in head[1:]:
        name, _, value = h.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    if len(buf) < end + 4 + length:
        return 0
    return int(head[0].split()[1])


def tool_start(tool, out, default_name, timeout):
    """The common start of idlemem.py and callgrind.py: the run directory
    (out, or logs/bench/DEFAULT_NAME-<time>), this client pinned to the
    load CPU, a SIGALRM that raises Timeout after timeout seconds, and a
    scenario of three 0 ms backends.  Returns (run dir, deadline,
    scenario); stop the alarm with signal.setitimer(ITIMER_REAL, 0)."""
    out = os.path.abspath(out or os.path.join(
        ROOT, "logs", "bench",
        default_name + "-" + time.strftime("%Y%m%d-%H%M%S")))
    os.makedirs(out, exist_ok=True)
    # The client side of the load shares the load CPU with the backends.
    try:
        os.sched_setaffinity(0, {int(LOAD_CPU)})
    except OSError as e:
        print(f"{tool}: warning: cannot pin to CPU {LOAD_CPU}: {e}",
              file=sys.stderr)

    def on_alarm(signum, frame):
        raise Timeout(f"whole run over {timeout:.0f} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    scen = Scenario(tool)
    scen.backends = [(b, ["--profile", "fixed:0ms", "--workers", "0",
                          "--quiet"]) for b in "ABC"]
    return out, time.monotonic() + timeout, scen


def tool_main(main):
    """Runs main(argv) as a script: SIGTERM and Ctrl-C stop every process
    it started and exit 130."""
    def _term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        Proc.stop_all()
        sys.exit(130)


# ------------------------------------------------------------ results file

RESULT_FIELDS = [
    "scenario", "config", "kind", "mode", "conn_model", "run", "restart",
    "start_unix", "end_unix", "threads", "connections", "duration_s",
    "requests", "rps", "bytes", "mean_ms", "stdev_ms", "min_ms", "p50_ms",
    "p75_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "err_connect",
    "err_read", "err_write", "err_timeout", "err_status", "errors",
    "proxy_cpu_s", "proxy_cpu_us_per_req", "backends_cpu_s", "wrk_cpu_s",
    "load_cpu_busy", "idle_workers_pct", "wrk_raw", "wrk_json", "proxy_log",
]


def ms(us):
    """Microseconds (integer or float from wrk) as a millisecond string."""
    return f"{float(us) / 1000.0:.3f}"


def result_row(scen, cfg, run, start, end, summ, proxy_cpu, be_cpu,
               wrk_cpu, run_dir, raw, js, log_csv):
    e = summ["errors"]
    nerr = sum(e[k] for k in ("connect", "read", "write", "timeout",
                              "status"))
    req = summ["requests"]
    secs = summ["duration_us"] / 1e6
    rel = (lambda p: os.path.relpath(p, run_dir) if p else "")
    return {
        "scenario": scen.name, "config": cfg.name, "kind": cfg.kind,
        "mode": cfg.mode, "conn_model": cfg.conn_model, "run": run,
        "restart": scen.restart, "start_unix": f"{start:.3f}",
        "end_unix": f"{end:.3f}", "threads": scen.threads,
        "connections": scen.connections, "duration_s": f"{secs:.3f}",
        "requests": req, "rps": f"{summ['rps']:.3f}",
        "bytes": summ["bytes"],
        "mean_ms": ms(summ["mean_us"]), "stdev_ms": ms(summ["stdev_us"]),
        "min_ms": ms(summ["min_us"]), "p50_ms": ms(summ["p50_us"]),
        "p75_ms": ms(summ["p75_us"]), "p90_ms": ms(summ["p90_us"]),
        "p99_ms": ms(summ["p99_us"]), "p999_ms": ms(summ["p999_us"]),
        "max_ms": ms(summ["max_us"]),
        "err_connect": e["connect"], "err_read": e["read"],
        "err_write": e["write"], "err_timeout": e["timeout"],
        "err_status": e["status"], "errors": nerr,
        "proxy_cpu_s": f"{proxy_cpu:.2f}" if cfg.kind != "direct" else "",
        "proxy_cpu_us_per_req": (f"{proxy_cpu * 1e6 / req:.2f}"
                                 if cfg.kind != "direct" and req else ""),
        "backends_cpu_s": f"{be_cpu:.2f}", "wrk_cpu_s": f"{wrk_cpu:.2f}",
        "load_cpu_busy": f"{(be_cpu + wrk_cpu) / secs:.2f}" if secs else "",
        "idle_workers_pct": "",
        "wrk_raw": rel(raw), "wrk_json": rel(js), "proxy_log": rel(log_csv),
    }


class ResultsWriter:
    """results.csv, one row per configuration x run, flushed per row."""

    def __init__(self, path):
        self.f = open(path, "w", newline="")
        self.w = csv.DictWriter(self.f, RESULT_FIELDS)
        self.w.writeheader()
        self.f.flush()

    def add(self, row):
        self.w.writerow(row)
        self.f.flush()

    def close(self):
        self.f.close()


# ----------------------------------------------------------- machine facts

def _cmd(args):
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=10,
                           cwd=ROOT)
        return (r.stdout + r.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e})"


def machine_facts():
    """CPU, kernel, tool versions and lbproxy's git revision."""
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    rev = _cmd(["git", "rev-parse", "--short", "HEAD"])
    dirty = _cmd(["git", "status", "--porcelain", "--untracked-files=no"])
    facts = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "hostname": platform.node(),
        "cpu_model": model,
        "cpus_online": os.cpu_count(),
        "cpus_allowed": len(os.sched_getaffinity(0)),
        "kernel": " ".join(platform.uname()[2:4]),
        "loadavg": open("/proc/loadavg").read().strip(),
        "nginx": _cmd(["nginx", "-v"]).replace("nginx version: ", ""),
        "haproxy": _cmd(["haproxy", "-v"]).splitlines()[0],
        "wrk": _cmd(["wrk", "-v"]).splitlines()[0].split(" [")[0],
        "lbproxy_git": rev + (" (dirty tree)" if dirty else ""),
        "lbproxy_version": _cmd([LBPROXY, "--version"]).splitlines()[0]
        if os.path.exists(LBPROXY) else "missing",
        "python": sys.version.split()[0],
        "pinning": f"proxy CPU {PROXY_CPU}; wrk + backends CPU {LOAD_CPU}",
    }
    gov = "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"
    if os.path.exists(gov):
        facts["governor"] = open(gov).read().strip()
    return facts


def write_facts(run_dir, extra=None):
    facts = machine_facts()
    if extra:
        facts.update(extra)
    with open(os.path.join(run_dir, "machine.json"), "w") as f:
        json.dump(facts, f, indent=2)
        f.write("\n")
    with open(os.path.join(run_dir, "machine.txt"), "w") as f:
        for k, v in facts.items():
            f.write(f"{k}: {v}\n")
    return facts


def write_summary(out, text, t0, what="summary.md"):
    """Writes summary.md into the run directory and prints it, then where
    the results went and how long the run took (t0: time.monotonic())."""
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text)
    print()
    print(text, end="")
    print(f"written to {os.path.relpath(out, ROOT)}/{what} "
          f"({fmt_secs(time.monotonic() - t0)})")


def fmt_secs(s):
    s = int(round(s))
    return f"{s // 60}m{s % 60:02d}s"

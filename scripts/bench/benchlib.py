"""benchlib: the running side shared by the benchmark tools -- pinned
processes, backends, the proxies and their peers' configuration files, wrk
runs, CPU accounting and a minimal HTTP/1.1 client.  What a run compares
(configurations, scenarios) is in benchconf, what it writes (results rows,
machine facts, summaries) in benchreport, the paths and CPUs in benchenv.

Everything runs as the current user; every file a run produces (peer
configs, pid and log files, raw wrk output, lbproxy CSV logs) lands in the
run directory.  Pinning follows docs/benchmarks.md: the proxy under test on
CPU 0, wrk and the backends on CPU 1.
"""
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from benchconf import Scenario
# the paths and CPUs, re-exported: the tools read them as bl.ROOT etc.
from benchenv import (CLK_TCK, LBBACKEND, LBPROXY, LBPROXY_BASE,  # noqa: F401
                      LOAD_CPU, LUA, PEERS, PROXY_CPU, RELAY, ROOT)


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

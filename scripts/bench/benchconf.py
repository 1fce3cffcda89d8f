"""benchconf: what a benchmark run compares -- the configurations (which
proxy, set up how), the default matrix, and the scenarios read from
config/scenarios/ (backends and load)."""
import configparser
import os
import shlex

from benchenv import LBPROXY_BASE


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

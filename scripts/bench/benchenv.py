"""benchenv: where the benchmark tools find things and how they pin --
the repository root, the binaries (overridable from the environment),
the wrk report script and peer templates, and the two CPUs (the proxy under
test on CPU 0, wrk and the backends on CPU 1; docs/benchmarks.md)."""
import os

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

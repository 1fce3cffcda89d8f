"""Shared helpers for the end-to-end tests.

Every test starts the real ./lbproxy and ./lbbackend processes it needs on
free loopback ports, waits for readiness by polling the port, and the `procs`
fixture kills exactly what the test started, also when it fails.  The
helpers that are not about pytest (ports, polling, /proc probes, raw
exchanges) are in tests/lib/lbtest.py, shared with scripts/*.py.
"""
import os
import signal
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# The helpers shared with scripts/*.py (lbtest, httpc) live in tests/lib/.
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
from lbtest import free_port, wait_port  # noqa: E402

LBPROXY = os.path.join(ROOT, os.environ.get("LBPROXY", "lbproxy"))
LBBACKEND = os.path.join(ROOT, os.environ.get("LBBACKEND", "lbbackend"))


class Procs:
    """Starts processes and always kills them at teardown."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.procs = []

    def start(self, args, port=None, name=None, env=None, **kw):
        name = name or os.path.basename(args[0])
        log = open(self.tmp_path / f"{name}-{len(self.procs)}.log", "wb")
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                             cwd=ROOT, env=env, **kw)
        p.logfile = log.name
        self.procs.append(p)
        if port is not None:
            wait_port(port, proc=p)
        return p

    def backend(self, port=None, bid="A", extra=()):
        port = port or free_port()
        p = self.start([LBBACKEND, "--port", str(port), "--id", bid,
                        *extra], port=port, name=f"backend-{bid}")
        p.port = port
        return p

    def proxy(self, backends, extra=(), port=None, admin=None):
        port = port or free_port()
        args = [LBPROXY, "--listen", f"127.0.0.1:{port}"]
        args += ["--admin", f"127.0.0.1:{admin}" if admin else "off"]
        for b in backends:
            args += ["--backend", f"127.0.0.1:{b}"]
        if "--log" not in extra:
            args += ["--log", "off"]
        p = self.start(args + list(extra), port=port, name="lbproxy")
        if admin:  # bound just after the proxy's own listener
            wait_port(admin, proc=p)
        p.port = port
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout=10):
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return p.returncode

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture
def procs(tmp_path):
    ps = Procs(tmp_path)
    try:
        yield ps
    finally:
        ps.close()

"""Shared helpers for the end-to-end tests.

Every test starts the real ./lbproxy and ./lbbackend processes it needs on
free loopback ports, waits for readiness by polling the port, and the `procs`
fixture kills exactly what the test started, also when it fails.
"""
import os
import signal
import socket
import subprocess
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LBPROXY = os.path.join(ROOT, os.environ.get("LBPROXY", "lbproxy"))
LBBACKEND = os.path.join(ROOT, os.environ.get("LBBACKEND", "lbbackend"))


def free_port():
    """A port that was free a moment ago (bind to 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0, proc=None):
    """Polls until 127.0.0.1:port accepts a connection."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} "
                               f"before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def rss_kb(pid):
    """Resident set size of a process, KiB (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    """Open descriptors of a process."""
    return len(os.listdir(f"/proc/{pid}/fd"))


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


def http_request(port, raw, timeout=5.0, read_all=True):
    """Sends raw bytes to 127.0.0.1:port and returns what came back until
    the server closed the connection (or timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        if not read_all:
            return s.recv(65536)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)

"""Client-side helpers for tests that need a DNS server of their own:
tests/lib/dnsserver.py started on loopback with a zone file the test
rewrites (Dns), and a reader of a child's JSON lines (Lines).  Shared by
tests/e2e/test_dns.py (the resolver alone) and test_discovery.py (lbproxy's
pools following DNS)."""
import json
import os
import queue
import subprocess
import threading
import time

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "dnsserver.py")
PYTHON = "/usr/bin/python3"


class Lines:
    """A child's stdout, one JSON object a line, read by a thread."""

    def __init__(self, proc):
        self.q = queue.Queue()
        self.seen = []
        self.pending = []
        self.t = threading.Thread(target=self._read, args=(proc.stdout,),
                                  daemon=True)
        self.t.start()

    def _read(self, f):
        for raw in f:
            try:
                self.q.put(json.loads(raw))
            except ValueError:
                self.q.put({"event": "unparsed", "raw": raw})

    def next(self, pred, timeout, what):
        """The first line not taken yet that satisfies pred (lines that
        match no wait stay for a later one)."""
        for i, line in enumerate(self.pending):
            if pred(line):
                return self.pending.pop(i)
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {what} within {timeout} s; "
                                     f"lines: {self.seen[-10:]}")
            try:
                line = self.q.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(line)
            if pred(line):
                return line
            self.pending.append(line)

    def drain(self, seconds):
        """Every line that arrives within `seconds`."""
        out, end = [], time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                line = self.q.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            out.append(line)
        self.pending += out
        return out


class Dns:
    """dnsserver.py with a zone file the test rewrites atomically."""

    def __init__(self, tmp_path, zone):
        self.path = tmp_path / "zone.json"
        self.set(zone)
        self.proc = subprocess.Popen(
            [PYTHON, SERVER, "--zone", str(self.path)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = Lines(self.proc)
        self.port = self.lines.next(lambda m: "port" in m, 10,
                                    "server port")["port"]
        self.queries = []

    def set(self, zone):
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(zone))
        os.replace(tmp, self.path)  # a new inode: the server re-reads it

    def log(self):
        self.lines.drain(0.05)
        self.queries += [m for m in self.lines.pending if "q" in m]
        self.lines.pending = []
        return self.queries

    def wait_query(self, pred, timeout=3.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(pred(m) for m in self.log()):
                return True
        return False

    def count(self, name, qtype="A"):
        return sum(1 for m in self.log()
                   if m["q"] == name and m["type"] == qtype)

    def close(self):
        self.proc.kill()
        self.proc.wait(5)

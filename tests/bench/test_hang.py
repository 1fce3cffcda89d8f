"""scripts/bench/hang.py, run small (3-s runs, backend A frozen for 1 s
from t = 1 s, lbproxy round-robin only, CSV log on): both runs produce
their figures, the hang shows when per-try deadlines are off (round-robin
keeps sending to the frozen backend, so some request waits the whole
freeze) and is absorbed when they are on (no request waits near the
freeze), the backend was really stopped and resumed, and nothing it
started is left running."""
import csv
import os
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HANG = os.path.join(ROOT, "scripts", "bench", "hang.py")
HANG_S = 1.0


def tree_processes():
    """pids running this tree's lbproxy or lbbackend."""
    exes = {os.path.join(ROOT, b) for b in ("lbproxy", "lbbackend")}
    pids = set()
    for d in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{d}/exe") in exes:
                pids.add(d)
        except OSError:
            pass
    return pids


def run_small(out, *extra):
    return subprocess.run([sys.executable, HANG, "--configs", "lb-rr-p",
                           "-d", "3", "--hang-start", "1",
                           "--hang-len", str(HANG_S), "-r", "1", "--log",
                           "--timeout", "40", "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=60,
                          cwd=ROOT)


def test_per_try_deadlines_absorb_the_hang(tmp_path):
    out = tmp_path / "hang-per-try"
    before = tree_processes()
    r = run_small(out, "--no-baseline")
    assert r.returncode == 0, r.stdout + r.stderr
    with open(out / "results.csv") as f:
        hang = next(csv.DictReader(f))
    assert hang["victim_state"] == "T", hang
    assert int(hang["errors"]) == 0, hang
    # each request on the frozen backend is retried after its per-try
    # deadline (50 ms .. 1 s), never held for the whole freeze
    assert float(hang["max_ms"]) < HANG_S * 1000, hang
    assert not tree_processes() - before


def test_small_run_shows_the_hang(tmp_path):
    out = tmp_path / "hang-smoke"
    before = tree_processes()
    r = run_small(out, "--set", "retry.per_try_min_ms=0")
    assert r.returncode == 0, r.stdout + r.stderr
    with open(out / "results.csv") as f:
        rows = {row["fault"]: row for row in csv.DictReader(f)}
    assert sorted(rows) == ["hang", "nofault"], rows
    for row in rows.values():
        assert row["config"] == "lb-rr-p"
        assert float(row["rps"]) > 0, row
        for k in ("max_ms", "p99_ms", "p999_ms"):
            assert float(row[k]) > 0, row
        assert int(row["errors"]) == 0, row
        assert row["slow_requests"] != "", row  # the Lua hook's count
        assert row["proxy_alive"] == "1", row
    hang = rows["hang"]
    assert hang["victim_state"] == "T", hang
    # both times are written with 3 decimals: allow that rounding
    assert float(hang["cont_at_s"]) - float(hang["stop_at_s"]) >= \
        HANG_S - 0.0015, hang
    # A request in flight on the frozen backend waits the whole freeze.
    assert float(hang["max_ms"]) >= HANG_S * 1000, hang
    assert int(hang["slow_requests"]) >= 1, hang
    # The CSV log's exact count of connections, bounded by wrk's count of
    # slow requests (each stuck connection has at least one).
    stuck = int(hang["log_stuck_clients"])
    assert 1 <= stuck <= int(hang["slow_requests"]), hang
    assert stuck <= 100
    summary = (out / "summary.md").read_text()
    assert "| lb-rr-p | lbproxy round-robin |" in summary, summary
    assert "(reference)" in summary
    assert summary in r.stdout
    left = tree_processes() - before
    assert not left, left

"""scripts/bench/drain.py, run small (one 3-s round, B drained at 1 s):
the round gives every figure, B's in-flight reached 0 with no failed
request and no request to B after it was drained (counted at lbproxy and
at B), both bad tokens got 401 and changed nothing, and nothing it started
is left running."""
import csv
import os
import subprocess
import sys

from test_hang import tree_processes

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DRAIN = os.path.join(ROOT, "scripts", "bench", "drain.py")


def test_small_run_drains_without_failures(tmp_path):
    out = tmp_path / "drain"
    before = tree_processes()
    r = subprocess.run([sys.executable, DRAIN, "-r", "1", "-d", "3",
                        "--drain-at", "1", "-c", "50", "--out", str(out)],
                       capture_output=True, text=True, timeout=90, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "target" in r.stdout and ": met" in r.stdout, r.stdout
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1, rows
    row = rows[0]
    assert int(row["requests"]) > 0 and int(row["errors"]) == 0, row
    # 20 ms per request on 50 connections: B had requests in flight
    assert int(row["in_flight_at_drain"]) > 0, row
    assert float(row["drain_ms"]) >= 0, row
    assert row["b_after_drained_proxy"] == "0", row
    assert row["b_after_drained_backend"] == "0", row
    assert row["bad_token_statuses"] == "401 401", row
    assert row["bad_token_changed"] == "0", row
    assert tree_processes() <= before

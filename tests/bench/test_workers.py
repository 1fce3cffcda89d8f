"""scripts/bench/workers.py, run small (2-s runs, one round, no warm-up,
no hang part): --workers 1 and 2 give their capped and flat figures, the
admin listener of two workers counts every request wrk saw (and at most
one more per connection, those wrk's stop cut off) in /api/stats and in
/metrics alike, the per-worker rows add up to the total, a worker killed
with SIGKILL is replaced and leaves no in-flight count behind, and
nothing it started is left running.  Skipped, with the reason, when the
lbproxy built here has no [proxy] workers."""
import csv
import os
import subprocess
import sys

import pytest

from test_hang import tree_processes

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORKERS = os.path.join(ROOT, "scripts", "bench", "workers.py")
sys.path.insert(0, os.path.dirname(WORKERS))
import workers  # noqa: E402

CONNS = 50


def test_small_run_gives_every_figure(tmp_path):
    why = workers.no_workers_key()
    if why:
        pytest.skip(f"lbproxy has no [proxy] workers: {why}")
    out = tmp_path / "workers"
    before = tree_processes()
    r = subprocess.run([sys.executable, WORKERS, "--parts",
                        "capped,cost,fault", "-d", "2", "-r", "1", "-c",
                        str(CONNS), "--fault-duration", "3", "--kill-at",
                        "1", "--settle", "0.5", "--out", str(out)],
                       capture_output=True, text=True, timeout=90, cwd=ROOT,
                       env=dict(os.environ, WARMUP="0"))
    assert r.returncode == 0, r.stdout + r.stderr
    with open(out / "results.csv") as f:
        rows = {(row["part"], row["config"]): row for row in csv.DictReader(f)}
    assert sorted(rows) == [("capped", "w1"), ("capped", "w2"),
                            ("cost", "w1"), ("cost", "w2"),
                            ("fault", "w2")], sorted(rows)
    for part in ("capped", "cost"):
        for name in ("w1", "w2"):
            row = rows[(part, name)]
            assert float(row["rps"]) > 0 and int(row["errors"]) == 0, row
            assert float(row["proxy_cpu_us_per_req"]) > 0, row
        assert rows[(part, "w2")]["workers"] == "2"
        row = rows[(part, "w2")]
        wrk, stats = int(row["requests"]), int(row["stats_requests"])
        # one view: both admin views count the same requests, every one
        # wrk counted, plus at most one in flight per connection
        assert int(row["metrics_requests"]) == stats, row
        assert wrk <= stats <= wrk + CONNS, row
        per = [int(n) for n in row["worker_requests"].split()]
        assert len(per) == 2 and sum(per) == stats, row
    assert rows[("capped", "w1")]["bound_rps"] == "1400"
    fault = rows[("fault", "w2")]
    assert fault["replaced_pid"] not in ("", fault["killed_pid"]), fault
    # bounded poll: a replacement within 5 s (the target is 1 s)
    assert 0 <= float(fault["replace_ms"]) < 5000, fault
    assert fault["restart_logged"] == "1", fault
    assert fault["inflight_zero_ms"] != "", fault
    assert all(kv.endswith("=0") for kv in
               fault["inflight_last"].split()), fault
    assert int(fault["requests"]) > 0, fault
    summary = (out / "summary.md").read_text()
    for section in ("### capped", "### one view", "### fault", "### cost"):
        assert section in summary, summary
    assert "| w2 |" in summary and "x bound" in summary
    assert not tree_processes() - before

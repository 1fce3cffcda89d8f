"""scripts/bench/budget.py, run small (4-s runs, every backend 10x slower
from t = 1 s for 2 s, two variants): both produce their figures from wrk
and the CSV log, the extra attempts are read from the log's retries and
hedge columns (none without per-try deadlines), the summary names the
target, and nothing it started is left running."""
import csv
import os
import subprocess
import sys

from test_hang import tree_processes

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUDGET = os.path.join(ROOT, "scripts", "bench", "budget.py")


def test_small_run_counts_the_extra_attempts(tmp_path):
    out = tmp_path / "budget"
    before = tree_processes()
    r = subprocess.run([sys.executable, BUDGET, "-d", "4", "--slow-start",
                        "1", "--slow-len", "2", "-r", "1", "--variants",
                        "hedge,no-hedge", "--out", str(out)],
                       capture_output=True, text=True, timeout=90, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(out / "results.csv") as f:
        rows = {row["variant"]: row for row in csv.DictReader(f)}
    assert sorted(rows) == ["hedge", "no-hedge"], rows
    for row in rows.values():
        assert float(row["rps"]) > 0 and int(row["errors"]) == 0, row
        # the log holds (close to) every request wrk counted
        assert int(row["log_requests"]) >= int(row["requests"]), row
        assert int(row["phase_requests"]) > 0, row
        assert int(row["hedges"]) <= int(row["extra"]), row
    assert rows["no-hedge"]["extra"] == "0" and \
        rows["no-hedge"]["hedges"] == "0", rows["no-hedge"]
    summary = (out / "summary.md").read_text()
    assert "| hedge |" in summary and "| no-hedge |" in summary, summary
    assert "extra attempts" in summary
    assert not tree_processes() - before

"""scripts/bench/openbench.py, run small (capped at half its 1400 req/s
bound, lbproxy least-conn, 3-s runs): the row is written with the offered
rate the scenario's profiles imply, the delivered rate close to it, no
arrival waiting for a connection, latencies from the intended send time
at least the backends' service time, the p99-against-load plot, and
nothing left running."""
import csv
import os
import subprocess
import sys

from test_hang import tree_processes

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OPENBENCH = os.path.join(ROOT, "scripts", "bench", "openbench.py")


def test_small_run_at_half_the_bound(tmp_path):
    out = tmp_path / "open"
    before = tree_processes()
    r = subprocess.run([sys.executable, OPENBENCH, "--offered", "0.5",
                        "--scenarios", "capped", "--configs", "lb-lc-p",
                        "-d", "3", "--warmup", "1", "--out", str(out)],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["config"] == "lb-lc-p" and row["scenario"] == "capped"
    assert abs(float(row["offered_rps"]) - 700.0) < 1.0, row
    assert 0.8 * 700 < float(row["delivered_rps"]) < 1.2 * 700, row
    assert row["waited"] == "0" and row["errors"] == "0", row
    # the fastest backend's service is 5 ms + exp 5 ms
    assert 5.0 <= float(row["p50_ms"]) <= float(row["p99_ms"]), row
    assert (out / "plots" / "openloop-capped.png").stat().st_size > 1000
    assert "| capped | 50% (700/s) | lb-lc-p |" in (out / "summary.md"
                                                    ).read_text()
    assert not tree_processes() - before

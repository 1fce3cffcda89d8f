"""scripts/bench/scaleout.py, run small (2-s runs, one round, no warm-up):
one and two instances behind the nftables VIP both produce a figure
against the capped set's bound without errors, the two instances share
wrk's connections and so its requests, the summary names the target, and
nothing it started is left running: no process, no namespace.  Skipped,
with the reason, where network namespaces or nftables are unavailable."""
import csv
import os
import subprocess
import sys

import pytest

from test_hang import tree_processes

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import netns  # noqa: E402

SCALEOUT = os.path.join(ROOT, "scripts", "bench", "scaleout.py")


def namespaces():
    r = subprocess.run(["ip", "netns", "list"], capture_output=True,
                       text=True, timeout=10)
    return {line.split()[0] for line in r.stdout.splitlines() if line}


def test_small_run_measures_one_and_two_instances(tmp_path):
    reason = netns.unavailable()
    if reason:
        pytest.skip(reason)
    out = tmp_path / "scaleout"
    before, ns_before = tree_processes(), namespaces()
    r = subprocess.run([sys.executable, SCALEOUT, "-d", "2", "-r", "1",
                        "--out", str(out)], capture_output=True, text=True,
                       timeout=90, cwd=ROOT, env=dict(os.environ, WARMUP="0"))
    assert r.returncode == 0, r.stdout + r.stderr
    with open(out / "results.csv") as f:
        rows = {row["config"]: row for row in csv.DictReader(f)}
    assert sorted(rows) == ["one", "two"], rows
    for row in rows.values():
        assert float(row["rps"]) > 0 and int(row["errors"]) == 0, row
        assert row["bound_rps"] == "1400", row
    per = [int(n) for n in rows["two"]["instance_requests"].split()]
    assert len(per) == 2 and min(per) > 0.3 * sum(per), per
    assert sum(per) >= int(rows["two"]["requests"]), per
    summary = (out / "summary.md").read_text()
    assert "| one |" in summary and "| two |" in summary, summary
    assert "x bound" in summary
    assert not tree_processes() - before
    assert namespaces() == ns_before

"""make bench's TLS rows, run small (SCENARIOS=tls,tls-close, one 1-s run
each, no warm-up): lbproxy and each installed peer serve wrk over https
with no error, the wrk command really named an https URL (and, for
tls-close, sent Connection: close), every proxy made new connections per
request there (far fewer requests per second than keep-alive), the report
has both scenarios, and nothing it started is left running."""
import csv
import os
import shutil
import subprocess
import sys

from test_hang import tree_processes

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BENCH = os.path.join(ROOT, "scripts", "bench", "bench.py")


def test_tls_scenarios_give_rows(tmp_path):
    configs = ["lb-rr-p-tls"] + [c for c, exe in (
        ("nginx-rr-ka-tls", "nginx"), ("haproxy-rr-reuse-tls", "haproxy"))
        if shutil.which(exe)]
    before = tree_processes()
    env = dict(os.environ, SCENARIOS="tls,tls-close", DURATION="1",
               REPEAT="1", WARMUP="0", CONFIGS=",".join(configs),
               OUT=str(tmp_path / "run"), LOG="off")
    r = subprocess.run([sys.executable, BENCH], capture_output=True,
                       text=True, timeout=180, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    run = tmp_path / "run"
    with open(run / "results.csv") as f:
        rows = list(csv.DictReader(f))
    got = {(row["scenario"], row["config"]): row for row in rows}
    assert sorted(got) == sorted((s, c) for s in ("tls", "tls-close")
                                 for c in configs), sorted(got)
    for (scen, cfg), row in got.items():
        assert float(row["rps"]) > 0 and int(row["errors"]) == 0, row
        with open(run / row["wrk_raw"]) as f:
            cmd = f.readline()
        assert "https://127.0.0.1:" in cmd, cmd
        assert ("Connection: close" in cmd) == (scen == "tls-close"), cmd
    for cfg in configs:
        ka = float(got[("tls", cfg)]["rps"])
        close = float(got[("tls-close", cfg)]["rps"])
        # a handshake per request costs far more than a keep-alive request
        assert close < ka / 2, (cfg, ka, close)
    with open(run / "report.md") as f:
        report = f.read()
    assert "## tls\n" in report and "## tls-close\n" in report
    assert tree_processes() <= before

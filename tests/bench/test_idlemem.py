"""scripts/bench/idlemem.py, run small (N=200, one round), produces a
positive KiB-per-idle-connection figure for lbproxy and for each peer that
is installed (nginx, HAProxy are skipped when absent), leaves a results.csv
and a summary table, and stops every process it started."""
import csv
import os
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
IDLEMEM = os.path.join(ROOT, "scripts", "bench", "idlemem.py")
sys.path.insert(0, os.path.join(ROOT, "scripts", "bench"))
import benchlib as bl  # noqa: E402


def ours():
    """Processes of this tree's binaries, or whose command line names a
    run directory under /tmp (the peers run with -p DIR / -f DIR/...)."""
    exes = {os.path.join(ROOT, "lbproxy"), os.path.join(ROOT, "lbbackend")}
    found = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            exe = os.readlink(f"/proc/{d}/exe")
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found[d] = (exe, cmd)
    return {d: v for d, v in found.items() if v[0] in exes
            or "idlemem-smoke" in v[1]}


def test_small_run_reports_positive_figures(tmp_path):
    out = tmp_path / "idlemem-smoke"
    before = ours()
    r = subprocess.run([sys.executable, IDLEMEM, "-n", "200", "-r", "1",
                        "--settle", "0.2", "--timeout", "60",
                        "--out", str(out)],
                       capture_output=True, text=True, timeout=90, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    got = {row["proxy"]: row for row in rows}
    want = ["lbproxy"] + [p for p in ("nginx", "haproxy")
                          if "skipping " + p not in r.stdout]
    assert sorted(got) == sorted(want), r.stdout
    for name, row in got.items():
        assert int(row["n"]) == 200, row
        assert float(row["before_kib"]) > 0, row
        assert float(row["kib_per_conn"]) > 0, row
    summary = (out / "summary.md").read_text()
    assert "| lbproxy | 1 | 200 |" in summary, summary
    assert "KiB per idle connection" in summary
    # Nothing it started is left: no new lbproxy / lbbackend of this tree,
    # no peer running from the run directory.
    left = {d: v for d, v in ours().items() if d not in before}
    assert not left, left


def test_response_done_needs_the_whole_body():
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    assert bl.response_done(head) == 0
    assert bl.response_done(head + b"abc") == 0
    assert bl.response_done(head + b"abcde") == 200
    assert bl.response_done(b"HTTP/1.1 502 Bad Gateway\r\n"
                                 b"content-length: 0\r\n\r\n") == 502
    assert bl.response_done(b"HTTP/1.1 200 OK\r\n") == 0

"""scripts/analyze turns a run directory into a report whose numbers are
the medians of the raw wrk JSON lines, computes ratios to the best peer and
per-backend traffic shares from the lbproxy request log, draws the plots,
and flags a results.csv that disagrees with the raw files.

The run directory is synthetic, written here through the same benchlib
functions the benchmark uses (result_row, ResultsWriter)."""
import importlib.machinery
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts", "bench"))
import benchconf as bc  # noqa: E402
import benchlib as bl  # noqa: E402
import benchreport as br  # noqa: E402

ANALYZE = os.path.join(ROOT, "scripts", "analyze")


def load_analyze():
    loader = importlib.machinery.SourceFileLoader("analyze_mod", ANALYZE)
    spec = importlib.util.spec_from_loader("analyze_mod", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


# Per configuration: per-run (rps, p99 us, status errors).
RUNS = {
    "lb-rr-p": [(30000.0, 3000, 0), (32000.0, 2800, 0), (31000.0, 2900, 1)],
    "lb-ewma-p": [(29000.0, 2500, 0), (28000.0, 2600, 0),
                  (27000.0, 2700, 0)],
    "nginx-rr-ka": [(40000.0, 2000, 0), (41000.0, 2100, 0),
                    (39000.0, 1900, 0)],
    "haproxy-rr-reuse": [(35000.0, 1500, 2), (36000.0, 1600, 2),
                         (34000.0, 1700, 2)],
}
T0 = 1_700_000_000.0
DURATION = 2.0
SHARE = {"A": 5, "B": 3, "C": 2}  # requests per 10 ms slot in the log


def summary(rps, p99, status):
    req = int(rps * DURATION)
    return {"duration_us": int(DURATION * 1e6), "requests": req,
            "bytes": req * 150, "rps": rps, "mean_us": p99 / 3.0,
            "stdev_us": 100.5, "min_us": 50, "max_us": p99 * 4,
            "p50_us": p99 // 3, "p75_us": p99 // 2, "p90_us": p99 * 2 // 3,
            "p99_us": p99, "p999_us": p99 * 2,
            "errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0,
                       "status": status}}


def write_log(path, t0):
    """An lbproxy request log: warm-up rows before t0 (all on C, must be
    ignored), then SHARE-proportioned rows over the run."""
    hdr = ("timestamp,client,method,path,backend_id,backend_addr,status,"
           "req_bytes,resp_bytes,connect_ms,ttfb_ms,upstream_ms,total_ms,"
           "reused,mode,conn_model,retries,error\n")

    def ts(t):
        sec = int(t)
        us = int(round((t - sec) * 1e6))
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + \
            f".{us:06d}Z"

    lines = [hdr]
    for i in range(50):
        lines.append(f"{ts(t0 - 1 + i * 0.01)},127.0.0.1:1,GET,/,C,"
                     f"127.0.0.1:3,200,40,150,,0.1,9.000,9.100,1,"
                     f"round-robin,persistent,0,\n")
    lat = {"A": "1.000", "B": "2.000", "C": "4.000"}
    for slot in range(int(DURATION * 100) - 1):
        t = t0 + slot * 0.01
        for b, n in SHARE.items():
            for _ in range(n):
                lines.append(f"{ts(t)},127.0.0.1:1,GET,/,{b},127.0.0.1:2,"
                             f"200,40,150,,0.1,{lat[b]},{lat[b]},1,"
                             f"round-robin,persistent,0,\n")
    # One failed request without a backend.
    lines.append(f"{ts(t0 + 0.5)},127.0.0.1:1,GET,/,,,502,40,100,,,,0.2,0,"
                 f"round-robin,persistent,2,connect\n")
    with open(path, "w") as f:
        f.writelines(lines)


@pytest.fixture
def run_dir(tmp_path):
    d = tmp_path / "run"
    (d / "synthetic" / "wrk").mkdir(parents=True)
    (d / "synthetic" / "lbproxy").mkdir()
    (d / "scenarios").mkdir()
    (d / "scenarios" / "synthetic.ini").write_text(
        "[scenario]\ndescription = test\n[backends]\n"
        "A = --profile exp:5ms --phase 1s:exp:50ms\n"
        "B = --profile exp:10ms\nC = --profile exp:20ms\n")
    scen = bc.Scenario("synthetic")
    scen.duration = int(DURATION)
    w = br.ResultsWriter(str(d / "results.csv"))
    t = T0
    for k in range(3):
        for name, runs in RUNS.items():
            cfg = bc.CONFIGS[name]
            rps, p99, st = runs[k]
            js = d / "synthetic" / "wrk" / f"{name}-r{k + 1}.json"
            raw = d / "synthetic" / "wrk" / f"{name}-r{k + 1}.txt"
            js.write_text(json.dumps(summary(rps, p99, st)) + "\n")
            raw.write_text("raw wrk output\n")
            log = ""
            if cfg.kind == "lbproxy":
                log = str(d / "synthetic" / "lbproxy" / f"{name}.csv")
                if k == 0:
                    write_log(log, t)
            row = br.result_row(scen, cfg, k + 1, t, t + DURATION,
                                summary(rps, p99, st), 1.0, 0.5, 0.4,
                                str(d), str(raw), str(js), log)
            w.add(row)
            t += DURATION + 0.5
    w.close()
    (d / "machine.json").write_text(json.dumps({"cpu_model": "test"}))
    return d


def table_row(report, name, section=None):
    """The row of `name` in the first table after the heading `section`
    (default: the first per-scenario section, after the headline)."""
    lines = report.splitlines()
    start = 0
    for i, line in enumerate(lines):
        if line.startswith("## ") and (line == section if section
                                       else "Headline" not in line):
            start = i
            break
    for line in lines[start:]:
        if line.startswith(f"| {name} |"):
            return [c.strip() for c in line.strip("|").split("|")]
    raise AssertionError(f"no table row for {name} in:\n{report}")


def test_report_numbers_are_medians_of_raw_files(run_dir):
    an = load_analyze()
    report = an.analyze(str(run_dir))
    assert "Consistency check: all 12 rows" in report
    for name, runs in RUNS.items():
        cells = table_row(report, name)
        assert cells[2] == "3"
        assert cells[3] == f"{statistics.median(r[0] for r in runs):.0f}"
        assert cells[6] == f"{statistics.median(r[1] for r in runs) / 1000:.3f}"
        assert cells[8] == f"{statistics.median(r[2] for r in runs):.0f}"
        # the headline table repeats the same medians: rps / p99 ms
        head = table_row(report, name,
                         "## Headline: requests/s / p99 ms (medians over runs)")
        assert head[1] == (
            f"{statistics.median(r[0] for r in runs):.0f} / "
            f"{statistics.median(r[1] for r in runs) / 1000:.1f}")
    # Ratios: best peer by rps is nginx (40000), by p99 haproxy (1.6 ms).
    cells = table_row(report, "lb-rr-p")
    assert cells[10] == f"{31000 / 40000:.2f}"
    assert cells[11] == f"{2.9 / 1.6:.2f}"
    assert table_row(report, "nginx-rr-ka")[10] == "-"
    assert "by rps: **nginx-rr-ka**" in report
    assert "by p99: **haproxy-rr-reuse**" in report


def test_backend_shares_come_from_the_run_window_of_the_log(run_dir):
    an = load_analyze()
    report = an.analyze(str(run_dir))
    cells = table_row(report, "lb-rr-p (1)")
    # 199 slots x 10 rows + 1 failed row; warm-up rows before t0 excluded.
    n = 199 * 10 + 1
    assert cells[1] == str(n)
    assert cells[2:6] == [f"{100 * 199 * 5 / n:.1f}%",
                          f"{100 * 199 * 3 / n:.1f}%",
                          f"{100 * 199 * 2 / n:.1f}%",
                          f"{100 / n:.1f}%"]
    assert cells[-1] == "1"


def test_plots_are_written(run_dir):
    an = load_analyze()
    an.analyze(str(run_dir))
    for p in ("synthetic-throughput", "synthetic-latency",
              "synthetic-backends"):
        with open(run_dir / "plots" / f"{p}.png", "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert an.phase_marks(str(run_dir / "scenarios" / "synthetic.ini")) \
        == [1.0]


def test_results_that_disagree_with_raw_files_are_flagged(run_dir):
    res = run_dir / "results.csv"
    text = res.read_text()
    # Inflate one run's rps in results.csv only.
    new = re.sub(r"(synthetic,nginx-rr-ka,nginx,round_robin,persistent,2,"
                 r"(?:[^,]*,){7})41000\.000", r"\g<1>99999.000", text)
    assert new != text
    res.write_text(new)
    r = subprocess.run(["/usr/bin/python3", ANALYZE, str(run_dir)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    report = (run_dir / "report.md").read_text()
    assert "Consistency check FAILED" in report
    assert "nginx-rr-ka run 2: rps 99999.0 != raw 41000.0" in report


def test_idle_workers_pct_is_the_share_of_worker_time_left_idle():
    # 24 workers for 10 s = 240 worker-s; 0.6 worker-s more idle = 0.25%.
    assert bl.idle_pct((1_000_000, 24), (1_600_000, 24), 10.0) == "0.25"
    # unlimited workers (none counted) or a missing reading: no figure
    assert bl.idle_pct((0, 0), (0, 0), 10.0) == ""
    assert bl.idle_pct(None, (5, 8), 10.0) == ""

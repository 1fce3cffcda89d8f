"""make bench's open-loop stage, run small (capped, one 2-s closed-loop
run, then 2 s at 50% of the capacity bound open-loop): the open results
and plot are written under the run directory, the delivered rate is near
the offered one with no error and no arrival waiting for a connection,
report.md ends with the open-loop section; OPEN=0 skips the stage; and a
scenario without a capacity bound runs at its own open_rates."""
import csv
import math
import os
import subprocess
import sys

from test_hang import tree_processes

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BENCH = os.path.join(ROOT, "scripts", "bench", "bench.py")
sys.path.insert(0, os.path.dirname(BENCH))
import benchconf as bc  # noqa: E402
import benchlib as bl  # noqa: E402
import openbench  # noqa: E402


def run_bench(out, **extra):
    env = dict(os.environ, SCENARIOS="capped", CONFIGS="lb-ewma-p",
               DURATION="2", REPEAT="1", WARMUP="0", LOG="off",
               OPEN_CONFIGS="lb-ewma-p", OFFERED="0.5", OPEN_DURATION="2",
               OUT=str(out), **extra)
    return subprocess.run([sys.executable, BENCH], capture_output=True,
                          text=True, timeout=180, cwd=ROOT, env=env)


def test_open_stage_in_make_bench(tmp_path):
    before = tree_processes()
    r = run_bench(tmp_path / "run")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = tmp_path / "run" / "open"
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(x["scenario"], x["config"]) for x in rows] == \
        [("capped", "lb-ewma-p")], rows
    row = rows[0]
    assert float(row["offered_rps"]) == 700.0, row  # half of 1400
    # Poisson counts over 2 s at 700/s: within 15% by a wide margin
    assert abs(float(row["delivered_rps"]) - 700) < 105, row
    assert row["errors"] == "0" and row["waited"] == "0", row
    assert (out / "plots" / "openloop-capped.png").exists()
    with open(tmp_path / "run" / "report.md") as f:
        report = f.read()
    assert "## Open loop" in report and "open/plots/openloop-capped.png" \
        in report
    assert tree_processes() <= before


def test_open_zero_skips_the_stage(tmp_path):
    r = run_bench(tmp_path / "run", OPEN="0")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert not (tmp_path / "run" / "open").exists()


def test_rates_without_a_capacity_bound():
    path = os.path.join(ROOT, "config", "scenarios", "hetero.ini")
    scen = bc.Scenario.load(path)
    assert openbench.capacity(scen) is None
    assert openbench.scenario_rates(scen, [0.5, 0.8]) == \
        [(r, r) for r in scen.open_rates]
    assert scen.open_rates
    assert openbench.scenario_rates(scen, [0.5, 3000.0]) == [(3000.0,
                                                              3000.0)]
    capped = bc.Scenario.load(os.path.join(ROOT, "config", "scenarios",
                                           "capped.ini"))
    assert openbench.scenario_rates(capped, [0.5]) == [(0.5, 700.0)]


def test_tail_floor_of_capped():
    """The p99 floor on capped (5+exp5, 10+exp10, 20+exp20 ms, 8 workers
    each, capacity 1400/s), worked by hand: at 80% (1120/s) the fast
    backend takes its whole 800/s and the medium one 320/s, so the floor
    x solves (800 e^-((x-5)/5) + 320 e^-((x-10)/10)) / 1120 = 0.01, about
    43.8 ms; at 95% the slow one must take 130/s, about 67.6 ms."""
    scen = bc.Scenario.load(os.path.join(ROOT, "config", "scenarios",
                                         "capped.ini"))

    def tail(x, shares):
        return sum(n * math.exp(-(x - b) / m) for n, b, m in shares) \
            / sum(n for n, _, _ in shares)

    f80 = openbench.tail_floor(scen, 1120)
    assert abs(tail(f80, [(800, 5, 5), (320, 10, 10)]) - 0.01) < 1e-6
    assert 43.7 < f80 < 43.9, f80
    f95 = openbench.tail_floor(scen, 1330)
    assert abs(tail(f95, [(800, 5, 5), (400, 10, 10), (130, 20, 20)])
               - 0.01) < 1e-6
    assert 67.5 < f95 < 67.7, f95
    # no floor at or above capacity, or where a profile changes
    assert openbench.tail_floor(scen, 1400) is None
    deg = bc.Scenario.load(os.path.join(ROOT, "config", "scenarios",
                                        "degrade.ini"))
    assert openbench.tail_floor(deg, 100) is None


def test_service_tail():
    assert openbench.service_tail("fixed:10ms", 9.9) == 1.0
    assert openbench.service_tail("fixed:10ms", 10.0) == 0.0
    assert openbench.service_tail("exp:5ms+5ms", 5.0) == 1.0
    assert abs(openbench.service_tail("exp:5ms+5ms", 10.0)
               - math.exp(-1)) < 1e-12
    assert openbench.service_tail("uniform:10ms-20ms", 15.0) == 0.5
    assert openbench.service_tail("pareto:1ms", 1.0) is None

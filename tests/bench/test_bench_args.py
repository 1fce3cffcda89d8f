"""scripts/bench/bench.py's command line: --help prints the environment
settings and starts nothing; an unknown argument is refused (the matrix
takes its settings from the environment, so a mistyped flag must not start
an hour of runs)."""
import os
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BENCH = os.path.join(ROOT, "scripts", "bench", "bench.py")


def run(*args):
    return subprocess.run([sys.executable, BENCH, *args], capture_output=True,
                          text=True, timeout=30, cwd=ROOT)


def test_help_prints_the_settings_and_runs_nothing():
    r = run("--help")
    assert r.returncode == 0, r.stderr
    assert "Environment overrides: SCENARIOS" in r.stdout
    assert "DURATION" in r.stdout and "CONFIGS" in r.stdout
    assert "bench: done" not in r.stdout


def test_unknown_argument_is_refused():
    r = run("--quick", "--durration=1")
    assert r.returncode == 2
    assert "unknown argument '--durration=1'" in r.stderr
    assert r.stdout == ""

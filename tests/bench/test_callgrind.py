"""scripts/bench/callgrind.py, run small (200 measured requests), ends with
one `instructions/request: N` line whose N is positive and agrees with the
dump it wrote, in both connection models and over TLS (keep-alive, and a
resumed handshake per request); skipped without valgrind."""
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CALLGRIND = os.path.join(ROOT, "scripts", "bench", "callgrind.py")

pytestmark = pytest.mark.skipif(
    not shutil.which("valgrind") or not shutil.which("callgrind_control"),
    reason="valgrind is not installed")


@pytest.mark.parametrize("model", [[], ["--non-persistent"], ["--tls"],
                                   ["--tls", "--tls-handshakes"]])
def test_small_run_prints_instructions_per_request(tmp_path, model):
    out = tmp_path / "cg"
    args = [sys.executable, CALLGRIND, "-n", "200", "--warmup", "20",
            "--timeout", "120", "--out", str(out)] + model
    r = subprocess.run(args, capture_output=True, text=True, timeout=180,
                       cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    last = r.stdout.strip().splitlines()[-1]
    m = re.fullmatch(r"instructions/request: (\d+)", last)
    assert m, r.stdout
    per = int(m.group(1))
    assert per > 0
    dumps = [p for p in (out / "run1").iterdir()
             if re.fullmatch(r"callgrind\.out\.\d+\.1", p.name)]
    assert len(dumps) == 1, list((out / "run1").iterdir())
    total = next(int(line.split()[1]) for line in open(dumps[0])
                 if line.startswith("summary:"))
    assert round(total / 200) == per, (total, per)
    assert (out / "summary.txt").read_text().endswith(f"{last}\n")

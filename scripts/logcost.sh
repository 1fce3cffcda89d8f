#!/usr/bin/env bash
# The CSV request log's cost, now a configuration pair of the benchmark
# harness: `scripts/bench/bench.py --logcost` (also `make logcost`) runs
# lbproxy persistent round-robin in front of three 0 ms backends with
# --log off (lb-rr-p) and --log FILE (lb-rr-p-log), alternating, and prints
# medians and the on/off ratios.  Kept because README.md names this script.
#   scripts/logcost.sh                 DURATION=10 REPEAT=3 by default
#   DURATION=5 REPEAT=5 scripts/logcost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
for t in wrk taskset; do
    command -v "$t" >/dev/null || { scripts/install-deps.sh --bench; break; }
done
make -s all
exec /usr/bin/python3 scripts/bench/bench.py --logcost "$@"

#!/usr/bin/env bash
# Runs the benchmark matrix: every scenario in config/scenarios/ through
# lbproxy (several modes, persistent and not), nginx and HAProxy, then
# writes logs/bench/<timestamp>/report.md.  See docs/benchmarks.md.
#   scripts/bench.sh
#   SCENARIOS=flat,capped DURATION=5 REPEAT=1 scripts/bench.sh
#   DURATION=120 THREADS=4 scripts/bench.sh      # the original protocol
# Overrides: SCENARIOS DURATION REPEAT CONNS THREADS WARMUP CONFIGS LOG OUT
# ANALYZE.
set -euo pipefail
cd "$(dirname "$0")/.."
need_deps=0
for t in nginx haproxy wrk taskset; do
    command -v "$t" >/dev/null || need_deps=1
done
/usr/bin/python3 -c 'import pandas, matplotlib' 2>/dev/null || need_deps=1
if ((need_deps)); then
    scripts/install-deps.sh --bench
fi
exec /usr/bin/python3 scripts/bench/bench.py "$@"

#!/usr/bin/env bash
# Quick proxy benchmark: three 0 ms backends, wrk -t1 -c100, and six
# configurations -- direct to one backend (the ceiling), an L4 relay (the
# kernel floor, not a proxy; build/bench/relay), lbproxy persistent and
# non-persistent round-robin, nginx with and without upstream keepalive --
# interleaved, REPEAT times (default 3), medians, ratios and CPU time per
# request.  Results: logs/bench/quick-<timestamp>/.
#   scripts/quickbench.sh
#   DURATION=5 REPEAT=5 scripts/quickbench.sh
#   DURATION=3 REPEAT=1 CONFIGS=direct,relay,lb-rr-p scripts/quickbench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
need_deps=0
for t in nginx wrk taskset; do
    command -v "$t" >/dev/null || need_deps=1
done
if ((need_deps)); then
    scripts/install-deps.sh --bench
fi
exec /usr/bin/python3 scripts/bench/bench.py --quick "$@"

#!/usr/bin/env bash
# The main job: install what is missing, build, start three emulated
# backends (A fast, B medium, C slow: config/backends.ini), lbproxy in
# adaptive_ewma persistent mode with its dashboard, and a light background
# wrk load; print the dashboard URL; stop everything cleanly on Ctrl-C.
#   scripts/demo.sh                 (or: make demo)
#   MODE=round-robin CONNECTION=--non-persistent RATE_CONNS=8 scripts/demo.sh
#   DEMO_SECONDS=60 scripts/demo.sh (stop by itself after 60 s)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

MODE=${MODE:-adaptive_ewma}
CONNECTION=${CONNECTION:---persistent}
RATE_CONNS=${RATE_CONNS:-4}          # wrk connections of the background load
DEMO_SECONDS=${DEMO_SECONDS:-0}      # 0 = until Ctrl-C
SET=${SET:-}                          # backend set for scripts/backends.sh

scripts/install-deps.sh
make -j2 all

pids=()
cleanup() {
    trap - INT TERM EXIT
    echo
    echo "demo: stopping"
    for p in "${pids[@]}"; do
        pkill -P "$p" 2>/dev/null || true # the load loop's wrk
        kill "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    scripts/backends.sh stop $SET || true
}
trap cleanup INT TERM EXIT

scripts/backends.sh start $SET
mkdir -p logs
./lbproxy --mode "$MODE" "$CONNECTION" &
pids+=($!)
lb_wait_port 9090 10 "${pids[0]}"
lb_wait_port 5002 10 "${pids[0]}"

# A light, bounded background load: wrk in rounds of 60 s.
(
    while true; do
        wrk -t1 -c"$RATE_CONNS" -d60s http://127.0.0.1:9090/ >/dev/null 2>&1 || true
    done
) &
pids+=($!)

cat <<MSG

  lbproxy is running: mode $MODE, ${CONNECTION#--} upstreams
    proxy      http://127.0.0.1:9090/
    dashboard  http://127.0.0.1:5002/
    metrics    http://127.0.0.1:5002/metrics
    CSV log    logs/latest.csv (a new file per run)
  A light wrk load ($RATE_CONNS connections) is running.  Ctrl-C stops everything.

MSG

if ((DEMO_SECONDS > 0)); then
    sleep "$DEMO_SECONDS"
else
    wait "${pids[0]}"
fi

#!/usr/bin/env bash
# Runs lbproxy under valgrind (memcheck) through a short mixed load with
# faults — GET/HEAD/POST-echo, malformed requests, slowloris connections,
# a backend answering some 500s and resets, one backend SIGKILLed and
# restarted — then stops it with SIGTERM and checks that valgrind saw no
# invalid access and no leak.  By hand (not CI): SECONDS_LOAD (default 20).
# The stack and its cleanup are scripts/lib.sh's (shared with soak.sh).
#   scripts/valgrind-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh

SECONDS_LOAD=${SECONDS_LOAD:-20}
OUT=${OUT:-logs/valgrind/$(date +%Y%m%d-%H%M%S)}
lb_stack_init "$OUT"

lb_backend A --echo
lb_backend B --echo --error-rate 0.02 --reset-rate 0.01
lb_proxy valgrind --leak-check=full --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
    --log-file="$OUT/valgrind.txt" -- \
    --log "$OUT/requests.csv" --persistent \
    --set timeouts.client_header_ms=2000 --set health.max_fails=2 \
    --set health.fail_timeout_ms=500
lb_load summary --seconds "$SECONDS_LOAD" --threads 4 --slow 5 \
    --bad-every 50 &
LOAD=$!
LB_BG+=("$LOAD")
sleep $((SECONDS_LOAD / 3))
lb_backend_kill B
sleep 2
lb_backend_start B
wait "$LOAD"
lb_proxy_stop
RC=$LB_PXEXIT
cat "$OUT/summary.json"
grep -E "ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|still reachable|in use at exit" "$OUT/valgrind.txt" || true
if [ "$RC" -ne 0 ]; then
    echo "VALGRIND FAILED (exit $RC): see $OUT/valgrind.txt"
    exit 1
fi
echo "VALGRIND PASSED"

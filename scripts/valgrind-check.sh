#!/usr/bin/env bash
# Runs lbproxy under valgrind (memcheck) through a short mixed load with
# faults — GET/HEAD/POST-echo, malformed requests, slowloris connections,
# a backend answering some 500s and resets, one backend SIGKILLed and
# restarted — then stops it with SIGTERM and checks that valgrind saw no
# invalid access and no leak.  By hand (not CI): SECONDS_LOAD (default 20).
#   scripts/valgrind-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_LOAD=${SECONDS_LOAD:-20}
OUT=${OUT:-logs/valgrind/$(date +%Y%m%d-%H%M%S)}
PY=/usr/bin/python3
mkdir -p "$OUT"
free_port() {
    $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {
    for _ in $(seq 400); do
        $PY -c "import socket; socket.create_connection(('127.0.0.1', $1), timeout=0.5)" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on $1" >&2
    return 1
}
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

PA=$(free_port); PB=$(free_port); PORT=$(free_port)
./lbbackend --port "$PA" --id A --echo --quiet >"$OUT/a.log" 2>&1 & PIDS+=($!)
./lbbackend --port "$PB" --id B --echo --error-rate 0.02 --reset-rate 0.01 \
    --quiet >"$OUT/b.log" 2>&1 & PIDS+=($!)
BPID=$!
wait_port "$PA"; wait_port "$PB"
valgrind --leak-check=full --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
    --log-file="$OUT/valgrind.txt" \
    ./lbproxy --config /dev/null --listen "127.0.0.1:$PORT" --admin off \
    --log "$OUT/requests.csv" --persistent \
    --backend "127.0.0.1:$PA" --backend "127.0.0.1:$PB" \
    --set timeouts.client_header_ms=2000 --set health.max_fails=2 \
    --set health.fail_timeout_ms=500 >"$OUT/lbproxy.log" 2>&1 &
VPID=$!
PIDS+=($VPID)
wait_port "$PORT"
$PY scripts/fault_load.py "$PORT" --seconds "$SECONDS_LOAD" --threads 4 \
    --slow 5 --bad-every 50 >"$OUT/summary.json" &
LOAD=$!
sleep $((SECONDS_LOAD / 3))
kill -9 "$BPID"
sleep 2
./lbbackend --port "$PB" --id B --echo --quiet >>"$OUT/b.log" 2>&1 & PIDS+=($!)
wait "$LOAD"
kill -TERM "$VPID"
RC=0
wait "$VPID" || RC=$?
cat "$OUT/summary.json"
grep -E "ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|still reachable|in use at exit" "$OUT/valgrind.txt" || true
if [ "$RC" -ne 0 ]; then
    echo "VALGRIND FAILED (exit $RC): see $OUT/valgrind.txt"
    exit 1
fi
echo "VALGRIND PASSED"

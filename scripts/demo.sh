#!/usr/bin/env bash
# The main job: install what is missing, build, and play a two-minute story
# through lbproxy with its dashboard live at http://127.0.0.1:5002/:
#   0 s   three backends, A fast (5 ms), B medium (15 ms), C slow (40 ms),
#         4 workers each, under a load (32 connections) that needs more than
#         A alone: traffic is shared from the start
#   30 s  B slows down 10x (150 ms)            traffic leaves B
#   60 s  B recovers                           traffic comes back to B
#   80 s  A hangs for 5 s (SIGSTOP, SIGCONT)   hedges carry A's requests
#   100 s steady again; runs until Ctrl-C (or DEMO_SECONDS)
# Each step is posted to lbproxy's admin (POST /api/event) as it happens, so
# the dashboard's Events panel names it.  The README says what to watch.
#   scripts/demo.sh                     (or: make demo)
#   MODE=round-robin scripts/demo.sh    the same story without adaptation
#   DEMO_SECONDS=120 scripts/demo.sh    stop by itself after 120 s
# Knobs (environment): MODE, CONNECTION (--persistent|--non-persistent),
# LOAD_CONNS (32), SLOW_AT (30), RECOVER_AT (60), HANG_AT (80), HANG_S (5),
# END_AT (100), DEMO_SECONDS (0 = until Ctrl-C), PROXY_PORT (9090),
# ADMIN_PORT (5002), BACKEND_PORTS ("8081 8082 8083"), LOGS_DIR (logs),
# DEMO_SKIP_BUILD=1 (no install, no make: tests/browser/demo.test.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

MODE=${MODE:-adaptive_ewma}
CONNECTION=${CONNECTION:---persistent}
LOAD_CONNS=${LOAD_CONNS:-32}
SLOW_AT=${SLOW_AT:-30}
RECOVER_AT=${RECOVER_AT:-60}
HANG_AT=${HANG_AT:-80}
HANG_S=${HANG_S:-5}
END_AT=${END_AT:-100}
DEMO_SECONDS=${DEMO_SECONDS:-0}
PROXY_PORT=${PROXY_PORT:-9090}
ADMIN_PORT=${ADMIN_PORT:-5002}
read -r -a PORTS <<<"${BACKEND_PORTS:-8081 8082 8083}"
LOGS_DIR=${LOGS_DIR:-logs}
if ((${#PORTS[@]} != 3)); then
    echo "demo: BACKEND_PORTS needs three ports" >&2
    exit 2
fi
if ! ((SLOW_AT < RECOVER_AT && RECOVER_AT < HANG_AT &&
    HANG_AT + HANG_S < END_AT)); then
    echo "demo: want SLOW_AT < RECOVER_AT < HANG_AT < HANG_AT+HANG_S < END_AT" >&2
    exit 2
fi

# The cast.  B's phases are lbbackend's own (--phase, timed from its start,
# which is the story's start); the hang is a signal sent from here.
IDS=(A B C)
PROFILES=("lognormal:5ms,0.3" "lognormal:15ms,0.4" "lognormal:40ms,0.5")
B_SLOW=lognormal:150ms,0.4
WORKERS=4

if [[ ${DEMO_SKIP_BUILD:-0} != 1 ]]; then
    scripts/install-deps.sh
    make -j2 all
fi
mkdir -p "$LOGS_DIR"

pids=()
a_pid=
cleanup() {
    trap - INT TERM EXIT
    echo
    echo "demo: stopping"
    if [[ -n $a_pid ]]; then kill -CONT "$a_pid" 2>/dev/null || true; fi
    local p
    for p in "${pids[@]}"; do
        pkill -P "$p" 2>/dev/null || true # the load loop's wrk, a sleep
        kill "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup INT TERM EXIT

# Posts one line to the dashboard's Events panel and prints it here.
event() {
    local level=$1 text=$2
    printf '  %5.1f s  %s\n' "$(elapsed)" "$text"
    curl -s -m 2 -o /dev/null --data-binary "$text" \
        "http://127.0.0.1:$ADMIN_PORT/api/event?level=$level" || true
}

t0=${EPOCHREALTIME/,/.}
elapsed() { awk -v a="$t0" -v b="${EPOCHREALTIME/,/.}" 'BEGIN { printf "%.1f", b - a }'; }
# Sleeps until $1 seconds after the story's start.
at() {
    local left
    left=$(awk -v a="$t0" -v b="${EPOCHREALTIME/,/.}" -v t="$1" \
        'BEGIN { d = a + t - b; printf "%.3f", (d > 0 ? d : 0) }')
    sleep "$left"
}

bargs=()
for i in 0 1 2; do
    bargs=(--port "${PORTS[i]}" --id "${IDS[i]}" --profile "${PROFILES[i]}"
        --workers "$WORKERS" --quiet)
    if [[ ${IDS[i]} == B ]]; then
        bargs+=(--phase "${SLOW_AT}s:$B_SLOW" --phase "${RECOVER_AT}s:${PROFILES[i]}")
    fi
    ./lbbackend "${bargs[@]}" >>"$LOGS_DIR/demo-backend-${IDS[i]}.log" 2>&1 &
    pids+=($!)
    [[ ${IDS[i]} == A ]] && a_pid=$!
done
for i in 0 1 2; do lb_wait_port "${PORTS[i]}" 10 "${pids[i]}"; done

./lbproxy --mode "$MODE" "$CONNECTION" \
    --listen "127.0.0.1:$PROXY_PORT" --admin "127.0.0.1:$ADMIN_PORT" \
    --backend "127.0.0.1:${PORTS[0]},id=A" --backend "127.0.0.1:${PORTS[1]},id=B" \
    --backend "127.0.0.1:${PORTS[2]},id=C" --set "proxy.logs_dir=$LOGS_DIR" &
px=$!
pids+=("$px")
lb_wait_port "$PROXY_PORT" 10 "$px"
lb_wait_port "$ADMIN_PORT" 10 "$px"
kill -0 "$px" # not another program on those ports

# The load: closed-loop wrk, more concurrency than A's 4 workers serve.
(
    while true; do
        wrk -t1 -c"$LOAD_CONNS" -d600s "http://127.0.0.1:$PROXY_PORT/" >/dev/null 2>&1 || true
    done
) &
pids+=($!)

cat <<MSG

  lbproxy is running: mode $MODE, ${CONNECTION#--} upstreams
    dashboard  http://127.0.0.1:$ADMIN_PORT/   (watch Traffic share and Events)
    proxy      http://127.0.0.1:$PROXY_PORT/
    CSV log    $LOGS_DIR/latest.csv (a new file per run)
  The story (Ctrl-C stops everything):

MSG

(
    event info "start: A 5 ms, B 15 ms, C 40 ms, $WORKERS workers each; $LOAD_CONNS connections need more than A alone"
    at "$SLOW_AT"
    event warn "B slows down 10x (15 ms -> 150 ms): traffic should leave B"
    at "$RECOVER_AT"
    event ok "B recovers (150 ms -> 15 ms): traffic should come back"
    at "$HANG_AT"
    kill -STOP "$a_pid"
    event bad "A hangs for $HANG_S s (SIGSTOP): hedges should carry its requests"
    at "$((HANG_AT + HANG_S))"
    kill -CONT "$a_pid"
    event ok "A answers again (SIGCONT)"
    at "$END_AT"
    event info "end of the story: steady state; Ctrl-C stops the demo"
) &
pids+=($!)

# wait (not a foreground sleep) so that SIGTERM/SIGINT stop the demo at once
if ((DEMO_SECONDS > 0)); then
    sleep "$DEMO_SECONDS" &
    pids+=($!)
    wait $!
else
    wait "$px"
fi

#!/usr/bin/env bash
# Soak test (by hand, not CI): lbproxy in front of three lbbackends (one of
# them answering some 500s and resets), mixed client load (scripts/
# fault_load.py: GET/HEAD/POST-echo, malformed requests, slowloris
# connections), a backend SIGKILLed and restarted every KILL_EVERY seconds.
# At the end it checks: lbproxy alive and exits cleanly on SIGTERM, no fd or
# memory growth against the post-warm-up baseline, no wrong body ever
# presented as a 200, and every error the clients saw accounted for in the
# CSV log.
#
#   DURATION=600 scripts/soak.sh          # 10 minutes (the default)
#   REQUESTS=100000 scripts/soak.sh       # stop after N requests instead
# Other knobs: KILL_EVERY (30 s), THREADS (8), SLOW (20 slow clients),
# OUT (logs/soak/<time>), LBPROXY, LBBACKEND.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-600}
REQUESTS=${REQUESTS:-0}
KILL_EVERY=${KILL_EVERY:-30}
THREADS=${THREADS:-8}
SLOW=${SLOW:-20}
OUT=${OUT:-logs/soak/$(date +%Y%m%d-%H%M%S)}
LBPROXY=${LBPROXY:-./lbproxy}
LBBACKEND=${LBBACKEND:-./lbbackend}
PY=/usr/bin/python3
mkdir -p "$OUT"

free_port() {
    $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {
    for _ in $(seq 200); do
        if $PY -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), timeout=0.5)" 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    echo "nothing listens on $1" >&2
    return 1
}

declare -A BPORT BPID BEXTRA
BEXTRA[A]="--profile exp:2ms --echo"
BEXTRA[B]="--profile exp:2ms --error-rate 0.01 --reset-rate 0.005 --echo"
BEXTRA[C]="--profile exp:3ms --echo"
start_backend() {
    # shellcheck disable=SC2086
    $LBBACKEND --port "${BPORT[$1]}" --id "$1" ${BEXTRA[$1]} --quiet \
        >>"$OUT/backend-$1.log" 2>&1 &
    BPID[$1]=$!
    echo "${BPID[$1]}" >"$OUT/backend-$1.pid"  # the killer runs in a subshell
    wait_port "${BPORT[$1]}"
}

PXPID=
SAMPLER=
KILLER=
cleanup() {
    [ -n "$KILLER" ] && kill "$KILLER" 2>/dev/null || true
    [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null || true
    for id in A B C; do
        [ -f "$OUT/backend-$id.pid" ] &&
            kill "$(cat "$OUT/backend-$id.pid")" 2>/dev/null || true
    done
    [ -n "$PXPID" ] && kill "$PXPID" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT

for id in A B C; do
    BPORT[$id]=$(free_port)
    start_backend "$id"
done
PORT=$(free_port)
$LBPROXY --config /dev/null --listen "127.0.0.1:$PORT" --admin off \
    --log "$OUT/soak.csv" --persistent --mode adaptive_ewma \
    --backend "127.0.0.1:${BPORT[A]}" --backend "127.0.0.1:${BPORT[B]}" \
    --backend "127.0.0.1:${BPORT[C]}" \
    --set timeouts.client_header_ms=3000 --set timeouts.upstream_ms=2000 \
    --set health.max_fails=2 --set health.fail_timeout_ms=1000 \
    --set pool.idle_timeout_ms=2000 >"$OUT/lbproxy.log" 2>&1 &
PXPID=$!
wait_port "$PORT"

fds() { ls "/proc/$PXPID/fd" | wc -l; }
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$PXPID/status"; }
settle() {  # waits until idle pooled/slow connections are gone
    local want=$1
    for _ in $(seq 100); do
        [ "$(fds)" -le "$want" ] && return 0
        sleep 0.1
    done
}
FD_START=$(fds)
echo "warm-up ..."
$PY scripts/fault_load.py "$PORT" --requests 5000 --slow 0 --bad-every 0 \
    --threads "$THREADS" >"$OUT/warmup.json"
sleep 3
settle "$FD_START"
FD0=$(fds)
RSS0=$(rss)
echo "baseline: fds $FD0 (at start $FD_START), rss ${RSS0} KiB"

(
    echo "t,fds,rss_kb"
    t0=$(date +%s)
    while kill -0 "$PXPID" 2>/dev/null; do
        echo "$(( $(date +%s) - t0 )),$(fds),$(rss)"
        sleep 5
    done
) >"$OUT/samples.csv" 2>/dev/null &
SAMPLER=$!

(
    i=0
    ids=(A B C)
    while true; do
        sleep "$KILL_EVERY"
        id=${ids[$((i % 3))]}
        i=$((i + 1))
        echo "$(date +%T) SIGKILL backend $id" >>"$OUT/events.log"
        pid=$(cat "$OUT/backend-$id.pid")
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        sleep 3
        start_backend "$id"
        echo "$(date +%T) restarted backend $id" >>"$OUT/events.log"
    done
) &
KILLER=$!

echo "load: $([ "$REQUESTS" != 0 ] && echo "$REQUESTS requests" || echo "${DURATION}s"), $THREADS threads, $SLOW slow clients, a backend killed every ${KILL_EVERY}s"
LOADARGS=(--threads "$THREADS" --slow "$SLOW")
if [ "$REQUESTS" != 0 ]; then
    LOADARGS+=(--requests "$REQUESTS")
else
    LOADARGS+=(--seconds "$DURATION")
fi
$PY scripts/fault_load.py "$PORT" "${LOADARGS[@]}" >"$OUT/summary.json"
kill "$KILLER" 2>/dev/null || true
wait "$KILLER" 2>/dev/null || true
KILLER=
ALIVE=yes
kill -0 "$PXPID" 2>/dev/null || ALIVE=no
sleep 4
settle "$FD0"
FD1=$(fds)
RSS1=$(rss)
CPU=$(awk '{print ($14 + $15) / 100}' "/proc/$PXPID/stat")
kill -TERM "$PXPID"
EXIT=0
wait "$PXPID" || EXIT=$?
PXPID=
kill "$SAMPLER" 2>/dev/null || true
SAMPLER=

$PY - "$OUT" "$ALIVE" "$EXIT" "$FD0" "$FD1" "$RSS0" "$RSS1" "$CPU" <<'EOF'
import csv, json, sys
out, alive, code, fd0, fd1, rss0, rss1, cpu = sys.argv[1:]
fd0, fd1, rss0, rss1, code = int(fd0), int(fd1), int(rss0), int(rss1), int(code)
s = json.load(open(f"{out}/summary.json"))
rows = list(csv.DictReader(open(f"{out}/soak.csv")))
by_status, by_error = {}, {}
for r in rows:
    by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    by_error[r["error"]] = by_error.get(r["error"], 0) + 1
samples = list(csv.DictReader(open(f"{out}/samples.csv")))
rss_series = [int(x["rss_kb"]) for x in samples if x["rss_kb"]]
third = max(1, len(rss_series) // 3)
growth = (max(rss_series[-third:]) - max(rss_series[:third])
          if rss_series else 0)
fails = []
if alive != "yes":
    fails.append("lbproxy died")
if code != 0:
    fails.append(f"lbproxy exited with {code} on SIGTERM")
if fd1 > fd0:
    fails.append(f"fd count grew {fd0} -> {fd1}")
if rss1 - rss0 > 8192 or growth > 4096:
    fails.append(f"memory grew: rss {rss0} -> {rss1} KiB, "
                 f"late-vs-early peak {growth} KiB")
if s["bad_body"]:
    fails.append(f"{s['bad_body']} wrong bodies presented as 200")
for st, n in s["status"].items():
    if st not in ("200", "0") and by_status.get(st, 0) < n:
        fails.append(f"clients saw {n} x {st}, CSV has {by_status.get(st, 0)}")
cut = s["truncated"] + s["conn_errors"]
logged = sum(n for e, n in by_error.items() if e)
if cut > logged:
    fails.append(f"{cut} cut/failed connections but only {logged} CSV errors")
print(json.dumps({"clients": s, "csv_rows": len(rows),
                  "csv_status": by_status, "csv_error": by_error,
                  "fds": [fd0, fd1], "rss_kb": [rss0, rss1],
                  "rss_late_vs_early_kb": growth, "cpu_s": float(cpu)},
                 indent=1))
print("SOAK " + ("FAILED: " + "; ".join(fails) if fails else "PASSED"))
sys.exit(1 if fails else 0)
EOF

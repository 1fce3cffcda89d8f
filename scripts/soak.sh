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
# OUT (logs/soak/<time>), LBPROXY, LBBACKEND.  The stack and its cleanup
# are scripts/lib.sh's (shared with scripts/valgrind-check.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh

DURATION=${DURATION:-600}
REQUESTS=${REQUESTS:-0}
KILL_EVERY=${KILL_EVERY:-30}
THREADS=${THREADS:-8}
SLOW=${SLOW:-20}
OUT=${OUT:-logs/soak/$(date +%Y%m%d-%H%M%S)}
lb_stack_init "$OUT"

lb_backend A --profile exp:2ms --echo
lb_backend B --profile exp:2ms --error-rate 0.01 --reset-rate 0.005 --echo
lb_backend C --profile exp:3ms --echo
lb_proxy --log "$OUT/soak.csv" --persistent --mode adaptive_ewma \
    --set timeouts.client_header_ms=3000 --set timeouts.upstream_ms=2000 \
    --set health.max_fails=2 --set health.fail_timeout_ms=1000 \
    --set pool.idle_timeout_ms=2000

fds() { lb_fds "$LB_PXPID"; }
rss() { lb_rss "$LB_PXPID"; }
settle() {  # waits until idle pooled/slow connections are gone
    local want=$1
    for _ in $(seq 100); do
        [ "$(fds)" -le "$want" ] && return 0
        sleep 0.1
    done
}
FD_START=$(fds)
echo "warm-up ..."
lb_load warmup --requests 5000 --slow 0 --bad-every 0 --threads "$THREADS"
sleep 3
settle "$FD_START"
FD0=$(fds)
RSS0=$(rss)
echo "baseline: fds $FD0 (at start $FD_START), rss ${RSS0} KiB"

(
    echo "t,fds,rss_kb"
    t0=$(date +%s)
    while kill -0 "$LB_PXPID" 2>/dev/null; do
        echo "$(( $(date +%s) - t0 )),$(fds),$(rss)"
        sleep 5
    done
) >"$OUT/samples.csv" 2>/dev/null &
SAMPLER=$!
LB_BG+=("$SAMPLER")

(
    i=0
    while true; do
        sleep "$KILL_EVERY"
        id=${LB_IDS[$((i % ${#LB_IDS[@]}))]}
        i=$((i + 1))
        echo "$(date +%T) SIGKILL backend $id" >>"$OUT/events.log"
        lb_backend_kill "$id"
        sleep 3
        lb_backend_start "$id"
        echo "$(date +%T) restarted backend $id" >>"$OUT/events.log"
    done
) &
KILLER=$!
LB_BG+=("$KILLER")

echo "load: $([ "$REQUESTS" != 0 ] && echo "$REQUESTS requests" || echo "${DURATION}s"), $THREADS threads, $SLOW slow clients, a backend killed every ${KILL_EVERY}s"
LOADARGS=(--threads "$THREADS" --slow "$SLOW")
if [ "$REQUESTS" != 0 ]; then
    LOADARGS+=(--requests "$REQUESTS")
else
    LOADARGS+=(--seconds "$DURATION")
fi
lb_load summary "${LOADARGS[@]}"
kill "$KILLER" 2>/dev/null || true
wait "$KILLER" 2>/dev/null || true
ALIVE=yes
kill -0 "$LB_PXPID" 2>/dev/null || ALIVE=no
sleep 4
settle "$FD0"
FD1=$(fds)
RSS1=$(rss)
CPU=$(lb_cpu "$LB_PXPID")
lb_proxy_stop
EXIT=$LB_PXEXIT
kill "$SAMPLER" 2>/dev/null || true

"$LB_PY" - "$OUT" "$ALIVE" "$EXIT" "$FD0" "$FD1" "$RSS0" "$RSS1" "$CPU" <<'EOF'
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

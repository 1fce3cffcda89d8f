#!/usr/bin/env bash
# The CSV request log's cost: lbproxy persistent round-robin in front of
# three 0 ms backends, with --log off and with --log FILE, alternating
# (off, on, off, on, ...) REPEAT times; medians and the ratio.  Pinning as in
# quickbench: lbproxy on CPU 0, wrk and the backends on CPU 1.
#   scripts/logcost.sh            DURATION=10 REPEAT=3 by default
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
REPEAT=${REPEAT:-3}
command -v wrk >/dev/null || scripts/install-deps.sh
make -s all
out=logs/bench/logcost-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"

pick_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

backs=()
for id in A B C; do
    p=$(pick_port)
    taskset -c 1 ./lbbackend --port "$p" --id "$id" --quiet &
    pids+=($!)
    wait_port "$p"
    backs+=(--backend "127.0.0.1:$p")
done

run() { # $1 = off|on, $2 = run number
    local port log
    port=$(pick_port)
    log=off
    [[ $1 == on ]] && log=$out/run$2.csv
    taskset -c 0 ./lbproxy --listen "127.0.0.1:$port" --admin off \
        --mode round-robin --persistent --log "$log" "${backs[@]}" \
        2>>"$out/lbproxy.log" &
    local pid=$!
    wait_port "$port"
    taskset -c 1 wrk -t1 -c100 -d1s "http://127.0.0.1:$port/" >/dev/null # warm-up
    local t0 t1
    t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    taskset -c 1 wrk -t1 -c100 -d"${DURATION}s" "http://127.0.0.1:$port/" \
        > "$out/wrk-$1-$2.txt"
    t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    # requests/s and lbproxy's CPU microseconds per request (USER_HZ ticks)
    awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v d="$DURATION" \
        '/Requests\/sec/ {printf "%s %.2f\n", $2, t / hz * 1e6 / ($2 * d)}' \
        "$out/wrk-$1-$2.txt"
}

off=() on=() coff=() con=()
for k in $(seq 1 "$REPEAT"); do
    read -r r c < <(run off "$k"); off+=("$r"); coff+=("$c")
    read -r r c < <(run on "$k"); on+=("$r"); con+=("$c")
    echo "run $k/$REPEAT: log off ${off[-1]} rps ${coff[-1]} us/req," \
         "log on ${on[-1]} rps ${con[-1]} us/req"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rows=$(cat "$out"/run*.csv | grep -vc '^timestamp' || true)
awk -v a="$(median "${off[@]}")" -v b="$(median "${on[@]}")" \
    -v ca="$(median "${coff[@]}")" -v cb="$(median "${con[@]}")" -v r="$rows" 'BEGIN {
    printf "median rps: log off %.0f, log on %.0f; on/off = %.3f\n", a, b, b / a
    printf "median lbproxy CPU per request: log off %.2f us, log on %.2f us; on/off = %.3f\n", ca, cb, cb / ca
    printf "%d CSV rows written\n", r }' | tee "$out/summary.txt"

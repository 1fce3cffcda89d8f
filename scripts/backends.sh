#!/usr/bin/env bash
# Starts, stops or shows the backend emulators of one set.
#   scripts/backends.sh start  [SET]   start one ./lbbackend per section
#   scripts/backends.sh stop   [SET]   stop exactly the ones this script started
#   scripts/backends.sh status [SET]   pid, port and counters of each
#   scripts/backends.sh restart [SET]
# SET is "default" (config/backends.ini), a name NAME for
# config/backends-NAME.ini (flat, capped, degrade, faulty), or a path to an
# INI file.  Pid files and logs go to logs/backend-<section>.{pid,log}.
# LBBACKEND overrides the binary (default ./lbbackend).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

cmd=${1:-status}
set_name=${2:-default}
bin=${LBBACKEND:-./lbbackend}
[[ $bin == */* ]] || bin=./$bin # make exports a path relative to the top

if [[ -f $set_name ]]; then
    ini=$set_name
elif [[ $set_name == default ]]; then
    ini=config/backends.ini
else
    ini=config/backends-$set_name.ini
fi
if [[ ! -f $ini ]]; then
    echo "backends.sh: no set '$set_name' ($ini not found)" >&2
    exit 2
fi

mkdir -p logs

# Section names in file order.
sections() {
    sed -n 's/^[[:space:]]*\[\([^]]*\)\][[:space:]]*$/\1/p' "$ini"
}

# Value of key $2 in section $1 (keys may use - or _).
ini_get() {
    awk -v sec="$1" -v key="$2" '
        /^[[:space:]]*\[/ { gsub(/[][[:space:]]/, ""); cur = $0; next }
        cur == sec && index($0, "=") {
            k = substr($0, 1, index($0, "=") - 1); gsub(/[[:space:]]/, "", k)
            gsub(/-/, "_", k)
            if (k == key) {
                v = substr($0, index($0, "=") + 1); gsub(/^[[:space:]]+|[[:space:]]+$/, "", v)
                print v; exit
            }
        }' "$ini"
}

# True when pid $1 is alive and is an lbbackend (a stale pid file may name a
# pid that was reused by another program).
is_backend() {
    local pid=$1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/comm ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == lbbackend ]] || return 1
    ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null
}

pid_of() {
    local f=logs/backend-$1.pid
    [[ -f $f ]] && cat "$f" || true
}

start() {
    [[ -x $bin ]] || { echo "backends.sh: $bin not built (run make)" >&2; exit 1; }
    local s pid port rc=0
    for s in $(sections); do
        pid=$(pid_of "$s")
        if [[ -n $pid ]] && is_backend "$pid"; then
            echo "$s: already running (pid $pid)"
            continue
        fi
        nohup "$bin" --config "$ini" --section "$s" \
            >>"logs/backend-$s.log" 2>&1 </dev/null &
        pid=$!
        echo "$pid" >"logs/backend-$s.pid"
        port=$(ini_get "$s" port)
        if lb_wait_port "${port:-8081}" 5 "$pid" && is_backend "$pid"; then
            echo "$s: started pid $pid on 127.0.0.1:${port:-8081} ($ini)"
        else
            echo "$s: failed to start; see logs/backend-$s.log" >&2
            tail -n 3 "logs/backend-$s.log" >&2 || true
            rm -f "logs/backend-$s.pid"
            rc=1
        fi
    done
    return $rc
}

stop() {
    local s pid i
    for s in $(sections); do
        pid=$(pid_of "$s")
        if [[ -z $pid ]]; then
            echo "$s: not started by this script"
            continue
        fi
        if ! is_backend "$pid"; then
            echo "$s: pid $pid is not an lbbackend any more; removing pid file"
            rm -f "logs/backend-$s.pid"
            continue
        fi
        kill -TERM "$pid"
        for ((i = 0; i < 100; i++)); do
            is_backend "$pid" || break
            sleep 0.05
        done
        if is_backend "$pid"; then
            echo "$s: pid $pid ignored SIGTERM; sending SIGKILL"
            kill -KILL "$pid"
        fi
        rm -f "logs/backend-$s.pid"
        echo "$s: stopped (pid $pid)"
    done
}

status() {
    local s pid port line
    for s in $(sections); do
        pid=$(pid_of "$s")
        port=$(ini_get "$s" port)
        if [[ -n $pid ]] && is_backend "$pid"; then
            line="$s: running pid $pid port ${port:-8081}"
            if command -v curl >/dev/null; then
                line+=" $(curl -s -m 2 "http://127.0.0.1:${port:-8081}/stats" || echo '(no answer)')"
            fi
            echo "$line"
        else
            echo "$s: stopped"
        fi
    done
}

case $cmd in
start) start ;;
stop) stop ;;
status) status ;;
restart) stop && start ;;
*)
    echo "usage: scripts/backends.sh start|stop|status|restart [SET]" >&2
    exit 2
    ;;
esac

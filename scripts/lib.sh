# shellcheck shell=bash
# Helpers shared by the shell scripts (sourced, never run):
#   . "$(dirname "$0")/lib.sh"
# Ports and readiness (lb_free_port, lb_wait_port), /proc probes (lb_fds,
# lb_rss, lb_cpu), and the recipe of the by-hand fault checks
# (scripts/soak.sh, scripts/valgrind-check.sh): start lbbackends and one
# lbproxy in front of them on free loopback ports, run scripts/fault_load.py,
# collect, and kill exactly what was started (an EXIT trap).  The Python
# counterparts for tests and scripts/*.py are in tests/lib/lbtest.py.

LB_PY=${LB_PY:-/usr/bin/python3}

# Prints a port that was free a moment ago (bind to 0, read, close).
lb_free_port() {
    "$LB_PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# lb_wait_port PORT [SECONDS [PID]]: returns 0 once 127.0.0.1:PORT accepts
# a connection; 1 after SECONDS (default 10), or at once if PID exits first,
# with a line on stderr.
lb_wait_port() {
    local port=$1 secs=${2:-10} pid=${3:-} i
    for ((i = 0; i < secs * 20; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            echo "process $pid exited before listening on $port" >&2
            return 1
        fi
        sleep 0.05
    done
    echo "nothing listens on 127.0.0.1:$port" >&2
    return 1
}

# Open descriptors, resident KiB and CPU seconds (user + system) of PID.
lb_fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }
lb_rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
lb_cpu() {
    awk -v hz="$(getconf CLK_TCK)" '{
        sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}

# ---- the fault-check stack: backends, one proxy, load ----
# lb_stack_init OUT: output folder for logs, pid files and summaries; sets
# the EXIT trap.  LBPROXY and LBBACKEND name the binaries (./lbproxy,
# ./lbbackend).  After lb_proxy: LB_PORT (proxy port), LB_PXPID.
lb_stack_init() {
    LB_OUT=$1
    LBPROXY=${LBPROXY:-./lbproxy}
    LBBACKEND=${LBBACKEND:-./lbbackend}
    [[ $LBPROXY == */* ]] || LBPROXY=./$LBPROXY # make exports paths
    [[ $LBBACKEND == */* ]] || LBBACKEND=./$LBBACKEND
    LB_IDS=()
    LB_PXPID=
    LB_PORT=
    LB_BG=() # extra background jobs of the caller, killed at exit
    declare -gA LB_BPORT LB_BARGS
    mkdir -p "$LB_OUT"
    trap lb_stack_cleanup EXIT
}

# lb_backend ID ARGS...: starts an lbbackend with id ID on a free port (kept
# in LB_BPORT[ID], the pid in $LB_OUT/backend-ID.pid so that a subshell may
# restart it) and waits for it.
lb_backend() {
    local id=$1
    shift
    LB_IDS+=("$id")
    LB_BPORT[$id]=$(lb_free_port)
    LB_BARGS[$id]="$*"
    lb_backend_start "$id"
}

# lb_backend_start ID: (re)starts backend ID on its port with its arguments.
lb_backend_start() {
    local id=$1
    # shellcheck disable=SC2086 # LB_BARGS holds words
    "$LBBACKEND" --port "${LB_BPORT[$id]}" --id "$id" ${LB_BARGS[$id]} \
        --quiet >>"$LB_OUT/backend-$id.log" 2>&1 &
    echo $! >"$LB_OUT/backend-$id.pid"
    lb_wait_port "${LB_BPORT[$id]}" 10 $!
}

# lb_backend_kill ID: SIGKILLs backend ID (the fault); lb_backend_start
# brings it back on the same port.
lb_backend_kill() {
    local pid
    pid=$(cat "$LB_OUT/backend-$1.pid")
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# lb_proxy [WRAPPER... --] ARGS...: starts lbproxy (under WRAPPER, e.g.
# valgrind, when given) on a free port in front of every backend started so
# far, hermetic (--config /dev/null, no admin), and waits for it (60 s: a
# wrapper may be slow).  Output goes to $LB_OUT/lbproxy.log.
lb_proxy() {
    local wrap=() id backends=()
    if [[ " $* " == *" -- "* ]]; then
        while [[ $1 != -- ]]; do
            wrap+=("$1")
            shift
        done
        shift
    fi
    for id in "${LB_IDS[@]}"; do
        backends+=(--backend "127.0.0.1:${LB_BPORT[$id]}")
    done
    LB_PORT=$(lb_free_port)
    "${wrap[@]}" "$LBPROXY" --config /dev/null --listen "127.0.0.1:$LB_PORT" \
        --admin off "${backends[@]}" "$@" >"$LB_OUT/lbproxy.log" 2>&1 &
    LB_PXPID=$!
    lb_wait_port "$LB_PORT" 60 "$LB_PXPID"
}

# lb_load NAME ARGS...: scripts/fault_load.py against the proxy; its JSON
# summary goes to $LB_OUT/NAME.json.  Returns fault_load's status.
lb_load() {
    local name=$1
    shift
    "$LB_PY" scripts/fault_load.py "$LB_PORT" "$@" >"$LB_OUT/$name.json"
}

# lb_proxy_stop: SIGTERM to lbproxy and waits; its exit status goes to
# LB_PXEXIT.
# shellcheck disable=SC2034 # LB_PXEXIT is read by the caller
lb_proxy_stop() {
    LB_PXEXIT=0
    kill -TERM "$LB_PXPID"
    wait "$LB_PXPID" || LB_PXEXIT=$?
    LB_PXPID=
}

# The EXIT trap: kills the caller's jobs, the backends (by pid file: a
# restart in a subshell changes them) and the proxy, then reaps them.
lb_stack_cleanup() {
    local p id
    for p in "${LB_BG[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for id in "${LB_IDS[@]}"; do
        if [[ -f $LB_OUT/backend-$id.pid ]]; then
            kill "$(cat "$LB_OUT/backend-$id.pid")" 2>/dev/null || true
        fi
    done
    if [[ -n $LB_PXPID ]]; then
        kill "$LB_PXPID" 2>/dev/null || true
    fi
    wait 2>/dev/null || true
}

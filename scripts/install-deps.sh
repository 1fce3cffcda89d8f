#!/usr/bin/env bash
# Installs the Debian packages lbproxy's build, tests and benchmarks need.
# Installs only what is missing; safe to run twice.  Uses sudo when not root.
#   scripts/install-deps.sh          build + test dependencies
#   scripts/install-deps.sh --bench  also what only the benchmarks use: the
#                                    peers (nginx, HAProxy) and linux-perf
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential pkg-config node-llhttp libinih-dev libcsv-dev libssl-dev openssl
      libc-ares-dev libcjson-dev
      libcmocka-dev wrk curl python3 python3-pytest iproute2 nftables
      clang libclang-rt-14-dev clang-format cppcheck valgrind
      python3-pandas python3-matplotlib
      prometheus chromium fonts-liberation)
bench=(nginx-light haproxy linux-perf)
quiet=0
for arg in "$@"; do
    case $arg in
    --bench) pkgs+=("${bench[@]}") ;;
    --quiet) quiet=1 ;;
    *) echo "usage: $0 [--bench] [--quiet]" >&2; exit 2 ;;
    esac
done

# Node.js may come from elsewhere (with its own npm); add Debian's only if absent.
command -v node >/dev/null || pkgs+=(nodejs)
command -v npm >/dev/null || pkgs+=(npm)

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

SUDO=
if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi

if ((${#missing[@]})); then
    echo "install-deps: installing ${missing[*]}"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}"
elif ((!quiet)); then
    echo "install-deps: all packages present"
fi

# Browser-side code for the dashboard comes from the npm registry, pinned by
# the lockfile.
if [[ -f package.json ]] && command -v npm >/dev/null; then
    if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules ]]; then
        npm ci --no-audit --no-fund --loglevel=error
    fi
fi

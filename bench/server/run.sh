#!/usr/bin/env bash
# Drives `dodeca serve` with wrk (64 connections, post.lua: mixed-length inputs, every body new)
# and reports requests/s, p50/p99 latency, responses by status (errors must be 0; 429s are
# deliberate load shedding) and the server's RSS before and after warm-up and after each run
# (memory must stay flat). Then runs the same request mix in-process (bench_server, no HTTP) in
# the same session, so the HTTP + JSON cost shows as a ratio.
# Usage: bench/server/run.sh [--seconds S] [--connections N] [--models-dir DIR] [--cache]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${DC_BENCH_BUILD:-$root/build-bench}
seconds=20 conns=64 models= cache=false
while [ $# -gt 0 ]; do
    case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --connections) conns=$2; shift 2 ;;
    --models-dir) models=$2; shift 2 ;;
    --cache) cache=true; shift ;;
    *) echo "usage: $0 [--seconds S] [--connections N] [--models-dir DIR] [--cache]"; exit 2 ;;
    esac
done
command -v wrk >/dev/null || { echo "wrk is not installed"; exit 1; }
# DC_BENCH_BUILD names an existing build (configured with -DDC_BUILD_BENCH=ON): used as it is.
if [ -z "${DC_BENCH_BUILD:-}" ]; then
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDC_BUILD_TESTS=OFF \
        -DDC_BUILD_BENCH=ON >/dev/null
fi
cmake --build "$build" --target dodeca bench_server >/dev/null

sets=(--set "cache.enabled=$cache")
[ -n "$models" ] && sets+=(--set "models.models_dir=$models")
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
"$build/dodeca" serve --port 0 "${sets[@]}" 2>"$tmp/err" &
pid=$!
for _ in $(seq 1200); do grep -q "listening on" "$tmp/err" && break; sleep 0.1; done
url=$(grep -o "http://127.0.0.1:[0-9]*" "$tmp/err" | head -1)
[ -n "$url" ] || { cat "$tmp/err"; exit 1; }
rss() { awk '/VmRSS/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$pid/status"; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "server: $url, cache.enabled=$cache, models: ${models:-custom only (E2-E4, E9)}"
echo "RSS after start:       $(rss)"
wrk -t2 -c"$conns" -d5s -s "$here/post.lua" "$url" >"$tmp/warm" 2>&1
echo "RSS after 5 s warm-up: $(rss)"
for run in 1 2; do
    wrk -t2 -c"$conns" -d"${seconds}s" --timeout 30s -s "$here/post.lua" "$url" >"$tmp/run$run" 2>&1
    echo "run $run (${seconds} s, $conns connections): $(grep -E '^RATE' "$tmp/run$run" | cut -d' ' -f2)" \
        "$(grep -E '^LATENCY' "$tmp/run$run" | cut -d' ' -f2-)"
    echo "  $(grep -E '^STATUS' "$tmp/run$run")   RSS after: $(rss)"
done
kill -TERM "$pid"
wait "$pid" || true
pid=
echo "in-process, same mix, $conns threads, no HTTP:"
"$build/bench/bench_server" --threads "$conns" --seconds "$seconds" "${sets[@]}" 2>/dev/null | sed 's/^/  /'

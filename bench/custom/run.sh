#!/usr/bin/env bash
# Builds the library in Release mode (build-bench/), compiles bench_custom and runs it.
# Usage: bench/custom/run.sh [seconds per case]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${DC_BENCH_BUILD:-$root/build-bench}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDC_BUILD_TESTS=OFF \
  -DDC_BUILD_BENCH=ON >/dev/null
cmake --build "$build" --target bench_custom >/dev/null
"$build/bench/bench_custom" "${1:-1}"

#!/usr/bin/env bash
# Builds the library in Release mode (build-bench/), compiles bench_pipeline and runs it.
# Usage: bench/pipeline/run.sh [--fixtures DIR | --models-dir DIR] [--quick] [--requests N]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${DC_BENCH_BUILD:-$root/build-bench}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDC_BUILD_TESTS=OFF \
  -DDC_BUILD_BENCH=ON >/dev/null
cmake --build "$build" --target bench_pipeline >/dev/null
"$build/bench/bench_pipeline" "$@"

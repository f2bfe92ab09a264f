#!/usr/bin/env bash
# Builds the library in Release mode (build-bench/), compiles bench_custom and runs it.
# Usage: bench/custom/run.sh [seconds per case]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${DC_BENCH_BUILD:-$root/build-bench}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDC_BUILD_TESTS=OFF \
  -DDC_WERROR=OFF >/dev/null
cmake --build "$build" --target dodeca_static >/dev/null
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -I"$root/include" -I"$root/src" \
  "$root/bench/custom/bench_custom.c" "$build/libdodeca.a" \
  $(pkg-config --libs libcjson libxxhash zlib libutf8proc libpcre2-8) -lm -lpthread \
  -o "$build/bench_custom"
"$build/bench_custom" "${1:-1}"

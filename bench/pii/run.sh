#!/usr/bin/env bash
# Builds the library in Release mode (build-bench/), compiles bench_pii and runs it from the
# repository root. Usage: bench/pii/run.sh [bench_pii options], e.g. --sensitivity strict
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${DC_BENCH_BUILD:-$root/build-bench}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDC_BUILD_TESTS=OFF \
  -DDC_WERROR=OFF >/dev/null
cmake --build "$build" --target dodeca_static >/dev/null
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -I"$root/include" -I"$root/src" \
  "$root/bench/pii/bench_pii.c" "$build/libdodeca.a" \
  $(pkg-config --cflags --libs libcjson libxxhash zlib libutf8proc libpcre2-8 libcrypto) \
  -ldnnl -lm -lpthread -o "$build/bench_pii"
cd "$root"
"$build/bench_pii" "$@"

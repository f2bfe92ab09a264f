#!/usr/bin/env bash
# Builds the library in Release mode (build-bench/), compiles the fusion benchmarks and runs them.
# Usage: bench/fusion/run.sh [seconds per case] [hidden]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${DC_BENCH_BUILD:-$root/build-bench}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDC_BUILD_TESTS=OFF \
  -DDC_BUILD_BENCH=ON >/dev/null
cmake --build "$build" --target bench_fusion bench_fusion_train >/dev/null
echo "== one thread"
OMP_NUM_THREADS=1 "$build/bench/bench_fusion" "${1:-1}" "${2:-1024}"
echo "== $(nproc) threads (oneDNN's OpenMP pool; the small-batch kernel is single-threaded)"
OMP_NUM_THREADS=$(nproc) "$build/bench/bench_fusion" "${1:-1}" "${2:-1024}"
if python3 -c 'import torch' 2>/dev/null; then
  echo "== peer: PyTorch, the same forward, one thread"
  OMP_NUM_THREADS=1 python3 "$root/bench/fusion/bench_torch.py" --seconds "${1:-1}" --hidden "${2:-1024}"
else
  echo "== peer: PyTorch not installed (pip install torch) — skipped"
fi
echo "== training on the synthetic task (default 8 experts, top-2)"
OMP_NUM_THREADS=1 "$build/bench/bench_fusion_train"

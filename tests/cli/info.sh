#!/usr/bin/env bash
# dodeca info: version, CPU kernels, the backend and why; a CUDA library that cannot load makes
# the CPU the backend with the reason named (the main binary never needs CUDA).
set -u
bin=$1
out=$("$bin" info) || { echo "info failed"; exit 1; }
grep -q "^dodeca [0-9]" <<<"$out" || { echo "no version: $out"; exit 1; }
grep -q "kernel isa: " <<<"$out" || { echo "no isa: $out"; exit 1; }
grep -Eq "^backend: (cpu|cuda)" <<<"$out" || { echo "no backend line: $out"; exit 1; }
out=$(DC_CUDA_LIBRARY=/nonexistent/libdodeca_cuda.so "$bin" info) || { echo "info failed"; exit 1; }
grep -q "^backend: cpu (cuda: /nonexistent/libdodeca_cuda.so (DC_CUDA_LIBRARY) did not load" <<<"$out" \
  || { echo "no fallback reason: $out"; exit 1; }
"$bin" info --bogus 2>/dev/null; [ $? -eq 2 ] || { echo "bad option not a usage error"; exit 1; }
exit 0

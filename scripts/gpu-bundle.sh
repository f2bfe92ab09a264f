#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh runs into one archive, for a GPU machine that cannot build
# dodeca itself (no Debian -dev packages, no network: oneDNN, libmicrohttpd, libcurl, ... are
# missing there). The archive keeps the build folder's layout (dodeca, libdodeca_cuda.so,
# tests/..., bench/...) and adds lib/ with every shared library those programs need except the
# C runtime (glibc, libstdc++, libgcc_s) and cuBLAS, which the GPU machine's own CUDA provides.
# Built here on Debian 12 (glibc 2.36), the programs run on any x86-64 Linux with glibc >= 2.36.
#
# Usage: scripts/gpu-bundle.sh BUILD ARCHIVE      (BUILD configured with -DDC_CUDA=ON)
# Then:  PREBUILT=ARCHIVE scripts/gpu-check.sh    (on the GPU machine)
set -euo pipefail
build=$(cd "$1" && pwd)
archive=$2
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

programs="dodeca libdodeca_cuda.so tests/test_fp8 tests/test_fp4 bench/bench_pipeline
  tests/gpu/gpu_test_backend_ops tests/gpu/gpu_test_bert_gpu tests/gpu/gpu_test_pipeline tests/gpu/gpu_test_streams
  tests/gpu/gpu_test_fusion_gpu tests/gpu/gpu_test_fp4_gpu tests/gpu/gpu_test_direct_weights tests/gpu/gpu_test_graphs
  tests/gpu/gpu_bench_bert_gpu tests/gpu/gpu_bench_fusion_gpu"
mkdir -p "$stage/lib"
for p in $programs; do
  [ -f "$build/$p" ] || continue
  mkdir -p "$stage/$(dirname "$p")"
  cp "$build/$p" "$stage/$p"
  # the libraries ldd resolves, minus the C runtime and the CUDA libraries
  ldd "$build/$p" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' |
    { grep -Ev '/(libc|libm|libdl|librt|libpthread|libresolv|libstdc\+\+|libgcc_s|libcublas|libcublasLt)\.so' || true; } |
    while read -r lib; do cp -L -n "$lib" "$stage/lib/"; done
done
tar -C "$stage" -cJf "$archive" .
echo "$archive: $(du -h "$archive" | cut -f1) ($(ls "$stage/lib" | wc -l) libraries)"

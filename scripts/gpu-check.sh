#!/usr/bin/env bash
# The GPU check (docs/gpu.md): run once on a machine with an NVIDIA GPU (H100/H200 class, no
# network needed). Builds what the check needs with the CUDA backend for the GPU's own
# architecture (or unpacks a bundle built elsewhere, PREBUILT=), then runs, most important
# first: the codec tests; the GPU tests (every backend op vs the CPU, grouped GEMM, pool, cuFile,
# green contexts; BERT/RoBERTa/Longformer end to end in fp32/bf16/fp16/fp8; the eight pretrained
# fixtures through the pipeline on cpu and cuda:0; the fusion experts on CUDA; CUDA graphs); the
# BERT-base timing (CPU fp32 vs CUDA per format, then CUDA graphs off vs on); bench/pipeline at real sizes on CUDA (fp32, then bf16) and on
# the CPU with the same inputs; PyTorch (transformers, CUDA) on the same checkpoints as the
# peer, when importable; and compute-sanitizer memcheck over the ops test with the time left.
# Prints a summary; everything lands in $OUT (or build-gpu-check/results). Budget: under 8
# minutes; the later steps are skipped when time runs short.
#
# Usage: scripts/gpu-check.sh            (from anywhere; BUILD=dir to reuse a build folder)
#        PREBUILT=bundle.tar.xz scripts/gpu-check.sh
#                                        (programs built elsewhere by scripts/gpu-bundle.sh, for
#                                        a GPU machine without dodeca's build dependencies)
# Env:   OUT, BUILD, DC_CUDA_ARCHS (default: the GPU's compute capability, e.g. 90-real),
#        JOBS (default: nproc), CUDACXX (nvcc when it is not in /usr/local/cuda/bin or PATH)
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${PREBUILT:-}" ]; then
  build=${BUILD:-/tmp/dodeca-gpu-bundle}
  mkdir -p "$build" && tar -C "$build" -xJf "$PREBUILT" || { echo "cannot unpack $PREBUILT"; exit 1; }
  # the bundle's libraries, then the machine's cuBLAS (the CUDA toolkit's, or the pip wheels')
  cublas=$(find /usr/local/cuda/lib64 /usr/local/cuda/targets /usr/local /opt /usr/lib \
    -name 'libcublasLt.so.13*' -print -quit 2>/dev/null)
  export LD_LIBRARY_PATH="$build/lib${cublas:+:$(dirname "$cublas")}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
  build=${BUILD:-$root/build-gpu-check}
fi
out=${OUT:-$build/results}
jobs=${JOBS:-$(nproc)}
mkdir -p "$out"
t0=$(date +%s)
budget=${BUDGET:-470} # seconds: leaves margin under 8 minutes
summary="$out/summary.txt"
: >"$summary"
status=0

elapsed() { echo $(($(date +%s) - t0)); }
note() { echo "$*" | tee -a "$summary"; }
left() { echo $((budget - $(elapsed))); }
# step NAME LIMIT CMD...: runs with a time limit, logs to $out/NAME.txt, records the outcome
step() {
  local name=$1 limit=$2
  shift 2
  local s=$(date +%s)
  timeout "$limit" "$@" >"$out/$name.txt" 2>&1
  local rc=$?
  local how="ok"
  case $rc in
  0) how="ok" ;;
  77) how="SKIPPED" ;;
  124) how="TIMEOUT after ${limit}s" ;;
  *) how="FAILED (rc $rc)" ;;
  esac
  note "$(printf '%-18s %-22s %4ss  (%s)' "$name" "$how" $(($(date +%s) - s)) "$out/$name.txt")"
  return $rc
}

note "dodeca gpu-check — $(date -u +%FT%TZ) — $(hostname)"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi >"$out/nvidia-smi.txt" 2>&1
  note "gpu: $(nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)"
else
  note "gpu: nvidia-smi not found"
fi
cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ')
archs=${DC_CUDA_ARCHS:-${cap:+${cap}-real}}
archs=${archs:-90-real}
note "cpu: $(nproc) cores; arches: $archs; build: $build"

# ---- configure and build ----
if [ -z "${CUDACXX:-}" ] && [ -x /usr/local/cuda/bin/nvcc ]; then export CUDACXX=/usr/local/cuda/bin/nvcc; fi
targets="dodeca dodeca_cuda gpu_test_backend_ops gpu_test_bert_gpu gpu_test_pipeline gpu_test_streams gpu_test_fusion_gpu gpu_test_fp4_gpu gpu_test_direct_weights gpu_bench_bert_gpu gpu_bench_fusion_gpu bench_pipeline test_fp8 test_fp4 gpu_test_graphs"
if [ -n "${PREBUILT:-}" ]; then
  note "prebuilt: $PREBUILT; LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
elif command -v cmake >/dev/null 2>&1; then
  gen=""
  command -v ninja >/dev/null 2>&1 && gen="-G Ninja"
  [ -f "$build/CMakeCache.txt" ] && gen=""
  step configure 120 cmake -S "$root" -B "$build" $gen -DDC_CUDA=ON "-DDC_CUDA_ARCHS=$archs" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDC_BUILD_BENCH=ON || { note "configure failed: see $out/configure.txt"; exit 1; }
  # shellcheck disable=SC2086
  step build 300 cmake --build "$build" -j"$jobs" --target $targets || { note "build failed: see $out/build.txt"; exit 1; }
else
  note "cmake not found: using the binaries already in $build"
fi
lib="$build/libdodeca_cuda.so"
[ -f "$lib" ] || { note "no $lib"; exit 1; }
export DC_CUDA_LIBRARY="$lib"

# ---- what the binary sees ----
step info 30 "$build/dodeca" info
sed 's/^/  /' "$out/info.txt" | tee -a "$summary"

# ---- tests (a skip means the device was not usable: here that is a failure) ----
# test NAME LIMIT PROGRAM: runs a GPU test program and copies its verdict lines to the summary
gpu_test() {
  local name=$1 limit=$2 prog=$3
  step "$name" "$limit" "$build/$prog" || status=1
  # every failure, note and total; then the first of the passing checks and measured cosines
  grep -E "^(FAIL|note|device:)|checks passed|checks, |SKIP|skipped" "$out/$name.txt" |
    sed 's/^/  /' | tee -a "$summary"
  grep -E "^ok|passed|cosine" "$out/$name.txt" | grep -v "checks passed" | head -30 |
    sed 's/^/  /' | tee -a "$summary"
}
step test_fp8 30 "$build/tests/test_fp8" || status=1
step test_fp4 30 "$build/tests/test_fp4" || status=1
gpu_test backend_ops 120 tests/gpu/gpu_test_backend_ops
gpu_test bert_gpu 120 tests/gpu/gpu_test_bert_gpu
gpu_test pipeline 150 tests/gpu/gpu_test_pipeline
gpu_test streams 60 tests/gpu/gpu_test_streams
gpu_test fusion_gpu 60 tests/gpu/gpu_test_fusion_gpu
gpu_test fp4_gpu 60 tests/gpu/gpu_test_fp4_gpu
DC_TEST_DATA_DIR="$root/tests/data" gpu_test direct_weights 60 tests/gpu/gpu_test_direct_weights
gpu_test graphs 60 tests/gpu/gpu_test_graphs

# ---- timing: BERT-base, 32 x 128 tokens, CPU fp32 vs CUDA per format ----
fx="$build/bench-fixture"
if [ "$(left)" -gt 300 ]; then
  step bench_bert 90 "$build/tests/gpu/gpu_bench_bert_gpu" --seqs 32 --len 128 --layers 12 \
    --iters 10 --cpu-iters 2 --fixture "$fx"
  sed 's/^/  /' "$out/bench_bert.txt" | tee -a "$summary"
else
  note "bench_bert         skipped (time)"
fi

# ---- timing: CUDA graphs off and on, BERT-base at small batches (launch-bound shapes) ----
if [ "$(left)" -gt 290 ]; then
  step bench_graphs 45 "$build/tests/gpu/gpu_bench_bert_gpu" --layers 12 --iters 20 \
    --graphs 1x13,1x16,1x100,1x128,8x100,8x128,32x128
  sed 's/^/  /' "$out/bench_graphs.txt" | tee -a "$summary"
fi

# ---- timing: the fusion experts, CPU f32 vs CUDA grouped / fallback / bf16 ----
if [ "$(left)" -gt 280 ]; then
  step bench_fusion 60 "$build/tests/gpu/gpu_bench_fusion_gpu" --batches 1,8,32,128
  sed 's/^/  /' "$out/bench_fusion.txt" | tee -a "$summary"
fi

# ---- the whole pipeline: real-size random checkpoints, CPU and CUDA on the same inputs ----
pfx=/tmp/dodeca-gpu-fixtures
bp="$build/bench/bench_pipeline"
if [ -x "$bp" ] && [ "$(left)" -gt 200 ]; then
  step pipeline_cuda 150 "$bp" --fixtures "$pfx" --device cuda --requests 100
  grep -E "^(==|single|throughput|cache)|^ *(stages|per-model|pipeline overhead|backends|cuda graphs)" \
    "$out/pipeline_cuda.txt" | sed 's/^/  /' | tee -a "$summary"
else
  note "pipeline_cuda      skipped (time or no bench_pipeline)"
fi
if [ -x "$bp" ] && [ -d "$pfx" ] && [ "$(left)" -gt 150 ]; then
  step pipeline_cuda_bf16 70 "$bp" --fixtures "$pfx" --device cuda --dtype bf16 --requests 100
  grep -E "^(==|single|throughput)|^ *(per-model|backends|cuda graphs)" "$out/pipeline_cuda_bf16.txt" |
    sed 's/^/  /' | tee -a "$summary"
fi
if [ -x "$bp" ] && [ -d "$pfx" ] && [ "$(left)" -gt 130 ]; then
  step pipeline_cpu 90 "$bp" --fixtures "$pfx" --device cpu --quick --requests 20
  grep -E "^(==|single|throughput)|^ *(per-model|backends)" "$out/pipeline_cpu.txt" |
    sed 's/^/  /' | tee -a "$summary"
fi

# ---- peers: the same checkpoints in PyTorch (transformers) on the GPU ----
if [ "$(left)" -gt 60 ] &&
  python3 -c "import torch, transformers; assert torch.cuda.is_available()" >/dev/null 2>&1; then
  if [ -d "$fx" ]; then
    step peer_bert 40 python3 "$root/bench/gpu/peer_torch.py" "$(dirname "$fx")" \
      --only "$(basename "$fx")" --dtypes fp32,tf32,bf16,fp16 --shapes 32x128
    sed 's/^/  /' "$out/peer_bert.txt" | tee -a "$summary"
  fi
  if [ -d "$pfx" ] && [ "$(left)" -gt 40 ]; then
    lim=$(($(left) - 20))
    [ $lim -gt 150 ] && lim=150
    step peer_pipeline $lim python3 "$root/bench/gpu/peer_torch.py" "$pfx" \
      --dtypes fp32,tf32,bf16 --shapes 1x32,32x32 --budget $((lim - 20))
    sed 's/^/  /' "$out/peer_pipeline.txt" | tee -a "$summary"
  fi
else
  note "peer_torch         skipped (no torch+transformers with CUDA, or time)"
fi

# ---- optional: memcheck of every kernel the ops test launches ----
san=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
if [ -n "$san" ] && [ "$(left)" -gt 60 ]; then
  step memcheck $(($(left) - 10)) "$san" --tool memcheck --leak-check no --report-api-errors no --error-exitcode 9 \
    "$build/tests/gpu/gpu_test_backend_ops"
  rc=$?
  [ $rc -ne 0 ] && [ $rc -ne 124 ] && status=1
  grep -E "ERROR SUMMARY|Invalid|out of bounds" "$out/memcheck.txt" | head -5 | sed 's/^/  /' | tee -a "$summary"
else
  note "memcheck           skipped ($([ -n "$san" ] && echo "time" || echo "no compute-sanitizer"))"
fi
rm -rf "$fx" "$pfx"

note "total $(elapsed)s; $([ $status -eq 0 ] && echo "GPU CHECK PASSED" || echo "GPU CHECK FAILED")"
# one archive of the step logs beside the summary (the device tool returns at most 8 files)
if tar -C "$out" -czf /tmp/gpu-check-logs.tgz --exclude=summary.txt . 2>/dev/null; then
  find "$out" -maxdepth 1 -type f ! -name summary.txt -delete
  mv /tmp/gpu-check-logs.tgz "$out/logs.tgz"
fi
exit $status

#!/usr/bin/env bash
# The GPU check (docs/gpu.md): run once on a machine with an NVIDIA GPU (H100/H200 class, no
# network needed). Configures with the CUDA backend for the GPU's own architecture, builds what
# the check needs, runs the GPU tests (every backend op vs the CPU, grouped GEMM, pool, cuFile,
# green contexts; BERT/RoBERTa/Longformer end to end in fp32/bf16/fp16/fp8), the codec tests,
# compute-sanitizer memcheck over the ops test when the toolkit has it, the BERT-base timing
# (CPU fp32 vs CUDA per format) and, when torch with CUDA (and transformers) is importable, the
# same forward in PyTorch as a peer. Prints a summary; everything lands in $OUT (or
# build-gpu-check/results). Budget: under 8 minutes; optional steps are skipped when time runs
# short.
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
budget=470 # seconds: leaves margin under 8 minutes
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
targets="dodeca dodeca_cuda gpu_test_backend_ops gpu_test_bert_gpu gpu_bench_bert_gpu test_fp8 test_fp4"
if [ -n "${PREBUILT:-}" ]; then
  note "prebuilt: $PREBUILT; LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
elif command -v cmake >/dev/null 2>&1; then
  gen=""
  command -v ninja >/dev/null 2>&1 && gen="-G Ninja"
  [ -f "$build/CMakeCache.txt" ] && gen=""
  step configure 120 cmake -S "$root" -B "$build" $gen -DDC_CUDA=ON "-DDC_CUDA_ARCHS=$archs" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo || { note "configure failed: see $out/configure.txt"; exit 1; }
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

# ---- tests ----
step test_fp8 30 "$build/tests/test_fp8" || status=1
step test_fp4 30 "$build/tests/test_fp4" || status=1
step backend_ops 180 "$build/tests/gpu/gpu_test_backend_ops"
rc=$?
[ $rc -ne 0 ] && status=1 # a skip here means the device was not usable: that is a failure
grep -E "^(FAIL|device:)|checks passed|SKIP" "$out/backend_ops.txt" | sed 's/^/  /' | tee -a "$summary"
step bert_gpu 180 "$build/tests/gpu/gpu_test_bert_gpu"
[ $? -ne 0 ] && status=1
grep -E "^(ok|FAIL)|checks passed|SKIP" "$out/bert_gpu.txt" | sed 's/^/  /' | tee -a "$summary"

# ---- optional: memcheck of every kernel the ops test launches ----
san=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
if [ -n "$san" ] && [ "$(left)" -gt 200 ]; then
  step memcheck 120 "$san" --tool memcheck --leak-check no --error-exitcode 9 \
    "$build/tests/gpu/gpu_test_backend_ops"
  rc=$?
  [ $rc -ne 0 ] && [ $rc -ne 124 ] && status=1
  grep -E "ERROR SUMMARY|Invalid|out of bounds" "$out/memcheck.txt" | head -5 | sed 's/^/  /' | tee -a "$summary"
else
  note "memcheck           skipped ($([ -n "$san" ] && echo "time" || echo "no compute-sanitizer"))"
fi

# ---- timing: BERT-base, 32 x 128 tokens, CPU fp32 vs CUDA per format ----
fx="$build/bench-fixture"
if [ "$(left)" -gt 90 ]; then
  lim=$(($(left) - 60))
  [ $lim -gt 180 ] && lim=180
  step bench $lim "$build/tests/gpu/gpu_bench_bert_gpu" --seqs 32 --len 128 --layers 12 \
    --iters 10 --cpu-iters 2 --fixture "$fx"
  sed 's/^/  /' "$out/bench.txt" | tee -a "$summary"
else
  note "bench              skipped (time)"
fi

# ---- optional peer: the same checkpoint and batch in PyTorch (transformers' BertModel) ----
if [ -d "$fx" ] && [ "$(left)" -gt 40 ] &&
  python3 -c "import torch, transformers; assert torch.cuda.is_available()" >/dev/null 2>&1; then
  cat >"$out/peer_torch.py" <<'PY'
import sys, time, torch, transformers
d = sys.argv[1]
torch.manual_seed(0)
ids = torch.randint(5, 65, (32, 128), device="cuda")
print("torch", torch.__version__, "transformers", transformers.__version__, torch.cuda.get_device_name())
print("%-6s %-6s %12s %14s" % ("device", "dtype", "ms/batch", "tokens/s"))
for name, dt, tf32 in (("fp32", torch.float32, False), ("tf32", torch.float32, True),
                       ("bf16", torch.bfloat16, False), ("fp16", torch.float16, False)):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    m = transformers.BertModel.from_pretrained(d, torch_dtype=dt).cuda().eval()
    with torch.inference_mode():
        m(input_ids=ids)
        torch.cuda.synchronize()
        best = 1e30
        for _ in range(10):
            t = time.perf_counter()
            m(input_ids=ids)
            torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t)
    print("%-6s %-6s %12.2f %14.0f" % ("torch", name, best * 1e3, ids.numel() / best))
PY
  step peer_torch 60 python3 "$out/peer_torch.py" "$fx"
  sed 's/^/  /' "$out/peer_torch.txt" | tee -a "$summary"
else
  note "peer_torch         skipped (no torch+transformers with CUDA, no fixture, or time)"
fi
rm -rf "$fx"

note "total $(elapsed)s; $([ $status -eq 0 ] && echo "GPU CHECK PASSED" || echo "GPU CHECK FAILED")"
exit $status

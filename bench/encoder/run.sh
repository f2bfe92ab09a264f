#!/usr/bin/env bash
# Encoder forward at real sizes: ours (bench_encoder) against ONNX Runtime and PyTorch
# (peers.py) on the same random-weight checkpoints, same inputs, same thread count; one table.
#
# Usage: bench/encoder/run.sh [--threads N] [--budget S] [--rounds R] [--models a,b] [--no-peers]
#   --threads  intra-op threads for all three engines (default 2)
#   --budget   seconds of timed runs per (engine, model, shape) (default 2; at least one run)
#   --rounds   ours → peers alternations per model; each engine keeps its best median (default 1)
#   --models   any of bert-base,bert-large,roberta-base,longformer-base,clip-text,clip-vision
# Fixtures (≈ 4.5 GB of safetensors) and the exported .onnx files are cached in
# $build/encoder/; the first run writes them (transformers + torch needed; onnxruntime and onnx
# are installed with pip when missing, or the ORT column is skipped).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${DC_BENCH_BUILD:-$root/build-bench}
threads=2 budget=2 rounds=1 peers=1
models=bert-base,bert-large,roberta-base,longformer-base,clip-text,clip-vision
while [ $# -gt 0 ]; do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --budget) budget=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --no-peers) peers=0; shift ;;
    *) sed -n '2,13p' "$0"; exit 2 ;;
  esac
done
declare -A shapes=(
  [bert-base]=1x16,1x128,32x128 [bert-large]=1x16,1x128,32x128 [roberta-base]=1x16,1x128,32x128
  [longformer-base]=1x512,1x1024,1x2048,1x4096 [clip-text]=1x77 [clip-vision]=1)

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDC_BUILD_BENCH=ON \
  -DCMAKE_C_FLAGS=-Wno-error=maybe-uninitialized >/dev/null  # -O3 false positives
cmake --build "$build" --target bench_encoder >/dev/null
fx=$build/encoder
mkdir -p "$fx"
engines=torch,ort
if [ $peers = 1 ]; then
  python3 -c 'import torch, transformers' 2>/dev/null || { echo "torch/transformers missing: ours only"; peers=0; }
fi
if [ $peers = 1 ] && ! python3 -c 'import onnxruntime, onnx' 2>/dev/null; then
  python3 -m pip install -q onnxruntime onnx >/dev/null 2>&1 || true
  python3 -c 'import onnxruntime, onnx' 2>/dev/null || { echo "onnxruntime missing: ORT skipped"; engines=torch; }
fi
folders=$(echo "$models" | tr , '\n' | sed 's/^clip-.*/clip-vit-l-14/' | sort -u | tr '\n' ' ')
for f in $folders; do
  [ -f "$fx/$f/model.safetensors" ] && continue
  [ $peers = 1 ] || { echo "no fixture $fx/$f (needs transformers to write it)"; exit 1; }
  python3 "$root/bench/encoder/peers.py" fixtures "$fx" "$f" 2>&1 | grep -v -e Writing -e Loading || true
done

out=$fx/results.txt
: >"$out"
export OMP_NUM_THREADS=$threads
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out"
for m in $(echo "$models" | tr , ' '); do
  for r in $(seq "$rounds"); do
    "$build/bench/bench_encoder" --dir "$fx" --model "$m" --shapes "${shapes[$m]}" \
      --threads "$threads" --budget "$budget" --dump "$fx" | tee -a "$out"
    if [ $peers = 1 ]; then
      python3 "$root/bench/encoder/peers.py" run "$fx" --model "$m" --shapes "${shapes[$m]}" \
        --threads "$threads" --budget "$budget" --engines "$engines" --check "$fx" 2>&1 |
        grep -e '^peer' -e '^# check' -e '^# exported' | tee -a "$out"
    fi
  done
  echo "load average after $m: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out"
done

python3 - "$out" "$threads" <<'EOF'
import sys, collections
rows, peak = collections.OrderedDict(), []
for line in open(sys.argv[1]):
    f = line.split()
    if not f:
        continue
    if f[0] == "gemm_peak":
        peak.append(float(f[1]))
    elif f[0] in ("ours", "peer"):
        eng, model, shape, ms, rss = ("ours", f[1], f[2], float(f[3]), f[5]) if f[0] == "ours" \
            else (f[1], f[2], f[3], float(f[4]), f[6])
        r = rows.setdefault((model, shape), {})
        if eng not in r or ms < r[eng][0]:
            r[eng] = (ms, rss, f[6:9] if eng == "ours" else None)
print(f"\nthreads {sys.argv[2]}, oneDNN GEMM peak measured {max(peak) if peak else 0:.1f} GFLOP/s; "
      "xORT = ORT ms / ours ms (above 1: ours faster)")
hdr = f"{'model':<16}{'shape':>8}{'ours ms':>11}{'ORT ms':>11}{'torch ms':>11}{'xORT':>7}{'xtorch':>7}{'GFLOP/s':>9}{'of peak':>8}"
print(hdr)
print("-" * len(hdr))
def cell(v, w, fmt):
    return f"{fmt.format(v):>{w}}" if v is not None else f"{'-':>{w}}"
for (model, shape), r in rows.items():
    ours = r.get("ours")
    ort, pt = r.get("ort"), r.get("torch")
    o = ours[0] if ours else None
    print(f"{model:<16}{shape:>8}" + cell(o, 11, "{:.1f}") + cell(ort and ort[0], 11, "{:.1f}")
          + cell(pt and pt[0], 11, "{:.1f}")
          + cell(ort and o and ort[0] / o, 7, "{:.2f}") + cell(pt and o and pt[0] / o, 7, "{:.2f}")
          + cell(ours and float(ours[2][1]), 9, "{:.1f}") + cell(ours and float(ours[2][2]), 8, "{:.2f}"))
lf = [(s, r) for (m, s), r in rows.items() if m == "longformer-base"]
if lf:
    print("\nLongformer-base, one sequence, global attention on <s>: time and peak RSS (MiB, whole process)")
    print(f"{'tokens':>8}{'ours ms':>10}{'ours RSS':>10}{'ORT ms':>10}{'ORT RSS':>10}{'torch ms':>10}{'torch RSS':>10}")
    for s, r in lf:
        def two(e):
            return (f"{r[e][0]:>10.1f}{r[e][1]:>10}") if e in r else f"{'-':>10}{'-':>10}"
        print(f"{s.split('x')[1]:>8}" + two("ours") + two("ort") + two("torch"))
EOF

#!/usr/bin/env bash
# Encoder forward at real sizes: ours (bench_encoder) against ONNX Runtime and PyTorch
# (peers.py) on the same random-weight checkpoints, same inputs, same thread count; one table.
#
# Usage: bench/encoder/run.sh [--threads N] [--budget S] [--rounds R] [--models a,b]
#                             [--shapes 1x16,...] [--wait auto|active|passive] [--out FILE]
#                             [--no-peers]
#   --threads  intra-op threads for all three engines (default 2)
#   --budget   seconds of timed runs per (engine, model, shape) (default 2; at least one run)
#   --rounds   ours → peers alternations per model; each engine keeps its best median (default 1)
#   --out      raw results (default $build/encoder/results.txt; table.py FILE N reprints them)
#   --models   any of bert-base,bert-large,roberta-base,longformer-base,clip-text,clip-vision
#   --shapes   only these of each model's shapes (e.g. 1x16 with --rounds 3 for the noisy small ones)
#   --wait     how idle pool threads wait, for all three engines: active spins (OpenMP's and
#              ORT's default), passive sleeps (OMP_WAIT_POLICY=PASSIVE for ours and PyTorch,
#              ORT allow_spinning=0). auto (default): passive when the load average exceeds
#              the core count, where spinning threads steal the time slices of working ones
# Fixtures (≈ 4.5 GB of safetensors) and the exported .onnx files are cached in
# $build/encoder/; the first run writes them (transformers + torch needed; onnxruntime and onnx
# are installed with pip when missing, or the ORT column is skipped).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${DC_BENCH_BUILD:-$root/build-bench}
threads=2 budget=2 rounds=1 peers=1 wait=auto out= only=
models=bert-base,bert-large,roberta-base,longformer-base,clip-text,clip-vision
while [ $# -gt 0 ]; do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --budget) budget=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --shapes) only=$2; shift 2 ;;
    --wait) wait=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --no-peers) peers=0; shift ;;
    *) sed -n '2,21p' "$0"; exit 2 ;;
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

out=${out:-$fx/results.txt}
: >"$out"
export OMP_NUM_THREADS=$threads
if [ "$wait" = auto ]; then
  wait=$(awk -v n="$(nproc)" '{print ($1 > n) ? "passive" : "active"}' /proc/loadavg)
fi
spin=1
if [ "$wait" = passive ]; then export OMP_WAIT_POLICY=PASSIVE; spin=0; fi
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; wait policy $wait" | tee -a "$out"
for m in $(echo "$models" | tr , ' '); do
  if [ -n "$only" ]; then
    keep=$(echo "${shapes[$m]}" | tr , '\n' | grep -Fx -f <(echo "$only" | tr , '\n') | paste -sd, || true)
    [ -n "$keep" ] || continue
    shapes[$m]=$keep
  fi
  for r in $(seq "$rounds"); do
    "$build/bench/bench_encoder" --dir "$fx" --model "$m" --shapes "${shapes[$m]}" \
      --threads "$threads" --budget "$budget" --dump "$fx" | tee -a "$out"
    if [ $peers = 1 ]; then
      python3 "$root/bench/encoder/peers.py" run "$fx" --model "$m" --shapes "${shapes[$m]}" \
        --threads "$threads" --budget "$budget" --engines "$engines" --spin $spin --check "$fx" 2>&1 |
        grep --line-buffered -e '^peer' -e '^# check' -e '^# exported' -e '^# ort' | tee -a "$out"
    fi
  done
  echo "load average after $m: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out"
done

python3 "$root/bench/encoder/table.py" "$out" "$threads"

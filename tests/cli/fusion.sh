#!/usr/bin/env bash
# `dodeca fusion`: synthetic pairs, training raises recall@1, checkpoints verify and detect damage.
set -euo pipefail
dodeca=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
set +e
"$dodeca" fusion --help >/dev/null 2>&1; rc=$?
set -e
[ $rc -eq 0 ] || fail "dodeca fusion --help exited $rc"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$dodeca" fusion synth --out "$tmp/train.jsonl" --n 256 --seed 2 | grep -q 'wrote 256 pairs' || fail "synth train"
"$dodeca" fusion synth --out "$tmp/test.jsonl" --n 128 --seed 3 >/dev/null || fail "synth test"
[ "$(wc -l < "$tmp/train.jsonl")" -eq 256 ] || fail "synth wrote the wrong number of lines"

out=$("$dodeca" fusion train --pairs "$tmp/train.jsonl" --eval "$tmp/test.jsonl" --out "$tmp/ckpt.safetensors" \
      --hidden 16 --experts 2 --epochs 3 --batch 32 --version 1.0.0 --quiet)
echo "$out"
before=$(sed -n 's/.*: \([0-9.]*\) before.*/\1/p' <<<"$out")
after=$(sed -n 's/.*before, \([0-9.]*\) after.*/\1/p' <<<"$out")
awk -v b="$before" -v a="$after" 'BEGIN { exit !(a >= b + 0.2) }' || fail "training did not raise recall@1 ($before -> $after)"

"$dodeca" fusion verify "$tmp/ckpt.safetensors" | grep -q '^ok .* 1.0.0 sha256:' || fail "verify"
info=$("$dodeca" fusion info --checkpoint "$tmp/ckpt.safetensors")
grep -q 'experts      2 (top-2), hidden 16' <<<"$info" || fail "info shape: $info"
grep -q 'recall@1' <<<"$info" || fail "info metrics"
"$dodeca" fusion eval --pairs "$tmp/test.jsonl" --checkpoint "$tmp/ckpt.safetensors" | grep -q "recall@1 $after" \
  || fail "eval does not reproduce the recall written at training"

# one flipped byte near the end (tensor data) is caught
cp "$tmp/ckpt.safetensors" "$tmp/bad.safetensors"
size=$(stat -c %s "$tmp/bad.safetensors")
printf '\x55' | dd of="$tmp/bad.safetensors" bs=1 seek=$((size - 5)) conv=notrunc status=none
set +e
"$dodeca" fusion verify "$tmp/bad.safetensors" >/dev/null 2>"$tmp/err"; rc=$?
set -e
[ $rc -eq 1 ] || fail "verify of a damaged checkpoint should exit 1, got $rc"
grep -q 'CHECKPOINT_CORRUPTED.*checksum mismatch' "$tmp/err" || fail "damage not named: $(cat "$tmp/err")"

# registry listing
mkdir "$tmp/reg"
"$dodeca" fusion init --out "$tmp/reg/fusemoe-0.1.0.safetensors" --hidden 4 --version 0.1.0 >/dev/null
cp "$tmp/ckpt.safetensors" "$tmp/reg/fusemoe-1.0.0.safetensors"
[ "$("$dodeca" fusion list "$tmp/reg" | wc -l)" -eq 2 ] || fail "list"

# usage errors exit 2
set +e
"$dodeca" fusion train --pairs "$tmp/train.jsonl" >/dev/null 2>&1; [ $? -eq 2 ] || fail "missing --out should exit 2"
"$dodeca" fusion train --pairs x --out y --top-k 9 >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad --top-k should exit 2"
"$dodeca" fusion frob >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown subcommand should exit 2"
"$dodeca" fusion eval --pairs /nonexistent.jsonl >/dev/null 2>&1; [ $? -eq 1 ] || fail "missing file should exit 1"
set -e
echo "cli fusion: ok"

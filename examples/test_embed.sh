#!/usr/bin/env bash
# examples/embed.c runs, and its cosine means something: a paraphrase scores above an
# unrelated sentence (custom models only: nothing to download).
set -euo pipefail
example=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
export DODECA_LOG_LEVEL=error
export DODECA_FUSION_EXPERT_HIDDEN_DIM=64 # untrained experts add zero: a fast open, same result
export DODECA_MODELS_MODELS_DIR=/nonexistent-dodeca-models
out=$("$example" "The quick brown fox jumps over the lazy dog" "A quick brown fox jumped over a lazy dog")
echo "$out"
grep -qx 'models: E2 E3 E4 E9' <<<"$out" || fail "models line"
near=$(sed -n 's/^cosine: //p' <<<"$out")
far=$("$example" "The quick brown fox jumps over the lazy dog" "Quarterly revenue grew by 4 percent" |
  sed -n 's/^cosine: //p')
[ -n "$near" ] && [ -n "$far" ] || fail "no cosine printed"
awk -v n="$near" -v f="$far" 'BEGIN { exit !(n <= 1.000001 && f >= -1.000001 && n > f) }' ||
  fail "paraphrase $near should score above unrelated $far"
echo "example embed: ok (paraphrase $near, unrelated $far)"

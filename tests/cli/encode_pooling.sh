#!/usr/bin/env bash
# Pooling / normalize overrides from the command line (`encode --pooling --normalize`) and from
# the configuration ([models.entity] through `embed --config`) on a random-weight E11 fixture
# written by tests/tools/dc_fixture.c (skipped without a C compiler or python3): cls without
# L2 is the [CLS] row of `encode --hidden`; the models that pool by definition refuse.
set -euo pipefail
dodeca=$1
data=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export DODECA_FUSION_EXPERT_HIDDEN_DIM=64 DODECA_LOG_LEVEL=error
unset DODECA_CONFIG

cc=${CC:-cc}
command -v "$cc" >/dev/null || { echo "SKIP: no C compiler to build dc_fixture" >&2; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to read the output" >&2; exit 77; }

# usage errors and refusals need no model
set +e
"$dodeca" encode --model E11 --model-dir /nonexistent --pooling median </dev/null >/dev/null 2>"$tmp/err"
rc=$?
set -e
[ $rc -eq 2 ] || fail "--pooling median should be a usage error (exit 2), got $rc"
grep -q 'cls' "$tmp/err" || fail "--pooling error should list the modes: $(cat "$tmp/err")"
set +e
"$dodeca" encode --model E6 --model-dir /nonexistent --pooling cls </dev/null >/dev/null 2>"$tmp/err"
rc=$?
set -e
[ $rc -eq 1 ] || fail "E6 --pooling cls should fail (exit 1), got $rc"
grep -q 'auto' "$tmp/err" || fail "E6 refusal should say only auto is accepted: $(cat "$tmp/err")"
"$dodeca" encode --model E11 --help | grep -qF -- '--pooling' || fail "help does not list --pooling"

tools=$data/../tools
"$cc" -O1 -w "$tools/dc_fixture.c" "$tools/bert_fixture.c" -lm -o "$tmp/dc_fixture" ||
  fail "dc_fixture does not build"
mkdir -p "$tmp/models"
"$tmp/dc_fixture" e11 "$tmp/models/entity"
e11=$tmp/models/entity

printf '%s\n' '{"id":"a","text":"The quick brown fox jumps over the lazy dog."}' \
  '{"id":"b","text":"hello world"}' >"$tmp/in.jsonl"
"$dodeca" encode --model E11 --model-dir "$e11" --hidden <"$tmp/in.jsonl" >"$tmp/hidden.jsonl"
"$dodeca" encode --model E11 --model-dir "$e11" <"$tmp/in.jsonl" >"$tmp/auto.jsonl"
"$dodeca" encode --model E11 --model-dir "$e11" --pooling auto --normalize auto \
  <"$tmp/in.jsonl" >"$tmp/auto2.jsonl"
cmp -s "$tmp/auto.jsonl" "$tmp/auto2.jsonl" || fail "--pooling auto --normalize auto changed the output"
"$dodeca" encode --model E11 --model-dir "$e11" --pooling cls --normalize false \
  <"$tmp/in.jsonl" >"$tmp/cls.jsonl"
"$dodeca" encode --model E11 --model-dir "$e11" --normalize false <"$tmp/in.jsonl" >"$tmp/raw.jsonl"

for s in sparse late_interaction multimodal hdc; do
  printf '[models.%s]\npooling = "cls"\n' "$s" >"$tmp/bad.toml"
  set +e
  "$dodeca" embed --config "$tmp/bad.toml" -i "$tmp/in.jsonl" >/dev/null 2>"$tmp/err"
  rc=$?
  set -e
  [ $rc -ne 0 ] || fail "[models.$s] pooling = \"cls\" was accepted"
  grep -q "models.$s.pooling" "$tmp/err" || fail "the error should name models.$s.pooling: $(cat "$tmp/err")"
done
printf '[models]\nmodels_dir = "%s"\n[models.entity]\npooling = "cls"\nnormalize = "false"\n' \
  "$tmp/models" >"$tmp/cls.toml"
"$dodeca" embed --config "$tmp/cls.toml" --t-ref 1709208000 -i "$tmp/in.jsonl" --per-model \
  >"$tmp/embed_cls.jsonl"
printf '[models]\nmodels_dir = "%s"\n' "$tmp/models" >"$tmp/plain.toml"
"$dodeca" embed --config "$tmp/plain.toml" --t-ref 1709208000 -i "$tmp/in.jsonl" --per-model \
  >"$tmp/embed_auto.jsonl"

python3 - "$tmp" <<'EOF' || fail "output checks"
import json, math, sys
tmp = sys.argv[1]
def load(n):
    return [json.loads(l) for l in open(f"{tmp}/{n}")]
def norm(v):
    return math.sqrt(sum(x * x for x in v))
hidden, auto, cls, raw = load("hidden.jsonl"), load("auto.jsonl"), load("cls.jsonl"), load("raw.jsonl")
for h, a, c, r in zip(hidden, auto, cls, raw):
    first = h["hidden"][0]
    assert c["embedding"] == first, "cls without L2 is not the [CLS] row"
    assert abs(norm(c["embedding"]) - 1) > 1e-3
    n = len(h["hidden"])
    mean = [sum(row[d] for row in h["hidden"]) / n for d in range(len(first))]
    assert max(abs(x - y) for x, y in zip(r["embedding"], mean)) < 1e-5, "normalize false: not the mean"
    assert abs(norm(r["embedding"]) - 1) > 1e-3
    k = norm(r["embedding"])
    assert max(abs(x - y / k) for x, y in zip(a["embedding"], r["embedding"])) < 1e-6
ec, ea = load("embed_cls.jsonl"), load("embed_auto.jsonl")
for h, c, a, e in zip(hidden, ec, ea, auto):
    v = c["models"]["E11"]["vector"]
    assert max(abs(x - y) for x, y in zip(v, h["hidden"][0])) < 1e-5, "config cls is not the [CLS] row"
    w = a["models"]["E11"]["vector"]
    assert max(abs(x - y) for x, y in zip(w, e["embedding"])) < 1e-5, "config auto differs from encode"
    assert c["embedding"] != a["embedding"], "the override did not reach the fused vector"
EOF
echo "cli encode_pooling: ok"

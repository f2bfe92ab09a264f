#!/bin/sh
# Tokenizer throughput, dodeca vs Hugging Face `tokenizers`, one thread each, same corpus, same
# run; prints MB/s, tokens/s, the ratio per tokenizer type and whether the ids are identical.
#
#   bench/tokenize/run.sh [SECONDS]
#
# Needs: cmake, a C compiler, python3 with `tokenizers` (pip install tokenizers; PYTHON=... to
# pick an interpreter), and the conformance tokenizers ($DODECA_CONFORMANCE_DIR or
# ../shared/conformance next to the repository).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SECONDS_PER=${1:-3}
PY=${PYTHON:-python3}
CONF=${DODECA_CONFORMANCE_DIR:-$ROOT/../shared/conformance}
TOK=$CONF/tokenizers
BUILD=${DODECA_BENCH_BUILD:-$ROOT/build-bench}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

[ -d "$TOK" ] || { echo "no conformance tokenizers at $TOK" >&2; exit 1; }
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDC_BUILD_TESTS=OFF \
      -DDC_BUILD_BENCH=ON >/dev/null
cmake --build "$BUILD" --target bench_tokenize >/dev/null
cp "$BUILD/bench/bench_tokenize" "$WORK/bench_tokenize"

CORPUS=$WORK/corpus.jsonl
DOCS=$(ls "$CONF"/../reference/*.md "$CONF"/../DESIGN.md 2>/dev/null || true)
[ -n "$DOCS" ] || DOCS=$(ls "$ROOT"/*.md "$ROOT"/docs/*.md 2>/dev/null || true)
"$PY" "$HERE/make_corpus.py" "$CORPUS" 2000000 $DOCS "$TOK/cases.jsonl"

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs; one thread each"
echo "reference: tokenizers $("$PY" -c 'import tokenizers; print(tokenizers.__version__)') ($PY)"
echo "corpus: $(wc -l < "$CORPUS") documents, $(wc -c < "$CORPUS") bytes of JSON lines; offsets computed by both"
printf '%-12s %-24s %10s %12s %10s %12s %7s %s\n' type tokenizer "dodeca MB/s" "dodeca tok/s" "HF MB/s" "HF tok/s" ratio ids
for pair in wordpiece:bert-base-uncased bytelevel-bpe:roberta-base clip-bpe:clip-vit-large-patch14; do
    type=${pair%%:*}
    name=${pair#*:}
    ours=$("$WORK/bench_tokenize" "$TOK/$name/tokenizer.json" "$CORPUS" "$SECONDS_PER")
    ref=$("$PY" "$HERE/bench_hf.py" "$TOK/$name/tokenizer.json" "$CORPUS" "$SECONDS_PER")
    "$PY" - "$type" "$name" "$ours" "$ref" <<'PYEOF'
import json, sys
t, n, a, b = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
same = "identical" if a["checksum"] == b["checksum"] and a["tokens"] == b["tokens"] else "DIFFERENT"
print("%-12s %-24s %10.2f %12.0f %10.2f %12.0f %6.2fx %s" % (
    t, n, a["mb_per_s"], a["tokens_per_s"], b["mb_per_s"], b["tokens_per_s"],
    b["seconds_per_pass"] / a["seconds_per_pass"], same))
PYEOF
done

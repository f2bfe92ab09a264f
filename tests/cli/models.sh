#!/usr/bin/env bash
# `dodeca models`, `--version` and usage errors behave as documented.
set -euo pipefail
dodeca=$1
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$("$dodeca" models)
[ "$(grep -c '^E[0-9]' <<<"$out")" -eq 12 ] || fail "models table does not have 12 rows"
grep -q '^E1 .*intfloat/e5-large-v2 .*1024' <<<"$out" || fail "E1 row wrong"
grep -q '^E10 .*text,image' <<<"$out" || fail "E10 should accept text and images"
grep -q 'concatenated 8320 -> fused 1536' <<<"$out" || fail "dimension summary missing"

json=$("$dodeca" models --json)
if command -v python3 >/dev/null; then
  python3 -c 'import json,sys; m=json.load(sys.stdin); assert len(m)==12 and sum(x["dim"] for x in m)==8320' <<<"$json" \
    || fail "models --json is not valid JSON with 12 models summing to 8320"
fi

"$dodeca" --version | grep -Eq '^dodeca [0-9]+\.[0-9]+\.[0-9]+$' || fail "--version format"

set +e
"$dodeca" models --bogus >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad flag should exit 2"
"$dodeca" frobnicate >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown command should exit 2"
"$dodeca" >/dev/null 2>&1; [ $? -eq 2 ] || fail "no command should exit 2"
set -e
echo "cli models: ok"

#!/usr/bin/env bash
# `dodeca encode --model E2|E3|E4|E9`: JSON lines in, one embedding per line out.
set -euo pipefail
dodeca=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

set +e
"$dodeca" encode --help >"$tmp/help" 2>&1
rc=$?
set -e
if [ $rc -ne 0 ]; then
  echo "FAIL: dodeca encode --help exited $rc" >&2
  exit 1
fi
[ $rc -eq 0 ] || fail "encode --help exited $rc"
grep -q -- '--model' "$tmp/help" || fail "help does not mention --model"

# ---- E9 ----
cat >"$tmp/e9.jsonl" <<'EOF'
{"id": 1, "text": "the quick brown fox jumps over the lazy dog"}
{"id": "b", "text": "the quick brown fox jumped over the lazy dog"}

{"id": null, "text": "stock markets fell sharply amid inflation worries", "type": "code"}
{"id": [1, 2], "text": "the quick brown fox jumps over the lazy dog"}
EOF
"$dodeca" encode --model E9 <"$tmp/e9.jsonl" >"$tmp/e9.out"
[ "$(wc -l <"$tmp/e9.out")" -eq 4 ] || fail "E9: expected 4 output lines (blank lines skipped)"
grep -q '^{"id":1,"model":"E9","dim":1024,"vector":\[' "$tmp/e9.out" || fail "E9: first line shape"
grep -q '"id":"b"' "$tmp/e9.out" || fail "E9: string id not echoed"
grep -q '"id":\[1,2\]' "$tmp/e9.out" || fail "E9: array id not echoed"
"$dodeca" encode --model hdc --max-chars 5 <<<'{"id":1,"text":"more than five"}' >"$tmp/trunc.out"
grep -q '"truncated":true,"tokens_used":5' "$tmp/trunc.out" || fail "E9: truncation not reported"

# The item memory file: created when missing, then reused with the same result.
"$dodeca" encode --model E9 --item-memory "$tmp/im.hdcv" <"$tmp/e9.jsonl" >"$tmp/e9.file1"
[ -s "$tmp/im.hdcv" ] || fail "E9: item memory file was not written"
"$dodeca" encode --model E9 --item-memory "$tmp/im.hdcv" <"$tmp/e9.jsonl" >"$tmp/e9.file2"
cmp -s "$tmp/e9.out" "$tmp/e9.file1" || fail "E9: a generated item memory changed the output"
cmp -s "$tmp/e9.file1" "$tmp/e9.file2" || fail "E9: reloading the item memory changed the output"
set +e
"$dodeca" encode --model E9 --seed 7 --item-memory "$tmp/im.hdcv" </dev/null 2>"$tmp/err"
rc=$?
set -e
[ $rc -eq 1 ] && grep -q 'seed 42' "$tmp/err" || fail "E9: a seed mismatch with the file must fail"

# ---- E2 / E3 / E4 ----
cat >"$tmp/t.jsonl" <<'EOF'
{"id": "now", "t_event": 1709208000, "t_ref": 1709208000}
{"id": "hour", "t_event": 1709204400, "t_ref": 1709208000}
{"id": "year", "t_event": 1677672000, "t_ref": 1709208000}
{"id": "rfc", "t_event": "2024-02-29T07:00:00-05:00", "t_ref": "2024-02-29T12:00:00Z", "position": 3}
{"id": "num", "t_event": 1709208000, "t_ref": 1709208000, "position": 3}
EOF
for m in E2 E3 E4; do
  "$dodeca" encode --model $m --no-clock <"$tmp/t.jsonl" >"$tmp/$m.out"
  [ "$(wc -l <"$tmp/$m.out")" -eq 5 ] || fail "$m: expected 5 lines"
  grep -q "\"model\":\"$m\",\"dim\":512" "$tmp/$m.out" || fail "$m: model/dim"
  grep -q '"t_ref":1709208000' "$tmp/$m.out" || fail "$m: t_ref not echoed"
done
# no t_ref and --no-clock: deterministic, no t_ref in the output
"$dodeca" encode --model E2 --no-clock <<<'{"id":1,"t_event":5}' >"$tmp/a"
"$dodeca" encode --model E2 --no-clock <<<'{"id":1,"t_event":5}' >"$tmp/b"
cmp -s "$tmp/a" "$tmp/b" || fail "E2 --no-clock is not deterministic"
grep -q t_ref "$tmp/a" && fail "E2 --no-clock invented a t_ref"
# no t_ref without --no-clock: the receive time is used and returned
before=$(date +%s)
"$dodeca" encode --model E2 <<<'{"id":1,"t_event":5}' >"$tmp/c"
after=$(date +%s)
t_ref=$(grep -o '"t_ref":[0-9.e+]*' "$tmp/c" | cut -d: -f2)
[ -n "$t_ref" ] || fail "E2: missing t_ref was not filled with the receive time"

if command -v python3 >/dev/null; then
  python3 - "$tmp" "$before" "$after" "$t_ref" <<'EOF' || fail "numeric checks"
import json, math, sys
tmp, before, after, t_ref = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
def load(name):
    return [json.loads(l) for l in open(f"{tmp}/{name}")]
def cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
e9 = load("e9.out")
for r in e9:
    assert r["dim"] == 1024 and len(r["vector"]) == 1024, r["id"]
    assert abs(math.sqrt(sum(x * x for x in r["vector"])) - 1) < 1e-5
    assert r["truncated"] is False and r["tokens_used"] > 0
assert e9[0]["vector"] == e9[3]["vector"], "same text, same vector"
assert cos(e9[0]["vector"], e9[1]["vector"]) > cos(e9[0]["vector"], e9[2]["vector"]) + 0.3
e2 = {r["id"]: r for r in load("E2.out")}
assert cos(e2["now"]["vector"], e2["hour"]["vector"]) > cos(e2["now"]["vector"], e2["year"]["vector"])
for m in ("E2", "E3", "E4"):
    rows = {r["id"]: r for r in load(f"{m}.out")}
    assert rows["rfc"]["vector"] == rows["num"]["vector"], f"{m}: RFC 3339 and seconds differ"
    for r in rows.values():
        assert len(r["vector"]) == 512 and abs(math.sqrt(sum(x * x for x in r["vector"])) - 1) < 1e-5
assert before - 1 <= t_ref <= after + 1, "receive time"
EOF
fi

# ---- errors ----
expect_rc() {
  local want=$1; shift
  set +e
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  set -e
  [ "$got" -eq "$want" ] || fail "$* exited $got, expected $want ($(cat "$tmp/err"))"
}
expect_rc 2 "$dodeca" encode
expect_rc 2 "$dodeca" encode --model E1
grep -q -- '--model-dir is required' "$tmp/err" || fail "E1 without a folder should say what is missing"
expect_rc 2 "$dodeca" encode --model E5
grep -q -- '--model-dir is required' "$tmp/err" || fail "E5 without a folder should say what is missing"
expect_rc 2 "$dodeca" encode --model E99
expect_rc 2 "$dodeca" encode --model E3 --utc-offset 5000
expect_rc 2 "$dodeca" encode --model E9 --ngram 9
expect_rc 2 "$dodeca" encode --model E9 --bogus 1
expect_rc 2 "$dodeca" encode --model
printf '{"id":1,"text":"ok"}\n{"id":2,"txt":"typo"}\n' >"$tmp/bad.jsonl"
expect_rc 1 "$dodeca" encode --model E9 <"$tmp/bad.jsonl"
grep -q 'line 2' "$tmp/err" && grep -q 'txt' "$tmp/err" || fail "unknown key: $(cat "$tmp/err")"
[ "$(wc -l <"$tmp/out")" -eq 1 ] || fail "lines before the bad one should be written"
expect_rc 1 "$dodeca" encode --model E9 <<<'not json'
expect_rc 1 "$dodeca" encode --model E9 <<<'{"id":1}'
grep -q 'text' "$tmp/err" || fail "E9 without text"
expect_rc 1 "$dodeca" encode --model E2 <<<'{"t_event":1e300}'
grep -q 't_event' "$tmp/err" || fail "out-of-range t_event"
expect_rc 1 "$dodeca" encode --model E3 <<<'{"t_event":"2023-02-29T00:00:00Z"}'
grep -q 'day 29' "$tmp/err" || fail "bad date: $(cat "$tmp/err")"
expect_rc 1 "$dodeca" encode --model E4 <<<'{"position":-1}'
expect_rc 1 "$dodeca" encode --model E4 <<<'{"position":1.5}'
echo "cli encode: ok"

#!/usr/bin/env bash
# `dodeca embed`: the twelve-model pipeline from the command line. Runs with the custom models
# only (E2, E3, E4, E9: no weights needed); tests/cli/embed_models.sh adds pretrained fixtures.
set -euo pipefail
dodeca=$1
data=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The untrained fusion's experts add zero (docs/fusion.md), so their width changes no output;
# a small one makes each run open in a fraction of a second instead of seconds.
export DODECA_FUSION_EXPERT_HIDDEN_DIM=64
export DODECA_LOG_LEVEL=error
unset DODECA_CONFIG
cd "$tmp" # models.models_dir defaults to ./models: keep it empty

expect_rc() {
  local want=$1; shift
  set +e
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  set -e
  [ "$got" -eq "$want" ] || fail "$* exited $got, expected $want: $(head -c 600 "$tmp/err")"
}
have_python=false
command -v python3 >/dev/null && have_python=true

# ---- help ----
"$dodeca" embed --help >"$tmp/help"
for opt in --input --format --output --output-format --per-model --sparse --colbert --routing \
           --timings --resume --skip-errors --batch-size --models --models-dir --config \
           --no-cache --deadline-ms --progress --quiet --t-ref; do
  grep -q -- "$opt" "$tmp/help" || fail "--help does not mention $opt"
done

# ---- arguments, stdin and files give the same items, ids and vectors; runs repeat ----
"$dodeca" embed --t-ref 1709208000 "The quick brown fox" "A fast auburn fox" >"$tmp/args1"
"$dodeca" embed --t-ref 1709208000 "The quick brown fox" "A fast auburn fox" >"$tmp/args2"
printf 'The quick brown fox\nA fast auburn fox\n' |
  "$dodeca" embed --t-ref 1709208000 >"$tmp/stdin"
printf 'The quick brown fox\nA fast auburn fox\n' >"$tmp/in.txt"
"$dodeca" embed --t-ref 2024-02-29T12:00:00Z -i "$tmp/in.txt" --format text >"$tmp/file"
[ "$(wc -l <"$tmp/args1")" -eq 2 ] || fail "two arguments, two lines"
grep -q '^{"id":0,"embedding":\[' "$tmp/args1" || fail "first line shape: $(head -c 80 "$tmp/args1")"
grep -q '^{"id":1,' "$tmp/args1" || fail "second id"
cmp -s "$tmp/args1" "$tmp/args2" || fail "the same input twice gave different output"
cmp -s "$tmp/args1" "$tmp/stdin" || fail "arguments and stdin differ"
cmp -s "$tmp/args1" "$tmp/file" || fail "arguments and -i FILE (RFC 3339 --t-ref) differ"

# ---- JSON lines with every field; extras ----
cp "$data/embed/items.jsonl" "$tmp/items.jsonl"
"$dodeca" embed --t-ref 1709208000 -i "$data/embed/items.jsonl" --per-model --routing \
  --timings >"$tmp/items.out"
[ "$(wc -l <"$tmp/items.out")" -eq 7 ] || fail "items.jsonl: 7 items expected"
# no t_ref anywhere: the receive time is used and returned; giving it back repeats the result
before=$(date +%s)
"$dodeca" embed "what time is it" >"$tmp/now1"
after=$(date +%s)

if $have_python; then
  python3 - "$tmp" "$before" "$after" <<'EOF' || fail "JSON lines checks"
import json, math, sys
tmp, before, after = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
def load(name):
    return [json.loads(l) for l in open(f"{tmp}/{name}")]
def norm(v):
    return math.sqrt(sum(x * x for x in v))
def cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / (norm(a) * norm(b))
rows = load("items.out")
ids = [r["id"] for r in rows]
assert ids == ["fox", "fox2", "query", 17, ["nested", 1], 6, "old"], ids
custom = ["E2", "E3", "E4", "E9"]
for r in rows:
    e = r["embedding"]
    assert len(e) == 1536 and all(math.isfinite(x) for x in e), r["id"]
    assert abs(norm(e) - 1) < 1e-5, (r["id"], norm(e))
    assert r["truncated"] is False
    rt = r["routing"]
    assert len(rt["expert_weights"]) == 8 and abs(sum(rt["expert_weights"]) - 1) < 1e-4
    assert 1 <= len(rt["selected_experts"]) <= 8
    assert all(0 <= k < 8 for k in rt["selected_experts"])
    assert rt["present"] == custom, rt["present"]
    assert rt["present_mask"] == sum(1 << i for i in (1, 2, 3, 8))
    m = r["models"]
    assert sorted(m, key=lambda k: int(k[1:])) == [f"E{i}" for i in range(1, 13)]
    for k in custom:
        assert m[k]["status"] == "ok" and len(m[k]["vector"]) == m[k]["dim"], k
        assert abs(norm(m[k]["vector"]) - 1) < 1e-5
    assert m["E9"]["dim"] == 1024 and m["E2"]["dim"] == 512
    for k in ("E1", "E5", "E6", "E7", "E8", "E10", "E11", "E12"):
        assert m[k]["status"] == "skipped" and "vector" not in m[k], k
    t = r["timings"]
    assert t["total_us"] >= t["fusion_us"] and set(t["models"]) == set(custom)
    assert isinstance(t["cache_hit"], bool)
by = {json.dumps(r["id"]): r for r in rows}
assert by['"fox"']["t_ref"] == 1709208000
assert by['"old"']["t_ref"] == 1709208000  # the input's own t_ref
# similar texts are closer than unrelated ones, through the whole pipeline
fox, fox2, mkt = (by[k]["embedding"] for k in ('"fox"', '"fox2"', '["nested", 1]'))
assert cos(fox, fox2) > cos(fox, mkt), (cos(fox, fox2), cos(fox, mkt))
# the same text at another time differs only through E2-E4
old = by['"old"']
assert old["models"]["E9"]["vector"] == by['"fox"']["models"]["E9"]["vector"]
assert old["models"]["E2"]["vector"] != by['"fox"']["models"]["E2"]["vector"]
now = load("now1")[0]
assert before - 1 <= now["t_ref"] <= after + 1, now["t_ref"]
open(f"{tmp}/now.t_ref", "w").write(repr(now["t_ref"]))
EOF
  "$dodeca" embed --t-ref "$(cat "$tmp/now.t_ref")" "what time is it" >"$tmp/now2"
  python3 - "$tmp" <<'EOF' || fail "a result must repeat exactly with its returned t_ref"
import json, sys
a, b = (json.loads(open(f"{sys.argv[1]}/{n}").read()) for n in ("now1", "now2"))
assert a["t_ref"] == b["t_ref"] and a["embedding"] == b["embedding"]
EOF
fi

# ---- binary stream and npy ----
"$dodeca" embed --t-ref 1709208000 -i "$tmp/items.jsonl" --output-format binary -o "$tmp/items.bin"
"$dodeca" embed --t-ref 1709208000 -i "$tmp/items.jsonl" --output-format npy -o "$tmp/items.npy" \
  --ids "$tmp/items.ids"
"$dodeca" embed --t-ref 1709208000 -i "$tmp/items.jsonl" --output-format npy | cat >"$tmp/pipe.npy"
"$dodeca" embed --t-ref 1709208000 -i "$tmp/items.jsonl" >"$tmp/items.plain"
"$dodeca" embed --t-ref 1709208000 -i "$tmp/items.jsonl" -o "$tmp/by-name.npy"
cmp -s "$tmp/items.npy" "$tmp/pipe.npy" || fail "npy to a pipe differs from npy to a file"
cmp -s "$tmp/items.npy" "$tmp/by-name.npy" || fail "-o FILE.npy should write npy"
[ "$(head -c 6 "$tmp/items.npy" | od -An -c | tr -d ' ')" = '223NUMPY' ] || fail "npy magic"
[ "$(head -c 4 "$tmp/items.bin")" = DCFS ] || fail "binary stream magic"
[ "$(wc -l <"$tmp/items.ids")" -eq 7 ] || fail "--ids: one id per row"
if $have_python; then
  python3 - "$tmp" <<'EOF' || fail "binary/npy checks"
import json, struct, sys
tmp = sys.argv[1]
def f32(v):  # %.9g text rounds to the same float32, not to the same double
    return list(struct.unpack(f"<{len(v)}f", struct.pack(f"<{len(v)}f", *v)))
rows = [json.loads(l) for l in open(f"{tmp}/items.plain")]
# the npy header, read by hand (numpy is checked below when installed)
raw = open(f"{tmp}/items.npy", "rb").read()
assert raw[:8] == b"\x93NUMPY\x01\x00"
hl = struct.unpack("<H", raw[8:10])[0]
header = raw[10:10 + hl].decode("latin1")
assert (10 + hl) % 64 == 0 and header.endswith("\n")
d = eval(header)  # a Python literal, as numpy writes it
assert d == {"descr": "<f4", "fortran_order": False, "shape": (len(rows), 1536)}, d
body = raw[10 + hl:]
assert len(body) == len(rows) * 1536 * 4
for i, r in enumerate(rows):
    vec = struct.unpack_from("<1536f", body, i * 1536 * 4)
    assert list(vec) == f32(r["embedding"]), i
ids = [json.loads(l) for l in open(f"{tmp}/items.ids")]
assert ids == [r["id"] for r in rows]
# the binary stream: "DCFS", u32 version, then (u32 id_len, id, f64 t_ref, u32 len, DCFE record)
b = open(f"{tmp}/items.bin", "rb").read()
assert b[:4] == b"DCFS" and struct.unpack_from("<I", b, 4)[0] == 1
off, n = 8, 0
while off < len(b):
    (idn,) = struct.unpack_from("<I", b, off); off += 4
    rid = json.loads(b[off:off + idn]); off += idn
    (t_ref,) = struct.unpack_from("<d", b, off); off += 8
    (ln,) = struct.unpack_from("<I", b, off); off += 4
    rec = b[off:off + ln]; off += ln
    r = rows[n]; n += 1
    assert rid == r["id"] and t_ref == r["t_ref"] and len(rec) == ln
    assert rec[:4] == b"DCFE" and struct.unpack_from("<H", rec, 4)[0] == 1
    assert list(struct.unpack_from("<1536f", rec, 48)) == f32(r["embedding"])
assert off == len(b) and n == len(rows)
try:
    import numpy
except ImportError:
    print("numpy not installed: np.load not checked", file=sys.stderr)
else:
    a = numpy.load(f"{tmp}/items.npy")
    assert a.shape == (len(rows), 1536) and a.dtype == numpy.float32
    assert all(list(map(float, a[i])) == f32(rows[i]["embedding"]) for i in range(len(rows)))
EOF
fi

# ---- resume: a killed run (partial last line) and an error line, then --resume ----
for i in $(seq 0 29); do echo "sentence $i about a fox, a dog and item $((i * 7))"; done >"$tmp/long.txt"
"$dodeca" embed --t-ref 1709208000 --batch-size 4 -i "$tmp/long.txt" -o "$tmp/clean.jsonl"
[ "$(wc -l <"$tmp/clean.jsonl")" -eq 30 ] || fail "clean run: 30 lines"
sed -n 10p "$tmp/clean.jsonl" >"$tmp/line10"
{ head -n 9 "$tmp/clean.jsonl"; echo '{"id":12,"error":"TIMEOUT: simulated"}';
  head -c 3000 "$tmp/line10"; } >"$tmp/resumed.jsonl"
"$dodeca" embed --t-ref 1709208000 --batch-size 4 -i "$tmp/long.txt" -o "$tmp/resumed.jsonl" \
  --resume 2>"$tmp/resume.err"
grep -q 'partial last line' "$tmp/resume.err" || fail "resume: the cut is not reported"
grep -q '9 items done' "$tmp/resume.err" || fail "resume: $(cat "$tmp/resume.err")"
[ "$(wc -l <"$tmp/resumed.jsonl")" -eq 30 ] || fail "resume: 30 lines expected"
# every id exactly once, each with the clean run's line (the same vector and fields)
sort "$tmp/clean.jsonl" >"$tmp/a.sorted"
sort "$tmp/resumed.jsonl" >"$tmp/b.sorted"
cmp -s "$tmp/a.sorted" "$tmp/b.sorted" || fail "resume: output differs from a clean run"
# resuming a finished job does nothing
cp "$tmp/resumed.jsonl" "$tmp/before.jsonl"
"$dodeca" embed --t-ref 1709208000 -i "$tmp/long.txt" -o "$tmp/resumed.jsonl" --resume 2>/dev/null
cmp -s "$tmp/before.jsonl" "$tmp/resumed.jsonl" || fail "resume of a finished job changed it"
# a file that is not dodeca output is left alone
printf 'hello\nworld\n' >"$tmp/notours.jsonl"
expect_rc 1 "$dodeca" embed -i "$tmp/long.txt" -o "$tmp/notours.jsonl" --resume
grep -q 'notours.jsonl:1' "$tmp/err" || fail "resume: bad file not named: $(cat "$tmp/err")"
[ "$(cat "$tmp/notours.jsonl")" = "$(printf 'hello\nworld')" ] || fail "resume changed a foreign file"

# ---- bad input ----
cat >"$tmp/bad.jsonl" <<'EOF'
{"id": "a", "text": "fine"}
{"id": "b", "txt": "typo"}
{"id": "c", "text": "also fine"}
{"id": "d", "image": "../missing.png"}
not json at all
{"id": "e", "image": "IMAGE"}
{"id": "f", "text": "last"}
EOF
sed -i "s|IMAGE|$data/images/gray_224x224.png|" "$tmp/bad.jsonl"
expect_rc 1 "$dodeca" embed --t-ref 1709208000 -i "$tmp/bad.jsonl"
grep -q 'bad.jsonl:2: .*txt' "$tmp/err" || fail "bad key: $(cat "$tmp/err")"
[ "$(wc -l <"$tmp/out")" -eq 1 ] && grep -q '"id":"a"' "$tmp/out" ||
  fail "without --skip-errors the items before the bad line are written, then it stops"
expect_rc 1 "$dodeca" embed --t-ref 1709208000 -i "$tmp/bad.jsonl" --skip-errors
[ "$(wc -l <"$tmp/out")" -eq 7 ] || fail "--skip-errors: one line per item"
grep -o '"id":[^,]*,"[a-z]*"' "$tmp/out" | tr '\n' ' ' >"$tmp/kinds"
[ "$(cat "$tmp/kinds")" = '"id":"a","embedding" "id":"b","error" "id":"c","embedding" "id":"d","error" "id":4,"error" "id":"e","error" "id":"f","embedding" ' ] ||
  fail "--skip-errors order and ids: $(cat "$tmp/kinds")"
grep -q 'bad.jsonl:4: .*missing.png' "$tmp/err" || fail "missing image not named"
grep -q 'bad.jsonl:5: ' "$tmp/err" || fail "bad JSON not named"
grep -q 'bad.jsonl:6: .*UNSUPPORTED_MODALITY' "$tmp/err" ||
  fail "an image with no image model: $(cat "$tmp/err")"
expect_rc 1 "$dodeca" embed -i "$tmp/nope.jsonl"
grep -q 'nope.jsonl' "$tmp/err" || fail "a missing input file is not named"
expect_rc 0 "$dodeca" embed --t-ref 1 --allow-extra-keys --format jsonl '{"text":"x","url":"u"}'
expect_rc 1 "$dodeca" embed --t-ref 1 --format jsonl '{"text":"x","url":"u"}'
expect_rc 1 "$dodeca" embed --t-ref 1 --format jsonl '{"text":"x","role":"boss"}'
expect_rc 1 "$dodeca" embed --models E1 "x"
grep -q 'E1.*not available' "$tmp/err" || fail "--models E1 without its folder: $(cat "$tmp/err")"

# ---- usage ----
expect_rc 2 "$dodeca" embed --bogus
expect_rc 2 "$dodeca" embed --resume "x"
expect_rc 2 "$dodeca" embed --output-format npy --resume -o "$tmp/x.npy" "x"
expect_rc 2 "$dodeca" embed --models E99 "x"
expect_rc 2 "$dodeca" embed --batch-size 0 "x"
expect_rc 2 "$dodeca" embed --format yaml "x"
expect_rc 2 "$dodeca" embed --t-ref yesterday "x"
expect_rc 2 "$dodeca" embed --set nonsense.key=1 "x"
expect_rc 2 "$dodeca" embed -o

# ---- progress, forced (stderr is not a terminal here) and quiet ----
"$dodeca" embed --t-ref 1 -i "$tmp/long.txt" --progress -o "$tmp/p.jsonl" 2>"$tmp/progress"
grep -q '100% 30 items' "$tmp/progress" || fail "progress: $(cat "$tmp/progress")"
grep -q 'eta' "$tmp/progress" || fail "progress has no ETA"
"$dodeca" embed --t-ref 1 -i "$tmp/long.txt" -o "$tmp/p.jsonl" 2>"$tmp/quiet"
[ ! -s "$tmp/quiet" ] || fail "not a terminal: no progress expected: $(cat "$tmp/quiet")"
# on a terminal (a pseudo-terminal from script(1), when installed) the bar is on by default and
# redraws in place
if command -v script >/dev/null && script -qec true /dev/null >/dev/null 2>&1; then
  script -qec "'$dodeca' embed --t-ref 1 -i '$tmp/long.txt' -o '$tmp/tty.jsonl'" /dev/null \
    >"$tmp/tty" 2>&1 </dev/null || fail "embed on a terminal failed: $(cat "$tmp/tty")"
  grep -q $'\r.*100% 30 items' "$tmp/tty" || fail "no progress bar on a terminal: $(cat "$tmp/tty")"
  cmp -s "$tmp/tty.jsonl" "$tmp/p.jsonl" || fail "the terminal run wrote different output"
  script -qec "'$dodeca' embed --quiet --t-ref 1 -i '$tmp/long.txt' -o '$tmp/q.jsonl'" /dev/null \
    >"$tmp/tty" 2>&1 </dev/null
  ! grep -q 'items' "$tmp/tty" || fail "--quiet on a terminal still shows progress"
fi
echo "cli embed: ok"

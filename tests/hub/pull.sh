#!/usr/bin/env bash
# `dodeca pull` against a local fake hub (tests/hub/fake_hub.py on 127.0.0.1, ephemeral port):
# complete download into the huggingface_hub layout, resume with Range after a dropped
# connection and after an interrupted run, checksum failure, 404, 401, 500-then-ok, offline
# mode (no request at all), --check finding corruption, huggingface_hub reading our cache and
# us reading its cache, the pulled model embedding through `dodeca encode`, and two models
# downloading at once (--jobs).
set -euo pipefail
dodeca=$1
here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v python3 >/dev/null || { echo "skip: python3 not found"; exit 77; }

tmp=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

repo=sentence-transformers/all-MiniLM-L6-v2
folder=models--sentence-transformers--all-MiniLM-L6-v2
src=$tmp/root/$repo
mkdir -p "$src"
# The repo's files: a real random-weight E11 checkpoint when a C compiler can build the fixture
# writer, so the pulled model can be run; otherwise stand-in bytes (the encode check skips).
real_model=0
if cc -O1 -o "$tmp/dc_fixture" "$here/../tools/dc_fixture.c" "$here/../tools/bert_fixture.c" -lm \
     2>/dev/null && "$tmp/dc_fixture" e11 "$src"; then
  real_model=1
else
  python3 - "$src" <<'EOF'
import os, sys
d = sys.argv[1]
os.makedirs(os.path.join(d, "1_Pooling"), exist_ok=True)
for name in ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
             "vocab.txt", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json"]:
    open(os.path.join(d, name), "w").write('{"name": "%s"}\n' % name)
open(os.path.join(d, "model.safetensors"), "wb").write(os.urandom(3 << 20))
EOF
fi
weights_size=$(stat -c %s "$src/model.safetensors")
[ "$weights_size" -gt 2500000 ] || fail "fixture weights too small for the drop test ($weights_size)"
sha=$(sha256sum "$src/model.safetensors" | cut -d' ' -f1)
commit=$(printf %s "$repo" | sha1sum | cut -d' ' -f1) # the fake hub's commit id

log=$tmp/requests.log faults=$tmp/faults.json
echo '{}' >"$faults"
: >"$log"
python3 "$here/fake_hub.py" "$tmp/root" "$tmp/port" "$log" "$faults" &
server=$!
for _ in $(seq 600); do [ -s "$tmp/port" ] && break; sleep 0.05; done # 30 s: python starts slowly on a loaded machine
[ -s "$tmp/port" ] || fail "fake hub did not start"
endpoint=http://127.0.0.1:$(cat "$tmp/port")

unset HF_TOKEN HUGGING_FACE_HUB_TOKEN HF_HUB_OFFLINE TRANSFORMERS_OFFLINE HF_HUB_DISABLE_SYMLINKS
export HF_HOME=$tmp/hf_home HF_ENDPOINT=$endpoint HF_HUB_DISABLE_TELEMETRY=1 # never the user's cache, token or the network
pull() { "$dodeca" pull --quiet --retry-delay-ms 10 --cache-dir "$@"; }
requests() { wc -l <"$log"; }
set_faults() { echo "$1" >"$faults"; : >"$log"; }
lfs_gets() { grep -c '"GET", "path": "/lfs/' "$log" || true; }

# 0. usage: the manifest, names, usage errors (no network)
"$dodeca" pull --list >"$tmp/out"
[ "$(grep -c '^E[0-9]* .*@' "$tmp/out")" -eq 8 ] || fail "--list should show 8 pretrained models"
grep -q '^E7 .*microsoft/codebert-base@3b0952fe' "$tmp/out" || fail "--list: E7 pin"
grep -q '^E9 .*computed' "$tmp/out" || fail "--list: E9 is computed"
"$dodeca" pull --offline --cache-dir "$tmp/none" E2 >"$tmp/out" || fail "a computed model needs nothing"
grep -q 'computed, nothing to download' "$tmp/out" || fail "E2 not reported as computed"
set +e
"$dodeca" pull --cache-dir "$tmp/none" E99 >/dev/null 2>&1; r1=$?
"$dodeca" pull --bogus >/dev/null 2>&1; r2=$?
"$dodeca" pull --retries >/dev/null 2>&1; r3=$?
"$dodeca" pull --all E1 >/dev/null 2>&1; r4=$?
set -e
[ "$r1$r2$r3$r4" = 2222 ] || fail "usage errors should exit 2 (got $r1 $r2 $r3 $r4)"

# 1. complete download: every file, the layout huggingface_hub uses, content intact
c1=$tmp/c1
pull "$c1" E11 >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/err"; fail "pull failed"; }
grep -q "^E11 .*ready" "$tmp/out" || fail "no ready line: $(cat "$tmp/out")"
snap=$c1/$folder/snapshots/$commit
[ "$(cat "$c1/$folder/refs/main")" = "$commit" ] || fail "refs/main does not hold the commit"
for f in config.json tokenizer.json modules.json sentence_bert_config.json 1_Pooling/config.json \
         model.safetensors; do
  cmp -s "$snap/$f" "$src/$f" || fail "$f differs from the hub's"
done
[ "$(readlink "$snap/model.safetensors")" = "../../blobs/$sha" ] || fail "weights link: $(readlink "$snap/model.safetensors")"
case "$(readlink "$snap/1_Pooling/config.json")" in ../../../blobs/*) ;; *) fail "nested link not relative to blobs";; esac
[ -f "$c1/$folder/.no_exist/$commit/config_sentence_transformers.json" ] \
  || fail "an optional file the hub lacks is not marked .no_exist"
[ "$(lfs_gets)" -eq 1 ] || fail "weights fetched $(lfs_gets) times"

# 2. a second pull downloads nothing (metadata requests only)
: >"$log"
pull "$c1" E11 >/dev/null 2>&1 || fail "second pull failed"
if grep -q '"GET"' "$log"; then fail "second pull downloaded again"; fi

# 2b. an unreachable hub: what the cache holds is used (as huggingface_hub does), nothing else
HF_ENDPOINT=http://127.0.0.1:9 "$dodeca" pull --quiet --retries 0 --cache-dir "$c1" E11 >/dev/null 2>&1 \
  || fail "a cached model should be ready while the hub is unreachable"
set +e
HF_ENDPOINT=http://127.0.0.1:9 "$dodeca" pull --quiet --retries 0 --cache-dir "$tmp/empty" E11 >/dev/null 2>"$tmp/err"; rc=$?
set -e
[ "$rc" -eq 1 ] && grep -q "after 1 attempts" "$tmp/err" || fail "unreachable hub: $(cat "$tmp/err")"

# 3. offline: no request at all, the cache answers
: >"$log"
HF_HUB_OFFLINE=1 pull "$c1" E11 >"$tmp/out" 2>&1 || fail "offline pull of a cached model failed"
grep -q "ready" "$tmp/out" || fail "offline: not reported ready"
set +e
pull "$tmp/empty" --offline E11 >"$tmp/out" 2>&1; rc=$?
set -e
[ "$rc" -eq 1 ] || fail "offline pull of a missing model should exit 1, got $rc"
grep -q "missing: .*config.json" "$tmp/out" || fail "offline: missing files not named: $(cat "$tmp/out")"
[ "$(requests)" -eq 0 ] || fail "offline mode made $(requests) requests"

# 4. --check: ready, then a flipped byte in a blob is corrupt (sha256 for LFS, git sha1 otherwise)
"$dodeca" pull --check --cache-dir "$c1" E11 >"$tmp/out" || fail "--check on a good cache failed"
grep -q "ready.*verified" "$tmp/out" || fail "--check: $(cat "$tmp/out")"
cp -r "$c1" "$tmp/c1bad"
printf 'XYZW' | dd of="$tmp/c1bad/$folder/blobs/$sha" bs=1 seek=1000 conv=notrunc status=none
set +e
"$dodeca" pull --check --cache-dir "$tmp/c1bad" E11 >"$tmp/out" 2>&1; rc=$?
set -e
[ "$rc" -eq 1 ] || fail "--check on a corrupt blob should exit 1, got $rc"
grep -q "corrupt: .*sha256" "$tmp/out" || fail "--check did not name the corruption: $(cat "$tmp/out")"
cfgblob=$tmp/c1bad/$folder/blobs/$(basename "$(readlink "$tmp/c1bad/$folder/snapshots/$commit/config.json")")
cp -r "$c1" "$tmp/c1bad2"
echo ' ' >>"$tmp/c1bad2/$folder/blobs/$(basename "$cfgblob")"
set +e
"$dodeca" pull --check --cache-dir "$tmp/c1bad2" E11 >"$tmp/out" 2>&1; rc=$?
set -e
[ "$rc" -eq 1 ] && grep -q "corrupt: .*git blob sha1" "$tmp/out" || fail "--check missed a changed config.json"
cp -r "$c1" "$tmp/c1miss"
rm -f "$tmp/c1miss/$folder/snapshots/$commit/tokenizer.json"
set +e
"$dodeca" pull --check --cache-dir "$tmp/c1miss" E11 >"$tmp/out" 2>&1; rc=$?
set -e
[ "$rc" -eq 1 ] && grep -q "missing: tokenizer.json" "$tmp/out" || fail "--check missed a missing file"

# 5. resume after a dropped connection: the bytes before the drop are not fetched again
set_faults '{"drop_once": {"model.safetensors": 2000000}}'
pull "$tmp/c2" E11 >/dev/null 2>"$tmp/err" || { cat "$tmp/err"; fail "pull with a dropped connection failed"; }
cmp -s "$tmp/c2/$folder/snapshots/$commit/model.safetensors" "$src/model.safetensors" \
  || fail "resumed download differs"
python3 - "$log" "$weights_size" <<'EOF' || fail "resume did not continue where the drop happened"
import json, sys
gets = [json.loads(l) for l in open(sys.argv[1]) if '"/lfs/' in l and '"GET"' in l]
size = int(sys.argv[2])
assert len(gets) == 2, gets
assert gets[0]["range"] is None and gets[0]["sent"] == 2000000, gets[0]
assert gets[1]["range"] == "bytes=2000000-" and gets[1]["status"] == 206, gets[1]
assert gets[1]["sent"] == size - 2000000, gets[1]
EOF

# 6. resume after an interrupted run: a partial .incomplete is continued with Range
set_faults '{}'
mkdir -p "$tmp/c3/$folder/blobs"
head -c 1234567 "$src/model.safetensors" >"$tmp/c3/$folder/blobs/$sha.incomplete"
pull "$tmp/c3" E11 >/dev/null 2>&1 || fail "pull after an interrupted run failed"
grep -q '"range": "bytes=1234567-"' "$log" || fail "the interrupted download was not resumed"
cmp -s "$tmp/c3/$folder/snapshots/$commit/model.safetensors" "$src/model.safetensors" \
  || fail "continued download differs"

# 7. checksum failure: clear error, nothing corrupt left in the cache
set_faults '{"corrupt": ["model.safetensors"]}'
set +e
pull "$tmp/c4" E11 >"$tmp/out" 2>"$tmp/err"; rc=$?
set -e
[ "$rc" -eq 1 ] || fail "a corrupt download should exit 1, got $rc"
grep -q "sha256 .*expected $sha" "$tmp/err" || fail "checksum error not clear: $(cat "$tmp/err")"
[ ! -e "$tmp/c4/$folder/blobs/$sha" ] && [ ! -e "$tmp/c4/$folder/blobs/$sha.incomplete" ] \
  || fail "corrupt bytes left in the cache"
[ ! -e "$tmp/c4/$folder/snapshots/$commit/model.safetensors" ] || fail "corrupt file linked"

# 8. 404 names the repo, file and revision; no retries
set_faults '{"status": {"config.json": 404}}'
set +e
pull "$tmp/c5" E11 2>"$tmp/err" >/dev/null; rc=$?
set -e
[ "$rc" -eq 1 ] && grep -q "config.json not found in $repo at revision main" "$tmp/err" \
  || fail "404 message: $(cat "$tmp/err")"
[ "$(requests)" -eq 1 ] || fail "a 404 was retried ($(requests) requests)"
set +e
pull "$tmp/c5" E11 --revision 0123456789abcdef0123456789abcdef01234567 2>"$tmp/err" >/dev/null; rc=$?
set -e
[ "$rc" -eq 1 ] && grep -q "revision 0123456789abcdef0123456789abcdef01234567 not found" "$tmp/err" \
  || fail "unknown revision message: $(cat "$tmp/err")"

# 9. 401 says to set HF_TOKEN, is not retried; the token is sent as a bearer token
set_faults '{"token": "s3cret"}'
set +e
pull "$tmp/c6" E11 2>"$tmp/err" >/dev/null; rc=$?
set -e
[ "$rc" -eq 1 ] && grep -q "HTTP 401.*set HF_TOKEN" "$tmp/err" || fail "401 message: $(cat "$tmp/err")"
[ "$(requests)" -eq 1 ] || fail "a 401 was retried ($(requests) requests)"
HF_TOKEN=s3cret pull "$tmp/c6" E11 >/dev/null 2>"$tmp/err" || { cat "$tmp/err"; fail "pull with HF_TOKEN failed"; }
grep -q '"auth": "Bearer s3cret"' "$log" || fail "the token was not sent"

# 9b. endpoint, token and cache folder from the configuration file; HF_HUB_CACHE from the environment
cat >"$tmp/dodeca.toml" <<EOF
[models]
hub_endpoint = "$endpoint"
hub_token = "s3cret"
hub_cache_dir = "$tmp/c6b"
EOF
HF_ENDPOINT=http://127.0.0.1:9 "$dodeca" pull --quiet --config "$tmp/dodeca.toml" E11 >/dev/null 2>"$tmp/err" \
  || { cat "$tmp/err"; fail "pull with endpoint, token and cache from --config failed"; }
[ -L "$tmp/c6b/$folder/snapshots/$commit/config.json" ] || fail "--config hub_cache_dir not used"
: >"$log"
HF_HUB_CACHE=$tmp/c6b "$dodeca" pull --offline E11 >"$tmp/out" 2>/dev/null || fail "HF_HUB_CACHE not used"
[ "$(requests)" -eq 0 ] || fail "offline mode made requests"

# 10. 500 then ok: retried with backoff; a persistent 500 gives up after the bounded retries
set_faults '{"fail_first": {"config.json": 2}}'
pull "$tmp/c7" E11 >/dev/null 2>"$tmp/err" || { cat "$tmp/err"; fail "500-then-ok pull failed"; }
[ "$(grep -c 'resolve/main/config.json", .*"status": 500' "$log")" -eq 2 ] || fail "expected two 500s"
set_faults '{"fail_first": {"config.json": 99}}'
set +e
"$dodeca" pull --quiet --retries 2 --retry-delay-ms 10 --cache-dir "$tmp/c8" E11 2>"$tmp/err" >/dev/null; rc=$?
set -e
[ "$rc" -eq 1 ] && grep -q "HTTP 500" "$tmp/err" || fail "persistent 500: $(cat "$tmp/err")"
[ "$(grep -c 'config.json' "$log")" -eq 3 ] || fail "retries not bounded to 1 + 2 attempts"
set_faults '{}'

# 11. a pinned (abbreviated) revision gets its own ref, as huggingface_hub writes it
pull "$tmp/c9" E11 --revision "${commit:0:7}" >/dev/null 2>&1 || fail "pull at an abbreviated commit failed"
[ "$(cat "$tmp/c9/$folder/refs/${commit:0:7}")" = "$commit" ] || fail "refs/<short> missing"
"$dodeca" pull --check --cache-dir "$tmp/c9" --revision "${commit:0:7}" E11 >/dev/null \
  || fail "--check at the pinned revision"

# 12. huggingface_hub reads our cache, and we read a cache it wrote (skip if not importable)
: >"$log"
set +e
python3 - "$c1" "$tmp/c10" "$repo" "$src" <<'EOF' 2>"$tmp/err"
import sys
try:
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.file_download import _CACHED_NO_EXIST
except ImportError:
    sys.exit(77)
ours, theirs, repo, src = sys.argv[1:5]
same = lambda p, f: open(p, "rb").read() == open(src + "/" + f, "rb").read()
# it reads ours without the network
p = try_to_load_from_cache(repo, "config.json", cache_dir=ours)
assert isinstance(p, str) and same(p, "config.json"), p
for f in ["model.safetensors", "1_Pooling/config.json"]:
    assert same(hf_hub_download(repo, f, cache_dir=ours, local_files_only=True), f), f
assert try_to_load_from_cache(repo, "config_sentence_transformers.json", cache_dir=ours) is _CACHED_NO_EXIST
# it fills a cache of its own from the fake hub (HF_ENDPOINT)
for f in ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
          "vocab.txt", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json",
          "model.safetensors"]:
    hf_hub_download(repo, f, cache_dir=theirs)
EOF
rc=$?
set -e
if [ "$rc" -eq 0 ]; then
  "$dodeca" pull --check --cache-dir "$tmp/c10" E11 >"$tmp/out" || fail "--check on huggingface_hub's cache: $(cat "$tmp/out")"
  : >"$log"
  pull "$tmp/c10" E11 >/dev/null 2>&1 || fail "pull into huggingface_hub's cache failed"
  if grep -q '"GET", "path": "/lfs/' "$log"; then fail "pull downloaded weights huggingface_hub already had"; fi
elif [ "$rc" -eq 77 ]; then
  echo "note: huggingface_hub not importable; compatibility checks skipped" >&2
else
  cat "$tmp/err"; fail "huggingface_hub and our cache disagree"
fi

# 13. the pulled folder runs: dodeca encode on the hub cache folder
if [ "$real_model" = 1 ]; then
  out=$(echo '{"id": 1, "text": "hello world"}' | "$dodeca" encode --model E11 --model-dir "$c1/$folder" 2>"$tmp/err") \
    || { cat "$tmp/err"; fail "encode on the pulled model failed"; }
  grep -q '"dim": *384' <<<"$out" || fail "encode output: ${out:0:200}"
fi
# 14. several models at once (--jobs): both repos' weights are in flight together (the hub holds
# each weights GET until two are waiting; one after the other, the first would wait 10 s alone
# and be logged met 1)
e8repo=sentence-transformers/paraphrase-MiniLM-L6-v2
if [ "$real_model" = 1 ]; then "$tmp/dc_fixture" e8 "$tmp/root/$e8repo"; else cp -r "$src" "$tmp/root/$e8repo"; fi
e8commit=3bf4ae7000000000000000000000000000000000 # the manifest pins E8 at 3bf4ae7
echo "$e8commit" >"$tmp/root/$e8repo.commit"
set +e
"$dodeca" pull --jobs 0 E8 >/dev/null 2>&1; rc=$?
set -e
[ "$rc" -eq 2 ] || fail "--jobs 0 should be a usage error, got $rc"
set_faults '{"meet": {"model.safetensors": 2}}'
pull "$tmp/c11" --jobs 2 E8 E11 >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/out" "$tmp/err"; tail -5 "$log"; fail "pull --jobs 2 failed"; }
[ "$(grep -c ' ready ' "$tmp/out")" -eq 2 ] || fail "--jobs 2: not both ready: $(cat "$tmp/out")"
python3 - "$log" <<'EOF' || fail "--jobs 2 did not download the two models at once"
import json, sys
gets = [json.loads(l) for l in open(sys.argv[1]) if '"/lfs/' in l and '"GET"' in l]
assert len(gets) == 2 and all(g.get("met") == 2 for g in gets), gets
EOF
for f in config.json model.safetensors; do
  cmp -s "$tmp/c11/models--sentence-transformers--paraphrase-MiniLM-L6-v2/snapshots/$e8commit/$f" \
    "$tmp/root/$e8repo/$f" || fail "--jobs 2: E8 $f differs"
  cmp -s "$tmp/c11/$folder/snapshots/$commit/$f" "$src/$f" || fail "--jobs 2: E11 $f differs"
done
echo "hub pull: ok"

#!/usr/bin/env bash
# models.auto_download against a local fake hub (tests/hub/fake_hub.py on 127.0.0.1): `dodeca
# embed` fetches a missing E11 into the hub cache layout under models.models_dir and uses it;
# a second run (reading models.hub_cache_dir) makes no request for it; an
# unreachable hub, a repo the hub lacks (E1) and offline mode (no request at all) leave the model
# unavailable with a warning while the command still succeeds.
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
mkdir -p "$tmp/root/$repo"
cc -O1 -o "$tmp/dc_fixture" "$here/../tools/dc_fixture.c" "$here/../tools/bert_fixture.c" -lm \
  2>/dev/null && "$tmp/dc_fixture" e11 "$tmp/root/$repo" >/dev/null \
  || { echo "skip: cannot build the E11 fixture (no C compiler?)"; exit 77; }

log=$tmp/requests.log
echo '{}' >"$tmp/faults.json"
: >"$log"
python3 "$here/fake_hub.py" "$tmp/root" "$tmp/port" "$log" "$tmp/faults.json" &
server=$!
for _ in $(seq 600); do [ -s "$tmp/port" ] && break; sleep 0.05; done # 30 s: python starts slowly on a loaded machine
[ -s "$tmp/port" ] || fail "fake hub did not start"
endpoint=http://127.0.0.1:$(cat "$tmp/port")

unset HF_TOKEN HUGGING_FACE_HUB_TOKEN HF_HUB_OFFLINE TRANSFORMERS_OFFLINE HF_HUB_DISABLE_SYMLINKS \
  HF_ENDPOINT HF_HUB_CACHE HUGGINGFACE_HUB_CACHE DODECA_CONFIG
export HF_HOME=$tmp/hf_home HF_HUB_DISABLE_TELEMETRY=1 # never the user's cache, token or the network
# E11 and the always-on E1 are the pretrained models left; E1's repo is not on the fake hub.
cat >"$tmp/dodeca.toml" <<EOF
[pipeline]
min_models = 1
[models.causal]
enabled = false
[models.sparse]
enabled = false
[models.code]
enabled = false
[models.graph]
enabled = false
[models.multimodal]
enabled = false
[models.late_interaction]
enabled = false
EOF
echo '{"id": "a", "text": "hello world from the hub"}' >"$tmp/in.jsonl"
embed() {
  "$dodeca" embed --config "$tmp/dodeca.toml" --t-ref 1709208000 -i "$tmp/in.jsonl" --per-model \
    --set models.auto_download=true --set models.hub_endpoint="$endpoint" "$@"
}
e11_status() {
  python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["models"]["E11"]["status"])' "$1"
}
e11_requests() { grep -c "all-MiniLM-L6-v2\|/lfs/" "$log" || true; }

# 1. a missing E11 is fetched into models_dir in the hub layout, then embeds
embed --models E11,E9 --set models.models_dir="$tmp/cache" >"$tmp/out1" 2>"$tmp/err1" \
  || { cat "$tmp/err1"; fail "embed with auto_download failed"; }
[ "$(e11_status "$tmp/out1")" = ok ] || fail "E11 did not run: $(head -c 400 "$tmp/out1")"
snap=$(ls -d "$tmp/cache/$folder"/snapshots/*/ 2>/dev/null | head -1)
[ -n "$snap" ] && cmp -s "$snap/model.safetensors" "$tmp/root/$repo/model.safetensors" \
  || fail "weights not in the hub cache layout under models_dir"
grep -q '"GET", "path": "/lfs/' "$log" || fail "the weights were not downloaded"
# the repo the hub does not have: a warning naming E1 and why; the run went on
grep -q "auto_download: E1 (semantic).*not found" "$tmp/err1" || fail "E1 failure not logged: $(cat "$tmp/err1")"

# 2. a second run makes no request for E11: the cache answers, here as models.hub_cache_dir
#    (which auto_download reads and fills instead of models_dir when set)
: >"$log"
embed --models E11 --set models.models_dir="$tmp/none" --set models.hub_cache_dir="$tmp/cache" \
  >"$tmp/out2" 2>"$tmp/err2" || { cat "$tmp/err2"; fail "second run failed"; }
[ "$(e11_status "$tmp/out2")" = ok ] || fail "E11 missing in the second run"
[ "$(e11_requests)" -eq 0 ] || fail "second run made $(e11_requests) requests for E11"
[ ! -e "$tmp/none" ] || fail "models_dir written to although hub_cache_dir is set"

# 3. the hub unreachable: the command succeeds degraded, the warning names E11 and the reason,
#    never the token
embed --set models.models_dir="$tmp/empty" --set models.hub_endpoint=http://127.0.0.1:9 \
  --set models.hub_token=s3cret-t0ken >"$tmp/out4" 2>"$tmp/err4" \
  || { cat "$tmp/err4"; fail "embed with the hub down failed"; }
grep -q "auto_download: E11 (entity) not downloaded.*attempts" "$tmp/err4" \
  || fail "no clear warning for E11: $(cat "$tmp/err4")"
if grep -q s3cret-t0ken "$tmp/err4" "$tmp/out4"; then fail "the token appears in the output"; fi
[ "$(e11_status "$tmp/out4")" != ok ] || fail "E11 ran without its files"
python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).readline()); assert r["models"]["E9"]["status"]=="ok"' \
  "$tmp/out4" || fail "the degraded run did not embed with the other models"

# 4. HF_HUB_OFFLINE=1: no request at all; E11, in models_dir, is found; the missing E1 is a
#    warning; the command succeeds with the same E11 block as the downloading run
: >"$log"
HF_HUB_OFFLINE=1 embed --set models.models_dir="$tmp/cache" >"$tmp/out5" 2>"$tmp/err5" \
  || { cat "$tmp/err5"; fail "offline embed failed"; }
[ "$(wc -l <"$log")" -eq 0 ] || fail "offline mode made $(wc -l <"$log") requests"
grep -q "auto_download: E1 (semantic).*HF_HUB_OFFLINE" "$tmp/err5" || fail "offline: no warning: $(cat "$tmp/err5")"
block() { python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["models"]["E11"])' "$1"; }
[ "$(block "$tmp/out5")" = "$(block "$tmp/out1")" ] || fail "offline: E11 differs from the downloading run"
echo "hub autodl: ok"

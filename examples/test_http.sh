#!/usr/bin/env bash
# Runs examples/curl.sh and examples/openai_client.py against a `dodeca serve` on 127.0.0.1
# (custom models only). Usage: test_http.sh DODECA   (exit 77 without curl)
set -euo pipefail
dodeca=$1
here=$(cd "$(dirname "$0")" && pwd)
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; tail -5 "$tmp/err" >&2; exit 1; }

"$dodeca" serve --port 0 --no-warmup --set fusion.expert_hidden_dim=64 \
    --set models.models_dir="$tmp/none" 2>"$tmp/err" &
pid=$!
for _ in $(seq 300); do
    grep -q "listening on" "$tmp/err" && break
    kill -0 "$pid" 2>/dev/null || fail "server exited"
    sleep 0.1
done
base=$(grep -o "http://127.0.0.1:[0-9]*" "$tmp/err" | head -1)
[ -n "$base" ] || fail "no address"

"$here/curl.sh" "$base" >"$tmp/curl.out" || fail "curl.sh exited $?"
grep -q '"object":"list"' "$tmp/curl.out" || fail "no embeddings list: $(head -c 300 "$tmp/curl.out")"
grep -q '"similarities"\|"scores"\|\[0\.' "$tmp/curl.out" || fail "no similarity output"

if python3 -c 'import openai' 2>/dev/null; then
    python3 "$here/openai_client.py" "$base/v1" >"$tmp/py.out" || fail "openai_client.py exited $?"
    grep -q "3 vectors of 1536 floats" "$tmp/py.out" || fail "python: $(cat "$tmp/py.out")"
    cat "$tmp/py.out"
else
    echo "openai not installed: the Python example was not run"
fi

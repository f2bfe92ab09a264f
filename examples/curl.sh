#!/usr/bin/env bash
# The HTTP API with curl. Start a server first:  dodeca serve   (http://127.0.0.1:8080)
# Usage: examples/curl.sh [BASE_URL]   — set DODECA_API_KEY when the server wants a token.
set -euo pipefail
base=${1:-http://127.0.0.1:8080}
auth=()
[ -n "${DODECA_API_KEY:-}" ] && auth=(-H "Authorization: Bearer $DODECA_API_KEY")
post() { curl -sf "${auth[@]}" -H 'Content-Type: application/json' -d "$2" "$base$1"; echo; }
# The first 300 characters of stdin. It reads everything: `| head -c` would close the pipe
# early, and curl's next write would then fail the script under pipefail.
short() { local s; s=$(cat); printf '%s\n' "${s:0:300}"; }

# Health and what the server runs.
curl -sf "$base/health" -o /dev/null -w 'health: %{http_code}\n' || true
curl -sf "${auth[@]}" "$base/info" | short

# OpenAI-compatible: the fused 1536-d vector, shortened to 8 dimensions (renormalised).
post /v1/embeddings '{"model": "dodeca-fused", "input": ["The quick brown fox"], "dimensions": 8}'

# One model's vector by name (the HDC model needs no weights).
post /v1/embeddings '{"model": "hdc", "input": "The quick brown fox", "dimensions": 4}' | short

# Cosine of a sentence against candidates, on the fused vectors.
post /similarity '{"inputs": {"source_sentence": "a fast auburn fox",
                              "sentences": ["The quick brown fox", "stock markets fell"]}}'

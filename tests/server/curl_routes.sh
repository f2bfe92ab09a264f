#!/usr/bin/env bash
# Every route and every error code of `dodeca serve`, with curl.
# Usage: curl_routes.sh DODECA DC_FIXTURE TESTS_DATA_DIR   (exit 77 without curl)
set -u
DODECA=$1
FIXTURE=$2
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 77; }

TMP=$(mktemp -d)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$TMP/err" ] && tail -20 "$TMP/err"; exit 1; }

# Usage errors exit 2 before anything starts.
"$DODECA" serve --help | grep -q "usage: dodeca serve" || fail "serve --help"
for bad in "--port 70000" "--port -1" "--bogus" "--max-concurrent 0" "--set nokey"; do
    "$DODECA" serve $bad >/dev/null 2>&1
    rc=$?
    [ "$rc" = 2 ] || fail "serve $bad: exit $rc, expected 2"
done
"$DODECA" serve --port 0 --set server.max_body_bytes=0 >/dev/null 2>"$TMP/cfg.err"
rc=$?
[ "$rc" = 1 ] && grep -q "server.max_body_bytes" "$TMP/cfg.err" || fail "bad setting: exit $rc"

mkdir -p "$TMP/models"
"$FIXTURE" e6 "$TMP/models/sparse" >/dev/null || fail "fixture e6"
"$FIXTURE" e12 "$TMP/models/late_interaction" >/dev/null || fail "fixture e12"

KEY=curl-secret-key
# Narrow fusion experts (fusion.expert_hidden_dim): the server starts in a second, not seven.
DODECA_SERVER_API_KEY=$KEY "$DODECA" serve --port 0 --no-warmup --access-log \
    --set fusion.expert_hidden_dim=64 \
    --set models.models_dir="$TMP/models" --set server.max_batch_items=8 \
    --set server.max_input_chars=1000 --set server.max_body_bytes=20000 2>"$TMP/err" &
PID=$!
for _ in $(seq 600); do
    grep -q "listening on" "$TMP/err" && break
    kill -0 "$PID" 2>/dev/null || fail "server exited"
    sleep 0.1
done
ADDR=$(grep -o "listening on http://[0-9.]*:[0-9]*" "$TMP/err" | head -1 | sed 's/listening on //')
[ -n "$ADDR" ] || fail "no address printed"
case "$ADDR" in http://127.0.0.1:*) ;; *) fail "default bind is not 127.0.0.1: $ADDR" ;; esac

AUTH=(-H "Authorization: Bearer $KEY")
# call EXPECTED_CODE METHOD PATH [BODY] [extra curl args...]: the body lands in $TMP/out
call() {
    local want=$1 method=$2 path=$3 body=${4-}
    shift 4 2>/dev/null || shift $#
    local args=(-s -o "$TMP/out" -D "$TMP/hdr" -w '%{http_code}' -X "$method" "$@")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
    local got
    got=$(curl "${args[@]}" "$ADDR$path")
    [ "$got" = "$want" ] || fail "$method $path $body: status $got, expected $want: $(head -c 300 "$TMP/out")"
}
# Body checks are collected and run by one python3 at the end (python starts slowly on a busy
# machine): jq_py CODE records a copy of the last body with a Python assertion on it (as `d`).
NCHK=0
jq_py() {
    NCHK=$((NCHK + 1))
    cp "$TMP/out" "$TMP/chk.$NCHK"
    printf '%s\t%s\n' "$NCHK" "$1" >>"$TMP/checks"
}
error_is() {
    jq_py "assert set(d) == {'error','error_type'} and d['error_type'] == '$1', d; assert '$2' in d['error'], d"
}
run_checks() {
    python3 - "$TMP" <<'PY' || fail "body checks"
import json, sys
tmp = sys.argv[1]
bad = 0
for line in open(tmp + "/checks"):
    n, code = line.rstrip("\n").split("\t", 1)
    d = json.load(open("%s/chk.%s" % (tmp, n), encoding="utf-8"))
    try:
        exec(code, {"d": d})
    except Exception as e:
        bad += 1
        print("check %s failed: %s\n  %s\n  body: %.300s" % (n, e, code, json.dumps(d)))
sys.exit(1 if bad else 0)
PY
}

# ---- the routes ----
call 200 POST /v1/embeddings '{"input":["hello world","the quick brown fox"],"model":"dodeca-fused"}' "${AUTH[@]}"
jq_py "assert d['object']=='list' and [x['index'] for x in d['data']]==[0,1]; assert len(d['data'][0]['embedding'])==1536; assert d['usage']['total_tokens']>0"
call 200 POST /v1/embeddings '{"input":"hello","model":"E9","dimensions":16,"encoding_format":"base64"}' "${AUTH[@]}"
jq_py "import base64; assert len(base64.b64decode(d['data'][0]['embedding']))==64"
call 200 POST /embeddings '{"input":"alias route"}' "${AUTH[@]}"
call 200 POST /embed '{"inputs":["hello world","code"]}' "${AUTH[@]}"
jq_py "assert len(d)==2 and len(d[0])==1536"
call 200 POST /embed '{"inputs":"hello world","models":["E9","sparse","E1"]}' "${AUTH[@]}"
jq_py "x=d[0]; assert len(x['embedding'])==1536 and len(x['models']['E9'])==1024 and len(x['models']['E6'])==1536; assert x['models']['E1'] is None and x['status']['E1']=='skipped'"
call 200 POST /embed_sparse '{"inputs":["hello world","quick brown fox"]}' "${AUTH[@]}"
jq_py "assert len(d)==2 and d[0] and all(set(p)=={'index','value'} and p['value']>0 for p in d[0]); ix=[p['index'] for p in d[0]]; assert ix==sorted(ix) and max(ix)<30522"
call 200 POST /embed_multi '{"inputs":["hello world"]}' "${AUTH[@]}"
jq_py "import math; m=d[0]; assert len(m)>2 and all(len(r)==128 for r in m); assert abs(math.sqrt(sum(v*v for v in m[0]))-1)<1e-4"
call 200 POST /similarity '{"inputs":{"source_sentence":"hello world","sentences":["hello world","paris is in france"]}}' "${AUTH[@]}"
jq_py "assert len(d)==2 and abs(d[0]-1)<1e-5 and d[1]<d[0]"
call 503 GET /health   # E1 and most pretrained models are absent here: not healthy (seed S02)
jq_py "assert d['status']=='unhealthy' and d['healthy'] is False and 'E9' in d['ready'] and d['reason']"
grep -qi '^retry-after: 1' "$TMP/hdr" || fail "503 without Retry-After"
call 200 GET /info '' "${AUTH[@]}"
jq_py "assert d['dimension']==1536 and len(d['models'])==12 and d['max_client_batch_size']==8 and d['auth'] is True; assert {m['id']:m['state'] for m in d['models']}['E6']=='loaded'"
call 200 GET /v1/models '' "${AUTH[@]}"
jq_py "ids=[m['id'] for m in d['data']]; assert d['object']=='list' and ids[0]=='dodeca-fused' and 'colbert-ir/colbertv2.0' in ids, ids"
call 200 GET /metrics '' "${AUTH[@]}"
grep -q '^dodeca_http_requests_total{route="/embed",code="200"} 2' "$TMP/out" || fail "metrics count /embed"
grep -q '^# TYPE dodeca_http_request_duration_seconds histogram' "$TMP/out" || fail "histogram"
grep -qi '^content-type: text/plain' "$TMP/hdr" || fail "metrics content type"
# HEAD: headers only (curl -I; -X HEAD would wait for the announced body).
[ "$(curl -s -o /dev/null -w '%{http_code}' -I "${AUTH[@]}" "$ADDR/info")" = 200 ] || fail "HEAD /info"

# ---- request ids ----
call 200 POST /embed '{"inputs":"id"}' "${AUTH[@]}" -H "X-Request-Id: my-req.42"
grep -qi '^x-request-id: my-req.42' "$TMP/hdr" || fail "client request id not echoed"
call 200 POST /embed '{"inputs":"id"}' "${AUTH[@]}" -H 'X-Request-Id: bad id with spaces'
grep -qi '^x-request-id: [0-9a-f]\{24\}' "$TMP/hdr" || fail "no generated request id"
grep -q "my-req.42 POST /embed 200" "$TMP/err" || fail "access log line"

# ---- errors ----
call 401 POST /v1/embeddings '{"input":"x"}'
error_is Unauthorized "Bearer"
grep -qi '^www-authenticate: Bearer' "$TMP/hdr" || fail "401 without WWW-Authenticate"
call 401 POST /embed '{"inputs":"x"}' -H "Authorization: Bearer wrong"
error_is Unauthorized "not valid"
call 401 GET /metrics ''
call 404 GET /nope '' "${AUTH[@]}"
error_is NotFound "/nope"
call 404 POST /v1/embeddings '{"input":"x","model":"gpt-4"}' "${AUTH[@]}"
error_is NotFound "gpt-4"
call 405 GET /embed '' "${AUTH[@]}"
error_is MethodNotAllowed "POST"
grep -qi '^allow: POST' "$TMP/hdr" || fail "405 without Allow"
call 405 POST /health '{}' "${AUTH[@]}"
python3 -c "print('{\"inputs\":\"' + 'a'*30000 + '\"}')" >"$TMP/big.json"
call 413 POST /embed "@$TMP/big.json" "${AUTH[@]}"
error_is PayloadTooLarge "max_body_bytes"
call 413 POST /embed "@$TMP/big.json" "${AUTH[@]}" -H 'Transfer-Encoding: chunked'
error_is PayloadTooLarge "max_body_bytes"
call 400 POST /v1/embeddings '{"input":"x","model":"intfloat/e5-large-v2"}' "${AUTH[@]}"
error_is Unsupported "E1"
call 422 POST /v1/embeddings '{"input":' "${AUTH[@]}"
error_is Validation "not valid JSON"
call 422 POST /v1/embeddings '[1,2]' "${AUTH[@]}"
error_is Validation "JSON object"
call 422 POST /v1/embeddings '{}' "${AUTH[@]}"
error_is Validation "input: missing"
call 422 POST /v1/embeddings '{"input":[]}' "${AUTH[@]}"
error_is Validation "input: empty array"
call 422 POST /v1/embeddings '{"input":["ok",""]}' "${AUTH[@]}"
error_is Validation "input[1]: empty string"
call 422 POST /v1/embeddings '{"input":["a","b","c","d","e","f","g","h","i"]}' "${AUTH[@]}"
error_is Validation "9 items"
call 422 POST /v1/embeddings "{\"input\":\"$(printf 'x%.0s' $(seq 1001))\"}" "${AUTH[@]}"
error_is Validation "server.max_input_chars"
call 422 POST /v1/embeddings '{"input":"x","encoding_format":"int8"}' "${AUTH[@]}"
error_is Validation "encoding_format"
call 422 POST /v1/embeddings '{"input":"x","dimensions":0}' "${AUTH[@]}"
error_is Validation "dimensions"
call 422 POST /v1/embeddings '{"input":[[101,2023]]}' "${AUTH[@]}"
error_is Validation "token ids"
call 422 POST /embed '{"inputs":"x","normalize":"yes"}' "${AUTH[@]}"
error_is Validation "normalize"
call 404 POST /embed '{"inputs":"x","models":["nope"]}' "${AUTH[@]}"
error_is NotFound "models[0]"
call 422 POST /similarity '{"inputs":{"sentences":["a"]}}' "${AUTH[@]}"
error_is Validation "source_sentence"
call 422 POST /embed "$(printf '{"inputs":"\xff\xfe"}')" "${AUTH[@]}"
error_is Validation "UTF-8"

# ---- graceful stop ----
kill -TERM "$PID"
wait "$PID"
rc=$?
PID=
[ "$rc" = 0 ] || fail "exit status $rc after SIGTERM"
grep -q "dodeca serve: stopped" "$TMP/err" || fail "no clean stop"
run_checks
echo "ok: every route and error code ($NCHK body checks)"

#!/usr/bin/env bash
# Scale-out: two `dodeca serve` processes share the Redis cache tier behind nginx, all on
# 127.0.0.1 (nginx's config in a temp folder, unprivileged ports).
#  1. inputs embedded by A are cache hits in B (B's /metrics counts Redis hits; same vectors);
#  2. traffic through nginx is answered while A is stopped with SIGTERM: no client sees an error
#     (A refuses new work with 503 while it drains, then its port closes; nginx retries on B).
# Usage: scaleout.sh DODECA DC_FIXTURE TESTS_DATA_DIR   (exit 77 without nginx, redis-server, curl)
set -u
DODECA=$1
for tool in nginx redis-server redis-cli curl python3; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] ||
        { echo "SKIP: $tool not installed"; exit 77; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

TMP=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    for f in "$TMP"/*.err "$TMP"/nginx-error.log; do [ -f "$f" ] && { echo "--- $f"; tail -15 "$f"; }; done
    exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no >"$TMP/redis.err" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
redis-cli -p "$RPORT" ping | grep -q PONG || fail "redis-server did not start"

start_server() { # NAME → sets ${NAME}_PID, ${NAME}_URL
    "$DODECA" serve --port 0 --no-warmup --drain-timeout 20 --set fusion.expert_hidden_dim=64 \
        --set cache.redis_url="redis://127.0.0.1:$RPORT" 2>"$TMP/$1.err" &
    local pid=$!
    PIDS+=($pid)
    for _ in $(seq 600); do
        grep -q "listening on" "$TMP/$1.err" && break
        kill -0 "$pid" 2>/dev/null || fail "server $1 exited"
        sleep 0.1
    done
    local url
    url=$(grep -o "http://127.0.0.1:[0-9]*" "$TMP/$1.err" | head -1)
    [ -n "$url" ] || fail "server $1 printed no address"
    eval "${1}_PID=$pid ${1}_URL=$url"
}
start_server A
start_server B

metric() { # URL NAME → value (0 when absent)
    curl -s "$1/metrics" | awk -v n="$2" '$1 == n { v = $2 } END { print v + 0 }'
}

# ---- 1. results computed by A are Redis hits in B ----
BODY='{"input":["shared cache one","shared cache two","shared cache three"],"model":"dodeca-fused"}'
curl -s -f "$A_URL/v1/embeddings" -d "$BODY" >"$TMP/a.json" || fail "A embed"
for _ in $(seq 100); do # writes go behind, through a queue
    [ "$(metric "$A_URL" dodeca_cache_redis_writes_total)" -ge 3 ] && break
    sleep 0.05
done
[ "$(metric "$A_URL" dodeca_cache_redis_writes_total)" -ge 3 ] || fail "A wrote nothing to Redis"
hits0=$(metric "$B_URL" dodeca_cache_redis_hits_total)
curl -s -f "$B_URL/v1/embeddings" -d "$BODY" >"$TMP/b.json" || fail "B embed"
hits1=$(metric "$B_URL" dodeca_cache_redis_hits_total)
[ $((hits1 - hits0)) -eq 3 ] || fail "B's Redis hits went $hits0 -> $hits1, expected +3"
python3 - "$TMP" <<'PY' || fail "A and B vectors differ"
import json, sys
a = json.load(open(sys.argv[1] + "/a.json"))
b = json.load(open(sys.argv[1] + "/b.json"))
assert [d["embedding"] for d in a["data"]] == [d["embedding"] for d in b["data"]]
PY
[ "$(redis-cli -p "$RPORT" --scan --pattern 'dodeca:*' | wc -l)" -ge 3 ] || fail "no dodeca keys in Redis"

# ---- 2. nginx in front; stopping A loses no request ----
NPORT=$(free_port)
A_PORT=${A_URL##*:}
B_PORT=${B_URL##*:}
USER_LINE=
[ "$(id -u)" = 0 ] && USER_LINE="user root;"
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx.conf" <<CONF
$USER_LINE
worker_processes 1;
daemon off;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    upstream dodeca {
        server 127.0.0.1:$A_PORT max_fails=1 fail_timeout=30s;
        server 127.0.0.1:$B_PORT max_fails=1 fail_timeout=30s;
        keepalive 16;
    }
    server {
        listen 127.0.0.1:$NPORT;
        client_max_body_size 8m;
        location / {
            proxy_pass http://dodeca;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Request-Id \$request_id;
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_next_upstream_tries 2;
        }
    }
}
CONF
"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx.conf" -e "$TMP/nginx-error.log" 2>"$TMP/nginx.err" &
PIDS+=($!)
N_URL="http://127.0.0.1:$NPORT"
for _ in $(seq 100); do curl -s -o /dev/null "$N_URL/info" && break; sleep 0.1; done

# Both servers answer through nginx (round robin).
for i in $(seq 6); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$N_URL/v1/embeddings" -d "{\"input\":\"warm $i\"}")
    [ "$code" = 200 ] || fail "through nginx: $code"
done
[ "$(metric "$A_URL" 'dodeca_http_requests_total{route="/v1/embeddings",code="200"}')" -ge 3 ] &&
    [ "$(metric "$B_URL" 'dodeca_http_requests_total{route="/v1/embeddings",code="200"}')" -ge 3 ] ||
    fail "nginx did not spread requests over both servers"

# Two clients send requests through nginx without pause; A is stopped in the middle.
client() { # ID: requests until $TMP/stop exists; one line per status code
    local i=0
    while [ ! -f "$TMP/stop" ]; do
        i=$((i + 1))
        curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 "$N_URL/v1/embeddings" \
            -d "{\"input\":[\"client $1 request $i\",\"$(date +%s%N)\"]}" >>"$TMP/codes.$1"
    done
}
client 1 &
C1=$!
client 2 &
C2=$!
sleep 1.5
kill -TERM "$A_PID"
wait "$A_PID"
rc=$?
[ "$rc" = 0 ] || fail "A exited with $rc after SIGTERM"
sleep 1.5
touch "$TMP/stop"
wait $C1 $C2
total=$(cat "$TMP"/codes.* | wc -l)
bad=$(grep -vc '^200$' <(cat "$TMP"/codes.*))
[ "$total" -ge 10 ] || fail "only $total requests were sent"
[ "$bad" = 0 ] || fail "$bad of $total requests failed while A stopped: $(sort "$TMP"/codes.* | uniq -c | tr '\n' ' ')"
echo "ok: Redis hits across processes; $total requests through nginx, none failed while A stopped"

#!/usr/bin/env bash
# OTLP over https: `dodeca embed` with tracing on exports its spans at exit to a local TLS
# collector (python3's http.server behind ssl, with a throwaway self-signed certificate made by
# openssl). Trusted through trace.otlp_ca_file, the POST arrives at /v1/traces with the
# configured header and OTLP JSON; without the CA file the export fails on the certificate and
# says so, while the embedding itself succeeds.
# Usage: otlp_https.sh DODECA DATA_DIR   (exit 77 without openssl or python3)
set -euo pipefail
dodeca=$1
command -v openssl >/dev/null || { echo "SKIP: openssl not installed"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 77; }
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
cat >"$tmp/collector.py" <<'PY'
import http.server, json, ssl, sys
cert, key, log = sys.argv[1:4]
class Collector(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(log, "a") as f:
            f.write(json.dumps({"path": self.path, "key": self.headers.get("X-Api-Key"),
                                "type": self.headers.get("Content-Type"),
                                "body": body.decode()}) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), Collector)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
PY
python3 "$tmp/collector.py" "$tmp/cert.pem" "$tmp/key.pem" "$tmp/posts.jsonl" >"$tmp/port" &
pid=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
port=$(cat "$tmp/port")
[ -n "$port" ] || fail "the collector did not start"

embed() {
  "$dodeca" embed --quiet --no-cache --models E9 --set trace.enabled=true \
    --set "trace.otlp_endpoint=https://127.0.0.1:$port" "$@" "hello over tls" >"$tmp/out.jsonl"
}

embed --set "trace.otlp_ca_file=$tmp/cert.pem" --set 'trace.otlp_headers=["X-Api-Key: k-7"]' \
  2>"$tmp/err" || fail "embed with a trusted collector: $(cat "$tmp/err")"
grep -q '"embedding"' "$tmp/out.jsonl" || fail "no embedding"
[ -s "$tmp/posts.jsonl" ] || fail "nothing reached the collector: $(cat "$tmp/err")"
python3 - "$tmp/posts.jsonl" <<'PY' || fail "the export is not what OTLP expects"
import json, sys
posts = [json.loads(l) for l in open(sys.argv[1])]
p = posts[-1]
assert p["path"] == "/v1/traces" and p["key"] == "k-7" and p["type"] == "application/json", p
spans = json.loads(p["body"])["resourceSpans"][0]["scopeSpans"][0]["spans"]
assert any(s["name"] == "embed" for s in spans), [s["name"] for s in spans]
print("ok  %d spans over https, header and path as configured" % len(spans))
PY

# not trusted: the export fails, names the certificate problem, and the job still succeeds
rm -f "$tmp/posts.jsonl"
embed 2>"$tmp/err" || fail "embed must succeed when the export fails: $(cat "$tmp/err")"
grep -q '"embedding"' "$tmp/out.jsonl" || fail "no embedding without the CA"
grep -qi "certificate" "$tmp/err" || fail "the failed export does not name the certificate: $(cat "$tmp/err")"
[ ! -s "$tmp/posts.jsonl" ] || fail "an untrusted collector received spans"
echo "ok  an untrusted collector is refused: $(grep -i -m1 certificate "$tmp/err" | cut -c1-160)"

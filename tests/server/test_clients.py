"""`dodeca serve` with real clients: the official openai client (float and base64 give the same
vectors, dimensions, model selection, errors as openai exceptions), prometheus_client parsing
/metrics, images as data: URIs and base64 (E10's vector equal to `dodeca embed`'s for the same
file), clients that vanish mid-request (a request inside the pipeline is cancelled), 429 under
a concurrency burst, and a graceful SIGTERM
that finishes the request in flight.

Usage: test_clients.py DODECA DC_FIXTURE TESTS_DATA_DIR (exit 77 when a module is missing)."""
import base64
import json
import math
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Server, check, make_models, skip  # noqa: E402

try:
    import openai
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as e:  # the tooling is optional; the server is not
    skip("python module missing: %s" % e.name)

KEY = "test-key-0123456789"
MAX_ITEMS = 32
MAX_CHARS = 4000


def norm(v):
    return math.sqrt(sum(x * x for x in v))


def metrics(srv):
    st, _, body = srv.request("GET", "/metrics", headers={"Authorization": "Bearer " + KEY})
    check(st == 200, "/metrics status %d" % st)
    fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
    return fams


def sample(fams, family, name, **labels):
    for s in fams[family].samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return 0.0


def test_openai(srv):
    client = openai.OpenAI(base_url=srv.url + "/v1", api_key=KEY, max_retries=0, timeout=60)
    texts = ["hello world", "the quick brown fox", "paris is the capital of france"]
    # The client asks for base64 when encoding_format is not given and decodes it itself.
    dflt = client.embeddings.create(input=texts, model="dodeca-fused")
    flt = client.embeddings.create(input=texts, model="dodeca-fused", encoding_format="float")
    raw = client.embeddings.create(input=texts, model="dodeca-fused", encoding_format="base64")
    check(len(flt.data) == 3, "three embeddings")
    for i, d in enumerate(flt.data):
        check(d.index == i, "data[%d].index" % i)
        check(len(d.embedding) == 1536, "fused vector has 1536 floats")
        check(abs(norm(d.embedding) - 1) < 1e-5, "fused vector is unit length")
        decoded = list(struct.unpack("<1536f", base64.b64decode(raw.data[i].embedding)))
        # float text is printed with 9 significant digits: it reads back to the same float32.
        as_f32 = list(struct.unpack("<1536f", struct.pack("<1536f", *d.embedding)))
        check(decoded == as_f32, "base64 and float give the same vector (item %d)" % i)
        check(list(dflt.data[i].embedding) == as_f32, "client-decoded base64 equals float")
    check(flt.model == "dodeca-fused", "model echoed")
    check(flt.usage.prompt_tokens > 0 and flt.usage.total_tokens == flt.usage.prompt_tokens,
          "usage counts tokens")
    check(flt.data[0].embedding != flt.data[1].embedding, "different inputs, different vectors")

    one = client.embeddings.create(input="hello world", model="dodeca-fused", encoding_format="float")
    check(one.data[0].embedding == flt.data[0].embedding, "a string input equals the same item in a list")

    short = client.embeddings.create(input=texts, model="dodeca-fused", dimensions=256,
                                     encoding_format="float")
    for i, d in enumerate(short.data):
        full = flt.data[i].embedding[:256]
        n = norm(full)
        check(len(d.embedding) == 256, "dimensions=256 gives 256 floats")
        check(abs(norm(d.embedding) - 1) < 1e-5, "truncated vector is renormalised")
        check(max(abs(a - b / n) for a, b in zip(d.embedding, full)) < 1e-5,
              "truncation keeps the leading components")

    # One model's own vector, by id, name or Hugging Face repo id.
    hdc = client.embeddings.create(input=texts, model="E9", encoding_format="float")
    hdc2 = client.embeddings.create(input=texts, model="hdc", encoding_format="float")
    check(len(hdc.data[0].embedding) == 1024, "E9 vector has 1024 floats")
    check(hdc.data[0].embedding == hdc2.data[0].embedding, "E9 and hdc name the same model")
    check(hdc.data[0].embedding != flt.data[0].embedding[:1024], "E9 is not the fused vector")
    sp = client.embeddings.create(input="hello world", encoding_format="float",
                                  model="naver/splade-cocondenser-ensembledistil")
    check(len(sp.data[0].embedding) == 1536, "E6 projected vector has 1536 floats")

    # The model list names what `model` accepts, for the models that can answer here.
    ids = [m.id for m in client.models.list()]
    check(ids[0] == "dodeca-fused", "the fused vector is listed first: %r" % ids)
    check("naver/splade-cocondenser-ensembledistil" in ids and "intfloat/e5-large-v2" not in ids,
          "models with folders are listed, others not: %r" % ids)
    for mid in ids[1:]:
        r = client.embeddings.create(input="listed", model=mid, encoding_format="float")
        check(len(r.data[0].embedding) > 0 and r.model == mid, "every listed id embeds: " + mid)

    # Errors surface as the openai exception of their status code.
    def expect(exc, status, **kw):
        try:
            client.embeddings.create(**kw)
        except exc as e:
            check(e.status_code == status, "%s: status %s" % (exc.__name__, e.status_code))
            return "%s %s" % (e.body, e.message)
        raise AssertionError("expected %s for %r" % (exc.__name__, kw))

    b = expect(openai.UnprocessableEntityError, 422, input=[], model="dodeca-fused")
    check("input" in str(b), "the error names the field")
    expect(openai.UnprocessableEntityError, 422, input=[""], model="dodeca-fused")
    b = expect(openai.UnprocessableEntityError, 422, input=["x"] * (MAX_ITEMS + 1), model="dodeca-fused")
    check("max_batch_items" in str(b), "too many items names the limit")
    expect(openai.UnprocessableEntityError, 422, input="y" * (MAX_CHARS + 1), model="dodeca-fused")
    expect(openai.UnprocessableEntityError, 422, input="x", model="dodeca-fused", dimensions=4096)
    expect(openai.UnprocessableEntityError, 422, input=[[1, 2, 3]], model="dodeca-fused")
    expect(openai.NotFoundError, 404, input="x", model="no-such-model")
    expect(openai.BadRequestError, 400, input="x", model="e5-large-v2")  # E1 has no folder here
    bad = openai.OpenAI(base_url=srv.url + "/v1", api_key="wrong", max_retries=0)
    try:
        bad.embeddings.create(input="x", model="dodeca-fused")
        raise AssertionError("a wrong key must be refused")
    except openai.AuthenticationError as e:
        check(e.status_code == 401, "401 for a wrong key")
    try:
        client.embeddings.create(input="z" * 300000, model="dodeca-fused")
        raise AssertionError("a body over max_body_bytes must be refused")
    except openai.APIStatusError as e:
        check(e.status_code == 413, "413 for a large body, got %d" % e.status_code)
    # The server keeps serving after every refusal.
    again = client.embeddings.create(input=texts, model="dodeca-fused", encoding_format="float")
    check([d.embedding for d in again.data] == [d.embedding for d in flt.data], "same vectors again")


def test_images(srv, dodeca, models, data_dir):
    """type "image": each input a data: URI or bare base64; E10 (CLIP) embeds it, the fused
    vector is made of the models that take images."""
    auth = {"Authorization": "Bearer " + KEY, "Content-Type": "application/json"}
    paths = [os.path.abspath(os.path.join(data_dir, "images", n)) for n in ("gray_224x224.png", "gray_250x171.jpg")]
    raw = [open(p, "rb").read() for p in paths]
    b64 = [base64.b64encode(b).decode() for b in raw]

    def post(path, body):
        st, _, out = srv.request("POST", path, json.dumps(body).encode(), auth)
        return st, json.loads(out)

    st, r = post("/v1/embeddings", {"model": "E10", "type": "image", "encoding_format": "float",
                                    "input": ["data:image/png;base64," + b64[0], b64[1]]})
    check(st == 200, "images embed: %d %r" % (st, r))
    vecs = [d["embedding"] for d in r["data"]]
    check(len(vecs) == 2 and all(len(v) == 768 for v in vecs), "E10 gives 768 floats per image")
    check(all(abs(norm(v) - 1) < 1e-5 for v in vecs), "E10 image vectors are unit length")
    check(vecs[0] != vecs[1], "two images, two vectors")
    st, again = post("/v1/embeddings", {"model": "E10", "type": "image", "encoding_format": "float",
                                        "input": b64[0]})
    check(st == 200 and again["data"][0]["embedding"] == vecs[0],
          "bare base64 and a data: URI are the same image")
    st, fused = post("/v1/embeddings", {"type": "image", "encoding_format": "float", "input": b64[0]})
    check(st == 200 and len(fused["data"][0]["embedding"]) == 1536, "an image's fused vector")
    st, em = post("/embed", {"type": "image", "inputs": [b64[1]], "models": ["E10"]})
    check(st == 200, "/embed takes images: %d %r" % (st, em))

    # the library's own answer for the same files: `dodeca embed` reads them by path
    with tempfile.TemporaryDirectory() as tmp:
        items = os.path.join(tmp, "items.jsonl")
        with open(items, "w") as f:
            for p in paths:
                f.write(json.dumps({"image": p}) + "\n")
        out = subprocess.run([dodeca, "embed", "--quiet", "--no-cache", "--per-model",
                              "--models", "E10", "--set", "fusion.expert_hidden_dim=64",
                              "--models-dir", models, "-i", items],
                             check=True, capture_output=True, text=True).stdout
    cli = [json.loads(line)["models"]["E10"]["vector"] for line in out.splitlines() if line.strip()]
    check(len(cli) == 2, "dodeca embed answered both images")
    for i in range(2):
        check(max(abs(a - b) for a, b in zip(cli[i], vecs[i])) < 1e-6,
              "image %d: the server's E10 vector is dodeca embed's" % i)

    # what is refused, and said so
    for body, needle in (({"type": "image", "input": "https://example.com/cat.png"}, "not fetched"),
                         ({"type": "image", "input": ["x", "R0l*"]}, "input[0]"),
                         ({"type": "image", "input": base64.b64encode(b"plain text").decode()},
                          "not a PNG, JPEG, WebP or GIF")):
        st, err = post("/v1/embeddings", body)
        check(st == 422 and needle in json.dumps(err), "refused with 422 naming %r: %d %r" % (needle, st, err))


def test_cancel(dodeca, models):
    """A client that goes away while its request waits in the pipeline: the work is given up
    (dodeca_http_cancelled_total), and the server goes on. A second server whose batches wait
    4 s (no dynamic batching) keeps the request inside the pipeline long enough to leave."""
    slow = Server(dodeca, ["--no-warmup", "--set", "fusion.expert_hidden_dim=64",
                           "--set", "models.models_dir=" + models,
                           "--set", "batch.dynamic_batching=false",
                           "--set", "batch.max_wait_ms=4000",
                           "--set", "pipeline.deadline_ms=30000"])
    try:
        body = json.dumps({"input": "a request nobody will wait for", "model": "E6"}).encode()
        sock = socket.create_connection((slow.host, slow.port), timeout=10)
        sock.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        time.sleep(0.5)
        sock.close()
        deadline, n = time.time() + 15, 0
        while time.time() < deadline and n < 1:
            n = sample(metrics(slow), "dodeca_http_cancelled", "dodeca_http_cancelled_total")
            time.sleep(0.1)
        check(n == 1, "the departed client's request was cancelled (cancelled_total %r)" % n)
        st, _, out = slow.request("POST", "/v1/embeddings", {"input": "still here", "model": "E6"},
                                  {"Authorization": "Bearer " + KEY}, timeout=30)
        check(st == 200, "the server still answers: %d %r" % (st, out[:200]))
    finally:
        slow.cleanup()


def test_metrics(srv):
    before = metrics(srv)
    ok0 = sample(before, "dodeca_http_requests", "dodeca_http_requests_total",
                 route="/v1/embeddings", code="200")
    e422 = sample(before, "dodeca_http_requests", "dodeca_http_requests_total",
                  route="/v1/embeddings", code="422")
    check(ok0 >= 8 and e422 >= 6, "earlier requests are counted by route and code")
    h = {"Authorization": "Bearer " + KEY}
    st, _, _ = srv.request("POST", "/v1/embeddings", {"input": "count me"}, h)
    check(st == 200, "embedding")
    st, _, _ = srv.request("POST", "/embed", {"inputs": []}, h)
    check(st == 422, "empty inputs")
    after = metrics(srv)
    check(sample(after, "dodeca_http_requests", "dodeca_http_requests_total",
                 route="/v1/embeddings", code="200") == ok0 + 1, "one more 200")
    check(sample(after, "dodeca_http_requests", "dodeca_http_requests_total",
                 route="/embed", code="422") >= 1, "422 on /embed counted")
    hist = after["dodeca_http_request_duration_seconds"]
    check(hist.type == "histogram", "latency is a histogram")
    cnt = sample(after, "dodeca_http_request_duration_seconds",
                 "dodeca_http_request_duration_seconds_count", route="/v1/embeddings")
    inf = sample(after, "dodeca_http_request_duration_seconds",
                 "dodeca_http_request_duration_seconds_bucket", route="/v1/embeddings", le="+Inf")
    check(cnt == inf and cnt >= ok0 + 1, "histogram count matches requests")
    check(after["dodeca_http_requests_in_flight"].type == "gauge", "in-flight gauge")
    check(sample(after, "dodeca_http_requests_in_flight", "dodeca_http_requests_in_flight") >= 1,
          "the /metrics request itself is in flight")
    check("dodeca_embeddings" in after and "dodeca_model_loaded" in after,
          "the pipeline's metrics are served too")


def wait_idle(srv):
    for _ in range(400):
        f = metrics(srv)
        if sample(f, "dodeca_http_embed_requests_in_flight", "dodeca_http_embed_requests_in_flight") == 0:
            return
        time.sleep(0.05)
    raise AssertionError("requests stayed in flight")


def raw_request(srv, body, send_len=None, read=True):
    s = socket.create_connection((srv.host, srv.port), timeout=30)
    head = ("POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (KEY, len(body)))
    s.sendall(head.encode() + body[:send_len if send_len is not None else len(body)])
    data = s.recv(65536) if read else b""
    s.close()
    return data


def test_aborts(srv):
    body = ('{"input": [%s]}' % ",".join('"abort test %d"' % i for i in range(MAX_ITEMS))).encode()
    for _ in range(3):
        raw_request(srv, body, send_len=len(body) // 2, read=False)  # half a body, then gone
        raw_request(srv, body, read=False)                           # whole request, no reading
    # A reset instead of a close: SO_LINGER 0.
    s = socket.create_connection((srv.host, srv.port), timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"inputs\"")
    s.close()
    wait_idle(srv)
    st, body2 = srv.json("POST", "/v1/embeddings", {"input": ["still here"]},
                         {"Authorization": "Bearer " + KEY})
    check(st == 200 and len(body2["data"][0]["embedding"]) == 1536, "the server keeps serving")
    st, _, _ = srv.request("GET", "/health")
    check(st in (200, 503), "health answers")
    f = metrics(srv)
    check(sample(f, "dodeca_http_client_aborts", "dodeca_http_client_aborts_total") >= 3,
          "vanished clients are counted")


def test_overload(srv):
    """--max-concurrent 2: a burst of 12 simultaneous requests gets some 429s, the rest 200."""
    body = {"input": ["overload %d %s" % (i, "word " * 200) for i in range(MAX_ITEMS)]}
    h = {"Authorization": "Bearer " + KEY}
    for attempt in range(5):
        codes = []
        barrier = threading.Barrier(12)

        def one():
            barrier.wait()
            st, hdr, _ = srv.request("POST", "/v1/embeddings", body, h)
            codes.append((st, hdr.get("retry-after")))

        ts = [threading.Thread(target=one) for _ in range(12)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        check(all(c in (200, 429) for c, _ in codes), "only 200 and 429 under load: %r" % codes)
        check(all(r == "1" for c, r in codes if c == 429), "429 carries Retry-After")
        if any(c == 429 for c, _ in codes) and any(c == 200 for c, _ in codes):
            client = openai.OpenAI(base_url=srv.url + "/v1", api_key=KEY, max_retries=0)
            return client
        body["input"] = [s + " more" for s in body["input"]]  # new inputs: no cache hits
    raise AssertionError("no 429 in five bursts of 12 requests with --max-concurrent 2")


def test_graceful_stop(srv):
    """SIGTERM while a request runs: it still gets its 200, then the process exits 0."""
    h = {"Authorization": "Bearer " + KEY}
    result = {}
    body = {"input": ["drain %d %s" % (i, "text " * 300) for i in range(MAX_ITEMS)]}

    def run():
        result["status"] = srv.request("POST", "/v1/embeddings", body, h)[0]

    t = threading.Thread(target=run)
    t.start()
    for _ in range(400):  # until the request is inside the pipeline
        f = metrics(srv)
        if sample(f, "dodeca_http_embed_requests_in_flight", "dodeca_http_embed_requests_in_flight") >= 1:
            break
        time.sleep(0.005)
    rc = srv.stop(signal.SIGTERM)
    t.join()
    check(result.get("status") == 200, "the request in flight finished: %r" % result)
    check(rc == 0, "exit status 0 after SIGTERM, got %r" % rc)
    check("finishing requests in flight" in srv.stderr(), "shutdown is logged")


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    dodeca, fixture = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="dodeca-server-test-")
    srv = None
    try:
        models = make_models(fixture, tmp)
        # A long deadline: under sanitizers a burst must not turn into 504s.
        srv = Server(dodeca, ["--no-warmup", "--max-concurrent", "2",
                              "--set", "pipeline.deadline_ms=120000",
                              # narrow experts: starts in a second instead of seven
                              "--set", "fusion.expert_hidden_dim=64",
                              "--set", "models.models_dir=" + models,
                              "--set", "server.max_batch_items=%d" % MAX_ITEMS,
                              "--set", "server.max_input_chars=%d" % MAX_CHARS,
                              "--set", "server.max_body_bytes=200000"],
                     env={"DODECA_SERVER_API_KEY": KEY})
        for name, fn in (("openai", test_openai),
                         ("images", lambda s: test_images(s, dodeca, models, sys.argv[3])),
                         ("metrics", test_metrics),
                         ("cancel", lambda s: test_cancel(dodeca, models)),
                         ("aborts", test_aborts), ("overload", test_overload),
                         ("graceful stop", test_graceful_stop)):
            t0 = time.time()
            fn(srv)
            print("ok  %-14s %.2fs" % (name, time.time() - t0))
        srv.cleanup()
        srv = None
        return 0
    except Exception:
        if srv:
            print(srv.stderr()[-4000:], file=sys.stderr)
        raise
    finally:
        if srv:
            srv.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

/* The pipeline in operation: many threads with mixed inputs (run under TSan), hot swap under
 * load (no request fails, results move to the new weights, a bad swap rolls back), tracing
 * (Chrome trace-event JSON, OTLP/HTTP JSON to a local listener), cache persistence across
 * restarts with a corrupted file discarded, metrics and health exports, warm-up. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cjson/cJSON.h>

#include "test_runtime_pipeline.h"

/* ---- many threads ---- */

#define NTEXT 12
static const char *const texts[NTEXT] = {
    "The quick brown fox jumps over the lazy dog",
    "fn main() { println!(\"hello world\"); }",
    "SELECT name, email FROM users WHERE active = 1",
    "Mitochondria are the powerhouse of the cell",
    "a", "embedding pipelines fuse twelve models",
    "short", "Lorem ipsum dolor sit amet, consectetur adipiscing elit",
    "graph nodes and edges", "ColBERT late interaction", "temporal decay features",
    "hyperdimensional computing binds and bundles"};

typedef struct mix_shared {
    dc_pipeline *p;
    pthread_mutex_t mu;
    bool have[NTEXT];
    float first[NTEXT][DC_DIM_FUSED];
    atomic_int failures, hits, done;
} mix_shared;

typedef struct mix_arg {
    mix_shared *s;
    int id;
} mix_arg;

static void check_same(mix_shared *s, int k, const dc_pipeline_result *r) {
    pthread_mutex_lock(&s->mu);
    if (!s->have[k]) {
        memcpy(s->first[k], r->fused.vector, sizeof s->first[k]);
        s->have[k] = true;
    } else if (memcmp(s->first[k], r->fused.vector, sizeof s->first[k]) != 0) {
        atomic_fetch_add(&s->failures, 1); /* same input and t_ref, another vector */
    }
    pthread_mutex_unlock(&s->mu);
}

static dc_input mixed_input(int k) {
    dc_input in = k == 1 ? dc_input_code(texts[k], strlen(texts[k]), "rust")
                         : dc_input_text(texts[k], strlen(texts[k]), k % 3 ? DC_ROLE_PASSAGE : DC_ROLE_QUERY);
    in.has_t_ref = true;
    in.t_ref = 1700000000.0;
    if (k % 2) {
        in.has_t_event = true;
        in.t_event = 1699990000.0 + k;
    }
    return in;
}

static void *mix_thread(void *a) {
    mix_arg *m = a;
    uint64_t x = (uint64_t)m->id * 7919 + 1;
    for (int it = 0; it < 30; it++) {
        x = fake_mix(x);
        int k = (int)(x % NTEXT);
        if (x & 0x100) {
            dc_input in = mixed_input(k);
            dc_pipeline_result r;
            if (dc_pipeline_embed(m->s->p, &in, &r) != DC_OK) {
                atomic_fetch_add(&m->s->failures, 1);
                continue;
            }
            if (r.cache_hit) atomic_fetch_add(&m->s->hits, 1);
            if (fabs(rt_norm(r.fused.vector, DC_DIM_FUSED) - 1.0) > 1e-4) atomic_fetch_add(&m->s->failures, 1);
            check_same(m->s, k, &r);
            dc_pipeline_result_free(&r);
        } else {
            dc_input in[3];
            int ks[3];
            for (int j = 0; j < 3; j++) {
                ks[j] = (k + j * 5) % NTEXT;
                in[j] = mixed_input(ks[j]);
            }
            dc_pipeline_result r[3];
            dc_status st[3];
            if (dc_pipeline_embed_batch(m->s->p, in, 3, r, st) != DC_OK) atomic_fetch_add(&m->s->failures, 1);
            for (int j = 0; j < 3; j++) {
                if (st[j] == DC_OK) check_same(m->s, ks[j], &r[j]);
                dc_pipeline_result_free(&r[j]);
            }
        }
        atomic_fetch_add(&m->s->done, 1);
    }
    return NULL;
}

static void test_many_threads(void **state) {
    (void)state;
    rt_env e;
    rt_env_init(&e, DC_ALL_MODELS_MASK);
    e.cfg.pipeline.deadline_ms = 20000;
    e.cfg.batch.max_wait_ms = 2;
    rt_env_open(&e);
    for (int i = 0; i < DC_NUM_MODELS; i++) atomic_store(&e.ff->ctl[i].delay_ms, 1);
    mix_shared *s = calloc(1, sizeof *s);
    s->p = e.p;
    pthread_mutex_init(&s->mu, NULL);
    enum { T = 8 };
    pthread_t th[T];
    mix_arg a[T];
    for (int i = 0; i < T; i++) {
        a[i] = (mix_arg){s, i};
        assert_int_equal(pthread_create(&th[i], NULL, mix_thread, &a[i]), 0);
    }
    for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&s->failures), 0);
    assert_int_equal(atomic_load(&s->done), T * 30);
    assert_true(atomic_load(&s->hits) > 0);
    for (int i = 0; i < DC_NUM_MODELS; i++) assert_int_equal(atomic_load(&e.ff->ctl[i].overlap), 0);
    dc_pipeline_stats st;
    assert_ok(dc_pipeline_stats_get(e.p, &st));
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.embeddings, st.requests);
    assert_int_equal(st.cache_hits + st.cache_misses, st.requests);
    assert_true(st.model[DC_MODEL_SEMANTIC].max_batch > 1);
    pthread_mutex_destroy(&s->mu);
    free(s);
    rt_env_close(&e);
}

/* ---- hot swap under load ---- */

typedef struct load_arg {
    dc_pipeline *p;
    atomic_bool *stop;
    atomic_int *fails, *calls;
    atomic_ullong *seed_seen; /* bit s: a result from E11 weights with seed s */
    int id;
} load_arg;

static void *load_thread(void *a) {
    load_arg *l = a;
    for (int i = 0; !atomic_load(l->stop); i++) {
        char text[48];
        int len = snprintf(text, sizeof text, "load %d item %d", l->id, i);
        dc_input in = dc_input_text(text, (size_t)len, DC_ROLE_PASSAGE);
        dc_embed_options o = {.no_cache = true};
        dc_pipeline_result r;
        dc_status st = dc_pipeline_embed_ex(l->p, &in, &o, &r);
        atomic_fetch_add(l->calls, 1);
        if (st != DC_OK || r.models[DC_MODEL_ENTITY].status != DC_RUN_OK) {
            atomic_fetch_add(l->fails, 1);
            dc_pipeline_result_free(&r);
            continue;
        }
        float want[DC_DIM_ENTITY];
        for (uint64_t s = 1; s <= 4; s++) {
            fake_vector(s, DC_MODEL_ENTITY, text, (size_t)len, want, DC_DIM_ENTITY);
            if (!memcmp(want, r.models[DC_MODEL_ENTITY].vector, sizeof want))
                atomic_fetch_or(l->seed_seen, 1ull << s);
        }
        dc_pipeline_result_free(&r);
    }
    return NULL;
}

static void test_hot_swap_under_load(void **state) {
    (void)state;
    rt_env e;
    rt_env_init(&e, DC_ALL_MODELS_MASK);
    e.cfg.pipeline.deadline_ms = 20000;
    e.cfg.batch.max_wait_ms = 1;
    rt_env_open(&e);
    assert_ok(dc_pipeline_load_model(e.p, DC_MODEL_ENTITY));
    atomic_store(&e.ff->ctl[DC_MODEL_ENTITY].delay_ms, 5);
    atomic_bool stop;
    atomic_int fails, calls;
    atomic_ullong seen;
    atomic_init(&stop, false);
    atomic_init(&fails, 0);
    atomic_init(&calls, 0);
    atomic_init(&seen, 0);
    enum { T = 4 };
    pthread_t th[T];
    load_arg la[T];
    for (int i = 0; i < T; i++) {
        la[i] = (load_arg){e.p, &stop, &fails, &calls, &seen, i};
        assert_int_equal(pthread_create(&th[i], NULL, load_thread, &la[i]), 0);
    }
    /* each phase lasts until traffic has shown it (conditions, not guessed durations) */
    fake_wait_until(atomic_load(&seen) & (1u << 1));
    dc_model_config mc = e.cfg.models.model[DC_MODEL_ENTITY];
    snprintf(mc.path, sizeof mc.path, "2");
    assert_ok(dc_pipeline_swap_model(e.p, DC_MODEL_ENTITY, &mc));
    fake_wait_until(atomic_load(&seen) & (1u << 2));
    /* a replacement that cannot load is rolled back while traffic continues */
    atomic_store(&e.ff->ctl[DC_MODEL_ENTITY].fail_load, 1);
    snprintf(mc.path, sizeof mc.path, "4");
    assert_status(dc_pipeline_swap_model(e.p, DC_MODEL_ENTITY, &mc), DC_ERR_MODEL_LOAD);
    atomic_store(&e.ff->ctl[DC_MODEL_ENTITY].fail_load, 0);
    int before = atomic_load(&calls);
    fake_wait_until(atomic_load(&calls) >= before + 2 * T);
    snprintf(mc.path, sizeof mc.path, "3");
    assert_ok(dc_pipeline_swap_model(e.p, DC_MODEL_ENTITY, &mc));
    fake_wait_until(atomic_load(&seen) & (1u << 3));
    before = atomic_load(&calls);
    fake_wait_until(atomic_load(&calls) >= before + 2 * T);
    atomic_store(&stop, true);
    for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&fails), 0);
    uint64_t s = atomic_load(&seen);
    assert_true(s & (1u << 1));
    assert_true(s & (1u << 2));
    assert_true(s & (1u << 3));
    assert_false(s & (1u << 4));
    /* after the swap every new request runs on seed 3 */
    dc_input in = dc_input_text("after the swap", 14, DC_ROLE_PASSAGE);
    dc_pipeline_result r;
    assert_ok(dc_pipeline_embed(e.p, &in, &r));
    float want[DC_DIM_ENTITY];
    fake_vector(3, DC_MODEL_ENTITY, "after the swap", 14, want, DC_DIM_ENTITY);
    assert_memory_equal(want, r.models[DC_MODEL_ENTITY].vector, sizeof want);
    dc_pipeline_result_free(&r);
    dc_pipeline_stats st;
    assert_ok(dc_pipeline_stats_get(e.p, &st));
    assert_int_equal(st.model[DC_MODEL_ENTITY].swap_count, 2);
    /* the old instances were freed once drained: the original and seed 2 (and the failed one) */
    assert_int_equal(atomic_load(&e.ff->ctl[DC_MODEL_ENTITY].destroys), 3);
    assert_int_equal(st.errors, 0);
    rt_env_close(&e);
}

/* ---- tracing ---- */

static cJSON *find_event(cJSON *events, const char *name, double request_id) {
    cJSON *ev;
    cJSON_ArrayForEach(ev, events) {
        cJSON *n = cJSON_GetObjectItem(ev, "name"), *args = cJSON_GetObjectItem(ev, "args");
        cJSON *rid = args ? cJSON_GetObjectItem(args, "request_id") : NULL;
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name) && rid && rid->valuedouble == request_id)
            return ev;
    }
    return NULL;
}

static void test_chrome_trace(void **state) {
    (void)state;
    rt_env e;
    rt_env_init(&e, DC_ALL_MODELS_MASK);
    char path[] = "/tmp/dc_trace_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    e.cfg.trace.enabled = true;
    e.cfg.trace.sample_rate = 1.0;
    snprintf(e.cfg.trace.chrome_path, sizeof e.cfg.trace.chrome_path, "%s", path);
    rt_env_open(&e);
    dc_input in = dc_input_text("traced request", 14, DC_ROLE_PASSAGE);
    dc_pipeline_result r1, r2;
    assert_ok(dc_pipeline_embed(e.p, &in, &r1));
    assert_ok(dc_pipeline_embed(e.p, &in, &r2)); /* a hit: embed, prepare and lookup only */
    uint64_t id1 = r1.request_id, id2 = r2.request_id;
    dc_pipeline_result_free(&r1);
    dc_pipeline_result_free(&r2);
    rt_env_close(&e); /* writes the file */
    size_t len;
    char *text = dc_test_read_file(path, &len);
    assert_non_null(text);
    cJSON *root = cJSON_Parse(text);
    free(text);
    assert_non_null(root);
    cJSON *events = cJSON_GetObjectItem(root, "traceEvents");
    assert_true(cJSON_IsArray(events));
    assert_non_null(find_event(events, "embed", (double)id1));
    assert_non_null(find_event(events, "forward E1", (double)id1));
    assert_non_null(find_event(events, "queue E12", (double)id1));
    assert_non_null(find_event(events, "fusion", (double)id1));
    assert_non_null(find_event(events, "tokenise", (double)id1));
    cJSON *f = find_event(events, "forward E1", (double)id1);
    assert_string_equal(cJSON_GetObjectItem(f, "ph")->valuestring, "X");
    assert_true(cJSON_GetObjectItem(f, "dur")->valuedouble >= 0);
    assert_non_null(find_event(events, "cache_lookup", (double)id2));
    assert_null(find_event(events, "forward E1", (double)id2));
    cJSON_Delete(root);
    unlink(path);

    /* sampling 0: nothing recorded */
    rt_env_init(&e, DC_ALL_MODELS_MASK);
    e.cfg.trace.enabled = true;
    e.cfg.trace.sample_rate = 0.0;
    rt_env_open(&e);
    assert_ok(dc_pipeline_embed(e.p, &in, &r1));
    dc_pipeline_result_free(&r1);
    dc_pipeline_stats st;
    assert_ok(dc_pipeline_stats_get(e.p, &st));
    assert_int_equal(st.traced_requests, 0);
    rt_env_close(&e);
}

typedef struct http_sink {
    int fd;
    int port;
    atomic_bool stop;
    pthread_mutex_t mu;
    char *body;
    size_t len;
    int posts;
    char head[4096]; /* the last request's line and headers */
} http_sink;

static void *sink_thread(void *a) {
    http_sink *s = a;
    while (!atomic_load(&s->stop)) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) continue;
        char buf[65536];
        size_t got = 0;
        size_t want = SIZE_MAX;
        while (got < sizeof buf - 1) {
            ssize_t r = recv(c, buf + got, sizeof buf - 1 - got, 0);
            if (r <= 0) break;
            got += (size_t)r;
            buf[got] = 0;
            char *hdr_end = strstr(buf, "\r\n\r\n");
            if (hdr_end && want == SIZE_MAX) {
                char *cl = strstr(buf, "Content-Length: ");
                want = (size_t)(hdr_end + 4 - buf) + (cl ? strtoul(cl + 16, NULL, 10) : 0);
            }
            if (got >= want) break;
        }
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        if (send(c, ok, sizeof ok - 1, 0) < 0) {
        }
        close(c);
        char *b = strstr(buf, "\r\n\r\n");
        if (b) {
            pthread_mutex_lock(&s->mu);
            snprintf(s->head, sizeof s->head, "%.*s", (int)(b - buf), buf);
            size_t bl = got - (size_t)(b + 4 - buf);
            s->body = realloc(s->body, s->len + bl + 1);
            memcpy(s->body + s->len, b + 4, bl);
            s->len += bl;
            s->body[s->len] = 0;
            s->posts++;
            pthread_mutex_unlock(&s->mu);
        }
    }
    return NULL;
}

static void test_otlp_export(void **state) {
    (void)state;
    http_sink s;
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.mu, NULL);
    s.fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s.fd, (struct sockaddr *)&addr, sizeof addr), 0);
    socklen_t al = sizeof addr;
    getsockname(s.fd, (struct sockaddr *)&addr, &al);
    s.port = ntohs(addr.sin_port);
    assert_int_equal(listen(s.fd, 8), 0);
    struct timeval tv = {0, 100000};
    setsockopt(s.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, sink_thread, &s), 0);

    rt_env e;
    rt_env_init(&e, DC_ALL_MODELS_MASK);
    e.cfg.trace.enabled = true;
    e.cfg.trace.sample_rate = 1.0;
    snprintf(e.cfg.trace.otlp_endpoint, sizeof e.cfg.trace.otlp_endpoint,
             "http://127.0.0.1:%d", s.port); /* no path: the OTLP default is appended */
    snprintf(e.cfg.trace.otlp_headers[0], sizeof e.cfg.trace.otlp_headers[0], "X-Api-Key: k-123");
    e.cfg.trace.otlp_header_count = 1;
    rt_env_open(&e);
    dc_input in = dc_input_text("exported", 8, DC_ROLE_PASSAGE);
    dc_pipeline_result r;
    assert_ok(dc_pipeline_embed(e.p, &in, &r));
    dc_pipeline_result_free(&r);
    assert_ok(dc_pipeline_trace_flush(e.p));
    /* the listener records the body after it answered: wait for it */
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&s.mu);
        int posts = s.posts;
        pthread_mutex_unlock(&s.mu);
        if (posts) break;
        fake_sleep_ms(10);
    }
    pthread_mutex_lock(&s.mu);
    assert_true(s.posts >= 1);
    assert_non_null(strstr(s.head, "POST /v1/traces HTTP/1.1"));
    assert_non_null(strstr(s.head, "X-Api-Key: k-123"));
    assert_non_null(strstr(s.head, "Content-Type: application/json"));
    cJSON *root = cJSON_Parse(s.body);
    pthread_mutex_unlock(&s.mu);
    assert_non_null(root);
    cJSON *spans = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(
                                           cJSON_GetObjectItem(root, "resourceSpans"), 0), "scopeSpans"), 0), "spans");
    assert_true(cJSON_GetArraySize(spans) >= 10);
    bool root_span = false, child = false;
    cJSON *sp;
    cJSON_ArrayForEach(sp, spans) {
        assert_int_equal(strlen(cJSON_GetObjectItem(sp, "traceId")->valuestring), 32);
        if (!strcmp(cJSON_GetObjectItem(sp, "name")->valuestring, "embed")) root_span = !cJSON_GetObjectItem(sp, "parentSpanId");
        if (!strcmp(cJSON_GetObjectItem(sp, "name")->valuestring, "forward E1")) child = cJSON_GetObjectItem(sp, "parentSpanId") != NULL;
    }
    assert_true(root_span && child);
    cJSON_Delete(root);
    rt_env_close(&e);
    atomic_store(&s.stop, true);
    pthread_join(th, NULL);
    close(s.fd);
    free(s.body);
    pthread_mutex_destroy(&s.mu);

    /* http:// and https:// only; a CA file that cannot be read is named (https itself:
     * tests/cli/otlp_https.sh, against a local TLS collector) */
    rt_env_init(&e, DC_ALL_MODELS_MASK);
    e.cfg.trace.enabled = true;
    snprintf(e.cfg.trace.otlp_endpoint, sizeof e.cfg.trace.otlp_endpoint, "ftp://example.com/v1/traces");
    assert_status(dc_pipeline_open_ex(&e.cfg, &e.opt, &e.p), DC_ERR_CONFIG);
    assert_non_null(strstr(dc_error_detail(), "otlp_endpoint"));
    free(e.ff);
    rt_env_init(&e, DC_ALL_MODELS_MASK);
    e.cfg.trace.enabled = true;
    snprintf(e.cfg.trace.otlp_endpoint, sizeof e.cfg.trace.otlp_endpoint, "https://example.com");
    snprintf(e.cfg.trace.otlp_ca_file, sizeof e.cfg.trace.otlp_ca_file, "/nonexistent/ca.pem");
    assert_status(dc_pipeline_open_ex(&e.cfg, &e.opt, &e.p), DC_ERR_CONFIG);
    assert_non_null(strstr(dc_error_detail(), "otlp_ca_file"));
    free(e.ff);
}

/* ---- cache persistence ---- */

static void test_cache_file_across_restarts(void **state) {
    (void)state;
    char path[] = "/tmp/dc_pcache_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    unlink(path);
    rt_env e;
    dc_input in = dc_input_text("persist me", 10, DC_ROLE_PASSAGE);
    dc_pipeline_result r, r2;
    rt_env_init(&e, DC_ALL_MODELS_MASK);
    e.cfg.cache.persist_to_disk = true;
    snprintf(e.cfg.cache.disk_path, sizeof e.cfg.cache.disk_path, "%s", path);
    rt_env_open(&e);
    assert_ok(dc_pipeline_embed(e.p, &in, &r));
    rt_env_close(&e);

    rt_env_init(&e, DC_ALL_MODELS_MASK);
    e.cfg.cache.persist_to_disk = true;
    snprintf(e.cfg.cache.disk_path, sizeof e.cfg.cache.disk_path, "%s", path);
    rt_env_open(&e);
    assert_ok(dc_pipeline_embed(e.p, &in, &r2));
    assert_true(r2.cache_hit);
    assert_memory_equal(r.fused.vector, r2.fused.vector, sizeof r.fused.vector);
    assert_true(r.t_ref == r2.t_ref);
    assert_int_equal(atomic_load(&e.ff->ctl[DC_MODEL_SEMANTIC].items), 0);
    dc_pipeline_result_free(&r2);
    rt_env_close(&e);

    /* one flipped byte: the file is discarded with a warning, and replaced at close */
    size_t len;
    uint8_t *bytes = dc_test_read_file(path, &len);
    assert_non_null(bytes);
    bytes[len / 2] ^= 0x01;
    FILE *f = fopen(path, "wb");
    fwrite(bytes, 1, len, f);
    fclose(f);
    free(bytes);
    rt_env_init(&e, DC_ALL_MODELS_MASK);
    e.cfg.cache.persist_to_disk = true;
    snprintf(e.cfg.cache.disk_path, sizeof e.cfg.cache.disk_path, "%s", path);
    rt_env_open(&e);
    assert_int_equal(atomic_load(&e.warnings), 1);
    assert_ok(dc_pipeline_embed(e.p, &in, &r2));
    assert_false(r2.cache_hit);
    dc_pipeline_result_free(&r2);
    rt_env_close(&e);
    rt_env_init(&e, DC_ALL_MODELS_MASK);
    e.cfg.cache.persist_to_disk = true;
    snprintf(e.cfg.cache.disk_path, sizeof e.cfg.cache.disk_path, "%s", path);
    rt_env_open(&e);
    assert_int_equal(atomic_load(&e.warnings), 0);
    dc_pipeline_stats st;
    assert_ok(dc_pipeline_stats_get(e.p, &st));
    assert_int_equal(st.cache_entries, 1);
    rt_env_close(&e);
    dc_pipeline_result_free(&r);
    unlink(path);
}

/* ---- metrics, health, warm-up ---- */

static void test_metrics_and_health(void **state) {
    (void)state;
    rt_env e;
    rt_env_init(&e, DC_ALL_MODELS_MASK);
    rt_env_open(&e);
    dc_input in = dc_input_text("metrics", 7, DC_ROLE_PASSAGE);
    dc_pipeline_result r;
    for (int i = 0; i < 3; i++) {
        assert_ok(dc_pipeline_embed(e.p, &in, &r));
        dc_pipeline_result_free(&r);
    }
    char *json = NULL;
    assert_ok(dc_pipeline_metrics_json(e.p, &json));
    cJSON *root = cJSON_Parse(json);
    free(json);
    assert_non_null(root);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "requests"), "total")->valueint, 3);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "cache"), "hits")->valueint, 2);
    cJSON *e1 = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "models"), "E1");
    assert_string_equal(cJSON_GetObjectItem(e1, "state")->valuestring, "loaded");
    assert_int_equal(cJSON_GetObjectItem(e1, "ok")->valueint, 1);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "health"), "healthy")));
    cJSON_Delete(root);
    char *prom = NULL;
    assert_ok(dc_pipeline_metrics_prometheus(e.p, &prom));
    assert_non_null(strstr(prom, "dodeca_requests_total 3\n"));
    assert_non_null(strstr(prom, "dodeca_model_results_total{model=\"E1\",status=\"ok\"} 1\n"));
    assert_non_null(strstr(prom, "dodeca_stage_seconds_count{stage=\"fusion\"} 1\n"));
    assert_non_null(strstr(prom, "dodeca_stage_seconds_count{stage=\"tokenise\"} 1\n"));
    free(prom);
    dc_pipeline_health h;
    assert_ok(dc_pipeline_health_get(e.p, &h));
    assert_true(h.healthy && h.minimum_viable);
    assert_int_equal(h.models_loaded, 12);
    assert_int_equal(h.errors_last_minute, 0);
    /* ten errors in a minute make it unhealthy */
    dc_input bad = dc_input_text("", 0, DC_ROLE_PASSAGE);
    for (int i = 0; i < 10; i++) assert_status(dc_pipeline_embed(e.p, &bad, &r), DC_ERR_EMPTY_INPUT);
    assert_ok(dc_pipeline_health_get(e.p, &h));
    assert_false(h.healthy);
    assert_non_null(strstr(h.reason, "errors"));
    rt_env_close(&e);
}

static void test_warmup(void **state) {
    (void)state;
    rt_env e;
    rt_env_init(&e, DC_ALL_MODELS_MASK);
    e.opt.warmup = true;
    e.cfg.models.lazy_loading = false;
    rt_env_open(&e);
    dc_warmup_report w;
    dc_pipeline_warmup_report(e.p, &w);
    assert_int_equal(w.models_warmed, 12);
    assert_int_equal(w.models_failed, 0);
    assert_true(w.fusion_warmed);
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        assert_true(w.model[i].warmed);
        assert_int_equal(w.model[i].samples, 1 + 4 + 16 + 32);
        assert_true(w.model[i].duration_us >= w.model[i].final_us);
        assert_int_equal(atomic_load(&e.ff->ctl[i].max_batch), 32);
    }
    dc_pipeline_stats st;
    assert_ok(dc_pipeline_stats_get(e.p, &st));
    assert_int_equal(st.requests, 0); /* warm-up is not traffic */
    rt_env_close(&e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_threads),
        cmocka_unit_test(test_hot_swap_under_load),
        cmocka_unit_test(test_chrome_trace),
        cmocka_unit_test(test_otlp_export),
        cmocka_unit_test(test_cache_file_across_restarts),
        cmocka_unit_test(test_metrics_and_health),
        cmocka_unit_test(test_warmup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

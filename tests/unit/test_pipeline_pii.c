/* Issue 10, placement: the scrubber runs before the cache key, the models, any log line and
 * any trace, so no raw PII or secret reaches logs, cache keys, the cache file, the Redis tier,
 * traces, metrics, results or error messages. The pipeline runs the built-in custom models
 * (no weights needed); every sink is captured and searched for each raw value. */
#define _GNU_SOURCE /* memmem */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dodeca/dodeca.h"
#include "runtime/redis_tier.h"
#include "test_support.h"

/* Each raw value, and the sentence that carries it. */
static const char *const raw_values[] = {
    "jane.doe@example.com", "555-2671",           "536-22-1234",
    "4111 1111 1111 1111",  "DE89 3704 0044 0532", "AKIAQ3EGRBLW2JXMN7PZ",
    "ghp_R2d2C3poLukeLeiaHanSoloChewbacca1234",
};
static const char *const sentences[] = {
    "Mail jane.doe@example.com about the invoice",
    "Call me at (415) 555-2671 tomorrow",
    "My SSN is 536-22-1234",
    "Charge card 4111 1111 1111 1111 please",
    "Wire it to IBAN DE89 3704 0044 0532 0130 00",
    "aws_access_key_id = AKIAQ3EGRBLW2JXMN7PZ",
    "export GITHUB_TOKEN=ghp_R2d2C3poLukeLeiaHanSoloChewbacca1234",
};
#define N_SENTENCES (sizeof sentences / sizeof sentences[0])

typedef struct sink {
    char *buf;
    size_t len, cap;
} sink;

static void sink_add(sink *s, const void *p, size_t n) {
    if (s->len + n + 1 > s->cap) {
        s->cap = (s->len + n + 1) * 2;
        s->buf = realloc(s->buf, s->cap);
        assert_non_null(s->buf);
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->buf[s->len] = '\0';
}

static void capture_log(void *ctx, int level, const char *message) {
    (void)level;
    sink_add(ctx, message, strlen(message));
    sink_add(ctx, "\n", 1);
}

/* Fails naming the sink and the value when any raw value occurs in bytes [p, p + n). */
static void assert_no_raw(const char *what, const void *p, size_t n) {
    for (size_t i = 0; i < sizeof raw_values / sizeof raw_values[0]; i++)
        if (n && memmem(p, n, raw_values[i], strlen(raw_values[i])))
            fail_msg("raw value \"%s\" reached %s", raw_values[i], what);
}

static void read_file(const char *path, sink *out) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) sink_add(out, chunk, n);
    fclose(f);
}

/* Every key and string value in the Redis database the pipeline used. */
static void read_redis(const char *url, sink *out) {
    char host[256], password[256];
    int port = 0, db = 0;
    assert_ok(dc_redis_url_parse(url, host, &port, password, &db));
    redisContext *c = redisConnect(host, port);
    assert_true(c && !c->err);
    redisReply *r = redisCommand(c, "SELECT %d", db);
    freeReplyObject(r);
    r = redisCommand(c, "KEYS *");
    assert_non_null(r);
    for (size_t i = 0; i < r->elements; i++) {
        sink_add(out, r->element[i]->str, r->element[i]->len);
        redisReply *v = redisCommand(c, "GET %b", r->element[i]->str, r->element[i]->len);
        if (v && v->type == REDIS_REPLY_STRING) sink_add(out, v->str, v->len);
        freeReplyObject(v);
    }
    freeReplyObject(r);
    redisFree(c);
}

static void test_no_raw_pii_reaches_any_sink(void **state) {
    (void)state;
    char dir[] = "/tmp/dodeca-pii-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char trace_path[128], cache_path[128], models_dir[128];
    snprintf(trace_path, sizeof trace_path, "%s/trace.json", dir);
    snprintf(cache_path, sizeof cache_path, "%s/cache.bin", dir);
    snprintf(models_dir, sizeof models_dir, "%s/models", dir); /* absent: custom models only */

    dc_config cfg;
    dc_config_defaults(&cfg);
    snprintf(cfg.models.models_dir, sizeof cfg.models.models_dir, "%s", models_dir);
    cfg.fusion.expert_hidden_dim = 64;
    cfg.pipeline.deadline_ms = 10000;
    cfg.pipeline.min_models = 1;
    cfg.pii.enabled = true;
    cfg.pii.mode = DC_PII_PLACEHOLDER;
    cfg.trace.enabled = true;
    cfg.trace.sample_rate = 1.0;
    snprintf(cfg.trace.chrome_path, sizeof cfg.trace.chrome_path, "%s", trace_path);
    cfg.cache.persist_to_disk = true;
    snprintf(cfg.cache.disk_path, sizeof cfg.cache.disk_path, "%s", cache_path);
    const char *redis_url = getenv("DODECA_TEST_REDIS_URL");
    if (redis_url) snprintf(cfg.cache.redis_url, sizeof cfg.cache.redis_url, "%s", redis_url);

    sink log = {0}, details = {0};
    dc_pipeline_options opt;
    dc_pipeline_options_default(&opt);
    opt.log = capture_log;
    opt.log_ctx = &log;
    opt.warmup = true;
    dc_pipeline *p = NULL;
    assert_ok(dc_pipeline_open_ex(&cfg, &opt, &p));

    /* one at a time, then all together */
    dc_input in[N_SENTENCES];
    for (size_t i = 0; i < N_SENTENCES; i++) {
        in[i] = dc_input_text(sentences[i], strlen(sentences[i]), DC_ROLE_PASSAGE);
        in[i].has_t_event = in[i].has_t_ref = true;
        in[i].t_event = 1.7e9;
        in[i].t_ref = 1.7e9 + 3600;
        dc_pipeline_result r;
        assert_ok(dc_pipeline_embed(p, &in[i], &r));
        assert_true(r.pii_findings >= 1);
        for (int m = 0; m < DC_NUM_MODELS; m++)
            sink_add(&details, r.models[m].detail, strlen(r.models[m].detail));
        dc_pipeline_result_free(&r);
    }
    dc_pipeline_result rs[N_SENTENCES];
    dc_embed_options eo = {.no_cache = true};
    assert_ok(dc_pipeline_embed_batch_ex(p, in, N_SENTENCES, &eo, rs, NULL));
    for (size_t i = 0; i < N_SENTENCES; i++) dc_pipeline_result_free(&rs[i]);

    /* The cache key is over the scrubbed text: another address gives the same key (a hit),
     * and so does the placeholder text itself. */
    const char *a = "Mail alice@example.org about the invoice";
    const char *b = "Mail <EMAIL> about the invoice";
    dc_pipeline_result ra, rb, r0;
    dc_input ia = dc_input_text(a, strlen(a), DC_ROLE_PASSAGE);
    dc_input ib = dc_input_text(b, strlen(b), DC_ROLE_PASSAGE);
    ia.has_t_event = ib.has_t_event = ia.has_t_ref = ib.has_t_ref = true;
    ia.t_event = ib.t_event = in[0].t_event;
    ia.t_ref = ib.t_ref = in[0].t_ref;
    assert_ok(dc_pipeline_embed(p, &in[0], &r0));
    assert_ok(dc_pipeline_embed(p, &ia, &ra));
    assert_ok(dc_pipeline_embed(p, &ib, &rb));
    assert_true(ra.cache_hit);
    assert_memory_equal(&ra.cache_key, &r0.cache_key, sizeof ra.cache_key);
    assert_memory_equal(&rb.cache_key, &r0.cache_key, sizeof rb.cache_key);
    assert_memory_equal(ra.fused.vector, rb.fused.vector, DC_DIM_FUSED * sizeof(float));
    dc_pipeline_result_free(&r0);
    dc_pipeline_result_free(&ra);
    dc_pipeline_result_free(&rb);

    /* Error messages: an input that fails validation says where, never what. */
    static const char bad[] = "Mail jane.doe@example.com \xff\xfe now";
    dc_input ibad = dc_input_text(bad, sizeof bad - 1, DC_ROLE_PASSAGE);
    dc_pipeline_result rbad;
    assert_int_not_equal(dc_pipeline_embed(p, &ibad, &rbad), DC_OK);
    sink_add(&details, dc_error_detail(), strlen(dc_error_detail()));
    /* nor does a bad Redis URL repeat its password */
    char host[256], password[256];
    int port = 0, db = 0;
    assert_status(dc_redis_url_parse("redis://:hunter2@cache:99999", host, &port, password, &db),
                  DC_ERR_CONFIG);
    assert_null(strstr(dc_error_detail(), "hunter2"));

    char *metrics_json = NULL, *metrics_prom = NULL;
    assert_ok(dc_pipeline_metrics_json(p, &metrics_json));
    assert_ok(dc_pipeline_metrics_prometheus(p, &metrics_prom));
    dc_pipeline_close(p); /* writes the trace and the cache file */

    sink trace = {0}, cache = {0}, redis = {0};
    read_file(trace_path, &trace);
    read_file(cache_path, &cache);
    /* the sinks were really written: otherwise the search proves nothing */
    assert_non_null(trace.buf);
    assert_non_null(strstr(trace.buf, "\"traceEvents\""));
    assert_true(cache.len > DC_DIM_FUSED * sizeof(float));

    assert_no_raw("the log", log.buf, log.len);
    assert_no_raw("a result detail or error message", details.buf, details.len);
    assert_no_raw("the Chrome trace", trace.buf, trace.len);
    assert_no_raw("the cache file", cache.buf, cache.len);
    assert_no_raw("the JSON metrics", metrics_json, strlen(metrics_json));
    assert_no_raw("the Prometheus metrics", metrics_prom, strlen(metrics_prom));
    if (redis_url) {
        read_redis(redis_url, &redis);
        assert_true(redis.len > 0);
        assert_no_raw("the Redis tier", redis.buf, redis.len);
    } else {
        print_message("DODECA_TEST_REDIS_URL unset: the Redis tier was not searched\n");
    }

    free(metrics_json);
    free(metrics_prom);
    free(log.buf);
    free(details.buf);
    free(trace.buf);
    free(cache.buf);
    free(redis.buf);
    unlink(trace_path);
    unlink(cache_path);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_raw_pii_reaches_any_sink),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

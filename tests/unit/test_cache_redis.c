/* The Redis cache tier against a real redis-server: values round-trip, foreign values are
 * refused, two pipelines share results through Redis, and an outage (the server killed
 * mid-test) degrades to the local cache without failing or stalling requests, then recovers
 * when the server comes back. Part one uses DODECA_TEST_REDIS_URL (skipped when unset); part
 * two starts and kills its own redis-server (skipped when none is installed). */
#include <netinet/in.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <hiredis/hiredis.h>

#include "runtime/pipeline_internal.h"
#include "runtime/record.h"
#include "runtime/redis_tier.h"
#include "test_runtime_pipeline.h"

extern char **environ;

static const char *redis_url(void) {
    const char *u = getenv("DODECA_TEST_REDIS_URL");
    return u && *u ? u : NULL;
}

static void unique_text(char *buf, size_t cap, const char *what) {
    snprintf(buf, cap, "%s %ld %.6f", what, (long)getpid(), dc_rt_wall_seconds());
}

static bool check_record(void *ctx, const uint8_t *b, size_t len) {
    (void)ctx;
    return dc_record_check(b, len);
}

static void test_url_parse(void **state) {
    (void)state;
    char host[256], pw[256];
    int port, db;
    assert_ok(dc_redis_url_parse("redis://127.0.0.1:6390/2", host, &port, pw, &db));
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 6390);
    assert_int_equal(db, 2);
    assert_string_equal(pw, "");
    assert_ok(dc_redis_url_parse("redis://:s3cret@cache.local", host, &port, pw, &db));
    assert_string_equal(host, "cache.local");
    assert_int_equal(port, 6379);
    assert_string_equal(pw, "s3cret");
    assert_status(dc_redis_url_parse("http://x", host, &port, pw, &db), DC_ERR_CONFIG);
    assert_status(dc_redis_url_parse("redis://h:99999", host, &port, pw, &db), DC_ERR_CONFIG);
    assert_status(dc_redis_url_parse("redis://h/x", host, &port, pw, &db), DC_ERR_CONFIG);
}

/* A valid record for tests. */
static void make_record(uint8_t **bytes, size_t *len, int k) {
    dc_pipeline_result r;
    dc_pipeline_result_init(&r);
    r.fused.vector[k] = 1.0f;
    r.fused.expert_weights[0] = 1.0f;
    r.fused.num_selected = 1;
    r.t_ref = 1700000000.0;
    assert_ok(dc_record_encode(&r, bytes, len));
}

static void test_tier_round_trip(void **state) {
    (void)state;
    if (!redis_url()) skip();
    dc_redis_options o = {.url = redis_url(), .timeout_ms = 200, .ttl_seconds = 60,
                          .validate = check_record};
    dc_redis_tier *t = NULL;
    assert_ok(dc_redis_tier_create(&o, &t));
    char text[96];
    unique_text(text, sizeof text, "tier");
    dc_input in = dc_input_text(text, strlen(text), DC_ROLE_PASSAGE);
    dc_hash128 key = dc_input_hash(&in);
    uint8_t *rec, *got = NULL;
    size_t len, glen = 0;
    make_record(&rec, &len, 3);
    assert_status(dc_redis_tier_get(t, key, &got, &glen), DC_ERR_NOT_FOUND);
    dc_redis_tier_put(t, key, rec, len);
    dc_redis_tier_drain(t, 2000);
    assert_ok(dc_redis_tier_get(t, key, &got, &glen));
    assert_int_equal(glen, len);
    assert_memory_equal(got, rec, len);
    free(got);
    /* a value that is not a record (another program, a damaged write) is a miss */
    char host[256], pw[256];
    int port, db;
    assert_ok(dc_redis_url_parse(redis_url(), host, &port, pw, &db));
    redisContext *c = redisConnect(host, port);
    assert_non_null(c);
    assert_int_equal(c->err, 0);
    if (pw[0]) freeReplyObject(redisCommand(c, "AUTH %s", pw));
    if (db) freeReplyObject(redisCommand(c, "SELECT %d", db));
    char hex[33], k2[64];
    dc_hash128 bad = {key.lo ^ 1, key.hi};
    dc_hash128_hex(bad, hex);
    snprintf(k2, sizeof k2, "dodeca:v1:%s", hex);
    freeReplyObject(redisCommand(c, "SET %s %s EX 60", k2, "not a record"));
    redisReply *ttl = redisCommand(c, "TTL dodeca:v1:%s", (dc_hash128_hex(key, hex), hex));
    assert_non_null(ttl);
    assert_true(ttl->integer > 0 && ttl->integer <= 60); /* written with the cache TTL */
    freeReplyObject(ttl);
    redisFree(c);
    assert_status(dc_redis_tier_get(t, bad, &got, &glen), DC_ERR_NOT_FOUND);
    dc_redis_stats s;
    dc_redis_tier_stats(t, &s);
    assert_int_equal(s.invalid, 1);
    assert_int_equal(s.hits, 1);
    assert_int_equal(s.writes, 1);
    assert_true(s.up);
    free(rec);
    dc_redis_tier_destroy(t);
}

static void open_with_redis(rt_env *e, const char *url) {
    rt_env_init(e, DC_ALL_MODELS_MASK);
    snprintf(e->cfg.cache.redis_url, sizeof e->cfg.cache.redis_url, "%s", url);
    rt_env_open(e);
}

static void test_two_pipelines_share(void **state) {
    (void)state;
    if (!redis_url()) skip();
    rt_env a, b;
    open_with_redis(&a, redis_url());
    open_with_redis(&b, redis_url());
    char text[96];
    unique_text(text, sizeof text, "shared");
    dc_input in = dc_input_text(text, strlen(text), DC_ROLE_PASSAGE);
    dc_pipeline_result ra, rb;
    assert_ok(dc_pipeline_embed(a.p, &in, &ra));
    assert_false(ra.cache_hit);
    dc_redis_tier_drain(a.p->redis, 2000);
    assert_ok(dc_pipeline_embed(b.p, &in, &rb));
    assert_true(rb.cache_hit); /* from Redis: b never ran a model */
    assert_int_equal(atomic_load(&b.ff->ctl[DC_MODEL_SEMANTIC].items), 0);
    assert_memory_equal(ra.fused.vector, rb.fused.vector, sizeof ra.fused.vector);
    assert_true(ra.t_ref == rb.t_ref);
    dc_pipeline_result_free(&rb);
    /* and b's local tier now has it */
    assert_ok(dc_pipeline_embed(b.p, &in, &rb));
    assert_true(rb.cache_hit);
    dc_pipeline_stats s;
    assert_ok(dc_pipeline_stats_get(b.p, &s));
    assert_int_equal(s.redis_hits, 1);
    assert_int_equal(s.cache_hits, 1);
    dc_pipeline_result_free(&ra);
    dc_pipeline_result_free(&rb);
    rt_env_close(&a);
    rt_env_close(&b);
}

/* ---- outage with our own server ---- */

static pid_t g_server = -1; /* killed by the group teardown if a test fails midway */

static void stop_server(pid_t pid) {
    if (pid <= 0) return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (g_server == pid) g_server = -1;
}

static int teardown(void **state) {
    (void)state;
    stop_server(g_server);
    return 0;
}

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

static pid_t start_server(int port) {
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    char *argv[] = {"redis-server", "--port", ps, "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--loglevel", "warning", NULL};
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawnp(&pid, "redis-server", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return -1;
    g_server = pid;
    for (int i = 0; i < 200; i++) { /* up to 2 s for it to listen */
        redisContext *c = redisConnect("127.0.0.1", port);
        bool up = c && !c->err;
        if (c) redisFree(c);
        if (up) return pid;
        fake_sleep_ms(10);
    }
    stop_server(pid);
    return -1;
}

static bool have_redis_server(void) {
    const char *path = getenv("PATH");
    if (!path) return false;
    char *copy = strdup(path), *save = NULL;
    bool found = false;
    for (char *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        char p[4096];
        snprintf(p, sizeof p, "%s/redis-server", d);
        found = access(p, X_OK) == 0;
    }
    free(copy);
    return found;
}

static void test_outage_degrades_and_recovers(void **state) {
    (void)state;
    if (!have_redis_server()) skip();
    int port = free_port();
    pid_t srv = start_server(port);
    assert_true(srv > 0);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    rt_env e;
    open_with_redis(&e, url);
    dc_input in = dc_input_text("before the outage", 17, DC_ROLE_PASSAGE);
    dc_pipeline_result r;
    assert_ok(dc_pipeline_embed(e.p, &in, &r));
    dc_pipeline_result_free(&r);
    dc_redis_tier_drain(e.p->redis, 2000);
    dc_redis_stats rs;
    dc_redis_tier_stats(e.p->redis, &rs);
    assert_int_equal(rs.writes, 1);

    stop_server(srv); /* the server dies mid-test */
    for (int i = 0; i < 5; i++) {
        char t[32];
        int n = snprintf(t, sizeof t, "during the outage %d", i);
        dc_input x = dc_input_text(t, (size_t)n, DC_ROLE_PASSAGE);
        uint64_t t0 = dc_rt_now_ns();
        assert_ok(dc_pipeline_embed(e.p, &x, &r)); /* never fails because of Redis */
        assert_true((dc_rt_now_ns() - t0) / 1000000 < 1000);
        dc_pipeline_result_free(&r);
    }
    assert_ok(dc_pipeline_embed(e.p, &in, &r)); /* the local tier still answers */
    assert_true(r.cache_hit);
    dc_pipeline_result_free(&r);
    dc_redis_tier_drain(e.p->redis, 2000);
    dc_redis_tier_stats(e.p->redis, &rs);
    assert_true(rs.errors >= 1);
    assert_false(rs.up);
    dc_pipeline_health h;
    assert_ok(dc_pipeline_health_get(e.p, &h));
    assert_true(h.redis_configured);
    assert_false(h.redis_up);
    assert_true(atomic_load(&e.warnings) >= 1);

    /* the server comes back; after the retry interval the tier is used again */
    srv = start_server(port);
    assert_true(srv > 0);
    fake_sleep_ms(1100);
    dc_input y = dc_input_text("after the outage", 16, DC_ROLE_PASSAGE);
    assert_ok(dc_pipeline_embed(e.p, &y, &r));
    dc_pipeline_result_free(&r);
    dc_redis_tier_drain(e.p->redis, 2000);
    dc_redis_tier_stats(e.p->redis, &rs);
    assert_true(rs.up);
    assert_int_equal(rs.writes, 2);
    rt_env_close(&e);
    stop_server(srv);
}

int main(void) {
    if (!redis_url() && !have_redis_server()) {
        printf("skipped: DODECA_TEST_REDIS_URL is unset and no redis-server is installed\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_parse),
        cmocka_unit_test(test_tier_round_trip),
        cmocka_unit_test(test_two_pipelines_share),
        cmocka_unit_test(test_outage_degrades_and_recovers),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}

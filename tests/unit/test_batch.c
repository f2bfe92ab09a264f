/* Batch queues: dynamic batching, token budget, length sorting, max wait, back-pressure,
 * cancellation, load failure, per-item isolation, shutdown with work queued. */
#include "runtime/batch.h"
#include "runtime/registry.h"
#include "test_runtime_fake.h"

typedef struct env {
    fake_factory *ff;
    dc_registry *reg;
    dc_batch_queue *q;
} env;

static void env_open(env *e, dc_model_id id, const dc_batch_options *o) {
    dc_config cfg;
    dc_config_defaults(&cfg);
    e->ff = fake_factory_new(DC_ALL_MODELS_MASK);
    dc_registry_options ro = {.factory = &e->ff->base, .max_concurrent_loads = 2,
                              .drain_timeout_ms = 100};
    assert_ok(dc_registry_create(&cfg, &ro, NULL, &e->reg));
    assert_ok(dc_batch_queue_create(id, o, e->reg, NULL, &e->q));
}

static void env_close(env *e) {
    dc_batch_queue_destroy(e->q);
    dc_registry_destroy(e->reg);
    free(e->ff);
}

static dc_batch_options opts(uint32_t max_batch, uint32_t wait_ms, uint32_t cap) {
    dc_batch_options o = {.max_batch_size = max_batch, .min_batch_size = 1, .max_wait_ms = wait_ms,
                          .max_tokens_per_batch = 0, .queue_capacity = cap,
                          .sort_by_length = true, .dynamic = true};
    return o;
}

/* A group of n text inputs "item <i>" padded to varied lengths, one job each for `id`. */
static dc_job_group *make_group(size_t n, dc_model_id id, char (*texts)[64]) {
    dc_input *ins = calloc(n, sizeof *ins);
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(texts[i], 64, "item %zu %.*s", i, (int)((i * 7) % 40), "........................................");
        ins[i] = dc_input_text(texts[i], (size_t)len, DC_ROLE_PASSAGE);
    }
    dc_job_group *g = NULL;
    assert_ok(dc_job_group_create(ins, n, n, &g));
    free(ins);
    for (size_t i = 0; i < n; i++) {
        g->jobs[i].model = id;
        g->jobs[i].input = &g->inputs[i];
        g->jobs[i].input_index = i;
        g->jobs[i].est_tokens = dc_estimate_tokens(&g->inputs[i], id);
    }
    return g;
}

static void submit_all(dc_batch_queue *q, dc_job_group *g, size_t from, size_t to) {
    dc_job *ptrs[256];
    for (size_t i = from; i < to; i++) ptrs[i - from] = &g->jobs[i];
    assert_ok(dc_batch_submit(q, ptrs, to - from));
}

static void wait_all(dc_job_group *g, uint32_t ms) {
    pthread_mutex_lock(&g->mu);
    uint32_t left = dc_job_group_wait_locked(g, dc_rt_now_ns() + (uint64_t)ms * 1000000ull);
    pthread_mutex_unlock(&g->mu);
    assert_int_equal(left, 0);
}

static void check_results(dc_job_group *g, size_t n, dc_model_id id) {
    uint32_t dim = dc_model_info_get(id)->dim;
    float *want = malloc(dim * sizeof *want);
    for (size_t i = 0; i < n; i++) {
        dc_job *j = &g->jobs[i];
        assert_int_equal(atomic_load(&j->state), DC_JOB_DONE);
        assert_int_equal(j->status, DC_OK);
        assert_int_equal(j->emb.dim, dim);
        fake_vector(1, id, g->inputs[i].content, g->inputs[i].content_len, want, dim);
        assert_memory_equal(j->emb.vector, want, dim * sizeof *want);
        assert_true(j->t_end_ns >= j->t_start_ns && j->t_start_ns >= j->t_submit_ns);
    }
    free(want);
}

static void test_dynamic_batching(void **state) {
    (void)state;
    env e;
    dc_batch_options o = opts(8, 600000, 64); /* max_wait 10 min: waiting for it would show */
    env_open(&e, DC_MODEL_ENTITY, &o);
    fake_ctl *ctl = &e.ff->ctl[DC_MODEL_ENTITY];
    atomic_store(&ctl->hold, 1);
    char texts[21][64];
    dc_job_group *g = make_group(21, DC_MODEL_ENTITY, texts);
    submit_all(e.q, g, 0, 1); /* idle executor: runs at once, without waiting max_wait */
    fake_wait_until(atomic_load(&ctl->in_flight) == 1);
    assert_int_equal(atomic_load(&ctl->in_flight), 1);
    submit_all(e.q, g, 1, 21); /* arrive while busy: they batch up */
    atomic_store(&ctl->hold, 0);
    wait_all(g, 60000); /* all done well before max_wait */
    check_results(g, 21, DC_MODEL_ENTITY);
    assert_int_equal(atomic_load(&ctl->items), 21);
    assert_int_equal(atomic_load(&ctl->max_batch), 8);
    assert_true(atomic_load(&ctl->embeds) <= 5); /* 1 + 8 + 8 + 4 */
    assert_int_equal(atomic_load(&ctl->unsorted), 0);
    assert_int_equal(atomic_load(&ctl->overlap), 0); /* one executor per model */
    assert_int_equal(g->jobs[0].batch_size, 1);
    const dc_batch_stats *s = dc_batch_queue_stats(e.q);
    assert_int_equal(dc_rt_get(&s->completed), 21);
    assert_int_equal(dc_rt_get(&s->batch_items), 21);
    assert_int_equal(dc_rt_get(&s->max_batch_seen), 8);
    assert_int_equal(dc_hist_count(&s->queue_us), 21);
    dc_job_group_abandon(g);
    env_close(&e);
}

static void test_token_budget(void **state) {
    (void)state;
    env e;
    dc_batch_options o = opts(32, 1000, 64);
    o.max_tokens_per_batch = 25;
    env_open(&e, DC_MODEL_GRAPH, &o);
    fake_ctl *ctl = &e.ff->ctl[DC_MODEL_GRAPH];
    atomic_store(&ctl->delay_ms, 30);
    char texts[12][64];
    dc_job_group *g = make_group(12, DC_MODEL_GRAPH, texts); /* each ~3..13 tokens */
    submit_all(e.q, g, 0, 12);
    wait_all(g, 5000);
    check_results(g, 12, DC_MODEL_GRAPH);
    for (size_t i = 0; i < 12; i++) {
        /* every batch fit the budget: the sum over a batch is at most 25 (or one item) */
        uint32_t sum = 0;
        for (size_t k = 0; k < 12; k++)
            if (g->jobs[k].t_start_ns == g->jobs[i].t_start_ns) sum += g->jobs[k].est_tokens;
        assert_true(sum <= 25 || g->jobs[i].batch_size == 1);
    }
    assert_true(atomic_load(&ctl->max_batch) < 12);
    dc_job_group_abandon(g);
    env_close(&e);
}

static void test_max_wait_without_dynamic(void **state) {
    (void)state;
    env e;
    dc_batch_options o = opts(8, 120, 64);
    o.dynamic = false;
    env_open(&e, DC_MODEL_HDC, &o);
    char texts[3][64];
    dc_job_group *g = make_group(3, DC_MODEL_HDC, texts);
    uint64_t t0 = dc_rt_now_ns();
    submit_all(e.q, g, 0, 3);
    wait_all(g, 5000);
    uint64_t ms = (dc_rt_now_ns() - t0) / 1000000;
    assert_true(ms >= 115); /* waited for more work up to max_wait */
    assert_int_equal(atomic_load(&e.ff->ctl[DC_MODEL_HDC].embeds), 1);
    assert_int_equal(g->jobs[0].batch_size, 3);
    check_results(g, 3, DC_MODEL_HDC);
    dc_job_group_abandon(g);
    env_close(&e);
}

static void test_overload_is_immediate(void **state) {
    (void)state;
    env e;
    dc_batch_options o = opts(4, 10000, 4);
    env_open(&e, DC_MODEL_CODE, &o);
    fake_ctl *ctl = &e.ff->ctl[DC_MODEL_CODE];
    atomic_store(&ctl->hold, 1);
    char texts[6][64];
    dc_job_group *g = make_group(6, DC_MODEL_CODE, texts);
    submit_all(e.q, g, 0, 1);
    fake_wait_until(atomic_load(&ctl->in_flight) == 1);
    submit_all(e.q, g, 1, 5); /* fills the queue while the executor is busy */
    dc_job *extra = &g->jobs[5];
    assert_status(dc_batch_submit(e.q, &extra, 1), DC_ERR_OVERLOADED);
    assert_int_equal(atomic_load(&ctl->in_flight), 1); /* refused while the model still holds its batch */
    assert_detail_contains("full");
    assert_int_equal(dc_rt_get(&dc_batch_queue_stats(e.q)->overloaded), 1);
    assert_int_equal(dc_batch_queue_depth(e.q), 4);
    /* the refused job holds nothing: the group frees cleanly once the others finish */
    pthread_mutex_lock(&g->mu);
    assert_int_equal(g->pending, 5);
    pthread_mutex_unlock(&g->mu);
    atomic_store(&ctl->hold, 0);
    dc_job_group_abandon(g);
    env_close(&e);
}

static void test_cancelled_jobs_are_dropped(void **state) {
    (void)state;
    env e;
    dc_batch_options o = opts(8, 10000, 64);
    env_open(&e, DC_MODEL_SPARSE, &o);
    fake_ctl *ctl = &e.ff->ctl[DC_MODEL_SPARSE];
    atomic_store(&ctl->delay_ms, 150);
    char ta[1][64], tb[3][64];
    dc_job_group *a = make_group(1, DC_MODEL_SPARSE, ta);
    dc_job_group *b = make_group(3, DC_MODEL_SPARSE, tb);
    submit_all(e.q, a, 0, 1);
    while (!dc_batch_queue_busy(e.q)) fake_sleep_ms(1);
    submit_all(e.q, b, 0, 3);
    dc_job_group_abandon(b); /* the caller gave up: b's jobs must never run */
    wait_all(a, 5000);
    check_results(a, 1, DC_MODEL_SPARSE);
    for (int i = 0; i < 200 && dc_rt_get(&dc_batch_queue_stats(e.q)->cancelled_dropped) < 3; i++)
        fake_sleep_ms(5);
    assert_int_equal(dc_rt_get(&dc_batch_queue_stats(e.q)->cancelled_dropped), 3);
    assert_int_equal(atomic_load(&ctl->items), 1);
    dc_job_group_abandon(a);
    env_close(&e);
}

static void test_load_failure_fails_jobs(void **state) {
    (void)state;
    env e;
    dc_batch_options o = opts(8, 10, 64);
    env_open(&e, DC_MODEL_SEMANTIC, &o);
    atomic_store(&e.ff->ctl[DC_MODEL_SEMANTIC].fail_load, 1);
    char texts[2][64];
    dc_job_group *g = make_group(2, DC_MODEL_SEMANTIC, texts);
    submit_all(e.q, g, 0, 2);
    wait_all(g, 5000);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(g->jobs[i].status, DC_ERR_MODEL_LOAD);
        assert_non_null(strstr(g->jobs[i].detail, "fake load failure"));
        assert_null(g->jobs[i].emb.vector);
    }
    dc_job_group_abandon(g);
    env_close(&e);
}

static void test_bad_item_isolated(void **state) {
    (void)state;
    env e;
    dc_batch_options o = opts(8, 200, 64);
    o.dynamic = false;
    env_open(&e, DC_MODEL_ENTITY, &o);
    static const char *const t[3] = {"good one", "FAIL here", "good two"};
    dc_input ins[3];
    for (int i = 0; i < 3; i++) ins[i] = dc_input_text(t[i], strlen(t[i]), DC_ROLE_PASSAGE);
    dc_job_group *g = NULL;
    assert_ok(dc_job_group_create(ins, 3, 3, &g));
    for (int i = 0; i < 3; i++) {
        g->jobs[i].model = DC_MODEL_ENTITY;
        g->jobs[i].input = &g->inputs[i];
        g->jobs[i].est_tokens = 3;
    }
    submit_all(e.q, g, 0, 3);
    wait_all(g, 5000);
    assert_int_equal(g->jobs[0].status, DC_OK);
    assert_int_equal(g->jobs[1].status, DC_ERR_TOKENIZATION);
    assert_non_null(strstr(g->jobs[1].detail, "unembeddable"));
    assert_int_equal(g->jobs[2].status, DC_OK);
    assert_non_null(g->jobs[2].emb.vector);
    dc_job_group_abandon(g);
    env_close(&e);
}

static void test_shutdown_with_work_queued(void **state) {
    (void)state;
    env e;
    dc_batch_options o = opts(2, 10000, 64);
    env_open(&e, DC_MODEL_MULTIMODAL, &o);
    atomic_store(&e.ff->ctl[DC_MODEL_MULTIMODAL].delay_ms, 100);
    char texts[6][64];
    dc_job_group *g = make_group(6, DC_MODEL_MULTIMODAL, texts);
    submit_all(e.q, g, 0, 1);
    while (!dc_batch_queue_busy(e.q)) fake_sleep_ms(1);
    submit_all(e.q, g, 1, 6);
    dc_batch_queue_destroy(e.q); /* finishes the running batch, fails the rest */
    e.q = NULL;
    int ok = 0, closing = 0;
    for (int i = 0; i < 6; i++) {
        assert_int_equal(atomic_load(&g->jobs[i].state), DC_JOB_DONE);
        if (g->jobs[i].status == DC_OK) ok++;
        if (g->jobs[i].status == DC_ERR_NOT_INITIALIZED) closing++;
    }
    assert_true(ok >= 1);
    assert_int_equal(ok + closing, 6);
    dc_job_group_abandon(g);
    dc_registry_destroy(e.reg);
    free(e.ff);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dynamic_batching),
        cmocka_unit_test(test_token_budget),
        cmocka_unit_test(test_max_wait_without_dynamic),
        cmocka_unit_test(test_overload_is_immediate),
        cmocka_unit_test(test_cancelled_jobs_are_dropped),
        cmocka_unit_test(test_load_failure_fails_jobs),
        cmocka_unit_test(test_bad_item_isolated),
        cmocka_unit_test(test_shutdown_with_work_queued),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

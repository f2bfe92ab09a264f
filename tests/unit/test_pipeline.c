/* The pipeline over fake models: results, determinism and t_ref, cache hits with identical
 * bytes, input types and skips, the deadline with a deliberately slow model, the presence
 * policy, load failures, the memory budget, overload, cancellation, embed_batch, the provider
 * bridge, and a missing E1. */
#include "runtime/pipeline_internal.h"
#include "test_runtime_pipeline.h"

static const char fox[] = "The quick brown fox jumps over the lazy dog";

static void test_embed_text(void **state) {
    (void)state;
    rt_env e;
    rt_env_init(&e, DC_ALL_MODELS_MASK);
    rt_env_open(&e);
    dc_input in = dc_input_text(fox, sizeof fox - 1, DC_ROLE_PASSAGE);
    dc_pipeline_result r;
    double before = dc_rt_wall_seconds();
    assert_ok(dc_pipeline_embed(e.p, &in, &r));
    double after = dc_rt_wall_seconds();
    assert_int_equal(r.ok_mask, DC_ALL_MODELS_MASK);
    assert_int_equal(r.fused.present_mask, DC_ALL_MODELS_MASK);
    assert_int_equal(r.timeout_mask | r.failed_mask | r.skipped_mask, 0);
    assert_true(fabs(rt_norm(r.fused.vector, DC_DIM_FUSED) - 1.0) < 1e-4);
    assert_ok(dc_fused_validate(&r.fused));
    assert_true(r.fused.num_selected >= 1);
    rt_check_models(&r, fox, sizeof fox - 1, 1);
    /* t_ref: the receive time, returned */
    assert_false(r.t_ref_from_input);
    assert_true(r.t_ref >= before - 1e-3 && r.t_ref <= after + 1e-3);
    assert_false(r.cache_hit);
    assert_true(r.request_id > 0);
    assert_true(r.timings.total_us >= r.timings.models_us);
    assert_true(dc_hash128_equal(r.fused.content_hash, dc_input_hash(&in)));
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        assert_int_equal(r.models[i].status, DC_RUN_OK);
        assert_true(r.models[i].batch_size >= 1);
    }

    /* the same input with the returned t_ref, cache bypassed: the same fused vector */
    dc_input again = in;
    again.has_t_ref = true;
    again.t_ref = r.t_ref;
    dc_embed_options o = {.no_cache = true};
    dc_pipeline_result r2;
    assert_ok(dc_pipeline_embed_ex(e.p, &again, &o, &r2));
    assert_true(r2.t_ref_from_input);
    assert_memory_equal(r2.fused.vector, r.fused.vector, sizeof r.fused.vector);
    assert_memory_equal(r2.fused.expert_weights, r.fused.expert_weights, sizeof r.fused.expert_weights);
    dc_pipeline_result_free(&r2);
    dc_pipeline_result_free(&r);
    assert_null(r.models[0].vector);
    rt_env_close(&e);
}

static void test_cache_hit_identical_bytes(void **state) {
    (void)state;
    rt_env e;
    rt_env_init(&e, DC_ALL_MODELS_MASK);
    rt_env_open(&e);
    dc_input in = dc_input_text(fox, sizeof fox - 1, DC_ROLE_QUERY);
    dc_pipeline_result a, b;
    assert_ok(dc_pipeline_embed(e.p, &in, &a));
    assert_ok(dc_pipeline_embed(e.p, &in, &b));
    assert_false(a.cache_hit);
    assert_true(b.cache_hit);
    assert_true(dc_hash128_equal(a.cache_key, b.cache_key));
    size_t na = dc_fused_encoded_size(&a.fused), nb = dc_fused_encoded_size(&b.fused), w;
    assert_int_equal(na, nb);
    uint8_t *ba = malloc(na), *bb = malloc(nb);
    assert_ok(dc_fused_encode(&a.fused, ba, na, &w));
    assert_ok(dc_fused_encode(&b.fused, bb, nb, &w));
    assert_memory_equal(ba, bb, na);
    free(ba);
    free(bb);
    assert_int_equal(b.ok_mask, a.ok_mask);
    rt_check_models(&b, fox, sizeof fox - 1, 1);
    assert_true(b.t_ref == a.t_ref); /* the t_ref that computed the stored result */
    assert_int_equal(b.timings.models_us, 0);
    /* the models ran once */
    assert_int_equal(atomic_load(&e.ff->ctl[DC_MODEL_SEMANTIC].items), 1);
    dc_pipeline_stats s;
    assert_ok(dc_pipeline_stats_get(e.p, &s));
    assert_int_equal(s.cache_hits, 1);
    assert_int_equal(s.cache_misses, 1);
    assert_int_equal(s.embeddings, 2);
    /* a different role (an option that changes E1) is a different key */
    dc_input q = in;
    q.role = DC_ROLE_PASSAGE;
    dc_pipeline_result c;
    assert_ok(dc_pipeline_embed(e.p, &q, &c));
    assert_false(c.cache_hit);
    dc_pipeline_result_free(&a);
    dc_pipeline_result_free(&b);
    dc_pipeline_result_free(&c);
    rt_env_close(&e);
}

static void test_input_types(void **state) {
    (void)state;
    rt_env e;
    rt_env_init(&e, DC_ALL_MODELS_MASK);
    rt_env_open(&e);
    static const char code[] = "fn main() { println!(\"hello\"); }";
    dc_input in = dc_input_code(code, sizeof code - 1, "rust");
    dc_pipeline_result r;
    assert_ok(dc_pipeline_embed(e.p, &in, &r));
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        bool takes = dc_model_accepts((dc_model_id)i, DC_INPUT_CODE);
        assert_int_equal(r.models[i].status, takes ? DC_RUN_OK : DC_RUN_SKIPPED);
        if (!takes) assert_non_null(strstr(r.models[i].detail, "code"));
    }
    assert_int_equal(r.fused.present_mask, r.ok_mask);
    dc_pipeline_result_free(&r);

    static const uint8_t png[] = {0x89, 'P', 'N', 'G', 13, 10, 26, 10, 1, 2, 3};
    dc_input img = dc_input_image(png, sizeof png, DC_IMAGE_PNG);
    assert_ok(dc_pipeline_embed(e.p, &img, &r)); /* E1 is not required: it takes no images */
    assert_int_equal(r.ok_mask, 1u << DC_MODEL_MULTIMODAL);
    dc_pipeline_result_free(&r);

    static const uint8_t pcm[8] = {0};
    dc_input au = dc_input_audio(pcm, sizeof pcm, 16000, 1);
    assert_status(dc_pipeline_embed(e.p, &au, &r), DC_ERR_UNSUPPORTED_MODALITY);
    assert_int_equal(r.ok_mask, 0);
    assert_null(r.models[0].vector);

    dc_input empty = dc_input_text("", 0, DC_ROLE_PASSAGE);
    assert_status(dc_pipeline_embed(e.p, &empty, &r), DC_ERR_EMPTY_INPUT);
    /* only the requested models */
    dc_embed_options o = {.model_mask = (1u << DC_MODEL_SEMANTIC) | (1u << DC_MODEL_HDC)};
    dc_input t = dc_input_text(fox, sizeof fox - 1, DC_ROLE_PASSAGE);
    assert_ok(dc_pipeline_embed_ex(e.p, &t, &o, &r));
    assert_int_equal(r.ok_mask, o.model_mask);
    assert_non_null(strstr(r.models[DC_MODEL_CODE].detail, "not requested"));
    dc_pipeline_result_free(&r);
    rt_env_close(&e);
}

static void test_deadline_with_slow_model(void **state) {
    (void)state;
    rt_env e;
    rt_env_init(&e, DC_ALL_MODELS_MASK);
    e.cfg.pipeline.deadline_ms = 400;
    rt_env_open(&e);
    assert_ok(dc_pipeline_load_model(e.p, DC_MODEL_CAUSAL)); /* load time is not the point */
    fake_ctl *slow = &e.ff->ctl[DC_MODEL_CAUSAL];
    atomic_store(&slow->hold, 1); /* E5 does not answer until released */
    dc_input in = dc_input_text(fox, sizeof fox - 1, DC_ROLE_PASSAGE);
    dc_pipeline_result r;
    uint64_t t0 = dc_rt_now_ns();
    assert_ok(dc_pipeline_embed(e.p, &in, &r));
    /* it waited the deadline, then returned without E5, which is still running */
    assert_true((dc_rt_now_ns() - t0) / 1000000 >= 400);
    assert_int_equal(atomic_load(&slow->in_flight), 1);
    assert_int_equal(r.models[DC_MODEL_CAUSAL].status, DC_RUN_TIMEOUT);
    assert_int_equal(r.models[DC_MODEL_CAUSAL].error, DC_ERR_TIMEOUT);
    assert_null(r.models[DC_MODEL_CAUSAL].vector);
    assert_int_equal(r.timeout_mask, 1u << DC_MODEL_CAUSAL);
    assert_int_equal(r.fused.present_mask, DC_ALL_MODELS_MASK & ~(1u << DC_MODEL_CAUSAL));
    dc_pipeline_result_free(&r);
    /* a degraded result is not cached */
    assert_ok(dc_pipeline_embed(e.p, &in, &r));
    assert_false(r.cache_hit);
    dc_pipeline_result_free(&r);
    dc_pipeline_stats s;
    assert_ok(dc_pipeline_stats_get(e.p, &s));
    assert_int_equal(s.model[DC_MODEL_CAUSAL].timeouts, 2);
    atomic_store(&slow->hold, 0);
    rt_env_close(&e); /* waits for the slow batches; the abandoned results are freed */
}

static void test_policy_required_and_minimum(void **state) {
    (void)state;
    rt_env e;
    rt_env_init(&e, DC_ALL_MODELS_MASK);
    e.cfg.pipeline.deadline_ms = 300;
    rt_env_open(&e);
    assert_ok(dc_pipeline_load_model(e.p, DC_MODEL_SEMANTIC));
    fake_ctl *e1 = &e.ff->ctl[DC_MODEL_SEMANTIC];
    atomic_store(&e1->hold, 1);
    dc_input in = dc_input_text(fox, sizeof fox - 1, DC_ROLE_PASSAGE);
    dc_pipeline_result r;
    assert_status(dc_pipeline_embed(e.p, &in, &r), DC_ERR_TIMEOUT);
    assert_detail_contains("E1");
    assert_null(r.models[DC_MODEL_ENTITY].vector); /* nothing half-filled on failure */
    atomic_store(&e1->hold, 0);
    fake_wait_until(atomic_load(&e1->in_flight) == 0);
    assert_int_equal(atomic_load(&e1->in_flight), 0);

    /* the rest does not depend on time: a deadline no model can miss */
    dc_embed_options o = {.deadline_ms = 60000};
    /* a failing required model: its status comes back */
    atomic_store(&e1->fail_embed, 1);
    assert_status(dc_pipeline_embed_ex(e.p, &in, &o, &r), DC_ERR_INTERNAL);
    assert_detail_contains("fake embed failure");
    atomic_store(&e.ff->ctl[DC_MODEL_SEMANTIC].fail_embed, 0);

    /* fewer than min_models answers */
    for (int i = DC_MODEL_CAUSAL; i <= DC_MODEL_MULTIMODAL; i++)
        atomic_store(&e.ff->ctl[i].fail_embed, 1);
    dc_input other = dc_input_text("another text", 12, DC_ROLE_PASSAGE);
    assert_status(dc_pipeline_embed_ex(e.p, &other, &o, &r), DC_ERR_INTERNAL);
    assert_detail_contains("only 6 of 12");
    dc_pipeline_stats s;
    assert_ok(dc_pipeline_stats_get(e.p, &s));
    assert_int_equal(s.errors, 3);
    assert_true(s.model[DC_MODEL_CAUSAL].failures >= 1);
    rt_env_close(&e);
}

static void test_load_failure(void **state) {
    (void)state;
    rt_env e;
    rt_env_init(&e, DC_ALL_MODELS_MASK);
    atomic_store(&e.ff->ctl[DC_MODEL_CODE].fail_load, 1);
    rt_env_open(&e);
    dc_input in = dc_input_text(fox, sizeof fox - 1, DC_ROLE_PASSAGE);
    dc_pipeline_result r;
    assert_ok(dc_pipeline_embed(e.p, &in, &r));
    assert_int_equal(r.models[DC_MODEL_CODE].status, DC_RUN_FAILED);
    assert_int_equal(r.models[DC_MODEL_CODE].error, DC_ERR_MODEL_LOAD);
    assert_non_null(strstr(r.models[DC_MODEL_CODE].detail, "fake load failure"));
    assert_false((r.fused.present_mask >> DC_MODEL_CODE) & 1u);
    dc_pipeline_result_free(&r);
    dc_pipeline_health h;
    assert_ok(dc_pipeline_health_get(e.p, &h));
    assert_true((h.failed_mask >> DC_MODEL_CODE) & 1u);
    assert_false(h.healthy == true && h.models_ready == 12);
    /* the required model failing to load fails the request with its status */
    atomic_store(&e.ff->ctl[DC_MODEL_SEMANTIC].fail_load, 1);
    assert_ok(dc_pipeline_unload_model(e.p, DC_MODEL_SEMANTIC));
    dc_input other = dc_input_text("other", 5, DC_ROLE_PASSAGE);
    assert_status(dc_pipeline_embed(e.p, &other, &r), DC_ERR_MODEL_LOAD);
    assert_detail_contains("E1");
    rt_env_close(&e);
    assert_true(atomic_load(&e.warnings) >= 2);
}

static void test_memory_budget(void **state) {
    (void)state;
    rt_env e;
    rt_env_init(&e, DC_ALL_MODELS_MASK);
    e.opt.memory_budget_bytes = 6u << 20; /* 6 of the 12 fake models (1 MiB each) */
    e.cfg.models.preload[0] = DC_MODEL_SEMANTIC;
    e.cfg.models.preload_count = 1;
    e.cfg.batch.max_batch_size = 1;
    rt_env_open(&e);
    assert_true(dc_pipeline_load_model(e.p, DC_MODEL_SEMANTIC) == DC_OK);
    dc_input in = dc_input_text(fox, sizeof fox - 1, DC_ROLE_PASSAGE);
    dc_pipeline_result r;
    dc_status st = dc_pipeline_embed(e.p, &in, &r);
    assert_int_equal(st, DC_ERR_MEMORY_BUDGET_EXCEEDED); /* 6 answered, 7 needed */
    assert_detail_contains("only 6 of 12");
    rt_env_close(&e);

    rt_env_init(&e, DC_ALL_MODELS_MASK);
    e.cfg.models.memory_budget_bytes = 6u << 20; /* the same budget from [models] */
    e.cfg.pipeline.min_models = 3;
    e.cfg.models.preload[0] = DC_MODEL_SEMANTIC; /* the required model gets its share first */
    e.cfg.models.preload_count = 1;
    rt_env_open(&e);
    assert_ok(dc_pipeline_embed(e.p, &in, &r));
    int refused = 0;
    for (int i = 0; i < DC_NUM_MODELS; i++)
        if (r.models[i].status == DC_RUN_FAILED) {
            assert_int_equal(r.models[i].error, DC_ERR_MEMORY_BUDGET_EXCEEDED);
            refused++;
        }
    assert_int_equal(refused, 6);
    assert_int_equal(__builtin_popcount(r.ok_mask), 6);
    dc_pipeline_result_free(&r);
    dc_pipeline_stats s;
    assert_ok(dc_pipeline_stats_get(e.p, &s));
    assert_true(s.memory_bytes <= 6u << 20);
    assert_int_equal(s.memory_budget_bytes, 6u << 20);
    rt_env_close(&e);

    /* dc_pipeline_options wins over the configuration; 0 in both is the automatic budget */
    rt_env_init(&e, DC_ALL_MODELS_MASK);
    e.cfg.models.memory_budget_bytes = 6u << 20;
    e.opt.memory_budget_bytes = 9u << 20;
    rt_env_open(&e);
    assert_ok(dc_pipeline_stats_get(e.p, &s));
    assert_int_equal(s.memory_budget_bytes, 9u << 20);
    rt_env_close(&e);
    rt_env_init(&e, DC_ALL_MODELS_MASK);
    rt_env_open(&e);
    assert_ok(dc_pipeline_stats_get(e.p, &s));
    assert_true(s.memory_budget_bytes > 0 && s.memory_budget_bytes <= 16ull << 30);
    rt_env_close(&e);
}

typedef struct call_arg {
    dc_pipeline *p;
    dc_status st;
    fake_ctl *held;       /* the model the test holds */
    bool held_at_return;  /* the call came back while that model still held its batch */
    atomic_int *returned;
    int idx;
} call_arg;

static void *call_thread(void *a) {
    call_arg *c = a;
    char text[32];
    int len = snprintf(text, sizeof text, "request %d", c->idx);
    dc_input in = dc_input_text(text, (size_t)len, DC_ROLE_PASSAGE);
    dc_pipeline_result r;
    c->st = dc_pipeline_embed(c->p, &in, &r);
    c->held_at_return = atomic_load(&c->held->hold) != 0;
    atomic_fetch_add(c->returned, 1);
    dc_pipeline_result_free(&r);
    return NULL;
}

/* Every call is accounted for: taken by E8 or refused and returned. E8's in-flight count is
 * read before the queue depth, so a job moving from the queue to E8 between the two reads is
 * counted nowhere (the wait goes on) rather than twice (the wait would end early). */
static bool overload_settled(rt_env *e, fake_ctl *e8, atomic_int *returned, int n) {
    uint64_t running = (uint64_t)atomic_load(&e8->in_flight);
    dc_pipeline_stats s;
    if (dc_pipeline_stats_get(e->p, &s) != DC_OK) return false;
    return s.overloaded + s.model[DC_MODEL_GRAPH].queue_depth + running == (uint64_t)n &&
           (uint64_t)atomic_load(returned) == s.overloaded;
}

static void test_overload(void **state) {
    (void)state;
    rt_env e;
    rt_env_init(&e, DC_ALL_MODELS_MASK);
    /* only E1 (which cannot be disabled) and E8, the last queue a call reaches: a call is
     * then refused before E8 or by E8, never after E8 took its job, so the count below is
     * exact. With E9..E12 a call that E8 took could still be refused after the wait ended. */
    for (int m = 0; m < DC_NUM_MODELS; m++)
        e.cfg.models.model[m].enabled = m == DC_MODEL_SEMANTIC || m == DC_MODEL_GRAPH;
    e.cfg.pipeline.min_models = 2;
    e.cfg.batch.queue_capacity = 2;
    e.cfg.batch.max_batch_size = 1;
    e.cfg.batch.min_batch_size = 1;
    e.cfg.pipeline.deadline_ms = 600000;
    rt_env_open(&e);
    assert_ok(dc_pipeline_load_model(e.p, DC_MODEL_GRAPH));
    fake_ctl *e8 = &e.ff->ctl[DC_MODEL_GRAPH];
    atomic_store(&e8->hold, 1);
    enum { N = 8 };
    pthread_t th[N];
    call_arg a[N];
    atomic_int returned;
    atomic_init(&returned, 0);
    for (int i = 0; i < N; i++) {
        a[i] = (call_arg){e.p, DC_OK, e8, false, &returned, i};
        assert_int_equal(pthread_create(&th[i], NULL, call_thread, &a[i]), 0);
    }
    /* every call was either taken by E8 (running or waiting) or refused and back */
    dc_pipeline_stats s;
    fake_wait_until(overload_settled(&e, e8, &returned, N));
    atomic_store(&e8->hold, 0);
    int ok = 0, over = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (a[i].st == DC_OK) ok++;
        if (a[i].st == DC_ERR_OVERLOADED) {
            over++;
            assert_true(a[i].held_at_return); /* refused at once, not after a wait */
        }
    }
    assert_int_equal(ok + over, N);
    assert_true(over >= 1 && ok >= 1);
    assert_ok(dc_pipeline_stats_get(e.p, &s));
    assert_int_equal(s.overloaded, (uint64_t)over);
    rt_env_close(&e);
}

typedef struct cancel_arg {
    dc_cancel_token *t;
    fake_ctl *held;
} cancel_arg;

/* Cancels once the held model runs the caller's job. */
static void *cancel_thread(void *a) {
    cancel_arg *c = a;
    fake_wait_until(atomic_load(&c->held->in_flight) > 0);
    dc_cancel_token_cancel(c->t);
    return NULL;
}

static void test_cancellation(void **state) {
    (void)state;
    rt_env e;
    rt_env_init(&e, DC_ALL_MODELS_MASK);
    e.cfg.pipeline.deadline_ms = 600000; /* only the cancellation can end the wait */
    rt_env_open(&e);
    assert_ok(dc_pipeline_load_model(e.p, DC_MODEL_ENTITY));
    fake_ctl *e11 = &e.ff->ctl[DC_MODEL_ENTITY];
    atomic_store(&e11->hold, 1);
    dc_cancel_token *tok;
    assert_ok(dc_cancel_token_create(&tok));
    cancel_arg ca = {tok, e11};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, cancel_thread, &ca), 0);
    dc_input in = dc_input_text(fox, sizeof fox - 1, DC_ROLE_PASSAGE);
    dc_embed_options o = {.cancel = tok};
    dc_pipeline_result r;
    assert_status(dc_pipeline_embed_ex(e.p, &in, &o, &r), DC_ERR_CANCELLED);
    assert_detail_contains("cancelled");
    assert_int_equal(atomic_load(&e11->in_flight), 1); /* returned while E11 still runs */
    assert_null(r.models[DC_MODEL_SEMANTIC].vector);
    pthread_join(th, NULL);
    /* a second caller gives up while its E11 job is still queued: the job never runs */
    dc_cancel_token *tok2;
    assert_ok(dc_cancel_token_create(&tok2));
    dc_cancel_token_cancel(tok2);
    dc_input in2 = dc_input_text("queued behind", 13, DC_ROLE_PASSAGE);
    dc_embed_options o2 = {.cancel = tok2};
    assert_status(dc_pipeline_embed_ex(e.p, &in2, &o2, &r), DC_ERR_CANCELLED);
    atomic_store(&e11->hold, 0);
    dc_cancel_token_destroy(tok);
    dc_cancel_token_destroy(tok2);
    dc_pipeline_stats s;
    /* the running job's result is discarded, the queued one dropped unrun */
    fake_wait_until(dc_pipeline_stats_get(e.p, &s) == DC_OK && s.model[DC_MODEL_ENTITY].cancelled == 2);
    assert_ok(dc_pipeline_stats_get(e.p, &s));
    assert_int_equal(s.model[DC_MODEL_ENTITY].cancelled, 2);
    assert_int_equal(atomic_load(&e11->items), 1);
    assert_int_equal(s.cancelled, 2);
    assert_int_equal(s.timeouts, 0);
    assert_int_equal(s.model[DC_MODEL_ENTITY].timeouts, 0); /* a caller's choice, not the model's */
    rt_env_close(&e);
}

static void test_embed_batch(void **state) {
    (void)state;
    rt_env e;
    rt_env_init(&e, DC_ALL_MODELS_MASK);
    e.cfg.batch.max_wait_ms = 20;
    rt_env_open(&e);
    enum { N = 10 };
    char texts[N][40];
    dc_input in[N];
    for (int i = 0; i < N; i++) {
        int len = snprintf(texts[i], sizeof texts[i], "batch item number %d", i);
        in[i] = dc_input_text(texts[i], (size_t)len, DC_ROLE_PASSAGE);
    }
    in[4] = dc_input_text("", 0, DC_ROLE_PASSAGE); /* invalid */
    dc_pipeline_result r[N];
    dc_status st[N];
    assert_status(dc_pipeline_embed_batch(e.p, in, N, r, st), DC_ERR_EMPTY_INPUT);
    assert_detail_contains("input 4");
    for (int i = 0; i < N; i++) {
        if (i == 4) {
            assert_int_equal(st[i], DC_ERR_EMPTY_INPUT);
            assert_null(r[i].models[0].vector);
            continue;
        }
        assert_int_equal(st[i], DC_OK);
        assert_int_equal(r[i].ok_mask, DC_ALL_MODELS_MASK);
        rt_check_models(&r[i], texts[i], strlen(texts[i]), 1);
        dc_pipeline_result_free(&r[i]);
    }
    assert_true(atomic_load(&e.ff->ctl[DC_MODEL_SEMANTIC].max_batch) > 1); /* they shared batches */
    rt_env_close(&e);
}

static void test_provider(void **state) {
    (void)state;
    rt_env e;
    rt_env_init(&e, DC_ALL_MODELS_MASK);
    rt_env_open(&e);
    dc_embedding_provider pv;
    assert_ok(dc_pipeline_provider(e.p, &pv));
    assert_int_equal(pv.dimension(pv.ctx), 1536);
    assert_string_equal(pv.model_name(pv.ctx), "fusemoe-12-pipeline");
    assert_int_equal(pv.max_tokens(pv.ctx), 512);
    float *v = malloc(3 * DC_DIM_FUSED * sizeof *v);
    assert_ok(pv.embed(pv.ctx, fox, sizeof fox - 1, v));
    assert_true(fabs(rt_norm(v, DC_DIM_FUSED) - 1.0) < 1e-4);
    const char *texts[3] = {"alpha", fox, "gamma"};
    size_t lens[3] = {5, sizeof fox - 1, 5};
    assert_ok(pv.embed_batch(pv.ctx, texts, lens, 3, v + 0));
    float *one = malloc(DC_DIM_FUSED * sizeof *one);
    assert_ok(pv.embed(pv.ctx, fox, sizeof fox - 1, one)); /* a cache hit of the same text */
    assert_memory_equal(v + DC_DIM_FUSED, one, DC_DIM_FUSED * sizeof *one);
    free(one);
    free(v);
    rt_env_close(&e);
}

static void test_missing_e1(void **state) {
    (void)state;
    rt_env e;
    rt_env_init(&e, DC_ALL_MODELS_MASK & ~(1u << DC_MODEL_SEMANTIC));
    rt_env_open(&e); /* opens degraded, with a warning */
    assert_true(atomic_load(&e.warnings) >= 1);
    dc_input in = dc_input_text(fox, sizeof fox - 1, DC_ROLE_PASSAGE);
    dc_pipeline_result r;
    assert_ok(dc_pipeline_embed(e.p, &in, &r));
    assert_int_equal(r.models[DC_MODEL_SEMANTIC].status, DC_RUN_SKIPPED);
    assert_false(r.fused.present_mask & 1u);
    dc_pipeline_result_free(&r);
    dc_pipeline_health h;
    assert_ok(dc_pipeline_health_get(e.p, &h));
    assert_false(h.minimum_viable);
    assert_true(h.models_ready == 11);
    assert_true(h.healthy); /* 11 of 12 ready meets the seed's >= 10 */
    rt_env_close(&e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embed_text),
        cmocka_unit_test(test_cache_hit_identical_bytes),
        cmocka_unit_test(test_input_types),
        cmocka_unit_test(test_deadline_with_slow_model),
        cmocka_unit_test(test_policy_required_and_minimum),
        cmocka_unit_test(test_load_failure),
        cmocka_unit_test(test_memory_budget),
        cmocka_unit_test(test_overload),
        cmocka_unit_test(test_cancellation),
        cmocka_unit_test(test_embed_batch),
        cmocka_unit_test(test_provider),
        cmocka_unit_test(test_missing_e1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

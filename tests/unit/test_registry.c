/* Model registry: availability, lazy load once under concurrency, memory budget, load
 * failure and retry, unload while borrowed, hot swap with validation and rollback, the built-in
 * factory's folder discovery (plain and huggingface_hub cache layouts). */
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/factory.h"
#include "runtime/registry.h"
#include "../tools/bert_fixture.c"
#include "test_runtime_fake.h"


/* ThreadSanitizer: oneDNN is not instrumented, so the lazy set-up of its primitive cache when
 * two models load in parallel shows up as a race inside libdnnl; libgomp is not either, so the
 * hand-off of a parallel-for's job to its OpenMP team (a barrier TSan cannot see) shows up as a
 * race in cpu_parallel.c. Our own threads stay checked. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void) {
    return "called_from_lib:libdnnl.so.2\n"
           "race:run_pieces\n"
           "race:dc_cpu_parallel_for\n";
}

static dc_registry *make_registry(fake_factory *ff, uint64_t budget, dc_config *cfg_out) {
    dc_config cfg;
    dc_config_defaults(&cfg);
    if (cfg_out) *cfg_out = cfg;
    dc_registry_options o = {.factory = &ff->base,
                             .memory_budget_bytes = budget,
                             .max_concurrent_loads = 2,
                             .load_retry_ms = 0,
                             .drain_timeout_ms = 200};
    dc_registry *r = NULL;
    assert_ok(dc_registry_create(&cfg, &o, NULL, &r));
    return r;
}

static void test_availability(void **state) {
    (void)state;
    fake_factory *ff = fake_factory_new((1u << DC_MODEL_SEMANTIC) | (1u << DC_MODEL_HDC));
    dc_registry *r = make_registry(ff, 0, NULL);
    assert_int_equal(dc_registry_available_mask(r), (1u << DC_MODEL_SEMANTIC) | (1u << DC_MODEL_HDC));
    dc_rt_model *m = NULL;
    assert_status(dc_registry_acquire(r, DC_MODEL_CODE, true, &m), DC_ERR_MODEL_NOT_FOUND);
    assert_null(m);
    assert_detail_contains("E7");
    assert_status(dc_registry_acquire(r, DC_MODEL_HDC, false, &m), DC_ERR_NOT_INITIALIZED);
    assert_false(dc_registry_is_loaded(r, DC_MODEL_HDC));
    assert_int_equal(atomic_load(&ff->ctl[DC_MODEL_HDC].creates), 0); /* lazy: nothing built */
    dc_registry_destroy(r);
    free(ff);
}

typedef struct acq_arg {
    dc_registry *r;
    dc_status st;
} acq_arg;

static void *acquire_thread(void *p) {
    acq_arg *a = p;
    dc_rt_model *m = NULL;
    a->st = dc_registry_acquire(a->r, DC_MODEL_SEMANTIC, true, &m);
    if (a->st == DC_OK) {
        dc_model_embedding e;
        dc_input in = dc_input_text("x", 1, DC_ROLE_PASSAGE);
        if (dc_model_embed(m->model, &in, &e) != DC_OK) a->st = DC_ERR_INTERNAL;
        else dc_model_embedding_free(&e);
        dc_registry_release(a->r, m);
    }
    return NULL;
}

static void test_load_once_under_concurrency(void **state) {
    (void)state;
    fake_factory *ff = fake_factory_new(DC_ALL_MODELS_MASK);
    atomic_store(&ff->ctl[DC_MODEL_SEMANTIC].load_delay_ms, 80);
    dc_registry *r = make_registry(ff, 0, NULL);
    enum { N = 8 };
    pthread_t th[N];
    acq_arg a[N];
    for (int i = 0; i < N; i++) {
        a[i] = (acq_arg){r, DC_ERR_INTERNAL};
        assert_int_equal(pthread_create(&th[i], NULL, acquire_thread, &a[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(a[i].st, DC_OK);
    }
    assert_int_equal(atomic_load(&ff->ctl[DC_MODEL_SEMANTIC].creates), 1);
    assert_int_equal(atomic_load(&ff->ctl[DC_MODEL_SEMANTIC].loads), 1);
    dc_registry_stats s;
    dc_registry_stats_get(r, &s);
    assert_int_equal(s.loaded_count, 1);
    assert_int_equal(s.load_count, 1);
    assert_int_equal(s.model[DC_MODEL_SEMANTIC].state, DC_SLOT_LOADED);
    assert_int_equal(s.memory_bytes, 1u << 20);
    dc_registry_destroy(r);
    assert_int_equal(atomic_load(&ff->ctl[DC_MODEL_SEMANTIC].destroys), 1);
    free(ff);
}

static void test_memory_budget(void **state) {
    (void)state;
    fake_factory *ff = fake_factory_new(DC_ALL_MODELS_MASK);
    dc_registry *r = make_registry(ff, 3u << 20, NULL);
    assert_ok(dc_registry_load(r, DC_MODEL_SEMANTIC));
    assert_ok(dc_registry_load(r, DC_MODEL_TEMPORAL_RECENT));
    assert_ok(dc_registry_load(r, DC_MODEL_HDC));
    assert_status(dc_registry_load(r, DC_MODEL_CODE), DC_ERR_MEMORY_BUDGET_EXCEEDED);
    assert_detail_contains("budget");
    assert_int_equal(atomic_load(&ff->ctl[DC_MODEL_CODE].creates), 0); /* refused before loading */
    assert_false(dc_registry_is_loaded(r, DC_MODEL_CODE));
    /* the refusal is not sticky: unloading makes room */
    assert_ok(dc_registry_unload(r, DC_MODEL_HDC));
    assert_int_equal(atomic_load(&ff->ctl[DC_MODEL_HDC].destroys), 1);
    assert_ok(dc_registry_load(r, DC_MODEL_CODE));
    /* a model whose measured size breaks the budget after loading is refused and freed */
    atomic_store(&ff->ctl[DC_MODEL_GRAPH].bytes, 64u << 20);
    assert_ok(dc_registry_unload(r, DC_MODEL_CODE));
    assert_status(dc_registry_load(r, DC_MODEL_GRAPH), DC_ERR_MEMORY_BUDGET_EXCEEDED);
    assert_int_equal(atomic_load(&ff->ctl[DC_MODEL_GRAPH].destroys), 1);
    dc_registry_stats s;
    dc_registry_stats_get(r, &s);
    assert_int_equal(s.memory_bytes, 2u << 20);
    assert_true(s.memory_peak_bytes <= 3u << 20);
    dc_registry_destroy(r);
    free(ff);
}

static void test_load_failure_and_retry(void **state) {
    (void)state;
    fake_factory *ff = fake_factory_new(DC_ALL_MODELS_MASK);
    atomic_store(&ff->ctl[DC_MODEL_ENTITY].fail_load, 1);
    dc_registry *r = make_registry(ff, 0, NULL);
    assert_status(dc_registry_load(r, DC_MODEL_ENTITY), DC_ERR_MODEL_LOAD);
    dc_registry_stats s;
    dc_registry_stats_get(r, &s);
    assert_int_equal(s.model[DC_MODEL_ENTITY].state, DC_SLOT_FAILED);
    assert_int_equal(s.model[DC_MODEL_ENTITY].load_failures, 1);
    assert_int_equal(s.failed_count, 1);
    assert_int_equal(s.memory_bytes, 0); /* the reservation was given back */
    assert_int_equal(atomic_load(&ff->ctl[DC_MODEL_ENTITY].destroys), 1);
    atomic_store(&ff->ctl[DC_MODEL_ENTITY].fail_load, 0);
    assert_ok(dc_registry_load(r, DC_MODEL_ENTITY)); /* retry interval 0 */
    assert_true(dc_registry_is_loaded(r, DC_MODEL_ENTITY));
    dc_registry_destroy(r);
    free(ff);
}

static void test_unload_while_borrowed(void **state) {
    (void)state;
    fake_factory *ff = fake_factory_new(DC_ALL_MODELS_MASK);
    dc_registry *r = make_registry(ff, 0, NULL);
    dc_rt_model *m = NULL;
    assert_ok(dc_registry_acquire(r, DC_MODEL_GRAPH, true, &m));
    assert_ok(dc_registry_unload(r, DC_MODEL_GRAPH));
    assert_false(dc_registry_is_loaded(r, DC_MODEL_GRAPH));
    assert_int_equal(atomic_load(&ff->ctl[DC_MODEL_GRAPH].destroys), 0); /* still borrowed */
    dc_model_embedding e;
    dc_input in = dc_input_text("still here", 10, DC_ROLE_PASSAGE);
    assert_ok(dc_model_embed(m->model, &in, &e));
    dc_model_embedding_free(&e);
    dc_registry_release(r, m);
    assert_int_equal(atomic_load(&ff->ctl[DC_MODEL_GRAPH].destroys), 1);
    dc_registry_stats s;
    dc_registry_stats_get(r, &s);
    assert_int_equal(s.memory_bytes, 0);
    assert_int_equal(s.unload_count, 1);
    dc_registry_destroy(r);
    free(ff);
}

static void test_swap_validates_and_rolls_back(void **state) {
    (void)state;
    fake_factory *ff = fake_factory_new(DC_ALL_MODELS_MASK);
    dc_config cfg;
    dc_registry *r = make_registry(ff, 0, &cfg);
    assert_ok(dc_registry_load(r, DC_MODEL_ENTITY));
    dc_hash128 v1 = dc_registry_version(r, DC_MODEL_ENTITY);
    dc_rt_model *old = NULL;
    assert_ok(dc_registry_acquire(r, DC_MODEL_ENTITY, false, &old));

    /* a broken replacement (zero output) is rejected; the old model stays */
    dc_model_config nc = cfg.models.model[DC_MODEL_ENTITY];
    snprintf(nc.path, sizeof nc.path, "2");
    atomic_store(&ff->ctl[DC_MODEL_ENTITY].zero_output, 1);
    assert_status(dc_registry_swap(r, DC_MODEL_ENTITY, &nc), DC_ERR_INVALID_VALUE);
    assert_detail_contains("rolled back");
    atomic_store(&ff->ctl[DC_MODEL_ENTITY].zero_output, 0);
    dc_rt_model *cur = NULL;
    assert_ok(dc_registry_acquire(r, DC_MODEL_ENTITY, false, &cur));
    assert_ptr_equal(cur, old);
    dc_registry_release(r, cur);
    dc_registry_stats s;
    dc_registry_stats_get(r, &s);
    assert_int_equal(s.model[DC_MODEL_ENTITY].swap_phase, DC_SWAP_FAILED);
    assert_int_equal(s.memory_bytes, 1u << 20);

    /* a good replacement goes in; the borrowed old one lives until released */
    atomic_store(&ff->ctl[DC_MODEL_ENTITY].zero_output, 0);
    int destroyed = atomic_load(&ff->ctl[DC_MODEL_ENTITY].destroys);
    assert_ok(dc_registry_swap(r, DC_MODEL_ENTITY, &nc)); /* drain times out: old still held */
    assert_int_equal(atomic_load(&ff->ctl[DC_MODEL_ENTITY].destroys), destroyed);
    assert_ok(dc_registry_acquire(r, DC_MODEL_ENTITY, false, &cur));
    assert_ptr_not_equal(cur, old);
    assert_false(dc_hash128_equal(dc_registry_version(r, DC_MODEL_ENTITY), v1));
    dc_registry_stats_get(r, &s);
    assert_int_equal(s.memory_bytes, 2u << 20); /* both charged while the old is borrowed */
    assert_int_equal(s.model[DC_MODEL_ENTITY].swap_phase, DC_SWAP_COMPLETE);
    dc_registry_release(r, old);
    assert_int_equal(atomic_load(&ff->ctl[DC_MODEL_ENTITY].destroys), destroyed + 1);
    dc_registry_stats_get(r, &s);
    assert_int_equal(s.memory_bytes, 1u << 20);
    dc_registry_release(r, cur);
    dc_registry_destroy(r);
    free(ff);
}

static void test_swap_budget(void **state) {
    (void)state;
    fake_factory *ff = fake_factory_new(DC_ALL_MODELS_MASK);
    dc_config cfg;
    dc_registry *r = make_registry(ff, 1u << 20, &cfg);
    assert_ok(dc_registry_load(r, DC_MODEL_HDC));
    dc_model_config nc = cfg.models.model[DC_MODEL_HDC];
    snprintf(nc.path, sizeof nc.path, "3");
    assert_status(dc_registry_swap(r, DC_MODEL_HDC, &nc), DC_ERR_MEMORY_BUDGET_EXCEEDED);
    assert_true(dc_registry_is_loaded(r, DC_MODEL_HDC));
    dc_registry_destroy(r);
    free(ff);
}

/* ---- built-in factory ---- */

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_builtin_factory_discovery(void **state) {
    (void)state;
    char root[] = "/tmp/dc_reg_XXXXXX";
    assert_non_null(mkdtemp(root));
    char p[4096];
    dc_fixture_spec spec;
    /* E11 as a plain folder named after the model */
    assert_true(dc_fixture_named("e11", &spec));
    snprintf(p, sizeof p, "%s/entity", root);
    assert_int_equal(dc_fixture_write(p, &spec), 0);
    /* E8 in the huggingface_hub cache layout */
    assert_true(dc_fixture_named("e8", &spec));
    snprintf(p, sizeof p, "%s/hub/models--sentence-transformers--paraphrase-MiniLM-L6-v2/snapshots/abc123", root);
    rt_mkdir_p(p);
    assert_int_equal(dc_fixture_write(p, &spec), 0);
    snprintf(p, sizeof p, "%s/hub/models--sentence-transformers--paraphrase-MiniLM-L6-v2/refs", root);
    rt_mkdir_p(p);
    strcat(p, "/main");
    write_text(p, "abc123\n");

    dc_config cfg;
    dc_config_defaults(&cfg);
    snprintf(cfg.models.models_dir, sizeof cfg.models.models_dir, "%s", root);
    dc_builtin_factory *f = NULL;
    assert_ok(dc_builtin_factory_create(&cfg, &f));
    uint32_t want = (1u << DC_MODEL_TEMPORAL_RECENT) | (1u << DC_MODEL_TEMPORAL_PERIODIC) |
                    (1u << DC_MODEL_TEMPORAL_POSITIONAL) | (1u << DC_MODEL_HDC) |
                    (1u << DC_MODEL_ENTITY) | (1u << DC_MODEL_GRAPH);
    assert_int_equal(f->base.supported_mask, want);
    assert_non_null(strstr(f->reason[DC_MODEL_SEMANTIC], "no model folder"));

    dc_registry_options o = {.factory = &f->base, .factory_is_builtin = true,
                             .max_concurrent_loads = 2, .drain_timeout_ms = 1000};
    dc_registry *r = NULL;
    assert_ok(dc_registry_create(&cfg, &o, (const char (*)[256])f->reason, &r));
    assert_status(dc_registry_load(r, DC_MODEL_SEMANTIC), DC_ERR_MODEL_NOT_FOUND);
    assert_detail_contains("no model folder");
    assert_ok(dc_registry_load_all(r, DC_ALL_MODELS_MASK));
    assert_int_equal(dc_registry_loaded_mask(r), want);
    dc_rt_model *m = NULL;
    assert_ok(dc_registry_acquire(r, DC_MODEL_GRAPH, false, &m));
    assert_true(m->builtin_pretrained);
    dc_input in = dc_input_text("a graph of entities", 19, DC_ROLE_PASSAGE);
    dc_model_embedding e;
    assert_ok(dc_model_embed(m->model, &in, &e));
    assert_int_equal(e.dim, DC_DIM_GRAPH);
    dc_model_embedding_free(&e);
    dc_registry_release(r, m);
    dc_registry_stats s;
    dc_registry_stats_get(r, &s);
    assert_true(s.model[DC_MODEL_ENTITY].bytes > 0);
    assert_true(s.memory_bytes >= s.model[DC_MODEL_ENTITY].bytes + s.model[DC_MODEL_GRAPH].bytes);

    /* versions name the weights: a different folder gives a different version */
    dc_hash128 v_entity = dc_registry_version(r, DC_MODEL_ENTITY);
    dc_model_config mc = cfg.models.model[DC_MODEL_ENTITY];
    snprintf(mc.path, sizeof mc.path, "%s/hub/models--sentence-transformers--paraphrase-MiniLM-L6-v2", root);
    assert_false(dc_hash128_equal(v_entity, dc_registry_config_version(DC_MODEL_ENTITY, &mc, root)));
    /* a weight format the CPU backend lacks is refused clearly, not silently run in fp32 */
    mc = cfg.models.model[DC_MODEL_ENTITY];
    mc.quantization = DC_QUANTIZATION_FP8;
    assert_status(dc_registry_swap(r, DC_MODEL_ENTITY, &mc), DC_ERR_UNSUPPORTED_FORMAT);
    assert_true(dc_registry_is_loaded(r, DC_MODEL_ENTITY));
    /* int8 runs: the swap loads the quantised model under a new version, and it holds less */
    uint64_t fp32_bytes = s.model[DC_MODEL_ENTITY].bytes;
    mc.quantization = DC_QUANTIZATION_INT8;
    assert_ok(dc_registry_swap(r, DC_MODEL_ENTITY, &mc));
    assert_false(dc_hash128_equal(v_entity, dc_registry_version(r, DC_MODEL_ENTITY)));
    dc_registry_stats_get(r, &s);
    assert_true(s.model[DC_MODEL_ENTITY].bytes < fp32_bytes);

    dc_registry_destroy(r);
    dc_builtin_factory_destroy(f);
    rt_remove_tree(root);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_availability),
        cmocka_unit_test(test_load_once_under_concurrency),
        cmocka_unit_test(test_memory_budget),
        cmocka_unit_test(test_load_failure_and_retry),
        cmocka_unit_test(test_unload_while_borrowed),
        cmocka_unit_test(test_swap_validates_and_rolls_back),
        cmocka_unit_test(test_swap_budget),
        cmocka_unit_test(test_builtin_factory_discovery),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

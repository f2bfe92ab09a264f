/* The model interface rules, exercised through a fake model that counts calls. */
#include <math.h>

#include "core/error.h"
#include "test_support.h"

typedef struct fake {
    int loads, unloads, embeds, destroyed;
    dc_status load_result;
    uint32_t return_dim;    /* width the fake reports (to simulate a buggy model) */
    bool return_nan;
    bool fail_midway;       /* embed_batch fails after writing the first item */
} fake;

static dc_status fake_load(dc_model *m) {
    fake *f = m->impl;
    f->loads++;
    return f->load_result == DC_OK ? DC_OK : dc_fail(f->load_result, "weights missing");
}
static dc_status fake_unload(dc_model *m) {
    ((fake *)m->impl)->unloads++;
    return DC_OK;
}
static dc_status fake_embed(dc_model *m, const dc_input *in, size_t n, dc_model_embedding *out) {
    fake *f = m->impl;
    f->embeds++;
    float v[DC_DIM_SEMANTIC];
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < DC_DIM_SEMANTIC; k++) v[k] = (float)in[i].content_len + (float)k;
        if (f->return_nan) v[0] = NAN;
        dc_status st = dc_model_embedding_init(&out[i], m->info->id, v, f->return_dim);
        if (st != DC_OK) return st;
        if (f->fail_midway) return dc_fail(DC_ERR_INTERNAL, "simulated failure after item 0");
    }
    return DC_OK;
}
static size_t fake_memory(const dc_model *m) {
    (void)m;
    return 4096;
}
static void fake_destroy(dc_model *m) {
    ((fake *)m->impl)->destroyed++;
    free(m);
}
static const dc_model_vtable fake_vt = {fake_load, fake_unload, fake_embed, fake_memory,
                                        fake_destroy};

static dc_model *make(fake *f) {
    memset(f, 0, sizeof *f);
    f->return_dim = DC_DIM_SEMANTIC;
    dc_model *m = malloc(sizeof *m);
    assert_ok(dc_model_init(m, DC_MODEL_SEMANTIC, &fake_vt, f));
    return m;
}

static void test_facts_come_from_the_model_table(void **state) {
    (void)state;
    fake f;
    dc_model *m = make(&f);
    assert_int_equal(dc_model_id_of(m), DC_MODEL_SEMANTIC);
    assert_int_equal(dc_model_dimension(m), 1024);
    assert_int_equal(dc_model_max_tokens(m), 512);
    assert_true(dc_model_supports(m, DC_INPUT_TEXT));
    assert_false(dc_model_supports(m, DC_INPUT_IMAGE));
    assert_int_equal(dc_model_memory_usage(m), 0); /* nothing resident before load */
    dc_model_destroy(m);
    assert_int_equal(f.destroyed, 1);
}

static void test_embed_before_load_is_not_initialized(void **state) {
    (void)state;
    fake f;
    dc_model *m = make(&f);
    dc_input in = dc_input_text("hi", 2, DC_ROLE_PASSAGE);
    dc_model_embedding out;
    assert_status(dc_model_embed(m, &in, &out), DC_ERR_NOT_INITIALIZED);
    assert_detail_contains("E1");
    assert_int_equal(f.embeds, 0);
    dc_model_destroy(m);
}

static void test_load_is_idempotent_and_unload_on_destroy(void **state) {
    (void)state;
    fake f;
    dc_model *m = make(&f);
    assert_ok(dc_model_load(m));
    assert_ok(dc_model_load(m));
    assert_int_equal(f.loads, 1);
    assert_true(dc_model_is_loaded(m));
    assert_int_equal(dc_model_memory_usage(m), 4096);
    assert_ok(dc_model_unload(m));
    assert_ok(dc_model_unload(m));
    assert_int_equal(f.unloads, 1);
    assert_ok(dc_model_load(m));
    dc_model_destroy(m); /* a loaded model is unloaded before it is freed */
    assert_int_equal(f.unloads, 2);
}

static void test_failed_load_leaves_model_unloaded(void **state) {
    (void)state;
    fake f;
    dc_model *m = make(&f);
    f.load_result = DC_ERR_MODEL_LOAD;
    assert_status(dc_model_load(m), DC_ERR_MODEL_LOAD);
    assert_detail_contains("loading E1 (semantic): weights missing");
    assert_false(dc_model_is_loaded(m));
    dc_model_destroy(m);
    assert_int_equal(f.unloads, 0);
}

static void test_unsupported_modality_and_invalid_inputs(void **state) {
    (void)state;
    fake f;
    dc_model *m = make(&f);
    assert_ok(dc_model_load(m));
    static const uint8_t pcm[] = {1, 2};
    dc_input batch[3] = {dc_input_text("a", 1, DC_ROLE_PASSAGE), dc_input_text("b", 1, DC_ROLE_QUERY),
                         dc_input_audio(pcm, 2, 16000, 1)};
    dc_model_embedding out[3];
    assert_status(dc_model_embed_batch(m, batch, 3, out), DC_ERR_UNSUPPORTED_MODALITY);
    assert_detail_contains("audio");
    assert_detail_contains("item 2");
    batch[2] = dc_input_text("", 0, DC_ROLE_PASSAGE);
    assert_status(dc_model_embed_batch(m, batch, 3, out), DC_ERR_EMPTY_INPUT);
    assert_detail_contains("input 2");
    assert_int_equal(f.embeds, 0); /* nothing reached the model */
    dc_model_destroy(m);
}

static void test_batch_success(void **state) {
    (void)state;
    fake f;
    dc_model *m = make(&f);
    assert_ok(dc_model_load(m));
    dc_input batch[2] = {dc_input_text("ab", 2, DC_ROLE_PASSAGE), dc_input_text("abc", 3, DC_ROLE_QUERY)};
    dc_model_embedding out[2];
    assert_ok(dc_model_embed_batch(m, batch, 2, out));
    assert_int_equal(out[0].dim, 1024);
    assert_float_equal(out[1].vector[0], 3.0f, 0);
    for (int i = 0; i < 2; i++) dc_model_embedding_free(&out[i]);
    assert_ok(dc_model_embed_batch(m, NULL, 0, NULL)); /* empty batch is a no-op */
    dc_model_destroy(m);
}

static void test_wrong_width_or_nan_from_a_model_is_caught(void **state) {
    (void)state;
    fake f;
    dc_model *m = make(&f);
    assert_ok(dc_model_load(m));
    dc_input in = dc_input_text("x", 1, DC_ROLE_PASSAGE);
    dc_model_embedding out;
    f.return_dim = 1000;
    assert_status(dc_model_embed(m, &in, &out), DC_ERR_INVALID_DIMENSION);
    assert_null(out.vector); /* freed, so nothing leaks (checked under ASan) */
    f.return_dim = DC_DIM_SEMANTIC;
    f.return_nan = true;
    assert_status(dc_model_embed(m, &in, &out), DC_ERR_INVALID_VALUE);
    f.return_nan = false;
    f.fail_midway = true;
    assert_status(dc_model_embed(m, &in, &out), DC_ERR_INTERNAL);
    assert_null(out.vector);
    dc_model_destroy(m);
}

static dc_status factory_create(void *ctx, dc_model_id id, const struct dc_model_config *cfg,
                                dc_model **out) {
    (void)cfg;
    fake *f = ctx;
    memset(f, 0, sizeof *f);
    f->return_dim = dc_model_info_get(id)->dim;
    dc_model *m = malloc(sizeof *m);
    dc_status st = dc_model_init(m, id, &fake_vt, f);
    if (st != DC_OK) {
        free(m);
        return st;
    }
    *out = m;
    return DC_OK;
}

static void test_factory_checks_support(void **state) {
    (void)state;
    fake f;
    dc_model_factory fac = {&f, 1u << DC_MODEL_SEMANTIC, factory_create, NULL};
    dc_model *m = NULL;
    assert_ok(dc_model_factory_create(&fac, DC_MODEL_SEMANTIC, NULL, &m));
    assert_false(dc_model_is_loaded(m)); /* factories hand out unloaded models */
    dc_model_destroy(m);
    assert_status(dc_model_factory_create(&fac, DC_MODEL_CODE, NULL, &m), DC_ERR_MODEL_NOT_FOUND);
    assert_null(m);
    assert_status(dc_model_factory_create(&fac, (dc_model_id)20, NULL, &m), DC_ERR_MODEL_NOT_FOUND);
    /* without an estimator the table's conservative estimate is used */
    assert_int_equal(dc_model_factory_estimate_memory(&fac, DC_MODEL_SEMANTIC),
                     dc_model_info_get(DC_MODEL_SEMANTIC)->memory_estimate);
}

static void test_init_rejects_incomplete_vtables(void **state) {
    (void)state;
    dc_model m;
    dc_model_vtable partial = fake_vt;
    partial.embed_batch = NULL;
    assert_status(dc_model_init(&m, DC_MODEL_SEMANTIC, &partial, NULL), DC_ERR_INVALID_ARGUMENT);
    assert_status(dc_model_init(&m, (dc_model_id)12, &fake_vt, NULL), DC_ERR_MODEL_NOT_FOUND);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_facts_come_from_the_model_table),
        cmocka_unit_test(test_embed_before_load_is_not_initialized),
        cmocka_unit_test(test_load_is_idempotent_and_unload_on_destroy),
        cmocka_unit_test(test_failed_load_leaves_model_unloaded),
        cmocka_unit_test(test_unsupported_modality_and_invalid_inputs),
        cmocka_unit_test(test_batch_success),
        cmocka_unit_test(test_wrong_width_or_nan_from_a_model_is_caught),
        cmocka_unit_test(test_factory_checks_support),
        cmocka_unit_test(test_init_rejects_incomplete_vtables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#include <math.h>

#include "test_support.h"

static float *filled(uint32_t n, float v) {
    float *x = malloc(n * sizeof *x);
    for (uint32_t i = 0; i < n; i++) x[i] = v;
    return x;
}

static void test_init_copies_and_free_clears(void **state) {
    (void)state;
    float *v = filled(DC_DIM_ENTITY, 0.5f);
    dc_model_embedding e;
    assert_ok(dc_model_embedding_init(&e, DC_MODEL_ENTITY, v, DC_DIM_ENTITY));
    v[0] = 99.0f; /* the embedding owns its own copy */
    assert_float_equal(e.vector[0], 0.5f, 0);
    assert_int_equal(e.dim, DC_DIM_ENTITY);
    assert_ok(dc_model_embedding_validate(&e));
    dc_model_embedding_free(&e);
    assert_null(e.vector);
    dc_model_embedding_free(&e); /* double free is safe */
    free(v);
    assert_status(dc_model_embedding_init(&e, (dc_model_id)12, NULL, 0), DC_ERR_MODEL_NOT_FOUND);
}

static void test_validate_rejects_wrong_dimension(void **state) {
    (void)state;
    float v[10] = {0};
    dc_model_embedding e;
    assert_ok(dc_model_embedding_init(&e, DC_MODEL_SEMANTIC, v, 10));
    assert_status(dc_model_embedding_validate(&e), DC_ERR_INVALID_DIMENSION);
    assert_detail_contains("expected 1024");
    dc_model_embedding_free(&e);
}

static void test_validate_rejects_nan_and_inf_naming_index(void **state) {
    (void)state;
    float *v = filled(DC_DIM_GRAPH, 0.1f);
    v[17] = NAN;
    dc_model_embedding e;
    assert_ok(dc_model_embedding_init(&e, DC_MODEL_GRAPH, v, DC_DIM_GRAPH));
    assert_status(dc_model_embedding_validate(&e), DC_ERR_INVALID_VALUE);
    assert_detail_contains("[17] is NaN");
    e.vector[17] = INFINITY;
    assert_status(dc_model_embedding_validate(&e), DC_ERR_INVALID_VALUE);
    assert_detail_contains("infinite");
    dc_model_embedding_free(&e);
    free(v);
}

static void test_normalize_and_cosine(void **state) {
    (void)state;
    float v[4] = {3, 0, 4, 0};
    assert_float_equal(dc_vec_l2_norm(v, 4), 5.0, 1e-12);
    assert_true(dc_vec_normalize(v, 4));
    assert_float_equal(dc_vec_l2_norm(v, 4), 1.0, 1e-6);
    assert_float_equal(v[0], 0.6f, 1e-7);
    float z[4] = {0};
    assert_false(dc_vec_normalize(z, 4)); /* zero vector: no division, stays zero */
    for (int i = 0; i < 4; i++) assert_float_equal(z[i], 0.0f, 0);
    float a[3] = {1, 2, 3}, b[3] = {2, 4, 6}, c[3] = {-1, -2, -3}, d[3] = {3, 0, -1};
    assert_float_equal(dc_vec_cosine(a, b, 3), 1.0, 1e-12);
    assert_float_equal(dc_vec_cosine(a, c, 3), -1.0, 1e-12);
    assert_float_equal(dc_vec_cosine(a, d, 3), 0.0, 1e-12);
    assert_float_equal(dc_vec_cosine(a, z, 3), 0.0, 0); /* zero vector: 0, not NaN */
}

static void test_concat_places_blocks_in_canonical_order(void **state) {
    (void)state;
    dc_concat_embedding *c = malloc(sizeof *c);
    dc_concat_init(c, (dc_hash128){1, 2});
    dc_model_id missing[DC_NUM_MODELS];
    assert_int_equal(dc_concat_missing(c, missing), 12);
    assert_false(dc_concat_is_complete(c));
    for (int i = DC_NUM_MODELS - 1; i >= 0; i--) { /* insertion order must not matter */
        const dc_model_info *info = dc_model_info_get((dc_model_id)i);
        float *v = filled(info->dim, (float)(i + 1));
        dc_model_embedding e;
        assert_ok(dc_model_embedding_init(&e, (dc_model_id)i, v, info->dim));
        e.latency_us = 10u * (unsigned)(i + 1);
        assert_ok(dc_concat_set(c, &e));
        dc_model_embedding_free(&e);
        free(v);
    }
    assert_true(dc_concat_is_complete(c));
    assert_int_equal(dc_concat_missing(c, missing), 0);
    assert_int_equal(dc_concat_total_latency_us(c), 10 * 78);
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        const dc_model_info *info = dc_model_info_get((dc_model_id)i);
        const float *block = dc_concat_block(c, (dc_model_id)i);
        assert_ptr_equal(block, c->vector + info->offset);
        /* each block is unit length, so no model dominates by scale */
        assert_float_equal(dc_vec_l2_norm(block, info->dim), 1.0, 1e-5);
        assert_float_equal(block[0], 1.0f / sqrtf((float)info->dim), 1e-6);
    }
    assert_int_equal(c->content_hash.lo, 1);
    free(c);
}

static void test_concat_missing_blocks_stay_zero(void **state) {
    (void)state;
    dc_concat_embedding *c = malloc(sizeof *c);
    dc_concat_init(c, (dc_hash128){0, 0});
    float *v = filled(DC_DIM_CODE, 2.0f);
    dc_model_embedding e;
    assert_ok(dc_model_embedding_init(&e, DC_MODEL_CODE, v, DC_DIM_CODE));
    e.latency_us = 5;
    assert_ok(dc_concat_set(c, &e));
    assert_ok(dc_concat_set(c, &e)); /* replacing a block does not double-count latency */
    assert_int_equal(dc_concat_total_latency_us(c), 5);
    dc_model_id missing[DC_NUM_MODELS];
    assert_int_equal(dc_concat_missing(c, missing), 11);
    assert_int_equal(missing[6], DC_MODEL_GRAPH); /* E7 skipped, canonical order kept */
    assert_true(dc_concat_has(c, DC_MODEL_CODE));
    assert_false(dc_concat_has(c, DC_MODEL_SEMANTIC));
    for (size_t i = 0; i < DC_DIM_CONCATENATED; i++) {
        size_t lo = dc_model_info_get(DC_MODEL_CODE)->offset;
        if (i < lo || i >= lo + DC_DIM_CODE) assert_float_equal(c->vector[i], 0.0f, 0);
    }
    /* a wrong-width embedding is refused and changes nothing */
    dc_model_embedding bad = e;
    bad.model = DC_MODEL_SEMANTIC;
    assert_status(dc_concat_set(c, &bad), DC_ERR_INVALID_DIMENSION);
    assert_false(dc_concat_has(c, DC_MODEL_SEMANTIC));
    /* a zero vector is accepted as a zero block (normalisation is zero-safe) */
    memset(e.vector, 0, DC_DIM_CODE * sizeof(float));
    assert_ok(dc_concat_set(c, &e));
    assert_float_equal(dc_vec_l2_norm(dc_concat_block(c, DC_MODEL_CODE), DC_DIM_CODE), 0.0, 0);
    dc_model_embedding_free(&e);
    free(v);
    free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_copies_and_free_clears),
        cmocka_unit_test(test_validate_rejects_wrong_dimension),
        cmocka_unit_test(test_validate_rejects_nan_and_inf_naming_index),
        cmocka_unit_test(test_normalize_and_cosine),
        cmocka_unit_test(test_concat_places_blocks_in_canonical_order),
        cmocka_unit_test(test_concat_missing_blocks_stay_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

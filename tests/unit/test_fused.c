#include <math.h>

#include "core/bytes.h"
#include "test_support.h"

/* A valid fused embedding with deterministic, non-trivial contents. */
static void make_fused(dc_fused_embedding *f, bool with_aux) {
    dc_fused_init(f);
    for (int i = 0; i < DC_DIM_FUSED; i++) f->vector[i] = sinf((float)i * 0.37f) - 0.01f * (float)(i % 7);
    dc_vec_normalize(f->vector, DC_DIM_FUSED);
    const float w[DC_NUM_EXPERTS] = {0.05f, 0.4f, 0.05f, 0.1f, 0.05f, 0.25f, 0.05f, 0.05f};
    memcpy(f->expert_weights, w, sizeof w);
    f->selected_experts[0] = 1;
    f->selected_experts[1] = 5;
    f->num_selected = 2;
    f->present_mask = 0x0FFF;
    f->pipeline_latency_us = 123456789012ull;
    f->content_hash = (dc_hash128){0x0123456789abcdefull, 0xfedcba9876543210ull};
    if (!with_aux) return;
    float rows[3 * DC_DIM_LATE_INTERACTION];
    for (int i = 0; i < 3 * DC_DIM_LATE_INTERACTION; i++) rows[i] = cosf((float)i);
    assert_ok(dc_fused_set_colbert(f, rows, 3, DC_DIM_LATE_INTERACTION));
    const uint32_t idx[] = {101, 2054, 30521};
    const float val[] = {0.5f, 1.25f, 3.0e-8f};
    assert_ok(dc_fused_set_sparse(f, idx, val, 3, DC_SPARSE_VOCAB_SIZE));
}

static void test_valid_embedding_passes(void **state) {
    (void)state;
    dc_fused_embedding f;
    make_fused(&f, true);
    assert_ok(dc_fused_validate(&f));
    dc_fused_free(&f);
    assert_null(f.colbert.data);
    assert_int_equal(f.sparse.nnz, 0);
}

static void test_validation_rules(void **state) {
    (void)state;
    dc_fused_embedding f;
    make_fused(&f, false);
    f.vector[3] = NAN;
    assert_status(dc_fused_validate(&f), DC_ERR_INVALID_VALUE);
    assert_detail_contains("fused vector[3] is NaN");
    make_fused(&f, false);
    f.expert_weights[0] += 0.2f; /* sum 1.2 */
    assert_status(dc_fused_validate(&f), DC_ERR_INVALID_VALUE);
    assert_detail_contains("sum to");
    make_fused(&f, false);
    f.expert_weights[0] += 0.005f; /* within the seed's 0.01 tolerance */
    assert_ok(dc_fused_validate(&f));
    make_fused(&f, false);
    f.expert_weights[2] = -0.05f, f.expert_weights[3] = 0.2f;
    assert_status(dc_fused_validate(&f), DC_ERR_INVALID_VALUE);
    assert_detail_contains("expert_weights[2]");
    make_fused(&f, false);
    f.selected_experts[1] = 8;
    assert_status(dc_fused_validate(&f), DC_ERR_INVALID_VALUE);
    assert_detail_contains("selected_experts[1]");
    make_fused(&f, false);
    f.selected_experts[1] = 1;
    assert_status(dc_fused_validate(&f), DC_ERR_INVALID_VALUE);
    assert_detail_contains("selected twice");
    make_fused(&f, false);
    f.num_selected = 0;
    assert_status(dc_fused_validate(&f), DC_ERR_INVALID_VALUE);
    make_fused(&f, false);
    f.present_mask = 0x1FFF;
    assert_status(dc_fused_validate(&f), DC_ERR_INVALID_VALUE);
    assert_status(dc_fused_validate(NULL), DC_ERR_INVALID_ARGUMENT);
}

static void test_aux_rules(void **state) {
    (void)state;
    dc_fused_embedding f;
    make_fused(&f, false);
    const uint32_t unsorted[] = {5, 3};
    const uint32_t outside[] = {3, 30522};
    const float val[] = {1, 2};
    assert_status(dc_fused_set_sparse(&f, unsorted, val, 2, DC_SPARSE_VOCAB_SIZE), DC_ERR_INVALID_VALUE);
    assert_detail_contains("strictly increasing");
    assert_status(dc_fused_set_sparse(&f, outside, val, 2, DC_SPARSE_VOCAB_SIZE), DC_ERR_INVALID_VALUE);
    assert_detail_contains("30522");
    const float bad[] = {1, INFINITY};
    const uint32_t ok_idx[] = {1, 2};
    assert_status(dc_fused_set_sparse(&f, ok_idx, bad, 2, DC_SPARSE_VOCAB_SIZE), DC_ERR_INVALID_VALUE);
    assert_int_equal(f.sparse.nnz, 0); /* refused data leaves the embedding unchanged */
    float rows[4] = {0, 1, NAN, 0};
    assert_status(dc_fused_set_colbert(&f, rows, 2, 2), DC_ERR_INVALID_VALUE);
    assert_null(f.colbert.data);
    rows[2] = 0.5f;
    assert_ok(dc_fused_set_colbert(&f, rows, 2, 2));
    assert_ok(dc_fused_set_colbert(&f, rows, 1, 2)); /* replacing frees the old matrix */
    assert_int_equal(f.colbert.n_tokens, 1);
    dc_fused_free(&f);
}

static uint8_t *encode(const dc_fused_embedding *f, size_t *len) {
    size_t cap = dc_fused_encoded_size(f);
    uint8_t *buf = malloc(cap);
    assert_ok(dc_fused_encode(f, buf, cap, len));
    assert_int_equal(*len, cap);
    return buf;
}

static void assert_same(const dc_fused_embedding *a, const dc_fused_embedding *b) {
    assert_memory_equal(a->vector, b->vector, sizeof a->vector); /* bit-exact */
    assert_memory_equal(a->expert_weights, b->expert_weights, sizeof a->expert_weights);
    assert_int_equal(a->num_selected, b->num_selected);
    assert_memory_equal(a->selected_experts, b->selected_experts, a->num_selected);
    assert_int_equal(a->present_mask, b->present_mask);
    assert_int_equal(a->pipeline_latency_us, b->pipeline_latency_us);
    assert_true(dc_hash128_equal(a->content_hash, b->content_hash));
    assert_int_equal(a->colbert.n_tokens, b->colbert.n_tokens);
    assert_int_equal(a->colbert.dim, b->colbert.dim);
    if (a->colbert.n_tokens)
        assert_memory_equal(a->colbert.data, b->colbert.data,
                            (size_t)a->colbert.n_tokens * a->colbert.dim * sizeof(float));
    assert_int_equal(a->sparse.nnz, b->sparse.nnz);
    assert_int_equal(a->sparse.vocab_size, b->sparse.vocab_size);
    if (a->sparse.nnz) {
        assert_memory_equal(a->sparse.indices, b->sparse.indices, a->sparse.nnz * 4);
        assert_memory_equal(a->sparse.values, b->sparse.values, a->sparse.nnz * 4);
    }
}

static void test_round_trip_is_bit_exact(void **state) {
    (void)state;
    for (int aux = 0; aux <= 1; aux++) {
        dc_fused_embedding f, g;
        make_fused(&f, aux);
        size_t len;
        uint8_t *buf = encode(&f, &len);
        assert_ok(dc_fused_decode(buf, len, &g));
        assert_same(&f, &g);
        /* encoding the decoded value gives the same bytes */
        size_t len2;
        uint8_t *buf2 = encode(&g, &len2);
        assert_int_equal(len, len2);
        assert_memory_equal(buf, buf2, len);
        free(buf);
        free(buf2);
        dc_fused_free(&f);
        dc_fused_free(&g);
    }
}

static void test_layout_is_little_endian_and_documented(void **state) {
    (void)state;
    dc_fused_embedding f;
    make_fused(&f, false);
    size_t len;
    uint8_t *buf = encode(&f, &len);
    assert_memory_equal(buf, "DCFE", 4);
    assert_int_equal(dc_get_u16le(buf + 4), DC_FUSED_FORMAT_VERSION);
    assert_int_equal(dc_get_u32le(buf + 8), 1536);
    assert_int_equal(dc_get_u32le(buf + 12), 8);
    assert_int_equal(dc_get_u64le(buf + 24), 123456789012ull);
    assert_int_equal(dc_get_u64le(buf + 32), 0x0123456789abcdefull);
    assert_int_equal(dc_get_u32le(buf + 48), dc_f32_bits(f.vector[0]));
    /* header 48 + vector 6144 + weights 32 + k 2 + colbert 8 + sparse 8 + checksum 8 */
    assert_int_equal(len, 48 + 6144 + 32 + 2 + 8 + 8 + 8);
    free(buf);
}

static void test_every_corrupted_byte_is_rejected(void **state) {
    (void)state;
    dc_fused_embedding f, g;
    make_fused(&f, true);
    size_t len;
    uint8_t *buf = encode(&f, &len);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            buf[i] ^= (uint8_t)(1u << bit);
            dc_status st = dc_fused_decode(buf, len, &g);
            if (st == DC_OK) fail_msg("flip of bit %d at byte %zu was accepted", bit, i);
            assert_int_equal(st, DC_ERR_SERIALIZATION);
            assert_null(g.colbert.data); /* nothing half-decoded is left behind */
            assert_null(g.sparse.indices);
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_ok(dc_fused_decode(buf, len, &g));
    dc_fused_free(&g);
    free(buf);
    dc_fused_free(&f);
}

static void test_every_truncation_is_rejected(void **state) {
    (void)state;
    dc_fused_embedding f, g;
    make_fused(&f, true);
    size_t len;
    uint8_t *buf = encode(&f, &len);
    for (size_t n = 0; n < len; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exact-size copy so ASan sees any over-read */
        memcpy(copy, buf, n);
        assert_status(dc_fused_decode(copy, n, &g), DC_ERR_SERIALIZATION);
        free(copy);
    }
    uint8_t *longer = calloc(len + 1, 1);
    memcpy(longer, buf, len);
    assert_status(dc_fused_decode(longer, len + 1, &g), DC_ERR_SERIALIZATION);
    free(longer);
    free(buf);
    dc_fused_free(&f);
}

/* Rewrites the checksum so the structural checks behind it are exercised too. */
#define XXH_INLINE_ALL
#include <xxhash.h>
static void reseal(uint8_t *buf, size_t len) {
    dc_put_u64le(buf + len - 8, XXH3_64bits(buf, len - 8));
}

static void test_structural_errors_behind_a_valid_checksum(void **state) {
    (void)state;
    dc_fused_embedding f, g;
    make_fused(&f, true);
    size_t len;
    uint8_t *buf = encode(&f, &len);
    uint8_t *work = malloc(len);

    memcpy(work, buf, len);
    dc_put_u16le(work + 4, 2);
    reseal(work, len);
    assert_status(dc_fused_decode(work, len, &g), DC_ERR_SERIALIZATION);
    assert_detail_contains("version 2");

    memcpy(work, buf, len);
    dc_put_u32le(work + 8, 1024);
    reseal(work, len);
    assert_status(dc_fused_decode(work, len, &g), DC_ERR_INVALID_DIMENSION);

    memcpy(work, buf, len);
    dc_put_u32le(work + 16, 9);
    reseal(work, len);
    assert_status(dc_fused_decode(work, len, &g), DC_ERR_SERIALIZATION);
    assert_detail_contains("num_selected");

    /* colbert token count claiming far more data than the buffer holds */
    size_t colbert_at = 48 + 6144 + 32 + 2;
    memcpy(work, buf, len);
    dc_put_u32le(work + colbert_at, 0xFFFFFFFFu);
    reseal(work, len);
    assert_status(dc_fused_decode(work, len, &g), DC_ERR_SERIALIZATION);
    assert_detail_contains("colbert");

    /* value rules are enforced after decoding: a NaN in the vector */
    memcpy(work, buf, len);
    dc_put_u32le(work + 48, 0x7FC00000u);
    reseal(work, len);
    assert_status(dc_fused_decode(work, len, &g), DC_ERR_INVALID_VALUE);
    assert_null(g.colbert.data);

    free(work);
    free(buf);
    dc_fused_free(&f);
}

static void test_encode_refuses_small_buffers_and_invalid_values(void **state) {
    (void)state;
    dc_fused_embedding f;
    make_fused(&f, false);
    size_t need = dc_fused_encoded_size(&f);
    uint8_t *buf = malloc(need);
    memset(buf, 0xAB, need);
    size_t written = 0;
    assert_status(dc_fused_encode(&f, buf, need - 1, &written), DC_ERR_INVALID_ARGUMENT);
    assert_detail_contains("too small");
    for (size_t i = 0; i < need; i++) assert_int_equal(buf[i], 0xAB); /* nothing written */
    f.expert_weights[0] = NAN;
    assert_status(dc_fused_encode(&f, buf, need, &written), DC_ERR_INVALID_VALUE);
    free(buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_embedding_passes),
        cmocka_unit_test(test_validation_rules),
        cmocka_unit_test(test_aux_rules),
        cmocka_unit_test(test_round_trip_is_bit_exact),
        cmocka_unit_test(test_layout_is_little_endian_and_documented),
        cmocka_unit_test(test_every_corrupted_byte_is_rejected),
        cmocka_unit_test(test_every_truncation_is_rejected),
        cmocka_unit_test(test_structural_errors_behind_a_valid_checksum),
        cmocka_unit_test(test_encode_refuses_small_buffers_and_invalid_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

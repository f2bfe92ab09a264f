/* E1, E8, E11 (dense), E6 (SPLADE + projection) and E12 (ColBERT) as dc_models on
 * random-weight fixtures, against the goldens of tests/data/encoder/gen_goldens.py. */
#include "models/e6_projection.h"
#include "models/pretrained.h"
#include "test_encoder_util.h"

static dc_model *open_model(dc_model_id id, const char *dir) {
    dc_pretrained_options o = {.model_dir = dir, .max_batch_tokens = 64};
    dc_model *m = NULL;
    assert_ok(dc_pretrained_create(id, &o, &m));
    assert_false(dc_model_is_loaded(m));
    assert_ok(dc_model_load(m));
    return m;
}

static dc_input *golden_inputs(const cJSON *g, size_t *n) {
    *n = golden_count(g);
    dc_input *in = calloc(*n, sizeof *in);
    const cJSON *roles = cJSON_GetObjectItem(g, "roles");
    for (size_t i = 0; i < *n; i++) {
        const char *t = golden_text(g, i);
        dc_text_role r = DC_ROLE_PASSAGE;
        if (roles && !strcmp(cJSON_GetArrayItem(roles, (int)i)->valuestring, "query"))
            r = DC_ROLE_QUERY;
        in[i] = dc_input_text(t, strlen(t), r);
    }
    return in;
}

static void dense_parity(dc_model_id id, const char *fixture, const char *golden, bool normalized) {
    char *dir = fx_make(fixture, NULL);
    dc_model *m = open_model(id, dir);
    cJSON *g = golden_open(golden);
    size_t n;
    dc_input *in = golden_inputs(g, &n);
    dc_model_embedding *out = calloc(n, sizeof *out);
    /* a budget of 64 token rows splits the batch into several packed forwards */
    assert_ok(dc_pretrained_embed_unchecked(m, in, n, out));
    parity p;
    parity_init(&p);
    bool any_trunc = false;
    for (size_t i = 0; i < n; i++) {
        size_t k;
        float *ref = golden_floats(cJSON_GetArrayItem(cJSON_GetObjectItem(g, "embeddings"), (int)i), &k);
        assert_int_equal(k, dc_model_dimension(m));
        parity_add(&p, out[i].vector, ref, k);
        double norm = dc_vec_l2_norm(out[i].vector, k);
        if (normalized) assert_true(fabs(norm - 1.0) < 1e-5);
        else assert_true(fabs(norm - 1.0) > 1e-3);
        any_trunc |= out[i].truncated;
        free(ref);
        dc_model_embedding_free(&out[i]);
    }
    assert_true(any_trunc);
    char what[64];
    snprintf(what, sizeof what, "%s fixture (%s)", dc_model_info_get(id)->label, fixture);
    parity_check(&p, what);
    free(out);
    free(in);
    cJSON_Delete(g);
    dc_model_destroy(m);
    fx_drop(dir);
}

static void test_e11_fixture(void **s) { (void)s; dense_parity(DC_MODEL_ENTITY, "e11", "encoder/fixture_e11.json", true); }
static void test_e8_fixture(void **s) { (void)s; dense_parity(DC_MODEL_GRAPH, "e8", "encoder/fixture_e8.json", false); }
static void test_e1_fixture(void **s) { (void)s; dense_parity(DC_MODEL_SEMANTIC, "e1", "encoder/fixture_e1.json", true); }

static void test_e1_role_changes_embedding(void **state) {
    (void)state;
    char *dir = fx_make("e1", NULL);
    dc_model *m = open_model(DC_MODEL_SEMANTIC, dir);
    dc_input q = dc_input_text("hello world", 11, DC_ROLE_QUERY);
    dc_input p = dc_input_text("hello world", 11, DC_ROLE_PASSAGE);
    dc_model_embedding eq, ep;
    assert_ok(dc_model_embed(m, &q, &eq));
    assert_ok(dc_model_embed(m, &p, &ep));
    assert_true(dc_vec_cosine(eq.vector, ep.vector, eq.dim) < 0.9999);
    /* "query: " costs 3 tokens here (query, :, and the text) */
    assert_true(eq.tokens_used > 4);
    dc_model_embedding_free(&eq);
    dc_model_embedding_free(&ep);
    dc_model_destroy(m);
    fx_drop(dir);
}

static void test_model_errors(void **state) {
    (void)state;
    dc_pretrained_options o = {.model_dir = "/nonexistent/dodeca-model"};
    dc_model *m = NULL;
    assert_ok(dc_e11_create(&o, &m));
    assert_status(dc_model_load(m), DC_ERR_MODEL_NOT_FOUND);
    assert_false(dc_model_is_loaded(m));
    dc_model_destroy(m);
    assert_status(dc_pretrained_create(DC_MODEL_HDC, &o, &m), DC_ERR_MODEL_NOT_FOUND);
    /* E11 on a 1024-wide fixture: the pooled width does not fit the model's block */
    char *dir = fx_make("e1", NULL);
    o.model_dir = dir;
    assert_ok(dc_e11_create(&o, &m));
    assert_status(dc_model_load(m), DC_ERR_INVALID_DIMENSION);
    assert_detail_contains("384");
    dc_model_destroy(m);
    fx_drop(dir);
}

/* ---- E6 ---- */

static void test_e6_splade_fixture(void **state) {
    (void)state;
    char *dir = fx_make("e6", NULL);
    dc_model *m = open_model(DC_MODEL_SPARSE, dir);
    cJSON *g = golden_open("encoder/fixture_e6.json");
    size_t n;
    dc_input *in = golden_inputs(g, &n);
    dc_sparse_vector *sv = calloc(n, sizeof *sv);
    assert_ok(dc_splade_encode(m, in, n, sv));
    uint32_t vocab = (uint32_t)cJSON_GetObjectItem(g, "vocab")->valueint;
    parity p;
    parity_init(&p);
    float *dense = malloc(vocab * sizeof *dense), *ref = malloc(vocab * sizeof *ref);
    for (size_t i = 0; i < n; i++) {
        memset(dense, 0, vocab * sizeof *dense);
        memset(ref, 0, vocab * sizeof *ref);
        for (uint32_t k = 0; k < sv[i].nnz; k++) {
            if (k) assert_true(sv[i].indices[k] > sv[i].indices[k - 1]);
            assert_true(sv[i].values[k] > 0 && isfinite(sv[i].values[k]));
            dense[sv[i].indices[k]] = sv[i].values[k];
        }
        const cJSON *pairs = cJSON_GetArrayItem(cJSON_GetObjectItem(g, "sparse"), (int)i), *pr;
        cJSON_ArrayForEach(pr, pairs) {
            ref[cJSON_GetArrayItem(pr, 0)->valueint] = (float)cJSON_GetArrayItem(pr, 1)->valuedouble;
        }
        parity_add(&p, dense, ref, vocab);
    }
    parity_check(&p, "E6 fixture SPLADE weights");
    /* the dc_model vector: the projection of the same weights, unit length */
    dc_model_embedding e;
    assert_ok(dc_model_embed(m, &in[0], &e));
    assert_int_equal(e.dim, DC_DIM_SPARSE_PROJECTED);
    dc_sparse_projection *proj;
    assert_ok(dc_sparse_projection_create(DC_SPARSE_PROJECTION_SEED, vocab, DC_DIM_SPARSE_PROJECTED,
                                          DC_SPARSE_PROJECTION_NNZ, &proj));
    float *y = malloc(DC_DIM_SPARSE_PROJECTED * sizeof *y);
    assert_ok(dc_sparse_projection_apply(proj, sv[0].indices, sv[0].values, sv[0].nnz, y));
    dc_vec_normalize(y, DC_DIM_SPARSE_PROJECTED);
    for (uint32_t d = 0; d < DC_DIM_SPARSE_PROJECTED; d++) assert_true(fabsf(y[d] - e.vector[d]) < 1e-6f);
    dc_model_embedding_free(&e);
    dc_sparse_projection_free(proj);
    free(y);
    for (size_t i = 0; i < n; i++) dc_sparse_vector_free(&sv[i]);
    free(sv);
    free(dense);
    free(ref);
    free(in);
    cJSON_Delete(g);
    dc_model_destroy(m);
    fx_drop(dir);
}

static void test_e6_projection_file(void **state) {
    (void)state;
    dc_sparse_projection *a, *b, *c;
    assert_ok(dc_sparse_projection_create(7, DC_SPARSE_VOCAB_SIZE, DC_DIM_SPARSE_PROJECTED, 8, &a));
    assert_ok(dc_sparse_projection_create(7, DC_SPARSE_VOCAB_SIZE, DC_DIM_SPARSE_PROJECTED, 8, &b));
    assert_true(dc_sparse_projection_checksum(a) == dc_sparse_projection_checksum(b));
    assert_ok(dc_sparse_projection_create(8, DC_SPARSE_VOCAB_SIZE, DC_DIM_SPARSE_PROJECTED, 8, &c));
    assert_true(dc_sparse_projection_checksum(a) != dc_sparse_projection_checksum(c));
    dc_sparse_projection_free(c);
    /* one-hot inputs map to unit vectors with exactly 8 non-zeros */
    float *y = malloc(DC_DIM_SPARSE_PROJECTED * sizeof *y);
    for (uint32_t j = 0; j < DC_SPARSE_VOCAB_SIZE; j += 997) {
        float one = 1.0f;
        assert_ok(dc_sparse_projection_apply(a, &j, &one, 1, y));
        int nz = 0;
        for (uint32_t d = 0; d < DC_DIM_SPARSE_PROJECTED; d++) nz += y[d] != 0.0f;
        assert_int_equal(nz, 8);
        assert_true(fabs(dc_vec_l2_norm(y, DC_DIM_SPARSE_PROJECTED) - 1.0) < 1e-6);
    }
    uint32_t bad = DC_SPARSE_VOCAB_SIZE;
    float one = 1.0f;
    assert_status(dc_sparse_projection_apply(a, &bad, &one, 1, y), DC_ERR_INVALID_VALUE);
    /* save, reload bit-identically */
    const char *path = dc_test_write_temp("", 0, ".sprj");
    assert_ok(dc_sparse_projection_save(a, path));
    assert_ok(dc_sparse_projection_load(path, &c));
    uint8_t *ba, *bc;
    size_t la, lc;
    assert_ok(dc_sparse_projection_encode(a, &ba, &la));
    assert_ok(dc_sparse_projection_encode(c, &bc, &lc));
    assert_int_equal(la, lc);
    assert_memory_equal(ba, bc, la);
    assert_true(dc_sparse_projection_seed(c) == 7);
    dc_sparse_projection_free(c);
    /* corruption: bad magic, version, truncation, flipped entry, checksum-consistent edit */
    uint8_t *x = malloc(la);
    struct {
        size_t off;
        uint8_t xor;
        size_t len;
        const char *needle;
    } cases[] = {{0, 0xff, la, "magic"}, {8, 0x02, la, "version"}, {0, 0, la - 1, "bytes"},
                 {40 + 1000, 0x01, la, "checksum"}, {16, 0x01, la, "bytes"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(x, ba, la);
        x[cases[i].off] ^= cases[i].xor;
        assert_status(dc_sparse_projection_decode(x, cases[i].len, "t.sprj", &c), DC_ERR_SERIALIZATION);
        assert_detail_contains(cases[i].needle);
    }
    free(x);
    free(ba);
    free(bc);
    free(y);
    dc_sparse_projection_free(a);
    dc_sparse_projection_free(b);
}

/* ---- E12 ---- */

static void test_e12_colbert_fixture(void **state) {
    (void)state;
    char *dir = fx_make("e12", NULL);
    dc_model *m = open_model(DC_MODEL_LATE_INTERACTION, dir);
    cJSON *g = golden_open("encoder/fixture_e12.json");
    size_t n;
    dc_input *in = golden_inputs(g, &n);
    parity pq, pd;
    parity_init(&pq);
    parity_init(&pd);
    const cJSON *qs = cJSON_GetObjectItem(g, "query"), *ds = cJSON_GetObjectItem(g, "doc");
    for (size_t i = 0; i < n; i++) {
        dc_token_matrix t;
        if (i < (size_t)cJSON_GetArraySize(qs)) {
            assert_ok(dc_colbert_encode(m, &in[i], DC_COLBERT_QUERY, &t));
            const cJSON *rows = cJSON_GetArrayItem(qs, (int)i);
            assert_int_equal(t.n_tokens, 32);
            assert_int_equal(t.n_tokens, cJSON_GetArraySize(rows));
            for (uint32_t r = 0; r < t.n_tokens; r++) {
                size_t k;
                float *ref = golden_floats(cJSON_GetArrayItem(rows, (int)r), &k);
                parity_add(&pq, t.data + (size_t)r * t.dim, ref, k);
                free(ref);
            }
            dc_token_matrix_free(&t);
        }
        assert_ok(dc_colbert_encode(m, &in[i], DC_COLBERT_DOCUMENT, &t));
        const cJSON *rows = cJSON_GetArrayItem(ds, (int)i);
        assert_int_equal(t.n_tokens, cJSON_GetArraySize(rows));
        for (uint32_t r = 0; r < t.n_tokens; r++) {
            size_t k;
            float *ref = golden_floats(cJSON_GetArrayItem(rows, (int)r), &k);
            parity_add(&pd, t.data + (size_t)r * t.dim, ref, k);
            free(ref);
        }
        /* the dc_model vector: mean of the kept document rows, renormalised */
        dc_model_embedding e;
        assert_ok(dc_pretrained_embed_unchecked(m, &in[i], 1, &e));
        float mean[128] = {0};
        for (uint32_t r = 0; r < t.n_tokens; r++)
            for (uint32_t d = 0; d < 128; d++) mean[d] += t.data[(size_t)r * 128 + d] / (float)t.n_tokens;
        dc_vec_normalize(mean, 128);
        assert_true(dc_vec_cosine(mean, e.vector, 128) > 0.99999);
        dc_model_embedding_free(&e);
        dc_token_matrix_free(&t);
    }
    parity_check(&pq, "E12 fixture query rows");
    parity_check(&pd, "E12 fixture document rows");
    free(in);
    cJSON_Delete(g);
    dc_model_destroy(m);
    fx_drop(dir);
}

static void test_colbert_maxsim(void **state) {
    (void)state;
    float q[4] = {1, 0, 0, 1}, d[6] = {0.6f, 0.8f, 1, 0, 0, -1};
    dc_token_matrix tq = {q, 2, 2}, td = {d, 3, 2};
    /* row 1: max(0.6, 1, 0) = 1; row 2: max(0.8, 0, -1) = 0.8 */
    assert_true(fabs(dc_colbert_maxsim(&tq, &td) - 1.8) < 1e-6);
    dc_token_matrix empty = {NULL, 0, 2};
    assert_true(dc_colbert_maxsim(&tq, &empty) == 0.0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_e11_fixture),
        cmocka_unit_test(test_e8_fixture),
        cmocka_unit_test(test_e1_fixture),
        cmocka_unit_test(test_e1_role_changes_embedding),
        cmocka_unit_test(test_model_errors),
        cmocka_unit_test(test_e6_splade_fixture),
        cmocka_unit_test(test_e6_projection_file),
        cmocka_unit_test(test_e12_colbert_fixture),
        cmocka_unit_test(test_colbert_maxsim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

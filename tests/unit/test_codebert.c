/* E7 CodeBERT as a dc_model on the 768-wide random-weight RoBERTa fixture against
 * transformers (tests/data/models5/e7.json): mean over the non-special tokens, L2; code and
 * text inputs; truncation at the position limit; the checks load makes. */
#include "models/pretrained.h"
#include "test_encoder_util.h"

static dc_model *open_e7(const char *dir, uint32_t budget) {
    dc_pretrained_options o = {.model_dir = dir, .max_batch_tokens = budget};
    dc_model *m = NULL;
    assert_ok(dc_pretrained_create(DC_MODEL_CODE, &o, &m));
    assert_ok(dc_model_load(m));
    return m;
}

static void test_e7_parity(void **state) {
    (void)state;
    char *dir = fx_make("e7", NULL);
    dc_model *m = open_e7(dir, 48); /* several packed forwards */
    cJSON *g = golden_open("models5/e7.json");
    size_t n = golden_count(g);
    dc_input *in = calloc(n, sizeof *in);
    for (size_t i = 0; i < n; i++) {
        const char *t = golden_text(g, i);
        /* every other one as code: the language is recorded, the vector does not change */
        in[i] = i % 2 ? dc_input_code(t, strlen(t), "python")
                      : dc_input_text(t, strlen(t), DC_ROLE_PASSAGE);
    }
    dc_model_embedding *out = calloc(n, sizeof *out);
    assert_ok(dc_pretrained_embed_unchecked(m, in, n, out));
    parity p;
    parity_init(&p);
    bool any_trunc = false;
    for (size_t i = 0; i < n; i++) {
        size_t k;
        float *ref =
            golden_floats(cJSON_GetArrayItem(cJSON_GetObjectItem(g, "embeddings"), (int)i), &k);
        assert_int_equal(k, DC_DIM_CODE);
        assert_int_equal(out[i].dim, DC_DIM_CODE);
        parity_add(&p, out[i].vector, ref, k);
        assert_true(fabs(dc_vec_l2_norm(out[i].vector, k) - 1.0) < 1e-5);
        const cJSON *ids = cJSON_GetArrayItem(cJSON_GetObjectItem(g, "ids"), (int)i);
        assert_int_equal(out[i].tokens_used, cJSON_GetArraySize(ids));
        any_trunc |= out[i].truncated;
        free(ref);
        dc_model_embedding_free(&out[i]);
    }
    assert_true(any_trunc); /* the long snippet passes the 64-token limit */
    parity_check(&p, "E7 CodeBERT fixture (mean over non-special tokens, L2)");
    /* through the checked interface too, code and text alike */
    dc_input c = dc_input_code("def f(x): return x", 18, "python");
    dc_input t = dc_input_text("def f(x): return x", 18, DC_ROLE_QUERY);
    dc_model_embedding ec, et;
    assert_ok(dc_model_embed(m, &c, &ec));
    assert_ok(dc_model_embed(m, &t, &et));
    assert_true(dc_vec_cosine(ec.vector, et.vector, DC_DIM_CODE) > 0.999999);
    dc_model_embedding_free(&ec);
    dc_model_embedding_free(&et);
    dc_input img = dc_input_image((const uint8_t *)"x", 1, DC_IMAGE_PNG);
    assert_status(dc_model_embed(m, &img, &ec), DC_ERR_UNSUPPORTED_MODALITY);
    free(out);
    free(in);
    cJSON_Delete(g);
    dc_model_destroy(m);
    fx_drop(dir);
}

static void test_e7_load_errors(void **state) {
    (void)state;
    /* a BERT folder is not CodeBERT */
    char *dir = fx_make("e1", NULL);
    dc_pretrained_options o = {.model_dir = dir};
    dc_model *m = NULL;
    assert_ok(dc_e7_create(&o, &m));
    assert_status(dc_model_load(m), DC_ERR_MODEL_LOAD);
    assert_detail_contains("RoBERTa");
    dc_model_destroy(m);
    fx_drop(dir);
    /* a RoBERTa 32 wide does not fill E7's 768 */
    dir = fx_make("roberta", NULL);
    o.model_dir = dir;
    assert_ok(dc_e7_create(&o, &m));
    assert_status(dc_model_load(m), DC_ERR_INVALID_DIMENSION);
    assert_detail_contains("768");
    dc_model_destroy(m);
    fx_drop(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_e7_parity),
        cmocka_unit_test(test_e7_load_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

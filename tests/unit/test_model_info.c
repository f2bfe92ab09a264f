#include <string.h>

#include "test_support.h"

static void test_twelve_models_in_canonical_order(void **state) {
    (void)state;
    uint32_t offset = 0;
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        const dc_model_info *m = dc_model_info_get((dc_model_id)i);
        assert_non_null(m);
        assert_int_equal(m->id, i);
        assert_int_equal(m->offset, offset); /* blocks are contiguous, E1 first */
        offset += m->dim;
        char label[8];
        snprintf(label, sizeof label, "E%d", i + 1);
        assert_string_equal(m->label, label);
    }
    assert_int_equal(offset, DC_DIM_CONCATENATED);
    assert_null(dc_model_info_get((dc_model_id)DC_NUM_MODELS));
    assert_null(dc_model_info_get((dc_model_id)-1));
}

static void test_seed_dimensions_and_repos(void **state) {
    (void)state;
    assert_int_equal(dc_model_info_get(DC_MODEL_SEMANTIC)->dim, 1024);
    assert_string_equal(dc_model_info_get(DC_MODEL_SEMANTIC)->repo, "intfloat/e5-large-v2");
    assert_int_equal(dc_model_info_get(DC_MODEL_SPARSE)->native_dim, 30522);
    assert_int_equal(dc_model_info_get(DC_MODEL_SPARSE)->dim, 1536);
    assert_int_equal(dc_model_info_get(DC_MODEL_HDC)->native_dim, 10240);
    assert_int_equal(dc_model_info_get(DC_MODEL_LATE_INTERACTION)->dim, 128);
    assert_int_equal(dc_model_info_get(DC_MODEL_GRAPH)->max_tokens, 128);
    assert_int_equal(dc_model_info_get(DC_MODEL_ENTITY)->max_tokens, 256);
    assert_int_equal(dc_model_info_get(DC_MODEL_CAUSAL)->max_tokens, 4096);
    assert_int_equal(dc_model_info_get(DC_MODEL_MULTIMODAL)->max_tokens, 77);
}

static void test_custom_models_are_exactly_temporal_and_hdc(void **state) {
    (void)state;
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        const dc_model_info *m = dc_model_info_get((dc_model_id)i);
        bool custom = i == DC_MODEL_TEMPORAL_RECENT || i == DC_MODEL_TEMPORAL_PERIODIC ||
                      i == DC_MODEL_TEMPORAL_POSITIONAL || i == DC_MODEL_HDC;
        assert_int_equal(m->kind == DC_MODEL_KIND_CUSTOM, custom);
        assert_int_equal(m->repo == NULL, custom); /* pretrained models name their repo */
        assert_true(m->memory_estimate > 0);
    }
}

static void test_input_support_table(void **state) {
    (void)state;
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        assert_true(dc_model_accepts((dc_model_id)i, DC_INPUT_TEXT)); /* every model takes text */
        assert_false(dc_model_accepts((dc_model_id)i, DC_INPUT_AUDIO)); /* none takes audio */
    }
    const dc_model_id code_models[] = {DC_MODEL_TEMPORAL_RECENT, DC_MODEL_TEMPORAL_PERIODIC,
                                       DC_MODEL_TEMPORAL_POSITIONAL, DC_MODEL_CAUSAL,
                                       DC_MODEL_CODE, DC_MODEL_HDC};
    int code_count = 0;
    for (int i = 0; i < DC_NUM_MODELS; i++) code_count += dc_model_accepts((dc_model_id)i, DC_INPUT_CODE);
    assert_int_equal(code_count, 6);
    for (size_t i = 0; i < sizeof code_models / sizeof *code_models; i++)
        assert_true(dc_model_accepts(code_models[i], DC_INPUT_CODE));
    for (int i = 0; i < DC_NUM_MODELS; i++)
        assert_int_equal(dc_model_accepts((dc_model_id)i, DC_INPUT_IMAGE), i == DC_MODEL_MULTIMODAL);
    assert_false(dc_model_accepts((dc_model_id)42, DC_INPUT_TEXT));
    assert_false(dc_model_accepts(DC_MODEL_SEMANTIC, (dc_input_type)9));
}

static void test_parse_model_names(void **state) {
    (void)state;
    dc_model_id id;
    assert_ok(dc_model_id_parse("semantic", &id));
    assert_int_equal(id, DC_MODEL_SEMANTIC);
    assert_ok(dc_model_id_parse("E12", &id));
    assert_int_equal(id, DC_MODEL_LATE_INTERACTION);
    assert_ok(dc_model_id_parse("e9", &id));
    assert_int_equal(id, DC_MODEL_HDC);
    assert_ok(dc_model_id_parse("all-MiniLM-L6-v2", &id));
    assert_int_equal(id, DC_MODEL_ENTITY);
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        assert_ok(dc_model_id_parse(dc_model_info_get((dc_model_id)i)->name, &id));
        assert_int_equal(id, i);
    }
    assert_status(dc_model_id_parse("E13", &id), DC_ERR_MODEL_NOT_FOUND);
    assert_detail_contains("E13");
    assert_status(dc_model_id_parse("", &id), DC_ERR_MODEL_NOT_FOUND);
    assert_status(dc_model_id_parse(NULL, &id), DC_ERR_INVALID_ARGUMENT);
}

static void test_input_type_names_round_trip(void **state) {
    (void)state;
    for (int t = 0; t < DC_NUM_INPUT_TYPES; t++) {
        dc_input_type back;
        assert_ok(dc_input_type_parse(dc_input_type_name((dc_input_type)t), &back));
        assert_int_equal(back, t);
    }
    dc_input_type back;
    assert_status(dc_input_type_parse("video", &back), DC_ERR_INVALID_ARGUMENT);
    assert_detail_contains("video");
    assert_string_equal(dc_input_type_name((dc_input_type)7), "unknown");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_twelve_models_in_canonical_order),
        cmocka_unit_test(test_seed_dimensions_and_repos),
        cmocka_unit_test(test_custom_models_are_exactly_temporal_and_hdc),
        cmocka_unit_test(test_input_support_table),
        cmocka_unit_test(test_parse_model_names),
        cmocka_unit_test(test_input_type_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

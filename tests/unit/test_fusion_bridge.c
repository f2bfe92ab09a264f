/* CAME-AB bridge (seed L24, methods §2.2): blend weight 0 is exactly the plain fusion, the
 * untrained bridge preserves similarity, absent groups are masked, checkpoints carry it. */
#include <math.h>

#include "fusion/fusemoe.h"
#include "fusion/internal.h"
#include "fusion/rng.h"
#include "test_support.h"

static void random_concat(dc_concat_embedding *c, uint32_t mask, dc_rng *r) {
    memset(c, 0, sizeof *c);
    for (int m = 0; m < DC_NUM_MODELS; m++) {
        if (!(mask & (1u << m))) continue;
        const dc_model_info *info = dc_model_info_get((dc_model_id)m);
        float *v = c->vector + info->offset;
        for (uint32_t i = 0; i < info->dim; i++) v[i] = (float)dc_rng_normal(r);
        dc_vec_normalize(v, info->dim);
    }
    c->present_mask = mask;
}

static dc_fusemoe *make(bool bridge, float blend, bool trained_experts) {
    dc_fusion_options o;
    dc_fusion_options_default(&o);
    o.hidden = 16;
    o.bridge = bridge;
    o.bridge_blend = blend;
    if (trained_experts) o.output_init = DC_INIT_XAVIER_UNIFORM;
    dc_fusemoe *f = NULL;
    assert_ok(dc_fusemoe_create_ex(&o, &f));
    return f;
}

static void fuse(dc_fusemoe *f, const dc_concat_embedding *c, float blend, dc_fused_embedding *out) {
    dc_fusion_call call;
    dc_fusion_call_init(&call);
    call.bridge_blend = blend;
    const dc_concat_embedding *in[1] = {c};
    dc_fused_init(out);
    assert_ok(dc_fusemoe_forward_ex(f, in, 1, &call, out));
}

/* Gives the bridge's output projection random weights, as training would. */
static void randomise_bridge(dc_fusemoe *f) {
    dc_fusion_weights *w = dc_fusemoe_weights(f);
    dc_fusion_weights *c = NULL;
    assert_ok(dc_fusion_weights_init(dc_fusion_weights_options(w), &c));
    assert_ok(dc_fusion_init_matrix(c->arena + c->layout.br_wo, DC_FUSION_OUT, DC_FUSION_BRIDGE_DIM,
                                    DC_INIT_XAVIER_UNIFORM, 5, 6));
    for (size_t i = 0; i < DC_FUSION_OUT; i++)
        c->arena[c->layout.br_bo + i] = (float)(0.01 * dc_rand_normal(5, 7, i));
    assert_ok(dc_fusemoe_swap(f, c));
    dc_fusion_weights_release(c);
    dc_fusion_weights_release(w);
}

static void test_blend_zero_is_plain_fusion(void **state) {
    (void)state;
    dc_fusemoe *plain = make(false, 0.0f, true), *off = make(true, 0.0f, true),
               *on = make(true, 0.7f, true);
    randomise_bridge(on);
    dc_concat_embedding *c = calloc(1, sizeof *c);
    dc_rng r = dc_rng_make(1, 1);
    for (int t = 0; t < 5; t++) {
        random_concat(c, t ? (uint32_t)(dc_rng_u64(&r) & DC_ALL_MODELS_MASK) | 1u : DC_ALL_MODELS_MASK, &r);
        dc_fused_embedding a, b, d;
        fuse(plain, c, -1.0f, &a);
        fuse(off, c, -1.0f, &b); /* bridge present, w = 0 */
        assert_memory_equal(&a, &b, sizeof a);
        fuse(on, c, 0.0f, &d);   /* w overridden to 0 for this call */
        assert_memory_equal(a.vector, d.vector, sizeof a.vector);
        fuse(on, c, -1.0f, &d);  /* w = 0.7 with a non-trivial bridge: different */
        assert_true(dc_vec_cosine(a.vector, d.vector, DC_DIM_FUSED) < 0.9999);
        assert_ok(dc_fused_validate(&d));
        assert_memory_equal(a.expert_weights, d.expert_weights, sizeof a.expert_weights);
    }
    free(c);
    dc_fusemoe_destroy(plain);
    dc_fusemoe_destroy(off);
    dc_fusemoe_destroy(on);
}

static void test_untrained_bridge_preserves_similarity(void **state) {
    (void)state;
    /* untrained everything: fused = L2(S·z) and the bridge's enhanced vector is S·z too */
    dc_fusemoe *plain = make(false, 0.0f, false), *bridged = make(true, 1.0f, false);
    dc_concat_embedding *c = calloc(1, sizeof *c);
    dc_rng r = dc_rng_make(2, 2);
    double worst = 0.0;
    for (int t = 0; t < 5; t++) {
        random_concat(c, t ? (uint32_t)(dc_rng_u64(&r) & DC_ALL_MODELS_MASK) | 2u : DC_ALL_MODELS_MASK, &r);
        dc_fused_embedding a, b;
        fuse(plain, c, -1.0f, &a);
        fuse(bridged, c, -1.0f, &b);
        for (int i = 0; i < DC_DIM_FUSED; i++) worst = fmax(worst, fabs((double)a.vector[i] - b.vector[i]));
    }
    print_message("untrained bridge at w = 1 vs plain fusion: max |diff| %.2e\n", worst);
    assert_true(worst < 1e-5);
    free(c);
    dc_fusemoe_destroy(plain);
    dc_fusemoe_destroy(bridged);
}

static void test_absent_groups_are_masked(void **state) {
    (void)state;
    dc_fusemoe *f = make(true, 1.0f, true);
    randomise_bridge(f);
    dc_concat_embedding *c = calloc(1, sizeof *c), *g = calloc(1, sizeof *g);
    dc_rng r = dc_rng_make(3, 3);
    /* the code group (E7) and the multimodal group (E10) absent */
    uint32_t mask = DC_ALL_MODELS_MASK & ~(1u << DC_MODEL_CODE) & ~(1u << DC_MODEL_MULTIMODAL);
    random_concat(c, mask, &r);
    *g = *c;
    const dc_model_info *e7 = dc_model_info_get(DC_MODEL_CODE);
    for (uint32_t i = 0; i < e7->dim; i++) g->vector[e7->offset + i] = 5.0f;
    dc_fused_embedding a, b;
    fuse(f, c, -1.0f, &a);
    fuse(f, g, -1.0f, &b);
    assert_memory_equal(a.vector, b.vector, sizeof a.vector);
    /* a single present group still works: attention over one key is that key */
    random_concat(c, 1u << DC_MODEL_CODE, &r);
    fuse(f, c, -1.0f, &a);
    assert_ok(dc_fused_validate(&a));
    assert_int_equal(dc_fusion_model_group[DC_MODEL_CODE], 3);
    assert_string_equal(dc_fusion_group_names[3], "code");
    free(c);
    free(g);
    dc_fusemoe_destroy(f);
}

static void test_bridge_checkpoint_round_trip(void **state) {
    (void)state;
    dc_fusion_options o;
    dc_fusion_options_default(&o);
    o.hidden = 8;
    o.bridge = true;
    o.bridge_blend = 0.25f;
    dc_fusion_weights *w = NULL, *back = NULL;
    assert_ok(dc_fusion_weights_init(&o, &w));
    const char *path = dc_test_write_temp("", 0, ".safetensors");
    assert_ok(dc_fusion_weights_save(w, path, "b1"));
    dc_fusion_options run;
    dc_fusion_options_default(&run);
    run.bridge_blend = 0.25f; /* w is a run-time choice; the file says the bridge exists */
    assert_ok(dc_fusion_weights_load(path, &run, &back));
    assert_true(dc_fusion_weights_options(back)->bridge);
    assert_true(dc_fusion_weights_options(back)->bridge_blend == 0.25f);
    assert_memory_equal(back->arena, w->arena, w->layout.total * sizeof(float));
    dc_fusion_weights_release(back);
    /* a checkpoint without a bridge turns a configured blend off */
    o.bridge = false;
    o.bridge_blend = 0.0f;
    dc_fusion_weights_release(w);
    assert_ok(dc_fusion_weights_init(&o, &w));
    assert_ok(dc_fusion_weights_save(w, path, "nb"));
    assert_ok(dc_fusion_weights_load(path, &run, &back));
    assert_false(dc_fusion_weights_options(back)->bridge);
    assert_true(dc_fusion_weights_options(back)->bridge_blend == 0.0f);
    dc_fusion_weights_release(back);
    dc_fusion_weights_release(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blend_zero_is_plain_fusion),
        cmocka_unit_test(test_untrained_bridge_preserves_similarity),
        cmocka_unit_test(test_absent_groups_are_masked),
        cmocka_unit_test(test_bridge_checkpoint_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

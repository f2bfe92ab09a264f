/* Neuromodulation (seed L26, methods §8) and embedding priors (seed L27) acting on FuseMoE. */
#include <math.h>

#include "fusion/fusemoe.h"
#include "fusion/neuromod.h"
#include "fusion/priors.h"
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

/* trained = random expert output layers (they then add noise of their own); untrained = the
 * zero output layers of DESIGN §7, where the fused cosine is the weighted mean of blocks */
static dc_fusemoe *make_kind(bool trained) {
    dc_fusion_options o;
    dc_fusion_options_default(&o);
    o.hidden = 16;
    if (trained) o.output_init = DC_INIT_XAVIER_UNIFORM;
    dc_fusemoe *f = NULL;
    assert_ok(dc_fusemoe_create_ex(&o, &f));
    return f;
}

static dc_fusemoe *make(void) { return make_kind(true); }

static dc_neuromod *make_nm(void) {
    dc_neuromod_params p;
    dc_neuromod_params_default(&p, DC_NUM_EXPERTS, DC_DEFAULT_TOP_K);
    dc_neuromod *n = NULL;
    assert_ok(dc_neuromod_create(&p, &n));
    return n;
}

static void fuse_mod(dc_fusemoe *f, const dc_concat_embedding *c, const dc_fusion_modulation *m,
                     dc_fused_embedding *out) {
    dc_fusion_call call;
    dc_fusion_call_init(&call);
    call.modulation = m;
    const dc_concat_embedding *in[1] = {c};
    dc_fused_init(out);
    assert_ok(dc_fusemoe_forward_ex(f, in, 1, &call, out));
}

static void test_neutral_state_is_exactly_unmodulated(void **state) {
    (void)state;
    dc_fusemoe *f = make();
    dc_neuromod *n = make_nm();
    dc_prior_manager *pm = NULL;
    assert_ok(dc_prior_manager_create(8, &pm));
    dc_fusion_modulation m;
    dc_neuromod_effects(n, &m);
    dc_prior_manager_apply(pm, 0.0, dc_neuromod_prior_strength(n), &m);
    assert_true(dc_fusion_modulation_is_neutral(&m));
    dc_concat_embedding *c = calloc(1, sizeof *c);
    dc_rng r = dc_rng_make(1, 2);
    random_concat(c, DC_ALL_MODELS_MASK, &r);
    dc_fused_embedding a, b;
    fuse_mod(f, c, NULL, &a);
    fuse_mod(f, c, &m, &b);
    assert_memory_equal(&a, &b, sizeof a);
    /* a state that was moved and decayed back is neutral again, bit for bit */
    dc_neuromod_state s = {0.9f, 0.1f, 1.0f, 0.0f};
    assert_ok(dc_neuromod_set_state(n, &s));
    dc_neuromod_signal sig = {.kind = DC_SIGNAL_FOCUS, .value = 0.8f, .domain = DC_FOCUS_CODE};
    assert_ok(dc_neuromod_signal_apply(n, &sig));
    dc_neuromod_effects(n, &m);
    assert_false(dc_fusion_modulation_is_neutral(&m));
    assert_ok(dc_neuromod_decay(n, 1000.0));
    dc_neuromod_get_state(n, &s);
    assert_true(s.dopamine == 0.5f && s.serotonin == 0.5f && s.noradrenaline == 0.5f &&
                s.acetylcholine == 0.5f);
    dc_neuromod_effects(n, &m);
    assert_true(dc_fusion_modulation_is_neutral(&m));
    fuse_mod(f, c, &m, &b);
    assert_memory_equal(&a, &b, sizeof a);
    free(c);
    dc_prior_manager_destroy(pm);
    dc_neuromod_destroy(n);
    dc_fusemoe_destroy(f);
}

static void test_serotonin_sets_top_k(void **state) {
    (void)state;
    dc_neuromod *n = make_nm();
    const struct {
        float level;
        uint32_t k; /* 0 = the configured 2 */
    } cases[] = {{0.0f, 1}, {0.2f, 1}, {0.3f, 0}, {0.5f, 0}, {0.6f, 3}, {0.9f, 7}, {1.0f, 8}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dc_neuromod_state s = {0.5f, cases[i].level, 0.5f, 0.5f};
        assert_ok(dc_neuromod_set_state(n, &s));
        dc_fusion_modulation m;
        dc_neuromod_effects(n, &m);
        if (m.top_k != cases[i].k)
            fail_msg("serotonin %.1f gave top-k %u, expected %u", (double)cases[i].level, m.top_k,
                     cases[i].k);
    }
    /* applied to the fusion: the result has that many experts */
    dc_fusemoe *f = make();
    dc_concat_embedding *c = calloc(1, sizeof *c);
    dc_rng r = dc_rng_make(3, 3);
    random_concat(c, DC_ALL_MODELS_MASK, &r);
    dc_neuromod_state s = {0.5f, 1.0f, 0.5f, 0.5f};
    assert_ok(dc_neuromod_set_state(n, &s));
    dc_fusion_modulation m;
    dc_neuromod_effects(n, &m);
    dc_fused_embedding out;
    fuse_mod(f, c, &m, &out);
    assert_int_equal(out.num_selected, 8);
    assert_ok(dc_fused_validate(&out));
    free(c);
    dc_fusemoe_destroy(f);
    dc_neuromod_destroy(n);
}

static void test_noradrenaline_sharpens_without_rerouting(void **state) {
    (void)state;
    dc_fusemoe *f = make();
    dc_neuromod *n = make_nm();
    dc_concat_embedding *c = calloc(1, sizeof *c);
    dc_rng r = dc_rng_make(5, 5);
    double prev_entropy = INFINITY;
    uint8_t sel0[DC_NUM_EXPERTS];
    float prev_top = 0.0f;
    for (int trial = 0; trial < 3; trial++) {
        random_concat(c, DC_ALL_MODELS_MASK, &r);
        prev_entropy = INFINITY;
        prev_top = 0.0f;
        for (int step = 0; step <= 10; step++) {
            dc_neuromod_state s = {0.5f, 0.5f, step / 10.0f, 0.5f};
            assert_ok(dc_neuromod_set_state(n, &s));
            dc_fusion_modulation m;
            dc_neuromod_effects(n, &m);
            assert_true(m.temperature_scale >= 0.5f - 1e-6f && m.temperature_scale <= 2.0f + 1e-6f);
            dc_fused_embedding out;
            fuse_mod(f, c, &m, &out);
            if (step == 0) memcpy(sel0, out.selected_experts, sizeof sel0);
            assert_memory_equal(sel0, out.selected_experts, sizeof sel0); /* same top-k set */
            double h = 0.0, z = 0.0;
            for (int j = 0; j < DC_NUM_EXPERTS; j++) z += out.expert_weights[j];
            for (int j = 0; j < DC_NUM_EXPERTS; j++) {
                double p = out.expert_weights[j] / z;
                if (p > 0) h -= p * log(p);
            }
            assert_true(h <= prev_entropy + 1e-9);
            assert_true(out.expert_weights[sel0[0]] >= prev_top);
            prev_entropy = h;
            prev_top = out.expert_weights[sel0[0]];
        }
    }
    free(c);
    dc_neuromod_destroy(n);
    dc_fusemoe_destroy(f);
}

static void test_focus_weights_models(void **state) {
    (void)state;
    dc_neuromod *n = make_nm();
    dc_neuromod_signal sig = {.kind = DC_SIGNAL_FOCUS, .value = 1.0f, .domain = DC_FOCUS_TEMPORAL};
    assert_ok(dc_neuromod_signal_apply(n, &sig));
    dc_fusion_modulation m;
    dc_neuromod_effects(n, &m);
    for (int i = 0; i < DC_NUM_MODELS; i++)
        assert_float_equal(m.model_weights[i], (i >= 1 && i <= 3) ? 2.0f : 1.0f, 0.0f);
    sig.value = 7.0f; /* clamped */
    sig.domain = DC_FOCUS_CODE;
    assert_ok(dc_neuromod_signal_apply(n, &sig));
    dc_neuromod_effects(n, &m);
    assert_float_equal(m.model_weights[DC_MODEL_CODE], 2.0f, 0.0f);
    assert_float_equal(m.model_weights[DC_MODEL_TEMPORAL_RECENT], 1.0f, 0.0f);
    /* a code focus raises the fused similarity of two items that agree only on E7 */
    dc_fusemoe *f = make_kind(false);
    dc_concat_embedding *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    dc_rng r = dc_rng_make(6, 6);
    const dc_model_info *e7 = dc_model_info_get(DC_MODEL_CODE);
    double plain = 0.0, focused = 0.0;
    const int pairs = 48;
    for (int p = 0; p < pairs; p++) {
        random_concat(a, DC_ALL_MODELS_MASK, &r);
        random_concat(b, DC_ALL_MODELS_MASK, &r);
        memcpy(b->vector + e7->offset, a->vector + e7->offset, e7->dim * sizeof(float));
        dc_fused_embedding fa, fb;
        fuse_mod(f, a, NULL, &fa);
        fuse_mod(f, b, NULL, &fb);
        plain += dc_vec_cosine(fa.vector, fb.vector, DC_DIM_FUSED) / pairs;
        fuse_mod(f, a, &m, &fa);
        fuse_mod(f, b, &m, &fb);
        focused += dc_vec_cosine(fa.vector, fb.vector, DC_DIM_FUSED) / pairs;
    }
    print_message("E7-only agreement: mean fused cosine %.3f plain, %.3f with code focus 1.0\n",
                  plain, focused);
    /* weighted mean: 1/12 = 0.083 plain, 2/13 = 0.154 with E7 weighted twice */
    assert_true(fabs(plain - 1.0 / 12) < 0.02 && fabs(focused - 2.0 / 13) < 0.02);
    free(a);
    free(b);
    dc_fusemoe_destroy(f);
    dc_neuromod_destroy(n);
}

static void test_clamping_and_invalid_values(void **state) {
    (void)state;
    dc_neuromod *n = make_nm();
    dc_neuromod_state s = {2.0f, -1.0f, 0.5f, 7.0f}, got;
    assert_ok(dc_neuromod_set_state(n, &s));
    dc_neuromod_get_state(n, &got);
    assert_true(got.dopamine == 1.0f && got.serotonin == 0.0f && got.acetylcholine == 1.0f);
    s.noradrenaline = NAN;
    assert_status(dc_neuromod_set_state(n, &s), DC_ERR_INVALID_VALUE);
    assert_detail_contains("noradrenaline");
    dc_neuromod_state d = {0.3f, 0.3f, 0.3f, -0.8f};
    assert_ok(dc_neuromod_update(n, &d));
    dc_neuromod_get_state(n, &got);
    assert_true(got.dopamine == 1.0f && got.acetylcholine >= 0.2f - 1e-6f);
    assert_status(dc_neuromod_decay(n, -1.0), DC_ERR_INVALID_VALUE);
    dc_neuromod_signal sig = {.kind = DC_SIGNAL_REWARD, .value = INFINITY};
    assert_status(dc_neuromod_signal_apply(n, &sig), DC_ERR_INVALID_VALUE);
    /* modulations handed directly to the forward are checked too */
    dc_fusemoe *f = make();
    dc_concat_embedding *c = calloc(1, sizeof *c);
    dc_rng r = dc_rng_make(7, 7);
    random_concat(c, DC_ALL_MODELS_MASK, &r);
    dc_fusion_modulation m;
    dc_fusion_modulation_neutral(&m);
    m.model_weights[3] = -1.0f;
    dc_fusion_call call;
    dc_fusion_call_init(&call);
    call.modulation = &m;
    const dc_concat_embedding *in[1] = {c};
    dc_fused_embedding out;
    assert_status(dc_fusemoe_forward_ex(f, in, 1, &call, &out), DC_ERR_INVALID_VALUE);
    assert_detail_contains("model_weights[3]");
    dc_fusion_modulation_neutral(&m);
    m.temperature_scale = 1000.0f; /* clamped to 4, still valid */
    m.top_k = 99;                  /* clamped to 8 */
    assert_ok(dc_fusemoe_forward_ex(f, in, 1, &call, &out));
    assert_int_equal(out.num_selected, 8);
    free(c);
    dc_fusemoe_destroy(f);
    dc_neuromod_destroy(n);
}

static void test_adapt_mode(void **state) {
    (void)state;
    dc_neuromod *n = make_nm();
    const uint8_t sel[2] = {3, 5};
    float b[DC_NUM_EXPERTS], prev = 0.0f;
    for (int i = 0; i < 400; i++) {
        assert_ok(dc_neuromod_adapt(n, sel, 1, 1.0f)); /* constant positive feedback for expert 3 */
        dc_neuromod_biases(n, b);
        assert_true(b[3] >= prev);
        prev = b[3];
    }
    assert_float_equal(b[3], 1.0f, 1e-6f); /* reached bias_max */
    assert_float_equal(b[5], 0.0f, 0.0f);
    /* the bias changes which experts are selected, not the probabilities */
    dc_fusemoe *f = make();
    dc_concat_embedding *c = calloc(1, sizeof *c);
    dc_rng r = dc_rng_make(8, 8);
    random_concat(c, DC_ALL_MODELS_MASK, &r);
    dc_fused_embedding plain, biased;
    fuse_mod(f, c, NULL, &plain);
    dc_fusion_modulation m;
    dc_neuromod_effects(n, &m);
    m.expert_bias[3] = 100.0f; /* overwhelming: expert 3 must be selected first */
    fuse_mod(f, c, &m, &biased);
    assert_int_equal(biased.selected_experts[0], 3);
    assert_memory_equal(plain.expert_weights, biased.expert_weights, sizeof plain.expert_weights);
    /* without adapt, many forwards leave the biases alone (no hidden drift) */
    float before[DC_NUM_EXPERTS], after[DC_NUM_EXPERTS];
    dc_neuromod_biases(n, before);
    dc_fusion_modulation m2;
    for (int i = 0; i < 200; i++) {
        dc_neuromod_effects(n, &m2);
        fuse_mod(f, c, &m2, &biased);
    }
    dc_neuromod_biases(n, after);
    assert_memory_equal(before, after, sizeof before);
    dc_neuromod_signal reset = {.kind = DC_SIGNAL_RESET};
    assert_ok(dc_neuromod_signal_apply(n, &reset));
    dc_neuromod_effects(n, &m);
    assert_true(dc_fusion_modulation_is_neutral(&m));
    const uint8_t badsel[1] = {9};
    assert_status(dc_neuromod_adapt(n, badsel, 1, 1.0f), DC_ERR_INVALID_VALUE);
    free(c);
    dc_fusemoe_destroy(f);
    dc_neuromod_destroy(n);
}

/* ---- priors ---- */

static void test_domain_templates(void **state) {
    (void)state;
    const float *med = dc_domain_template(DC_DOMAIN_MEDICAL);
    const float *code = dc_domain_template(DC_DOMAIN_CODE_DEVELOPMENT);
    assert_true(med[DC_MODEL_SEMANTIC] > 1.0f && med[DC_MODEL_ENTITY] > 1.0f);
    for (int m = 0; m < DC_NUM_MODELS; m++)
        if (m != DC_MODEL_SEMANTIC && m != DC_MODEL_ENTITY)
            assert_true(med[m] < med[DC_MODEL_SEMANTIC]);
    assert_true(code[DC_MODEL_CODE] > 1.0f && code[DC_MODEL_GRAPH] > 1.0f);
    for (int m = 0; m < DC_NUM_MODELS; m++) assert_true(code[m] <= code[DC_MODEL_CODE]);
    for (int d = 0; d < DC_DOMAIN_COUNT; d++) {
        dc_domain back;
        assert_ok(dc_domain_parse(dc_domain_name((dc_domain)d), &back));
        assert_int_equal(back, d);
    }
    assert_null(dc_domain_template(DC_DOMAIN_COUNT));
}

static void test_prior_builder_and_aggregation(void **state) {
    (void)state;
    dc_prior_builder b;
    dc_prior_builder_init(&b);
    dc_prior_builder_domain(&b, DC_DOMAIN_LEGAL);
    dc_prior_builder_boost(&b, DC_MODEL_ENTITY, 2.0f);
    dc_prior_builder_suppress(&b, DC_MODEL_CODE, 0.0f);
    dc_prior_builder_confidence(&b, 0.5f);
    dc_prior_builder_ttl(&b, 10.0);
    dc_prior p;
    assert_ok(dc_prior_builder_build(&b, 100.0, &p));
    assert_float_equal(p.model_weights[DC_MODEL_ENTITY],
                       2.0f * dc_domain_template(DC_DOMAIN_LEGAL)[DC_MODEL_ENTITY], 1e-6f);
    assert_float_equal(p.model_weights[DC_MODEL_CODE], 0.0f, 0.0f);
    dc_prior_builder_init(&b);
    dc_prior_builder_boost(&b, DC_MODEL_ENTITY, 0.5f); /* not a boost */
    dc_prior_builder_ttl(&b, 10.0);
    dc_prior q;
    assert_status(dc_prior_builder_build(&b, 0.0, &q), DC_ERR_INVALID_VALUE);
    assert_detail_contains("boost");

    dc_prior_manager *pm = NULL;
    assert_ok(dc_prior_manager_create(4, &pm));
    float w[DC_NUM_MODELS];
    dc_prior_manager_weights(pm, 100.0, w);
    for (int m = 0; m < DC_NUM_MODELS; m++) assert_float_equal(w[m], 1.0f, 0.0f);
    assert_ok(dc_prior_manager_add(pm, &p)); /* confidence 0.5: halfway to the template */
    dc_prior_manager_weights(pm, 105.0, w);
    for (int m = 0; m < DC_NUM_MODELS; m++)
        assert_float_equal(w[m], 0.5f + 0.5f * p.model_weights[m], 1e-6f);
    /* a second prior: confidence-weighted average, β = 1 − (1−0.5)(1−1) = 1 */
    assert_ok(dc_prior_manager_prime(pm, DC_DOMAIN_MEDICAL, 1.0f, 50.0, 100.0));
    dc_prior_manager_weights(pm, 105.0, w);
    const float *med = dc_domain_template(DC_DOMAIN_MEDICAL);
    for (int m = 0; m < DC_NUM_MODELS; m++)
        assert_float_equal(w[m], (0.5f * p.model_weights[m] + med[m]) / 1.5f, 1e-5f);
    assert_int_equal(dc_prior_manager_active(pm, 105.0), 2);
    /* the legal prior expires at 110: it stops acting before expire() removes it */
    assert_int_equal(dc_prior_manager_active(pm, 111.0), 1);
    dc_prior_manager_weights(pm, 111.0, w);
    for (int m = 0; m < DC_NUM_MODELS; m++) assert_float_equal(w[m], med[m], 1e-6f);
    assert_int_equal(dc_prior_manager_expire(pm, 111.0), 1);
    assert_int_equal(dc_prior_manager_expire(pm, 200.0), 1);
    dc_prior_manager_weights(pm, 200.0, w);
    for (int m = 0; m < DC_NUM_MODELS; m++) assert_float_equal(w[m], 1.0f, 0.0f);
    p.confidence = 0.0f;
    assert_status(dc_prior_manager_add(pm, &p), DC_ERR_INVALID_VALUE);
    dc_prior_manager_destroy(pm);
}

static void test_priors_act_on_fusion_until_they_expire(void **state) {
    (void)state;
    dc_fusemoe *f = make_kind(false);
    dc_neuromod *n = make_nm();
    dc_prior_manager *pm = NULL;
    assert_ok(dc_prior_manager_create(4, &pm));
    assert_ok(dc_prior_manager_prime(pm, DC_DOMAIN_MEDICAL, 1.0f, 60.0, 0.0));
    /* pairs that agree only on E1 and E11 (the medical template's strongest models) */
    dc_concat_embedding *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    dc_rng r = dc_rng_make(9, 9);
    const dc_model_info *e1 = dc_model_info_get(DC_MODEL_SEMANTIC), *e11 = dc_model_info_get(DC_MODEL_ENTITY);
    dc_fusion_modulation m;
    dc_neuromod_effects(n, &m);
    dc_prior_manager_apply(pm, 30.0, dc_neuromod_prior_strength(n), &m);
    assert_false(dc_fusion_modulation_is_neutral(&m));
    dc_fused_embedding pa, pb, ma, mb;
    double plain = 0.0, primed = 0.0;
    const int pairs = 48;
    for (int p = 0; p < pairs; p++) {
        random_concat(a, DC_ALL_MODELS_MASK, &r);
        random_concat(b, DC_ALL_MODELS_MASK, &r);
        memcpy(b->vector + e1->offset, a->vector + e1->offset, e1->dim * sizeof(float));
        memcpy(b->vector + e11->offset, a->vector + e11->offset, e11->dim * sizeof(float));
        fuse_mod(f, a, NULL, &pa);
        fuse_mod(f, b, NULL, &pb);
        fuse_mod(f, a, &m, &ma);
        fuse_mod(f, b, &m, &mb);
        plain += dc_vec_cosine(pa.vector, pb.vector, DC_DIM_FUSED) / pairs;
        primed += dc_vec_cosine(ma.vector, mb.vector, DC_DIM_FUSED) / pairs;
    }
    print_message("E1+E11 agreement: mean fused cosine %.3f plain, %.3f with a medical prior\n",
                  plain, primed);
    /* weighted mean: 2/12 = 0.167 plain, (1.3 + 1.4)/11.9 = 0.227 with the template */
    assert_true(fabs(plain - 2.0 / 12) < 0.02 && fabs(primed - 2.7 / 11.9) < 0.02);
    /* ACh = 1: trust the input, the prior has no effect */
    dc_neuromod_state s = {0.5f, 0.5f, 0.5f, 1.0f};
    assert_ok(dc_neuromod_set_state(n, &s));
    dc_neuromod_effects(n, &m);
    dc_prior_manager_apply(pm, 30.0, dc_neuromod_prior_strength(n), &m);
    assert_true(dc_fusion_modulation_is_neutral(&m));
    /* expired: exactly the unmodulated result */
    s.acetylcholine = 0.5f;
    assert_ok(dc_neuromod_set_state(n, &s));
    dc_neuromod_effects(n, &m);
    dc_prior_manager_apply(pm, 61.0, dc_neuromod_prior_strength(n), &m);
    assert_true(dc_fusion_modulation_is_neutral(&m));
    fuse_mod(f, a, &m, &ma);
    assert_memory_equal(&ma, &pa, sizeof ma);
    free(a);
    free(b);
    dc_prior_manager_destroy(pm);
    dc_neuromod_destroy(n);
    dc_fusemoe_destroy(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_neutral_state_is_exactly_unmodulated),
        cmocka_unit_test(test_serotonin_sets_top_k),
        cmocka_unit_test(test_noradrenaline_sharpens_without_rerouting),
        cmocka_unit_test(test_focus_weights_models),
        cmocka_unit_test(test_clamping_and_invalid_values),
        cmocka_unit_test(test_adapt_mode),
        cmocka_unit_test(test_domain_templates),
        cmocka_unit_test(test_prior_builder_and_aggregation),
        cmocka_unit_test(test_priors_act_on_fusion_until_they_expire),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* FuseMoE: gate, JL map, residual experts, router, forward properties (DESIGN §7, methods §1). */
#include <math.h>

#include "fusion/fusemoe.h"
#include "fusion/internal.h"
#include "fusion/rng.h"
#include "test_support.h"

/* ---- helpers ---- */

static dc_concat_embedding *concat_new(void) {
    dc_concat_embedding *c = calloc(1, sizeof *c);
    assert_non_null(c);
    return c;
}

static void unit_block(float *v, uint32_t n, dc_rng *r) {
    for (uint32_t i = 0; i < n; i++) v[i] = (float)dc_rng_normal(r);
    dc_vec_normalize(v, n);
}

/* A random concatenation with unit blocks for the models in `mask`. */
static void random_concat(dc_concat_embedding *c, uint32_t mask, dc_rng *r) {
    memset(c, 0, sizeof *c);
    for (int m = 0; m < DC_NUM_MODELS; m++) {
        if (!(mask & (1u << m))) continue;
        const dc_model_info *info = dc_model_info_get((dc_model_id)m);
        unit_block(c->vector + info->offset, info->dim, r);
    }
    c->present_mask = mask;
    c->content_hash = (dc_hash128){dc_rng_u64(r), dc_rng_u64(r)};
}

/* b's block m = normalise(ρ_m·a_m + √(1−ρ_m²)·noise): block cosines near ρ_m. */
static void correlated_concat(const dc_concat_embedding *a, dc_concat_embedding *b,
                              const double *rho, dc_rng *r) {
    memset(b, 0, sizeof *b);
    b->present_mask = a->present_mask;
    for (int m = 0; m < DC_NUM_MODELS; m++) {
        if (!(a->present_mask & (1u << m))) continue;
        const dc_model_info *info = dc_model_info_get((dc_model_id)m);
        float *nb = b->vector + info->offset;
        unit_block(nb, info->dim, r);
        const float *ab = a->vector + info->offset;
        double s = sqrt(1.0 - rho[m] * rho[m]);
        for (uint32_t i = 0; i < info->dim; i++) nb[i] = (float)(rho[m] * ab[i] + s * nb[i]);
        dc_vec_normalize(nb, info->dim);
    }
}

static double block_cos(const dc_concat_embedding *a, const dc_concat_embedding *b, int m) {
    const dc_model_info *info = dc_model_info_get((dc_model_id)m);
    return dc_vec_cosine(a->vector + info->offset, b->vector + info->offset, info->dim);
}

static void small_options(dc_fusion_options *o, bool trained_experts) {
    dc_fusion_options_default(o);
    o->hidden = 32;
    if (trained_experts) o->output_init = DC_INIT_XAVIER_UNIFORM;
}

static dc_fusemoe *make_fusemoe(const dc_fusion_options *o) {
    dc_fusemoe *f = NULL;
    assert_ok(dc_fusemoe_create_ex(o, &f));
    return f;
}

static void fuse1(dc_fusemoe *f, const dc_concat_embedding *c, dc_fused_embedding *out) {
    dc_fused_init(out);
    const dc_concat_embedding *in[1] = {c};
    assert_ok(dc_fusemoe_forward(f, in, 1, out));
}

/* ---- gate ---- */

static void test_gate_probabilities_valid(void **state) {
    (void)state;
    dc_rng r = dc_rng_make(7, 1);
    for (int trial = 0; trial < 200; trial++) {
        double s[DC_NUM_EXPERTS];
        for (int i = 0; i < DC_NUM_EXPERTS; i++) s[i] = 10.0 * dc_rng_normal(&r);
        uint32_t k = 1 + (uint32_t)trial % DC_NUM_EXPERTS;
        dc_gate_result g;
        dc_gate_probs(s, DC_NUM_EXPERTS, 0.5 + trial % 3, trial % 2 ? 0.01 : 0.0, NULL, k, &g);
        double sum = 0.0, wsum = 0.0;
        for (int i = 0; i < DC_NUM_EXPERTS; i++) {
            assert_true(g.prob[i] >= 0.0f && g.prob[i] <= 1.0f);
            sum += g.prob[i];
        }
        assert_true(fabs(sum - 1.0) < 1e-6);
        assert_int_equal(g.k, k);
        bool seen[DC_NUM_EXPERTS] = {false};
        for (uint32_t j = 0; j < k; j++) {
            assert_false(seen[g.selected[j]]);
            seen[g.selected[j]] = true;
            wsum += g.weight[j];
            /* selected in descending score order, and every unselected score is lower */
            if (j) assert_true(s[g.selected[j - 1]] >= s[g.selected[j]]);
            for (int i = 0; i < DC_NUM_EXPERTS; i++)
                if (!seen[i] && j == k - 1) assert_true(s[i] <= s[g.selected[j]]);
        }
        assert_true(fabs(wsum - 1.0) < 1e-6);
    }
}

static void test_gate_smoothing_and_temperature(void **state) {
    (void)state;
    double s[4] = {2.0, 0.0, -1.0, 0.5};
    dc_gate_result g;
    dc_gate_probs(s, 4, 2.0, 0.1, NULL, 2, &g);
    double e[4], z = 0.0;
    for (int i = 0; i < 4; i++) z += (e[i] = exp(s[i] / 2.0));
    for (int i = 0; i < 4; i++)
        assert_float_equal(g.prob[i], (e[i] / z + 0.1) / (1.0 + 0.1 * 4), 1e-6);
    assert_int_equal(g.selected[0], 0);
    assert_int_equal(g.selected[1], 3);
    assert_float_equal(g.weight[0], g.prob[0] / (g.prob[0] + g.prob[3]), 1e-6);
    /* ties go to the lower index */
    double t[4] = {1.0, 3.0, 3.0, 3.0};
    dc_gate_probs(t, 4, 1.0, 0.0, NULL, 2, &g);
    assert_int_equal(g.selected[0], 1);
    assert_int_equal(g.selected[1], 2);
    /* a selection bias changes which experts are chosen, not the probabilities */
    float bias[4] = {0, 0, 0, 5.0f};
    dc_gate_result gb;
    dc_gate_probs(t, 4, 1.0, 0.0, bias, 2, &gb);
    assert_int_equal(gb.selected[0], 3);
    assert_memory_equal(g.prob, gb.prob, sizeof g.prob);
}

static void test_laplace_gate_picks_nearest_centres(void **state) {
    (void)state;
    dc_fusion_options o;
    small_options(&o, false);
    o.gating = DC_GATING_LAPLACE;
    dc_fusion_weights *w = NULL;
    assert_ok(dc_fusion_weights_init(&o, &w));
    /* h = a known vector; put centre 5 at h, centre 2 near it, the others far away */
    float *h = malloc(DC_FUSION_IN * sizeof *h);
    dc_rng r = dc_rng_make(3, 3);
    for (int i = 0; i < DC_FUSION_IN; i++) h[i] = (float)dc_rng_normal(&r);
    float *C = w->arena + w->layout.gate_w;
    for (int e = 0; e < DC_NUM_EXPERTS; e++) {
        float *c = C + (size_t)e * DC_FUSION_GATE_IN;
        for (int i = 0; i < DC_FUSION_IN; i++)
            c[i] = e == 5 ? h[i] : e == 2 ? h[i] + 0.01f : h[i] + 1.0f + 0.1f * e;
        for (int m = 0; m < DC_NUM_MODELS; m++) c[DC_FUSION_IN + m] = 1.0f; /* all present */
    }
    double s[DC_NUM_EXPERTS];
    dc_fusion_gate_scores(w, h, DC_ALL_MODELS_MASK, s);
    dc_gate_result g;
    dc_gate_probs(s, DC_NUM_EXPERTS, 1.0, 0.0, NULL, 2, &g);
    assert_int_equal(g.selected[0], 5); /* the sign-bug regression: nearest, not farthest */
    assert_int_equal(g.selected[1], 2);
    assert_true(fabs(s[5]) < 1e-9);
    assert_true(fabs(s[2] + 0.01 * sqrt((double)DC_FUSION_IN)) < 1e-4);
    /* gate value = exp(−d_i) / Σ exp(−d_j) */
    double z = 0.0;
    for (int e = 0; e < DC_NUM_EXPERTS; e++) z += exp(s[e]);
    for (int e = 0; e < DC_NUM_EXPERTS; e++) assert_float_equal(g.prob[e], exp(s[e]) / z, 1e-6);
    free(h);
    dc_fusion_weights_release(w);
}

/* ---- JL map ---- */

static void test_jl_preserves_inner_products(void **state) {
    (void)state;
    dc_jl_map *m = NULL;
    assert_ok(dc_jl_create(42, 8, &m));
    dc_jl_map *m2 = NULL;
    assert_ok(dc_jl_create(42, 8, &m2));
    assert_memory_equal(m->col, m2->col, (size_t)DC_FUSION_IN * 8 * sizeof *m->col);
    dc_jl_destroy(m2);
    dc_rng r = dc_rng_make(11, 0);
    float *x = malloc(DC_FUSION_IN * sizeof *x), *y = malloc(DC_FUSION_IN * sizeof *y);
    float sx[DC_FUSION_OUT], sy[DC_FUSION_OUT];
    double err = 0.0, err_norm = 0.0;
    const int trials = 100;
    for (int t = 0; t < trials; t++) {
        unit_block(x, DC_FUSION_IN, &r);
        unit_block(y, DC_FUSION_IN, &r);
        double rho = 0.9 * dc_rng_unit(&r);
        for (int i = 0; i < DC_FUSION_IN; i++) y[i] = (float)(rho * x[i] + (1 - rho) * y[i]);
        dc_jl_apply(m, x, sx);
        dc_jl_apply(m, y, sy);
        double dot = 0.0, sdot = 0.0, nx = 0.0;
        for (int i = 0; i < DC_FUSION_IN; i++) dot += (double)x[i] * y[i];
        for (int i = 0; i < DC_FUSION_OUT; i++) {
            sdot += (double)sx[i] * sy[i];
            nx += (double)sx[i] * sx[i];
        }
        err += fabs(sdot - dot);
        err_norm += fabs(nx - 1.0);
    }
    print_message("JL 8320->1536 nnz 8: mean |<Sx,Sy> - <x,y>| = %.4f, mean |‖Sx‖² − 1| = %.4f\n",
                  err / trials, err_norm / trials);
    assert_true(err / trials < 0.05);
    assert_true(err_norm / trials < 0.06);
    free(x);
    free(y);
    dc_jl_destroy(m);
    assert_status(dc_jl_create(1, 7, &m), DC_ERR_CONFIG); /* must divide 1536 */
}

/* ---- forward properties ---- */

static double cosine_error_on_random_pairs(const dc_fusion_options *o, uint32_t mask_a,
                                           uint32_t mask_b, int pairs, double *max_err) {
    dc_fusemoe *f = make_fusemoe(o);
    dc_rng r = dc_rng_make(1234, mask_a ^ (mask_b << 12));
    dc_concat_embedding *a = concat_new(), *b = concat_new();
    dc_fused_embedding fa, fb;
    double total = 0.0, worst = 0.0, wsum = 0.0;
    for (int m = 0; m < DC_NUM_MODELS; m++) wsum += o->block_weights[m];
    for (int p = 0; p < pairs; p++) {
        random_concat(a, mask_a, &r);
        double rho[DC_NUM_MODELS];
        for (int m = 0; m < DC_NUM_MODELS; m++) rho[m] = -0.2 + 1.2 * dc_rng_unit(&r);
        correlated_concat(a, b, rho, &r);
        b->present_mask = mask_b; /* blocks outside it are ignored (garbage allowed) */
        fuse1(f, a, &fa);
        fuse1(f, b, &fb);
        double fused = dc_vec_cosine(fa.vector, fb.vector, DC_DIM_FUSED);
        /* target: Σ_common w·cos / √(Σ_a w · Σ_b w), the weighted mean when masks agree */
        double num = 0.0, wa = 0.0, wb = 0.0;
        for (int m = 0; m < DC_NUM_MODELS; m++) {
            double w = o->block_weights[m] / wsum;
            if (mask_a & (1u << m)) wa += w;
            if (mask_b & (1u << m)) wb += w;
            if ((mask_a & mask_b) & (1u << m)) num += w * block_cos(a, b, m);
        }
        double target = num / sqrt(wa * wb);
        double e = fabs(fused - target);
        total += e;
        if (e > worst) worst = e;
    }
    free(a);
    free(b);
    dc_fusemoe_destroy(f);
    if (max_err) *max_err = worst;
    return total / pairs;
}

static void test_untrained_cosine_tracks_block_cosines(void **state) {
    (void)state;
    dc_fusion_options o;
    small_options(&o, false);
    double worst = 0.0;
    double mae = cosine_error_on_random_pairs(&o, DC_ALL_MODELS_MASK, DC_ALL_MODELS_MASK, 300,
                                              &worst);
    print_message("untrained fused cosine vs mean of 12 block cosines: MAE %.4f, max %.4f "
                  "(300 random pairs, block cosines in [-0.2, 1])\n", mae, worst);
    assert_true(mae <= 0.05);
    /* non-uniform block weights: the weighted mean */
    const float bw[DC_NUM_MODELS] = {4, 1, 1, 1, 2, 2, 3, 1, 1, 2, 1, 1};
    memcpy(o.block_weights, bw, sizeof bw);
    mae = cosine_error_on_random_pairs(&o, DC_ALL_MODELS_MASK, DC_ALL_MODELS_MASK, 150, &worst);
    print_message("  weighted (E1 4, E7 3, ...): MAE %.4f, max %.4f\n", mae, worst);
    assert_true(mae <= 0.05);
    /* missing blocks: mean over the blocks present in both */
    small_options(&o, false);
    uint32_t ma = DC_ALL_MODELS_MASK & ~(1u << DC_MODEL_MULTIMODAL) & ~(1u << DC_MODEL_CODE);
    mae = cosine_error_on_random_pairs(&o, ma, ma, 150, &worst);
    print_message("  E7 and E10 missing in both: MAE %.4f, max %.4f\n", mae, worst);
    assert_true(mae <= 0.05);
    mae = cosine_error_on_random_pairs(&o, DC_ALL_MODELS_MASK, ma, 150, &worst);
    print_message("  E7 and E10 missing in one: MAE %.4f, max %.4f\n", mae, worst);
    assert_true(mae <= 0.05);
}

static void test_deterministic_for_a_seed(void **state) {
    (void)state;
    dc_fusion_options o;
    small_options(&o, true);
    dc_fusemoe *f1 = make_fusemoe(&o), *f2 = make_fusemoe(&o);
    o.seed = 43;
    dc_fusemoe *f3 = make_fusemoe(&o);
    dc_concat_embedding *c = concat_new();
    dc_rng r = dc_rng_make(5, 5);
    random_concat(c, DC_ALL_MODELS_MASK, &r);
    dc_fused_embedding a, b, d;
    fuse1(f1, c, &a);
    fuse1(f2, c, &b);
    fuse1(f3, c, &d);
    assert_memory_equal(a.vector, b.vector, sizeof a.vector);
    assert_memory_equal(a.expert_weights, b.expert_weights, sizeof a.expert_weights);
    assert_memory_equal(a.selected_experts, b.selected_experts, sizeof a.selected_experts);
    assert_true(dc_vec_cosine(a.vector, d.vector, DC_DIM_FUSED) < 0.99999);
    /* the same object twice */
    fuse1(f1, c, &b);
    assert_memory_equal(a.vector, b.vector, sizeof a.vector);
    /* both weights carry the same checksum */
    dc_fusion_weights *w1 = dc_fusemoe_weights(f1), *w2 = dc_fusemoe_weights(f2);
    assert_string_equal(dc_fusion_weights_version(w1)->checksum,
                        dc_fusion_weights_version(w2)->checksum);
    assert_string_equal(dc_fusion_weights_version(w1)->version, "0.0.0-init");
    assert_string_equal(dc_fusion_weights_version(w1)->source, "zero-shot-seed-42");
    assert_int_not_equal(dc_fusion_weights_version(w1)->serial,
                         dc_fusion_weights_version(w2)->serial);
    dc_fusion_weights_release(w1);
    dc_fusion_weights_release(w2);
    free(c);
    dc_fusemoe_destroy(f1);
    dc_fusemoe_destroy(f2);
    dc_fusemoe_destroy(f3);
}

static void test_output_fields_valid_and_round_trip(void **state) {
    (void)state;
    dc_fusion_options o;
    small_options(&o, true);
    o.top_k = 3;
    dc_fusemoe *f = make_fusemoe(&o);
    dc_concat_embedding *c = concat_new();
    dc_rng r = dc_rng_make(9, 9);
    random_concat(c, DC_ALL_MODELS_MASK & ~(1u << DC_MODEL_HDC), &r);
    dc_fused_embedding out;
    fuse1(f, c, &out);
    assert_ok(dc_fused_validate(&out));
    assert_true(fabs(dc_vec_l2_norm(out.vector, DC_DIM_FUSED) - 1.0) < 1e-5);
    assert_int_equal(out.num_selected, 3);
    assert_int_equal(out.present_mask, c->present_mask);
    assert_true(dc_hash128_equal(out.content_hash, c->content_hash));
    int nonzero = 0;
    double sum = 0.0;
    for (int e = 0; e < DC_NUM_EXPERTS; e++) {
        nonzero += out.expert_weights[e] > 0.0f;
        sum += out.expert_weights[e];
    }
    assert_int_equal(nonzero, 8); /* all 8 gate probabilities, not only the selected */
    assert_true(fabs(sum - 1.0) < 1e-5);
    /* the selected experts are the most probable ones */
    for (int j = 0; j < 3; j++)
        for (int e = 0; e < DC_NUM_EXPERTS; e++) {
            bool sel = false;
            for (int q = 0; q < 3; q++) sel |= out.selected_experts[q] == e;
            if (!sel) assert_true(out.expert_weights[e] <= out.expert_weights[out.selected_experts[j]]);
        }
    size_t cap = dc_fused_encoded_size(&out), written = 0;
    uint8_t *buf = malloc(cap);
    assert_ok(dc_fused_encode(&out, buf, cap, &written));
    dc_fused_embedding back;
    assert_ok(dc_fused_decode(buf, written, &back));
    assert_memory_equal(back.vector, out.vector, sizeof out.vector);
    assert_memory_equal(back.expert_weights, out.expert_weights, sizeof out.expert_weights);
    assert_memory_equal(back.selected_experts, out.selected_experts, out.num_selected);
    assert_int_equal(back.num_selected, 3);
    assert_int_equal(back.present_mask, out.present_mask);
    dc_fused_free(&back);
    free(buf);
    free(c);
    dc_fusemoe_destroy(f);
}

static void test_missing_blocks(void **state) {
    (void)state;
    dc_fusion_options o;
    small_options(&o, true);
    dc_fusemoe *f = make_fusemoe(&o);
    dc_concat_embedding *c = concat_new(), *g = concat_new();
    dc_rng r = dc_rng_make(21, 0);
    uint32_t mask = DC_ALL_MODELS_MASK & ~(1u << DC_MODEL_SEMANTIC) & ~(1u << DC_MODEL_CAUSAL);
    random_concat(c, mask, &r);
    /* the same input with garbage (even NaN) in the absent blocks */
    *g = *c;
    const dc_model_info *e1 = dc_model_info_get(DC_MODEL_SEMANTIC);
    const dc_model_info *e5 = dc_model_info_get(DC_MODEL_CAUSAL);
    for (uint32_t i = 0; i < e1->dim; i++) g->vector[e1->offset + i] = 1e30f;
    for (uint32_t i = 0; i < e5->dim; i++) g->vector[e5->offset + i] = NAN;
    dc_fused_embedding a, b;
    fuse1(f, c, &a);
    fuse1(f, g, &b);
    assert_memory_equal(a.vector, b.vector, sizeof a.vector);
    assert_memory_equal(a.expert_weights, b.expert_weights, sizeof a.expert_weights);
    assert_int_equal(a.present_mask, mask);
    /* the gate sees the mask: the same present blocks with another mask route differently */
    dc_concat_embedding *full = concat_new();
    *full = *c;
    full->present_mask = DC_ALL_MODELS_MASK;
    memset(full->vector + e1->offset, 0, e1->dim * sizeof(float));
    memset(full->vector + e5->offset, 0, e5->dim * sizeof(float));
    fuse1(f, full, &b);
    assert_memory_not_equal(a.expert_weights, b.expert_weights, sizeof a.expert_weights);
    /* only one model present still fuses */
    random_concat(c, 1u << DC_MODEL_LATE_INTERACTION, &r);
    fuse1(f, c, &a);
    assert_ok(dc_fused_validate(&a));
    /* no model present, or bits beyond the 12 models, are errors */
    const dc_concat_embedding *in[1] = {c};
    c->present_mask = 0;
    assert_status(dc_fusemoe_forward(f, in, 1, &a), DC_ERR_FUSION);
    assert_detail_contains("no model");
    c->present_mask = 1u << 12;
    assert_status(dc_fusemoe_forward(f, in, 1, &a), DC_ERR_INVALID_VALUE);
    /* NaN in a present block */
    random_concat(c, DC_ALL_MODELS_MASK, &r);
    c->vector[dc_model_info_get(DC_MODEL_CODE)->offset + 3] = NAN;
    assert_status(dc_fusemoe_forward(f, in, 1, &a), DC_ERR_INVALID_VALUE);
    assert_detail_contains("E7");
    in[0] = NULL;
    assert_status(dc_fusemoe_forward(f, in, 1, &a), DC_ERR_INVALID_ARGUMENT);
    free(c);
    free(g);
    free(full);
    dc_fusemoe_destroy(f);
}

/* ---- batched execution ---- */

static void check_grouped_equals_rowwise(const dc_fusion_options *o, size_t n) {
    dc_fusemoe *f = make_fusemoe(o);
    dc_rng r = dc_rng_make(77, n);
    dc_concat_embedding **cs = calloc(n, sizeof *cs);
    for (size_t i = 0; i < n; i++) {
        cs[i] = concat_new();
        uint32_t mask = (uint32_t)(dc_rng_u64(&r) & DC_ALL_MODELS_MASK) | 1u;
        random_concat(cs[i], mask, &r);
    }
    dc_fused_embedding *ga = calloc(n, sizeof *ga), *rb = calloc(n, sizeof *rb),
                       *one = calloc(1, sizeof *one);
    dc_fusion_call call;
    dc_fusion_call_init(&call);
    assert_ok(dc_fusemoe_forward_ex(f, (const dc_concat_embedding *const *)cs, n, &call, ga));
    call.exec = DC_FUSION_EXEC_ROWWISE;
    assert_ok(dc_fusemoe_forward_ex(f, (const dc_concat_embedding *const *)cs, n, &call, rb));
    double worst = 0.0, worst_single = 0.0;
    for (size_t i = 0; i < n; i++) {
        assert_memory_equal(ga[i].selected_experts, rb[i].selected_experts, DC_NUM_EXPERTS);
        assert_memory_equal(ga[i].expert_weights, rb[i].expert_weights, sizeof ga[i].expert_weights);
        for (int c = 0; c < DC_DIM_FUSED; c++) {
            double d = fabs((double)ga[i].vector[c] - rb[i].vector[c]);
            if (d > worst) worst = d;
        }
        /* batch invariance: the row alone gives the same vector */
        const dc_concat_embedding *in1[1] = {cs[i]};
        assert_ok(dc_fusemoe_forward(f, in1, 1, one));
        for (int c = 0; c < DC_DIM_FUSED; c++) {
            double d = fabs((double)ga[i].vector[c] - one->vector[c]);
            if (d > worst_single) worst_single = d;
        }
    }
    print_message("grouped vs row-by-row (%zu rows, %u experts, top-%u, hidden %u): max |diff| "
                  "%.2e; alone vs in batch %.2e\n",
                  n, o->num_experts, o->top_k, o->hidden, worst, worst_single);
    assert_true(worst <= 1e-5);
    assert_true(worst_single <= 1e-5);
    dc_fusion_stats st;
    dc_fusemoe_stats(f, &st);
    assert_int_equal(st.rows, 3 * n);
    double u = 0.0;
    uint64_t assigned = 0;
    for (uint32_t e = 0; e < o->num_experts; e++) {
        u += st.utilization[e];
        assigned += st.assignments[e];
    }
    assert_int_equal(assigned, 3 * n * o->top_k);
    assert_true(fabs(u - 1.0) < 1e-9);
    assert_true(st.mean_top1_prob >= st.mean_top2_prob);
    assert_true(st.load_balance > 0.0 && st.load_balance <= o->num_experts + 1e-9);
    for (size_t i = 0; i < n; i++) free(cs[i]);
    free(cs);
    free(ga);
    free(rb);
    free(one);
    dc_fusemoe_destroy(f);
}

static void test_grouped_equals_rowwise(void **state) {
    (void)state;
    dc_fusion_options o;
    small_options(&o, true);
    o.hidden = 48;
    check_grouped_equals_rowwise(&o, 33);
    o.small_batch = 0; /* every group on the backend's GEMM (oneDNN) */
    check_grouped_equals_rowwise(&o, 33);
    o.small_batch = 16;
    o.weights = DC_FUSION_WEIGHTS_BF16;
    check_grouped_equals_rowwise(&o, 20);
    o.weights = DC_FUSION_WEIGHTS_F32;
    o.top_k = 8;
    o.gating = DC_GATING_LAPLACE;
    check_grouped_equals_rowwise(&o, 9);
    o.num_experts = 3;
    o.top_k = 1;
    check_grouped_equals_rowwise(&o, 17);
}

static void test_stats_and_load_balance(void **state) {
    (void)state;
    dc_fusion_options o;
    small_options(&o, false);
    dc_fusemoe *f = make_fusemoe(&o);
    dc_rng r = dc_rng_make(31, 0);
    const size_t n = 64;
    dc_concat_embedding **cs = calloc(n, sizeof *cs);
    for (size_t i = 0; i < n; i++) {
        cs[i] = concat_new();
        random_concat(cs[i], DC_ALL_MODELS_MASK, &r);
    }
    dc_fused_embedding *out = calloc(n, sizeof *out);
    assert_ok(dc_fusemoe_forward(f, (const dc_concat_embedding *const *)cs, n, out));
    dc_fusion_stats st;
    dc_fusemoe_stats(f, &st);
    assert_int_equal(st.rows, n);
    assert_int_equal(st.batches, 1);
    uint64_t top1 = 0;
    double pm = 0.0;
    for (int e = 0; e < DC_NUM_EXPERTS; e++) {
        top1 += st.top1[e];
        pm += st.mean_prob[e];
    }
    assert_int_equal(top1, n);
    assert_true(fabs(pm - 1.0) < 1e-5);
    print_message("untrained routing over %zu random inputs: load balance %.3f (1 = uniform), "
                  "top-1 p %.3f, top-2 p %.3f, capacity overflow %llu\n",
                  n, st.load_balance, st.mean_top1_prob, st.mean_top2_prob,
                  (unsigned long long)st.capacity_overflow);
    assert_true(st.load_balance > 0.0 && st.load_balance < 2.0);
    /* every input routed to one expert: overflow is counted, results are still complete */
    dc_fusemoe_stats_reset(f);
    for (size_t i = 0; i < n; i++) *cs[i] = *cs[0];
    assert_ok(dc_fusemoe_forward(f, (const dc_concat_embedding *const *)cs, n, out));
    dc_fusemoe_stats(f, &st);
    uint64_t cap = (uint64_t)ceil(1.25 * n * 2 / 8.0);
    assert_int_equal(st.capacity_overflow, 2 * (n - cap));
    assert_true(st.load_balance > 1.0);
    for (size_t i = 1; i < n; i++) assert_memory_equal(out[i].vector, out[0].vector, sizeof out[0].vector);
    for (size_t i = 0; i < n; i++) free(cs[i]);
    free(cs);
    free(out);
    dc_fusemoe_destroy(f);
}

static void test_options_validation(void **state) {
    (void)state;
    dc_fusion_options o;
    dc_fusion_options_default(&o);
    assert_ok(dc_fusion_options_validate(&o));
    assert_int_equal(o.hidden, 1024);
    o.top_k = 9;
    assert_status(dc_fusion_options_validate(&o), DC_ERR_CONFIG);
    assert_detail_contains("top_k");
    dc_fusion_options_default(&o);
    o.temperature = 0.0;
    assert_status(dc_fusion_options_validate(&o), DC_ERR_CONFIG);
    assert_detail_contains("temperature");
    dc_fusion_options_default(&o);
    for (int m = 0; m < DC_NUM_MODELS; m++) o.block_weights[m] = 0.0f;
    assert_status(dc_fusion_options_validate(&o), DC_ERR_CONFIG);
    dc_fusion_options_default(&o);
    o.bridge_blend = 0.5f;
    assert_status(dc_fusion_options_validate(&o), DC_ERR_CONFIG);
    assert_detail_contains("bridge");
    dc_fusemoe *f = NULL;
    o.num_experts = 0;
    assert_status(dc_fusemoe_create_ex(&o, &f), DC_ERR_CONFIG);
    assert_null(f);
    /* from the config struct */
    dc_config cfg;
    dc_config_defaults(&cfg);
    cfg.fusion.num_experts = 4;
    cfg.fusion.top_k = 1;
    cfg.fusion.expert_hidden_dim = 16;
    cfg.fusion.capacity_factor = 1.0;
    cfg.fusion.temperature = 0.5;
    cfg.fusion.laplace_alpha = 0.0;
    cfg.fusion.seed = 7;
    strcpy(cfg.fusion.gating, "laplace");
    strcpy(cfg.fusion.expert_init, "orthogonal");
    cfg.fusion.jl_nnz = 4;
    cfg.fusion.history = 2;
    strcpy(cfg.fusion.weights, "bf16");
    cfg.models.model[DC_MODEL_SEMANTIC].fusion_weight = 3.0; /* E1 counts 3x, E9 not at all */
    cfg.models.model[DC_MODEL_HDC].fusion_weight = 0.0;
    /* a checkpoint that does not exist falls back to the seed, and says why */
    strcpy(cfg.fusion.checkpoint, "/nonexistent/fusion.safetensors");
    assert_ok(dc_config_validate(&cfg));
    assert_ok(dc_fusemoe_create(&cfg, &f));
    dc_fusion_weights *w = dc_fusemoe_weights(f);
    const dc_fusion_options *wo = dc_fusion_weights_options(w);
    assert_int_equal(wo->num_experts, 4);
    assert_int_equal(wo->hidden, 16);
    assert_int_equal(wo->seed, 7);
    assert_true(wo->temperature == 0.5);
    assert_int_equal(wo->gating, DC_GATING_LAPLACE);
    assert_int_equal(wo->expert_init, DC_INIT_ORTHOGONAL);
    assert_int_equal(wo->jl_nnz, 4);
    assert_float_equal(wo->block_weights[DC_MODEL_SEMANTIC], 3.0 / 13.0, 1e-6);
    assert_float_equal(wo->block_weights[DC_MODEL_HDC], 0.0, 0.0);
    assert_float_equal(wo->block_weights[DC_MODEL_ENTITY], 1.0 / 13.0, 1e-6);
    assert_non_null(strstr(dc_fusion_weights_version(w)->fallback_reason, "nonexistent"));
    /* strict: the same missing checkpoint is an error */
    dc_fusion_weights_release(w);
    dc_fusemoe_destroy(f);
    f = NULL;
    cfg.fusion.checkpoint_strict = true;
    assert_int_not_equal(dc_fusemoe_create(&cfg, &f), DC_OK);
    assert_null(f);
    cfg.fusion.checkpoint_strict = false;
    cfg.fusion.checkpoint[0] = '\0';
    assert_ok(dc_fusemoe_create(&cfg, &f));
    w = dc_fusemoe_weights(f);
    dc_fusion_weights_release(w);
    dc_fusemoe_destroy(f);
}

static void test_init_schemes(void **state) {
    (void)state;
    const uint32_t rows = 24, cols = 200;
    float *a = malloc(rows * cols * sizeof *a);
    /* orthogonal: rows orthonormal */
    assert_ok(dc_fusion_init_matrix(a, rows, cols, DC_INIT_ORTHOGONAL, 1, 2));
    for (uint32_t i = 0; i < rows; i++)
        for (uint32_t j = 0; j < rows; j++) {
            double d = 0.0;
            for (uint32_t c = 0; c < cols; c++) d += (double)a[i * cols + c] * a[j * cols + c];
            assert_true(fabs(d - (i == j)) < 1e-4);
        }
    /* tall: columns orthonormal */
    assert_ok(dc_fusion_init_matrix(a, cols, rows, DC_INIT_ORTHOGONAL, 1, 3));
    for (uint32_t i = 0; i < rows; i++)
        for (uint32_t j = 0; j < rows; j++) {
            double d = 0.0;
            for (uint32_t c = 0; c < cols; c++) d += (double)a[c * rows + i] * a[c * rows + j];
            assert_true(fabs(d - (i == j)) < 1e-4);
        }
    /* Kaiming uniform bound √3/√fan_in; Xavier bound √(6/(fan_in+fan_out)) */
    assert_ok(dc_fusion_init_matrix(a, rows, cols, DC_INIT_KAIMING_UNIFORM, 1, 4));
    double mx = 0.0, sq = 0.0;
    for (uint32_t i = 0; i < rows * cols; i++) {
        mx = fmax(mx, fabs(a[i]));
        sq += (double)a[i] * a[i];
    }
    assert_true(mx <= sqrt(3.0 / cols) + 1e-7 && mx > 0.9 * sqrt(3.0 / cols));
    assert_true(fabs(sq / (rows * cols) - 1.0 / cols) < 0.1 / cols);
    assert_ok(dc_fusion_init_matrix(a, rows, cols, DC_INIT_XAVIER_NORMAL, 1, 5));
    sq = 0.0;
    for (uint32_t i = 0; i < rows * cols; i++) sq += (double)a[i] * a[i];
    assert_true(fabs(sq / (rows * cols) - 2.0 / (rows + cols)) < 0.1 * 2.0 / (rows + cols));
    free(a);
    dc_init_scheme s;
    assert_ok(dc_init_scheme_parse("orthogonal", &s));
    assert_int_equal(s, DC_INIT_ORTHOGONAL);
    assert_status(dc_init_scheme_parse("he", &s), DC_ERR_CONFIG);
    dc_gating_kind g;
    assert_ok(dc_gating_kind_parse("laplace", &g));
    assert_int_equal(g, DC_GATING_LAPLACE);
}

static void test_small_batch_kernel(void **state) {
    (void)state;
    const uint32_t n = 24, k = 200;
    const size_t m = 5;
    float *w = malloc(n * k * sizeof *w), *x = malloc(m * k * sizeof *x), bias[24];
    uint16_t *wb = malloc(n * k * sizeof *wb);
    dc_rng r = dc_rng_make(12, 12);
    for (uint32_t i = 0; i < n * k; i++) {
        w[i] = (float)dc_rng_normal(&r);
        wb[i] = dc_fusion_f32_to_bf16(w[i]);
    }
    for (size_t i = 0; i < m * k; i++) x[i] = (float)dc_rng_normal(&r);
    for (uint32_t j = 0; j < n; j++) bias[j] = (float)j;
    float y[5 * 24], yb[5 * 24], yg[5 * 24], y1[24];
    dc_fusion_gemm(x, m, w, false, bias, n, k, y);
    dc_fusion_gemm(x, m, wb, true, bias, n, k, yb);
    dc_fusion_gemm_force_generic(true);
    dc_fusion_gemm(x, m, w, false, bias, n, k, yg);
    dc_fusion_gemm_force_generic(false);
    double worst = 0.0, worst_bf = 0.0;
    for (size_t i = 0; i < m; i++) {
        dc_fusion_gemm(x + i * k, 1, w, false, bias, n, k, y1); /* one row alone: the same bits */
        assert_memory_equal(y1, y + i * n, n * sizeof(float));
        for (uint32_t j = 0; j < n; j++) {
            double ref = bias[j];
            for (uint32_t c = 0; c < k; c++) ref += (double)x[i * k + c] * w[j * k + c];
            worst = fmax(worst, fmax(fabs(y[i * n + j] - ref), fabs(yg[i * n + j] - ref)));
            worst_bf = fmax(worst_bf, fabs(yb[i * n + j] - ref) / sqrt((double)k));
        }
    }
    assert_true(worst < 1e-3);    /* sums of 200 products of N(0,1) values */
    assert_true(worst_bf < 0.02); /* bf16 keeps 8 bits of mantissa */
    /* bf16 rounding: to nearest even, NaN stays NaN */
    assert_int_equal(dc_fusion_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(dc_fusion_f32_to_bf16(1.00390625f), 0x3f80); /* halfway: to even */
    assert_int_equal(dc_fusion_f32_to_bf16(1.01171875f), 0x3f82); /* halfway: to even (up) */
    assert_true((dc_fusion_f32_to_bf16(NAN) & 0x7fff) > 0x7f80);
    free(w);
    free(x);
    free(wb);
}

static void test_bf16_weights_track_f32(void **state) {
    (void)state;
    dc_fusion_options o;
    small_options(&o, true);
    o.hidden = 64;
    o.small_batch = 4; /* f32: batches above 4 rows per expert go to the backend's GEMM */
    dc_fusemoe *f32 = make_fusemoe(&o);
    o.weights = DC_FUSION_WEIGHTS_BF16;
    dc_fusemoe *bf = make_fusemoe(&o);
    const size_t n = 24;
    dc_rng r = dc_rng_make(13, 13);
    dc_concat_embedding *cs = calloc(n, sizeof *cs);
    const dc_concat_embedding **in = calloc(n, sizeof *in);
    for (size_t i = 0; i < n; i++) {
        random_concat(&cs[i], DC_ALL_MODELS_MASK, &r);
        in[i] = &cs[i];
    }
    dc_fused_embedding *a = calloc(n, sizeof *a), *b = calloc(n, sizeof *b);
    assert_ok(dc_fusemoe_forward(f32, in, n, a));
    assert_ok(dc_fusemoe_forward(bf, in, n, b));
    double worst = 1.0;
    for (size_t i = 0; i < n; i++) {
        worst = fmin(worst, dc_vec_cosine(a[i].vector, b[i].vector, DC_DIM_FUSED));
        assert_memory_equal(a[i].selected_experts, b[i].selected_experts, DC_NUM_EXPERTS);
    }
    print_message("bf16 expert weights vs f32: worst cosine %.6f over %zu items\n", worst, n);
    assert_true(worst > 0.9999);
    free(cs);
    free(in);
    free(a);
    free(b);
    dc_fusemoe_destroy(f32);
    dc_fusemoe_destroy(bf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gate_probabilities_valid),
        cmocka_unit_test(test_gate_smoothing_and_temperature),
        cmocka_unit_test(test_laplace_gate_picks_nearest_centres),
        cmocka_unit_test(test_jl_preserves_inner_products),
        cmocka_unit_test(test_untrained_cosine_tracks_block_cosines),
        cmocka_unit_test(test_deterministic_for_a_seed),
        cmocka_unit_test(test_output_fields_valid_and_round_trip),
        cmocka_unit_test(test_missing_blocks),
        cmocka_unit_test(test_grouped_equals_rowwise),
        cmocka_unit_test(test_stats_and_load_balance),
        cmocka_unit_test(test_options_validation),
        cmocka_unit_test(test_init_schemes),
        cmocka_unit_test(test_small_batch_kernel),
        cmocka_unit_test(test_bf16_weights_track_f32),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

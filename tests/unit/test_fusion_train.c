/* FuseMoE training: analytic gradients against finite differences, the synthetic recall task,
 * and the pairs file format. */
#include <math.h>

#include "fusion/fusemoe.h"
#include "fusion/internal.h"
#include "fusion/rng.h"
#include "fusion/train.h"
#include "test_support.h"

static double dot(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* One gradient check: every tensor along a mixed direction, and its largest entries alone. */
static void gradient_check(dc_gating_kind gating, double lb_coef, double alpha) {
    dc_fusion_options o;
    dc_fusion_options_default(&o);
    o.num_experts = 4;
    o.top_k = 2;
    o.hidden = 6;
    o.gating = gating;
    o.laplace_alpha = alpha;
    o.temperature = 0.8;
    o.output_init = DC_INIT_XAVIER_NORMAL; /* non-zero: gradients reach every layer */
    o.gate_init = gating == DC_GATING_LAPLACE ? DC_INIT_KAIMING_NORMAL : DC_INIT_XAVIER_NORMAL;
    dc_fusion_weights *w = NULL;
    assert_ok(dc_fusion_weights_init(&o, &w));
    /* LayerNorm parameters away from 1/0 so their gradients are generic */
    for (size_t i = 0; i < DC_FUSION_IN; i++) {
        w->arena[w->layout.ln_g + i] = 1.0f + 0.1f * (float)dc_rand_normal(3, 1, i);
        w->arena[w->layout.ln_b + i] = 0.1f * (float)dc_rand_normal(3, 2, i);
    }
    dc_fusion_synth_options so;
    dc_fusion_synth_options_default(&so);
    so.n = 4;
    so.noise = 1.0f;
    dc_fusion_dataset d;
    assert_ok(dc_fusion_synth(&so, &d));
    d.mask_b[1] &= ~(1u << DC_MODEL_HDC); /* a missing block too */
    dc_fusion_train_options t;
    dc_fusion_train_options_default(&t);
    t.tau = 0.5;
    t.load_balance_coef = lb_coef;
    dc_fusion_trainer *tr = NULL;
    assert_ok(dc_fusion_trainer_create(w, &t, &tr));
    const dc_fusion_layout *L = &dc_fusion_trainer_shape(tr)->layout;
    float *p = dc_fusion_trainer_params(tr);
    float *g = malloc(L->total * sizeof(float)), *dir = malloc(L->total * sizeof(float));
    double loss0 = 0.0, comp[2];
    assert_ok(dc_fusion_trainer_loss(tr, d.a, d.mask_a, d.b, d.mask_b, d.n, &loss0, g, comp));
    uint64_t route = dc_fusion_trainer_routing_hash(tr);
    double worst_dir = 0.0, worst_el = 0.0;
    for (size_t ti = 0; ti < L->n_tensors; ti++) {
        const dc_fusion_tensor *ts = &L->tensors[ti];
        const float *gt = g + ts->offset;
        double gn = sqrt(dot(gt, gt, ts->numel));
        if (gn == 0.0) fail_msg("tensor %s has a zero gradient", ts->name);
        /* direction: half along the gradient, half random signs, unit norm */
        memset(dir, 0, L->total * sizeof(float));
        double dn = 0.0;
        for (size_t i = 0; i < ts->numel; i++) {
            float rs = (dc_rand64(9, ti, i) & 1) ? 1.0f : -1.0f;
            dir[ts->offset + i] = (float)(gt[i] / gn + rs / sqrt((double)ts->numel));
            dn += (double)dir[ts->offset + i] * dir[ts->offset + i];
        }
        for (size_t i = 0; i < ts->numel; i++) dir[ts->offset + i] /= (float)sqrt(dn);
        double analytic = dot(g + ts->offset, dir + ts->offset, ts->numel);
        double eps = 2e-3 / fmax(1.0, gn); /* small: the loss curves along the gradient */
        double fd = 0.0;
        for (int attempt = 0; attempt < 6; attempt++, eps /= 2) {
            double lp = 0.0, lm = 0.0;
            for (size_t i = 0; i < ts->numel; i++) p[ts->offset + i] += (float)(eps * dir[ts->offset + i]);
            assert_ok(dc_fusion_trainer_loss(tr, d.a, d.mask_a, d.b, d.mask_b, d.n, &lp, NULL, NULL));
            bool same = dc_fusion_trainer_routing_hash(tr) == route;
            for (size_t i = 0; i < ts->numel; i++) p[ts->offset + i] -= (float)(2 * eps * dir[ts->offset + i]);
            assert_ok(dc_fusion_trainer_loss(tr, d.a, d.mask_a, d.b, d.mask_b, d.n, &lm, NULL, NULL));
            same = same && dc_fusion_trainer_routing_hash(tr) == route;
            for (size_t i = 0; i < ts->numel; i++) p[ts->offset + i] += (float)(eps * dir[ts->offset + i]);
            fd = (lp - lm) / (2 * eps);
            if (same) break; /* a routing flip is a kink: retry with a smaller step */
        }
        double rel = fabs(fd - analytic) / fmax(fabs(fd), fabs(analytic));
        if (rel > worst_dir) worst_dir = rel;
        if (rel > 2e-2)
            fail_msg("%s (%s): directional derivative %.6g analytic vs %.6g numeric (rel %.3g)",
                     ts->name, dc_gating_kind_name(gating), analytic, fd, rel);
        /* the single largest entry */
        size_t best = 0;
        for (size_t i = 1; i < ts->numel; i++)
            if (fabsf(gt[i]) > fabsf(gt[best])) best = i;
        float *q = &p[ts->offset + best];
        float keep = *q;
        double h = 1e-2 * fmax(0.1, fabs(keep)), lp = 0.0, lm = 0.0;
        *q = (float)(keep + h);
        assert_ok(dc_fusion_trainer_loss(tr, d.a, d.mask_a, d.b, d.mask_b, d.n, &lp, NULL, NULL));
        *q = (float)(keep - h);
        assert_ok(dc_fusion_trainer_loss(tr, d.a, d.mask_a, d.b, d.mask_b, d.n, &lm, NULL, NULL));
        *q = keep;
        double fde = (lp - lm) / (2 * h);
        double rele = fabs(fde - gt[best]) / fmax(fabs(fde), fabs(gt[best]));
        if (rele > worst_el) worst_el = rele;
        if (rele > 5e-2)
            fail_msg("%s[%zu] (%s): gradient %.6g analytic vs %.6g numeric (rel %.3g)", ts->name,
                     best, dc_gating_kind_name(gating), (double)gt[best], fde, rele);
    }
    print_message("gradient check (%s gating, balance coef %.2f, smoothing %.2f): loss %.4f "
                  "(contrastive %.4f, balance %.4f), %zu tensors, worst relative error %.2e "
                  "(directions) %.2e (largest entries)\n",
                  dc_gating_kind_name(gating), lb_coef, alpha, loss0, comp[0], comp[1],
                  L->n_tensors, worst_dir, worst_el);
    free(g);
    free(dir);
    dc_fusion_trainer_destroy(tr);
    dc_fusion_dataset_free(&d);
    dc_fusion_weights_release(w);
}

static void test_gradients_match_finite_differences(void **state) {
    (void)state;
    gradient_check(DC_GATING_SOFTMAX, 0.5, 0.01);
    gradient_check(DC_GATING_LAPLACE, 0.5, 0.0);
}

static void test_training_raises_paired_recall(void **state) {
    (void)state;
    dc_fusion_synth_options so;
    dc_fusion_synth_options_default(&so);
    so.n = 512;
    dc_fusion_dataset train, held;
    assert_ok(dc_fusion_synth(&so, &train));
    so.n = 256;
    so.item_seed = 3; /* new items of the same task */
    assert_ok(dc_fusion_synth(&so, &held));
    dc_fusion_options o;
    dc_fusion_options_default(&o);
    o.num_experts = 4; /* top-2 of 4: the default 8 needs twice the data (bench/fusion) */
    o.hidden = 32;
    dc_fusion_weights *w0 = NULL, *w1 = NULL;
    assert_ok(dc_fusion_weights_init(&o, &w0));
    double before = 0.0, before_train = 0.0, after = 0.0, after_train = 0.0;
    assert_ok(dc_fusion_recall_at_1(w0, &held, &before));
    assert_ok(dc_fusion_recall_at_1(w0, &train, &before_train));
    dc_fusion_train_options t;
    dc_fusion_train_options_default(&t);
    t.epochs = 3;
    t.batch = 64;
    t.lr = 1e-3;
    dc_fusion_metrics mt;
    assert_ok(dc_fusion_train(&train, w0, &t, &w1, &mt));
    assert_ok(dc_fusion_recall_at_1(w1, &held, &after));
    assert_ok(dc_fusion_recall_at_1(w1, &train, &after_train));
    print_message("synthetic task (pairs share a rank-16 signal in E1/E7/E11, the other 9 blocks "
                  "carry 8 distractor clusters): paired recall@1 over 256 held-out pairs %.3f -> "
                  "%.3f (512 training pairs: %.3f -> %.3f), last-epoch loss %.3f; %u experts "
                  "top-2, hidden %u, %u epochs\n",
                  before, after, before_train, after_train, mt.loss, o.num_experts, o.hidden,
                  t.epochs);
    assert_true(after >= before + 0.4);
    assert_true(after >= 0.6);
    assert_true(mt.present && mt.epoch == 3);
    /* trained weights are a normal checkpoint: save, load, same recall */
    const char *path = dc_test_write_temp("", 0, ".safetensors");
    assert_ok(dc_fusion_weights_save(w1, path, "1.0.0")); /* w1 is shared now: save names it */
    dc_fusion_weights *back = NULL;
    assert_ok(dc_fusion_weights_load(path, NULL, &back));
    assert_true(dc_fusion_weights_version(back)->metrics.present);
    assert_int_equal(dc_fusion_weights_version(back)->metrics.epoch, 3);
    assert_string_equal(dc_fusion_weights_version(back)->version, "1.0.0");
    double again = 0.0;
    assert_ok(dc_fusion_recall_at_1(back, &held, &again));
    assert_true(again == after);
    dc_fusion_weights_release(back);
    dc_fusion_weights_release(w0);
    dc_fusion_weights_release(w1);
    dc_fusion_dataset_free(&train);
    dc_fusion_dataset_free(&held);
}

static void test_pairs_file(void **state) {
    (void)state;
    dc_fusion_synth_options so;
    dc_fusion_synth_options_default(&so);
    so.n = 3;
    dc_fusion_dataset d, back;
    assert_ok(dc_fusion_synth(&so, &d));
    d.mask_b[2] = DC_ALL_MODELS_MASK & ~(1u << DC_MODEL_CODE);
    const char *path = dc_test_write_temp("", 0, ".jsonl");
    assert_ok(dc_fusion_dataset_write_jsonl(&d, path));
    assert_ok(dc_fusion_dataset_read_jsonl(path, &back));
    assert_int_equal(back.n, 3);
    assert_memory_equal(back.a, d.a, 3 * DC_FUSION_IN * sizeof(float));
    assert_memory_equal(back.b, d.b, 3 * DC_FUSION_IN * sizeof(float));
    assert_memory_equal(back.mask_b, d.mask_b, 3 * sizeof(uint32_t));
    dc_fusion_dataset_free(&back);
    dc_fusion_dataset_free(&d);
    /* errors name the line */
    const char *bad1 = "{\"a\": [1, 2], \"b\": [3]}\n";
    path = dc_test_write_temp(bad1, strlen(bad1), ".jsonl");
    assert_status(dc_fusion_dataset_read_jsonl(path, &back), DC_ERR_INVALID_DIMENSION);
    assert_detail_contains("line 1");
    const char *bad2 = "\n\nnot json\n";
    path = dc_test_write_temp(bad2, strlen(bad2), ".jsonl");
    assert_status(dc_fusion_dataset_read_jsonl(path, &back), DC_ERR_SERIALIZATION);
    assert_detail_contains("line 3");
    path = dc_test_write_temp("", 0, ".jsonl");
    assert_status(dc_fusion_dataset_read_jsonl(path, &back), DC_ERR_EMPTY_INPUT);
    assert_status(dc_fusion_dataset_read_jsonl("/nonexistent/pairs.jsonl", &back), DC_ERR_IO);
    /* a zero vector without a mask has no model present */
    char *line = malloc(2 * DC_FUSION_IN * 3 + 64);
    size_t at = 0;
    at += (size_t)sprintf(line + at, "{\"a\":[");
    for (int i = 0; i < DC_FUSION_IN; i++) at += (size_t)sprintf(line + at, i ? ",0" : "0");
    at += (size_t)sprintf(line + at, "],\"b\":[");
    for (int i = 0; i < DC_FUSION_IN; i++) at += (size_t)sprintf(line + at, i ? ",1" : "1");
    at += (size_t)sprintf(line + at, "]}\n");
    path = dc_test_write_temp(line, at, ".jsonl");
    assert_status(dc_fusion_dataset_read_jsonl(path, &back), DC_ERR_FUSION);
    assert_detail_contains("\"a\" has no model present");
    free(line);
}

static void test_trainer_argument_checks(void **state) {
    (void)state;
    dc_fusion_options o;
    dc_fusion_options_default(&o);
    o.hidden = 4;
    dc_fusion_weights *w = NULL;
    assert_ok(dc_fusion_weights_init(&o, &w));
    dc_fusion_train_options t;
    dc_fusion_train_options_default(&t);
    t.batch = 1;
    dc_fusion_trainer *tr = NULL;
    assert_status(dc_fusion_trainer_create(w, &t, &tr), DC_ERR_CONFIG);
    assert_detail_contains("batch");
    dc_fusion_train_options_default(&t);
    t.lr = -1;
    assert_status(dc_fusion_trainer_create(w, &t, &tr), DC_ERR_CONFIG);
    dc_fusion_dataset d;
    assert_ok(dc_fusion_dataset_alloc(1, &d));
    dc_fusion_weights *out = NULL;
    assert_status(dc_fusion_train(&d, w, NULL, &out, NULL), DC_ERR_BATCH);
    dc_fusion_dataset_free(&d);
    dc_fusion_weights_release(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradients_match_finite_differences),
        cmocka_unit_test(test_pairs_file),
        cmocka_unit_test(test_trainer_argument_checks),
        cmocka_unit_test(test_training_raises_paired_recall),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The CPU kernel interface against naive double-precision references: linear (oneDNN and the
 * packed GEMM, several token counts on one prepared weight), LayerNorm, the activations,
 * exp/erf, embedding sums and masked attention over packed sequences. Every kernel is checked
 * on the dispatched ISA and on the portable path. */
#include <math.h>

#include "tensor/backend.h"
#include "tensor/cpu_sgemm.h"
#include "tensor/quant.h"
#include "test_support.h"

static uint64_t rng_state;
static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static float rng_uniform(float lo, float hi) {
    return lo + (hi - lo) * (float)((rng_next() >> 40) * (1.0 / 16777216.0));
}
static float *rand_array(size_t n, float lo, float hi) {
    float *a = malloc((n ? n : 1) * sizeof *a);
    assert_non_null(a);
    for (size_t i = 0; i < n; i++) a[i] = rng_uniform(lo, hi);
    return a;
}

static dc_backend *cpu(uint32_t threads) {
    dc_cpu_backend_options o = {.threads = threads};
    dc_backend *be = NULL;
    assert_ok(dc_backend_cpu_create(&o, &be));
    dc_backend_cpu_bind_threads(be);
    return be;
}

/* ---- linear ---- */

/* x rounded to bf16 in place, as dc_quant_bf16_pack rounds it. */
static void round_bf16(float *x, size_t n) {
    uint16_t *h = malloc(n * sizeof *h + 2);
    assert_non_null(h);
    dc_quant_bf16_pack(x, n, h);
    dc_quant_bf16_unpack(h, n, x);
    free(h);
}

/* Every shape against the double reference on one backend: n with and without a partial
 * 16-column panel, k in one pass and in several uneven ones (passes of at most 1024), row
 * counts from one to three 72-row blocks with partial 6-row tiles and, on the smaller layers,
 * past one 576-row chunk, with and without bias. */
static void check_linear(dc_backend *be, dc_weight_format fmt, const char *what) {
    static const uint32_t shapes[][2] = {{1, 1},    {13, 5},   {65, 129}, {384, 384},
                                         {96, 32},  {17, 1025}, {33, 2049}};
    static const size_t rows[] = {1, 3, 16, 77, 150, 601};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            uint32_t n = shapes[s][0], k = shapes[s][1];
            rng_state = 1000 + s;
            float *w = rand_array((size_t)n * k, -1, 1);
            float *b = with_bias ? rand_array(n, -1, 1) : NULL;
            dc_linear *l = NULL;
            assert_ok(be->ops->linear_create(be, w, b, n, k, fmt, &l));
            const size_t wsize = fmt == DC_WEIGHTS_BF16 ? sizeof(uint16_t) : sizeof(float);
            assert_true(be->ops->linear_bytes(l) >= (size_t)n * k * wsize);
            /* the reference multiplies the rounded weights, and with a native bf16 product
             * (AVX512-BF16) the rounded inputs too */
            if (fmt == DC_WEIGHTS_BF16) round_bf16(w, (size_t)n * k);
            const bool native = strstr(dc_cpu_linear_impl(l), "native") != NULL;
            for (size_t t = 0; t < sizeof rows / sizeof rows[0]; t++) {
                size_t m = rows[t];
                if (m > 576 && (size_t)n * k > 20000) continue; /* keeps the reference quick */
                float *x = rand_array(m * k, -1, 1);
                float *y = malloc(m * n * sizeof *y);
                assert_ok(be->ops->linear_forward(be, l, x, m, y));
                if (native) round_bf16(x, m * k); /* it multiplied the rounded inputs */
                for (size_t i = 0; i < m; i++)
                    for (size_t j = 0; j < n; j++) {
                        double ref = b ? b[j] : 0.0;
                        for (size_t c = 0; c < k; c++)
                            ref += (double)x[i * k + c] * (double)w[j * k + c];
                        double err = fabs(ref - (double)y[i * n + j]);
                        if (err > 1e-5 * sqrt((double)k) + 1e-6)
                            fail_msg("%s (%s) linear %ux%u rows %zu: y[%zu,%zu]=%g ref %g", what,
                                     dc_cpu_linear_impl(l), n, k, m, i, j,
                                     (double)y[i * n + j], ref);
                    }
                free(x);
                free(y);
            }
            be->ops->linear_destroy(be, l);
            free(w);
            free(b);
        }
}

/* Both f32 GEMMs (DC_CPU_GEMM), the packed one on the dispatched and the portable tile, on one
 * and two threads (two split the panels); bf16 weights on both (oneDNN widens whole layers, the
 * packed GEMM blocks of panels), against the reference on the rounded weights. */
static void test_linear_matches_reference(void **state) {
    (void)state;
    static const char *gemms[] = {"onednn", "packed"};
    for (size_t g = 0; g < 2; g++)
        for (uint32_t threads = 1; threads <= 2; threads++) {
            setenv("DC_CPU_GEMM", gemms[g], 1);
            dc_backend *be = cpu(threads);
            unsetenv("DC_CPU_GEMM");
            dc_linear *probe = NULL;
            float one = 1.0f;
            assert_ok(be->ops->linear_create(be, &one, NULL, 1, 1, DC_WEIGHTS_F32, &probe));
            const bool packed = strstr(dc_cpu_linear_impl(probe), "sgemm") != NULL;
            be->ops->linear_destroy(be, probe);
            assert_int_equal(packed, g == 1);
            if (packed) { /* bf16 layers take the native pairs wherever the CPU has them */
                assert_ok(be->ops->linear_create(be, &one, NULL, 1, 1, DC_WEIGHTS_BF16, &probe));
                const bool pairs = strstr(dc_cpu_linear_impl(probe), "pair") != NULL;
                be->ops->linear_destroy(be, probe);
                assert_int_equal(pairs, dc_sgemm_bf16_native());
                if (!pairs && threads == 1)
                    print_message("bf16 pairs (AVX512-BF16) not run: this CPU has none\n");
            }
            check_linear(be, DC_WEIGHTS_F32, gemms[g]);
            check_linear(be, DC_WEIGHTS_BF16, gemms[g]);
            if (packed) {
                dc_kernel_force_generic(true);
                check_linear(be, DC_WEIGHTS_F32, "packed, generic tile");
                check_linear(be, DC_WEIGHTS_BF16, "packed bf16, generic tile");
                dc_kernel_force_generic(false);
            }
            dc_backend_destroy(be);
        }
}

/* The packed GEMM's tiles (AVX-512, AVX2, portable) give the same bits: one FMA per k in the
 * same order, whichever the CPU dispatches to; rows past a 6- and a 12-row tile, a pass split
 * of k and a partial panel. */
static void test_packed_tiles_same_bits(void **state) {
    (void)state;
    setenv("DC_CPU_GEMM", "packed", 1);
    dc_backend *be = cpu(1);
    unsetenv("DC_CPU_GEMM");
    enum { M = 77, N = 45, K = 1301 };
    rng_state = 77;
    float *w = rand_array((size_t)N * K, -1, 1), *b = rand_array(N, -1, 1);
    float *x = rand_array((size_t)M * K, -1, 1), *y[2];
    for (int g = 0; g < 2; g++) {
        dc_kernel_force_generic(g == 1);
        dc_linear *l = NULL;
        assert_ok(be->ops->linear_create(be, w, b, N, K, DC_WEIGHTS_F32, &l));
        if (g == 0) print_message("dispatched: %s\n", dc_cpu_linear_impl(l));
        y[g] = malloc((size_t)M * N * sizeof(float));
        assert_ok(be->ops->linear_forward(be, l, x, M, y[g]));
        be->ops->linear_destroy(be, l);
    }
    dc_kernel_force_generic(false);
    assert_memory_equal(y[0], y[1], (size_t)M * N * sizeof(float));
    free(y[0]), free(y[1]), free(w), free(b), free(x);
    dc_backend_destroy(be);
}

/* A GEMM choice the backend does not know is refused by name, not silently replaced. */
static void test_linear_gemm_choice_checked(void **state) {
    (void)state;
    dc_backend *be = (dc_backend *)1;
    setenv("DC_CPU_GEMM", "fastest", 1);
    assert_status(dc_backend_cpu_create(NULL, &be), DC_ERR_INVALID_ARGUMENT);
    unsetenv("DC_CPU_GEMM");
    assert_null(be);
    assert_non_null(strstr(dc_error_detail(), "DC_CPU_GEMM=fastest"));
}

static void test_linear_weights_are_copied(void **state) {
    (void)state;
    dc_backend *be = cpu(1);
    rng_state = 7;
    float *w = rand_array(24 * 8, -1, 1);
    float *keep = malloc(24 * 8 * sizeof *keep);
    memcpy(keep, w, 24 * 8 * sizeof *keep);
    dc_linear *l = NULL;
    assert_ok(be->ops->linear_create(be, w, NULL, 24, 8, DC_WEIGHTS_F32, &l));
    print_message("linear implementation: %s, kernels: %s\n", dc_cpu_linear_impl(l),
                  dc_cpu_kernel_isa());
    memset(w, 0, 24 * 8 * sizeof *w);
    float x[8], y[24];
    for (int i = 0; i < 8; i++) x[i] = (float)(i + 1);
    assert_ok(be->ops->linear_forward(be, l, x, 1, y));
    for (int j = 0; j < 24; j++) {
        double ref = 0;
        for (int c = 0; c < 8; c++) ref += (double)keep[j * 8 + c] * x[c];
        assert_true(fabs(ref - y[j]) < 1e-4);
    }
    be->ops->linear_destroy(be, l);
    free(w);
    free(keep);
    dc_backend_destroy(be);
}

static void test_linear_bad_arguments(void **state) {
    (void)state;
    dc_backend *be = cpu(0);
    dc_linear *l = (dc_linear *)1;
    float w[4] = {0};
    assert_status(be->ops->linear_create(be, w, NULL, 0, 4, DC_WEIGHTS_F32, &l),
                  DC_ERR_INVALID_ARGUMENT);
    assert_null(l);
    assert_status(be->ops->linear_create(be, NULL, NULL, 2, 2, DC_WEIGHTS_F32, &l),
                  DC_ERR_INVALID_ARGUMENT);
    assert_status(be->ops->linear_create(be, w, NULL, 2, 2, (dc_weight_format)9, &l),
                  DC_ERR_UNSUPPORTED_FORMAT);
    dc_backend_destroy(be);
}

/* ---- element-wise ---- */

static double gelu_ref(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }
static double gelu_tanh_ref(double x) {
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / 3.14159265358979323846) * (x + 0.044715 * x * x * x)));
}
static double quick_gelu_ref(double x) { return x / (1.0 + exp(-1.702 * x)); }

static void check_exp_erf(void) {
    size_t n = 20001;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) x[i] = -87.0f + 175.0f * (float)i / (float)(n - 1);
    dc_kernel_exp(x, y, n);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double ref = exp((double)x[i]);
        double rel = fabs(y[i] - ref) / ref;
        if (rel > worst) worst = rel;
    }
    if (worst > 4e-7) fail_msg("exp: max relative error %g", worst);
    for (size_t i = 0; i < n; i++) x[i] = -6.0f + 12.0f * (float)i / (float)(n - 1);
    dc_kernel_erf(x, y, n);
    worst = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs(y[i] - erf((double)x[i]));
        if (err > worst) worst = err;
    }
    if (worst > 5e-7) fail_msg("erf: max abs error %g", worst);
    /* far tails */
    float t[4] = {-1e30f, -100.0f, 100.0f, 1e30f}, u[4];
    dc_kernel_erf(t, u, 4);
    assert_true(u[0] == -1.0f && u[1] == -1.0f && u[2] == 1.0f && u[3] == 1.0f);
    dc_kernel_exp(t, u, 4);
    assert_true(u[0] >= 0.0f && u[0] < 1e-37f && isfinite(u[3]));
    free(x);
    free(y);
}

static void check_activations(void) {
    size_t n = 4099; /* odd: exercises the vector epilogue */
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) x[i] = -10.0f + 20.0f * (float)i / (float)(n - 1);
    struct {
        dc_activation a;
        double (*ref)(double);
    } cases[] = {{DC_ACT_GELU_ERF, gelu_ref}, {DC_ACT_GELU_TANH, gelu_tanh_ref},
                 {DC_ACT_QUICK_GELU, quick_gelu_ref}};
    for (size_t c = 0; c < 3; c++) {
        memcpy(y, x, n * sizeof *y);
        dc_kernel_activation(cases[c].a, y, n);
        for (size_t i = 0; i < n; i++) {
            double ref = cases[c].ref((double)x[i]);
            if (fabs(y[i] - ref) > 1e-6 * (1.0 + fabs(ref)))
                fail_msg("%s(%g) = %.9g, reference %.9g", dc_activation_name(cases[c].a),
                         (double)x[i], (double)y[i], ref);
        }
    }
    memcpy(y, x, n * sizeof *y);
    dc_kernel_activation(DC_ACT_RELU, y, n);
    for (size_t i = 0; i < n; i++) assert_true(y[i] == (x[i] > 0 ? x[i] : 0.0f));
    free(x);
    free(y);
}

static void test_elementwise(void **state) {
    (void)state;
    for (int generic = 0; generic < 2; generic++) {
        dc_kernel_force_generic(generic);
        check_exp_erf();
        check_activations();
    }
    dc_kernel_force_generic(false);
    dc_activation a;
    assert_true(dc_activation_parse("gelu", &a) && a == DC_ACT_GELU_ERF);
    assert_true(dc_activation_parse("gelu_new", &a) && a == DC_ACT_GELU_TANH);
    assert_true(dc_activation_parse("quick_gelu", &a) && a == DC_ACT_QUICK_GELU);
    assert_false(dc_activation_parse("swish", &a));
}

static void test_layernorm(void **state) {
    (void)state;
    for (int generic = 0; generic < 2; generic++) {
        dc_kernel_force_generic(generic);
        size_t dims[] = {1, 7, 32, 384, 1027};
        for (size_t d = 0; d < 5; d++) {
            size_t rows = 5, cols = dims[d];
            rng_state = 42 + d;
            float *x = rand_array(rows * cols, -3, 5), *r = rand_array(rows * cols, -1, 1);
            float *g = rand_array(cols, 0.5f, 1.5f), *b = rand_array(cols, -1, 1);
            float *y = malloc(rows * cols * sizeof *y);
            for (int with_res = 0; with_res < 2; with_res++) {
                float eps = with_res ? 1e-12f : 1e-5f;
                dc_kernel_layernorm(x, with_res ? r : NULL, g, b, eps, rows, cols, y);
                for (size_t i = 0; i < rows; i++) {
                    double mean = 0, var = 0;
                    for (size_t c = 0; c < cols; c++)
                        mean += x[i * cols + c] + (with_res ? r[i * cols + c] : 0.0);
                    mean /= (double)cols;
                    for (size_t c = 0; c < cols; c++) {
                        double v = x[i * cols + c] + (with_res ? r[i * cols + c] : 0.0) - mean;
                        var += v * v;
                    }
                    var /= (double)cols;
                    for (size_t c = 0; c < cols; c++) {
                        double v = x[i * cols + c] + (with_res ? r[i * cols + c] : 0.0);
                        double ref = (v - mean) / sqrt(var + eps) * g[c] + b[c];
                        if (fabs(ref - y[i * cols + c]) > 2e-5 * (1 + fabs(ref)))
                            fail_msg("layernorm cols %zu: %g vs %g", cols, (double)y[i * cols + c],
                                     ref);
                    }
                }
            }
            /* in place (y aliases x) equals out of place */
            float *y2 = malloc(rows * cols * sizeof *y2);
            dc_kernel_layernorm(x, r, g, b, 1e-12f, rows, cols, y2);
            dc_kernel_layernorm(x, r, g, b, 1e-12f, rows, cols, x);
            assert_memory_equal(x, y2, rows * cols * sizeof *x);
            free(y2);
            free(x);
            free(r);
            free(g);
            free(b);
            free(y);
        }
    }
    dc_kernel_force_generic(false);
}

static void test_embed_sum_and_add(void **state) {
    (void)state;
    size_t cols = 19;
    rng_state = 3;
    float *t0 = rand_array(10 * cols, -1, 1), *t1 = rand_array(6 * cols, -1, 1),
          *t2 = rand_array(2 * cols, -1, 1);
    uint32_t i0[4] = {9, 0, 3, 3}, i1[4] = {0, 1, 2, 5}, i2[4] = {1, 0, 0, 1};
    float out[4 * 19];
    dc_kernel_embed_sum(4, cols, t0, i0, t1, i1, t2, i2, out);
    for (size_t r = 0; r < 4; r++)
        for (size_t c = 0; c < cols; c++) {
            float ref = t0[i0[r] * cols + c] + t1[i1[r] * cols + c] + t2[i2[r] * cols + c];
            assert_true(fabsf(ref - out[r * cols + c]) < 1e-6f);
        }
    dc_kernel_embed_sum(4, cols, t0, i0, NULL, NULL, NULL, NULL, out);
    for (size_t r = 0; r < 4; r++)
        assert_memory_equal(out + r * cols, t0 + i0[r] * cols, cols * sizeof(float));
    float a[37], b[37];
    for (int i = 0; i < 37; i++) a[i] = (float)i, b[i] = 0.5f * (float)i;
    dc_kernel_add(a, b, 37);
    for (int i = 0; i < 37; i++) assert_true(a[i] == 1.5f * (float)i);
    free(t0);
    free(t1);
    free(t2);
}

/* ---- attention ---- */

static void attention_ref(const float *q, size_t ld_q, const float *k, const float *v,
                          size_t ld_kv, double *out, size_t ld_out, uint32_t len,
                          const uint8_t *mask, uint32_t heads, uint32_t hd, double scale) {
    double *s = malloc(len * sizeof *s);
    for (uint32_t h = 0; h < heads; h++)
        for (uint32_t i = 0; i < len; i++) {
            double mx = -INFINITY;
            for (uint32_t j = 0; j < len; j++) {
                if (mask && !mask[j]) continue;
                double d = 0;
                for (uint32_t c = 0; c < hd; c++)
                    d += (double)q[i * ld_q + h * hd + c] * k[j * ld_kv + h * hd + c];
                s[j] = d * scale;
                if (s[j] > mx) mx = s[j];
            }
            double sum = 0;
            for (uint32_t j = 0; j < len; j++) {
                if (mask && !mask[j]) continue;
                s[j] = exp(s[j] - mx);
                sum += s[j];
            }
            for (uint32_t c = 0; c < hd; c++) {
                double acc = 0;
                for (uint32_t j = 0; j < len; j++)
                    if (!mask || mask[j]) acc += s[j] * v[j * ld_kv + h * hd + c];
                out[i * ld_out + h * hd + c] = sum > 0 ? acc / sum : 0.0;
            }
        }
    free(s);
}

/* Head widths below, at and past the kernel's 32-column value blocks (20: the scalar columns
 * only, 64: two blocks, 72: two and a scalar rest); the lengths leave query groups of 1, 2 and
 * 3 rows. */
static void test_attention_packed_masked(void **state) {
    (void)state;
    dc_backend *be = cpu(0);
    uint32_t start[] = {0, 1, 9, 9, 46, 49}; /* lengths 1, 8, 0, 37, 3 */
    uint32_t nseq = 5, rows = 49;
    const uint32_t widths[] = {20, 64, 72};
    for (int run = 0; run < 6; run++) {
        const int generic = run % 2;
        const uint32_t heads = 3, hd = widths[run / 2], H = heads * hd;
        dc_kernel_force_generic(generic);
        rng_state = 99;
        /* fused QKV rows [q | k | v] of width 3H, like the encoder passes them */
        float *qkv = rand_array((size_t)rows * 3 * H, -2, 2);
        uint8_t mask[49];
        for (uint32_t r = 0; r < rows; r++) mask[r] = (rng_next() % 4) != 0;
        mask[0] = 1;
        for (uint32_t r = 46; r < 49; r++) mask[r] = 0; /* a sequence with no live key */
        float *out = malloc((size_t)rows * H * sizeof *out);
        dc_seq_batch sb = {nseq, start, mask};
        float scale = 1.0f / sqrtf((float)hd);
        assert_ok(be->ops->attention(be, qkv, 3 * H, qkv + H, qkv + 2 * H, 3 * H, out, H, heads,
                                     hd, scale, &sb));
        double *ref = malloc((size_t)rows * H * sizeof *ref);
        for (uint32_t s = 0; s < nseq; s++) {
            uint32_t r0 = start[s], len = start[s + 1] - start[s];
            if (!len) continue;
            attention_ref(qkv + (size_t)r0 * 3 * H, 3 * H, qkv + (size_t)r0 * 3 * H + H,
                          qkv + (size_t)r0 * 3 * H + 2 * H, 3 * H, ref + (size_t)r0 * H, H, len,
                          mask + r0, heads, hd, scale);
        }
        for (size_t i = 0; i < (size_t)rows * H; i++)
            if (fabs(ref[i] - out[i]) > 2e-6 * (1 + fabs(ref[i])))
                fail_msg("attention (head_dim %u) [%zu] = %g, reference %g", hd, i,
                         (double)out[i], ref[i]);
        for (size_t i = 46 * H; i < 49 * H; i++) assert_true(out[i] == 0.0f);

        /* masked keys contribute exactly 0: poison them, the output must not change a bit */
        float *out2 = malloc((size_t)rows * H * sizeof *out2);
        for (uint32_t r = 0; r < rows; r++)
            if (!mask[r])
                for (uint32_t c = H; c < 3 * H; c++) qkv[(size_t)r * 3 * H + c] = NAN;
        assert_ok(be->ops->attention(be, qkv, 3 * H, qkv + H, qkv + 2 * H, 3 * H, out2, H, heads,
                                     hd, scale, &sb));
        assert_memory_equal(out, out2, (size_t)rows * H * sizeof *out);
        free(out2);
        free(qkv);
        free(out);
        free(ref);
    }
    dc_kernel_force_generic(false);
    dc_backend_destroy(be);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_matches_reference),
        cmocka_unit_test(test_linear_gemm_choice_checked),
        cmocka_unit_test(test_packed_tiles_same_bits),
        cmocka_unit_test(test_linear_weights_are_copied),
        cmocka_unit_test(test_linear_bad_arguments),
        cmocka_unit_test(test_elementwise),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_embed_sum_and_add),
        cmocka_unit_test(test_attention_packed_masked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The bf16 and int8 linear layers of the CPU backend against the plain-C references of
 * tensor/quant.h (tight: the same integers, f32 rounding only) and against f32 (loose), plus
 * the conversions and quantisers themselves. */
#include <math.h>

#include "tensor/backend.h"
#include "tensor/quant.h"
#include "test_support.h"

static uint32_t rng = 12345;
static float frand(void) { /* uniform in [-1, 1) */
    rng = rng * 1664525u + 1013904223u;
    return (float)(rng >> 8) / 8388608.0f - 1.0f;
}

static float *rand_vec(size_t n, float scale) {
    float *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = frand() * scale;
    return v;
}

static double max_rel(const float *a, const float *b, size_t n) {
    double mx = 0, ref = 0;
    for (size_t i = 0; i < n; i++) {
        mx = fmax(mx, fabs((double)a[i] - b[i]));
        ref = fmax(ref, fabs((double)b[i]));
    }
    return ref > 0 ? mx / ref : mx;
}

static double cosine(const float *a, const float *b, size_t n) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return ab / sqrt(aa * bb);
}

static void test_bf16_rounding(void **s) {
    (void)s;
    assert_int_equal(dc_quant_bf16_from_f32(1.0f), 0x3f80);
    assert_int_equal(dc_quant_bf16_from_f32(-2.0f), 0xc000);
    /* ties go to even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7 */
    assert_int_equal(dc_quant_bf16_from_f32(1.0f + 1.0f / 256), 0x3f80);
    assert_int_equal(dc_quant_bf16_from_f32(1.0f + 3.0f / 256), 0x3f82);
    assert_int_equal(dc_quant_bf16_from_f32(1.0f + 1.0f / 256 + 1.0f / 65536), 0x3f81);
    assert_true(isinf(dc_quant_bf16_to_f32(dc_quant_bf16_from_f32(INFINITY))));
    assert_true(isnan(dc_quant_bf16_to_f32(dc_quant_bf16_from_f32(NAN))));
    /* the largest finite f32 rounds up to infinity, as torch's cast does */
    assert_true(isinf(dc_quant_bf16_to_f32(dc_quant_bf16_from_f32(3.4028235e38f))));
    float v[5] = {0.1f, -3.5f, 1e-30f, 65504.0f, 0.0f}, back[5];
    uint16_t b[5];
    dc_quant_bf16_pack(v, 5, b);
    dc_quant_bf16_unpack(b, 5, back);
    for (int i = 0; i < 5; i++) assert_true(fabsf(back[i] - v[i]) <= fabsf(v[i]) / 256);
}

static void test_int8_quantisers(void **s) {
    (void)s;
    /* weights: per output row, the largest magnitude maps to ±w_max */
    float w[6] = {0.75f, -1.0f, 0.25f, 0.0f, 0.0f, 0.0f};
    int8_t q[6];
    float sc[2];
    int32_t cs[2];
    assert_ok(dc_quant_int8_weights(w, 2, 3, 63, q, sc, cs));
    assert_int_equal(q[1], -63);
    assert_int_equal(q[0], 47); /* 47.25 */
    assert_int_equal(q[2], 16); /* 15.75 */
    assert_int_equal(cs[0], 47 - 63 + 16);
    assert_true(fabsf(sc[0] - 1.0f / 63) < 1e-9f);
    assert_int_equal(q[3], 0); /* an all-zero row stays exact */
    assert_int_equal(cs[1], 0);
    w[4] = NAN;
    assert_status(dc_quant_int8_weights(w, 2, 3, 63, q, sc, cs), DC_ERR_INVALID_VALUE);
    assert_detail_contains("row 1");
    assert_status(dc_quant_int8_weights(w, 2, 3, 200, q, sc, cs), DC_ERR_INVALID_ARGUMENT);

    /* activations: the row's range (with 0) spans [0, act_max]; 0 is exact */
    float x[8] = {-1.0f, 0.0f, 3.0f, 1.0f, 2.0f, 4.0f, 0.5f, 1.0f};
    uint8_t qx[8];
    float sx[2];
    int32_t zx[2];
    dc_quant_int8_rows(x, 2, 4, 255, NULL, 0, qx, sx, zx, NULL);
    assert_int_equal(qx[0], 0);
    assert_int_equal(qx[2], 255);
    assert_int_equal(qx[1], zx[0]);
    assert_true(fabsf(sx[0] - 4.0f / 255) < 1e-7f);
    assert_int_equal(zx[1], 0); /* a positive row: zero point 0 */
    assert_int_equal(qx[5], 255);
    /* a skipped column gets the zero point and leaves the range */
    uint32_t skip = 2;
    float work[4];
    dc_quant_int8_rows(x, 1, 4, 255, &skip, 1, qx, sx, zx, work);
    assert_int_equal(qx[2], zx[0]);
    assert_true(fabsf(sx[0] - 2.0f / 255) < 1e-7f);
    /* a non-finite value makes the row's scale NaN */
    x[1] = INFINITY;
    dc_quant_int8_rows(x, 2, 4, 255, NULL, 0, qx, sx, zx, NULL);
    assert_true(isnan(sx[0]));
    assert_false(isnan(sx[1]));
}

static void test_int8_outliers(void **s) {
    (void)s;
    enum { ROWS = 5, K = 128 };
    float *x = rand_vec((size_t)ROWS * K, 1.0f);
    float work[2 * K];
    uint32_t idx[K / DC_INT8_OUTLIER_SHARE];
    assert_int_equal(dc_quant_int8_outliers(x, ROWS, K, DC_INT8_OUTLIER_RATIO, idx, work), 0);
    x[2 * K + 7] = 40.0f;  /* one large value makes column 7 an outlier */
    x[4 * K + 90] = -30.0f;
    assert_int_equal(dc_quant_int8_outliers(x, ROWS, K, DC_INT8_OUTLIER_RATIO, idx, work), 2);
    assert_int_equal(idx[0], 7);
    assert_int_equal(idx[1], 90);
    /* never more than k / DC_INT8_OUTLIER_SHARE: the largest ones */
    for (uint32_t j = 0; j < 10; j++) x[j * 11] = 100.0f + (float)j;
    uint32_t n = dc_quant_int8_outliers(x, ROWS, K, DC_INT8_OUTLIER_RATIO, idx, work);
    assert_int_equal(n, K / DC_INT8_OUTLIER_SHARE);
    for (uint32_t i = 0; i < n; i++) assert_true(idx[i] % 11 == 0 && idx[i] / 11 >= 10 - n);
    /* the ratio decides: a column at 3.5 x the median is an outlier at 3, not at 4 */
    for (size_t i = 0; i < (size_t)ROWS * K; i++) x[i] = (i % 3) ? 0.5f : -0.5f;
    x[K + 50] = 1.75f;
    x[3 * K + 60] = -2.5f;
    assert_int_equal(dc_quant_int8_outliers(x, ROWS, K, 4.0f, idx, work), 1);
    assert_int_equal(idx[0], 60);
    assert_int_equal(dc_quant_int8_outliers(x, ROWS, K, 3.0f, idx, work), 2);
    assert_int_equal(idx[0], 50);
    /* the ranges this CPU uses never saturate vpmaddubsw's int16 pairs without VNNI */
    dc_int8_ranges rg = dc_quant_int8_ranges_cpu();
    assert_true(rg.act_max <= 255 && rg.w_max <= 127 && rg.outlier_ratio > 1.0f);
    if (rg.act_max < 255 || rg.w_max < 127) assert_true(2 * rg.act_max * rg.w_max <= 32767);
    free(x);
}

typedef struct shape {
    uint32_t rows, n, k;
    bool bias;
} shape;

/* One layer in both formats against the references and f32. */
static void check_layer(dc_backend *be, const shape *sh, float xscale) {
    size_t nk = (size_t)sh->n * sh->k, mk = (size_t)sh->rows * sh->k, mn = (size_t)sh->rows * sh->n;
    float *w = rand_vec(nk, 0.05f), *b = sh->bias ? rand_vec(sh->n, 0.5f) : NULL;
    float *x = rand_vec(mk, xscale), *y = malloc(mn * sizeof *y + 4), *f = malloc(mn * sizeof *f + 4),
          *r = malloc(mn * sizeof *r + 4);
    if (sh->k > 64) { /* an outlier channel, as after LayerNorm */
        for (uint32_t m = 0; m < sh->rows; m++) x[(size_t)m * sh->k + 5] *= 30.0f;
    }
    dc_linear *l32, *l8, *l16;
    assert_ok(be->ops->linear_create(be, w, b, sh->n, sh->k, DC_WEIGHTS_F32, &l32));
    assert_ok(be->ops->linear_create(be, w, b, sh->n, sh->k, DC_WEIGHTS_INT8, &l8));
    assert_ok(be->ops->linear_create(be, w, b, sh->n, sh->k, DC_WEIGHTS_BF16, &l16));
    assert_ok(be->ops->linear_forward(be, l32, x, sh->rows, f));

    /* int8: the same integers as the reference, so only f32 rounding differs */
    dc_int8_ranges rg = dc_quant_int8_ranges_cpu();
    int8_t *qw = malloc(nk);
    float *sw = malloc(sh->n * sizeof *sw);
    int32_t *cs = malloc(sh->n * sizeof *cs);
    assert_ok(dc_quant_int8_weights(w, sh->n, sh->k, rg.w_max, qw, sw, cs));
    assert_ok(dc_quant_linear_int8_ref(x, sh->rows, sh->k, sh->n, qw, sw, cs, b, rg, r));
    assert_ok(be->ops->linear_forward(be, l8, x, sh->rows, y));
    double e_ref = max_rel(y, r, mn), c8 = cosine(y, f, mn);
    if (e_ref > 1e-5) fail_msg("int8 %ux%ux%u: %.3g from the reference", sh->rows, sh->n, sh->k, e_ref);
    if (c8 < 0.999) fail_msg("int8 %ux%ux%u: cosine %.6f to f32", sh->rows, sh->n, sh->k, c8);
    assert_non_null(strstr(dc_cpu_linear_impl(l8), "int8"));

    /* bf16: the reference rounds the weights (and the activations where the product is bf16) */
    uint16_t *w16 = malloc(nk * sizeof *w16);
    dc_quant_bf16_pack(w, nk, w16);
    bool native = strstr(dc_cpu_linear_impl(l16), "native") != NULL;
    dc_quant_linear_bf16_ref(x, sh->rows, sh->k, sh->n, w16, b, native, r);
    assert_ok(be->ops->linear_forward(be, l16, x, sh->rows, y));
    e_ref = max_rel(y, r, mn);
    double c16 = cosine(y, f, mn);
    if (e_ref > (native ? 1e-3 : 1e-5))
        fail_msg("bf16 %ux%ux%u: %.3g from the reference", sh->rows, sh->n, sh->k, e_ref);
    if (c16 < 0.9999) fail_msg("bf16 %ux%ux%u: cosine %.7f to f32", sh->rows, sh->n, sh->k, c16);

    /* stored bytes: bf16 about half of f32, int8 about a quarter */
    size_t b32 = be->ops->linear_bytes(l32), b16 = be->ops->linear_bytes(l16),
           b8 = be->ops->linear_bytes(l8);
    /* the packed GEMM rounds n up to whole 16-column panels */
    const size_t nk16 = (size_t)(sh->n + 15) / 16 * 16 * sh->k;
    assert_true(b16 >= nk * 2 && b16 < nk16 * 2 + sh->n * 12 + 4096);
    /* brgemm's blocked int8 layout (VNNI CPUs) pads both k and n to 64 */
    const size_t nk64 = (size_t)(sh->n + 63) / 64 * 64 * ((sh->k + 63) / 64 * 64);
    assert_true(b8 >= nk && b8 < (nk > nk64 ? nk : nk64) + sh->n * 12 + 4096);
    assert_true(b32 >= nk * 4);
    print_message("%4u x %4u x %4u  int8 cosine %.6f  bf16 cosine %.7f  bytes f32 %zu bf16 %zu "
                  "int8 %zu  [%s | %s]\n",
                  sh->rows, sh->n, sh->k, c8, c16, b32, b16, b8, dc_cpu_linear_impl(l8),
                  dc_cpu_linear_impl(l16));
    be->ops->linear_destroy(be, l32);
    be->ops->linear_destroy(be, l8);
    be->ops->linear_destroy(be, l16);
    free(w);
    free(b);
    free(x);
    free(y);
    free(f);
    free(r);
    free(qw);
    free(sw);
    free(cs);
    free(w16);
}

static void test_linear_formats(void **s) {
    (void)s;
    dc_backend *be;
    assert_ok(dc_backend_cpu_create(NULL, &be));
    /* one row, odd sizes, several bf16 blocks with a tail (k = 1000: blocks of 256), large
     * activations at the ends of the u8 range */
    static const shape shapes[] = {{1, 16, 8, true},     {7, 33, 65, false}, {37, 300, 250, true},
                                   {130, 600, 1000, true}, {64, 96, 3072, true}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) check_layer(be, &shapes[i], 2.0f);
    shape big = {16, 64, 512, true};
    check_layer(be, &big, 1000.0f);
    dc_backend_destroy(be);
}

/* Every u8·s8 pair at the ends of both ranges: an int16 saturation in the product would show. */
static void test_int8_extremes(void **s) {
    (void)s;
    dc_backend *be;
    assert_ok(dc_backend_cpu_create(NULL, &be));
    enum { N = 16, K = 64, M = 4 };
    float w[N * K], x[M * K], y[M * N], r[M * N];
    for (int i = 0; i < N * K; i++) w[i] = (i / K) % 2 ? -1.0f : 1.0f;
    for (int i = 0; i < M * K; i++) x[i] = (i / K) % 2 ? 1.0f : ((i % K) ? 1.0f : -0.001f);
    dc_linear *l;
    assert_ok(be->ops->linear_create(be, w, NULL, N, K, DC_WEIGHTS_INT8, &l));
    assert_ok(be->ops->linear_forward(be, l, x, M, y));
    dc_int8_ranges rg = dc_quant_int8_ranges_cpu();
    int8_t qw[N * K];
    float sw[N];
    int32_t cs[N];
    assert_ok(dc_quant_int8_weights(w, N, K, rg.w_max, qw, sw, cs));
    assert_ok(dc_quant_linear_int8_ref(x, M, K, N, qw, sw, cs, NULL, rg, r));
    for (int i = 0; i < M * N; i++) {
        if (fabsf(y[i] - r[i]) > 1e-4f * fabsf(r[i]) + 1e-6f)
            fail_msg("element %d: %g, reference %g", i, y[i], r[i]);
        double exact = 0;
        for (int k = 0; k < K; k++) exact += (double)x[(i / N) * K + k] * w[(i % N) * K + k];
        assert_true(fabs(y[i] - exact) < 0.02 * fabs(exact));
    }
    be->ops->linear_destroy(be, l);
    dc_backend_destroy(be);
}

/* The AVX2 loops and the portable ones give the same bits (bf16: where both widen the weights
 * to f32; a native bf16 product rounds the inputs too, and unit.tensor checks it). */
static void test_dispatch_same_bits(void **s) {
    (void)s;
    dc_backend *be;
    assert_ok(dc_backend_cpu_create(NULL, &be));
    enum { M = 19, N = 45, K = 301 };
    float *w = rand_vec((size_t)N * K, 0.05f), *b = rand_vec(N, 0.5f), *x = rand_vec((size_t)M * K, 3.0f);
    for (int m = 0; m < M; m++) x[m * K + 17] *= 40.0f;
    float y[2][M * N], z[2][M * N];
    bool native = false;
    for (int g = 0; g < 2; g++) {
        dc_kernel_force_generic(g == 1);
        dc_linear *l8, *l16;
        assert_ok(be->ops->linear_create(be, w, b, N, K, DC_WEIGHTS_INT8, &l8));
        assert_ok(be->ops->linear_create(be, w, b, N, K, DC_WEIGHTS_BF16, &l16));
        assert_ok(be->ops->linear_forward(be, l8, x, M, y[g]));
        assert_ok(be->ops->linear_forward(be, l16, x, M, z[g]));
        if (g == 0) native = strstr(dc_cpu_linear_impl(l16), "native") != NULL;
        be->ops->linear_destroy(be, l8);
        be->ops->linear_destroy(be, l16);
    }
    dc_kernel_force_generic(false);
    print_message("kernels: %s\n", dc_cpu_kernel_isa());
    assert_memory_equal(y[0], y[1], sizeof y[0]);
    if (native) print_message("bf16: native product here, not compared with the widened one\n");
    else assert_memory_equal(z[0], z[1], sizeof z[0]);
    free(w);
    free(b);
    free(x);
    dc_backend_destroy(be);
}

static void test_nonfinite_and_errors(void **s) {
    (void)s;
    dc_backend *be;
    assert_ok(dc_backend_cpu_create(NULL, &be));
    float w[4 * 8], x[2 * 8], y[2 * 4];
    for (int i = 0; i < 32; i++) w[i] = 0.1f * (float)(i % 5);
    for (int i = 0; i < 16; i++) x[i] = 0.5f;
    dc_linear *l;
    assert_ok(be->ops->linear_create(be, w, NULL, 4, 8, DC_WEIGHTS_INT8, &l));
    x[3] = NAN; /* row 0 only */
    assert_ok(be->ops->linear_forward(be, l, x, 2, y));
    for (int c = 0; c < 4; c++) {
        assert_true(isnan(y[c]));
        assert_false(isnan(y[4 + c]));
    }
    assert_ok(be->ops->linear_forward(be, l, x, 0, y)); /* no rows: nothing to do */
    be->ops->linear_destroy(be, l);
    w[9] = INFINITY;
    assert_status(be->ops->linear_create(be, w, NULL, 4, 8, DC_WEIGHTS_INT8, &l),
                  DC_ERR_INVALID_VALUE);
    assert_detail_contains("row 1");
    assert_status(be->ops->linear_create(be, w, NULL, 4, 8, (dc_weight_format)7, &l),
                  DC_ERR_UNSUPPORTED_FORMAT);
    assert_status(be->ops->linear_create(be, w, NULL, 0, 8, DC_WEIGHTS_BF16, &l),
                  DC_ERR_INVALID_ARGUMENT);
    dc_backend_destroy(be);

    dc_weight_format f;
    assert_true(dc_weight_format_parse("int8", &f) && f == DC_WEIGHTS_INT8);
    assert_true(dc_weight_format_parse("bf16", &f) && f == DC_WEIGHTS_BF16);
    assert_true(dc_weight_format_parse("fp32", &f) && f == DC_WEIGHTS_F32);
    assert_false(dc_weight_format_parse("fp8", &f));
    assert_string_equal(dc_weight_format_name(DC_WEIGHTS_BF16), "bf16");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bf16_rounding),   cmocka_unit_test(test_int8_quantisers),
        cmocka_unit_test(test_int8_outliers),   cmocka_unit_test(test_linear_formats),
        cmocka_unit_test(test_int8_extremes),   cmocka_unit_test(test_nonfinite_and_errors),
        cmocka_unit_test(test_dispatch_same_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

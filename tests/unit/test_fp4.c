/* FP4: the 16 E2M1 codes against the format definition, rounding between them, E8M0 scales,
 * nibble packing, and the NVFP4 / MXFP4 block quantisers' guarantees (scale representable in its
 * format, block maximum within one E2M1 step, exact round trip of representable blocks). */
#include <math.h>

#include "tensor/quant_fp.h"
#include "test_support.h"

/* (−1)^s · 2^(e−1) · (1 + m/2) for e > 0, m/2 for e = 0. */
static double e2m1_ref(unsigned c) {
    unsigned s = (c >> 3) & 1, e = (c >> 1) & 3, m = c & 1;
    double v = e ? ldexp(1.0 + m / 2.0, (int)e - 1) : m / 2.0;
    return s ? -v : v;
}

static void test_e2m1_codes(void **state) {
    (void)state;
    static const double pos[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};
    for (unsigned c = 0; c < 16; c++) {
        assert_true((double)dc_fp4_e2m1_decode((uint8_t)c) == e2m1_ref(c));
        assert_true(fabs(e2m1_ref(c)) == pos[c & 7]);
        assert_int_equal(dc_fp4_e2m1_encode(dc_fp4_e2m1_decode((uint8_t)c)), c);
    }
    /* midpoints: ties to the even code, a hair either side to the nearer one */
    for (unsigned c = 0; c < 7; c++) {
        float mid = (float)((pos[c] + pos[c + 1]) / 2);
        unsigned even = (c & 1) ? c + 1 : c;
        assert_int_equal(dc_fp4_e2m1_encode(mid), even);
        assert_int_equal(dc_fp4_e2m1_encode(-mid), even | 8);
        assert_int_equal(dc_fp4_e2m1_encode(nextafterf(mid, 0.0f)), c);
        assert_int_equal(dc_fp4_e2m1_encode(nextafterf(mid, INFINITY)), c + 1);
    }
    assert_int_equal(dc_fp4_e2m1_encode(7.0f), 0x7); /* saturates */
    assert_int_equal(dc_fp4_e2m1_encode(-1e20f), 0xF);
    assert_int_equal(dc_fp4_e2m1_encode(INFINITY), 0x7);
}

static void test_e8m0(void **state) {
    (void)state;
    assert_true(dc_e8m0_decode(127) == 1.0f);
    assert_true(dc_e8m0_decode(130) == 8.0f);
    assert_true(dc_e8m0_decode(0) == ldexpf(1.0f, -127));
    assert_true(dc_e8m0_decode(254) == ldexpf(1.0f, 127));
    assert_true(isnan(dc_e8m0_decode(255)));
}

static void fill(float *x, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        x[i] = sinf((float)(i * 7 + seed) * 0.61f) * ldexpf(1.0f, (int)((i / 16 + seed) % 9) - 4);
}

static float block_amax(const float *x, size_t n, size_t i0, size_t block) {
    float a = 0;
    for (size_t i = i0; i < n && i < i0 + block; i++) a = fmaxf(a, fabsf(x[i]));
    return a;
}

static void test_nvfp4(void **state) {
    (void)state;
    enum { N = 16 * 7 + 5 };
    float x[N], y[N], S = 0;
    uint8_t packed[(N + 1) / 2], sc[(N + 15) / 16];
    fill(x, N, 3);
    assert_ok(dc_nvfp4_quantize(x, N, packed, sc, &S));
    dc_nvfp4_dequantize(packed, N, sc, S, y);
    assert_true(S == block_amax(x, N, 0, N) / (448.0f * 6.0f));
    for (size_t b = 0; b * 16 < N; b++) {
        float sb = dc_fp8_decode(DC_FP8_E4M3, sc[b]);
        assert_true(sb > 0 && sb <= 448.0f && !(sc[b] & 0x80)); /* a positive E4M3 code */
        float a = block_amax(x, N, b * 16, 16), step = sb * S;
        for (size_t i = b * 16; i < N && i < b * 16 + 16; i++) {
            /* every element within half of the widest E2M1 gap (2) at this scale, plus the
             * block scale's own E4M3 rounding of the block maximum */
            assert_true(fabsf(y[i] - x[i]) <= 1.0f * step + a / 8.0f);
            if (fabsf(x[i]) == a) /* the maximum is within one E2M1 step (≤ 2 units) */
                assert_true(fabsf(y[i] - x[i]) <= 2.0f * step);
        }
    }
    /* a block of representable values with a power-of-two scale comes back exactly */
    float r[32];
    for (int i = 0; i < 32; i++) r[i] = (float)e2m1_ref((unsigned)i & 15) * 0.25f;
    r[0] = 6.0f * 0.25f;
    uint8_t p2[16], s2[2];
    assert_ok(dc_nvfp4_quantize(r, 32, p2, s2, &S));
    dc_nvfp4_dequantize(p2, 32, s2, S, y);
    for (int i = 0; i < 32; i++) assert_true(fabsf(y[i] - r[i]) <= 1e-6f * 1.5f);
    /* all zero: scale 1, codes 0 */
    float z[16] = {0};
    assert_ok(dc_nvfp4_quantize(z, 16, p2, s2, &S));
    assert_true(S == 1.0f && p2[0] == 0 && s2[0] == 0);
    x[20] = INFINITY;
    assert_status(dc_nvfp4_quantize(x, N, packed, sc, &S), DC_ERR_INVALID_VALUE);
}

static void test_mxfp4(void **state) {
    (void)state;
    enum { N = 32 * 5 + 9 };
    float x[N], y[N];
    uint8_t packed[(N + 1) / 2], sc[(N + 31) / 32];
    fill(x, N, 11);
    assert_ok(dc_mxfp4_quantize(x, N, packed, sc));
    dc_mxfp4_dequantize(packed, N, sc, y);
    for (size_t b = 0; b * 32 < N; b++) {
        float a = block_amax(x, N, b * 32, 32), X = dc_e8m0_decode(sc[b]);
        int e = 0;
        assert_true(frexpf(X, &e) == 0.5f); /* a power of two */
        assert_true(a / X >= 4.0f && a / X < 8.0f); /* 2^(⌊log₂ amax⌋ − 2) */
        for (size_t i = b * 32; i < N && i < b * 32 + 32; i++) {
            float err = fabsf(y[i] - x[i]);
            /* half the widest gap (4 → 6) below 6·X; the values in [6, 8)·X clip to 6·X */
            assert_true(err <= (fabsf(x[i]) <= 6.0f * X ? 1.0f : 2.0f) * X);
        }
    }
    /* representable values round-trip; the odd tail leaves its high nibble 0 */
    float r[9] = {0.5f, -1, 1.5f, 2, -3, 4, 6, -0.0f, 0};
    uint8_t p2[5] = {0xAA, 0xAA, 0xAA, 0xAA, 0xAA}, s2[1];
    assert_ok(dc_mxfp4_quantize(r, 9, p2, s2));
    assert_int_equal(s2[0], 127); /* amax 6: ⌊log₂ 6⌋ − 2 = 0 */
    dc_mxfp4_dequantize(p2, 9, s2, y);
    for (int i = 0; i < 9; i++) assert_true(y[i] == r[i]);
    assert_int_equal(p2[0], (0xA << 4) | 0x1); /* element 0 (0.5 = 0001) low, element 1 (−1 = 1010) high */
    assert_int_equal(p2[4] >> 4, 0);
    float z[32] = {0};
    uint8_t pz[16];
    assert_ok(dc_mxfp4_quantize(z, 32, pz, s2));
    assert_int_equal(s2[0], 0);
    for (int i = 0; i < 16; i++) assert_int_equal(pz[i], 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_e2m1_codes),
        cmocka_unit_test(test_e8m0),
        cmocka_unit_test(test_nvfp4),
        cmocka_unit_test(test_mxfp4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* FP8 codecs: all 256 codes of E4M3fn and E5M2 against a table evaluated here from the format
 * definition (ldexp), every finite code re-encoding to itself, ties to even, saturation and
 * overflow, per-tensor/per-block scaling, and torch's casts of ~4000 floats (golden file written
 * by tests/data/fp8/gen_torch_golden.py). torch (2.15) saturates its float8_e4m3fn casts (±inf
 * and overflow → ±448, NaN stays NaN) but not its float8_e5m2 casts (overflow → ±inf), so the
 * golden is compared with saturate = true for E4M3 and false for E5M2. */
#include <math.h>

#include "tensor/quant_fp.h"
#include "test_support.h"

/* The value of a code straight from the definition: (−1)^s · 2^(e−bias) · (1 + m/2^M), or
 * 2^(1−bias) · m/2^M for e = 0. NaN/inf per format. */
static double reference(dc_fp8_format fmt, unsigned c) {
    const int M = fmt == DC_FP8_E4M3 ? 3 : 2, E = fmt == DC_FP8_E4M3 ? 4 : 5;
    const int bias = (1 << (E - 1)) - 1;
    int s = (c >> 7) & 1, e = (int)((c >> M) & ((1u << E) - 1)), m = (int)(c & ((1u << M) - 1));
    if (fmt == DC_FP8_E4M3 && e == 15 && m == 7) return NAN;
    if (fmt == DC_FP8_E5M2 && e == 31) return m ? NAN : (s ? -INFINITY : INFINITY);
    double v = e ? ldexp(1.0 + m / (double)(1 << M), e - bias) : ldexp(m / (double)(1 << M), 1 - bias);
    return s ? -v : v;
}

static void test_all_codes_decode(void **state) {
    (void)state;
    for (int f = 0; f < 2; f++)
        for (unsigned c = 0; c < 256; c++) {
            double want = reference((dc_fp8_format)f, c);
            float got = dc_fp8_decode((dc_fp8_format)f, (uint8_t)c);
            if (isnan(want)) {
                assert_true(isnan(got));
            } else {
                assert_true((double)got == want);
                assert_int_equal(!!signbit(got), (c >> 7) & 1); /* −0 decodes as −0 */
            }
        }
    assert_true(dc_fp8_decode(DC_FP8_E4M3, 0x7E) == 448.0f);
    assert_true(dc_fp8_decode(DC_FP8_E4M3, 0x01) == ldexpf(1.0f, -9));
    assert_true(dc_fp8_decode(DC_FP8_E5M2, 0x7B) == 57344.0f);
    assert_true(dc_fp8_decode(DC_FP8_E5M2, 0x01) == ldexpf(1.0f, -16));
    assert_true(isinf(dc_fp8_decode(DC_FP8_E5M2, 0xFC)) && dc_fp8_decode(DC_FP8_E5M2, 0xFC) < 0);
}

static void test_every_code_reencodes(void **state) {
    (void)state;
    for (int f = 0; f < 2; f++)
        for (unsigned c = 0; c < 256; c++) {
            float v = dc_fp8_decode((dc_fp8_format)f, (uint8_t)c);
            for (int sat = 0; sat < 2; sat++) {
                uint8_t back = dc_fp8_encode((dc_fp8_format)f, v, sat);
                if (isnan(v)) assert_int_equal(back & 0x7F, 0x7F);
                else if (isinf(v)) assert_int_equal(back, sat ? (c & 0x80) | 0x7B : c);
                else assert_int_equal(back, c);
            }
        }
}

/* Midpoints between neighbouring finite codes round to the even code; a hair either side goes
 * to the nearer one. Checked for every adjacent pair of positive finite codes. */
static void test_ties_to_even(void **state) {
    (void)state;
    for (int f = 0; f < 2; f++) {
        dc_fp8_format fmt = (dc_fp8_format)f;
        unsigned last = fmt == DC_FP8_E4M3 ? 0x7E : 0x7B;
        for (unsigned c = 0; c < last; c++) {
            double a = reference(fmt, c), b = reference(fmt, c + 1);
            float mid = (float)((a + b) / 2); /* exact in f32 */
            assert_true((double)mid == (a + b) / 2);
            unsigned even = (c & 1) ? c + 1 : c;
            assert_int_equal(dc_fp8_encode(fmt, mid, true), even);
            assert_int_equal(dc_fp8_encode(fmt, -mid, true), even | 0x80);
            assert_int_equal(dc_fp8_encode(fmt, nextafterf(mid, 0.0f), true), c);
            assert_int_equal(dc_fp8_encode(fmt, nextafterf(mid, INFINITY), true), c + 1);
        }
    }
}

static void test_saturation_and_overflow(void **state) {
    (void)state;
    /* E4M3fn: 464 is the tie between 448 (even) and the NaN slot: it stays 448; above it
     * overflows: ±448 when saturating, NaN otherwise. */
    assert_int_equal(dc_fp8_encode(DC_FP8_E4M3, 464.0f, false), 0x7E);
    assert_int_equal(dc_fp8_encode(DC_FP8_E4M3, 465.0f, false), 0x7F);
    assert_int_equal(dc_fp8_encode(DC_FP8_E4M3, 465.0f, true), 0x7E);
    assert_int_equal(dc_fp8_encode(DC_FP8_E4M3, -1e30f, true), 0xFE);
    assert_int_equal(dc_fp8_encode(DC_FP8_E4M3, -INFINITY, true), 0xFE);
    assert_int_equal(dc_fp8_encode(DC_FP8_E4M3, INFINITY, false), 0x7F);
    assert_int_equal(dc_fp8_encode(DC_FP8_E4M3, NAN, true) & 0x7F, 0x7F);
    /* E5M2: 61440 is the tie between 57344 (odd mantissa 11) and inf (exponent carry): to even
     * means up, so it overflows. */
    assert_int_equal(dc_fp8_encode(DC_FP8_E5M2, 61439.0f, false), 0x7B);
    assert_int_equal(dc_fp8_encode(DC_FP8_E5M2, 61440.0f, false), 0x7C);
    assert_int_equal(dc_fp8_encode(DC_FP8_E5M2, 61440.0f, true), 0x7B);
    assert_int_equal(dc_fp8_encode(DC_FP8_E5M2, -INFINITY, false), 0xFC);
    assert_int_equal(dc_fp8_encode(DC_FP8_E5M2, INFINITY, true), 0x7B);
    assert_int_equal(dc_fp8_encode(DC_FP8_E5M2, NAN, false) & 0x7F, 0x7F);
    /* underflow: half the smallest subnormal is a tie to 0; a hair above rounds up */
    assert_int_equal(dc_fp8_encode(DC_FP8_E4M3, ldexpf(1.0f, -10), true), 0x00);
    assert_int_equal(dc_fp8_encode(DC_FP8_E4M3, nextafterf(ldexpf(1.0f, -10), 1.0f), true), 0x01);
    assert_int_equal(dc_fp8_encode(DC_FP8_E5M2, -ldexpf(1.0f, -17), true), 0x80);
    assert_int_equal(dc_fp8_encode(DC_FP8_E5M2, ldexpf(3.0f, -17), true), 0x02); /* 1.5 ulp: tie → 2 */
}

static void test_torch_golden(void **state) {
    (void)state;
    char *text = dc_test_read_file(dc_test_data_path("fp8/torch_fp8.txt"), NULL);
    assert_non_null(text);
    size_t lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        unsigned bits = 0, e4 = 0, e5 = 0;
        assert_int_equal(sscanf(line, "%x %x %x", &bits, &e4, &e5), 3);
        uint32_t b32 = bits;
        float x;
        memcpy(&x, &b32, sizeof x);
        uint8_t g4 = dc_fp8_encode(DC_FP8_E4M3, x, true), g5 = dc_fp8_encode(DC_FP8_E5M2, x, false);
        if (g4 != e4 || g5 != e5)
            fail_msg("%s (%.9g): e4m3 %02x vs torch %02x, e5m2 %02x vs torch %02x", line, (double)x,
                     g4, e4, g5, e5);
        lines++;
    }
    assert_true(lines > 4000);
    free(text);
}

static void test_tensor_and_block_scaling(void **state) {
    (void)state;
    enum { N = 300 };
    float x[N], y[N], scales[10];
    uint8_t q[N];
    for (int i = 0; i < N; i++) x[i] = sinf((float)i * 0.37f) * ldexpf(1.0f, (i % 11) - 5);
    for (int f = 0; f < 2; f++) {
        dc_fp8_format fmt = (dc_fp8_format)f;
        float s = 0;
        assert_ok(dc_fp8_quantize(fmt, x, N, q, &s));
        dc_fp8_dequantize(fmt, q, N, s, y);
        float amax = 0;
        for (int i = 0; i < N; i++) amax = fmaxf(amax, fabsf(x[i]));
        assert_true(s == amax / dc_fp8_max(fmt));
        /* the largest element maps to ±max exactly; each normal-range value within half an ulp */
        const double half_ulp = fmt == DC_FP8_E4M3 ? 1.0 / 16 : 1.0 / 8;
        for (int i = 0; i < N; i++) {
            if (fabsf(x[i]) == amax) assert_true(fabsf(y[i] - x[i]) <= 1e-6f * amax);
            if (fabsf(x[i] / s) >= (fmt == DC_FP8_E4M3 ? ldexpf(1, -6) : ldexpf(1, -14)))
                assert_true(fabs((double)y[i] - x[i]) <= half_ulp * fabs((double)x[i]) * 1.0001);
        }
        assert_ok(dc_fp8_quantize_blocks(fmt, x, N, 32, q, scales));
        dc_fp8_dequantize_blocks(fmt, q, N, 32, scales, y);
        for (int b = 0; b < 10; b++) {
            float bmax = 0;
            for (int i = b * 32; i < N && i < b * 32 + 32; i++) bmax = fmaxf(bmax, fabsf(x[i]));
            assert_true(scales[b] == bmax / dc_fp8_max(fmt));
        }
        for (int i = 0; i < N; i++) assert_true(fabs((double)y[i] - x[i]) <= 0.125 * fabs((double)x[i]) + 1e-9);
    }
    float zeros[4] = {0, -0.0f, 0, 0}, s = 0;
    assert_ok(dc_fp8_quantize(DC_FP8_E4M3, zeros, 4, q, &s));
    assert_true(s == 1.0f);
    x[7] = NAN;
    assert_status(dc_fp8_quantize(DC_FP8_E4M3, x, N, q, &s), DC_ERR_INVALID_VALUE);
    assert_detail_contains("element 7");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_codes_decode),
        cmocka_unit_test(test_every_code_reencodes),
        cmocka_unit_test(test_ties_to_even),
        cmocka_unit_test(test_saturation_and_overflow),
        cmocka_unit_test(test_torch_golden),
        cmocka_unit_test(test_tensor_and_block_scaling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

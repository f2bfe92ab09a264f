/* FP8 (E4M3fn, E5M2) and the shared minifloat rounding used by the FP4 codecs too. */
#include <math.h>
#include <string.h>

#include "core/error.h"
#include "tensor/quant_fp.h"
#include "tensor/quant_fp_internal.h"

/* Rounds |x| (finite, ≥ 0) to the minifloat with `mbits` mantissa bits and exponent bias
 * `bias`, ties to even, and returns the unsigned code (exponent field << mbits | mantissa),
 * which may exceed the format's largest code when x is too large: the caller decides. Below the
 * smallest normal the quantum is fixed (subnormals); a mantissa that rounds up to 2^(mbits+1)
 * carries into the exponent, which the additive code form does by itself. */
uint32_t dc_minifloat_round(float a, int mbits, int bias) {
    if (a == 0.0f) return 0;
    int e2 = 0;
    frexpf(a, &e2); /* a = f · 2^e2, f ∈ [0.5, 1): unbiased exponent e2 − 1 */
    int e = e2 - 1;
    if (e < 1 - bias) e = 1 - bias; /* subnormal range: quantum of the smallest normal binade */
    if (e - bias > 64) return UINT32_MAX / 2; /* far beyond any minifloat */
    float q = nearbyintf(ldexpf(a, mbits - e)); /* exact scaling; default rounding mode is RNE */
    uint32_t m = (uint32_t)q;
    if (e == 1 - bias && m < (1u << mbits)) return m; /* subnormal (or rounds to smallest normal) */
    return ((uint32_t)(e + bias) << mbits) + (m - (1u << mbits));
}

float dc_fp8_max(dc_fp8_format fmt) {
    return fmt == DC_FP8_E4M3 ? DC_FP8_E4M3_MAX : DC_FP8_E5M2_MAX;
}

uint8_t dc_fp8_encode(dc_fp8_format fmt, float x, bool saturate) {
    const bool e4 = fmt == DC_FP8_E4M3;
    const uint8_t sign = signbit(x) ? 0x80 : 0;
    const uint32_t max_code = e4 ? 0x7E : 0x7B;
    const uint8_t overflow = e4 ? 0x7F : 0x7C; /* NaN for E4M3fn, inf for E5M2 */
    if (isnan(x)) return sign | 0x7F;
    if (isinf(x)) return sign | (saturate ? (uint8_t)max_code : overflow);
    uint32_t c = dc_minifloat_round(fabsf(x), e4 ? 3 : 2, e4 ? 7 : 15);
    if (c > max_code) return sign | (saturate ? (uint8_t)max_code : overflow);
    return sign | (uint8_t)c;
}

/* Builds the f32 bit pattern directly (the tests compare with an ldexp evaluation). */
float dc_fp8_decode(dc_fp8_format fmt, uint8_t code) {
    const bool e4 = fmt == DC_FP8_E4M3;
    const int mbits = e4 ? 3 : 2, bias = e4 ? 7 : 15;
    const uint32_t sign = (uint32_t)(code & 0x80) << 24;
    uint32_t e = (code & 0x7F) >> mbits, m = code & ((1u << mbits) - 1);
    uint32_t bits;
    if (e4 && e == 15 && m == 7) {
        bits = sign | 0x7FC00000u;
    } else if (!e4 && e == 31) {
        bits = sign | (m ? 0x7FC00000u : 0x7F800000u);
    } else if (e == 0) {
        float v = ldexpf((float)m, 1 - bias - mbits); /* subnormal: exact */
        return sign ? -v : v;
    } else {
        bits = sign | ((e - (uint32_t)bias + 127) << 23) | (m << (23 - mbits));
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

dc_status dc_quant_check_finite(const float *x, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return dc_fail(DC_ERR_INVALID_VALUE, "%s: element %zu is not finite", what, i);
    return DC_OK;
}

float dc_quant_amax(const float *x, size_t n) {
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(x[i]));
    return m;
}

static void quantize_scaled(dc_fp8_format fmt, const float *x, size_t n, float scale, uint8_t *q) {
    for (size_t i = 0; i < n; i++) q[i] = dc_fp8_encode(fmt, x[i] / scale, true);
}

dc_status dc_fp8_quantize(dc_fp8_format fmt, const float *x, size_t n, uint8_t *q, float *scale) {
    dc_status st = dc_quant_check_finite(x, n, "fp8 quantize");
    if (st) return st;
    float a = dc_quant_amax(x, n);
    float s = a > 0.0f ? a / dc_fp8_max(fmt) : 1.0f;
    if (s == 0.0f) s = 1.0f; /* amax below max·FLT_TRUE_MIN: everything rounds to 0 anyway */
    quantize_scaled(fmt, x, n, s, q);
    *scale = s;
    return DC_OK;
}

void dc_fp8_dequantize(dc_fp8_format fmt, const uint8_t *q, size_t n, float scale, float *out) {
    for (size_t i = 0; i < n; i++) out[i] = dc_fp8_decode(fmt, q[i]) * scale;
}

dc_status dc_fp8_quantize_blocks(dc_fp8_format fmt, const float *x, size_t n, size_t block,
                                 uint8_t *q, float *scales) {
    if (!block) return dc_fail(DC_ERR_INVALID_ARGUMENT, "fp8 quantize: block size 0");
    for (size_t b = 0, i0 = 0; i0 < n; b++, i0 += block) {
        size_t len = n - i0 < block ? n - i0 : block;
        dc_status st = dc_fp8_quantize(fmt, x + i0, len, q + i0, &scales[b]);
        if (st) return dc_fail_context(st, "block %zu", b);
    }
    return DC_OK;
}

void dc_fp8_dequantize_blocks(dc_fp8_format fmt, const uint8_t *q, size_t n, size_t block,
                              const float *scales, float *out) {
    for (size_t b = 0, i0 = 0; block && i0 < n; b++, i0 += block) {
        size_t len = n - i0 < block ? n - i0 : block;
        dc_fp8_dequantize(fmt, q + i0, len, scales[b], out + i0);
    }
}

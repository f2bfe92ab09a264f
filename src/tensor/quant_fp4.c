/* FP4 E2M1 and its two block-scaled forms, NVFP4 and MXFP4. */
#include <math.h>

#include "core/error.h"
#include "tensor/quant_fp.h"
#include "tensor/quant_fp_internal.h"

uint8_t dc_fp4_e2m1_encode(float x) {
    if (isnan(x)) return 0;
    uint8_t sign = signbit(x) ? 0x8 : 0;
    float a = fabsf(x);
    uint32_t c = isinf(a) ? 0x7 : dc_minifloat_round(a, 1, 1);
    return sign | (uint8_t)(c > 0x7 ? 0x7 : c);
}

float dc_fp4_e2m1_decode(uint8_t code) {
    uint32_t e = (code >> 1) & 0x3, m = code & 1;
    float v = e ? ldexpf(2.0f + (float)m, (int)e - 2) : 0.5f * (float)m;
    return code & 0x8 ? -v : v;
}

float dc_e8m0_decode(uint8_t code) {
    return code == 0xFF ? NAN : ldexpf(1.0f, (int)code - 127);
}

static void put_nibble(uint8_t *packed, size_t i, uint8_t c) {
    if (i & 1) packed[i / 2] = (uint8_t)((packed[i / 2] & 0x0F) | (c << 4));
    else packed[i / 2] = (uint8_t)((packed[i / 2] & 0xF0) | c);
}

static uint8_t get_nibble(const uint8_t *packed, size_t i) {
    return (uint8_t)((packed[i / 2] >> ((i & 1) * 4)) & 0xF);
}

dc_status dc_nvfp4_quantize(const float *x, size_t n, uint8_t *packed, uint8_t *block_scales,
                            float *tensor_scale) {
    dc_status st = dc_quant_check_finite(x, n, "nvfp4 quantize");
    if (st) return st;
    float a = dc_quant_amax(x, n);
    float S = a / (DC_FP8_E4M3_MAX * DC_FP4_E2M1_MAX);
    if (!(S > 0.0f)) S = 1.0f;
    if (n & 1) packed[n / 2] = 0; /* the unused high nibble of an odd tail */
    for (size_t b = 0, i0 = 0; i0 < n; b++, i0 += DC_NVFP4_BLOCK) {
        size_t len = n - i0 < DC_NVFP4_BLOCK ? n - i0 : DC_NVFP4_BLOCK;
        uint8_t sc = dc_fp8_encode(DC_FP8_E4M3, dc_quant_amax(x + i0, len) / (DC_FP4_E2M1_MAX * S), true);
        block_scales[b] = sc;
        float step = dc_fp8_decode(DC_FP8_E4M3, sc) * S;
        for (size_t i = i0; i < i0 + len; i++)
            put_nibble(packed, i, step > 0.0f ? dc_fp4_e2m1_encode(x[i] / step) : 0);
    }
    *tensor_scale = S;
    return DC_OK;
}

void dc_nvfp4_dequantize(const uint8_t *packed, size_t n, const uint8_t *block_scales,
                         float tensor_scale, float *out) {
    for (size_t i = 0; i < n; i++)
        out[i] = dc_fp4_e2m1_decode(get_nibble(packed, i)) *
                 (dc_fp8_decode(DC_FP8_E4M3, block_scales[i / DC_NVFP4_BLOCK]) * tensor_scale);
}

dc_status dc_mxfp4_quantize(const float *x, size_t n, uint8_t *packed, uint8_t *block_scales) {
    dc_status st = dc_quant_check_finite(x, n, "mxfp4 quantize");
    if (st) return st;
    if (n & 1) packed[n / 2] = 0;
    for (size_t b = 0, i0 = 0; i0 < n; b++, i0 += DC_MXFP4_BLOCK) {
        size_t len = n - i0 < DC_MXFP4_BLOCK ? n - i0 : DC_MXFP4_BLOCK;
        float a = dc_quant_amax(x + i0, len);
        int e = -127;
        if (a > 0.0f) {
            int e2 = 0;
            frexpf(a, &e2);
            e = e2 - 1 - 2; /* ⌊log₂ amax⌋ − emax(E2M1) */
            if (e < -127) e = -127;
            if (e > 127) e = 127;
        }
        block_scales[b] = (uint8_t)(e + 127);
        for (size_t i = i0; i < i0 + len; i++) put_nibble(packed, i, dc_fp4_e2m1_encode(ldexpf(x[i], -e)));
    }
    return DC_OK;
}

void dc_mxfp4_dequantize(const uint8_t *packed, size_t n, const uint8_t *block_scales,
                         float *out) {
    for (size_t i = 0; i < n; i++)
        out[i] = dc_fp4_e2m1_decode(get_nibble(packed, i)) *
                 dc_e8m0_decode(block_scales[i / DC_MXFP4_BLOCK]);
}

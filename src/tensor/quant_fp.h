/* Low-precision floating-point codecs on the CPU (DESIGN §9, methods.md §9.2–9.3).
 *
 * FP8: E4M3 in its "fn" variant (bias 7, no infinities, NaN = S.1111.111, largest finite 448)
 * and E5M2 (bias 15, IEEE-like: S.11111.00 = ±inf, S.11111.xx≠0 = NaN, largest finite 57344).
 * FP4: E2M1 (bias 1, ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}, no inf or NaN), packed two per byte with the
 * even element in the low nibble, in two block-scaled forms:
 *   NVFP4: 16-element blocks, an E4M3 block scale and one f32 scale per tensor;
 *   MXFP4: 32-element blocks, an E8M0 (power-of-two) block scale.
 * Every encoder rounds to nearest, ties to even. These are the reference the GPU kernels and
 * the weight converters are checked against, and the storage format FP4 weights are
 * dequantised from where the hardware has no FP4 arithmetic. */
#ifndef DC_TENSOR_QUANT_FP_H
#define DC_TENSOR_QUANT_FP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dodeca/status.h"

typedef enum dc_fp8_format {
    DC_FP8_E4M3 = 0,
    DC_FP8_E5M2 = 1,
} dc_fp8_format;

#define DC_FP8_E4M3_MAX 448.0f
#define DC_FP8_E5M2_MAX 57344.0f
#define DC_FP4_E2M1_MAX 6.0f
#define DC_NVFP4_BLOCK 16
#define DC_MXFP4_BLOCK 32

/* Largest finite value of the format. */
float dc_fp8_max(dc_fp8_format fmt);

/* One value. A finite value beyond the largest finite one (after rounding) becomes ±max when
 * `saturate`, otherwise NaN (E4M3) or ±inf (E5M2), as torch's casts do; ±inf becomes ±max when
 * `saturate`, otherwise NaN (E4M3) or ±inf (E5M2); NaN stays NaN (S.1111111). */
uint8_t dc_fp8_encode(dc_fp8_format fmt, float x, bool saturate);
float dc_fp8_decode(dc_fp8_format fmt, uint8_t code);

/* Per-tensor scaling: scale = amax / max (1 when every value is 0), q = sat(x / scale);
 * x̂ = q · scale. DC_ERR_INVALID_VALUE on a non-finite input (names the index). */
dc_status dc_fp8_quantize(dc_fp8_format fmt, const float *x, size_t n, uint8_t *q, float *scale);
void dc_fp8_dequantize(dc_fp8_format fmt, const uint8_t *q, size_t n, float scale, float *out);

/* Per-block scaling: block b = elements [b·block, min(n, (b+1)·block)) with its own f32 scale;
 * scales holds ⌈n / block⌉ values. */
dc_status dc_fp8_quantize_blocks(dc_fp8_format fmt, const float *x, size_t n, size_t block,
                                 uint8_t *q, float *scales);
void dc_fp8_dequantize_blocks(dc_fp8_format fmt, const uint8_t *q, size_t n, size_t block,
                              const float *scales, float *out);

/* E2M1: saturates to ±6; NaN encodes as +0 (the format has none; block encoders reject it). */
uint8_t dc_fp4_e2m1_encode(float x);
float dc_fp4_e2m1_decode(uint8_t code); /* low 4 bits */

/* E8M0 (MX block scale): 2^(code − 127); 0xFF is NaN. */
float dc_e8m0_decode(uint8_t code);

/* NVFP4: tensor scale S = amax / (448·6) (1 when all zero), block scale s_b = E4M3(amax_b / (6·S))
 * saturating, q = E2M1(x / (s_b·S)); x̂ = q · s_b · S. packed holds ⌈n/2⌉ bytes, block_scales
 * ⌈n/16⌉ E4M3 codes. DC_ERR_INVALID_VALUE on a non-finite input. */
dc_status dc_nvfp4_quantize(const float *x, size_t n, uint8_t *packed, uint8_t *block_scales,
                            float *tensor_scale);
void dc_nvfp4_dequantize(const uint8_t *packed, size_t n, const uint8_t *block_scales,
                         float tensor_scale, float *out);

/* MXFP4 (OCP MX v1.0 §6.3): X = 2^(⌊log₂ amax_b⌋ − 2) clamped to 2^±127 (E8M0 code 0 for an
 * all-zero block), q = E2M1(x / X) saturating; x̂ = q · X. block_scales holds ⌈n/32⌉ codes. */
dc_status dc_mxfp4_quantize(const float *x, size_t n, uint8_t *packed, uint8_t *block_scales);
void dc_mxfp4_dequantize(const uint8_t *packed, size_t n, const uint8_t *block_scales,
                         float *out);

/* Shared by the FP8 and FP4 codecs: DC_ERR_INVALID_VALUE naming `what` and the index of the
 * first non-finite element; the largest |x[i]| (0 for n = 0). */
dc_status dc_quant_check_finite(const float *x, size_t n, const char *what);
float dc_quant_amax(const float *x, size_t n);

#endif

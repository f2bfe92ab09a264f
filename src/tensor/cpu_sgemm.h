/* f32 GEMM over weights packed once at load: y[m, n] = x[m, k] · Wᵀ (+ bias), W as nn.Linear's
 * [n, k]. The weights are stored as panels of 16 output columns, each contiguous over k, so a
 * product of a few rows reads them as one sequential stream, and a 6 × 16 register tile runs
 * the arithmetic for larger ones. */
#ifndef DC_TENSOR_CPU_SGEMM_H
#define DC_TENSOR_CPU_SGEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DC_SGEMM_NR 16 /* columns per weight panel */
#define DC_SGEMM_MR 6  /* rows per register tile and per packed-activation panel */

/* Floats of the packed weights of an n × k layer: ceil(n / 16) panels of k × 16. */
size_t dc_sgemm_weights_floats(size_t n, size_t k);

/* Packs w ([n, k] row-major) into `out` (dc_sgemm_weights_floats floats); columns past n are 0.
 * Panels [p0, p1) only, so the packing can be shared out. */
void dc_sgemm_pack_weights(const float *w, size_t n, size_t k, float *out, size_t p0, size_t p1);

/* The same panels of weights already rounded to bf16 (w: [n, k] bf16 bits), half the bytes. */
void dc_sgemm_pack_weights_bf16(const uint16_t *w, size_t n, size_t k, uint16_t *out, size_t p0,
                                size_t p1);

/* Floats of the packed rows of an m × k input: ceil(m / 6) panels of k × 6. */
size_t dc_sgemm_rows_floats(size_t m, size_t k);

/* Packs row panels [q0, q1) of x ([m, k], row stride k) into `out` (dc_sgemm_rows_floats
 * floats), each panel's 6 rows interleaved per k; rows past m are 0. */
void dc_sgemm_pack_rows(const float *x, size_t m, size_t k, float *out, size_t q0, size_t q1);

/* y[:, 16 p0 .. 16 p1) = x · Wᵀ + bias for x packed by dc_sgemm_pack_rows and weights packed by
 * dc_sgemm_pack_weights, columns clipped at n; row stride of y is ldy; bias may be NULL.
 * Threads share out panel ranges. */
void dc_sgemm_run(const float *xp, size_t m, size_t k, const float *wp, const float *bias, size_t n,
                  float *y, size_t ldy, size_t p0, size_t p1);

/* dc_sgemm_run over bf16 panels: each thread widens a block of its panels at a time into
 * `work` (its own, 64-byte aligned, dc_sgemm_bf16_work_floats floats: 512 KiB) and runs the f32
 * tile on it, so the weights are read from memory at half the bytes of f32. */
size_t dc_sgemm_bf16_work_floats(void);
void dc_sgemm_run_bf16(const float *xp, size_t m, size_t k, const uint16_t *wp, const float *bias,
                       size_t n, float *y, size_t ldy, size_t p0, size_t p1, float *work);

/* bf16 × bf16 → f32 products where the CPU has them (dc_sgemm_bf16_native: AVX512-BF16, and
 * the kernels not forced generic). vdpbf16ps multiplies pairs of bf16 along k and adds both
 * products into an f32 lane: twice the multiply-adds of an f32 FMA per instruction. Weights and
 * rows are packed as above, but with two consecutive k in each 32-bit unit (bf16 k in the low
 * half, k + 1 in the high half; 0 past k), so a panel holds 16 × ceil(k / 2) units. The rows
 * are rounded to bf16 when packed (subnormals to 0, as the product reads them). */
bool dc_sgemm_bf16_native(void);
size_t dc_sgemm_weights_pairs(size_t n, size_t k);
void dc_sgemm_pack_weights_pairs(const uint16_t *w, size_t n, size_t k, uint32_t *out, size_t p0,
                                 size_t p1);
size_t dc_sgemm_rows_pairs(size_t m, size_t k);
/* tmp: dc_sgemm_pairs_tmp_units(k) units of the caller's, for one panel at a time. */
size_t dc_sgemm_pairs_tmp_units(size_t k);
void dc_sgemm_pack_rows_pairs(const float *x, size_t m, size_t k, uint32_t *out, uint32_t *tmp,
                              size_t q0, size_t q1);
void dc_sgemm_run_pairs(const uint32_t *xp, size_t m, size_t k, const uint32_t *wp,
                        const float *bias, size_t n, float *y, size_t ldy, size_t p0, size_t p1);

/* The instruction set the register tile was compiled for ("avx2" or "generic"). */
const char *dc_sgemm_isa(void);

#endif

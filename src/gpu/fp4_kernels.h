/* FP4 (E2M1) kernels of the CUDA backend's nvfp4 / mxfp4 linears (gemm.c), callable from C.
 * The packed layout is the CPU codec's (src/tensor/quant_fp.h): two elements per byte, the even
 * one in the low nibble; a row of k elements is k/2 bytes. Each launcher enqueues on `stream`
 * and returns the launch status (cudaError_t as int). All pointers are device memory. */
#ifndef DC_GPU_FP4_KERNELS_H
#define DC_GPU_FP4_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Byte offset of the scale of block kb (along k) of row `row` in cuBLASLt's tiled scale layout
 * for VEC16_UE4M3 / VEC32_UE8M0 ("1D block scaling factors layout" in the cuBLAS docs): the
 * rows × blocks scale matrix is padded to 128 rows and 4 block columns and cut into 128 × 4
 * tiles of 512 bytes, stored tile row by tile row with the k tiles of a tile row adjacent;
 * inside a tile, row r and block column c sit at (r % 32)·16 + (r / 32)·4 + c. `kb_tiles` is
 * ⌈blocks per row / 4⌉. */
#define DC_FP4_SF_OFFSET(row, kb, kb_tiles)                                                    \
    (((size_t)(row) / 128u) * (size_t)(kb_tiles) * 512u + ((size_t)(kb) / 4u) * 512u +        \
     ((size_t)(row) % 32u) * 16u + (((size_t)(row) % 128u) / 32u) * 4u + (size_t)(kb) % 4u)
/* Bytes of such a scale tensor for `rows` rows of `blocks` blocks. */
#define DC_FP4_SF_BYTES(rows, blocks)                                                          \
    ((((size_t)(rows) + 127u) / 128u) * 128u * ((((size_t)(blocks) + 3u) / 4u) * 4u))

/* out[i] = bf16(E2M1(packed, i) · block scale) for the n elements of a codec-packed tensor whose
 * blocks of `block` elements (16: E4M3 scales, NVFP4; 32: E8M0 scales, MXFP4) run in storage
 * order. Exact: the products have at most 6 significant bits. The NVFP4 tensor scale is not
 * applied (the caller folds it into the product's alpha). */
int dc_cuk_fp4_to_bf16(cudaStream_t s, const uint8_t *packed, const uint8_t *block_scales,
                       size_t n, int block, void *out);

/* Quantises x[rows, k] (row-major f32, k a multiple of 32) per row into E2M1 with one scale per
 * block of `block` elements along k, as the CPU codec does on the same rows: NVFP4 (block 16)
 * with the tensor scale S = amax / 2688 (written to *tensor_scale; 1 when amax is 0; *amax from
 * dc_cuk_amax) and E4M3 block scales of amax_b / (6·S); MXFP4 (block 32) with E8M0 block scales
 * 2^(⌊log₂ amax_b⌋ − 2) (amax and tensor_scale unused, may be NULL). The packed rows go to q
 * (k/2 bytes each), the block scales to sf in the tiled layout above (sf holds
 * DC_FP4_SF_BYTES(rows, k / block) bytes; the padding is zeroed). */
int dc_cuk_fp4_quantize(cudaStream_t s, const float *x, size_t rows, size_t k, int block,
                        const float *amax, float *tensor_scale, uint8_t *q, uint8_t *sf);

/* y[r, c] = y[r, c] · *scale + bias[c]; scale or bias may be NULL (1 / none). */
int dc_cuk_scale_bias(cudaStream_t s, float *y, const float *scale, const float *bias,
                      size_t rows, size_t cols);

#ifdef __cplusplus
}
#endif
#endif

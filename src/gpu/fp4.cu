// FP4 (E2M1) kernels: the dequantisation of stored nvfp4 / mxfp4 weights to bf16 (GPUs without
// FP4 arithmetic), the per-call quantisation of activations for cuBLASLt's block-scaled FP4
// matmul (sm_100+), and the epilogue that applies the activations' tensor scale and the bias.
// The arithmetic follows the CPU codec (src/tensor/quant_fp4.c) operation for operation, so a
// row quantised here has the bits the codec gives it.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <math.h>
#include <stdint.h>

#include "gpu/fp4_kernels.h"
#include "gpu/cuk_launch.h"

namespace {

__device__ float e2m1_decode(unsigned code) {
    const unsigned e = (code >> 1) & 3u, m = code & 1u;
    const float v = e ? ldexpf(2.0f + (float)m, (int)e - 2) : 0.5f * (float)m;
    return code & 8u ? -v : v;
}

// Round to nearest, ties to the even code, saturating at 6: the midpoints between the values
// {0, 0.5, 1, 1.5, 2, 3, 4, 6} go to the neighbour whose code is even.
__device__ unsigned e2m1_encode(float x) {
    if (isnan(x)) return 0; // as the codec (the format has no NaN)
    const unsigned sign = signbit(x) ? 8u : 0u;
    const float a = fabsf(x);
    unsigned c;
    if (a <= 0.25f) c = 0;
    else if (a < 0.75f) c = 1;
    else if (a <= 1.25f) c = 2;
    else if (a < 1.75f) c = 3;
    else if (a <= 2.5f) c = 4;
    else if (a < 3.5f) c = 5;
    else if (a <= 5.0f) c = 6;
    else c = 7;
    return sign | c;
}

__device__ float e4m3_decode(uint8_t c) {
    return __half2float(__half(__nv_cvt_fp8_to_halfraw((__nv_fp8_storage_t)c, __NV_E4M3)));
}

__global__ void fp4_to_bf16_k(const uint8_t *packed, const uint8_t *scales, size_t n, int block,
                              __nv_bfloat16 *out) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        const unsigned code = (packed[i / 2] >> ((i & 1) * 4)) & 0xFu;
        const uint8_t sc = scales[i / (size_t)block];
        const float s = block == 16 ? e4m3_decode(sc) : ldexpf(1.0f, (int)sc - 127);
        out[i] = __float2bfloat16_rn(e2m1_decode(code) * s);
    }
}

// One thread per block of one row.
__global__ void fp4_quantize_k(const float *x, size_t rows, size_t k, int block,
                               const float *amax, float *tensor_scale, uint8_t *q, uint8_t *sf) {
    const size_t per_row = k / (size_t)block, kb_tiles = (per_row + 3) / 4;
    float S = 1.0f;
    if (block == 16) {
        S = *amax / (448.0f * 6.0f);
        if (!(S > 0.0f)) S = 1.0f;
        if (blockIdx.x == 0 && threadIdx.x == 0) *tensor_scale = S;
    }
    for (size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x; t < rows * per_row;
         t += (size_t)gridDim.x * blockDim.x) {
        const size_t row = t / per_row, kb = t % per_row;
        const float *xb = x + row * k + kb * (size_t)block;
        float a = 0.0f;
        for (int i = 0; i < block; i++) a = fmaxf(a, fabsf(xb[i]));
        uint8_t code;
        float step; // x / step is encoded (NVFP4), or x·2^−e (MXFP4)
        int e = -127;
        if (block == 16) {
            code = (uint8_t)__nv_cvt_float_to_fp8(a / (6.0f * S), __NV_SATFINITE, __NV_E4M3);
            step = e4m3_decode(code) * S;
        } else {
            if (a > 0.0f) {
                int e2 = 0;
                frexpf(a, &e2);
                e = e2 - 1 - 2; // ⌊log₂ amax⌋ − emax(E2M1)
                e = e < -127 ? -127 : e > 127 ? 127 : e;
            }
            code = (uint8_t)(e + 127);
            step = 1.0f;
        }
        uint8_t *qb = q + (row * k + kb * (size_t)block) / 2;
        for (int i = 0; i < block; i += 2) {
            unsigned lo, hi;
            if (block == 16) {
                lo = step > 0.0f ? e2m1_encode(xb[i] / step) : 0u;
                hi = step > 0.0f ? e2m1_encode(xb[i + 1] / step) : 0u;
            } else {
                lo = e2m1_encode(ldexpf(xb[i], -e));
                hi = e2m1_encode(ldexpf(xb[i + 1], -e));
            }
            qb[i / 2] = (uint8_t)(lo | (hi << 4));
        }
        sf[DC_FP4_SF_OFFSET(row, kb, kb_tiles)] = code;
    }
}

__global__ void scale_bias_k(float *y, const float *scale, const float *bias, size_t rows,
                             size_t cols) {
    const float s = scale ? *scale : 1.0f;
    const size_t n = rows * cols;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = y[i] * s + (bias ? bias[i % cols] : 0.0f);
}

} // namespace

extern "C" {

int dc_cuk_fp4_to_bf16(cudaStream_t s, const uint8_t *packed, const uint8_t *block_scales,
                       size_t n, int block, void *out) {
    if (!n) return 0;
    if (block != 16 && block != 32) return (int)cudaErrorInvalidValue;
    DC_LAUNCH(fp4_to_bf16_k, elem_grid(n), kElemBlock, 0, s, packed, block_scales, n,
              block, (__nv_bfloat16 *)out);
    return (int)cudaGetLastError();
}

int dc_cuk_fp4_quantize(cudaStream_t s, const float *x, size_t rows, size_t k, int block,
                        const float *amax, float *tensor_scale, uint8_t *q, uint8_t *sf) {
    if ((block != 16 && block != 32) || k % 32) return (int)cudaErrorInvalidValue;
    cudaError_t e = cudaMemsetAsync(sf, 0, DC_FP4_SF_BYTES(rows, k / (size_t)block), s);
    if (e != cudaSuccess || !rows || !k) return (int)e;
    DC_LAUNCH(fp4_quantize_k, elem_grid(rows * (k / (size_t)block)), kElemBlock, 0, s, x, rows, k,
              block, amax, tensor_scale, q, sf);
    return (int)cudaGetLastError();
}

int dc_cuk_scale_bias(cudaStream_t s, float *y, const float *scale, const float *bias,
                      size_t rows, size_t cols) {
    if (!rows || !cols || (!scale && !bias)) return 0;
    DC_LAUNCH(scale_bias_k, elem_grid(rows * cols), kElemBlock, 0, s, y, scale, bias, rows, cols);
    return (int)cudaGetLastError();
}

} // extern "C"

// Element-wise and row kernels of the CUDA backend: embedding sums, LayerNorm with residual,
// activations, adds, conversions to bf16/f16/FP8. Written for clarity first: one thread per
// element with grid-stride loops, one block per row for LayerNorm.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <math.h>
#include <stdint.h>

#include "gpu/kernels.h"
#include "gpu/cuk_launch.h"

namespace {

__global__ void embed_sum_k(size_t rows, size_t cols, const float *t0, const uint32_t *i0,
                            const float *t1, const uint32_t *i1, const float *t2,
                            const uint32_t *i2, float *out) {
    size_t n = rows * cols;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < n;
         e += (size_t)gridDim.x * blockDim.x) {
        size_t r = e / cols, c = e % cols;
        float v = 0.0f;
        if (t0) v += t0[(size_t)i0[r] * cols + c];
        if (t1) v += t1[(size_t)i1[r] * cols + c];
        if (t2) v += t2[(size_t)i2[r] * cols + c];
        out[e] = v;
    }
}

// Sum over the block (blockDim.x a multiple of 32, ≤ 1024); every thread gets the result.
__device__ float block_sum(float v, float *shared32) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads(); // shared32 may still be read from a previous call
    if (lane == 0) shared32[warp] = v;
    __syncthreads();
    int nw = blockDim.x / 32;
    float t = lane < nw ? shared32[lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) t += __shfl_xor_sync(0xffffffffu, t, o);
    return t;
}

// One block per row: mean, then the biased variance around it (two passes: no cancellation),
// then the write. Each thread reads and writes only its own columns, so y may alias x.
__global__ void layernorm_k(const float *x, const float *res, const float *g, const float *b,
                            float eps, size_t cols, float *y) {
    __shared__ float sh[32];
    size_t row = blockIdx.x;
    const float *xr = x + row * cols;
    const float *rr = res ? res + row * cols : nullptr;
    float *yr = y + row * cols;
    float s = 0.0f;
    for (size_t c = threadIdx.x; c < cols; c += blockDim.x) s += xr[c] + (rr ? rr[c] : 0.0f);
    float mean = block_sum(s, sh) / (float)cols;
    float v = 0.0f;
    for (size_t c = threadIdx.x; c < cols; c += blockDim.x) {
        float d = xr[c] + (rr ? rr[c] : 0.0f) - mean;
        v += d * d;
    }
    float rstd = rsqrtf(block_sum(v, sh) / (float)cols + eps);
    for (size_t c = threadIdx.x; c < cols; c += blockDim.x) {
        float d = xr[c] + (rr ? rr[c] : 0.0f) - mean;
        yr[c] = d * rstd * g[c] + b[c];
    }
}

// dc_activation values (backend.h): 1 gelu erf, 2 gelu tanh, 3 quick gelu, 4 relu.
__global__ void activation_k(int act, float *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float v = x[i];
        switch (act) {
        case 1: v = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)); break;
        case 2: {
            float u = 0.79788456080286536f * (v + 0.044715f * v * v * v);
            v = 0.5f * v * (1.0f + tanhf(u));
            break;
        }
        case 3: v = v / (1.0f + expf(-1.702f * v)); break;
        case 4: v = v > 0.0f ? v : 0.0f; break;
        default: break;
        }
        x[i] = v;
    }
}

__global__ void add_k(float *y, const float *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] += x[i];
}

// dst row (dr ? dr[i] : i) = src row (sr ? sr[i] : i): one block-stride walk over n × cols.
__global__ void copy_rows_k(float *dst, const uint32_t *dr, const float *src, const uint32_t *sr,
                            size_t n, size_t cols) {
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < n * cols;
         e += (size_t)gridDim.x * blockDim.x) {
        const size_t i = e / cols, c = e % cols;
        dst[(dr ? dr[i] : i) * cols + c] = src[(sr ? sr[i] : i) * cols + c];
    }
}

// One thread per column walks the rows: neighbouring threads read neighbouring floats.
__global__ void col_max_k(const float *x, size_t rows, size_t cols, float *w) {
    for (size_t c = blockIdx.x * (size_t)blockDim.x + threadIdx.x; c < cols;
         c += (size_t)gridDim.x * blockDim.x) {
        float m = -INFINITY;
        for (size_t r = 0; r < rows; r++) m = fmaxf(m, x[r * cols + c]);
        w[c] = m;
    }
}

__global__ void add_bias_k(float *y, const float *bias, size_t rows, size_t cols) {
    size_t n = rows * cols;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] += bias[i % cols];
}

__global__ void to_half_k(const float *x, void *y, size_t n, int bf16) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        if (bf16) ((__nv_bfloat16 *)y)[i] = __float2bfloat16_rn(x[i]);
        else ((__half *)y)[i] = __float2half_rn(x[i]);
    }
}

__global__ void half_to_f32_k(const void *x, float *y, size_t n, int bf16) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = bf16 ? __bfloat162float(((const __nv_bfloat16 *)x)[i])
                    : __half2float(((const __half *)x)[i]);
}

// Exponent all ones (Inf or NaN), by element width: f32, bf16, f16. The first such index i is
// kept as the largest of UINT_MAX - i, so one unsigned atomicMax serves.
__global__ void first_nonfinite_k(const void *x, size_t n, int type, unsigned *flag) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        bool bad = type == 0   ? (((const unsigned *)x)[i] & 0x7f800000u) == 0x7f800000u
                   : type == 1 ? (((const uint16_t *)x)[i] & 0x7f80u) == 0x7f80u
                               : (((const uint16_t *)x)[i] & 0x7c00u) == 0x7c00u;
        if (bad) atomicMax(flag, 0xffffffffu - (unsigned)(i < 0xfffffffeu ? i : 0xfffffffeu));
    }
}

// Non-negative floats order like their bit patterns, so an unsigned atomicMax finds the max.
__global__ void amax_k(const float *x, size_t n, unsigned *amax_bits) {
    float m = 0.0f;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        m = fmaxf(m, fabsf(x[i]));
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    if (threadIdx.x % 32 == 0) atomicMax(amax_bits, __float_as_uint(m));
}

__global__ void fp8_quantize_k(const float *x, size_t n, const float *amax, float *scale,
                               uint8_t *q) {
    float a = *amax;
    float s = a > 0.0f ? a / 448.0f : 1.0f;
    if (blockIdx.x == 0 && threadIdx.x == 0) *scale = s;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        q[i] = (uint8_t)__nv_cvt_float_to_fp8(x[i] / s, __NV_SATFINITE, __NV_E4M3);
}

} // namespace

extern "C" {

int dc_cuk_embed_sum(cudaStream_t s, size_t rows, size_t cols, const float *t0,
                     const uint32_t *i0, const float *t1, const uint32_t *i1, const float *t2,
                     const uint32_t *i2, float *out) {
    if (!rows || !cols) return 0;
    DC_LAUNCH(embed_sum_k, elem_grid(rows * cols), kElemBlock, 0, s, rows, cols, t0, i0,
              t1, i1, t2, i2, out);
    return (int)cudaGetLastError();
}

int dc_cuk_layernorm(cudaStream_t s, const float *x, const float *residual, const float *gamma,
                     const float *beta, float eps, size_t rows, size_t cols, float *y) {
    if (!rows || !cols) return 0;
    if (rows > 0x7fffffffu) return (int)cudaErrorInvalidValue;
    DC_LAUNCH(layernorm_k, (unsigned)rows, kElemBlock, 0, s, x, residual, gamma, beta, eps, cols,
              y);
    return (int)cudaGetLastError();
}

int dc_cuk_activation(cudaStream_t s, int act, float *x, size_t n) {
    if (!n || act == 0) return 0;
    DC_LAUNCH(activation_k, elem_grid(n), kElemBlock, 0, s, act, x, n);
    return (int)cudaGetLastError();
}

int dc_cuk_add(cudaStream_t s, float *y, const float *x, size_t n) {
    if (!n) return 0;
    DC_LAUNCH(add_k, elem_grid(n), kElemBlock, 0, s, y, x, n);
    return (int)cudaGetLastError();
}

int dc_cuk_copy_rows(cudaStream_t s, float *dst, const uint32_t *dst_rows, const float *src,
                     const uint32_t *src_rows, size_t n, size_t cols) {
    if (!n || !cols) return 0;
    DC_LAUNCH(copy_rows_k, elem_grid(n * cols), kElemBlock, 0, s, dst, dst_rows, src, src_rows, n,
              cols);
    return (int)cudaGetLastError();
}

int dc_cuk_col_max(cudaStream_t s, const float *x, size_t rows, size_t cols, float *w) {
    if (!cols) return 0;
    DC_LAUNCH(col_max_k, elem_grid(cols), kElemBlock, 0, s, x, rows, cols, w);
    return (int)cudaGetLastError();
}

int dc_cuk_add_bias(cudaStream_t s, float *y, const float *bias, size_t rows, size_t cols) {
    if (!rows || !cols) return 0;
    DC_LAUNCH(add_bias_k, elem_grid(rows * cols), kElemBlock, 0, s, y, bias, rows, cols);
    return (int)cudaGetLastError();
}

int dc_cuk_to_half(cudaStream_t s, const float *x, void *y, size_t n, int bf16) {
    if (!n) return 0;
    DC_LAUNCH(to_half_k, elem_grid(n), kElemBlock, 0, s, x, y, n, bf16);
    return (int)cudaGetLastError();
}

int dc_cuk_half_to_f32(cudaStream_t s, const void *x, float *y, size_t n, int bf16) {
    if (!n) return 0;
    DC_LAUNCH(half_to_f32_k, elem_grid(n), kElemBlock, 0, s, x, y, n, bf16);
    return (int)cudaGetLastError();
}

int dc_cuk_first_nonfinite(cudaStream_t s, const void *x, size_t n, int type, unsigned *flag) {
    if (!n) return 0;
    DC_LAUNCH(first_nonfinite_k, elem_grid(n), kElemBlock, 0, s, x, n, type, flag);
    return (int)cudaGetLastError();
}

int dc_cuk_amax(cudaStream_t s, const float *x, size_t n, float *amax) {
    cudaError_t e = cudaMemsetAsync(amax, 0, sizeof(float), s);
    if (e != cudaSuccess || !n) return (int)e;
    DC_LAUNCH(amax_k, elem_grid(n), kElemBlock, 0, s, x, n, (unsigned *)amax);
    return (int)cudaGetLastError();
}

int dc_cuk_fp8_quantize(cudaStream_t s, const float *x, size_t n, const float *amax,
                        float *scale, uint8_t *q) {
    DC_LAUNCH(fp8_quantize_k, elem_grid(n ? n : 1), kElemBlock, 0, s, x, n, amax, scale, q);
    return (int)cudaGetLastError();
}

} // extern "C"

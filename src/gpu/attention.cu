// Softmax attention on the GPU: one fused kernel for full, masked, banded (Longformer) and
// global-token attention. One block per (query, head) walks that query's keys in chunks of
// blockDim.x with an online softmax (running max and sum, accumulator rescaled per chunk), so
// nothing is materialised per score matrix and memory stays linear in the sequence length.
// Keys: the band [pos − left, pos + right] of the query's sequence, then the sequence's global
// tokens outside the band (each key counted once). Masked keys contribute exactly 0; a query
// with no visible key gets zeros, like the CPU kernels. Full and key-masked attention with
// head_dim <= 128 has a tiled kernel (attention_tiled.cu); the launcher below hands a plan with
// query tiles to it.
#include <math.h>
#include <stdint.h>

#include "gpu/kernels.h"
#include "gpu/cuk_launch.h"

namespace {

constexpr int kThreads = 128;

__device__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__global__ void attention_k(dc_cuk_attn a) {
#ifdef DC_CUDA_EMU
    float *sh = (float *)dc_emu_dynamic_smem();
#else
    extern __shared__ float sh[];
#endif
    const uint32_t hd = a.head_dim;
    float *qs = sh;               // the scaled query, hd floats
    float *acc = qs + hd;         // output accumulator, hd floats
    float *p = acc + hd;          // this chunk's weights, kThreads floats
    uint32_t *kpos = (uint32_t *)(p + kThreads); // this chunk's key rows, kThreads
    __shared__ float red[kThreads / 32];
    __shared__ float m_run, l_run;

    const uint32_t qi = blockIdx.x, h = blockIdx.y, tid = threadIdx.x;
    const uint32_t row = a.q_row[qi];
    if (a.skip_global && a.gflag && a.gflag[row]) return; // the caller computes these rows
    const uint32_t s = a.q_seq[qi];
    const uint32_t s0 = a.start[s], len = a.start[s + 1] - s0, pos = row - s0;
    const uint32_t lo = (a.left == UINT32_MAX || pos < a.left) ? 0u : pos - a.left;
    const uint32_t hi = (a.right == UINT32_MAX || (uint64_t)pos + a.right >= len) ? len - 1
                                                                                  : pos + a.right;
    const uint32_t n_band = hi - lo + 1;
    const uint32_t g0 = a.glist ? a.gstart[s] : 0u;
    const uint32_t n_glob = a.glist ? a.gstart[s + 1] - g0 : 0u;
    const uint32_t total = n_band + n_glob;

    const float *qrow = a.q + (size_t)(a.q_by_index ? qi : row) * a.ld_q + (size_t)h * hd;
    for (uint32_t d = tid; d < hd; d += blockDim.x) {
        qs[d] = qrow[d] * a.scale;
        acc[d] = 0.0f;
    }
    if (tid == 0) {
        m_run = -INFINITY;
        l_run = 0.0f;
    }
    __syncthreads();

    for (uint32_t base = 0; base < total; base += blockDim.x) {
        const uint32_t t = base + tid;
        bool valid = false;
        uint32_t kp = 0; // key position in the sequence
        if (t < n_band) {
            kp = lo + t;
            valid = true;
        } else if (t < total) {
            kp = a.glist[g0 + (t - n_band)] - s0;
            valid = kp < lo || kp > hi; // inside the band it was already counted
        }
        if (valid && a.key_mask) valid = a.key_mask[s0 + kp] != 0;
        float score = -INFINITY;
        if (valid) {
            const float *kr = a.k + (size_t)(s0 + kp) * a.ld_kv + (size_t)h * hd;
            float dot = 0.0f;
            for (uint32_t d = 0; d < hd; d++) dot += qs[d] * kr[d];
            score = dot;
        }
        // chunk maximum
        float m = warp_max(score);
        if (tid % 32 == 0) red[tid / 32] = m;
        __syncthreads();
        float cmax = -INFINITY;
        for (uint32_t w = 0; w < blockDim.x / 32; w++) cmax = fmaxf(cmax, red[w]);
        const float m_old = m_run;
        const float m_new = fmaxf(m_old, cmax);
        __syncthreads(); // everyone has read red[] and m_run
        if (m_new == -INFINITY) continue; // nothing visible yet (uniform across the block)
        const float w_t = valid ? expf(score - m_new) : 0.0f;
        p[tid] = w_t;
        kpos[tid] = kp;
        float csum = warp_sum(w_t);
        if (tid % 32 == 0) red[tid / 32] = csum;
        __syncthreads();
        csum = 0.0f;
        for (uint32_t w = 0; w < blockDim.x / 32; w++) csum += red[w];
        const float corr = m_old == -INFINITY ? 0.0f : expf(m_old - m_new);
        const uint32_t n_chunk = total - base < blockDim.x ? total - base : blockDim.x;
        for (uint32_t d = tid; d < hd; d += blockDim.x) {
            float sacc = acc[d] * corr;
            for (uint32_t j = 0; j < n_chunk; j++)
                if (p[j] != 0.0f)
                    sacc += p[j] * a.v[(size_t)(s0 + kpos[j]) * a.ld_kv + (size_t)h * hd + d];
            acc[d] = sacc;
        }
        __syncthreads(); // p, kpos, red consumed
        if (tid == 0) {
            l_run = l_run * corr + csum;
            m_run = m_new;
        }
        __syncthreads();
    }
    float *orow = a.out + (size_t)(a.q_by_index ? qi : row) * a.ld_out + (size_t)h * hd;
    const float l = l_run;
    for (uint32_t d = tid; d < hd; d += blockDim.x) orow[d] = l > 0.0f ? acc[d] / l : 0.0f;
}

} // namespace

extern "C" int dc_cuk_attention(cudaStream_t s, const dc_cuk_attn *a) {
    if (!a->n_q || !a->n_heads || !a->head_dim) return 0;
    if (a->tile_q0) return dc_cuk_attention_tiled(s, a);
    if (a->head_dim > DC_CUK_ATTN_MAX_HEAD_DIM || a->n_heads > 65535u || a->n_q > 0x7fffffffu)
        return (int)cudaErrorInvalidValue;
    size_t shmem = (2 * (size_t)a->head_dim + kThreads) * sizeof(float) + kThreads * sizeof(uint32_t);
    dim3 grid(a->n_q, a->n_heads);
    DC_LAUNCH(attention_k, grid, kThreads, shmem, s, *a);
    return (int)cudaGetLastError();
}

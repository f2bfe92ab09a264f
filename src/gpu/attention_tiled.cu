// Tiled softmax attention (flash-attention style, f32 on CUDA cores) for the common case: full or
// key-masked attention, no band and no global tokens (BERT, RoBERTa, CLIP, ViT). One block of
// 128 threads takes a tile of up to 64 queries of one sequence and one head; the sequence's keys
// and values pass through shared memory 32 at a time and serve every query of the tile. Each
// query row keeps a running max and sum (online softmax): a key tile's weights are taken against
// the new max and the accumulator is rescaled when the max grows, so no score matrix is stored.
// Masked keys contribute exactly 0 (their K and V rows are staged as zeros and their weight is
// 0); a query with no visible key gets zeros — the semantics of attention.cu and the CPU kernels.
//
// Thread layout: tid = 8·ty + tx. Thread (ty, tx) owns query rows 4ty..4ty+3; of each key tile,
// keys tx, tx+8, tx+16, tx+24; of the output, the float4 columns tx, tx+8, ... A row's eight
// threads sit in one warp and agree on its max through xor shuffles within their group.
#include <math.h>
#include <stdint.h>

#include "gpu/kernels.h"
#include "gpu/cuk_launch.h"

namespace {

constexpr uint32_t kBQ = DC_CUK_ATTN_TILE_Q; // queries per block
constexpr uint32_t kBK = 32;                 // keys per shared-memory tile
constexpr uint32_t kThreads = 128;           // 16 groups of 4 rows × 8 threads
constexpr uint32_t kPS = kBQ + 4;            // row stride of the weights tile (floats)
static_assert(kBQ == 4 * (kThreads / 8) && kBK == 4 * 8, "the thread layout above");

// Row stride (floats) of the Q, K and V tiles for head_dim ≤ 32·nc: the head padded to 32·nc
// plus one float4, so that the eight threads of a group reading keys tx + 8k at one column hit
// eight different float4 bank slots (an odd stride in float4 units).
constexpr uint32_t row_stride(uint32_t nc) { return 32 * nc + 4; }

constexpr size_t smem_floats(uint32_t nc) {
    return (size_t)(kBQ + 2 * kBK) * row_stride(nc) + (size_t)kBK * kPS + kBK; // + key flags
}

__device__ inline float group_max(float v) { // over the 8 threads of a row group
    for (int o = 1; o < 8; o <<= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ inline float group_sum(float v) { // the same order on every thread: equal results
    for (int o = 1; o < 8; o <<= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ inline void fma4(float &acc, const float4 &a, const float4 &b) {
    acc = fmaf(a.x, b.x, acc);
    acc = fmaf(a.y, b.y, acc);
    acc = fmaf(a.z, b.z, acc);
    acc = fmaf(a.w, b.w, acc);
}

// rows [0, n) of a tile into shared memory (stride row_stride(NC)), columns past head_dim and
// rows past n as zeros; src(r) is row r's first element or NULL for a zero row. Float4 loads
// when every row start is 16-byte aligned and head_dim is a multiple of 4.
template <uint32_t NC, uint32_t ROWS, typename Src>
__device__ inline void stage(float *dst, uint32_t n, uint32_t hd, bool vec, float mul, Src src) {
    constexpr uint32_t DP = 32 * NC, S = row_stride(NC);
    if (vec) {
        for (uint32_t i = threadIdx.x; i < ROWS * (DP / 4); i += kThreads) {
            const uint32_t r = i / (DP / 4), d = 4 * (i % (DP / 4));
            float4 x = {0.0f, 0.0f, 0.0f, 0.0f};
            const float *p = r < n && d < hd ? src(r) : nullptr;
            if (p) {
                x = *(const float4 *)(p + d);
                x.x *= mul, x.y *= mul, x.z *= mul, x.w *= mul;
            }
            *(float4 *)(dst + r * S + d) = x;
        }
    } else {
        for (uint32_t i = threadIdx.x; i < ROWS * DP; i += kThreads) {
            const uint32_t r = i / DP, d = i % DP;
            const float *p = r < n && d < hd ? src(r) : nullptr;
            dst[r * S + d] = p ? p[d] * mul : 0.0f;
        }
    }
}

template <uint32_t NC>
__global__ void DC_BOUNDS(kThreads) attention_tiled_k(dc_cuk_attn a) {
#ifdef DC_CUDA_EMU
    float *sh = (float *)dc_emu_dynamic_smem();
#else
    extern __shared__ float4 tiled_smem[];
    float *sh = (float *)tiled_smem;
#endif
    constexpr uint32_t S = row_stride(NC), S4 = S / 4, P4 = kPS / 4;
    float *qs = sh;                  // [kBQ][S]: the tile's queries, scaled
    float *ks = qs + kBQ * S;        // [kBK][S]: this key tile
    float *vs = ks + kBK * S;        // [kBK][S]: its values
    float *ps = vs + kBK * S;        // [kBK][kPS]: weights, key-major (a float4 = 4 rows)
    float *kvalid = ps + kBK * kPS;  // [kBK]: 1 for a visible key
    const float4 *qs4 = (const float4 *)qs, *ks4 = (const float4 *)ks, *vs4 = (const float4 *)vs;
    float4 *ps4 = (float4 *)ps;

    const uint32_t tid = threadIdx.x, ty = tid / 8, tx = tid % 8, h = blockIdx.y;
    const uint32_t q0 = a.tile_q0[blockIdx.x], nq = a.tile_q0[blockIdx.x + 1] - q0;
    const uint32_t seq = a.q_seq[q0], s0 = a.start[seq], len = a.start[seq + 1] - s0;
    const uint32_t hd = a.head_dim;
    const size_t hoff = (size_t)h * hd;

    const bool vq = hd % 4 == 0 && a.ld_q % 4 == 0 && (uintptr_t)(a.q + hoff) % 16 == 0;
    stage<NC, kBQ>(qs, nq, hd, vq, a.scale, [&](uint32_t r) {
        const size_t row = a.q_by_index ? q0 + r : a.q_row[q0 + r];
        return a.q + row * a.ld_q + hoff;
    });
    const bool vkv = hd % 4 == 0 && a.ld_kv % 4 == 0 && (uintptr_t)(a.k + hoff) % 16 == 0 &&
                     (uintptr_t)(a.v + hoff) % 16 == 0;

    float m_run[4], l_run[4], acc[4][NC][4];
    for (int i = 0; i < 4; i++) {
        m_run[i] = -INFINITY;
        l_run[i] = 0.0f;
        for (uint32_t c = 0; c < NC; c++)
            for (int e = 0; e < 4; e++) acc[i][c][e] = 0.0f;
    }

    for (uint32_t kt = 0; kt < len; kt += kBK) {
        const uint32_t nk = len - kt < kBK ? len - kt : kBK;
        const uint8_t *km = a.key_mask ? a.key_mask + s0 + kt : nullptr;
        // masked keys stage as zero rows: nothing they hold (inf, NaN) reaches the output
        stage<NC, kBK>(ks, nk, hd, vkv, 1.0f, [&](uint32_t j) -> const float * {
            return km && !km[j] ? nullptr : a.k + (size_t)(s0 + kt + j) * a.ld_kv + hoff;
        });
        stage<NC, kBK>(vs, nk, hd, vkv, 1.0f, [&](uint32_t j) -> const float * {
            return km && !km[j] ? nullptr : a.v + (size_t)(s0 + kt + j) * a.ld_kv + hoff;
        });
        if (tid < kBK) kvalid[tid] = tid < nk && (!km || km[tid]) ? 1.0f : 0.0f;
        __syncthreads(); // the tiles (and, the first time, the queries) are staged

        // scores of rows 4ty+i against keys tx+8k
        float sc[4][4];
        for (int i = 0; i < 4; i++)
            for (int k = 0; k < 4; k++) sc[i][k] = 0.0f;
        for (uint32_t d4 = 0; d4 < 8 * NC; d4++) {
            float4 kk[4], qq[4];
            for (int k = 0; k < 4; k++) kk[k] = ks4[(tx + 8 * k) * S4 + d4];
            for (int i = 0; i < 4; i++) qq[i] = qs4[(4 * ty + i) * S4 + d4];
            for (int i = 0; i < 4; i++)
                for (int k = 0; k < 4; k++) fma4(sc[i][k], qq[i], kk[k]);
        }
        bool vis[4];
        for (int k = 0; k < 4; k++) vis[k] = kvalid[tx + 8 * k] != 0.0f;
        for (int i = 0; i < 4; i++) {
            float mt = -INFINITY;
            for (int k = 0; k < 4; k++)
                if (vis[k]) mt = fmaxf(mt, sc[i][k]);
            const float m_new = fmaxf(m_run[i], group_max(mt));
            // nothing visible yet: keep everything at zero (and avoid −inf − −inf)
            const float corr = m_new == -INFINITY ? 1.0f : expf(m_run[i] - m_new);
            float lsum = 0.0f;
            for (int k = 0; k < 4; k++) {
                sc[i][k] = vis[k] ? expf(sc[i][k] - m_new) : 0.0f;
                lsum += sc[i][k];
            }
            m_run[i] = m_new;
            l_run[i] = l_run[i] * corr + lsum;
            for (uint32_t c = 0; c < NC; c++)
                for (int e = 0; e < 4; e++) acc[i][c][e] *= corr;
        }
        for (int k = 0; k < 4; k++) {
            float4 w;
            w.x = sc[0][k], w.y = sc[1][k], w.z = sc[2][k], w.w = sc[3][k];
            ps4[(tx + 8 * k) * P4 + ty] = w;
        }
        __syncthreads(); // the weights are in place

        for (uint32_t j = 0; j < nk; j++) {
            const float4 w = ps4[j * P4 + ty];
            for (uint32_t c = 0; c < NC; c++) {
                const float4 v = vs4[j * S4 + tx + 8 * c];
                acc[0][c][0] = fmaf(w.x, v.x, acc[0][c][0]);
                acc[0][c][1] = fmaf(w.x, v.y, acc[0][c][1]);
                acc[0][c][2] = fmaf(w.x, v.z, acc[0][c][2]);
                acc[0][c][3] = fmaf(w.x, v.w, acc[0][c][3]);
                acc[1][c][0] = fmaf(w.y, v.x, acc[1][c][0]);
                acc[1][c][1] = fmaf(w.y, v.y, acc[1][c][1]);
                acc[1][c][2] = fmaf(w.y, v.z, acc[1][c][2]);
                acc[1][c][3] = fmaf(w.y, v.w, acc[1][c][3]);
                acc[2][c][0] = fmaf(w.z, v.x, acc[2][c][0]);
                acc[2][c][1] = fmaf(w.z, v.y, acc[2][c][1]);
                acc[2][c][2] = fmaf(w.z, v.z, acc[2][c][2]);
                acc[2][c][3] = fmaf(w.z, v.w, acc[2][c][3]);
                acc[3][c][0] = fmaf(w.w, v.x, acc[3][c][0]);
                acc[3][c][1] = fmaf(w.w, v.y, acc[3][c][1]);
                acc[3][c][2] = fmaf(w.w, v.z, acc[3][c][2]);
                acc[3][c][3] = fmaf(w.w, v.w, acc[3][c][3]);
            }
        }
        __syncthreads(); // the tiles are consumed before the next ones overwrite them
    }

    for (int i = 0; i < 4; i++) {
        const float l = group_sum(l_run[i]);
        const uint32_t r = 4 * ty + (uint32_t)i;
        if (r >= nq) continue;
        const size_t row = a.q_by_index ? q0 + r : a.q_row[q0 + r];
        float *o = a.out + row * a.ld_out + hoff;
        const float inv = l > 0.0f ? 1.0f / l : 0.0f;
        for (uint32_t c = 0; c < NC; c++)
            for (uint32_t e = 0; e < 4; e++) {
                const uint32_t d = 4 * (tx + 8 * c) + e;
                if (d < hd) o[d] = acc[i][c][e] * inv;
            }
    }
}

template <uint32_t NC> int launch(cudaStream_t s, const dc_cuk_attn *a) {
    const size_t smem = smem_floats(NC) * sizeof(float);
    if (smem > (48u << 10)) { // past the default: the kernel must be allowed it (per device)
        cudaError_t e = cudaFuncSetAttribute(reinterpret_cast<const void *>(&attention_tiled_k<NC>),
                                             cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess) return (int)e;
    }
    dim3 grid(a->n_tiles, a->n_heads);
    DC_LAUNCH(attention_tiled_k<NC>, grid, kThreads, smem, s, *a);
    return (int)cudaGetLastError();
}

} // namespace

extern "C" int dc_cuk_attention_tiled_fits(const dc_cuk_attn *a) {
    return a->left == UINT32_MAX && a->right == UINT32_MAX && !a->glist && !a->gflag &&
           !a->skip_global && a->head_dim && a->head_dim <= DC_CUK_ATTN_TILED_MAX_HEAD_DIM;
}

extern "C" int dc_cuk_attention_tiled(cudaStream_t s, const dc_cuk_attn *a) {
    if (!a->n_tiles || !a->n_heads) return 0;
    if (!a->tile_q0 || !dc_cuk_attention_tiled_fits(a) || a->n_heads > 65535u ||
        a->n_tiles > 0x7fffffffu)
        return (int)cudaErrorInvalidValue;
    switch ((a->head_dim + 31) / 32) {
    case 1: return launch<1>(s, a);
    case 2: return launch<2>(s, a);
    case 3: return launch<3>(s, a);
    default: return launch<4>(s, a);
    }
}

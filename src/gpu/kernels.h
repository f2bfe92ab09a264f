/* The CUDA kernels of libdodeca_cuda.so, callable from C. Each launcher enqueues on `stream`
 * and returns the launch status (cudaError_t as int; 0 = cudaSuccess). All pointers are
 * device memory. */
#ifndef DC_GPU_KERNELS_H
#define DC_GPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

int dc_cuk_embed_sum(cudaStream_t s, size_t rows, size_t cols, const float *t0,
                     const uint32_t *i0, const float *t1, const uint32_t *i1, const float *t2,
                     const uint32_t *i2, float *out);
/* y = LN(x + residual)·gamma + beta per row; residual may be NULL; y may alias x. */
int dc_cuk_layernorm(cudaStream_t s, const float *x, const float *residual, const float *gamma,
                     const float *beta, float eps, size_t rows, size_t cols, float *y);
/* act: the dc_activation value */
int dc_cuk_activation(cudaStream_t s, int act, float *x, size_t n);
int dc_cuk_add(cudaStream_t s, float *y, const float *x, size_t n);
/* dst row (dst_rows ? dst_rows[i] : i) = src row (src_rows ? src_rows[i] : i), i < n; the row
 * lists are device memory */
int dc_cuk_copy_rows(cudaStream_t s, float *dst, const uint32_t *dst_rows, const float *src,
                     const uint32_t *src_rows, size_t n, size_t cols);
/* w[c] = max over `rows` rows of x[r, c] (row stride cols); -INFINITY when rows = 0 */
int dc_cuk_col_max(cudaStream_t s, const float *x, size_t rows, size_t cols, float *w);
/* y[r, c] += bias[c] */
int dc_cuk_add_bias(cudaStream_t s, float *y, const float *bias, size_t rows, size_t cols);
/* f32 → bf16 (bf16 != 0) or f16, round to nearest even */
int dc_cuk_to_half(cudaStream_t s, const float *x, void *y, size_t n, int bf16);
/* bf16 (bf16 != 0) or f16 → f32, exact */
int dc_cuk_half_to_f32(cudaStream_t s, const void *x, float *y, size_t n, int bf16);
/* Where x (n elements of type 0 = f32, 1 = bf16, 2 = f16) first holds an Inf or NaN: *flag,
 * which the caller zeroes, becomes UINT_MAX − that index (indices past UINT_MAX − 1 count as
 * UINT_MAX − 1); it stays 0 when every value is finite. */
int dc_cuk_first_nonfinite(cudaStream_t s, const void *x, size_t n, int type, unsigned *flag);
/* *amax = max |x| (overwrites *amax) */
int dc_cuk_amax(cudaStream_t s, const float *x, size_t n, float *amax);
/* scale = amax > 0 ? amax / 448 : 1 (written to *scale), q = E4M3(x / scale) saturating */
int dc_cuk_fp8_quantize(cudaStream_t s, const float *x, size_t n, const float *amax,
                        float *scale, uint8_t *q);

/* Softmax attention; see attention.cu (any band, global tokens, head_dim up to 512: one block
 * per query and head) and attention_tiled.cu (full or key-masked attention, head_dim up to 128:
 * one block per tile of up to DC_CUK_ATTN_TILE_Q queries of one sequence and a head). */
typedef struct dc_cuk_attn {
    const float *q, *k, *v;
    float *out;
    size_t ld_q, ld_kv, ld_out;
    uint32_t n_heads, head_dim;
    float scale;
    uint32_t n_q;            /* queries */
    const uint32_t *q_row;   /* batch row of each query */
    const uint32_t *q_seq;   /* its sequence */
    int q_by_index;          /* q/out rows are indexed by query number, not batch row */
    const uint32_t *start;   /* n_seqs + 1 row offsets */
    const uint8_t *key_mask; /* per batch row, or NULL */
    uint32_t left, right;    /* band (UINT32_MAX = unbounded) */
    const uint8_t *gflag;    /* per batch row, or NULL */
    const uint32_t *gstart;  /* per sequence: its globals are glist[gstart[s] .. gstart[s+1]) */
    const uint32_t *glist;   /* global batch rows, ascending; NULL when none */
    int skip_global;         /* leave global query rows untouched */
    /* The tiled kernel runs when tile_q0 is set: tile t holds queries [tile_q0[t],
     * tile_q0[t+1]) (n_tiles + 1 entries), all of one sequence, at most DC_CUK_ATTN_TILE_Q.
     * The plan must then have no band (left = right = UINT32_MAX), no global tokens and
     * head_dim <= DC_CUK_ATTN_TILED_MAX_HEAD_DIM (dc_cuk_attention_tiled_fits). */
    const uint32_t *tile_q0;
    uint32_t n_tiles;
} dc_cuk_attn;

#define DC_CUK_ATTN_MAX_HEAD_DIM 512
#define DC_CUK_ATTN_TILED_MAX_HEAD_DIM 128
#define DC_CUK_ATTN_TILE_Q 64
/* Launches the tiled kernel when a->tile_q0 is set, else the per-query one. */
int dc_cuk_attention(cudaStream_t s, const dc_cuk_attn *a);
/* Whether the tiled kernel can run this plan (tile_q0 aside): a host-side check. */
int dc_cuk_attention_tiled_fits(const dc_cuk_attn *a);
int dc_cuk_attention_tiled(cudaStream_t s, const dc_cuk_attn *a);

#ifdef __cplusplus
}
#endif
#endif

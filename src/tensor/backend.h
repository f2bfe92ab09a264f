/* The kernel interface of the transformer engine (DESIGN §4, seed S04–S06).
 *
 * A dc_backend is a table of the few operations an encoder forward needs: a linear layer with
 * weights prepared once at load, LayerNorm (with a fused residual add), the activations,
 * masked multi-head attention over a packed batch, and buffer management. The CPU backend
 * implements it with oneDNN (matrix products) and plain C loops; a CUDA backend implements the
 * same table. Every float pointer handed to an operation is backend memory (from ->alloc);
 * on the CPU that is ordinary host memory.
 *
 * Batches are packed ("unpadded"): the token rows of all sequences follow each other, and a
 * dc_seq_batch says where each sequence starts. Attention never crosses a sequence boundary,
 * so sequences of different lengths run in one forward without padding rows. Keys can be
 * masked individually (ColBERT's [MASK] query padding: rows computed, never attended to);
 * a masked key contributes exactly 0. */
#ifndef DC_TENSOR_BACKEND_H
#define DC_TENSOR_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dodeca/status.h"

typedef struct dc_backend dc_backend;
typedef struct dc_linear dc_linear; /* y = x·Wᵀ + b with W prepared for one backend */
typedef struct dc_graph dc_graph;   /* a recorded sequence of ops, replayed as one launch */

/* Where each sequence of a packed batch lives. */
typedef struct dc_seq_batch {
    uint32_t n_seqs;
    const uint32_t *start;   /* n_seqs + 1 row offsets; sequence s is rows [start[s], start[s+1]) */
    const uint8_t *key_mask; /* one byte per row, 1 = may be attended to; NULL = every row */
} dc_seq_batch;

/* Which keys a query may see in dc_backend_ops.attention_ex (on top of the key mask and the
 * sequence boundary). Query row i of a sequence sees key j when i − left ≤ j ≤ i + right
 * (UINT32_MAX = unbounded: full attention is {MAX, MAX}, causal is {MAX, 0}, Longformer's
 * sliding window is {w, w}), or when j is a global token. Global tokens are counted once. */
typedef struct dc_attn_opts {
    uint32_t left, right;
    /* NULL, or one byte per batch row: 1 = a global token. Every query also sees the global
     * keys of its sequence, and the global query rows are skipped (their output rows are left
     * as they were: the caller computes them with its global projections). */
    const uint8_t *global_mask;
    /* NULL: every batch row is a query and q/out are indexed by batch row. Otherwise n_rows
     * ascending batch row indices are the queries, and q/out hold one row per entry, in that
     * order (global_mask then only adds keys). */
    const uint32_t *rows;
    uint32_t n_rows;
} dc_attn_opts;

#define DC_ATTN_UNBOUNDED UINT32_MAX

typedef enum dc_activation {
    DC_ACT_NONE = 0,
    DC_ACT_GELU_ERF,  /* 0.5·x·(1 + erf(x/√2)), HF "gelu" */
    DC_ACT_GELU_TANH, /* HF "gelu_new" / "gelu_pytorch_tanh" */
    DC_ACT_QUICK_GELU,/* x·σ(1.702·x), CLIP */
    DC_ACT_RELU,
} dc_activation;

/* Parses an HF `hidden_act` string; false when unknown. */
bool dc_activation_parse(const char *name, dc_activation *out);
const char *dc_activation_name(dc_activation a);

/* How a backend stores and multiplies a linear layer's weights (docs/precision.md). */
typedef enum dc_weight_format {
    DC_WEIGHTS_F32 = 0,  /* the reference path */
    DC_WEIGHTS_BF16 = 1, /* weights rounded to bf16 (half the bytes); f32 or bf16 arithmetic */
    DC_WEIGHTS_INT8 = 2, /* s8 weights per output channel, u8 activations per row, int32 sums */
    DC_WEIGHTS_F16 = 3,  /* IEEE half weights, f32 accumulation (CUDA backend) */
    DC_WEIGHTS_FP8_E4M3 = 4, /* E4M3 weights with a per-tensor scale, activations quantised per
                              * call, f32 accumulation (CUDA backend, sm_89+) */
    DC_WEIGHTS_NVFP4 = 5, /* E2M1 weights, 16-element blocks with E4M3 scales and an f32 tensor
                           * scale (CUDA backend: FP4 products on sm_100+, else dequantised to
                           * bf16 at load) */
    DC_WEIGHTS_MXFP4 = 6, /* E2M1 weights, 32-element blocks with power-of-two scales (as NVFP4) */
} dc_weight_format;

/* "fp32", "bf16", "int8"; and back (false when unknown). */
const char *dc_weight_format_name(dc_weight_format f);
bool dc_weight_format_parse(const char *name, dc_weight_format *out);

/* One slice of a linear's weight matrix stored in a file (linear_create_from_file): `rows`
 * rows of in_features little-endian values of `type`, row-major, from byte `offset` of `path`.
 * `name` (the tensor's) is for error details. */
typedef enum dc_file_elem { DC_FILE_F32 = 0, DC_FILE_BF16 = 1, DC_FILE_F16 = 2 } dc_file_elem;
typedef struct dc_linear_file_part {
    const char *path;
    const char *name;
    uint64_t offset;
    dc_file_elem type;
    uint32_t rows;
} dc_linear_file_part;

typedef struct dc_backend_ops {
    const char *name; /* "cpu", "cuda" */

    /* Buffers. alloc returns memory aligned to 64 bytes (uninitialised). */
    dc_status (*alloc)(dc_backend *be, size_t bytes, void **out);
    void (*release)(dc_backend *be, void *ptr);
    dc_status (*upload)(dc_backend *be, void *dst, const void *src, size_t bytes);
    dc_status (*download)(dc_backend *be, void *dst, const void *src, size_t bytes);

    /* Prepares W [out_features, in_features] (nn.Linear layout, host f32, row-major) and the
     * optional bias [out_features]; the inputs are copied, the caller keeps ownership. `fmt`
     * chooses how the weights are stored (the bias stays f32); DC_ERR_UNSUPPORTED_FORMAT when
     * the backend has no such format. */
    dc_status (*linear_create)(dc_backend *be, const float *weight, const float *bias,
                               uint32_t out_features, uint32_t in_features, dc_weight_format fmt,
                               dc_linear **out);
    void (*linear_destroy)(dc_backend *be, dc_linear *l);
    /* y[rows, out] = x[rows, in]·Wᵀ + b; x and y are dense row-major and do not overlap. */
    dc_status (*linear_forward)(dc_backend *be, const dc_linear *l, const float *x, size_t rows,
                                float *y);

    /* y[r] = LN(x[r] + residual[r]) · gamma + beta for each of `rows` rows of `cols`; biased
     * variance, eps inside the square root. residual may be NULL; y may alias x. */
    void (*layernorm)(dc_backend *be, const float *x, const float *residual, const float *gamma,
                      const float *beta, float eps, size_t rows, size_t cols, float *y);
    /* x = act(x) in place over n values. */
    void (*activation)(dc_backend *be, dc_activation act, float *x, size_t n);
    /* y += x over n values. */
    void (*add)(dc_backend *be, float *y, const float *x, size_t n);
    /* w[c] = max over the `rows` (≥ 1) rows of x[r, c], for c < cols (NaN ignored): SPLADE's
     * max pooling, so its [rows, vocabulary] logits need not leave the backend. x and w are
     * backend memory. */
    void (*col_max)(dc_backend *be, const float *x, size_t rows, size_t cols, float *w);
    /* dst row (dst_rows ? dst_rows[i] : i) = src row (src_rows ? src_rows[i] : i) for i < n,
     * rows of `cols` floats; the row lists are host memory, the rows do not overlap. Longformer
     * gathers its global rows and scatters their results back with it. */
    void (*copy_rows)(dc_backend *be, float *dst, const uint32_t *dst_rows, const float *src,
                      const uint32_t *src_rows, size_t n, size_t cols);
    /* Rows of out = sum of the selected rows of up to three tables (word, position, type):
     * out[r] = t0[i0[r]] + t1[i1[r]] + t2[i2[r]] (a NULL table is skipped). Indices were
     * checked by the caller. */
    void (*embed_sum)(dc_backend *be, size_t rows, size_t cols, const float *t0,
                      const uint32_t *i0, const float *t1, const uint32_t *i1, const float *t2,
                      const uint32_t *i2, float *out);

    /* Multi-head scaled dot-product attention within each sequence of `seqs`:
     * out[i, h] = Σ_j softmax_j(scale · q[i,h]·k[j,h]) v[j,h] over the unmasked keys j of i's
     * sequence. q, k, v, out are row-major with row strides ld_q, ld_kv, ld_kv, ld_out floats
     * (so a fused QKV projection can be passed with offsets); head h occupies columns
     * [h·head_dim, (h+1)·head_dim). A row whose sequence has no unmasked key gets zeros. */
    dc_status (*attention)(dc_backend *be, const float *q, size_t ld_q, const float *k,
                           const float *v, size_t ld_kv, float *out, size_t ld_out,
                           uint32_t n_heads, uint32_t head_dim, float scale,
                           const dc_seq_batch *seqs);

    /* The same softmax attention with a band of keys per query, global tokens and an optional
     * subset of query rows (dc_attn_opts). Memory stays linear in the sequence length: scores
     * are computed for one query row at a time over its own keys only. */
    dc_status (*attention_ex)(dc_backend *be, const float *q, size_t ld_q, const float *k,
                              const float *v, size_t ld_kv, float *out, size_t ld_out,
                              uint32_t n_heads, uint32_t head_dim, float scale,
                              const dc_seq_batch *seqs, const dc_attn_opts *opts);

    /* Bytes held by a prepared linear (for memory accounting). */
    size_t (*linear_bytes)(const dc_linear *l);
    /* How a prepared linear is held and multiplied, for reports ("bf16 native: ...", "nvfp4
     * stored, dequantised to bf16 at load (...)"); NULL when the backend does not say. */
    const char *(*linear_impl)(const dc_linear *l);
    void (*destroy)(dc_backend *be);

    /* Optional (NULL on the CPU backend): linear_create with W read from a file by the backend
     * itself, the host never converting it. W is the row-wise stack of the `nparts` parts,
     * whose rows add up to out_features; the bias stays a host array. The layer is the one
     * linear_create makes from the same values (bit for bit). DC_ERR_UNSUPPORTED_FORMAT when
     * the backend does not take `fmt` this way (the caller then uses linear_create);
     * DC_ERR_IO for a file that cannot be read or is short, DC_ERR_CHECKPOINT_CORRUPTED for a
     * non-finite weight, both naming the file and the tensor. */
    dc_status (*linear_create_from_file)(dc_backend *be, const dc_linear_file_part *parts,
                                         uint32_t nparts, const float *bias,
                                         uint32_t out_features, uint32_t in_features,
                                         dc_weight_format fmt, dc_linear **out);

    /* Optional (NULL on the CPU backend): recorded launches (CUDA graphs). Between graph_begin
     * and graph_end the calling thread's ops on `be` are recorded, not run: nothing they
     * write is computed until graph_launch, which runs them all again each time, on the same
     * buffers (pointers, sizes and the host arrays' contents are those of the recording).
     * Other threads' ops on `be` run as usual meanwhile. Inside a recording only
     * stream-ordered ops may be used: upload and download (which wait for the device) make
     * the recording fail. Memory allocated and released inside the recording belongs to the
     * graph until graph_destroy; what the caller allocated must outlive the graph.
     * graph_begin: DC_ERR_UNSUPPORTED_FORMAT when graphs are off for this backend,
     * DC_ERR_OVERLOADED when another thread is recording on it (run the ops directly).
     * graph_end always ends the recording; on failure *out is NULL, nothing ran, and the
     * caller runs the ops itself. graph_destroy waits for the graph's launches. */
    dc_status (*graph_begin)(dc_backend *be);
    dc_status (*graph_end)(dc_backend *be, dc_graph **out);
    dc_status (*graph_launch)(dc_backend *be, dc_graph *g);
    void (*graph_destroy)(dc_backend *be, dc_graph *g);
} dc_backend_ops;

struct dc_backend {
    const dc_backend_ops *ops;
    void *impl;
};

/* ---- the CPU backend ---- */

typedef struct dc_cpu_backend_options {
    uint32_t threads; /* intra-op threads (oneDNN's OpenMP pool); 0 = every online core */
} dc_cpu_backend_options;

/* `opt` may be NULL (defaults). */
dc_status dc_backend_cpu_create(const dc_cpu_backend_options *opt, dc_backend **out);
void dc_backend_destroy(dc_backend *be);

/* Applies the backend's thread count to the calling thread (OpenMP's per-thread setting); the
 * encoder calls it at the start of every forward. */
void dc_backend_cpu_bind_threads(dc_backend *be);

/* What the CPU offers the hand-written kernels ("avx512", "avx2", "generic") and, for a prepared
 * linear, the oneDNN implementation of its matrix product ("gemm:jit", ...; for bf16 and int8
 * layers prefixed by the scheme, e.g. "bf16 as f32 in blocks of 336: gemm:jit"). */
const char *dc_cpu_kernel_isa(void);
const char *dc_cpu_linear_impl(const dc_linear *l);

/* ---- the portable kernels, exposed for tests and for other backends' host fallbacks ---- */

void dc_kernel_layernorm(const float *x, const float *residual, const float *gamma,
                         const float *beta, float eps, size_t rows, size_t cols, float *y);
void dc_kernel_activation(dc_activation act, float *x, size_t n);
void dc_kernel_add(float *y, const float *x, size_t n);
/* w[c] = max over rows of x[r, c] (row stride ld ≥ cols); -INFINITY when rows = 0. */
void dc_kernel_col_max(const float *x, size_t rows, size_t cols, size_t ld, float *w);
void dc_kernel_embed_sum(size_t rows, size_t cols, const float *t0, const uint32_t *i0,
                         const float *t1, const uint32_t *i1, const float *t2,
                         const uint32_t *i2, float *out);
/* Vector erf and exp used by the kernels (a few ulp); exposed for their tests. */
void dc_kernel_erf(const float *x, float *y, size_t n);
void dc_kernel_exp(const float *x, float *y, size_t n);
/* Forces the portable code path (tests compare it with the dispatched one). */
void dc_kernel_force_generic(bool on);

#endif

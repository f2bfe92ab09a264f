/* Shared by the C parts of libdodeca_cuda.so: the backend object, the pool, error helpers. */
#ifndef DC_GPU_CU_INTERNAL_H
#define DC_GPU_CU_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "gpu/cuda_api.h"

/* ---- errors: details go to the host's thread-local buffer ---- */

extern dc_status (*dc_cu_fail_fn)(dc_status s, const char *fmt, ...);
#define dc_cu_fail(...) dc_cu_fail_fn(__VA_ARGS__)
/* DC_ERR_OUT_OF_MEMORY for allocation failures, DC_ERR_GPU otherwise; names the call. */
dc_status dc_cu_status(cudaError_t e, const char *what);
dc_status dc_cublas_status(cublasStatus_t s, const char *what);

/* ---- the memory pool: power-of-two buckets from 256 B, a cap, statistics ----
 *
 * One pool per device (dc_cu_pool_core) and one view of it per stream (dc_cu_pool): every
 * allocation and release names the stream it is ordered on, so a block another stream released
 * is handed out only after that stream's work on it (pool.c). */

#define DC_POOL_BUCKETS 48
typedef struct dc_pool_block dc_pool_block;
typedef struct dc_pool_weights dc_pool_weights;
typedef struct dc_cu_pool_core {
    pthread_mutex_t mu;
    dc_pool_block *free_list[DC_POOL_BUCKETS]; /* cached blocks per size class */
    dc_pool_block **live;                      /* open-addressing table: ptr → block */
    size_t live_cap, live_n;
    dc_pool_weights *weights; /* exact-size weight allocations (few, long-lived) */
    dc_cuda_pool_stats st;
} dc_cu_pool_core;

/* The memory of a recording (graph.c): while a view records (rec set), what it allocates is
 * remembered, and a release only hands the block back to the recording, where a later
 * allocation of the same recording may take it (the graph keeps their order). No block reaches
 * the pool before dc_pool_rec_free, which the graph calls when it is destroyed. A block from
 * dc_pool_alloc_kept (constants uploaded for the graph at recording time) is one no op of the
 * graph used before, and none will after: a kernel earlier in the graph would overwrite it at
 * every replay. */
typedef struct dc_pool_rec_entry {
    void *ptr;
    uint32_t bucket;
    uint8_t state; /* DC_REC_BUSY, DC_REC_FREE, DC_REC_KEPT */
} dc_pool_rec_entry;
enum { DC_REC_BUSY = 0, DC_REC_FREE = 1, DC_REC_KEPT = 2 };
typedef struct dc_cu_pool dc_cu_pool;
typedef struct dc_pool_rec {
    dc_pool_rec_entry *e;
    size_t n, cap;
    size_t bytes;           /* held by the recording */
    dc_cu_pool *home;       /* the context's own view, which the blocks go back through */
} dc_pool_rec;

struct dc_cu_pool {
    dc_cu_pool_core *core;
    cudaStream_t stream; /* the stream this view's allocations and releases are ordered on */
    cudaEvent_t done;    /* recorded on `stream` when another stream takes a block it released */
    dc_pool_rec *rec;    /* NULL, or the recording this view serves (a recording thread's copy) */
};

dc_status dc_pool_core_init(dc_cu_pool_core *c, size_t limit);
void dc_pool_core_destroy(dc_cu_pool_core *c); /* frees every block (the device must be idle) */
/* A view for `stream` (creates its event). */
dc_status dc_pool_attach(dc_cu_pool *p, dc_cu_pool_core *c, cudaStream_t stream);
/* Ends a view: its stream must be idle (synchronised); the blocks it released become free for
 * any stream without a wait. */
void dc_pool_detach(dc_cu_pool *p);
dc_status dc_pool_alloc(dc_cu_pool *p, size_t bytes, void **out);
/* As dc_pool_alloc; in a recording, a block kept for the graph alone (see dc_pool_rec). */
dc_status dc_pool_alloc_kept(dc_cu_pool *p, size_t bytes, void **out);
void dc_pool_release(dc_cu_pool *p, void *ptr); /* after enqueuing the block's last use */
void dc_pool_trim(dc_cu_pool *p);
/* Recordings (see dc_pool_rec): ends one (blocks still busy are the caller's, who keeps them
 * while the graph lives, and leave the set); returns the set's blocks to the pool through the
 * context's own view. */
void dc_pool_rec_end(dc_pool_rec *r);
void dc_pool_rec_free(dc_pool_rec *r);
/* Exact-size device memory outside the classes, counted in st.weights and against the cap. */
dc_status dc_pool_weights_alloc(dc_cu_pool *p, size_t bytes, void **out);
/* false when ptr is not a weights allocation of this pool (nothing freed) */
bool dc_pool_weights_free(dc_cu_pool *p, void *ptr);
void dc_pool_stats(dc_cu_pool *p, dc_cuda_pool_stats *out);
/* bucket of a request, for tests and statistics (size classes 256 << b) */
uint32_t dc_pool_bucket(size_t bytes);

/* ---- the backend: one stream context per dc_backend, one shared state per device ---- */

typedef struct dc_cu_green dc_cu_green;

/* What the stream contexts of one device share (refcounted by them, cuda_backend.c). */
typedef struct dc_cu_device {
    pthread_mutex_t mu; /* refs, next_partition, green */
    uint32_t refs;      /* open stream contexts */
    uint32_t next_partition;
    int device;
    int sm_count;
    dc_cu_pool_core pool;
    dc_cu_green *green;         /* SM partitions, or NULL */
    char green_reason[128];     /* why green contexts were asked for and not made */
    /* the pinned buffer of cufile.c's pread fallback (DC_CU_READ_BUF bytes, made at the first
     * read, kept while the device lives), one read at a time */
    pthread_mutex_t read_mu;
    void *read_buf;
} dc_cu_device;

#define DC_CU_READ_BUF ((size_t)8 << 20)

typedef struct dc_cu_backend {
    int device;
    int cc_major, cc_minor;
    bool allow_tf32;
    cudaStream_t stream; /* this context's ops are ordered on it; other contexts run beside */
    cublasHandle_t blas; /* this context's own handles (cuBLAS handles are not shared across */
    cublasLtHandle_t lt; /* streams), bound to `stream` */
    void *workspace;     /* both handles' workspace: pool weights memory, under the cap (gemm.c) */
    size_t workspace_bytes;
    pthread_mutex_t blas_mu; /* one context may still be called from several threads */
    dc_cu_pool pool;         /* the device's pool, seen from `stream` */
    dc_cu_device *dev;
    int partition;           /* green partition of `stream`, -1 for an ordinary stream */
    bool stream_foreign;     /* made by the driver API (green): destroyed through it */
    pthread_mutex_t file_mu; /* file_st */
    dc_cuda_file_stats file_st; /* what file_read read on this context (cufile.c) */
    /* graphs (graph.c): recordings are captured on rec_stream, one at a time (rec_mu held
     * from graph_begin to graph_end), with their own cuBLAS handle and workspace, since a
     * graph's GEMMs keep the workspace they were recorded with; all made at the first. */
    bool graphs;             /* dc_cuda_options.graphs */
    bool basic_attention;    /* dc_cuda_options.basic_attention */
    pthread_mutex_t rec_mu;
    cudaStream_t rec_stream;
    cublasHandle_t rec_blas;
    void *rec_workspace;
    pthread_mutex_t graph_st_mu;
    dc_cuda_graph_stats graph_st;
    struct dc_cu_recording *recording; /* set in a recording's copy of the context only */
} dc_cu_backend;

/* A thread's recording: a copy of the context whose stream is the capture stream, whose pool
 * view keeps what it allocates (dc_pool_rec) and whose GEMMs use the graphs' handle. While it
 * is set, dc_cu_of hands the recording thread the copy, so every op of that thread on this
 * context is captured and no other thread's is. */
typedef struct dc_cu_recording {
    dc_cu_backend *owner;
    dc_cu_backend shadow;
    dc_pool_rec rec;
    const char *broken; /* an op the graph cannot hold was called: which (NULL = none) */
} dc_cu_recording;
/* Refuses an op a recording cannot hold (what: its name): the recording will make no graph. */
dc_status dc_cu_recording_break(dc_cu_backend *cb, const char *what);
extern _Thread_local dc_cu_recording *dc_cu_tl_recording;

static inline dc_cu_backend *dc_cu_of(dc_backend *be) {
    dc_cu_backend *cb = (dc_cu_backend *)be->impl;
    dc_cu_recording *r = dc_cu_tl_recording;
    return r && r->owner == cb ? &r->shadow : cb;
}

/* Makes the backend's device current on the calling thread. */
dc_status dc_cu_enter(dc_cu_backend *cb);
/* Remembers the calling thread's first failure of a void op (layernorm, add, ...); the
 * thread's next fallible op on the same backend returns it. */
void dc_cu_note(dc_cu_backend *cb, cudaError_t e, const char *what);
/* The remembered failure as a status (and clears it), DC_OK when none. */
dc_status dc_cu_take_sticky(dc_cu_backend *cb);

/* Device copies of host arrays a caller passed where device memory was expected (the models
 * hand host tables, indices and LayerNorm parameters): `bytes` are uploaded into a pool block
 * on the backend stream. *tmp is the block to release afterwards (NULL when ptr was already
 * device memory and is returned as is). */
dc_status dc_cu_stage(dc_cu_backend *cb, const void *ptr, size_t bytes, const void **dev,
                      void **tmp);
bool dc_cu_is_device(const void *ptr);

/* ---- GEMM (gemm.c) ---- */

dc_status dc_cu_gemm_init(dc_cu_backend *cb);
/* A cuBLAS handle bound to `stream`, working in `workspace` (device memory of `bytes`). */
dc_status dc_cu_blas_create(cudaStream_t stream, void *workspace, size_t bytes,
                           cublasHandle_t *out);
void dc_cu_gemm_destroy(dc_cu_backend *cb);
dc_status dc_cu_linear_create(dc_backend *be, const float *weight, const float *bias,
                              uint32_t n_out, uint32_t k_in, dc_weight_format fmt,
                              dc_linear **out);
/* linear_create in steps, for other sources of the weights (linear_file.c): a layer with its
 * weight buffer allocated (not for FP4 formats, whose buffers fp4_create sizes) after the
 * checks linear_create makes; the buffer; the weights from an f32 matrix in device memory
 * (converted or quantised as fmt says; w32 may be the layer's own buffer when fmt is f32;
 * waits for the stream); the bias from the host; and the layer freed after its stream. */
dc_status dc_cu_linear_new(dc_cu_backend *cb, uint32_t n_out, uint32_t k_in,
                           dc_weight_format fmt, dc_linear **out);
void *dc_cu_linear_weights(dc_linear *l);
dc_status dc_cu_linear_from_f32(dc_cu_backend *cb, dc_linear *l, const float *w32);
dc_status dc_cu_linear_set_bias(dc_linear *l, const float *bias);
void dc_cu_linear_free(dc_cu_backend *cb, dc_linear *l);
dc_status dc_cu_linear_create_from_file(dc_backend *be, const dc_linear_file_part *parts,
                                        uint32_t nparts, const float *bias, uint32_t n_out,
                                        uint32_t k_in, dc_weight_format fmt, dc_linear **out);
void dc_cu_linear_destroy(dc_backend *be, dc_linear *l);
dc_status dc_cu_linear_forward(dc_backend *be, const dc_linear *l, const float *x, size_t rows,
                               float *y);
size_t dc_cu_linear_bytes(const dc_linear *l);
const char *dc_cu_linear_impl(const dc_linear *l);
dc_status dc_cu_grouped_gemm(dc_backend *be, dc_gemm_dtype dtype, const dc_gemm_problem *p,
                             uint32_t n, bool force_fallback);
dc_status dc_cu_grouped_gemm_ex(dc_backend *be, dc_gemm_dtype in, dc_gemm_dtype out,
                                const dc_gemm_problem *p, uint32_t n, bool force_fallback);

/* ---- attention (cuda_backend.c) ---- */

dc_status dc_cu_attention(dc_backend *be, const float *q, size_t ld_q, const float *k,
                          const float *v, size_t ld_kv, float *out, size_t ld_out,
                          uint32_t n_heads, uint32_t head_dim, float scale,
                          const dc_seq_batch *seqs);
dc_status dc_cu_attention_ex(dc_backend *be, const float *q, size_t ld_q, const float *k,
                             const float *v, size_t ld_kv, float *out, size_t ld_out,
                             uint32_t n_heads, uint32_t head_dim, float scale,
                             const dc_seq_batch *seqs, const dc_attn_opts *opts);

/* ---- graphs (graph.c) ---- */

dc_status dc_cu_graph_begin(dc_backend *be);
dc_status dc_cu_graph_end(dc_backend *be, dc_graph **out);
dc_status dc_cu_graph_launch(dc_backend *be, dc_graph *g);
void dc_cu_graph_destroy(dc_backend *be, dc_graph *g);
void dc_cu_graph_stats(dc_backend *be, dc_cuda_graph_stats *out);
/* the context's recording resources, when it closes (its stream is idle) */
void dc_cu_graph_context_free(dc_cu_backend *cb);

/* ---- cuFile and green contexts ---- */

dc_status dc_cu_file_read(dc_backend *be, const char *path, uint64_t offset, size_t bytes,
                          void *dst, bool force_posix, bool *used_gds);
/* file_read of a tensor's bytes: its errors name the tensor after the path */
dc_status dc_cu_file_read_tensor(dc_backend *be, const char *path, const char *tensor,
                                 uint64_t offset, size_t bytes, void *dst);
void dc_cu_file_stats(dc_backend *be, dc_cuda_file_stats *out);
dc_status dc_cu_green_split(dc_backend *be, uint32_t want, uint32_t min_sms,
                            dc_cuda_partition *out);
/* Splits dev's SMs once into up to `want` partitions (caller holds dev->mu); on failure
 * records the reason in dev->green_reason and leaves dev->green NULL. */
void dc_cu_green_make(dc_cu_device *dev, uint32_t want, uint32_t min_sms, dc_cuda_partition *out);
uint32_t dc_cu_green_count(const dc_cu_device *dev);
uint32_t dc_cu_green_sms(const dc_cu_device *dev, uint32_t partition);
/* A non-blocking stream on partition `partition` (a cudaStream_t is a CUstream). */
dc_status dc_cu_green_stream(dc_cu_device *dev, uint32_t partition, cudaStream_t *out);
void dc_cu_green_stream_destroy(cudaStream_t s);
void dc_cu_green_destroy(dc_cu_device *dev);

#endif

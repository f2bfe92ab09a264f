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

typedef struct dc_cu_pool {
    dc_cu_pool_core *core;
    cudaStream_t stream; /* the stream this view's allocations and releases are ordered on */
    cudaEvent_t done;    /* recorded on `stream` when another stream takes a block it released */
} dc_cu_pool;

dc_status dc_pool_core_init(dc_cu_pool_core *c, size_t limit);
void dc_pool_core_destroy(dc_cu_pool_core *c); /* frees every block (the device must be idle) */
/* A view for `stream` (creates its event). */
dc_status dc_pool_attach(dc_cu_pool *p, dc_cu_pool_core *c, cudaStream_t stream);
/* Ends a view: its stream must be idle (synchronised); the blocks it released become free for
 * any stream without a wait. */
void dc_pool_detach(dc_cu_pool *p);
dc_status dc_pool_alloc(dc_cu_pool *p, size_t bytes, void **out);
void dc_pool_release(dc_cu_pool *p, void *ptr); /* after enqueuing the block's last use */
void dc_pool_trim(dc_cu_pool *p);
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
} dc_cu_backend;

static inline dc_cu_backend *dc_cu_of(dc_backend *be) { return (dc_cu_backend *)be->impl; }

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

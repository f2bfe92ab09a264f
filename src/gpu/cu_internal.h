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

/* ---- the memory pool: power-of-two buckets from 256 B, a cap, statistics ---- */

#define DC_POOL_BUCKETS 48
typedef struct dc_pool_block dc_pool_block;
typedef struct dc_pool_weights dc_pool_weights;
typedef struct dc_cu_pool {
    pthread_mutex_t mu;
    dc_pool_block *free_list[DC_POOL_BUCKETS]; /* cached blocks per size class */
    dc_pool_block **live;                      /* open-addressing table: ptr → block */
    size_t live_cap, live_n;
    dc_pool_weights *weights; /* exact-size weight allocations (few, long-lived) */
    dc_cuda_pool_stats st;
} dc_cu_pool;

dc_status dc_pool_init(dc_cu_pool *p, size_t limit);
void dc_pool_destroy(dc_cu_pool *p); /* frees every block (the device must be idle) */
dc_status dc_pool_alloc(dc_cu_pool *p, size_t bytes, void **out);
void dc_pool_release(dc_cu_pool *p, void *ptr);
void dc_pool_trim(dc_cu_pool *p);
/* Exact-size device memory outside the classes, counted in st.weights and against the cap. */
dc_status dc_pool_weights_alloc(dc_cu_pool *p, size_t bytes, void **out);
/* false when ptr is not a weights allocation of this pool (nothing freed) */
bool dc_pool_weights_free(dc_cu_pool *p, void *ptr);
void dc_pool_stats(dc_cu_pool *p, dc_cuda_pool_stats *out);
/* bucket of a request, for tests and statistics (size classes 256 << b) */
uint32_t dc_pool_bucket(size_t bytes);

/* ---- the backend ---- */

typedef struct dc_cu_green dc_cu_green;

typedef struct dc_cu_backend {
    int device;
    int cc_major, cc_minor;
    bool allow_tf32;
    cudaStream_t stream; /* every op is ordered on this stream: the pool reuses blocks in order */
    cublasHandle_t blas;
    cublasLtHandle_t lt;
    void *lt_workspace;
    size_t lt_workspace_bytes;
    pthread_mutex_t blas_mu; /* handles are shared; enqueue under the lock */
    dc_cu_pool pool;
    dc_cu_green *green;
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
void dc_cu_linear_destroy(dc_backend *be, dc_linear *l);
dc_status dc_cu_linear_forward(dc_backend *be, const dc_linear *l, const float *x, size_t rows,
                               float *y);
size_t dc_cu_linear_bytes(const dc_linear *l);
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
dc_status dc_cu_green_split(dc_backend *be, uint32_t want, uint32_t min_sms,
                            dc_cuda_partition *out);
void dc_cu_green_destroy(dc_cu_backend *cb);

#endif

/* The interface between the host library and libdodeca_cuda.so (DESIGN §9).
 *
 * The CPU library never links the CUDA runtime: it dlopens libdodeca_cuda.so and calls the one
 * exported symbol, dc_cuda_entry, which returns the table below. Everything the shared object
 * needs from the host (error details) is passed in dc_cuda_host, so the two link nothing from
 * each other. A table with another abi number is refused by the loader. Plain C, no CUDA types:
 * this header is included by code compiled without the toolkit. */
#ifndef DC_GPU_CUDA_API_H
#define DC_GPU_CUDA_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tensor/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The loader refuses a table whose abi differs from DC_CUDA_ABI, so bump it whenever a struct
 * here (or dc_backend_ops, which the library fills) changes its layout or a call is added.
 * 2: grouped_gemm_ex, to_half, weights_alloc/free, pool_stats.weights;
 * 3: stream contexts (stream_open, stream_info), green_partitions, pool_stats.cross_stream;
 * 4: dc_backend_ops.linear_create_from_file, file_stats;
 * 5: dc_cuda_options.graphs, dc_backend_ops.graph_*, graph_stats, dc_backend_ops.copy_rows;
 * 6: dc_cuda_options.basic_attention */
#define DC_CUDA_ABI 6
#define DC_CUDA_ENTRY_SYMBOL "dc_cuda_entry"
#define DC_CUDA_LIBRARY_NAME "libdodeca_cuda.so"

typedef struct dc_cuda_host {
    uint32_t abi;
    /* records the thread's error detail and returns s (the host's dc_fail) */
    dc_status (*fail)(dc_status s, const char *fmt, ...);
} dc_cuda_host;

typedef struct dc_cuda_options {
    int device;             /* ordinal */
    size_t pool_limit;      /* bytes the pool may hold; 0 = 90% of the device's memory */
    bool allow_tf32;        /* f32 linears on TF32 tensor cores (10-bit mantissa products) */
    /* ≥ 2: split the device's SMs into up to this many green contexts when its first context
     * is made, and put each stream context's stream on one of them in turn; 0 or 1: ordinary
     * streams. Unavailable green contexts fall back to ordinary streams (stream_info says why). */
    uint32_t green_partitions;
    /* dc_backend_ops.graph_begin may record this context's forwards as CUDA graphs
     * (gpu.use_cuda_graphs); false: graph_begin answers DC_ERR_UNSUPPORTED_FORMAT. */
    bool graphs;
    /* The per-query attention kernel for every call (models.<name>.use_flash_attention =
     * false); false: the tiled one where it applies. DC_CUDA_ATTN, when set, decides instead. */
    bool basic_attention;
} dc_cuda_options;

typedef struct dc_cuda_device_info {
    char name[128];
    size_t total_bytes, free_bytes;
    int cc_major, cc_minor;
    int sm_count;
    int driver_version, runtime_version; /* 13000 = 13.0 */
} dc_cuda_device_info;

typedef struct dc_cuda_pool_stats {
    uint64_t hits, misses;  /* allocations served from the cache / by cudaMalloc */
    uint64_t failures;      /* allocations refused (DC_ERR_OUT_OF_MEMORY) */
    size_t in_use, cached;  /* bytes handed out / held free in the buckets */
    size_t peak, limit;     /* most bytes in use + cached + weights at once; the cap */
    size_t weights;         /* bytes held by weights_alloc (exact sizes, counted in the cap) */
    uint64_t cross_stream;  /* hits on a block another stream released (each after a wait) */
} dc_cuda_pool_stats;

/* What file_read (and linear_create_from_file, which reads through it) read on one stream
 * context since it was made: bytes and wall time per path, for a bandwidth report. */
typedef struct dc_cuda_file_stats {
    uint64_t gds_bytes, posix_bytes;   /* through cuFile / through pread into pinned + copy */
    double gds_seconds, posix_seconds; /* open to the last byte on the device, per path */
    uint64_t reads;                    /* file_read calls */
    char gds_reason[128];              /* why the last read not by cuFile was not ("" if none) */
} dc_cuda_file_stats;

/* Grouped GEMM for the fusion experts: problem p is Y_p[m_p, n_p] = X_p[m_p, k_p]·W_p[n_p, k_p]ᵀ
 * (row-major, device memory). X and W share one dtype, Y has its own (grouped_gemm_ex); products
 * accumulate in f32. m_p = 0 is allowed (nothing to do). */
typedef enum dc_gemm_dtype { DC_GEMM_F32 = 0, DC_GEMM_BF16 = 1, DC_GEMM_F16 = 2 } dc_gemm_dtype;
typedef struct dc_gemm_problem {
    uint32_t m, n, k;
    const void *x, *w;
    void *y;
} dc_gemm_problem;

/* The graphs of one stream context (dc_cuda_api.graph_stats). */
typedef struct dc_cuda_graph_stats {
    uint64_t recorded;  /* graphs made */
    uint64_t launches;  /* graph_launch calls */
    uint64_t failures;  /* recordings that made no graph (the caller ran the ops itself) */
    uint64_t nodes;     /* kernels, copies and GEMM kernels in the graphs alive */
    uint32_t alive;     /* graphs not yet destroyed */
    size_t bytes;       /* pool memory they hold (their intermediate buffers) */
    char last_failure[160]; /* why the last failed recording failed ("" if none) */
} dc_cuda_graph_stats;

/* How SMs were partitioned (dc_cuda_api.green_split). */
typedef struct dc_cuda_partition {
    uint32_t n;              /* partitions made (≥ 1) */
    bool green;              /* false: the single-context fallback (one ordinary stream) */
    uint32_t sm_count[16];   /* SMs per partition (0 when unknown) */
    char reason[128];        /* why the fallback was taken ("" when green) */
} dc_cuda_partition;

/* One stream context (dc_cuda_api.stream_info). */
typedef struct dc_cuda_stream_info {
    uint32_t contexts;     /* stream contexts open on the device, this one included */
    bool green;            /* the stream runs on a green context (an SM partition) */
    uint32_t partition;    /* which one (0 when not green) */
    uint32_t n_partitions; /* partitions of the device (0 when none) */
    uint32_t sm_count;     /* SMs of this stream's partition, or of the whole device */
    char reason[128];      /* green contexts asked for but not used: why ("" otherwise) */
} dc_cuda_stream_info;

typedef struct dc_cuda_api {
    uint32_t abi;
    const char *build; /* toolkit version and arches the library was compiled for */
    /* Driver and devices. DC_OK with *n_devices ≥ 1, or DC_ERR_GPU with the reason ("no CUDA
     * driver", "no device", ...) in reason. */
    dc_status (*probe)(const dc_cuda_host *host, int *n_devices, char *reason, size_t cap);
    dc_status (*device_info)(int device, dc_cuda_device_info *out);
    /* A stream context on device opt->device: its own non-blocking stream, cuBLAS and cuBLASLt
     * handles and workspace, a view of the device's pool. The first context of a device makes
     * the device's state (pool with its cap, green partitions); stream_open adds contexts to
     * the device of `base` (any open context): one pool and one cap for all of them, the
     * allow_tf32 of opt per context (its pool_limit and green_partitions are the first's).
     * Each context is a dc_backend closed with its destroy; the device's state goes with the
     * last. Ops of one context are ordered on its stream; contexts run concurrently. */
    dc_status (*backend_create)(const dc_cuda_host *host, const dc_cuda_options *opt,
                                dc_backend **out);
    dc_status (*stream_open)(const dc_cuda_host *host, dc_backend *base,
                             const dc_cuda_options *opt, dc_backend **out);
    void (*stream_info)(dc_backend *be, dc_cuda_stream_info *out);
    /* The calls below take a backend made by backend_create or stream_open. */
    void (*pool_stats)(dc_backend *be, dc_cuda_pool_stats *out);
    void (*pool_trim)(dc_backend *be); /* returns cached blocks to the driver */
    /* force_fallback: loop cublasGemmEx even when the grouped call exists (tests). */
    dc_status (*grouped_gemm)(dc_backend *be, dc_gemm_dtype dtype, const dc_gemm_problem *p,
                              uint32_t n, bool force_fallback);
    /* As grouped_gemm with x, w of dtype `in` and y of dtype `out`: in = out (any), or bf16/f16
     * in with f32 out (CUBLAS_COMPUTE_32F); DC_ERR_UNSUPPORTED_FORMAT for other pairs. A mixed
     * pair runs as one cublasGemmEx per problem: cublasGemmGroupedBatchedEx takes only outputs
     * of the inputs' type (documented; NOT_SUPPORTED from cuBLAS 13.1 on an H200). */
    dc_status (*grouped_gemm_ex)(dc_backend *be, dc_gemm_dtype in, dc_gemm_dtype out,
                                 const dc_gemm_problem *p, uint32_t n, bool force_fallback);
    /* y[i] = x[i] as bf16 or f16 (dtype), round to nearest even, n values in device memory;
     * enqueued on the backend's stream like the other ops. */
    dc_status (*to_half)(dc_backend *be, const float *x, void *y, size_t n, dc_gemm_dtype dtype);
    /* Device memory of exactly `bytes` outside the pool's size classes (cudaMalloc), for
     * long-lived weights. Counted in pool_stats.weights and against the pool's cap (a request
     * past it first returns the pool's cache, then fails with DC_ERR_OUT_OF_MEMORY).
     * weights_free waits for the stream (no kernel still reads it); NULL is ignored. */
    dc_status (*weights_alloc)(dc_backend *be, size_t bytes, void **out);
    void (*weights_free)(dc_backend *be, void *p);
    /* Reads bytes [offset, offset+bytes) of a file into device memory: cuFile (GPUDirect
     * Storage, libcufile.so.0 loaded at run time) or, when that is absent or refuses,
     * pread into pinned memory and a copy. *used_gds says which. */
    dc_status (*file_read)(dc_backend *be, const char *path, uint64_t offset, size_t bytes,
                           void *dst, bool force_posix, bool *used_gds);
    /* Splits the device's SMs into up to `want` green contexts of at least min_sms each, or
     * falls back to one partition. Partitions live until the device's last context is
     * closed; a device already split answers with its partitions (contexts made after the
     * split put their streams on them in turn). */
    dc_status (*green_split)(dc_backend *be, uint32_t want, uint32_t min_sms,
                             dc_cuda_partition *out);
    /* What file_read read on this stream context, by path (ABI 4). */
    void (*file_stats)(dc_backend *be, dc_cuda_file_stats *out);
    /* What the graphs of this stream context did (ABI 5). */
    void (*graph_stats)(dc_backend *be, dc_cuda_graph_stats *out);
} dc_cuda_api;

typedef const dc_cuda_api *(*dc_cuda_entry_fn)(void);

#ifdef __cplusplus
}
#endif
#endif

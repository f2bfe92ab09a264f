/* The CUDA backend: the dc_backend table over the kernels in kernels.cu / attention.cu, cuBLAS
 * for the linears (gemm.c) and the pool (pool.c); plus the library's one exported symbol.
 *
 * Each dc_backend is one stream context: its own non-blocking stream (on a green-context SM
 * partition when the device was split), its own cuBLAS / cuBLASLt handles and workspace, and a
 * view of the pool of its device, which every context of that device shares (dc_cu_device,
 * refcounted by its contexts). So models in their own threads run side by side on one device
 * under one memory cap.
 *
 * Pointer arguments: the models pass some host arrays where the interface asks for backend
 * memory (embedding tables, LayerNorm parameters, token indices, sequence offsets). Each op
 * checks with cudaPointerGetAttributes and uploads a host array into a pool block first (an
 * embedding sum over host tables is computed on the host and its result uploaded). Correct, but
 * a model that uploads its parameters once avoids those copies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/cu_internal.h"
#include "gpu/kernels.h"

#ifndef DC_CUDA_BUILD_INFO
#define DC_CUDA_BUILD_INFO "unknown"
#endif

/* Until a host hands its dc_fail, details are dropped (statuses still tell what failed). */
static dc_status fail_silent(dc_status s, const char *fmt, ...) {
    (void)fmt;
    return s;
}

dc_status (*dc_cu_fail_fn)(dc_status s, const char *fmt, ...) = fail_silent;

static void set_host(const dc_cuda_host *host) {
    if (host && host->fail) dc_cu_fail_fn = host->fail;
}

dc_status dc_cu_status(cudaError_t e, const char *what) {
    if (e == cudaSuccess) return DC_OK;
    return dc_cu_fail(e == cudaErrorMemoryAllocation ? DC_ERR_OUT_OF_MEMORY : DC_ERR_GPU,
                      "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

dc_status dc_cublas_status(cublasStatus_t s, const char *what) {
    if (s == CUBLAS_STATUS_SUCCESS) return DC_OK;
    return dc_cu_fail(s == CUBLAS_STATUS_ALLOC_FAILED ? DC_ERR_OUT_OF_MEMORY : DC_ERR_GPU,
                      "%s: cuBLAS status %d", what, (int)s);
}

dc_status dc_cu_enter(dc_cu_backend *cb) {
    return dc_cu_status(cudaSetDevice(cb->device), "cudaSetDevice");
}

/* The first failure of a thread's void ops, returned by that thread's next fallible op on the
 * same backend. Per thread: a backend shared by several models (one per device) must not hand
 * one model's failure to another. */
static _Thread_local struct {
    const dc_cu_backend *cb;
    int e;
    char what[96];
} sticky;

void dc_cu_note(dc_cu_backend *cb, cudaError_t e, const char *what) {
    if (e == cudaSuccess || sticky.e) return;
    sticky.cb = cb;
    sticky.e = (int)e;
    snprintf(sticky.what, sizeof sticky.what, "%s", what);
}

dc_status dc_cu_take_sticky(dc_cu_backend *cb) {
    if (!sticky.e || sticky.cb != cb) return DC_OK;
    int e = sticky.e;
    sticky.e = 0;
    return dc_cu_status((cudaError_t)e, sticky.what);
}

bool dc_cu_is_device(const void *ptr) {
    struct cudaPointerAttributes at;
    memset(&at, 0, sizeof at);
    if (cudaPointerGetAttributes(&at, ptr) != cudaSuccess) {
        (void)cudaGetLastError();
        return false;
    }
    return at.type == cudaMemoryTypeDevice || at.type == cudaMemoryTypeManaged;
}

dc_status dc_cu_stage(dc_cu_backend *cb, const void *ptr, size_t bytes, const void **dev,
                      void **tmp) {
    *tmp = NULL;
    *dev = ptr;
    if (!ptr || dc_cu_is_device(ptr)) return DC_OK;
    /* Recording: the array is uploaded now, on the context's own stream (before any launch of
     * the graph), into a block the graph keeps for it alone; a pageable copy cannot be
     * captured. */
    void *d = NULL;
    dc_status st = dc_pool_alloc_kept(&cb->pool, bytes, &d);
    if (st) return st;
    cudaStream_t s = cb->recording ? cb->recording->owner->stream : cb->stream;
    /* from pageable memory the copy is staged before the call returns: the caller may free */
    cudaError_t e = cudaMemcpyAsync(d, ptr, bytes, cudaMemcpyHostToDevice, s);
    if (e != cudaSuccess) {
        dc_pool_release(&cb->pool, d);
        return dc_cu_status(e, "staging a host array");
    }
    *dev = d;
    *tmp = d;
    return DC_OK;
}

/* ---- buffers ---- */

static dc_status cu_alloc(dc_backend *be, size_t bytes, void **out) {
    dc_cu_backend *cb = dc_cu_of(be);
    dc_status st = dc_cu_enter(cb);
    return st ? st : dc_pool_alloc(&cb->pool, bytes, out);
}

static void cu_release(dc_backend *be, void *ptr) { dc_pool_release(&dc_cu_of(be)->pool, ptr); }

static dc_status cu_copy(dc_backend *be, void *dst, const void *src, size_t bytes,
                         const char *what) {
    dc_cu_backend *cb = dc_cu_of(be);
    dc_status st = dc_cu_enter(cb);
    if (st) return st;
    if ((st = dc_cu_take_sticky(cb))) return st;
    if (!bytes) return DC_OK;
    if (cb->recording) /* it waits for the device, which a recording never runs */
        return dc_cu_recording_break(cb, what);
    st = dc_cu_status(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, cb->stream), what);
    if (!st) st = dc_cu_status(cudaStreamSynchronize(cb->stream), what);
    return st;
}

static dc_status cu_upload(dc_backend *be, void *dst, const void *src, size_t bytes) {
    return cu_copy(be, dst, src, bytes, "upload");
}

static dc_status cu_download(dc_backend *be, void *dst, const void *src, size_t bytes) {
    return cu_copy(be, dst, src, bytes, "download");
}

/* ---- element-wise ops (void in the interface: failures are remembered) ---- */

static void cu_layernorm(dc_backend *be, const float *x, const float *residual,
                         const float *gamma, const float *beta, float eps, size_t rows,
                         size_t cols, float *y) {
    dc_cu_backend *cb = dc_cu_of(be);
    if (dc_cu_enter(cb)) {
        dc_cu_note(cb, cudaErrorInvalidDevice, "layernorm");
        return;
    }
    const void *g = NULL, *b = NULL;
    void *tg = NULL, *tb = NULL;
    if (dc_cu_stage(cb, gamma, cols * sizeof(float), &g, &tg) ||
        dc_cu_stage(cb, beta, cols * sizeof(float), &b, &tb)) {
        dc_cu_note(cb, cudaErrorMemoryAllocation, "layernorm parameters");
    } else {
        dc_cu_note(cb, (cudaError_t)dc_cuk_layernorm(cb->stream, x, residual, g, b, eps, rows,
                                                     cols, y),
                   "layernorm");
    }
    dc_pool_release(&cb->pool, tg);
    dc_pool_release(&cb->pool, tb);
}

static void cu_activation(dc_backend *be, dc_activation act, float *x, size_t n) {
    dc_cu_backend *cb = dc_cu_of(be);
    if (dc_cu_enter(cb)) {
        dc_cu_note(cb, cudaErrorInvalidDevice, "activation");
        return;
    }
    dc_cu_note(cb, (cudaError_t)dc_cuk_activation(cb->stream, (int)act, x, n), "activation");
}

static void cu_add(dc_backend *be, float *y, const float *x, size_t n) {
    dc_cu_backend *cb = dc_cu_of(be);
    if (dc_cu_enter(cb)) {
        dc_cu_note(cb, cudaErrorInvalidDevice, "add");
        return;
    }
    dc_cu_note(cb, (cudaError_t)dc_cuk_add(cb->stream, y, x, n), "add");
}

static void cu_copy_rows(dc_backend *be, float *dst, const uint32_t *dst_rows, const float *src,
                         const uint32_t *src_rows, size_t n, size_t cols) {
    dc_cu_backend *cb = dc_cu_of(be);
    if (dc_cu_enter(cb)) {
        dc_cu_note(cb, cudaErrorInvalidDevice, "copy_rows");
        return;
    }
    if (!n || !cols) return;
    const void *dr = NULL, *sr = NULL;
    void *tdr = NULL, *tsr = NULL;
    if (dc_cu_stage(cb, dst_rows, n * sizeof *dst_rows, &dr, &tdr) ||
        dc_cu_stage(cb, src_rows, n * sizeof *src_rows, &sr, &tsr))
        dc_cu_note(cb, cudaErrorMemoryAllocation, "copy_rows: row lists");
    else
        dc_cu_note(cb, (cudaError_t)dc_cuk_copy_rows(cb->stream, dst, dr, src, sr, n, cols),
                   "copy_rows");
    dc_pool_release(&cb->pool, tdr);
    dc_pool_release(&cb->pool, tsr);
}

static void cu_col_max(dc_backend *be, const float *x, size_t rows, size_t cols, float *w) {
    dc_cu_backend *cb = dc_cu_of(be);
    if (dc_cu_enter(cb)) {
        dc_cu_note(cb, cudaErrorInvalidDevice, "column max");
        return;
    }
    dc_cu_note(cb, (cudaError_t)dc_cuk_col_max(cb->stream, x, rows, cols, w), "column max");
}

static void host_embed_sum(size_t rows, size_t cols, const float *t0, const uint32_t *i0,
                           const float *t1, const uint32_t *i1, const float *t2,
                           const uint32_t *i2, float *out) {
    for (size_t r = 0; r < rows; r++) {
        float *o = out + r * cols;
        for (size_t c = 0; c < cols; c++) o[c] = 0.0f;
        const float *rows3[3] = {t0 ? t0 + (size_t)i0[r] * cols : NULL,
                                 t1 ? t1 + (size_t)i1[r] * cols : NULL,
                                 t2 ? t2 + (size_t)i2[r] * cols : NULL};
        for (int t = 0; t < 3; t++)
            if (rows3[t])
                for (size_t c = 0; c < cols; c++) o[c] += rows3[t][c];
    }
}

static void cu_embed_sum(dc_backend *be, size_t rows, size_t cols, const float *t0,
                         const uint32_t *i0, const float *t1, const uint32_t *i1,
                         const float *t2, const uint32_t *i2, float *out) {
    dc_cu_backend *cb = dc_cu_of(be);
    if (dc_cu_enter(cb)) {
        dc_cu_note(cb, cudaErrorInvalidDevice, "embed_sum");
        return;
    }
    if (!rows || !cols) return;
    bool host_tables = (t0 && !dc_cu_is_device(t0)) || (t1 && !dc_cu_is_device(t1)) ||
                       (t2 && !dc_cu_is_device(t2));
    if (host_tables) {
        /* the tables live on the host: gather there, upload the rows */
        float *h = malloc(rows * cols * sizeof *h);
        if (!h) {
        dc_cu_note(cb, cudaErrorMemoryAllocation, "embed_sum host rows");
        return;
    }
        host_embed_sum(rows, cols, t0, i0, t1, i1, t2, i2, h);
        dc_cu_note(cb, cudaMemcpyAsync(out, h, rows * cols * sizeof *h, cudaMemcpyHostToDevice,
                                       cb->stream),
                   "embed_sum upload");
        free(h); /* pageable source: the copy has been staged */
        return;
    }
    const void *d[3] = {NULL, NULL, NULL};
    void *tmp[3] = {NULL, NULL, NULL};
    const uint32_t *idx[3] = {i0, i1, i2};
    const float *tab[3] = {t0, t1, t2};
    bool ok = true;
    for (int t = 0; t < 3 && ok; t++)
        if (tab[t]) ok = dc_cu_stage(cb, idx[t], rows * sizeof(uint32_t), &d[t], &tmp[t]) == DC_OK;
    if (!ok) dc_cu_note(cb, cudaErrorMemoryAllocation, "embed_sum indices");
    else
        dc_cu_note(cb, (cudaError_t)dc_cuk_embed_sum(cb->stream, rows, cols, t0, d[0], t1, d[1],
                                                     t2, d[2], out),
                   "embed_sum");
    for (int t = 0; t < 3; t++) dc_pool_release(&cb->pool, tmp[t]);
}

static void device_unref(dc_cu_device *d);

static void cu_destroy(dc_backend *be) {
    if (!be) return;
    dc_cu_backend *cb = dc_cu_of(be);
    if (cb) {
        if (cudaSetDevice(cb->device) == cudaSuccess && cb->stream)
            cudaStreamSynchronize(cb->stream);
        dc_cu_graph_context_free(cb);
        dc_cu_gemm_destroy(cb); /* frees the cuBLAS workspace into the pool */
        dc_pool_detach(&cb->pool); /* after the sync: what it released is idle now */
        if (cb->stream && cb->stream_foreign) dc_cu_green_stream_destroy(cb->stream);
        else if (cb->stream) cudaStreamDestroy(cb->stream);
        pthread_mutex_destroy(&cb->blas_mu);
        pthread_mutex_destroy(&cb->file_mu);
        pthread_mutex_destroy(&cb->rec_mu);
        pthread_mutex_destroy(&cb->graph_st_mu);
        if (cb->dev) device_unref(cb->dev);
        free(cb);
    }
    free(be);
}

static const dc_backend_ops cuda_ops = {
    .name = "cuda",
    .alloc = cu_alloc,
    .release = cu_release,
    .upload = cu_upload,
    .download = cu_download,
    .linear_create = dc_cu_linear_create,
    .linear_destroy = dc_cu_linear_destroy,
    .linear_forward = dc_cu_linear_forward,
    .layernorm = cu_layernorm,
    .activation = cu_activation,
    .add = cu_add,
    .copy_rows = cu_copy_rows,
    .col_max = cu_col_max,
    .embed_sum = cu_embed_sum,
    .attention = dc_cu_attention,
    .attention_ex = dc_cu_attention_ex,
    .linear_bytes = dc_cu_linear_bytes,
    .linear_impl = dc_cu_linear_impl,
    .destroy = cu_destroy,
    .linear_create_from_file = dc_cu_linear_create_from_file,
    .graph_begin = dc_cu_graph_begin,
    .graph_end = dc_cu_graph_end,
    .graph_launch = dc_cu_graph_launch,
    .graph_destroy = dc_cu_graph_destroy,
};

/* ---- driver, devices, creation ---- */

static dc_status cu_probe(const dc_cuda_host *host, int *n_devices, char *reason, size_t cap) {
    set_host(host);
    *n_devices = 0;
    if (cap) reason[0] = '\0';
    int drv = 0;
    cudaError_t e = cudaDriverGetVersion(&drv);
    if (e != cudaSuccess || drv == 0) {
        (void)cudaGetLastError();
        snprintf(reason, cap, "no CUDA driver");
        return dc_cu_fail(DC_ERR_GPU, "cuda: no CUDA driver (libcuda.so.1 not loadable)");
    }
    int n = 0;
    e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        (void)cudaGetLastError();
        if (e == cudaErrorInsufficientDriver)
            snprintf(reason, cap, "CUDA driver %d.%d is older than the runtime", drv / 1000,
                     drv % 1000 / 10);
        else
            snprintf(reason, cap, "no device (%s)",
                     e == cudaSuccess ? "0 devices" : cudaGetErrorName(e));
        return dc_cu_fail(DC_ERR_GPU, "cuda: %s", reason);
    }
    *n_devices = n;
    return DC_OK;
}

static dc_status cu_device_info(int device, dc_cuda_device_info *out) {
    memset(out, 0, sizeof *out);
    struct cudaDeviceProp p;
    dc_status st = dc_cu_status(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
    if (st) return st;
    snprintf(out->name, sizeof out->name, "%.127s", p.name);
    out->cc_major = p.major;
    out->cc_minor = p.minor;
    out->sm_count = p.multiProcessorCount;
    out->total_bytes = p.totalGlobalMem;
    cudaDriverGetVersion(&out->driver_version);
    cudaRuntimeGetVersion(&out->runtime_version);
    int cur = 0;
    if (cudaGetDevice(&cur) == cudaSuccess && cudaSetDevice(device) == cudaSuccess) {
        size_t fr = 0, tot = 0;
        if (cudaMemGetInfo(&fr, &tot) == cudaSuccess) out->free_bytes = fr;
        cudaSetDevice(cur);
    }
    (void)cudaGetLastError();
    return DC_OK;
}

/* ---- devices and stream contexts ---- */

static void device_unref(dc_cu_device *d) {
    pthread_mutex_lock(&d->mu);
    const bool last = --d->refs == 0;
    pthread_mutex_unlock(&d->mu);
    if (!last) return;
    dc_cu_green_destroy(d);
    dc_pool_core_destroy(&d->pool);
    if (d->read_buf) cudaFreeHost(d->read_buf);
    pthread_mutex_destroy(&d->read_mu);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

/* SMs per partition: an equal share rounded down to a multiple of 8 (the split's granularity
 * on Hopper; finer elsewhere), at least 8. */
static uint32_t green_share(int sms, uint32_t want) {
    uint32_t per = want ? (uint32_t)(sms > 0 ? sms : 0) / want : 0;
    per -= per % 8;
    return per < 8 ? 8 : per;
}

static dc_status device_open(const dc_cuda_options *opt, const dc_cuda_device_info *info,
                             dc_cu_device **out) {
    *out = NULL;
    dc_cu_device *d = calloc(1, sizeof *d);
    if (!d) return dc_cu_fail(DC_ERR_OUT_OF_MEMORY, "cuda device state");
    if (pthread_mutex_init(&d->mu, NULL) != 0) {
        free(d);
        return dc_cu_fail(DC_ERR_INTERNAL, "cuda device state: mutex");
    }
    if (pthread_mutex_init(&d->read_mu, NULL) != 0) {
        pthread_mutex_destroy(&d->mu);
        free(d);
        return dc_cu_fail(DC_ERR_INTERNAL, "cuda device state: mutex");
    }
    d->device = opt->device;
    d->sm_count = info->sm_count;
    size_t limit = opt->pool_limit ? opt->pool_limit : info->total_bytes / 10 * 9;
    dc_status st = dc_pool_core_init(&d->pool, limit);
    if (st) {
        pthread_mutex_destroy(&d->read_mu);
        pthread_mutex_destroy(&d->mu);
        free(d);
        return st;
    }
    if (opt->green_partitions >= 2) {
        dc_cuda_partition part;
        dc_cu_green_make(d, opt->green_partitions,
                         green_share(info->sm_count, opt->green_partitions), &part);
    }
    *out = d;
    return DC_OK;
}

/* A stream context on d (takes a reference to it). */
static dc_status context_open(dc_cu_device *d, const dc_cuda_options *opt, int cc_major,
                              int cc_minor, dc_backend **out) {
    *out = NULL;
    dc_backend *be = calloc(1, sizeof *be);
    dc_cu_backend *cb = calloc(1, sizeof *cb);
    if (!be || !cb) {
        free(be);
        free(cb);
        return dc_cu_fail(DC_ERR_OUT_OF_MEMORY, "cuda stream context");
    }
    be->ops = &cuda_ops;
    be->impl = cb;
    cb->device = d->device;
    cb->cc_major = cc_major;
    cb->cc_minor = cc_minor;
    cb->allow_tf32 = opt && opt->allow_tf32;
    cb->graphs = opt && opt->graphs;
    cb->basic_attention = opt && opt->basic_attention;
    cb->partition = -1;
    pthread_mutex_init(&cb->blas_mu, NULL);
    pthread_mutex_init(&cb->file_mu, NULL);
    pthread_mutex_init(&cb->rec_mu, NULL);
    pthread_mutex_init(&cb->graph_st_mu, NULL);
    pthread_mutex_lock(&d->mu);
    d->refs++;
    cb->dev = d;
    const uint32_t n_green = dc_cu_green_count(d);
    const uint32_t part = n_green ? d->next_partition++ % n_green : 0;
    pthread_mutex_unlock(&d->mu);
    dc_status st = dc_cu_enter(cb);
    if (st) goto fail;
    if (n_green && dc_cu_green_stream(d, part, &cb->stream) == DC_OK) {
        cb->partition = (int)part;
        cb->stream_foreign = true;
    } else {
        if (n_green) { /* the partitions exist but this stream could not be put on one */
            pthread_mutex_lock(&d->mu);
            snprintf(d->green_reason, sizeof d->green_reason, "%s", "cuGreenCtxStreamCreate failed");
            pthread_mutex_unlock(&d->mu);
        }
        cb->stream = NULL;
        if ((st = dc_cu_status(cudaStreamCreateWithFlags(&cb->stream, cudaStreamNonBlocking),
                               "cudaStreamCreate")))
            goto fail;
    }
    if ((st = dc_pool_attach(&cb->pool, &d->pool, cb->stream))) goto fail;
    if ((st = dc_cu_gemm_init(cb))) goto fail;
    *out = be;
    return DC_OK;
fail:
    cu_destroy(be);
    return st;
}

static dc_status cu_backend_create(const dc_cuda_host *host, const dc_cuda_options *opt,
                                   dc_backend **out) {
    set_host(host);
    *out = NULL;
    int n = 0;
    char why[160];
    dc_status st = cu_probe(host, &n, why, sizeof why);
    if (st) return st;
    dc_cuda_options o = {.device = 0, .pool_limit = 0, .allow_tf32 = false, .green_partitions = 0,
                         .graphs = false, .basic_attention = false};
    if (opt) o = *opt;
    if (o.device < 0 || o.device >= n)
        return dc_cu_fail(DC_ERR_INVALID_ARGUMENT, "cuda: device %d of %d", o.device, n);
    dc_cuda_device_info info;
    if ((st = cu_device_info(o.device, &info))) return st;
    if ((st = dc_cu_status(cudaSetDevice(o.device), "cudaSetDevice"))) return st;
    dc_cu_device *d = NULL;
    if ((st = device_open(&o, &info, &d))) return st;
    pthread_mutex_lock(&d->mu);
    d->refs++; /* held while the first context opens: a failure there frees d once */
    pthread_mutex_unlock(&d->mu);
    st = context_open(d, &o, info.cc_major, info.cc_minor, out);
    device_unref(d);
    return st;
}

static dc_status cu_stream_open(const dc_cuda_host *host, dc_backend *base,
                                const dc_cuda_options *opt, dc_backend **out) {
    set_host(host);
    *out = NULL;
    if (!base || !base->impl || base->ops != &cuda_ops)
        return dc_cu_fail(DC_ERR_INVALID_ARGUMENT, "cuda stream_open: not a CUDA backend");
    const dc_cu_backend *b = dc_cu_of(base);
    return context_open(b->dev, opt, b->cc_major, b->cc_minor, out);
}

static void cu_stream_info(dc_backend *be, dc_cuda_stream_info *out) {
    memset(out, 0, sizeof *out);
    dc_cu_backend *cb = dc_cu_of(be);
    dc_cu_device *d = cb->dev;
    pthread_mutex_lock(&d->mu);
    out->contexts = d->refs;
    out->green = cb->partition >= 0;
    out->partition = out->green ? (uint32_t)cb->partition : 0;
    out->n_partitions = dc_cu_green_count(d);
    out->sm_count = out->green ? dc_cu_green_sms(d, out->partition) : (uint32_t)d->sm_count;
    if (!out->green) snprintf(out->reason, sizeof out->reason, "%s", d->green_reason);
    pthread_mutex_unlock(&d->mu);
}

static void cu_pool_stats(dc_backend *be, dc_cuda_pool_stats *out) {
    dc_pool_stats(&dc_cu_of(be)->pool, out);
}

static void cu_pool_trim(dc_backend *be) {
    dc_cu_backend *cb = dc_cu_of(be);
    if (dc_cu_enter(cb) == DC_OK) dc_pool_trim(&cb->pool);
}

static dc_status cu_to_half(dc_backend *be, const float *x, void *y, size_t n,
                            dc_gemm_dtype dtype) {
    dc_cu_backend *cb = dc_cu_of(be);
    if (dtype != DC_GEMM_BF16 && dtype != DC_GEMM_F16)
        return dc_cu_fail(DC_ERR_UNSUPPORTED_FORMAT, "to_half: dtype %d is not bf16 or f16",
                          (int)dtype);
    dc_status st = dc_cu_enter(cb);
    if (st || (st = dc_cu_take_sticky(cb))) return st;
    if (!n) return DC_OK;
    return dc_cu_status((cudaError_t)dc_cuk_to_half(cb->stream, x, y, n, dtype == DC_GEMM_BF16),
                        "to_half");
}

static dc_status cu_weights_alloc(dc_backend *be, size_t bytes, void **out) {
    dc_cu_backend *cb = dc_cu_of(be);
    *out = NULL;
    dc_status st = dc_cu_enter(cb);
    return st ? st : dc_pool_weights_alloc(&cb->pool, bytes, out);
}

static void cu_weights_free(dc_backend *be, void *p) {
    if (!p) return;
    dc_cu_backend *cb = dc_cu_of(be);
    if (dc_cu_enter(cb) == DC_OK) cudaStreamSynchronize(cb->stream); /* no kernel still reads it */
    if (!dc_pool_weights_free(&cb->pool, p))
        dc_cu_note(cb, cudaErrorInvalidValue, "weights_free: not a weights_alloc pointer");
}

static const dc_cuda_api cuda_api = {
    .abi = DC_CUDA_ABI,
    .build = DC_CUDA_BUILD_INFO,
    .probe = cu_probe,
    .device_info = cu_device_info,
    .backend_create = cu_backend_create,
    .stream_open = cu_stream_open,
    .stream_info = cu_stream_info,
    .pool_stats = cu_pool_stats,
    .pool_trim = cu_pool_trim,
    .grouped_gemm = dc_cu_grouped_gemm,
    .grouped_gemm_ex = dc_cu_grouped_gemm_ex,
    .to_half = cu_to_half,
    .weights_alloc = cu_weights_alloc,
    .weights_free = cu_weights_free,
    .file_read = dc_cu_file_read,
    .green_split = dc_cu_green_split,
    .file_stats = dc_cu_file_stats,
    .graph_stats = dc_cu_graph_stats,
};

/* The one exported symbol (the library is built with hidden visibility). */
__attribute__((visibility("default"))) const dc_cuda_api *dc_cuda_entry(void);
const dc_cuda_api *dc_cuda_entry(void) { return &cuda_api; }

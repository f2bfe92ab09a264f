/* Linear layers and grouped GEMM on cuBLAS / cuBLASLt.
 *
 * Row-major y[rows, n] = x[rows, k]·Wᵀ is, read column-major, yᵀ (n×rows) = W·xᵀ with W stored
 * k×n (ld k, op T) and xᵀ stored k×rows (ld k, op N): the "TN" layout, which FP8 on Hopper
 * requires anyway. f32 weights run through cublasGemmEx (TF32 tensor cores when the backend
 * allows it); bf16/f16 weights with the activations converted per call and f32 outputs; FP8
 * E4M3 through cuBLASLt with per-tensor scales (weights at load, activations per call, both
 * computed on the device: no synchronisation). NVFP4 / MXFP4 weights are encoded on the host by
 * the CPU codec; on sm_100+ they stay packed and run through cuBLASLt's block-scaled FP4 matmul
 * with the activations quantised per call, elsewhere they are dequantised once on the device to
 * bf16 and run as bf16 weights. Weights are cudaMalloc'ed outside the pool (they live as long as
 * the model; a power-of-two class would waste up to half). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/cu_internal.h"
#include "gpu/fp4_kernels.h"
#include "gpu/kernels.h"
#include "tensor/quant_fp.h"

/* cuBLASLt's block-scaled FP4 matmul (CUDA_R_4F_E2M1, VEC16_UE4M3 / VEC32_UE8M0) came with 12.8 */
#if defined(CUBLAS_VERSION) && CUBLAS_VERSION >= 120800
#define DC_HAVE_LT_FP4 1
#else
#define DC_HAVE_LT_FP4 0
#endif

struct dc_linear {
    uint32_t n, k;
    dc_weight_format fmt;
    /* [n, k] row-major: f32, bf16, f16 or E4M3; FP4 native: packed E2M1 (k/2 bytes a row);
     * FP4 stored: bf16 of E2M1 · block scale (exact; the NVFP4 tensor scale is in alpha) */
    void *w;
    float *bias;    /* [n] f32, or NULL */
    float *w_scale; /* FP8: the weights' dequantisation scale (device scalar) */
    uint8_t *w_sf;  /* FP4 native: the weights' block scales in cuBLASLt's tiled layout */
    float alpha;    /* the product's α: NVFP4's tensor scale, else 1 */
    bool fp4_native;
    size_t bytes;
    char impl[192]; /* dc_cuda_api-independent report: how the layer is held and multiplied */
};

/* The workspace cuBLAS and cuBLASLt use, as NVIDIA recommends for cublasSetWorkspace: 32 MiB
 * from Hopper on, 4 MiB before. */
static size_t workspace_bytes(int cc_major) {
    return cc_major >= 9 ? (size_t)32 << 20 : (size_t)4 << 20;
}

/* The handles and their workspace, in the pool's weights memory so that it counts against the
 * device's cap (left to itself, cuBLAS would cudaMalloc its own per handle, outside the cap).
 * One buffer serves both libraries: every cuBLAS and cuBLASLt call of this context is enqueued
 * on its one stream (under blas_mu), so their kernels run one after the other and never use
 * the workspace at the same time. A cap without room for it fails the context's creation. */
dc_status dc_cu_blas_create(cudaStream_t stream, void *workspace, size_t bytes,
                           cublasHandle_t *out) {
    cublasHandle_t h = NULL;
    dc_status st = dc_cublas_status(cublasCreate(&h), "cublasCreate");
    if (st) return st;
    /* the stream first: cublasSetStream puts the handle back on cuBLAS's own workspace */
    if ((st = dc_cublas_status(cublasSetStream(h, stream), "cublasSetStream")) ||
        (st = dc_cublas_status(cublasSetWorkspace(h, workspace, bytes), "cublasSetWorkspace"))) {
        cublasDestroy(h);
        return st;
    }
    *out = h;
    return DC_OK;
}

dc_status dc_cu_gemm_init(dc_cu_backend *cb) {
    dc_status st;
    const size_t bytes = workspace_bytes(cb->cc_major);
    if ((st = dc_pool_weights_alloc(&cb->pool, bytes, &cb->workspace))) {
        dc_cuda_pool_stats ps;
        dc_pool_stats(&cb->pool, &ps);
        if (ps.limit)
            return dc_cu_fail(st, "cuda stream context: no room for the %zu MiB cuBLAS workspace "
                                  "under the pool's cap of %zu bytes (%zu held: %zu in blocks, "
                                  "%zu weights); raise gpu.memory_fraction",
                              bytes >> 20, ps.limit, ps.in_use + ps.weights, ps.in_use,
                              ps.weights);
        return dc_cu_fail(st, "cuda stream context: cudaMalloc of the %zu MiB cuBLAS workspace",
                          bytes >> 20);
    }
    cb->workspace_bytes = bytes;
    if ((st = dc_cu_blas_create(cb->stream, cb->workspace, bytes, &cb->blas))) return st;
    return dc_cublas_status(cublasLtCreate(&cb->lt), "cublasLtCreate");
}

/* Before the pool view is detached (the workspace is pool memory); the handles go first, so
 * that none holds a freed workspace. */
void dc_cu_gemm_destroy(dc_cu_backend *cb) {
    if (cb->lt) cublasLtDestroy(cb->lt);
    if (cb->blas) cublasDestroy(cb->blas);
    if (cb->workspace) dc_pool_weights_free(&cb->pool, cb->workspace);
    cb->workspace = NULL;
    cb->workspace_bytes = 0;
    cb->lt = NULL;
    cb->blas = NULL;
}

static void linear_free(dc_linear *l) {
    if (!l) return;
    if (l->w) cudaFree(l->w);
    if (l->bias) cudaFree(l->bias);
    if (l->w_scale) cudaFree(l->w_scale);
    if (l->w_sf) cudaFree(l->w_sf);
    free(l);
}

static size_t elem_bytes(dc_weight_format f) {
    switch (f) {
    case DC_WEIGHTS_F32: return 4;
    case DC_WEIGHTS_BF16:
    case DC_WEIGHTS_F16: return 2;
    case DC_WEIGHTS_FP8_E4M3: return 1;
    case DC_WEIGHTS_NVFP4:
    case DC_WEIGHTS_MXFP4: return 1; /* placeholder: fp4_create sizes its own buffers */
    case DC_WEIGHTS_INT8: return 0;
    }
    return 0;
}

static bool is_fp4(dc_weight_format f) { return f == DC_WEIGHTS_NVFP4 || f == DC_WEIGHTS_MXFP4; }
static int fp4_block(dc_weight_format f) {
    return f == DC_WEIGHTS_NVFP4 ? DC_NVFP4_BLOCK : DC_MXFP4_BLOCK;
}
static const char *fp4_name(dc_weight_format f) { return f == DC_WEIGHTS_NVFP4 ? "nvfp4" : "mxfp4"; }

static dc_status gemm_ex(dc_cu_backend *cb, float alpha, int m, int n, int k, const void *a,
                         const void *b, cudaDataType_t ab_type, void *c, cudaDataType_t c_type);

/* ---- FP4 (NVFP4 / MXFP4) ---- */

#define LT(call, what)                                                                         \
    do {                                                                                       \
        if ((st = dc_cublas_status((call), what))) goto done;                                  \
    } while (0)

#if DC_HAVE_LT_FP4
/* The descriptors of one block-scaled FP4 product yᵀ[n, rows] = W·xqᵀ and cuBLASLt's pick. */
typedef struct fp4_mm {
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulPreference_t pref;
    cublasLtMatmulHeuristicResult_t heur;
    int found;
} fp4_mm;

static void fp4_mm_free(fp4_mm *m) {
    if (m->pref) cublasLtMatmulPreferenceDestroy(m->pref);
    if (m->lc) cublasLtMatrixLayoutDestroy(m->lc);
    if (m->lb) cublasLtMatrixLayoutDestroy(m->lb);
    if (m->la) cublasLtMatrixLayoutDestroy(m->la);
    if (m->op) cublasLtMatmulDescDestroy(m->op);
    memset(m, 0, sizeof *m);
}

/* x_sf: the activations' block scales (tiled); m->found = 0 when cuBLASLt has no kernel. */
static dc_status fp4_mm_plan(dc_cu_backend *cb, const dc_linear *l, int rows, const void *x_sf,
                             fp4_mm *m) {
    dc_status st = DC_OK;
    memset(m, 0, sizeof *m);
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    const int32_t mode = l->fmt == DC_WEIGHTS_NVFP4 ? (int32_t)CUBLASLT_MATMUL_MATRIX_SCALE_VEC16_UE4M3
                                                    : (int32_t)CUBLASLT_MATMUL_MATRIX_SCALE_VEC32_UE8M0;
    const void *a_sf = l->w_sf;
    const size_t ws = cb->workspace_bytes;
    LT(cublasLtMatmulDescCreate(&m->op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "fp4 matmul desc");
    LT(cublasLtMatmulDescSetAttribute(m->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta), "transa");
    LT(cublasLtMatmulDescSetAttribute(m->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb), "transb");
    LT(cublasLtMatmulDescSetAttribute(m->op, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode, sizeof mode),
       "a scale mode");
    LT(cublasLtMatmulDescSetAttribute(m->op, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode, sizeof mode),
       "b scale mode");
    LT(cublasLtMatmulDescSetAttribute(m->op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &a_sf, sizeof a_sf),
       "a scales");
    LT(cublasLtMatmulDescSetAttribute(m->op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &x_sf, sizeof x_sf),
       "b scales");
    LT(cublasLtMatrixLayoutCreate(&m->la, CUDA_R_4F_E2M1, l->k, l->n, l->k), "fp4 layout A");
    LT(cublasLtMatrixLayoutCreate(&m->lb, CUDA_R_4F_E2M1, l->k, (uint64_t)rows, l->k), "fp4 layout B");
    LT(cublasLtMatrixLayoutCreate(&m->lc, CUDA_R_32F, l->n, (uint64_t)rows, l->n), "layout C");
    LT(cublasLtMatmulPreferenceCreate(&m->pref), "preference");
    LT(cublasLtMatmulPreferenceSetAttribute(m->pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                            sizeof ws),
       "workspace");
    /* an unsupported combination may answer NOT_SUPPORTED instead of zero results */
    if (cublasLtMatmulAlgoGetHeuristic(cb->lt, m->op, m->la, m->lb, m->lc, m->lc, m->pref, 1,
                                       &m->heur, &m->found) != CUBLAS_STATUS_SUCCESS)
        m->found = 0;
done:
    if (st) fp4_mm_free(m);
    return st;
}
#endif

/* Why this layer cannot take the native FP4 product ("" when it can, so far as the shapes and
 * the device tell; the caller then asks cuBLASLt). */
static void fp4_native_refusal(const dc_cu_backend *cb, const dc_linear *l, char *why, size_t cap) {
    why[0] = '\0';
    if (!DC_HAVE_LT_FP4)
        snprintf(why, cap, "built with cuBLAS older than 12.8");
    else if (cb->cc_major < 10)
        snprintf(why, cap, "compute capability %d.%d has no FP4 matmul", cb->cc_major, cb->cc_minor);
    else if (l->k % 32 || l->n % 16)
        snprintf(why, cap, "cuBLASLt's FP4 matmul wants in_features a multiple of 32 and "
                           "out_features of 16, not %ux%u", l->n, l->k);
}

/* Encodes the weights with the CPU codec; keeps them packed for the native product, or
 * dequantises them on the device to bf16. */
static dc_status fp4_create(dc_cu_backend *cb, dc_linear *l, const float *weight) {
    const size_t count = (size_t)l->n * l->k, blk = (size_t)fp4_block(l->fmt);
    const size_t per_row = l->k / blk, sf_bytes = DC_FP4_SF_BYTES(l->n, per_row);
    const bool nv = l->fmt == DC_WEIGHTS_NVFP4;
    dc_status st = DC_OK;
    uint8_t *packed = malloc(count / 2), *scales = malloc(count / blk), *tiled = NULL;
    void *d_packed = NULL, *d_scales = NULL;
    char why[128] = "";
    if (!packed || !scales) {
        st = dc_cu_fail(DC_ERR_OUT_OF_MEMORY, "linear %ux%u: %s encoding", l->n, l->k, fp4_name(l->fmt));
        goto done;
    }
    float S = 1.0f;
    st = nv ? dc_nvfp4_quantize(weight, count, packed, scales, &S)
            : dc_mxfp4_quantize(weight, count, packed, scales);
    if (st) goto done;
    l->alpha = S;
    fp4_native_refusal(cb, l, why, sizeof why);
#if DC_HAVE_LT_FP4
    if (!why[0]) {
        tiled = calloc(1, sf_bytes);
        if (!tiled) {
            st = dc_cu_fail(DC_ERR_OUT_OF_MEMORY, "linear %ux%u: fp4 scales", l->n, l->k);
            goto done;
        }
        const size_t kb_tiles = (per_row + 3) / 4;
        for (size_t r = 0; r < l->n; r++)
            for (size_t kb = 0; kb < per_row; kb++)
                tiled[DC_FP4_SF_OFFSET(r, kb, kb_tiles)] = scales[r * per_row + kb];
        if ((st = dc_cu_status(cudaMalloc(&l->w, count / 2), "fp4 weights"))) goto done;
        if ((st = dc_cu_status(cudaMalloc((void **)&l->w_sf, sf_bytes), "fp4 weight scales")))
            goto done;
        if ((st = dc_cu_status(cudaMemcpy(l->w, packed, count / 2, cudaMemcpyHostToDevice),
                               "fp4 weights upload")) ||
            (st = dc_cu_status(cudaMemcpy(l->w_sf, tiled, sf_bytes, cudaMemcpyHostToDevice),
                               "fp4 scales upload")))
            goto done;
        fp4_mm m;
        if ((st = fp4_mm_plan(cb, l, 128, l->w_sf, &m))) goto done;
        l->fp4_native = m.found > 0;
        fp4_mm_free(&m);
        if (l->fp4_native) {
            l->bytes = count / 2 + sf_bytes;
            snprintf(l->impl, sizeof l->impl,
                     "%s native: cuBLASLt block-scaled FP4 (%s), activations quantised per call",
                     fp4_name(l->fmt),
                     nv ? "E4M3 scale per 16, f32 tensor scale" : "E8M0 scale per 32");
            goto done;
        }
        snprintf(why, sizeof why, "cuBLASLt offered no FP4 kernel for %ux%u", l->n, l->k);
        cudaFree(l->w);
        cudaFree(l->w_sf);
        l->w = NULL;
        l->w_sf = NULL;
    }
#endif
    /* the storage format: packed on the host and over the bus, bf16 on the device */
    if ((st = dc_cu_status(cudaMalloc(&l->w, count * 2), "fp4 weights as bf16"))) goto done;
    if ((st = dc_pool_alloc(&cb->pool, count / 2, &d_packed)) ||
        (st = dc_pool_alloc(&cb->pool, count / blk, &d_scales)))
        goto done;
    st = dc_cu_status(cudaMemcpyAsync(d_packed, packed, count / 2, cudaMemcpyHostToDevice, cb->stream),
                      "fp4 weights upload");
    if (!st)
        st = dc_cu_status(cudaMemcpyAsync(d_scales, scales, count / blk, cudaMemcpyHostToDevice,
                                          cb->stream),
                          "fp4 scales upload");
    if (!st)
        st = dc_cu_status((cudaError_t)dc_cuk_fp4_to_bf16(cb->stream, d_packed, d_scales, count,
                                                          (int)blk, l->w),
                          "fp4 weights to bf16");
    /* the host buffers must outlive the copies */
    if (!st) st = dc_cu_status(cudaStreamSynchronize(cb->stream), "fp4 weights");
    if (st) goto done;
    l->bytes = count * 2;
    snprintf(l->impl, sizeof l->impl, "%s stored, dequantised to bf16 at load (%s): bf16 cublasGemmEx",
             fp4_name(l->fmt), why);
done:
    if (st && cb->stream) cudaStreamSynchronize(cb->stream);
    dc_pool_release(&cb->pool, d_packed);
    dc_pool_release(&cb->pool, d_scales);
    free(packed);
    free(scales);
    free(tiled);
    return st;
}

#if DC_HAVE_LT_FP4
/* Activations quantised on the device into the weights' format, one block-scaled FP4 product,
 * then y = y·S_x + bias (S_x, NVFP4's activation tensor scale, never leaves the device). */
static dc_status fp4_native_forward(dc_cu_backend *cb, const dc_linear *l, const float *x,
                                    int rows, float *y) {
    const size_t count = (size_t)rows * l->k, blk = (size_t)fp4_block(l->fmt);
    const bool nv = l->fmt == DC_WEIGHTS_NVFP4;
    uint8_t *xq = NULL, *xsf = NULL;
    float *sc = NULL; /* [0] amax, [4] tensor scale (16-byte aligned, as the FP8 path's) */
    fp4_mm m;
    memset(&m, 0, sizeof m);
    dc_status st = dc_pool_alloc(&cb->pool, count / 2, (void **)&xq);
    if (!st) st = dc_pool_alloc(&cb->pool, DC_FP4_SF_BYTES(rows, l->k / blk), (void **)&xsf);
    if (!st) st = dc_pool_alloc(&cb->pool, 8 * sizeof(float), (void **)&sc);
    if (!st && nv) st = dc_cu_status((cudaError_t)dc_cuk_amax(cb->stream, x, count, sc), "amax");
    if (!st)
        st = dc_cu_status((cudaError_t)dc_cuk_fp4_quantize(cb->stream, x, (size_t)rows, l->k,
                                                           (int)blk, sc, sc + 4, xq, xsf),
                          "fp4 activations");
    if (!st) st = fp4_mm_plan(cb, l, rows, xsf, &m);
    if (st) goto done;
    if (!m.found) {
        st = dc_cu_fail(DC_ERR_UNSUPPORTED_FORMAT, "linear: cuBLASLt has no %s kernel for %ux%u, %d rows",
                        fp4_name(l->fmt), l->n, l->k, rows);
        goto done;
    }
    const float zero = 0.0f;
    pthread_mutex_lock(&cb->blas_mu);
    cublasStatus_t s = cublasLtMatmul(cb->lt, m.op, &l->alpha, l->w, m.la, xq, m.lb, &zero, y, m.lc,
                                      y, m.lc, &m.heur.algo, cb->workspace,
                                      cb->workspace_bytes, cb->stream);
    pthread_mutex_unlock(&cb->blas_mu);
    if ((st = dc_cublas_status(s, "cublasLtMatmul fp4"))) goto done;
    st = dc_cu_status((cudaError_t)dc_cuk_scale_bias(cb->stream, y, nv ? sc + 4 : NULL, l->bias,
                                                     (size_t)rows, l->n),
                      "fp4 scale and bias");
done:
    fp4_mm_free(&m);
    dc_pool_release(&cb->pool, xq);
    dc_pool_release(&cb->pool, xsf);
    dc_pool_release(&cb->pool, sc);
    return st;
}
#endif

dc_status dc_cu_linear_new(dc_cu_backend *cb, uint32_t n_out, uint32_t k_in,
                           dc_weight_format fmt, dc_linear **out) {
    *out = NULL;
    if (!n_out || !k_in)
        return dc_cu_fail(DC_ERR_INVALID_ARGUMENT, "linear: empty weight %ux%u", n_out, k_in);
    if (n_out > INT_MAX || k_in > INT_MAX)
        return dc_cu_fail(DC_ERR_INVALID_DIMENSION, "linear: %ux%u exceeds cuBLAS's int", n_out, k_in);
    size_t eb = elem_bytes(fmt);
    if (!eb)
        return dc_cu_fail(DC_ERR_UNSUPPORTED_FORMAT,
                          "linear: the cuda backend has no %s weights (fp32, bf16, fp16, fp8, "
                          "nvfp4, mxfp4)",
                          fmt == DC_WEIGHTS_INT8 ? "int8" : "such");
    /* blocks run along a row (the codec blocks the flat tensor: k must not split one) */
    if (is_fp4(fmt) && k_in % (uint32_t)fp4_block(fmt))
        return dc_cu_fail(DC_ERR_UNSUPPORTED_FORMAT,
                          "linear: %s needs in_features a multiple of its %d-element block (%ux%u)",
                          fp4_name(fmt), fp4_block(fmt), n_out, k_in);
    if (fmt == DC_WEIGHTS_FP8_E4M3) {
        if (cb->cc_major * 10 + cb->cc_minor < 89)
            return dc_cu_fail(DC_ERR_UNSUPPORTED_FORMAT,
                              "linear: fp8 needs compute capability 8.9 or later (device is %d.%d)",
                              cb->cc_major, cb->cc_minor);
        if (k_in % 16 || n_out % 16)
            return dc_cu_fail(DC_ERR_UNSUPPORTED_FORMAT,
                              "linear: fp8 needs dimensions that are multiples of 16 (%ux%u)",
                              n_out, k_in);
    }
    dc_status st = dc_cu_enter(cb);
    if (st || (st = dc_cu_take_sticky(cb))) return st;
    dc_linear *l = calloc(1, sizeof *l);
    if (!l) return dc_cu_fail(DC_ERR_OUT_OF_MEMORY, "linear %ux%u", n_out, k_in);
    l->n = n_out;
    l->k = k_in;
    l->fmt = fmt;
    l->alpha = 1.0f;
    if (!is_fp4(fmt)) { /* fp4_create sizes its own buffers */
        const size_t count = (size_t)n_out * k_in;
        if ((st = dc_cu_status(cudaMalloc(&l->w, count * eb), "linear weights"))) {
            linear_free(l);
            return st;
        }
        l->bytes = count * eb;
        snprintf(l->impl, sizeof l->impl, "%s",
                 fmt == DC_WEIGHTS_F32    ? (cb->allow_tf32 ? "fp32: cublasGemmEx, TF32" : "fp32: cublasGemmEx")
                 : fmt == DC_WEIGHTS_BF16 ? "bf16: cublasGemmEx, activations to bf16 per call"
                 : fmt == DC_WEIGHTS_F16  ? "fp16: cublasGemmEx, activations to fp16 per call"
                                          : "fp8: cuBLASLt E4M3, per-tensor scales");
    }
    *out = l;
    return DC_OK;
}

void *dc_cu_linear_weights(dc_linear *l) { return l->w; }

void dc_cu_linear_free(dc_cu_backend *cb, dc_linear *l) {
    if (cb->stream) cudaStreamSynchronize(cb->stream); /* no copy or kernel still writes it */
    linear_free(l);
}

dc_status dc_cu_linear_from_f32(dc_cu_backend *cb, dc_linear *l, const float *w32) {
    const size_t count = (size_t)l->n * l->k;
    dc_status st = DC_OK;
    float *amax = NULL;
    if (l->fmt == DC_WEIGHTS_F32) {
        if (w32 != l->w)
            st = dc_cu_status(cudaMemcpyAsync(l->w, w32, count * 4, cudaMemcpyDeviceToDevice,
                                              cb->stream),
                              "linear weights copy");
    } else if (l->fmt == DC_WEIGHTS_FP8_E4M3) {
        st = dc_cu_status(cudaMalloc((void **)&l->w_scale, sizeof(float)), "fp8 scale");
        if (!st) st = dc_pool_alloc(&cb->pool, sizeof(float), (void **)&amax);
        if (!st) st = dc_cu_status((cudaError_t)dc_cuk_amax(cb->stream, w32, count, amax), "amax");
        if (!st)
            st = dc_cu_status((cudaError_t)dc_cuk_fp8_quantize(cb->stream, w32, count, amax,
                                                               l->w_scale, l->w),
                              "fp8 weights");
    } else {
        st = dc_cu_status((cudaError_t)dc_cuk_to_half(cb->stream, w32, l->w, count,
                                                      l->fmt == DC_WEIGHTS_BF16),
                          "linear weights conversion");
    }
    /* the caller frees w32 next */
    if (!st) st = dc_cu_status(cudaStreamSynchronize(cb->stream), "linear weights");
    dc_pool_release(&cb->pool, amax);
    return st;
}

dc_status dc_cu_linear_set_bias(dc_linear *l, const float *bias) {
    if (!bias) return DC_OK;
    dc_status st = dc_cu_status(cudaMalloc((void **)&l->bias, (size_t)l->n * 4), "linear bias");
    if (!st)
        st = dc_cu_status(cudaMemcpy(l->bias, bias, (size_t)l->n * 4, cudaMemcpyHostToDevice),
                          "linear bias upload");
    if (!st) l->bytes += (size_t)l->n * 4;
    return st;
}

dc_status dc_cu_linear_create(dc_backend *be, const float *weight, const float *bias,
                              uint32_t n_out, uint32_t k_in, dc_weight_format fmt,
                              dc_linear **out) {
    dc_cu_backend *cb = dc_cu_of(be);
    *out = NULL;
    if (!weight)
        return dc_cu_fail(DC_ERR_INVALID_ARGUMENT, "linear: empty weight %ux%u", n_out, k_in);
    dc_linear *l = NULL;
    dc_status st = dc_cu_linear_new(cb, n_out, k_in, fmt, &l);
    if (st) return st;
    const size_t count = (size_t)n_out * k_in;
    float *tmp = NULL;
    if (is_fp4(fmt)) {
        st = fp4_create(cb, l, weight);
    } else if (fmt == DC_WEIGHTS_F32) {
        st = dc_cu_status(cudaMemcpy(l->w, weight, count * 4, cudaMemcpyHostToDevice),
                          "linear weights upload");
    } else {
        /* upload f32 once, convert on the device */
        st = dc_pool_alloc(&cb->pool, count * 4, (void **)&tmp);
        if (!st)
            st = dc_cu_status(cudaMemcpyAsync(tmp, weight, count * 4, cudaMemcpyHostToDevice,
                                              cb->stream),
                              "linear weights upload");
        if (!st) st = dc_cu_linear_from_f32(cb, l, tmp);
    }
    if (!st) st = dc_cu_linear_set_bias(l, bias);
    if (st) {
        dc_cu_linear_free(cb, l);
        l = NULL;
    }
    dc_pool_release(&cb->pool, tmp);
    *out = l;
    return st;
}

void dc_cu_linear_destroy(dc_backend *be, dc_linear *l) {
    if (!l) return;
    dc_cu_backend *cb = dc_cu_of(be);
    if (dc_cu_enter(cb) == DC_OK) cudaStreamSynchronize(cb->stream); /* no kernel still reads it */
    linear_free(l);
}

size_t dc_cu_linear_bytes(const dc_linear *l) { return l ? l->bytes : 0; }

const char *dc_cu_linear_impl(const dc_linear *l) { return l ? l->impl : ""; }

static dc_status gemm_ex(dc_cu_backend *cb, float alpha, int m, int n, int k, const void *a,
                         const void *b, cudaDataType_t ab_type, void *c, cudaDataType_t c_type) {
    const float zero = 0.0f;
    cublasComputeType_t ct = CUBLAS_COMPUTE_32F;
    if (ab_type == CUDA_R_32F && cb->allow_tf32) ct = CUBLAS_COMPUTE_32F_FAST_TF32;
    pthread_mutex_lock(&cb->blas_mu);
    cublasStatus_t s = cublasGemmEx(cb->blas, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, a, ab_type,
                                    k, b, ab_type, k, &zero, c, c_type, m, ct, CUBLAS_GEMM_DEFAULT);
    pthread_mutex_unlock(&cb->blas_mu);
    return dc_cublas_status(s, "cublasGemmEx");
}

static dc_status fp8_forward(dc_cu_backend *cb, const dc_linear *l, const float *x, int rows,
                             float *y) {
    const size_t count = (size_t)rows * l->k;
    uint8_t *xq = NULL;
    /* [0] amax, [4] scale: cublasLtMatmul refuses (NOT_SUPPORTED, after its heuristic accepted
     * the shapes) a scale pointer that is not 16-byte aligned, as seen on an H200 */
    float *sc = NULL;
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    dc_status st = dc_pool_alloc(&cb->pool, count, (void **)&xq);
    if (!st) st = dc_pool_alloc(&cb->pool, 8 * sizeof(float), (void **)&sc);
    if (!st) st = dc_cu_status((cudaError_t)dc_cuk_amax(cb->stream, x, count, sc), "amax");
    if (!st)
        st = dc_cu_status((cudaError_t)dc_cuk_fp8_quantize(cb->stream, x, count, sc, sc + 4, xq),
                          "fp8 activations");
    if (st) goto done;
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    const float one = 1.0f, zero = 0.0f;
    const float *a_scale = l->w_scale, *b_scale = sc + 4;
    const size_t ws = cb->workspace_bytes;
    LT(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "fp8 matmul desc");
    LT(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta), "transa");
    LT(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb), "transb");
    LT(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &a_scale,
                                      sizeof a_scale),
       "a scale");
    LT(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &b_scale,
                                      sizeof b_scale),
       "b scale");
    LT(cublasLtMatrixLayoutCreate(&la, CUDA_R_8F_E4M3, l->k, l->n, l->k), "layout A");
    LT(cublasLtMatrixLayoutCreate(&lb, CUDA_R_8F_E4M3, l->k, (uint64_t)rows, l->k), "layout B");
    LT(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, l->n, (uint64_t)rows, l->n), "layout C");
    LT(cublasLtMatmulPreferenceCreate(&pref), "preference");
    LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                            sizeof ws),
       "workspace");
    cublasLtMatmulHeuristicResult_t heur;
    int found = 0;
    memset(&heur, 0, sizeof heur);
    LT(cublasLtMatmulAlgoGetHeuristic(cb->lt, op, la, lb, lc, lc, pref, 1, &heur, &found),
       "fp8 heuristic");
    if (!found) {
        st = dc_cu_fail(DC_ERR_UNSUPPORTED_FORMAT, "linear: cuBLASLt has no fp8 kernel for %ux%u, %d rows",
                        l->n, l->k, rows);
        goto done;
    }
    pthread_mutex_lock(&cb->blas_mu);
    cublasStatus_t s = cublasLtMatmul(cb->lt, op, &one, l->w, la, xq, lb, &zero, y, lc, y, lc,
                                      &heur.algo, cb->workspace, ws, cb->stream);
    pthread_mutex_unlock(&cb->blas_mu);
    st = dc_cublas_status(s, "cublasLtMatmul fp8");
done:
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (op) cublasLtMatmulDescDestroy(op);
    dc_pool_release(&cb->pool, xq);
    dc_pool_release(&cb->pool, sc);
    return st;
}

dc_status dc_cu_linear_forward(dc_backend *be, const dc_linear *l, const float *x, size_t rows,
                               float *y) {
    dc_cu_backend *cb = dc_cu_of(be);
    dc_status st = dc_cu_enter(cb);
    if (st || (st = dc_cu_take_sticky(cb))) return st;
    if (!rows) return DC_OK;
    if (rows > INT_MAX) return dc_cu_fail(DC_ERR_INVALID_DIMENSION, "linear: %zu rows", rows);
    switch (l->fmt) {
    case DC_WEIGHTS_F32:
        st = gemm_ex(cb, 1.0f, (int)l->n, (int)rows, (int)l->k, l->w, x, CUDA_R_32F, y, CUDA_R_32F);
        break;
    case DC_WEIGHTS_NVFP4:
    case DC_WEIGHTS_MXFP4:
#if DC_HAVE_LT_FP4
        if (l->fp4_native) return fp4_native_forward(cb, l, x, (int)rows, y); /* adds the bias */
#endif
        /* stored as bf16: the bf16 path, with the NVFP4 tensor scale as α */
        /* fall through */
    case DC_WEIGHTS_BF16:
    case DC_WEIGHTS_F16: {
        const bool bf = l->fmt != DC_WEIGHTS_F16;
        void *xh = NULL;
        st = dc_pool_alloc(&cb->pool, rows * l->k * 2, &xh);
        if (!st)
            st = dc_cu_status((cudaError_t)dc_cuk_to_half(cb->stream, x, xh, rows * l->k, bf),
                              "activations to half");
        if (!st)
            st = gemm_ex(cb, l->alpha, (int)l->n, (int)rows, (int)l->k, l->w, xh,
                         bf ? CUDA_R_16BF : CUDA_R_16F, y, CUDA_R_32F);
        dc_pool_release(&cb->pool, xh);
        break;
    }
    case DC_WEIGHTS_FP8_E4M3: st = fp8_forward(cb, l, x, (int)rows, y); break;
    case DC_WEIGHTS_INT8: st = dc_cu_fail(DC_ERR_UNSUPPORTED_FORMAT, "linear: int8"); break;
    }
    if (!st && l->bias)
        st = dc_cu_status((cudaError_t)dc_cuk_add_bias(cb->stream, y, l->bias, rows, l->n), "bias");
    return st;
}

/* ---- grouped GEMM (fusion experts) ---- */

static cudaDataType_t gemm_type(dc_gemm_dtype t) {
    return t == DC_GEMM_BF16 ? CUDA_R_16BF : t == DC_GEMM_F16 ? CUDA_R_16F : CUDA_R_32F;
}

static const char *gemm_type_name(dc_gemm_dtype t) {
    return t == DC_GEMM_BF16 ? "bf16" : t == DC_GEMM_F16 ? "f16" : t == DC_GEMM_F32 ? "f32" : "?";
}

static bool valid_dtype(dc_gemm_dtype t) {
    return t == DC_GEMM_F32 || t == DC_GEMM_BF16 || t == DC_GEMM_F16;
}

static dc_status grouped_fallback(dc_cu_backend *cb, dc_gemm_dtype in, dc_gemm_dtype out,
                                  const dc_gemm_problem *p, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        if (!p[i].m) continue;
        dc_status st = gemm_ex(cb, 1.0f, (int)p[i].n, (int)p[i].m, (int)p[i].k, p[i].w, p[i].x,
                               gemm_type(in), p[i].y, gemm_type(out));
        if (st) return dc_cu_fail(st, "grouped gemm problem %u: %s", i, "cublasGemmEx failed");
    }
    return DC_OK;
}

#if defined(CUBLAS_VERSION) && CUBLAS_VERSION >= 120500
/* One cublasGemmGroupedBatchedEx over the problems with rows; *declined when the library does
 * not take the type pair (the caller loops cublasGemmEx instead). */
static dc_status grouped_call(dc_cu_backend *cb, dc_gemm_dtype in, dc_gemm_dtype out,
                              const dc_gemm_problem *p, uint32_t n, bool *declined) {
    *declined = false;
    uint32_t g = 0;
    for (uint32_t i = 0; i < n; i++) g += p[i].m != 0;
    if (!g) return DC_OK;
    dc_status st = DC_OK;
    /* host arrays per group (one problem each), device arrays of pointers */
    size_t ints = 7 * (size_t)g;
    int *iv = malloc(ints * sizeof *iv);
    cublasOperation_t *ops = malloc(2 * (size_t)g * sizeof *ops);
    float *ab = malloc(2 * (size_t)g * sizeof *ab);
    const void **hp = malloc(3 * (size_t)g * sizeof *hp);
    void *dp = NULL;
    if (!iv || !ops || !ab || !hp) {
        st = dc_cu_fail(DC_ERR_OUT_OF_MEMORY, "grouped gemm: %u groups", g);
        goto done;
    }
    int *mv = iv, *nv = iv + g, *kv = iv + 2 * g, *lda = iv + 3 * g, *ldb = iv + 4 * g,
        *ldc = iv + 5 * g, *gs = iv + 6 * g;
    uint32_t j = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!p[i].m) continue;
        ops[j] = CUBLAS_OP_T;
        ops[g + j] = CUBLAS_OP_N;
        mv[j] = (int)p[i].n;
        nv[j] = (int)p[i].m;
        kv[j] = (int)p[i].k;
        lda[j] = ldb[j] = (int)p[i].k;
        ldc[j] = (int)p[i].n;
        gs[j] = 1;
        ab[j] = 1.0f;
        ab[g + j] = 0.0f;
        hp[j] = p[i].w;
        hp[g + j] = p[i].x;
        hp[2 * g + j] = p[i].y;
        j++;
    }
    if ((st = dc_pool_alloc(&cb->pool, 3 * (size_t)g * sizeof *hp, &dp))) goto done;
    if ((st = dc_cu_status(cudaMemcpyAsync(dp, hp, 3 * (size_t)g * sizeof *hp,
                                           cudaMemcpyHostToDevice, cb->stream),
                           "grouped gemm pointers")))
        goto done;
    const void *const *da = (const void *const *)dp;
    cudaDataType_t t = gemm_type(in), tc = gemm_type(out);
    pthread_mutex_lock(&cb->blas_mu);
    cublasStatus_t s = cublasGemmGroupedBatchedEx(
        cb->blas, ops, ops + g, mv, nv, kv, ab, da, t, lda, da + g, t, ldb, ab + g,
        (void *const *)(da + 2 * g), tc, ldc, (int)g, gs, CUBLAS_COMPUTE_32F);
    pthread_mutex_unlock(&cb->blas_mu);
    if (s == CUBLAS_STATUS_NOT_SUPPORTED) /* a type combination this library lacks */
        *declined = true;
    else
        st = dc_cublas_status(s, "cublasGemmGroupedBatchedEx");
    /* the host arrays must outlive the enqueue only; the pointer block is stream-ordered */
done:
    dc_pool_release(&cb->pool, dp);
    free(iv);
    free(ops);
    free(ab);
    free(hp);
    return st;
}
#endif

dc_status dc_cu_grouped_gemm_ex(dc_backend *be, dc_gemm_dtype in, dc_gemm_dtype out,
                                const dc_gemm_problem *p, uint32_t n, bool force_fallback) {
    dc_cu_backend *cb = dc_cu_of(be);
    if (!valid_dtype(in) || !valid_dtype(out) || (in != out && (in == DC_GEMM_F32 || out != DC_GEMM_F32)))
        return dc_cu_fail(DC_ERR_UNSUPPORTED_FORMAT,
                          "grouped gemm: %s inputs with %s output (same type, or bf16/f16 to f32)",
                          gemm_type_name(in), gemm_type_name(out));
    dc_status st = dc_cu_enter(cb);
    if (st || (st = dc_cu_take_sticky(cb))) return st;
    for (uint32_t i = 0; i < n; i++)
        if (p[i].m > INT_MAX || p[i].n > INT_MAX || p[i].k > INT_MAX || (p[i].m && (!p[i].n || !p[i].k)))
            return dc_cu_fail(DC_ERR_INVALID_DIMENSION, "grouped gemm problem %u: %ux%ux%u", i,
                              p[i].m, p[i].n, p[i].k);
#if defined(CUBLAS_VERSION) && CUBLAS_VERSION >= 120500
    /* The grouped call's documented types have C of the inputs' type; cuBLAS 13.1 on an H200
     * answers NOT_SUPPORTED for bf16/f16 → f32, so a mixed pair goes straight to the loop
     * (no pointer upload and refused call per batch). */
    if (!force_fallback && in == out) {
        bool declined = false;
        st = grouped_call(cb, in, out, p, n, &declined);
        if (st || !declined) return st;
        /* same math, one call per problem */
    }
#else
    (void)force_fallback;
#endif
    return grouped_fallback(cb, in, out, p, n);
}

dc_status dc_cu_grouped_gemm(dc_backend *be, dc_gemm_dtype dtype, const dc_gemm_problem *p,
                             uint32_t n, bool force_fallback) {
    return dc_cu_grouped_gemm_ex(be, dtype, dtype, p, n, force_fallback);
}

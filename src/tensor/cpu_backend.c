/* The CPU backend: matrix products through oneDNN (2.x C API, weights reordered once into the
 * layout the chosen kernel wants), everything else through cpu_kernels.c.
 *
 * M (token rows) changes with every batch. A matmul primitive with a run-time M
 * (DNNL_RUNTIME_DIM_VAL) serves every batch with one primitive when the library has a fast
 * kernel for it (gemm:jit on AVX2 keeps the plain layout and runs at the fixed-M speed). When it
 * does not (the reference kernel, or none), the weights keep the layout chosen for M = 128 and
 * each call builds a fixed-M primitive with that exact weights layout; oneDNN's primitive
 * cache makes that a few microseconds. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <oneapi/dnnl/dnnl.h>

#include "core/error.h"
#include "tensor/dnnl_matmul.h"
#include "tensor/dnnl_status.h"
#include "tensor/backend.h"
#include "tensor/cpu_kernels.h"
#include "tensor/cpu_parallel.h"
#include "tensor/cpu_linear_quant.h"
#include "tensor/cpu_scratch.h"
#include "tensor/cpu_sgemm.h"
#include "tensor/quant.h"

#if DNNL_VERSION_MAJOR != 2
#error "cpu_backend.c uses the oneDNN 2.x C API (dnnl_matmul_desc_init)"
#endif

typedef struct dc_cpu_backend {
    dnnl_engine_t engine;
    uint32_t threads;
    bool packed_gemm; /* f32 and bf16 layers on cpu_sgemm.c rather than oneDNN */
    bool bf16_pairs;  /* bf16 layers on cpu_sgemm.c's native product where the CPU has it */
} dc_cpu_backend;

typedef enum dc_panels {
    DC_PANELS_NONE,
    DC_PANELS_F32,
    DC_PANELS_BF16,      /* widened to f32 per block */
    DC_PANELS_BF16_PAIRS /* multiplied as bf16 pairs */
} dc_panels;

struct dc_linear {
    uint32_t n, k;
    dnnl_memory_desc_t wmd; /* the prepared weights layout (K×N logical) */
    void *wdata;
    size_t wbytes;
    float *bias; /* NULL when the layer has none */
    dnnl_primitive_desc_t pd_rt; /* run-time-M primitive; NULL on the fixed-M path */
    dnnl_primitive_t prim_rt;
    dc_cpu_qlinear *q; /* bf16 / int8 layers: everything lives there */
    dc_panels panels;  /* wdata holds cpu_sgemm.c's 16-column panels */
    char impl[128];
};

static dc_cpu_backend *cpu_of(dc_backend *be) { return (dc_cpu_backend *)be->impl; }

/* ---- buffers ---- */

static dc_status cpu_alloc(dc_backend *be, size_t bytes, void **out) {
    (void)be;
    void *p = NULL;
    size_t n = bytes ? (bytes + 63) / 64 * 64 : 64;
    if (posix_memalign(&p, 64, n) != 0)
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "allocating %zu bytes", bytes);
    *out = p;
    return DC_OK;
}

static void cpu_release(dc_backend *be, void *ptr) {
    (void)be;
    free(ptr);
}

static dc_status cpu_copy(dc_backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes) memmove(dst, src, bytes);
    return DC_OK;
}

/* ---- matmul ---- */

static dnnl_status_t make_pd(dnnl_engine_t eng, dnnl_dim_t m, uint32_t n, uint32_t k,
                             const dnnl_memory_desc_t *wmd, bool bias, dnnl_primitive_desc_t *pd) {
    dnnl_memory_desc_t a, b, c, bmd;
    dnnl_dims_t ad = {m, k}, bd = {k, n}, cd = {m, n}, biasd = {1, n};
    dnnl_status_t s;
    if ((s = dnnl_memory_desc_init_by_tag(&a, 2, ad, dnnl_f32, dnnl_ab)) != dnnl_success) return s;
    if (wmd) b = *wmd;
    else if ((s = dnnl_memory_desc_init_by_tag(&b, 2, bd, dnnl_f32, dnnl_format_tag_any)) !=
             dnnl_success)
        return s;
    if ((s = dnnl_memory_desc_init_by_tag(&c, 2, cd, dnnl_f32, dnnl_ab)) != dnnl_success) return s;
    if ((s = dnnl_memory_desc_init_by_tag(&bmd, 2, biasd, dnnl_f32, dnnl_ab)) != dnnl_success)
        return s;
    dnnl_matmul_desc_t md;
    if ((s = dnnl_matmul_desc_init(&md, &a, &b, bias ? &bmd : NULL, &c)) != dnnl_success) return s;
    dnnl_primitive_attr_t attr;
    if ((s = dnnl_primitive_attr_create(&attr)) != dnnl_success) return s;
    /* user scratchpad: primitives stay safe to run from several threads at once */
    s = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (s == dnnl_success) s = dnnl_primitive_desc_create(pd, &md, attr, eng, NULL);
    dnnl_primitive_attr_destroy(attr);
    return s;
}

/* Smallest piece handed to a thread, in floats: below it the hand-off costs more than it saves. */
#define DC_PAR_FLOATS 32768

/* ---- f32 and bf16 weights on cpu_sgemm.c: each thread takes a contiguous run of panels ---- */

typedef struct sgemm_job {
    const dc_linear *l;
    const float *w;      /* nn.Linear [n, k] when packing f32 weights */
    const uint16_t *w16; /* the same rounded to bf16, when packing bf16 weights */
    const float *x;
    void *xp; /* x packed in 6-row panels (f32, or bf16 pairs) */
    float *y;
    size_t rows;
    _Atomic bool no_memory; /* a thread found no room for its bf16 scratch */
} sgemm_job;

static void pack_piece(void *ctx, size_t lo, size_t hi, unsigned tid) {
    (void)tid;
    const sgemm_job *j = ctx;
    if (j->l->panels == DC_PANELS_BF16_PAIRS)
        dc_sgemm_pack_weights_pairs(j->w16, j->l->n, j->l->k, j->l->wdata, lo, hi);
    else if (j->w16) dc_sgemm_pack_weights_bf16(j->w16, j->l->n, j->l->k, j->l->wdata, lo, hi);
    else dc_sgemm_pack_weights(j->w, j->l->n, j->l->k, j->l->wdata, lo, hi);
}

static void rows_piece(void *ctx, size_t lo, size_t hi, unsigned tid) {
    (void)tid;
    sgemm_job *j = ctx;
    if (j->l->panels != DC_PANELS_BF16_PAIRS) {
        dc_sgemm_pack_rows(j->x, j->rows, j->l->k, j->xp, lo, hi);
        return;
    }
    uint32_t *tmp = dc_cpu_scratch(DC_SCRATCH_PAIRS, dc_sgemm_pairs_tmp_units(j->l->k) * 4);
    if (!tmp) j->no_memory = true;
    else dc_sgemm_pack_rows_pairs(j->x, j->rows, j->l->k, j->xp, tmp, lo, hi);
}

static void sgemm_piece(void *ctx, size_t lo, size_t hi, unsigned tid) {
    (void)tid;
    sgemm_job *j = ctx;
    const dc_linear *l = j->l;
    if (j->no_memory) return;
    if (l->panels == DC_PANELS_F32) {
        dc_sgemm_run(j->xp, j->rows, l->k, l->wdata, l->bias, l->n, j->y, l->n, lo, hi);
        return;
    }
    if (l->panels == DC_PANELS_BF16_PAIRS) {
        dc_sgemm_run_pairs(j->xp, j->rows, l->k, l->wdata, l->bias, l->n, j->y, l->n, lo, hi);
        return;
    }
    float *work = dc_cpu_scratch(DC_SCRATCH_WIDEN, dc_sgemm_bf16_work_floats() * sizeof(float));
    if (!work) j->no_memory = true;
    else
        dc_sgemm_run_bf16(j->xp, j->rows, l->k, l->wdata, l->bias, l->n, j->y, l->n, lo, hi,
                          work);
}

/* One contiguous run of 16-column panels per thread. */
static void sgemm_over_panels(dc_parallel_fn fn, sgemm_job *j) {
    size_t panels = (j->l->n + DC_SGEMM_NR - 1) / DC_SGEMM_NR, th = dc_cpu_parallel_threads();
    dc_cpu_parallel_for(panels, (panels + th - 1) / th, 0, fn, j);
}

/* Inputs are packed and multiplied this many rows at a time, so the packed rows (at most
 * 576 × k floats: 9 MiB at k = 4096) stay with the calling thread between products instead of
 * being made afresh for every large one. */
#define DC_SGEMM_CHUNK_ROWS 576

static dc_status sgemm_forward(const dc_linear *l, const float *x, size_t rows, float *y) {
    const size_t chunk = rows < DC_SGEMM_CHUNK_ROWS ? rows : DC_SGEMM_CHUNK_ROWS;
    const size_t bytes = l->panels == DC_PANELS_BF16_PAIRS
                             ? dc_sgemm_rows_pairs(chunk, l->k) * sizeof(uint32_t)
                             : dc_sgemm_rows_floats(chunk, l->k) * sizeof(float);
    sgemm_job j = {.l = l};
    if (!(j.xp = dc_cpu_scratch(DC_SCRATCH_SGEMM, bytes)))
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "%zu bytes of packed rows", bytes);
    for (size_t r0 = 0; r0 < rows; r0 += chunk) {
        j.x = x + r0 * l->k;
        j.y = y + r0 * l->n;
        j.rows = rows - r0 < chunk ? rows - r0 : chunk;
        const size_t panels = (j.rows + DC_SGEMM_MR - 1) / DC_SGEMM_MR;
        dc_cpu_parallel_for(panels, (DC_PAR_FLOATS / DC_SGEMM_MR + l->k - 1) / l->k, 0,
                            rows_piece, &j);
        sgemm_over_panels(sgemm_piece, &j);
    }
    if (j.no_memory) return dc_fail(DC_ERR_OUT_OF_MEMORY, "bf16 scratch of the packed GEMM");
    return DC_OK;
}

/* Whether f32 and bf16 layers use cpu_sgemm.c (the default) or oneDNN: DC_CPU_GEMM=auto|packed|
 * onednn. On 2 Zen 4 cores (AVX-512) against oneDNN 2.6's gemm:jit, BERT-base forwards: 1.4-1.6x
 * faster at 1 x 16 tokens, 0.9x at 1 x 128 and 32 x 128 (bench/encoder/README.md). bf16 layers
 * take cpu_sgemm.c's native bf16 product wherever the CPU has one (AVX512-BF16) unless oneDNN
 * is asked for: 1.7-1.9x fp32 there, where oneDNN's (gemm:jit) ran 1.3-1.5x. */
static dc_status choose_gemm(dc_cpu_backend *cpu) {
    const char *e = getenv("DC_CPU_GEMM");
    if (!e || !*e || strcmp(e, "auto") == 0 || strcmp(e, "packed") == 0) cpu->packed_gemm = true;
    else if (strcmp(e, "onednn") == 0) cpu->packed_gemm = false;
    else
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "DC_CPU_GEMM=%s: expected auto, packed or onednn",
                       e);
    cpu->bf16_pairs = !e || strcmp(e, "onednn") != 0;
    return DC_OK;
}

/* f32 weights packed as they are; bf16 ones rounded first (as dc_cpu_qlinear rounds them),
 * then packed at half the bytes: as pairs for the native product, else in panels widened block
 * by block at each forward. */
static dc_status linear_pack(dc_linear *l, const float *weight, dc_weight_format fmt, bool pairs) {
    const bool bf16 = fmt == DC_WEIGHTS_BF16;
    pairs = pairs && bf16;
    l->panels = pairs ? DC_PANELS_BF16_PAIRS : bf16 ? DC_PANELS_BF16 : DC_PANELS_F32;
    const size_t values = pairs ? 2 * dc_sgemm_weights_pairs(l->n, l->k)
                                : dc_sgemm_weights_floats(l->n, l->k),
                 nk = (size_t)l->n * l->k;
    sgemm_job j = {.l = l, .w = weight};
    uint16_t *w16 = NULL;
    if (bf16) {
        if (!(w16 = malloc(nk * sizeof *w16)))
            return dc_fail(DC_ERR_OUT_OF_MEMORY, "%zu bf16 weights", nk);
        dc_quant_bf16_pack(weight, nk, w16);
        j.w16 = w16;
    }
    l->wbytes = values * (bf16 ? sizeof(uint16_t) : sizeof(float));
    if (posix_memalign(&l->wdata, 64, l->wbytes) != 0) {
        l->wdata = NULL;
        free(w16);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "%zu weight bytes", l->wbytes);
    }
    sgemm_over_panels(pack_piece, &j);
    free(w16);
    if (pairs)
        snprintf(l->impl, sizeof l->impl,
                 "dodeca sgemm:avx512bf16 (16-column bf16 pair panels, bf16 native)");
    else
        snprintf(l->impl, sizeof l->impl, "dodeca sgemm:%s (16-column %s panels%s)",
                 dc_sgemm_isa(), bf16 ? "bf16" : "f32", bf16 ? ", widened per block" : "");
    return DC_OK;
}

/* Row-major K×N weights (tag "ab") with a row stride of N rounded up to 16 floats plus 16.
 * BERT/CLIP widths (768, 1024, 3072, 4096 floats) make rows a multiple of 1–16 KiB apart, so
 * the rows a GEMM kernel streams together fall into the same cache sets (and alias in 4 KiB
 * store forwarding); one extra cache line per row spreads them. gemm:jit at 257 × 3072 × 1024
 * on 2 Zen 3 cores: 70 instead of 32 GFLOP per CPU-second. */
static dnnl_status_t padded_weights_md(uint32_t n, uint32_t k, dnnl_memory_desc_t *md) {
    dnnl_dims_t dims = {k, n}, strides = {(dnnl_dim_t)(n + 15) / 16 * 16 + 16, 1};
    return dnnl_memory_desc_init_by_strides(md, 2, dims, dnnl_f32, strides);
}

static void linear_free(dc_linear *l) {
    if (!l) return;
    if (l->prim_rt) dnnl_primitive_destroy(l->prim_rt);
    if (l->pd_rt) dnnl_primitive_desc_destroy(l->pd_rt);
    dc_cpu_qlinear_destroy(l->q);
    free(l->wdata);
    free(l->bias);
    free(l);
}

static dc_status cpu_linear_create(dc_backend *be, const float *weight, const float *bias,
                                   uint32_t n_out, uint32_t k_in, dc_weight_format fmt,
                                   dc_linear **out) {
    dc_cpu_backend *cpu = cpu_of(be);
    dc_status st = DC_OK;
    dnnl_primitive_desc_t pd_fixed = NULL, rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_memory_t src_mem = NULL, dst_mem = NULL;
    dnnl_stream_t stream = NULL;
    *out = NULL;
    if (fmt != DC_WEIGHTS_F32 && fmt != DC_WEIGHTS_BF16 && fmt != DC_WEIGHTS_INT8)
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT, "linear: weight format %d is not supported",
                       (int)fmt);
    if (!weight || n_out == 0 || k_in == 0)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "linear: empty weight %ux%u", n_out, k_in);
    dc_linear *l = calloc(1, sizeof *l);
    if (!l) return dc_fail(DC_ERR_OUT_OF_MEMORY, "linear %ux%u", n_out, k_in);
    l->n = n_out;
    l->k = k_in;
    const bool pairs = cpu->bf16_pairs && dc_sgemm_bf16_native(); /* checked per layer: tests
                                                                      force generic kernels */
    if ((cpu->packed_gemm && (fmt == DC_WEIGHTS_F32 || fmt == DC_WEIGHTS_BF16)) ||
        (pairs && fmt == DC_WEIGHTS_BF16)) {
        st = linear_pack(l, weight, fmt, pairs);
        if (st == DC_OK) goto bias;
        goto done;
    }
    if (fmt != DC_WEIGHTS_F32) {
        st = dc_cpu_qlinear_create(cpu->engine, weight, bias, n_out, k_in, fmt, &l->q);
        if (st == DC_OK) snprintf(l->impl, sizeof l->impl, "%s", dc_cpu_qlinear_impl(l->q));
        goto done;
    }

    /* Prefer one run-time-M primitive on row-major K×N weights whose row stride is padded
     * past N (padded_weights_md); then the layout oneDNN picks; then fixed-M primitives. */
    dnnl_memory_desc_t padded;
    dnnl_status_t s = padded_weights_md(n_out, k_in, &padded);
    if (s == dnnl_success)
        s = make_pd(cpu->engine, DNNL_RUNTIME_DIM_VAL, n_out, k_in, &padded, bias != NULL,
                    &l->pd_rt);
    if (s == dnnl_success) {
        dc_dnnl_impl_name(l->pd_rt, l->impl, sizeof l->impl);
        if (strstr(l->impl, "ref")) {
            dnnl_primitive_desc_destroy(l->pd_rt);
            s = dnnl_unimplemented;
        }
    }
    if (s != dnnl_success)
        s = make_pd(cpu->engine, DNNL_RUNTIME_DIM_VAL, n_out, k_in, NULL, bias != NULL,
                    &l->pd_rt);
    if (s == dnnl_success) {
        dc_dnnl_impl_name(l->pd_rt, l->impl, sizeof l->impl);
        if (strstr(l->impl, "ref")) {
            dnnl_primitive_desc_destroy(l->pd_rt);
            l->pd_rt = NULL;
        }
    } else {
        l->pd_rt = NULL;
    }
    const dnnl_memory_desc_t *chosen;
    if (l->pd_rt) {
        DNNL_TRY(dnnl_primitive_create(&l->prim_rt, l->pd_rt), "matmul primitive");
        chosen = dnnl_primitive_desc_query_md(l->pd_rt, dnnl_query_weights_md, 0);
    } else {
        DNNL_TRY(make_pd(cpu->engine, 128, n_out, k_in, NULL, bias != NULL, &pd_fixed),
                 "matmul descriptor");
        dc_dnnl_impl_name(pd_fixed, l->impl, sizeof l->impl);
        chosen = dnnl_primitive_desc_query_md(pd_fixed, dnnl_query_weights_md, 0);
    }
    l->wmd = *chosen;
    l->wbytes = dnnl_memory_desc_get_size(&l->wmd);
    if (posix_memalign(&l->wdata, 64, l->wbytes ? l->wbytes : 64) != 0) {
        l->wdata = NULL;
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "linear %ux%u: %zu weight bytes", n_out, k_in,
                     l->wbytes);
        goto done;
    }
    memset(l->wdata, 0, l->wbytes); /* the padding past N in each row is never written else */
    /* nn.Linear's [N, K] row-major is the K×N matrix Wᵀ with strides (1, K): tag "ba". */
    dnnl_memory_desc_t user;
    dnnl_dims_t wd = {k_in, n_out};
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&user, 2, wd, dnnl_f32, dnnl_ba), "weights descriptor");
    DNNL_TRY(dnnl_memory_create(&src_mem, &user, cpu->engine, (void *)weight), "weights memory");
    DNNL_TRY(dnnl_memory_create(&dst_mem, &l->wmd, cpu->engine, l->wdata), "packed memory");
    DNNL_TRY(dnnl_reorder_primitive_desc_create(&rpd, &user, cpu->engine, &l->wmd, cpu->engine,
                                                NULL),
             "weights reorder descriptor");
    DNNL_TRY(dnnl_primitive_create(&reorder, rpd), "weights reorder");
    DNNL_TRY(dnnl_stream_create(&stream, cpu->engine, dnnl_stream_default_flags), "stream");
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, src_mem}, {DNNL_ARG_TO, dst_mem}};
    DNNL_TRY(dnnl_primitive_execute(reorder, stream, 2, args), "weights reorder");
    DNNL_TRY(dnnl_stream_wait(stream), "weights reorder");
bias:
    if (bias) {
        l->bias = malloc((size_t)n_out * sizeof *l->bias);
        if (!l->bias) {
            st = dc_fail(DC_ERR_OUT_OF_MEMORY, "linear bias %u", n_out);
            goto done;
        }
        memcpy(l->bias, bias, (size_t)n_out * sizeof *l->bias);
    }
done:
    if (stream) dnnl_stream_destroy(stream);
    if (reorder) dnnl_primitive_destroy(reorder);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (src_mem) dnnl_memory_destroy(src_mem);
    if (dst_mem) dnnl_memory_destroy(dst_mem);
    if (pd_fixed) dnnl_primitive_desc_destroy(pd_fixed);
    if (st != DC_OK) {
        linear_free(l);
        return dc_fail_context(st, "linear %ux%u", n_out, k_in);
    }
    *out = l;
    return DC_OK;
}

static void cpu_linear_destroy(dc_backend *be, dc_linear *l) {
    (void)be;
    linear_free(l);
}

static dc_status cpu_linear_forward(dc_backend *be, const dc_linear *l, const float *x,
                                    size_t rows, float *y) {
    dc_cpu_backend *cpu = cpu_of(be);
    dc_status st = DC_OK;
    if (rows == 0) return DC_OK;
    if (l->q) {
        st = dc_cpu_qlinear_forward(cpu->engine, l->q, x, rows, y);
        return st ? dc_fail_context(st, "linear %ux%u on %zu rows", l->n, l->k, rows) : DC_OK;
    }
    if (l->panels != DC_PANELS_NONE) {
        st = sgemm_forward(l, x, rows, y);
        return st ? dc_fail_context(st, "linear %ux%u on %zu rows", l->n, l->k, rows) : DC_OK;
    }
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    const_dnnl_primitive_desc_t use_pd = l->pd_rt;
    dnnl_primitive_t use_prim = l->prim_rt;
    if (!use_pd) {
        DNNL_TRY(make_pd(cpu->engine, (dnnl_dim_t)rows, l->n, l->k, &l->wmd, l->bias != NULL, &pd),
                 "matmul descriptor");
        DNNL_TRY(dnnl_primitive_create(&prim, pd), "matmul primitive");
        use_pd = pd;
        use_prim = prim;
    }
    dc_dnnl_matmul_args a = {.rows = rows, .k = l->k, .n = l->n, .sdt = dnnl_f32, .x = x,
                             .ddt = dnnl_f32, .ldd = l->n, .y = y, .wmd = &l->wmd, .w = l->wdata,
                             .bias = l->bias};
    st = dc_dnnl_matmul_execute(cpu->engine, use_pd, use_prim, &a);
done:
    if (prim) dnnl_primitive_destroy(prim);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (st != DC_OK) return dc_fail_context(st, "linear %ux%u on %zu rows", l->n, l->k, rows);
    return DC_OK;
}

static size_t cpu_linear_bytes(const dc_linear *l) {
    if (l && l->q) return sizeof *l + dc_cpu_qlinear_bytes(l->q);
    return l ? sizeof *l + l->wbytes + (l->bias ? (size_t)l->n * sizeof(float) : 0) : 0;
}

const char *dc_cpu_linear_impl(const dc_linear *l) { return l ? l->impl : ""; }

/* ---- the rest: cpu_kernels.c, spread over the OpenMP team oneDNN uses (cpu_parallel.h) ---- */

/* Attention below this many multiply-adds (QKᵀ and PV) runs on the calling thread. */
#define DC_PAR_ATTN_FMAS 1000000.0

static size_t rows_grain(size_t cols) {
    size_t g = cols ? DC_PAR_FLOATS / cols : 1;
    return g ? g : 1;
}

typedef struct rows_job {
    const float *x, *residual, *gamma, *beta;
    float *y;
    float eps;
    size_t rows, cols;
    dc_activation act;
    const float *t0, *t1, *t2;
    const uint32_t *i0, *i1, *i2;
} rows_job;

static void ln_piece(void *ctx, size_t lo, size_t hi, unsigned tid) {
    (void)tid;
    const rows_job *j = ctx;
    size_t o = lo * j->cols;
    dc_kernel_layernorm(j->x + o, j->residual ? j->residual + o : NULL, j->gamma, j->beta, j->eps,
                        hi - lo, j->cols, j->y + o);
}

static void cpu_layernorm(dc_backend *be, const float *x, const float *residual,
                          const float *gamma, const float *beta, float eps, size_t rows,
                          size_t cols, float *y) {
    (void)be;
    rows_job j = {.x = x, .residual = residual, .gamma = gamma, .beta = beta, .y = y, .eps = eps,
                  .cols = cols};
    dc_cpu_parallel_for(rows, rows_grain(cols), 0, ln_piece, &j);
}

static void act_piece(void *ctx, size_t lo, size_t hi, unsigned tid) {
    (void)tid;
    const rows_job *j = ctx;
    dc_kernel_activation(j->act, j->y + lo, hi - lo);
}

static void cpu_activation(dc_backend *be, dc_activation act, float *x, size_t n) {
    (void)be;
    if (act == DC_ACT_NONE) return;
    rows_job j = {.y = x, .act = act};
    dc_cpu_parallel_for(n, DC_PAR_FLOATS, 0, act_piece, &j);
}

static void add_piece(void *ctx, size_t lo, size_t hi, unsigned tid) {
    (void)tid;
    const rows_job *j = ctx;
    dc_kernel_add(j->y + lo, j->x + lo, hi - lo);
}

static void cpu_add(dc_backend *be, float *y, const float *x, size_t n) {
    (void)be;
    rows_job j = {.x = x, .y = y};
    dc_cpu_parallel_for(n, 2 * DC_PAR_FLOATS, 0, add_piece, &j);
}

static void cpu_copy_rows(dc_backend *be, float *dst, const uint32_t *dst_rows, const float *src,
                          const uint32_t *src_rows, size_t n, size_t cols) {
    (void)be;
    for (size_t i = 0; i < n; i++)
        memcpy(dst + (dst_rows ? dst_rows[i] : i) * cols, src + (src_rows ? src_rows[i] : i) * cols,
               cols * sizeof *dst);
}

static void col_max_piece(void *ctx, size_t lo, size_t hi, unsigned tid) {
    (void)tid;
    const rows_job *j = ctx;
    dc_kernel_col_max(j->x + lo, j->rows, hi - lo, j->cols, j->y + lo);
}

/* Column ranges, each over every row: a piece reads runs of its columns from each row. */
static void cpu_col_max(dc_backend *be, const float *x, size_t rows, size_t cols, float *w) {
    (void)be;
    rows_job j = {.x = x, .y = w, .rows = rows, .cols = cols};
    size_t grain = rows ? (2 * DC_PAR_FLOATS + rows - 1) / rows : cols;
    dc_cpu_parallel_for(cols, grain < 64 ? 64 : grain, 0, col_max_piece, &j);
}

static void embed_piece(void *ctx, size_t lo, size_t hi, unsigned tid) {
    (void)tid;
    const rows_job *j = ctx;
    dc_kernel_embed_sum(hi - lo, j->cols, j->t0, j->t0 ? j->i0 + lo : NULL, j->t1,
                        j->t1 ? j->i1 + lo : NULL, j->t2, j->t2 ? j->i2 + lo : NULL,
                        j->y + lo * j->cols);
}

static void cpu_embed_sum(dc_backend *be, size_t rows, size_t cols, const float *t0,
                          const uint32_t *i0, const float *t1, const uint32_t *i1,
                          const float *t2, const uint32_t *i2, float *out) {
    (void)be;
    rows_job j = {.y = out, .cols = cols, .t0 = t0, .t1 = t1, .t2 = t2, .i0 = i0, .i1 = i1, .i2 = i2};
    dc_cpu_parallel_for(rows, rows_grain(cols), 0, embed_piece, &j);
}

/* Attention: every (sequence, head) pair is one work item for the banded kernel (full
 * attention is the unbounded band); each thread has its own scores and transposed keys. */
typedef struct attn_job {
    const float *q, *k, *v;
    float *out;
    size_t ld_q, ld_kv, ld_out;
    uint32_t n_heads, head_dim;
    float scale;
    const dc_seq_batch *seqs;
    const dc_attn_opts *o;
    const uint32_t *qpos, *qfirst; /* o->rows as sequence positions; each sequence's first entry */
    const uint32_t *glist, *gfirst; /* global positions of every sequence; its first entry */
    float *work;
    size_t per_thread, kt_off;
} attn_job;

static void attn_piece(void *ctx, size_t lo, size_t hi, unsigned tid) {
    const attn_job *j = ctx;
    const dc_attn_opts *o = j->o;
    float *sc = j->work + tid * j->per_thread, *kt = sc + j->kt_off;
    for (size_t it = lo; it < hi; it++) {
        uint32_t s = (uint32_t)(it / j->n_heads), h = (uint32_t)(it % j->n_heads);
        size_t r0 = j->seqs->start[s];
        uint32_t len = j->seqs->start[s + 1] - j->seqs->start[s];
        if (!len) continue;
        uint32_t ng = j->gfirst[s + 1] - j->gfirst[s];
        const uint32_t *gl = j->glist + j->gfirst[s];
        const uint8_t *gflag = ng ? o->global_mask + r0 : NULL;
        const uint8_t *km = j->seqs->key_mask ? j->seqs->key_mask + r0 : NULL;
        const float *kk = j->k + r0 * j->ld_kv, *vv = j->v + r0 * j->ld_kv;
        if (!o->rows) {
            dc_kernel_attention_head(j->q + r0 * j->ld_q, j->ld_q, kk, vv, j->ld_kv,
                                     j->out + r0 * j->ld_out, j->ld_out, len, km, h, j->head_dim,
                                     j->scale, o->left, o->right, NULL, len, gl, ng, gflag, true,
                                     kt, sc);
            continue;
        }
        uint32_t first = j->qfirst[s], nq = j->qfirst[s + 1] - first;
        if (!nq) continue;
        dc_kernel_attention_head(j->q + (size_t)first * j->ld_q, j->ld_q, kk, vv, j->ld_kv,
                                 j->out + (size_t)first * j->ld_out, j->ld_out, len, km, h,
                                 j->head_dim, j->scale, o->left, o->right, j->qpos + first, nq,
                                 gl, ng, gflag, false, kt, sc);
    }
}

/* Per sequence: its global positions and its slice of the query rows; then the items. */
static dc_status cpu_attention_ex(dc_backend *be, const float *q, size_t ld_q, const float *k,
                                  const float *v, size_t ld_kv, float *out, size_t ld_out,
                                  uint32_t n_heads, uint32_t head_dim, float scale,
                                  const dc_seq_batch *seqs, const dc_attn_opts *o) {
    (void)be;
    if (!o) return dc_fail(DC_ERR_INVALID_ARGUMENT, "attention: NULL options");
    uint32_t longest = 0, most_glob = 0, n_glob = 0;
    for (uint32_t s = 0; s < seqs->n_seqs; s++) {
        if (seqs->start[s + 1] < seqs->start[s])
            return dc_fail(DC_ERR_INVALID_ARGUMENT, "attention: sequence %u ends before it starts", s);
        uint32_t len = seqs->start[s + 1] - seqs->start[s], g = 0;
        if (len > longest) longest = len;
        if (o->global_mask)
            for (uint32_t r = seqs->start[s]; r < seqs->start[s + 1]; r++) g += o->global_mask[r] != 0;
        if (g > most_glob) most_glob = g;
        n_glob += g;
    }
    for (uint32_t i = 0; o->rows && i < o->n_rows; i++)
        if (o->rows[i] >= seqs->start[seqs->n_seqs] || (i && o->rows[i] <= o->rows[i - 1]))
            return dc_fail(DC_ERR_INVALID_ARGUMENT, "attention: query row list is not ascending in range");
    uint64_t wide = (uint64_t)o->left + o->right + 1;
    size_t band = wide > longest ? longest : (size_t)wide;
    unsigned threads = dc_cpu_parallel_threads();
    size_t kt_off = (dc_kernel_attention_scores_floats(band, most_glob) + 15) / 16 * 16;
    size_t per_thread = kt_off + (dc_kernel_attention_kv_floats(longest, head_dim) + 15) / 16 * 16;
    float *work = NULL;
    uint32_t *glist = malloc(((size_t)n_glob + 1) * sizeof *glist);
    uint32_t *gfirst = malloc(((size_t)seqs->n_seqs + 1) * sizeof *gfirst);
    uint32_t *qfirst = malloc(((size_t)seqs->n_seqs + 1) * sizeof *qfirst);
    uint32_t *qpos = malloc(((o->rows ? (size_t)o->n_rows : 0) + 1) * sizeof *qpos);
    if (posix_memalign((void **)&work, 64, threads * per_thread * sizeof *work) != 0) work = NULL;
    if (!work || !glist || !gfirst || !qfirst || !qpos) {
        free(work);
        free(glist);
        free(gfirst);
        free(qfirst);
        free(qpos);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "attention work for %zu keys", band + most_glob);
    }
    uint32_t ng = 0, qi = 0;
    for (uint32_t s = 0; s < seqs->n_seqs; s++) {
        uint32_t r0 = seqs->start[s], len = seqs->start[s + 1] - r0;
        gfirst[s] = ng;
        for (uint32_t r = 0; o->global_mask && r < len; r++)
            if (o->global_mask[r0 + r]) glist[ng++] = r;
        qfirst[s] = qi;
        while (o->rows && qi < o->n_rows && o->rows[qi] < r0 + len) {
            qpos[qi] = o->rows[qi] - r0;
            qi++;
        }
    }
    gfirst[seqs->n_seqs] = ng;
    qfirst[seqs->n_seqs] = qi;
    attn_job j = {q, k, v, out, ld_q, ld_kv, ld_out, n_heads, head_dim, scale, seqs, o,
                  qpos, qfirst, glist, gfirst, work, per_thread, kt_off};
    double fmas = 0;
    for (uint32_t s = 0; s < seqs->n_seqs; s++) {
        double len = seqs->start[s + 1] - seqs->start[s];
        fmas += 2.0 * len * (len < (double)band ? len : (double)band) * n_heads * head_dim;
    }
    dc_cpu_parallel_for((size_t)seqs->n_seqs * n_heads, 1, fmas < DC_PAR_ATTN_FMAS ? 1 : threads,
                        attn_piece, &j);
    free(work);
    free(glist);
    free(gfirst);
    free(qfirst);
    free(qpos);
    return DC_OK;
}

static dc_status cpu_attention(dc_backend *be, const float *q, size_t ld_q, const float *k,
                               const float *v, size_t ld_kv, float *out, size_t ld_out,
                               uint32_t n_heads, uint32_t head_dim, float scale,
                               const dc_seq_batch *seqs) {
    const dc_attn_opts full = {DC_ATTN_UNBOUNDED, DC_ATTN_UNBOUNDED, NULL, NULL, 0};
    return cpu_attention_ex(be, q, ld_q, k, v, ld_kv, out, ld_out, n_heads, head_dim, scale, seqs,
                            &full);
}

static void cpu_destroy(dc_backend *be) {
    if (!be) return;
    dc_cpu_backend *cpu = cpu_of(be);
    if (cpu) {
        if (cpu->engine) dnnl_engine_destroy(cpu->engine);
        free(cpu);
    }
    free(be);
}

static const dc_backend_ops cpu_ops = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .release = cpu_release,
    .upload = cpu_copy,
    .download = cpu_copy,
    .linear_create = cpu_linear_create,
    .linear_destroy = cpu_linear_destroy,
    .linear_forward = cpu_linear_forward,
    .layernorm = cpu_layernorm,
    .activation = cpu_activation,
    .add = cpu_add,
    .copy_rows = cpu_copy_rows,
    .col_max = cpu_col_max,
    .embed_sum = cpu_embed_sum,
    .attention = cpu_attention,
    .attention_ex = cpu_attention_ex,
    .linear_bytes = cpu_linear_bytes,
    .linear_impl = dc_cpu_linear_impl,
    .destroy = cpu_destroy,
};

dc_status dc_backend_cpu_create(const dc_cpu_backend_options *opt, dc_backend **out) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "backend: NULL output");
    *out = NULL;
    dc_backend *be = calloc(1, sizeof *be);
    dc_cpu_backend *cpu = calloc(1, sizeof *cpu);
    if (!be || !cpu) {
        free(be);
        free(cpu);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "cpu backend");
    }
    be->ops = &cpu_ops;
    be->impl = cpu;
    cpu->threads = opt ? opt->threads : 0;
    dc_status st = choose_gemm(cpu);
    if (st != DC_OK) {
        cpu_destroy(be);
        return st;
    }
    dnnl_status_t s = dnnl_engine_create(&cpu->engine, dnnl_cpu, 0);
    if (s != dnnl_success) {
        cpu->engine = NULL;
        cpu_destroy(be);
        return dc_fail(DC_ERR_INTERNAL, "oneDNN cpu engine: %s", dc_dnnl_status_text(s));
    }
    *out = be;
    return DC_OK;
}

void dc_backend_destroy(dc_backend *be) {
    if (be && be->ops && be->ops->destroy) be->ops->destroy(be);
}

/* oneDNN runs on libgomp, which the library reaches only through libdnnl; look
 * omp_set_num_threads up at run time instead of linking OpenMP ourselves. */
typedef void (*dc_omp_set_fn)(int);
static dc_omp_set_fn dc_omp_set;
static pthread_once_t dc_omp_once = PTHREAD_ONCE_INIT;

static void dc_omp_lookup(void) {
    void *self = dlopen(NULL, RTLD_NOW);
    if (!self) return;
    void *sym = dlsym(self, "omp_set_num_threads");
    memcpy(&dc_omp_set, &sym, sizeof dc_omp_set);
    dlclose(self);
}

void dc_backend_cpu_bind_threads(dc_backend *be) {
    if (!be || be->ops != &cpu_ops) return;
    uint32_t n = cpu_of(be)->threads;
    if (!n) return; /* OpenMP's own default: OMP_NUM_THREADS or every core */
    pthread_once(&dc_omp_once, dc_omp_lookup);
    if (dc_omp_set) dc_omp_set((int)n);
}

/* bf16 and int8 linear layers of the CPU backend (cpu_linear_quant.h). */
#include "tensor/cpu_linear_quant.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tensor/dnnl_matmul.h"
#include "tensor/cpu_parallel.h"
#include "tensor/cpu_scratch.h"
#include "tensor/dnnl_status.h"
#include "tensor/quant.h"

/* One matrix product y[m, n] (row stride ldd) = x[m, k]·B[k, n] (+ bias) with fixed types and
 * weights layout. Like the f32 path: one run-time-M primitive when oneDNN has a real kernel
 * for it, otherwise a fixed-M primitive per call (oneDNN's primitive cache keeps that cheap). */
typedef struct qmm {
    dnnl_data_type_t sdt, wdt, ddt;
    uint32_t n, k;
    dnnl_dim_t ldd;
    bool bias;
    bool accumulate; /* y += product (a sum post-op) instead of y = product */
    dnnl_memory_desc_t wmd;
    dnnl_primitive_desc_t pd_rt; /* NULL on the fixed-M path */
    dnnl_primitive_t prim_rt;
    char impl[48];
} qmm;

struct dc_cpu_qlinear {
    dc_weight_format fmt;
    uint32_t n, k;
    qmm mm, tail;   /* bf16 blocks: mm is one block of nb channels, tail the last n % nb */
    uint32_t nb;    /* bf16 blocks; 0 elsewhere */
    void *wdata;    /* packed s8 / bf16 weights (mm.wmd), or plain bf16 [n, k] for blocks */
    uint32_t *col_off; /* int8 in a brgemm kernel's blocked layout: where each output column's
                          weights start, relative to their row k's (blocked_offset) */
    size_t wbytes;
    float *wscale;  /* int8: per output channel */
    int32_t *colsum;
    dc_int8_ranges r;
    float *bias;
    char impl[96];
};

/* wmd NULL: let oneDNN choose the weights layout. */
static dnnl_status_t qmm_pd(dnnl_engine_t eng, const qmm *q, dnnl_dim_t m,
                            const dnnl_memory_desc_t *wmd, dnnl_primitive_desc_t *pd) {
    dnnl_memory_desc_t a, b, c, bmd;
    dnnl_dims_t ad = {m, q->k}, bd = {q->k, q->n}, cd = {m, q->n}, cs = {q->ldd, 1},
                biasd = {1, q->n};
    dnnl_status_t s;
    if ((s = dnnl_memory_desc_init_by_tag(&a, 2, ad, q->sdt, dnnl_ab))) return s;
    if (wmd) b = *wmd;
    else if ((s = dnnl_memory_desc_init_by_tag(&b, 2, bd, q->wdt, dnnl_format_tag_any)))
        return s;
    if ((s = dnnl_memory_desc_init_by_strides(&c, 2, cd, q->ddt, cs))) return s;
    if ((s = dnnl_memory_desc_init_by_tag(&bmd, 2, biasd, dnnl_f32, dnnl_ab))) return s;
    dnnl_matmul_desc_t md;
    if ((s = dnnl_matmul_desc_init(&md, &a, &b, q->bias ? &bmd : NULL, &c))) return s;
    dnnl_primitive_attr_t attr;
    if ((s = dnnl_primitive_attr_create(&attr))) return s;
    /* user scratchpad: one primitive may run from several threads at once */
    s = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (s == dnnl_success && q->accumulate) {
        dnnl_post_ops_t ops;
        if ((s = dnnl_post_ops_create(&ops)) == dnnl_success) {
            s = dnnl_post_ops_append_sum(ops, 1.0f);
            if (s == dnnl_success) s = dnnl_primitive_attr_set_post_ops(attr, ops);
            dnnl_post_ops_destroy(ops);
        }
    }
    if (s == dnnl_success) s = dnnl_primitive_desc_create(pd, &md, attr, eng, NULL);
    dnnl_primitive_attr_destroy(attr);
    return s;
}

static void qmm_free(qmm *q) {
    if (q->prim_rt) dnnl_primitive_destroy(q->prim_rt);
    if (q->pd_rt) dnnl_primitive_desc_destroy(q->pd_rt);
    q->prim_rt = NULL;
    q->pd_rt = NULL;
}

/* Chooses the primitive and the weights layout (q->wmd): `plain` keeps B as nn.Linear's [n, k]
 * rows (tag ba of the k×n matrix, row stride ldw); otherwise oneDNN picks. Refuses oneDNN's
 * reference kernels (DC_ERR_UNSUPPORTED_FORMAT) unless allow_ref. */
static dc_status qmm_prepare(dnnl_engine_t eng, qmm *q, bool plain, dnnl_dim_t ldw,
                             bool allow_ref) {
    dc_status st = DC_OK;
    dnnl_primitive_desc_t pd_fixed = NULL;
    dnnl_memory_desc_t plain_md;
    dnnl_dims_t bd = {q->k, q->n}, bs = {1, ldw};
    DNNL_TRY(dnnl_memory_desc_init_by_strides(&plain_md, 2, bd, q->wdt, bs), "weights descriptor");
    if (qmm_pd(eng, q, DNNL_RUNTIME_DIM_VAL, plain ? &plain_md : NULL, &q->pd_rt) == dnnl_success) {
        dc_dnnl_impl_name(q->pd_rt, q->impl, sizeof q->impl);
        if (strstr(q->impl, "ref")) qmm_free(q);
    } else {
        q->pd_rt = NULL;
    }
    if (q->pd_rt) {
        DNNL_TRY(dnnl_primitive_create(&q->prim_rt, q->pd_rt), "matmul primitive");
        q->wmd = *dnnl_primitive_desc_query_md(q->pd_rt, dnnl_query_weights_md, 0);
    } else {
        dnnl_status_t s = qmm_pd(eng, q, 128, plain ? &plain_md : NULL, &pd_fixed);
        if (s == dnnl_success) dc_dnnl_impl_name(pd_fixed, q->impl, sizeof q->impl);
        if (s == dnnl_unimplemented || (s == dnnl_success && !allow_ref && strstr(q->impl, "ref"))) {
            st = dc_fail(DC_ERR_UNSUPPORTED_FORMAT, "no oneDNN matmul for these types on this CPU");
            goto done;
        }
        DNNL_TRY(s, "matmul descriptor");
        q->wmd = *dnnl_primitive_desc_query_md(pd_fixed, dnnl_query_weights_md, 0);
    }
done:
    if (pd_fixed) dnnl_primitive_desc_destroy(pd_fixed);
    if (st != DC_OK) qmm_free(q);
    return st;
}

/* Fixed-M primitives on the weights layout oneDNN picks, where that is a brgemm kernel (VNNI,
 * AMX): oneDNN 2.6 runs u8·s8 with a run-time M only on gemm:jit, which packs the weights again
 * at every call, so at 16 rows int8 was barely faster than f32 on Zen 4. Each call then makes a
 * primitive for its row count (qmm_run), which oneDNN's primitive cache keeps. */
static dc_status qmm_prepare_blocked(dnnl_engine_t eng, qmm *q) {
    dnnl_primitive_desc_t pd = NULL;
    if (qmm_pd(eng, q, 128, NULL, &pd) != dnnl_success) return DC_ERR_UNSUPPORTED_FORMAT;
    dc_dnnl_impl_name(pd, q->impl, sizeof q->impl);
    const dnnl_memory_desc_t *w = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    /* the outlier columns find weights in it by blocked_offset: plain blocks, no extra data */
    const bool brgemm = strncmp(q->impl, "brg", 3) == 0 && w->format_kind == dnnl_blocked &&
                        w->extra.flags == 0;
    if (brgemm) q->wmd = *w;
    dnnl_primitive_desc_destroy(pd);
    return brgemm ? DC_OK : DC_ERR_UNSUPPORTED_FORMAT;
}

/* y = x·B (+ bias) on `rows` rows; y has row stride q->ldd elements of q->ddt. */
static dc_status qmm_run(dnnl_engine_t eng, const qmm *q, const void *x, size_t rows,
                         const void *w, const float *bias, void *y) {
    dc_status st = DC_OK;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    const_dnnl_primitive_desc_t use_pd = q->pd_rt;
    dnnl_primitive_t use_prim = q->prim_rt;
    if (!use_pd) {
        DNNL_TRY(qmm_pd(eng, q, (dnnl_dim_t)rows, &q->wmd, &pd), "matmul descriptor");
        DNNL_TRY(dnnl_primitive_create(&prim, pd), "matmul primitive");
        use_pd = pd;
        use_prim = prim;
    }
    dc_dnnl_matmul_args a = {.rows = rows, .k = q->k, .n = q->n, .sdt = q->sdt, .x = x,
                             .ddt = q->ddt, .ldd = q->ldd, .y = y, .wmd = &q->wmd, .w = w,
                             .bias = bias};
    st = dc_dnnl_matmul_execute(eng, use_pd, use_prim, &a);
done:
    if (prim) dnnl_primitive_destroy(prim);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return st;
}

/* Reorders plain [n, k] weights of type q->wdt into q->wmd (freshly allocated *out). */
static dc_status pack_weights(dnnl_engine_t eng, const qmm *q, const void *plain, void **out,
                              size_t *bytes) {
    dc_status st = DC_OK;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_memory_t src_mem = NULL, dst_mem = NULL;
    dnnl_stream_t stream = NULL;
    *bytes = dnnl_memory_desc_get_size(&q->wmd);
    if (posix_memalign(out, 64, *bytes ? *bytes : 64) != 0) {
        *out = NULL;
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "%zu packed weight bytes", *bytes);
    }
    dnnl_memory_desc_t user;
    dnnl_dims_t wd = {q->k, q->n};
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&user, 2, wd, q->wdt, dnnl_ba), "weights descriptor");
    DNNL_TRY(dnnl_memory_create(&src_mem, &user, eng, (void *)plain), "weights memory");
    DNNL_TRY(dnnl_memory_create(&dst_mem, &q->wmd, eng, *out), "packed memory");
    DNNL_TRY(dnnl_reorder_primitive_desc_create(&rpd, &user, eng, &q->wmd, eng, NULL),
         "weights reorder descriptor");
    DNNL_TRY(dnnl_primitive_create(&reorder, rpd), "weights reorder");
    DNNL_TRY(dnnl_stream_create(&stream, eng, dnnl_stream_default_flags), "stream");
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, src_mem}, {DNNL_ARG_TO, dst_mem}};
    DNNL_TRY(dnnl_primitive_execute(reorder, stream, 2, args), "weights reorder");
    DNNL_TRY(dnnl_stream_wait(stream), "weights reorder");
done:
    if (stream) dnnl_stream_destroy(stream);
    if (reorder) dnnl_primitive_destroy(reorder);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (src_mem) dnnl_memory_destroy(src_mem);
    if (dst_mem) dnnl_memory_destroy(dst_mem);
    if (st != DC_OK) {
        free(*out);
        *out = NULL;
    }
    return st;
}

void dc_cpu_qlinear_destroy(dc_cpu_qlinear *q) {
    if (!q) return;
    qmm_free(&q->mm);
    qmm_free(&q->tail);
    free(q->wdata);
    free(q->col_off);
    free(q->wscale);
    free(q->colsum);
    free(q->bias);
    free(q);
}

/* Where element (kk, c) of the K×N weights lives in a blocked oneDNN layout: the outer
 * strides, plus the position inside the dense innermost blocks (innermost last). Each index's
 * part is separate, so offset(kk, c) = offset(kk, 0) + offset(0, c) − offset(0, 0). */
static size_t blocked_offset(const dnnl_memory_desc_t *md, dnnl_dim_t kk, dnnl_dim_t c) {
    const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
    dnnl_dim_t pos[2] = {kk, c}, in = 0, stride = 1;
    for (int i = b->inner_nblks - 1; i >= 0; i--) {
        const int d = (int)b->inner_idxs[i];
        in += pos[d] % b->inner_blks[i] * stride;
        pos[d] /= b->inner_blks[i];
        stride *= b->inner_blks[i];
    }
    return (size_t)(md->offset0 + in + pos[0] * b->strides[0] + pos[1] * b->strides[1]);
}

static dc_status create_int8(dnnl_engine_t eng, dc_cpu_qlinear *q, const float *weight) {
    dc_status st = DC_OK;
    int8_t *plain = malloc((size_t)q->n * q->k);
    q->wscale = malloc((size_t)q->n * sizeof *q->wscale);
    q->colsum = malloc((size_t)q->n * sizeof *q->colsum);
    if (!plain || !q->wscale || !q->colsum) {
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "int8 weights");
        goto done;
    }
    if (q->k > DC_INT8_MAX_K) { /* the int32 sums of dc_quant_int8_dequant */
        st = dc_fail(DC_ERR_UNSUPPORTED_FORMAT, "int8 linear: %u inputs (at most %u)", q->k,
                     DC_INT8_MAX_K);
        goto done;
    }
    q->r = dc_quant_int8_ranges_cpu();
    if ((st = dc_quant_int8_weights(weight, q->n, q->k, q->r.w_max, plain, q->wscale, q->colsum)))
        goto done;
    /* the bias joins in f32 after dequantisation, not inside oneDNN */
    q->mm = (qmm){.sdt = dnnl_u8, .wdt = dnnl_s8, .ddt = dnnl_s32, .n = q->n, .k = q->k,
                  .ldd = q->n, .bias = false};
    if (qmm_prepare_blocked(eng, &q->mm) == DC_OK) {
        if (!(q->col_off = malloc((size_t)q->n * sizeof *q->col_off))) {
            st = dc_fail(DC_ERR_OUT_OF_MEMORY, "int8 column offsets");
            goto done;
        }
        const size_t origin = blocked_offset(&q->mm.wmd, 0, 0);
        for (uint32_t c = 0; c < q->n; c++)
            q->col_off[c] = (uint32_t)(blocked_offset(&q->mm.wmd, 0, c) - origin);
        q->wbytes += (size_t)q->n * sizeof *q->col_off;
    } else if ((st = qmm_prepare(eng, &q->mm, true, q->k, false))) { /* plain [n, k] weights */
        goto done;
    }
    if ((st = pack_weights(eng, &q->mm, plain, &q->wdata, &q->wbytes))) goto done;
    snprintf(q->impl, sizeof q->impl, "int8 u8s8s32 (%d/%d): %s", (int)q->r.act_max,
             (int)q->r.w_max, q->mm.impl);
done:
    free(plain);
    return st;
}

/* Output channels per block of the widened-bf16 path. Every matrix product call costs a
 * parallel region and narrow products run far below the GEMM peak (measured: 336-wide blocks
 * took 2-3x the time of one 3072-wide product), so an encoder layer (up to 4096 x 1024) widens
 * whole, into at most 32 MiB that live for one forward; only larger layers go in blocks. */
static uint32_t bf16_block(uint32_t n, uint32_t k) {
    size_t cap = (size_t)8 << 20; /* f32 values */
    if ((size_t)n * k <= cap) return n;
    uint32_t nb = (uint32_t)(cap / k) / 16 * 16;
    if (nb < 16) nb = 16;
    return nb > n ? n : nb;
}

static dc_status create_bf16(dnnl_engine_t eng, dc_cpu_qlinear *q, const float *weight,
                             bool has_bias) {
    dc_status st = DC_OK;
    size_t nk = (size_t)q->n * q->k;
    uint16_t *w16 = malloc(nk * sizeof *w16 + 2);
    if (!w16) return dc_fail(DC_ERR_OUT_OF_MEMORY, "bf16 weights");
    dc_quant_bf16_pack(weight, nk, w16);
    /* native: bf16 × bf16 → f32 where oneDNN has a real kernel for it */
    q->mm = (qmm){.sdt = dnnl_bf16, .wdt = dnnl_bf16, .ddt = dnnl_f32, .n = q->n, .k = q->k,
                  .ldd = q->n, .bias = has_bias};
    dc_status native = qmm_prepare(eng, &q->mm, false, q->k, false);
    if (native == DC_OK) {
        st = pack_weights(eng, &q->mm, w16, &q->wdata, &q->wbytes);
        free(w16);
        if (st == DC_OK) snprintf(q->impl, sizeof q->impl, "bf16 native: %s", q->mm.impl);
        return st;
    }
    dc_error_clear();
    /* widened blocks: f32 products over plain [nb, k] slices of the bf16 rows */
    q->wdata = w16;
    q->wbytes = nk * sizeof *w16;
    q->nb = bf16_block(q->n, q->k);
    q->mm = (qmm){.sdt = dnnl_f32, .wdt = dnnl_f32, .ddt = dnnl_f32, .n = q->nb, .k = q->k,
                  .ldd = q->n, .bias = has_bias};
    if ((st = qmm_prepare(eng, &q->mm, true, q->k, true))) return st;
    if (q->n % q->nb) {
        q->tail = q->mm;
        q->tail.pd_rt = NULL;
        q->tail.prim_rt = NULL;
        q->tail.n = q->n % q->nb;
        if ((st = qmm_prepare(eng, &q->tail, true, q->k, true))) return st;
    }
    snprintf(q->impl, sizeof q->impl, "bf16 as f32 in blocks of %u: %s", q->nb, q->mm.impl);
    return DC_OK;
}

dc_status dc_cpu_qlinear_create(dnnl_engine_t eng, const float *weight, const float *bias,
                                uint32_t n, uint32_t k, dc_weight_format fmt,
                                dc_cpu_qlinear **out) {
    *out = NULL;
    if (fmt != DC_WEIGHTS_BF16 && fmt != DC_WEIGHTS_INT8)
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT, "linear: weight format %d is not supported",
                       (int)fmt);
    if (!weight || n == 0 || k == 0)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "linear: empty weight %ux%u", n, k);
    dc_cpu_qlinear *q = calloc(1, sizeof *q);
    if (!q) return dc_fail(DC_ERR_OUT_OF_MEMORY, "linear %ux%u", n, k);
    q->fmt = fmt;
    q->n = n;
    q->k = k;
    dc_status st = DC_OK;
    if (bias) {
        q->bias = malloc((size_t)n * sizeof *q->bias);
        if (!q->bias) {
            dc_cpu_qlinear_destroy(q);
            return dc_fail(DC_ERR_OUT_OF_MEMORY, "linear bias %u", n);
        }
        memcpy(q->bias, bias, (size_t)n * sizeof *q->bias);
    }
    st = fmt == DC_WEIGHTS_INT8 ? create_int8(eng, q, weight)
                                : create_bf16(eng, q, weight, bias != NULL);
    if (st != DC_OK) {
        dc_cpu_qlinear_destroy(q);
        return st;
    }
    *out = q;
    return DC_OK;
}

/* ---- int8 forward ----
 * Every step but the product itself is elementwise per row or per column, so each runs in
 * pieces of rows on the OpenMP team oneDNN uses (cpu_parallel.h; work under DC_PAR_FLOATS
 * values stays on the calling thread): the column maxima (one partial row per thread, merged
 * here), the row quantisation, and the dequantisation with the outlier columns' part added in
 * the same pass. The buffers live in a per-thread workspace that grows to the largest forward
 * the thread has run and is kept (up to DC_INT8_WORK_KEEP bytes; a larger one is freed after
 * its forward), so a forward allocates nothing once warm. */

/* The most workspace a thread keeps between forwards: all-MiniLM-L6-v2 on 32 × 128 tokens
 * needs 6.5 MB, BERT-large on 32 × 512 about 70 MB, which would stay with every thread that
 * ever ran one. */
#define DC_INT8_WORK_KEEP ((size_t)32 << 20)

/* Smallest piece handed to a thread, in values (as in cpu_backend.c). */
#define DC_PAR_FLOATS 32768

/* Carves aligned pieces out of the workspace. */
static size_t carve(size_t *off, size_t bytes) {
    size_t at = *off;
    *off += (bytes + 63) / 64 * 64;
    return at;
}

typedef struct int8_job {
    const dc_cpu_qlinear *q;
    const float *x;
    float *y;
    float *colmax; /* threads × k partial maxima */
    const uint32_t *skip;
    uint32_t n_skip;
    uint8_t *qx;
    float *sx;
    int32_t *zx;
    const float *wo;
} int8_job;

static void colmax_piece(void *ctx, size_t lo, size_t hi, unsigned tid) {
    const int8_job *j = ctx;
    uint32_t k = j->q->k;
    dc_quant_int8_colmax(j->x + lo * k, hi - lo, k, j->colmax + (size_t)tid * k);
}

static void rows_piece(void *ctx, size_t lo, size_t hi, unsigned tid) {
    (void)tid;
    const int8_job *j = ctx;
    uint32_t k = j->q->k;
    dc_quant_int8_rows(j->x + lo * k, hi - lo, k, j->q->r.act_max, j->skip, j->n_skip,
                       j->qx + lo * k, j->sx + lo, j->zx + lo, NULL);
}

static void dequant_piece(void *ctx, size_t lo, size_t hi, unsigned tid) {
    (void)tid;
    const int8_job *j = ctx;
    const dc_cpu_qlinear *q = j->q;
    dc_quant_int8_dequant_outliers(j->y + lo * q->n, hi - lo, q->n, q->n, j->sx + lo, j->zx + lo,
                                   q->wscale, q->colsum, q->bias, j->x + lo * q->k, q->k,
                                   j->skip, j->n_skip, j->wo);
}

static size_t rows_grain(size_t cols) {
    size_t g = DC_PAR_FLOATS / cols;
    return g ? g : 1;
}

/* wo[t, c] = sw[c]·qw[c, skip[t]], from plain [n, k] weights or where the blocked layout keeps
 * them (a few columns per forward, so no plain copy is kept). */
static void outlier_weights(const dc_cpu_qlinear *q, const uint32_t *skip, uint32_t n_skip,
                            float *wo) {
    if (!q->col_off) {
        dc_quant_int8_outlier_weights(q->wdata, q->wscale, q->n, q->k, skip, n_skip, wo);
        return;
    }
    for (uint32_t t = 0; t < n_skip; t++) {
        const int8_t *w = (const int8_t *)q->wdata + blocked_offset(&q->mm.wmd, skip[t], 0);
        for (uint32_t c = 0; c < q->n; c++)
            wo[(size_t)t * q->n + c] = q->wscale[c] * (float)w[q->col_off[c]];
    }
}

static dc_status forward_int8(dnnl_engine_t eng, const dc_cpu_qlinear *q, const float *x,
                              size_t rows, float *y) {
    const size_t k = q->k, cap = k / DC_INT8_OUTLIER_SHARE + 1;
    const unsigned threads = dc_cpu_parallel_threads();
    size_t off = 0;
    const size_t o_qx = carve(&off, rows * k), o_sx = carve(&off, rows * sizeof(float)),
                 o_zx = carve(&off, rows * sizeof(int32_t)),
                 o_cm = carve(&off, threads * k * sizeof(float)),
                 o_sorted = carve(&off, k * sizeof(float)),
                 o_skip = carve(&off, cap * sizeof(uint32_t)),
                 o_wo = carve(&off, cap * q->n * sizeof(float));
    char *base = dc_cpu_scratch(DC_SCRATCH_INT8, off);
    if (!base)
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "int8 work of %zu rows (%zu bytes)", rows, off);
    int8_job j = {.q = q, .x = x, .y = y, .colmax = (float *)(void *)(base + o_cm),
                  .qx = (uint8_t *)(base + o_qx), .sx = (float *)(void *)(base + o_sx), .zx = (int32_t *)(void *)(base + o_zx),
                  .wo = (float *)(void *)(base + o_wo)};
    uint32_t *skip = (uint32_t *)(void *)(base + o_skip);
    /* the outlier columns: per-thread maxima, merged into the first */
    memset(j.colmax, 0, threads * k * sizeof(float));
    dc_cpu_parallel_for(rows, rows_grain(k), threads, colmax_piece, &j);
    for (unsigned t = 1; t < threads; t++) {
        const float *p = j.colmax + t * k;
        for (size_t c = 0; c < k; c++) j.colmax[c] = p[c] > j.colmax[c] ? p[c] : j.colmax[c];
    }
    j.n_skip =
        dc_quant_int8_outliers_pick(j.colmax, q->k, q->r.outlier_ratio, skip,
                                    (float *)(void *)(base + o_sorted));
    j.skip = skip;
    dc_cpu_parallel_for(rows, rows_grain(k), threads, rows_piece, &j);
    /* int32 sums land in y's own bytes and are dequantised in place */
    dc_status st = qmm_run(eng, &q->mm, j.qx, rows, q->wdata, NULL, y);
    if (st != DC_OK) {
        dc_cpu_scratch_trim(DC_SCRATCH_INT8, DC_INT8_WORK_KEEP);
        return st;
    }
    if (j.n_skip)
        outlier_weights(q, skip, j.n_skip, (float *)(void *)(base + o_wo));
    dc_cpu_parallel_for(rows, rows_grain(q->n + (size_t)j.n_skip), threads, dequant_piece, &j);
    dc_cpu_scratch_trim(DC_SCRATCH_INT8, DC_INT8_WORK_KEEP);
    return DC_OK;
}

static dc_status forward_bf16(dnnl_engine_t eng, const dc_cpu_qlinear *q, const float *x,
                              size_t rows, float *y) {
    dc_status st = DC_OK;
    void *buf = NULL;
    size_t elems = q->nb ? (size_t)q->nb * q->k : rows * q->k;
    if (posix_memalign(&buf, 64, elems * (q->nb ? sizeof(float) : sizeof(uint16_t)) + 64) != 0)
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "bf16 work of %zu values", elems);
    if (!q->nb) { /* native: the activations in bf16 too */
        dc_quant_bf16_pack(x, elems, buf);
        st = qmm_run(eng, &q->mm, buf, rows, q->wdata, q->bias, y);
    } else {
        const uint16_t *w16 = q->wdata;
        for (uint32_t c0 = 0; c0 < q->n && st == DC_OK; c0 += q->nb) {
            const qmm *mm = q->n - c0 >= q->nb ? &q->mm : &q->tail;
            dc_quant_bf16_unpack(w16 + (size_t)c0 * q->k, (size_t)mm->n * q->k, buf);
            st = qmm_run(eng, mm, x, rows, buf, q->bias ? q->bias + c0 : NULL, y + c0);
        }
    }
    free(buf);
    return st;
}

dc_status dc_cpu_qlinear_forward(dnnl_engine_t eng, const dc_cpu_qlinear *q, const float *x,
                                 size_t rows, float *y) {
    if (rows == 0) return DC_OK;
    return q->fmt == DC_WEIGHTS_INT8 ? forward_int8(eng, q, x, rows, y)
                                     : forward_bf16(eng, q, x, rows, y);
}

size_t dc_cpu_qlinear_bytes(const dc_cpu_qlinear *q) {
    if (!q) return 0;
    size_t b = sizeof *q + q->wbytes;
    if (q->bias) b += (size_t)q->n * sizeof(float);
    if (q->wscale) b += (size_t)q->n * (sizeof(float) + sizeof(int32_t));
    return b;
}

const char *dc_cpu_qlinear_impl(const dc_cpu_qlinear *q) { return q ? q->impl : ""; }

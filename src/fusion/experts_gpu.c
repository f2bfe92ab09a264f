/* The fusion experts on the CUDA backend: every selected expert's rows in one grouped GEMM per
 * layer (dc_cuda_api.grouped_gemm_ex), so a batch costs one upload, two grouped products, one
 * GELU and one download whatever the number of experts it touches. The products write f32 in
 * both formats; with bf16 weights the rows go up as bf16 and the GELU'd hidden rows are
 * converted to bf16 on the device (to_half) for fc2, so no hidden row crosses to the host.
 * Expert matrices live in weights_alloc memory (exact sizes, not the pool's power-of-two
 * classes).
 *
 * The grouped GEMM computes Y = X·Wᵀ without a bias, and the backend table has no bias
 * broadcast, so each bias rides in the product as augmented columns (DC_FGPU_PAD extra, to keep
 * rows 16-byte aligned):
 *   fc1: X' = [h | 1 1 0…]            W1' = [W1 | b1_hi b1_lo 0…]   plus two rows [0… | C 0 0…]
 *        so the hidden row is [W1·h + b1 | C C 0…];
 *   GELU leaves C = 16 as it is (erf(16/√2) rounds to 1 in f32) and 0 at 0;
 *   fc2: W2' = [W2 | (b2/C)_hi (b2/C)_lo 0…] gives W2·a + b2 (÷16·16 is exact in binary).
 * In f32 the _lo parts are 0; in bf16 they carry the rounding error of the _hi parts, so the
 * biases keep ~16 bits. The host never touches device memory: only upload and download. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "fusion/internal.h"
#include "tensor/backend_loader.h"

#define PAD DC_FGPU_PAD
#define CONST_COL 16.0f /* a fixed point of GELU(erf) in f32 */

static atomic_bool force_fallback;

void dc_fusion_gpu_force_fallback(bool on) { atomic_store(&force_fallback, on); }

struct dc_fusion_gpu {
    dc_backend *be;
    const dc_cuda_api *api;
    bool bf16;
    uint32_t E, H, k1, h1; /* k1 = 8320 + PAD, h1 = H + PAD */
    void *w1[DC_NUM_EXPERTS], *w2[DC_NUM_EXPERTS]; /* device; NULL for skipped experts */
    size_t bytes;
};

static size_t esize(const dc_fusion_gpu *g) { return g->bf16 ? 2 : 4; }

/* Writes v at index i of a row-major host array of f32 or bf16. */
static inline void put(void *dst, bool bf16, size_t i, float v) {
    if (bf16) ((uint16_t *)dst)[i] = dc_fusion_f32_to_bf16(v);
    else ((float *)dst)[i] = v;
}

static inline float bf16_value(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* hi + lo = v as closely as two values of the format hold it (lo = 0 in f32). */
static void split(float v, bool bf16, float *hi, float *lo) {
    if (!bf16) {
        *hi = v;
        *lo = 0.0f;
        return;
    }
    *hi = bf16_value(dc_fusion_f32_to_bf16(v));
    *lo = v - *hi;
}

/* A per-batch buffer from the pool, filled from the host. */
static dc_status upload_new(dc_backend *be, const void *host, size_t bytes, void **dev) {
    *dev = NULL;
    dc_status st = be->ops->alloc(be, bytes, dev);
    if (st == DC_OK) st = be->ops->upload(be, *dev, host, bytes);
    if (st != DC_OK && *dev) {
        be->ops->release(be, *dev);
        *dev = NULL;
    }
    return st;
}

/* An expert matrix in weights memory (exact size, outside the pool's classes). */
static dc_status upload_weights(const dc_fusion_gpu *g, const void *host, size_t bytes,
                                void **dev) {
    *dev = NULL;
    dc_status st = g->api->weights_alloc(g->be, bytes, dev);
    if (st == DC_OK) st = g->be->ops->upload(g->be, *dev, host, bytes);
    if (st != DC_OK && *dev) {
        g->api->weights_free(g->be, *dev);
        *dev = NULL;
    }
    return st;
}

void dc_fusion_gpu_free(dc_fusion_gpu *g) {
    if (!g) return;
    for (uint32_t e = 0; e < DC_NUM_EXPERTS; e++) {
        g->api->weights_free(g->be, g->w1[e]);
        g->api->weights_free(g->be, g->w2[e]);
    }
    free(g);
}

size_t dc_fusion_gpu_bytes(const dc_fusion_gpu *g) { return g ? g->bytes : 0; }

dc_status dc_fusion_gpu_prepare(dc_backend *be, const dc_fusion_weights *w, bool bf16,
                                const bool *skip, dc_fusion_gpu **out) {
    *out = NULL;
    const dc_cuda_api *api = NULL;
    dc_status st = dc_cuda_load(&api);
    if (st != DC_OK) return dc_fail_context(st, "fusion experts on %s", be->ops->name);
    dc_fusion_gpu *g = calloc(1, sizeof *g);
    if (!g) return dc_fail(DC_ERR_OUT_OF_MEMORY, "fusion experts on cuda");
    g->be = be;
    g->api = api;
    g->bf16 = bf16;
    g->E = w->opt.num_experts;
    g->H = w->opt.hidden;
    g->k1 = DC_FUSION_IN + PAD;
    g->h1 = g->H + PAD;
    const size_t es = esize(g);
    const size_t n1 = (size_t)g->h1 * g->k1, n2 = (size_t)DC_FUSION_OUT * g->h1;
    void *host = malloc((n1 > n2 ? n1 : n2) * es);
    if (!host) st = dc_fail(DC_ERR_OUT_OF_MEMORY, "fusion experts on cuda: staging");
    const dc_fusion_layout *l = &w->layout;
    for (uint32_t e = 0; e < g->E && st == DC_OK; e++) {
        if (skip && skip[e]) continue;
        const float *w1 = w->arena + l->fc1_w[e], *b1 = w->arena + l->fc1_b[e];
        const float *w2 = w->arena + l->fc2_w[e], *b2 = w->arena + l->fc2_b[e];
        memset(host, 0, n1 * es);
        for (uint32_t j = 0; j < g->H; j++) {
            const float *src = w1 + (size_t)j * DC_FUSION_IN;
            size_t row = (size_t)j * g->k1;
            if (bf16)
                for (uint32_t c = 0; c < DC_FUSION_IN; c++) put(host, true, row + c, src[c]);
            else
                memcpy((float *)host + row, src, DC_FUSION_IN * sizeof(float));
            float hi, lo;
            split(b1[j], bf16, &hi, &lo);
            put(host, bf16, row + DC_FUSION_IN, hi);
            put(host, bf16, row + DC_FUSION_IN + 1, lo);
        }
        for (uint32_t j = g->H; j < g->H + 2; j++) /* the constant columns fc2's bias rides on */
            put(host, bf16, (size_t)j * g->k1 + DC_FUSION_IN, CONST_COL);
        st = upload_weights(g, host, n1 * es, &g->w1[e]);
        if (st != DC_OK) break;
        memset(host, 0, n2 * es);
        for (uint32_t r = 0; r < DC_FUSION_OUT; r++) {
            const float *src = w2 + (size_t)r * g->H;
            size_t row = (size_t)r * g->h1;
            for (uint32_t c = 0; c < g->H; c++) put(host, bf16, row + c, src[c]);
            float hi, lo;
            split(b2[r] / CONST_COL, bf16, &hi, &lo);
            put(host, bf16, row + g->H, hi);
            put(host, bf16, row + g->H + 1, lo);
        }
        st = upload_weights(g, host, n2 * es, &g->w2[e]);
        if (st == DC_OK) g->bytes += (n1 + n2) * es;
    }
    free(host);
    if (st != DC_OK) {
        dc_fusion_gpu_free(g);
        return dc_fail_context(st, "fusion weights %s on cuda", w->info.version);
    }
    *out = g;
    return DC_OK;
}

/* One grouped product per layer over the experts with rows: x in the weights' format, y f32. */
static dc_status layer(dc_fusion_gpu *g, bool second, const uint32_t *count, const void *x,
                       float *y) {
    dc_gemm_problem p[DC_NUM_EXPERTS];
    const size_t es = esize(g);
    const uint32_t n = second ? DC_FUSION_OUT : g->h1, k = second ? g->h1 : g->k1;
    size_t off = 0;
    uint32_t np = 0;
    for (uint32_t e = 0; e < g->E; e++) {
        if (!count[e]) continue;
        p[np++] = (dc_gemm_problem){.m = count[e], .n = n, .k = k,
                                    .x = (const uint8_t *)x + off * k * es,
                                    .w = second ? g->w2[e] : g->w1[e],
                                    .y = y + off * n};
        off += count[e];
    }
    return g->api->grouped_gemm_ex(g->be, g->bf16 ? DC_GEMM_BF16 : DC_GEMM_F32, DC_GEMM_F32, p,
                                   np, atomic_load(&force_fallback));
}

dc_status dc_fusion_gpu_run(dc_fusion_gpu *g, const float *h, const uint32_t *rows,
                            const uint32_t *count, float *out) {
    size_t m = 0;
    for (uint32_t e = 0; e < g->E; e++) {
        if (count[e] && !g->w1[e])
            return dc_fail(DC_ERR_FUSION, "fusion experts on cuda: expert %u was not prepared", e);
        m += count[e];
    }
    if (!m) return DC_OK;
    dc_backend *be = g->be;
    const size_t es = esize(g);
    const size_t nx = m * g->k1, na = m * g->h1, no = m * DC_FUSION_OUT;
    void *xs = calloc(nx, es);
    void *xd = NULL, *ah = NULL;
    float *ad = NULL, *od = NULL;
    dc_status st = xs ? DC_OK : dc_fail(DC_ERR_OUT_OF_MEMORY, "fusion experts on cuda: %zu rows", m);
    for (size_t i = 0; st == DC_OK && i < m; i++) { /* gather [h | 1 1 0…] rows */
        const float *src = h + (size_t)rows[i] * DC_FUSION_IN;
        size_t row = i * g->k1;
        if (g->bf16)
            for (uint32_t c = 0; c < DC_FUSION_IN; c++) put(xs, true, row + c, src[c]);
        else
            memcpy((float *)xs + row, src, DC_FUSION_IN * sizeof(float));
        put(xs, g->bf16, row + DC_FUSION_IN, 1.0f);
        put(xs, g->bf16, row + DC_FUSION_IN + 1, 1.0f);
    }
    if (st == DC_OK) st = upload_new(be, xs, nx * es, &xd);
    if (st == DC_OK) st = be->ops->alloc(be, na * sizeof(float), (void **)&ad);
    if (st == DC_OK && g->bf16) st = be->ops->alloc(be, na * sizeof(uint16_t), &ah);
    if (st == DC_OK) st = be->ops->alloc(be, no * sizeof(float), (void **)&od);
    if (st == DC_OK) st = layer(g, false, count, xd, ad);
    /* GELU in f32 on the device keeps C = 16 (a fixed point); errors surface at the next call */
    if (st == DC_OK) be->ops->activation(be, DC_ACT_GELU_ERF, ad, na);
    if (st == DC_OK && g->bf16) st = g->api->to_half(be, ad, ah, na, DC_GEMM_BF16);
    if (st == DC_OK) st = layer(g, true, count, g->bf16 ? ah : (void *)ad, od);
    if (st == DC_OK) st = be->ops->download(be, out, od, no * sizeof(float));
    if (xd) be->ops->release(be, xd);
    if (ad) be->ops->release(be, ad);
    if (ah) be->ops->release(be, ah);
    if (od) be->ops->release(be, od);
    free(xs);
    if (st != DC_OK) return dc_fail_context(st, "fusion experts on cuda (%zu rows)", m);
    return DC_OK;
}

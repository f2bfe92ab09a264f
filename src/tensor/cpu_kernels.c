/* The CPU backend's element-wise, normalisation and attention kernels.
 *
 * Written as plain C loops that gcc vectorises, compiled three times (portable x86-64 / AVX2+FMA
 * / AVX-512) from the same always-inline bodies and chosen once at run time from CPUID, so the
 * binary runs on any x86-64 (and under valgrind, which hides AVX-512). Reductions use 16
 * independent partial sums so they vectorise without -ffast-math. exp and erf are polynomial /
 * rational approximations (a few ulp) because libm's scalar calls would dominate GELU. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__OPTIMIZE__)
/* -O2's very-cheap vectoriser model refuses loops that need an epilogue: all of ours. With
 * -ftrapping-math (the default) gcc will not if-convert the float compares of the exp / erf
 * clamps, so GELU, quick-GELU and attention's softmax exp ran one float at a time ("control
 * flow in loop"); no-trapping-math only drops FP-exception semantics nothing here relies on. */
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic", "no-trapping-math")
#endif

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "tensor/backend.h"
#include "tensor/cpu_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define DC_X86 1
#endif

#define DC_BODY static inline __attribute__((always_inline))
#define LANES 16

/* ---- exp: Cephes-style range reduction x = n·ln2 + r, degree-6 polynomial, 2^n from bits ---- */
DC_BODY float exp_one(float x) {
    x = x > 88.3762626647949f ? 88.3762626647949f : x;
    x = x < -87.3365447504f ? -87.3365447504f : x;
    /* round to nearest by the 1.5·2^23 trick: vectorises without SSE4.1 */
    float t = x * 1.44269504088896341f + 12582912.0f;
    float n = t - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500E-4f;
    p = p * r + 1.3981999507E-3f;
    p = p * r + 8.3334519073E-3f;
    p = p * r + 4.1665795894E-2f;
    p = p * r + 1.6666665459E-1f;
    p = p * r + 5.0000001201E-1f;
    p = p * r * r + r + 1.0f;
    union {
        int32_t i;
        float f;
    } u;
    u.i = ((int32_t)n + 127) * (1 << 23);
    return p * u.f;
}

/* ---- erf: odd rational approximation x·P(x²)/Q(x²) on [-4, 4] (±1 outside in f32) ---- */
DC_BODY float erf_one(float x) {
    x = x > 4.0f ? 4.0f : x;
    x = x < -4.0f ? -4.0f : x;
    float x2 = x * x;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 + -2.10102402082508e-06f;
    p = p * x2 + -5.69250639462346e-05f;
    p = p * x2 + -7.34990630326855e-04f;
    p = p * x2 + -2.95459980854025e-03f;
    p = p * x2 + -1.60960333262415e-02f;
    p = p * x;
    float q = -1.45660718464996e-05f;
    q = q * x2 + -2.13374055278905e-04f;
    q = q * x2 + -1.68282697438203e-03f;
    q = q * x2 + -7.37332916720468e-03f;
    q = q * x2 + -1.42647390514189e-02f;
    return p / q;
}

DC_BODY void exp_body(const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = exp_one(x[i]);
}

DC_BODY void erf_body(const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = erf_one(x[i]);
}

DC_BODY void act_body(dc_activation act, float *x, size_t n) {
    switch (act) {
    case DC_ACT_GELU_ERF:
        for (size_t i = 0; i < n; i++) {
            float v = x[i];
            x[i] = 0.5f * v * (1.0f + erf_one(v * 0.70710678118654752f));
        }
        break;
    case DC_ACT_GELU_TANH:
        for (size_t i = 0; i < n; i++) {
            float v = x[i];
            float u = 0.79788456080286536f * (v + 0.044715f * v * v * v);
            /* tanh(u) = 1 − 2/(e^{2u}+1): saturates cleanly at both ends */
            float th = 1.0f - 2.0f / (exp_one(2.0f * u) + 1.0f);
            x[i] = 0.5f * v * (1.0f + th);
        }
        break;
    case DC_ACT_QUICK_GELU:
        for (size_t i = 0; i < n; i++) {
            float v = x[i];
            x[i] = v / (1.0f + exp_one(-1.702f * v));
        }
        break;
    case DC_ACT_RELU:
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case DC_ACT_NONE:
    default:
        break;
    }
}

DC_BODY void add_body(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

DC_BODY float sum_body(const float *x, size_t n) {
    float acc[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) acc[l] += x[i + l];
    float s = 0.0f;
    for (; i < n; i++) s += x[i];
    for (int l = 0; l < LANES; l++) s += acc[l];
    return s;
}

DC_BODY float sqdev_body(const float *x, float mean, size_t n) {
    float acc[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) {
            float d = x[i + l] - mean;
            acc[l] += d * d;
        }
    float s = 0.0f;
    for (; i < n; i++) {
        float d = x[i] - mean;
        s += d * d;
    }
    for (int l = 0; l < LANES; l++) s += acc[l];
    return s;
}

DC_BODY float dot_body(const float *a, const float *b, size_t n) {
    float acc[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) acc[l] += a[i + l] * b[i + l];
    float s = 0.0f;
    for (; i < n; i++) s += a[i] * b[i];
    for (int l = 0; l < LANES; l++) s += acc[l];
    return s;
}

DC_BODY void layernorm_body(const float *x, const float *residual, const float *gamma,
                            const float *beta, float eps, size_t rows, size_t cols, float *y) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        if (residual) {
            const float *rr = residual + r * cols;
            for (size_t c = 0; c < cols; c++) yr[c] = xr[c] + rr[c];
        } else if (yr != xr) {
            memcpy(yr, xr, cols * sizeof *yr);
        }
        float mean = sum_body(yr, cols) / (float)cols;
        float var = sqdev_body(yr, mean, cols) / (float)cols;
        float rstd = 1.0f / sqrtf(var + eps);
        for (size_t c = 0; c < cols; c++) yr[c] = (yr[c] - mean) * rstd * gamma[c] + beta[c];
    }
}

DC_BODY void embed_sum_body(size_t rows, size_t cols, const float *t0, const uint32_t *i0,
                            const float *t1, const uint32_t *i1, const float *t2,
                            const uint32_t *i2, float *out) {
    for (size_t r = 0; r < rows; r++) {
        float *o = out + r * cols;
        if (t0) memcpy(o, t0 + (size_t)i0[r] * cols, cols * sizeof *o);
        else memset(o, 0, cols * sizeof *o);
        if (t1) {
            const float *a = t1 + (size_t)i1[r] * cols;
            for (size_t c = 0; c < cols; c++) o[c] += a[c];
        }
        if (t2) {
            const float *a = t2 + (size_t)i2[r] * cols;
            for (size_t c = 0; c < cols; c++) o[c] += a[c];
        }
    }
}

/* 8 floats as one value (GCC/clang vector extension): register tiles without intrinsics, so
 * the same body compiles for every variant. Loads and stores go through memcpy (unaligned);
 * no function takes or returns one (that would tie the ABI to the ISA). */
typedef float dc_v8 __attribute__((vector_size(32)));

typedef uint32_t dc_v8u __attribute__((vector_size(32)));

#define V8_LOAD(v, p) memcpy(&(v), (p), sizeof(dc_v8))
#define V8_STORE(p, v) memcpy((p), &(v), sizeof(dc_v8))

/* x keeps its lanes where keep's are all ones and becomes -inf (bits 0xff800000) where they
 * are 0. A macro: no function takes or returns a vector (above). */
#define V8_KEEP_OR_NINF(x, keep)                                                                   \
    do {                                                                                           \
        dc_v8u bits_;                                                                              \
        memcpy(&bits_, &(x), sizeof bits_);                                                        \
        bits_ = (bits_ & (keep)) | (~(keep) & 0xff800000u);                                        \
        memcpy(&(x), &bits_, sizeof bits_);                                                        \
    } while (0)

/* Banded attention (dc_attn_opts), one head. The head's keys are first repacked into blocks
 * of 32 rows, transposed (kt[block][d][32]), so the scores of a query over the blocks its band
 * touches are sums over d of q[d]·(32 keys): unit stride, no horizontal reductions. Query rows
 * whose bands touch the same blocks (every row, in full attention) go DC_QG at a time, so each
 * key vector loaded serves DC_QG rows and each value row DC_QG probability rows: one row at a
 * time the kernel waited on loads, at a quarter of the GEMM's rate. A row's sums run in the
 * same order either way, so grouping changes no bit. One head's band stays in cache, and heads
 * (of every sequence) are independent work items for the backend's threads. Memory is
 * O(len + band): never a len × len matrix. `kt` holds the head's keys, transposed in blocks
 * (⌈len/32⌉·32·head_dim floats), its value rows (len·head_dim) and whether the band's scores
 * may see each key (⌈len/32⌉·32). Masked keys add exactly nothing, whatever their keys and
 * values hold. */
#define DC_KB 32
#define DC_QG 3
/* Named variables for the group's rows, not arrays: gcc keeps an array of vectors on the stack. */
#define DC_QROWS(X) X(0) X(1) X(2)

/* One row's scores: the blocks a band touches (at most band + 2 partial blocks), then the
 * global keys; a multiple of 16 floats, so every row starts aligned like the first. */
static size_t score_row_floats(size_t band, uint32_t n_glob) {
    return (band + 2 * DC_KB + n_glob + 15) / 16 * 16;
}

/* Scaled scores of G rows (a constant in each call) over key blocks [b0, b1]: row g's score of
 * key b0·32 + t goes to sc[g·stride + t]. Where kb[key] is 0 (a key no row may see) the score
 * is -inf whatever the key holds; all ones keeps it (kb NULL: every key). */
DC_BODY void scores_rows(const float *const *qg, const float *kt, const uint32_t *kb,
                         uint32_t head_dim, uint32_t b0, uint32_t b1, float scale, float *sc,
                         size_t stride, const uint32_t G) {
    for (uint32_t jb = b0; jb <= b1; jb++) {
        const float *kr = kt + (size_t)jb * head_dim * DC_KB;
#define DC_DECL(g) dc_v8 s##g##0 = {0}, s##g##1 = {0}, s##g##2 = {0}, s##g##3 = {0};
        DC_QROWS(DC_DECL)
#undef DC_DECL
        for (uint32_t d = 0; d < head_dim; d++, kr += DC_KB) {
            dc_v8 k0, k1, k2, k3;
            V8_LOAD(k0, kr);
            V8_LOAD(k1, kr + 8);
            V8_LOAD(k2, kr + 16);
            V8_LOAD(k3, kr + 24);
#define DC_ROW(g)                                                                                  \
    if (G > g) {                                                                                   \
        const float qd = qg[g][d];                                                                 \
        s##g##0 += qd * k0, s##g##1 += qd * k1, s##g##2 += qd * k2, s##g##3 += qd * k3;            \
    }
            DC_QROWS(DC_ROW)
#undef DC_ROW
        }
        dc_v8u m0 = {0}, m1 = {0}, m2 = {0}, m3 = {0};
        if (kb) {
            V8_LOAD(m0, kb + (size_t)jb * DC_KB);
            V8_LOAD(m1, kb + (size_t)jb * DC_KB + 8);
            V8_LOAD(m2, kb + (size_t)jb * DC_KB + 16);
            V8_LOAD(m3, kb + (size_t)jb * DC_KB + 24);
        }
#define DC_OUT(g)                                                                                  \
    if (G > g) {                                                                                   \
        float *dst = sc + g * stride + (size_t)(jb - b0) * DC_KB;                                  \
        s##g##0 *= scale, s##g##1 *= scale, s##g##2 *= scale, s##g##3 *= scale;                    \
        if (kb) {                                                                                  \
            V8_KEEP_OR_NINF(s##g##0, m0);                                                          \
            V8_KEEP_OR_NINF(s##g##1, m1);                                                          \
            V8_KEEP_OR_NINF(s##g##2, m2);                                                          \
            V8_KEEP_OR_NINF(s##g##3, m3);                                                          \
        }                                                                                          \
        V8_STORE(dst, s##g##0);                                                                    \
        V8_STORE(dst + 8, s##g##1);                                                                \
        V8_STORE(dst + 16, s##g##2);                                                               \
        V8_STORE(dst + 24, s##g##3);                                                               \
    }
        DC_QROWS(DC_OUT)
#undef DC_OUT
    }
}

/* Row qi's scores sc[0, nb) (keys base + t; masked and global keys already -inf) become
 * probabilities, and its global keys' sc[nb + g] are computed and joined; keys outside
 * [lo, hi], masked, or global (counted once, among the globals) get exactly 0. Returns 1/Σ, or
 * 0 when no key is live (then every probability is 0). */
DC_BODY float softmax_row(float *sc, uint32_t nb, uint32_t base, uint32_t lo, uint32_t hi,
                          const uint8_t *key_mask, const float *qi,
                          const float *k, size_t ld_kv, size_t off, uint32_t head_dim, float scale,
                          const uint32_t *glist, uint32_t n_glob) {
    for (uint32_t t = 0; t < lo - base; t++) sc[t] = -INFINITY;
    for (uint32_t t = hi + 1 - base; t < nb; t++) sc[t] = -INFINITY; /* past the band */
    float mxl[LANES];
    for (int l = 0; l < LANES; l++) mxl[l] = -INFINITY;
    uint32_t t0 = 0;
    for (; t0 + LANES <= nb; t0 += LANES)
        for (int l = 0; l < LANES; l++) mxl[l] = sc[t0 + l] > mxl[l] ? sc[t0 + l] : mxl[l];
    float mx = -INFINITY;
    for (; t0 < nb; t0++) mx = sc[t0] > mx ? sc[t0] : mx;
    for (int l = 0; l < LANES; l++) mx = mxl[l] > mx ? mxl[l] : mx;
    /* every banded key excluded leaves mx at -inf (scores of finite inputs are finite) */
    uint32_t live = mx > -INFINITY;
    for (uint32_t g = 0; g < n_glob; g++) {
        uint32_t j = glist[g];
        if (key_mask && !key_mask[j]) {
            sc[nb + g] = -INFINITY;
            continue;
        }
        float sg = dot_body(qi, k + (size_t)j * ld_kv + off, head_dim) * scale;
        sc[nb + g] = sg;
        mx = sg > mx ? sg : mx;
        live++;
    }
    const uint32_t n = nb + n_glob;
    if (!live) {
        for (uint32_t t = 0; t < n; t++) sc[t] = 0.0f;
        return 0.0f;
    }
    for (uint32_t t = 0; t < n; t++) {
        float e = exp_one(sc[t] - mx);
        sc[t] = sc[t] == -INFINITY ? 0.0f : e; /* exactly 0 for the excluded keys */
    }
    return 1.0f / sum_body(sc, n);
}

/* og[g] = inv[g] · Σ_t p[g][t] · v[key t] for G rows (a constant in each call), with
 * p[g][t] = sc[g·stride + t], key t = base + t for t < nk (the keys of the blocks that exist)
 * and glist[t - nb] for nb ≤ t < n, and the head's value rows vh[key, head_dim]. Masked keys
 * are skipped, so their value rows may hold anything; any other key of probability 0 (outside
 * one row's band, exp underflow) is a real one, whose finite values add exactly 0. Columns go
 * 32 at a time (four vectors per row) and the rest one by one. */
DC_BODY void values_rows(float *const *og, const float *sc, size_t stride, const float *inv,
                         uint32_t nk, uint32_t nb, uint32_t n, uint32_t base,
                         const uint32_t *glist, const uint8_t *key_mask, const float *vh,
                         uint32_t head_dim, const uint32_t G) {
    uint32_t d0 = 0;
    for (; d0 + 32 <= head_dim; d0 += 32) {
#define DC_DECL(g) dc_v8 a##g##0 = {0}, a##g##1 = {0}, a##g##2 = {0}, a##g##3 = {0};
        DC_QROWS(DC_DECL)
#undef DC_DECL
        for (uint32_t t = 0; t < n; t = t + 1 == nk ? nb : t + 1) {
            const uint32_t j = t < nb ? base + t : glist[t - nb];
            if (key_mask && !key_mask[j]) continue;
            const float p0 = sc[t], p1 = G > 1 ? sc[stride + t] : 0.0f,
                        p2 = G > 2 ? sc[2 * stride + t] : 0.0f;
            const float *vj = vh + (size_t)j * head_dim + d0;
            dc_v8 x;
#define DC_COL(c)                                                                                  \
    V8_LOAD(x, vj + 8 * c);                                                                        \
    a0##c += p0 * x;                                                                               \
    if (G > 1) a1##c += p1 * x;                                                                    \
    if (G > 2) a2##c += p2 * x;
            DC_COL(0)
            DC_COL(1)
            DC_COL(2)
            DC_COL(3)
#undef DC_COL
        }
#define DC_OUT(g)                                                                                  \
    if (G > g) {                                                                                   \
        float *o = og[g] + d0;                                                                     \
        a##g##0 *= inv[g], a##g##1 *= inv[g], a##g##2 *= inv[g], a##g##3 *= inv[g];                \
        V8_STORE(o, a##g##0);                                                                      \
        V8_STORE(o + 8, a##g##1);                                                                  \
        V8_STORE(o + 16, a##g##2);                                                                 \
        V8_STORE(o + 24, a##g##3);                                                                 \
    }
        DC_QROWS(DC_OUT)
#undef DC_OUT
    }
    for (uint32_t g = 0; g < G && d0 < head_dim; g++) {
        float acc[32] = {0};
        const uint32_t dn = head_dim - d0;
        for (uint32_t t = 0; t < n; t = t + 1 == nk ? nb : t + 1) {
            const float p = sc[g * stride + t];
            if (p == 0.0f) continue;
            const uint32_t j = t < nb ? base + t : glist[t - nb];
            const float *vj = vh + (size_t)j * head_dim + d0;
            for (uint32_t d = 0; d < dn; d++) acc[d] += p * vj[d];
        }
        for (uint32_t d = 0; d < dn; d++) og[g][d0 + d] = acc[d] * inv[g];
    }
}

DC_BODY void attention_head_body(const float *q, size_t ld_q, const float *k, const float *v,
                                 size_t ld_kv, float *out, size_t ld_out, uint32_t len,
                                 const uint8_t *key_mask, uint32_t h, uint32_t head_dim,
                                 float scale, uint32_t left, uint32_t right, const uint32_t *qpos,
                                 uint32_t n_q, const uint32_t *glist, uint32_t n_glob,
                                 const uint8_t *gflag, bool skip_global, float *kt, float *sc) {
    if (!len) return;
    const uint32_t nblk = (len + DC_KB - 1) / DC_KB;
    const size_t off = (size_t)h * head_dim;
    for (uint32_t jb = 0; jb < nblk; jb++) {
        float *blk = kt + (size_t)jb * head_dim * DC_KB;
        for (uint32_t u = 0; u < DC_KB; u++) {
            uint32_t j = jb * DC_KB + u;
            const float *kj = k + (size_t)j * ld_kv + off;
            for (uint32_t d = 0; d < head_dim; d++) blk[(size_t)d * DC_KB + u] = j < len ? kj[d] : 0.0f;
        }
    }
    /* the head's value rows, contiguous: in place they are a page apart (ld_kv), past the
     * prefetchers and the TLB's reach, and every group of rows reads them all */
    float *vh = kt + (size_t)nblk * DC_KB * head_dim;
    for (uint32_t j = 0; j < len; j++)
        memcpy(vh + (size_t)j * head_dim, v + (size_t)j * ld_kv + off, head_dim * sizeof *vh);
    /* the keys the band's scores exclude (masked, or global: counted once, below) get 0 */
    uint32_t *kb = NULL;
    if (key_mask || gflag) {
        kb = (uint32_t *)(vh + (size_t)len * head_dim);
        for (uint32_t j = 0; j < nblk * DC_KB; j++)
            kb[j] = j < len && ((key_mask && !key_mask[j]) || (gflag && gflag[j])) ? 0 : ~0u;
    }
    const uint64_t wide = (uint64_t)left + right + 1;
    const size_t stride = score_row_floats(wide > len ? len : (size_t)wide, n_glob);
    for (uint32_t r = 0; r < n_q;) {
        /* the next rows (up to DC_QG) whose bands touch the same key blocks */
        uint32_t rows[DC_QG], lo[DC_QG], hi[DC_QG], G = 0, b0 = 0, b1 = 0;
        for (; r < n_q && G < DC_QG; r++) {
            const uint32_t i = qpos ? qpos[r] : r;
            if (skip_global && gflag && gflag[i]) continue;
            const uint32_t l = left >= i ? 0 : i - left;
            const uint32_t e = right >= len - 1 - i ? len - 1 : i + right;
            if (G && (l / DC_KB != b0 || e / DC_KB != b1)) break;
            b0 = l / DC_KB;
            b1 = e / DC_KB;
            rows[G] = r, lo[G] = l, hi[G] = e;
            G++;
        }
        if (!G) continue;
        const uint32_t base = b0 * DC_KB, nb = (b1 - b0 + 1) * DC_KB;
        const float *qg[DC_QG];
        float *og[DC_QG], inv[DC_QG];
        for (uint32_t g = 0; g < G; g++) {
            qg[g] = q + (size_t)rows[g] * ld_q + off;
            og[g] = out + (size_t)rows[g] * ld_out + off;
        }
        if (G == DC_QG) scores_rows(qg, kt, kb, head_dim, b0, b1, scale, sc, stride, DC_QG);
        else if (G == 2) scores_rows(qg, kt, kb, head_dim, b0, b1, scale, sc, stride, 2);
        else scores_rows(qg, kt, kb, head_dim, b0, b1, scale, sc, stride, 1);
        for (uint32_t g = 0; g < G; g++)
            inv[g] = softmax_row(sc + g * stride, nb, base, lo[g], hi[g], key_mask, qg[g], k,
                                 ld_kv, off, head_dim, scale, glist, n_glob);
        const uint32_t n = nb + n_glob, nk = len - base < nb ? len - base : nb;
        if (G == DC_QG)
            values_rows(og, sc, stride, inv, nk, nb, n, base, glist, key_mask, vh, head_dim, DC_QG);
        else if (G == 2)
            values_rows(og, sc, stride, inv, nk, nb, n, base, glist, key_mask, vh, head_dim, 2);
        else values_rows(og, sc, stride, inv, nk, nb, n, base, glist, key_mask, vh, head_dim, 1);
    }
}
#undef DC_QROWS

/* ---- the three compiled variants ---- */

typedef struct dc_kernel_table {
    const char *isa;
    void (*exp)(const float *, float *, size_t);
    void (*erf)(const float *, float *, size_t);
    void (*act)(dc_activation, float *, size_t);
    void (*add)(float *, const float *, size_t);
    void (*layernorm)(const float *, const float *, const float *, const float *, float, size_t,
                      size_t, float *);
    void (*embed_sum)(size_t, size_t, const float *, const uint32_t *, const float *,
                      const uint32_t *, const float *, const uint32_t *, float *);
    void (*attention_head)(const float *, size_t, const float *, const float *, size_t, float *,
                           size_t, uint32_t, const uint8_t *, uint32_t, uint32_t, float,
                           uint32_t, uint32_t, const uint32_t *, uint32_t, const uint32_t *,
                           uint32_t, const uint8_t *, bool, float *, float *);
} dc_kernel_table;

#define DC_KERNEL_VARIANT(sfx, attr)                                                          \
    attr static void exp_##sfx(const float *x, float *y, size_t n) { exp_body(x, y, n); }     \
    attr static void erf_##sfx(const float *x, float *y, size_t n) { erf_body(x, y, n); }     \
    attr static void act_##sfx(dc_activation a, float *x, size_t n) { act_body(a, x, n); }    \
    attr static void add_##sfx(float *y, const float *x, size_t n) { add_body(y, x, n); }     \
    attr static void layernorm_##sfx(const float *x, const float *res, const float *g,        \
                                     const float *b, float eps, size_t rows, size_t cols,     \
                                     float *y) {                                              \
        layernorm_body(x, res, g, b, eps, rows, cols, y);                                     \
    }                                                                                         \
    attr static void embed_sum_##sfx(size_t rows, size_t cols, const float *t0,               \
                                     const uint32_t *i0, const float *t1, const uint32_t *i1, \
                                     const float *t2, const uint32_t *i2, float *out) {       \
        embed_sum_body(rows, cols, t0, i0, t1, i1, t2, i2, out);                              \
    }                                                                                         \
    attr static void attention_head_##sfx(                                                    \
        const float *q, size_t ld_q, const float *k, const float *v, size_t ld_kv, float *out, \
        size_t ld_out, uint32_t len, const uint8_t *mask, uint32_t h, uint32_t head_dim,       \
        float scale, uint32_t left, uint32_t right, const uint32_t *qpos, uint32_t n_q,        \
        const uint32_t *glist, uint32_t n_glob, const uint8_t *gflag, bool skip_global,       \
        float *kt, float *sc) {                                                               \
        attention_head_body(q, ld_q, k, v, ld_kv, out, ld_out, len, mask, h, head_dim, scale, \
                            left, right, qpos, n_q, glist, n_glob, gflag, skip_global, kt, sc); \
    }                                                                                         \
    static const dc_kernel_table table_##sfx = {#sfx,          exp_##sfx,       erf_##sfx,    \
                                                act_##sfx,     add_##sfx,       layernorm_##sfx, \
                                                embed_sum_##sfx, attention_head_##sfx};

DC_KERNEL_VARIANT(generic, )
#ifdef DC_X86
DC_KERNEL_VARIANT(avx2, __attribute__((target("avx2,fma"))))
#if defined(__clang__)
DC_KERNEL_VARIANT(avx512, __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"))))
#else
/* gcc keeps 256-bit vectors for AVX-512 targets unless told otherwise */
DC_KERNEL_VARIANT(avx512,
                  __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,"
                                        "prefer-vector-width=512"))))
#endif
#endif

static const dc_kernel_table *dc_kernels_best;
static pthread_once_t dc_kernels_once = PTHREAD_ONCE_INIT;
static _Atomic int dc_kernels_generic_forced;

static void dc_kernels_pick(void) {
    dc_kernels_best = &table_generic;
#ifdef DC_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
        dc_kernels_best = &table_avx512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        dc_kernels_best = &table_avx2;
#endif
}

static const dc_kernel_table *K(void) {
    pthread_once(&dc_kernels_once, dc_kernels_pick);
    return dc_kernels_generic_forced ? &table_generic : dc_kernels_best;
}

void dc_kernel_force_generic(bool on) { dc_kernels_generic_forced = on; }
const char *dc_cpu_kernel_isa(void) { return K()->isa; }

void dc_kernel_exp(const float *x, float *y, size_t n) { K()->exp(x, y, n); }
void dc_kernel_erf(const float *x, float *y, size_t n) { K()->erf(x, y, n); }
void dc_kernel_activation(dc_activation act, float *x, size_t n) { K()->act(act, x, n); }
void dc_kernel_add(float *y, const float *x, size_t n) { K()->add(y, x, n); }

void dc_kernel_col_max(const float *x, size_t rows, size_t cols, size_t ld, float *w) {
    for (size_t c = 0; c < cols; c++) w[c] = -INFINITY;
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * ld;
        for (size_t c = 0; c < cols; c++) w[c] = xr[c] > w[c] ? xr[c] : w[c];
    }
}

void dc_kernel_layernorm(const float *x, const float *residual, const float *gamma,
                         const float *beta, float eps, size_t rows, size_t cols, float *y) {
    K()->layernorm(x, residual, gamma, beta, eps, rows, cols, y);
}

void dc_kernel_embed_sum(size_t rows, size_t cols, const float *t0, const uint32_t *i0,
                         const float *t1, const uint32_t *i1, const float *t2,
                         const uint32_t *i2, float *out) {
    K()->embed_sum(rows, cols, t0, i0, t1, i1, t2, i2, out);
}

size_t dc_kernel_attention_scores_floats(size_t band, uint32_t n_glob) {
    return DC_QG * score_row_floats(band, n_glob);
}

size_t dc_kernel_attention_kv_floats(uint32_t len, uint32_t head_dim) {
    const size_t blocks = ((size_t)len + DC_KB - 1) / DC_KB * DC_KB;
    return blocks * head_dim + (size_t)len * head_dim + blocks;
}

void dc_kernel_attention_head(const float *q, size_t ld_q, const float *k, const float *v,
                              size_t ld_kv, float *out, size_t ld_out, uint32_t len,
                              const uint8_t *key_mask, uint32_t h, uint32_t head_dim, float scale,
                              uint32_t left, uint32_t right, const uint32_t *qpos, uint32_t n_q,
                              const uint32_t *glist, uint32_t n_glob, const uint8_t *gflag,
                              bool skip_global, float *kt, float *sc) {
    K()->attention_head(q, ld_q, k, v, ld_kv, out, ld_out, len, key_mask, h, head_dim, scale,
                        left, right, qpos, n_q, glist, n_glob, gflag, skip_global, kt, sc);
}

bool dc_activation_parse(const char *name, dc_activation *out) {
    static const struct {
        const char *name;
        dc_activation act;
    } names[] = {
        {"gelu", DC_ACT_GELU_ERF},           {"gelu_new", DC_ACT_GELU_TANH},
        {"gelu_pytorch_tanh", DC_ACT_GELU_TANH}, {"gelu_fast", DC_ACT_GELU_TANH},
        {"quick_gelu", DC_ACT_QUICK_GELU},   {"relu", DC_ACT_RELU},
    };
    if (!name) return false;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0) {
            *out = names[i].act;
            return true;
        }
    return false;
}

const char *dc_activation_name(dc_activation a) {
    switch (a) {
    case DC_ACT_NONE: return "none";
    case DC_ACT_GELU_ERF: return "gelu";
    case DC_ACT_GELU_TANH: return "gelu_new";
    case DC_ACT_QUICK_GELU: return "quick_gelu";
    case DC_ACT_RELU: return "relu";
    }
    return "unknown";
}

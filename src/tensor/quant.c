/* bf16 and int8 weight formats: conversions, quantisers and plain-C references (quant.h). */
#include "tensor/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define DC_QX86 1
#define DC_AVX2 __attribute__((target("avx2,fma")))
#endif

#include <oneapi/dnnl/dnnl.h>

#include "core/error.h"
#include "tensor/backend.h"

uint16_t dc_quant_bf16_from_f32(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

float dc_quant_bf16_to_f32(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

void dc_quant_bf16_pack(const float *src, size_t n, uint16_t *dst) {
    for (size_t i = 0; i < n; i++) dst[i] = dc_quant_bf16_from_f32(src[i]);
}

/* The loops that run at every forward go in blocks of QB values plus a scalar tail: GCC's -O2
 * vectoriser only takes a loop whose trip count the vector code covers whole. */
#define QB 8

/* Rows the dequantisation takes at once, and the room for one row's outlier values. */
#define DQ_ROWS 4
#define DQ_XS (DC_INT8_MAX_K / DC_INT8_OUTLIER_SHARE + 1)

/* AVX2 versions of the per-forward loops, chosen at run time like the kernels of cpu_kernels.c
 * (and, like them, off under dc_kernel_force_generic). They do the same IEEE operations in the
 * same order (no FMA), so both paths give the same bits. */
#ifdef DC_QX86
static bool use_avx2(void) { return strcmp(dc_cpu_kernel_isa(), "generic") != 0; }

DC_AVX2 static size_t unpack_avx2(const uint16_t *src, size_t n, float *dst) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(src + i));
        __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
        _mm256_storeu_si256((__m256i *)(void *)(dst + i), w);
    }
    return i;
}

DC_AVX2 static uint32_t colmax_avx2(const float *row, uint32_t k, float *colmax) {
    const __m256 mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    uint32_t j = 0;
    for (; j + 8 <= k; j += 8) {
        __m256 a = _mm256_and_ps(_mm256_loadu_ps(row + j), mask);
        _mm256_storeu_ps(colmax + j, _mm256_max_ps(a, _mm256_loadu_ps(colmax + j)));
    }
    return j;
}

/* Fills lo/hi/bad lane accumulators over the whole blocks; returns the values covered. */
DC_AVX2 static uint32_t range_avx2(const float *row, uint32_t k, float *lo8, float *hi8,
                                   float *bad8) {
    __m256 lo = _mm256_setzero_ps(), hi = lo, bad = lo, zero = lo;
    uint32_t i = 0;
    for (; i + 8 <= k; i += 8) {
        __m256 v = _mm256_loadu_ps(row + i);
        lo = _mm256_min_ps(v, lo);
        hi = _mm256_max_ps(v, hi);
        bad = _mm256_add_ps(bad, _mm256_mul_ps(v, zero));
    }
    _mm256_storeu_ps(lo8, lo);
    _mm256_storeu_ps(hi8, hi);
    _mm256_storeu_ps(bad8, bad);
    return i;
}

DC_AVX2 static uint32_t quantize_avx2(const float *row, uint32_t k, float inv, float zf,
                                      float top, uint8_t *qr) {
    const __m256 vinv = _mm256_set1_ps(inv), vz = _mm256_set1_ps(zf), vtop = _mm256_set1_ps(top),
                 zero = _mm256_setzero_ps();
    uint32_t i = 0;
    for (; i + 8 <= k; i += 8) {
        __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(row + i), vinv), vz);
        v = _mm256_min_ps(_mm256_max_ps(v, zero), vtop);
        __m256i q = _mm256_cvttps_epi32(v);
        __m128i p16 = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        _mm_storel_epi64((__m128i *)(void *)(qr + i), _mm_packus_epi16(p16, p16));
    }
    return i;
}

/* Dequantises the columns [0, n rounded down to 8) of `rb` rows (a constant once inlined:
 * their accumulators stay in registers) and adds the outlier columns' part, each wo[t] block
 * loaded once for all rb rows. The same operations in the same order as the portable loop
 * (fmaf there). */
DC_AVX2 static inline __attribute__((always_inline)) uint32_t
dequant_rows_avx2(float *y, size_t ld, uint32_t n, const float *sx, const int32_t *zx,
                  const float *sw, const int32_t *colsum, const float *bias, const float *xs,
                  uint32_t n_skip, const float *wo, const int rb) {
    uint32_t c = 0;
    for (; c + 8 <= n; c += 8) {
        const __m256 swc = _mm256_loadu_ps(sw + c);
        const __m256i cs = _mm256_loadu_si256((const __m256i *)(const void *)(colsum + c));
        __m256 v[DQ_ROWS];
        for (int i = 0; i < rb; i++) {
            __m256i acc = _mm256_loadu_si256((const __m256i *)(const void *)(y + i * ld + c));
            __m256i t = _mm256_sub_epi32(acc, _mm256_mullo_epi32(_mm256_set1_epi32(zx[i]), cs));
            v[i] = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(sx[i]), swc), _mm256_cvtepi32_ps(t));
            if (bias) v[i] = _mm256_add_ps(v[i], _mm256_loadu_ps(bias + c));
        }
        for (uint32_t t = 0; t < n_skip; t++) {
            const __m256 w = _mm256_loadu_ps(wo + (size_t)t * n + c);
            for (int i = 0; i < rb; i++)
                v[i] = _mm256_fmadd_ps(_mm256_set1_ps(xs[(size_t)i * DQ_XS + t]), w, v[i]);
        }
        for (int i = 0; i < rb; i++) _mm256_storeu_ps(y + i * ld + c, v[i]);
    }
    return c;
}

DC_AVX2 static uint32_t dequant_block_avx2(float *y, size_t ld, uint32_t n, const float *sx,
                                           const int32_t *zx, const float *sw,
                                           const int32_t *colsum, const float *bias,
                                           const float *xs, uint32_t n_skip, const float *wo) {
    return dequant_rows_avx2(y, ld, n, sx, zx, sw, colsum, bias, xs, n_skip, wo, DQ_ROWS);
}

DC_AVX2 static uint32_t dequant_row_avx2(float *y, uint32_t n, float s, int32_t z,
                                         const float *sw, const int32_t *colsum,
                                         const float *bias, const float *xs, uint32_t n_skip,
                                         const float *wo) {
    return dequant_rows_avx2(y, 0, n, &s, &z, sw, colsum, bias, xs, n_skip, wo, 1);
}
#endif

void dc_quant_bf16_unpack(const uint16_t *src, size_t n, float *dst) {
    uint32_t *d = (uint32_t *)(void *)dst;
    size_t i = 0;
#ifdef DC_QX86
    if (use_avx2()) i = unpack_avx2(src, n, dst);
#endif
    for (; i + QB <= n; i += QB)
        for (int j = 0; j < QB; j++) d[i + j] = (uint32_t)src[i + j] << 16;
    for (; i < n; i++) d[i] = (uint32_t)src[i] << 16;
}

dc_int8_ranges dc_quant_int8_ranges_cpu(void) {
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    bool vnni = (isa & (unsigned)dnnl_cpu_isa_avx512_core_vnni) ==
                    (unsigned)dnnl_cpu_isa_avx512_core_vnni ||
                (isa & (unsigned)dnnl_cpu_isa_avx2_vnni) == (unsigned)dnnl_cpu_isa_avx2_vnni;
    dc_int8_ranges r = vnni ? (dc_int8_ranges){255, 127, DC_INT8_OUTLIER_RATIO}
                            : (dc_int8_ranges){127, 127, DC_INT8_OUTLIER_RATIO_U7};
    return r;
}

/* Rounds to nearest (ties to even) and clamps, in float first so no conversion overflows. */
static int32_t quant_round(float v, float lo, float hi) {
    v = nearbyintf(v);
    if (!(v >= lo)) v = lo;
    if (v > hi) v = hi;
    return (int32_t)v;
}

dc_status dc_quant_int8_weights(const float *w, uint32_t n, uint32_t k, int32_t w_max, int8_t *q,
                                float *scale, int32_t *colsum) {
    if (w_max < 1 || w_max > 127)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "int8 weights: range %d is not in 1..127", w_max);
    for (uint32_t r = 0; r < n; r++) {
        const float *row = w + (size_t)r * k;
        float amax = 0.0f;
        for (uint32_t i = 0; i < k; i++) {
            if (!isfinite(row[i]))
                return dc_fail(DC_ERR_INVALID_VALUE,
                               "int8 weights: output row %u holds a non-finite value at column %u",
                               r, i);
            float a = fabsf(row[i]);
            if (a > amax) amax = a;
        }
        float s = amax > 0.0f ? amax / (float)w_max : 1.0f;
        float inv = 1.0f / s;
        int32_t sum = 0;
        for (uint32_t i = 0; i < k; i++) {
            int32_t v = quant_round(row[i] * inv, (float)-w_max, (float)w_max);
            q[(size_t)r * k + i] = (int8_t)v;
            sum += v;
        }
        scale[r] = s;
        colsum[r] = sum;
    }
    return DC_OK;
}

/* Reorders a[0, n) so that a[kth] holds what a sort would put there, with no larger value
 * before it and no smaller one after (Hoare's selection, O(n) on average; a holds no NaN).
 * A sort of each layer's column maxima took 2 ms of a 12 ms BERT-base int8 forward. */
static void select_kth(float *a, long n, long kth) {
    long lo = 0, hi = n - 1;
    while (lo < hi) {
        const float pivot = a[lo + (hi - lo) / 2];
        long i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) {
                const float t = a[i];
                a[i++] = a[j];
                a[j--] = t;
            }
        }
        if (kth <= j) hi = j;
        else if (kth >= i) lo = i;
        else return; /* j < kth < i: a[kth] equals the pivot */
    }
}

void dc_quant_int8_colmax(const float *x, size_t rows, uint32_t k, float *colmax) {
#ifdef DC_QX86
    const bool avx2 = use_avx2();
#endif
    for (size_t r = 0; r < rows; r++) {
        const float *row = x + r * k;
        uint32_t j = 0;
#ifdef DC_QX86
        if (avx2) j = colmax_avx2(row, k, colmax);
#endif
        /* NaN leaves the column as it was */
        for (; j + QB <= k; j += QB)
            for (int t = 0; t < QB; t++) {
                float a = fabsf(row[j + t]);
                colmax[j + t] = a > colmax[j + t] ? a : colmax[j + t];
            }
        for (; j < k; j++) {
            float a = fabsf(row[j]);
            colmax[j] = a > colmax[j] ? a : colmax[j];
        }
    }
}

uint32_t dc_quant_int8_outliers_pick(const float *colmax, uint32_t k, float ratio, uint32_t *idx,
                                     float *work) {
    uint32_t cap = k / DC_INT8_OUTLIER_SHARE;
    if (!cap) return 0;
    float *v = work;
    memcpy(v, colmax, (size_t)k * sizeof *v);
    /* the (cap + 1)-th largest, then the median among the values below it (k / 2 < k - cap - 1) */
    select_kth(v, k, k - cap - 1);
    const float below_cap = v[k - cap - 1];
    select_kth(v, k - cap - 1, k / 2);
    float thr = v[k / 2] * ratio;
    /* more candidates than the cap: keep the cap largest */
    if (below_cap > thr) thr = below_cap;
    uint32_t n = 0;
    for (uint32_t j = 0; j < k && n < cap; j++)
        if (colmax[j] > thr) idx[n++] = j;
    return n;
}

uint32_t dc_quant_int8_outliers(const float *x, size_t rows, uint32_t k, float ratio,
                                uint32_t *idx, float *work) {
    if (!(k / DC_INT8_OUTLIER_SHARE) || !rows) return 0;
    for (uint32_t j = 0; j < k; j++) work[j] = 0.0f;
    dc_quant_int8_colmax(x, rows, k, work);
    return dc_quant_int8_outliers_pick(work, k, ratio, idx, work + k);
}

/* min(0, row), max(0, row), and whether a value is inf or NaN (v·0 is NaN then). */
static bool row_range(const float *row, uint32_t k, bool avx2, float *lo_out, float *hi_out) {
    float lo[QB] = {0}, hi[QB] = {0}, bad[QB] = {0};
    uint32_t i = 0;
#ifdef DC_QX86
    if (avx2) i = range_avx2(row, k, lo, hi, bad);
#else
    (void)avx2;
#endif
    for (; i + QB <= k; i += QB)
        for (int j = 0; j < QB; j++) {
            float v = row[i + j];
            lo[j] = v < lo[j] ? v : lo[j];
            hi[j] = v > hi[j] ? v : hi[j];
            bad[j] += v * 0.0f;
        }
    float l = 0.0f, h = 0.0f, b = 0.0f;
    for (int j = 0; j < QB; j++) {
        l = lo[j] < l ? lo[j] : l;
        h = hi[j] > h ? hi[j] : h;
        b += bad[j];
    }
    for (; i < k; i++) {
        float v = row[i];
        l = v < l ? v : l;
        h = v > h ? v : h;
        b += v * 0.0f;
    }
    *lo_out = l;
    *hi_out = h;
    return b == 0.0f && isfinite(h - l);
}

/* row_range over the columns between the skipped ones (ascending). */
static bool row_range_skip(const float *row, uint32_t k, const uint32_t *skip, uint32_t n_skip,
                           bool avx2, float *lo_out, float *hi_out) {
    float lo = 0.0f, hi = 0.0f;
    bool ok = true;
    uint32_t a = 0;
    for (uint32_t t = 0; t <= n_skip; t++) {
        uint32_t b = t < n_skip ? skip[t] : k;
        if (b > a) {
            float l, h;
            ok = row_range(row + a, b - a, avx2, &l, &h) && ok;
            lo = l < lo ? l : lo;
            hi = h > hi ? h : hi;
        }
        a = b + 1;
    }
    *lo_out = lo;
    *hi_out = hi;
    return ok;
}

void dc_quant_int8_rows(const float *x, size_t rows, uint32_t k, int32_t act_max,
                        const uint32_t *skip, uint32_t n_skip, uint8_t *q, float *scale,
                        int32_t *zero, float *work) {
    /* the skipped columns are left out of the range and get the zero point afterwards (as
     * 0 would: 0 is always inside the range and quantises to the zero point exactly) */
    (void)work;
    bool avx2 = false;
#ifdef DC_QX86
    avx2 = use_avx2();
#endif
    for (size_t r = 0; r < rows; r++) {
        const float *row = x + r * k;
        uint8_t *qr = q + r * k;
        float lo, hi;
        if (!row_range_skip(row, k, skip, n_skip, avx2, &lo, &hi)) {
            memset(qr, 0, k);
            scale[r] = NAN;
            zero[r] = 0;
            continue;
        }
        float sc = hi > lo ? (hi - lo) / (float)act_max : 1.0f;
        float inv = 1.0f / sc;
        int32_t z = quant_round(-lo * inv, 0.0f, (float)act_max);
        /* clamped to [0, act_max] first, so +0.5 and truncation round (ties up) without a
         * libm call per value */
        const float zf = (float)z + 0.5f, top = (float)act_max + 0.49f;
        uint32_t i = 0;
#ifdef DC_QX86
        if (avx2) i = quantize_avx2(row, k, inv, zf, top, qr);
#endif
        for (; i + QB <= k; i += QB)
            for (int j = 0; j < QB; j++) {
                float v = row[i + j] * inv + zf;
                v = v > 0.0f ? v : 0.0f;
                v = v < top ? v : top;
                qr[i + j] = (uint8_t)(int32_t)v;
            }
        for (; i < k; i++) {
            float v = row[i] * inv + zf;
            v = v > 0.0f ? v : 0.0f;
            v = v < top ? v : top;
            qr[i] = (uint8_t)(int32_t)v;
        }
        for (uint32_t t = 0; t < n_skip; t++) qr[skip[t]] = (uint8_t)z;
        scale[r] = sc;
        zero[r] = z;
    }
}

void dc_quant_int8_outlier_weights(const int8_t *qw, const float *sw, uint32_t n, uint32_t k,
                                   const uint32_t *skip, uint32_t n_skip, float *wo) {
    for (uint32_t t = 0; t < n_skip; t++)
        for (uint32_t c = 0; c < n; c++)
            wo[(size_t)t * n + c] = sw[c] * (float)qw[(size_t)c * k + skip[t]];
}

/* The portable loop for row r's columns [c, n) (the vector code did those before c). */
static void dequant_row_tail(float *yr, uint32_t c, uint32_t n, float s, int32_t z,
                             const float *sw, const int32_t *colsum, const float *bias,
                             const float *xs, uint32_t n_skip, const float *wo) {
    for (; c < n; c++) {
        int32_t acc;
        memcpy(&acc, &yr[c], sizeof acc); /* the product wrote int32 into these bytes */
        float v = s * sw[c] * (float)(acc - z * colsum[c]);
        if (bias) v = v + bias[c];
        for (uint32_t t = 0; t < n_skip; t++) v = fmaf(xs[t], wo[(size_t)t * n + c], v);
        yr[c] = v;
    }
}

void dc_quant_int8_dequant_outliers(float *y, size_t rows, uint32_t n, size_t ld,
                                    const float *sx, const int32_t *zx, const float *sw,
                                    const int32_t *colsum, const float *bias, const float *x,
                                    uint32_t k, const uint32_t *skip, uint32_t n_skip,
                                    const float *wo) {
    /* |acc|, |zx·colsum| ≤ 255·127·k: int32 holds them while k ≤ DC_INT8_MAX_K (create checks) */
    float xs[DQ_ROWS * DQ_XS];
    bool avx2 = false;
#ifdef DC_QX86
    avx2 = use_avx2();
#endif
    (void)avx2;
    for (size_t r0 = 0; r0 < rows; r0 += DQ_ROWS) {
        const size_t rb = rows - r0 < DQ_ROWS ? rows - r0 : DQ_ROWS;
        for (size_t i = 0; i < rb; i++)
            for (uint32_t t = 0; t < n_skip; t++) xs[i * DQ_XS + t] = x[(r0 + i) * k + skip[t]];
        uint32_t done[DQ_ROWS] = {0};
#ifdef DC_QX86
        if (avx2 && rb == DQ_ROWS) {
            uint32_t c = dequant_block_avx2(y + r0 * ld, ld, n, sx + r0, zx + r0, sw, colsum, bias,
                                            xs, n_skip, wo);
            for (size_t i = 0; i < rb; i++) done[i] = c;
        } else if (avx2) {
            for (size_t i = 0; i < rb; i++)
                done[i] = dequant_row_avx2(y + (r0 + i) * ld, n, sx[r0 + i], zx[r0 + i], sw,
                                           colsum, bias, xs + i * DQ_XS, n_skip, wo);
        }
#endif
        for (size_t i = 0; i < rb; i++)
            dequant_row_tail(y + (r0 + i) * ld, done[i], n, sx[r0 + i], zx[r0 + i], sw, colsum,
                             bias, xs + i * DQ_XS, n_skip, wo);
    }
}

void dc_quant_int8_dequant(float *y, size_t rows, uint32_t n, size_t ld, const float *sx,
                           const int32_t *zx, const float *sw, const int32_t *colsum,
                           const float *bias) {
    dc_quant_int8_dequant_outliers(y, rows, n, ld, sx, zx, sw, colsum, bias, NULL, 0, NULL, 0,
                                   NULL);
}

dc_status dc_quant_linear_int8_ref(const float *x, size_t rows, uint32_t k, uint32_t n,
                                   const int8_t *qw, const float *sw, const int32_t *colsum,
                                   const float *bias, dc_int8_ranges rg, float *y) {
    uint8_t *qx = malloc(rows * k + 1);
    float *sx = malloc((rows + 1) * sizeof *sx), *work = malloc(2 * (size_t)k * sizeof *work);
    int32_t *zx = malloc((rows + 1) * sizeof *zx);
    uint32_t *skip = calloc((size_t)k / DC_INT8_OUTLIER_SHARE + 1, sizeof *skip);
    if (!qx || !sx || !zx || !work || !skip) {
        free(qx);
        free(sx);
        free(zx);
        free(work);
        free(skip);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "int8 reference of %zu rows", rows);
    }
    uint32_t n_skip = dc_quant_int8_outliers(x, rows, k, rg.outlier_ratio, skip, work);
    dc_quant_int8_rows(x, rows, k, rg.act_max, skip, n_skip, qx, sx, zx, work);
    for (size_t r = 0; r < rows; r++)
        for (uint32_t c = 0; c < n; c++) {
            int64_t acc = 0;
            for (uint32_t i = 0; i < k; i++)
                acc += (int64_t)qx[r * k + i] * qw[(size_t)c * k + i];
            double v = (double)(sx[r] * sw[c] * (float)(acc - (int64_t)zx[r] * colsum[c]));
            for (uint32_t t = 0; t < n_skip; t++)
                v += (double)x[r * k + skip[t]] * sw[c] * qw[(size_t)c * k + skip[t]];
            y[r * n + c] = (float)v + (bias ? bias[c] : 0.0f);
        }
    free(qx);
    free(sx);
    free(zx);
    free(work);
    free(skip);
    return DC_OK;
}

void dc_quant_linear_bf16_ref(const float *x, size_t rows, uint32_t k, uint32_t n,
                              const uint16_t *w16, const float *bias, bool round_x, float *y) {
    for (size_t r = 0; r < rows; r++)
        for (uint32_t c = 0; c < n; c++) {
            double acc = 0.0;
            for (uint32_t i = 0; i < k; i++) {
                float a = x[r * k + i];
                if (round_x) a = dc_quant_bf16_to_f32(dc_quant_bf16_from_f32(a));
                acc += (double)a * dc_quant_bf16_to_f32(w16[(size_t)c * k + i]);
            }
            y[r * n + c] = (float)acc + (bias ? bias[c] : 0.0f);
        }
}

const char *dc_weight_format_name(dc_weight_format f) {
    switch (f) {
    case DC_WEIGHTS_F32: return "fp32";
    case DC_WEIGHTS_BF16: return "bf16";
    case DC_WEIGHTS_INT8: return "int8";
    case DC_WEIGHTS_F16: return "fp16";
    case DC_WEIGHTS_FP8_E4M3: return "fp8";
    case DC_WEIGHTS_NVFP4: return "nvfp4";
    case DC_WEIGHTS_MXFP4: return "mxfp4";
    }
    return "unknown";
}

bool dc_weight_format_parse(const char *name, dc_weight_format *out) {
    static const struct {
        const char *name;
        dc_weight_format f;
    } names[] = {{"fp32", DC_WEIGHTS_F32}, {"f32", DC_WEIGHTS_F32}, {"none", DC_WEIGHTS_F32},
                 {"bf16", DC_WEIGHTS_BF16}, {"int8", DC_WEIGHTS_INT8}};
    for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i].name)) {
            *out = names[i].f;
            return true;
        }
    return false;
}

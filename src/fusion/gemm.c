/* Small-batch expert products: y[m×n] = x[m×k]·Wᵀ + b with W in nn.Linear layout [n×k], f32 or
 * bf16, for the few rows each expert gets per batch (top-2 of 8 experts: ~m/4 rows).
 *
 * oneDNN's sgemm is tuned for large products; at 1–16 rows it reaches 10–30 % of peak and
 * streams the weights at a fraction of memory bandwidth (bench/fusion). Here a block of 4 weight
 * rows is read once per K chunk (kept in L1 while every pair of input rows passes over it), so
 * the weights stream from memory once per call — at bf16 half the bytes. Each output row is
 * computed with the same operations in the same order whatever the other rows are, so a row's
 * result does not depend on its batch. AVX2+FMA at run time, portable C otherwise. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/bytes.h"
#include "fusion/internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DC_GEMM_X86 1
#endif

#define NB 4      /* weight rows per block */
#define KC_F32 1024
#define KC_BF16 2048

uint16_t dc_fusion_f32_to_bf16(float f) {
    uint32_t u = dc_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even */
    return (uint16_t)(u >> 16);
}

static inline float bf16_to_f32(uint16_t h) { return dc_f32_from_bits((uint32_t)h << 16); }

/* ---- portable: 8 lanes per (row, weight row), summed in a fixed order ---- */

static float lanes_sum(const float l[8]) {
    return ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
}

static void gemm_generic(const float *x, size_t m, const void *w, bool bf16, const float *bias,
                         uint32_t n, uint32_t k, float *y) {
    for (size_t i = 0; i < m; i++)
        for (uint32_t j = 0; j < n; j++) {
            float l[8] = {0};
            const float *xr = x + i * k;
            uint32_t c = 0;
            if (bf16) {
                const uint16_t *wr = (const uint16_t *)w + (size_t)j * k;
                for (; c + 8 <= k; c += 8)
                    for (int q = 0; q < 8; q++) l[q] += bf16_to_f32(wr[c + q]) * xr[c + q];
                for (; c < k; c++) l[0] += bf16_to_f32(wr[c]) * xr[c];
            } else {
                const float *wr = (const float *)w + (size_t)j * k;
                for (; c + 8 <= k; c += 8)
                    for (int q = 0; q < 8; q++) l[q] += wr[c + q] * xr[c + q];
                for (; c < k; c++) l[0] += wr[c] * xr[c];
            }
            y[i * n + j] = lanes_sum(l) + (bias ? bias[j] : 0.0f);
        }
}

#ifdef DC_GEMM_X86

#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

AVX2 static inline __m256 load_w(const void *w, bool bf16, size_t at) {
    if (bf16) {
        __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + at));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    return _mm256_loadu_ps((const float *)w + at);
}

/* One block: rows x[0..mb) (mb 1 or 2) × weight rows w[0..4), over k chunk [c0, c1). */
AVX2 static void block(const float *x0, const float *x1, const void *w, bool bf16, uint32_t k,
                       uint32_t c0, uint32_t c1, float out0[NB], float out1[NB]) {
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00;
    __m256 a10 = a00, a11 = a00, a12 = a00, a13 = a00;
    for (uint32_t c = c0; c < c1; c += 8) {
        __m256 w0 = load_w(w, bf16, c), w1 = load_w(w, bf16, (size_t)k + c);
        __m256 w2 = load_w(w, bf16, 2 * (size_t)k + c), w3 = load_w(w, bf16, 3 * (size_t)k + c);
        __m256 xa = _mm256_loadu_ps(x0 + c);
        a00 = _mm256_fmadd_ps(w0, xa, a00);
        a01 = _mm256_fmadd_ps(w1, xa, a01);
        a02 = _mm256_fmadd_ps(w2, xa, a02);
        a03 = _mm256_fmadd_ps(w3, xa, a03);
        if (x1) {
            __m256 xb = _mm256_loadu_ps(x1 + c);
            a10 = _mm256_fmadd_ps(w0, xb, a10);
            a11 = _mm256_fmadd_ps(w1, xb, a11);
            a12 = _mm256_fmadd_ps(w2, xb, a12);
            a13 = _mm256_fmadd_ps(w3, xb, a13);
        }
    }
    out0[0] = hsum8(a00), out0[1] = hsum8(a01), out0[2] = hsum8(a02), out0[3] = hsum8(a03);
    if (x1) out1[0] = hsum8(a10), out1[1] = hsum8(a11), out1[2] = hsum8(a12), out1[3] = hsum8(a13);
}

AVX2 static void gemm_avx2(const float *x, size_t m, const void *w, bool bf16, const float *bias,
                           uint32_t n, uint32_t k, float *y) {
    const uint32_t kc = bf16 ? KC_BF16 : KC_F32;
    const size_t esz = bf16 ? 2 : 4;
    for (uint32_t j0 = 0; j0 < n; j0 += NB) {
        const void *wb = (const uint8_t *)w + (size_t)j0 * k * esz;
        for (uint32_t c0 = 0; c0 < k; c0 += kc) {
            uint32_t c1 = c0 + kc < k ? c0 + kc : k;
            for (size_t i = 0; i < m; i += 2) {
                const float *x0 = x + i * k, *x1 = i + 1 < m ? x0 + k : NULL;
                float o0[NB], o1[NB];
                block(x0, x1, wb, bf16, k, c0, c1, o0, o1);
                float *y0 = y + i * n + j0, *y1 = y0 + n;
                for (int q = 0; q < NB; q++) {
                    y0[q] = c0 ? y0[q] + o0[q] : o0[q];
                    if (x1) y1[q] = c0 ? y1[q] + o1[q] : o1[q];
                }
            }
        }
    }
    if (bias)
        for (size_t i = 0; i < m; i++)
            for (uint32_t j = 0; j < n; j++) y[i * n + j] += bias[j];
}

static bool have_avx2(void) {
    static int cached = -1;
    if (cached < 0) cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return cached;
}
#endif

static bool force_generic;

void dc_fusion_gemm_force_generic(bool on) { force_generic = on; }

void dc_fusion_gemm(const float *x, size_t m, const void *w, bool bf16, const float *bias,
                    uint32_t n, uint32_t k, float *y) {
#ifdef DC_GEMM_X86
    /* the vector path wants whole 8-wide steps and 4-row weight blocks */
    if (!force_generic && have_avx2() && k % 8 == 0 && n % NB == 0) {
        gemm_avx2(x, m, w, bf16, bias, n, k, y);
        return;
    }
#endif
    gemm_generic(x, m, w, bf16, bias, n, k, y);
}

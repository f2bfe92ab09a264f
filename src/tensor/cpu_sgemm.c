/* f32 GEMM on weights packed in 16-column panels (cpu_sgemm.h).
 *
 * Blocking, innermost first: a 6 × 16 tile of y lives in twelve AVX registers while k runs over
 * a pass of up to 1024; a block of 72 packed rows is used by NCP panels in turn, and a block of
 * NCP panel slices by every row block, so both are read from L2 more often than from memory.
 * k up to 1024 (BERT, CLIP) is one pass, so a product of up to 72 rows reads every panel once,
 * front to back, as one sequential stream per thread: at 16 tokens a linear layer is a stream
 * of its weights, which the prefetchers follow best that way. Larger k runs in equal passes;
 * y accumulates from the second pass on. On 2 Zen 3 cores against oneDNN's gemm:jit on its
 * best (padded row-major) layout: 1.2-1.4x faster at 16 rows, even at 77-257 rows, within
 * 10 % at thousands (bench/encoder/README.md). */
#include "tensor/cpu_sgemm.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "tensor/backend.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define DC_SGEMM_X86 1
#endif

enum {
    KC_MAX = 1024, /* rows of k per pass: a panel slice of up to 64 KiB */
    MC = 72,       /* rows per block (a multiple of DC_SGEMM_MR): 6 row panels */
    NCP = 8,       /* weight panels per block */
    PFD = 16,      /* prefetch distance in the weight panel, in k (1 KiB) */
};

static size_t min_sz(size_t a, size_t b) {
    return a < b ? a : b;
}

size_t dc_sgemm_weights_floats(size_t n, size_t k) {
    return (n + DC_SGEMM_NR - 1) / DC_SGEMM_NR * DC_SGEMM_NR * k;
}

/* Panels [q0, q1) of `width` rows of src ([n, k] row-major, elements of `es` bytes), each
 * panel's rows interleaved per k; rows past n are 0. Weights are packed by output column,
 * inputs by row. Inlined with a constant es, so the copies are plain moves. */
__attribute__((always_inline)) static inline void pack_panels(const void *src, size_t n, size_t k,
                                                              size_t width, size_t es, void *out,
                                                              size_t q0, size_t q1) {
    for (size_t q = q0; q < q1; q++) {
        char *dst = (char *)out + q * width * k * es;
        const size_t r0 = q * width, rows = r0 < n ? min_sz(width, n - r0) : 0;
        if (rows < width) memset(dst, 0, k * width * es);
        for (size_t i = 0; i < rows; i++) {
            const char *row = (const char *)src + (r0 + i) * k * es;
            for (size_t kk = 0; kk < k; kk++)
                memcpy(dst + (kk * width + i) * es, row + kk * es, es);
        }
    }
}

void dc_sgemm_pack_weights(const float *w, size_t n, size_t k, float *out, size_t p0, size_t p1) {
    pack_panels(w, n, k, DC_SGEMM_NR, sizeof *w, out, p0, p1);
}

void dc_sgemm_pack_weights_bf16(const uint16_t *w, size_t n, size_t k, uint16_t *out, size_t p0,
                                size_t p1) {
    pack_panels(w, n, k, DC_SGEMM_NR, sizeof *w, out, p0, p1);
}

size_t dc_sgemm_rows_floats(size_t m, size_t k) {
    return (m + DC_SGEMM_MR - 1) / DC_SGEMM_MR * DC_SGEMM_MR * k;
}

void dc_sgemm_pack_rows(const float *x, size_t m, size_t k, float *out, size_t q0, size_t q1) {
    pack_panels(x, m, k, DC_SGEMM_MR, sizeof *x, out, q0, q1);
}

/* Writes (accumulate: adds) the mr × nr corner of a finished 6 × 16 tile to y, plus the bias of
 * its columns on the first pass. */
static void tile_store(const float *t, size_t mr, size_t nr, float *y, size_t ldy,
                       const float *bias, bool accumulate) {
    for (size_t i = 0; i < mr; i++) {
        float *yr = y + i * ldy;
        for (size_t j = 0; j < nr; j++)
            yr[j] = t[i * DC_SGEMM_NR + j] + (accumulate ? yr[j] : bias ? bias[j] : 0.0f);
    }
}

/* One tile: a = a pass of a packed row panel (6 per k), b = the pass's slice of a weight panel
 * (16 per k); bias only on the first pass (accumulate false). */
typedef void (*tile_fn)(const float *a, const float *b, size_t kc, float *y, size_t ldy, size_t nr,
                        const float *bias, bool accumulate);

/* fmaf, as the AVX2 tile's FMA: both tiles give the same bits (unit.quant checks). */
#define DC_TILE_GENERIC(MR)                                                                        \
    static void tile_generic_##MR(const float *a, const float *b, size_t kc, float *y, size_t ldy, \
                                  size_t nr, const float *bias, bool accumulate) {                 \
        float t[DC_SGEMM_MR][DC_SGEMM_NR] = {{0}};                                                 \
        for (size_t kk = 0; kk < kc; kk++, a += DC_SGEMM_MR, b += DC_SGEMM_NR)                     \
            for (size_t i = 0; i < MR; i++)                                                        \
                for (size_t j = 0; j < DC_SGEMM_NR; j++)                                           \
                    t[i][j] = fmaf(a[i], b[j], t[i][j]);                                           \
        tile_store(t[0], MR, nr, y, ldy, bias, accumulate);                                        \
    }
DC_TILE_GENERIC(1)
DC_TILE_GENERIC(2)
DC_TILE_GENERIC(3)
DC_TILE_GENERIC(4)
DC_TILE_GENERIC(5)
DC_TILE_GENERIC(6)
static const tile_fn tiles_generic[DC_SGEMM_MR + 1] = {
    NULL,           tile_generic_1, tile_generic_2, tile_generic_3,
    tile_generic_4, tile_generic_5, tile_generic_6};

#ifdef DC_SGEMM_X86
/* MR rows × 16 columns in 2·MR ymm accumulators; per k: two weight loads, MR broadcasts,
 * 2·MR FMAs. MR is a constant in each instance, so the untaken rows fold away. Named variables,
 * not arrays: gcc keeps an array of __m256 on the stack. */
#define DC_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
__attribute__((always_inline, target("avx2,fma"))) static inline void
tile_avx2_body(const float *a, const float *b, size_t kc, float *y, size_t ldy, size_t nr,
               const float *bias, bool accumulate, const size_t MR) {
#define DC_DECL(i) __m256 lo##i = _mm256_setzero_ps(), hi##i = lo##i;
    DC_ROWS(DC_DECL)
#undef DC_DECL
#pragma GCC unroll 4
    for (size_t kk = 0; kk < kc; kk++, a += DC_SGEMM_MR, b += DC_SGEMM_NR) {
        const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        _mm_prefetch((const char *)(b + PFD * DC_SGEMM_NR), _MM_HINT_T0);
#define DC_FMA(i)                                                                                  \
    if (MR > i) {                                                                                  \
        const __m256 ai = _mm256_broadcast_ss(a + i);                                              \
        lo##i = _mm256_fmadd_ps(ai, b0, lo##i);                                                    \
        hi##i = _mm256_fmadd_ps(ai, b1, hi##i);                                                    \
    }
        DC_ROWS(DC_FMA)
#undef DC_FMA
    }
    float t[DC_SGEMM_MR][DC_SGEMM_NR];
    if (nr == DC_SGEMM_NR) {
        __m256 base_lo = _mm256_setzero_ps(), base_hi = base_lo;
        if (!accumulate && bias) {
            base_lo = _mm256_loadu_ps(bias);
            base_hi = _mm256_loadu_ps(bias + 8);
        }
#define DC_OUT(i)                                                                                  \
    if (MR > i) {                                                                                  \
        float *yr = y + i * ldy;                                                                   \
        if (accumulate) {                                                                          \
            base_lo = _mm256_loadu_ps(yr);                                                         \
            base_hi = _mm256_loadu_ps(yr + 8);                                                     \
        }                                                                                          \
        _mm256_storeu_ps(yr, _mm256_add_ps(lo##i, base_lo));                                       \
        _mm256_storeu_ps(yr + 8, _mm256_add_ps(hi##i, base_hi));                                   \
    }
        DC_ROWS(DC_OUT)
#undef DC_OUT
        return;
    }
#define DC_TMP(i)                                                                                  \
    if (MR > i) {                                                                                  \
        _mm256_storeu_ps(t[i], lo##i);                                                             \
        _mm256_storeu_ps(t[i] + 8, hi##i);                                                         \
    }
    DC_ROWS(DC_TMP)
#undef DC_TMP
    tile_store(t[0], MR, nr, y, ldy, bias, accumulate);
}
#undef DC_ROWS

#define DC_TILE_AVX2(MR)                                                                           \
    __attribute__((target("avx2,fma"))) static void tile_avx2_##MR(                                \
        const float *a, const float *b, size_t kc, float *y, size_t ldy, size_t nr,                \
        const float *bias, bool accumulate) {                                                      \
        tile_avx2_body(a, b, kc, y, ldy, nr, bias, accumulate, MR);                                \
    }
DC_TILE_AVX2(1)
DC_TILE_AVX2(2)
DC_TILE_AVX2(3)
DC_TILE_AVX2(4)
DC_TILE_AVX2(5)
DC_TILE_AVX2(6)
static const tile_fn tiles_avx2[DC_SGEMM_MR + 1] = {
    NULL, tile_avx2_1, tile_avx2_2, tile_avx2_3, tile_avx2_4, tile_avx2_5, tile_avx2_6};
#endif

/* The CPU kernels' choice (cpu_kernels.c: CPUID, or generic when a test forces it) decides:
 * both AVX2 and AVX-512 machines run the AVX2 tile. */
static const tile_fn *tiles(void) {
#ifdef DC_SGEMM_X86
    if (strcmp(dc_cpu_kernel_isa(), "generic") != 0) return tiles_avx2;
#endif
    return tiles_generic;
}

const char *dc_sgemm_isa(void) {
    return tiles() == tiles_generic ? "generic" : "avx2";
}

/* k in passes of equal length up to KC_MAX: a layer of k ≤ 1024 streams each panel whole. */
static size_t pass_rows(size_t k) {
    const size_t passes = (k + KC_MAX - 1) / KC_MAX;
    return (k + passes - 1) / passes;
}

/* Pass [pc, pc + kc) of panels [jc, je) over every row: panel p's slice of the pass is at
 * b + (p - jc) * bstride, 16 floats per k. */
static void run_block(const float *xp, size_t m, size_t k, size_t pc, size_t kc, const float *b,
                      size_t bstride, size_t jc, size_t je, const float *bias, size_t n, float *y,
                      size_t ldy) {
    const tile_fn *tile = tiles();
    for (size_t ic = 0; ic < m; ic += MC) {
        const size_t ie = min_sz(ic + MC, m);
        for (size_t p = jc; p < je; p++) {
            const size_t c0 = p * DC_SGEMM_NR, nr = min_sz(DC_SGEMM_NR, n - c0);
            const float *bp = b + (p - jc) * bstride, *pb = bias ? bias + c0 : NULL;
            for (size_t r = ic; r < ie; r += DC_SGEMM_MR)
                tile[min_sz(DC_SGEMM_MR, ie - r)](xp + r * k + pc * DC_SGEMM_MR, bp, kc,
                                                  y + r * ldy + c0, ldy, nr, pb, pc > 0);
        }
    }
}

void dc_sgemm_run(const float *xp, size_t m, size_t k, const float *wp, const float *bias, size_t n,
                  float *y, size_t ldy, size_t p0, size_t p1) {
    const size_t kcp = pass_rows(k);
    p1 = min_sz(p1, (n + DC_SGEMM_NR - 1) / DC_SGEMM_NR);
    for (size_t pc = 0; pc < k; pc += kcp)
        for (size_t jc = p0; jc < p1; jc += NCP)
            run_block(xp, m, k, pc, min_sz(kcp, k - pc),
                      wp + jc * k * DC_SGEMM_NR + pc * DC_SGEMM_NR, k * DC_SGEMM_NR, jc,
                      min_sz(jc + NCP, p1), bias, n, y, ldy);
}

/* bf16 is the high half of an f32; n is a multiple of 16, whose fixed inner loop vectorises. */
static void widen(const uint16_t *src, size_t n, float *dst) {
    for (size_t i = 0; i < n; i += DC_SGEMM_NR)
        for (size_t j = 0; j < DC_SGEMM_NR; j++) {
            const uint32_t bits = (uint32_t)src[i + j] << 16;
            memcpy(dst + i + j, &bits, sizeof bits);
        }
}

size_t dc_sgemm_bf16_work_floats(void) { return (size_t)NCP * KC_MAX * DC_SGEMM_NR; }

void dc_sgemm_run_bf16(const float *xp, size_t m, size_t k, const uint16_t *wp, const float *bias,
                       size_t n, float *y, size_t ldy, size_t p0, size_t p1, float *work) {
    const size_t kcp = pass_rows(k);
    p1 = min_sz(p1, (n + DC_SGEMM_NR - 1) / DC_SGEMM_NR);
    for (size_t pc = 0; pc < k; pc += kcp) {
        const size_t kc = min_sz(kcp, k - pc);
        for (size_t jc = p0; jc < p1; jc += NCP) {
            const size_t je = min_sz(jc + NCP, p1), run = kc * DC_SGEMM_NR;
            for (size_t p = jc; p < je; p++)
                widen(wp + p * k * DC_SGEMM_NR + pc * DC_SGEMM_NR, run, work + (p - jc) * run);
            run_block(xp, m, k, pc, kc, work, run, jc, je, bias, n, y, ldy);
        }
    }
}

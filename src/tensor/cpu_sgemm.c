/* f32 GEMM on weights packed in 16-column panels (cpu_sgemm.h), and the bf16 × bf16 product
 * on the same panels holding pairs of k.
 *
 * Blocking, innermost first: a tile of y (6 × 16 in twelve ymm registers on AVX2, 12 × 16 in
 * twelve zmm registers over two row panels on AVX-512) lives in registers while k runs over a
 * pass of up to 1024; a block of 72 packed rows is used by NCP panels in turn, and a block of
 * NCP panel slices by every row block, so both are read from L2 more often than from memory.
 * k up to 1024 (BERT, CLIP) is one pass, so a product of up to 72 rows reads every panel once,
 * front to back, as one sequential stream per thread: at 16 tokens a linear layer is a stream
 * of its weights, which the prefetchers follow best that way. Larger k runs in equal passes;
 * y accumulates from the second pass on. Against oneDNN 2.6's gemm:jit on its best (padded
 * row-major) layout, 2 cores: 1.2-1.6x faster at 16 rows (Zen 3 and Zen 4), even at 77-257 rows
 * on Zen 3, 5-10 % slower at 128+ rows on Zen 4 (bench/encoder/README.md). */
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

/* One tile: a = a pass of a packed row panel (6 units per k step; the next panel's pass is lda
 * units on, for tiles of more than 6 rows), b = the pass's slice of a weight panel (16 per
 * step); a unit is an f32, or a pair of bf16 along k. Bias only on the first pass (accumulate
 * false). */
typedef void (*tile_fn)(const void *a, size_t lda, const void *b, size_t kc, float *y, size_t ldy,
                        size_t nr, const float *bias, bool accumulate);

/* The tiles of one kind, for 1 .. rows rows (6, or 12 over two row panels). */
typedef struct tile_set {
    size_t rows;
    tile_fn fn[2 * DC_SGEMM_MR + 1];
} tile_set;

/* fmaf, as the vector tiles' FMA: they all give the same bits (unit.tensor checks). */
#define DC_TILE_GENERIC(MR)                                                                        \
    static void tile_generic_##MR(const void *av, size_t lda, const void *bv, size_t kc, float *y, \
                                  size_t ldy, size_t nr, const float *bias, bool accumulate) {     \
        (void)lda;                                                                                 \
        const float *a = av, *b = bv;                                                              \
        float t[DC_SGEMM_MR][DC_SGEMM_NR] = {{0}};                                                 \
        for (size_t kk = 0; kk < kc; kk++, a += DC_SGEMM_MR, b += DC_SGEMM_NR)                     \
            for (size_t i = 0; i < MR; i++)                                                        \
                for (size_t j = 0; j < DC_SGEMM_NR; j++) t[i][j] = fmaf(a[i], b[j], t[i][j]);      \
        tile_store(t[0], MR, nr, y, ldy, bias, accumulate);                                        \
    }
DC_TILE_GENERIC(1)
DC_TILE_GENERIC(2)
DC_TILE_GENERIC(3)
DC_TILE_GENERIC(4)
DC_TILE_GENERIC(5)
DC_TILE_GENERIC(6)
static const tile_set tiles_generic = {6,
                                       {NULL, tile_generic_1, tile_generic_2, tile_generic_3,
                                        tile_generic_4, tile_generic_5, tile_generic_6}};

#ifdef DC_SGEMM_X86
/* Named variables for the tile's rows, not arrays: gcc keeps an array of vectors on the stack. */
#define DC_ROWS(X)   X(0) X(1) X(2) X(3) X(4) X(5)
#define DC_ROWS12(X) DC_ROWS(X) X(6) X(7) X(8) X(9) X(10) X(11)

/* Adds the bias (first pass) or y (later passes) to a finished tile of MR ≤ 6 rows, held as
 * lo/hi halves of 16 columns, and stores its MR × nr corner. */
__attribute__((always_inline, target("avx2,fma"))) static inline void
tile_out(__m256 lo0, __m256 hi0, __m256 lo1, __m256 hi1, __m256 lo2, __m256 hi2, __m256 lo3,
         __m256 hi3, __m256 lo4, __m256 hi4, __m256 lo5, __m256 hi5, float *y, size_t ldy,
         size_t nr, const float *bias, bool accumulate, const size_t MR) {
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

/* MR rows × 16 columns in 2·MR ymm accumulators; per k: two weight loads, MR broadcasts,
 * 2·MR FMAs. MR is a constant in each instance, so the untaken rows fold away. */
__attribute__((always_inline, target("avx2,fma"))) static inline void
tile_avx2_body(const float *a, size_t lda, const float *b, size_t kc, float *y, size_t ldy,
               size_t nr, const float *bias, bool accumulate, const size_t MR) {
    (void)lda;
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
    tile_out(lo0, hi0, lo1, hi1, lo2, hi2, lo3, hi3, lo4, hi4, lo5, hi5, y, ldy, nr, bias,
             accumulate, MR);
}

/* Stores a finished zmm tile of MR ≤ 12 rows (c0..c11, 16 columns each) through tile_out, six
 * rows at a time. */
#define DC_ZMM_OUT(MR)                                                                             \
    do {                                                                                           \
        DC_ROWS12(DC_HALVES)                                                                       \
        tile_out(lo0, hi0, lo1, hi1, lo2, hi2, lo3, hi3, lo4, hi4, lo5, hi5, y, ldy, nr, bias,     \
                 accumulate, (MR) < 6 ? (MR) : 6);                                                 \
        if ((MR) > 6)                                                                              \
            tile_out(lo6, hi6, lo7, hi7, lo8, hi8, lo9, hi9, lo10, hi10, lo11, hi11, y + 6 * ldy,  \
                     ldy, nr, bias, accumulate, (MR)-6);                                           \
    } while (0)
#define DC_HALVES(i)                                                                               \
    const __m256 lo##i = _mm512_castps512_ps256(c##i), hi##i = _mm512_extractf32x8_ps(c##i, 1);

/* The row value of accumulator i (row i of the first row panel, or i − 6 of the second) as a
 * 4-byte memory operand: a char array, which may alias the f32 or bf16-pair unit stored there. */
#define DC_ROW_AT(a, a2, i) (*(const char(*)[4])((i) < 6 ? (a) + (i) : (a2) + ((i) % 6)))

/* Up to 12 rows (two row panels) × 16 columns in zmm registers (AVX-512): a row's 16 columns are
 * one accumulator, and each step takes the row's value as an EVEX embedded broadcast from
 * memory, so a k step is one weight load and MR instructions, and each loaded weight serves 12
 * rows (the AVX2 tile: 2 + 3·MR instructions a step, 6 rows a load). gcc 12 does not fold the
 * broadcast by itself; a separate broadcast instruction costs Zen 4 an eighth of its rate.
 * f32: vfmadd231ps. bf16 pairs (AVX512-BF16; the caller checks the CPU has it): vdpbf16ps
 * multiplies a row's pair of k by each column's pair and adds both products to the column's
 * f32 lane, 32 multiply-adds where an FMA does 16; its latency (6 cycles on Zen 4) needs 6
 * independent accumulators at one a cycle, and a full tile has 12. Inline assembly, so one body
 * serves both without the bf16 target. */
#define DC_AVX512_TARGET "avx512f,avx512dq,avx512vl,avx2,fma"
__attribute__((always_inline, target(DC_AVX512_TARGET))) static inline void
tile_zmm_body(const uint32_t *a, size_t lda, const float *b, size_t kc, float *y, size_t ldy,
              size_t nr, const float *bias, bool accumulate, const size_t MR, const bool pairs) {
    const uint32_t *a2 = a + lda;
#define DC_DECL(i) __m512 c##i = _mm512_setzero_ps();
    DC_ROWS12(DC_DECL)
#undef DC_DECL
#pragma GCC unroll 4
    for (size_t kk = 0; kk < kc; kk++, a += DC_SGEMM_MR, a2 += DC_SGEMM_MR, b += DC_SGEMM_NR) {
        const __m512 bv = _mm512_load_ps(b);
        _mm_prefetch((const char *)(b + PFD * DC_SGEMM_NR), _MM_HINT_T0);
#define DC_STEP(i)                                                                                 \
    if (MR > i) {                                                                                  \
        if (pairs)                                                                                 \
            __asm__("vdpbf16ps %1%{1to16%}, %2, %0"                                                \
                    : "+v"(c##i)                                                                   \
                    : "m"(DC_ROW_AT(a, a2, i)), "v"(bv));                                          \
        else                                                                                       \
            __asm__("vfmadd231ps %1%{1to16%}, %2, %0"                                              \
                    : "+v"(c##i)                                                                   \
                    : "m"(DC_ROW_AT(a, a2, i)), "v"(bv));                                          \
    }
        DC_ROWS12(DC_STEP)
#undef DC_STEP
    }
    DC_ZMM_OUT(MR);
}
#undef DC_ROW_AT
#undef DC_HALVES
#undef DC_ZMM_OUT
#undef DC_ROWS12
#undef DC_ROWS

#define DC_TILE_X86(NAME, TARGET, BODY, MR)                                                        \
    __attribute__((target(TARGET))) static void tile_##NAME##_##MR(                                \
        const void *a, size_t lda, const void *b, size_t kc, float *y, size_t ldy, size_t nr,      \
        const float *bias, bool accumulate) {                                                      \
        BODY(MR);                                                                                  \
    }
#define DC_BODY_AVX2(MR)  tile_avx2_body(a, lda, b, kc, y, ldy, nr, bias, accumulate, MR)
#define DC_BODY_F32(MR)   tile_zmm_body(a, lda, b, kc, y, ldy, nr, bias, accumulate, MR, false)
#define DC_BODY_PAIRS(MR) tile_zmm_body(a, lda, b, kc, y, ldy, nr, bias, accumulate, MR, true)
#define DC_TILES6(NAME, TARGET, BODY)                                                              \
    DC_TILE_X86(NAME, TARGET, BODY, 1)                                                             \
    DC_TILE_X86(NAME, TARGET, BODY, 2)                                                             \
    DC_TILE_X86(NAME, TARGET, BODY, 3)                                                             \
    DC_TILE_X86(NAME, TARGET, BODY, 4)                                                             \
    DC_TILE_X86(NAME, TARGET, BODY, 5)                                                             \
    DC_TILE_X86(NAME, TARGET, BODY, 6)
#define DC_TILES12(NAME, TARGET, BODY)                                                             \
    DC_TILES6(NAME, TARGET, BODY)                                                                  \
    DC_TILE_X86(NAME, TARGET, BODY, 7)                                                             \
    DC_TILE_X86(NAME, TARGET, BODY, 8)                                                             \
    DC_TILE_X86(NAME, TARGET, BODY, 9)                                                             \
    DC_TILE_X86(NAME, TARGET, BODY, 10)                                                            \
    DC_TILE_X86(NAME, TARGET, BODY, 11)                                                            \
    DC_TILE_X86(NAME, TARGET, BODY, 12)
#define DC_SET12(NAME)                                                                             \
    {                                                                                              \
        12, {                                                                                      \
            NULL, tile_##NAME##_1, tile_##NAME##_2, tile_##NAME##_3, tile_##NAME##_4,              \
                tile_##NAME##_5, tile_##NAME##_6, tile_##NAME##_7, tile_##NAME##_8,                \
                tile_##NAME##_9, tile_##NAME##_10, tile_##NAME##_11, tile_##NAME##_12              \
        }                                                                                          \
    }
DC_TILES6(avx2, "avx2,fma", DC_BODY_AVX2)
DC_TILES12(avx512, DC_AVX512_TARGET, DC_BODY_F32)
DC_TILES12(pairs, DC_AVX512_TARGET, DC_BODY_PAIRS)
static const tile_set tiles_avx2 = {
    6, {NULL, tile_avx2_1, tile_avx2_2, tile_avx2_3, tile_avx2_4, tile_avx2_5, tile_avx2_6}};
static const tile_set tiles_avx512 = DC_SET12(avx512);
static const tile_set tiles_pairs = DC_SET12(pairs);
#undef DC_SET12
#undef DC_TILES12
#undef DC_TILES6
#undef DC_BODY_PAIRS
#undef DC_BODY_F32
#undef DC_BODY_AVX2
#undef DC_TILE_X86
#endif

/* The CPU kernels' choice (cpu_kernels.c: CPUID, or generic when a test forces it) decides.
 * All three give the same bits: one FMA per k in the same order. */
static const tile_set *tiles(void) {
#ifdef DC_SGEMM_X86
    const char *isa = dc_cpu_kernel_isa();
    if (strcmp(isa, "avx512") == 0) return &tiles_avx512;
    if (strcmp(isa, "generic") != 0) return &tiles_avx2;
#endif
    return &tiles_generic;
}

const char *dc_sgemm_isa(void) {
    const tile_set *t = tiles();
    return t == &tiles_generic ? "generic" : t->rows == 6 ? "avx2" : "avx512";
}

/* k in passes of equal length up to KC_MAX: a layer of k ≤ 1024 streams each panel whole. */
static size_t pass_rows(size_t k) {
    const size_t passes = (k + KC_MAX - 1) / KC_MAX;
    return (k + passes - 1) / passes;
}

/* Pass [pc, pc + kc) of panels [jc, je) over every row, along k in 32-bit units (an f32, or a
 * pair of bf16): the packed rows have ku units per row, and panel p's slice of the pass is at
 * b + (p - jc) * bstride units, 16 per step. */
static void run_block(const tile_set *ts, const void *xp, size_t m, size_t ku, size_t pc, size_t kc,
                      const void *b, size_t bstride, size_t jc, size_t je, const float *bias,
                      size_t n, float *y, size_t ldy) {
    for (size_t ic = 0; ic < m; ic += MC) {
        const size_t ie = min_sz(ic + MC, m);
        for (size_t p = jc; p < je; p++) {
            const size_t c0 = p * DC_SGEMM_NR, nr = min_sz(DC_SGEMM_NR, n - c0);
            const char *bp = (const char *)b + (p - jc) * bstride * 4;
            const float *pb = bias ? bias + c0 : NULL;
            for (size_t r = ic; r < ie; r += ts->rows)
                ts->fn[min_sz(ts->rows, ie - r)]((const char *)xp + (r * ku + pc * DC_SGEMM_MR) * 4,
                                                 DC_SGEMM_MR * ku, bp, kc, y + r * ldy + c0, ldy,
                                                 nr, pb, pc > 0);
        }
    }
}

/* Every pass and block of panels [p0, p1) with ku units along k. */
static void run_units(const tile_set *ts, const void *xp, size_t m, size_t ku, const void *wp,
                      const float *bias, size_t n, float *y, size_t ldy, size_t p0, size_t p1) {
    const size_t kcp = pass_rows(ku);
    p1 = min_sz(p1, (n + DC_SGEMM_NR - 1) / DC_SGEMM_NR);
    for (size_t pc = 0; pc < ku; pc += kcp)
        for (size_t jc = p0; jc < p1; jc += NCP)
            run_block(ts, xp, m, ku, pc, min_sz(kcp, ku - pc),
                      (const char *)wp + (jc * ku + pc) * DC_SGEMM_NR * 4, ku * DC_SGEMM_NR, jc,
                      min_sz(jc + NCP, p1), bias, n, y, ldy);
}

void dc_sgemm_run(const float *xp, size_t m, size_t k, const float *wp, const float *bias, size_t n,
                  float *y, size_t ldy, size_t p0, size_t p1) {
    run_units(tiles(), xp, m, k, wp, bias, n, y, ldy, p0, p1);
}

/* bf16 is the high half of an f32; n is a multiple of 16, whose fixed inner loop vectorises. */
static void widen(const uint16_t *src, size_t n, float *dst) {
    for (size_t i = 0; i < n; i += DC_SGEMM_NR)
        for (size_t j = 0; j < DC_SGEMM_NR; j++) {
            const uint32_t bits = (uint32_t)src[i + j] << 16;
            memcpy(dst + i + j, &bits, sizeof bits);
        }
}

size_t dc_sgemm_bf16_work_floats(void) {
    return (size_t)NCP * KC_MAX * DC_SGEMM_NR;
}

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
            run_block(tiles(), xp, m, k, pc, kc, work, run, jc, je, bias, n, y, ldy);
        }
    }
}

/* ---- bf16 pairs (AVX512-BF16) ---- */

static size_t pairs(size_t k) {
    return (k + 1) / 2;
}

bool dc_sgemm_bf16_native(void) {
#ifdef DC_SGEMM_X86
    return strcmp(dc_cpu_kernel_isa(), "avx512") == 0 && __builtin_cpu_supports("avx512bf16");
#else
    return false;
#endif
}

size_t dc_sgemm_weights_pairs(size_t n, size_t k) {
    return (n + DC_SGEMM_NR - 1) / DC_SGEMM_NR * DC_SGEMM_NR * pairs(k);
}

void dc_sgemm_pack_weights_pairs(const uint16_t *w, size_t n, size_t k, uint32_t *out, size_t p0,
                                 size_t p1) {
    const size_t kp = pairs(k);
    for (size_t q = p0; q < p1; q++) {
        uint32_t *dst = out + q * DC_SGEMM_NR * kp;
        const size_t c0 = q * DC_SGEMM_NR, cols = c0 < n ? min_sz(DC_SGEMM_NR, n - c0) : 0;
        if (cols < DC_SGEMM_NR) memset(dst, 0, kp * DC_SGEMM_NR * sizeof *dst);
        for (size_t c = 0; c < cols; c++) {
            const uint16_t *row = w + (c0 + c) * k;
            for (size_t p = 0; p < kp; p++)
                dst[p * DC_SGEMM_NR + c] =
                    row[2 * p] | (2 * p + 1 < k ? (uint32_t)row[2 * p + 1] << 16 : 0);
        }
    }
}

size_t dc_sgemm_rows_pairs(size_t m, size_t k) {
    return (m + DC_SGEMM_MR - 1) / DC_SGEMM_MR * DC_SGEMM_MR * pairs(k);
}

#ifdef DC_SGEMM_X86
/* One row rounded to bf16 pairs with vcvtne2ps2bf16 (nearest even, as dc_quant_bf16_from_f32
 * but with subnormals read as 0, as vdpbf16ps reads them anyway), 16 pairs at a time, into
 * `tmp` (ceil(k / 32) × 16 units). */
#define DC_BF16_TARGET "avx512bf16,avx512vl,avx512dq,avx512f,avx2,fma"
__attribute__((target(DC_BF16_TARGET))) static void round_row_pairs(const float *x, size_t k,
                                                                    uint32_t *tmp) {
    size_t c = 0;
    for (; c + 32 <= k; c += 32) {
        const __m512 a = _mm512_loadu_ps(x + c), b = _mm512_loadu_ps(x + c + 16);
        /* the second operand fills the low half: x[c..c+16) first */
        _mm512_storeu_si512(tmp + c / 2, (__m512i)_mm512_cvtne2ps_pbh(b, a));
    }
    if (c < k) {
        const __mmask16 lo = (__mmask16)((1u << min_sz(k - c, 16)) - 1),
                        hi = (__mmask16)(k - c > 16 ? (1u << (k - c - 16)) - 1 : 0);
        const __m512 a = _mm512_maskz_loadu_ps(lo, x + c),
                     b = _mm512_maskz_loadu_ps(hi, x + c + 16);
        _mm512_storeu_si512(tmp + c / 2, (__m512i)_mm512_cvtne2ps_pbh(b, a));
    }
}
#endif

size_t dc_sgemm_pairs_tmp_units(size_t k) {
    return DC_SGEMM_MR * ((k + 31) / 32 * 16);
}

/* Each panel's rows are rounded into `tmp` first, then interleaved with sequential writes: a
 * strided write per unit, row by row, took 7 % of a bf16 BERT-base forward at 32 × 128. */
void dc_sgemm_pack_rows_pairs(const float *x, size_t m, size_t k, uint32_t *out, uint32_t *tmp,
                              size_t q0, size_t q1) {
    const size_t kp = pairs(k), stride = (k + 31) / 32 * 16;
    for (size_t q = q0; q < q1; q++) {
        uint32_t *dst = out + q * DC_SGEMM_MR * kp;
        const size_t r0 = q * DC_SGEMM_MR, rows = r0 < m ? min_sz(DC_SGEMM_MR, m - r0) : 0;
#ifdef DC_SGEMM_X86
        for (size_t i = 0; i < rows; i++) round_row_pairs(x + (r0 + i) * k, k, tmp + i * stride);
#else
        (void)x;
#endif
        if (rows < DC_SGEMM_MR) memset(tmp + rows * stride, 0, (DC_SGEMM_MR - rows) * stride * 4);
        for (size_t p = 0; p < kp; p++, dst += DC_SGEMM_MR)
            for (size_t i = 0; i < DC_SGEMM_MR; i++) dst[i] = tmp[i * stride + p];
    }
}

void dc_sgemm_run_pairs(const uint32_t *xp, size_t m, size_t k, const uint32_t *wp,
                        const float *bias, size_t n, float *y, size_t ldy, size_t p0, size_t p1) {
#ifdef DC_SGEMM_X86
    run_units(&tiles_pairs, xp, m, pairs(k), wp, bias, n, y, ldy, p0, p1);
#else
    (void)xp, (void)m, (void)k, (void)wp, (void)bias, (void)n, (void)y, (void)ldy, (void)p0,
        (void)p1;
#endif
}

/* Hypervector generation, algebra and bit-sliced majority bundling (E9). */
#include <string.h>

#include "models/hdc.h"

#define GOLDEN 0x9E3779B97F4A7C15ull

uint64_t dc_hdc_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t dc_hdc_key(uint64_t seed, dc_hdc_key_tag tag, uint32_t value) {
    return dc_hdc_mix64(seed ^ dc_hdc_mix64(((uint64_t)tag << 32) | value));
}

void dc_hv_random(dc_hv *out, uint64_t key) {
    for (int i = 0; i < DC_HV_WORDS; i++)
        out->w[i] = dc_hdc_mix64(key + (uint64_t)(i + 1) * GOLDEN);
}

void dc_hv_bind(dc_hv *out, const dc_hv *a, const dc_hv *b) {
    for (int i = 0; i < DC_HV_WORDS; i++) out->w[i] = a->w[i] ^ b->w[i];
}

void dc_hv_permute(dc_hv *out, const dc_hv *a, int64_t k) {
    int64_t m = k % DC_HV_BITS;
    if (m < 0) m += DC_HV_BITS;
    unsigned q = (unsigned)(m / 64), r = (unsigned)(m % 64);
    for (unsigned w = 0; w < DC_HV_WORDS; w++) {
        uint64_t hi = a->w[(w + DC_HV_WORDS - q) % DC_HV_WORDS];
        uint64_t lo = a->w[(w + 2 * DC_HV_WORDS - q - 1) % DC_HV_WORDS];
        out->w[w] = r ? (hi << r) | (lo >> (64 - r)) : hi;
    }
}

uint32_t dc_hv_hamming(const dc_hv *a, const dc_hv *b) {
    uint32_t h = 0;
    for (int i = 0; i < DC_HV_WORDS; i++) {
        uint64_t x = a->w[i] ^ b->w[i]; /* SWAR bit count */
        x = x - ((x >> 1) & 0x5555555555555555ull);
        x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
        x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
        h += (uint32_t)((x * 0x0101010101010101ull) >> 56);
    }
    return h;
}

double dc_hv_similarity(const dc_hv *a, const dc_hv *b) {
    return 1.0 - 2.0 * dc_hv_hamming(a, b) / DC_HV_BITS;
}

bool dc_hv_get_bit(const dc_hv *v, uint32_t i) {
    return (v->w[i / 64] >> (i % 64)) & 1u;
}

/* ---- bundling ---- */

/* Four words at a time through GCC/clang vector extensions: AVX2 where the CPU has it
 * (chosen at run time, see fold16), SSE2 pairs otherwise. */
typedef uint64_t v4u64 __attribute__((vector_size(32)));
/* The same, for loads and stores at 8-byte alignment that may alias uint64_t arrays. Macros
 * rather than functions: a 32-byte vector passed by value has a target-dependent ABI. */
typedef uint64_t v4u64_io __attribute__((vector_size(32), aligned(8), may_alias));
#define LD4(p)    (*(const v4u64_io *)(const void *)(p))
#define ST4(p, v) (*(v4u64_io *)(void *)(p) = (v))

static uint32_t bit_length(uint32_t x) {
    uint32_t n = 0;
    while (x) {
        n++;
        x >>= 1;
    }
    return n;
}

void dc_hv_bundler_reset(dc_hv_bundler *b, uint32_t arity) {
    /* Only the planes in use can be non-zero. */
    for (uint32_t p = 0; p < b->planes_used; p++) memset(b->plane[p], 0, sizeof b->plane[p]);
    b->npending = 0;
    b->count = 0;
    b->planes_used = 0;
    b->arity = arity < 1 ? 1 : arity > DC_HDC_MAX_NGRAM ? DC_HDC_MAX_NGRAM : arity;
}

#define CSA(h, l, a, b, c)                                                                         \
    do {                                                                                           \
        v4u64 u_ = (a) ^ (b);                                                                      \
        v4u64 c_ = (c);                                                                            \
        (h) = ((a) & (b)) | (u_ & c_);                                                             \
        (l) = u_ ^ c_;                                                                             \
    } while (0)

/* Pending item k at word w: the XOR of its `arity` windows. */
#define ITEM(x, src, k, w, arity)                                                                  \
    do {                                                                                           \
        (x) = LD4((src)[k][0] + (w));                                                              \
        for (uint32_t j_ = 1; j_ < (arity); j_++) (x) ^= LD4((src)[k][j_] + (w));                  \
    } while (0)

/* Adds 16 pending items: a carry-save (Harley-Seal) tree keeps planes 0..3 (weights 1, 2, 4,
 * 8) and ripples the weight-16 carries into planes 4 and up. */
static inline __attribute__((always_inline)) void
fold16_body(uint64_t (*pl)[DC_HV_WORDS], uint32_t planes,
            const uint64_t *const (*src)[DC_HDC_MAX_NGRAM], uint32_t arity, int w0, int w1) {
    for (int w = w0; w < w1; w += 4) {
        v4u64 ones = LD4(pl[0] + w), twos = LD4(pl[1] + w), fours = LD4(pl[2] + w),
              eights = LD4(pl[3] + w);
        v4u64 in[DC_HV_BUNDLE_GROUP];
        for (int k = 0; k < DC_HV_BUNDLE_GROUP; k++) ITEM(in[k], src, k, w, arity);
        v4u64 twos_a, twos_b, fours_a, fours_b, eights_a, eights_b, c;
        CSA(twos_a, ones, ones, in[0], in[1]);
        CSA(twos_b, ones, ones, in[2], in[3]);
        CSA(fours_a, twos, twos, twos_a, twos_b);
        CSA(twos_a, ones, ones, in[4], in[5]);
        CSA(twos_b, ones, ones, in[6], in[7]);
        CSA(fours_b, twos, twos, twos_a, twos_b);
        CSA(eights_a, fours, fours, fours_a, fours_b);
        CSA(twos_a, ones, ones, in[8], in[9]);
        CSA(twos_b, ones, ones, in[10], in[11]);
        CSA(fours_a, twos, twos, twos_a, twos_b);
        CSA(twos_a, ones, ones, in[12], in[13]);
        CSA(twos_b, ones, ones, in[14], in[15]);
        CSA(fours_b, twos, twos, twos_a, twos_b);
        CSA(eights_b, fours, fours, fours_a, fours_b);
        CSA(c, eights, eights, eights_a, eights_b);
        ST4(pl[0] + w, ones);
        ST4(pl[1] + w, twos);
        ST4(pl[2] + w, fours);
        ST4(pl[3] + w, eights);
        for (uint32_t p = 4; p < planes; p++) { /* ripple the sixteens */
            v4u64 x = LD4(pl[p] + w);
            ST4(pl[p] + w, x ^ c);
            c &= x;
        }
    }
}

/* Specialised for the common arities so the inner XOR loop unrolls. */
#define FOLD16_DISPATCH_ARITY                                                                      \
    switch (arity) {                                                                               \
    case 1:                                                                                        \
        fold16_body(pl, planes, src, 1, w0, w1);                                                   \
        break;                                                                                     \
    case 3:                                                                                        \
        fold16_body(pl, planes, src, 3, w0, w1);                                                   \
        break;                                                                                     \
    default:                                                                                       \
        fold16_body(pl, planes, src, arity, w0, w1);                                               \
        break;                                                                                     \
    }

static void fold16_generic(uint64_t (*pl)[DC_HV_WORDS], uint32_t planes,
                           const uint64_t *const (*src)[DC_HDC_MAX_NGRAM], uint32_t arity, int w0,
                           int w1) {
    FOLD16_DISPATCH_ARITY
}

/* An AVX2 copy chosen at run time. A plain branch rather than target_clones: an ifunc
 * resolver runs before the sanitizer runtimes are up and crashes ThreadSanitizer builds. */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && !defined(DC_NO_AVX2)
#define DC_HDC_AVX2 1
__attribute__((target("avx2"))) static void
fold16_avx2(uint64_t (*pl)[DC_HV_WORDS], uint32_t planes,
            const uint64_t *const (*src)[DC_HDC_MAX_NGRAM], uint32_t arity, int w0, int w1) {
    FOLD16_DISPATCH_ARITY
}
#endif

static void fold16(uint64_t (*pl)[DC_HV_WORDS], uint32_t planes,
                   const uint64_t *const (*src)[DC_HDC_MAX_NGRAM], uint32_t arity, int w0, int w1) {
#ifdef DC_HDC_AVX2
    if (__builtin_cpu_supports("avx2")) {
        fold16_avx2(pl, planes, src, arity, w0, w1);
        return;
    }
#endif
    fold16_generic(pl, planes, src, arity, w0, w1);
}

/* A partial group is padded with zero items: adding zero changes no counter, and one tree
 * pass is cheaper than rippling each item through every plane. */
static void pad_group(const dc_hv_bundler *b, const uint64_t *src[][DC_HDC_MAX_NGRAM],
                      uint32_t from) {
    for (uint32_t k = from; k < DC_HV_BUNDLE_GROUP; k++)
        for (uint32_t j = 0; j < b->arity; j++) src[k][j] = b->zero;
}

static void fold_pending(dc_hv_bundler *b) {
    if (b->npending == 0) return;
    pad_group(b, b->src, b->npending);
    fold16(b->plane, b->planes_used, (const uint64_t *const(*)[DC_HDC_MAX_NGRAM])b->src, b->arity,
           0, DC_HV_WORDS);
    b->npending = 0;
}

static void commit(dc_hv_bundler *b) {
    b->count++;
    uint32_t need = bit_length(b->count);
    if (need > b->planes_used) b->planes_used = need; /* fresh planes are already zero */
    if (++b->npending == DC_HV_BUNDLE_GROUP) fold_pending(b);
}

void dc_hv_bundler_add_xor(dc_hv_bundler *b, const uint64_t *const *src) {
    for (uint32_t j = 0; j < b->arity; j++) b->src[b->npending][j] = src[j];
    commit(b);
}

void dc_hv_bundler_add(dc_hv_bundler *b, const dc_hv *v) {
    /* Copied, so the caller's vector may change; the other slots are zero (XOR identity). */
    memcpy(b->own[b->npending], v->w, sizeof v->w);
    b->src[b->npending][0] = b->own[b->npending];
    for (uint32_t j = 1; j < b->arity; j++) b->src[b->npending][j] = b->zero;
    commit(b);
}

void dc_hv_bundler_add_ngrams(dc_hv_bundler *b, const uint64_t *const *seq, size_t nseq,
                              const size_t *off) {
    dc_hv_bundler_flush(b);
    uint32_t a = b->arity;
    if (nseq < a) return;
    size_t items = nseq - a + 1;
    if (items > UINT32_MAX - b->count) items = UINT32_MAX - b->count; /* counters are 32-bit */
    b->count += (uint32_t)items;
    uint32_t need = bit_length(b->count);
    if (need > b->planes_used) b->planes_used = need;
    const uint64_t *src[DC_HV_BUNDLE_GROUP][DC_HDC_MAX_NGRAM];
    /* Groups of 16 n-grams straight from the base vectors, no copies. (Splitting the words
     * into L1-sized chunks per pass measured no faster: L2 keeps up with the adder tree.) */
    for (size_t i = 0; i < items; i += DC_HV_BUNDLE_GROUP) {
        uint32_t k = 0;
        for (; k < DC_HV_BUNDLE_GROUP && i + k < items; k++)
            for (uint32_t j = 0; j < a; j++) src[k][j] = seq[i + k + j] + off[j];
        pad_group(b, src, k);
        fold16(b->plane, b->planes_used, (const uint64_t *const(*)[DC_HDC_MAX_NGRAM])src, a, 0,
               DC_HV_WORDS);
    }
}

void dc_hv_bundler_add_ngrams_weighted(dc_hv_bundler *b, const uint64_t *const *seq,
                                       const size_t *off, const uint32_t *start,
                                       const uint32_t *weight, size_t n) {
    dc_hv_bundler_flush(b);
    uint32_t a = b->arity, maxw = 0;
    uint64_t total = b->count;
    for (size_t k = 0; k < n; k++) {
        total += weight[k];
        if (weight[k] > maxw) maxw = weight[k];
    }
    if (total > UINT32_MAX) return; /* beyond 32-bit counters; callers stay far below */
    b->count = (uint32_t)total;
    uint32_t need = bit_length(b->count);
    if (need > b->planes_used) b->planes_used = need;
    /* w * v = sum over the set bits i of w of 2^i * v: one pass per bit of the weights, adding
     * at plane i. Planes above planes_used stay zero, so the 4-plane tree may touch them. */
    const uint64_t *src[DC_HV_BUNDLE_GROUP][DC_HDC_MAX_NGRAM];
    for (uint32_t bit = 0; bit < 32 && (maxw >> bit) != 0; bit++) {
        uint32_t k = 0, rel = b->planes_used > bit ? b->planes_used - bit : 0;
        for (size_t i = 0; i <= n; i++) {
            if (i < n && ((weight[i] >> bit) & 1u)) {
                for (uint32_t j = 0; j < a; j++) src[k][j] = seq[start[i] + j] + off[j];
                k++;
            }
            if (k == DC_HV_BUNDLE_GROUP || (i == n && k > 0)) {
                pad_group(b, src, k);
                fold16(b->plane + bit, rel, (const uint64_t *const(*)[DC_HDC_MAX_NGRAM])src, a, 0,
                       DC_HV_WORDS);
                k = 0;
            }
        }
    }
}

void dc_hv_bundler_flush(dc_hv_bundler *b) {
    if (b->npending) fold_pending(b);
}

uint32_t dc_hv_bundler_counter(dc_hv_bundler *b, uint32_t i) {
    dc_hv_bundler_flush(b);
    uint32_t c = 0;
    for (uint32_t p = 0; p < b->planes_used; p++)
        c |= (uint32_t)((b->plane[p][i / 64] >> (i % 64)) & 1u) << p;
    return c;
}

void dc_hv_bundler_majority(dc_hv_bundler *b, const dc_hv *tie, dc_hv *out) {
    dc_hv_bundler_flush(b);
    /* Bit-sliced comparison of every counter with k = floor(count / 2), high plane first:
     * the bit is 1 when counter > k; when count is even, counter == k is a tie. */
    uint32_t k = b->count / 2;
    bool even = (b->count & 1u) == 0;
    for (int w = 0; w < DC_HV_WORDS; w++) {
        uint64_t gt = 0, eq = ~0ull;
        for (int p = (int)b->planes_used - 1; p >= 0; p--) {
            uint64_t x = b->plane[p][w];
            if ((k >> p) & 1u) {
                eq &= x;
            } else {
                gt |= eq & x;
                eq &= ~x;
            }
        }
        out->w[w] = gt | (even ? eq & tie->w[w] : 0);
    }
}

/* E9 hyperdimensional computing: binary hypervectors, their algebra, the item memory (with its
 * file format) and the text encoder. Internal; the model is built by dc_hdc_create (custom.h).
 *
 * Conventions (docs/custom-models.md): a hypervector has 10240 bits packed in 160 little-endian
 * 64-bit words, bit i in word i/64 at position i%64; bit value 1 stands for +1 and 0 for -1
 * (MAP-B / BSC). Bind is XOR, the permutation rho is a cyclic shift by one bit toward higher
 * indices (rho(v)[i] = v[i-1 mod D]), bundle is the bit-wise majority with ties broken by a
 * fixed seeded vector. */
#ifndef DC_MODELS_HDC_H
#define DC_MODELS_HDC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dodeca/status.h"
#include "models/custom.h"

#define DC_HV_BITS         10240
#define DC_HV_WORDS        (DC_HV_BITS / 64)
#define DC_HDC_OUT_DIM     1024
#define DC_HDC_GROUP_BITS  (DC_HV_BITS / DC_HDC_OUT_DIM) /* 10 bits per output float */
#define DC_HDC_MAX_SYMBOLS 0x110000u                     /* every Unicode code point */

typedef struct dc_hv {
    uint64_t w[DC_HV_WORDS];
} dc_hv;

/* ---- deterministic generation ---- */

/* SplitMix64's finaliser: a bijection on 64-bit values. */
uint64_t dc_hdc_mix64(uint64_t z);

/* Key domains: a symbol's base vector, the tie-break vector, the projection sign vector. */
typedef enum dc_hdc_key_tag {
    DC_HDC_KEY_SYMBOL = 0,
    DC_HDC_KEY_TIE = 1,
    DC_HDC_KEY_SIGN = 2,
} dc_hdc_key_tag;

/* key = mix64(seed ^ mix64(tag << 32 | value)). */
uint64_t dc_hdc_key(uint64_t seed, dc_hdc_key_tag tag, uint32_t value);
/* The 160 words are SplitMix64 outputs 1..160 of the stream that starts at `key`. */
void dc_hv_random(dc_hv *out, uint64_t key);

/* ---- algebra ---- */

void dc_hv_bind(dc_hv *out, const dc_hv *a, const dc_hv *b); /* XOR; out may alias */
/* out = rho^k(a) for any k (negative k is the inverse permutation); out must not alias a. */
void dc_hv_permute(dc_hv *out, const dc_hv *a, int64_t k);
uint32_t dc_hv_hamming(const dc_hv *a, const dc_hv *b);
/* Cosine of the +-1 vectors: 1 - 2 * hamming / D, in [-1, 1]. */
double dc_hv_similarity(const dc_hv *a, const dc_hv *b);
bool dc_hv_get_bit(const dc_hv *v, uint32_t i);

/* ---- bundling: bit-sliced counters (one counter per bit position) ----
 * Items are kept pending 16 at a time and folded into the counters with a carry-save
 * (Harley-Seal) adder tree, so an item costs a few word operations. An item is the XOR of
 * `arity` windows of 160 words (an n-gram is the XOR of its n rotated base vectors), read
 * in place: windows passed to _add_xor must stay valid until the next _flush, _majority,
 * _counter or _reset. Zero-initialise a bundler (calloc) before its first _reset. */
#define DC_HV_BUNDLE_GROUP 16
#define DC_HV_COUNTER_BITS 32

typedef struct dc_hv_bundler {
    const uint64_t *src[DC_HV_BUNDLE_GROUP][DC_HDC_MAX_NGRAM];
    uint64_t own[DC_HV_BUNDLE_GROUP][DC_HV_WORDS]; /* copies made by _add */
    uint64_t zero[DC_HV_WORDS];
    uint32_t arity;
    uint32_t npending;
    uint32_t count; /* items added */
    /* plane p holds bit p of every counter; planes 0..planes_used-1 may be non-zero */
    uint64_t plane[DC_HV_COUNTER_BITS][DC_HV_WORDS];
    uint32_t planes_used;
} dc_hv_bundler;

/* Empties the counters; items added next are XORs of `arity` windows (1..8). */
void dc_hv_bundler_reset(dc_hv_bundler *b, uint32_t arity);
void dc_hv_bundler_add_xor(dc_hv_bundler *b, const uint64_t *const *src);
/* Adds the n-grams of a sequence: item i (0 <= i <= nseq - arity) is the XOR of the windows
 * seq[i + j] + off[j], j < arity. Same result as _add_xor item by item. */
void dc_hv_bundler_add_ngrams(dc_hv_bundler *b, const uint64_t *const *seq, size_t nseq,
                              const size_t *off);
/* Adds weight[k] times the n-gram starting at seq[start[k]], k < n: the same counters as
 * adding each n-gram of a text once per occurrence, at the cost of one pass per set bit of the
 * weights (a text's repeated n-grams are counted once). Weights must stay below 2^28. */
void dc_hv_bundler_add_ngrams_weighted(dc_hv_bundler *b, const uint64_t *const *seq,
                                       const size_t *off, const uint32_t *start,
                                       const uint32_t *weight, size_t n);
/* Adds a copy of v (any arity). */
void dc_hv_bundler_add(dc_hv_bundler *b, const dc_hv *v);
/* Folds pending items into the counters (done by _majority and _counter too). */
void dc_hv_bundler_flush(dc_hv_bundler *b);
/* How many added items have bit i set. */
uint32_t dc_hv_bundler_counter(dc_hv_bundler *b, uint32_t i);
/* Bit i = 1 when more than half of the items have it; exactly half takes tie's bit. */
void dc_hv_bundler_majority(dc_hv_bundler *b, const dc_hv *tie, dc_hv *out);

/* ---- item memory ---- */

#define DC_HDC_MEMORY_MAGIC   "HDCV"
#define DC_HDC_MEMORY_VERSION 1u
#define DC_HDC_MEMORY_HEADER  64u

/* Everything the encoder reads: base vectors of code points 0..symbols-1, the per-slot
 * rotation of the n-gram (in bits, whole words), the tie-break and projection sign vectors.
 * Code points >= symbols get base vectors generated from the seed on demand. */
typedef struct dc_hdc_memory {
    uint64_t seed;
    uint32_t ngram;
    uint32_t symbols;
    uint32_t shift[DC_HDC_MAX_NGRAM]; /* rotation of n-gram slot j, bits; multiple of 64, < 10240 */
    dc_hv tie;
    dc_hv sign;
    /* symbols x 2 x DC_HV_WORDS: each vector stored twice in a row, so a rotation by whole
     * words is a contiguous window of 160 words. */
    uint64_t *base2;
} dc_hdc_memory;

/* Generates the item memory of (seed, ngram, symbols): slot j of n rotates by 64 (n-1-j). */
dc_status dc_hdc_memory_generate(uint64_t seed, uint32_t ngram, uint32_t symbols,
                                 dc_hdc_memory **out);
void dc_hdc_memory_free(dc_hdc_memory *m);
size_t dc_hdc_memory_bytes(const dc_hdc_memory *m);
/* Base vector of a code point (from the table, else generated). */
void dc_hdc_memory_symbol(const dc_hdc_memory *m, uint32_t cp, dc_hv *out);

/* File format v1 (little-endian): 64-byte header
 *   0 magic "HDCV" | 4 u32 version | 8 u64 seed | 16 u32 bits (10240) | 20 u32 symbols
 *   24 u32 ngram | 28 u32 flags (0) | 32 u64 XXH3-64 of the whole file with this field zeroed
 *   40 u64 payload bytes | 48 16 reserved zero bytes
 * then ngram x u32 slot shifts, the tie vector, the sign vector and symbols base vectors
 * (160 u64 each). */
size_t dc_hdc_memory_encoded_size(const dc_hdc_memory *m);
dc_status dc_hdc_memory_encode(const dc_hdc_memory *m, uint8_t *buf, size_t cap, size_t *written);
/* DC_ERR_CHECKPOINT_CORRUPTED (bad magic, lengths, checksum, field values) or
 * DC_ERR_UNSUPPORTED_FORMAT (another version); `what` names the source in the detail. */
dc_status dc_hdc_memory_decode(const uint8_t *buf, size_t len, const char *what,
                               dc_hdc_memory **out);
/* Atomic: writes a temporary file next to `path`, then renames it. */
dc_status dc_hdc_memory_save(const dc_hdc_memory *m, const char *path);
/* DC_ERR_NOT_FOUND when the file does not exist; DC_ERR_IO when it cannot be read. */
dc_status dc_hdc_memory_load(const char *path, dc_hdc_memory **out);

/* ---- text encoder ---- */

typedef struct dc_hdc_scratch dc_hdc_scratch; /* per-call working memory; not shared */

dc_status dc_hdc_scratch_create(dc_hdc_scratch **out);
void dc_hdc_scratch_free(dc_hdc_scratch *s);

typedef struct dc_hdc_result {
    uint32_t chars_used; /* code points read */
    bool truncated;      /* more than max_chars code points */
    uint32_t ngrams;     /* vectors bundled */
} dc_hdc_result;

/* Encodes UTF-8 text (invalid bytes read as U+FFFD) into its 10240-bit hypervector: the
 * majority of its character n-gram vectors. DC_ERR_EMPTY_INPUT for len 0;
 * DC_ERR_INVALID_ARGUMENT unless 1 <= max_chars <= DC_HDC_MAX_MAX_CHARS. */
dc_status dc_hdc_encode_hv(const dc_hdc_memory *m, dc_hdc_scratch *s, const char *text, size_t len,
                           uint32_t max_chars, bool case_sensitive, dc_hv *hv, dc_hdc_result *res);
/* The 1024-float projection: y_b = sum over bits 10b..10b+9 of (+-1 bit) * (+-1 sign bit),
 * then L2-normalised. */
void dc_hdc_project(const dc_hdc_memory *m, const dc_hv *hv, float out[DC_HDC_OUT_DIM]);
/* Both steps: the E9 embedding. */
dc_status dc_hdc_encode(const dc_hdc_memory *m, dc_hdc_scratch *s, const char *text, size_t len,
                        uint32_t max_chars, bool case_sensitive, float out[DC_HDC_OUT_DIM],
                        dc_hdc_result *res);

#endif

/* E9 text encoder: code points -> character n-gram hypervectors -> majority -> 1024 floats. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"
#include "models/hdc.h"

struct dc_hdc_scratch {
    dc_hv_bundler bundler;
    uint32_t *refs;       /* per code point: symbol index, or symbols + extra index */
    const uint64_t **ptr; /* per code point: its doubled base vector */
    size_t cap;           /* of refs and ptr */
    /* base vectors of code points outside the item memory, generated for this call */
    uint32_t *map_key; /* code point + 1; 0 = empty */
    uint32_t *map_val;
    size_t map_cap;           /* power of two */
    uint64_t *extra;          /* doubled vectors */
    size_t nextra, extra_cap; /* in vectors */
    /* distinct n-grams of the text: first occurrence and count */
    uint32_t *gram_slot; /* hash table: index into gram_start + 1; 0 = empty */
    size_t gram_slots;   /* power of two */
    uint32_t *gram_start, *gram_count;
    size_t gram_cap;
};

dc_status dc_hdc_scratch_create(dc_hdc_scratch **out) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "HDC scratch: NULL output");
    *out = calloc(1, sizeof **out);
    if (!*out) return dc_fail(DC_ERR_OUT_OF_MEMORY, "HDC scratch: %zu bytes", sizeof **out);
    return DC_OK;
}

void dc_hdc_scratch_free(dc_hdc_scratch *s) {
    if (!s) return;
    free(s->refs);
    free(s->ptr);
    free(s->map_key);
    free(s->map_val);
    free(s->extra);
    free(s->gram_slot);
    free(s->gram_start);
    free(s->gram_count);
    free(s);
}

/* Room for `need` doubled vectors in s->extra. */
static dc_status reserve_extra(dc_hdc_scratch *s, size_t need) {
    if (need <= s->extra_cap) return DC_OK;
    size_t n = s->extra_cap ? s->extra_cap : 16;
    while (n < need) n *= 2;
    uint64_t *q = realloc(s->extra, n * 2 * DC_HV_WORDS * sizeof *q);
    if (!q) return dc_fail(DC_ERR_OUT_OF_MEMORY, "HDC scratch: %zu symbol vectors", n);
    s->extra = q;
    s->extra_cap = n;
    return DC_OK;
}

/* One code point from s[*i..len); malformed sequences read as U+FFFD and consume one byte. */
static uint32_t next_cp(const uint8_t *s, size_t len, size_t *i) {
    uint32_t c = s[*i];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 1) {
        (*i)++;
        return c;
    }
    if (n == 0 || *i + n > len) {
        (*i)++;
        return 0xFFFD;
    }
    uint32_t cp = c & (0x7Fu >> n);
    for (size_t k = 1; k < n; k++) {
        uint8_t b = s[*i + k];
        if ((b & 0xC0) != 0x80) {
            (*i)++;
            return 0xFFFD;
        }
        cp = (cp << 6) | (b & 0x3F);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        (*i)++;
        return 0xFFFD;
    }
    *i += n;
    return cp;
}

/* Ref of a code point outside the item memory: its vector is generated once per call. The map
 * is prepared at the first such code point of a call (`ready`), sized for `room` of them. */
static dc_status extra_ref(const dc_hdc_memory *m, dc_hdc_scratch *s, uint32_t cp, size_t room,
                           bool *ready, uint32_t *ref) {
    if (!*ready) {
        if (s->map_cap < 2 * room) {
            size_t cap = 64;
            while (cap < 2 * room) cap *= 2;
            free(s->map_key);
            free(s->map_val);
            s->map_key = malloc(cap * sizeof *s->map_key);
            s->map_val = malloc(cap * sizeof *s->map_val);
            s->map_cap = s->map_key && s->map_val ? cap : 0;
            if (!s->map_cap) return dc_fail(DC_ERR_OUT_OF_MEMORY, "HDC scratch: symbol map");
        }
        memset(s->map_key, 0, s->map_cap * sizeof *s->map_key);
        s->nextra = 0;
        *ready = true;
    }
    size_t mask = s->map_cap - 1, h = (size_t)dc_hdc_mix64(cp) & mask;
    while (s->map_key[h] && s->map_key[h] != cp + 1) h = (h + 1) & mask;
    if (!s->map_key[h]) {
        dc_status st = reserve_extra(s, s->nextra + 1);
        if (st != DC_OK) return st;
        dc_hv v;
        dc_hdc_memory_symbol(m, cp, &v);
        uint64_t *dst = s->extra + s->nextra * 2 * DC_HV_WORDS;
        memcpy(dst, v.w, sizeof v.w);
        memcpy(dst + DC_HV_WORDS, v.w, sizeof v.w);
        s->map_key[h] = cp + 1;
        s->map_val[h] = (uint32_t)s->nextra++;
    }
    *ref = m->symbols + s->map_val[h];
    return DC_OK;
}

/* refs and ptr hold one entry per code point read. */
static dc_status reserve_chars(dc_hdc_scratch *s, size_t need) {
    if (need <= s->cap) return DC_OK;
    uint32_t *refs = malloc(need * sizeof *refs);
    const uint64_t **ptr = malloc(need * sizeof *ptr);
    if (!refs || !ptr) {
        free(refs);
        free(ptr);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "HDC scratch: %zu code points", need);
    }
    free(s->refs);
    free(s->ptr);
    s->refs = refs;
    s->ptr = ptr;
    s->cap = need;
    return DC_OK;
}

/* Counts the distinct n-grams (g consecutive refs) among `items`; fills gram_start/gram_count
 * and returns how many. Majority bundling ignores order, so each is added once, weighted. */
static dc_status count_grams(dc_hdc_scratch *s, const uint32_t *refs, size_t items, uint32_t g,
                             size_t *distinct) {
    size_t slots = 64;
    while (slots < 2 * items) slots *= 2;
    if (slots > s->gram_slots) {
        free(s->gram_slot);
        s->gram_slot = malloc(slots * sizeof *s->gram_slot);
        s->gram_slots = s->gram_slot ? slots : 0;
        if (!s->gram_slot) return dc_fail(DC_ERR_OUT_OF_MEMORY, "HDC scratch: n-gram table");
    }
    if (items > s->gram_cap) {
        uint32_t *st = malloc(items * sizeof *st), *ct = malloc(items * sizeof *ct);
        if (!st || !ct) {
            free(st);
            free(ct);
            return dc_fail(DC_ERR_OUT_OF_MEMORY, "HDC scratch: %zu n-grams", items);
        }
        free(s->gram_start);
        free(s->gram_count);
        s->gram_start = st;
        s->gram_count = ct;
        s->gram_cap = items;
    }
    memset(s->gram_slot, 0, slots * sizeof *s->gram_slot);
    size_t mask = slots - 1, n = 0;
    for (size_t i = 0; i < items; i++) {
        uint64_t h = 0;
        for (uint32_t j = 0; j < g; j++) h = h * 0x100000001B3ull + refs[i + j];
        size_t at = (size_t)dc_hdc_mix64(h) & mask;
        for (;;) {
            uint32_t e = s->gram_slot[at];
            if (e == 0) {
                s->gram_slot[at] = (uint32_t)n + 1;
                s->gram_start[n] = (uint32_t)i;
                s->gram_count[n++] = 1;
                break;
            }
            if (memcmp(refs + s->gram_start[e - 1], refs + i, g * sizeof *refs) == 0) {
                s->gram_count[e - 1]++;
                break;
            }
            at = (at + 1) & mask;
        }
    }
    *distinct = n;
    return DC_OK;
}

dc_status dc_hdc_encode_hv(const dc_hdc_memory *m, dc_hdc_scratch *s, const char *text, size_t len,
                           uint32_t max_chars, bool case_sensitive, dc_hv *hv, dc_hdc_result *res) {
    if (!m || !s || (!text && len) || !hv)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "HDC encode: NULL argument");
    if (len == 0) return dc_fail(DC_ERR_EMPTY_INPUT, "HDC encode: empty text");
    if (max_chars == 0 || max_chars > DC_HDC_MAX_MAX_CHARS)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "HDC encode: max_chars %u is not 1 .. %u",
                       (unsigned)max_chars, DC_HDC_MAX_MAX_CHARS);
    size_t room = len < max_chars ? len : max_chars; /* never more code points than bytes */
    dc_status st = reserve_chars(s, room);
    if (st != DC_OK) return st;
    bool map_ready = false;

    const uint8_t *u = (const uint8_t *)text;
    size_t i = 0, n = 0;
    while (i < len && n < max_chars) {
        uint32_t cp = next_cp(u, len, &i);
        if (!case_sensitive) /* ASCII inline; the rest by Unicode's simple lower-case mapping */
            cp = cp < 0x80 ? (cp - 'A' < 26u ? cp + 32 : cp)
                           : (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
        uint32_t ref = cp;
        if (cp >= m->symbols && (st = extra_ref(m, s, cp, room, &map_ready, &ref)) != DC_OK)
            return st;
        s->refs[n++] = ref;
    }
    for (size_t k = 0; k < n; k++) {
        uint32_t r = s->refs[k];
        s->ptr[k] = r < m->symbols ? m->base2 + (size_t)r * 2 * DC_HV_WORDS
                                   : s->extra + (size_t)(r - m->symbols) * 2 * DC_HV_WORDS;
    }

    /* Slot j of an n-gram is rotated by shift[j] = whole words: with doubled storage that is
     * the window starting DC_HV_WORDS - shift/64 words into the pair. */
    uint32_t g = m->ngram, first = 0;
    if (n < g) { /* a text shorter than one n-gram: its characters fill the last slots */
        first = g - (uint32_t)n;
        g = (uint32_t)n;
    }
    size_t off[DC_HDC_MAX_NGRAM];
    for (uint32_t j = 0; j < g; j++) off[j] = DC_HV_WORDS - m->shift[first + j] / 64;
    dc_hv_bundler *b = &s->bundler;
    dc_hv_bundler_reset(b, g);
    size_t ngrams = n - g + 1, distinct = 0;
    if ((st = count_grams(s, s->refs, ngrams, g, &distinct)) != DC_OK) return st;
    dc_hv_bundler_add_ngrams_weighted(b, s->ptr, off, s->gram_start, s->gram_count, distinct);
    dc_hv_bundler_majority(b, &m->tie, hv);
    if (res) {
        res->chars_used = (uint32_t)n;
        res->truncated = i < len;
        res->ngrams = (uint32_t)ngrams;
    }
    return DC_OK;
}

/* Bit count of a 10-bit value (SWAR: the default x86-64 target has no popcnt instruction and
 * the builtin would be a library call). */
static int popcount10(uint32_t v) {
    v = v - ((v >> 1) & 0x5555u);
    v = (v & 0x3333u) + ((v >> 2) & 0x3333u);
    v = (v + (v >> 4)) & 0x0F0Fu;
    return (int)((v + (v >> 8)) & 0x1Fu);
}

void dc_hdc_project(const dc_hdc_memory *m, const dc_hv *hv, float out[DC_HDC_OUT_DIM]) {
    int y[DC_HDC_OUT_DIM];
    uint64_t x[DC_HV_WORDS];
    for (int w = 0; w < DC_HV_WORDS; w++) x[w] = hv->w[w] ^ m->sign.w[w];
    int64_t sq = 0;
    for (int b = 0; b < DC_HDC_OUT_DIM; b++) {
        unsigned o = (unsigned)b * DC_HDC_GROUP_BITS, w = o / 64, sh = o % 64;
        uint64_t v = x[w] >> sh;
        if (sh > 64 - DC_HDC_GROUP_BITS) v |= x[w + 1] << (64 - sh);
        y[b] = 2 * popcount10((uint32_t)v & ((1u << DC_HDC_GROUP_BITS) - 1)) - DC_HDC_GROUP_BITS;
        sq += (int64_t)y[b] * y[b];
    }
    if (sq == 0) { /* every group balanced (odds ~ 1e-624): fall back to each group's first bit */
        for (int b = 0; b < DC_HDC_OUT_DIM; b++) {
            unsigned o = (unsigned)b * DC_HDC_GROUP_BITS;
            y[b] = (x[o / 64] >> (o % 64)) & 1u ? 1 : -1;
        }
        sq = DC_HDC_OUT_DIM;
    }
    double norm = sqrt((double)sq);
    for (int b = 0; b < DC_HDC_OUT_DIM; b++) out[b] = (float)(y[b] / norm);
}

dc_status dc_hdc_encode(const dc_hdc_memory *m, dc_hdc_scratch *s, const char *text, size_t len,
                        uint32_t max_chars, bool case_sensitive, float out[DC_HDC_OUT_DIM],
                        dc_hdc_result *res) {
    dc_hv hv;
    dc_status st = dc_hdc_encode_hv(m, s, text, len, max_chars, case_sensitive, &hv, res);
    if (st == DC_OK) dc_hdc_project(m, &hv, out);
    return st;
}

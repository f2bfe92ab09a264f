/* Sanitation before matching: remove invisible characters, compose to NFC, fold look-alike
 * digits and punctuation to ASCII; keep the original span of every output byte. */
#include "privacy/sanitize.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"
#include "core/utf8.h"
#include "text/unicode.h"

/* First code point ("zero") of each run of ten decimal digits (general category Nd) outside
 * ASCII, Unicode 15. */
static const uint32_t digit_zeros[] = {
    0x0660,  0x06F0,  0x07C0,  0x0966,  0x09E6,  0x0A66,  0x0AE6,  0x0B66,  0x0BE6,  0x0C66,
    0x0CE6,  0x0D66,  0x0DE6,  0x0E50,  0x0ED0,  0x0F20,  0x1040,  0x1090,  0x17E0,  0x1810,
    0x1946,  0x19D0,  0x1A80,  0x1A90,  0x1B50,  0x1BB0,  0x1C40,  0x1C50,  0xA620,  0xA8D0,
    0xA900,  0xA9D0,  0xA9F0,  0xAA50,  0xABF0,  0xFF10,  0x104A0, 0x10D30, 0x11066, 0x110F0,
    0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950,
    0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC,
    0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
};

uint32_t dc_pii_fold_ascii(uint32_t cp) {
    if (cp < 0x80) return 0;
    if (cp >= 0xFF01 && cp <= 0xFF5E) return cp - 0xFEE0; /* full-width ASCII */
    switch (cp) {
    case 0x00A0: case 0x1680: case 0x202F: case 0x205F: case 0x3000: /* spaces */
        return ' ';
    case 0x2010: case 0x2011: case 0x2012: case 0x2013: case 0x2014: case 0x2015: /* dashes */
    case 0x2212: case 0xFE58: case 0xFE63:
        return '-';
    case 0xFE6B: /* small commercial at */
        return '@';
    case 0x3002: case 0xFF61: case 0xFE52: case 0x2024: /* ideographic / small full stops */
        return '.';
    default:
        break;
    }
    if (cp >= 0x2000 && cp <= 0x200A) return ' ';
    const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)cp);
    if (p->category == UTF8PROC_CATEGORY_ND) {
        for (size_t i = 0; i < sizeof digit_zeros / sizeof digit_zeros[0]; i++)
            if (cp >= digit_zeros[i] && cp < digit_zeros[i] + 10) return '0' + (cp - digit_zeros[i]);
    }
    return 0;
}

static bool is_ignorable(uint32_t cp) {
    return cp >= 0x80 && utf8proc_get_property((utf8proc_int32_t)cp)->ignorable;
}

/* True when cp may continue a normalization segment begun earlier: it can reorder or compose
 * with what precedes it. */
static bool continues_segment(uint32_t cp) {
    return cp >= 0x300 && (dc_uc_ccc(cp) != 0 || dc_uc_may_compose_second(cp));
}

/* True when cp alone is already NFC and cannot change. */
static bool nfc_stable_alone(uint32_t cp) {
    const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)cp);
    return p->decomp_seqindex == UINT16_MAX || p->decomp_type != 0; /* no canonical mapping */
}

typedef struct builder {
    char *s;
    uint32_t *ostart, *oend;
    size_t n, cap;
} builder;

static bool put(builder *b, const char *bytes, size_t k, size_t o0, size_t o1) {
    if (b->n + k > b->cap) {
        size_t cap = b->cap * 2 + k + 16;
        char *s = realloc(b->s, cap + 1);
        if (!s) return false;
        b->s = s;
        uint32_t *a = realloc(b->ostart, cap * sizeof *a);
        if (!a) return false;
        b->ostart = a;
        uint32_t *e = realloc(b->oend, cap * sizeof *e);
        if (!e) return false;
        b->oend = e;
        b->cap = cap;
    }
    memcpy(b->s + b->n, bytes, k);
    for (size_t i = 0; i < k; i++) {
        b->ostart[b->n + i] = (uint32_t)o0;
        b->oend[b->n + i] = (uint32_t)o1;
    }
    b->n += k;
    return true;
}

#define SEG_MAX 30 /* code points composed together; longer runs of marks are cut (stream-safe) */

/* Composes one segment (a starter and the marks that follow it, invisible characters already
 * dropped) and appends it; all its bytes map to the segment's whole original span. */
static bool put_segment(builder *b, const uint32_t *cps, size_t k, size_t o0, size_t o1) {
    char utf8[SEG_MAX * 4];
    size_t ul = 0;
    for (size_t i = 0; i < k; i++) ul += dc_u8_encode(cps[i], utf8 + ul);
    if (k == 1 && nfc_stable_alone(cps[0])) return put(b, utf8, ul, o0, o1);
    utf8proc_int32_t buf[SEG_MAX * 8];
    utf8proc_option_t opt = (utf8proc_option_t)(UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    utf8proc_ssize_t m = utf8proc_decompose((const utf8proc_uint8_t *)utf8, (utf8proc_ssize_t)ul,
                                            buf, (utf8proc_ssize_t)(sizeof buf / sizeof buf[0]),
                                            opt);
    if (m < 0 || (size_t)m > sizeof buf / sizeof buf[0]) return put(b, utf8, ul, o0, o1);
    m = utf8proc_normalize_utf32(buf, m, opt);
    if (m < 0) return put(b, utf8, ul, o0, o1);
    char out[SEG_MAX * 8 * 4];
    size_t ol = 0;
    for (utf8proc_ssize_t i = 0; i < m; i++) ol += dc_u8_encode((uint32_t)buf[i], out + ol);
    return put(b, out, ol, o0, o1);
}

static bool all_ascii(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w & 0x8080808080808080ull) return false;
    }
    for (; i < len; i++)
        if (p[i] & 0x80) return false;
    return true;
}

dc_status dc_pii_sanitize(const char *in, size_t len, dc_pii_text *out) {
    memset(out, 0, sizeof *out);
    if (!in && len) return dc_fail(DC_ERR_INVALID_ARGUMENT, "PII scrub: NULL text");
    if (len > DC_PII_TEXT_MAX)
        return dc_fail(DC_ERR_INPUT_TOO_LONG, "PII scrub: text of %zu bytes (at most %zu)", len,
                       DC_PII_TEXT_MAX);
    if (all_ascii(in, len)) {
        out->s = len ? in : "";
        out->n = len;
        return DC_OK;
    }
    size_t bad = 0;
    if (!dc_utf8_valid(in, len, &bad))
        return dc_fail(DC_ERR_INVALID_VALUE, "PII scrub: text is not valid UTF-8 at byte %zu",
                       bad);

    builder b = {0};
    b.cap = len + 16;
    b.s = malloc(b.cap + 1);
    b.ostart = malloc(b.cap * sizeof *b.ostart);
    b.oend = malloc(b.cap * sizeof *b.oend);
    bool ok = b.s && b.ostart && b.oend;
    size_t i = 0;
    while (ok && i < len) {
        unsigned char c = (unsigned char)in[i];
        if (c < 0x80) {
            /* copy the ASCII run at once */
            size_t j = i + 1;
            while (j < len && !((unsigned char)in[j] & 0x80)) j++;
            if (b.n + (j - i) > b.cap) {
                ok = put(&b, in + i, 1, i, i + 1);
                i++;
                continue;
            }
            memcpy(b.s + b.n, in + i, j - i);
            for (size_t k = i; k < j; k++) {
                b.ostart[b.n] = (uint32_t)k;
                b.oend[b.n++] = (uint32_t)(k + 1);
            }
            i = j;
            continue;
        }
        uint32_t n = 0;
        uint32_t cp = dc_u8_decode(in + i, &n);
        if (is_ignorable(cp)) {
            i += n;
            continue;
        }
        uint32_t f = dc_pii_fold_ascii(cp);
        if (f) {
            char ch = (char)f;
            ok = put(&b, &ch, 1, i, i + n);
            i += n;
            continue;
        }
        /* A segment: this code point and the marks (and invisibles) that follow it. */
        uint32_t cps[SEG_MAX];
        size_t k = 0, start = i;
        cps[k++] = cp;
        i += n;
        while (i < len && k < SEG_MAX && ((unsigned char)in[i] & 0x80)) {
            uint32_t m = 0;
            uint32_t next = dc_u8_decode(in + i, &m);
            if (is_ignorable(next)) {
                size_t peek = i + m; /* an invisible inside a segment is skipped, not a break */
                if (peek < len && ((unsigned char)in[peek] & 0x80)) {
                    uint32_t m2 = 0;
                    uint32_t after = dc_u8_decode(in + peek, &m2);
                    if (continues_segment(after) && !is_ignorable(after)) {
                        i = peek;
                        continue;
                    }
                }
                break;
            }
            if (!continues_segment(next) || dc_pii_fold_ascii(next)) break;
            cps[k++] = next;
            i += m;
        }
        ok = put_segment(&b, cps, k, start, i);
    }
    if (!ok) {
        free(b.s);
        free(b.ostart);
        free(b.oend);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "PII scrub: out of memory sanitizing %zu bytes", len);
    }
    b.s[b.n] = '\0';
    out->s = b.s;
    out->owned = b.s;
    out->n = b.n;
    out->ostart = b.ostart;
    out->oend = b.oend;
    return DC_OK;
}

void dc_pii_text_free(dc_pii_text *t) {
    if (!t) return;
    free(t->owned);
    free(t->ostart);
    free(t->oend);
    memset(t, 0, sizeof *t);
}

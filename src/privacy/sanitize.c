/* Sanitation before matching: remove invisible characters, compose to NFC, fold look-alike
 * digits and punctuation to ASCII; keep the original span of every output byte. */
#include "privacy/sanitize.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"
#include "text/unicode.h" /* dc_u8_encode */

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

/* The fold of cp given its properties (0: none). */
static uint32_t fold_with(uint32_t cp, const utf8proc_property_t *p) {
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
    if (p->category == UTF8PROC_CATEGORY_ND) {
        for (size_t i = 0; i < sizeof digit_zeros / sizeof digit_zeros[0]; i++)
            if (cp >= digit_zeros[i] && cp < digit_zeros[i] + 10) return '0' + (cp - digit_zeros[i]);
    }
    return 0;
}

uint32_t dc_pii_fold_ascii(uint32_t cp) {
    return cp < 0x80 ? 0 : fold_with(cp, utf8proc_get_property((utf8proc_int32_t)cp));
}

/* What sanitation needs to know about a non-ASCII code point, from one property lookup. */
typedef struct cpinfo {
    uint32_t fold;  /* the ASCII it folds to, or 0 */
    bool ignorable; /* Default_Ignorable_Code_Point: removed */
    bool cont;      /* may reorder or compose with what precedes it (continues a segment) */
    bool stable;    /* alone, already NFC (no canonical decomposition) */
} cpinfo;

static cpinfo classify(uint32_t cp) {
    const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)cp);
    cpinfo r;
    r.ignorable = p->ignorable;
    r.fold = r.ignorable ? 0 : fold_with(cp, p);
    /* as dc_uc_may_compose_second: combining marks, Hangul V/T jamo */
    r.cont = cp >= 0x300 && (p->combining_class != 0 || (cp >= 0x1161 && cp <= 0x11C2) ||
                             p->category == UTF8PROC_CATEGORY_MN ||
                             p->category == UTF8PROC_CATEGORY_MC ||
                             p->category == UTF8PROC_CATEGORY_ME);
    r.stable = p->decomp_seqindex == UINT16_MAX || p->decomp_type != 0;
    return r;
}

/* Decodes and validates one UTF-8 sequence at s[i] (s[i] >= 0x80): the code point, or -1 for
 * an invalid sequence (RFC 3629: no overlongs, surrogates or values above U+10FFFF). */
static int32_t decode_checked(const unsigned char *s, size_t len, size_t i, uint32_t *n) {
    unsigned char b = s[i];
    uint32_t k, cp, min;
    if (b >= 0xC2 && b <= 0xDF) {
        k = 2, cp = b & 0x1F, min = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
        k = 3, cp = b & 0x0F, min = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
        k = 4, cp = b & 0x07, min = 0x10000;
    } else {
        return -1;
    }
    if (i + k > len) return -1;
    for (uint32_t j = 1; j < k; j++) {
        if ((s[i + j] & 0xC0) != 0x80) return -1;
        cp = (cp << 6) | (s[i + j] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
    *n = k;
    return (int32_t)cp;
}

/* The output being built. Until the first change it is only a count: the input itself is the
 * sanitized text so far (copy = NULL). */
typedef struct builder {
    const char *in;
    char *s;
    size_t n, cap;
    dc_pii_piece *p;
    size_t np, pcap;
    bool oom;
} builder;

static bool grow(builder *b, size_t k) {
    if (b->n + k <= b->cap) return true;
    size_t cap = b->cap * 2 + k + 64;
    char *s = realloc(b->s, cap + 1);
    if (!s) return false;
    b->s = s;
    b->cap = cap;
    return true;
}

static void add_piece(builder *b, size_t orig0, size_t orig1, bool linear) {
    if (linear && b->np) {
        const dc_pii_piece *last = &b->p[b->np - 1];
        if (last->linear && last->orig0 + (b->n - last->out0) == orig0) return; /* continues */
    }
    if (b->np == b->pcap) {
        size_t cap = b->pcap ? b->pcap * 2 : 16;
        dc_pii_piece *p = realloc(b->p, cap * sizeof *p);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->pcap = cap;
    }
    dc_pii_piece *q = &b->p[b->np++];
    q->out0 = (uint32_t)b->n;
    q->orig0 = (uint32_t)orig0;
    q->orig1 = (uint32_t)orig1;
    q->linear = linear;
}

/* Switches to copying at input offset i: everything before it was unchanged. */
static void start_copy(builder *b, size_t i, size_t len) {
    b->cap = len + 64;
    b->s = malloc(b->cap + 1);
    if (!b->s) {
        b->oom = true;
        return;
    }
    memcpy(b->s, b->in, i);
    b->n = 0;
    if (i) add_piece(b, 0, i, true);
    b->n = i;
}

/* Appends input bytes [i, i + k) unchanged. */
static void put_same(builder *b, size_t i, size_t k) {
    if (!b->s) {
        b->n += k;
        return;
    }
    if (!grow(b, k)) {
        b->oom = true;
        return;
    }
    add_piece(b, i, i + k, true);
    memcpy(b->s + b->n, b->in + i, k);
    b->n += k;
}

/* Appends bytes that replace input [o0, o1). */
static void put_new(builder *b, const char *bytes, size_t k, size_t o0, size_t o1) {
    if (!k) return; /* a removal: the next piece starts at a later original offset */
    if (!grow(b, k)) {
        b->oom = true;
        return;
    }
    add_piece(b, o0, o1, false);
    memcpy(b->s + b->n, bytes, k);
    b->n += k;
}

#define SEG_MAX 30 /* code points composed together; longer runs of marks are cut (stream-safe) */

/* NFC of one segment (a starter and the marks after it, invisible characters dropped) into out;
 * returns its length. */
static size_t compose_segment(const uint32_t *cps, size_t k, bool stable_alone, char *out) {
    char utf8[SEG_MAX * 4];
    size_t ul = 0;
    for (size_t i = 0; i < k; i++) ul += dc_u8_encode(cps[i], utf8 + ul);
    if (k == 1 && stable_alone) {
        memcpy(out, utf8, ul);
        return ul;
    }
    utf8proc_int32_t buf[SEG_MAX * 8];
    utf8proc_option_t opt = (utf8proc_option_t)(UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    utf8proc_ssize_t m = utf8proc_decompose((const utf8proc_uint8_t *)utf8, (utf8proc_ssize_t)ul,
                                            buf, (utf8proc_ssize_t)(sizeof buf / sizeof buf[0]),
                                            opt);
    if (m >= 0 && (size_t)m <= sizeof buf / sizeof buf[0]) m = utf8proc_normalize_utf32(buf, m, opt);
    if (m < 0 || (size_t)m > sizeof buf / sizeof buf[0]) {
        memcpy(out, utf8, ul);
        return ul;
    }
    size_t ol = 0;
    for (utf8proc_ssize_t i = 0; i < m; i++) ol += dc_u8_encode((uint32_t)buf[i], out + ol);
    return ol;
}

dc_status dc_pii_sanitize(const char *in, size_t len, dc_pii_text *out) {
    memset(out, 0, sizeof *out);
    if (!in && len) return dc_fail(DC_ERR_INVALID_ARGUMENT, "PII scrub: NULL text");
    if (len > DC_PII_TEXT_MAX)
        return dc_fail(DC_ERR_INPUT_TOO_LONG, "PII scrub: text of %zu bytes (at most %zu)", len,
                       DC_PII_TEXT_MAX);
    if (!in) in = "";
    const unsigned char *u = (const unsigned char *)in;
    builder b = {0};
    b.in = in;
    size_t i = 0;
    while (i < len && !b.oom) {
        if (u[i] < 0x80) {
            size_t j = i + 1;
            while (j < len && u[j] < 0x80) j++;
            put_same(&b, i, j - i);
            i = j;
            continue;
        }
        uint32_t n = 0;
        int32_t cp0 = decode_checked(u, len, i, &n);
        if (cp0 < 0) {
            free(b.s);
            free(b.p);
            return dc_fail(DC_ERR_INVALID_VALUE, "PII scrub: text is not valid UTF-8 at byte %zu",
                           i);
        }
        uint32_t cp = (uint32_t)cp0;
        cpinfo info = classify(cp);
        if (info.ignorable || info.fold) {
            if (!b.s) start_copy(&b, i, len);
            char ch = (char)info.fold;
            put_new(&b, &ch, info.fold ? 1 : 0, i, i + n);
            i += n;
            continue;
        }
        /* A segment: this code point and the marks (and invisibles) that follow it. */
        uint32_t cps[SEG_MAX];
        size_t k = 0, start = i;
        bool skipped = false, stable = info.stable;
        cps[k++] = cp;
        i += n;
        while (i < len && k < SEG_MAX && u[i] >= 0x80) {
            uint32_t m = 0;
            int32_t next = decode_checked(u, len, i, &m);
            if (next < 0) break; /* reported on the next turn of the outer loop */
            cpinfo ni = classify((uint32_t)next);
            if (ni.ignorable) {
                /* an invisible between a letter and its mark is dropped, not a boundary */
                size_t peek = i + m;
                uint32_t m2 = 0;
                int32_t after = peek < len && u[peek] >= 0x80 ? decode_checked(u, len, peek, &m2) : -1;
                if (after >= 0) {
                    cpinfo ai = classify((uint32_t)after);
                    if (ai.cont && !ai.ignorable && !ai.fold) {
                        i = peek;
                        skipped = true;
                        continue;
                    }
                }
                break;
            }
            if (!ni.cont || ni.fold) break;
            cps[k++] = (uint32_t)next;
            i += m;
        }
        char composed[SEG_MAX * 8 * 4];
        size_t cl = compose_segment(cps, k, stable, composed);
        if (!skipped && cl == i - start && memcmp(composed, in + start, cl) == 0) {
            put_same(&b, start, cl); /* already NFC: the common case */
        } else {
            if (!b.s) start_copy(&b, start, len);
            put_new(&b, composed, cl, start, i);
        }
    }
    if (b.oom) {
        free(b.s);
        free(b.p);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "PII scrub: out of memory sanitizing %zu bytes", len);
    }
    if (!b.s) { /* nothing changed */
        out->s = in;
        out->n = len;
        return DC_OK;
    }
    b.s[b.n] = '\0';
    out->s = b.s;
    out->owned = b.s;
    out->n = b.n;
    out->pieces = b.p;
    out->npieces = b.np;
    return DC_OK;
}

/* The piece holding sanitized byte a. */
static const dc_pii_piece *piece_at(const dc_pii_text *t, size_t a) {
    size_t lo = 0, hi = t->npieces;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (t->pieces[mid].out0 <= a) lo = mid;
        else hi = mid;
    }
    return &t->pieces[lo];
}

size_t dc_pii_text_orig_start(const dc_pii_text *t, size_t a) {
    if (!t->pieces) return a;
    const dc_pii_piece *p = piece_at(t, a);
    return p->linear ? p->orig0 + (a - p->out0) : p->orig0;
}

size_t dc_pii_text_orig_end(const dc_pii_text *t, size_t b) {
    if (!t->pieces) return b;
    const dc_pii_piece *p = piece_at(t, b - 1);
    return p->linear ? p->orig0 + (b - p->out0) : p->orig1;
}

void dc_pii_text_free(dc_pii_text *t) {
    if (!t) return;
    free(t->owned);
    free(t->pieces);
    memset(t, 0, sizeof *t);
}

/* Normalizers: BertNormalizer, Strip, StripAccents, NFC/NFD/NFKC/NFKD, Lowercase, Replace,
 * Prepend, ByteLevel, Nmt and Sequence. Each pass rewrites a piece through dc_tx, which applies
 * the reference's alignment rules, so offsets come out as the reference's do. Runs of
 * characters a pass leaves alone are copied in bulk. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/tok_internal.h"
#include "text/unicode.h"

static bool all_ascii(const dc_piece *p) {
    for (uint32_t i = 0; i < p->len; i++)
        if ((uint8_t)p->s[i] >= 0x80) return false;
    return true;
}

/* Flushes the unchanged run [*run, i) of the source. */
static inline void flush_run(dc_tx *t, uint32_t *run, uint32_t i) {
    if (i > *run) dc_tx_copy(t, i - *run);
    *run = i;
}

/* ---------- BertNormalizer steps ---------- */

static dc_status pass_clean_text(dc_ctx *c, dc_piece *p) {
    dc_tx t;
    dc_tx_begin(&t, c, p);
    uint32_t i = 0, run = 0;
    while (i < p->len) {
        uint8_t b = (uint8_t)p->s[i];
        if (b >= 0x20 && b < 0x7F) {
            i++;
            continue;
        }
        uint32_t n, cp = dc_u8_decode(p->s + i, &n);
        bool drop = cp == 0 || cp == 0xFFFD ||
                    (cp != '\t' && cp != '\n' && cp != '\r' && dc_uc_is_other(cp));
        if (drop) {
            flush_run(&t, &run, i);
            dc_tx_skip(&t, 1);
            run = i + n;
        } else if (cp != ' ' && dc_uc_is_whitespace(cp)) {
            flush_run(&t, &run, i);
            dc_tx_emit(&t, ' ', 0);
            run = i + n;
        }
        i += n;
    }
    flush_run(&t, &run, p->len);
    dc_tokenizer_work_add(p->len);
    return dc_tx_end(&t, p);
}

static dc_status pass_chinese(dc_ctx *c, dc_piece *p) {
    bool any = false;
    for (uint32_t i = 0; i < p->len && !any;) {
        uint32_t n, cp = dc_u8_decode(p->s + i, &n);
        any = cp >= 0x3400 && dc_uc_is_chinese(cp);
        i += n;
    }
    if (!any) return DC_OK;
    dc_tx t;
    dc_tx_begin(&t, c, p);
    uint32_t i = 0, run = 0;
    while (i < p->len) {
        uint32_t n, cp = dc_u8_decode(p->s + i, &n);
        if (cp >= 0x3400 && dc_uc_is_chinese(cp)) {
            flush_run(&t, &run, i);
            dc_tx_emit(&t, ' ', 0);
            dc_tx_emit(&t, cp, 1);
            dc_tx_emit(&t, ' ', 1);
            run = i + n;
        }
        i += n;
    }
    flush_run(&t, &run, p->len);
    return dc_tx_end(&t, p);
}

/* Keeps the chars for which keep() is true (reference NormalizedString::filter). */
static dc_status pass_filter(dc_ctx *c, dc_piece *p, bool (*drop)(uint32_t)) {
    bool any = false;
    for (uint32_t i = 0; i < p->len && !any;) {
        uint32_t n, cp = dc_u8_decode(p->s + i, &n);
        any = drop(cp);
        i += n;
    }
    if (!any) return DC_OK;
    dc_tx t;
    dc_tx_begin(&t, c, p);
    uint32_t i = 0, run = 0;
    while (i < p->len) {
        uint32_t n, cp = dc_u8_decode(p->s + i, &n);
        if (drop(cp)) {
            flush_run(&t, &run, i);
            dc_tx_skip(&t, 1);
            run = i + n;
        }
        i += n;
    }
    flush_run(&t, &run, p->len);
    return dc_tx_end(&t, p);
}

static dc_status pass_lowercase(dc_ctx *c, dc_piece *p) {
    dc_tx t;
    dc_tx_begin(&t, c, p);
    uint32_t i = 0, run = 0;
    while (i < p->len) {
        uint8_t b = (uint8_t)p->s[i];
        if (b < 0x80) {
            if (b >= 'A' && b <= 'Z') {
                flush_run(&t, &run, i);
                dc_tx_emit(&t, (uint32_t)b + 32, 0);
                run = i + 1;
            }
            i++;
            continue;
        }
        uint32_t n, cp = dc_u8_decode(p->s + i, &n), lo[3];
        uint32_t k = dc_uc_lower(cp, lo);
        if (k != 1 || lo[0] != cp) {
            flush_run(&t, &run, i);
            for (uint32_t j = 0; j < k; j++) dc_tx_emit(&t, lo[j], j ? 1 : 0);
            run = i + n;
        }
        i += n;
    }
    flush_run(&t, &run, p->len);
    dc_tokenizer_work_add(p->len);
    return dc_tx_end(&t, p);
}

/* ---------- Unicode normalization forms ---------- */

typedef struct dc_cpch {
    uint32_t cp;
    int32_t change;
    uint8_t ccc;
} dc_cpch;

typedef struct dc_cpvec {
    dc_cpch *v;
    size_t n, cap;
} dc_cpvec;

static dc_status cpv_push(dc_cpvec *a, uint32_t cp, int32_t change, uint8_t ccc) {
    dc_status st = DC_GROW(a->v, a->cap, a->n + 1);
    if (st) return st;
    a->v[a->n++] = (dc_cpch){cp, change, ccc};
    return DC_OK;
}

/* Stable sort of a run of non-starters by combining class (insertion sort: runs are short). */
static void sort_run(dc_cpch *v, size_t n) {
    if (n < 2) return;
    for (size_t i = 1; i < n; i++) {
        dc_cpch x = v[i];
        size_t j = i;
        while (j > 0 && v[j - 1].ccc > x.ccc) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

/* Full decomposition with canonical ordering; each source char gives its first code point with
 * change 0 and the rest with +1 (as unicode-normalization-alignments does). */
static dc_status decompose_range(const char *s, uint32_t len, bool compat, dc_cpvec *out) {
    out->n = 0;
    size_t pending = 0; /* start of the current run of non-starters */
    for (uint32_t i = 0; i < len;) {
        uint32_t n, cp = dc_u8_decode(s + i, &n), d[32];
        uint32_t k = dc_uc_decompose(cp, compat, d);
        for (uint32_t j = 0; j < k; j++) {
            uint8_t ccc = dc_uc_ccc(d[j]);
            if (ccc == 0) {
                if (out->n > pending) sort_run(out->v + pending, out->n - pending);
                dc_status st = cpv_push(out, d[j], j ? 1 : 0, 0);
                if (st) return st;
                pending = out->n;
            } else {
                dc_status st = cpv_push(out, d[j], j ? 1 : 0, ccc);
                if (st) return st;
            }
        }
        i += n;
    }
    if (out->n > pending) sort_run(out->v + pending, out->n - pending);
    return DC_OK;
}

/* Canonical composition in place; a char absorbed into its starter adds (its change - 1) to the
 * starter's change, so the change list stays consistent. */
static void compose_vec(dc_cpvec *a) {
    size_t w = 0;      /* write position */
    long starter = -1; /* index (in the output) of the current composee */
    int last_ccc = -1; /* ccc of the last char kept after the starter; -1: none */
    for (size_t r = 0; r < a->n; r++) {
        dc_cpch x = a->v[r];
        /* x may join the starter when nothing sits between them, or when everything between
         * has a lower combining class (not blocked) */
        if (starter >= 0 && (last_ccc == -1 || last_ccc < x.ccc) &&
            dc_uc_may_compose_second(x.cp)) {
            uint32_t comp = dc_uc_compose(a->v[starter].cp, x.cp);
            if (comp) {
                a->v[starter].cp = comp;
                a->v[starter].ccc = dc_uc_ccc(comp);
                a->v[starter].change += x.change - 1;
                continue;
            }
        }
        if (x.ccc == 0) {
            starter = (long)w;
            last_ccc = -1;
        } else if (starter >= 0) {
            last_ccc = x.ccc;
        }
        a->v[w++] = x;
    }
    a->n = w;
}

/* A char below `limit` (no decomposition) followed by one below U+0300 (a starter that cannot
 * join it) comes out of NFD/NFC/NFKD/NFKC unchanged: such runs are copied, and only the
 * segments between them go through decomposition, reordering and composition. */
static bool quick_at(const dc_piece *p, uint32_t i, uint32_t limit, uint32_t *n) {
    uint32_t cp = dc_u8_decode(p->s + i, n);
    if (cp >= limit) return false;
    if (i + *n >= p->len) return true;
    uint32_t k;
    return dc_u8_decode(p->s + i + *n, &k) < 0x300;
}

static dc_status pass_unicode(dc_ctx *c, dc_piece *p, bool compose, bool compat) {
    if (all_ascii(p)) return DC_OK;
    uint32_t limit = compat ? 0xA0 : 0xC0;
    dc_cpvec v = {0};
    dc_tx t;
    dc_tx_begin(&t, c, p);
    dc_status st = DC_OK;
    uint32_t i = 0, run = 0, n;
    while (i < p->len && !st) {
        if (quick_at(p, i, limit, &n)) {
            i += n;
            continue;
        }
        flush_run(&t, &run, i);
        uint32_t j = i + n;
        while (j < p->len && !quick_at(p, j, limit, &n)) j += n;
        st = decompose_range(p->s + i, j - i, compat, &v);
        if (!st && compose) compose_vec(&v);
        for (size_t k = 0; k < v.n && !st; k++) dc_tx_emit(&t, v.v[k].cp, v.v[k].change);
        run = i = j;
    }
    free(v.v);
    if (st) {
        t.err = st; /* dc_tx_end drops the partial output */
        return dc_tx_end(&t, p);
    }
    flush_run(&t, &run, p->len);
    dc_tokenizer_work_add(p->len);
    return dc_tx_end(&t, p);
}

static bool drop_mn(uint32_t cp) { return cp >= 0x300 && dc_uc_is_mn(cp); }

static dc_status bert_normalize(dc_ctx *c, const dc_normalizer *n, dc_piece *p) {
    dc_status st = DC_OK;
    if (n->clean_text) st = pass_clean_text(c, p);
    if (!st && n->chinese) st = pass_chinese(c, p);
    if (!st && n->strip_accents) {
        st = pass_unicode(c, p, false, false);
        if (!st) st = pass_filter(c, p, drop_mn);
    }
    if (!st && n->lowercase) st = pass_lowercase(c, p);
    return st;
}

/* ---------- other normalizers ---------- */

static dc_status strip_normalize(dc_ctx *c, const dc_normalizer *n, dc_piece *p) {
    uint32_t lead = 0, trail = 0, nchars = 0, lead_bytes = 0, trail_bytes = 0;
    bool in_lead = true;
    uint32_t run_trail = 0, run_trail_bytes = 0;
    for (uint32_t i = 0; i < p->len;) {
        uint32_t k, cp = dc_u8_decode(p->s + i, &k);
        bool ws = dc_uc_is_whitespace(cp);
        if (in_lead && ws) {
            lead++;
            lead_bytes += k;
        } else {
            in_lead = false;
        }
        if (ws) {
            run_trail++;
            run_trail_bytes += k;
        } else {
            run_trail = 0;
            run_trail_bytes = 0;
        }
        nchars++;
        i += k;
    }
    trail = run_trail;
    trail_bytes = run_trail_bytes;
    if (!n->left) lead = 0, lead_bytes = 0;
    if (!n->right) trail = 0, trail_bytes = 0;
    if (!lead && !trail) return DC_OK;
    dc_tx t;
    dc_tx_begin(&t, c, p);
    if (lead >= nchars) {
        dc_tx_skip(&t, nchars);
    } else {
        dc_tx_skip(&t, lead);
        dc_tx_copy(&t, p->len - lead_bytes - trail_bytes);
        dc_tx_skip(&t, trail);
    }
    return dc_tx_end(&t, p);
}

static dc_status replace_normalize(dc_ctx *c, const dc_normalizer *n, dc_piece *p) {
    dc_match *m = NULL;
    size_t nm = 0;
    dc_status st = dc_pattern_find(c, &n->pat, p->s, p->len, false, &m, &nm);
    if (st) return st;
    bool any = false;
    for (size_t i = 0; i < nm; i++) any |= m[i].is_match;
    if (!any) {
        free(m);
        return DC_OK;
    }
    dc_tx t;
    dc_tx_begin(&t, c, p);
    for (size_t i = 0; i < nm; i++) {
        if (!m[i].is_match) {
            dc_tx_copy(&t, m[i].end - m[i].start);
            continue;
        }
        uint32_t removed = 0;
        for (uint32_t j = m[i].start; j < m[i].end; j += dc_u8_len((uint8_t)p->s[j])) removed++;
        dc_tx_skip(&t, removed);
        for (size_t j = 0; j < n->str_len;) {
            uint32_t k, cp = dc_u8_decode(n->str + j, &k);
            dc_tx_emit(&t, cp, 1);
            j += k;
        }
    }
    free(m);
    dc_tokenizer_work_add(p->len);
    return dc_tx_end(&t, p);
}

static dc_status prepend_normalize(dc_ctx *c, const dc_normalizer *n, dc_piece *p) {
    if (!p->len || !n->str_len) return DC_OK;
    dc_tx t;
    dc_tx_begin(&t, c, p);
    uint32_t first_len, first = dc_u8_decode(p->s, &first_len);
    bool head = true;
    for (size_t j = 0; j < n->str_len;) {
        uint32_t k, cp = dc_u8_decode(n->str + j, &k);
        dc_tx_emit(&t, cp, head ? 0 : 1);
        head = false;
        j += k;
    }
    dc_tx_emit(&t, first, 1);
    dc_tx_copy(&t, p->len - first_len);
    return dc_tx_end(&t, p);
}

static bool nmt_drop(uint32_t cp) {
    return (cp >= 0x01 && cp <= 0x08) || cp == 0x0B || (cp >= 0x0E && cp <= 0x1F) || cp == 0x7F ||
           cp == 0x8F || cp == 0x9F;
}

static dc_status nmt_normalize(dc_ctx *c, dc_piece *p) {
    dc_status st = pass_filter(c, p, nmt_drop);
    if (st) return st;
    dc_tx t;
    dc_tx_begin(&t, c, p);
    uint32_t i = 0, run = 0;
    while (i < p->len) {
        uint32_t n, cp = dc_u8_decode(p->s + i, &n);
        bool sp = cp == 0x09 || cp == 0x0A || cp == 0x0C || cp == 0x0D || cp == 0x1680 ||
                  (cp >= 0x200B && cp <= 0x200F) || cp == 0x2028 || cp == 0x2029 ||
                  cp == 0x2581 || cp == 0xFEFF || cp == 0xFFFD;
        if (sp) {
            flush_run(&t, &run, i);
            dc_tx_emit(&t, ' ', 0);
            run = i + n;
        }
        i += n;
    }
    flush_run(&t, &run, p->len);
    return dc_tx_end(&t, p);
}

dc_status dc_normalize(dc_ctx *c, const dc_normalizer *n, dc_piece *p) {
    switch (n->kind) {
    case DC_NORM_BERT:
        return bert_normalize(c, n, p);
    case DC_NORM_STRIP:
        return strip_normalize(c, n, p);
    case DC_NORM_STRIP_ACCENTS:
        return pass_filter(c, p, drop_mn);
    case DC_NORM_NFC:
        return pass_unicode(c, p, true, false);
    case DC_NORM_NFD:
        return pass_unicode(c, p, false, false);
    case DC_NORM_NFKC:
        return pass_unicode(c, p, true, true);
    case DC_NORM_NFKD:
        return pass_unicode(c, p, false, true);
    case DC_NORM_LOWERCASE:
        return pass_lowercase(c, p);
    case DC_NORM_REPLACE:
        return replace_normalize(c, n, p);
    case DC_NORM_PREPEND:
        return prepend_normalize(c, n, p);
    case DC_NORM_BYTELEVEL:
        p->bytelevel = 1;
        return dc_piece_materialize_bytelevel(c, p);
    case DC_NORM_NMT:
        return nmt_normalize(c, p);
    case DC_NORM_SEQUENCE:
        for (size_t i = 0; i < n->nitems; i++) {
            dc_status st = dc_normalize(c, &n->items[i], p);
            if (st) return st;
        }
        return DC_OK;
    }
    return dc_fail(DC_ERR_INTERNAL, "tokenizer: unknown normalizer kind %d", (int)n->kind);
}

void dc_normalizer_free(dc_normalizer *n) {
    if (!n) return;
    dc_pattern_free(&n->pat);
    free(n->str);
    for (size_t i = 0; i < n->nitems; i++) dc_normalizer_free(&n->items[i]);
    free(n->items);
    memset(n, 0, sizeof *n);
}

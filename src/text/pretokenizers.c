/* Pre-tokenizers: BertPreTokenizer, ByteLevel, Whitespace, WhitespaceSplit, Split, Punctuation,
 * Digits, Metaspace, CharDelimiterSplit and Sequence. Splits are views into the pieces; the
 * ByteLevel mapping is recorded as a flag and applied by the model (no copy). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/tok_internal.h"
#include "text/unicode.h"

static dc_status push_slice(dc_ctx *c, const dc_piece *p, uint32_t a, uint32_t b) {
    if (b <= a) return DC_OK;
    dc_piece q = dc_piece_slice(c, p, a, b);
    return dc_emit_piece(c, &q);
}

/* BertPreTokenizer: whitespace removed, then every punctuation char isolated (one pass). */
static dc_status split_bert(dc_ctx *c, const dc_piece *p) {
    dc_status st = DC_OK;
    uint32_t i = 0, run = 0;
    while (i < p->len && !st) {
        uint8_t b = (uint8_t)p->s[i];
        uint32_t n = 1, cp = b;
        if (b >= 0x80) cp = dc_u8_decode(p->s + i, &n);
        else if ((b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') || (b >= 'A' && b <= 'Z')) {
            i++;
            continue;
        }
        if (dc_uc_is_whitespace(cp)) {
            st = push_slice(c, p, run, i);
            run = i + n;
        } else if (dc_uc_is_bert_punct(cp)) {
            st = push_slice(c, p, run, i);
            if (!st) st = push_slice(c, p, i, i + n);
            run = i + n;
        }
        i += n;
    }
    if (!st) st = push_slice(c, p, run, p->len);
    dc_tokenizer_work_add(p->len);
    return st;
}

/* Reference Pattern for a char predicate: each matching char is a match of its own. */
static dc_status pred_matches(const dc_piece *p, bool (*pred)(uint32_t, uint32_t), uint32_t arg,
                              dc_match **out, size_t *nout) {
    size_t cap = 16, k = 0;
    dc_match *m = malloc(cap * sizeof *m);
    if (!m) return dc_fail(DC_ERR_OUT_OF_MEMORY, "tokenizer: cannot allocate split list");
    uint32_t last = 0;
    for (uint32_t i = 0; i < p->len;) {
        uint32_t n, cp = dc_u8_decode(p->s + i, &n);
        if (pred(cp, arg)) {
            if (k + 2 > cap) {
                dc_status st = DC_GROW(m, cap, k + 2);
                if (st) {
                    free(m);
                    return st;
                }
            }
            if (last < i) m[k++] = (dc_match){last, i, false};
            m[k++] = (dc_match){i, i + n, true};
            last = i + n;
        }
        i += n;
    }
    if (k + 1 > cap) {
        dc_status st = DC_GROW(m, cap, k + 1);
        if (st) {
            free(m);
            return st;
        }
    }
    if (last < p->len || p->len == 0) m[k++] = (dc_match){last, p->len, false};
    *out = m;
    *nout = k;
    return DC_OK;
}

static bool pred_ws(uint32_t cp, uint32_t arg) {
    (void)arg;
    return dc_uc_is_whitespace(cp);
}
static bool pred_punct(uint32_t cp, uint32_t arg) {
    (void)arg;
    return dc_uc_is_bert_punct(cp);
}
static bool pred_digit(uint32_t cp, uint32_t arg) {
    (void)arg;
    return dc_uc_is_numeric(cp);
}
static bool pred_char(uint32_t cp, uint32_t arg) { return cp == arg; }

static dc_status split_pred(dc_ctx *c, const dc_piece *p, bool (*pred)(uint32_t, uint32_t),
                            uint32_t arg, dc_split_behavior b) {
    dc_match *m = NULL;
    size_t nm = 0;
    dc_status st = pred_matches(p, pred, arg, &m, &nm);
    if (st) return st;
    st = dc_split_piece(c, p, m, nm, b);
    free(m);
    return st;
}

static dc_status split_pattern(dc_ctx *c, const dc_piece *p, const dc_pattern *pat, bool invert,
                               dc_split_behavior b) {
    dc_match *m;
    size_t nm;
    dc_status st = dc_pattern_find(c, pat, p->s, p->len, invert, &m, &nm);
    if (st) return st;
    st = dc_split_piece(c, p, m, nm, b);
    free(m);
    return st;
}

/* Reference NormalizedString::prepend. */
static dc_status prepend(dc_ctx *c, dc_piece *p, uint32_t cp) {
    if (!p->len) return DC_OK;
    dc_tx t;
    dc_tx_begin(&t, c, p);
    uint32_t n, first = dc_u8_decode(p->s, &n);
    dc_tx_emit(&t, cp, 0);
    dc_tx_emit(&t, first, 1);
    dc_tx_copy(&t, p->len - n);
    return dc_tx_end(&t, p);
}

static dc_status split_bytelevel(dc_ctx *c, const dc_pretok *pt, const dc_piece *in) {
    dc_piece p = *in;
    dc_status st = DC_OK;
    if (pt->add_prefix_space && !(p.len && p.s[0] == ' ')) st = prepend(c, &p, ' ');
    if (st) return st;
    c->emit_bytelevel = 1; /* every split is mapped to the byte-level alphabet */
    if (pt->use_regex) st = split_pattern(c, &p, &pt->pat, false, DC_SPLIT_ISOLATED);
    else st = dc_emit_piece(c, &p);
    c->emit_bytelevel = 0;
    return st;
}

static dc_status split_metaspace(dc_ctx *c, const dc_pretok *pt, const dc_piece *in) {
    dc_piece p = *in;
    char rep[4];
    uint32_t rep_len = dc_u8_encode(pt->ch, rep);
    /* replace(' ', replacement): the replacement is aligned with the space it stands for */
    if (memchr(p.s, ' ', p.len)) {
        dc_tx t;
        dc_tx_begin(&t, c, &p);
        uint32_t run = 0;
        for (uint32_t i = 0; i < p.len; i++) {
            if (p.s[i] != ' ') continue;
            if (i > run) dc_tx_copy(&t, i - run);
            dc_tx_skip(&t, 1);
            dc_tx_emit(&t, pt->ch, 1);
            run = i + 1;
        }
        if (p.len > run) dc_tx_copy(&t, p.len - run);
        dc_status st = dc_tx_end(&t, &p);
        if (st) return st;
    }
    bool starts = p.len >= rep_len && memcmp(p.s, rep, rep_len) == 0;
    if (!starts && (pt->prepend_scheme == 2 || (pt->prepend_scheme == 1 && p.ostart == 0))) {
        dc_status st = prepend(c, &p, pt->ch);
        if (st) return st;
    }
    if (!pt->split) return dc_emit_piece(c, &p);
    return split_pred(c, &p, pred_char, pt->ch, DC_SPLIT_MERGED_NEXT);
}

static dc_status split_one(dc_ctx *c, const dc_pretok *pt, dc_piece *p) {
    if (p->bytelevel && pt->kind != DC_PRE_BYTELEVEL) {
        dc_status st = dc_piece_materialize_bytelevel(c, p);
        if (st) return st;
    }
    switch (pt->kind) {
    case DC_PRE_BERT:
        return split_bert(c, p);
    case DC_PRE_BYTELEVEL:
        if (p->bytelevel) return dc_emit_piece(c, p); /* already byte-level */
        return split_bytelevel(c, pt, p);
    case DC_PRE_WHITESPACE:
        return split_pattern(c, p, &pt->pat, true, DC_SPLIT_REMOVED);
    case DC_PRE_WHITESPACE_SPLIT:
        return split_pred(c, p, pred_ws, 0, DC_SPLIT_REMOVED);
    case DC_PRE_SPLIT:
        return split_pattern(c, p, &pt->pat, pt->invert, pt->behavior);
    case DC_PRE_PUNCT:
        return split_pred(c, p, pred_punct, 0, pt->behavior);
    case DC_PRE_DIGITS:
        return split_pred(c, p, pred_digit, 0,
                          pt->individual_digits ? DC_SPLIT_ISOLATED : DC_SPLIT_CONTIGUOUS);
    case DC_PRE_METASPACE:
        return split_metaspace(c, pt, p);
    case DC_PRE_DELIMITER:
        return split_pred(c, p, pred_char, pt->ch, DC_SPLIT_REMOVED);
    case DC_PRE_SEQUENCE:
        break;
    }
    return dc_fail(DC_ERR_INTERNAL, "tokenizer: bad pre-tokenizer kind %d", (int)pt->kind);
}

/* One stage over c->pieces; `last`: the produced pieces go to the model. */
static dc_status pretokenize_stage(dc_ctx *c, const dc_pretok *pt, bool last) {
    c->ntmp = 0;
    c->sink_model = last;
    dc_status st = DC_OK;
    for (size_t i = 0; i < c->npieces && !st; i++) {
        dc_piece *p = &c->pieces[i];
        st = p->token >= 0 ? dc_emit_piece(c, p) : split_one(c, pt, p);
    }
    c->sink_model = false;
    if (st) return st;
    dc_piece *sw = c->pieces;
    size_t swcap = c->cap_pieces;
    c->pieces = c->tmp;
    c->cap_pieces = c->cap_tmp;
    c->npieces = c->ntmp;
    c->tmp = sw;
    c->cap_tmp = swcap;
    c->ntmp = 0;
    return DC_OK;
}

static dc_status pretokenize_rec(dc_ctx *c, const dc_pretok *pt, bool last) {
    if (pt->kind != DC_PRE_SEQUENCE) return pretokenize_stage(c, pt, last);
    for (size_t i = 0; i < pt->nitems; i++) {
        dc_status st = pretokenize_rec(c, &pt->items[i], last && i + 1 == pt->nitems);
        if (st) return st;
    }
    if (last && !pt->nitems) { /* an empty sequence: the pieces go to the model as they are */
        for (size_t i = 0; i < c->npieces; i++) {
            dc_status st = dc_tokenize_piece(c, &c->pieces[i]);
            if (st) return st;
        }
        c->npieces = 0;
    }
    return DC_OK;
}

dc_status dc_pretokenize(dc_ctx *c, const dc_pretok *pt) { return pretokenize_rec(c, pt, true); }

void dc_pretok_free(dc_pretok *p) {
    if (!p) return;
    dc_pattern_free(&p->pat);
    for (size_t i = 0; i < p->nitems; i++) dc_pretok_free(&p->items[i]);
    free(p->items);
    memset(p, 0, sizeof *p);
}

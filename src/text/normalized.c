/* Pieces of text under work and their alignment with the original: the C counterpart of the
 * reference's NormalizedString (transform, slice, split) with absolute offsets. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/tok_internal.h"
#include "text/unicode.h"

dc_status dc_ctx_init(dc_ctx *c, const struct dc_tokenizer *tok, const char *in, size_t len) {
    memset(c, 0, sizeof *c);
    c->tok = tok;
    c->in = in;
    c->in_len = len;
    return DC_OK;
}

void dc_ctx_free(dc_ctx *c) {
    for (size_t i = 0; i < c->nowned; i++) free(c->owned[i]);
    free(c->owned);
    free(c->pieces);
    free(c->tmp);
    free(c->toks);
    free(c->matches);
    free(c->scratch);
    free(c->syms);
    free(c->heap);
    free(c->cached);
    free(c->wp_len);
    if (c->md) pcre2_match_data_free(c->md);
    memset(c, 0, sizeof *c);
}

dc_status dc_ctx_own(dc_ctx *c, void *p) {
    if (!p) return DC_OK;
    dc_status st = DC_GROW(c->owned, c->cap_owned, c->nowned + 1);
    if (st) {
        free(p);
        return st;
    }
    c->owned[c->nowned++] = p;
    return DC_OK;
}

dc_span dc_piece_span(const dc_ctx *c, const dc_piece *p, uint32_t i) {
    if (p->al) return p->al[i];
    uint32_t b = p->ident + i, s = b;
    while (s > 0 && ((uint8_t)c->in[s] & 0xC0) == 0x80) s--;
    return (dc_span){s, s + dc_u8_len((uint8_t)c->in[s])};
}

dc_piece dc_piece_slice(const dc_ctx *c, const dc_piece *p, uint32_t a, uint32_t b) {
    dc_piece q = *p;
    q.s = p->s + a;
    q.len = b - a;
    if (p->al) q.al = p->al + a;
    else q.ident = p->ident + a;
    if (b > a) {
        q.ostart = dc_piece_span(c, p, a).start;
        q.oend = dc_piece_span(c, p, b - 1).end;
    } else {
        q.ostart = q.oend = p->ostart + a;
    }
    q.token = -1;
    return q;
}

/* ---------- transformer ---------- */

void dc_tx_begin(dc_tx *t, dc_ctx *c, const dc_piece *src) {
    memset(t, 0, sizeof *t);
    t->c = c;
    t->src = src;
    t->ident = src->al == NULL;
}

static bool tx_room(dc_tx *t, size_t n) {
    if (t->err) return false;
    if ((t->err = DC_GROW(t->out, t->cap_out, t->olen + n))) return false;
    if (!t->ident && (t->err = DC_GROW(t->oal, t->cap_al, t->olen + n))) return false;
    return true;
}

/* The output no longer has the input's layout: write out the alignments so far. */
static void tx_drop_ident(dc_tx *t) {
    if (!t->ident || t->err) return;
    t->ident = false;
    if ((t->err = DC_GROW(t->oal, t->cap_al, t->olen + 8))) return;
    for (size_t i = 0; i < t->olen; i++) t->oal[i] = dc_piece_span(t->c, t->src, (uint32_t)i);
}

static inline uint32_t src_charlen(const dc_tx *t) {
    return t->pos < t->src->len ? dc_u8_len((uint8_t)t->src->s[t->pos]) : 0;
}

void dc_tx_skip(dc_tx *t, uint32_t nchars) {
    if (nchars) tx_drop_ident(t);
    for (uint32_t k = 0; k < nchars && t->pos < t->src->len; k++) t->pos += src_charlen(t);
}

void dc_tx_emit(dc_tx *t, uint32_t cp, int32_t change) {
    const dc_piece *s = t->src;
    uint32_t n = dc_u8_cplen(cp);
    if (t->ident && !(change == 0 && t->olen == t->pos && n == src_charlen(t))) tx_drop_ident(t);
    if (!tx_room(t, n)) return;
    dc_span a;
    if (change > 0) {
        a = t->pos < 1 ? (dc_span){s->ostart, s->ostart} : dc_piece_span(t->c, s, t->pos - 1);
    } else if (t->pos < s->len) {
        a = dc_piece_span(t->c, s, t->pos);
    } else {
        a = (dc_span){s->oend, s->oend}; /* an inconsistent change list; keep going */
    }
    if (change <= 0) t->pos += src_charlen(t);
    for (int32_t k = 0; k < -change; k++) t->pos += src_charlen(t);
    dc_u8_encode(cp, t->out + t->olen);
    if (!t->ident)
        for (uint32_t k = 0; k < n; k++) t->oal[t->olen + k] = a;
    t->olen += n;
}

void dc_tx_copy(dc_tx *t, uint32_t nbytes) {
    if (t->ident && t->olen != t->pos) tx_drop_ident(t);
    if (!tx_room(t, nbytes)) return;
    memcpy(t->out + t->olen, t->src->s + t->pos, nbytes);
    if (!t->ident) {
        if (t->src->al) {
            memcpy(t->oal + t->olen, t->src->al + t->pos, nbytes * sizeof(dc_span));
        } else {
            for (uint32_t k = 0; k < nbytes; k++)
                t->oal[t->olen + k] = dc_piece_span(t->c, t->src, t->pos + k);
        }
    }
    t->olen += nbytes;
    t->pos += nbytes;
}

dc_status dc_tx_end(dc_tx *t, dc_piece *dst) {
    if (t->err) {
        free(t->out);
        free(t->oal);
        return t->err;
    }
    dc_piece r = *t->src;
    if (t->ident && t->olen == t->src->len &&
        (t->olen == 0 || memcmp(t->out, t->src->s, t->olen) == 0)) {
        free(t->out); /* unchanged */
        free(t->oal);
        *dst = r;
        return DC_OK;
    }
    if (t->ident) {
        free(t->oal);
        t->oal = NULL;
    }
    dc_ctx *c = t->c;
    if (c->norm_active) { /* the previous pass's buffers of this piece are garbage now */
        for (size_t i = c->norm_mark; i < c->nowned;) {
            if (c->owned[i] == (const void *)t->src->s || c->owned[i] == (const void *)t->src->al) {
                free(c->owned[i]);
                c->owned[i] = c->owned[--c->nowned];
            } else {
                i++;
            }
        }
    }
    dc_status st = dc_ctx_own(t->c, t->out);
    if (st) {
        free(t->oal);
        return st;
    }
    if ((st = dc_ctx_own(t->c, t->oal))) return st;
    r.s = t->out ? t->out : "";
    r.len = (uint32_t)t->olen;
    r.al = t->ident ? NULL : t->oal;
    *dst = r;
    return DC_OK;
}

dc_status dc_piece_materialize_bytelevel(dc_ctx *c, dc_piece *p) {
    if (!p->bytelevel) return DC_OK;
    dc_piece src = *p;
    src.bytelevel = 0;
    dc_tx t;
    dc_tx_begin(&t, c, &src);
    uint32_t i = 0;
    while (i < src.len) {
        uint32_t n = dc_u8_len((uint8_t)src.s[i]);
        for (uint32_t k = 0; k < n && i + k < src.len; k++)
            dc_tx_emit(&t, dc_bytelevel_cp((uint8_t)src.s[i + k]), k ? 1 : 0);
        i += n;
    }
    dc_status st = dc_tx_end(&t, p);
    p->bytelevel = 0;
    return st;
}

/* ---------- split ---------- */

dc_status dc_emit_piece(dc_ctx *c, const dc_piece *p) {
    if (p->len == 0) return DC_OK; /* the reference drops empty splits */
    if (c->sink_model) {
        if (!c->emit_bytelevel) return dc_tokenize_piece(c, p);
        dc_piece q = *p;
        q.bytelevel = p->token < 0;
        return dc_tokenize_piece(c, &q);
    }
    dc_status st = DC_GROW(c->tmp, c->cap_tmp, c->ntmp + 1);
    if (st) return st;
    c->tmp[c->ntmp] = *p;
    if (c->emit_bytelevel && p->token < 0) c->tmp[c->ntmp].bytelevel = 1;
    c->ntmp++;
    return DC_OK;
}

dc_status dc_split_piece(dc_ctx *c, const dc_piece *p, dc_match *m, size_t nm,
                         dc_split_behavior b) {
    dc_status st = DC_OK;
    size_t k = 0; /* merged ranges are compacted into m[0..k) */
    switch (b) {
    case DC_SPLIT_ISOLATED:
        for (size_t i = 0; i < nm; i++) m[i].is_match = false;
        k = nm;
        break;
    case DC_SPLIT_REMOVED:
        k = nm;
        break;
    case DC_SPLIT_CONTIGUOUS: {
        bool prev = false;
        for (size_t i = 0; i < nm; i++) {
            bool cur = m[i].is_match;
            if (cur == prev && k > 0) m[k - 1].end = m[i].end;
            else m[k++] = (dc_match){m[i].start, m[i].end, false};
            prev = cur;
        }
        break;
    }
    case DC_SPLIT_MERGED_PREV: {
        bool prev = false;
        for (size_t i = 0; i < nm; i++) {
            bool cur = m[i].is_match;
            if (cur && !prev && k > 0) m[k - 1].end = m[i].end;
            else m[k++] = (dc_match){m[i].start, m[i].end, false};
            prev = cur;
        }
        break;
    }
    case DC_SPLIT_MERGED_NEXT: {
        /* a right-to-left fold, written from the end of the array */
        bool prev = false;
        size_t w = nm;
        for (size_t i = nm; i-- > 0;) {
            bool cur = m[i].is_match;
            if (cur && !prev && w < nm) m[w].start = m[i].start;
            else m[--w] = (dc_match){m[i].start, m[i].end, false};
            prev = cur;
        }
        memmove(m, m + w, (nm - w) * sizeof *m);
        k = nm - w;
        break;
    }
    }
    for (size_t i = 0; i < k && !st; i++) {
        if (m[i].is_match) continue; /* removed delimiter */
        dc_piece q = dc_piece_slice(c, p, m[i].start, m[i].end);
        st = dc_emit_piece(c, &q);
    }
    return st;
}

/* Post-processors for a single sequence: BertProcessing, RobertaProcessing, TemplateProcessing,
 * ByteLevel (offset trimming) and Sequence. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/tok_internal.h"

size_t dc_post_added(const dc_post *p) {
    if (!p) return 0;
    switch (p->kind) {
    case DC_POST_BERT:
    case DC_POST_ROBERTA:
        return 2;
    case DC_POST_TEMPLATE: {
        size_t n = 0;
        for (size_t i = 0; i < p->nitems; i++)
            if (!p->items[i].is_seq) n += p->items[i].nids;
        return n;
    }
    case DC_POST_BYTELEVEL:
        return 0;
    case DC_POST_SEQUENCE: {
        size_t n = 0;
        for (size_t i = 0; i < p->nseq; i++) n += dc_post_added(&p->seq[i]);
        return n;
    }
    }
    return 0;
}

/* Reference byte_level::process_offsets, applied to code-point and byte offsets alike. */
static void trim_one(uint32_t *start, uint32_t *end, size_t i, uint32_t lead, uint32_t trail,
                     bool add_prefix_space) {
    if (lead) {
        bool is_first = i == 0 || *start == 0;
        if (is_first && add_prefix_space && lead == 1) lead = 0;
        uint32_t s = *start + lead;
        *start = s < *end ? s : *end;
    }
    if (trail && *end >= trail) {
        uint32_t e = *end - trail;
        *end = e > *start ? e : *start;
    }
}

static void trim_offsets(dc_ctx *c, bool add_prefix_space) {
    for (size_t i = 0; i < c->ntoks; i++) {
        dc_tok *t = &c->toks[i];
        if (!t->lead_ws && !t->trail_ws) continue;
        trim_one(&t->cstart, &t->cend, i, t->lead_ws, t->trail_ws, add_prefix_space);
        trim_one(&t->bstart, &t->bend, i, t->lead_ws, t->trail_ws, add_prefix_space);
    }
}

static dc_tok special_tok(uint32_t id, uint32_t type_id) {
    dc_tok t;
    memset(&t, 0, sizeof t);
    t.id = id;
    t.special = 1;
    t.type_id = type_id;
    return t;
}

/* Surrounds the tokens with `pre` and `post` special ids. */
static dc_status wrap(dc_ctx *c, const uint32_t *pre, size_t npre, const uint32_t *post,
                      size_t npost) {
    dc_status st = DC_GROW(c->toks, c->cap_toks, c->ntoks + npre + npost);
    if (st) return st;
    memmove(c->toks + npre, c->toks, c->ntoks * sizeof *c->toks);
    for (size_t i = 0; i < npre; i++) c->toks[i] = special_tok(pre[i], 0);
    c->ntoks += npre;
    for (size_t i = 0; i < npost; i++) c->toks[c->ntoks++] = special_tok(post[i], 0);
    return DC_OK;
}

static dc_status template_apply(dc_ctx *c, const dc_post *p) {
    size_t total = dc_post_added(p), nseq = 0;
    for (size_t i = 0; i < p->nitems; i++) nseq += p->items[i].is_seq;
    size_t cap = total + c->ntoks * (nseq ? nseq : 1) + 1;
    dc_tok *out = malloc(cap * sizeof *out);
    if (!out) return dc_fail(DC_ERR_OUT_OF_MEMORY, "tokenizer: cannot allocate the template output");
    size_t k = 0;
    for (size_t i = 0; i < p->nitems; i++) {
        const dc_tpl_item *it = &p->items[i];
        if (it->is_seq) {
            for (size_t j = 0; j < c->ntoks; j++) {
                out[k] = c->toks[j];
                out[k++].type_id = it->type_id;
            }
        } else {
            for (size_t j = 0; j < it->nids; j++) out[k++] = special_tok(it->ids[j], it->type_id);
        }
    }
    free(c->toks);
    c->toks = out;
    c->ntoks = k;
    c->cap_toks = cap;
    return DC_OK;
}

dc_status dc_post_process(dc_ctx *c, const dc_post *p, bool add_special) {
    switch (p->kind) {
    case DC_POST_BERT:
        return add_special ? wrap(c, &p->cls_id, 1, &p->sep_id, 1) : DC_OK;
    case DC_POST_ROBERTA:
        if (p->trim_offsets) trim_offsets(c, p->add_prefix_space);
        return add_special ? wrap(c, &p->cls_id, 1, &p->sep_id, 1) : DC_OK;
    case DC_POST_TEMPLATE:
        return add_special ? template_apply(c, p) : DC_OK;
    case DC_POST_BYTELEVEL:
        if (p->trim_offsets) trim_offsets(c, p->add_prefix_space);
        return DC_OK;
    case DC_POST_SEQUENCE:
        for (size_t i = 0; i < p->nseq; i++) {
            dc_status st = dc_post_process(c, &p->seq[i], add_special);
            if (st) return st;
        }
        return DC_OK;
    }
    return dc_fail(DC_ERR_INTERNAL, "tokenizer: bad post-processor kind %d", (int)p->kind);
}

void dc_post_free(dc_post *p) {
    if (!p) return;
    for (size_t i = 0; i < p->nitems; i++) free(p->items[i].ids);
    free(p->items);
    for (size_t i = 0; i < p->nseq; i++) dc_post_free(&p->seq[i]);
    free(p->seq);
    memset(p, 0, sizeof *p);
}

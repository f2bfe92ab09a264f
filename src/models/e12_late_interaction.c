/* E12 late interaction: colbert-ir/colbertv2.0 (BERT + linear 768 → 128, no bias).
 *
 * Query mode: tokenise truncated to query_len − 1 ([CLS] q [SEP]), insert [Q] ([unused0]) after
 * [CLS], pad with [MASK] to query_len (32); the [MASK] rows are computed but never attended to,
 * and every row is kept. Document mode: truncate to doc_len − 1, insert [D] ([unused1]) after
 * [CLS], drop the rows of punctuation tokens (Python's string.punctuation, each mapped through
 * the vocabulary). Rows: linear, then per-row L2 (eps 1e-12). MaxSim = Σ_q max_d q·d.
 *
 * The dc_model vector (128) is document mode for every input, so the same text embeds the
 * same way whatever its role (reference/methods.md §6.2): the mean of the kept rows,
 * renormalised. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "models/encoder_extras.h"
#include "models/encoder_model.h"
#include "models/model_backend.h"

#define COLBERT_QUERY_LEN 32u
#define COLBERT_DOC_LEN 300u

enum { MODE_QUERY = 1, MODE_DOC = 2 };

typedef struct colbert_head {
    dc_linear *proj;
    uint32_t dim;
    uint32_t q_id, d_id, mask_id;
    uint32_t *skip; /* sorted punctuation ids */
    uint32_t n_skip;
} colbert_head;

static void colbert_free(dc_encoder_model *em) {
    colbert_head *h = em->head;
    if (!h) return;
    if (h->proj) em->be->ops->linear_destroy(em->be, h->proj);
    free(h->skip);
    free(h);
    em->head = NULL;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static dc_status token_id(dc_encoder_model *em, const char *tok, uint32_t *out) {
    int64_t id = dc_tokenizer_token_to_id(em->tok, tok);
    if (id < 0) return dc_fail(DC_ERR_MODEL_LOAD, "%s: the vocabulary has no %s token", em->dir, tok);
    *out = (uint32_t)id;
    return DC_OK;
}

static dc_status colbert_load(dc_encoder_model *em, const dc_weights *w) {
    const uint32_t H = dc_bert_config_of(em->bert)->hidden;
    const uint32_t D = DC_DIM_LATE_INTERACTION;
    colbert_head *h = calloc(1, sizeof *h);
    if (!h) return dc_fail(DC_ERR_OUT_OF_MEMORY, "ColBERT head");
    em->head = h;
    h->dim = D;
    float *lw = NULL;
    dc_status st = dc_bert_tensor_f32(w, "", "linear.weight", 2, (uint64_t[]){D, H}, &lw);
    if (st == DC_OK) st = em->be->ops->linear_create(em->be, lw, NULL, D, H, DC_WEIGHTS_F32, &h->proj);
    free(lw);
    if (st != DC_OK) return st;
    if ((st = token_id(em, "[unused0]", &h->q_id)) || (st = token_id(em, "[unused1]", &h->d_id)) ||
        (st = token_id(em, "[MASK]", &h->mask_id)))
        return st;
    static const char punct[] = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
    h->skip = malloc(sizeof punct * sizeof *h->skip);
    if (!h->skip) return dc_fail(DC_ERR_OUT_OF_MEMORY, "skiplist");
    for (const char *p = punct; *p; p++) {
        char s[2] = {*p, 0};
        int64_t id = dc_tokenizer_token_to_id(em->tok, s);
        if (id >= 0) h->skip[h->n_skip++] = (uint32_t)id;
    }
    qsort(h->skip, h->n_skip, sizeof *h->skip, cmp_u32);
    em->head_bytes = em->be->ops->linear_bytes(h->proj) + h->n_skip * sizeof *h->skip;
    return DC_OK;
}

static bool skipped(const colbert_head *h, uint32_t id) {
    return bsearch(&id, h->skip, h->n_skip, sizeof id, cmp_u32) != NULL;
}

/* [CLS] x… [SEP] → [CLS] marker x… [SEP], then (query) [MASK] padding with mask 0. */
static dc_status colbert_tokenize_mode(dc_encoder_model *em, const dc_input *in, int mode,
                                       dc_enc_seq *seq) {
    colbert_head *h = em->head;
    uint32_t limit = mode == MODE_QUERY ? COLBERT_QUERY_LEN : em->max_len;
    if (limit < 3) limit = 3;
    dc_enc_seq raw;
    dc_status st = dc_encoder_tokenize_text(em, NULL, in->content, in->content_len, limit - 1, &raw);
    if (st != DC_OK) return st;
    uint32_t len = raw.len + 1;
    uint32_t total = mode == MODE_QUERY && len < COLBERT_QUERY_LEN ? COLBERT_QUERY_LEN : len;
    memset(seq, 0, sizeof *seq);
    seq->ids = malloc(total * sizeof *seq->ids);
    seq->mask = malloc(total);
    if (!seq->ids || !seq->mask) {
        dc_enc_seq_free(&raw);
        dc_enc_seq_free(seq);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "ColBERT tokens");
    }
    seq->ids[0] = raw.len ? raw.ids[0] : 0;
    seq->ids[1] = mode == MODE_QUERY ? h->q_id : h->d_id;
    for (uint32_t i = 1; i < raw.len; i++) seq->ids[i + 1] = raw.ids[i];
    memset(seq->mask, 1, len);
    for (uint32_t i = len; i < total; i++) {
        seq->ids[i] = h->mask_id;
        seq->mask[i] = 0;
    }
    seq->len = total;
    seq->tokens_used = len;
    seq->truncated = raw.truncated;
    seq->mode = mode;
    dc_enc_seq_free(&raw);
    return DC_OK;
}

static dc_status colbert_tokenize(dc_encoder_model *em, const dc_input *in, dc_enc_seq *seq) {
    return colbert_tokenize_mode(em, in, MODE_DOC, seq);
}

/* Projected, normalised rows; *kept = how many rows survive (document mode drops
 * punctuation). rows_out holds seq->len × dim. */
static dc_status colbert_rows(dc_encoder_model *em, const dc_enc_seq *seq, const float *hidden,
                              float *rows_out, uint32_t *kept) {
    colbert_head *h = em->head;
    const uint32_t D = h->dim;
    const uint32_t H = dc_bert_config_of(em->bert)->hidden;
    const size_t tbytes = (size_t)(seq->len ? seq->len : 1) * D * sizeof(float);
    float *tmp = malloc(tbytes);
    if (!tmp) return dc_fail(DC_ERR_OUT_OF_MEMORY, "ColBERT rows");
    /* the projection on the backend (hidden is a host copy); normalising and selecting the
     * rows on the host */
    dc_backend *be = em->be;
    void *d_in = NULL, *d_out = NULL;
    dc_status st = dc_be_in(be, hidden, (size_t)seq->len * H * sizeof(float), &d_in);
    if (st == DC_OK) st = dc_be_out(be, tmp, tbytes, &d_out);
    if (st == DC_OK) st = be->ops->linear_forward(be, h->proj, d_in, seq->len, d_out);
    if (st == DC_OK) st = dc_be_fetch(be, tmp, d_out, (size_t)seq->len * D * sizeof(float));
    dc_be_drop(be, d_in, hidden);
    dc_be_drop(be, d_out, tmp);
    if (st != DC_OK) {
        free(tmp);
        return st;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < seq->len; i++) {
        if (seq->mode == MODE_DOC && skipped(h, seq->ids[i])) continue;
        float *dst = rows_out + (size_t)k * D;
        memcpy(dst, tmp + (size_t)i * D, D * sizeof *dst);
        dc_l2_normalize_eps(dst, D, 1e-12);
        k++;
    }
    free(tmp);
    *kept = k;
    return DC_OK;
}

static dc_status colbert_finish(dc_encoder_model *em, const dc_input *in, const dc_enc_seq *seq,
                                const float *hidden, float *vec) {
    (void)in;
    colbert_head *h = em->head;
    const uint32_t D = h->dim;
    float *rows = malloc((size_t)(seq->len ? seq->len : 1) * D * sizeof *rows);
    if (!rows) return dc_fail(DC_ERR_OUT_OF_MEMORY, "ColBERT rows");
    uint32_t kept = 0;
    dc_status st = colbert_rows(em, seq, hidden, rows, &kept);
    if (st == DC_OK) {
        for (uint32_t d = 0; d < D; d++) {
            double s = 0;
            for (uint32_t r = 0; r < kept; r++) s += rows[(size_t)r * D + d];
            vec[d] = kept ? (float)(s / kept) : 0.0f;
        }
        dc_l2_normalize_eps(vec, D, 1e-12);
    }
    free(rows);
    return st;
}

static const dc_encoder_recipe e12_recipe = {
    .id = DC_MODEL_LATE_INTERACTION,
    .max_tokens = COLBERT_DOC_LEN,
    .read_st_files = false,
    .load_head = colbert_load,
    .free_head = colbert_free,
    .tokenize = colbert_tokenize,
    .finish = colbert_finish,
};

dc_status dc_e12_create(const dc_pretrained_options *opt, dc_model **out) {
    return dc_encoder_model_create(&e12_recipe, opt, out);
}

void dc_token_matrix_free(dc_token_matrix *t) {
    if (!t) return;
    free(t->data);
    memset(t, 0, sizeof *t);
}

typedef struct tm_ctx {
    dc_encoder_model *em;
    const dc_enc_seq *seq;
    dc_token_matrix *out;
} tm_ctx;

static dc_status tm_one(void *p, size_t i, const float *hidden) {
    (void)i;
    tm_ctx *c = p;
    colbert_head *h = c->em->head;
    c->out->data = malloc((size_t)(c->seq->len ? c->seq->len : 1) * h->dim * sizeof(float));
    if (!c->out->data) return dc_fail(DC_ERR_OUT_OF_MEMORY, "token matrix");
    c->out->dim = h->dim;
    return colbert_rows(c->em, c->seq, hidden, c->out->data, &c->out->n_tokens);
}

dc_status dc_e12_rows(dc_encoder_model *em, const dc_enc_seq *seq, const float *hidden,
                      dc_token_matrix *out) {
    tm_ctx c = {em, seq, out};
    dc_status st = tm_one(&c, 0, hidden);
    if (st != DC_OK) dc_token_matrix_free(out);
    return st;
}

void dc_e12_requests(dc_encoder_model *em, const dc_input *in, bool want_rows,
                     dc_token_request req[2], uint32_t *n) {
    colbert_head *h = em->head;
    /* as colbert_tokenize_mode: [CLS] x… [SEP] within limit − 1, the marker makes limit */
    dc_token_request_init(&req[0], DC_TOK_FAMILY_BERT_UNCASED);
    req[0].max_length = em->max_len < 3 ? 3 : em->max_len;
    req[0].marker_id = h->d_id;
    *n = 1;
    if (want_rows && in->role == DC_ROLE_QUERY) {
        dc_token_request_init(&req[1], DC_TOK_FAMILY_BERT_UNCASED);
        req[1].max_length = COLBERT_QUERY_LEN;
        req[1].marker_id = h->q_id;
        req[1].pad_to = COLBERT_QUERY_LEN;
        req[1].pad_id = h->mask_id;
        *n = 2;
    }
}

dc_status dc_e12_seq_from_encoding(const dc_encoding *enc, bool query, dc_enc_seq *seq) {
    memset(seq, 0, sizeof *seq);
    size_t len = enc->len;
    seq->ids = malloc((len ? len : 1) * sizeof *seq->ids);
    seq->mask = malloc(len ? len : 1);
    if (!seq->ids || !seq->mask) {
        dc_enc_seq_free(seq);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "ColBERT tokens");
    }
    uint32_t used = 0;
    for (size_t i = 0; i < len; i++) {
        seq->ids[i] = enc->ids[i];
        seq->mask[i] = enc->attention_mask ? enc->attention_mask[i] != 0 : 1;
        used += seq->mask[i];
    }
    seq->len = (uint32_t)len;
    seq->tokens_used = used;
    seq->truncated = enc->truncated;
    seq->mode = query ? MODE_QUERY : MODE_DOC;
    return DC_OK;
}

dc_status dc_e12_query_seq(dc_encoder_model *em, const dc_input *in, dc_enc_seq *seq) {
    return colbert_tokenize_mode(em, in, MODE_QUERY, seq);
}

dc_status dc_colbert_encode(dc_model *m, const dc_input *in, dc_colbert_mode mode,
                            dc_token_matrix *out) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "ColBERT: NULL output");
    memset(out, 0, sizeof *out);
    if (!m || !m->loaded || m->info->id != DC_MODEL_LATE_INTERACTION)
        return dc_fail(DC_ERR_NOT_INITIALIZED, "ColBERT: not a loaded E12 model");
    if (!in || (in->content_len && !in->content))
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "ColBERT: NULL input");
    dc_encoder_model *em = dc_encoder_model_of(m);
    int md = mode == DC_COLBERT_QUERY      ? MODE_QUERY
             : mode == DC_COLBERT_DOCUMENT ? MODE_DOC
             : in->role == DC_ROLE_QUERY   ? MODE_QUERY
                                           : MODE_DOC;
    dc_enc_seq seq;
    dc_status st = colbert_tokenize_mode(em, in, md, &seq);
    if (st != DC_OK) return st;
    tm_ctx c = {em, &seq, out};
    st = dc_encoder_run(em, &seq, 1, tm_one, &c);
    dc_enc_seq_free(&seq);
    if (st != DC_OK) dc_token_matrix_free(out);
    return st;
}

double dc_colbert_maxsim(const dc_token_matrix *q, const dc_token_matrix *d) {
    if (!q || !d || q->dim != d->dim || !d->n_tokens) return 0.0;
    double total = 0;
    for (uint32_t i = 0; i < q->n_tokens; i++) {
        double best = -INFINITY;
        for (uint32_t j = 0; j < d->n_tokens; j++) {
            double s = 0;
            for (uint32_t k = 0; k < q->dim; k++)
                s += (double)q->data[(size_t)i * q->dim + k] * d->data[(size_t)j * d->dim + k];
            if (s > best) best = s;
        }
        total += best;
    }
    return total;
}

/* E6 sparse: naver/splade-cocondenser-ensembledistil (BertForMaskedLM + SPLADE max pooling).
 *
 * MLM head: t = LN(gelu(h·Wtᵀ + bt)), logits = t·Eᵀ + b, with E the decoder weight or, when a
 * safetensors conversion dropped it, the tied word embeddings; b = cls.predictions.bias (or
 * the decoder's). SPLADE: w[v] = max over attended rows of log(1 + relu(logits[i, v])),
 * [CLS]/[SEP] included. The dc_model vector is w projected to 1536 by the seeded sparse random
 * projection (e6_projection.c) and L2-normalised. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "models/encoder_model.h"
#include "models/e6_projection.h"
#include "models/encoder_extras.h"
#include "models/model_backend.h"

typedef struct splade_head {
    dc_linear *transform, *decoder;
    float *ln_g, *ln_b;
    dc_sparse_projection *proj;
    uint32_t vocab;
} splade_head;

static void splade_free(dc_encoder_model *em) {
    splade_head *h = em->head;
    if (!h) return;
    if (h->transform) em->be->ops->linear_destroy(em->be, h->transform);
    if (h->decoder) em->be->ops->linear_destroy(em->be, h->decoder);
    dc_be_param_free(em->be, h->ln_g);
    dc_be_param_free(em->be, h->ln_b);
    dc_sparse_projection_free(h->proj);
    free(h);
    em->head = NULL;
}

static dc_status splade_load(dc_encoder_model *em, const dc_weights *w) {
    const dc_bert_config *c = dc_bert_config_of(em->bert);
    const uint32_t H = c->hidden, V = c->vocab_size;
    splade_head *h = calloc(1, sizeof *h);
    if (!h) return dc_fail(DC_ERR_OUT_OF_MEMORY, "SPLADE head");
    em->head = h;
    h->vocab = V;
    float *wt = NULL, *bt = NULL, *dec = NULL, *bias = NULL, *ln_g = NULL, *ln_b = NULL;
    dc_status st;
    if ((st = dc_bert_tensor_f32(w, "", "cls.predictions.transform.dense.weight", 2,
                                 (uint64_t[]){H, H}, &wt)) ||
        (st = dc_bert_tensor_f32(w, "", "cls.predictions.transform.dense.bias", 1,
                                 (uint64_t[]){H}, &bt)) ||
        (st = dc_bert_tensor_f32(w, "", "cls.predictions.transform.LayerNorm.weight", 1,
                                 (uint64_t[]){H}, &ln_g)) ||
        (st = dc_bert_tensor_f32(w, "", "cls.predictions.transform.LayerNorm.bias", 1,
                                 (uint64_t[]){H}, &ln_b)) ||
        (st = dc_bert_tensor_f32_opt(w, "", "cls.predictions.decoder.weight", 2,
                                     (uint64_t[]){V, H}, &dec)) ||
        (st = dc_bert_tensor_f32_opt(w, "", "cls.predictions.bias", 1, (uint64_t[]){V}, &bias)))
        goto done;
    if (!bias &&
        (st = dc_bert_tensor_f32(w, "", "cls.predictions.decoder.bias", 1, (uint64_t[]){V}, &bias)))
        goto done;
    /* tied decoder on a device: the encoder's table is not on the host any more */
    if (!dec && !dc_bert_word_embeddings(em->bert) &&
        (st = dc_bert_tensor_f32(w, dc_bert_prefix(em->bert), "embeddings.word_embeddings.weight",
                                 2, (uint64_t[]){V, H}, &dec)))
        goto done;
    /* γ/β into backend memory; h holds them only once moved (splade_free frees by kind) */
    if ((st = dc_be_param(em->be, &ln_g, H))) goto done;
    h->ln_g = ln_g;
    ln_g = NULL;
    if ((st = dc_be_param(em->be, &ln_b, H))) goto done;
    h->ln_b = ln_b;
    ln_b = NULL;
    if ((st = em->be->ops->linear_create(em->be, wt, bt, H, H, DC_WEIGHTS_F32, &h->transform)))
        goto done;
    /* tied decoder: the word embedding matrix [V, H] is already in nn.Linear layout */
    if ((st = em->be->ops->linear_create(em->be, dec ? dec : dc_bert_word_embeddings(em->bert),
                                         bias, V, H, DC_WEIGHTS_F32, &h->decoder)))
        goto done;
    if ((st = dc_sparse_projection_create(DC_SPARSE_PROJECTION_SEED, V, DC_DIM_SPARSE_PROJECTED,
                                          DC_SPARSE_PROJECTION_NNZ, &h->proj)))
        goto done;
    em->head_bytes = em->be->ops->linear_bytes(h->transform) +
                     em->be->ops->linear_bytes(h->decoder) + 2 * (size_t)H * sizeof(float) +
                     dc_sparse_projection_bytes(h->proj);
done:
    free(wt);
    free(bt);
    free(dec);
    free(bias);
    free(ln_g); /* host arrays not moved (a failure before the move) */
    free(ln_b);
    return st;
}

/* SPLADE weights of one sequence into w[V]: max over its attended rows of log(1 + relu(logit)),
 * computed as log1p(relu(max logit)) (log1p is increasing). The MLM head and the column max run
 * on the backend, so only V floats come back; a sequence with masked rows (none today: E6 builds
 * no mask) takes the logits to the host and skips those rows there. */
static dc_status splade_weights(dc_encoder_model *em, const dc_enc_seq *seq, const float *rows,
                                float *w) {
    splade_head *h = em->head;
    dc_backend *be = em->be;
    const dc_bert_config *c = dc_bert_config_of(em->bert);
    const uint32_t H = c->hidden, V = h->vocab, L = seq->len;
    memset(w, 0, (size_t)V * sizeof *w);
    if (!L) return DC_OK;
    const bool on_backend = !seq->mask && be->ops->col_max;
    const size_t lbytes = (size_t)L * V * sizeof(float), wbytes = (size_t)V * sizeof(float);
    float *logits = on_backend ? NULL : malloc(lbytes);
    void *d_rows = NULL, *d_t = NULL, *d_logits = NULL, *d_w = NULL;
    dc_status st = DC_OK;
    if (!on_backend && !logits) {
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "SPLADE logits for %u tokens", L);
        goto done;
    }
    if ((st = dc_be_in(be, rows, (size_t)L * H * sizeof(float), &d_rows)) ||
        (st = be->ops->alloc(be, (size_t)L * H * sizeof(float), &d_t)))
        goto done;
    if (on_backend) {
        st = be->ops->alloc(be, lbytes, &d_logits);
        if (!st) st = dc_be_out(be, w, wbytes, &d_w);
    } else {
        st = dc_be_out(be, logits, lbytes, &d_logits);
    }
    if (st) goto done;
    float *t = d_t;
    if ((st = be->ops->linear_forward(be, h->transform, d_rows, L, t))) goto done;
    be->ops->activation(be, c->act, t, (size_t)L * H);
    be->ops->layernorm(be, t, NULL, h->ln_g, h->ln_b, c->eps, L, H, t);
    if ((st = be->ops->linear_forward(be, h->decoder, t, L, d_logits))) goto done;
    if (on_backend) {
        be->ops->col_max(be, d_logits, L, V, d_w);
        if ((st = dc_be_fetch(be, w, d_w, wbytes))) goto done;
    } else {
        if ((st = dc_be_fetch(be, logits, d_logits, lbytes))) goto done;
        for (uint32_t i = 0; i < L; i++) {
            if (!seq->mask[i]) continue;
            const float *li = logits + (size_t)i * V;
            for (uint32_t v = 0; v < V; v++) w[v] = li[v] > w[v] ? li[v] : w[v];
        }
    }
    for (uint32_t v = 0; v < V; v++) w[v] = w[v] > 0.0f ? log1pf(w[v]) : 0.0f;
done:
    dc_be_drop(be, d_rows, rows);
    if (d_t) be->ops->release(be, d_t);
    if (on_backend) {
        if (d_logits) be->ops->release(be, d_logits);
        dc_be_drop(be, d_w, w);
    } else {
        dc_be_drop(be, d_logits, logits);
    }
    free(logits);
    if (st != DC_OK) memset(w, 0, wbytes);
    return st;
}

static dc_status sparse_from_weights(const float *w, uint32_t vocab, dc_sparse_vector *o);

dc_status dc_e6_finish_ex(dc_encoder_model *em, const dc_enc_seq *seq, const float *rows,
                          float *vec, dc_sparse_vector *sp) {
    splade_head *h = em->head;
    float *w = malloc((size_t)h->vocab * sizeof *w);
    if (!w) return dc_fail(DC_ERR_OUT_OF_MEMORY, "SPLADE weights");
    dc_status st = splade_weights(em, seq, rows, w);
    if (st == DC_OK) {
        dc_sparse_projection_apply_dense(h->proj, w, vec);
        double s = 0;
        for (uint32_t i = 0; i < DC_DIM_SPARSE_PROJECTED; i++) s += (double)vec[i] * vec[i];
        if (s > 0) dc_l2_normalize_eps(vec, DC_DIM_SPARSE_PROJECTED, 1e-12);
        if (sp) st = sparse_from_weights(w, h->vocab, sp);
    }
    free(w);
    return st;
}

static dc_status splade_finish(dc_encoder_model *em, const dc_input *in, const dc_enc_seq *seq,
                               const float *rows, float *vec) {
    (void)in;
    return dc_e6_finish_ex(em, seq, rows, vec, NULL);
}

static const dc_encoder_recipe e6_recipe = {
    .id = DC_MODEL_SPARSE,
    .max_tokens = 512,
    .read_st_files = false,
    .load_head = splade_load,
    .free_head = splade_free,
    .finish = splade_finish,
};

dc_status dc_e6_create(const dc_pretrained_options *opt, dc_model **out) {
    return dc_encoder_model_create(&e6_recipe, opt, out);
}

void dc_sparse_vector_free(dc_sparse_vector *v) {
    if (!v) return;
    free(v->indices);
    free(v->values);
    memset(v, 0, sizeof *v);
}

typedef struct sparse_ctx {
    dc_encoder_model *em;
    const dc_enc_seq *seqs;
    dc_sparse_vector *out;
    float *w;
} sparse_ctx;

/* The positive weights, indices ascending. */
static dc_status sparse_from_weights(const float *w, uint32_t vocab, dc_sparse_vector *o) {
    uint32_t nnz = 0;
    for (uint32_t v = 0; v < vocab; v++) nnz += w[v] > 0.0f;
    o->vocab_size = vocab;
    o->indices = malloc((nnz ? nnz : 1) * sizeof *o->indices);
    o->values = malloc((nnz ? nnz : 1) * sizeof *o->values);
    if (!o->indices || !o->values) return dc_fail(DC_ERR_OUT_OF_MEMORY, "sparse vector");
    for (uint32_t v = 0; v < vocab; v++)
        if (w[v] > 0.0f) {
            o->indices[o->nnz] = v;
            o->values[o->nnz++] = w[v];
        }
    return DC_OK;
}

static dc_status sparse_one(void *p, size_t i, const float *rows) {
    sparse_ctx *c = p;
    splade_head *h = c->em->head;
    dc_status st = splade_weights(c->em, &c->seqs[i], rows, c->w);
    if (st != DC_OK) return st;
    return sparse_from_weights(c->w, h->vocab, &c->out[i]);
}

dc_status dc_splade_encode(dc_model *m, const dc_input *inputs, size_t n, dc_sparse_vector *out) {
    if (!m || !m->loaded || m->info->id != DC_MODEL_SPARSE)
        return dc_fail(DC_ERR_NOT_INITIALIZED, "SPLADE: not a loaded E6 model");
    dc_encoder_model *em = dc_encoder_model_of(m);
    if (n) memset(out, 0, n * sizeof *out);
    dc_enc_seq *seqs = NULL;
    dc_status st = dc_encoder_tokenize_all(em, inputs, n, &seqs);
    if (st != DC_OK) return st;
    splade_head *h = em->head;
    sparse_ctx c = {em, seqs, out, malloc((size_t)h->vocab * sizeof(float))};
    if (!c.w) st = dc_fail(DC_ERR_OUT_OF_MEMORY, "SPLADE weights");
    else st = dc_encoder_run(em, seqs, n, sparse_one, &c);
    free(c.w);
    for (size_t i = 0; i < n; i++) dc_enc_seq_free(&seqs[i]);
    free(seqs);
    if (st != DC_OK)
        for (size_t i = 0; i < n; i++) dc_sparse_vector_free(&out[i]);
    return st;
}

/* E5 causal: allenai/longformer-base-4096 (Longformer, 768-d).
 *
 * The checkpoint ships no embedding recipe, so it is pinned here (reference/models.md, trap 3):
 * global attention on <s> (as LongformerForSequenceClassification sets it; LongformerModel
 * itself sets none), every other token a sliding window of attention_window/2 on each side
 * per layer, up to 4096 tokens (longer inputs are truncated and flagged), then the mean of the
 * last hidden states over all real tokens (<s> and </s> included, as sentence-transformers'
 * mean pooling does) and L2. The reference pads to a multiple of the window for its chunked
 * kernel; the banded kernel here needs no padding (padded keys never count). */
#include <stdlib.h>

#include "core/error.h"
#include "models/encoder_model.h"

static dc_status e5_load(dc_encoder_model *em, const dc_weights *w) {
    (void)w;
    const dc_bert_config *c = dc_bert_config_of(em->bert);
    if (c->kind != DC_BERT_KIND_LONGFORMER)
        return dc_fail(DC_ERR_MODEL_LOAD,
                       "%s: E5 needs a Longformer checkpoint; config.json says \"%s\"", em->dir,
                       c->model_type);
    if (c->hidden != em->info->dim)
        return dc_fail(DC_ERR_INVALID_DIMENSION, "%s: hidden_size %u; E5 needs %u", em->dir,
                       c->hidden, em->info->dim);
    return DC_OK;
}

static dc_status e5_tokenize(dc_encoder_model *em, const dc_input *in, dc_enc_seq *seq) {
    dc_status st =
        dc_encoder_tokenize_text(em, NULL, in->content, in->content_len, em->max_len, seq);
    if (st != DC_OK) return st;
    seq->global = calloc(seq->len ? seq->len : 1, 1);
    if (!seq->global) {
        dc_enc_seq_free(seq);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "global attention mask");
    }
    if (seq->len) seq->global[0] = 1; /* <s> */
    return DC_OK;
}

static dc_status e5_finish(dc_encoder_model *em, const dc_input *in, const dc_enc_seq *seq,
                           const float *rows, float *vec) {
    (void)in;
    const uint32_t H = dc_bert_config_of(em->bert)->hidden;
    for (uint32_t d = 0; d < H; d++) {
        double s = 0;
        for (uint32_t r = 0; r < seq->len; r++) s += rows[(size_t)r * H + d];
        vec[d] = seq->len ? (float)(s / seq->len) : 0.0f;
    }
    if (em->normalize) dc_l2_normalize_eps(vec, H, 1e-12);
    return DC_OK;
}

static const dc_encoder_recipe e5_recipe = {
    .id = DC_MODEL_CAUSAL,
    .max_tokens = 4096,
    .normalize = true,
    .read_st_files = false,
    .load_head = e5_load,
    .tokenize = e5_tokenize,
    .finish = e5_finish,
};

dc_status dc_e5_create(const dc_pretrained_options *opt, dc_model **out) {
    return dc_encoder_model_create(&e5_recipe, opt, out);
}

/* E7 code: microsoft/codebert-base (RoBERTa, 768-d).
 *
 * CodeBERT ships no embedding recipe (no modules.json) and its pooler is randomly initialised
 * for downstream tasks, so the recipe is pinned here: the RoBERTa encoder (positions from
 * pad_token_id + 1, eps 1e-5, one token type), the mean of the last hidden states over the
 * non-special tokens (everything between <s> and </s>), then L2. Code and text are embedded
 * alike; a code input's language tag is recorded by the caller, it does not change the vector
 * (CodeBERT saw no language markers in pre-training). 512 tokens including <s> and </s>. */
#include <stdlib.h>

#include "core/error.h"
#include "models/encoder_model.h"

typedef struct e7_head {
    int64_t bos, eos;
} e7_head;

static dc_status e7_load(dc_encoder_model *em, const dc_weights *w) {
    (void)w;
    const dc_bert_config *c = dc_bert_config_of(em->bert);
    if (c->kind != DC_BERT_KIND_ROBERTA)
        return dc_fail(DC_ERR_MODEL_LOAD,
                       "%s: E7 needs a RoBERTa checkpoint; config.json says \"%s\"", em->dir,
                       c->model_type);
    if (c->hidden != em->info->dim)
        return dc_fail(DC_ERR_INVALID_DIMENSION, "%s: hidden_size %u; E7 needs %u", em->dir,
                       c->hidden, em->info->dim);
    e7_head *h = calloc(1, sizeof *h);
    if (!h) return dc_fail(DC_ERR_OUT_OF_MEMORY, "E7 head");
    h->bos = dc_tokenizer_token_to_id(em->tok, "<s>");
    h->eos = dc_tokenizer_token_to_id(em->tok, "</s>");
    em->head = h;
    em->head_bytes = sizeof *h;
    return DC_OK;
}

static void e7_free(dc_encoder_model *em) {
    free(em->head);
    em->head = NULL;
}

/* Mean over the rows between the post-processor's <s> and </s>; an input with no content
 * token ("" → <s></s>) falls back to the mean over both. */
static dc_status e7_finish(dc_encoder_model *em, const dc_input *in, const dc_enc_seq *seq,
                           const float *rows, float *vec) {
    (void)in;
    const e7_head *h = em->head;
    const uint32_t H = dc_bert_config_of(em->bert)->hidden;
    uint32_t lo = 0, hi = seq->len;
    if (hi > lo && (int64_t)seq->ids[lo] == h->bos) lo++;
    if (hi > lo && (int64_t)seq->ids[hi - 1] == h->eos) hi--;
    if (hi == lo) {
        lo = 0;
        hi = seq->len;
    }
    for (uint32_t d = 0; d < H; d++) {
        double s = 0;
        for (uint32_t r = lo; r < hi; r++) s += rows[(size_t)r * H + d];
        vec[d] = hi > lo ? (float)(s / (hi - lo)) : 0.0f;
    }
    if (em->normalize) dc_l2_normalize_eps(vec, H, 1e-12);
    return DC_OK;
}

static const dc_encoder_recipe e7_recipe = {
    .id = DC_MODEL_CODE,
    .max_tokens = 512,
    .normalize = true,
    .read_st_files = false,
    .load_head = e7_load,
    .free_head = e7_free,
    .finish = e7_finish,
};

dc_status dc_e7_create(const dc_pretrained_options *opt, dc_model **out) {
    return dc_encoder_model_create(&e7_recipe, opt, out);
}

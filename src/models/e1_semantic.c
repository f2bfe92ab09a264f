/* E1 semantic: intfloat/e5-large-v2 (BERT-large, 1024-d).
 * "query: " or "passage: " is prepended by input role (passage by default), then mean pooling
 * and L2 normalisation as its modules.json says (mean + L2 when the folder has no
 * sentence-transformers files), 512 tokens. */
#include "models/encoder_model.h"

static const char *e1_prefix(const dc_input *in) {
    return in->role == DC_ROLE_QUERY ? "query: " : "passage: ";
}

static dc_status e1_finish(dc_encoder_model *em, const dc_input *in, const dc_enc_seq *seq,
                           const float *rows, float *vec) {
    (void)in;
    const uint32_t H = dc_bert_config_of(em->bert)->hidden;
    dc_pool(&em->st.pooling, rows, seq->len, H, seq->mask, vec);
    /* e5's model card normalises whether or not a Normalize module is listed */
    if (em->normalize) dc_l2_normalize_eps(vec, em->info->dim, 1e-12);
    return DC_OK;
}

static const dc_encoder_recipe e1_recipe = {
    .id = DC_MODEL_SEMANTIC,
    .max_tokens = 512,
    .normalize = true,
    .read_st_files = true,
    .prefix = e1_prefix,
    .finish = e1_finish,
};

dc_status dc_e1_create(const dc_pretrained_options *opt, dc_model **out) {
    return dc_encoder_model_create(&e1_recipe, opt, out);
}

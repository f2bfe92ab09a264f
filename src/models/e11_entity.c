/* E11 entity: sentence-transformers/all-MiniLM-L6-v2 (BERT 6L, 384-d).
 * Recipe from the folder: Transformer → mean Pooling → Normalize, max_seq_length 256. */
#include "models/encoder_model.h"

static const dc_encoder_recipe e11_recipe = {
    .id = DC_MODEL_ENTITY,
    .max_tokens = 256,
    .read_st_files = true,
};

dc_status dc_e11_create(const dc_pretrained_options *opt, dc_model **out) {
    return dc_encoder_model_create(&e11_recipe, opt, out);
}

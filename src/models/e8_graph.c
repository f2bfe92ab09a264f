/* E8 graph: sentence-transformers/paraphrase-MiniLM-L6-v2 (BERT 6L, 384-d).
 * Recipe from the folder: Transformer → mean Pooling, no Normalize module (the vector is
 * block-normalised only inside the concatenation), max_seq_length 128. */
#include "models/encoder_model.h"

static const dc_encoder_recipe e8_recipe = {
    .id = DC_MODEL_GRAPH,
    .max_tokens = 128,
    .read_st_files = true,
};

dc_status dc_e8_create(const dc_pretrained_options *opt, dc_model **out) {
    return dc_encoder_model_create(&e8_recipe, opt, out);
}

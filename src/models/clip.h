/* CLIP (transformers' CLIPModel), fp32, on a dc_backend: the text tower (token + position
 * embeddings, pre-LayerNorm blocks under a causal mask, final LayerNorm, the row of the first
 * end-of-text token, text_projection) and the vision tower (14×14 patches as one matrix
 * product, class token, positions, pre_layrnorm, pre-LayerNorm blocks, post_layernorm on the
 * class token, visual_projection). Both return the unnormalised projected features, as
 * get_text_features / get_image_features do.
 *
 * Loads config.json (model_type "clip", text_config / vision_config, missing keys take
 * CLIPTextConfig / CLIPVisionConfig defaults) and the weights by their HF names; errors name
 * the file, the field or the tensor. */
#ifndef DC_MODELS_CLIP_H
#define DC_MODELS_CLIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dodeca/status.h"
#include "io/weights.h"
#include "tensor/backend.h"

typedef struct dc_clip_tower_config {
    uint32_t hidden, layers, heads, intermediate;
    float eps;
    dc_activation act;
} dc_clip_tower_config;

typedef struct dc_clip_config {
    dc_clip_tower_config text, vision;
    uint32_t vocab_size;
    uint32_t max_position; /* text positions (77) */
    uint32_t eos_token_id; /* 2: the legacy rule, pool at argmax(ids); else the first eos */
    uint32_t image_size, patch_size, num_channels;
    uint32_t projection_dim;
    /* Not from config.json: the format of the tower layers' linear weights (the projections
     * and the patch embedding stay f32); set by the caller, F32 after parsing. */
    dc_weight_format weights;
    /* Not from config.json: true makes the host read the linears' weights even where the
     * backend could read them from the file itself (gpu.direct_weights = false). */
    bool host_weights;
} dc_clip_config;

dc_status dc_clip_config_read(const char *path, dc_clip_config *out);
dc_status dc_clip_config_parse(const char *json, size_t len, const char *origin,
                               dc_clip_config *out);

typedef struct dc_clip dc_clip;

/* Builds both towers (everything copied; the weights may be closed afterwards). The backend
 * is borrowed. */
dc_status dc_clip_create(const dc_weights *w, const dc_clip_config *cfg, dc_backend *be,
                         dc_clip **out);
void dc_clip_destroy(dc_clip *m);
const dc_clip_config *dc_clip_config_of(const dc_clip *m);
/* Whether forwards may be recorded as graphs; text batches then run padded to their bucket
 * (models/encoder_graphs.h). */
bool dc_clip_graphs_on(const dc_clip *m);
size_t dc_clip_memory_bytes(const dc_clip *m);

/* Text features of n packed sequences (sequence s is ids[start[s] .. start[s+1]), each at most
 * max_position ids, at least one) into out[n × projection_dim]. */
dc_status dc_clip_text_features(dc_clip *m, uint32_t n, const uint32_t *start, const uint32_t *ids,
                                float *out);
/* Image features of n images, each num_channels × image_size × image_size floats
 * (channel-major, already normalised), into out[n × projection_dim]. */
dc_status dc_clip_image_features(dc_clip *m, uint32_t n, const float *pixels, float *out);

#endif

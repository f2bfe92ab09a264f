/* sentence-transformers model folders and the pooling that turns token rows into one vector.
 *
 * modules.json (module types matched on their last component, old and new spellings),
 * sentence_bert_config.json (max_seq_length) and <pooling>/config.json (the mode flags; keys
 * missing from old files default to false). Pooling follows sentence_transformers.models.
 * Pooling: several true modes are concatenated in the order cls, max, mean, mean_sqrt_len,
 * weightedmean, lasttoken; mean divides by max(count, 1e-9); Normalize is x / max(‖x‖, 1e-12). */
#ifndef DC_MODELS_POOLING_H
#define DC_MODELS_POOLING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dodeca/status.h"

typedef struct dc_pooling_config {
    uint32_t word_embedding_dimension; /* 0 when the file does not say */
    bool cls, max, mean, mean_sqrt_len, weightedmean, lasttoken;
    bool include_prompt;
} dc_pooling_config;

typedef struct dc_st_config {
    bool has_modules;        /* modules.json present */
    bool normalize;          /* a Normalize module follows pooling */
    uint32_t max_seq_length; /* 0 when not given */
    bool do_lower_case;
    dc_pooling_config pooling; /* mean only when there is no modules.json */
} dc_st_config;

/* Reads the sentence-transformers files of `dir`. A Dense or other unknown module, or a
 * malformed file, is DC_ERR_MODEL_LOAD naming the file and field. */
dc_status dc_st_config_read(const char *dir, dc_st_config *out);
dc_status dc_pooling_config_parse(const char *json, size_t len, const char *origin,
                                  dc_pooling_config *out);

/* Width of the pooled vector for hidden size `hidden`. */
uint32_t dc_pooling_dim(const dc_pooling_config *p, uint32_t hidden);

/* Pools n rows of `dim` floats; mask (NULL = all ones) selects the rows that count. Writes
 * dc_pooling_dim floats. */
void dc_pool(const dc_pooling_config *p, const float *rows, uint32_t n, uint32_t dim,
             const uint8_t *mask, float *out);

/* x / max(‖x‖₂, eps), the norm accumulated in double. */
void dc_l2_normalize_eps(float *v, size_t n, double eps);

#endif

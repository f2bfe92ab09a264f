/* dodeca — the model interface (seed F09) and model factories (seed F10).
 *
 * A dc_model is one of the twelve embedders behind a small vtable. The dc_model_* wrappers
 * enforce the rules every implementation shares (load before use, accepted input types, valid
 * inputs, output dimension), so implementations only do the work. */
#ifndef DODECA_MODEL_H
#define DODECA_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#include "dodeca/config.h"
#include "dodeca/status.h"
#include "dodeca/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dc_model dc_model;

typedef struct dc_model_vtable {
    /* Reads weights and prepares kernels. Called only when not loaded. */
    dc_status (*load)(dc_model *m);
    /* Releases what load acquired. Called only when loaded. */
    dc_status (*unload)(dc_model *m);
    /* Embeds n validated inputs the model accepts into out[0..n) (each initialised by the
     * implementation with dc_model_embedding_init). On failure the implementation frees what it
     * wrote. */
    dc_status (*embed_batch)(dc_model *m, const dc_input *inputs, size_t n,
                             dc_model_embedding *out);
    /* Resident bytes now (0 when unloaded). */
    size_t (*memory_usage)(const dc_model *m);
    /* Frees the implementation (unload has already run if it was loaded). */
    void (*destroy)(dc_model *m);
} dc_model_vtable;

struct dc_model {
    const dc_model_vtable *vt;
    const dc_model_info *info; /* dimension, max tokens, accepted inputs */
    bool loaded;
    void *impl;                /* implementation state */
};

/* Builds the common part of a model; implementations call this from their constructor. */
dc_status dc_model_init(dc_model *m, dc_model_id id, const dc_model_vtable *vt, void *impl);

dc_status dc_model_load(dc_model *m);   /* no-op when already loaded */
dc_status dc_model_unload(dc_model *m); /* no-op when not loaded */
bool dc_model_is_loaded(const dc_model *m);
dc_model_id dc_model_id_of(const dc_model *m);
uint32_t dc_model_dimension(const dc_model *m);
uint32_t dc_model_max_tokens(const dc_model *m);
bool dc_model_supports(const dc_model *m, dc_input_type type);
size_t dc_model_memory_usage(const dc_model *m);

/* Embeds a batch. Errors: DC_ERR_NOT_INITIALIZED before load; DC_ERR_UNSUPPORTED_MODALITY or
 * any dc_input_validate failure naming the offending item index (nothing embedded then);
 * DC_ERR_INVALID_DIMENSION if the implementation returned a wrong width (a bug, never silent).
 * On failure out[] holds no allocations. */
dc_status dc_model_embed_batch(dc_model *m, const dc_input *inputs, size_t n,
                               dc_model_embedding *out);
dc_status dc_model_embed(dc_model *m, const dc_input *input, dc_model_embedding *out);

/* Unloads if needed, then frees the model. NULL is a no-op. */
void dc_model_destroy(dc_model *m);

/* A factory creates unloaded models from configuration (seed F10). */
typedef struct dc_model_factory {
    void *ctx;
    uint32_t supported_mask; /* bit i: can create model i */
    dc_status (*create)(void *ctx, dc_model_id id, const struct dc_model_config *cfg,
                        dc_model **out);
    /* Conservative estimate of the bytes the model needs once loaded. */
    uint64_t (*estimate_memory)(void *ctx, dc_model_id id);
} dc_model_factory;

/* Checks support, then calls the factory. DC_ERR_MODEL_NOT_FOUND for unsupported ids. */
dc_status dc_model_factory_create(const dc_model_factory *f, dc_model_id id,
                                  const struct dc_model_config *cfg, dc_model **out);
uint64_t dc_model_factory_estimate_memory(const dc_model_factory *f, dc_model_id id);

#ifdef __cplusplus
}
#endif
#endif

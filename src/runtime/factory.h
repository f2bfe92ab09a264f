/* The built-in model factory (seed L15): custom models always, pretrained models when their
 * folder exists, either as a plain Hugging Face folder or in the huggingface_hub cache layout.
 * Internal header. */
#ifndef DC_RUNTIME_FACTORY_H
#define DC_RUNTIME_FACTORY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "dodeca/config.h"
#include "dodeca/model.h"

#define DC_FOLDER_MAX 4096

typedef struct dc_builtin_factory {
    dc_model_factory base; /* pass &base wherever a dc_model_factory is wanted */
    char models_dir[DC_CONFIG_PATH_MAX];
    uint32_t threads;      /* intra-op threads of pretrained models; 0 = OpenMP default */
    uint32_t max_batch_tokens;
    char folder[DC_NUM_MODELS][DC_FOLDER_MAX]; /* discovered at creation ("" = none) */
    char reason[DC_NUM_MODELS][256];           /* why a model is not supported */
    dc_gpu_config gpu;                         /* [gpu]: models.<name>.device resolves under it */
    pthread_mutex_t placed_mu;
    char placed[DC_NUM_MODELS][256]; /* where the last model made runs ("" = none made) */
} dc_builtin_factory;

/* Where the factory put the last model `id` it made: "cpu", "cuda:0 (fp32)", "cpu (auto: why
 * not cuda)"; "" before one was made. Copied into buf (thread-safe). */
void dc_builtin_factory_placement(dc_builtin_factory *f, dc_model_id id, char *buf, size_t cap);

/* Discovers the folders of every enabled model. Never fails for a missing folder: the model is
 * just left out of supported_mask, with the reason recorded. */
dc_status dc_builtin_factory_create(const dc_config *cfg, dc_builtin_factory **out);
void dc_builtin_factory_destroy(dc_builtin_factory *f);

/* The folder a pretrained model loads from: cfg->path when set, else the first of
 * models_dir/<name>, models_dir/<short name>, models_dir/<repo name>, models_dir/models--org--name,
 * models_dir/hub/models--org--name that holds a config.json (hub layouts resolve refs/main).
 * The returned path is the one given to the model (a hub repo folder stays a repo folder). */
dc_status dc_model_folder_find(dc_model_id id, const dc_model_config *cfg, const char *models_dir,
                               char *out, size_t cap);

/* True for the models this build creates from a folder. */
bool dc_builtin_is_pretrained(dc_model_id id);

#endif

/* Model registry (seed L01, L02, L15, S07): which models exist, loading them once on demand,
 * a memory budget, unloading, hot swap, statistics. Internal header.
 *
 * Callers borrow a model with dc_registry_acquire and give it back with dc_registry_release.
 * A borrowed model stays valid (and loaded) until released, even if it is unloaded or swapped
 * out meanwhile: the registry retires it and frees it when the last borrower returns it. That
 * is how in-flight requests finish on the old weights during a hot swap. */
#ifndef DC_RUNTIME_REGISTRY_H
#define DC_RUNTIME_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "dodeca/config.h"
#include "dodeca/model.h"
#include "runtime/rt.h"

typedef struct dc_registry dc_registry;

/* One loaded instance of a model, shared by its borrowers. */
typedef struct dc_rt_model {
    dc_model *model;
    dc_model_id id;
    dc_hash128 version;   /* identifies the weights and options; part of cache keys */
    uint64_t bytes;       /* charged against the memory budget */
    bool builtin_pretrained; /* created by the built-in encoder factory (has SPLADE/ColBERT extras) */
    bool tok_shared;      /* its tokenizer files are known: inputs may be tokenised for it */
    dc_hash128 tok_fp;    /* fingerprint of those files (models with equal ones share) */
    char tok_dir[4096];   /* the folder they are in */
    uint32_t refs;        /* guarded by the registry lock */
    bool retired;
} dc_rt_model;

typedef enum dc_slot_state {
    DC_SLOT_UNAVAILABLE = 0, /* the factory cannot create it (no folder, disabled) */
    DC_SLOT_UNLOADED = 1,
    DC_SLOT_LOADING = 2,
    DC_SLOT_LOADED = 3,
    DC_SLOT_FAILED = 4,      /* the last load failed; retried after load_retry_ms */
} dc_slot_state;

typedef enum dc_swap_phase {
    DC_SWAP_NONE = 0,
    DC_SWAP_LOADING = 1,
    DC_SWAP_VALIDATING = 2,
    DC_SWAP_SWAPPING = 3,
    DC_SWAP_DRAINING = 4,
    DC_SWAP_COMPLETE = 5,
    DC_SWAP_FAILED = 6,
} dc_swap_phase;

typedef struct dc_registry_options {
    const dc_model_factory *factory; /* required; borrowed for the registry's lifetime */
    bool factory_is_builtin;         /* models it makes have the encoder extras */
    uint64_t memory_budget_bytes;    /* 0 = no limit */
    uint32_t max_concurrent_loads;   /* >= 1 */
    uint32_t load_retry_ms;          /* a failed model is retried on demand after this */
    uint32_t drain_timeout_ms;       /* a swap waits this long for borrowers of the old model */
    dc_rt_logger *log;
} dc_registry_options;

typedef struct dc_registry_model_stats {
    dc_slot_state state;
    bool enabled;
    uint64_t bytes;           /* charged now (0 when not loaded) */
    uint64_t load_count, unload_count, load_failures, swap_count;
    uint64_t last_load_us;
    dc_status last_error;
    char last_error_detail[DC_RT_DETAIL_MAX];
    char unavailable_reason[256];
    dc_swap_phase swap_phase;
    dc_hash128 version;
} dc_registry_model_stats;

typedef struct dc_registry_stats {
    uint32_t loaded_count, available_count, failed_count;
    uint64_t memory_bytes, memory_peak_bytes, memory_budget_bytes;
    uint64_t load_count, unload_count, acquire_hits, swap_count;
    uint32_t loads_in_progress;
    dc_registry_model_stats model[DC_NUM_MODELS];
} dc_registry_stats;

/* `cfg` gives each model's config (copied). A model is available when it is enabled in cfg and
 * in the factory's supported_mask; `reasons` (may be NULL) explains unavailable ones. */
dc_status dc_registry_create(const dc_config *cfg, const dc_registry_options *opt,
                             const char (*reasons)[256], dc_registry **out);
/* Every borrowed model must have been released. */
void dc_registry_destroy(dc_registry *r);

bool dc_registry_available(const dc_registry *r, dc_model_id id);
uint32_t dc_registry_available_mask(const dc_registry *r);
bool dc_registry_is_loaded(dc_registry *r, dc_model_id id);
uint32_t dc_registry_loaded_mask(dc_registry *r);

/* Borrows the current instance, loading it first if needed (one load however many threads ask;
 * the others wait for it). DC_ERR_MODEL_NOT_FOUND when unavailable; a load failure's status;
 * DC_ERR_MEMORY_BUDGET_EXCEEDED when it does not fit; DC_ERR_NOT_INITIALIZED when `load` is
 * false and the model is not loaded. */
dc_status dc_registry_acquire(dc_registry *r, dc_model_id id, bool load, dc_rt_model **out);
void dc_registry_release(dc_registry *r, dc_rt_model *m);

/* Loads if not loaded (DC_OK when already loaded). */
dc_status dc_registry_load(dc_registry *r, dc_model_id id);
/* Loads every available model, at most max_concurrent_loads at a time; the first failure is
 * returned after all finished (each model's own result is in the stats). */
dc_status dc_registry_load_all(dc_registry *r, uint32_t mask);
/* Drops the current instance; borrowers keep theirs until they release it. */
dc_status dc_registry_unload(dc_registry *r, dc_model_id id);

/* The available mask and every model's version, under one lock (the request path's view). */
uint32_t dc_registry_snapshot(dc_registry *r, dc_hash128 versions[DC_NUM_MODELS]);

/* Current version of a model's weights and options (also when not loaded). */
dc_hash128 dc_registry_version(dc_registry *r, dc_model_id id);

/* Hot swap: creates and loads a model from `cfg`, validates it (dimension, accepted inputs, a
 * finite test embedding), switches it in, then waits for borrowers of the old one. On any
 * failure before the switch the old model stays (rollback) and the error is returned. Both
 * models must fit in the memory budget at once. One swap per model at a time
 * (DC_ERR_OVERLOADED if one is running). */
dc_status dc_registry_swap(dc_registry *r, dc_model_id id, const dc_model_config *cfg);

void dc_registry_stats_get(dc_registry *r, dc_registry_stats *out);

/* The version of a model built from `cfg` under models_dir: XXH3-128 of the model id, the
 * options that change its output and the identity (size, mtime) of the weight files. */
dc_hash128 dc_registry_config_version(dc_model_id id, const dc_model_config *cfg,
                                      const char *models_dir);

const char *dc_slot_state_name(dc_slot_state s);
const char *dc_swap_phase_name(dc_swap_phase p);

#endif

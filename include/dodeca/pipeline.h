/* dodeca — the twelve-model pipeline (seed S01, S02, S03, S07, S16, S17, S18; DESIGN §1, §3).
 *
 *   input → validate → PII scrub → cache key → [hit: stored result]
 *         → per-model batch queues → orchestrator (deadline, presence policy)
 *         → concatenation 8320 → FuseMoE → 1536 → cache → result
 *
 * A dc_pipeline accepts concurrent calls from any number of threads. Results the pipeline
 * allocates are released with dc_pipeline_result_free. Nothing on the path reads the wall clock
 * for a value that changes an embedding, except t_ref when the input leaves it unset: then the
 * request's receive time is used and returned in the result, so the call can be repeated
 * exactly (docs/runtime.md). */
#ifndef DODECA_PIPELINE_H
#define DODECA_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dodeca/config.h"
#include "dodeca/model.h"
#include "dodeca/status.h"
#include "dodeca/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dc_pipeline dc_pipeline;

/* ---- results ---- */

/* What happened to one model for one input (seed S17 ExecutionStatus). */
typedef enum dc_run_status {
    DC_RUN_OK = 0,      /* answered in time; its block is in the concatenation */
    DC_RUN_TIMEOUT = 1, /* had not answered by the deadline; its block is zero */
    DC_RUN_FAILED = 2,  /* answered with an error (error, detail); its block is zero */
    DC_RUN_SKIPPED = 3, /* not run: disabled, unavailable, not requested, or the input type */
} dc_run_status;

const char *dc_run_status_name(dc_run_status s); /* "ok", "timeout", "failed", "skipped" */

#define DC_RESULT_DETAIL_MAX 192

typedef struct dc_model_result {
    dc_run_status status;
    dc_status error;       /* FAILED: the model's status; TIMEOUT: DC_ERR_TIMEOUT, or
                            * DC_ERR_CANCELLED when the caller cancelled; else DC_OK */
    char detail[DC_RESULT_DETAIL_MAX]; /* why it failed or was skipped; "" when OK */
    float *vector;         /* OK: `dim` floats as the model returned them (owned), else NULL */
    uint32_t dim;
    uint32_t tokens_used;  /* tokens (characters for E9) the model consumed */
    bool truncated;        /* the input was longer than the model's limit */
    uint64_t queue_us;     /* time in the model's queue (0 on a cache hit) */
    uint64_t forward_us;   /* time of the batch that carried it */
    uint32_t batch_size;   /* items in that batch */
} dc_model_result;

/* Where the time of one call went, in microseconds. */
typedef struct dc_pipeline_timings {
    uint64_t total_us;
    uint64_t prepare_us;     /* validation, PII scrub, cache key */
    uint64_t cache_lookup_us;
    uint64_t tokenise_us;    /* jobs made, the text tokenised once per tokenizer (DESIGN §3) */
    uint64_t models_us;      /* from submitting to the queues until the results were collected */
    uint64_t fusion_us;
    uint64_t cache_store_us;
} dc_pipeline_timings;

typedef struct dc_pipeline_result {
    /* vector (1536, L2), routing facts (expert_weights: all gate probabilities;
     * selected_experts[0..num_selected)), present_mask, content_hash (of the scrubbed input),
     * pipeline_latency_us (of the call that computed it), colbert (E12 token rows) and sparse
     * (E6 SPLADE weights). On a cache hit these are the stored bytes, decoded. */
    dc_fused_embedding fused;
    dc_model_result models[DC_NUM_MODELS];
    double t_ref;               /* the reference time the temporal models used (Unix seconds) */
    bool t_ref_from_input;      /* false: it was this (or the cached) request's receive time */
    uint32_t ok_mask, timeout_mask, failed_mask, skipped_mask; /* bit i = model i */
    uint32_t truncated_mask;
    bool cache_hit;
    dc_hash128 cache_key;
    uint64_t request_id;        /* also the trace id of its spans */
    uint32_t pii_findings;      /* detections the scrubber replaced (0 when PII is off) */
    dc_pipeline_timings timings;
} dc_pipeline_result;

void dc_pipeline_result_init(dc_pipeline_result *r);
/* Releases the owned buffers and leaves the dc_pipeline_result_init state. */
void dc_pipeline_result_free(dc_pipeline_result *r);

/* ---- opening ---- */

/* Log sink: level 0 error, 1 warning, 2 info, 3 debug. Called from any thread. */
typedef void (*dc_log_fn)(void *ctx, int level, const char *message);

typedef struct dc_pipeline_options {
    const dc_model_factory *factory; /* NULL: the built-in factory (custom models, model folders) */
    uint64_t memory_budget_bytes;    /* 0: min(16 GiB, 80 % of physical memory) */
    bool warmup;                     /* true: warm loaded models and the fusion at open */
    dc_log_fn log;                   /* NULL: stderr, filtered by DODECA_LOG_LEVEL (warn) */
    void *log_ctx;
    uint32_t load_retry_ms;          /* a model whose load failed is retried after: 30000 */
} dc_pipeline_options;

void dc_pipeline_options_default(dc_pipeline_options *o);

/* Validates the configuration, discovers the models (custom models always; pretrained ones
 * when their folder exists under models.models_dir or models.<name>.path, plain or
 * huggingface_hub cache layout), creates the fusion, the cache (loading cache.disk_path when
 * persist_to_disk; a corrupted file is discarded with a warning), the Redis tier
 * (cache.redis_url) and the queues, loads models.preload — or every available model when
 * lazy_loading is false — and warms up. A model that is enabled but has no folder is left out,
 * and a model that fails to load at open is logged and left failed (health and stats say so,
 * requests report it per model); E1 missing is allowed and leaves the pipeline degraded.
 * Errors: DC_ERR_CONFIG (also a bad cache.redis_url or trace.otlp_endpoint), DC_ERR_FUSION,
 * DC_ERR_OUT_OF_MEMORY. */
dc_status dc_pipeline_open(const dc_config *cfg, dc_pipeline **out);
dc_status dc_pipeline_open_ex(const dc_config *cfg, const dc_pipeline_options *opt,
                              dc_pipeline **out);
/* Waits for calls in flight to return (the caller must not start new ones), saves the cache
 * file when persist_to_disk, writes the Chrome trace when trace.chrome_path is set, frees
 * everything. NULL is a no-op. */
void dc_pipeline_close(dc_pipeline *p);

/* ---- embedding ---- */

/* Lets a caller give up on a call from another thread. */
typedef struct dc_cancel_token dc_cancel_token;
dc_status dc_cancel_token_create(dc_cancel_token **out);
void dc_cancel_token_cancel(dc_cancel_token *t);
bool dc_cancel_token_cancelled(const dc_cancel_token *t);
void dc_cancel_token_destroy(dc_cancel_token *t);

typedef struct dc_embed_options {
    uint32_t deadline_ms;     /* 0: pipeline.deadline_ms (auto: DC_DEADLINE_MS_CPU on CPU) */
    uint32_t model_mask;      /* 0: every enabled model; else only these (bit i = model i) */
    bool no_cache;            /* neither read nor fill the cache */
    bool no_aux;              /* skip the SPLADE weights (E6) and ColBERT rows (E12) */
    dc_cancel_token *cancel;  /* NULL: none */
} dc_embed_options;

/* One input. On success *out holds the result (free it); on failure *out is in the init state
 * and the detail says why: DC_ERR_OVERLOADED (a queue is full: retry later),
 * DC_ERR_TIMEOUT (required E1, or too few models, answered by the deadline), DC_ERR_CANCELLED
 * (opt->cancel was cancelled; the call returns within ~10 ms of that), the
 * failing model's status when E1 failed, DC_ERR_UNSUPPORTED_MODALITY (no model takes the
 * input), DC_ERR_FUSION, or the dc_input_validate error. Policy (seed S17): E1 is required
 * when it is available and takes the input; at least min(pipeline.min_models, models that
 * could run) must answer; missing blocks are zero and absent from fused.present_mask. */
dc_status dc_pipeline_embed(dc_pipeline *p, const dc_input *in, dc_pipeline_result *out);
dc_status dc_pipeline_embed_ex(dc_pipeline *p, const dc_input *in, const dc_embed_options *opt,
                               dc_pipeline_result *out);

/* n inputs at once (they share batches). out[i] receives each result; item_status (may be
 * NULL) each item's status. Returns DC_OK when every item succeeded, else the first failing
 * item's status (the detail names its index). The deadline scales with the number of batches
 * the call needs: deadline × ⌈n / batch.max_batch_size⌉. n must not exceed
 * batch.queue_capacity. */
dc_status dc_pipeline_embed_batch(dc_pipeline *p, const dc_input *in, size_t n,
                                  dc_pipeline_result *out, dc_status *item_status);
dc_status dc_pipeline_embed_batch_ex(dc_pipeline *p, const dc_input *in, size_t n,
                                     const dc_embed_options *opt, dc_pipeline_result *out,
                                     dc_status *item_status);

/* ---- models ---- */

dc_status dc_pipeline_load_model(dc_pipeline *p, dc_model_id id);
/* In-flight requests finish on the unloaded model; the next request loads it again (lazy). */
dc_status dc_pipeline_unload_model(dc_pipeline *p, dc_model_id id);
/* Hot swap (seed S07): builds the model from `cfg` (a new folder in cfg->path), validates it
 * (dimension, a finite non-zero test embedding) and switches it in while requests flow;
 * requests already running finish on the old model, none fails because of the swap. Any
 * failure before the switch keeps the old model (rollback) and is returned. Results computed
 * by the new weights get new cache keys. */
dc_status dc_pipeline_swap_model(dc_pipeline *p, dc_model_id id, const dc_model_config *cfg);

/* ---- metrics and health (seed S02) ---- */

typedef struct dc_latency_summary {
    uint64_t count;
    double mean_us;
    uint64_t p50_us, p95_us, p99_us, max_us; /* within 19 % (log-linear buckets) */
} dc_latency_summary;

typedef enum dc_model_state {
    DC_MODEL_STATE_UNAVAILABLE = 0, /* disabled, or no folder */
    DC_MODEL_STATE_UNLOADED = 1,
    DC_MODEL_STATE_LOADING = 2,
    DC_MODEL_STATE_LOADED = 3,
    DC_MODEL_STATE_FAILED = 4,      /* the last load failed */
} dc_model_state;

const char *dc_model_state_name(dc_model_state s);

typedef struct dc_pipeline_model_stats {
    dc_model_state state;
    bool degraded;            /* among its last 20 results, more than 2 timeouts or failures */
    uint64_t ok, timeouts, failures, skipped;
    uint64_t batches, batch_items, max_batch;
    uint32_t queue_depth;
    uint64_t overloaded, cancelled;
    uint64_t memory_bytes;
    uint64_t load_count, load_failures, unload_count, swap_count;
    uint64_t last_load_us, warmup_us;
    dc_latency_summary queue, forward; /* per item in queue; per batch forward */
    char reason[256];         /* why unavailable, or the last load error */
    /* where the model runs: "cpu", "cuda:0 (fp32)", "cpu (auto: why not cuda)"; "" before the
     * built-in factory made it (or with a factory of the caller's) */
    char backend[256];
    /* CUDA graphs of its forwards (gpu.use_cuda_graphs): recorded, launched, failed recordings */
    uint64_t graphs, graph_launches, graph_failures;
} dc_pipeline_model_stats;

typedef struct dc_pipeline_stats {
    uint64_t requests, embeddings, errors, overloaded, timeouts, cancelled;
    uint64_t cache_hits, cache_misses, cache_entries, cache_bytes, cache_evictions;
    double cache_hit_rate;
    uint64_t redis_hits, redis_misses, redis_errors, redis_writes;
    bool redis_up;
    uint64_t memory_bytes, memory_peak_bytes, memory_budget_bytes;
    double uptime_s, throughput_per_s; /* embeddings per second since open */
    dc_latency_summary total, prepare, cache_lookup, tokenise, models, fusion, cache_store;
    uint64_t tokenizations;     /* shared tokenizations run (one per input and tokenizer) */
    uint32_t shared_tokenizers; /* distinct tokenizers the encoders use */
    uint64_t traced_requests, trace_events_dropped, warnings;
    dc_pipeline_model_stats model[DC_NUM_MODELS];
} dc_pipeline_stats;

dc_status dc_pipeline_stats_get(dc_pipeline *p, dc_pipeline_stats *out);

/* Seed S02: healthy = at least 10 of the 12 models ready (loaded, or available for lazy
 * loading and not failed), memory below 90 % of the budget, fewer than 10 errors in the last
 * minute, and the fusion up. minimum_viable = fusion up, E1 ready, and at least
 * pipeline.min_models models ready. */
typedef struct dc_pipeline_health {
    bool healthy, minimum_viable;
    uint32_t models_ready, models_loaded, models_failed, models_degraded;
    uint32_t ready_mask, loaded_mask, failed_mask, degraded_mask;
    bool fusion_ready, redis_configured, redis_up;
    uint32_t errors_last_minute;
    uint64_t memory_bytes, memory_budget_bytes;
    double uptime_s;
    char reason[256]; /* the first rule that failed; "" when healthy */
} dc_pipeline_health;

dc_status dc_pipeline_health_get(dc_pipeline *p, dc_pipeline_health *out);

/* Stats as one JSON object, or as Prometheus text exposition; malloc'ed, NUL-terminated,
 * released with free(). */
dc_status dc_pipeline_metrics_json(dc_pipeline *p, char **out);
dc_status dc_pipeline_metrics_prometheus(dc_pipeline *p, char **out);

/* ---- warm-up (seed S16) ---- */

typedef struct dc_warmup_model {
    bool warmed;          /* the model was loaded and ran */
    dc_status status;
    uint64_t duration_us, first_us, final_us; /* whole warm-up, first batch, last batch */
    uint32_t samples;
    uint32_t graph_layouts; /* one-input layouts warmed as CUDA graphs (GPU models; recorded
                             * now or before): a text length bucket each, E10's one-image batch */
} dc_warmup_model;

typedef struct dc_warmup_report {
    uint64_t total_us, fusion_us;
    bool fusion_warmed;
    uint32_t models_warmed, models_failed;
    dc_warmup_model model[DC_NUM_MODELS];
} dc_warmup_report;

/* Runs each loaded model at the batch shapes 1, 4, 16 and its max batch size (capped by
 * batch.max_batch_size) on synthetic inputs, then the fusion at the same shapes. Encoders on
 * CUDA with gpu.use_cuda_graphs also record the graphs of one-input forwards of every padded
 * length up to DC_WARMUP_GRAPH_TOKENS tokens (docs/gpu.md). */
#define DC_WARMUP_GRAPH_TOKENS 128
dc_status dc_pipeline_warmup(dc_pipeline *p, dc_warmup_report *out);
/* The report of the last warm-up (zeroed if none ran). */
void dc_pipeline_warmup_report(dc_pipeline *p, dc_warmup_report *out);

/* ---- tracing (seed S18) ---- */

/* Writes the spans recorded so far as Chrome trace-event JSON (open in Perfetto or
 * chrome://tracing). Spans are recorded when trace.enabled, for trace.sample_rate of requests. */
dc_status dc_pipeline_trace_write(dc_pipeline *p, const char *path);
/* Sends recorded spans to trace.otlp_endpoint (OTLP/HTTP JSON, http:// only) now. */
dc_status dc_pipeline_trace_flush(dc_pipeline *p);

/* ---- cache ---- */

dc_status dc_pipeline_cache_save(dc_pipeline *p); /* to cache.disk_path */
void dc_pipeline_cache_clear(dc_pipeline *p);

/* ---- EmbeddingProvider bridge (seed S03) ----
 * A small stable interface for downstream code: text in, the fused 1536-d vector out. */
#define DC_PROVIDER_MODEL_NAME "fusemoe-12-pipeline"
#define DC_PROVIDER_MAX_TOKENS 512

typedef struct dc_embedding_provider {
    void *ctx; /* the dc_pipeline */
    /* out: dimension() floats. */
    dc_status (*embed)(void *ctx, const char *text, size_t len, float *out);
    /* out: n × dimension() floats, row-major; lens[i] = bytes of texts[i]. */
    dc_status (*embed_batch)(void *ctx, const char *const *texts, const size_t *lens, size_t n,
                             float *out);
    uint32_t (*dimension)(void *ctx);       /* 1536 */
    const char *(*model_name)(void *ctx);   /* "fusemoe-12-pipeline" */
    uint32_t (*max_tokens)(void *ctx);      /* 512 */
} dc_embedding_provider;

/* Fills *out with a provider bound to p (valid while p is open). */
dc_status dc_pipeline_provider(dc_pipeline *p, dc_embedding_provider *out);

#ifdef __cplusplus
}
#endif
#endif

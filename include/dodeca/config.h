/* dodeca — configuration (seed F11–F15, S08; DESIGN §6).
 *
 * A dc_config holds every setting of the library, the server and the CLI. It is a plain value:
 * strings live in fixed-size arrays, so a dc_config can be copied with `=` and needs no free.
 * Layers apply in this order, each overriding the one before:
 *
 *     dc_config_defaults()  <  TOML file  <  DODECA_<SECTION>_<KEY> environment  <  dc_config_set()
 *
 * then dc_config_validate() checks the result. The file format and every key are documented in
 * tests/data/config/dodeca.example.toml (the configuration reference). Errors are DC_ERR_CONFIG
 * (DC_ERR_IO for an unreadable file) with a detail that names the key and where it was set:
 * "dodeca.toml:12:1: ...", "environment variable DODECA_BATCH_MAX_BATCH_SIZE: ...". */
#ifndef DODECA_CONFIG_H
#define DODECA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dodeca/status.h"
#include "dodeca/types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DC_CONFIG_PATH_MAX    1024 /* bytes, including the NUL, of path settings */
#define DC_CONFIG_TEXT_MAX    256  /* host names, API keys */
#define DC_CONFIG_URL_MAX     512  /* redis_url, otlp_endpoint, an OTLP header */
#define DC_CONFIG_MAX_OTLP_HEADERS 8
#define DC_CONFIG_MAX_GPUS    16   /* entries of gpu.device_ids */
#define DC_CONFIG_MAX_BUCKETS 16   /* entries of batch.bucket_sizes */
#define DC_CONFIG_MAX_PII_PATTERNS 16   /* entries of pii.custom_patterns */
#define DC_CONFIG_PII_PATTERN_MAX  512  /* bytes, including the NUL, of one custom pattern */
#define DC_PII_HMAC_KEY_MIN        16   /* bytes of the shortest pii.hmac_key accepted */

/* The orchestrator deadline when pipeline.deadline_ms is 0 (auto): the seed's 150 ms on a GPU,
 * and a budget a CPU can meet for all twelve models. */
#define DC_DEADLINE_MS_GPU 150
#define DC_DEADLINE_MS_CPU 2000

/* ---- Enumerations, each with a parse/name pair. Parsing ignores case, '_' and '-', so the
 * seed's spellings ("DynamicMax", "TtlLru") read too; names are the snake_case form. Parse
 * failures are DC_ERR_CONFIG naming the accepted values. ---- */

typedef enum dc_device_kind {
    DC_DEVICE_AUTO = 0, /* the GPU when one is usable, else the CPU */
    DC_DEVICE_CPU = 1,
    DC_DEVICE_CUDA = 2, /* a specific CUDA device, "cuda:N" */
} dc_device_kind;

typedef struct dc_device {
    dc_device_kind kind;
    uint32_t index; /* CUDA device ordinal; 0 otherwise */
} dc_device;

/* "auto", "cpu", "cuda" (= cuda:0) or "cuda:N". */
dc_status dc_device_parse(const char *s, dc_device *out);
/* Writes "auto", "cpu" or "cuda:N" into buf (16 bytes are always enough); returns buf. */
const char *dc_device_name(dc_device d, char *buf, size_t cap);

typedef enum dc_quantization {
    DC_QUANTIZATION_NONE = 0, /* fp32 weights */
    DC_QUANTIZATION_INT8 = 1,
    DC_QUANTIZATION_FP16 = 2,
    DC_QUANTIZATION_BF16 = 3,
    DC_QUANTIZATION_FP8 = 4,
    DC_QUANTIZATION_NVFP4 = 5, /* CUDA only: FP4 with 16-element E4M3-scaled blocks */
    DC_QUANTIZATION_MXFP4 = 6, /* CUDA only: FP4 with 32-element power-of-two-scaled blocks */
} dc_quantization;
dc_status dc_quantization_parse(const char *s, dc_quantization *out);
const char *dc_quantization_name(dc_quantization q);

typedef enum dc_padding_strategy {
    DC_PADDING_MAX_LENGTH = 0,   /* pad every sequence to the model's max tokens */
    DC_PADDING_DYNAMIC_MAX = 1,  /* pad to the longest sequence in the batch */
    DC_PADDING_POWER_OF_TWO = 2, /* pad to the next power of two of the longest */
    DC_PADDING_BUCKET = 3,       /* pad to the smallest of batch.bucket_sizes that fits */
} dc_padding_strategy;
dc_status dc_padding_strategy_parse(const char *s, dc_padding_strategy *out);
const char *dc_padding_strategy_name(dc_padding_strategy p);

typedef enum dc_eviction_policy {
    DC_EVICTION_LRU = 0,
    DC_EVICTION_LFU = 1,
    DC_EVICTION_TTL_LRU = 2, /* LRU, and entries older than cache.ttl_seconds expire */
    DC_EVICTION_ARC = 3,
} dc_eviction_policy;
dc_status dc_eviction_policy_parse(const char *s, dc_eviction_policy *out);
const char *dc_eviction_policy_name(dc_eviction_policy p);

typedef enum dc_pii_mode {
    DC_PII_PLACEHOLDER = 0, /* replace a finding with its typed placeholder, "<EMAIL>" */
    DC_PII_REDACT = 1,      /* replace with "[REDACTED]" */
    DC_PII_MASK = 2,        /* '*' for each letter and digit but the last 4; separators kept */
    DC_PII_HASH = 3,        /* "<EMAIL_3fa2c1d94b0e>": HMAC-SHA-256 under pii.hmac_key, so
                             * equal values stay equal across runs and machines */
    DC_PII_OFF = 4,         /* detect and report only: the text passes through unchanged */
} dc_pii_mode;
dc_status dc_pii_mode_parse(const char *s, dc_pii_mode *out);
const char *dc_pii_mode_name(dc_pii_mode m);

/* How eager the scrubber is: permissive reports only validated or unmistakable findings,
 * moderate adds findings that context words confirm, strict also reports weak ones (bare
 * 9-digit numbers, phone-shaped numbers without context, high-entropy tokens anywhere). */
typedef enum dc_pii_sensitivity {
    DC_PII_PERMISSIVE = 0,
    DC_PII_MODERATE = 1,
    DC_PII_STRICT = 2,
} dc_pii_sensitivity;
dc_status dc_pii_sensitivity_parse(const char *s, dc_pii_sensitivity *out);
const char *dc_pii_sensitivity_name(dc_pii_sensitivity s);

/* [models.<name>].pooling: how token rows become one vector. auto = the model's own recipe
 * (modules.json / 1_Pooling for E8 and E11, the documented recipe for E1, E5, E7); the others
 * are sentence-transformers' single modes. Only E1, E5, E7, E8 and E11 take an override. */
typedef enum dc_pooling_mode {
    DC_POOLING_AUTO = 0,
    DC_POOLING_MEAN = 1,
    DC_POOLING_CLS = 2,
    DC_POOLING_MAX = 3,
    DC_POOLING_MEAN_SQRT_LEN = 4,
    DC_POOLING_WEIGHTEDMEAN = 5,
    DC_POOLING_LASTTOKEN = 6,
} dc_pooling_mode;
dc_status dc_pooling_mode_parse(const char *s, dc_pooling_mode *out);
const char *dc_pooling_mode_name(dc_pooling_mode p);

/* [models.<name>].normalize: L2-normalise the pooled vector. auto = the model's recipe. */
typedef enum dc_normalize_mode {
    DC_NORMALIZE_AUTO = 0,
    DC_NORMALIZE_TRUE = 1,
    DC_NORMALIZE_FALSE = 2,
} dc_normalize_mode;
dc_status dc_normalize_mode_parse(const char *s, dc_normalize_mode *out);
const char *dc_normalize_mode_name(dc_normalize_mode n);

/* ---- Sections. Defaults (dc_config_defaults) are the seed's; see the example file. ---- */

/* [models.<name>]: one per model, <name> the snake_case model name ("semantic"). */
struct dc_model_config {
    bool enabled;                  /* true; semantic (E1) cannot be disabled */
    dc_device device;              /* auto */
    dc_quantization quantization;  /* none */
    uint32_t max_batch_size;       /* 32 */
    bool use_flash_attention;      /* true */
    uint32_t max_tokens;           /* 0 = the model's own limit; otherwise at most that limit */
    char path[DC_CONFIG_PATH_MAX]; /* "" = found under models.models_dir; else this folder */
    double fusion_weight;          /* 1.0: the block's weight in the fusion's shared map S
                                    * (relative to the other models; >= 0) */
    dc_pooling_mode pooling;       /* auto; E1, E5, E7, E8, E11 only */
    dc_normalize_mode normalize;   /* auto; E1, E5, E7, E8, E11 only */
};
typedef struct dc_model_config dc_model_config;

typedef struct dc_models_config {
    char models_dir[DC_CONFIG_PATH_MAX];  /* "./models" */
    bool lazy_loading;                    /* true: load a model on first use */
    dc_model_id preload[DC_NUM_MODELS];   /* loaded at start-up, in this order */
    uint32_t preload_count;               /* 0 */
    bool auto_download;                   /* false */
    /* `dodeca pull` (docs/models.md): "" = HF_ENDPOINT / HF_TOKEN / the huggingface_hub cache */
    char hub_endpoint[DC_CONFIG_URL_MAX];  /* "" = HF_ENDPOINT, else https://huggingface.co */
    char hub_token[DC_CONFIG_TEXT_MAX];    /* "" = HF_TOKEN, else the `hf auth login` token */
    char hub_cache_dir[DC_CONFIG_PATH_MAX]; /* "" = HF_HUB_CACHE, HF_HOME/hub, ~/.cache/... */
    uint32_t max_concurrent_loads;        /* 2 */
    uint64_t memory_budget_bytes;         /* 0 = auto: min(16 GiB, 80 % of physical memory) */
    dc_model_config model[DC_NUM_MODELS]; /* indexed by dc_model_id */
} dc_models_config;

typedef struct dc_batch_config {
    uint32_t max_batch_size;                      /* 32 */
    uint32_t min_batch_size;                      /* 1 */
    uint32_t max_wait_ms;                         /* 50 */
    bool dynamic_batching;                        /* true */
    dc_padding_strategy padding_strategy;         /* dynamic_max */
    uint32_t bucket_sizes[DC_CONFIG_MAX_BUCKETS]; /* [64, 128, 256, 512], for "bucket" */
    uint32_t bucket_count;
    bool sort_by_length;           /* true */
    uint32_t max_tokens_per_batch; /* 16384: token budget of one batch */
    uint32_t queue_capacity;       /* 1024 pending items per model queue */
} dc_batch_config;

typedef struct dc_fusion_config {
    uint32_t num_experts;       /* 8 (at most DC_NUM_EXPERTS in this build) */
    uint32_t top_k;             /* 2 */
    uint32_t output_dim;        /* 1536 (must equal DC_DIM_FUSED in this build) */
    uint32_t expert_hidden_dim; /* 1024 */
    double load_balance_coef;   /* 0.01 */
    double capacity_factor;     /* 1.25 */
    double temperature;         /* 1.0 */
    double noise_std;           /* 0.0 (inference) */
    double laplace_alpha;       /* 0.01 */
    uint64_t seed;              /* 42: seeds the projection and expert initialisation */
    char gating[16];            /* "softmax" | "laplace" */
    uint32_t jl_nnz;            /* 8: non-zeros per column of the shared map S */
    char gate_init[24];         /* "xavier_uniform" (see docs/fusion.md for the schemes) */
    char expert_init[24];       /* "kaiming_uniform" */
    char output_init[24];       /* "zeros": untrained experts add nothing (DESIGN §7) */
    char checkpoint[DC_CONFIG_PATH_MAX]; /* "" = seeded initialisation */
    bool checkpoint_strict;     /* false: a missing or bad checkpoint falls back to the seed */
    bool verify_checksum;       /* true: refuse a checkpoint whose SHA-256 does not match */
    bool came_ab;               /* false: the CAME-AB bridge */
    double came_ab_blend;       /* 0.0: blend w of the bridge output, in [0, 1] */
    char weights[8];            /* "f32" | "bf16": how the expert layers are held */
    uint32_t small_batch;       /* 16: expert rows up to this use the small-batch kernel */
    uint32_t history;           /* 4: previous weight versions kept for rollback */
    dc_device device;           /* cpu: where the experts run (auto, cpu, cuda:N) */
} dc_fusion_config;

typedef struct dc_cache_config {
    bool enabled;                       /* true */
    uint64_t max_entries;               /* 100000 */
    uint64_t max_bytes;                 /* 1073741824 (1 GiB) */
    uint64_t ttl_seconds;               /* 0 = entries never expire */
    dc_eviction_policy eviction_policy; /* lru */
    bool persist_to_disk;               /* false */
    char disk_path[DC_CONFIG_PATH_MAX]; /* required when persist_to_disk */
    char redis_url[DC_CONFIG_URL_MAX];  /* "" = no Redis tier */
} dc_cache_config;

typedef struct dc_gpu_config {
    bool enabled;                            /* true (falls back to CPU without a device) */
    uint32_t device_ids[DC_CONFIG_MAX_GPUS]; /* [0] */
    uint32_t device_count;
    double memory_fraction; /* 0.9, in (0, 1] */
    bool use_cuda_graphs;   /* true */
    bool mixed_precision;   /* true */
    bool green_contexts;    /* false: split each device's SMs between the models' streams */
    uint32_t green_partitions; /* 4: SM partitions per device when green_contexts, [2, 16] */
    bool direct_weights;    /* true: CUDA reads safetensors weights straight into device memory */
} dc_gpu_config;

typedef struct dc_pii_config {
    bool enabled;                   /* true: scrub inputs before caching and embedding */
    dc_pii_mode mode;               /* placeholder */
    dc_pii_sensitivity sensitivity; /* moderate */
    /* The HMAC key of mode "hash": the key itself (at least 16 bytes) or a file holding it
     * (read when the scrubber is created; a trailing newline is not part of the key). One of
     * them is required by mode "hash"; never both. */
    char hmac_key[DC_CONFIG_TEXT_MAX];      /* "" */
    char hmac_key_file[DC_CONFIG_PATH_MAX]; /* "" */
    /* Extra recognizers, "NAME=REGEX": NAME is the category reported and placed in the
     * placeholder ([A-Z][A-Z0-9_]*, at most 32 bytes), REGEX a PCRE2 pattern matched against
     * the sanitized UTF-8 text. */
    char custom_patterns[DC_CONFIG_MAX_PII_PATTERNS][DC_CONFIG_PII_PATTERN_MAX]; /* [] */
    uint32_t custom_pattern_count;
} dc_pii_config;

typedef struct dc_server_config {
    char host[DC_CONFIG_TEXT_MAX];    /* "127.0.0.1" */
    uint32_t port;                    /* 8080 */
    uint32_t threads;                 /* requests in the pipeline at once (more: 429); 0 = 64 */
    uint64_t max_body_bytes;          /* 8388608 (8 MiB) */
    uint32_t max_batch_items;         /* 256 inputs per request */
    uint64_t max_input_chars;         /* 262144 characters per input */
    char api_key[DC_CONFIG_TEXT_MAX]; /* "" = no authentication */
} dc_server_config;

typedef struct dc_trace_config {
    bool enabled;                          /* false */
    double sample_rate;                    /* 1.0: fraction of requests traced when enabled */
    char chrome_path[DC_CONFIG_PATH_MAX];  /* "" = no Chrome trace-event file */
    char otlp_endpoint[DC_CONFIG_URL_MAX]; /* "" = no OTLP export; http:// or https:// */
    /* extra request headers, "Name: value" each (a collector's API key) */
    char otlp_headers[DC_CONFIG_MAX_OTLP_HEADERS][DC_CONFIG_URL_MAX];
    uint32_t otlp_header_count;
    char otlp_ca_file[DC_CONFIG_PATH_MAX]; /* PEM CAs for https ("" = the system's) */
} dc_trace_config;

typedef struct dc_pipeline_config {
    uint32_t deadline_ms; /* 0 = auto: DC_DEADLINE_MS_GPU on a GPU, DC_DEADLINE_MS_CPU on CPU */
    uint32_t min_models;  /* 7: E1 plus at least 6 others must answer by the deadline */
} dc_pipeline_config;

/* Where each setting came from, so validation errors can point at a line or a variable.
 * Maintained by the loaders; callers never need to touch it. */
#define DC_CONFIG_MAX_SETTINGS 256
typedef struct dc_config_provenance {
    char file[DC_CONFIG_PATH_MAX];         /* the last file applied, for messages */
    uint32_t line[DC_CONFIG_MAX_SETTINGS]; /* 0 default, N line in `file`, or one of below */
} dc_config_provenance;
#define DC_CONFIG_FROM_ENV      UINT32_MAX
#define DC_CONFIG_FROM_OVERRIDE (UINT32_MAX - 1)

typedef struct dc_config {
    dc_models_config models;
    dc_batch_config batch;
    dc_fusion_config fusion;
    dc_cache_config cache;
    dc_gpu_config gpu;
    dc_pii_config pii;
    dc_server_config server;
    dc_trace_config trace;
    dc_pipeline_config pipeline;
    dc_config_provenance provenance;
} dc_config;

/* Fills every setting with its default. */
void dc_config_defaults(dc_config *c);

/* Checks every rule (seed F13–F15 and DESIGN §6); the detail names the key and its value, and
 * where the value was set: "f.toml:4:1: batch.min_batch_size (64) > batch.max_batch_size (32)". */
dc_status dc_config_validate(const dc_config *c);

/* Defaults, then the file, then validation. A missing or unreadable file is DC_ERR_IO naming the
 * path; bad TOML, an unknown section or key, a wrong type or an invalid value is DC_ERR_CONFIG
 * naming FILE:LINE and the key. On failure *c holds the defaults. */
dc_status dc_config_load_file(const char *path, dc_config *c);

/* Applies a file (or TOML text; `source` names it in messages) on top of *c without validating.
 * All or nothing: on failure *c is unchanged. */
dc_status dc_config_apply_file(dc_config *c, const char *path);
dc_status dc_config_apply_toml(dc_config *c, const char *text, size_t len, const char *source);

/* Applies DODECA_<SECTION>_<KEY>=value entries of `envp` (a NULL-terminated "NAME=VALUE" list
 * such as `environ`; NULL means none). Names are the upper-cased keys: DODECA_BATCH_MAX_BATCH_SIZE,
 * DODECA_MODELS_SEMANTIC_DEVICE. Values are written as in TOML without quotes: true/false,
 * numbers, plain text, and comma-separated lists (DODECA_GPU_DEVICE_IDS=0,1). An unknown DODECA_
 * variable or a bad value is DC_ERR_CONFIG naming the variable. A few DODECA_ variables are not
 * settings and are ignored: DODECA_CONFIG, DODECA_CONFORMANCE_DIR, DODECA_LOG_LEVEL,
 * DODECA_LOG_FORMAT and any DODECA_TEST_* or DODECA_BENCH_*. All or nothing, like the above. */
dc_status dc_config_apply_env(dc_config *c, char *const *envp);

/* Sets one setting from text, as a command-line flag does: key is the dotted TOML path
 * ("batch.max_batch_size", "models.semantic.device"), value is written as for the environment. */
dc_status dc_config_set(dc_config *c, const char *key, const char *value);

/* Writes the configuration as TOML that dc_config_apply_toml reads back to an equal config
 * (every section and key, all twelve model tables). */
dc_status dc_config_write_toml(const dc_config *c, FILE *out);
/* The same into a new malloc'ed NUL-terminated buffer (caller frees); *len may be NULL. */
dc_status dc_config_to_toml(const dc_config *c, char **out, size_t *len);

/* True when every setting is equal (provenance is ignored). */
bool dc_config_equal(const dc_config *a, const dc_config *b);

/* The orchestrator deadline to use: pipeline.deadline_ms, or the auto value for the backend. */
uint32_t dc_config_deadline_ms(const dc_config *c, bool on_gpu);

#ifdef __cplusplus
}
#endif
#endif

/* FuseMoE: the step that turns the 8320-float concatenation into one 1536-float vector
 * (DESIGN §7, seed L20–L23, L30, L31).
 *
 *   z      = block-weighted concatenation: block m scaled by √w_m (absent blocks are zero)
 *   h      = LayerNorm(z)                                    (shared by the gate and experts)
 *   s      = gate scores over [h ; presence mask]            (softmax: W·h + b; Laplace: −‖·−c_i‖)
 *   p      = smooth(softmax(s / T))                          (all expert probabilities, sum 1)
 *   K      = top-k of s (+ selection bias)                   (ties → lower index)
 *   fused  = L2( S·z + Σ_{i∈K} (p_i / Σ_K p) · E_i(h) )
 *
 * S is a seeded sparse Johnson–Lindenstrauss map (8320 → 1536) and each expert E_i is a residual
 * MLP (8320 → hidden → 1536, GELU) whose output layer starts at zero, so before training the fused
 * cosine of two items approximates the w-weighted mean of their per-model cosines.
 *
 * A dc_fusemoe holds the active weights (a refcounted dc_fusion_weights); forward calls from any
 * number of threads each use exactly one weights version, and the weights can be swapped or
 * rolled back while calls are in flight. Weights are plain host data shared freely between
 * fusemoes; each fusemoe prepares its own copies of the expert layers on its backend. */
#ifndef DC_FUSION_FUSEMOE_H
#define DC_FUSION_FUSEMOE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dodeca/config.h"
#include "dodeca/types.h"
#include "tensor/backend.h"

#define DC_FUSION_IN DC_DIM_CONCATENATED       /* 8320 */
#define DC_FUSION_MASK_DIM DC_NUM_MODELS       /* 12 presence features the gate sees */
#define DC_FUSION_GATE_IN (DC_FUSION_IN + DC_FUSION_MASK_DIM)
#define DC_FUSION_OUT DC_DIM_FUSED             /* 1536 */
#define DC_FUSION_DEFAULT_HIDDEN 1024
#define DC_FUSION_DEFAULT_JL_NNZ 8
#define DC_FUSION_LN_EPS 1e-5f
#define DC_FUSION_GROUPS 5                     /* CAME-AB modality groups */
#define DC_FUSION_BRIDGE_DIM 256               /* CAME-AB attention width */
#define DC_FUSION_BRIDGE_HEADS 8

typedef enum dc_gating_kind {
    DC_GATING_SOFTMAX = 0, /* s_i = w_i·[h;mask] + b_i */
    DC_GATING_LAPLACE = 1, /* s_i = −‖[h;mask] − c_i‖₂ (FuseMoE): the nearest centres win */
} dc_gating_kind;

typedef enum dc_init_scheme {
    DC_INIT_ZEROS = 0,
    DC_INIT_XAVIER_UNIFORM,  /* U(±√(6/(fan_in+fan_out))) */
    DC_INIT_XAVIER_NORMAL,   /* N(0, 2/(fan_in+fan_out)) */
    DC_INIT_KAIMING_UNIFORM, /* U(±√3·gain/√fan_in), gain 1 (GELU) */
    DC_INIT_KAIMING_NORMAL,  /* N(0, gain²/fan_in) */
    DC_INIT_ORTHOGONAL,      /* rows (or columns) orthonormal, times gain 1 */
} dc_init_scheme;

/* How the experts' weights are held for the forward (checkpoints are always f32). */
typedef enum dc_fusion_weight_dtype {
    DC_FUSION_WEIGHTS_F32 = 0,  /* the reference */
    DC_FUSION_WEIGHTS_BF16 = 1, /* expert layers rounded to bf16: half the bytes to stream */
} dc_fusion_weight_dtype;

const char *dc_gating_kind_name(dc_gating_kind k);       /* "softmax", "laplace" */
dc_status dc_gating_kind_parse(const char *s, dc_gating_kind *out);
const char *dc_init_scheme_name(dc_init_scheme s);       /* "zeros", "xavier_uniform", ... */
dc_status dc_init_scheme_parse(const char *s, dc_init_scheme *out);

/* Everything that defines a FuseMoE besides its trained tensors. */
typedef struct dc_fusion_options {
    uint32_t num_experts;          /* 8 (1..DC_NUM_EXPERTS) */
    uint32_t top_k;                /* 2 (1..num_experts) */
    uint32_t hidden;               /* expert width: 1024 */
    dc_gating_kind gating;         /* softmax */
    double temperature;            /* 1.0: p = softmax(s / T) */
    double laplace_alpha;          /* 0.01: p' = (p + α)/(1 + α·E); 0 = off */
    double noise_std;              /* 0: Gaussian noise on the scores, training only */
    double capacity_factor;        /* 1.25: capacity = ⌈cf·rows·k/E⌉, recorded, never dropped */
    double load_balance_coef;      /* 0.01: weight of the Switch loss in training */
    uint64_t seed;                 /* 42: S, gate and expert initialisation */
    float block_weights[DC_NUM_MODELS]; /* per-model weights of S; normalised to sum 1 */
    uint32_t jl_nnz;               /* non-zeros per column of S: 8 */
    dc_init_scheme gate_init;      /* xavier_uniform (gate matrix or Laplace centres) */
    dc_init_scheme expert_init;    /* kaiming_uniform (first expert layer) */
    dc_init_scheme output_init;    /* zeros (expert output layers; DESIGN §7) */
    bool bridge;                   /* CAME-AB bridge parameters present: false */
    float bridge_blend;            /* w in [0,1]: final = L2((1−w)·fused + w·bridge); 0 */
    /* Where the weights come from. */
    const char *checkpoint;        /* NULL or "": seeded initialisation */
    bool checkpoint_strict;        /* a missing or bad checkpoint is an error (else fall back) */
    bool verify_checksum;          /* true: refuse a checkpoint whose SHA-256 does not match */
    dc_backend *backend;           /* borrowed; NULL = a CPU backend owned by the dc_fusemoe */
    uint32_t history;              /* previous weights kept for rollback: 4 */
    dc_fusion_weight_dtype weights;/* f32 */
    uint32_t small_batch;          /* f32: an expert's rows up to this run on the built-in
                                      small-batch kernel, more on the backend's GEMM: 16
                                      (CPU only: on CUDA every row runs on the device) */
    /* Where the experts run when backend is NULL (docs/fusion.md §3). */
    dc_device device;              /* cpu; auto = CUDA when gpu_enabled and usable; cuda:N */
    bool gpu_enabled;              /* gpu.enabled: false keeps auto on the CPU: true */
    uint32_t gpu_device;           /* the ordinal auto tries (gpu.device_ids[0]): 0 */
    double gpu_memory_fraction;    /* pool cap of a backend the fusion creates (share of the
                                      device's memory; outside (0, 1]: 0.9): 0.9 */
} dc_fusion_options;

/* The documented defaults above. */
void dc_fusion_options_default(dc_fusion_options *o);
/* Defaults overridden by every [fusion] setting and the models' fusion_weight. The names in
 * the config were validated by dc_config_validate; an unknown one keeps the default. `o`
 * borrows cfg->fusion.checkpoint, so `cfg` must outlive the use of `o`. */
void dc_fusion_options_from_config(const dc_config *cfg, dc_fusion_options *o);
/* Ranges and consistency; DC_ERR_CONFIG naming the field. */
dc_status dc_fusion_options_validate(const dc_fusion_options *o);

/* ---- weights: one immutable, refcounted parameter set with its version record ---- */

typedef struct dc_fusion_weights dc_fusion_weights;

typedef struct dc_fusion_metrics {
    bool present;
    uint32_t epoch;
    double loss, validation_loss, learning_rate;
    double recall_at_1; /* paired recall@1 on the training file after training; < 0 unknown */
} dc_fusion_metrics;

typedef struct dc_fusion_version {
    char version[64];  /* "1.0.0", or "0.0.0-init" for seeded weights */
    char source[512];  /* checkpoint path, or "zero-shot-seed-<seed>" */
    char created[32];  /* ISO 8601 UTC; "" for seeded weights */
    char checksum[80]; /* "sha256:<64 hex>" over the tensors in canonical order */
    uint64_t seed;
    uint64_t serial;   /* unique per weights object in this process (tells versions apart) */
    dc_fusion_metrics metrics;
    char fallback_reason[256]; /* why a configured checkpoint was not used; "" otherwise */
} dc_fusion_version;

/* Seeded initialisation (version "0.0.0-init"). */
dc_status dc_fusion_weights_init(const dc_fusion_options *o, dc_fusion_weights **out);
/* Reads a checkpoint written by dc_fusion_weights_save. `o` supplies the backend and
 * verify_checksum (may be NULL: defaults). Shapes and hyper-parameters come from the file. */
dc_status dc_fusion_weights_load(const char *path, const dc_fusion_options *o,
                                 dc_fusion_weights **out);
/* The same from bytes in memory (borrowed for the call); `label` names them in errors. */
dc_status dc_fusion_weights_load_memory(const void *buf, size_t len, const char *label,
                                        const dc_fusion_options *o, dc_fusion_weights **out);
/* Load order (seed L31): o->checkpoint if set, else — or when it fails and !strict — seeded
 * initialisation, with the reason recorded in version.fallback_reason. */
dc_status dc_fusion_weights_resolve(const dc_fusion_options *o, dc_fusion_weights **out);
/* Writes safetensors + metadata atomically (temporary file, fsync, rename). `version` NULL
 * keeps the weights' own. The checksum is computed over the tensors being written. */
dc_status dc_fusion_weights_save(const dc_fusion_weights *w, const char *path,
                                 const char *version);
/* Recomputes the checksum of a checkpoint file and compares it with its metadata. */
dc_status dc_fusion_checkpoint_verify(const char *path, dc_fusion_version *info);
dc_fusion_weights *dc_fusion_weights_retain(dc_fusion_weights *w);
void dc_fusion_weights_release(dc_fusion_weights *w);
const dc_fusion_version *dc_fusion_weights_version(const dc_fusion_weights *w);
/* The options the weights were built with (shapes, gating, hyper-parameters, block weights). */
const dc_fusion_options *dc_fusion_weights_options(const dc_fusion_weights *w);
/* Sets metrics and the version string before a save; refused while a fusemoe uses the weights
 * (other threads read the record). */
dc_status dc_fusion_weights_set_version(dc_fusion_weights *w, const char *version,
                                        const dc_fusion_metrics *metrics);
/* Parameter count and host bytes (the fusemoe's prepared copies are counted by
 * dc_fusemoe_bytes). */
size_t dc_fusion_weights_param_count(const dc_fusion_weights *w);
size_t dc_fusion_weights_bytes(const dc_fusion_weights *w);

/* ---- modulation: per-call effects from neuromodulation and priors (identity by default) ---- */

typedef struct dc_fusion_modulation {
    uint32_t top_k;                       /* 0 = configured k */
    float temperature_scale;              /* multiplies T; 1 = none; clamped to [0.25, 4] */
    float model_weights[DC_NUM_MODELS];   /* multipliers on the block weights; 1 = none */
    float expert_bias[DC_NUM_EXPERTS];    /* added to selection scores only; 0 = none */
} dc_fusion_modulation;

/* The identity modulation (k 0, scale 1, weights 1, bias 0). */
void dc_fusion_modulation_neutral(dc_fusion_modulation *m);
bool dc_fusion_modulation_is_neutral(const dc_fusion_modulation *m);

/* ---- the FuseMoE object ---- */

typedef struct dc_fusemoe dc_fusemoe;

typedef enum dc_fusion_exec {
    DC_FUSION_EXEC_GROUPED = 0, /* rows grouped by expert, one matrix product per expert */
    DC_FUSION_EXEC_ROWWISE = 1, /* one row at a time (the reference the grouped path must match) */
} dc_fusion_exec;

typedef struct dc_fusion_call {
    const dc_fusion_modulation *modulation; /* NULL = none */
    dc_fusion_exec exec;
    float bridge_blend;                     /* < 0: the weights' own; else overrides w */
    uint64_t serial;                        /* out: serial of the weights that ran the batch */
    char version[64];                       /* out: their version string */
} dc_fusion_call;

void dc_fusion_call_init(dc_fusion_call *c);

/* Deterministic initialisation from cfg->seed, or from a checkpoint through the options. */
dc_status dc_fusemoe_create(const dc_config *cfg, dc_fusemoe **out);
dc_status dc_fusemoe_create_ex(const dc_fusion_options *o, dc_fusemoe **out);
/* Around weights already built (loaded, trained): takes its own reference; o supplies the
 * backend and history (may be NULL). */
dc_status dc_fusemoe_create_from(dc_fusion_weights *w, const dc_fusion_options *o,
                                 dc_fusemoe **out);
void dc_fusemoe_destroy(dc_fusemoe *f);

/* Fuses n concatenations. Writes vector (L2), expert_weights (all gate probabilities, sum 1),
 * selected_experts / num_selected, present_mask and content_hash of each out[i]; the other
 * fields (latency, ColBERT, SPLADE) are left as they are. Thread-safe. A result depends only on
 * its own input (never on the rest of the batch). Blocks outside present_mask are ignored. */
dc_status dc_fusemoe_forward(dc_fusemoe *f, const dc_concat_embedding *const *in, size_t n,
                             dc_fused_embedding *out);
dc_status dc_fusemoe_forward_ex(dc_fusemoe *f, const dc_concat_embedding *const *in, size_t n,
                                dc_fusion_call *call, dc_fused_embedding *out);

/* Hot swap: validates `w` (expert count, output width), prepares it, then atomically makes it
 * active; calls already running finish on the old weights. The fusemoe takes its own reference.
 * The old weights go on the rollback history. */
dc_status dc_fusemoe_swap(dc_fusemoe *f, dc_fusion_weights *w);
/* Makes the previous weights active again; DC_ERR_NOT_FOUND when there is no history. */
dc_status dc_fusemoe_rollback(dc_fusemoe *f);
/* A new reference to the active weights (release it). */
dc_fusion_weights *dc_fusemoe_weights(dc_fusemoe *f);
dc_backend *dc_fusemoe_backend(dc_fusemoe *f);
/* Where the experts run: "cpu", "cpu (auto: <why not CUDA>)", "cuda:0 (<device name>)" or
 * "cuda (the caller's backend)". */
const char *dc_fusemoe_device(const dc_fusemoe *f);
/* Bytes of the active weights: host arena plus the copies prepared on the backend. */
size_t dc_fusemoe_bytes(dc_fusemoe *f);

/* Routing statistics since creation or the last reset (seed L22 RouterStats). */
typedef struct dc_fusion_stats {
    uint64_t rows, batches;
    uint32_t num_experts, top_k;
    uint64_t assignments[DC_NUM_EXPERTS];  /* rows that selected expert e at any rank */
    uint64_t top1[DC_NUM_EXPERTS];         /* rows whose first choice was e */
    double utilization[DC_NUM_EXPERTS];    /* assignments / (rows·k) */
    double mean_prob[DC_NUM_EXPERTS];      /* mean gate probability P_e */
    double mean_top1_prob, mean_top2_prob; /* mean largest / second-largest probability */
    double load_balance;                   /* Switch E·Σ f_e·P_e: 1 uniform, E collapsed */
    uint64_t capacity_overflow;            /* assignments past a batch's expert capacity */
    char device[160];                      /* where the experts ran (dc_fusemoe_device) */
} dc_fusion_stats;

void dc_fusemoe_stats(dc_fusemoe *f, dc_fusion_stats *out);
void dc_fusemoe_stats_reset(dc_fusemoe *f);

/* ---- pieces exposed for tests and the trainer ---- */

/* Block weights normalised to sum 1, multiplied by `mult` (may be NULL) and renormalised:
 * scales[m] = √w'_m is what block m of the concatenation is multiplied by. */
void dc_fusion_block_scales(const float weights[DC_NUM_MODELS], const float *mult,
                            float scales[DC_NUM_MODELS]);

/* Gate over one row: scores s (raw), probabilities p (smoothed, sum 1) and the top-k. */
typedef struct dc_gate_result {
    double score[DC_NUM_EXPERTS];
    float prob[DC_NUM_EXPERTS];
    uint8_t selected[DC_NUM_EXPERTS];
    float weight[DC_NUM_EXPERTS]; /* renormalised over the selected, in selection order */
    uint32_t k;
} dc_gate_result;

/* p from scores: softmax(s/T) then Laplace smoothing α; top-k by s + bias (NULL = none). */
void dc_gate_probs(const double *score, uint32_t e, double temperature, double alpha,
                   const float *bias, uint32_t k, dc_gate_result *r);

/* The sparse JL map S on its own: y[1536] = S·z (z already block-scaled). */
typedef struct dc_jl_map dc_jl_map;
dc_status dc_jl_create(uint64_t seed, uint32_t nnz, dc_jl_map **out);
void dc_jl_destroy(dc_jl_map *m);
void dc_jl_apply(const dc_jl_map *m, const float *z, float *y);
/* y += the contribution of the columns [c0, c1) only (one block: CAME-AB tokens). */
void dc_jl_accumulate(const dc_jl_map *m, const float *z, uint32_t c0, uint32_t c1, float *y);

#endif

/* FuseMoE training (issue 7 item 8): contrastive InfoNCE with in-batch negatives plus the
 * Switch load-balancing loss, AdamW, on pairs of concatenations.
 *
 * A batch of n pairs (a_i, b_i) is fused in training mode (noise on the gate scores when
 * noise_std > 0); with f = fused vectors and τ the contrastive temperature,
 *   L_c  = ½·mean_i CE(softmax_j(f_a_i·f_b_j/τ), i) + ½·mean_j CE(softmax_i(f_a_i·f_b_j/τ), j)
 *   L_lb = E·Σ_e F_e·P_e    (F_e share of rows whose first choice is e, P_e mean probability)
 *   L    = L_c + load_balance_coef·L_lb
 * Gradients flow to the gate LayerNorm, the gate (weights or Laplace centres, bias), and every
 * expert layer; the JL map S is fixed, and CAME-AB bridge parameters are carried over untrained
 * (the training forward does not include the bridge). The selection (top-k) is piecewise
 * constant. */
#ifndef DC_FUSION_TRAIN_H
#define DC_FUSION_TRAIN_H

#include "fusion/fusemoe.h"

/* Pairs of concatenations, row-major n × 8320 each, with presence masks. */
typedef struct dc_fusion_dataset {
    size_t n;
    float *a, *b;
    uint32_t *mask_a, *mask_b;
} dc_fusion_dataset;

dc_status dc_fusion_dataset_alloc(size_t n, dc_fusion_dataset *d);
void dc_fusion_dataset_free(dc_fusion_dataset *d);
/* JSON lines: {"a": [8320 numbers], "b": [8320 numbers], "mask_a": 4095, "mask_b": 4095}.
 * Masks are optional (a block counts as present when it has a non-zero value); blocks are used
 * as given (the pipeline writes them L2-normalised). Errors name the line and the field. */
dc_status dc_fusion_dataset_read_jsonl(const char *path, dc_fusion_dataset *out);
dc_status dc_fusion_dataset_write_jsonl(const dc_fusion_dataset *d, const char *path);

/* The synthetic task: paired items share a low-rank hidden vector in a few blocks (plus noise);
 * in the other blocks each item carries its own noise plus the component of a random cluster,
 * so unrelated items of one cluster look alike there (hard negatives) while a pair's two sides
 * fall in independent clusters. Equal-weight fusion is fooled by the clusters; training has to
 * learn which blocks carry the pair signal. */
typedef struct dc_fusion_synth_options {
    size_t n;              /* pairs: 512 */
    uint64_t structure_seed; /* the hidden bases: 1 (same seed = same task) */
    uint64_t item_seed;    /* the items: 2 (another seed = held-out pairs of the same task) */
    uint32_t informative;  /* bitmask of blocks carrying the pair signal: E1 | E7 | E11 */
    uint32_t rank;         /* hidden dimension: 16 */
    float noise;           /* noise-to-signal norm ratio in informative blocks: 1 */
    uint32_t clusters;     /* distractor clusters: 8 */
    float cluster_strength;/* cluster component weight in the other blocks: 1 */
} dc_fusion_synth_options;

void dc_fusion_synth_options_default(dc_fusion_synth_options *o);
dc_status dc_fusion_synth(const dc_fusion_synth_options *o, dc_fusion_dataset *out);

typedef struct dc_fusion_train_options {
    uint32_t epochs;         /* 10 */
    uint32_t batch;          /* pairs per step: 64 */
    double lr;               /* 1e-3 */
    double weight_decay;     /* 0.01 (matrices only) */
    double beta1, beta2, eps;/* 0.9, 0.999, 1e-8 */
    double tau;              /* contrastive temperature: 0.1 */
    double load_balance_coef;/* < 0: the weights' own (0.01 by default) */
    uint64_t seed;           /* shuffling and gate noise: 1 */
    /* called after every step (may be NULL) */
    void (*progress)(void *ctx, uint32_t epoch, uint32_t step, double loss, double balance);
    void *ctx;
} dc_fusion_train_options;

void dc_fusion_train_options_default(dc_fusion_train_options *t);

typedef struct dc_fusion_trainer dc_fusion_trainer;

/* Copies `init` (its arena, shapes and hyper-parameters) into a trainer. */
dc_status dc_fusion_trainer_create(const dc_fusion_weights *init, const dc_fusion_train_options *t,
                                   dc_fusion_trainer **out);
void dc_fusion_trainer_destroy(dc_fusion_trainer *tr);
/* Loss at the current parameters for n pairs (rows of a and b); with grad != NULL the gradient
 * (layout.total floats, overwritten). No update. `components` (may be NULL) gets
 * {contrastive, balance}. */
dc_status dc_fusion_trainer_loss(dc_fusion_trainer *tr, const float *a, const uint32_t *mask_a,
                                 const float *b, const uint32_t *mask_b, size_t n, double *loss,
                                 float *grad, double components[2]);
/* One AdamW step on a batch. */
dc_status dc_fusion_trainer_step(dc_fusion_trainer *tr, const float *a, const uint32_t *mask_a,
                                 const float *b, const uint32_t *mask_b, size_t n, double *loss);
/* The parameters (mutable: the gradient check perturbs them) and their layout. */
float *dc_fusion_trainer_params(dc_fusion_trainer *tr);
const dc_fusion_weights *dc_fusion_trainer_shape(const dc_fusion_trainer *tr);
/* Hash of the routing decisions of the last loss evaluation (tests check it is unchanged). */
uint64_t dc_fusion_trainer_routing_hash(const dc_fusion_trainer *tr);
/* A new weights object with the current parameters (version "0.0.0-trained" until set). */
dc_status dc_fusion_trainer_weights(const dc_fusion_trainer *tr, dc_fusion_weights **out);

/* Trains for t->epochs over d (shuffled each epoch) and returns the trained weights, whose
 * version record carries the metrics (epoch count, mean loss of the last epoch, learning rate);
 * `metrics` (may be NULL) gets a copy. validation_loss is the training loss (no split). */
dc_status dc_fusion_train(const dc_fusion_dataset *d, const dc_fusion_weights *init,
                          const dc_fusion_train_options *t, dc_fusion_weights **out,
                          dc_fusion_metrics *metrics);

/* Paired recall@1 of d under `w`: the share of a_i whose nearest b_j (cosine) is b_i. */
dc_status dc_fusion_recall_at_1(dc_fusion_weights *w, const dc_fusion_dataset *d, double *recall);

#endif

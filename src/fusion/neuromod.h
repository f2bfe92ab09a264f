/* Neuromodulation of the router (seed L26; methods §8): four levels in [0, 1] mapped to concrete,
 * clamped effects on one fusion call. The state comes from the caller (signals, explicit time
 * steps for decay), never from hidden global state or the wall clock.
 *
 *   level            effect                    formula                                   neutral 0.5
 *   serotonin (5HT)  top-k                     k0 + round(2·(5HT−½)·(E−k0))  for 5HT ≥ ½   k0
 *                                              k0 − round(2·(½−5HT)·(k0−1))  for 5HT < ½   (range 1..E)
 *   noradrenaline    gate temperature scale    2^(−κ·(NE−½)), κ = 2: high NE = sharper     1 (0.5..2)
 *   (NE)             (ranking never changes, only how decisive the weights are)
 *   focus            per-model weights         ×(1 + intensity) on the domain's models     1 (1..2)
 *   acetylcholine    strength of priors λ      λ = 2·(1 − ACh): ACh = 1 ignores priors     1 (0..2)
 *   (ACh)            adapt learning rate       η = η0·2^(κ_η·(ACh−½))
 *   dopamine (DA)    expert selection bias     bias_i = b_i · 2·DA (b learnt in adapt mode)  b = 0 ⇒ 0
 *
 * Decay: every level moves back to ½ and the focus intensity to 0 by e^(−rate·dt); values within
 * 1e-6 of the baseline snap to it, so a decayed state is exactly neutral again. */
#ifndef DC_FUSION_NEUROMOD_H
#define DC_FUSION_NEUROMOD_H

#include "fusion/fusemoe.h"

typedef struct dc_neuromod_state {
    float dopamine, serotonin, noradrenaline, acetylcholine;
} dc_neuromod_state;

typedef enum dc_focus_domain {
    DC_FOCUS_BROAD = 0, /* no model favoured */
    DC_FOCUS_SEMANTIC,  /* E1 */
    DC_FOCUS_TEMPORAL,  /* E2, E3, E4 */
    DC_FOCUS_CAUSAL,    /* E5 */
    DC_FOCUS_CODE,      /* E7 */
    DC_FOCUS_VISUAL,    /* E10 */
} dc_focus_domain;

const char *dc_focus_domain_name(dc_focus_domain d);
dc_status dc_focus_domain_parse(const char *s, dc_focus_domain *out);

typedef struct dc_neuromod_params {
    uint32_t num_experts;    /* E */
    uint32_t base_top_k;     /* k0 */
    float kappa_temperature; /* 2 */
    float decay_rate;        /* 0.1 per second */
    float bias_max;          /* 1: |b_i| ≤ bias_max */
    float bias_lr;           /* η0 = 0.1 */
    float kappa_lr;          /* 2 */
} dc_neuromod_params;

void dc_neuromod_params_default(dc_neuromod_params *p, uint32_t num_experts, uint32_t top_k);

typedef enum dc_neuromod_signal_kind {
    DC_SIGNAL_REWARD,      /* value in [−1, 1]: DA += 0.2·v (v > 0) or −= 0.1·|v| */
    DC_SIGNAL_UNCERTAINTY, /* value in [0, 1]: NE = value */
    DC_SIGNAL_FOCUS,       /* domain + intensity in [0, 1] */
    DC_SIGNAL_RESET,       /* levels to ½, focus off, biases to 0 */
} dc_neuromod_signal_kind;

typedef struct dc_neuromod_signal {
    dc_neuromod_signal_kind kind;
    float value;
    dc_focus_domain domain;
} dc_neuromod_signal;

typedef struct dc_neuromod dc_neuromod; /* thread-safe */

dc_status dc_neuromod_create(const dc_neuromod_params *p, dc_neuromod **out);
void dc_neuromod_destroy(dc_neuromod *n);
/* Levels must be finite (DC_ERR_INVALID_VALUE naming the level); they are clamped to [0, 1]. */
dc_status dc_neuromod_set_state(dc_neuromod *n, const dc_neuromod_state *s);
dc_status dc_neuromod_update(dc_neuromod *n, const dc_neuromod_state *delta);
void dc_neuromod_get_state(dc_neuromod *n, dc_neuromod_state *out);
dc_status dc_neuromod_signal_apply(dc_neuromod *n, const dc_neuromod_signal *s);
/* Moves the state towards the baseline over dt seconds (dt >= 0). */
dc_status dc_neuromod_decay(dc_neuromod *n, double dt);
/* The effects of the current state on one call (identity at the neutral state). */
void dc_neuromod_effects(dc_neuromod *n, dc_fusion_modulation *out);
/* λ for dc_prior_manager_apply. */
float dc_neuromod_prior_strength(dc_neuromod *n);
/* Adapt mode (explicit, never called by the forward): credits `feedback` minus its running
 * baseline to the experts a result selected; b_i moves by η(ACh)·δ and is clipped to ±bias_max.
 * The baseline is an EMA whose horizon grows with serotonin (γ = 1 − 2^−(4 + 8·5HT)). */
dc_status dc_neuromod_adapt(dc_neuromod *n, const uint8_t *selected, uint32_t k, float feedback);
/* The learnt biases b (not scaled by DA). */
void dc_neuromod_biases(dc_neuromod *n, float out[DC_NUM_EXPERTS]);

#endif

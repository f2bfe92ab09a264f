/* Embedding priors / context priming (seed L27): per-domain weight templates for the twelve
 * models, confidence-weighted aggregation of the active priors with a time to live, applied to
 * the fusion call as multipliers on the per-model block weights (which the gate, the experts and
 * S all see). Time is the caller's clock in seconds (never read here).
 *
 * Aggregation over the active priors P (now < created + ttl):
 *   avg_m = Σ_p c_p·w_{p,m} / Σ_p c_p,   β = 1 − Π_p (1 − c_p),   agg_m = (1 − β) + β·avg_m
 * No active prior gives agg = 1 (no effect). dc_prior_manager_apply multiplies the call's
 * model weights by agg_m^λ, λ = prior strength (dc_neuromod_prior_strength; 1 by default). */
#ifndef DC_FUSION_PRIORS_H
#define DC_FUSION_PRIORS_H

#include "fusion/fusemoe.h"

typedef enum dc_domain {
    DC_DOMAIN_NONE = 0,
    DC_DOMAIN_MEDICAL,
    DC_DOMAIN_LEGAL,
    DC_DOMAIN_TECHNICAL,
    DC_DOMAIN_SCIENTIFIC,
    DC_DOMAIN_FINANCIAL,
    DC_DOMAIN_CREATIVE,
    DC_DOMAIN_CONVERSATIONAL,
    DC_DOMAIN_CODE_DEVELOPMENT,
    DC_DOMAIN_DATA_ANALYSIS,
    DC_DOMAIN_COUNT
} dc_domain;

const char *dc_domain_name(dc_domain d); /* "medical", "code_development", ... */
dc_status dc_domain_parse(const char *s, dc_domain *out);
/* The template's 12 multipliers (E1..E12); all 1 for DC_DOMAIN_NONE; NULL out of range. */
const float *dc_domain_template(dc_domain d);

typedef struct dc_prior {
    float model_weights[DC_NUM_MODELS]; /* multipliers, 1 = neutral, each in [0, 10] */
    dc_domain domain;
    float confidence;                   /* (0, 1] */
    double ttl;                         /* seconds, > 0 */
    double created;                     /* caller's clock, seconds */
} dc_prior;

/* Builder: start from a domain template (or all 1), adjust, then build. The first invalid call
 * is remembered and reported by build. */
typedef struct dc_prior_builder {
    dc_prior p;
    dc_status err;
    char detail[160];
} dc_prior_builder;

void dc_prior_builder_init(dc_prior_builder *b);     /* weights 1, confidence 1, ttl 300 s */
void dc_prior_builder_domain(dc_prior_builder *b, dc_domain d); /* weights ← template */
void dc_prior_builder_boost(dc_prior_builder *b, dc_model_id m, float factor);    /* ≥ 1 */
void dc_prior_builder_suppress(dc_prior_builder *b, dc_model_id m, float factor); /* [0, 1] */
void dc_prior_builder_confidence(dc_prior_builder *b, float c);
void dc_prior_builder_ttl(dc_prior_builder *b, double seconds);
dc_status dc_prior_builder_build(dc_prior_builder *b, double now, dc_prior *out);

typedef struct dc_prior_manager dc_prior_manager; /* thread-safe */

dc_status dc_prior_manager_create(uint32_t max_priors, dc_prior_manager **out);
void dc_prior_manager_destroy(dc_prior_manager *pm);
/* Validates and adds; when full, the prior that expires first is replaced. */
dc_status dc_prior_manager_add(dc_prior_manager *pm, const dc_prior *p);
/* prime_for_domain: adds the domain's template with the given confidence and ttl. */
dc_status dc_prior_manager_prime(dc_prior_manager *pm, dc_domain d, float confidence, double ttl,
                                 double now);
void dc_prior_manager_clear(dc_prior_manager *pm);
/* Removes expired priors; returns how many. */
size_t dc_prior_manager_expire(dc_prior_manager *pm, double now);
size_t dc_prior_manager_active(dc_prior_manager *pm, double now);
/* Aggregated multipliers at `now` (all 1 with no active prior). */
void dc_prior_manager_weights(dc_prior_manager *pm, double now, float out[DC_NUM_MODELS]);
/* m->model_weights[i] *= agg_i^strength; nothing changes when no prior is active or strength 0. */
void dc_prior_manager_apply(dc_prior_manager *pm, double now, float strength,
                            dc_fusion_modulation *m);

#endif

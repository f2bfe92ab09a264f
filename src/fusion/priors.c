/* Embedding priors: domain templates, builder, manager with TTL and aggregation (priors.h). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "fusion/priors.h"

static const char *const domain_names[DC_DOMAIN_COUNT] = {
    "none",      "medical",  "legal",          "technical",        "scientific",
    "financial", "creative", "conversational", "code_development", "data_analysis"};

/* E1 semantic, E2 recent, E3 periodic, E4 positional, E5 causal, E6 sparse, E7 code, E8 graph,
 * E9 hdc, E10 multimodal, E11 entity, E12 late interaction. Medical and code development are
 * the seed's (L27); the others are ours, following the same idea: boost the models whose
 * signal the domain is about, damp the ones it rarely carries. */
static const float templates[DC_DOMAIN_COUNT][DC_NUM_MODELS] = {
    [DC_DOMAIN_NONE] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    [DC_DOMAIN_MEDICAL] = {1.3f, 1.0f, 1.0f, 1.0f, 1.1f, 0.8f, 0.5f, 1.0f, 1.0f, 0.9f, 1.4f, 0.9f},
    [DC_DOMAIN_LEGAL] = {1.3f, 1.0f, 0.9f, 1.1f, 1.3f, 1.2f, 0.5f, 1.0f, 1.0f, 0.6f, 1.3f, 1.1f},
    [DC_DOMAIN_TECHNICAL] = {1.1f, 1.0f, 1.0f, 1.0f, 1.0f, 1.2f, 1.2f, 1.1f, 1.0f, 0.8f, 1.1f, 1.0f},
    [DC_DOMAIN_SCIENTIFIC] = {1.2f, 0.9f, 0.9f, 1.0f, 1.3f, 1.1f, 0.8f, 1.0f, 1.0f, 0.9f, 1.2f, 1.1f},
    [DC_DOMAIN_FINANCIAL] = {1.1f, 1.3f, 1.2f, 1.1f, 1.2f, 1.0f, 0.6f, 1.0f, 1.0f, 0.7f, 1.3f, 1.0f},
    [DC_DOMAIN_CREATIVE] = {1.3f, 0.9f, 0.9f, 1.0f, 1.0f, 0.8f, 0.5f, 1.0f, 1.1f, 1.3f, 0.8f, 1.0f},
    [DC_DOMAIN_CONVERSATIONAL] = {1.2f, 1.3f, 1.0f, 1.2f, 1.0f, 0.9f, 0.6f, 1.1f, 1.0f, 0.9f, 1.0f, 1.1f},
    [DC_DOMAIN_CODE_DEVELOPMENT] = {0.8f, 1.0f, 0.8f, 1.0f, 1.1f, 1.3f, 1.5f, 1.2f, 1.0f, 0.6f, 0.9f, 1.0f},
    [DC_DOMAIN_DATA_ANALYSIS] = {1.0f, 1.0f, 1.1f, 1.0f, 1.2f, 1.1f, 1.2f, 1.0f, 1.0f, 0.7f, 1.1f, 1.0f},
};

const char *dc_domain_name(dc_domain d) {
    return (unsigned)d < DC_DOMAIN_COUNT ? domain_names[d] : "unknown";
}

dc_status dc_domain_parse(const char *s, dc_domain *out) {
    for (unsigned i = 0; s && i < DC_DOMAIN_COUNT; i++)
        if (!strcmp(s, domain_names[i])) {
            *out = (dc_domain)i;
            return DC_OK;
        }
    return dc_fail(DC_ERR_INVALID_VALUE,
                   "domain \"%s\" is not one of none, medical, legal, technical, scientific, "
                   "financial, creative, conversational, code_development, data_analysis",
                   s ? s : "");
}

const float *dc_domain_template(dc_domain d) {
    return (unsigned)d < DC_DOMAIN_COUNT ? templates[d] : NULL;
}

/* ---- builder ---- */

static void bfail(dc_prior_builder *b, dc_status s, const char *msg, double v) {
    if (b->err != DC_OK) return;
    b->err = s;
    snprintf(b->detail, sizeof b->detail, "prior builder: %s (%g)", msg, v);
}

void dc_prior_builder_init(dc_prior_builder *b) {
    memset(b, 0, sizeof *b);
    for (int m = 0; m < DC_NUM_MODELS; m++) b->p.model_weights[m] = 1.0f;
    b->p.confidence = 1.0f;
    b->p.ttl = 300.0;
}

void dc_prior_builder_domain(dc_prior_builder *b, dc_domain d) {
    const float *t = dc_domain_template(d);
    if (!t) {
        bfail(b, DC_ERR_INVALID_VALUE, "unknown domain", (double)d);
        return;
    }
    memcpy(b->p.model_weights, t, sizeof b->p.model_weights);
    b->p.domain = d;
}

void dc_prior_builder_boost(dc_prior_builder *b, dc_model_id m, float factor) {
    if ((unsigned)m >= DC_NUM_MODELS) {
        bfail(b, DC_ERR_INVALID_VALUE, "model id", (double)m);
        return;
    }
    if (!(factor >= 1.0f && factor <= 10.0f))
        {
        bfail(b, DC_ERR_INVALID_VALUE, "boost factor must be in [1, 10]", factor);
        return;
    }
    b->p.model_weights[m] = fminf(b->p.model_weights[m] * factor, 10.0f);
}

void dc_prior_builder_suppress(dc_prior_builder *b, dc_model_id m, float factor) {
    if ((unsigned)m >= DC_NUM_MODELS) {
        bfail(b, DC_ERR_INVALID_VALUE, "model id", (double)m);
        return;
    }
    if (!(factor >= 0.0f && factor <= 1.0f))
        {
        bfail(b, DC_ERR_INVALID_VALUE, "suppress factor must be in [0, 1]", factor);
        return;
    }
    b->p.model_weights[m] *= factor;
}

void dc_prior_builder_confidence(dc_prior_builder *b, float c) {
    if (!(c > 0.0f && c <= 1.0f))
        {
        bfail(b, DC_ERR_INVALID_VALUE, "confidence must be in (0, 1]", c);
        return;
    }
    b->p.confidence = c;
}

void dc_prior_builder_ttl(dc_prior_builder *b, double seconds) {
    if (!(seconds > 0.0) || !isfinite(seconds))
        {
        bfail(b, DC_ERR_INVALID_VALUE, "ttl must be finite and > 0 seconds", seconds);
        return;
    }
    b->p.ttl = seconds;
}

static dc_status check_prior(const dc_prior *p) {
    for (int m = 0; m < DC_NUM_MODELS; m++)
        if (!(p->model_weights[m] >= 0.0f && p->model_weights[m] <= 10.0f))
            return dc_fail(DC_ERR_INVALID_VALUE, "prior model_weights[%d] (%g) must be in [0, 10]",
                           m, (double)p->model_weights[m]);
    if (!(p->confidence > 0.0f && p->confidence <= 1.0f))
        return dc_fail(DC_ERR_INVALID_VALUE, "prior confidence (%g) must be in (0, 1]",
                       (double)p->confidence);
    if (!(p->ttl > 0.0) || !isfinite(p->ttl) || !isfinite(p->created))
        return dc_fail(DC_ERR_INVALID_VALUE, "prior ttl (%g) must be > 0 and times finite", p->ttl);
    if ((unsigned)p->domain >= DC_DOMAIN_COUNT)
        return dc_fail(DC_ERR_INVALID_VALUE, "prior domain %d is unknown", (int)p->domain);
    return DC_OK;
}

dc_status dc_prior_builder_build(dc_prior_builder *b, double now, dc_prior *out) {
    if (b->err != DC_OK) return dc_fail(b->err, "%s", b->detail);
    b->p.created = now;
    dc_status st = check_prior(&b->p);
    if (st != DC_OK) return st;
    *out = b->p;
    return DC_OK;
}

/* ---- manager ---- */

struct dc_prior_manager {
    pthread_rwlock_t lock;
    dc_prior *items;
    uint32_t n, cap;
};

dc_status dc_prior_manager_create(uint32_t max_priors, dc_prior_manager **out) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "prior manager: NULL output");
    *out = NULL;
    if (max_priors == 0 || max_priors > 4096)
        return dc_fail(DC_ERR_CONFIG, "prior manager: max_priors (%u) must be 1..4096", max_priors);
    dc_prior_manager *pm = calloc(1, sizeof *pm);
    if (pm) pm->items = calloc(max_priors, sizeof *pm->items);
    if (!pm || !pm->items) {
        if (pm) free(pm);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "prior manager");
    }
    pthread_rwlock_init(&pm->lock, NULL);
    pm->cap = max_priors;
    *out = pm;
    return DC_OK;
}

void dc_prior_manager_destroy(dc_prior_manager *pm) {
    if (!pm) return;
    pthread_rwlock_destroy(&pm->lock);
    free(pm->items);
    free(pm);
}

dc_status dc_prior_manager_add(dc_prior_manager *pm, const dc_prior *p) {
    if (!pm || !p) return dc_fail(DC_ERR_INVALID_ARGUMENT, "prior manager: NULL argument");
    dc_status st = check_prior(p);
    if (st != DC_OK) return st;
    pthread_rwlock_wrlock(&pm->lock);
    uint32_t at = pm->n;
    if (pm->n == pm->cap) {
        at = 0;
        for (uint32_t i = 1; i < pm->n; i++)
            if (pm->items[i].created + pm->items[i].ttl < pm->items[at].created + pm->items[at].ttl)
                at = i;
    } else {
        pm->n++;
    }
    pm->items[at] = *p;
    pthread_rwlock_unlock(&pm->lock);
    return DC_OK;
}

dc_status dc_prior_manager_prime(dc_prior_manager *pm, dc_domain d, float confidence, double ttl,
                                 double now) {
    dc_prior_builder b;
    dc_prior_builder_init(&b);
    dc_prior_builder_domain(&b, d);
    dc_prior_builder_confidence(&b, confidence);
    dc_prior_builder_ttl(&b, ttl);
    dc_prior p;
    dc_status st = dc_prior_builder_build(&b, now, &p);
    return st != DC_OK ? st : dc_prior_manager_add(pm, &p);
}

void dc_prior_manager_clear(dc_prior_manager *pm) {
    pthread_rwlock_wrlock(&pm->lock);
    pm->n = 0;
    pthread_rwlock_unlock(&pm->lock);
}

static bool active(const dc_prior *p, double now) { return now < p->created + p->ttl; }

size_t dc_prior_manager_expire(dc_prior_manager *pm, double now) {
    pthread_rwlock_wrlock(&pm->lock);
    uint32_t keep = 0;
    for (uint32_t i = 0; i < pm->n; i++)
        if (active(&pm->items[i], now)) pm->items[keep++] = pm->items[i];
    size_t removed = pm->n - keep;
    pm->n = keep;
    pthread_rwlock_unlock(&pm->lock);
    return removed;
}

size_t dc_prior_manager_active(dc_prior_manager *pm, double now) {
    size_t c = 0;
    pthread_rwlock_rdlock(&pm->lock);
    for (uint32_t i = 0; i < pm->n; i++) c += active(&pm->items[i], now);
    pthread_rwlock_unlock(&pm->lock);
    return c;
}

/* false (and out all 1) when no prior is active */
static bool aggregate(dc_prior_manager *pm, double now, float out[DC_NUM_MODELS]) {
    double sum[DC_NUM_MODELS] = {0}, csum = 0.0, none = 1.0;
    pthread_rwlock_rdlock(&pm->lock);
    for (uint32_t i = 0; i < pm->n; i++) {
        const dc_prior *p = &pm->items[i];
        if (!active(p, now)) continue; /* expired priors stop acting even before expire() */
        for (int m = 0; m < DC_NUM_MODELS; m++) sum[m] += (double)p->confidence * p->model_weights[m];
        csum += p->confidence;
        none *= 1.0 - p->confidence;
    }
    pthread_rwlock_unlock(&pm->lock);
    for (int m = 0; m < DC_NUM_MODELS; m++) out[m] = 1.0f;
    if (csum <= 0.0) return false;
    double beta = 1.0 - none;
    for (int m = 0; m < DC_NUM_MODELS; m++)
        out[m] = (float)((1.0 - beta) + beta * sum[m] / csum);
    return true;
}

void dc_prior_manager_weights(dc_prior_manager *pm, double now, float out[DC_NUM_MODELS]) {
    aggregate(pm, now, out);
}

void dc_prior_manager_apply(dc_prior_manager *pm, double now, float strength,
                            dc_fusion_modulation *m) {
    float agg[DC_NUM_MODELS];
    if (!(strength > 0.0f) || !aggregate(pm, now, agg)) return;
    if (strength > 4.0f) strength = 4.0f;
    for (int i = 0; i < DC_NUM_MODELS; i++)
        m->model_weights[i] *= strength == 1.0f ? agg[i] : powf(agg[i], strength);
}

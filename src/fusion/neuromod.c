/* Neuromodulation controller: state, signals, decay, effects, adapt mode (see neuromod.h). */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "fusion/neuromod.h"

#define BASELINE 0.5f
#define SNAP 1e-6f

struct dc_neuromod {
    pthread_mutex_t lock;
    dc_neuromod_params p;
    dc_neuromod_state s;
    dc_focus_domain focus;
    float focus_intensity;
    float bias[DC_NUM_EXPERTS];
    float feedback_baseline;
    bool has_baseline;
};

static const char *const focus_names[] = {"broad", "semantic", "temporal",
                                          "causal", "code",     "visual"};

const char *dc_focus_domain_name(dc_focus_domain d) {
    return (unsigned)d < 6 ? focus_names[d] : "unknown";
}

dc_status dc_focus_domain_parse(const char *s, dc_focus_domain *out) {
    for (unsigned i = 0; s && i < 6; i++)
        if (!strcmp(s, focus_names[i])) {
            *out = (dc_focus_domain)i;
            return DC_OK;
        }
    return dc_fail(DC_ERR_INVALID_VALUE,
                   "focus domain \"%s\" is not broad, semantic, temporal, causal, code or visual",
                   s ? s : "");
}

void dc_neuromod_params_default(dc_neuromod_params *p, uint32_t num_experts, uint32_t top_k) {
    p->num_experts = num_experts;
    p->base_top_k = top_k;
    p->kappa_temperature = 2.0f;
    p->decay_rate = 0.1f;
    p->bias_max = 1.0f;
    p->bias_lr = 0.1f;
    p->kappa_lr = 2.0f;
}

static float clamp01(float v) { return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v; }

dc_status dc_neuromod_create(const dc_neuromod_params *p, dc_neuromod **out) {
    if (!p || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "neuromod: NULL argument");
    *out = NULL;
    if (p->num_experts < 1 || p->num_experts > DC_NUM_EXPERTS || p->base_top_k < 1 ||
        p->base_top_k > p->num_experts)
        return dc_fail(DC_ERR_CONFIG, "neuromod: top-k %u with %u experts is out of range",
                       p->base_top_k, p->num_experts);
    if (!(p->kappa_temperature >= 0.0f && p->kappa_temperature <= 8.0f) ||
        !(p->decay_rate >= 0.0f) || !isfinite(p->decay_rate) || !(p->bias_max >= 0.0f) ||
        !isfinite(p->bias_max) || !(p->bias_lr >= 0.0f) || !isfinite(p->bias_lr) ||
        !(p->kappa_lr >= 0.0f && p->kappa_lr <= 8.0f))
        return dc_fail(DC_ERR_CONFIG, "neuromod: a rate or gain is negative, too large or NaN");
    dc_neuromod *n = calloc(1, sizeof *n);
    if (!n) return dc_fail(DC_ERR_OUT_OF_MEMORY, "neuromod");
    pthread_mutex_init(&n->lock, NULL);
    n->p = *p;
    n->s = (dc_neuromod_state){BASELINE, BASELINE, BASELINE, BASELINE};
    *out = n;
    return DC_OK;
}

void dc_neuromod_destroy(dc_neuromod *n) {
    if (!n) return;
    pthread_mutex_destroy(&n->lock);
    free(n);
}

static dc_status check_levels(const dc_neuromod_state *s, const char *what) {
    const float v[4] = {s->dopamine, s->serotonin, s->noradrenaline, s->acetylcholine};
    static const char *const names[4] = {"dopamine", "serotonin", "noradrenaline",
                                         "acetylcholine"};
    for (int i = 0; i < 4; i++)
        if (!isfinite(v[i]))
            return dc_fail(DC_ERR_INVALID_VALUE, "neuromod %s: %s is not finite", what, names[i]);
    return DC_OK;
}

dc_status dc_neuromod_set_state(dc_neuromod *n, const dc_neuromod_state *s) {
    if (!n || !s) return dc_fail(DC_ERR_INVALID_ARGUMENT, "neuromod: NULL argument");
    dc_status st = check_levels(s, "state");
    if (st != DC_OK) return st;
    pthread_mutex_lock(&n->lock);
    n->s = (dc_neuromod_state){clamp01(s->dopamine), clamp01(s->serotonin),
                               clamp01(s->noradrenaline), clamp01(s->acetylcholine)};
    pthread_mutex_unlock(&n->lock);
    return DC_OK;
}

dc_status dc_neuromod_update(dc_neuromod *n, const dc_neuromod_state *d) {
    if (!n || !d) return dc_fail(DC_ERR_INVALID_ARGUMENT, "neuromod: NULL argument");
    dc_status st = check_levels(d, "update");
    if (st != DC_OK) return st;
    pthread_mutex_lock(&n->lock);
    n->s.dopamine = clamp01(n->s.dopamine + d->dopamine);
    n->s.serotonin = clamp01(n->s.serotonin + d->serotonin);
    n->s.noradrenaline = clamp01(n->s.noradrenaline + d->noradrenaline);
    n->s.acetylcholine = clamp01(n->s.acetylcholine + d->acetylcholine);
    pthread_mutex_unlock(&n->lock);
    return DC_OK;
}

void dc_neuromod_get_state(dc_neuromod *n, dc_neuromod_state *out) {
    pthread_mutex_lock(&n->lock);
    *out = n->s;
    pthread_mutex_unlock(&n->lock);
}

dc_status dc_neuromod_signal_apply(dc_neuromod *n, const dc_neuromod_signal *s) {
    if (!n || !s) return dc_fail(DC_ERR_INVALID_ARGUMENT, "neuromod: NULL argument");
    if (!isfinite(s->value))
        return dc_fail(DC_ERR_INVALID_VALUE, "neuromod signal value is not finite");
    float v = s->value;
    pthread_mutex_lock(&n->lock);
    switch (s->kind) {
    case DC_SIGNAL_REWARD:
        v = v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v;
        n->s.dopamine = clamp01(n->s.dopamine + (v > 0.0f ? 0.2f * v : 0.1f * v));
        break;
    case DC_SIGNAL_UNCERTAINTY:
        n->s.noradrenaline = clamp01(v);
        break;
    case DC_SIGNAL_FOCUS:
        if ((unsigned)s->domain > DC_FOCUS_VISUAL) {
            pthread_mutex_unlock(&n->lock);
            return dc_fail(DC_ERR_INVALID_VALUE, "neuromod focus domain %d is unknown",
                           (int)s->domain);
        }
        n->focus = s->domain;
        n->focus_intensity = clamp01(v);
        break;
    case DC_SIGNAL_RESET:
        n->s = (dc_neuromod_state){BASELINE, BASELINE, BASELINE, BASELINE};
        n->focus = DC_FOCUS_BROAD;
        n->focus_intensity = 0.0f;
        memset(n->bias, 0, sizeof n->bias);
        n->has_baseline = false;
        n->feedback_baseline = 0.0f;
        break;
    default:
        pthread_mutex_unlock(&n->lock);
        return dc_fail(DC_ERR_INVALID_VALUE, "neuromod signal kind %d is unknown", (int)s->kind);
    }
    pthread_mutex_unlock(&n->lock);
    return DC_OK;
}

static float toward(float v, float base, float f) {
    float r = base + (v - base) * f;
    return fabsf(r - base) < SNAP ? base : r;
}

dc_status dc_neuromod_decay(dc_neuromod *n, double dt) {
    if (!n) return dc_fail(DC_ERR_INVALID_ARGUMENT, "neuromod: NULL");
    if (!(dt >= 0.0) || !isfinite(dt))
        return dc_fail(DC_ERR_INVALID_VALUE, "neuromod decay: dt (%g) must be finite and >= 0", dt);
    pthread_mutex_lock(&n->lock);
    float f = (float)exp(-(double)n->p.decay_rate * dt);
    n->s.dopamine = toward(n->s.dopamine, BASELINE, f);
    n->s.serotonin = toward(n->s.serotonin, BASELINE, f);
    n->s.noradrenaline = toward(n->s.noradrenaline, BASELINE, f);
    n->s.acetylcholine = toward(n->s.acetylcholine, BASELINE, f);
    n->focus_intensity = toward(n->focus_intensity, 0.0f, f);
    pthread_mutex_unlock(&n->lock);
    return DC_OK;
}

/* Models each focus domain favours (bitmask over E1..E12). */
static const uint32_t focus_models[6] = {
    0,                                                  /* broad */
    1u << DC_MODEL_SEMANTIC,                            /* semantic */
    (1u << DC_MODEL_TEMPORAL_RECENT) | (1u << DC_MODEL_TEMPORAL_PERIODIC) |
        (1u << DC_MODEL_TEMPORAL_POSITIONAL),           /* temporal */
    1u << DC_MODEL_CAUSAL,                              /* causal */
    1u << DC_MODEL_CODE,                                /* code */
    1u << DC_MODEL_MULTIMODAL,                          /* visual */
};

void dc_neuromod_effects(dc_neuromod *n, dc_fusion_modulation *out) {
    dc_fusion_modulation_neutral(out);
    pthread_mutex_lock(&n->lock);
    const dc_neuromod_state s = n->s;
    const uint32_t E = n->p.num_experts, k0 = n->p.base_top_k;
    if (s.serotonin != BASELINE) {
        long k;
        if (s.serotonin > BASELINE)
            k = (long)k0 + lroundf(2.0f * (s.serotonin - BASELINE) * (float)(E - k0));
        else
            k = (long)k0 - lroundf(2.0f * (BASELINE - s.serotonin) * (float)(k0 - 1));
        out->top_k = (uint32_t)(k < 1 ? 1 : k > (long)E ? (long)E : k);
        if (out->top_k == k0) out->top_k = 0;
    }
    if (s.noradrenaline != BASELINE)
        out->temperature_scale =
            (float)exp2(-(double)n->p.kappa_temperature * (s.noradrenaline - BASELINE));
    if (n->focus_intensity > 0.0f)
        for (int m = 0; m < DC_NUM_MODELS; m++)
            if (focus_models[n->focus] & (1u << m)) out->model_weights[m] = 1.0f + n->focus_intensity;
    for (uint32_t i = 0; i < E; i++) out->expert_bias[i] = n->bias[i] * 2.0f * s.dopamine;
    pthread_mutex_unlock(&n->lock);
}

float dc_neuromod_prior_strength(dc_neuromod *n) {
    pthread_mutex_lock(&n->lock);
    float l = 2.0f * (1.0f - n->s.acetylcholine);
    pthread_mutex_unlock(&n->lock);
    return l;
}

dc_status dc_neuromod_adapt(dc_neuromod *n, const uint8_t *selected, uint32_t k, float feedback) {
    if (!n || (k && !selected)) return dc_fail(DC_ERR_INVALID_ARGUMENT, "neuromod adapt: NULL");
    if (!isfinite(feedback))
        return dc_fail(DC_ERR_INVALID_VALUE, "neuromod adapt: feedback is not finite");
    for (uint32_t j = 0; j < k; j++)
        if (selected[j] >= n->p.num_experts)
            return dc_fail(DC_ERR_INVALID_VALUE, "neuromod adapt: expert %u of %u", selected[j],
                           n->p.num_experts);
    pthread_mutex_lock(&n->lock);
    if (!n->has_baseline) {
        n->has_baseline = true;
        n->feedback_baseline = 0.0f;
    }
    float delta = feedback - n->feedback_baseline;
    double gamma = 1.0 - exp2(-(4.0 + 8.0 * n->s.serotonin));
    n->feedback_baseline = (float)(gamma * n->feedback_baseline + (1.0 - gamma) * feedback);
    float eta = n->p.bias_lr * (float)exp2((double)n->p.kappa_lr * (n->s.acetylcholine - BASELINE));
    for (uint32_t j = 0; j < k; j++) {
        float *b = &n->bias[selected[j]];
        *b += eta * delta;
        if (*b > n->p.bias_max) *b = n->p.bias_max;
        if (*b < -n->p.bias_max) *b = -n->p.bias_max;
    }
    n->s.dopamine = clamp01(n->s.dopamine + (delta > 0.0f ? 0.2f * fminf(delta, 1.0f)
                                                          : 0.1f * fmaxf(delta, -1.0f)));
    pthread_mutex_unlock(&n->lock);
    return DC_OK;
}

void dc_neuromod_biases(dc_neuromod *n, float out[DC_NUM_EXPERTS]) {
    pthread_mutex_lock(&n->lock);
    memcpy(out, n->bias, sizeof n->bias);
    pthread_mutex_unlock(&n->lock);
}

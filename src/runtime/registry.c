/* Model registry: load once under concurrency, memory budget, unload, hot swap. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/registry.h"

#include "models/pretrained.h"

typedef struct slot {
    dc_slot_state state;
    bool cfg_enabled;          /* enabled in the configuration */
    dc_model_config cfg;
    dc_rt_model *cur;          /* holds one reference while installed */
    dc_rt_model *draining;     /* swapped-out instance still borrowed, or NULL */
    dc_hash128 version;
    uint64_t load_count, unload_count, load_failures, swap_count, last_load_us;
    uint64_t failed_at_ns;
    dc_status last_error;
    char last_detail[DC_RT_DETAIL_MAX];
    char reason[256];
    dc_swap_phase swap_phase;
    bool swapping;
} slot;

struct dc_registry {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* broadcast on every state change */
    slot s[DC_NUM_MODELS];
    dc_registry_options opt;
    char models_dir[DC_CONFIG_PATH_MAX];
    uint64_t mem_used, mem_peak;
    uint32_t loads_running;
    uint64_t acquire_hits, loads, unloads, swaps;
};

const char *dc_slot_state_name(dc_slot_state s) {
    static const char *const n[] = {"unavailable", "unloaded", "loading", "loaded", "failed"};
    return (unsigned)s < 5 ? n[s] : "unknown";
}

const char *dc_swap_phase_name(dc_swap_phase p) {
    static const char *const n[] = {"none",     "loading",  "validating", "swapping",
                                    "draining", "complete", "failed"};
    return (unsigned)p < 7 ? n[p] : "unknown";
}

dc_status dc_registry_create(const dc_config *cfg, const dc_registry_options *opt,
                             const char (*reasons)[256], dc_registry **out) {
    if (!cfg || !opt || !opt->factory || !out)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "registry: NULL config, options or factory");
    dc_registry *r = calloc(1, sizeof *r);
    if (!r) return dc_fail(DC_ERR_OUT_OF_MEMORY, "registry");
    if (pthread_mutex_init(&r->mu, NULL) != 0 || dc_rt_cond_init(&r->cv) != 0) {
        free(r);
        return dc_fail(DC_ERR_INTERNAL, "registry: cannot create a mutex");
    }
    r->opt = *opt;
    if (!r->opt.max_concurrent_loads) r->opt.max_concurrent_loads = 1;
    snprintf(r->models_dir, sizeof r->models_dir, "%s", cfg->models.models_dir);
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        slot *s = &r->s[i];
        s->cfg = cfg->models.model[i];
        s->cfg_enabled = s->cfg.enabled;
        bool supported = (opt->factory->supported_mask >> i) & 1u;
        s->state = s->cfg_enabled && supported ? DC_SLOT_UNLOADED : DC_SLOT_UNAVAILABLE;
        if (!s->cfg_enabled)
            snprintf(s->reason, sizeof s->reason, "disabled (models.%s.enabled = false)",
                     dc_model_info_get((dc_model_id)i)->name);
        else if (!supported)
            snprintf(s->reason, sizeof s->reason, "%s",
                     reasons && reasons[i][0] ? reasons[i] : "the factory cannot create it");
        s->version = dc_registry_config_version((dc_model_id)i, &s->cfg, r->models_dir);
    }
    *out = r;
    return DC_OK;
}

static void model_free(dc_registry *r, dc_rt_model *m) {
    (void)r;
    dc_model_destroy(m->model);
    free(m);
}

void dc_registry_destroy(dc_registry *r) {
    if (!r) return;
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        dc_rt_model *m = r->s[i].cur;
        if (m) {
            if (m->refs != 1)
                dc_rt_log(r->opt.log, DC_RT_LOG_ERROR,
                          "registry destroyed while %s is borrowed %u time(s)",
                          dc_model_info_get(m->id)->label, m->refs - 1);
            model_free(r, m);
        }
    }
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

bool dc_registry_available(const dc_registry *r, dc_model_id id) {
    return r && (unsigned)id < DC_NUM_MODELS && r->s[id].state != DC_SLOT_UNAVAILABLE;
}

uint32_t dc_registry_available_mask(const dc_registry *r) {
    uint32_t m = 0;
    dc_registry *rw = (dc_registry *)r;
    pthread_mutex_lock(&rw->mu);
    for (int i = 0; i < DC_NUM_MODELS; i++)
        if (r->s[i].state != DC_SLOT_UNAVAILABLE) m |= 1u << i;
    pthread_mutex_unlock(&rw->mu);
    return m;
}

bool dc_registry_is_loaded(dc_registry *r, dc_model_id id) {
    if (!r || (unsigned)id >= DC_NUM_MODELS) return false;
    pthread_mutex_lock(&r->mu);
    bool l = r->s[id].state == DC_SLOT_LOADED;
    pthread_mutex_unlock(&r->mu);
    return l;
}

uint32_t dc_registry_loaded_mask(dc_registry *r) {
    uint32_t m = 0;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < DC_NUM_MODELS; i++)
        if (r->s[i].state == DC_SLOT_LOADED) m |= 1u << i;
    pthread_mutex_unlock(&r->mu);
    return m;
}

uint32_t dc_registry_snapshot(dc_registry *r, dc_hash128 versions[DC_NUM_MODELS]) {
    uint32_t m = 0;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        if (r->s[i].state != DC_SLOT_UNAVAILABLE) m |= 1u << i;
        versions[i] = r->s[i].version;
    }
    pthread_mutex_unlock(&r->mu);
    return m;
}

dc_hash128 dc_registry_version(dc_registry *r, dc_model_id id) {
    dc_hash128 v = {0, 0};
    if (!r || (unsigned)id >= DC_NUM_MODELS) return v;
    pthread_mutex_lock(&r->mu);
    v = r->s[id].version;
    pthread_mutex_unlock(&r->mu);
    return v;
}

/* Drops one reference; frees the instance (outside the lock) when it was the last. */
static void unref_locked(dc_registry *r, dc_rt_model *m, dc_rt_model **to_free) {
    *to_free = NULL;
    if (--m->refs > 0) return;
    r->mem_used -= m->bytes < r->mem_used ? m->bytes : r->mem_used;
    slot *s = &r->s[m->id];
    if (s->draining == m) s->draining = NULL;
    *to_free = m;
    pthread_cond_broadcast(&r->cv);
}

void dc_registry_release(dc_registry *r, dc_rt_model *m) {
    if (!r || !m) return;
    dc_rt_model *f = NULL;
    pthread_mutex_lock(&r->mu);
    unref_locked(r, m, &f);
    pthread_mutex_unlock(&r->mu);
    if (f) model_free(r, f);
}

static dc_status budget_fail(dc_registry *r, dc_model_id id, uint64_t need) {
    return dc_fail(DC_ERR_MEMORY_BUDGET_EXCEEDED,
                   "%s (%s) needs about %" PRIu64 " MiB but %" PRIu64 " of the %" PRIu64
                   " MiB memory budget are in use",
                   dc_model_info_get(id)->label, dc_model_info_get(id)->name, need >> 20,
                   r->mem_used >> 20, r->opt.memory_budget_bytes >> 20);
}

static bool fits_locked(const dc_registry *r, uint64_t bytes) {
    return !r->opt.memory_budget_bytes || (r->mem_used <= r->opt.memory_budget_bytes &&
                                           bytes <= r->opt.memory_budget_bytes - r->mem_used);
}

/* Creates and loads an instance from cfg, charging `reserved` bytes meanwhile; on success the
 * charge becomes the model's measured size, on failure it is given back. Called without the
 * lock. */
static dc_status build_model(dc_registry *r, dc_model_id id, const dc_model_config *cfg,
                             uint64_t reserved, dc_rt_model **out) {
    *out = NULL;
    dc_model *m = NULL;
    dc_status st = dc_model_factory_create(r->opt.factory, id, cfg, &m);
    if (st == DC_OK) st = dc_model_load(m);
    dc_rt_model *rm = NULL;
    if (st == DC_OK && !(rm = calloc(1, sizeof *rm)))
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "registry entry");
    if (st != DC_OK) {
        dc_model_destroy(m);
        pthread_mutex_lock(&r->mu);
        r->mem_used -= reserved;
        pthread_mutex_unlock(&r->mu);
        return st;
    }
    rm->model = m;
    rm->id = id;
    rm->version = dc_registry_config_version(id, cfg, r->models_dir);
    rm->builtin_pretrained = r->opt.factory_is_builtin &&
                             dc_model_info_get(id)->kind == DC_MODEL_KIND_PRETRAINED;
    if (rm->builtin_pretrained) { /* only the encoders have one; the others tokenise alone */
        rm->tok_shared = dc_pretrained_tokenizer_source(m, rm->tok_dir, sizeof rm->tok_dir,
                                                        &rm->tok_fp) == DC_OK;
        if (!rm->tok_shared) dc_error_clear();
    }
    uint64_t actual = dc_model_memory_usage(m);
    rm->bytes = actual ? actual : reserved;
    /* the estimate was a reservation; charge what the model really holds */
    pthread_mutex_lock(&r->mu);
    r->mem_used = r->mem_used - reserved + rm->bytes;
    bool over = r->opt.memory_budget_bytes && r->mem_used > r->opt.memory_budget_bytes;
    if (over) r->mem_used -= rm->bytes;
    else if (r->mem_used > r->mem_peak) r->mem_peak = r->mem_used;
    pthread_mutex_unlock(&r->mu);
    if (over) {
        uint64_t b = rm->bytes;
        dc_model_destroy(m);
        free(rm);
        pthread_mutex_lock(&r->mu);
        st = budget_fail(r, id, b);
        pthread_mutex_unlock(&r->mu);
        return dc_fail_context(st, "after loading");
    }
    *out = rm;
    return DC_OK;
}

static void record_failure_locked(slot *s, dc_status st) {
    s->last_error = st;
    dc_rt_capture_detail(s->last_detail, sizeof s->last_detail);
}

dc_status dc_registry_acquire(dc_registry *r, dc_model_id id, bool load, dc_rt_model **out) {
    if (!r || !out || (unsigned)id >= DC_NUM_MODELS)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "registry acquire: bad arguments");
    *out = NULL;
    const dc_model_info *info = dc_model_info_get(id);
    slot *s = &r->s[id];
    pthread_mutex_lock(&r->mu);
    for (;;) {
        if (s->state == DC_SLOT_UNAVAILABLE) {
            dc_status st = dc_fail(DC_ERR_MODEL_NOT_FOUND, "%s (%s) is not available: %s",
                                   info->label, info->name, s->reason);
            pthread_mutex_unlock(&r->mu);
            return st;
        }
        if (s->state == DC_SLOT_LOADED) {
            s->cur->refs++;
            r->acquire_hits++;
            *out = s->cur;
            pthread_mutex_unlock(&r->mu);
            return DC_OK;
        }
        if (s->state == DC_SLOT_LOADING) {
            pthread_cond_wait(&r->cv, &r->mu);
            continue;
        }
        if (s->state == DC_SLOT_FAILED &&
            dc_rt_now_ns() - s->failed_at_ns < (uint64_t)r->opt.load_retry_ms * 1000000ull) {
            dc_status st = dc_fail(s->last_error, "%s (%s) failed to load: %s", info->label,
                                   info->name, s->last_detail);
            pthread_mutex_unlock(&r->mu);
            return st;
        }
        if (!load) {
            pthread_mutex_unlock(&r->mu);
            return dc_fail(DC_ERR_NOT_INITIALIZED, "%s (%s) is not loaded", info->label,
                           info->name);
        }
        break;
    }
    /* this thread loads it; the others wait on LOADING */
    dc_slot_state prev = s->state;
    s->state = DC_SLOT_LOADING;
    while (r->loads_running >= r->opt.max_concurrent_loads) pthread_cond_wait(&r->cv, &r->mu);
    uint64_t est = dc_model_factory_estimate_memory(r->opt.factory, id);
    if (!fits_locked(r, est)) {
        dc_status st = budget_fail(r, id, est);
        record_failure_locked(s, st);
        s->state = prev == DC_SLOT_FAILED ? DC_SLOT_FAILED : DC_SLOT_UNLOADED;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        return st;
    }
    r->mem_used += est;
    r->loads_running++;
    dc_model_config cfg = s->cfg;
    pthread_mutex_unlock(&r->mu);

    uint64_t t0 = dc_rt_now_ns();
    dc_rt_model *m = NULL;
    dc_status st = build_model(r, id, &cfg, est, &m);
    uint64_t dt = dc_rt_now_ns() - t0;

    pthread_mutex_lock(&r->mu);
    r->loads_running--;
    if (st != DC_OK) {
        record_failure_locked(s, st);
        s->load_failures++;
        /* a budget refusal is not sticky: memory may be freed later */
        s->state = st == DC_ERR_MEMORY_BUDGET_EXCEEDED ? DC_SLOT_UNLOADED : DC_SLOT_FAILED;
        s->failed_at_ns = dc_rt_now_ns();
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        dc_rt_log(r->opt.log, DC_RT_LOG_WARN, "loading %s (%s) failed: %s", info->label,
                  info->name, dc_error_detail());
        return st;
    }
    m->refs = 2; /* the slot's and the caller's */
    s->cur = m;
    s->version = m->version;
    s->state = DC_SLOT_LOADED;
    s->load_count++;
    s->last_load_us = dt / 1000;
    s->last_error = DC_OK;
    s->last_detail[0] = 0;
    r->loads++;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    dc_rt_log(r->opt.log, DC_RT_LOG_INFO, "loaded %s (%s) in %.1f ms, %" PRIu64 " MiB",
              info->label, info->name, (double)dt / 1e6, m->bytes >> 20);
    *out = m;
    return DC_OK;
}

dc_status dc_registry_load(dc_registry *r, dc_model_id id) {
    dc_rt_model *m = NULL;
    dc_status st = dc_registry_acquire(r, id, true, &m);
    if (st == DC_OK) dc_registry_release(r, m);
    return st;
}

typedef struct load_job {
    dc_registry *r;
    dc_model_id id;
    dc_status st;
    char detail[DC_RT_DETAIL_MAX];
} load_job;

static void *load_thread(void *p) {
    load_job *j = p;
    j->st = dc_registry_load(j->r, j->id);
    if (j->st != DC_OK) dc_rt_capture_detail(j->detail, sizeof j->detail);
    return NULL;
}

dc_status dc_registry_load_all(dc_registry *r, uint32_t mask) {
    load_job jobs[DC_NUM_MODELS];
    pthread_t th[DC_NUM_MODELS];
    bool started[DC_NUM_MODELS] = {false};
    mask &= dc_registry_available_mask(r);
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        jobs[i] = (load_job){r, (dc_model_id)i, DC_OK, ""};
        if (!((mask >> i) & 1u)) continue;
        if (pthread_create(&th[i], NULL, load_thread, &jobs[i]) == 0) started[i] = true;
        else load_thread(&jobs[i]); /* no thread: load inline */
    }
    dc_status first = DC_OK;
    const char *first_detail = "";
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        if (started[i]) pthread_join(th[i], NULL);
        if (jobs[i].st != DC_OK && first == DC_OK) {
            first = jobs[i].st;
            first_detail = jobs[i].detail;
        }
    }
    if (first != DC_OK) return dc_fail(first, "%s", first_detail);
    return DC_OK;
}

dc_status dc_registry_unload(dc_registry *r, dc_model_id id) {
    if (!r || (unsigned)id >= DC_NUM_MODELS)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "registry unload: bad arguments");
    slot *s = &r->s[id];
    dc_rt_model *f = NULL;
    pthread_mutex_lock(&r->mu);
    while (s->state == DC_SLOT_LOADING) pthread_cond_wait(&r->cv, &r->mu);
    if (s->state == DC_SLOT_LOADED) {
        dc_rt_model *m = s->cur;
        s->cur = NULL;
        m->retired = true;
        s->state = DC_SLOT_UNLOADED;
        s->unload_count++;
        r->unloads++;
        unref_locked(r, m, &f);
        pthread_cond_broadcast(&r->cv);
    } else if (s->state == DC_SLOT_FAILED) {
        s->state = DC_SLOT_UNLOADED; /* lets the next acquire retry at once */
    }
    pthread_mutex_unlock(&r->mu);
    if (f) model_free(r, f);
    return DC_OK;
}

/* A test input the model accepts, for swap validation. */
static bool validation_input(dc_model_id id, dc_input *in) {
    static const char text[] = "dodeca hot swap validation: the quick brown fox";
    if (dc_model_accepts(id, DC_INPUT_TEXT)) *in = dc_input_text(text, sizeof text - 1, DC_ROLE_PASSAGE);
    else if (dc_model_accepts(id, DC_INPUT_CODE)) *in = dc_input_code(text, sizeof text - 1, NULL);
    else return false;
    in->has_t_event = true;
    in->t_event = 1700000000.0;
    in->has_t_ref = true;
    in->t_ref = 1700003600.0;
    return true;
}

static dc_status validate_new(dc_rt_model *m) {
    const dc_model_info *info = dc_model_info_get(m->id);
    if (dc_model_dimension(m->model) != info->dim)
        return dc_fail(DC_ERR_INVALID_DIMENSION, "new %s has dimension %u, expected %u",
                       info->label, dc_model_dimension(m->model), info->dim);
    dc_input in;
    if (!validation_input(m->id, &in)) return DC_OK;
    dc_model_embedding e;
    memset(&e, 0, sizeof e);
    dc_status st = dc_model_embed(m->model, &in, &e);
    if (st != DC_OK) return dc_fail_context(st, "test embedding of the new %s", info->label);
    /* dc_model_embed checked width and finiteness; a zero vector means broken weights */
    bool zero = dc_vec_l2_norm(e.vector, e.dim) == 0.0;
    dc_model_embedding_free(&e);
    if (zero)
        return dc_fail(DC_ERR_INVALID_VALUE, "the new %s returned a zero test embedding",
                       info->label);
    return DC_OK;
}

dc_status dc_registry_swap(dc_registry *r, dc_model_id id, const dc_model_config *cfg) {
    if (!r || !cfg || (unsigned)id >= DC_NUM_MODELS)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "swap: bad arguments");
    const dc_model_info *info = dc_model_info_get(id);
    slot *s = &r->s[id];
    pthread_mutex_lock(&r->mu);
    if (!s->cfg_enabled || !cfg->enabled) {
        pthread_mutex_unlock(&r->mu);
        return dc_fail(DC_ERR_CONFIG, "swap: %s (%s) is disabled", info->label, info->name);
    }
    if (s->swapping) {
        pthread_mutex_unlock(&r->mu);
        return dc_fail(DC_ERR_OVERLOADED, "swap: a swap of %s is already running", info->label);
    }
    s->swapping = true;
    s->swap_phase = DC_SWAP_LOADING;
    uint64_t est = dc_model_factory_estimate_memory(r->opt.factory, id);
    if (!fits_locked(r, est)) {
        dc_status st = budget_fail(r, id, est);
        s->swap_phase = DC_SWAP_FAILED;
        s->swapping = false;
        pthread_mutex_unlock(&r->mu);
        return dc_fail_context(st, "swap (old and new must fit at once)");
    }
    r->mem_used += est;
    pthread_mutex_unlock(&r->mu);

    dc_rt_model *m = NULL;
    dc_status st = build_model(r, id, cfg, est, &m);
    if (st == DC_OK) {
        pthread_mutex_lock(&r->mu);
        s->swap_phase = DC_SWAP_VALIDATING;
        pthread_mutex_unlock(&r->mu);
        st = validate_new(m);
        if (st != DC_OK) {
            pthread_mutex_lock(&r->mu);
            r->mem_used -= m->bytes < r->mem_used ? m->bytes : r->mem_used;
            pthread_mutex_unlock(&r->mu);
            model_free(r, m);
            m = NULL;
        }
    }
    if (st != DC_OK) {
        char detail[DC_RT_DETAIL_MAX];
        dc_rt_capture_detail(detail, sizeof detail);
        pthread_mutex_lock(&r->mu);
        s->swap_phase = DC_SWAP_FAILED;
        s->swapping = false;
        pthread_mutex_unlock(&r->mu);
        dc_rt_log(r->opt.log, DC_RT_LOG_WARN, "swap of %s rolled back: %s", info->label, detail);
        return dc_fail(st, "swap of %s rolled back: %s", info->label, detail);
    }

    dc_rt_model *f = NULL;
    pthread_mutex_lock(&r->mu);
    s->swap_phase = DC_SWAP_SWAPPING;
    while (s->state == DC_SLOT_LOADING) pthread_cond_wait(&r->cv, &r->mu);
    dc_rt_model *old = s->cur;
    m->refs = 1;
    s->cur = m;
    s->cfg = *cfg;
    s->version = m->version;
    s->state = DC_SLOT_LOADED;
    s->swap_count++;
    s->load_count++;
    r->swaps++;
    if (old) {
        old->retired = true;
        s->draining = old;
        unref_locked(r, old, &f);
    }
    pthread_cond_broadcast(&r->cv);
    s->swap_phase = DC_SWAP_DRAINING;
    uint64_t until = dc_rt_now_ns() + (uint64_t)r->opt.drain_timeout_ms * 1000000ull;
    while (s->draining && dc_rt_now_ns() < until) dc_rt_cond_wait_until(&r->cv, &r->mu, until);
    bool drained = s->draining == NULL;
    s->draining = NULL; /* a late borrower still frees it on release */
    s->swap_phase = DC_SWAP_COMPLETE;
    s->swapping = false;
    pthread_mutex_unlock(&r->mu);
    if (f) model_free(r, f);
    if (!drained)
        dc_rt_log(r->opt.log, DC_RT_LOG_WARN,
                  "swap of %s: the old model is still borrowed after %u ms; it is freed when "
                  "the last request returns it",
                  info->label, r->opt.drain_timeout_ms);
    return DC_OK;
}

void dc_registry_stats_get(dc_registry *r, dc_registry_stats *o) {
    memset(o, 0, sizeof *o);
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        slot *s = &r->s[i];
        dc_registry_model_stats *m = &o->model[i];
        m->state = s->state;
        m->enabled = s->cfg_enabled;
        m->bytes = s->cur ? s->cur->bytes : 0;
        m->load_count = s->load_count;
        m->unload_count = s->unload_count;
        m->load_failures = s->load_failures;
        m->swap_count = s->swap_count;
        m->last_load_us = s->last_load_us;
        m->last_error = s->last_error;
        snprintf(m->last_error_detail, sizeof m->last_error_detail, "%s", s->last_detail);
        snprintf(m->unavailable_reason, sizeof m->unavailable_reason, "%s", s->reason);
        m->swap_phase = s->swap_phase;
        m->version = s->version;
        if (s->state == DC_SLOT_LOADED) o->loaded_count++;
        if (s->state != DC_SLOT_UNAVAILABLE) o->available_count++;
        if (s->state == DC_SLOT_FAILED) o->failed_count++;
    }
    o->memory_bytes = r->mem_used;
    o->memory_peak_bytes = r->mem_peak;
    o->memory_budget_bytes = r->opt.memory_budget_bytes;
    o->load_count = r->loads;
    o->unload_count = r->unloads;
    o->acquire_hits = r->acquire_hits;
    o->swap_count = r->swaps;
    o->loads_in_progress = r->loads_running;
    pthread_mutex_unlock(&r->mu);
}

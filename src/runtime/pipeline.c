/* The pipeline: open/close, the request path (validate, scrub, cache, queues, orchestrator,
 * fusion, cache fill), results. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "models/pretrained.h"
#include "runtime/autodl.h"
#include "runtime/pipeline_internal.h"
#include "runtime/record.h"

/* ---- small public helpers ---- */

const char *dc_run_status_name(dc_run_status s) {
    static const char *const n[] = {"ok", "timeout", "failed", "skipped"};
    return (unsigned)s < 4 ? n[s] : "unknown";
}

const char *dc_model_state_name(dc_model_state s) {
    static const char *const n[] = {"unavailable", "unloaded", "loading", "loaded", "failed"};
    return (unsigned)s < 5 ? n[s] : "unknown";
}

void dc_pipeline_result_init(dc_pipeline_result *r) {
    if (!r) return;
    memset(r, 0, sizeof *r);
    dc_fused_init(&r->fused);
    for (int i = 0; i < DC_NUM_MODELS; i++) r->models[i].status = DC_RUN_SKIPPED;
}

void dc_pipeline_result_free(dc_pipeline_result *r) {
    if (!r) return;
    dc_fused_free(&r->fused);
    for (int i = 0; i < DC_NUM_MODELS; i++) free(r->models[i].vector);
    dc_pipeline_result_init(r);
}

void dc_pipeline_options_default(dc_pipeline_options *o) {
    memset(o, 0, sizeof *o);
    o->warmup = true;
    o->load_retry_ms = 30000;
}

dc_status dc_cancel_token_create(dc_cancel_token **out) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "cancel token: NULL output");
    *out = calloc(1, sizeof **out);
    if (!*out) return dc_fail(DC_ERR_OUT_OF_MEMORY, "cancel token");
    atomic_init(&(*out)->cancelled, false);
    return DC_OK;
}
void dc_cancel_token_cancel(dc_cancel_token *t) {
    if (t) atomic_store(&t->cancelled, true);
}
bool dc_cancel_token_cancelled(const dc_cancel_token *t) {
    return t && atomic_load(&((dc_cancel_token *)t)->cancelled);
}
void dc_cancel_token_destroy(dc_cancel_token *t) { free(t); }

/* ---- error window ---- */

void dc_pl_errors_add(dc_err_window *w, uint32_t n) {
    if (!n) return;
    uint64_t s = dc_rt_now_ns() / 1000000000ull;
    pthread_mutex_lock(&w->mu);
    size_t k = s % 60;
    if (w->second[k] != s) {
        w->second[k] = s;
        w->count[k] = 0;
    }
    w->count[k] += n;
    pthread_mutex_unlock(&w->mu);
}

uint32_t dc_pl_errors_last_minute(dc_err_window *w) {
    uint64_t s = dc_rt_now_ns() / 1000000000ull;
    uint32_t total = 0;
    pthread_mutex_lock(&w->mu);
    for (size_t k = 0; k < 60; k++)
        if (w->second[k] + 60 > s) total += w->count[k];
    pthread_mutex_unlock(&w->mu);
    return total;
}

static void model_outcome(dc_model_counters *c, dc_run_status s) {
    if (s == DC_RUN_SKIPPED) {
        dc_rt_add(&c->skipped, 1);
        return;
    }
    dc_rt_add(s == DC_RUN_OK ? &c->ok : s == DC_RUN_TIMEOUT ? &c->timeouts : &c->failures, 1);
    uint32_t bad = s != DC_RUN_OK, cur = atomic_load(&c->recent);
    while (!atomic_compare_exchange_weak(&c->recent, &cur, ((cur << 1) | bad) & 0xFFFFFu)) {
    }
    uint32_t n = atomic_load(&c->recent_n);
    while (n < 20 && !atomic_compare_exchange_weak(&c->recent_n, &n, n + 1)) {
    }
}

/* ---- open / close ---- */

static uint64_t default_budget(void) {
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    uint64_t cap = 16ull << 30;
    if (pages > 0 && psz > 0) {
        uint64_t phys = (uint64_t)pages * (uint64_t)psz / 10 * 8;
        if (phys < cap) cap = phys;
    }
    return cap;
}

static bool record_ok(void *ctx, const uint8_t *b, size_t len) {
    (void)ctx;
    return dc_record_check(b, len);
}

static dc_hash128 fusion_version_of(dc_fusemoe *f) {
    dc_hash128 h = {0, 0};
    dc_fusion_weights *w = dc_fusemoe_weights(f);
    if (!w) return h;
    const dc_fusion_version *v = dc_fusion_weights_version(w);
    XXH3_state_t *st = XXH3_createState();
    if (st) {
        XXH3_128bits_reset(st);
        XXH3_128bits_update(st, v->version, strnlen(v->version, sizeof v->version));
        XXH3_128bits_update(st, v->checksum, strnlen(v->checksum, sizeof v->checksum));
        const dc_fusion_options *o = dc_fusion_weights_options(w);
        uint32_t shape[3] = {o->num_experts, o->top_k, o->hidden};
        XXH3_128bits_update(st, shape, sizeof shape);
        double d[2] = {o->temperature, o->laplace_alpha};
        XXH3_128bits_update(st, d, sizeof d);
        XXH128_hash_t r = XXH3_128bits_digest(st);
        h.lo = r.low64;
        h.hi = r.high64;
        XXH3_freeState(st);
    }
    dc_fusion_weights_release(w);
    return h;
}

static void pipeline_free(dc_pipeline *p) {
    for (int i = 0; i < DC_NUM_MODELS; i++) dc_batch_queue_destroy(p->queue[i]);
    if (p->tracer && p->cfg.trace.enabled && p->cfg.trace.chrome_path[0] &&
        dc_tracer_write_chrome(p->tracer, p->cfg.trace.chrome_path) != DC_OK)
        dc_rt_log(&p->log, DC_RT_LOG_WARN, "writing the trace failed: %s", dc_error_detail());
    dc_tracer_destroy(p->tracer);
    dc_tok_share_destroy(p->tok);
    if (p->redis) dc_redis_tier_drain(p->redis, 2000);
    dc_redis_tier_destroy(p->redis);
    if (p->cache && p->cfg.cache.persist_to_disk && p->cfg.cache.disk_path[0] &&
        dc_cache_save(p->cache, p->cfg.cache.disk_path) != DC_OK)
        dc_rt_log(&p->log, DC_RT_LOG_WARN, "saving the cache failed: %s", dc_error_detail());
    dc_cache_destroy(p->cache);
    dc_fusemoe_destroy(p->fusion);
    dc_registry_destroy(p->reg);
    dc_builtin_factory_destroy(p->builtin);
#ifdef DC_HAVE_PRIVACY
    dc_scrubber_destroy(p->scrubber);
#endif
    pthread_mutex_destroy(&p->errs.mu);
    pthread_mutex_destroy(&p->warm_mu);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

dc_status dc_pipeline_open(const dc_config *cfg, dc_pipeline **out) {
    return dc_pipeline_open_ex(cfg, NULL, out);
}

dc_status dc_pipeline_open_ex(const dc_config *cfg, const dc_pipeline_options *opt,
                              dc_pipeline **out) {
    if (!cfg || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "pipeline open: NULL config or output");
    *out = NULL;
    dc_status st = dc_config_validate(cfg);
    if (st != DC_OK) return st;
    dc_pipeline *p = calloc(1, sizeof *p);
    if (!p) return dc_fail(DC_ERR_OUT_OF_MEMORY, "pipeline");
    p->cfg = *cfg;
    if (opt) p->opt = *opt;
    else dc_pipeline_options_default(&p->opt);
    p->log.fn = p->opt.log;
    p->log.ctx = p->opt.log_ctx;
    pthread_mutex_init(&p->mu, NULL);
    dc_rt_cond_init(&p->cv);
    pthread_mutex_init(&p->errs.mu, NULL);
    pthread_mutex_init(&p->warm_mu, NULL);
    p->open_ns = dc_rt_now_ns();
    p->deadline_ms = dc_config_deadline_ms(cfg, false); /* this build runs on the CPU */

    /* models */
    const char(*reasons)[256] = NULL;
    if (p->opt.factory) {
        p->factory = p->opt.factory;
    } else {
        if ((st = dc_builtin_factory_create(cfg, &p->builtin)) != DC_OK) goto fail;
        dc_autodl_run(cfg, p->builtin, &p->log); /* models.auto_download */
        p->factory = &p->builtin->base;
        reasons = (const char(*)[256])p->builtin->reason;
    }
    dc_registry_options ro = {
        .factory = p->factory,
        .factory_is_builtin = p->builtin != NULL,
        .memory_budget_bytes = p->opt.memory_budget_bytes          ? p->opt.memory_budget_bytes
                               : cfg->models.memory_budget_bytes ? cfg->models.memory_budget_bytes
                                                                 : default_budget(),
        .max_concurrent_loads = cfg->models.max_concurrent_loads,
        .load_retry_ms = p->opt.load_retry_ms,
        .drain_timeout_ms = 10000, /* seed S07: the old model drains within 10 s */
        .log = &p->log,
    };
    if ((st = dc_registry_create(cfg, &ro, reasons, &p->reg)) != DC_OK) goto fail;
    uint32_t avail = dc_registry_available_mask(p->reg);
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        if (!((avail >> i) & 1u)) {
            dc_registry_stats rs;
            dc_registry_stats_get(p->reg, &rs);
            if (cfg->models.model[i].enabled)
                dc_rt_log(&p->log, DC_RT_LOG_INFO, "%s not available: %s",
                          dc_model_info_get((dc_model_id)i)->label, rs.model[i].unavailable_reason);
            continue;
        }
        uint32_t mb = cfg->batch.max_batch_size;
        if (cfg->models.model[i].max_batch_size && cfg->models.model[i].max_batch_size < mb)
            mb = cfg->models.model[i].max_batch_size;
        dc_batch_options bo = {.max_batch_size = mb,
                               .min_batch_size = cfg->batch.min_batch_size,
                               .max_wait_ms = cfg->batch.max_wait_ms,
                               .max_tokens_per_batch = cfg->batch.max_tokens_per_batch,
                               .queue_capacity = cfg->batch.queue_capacity,
                               .sort_by_length = cfg->batch.sort_by_length,
                               .dynamic = cfg->batch.dynamic_batching};
        if ((st = dc_batch_queue_create((dc_model_id)i, &bo, p->reg, &p->log, &p->queue[i])) != DC_OK)
            goto fail;
    }
    if (!(avail & ((1u << DC_MODEL_SEMANTIC))))
        dc_rt_log(&p->log, DC_RT_LOG_WARN,
                  "E1 (semantic) is not available: the pipeline runs degraded without it");

    /* fusion */
    if ((st = dc_fusemoe_create(cfg, &p->fusion)) != DC_OK) {
        st = dc_fail_context(DC_ERR_FUSION, "creating the fusion");
        goto fail;
    }
    p->fusion_version = fusion_version_of(p->fusion);

    /* cache tiers */
    if (cfg->cache.enabled) {
        dc_cache_options co;
        dc_cache_options_from_config(&cfg->cache, &p->log, &co);
        co.validate = record_ok;
        if ((st = dc_cache_create(&co, &p->cache)) != DC_OK) goto fail;
        if (cfg->cache.persist_to_disk && cfg->cache.disk_path[0]) {
            size_t loaded = 0;
            dc_status ls = dc_cache_load(p->cache, cfg->cache.disk_path, &loaded);
            if (ls == DC_OK)
                dc_rt_log(&p->log, DC_RT_LOG_INFO, "cache: %zu entries from %s", loaded,
                          cfg->cache.disk_path);
            else if (ls != DC_ERR_NOT_FOUND && ls != DC_ERR_SERIALIZATION)
                dc_rt_log(&p->log, DC_RT_LOG_WARN, "cache file not read: %s", dc_error_detail());
            /* a corrupted file was logged by dc_cache_load and is replaced at close */
        }
        if (cfg->cache.redis_url[0]) {
            dc_redis_options rop = {.url = cfg->cache.redis_url,
                                    .timeout_ms = 50,
                                    .retry_ms = 1000,
                                    .queue_cap = 1024,
                                    .ttl_seconds = cfg->cache.ttl_seconds,
                                    .validate = record_ok,
                                    .log = &p->log};
            if ((st = dc_redis_tier_create(&rop, &p->redis)) != DC_OK) goto fail;
        }
    }

    if ((st = dc_tracer_create(&cfg->trace, 0, &p->log, &p->tracer)) != DC_OK) goto fail;
    /* the built-in encoders share tokenizations; a caller's factory has no tokenizers to share */
    const char *share = getenv("DODECA_SHARED_TOKENIZE"); /* "0": off, for benchmarks */
    if (p->builtin && !(share && !strcmp(share, "0")) &&
        (st = dc_tok_share_create(&p->log, &p->tok)) != DC_OK)
        goto fail;
    p->trace_on = cfg->trace.enabled;

#ifdef DC_HAVE_PRIVACY
    if (cfg->pii.enabled && (st = dc_scrubber_create(&cfg->pii, &p->scrubber)) != DC_OK) goto fail;
#endif

    /* loading: eager = everything available; lazy = the preload list */
    if (!cfg->models.lazy_loading) {
        if (dc_registry_load_all(p->reg, avail) != DC_OK)
            dc_rt_log(&p->log, DC_RT_LOG_WARN, "loading at start-up: %s", dc_error_detail());
    } else {
        for (uint32_t k = 0; k < cfg->models.preload_count; k++) {
            dc_model_id id = cfg->models.preload[k];
            if (dc_registry_load(p->reg, id) != DC_OK)
                dc_rt_log(&p->log, DC_RT_LOG_WARN, "preloading %s: %s",
                          dc_model_info_get(id)->label, dc_error_detail());
        }
    }
    if (p->opt.warmup) {
        dc_warmup_report wr;
        if (dc_pipeline_warmup(p, &wr) != DC_OK)
            dc_rt_log(&p->log, DC_RT_LOG_WARN, "warm-up: %s", dc_error_detail());
    }
    dc_error_clear();
    *out = p;
    return DC_OK;
fail: {
    char detail[DC_RT_DETAIL_MAX];
    dc_rt_capture_detail(detail, sizeof detail);
    pipeline_free(p);
    return dc_fail(st, "%s", detail);
}
}

void dc_pipeline_close(dc_pipeline *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->closing = true;
    while (p->inflight) pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    pipeline_free(p);
}

static dc_status enter(dc_pipeline *p) {
    pthread_mutex_lock(&p->mu);
    bool closing = p->closing;
    if (!closing) p->inflight++;
    pthread_mutex_unlock(&p->mu);
    return closing ? dc_fail(DC_ERR_NOT_INITIALIZED, "the pipeline is closing") : DC_OK;
}

static void leave(dc_pipeline *p) {
    pthread_mutex_lock(&p->mu);
    if (--p->inflight == 0) pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* ---- the request path ---- */

typedef struct item {
    dc_status st;
    char detail[DC_RT_DETAIL_MAX];
    dc_input eff;          /* the input after scrubbing (t_ref as given) */
    char *scrubbed;        /* owned text when the scrubber rewrote the content */
    uint32_t mask;         /* models that run for it */
    dc_hash128 content;
    bool hit, traced;
    size_t miss;           /* index among the misses */
    dc_sparse_vector sparse;
    dc_token_matrix colbert;
    dc_concat_embedding *concat;
} item;

static void item_fail(item *it, dc_status st) {
    it->st = st;
    dc_rt_capture_detail(it->detail, sizeof it->detail);
}

/* Models that run for an input of this type, and why the others do not. */
static uint32_t eligible(dc_pipeline *p, const dc_input *in, uint32_t requested, uint32_t avail,
                         dc_pipeline_result *r) {
    uint32_t m = 0;
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        const dc_model_info *info = dc_model_info_get((dc_model_id)i);
        dc_model_result *mr = &r->models[i];
        mr->status = DC_RUN_SKIPPED;
        if (!p->cfg.models.model[i].enabled)
            snprintf(mr->detail, sizeof mr->detail, "disabled in the configuration");
        else if (!((avail >> i) & 1u))
            snprintf(mr->detail, sizeof mr->detail, "not available (no model folder or not built)");
        else if (!dc_model_accepts((dc_model_id)i, in->type))
            snprintf(mr->detail, sizeof mr->detail, "%s does not take %s input", info->label,
                     dc_input_type_name(in->type));
        else if (requested && !((requested >> i) & 1u))
            snprintf(mr->detail, sizeof mr->detail, "not requested");
        else {
            mr->detail[0] = 0;
            m |= 1u << i;
        }
    }
    return m;
}

/* XXH3-128 over the scrubbed input's hash, the models that run, whether extras are wanted,
 * those models' weight versions and the fusion weights' version. */
static dc_hash128 cache_key(dc_pipeline *p, const item *it, bool aux,
                            const dc_hash128 versions[DC_NUM_MODELS]) {
    static const char tag[] = "dodeca-cache-key-1";
    uint8_t buf[sizeof tag + 16 + 8 + 16 * DC_NUM_MODELS + 16];
    size_t n = 0;
    memcpy(buf, tag, sizeof tag);
    n += sizeof tag;
    memcpy(buf + n, &it->content, 16);
    n += 16;
    uint32_t v[2] = {it->mask, aux};
    memcpy(buf + n, v, sizeof v);
    n += sizeof v;
    for (int i = 0; i < DC_NUM_MODELS; i++)
        if ((it->mask >> i) & 1u) {
            memcpy(buf + n, &versions[i], 16);
            n += 16;
        }
    memcpy(buf + n, &p->fusion_version, 16);
    n += 16;
    XXH128_hash_t r = XXH3_128bits(buf, n);
    dc_hash128 k = {r.low64, r.high64};
    return k;
}

static dc_status prepare(dc_pipeline *p, const dc_input *in, const dc_embed_options *o, item *it,
                         dc_pipeline_result *r) {
    dc_status st = dc_input_validate(in);
    if (st != DC_OK) return st;
    it->eff = *in;
#ifdef DC_HAVE_PRIVACY
    if (p->scrubber && (in->type == DC_INPUT_TEXT || in->type == DC_INPUT_CODE) && in->content_len) {
        dc_scrub_result sr;
        st = dc_scrubber_scrub(p->scrubber, in->content, in->content_len, &sr);
        if (st != DC_OK) return dc_fail_context(st, "PII scrub");
        r->pii_findings = (uint32_t)sr.count;
        if (sr.count) {
            it->scrubbed = sr.text; /* take the text; the detections are not kept */
            sr.text = NULL;
            it->eff.content = it->scrubbed;
            it->eff.content_len = sr.len;
        }
        dc_scrub_result_free(&sr);
    }
#endif
    dc_hash128 versions[DC_NUM_MODELS];
    uint32_t avail = dc_registry_snapshot(p->reg, versions);
    it->mask = eligible(p, &it->eff, o->model_mask, avail, r);
    if (!it->mask)
        return dc_fail(DC_ERR_UNSUPPORTED_MODALITY, "no available model takes %s input%s",
                       dc_input_type_name(in->type), o->model_mask ? " among the requested models" : "");
    it->content = dc_input_hash(&it->eff);
    r->cache_key = cache_key(p, it, !o->no_aux, versions);
    r->t_ref_from_input = in->has_t_ref;
    return DC_OK;
}

static bool cache_lookup(dc_pipeline *p, item *it, dc_pipeline_result *r) {
    const dc_cache_blob *b = NULL;
    if (dc_cache_get(p->cache, r->cache_key, &b) == DC_OK) {
        /* our own bytes, or a file's that were checked at load */
        dc_status st = dc_record_decode_trusted(b->data, b->len, r);
        dc_cache_blob_release(b);
        if (st == DC_OK) return true;
        dc_cache_remove(p->cache, r->cache_key); /* never trust a value that does not decode */
    }
    if (p->redis) {
        uint8_t *bytes = NULL;
        size_t len = 0;
        if (dc_redis_tier_get(p->redis, r->cache_key, &bytes, &len) == DC_OK) {
            dc_status st = dc_record_decode(bytes, len, r);
            if (st == DC_OK) dc_cache_put(p->cache, r->cache_key, bytes, len);
            free(bytes);
            if (st == DC_OK) return true;
        }
    }
    (void)it;
    dc_error_clear();
    return false;
}

static void cache_store(dc_pipeline *p, dc_pipeline_result *r) {
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (dc_record_encode(r, &bytes, &len) != DC_OK) {
        dc_rt_log(&p->log, DC_RT_LOG_WARN, "cache record: %s", dc_error_detail());
        return;
    }
    if (dc_cache_put(p->cache, r->cache_key, bytes, len) != DC_OK) dc_error_clear();
    if (p->redis) dc_redis_tier_put(p->redis, r->cache_key, bytes, len);
    free(bytes);
}

/* E1 required when it runs for the input; at least min(min_models, models run) must answer. */
static dc_status apply_policy(dc_pipeline *p, const item *it, const dc_pipeline_result *r,
                              uint32_t deadline_ms) {
    const uint32_t e1 = 1u << DC_MODEL_SEMANTIC;
    if ((it->mask & e1) && !(r->ok_mask & e1)) {
        const dc_model_result *m = &r->models[DC_MODEL_SEMANTIC];
        if (m->status == DC_RUN_TIMEOUT)
            return dc_fail(DC_ERR_TIMEOUT, "E1 (semantic, required) did not answer within %u ms",
                           deadline_ms);
        return dc_fail(m->error, "E1 (semantic, required) failed: %s", m->detail);
    }
    uint32_t run = (uint32_t)__builtin_popcount(it->mask);
    uint32_t need = p->cfg.pipeline.min_models < run ? p->cfg.pipeline.min_models : run;
    uint32_t got = (uint32_t)__builtin_popcount(r->ok_mask);
    if (got >= need) return DC_OK;
    char list[DC_RT_DETAIL_MAX] = "";
    size_t used = 0;
    dc_status first = DC_OK;
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        const dc_model_result *m = &r->models[i];
        if (!((it->mask >> i) & 1u) || m->status == DC_RUN_OK) continue;
        if (first == DC_OK && m->status == DC_RUN_FAILED) first = m->error;
        int w = snprintf(list + used, sizeof list - used, "%s%s %s", used ? ", " : "",
                         dc_model_info_get((dc_model_id)i)->label, dc_run_status_name(m->status));
        if (w > 0 && (size_t)w < sizeof list - used) used += (size_t)w;
    }
    return dc_fail(r->timeout_mask ? DC_ERR_TIMEOUT : first != DC_OK ? first : DC_ERR_INTERNAL,
                   "only %u of %u models answered within %u ms (at least %u needed): %s", got, run,
                   deadline_ms, need, list);
}

static void trace_item(dc_pipeline *p, const item *it, const dc_pipeline_result *r,
                       uint64_t t0, uint64_t t_prep, uint64_t t_look, uint64_t t_submit,
                       uint64_t t_models, uint64_t t_fuse, uint64_t t_end) {
    dc_tracer *t = p->tracer;
    uint64_t id = r->request_id;
    dc_tracer_note_request(t);
    dc_tracer_span(t, id, "embed", DC_TRACE_NO_MODEL, t0, t_end, r->cache_hit);
    dc_tracer_span(t, id, "prepare", DC_TRACE_NO_MODEL, t0, t_prep, 0);
    if (p->cache) dc_tracer_span(t, id, "cache_lookup", DC_TRACE_NO_MODEL, t_prep, t_look, r->cache_hit);
    if (it->hit || !t_submit) return;
    dc_tracer_span(t, id, "tokenise", DC_TRACE_NO_MODEL, t_look, t_submit, 0);
    for (int m = 0; m < DC_NUM_MODELS; m++) {
        const dc_model_result *mr = &r->models[m];
        if (!((it->mask >> m) & 1u)) continue;
        if (mr->status == DC_RUN_TIMEOUT) {
            dc_tracer_span(t, id, "queue (timed out)", m, t_submit, t_models, 0);
            continue;
        }
        uint64_t s0 = t_submit + mr->queue_us * 1000;
        dc_tracer_span(t, id, "queue", m, t_submit, s0, 0);
        dc_tracer_span(t, id, mr->status == DC_RUN_OK ? "forward" : "forward (failed)", m, s0,
                       s0 + mr->forward_us * 1000, mr->batch_size);
    }
    dc_tracer_span(t, id, "models", DC_TRACE_NO_MODEL, t_submit, t_models, r->ok_mask);
    if (it->st == DC_OK) dc_tracer_span(t, id, "fusion", DC_TRACE_NO_MODEL, t_models, t_fuse, 0);
    if (it->st == DC_OK && p->cache) dc_tracer_span(t, id, "cache_store", DC_TRACE_NO_MODEL, t_fuse, t_end, 0);
}

static dc_status run_call(dc_pipeline *p, const dc_input *in, size_t n, const dc_embed_options *o,
                          dc_pipeline_result *out, dc_status *ist) {
    const uint64_t t0 = dc_rt_now_ns();
    const double wall = dc_rt_wall_seconds();
    item *items = calloc(n, sizeof *items);
    if (!items) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%zu items", n);
    uint64_t base = atomic_fetch_add(&p->next_request, n) + 1;
    dc_rt_add(&p->requests, n);
    const bool use_cache = p->cache && !o->no_cache;
    const uint32_t deadline_ms = o->deadline_ms ? o->deadline_ms : p->deadline_ms;

    /* 1. validate, scrub, key */
    for (size_t i = 0; i < n; i++) {
        dc_pipeline_result_init(&out[i]);
        out[i].request_id = base + i;
        items[i].traced = p->trace_on && dc_tracer_sampled(p->tracer, base + i);
        dc_status st = prepare(p, &in[i], o, &items[i], &out[i]);
        if (st != DC_OK) item_fail(&items[i], st);
    }
    const uint64_t t_prep = dc_rt_now_ns();

    /* 2. cache */
    size_t misses = 0;
    for (size_t i = 0; i < n; i++) {
        if (items[i].st != DC_OK) continue;
        if (use_cache && cache_lookup(p, &items[i], &out[i])) {
            items[i].hit = true;
            out[i].cache_hit = true;
            continue;
        }
        items[i].miss = misses++;
    }
    const uint64_t t_look = dc_rt_now_ns();

    /* 3. models */
    dc_job_group *g = NULL;
    bool cancelled = false;
    uint64_t t_models = t_look, t_submit = 0, t_tok = t_look;
    size_t *miss_item = misses ? malloc(misses * sizeof *miss_item) : NULL;
    for (size_t i = 0; miss_item && i < n; i++)
        if (items[i].st == DC_OK && !items[i].hit) miss_item[items[i].miss] = i;
    if (misses) {
        dc_status st = DC_OK;
        dc_input *ins = malloc(misses * sizeof *ins);
        size_t njobs = 0;
        if (!ins || !miss_item) st = dc_fail(DC_ERR_OUT_OF_MEMORY, "inputs");
        else if (misses > p->cfg.batch.queue_capacity)
            st = dc_fail(DC_ERR_BATCH, "%zu inputs exceed batch.queue_capacity (%u)", misses,
                         p->cfg.batch.queue_capacity);
        for (size_t i = 0; st == DC_OK && i < n; i++) {
            item *it = &items[i];
            if (it->st != DC_OK || it->hit) continue;
            dc_input x = it->eff;
            if (!x.has_t_ref) { /* the receive time, returned so the call can be repeated */
                x.has_t_ref = true;
                x.t_ref = wall;
            }
            out[i].t_ref = x.t_ref;
            ins[it->miss] = x;
            njobs += (size_t)__builtin_popcount(it->mask);
        }
        if (st == DC_OK) st = dc_job_group_create(ins, misses, njobs, &g);
        free(ins);
        dc_job **ptrs = st == DC_OK ? malloc(njobs * sizeof *ptrs) : NULL;
        if (st == DC_OK && !ptrs) st = dc_fail(DC_ERR_OUT_OF_MEMORY, "job list");
        size_t start[DC_NUM_MODELS + 1] = {0};
        uint64_t load0[DC_NUM_MODELS] = {0};
        if (st == DC_OK) {
            size_t k = 0;
            for (int m = 0; m < DC_NUM_MODELS; m++) {
                start[m] = k;
                for (size_t i = 0; i < n; i++) {
                    item *it = &items[i];
                    if (it->st != DC_OK || it->hit || !((it->mask >> m) & 1u)) continue;
                    dc_job *j = &g->jobs[k];
                    j->model = (dc_model_id)m;
                    j->input = &g->inputs[it->miss];
                    j->input_index = it->miss;
                    j->est_tokens = dc_estimate_tokens(j->input, (dc_model_id)m);
                    j->want_aux = !o->no_aux;
                    ptrs[k++] = j;
                }
                if (k > start[m]) load0[m] = dc_batch_queue_load_ns(p->queue[m]);
            }
            start[DC_NUM_MODELS] = k;
        }
        /* the tokenise stage: once per input and tokenizer, for the loaded encoders */
        if (st == DC_OK && p->tok) dc_tok_share_fill(p->tok, p->reg, ptrs, start[DC_NUM_MODELS], misses);
        t_submit = dc_rt_now_ns();
        t_tok = t_submit;
        for (int m = 0; st == DC_OK && m < DC_NUM_MODELS; m++)
            if (start[m + 1] > start[m])
                st = dc_batch_submit(p->queue[m], ptrs + start[m], start[m + 1] - start[m]);
        free(ptrs);
        if (st == DC_OK) {
            /* the orchestrator: wait for the results until the deadline; time the models
             * spent loading (lazy loading) does not count against it */
            uint32_t rounds = (uint32_t)((misses + p->cfg.batch.max_batch_size - 1) / p->cfg.batch.max_batch_size);
            uint64_t budget = (uint64_t)deadline_ms * 1000000ull * (rounds ? rounds : 1);
            uint64_t deadline = t_submit + budget;
            for (;;) {
                uint64_t until = deadline;
                if (o->cancel) {
                    uint64_t slice = dc_rt_now_ns() + 10000000ull;
                    if (slice < until) until = slice;
                }
                pthread_mutex_lock(&g->mu);
                uint32_t pending = dc_job_group_wait_locked(g, until);
                pthread_mutex_unlock(&g->mu);
                if (!pending) break;
                if (o->cancel && dc_cancel_token_cancelled(o->cancel)) {
                    cancelled = true;
                    break;
                }
                uint64_t now = dc_rt_now_ns();
                if (now < deadline) continue;
                uint64_t ext = 0;
                bool loading = false;
                for (int m = 0; m < DC_NUM_MODELS; m++) {
                    if (start[m + 1] == start[m]) continue;
                    uint64_t l = dc_batch_queue_load_ns(p->queue[m]) - load0[m];
                    if (l > ext) ext = l;
                    loading = loading || dc_batch_queue_loading(p->queue[m]);
                }
                if (loading) ext += 10000000ull; /* keep waiting while a load runs */
                if (t_submit + budget + ext > now) {
                    deadline = t_submit + budget + ext;
                    continue;
                }
                break;
            }
        } else {
            for (size_t i = 0; i < n; i++)
                if (items[i].st == DC_OK && !items[i].hit) item_fail(&items[i], st);
        }
        t_models = dc_rt_now_ns();

        /* collect what answered */
        if (st == DC_OK) {
            pthread_mutex_lock(&g->mu);
            for (size_t j = 0; j < g->njobs; j++) {
                dc_job *jb = &g->jobs[j];
                size_t i = miss_item[jb->input_index];
                dc_pipeline_result *r = &out[i];
                dc_model_result *mr = &r->models[jb->model];
                int state = atomic_load(&jb->state);
                if (state == DC_JOB_DONE && jb->status == DC_OK) {
                    mr->status = DC_RUN_OK;
                    mr->vector = jb->emb.vector;
                    mr->dim = jb->emb.dim;
                    mr->tokens_used = jb->emb.tokens_used;
                    mr->truncated = jb->emb.truncated;
                    jb->emb.vector = NULL;
                    r->ok_mask |= 1u << jb->model;
                    if (mr->truncated) r->truncated_mask |= 1u << jb->model;
                    if (jb->model == DC_MODEL_SPARSE) {
                        items[i].sparse = jb->sparse;
                        memset(&jb->sparse, 0, sizeof jb->sparse);
                    }
                    if (jb->model == DC_MODEL_LATE_INTERACTION) {
                        items[i].colbert = jb->colbert;
                        memset(&jb->colbert, 0, sizeof jb->colbert);
                    }
                } else if (state == DC_JOB_DONE) {
                    mr->status = DC_RUN_FAILED;
                    mr->error = jb->status;
                    snprintf(mr->detail, sizeof mr->detail, "%.*s", (int)sizeof mr->detail - 1, jb->detail);
                    r->failed_mask |= 1u << jb->model;
                } else {
                    mr->status = DC_RUN_TIMEOUT;
                    mr->error = cancelled ? DC_ERR_CANCELLED : DC_ERR_TIMEOUT;
                    snprintf(mr->detail, sizeof mr->detail, cancelled ? "cancelled by the caller"
                                                                      : "no answer within %u ms",
                             deadline_ms);
                    r->timeout_mask |= 1u << jb->model;
                }
                /* a job's timings are published with its result; a running one is not read */
                if (state == DC_JOB_DONE && jb->t_start_ns) {
                    mr->queue_us = (jb->t_start_ns - jb->t_submit_ns) / 1000;
                    mr->forward_us = (jb->t_end_ns - jb->t_start_ns) / 1000;
                    mr->batch_size = jb->batch_size;
                } else {
                    mr->queue_us = (t_models - t_submit) / 1000;
                }
            }
            pthread_mutex_unlock(&g->mu);
        }
    }

    /* 4. policy and fusion */
    size_t nf = 0;
    const dc_concat_embedding **cptr = misses ? malloc(misses * sizeof *cptr) : NULL;
    dc_fused_embedding *fused = misses ? calloc(misses, sizeof *fused) : NULL;
    size_t *fidx = misses ? malloc(misses * sizeof *fidx) : NULL;
    for (size_t i = 0; i < n && misses; i++) {
        item *it = &items[i];
        dc_pipeline_result *r = &out[i];
        if (it->st != DC_OK || it->hit) continue;
        /* a caller that gave up says nothing about the models' health */
        for (int m = 0; m < DC_NUM_MODELS && !cancelled; m++)
            model_outcome(&p->mc[m], (it->mask >> m) & 1u ? r->models[m].status : DC_RUN_SKIPPED);
        if (cancelled) {
            dc_fail(DC_ERR_CANCELLED, "cancelled by the caller");
            item_fail(it, DC_ERR_CANCELLED);
            continue;
        }
        dc_status st = apply_policy(p, it, r, deadline_ms);
        if (st == DC_OK && (!cptr || !fused || !fidx)) st = dc_fail(DC_ERR_OUT_OF_MEMORY, "fusion inputs");
        if (st == DC_OK && !(it->concat = malloc(sizeof *it->concat)))
            st = dc_fail(DC_ERR_OUT_OF_MEMORY, "concatenation");
        if (st == DC_OK) {
            dc_concat_init(it->concat, it->content);
            for (int m = 0; m < DC_NUM_MODELS && st == DC_OK; m++) {
                if (!((r->ok_mask >> m) & 1u)) continue;
                dc_model_embedding e = {.model = (dc_model_id)m, .vector = r->models[m].vector,
                                        .dim = r->models[m].dim};
                st = dc_concat_set(it->concat, &e);
                it->concat->latency_us[m] = r->models[m].forward_us;
            }
        }
        if (st != DC_OK) {
            item_fail(it, st);
            continue;
        }
        cptr[nf] = it->concat;
        fidx[nf++] = i;
    }
    if (nf) {
        dc_status st = dc_fusemoe_forward(p->fusion, cptr, nf, fused);
        if (st != DC_OK) {
            dc_fail_context(DC_ERR_FUSION, "fusion");
            for (size_t k = 0; k < nf; k++) item_fail(&items[fidx[k]], DC_ERR_FUSION);
        } else {
            for (size_t k = 0; k < nf; k++) {
                item *it = &items[fidx[k]];
                dc_pipeline_result *r = &out[fidx[k]];
                r->fused = fused[k];
                r->fused.sparse = it->sparse;
                r->fused.colbert = it->colbert;
                memset(&it->sparse, 0, sizeof it->sparse);
                memset(&it->colbert, 0, sizeof it->colbert);
            }
        }
    }
    const uint64_t t_fuse = dc_rt_now_ns();

    /* 5. results, cache fill */
    for (size_t k = 0; k < nf; k++) {
        size_t i = fidx[k];
        if (items[i].st != DC_OK) continue;
        dc_pipeline_result *r = &out[i];
        r->fused.pipeline_latency_us = (dc_rt_now_ns() - t0) / 1000;
        /* only complete results are cached: a degraded one must not outlive the outage */
        if (use_cache && r->ok_mask == items[i].mask) cache_store(p, r);
    }
    const uint64_t t_end = dc_rt_now_ns();
    free(cptr);
    free(fused);
    free(fidx);

    /* 6. accounting */
    dc_status first = DC_OK;
    size_t first_i = 0;
    uint32_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        item *it = &items[i];
        dc_pipeline_result *r = &out[i];
        if (it->st == DC_OK) {
            for (int m = 0; m < DC_NUM_MODELS; m++)
                if (r->models[m].status == DC_RUN_SKIPPED && ((it->mask >> m) & 1u) && it->hit)
                    snprintf(r->models[m].detail, sizeof r->models[m].detail, "not in the cached result");
            for (int m = 0; m < DC_NUM_MODELS; m++)
                if (r->models[m].status == DC_RUN_SKIPPED) r->skipped_mask |= 1u << m;
            r->timings.prepare_us = (t_prep - t0) / 1000;
            r->timings.cache_lookup_us = (t_look - t_prep) / 1000;
            if (!it->hit) {
                r->timings.tokenise_us = (t_tok - t_look) / 1000;
                r->timings.models_us = (t_models - t_tok) / 1000;
                r->timings.fusion_us = (t_fuse - t_models) / 1000;
                r->timings.cache_store_us = (t_end - t_fuse) / 1000;
            }
            r->timings.total_us = (t_end - t0) / 1000;
            dc_rt_add(&p->embeddings, 1);
        } else {
            failed++;
            if (it->st == DC_ERR_OVERLOADED) dc_rt_add(&p->overloaded, 1);
            if (it->st == DC_ERR_TIMEOUT) dc_rt_add(&p->timeouts, 1);
            if (it->st == DC_ERR_CANCELLED) dc_rt_add(&p->cancelled, 1);
            if (first == DC_OK) {
                first = it->st;
                first_i = i;
            }
        }
        if (ist) ist[i] = it->st;
        if (it->traced) trace_item(p, it, r, t0, t_prep, t_look, t_submit, t_models, t_fuse, t_end);
    }
    dc_hist_record(&p->h_prepare, (t_prep - t0) / 1000);
    if (p->cache) dc_hist_record(&p->h_lookup, (t_look - t_prep) / 1000);
    if (misses) {
        dc_hist_record(&p->h_tokenise, (t_tok - t_look) / 1000);
        dc_hist_record(&p->h_models, (t_models - t_tok) / 1000);
        if (nf) dc_hist_record(&p->h_fusion, (t_fuse - t_models) / 1000);
        if (use_cache && nf) dc_hist_record(&p->h_store, (t_end - t_fuse) / 1000);
    }
    dc_hist_record(&p->h_total, (t_end - t0) / 1000);
    dc_rt_add(&p->errors, failed);
    dc_pl_errors_add(&p->errs, failed);

    if (g) dc_job_group_abandon(g);
    free(miss_item);
    for (size_t i = 0; i < n; i++) {
        item *it = &items[i];
        free(it->scrubbed);
        free(it->concat);
        dc_sparse_vector_free(&it->sparse);
        dc_token_matrix_free(&it->colbert);
        if (it->st != DC_OK) {
            uint64_t id = out[i].request_id;
            dc_pipeline_result_free(&out[i]);
            out[i].request_id = id;
        }
    }
    dc_status ret = DC_OK;
    if (first != DC_OK) {
        ret = n == 1 ? dc_fail(first, "%s", items[first_i].detail)
                     : dc_fail(first, "input %zu: %s", first_i, items[first_i].detail);
    }
    free(items);
    return ret;
}

static const dc_embed_options no_options;

dc_status dc_pipeline_embed(dc_pipeline *p, const dc_input *in, dc_pipeline_result *out) {
    return dc_pipeline_embed_ex(p, in, NULL, out);
}

dc_status dc_pipeline_embed_ex(dc_pipeline *p, const dc_input *in, const dc_embed_options *opt,
                               dc_pipeline_result *out) {
    if (out) dc_pipeline_result_init(out);
    if (!p || !in || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "embed: NULL pipeline, input or result");
    dc_status st = enter(p);
    if (st != DC_OK) return st;
    st = run_call(p, in, 1, opt ? opt : &no_options, out, NULL);
    leave(p);
    return st;
}

dc_status dc_pipeline_embed_batch(dc_pipeline *p, const dc_input *in, size_t n,
                                  dc_pipeline_result *out, dc_status *item_status) {
    return dc_pipeline_embed_batch_ex(p, in, n, NULL, out, item_status);
}

dc_status dc_pipeline_embed_batch_ex(dc_pipeline *p, const dc_input *in, size_t n,
                                     const dc_embed_options *opt, dc_pipeline_result *out,
                                     dc_status *item_status) {
    if (out)
        for (size_t i = 0; i < n; i++) dc_pipeline_result_init(&out[i]);
    if (!p || (n && (!in || !out)))
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "embed_batch: NULL pipeline, inputs or results");
    if (!n) return DC_OK;
    dc_status st = enter(p);
    if (st != DC_OK) {
        for (size_t i = 0; item_status && i < n; i++) item_status[i] = st;
        return st;
    }
    st = run_call(p, in, n, opt ? opt : &no_options, out, item_status);
    leave(p);
    return st;
}

/* ---- models ---- */

static dc_status check_id(dc_pipeline *p, dc_model_id id) {
    if (!p) return dc_fail(DC_ERR_INVALID_ARGUMENT, "NULL pipeline");
    if ((unsigned)id >= DC_NUM_MODELS) return dc_fail(DC_ERR_MODEL_NOT_FOUND, "model id %d is out of range", (int)id);
    return DC_OK;
}

dc_status dc_pipeline_load_model(dc_pipeline *p, dc_model_id id) {
    dc_status st = check_id(p, id);
    return st != DC_OK ? st : dc_registry_load(p->reg, id);
}

dc_status dc_pipeline_unload_model(dc_pipeline *p, dc_model_id id) {
    dc_status st = check_id(p, id);
    return st != DC_OK ? st : dc_registry_unload(p->reg, id);
}

dc_status dc_pipeline_swap_model(dc_pipeline *p, dc_model_id id, const dc_model_config *cfg) {
    dc_status st = check_id(p, id);
    if (st != DC_OK) return st;
    if (!cfg) return dc_fail(DC_ERR_INVALID_ARGUMENT, "swap: NULL model config");
    if (!p->queue[id])
        return dc_fail(DC_ERR_MODEL_NOT_FOUND, "swap: %s is not available in this pipeline",
                       dc_model_info_get(id)->label);
    /* the registry keeps the new configuration; p->cfg stays immutable (read without locks) */
    return dc_registry_swap(p->reg, id, cfg);
}

/* ---- cache ---- */

dc_status dc_pipeline_cache_save(dc_pipeline *p) {
    if (!p) return dc_fail(DC_ERR_INVALID_ARGUMENT, "NULL pipeline");
    if (!p->cache) return dc_fail(DC_ERR_CACHE, "the cache is disabled");
    if (!p->cfg.cache.disk_path[0]) return dc_fail(DC_ERR_CONFIG, "cache.disk_path is not set");
    return dc_cache_save(p->cache, p->cfg.cache.disk_path);
}

void dc_pipeline_cache_clear(dc_pipeline *p) {
    if (p && p->cache) dc_cache_clear(p->cache);
}

/* ---- tracing ---- */

dc_status dc_pipeline_trace_write(dc_pipeline *p, const char *path) {
    if (!p) return dc_fail(DC_ERR_INVALID_ARGUMENT, "NULL pipeline");
    return dc_tracer_write_chrome(p->tracer, path);
}

dc_status dc_pipeline_trace_flush(dc_pipeline *p) {
    if (!p) return dc_fail(DC_ERR_INVALID_ARGUMENT, "NULL pipeline");
    if (!p->cfg.trace.otlp_endpoint[0]) return dc_fail(DC_ERR_CONFIG, "trace.otlp_endpoint is not set");
    return dc_tracer_flush_otlp(p->tracer);
}

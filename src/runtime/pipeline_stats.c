/* Metrics, health (seed S02) and the EmbeddingProvider bridge (seed S03). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "models/pretrained.h"
#include "runtime/pipeline_internal.h"

static void summarize(const dc_hist *h, dc_latency_summary *s) {
    s->count = dc_hist_count(h);
    s->mean_us = dc_hist_mean(h);
    s->p50_us = dc_hist_quantile(h, 0.50);
    s->p95_us = dc_hist_quantile(h, 0.95);
    s->p99_us = dc_hist_quantile(h, 0.99);
    s->max_us = dc_rt_get(&h->max_us);
}

static bool degraded(const dc_model_counters *c) {
    uint32_t bits = atomic_load(&((dc_model_counters *)c)->recent);
    return __builtin_popcount(bits & 0xFFFFFu) > 2;
}

dc_status dc_pipeline_stats_get(dc_pipeline *p, dc_pipeline_stats *o) {
    if (!p || !o) return dc_fail(DC_ERR_INVALID_ARGUMENT, "stats: NULL argument");
    memset(o, 0, sizeof *o);
    o->requests = dc_rt_get(&p->requests);
    o->embeddings = dc_rt_get(&p->embeddings);
    o->errors = dc_rt_get(&p->errors);
    o->overloaded = dc_rt_get(&p->overloaded);
    o->timeouts = dc_rt_get(&p->timeouts);
    o->cancelled = dc_rt_get(&p->cancelled);
    if (p->cache) {
        dc_cache_stats cs;
        dc_cache_stats_get(p->cache, &cs);
        o->cache_hits = cs.hits;
        o->cache_misses = cs.misses;
        o->cache_entries = cs.entries;
        o->cache_bytes = cs.bytes;
        o->cache_evictions = cs.evictions;
        o->cache_hit_rate = cs.hit_rate;
    }
    if (p->redis) {
        dc_redis_stats rs;
        dc_redis_tier_stats(p->redis, &rs);
        o->redis_hits = rs.hits;
        o->redis_misses = rs.misses;
        o->redis_errors = rs.errors;
        o->redis_writes = rs.writes;
        o->redis_up = rs.up;
    }
    dc_registry_stats rs;
    dc_registry_stats_get(p->reg, &rs);
    o->memory_bytes = rs.memory_bytes;
    o->memory_peak_bytes = rs.memory_peak_bytes;
    o->memory_budget_bytes = rs.memory_budget_bytes;
    o->uptime_s = (double)(dc_rt_now_ns() - p->open_ns) / 1e9;
    o->throughput_per_s = o->uptime_s > 0 ? (double)o->embeddings / o->uptime_s : 0.0;
    summarize(&p->h_total, &o->total);
    summarize(&p->h_prepare, &o->prepare);
    summarize(&p->h_lookup, &o->cache_lookup);
    summarize(&p->h_tokenise, &o->tokenise);
    o->tokenizations = p->tok ? dc_tok_share_runs(p->tok) : 0;
    o->shared_tokenizers = p->tok ? dc_tok_share_tokenizers(p->tok) : 0;
    summarize(&p->h_models, &o->models);
    summarize(&p->h_fusion, &o->fusion);
    summarize(&p->h_store, &o->cache_store);
    dc_tracer_stats ts;
    dc_tracer_stats_get(p->tracer, &ts);
    o->traced_requests = ts.sampled_requests;
    o->trace_events_dropped = ts.dropped;
    o->warnings = dc_rt_get(&p->log.warnings);
    dc_warmup_report wr;
    dc_pipeline_warmup_report(p, &wr);
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        dc_pipeline_model_stats *m = &o->model[i];
        const dc_registry_model_stats *r = &rs.model[i];
        m->state = (dc_model_state)r->state;
        m->degraded = degraded(&p->mc[i]);
        m->ok = dc_rt_get(&p->mc[i].ok);
        m->timeouts = dc_rt_get(&p->mc[i].timeouts);
        m->failures = dc_rt_get(&p->mc[i].failures);
        m->skipped = dc_rt_get(&p->mc[i].skipped);
        m->memory_bytes = r->bytes;
        m->load_count = r->load_count;
        m->load_failures = r->load_failures;
        m->unload_count = r->unload_count;
        m->swap_count = r->swap_count;
        m->last_load_us = r->last_load_us;
        m->warmup_us = wr.model[i].duration_us;
        snprintf(m->reason, sizeof m->reason, "%.*s", (int)sizeof m->reason - 1,
                 r->state == DC_SLOT_UNAVAILABLE ? r->unavailable_reason : r->last_error_detail);
        dc_builtin_factory_placement(p->builtin, (dc_model_id)i, m->backend, sizeof m->backend);
        /* a loaded CUDA model says more: the device's name, its stream's SM partition or why
         * green contexts are not used */
        dc_rt_model *rm = NULL;
        if (!strncmp(m->backend, "cuda", 4) && dc_registry_is_loaded(p->reg, (dc_model_id)i) &&
            dc_registry_acquire(p->reg, (dc_model_id)i, false, &rm) == DC_OK) {
            const char *d = rm->builtin_pretrained ? dc_pretrained_backend_desc(rm->model) : "";
            if (d[0]) snprintf(m->backend, sizeof m->backend, "%s", d);
            if (rm->builtin_pretrained)
                dc_pretrained_graph_stats(rm->model, &m->graphs, &m->graph_launches,
                                          &m->graph_failures);
            dc_registry_release(p->reg, rm);
        }
        if (p->queue[i]) {
            const dc_batch_stats *b = dc_batch_queue_stats(p->queue[i]);
            m->batches = dc_rt_get(&b->batches);
            m->batch_items = dc_rt_get(&b->batch_items);
            m->max_batch = dc_rt_get(&b->max_batch_seen);
            m->queue_depth = dc_batch_queue_depth(p->queue[i]);
            m->overloaded = dc_rt_get(&b->overloaded);
            m->cancelled = dc_rt_get(&b->cancelled_dropped) + dc_rt_get(&b->cancelled_discarded);
            summarize(&b->queue_us, &m->queue);
            summarize(&b->forward_us, &m->forward);
        }
    }
    return DC_OK;
}

dc_status dc_pipeline_health_get(dc_pipeline *p, dc_pipeline_health *h) {
    if (!p || !h) return dc_fail(DC_ERR_INVALID_ARGUMENT, "health: NULL argument");
    memset(h, 0, sizeof *h);
    dc_registry_stats rs;
    dc_registry_stats_get(p->reg, &rs);
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        dc_slot_state s = rs.model[i].state;
        uint32_t bit = 1u << i;
        if (s == DC_SLOT_LOADED) h->loaded_mask |= bit;
        if (s == DC_SLOT_FAILED) h->failed_mask |= bit;
        /* ready: loaded, or loadable on first use */
        if (s == DC_SLOT_LOADED || (p->cfg.models.lazy_loading && (s == DC_SLOT_UNLOADED || s == DC_SLOT_LOADING)))
            h->ready_mask |= bit;
        if (degraded(&p->mc[i])) h->degraded_mask |= bit;
    }
    h->models_ready = (uint32_t)__builtin_popcount(h->ready_mask);
    h->models_loaded = (uint32_t)__builtin_popcount(h->loaded_mask);
    h->models_failed = (uint32_t)__builtin_popcount(h->failed_mask);
    h->models_degraded = (uint32_t)__builtin_popcount(h->degraded_mask);
    h->fusion_ready = p->fusion != NULL;
    h->redis_configured = p->redis != NULL;
    if (p->redis) {
        dc_redis_stats r;
        dc_redis_tier_stats(p->redis, &r);
        h->redis_up = r.up;
    }
    h->errors_last_minute = dc_pl_errors_last_minute(&p->errs);
    h->memory_bytes = rs.memory_bytes;
    h->memory_budget_bytes = rs.memory_budget_bytes;
    h->uptime_s = (double)(dc_rt_now_ns() - p->open_ns) / 1e9;
    bool e1 = (h->ready_mask >> DC_MODEL_SEMANTIC) & 1u;
    h->minimum_viable = h->fusion_ready && e1 && h->models_ready >= p->cfg.pipeline.min_models;
    bool mem_ok = !h->memory_budget_bytes || (double)h->memory_bytes < 0.9 * (double)h->memory_budget_bytes;
    if (!h->fusion_ready) snprintf(h->reason, sizeof h->reason, "the fusion is not up");
    else if (h->models_ready < 10)
        snprintf(h->reason, sizeof h->reason, "%u of 12 models ready (at least 10 needed)", h->models_ready);
    else if (!mem_ok)
        snprintf(h->reason, sizeof h->reason, "memory at %.0f %% of the budget",
                 100.0 * (double)h->memory_bytes / (double)h->memory_budget_bytes);
    else if (h->errors_last_minute >= 10)
        snprintf(h->reason, sizeof h->reason, "%u errors in the last minute", h->errors_last_minute);
    h->healthy = h->reason[0] == 0;
    return DC_OK;
}

/* ---- exports ---- */

static cJSON *latency_json(const dc_latency_summary *s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "count", (double)s->count);
    cJSON_AddNumberToObject(o, "mean_us", s->mean_us);
    cJSON_AddNumberToObject(o, "p50_us", (double)s->p50_us);
    cJSON_AddNumberToObject(o, "p95_us", (double)s->p95_us);
    cJSON_AddNumberToObject(o, "p99_us", (double)s->p99_us);
    cJSON_AddNumberToObject(o, "max_us", (double)s->max_us);
    return o;
}

dc_status dc_pipeline_metrics_json(dc_pipeline *p, char **out) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "metrics: NULL output");
    *out = NULL;
    dc_pipeline_stats *s = malloc(sizeof *s);
    if (!s) return dc_fail(DC_ERR_OUT_OF_MEMORY, "stats");
    dc_status st = dc_pipeline_stats_get(p, s);
    dc_pipeline_health h;
    if (st == DC_OK) st = dc_pipeline_health_get(p, &h);
    if (st != DC_OK) {
        free(s);
        return st;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON *req = cJSON_AddObjectToObject(root, "requests");
    cJSON_AddNumberToObject(req, "total", (double)s->requests);
    cJSON_AddNumberToObject(req, "embeddings", (double)s->embeddings);
    cJSON_AddNumberToObject(req, "errors", (double)s->errors);
    cJSON_AddNumberToObject(req, "overloaded", (double)s->overloaded);
    cJSON_AddNumberToObject(req, "timeouts", (double)s->timeouts);
    cJSON_AddNumberToObject(req, "cancelled", (double)s->cancelled);
    cJSON_AddNumberToObject(req, "throughput_per_s", s->throughput_per_s);
    cJSON *cache = cJSON_AddObjectToObject(root, "cache");
    cJSON_AddNumberToObject(cache, "hits", (double)s->cache_hits);
    cJSON_AddNumberToObject(cache, "misses", (double)s->cache_misses);
    cJSON_AddNumberToObject(cache, "hit_rate", s->cache_hit_rate);
    cJSON_AddNumberToObject(cache, "entries", (double)s->cache_entries);
    cJSON_AddNumberToObject(cache, "bytes", (double)s->cache_bytes);
    cJSON_AddNumberToObject(cache, "evictions", (double)s->cache_evictions);
    cJSON *redis = cJSON_AddObjectToObject(cache, "redis");
    cJSON_AddBoolToObject(redis, "configured", h.redis_configured);
    cJSON_AddBoolToObject(redis, "up", s->redis_up);
    cJSON_AddNumberToObject(redis, "hits", (double)s->redis_hits);
    cJSON_AddNumberToObject(redis, "misses", (double)s->redis_misses);
    cJSON_AddNumberToObject(redis, "errors", (double)s->redis_errors);
    cJSON_AddNumberToObject(redis, "writes", (double)s->redis_writes);
    cJSON *stages = cJSON_AddObjectToObject(root, "stages");
    cJSON_AddItemToObject(stages, "total", latency_json(&s->total));
    cJSON_AddItemToObject(stages, "prepare", latency_json(&s->prepare));
    cJSON_AddItemToObject(stages, "cache_lookup", latency_json(&s->cache_lookup));
    cJSON_AddItemToObject(stages, "tokenise", latency_json(&s->tokenise));
    cJSON_AddItemToObject(stages, "models", latency_json(&s->models));
    cJSON_AddItemToObject(stages, "fusion", latency_json(&s->fusion));
    cJSON_AddItemToObject(stages, "cache_store", latency_json(&s->cache_store));
    cJSON *mem = cJSON_AddObjectToObject(root, "memory");
    cJSON_AddNumberToObject(mem, "bytes", (double)s->memory_bytes);
    cJSON_AddNumberToObject(mem, "peak_bytes", (double)s->memory_peak_bytes);
    cJSON_AddNumberToObject(mem, "budget_bytes", (double)s->memory_budget_bytes);
    cJSON *models = cJSON_AddObjectToObject(root, "models");
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        const dc_pipeline_model_stats *m = &s->model[i];
        cJSON *o = cJSON_AddObjectToObject(models, dc_model_info_get((dc_model_id)i)->label);
        cJSON_AddStringToObject(o, "name", dc_model_info_get((dc_model_id)i)->name);
        cJSON_AddStringToObject(o, "state", dc_model_state_name(m->state));
        cJSON_AddBoolToObject(o, "degraded", m->degraded);
        cJSON_AddNumberToObject(o, "ok", (double)m->ok);
        cJSON_AddNumberToObject(o, "timeouts", (double)m->timeouts);
        cJSON_AddNumberToObject(o, "failures", (double)m->failures);
        cJSON_AddNumberToObject(o, "batches", (double)m->batches);
        cJSON_AddNumberToObject(o, "batch_items", (double)m->batch_items);
        cJSON_AddNumberToObject(o, "queue_depth", m->queue_depth);
        cJSON_AddNumberToObject(o, "memory_bytes", (double)m->memory_bytes);
        cJSON_AddNumberToObject(o, "warmup_us", (double)m->warmup_us);
        cJSON_AddItemToObject(o, "queue", latency_json(&m->queue));
        cJSON_AddItemToObject(o, "forward", latency_json(&m->forward));
        if (m->reason[0]) cJSON_AddStringToObject(o, "reason", m->reason);
        if (m->backend[0]) cJSON_AddStringToObject(o, "backend", m->backend);
        if (m->graphs || m->graph_failures) {
            cJSON *g = cJSON_AddObjectToObject(o, "cuda_graphs");
            cJSON_AddNumberToObject(g, "recorded", (double)m->graphs);
            cJSON_AddNumberToObject(g, "launches", (double)m->graph_launches);
            cJSON_AddNumberToObject(g, "failures", (double)m->graph_failures);
        }
    }
    cJSON *hj = cJSON_AddObjectToObject(root, "health");
    cJSON_AddBoolToObject(hj, "healthy", h.healthy);
    cJSON_AddBoolToObject(hj, "minimum_viable", h.minimum_viable);
    cJSON_AddNumberToObject(hj, "models_ready", h.models_ready);
    cJSON_AddNumberToObject(hj, "models_loaded", h.models_loaded);
    cJSON_AddNumberToObject(hj, "models_failed", h.models_failed);
    cJSON_AddNumberToObject(hj, "errors_last_minute", h.errors_last_minute);
    cJSON_AddNumberToObject(hj, "uptime_s", h.uptime_s);
    cJSON_AddStringToObject(hj, "reason", h.reason);
    free(s);
    *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return *out ? DC_OK : dc_fail(DC_ERR_OUT_OF_MEMORY, "metrics JSON");
}

static void prom_latency(dc_rt_buf *b, const char *name, const char *labels,
                         const dc_latency_summary *s) {
    static const char *const qs[3] = {"0.5", "0.95", "0.99"};
    uint64_t v[3] = {s->p50_us, s->p95_us, s->p99_us};
    for (int i = 0; i < 3; i++)
        dc_rt_buf_printf(b, "%s{%s%squantile=\"%s\"} %g\n", name, labels, labels[0] ? "," : "", qs[i],
                         (double)v[i] / 1e6);
    dc_rt_buf_printf(b, "%s_sum{%s} %g\n%s_count{%s} %" PRIu64 "\n", name, labels,
                     s->mean_us * (double)s->count / 1e6, name, labels, s->count);
}

dc_status dc_pipeline_metrics_prometheus(dc_pipeline *p, char **out) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "metrics: NULL output");
    *out = NULL;
    dc_pipeline_stats *s = malloc(sizeof *s);
    if (!s) return dc_fail(DC_ERR_OUT_OF_MEMORY, "stats");
    dc_pipeline_health h;
    dc_status st = dc_pipeline_stats_get(p, s);
    if (st == DC_OK) st = dc_pipeline_health_get(p, &h);
    if (st != DC_OK) {
        free(s);
        return st;
    }
    dc_rt_buf b = {0};
    dc_rt_buf_printf(&b, "# TYPE dodeca_requests_total counter\ndodeca_requests_total %" PRIu64 "\n", s->requests);
    dc_rt_buf_printf(&b, "# TYPE dodeca_embeddings_total counter\ndodeca_embeddings_total %" PRIu64 "\n", s->embeddings);
    dc_rt_buf_printf(&b, "# TYPE dodeca_errors_total counter\ndodeca_errors_total %" PRIu64 "\n", s->errors);
    dc_rt_buf_printf(&b, "# TYPE dodeca_overloaded_total counter\ndodeca_overloaded_total %" PRIu64 "\n", s->overloaded);
    dc_rt_buf_printf(&b, "# TYPE dodeca_timeouts_total counter\ndodeca_timeouts_total %" PRIu64 "\n", s->timeouts);
    dc_rt_buf_printf(&b, "# TYPE dodeca_cache_hits_total counter\ndodeca_cache_hits_total %" PRIu64 "\n", s->cache_hits);
    dc_rt_buf_printf(&b, "# TYPE dodeca_cache_misses_total counter\ndodeca_cache_misses_total %" PRIu64 "\n", s->cache_misses);
    dc_rt_buf_printf(&b, "# TYPE dodeca_cache_entries gauge\ndodeca_cache_entries %" PRIu64 "\n", s->cache_entries);
    dc_rt_buf_printf(&b, "# TYPE dodeca_cache_bytes gauge\ndodeca_cache_bytes %" PRIu64 "\n", s->cache_bytes);
    dc_rt_buf_printf(&b, "# TYPE dodeca_memory_bytes gauge\ndodeca_memory_bytes %" PRIu64 "\n", s->memory_bytes);
    dc_rt_buf_printf(&b, "# TYPE dodeca_memory_budget_bytes gauge\ndodeca_memory_budget_bytes %" PRIu64 "\n", s->memory_budget_bytes);
    dc_rt_buf_printf(&b, "# TYPE dodeca_healthy gauge\ndodeca_healthy %d\n", h.healthy ? 1 : 0);
    dc_rt_buf_printf(&b, "# TYPE dodeca_stage_seconds summary\n");
    static const char *const stage_names[7] = {"total", "prepare", "cache_lookup", "tokenise", "models", "fusion", "cache_store"};
    const dc_latency_summary *stages[7] = {&s->total, &s->prepare, &s->cache_lookup, &s->tokenise, &s->models, &s->fusion, &s->cache_store};
    for (int i = 0; i < 7; i++) {
        char l[64];
        snprintf(l, sizeof l, "stage=\"%s\"", stage_names[i]);
        prom_latency(&b, "dodeca_stage_seconds", l, stages[i]);
    }
    dc_rt_buf_printf(&b, "# TYPE dodeca_model_results_total counter\n");
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        const dc_pipeline_model_stats *m = &s->model[i];
        const char *lb = dc_model_info_get((dc_model_id)i)->label;
        dc_rt_buf_printf(&b, "dodeca_model_results_total{model=\"%s\",status=\"ok\"} %" PRIu64 "\n", lb, m->ok);
        dc_rt_buf_printf(&b, "dodeca_model_results_total{model=\"%s\",status=\"timeout\"} %" PRIu64 "\n", lb, m->timeouts);
        dc_rt_buf_printf(&b, "dodeca_model_results_total{model=\"%s\",status=\"failed\"} %" PRIu64 "\n", lb, m->failures);
    }
    dc_rt_buf_printf(&b, "# TYPE dodeca_model_loaded gauge\n");
    for (int i = 0; i < DC_NUM_MODELS; i++)
        dc_rt_buf_printf(&b, "dodeca_model_loaded{model=\"%s\"} %d\n", dc_model_info_get((dc_model_id)i)->label,
                         s->model[i].state == DC_MODEL_STATE_LOADED);
    dc_rt_buf_printf(&b, "# TYPE dodeca_queue_depth gauge\n");
    for (int i = 0; i < DC_NUM_MODELS; i++)
        dc_rt_buf_printf(&b, "dodeca_queue_depth{model=\"%s\"} %u\n", dc_model_info_get((dc_model_id)i)->label,
                         s->model[i].queue_depth);
    dc_rt_buf_printf(&b, "# TYPE dodeca_model_forward_seconds summary\n");
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        char l[64];
        snprintf(l, sizeof l, "model=\"%s\"", dc_model_info_get((dc_model_id)i)->label);
        prom_latency(&b, "dodeca_model_forward_seconds", l, &s->model[i].forward);
    }
    dc_rt_buf_printf(&b, "# TYPE dodeca_model_queue_seconds summary\n");
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        char l[64];
        snprintf(l, sizeof l, "model=\"%s\"", dc_model_info_get((dc_model_id)i)->label);
        prom_latency(&b, "dodeca_model_queue_seconds", l, &s->model[i].queue);
    }
    free(s);
    if (b.oom) {
        free(b.p);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "metrics text");
    }
    *out = b.p;
    return DC_OK;
}

/* ---- EmbeddingProvider bridge ---- */

static dc_status prov_embed(void *ctx, const char *text, size_t len, float *out) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "provider: NULL output");
    dc_input in = dc_input_text(text, len, DC_ROLE_PASSAGE);
    dc_pipeline_result r;
    dc_status st = dc_pipeline_embed((dc_pipeline *)ctx, &in, &r);
    if (st != DC_OK) return st;
    memcpy(out, r.fused.vector, sizeof r.fused.vector);
    dc_pipeline_result_free(&r);
    return DC_OK;
}

static dc_status prov_embed_batch(void *ctx, const char *const *texts, const size_t *lens,
                                  size_t n, float *out) {
    if (n && (!texts || !lens || !out)) return dc_fail(DC_ERR_INVALID_ARGUMENT, "provider: NULL argument");
    dc_input *ins = calloc(n ? n : 1, sizeof *ins);
    dc_pipeline_result *rs = calloc(n ? n : 1, sizeof *rs);
    if (!ins || !rs) {
        free(ins);
        free(rs);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "provider batch");
    }
    for (size_t i = 0; i < n; i++) ins[i] = dc_input_text(texts[i], lens[i], DC_ROLE_PASSAGE);
    dc_status st = dc_pipeline_embed_batch((dc_pipeline *)ctx, ins, n, rs, NULL);
    for (size_t i = 0; i < n; i++) {
        if (st == DC_OK) memcpy(out + i * DC_DIM_FUSED, rs[i].fused.vector, sizeof rs[i].fused.vector);
        dc_pipeline_result_free(&rs[i]);
    }
    free(ins);
    free(rs);
    return st;
}

static uint32_t prov_dimension(void *ctx) {
    (void)ctx;
    return DC_DIM_FUSED;
}
static const char *prov_name(void *ctx) {
    (void)ctx;
    return DC_PROVIDER_MODEL_NAME;
}
static uint32_t prov_max_tokens(void *ctx) {
    (void)ctx;
    return DC_PROVIDER_MAX_TOKENS;
}

dc_status dc_pipeline_provider(dc_pipeline *p, dc_embedding_provider *out) {
    if (!p || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "provider: NULL argument");
    out->ctx = p;
    out->embed = prov_embed;
    out->embed_batch = prov_embed_batch;
    out->dimension = prov_dimension;
    out->model_name = prov_name;
    out->max_tokens = prov_max_tokens;
    return DC_OK;
}

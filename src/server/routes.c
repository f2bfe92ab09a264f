/* The route handlers of `dodeca serve`: request → pipeline call → JSON (docs/http-api.md). */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dodeca/dodeca.h"
#include "server/http_buf.h"
#include "server/internal.h"

#define JSON_TYPE "application/json"

void dc_http_error(dc_http_response *r, unsigned code, const char *type, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dc_http_buf b;
    dc_http_buf_init(&b);
    dc_http_buf_puts(&b, "{\"error\":");
    dc_http_buf_json_string(&b, msg, strlen(msg));
    dc_http_buf_puts(&b, ",\"error_type\":");
    dc_http_buf_json_string(&b, type, strlen(type));
    dc_http_buf_puts(&b, "}");
    free(r->body);
    r->code = code;
    r->content_type = JSON_TYPE;
    r->body = dc_http_buf_take(&b, &r->len);
    r->retry_after = code == 429 || code == 503;
}

void dc_http_status_map(dc_status st, unsigned *code, const char **type) {
    switch (st) {
    case DC_OK:
        *code = 200, *type = "";
        break;
    case DC_ERR_OVERLOADED:
        *code = 429, *type = "Overloaded";
        break;
    case DC_ERR_TIMEOUT:
        *code = 504, *type = "Timeout";
        break;
    case DC_ERR_CANCELLED: /* the call was given up; nginx's "client closed request" */
        *code = 499, *type = "Cancelled";
        break;
    case DC_ERR_MODEL_NOT_FOUND:
        *code = 404, *type = "NotFound";
        break;
    case DC_ERR_EMPTY_INPUT:
    case DC_ERR_INPUT_TOO_LONG:
    case DC_ERR_INVALID_VALUE:
    case DC_ERR_INVALID_ARGUMENT:
    case DC_ERR_BATCH:
    case DC_ERR_SERIALIZATION:
    case DC_ERR_TOKENIZATION:
    case DC_ERR_UNSUPPORTED_MODALITY:
        *code = 422, *type = "Validation";
        break;
    case DC_ERR_NOT_INITIALIZED:
    case DC_ERR_FUSION:
        *code = 503, *type = "Unhealthy"; /* the pipeline cannot answer anything right now */
        break;
    case DC_ERR_INTERNAL:
    case DC_ERR_OUT_OF_MEMORY:
        *code = 500, *type = "Internal";
        break;
    default:
        *code = 424, *type = "Backend"; /* a model or the fusion failed (as TEI) */
        break;
    }
}

static void fail_status(dc_http_response *r, dc_status st, const char *detail) {
    unsigned code;
    const char *type;
    dc_http_status_map(st, &code, &type);
    dc_http_error(r, code, type, "%s", detail && *detail ? detail : dc_status_str(st));
}

static void set_body(dc_http_response *r, dc_http_buf *b, const char *type) {
    free(r->body);
    r->body = dc_http_buf_take(b, &r->len);
    if (!r->body) {
        dc_http_error(r, 500, "Internal", "out of memory writing the response");
        return;
    }
    r->code = 200;
    r->content_type = type;
}

/* ---- embedding routes ---- */

typedef struct embed_call {
    dc_input *in;
    dc_pipeline_result *res;
    dc_status *item;
    size_t n;
} embed_call;

static void embed_call_free(embed_call *c) {
    if (c->res)
        for (size_t i = 0; i < c->n; i++) dc_pipeline_result_free(&c->res[i]);
    free(c->in);
    free(c->res);
    free(c->item);
    memset(c, 0, sizeof *c);
}

/* Runs the inputs through the pipeline, in slices the queues accept. */
static dc_status embed_run(dc_server *s, const dc_http_request *q, const dc_embed_options *opt,
                           embed_call *c) {
    c->n = q->n;
    c->in = calloc(q->n, sizeof *c->in);
    c->res = calloc(q->n, sizeof *c->res);
    c->item = calloc(q->n, sizeof *c->item);
    if (!c->in || !c->res || !c->item) return dc_fail(DC_ERR_OUT_OF_MEMORY, "request of %zu inputs", q->n);
    for (size_t i = 0; i < q->n; i++) {
        c->in[i] = q->type == DC_INPUT_IMAGE ? dc_input_image(q->images[i], q->lens[i], q->image_formats[i])
                   : q->type == DC_INPUT_CODE ? dc_input_code(q->texts[i], q->lens[i], NULL)
                                              : dc_input_text(q->texts[i], q->lens[i], q->role);
        dc_pipeline_result_init(&c->res[i]);
    }
    size_t slice = s->cfg->batch.queue_capacity ? s->cfg->batch.queue_capacity : 1;
    for (size_t off = 0; off < q->n; off += slice) {
        size_t cnt = q->n - off < slice ? q->n - off : slice;
        dc_status st = dc_pipeline_embed_batch_ex(s->pipeline, c->in + off, cnt, opt, c->res + off,
                                                  c->item + off);
        if (st != DC_OK) {
            /* The pipeline's detail names the item within this slice ("input 3: ..."); name
             * it by the request's own field and index instead. */
            for (size_t i = off; i < off + cnt; i++) {
                if (c->item[i] == DC_OK) continue;
                char detail[768];
                const char *d = dc_error_detail();
                const char *colon = strstr(d, ": ");
                snprintf(detail, sizeof detail, "%s",
                         !strncmp(d, "input ", 6) && colon ? colon + 2 : d);
                return dc_fail(c->item[i], "%s[%zu]: %s",
                               q->route == DC_HTTP_ROUTE_OPENAI ? "input" : "inputs", i, detail);
            }
            return st;
        }
    }
    return DC_OK;
}

/* The vector the request asked for, item i, into out (room for DC_DIM_FUSED or the model's dim);
 * returns its length after `dimensions`. Model vectors are L2-normalised when `normalize`. */
static size_t pick_vector(const dc_pipeline_result *r, int model,
                          bool normalize, uint32_t dims, float *out) {
    size_t n;
    if (model < 0) {
        n = DC_DIM_FUSED;
        memcpy(out, r->fused.vector, n * sizeof *out);
    } else {
        const dc_model_result *m = &r->models[model];
        n = m->dim;
        memcpy(out, m->vector, n * sizeof *out);
        if (normalize) dc_vec_normalize(out, n);
    }
    if (dims && dims < n) {
        n = dims;
        dc_vec_normalize(out, n); /* as OpenAI's text-embedding-3 truncation: renormalised */
    }
    return n;
}

/* Checks that model k answered every item; fills *r and returns false otherwise. */
static bool model_answered(const dc_http_request *q, const embed_call *c, int k,
                           dc_http_response *r) {
    for (size_t i = 0; i < c->n; i++) {
        const dc_model_result *m = &c->res[i].models[k];
        if (m->status == DC_RUN_OK && m->vector) continue;
        const dc_model_info *info = dc_model_info_get((dc_model_id)k);
        dc_status st = m->status == DC_RUN_TIMEOUT ? DC_ERR_TIMEOUT
                       : m->status == DC_RUN_SKIPPED ? DC_ERR_UNSUPPORTED_MODALITY
                                                     : (m->error ? m->error : DC_ERR_MODEL_LOAD);
        unsigned code;
        const char *type;
        dc_http_status_map(st, &code, &type);
        dc_http_error(r, code, type, "%s[%zu]: model %s (%s) %s%s%s",
                      q->route == DC_HTTP_ROUTE_OPENAI ? "input" : "inputs", i, info->label,
                      info->short_name, dc_run_status_name(m->status), m->detail[0] ? ": " : "",
                      m->detail);
        return false;
    }
    return true;
}

static uint32_t item_tokens(const dc_pipeline_result *r, int model) {
    if (model >= 0) return r->models[model].tokens_used;
    uint32_t t = 0;
    for (int k = 0; k < DC_NUM_MODELS; k++)
        if (r->models[k].status == DC_RUN_OK && r->models[k].tokens_used > t)
            t = r->models[k].tokens_used;
    return t;
}

static void write_openai(const dc_http_request *q, const embed_call *c, dc_http_buf *b) {
    float *vec = malloc(sizeof(float) * DC_DIM_CONCATENATED);
    if (!vec) {
        b->failed = true;
        return;
    }
    uint64_t tokens = 0;
    dc_http_buf_puts(b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < c->n; i++) {
        size_t n = pick_vector(&c->res[i], q->model, true, q->dimensions, vec);
        dc_http_buf_printf(b, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i ? "," : "", i);
        if (q->base64)
            dc_http_buf_float_base64(b, vec, n);
        else
            dc_http_buf_float_array(b, vec, n);
        dc_http_buf_puts(b, "}");
        tokens += item_tokens(&c->res[i], q->model);
    }
    const char *name = q->model_name ? q->model_name : DC_HTTP_FUSED_MODEL;
    dc_http_buf_puts(b, "],\"model\":");
    dc_http_buf_json_string(b, name, strlen(name));
    dc_http_buf_printf(b, ",\"usage\":{\"prompt_tokens\":%" PRIu64 ",\"total_tokens\":%" PRIu64 "}}",
                       tokens, tokens);
    free(vec);
}

static void write_embed(const dc_http_request *q, const embed_call *c, dc_http_buf *b) {
    float *vec = malloc(sizeof(float) * DC_DIM_CONCATENATED);
    if (!vec) {
        b->failed = true;
        return;
    }
    dc_http_buf_puts(b, "[");
    for (size_t i = 0; i < c->n; i++) {
        const dc_pipeline_result *r = &c->res[i];
        if (i) dc_http_buf_puts(b, ",");
        size_t n = pick_vector(r, q->model, q->normalize, q->dimensions, vec);
        if (!q->per_model_mask) {
            dc_http_buf_float_array(b, vec, n);
            continue;
        }
        dc_http_buf_puts(b, "{\"embedding\":");
        dc_http_buf_float_array(b, vec, n);
        dc_http_buf_puts(b, ",\"models\":{");
        bool first = true;
        for (int k = 0; k < DC_NUM_MODELS; k++) {
            if (!((q->per_model_mask >> k) & 1u)) continue;
            const dc_model_result *m = &r->models[k];
            dc_http_buf_printf(b, "%s\"%s\":", first ? "" : ",", dc_model_info_get((dc_model_id)k)->label);
            first = false;
            if (m->status != DC_RUN_OK || !m->vector) {
                dc_http_buf_puts(b, "null"); /* not run for this input: "status" says why */
                continue;
            }
            size_t mn = pick_vector(r, k, q->normalize, 0, vec);
            dc_http_buf_float_array(b, vec, mn);
        }
        dc_http_buf_puts(b, "},\"status\":{");
        first = true;
        for (int k = 0; k < DC_NUM_MODELS; k++) {
            if (!((q->per_model_mask >> k) & 1u)) continue;
            dc_http_buf_printf(b, "%s\"%s\":\"%s\"", first ? "" : ",",
                               dc_model_info_get((dc_model_id)k)->label,
                               dc_run_status_name(r->models[k].status));
            first = false;
        }
        dc_http_buf_puts(b, "}}");
    }
    dc_http_buf_puts(b, "]");
    free(vec);
}

static void write_sparse(const embed_call *c, dc_http_buf *b) {
    dc_http_buf_puts(b, "[");
    for (size_t i = 0; i < c->n; i++) {
        const dc_sparse_vector *sp = &c->res[i].fused.sparse;
        dc_http_buf_puts(b, i ? ",[" : "[");
        for (uint32_t j = 0; j < sp->nnz; j++) {
            dc_http_buf_printf(b, "%s{\"index\":%" PRIu32 ",\"value\":", j ? "," : "", sp->indices[j]);
            dc_http_buf_float(b, sp->values[j]);
            dc_http_buf_puts(b, "}");
        }
        dc_http_buf_puts(b, "]");
    }
    dc_http_buf_puts(b, "]");
}

static void write_multi(const embed_call *c, dc_http_buf *b) {
    dc_http_buf_puts(b, "[");
    for (size_t i = 0; i < c->n; i++) {
        const dc_token_matrix *t = &c->res[i].fused.colbert;
        dc_http_buf_puts(b, i ? ",[" : "[");
        for (uint32_t j = 0; j < t->n_tokens; j++) {
            if (j) dc_http_buf_puts(b, ",");
            dc_http_buf_float_array(b, t->data + (size_t)j * t->dim, t->dim);
        }
        dc_http_buf_puts(b, "]");
    }
    dc_http_buf_puts(b, "]");
}

static void write_similarity(const dc_http_request *q, const embed_call *c, dc_http_buf *b) {
    float *src = malloc(sizeof(float) * DC_DIM_CONCATENATED);
    float *vec = malloc(sizeof(float) * DC_DIM_CONCATENATED);
    if (!src || !vec) {
        b->failed = true;
        free(src);
        free(vec);
        return;
    }
    size_t n = pick_vector(&c->res[0], q->model, true, q->dimensions, src);
    dc_http_buf_puts(b, "[");
    for (size_t i = 1; i < c->n; i++) {
        pick_vector(&c->res[i], q->model, true, q->dimensions, vec);
        if (i > 1) dc_http_buf_puts(b, ",");
        dc_http_buf_float(b, (float)dc_vec_cosine(src, vec, n));
    }
    dc_http_buf_puts(b, "]");
    free(src);
    free(vec);
}

void dc_http_route_embeddings(dc_server *s, dc_http_route route, const char *body, size_t len,
                              dc_cancel_token *cancel, dc_http_response *r) {
    dc_http_request q;
    dc_status st = dc_http_request_parse(route, body, len, &s->limits, &q);
    if (st) {
        fail_status(r, st, dc_error_detail());
        return;
    }
    dc_embed_options opt = {0};
    opt.no_aux = true;
    opt.cancel = cancel;
    int need = q.model; /* the model whose own output the answer is made of, if any */
    if (route == DC_HTTP_ROUTE_SPARSE) need = DC_MODEL_SPARSE, opt.no_aux = false;
    if (route == DC_HTTP_ROUTE_MULTI) need = DC_MODEL_LATE_INTERACTION, opt.no_aux = false;
    if (need >= 0) opt.model_mask = 1u << need; /* only that model runs */
    if (route == DC_HTTP_ROUTE_EMBED && q.per_model_mask && need >= 0)
        opt.model_mask |= q.per_model_mask;

    if (need >= 0) {
        dc_pipeline_health h;
        if (dc_pipeline_health_get(s->pipeline, &h) == DC_OK && !((h.ready_mask >> need) & 1u)) {
            const dc_model_info *info = dc_model_info_get((dc_model_id)need);
            dc_http_error(r, 400, "Unsupported",
                          "model %s (%s) is not available on this server (GET /info shows each "
                          "model's state)",
                          info->label, info->repo ? info->repo : info->short_name);
            dc_http_request_free(&q);
            return;
        }
    }

    embed_call c = {0};
    st = embed_run(s, &q, &opt, &c);
    if (st) {
        fail_status(r, st, dc_error_detail());
    } else if (need < 0 || model_answered(&q, &c, need, r)) {
        bool ok = true;
        if (!q.truncate) {
            for (size_t i = 0; i < c.n && ok; i++) {
                uint32_t tm = c.res[i].truncated_mask & (opt.model_mask ? opt.model_mask : c.res[i].ok_mask);
                if (!tm) continue;
                int k = __builtin_ctz(tm);
                dc_http_error(r, 422, "Validation",
                              "inputs[%zu]: longer than model %s takes (%u tokens) and "
                              "truncate is false",
                              i, dc_model_info_get((dc_model_id)k)->label,
                              (unsigned)dc_model_info_get((dc_model_id)k)->max_tokens);
                ok = false;
            }
        }
        if (ok) {
            dc_http_buf b;
            dc_http_buf_init(&b);
            switch (route) {
            case DC_HTTP_ROUTE_OPENAI:
                write_openai(&q, &c, &b);
                break;
            case DC_HTTP_ROUTE_EMBED:
                write_embed(&q, &c, &b);
                break;
            case DC_HTTP_ROUTE_SPARSE:
                write_sparse(&c, &b);
                break;
            case DC_HTTP_ROUTE_MULTI:
                write_multi(&c, &b);
                break;
            default:
                write_similarity(&q, &c, &b);
                break;
            }
            set_body(r, &b, JSON_TYPE);
        }
    }
    embed_call_free(&c);
    dc_http_request_free(&q);
}

/* ---- health, info, metrics ---- */

static void write_mask(dc_http_buf *b, const char *key, uint32_t mask) {
    dc_http_buf_printf(b, ",\"%s\":[", key);
    bool first = true;
    for (int k = 0; k < DC_NUM_MODELS; k++) {
        if (!((mask >> k) & 1u)) continue;
        dc_http_buf_printf(b, "%s\"%s\"", first ? "" : ",", dc_model_info_get((dc_model_id)k)->label);
        first = false;
    }
    dc_http_buf_puts(b, "]");
}

void dc_http_route_health(dc_server *s, dc_http_response *r) {
    dc_pipeline_health h;
    dc_status st = dc_pipeline_health_get(s->pipeline, &h);
    if (st) {
        dc_http_error(r, 503, "Unhealthy", "health: %s", dc_error_detail());
        return;
    }
    bool down = atomic_load(&s->shutting_down);
    dc_http_buf b;
    dc_http_buf_init(&b);
    dc_http_buf_printf(&b, "{\"status\":\"%s\",\"healthy\":%s,\"minimum_viable\":%s",
                       down ? "shutting_down" : h.healthy ? "healthy" : "unhealthy",
                       h.healthy && !down ? "true" : "false", h.minimum_viable ? "true" : "false");
    dc_http_buf_printf(&b,
                       ",\"models_ready\":%u,\"models_loaded\":%u,\"models_failed\":%u,"
                       "\"models_degraded\":%u",
                       h.models_ready, h.models_loaded, h.models_failed, h.models_degraded);
    write_mask(&b, "ready", h.ready_mask);
    write_mask(&b, "loaded", h.loaded_mask);
    write_mask(&b, "failed", h.failed_mask);
    write_mask(&b, "degraded", h.degraded_mask);
    dc_http_buf_printf(&b,
                       ",\"fusion_ready\":%s,\"redis_configured\":%s,\"redis_up\":%s,"
                       "\"errors_last_minute\":%u,\"memory_bytes\":%" PRIu64
                       ",\"memory_budget_bytes\":%" PRIu64 ",\"uptime_s\":%.3f,\"reason\":",
                       h.fusion_ready ? "true" : "false", h.redis_configured ? "true" : "false",
                       h.redis_up ? "true" : "false", h.errors_last_minute, h.memory_bytes,
                       h.memory_budget_bytes, h.uptime_s);
    const char *reason = down ? "shutting down" : h.reason;
    dc_http_buf_json_string(&b, reason, strlen(reason));
    dc_http_buf_puts(&b, "}");
    set_body(r, &b, JSON_TYPE);
    if (r->code == 200 && (!h.healthy || down)) {
        r->code = 503;
        r->retry_after = true;
    }
}

void dc_http_route_info(dc_server *s, dc_http_response *r) {
    dc_pipeline_stats *st = malloc(sizeof *st);
    if (!st || dc_pipeline_stats_get(s->pipeline, st) != DC_OK) {
        free(st);
        dc_http_error(r, 500, "Internal", "stats: %s", dc_error_detail());
        return;
    }
    const dc_server_config *sc = &s->cfg->server;
    dc_http_buf b;
    dc_http_buf_init(&b);
    dc_http_buf_printf(&b,
                       "{\"model_id\":\"%s\",\"version\":\"%s\",\"dimension\":%d,"
                       "\"max_client_batch_size\":%u,\"max_input_length\":%" PRIu64
                       ",\"max_body_bytes\":%" PRIu64 ",\"max_concurrent_requests\":%u,"
                       "\"auth\":%s,\"pii_scrub\":%s,\"cache\":%s,\"redis\":%s,\"models\":[",
                       DC_HTTP_FUSED_MODEL, dc_version(), DC_DIM_FUSED, sc->max_batch_items,
                       sc->max_input_chars, sc->max_body_bytes, s->opt.max_concurrent,
                       sc->api_key[0] ? "true" : "false", s->cfg->pii.enabled ? "true" : "false",
                       s->cfg->cache.enabled ? "true" : "false",
                       s->cfg->cache.redis_url[0] ? "true" : "false");
    for (int k = 0; k < DC_NUM_MODELS; k++) {
        const dc_model_info *info = dc_model_info_get((dc_model_id)k);
        dc_http_buf_printf(&b,
                           "%s{\"id\":\"%s\",\"name\":\"%s\",\"short_name\":\"%s\",\"repo\":",
                           k ? "," : "", info->label, info->name, info->short_name);
        if (info->repo)
            dc_http_buf_json_string(&b, info->repo, strlen(info->repo));
        else
            dc_http_buf_puts(&b, "null");
        dc_http_buf_printf(&b,
                           ",\"kind\":\"%s\",\"dim\":%u,\"native_dim\":%u,\"max_tokens\":%u,"
                           "\"inputs\":[",
                           info->kind == DC_MODEL_KIND_CUSTOM ? "custom" : "pretrained", info->dim,
                           info->native_dim, info->max_tokens);
        bool first = true;
        for (int t = 0; t < DC_NUM_INPUT_TYPES; t++) {
            if (!((info->input_mask >> t) & 1u)) continue;
            dc_http_buf_printf(&b, "%s\"%s\"", first ? "" : ",", dc_input_type_name((dc_input_type)t));
            first = false;
        }
        dc_http_buf_printf(&b, "],\"state\":\"%s\",\"enabled\":%s,\"reason\":",
                           dc_model_state_name(st->model[k].state),
                           s->cfg->models.model[k].enabled ? "true" : "false");
        dc_http_buf_json_string(&b, st->model[k].reason, strlen(st->model[k].reason));
        dc_http_buf_puts(&b, "}");
    }
    dc_http_buf_puts(&b, "],\"routes\":[\"POST /v1/embeddings\",\"POST /embed\",\"POST /embed_sparse\","
                         "\"POST /embed_multi\",\"POST /similarity\",\"GET /health\",\"GET /info\","
                         "\"GET /metrics\",\"GET /v1/models\"]}");
    free(st);
    set_body(r, &b, JSON_TYPE);
}

/* OpenAI's model list: the fused vector, then each model that can answer now, by the names
 * `model` accepts (the Hugging Face repo id for pretrained models, else the short name). */
void dc_http_route_models(dc_server *s, dc_http_response *r) {
    dc_pipeline_health h;
    if (dc_pipeline_health_get(s->pipeline, &h) != DC_OK) h.ready_mask = 0;
    dc_http_buf b;
    dc_http_buf_init(&b);
    dc_http_buf_puts(&b, "{\"object\":\"list\",\"data\":[{\"id\":\"" DC_HTTP_FUSED_MODEL
                         "\",\"object\":\"model\",\"created\":0,\"owned_by\":\"dodeca\"}");
    for (int k = 0; k < DC_NUM_MODELS; k++) {
        if (!((h.ready_mask >> k) & 1u)) continue;
        const dc_model_info *info = dc_model_info_get((dc_model_id)k);
        const char *id = info->repo ? info->repo : info->short_name;
        dc_http_buf_puts(&b, ",{\"id\":");
        dc_http_buf_json_string(&b, id, strlen(id));
        dc_http_buf_printf(&b, ",\"object\":\"model\",\"created\":0,\"owned_by\":\"%s\"}",
                           info->repo ? "huggingface" : "dodeca");
    }
    dc_http_buf_puts(&b, "]}");
    set_body(r, &b, JSON_TYPE);
}

void dc_http_route_metrics(dc_server *s, unsigned connections, dc_http_response *r) {
    dc_http_buf b;
    dc_http_buf_init(&b);
    dc_http_metrics_write(&s->metrics, &b);
    dc_http_buf_printf(&b,
                       "# HELP dodeca_http_connections Open client connections.\n"
                       "# TYPE dodeca_http_connections gauge\ndodeca_http_connections %u\n",
                       connections);
    dc_pipeline_stats *st = malloc(sizeof *st);
    if (st && dc_pipeline_stats_get(s->pipeline, st) == DC_OK) {
        /* The shared tier's counters: a hit here is a vector another process computed. */
        dc_http_buf_printf(&b,
                           "# TYPE dodeca_cache_redis_hits_total counter\n"
                           "dodeca_cache_redis_hits_total %" PRIu64 "\n"
                           "# TYPE dodeca_cache_redis_misses_total counter\n"
                           "dodeca_cache_redis_misses_total %" PRIu64 "\n"
                           "# TYPE dodeca_cache_redis_errors_total counter\n"
                           "dodeca_cache_redis_errors_total %" PRIu64 "\n"
                           "# TYPE dodeca_cache_redis_writes_total counter\n"
                           "dodeca_cache_redis_writes_total %" PRIu64 "\n"
                           "# TYPE dodeca_cache_redis_up gauge\ndodeca_cache_redis_up %d\n",
                           st->redis_hits, st->redis_misses, st->redis_errors, st->redis_writes,
                           st->redis_up ? 1 : 0);
    }
    free(st);
    char *text = NULL;
    if (dc_pipeline_metrics_prometheus(s->pipeline, &text) == DC_OK && text) dc_http_buf_puts(&b, text);
    free(text);
    set_body(r, &b, "text/plain; version=0.0.4; charset=utf-8");
}

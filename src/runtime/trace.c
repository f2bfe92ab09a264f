/* Span ring, Chrome trace-event JSON and OTLP/HTTP JSON export. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dodeca/types.h"
#include "runtime/otlp_http.h"
#include "runtime/trace.h"

typedef struct span {
    const char *name;
    uint64_t request_id;
    uint64_t start_ns, end_ns;
    uint64_t value;
    int model;
} span;

struct dc_tracer {
    bool enabled;
    double rate;
    char chrome_path[DC_CONFIG_PATH_MAX];
    char otlp[DC_CONFIG_URL_MAX];
    dc_otlp_http *otlp_http; /* the transport, when otlp is set */
    dc_rt_logger *log;
    uint64_t mono0_ns;  /* monotonic origin */
    double wall0_s;     /* wall time at the origin, for OTLP's Unix nanoseconds */
    pthread_mutex_t mu;
    span *ring;
    uint64_t cap, next, exported_upto;
    uint64_t dropped, exported, export_failures;
    atomic_uint_fast64_t sampled;
    pthread_t exporter;
    bool exporter_running, stop;
    pthread_cond_t cv;
};

static uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

bool dc_tracer_sampled(const dc_tracer *t, uint64_t request_id) {
    if (!t || !t->enabled) return false;
    if (t->rate >= 1.0) return true;
    if (t->rate <= 0.0) return false;
    return (double)(mix64(request_id) >> 11) / 9007199254740992.0 < t->rate;
}

void dc_tracer_note_request(dc_tracer *t) {
    if (t) dc_rt_add(&t->sampled, 1);
}

void dc_tracer_span(dc_tracer *t, uint64_t request_id, const char *name, int model,
                    uint64_t start_ns, uint64_t end_ns, uint64_t value) {
    if (!t || !t->enabled) return;
    pthread_mutex_lock(&t->mu);
    if (t->next - t->exported_upto >= t->cap && t->otlp[0]) t->dropped++; /* never exported */
    else if (t->next >= t->cap && !t->otlp[0]) t->dropped++;               /* overwritten */
    span *s = &t->ring[t->next % t->cap];
    s->name = name;
    s->request_id = request_id;
    s->start_ns = start_ns;
    s->end_ns = end_ns < start_ns ? start_ns : end_ns;
    s->value = value;
    s->model = model;
    t->next++;
    if (t->next - t->exported_upto > t->cap) t->exported_upto = t->next - t->cap;
    pthread_mutex_unlock(&t->mu);
}

/* Copies the live spans [from, next) out of the ring. */
static span *snapshot(dc_tracer *t, bool since_export, size_t *n, uint64_t *upto) {
    pthread_mutex_lock(&t->mu);
    uint64_t lo = t->next > t->cap ? t->next - t->cap : 0;
    if (since_export && t->exported_upto > lo) lo = t->exported_upto;
    size_t cnt = (size_t)(t->next - lo);
    span *out = malloc((cnt ? cnt : 1) * sizeof *out);
    if (out)
        for (size_t i = 0; i < cnt; i++) out[i] = t->ring[(lo + i) % t->cap];
    *n = out ? cnt : 0;
    *upto = t->next;
    pthread_mutex_unlock(&t->mu);
    return out;
}

static const char *model_label(int m) {
    const dc_model_info *i = m >= 0 ? dc_model_info_get((dc_model_id)m) : NULL;
    return i ? i->label : "";
}

dc_status dc_tracer_chrome_json(dc_tracer *t, char **out) {
    *out = NULL;
    if (!t) return dc_fail(DC_ERR_INVALID_ARGUMENT, "trace: no tracer");
    size_t n = 0;
    uint64_t upto = 0;
    span *s = snapshot(t, false, &n, &upto);
    if (!s) return dc_fail(DC_ERR_OUT_OF_MEMORY, "trace snapshot");
    dc_rt_buf b = {0};
    dc_rt_buf_printf(&b, "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[");
    /* lanes: tid 1 = requests, tid 100+i = model Ei; names say which request */
    dc_rt_buf_printf(&b, "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"args\":{\"name\":\"dodeca pipeline\"}}");
    dc_rt_buf_printf(&b, ",{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":1,\"args\":{\"name\":\"requests\"}}");
    for (int m = 0; m < DC_NUM_MODELS; m++)
        dc_rt_buf_printf(&b, ",{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":%d,\"args\":{\"name\":\"%s %s\"}}",
                  100 + m, model_label(m), dc_model_info_get((dc_model_id)m)->name);
    for (size_t i = 0; i < n; i++) {
        const span *e = &s[i];
        double ts = (double)(e->start_ns - t->mono0_ns) / 1000.0;
        double dur = (double)(e->end_ns - e->start_ns) / 1000.0;
        int tid = e->model >= 0 ? 100 + e->model : 1;
        dc_rt_buf_printf(&b, ",{\"name\":\"%s%s%s\",\"cat\":\"%s\",\"ph\":\"X\",\"ts\":%.3f,\"dur\":%.3f,"
                      "\"pid\":1,\"tid\":%d,\"args\":{\"request_id\":%" PRIu64,
                  e->name, e->model >= 0 ? " " : "", model_label(e->model),
                  e->model >= 0 ? "model" : "pipeline", ts, dur, tid, e->request_id);
        if (e->value) dc_rt_buf_printf(&b, ",\"value\":%" PRIu64, e->value);
        dc_rt_buf_printf(&b, "}}");
    }
    dc_rt_buf_printf(&b, "]}\n");
    free(s);
    if (b.oom) {
        free(b.p);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "trace JSON");
    }
    *out = b.p;
    return DC_OK;
}

dc_status dc_tracer_write_chrome(dc_tracer *t, const char *path) {
    if (!path || !path[0]) return dc_fail(DC_ERR_INVALID_ARGUMENT, "trace: no path");
    char *json = NULL;
    dc_status st = dc_tracer_chrome_json(t, &json);
    if (st != DC_OK) return st;
    FILE *f = fopen(path, "w");
    if (!f) {
        free(json);
        return dc_fail(DC_ERR_IO, "trace: open %s: %s", path, strerror(errno));
    }
    size_t len = strlen(json);
    bool ok = fwrite(json, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    free(json);
    return ok ? DC_OK : dc_fail(DC_ERR_IO, "trace: write %s failed", path);
}

/* ---- OTLP/HTTP JSON ---- */

static void hex_id(char *out, uint64_t a, uint64_t b, bool wide) {
    if (wide) snprintf(out, 33, "%016" PRIx64 "%016" PRIx64, a, b);
    else snprintf(out, 17, "%016" PRIx64, a);
}

dc_status dc_tracer_flush_otlp(dc_tracer *t) {
    if (!t || !t->otlp[0]) return DC_OK;
    size_t n = 0;
    uint64_t upto = 0;
    span *s = snapshot(t, true, &n, &upto);
    if (!s) return dc_fail(DC_ERR_OUT_OF_MEMORY, "trace snapshot");
    if (!n) {
        free(s);
        return DC_OK;
    }
    dc_rt_buf b = {0};
    dc_rt_buf_printf(&b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
                  "\"value\":{\"stringValue\":\"dodeca\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":"
                  "\"dodeca.pipeline\"},\"spans\":[");
    for (size_t i = 0; i < n; i++) {
        const span *e = &s[i];
        char trace_id[33], span_id[17], parent[17];
        hex_id(trace_id, mix64(e->request_id), e->request_id, true);
        bool root = e->model < 0 && !strcmp(e->name, "embed");
        /* the root span id derives from the request alone, so children can name it */
        hex_id(parent, mix64(e->request_id ^ 0x5eedull), 0, false);
        if (root) memcpy(span_id, parent, sizeof span_id);
        else hex_id(span_id, mix64(e->request_id ^ mix64(e->start_ns ^ (uint64_t)(e->model + 7) ^ (uint64_t)(uintptr_t)e->name)), 0, false);
        uint64_t st_ns = (uint64_t)(t->wall0_s * 1e9) + (e->start_ns - t->mono0_ns);
        uint64_t en_ns = st_ns + (e->end_ns - e->start_ns);
        dc_rt_buf_printf(&b, "%s{\"traceId\":\"%s\",\"spanId\":\"%s\",%s%s%s\"name\":\"%s%s%s\",\"kind\":1,"
                      "\"startTimeUnixNano\":\"%" PRIu64 "\",\"endTimeUnixNano\":\"%" PRIu64 "\","
                      "\"attributes\":[{\"key\":\"request_id\",\"value\":{\"intValue\":\"%" PRIu64 "\"}}",
                  i ? "," : "", trace_id, span_id, root ? "" : "\"parentSpanId\":\"",
                  root ? "" : parent, root ? "" : "\",", e->name, e->model >= 0 ? " " : "",
                  model_label(e->model), st_ns, en_ns, e->request_id);
        if (e->model >= 0)
            dc_rt_buf_printf(&b, ",{\"key\":\"model\",\"value\":{\"stringValue\":\"%s\"}}", model_label(e->model));
        if (e->value) dc_rt_buf_printf(&b, ",{\"key\":\"value\",\"value\":{\"intValue\":\"%" PRIu64 "\"}}", e->value);
        dc_rt_buf_printf(&b, "]}");
    }
    dc_rt_buf_printf(&b, "]}]}]}");
    free(s);
    if (b.oom) {
        free(b.p);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "OTLP body");
    }
    dc_status st = dc_otlp_http_post(t->otlp_http, b.p, b.len, 5000, NULL);
    free(b.p);
    pthread_mutex_lock(&t->mu);
    if (st == DC_OK) {
        t->exported += n;
        if (upto > t->exported_upto) t->exported_upto = upto;
    } else {
        t->export_failures++;
    }
    pthread_mutex_unlock(&t->mu);
    return st;
}

static void *exporter_main(void *p) {
    dc_tracer *t = p;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        dc_rt_cond_wait_until(&t->cv, &t->mu, dc_rt_now_ns() + 2000000000ull);
        if (t->stop) break;
        pthread_mutex_unlock(&t->mu);
        if (dc_tracer_flush_otlp(t) != DC_OK)
            dc_rt_log(t->log, DC_RT_LOG_WARN, "trace export failed: %s", dc_error_detail());
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

dc_status dc_tracer_create(const dc_trace_config *cfg, uint32_t capacity, dc_rt_logger *log,
                           dc_tracer **out) {
    *out = NULL;
    dc_tracer *t = calloc(1, sizeof *t);
    if (!t) return dc_fail(DC_ERR_OUT_OF_MEMORY, "tracer");
    t->enabled = cfg && cfg->enabled;
    t->rate = cfg ? cfg->sample_rate : 0.0;
    t->log = log;
    if (cfg) {
        snprintf(t->chrome_path, sizeof t->chrome_path, "%s", cfg->chrome_path);
        snprintf(t->otlp, sizeof t->otlp, "%s", cfg->otlp_endpoint);
    }
    t->mono0_ns = dc_rt_now_ns();
    t->wall0_s = dc_rt_wall_seconds();
    t->cap = capacity ? capacity : DC_TRACE_DEFAULT_CAPACITY;
    if (t->enabled) {
        t->ring = calloc((size_t)t->cap, sizeof *t->ring);
        if (!t->ring) {
            uint64_t cap = t->cap;
            free(t);
            return dc_fail(DC_ERR_OUT_OF_MEMORY, "trace ring of %" PRIu64 " spans", cap);
        }
    }
    if (t->otlp[0]) {
        dc_status st = dc_otlp_http_create(t->otlp, cfg->otlp_headers, cfg->otlp_header_count,
                                           cfg->otlp_ca_file, &t->otlp_http);
        if (st != DC_OK) {
            free(t->ring);
            free(t);
            return st;
        }
    }
    pthread_mutex_init(&t->mu, NULL);
    dc_rt_cond_init(&t->cv);
    if (t->enabled && t->otlp[0] && pthread_create(&t->exporter, NULL, exporter_main, t) == 0)
        t->exporter_running = true;
    *out = t;
    return DC_OK;
}

void dc_tracer_destroy(dc_tracer *t) {
    if (!t) return;
    if (t->exporter_running) {
        pthread_mutex_lock(&t->mu);
        t->stop = true;
        pthread_cond_broadcast(&t->cv);
        pthread_mutex_unlock(&t->mu);
        pthread_join(t->exporter, NULL);
    }
    if (t->enabled && t->otlp[0] && dc_tracer_flush_otlp(t) != DC_OK)
        dc_rt_log(t->log, DC_RT_LOG_WARN, "final trace export failed: %s", dc_error_detail());
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    dc_otlp_http_destroy(t->otlp_http);
    free(t->ring);
    free(t);
}

void dc_tracer_stats_get(dc_tracer *t, dc_tracer_stats *o) {
    memset(o, 0, sizeof *o);
    if (!t) return;
    pthread_mutex_lock(&t->mu);
    o->spans = t->next;
    o->dropped = t->dropped;
    o->exported = t->exported;
    o->export_failures = t->export_failures;
    pthread_mutex_unlock(&t->mu);
    o->sampled_requests = dc_rt_get(&t->sampled);
}

/* Request tracing (seed S18): spans kept in a bounded in-memory ring, exported as Chrome
 * trace-event JSON (Perfetto, chrome://tracing) and as OTLP/HTTP JSON. Internal header.
 * Disabled tracing costs one branch per request: callers test dc_tracer_sampled first. */
#ifndef DC_RUNTIME_TRACE_H
#define DC_RUNTIME_TRACE_H

#include <stdbool.h>
#include <stdint.h>

#include "dodeca/config.h"
#include "runtime/rt.h"

typedef struct dc_tracer dc_tracer;

#define DC_TRACE_NO_MODEL (-1)
#define DC_TRACE_DEFAULT_CAPACITY 65536u

/* capacity 0 = DC_TRACE_DEFAULT_CAPACITY spans. Starts the OTLP exporter thread when
 * cfg->otlp_endpoint is set (flushing every 2 s; runtime/otlp_http.h: http or https, with
 * cfg->otlp_headers and cfg->otlp_ca_file). */
dc_status dc_tracer_create(const dc_trace_config *cfg, uint32_t capacity, dc_rt_logger *log,
                           dc_tracer **out);
/* Flushes to OTLP (when configured) and frees. */
void dc_tracer_destroy(dc_tracer *t);

/* Whether this request's spans are recorded: tracing on and the request id falls in the
 * sample (a deterministic function of the id, so a request is traced all or nothing). */
bool dc_tracer_sampled(const dc_tracer *t, uint64_t request_id);

/* Records one finished span (monotonic ns). `name` must be a string literal or otherwise
 * outlive the tracer. model: a dc_model_id or DC_TRACE_NO_MODEL. value: an extra number
 * (items in a batch, bytes, ...) shown as args.value when non-zero. */
void dc_tracer_span(dc_tracer *t, uint64_t request_id, const char *name, int model,
                    uint64_t start_ns, uint64_t end_ns, uint64_t value);

dc_status dc_tracer_write_chrome(dc_tracer *t, const char *path);
/* Chrome JSON in memory (malloc'ed, NUL-terminated). */
dc_status dc_tracer_chrome_json(dc_tracer *t, char **out);
/* POSTs the spans recorded since the last flush to the OTLP endpoint. */
dc_status dc_tracer_flush_otlp(dc_tracer *t);

typedef struct dc_tracer_stats {
    uint64_t spans, dropped, exported, export_failures, sampled_requests;
} dc_tracer_stats;
void dc_tracer_stats_get(dc_tracer *t, dc_tracer_stats *out);
void dc_tracer_note_request(dc_tracer *t);

#endif

/* HTTP metrics (see http_metrics.h). */
#include "server/http_metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const unsigned codes[DC_HTTP_CODE_COUNT] = {200, 400, 401, 404, 405, 408, 413,
                                                   415, 422, 424, 429, 500, 503, 504};

/* Upper bounds in seconds: 1 ms … 60 s, then +Inf. */
static const double bounds[DC_HTTP_LATENCY_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                       0.1,   0.25,   0.5,   1,    2.5,   5,
                                                       10,    30,     60,    1e300};

void dc_http_metrics_init(dc_http_metrics *m) {
    for (int r = 0; r < DC_HTTP_ROUTE_COUNT; r++) {
        for (int c = 0; c <= DC_HTTP_CODE_COUNT; c++) atomic_init(&m->requests[r][c], 0);
        for (int b = 0; b < DC_HTTP_LATENCY_BUCKETS; b++) atomic_init(&m->latency_le[r][b], 0);
        atomic_init(&m->latency_count[r], 0);
        atomic_init(&m->latency_sum_us[r], 0);
    }
    atomic_init(&m->in_flight, 0);
    atomic_init(&m->embeds_in_flight, 0);
    atomic_init(&m->client_aborts, 0);
    atomic_init(&m->cancelled, 0);
}

void dc_http_metrics_record(dc_http_metrics *m, dc_http_route route, unsigned code,
                            uint64_t duration_us) {
    if ((unsigned)route >= DC_HTTP_ROUTE_COUNT) route = DC_HTTP_ROUTE_OTHER;
    int c = DC_HTTP_CODE_COUNT;
    for (int i = 0; i < DC_HTTP_CODE_COUNT; i++)
        if (codes[i] == code) c = i;
    atomic_fetch_add_explicit(&m->requests[route][c], 1, memory_order_relaxed);
    double s = (double)duration_us / 1e6;
    int b = 0;
    while (b < DC_HTTP_LATENCY_BUCKETS - 1 && s > bounds[b]) b++;
    atomic_fetch_add_explicit(&m->latency_le[route][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->latency_count[route], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->latency_sum_us[route], duration_us, memory_order_relaxed);
}

void dc_http_metrics_write(const dc_http_metrics *m, dc_http_buf *b) {
    dc_http_buf_puts(b, "# HELP dodeca_http_requests_total HTTP requests answered, by route and "
                        "status code.\n# TYPE dodeca_http_requests_total counter\n");
    for (int r = 0; r < DC_HTTP_ROUTE_COUNT; r++)
        for (int c = 0; c <= DC_HTTP_CODE_COUNT; c++) {
            uint64_t v = atomic_load_explicit(&m->requests[r][c], memory_order_relaxed);
            if (!v) continue;
            char code[16];
            if (c < DC_HTTP_CODE_COUNT)
                snprintf(code, sizeof code, "%u", codes[c]);
            else
                snprintf(code, sizeof code, "other");
            dc_http_buf_printf(b, "dodeca_http_requests_total{route=\"%s\",code=\"%s\"} %" PRIu64 "\n",
                               dc_http_route_name((dc_http_route)r), code, v);
        }
    dc_http_buf_puts(b, "# HELP dodeca_http_request_duration_seconds Time from the request's "
                        "headers to its response being queued, by route.\n"
                        "# TYPE dodeca_http_request_duration_seconds histogram\n");
    for (int r = 0; r < DC_HTTP_ROUTE_COUNT; r++) {
        uint64_t count = atomic_load_explicit(&m->latency_count[r], memory_order_relaxed);
        if (!count) continue;
        const char *name = dc_http_route_name((dc_http_route)r);
        uint64_t cum = 0;
        for (int k = 0; k < DC_HTTP_LATENCY_BUCKETS; k++) {
            cum += atomic_load_explicit(&m->latency_le[r][k], memory_order_relaxed);
            if (k == DC_HTTP_LATENCY_BUCKETS - 1)
                dc_http_buf_printf(b,
                                   "dodeca_http_request_duration_seconds_bucket{route=\"%s\","
                                   "le=\"+Inf\"} %" PRIu64 "\n",
                                   name, cum);
            else
                dc_http_buf_printf(b,
                                   "dodeca_http_request_duration_seconds_bucket{route=\"%s\","
                                   "le=\"%g\"} %" PRIu64 "\n",
                                   name, bounds[k], cum);
        }
        /* Buckets and count are read separately; +Inf is the count users see. */
        dc_http_buf_printf(b, "dodeca_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", name,
                           (double)atomic_load_explicit(&m->latency_sum_us[r], memory_order_relaxed) / 1e6);
        dc_http_buf_printf(b, "dodeca_http_request_duration_seconds_count{route=\"%s\"} %" PRIu64 "\n",
                           name, cum);
    }
    dc_http_buf_printf(b,
                       "# HELP dodeca_http_requests_in_flight Requests being handled now.\n"
                       "# TYPE dodeca_http_requests_in_flight gauge\n"
                       "dodeca_http_requests_in_flight %d\n"
                       "# HELP dodeca_http_embed_requests_in_flight Requests inside the pipeline now.\n"
                       "# TYPE dodeca_http_embed_requests_in_flight gauge\n"
                       "dodeca_http_embed_requests_in_flight %d\n"
                       "# HELP dodeca_http_client_aborts_total Requests whose client went away "
                       "before the response was sent.\n"
                       "# TYPE dodeca_http_client_aborts_total counter\n"
                       "dodeca_http_client_aborts_total %" PRIu64 "\n"
                       "# HELP dodeca_http_cancelled_total Embedding requests whose work was "
                       "given up because their client went away while it ran.\n"
                       "# TYPE dodeca_http_cancelled_total counter\n"
                       "dodeca_http_cancelled_total %" PRIu64 "\n",
                       atomic_load(&m->in_flight), atomic_load(&m->embeds_in_flight),
                       (uint64_t)atomic_load(&m->client_aborts),
                       (uint64_t)atomic_load(&m->cancelled));
}

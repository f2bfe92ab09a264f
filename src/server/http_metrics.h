/* HTTP-level metrics of `dodeca serve`: requests by route and status code, a latency histogram
 * by route, requests in flight. Lock-free counters; written as Prometheus text next to the
 * pipeline's own metrics (docs/http-api.md lists the names). */
#ifndef DC_SERVER_HTTP_METRICS_H
#define DC_SERVER_HTTP_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "server/http_buf.h"
#include "server/http_request.h"

/* Status codes the server sends; anything else is counted as "other". */
#define DC_HTTP_CODE_COUNT 14
#define DC_HTTP_LATENCY_BUCKETS 16

typedef struct dc_http_metrics {
    atomic_uint_fast64_t requests[DC_HTTP_ROUTE_COUNT][DC_HTTP_CODE_COUNT + 1];
    atomic_uint_fast64_t latency_le[DC_HTTP_ROUTE_COUNT][DC_HTTP_LATENCY_BUCKETS]; /* per bucket */
    atomic_uint_fast64_t latency_count[DC_HTTP_ROUTE_COUNT];
    atomic_uint_fast64_t latency_sum_us[DC_HTTP_ROUTE_COUNT];
    atomic_int in_flight;          /* requests being handled (headers read, response not sent) */
    atomic_int embeds_in_flight;   /* of those, requests inside the pipeline */
    atomic_uint_fast64_t client_aborts; /* connections closed before the response was sent */
    atomic_uint_fast64_t cancelled;     /* of those, requests whose pipeline work was given up */
} dc_http_metrics;

void dc_http_metrics_init(dc_http_metrics *m);
void dc_http_metrics_record(dc_http_metrics *m, dc_http_route route, unsigned code,
                            uint64_t duration_us);
/* Appends the Prometheus exposition of m. */
void dc_http_metrics_write(const dc_http_metrics *m, dc_http_buf *b);

#endif

/* `dodeca serve`: the HTTP API over one dc_pipeline (docs/http-api.md).
 *
 * libmicrohttpd runs one thread per connection: every request blocks in a pipeline call, and the
 * pipeline forms its batches from concurrent callers, so a thread that waits must not hold up
 * other connections (health checks and /metrics answer while embeddings run). The number of
 * connections bounds the threads; requests inside the pipeline beyond max_concurrent are answered
 * 429 at once instead of queuing without bound. */
#ifndef DC_SERVER_SERVER_H
#define DC_SERVER_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "dodeca/config.h"
#include "dodeca/pipeline.h"
#include "dodeca/status.h"

typedef struct dc_server dc_server;

typedef struct dc_server_options {
    const char *host;          /* NULL: cfg->server.host */
    int32_t port;              /* -1: cfg->server.port; 0: an ephemeral port (dc_server_port) */
    uint32_t max_connections;  /* 0: 1024 (each holds a thread while open) */
    uint32_t max_concurrent;   /* 0: cfg->server.threads, or 64 when that is 0 */
    uint32_t idle_timeout_s;   /* 0: 60; a connection silent this long is closed */
    bool access_log;           /* one line per request on stderr */
} dc_server_options;

void dc_server_options_default(dc_server_options *o);

/* Binds and starts serving; p and cfg must outlive the server. DC_ERR_IO when the address cannot
 * be bound (the detail says why), DC_ERR_CONFIG for a host that does not resolve. */
dc_status dc_server_start(dc_pipeline *p, const dc_config *cfg, const dc_server_options *o,
                          dc_server **out);
/* The bound port and address text ("127.0.0.1", "::1"). */
uint16_t dc_server_port(const dc_server *s);
const char *dc_server_host(const dc_server *s);
/* Stops accepting connections; requests that arrive on open connections get 503 and
 * "Connection: close". Requests already running go on. */
void dc_server_begin_shutdown(dc_server *s);
/* Waits until no request is being handled, at most timeout_ms; false when some still were. */
bool dc_server_drain(dc_server *s, uint32_t timeout_ms);
/* Closes every connection and frees the server (NULL is a no-op). The pipeline stays open. */
void dc_server_stop(dc_server *s);

#endif

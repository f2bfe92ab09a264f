/* Shared between the HTTP layer (server.c) and the route handlers (routes.c). */
#ifndef DC_SERVER_INTERNAL_H
#define DC_SERVER_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "dodeca/config.h"
#include "dodeca/pipeline.h"
#include "server/client_watch.h"
#include "server/http_metrics.h"
#include "server/http_request.h"
#include "server/server.h"

struct MHD_Daemon;

struct dc_server {
    dc_pipeline *pipeline;
    const dc_config *cfg;
    dc_server_options opt;
    dc_http_limits limits;
    struct MHD_Daemon *daemon;
    char host[DC_CONFIG_TEXT_MAX];
    uint16_t port;
    atomic_bool shutting_down;
    atomic_uint_fast64_t next_id;
    uint64_t id_salt;
    dc_http_metrics metrics;
    dc_client_watch *watch; /* the sockets of requests in the pipeline (NULL: none watched) */
};

/* One response: status code, body (malloc'ed), content type. */
typedef struct dc_http_response {
    unsigned code;
    char *body;
    size_t len;
    const char *content_type;
    bool retry_after; /* 429/503: ask the client to come back in a second */
} dc_http_response;

/* An error body {"error": message, "error_type": type} (docs/http-api.md lists the types). */
void dc_http_error(dc_http_response *r, unsigned code, const char *type, const char *fmt, ...)
    DC_PRINTF(4, 5);
/* The code and error_type a dc_status maps to. */
void dc_http_status_map(dc_status st, unsigned *code, const char **type);

/* The routes. Each fills *r (never leaves it empty). cancel (may be NULL) is cancelled when
 * the client goes away (client_watch.h). */
void dc_http_route_embeddings(dc_server *s, dc_http_route route, const char *body, size_t len,
                              dc_cancel_token *cancel, dc_http_response *r);
void dc_http_route_health(dc_server *s, dc_http_response *r);
void dc_http_route_info(dc_server *s, dc_http_response *r);
void dc_http_route_models(dc_server *s, dc_http_response *r);
void dc_http_route_metrics(dc_server *s, unsigned connections, dc_http_response *r);

#endif

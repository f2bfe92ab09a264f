/* The HTTP layer of `dodeca serve`: libmicrohttpd daemon, per-request state, limits, auth,
 * request ids, metrics and graceful shutdown. The routes themselves are in routes.c. */
#include "server/server.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <microhttpd.h>

#include "server/internal.h"

#define REQUEST_ID_MAX 64

typedef struct conn_state {
    dc_http_route route;
    uint64_t start_us;
    char request_id[REQUEST_ID_MAX + 1];
    char method[8];
    char path[96];
    dc_http_buf body;
    uint64_t discarded;
    bool too_large;
    unsigned code; /* the status sent; 0 while none */
} conn_state;

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void dc_server_options_default(dc_server_options *o) {
    memset(o, 0, sizeof *o);
    o->port = -1;
}

/* A client's X-Request-Id is kept when it is short and plain; otherwise one is made up. */
static void request_id(dc_server *s, struct MHD_Connection *conn, conn_state *cs) {
    const char *given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (given) {
        size_t n = strlen(given);
        bool ok = n > 0 && n <= REQUEST_ID_MAX;
        for (size_t i = 0; i < n && ok; i++) {
            char c = given[i];
            ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.' || c == ':';
        }
        if (ok) {
            memcpy(cs->request_id, given, n + 1);
            return;
        }
    }
    uint64_t k = atomic_fetch_add(&s->next_id, 1);
    uint64_t x = (k + s->id_salt) * 0x9E3779B97F4A7C15ull;
    x ^= x >> 31;
    snprintf(cs->request_id, sizeof cs->request_id, "%016llx%08llx", (unsigned long long)x,
             (unsigned long long)(k & 0xffffffffu));
}

static bool is_embed_route(dc_http_route r) { return r <= DC_HTTP_ROUTE_SIMILARITY; }

/* Constant-time comparison, so the key cannot be guessed byte by byte from timings. */
static bool same_secret(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    unsigned char d = (unsigned char)(na != nb);
    for (size_t i = 0; i < nb; i++) d |= (unsigned char)(a[i < na ? i : 0] ^ b[i]);
    return d == 0;
}

/* Checks that need only the headers. True when *r holds the answer already. */
static bool early_answer(dc_server *s, struct MHD_Connection *conn, conn_state *cs,
                         const char *method, dc_http_response *r) {
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    bool post = !strcmp(method, "POST");
    if (cs->route == DC_HTTP_ROUTE_OTHER) {
        dc_http_error(r, 404, "NotFound", "no route %s %s (GET /info lists the routes)", method,
                      cs->path);
        return true;
    }
    if (is_embed_route(cs->route) ? !post : !get) {
        dc_http_error(r, 405, "MethodNotAllowed", "%s takes %s, not %s",
                      dc_http_route_name(cs->route), is_embed_route(cs->route) ? "POST" : "GET",
                      method);
        return true;
    }
    const char *key = s->cfg->server.api_key;
    if (key[0] && cs->route != DC_HTTP_ROUTE_HEALTH) {
        const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
        bool ok = auth && !strncmp(auth, "Bearer ", 7) && same_secret(auth + 7, key);
        if (!ok) {
            dc_http_error(r, 401, "Unauthorized",
                          auth ? "the bearer token is not valid"
                               : "an Authorization: Bearer <key> header is required");
            return true;
        }
    }
    if (atomic_load(&s->shutting_down) && cs->route != DC_HTTP_ROUTE_HEALTH &&
        cs->route != DC_HTTP_ROUTE_METRICS) {
        dc_http_error(r, 503, "Unhealthy", "the server is shutting down");
        return true;
    }
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (cl) {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno || end == cl || n > s->cfg->server.max_body_bytes) {
            dc_http_error(r, 413, "PayloadTooLarge",
                          "body: %s bytes, more than the limit of %llu (server.max_body_bytes)", cl,
                          (unsigned long long)s->cfg->server.max_body_bytes);
            return true;
        }
    }
    return false;
}

static enum MHD_Result send_response(dc_server *s, struct MHD_Connection *conn, conn_state *cs,
                                     dc_http_response *r) {
    if (!r->body) dc_http_error(r, 500, "Internal", "no response");
    struct MHD_Response *resp = r->body
        ? MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE)
        : NULL;
    if (!resp) {
        free(r->body);
        return MHD_NO;
    }
    r->body = NULL; /* the response owns it now */
    MHD_add_response_header(resp, "Content-Type", r->content_type ? r->content_type : "application/json");
    MHD_add_response_header(resp, "X-Request-Id", cs->request_id);
    if (r->retry_after) MHD_add_response_header(resp, "Retry-After", "1");
    if (r->code == 401) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    if (r->code == 405)
        MHD_add_response_header(resp, "Allow", is_embed_route(cs->route) ? "POST" : "GET, HEAD");
    /* A refused body is not read: the connection cannot carry another request. */
    if (atomic_load(&s->shutting_down) || r->code == 413 || cs->too_large)
        MHD_add_response_header(resp, "Connection", "close");
    enum MHD_Result ret = MHD_queue_response(conn, r->code, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES) cs->code = r->code;
    return ret;
}

static void dispatch(dc_server *s, struct MHD_Connection *conn, conn_state *cs,
                     dc_http_response *r) {
    if (cs->too_large) {
        dc_http_error(r, 413, "PayloadTooLarge",
                      "body: more than the limit of %llu bytes (server.max_body_bytes)",
                      (unsigned long long)s->cfg->server.max_body_bytes);
        return;
    }
    switch (cs->route) {
    case DC_HTTP_ROUTE_HEALTH:
        dc_http_route_health(s, r);
        return;
    case DC_HTTP_ROUTE_INFO:
        dc_http_route_info(s, r);
        return;
    case DC_HTTP_ROUTE_MODELS:
        dc_http_route_models(s, r);
        return;
    case DC_HTTP_ROUTE_METRICS: {
        /* The daemon through the connection: s->daemon is set only after the daemon started. */
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);
        const union MHD_DaemonInfo *di =
            ci ? MHD_get_daemon_info(ci->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS) : NULL;
        dc_http_route_metrics(s, di ? di->num_connections : 0, r);
        return;
    }
    default:
        break;
    }
    int now = atomic_fetch_add(&s->metrics.embeds_in_flight, 1) + 1;
    if ((uint32_t)now > s->opt.max_concurrent) {
        dc_http_error(r, 429, "Overloaded",
                      "%u requests are being embedded already (the limit); retry shortly",
                      s->opt.max_concurrent);
    } else {
        /* the work is given up if the client goes away meanwhile (client_watch.h) */
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        dc_cancel_token *cancel = NULL;
        uint32_t slot = 0;
        bool watched = ci && s->watch && dc_cancel_token_create(&cancel) == DC_OK &&
                       dc_client_watch_add(s->watch, (int)ci->connect_fd, cancel, &slot) == DC_OK;
        dc_error_clear(); /* unwatched, the request runs to its end as before */
        dc_http_route_embeddings(s, cs->route, cs->body.data, cs->body.len, cancel, r);
        if (watched) dc_client_watch_remove(s->watch, slot);
        if (cancel && dc_cancel_token_cancelled(cancel)) atomic_fetch_add(&s->metrics.cancelled, 1);
        dc_cancel_token_destroy(cancel);
    }
    atomic_fetch_sub(&s->metrics.embeds_in_flight, 1);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    (void)version;
    dc_server *s = cls;
    conn_state *cs = *con_cls;
    if (!cs) {
        cs = calloc(1, sizeof *cs);
        if (!cs) return MHD_NO;
        *con_cls = cs;
        atomic_fetch_add(&s->metrics.in_flight, 1);
        cs->start_us = now_us();
        cs->route = dc_http_route_of(url);
        snprintf(cs->method, sizeof cs->method, "%s", method);
        snprintf(cs->path, sizeof cs->path, "%s", url);
        dc_http_buf_init(&cs->body);
        request_id(s, conn, cs);
        dc_http_response r = {0};
        if (early_answer(s, conn, cs, method, &r)) return send_response(s, conn, cs, &r);
        return MHD_YES;
    }
    if (cs->code) { /* answered early; whatever still arrives is dropped */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        uint64_t max = s->cfg->server.max_body_bytes;
        if (!cs->too_large && cs->body.len + n > max) {
            cs->too_large = true; /* a chunked body that grew past the limit */
            dc_http_buf_free(&cs->body);
        }
        if (cs->too_large) {
            cs->discarded += n;
            return cs->discarded > 4 * max ? MHD_NO : MHD_YES; /* no reading forever */
        }
        dc_http_buf_add(&cs->body, upload_data, n);
        return cs->body.failed ? MHD_NO : MHD_YES;
    }
    dc_http_response r = {0};
    dispatch(s, conn, cs, &r);
    return send_response(s, conn, cs, &r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)conn;
    dc_server *s = cls;
    conn_state *cs = *con_cls;
    if (!cs) return;
    *con_cls = NULL;
    uint64_t us = now_us() - cs->start_us;
    if (cs->code) dc_http_metrics_record(&s->metrics, cs->route, cs->code, us);
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        atomic_fetch_add(&s->metrics.client_aborts, 1);
    if (s->opt.access_log)
        fprintf(stderr, "dodeca serve: %s %s %s %u %.3fms%s\n", cs->request_id, cs->method,
                cs->path, cs->code, (double)us / 1000.0,
                toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed early)");
    dc_http_buf_free(&cs->body);
    free(cs);
    atomic_fetch_sub(&s->metrics.in_flight, 1);
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt,
                                                              va_list ap) {
    (void)cls;
    fprintf(stderr, "dodeca serve: libmicrohttpd: ");
    vfprintf(stderr, fmt, ap);
}

dc_status dc_server_start(dc_pipeline *p, const dc_config *cfg, const dc_server_options *o,
                          dc_server **out) {
    *out = NULL;
    dc_server *s = calloc(1, sizeof *s);
    if (!s) return dc_fail(DC_ERR_OUT_OF_MEMORY, "server");
    s->pipeline = p;
    s->cfg = cfg;
    if (o)
        s->opt = *o;
    else
        dc_server_options_default(&s->opt);
    if (!s->opt.max_connections) s->opt.max_connections = 1024;
    if (!s->opt.max_concurrent) s->opt.max_concurrent = cfg->server.threads ? cfg->server.threads : 64;
    if (!s->opt.idle_timeout_s) s->opt.idle_timeout_s = 60;
    s->limits.max_items = cfg->server.max_batch_items;
    s->limits.max_input_chars = cfg->server.max_input_chars;
    atomic_init(&s->shutting_down, false);
    atomic_init(&s->next_id, 1);
    s->id_salt = now_us() ^ ((uint64_t)getpid() << 32);
    dc_http_metrics_init(&s->metrics);
    dc_status wst = dc_client_watch_start(s->opt.max_concurrent, &s->watch);
    if (wst) {
        free(s);
        return wst;
    }

    const char *host = s->opt.host ? s->opt.host : cfg->server.host;
    int32_t port = s->opt.port >= 0 ? s->opt.port : (int32_t)cfg->server.port;
    if (port > 65535) {
        dc_client_watch_stop(s->watch);
        free(s);
        return dc_fail(DC_ERR_CONFIG, "port %d is not 0..65535", (int)port);
    }
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", (int)port);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int gai = getaddrinfo(host, port_text, &hints, &ai);
    if (gai != 0 || !ai) {
        dc_client_watch_stop(s->watch);
        free(s);
        return dc_fail(DC_ERR_CONFIG, "server.host \"%s\" does not resolve: %s", host,
                       gai_strerror(gai));
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ITC | MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    s->daemon = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
        s, MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->opt.max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->opt.idle_timeout_s, MHD_OPTION_END);
    int err = errno;
    freeaddrinfo(ai);
    if (!s->daemon) {
        dc_client_watch_stop(s->watch);
        free(s);
        return dc_fail(DC_ERR_IO, "cannot listen on %s:%d: %s", host, (int)port,
                       err ? strerror(err) : "libmicrohttpd refused to start");
    }
    /* The bound address, for port 0 and for the log line. */
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_LISTEN_FD);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    snprintf(s->host, sizeof s->host, "%s", host);
    if (di && getsockname(di->listen_fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            s->port = ntohs(a->sin_port);
            inet_ntop(AF_INET, &a->sin_addr, s->host, sizeof s->host);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            s->port = ntohs(a->sin6_port);
            inet_ntop(AF_INET6, &a->sin6_addr, s->host, sizeof s->host);
        }
    }
    *out = s;
    return DC_OK;
}

uint16_t dc_server_port(const dc_server *s) { return s ? s->port : 0; }
const char *dc_server_host(const dc_server *s) { return s ? s->host : ""; }

void dc_server_begin_shutdown(dc_server *s) {
    if (!s || atomic_exchange(&s->shutting_down, true)) return;
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET) close(fd);
}

bool dc_server_drain(dc_server *s, uint32_t timeout_ms) {
    if (!s) return true;
    uint64_t until = now_us() + (uint64_t)timeout_ms * 1000u;
    while (atomic_load(&s->metrics.in_flight) > 0) {
        if (now_us() >= until) return false;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return true;
}

void dc_server_stop(dc_server *s) {
    if (!s) return;
    if (s->daemon) MHD_stop_daemon(s->daemon);
    dc_client_watch_stop(s->watch); /* after the connections' threads: none is watched now */
    free(s);
}

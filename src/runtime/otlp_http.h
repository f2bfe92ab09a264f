/* The tracer's OTLP/HTTP transport: POSTs of a JSON body to one collector, over http:// or
 * https:// (libcurl; certificates checked against the system's CAs, or a PEM file of your
 * own for a private collector), with extra headers such as a vendor's API key. Internal. */
#ifndef DC_RUNTIME_OTLP_HTTP_H
#define DC_RUNTIME_OTLP_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "dodeca/config.h"

typedef struct dc_otlp_http dc_otlp_http;

/* endpoint: "http[s]://host[:port][/path]"; without a path (or with "/") the OTLP default
 * "/v1/traces" is appended. headers: n "Name: value" lines. ca_file: "" or NULL for the
 * system's CAs. DC_ERR_CONFIG names the field at fault (a bad URL, an unreadable CA file). */
dc_status dc_otlp_http_create(const char *endpoint, const char (*headers)[DC_CONFIG_URL_MAX],
                              uint32_t n_headers, const char *ca_file, dc_otlp_http **out);
void dc_otlp_http_destroy(dc_otlp_http *h);
/* The URL posted to. */
const char *dc_otlp_http_url(const dc_otlp_http *h);
/* One POST; DC_OK on a 2xx answer, DC_ERR_IO naming the URL and why otherwise (connection,
 * TLS, timeout, status). timeout_ms bounds the whole exchange. */
dc_status dc_otlp_http_post(dc_otlp_http *h, const char *body, size_t len, uint32_t timeout_ms,
                            int *http_status);

#endif

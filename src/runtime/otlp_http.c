/* OTLP/HTTP transport over libcurl (otlp_http.h). */
#include "runtime/otlp_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "core/error.h"
#include "io/curl_global.h"

struct dc_otlp_http {
    char url[DC_CONFIG_URL_MAX + 16];
    char ca_file[DC_CONFIG_PATH_MAX];
    struct curl_slist *headers;
};


void dc_otlp_http_destroy(dc_otlp_http *h) {
    if (!h) return;
    curl_slist_free_all(h->headers);
    free(h);
}

const char *dc_otlp_http_url(const dc_otlp_http *h) { return h ? h->url : ""; }

dc_status dc_otlp_http_create(const char *endpoint, const char (*headers)[DC_CONFIG_URL_MAX],
                              uint32_t n_headers, const char *ca_file, dc_otlp_http **out) {
    *out = NULL;
    const size_t scheme = !endpoint ? 0 : !strncmp(endpoint, "http://", 7) ? 7
                                        : !strncmp(endpoint, "https://", 8) ? 8 : 0;
    const char *host = endpoint ? endpoint + scheme : NULL;
    if (!scheme || !host[0] || host[0] == '/' || host[0] == ':')
        return dc_fail(DC_ERR_CONFIG,
                       "trace.otlp_endpoint \"%s\": expected http[s]://host[:port][/path]",
                       endpoint ? endpoint : "");
    if (ca_file && ca_file[0]) {
        FILE *f = fopen(ca_file, "rb");
        if (!f) return dc_fail(DC_ERR_CONFIG, "trace.otlp_ca_file \"%s\" cannot be read", ca_file);
        fclose(f);
    }
    const CURLcode ready = dc_curl_global();
    if (ready != CURLE_OK)
        return dc_fail(DC_ERR_IO, "OTLP: libcurl did not start: %s", curl_easy_strerror(ready));
    dc_otlp_http *h = calloc(1, sizeof *h);
    if (!h) return dc_fail(DC_ERR_OUT_OF_MEMORY, "OTLP transport");
    const char *slash = strchr(host, '/');
    if (!slash) snprintf(h->url, sizeof h->url, "%s/v1/traces", endpoint);
    else if (!strcmp(slash, "/")) snprintf(h->url, sizeof h->url, "%.*s/v1/traces", (int)(slash - endpoint), endpoint);
    else snprintf(h->url, sizeof h->url, "%s", endpoint);
    snprintf(h->ca_file, sizeof h->ca_file, "%s", ca_file ? ca_file : "");
    struct curl_slist *l = curl_slist_append(NULL, "Content-Type: application/json");
    for (uint32_t i = 0; l && i < n_headers; i++) {
        struct curl_slist *n = curl_slist_append(l, headers[i]);
        if (!n) {
            curl_slist_free_all(l);
            l = NULL;
            break;
        }
        l = n;
    }
    if (!l) {
        free(h);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "OTLP headers");
    }
    h->headers = l;
    *out = h;
    return DC_OK;
}

static size_t discard(char *p, size_t size, size_t n, void *ctx) {
    (void)p;
    (void)ctx;
    return size * n;
}

dc_status dc_otlp_http_post(dc_otlp_http *h, const char *body, size_t len, uint32_t timeout_ms,
                            int *http_status) {
    if (http_status) *http_status = 0;
    CURL *c = curl_easy_init();
    if (!c) return dc_fail(DC_ERR_OUT_OF_MEMORY, "OTLP: curl handle");
    char err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, h->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
    if (h->ca_file[0]) curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK)
        return dc_fail(DC_ERR_IO, "OTLP: POST %s: %s", h->url, err[0] ? err : curl_easy_strerror(rc));
    if (http_status) *http_status = (int)code;
    if (code < 200 || code > 299) return dc_fail(DC_ERR_IO, "OTLP: %s answered HTTP %ld", h->url, code);
    return DC_OK;
}

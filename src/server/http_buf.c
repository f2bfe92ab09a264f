/* Response body buffer (see http_buf.h). */
#include "server/http_buf.h"

#include "core/float_text.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dc_http_buf_init(dc_http_buf *b) { memset(b, 0, sizeof *b); }

void dc_http_buf_free(dc_http_buf *b) {
    free(b->data);
    dc_http_buf_init(b);
}

char *dc_http_buf_take(dc_http_buf *b, size_t *len) {
    if (b->failed || !b->data) {
        dc_http_buf_free(b);
        if (len) *len = 0;
        return NULL;
    }
    char *d = b->data;
    if (len) *len = b->len;
    dc_http_buf_init(b);
    return d;
}

static bool buf_reserve(dc_http_buf *b, size_t extra) {
    if (b->failed) return false;
    if (b->len + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *d = realloc(b->data, cap);
    if (!d) {
        b->failed = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void dc_http_buf_add(dc_http_buf *b, const char *s, size_t n) {
    if (!buf_reserve(b, n)) return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void dc_http_buf_puts(dc_http_buf *b, const char *s) { dc_http_buf_add(b, s, strlen(s)); }

void dc_http_buf_printf(dc_http_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
    } else if (buf_reserve(b, (size_t)n)) {
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
}

void dc_http_buf_json_string(dc_http_buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    if (!buf_reserve(b, n + 2)) return;
    dc_http_buf_add(b, "\"", 1);
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        dc_http_buf_add(b, s + start, i - start);
        start = i + 1;
        char esc[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
        if (c == '"' || c == '\\') {
            esc[1] = (char)c;
            esc[2] = 0;
        } else if (c == '\n') {
            esc[1] = 'n';
            esc[2] = 0;
        } else if (c == '\t') {
            esc[1] = 't';
            esc[2] = 0;
        } else if (c == '\r') {
            esc[1] = 'r';
            esc[2] = 0;
        }
        dc_http_buf_puts(b, esc);
    }
    dc_http_buf_add(b, s + start, n - start);
    dc_http_buf_add(b, "\"", 1);
}

void dc_http_buf_float(dc_http_buf *b, float v) {
    char tmp[DC_FLOAT_TEXT_MAX];
    dc_http_buf_add(b, tmp, dc_format_float(v, tmp));
}

void dc_http_buf_float_array(dc_http_buf *b, const float *v, size_t n) {
    if (!buf_reserve(b, n * 16 + 2)) return;
    dc_http_buf_add(b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i) dc_http_buf_add(b, ",", 1);
        dc_http_buf_float(b, v[i]);
    }
    dc_http_buf_add(b, "]", 1);
}

void dc_http_buf_float_base64(dc_http_buf *b, const float *v, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t bytes = n * 4;
    if (!buf_reserve(b, (bytes + 2) / 3 * 4 + 2)) return;
    char *out = b->data + b->len;
    *out++ = '"';
    uint8_t chunk[3];
    size_t k = 0;
    for (size_t i = 0; i < bytes; i++) {
        uint32_t u;
        memcpy(&u, &v[i / 4], 4);
        chunk[k++] = (uint8_t)(u >> (8 * (i % 4))); /* little-endian whatever the host */
        if (k == 3 || i + 1 == bytes) {
            uint32_t w = (uint32_t)chunk[0] << 16 | (k > 1 ? (uint32_t)chunk[1] << 8 : 0) |
                         (k > 2 ? chunk[2] : 0);
            *out++ = tab[w >> 18 & 63];
            *out++ = tab[w >> 12 & 63];
            *out++ = k > 1 ? tab[w >> 6 & 63] : '=';
            *out++ = k > 2 ? tab[w & 63] : '=';
            k = 0;
        }
    }
    *out++ = '"';
    *out = '\0';
    b->len = (size_t)(out - b->data);
}

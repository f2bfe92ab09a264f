/* Response body buffer (see http_buf.h). */
#include "server/http_buf.h"

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

/* Powers of ten 1e-60 … 1e60 as doubles (the scale factors a float32 can need). */
static double pow10_tab[121];
static pthread_once_t pow10_once = PTHREAD_ONCE_INIT;

static void pow10_init(void) {
    for (int i = 0; i < 121; i++) pow10_tab[i] = pow(10.0, i - 60);
}

static double pow10i(int k) {
    pthread_once(&pow10_once, pow10_init);
    return pow10_tab[k + 60];
}

size_t dc_http_format_float(float v, char out[DC_HTTP_FLOAT_MAX]) {
    /* Nine significant digits identify every float32. The digits come from one multiplication
     * in double precision (error ~1e-16, far below half a unit of the ninth digit), which is
     * ~20× faster than printf("%.9g") — a 1536-float vector is 1536 of these. */
    char *o = out;
    if (!isfinite(v) || v == 0.0f) {
        *o++ = '0';
        *o = '\0';
        return 1;
    }
    if (v < 0) *o++ = '-';
    double d = fabs((double)v);
    int be = 0;
    frexp(d, &be); /* d in [2^(be-1), 2^be): the decimal exponent is this or one more */
    int e = (int)floor((be - 1) * 0.30102999566398120);
    int64_t m = llround(d * pow10i(8 - e));
    if (m >= 1000000000) { /* log10 rounded up, or 9.999999995 rounded to 10 */
        e++;
        m = llround(d * pow10i(8 - e));
    } else if (m < 100000000) {
        e--;
        m = llround(d * pow10i(8 - e));
    }
    char dig[10];
    for (int i = 8; i >= 0; i--) {
        dig[i] = (char)('0' + m % 10);
        m /= 10;
    }
    int nd = 9;
    while (nd > 1 && dig[nd - 1] == '0') nd--;
    if (e >= -5 && e < 0) { /* 0.000ddd */
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -e - 1; i++) *o++ = '0';
        memcpy(o, dig, (size_t)nd);
        o += nd;
    } else if (e >= 0 && e < 9) { /* ddd.ddd */
        for (int i = 0; i <= e || i < nd; i++) {
            if (i == e + 1) *o++ = '.';
            *o++ = i < nd ? dig[i] : '0';
        }
    } else { /* d.ddde±XX */
        *o++ = dig[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, dig + 1, (size_t)nd - 1);
            o += nd - 1;
        }
        o += snprintf(o, 6, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    }
    *o = '\0';
    return (size_t)(o - out);
}

void dc_http_buf_float(dc_http_buf *b, float v) {
    char tmp[DC_HTTP_FLOAT_MAX];
    dc_http_buf_add(b, tmp, dc_http_format_float(v, tmp));
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

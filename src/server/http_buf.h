/* A growable output buffer for HTTP response bodies, with the JSON pieces the routes need:
 * escaped strings, floats that round-trip, little-endian float32 as base64. A failed allocation
 * sticks (`failed`), so callers check once at the end. */
#ifndef DC_SERVER_HTTP_BUF_H
#define DC_SERVER_HTTP_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct dc_http_buf {
    char *data;
    size_t len, cap;
    bool failed;
} dc_http_buf;

void dc_http_buf_init(dc_http_buf *b);
void dc_http_buf_free(dc_http_buf *b);
/* Hands the bytes to the caller (malloc'ed, NUL-terminated) and resets b; NULL if it failed. */
char *dc_http_buf_take(dc_http_buf *b, size_t *len);
void dc_http_buf_add(dc_http_buf *b, const char *s, size_t n);
void dc_http_buf_puts(dc_http_buf *b, const char *s);
void dc_http_buf_printf(dc_http_buf *b, const char *fmt, ...) DC_PRINTF(2, 3);
/* A JSON string literal, quotes included. */
void dc_http_buf_json_string(dc_http_buf *b, const char *s, size_t n);
/* A JSON number that reads back to the same float (dc_format_float). */
void dc_http_buf_float(dc_http_buf *b, float v);
/* "[v0,v1,...]" */
void dc_http_buf_float_array(dc_http_buf *b, const float *v, size_t n);
/* A JSON string holding the base64 of n little-endian float32 values. */
void dc_http_buf_float_base64(dc_http_buf *b, const float *v, size_t n);

#endif

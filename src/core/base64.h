/* Base64 decoding, standard (RFC 4648 §4) or URL-safe (§5) alphabet, for the parsers that take
 * it: image inputs over HTTP and the JWT check of the PII scrubber. */
#ifndef DC_CORE_BASE64_H
#define DC_CORE_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include "dodeca/status.h"

enum {
    DC_BASE64_URL = 1u << 0,     /* '-' and '_' for 62 and 63 (else '+' and '/') */
    DC_BASE64_PADDING = 1u << 1, /* accept trailing '=' (always optional) */
    DC_BASE64_SPACE = 1u << 2,   /* skip ASCII whitespace (MIME line breaks) */
};

/* Decodes n characters into a new buffer (NUL-terminated, the NUL not counted in *len). On
 * failure nothing is allocated and *bad is the offset of the first character that does not
 * fit, or n when the text ends in the middle of a byte: DC_ERR_INVALID_VALUE, without an error
 * detail (the caller names its field); DC_ERR_OUT_OF_MEMORY with one. */
dc_status dc_base64_decode(const char *s, size_t n, unsigned flags, uint8_t **out, size_t *len,
                           size_t *bad);

#endif

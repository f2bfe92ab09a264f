/* UTF-8 validation (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF). */
#ifndef DC_CORE_UTF8_H
#define DC_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when s[0..len) is valid UTF-8. On failure *bad_offset (if given) is the byte offset of
 * the first invalid sequence. */
bool dc_utf8_valid(const char *s, size_t len, size_t *bad_offset);

#endif

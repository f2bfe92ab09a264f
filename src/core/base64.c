/* Base64 decoding (base64.h). */
#include "core/base64.h"

#include <stdbool.h>
#include <stdlib.h>

#include "core/error.h"

static int digit(unsigned char c, bool url) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == (url ? '-' : '+')) return 62;
    if (c == (url ? '_' : '/')) return 63;
    return -1;
}

dc_status dc_base64_decode(const char *s, size_t n, unsigned flags, uint8_t **out, size_t *len,
                           size_t *bad) {
    *out = NULL;
    *len = 0;
    uint8_t *b = malloc(n / 4 * 3 + 3);
    if (!b) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%zu characters of base64", n);
    uint32_t acc = 0;
    size_t k = 0, digits = 0, pads = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char c = (unsigned char)s[i];
        if ((flags & DC_BASE64_SPACE) && (c == ' ' || c == '\t' || c == '\r' || c == '\n')) continue;
        const int v = c == '=' && (flags & DC_BASE64_PADDING) ? -2 : digit(c, flags & DC_BASE64_URL);
        if (v == -1 || (v >= 0 && pads) || (v == -2 && (digits % 4 < 2 || ++pads > 2))) {
            free(b);
            *bad = i;
            return DC_ERR_INVALID_VALUE;
        }
        if (v < 0) continue;
        acc = acc << 6 | (uint32_t)v;
        if (++digits % 4 == 0) {
            b[k++] = (uint8_t)(acc >> 16);
            b[k++] = (uint8_t)(acc >> 8);
            b[k++] = (uint8_t)acc;
            acc = 0;
        }
    }
    const size_t rest = digits % 4;
    if (rest == 1 || (pads && rest + pads != 4)) {
        free(b);
        *bad = n;
        return DC_ERR_INVALID_VALUE;
    }
    if (rest >= 2) b[k++] = (uint8_t)(acc >> (rest == 2 ? 4 : 10));
    if (rest == 3) b[k++] = (uint8_t)(acc >> 2);
    b[k] = 0;
    *out = b;
    *len = k;
    return DC_OK;
}

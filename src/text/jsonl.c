#include "text/jsonl.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/unicode.h"

#define DC_JSONL_MAX_DEPTH 256

static size_t skip_ws(const char *s, size_t i, size_t n) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    return i;
}

/* Index just past the string starting at s[i] == '"', or 0 on error. */
static size_t skip_string(const char *s, size_t i, size_t n) {
    for (i++; i < n; i++) {
        if (s[i] == '\\') {
            i++;
            continue;
        }
        if (s[i] == '"') return i + 1;
    }
    return 0;
}

/* Index just past the value starting at s[i], or 0 on error. */
static size_t skip_value(const char *s, size_t i, size_t n) {
    if (i >= n) return 0;
    if (s[i] == '"') return skip_string(s, i, n);
    if (s[i] == '{' || s[i] == '[') {
        int depth = 0;
        while (i < n) {
            char c = s[i];
            if (c == '"') {
                size_t e = skip_string(s, i, n);
                if (!e) return 0;
                i = e;
                continue;
            }
            if (c == '{' || c == '[') {
                if (++depth > DC_JSONL_MAX_DEPTH) return 0;
            } else if (c == '}' || c == ']') {
                if (--depth == 0) return i + 1;
            }
            i++;
        }
        return 0;
    }
    size_t st = i;
    while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' &&
           s[i] != '\n' && s[i] != '\r')
        i++;
    return i > st ? i : 0;
}

dc_status dc_jsonl_field(const char *line, size_t len, const char *key, const char **val,
                         size_t *vlen) {
    size_t klen = strlen(key);
    size_t i = skip_ws(line, 0, len);
    if (i >= len || line[i] != '{') return dc_fail(DC_ERR_SERIALIZATION, "JSON line: expected an object");
    i = skip_ws(line, i + 1, len);
    if (i < len && line[i] == '}') return dc_fail(DC_ERR_NOT_FOUND, "JSON line: no \"%s\" field", key);
    while (i < len) {
        if (line[i] != '"') return dc_fail(DC_ERR_SERIALIZATION, "JSON line: expected a key at byte %zu", i);
        size_t ke = skip_string(line, i, len);
        if (!ke) return dc_fail(DC_ERR_SERIALIZATION, "JSON line: unterminated key at byte %zu", i);
        bool match = ke - i - 2 == klen && memcmp(line + i + 1, key, klen) == 0;
        i = skip_ws(line, ke, len);
        if (i >= len || line[i] != ':') return dc_fail(DC_ERR_SERIALIZATION, "JSON line: expected ':' at byte %zu", i);
        i = skip_ws(line, i + 1, len);
        size_t ve = skip_value(line, i, len);
        if (!ve) return dc_fail(DC_ERR_SERIALIZATION, "JSON line: bad value at byte %zu", i);
        if (match) {
            *val = line + i;
            *vlen = ve - i;
            return DC_OK;
        }
        i = skip_ws(line, ve, len);
        if (i < len && line[i] == ',') {
            i = skip_ws(line, i + 1, len);
            continue;
        }
        if (i < len && line[i] == '}') break;
        return dc_fail(DC_ERR_SERIALIZATION, "JSON line: expected ',' or '}' at byte %zu", i);
    }
    return dc_fail(DC_ERR_NOT_FOUND, "JSON line: no \"%s\" field", key);
}

static int hex4(const char *s, uint32_t *v) {
    uint32_t x = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        x <<= 4;
        if (c >= '0' && c <= '9') x |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') x |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') x |= (uint32_t)(c - 'A' + 10);
        else return -1;
    }
    *v = x;
    return 0;
}

dc_status dc_json_decode_string(const char *raw, size_t n, char **out, size_t *outlen) {
    *out = NULL;
    *outlen = 0;
    if (n < 2 || raw[0] != '"' || raw[n - 1] != '"')
        return dc_fail(DC_ERR_SERIALIZATION, "JSON: expected a string");
    char *buf = malloc(n + 4);
    if (!buf) return dc_fail(DC_ERR_OUT_OF_MEMORY, "JSON: out of memory");
    size_t k = 0;
    for (size_t i = 1; i + 1 < n; i++) {
        char c = raw[i];
        if (c != '\\') {
            buf[k++] = c;
            continue;
        }
        if (++i + 1 > n - 1) break;
        char e = raw[i];
        switch (e) {
        case '"': buf[k++] = '"'; break;
        case '\\': buf[k++] = '\\'; break;
        case '/': buf[k++] = '/'; break;
        case 'b': buf[k++] = '\b'; break;
        case 'f': buf[k++] = '\f'; break;
        case 'n': buf[k++] = '\n'; break;
        case 'r': buf[k++] = '\r'; break;
        case 't': buf[k++] = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (i + 4 >= n || hex4(raw + i + 1, &cp)) {
                free(buf);
                return dc_fail(DC_ERR_SERIALIZATION, "JSON: bad \\u escape at byte %zu", i);
            }
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (i + 6 < n && raw[i + 1] == '\\' && raw[i + 2] == 'u' && !hex4(raw + i + 3, &lo) &&
                    lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                } else {
                    cp = 0xFFFD;
                }
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                cp = 0xFFFD;
            }
            k += dc_u8_encode(cp, buf + k); /* at most as long as the escape */
            break;
        }
        default:
            free(buf);
            return dc_fail(DC_ERR_SERIALIZATION, "JSON: bad escape \\%c", e);
        }
    }
    buf[k] = '\0';
    *out = buf;
    *outlen = k;
    return DC_OK;
}

/* Minimal JSON helpers for JSON-lines records whose strings may hold U+0000 (which cJSON's
 * NUL-terminated strings cannot carry): find a top-level field, decode a string value. */
#ifndef DC_TEXT_JSONL_H
#define DC_TEXT_JSONL_H

#include <stddef.h>

#include "dodeca/status.h"

/* Finds `key` among the top-level fields of the JSON object in line[0..len) and returns the raw
 * text of its value (*val, *vlen). DC_ERR_NOT_FOUND when absent, DC_ERR_SERIALIZATION when the
 * line is not a JSON object. */
dc_status dc_jsonl_field(const char *line, size_t len, const char *key, const char **val,
                         size_t *vlen);

/* Decodes a raw JSON string value (with its quotes) into malloc'ed UTF-8 (*out, *outlen; a NUL
 * follows the last byte). Escapes, including \u0000 and surrogate pairs, are decoded; lone
 * surrogates become U+FFFD. */
dc_status dc_json_decode_string(const char *raw, size_t n, char **out, size_t *outlen);

#endif

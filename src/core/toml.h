/* A TOML subset parser for dodeca's configuration files (DESIGN §6).
 *
 * Supported (TOML 1.0 semantics):
 *   - comments, blank lines, LF and CRLF line endings, an optional UTF-8 byte-order mark;
 *   - table headers [a] and dotted headers [models.semantic]; implicit parent tables;
 *   - bare keys (A-Za-z0-9_-), quoted keys ("..." and '...'), dotted keys (a.b = 1);
 *   - basic strings with escapes \b \t \n \f \r \" \\ \uXXXX \UXXXXXXXX, literal strings,
 *     multi-line basic (""") and literal (''') strings;
 *   - integers: decimal with optional sign and underscores, 0x / 0o / 0b prefixes; int64 range;
 *   - floats: fraction and/or exponent, underscores between digits, inf and nan (signed);
 *   - booleans; arrays (multi-line, trailing comma, comments inside) of scalars of any type.
 * Rejected with a clear error: nested arrays, inline tables, arrays of tables [[x]], dates and
 * times, and the escape \u0000 (keys and values stay ordinary C strings).
 * Also rejected: duplicate keys, redefined tables, invalid UTF-8, control characters, unterminated
 * strings, missing '=', anything after a value on its line, integer overflow.
 *
 * Parsing never recurses; tables nest at most DC_TOML_MAX_DEPTH deep, so hostile input cannot
 * exhaust the stack. Every error is DC_ERR_CONFIG with a detail "SOURCE:LINE:COLUMN: message"
 * naming the key at fault when there is one. */
#ifndef DC_CORE_TOML_H
#define DC_CORE_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dodeca/status.h"

#define DC_TOML_MAX_DEPTH 32

typedef enum dc_toml_type {
    DC_TOML_STRING = 0,
    DC_TOML_INTEGER = 1,
    DC_TOML_FLOAT = 2,
    DC_TOML_BOOLEAN = 3,
    DC_TOML_ARRAY = 4,
    DC_TOML_TABLE = 5,
} dc_toml_type;

typedef struct dc_toml_table dc_toml_table;
typedef struct dc_toml_value dc_toml_value;

struct dc_toml_value {
    dc_toml_type type;
    uint32_t line; /* 1-based position where the value starts */
    uint32_t column;
    union {
        struct {
            char *data; /* NUL-terminated UTF-8 without interior NULs */
            size_t len;
        } string;
        int64_t integer;
        double floating;
        bool boolean;
        struct {
            dc_toml_value *items; /* scalars only */
            size_t len;
        } array;
        dc_toml_table *table;
    } as;
};

typedef struct dc_toml_entry {
    char *key;     /* one key segment (no dots), NUL-terminated */
    uint32_t line; /* where the key (or the header that created the table) was written */
    dc_toml_value value;
} dc_toml_entry;

struct dc_toml_table {
    dc_toml_entry *entries; /* in the order they first appeared */
    size_t len;
    size_t cap;
    uint32_t *slots; /* open-addressing index into entries (entry + 1; 0 = empty) */
    size_t nslots;
    uint32_t depth; /* root is 0 */
    uint8_t origin; /* how the table was created (parser bookkeeping) */
};

/* Parses `len` bytes (no NUL terminator needed). `source` names the input in messages (a path,
 * or something like "<env>"). On success *out is the root table; free it with dc_toml_free. */
dc_status dc_toml_parse(const char *data, size_t len, const char *source, dc_toml_table **out);
void dc_toml_free(dc_toml_table *t);

/* Entry or value for one key segment of `t`; NULL when absent. */
const dc_toml_entry *dc_toml_find(const dc_toml_table *t, const char *key);
const dc_toml_value *dc_toml_get(const dc_toml_table *t, const char *key);
/* Follows a dotted path of bare segments ("models.semantic.device"); NULL when absent. */
const dc_toml_value *dc_toml_get_path(const dc_toml_table *t, const char *path);

/* Typed lookups: true when the key exists with that type (an integer also reads as a float). */
bool dc_toml_get_string(const dc_toml_table *t, const char *key, const char **out);
bool dc_toml_get_int(const dc_toml_table *t, const char *key, int64_t *out);
bool dc_toml_get_float(const dc_toml_table *t, const char *key, double *out);
bool dc_toml_get_bool(const dc_toml_table *t, const char *key, bool *out);
const dc_toml_table *dc_toml_get_table(const dc_toml_table *t, const char *key);

/* "string", "integer", "float", "boolean", "array", "table". */
const char *dc_toml_type_name(dc_toml_type type);

/* Converts a decimal float to text that parses back to the same double, always in TOML float
 * syntax ("1.0", "0.01", "1e+300", "inf", "-inf", "nan"), independent of the C locale. */
void dc_toml_format_float(double v, char *buf, size_t cap);

#endif

/* TOML subset parser; see toml.h for what is accepted. Written for dodeca's config files: small
 * inputs, precise errors, no recursion while parsing. */
#include "core/toml.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/utf8.h"

enum { ORIGIN_ROOT, ORIGIN_IMPLICIT, ORIGIN_HEADER, ORIGIN_DOTTED };

typedef struct parser {
    const char *src;
    const char *p;
    const char *end;
    const char *name;
    /* Line lookup cache: positions only move forward, so locating is linear overall. */
    const char *scan;
    uint32_t scan_line;
    uint32_t scan_col;
    dc_toml_table *root;
    dc_toml_table *current;
    char table_path[256]; /* display form of the current [header], for messages */
} parser;

typedef struct sbuf {
    char *data;
    size_t len;
    size_t cap;
} sbuf;

/* ---------------------------------------------------------------- positions and errors */

static void locate(parser *ps, const char *at, uint32_t *line, uint32_t *col) {
    if (at < ps->scan) { /* only errors point backwards; rescanning then is fine */
        ps->scan = ps->src;
        ps->scan_line = 1;
        ps->scan_col = 1;
    }
    for (; ps->scan < at; ps->scan++) {
        unsigned char b = (unsigned char)*ps->scan;
        if (b == '\n') {
            if (ps->scan_line < UINT32_MAX) ps->scan_line++;
            ps->scan_col = 1;
        } else if ((b & 0xC0) != 0x80 && ps->scan_col < UINT32_MAX) {
            ps->scan_col++; /* columns count characters, not bytes */
        }
    }
    *line = ps->scan_line;
    *col = ps->scan_col;
}

static dc_status perr(parser *ps, const char *at, const char *fmt, ...) DC_PRINTF(3, 4);
static dc_status perr(parser *ps, const char *at, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    uint32_t line, col;
    locate(ps, at, &line, &col);
    return dc_fail(DC_ERR_CONFIG, "%s:%u:%u: %s", ps->name, (unsigned)line, (unsigned)col, msg);
}

static dc_status oom(void) {
    return dc_fail(DC_ERR_OUT_OF_MEMORY, "out of memory parsing TOML");
}

/* Quotes a key segment for messages when it is not a bare key. */
static bool is_bare_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static void append_segment(char *buf, size_t cap, const char *seg) {
    size_t n = strlen(buf);
    if (n >= cap - 1) return;
    bool bare = seg[0] != '\0';
    for (const char *s = seg; *s; s++) bare = bare && is_bare_char(*s);
    snprintf(buf + n, cap - n, bare ? "%s%s" : "%s\"%s\"", n ? "." : "", seg);
}

/* Display form of "current table path" + key segments. */
static void key_display(const parser *ps, char *const *segs, size_t n, size_t upto, char *buf,
                        size_t cap, bool with_table) {
    buf[0] = '\0';
    if (with_table) snprintf(buf, cap, "%s", ps->table_path);
    for (size_t i = 0; i < n && i < upto; i++) append_segment(buf, cap, segs[i]);
}

/* ---------------------------------------------------------------- tables */

static dc_toml_table *table_new(uint32_t depth, uint8_t origin) {
    dc_toml_table *t = calloc(1, sizeof *t);
    if (t) {
        t->depth = depth;
        t->origin = origin;
    }
    return t;
}

static uint64_t hash_key(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static bool reindex(dc_toml_table *t, size_t nslots) {
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (!slots) return false;
    for (size_t i = 0; i < t->len; i++) {
        size_t s = (size_t)hash_key(t->entries[i].key) & (nslots - 1);
        while (slots[s]) s = (s + 1) & (nslots - 1);
        slots[s] = (uint32_t)(i + 1);
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = nslots;
    return true;
}

static dc_toml_entry *table_lookup(const dc_toml_table *t, const char *key) {
    if (!t) return NULL;
    if (!t->slots) {
        for (size_t i = 0; i < t->len; i++)
            if (strcmp(t->entries[i].key, key) == 0) return &t->entries[i];
        return NULL;
    }
    for (size_t s = (size_t)hash_key(key) & (t->nslots - 1); t->slots[s];
         s = (s + 1) & (t->nslots - 1)) {
        dc_toml_entry *e = &t->entries[t->slots[s] - 1];
        if (strcmp(e->key, key) == 0) return e;
    }
    return NULL;
}

/* Takes ownership of `key` and of the value's allocations on success. Small tables are searched
 * linearly; past 8 entries an index keeps hostile many-key inputs from going quadratic. */
static dc_toml_entry *table_add(dc_toml_table *t, char *key, uint32_t line, dc_toml_value value) {
    if (t->len == UINT32_MAX - 1) return NULL;
    if (t->len == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        dc_toml_entry *e = realloc(t->entries, cap * sizeof *e);
        if (!e) return NULL;
        t->entries = e;
        t->cap = cap;
    }
    dc_toml_entry *e = &t->entries[t->len++];
    e->key = key;
    e->line = line;
    e->value = value;
    if (t->len > 8 && t->len * 2 > t->nslots) {
        size_t nslots = 32;
        while (nslots < t->len * 4) nslots *= 2;
        if (!reindex(t, nslots)) {
            t->len--;
            return NULL;
        }
    } else if (t->slots) {
        size_t s = (size_t)hash_key(key) & (t->nslots - 1);
        while (t->slots[s]) s = (s + 1) & (t->nslots - 1);
        t->slots[s] = (uint32_t)t->len;
    }
    return e;
}

static void value_free(dc_toml_value *v) {
    switch (v->type) {
    case DC_TOML_STRING:
        free(v->as.string.data);
        break;
    case DC_TOML_ARRAY:
        for (size_t i = 0; i < v->as.array.len; i++) value_free(&v->as.array.items[i]);
        free(v->as.array.items);
        break;
    case DC_TOML_TABLE:
        dc_toml_free(v->as.table);
        break;
    default:
        break;
    }
}

void dc_toml_free(dc_toml_table *t) {
    if (!t) return;
    for (size_t i = 0; i < t->len; i++) {
        free(t->entries[i].key);
        value_free(&t->entries[i].value);
    }
    free(t->entries);
    free(t->slots);
    free(t);
}

/* ---------------------------------------------------------------- lexing helpers */

static bool at_end(const parser *ps) {
    return ps->p >= ps->end;
}
static int peek(const parser *ps, size_t ahead) {
    return ps->p + ahead < ps->end ? (unsigned char)ps->p[ahead] : -1;
}
static bool is_control(int c) {
    return (c >= 0 && c < 0x20 && c != '\t') || c == 0x7f;
}

static void skip_ws(parser *ps) {
    while (!at_end(ps) && (*ps->p == ' ' || *ps->p == '\t')) ps->p++;
}

/* Consumes "\n" or "\r\n"; a bare "\r" is an error. Returns 1 consumed, 0 none, -1 error. */
static int eat_newline(parser *ps) {
    if (peek(ps, 0) == '\n') {
        ps->p++;
        return 1;
    }
    if (peek(ps, 0) == '\r') {
        if (peek(ps, 1) != '\n') {
            perr(ps, ps->p, "carriage return not followed by a line feed");
            return -1;
        }
        ps->p += 2;
        return 1;
    }
    return 0;
}

static dc_status skip_comment(parser *ps) {
    if (peek(ps, 0) != '#') return DC_OK;
    for (ps->p++; !at_end(ps) && *ps->p != '\n' && *ps->p != '\r'; ps->p++)
        if (is_control((unsigned char)*ps->p))
            return perr(ps, ps->p, "control character U+%04X in a comment",
                        (unsigned)(unsigned char)*ps->p);
    return DC_OK;
}

/* Whitespace, newlines and comments, as allowed between array elements. */
static dc_status skip_ws_nl(parser *ps) {
    for (;;) {
        skip_ws(ps);
        dc_status st = skip_comment(ps);
        if (st) return st;
        int nl = eat_newline(ps);
        if (nl < 0) return DC_ERR_CONFIG;
        if (nl == 0) return DC_OK;
    }
}

/* After a statement only whitespace and a comment may follow on the line. */
static dc_status expect_line_end(parser *ps, const char *after) {
    skip_ws(ps);
    dc_status st = skip_comment(ps);
    if (st) return st;
    if (at_end(ps)) return DC_OK;
    int nl = eat_newline(ps);
    if (nl < 0) return DC_ERR_CONFIG;
    if (nl == 0) return perr(ps, ps->p, "unexpected text after %s", after);
    return DC_OK;
}

static bool sbuf_put(sbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 32;
        while (cap < b->len + n + 1) cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) return false;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

static size_t utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int hex_value(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* ---------------------------------------------------------------- strings */

/* Parses an escape after the backslash at ps->p. */
static dc_status parse_escape(parser *ps, sbuf *out) {
    const char *at = ps->p;
    ps->p++; /* backslash */
    int c = peek(ps, 0);
    const char *simple = NULL;
    switch (c) {
    case 'b':
        simple = "\b";
        break;
    case 't':
        simple = "\t";
        break;
    case 'n':
        simple = "\n";
        break;
    case 'f':
        simple = "\f";
        break;
    case 'r':
        simple = "\r";
        break;
    case '"':
        simple = "\"";
        break;
    case '\\':
        simple = "\\";
        break;
    case 'u':
    case 'U':
        break;
    case -1:
        return perr(ps, at, "unterminated string");
    default:
        if (c < 0x20 || c >= 0x7f) return perr(ps, at, "invalid escape sequence in string");
        return perr(ps, at, "invalid escape sequence '\\%c' in string", c);
    }
    if (simple) {
        ps->p++;
        return sbuf_put(out, simple, 1) ? DC_OK : oom();
    }
    int digits = c == 'u' ? 4 : 8;
    uint32_t cp = 0;
    for (int i = 1; i <= digits; i++) {
        int h = hex_value(peek(ps, (size_t)i));
        if (h < 0) return perr(ps, at, "escape '\\%c' needs %d hexadecimal digits", c, digits);
        cp = cp * 16 + (uint32_t)h;
    }
    ps->p += 1 + (size_t)digits;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return perr(ps, at, "escape names U+%04X, which is not a Unicode scalar value",
                    (unsigned)cp);
    if (cp == 0) return perr(ps, at, "the NUL character (\\u0000) is not supported in strings");
    char enc[4];
    return sbuf_put(out, enc, utf8_encode(cp, enc)) ? DC_OK : oom();
}

/* Parses any of the four string forms at ps->p; the result is NUL-terminated in out. */
static dc_status parse_string(parser *ps, sbuf *out) {
    const char *open = ps->p;
    char q = *ps->p;
    bool literal = q == '\'';
    bool multi = peek(ps, 1) == q && peek(ps, 2) == q;
    ps->p += multi ? 3 : 1;
    if (!sbuf_put(out, "", 0)) return oom();
    if (multi) { /* a newline right after the opening delimiter is trimmed */
        int nl = eat_newline(ps);
        if (nl < 0) return DC_ERR_CONFIG;
    }
    for (;;) {
        int c = peek(ps, 0);
        if (c < 0) return perr(ps, open, "unterminated string");
        if (c == q) {
            if (!multi) {
                ps->p++;
                return DC_OK;
            }
            size_t run = 0;
            while (peek(ps, run) == q) run++;
            if (run >= 3) { /* up to two quotes may sit just before the closing delimiter */
                size_t extra = run - 3 > 2 ? 2 : run - 3;
                if (!sbuf_put(out, ps->p, extra)) return oom();
                ps->p += 3 + extra;
                return DC_OK;
            }
            if (!sbuf_put(out, ps->p, run)) return oom();
            ps->p += run;
            continue;
        }
        if (c == '\n' || c == '\r') {
            if (!multi)
                return perr(ps, open, "unterminated string (newline before the closing quote)");
            int nl = eat_newline(ps);
            if (nl < 0) return DC_ERR_CONFIG;
            if (!sbuf_put(out, "\n", 1)) return oom();
            continue;
        }
        if (c == '\\' && !literal) {
            if (multi) { /* line-ending backslash: drop the newline and following whitespace */
                size_t k = 1;
                while (peek(ps, k) == ' ' || peek(ps, k) == '\t') k++;
                if (peek(ps, k) == '\n' || (peek(ps, k) == '\r' && peek(ps, k + 1) == '\n')) {
                    ps->p += k;
                    for (;;) {
                        skip_ws(ps);
                        int nl = eat_newline(ps);
                        if (nl < 0) return DC_ERR_CONFIG;
                        if (nl == 0) break;
                    }
                    continue;
                }
            }
            dc_status st = parse_escape(ps, out);
            if (st) return st;
            continue;
        }
        if (is_control(c))
            return perr(ps, ps->p, "control character U+%04X in a string (use an escape)",
                        (unsigned)c);
        if (!sbuf_put(out, ps->p, 1)) return oom();
        ps->p++;
    }
}

/* ---------------------------------------------------------------- keys */

/* Parses a possibly dotted key into segs[0..*n) (malloc'd; caller frees on any outcome). */
static dc_status parse_key(parser *ps, char **segs, size_t *n) {
    *n = 0;
    for (;;) {
        skip_ws(ps);
        if (*n == DC_TOML_MAX_DEPTH)
            return perr(ps, ps->p, "key has more than %d dotted parts", DC_TOML_MAX_DEPTH);
        int c = peek(ps, 0);
        if (c == '"' || c == '\'') {
            if (peek(ps, 1) == c && peek(ps, 2) == c)
                return perr(ps, ps->p, "multi-line strings cannot be keys");
            sbuf b = {0};
            dc_status st = parse_string(ps, &b);
            if (st) {
                free(b.data);
                return st;
            }
            segs[(*n)++] = b.data;
        } else {
            const char *start = ps->p;
            while (!at_end(ps) && is_bare_char(*ps->p)) ps->p++;
            if (ps->p == start) {
                if (c < 0 || c == '\n' || c == '\r' || c == '=')
                    return perr(ps, start, "expected a key");
                if (c >= 0x20 && c < 0x7f)
                    return perr(ps, start, "unexpected '%c' where a key was expected", c);
                return perr(ps, start, "unexpected character where a key was expected");
            }
            size_t len = (size_t)(ps->p - start);
            char *s = malloc(len + 1);
            if (!s) return oom();
            memcpy(s, start, len);
            s[len] = '\0';
            segs[(*n)++] = s;
        }
        skip_ws(ps);
        if (peek(ps, 0) != '.') return DC_OK;
        ps->p++;
    }
}

static void free_segs(char **segs, size_t n) {
    for (size_t i = 0; i < n; i++) free(segs[i]);
}

/* ---------------------------------------------------------------- numbers */

typedef enum { NUM_INT, NUM_FLOAT, NUM_OVERFLOW, NUM_RANGE, NUM_BAD } num_kind;

/* Digits of `base` with single underscores only between digits; accumulates into *mag.
 * Returns the number of characters consumed (0 on a syntax error), sets *over on overflow. */
static size_t scan_digits(const char *s, size_t len, int base, uint64_t limit, uint64_t *mag,
                          bool *over) {
    size_t i = 0;
    bool prev_digit = false;
    for (; i < len; i++) {
        int d = hex_value((unsigned char)s[i]);
        if (s[i] == '_') {
            if (!prev_digit || i + 1 >= len || hex_value((unsigned char)s[i + 1]) < 0 ||
                hex_value((unsigned char)s[i + 1]) >= base)
                return 0;
            prev_digit = false;
            continue;
        }
        if (d < 0 || d >= base) break;
        if (*mag > (limit - (uint64_t)d) / (uint64_t)base)
            *over = true;
        else
            *mag = *mag * (uint64_t)base + (uint64_t)d;
        prev_digit = true;
    }
    return prev_digit ? i : 0;
}

static bool c_strtod(const char *s, double *out) {
    /* strtod follows LC_NUMERIC; TOML always uses '.', so swap in the locale's point. */
    const char *point = localeconv()->decimal_point;
    size_t plen = point && *point ? strlen(point) : 1;
    size_t n = strlen(s);
    char *buf = malloc(n * plen + 1);
    if (!buf) return false;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.' && point && *point) {
            memcpy(buf + k, point, plen);
            k += plen;
        } else {
            buf[k++] = s[i];
        }
    }
    buf[k] = '\0';
    char *endp;
    errno = 0;
    *out = strtod(buf, &endp);
    bool ok = *endp == '\0' && !(errno == ERANGE && isinf(*out));
    free(buf);
    return ok;
}

static num_kind parse_number(const char *s, size_t len, int64_t *iv, double *fv) {
    size_t i = 0;
    bool neg = false;
    if (len && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        i = 1;
    }
    const char *r = s + i;
    size_t rl = len - i;
    if ((rl == 3 && memcmp(r, "inf", 3) == 0) || (rl == 3 && memcmp(r, "nan", 3) == 0)) {
        *fv = r[0] == 'i' ? (neg ? -INFINITY : INFINITY) : (neg ? -NAN : NAN);
        return NUM_FLOAT;
    }
    if (rl >= 2 && r[0] == '0' && (r[1] == 'x' || r[1] == 'o' || r[1] == 'b')) {
        if (i) return NUM_BAD; /* TOML: no sign on prefixed integers */
        int base = r[1] == 'x' ? 16 : r[1] == 'o' ? 8 : 2;
        uint64_t mag = 0;
        bool over = false;
        size_t n = scan_digits(r + 2, rl - 2, base, (uint64_t)INT64_MAX, &mag, &over);
        if (n == 0 || n != rl - 2) return NUM_BAD;
        if (over) return NUM_OVERFLOW;
        *iv = (int64_t)mag;
        return NUM_INT;
    }
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t mag = 0;
    bool over = false;
    size_t n = scan_digits(r, rl, 10, limit, &mag, &over);
    if (n == 0) return NUM_BAD;
    if (r[0] == '0' && n > 1) return NUM_BAD; /* leading zeros are not allowed */
    if (n == rl) {
        if (over) return NUM_OVERFLOW;
        *iv = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
        return NUM_INT;
    }
    /* Float: optional fraction, optional exponent, at least one of them. */
    size_t k = n;
    bool frac = false, expo = false;
    uint64_t ignore = 0;
    bool ign_over = false;
    if (k < rl && r[k] == '.') {
        size_t m = scan_digits(r + k + 1, rl - k - 1, 10, UINT64_MAX, &ignore, &ign_over);
        if (m == 0) return NUM_BAD;
        k += 1 + m;
        frac = true;
    }
    if (k < rl && (r[k] == 'e' || r[k] == 'E')) {
        k++;
        if (k < rl && (r[k] == '+' || r[k] == '-')) k++;
        size_t m = scan_digits(r + k, rl - k, 10, UINT64_MAX, &ignore, &ign_over);
        if (m == 0) return NUM_BAD;
        k += m;
        expo = true;
    }
    if (k != rl || (!frac && !expo)) return NUM_BAD;
    char *clean = malloc(len + 1);
    if (!clean) return NUM_BAD;
    size_t c = 0;
    for (size_t j = 0; j < len; j++)
        if (s[j] != '_') clean[c++] = s[j];
    clean[c] = '\0';
    bool ok = c_strtod(clean, fv);
    free(clean);
    return ok ? NUM_FLOAT : NUM_RANGE;
}

/* ---------------------------------------------------------------- values */

static bool is_value_end(int c) {
    return c < 0 || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == ']' ||
           c == '#';
}

static dc_status parse_scalar(parser *ps, dc_toml_value *v, const char *key) {
    const char *start = ps->p;
    uint32_t line, col;
    locate(ps, start, &line, &col);
    memset(v, 0, sizeof *v);
    v->line = line;
    v->column = col;
    int c = peek(ps, 0);
    if (c == '"' || c == '\'') {
        sbuf b = {0};
        dc_status st = parse_string(ps, &b);
        if (st) {
            free(b.data);
            return st;
        }
        v->type = DC_TOML_STRING;
        v->as.string.data = b.data;
        v->as.string.len = b.len;
        return DC_OK;
    }
    if (c == '{')
        return perr(ps, start, "inline tables are not supported (key '%s'); use a [table] header",
                    key);
    if (c == '[') return perr(ps, start, "nested arrays are not supported (key '%s')", key);
    while (!is_value_end(peek(ps, 0))) ps->p++;
    size_t len = (size_t)(ps->p - start);
    if (len == 0) return perr(ps, start, "missing value for key '%s'", key);
    int shown = len > 40 ? 40 : (int)len;
    if (len == 4 && memcmp(start, "true", 4) == 0) {
        v->type = DC_TOML_BOOLEAN;
        v->as.boolean = true;
        return DC_OK;
    }
    if (len == 5 && memcmp(start, "false", 5) == 0) {
        v->type = DC_TOML_BOOLEAN;
        v->as.boolean = false;
        return DC_OK;
    }
    int64_t iv = 0;
    double fv = 0;
    switch (parse_number(start, len, &iv, &fv)) {
    case NUM_INT:
        v->type = DC_TOML_INTEGER;
        v->as.integer = iv;
        return DC_OK;
    case NUM_FLOAT:
        v->type = DC_TOML_FLOAT;
        v->as.floating = fv;
        return DC_OK;
    case NUM_OVERFLOW:
        return perr(ps, start, "integer %.*s for key '%s' does not fit in 64 bits", shown, start,
                    key);
    case NUM_RANGE:
        return perr(ps, start, "float %.*s for key '%s' is out of range", shown, start, key);
    case NUM_BAD:
        break;
    }
    bool date = memchr(start, ':', len) != NULL ||
                (len >= 5 && start[4] == '-' && start[0] >= '0' && start[0] <= '9');
    if (date) return perr(ps, start, "dates and times are not supported (key '%s')", key);
    bool printable = true;
    for (size_t i = 0; i < (size_t)shown; i++)
        printable = printable && (unsigned char)start[i] >= 0x20 && (unsigned char)start[i] < 0x7f;
    if (!printable) return perr(ps, start, "invalid value for key '%s'", key);
    return perr(ps, start, "invalid value '%.*s' for key '%s' (strings need quotes)", shown, start,
                key);
}

static dc_status parse_array(parser *ps, dc_toml_value *v, const char *key) {
    const char *open = ps->p;
    uint32_t line, col;
    locate(ps, open, &line, &col);
    memset(v, 0, sizeof *v);
    v->type = DC_TOML_ARRAY;
    v->line = line;
    v->column = col;
    size_t cap = 0;
    ps->p++;
    for (;;) {
        dc_status st = skip_ws_nl(ps);
        if (st) return st;
        if (at_end(ps)) return perr(ps, open, "unterminated array for key '%s'", key);
        if (*ps->p == ']') {
            ps->p++;
            return DC_OK;
        }
        if (v->as.array.len == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            dc_toml_value *items = realloc(v->as.array.items, ncap * sizeof *items);
            if (!items) return oom();
            v->as.array.items = items;
            cap = ncap;
        }
        dc_toml_value *item = &v->as.array.items[v->as.array.len];
        st = parse_scalar(ps, item, key);
        if (st) return st;
        v->as.array.len++;
        st = skip_ws_nl(ps);
        if (st) return st;
        if (peek(ps, 0) == ',') {
            ps->p++;
        } else if (peek(ps, 0) == ']') {
            ps->p++;
            return DC_OK;
        } else if (at_end(ps)) {
            return perr(ps, open, "unterminated array for key '%s'", key);
        } else {
            return perr(ps, ps->p, "expected ',' or ']' after an array element of key '%s'", key);
        }
    }
}

/* ---------------------------------------------------------------- statements */

static dc_status parse_header(parser *ps) {
    const char *open = ps->p;
    uint32_t line, col;
    locate(ps, open, &line, &col);
    ps->p++;
    if (peek(ps, 0) == '[') return perr(ps, open, "arrays of tables ([[...]]) are not supported");
    char *segs[DC_TOML_MAX_DEPTH];
    size_t n = 0;
    char disp[256];
    dc_status st = parse_key(ps, segs, &n);
    if (!st && peek(ps, 0) != ']') st = perr(ps, ps->p, "expected ']' to close the table header");
    if (st) {
        free_segs(segs, n);
        return st;
    }
    ps->p++;
    key_display(ps, segs, n, n, disp, sizeof disp, false);
    dc_toml_table *t = ps->root;
    size_t i = 0;
    for (; i < n; i++) {
        bool last = i + 1 == n;
        dc_toml_entry *e = table_lookup(t, segs[i]);
        if (!e) {
            if (t->depth + 1 > DC_TOML_MAX_DEPTH) {
                st = perr(ps, open, "table [%s] nests deeper than %d levels", disp,
                          DC_TOML_MAX_DEPTH);
                break;
            }
            dc_toml_value tv = {.type = DC_TOML_TABLE, .line = line, .column = col};
            tv.as.table = table_new(t->depth + 1, last ? ORIGIN_HEADER : ORIGIN_IMPLICIT);
            if (!tv.as.table || !table_add(t, segs[i], line, tv)) {
                free(tv.as.table);
                st = oom();
                break;
            }
            segs[i] = NULL; /* now owned by the table */
            t = tv.as.table;
            continue;
        }
        char upto[256];
        key_display(ps, segs, n, i + 1, upto, sizeof upto, false);
        if (e->value.type != DC_TOML_TABLE) {
            st = perr(ps, open, "cannot define table [%s]: '%s' is already a value (line %u)", disp,
                      upto, (unsigned)e->line);
            break;
        }
        dc_toml_table *sub = e->value.as.table;
        if (last) {
            if (sub->origin != ORIGIN_IMPLICIT) {
                st = perr(ps, open, "table [%s] is already defined%s (line %u)", disp,
                          sub->origin == ORIGIN_DOTTED ? " by dotted keys" : "", (unsigned)e->line);
                break;
            }
            sub->origin = ORIGIN_HEADER;
            e->line = line;
        }
        t = sub;
    }
    free_segs(segs, n);
    if (st) return st;
    ps->current = t;
    snprintf(ps->table_path, sizeof ps->table_path, "%s", disp);
    return expect_line_end(ps, "the table header");
}

static dc_status parse_keyval(parser *ps) {
    const char *kstart = ps->p;
    uint32_t line, col;
    locate(ps, kstart, &line, &col);
    char *segs[DC_TOML_MAX_DEPTH];
    size_t n = 0;
    char disp[256];
    dc_status st = parse_key(ps, segs, &n);
    if (st) {
        free_segs(segs, n);
        return st;
    }
    key_display(ps, segs, n, n, disp, sizeof disp, true);
    skip_ws(ps);
    if (peek(ps, 0) != '=') {
        st = perr(ps, ps->p, "expected '=' after key '%s'", disp);
        free_segs(segs, n);
        return st;
    }
    ps->p++;
    /* Resolve the target table before the value so a duplicate is reported at its key. */
    dc_toml_table *t = ps->current;
    for (size_t i = 0; i + 1 < n && !st; i++) {
        dc_toml_entry *e = table_lookup(t, segs[i]);
        char upto[256]; /* segs[0..i] all exist here: a created table has no children yet */
        if (e) key_display(ps, segs, n, i + 1, upto, sizeof upto, true);
        if (!e) {
            if (t->depth + 1 > DC_TOML_MAX_DEPTH) {
                st = perr(ps, kstart, "key '%s' nests deeper than %d levels", disp,
                          DC_TOML_MAX_DEPTH);
                break;
            }
            dc_toml_value tv = {.type = DC_TOML_TABLE, .line = line, .column = col};
            tv.as.table = table_new(t->depth + 1, ORIGIN_DOTTED);
            if (!tv.as.table || !table_add(t, segs[i], line, tv)) {
                free(tv.as.table);
                st = oom();
                break;
            }
            segs[i] = NULL;
            t = tv.as.table;
        } else if (e->value.type != DC_TOML_TABLE) {
            st = perr(ps, kstart, "cannot set '%s': '%s' is already a value (line %u)", disp, upto,
                      (unsigned)e->line);
        } else if (e->value.as.table->origin != ORIGIN_DOTTED) {
            st = perr(ps, kstart,
                      "cannot set '%s' with a dotted key: table [%s] is defined elsewhere "
                      "(line %u)",
                      disp, upto, (unsigned)e->line);
        } else {
            t = e->value.as.table;
        }
    }
    if (!st) {
        const dc_toml_entry *dup = table_lookup(t, segs[n - 1]);
        if (dup)
            st = perr(ps, kstart, "duplicate key '%s' (first defined at line %u)", disp,
                      (unsigned)dup->line);
    }
    dc_toml_value v = {0};
    if (!st) {
        skip_ws(ps);
        st = peek(ps, 0) == '[' ? parse_array(ps, &v, disp) : parse_scalar(ps, &v, disp);
        if (st == DC_ERR_CONFIG) { /* string errors do not know their key: add it */
            char quoted[300], detail[1024];
            snprintf(quoted, sizeof quoted, "'%s'", disp);
            if (!strstr(dc_error_detail(), quoted)) {
                snprintf(detail, sizeof detail, "%s", dc_error_detail());
                dc_fail(st, "%s (key %s)", detail, quoted);
            }
        }
    }
    if (!st) {
        if (table_add(t, segs[n - 1], line, v))
            segs[n - 1] = NULL;
        else
            st = oom();
    }
    if (st) value_free(&v);
    free_segs(segs, n);
    if (st) return st;
    char after[300];
    snprintf(after, sizeof after, "the value of '%s'", disp);
    return expect_line_end(ps, after);
}

dc_status dc_toml_parse(const char *data, size_t len, const char *source, dc_toml_table **out) {
    *out = NULL;
    if (!data && len) return dc_fail(DC_ERR_INVALID_ARGUMENT, "dc_toml_parse: NULL data");
    parser ps = {0};
    ps.src = data ? data : "";
    ps.p = ps.src;
    ps.end = ps.src + len;
    ps.name = source ? source : "<toml>";
    ps.scan = ps.src;
    ps.scan_line = 1;
    ps.scan_col = 1;
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) ps.p += 3; /* byte-order mark */
    size_t bad = 0;
    if (!dc_utf8_valid(ps.p, (size_t)(ps.end - ps.p), &bad))
        return perr(&ps, ps.p + bad, "invalid UTF-8 (byte 0x%02X)",
                    (unsigned)(unsigned char)ps.p[bad]);
    ps.root = table_new(0, ORIGIN_ROOT);
    if (!ps.root) return oom();
    ps.current = ps.root;
    dc_status st = DC_OK;
    while (!st) {
        st = skip_ws_nl(&ps);
        if (st || at_end(&ps)) break;
        st = *ps.p == '[' ? parse_header(&ps) : parse_keyval(&ps);
    }
    if (st) {
        dc_toml_free(ps.root);
        return st;
    }
    *out = ps.root;
    return DC_OK;
}

/* ---------------------------------------------------------------- accessors */

const dc_toml_entry *dc_toml_find(const dc_toml_table *t, const char *key) {
    return t && key ? table_lookup(t, key) : NULL;
}

const dc_toml_value *dc_toml_get(const dc_toml_table *t, const char *key) {
    const dc_toml_entry *e = dc_toml_find(t, key);
    return e ? &e->value : NULL;
}

const dc_toml_value *dc_toml_get_path(const dc_toml_table *t, const char *path) {
    char seg[256];
    const dc_toml_value *v = NULL;
    while (t && path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof seg) return NULL;
        memcpy(seg, path, n);
        seg[n] = '\0';
        v = dc_toml_get(t, seg);
        if (!v) return NULL;
        if (!dot) return v;
        t = v->type == DC_TOML_TABLE ? v->as.table : NULL;
        path = dot + 1;
    }
    return NULL;
}

bool dc_toml_get_string(const dc_toml_table *t, const char *key, const char **out) {
    const dc_toml_value *v = dc_toml_get(t, key);
    if (!v || v->type != DC_TOML_STRING) return false;
    *out = v->as.string.data;
    return true;
}

bool dc_toml_get_int(const dc_toml_table *t, const char *key, int64_t *out) {
    const dc_toml_value *v = dc_toml_get(t, key);
    if (!v || v->type != DC_TOML_INTEGER) return false;
    *out = v->as.integer;
    return true;
}

bool dc_toml_get_float(const dc_toml_table *t, const char *key, double *out) {
    const dc_toml_value *v = dc_toml_get(t, key);
    if (!v || (v->type != DC_TOML_FLOAT && v->type != DC_TOML_INTEGER)) return false;
    *out = v->type == DC_TOML_FLOAT ? v->as.floating : (double)v->as.integer;
    return true;
}

bool dc_toml_get_bool(const dc_toml_table *t, const char *key, bool *out) {
    const dc_toml_value *v = dc_toml_get(t, key);
    if (!v || v->type != DC_TOML_BOOLEAN) return false;
    *out = v->as.boolean;
    return true;
}

const dc_toml_table *dc_toml_get_table(const dc_toml_table *t, const char *key) {
    const dc_toml_value *v = dc_toml_get(t, key);
    return v && v->type == DC_TOML_TABLE ? v->as.table : NULL;
}

const char *dc_toml_type_name(dc_toml_type type) {
    switch (type) {
    case DC_TOML_STRING:
        return "string";
    case DC_TOML_INTEGER:
        return "integer";
    case DC_TOML_FLOAT:
        return "float";
    case DC_TOML_BOOLEAN:
        return "boolean";
    case DC_TOML_ARRAY:
        return "array";
    case DC_TOML_TABLE:
        return "table";
    }
    return "unknown";
}

void dc_toml_format_float(double v, char *buf, size_t cap) {
    if (cap == 0) return;
    if (isnan(v)) {
        snprintf(buf, cap, "nan");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, cap, v < 0 ? "-inf" : "inf");
        return;
    }
    char tmp[64];
    /* Shortest precision that reads back exactly. */
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        double back;
        if (c_strtod(tmp, &back) && back == v) break;
    }
    /* Normalise the locale's decimal point to '.', and make sure it reads as a float. */
    const char *point = localeconv()->decimal_point;
    char out[80];
    size_t k = 0, plen = point && *point ? strlen(point) : 0;
    bool has_point = false, has_exp = false;
    for (size_t i = 0; tmp[i] && k + 3 < sizeof out;) {
        if (plen && strncmp(tmp + i, point, plen) == 0) {
            out[k++] = '.';
            i += plen;
            has_point = true;
            continue;
        }
        if (tmp[i] == 'e') has_exp = true;
        out[k++] = tmp[i++];
    }
    out[k] = '\0';
    if (!has_point && !has_exp) snprintf(out + k, sizeof out - k, ".0");
    snprintf(buf, cap, "%s", out);
}

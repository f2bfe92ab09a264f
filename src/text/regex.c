/* Regular expressions for normalizers and pre-tokenizers. tokenizer.json patterns are written for
 * Oniguruma; PCRE2 (UTF + UCP + JIT) runs them after rewriting the few escapes whose meaning
 * differs between the two engines. Subjects are validated once per encode, so every match runs
 * with PCRE2_NO_UTF_CHECK (a per-call check would make the match loop quadratic). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/tok_internal.h"
#include "text/unicode.h"

/* Oniguruma's \s is the White_Space property; PCRE2's UCP \s also takes U+180E. */
#define DC_RE_SPACE                                                                          \
    "\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"     \
    "\\x{202F}\\x{205F}\\x{3000}"
/* Oniguruma's \w is Unicode Word (Alphabetic, marks, Nd, Pc, joiners); PCRE2 10.42's UCP \w is
 * only letters, numbers and underscore. */
#define DC_RE_WORD "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}"

typedef struct dc_sbuf {
    char *p;
    size_t n, cap;
} dc_sbuf;

static dc_status sb_put(dc_sbuf *b, const char *s, size_t n) {
    dc_status st = DC_GROW(b->p, b->cap, b->n + n + 1);
    if (st) return st;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return DC_OK;
}

static dc_status sb_puts(dc_sbuf *b, const char *s) { return sb_put(b, s, strlen(s)); }

/* Rewrites \s \S \w \W \h \H to their Oniguruma meaning. */
static dc_status translate(const char *pat, size_t len, dc_sbuf *out) {
    dc_status st = DC_OK;
    int depth = 0; /* inside a character class */
    for (size_t i = 0; i < len && !st; i++) {
        char ch = pat[i];
        if (ch == '\\' && i + 1 < len) {
            char e = pat[i + 1];
            const char *rep = NULL;
            if (e == 's') rep = depth ? DC_RE_SPACE : "[" DC_RE_SPACE "]";
            else if (e == 'S' && !depth) rep = "[^" DC_RE_SPACE "]";
            else if (e == 'w') rep = depth ? DC_RE_WORD : "[" DC_RE_WORD "]";
            else if (e == 'W' && !depth) rep = "[^" DC_RE_WORD "]";
            else if (e == 'h') rep = depth ? "0-9a-fA-F" : "[0-9a-fA-F]";
            else if (e == 'H' && !depth) rep = "[^0-9a-fA-F]";
            if (rep) st = sb_puts(out, rep);
            else st = sb_put(out, pat + i, 2);
            i++;
            continue;
        }
        if (ch == '[') {
            depth++;
            st = sb_put(out, pat + i, 1);
            /* a ']' right after '[' or '[^' is a literal */
            if (!st && i + 1 < len && pat[i + 1] == '^') st = sb_put(out, pat + ++i, 1);
            if (!st && i + 1 < len && pat[i + 1] == ']') st = sb_put(out, pat + ++i, 1);
            continue;
        }
        if (ch == ']' && depth) depth--;
        st = sb_put(out, pat + i, 1);
    }
    if (!st && !out->p) st = sb_put(out, "", 0);
    return st;
}

dc_status dc_regex_compile(dc_regex *re, const char *pattern, size_t len, const char *where) {
    memset(re, 0, sizeof *re);
    dc_sbuf b = {0};
    dc_status st = translate(pattern, len, &b);
    if (st) {
        free(b.p);
        return st;
    }
    int err = 0;
    PCRE2_SIZE erroff = 0;
    re->code = pcre2_compile((PCRE2_SPTR)b.p, b.n, PCRE2_UTF | PCRE2_UCP, &err, &erroff, NULL);
    free(b.p);
    if (!re->code) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT, "%s: regex \"%.*s\" does not compile: %s",
                       where, (int)(len > 200 ? 200 : len), pattern, (const char *)msg);
    }
    re->jit = pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE) == 0;
    return DC_OK;
}

void dc_regex_free(dc_regex *re) {
    if (re->code) pcre2_code_free(re->code);
    re->code = NULL;
}

static dc_status add_match(dc_ctx *c, uint32_t s, uint32_t e) {
    dc_status st = DC_GROW(c->matches, c->cap_matches, c->nmatches + 1);
    if (st) return st;
    c->matches[c->nmatches++] = (dc_span){s, e};
    return DC_OK;
}

dc_status dc_regex_find_all(dc_ctx *c, const dc_regex *re, const char *s, uint32_t len) {
    c->nmatches = 0;
    if (!c->md) {
        c->md = pcre2_match_data_create(16, NULL);
        if (!c->md) return dc_fail(DC_ERR_OUT_OF_MEMORY, "tokenizer: cannot allocate regex state");
    }
    /* Oniguruma find_iter: an empty match right where the previous match ended is skipped. */
    size_t last_end = 0;
    long long last_match_end = -1;
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
    while (last_end <= len) {
        int rc = re->jit ? pcre2_jit_match(re->code, (PCRE2_SPTR)s, len, last_end, 0, c->md, NULL)
                         : pcre2_match(re->code, (PCRE2_SPTR)s, len, last_end,
                                       PCRE2_NO_UTF_CHECK, c->md, NULL);
        dc_tokenizer_work_add(1);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[120];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return dc_fail(DC_ERR_TOKENIZATION, "tokenizer: regex match failed: %s",
                           (const char *)msg);
        }
        size_t ms = ov[0], me = ov[1];
        if (me < ms) me = ms; /* \K tricks; never in tokenizer patterns */
        if (ms == me && (long long)last_end == last_match_end) {
            last_end += last_end < len ? dc_u8_len((uint8_t)s[last_end]) : 1;
            continue;
        }
        dc_status st = add_match(c, (uint32_t)ms, (uint32_t)me);
        if (st) return st;
        last_end = me;
        last_match_end = (long long)me;
    }
    return DC_OK;
}

/* Converts c->matches (sorted, non-overlapping) into a covering list of flagged ranges. */
static dc_status cover(dc_ctx *c, uint32_t len, bool invert, dc_match **out, size_t *n) {
    size_t need = c->nmatches * 2 + 2;
    dc_match *m = malloc(need * sizeof *m);
    if (!m) return dc_fail(DC_ERR_OUT_OF_MEMORY, "tokenizer: cannot allocate split list");
    size_t k = 0;
    uint32_t prev = 0;
    if (len == 0) {
        m[k++] = (dc_match){0, 0, invert};
    } else {
        for (size_t i = 0; i < c->nmatches; i++) {
            dc_span sp = c->matches[i];
            if (prev != sp.start) m[k++] = (dc_match){prev, sp.start, invert};
            m[k++] = (dc_match){sp.start, sp.end, !invert};
            prev = sp.end;
        }
        if (prev != len) m[k++] = (dc_match){prev, len, invert};
    }
    *out = m;
    *n = k;
    return DC_OK;
}

dc_status dc_pattern_find(dc_ctx *c, const dc_pattern *pat, const char *s, uint32_t len,
                          bool invert, dc_match **out, size_t *n) {
    c->nmatches = 0;
    if (pat->is_regex) {
        if (len) {
            dc_status st = dc_regex_find_all(c, &pat->re, s, len);
            if (st) return st;
        }
    } else if (pat->lit_len == 0) {
        /* the reference matches nothing with an empty literal */
    } else {
        size_t i = 0;
        while (i + pat->lit_len <= len) {
            const char *hit = memchr(s + i, pat->lit[0], len - i - pat->lit_len + 1);
            if (!hit) break;
            size_t at = (size_t)(hit - s);
            dc_tokenizer_work_add(1);
            if (memcmp(hit, pat->lit, pat->lit_len) == 0) {
                dc_status st = add_match(c, (uint32_t)at, (uint32_t)(at + pat->lit_len));
                if (st) return st;
                i = at + pat->lit_len;
            } else {
                i = at + 1;
            }
        }
    }
    return cover(c, len, invert, out, n);
}

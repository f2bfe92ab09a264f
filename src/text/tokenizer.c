/* The tokenizer: tokenizer.json loading (cJSON) and the encode pipeline
 *   added tokens (raw) → normalizer → added tokens (normalized) → pre-tokenizer → model
 *   → code-point offsets → truncation → post-processor → padding,
 * following Hugging Face `tokenizers` step for step so ids and offsets match it. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/utf8.h"
#include "text/tok_internal.h"
#include "text/unicode.h"

#define DC_TOKENIZER_MAX_PAD (1u << 24) /* tokens */

dc_status dc_tokenizer_load_folder(const char *dir, dc_tokenizer **out); /* folder.c */
dc_status dc_tokenizer_finish(dc_tokenizer *t);

/* ---------- JSON helpers ---------- */

static const cJSON *jget(const cJSON *o, const char *key) {
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

static bool jnull(const cJSON *v) { return !v || cJSON_IsNull(v); }

static dc_status jbool(const cJSON *o, const char *key, bool def, bool *out, const char *where) {
    const cJSON *v = jget(o, key);
    if (jnull(v)) {
        *out = def;
        return DC_OK;
    }
    if (!cJSON_IsBool(v))
        return dc_fail(DC_ERR_INVALID_VALUE, "%s.%s: expected true or false", where, key);
    *out = cJSON_IsTrue(v);
    return DC_OK;
}

static dc_status jnum_u32(const cJSON *v, uint32_t *out, const char *where, const char *key) {
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 4294967295.0 ||
        v->valuedouble != (double)(uint32_t)v->valuedouble)
        return dc_fail(DC_ERR_INVALID_VALUE, "%s.%s: expected an integer in [0, 2^32)", where, key);
    *out = (uint32_t)v->valuedouble;
    return DC_OK;
}

static dc_status ju32(const cJSON *o, const char *key, uint32_t def, uint32_t *out,
                      const char *where) {
    const cJSON *v = jget(o, key);
    if (jnull(v)) {
        *out = def;
        return DC_OK;
    }
    return jnum_u32(v, out, where, key);
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* A string field: *out is malloc'ed, or NULL when absent/null. */
static dc_status jstr(const cJSON *o, const char *key, char **out, const char *where) {
    *out = NULL;
    const cJSON *v = jget(o, key);
    if (jnull(v)) return DC_OK;
    if (!cJSON_IsString(v) || !v->valuestring)
        return dc_fail(DC_ERR_INVALID_VALUE, "%s.%s: expected a string", where, key);
    size_t n = strlen(v->valuestring);
    if (!dc_utf8_valid(v->valuestring, n, NULL))
        return dc_fail(DC_ERR_INVALID_VALUE, "%s.%s: invalid UTF-8", where, key);
    *out = dup_n(v->valuestring, n);
    if (!*out) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s.%s: out of memory", where, key);
    return DC_OK;
}

static const char *jtype(const cJSON *o) {
    const cJSON *t = jget(o, "type");
    return cJSON_IsString(t) && t->valuestring ? t->valuestring : NULL;
}

/* One UTF-8 char as a code point (Metaspace replacement, CharDelimiterSplit delimiter). */
static dc_status jchar(const cJSON *o, const char *key, uint32_t def, uint32_t *out,
                       const char *where) {
    const cJSON *v = jget(o, key);
    if (jnull(v)) {
        *out = def;
        return DC_OK;
    }
    if (!cJSON_IsString(v) || !v->valuestring || !v->valuestring[0])
        return dc_fail(DC_ERR_INVALID_VALUE, "%s.%s: expected one character", where, key);
    size_t n = strlen(v->valuestring);
    if (!dc_utf8_valid(v->valuestring, n, NULL))
        return dc_fail(DC_ERR_INVALID_VALUE, "%s.%s: invalid UTF-8", where, key);
    uint32_t k;
    *out = dc_u8_decode(v->valuestring, &k);
    if (k != n) return dc_fail(DC_ERR_INVALID_VALUE, "%s.%s: expected one character", where, key);
    return DC_OK;
}

static dc_status parse_pattern(const cJSON *o, dc_pattern *pat, const char *where) {
    const cJSON *p = jget(o, "pattern");
    const cJSON *s = jget(p, "String"), *r = jget(p, "Regex");
    if (cJSON_IsString(s) && s->valuestring) {
        pat->is_regex = false;
        pat->lit_len = strlen(s->valuestring);
        if (!dc_utf8_valid(s->valuestring, pat->lit_len, NULL))
            return dc_fail(DC_ERR_INVALID_VALUE, "%s.pattern: invalid UTF-8", where);
        pat->lit = dup_n(s->valuestring, pat->lit_len);
        return pat->lit ? DC_OK : dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory", where);
    }
    if (cJSON_IsString(r) && r->valuestring) {
        pat->is_regex = true;
        char w[256];
        snprintf(w, sizeof w, "%s.pattern", where);
        return dc_regex_compile(&pat->re, r->valuestring, strlen(r->valuestring), w);
    }
    return dc_fail(DC_ERR_INVALID_VALUE, "%s.pattern: expected {\"String\": ...} or {\"Regex\": ...}",
                   where);
}

/* ---------- components ---------- */

static dc_status parse_normalizer(const cJSON *o, dc_normalizer *n, const char *where,
                                  int depth) {
    memset(n, 0, sizeof *n);
    const char *type = jtype(o);
    if (!type) return dc_fail(DC_ERR_INVALID_VALUE, "%s: normalizer without a \"type\"", where);
    if (depth > 32) return dc_fail(DC_ERR_INVALID_VALUE, "%s: normalizers nested too deeply", where);
    dc_status st = DC_OK;
    if (!strcmp(type, "BertNormalizer")) {
        n->kind = DC_NORM_BERT;
        if (!st) st = jbool(o, "clean_text", true, &n->clean_text, where);
        if (!st) st = jbool(o, "handle_chinese_chars", true, &n->chinese, where);
        if (!st) st = jbool(o, "lowercase", true, &n->lowercase, where);
        /* strip_accents: null means "as lowercase" */
        if (!st) st = jbool(o, "strip_accents", n->lowercase, &n->strip_accents, where);
    } else if (!strcmp(type, "Strip")) {
        n->kind = DC_NORM_STRIP;
        if (!st) st = jbool(o, "strip_left", true, &n->left, where);
        if (!st) st = jbool(o, "strip_right", true, &n->right, where);
    } else if (!strcmp(type, "StripAccents")) {
        n->kind = DC_NORM_STRIP_ACCENTS;
    } else if (!strcmp(type, "NFC")) {
        n->kind = DC_NORM_NFC;
    } else if (!strcmp(type, "NFD")) {
        n->kind = DC_NORM_NFD;
    } else if (!strcmp(type, "NFKC")) {
        n->kind = DC_NORM_NFKC;
    } else if (!strcmp(type, "NFKD")) {
        n->kind = DC_NORM_NFKD;
    } else if (!strcmp(type, "Lowercase")) {
        n->kind = DC_NORM_LOWERCASE;
    } else if (!strcmp(type, "Nmt")) {
        n->kind = DC_NORM_NMT;
    } else if (!strcmp(type, "ByteLevel")) {
        n->kind = DC_NORM_BYTELEVEL;
    } else if (!strcmp(type, "Replace")) {
        n->kind = DC_NORM_REPLACE;
        st = parse_pattern(o, &n->pat, where);
        if (!st) st = jstr(o, "content", &n->str, where);
        if (!st && !n->str) st = dc_fail(DC_ERR_INVALID_VALUE, "%s.content: missing", where);
        if (!st) n->str_len = strlen(n->str);
        if (!st && !dc_utf8_valid(n->str, n->str_len, NULL))
            st = dc_fail(DC_ERR_INVALID_VALUE, "%s.content: invalid UTF-8", where);
    } else if (!strcmp(type, "Prepend")) {
        n->kind = DC_NORM_PREPEND;
        st = jstr(o, "prepend", &n->str, where);
        if (!st && !n->str) st = dc_fail(DC_ERR_INVALID_VALUE, "%s.prepend: missing", where);
        if (!st) n->str_len = strlen(n->str);
        if (!st && !dc_utf8_valid(n->str, n->str_len, NULL))
            st = dc_fail(DC_ERR_INVALID_VALUE, "%s.prepend: invalid UTF-8", where);
    } else if (!strcmp(type, "Sequence")) {
        n->kind = DC_NORM_SEQUENCE;
        const cJSON *arr = jget(o, "normalizers");
        if (!cJSON_IsArray(arr))
            return dc_fail(DC_ERR_INVALID_VALUE, "%s.normalizers: expected an array", where);
        int cnt = cJSON_GetArraySize(arr);
        n->items = calloc(cnt > 0 ? (size_t)cnt : 1, sizeof *n->items);
        if (!n->items) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory", where);
        const cJSON *it;
        cJSON_ArrayForEach(it, arr) {
            char w[256];
            snprintf(w, sizeof w, "%s.normalizers[%zu]", where, n->nitems);
            st = parse_normalizer(it, &n->items[n->nitems], w, depth + 1);
            n->nitems++;
            if (st) break;
        }
    } else {
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT, "%s: normalizer type \"%s\" is not supported",
                       where, type);
    }
    return st;
}

#define DC_GPT2_REGEX \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

static dc_status parse_behavior(const cJSON *o, dc_split_behavior def, dc_split_behavior *b,
                                const char *where) {
    const cJSON *v = jget(o, "behavior");
    *b = def;
    if (jnull(v)) return DC_OK;
    const char *s = cJSON_IsString(v) ? v->valuestring : NULL;
    if (!s) return dc_fail(DC_ERR_INVALID_VALUE, "%s.behavior: expected a string", where);
    if (!strcmp(s, "Removed")) *b = DC_SPLIT_REMOVED;
    else if (!strcmp(s, "Isolated")) *b = DC_SPLIT_ISOLATED;
    else if (!strcmp(s, "MergedWithPrevious")) *b = DC_SPLIT_MERGED_PREV;
    else if (!strcmp(s, "MergedWithNext")) *b = DC_SPLIT_MERGED_NEXT;
    else if (!strcmp(s, "Contiguous")) *b = DC_SPLIT_CONTIGUOUS;
    else return dc_fail(DC_ERR_INVALID_VALUE, "%s.behavior: unknown value \"%s\"", where, s);
    return DC_OK;
}

static dc_status parse_pretok(const cJSON *o, dc_pretok *p, const char *where, int depth) {
    memset(p, 0, sizeof *p);
    const char *type = jtype(o);
    if (!type) return dc_fail(DC_ERR_INVALID_VALUE, "%s: pre-tokenizer without a \"type\"", where);
    if (depth > 32) return dc_fail(DC_ERR_INVALID_VALUE, "%s: pre-tokenizers nested too deeply", where);
    dc_status st = DC_OK;
    if (!strcmp(type, "BertPreTokenizer")) {
        p->kind = DC_PRE_BERT;
    } else if (!strcmp(type, "ByteLevel")) {
        p->kind = DC_PRE_BYTELEVEL;
        st = jbool(o, "add_prefix_space", true, &p->add_prefix_space, where);
        if (!st) st = jbool(o, "use_regex", true, &p->use_regex, where);
        if (!st && p->use_regex) {
            p->pat.is_regex = true;
            st = dc_regex_compile(&p->pat.re, DC_GPT2_REGEX, strlen(DC_GPT2_REGEX), where);
        }
    } else if (!strcmp(type, "Whitespace")) {
        p->kind = DC_PRE_WHITESPACE;
        p->pat.is_regex = true;
        static const char ws_re[] = "\\w+|[^\\w\\s]+";
        st = dc_regex_compile(&p->pat.re, ws_re, sizeof ws_re - 1, where);
    } else if (!strcmp(type, "WhitespaceSplit")) {
        p->kind = DC_PRE_WHITESPACE_SPLIT;
    } else if (!strcmp(type, "Split")) {
        p->kind = DC_PRE_SPLIT;
        st = parse_pattern(o, &p->pat, where);
        if (!st) st = parse_behavior(o, DC_SPLIT_REMOVED, &p->behavior, where);
        if (!st) st = jbool(o, "invert", false, &p->invert, where);
    } else if (!strcmp(type, "Punctuation")) {
        p->kind = DC_PRE_PUNCT;
        st = parse_behavior(o, DC_SPLIT_ISOLATED, &p->behavior, where);
    } else if (!strcmp(type, "Digits")) {
        p->kind = DC_PRE_DIGITS;
        st = jbool(o, "individual_digits", false, &p->individual_digits, where);
    } else if (!strcmp(type, "CharDelimiterSplit")) {
        p->kind = DC_PRE_DELIMITER;
        st = jchar(o, "delimiter", ' ', &p->ch, where);
    } else if (!strcmp(type, "Metaspace")) {
        p->kind = DC_PRE_METASPACE;
        st = jchar(o, "replacement", 0x2581, &p->ch, where);
        if (!st) st = jbool(o, "split", true, &p->split, where);
        p->prepend_scheme = 2;
        const cJSON *ps = jget(o, "prepend_scheme");
        if (!st && cJSON_IsString(ps) && ps->valuestring) {
            if (!strcmp(ps->valuestring, "always")) p->prepend_scheme = 2;
            else if (!strcmp(ps->valuestring, "first")) p->prepend_scheme = 1;
            else if (!strcmp(ps->valuestring, "never")) p->prepend_scheme = 0;
            else st = dc_fail(DC_ERR_INVALID_VALUE, "%s.prepend_scheme: unknown value \"%s\"", where,
                              ps->valuestring);
        } else if (!st) {
            bool aps = false;
            st = jbool(o, "add_prefix_space", true, &aps, where);
            p->prepend_scheme = aps ? 2 : 0;
        }
    } else if (!strcmp(type, "Sequence")) {
        p->kind = DC_PRE_SEQUENCE;
        const cJSON *arr = jget(o, "pretokenizers");
        if (!cJSON_IsArray(arr))
            return dc_fail(DC_ERR_INVALID_VALUE, "%s.pretokenizers: expected an array", where);
        int cnt = cJSON_GetArraySize(arr);
        p->items = calloc(cnt > 0 ? (size_t)cnt : 1, sizeof *p->items);
        if (!p->items) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory", where);
        const cJSON *it;
        cJSON_ArrayForEach(it, arr) {
            char w[256];
            snprintf(w, sizeof w, "%s.pretokenizers[%zu]", where, p->nitems);
            st = parse_pretok(it, &p->items[p->nitems], w, depth + 1);
            p->nitems++;
            if (st) break;
        }
    } else {
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT, "%s: pre-tokenizer type \"%s\" is not supported",
                       where, type);
    }
    return st;
}

/* ["token", id] */
static dc_status parse_pair(const cJSON *o, const char *key, uint32_t *id, const char *where) {
    const cJSON *v = jget(o, key);
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 || !cJSON_IsString(cJSON_GetArrayItem(v, 0)))
        return dc_fail(DC_ERR_INVALID_VALUE, "%s.%s: expected [\"token\", id]", where, key);
    return jnum_u32(cJSON_GetArrayItem(v, 1), id, where, key);
}

static dc_status parse_template(const cJSON *o, dc_post *p, const char *where) {
    const cJSON *single = jget(o, "single"), *specials = jget(o, "special_tokens");
    if (!cJSON_IsArray(single))
        return dc_fail(DC_ERR_INVALID_VALUE, "%s.single: expected an array", where);
    int cnt = cJSON_GetArraySize(single);
    p->items = calloc(cnt > 0 ? (size_t)cnt : 1, sizeof *p->items);
    if (!p->items) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory", where);
    const cJSON *it;
    cJSON_ArrayForEach(it, single) {
        dc_tpl_item *ti = &p->items[p->nitems++]; /* counted now, so a failure frees it */
        const cJSON *sp = jget(it, "SpecialToken"), *sq = jget(it, "Sequence");
        dc_status st;
        if (cJSON_IsObject(sq)) {
            ti->is_seq = true;
            if ((st = ju32(sq, "type_id", 0, &ti->type_id, where))) return st;
        } else if (cJSON_IsObject(sp)) {
            const cJSON *name = jget(sp, "id");
            if ((st = ju32(sp, "type_id", 0, &ti->type_id, where))) return st;
            if (!cJSON_IsString(name))
                return dc_fail(DC_ERR_INVALID_VALUE, "%s.single[%zu]: special token without an id",
                               where, p->nitems - 1);
            const cJSON *def = jget(specials, name->valuestring);
            const cJSON *ids = jget(def, "ids");
            if (!cJSON_IsArray(ids))
                return dc_fail(DC_ERR_INVALID_VALUE, "%s.special_tokens: \"%s\" is missing", where,
                               name->valuestring);
            int nid = cJSON_GetArraySize(ids);
            ti->ids = calloc(nid > 0 ? (size_t)nid : 1, sizeof *ti->ids);
            if (!ti->ids) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory", where);
            const cJSON *idv;
            cJSON_ArrayForEach(idv, ids) {
                if ((st = jnum_u32(idv, &ti->ids[ti->nids], where, "special_tokens.ids"))) return st;
                ti->nids++;
            }
        } else {
            return dc_fail(DC_ERR_INVALID_VALUE,
                           "%s.single[%zu]: expected {\"SpecialToken\": ...} or {\"Sequence\": ...}",
                           where, p->nitems - 1);
        }
    }
    return DC_OK;
}

static dc_status parse_post(const cJSON *o, dc_post *p, const char *where, int depth) {
    memset(p, 0, sizeof *p);
    const char *type = jtype(o);
    if (!type) return dc_fail(DC_ERR_INVALID_VALUE, "%s: post-processor without a \"type\"", where);
    if (depth > 32) return dc_fail(DC_ERR_INVALID_VALUE, "%s: post-processors nested too deeply", where);
    dc_status st = DC_OK;
    if (!strcmp(type, "BertProcessing")) {
        p->kind = DC_POST_BERT;
        st = parse_pair(o, "cls", &p->cls_id, where);
        if (!st) st = parse_pair(o, "sep", &p->sep_id, where);
    } else if (!strcmp(type, "RobertaProcessing")) {
        p->kind = DC_POST_ROBERTA;
        st = parse_pair(o, "cls", &p->cls_id, where);
        if (!st) st = parse_pair(o, "sep", &p->sep_id, where);
        if (!st) st = jbool(o, "trim_offsets", true, &p->trim_offsets, where);
        if (!st) st = jbool(o, "add_prefix_space", true, &p->add_prefix_space, where);
    } else if (!strcmp(type, "ByteLevel")) {
        p->kind = DC_POST_BYTELEVEL;
        st = jbool(o, "trim_offsets", true, &p->trim_offsets, where);
        if (!st) st = jbool(o, "add_prefix_space", true, &p->add_prefix_space, where);
    } else if (!strcmp(type, "TemplateProcessing")) {
        p->kind = DC_POST_TEMPLATE;
        st = parse_template(o, p, where);
    } else if (!strcmp(type, "Sequence")) {
        p->kind = DC_POST_SEQUENCE;
        const cJSON *arr = jget(o, "processors");
        if (!cJSON_IsArray(arr))
            return dc_fail(DC_ERR_INVALID_VALUE, "%s.processors: expected an array", where);
        int cnt = cJSON_GetArraySize(arr);
        p->seq = calloc(cnt > 0 ? (size_t)cnt : 1, sizeof *p->seq);
        if (!p->seq) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory", where);
        const cJSON *it;
        cJSON_ArrayForEach(it, arr) {
            char w[256];
            snprintf(w, sizeof w, "%s.processors[%zu]", where, p->nseq);
            st = parse_post(it, &p->seq[p->nseq], w, depth + 1);
            p->nseq++;
            if (st) break;
        }
    } else {
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT, "%s: post-processor type \"%s\" is not supported",
                       where, type);
    }
    return st;
}

static dc_status parse_vocab(const cJSON *v, dc_strmap *vocab, const char *where) {
    if (!cJSON_IsObject(v))
        return dc_fail(DC_ERR_INVALID_VALUE, "%s.vocab: expected an object of token: id", where);
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        uint32_t id = 0;
        dc_status st = jnum_u32(e, &id, where, "vocab");
        if (st) return dc_fail_context(st, "token \"%.60s\"", e->string ? e->string : "");
        if (!e->string) continue;
        size_t n = strlen(e->string);
        if (!dc_utf8_valid(e->string, n, NULL))
            return dc_fail(DC_ERR_INVALID_VALUE, "%s.vocab: a token is not valid UTF-8", where);
        if ((st = dc_strmap_put(vocab, e->string, n, id))) return st;
    }
    return DC_OK;
}

/* Merges as "a b" strings or ["a", "b"] pairs; the merged token is a + b without b's prefix. */
static dc_status parse_merges(const cJSON *arr, dc_tmodel *m, const char *where) {
    if (!cJSON_IsArray(arr)) return dc_fail(DC_ERR_INVALID_VALUE, "%s.merges: expected an array", where);
    dc_status st = dc_pairmap_init(&m->merges, (size_t)cJSON_GetArraySize(arr));
    if (st) return st;
    size_t pl = m->cont_prefix ? strlen(m->cont_prefix) : 0;
    char *buf = NULL;
    size_t cap = 0;
    uint32_t rank = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        const char *a, *b;
        size_t al, bl;
        if (cJSON_IsString(it) && it->valuestring) {
            const char *s = it->valuestring, *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' ')) {
                free(buf);
                return dc_fail(DC_ERR_INVALID_VALUE, "%s.merges[%u]: expected \"a b\"", where, rank);
            }
            a = s;
            al = (size_t)(sp - s);
            b = sp + 1;
            bl = strlen(b);
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 &&
                   cJSON_IsString(cJSON_GetArrayItem(it, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(it, 1))) {
            a = cJSON_GetArrayItem(it, 0)->valuestring;
            b = cJSON_GetArrayItem(it, 1)->valuestring;
            al = strlen(a);
            bl = strlen(b);
        } else {
            free(buf);
            return dc_fail(DC_ERR_INVALID_VALUE, "%s.merges[%u]: expected \"a b\" or [\"a\", \"b\"]",
                           where, rank);
        }
        uint32_t ida, idb, idn;
        if (!dc_strmap_get(&m->vocab, a, al, &ida) || !dc_strmap_get(&m->vocab, b, bl, &idb)) {
            free(buf);
            return dc_fail(DC_ERR_INVALID_VALUE, "%s.merges[%u]: \"%.*s %.*s\" uses a token missing from the vocabulary",
                           where, rank, (int)(al > 60 ? 60 : al), a, (int)(bl > 60 ? 60 : bl), b);
        }
        size_t skip = pl <= bl ? pl : bl;
        if ((st = DC_GROW(buf, cap, al + bl + 1))) {
            free(buf);
            return st;
        }
        memcpy(buf, a, al);
        memcpy(buf + al, b + skip, bl - skip);
        if (!dc_strmap_get(&m->vocab, buf, al + bl - skip, &idn)) {
            free(buf);
            return dc_fail(DC_ERR_INVALID_VALUE, "%s.merges[%u]: the merged token \"%.*s\" is missing from the vocabulary",
                           where, rank, (int)((al + bl - skip) > 80 ? 80 : (al + bl - skip)), buf);
        }
        if ((st = dc_pairmap_put(&m->merges, ida, idb, rank, idn))) {
            free(buf);
            return st;
        }
        rank++;
    }
    free(buf);
    return DC_OK;
}

static dc_status parse_model(const cJSON *o, dc_tmodel *m, const char *where) {
    if (!cJSON_IsObject(o)) return dc_fail(DC_ERR_INVALID_VALUE, "%s: missing or not an object", where);
    const char *type = jtype(o);
    const cJSON *vocab = jget(o, "vocab"), *merges = jget(o, "merges");
    if (!type) {
        /* untagged (older files): BPE if it has merges, Unigram if the vocab is a list,
         * otherwise WordPiece (which accepts WordLevel-shaped objects too) */
        if (merges) type = "BPE";
        else if (cJSON_IsArray(vocab)) type = "Unigram";
        else type = "WordPiece";
    }
    dc_status st = DC_OK;
    if (!strcmp(type, "WordPiece")) {
        m->kind = DC_MODEL_WORDPIECE;
        if ((st = parse_vocab(vocab, &m->vocab, where))) return st;
        if ((st = jstr(o, "unk_token", &m->unk, where))) return st;
        if (!m->unk && !(m->unk = dup_n("[UNK]", 5))) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s", where);
        if ((st = jstr(o, "continuing_subword_prefix", &m->prefix, where))) return st;
        if (!m->prefix && !(m->prefix = dup_n("##", 2))) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s", where);
        m->prefix_len = strlen(m->prefix);
        if ((st = ju32(o, "max_input_chars_per_word", 100, &m->max_chars, where))) return st;
    } else if (!strcmp(type, "WordLevel")) {
        m->kind = DC_MODEL_WORDLEVEL;
        if ((st = parse_vocab(vocab, &m->vocab, where))) return st;
        if ((st = jstr(o, "unk_token", &m->unk, where))) return st;
    } else if (!strcmp(type, "BPE")) {
        m->kind = DC_MODEL_BPE;
        const cJSON *dropout = jget(o, "dropout");
        if (!jnull(dropout) && (!cJSON_IsNumber(dropout) || dropout->valuedouble != 0.0))
            return dc_fail(DC_ERR_UNSUPPORTED_FORMAT,
                           "%s.dropout: BPE dropout is random; only null or 0 is supported", where);
        if ((st = parse_vocab(vocab, &m->vocab, where))) return st;
        if ((st = jstr(o, "unk_token", &m->unk, where))) return st;
        if ((st = jstr(o, "continuing_subword_prefix", &m->cont_prefix, where))) return st;
        if ((st = jstr(o, "end_of_word_suffix", &m->eow_suffix, where))) return st;
        if (m->cont_prefix && !m->cont_prefix[0]) {
            free(m->cont_prefix); /* an empty prefix changes nothing */
            m->cont_prefix = NULL;
        }
        if (m->eow_suffix && !m->eow_suffix[0]) {
            free(m->eow_suffix);
            m->eow_suffix = NULL;
        }
        if (m->cont_prefix && strlen(m->cont_prefix) > 40)
            return dc_fail(DC_ERR_UNSUPPORTED_FORMAT, "%s.continuing_subword_prefix: too long", where);
        if (m->eow_suffix && strlen(m->eow_suffix) > 16)
            return dc_fail(DC_ERR_UNSUPPORTED_FORMAT, "%s.end_of_word_suffix: too long", where);
        if ((st = jbool(o, "fuse_unk", false, &m->fuse_unk, where))) return st;
        if ((st = jbool(o, "byte_fallback", false, &m->byte_fallback, where))) return st;
        if ((st = jbool(o, "ignore_merges", false, &m->ignore_merges, where))) return st;
        if ((st = parse_merges(merges, m, where))) return st;
    } else {
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT, "%s: model type \"%s\" is not supported", where,
                       type);
    }
    return dc_tmodel_finish(m, where);
}

static dc_status parse_trunc(const cJSON *o, dc_truncation *t, const char *where) {
    memset(t, 0, sizeof *t);
    if (jnull(o)) return DC_OK;
    if (!cJSON_IsObject(o)) return dc_fail(DC_ERR_INVALID_VALUE, "%s: expected an object or null", where);
    t->enabled = true;
    dc_status st = ju32(o, "max_length", 512, &t->max_length, where);
    if (!st) st = ju32(o, "stride", 0, &t->stride, where);
    const cJSON *s = jget(o, "strategy"), *d = jget(o, "direction");
    if (!st && cJSON_IsString(s)) {
        if (!strcmp(s->valuestring, "LongestFirst")) t->strategy = DC_TRUNC_LONGEST_FIRST;
        else if (!strcmp(s->valuestring, "OnlyFirst")) t->strategy = DC_TRUNC_ONLY_FIRST;
        else if (!strcmp(s->valuestring, "OnlySecond")) t->strategy = DC_TRUNC_ONLY_SECOND;
        else st = dc_fail(DC_ERR_INVALID_VALUE, "%s.strategy: unknown value \"%s\"", where, s->valuestring);
    }
    if (!st && cJSON_IsString(d)) {
        if (!strcmp(d->valuestring, "Right")) t->direction = DC_SIDE_RIGHT;
        else if (!strcmp(d->valuestring, "Left")) t->direction = DC_SIDE_LEFT;
        else st = dc_fail(DC_ERR_INVALID_VALUE, "%s.direction: unknown value \"%s\"", where, d->valuestring);
    }
    return st;
}

static dc_status parse_padding(const cJSON *o, dc_padding *p, const char *where) {
    memset(p, 0, sizeof *p);
    if (jnull(o)) return DC_OK;
    if (!cJSON_IsObject(o)) return dc_fail(DC_ERR_INVALID_VALUE, "%s: expected an object or null", where);
    p->enabled = true;
    const cJSON *s = jget(o, "strategy"), *d = jget(o, "direction");
    dc_status st = DC_OK;
    if (cJSON_IsObject(s) && jget(s, "Fixed")) {
        p->fixed = true;
        st = jnum_u32(jget(s, "Fixed"), &p->length, where, "strategy.Fixed");
    } else if (!jnull(s) && !(cJSON_IsString(s) && !strcmp(s->valuestring, "BatchLongest"))) {
        st = dc_fail(DC_ERR_INVALID_VALUE, "%s.strategy: expected \"BatchLongest\" or {\"Fixed\": n}", where);
    }
    if (!st && cJSON_IsString(d)) {
        if (!strcmp(d->valuestring, "Right")) p->direction = DC_SIDE_RIGHT;
        else if (!strcmp(d->valuestring, "Left")) p->direction = DC_SIDE_LEFT;
        else st = dc_fail(DC_ERR_INVALID_VALUE, "%s.direction: unknown value \"%s\"", where, d->valuestring);
    }
    if (!st) st = ju32(o, "pad_to_multiple_of", 0, &p->multiple_of, where);
    if (!st) st = ju32(o, "pad_id", 0, &p->pad_id, where);
    if (!st) st = ju32(o, "pad_type_id", 0, &p->pad_type_id, where);
    return st;
}

static dc_status parse_added(const cJSON *arr, dc_tokenizer *t, const char *where) {
    if (jnull(arr)) return DC_OK;
    if (!cJSON_IsArray(arr)) return dc_fail(DC_ERR_INVALID_VALUE, "%s: expected an array", where);
    int cnt = cJSON_GetArraySize(arr);
    t->added = calloc(cnt > 0 ? (size_t)cnt : 1, sizeof *t->added);
    if (!t->added) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory", where);
    const cJSON *it;
    size_t idx = 0;
    cJSON_ArrayForEach(it, arr) {
        char w[640];
        snprintf(w, sizeof w, "%s[%zu]", where, idx++);
        dc_added a;
        memset(&a, 0, sizeof a);
        dc_status st = jstr(it, "content", &a.content, w);
        if (!st && !a.content) st = dc_fail(DC_ERR_INVALID_VALUE, "%s.content: missing", w);
        if (!st) st = ju32(it, "id", 0, &a.id, w);
        if (!st) st = jbool(it, "single_word", false, &a.single_word, w);
        if (!st) st = jbool(it, "lstrip", false, &a.lstrip, w);
        if (!st) st = jbool(it, "rstrip", false, &a.rstrip, w);
        if (!st) st = jbool(it, "special", false, &a.special, w);
        if (!st) st = jbool(it, "normalized", !a.special, &a.normalized, w);
        if (st) {
            free(a.content);
            return st;
        }
        a.len = strlen(a.content);
        if (!a.len || !dc_utf8_valid(a.content, a.len, NULL)) {
            free(a.content); /* the reference ignores empty tokens */
            continue;
        }
        /* the model's id wins when the token is in its vocabulary */
        uint32_t vid;
        if (dc_strmap_get(&t->model.vocab, a.content, a.len, &vid)) a.id = vid;
        t->added[t->nadded++] = a;
    }
    return DC_OK;
}

/* Builds the matching tries (normalized contents need the normalizer). */
dc_status dc_tokenizer_finish(dc_tokenizer *t) {
    for (size_t i = 0; i < t->nadded; i++) {
        dc_added *a = &t->added[i];
        dc_status st = dc_strmap_put(&t->added_map, a->content, a->len, a->id);
        if (st) return st;
        const char *match = a->content;
        size_t mlen = a->len;
        dc_ctx c;
        dc_ctx_init(&c, t, a->content, a->len);
        if (a->normalized && t->normalizer) {
            dc_piece p = {a->content, NULL, (uint32_t)a->len, 0, 0, (uint32_t)a->len, -1, 0};
            st = dc_normalize(&c, t->normalizer, &p);
            if (st) {
                dc_ctx_free(&c);
                return st;
            }
            match = p.s;
            mlen = p.len;
        }
        a->match = dup_n(match, mlen);
        a->match_len = mlen;
        dc_ctx_free(&c);
        if (!a->match) return dc_fail(DC_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
        if (!mlen) continue;
        st = dc_trie_add(a->normalized ? &t->norm_trie : &t->raw_trie, a->match, mlen, (int32_t)i);
        if (st) return st;
    }
    return DC_OK;
}

static dc_status load_root(const cJSON *root, dc_tokenizer *t) {
    const char *o = t->origin;
    char w[512];
    if (!cJSON_IsObject(root)) return dc_fail(DC_ERR_INVALID_VALUE, "%s: not a JSON object", o);
    snprintf(w, sizeof w, "%s: model", o);
    dc_status st = parse_model(jget(root, "model"), &t->model, w);
    if (st) return st;
    const cJSON *n = jget(root, "normalizer");
    if (!jnull(n)) {
        if (!(t->normalizer = calloc(1, sizeof *t->normalizer)))
            return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory", o);
        snprintf(w, sizeof w, "%s: normalizer", o);
        if ((st = parse_normalizer(n, t->normalizer, w, 0))) return st;
    }
    const cJSON *pt = jget(root, "pre_tokenizer");
    if (!jnull(pt)) {
        if (!(t->pretok = calloc(1, sizeof *t->pretok)))
            return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory", o);
        snprintf(w, sizeof w, "%s: pre_tokenizer", o);
        if ((st = parse_pretok(pt, t->pretok, w, 0))) return st;
    }
    const cJSON *pp = jget(root, "post_processor");
    if (!jnull(pp)) {
        if (!(t->post = calloc(1, sizeof *t->post)))
            return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory", o);
        snprintf(w, sizeof w, "%s: post_processor", o);
        if ((st = parse_post(pp, t->post, w, 0))) return st;
    }
    snprintf(w, sizeof w, "%s: truncation", o);
    if ((st = parse_trunc(jget(root, "truncation"), &t->trunc, w))) return st;
    snprintf(w, sizeof w, "%s: padding", o);
    if ((st = parse_padding(jget(root, "padding"), &t->pad, w))) return st;
    snprintf(w, sizeof w, "%s: added_tokens", o);
    if ((st = parse_added(jget(root, "added_tokens"), t, w))) return st;
    return dc_tokenizer_finish(t);
}

static dc_status new_tokenizer(const char *origin, dc_tokenizer **out) {
    *out = NULL;
    dc_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return dc_fail(DC_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    const char *o = origin ? origin : "tokenizer.json";
    t->origin = dup_n(o, strlen(o));
    if (!t->origin) {
        free(t);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    }
    *out = t;
    return DC_OK;
}

dc_status dc_tokenizer_from_cjson(const cJSON *root, const char *origin, dc_tokenizer **out);
dc_status dc_tokenizer_from_cjson(const cJSON *root, const char *origin, dc_tokenizer **out) {
    dc_tokenizer *t;
    dc_status st = new_tokenizer(origin, &t);
    if (st) return st;
    if ((st = load_root(root, t))) {
        dc_tokenizer_free(t);
        return st;
    }
    *out = t;
    return DC_OK;
}

dc_status dc_tokenizer_load_json(const char *json, size_t len, const char *origin,
                                 dc_tokenizer **out) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "tokenizer: NULL output");
    *out = NULL;
    if (!json) return dc_fail(DC_ERR_INVALID_ARGUMENT, "tokenizer: NULL JSON");
    size_t bad;
    if (!dc_utf8_valid(json, len, &bad)) /* serde_json, the reference's parser, refuses it too */
        return dc_fail(DC_ERR_SERIALIZATION, "%s: invalid UTF-8 at byte %zu",
                       origin ? origin : "tokenizer.json", bad);
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) {
        const char *ep = cJSON_GetErrorPtr();
        size_t off = ep && ep >= json && ep <= json + len ? (size_t)(ep - json) : 0;
        return dc_fail(DC_ERR_SERIALIZATION, "%s: invalid JSON near byte %zu",
                       origin ? origin : "tokenizer.json", off);
    }
    dc_status st = dc_tokenizer_from_cjson(root, origin, out);
    cJSON_Delete(root);
    return st;
}

dc_status dc_read_whole_file(const char *path, char **data, size_t *len); /* folder.c */

dc_status dc_tokenizer_load(const char *path, dc_tokenizer **out) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "tokenizer: NULL output");
    *out = NULL;
    if (!path) return dc_fail(DC_ERR_INVALID_ARGUMENT, "tokenizer: NULL path");
    struct stat sb;
    if (stat(path, &sb) != 0) return dc_fail(DC_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return dc_tokenizer_load_folder(path, out);
    char *data;
    size_t len;
    dc_status st = dc_read_whole_file(path, &data, &len);
    if (st) return st;
    st = dc_tokenizer_load_json(data, len, path, out);
    free(data);
    return st;
}

void dc_tokenizer_free(dc_tokenizer *t) {
    if (!t) return;
    free(t->origin);
    dc_normalizer_free(t->normalizer);
    free(t->normalizer);
    dc_pretok_free(t->pretok);
    free(t->pretok);
    dc_tmodel_free(&t->model);
    dc_post_free(t->post);
    free(t->post);
    for (size_t i = 0; i < t->nadded; i++) {
        free(t->added[i].content);
        free(t->added[i].match);
    }
    free(t->added);
    dc_trie_free(&t->raw_trie);
    dc_trie_free(&t->norm_trie);
    dc_strmap_free(&t->added_map);
    free(t);
}

/* ---------- queries ---------- */

void dc_tokenizer_default_options(const dc_tokenizer *tok, dc_encode_options *o) {
    memset(o, 0, sizeof *o);
    o->add_special_tokens = true;
    if (tok) {
        o->truncation = tok->trunc;
        o->padding = tok->pad;
    }
}

size_t dc_tokenizer_num_special_tokens(const dc_tokenizer *tok) {
    return tok ? dc_post_added(tok->post) : 0;
}

size_t dc_tokenizer_vocab_size(const dc_tokenizer *tok, bool with_added) {
    if (!tok) return 0;
    size_t n = tok->model.vocab.n;
    if (with_added)
        for (size_t i = 0; i < tok->nadded; i++) {
            uint32_t id;
            if (!dc_strmap_get(&tok->model.vocab, tok->added[i].content, tok->added[i].len, &id)) n++;
        }
    return n;
}

int64_t dc_tokenizer_token_to_id(const dc_tokenizer *tok, const char *token) {
    if (!tok || !token) return -1;
    uint32_t id;
    size_t n = strlen(token);
    if (dc_strmap_get(&tok->added_map, token, n, &id)) return id;
    if (dc_strmap_get(&tok->model.vocab, token, n, &id)) return id;
    return -1;
}

const char *dc_tokenizer_id_to_token(const dc_tokenizer *tok, uint32_t id) {
    if (!tok) return NULL;
    for (size_t i = 0; i < tok->nadded; i++)
        if (tok->added[i].id == id) return tok->added[i].content;
    const dc_tmodel *m = &tok->model;
    if (id < m->nrev && m->rev_len[id] != UINT32_MAX) return m->vocab.blob + m->rev_off[id];
    return NULL;
}

/* ---------- encode ---------- */

static bool ends_with_word(const char *s, uint32_t end) {
    if (!end) return false;
    uint32_t j = end - 1;
    while (j > 0 && ((uint8_t)s[j] & 0xC0) == 0x80) j--;
    uint32_t n;
    return dc_uc_is_word(dc_u8_decode(s + j, &n));
}

static bool starts_with_word(const char *s, uint32_t at, uint32_t len) {
    if (at >= len) return false;
    uint32_t n;
    return dc_uc_is_word(dc_u8_decode(s + at, &n));
}

/* Reference AddedVocabulary::find_matches + split_with_indices on one piece. */
static dc_status extract_added(dc_ctx *c, const dc_trie *trie, const dc_piece *p) {
    const dc_tokenizer *t = c->tok;
    const char *s = p->s;
    uint32_t len = p->len, start_offset = 0, i = 0;
    dc_status st = DC_OK;
    while (i < len && !st) {
        if (!trie->first[(uint8_t)s[i]]) {
            i++;
            continue;
        }
        int32_t node = 0, best = -1;
        uint32_t best_end = 0;
        for (uint32_t j = i; j < len; j++) {
            int32_t ch = trie->nodes[node].child;
            while (ch >= 0 && trie->nodes[ch].byte != (uint8_t)s[j]) ch = trie->nodes[ch].sibling;
            if (ch < 0) break;
            node = ch;
            if (trie->nodes[node].added >= 0) {
                best = trie->nodes[node].added;
                best_end = j + 1;
            }
        }
        dc_tokenizer_work_add(1);
        if (best < 0) {
            i++;
            continue;
        }
        const dc_added *a = &t->added[best];
        uint32_t ms = i, me = best_end;
        i = best_end; /* the search resumes after this match, even if it is discarded */
        if (a->single_word) {
            bool start_space = ms == 0 || !ends_with_word(s, ms);
            bool stop_space = me == len || !starts_with_word(s, me, len);
            if (!start_space || !stop_space) continue;
        }
        if (a->lstrip) {
            uint32_t ns = ms;
            while (ns > 0) {
                uint32_t j = ns - 1;
                while (j > 0 && ((uint8_t)s[j] & 0xC0) == 0x80) j--;
                uint32_t n;
                if (!dc_uc_is_whitespace(dc_u8_decode(s + j, &n))) break;
                ns = j;
            }
            ms = ns > start_offset ? ns : start_offset;
        }
        if (a->rstrip) {
            while (me < len) {
                uint32_t n, cp = dc_u8_decode(s + me, &n);
                if (!dc_uc_is_whitespace(cp)) break;
                me += n;
            }
        }
        if (ms < start_offset) ms = start_offset;
        if (start_offset < ms) {
            dc_piece q = dc_piece_slice(c, p, start_offset, ms);
            if (q.len && (st = DC_GROW(c->tmp, c->cap_tmp, c->ntmp + 1)) == DC_OK)
                c->tmp[c->ntmp++] = q;
        }
        if (!st && me > ms) {
            dc_piece q = dc_piece_slice(c, p, ms, me);
            q.token = (int32_t)a->id;
            if ((st = DC_GROW(c->tmp, c->cap_tmp, c->ntmp + 1)) == DC_OK) c->tmp[c->ntmp++] = q;
        }
        start_offset = me > start_offset ? me : start_offset;
    }
    if (!st && start_offset < len) {
        dc_piece q = dc_piece_slice(c, p, start_offset, len);
        if ((st = DC_GROW(c->tmp, c->cap_tmp, c->ntmp + 1)) == DC_OK) c->tmp[c->ntmp++] = q;
    }
    return st;
}

static dc_status extract_pass(dc_ctx *c, const dc_trie *trie, bool normalize) {
    c->ntmp = 0;
    for (size_t i = 0; i < c->npieces; i++) {
        dc_piece *p = &c->pieces[i];
        dc_status st = DC_OK;
        if (p->token >= 0) {
            st = DC_GROW(c->tmp, c->cap_tmp, c->ntmp + 1);
            if (!st) c->tmp[c->ntmp++] = *p;
            if (st) return st;
            continue;
        }
        if (normalize && c->tok->normalizer) {
            c->norm_active = true;
            c->norm_mark = c->nowned;
            st = dc_normalize(c, c->tok->normalizer, p);
            c->norm_active = false;
            if (st) return st;
        }
        if (!p->len) continue;
        if (trie->count) {
            st = extract_added(c, trie, p);
        } else {
            st = DC_GROW(c->tmp, c->cap_tmp, c->ntmp + 1);
            if (!st) c->tmp[c->ntmp++] = *p;
        }
        if (st) return st;
    }
    dc_piece *sw = c->pieces;
    size_t swcap = c->cap_pieces;
    c->pieces = c->tmp;
    c->cap_pieces = c->cap_tmp;
    c->npieces = c->ntmp;
    c->tmp = sw;
    c->cap_tmp = swcap;
    c->ntmp = 0;
    return DC_OK;
}

static dc_status push_added_tok(dc_ctx *c, const dc_piece *p) {
    dc_status st = DC_GROW(c->toks, c->cap_toks, c->ntoks + 1);
    if (st) return st;
    dc_tok *t = &c->toks[c->ntoks++];
    memset(t, 0, sizeof *t);
    t->id = (uint32_t)p->token;
    t->bstart = dc_piece_span(c, p, 0).start;
    t->bend = dc_piece_span(c, p, p->len - 1).end;
    /* the token's text keeps stripped spaces; ByteLevel trimming counts them */
    uint16_t lead = 0, trail = 0;
    for (uint32_t i = 0; i < p->len;) {
        uint32_t n, cp = dc_u8_decode(p->s + i, &n);
        if (cp != 0x120 && !dc_uc_is_whitespace(cp)) break;
        lead++;
        i += n;
    }
    for (uint32_t i = p->len; i > 0;) {
        uint32_t j = i - 1;
        while (j > 0 && ((uint8_t)p->s[j] & 0xC0) == 0x80) j--;
        uint32_t n, cp = dc_u8_decode(p->s + j, &n);
        if (cp != 0x120 && !dc_uc_is_whitespace(cp)) break;
        trail++;
        i = j;
    }
    t->lead_ws = lead;
    t->trail_ws = trail;
    return DC_OK;
}

dc_status dc_tokenize_piece(dc_ctx *c, const dc_piece *p) {
    return p->token >= 0 ? push_added_tok(c, p) : dc_tmodel_tokenize(c, &c->tok->model, p);
}

/* Byte → code-point offsets exactly as the reference's BytesToCharOffsetConverter. Offsets come
 * nearly in order, so a cursor moves forward through the text; a table of counts per 64-byte
 * block serves the jumps back. */
typedef struct dc_charmap {
    const char *s;
    size_t len;
    uint32_t *blk; /* code points before each 64-byte block; NULL for ASCII text */
    size_t cur;    /* cursor: byte position ... */
    uint32_t leads; /* ... and the code points that start before it */
} dc_charmap;

static dc_status charmap_init(dc_charmap *m, const char *s, size_t len) {
    m->s = s;
    m->len = len;
    m->blk = NULL;
    m->cur = 0;
    m->leads = 0;
    bool ascii = true;
    for (size_t i = 0; i < len && ascii; i++) ascii = (uint8_t)s[i] < 0x80;
    if (ascii) return DC_OK;
    size_t nb = len / 64 + 1;
    m->blk = malloc(nb * sizeof *m->blk);
    if (!m->blk) return dc_fail(DC_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    uint32_t cnt = 0;
    for (size_t b = 0; b < nb; b++) {
        m->blk[b] = cnt;
        size_t end = (b + 1) * 64 < len ? (b + 1) * 64 : len;
        for (size_t i = b * 64; i < end; i++) cnt += ((uint8_t)s[i] & 0xC0) != 0x80;
    }
    return DC_OK;
}

/* Index of the char containing byte b (b < len). */
static uint32_t charmap_at(dc_charmap *m, size_t b) {
    if (!m->blk) return (uint32_t)b;
    if (b < m->cur) { /* jump back to the block start */
        m->cur = b / 64 * 64;
        m->leads = m->blk[b / 64];
    }
    uint32_t leads = m->leads;
    for (size_t i = m->cur; i <= b; i++) leads += ((uint8_t)m->s[i] & 0xC0) != 0x80;
    m->cur = b + 1;
    m->leads = leads;
    return leads - 1;
}

static void charmap_convert(dc_charmap *m, uint32_t bs, uint32_t be, uint32_t *cs,
                            uint32_t *ce) {
    if (bs >= m->len) { /* not in the map: the reference leaves the offsets as they are */
        *cs = bs;
        *ce = be;
        return;
    }
    uint32_t s = charmap_at(m, bs), e;
    if (be < m->len) e = charmap_at(m, be);
    else if (be == m->len && be > 0) e = charmap_at(m, be - 1) + 1;
    else e = s + 2;
    *cs = s;
    *ce = e;
}

static dc_status repair_utf8(const char *text, size_t len, char **out, size_t *olen) {
    char *buf = malloc(len * 3 + 1);
    if (!buf) return dc_fail(DC_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    size_t i = 0, k = 0;
    while (i < len) {
        size_t bad;
        if (dc_utf8_valid(text + i, len - i, &bad)) {
            memcpy(buf + k, text + i, len - i);
            k += len - i;
            break;
        }
        memcpy(buf + k, text + i, bad);
        k += bad;
        k += dc_u8_encode(0xFFFD, buf + k);
        i += bad + 1;
    }
    *out = buf;
    *olen = k;
    return DC_OK;
}

static dc_status write_output(dc_ctx *c, dc_encoding *out, size_t untrunc, bool truncated) {
    size_t n = c->ntoks;
    size_t bytes = n * (sizeof(uint32_t) * 2 + sizeof(dc_span) * 2 + 2) + 16;
    char *blk = malloc(bytes);
    if (!blk) return dc_fail(DC_ERR_OUT_OF_MEMORY, "tokenizer: out of memory for %zu tokens", n);
    out->len = n;
    out->offsets = (dc_span *)blk;
    out->byte_offsets = out->offsets + n;
    out->ids = (uint32_t *)(out->byte_offsets + n);
    out->type_ids = out->ids + n;
    out->attention_mask = (uint8_t *)(out->type_ids + n);
    out->special_tokens_mask = out->attention_mask + n;
    for (size_t i = 0; i < n; i++) {
        const dc_tok *t = &c->toks[i];
        out->ids[i] = t->id;
        out->type_ids[i] = t->type_id;
        out->offsets[i] = (dc_span){t->cstart, t->cend};
        out->byte_offsets[i] = (dc_span){t->bstart, t->bend};
        out->attention_mask[i] = t->special != 2;
        out->special_tokens_mask[i] = t->special != 0;
    }
    out->untruncated_len = untrunc;
    out->truncated = truncated;
    return DC_OK;
}

void dc_encoding_free(dc_encoding *enc) {
    if (!enc) return;
    free(enc->offsets); /* the start of the one block */
    memset(enc, 0, sizeof *enc);
}

/* Steps 1-5: the text's tokens in c->toks, before truncation and post-processing. */
static dc_status tokens_run(dc_ctx *c) {
    const dc_tokenizer *t = c->tok;
    dc_status st;
    if (c->in_len) {
        if ((st = DC_GROW(c->pieces, c->cap_pieces, 1))) return st;
        c->pieces[0] = (dc_piece){c->in, NULL, (uint32_t)c->in_len, 0, 0, (uint32_t)c->in_len, -1, 0};
        c->npieces = 1;
    }
    /* 1. added tokens in the raw text, 2. normalizer + added tokens in the normalized text */
    if (t->raw_trie.count && (st = extract_pass(c, &t->raw_trie, false))) return st;
    if ((st = extract_pass(c, &t->norm_trie, true))) return st;
    /* 3. pre-tokenizer, whose last stage feeds 4. the model */
    if (t->pretok) {
        if ((st = dc_pretokenize(c, t->pretok))) return st;
    } else {
        for (size_t i = 0; i < c->npieces; i++)
            if ((st = dc_tokenize_piece(c, &c->pieces[i]))) return st;
    }
    /* 5. code-point offsets */
    dc_charmap cm;
    if ((st = charmap_init(&cm, c->in, c->in_len))) return st;
    for (size_t i = 0; i < c->ntoks; i++)
        charmap_convert(&cm, c->toks[i].bstart, c->toks[i].bend, &c->toks[i].cstart,
                        &c->toks[i].cend);
    free(cm.blk);
    return DC_OK;
}

/* Steps 6-8 on c->toks: truncation, post-processor (plus an optional marker token after the
 * first special token, counted in the length), padding; then the output. */
static dc_status finish_run(dc_ctx *c, const dc_encode_options *o, int64_t marker,
                            dc_encoding *out) {
    const dc_tokenizer *t = c->tok;
    dc_status st;
    /* 6. truncation; the post-processor's tokens count towards the limit */
    size_t untrunc = c->ntoks;
    bool truncated = false;
    if (o->truncation.enabled) {
        size_t added = (o->add_special_tokens ? dc_post_added(t->post) : 0) + (marker >= 0);
        if (o->truncation.strategy == DC_TRUNC_ONLY_SECOND)
            return dc_fail(DC_ERR_INVALID_ARGUMENT,
                           "truncation: strategy OnlySecond needs a pair of sequences");
        if (o->truncation.max_length < added)
            return dc_fail(DC_ERR_INVALID_ARGUMENT,
                           "truncation: max_length %u is below the %zu special tokens",
                           o->truncation.max_length, added);
        size_t max = o->truncation.max_length - added;
        if (c->ntoks > max) {
            truncated = true;
            if (o->truncation.direction == DC_SIDE_LEFT)
                memmove(c->toks, c->toks + (c->ntoks - max), max * sizeof *c->toks);
            c->ntoks = max;
        }
    }
    /* 7. post-processor */
    if (t->post && (st = dc_post_process(c, t->post, o->add_special_tokens))) return st;
    if (marker >= 0) {
        size_t at = c->ntoks && c->toks[0].special ? 1 : 0;
        if ((st = DC_GROW(c->toks, c->cap_toks, c->ntoks + 1))) return st;
        memmove(c->toks + at + 1, c->toks + at, (c->ntoks - at) * sizeof *c->toks);
        memset(&c->toks[at], 0, sizeof c->toks[at]);
        c->toks[at].id = (uint32_t)marker;
        c->ntoks++;
    }
    /* 8. padding */
    if (o->padding.enabled) {
        size_t target = o->padding.fixed ? o->padding.length : c->ntoks;
        if (o->padding.multiple_of && target % o->padding.multiple_of)
            target += o->padding.multiple_of - target % o->padding.multiple_of;
        if (target > DC_TOKENIZER_MAX_PAD)
            return dc_fail(DC_ERR_INVALID_ARGUMENT, "padding: %zu tokens is more than %u", target,
                           (unsigned)DC_TOKENIZER_MAX_PAD);
        if (c->ntoks < target) {
            size_t add = target - c->ntoks;
            if ((st = DC_GROW(c->toks, c->cap_toks, target))) return st;
            if (o->padding.direction == DC_SIDE_LEFT) {
                memmove(c->toks + add, c->toks, c->ntoks * sizeof *c->toks);
                for (size_t i = 0; i < add; i++) {
                    memset(&c->toks[i], 0, sizeof c->toks[i]);
                    c->toks[i].id = o->padding.pad_id;
                    c->toks[i].type_id = o->padding.pad_type_id;
                    c->toks[i].special = 2;
                }
            } else {
                for (size_t i = c->ntoks; i < target; i++) {
                    memset(&c->toks[i], 0, sizeof c->toks[i]);
                    c->toks[i].id = o->padding.pad_id;
                    c->toks[i].type_id = o->padding.pad_type_id;
                    c->toks[i].special = 2;
                }
            }
            c->ntoks = target;
        }
    }
    return write_output(c, out, untrunc, truncated);
}

dc_status dc_tokenizer_encode(const dc_tokenizer *tok, const char *text, size_t len,
                              const dc_encode_options *opts, dc_encoding *out) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "tokenizer: NULL encoding");
    memset(out, 0, sizeof *out);
    if (!tok) return dc_fail(DC_ERR_INVALID_ARGUMENT, "tokenizer: NULL tokenizer");
    if (!text && len) return dc_fail(DC_ERR_INVALID_ARGUMENT, "tokenizer: NULL text");
    if (len > UINT32_MAX / 4)
        return dc_fail(DC_ERR_INPUT_TOO_LONG, "tokenizer: input of %zu bytes exceeds 1 GiB", len);
    dc_encode_options def;
    if (!opts) {
        dc_tokenizer_default_options(tok, &def);
        opts = &def;
    }
    char *fixed = NULL;
    size_t bad;
    if (len && !dc_utf8_valid(text, len, &bad)) {
        if (!opts->replace_invalid_utf8)
            return dc_fail(DC_ERR_INVALID_VALUE, "tokenizer: invalid UTF-8 at byte offset %zu", bad);
        dc_status st = repair_utf8(text, len, &fixed, &len);
        if (st) return st;
        text = fixed;
    }
    dc_ctx c;
    dc_ctx_init(&c, tok, text ? text : "", len);
    dc_status st = tokens_run(&c);
    if (!st) st = finish_run(&c, opts, -1, out);
    dc_ctx_free(&c);
    free(fixed);
    if (st) memset(out, 0, sizeof *out);
    return st;
}

dc_status dc_tokenizer_tokens(const dc_tokenizer *tok, const char *text, size_t len,
                              bool replace_invalid, dc_tok **toks, size_t *n) {
    *toks = NULL;
    *n = 0;
    if (!tok) return dc_fail(DC_ERR_INVALID_ARGUMENT, "tokenizer: NULL tokenizer");
    if (!text && len) return dc_fail(DC_ERR_INVALID_ARGUMENT, "tokenizer: NULL text");
    if (len > UINT32_MAX / 4)
        return dc_fail(DC_ERR_INPUT_TOO_LONG, "tokenizer: input of %zu bytes exceeds 1 GiB", len);
    char *fixed = NULL;
    size_t bad;
    if (len && !dc_utf8_valid(text, len, &bad)) {
        if (!replace_invalid)
            return dc_fail(DC_ERR_INVALID_VALUE, "tokenizer: invalid UTF-8 at byte offset %zu", bad);
        dc_status st = repair_utf8(text, len, &fixed, &len);
        if (st) return st;
        text = fixed;
    }
    dc_ctx c;
    dc_ctx_init(&c, tok, text ? text : "", len);
    dc_status st = tokens_run(&c);
    if (!st) {
        *toks = c.toks; /* handed over */
        *n = c.ntoks;
        c.toks = NULL;
    }
    dc_ctx_free(&c);
    free(fixed);
    return st;
}

dc_status dc_tokenizer_finish_tokens(const dc_tokenizer *tok, const dc_tok *toks, size_t n,
                                     const dc_encode_options *opts, int64_t marker,
                                     dc_encoding *out) {
    memset(out, 0, sizeof *out);
    if (!tok) return dc_fail(DC_ERR_INVALID_ARGUMENT, "tokenizer: NULL tokenizer");
    dc_encode_options def;
    if (!opts) {
        dc_tokenizer_default_options(tok, &def);
        opts = &def;
    }
    dc_ctx c;
    dc_ctx_init(&c, tok, "", 0);
    dc_status st = DC_GROW(c.toks, c.cap_toks, n + 1);
    if (!st) {
        if (n) memcpy(c.toks, toks, n * sizeof *toks);
        c.ntoks = n;
        st = finish_run(&c, opts, marker, out);
    }
    dc_ctx_free(&c);
    if (st) memset(out, 0, sizeof *out);
    return st;
}

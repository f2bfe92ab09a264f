/* The scrubber: configuration, the scan of one text, overlap resolution, and the rewrite of
 * the original text by mode (placeholder, redact, mask, keyed hash, off). */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"
#include "privacy/internal.h"
#include "privacy/sanitize.h"
#include "text/unicode.h"

static const char *const category_names[DC_PII_CAT_COUNT] = {
    "EMAIL",        "PHONE",      "CREDIT_CARD",  "IBAN",          "US_SSN",
    "IP_ADDRESS",   "URL_CREDENTIALS", "CRYPTO",  "DATE_OF_BIRTH", "AWS_KEY",
    "GITHUB_TOKEN", "SLACK_TOKEN", "STRIPE_KEY",  "OPENAI_KEY",    "ANTHROPIC_KEY",
    "JWT",          "PRIVATE_KEY", "SECRET",      "CUSTOM",
};

const char *dc_pii_category_name(dc_pii_category c) {
    return (unsigned)c < DC_PII_CAT_COUNT ? category_names[c] : "UNKNOWN";
}

dc_status dc_pii_category_parse(const char *name, dc_pii_category *out) {
    for (int i = 0; name && i < DC_PII_CAT_COUNT; i++) {
        const char *a = name, *b = category_names[i];
        while (*a && *b && (*a == *b || (*a >= 'a' && *a <= 'z' && *a - 32 == *b))) {
            a++;
            b++;
        }
        if (!*a && !*b) {
            *out = (dc_pii_category)i;
            return DC_OK;
        }
    }
    return dc_fail(DC_ERR_INVALID_ARGUMENT, "unknown PII category \"%.40s\"", name ? name : "");
}

/* ---------------------------------------------------------------- create / destroy */

static const float thresholds[3] = {0.8f, 0.5f, 0.3f}; /* permissive, moderate, strict */

#define DC_PII_KEY_FILE_MAX 1024

static dc_status read_key_file(const char *path, unsigned char *key, size_t cap, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return dc_fail(DC_ERR_CONFIG, "pii.hmac_key_file %s: %s", path, strerror(errno));
    size_t n = fread(key, 1, cap, f);
    bool more = fgetc(f) != EOF;
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad) return dc_fail(DC_ERR_IO, "pii.hmac_key_file %s: read error", path);
    if (more) return dc_fail(DC_ERR_CONFIG, "pii.hmac_key_file %s: longer than %zu bytes", path, cap);
    if (n && key[n - 1] == '\n') n--; /* "echo KEY > file" */
    if (n && key[n - 1] == '\r') n--;
    if (n < DC_PII_HMAC_KEY_MIN)
        return dc_fail(DC_ERR_CONFIG,
                       "pii.hmac_key_file %s: the key is %zu bytes; at least %d are needed", path,
                       n, DC_PII_HMAC_KEY_MIN);
    *len = n;
    return DC_OK;
}

static dc_status scrubber_create(const dc_pii_config *cfg, bool counting, dc_scrubber **out) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "dc_scrubber_create: NULL output");
    *out = NULL;
    if (!cfg) return dc_fail(DC_ERR_INVALID_ARGUMENT, "dc_scrubber_create: NULL config");
    if ((unsigned)cfg->mode > DC_PII_OFF)
        return dc_fail(DC_ERR_CONFIG, "pii.mode has an invalid value %d", (int)cfg->mode);
    if ((unsigned)cfg->sensitivity > DC_PII_STRICT)
        return dc_fail(DC_ERR_CONFIG, "pii.sensitivity has an invalid value %d",
                       (int)cfg->sensitivity);
    if (cfg->custom_pattern_count > DC_CONFIG_MAX_PII_PATTERNS)
        return dc_fail(DC_ERR_CONFIG, "pii.custom_patterns has too many entries");
    dc_scrubber *sc = calloc(1, sizeof *sc);
    if (!sc) return dc_fail(DC_ERR_OUT_OF_MEMORY, "PII scrubber: out of memory");
    sc->mode = cfg->mode;
    sc->sensitivity = cfg->sensitivity;
    sc->threshold = thresholds[cfg->sensitivity];
    sc->counting = counting;
    dc_status st = DC_OK;
    size_t klen = strnlen(cfg->hmac_key, sizeof cfg->hmac_key);
    if (klen && cfg->hmac_key_file[0]) {
        st = dc_fail(DC_ERR_CONFIG, "set pii.hmac_key or pii.hmac_key_file, not both");
    } else if (klen) {
        if (klen < DC_PII_HMAC_KEY_MIN)
            st = dc_fail(DC_ERR_CONFIG, "pii.hmac_key is %zu bytes; at least %d are needed", klen,
                         DC_PII_HMAC_KEY_MIN);
        memcpy(sc->key, cfg->hmac_key, klen);
        sc->key_len = klen;
    } else if (cfg->hmac_key_file[0]) {
        st = read_key_file(cfg->hmac_key_file, sc->key, sizeof sc->key, &sc->key_len);
    }
    if (!st && sc->mode == DC_PII_HASH && !sc->key_len)
        st = dc_fail(DC_ERR_CONFIG,
                     "pii.mode = \"hash\" needs a key: set pii.hmac_key or pii.hmac_key_file "
                     "(an unkeyed hash of a phone number or an SSN can be reversed by trying "
                     "them all)");
    if (!st) st = dc_pii_patterns_compile(sc);
    for (uint32_t i = 0; !st && i < cfg->custom_pattern_count; i++) {
        const char *regex = NULL;
        char why[256];
        if (!dc_pii_custom_split(cfg->custom_patterns[i], sc->custom_name[i], &regex, why,
                                 sizeof why)) {
            st = dc_fail(DC_ERR_CONFIG, "pii.custom_patterns[%u]: %s", (unsigned)i, why);
            break;
        }
        int err = 0;
        PCRE2_SIZE off = 0;
        sc->custom[i] = pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED,
                                      DC_PII_CUSTOM_COMPILE_OPTIONS |
                                          (counting ? PCRE2_AUTO_CALLOUT : 0),
                                      &err, &off, NULL);
        if (!sc->custom[i]) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(err, msg, sizeof msg);
            st = dc_fail(DC_ERR_CONFIG, "pii.custom_patterns[%u] %s: regex error at offset %zu: %s",
                         (unsigned)i, sc->custom_name[i], (size_t)off, (const char *)msg);
            break;
        }
        sc->ncustom = i + 1;
        if (!counting) (void)pcre2_jit_compile(sc->custom[i], PCRE2_JIT_COMPLETE);
        uint32_t groups = 0;
        pcre2_pattern_info(sc->custom[i], PCRE2_INFO_CAPTURECOUNT, &groups);
        if (groups + 1 > sc->max_ovector) sc->max_ovector = groups + 1;
    }
    if (st) {
        dc_scrubber_destroy(sc);
        return st;
    }
    *out = sc;
    return DC_OK;
}

dc_status dc_scrubber_create(const dc_pii_config *cfg, dc_scrubber **out) {
    return scrubber_create(cfg, false, out);
}

dc_status dc_scrubber_create_counting(const dc_pii_config *cfg, dc_scrubber **out) {
    return scrubber_create(cfg, true, out);
}

void dc_scrubber_destroy(dc_scrubber *sc) {
    if (!sc) return;
    dc_pii_patterns_free(sc);
    for (size_t i = 0; i < sc->ncustom; i++) pcre2_code_free(sc->custom[i]);
    memset(sc->key, 0, sizeof sc->key);
    free(sc);
}

/* ---------------------------------------------------------------- scanning */

/* Counting mode: one step per pattern item visited plus the distance the match position moved
 * since the last item, so a repeat that runs over 8000 characters counts 8000, and so does
 * backtracking over them. */
typedef struct step_counter {
    uint64_t *steps;
    size_t last;
} step_counter;

static int count_callout(pcre2_callout_block *block, void *data) {
    step_counter *c = data;
    size_t pos = block->current_position;
    if (block->callout_flags & PCRE2_CALLOUT_STARTMATCH) c->last = block->start_match;
    *c->steps += 1 + (pos > c->last ? pos - c->last : c->last - pos);
    c->last = pos;
    return 0;
}

/* Sanitizes and runs the recognizers; scan->cands holds the candidates. */
static dc_status scan_text(const dc_scrubber *sc, const char *text, size_t len, dc_pii_text *t,
                           dc_pii_scan *scan) {
    memset(scan, 0, sizeof *scan);
    dc_status st = dc_pii_sanitize(text, len, t);
    if (st) return st;
    scan->sc = sc;
    scan->s = t->s;
    scan->n = t->n;
    scan->md = pcre2_match_data_create(sc->max_ovector, NULL);
    scan->mctx = sc->mctx;
    pcre2_match_context *own = NULL;
    step_counter counter = {&scan->steps, 0};
    if (sc->counting) {
        own = pcre2_match_context_copy(sc->mctx);
        if (own) pcre2_set_callout(own, count_callout, &counter);
        scan->mctx = own;
    }
    if (!scan->md || (sc->counting && !own)) {
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "PII scrub: out of memory");
    } else {
        dc_pii_recognize(scan);
        st = scan->err;
        if (st == DC_ERR_OUT_OF_MEMORY)
            st = dc_fail(DC_ERR_OUT_OF_MEMORY, "PII scrub: out of memory collecting detections");
    }
    pcre2_match_data_free(scan->md);
    scan->md = NULL;
    pcre2_match_context_free(own);
    scan->mctx = NULL;
    return st;
}

/* ---------------------------------------------------------------- overlap resolution */

static int by_category_start(const void *pa, const void *pb) {
    const dc_pii_cand *a = pa, *b = pb;
    if (a->cat != b->cat) return a->cat < b->cat ? -1 : 1;
    if (a->custom != b->custom) return a->custom < b->custom ? -1 : 1;
    if (a->start != b->start) return a->start < b->start ? -1 : 1;
    return a->end > b->end ? -1 : a->end < b->end;
}

/* Stronger first: score, then the longer span, then the more specific category. */
static int by_strength(const void *pa, const void *pb) {
    const dc_pii_cand *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    uint32_t la = a->end - a->start, lb = b->end - b->start;
    if (la != lb) return la > lb ? -1 : 1;
    if (a->cat != b->cat) return a->cat < b->cat ? -1 : 1;
    return a->start < b->start ? -1 : a->start > b->start;
}

static int by_start(const void *pa, const void *pb) {
    const dc_pii_cand *a = pa, *b = pb;
    return a->start < b->start ? -1 : a->start > b->start;
}

/* Merges overlapping candidates of one category, then keeps the strongest of any that still
 * overlap. Leaves the survivors sorted by start; returns their count. */
static size_t resolve(dc_pii_cand *c, size_t n, size_t text_len, dc_status *st) {
    if (n == 0) return 0;
    qsort(c, n, sizeof *c, by_category_start);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && c[m - 1].cat == c[i].cat && c[m - 1].custom == c[i].custom &&
            c[i].start < c[m - 1].end) {
            if (c[i].end > c[m - 1].end) c[m - 1].end = c[i].end;
            if (c[i].score > c[m - 1].score) c[m - 1].score = c[i].score;
            continue;
        }
        c[m++] = c[i];
    }
    qsort(c, m, sizeof *c, by_strength);
    /* A byte map of what is taken: total work is the sum of candidate lengths, which the
     * recognizers bound by a constant per trigger. */
    unsigned char *taken = calloc(text_len ? text_len : 1, 1);
    if (!taken) {
        *st = dc_fail(DC_ERR_OUT_OF_MEMORY, "PII scrub: out of memory resolving detections");
        return 0;
    }
    size_t k = 0;
    for (size_t i = 0; i < m; i++) {
        bool free_span = true;
        for (uint32_t b = c[i].start; b < c[i].end && free_span; b++) free_span = !taken[b];
        if (!free_span) continue;
        memset(taken + c[i].start, 1, c[i].end - c[i].start);
        c[k++] = c[i];
    }
    free(taken);
    qsort(c, k, sizeof *c, by_start);
    return k;
}

/* ---------------------------------------------------------------- rewriting */

typedef struct outbuf {
    char *p;
    size_t n, cap;
    bool oom;
} outbuf;

static void out_put(outbuf *o, const char *s, size_t k) {
    if (o->oom || !k) return;
    if (o->n + k + 1 > o->cap) {
        size_t cap = (o->cap + k + 1) * 2;
        char *p = realloc(o->p, cap);
        if (!p) {
            o->oom = true;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->n, s, k);
    o->n += k;
}

static void out_str(outbuf *o, const char *s) {
    out_put(o, s, strlen(s));
}

static bool significant(uint32_t cp) {
    if (cp < 0x80) return (cp | 0x20) >= 'a' ? (cp | 0x20) <= 'z' : (cp >= '0' && cp <= '9');
    const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)cp);
    return p->category >= UTF8PROC_CATEGORY_LU && p->category <= UTF8PROC_CATEGORY_NO;
}

/* '*' for every letter and digit but the last four (none kept under eight); separators stay,
 * invisible characters go. */
static void write_mask(outbuf *o, const char *s, size_t a, size_t b) {
    size_t total = 0;
    for (size_t i = a; i < b;) {
        uint32_t len = 0;
        uint32_t cp = dc_u8_decode(s + i, &len);
        total += significant(cp);
        i += len;
    }
    size_t keep = total >= 8 ? 4 : 0, seen = 0;
    for (size_t i = a; i < b;) {
        uint32_t len = 0;
        uint32_t cp = dc_u8_decode(s + i, &len);
        if (significant(cp)) {
            if (seen++ >= total - keep) out_put(o, s + i, len);
            else out_put(o, "*", 1);
        } else if (cp < 0x80 || !utf8proc_get_property((utf8proc_int32_t)cp)->ignorable) {
            out_put(o, s + i, len);
        }
        i += len;
    }
}

/* HMAC-SHA-256 of the category and the normalised value (so "+1 (555) 010-0000" and
 * "15550100000" hash alike); 12 hex digits are kept: enough to keep mentions apart, too few to
 * help an attacker who lacks the key. */
static void write_hash(outbuf *o, const dc_scrubber *sc, const char *label, dc_pii_category cat,
                       const char *v, size_t n) {
    size_t ll = strlen(label);
    unsigned char *msg = malloc(ll + 1 + n + 1);
    if (!msg) {
        o->oom = true;
        return;
    }
    memcpy(msg, label, ll);
    msg[ll] = 0;
    size_t k = ll + 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        switch (cat) {
        case DC_PII_CAT_PHONE:
        case DC_PII_CAT_CREDIT_CARD:
        case DC_PII_CAT_US_SSN:
            if (c >= '0' && c <= '9') msg[k++] = c;
            break;
        case DC_PII_CAT_IBAN:
            if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') msg[k++] = (unsigned char)(c & ~0x20);
            else if (c >= '0' && c <= '9') msg[k++] = c;
            break;
        case DC_PII_CAT_EMAIL:
            msg[k++] = (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
            break;
        default:
            msg[k++] = c;
        }
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    if (!HMAC(EVP_sha256(), sc->key, (int)sc->key_len, msg, k, mac, &mlen)) {
        free(msg);
        o->oom = true; /* reported as a failure below; never an unkeyed fallback */
        return;
    }
    free(msg);
    char tag[DC_PII_NAME_MAX + 32];
    snprintf(tag, sizeof tag, "<%s_%02x%02x%02x%02x%02x%02x>", label, mac[0], mac[1], mac[2],
             mac[3], mac[4], mac[5]);
    out_str(o, tag);
}

static const char *cand_label(const dc_scrubber *sc, const dc_pii_cand *c) {
    return c->cat == DC_PII_CAT_CUSTOM ? sc->custom_name[c->custom]
                                       : category_names[c->cat];
}

dc_status dc_scrubber_scrub(const dc_scrubber *sc, const char *text, size_t len,
                            dc_scrub_result *out) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "dc_scrubber_scrub: NULL result");
    memset(out, 0, sizeof *out);
    if (!sc) return dc_fail(DC_ERR_INVALID_ARGUMENT, "dc_scrubber_scrub: NULL scrubber");
    if (!text && len) return dc_fail(DC_ERR_INVALID_ARGUMENT, "dc_scrubber_scrub: NULL text");
    if (!text) text = "";
    dc_pii_text t;
    dc_pii_scan scan;
    dc_status st = scan_text(sc, text, len, &t, &scan);
    size_t k = st ? 0 : resolve(scan.cands, scan.ncands, t.n, &st);
    outbuf o = {0};
    dc_pii_detection *det = NULL;
    if (!st && k) {
        det = calloc(k, sizeof *det);
        if (!det) st = dc_fail(DC_ERR_OUT_OF_MEMORY, "PII scrub: out of memory");
    }
    size_t pos = 0;
    for (size_t i = 0; !st && i < k; i++) {
        const dc_pii_cand *c = &scan.cands[i];
        size_t a = dc_pii_text_orig_start(&t, c->start), b = dc_pii_text_orig_end(&t, c->end);
        out_put(&o, text + pos, a - pos);
        const char *label = cand_label(sc, c);
        det[i].category = (dc_pii_category)c->cat;
        det[i].label = label;
        det[i].start = a;
        det[i].end = b;
        det[i].confidence = c->score;
        det[i].out_start = o.n;
        switch (sc->mode) {
        case DC_PII_PLACEHOLDER:
            out_str(&o, "<");
            out_str(&o, label);
            out_str(&o, ">");
            break;
        case DC_PII_REDACT:
            out_str(&o, "[REDACTED]");
            break;
        case DC_PII_MASK:
            write_mask(&o, text, a, b);
            break;
        case DC_PII_HASH:
            write_hash(&o, sc, label, (dc_pii_category)c->cat, t.s + c->start, c->end - c->start);
            break;
        case DC_PII_OFF:
            out_put(&o, text + a, b - a);
            break;
        }
        det[i].out_end = o.n;
        pos = b;
    }
    if (!st) {
        out_put(&o, text + pos, len - pos);
        if (!o.p && !o.oom) { /* empty result */
            o.p = malloc(1);
            o.oom = !o.p;
        }
        if (o.oom) st = dc_fail(DC_ERR_OUT_OF_MEMORY, "PII scrub: out of memory writing the result");
    }
    free(scan.cands);
    dc_pii_text_free(&t);
    if (st) {
        free(o.p);
        free(det);
        return st;
    }
    o.p[o.n] = '\0';
    out->text = o.p;
    out->len = o.n;
    out->detections = det;
    out->count = k;
    return DC_OK;
}

void dc_scrub_result_free(dc_scrub_result *r) {
    if (!r) return;
    free(r->text);
    free(r->detections);
    memset(r, 0, sizeof *r);
}

dc_status dc_scrub_result_audit_json(const dc_scrub_result *r, char **out, size_t *len) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "dc_scrub_result_audit_json: NULL output");
    *out = NULL;
    if (!r) return dc_fail(DC_ERR_INVALID_ARGUMENT, "dc_scrub_result_audit_json: NULL result");
    outbuf o = {0};
    char item[DC_PII_NAME_MAX + 128];
    snprintf(item, sizeof item, "{\"count\":%zu,\"detections\":[", r->count);
    out_str(&o, item);
    for (size_t i = 0; i < r->count; i++) {
        const dc_pii_detection *d = &r->detections[i];
        /* labels are [A-Z0-9_]: nothing to escape */
        snprintf(item, sizeof item, "%s{\"category\":\"%s\",\"start\":%zu,\"end\":%zu,"
                 "\"confidence\":%.2f}",
                 i ? "," : "", d->label ? d->label : dc_pii_category_name(d->category), d->start,
                 d->end, (double)d->confidence);
        out_str(&o, item);
    }
    out_str(&o, "]}");
    if (o.oom) {
        free(o.p);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "audit record: out of memory");
    }
    o.p[o.n] = '\0';
    *out = o.p;
    if (len) *len = o.n;
    return DC_OK;
}

dc_status dc_scrubber_count_work(const dc_scrubber *sc, const char *text, size_t len,
                                 uint64_t *steps, size_t *detections) {
    if (!sc || !sc->counting)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "dc_scrubber_count_work: needs a counting scrubber");
    dc_pii_text t;
    dc_pii_scan scan;
    dc_status st = scan_text(sc, text, len, &t, &scan);
    size_t k = st ? 0 : resolve(scan.cands, scan.ncands, t.n, &st);
    *steps = scan.steps + t.n;
    if (detections) *detections = k;
    free(scan.cands);
    dc_pii_text_free(&t);
    return st;
}

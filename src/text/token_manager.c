/* Tokenization manager: one tokenization per (family, prefix, text), shared by the models of the
 * family through a reference-counted LRU cache; per-model truncation, special tokens, marker and
 * padding are applied to a copy. */
#include "text/token_manager.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/error.h"
#include "core/utf8.h"
#include "text/tok_internal.h"

typedef struct dc_tm_entry {
    XXH128_hash_t key;
    uint8_t family;
    dc_tok *toks;
    size_t n;
    uint32_t refs; /* readers, plus one while the cache holds it */
    bool cached;
    struct dc_tm_entry *prev, *next; /* LRU list, most recent first */
    struct dc_tm_entry *hnext;       /* hash chain */
} dc_tm_entry;

struct dc_token_manager {
    pthread_mutex_t mu;
    dc_tokenizer *toks[DC_TOK_FAMILY_COUNT];
    size_t max_entries, max_tokens;
    dc_tm_entry **buckets;
    size_t nbuckets;
    dc_tm_entry *head, *tail;
    size_t entries, tokens;
    uint64_t hits, misses, evictions, tokenize_ns, finish_ns;
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void dc_token_request_init(dc_token_request *r, dc_tok_family family) {
    memset(r, 0, sizeof *r);
    r->family = family;
    r->add_special_tokens = true;
    r->truncation_side = DC_SIDE_RIGHT;
    r->marker_id = -1;
    r->pad_id = -1;
}

dc_status dc_token_manager_create(size_t max_entries, size_t max_tokens, dc_token_manager **out) {
    *out = NULL;
    dc_token_manager *m = calloc(1, sizeof *m);
    if (!m) return dc_fail(DC_ERR_OUT_OF_MEMORY, "token manager: out of memory");
    m->max_entries = max_entries;
    m->max_tokens = max_tokens;
    m->nbuckets = 64;
    while (m->nbuckets < max_entries && m->nbuckets < ((size_t)1 << 24)) m->nbuckets *= 2;
    m->buckets = calloc(m->nbuckets, sizeof *m->buckets);
    if (!m->buckets) {
        free(m);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "token manager: out of memory");
    }
    pthread_mutex_init(&m->mu, NULL);
    *out = m;
    return DC_OK;
}

static void entry_free(dc_tm_entry *e) {
    free(e->toks);
    free(e);
}

/* Drops one reference (lock held). */
static void entry_unref(dc_tm_entry *e) {
    if (--e->refs == 0) entry_free(e);
}

static size_t bucket_of(const dc_token_manager *m, XXH128_hash_t k) {
    return (size_t)(k.low64 & (m->nbuckets - 1));
}

/* Takes e out of the cache (lock held). */
static void uncache(dc_token_manager *m, dc_tm_entry *e) {
    dc_tm_entry **pp = &m->buckets[bucket_of(m, e->key)];
    while (*pp && *pp != e) pp = &(*pp)->hnext;
    if (*pp) *pp = e->hnext;
    if (e->prev) e->prev->next = e->next;
    else m->head = e->next;
    if (e->next) e->next->prev = e->prev;
    else m->tail = e->prev;
    e->prev = e->next = e->hnext = NULL;
    e->cached = false;
    m->entries--;
    m->tokens -= e->n;
    entry_unref(e);
}

static void clear_locked(dc_token_manager *m) {
    while (m->tail) uncache(m, m->tail);
}

void dc_token_manager_destroy(dc_token_manager *m) {
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    clear_locked(m);
    pthread_mutex_unlock(&m->mu);
    pthread_mutex_destroy(&m->mu);
    for (int i = 0; i < DC_TOK_FAMILY_COUNT; i++) dc_tokenizer_free(m->toks[i]);
    free(m->buckets);
    free(m);
}

void dc_token_manager_clear(dc_token_manager *m) {
    pthread_mutex_lock(&m->mu);
    clear_locked(m);
    pthread_mutex_unlock(&m->mu);
}

dc_status dc_token_manager_set_tokenizer(dc_token_manager *m, dc_tok_family family,
                                         dc_tokenizer *tok) {
    if (!m || (unsigned)family >= DC_TOK_FAMILY_COUNT) {
        dc_tokenizer_free(tok);
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "token manager: bad family %d", (int)family);
    }
    pthread_mutex_lock(&m->mu);
    clear_locked(m); /* cached tokens of the old tokenizer are stale */
    dc_tokenizer *old = m->toks[family];
    m->toks[family] = tok;
    pthread_mutex_unlock(&m->mu);
    dc_tokenizer_free(old);
    return DC_OK;
}

const dc_tokenizer *dc_token_manager_tokenizer(const dc_token_manager *m, dc_tok_family family) {
    return m && (unsigned)family < DC_TOK_FAMILY_COUNT ? m->toks[family] : NULL;
}

void dc_token_manager_stats_get(dc_token_manager *m, dc_token_manager_stats *s) {
    pthread_mutex_lock(&m->mu);
    s->hits = m->hits;
    s->misses = m->misses;
    s->evictions = m->evictions;
    s->entries = m->entries;
    s->cached_tokens = m->tokens;
    s->tokenize_ns = m->tokenize_ns;
    s->finish_ns = m->finish_ns;
    pthread_mutex_unlock(&m->mu);
}

/* Whether tokens(prefix + text) == tokens(prefix) ++ tokens(text) for every text: the prefix ends
 * in whitespace, and the tokenizer only splits on whitespace/punctuation after per-character
 * normalization, with no added token that swallows spaces. */
static bool prefix_composable(const dc_tokenizer *t, const char *prefix, size_t plen) {
    if (!plen) return true;
    char last = prefix[plen - 1];
    if (last != ' ' && last != '\t' && last != '\n') return false;
    if (!t->pretok || (t->pretok->kind != DC_PRE_BERT && t->pretok->kind != DC_PRE_WHITESPACE_SPLIT))
        return false;
    const dc_normalizer *n = t->normalizer;
    if (n) {
        const dc_normalizer *items = n->kind == DC_NORM_SEQUENCE ? n->items : n;
        size_t count = n->kind == DC_NORM_SEQUENCE ? n->nitems : 1;
        for (size_t i = 0; i < count; i++) {
            dc_norm_kind k = items[i].kind;
            if (k != DC_NORM_BERT && k != DC_NORM_LOWERCASE && k != DC_NORM_NFC && k != DC_NORM_NFD &&
                k != DC_NORM_NFKC && k != DC_NORM_NFKD && k != DC_NORM_STRIP_ACCENTS)
                return false;
        }
    }
    for (size_t i = 0; i < t->nadded; i++)
        if (t->added[i].lstrip || t->added[i].rstrip) return false;
    return true;
}

/* The family's tokens of prefix + text, offsets relative to text (prefix tokens [0,0]). */
static dc_status tokenize_base(const dc_tokenizer *t, const char *prefix, size_t plen,
                               const char *text, size_t len, dc_tok **out, size_t *nout) {
    dc_status st;
    if (prefix_composable(t, prefix, plen)) {
        dc_tok *pt = NULL, *tt = NULL;
        size_t pn = 0, tn = 0;
        if (plen && (st = dc_tokenizer_tokens(t, prefix, plen, false, &pt, &pn))) return st;
        if ((st = dc_tokenizer_tokens(t, text, len, false, &tt, &tn))) {
            free(pt);
            return st;
        }
        if (!pn) {
            *out = tt;
            *nout = tn;
            free(pt);
            return DC_OK;
        }
        dc_tok *all = realloc(pt, (pn + tn + 1) * sizeof *all);
        if (!all) {
            free(pt);
            free(tt);
            return dc_fail(DC_ERR_OUT_OF_MEMORY, "token manager: out of memory");
        }
        for (size_t i = 0; i < pn; i++) all[i].bstart = all[i].bend = all[i].cstart = all[i].cend = 0;
        if (tn) memcpy(all + pn, tt, tn * sizeof *tt);
        free(tt);
        *out = all;
        *nout = pn + tn;
        return DC_OK;
    }
    /* tokenize the concatenation and move the offsets back to the text */
    char *buf = malloc(plen + len + 1);
    if (!buf) return dc_fail(DC_ERR_OUT_OF_MEMORY, "token manager: out of memory");
    memcpy(buf, prefix, plen);
    if (len) memcpy(buf + plen, text, len);
    st = dc_tokenizer_tokens(t, buf, plen + len, false, out, nout);
    free(buf);
    if (st) return st;
    uint32_t pchars = 0;
    for (size_t i = 0; i < plen; i++) pchars += ((uint8_t)prefix[i] & 0xC0) != 0x80;
    for (size_t i = 0; i < *nout; i++) {
        dc_tok *k = &(*out)[i];
        k->bstart = k->bstart > plen ? k->bstart - (uint32_t)plen : 0;
        k->bend = k->bend > plen ? k->bend - (uint32_t)plen : 0;
        k->cstart = k->cstart > pchars ? k->cstart - pchars : 0;
        k->cend = k->cend > pchars ? k->cend - pchars : 0;
    }
    return DC_OK;
}

static XXH128_hash_t make_key(dc_tok_family f, const char *prefix, size_t plen, const char *text,
                              size_t len) {
    XXH3_state_t st;
    XXH3_128bits_reset(&st);
    uint8_t fam = (uint8_t)f, sep = 0xFF; /* 0xFF never occurs in UTF-8 */
    XXH3_128bits_update(&st, &fam, 1);
    if (plen) XXH3_128bits_update(&st, prefix, plen);
    XXH3_128bits_update(&st, &sep, 1);
    if (len) XXH3_128bits_update(&st, text, len);
    return XXH3_128bits_digest(&st);
}

/* The shared tokenization, with a reference the caller drops with release(). */
static dc_status get_base(dc_token_manager *m, dc_tok_family f, const char *prefix, size_t plen,
                          const char *text, size_t len, dc_tm_entry **out) {
    XXH128_hash_t key = make_key(f, prefix, plen, text, len);
    pthread_mutex_lock(&m->mu);
    const dc_tokenizer *t = m->toks[f];
    if (!t) {
        pthread_mutex_unlock(&m->mu);
        return dc_fail(DC_ERR_NOT_INITIALIZED, "token manager: no tokenizer for family %d", (int)f);
    }
    for (dc_tm_entry *e = m->buckets[bucket_of(m, key)]; e; e = e->hnext) {
        if (e->family == f && XXH128_isEqual(e->key, key)) {
            if (e != m->head) { /* most recently used first */
                e->prev->next = e->next;
                if (e->next) e->next->prev = e->prev;
                else m->tail = e->prev;
                e->prev = NULL;
                e->next = m->head;
                m->head->prev = e;
                m->head = e;
            }
            e->refs++;
            m->hits++;
            pthread_mutex_unlock(&m->mu);
            *out = e;
            return DC_OK;
        }
    }
    m->misses++;
    pthread_mutex_unlock(&m->mu);

    dc_tm_entry *e = calloc(1, sizeof *e);
    if (!e) return dc_fail(DC_ERR_OUT_OF_MEMORY, "token manager: out of memory");
    uint64_t t0 = now_ns();
    dc_status st = tokenize_base(t, prefix, plen, text, len, &e->toks, &e->n);
    uint64_t dt = now_ns() - t0;
    if (st) {
        free(e);
        return st;
    }
    e->key = key;
    e->family = (uint8_t)f;
    e->refs = 1;

    pthread_mutex_lock(&m->mu);
    m->tokenize_ns += dt;
    bool fits = m->max_entries > 0 && e->n <= m->max_tokens;
    for (dc_tm_entry *o = m->buckets[bucket_of(m, key)]; o && fits; o = o->hnext)
        if (o->family == f && XXH128_isEqual(o->key, key)) fits = false; /* another thread won */
    if (fits) {
        e->cached = true;
        e->refs++;
        e->hnext = m->buckets[bucket_of(m, key)];
        m->buckets[bucket_of(m, key)] = e;
        e->next = m->head;
        if (m->head) m->head->prev = e;
        m->head = e;
        if (!m->tail) m->tail = e;
        m->entries++;
        m->tokens += e->n;
        while (m->tail && m->tail != e &&
               (m->entries > m->max_entries || m->tokens > m->max_tokens)) {
            uncache(m, m->tail);
            m->evictions++;
        }
    }
    pthread_mutex_unlock(&m->mu);
    *out = e;
    return DC_OK;
}

static void release(dc_token_manager *m, dc_tm_entry *e) {
    pthread_mutex_lock(&m->mu);
    entry_unref(e);
    pthread_mutex_unlock(&m->mu);
}

static uint32_t pad_id_of(const dc_tokenizer *t, int64_t want) {
    if (want >= 0) return (uint32_t)want;
    static const char *names[] = {"[PAD]", "<pad>"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int64_t id = dc_tokenizer_token_to_id(t, names[i]);
        if (id >= 0) return (uint32_t)id;
    }
    if (t->pad.enabled) return t->pad.pad_id;
    int64_t eot = dc_tokenizer_token_to_id(t, "<|endoftext|>");
    return eot >= 0 ? (uint32_t)eot : 0;
}

static dc_status finish(dc_token_manager *m, const dc_token_request *r, const dc_tm_entry *e,
                        dc_encoding *out) {
    const dc_tokenizer *t = m->toks[r->family];
    dc_encode_options o;
    memset(&o, 0, sizeof o);
    o.add_special_tokens = r->add_special_tokens;
    if (r->max_length) {
        o.truncation.enabled = true;
        o.truncation.max_length = r->max_length;
        o.truncation.direction = r->truncation_side;
        o.truncation.strategy = DC_TRUNC_LONGEST_FIRST;
    }
    if (r->pad_to) {
        o.padding.enabled = true;
        o.padding.fixed = true;
        o.padding.length = r->pad_to;
        o.padding.pad_id = pad_id_of(t, r->pad_id);
    }
    uint64_t t0 = now_ns();
    dc_status st = dc_tokenizer_finish_tokens(t, e->toks, e->n, &o, r->marker_id, out);
    uint64_t dt = now_ns() - t0;
    pthread_mutex_lock(&m->mu);
    m->finish_ns += dt;
    pthread_mutex_unlock(&m->mu);
    return st;
}

dc_status dc_token_manager_encode_many(dc_token_manager *m, const dc_token_request *reqs,
                                       size_t n, const char *text, size_t len, dc_encoding *outs) {
    if (!m || (n && (!reqs || !outs))) return dc_fail(DC_ERR_INVALID_ARGUMENT, "token manager: NULL argument");
    for (size_t i = 0; i < n; i++) memset(&outs[i], 0, sizeof outs[i]);
    if (!text && len) return dc_fail(DC_ERR_INVALID_ARGUMENT, "token manager: NULL text");
    size_t bad;
    if (len && !dc_utf8_valid(text, len, &bad))
        return dc_fail(DC_ERR_INVALID_VALUE, "token manager: invalid UTF-8 at byte offset %zu", bad);
    dc_tm_entry **bases = calloc(n ? n : 1, sizeof *bases);
    if (!bases) return dc_fail(DC_ERR_OUT_OF_MEMORY, "token manager: out of memory");
    dc_status st = DC_OK;
    for (size_t i = 0; i < n && !st; i++) {
        const dc_token_request *r = &reqs[i];
        if ((unsigned)r->family >= DC_TOK_FAMILY_COUNT) {
            st = dc_fail(DC_ERR_INVALID_ARGUMENT, "token manager: bad family %d", (int)r->family);
            break;
        }
        const char *pre = r->prefix ? r->prefix : "";
        size_t plen = strlen(pre);
        if (!dc_utf8_valid(pre, plen, NULL)) {
            st = dc_fail(DC_ERR_INVALID_VALUE, "token manager: prefix is not valid UTF-8");
            break;
        }
        /* one tokenization per (family, prefix) within the call */
        for (size_t j = 0; j < i && !bases[i]; j++) {
            const char *pj = reqs[j].prefix ? reqs[j].prefix : "";
            if (reqs[j].family == r->family && !strcmp(pj, pre) && bases[j]) {
                bases[i] = bases[j];
                pthread_mutex_lock(&m->mu);
                bases[i]->refs++;
                pthread_mutex_unlock(&m->mu);
            }
        }
        if (!bases[i]) st = get_base(m, r->family, pre, plen, text, len, &bases[i]);
        if (!st) st = finish(m, r, bases[i], &outs[i]);
    }
    for (size_t i = 0; i < n; i++)
        if (bases[i]) release(m, bases[i]);
    free(bases);
    if (st)
        for (size_t i = 0; i < n; i++) dc_encoding_free(&outs[i]);
    return st;
}

dc_status dc_token_manager_encode(dc_token_manager *m, const dc_token_request *req,
                                  const char *text, size_t len, dc_encoding *out) {
    if (out) memset(out, 0, sizeof *out);
    if (!req || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "token manager: NULL argument");
    return dc_token_manager_encode_many(m, req, 1, text, len, out);
}

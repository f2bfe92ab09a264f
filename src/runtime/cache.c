/* Sharded cache (LRU, approximate LFU or ARC) with byte/entry budgets, TTL and a checksummed
 * persistence file. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "core/bytes.h"
#include "runtime/cache.h"

/* The list an entry is on. LRU and LFU keep every entry on MAIN. ARC (Megiddo and Modha,
 * FAST 2003) keeps two lists of values: T1, entries seen once since they came in, and T2,
 * entries seen again; and two of ghosts, the keys and sizes of entries it recently evicted
 * from T1 (B1) and from T2 (B2). A put of a ghost's key moves T1's target size p: towards
 * recency for a B1 ghost, towards frequency for a B2 one. A scan of one-off keys then goes
 * through T1 without pushing the entries that are used again out of T2. */
enum { L_MAIN = 0, L_T1 = 0, L_T2 = 1, L_B1 = 2, L_B2 = 3, L_COUNT = 4 };

typedef struct entry {
    dc_hash128 key;
    dc_cache_blob *blob;       /* NULL for an ARC ghost */
    double created;
    uint32_t hits;
    uint32_t len;              /* the value's bytes (a ghost keeps its size) */
    uint8_t list;              /* L_* */
    uint64_t stamp;            /* global recency: larger = more recent */
    struct entry *hnext;       /* bucket chain */
    struct entry *prev, *next; /* its list: head = most recent */
} entry;

typedef struct shard {
    pthread_mutex_t mu;
    entry **buckets;
    size_t nbuckets; /* power of two */
    entry *head[L_COUNT], *tail[L_COUNT];
    uint64_t units[L_COUNT]; /* ARC: each list's size (bytes under a byte budget, else entries) */
    uint64_t p;              /* ARC: T1's target size, in the same units */
    uint64_t count, bytes;   /* entries holding values, and their cost */
    uint64_t nodes;          /* entries in the table, ghosts included */
} shard;

struct dc_cache {
    dc_cache_options opt;
    uint32_t nshards;
    uint64_t shard_entries, shard_bytes; /* per-shard budgets (0 = none) */
    shard *shards;
    atomic_uint_fast64_t clock; /* recency stamps */
    atomic_uint_fast64_t hits, misses, insertions, replacements, evictions, expirations, rejected;
};

void dc_cache_options_from_config(const dc_cache_config *cfg, dc_rt_logger *log,
                                  dc_cache_options *o) {
    memset(o, 0, sizeof *o);
    o->max_entries = cfg->max_entries;
    o->max_bytes = cfg->max_bytes;
    o->ttl_seconds = cfg->ttl_seconds;
    o->policy = cfg->eviction_policy == DC_EVICTION_LFU   ? DC_CACHE_LFU
                : cfg->eviction_policy == DC_EVICTION_ARC ? DC_CACHE_ARC
                                                          : DC_CACHE_LRU;
    o->log = log;
}

void dc_cache_blob_release(const dc_cache_blob *cb) {
    dc_cache_blob *b = (dc_cache_blob *)cb;
    if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) free(b);
}

static dc_cache_blob *blob_new(const void *bytes, size_t len) {
    dc_cache_blob *b = malloc(sizeof *b + (len ? len : 1));
    if (!b) return NULL;
    atomic_init(&b->refs, 1);
    b->len = len;
    if (len) memcpy(b->data, bytes, len);
    return b;
}

static double now_s(const dc_cache *c) {
    return c->opt.now ? c->opt.now(c->opt.now_ctx) : dc_rt_wall_seconds();
}

static uint64_t entry_cost(size_t len) { return (uint64_t)len + DC_CACHE_ENTRY_OVERHEAD; }

/* ARC's measure of an entry, and of the shard (c): bytes under a byte budget, else entries. */
static uint64_t arc_units(const dc_cache *c, uint32_t len) { return c->shard_bytes ? entry_cost(len) : 1; }
static uint64_t arc_capacity(const dc_cache *c) {
    return c->shard_bytes ? c->shard_bytes : c->shard_entries;
}

dc_status dc_cache_create(const dc_cache_options *opt, dc_cache **out) {
    if (!opt || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "cache: NULL options or output");
    *out = NULL;
    uint32_t n = opt->shards ? opt->shards : 16;
    if (n & (n - 1)) return dc_fail(DC_ERR_INVALID_ARGUMENT, "cache: %u shards is not a power of two", n);
    /* small budgets get fewer shards, so a per-shard share still holds several entries */
    while (n > 1 && ((opt->max_entries && opt->max_entries / n < 16) ||
                     (opt->max_bytes && opt->max_bytes / n < (256u << 10))))
        n /= 2;
    dc_cache *c = calloc(1, sizeof *c);
    if (!c) return dc_fail(DC_ERR_OUT_OF_MEMORY, "cache");
    c->opt = *opt;
    c->nshards = n;
    c->shard_entries = opt->max_entries ? (opt->max_entries + n - 1) / n : 0;
    c->shard_bytes = opt->max_bytes ? (opt->max_bytes + n - 1) / n : 0;
    c->shards = calloc(n, sizeof *c->shards);
    if (!c->shards) {
        free(c);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "cache shards");
    }
    for (uint32_t i = 0; i < n; i++) {
        shard *s = &c->shards[i];
        s->nbuckets = 64;
        s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
        if (!s->buckets || pthread_mutex_init(&s->mu, NULL) != 0) {
            for (uint32_t j = 0; j <= i; j++) free(c->shards[j].buckets);
            for (uint32_t j = 0; j < i; j++) pthread_mutex_destroy(&c->shards[j].mu);
            free(c->shards);
            free(c);
            return dc_fail(DC_ERR_OUT_OF_MEMORY, "cache buckets");
        }
    }
    *out = c;
    return DC_OK;
}

static shard *shard_of(dc_cache *c, dc_hash128 k) {
    return &c->shards[(uint32_t)(k.hi >> 40) & (c->nshards - 1)];
}

static entry **slot_of(shard *s, dc_hash128 k) {
    entry **p = &s->buckets[k.lo & (s->nbuckets - 1)];
    while (*p && !dc_hash128_equal((*p)->key, k)) p = &(*p)->hnext;
    return p;
}

static void list_unlink(const dc_cache *c, shard *s, entry *e) {
    if (e->prev) e->prev->next = e->next;
    else s->head[e->list] = e->next;
    if (e->next) e->next->prev = e->prev;
    else s->tail[e->list] = e->prev;
    e->prev = e->next = NULL;
    s->units[e->list] -= arc_units(c, e->len);
}

static void list_push_front(const dc_cache *c, shard *s, entry *e, uint8_t list) {
    e->list = list;
    e->prev = NULL;
    e->next = s->head[list];
    if (s->head[list]) s->head[list]->prev = e;
    s->head[list] = e;
    if (!s->tail[list]) s->tail[list] = e;
    s->units[list] += arc_units(c, e->len);
}

/* Drops e's value: it stops counting against the budgets (the blob loses the cache's
 * reference). */
static void value_drop(shard *s, entry *e) {
    if (!e->blob) return;
    s->count--;
    s->bytes -= entry_cost(e->len);
    dc_cache_blob_release(e->blob);
    e->blob = NULL;
}

/* Unlinks e from its bucket and its list and frees it. */
static void entry_drop(const dc_cache *c, shard *s, entry *e) {
    entry **p = slot_of(s, e->key);
    if (*p == e) *p = e->hnext;
    list_unlink(c, s, e);
    value_drop(s, e);
    s->nodes--;
    free(e);
}

static void grow(shard *s) {
    size_t nb = s->nbuckets * 2;
    entry **b = calloc(nb, sizeof *b);
    if (!b) return; /* stays correct, only slower */
    for (size_t i = 0; i < s->nbuckets; i++) {
        entry *e = s->buckets[i];
        while (e) {
            entry *nx = e->hnext;
            size_t j = e->key.lo & (nb - 1);
            e->hnext = b[j];
            b[j] = e;
            e = nx;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = nb;
}

static bool expired(const dc_cache *c, const entry *e, double now) {
    return c->opt.ttl_seconds && now - e->created >= (double)c->opt.ttl_seconds;
}

dc_status dc_cache_get(dc_cache *c, dc_hash128 key, const dc_cache_blob **out) {
    if (!c || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "cache get: NULL argument");
    *out = NULL;
    shard *s = shard_of(c, key);
    double now = c->opt.ttl_seconds ? now_s(c) : 0.0;
    pthread_mutex_lock(&s->mu);
    entry *e = *slot_of(s, key);
    if (e && e->blob && expired(c, e, now)) {
        entry_drop(c, s, e);
        e = NULL;
        dc_rt_add(&c->expirations, 1);
    }
    if (!e || !e->blob) { /* an ARC ghost has no value: a miss (its put adapts ARC) */
        pthread_mutex_unlock(&s->mu);
        dc_rt_add(&c->misses, 1);
        return DC_ERR_NOT_FOUND; /* a miss is not a failure: no detail */
    }
    /* most recent of its list; under ARC a second use moves it from T1 to T2 */
    const uint8_t to = c->opt.policy == DC_CACHE_ARC ? L_T2 : L_MAIN;
    if (s->head[to] != e) {
        list_unlink(c, s, e);
        list_push_front(c, s, e, to);
    }
    if (e->hits < UINT32_MAX) e->hits++;
    e->stamp = atomic_fetch_add_explicit(&c->clock, 1, memory_order_relaxed) + 1;
    atomic_fetch_add_explicit(&e->blob->refs, 1, memory_order_relaxed);
    *out = e->blob;
    pthread_mutex_unlock(&s->mu);
    dc_rt_add(&c->hits, 1);
    return DC_OK;
}

/* The entry to evict under LRU (the tail) or LFU (the least-hit of the last 8). */
static entry *victim(const dc_cache *c, shard *s) {
    entry *v = s->tail[L_MAIN];
    if (c->opt.policy == DC_CACHE_LFU) {
        entry *e = s->tail[L_MAIN];
        for (int i = 0; i < 8 && e; i++, e = e->prev)
            if (e->hits < v->hits) v = e;
    }
    return v;
}

/* ARC's REPLACE: the least recent of T1 becomes a B1 ghost when T1 is over its target (or at
 * it, for a put that hit a B2 ghost), else the least recent of T2 a B2 ghost. Then the ghost
 * lists are trimmed: T1 + B1 and all four lists together stay within one and two capacities. */
static void arc_replace(const dc_cache *c, shard *s, bool b2_hit) {
    const bool from_t1 = s->tail[L_T1] && (!s->tail[L_T2] || s->units[L_T1] > s->p ||
                                           (b2_hit && s->units[L_T1] == s->p));
    entry *e = s->tail[from_t1 ? L_T1 : L_T2];
    list_unlink(c, s, e);
    value_drop(s, e);
    list_push_front(c, s, e, from_t1 ? L_B1 : L_B2);
    const uint64_t cap = arc_capacity(c);
    while (s->tail[L_B1] && s->units[L_T1] + s->units[L_B1] > cap)
        entry_drop(c, s, s->tail[L_B1]);
    while ((s->tail[L_B2] || s->tail[L_B1]) &&
           s->units[L_T1] + s->units[L_T2] + s->units[L_B1] + s->units[L_B2] > 2 * cap)
        entry_drop(c, s, s->tail[s->tail[L_B2] ? L_B2 : L_B1]);
}

/* Inserts a prepared entry into its shard, evicting as needed. Takes ownership of blob. */
static dc_status insert(dc_cache *c, dc_hash128 key, dc_cache_blob *blob, double created,
                        uint32_t hits) {
    uint64_t cost = entry_cost(blob->len);
    if (c->shard_bytes && cost > c->shard_bytes) {
        size_t len = blob->len;
        dc_cache_blob_release(blob);
        dc_rt_add(&c->rejected, 1);
        return dc_fail(DC_ERR_CACHE, "a %zu-byte value exceeds the cache's per-shard budget of %" PRIu64 " bytes",
                       len, c->shard_bytes);
    }
    entry *ne = calloc(1, sizeof *ne);
    if (!ne) {
        dc_cache_blob_release(blob);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "cache entry");
    }
    ne->key = key;
    ne->blob = blob;
    ne->len = (uint32_t)blob->len;
    ne->created = created;
    ne->hits = hits;
    ne->stamp = atomic_fetch_add_explicit(&c->clock, 1, memory_order_relaxed) + 1;
    shard *s = shard_of(c, key);
    pthread_mutex_lock(&s->mu);
    const bool arc = c->opt.policy == DC_CACHE_ARC;
    /* ARC: an entry seen before (a value replaced, a ghost, or one loaded with hits) goes to
     * T2; a ghost's put moves T1's target towards the list it came from */
    uint8_t to = arc && hits ? L_T2 : L_MAIN;
    bool b2_hit = false;
    entry **p = slot_of(s, key);
    if (*p && (*p)->blob) {
        entry_drop(c, s, *p);
        dc_rt_add(&c->replacements, 1);
        to = arc ? L_T2 : L_MAIN;
    } else if (*p) { /* a ghost */
        const uint64_t u = arc_units(c, ne->len), b1 = s->units[L_B1], b2 = s->units[L_B2];
        if ((*p)->list == L_B1) {
            const uint64_t d = (b1 && b2 / b1 > 1 ? b2 / b1 : 1) * u, cap = arc_capacity(c);
            s->p = s->p + d < cap ? s->p + d : cap;
        } else {
            const uint64_t d = (b2 && b1 / b2 > 1 ? b1 / b2 : 1) * u;
            s->p = s->p > d ? s->p - d : 0;
            b2_hit = true;
        }
        entry_drop(c, s, *p);
        to = L_T2;
    }
    while (s->count > 0 && ((c->shard_entries && s->count + 1 > c->shard_entries) ||
                            (c->shard_bytes && s->bytes + cost > c->shard_bytes))) {
        if (arc) arc_replace(c, s, b2_hit);
        else entry_drop(c, s, victim(c, s));
        dc_rt_add(&c->evictions, 1);
    }
    p = slot_of(s, key);
    *p = ne;
    list_push_front(c, s, ne, to);
    s->count++;
    s->nodes++;
    s->bytes += cost;
    if (s->nodes > s->nbuckets) grow(s);
    pthread_mutex_unlock(&s->mu);
    dc_rt_add(&c->insertions, 1);
    return DC_OK;
}

dc_status dc_cache_put(dc_cache *c, dc_hash128 key, const void *bytes, size_t len) {
    if (!c || (len && !bytes)) return dc_fail(DC_ERR_INVALID_ARGUMENT, "cache put: NULL argument");
    if (len > UINT32_MAX) return dc_fail(DC_ERR_CACHE, "cache put: %zu-byte value is too large", len);
    dc_cache_blob *b = blob_new(bytes, len);
    if (!b) return dc_fail(DC_ERR_OUT_OF_MEMORY, "cache value of %zu bytes", len);
    return insert(c, key, b, now_s(c), 0);
}

bool dc_cache_contains(dc_cache *c, dc_hash128 key) {
    if (!c) return false;
    shard *s = shard_of(c, key);
    double now = c->opt.ttl_seconds ? now_s(c) : 0.0;
    pthread_mutex_lock(&s->mu);
    entry *e = *slot_of(s, key);
    bool r = e && e->blob && !expired(c, e, now);
    pthread_mutex_unlock(&s->mu);
    return r;
}

bool dc_cache_remove(dc_cache *c, dc_hash128 key) {
    if (!c) return false;
    shard *s = shard_of(c, key);
    pthread_mutex_lock(&s->mu);
    entry *e = *slot_of(s, key);
    const bool had = e && e->blob;
    if (e) entry_drop(c, s, e);
    pthread_mutex_unlock(&s->mu);
    return had;
}

void dc_cache_clear(dc_cache *c) {
    if (!c) return;
    for (uint32_t i = 0; i < c->nshards; i++) {
        shard *s = &c->shards[i];
        pthread_mutex_lock(&s->mu);
        for (int l = 0; l < L_COUNT; l++)
            while (s->head[l]) entry_drop(c, s, s->head[l]);
        s->p = 0;
        pthread_mutex_unlock(&s->mu);
    }
}

void dc_cache_destroy(dc_cache *c) {
    if (!c) return;
    dc_cache_clear(c);
    for (uint32_t i = 0; i < c->nshards; i++) {
        free(c->shards[i].buckets);
        pthread_mutex_destroy(&c->shards[i].mu);
    }
    free(c->shards);
    free(c);
}

void dc_cache_stats_get(dc_cache *c, dc_cache_stats *o) {
    memset(o, 0, sizeof *o);
    if (!c) return;
    o->hits = dc_rt_get(&c->hits);
    o->misses = dc_rt_get(&c->misses);
    o->insertions = dc_rt_get(&c->insertions);
    o->replacements = dc_rt_get(&c->replacements);
    o->evictions = dc_rt_get(&c->evictions);
    o->expirations = dc_rt_get(&c->expirations);
    o->rejected = dc_rt_get(&c->rejected);
    for (uint32_t i = 0; i < c->nshards; i++) {
        shard *s = &c->shards[i];
        pthread_mutex_lock(&s->mu);
        o->entries += s->count;
        o->bytes += s->bytes;
        pthread_mutex_unlock(&s->mu);
    }
    uint64_t look = o->hits + o->misses;
    o->hit_rate = look ? (double)o->hits / (double)look : 0.0;
}

void dc_cache_stats_reset(dc_cache *c) {
    if (!c) return;
    atomic_store(&c->hits, 0);
    atomic_store(&c->misses, 0);
    atomic_store(&c->insertions, 0);
    atomic_store(&c->replacements, 0);
    atomic_store(&c->evictions, 0);
    atomic_store(&c->expirations, 0);
    atomic_store(&c->rejected, 0);
}

/* ---- persistence ---- */

static const uint8_t file_magic[8] = {'D', 'C', 'C', 'A', 'C', 'H', 'E', 0};
#define HEADER_BYTES 24u
#define ENTRY_HEADER 32u

typedef struct dbuf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} dbuf;

static uint8_t *dbuf_room(dbuf *b, size_t n) {
    if (b->oom) return NULL;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return NULL;
        }
        b->p = q;
        b->cap = cap;
    }
    uint8_t *at = b->p + b->len;
    b->len += n;
    return at;
}

typedef struct snap {
    dc_hash128 key;
    dc_cache_blob *blob;
    double created;
    uint32_t hits;
    uint64_t stamp;
} snap;

static int by_recency(const void *a, const void *b) {
    uint64_t x = ((const snap *)a)->stamp, y = ((const snap *)b)->stamp;
    return x < y ? 1 : x > y ? -1 : 0;
}

dc_status dc_cache_serialize(dc_cache *c, uint8_t **out, size_t *len) {
    if (!c || !out || !len) return dc_fail(DC_ERR_INVALID_ARGUMENT, "cache serialize: NULL argument");
    *out = NULL;
    *len = 0;
    /* a snapshot of references (values stay alive while we write), most recent first */
    size_t n = 0, cap = 0;
    snap *sn = NULL;
    bool oom = false;
    for (uint32_t i = 0; i < c->nshards && !oom; i++) {
        shard *s = &c->shards[i];
        pthread_mutex_lock(&s->mu);
        /* the values (LRU/LFU: MAIN; ARC: T1 and T2), not ARC's ghosts */
        for (int l = L_T1; l <= L_T2 && !oom; l++)
            for (entry *e = s->head[l]; e; e = e->next) {
                if (n == cap) {
                    size_t nc = cap ? cap * 2 : 256;
                    snap *q = realloc(sn, nc * sizeof *q);
                    if (!q) {
                        oom = true;
                        break;
                    }
                    sn = q;
                    cap = nc;
                }
                atomic_fetch_add_explicit(&e->blob->refs, 1, memory_order_relaxed);
                sn[n++] = (snap){e->key, e->blob, e->created, e->hits, e->stamp};
            }
        pthread_mutex_unlock(&s->mu);
    }
    if (n) qsort(sn, n, sizeof *sn, by_recency);
    dbuf b = {0};
    if (!oom) dbuf_room(&b, HEADER_BYTES);
    for (size_t i = 0; i < n && !oom && !b.oom; i++) {
        uint8_t *q = dbuf_room(&b, ENTRY_HEADER + sn[i].blob->len);
        if (!q) break;
        dc_put_u64le(q, sn[i].key.lo);
        dc_put_u64le(q + 8, sn[i].key.hi);
        dc_put_u64le(q + 16, dc_f64_bits(sn[i].created));
        dc_put_u32le(q + 24, sn[i].hits);
        dc_put_u32le(q + 28, (uint32_t)sn[i].blob->len);
        memcpy(q + ENTRY_HEADER, sn[i].blob->data, sn[i].blob->len);
    }
    for (size_t i = 0; i < n; i++) dc_cache_blob_release(sn[i].blob);
    free(sn);
    if (oom || b.oom || !dbuf_room(&b, 8)) {
        free(b.p);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "cache file image");
    }
    uint8_t *h = b.p;
    memcpy(h, file_magic, 8);
    dc_put_u32le(h + 8, DC_CACHE_FILE_VERSION);
    dc_put_u32le(h + 12, 0);
    dc_put_u64le(h + 16, (uint64_t)n);
    dc_put_u64le(b.p + b.len - 8, XXH3_64bits(b.p, b.len - 8));
    *out = b.p;
    *len = b.len;
    return DC_OK;
}

typedef struct pending {
    dc_hash128 key;
    double created;
    uint32_t hits;
    const uint8_t *data;
    uint32_t len;
} pending;

dc_status dc_cache_deserialize(dc_cache *c, const uint8_t *p, size_t len, size_t *loaded) {
    if (loaded) *loaded = 0;
    if (!c || (len && !p)) return dc_fail(DC_ERR_INVALID_ARGUMENT, "cache load: NULL argument");
    if (len < HEADER_BYTES + 8)
        return dc_fail(DC_ERR_SERIALIZATION, "cache file: %zu bytes is shorter than a header", len);
    if (memcmp(p, file_magic, 8) != 0)
        return dc_fail(DC_ERR_SERIALIZATION, "cache file: bad magic (not a dodeca cache file)");
    uint32_t version = dc_get_u32le(p + 8), flags = dc_get_u32le(p + 12);
    if (version != DC_CACHE_FILE_VERSION)
        return dc_fail(DC_ERR_SERIALIZATION, "cache file: version %u, this build reads %u", version,
                       DC_CACHE_FILE_VERSION);
    if (flags != 0) return dc_fail(DC_ERR_SERIALIZATION, "cache file: unknown flags 0x%x", flags);
    uint64_t want = dc_get_u64le(p + len - 8), got = XXH3_64bits(p, len - 8);
    if (want != got)
        return dc_fail(DC_ERR_SERIALIZATION,
                       "cache file: checksum mismatch (stored %016" PRIx64 ", computed %016" PRIx64 ")",
                       want, got);
    uint64_t count = dc_get_u64le(p + 16);
    size_t body_end = len - 8;
    if (count > (body_end - HEADER_BYTES) / ENTRY_HEADER)
        return dc_fail(DC_ERR_SERIALIZATION, "cache file: %" PRIu64 " entries cannot fit in %zu bytes",
                       count, len);
    pending *pe = calloc(count ? (size_t)count : 1, sizeof *pe);
    if (!pe) return dc_fail(DC_ERR_OUT_OF_MEMORY, "cache file: %" PRIu64 " entries", count);
    size_t off = HEADER_BYTES;
    dc_status st = DC_OK;
    for (uint64_t i = 0; i < count; i++) {
        if (body_end - off < ENTRY_HEADER) {
            st = dc_fail(DC_ERR_SERIALIZATION, "cache file: entry %" PRIu64 " is truncated at byte %zu", i, off);
            break;
        }
        const uint8_t *q = p + off;
        pe[i].key.lo = dc_get_u64le(q);
        pe[i].key.hi = dc_get_u64le(q + 8);
        uint64_t cb = dc_get_u64le(q + 16);
        memcpy(&pe[i].created, &cb, 8);
        pe[i].hits = dc_get_u32le(q + 24);
        pe[i].len = dc_get_u32le(q + 28);
        off += ENTRY_HEADER;
        if (!(pe[i].created == pe[i].created) || body_end - off < pe[i].len) {
            st = dc_fail(DC_ERR_SERIALIZATION, "cache file: entry %" PRIu64 " at byte %zu has a bad time or length", i, off - ENTRY_HEADER);
            break;
        }
        pe[i].data = p + off;
        if (c->opt.validate && !c->opt.validate(c->opt.validate_ctx, pe[i].data, pe[i].len)) {
            st = dc_fail(DC_ERR_SERIALIZATION, "cache file: the value of entry %" PRIu64 " at byte %zu does not decode", i, off);
            break;
        }
        off += pe[i].len;
    }
    if (st == DC_OK && off != body_end)
        st = dc_fail(DC_ERR_SERIALIZATION, "cache file: %zu bytes after the last entry", body_end - off);
    size_t n = 0;
    if (st == DC_OK) {
        double now = now_s(c);
        /* the file lists the most recent first: insert oldest first, so the recency order
         * comes back and a smaller budget keeps the most recent */
        for (uint64_t i = count; i-- > 0;) {
            if (c->opt.ttl_seconds && now - pe[i].created >= (double)c->opt.ttl_seconds) continue;
            dc_cache_blob *b = blob_new(pe[i].data, pe[i].len);
            if (!b) {
                st = dc_fail(DC_ERR_OUT_OF_MEMORY, "cache value");
                break;
            }
            insert(c, pe[i].key, b, pe[i].created, pe[i].hits);
        }
        /* count what the budgets kept */
        for (uint64_t i = 0; st == DC_OK && i < count; i++) n += dc_cache_contains(c, pe[i].key);
        dc_error_clear();
    }
    free(pe);
    if (loaded) *loaded = n;
    return st;
}

dc_status dc_cache_save(dc_cache *c, const char *path) {
    if (!c || !path || !path[0]) return dc_fail(DC_ERR_INVALID_ARGUMENT, "cache save: no path");
    uint8_t *img = NULL;
    size_t len = 0;
    dc_status st = dc_cache_serialize(c, &img, &len);
    if (st != DC_OK) return st;
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 32);
    if (!tmp) {
        free(img);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "path");
    }
    snprintf(tmp, pl + 32, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        st = dc_fail(DC_ERR_IO, "cache save: open %s: %s", tmp, strerror(errno));
        goto out;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, img + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            st = dc_fail(DC_ERR_IO, "cache save: write %s: %s", tmp, strerror(errno));
            break;
        }
        done += (size_t)w;
    }
    if (st == DC_OK && fsync(fd) != 0)
        st = dc_fail(DC_ERR_IO, "cache save: fsync %s: %s", tmp, strerror(errno));
    close(fd);
    if (st == DC_OK && rename(tmp, path) != 0)
        st = dc_fail(DC_ERR_IO, "cache save: rename %s to %s: %s", tmp, path, strerror(errno));
    if (st != DC_OK) unlink(tmp);
out:
    free(tmp);
    free(img);
    return st;
}

dc_status dc_cache_load(dc_cache *c, const char *path, size_t *loaded) {
    if (loaded) *loaded = 0;
    if (!c || !path || !path[0]) return dc_fail(DC_ERR_INVALID_ARGUMENT, "cache load: no path");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return dc_fail(DC_ERR_NOT_FOUND, "cache file %s does not exist", path);
        return dc_fail(DC_ERR_IO, "cache load: open %s: %s", path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return dc_fail(DC_ERR_IO, "cache load: %s is not a regular file", path);
    }
    size_t len = (size_t)sb.st_size;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        close(fd);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "cache load: %zu bytes", len);
    }
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    dc_status st = got == len ? dc_cache_deserialize(c, buf, len, loaded)
                              : dc_fail(DC_ERR_IO, "cache load: short read of %s", path);
    free(buf);
    if (st == DC_ERR_SERIALIZATION) {
        char detail[DC_RT_DETAIL_MAX];
        dc_rt_capture_detail(detail, sizeof detail);
        dc_rt_log(c->opt.log, DC_RT_LOG_WARN, "discarding cache file %s: %s", path, detail);
        dc_fail(st, "%s: %s", path, detail);
    }
    return st;
}

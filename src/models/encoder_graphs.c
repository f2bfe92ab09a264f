/* Recorded forwards of one encoder (encoder_graphs.h). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "models/encoder_graphs.h"

static uint64_t hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

void dc_graph_cache_init(dc_graph_cache *c, const dc_backend *be) {
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    c->off = !be || !be->ops->graph_begin;
}

static void entry_free(dc_backend *be, dc_graph_entry *e) {
    if (e->graph) be->ops->graph_destroy(be, e->graph);
    if (e->buf) be->ops->release(be, e->buf);
    free(e->key);
    memset(e, 0, sizeof *e);
}

/* An entry for a new key: a free slot, else the least recently used idle one (c->mu held). */
static dc_graph_entry *make_room(dc_graph_cache *c, dc_backend *be) {
    if (c->n < DC_GRAPH_CACHE_MAX) return &c->e[c->n++];
    dc_graph_entry *lru = NULL;
    for (uint32_t i = 0; i < c->n; i++)
        if (!c->e[i].busy && (!lru || c->e[i].last_use < lru->last_use)) lru = &c->e[i];
    if (lru) entry_free(be, lru);
    return lru;
}

/* What to do with a forward of this layout; for RECORD and REPLAY *out is the entry, busy
 * until dc_graph_use_end. */
static dc_graph_action take(dc_graph_cache *c, dc_backend *be, const void *key, size_t key_len,
                            size_t buf_bytes, dc_graph_entry **out) {
    *out = NULL;
    if (c->off || buf_bytes > DC_GRAPH_MAX_BUFFER_BYTES) return DC_GRAPH_NONE;
    const uint64_t h = hash_bytes(key, key_len);
    dc_graph_action act = DC_GRAPH_NONE;
    pthread_mutex_lock(&c->mu);
    dc_graph_entry *e = NULL;
    for (uint32_t i = 0; i < c->n && !e; i++)
        if (c->e[i].hash == h && c->e[i].key_len == key_len && !memcmp(c->e[i].key, key, key_len))
            e = &c->e[i];
    if (!e) { /* first sighting: remember the layout only */
        if ((e = make_room(c, be)) && (e->key = malloc(key_len ? key_len : 1))) {
            memcpy(e->key, key, key_len);
            e->key_len = key_len;
            e->hash = h;
            e->last_use = ++c->tick;
        } else if (e) {
            memset(e, 0, sizeof *e); /* an empty key never matches: the slot stays reusable */
        }
        goto done;
    }
    e->last_use = ++c->tick;
    if (e->busy || e->failed || c->off) goto done;
    if (!e->graph && !e->buf) {
        if (be->ops->alloc(be, buf_bytes, &e->buf) != DC_OK) {
            e->buf = NULL; /* no room: this forward runs in its own buffers */
            dc_error_clear();
            goto done;
        }
        e->buf_bytes = buf_bytes;
    }
    e->busy = true;
    act = e->graph ? DC_GRAPH_REPLAY : DC_GRAPH_RECORD;
    *out = e;
done:
    pthread_mutex_unlock(&c->mu);
    return act;
}

bool dc_graph_cache_on(const dc_graph_cache *c) { return !c->off; }

void *dc_graph_use_begin(dc_graph_cache *c, dc_backend *be, const void *key, size_t key_len,
                         size_t buf_bytes, dc_graph_use *u) {
    memset(u, 0, sizeof *u);
    u->act = take(c, be, key, key_len, buf_bytes, &u->entry);
    return u->entry ? u->entry->buf : NULL;
}

dc_status dc_graph_use_run(dc_graph_use *u, dc_backend *be, dc_graph_body body, void *ctx) {
    const dc_backend_ops *ops = be->ops;
    if (u->act == DC_GRAPH_NONE) return body(ctx);
    if (u->act == DC_GRAPH_REPLAY) return ops->graph_launch(be, u->entry->graph);
    const dc_status began = ops->graph_begin(be);
    u->off = began == DC_ERR_UNSUPPORTED_FORMAT;
    /* another thread recording on this context (DC_ERR_OVERLOADED): try again next time */
    u->failed = began != DC_OK && began != DC_ERR_OVERLOADED && !u->off;
    if (began == DC_OK) {
        const dc_status ran = body(ctx);
        const dc_status ended = ops->graph_end(be, &u->made);
        if ((ran != DC_OK || ended != DC_OK) && u->made) {
            ops->graph_destroy(be, u->made);
            u->made = NULL;
        }
        u->failed = !u->made;
    }
    if (u->made) return ops->graph_launch(be, u->made);
    dc_error_clear(); /* the recording's failure is not the forward's */
    return body(ctx);
}

void dc_graph_use_end(dc_graph_cache *c, dc_backend *be, dc_graph_use *u) {
    dc_graph_entry *e = u->entry;
    if (!e) return;
    pthread_mutex_lock(&c->mu);
    if (!e->graph) e->graph = u->made;
    if (!e->graph && (u->failed || u->off)) { /* the buffers served only this forward */
        e->failed = true;
        be->ops->release(be, e->buf);
        e->buf = NULL;
    }
    if (u->off) c->off = true;
    e->busy = false;
    pthread_mutex_unlock(&c->mu);
    u->entry = NULL;
}

void dc_graph_cache_clear(dc_graph_cache *c, dc_backend *be) {
    for (uint32_t i = 0; i < c->n; i++) entry_free(be, &c->e[i]);
    c->n = 0;
    pthread_mutex_destroy(&c->mu);
}

/* The smallest ladder length ≥ len: 8, 12, 16, 24, 32, 48, ... */
uint32_t dc_graph_bucket_len(uint32_t len) {
    uint64_t p = 8;
    while (p < len && p + p / 2 < len) p *= 2;
    const uint64_t l = p >= len ? p : p + p / 2;
    return l > UINT32_MAX ? UINT32_MAX : (uint32_t)l;
}

bool dc_graph_bucket_of(uint32_t n, const uint32_t *start, uint32_t max_len, dc_graph_bucket *out) {
    if (!n || !max_len) return false;
    uint32_t longest = 0;
    for (uint32_t s = 0; s < n; s++)
        if (start[s + 1] - start[s] > longest) longest = start[s + 1] - start[s];
    uint64_t len = dc_graph_bucket_len(longest), count = 1;
    if (len > max_len) len = max_len;
    while (count < n) count *= 2;
    if (longest > len || count * len > 2 * (uint64_t)start[n] + 64) return false;
    out->n_seqs = (uint32_t)count;
    out->len = (uint32_t)len;
    return true;
}

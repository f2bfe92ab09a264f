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

dc_graph_action dc_graph_cache_take(dc_graph_cache *c, dc_backend *be, const void *key,
                                    size_t key_len, size_t buf_bytes, dc_graph_entry **out) {
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

void dc_graph_cache_done(dc_graph_cache *c, dc_backend *be, dc_graph_entry *e, dc_graph *graph,
                         bool failed, bool off) {
    if (!e) return;
    pthread_mutex_lock(&c->mu);
    if (!e->graph) e->graph = graph;
    if (!e->graph && (failed || off)) { /* the buffers served only this forward */
        e->failed = true;
        be->ops->release(be, e->buf);
        e->buf = NULL;
    }
    if (off) c->off = true;
    e->busy = false;
    pthread_mutex_unlock(&c->mu);
}

void dc_graph_cache_clear(dc_graph_cache *c, dc_backend *be) {
    for (uint32_t i = 0; i < c->n; i++) entry_free(be, &c->e[i]);
    c->n = 0;
    pthread_mutex_destroy(&c->mu);
}

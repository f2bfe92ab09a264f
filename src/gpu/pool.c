/* Device memory pool: requests round up to a power-of-two size class (256 B and up); a released
 * block goes to its class's free list and serves the next request of that class without a
 * cudaMalloc (which synchronises the device). The cap counts bytes in use plus cached; past it,
 * or when cudaMalloc fails, the cache is returned to the driver and the request retried once,
 * then refused with DC_ERR_OUT_OF_MEMORY (never an abort).
 *
 * Streams. One pool (one cap, one set of statistics) per device, used by every stream context
 * on it through a view that names its stream. A block is released as soon as its last use is
 * enqueued, so it may still be in use on the device: it carries the view that released it.
 * The same stream may take it back at once (its later work runs after). Another stream takes
 * it only after recording an event on the releasing stream and making its own stream wait on
 * that event (cudaStreamWaitEvent: no host synchronisation; a cudaStreamSynchronize of the
 * releasing stream if either call fails). The event is recorded when the block changes
 * streams, not at every release: recording later covers at least the work enqueued before the
 * release, so it is as safe and costs nothing on the common same-stream path. A request first
 * looks for a block of its own stream (or of none: a closed context's, whose stream was
 * synchronised) and only then takes another stream's. Chosen over cudaMallocAsync and
 * cudaMemPool, whose release threshold is not a hard cap: this keeps the cap, the statistics
 * and DC_ERR_OUT_OF_MEMORY exactly as they were with one stream.
 *
 * Weights (dc_pool_weights_alloc) are cudaMalloc'ed at their exact size beside the classes: they
 * live as long as a model or a fusion version, so a power-of-two class would waste up to half.
 * They count against the same cap (st.weights), so a configured memory limit bounds both. */
#include <stdlib.h>
#include <string.h>

#include "gpu/cu_internal.h"

struct dc_pool_block {
    void *ptr;
    size_t bytes; /* the size class */
    uint32_t bucket;
    const dc_cu_pool *released_by; /* the view that released it; NULL: idle, any stream */
    dc_pool_block *next;            /* free list */
};

struct dc_pool_weights {
    void *ptr;
    size_t bytes;
    dc_pool_weights *next;
};

#define DC_POOL_MIN_SHIFT 8

uint32_t dc_pool_bucket(size_t bytes) {
    uint32_t b = 0;
    while (b + 1 < DC_POOL_BUCKETS && ((size_t)1 << (b + DC_POOL_MIN_SHIFT)) < bytes) b++;
    return b;
}

static size_t bucket_bytes(uint32_t b) { return (size_t)1 << (b + DC_POOL_MIN_SHIFT); }

static size_t hash_ptr(const void *p, size_t cap) {
    uintptr_t v = (uintptr_t)p >> 8;
    v *= (uintptr_t)0x9E3779B97F4A7C15ull;
    return (size_t)(v >> 7) & (cap - 1);
}

static dc_status live_grow(dc_cu_pool_core *p) {
    size_t cap = p->live_cap ? p->live_cap * 2 : 256;
    dc_pool_block **t = calloc(cap, sizeof *t);
    if (!t) return dc_cu_fail(DC_ERR_OUT_OF_MEMORY, "gpu pool: block table of %zu", cap);
    for (size_t i = 0; i < p->live_cap; i++) {
        dc_pool_block *b = p->live[i];
        if (!b) continue;
        size_t h = hash_ptr(b->ptr, cap);
        while (t[h]) h = (h + 1) & (cap - 1);
        t[h] = b;
    }
    free(p->live);
    p->live = t;
    p->live_cap = cap;
    return DC_OK;
}

static dc_status live_put(dc_cu_pool_core *p, dc_pool_block *b) {
    if ((p->live_n + 1) * 2 > p->live_cap) {
        dc_status st = live_grow(p);
        if (st) return st;
    }
    size_t h = hash_ptr(b->ptr, p->live_cap);
    while (p->live[h]) h = (h + 1) & (p->live_cap - 1);
    p->live[h] = b;
    p->live_n++;
    return DC_OK;
}

static dc_pool_block *live_find(const dc_cu_pool_core *p, const void *ptr) {
    if (!p->live_cap) return NULL;
    size_t h = hash_ptr(ptr, p->live_cap);
    while (p->live[h] && p->live[h]->ptr != ptr) h = (h + 1) & (p->live_cap - 1);
    return p->live[h];
}

/* Removes and returns the block of ptr (backward-shift deletion keeps probe chains intact). */
static dc_pool_block *live_take(dc_cu_pool_core *p, const void *ptr) {
    if (!p->live_cap) return NULL;
    size_t mask = p->live_cap - 1, h = hash_ptr(ptr, p->live_cap);
    while (p->live[h] && p->live[h]->ptr != ptr) h = (h + 1) & mask;
    dc_pool_block *b = p->live[h];
    if (!b) return NULL;
    p->live[h] = NULL;
    p->live_n--;
    for (size_t j = (h + 1) & mask; p->live[j]; j = (j + 1) & mask) {
        dc_pool_block *m = p->live[j];
        size_t home = hash_ptr(m->ptr, p->live_cap);
        /* move m back into the hole when the hole lies on its probe path */
        bool on_path = h <= j ? (home <= h || home > j) : (home <= h && home > j);
        if (on_path) {
            p->live[h] = m;
            p->live[j] = NULL;
            h = j;
        }
    }
    return b;
}

dc_status dc_pool_core_init(dc_cu_pool_core *p, size_t limit) {
    memset(p, 0, sizeof *p);
    if (pthread_mutex_init(&p->mu, NULL) != 0)
        return dc_cu_fail(DC_ERR_INTERNAL, "gpu pool: mutex");
    p->st.limit = limit;
    return DC_OK;
}

dc_status dc_pool_attach(dc_cu_pool *v, dc_cu_pool_core *c, cudaStream_t stream) {
    v->core = c;
    v->stream = stream;
    v->done = NULL;
    v->rec = NULL;
    cudaError_t e = cudaEventCreateWithFlags(&v->done, cudaEventDisableTiming);
    if (e != cudaSuccess) {
        v->done = NULL;
        (void)cudaGetLastError();
        return dc_cu_fail(DC_ERR_GPU, "gpu pool: stream event: %s", cudaGetErrorString(e));
    }
    return DC_OK;
}

void dc_pool_detach(dc_cu_pool *v) {
    if (!v->core) return;
    dc_cu_pool_core *p = v->core;
    pthread_mutex_lock(&p->mu);
    for (uint32_t b = 0; b < DC_POOL_BUCKETS; b++)
        for (dc_pool_block *blk = p->free_list[b]; blk; blk = blk->next)
            if (blk->released_by == v) blk->released_by = NULL; /* its stream is idle */
    pthread_mutex_unlock(&p->mu);
    if (v->done) cudaEventDestroy(v->done);
    v->done = NULL;
    v->core = NULL;
}

/* Views of one stream (a context's own and its recording copy) need no ordering between them. */
static bool same_stream(const dc_cu_pool *a, const dc_cu_pool *b) {
    return a == b || (a && b && a->stream == b->stream);
}

/* Orders v's stream after the work `from` enqueued before it released a block. */
static bool order_after(const dc_cu_pool *v, const dc_cu_pool *from) {
    cudaError_t e = from->done ? cudaEventRecord(from->done, from->stream) : cudaErrorInvalidValue;
    if (e == cudaSuccess) e = cudaStreamWaitEvent(v->stream, from->done, 0);
    if (e == cudaSuccess) return true;
    (void)cudaGetLastError();
    if (cudaStreamSynchronize(from->stream) == cudaSuccess) return true;
    (void)cudaGetLastError();
    return false;
}

/* A cached block of class b for v: its own stream's (or an idle one) first, looking at up to
 * 64 entries, else the most recently released of another stream after ordering v after it. */
static dc_pool_block *take_cached(dc_cu_pool_core *p, const dc_cu_pool *v, uint32_t b) {
    dc_pool_block **at = &p->free_list[b];
    for (int seen = 0; *at && seen < 64; at = &(*at)->next, seen++)
        if (!(*at)->released_by || same_stream((*at)->released_by, v)) break;
    if (!*at || ((*at)->released_by && !same_stream((*at)->released_by, v))) {
        at = &p->free_list[b];
        if (!*at || !order_after(v, (*at)->released_by)) return NULL;
        p->st.cross_stream++;
    }
    dc_pool_block *blk = *at;
    *at = blk->next;
    blk->next = NULL;
    blk->released_by = NULL;
    return blk;
}

static void free_cached(dc_cu_pool_core *p) {
    for (uint32_t b = 0; b < DC_POOL_BUCKETS; b++) {
        while (p->free_list[b]) {
            dc_pool_block *blk = p->free_list[b];
            p->free_list[b] = blk->next;
            cudaFree(blk->ptr);
            p->st.cached -= blk->bytes;
            free(blk);
        }
    }
}

/* cudaFree waits for the device to be idle, so blocks still used by a stream are safe here. */
void dc_pool_core_destroy(dc_cu_pool_core *p) {
    free_cached(p);
    for (size_t i = 0; i < p->live_cap; i++)
        if (p->live[i]) {
            cudaFree(p->live[i]->ptr);
            free(p->live[i]);
        }
    free(p->live);
    while (p->weights) {
        dc_pool_weights *w = p->weights;
        p->weights = w->next;
        cudaFree(w->ptr);
        free(w);
    }
    pthread_mutex_destroy(&p->mu);
    memset(p, 0, sizeof *p);
}

static void note_peak(dc_cu_pool_core *p) {
    size_t total = p->st.in_use + p->st.cached + p->st.weights;
    if (total > p->st.peak) p->st.peak = total;
}

static dc_status rec_add(dc_pool_rec *r, void *ptr, uint32_t bucket, uint8_t state) {
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 64;
        dc_pool_rec_entry *e = realloc(r->e, cap * sizeof *e);
        if (!e) return dc_cu_fail(DC_ERR_OUT_OF_MEMORY, "gpu pool: recording of %zu blocks", cap);
        r->e = e;
        r->cap = cap;
    }
    r->e[r->n++] = (dc_pool_rec_entry){ptr, bucket, state};
    r->bytes += bucket_bytes(bucket);
    return DC_OK;
}

static dc_pool_rec_entry *rec_find(dc_pool_rec *r, const void *ptr) {
    for (size_t i = r->n; i-- > 0;)
        if (r->e[i].ptr == ptr) return &r->e[i];
    return NULL;
}

/* kept: for a recording, a block of its own that no earlier op of the graph used either */
static dc_status pool_alloc(dc_cu_pool *v, size_t bytes, bool kept, void **out) {
    *out = NULL;
    dc_cu_pool_core *p = v->core;
    uint32_t b = dc_pool_bucket(bytes ? bytes : 1);
    size_t cls = bucket_bytes(b);
    if (cls < bytes) return dc_cu_fail(DC_ERR_OUT_OF_MEMORY, "gpu pool: %zu bytes", bytes);
    if (v->rec && !kept) /* a block this recording released (its last use is earlier in the graph) */
        for (size_t i = 0; i < v->rec->n; i++)
            if (v->rec->e[i].state == DC_REC_FREE && v->rec->e[i].bucket == b) {
                v->rec->e[i].state = DC_REC_BUSY;
                *out = v->rec->e[i].ptr;
                return DC_OK;
            }
    dc_status st = DC_OK;
    pthread_mutex_lock(&p->mu);
    dc_pool_block *blk = take_cached(p, v, b);
    if (blk) {
        p->st.cached -= blk->bytes;
        p->st.hits++;
    } else {
        /* a recording never frees the cache: cudaFree waits for the device, which a stream
         * being captured does not allow */
        const size_t held = p->st.in_use + p->st.weights + (v->rec ? p->st.cached : 0);
        if (p->st.limit && held + p->st.cached + cls > p->st.limit && !v->rec) free_cached(p);
        if (p->st.limit && (cls > p->st.limit || held > p->st.limit - cls)) {
            p->st.failures++;
            st = dc_cu_fail(DC_ERR_OUT_OF_MEMORY,
                            "gpu pool: %zu bytes requested (class %zu) with %zu of %zu in use "
                            "(%zu of them weights)%s",
                            bytes, cls, held, p->st.limit, p->st.weights,
                            v->rec ? " while recording a graph" : "");
            goto done;
        }
        blk = calloc(1, sizeof *blk);
        if (!blk) {
            st = dc_cu_fail(DC_ERR_OUT_OF_MEMORY, "gpu pool: block record");
            goto done;
        }
        cudaError_t e = cudaMalloc(&blk->ptr, cls);
        if (e != cudaSuccess && !v->rec) {
            (void)cudaGetLastError(); /* clear it: an allocation failure is not sticky */
            free_cached(p);
            e = cudaMalloc(&blk->ptr, cls);
        }
        if (e != cudaSuccess) {
            (void)cudaGetLastError();
            free(blk);
            p->st.failures++;
            st = dc_cu_fail(DC_ERR_OUT_OF_MEMORY, "gpu pool: cudaMalloc of %zu bytes: %s", cls,
                            cudaGetErrorString(e));
            goto done;
        }
        blk->bytes = cls;
        blk->bucket = b;
        p->st.misses++;
    }
    if ((st = live_put(p, blk)) != DC_OK) {
        blk->next = p->free_list[b];
        p->free_list[b] = blk;
        p->st.cached += blk->bytes;
        goto done;
    }
    p->st.in_use += blk->bytes;
    note_peak(p);
    *out = blk->ptr;
done:
    pthread_mutex_unlock(&p->mu);
    if (!st && v->rec && (st = rec_add(v->rec, *out, b, kept ? DC_REC_KEPT : DC_REC_BUSY))) {
        dc_pool_release(v->rec->home, *out); /* nothing used it yet */
        *out = NULL;
    }
    return st;
}

dc_status dc_pool_alloc(dc_cu_pool *v, size_t bytes, void **out) {
    return pool_alloc(v, bytes, false, out);
}

dc_status dc_pool_alloc_kept(dc_cu_pool *v, size_t bytes, void **out) {
    return pool_alloc(v, bytes, true, out);
}

void dc_pool_release(dc_cu_pool *v, void *ptr) {
    if (!ptr) return;
    if (v->rec) {
        /* the graph may use it: it stays with the recording (a block from before the
         * recording joins it) */
        dc_pool_rec_entry *e = rec_find(v->rec, ptr);
        if (e && e->state == DC_REC_BUSY) e->state = DC_REC_FREE;
        if (e) return;
        pthread_mutex_lock(&v->core->mu);
        const dc_pool_block *blk = live_find(v->core, ptr);
        const uint32_t bucket = blk ? blk->bucket : 0;
        pthread_mutex_unlock(&v->core->mu);
        if (blk && rec_add(v->rec, ptr, bucket, DC_REC_FREE) == DC_OK) return;
        /* not a pool block, or no room to remember it: hold on to it (leaked until the
         * context closes) rather than let the pool hand out memory the graph may use */
        return;
    }
    dc_cu_pool_core *p = v->core;
    pthread_mutex_lock(&p->mu);
    dc_pool_block *blk = live_take(p, ptr);
    if (blk) {
        p->st.in_use -= blk->bytes;
        p->st.cached += blk->bytes;
        blk->released_by = v;
        blk->next = p->free_list[blk->bucket];
        p->free_list[blk->bucket] = blk;
    }
    pthread_mutex_unlock(&p->mu);
}

void dc_pool_rec_end(dc_pool_rec *r) {
    size_t j = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (r->e[i].state == DC_REC_BUSY) r->bytes -= bucket_bytes(r->e[i].bucket);
        else r->e[j++] = r->e[i];
    }
    r->n = j;
}

void dc_pool_rec_free(dc_pool_rec *r) {
    for (size_t i = 0; i < r->n; i++) dc_pool_release(r->home, r->e[i].ptr);
    free(r->e);
    memset(r, 0, sizeof *r);
}

void dc_pool_trim(dc_cu_pool *v) {
    dc_cu_pool_core *p = v->core;
    pthread_mutex_lock(&p->mu);
    free_cached(p);
    pthread_mutex_unlock(&p->mu);
}

void dc_pool_stats(dc_cu_pool *v, dc_cuda_pool_stats *out) {
    dc_cu_pool_core *p = v->core;
    pthread_mutex_lock(&p->mu);
    *out = p->st;
    pthread_mutex_unlock(&p->mu);
}

dc_status dc_pool_weights_alloc(dc_cu_pool *v, size_t bytes, void **out) {
    *out = NULL;
    dc_cu_pool_core *p = v->core;
    if (!bytes) bytes = 1;
    dc_pool_weights *w = calloc(1, sizeof *w);
    if (!w) return dc_cu_fail(DC_ERR_OUT_OF_MEMORY, "gpu weights: record");
    dc_status st = DC_OK;
    pthread_mutex_lock(&p->mu);
    const size_t held = p->st.in_use + p->st.weights;
    if (p->st.limit && held + p->st.cached + bytes > p->st.limit) free_cached(p);
    if (p->st.limit && (bytes > p->st.limit || held > p->st.limit - bytes)) {
        p->st.failures++;
        st = dc_cu_fail(DC_ERR_OUT_OF_MEMORY,
                        "gpu weights: %zu bytes requested with %zu of %zu in use (pool %zu, "
                        "weights %zu)",
                        bytes, held, p->st.limit, p->st.in_use, p->st.weights);
        goto done;
    }
    cudaError_t e = cudaMalloc(&w->ptr, bytes);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        free_cached(p);
        e = cudaMalloc(&w->ptr, bytes);
    }
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        p->st.failures++;
        st = dc_cu_fail(DC_ERR_OUT_OF_MEMORY, "gpu weights: cudaMalloc of %zu bytes: %s", bytes,
                        cudaGetErrorString(e));
        goto done;
    }
    w->bytes = bytes;
    w->next = p->weights;
    p->weights = w;
    p->st.weights += bytes;
    note_peak(p);
    *out = w->ptr;
    w = NULL;
done:
    pthread_mutex_unlock(&p->mu);
    free(w);
    return st;
}

bool dc_pool_weights_free(dc_cu_pool *v, void *ptr) {
    if (!ptr) return true;
    dc_cu_pool_core *p = v->core;
    pthread_mutex_lock(&p->mu);
    dc_pool_weights **at = &p->weights;
    while (*at && (*at)->ptr != ptr) at = &(*at)->next;
    dc_pool_weights *w = *at;
    if (w) {
        *at = w->next;
        p->st.weights -= w->bytes;
        cudaFree(w->ptr);
    }
    pthread_mutex_unlock(&p->mu);
    free(w);
    return w != NULL;
}

/* Recorded forwards (CUDA graphs) of one encoder, keyed by the batch's layout.
 *
 * A forward whose layout (sequence offsets, key mask) was seen before is recorded once through
 * dc_backend_ops.graph_begin/end and replayed after. The graph keeps the pointers it was
 * recorded with, so each entry owns the forward's activation buffers; the token ids are not
 * part of the key (the embedding sum that reads them runs before the graph, into those
 * buffers). Recording waits for a second sighting, so one-off layouts cost nothing; at most
 * DC_GRAPH_CACHE_MAX layouts are kept, the least recently used making room. */
#ifndef DC_MODELS_ENCODER_GRAPHS_H
#define DC_MODELS_ENCODER_GRAPHS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tensor/backend.h"

#define DC_GRAPH_CACHE_MAX 16
/* Forwards whose activations need more than this run without graphs: launch overhead is a
 * small share of their time, and each graph holds its buffers while it lives. */
#define DC_GRAPH_MAX_BUFFER_BYTES ((size_t)64 << 20)

typedef struct dc_graph_entry {
    uint8_t *key;
    size_t key_len;
    uint64_t hash;
    dc_graph *graph; /* NULL until recorded */
    void *buf;       /* the forward's activations, the graph's inputs and outputs */
    size_t buf_bytes;
    uint64_t last_use;
    bool busy;   /* a forward is using it (another one with this layout runs without it) */
    bool failed; /* recording failed: this layout runs without a graph */
} dc_graph_entry;

typedef struct dc_graph_cache {
    pthread_mutex_t mu;
    dc_graph_entry e[DC_GRAPH_CACHE_MAX];
    uint32_t n;
    uint64_t tick;
    _Atomic bool off; /* the backend has no graphs, or they are turned off for it */
} dc_graph_cache;

typedef enum dc_graph_action {
    DC_GRAPH_NONE = 0, /* run the ops directly, in the caller's own buffers */
    DC_GRAPH_RECORD,   /* record the ops into the entry (its buffers), then launch */
    DC_GRAPH_REPLAY,   /* launch entry->graph after writing the inputs into its buffers */
} dc_graph_action;

void dc_graph_cache_init(dc_graph_cache *c, const dc_backend *be);
/* What to do with a forward of this layout needing buf_bytes of activations. For RECORD and
 * REPLAY *out is the entry (with its buffers), busy until dc_graph_cache_done. */
dc_graph_action dc_graph_cache_take(dc_graph_cache *c, dc_backend *be, const void *key,
                                    size_t key_len, size_t buf_bytes, dc_graph_entry **out);
/* Whether the cache may record at all (false: the backend has no graphs or refused them). */
bool dc_graph_cache_on(const dc_graph_cache *c);
/* Ends a forward's use of e (NULL: nothing). graph: what its recording made, kept by the entry.
 * failed: the recording failed (the layout then runs without a graph from now on). off: the
 * backend refused graphs (every layout does). Neither (e.g. another thread was recording):
 * the next forward of the layout tries again. */
void dc_graph_cache_done(dc_graph_cache *c, dc_backend *be, dc_graph_entry *e, dc_graph *graph,
                         bool failed, bool off);
/* Destroys every graph and buffer (the model is closing). */
void dc_graph_cache_clear(dc_graph_cache *c, dc_backend *be);

#endif

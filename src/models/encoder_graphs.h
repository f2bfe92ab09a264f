/* Recorded forwards (CUDA graphs) of one encoder, keyed by the batch's layout.
 *
 * A forward whose layout (sequence offsets, whether there is a key mask, ...) was seen before
 * is recorded once through dc_backend_ops.graph_begin/end and replayed after. The graph keeps
 * the pointers it was recorded with, so each entry owns the forward's activation buffers; the
 * token ids and the key mask are not part of the key (the embedding sum that reads the ids
 * runs before the graph, into those buffers, and the mask is copied there). Recording waits for a second sighting, so one-off layouts cost nothing; at most
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
/* Whether the cache may record at all (false: the backend has no graphs or refused them). */
bool dc_graph_cache_on(const dc_graph_cache *c);

/* One forward's use of the cache:
 *   buf = dc_graph_use_begin(...)      the layout's buffers (NULL: use the caller's own)
 *   (write the inputs into the buffers)
 *   st = dc_graph_use_run(...)         the layers: directly, recorded then launched, or replayed
 *   (read the outputs: a download)
 *   dc_graph_use_end(...)              the buffers are free for the layout's next forward */
typedef struct dc_graph_use {
    dc_graph_entry *entry;
    dc_graph_action act;
    dc_graph *made; /* what this forward's recording made */
    bool failed;    /* its recording failed: the layout runs without a graph from now on */
    bool off;       /* the backend refused graphs: every layout does */
} dc_graph_use;

typedef dc_status (*dc_graph_body)(void *ctx);

/* The layout's buffers of buf_bytes for this forward, or NULL when it runs without a graph
 * (first sighting, graphs off, too large, the entry busy with another forward, ...). */
void *dc_graph_use_begin(dc_graph_cache *c, dc_backend *be, const void *key, size_t key_len,
                         size_t buf_bytes, dc_graph_use *u);
/* body(ctx) as u says. A recording that fails ran nothing, so the inputs are still in the
 * buffers: the body then runs directly, and its status is the forward's. */
dc_status dc_graph_use_run(dc_graph_use *u, dc_backend *be, dc_graph_body body, void *ctx);
void dc_graph_use_end(dc_graph_cache *c, dc_backend *be, dc_graph_use *u);
/* Destroys every graph and buffer (the model is closing). */
void dc_graph_cache_clear(dc_graph_cache *c, dc_backend *be);

/* Padded layouts, so that layouts recur. Real traffic rarely sends the same token counts
 * twice, so a graph keyed by exact offsets would seldom be replayed. Where graphs are on, a
 * small batch is padded: every sequence to one length from the ladder 8, 12, 16, 24, 32, 48,
 * 64, 96, ... (two steps per doubling, at most max_len), and the sequence count to a power
 * of two. The pad rows are masked keys (or, under causal attention, never seen), so the real
 * rows are what an unpadded forward computes, up to the order of additions in the kernels. */
typedef struct dc_graph_bucket {
    uint32_t n_seqs; /* sequences after padding (≥ the batch's) */
    uint32_t len;    /* rows of every sequence after padding */
} dc_graph_bucket;

/* The ladder length a sequence of len rows is padded to (8 for len ≤ 8). */
uint32_t dc_graph_bucket_len(uint32_t len);

/* The bucket of a batch of n sequences (offsets start[0..n]), or false when it should run
 * unpadded: a sequence longer than max_len's bucket, or padding that would more than double
 * the rows (plus 64). */
bool dc_graph_bucket_of(uint32_t n, const uint32_t *start, uint32_t max_len, dc_graph_bucket *out);

#endif

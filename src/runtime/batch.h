/* Per-model batch queues with dynamic batching (seed L16, L17). Internal header.
 *
 * A request becomes one dc_job per model it needs; jobs of one request (or of one embed_batch
 * call) share a dc_job_group that owns deep copies of the inputs, so a caller that gives up can
 * return at once: its jobs are marked cancelled, dropped if still queued, and their results
 * thrown away if already running.
 *
 * Each queue has two threads: a dispatcher that forms the next batch (FIFO, up to
 * max_batch_size items and max_tokens_per_batch estimated tokens, then sorted by length) while
 * the executor runs the previous one. A batch is formed when the queue holds a full batch or a
 * full token budget, when the oldest item has waited max_wait_ms, or — with dynamic batching —
 * as soon as the executor is idle and min_batch_size items wait (so an idle system adds no
 * latency and a busy one batches). A full queue refuses new work with DC_ERR_OVERLOADED. */
#ifndef DC_RUNTIME_BATCH_H
#define DC_RUNTIME_BATCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dodeca/types.h"
#include "runtime/registry.h"
#include "runtime/rt.h"
#include "text/tokenizer.h"

typedef enum dc_job_state {
    DC_JOB_QUEUED = 0,
    DC_JOB_RUNNING = 1,
    DC_JOB_DONE = 2,
    DC_JOB_CANCELLED = 3,
} dc_job_state;

typedef struct dc_job_group dc_job_group;

typedef struct dc_job {
    dc_job_group *group;
    const dc_input *input;  /* points into the group's copies */
    size_t input_index;
    dc_model_id model;
    uint32_t est_tokens;
    bool want_aux;          /* E6 sparse weights / E12 token matrix as well */
    /* the input tokenised for this model by the request (the tokenise stage; optional):
     * used when the instance that runs it has pre_version, else the model tokenises */
    dc_encoding pre_enc[2];
    uint32_t pre_n;
    dc_hash128 pre_version;
    _Atomic int state;      /* dc_job_state */
    /* written by the executor before the job turns DONE */
    dc_status status;
    char detail[DC_RT_DETAIL_MAX];
    dc_model_embedding emb;
    dc_sparse_vector sparse;
    dc_token_matrix colbert;
    dc_hash128 version;     /* weights that produced it */
    uint64_t t_submit_ns, t_start_ns, t_end_ns;
    uint32_t batch_size;
} dc_job;

struct dc_job_group {
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* signalled when a job finishes */
    uint32_t refs;          /* the owner + one per job held by a queue */
    uint32_t pending;       /* jobs not finished */
    dc_input *inputs;       /* deep copies */
    size_t ninputs;
    dc_job *jobs;
    size_t njobs;
    void *arena;
};

/* A group holding copies of `inputs` and room for `njobs` jobs (zeroed; the caller fills
 * model, input, est_tokens, want_aux). The caller holds one reference. */
dc_status dc_job_group_create(const dc_input *inputs, size_t ninputs, size_t njobs,
                              dc_job_group **out);
/* Marks every unfinished job cancelled and drops the owner's reference. Finished jobs' results
 * must have been taken (or are freed here). */
void dc_job_group_abandon(dc_job_group *g);
/* Waits until every job finished or until abs_ns (monotonic); returns the number unfinished.
 * Call with g->mu held. */
uint32_t dc_job_group_wait_locked(dc_job_group *g, uint64_t abs_ns);
/* Frees a job's outputs. */
void dc_job_free_outputs(dc_job *j);

/* Estimated tokens of an input for a model (seed L16: text len/4+1, code len/3+1, other 100),
 * capped by the model's limit. */
uint32_t dc_estimate_tokens(const dc_input *in, dc_model_id id);

typedef struct dc_batch_options {
    uint32_t max_batch_size;       /* >= 1 */
    uint32_t min_batch_size;       /* >= 1 */
    uint32_t max_wait_ms;
    uint32_t max_tokens_per_batch; /* 0 = no token budget */
    uint32_t queue_capacity;       /* >= 1 */
    bool sort_by_length;
    bool dynamic;                  /* dispatch at once when the executor is idle */
} dc_batch_options;

typedef struct dc_batch_stats {
    atomic_uint_fast64_t submitted, completed, failed, cancelled_dropped, cancelled_discarded;
    atomic_uint_fast64_t overloaded, batches, batch_items, max_batch_seen;
    atomic_uint_fast64_t load_ns_total; /* time the executor waited for model loads */
    dc_hist queue_us;                   /* submit → start of forward, per item */
    dc_hist forward_us;                 /* per batch */
    dc_hist batch_size;                 /* items per batch */
} dc_batch_stats;

typedef struct dc_batch_queue dc_batch_queue;

dc_status dc_batch_queue_create(dc_model_id id, const dc_batch_options *opt, dc_registry *reg,
                                dc_rt_logger *log, dc_batch_queue **out);
/* Stops accepting work, fails what is queued (DC_ERR_NOT_INITIALIZED: shutting down), lets the
 * running batch finish, joins the threads. */
void dc_batch_queue_destroy(dc_batch_queue *q);

/* Queues n jobs (all or none). Each queued job holds a reference on its group. */
dc_status dc_batch_submit(dc_batch_queue *q, dc_job *const *jobs, size_t n);

/* Live statistics, read with dc_rt_get / dc_hist_*. */
const dc_batch_stats *dc_batch_queue_stats(dc_batch_queue *q);
uint32_t dc_batch_queue_depth(dc_batch_queue *q);
bool dc_batch_queue_busy(dc_batch_queue *q);
/* Nanoseconds this queue has spent loading its model so far, including a load running now. */
uint64_t dc_batch_queue_load_ns(dc_batch_queue *q);
bool dc_batch_queue_loading(dc_batch_queue *q);

#endif

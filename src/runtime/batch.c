/* Batch queues: a dispatcher forms batches while an executor runs the previous one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/pretrained.h"
#include "runtime/batch.h"

/* ---- job groups ---- */

static size_t cstr_size(const char *s) { return s ? strlen(s) + 1 : 0; }

static char *arena_put(char **at, const void *src, size_t n) {
    if (!src || !n) return NULL;
    char *dst = *at;
    memcpy(dst, src, n);
    *at += n;
    return dst;
}

dc_status dc_job_group_create(const dc_input *inputs, size_t ninputs, size_t njobs,
                              dc_job_group **out) {
    *out = NULL;
    size_t bytes = 0;
    for (size_t i = 0; i < ninputs; i++) {
        const dc_input *in = &inputs[i];
        bytes += in->content_len + 1 + cstr_size(in->instruction) + cstr_size(in->language) +
                 in->bytes_len;
    }
    dc_job_group *g = calloc(1, sizeof *g);
    dc_input *cp = calloc(ninputs ? ninputs : 1, sizeof *cp);
    dc_job *jobs = calloc(njobs ? njobs : 1, sizeof *jobs);
    char *arena = malloc(bytes ? bytes : 1);
    if (!g || !cp || !jobs || !arena) {
        free(g);
        free(cp);
        free(jobs);
        free(arena);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "request of %zu inputs (%zu bytes)", ninputs, bytes);
    }
    if (pthread_mutex_init(&g->mu, NULL) != 0 || dc_rt_cond_init(&g->cv) != 0) {
        free(g);
        free(cp);
        free(jobs);
        free(arena);
        return dc_fail(DC_ERR_INTERNAL, "request: cannot create a mutex");
    }
    char *at = arena;
    for (size_t i = 0; i < ninputs; i++) {
        const dc_input *in = &inputs[i];
        cp[i] = *in;
        /* content is NUL-terminated in the copy, whatever the caller passed */
        char *c = at;
        if (in->content_len) memcpy(c, in->content, in->content_len);
        c[in->content_len] = 0;
        at += in->content_len + 1;
        cp[i].content = in->content ? c : NULL;
        cp[i].instruction = arena_put(&at, in->instruction, cstr_size(in->instruction));
        cp[i].language = arena_put(&at, in->language, cstr_size(in->language));
        cp[i].bytes = (const uint8_t *)arena_put(&at, in->bytes, in->bytes_len);
    }
    g->refs = 1;
    g->inputs = cp;
    g->ninputs = ninputs;
    g->jobs = jobs;
    g->njobs = njobs;
    g->arena = arena;
    for (size_t j = 0; j < njobs; j++) {
        jobs[j].group = g;
        atomic_init(&jobs[j].state, DC_JOB_QUEUED);
    }
    *out = g;
    return DC_OK;
}

void dc_job_free_outputs(dc_job *j) {
    dc_model_embedding_free(&j->emb);
    dc_sparse_vector_free(&j->sparse);
    dc_token_matrix_free(&j->colbert);
}

static void group_free(dc_job_group *g) {
    for (size_t j = 0; j < g->njobs; j++) {
        dc_job_free_outputs(&g->jobs[j]);
        dc_encoding_free(&g->jobs[j].pre_enc[0]);
        dc_encoding_free(&g->jobs[j].pre_enc[1]);
    }
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g->jobs);
    free(g->inputs);
    free(g->arena);
    free(g);
}

static void group_unref(dc_job_group *g, uint32_t n) {
    pthread_mutex_lock(&g->mu);
    g->refs -= n;
    bool last = g->refs == 0;
    pthread_mutex_unlock(&g->mu);
    if (last) group_free(g);
}

void dc_job_group_abandon(dc_job_group *g) {
    if (!g) return;
    pthread_mutex_lock(&g->mu);
    for (size_t j = 0; j < g->njobs; j++) {
        int s = atomic_load(&g->jobs[j].state);
        if (s == DC_JOB_QUEUED || s == DC_JOB_RUNNING)
            atomic_store(&g->jobs[j].state, DC_JOB_CANCELLED);
    }
    pthread_mutex_unlock(&g->mu);
    group_unref(g, 1);
}

uint32_t dc_job_group_wait_locked(dc_job_group *g, uint64_t abs_ns) {
    while (g->pending > 0 && dc_rt_now_ns() < abs_ns) dc_rt_cond_wait_until(&g->cv, &g->mu, abs_ns);
    return g->pending;
}

/* Publishes a job's result (or discards it when the owner gave up) and drops the queue's
 * reference. */
static void job_finish(dc_batch_queue *q, dc_job *j);

uint32_t dc_estimate_tokens(const dc_input *in, dc_model_id id) {
    const dc_model_info *info = dc_model_info_get(id);
    uint64_t t;
    if (in->type == DC_INPUT_TEXT) t = in->content_len / 4 + 1;
    else if (in->type == DC_INPUT_CODE) t = in->content_len / 3 + 1;
    else t = 100;
    if (info && info->max_tokens && t > info->max_tokens) t = info->max_tokens;
    return (uint32_t)t;
}

/* ---- queue ---- */

struct dc_batch_queue {
    dc_model_id id;
    dc_batch_options opt;
    dc_registry *reg;
    dc_rt_logger *log;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* any change: new work, batch taken, executor idle, stop */
    dc_job **ring;
    size_t head, count, cap;
    uint64_t queued_tokens;
    dc_job **ready;    /* the batch formed for the executor (ready_n = 0: none) */
    size_t ready_n;
    bool busy, stop, dispatcher_done, loading;
    uint64_t loading_since_ns;
    dc_job **drop;             /* dispatcher scratch: cap entries */
    dc_job **xdrop;            /* executor scratch: cap entries */
    dc_job **mine;             /* executor scratch: max_batch_size entries each */
    dc_input *ins;
    dc_model_embedding *outs;
    pthread_t dispatcher, executor;
    int threads; /* started: 0, 1 (dispatcher) or 2 */
    dc_batch_stats st;
};

const dc_batch_stats *dc_batch_queue_stats(dc_batch_queue *q) { return &q->st; }

uint32_t dc_batch_queue_depth(dc_batch_queue *q) {
    pthread_mutex_lock(&q->mu);
    uint32_t d = (uint32_t)(q->count + q->ready_n);
    pthread_mutex_unlock(&q->mu);
    return d;
}

bool dc_batch_queue_busy(dc_batch_queue *q) {
    pthread_mutex_lock(&q->mu);
    bool b = q->busy;
    pthread_mutex_unlock(&q->mu);
    return b;
}

bool dc_batch_queue_loading(dc_batch_queue *q) {
    pthread_mutex_lock(&q->mu);
    bool l = q->loading;
    pthread_mutex_unlock(&q->mu);
    return l;
}

uint64_t dc_batch_queue_load_ns(dc_batch_queue *q) {
    pthread_mutex_lock(&q->mu);
    uint64_t t = dc_rt_get(&q->st.load_ns_total);
    if (q->loading) t += dc_rt_now_ns() - q->loading_since_ns;
    pthread_mutex_unlock(&q->mu);
    return t;
}

/* Hands a job back to its group. `dropped`: a cancelled job that never ran (counted as
 * dropped, not as a discarded result). */
static void job_finish_ex(dc_batch_queue *q, dc_job *j, bool dropped) {
    dc_job_group *g = j->group;
    pthread_mutex_lock(&g->mu);
    int s = atomic_load(&j->state);
    if (s == DC_JOB_CANCELLED) {
        dc_job_free_outputs(j);
        dc_rt_add(dropped ? &q->st.cancelled_dropped : &q->st.cancelled_discarded, 1);
    } else {
        atomic_store(&j->state, DC_JOB_DONE);
        if (g->pending) g->pending--;
        dc_rt_add(j->status == DC_OK ? &q->st.completed : &q->st.failed, 1);
        pthread_cond_broadcast(&g->cv);
    }
    g->refs--;
    bool last = g->refs == 0;
    pthread_mutex_unlock(&g->mu);
    if (last) group_free(g);
}

static void job_finish(dc_batch_queue *q, dc_job *j) { job_finish_ex(q, j, false); }

static void job_drop(dc_batch_queue *q, dc_job *j) { job_finish_ex(q, j, true); }

static void job_fail(dc_batch_queue *q, dc_job *j, dc_status st, const char *detail) {
    dc_job_free_outputs(j);
    j->status = st;
    snprintf(j->detail, sizeof j->detail, "%s", detail);
    j->t_end_ns = dc_rt_now_ns();
    job_finish(q, j);
}

dc_status dc_batch_submit(dc_batch_queue *q, dc_job *const *jobs, size_t n) {
    if (!q || (n && !jobs)) return dc_fail(DC_ERR_INVALID_ARGUMENT, "submit: NULL argument");
    if (!n) return DC_OK;
    const dc_model_info *info = dc_model_info_get(q->id);
    /* the group references first, so a job can finish the moment it is queued */
    for (size_t i = 0; i < n; i++) {
        dc_job_group *g = jobs[i]->group;
        pthread_mutex_lock(&g->mu);
        g->refs++;
        g->pending++;
        pthread_mutex_unlock(&g->mu);
    }
    uint64_t now = dc_rt_now_ns();
    pthread_mutex_lock(&q->mu);
    dc_status st = DC_OK;
    if (q->stop) {
        st = dc_fail(DC_ERR_NOT_INITIALIZED, "%s queue is shutting down", info->label);
    } else if (n > q->cap - (q->count + q->ready_n)) {
        /* waiting = queued + formed but not yet running */
        dc_rt_add(&q->st.overloaded, 1);
        st = dc_fail(DC_ERR_OVERLOADED, "%s queue is full (%zu of %zu waiting); retry later",
                     info->label, q->count + q->ready_n, q->cap);
    }
    if (st == DC_OK) {
        for (size_t i = 0; i < n; i++) {
            dc_job *j = jobs[i];
            j->t_submit_ns = now;
            q->ring[(q->head + q->count) % q->cap] = j;
            q->count++;
            q->queued_tokens += j->est_tokens;
        }
        dc_rt_add(&q->st.submitted, n);
        pthread_cond_broadcast(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    if (st != DC_OK) {
        for (size_t i = 0; i < n; i++) {
            dc_job_group *g = jobs[i]->group;
            pthread_mutex_lock(&g->mu);
            g->refs--;
            g->pending--;
            pthread_mutex_unlock(&g->mu);
        }
    }
    return st;
}

static int by_tokens(const void *a, const void *b) {
    const dc_job *x = *(dc_job *const *)a, *y = *(dc_job *const *)b;
    return x->est_tokens < y->est_tokens ? -1 : x->est_tokens > y->est_tokens ? 1 : 0;
}

/* Moves the next batch from the ring into q->ready (lock held). Cancelled jobs met on the way
 * go to `drop`, to be released outside the lock. */
static void form_batch(dc_batch_queue *q, dc_job **drop, size_t *ndrop) {
    uint64_t tokens = 0;
    size_t n = 0;
    *ndrop = 0;
    while (q->count && n < q->opt.max_batch_size) {
        dc_job *j = q->ring[q->head];
        if (atomic_load(&j->state) == DC_JOB_CANCELLED) {
            drop[(*ndrop)++] = j;
        } else {
            if (n && q->opt.max_tokens_per_batch &&
                tokens + j->est_tokens > q->opt.max_tokens_per_batch)
                break;
            tokens += j->est_tokens;
            q->ready[n++] = j;
        }
        q->queued_tokens -= j->est_tokens;
        q->head = (q->head + 1) % q->cap;
        q->count--;
    }
    /* length-sorted: neighbours pad alike when the model packs the batch */
    if (q->opt.sort_by_length && n > 1) qsort(q->ready, n, sizeof *q->ready, by_tokens);
    q->ready_n = n;
}

static void *dispatcher_main(void *p) {
    dc_batch_queue *q = p;
    dc_job **drop = q->drop;
    pthread_mutex_lock(&q->mu);
    while (!q->stop) {
        if (q->ready_n || q->count == 0) {
            pthread_cond_wait(&q->cv, &q->mu);
            continue;
        }
        uint64_t now = dc_rt_now_ns();
        uint64_t due = q->ring[q->head]->t_submit_ns + (uint64_t)q->opt.max_wait_ms * 1000000ull;
        bool full = q->count >= q->opt.max_batch_size ||
                    (q->opt.max_tokens_per_batch && q->queued_tokens >= q->opt.max_tokens_per_batch);
        /* an idle executor takes work itself (one thread hop less); this thread prepares the
         * next batch while the executor runs, or flushes on size and age */
        bool idle_go = q->opt.dynamic && !q->busy && q->count >= q->opt.min_batch_size;
        if (idle_go) {
            pthread_cond_wait(&q->cv, &q->mu);
            continue;
        }
        if (!(full || now >= due)) {
            dc_rt_cond_wait_until(&q->cv, &q->mu, due);
            continue;
        }
        size_t ndrop = 0;
        form_batch(q, drop, &ndrop);
        if (q->ready_n) pthread_cond_broadcast(&q->cv);
        if (ndrop) {
            pthread_mutex_unlock(&q->mu);
            for (size_t i = 0; i < ndrop; i++) {
                job_drop(q, drop[i]);
            }
            pthread_mutex_lock(&q->mu);
        }
    }
    q->stop = true;
    q->dispatcher_done = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

/* Per-batch arguments of dc_pretrained_embed_ex: each job's shared tokenization (when it was
 * made for this instance), whether it wants E6/E12 extras, room for those. */
typedef struct ex_args {
    dc_pretokenized *pre;
    bool *want;
    dc_sparse_vector *sparse;
    dc_token_matrix *rows;
} ex_args;

static bool ex_args_make(dc_batch_queue *q, const dc_rt_model *m, dc_job **jobs, size_t n,
                         ex_args *a) {
    memset(a, 0, sizeof *a);
    a->pre = calloc(n, sizeof *a->pre);
    a->want = calloc(n, sizeof *a->want);
    if (q->id == DC_MODEL_SPARSE) a->sparse = calloc(n, sizeof *a->sparse);
    if (q->id == DC_MODEL_LATE_INTERACTION) a->rows = calloc(n, sizeof *a->rows);
    if (!a->pre || !a->want || (q->id == DC_MODEL_SPARSE && !a->sparse) ||
        (q->id == DC_MODEL_LATE_INTERACTION && !a->rows))
        return false;
    for (size_t i = 0; i < n; i++) {
        const dc_job *j = jobs[i];
        a->want[i] = j->want_aux;
        if (j->pre_n && !memcmp(&j->pre_version, &m->version, sizeof m->version)) {
            a->pre[i].n = j->pre_n;
            a->pre[i].enc[0] = &j->pre_enc[0];
            a->pre[i].enc[1] = j->pre_n > 1 ? &j->pre_enc[1] : NULL;
        }
    }
    return true;
}

static void ex_args_free(ex_args *a) {
    free(a->pre);
    free(a->want);
    free(a->sparse); /* the entries were handed to the jobs */
    free(a->rows);
}

/* The forward of items [i, i + k): dense vectors, and for the built-in encoders the extras and
 * the shared tokenizations, from one call. */
static dc_status embed_items(const dc_rt_model *m, const ex_args *a, const dc_input *ins,
                             size_t i, size_t k, dc_model_embedding *outs) {
    if (!m->builtin_pretrained) return dc_model_embed_batch(m->model, ins + i, k, outs + i);
    return dc_pretrained_embed_ex(m->model, ins + i, k, a->pre + i, a->want + i, outs + i,
                                  a->sparse ? a->sparse + i : NULL, a->rows ? a->rows + i : NULL);
}

static void run_batch(dc_batch_queue *q, dc_job **jobs, size_t n, dc_input *ins,
                      dc_model_embedding *outs) {
    /* claim the jobs whose owner is still waiting; the others are dropped unrun */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int expect = DC_JOB_QUEUED;
        if (atomic_compare_exchange_strong(&jobs[i]->state, &expect, DC_JOB_RUNNING)) {
            jobs[k++] = jobs[i];
        } else {
            job_drop(q, jobs[i]);
        }
    }
    n = k;
    if (!n) return;

    dc_rt_model *m = NULL;
    bool was_loaded = dc_registry_is_loaded(q->reg, q->id);
    uint64_t l0 = dc_rt_now_ns();
    if (!was_loaded) {
        pthread_mutex_lock(&q->mu);
        q->loading = true;
        q->loading_since_ns = l0;
        pthread_mutex_unlock(&q->mu);
    }
    dc_status st = dc_registry_acquire(q->reg, q->id, true, &m);
    if (!was_loaded) {
        pthread_mutex_lock(&q->mu);
        q->loading = false;
        dc_rt_add(&q->st.load_ns_total, dc_rt_now_ns() - l0);
        pthread_mutex_unlock(&q->mu);
    }
    if (st != DC_OK) {
        char detail[DC_RT_DETAIL_MAX];
        dc_rt_capture_detail(detail, sizeof detail);
        for (size_t i = 0; i < n; i++) job_fail(q, jobs[i], st, detail);
        return;
    }

    uint64_t t0 = dc_rt_now_ns();
    for (size_t i = 0; i < n; i++) {
        ins[i] = *jobs[i]->input;
        jobs[i]->t_start_ns = t0;
        jobs[i]->batch_size = (uint32_t)n;
        dc_hist_record(&q->st.queue_us, (t0 - jobs[i]->t_submit_ns) / 1000);
    }
    memset(outs, 0, n * sizeof *outs);
    ex_args a;
    if (m->builtin_pretrained && !ex_args_make(q, m, jobs, n, &a)) {
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "batch of %zu", n);
    } else {
        st = embed_items(m, &a, ins, 0, n, outs);
    }
    if (st == DC_OK) {
        for (size_t i = 0; i < n; i++) jobs[i]->status = DC_OK;
    } else if (n == 1 || st == DC_ERR_OUT_OF_MEMORY) {
        for (size_t i = 0; i < n; i++) {
            jobs[i]->status = st;
            dc_rt_capture_detail(jobs[i]->detail, sizeof jobs[i]->detail);
        }
    } else {
        /* one bad item must not fail its neighbours: run them one by one */
        for (size_t i = 0; i < n; i++) {
            jobs[i]->status = embed_items(m, &a, ins, i, 1, outs);
            if (jobs[i]->status != DC_OK)
                dc_rt_capture_detail(jobs[i]->detail, sizeof jobs[i]->detail);
        }
    }
    for (size_t i = 0; i < n; i++) {
        jobs[i]->emb = outs[i];
        jobs[i]->version = m->version;
        if (m->builtin_pretrained && a.sparse) jobs[i]->sparse = a.sparse[i];
        if (m->builtin_pretrained && a.rows) jobs[i]->colbert = a.rows[i];
    }
    if (m->builtin_pretrained) ex_args_free(&a);
    uint64_t t1 = dc_rt_now_ns();
    dc_registry_release(q->reg, m);

    dc_hist_record(&q->st.forward_us, (t1 - t0) / 1000);
    dc_hist_record(&q->st.batch_size, n);
    dc_rt_add(&q->st.batches, 1);
    dc_rt_add(&q->st.batch_items, n);
    dc_rt_max(&q->st.max_batch_seen, n);
    for (size_t i = 0; i < n; i++) {
        jobs[i]->t_end_ns = t1;
        job_finish(q, jobs[i]);
    }
}

static bool can_take(const dc_batch_queue *q) {
    return q->opt.dynamic && q->count >= q->opt.min_batch_size;
}

static void *executor_main(void *p) {
    dc_batch_queue *q = p;
    dc_job **mine = q->mine;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->ready_n && !q->dispatcher_done && !(can_take(q) && !q->stop))
            pthread_cond_wait(&q->cv, &q->mu);
        size_t ndrop = 0;
        if (!q->ready_n && can_take(q) && !q->stop) form_batch(q, q->xdrop, &ndrop);
        if (!q->ready_n) {
            if (q->dispatcher_done) break; /* stopped and nothing is left to run */
            if (ndrop) { /* only cancelled jobs were there */
                pthread_mutex_unlock(&q->mu);
                for (size_t i = 0; i < ndrop; i++) {
                    job_drop(q, q->xdrop[i]);
                }
                pthread_mutex_lock(&q->mu);
            }
            continue;
        }
        size_t n = q->ready_n;
        memcpy(mine, q->ready, n * sizeof *mine);
        q->ready_n = 0;
        q->busy = true;
        pthread_cond_broadcast(&q->cv); /* the dispatcher may form the next batch now */
        pthread_mutex_unlock(&q->mu);
        for (size_t i = 0; i < ndrop; i++) {
            job_drop(q, q->xdrop[i]);
        }
        run_batch(q, mine, n, q->ins, q->outs);
        pthread_mutex_lock(&q->mu);
        q->busy = false;
        pthread_cond_broadcast(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

dc_status dc_batch_queue_create(dc_model_id id, const dc_batch_options *opt, dc_registry *reg,
                                dc_rt_logger *log, dc_batch_queue **out) {
    *out = NULL;
    if (!opt || !reg || !opt->max_batch_size || !opt->queue_capacity)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "batch queue: bad options");
    dc_batch_queue *q = calloc(1, sizeof *q);
    if (!q) return dc_fail(DC_ERR_OUT_OF_MEMORY, "batch queue");
    q->id = id;
    q->opt = *opt;
    if (!q->opt.min_batch_size) q->opt.min_batch_size = 1;
    if (q->opt.min_batch_size > q->opt.max_batch_size) q->opt.min_batch_size = q->opt.max_batch_size;
    q->reg = reg;
    q->log = log;
    q->cap = opt->queue_capacity;
    q->ring = malloc(q->cap * sizeof *q->ring);
    q->ready = malloc(q->opt.max_batch_size * sizeof *q->ready);
    q->drop = malloc(q->cap * sizeof *q->drop);
    q->xdrop = malloc(q->cap * sizeof *q->xdrop);
    q->mine = malloc(q->opt.max_batch_size * sizeof *q->mine);
    q->ins = malloc(q->opt.max_batch_size * sizeof *q->ins);
    q->outs = malloc(q->opt.max_batch_size * sizeof *q->outs);
    if (!q->ring || !q->ready || !q->drop || !q->xdrop || !q->mine || !q->ins || !q->outs ||
        pthread_mutex_init(&q->mu, NULL) != 0) {
        free(q->ring);
        free(q->ready);
        free(q->drop);
        free(q->xdrop);
        free(q->mine);
        free(q->ins);
        free(q->outs);
        free(q);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "batch queue buffers");
    }
    if (dc_rt_cond_init(&q->cv) != 0) {
        pthread_mutex_destroy(&q->mu);
        free(q->ring);
        free(q->ready);
        free(q->drop);
        free(q->xdrop);
        free(q->mine);
        free(q->ins);
        free(q->outs);
        free(q);
        return dc_fail(DC_ERR_INTERNAL, "batch queue: condition variable");
    }
    if (pthread_create(&q->dispatcher, NULL, dispatcher_main, q) == 0) q->threads = 1;
    if (q->threads == 1 && pthread_create(&q->executor, NULL, executor_main, q) == 0) q->threads = 2;
    if (q->threads != 2) {
        dc_batch_queue_destroy(q);
        return dc_fail(DC_ERR_INTERNAL, "batch queue: cannot start its threads");
    }
    *out = q;
    return DC_OK;
}

void dc_batch_queue_destroy(dc_batch_queue *q) {
    if (!q) return;
    pthread_mutex_lock(&q->mu);
    q->stop = true;
    if (q->threads < 1) q->dispatcher_done = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    if (q->threads >= 1) pthread_join(q->dispatcher, NULL);
    if (q->threads >= 2) pthread_join(q->executor, NULL);
    /* the executor ran what was formed; fail what never got into a batch */
    while (q->count) {
        dc_job *j = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
        job_fail(q, j, DC_ERR_NOT_INITIALIZED, "the pipeline is closing");
    }
    for (size_t i = 0; i < q->ready_n; i++)
        job_fail(q, q->ready[i], DC_ERR_NOT_INITIALIZED, "the pipeline is closing");
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q->ring);
    free(q->ready);
    free(q->drop);
    free(q->xdrop);
    free(q->mine);
    free(q->ins);
    free(q->outs);
    free(q);
}

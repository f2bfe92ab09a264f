/* The FuseMoE object: forward (grouped by expert or row by row), hot swap, rollback, stats. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "fusion/internal.h"
#include "tensor/backend_loader.h"

/* Weights prepared on this fusemoe's backend: what a forward call holds on to. */
typedef struct active {
    atomic_uint refs;
    dc_fusion_weights *w; /* one reference */
    dc_backend *be;
    dc_linear *fc1[DC_NUM_EXPERTS], *fc2[DC_NUM_EXPERTS]; /* f32 on the backend */
    uint16_t *bf1[DC_NUM_EXPERTS], *bf2[DC_NUM_EXPERTS];  /* bf16 copies */
    bool bf16;
    uint32_t small_batch;
    /* Expert e's output layer is all zero (as initialised): it contributes exactly 0, so the
     * forward skips it (bit-identical) and it needs no prepared copy. */
    bool out_zero[DC_NUM_EXPERTS];
    dc_fusion_gpu *gpu; /* the experts on the CUDA backend (instead of fc1/fc2/bf1/bf2) */
    bool cold;          /* on the history of a CUDA fusemoe: nothing prepared (see swap) */
} active;

struct dc_fusemoe {
    pthread_mutex_t swap_lock; /* one swap or rollback at a time (prepare runs under it) */
    pthread_mutex_t lock;      /* current and history; held only to read or replace them */
    active *current;
    active *history[64];
    uint32_t n_history, max_history;
    dc_backend *be;
    bool own_be;
    bool cuda;         /* the experts run on the CUDA backend */
    char device[160];  /* where (dc_fusemoe_device) */
    dc_fusion_options run; /* the run-time choices (weights format, small_batch) */
    pthread_mutex_t stats_lock;
    dc_fusion_stats stats; /* sums; finalised by dc_fusemoe_stats */
    double prob_sum[DC_NUM_EXPERTS], top1_sum, top2_sum;
};

static void active_release(active *a) {
    if (!a || atomic_fetch_sub(&a->refs, 1) != 1) return;
    for (uint32_t e = 0; e < DC_NUM_EXPERTS; e++) {
        if (a->fc1[e]) a->be->ops->linear_destroy(a->be, a->fc1[e]);
        if (a->fc2[e]) a->be->ops->linear_destroy(a->be, a->fc2[e]);
        free(a->bf1[e]);
        free(a->bf2[e]);
    }
    dc_fusion_gpu_free(a->gpu);
    atomic_fetch_sub(&a->w->users, 1);
    dc_fusion_weights_release(a->w);
    free(a);
}

static uint16_t *to_bf16(const float *src, size_t n) {
    uint16_t *d = malloc(n * sizeof *d);
    if (d)
        for (size_t i = 0; i < n; i++) d[i] = dc_fusion_f32_to_bf16(src[i]);
    return d;
}

/* `w` (a new reference is taken) with nothing prepared: a history entry of a CUDA fusemoe. */
static active *active_cold(dc_fusion_weights *w, dc_backend *be) {
    active *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    atomic_init(&a->refs, 1);
    a->w = dc_fusion_weights_retain(w);
    atomic_fetch_add(&w->users, 1);
    a->be = be;
    a->cold = true;
    return a;
}

/* Prepares `w` (a new reference is taken) on `be` in the format `o` asks for; on CUDA every
 * expert goes to the device (experts_gpu.c). */
static dc_status active_create(dc_fusion_weights *w, dc_backend *be, const dc_fusion_options *o,
                               bool cuda, active **out) {
    active *a = calloc(1, sizeof *a);
    if (!a) return dc_fail(DC_ERR_OUT_OF_MEMORY, "fusion weights %s", w->info.version);
    atomic_init(&a->refs, 1);
    a->w = dc_fusion_weights_retain(w);
    atomic_fetch_add(&w->users, 1);
    a->be = be;
    a->bf16 = o->weights == DC_FUSION_WEIGHTS_BF16;
    a->small_batch = o->small_batch;
    const dc_fusion_layout *l = &w->layout;
    dc_status st = DC_OK;
    for (uint32_t e = 0; e < w->opt.num_experts && st == DC_OK; e++) {
        bool z = true;
        const float *p = w->arena + l->fc2_w[e];
        for (size_t i = 0; z && i < (size_t)DC_FUSION_OUT * w->opt.hidden; i++) z = p[i] == 0.0f;
        p = w->arena + l->fc2_b[e];
        for (size_t i = 0; z && i < DC_FUSION_OUT; i++) z = p[i] == 0.0f;
        a->out_zero[e] = z;
        if (z || cuda) continue;
        if (a->bf16) {
            a->bf1[e] = to_bf16(w->arena + l->fc1_w[e], (size_t)w->opt.hidden * DC_FUSION_IN);
            a->bf2[e] = to_bf16(w->arena + l->fc2_w[e], (size_t)DC_FUSION_OUT * w->opt.hidden);
            if (!a->bf1[e] || !a->bf2[e])
                st = dc_fail(DC_ERR_OUT_OF_MEMORY, "fusion weights %s: bf16 expert %u",
                             w->info.version, e);
            continue;
        }
        st = be->ops->linear_create(be, w->arena + l->fc1_w[e], w->arena + l->fc1_b[e],
                                    w->opt.hidden, DC_FUSION_IN, DC_WEIGHTS_F32, &a->fc1[e]);
        if (st == DC_OK)
            st = be->ops->linear_create(be, w->arena + l->fc2_w[e], w->arena + l->fc2_b[e],
                                        DC_FUSION_OUT, w->opt.hidden, DC_WEIGHTS_F32, &a->fc2[e]);
        if (st != DC_OK) st = dc_fail_context(st, "fusion weights %s, expert %u", w->info.version, e);
    }
    if (st == DC_OK && cuda) st = dc_fusion_gpu_prepare(be, w, a->bf16, a->out_zero, &a->gpu);
    if (st != DC_OK) {
        active_release(a);
        return st;
    }
    *out = a;
    return DC_OK;
}

static active *active_acquire(dc_fusemoe *f) {
    pthread_mutex_lock(&f->lock);
    active *a = f->current;
    atomic_fetch_add(&a->refs, 1);
    pthread_mutex_unlock(&f->lock);
    return a;
}

void dc_fusion_modulation_neutral(dc_fusion_modulation *m) {
    memset(m, 0, sizeof *m);
    m->temperature_scale = 1.0f;
    for (int i = 0; i < DC_NUM_MODELS; i++) m->model_weights[i] = 1.0f;
}

bool dc_fusion_modulation_is_neutral(const dc_fusion_modulation *m) {
    if (!m) return true;
    if (m->top_k != 0 || m->temperature_scale != 1.0f) return false;
    for (int i = 0; i < DC_NUM_MODELS; i++)
        if (m->model_weights[i] != 1.0f) return false;
    for (int i = 0; i < DC_NUM_EXPERTS; i++)
        if (m->expert_bias[i] != 0.0f) return false;
    return true;
}

void dc_fusion_call_init(dc_fusion_call *c) {
    memset(c, 0, sizeof *c);
    c->exec = DC_FUSION_EXEC_GROUPED;
    c->bridge_blend = -1.0f;
}

/* ---- lifetime ---- */

static dc_status fusemoe_new(const dc_fusion_options *o, dc_fusemoe **out) {
    dc_fusemoe *f = calloc(1, sizeof *f);
    if (!f) return dc_fail(DC_ERR_OUT_OF_MEMORY, "fusemoe");
    pthread_mutex_init(&f->swap_lock, NULL);
    pthread_mutex_init(&f->lock, NULL);
    pthread_mutex_init(&f->stats_lock, NULL);
    f->max_history = o ? o->history : 4;
    if (o) f->run = *o;
    else dc_fusion_options_default(&f->run);
    f->be = o ? o->backend : NULL;
    if (f->be) {
        f->cuda = dc_backend_is_cuda(f->be);
        snprintf(f->device, sizeof f->device, "%s", f->cuda ? "cuda (the caller's backend)" : "cpu");
    } else {
        dc_status st = dc_fusion_backend_open(&f->run, &f->be, &f->cuda, f->device,
                                              sizeof f->device);
        if (st != DC_OK) {
            dc_fusemoe_destroy(f);
            return st;
        }
        f->own_be = true;
    }
    *out = f;
    return DC_OK;
}

/* Makes w the active weights of a new fusemoe (takes its own reference). */
static dc_status fusemoe_adopt(dc_fusemoe *f, dc_fusion_weights *w) {
    active *a = NULL;
    dc_status st = active_create(w, f->be, &f->run, f->cuda, &a);
    if (st != DC_OK) return st;
    f->current = a;
    f->stats.num_experts = w->opt.num_experts;
    f->stats.top_k = w->opt.top_k;
    return DC_OK;
}

dc_status dc_fusemoe_create_ex(const dc_fusion_options *o, dc_fusemoe **out) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "fusemoe: NULL output");
    *out = NULL;
    dc_status st = dc_fusion_options_validate(o);
    if (st != DC_OK) return st;
    dc_fusemoe *f = NULL;
    if ((st = fusemoe_new(o, &f)) != DC_OK) return st;
    dc_fusion_weights *w = NULL;
    st = dc_fusion_weights_resolve(o, &w);
    if (st == DC_OK) st = fusemoe_adopt(f, w);
    dc_fusion_weights_release(w);
    if (st != DC_OK) {
        dc_fusemoe_destroy(f);
        return st;
    }
    *out = f;
    return DC_OK;
}

dc_status dc_fusemoe_create_from(dc_fusion_weights *w, const dc_fusion_options *o,
                                 dc_fusemoe **out) {
    if (!w || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "fusemoe: NULL argument");
    *out = NULL;
    if (o && o->history > 64) return dc_fail(DC_ERR_CONFIG, "fusion history (%u) must be <= 64", o->history);
    dc_fusemoe *f = NULL;
    dc_status st = fusemoe_new(o, &f);
    if (st != DC_OK) return st;
    if ((st = fusemoe_adopt(f, w)) != DC_OK) {
        dc_fusemoe_destroy(f);
        return st;
    }
    *out = f;
    return DC_OK;
}

dc_status dc_fusemoe_create(const dc_config *cfg, dc_fusemoe **out) {
    dc_fusion_options o;
    dc_fusion_options_from_config(cfg, &o);
    return dc_fusemoe_create_ex(&o, out);
}

void dc_fusemoe_destroy(dc_fusemoe *f) {
    if (!f) return;
    active_release(f->current); /* no call may be in flight: prepared copies go now */
    for (uint32_t i = 0; i < f->n_history; i++) active_release(f->history[i]);
    if (f->own_be) dc_fusion_backend_close(f->be, f->cuda);
    pthread_mutex_destroy(&f->swap_lock);
    pthread_mutex_destroy(&f->lock);
    pthread_mutex_destroy(&f->stats_lock);
    free(f);
}

dc_backend *dc_fusemoe_backend(dc_fusemoe *f) { return f ? f->be : NULL; }

const char *dc_fusemoe_device(const dc_fusemoe *f) { return f ? f->device : ""; }

dc_fusion_weights *dc_fusemoe_weights(dc_fusemoe *f) {
    if (!f) return NULL;
    pthread_mutex_lock(&f->lock);
    dc_fusion_weights *w = dc_fusion_weights_retain(f->current->w);
    pthread_mutex_unlock(&f->lock);
    return w;
}

size_t dc_fusemoe_bytes(dc_fusemoe *f) {
    if (!f) return 0;
    active *a = active_acquire(f);
    size_t b = dc_fusion_weights_bytes(a->w);
    for (uint32_t e = 0; e < DC_NUM_EXPERTS; e++) {
        if (a->fc1[e]) b += a->be->ops->linear_bytes(a->fc1[e]);
        if (a->fc2[e]) b += a->be->ops->linear_bytes(a->fc2[e]);
        if (a->bf1[e]) b += (size_t)a->w->opt.hidden * (DC_FUSION_IN + DC_FUSION_OUT) * 2;
    }
    b += dc_fusion_gpu_bytes(a->gpu);
    active_release(a);
    return b;
}

/* ---- hot swap ---- */

static dc_status swap_locked(dc_fusemoe *f, dc_fusion_weights *w) {
    /* validate and prepare outside `lock`: calls keep running on the old weights meanwhile */
    uint32_t want_e = f->current->w->opt.num_experts; /* current only changes under swap_lock */
    if (w->opt.num_experts != want_e)
        return dc_fail(DC_ERR_FUSION,
                       "fusemoe swap: weights %s have %u experts, the active weights %u",
                       w->info.version, w->opt.num_experts, want_e);
    dc_status st = dc_vec_check_finite(w->arena, w->layout.total, "fusion weights");
    if (st != DC_OK) return dc_fail_context(st, "fusemoe swap to %s", w->info.version);
    active *a = NULL;
    st = active_create(w, f->be, &f->run, f->cuda, &a);
    if (st != DC_OK) return dc_fail_context(st, "fusemoe swap to %s", w->info.version);
    /* On CUDA the replaced weights leave the device (freed when their last call returns); the
     * history keeps them cold and a rollback uploads them again. */
    active *cold = f->cuda && f->max_history ? active_cold(f->current->w, f->be) : NULL;
    active *drop = NULL, *warm_old = NULL;
    pthread_mutex_lock(&f->lock);
    active *old = f->current;
    f->current = a;
    if (cold) {
        warm_old = old;
        old = cold;
    }
    if (f->max_history == 0) {
        drop = old;
    } else {
        if (f->n_history == f->max_history) {
            drop = f->history[0];
            memmove(f->history, f->history + 1, (f->n_history - 1) * sizeof *f->history);
            f->n_history--;
        }
        f->history[f->n_history++] = old;
    }
    pthread_mutex_unlock(&f->lock);
    active_release(drop); /* freed when the last call using it returns */
    active_release(warm_old);
    return DC_OK;
}

dc_status dc_fusemoe_swap(dc_fusemoe *f, dc_fusion_weights *w) {
    if (!f || !w) return dc_fail(DC_ERR_INVALID_ARGUMENT, "fusemoe swap: NULL argument");
    pthread_mutex_lock(&f->swap_lock);
    dc_status st = swap_locked(f, w);
    pthread_mutex_unlock(&f->swap_lock);
    return st;
}

dc_status dc_fusemoe_rollback(dc_fusemoe *f) {
    if (!f) return dc_fail(DC_ERR_INVALID_ARGUMENT, "fusemoe rollback: NULL");
    pthread_mutex_lock(&f->swap_lock);
    pthread_mutex_lock(&f->lock);
    if (f->n_history == 0) {
        pthread_mutex_unlock(&f->lock);
        pthread_mutex_unlock(&f->swap_lock);
        return dc_fail(DC_ERR_NOT_FOUND, "fusemoe rollback: no previous weights to return to");
    }
    active *top = f->history[f->n_history - 1]; /* stable: history changes under swap_lock */
    pthread_mutex_unlock(&f->lock);
    active *warm = NULL;
    if (top->cold) { /* prepare outside `lock`: calls keep running meanwhile */
        dc_status st = active_create(top->w, f->be, &f->run, f->cuda, &warm);
        if (st != DC_OK) {
            pthread_mutex_unlock(&f->swap_lock);
            return dc_fail_context(st, "fusemoe rollback to %s", top->w->info.version);
        }
    }
    pthread_mutex_lock(&f->lock);
    active *drop = f->current;
    f->n_history--;
    f->current = warm ? warm : top;
    pthread_mutex_unlock(&f->lock);
    pthread_mutex_unlock(&f->swap_lock);
    if (warm) active_release(top);
    active_release(drop);
    return DC_OK;
}

/* ---- stats ---- */

static void stats_add(dc_fusemoe *f, const dc_gate_result *g, size_t n, uint32_t e, uint32_t k,
                      double capacity_factor) {
    uint64_t count[DC_NUM_EXPERTS] = {0};
    pthread_mutex_lock(&f->stats_lock);
    dc_fusion_stats *s = &f->stats;
    s->rows += n;
    s->batches++;
    for (size_t i = 0; i < n; i++) {
        double p1 = 0.0, p2 = 0.0;
        for (uint32_t j = 0; j < e; j++) {
            double p = g[i].prob[j];
            f->prob_sum[j] += p;
            if (p > p1) {
                p2 = p1;
                p1 = p;
            } else if (p > p2) {
                p2 = p;
            }
        }
        f->top1_sum += p1;
        f->top2_sum += p2;
        for (uint32_t j = 0; j < g[i].k; j++) {
            s->assignments[g[i].selected[j]]++;
            count[g[i].selected[j]]++;
        }
        s->top1[g[i].selected[0]]++;
    }
    uint64_t cap = (uint64_t)ceil(capacity_factor * (double)n * k / e);
    for (uint32_t j = 0; j < e; j++)
        if (count[j] > cap) s->capacity_overflow += count[j] - cap;
    pthread_mutex_unlock(&f->stats_lock);
}

void dc_fusemoe_stats(dc_fusemoe *f, dc_fusion_stats *out) {
    memset(out, 0, sizeof *out);
    if (!f) return;
    pthread_mutex_lock(&f->stats_lock);
    *out = f->stats;
    uint32_t e = out->num_experts;
    if (out->rows) {
        uint64_t assigned = 0;
        for (uint32_t j = 0; j < e; j++) assigned += out->assignments[j];
        double lb = 0.0;
        for (uint32_t j = 0; j < e; j++) {
            out->utilization[j] = assigned ? (double)out->assignments[j] / (double)assigned : 0.0;
            out->mean_prob[j] = f->prob_sum[j] / (double)out->rows;
            lb += ((double)out->top1[j] / (double)out->rows) * out->mean_prob[j];
        }
        out->load_balance = e * lb;
        out->mean_top1_prob = f->top1_sum / (double)out->rows;
        out->mean_top2_prob = f->top2_sum / (double)out->rows;
    }
    pthread_mutex_unlock(&f->stats_lock);
    snprintf(out->device, sizeof out->device, "%s", f->device);
}

void dc_fusemoe_stats_reset(dc_fusemoe *f) {
    if (!f) return;
    pthread_mutex_lock(&f->stats_lock);
    uint32_t e = f->stats.num_experts, k = f->stats.top_k;
    memset(&f->stats, 0, sizeof f->stats);
    memset(f->prob_sum, 0, sizeof f->prob_sum);
    f->top1_sum = f->top2_sum = 0.0;
    f->stats.num_experts = e;
    f->stats.top_k = k;
    pthread_mutex_unlock(&f->stats_lock);
}

/* ---- forward ---- */

static dc_status check_input(const dc_concat_embedding *c, size_t i) {
    if (!c) return dc_fail(DC_ERR_INVALID_ARGUMENT, "fusion input %zu is NULL", i);
    if (c->present_mask & ~(uint32_t)DC_ALL_MODELS_MASK)
        return dc_fail(DC_ERR_INVALID_VALUE,
                       "fusion input %zu: present_mask 0x%x has bits beyond the 12 models", i,
                       c->present_mask);
    if (!c->present_mask)
        return dc_fail(DC_ERR_FUSION, "fusion input %zu: no model contributed (present_mask 0)",
                       i);
    for (int m = 0; m < DC_NUM_MODELS; m++) {
        if (!(c->present_mask & (1u << m))) continue; /* absent blocks are never read */
        const dc_model_info *info = dc_model_info_get((dc_model_id)m);
        dc_status st = dc_vec_check_finite(c->vector + info->offset, info->dim, info->label);
        if (st != DC_OK) return dc_fail_context(st, "fusion input %zu", i);
    }
    return DC_OK;
}

typedef struct fwd_buf {
    float *z, *h, *y, *eo, *x, *a, *bw;
    dc_gate_result *g;
} fwd_buf;

static void fwd_free(fwd_buf *b) {
    free(b->z);
    free(b->h);
    free(b->y);
    free(b->eo);
    free(b->x);
    free(b->a);
    free(b->bw);
    free(b->g);
}

/* Runs expert e on m rows of x into o (m × 1536). */
static dc_status run_expert(const active *act, uint32_t e, const float *x, size_t m, float *a,
                            float *o) {
    const dc_fusion_weights *w = act->w;
    const dc_fusion_layout *l = &w->layout;
    const uint32_t H = w->opt.hidden;
    if (act->bf16 || m <= act->small_batch) { /* few rows: stream the weights once (gemm.c) */
        const void *w1 = act->bf16 ? (const void *)act->bf1[e] : (const void *)(w->arena + l->fc1_w[e]);
        const void *w2 = act->bf16 ? (const void *)act->bf2[e] : (const void *)(w->arena + l->fc2_w[e]);
        dc_fusion_gemm(x, m, w1, act->bf16, w->arena + l->fc1_b[e], H, DC_FUSION_IN, a);
        dc_kernel_activation(DC_ACT_GELU_ERF, a, m * H);
        dc_fusion_gemm(a, m, w2, act->bf16, w->arena + l->fc2_b[e], DC_FUSION_OUT, H, o);
        return DC_OK;
    }
    dc_backend *be = act->be;
    dc_status st = be->ops->linear_forward(be, act->fc1[e], x, m, a);
    if (st != DC_OK) return st;
    be->ops->activation(be, DC_ACT_GELU_ERF, a, m * H);
    return be->ops->linear_forward(be, act->fc2[e], a, m, o);
}

/* Every (row, rank) on the device: one dc_fusion_gpu_run for the batch (grouped) or one per
 * (row, rank) (row by row), outputs into b->eo. The gate's row order is kept. */
static dc_status experts_on_gpu(const active *act, fwd_buf *b, size_t n, uint32_t k,
                                bool rowwise) {
    const uint32_t E = act->w->opt.num_experts;
    const bool *zero = act->out_zero;
    uint32_t count[DC_NUM_EXPERTS] = {0};
    if (rowwise) {
        dc_status st = DC_OK;
        for (size_t i = 0; i < n && st == DC_OK; i++)
            for (uint32_t r = 0; r < b->g[i].k && st == DC_OK; r++) {
                uint32_t e = b->g[i].selected[r], row = (uint32_t)i;
                if (zero[e]) continue;
                count[e] = 1;
                st = dc_fusion_gpu_run(act->gpu, b->h, &row, count,
                                       b->eo + (i * k + r) * DC_FUSION_OUT);
                count[e] = 0;
            }
        return st;
    }
    uint32_t *rows = malloc(n * k * sizeof *rows);
    size_t *slot = malloc(n * k * sizeof *slot); /* (row · k + rank) of each gathered row */
    float *o = malloc(n * k * DC_FUSION_OUT * sizeof *o);
    dc_status st = rows && slot && o ? DC_OK
                                     : dc_fail(DC_ERR_OUT_OF_MEMORY, "fusion expert groups");
    size_t m = 0;
    for (uint32_t e = 0; e < E && st == DC_OK; e++) {
        if (zero[e]) continue;
        for (size_t i = 0; i < n; i++)
            for (uint32_t r = 0; r < b->g[i].k; r++)
                if (b->g[i].selected[r] == e) {
                    rows[m] = (uint32_t)i;
                    slot[m++] = i * k + r;
                    count[e]++;
                }
    }
    if (st == DC_OK && m) st = dc_fusion_gpu_run(act->gpu, b->h, rows, count, o);
    for (size_t j = 0; st == DC_OK && j < m; j++) /* scatter back in input order */
        memcpy(b->eo + slot[j] * DC_FUSION_OUT, o + j * DC_FUSION_OUT,
               DC_FUSION_OUT * sizeof(float));
    free(rows);
    free(slot);
    free(o);
    return st;
}

static dc_status forward_on(dc_fusemoe *f, const active *act, const dc_concat_embedding *const *in,
                            size_t n, const dc_fusion_call *call, dc_fused_embedding *out) {
    const dc_fusion_weights *w = act->w;
    const dc_fusion_options *o = &w->opt;
    const dc_fusion_modulation *mod = call ? call->modulation : NULL;
    if (dc_fusion_modulation_is_neutral(mod)) mod = NULL;
    const uint32_t E = o->num_experts, H = o->hidden;
    uint32_t k = o->top_k;
    double temp = o->temperature;
    const float *bias = NULL;
    float scales[DC_NUM_MODELS];
    memcpy(scales, w->block_scale, sizeof scales);
    if (mod) {
        for (int m = 0; m < DC_NUM_MODELS; m++)
            if (!(mod->model_weights[m] >= 0.0f) || !isfinite(mod->model_weights[m]))
                return dc_fail(DC_ERR_INVALID_VALUE,
                               "fusion modulation model_weights[%d] (%g) must be finite and >= 0",
                               m, (double)mod->model_weights[m]);
        for (int j = 0; j < DC_NUM_EXPERTS; j++)
            if (!isfinite(mod->expert_bias[j]))
                return dc_fail(DC_ERR_INVALID_VALUE, "fusion modulation expert_bias[%d] is not finite",
                               j);
        if (!isfinite(mod->temperature_scale) || !(mod->temperature_scale > 0.0f))
            return dc_fail(DC_ERR_INVALID_VALUE,
                           "fusion modulation temperature_scale (%g) must be finite and > 0",
                           (double)mod->temperature_scale);
        if (mod->top_k) k = mod->top_k < E ? mod->top_k : E;
        float ts = mod->temperature_scale;
        ts = ts < 0.25f ? 0.25f : ts > 4.0f ? 4.0f : ts;
        temp *= ts;
        bias = mod->expert_bias;
        dc_fusion_block_scales(o->block_weights, mod->model_weights, scales);
    }
    float blend = o->bridge ? o->bridge_blend : 0.0f;
    if (call && call->bridge_blend >= 0.0f && o->bridge)
        blend = call->bridge_blend > 1.0f ? 1.0f : call->bridge_blend;
    const bool rowwise = call && call->exec == DC_FUSION_EXEC_ROWWISE;

    const bool *zero = act->out_zero;

    fwd_buf b = {0};
    dc_status st = DC_OK;
    b.z = malloc(n * DC_FUSION_IN * sizeof(float));
    b.h = malloc(n * DC_FUSION_IN * sizeof(float));
    b.y = malloc(n * DC_FUSION_OUT * sizeof(float));
    b.eo = calloc(n * k * DC_FUSION_OUT, sizeof(float));
    b.g = calloc(n, sizeof *b.g);
    size_t rows_max = rowwise ? 1 : n;
    b.x = malloc(rows_max * DC_FUSION_IN * sizeof(float));
    b.a = malloc(rows_max * (size_t)H * sizeof(float));
    if (blend > 0.0f) b.bw = malloc(dc_fusion_bridge_work_floats() * sizeof(float));
    if (!b.z || !b.h || !b.y || !b.eo || !b.g || !b.x || !b.a || (blend > 0.0f && !b.bw)) {
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "fusion forward of %zu rows", n);
        goto done;
    }

    /* per row: scale, S·z, LayerNorm, gate */
    const float *ln_g = w->arena + w->layout.ln_g, *ln_b = w->arena + w->layout.ln_b;
    for (size_t i = 0; i < n; i++) {
        float *z = b.z + i * DC_FUSION_IN, *h = b.h + i * DC_FUSION_IN;
        dc_fusion_scale_input(in[i]->vector, in[i]->present_mask, scales, z);
        dc_jl_apply(w->jl, z, b.y + i * DC_FUSION_OUT);
        dc_fusion_layernorm_row(z, ln_g, ln_b, DC_FUSION_IN, h, NULL, NULL);
        double score[DC_NUM_EXPERTS];
        dc_fusion_gate_scores(w, h, in[i]->present_mask, score);
        for (uint32_t e = 0; e < E; e++)
            if (!isfinite(score[e])) { /* only weights with absurd magnitudes get here */
                st = dc_fail(DC_ERR_FUSION, "fusion input %zu: gate score of expert %u is not "
                             "finite (weights %s)", i, e, w->info.version);
                goto done;
            }
        dc_gate_probs(score, E, temp, o->laplace_alpha, bias, k, &b.g[i]);
    }

    /* experts */
    if (!strcmp(act->be->ops->name, "cpu")) dc_backend_cpu_bind_threads(act->be);
    if (act->gpu) {
        st = experts_on_gpu(act, &b, n, k, rowwise);
    } else if (rowwise) {
        for (size_t i = 0; i < n && st == DC_OK; i++)
            for (uint32_t r = 0; r < b.g[i].k && st == DC_OK; r++) {
                uint32_t e = b.g[i].selected[r];
                if (zero[e]) continue;
                st = run_expert(act, e, b.h + i * DC_FUSION_IN, 1, b.a,
                                b.eo + (i * k + r) * DC_FUSION_OUT);
            }
    } else {
        size_t *slot = malloc(n * sizeof *slot); /* (row · k + rank) of each gathered row */
        float *o_e = malloc(n * DC_FUSION_OUT * sizeof *o_e);
        if (!slot || !o_e) st = dc_fail(DC_ERR_OUT_OF_MEMORY, "fusion expert groups");
        for (uint32_t e = 0; e < E && st == DC_OK; e++) {
            if (zero[e]) continue;
            size_t m = 0;
            for (size_t i = 0; i < n; i++)
                for (uint32_t r = 0; r < b.g[i].k; r++)
                    if (b.g[i].selected[r] == e) {
                        memcpy(b.x + m * DC_FUSION_IN, b.h + i * DC_FUSION_IN,
                               DC_FUSION_IN * sizeof(float));
                        slot[m++] = i * k + r;
                    }
            if (!m) continue;
            st = run_expert(act, e, b.x, m, b.a, o_e);
            for (size_t j = 0; st == DC_OK && j < m; j++) /* scatter back in input order */
                memcpy(b.eo + slot[j] * DC_FUSION_OUT, o_e + j * DC_FUSION_OUT,
                       DC_FUSION_OUT * sizeof(float));
        }
        free(slot);
        free(o_e);
    }
    if (st != DC_OK) goto done;

    /* combine in rank order (the same arithmetic for both paths), bridge, normalise */
    for (size_t i = 0; i < n; i++) {
        float *y = b.y + i * DC_FUSION_OUT;
        const dc_gate_result *g = &b.g[i];
        for (uint32_t r = 0; r < g->k; r++) {
            if (zero[g->selected[r]]) continue;
            const float *eo = b.eo + (i * k + r) * DC_FUSION_OUT;
            float gw = g->weight[r];
            for (size_t c = 0; c < DC_FUSION_OUT; c++) y[c] += gw * eo[c];
        }
        if (!dc_vec_normalize(y, DC_FUSION_OUT)) {
            st = dc_fail(DC_ERR_FUSION, "fusion input %zu: the fused vector is zero or not finite",
                         i);
            goto done;
        }
        if (blend > 0.0f) {
            float enh[DC_FUSION_OUT];
            dc_fusion_bridge_row(w, b.z + i * DC_FUSION_IN, in[i]->present_mask, enh, b.bw);
            if (dc_vec_normalize(enh, DC_FUSION_OUT))
                for (size_t c = 0; c < DC_FUSION_OUT; c++)
                    y[c] = (1.0f - blend) * y[c] + blend * enh[c];
            if (!dc_vec_normalize(y, DC_FUSION_OUT)) {
                st = dc_fail(DC_ERR_FUSION,
                             "fusion input %zu: the bridged vector is zero or not finite", i);
                goto done;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        dc_fused_embedding *r = &out[i];
        memcpy(r->vector, b.y + i * DC_FUSION_OUT, sizeof r->vector);
        memset(r->expert_weights, 0, sizeof r->expert_weights);
        memcpy(r->expert_weights, b.g[i].prob, E * sizeof(float));
        memset(r->selected_experts, 0, sizeof r->selected_experts);
        memcpy(r->selected_experts, b.g[i].selected, b.g[i].k);
        r->num_selected = (uint8_t)b.g[i].k;
        r->present_mask = in[i]->present_mask;
        r->content_hash = in[i]->content_hash;
    }
    stats_add(f, b.g, n, E, k, o->capacity_factor);
done:
    fwd_free(&b);
    return st;
}

dc_status dc_fusemoe_forward_ex(dc_fusemoe *f, const dc_concat_embedding *const *in, size_t n,
                                dc_fusion_call *call, dc_fused_embedding *out) {
    if (!f || (n && (!in || !out)))
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "fusemoe forward: NULL argument");
    if (n == 0) return DC_OK;
    for (size_t i = 0; i < n; i++) {
        dc_status st = check_input(in[i], i);
        if (st != DC_OK) return st;
    }
    active *a = active_acquire(f); /* one version for the whole batch */
    dc_status st = forward_on(f, a, in, n, call, out);
    if (call) {
        call->serial = a->w->info.serial;
        snprintf(call->version, sizeof call->version, "%s", a->w->info.version);
    }
    active_release(a);
    return st;
}

dc_status dc_fusemoe_forward(dc_fusemoe *f, const dc_concat_embedding *const *in, size_t n,
                             dc_fused_embedding *out) {
    return dc_fusemoe_forward_ex(f, in, n, NULL, out);
}

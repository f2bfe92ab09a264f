/* See tokenise.h. Tokenizer groups are created on first sight of a fingerprint and kept until
 * close (at most one per model); the published prefix of the table is read without the lock. */
#include "runtime/tokenise.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "models/pretrained.h"
#include "text/token_manager.h"

/* every group's tokenizer sits in this slot of its own manager */
#define SLOT DC_TOK_FAMILY_BERT_UNCASED

typedef struct tok_group {
    dc_hash128 fp;
    dc_token_manager *tm; /* NULL: the tokenizer did not load (its models tokenise alone) */
} tok_group;

struct dc_tok_share {
    pthread_mutex_t mu;
    dc_rt_logger *log;
    tok_group g[DC_NUM_MODELS];
    _Atomic uint32_t n; /* entries [0, n) are immutable */
    atomic_uint_fast64_t runs;
};

dc_status dc_tok_share_create(dc_rt_logger *log, dc_tok_share **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return dc_fail(DC_ERR_OUT_OF_MEMORY, "tokenise stage");
    pthread_mutex_init(&(*out)->mu, NULL);
    (*out)->log = log;
    return DC_OK;
}

void dc_tok_share_destroy(dc_tok_share *s) {
    if (!s) return;
    for (uint32_t i = 0; i < atomic_load(&s->n); i++) dc_token_manager_destroy(s->g[i].tm);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

uint64_t dc_tok_share_runs(const dc_tok_share *s) { return atomic_load(&s->runs); }

uint32_t dc_tok_share_tokenizers(const dc_tok_share *s) {
    uint32_t k = 0, n = atomic_load(&s->n);
    for (uint32_t i = 0; i < n; i++) k += s->g[i].tm != NULL;
    return k;
}

static bool same(dc_hash128 a, dc_hash128 b) { return a.lo == b.lo && a.hi == b.hi; }

/* The group of a model's tokenizer (index), created on first sight; -1 when none. */
static int group_of(dc_tok_share *s, const dc_rt_model *rm) {
    uint32_t n = atomic_load_explicit(&s->n, memory_order_acquire);
    for (uint32_t i = 0; i < n; i++)
        if (same(s->g[i].fp, rm->tok_fp)) return s->g[i].tm ? (int)i : -1;
    pthread_mutex_lock(&s->mu);
    n = atomic_load_explicit(&s->n, memory_order_relaxed);
    for (uint32_t i = 0; i < n; i++)
        if (same(s->g[i].fp, rm->tok_fp)) {
            pthread_mutex_unlock(&s->mu);
            return s->g[i].tm ? (int)i : -1;
        }
    if (n == DC_NUM_MODELS) {
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    dc_tokenizer *tok = NULL;
    dc_token_manager *tm = NULL;
    dc_status st = dc_tokenizer_load(rm->tok_dir, &tok);
    if (st == DC_OK) st = dc_token_manager_create(0, 0, &tm); /* no cache: shared per call */
    if (st == DC_OK) st = dc_token_manager_set_tokenizer(tm, SLOT, tok); /* takes tok */
    else dc_tokenizer_free(tok);
    if (st != DC_OK) {
        dc_rt_log(s->log, DC_RT_LOG_WARN, "shared tokenizer of %s: %s (its models tokenise alone)",
                  rm->tok_dir, dc_error_detail());
        dc_token_manager_destroy(tm);
        tm = NULL;
    }
    s->g[n].fp = rm->tok_fp;
    s->g[n].tm = tm;
    atomic_store_explicit(&s->n, n + 1, memory_order_release);
    pthread_mutex_unlock(&s->mu);
    return tm ? (int)n : -1;
}

size_t dc_tok_share_fill(dc_tok_share *s, dc_registry *reg, dc_job *const *jobs, size_t njobs,
                         size_t ninputs) {
    dc_rt_model *rm[DC_NUM_MODELS] = {0};
    int grp[DC_NUM_MODELS];
    uint32_t seen = 0;
    size_t runs = 0;
    for (size_t j = 0; j < njobs; j++) {
        dc_model_id id = jobs[j]->model;
        if ((seen >> id) & 1u) continue;
        seen |= 1u << id;
        grp[id] = -1;
        if (dc_model_info_get(id)->kind != DC_MODEL_KIND_PRETRAINED) continue; /* no tokenizer */
        if (dc_registry_acquire(reg, id, false, &rm[id]) != DC_OK) {
            rm[id] = NULL; /* not loaded (lazy): its first batch tokenises */
            dc_error_clear();
            continue;
        }
        if (rm[id]->tok_shared) grp[id] = group_of(s, rm[id]);
    }
    dc_token_request *req = malloc(2 * DC_NUM_MODELS * sizeof *req);
    dc_encoding *enc = malloc(2 * DC_NUM_MODELS * sizeof *enc);
    dc_job **who = malloc(DC_NUM_MODELS * sizeof *who);
    uint32_t *nreq = malloc(DC_NUM_MODELS * sizeof *nreq);
    for (size_t in = 0; req && enc && who && nreq && in < ninputs; in++) {
        for (uint32_t g = 0; g < atomic_load(&s->n); g++) {
            /* this input's jobs whose model tokenises with group g: one tokenization */
            size_t k = 0, r = 0;
            const dc_input *x = NULL;
            for (size_t j = 0; j < njobs; j++) {
                dc_job *jb = jobs[j];
                if (jb->input_index != in || !rm[jb->model] || grp[jb->model] != (int)g) continue;
                uint32_t m = 0;
                if (dc_pretrained_token_requests(rm[jb->model]->model, jb->input, jb->want_aux,
                                                 req + r, &m) != DC_OK || !m)
                    continue;
                for (uint32_t q = 0; q < m; q++) req[r + q].family = SLOT;
                x = jb->input;
                who[k] = jb;
                nreq[k++] = m;
                r += m;
            }
            if (!k) continue;
            if (dc_token_manager_encode_many(s->g[g].tm, req, r, x->content, x->content_len, enc) !=
                DC_OK) {
                dc_error_clear(); /* the models tokenise it themselves and say what is wrong */
                continue;
            }
            runs++;
            for (size_t i = 0, e = 0; i < k; e += nreq[i], i++) {
                dc_job *jb = who[i];
                for (uint32_t q = 0; q < nreq[i]; q++) jb->pre_enc[q] = enc[e + q];
                jb->pre_n = nreq[i];
                jb->pre_version = rm[jb->model]->version;
            }
        }
    }
    free(req);
    free(enc);
    free(who);
    free(nreq);
    for (int i = 0; i < DC_NUM_MODELS; i++)
        if (rm[i]) dc_registry_release(reg, rm[i]);
    atomic_fetch_add(&s->runs, runs);
    return runs;
}

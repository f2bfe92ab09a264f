/* The shared pretrained-encoder model: load/unload, batching, and the dc_model vtable. */
#include <dirent.h>
#include <stdatomic.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <xxhash.h>

#include "core/error.h"
#include "models/encoder_extras.h"
#include "models/encoder_graphs.h"
#include "models/encoder_model.h"
#include "models/model_backend.h"
#include "tensor/backend_loader.h"

#define DC_DEFAULT_BATCH_TOKENS 16384u

void dc_enc_seq_free(dc_enc_seq *s) {
    if (!s) return;
    free(s->ids);
    free(s->mask);
    free(s->global);
    memset(s, 0, sizeof *s);
}

dc_encoder_model *dc_encoder_model_of(dc_model *m) { return (dc_encoder_model *)m->impl; }

static bool is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

dc_status dc_model_dir_resolve(const char *dir, char *out, size_t cap) {
    char snaps[4096], ref[4096];
    snprintf(snaps, sizeof snaps, "%s/snapshots", dir);
    if (!is_dir(snaps)) {
        if (!is_dir(dir)) return dc_fail(DC_ERR_MODEL_NOT_FOUND, "model folder %s does not exist", dir);
        snprintf(out, cap, "%s", dir);
        return DC_OK;
    }
    /* hub cache: refs/main holds the commit whose snapshot to use */
    snprintf(ref, sizeof ref, "%s/refs/main", dir);
    FILE *f = fopen(ref, "r");
    char sha[128] = "";
    if (f) {
        if (!fgets(sha, sizeof sha, f)) sha[0] = 0;
        fclose(f);
        sha[strcspn(sha, "\r\n")] = 0;
    }
    if (!sha[0]) {
        /* no ref: accept a single snapshot */
        DIR *d = opendir(snaps);
        if (!d) return dc_fail(DC_ERR_IO, "open %s: %s", snaps, strerror(errno));
        struct dirent *e;
        int count = 0;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.') {
                count++;
                if (strlen(e->d_name) < sizeof sha) memcpy(sha, e->d_name, strlen(e->d_name) + 1);
            }
        closedir(d);
        if (count != 1)
            return dc_fail(DC_ERR_MODEL_NOT_FOUND, "%s: %d snapshots and no refs/main", dir, count);
    }
    int n = snprintf(out, cap, "%s/%s", snaps, sha);
    if (n < 0 || (size_t)n >= cap) return dc_fail(DC_ERR_INVALID_ARGUMENT, "path too long: %s", dir);
    if (!is_dir(out)) return dc_fail(DC_ERR_MODEL_NOT_FOUND, "snapshot %s does not exist", out);
    return DC_OK;
}

/* ---- tokenisation ---- */

dc_status dc_encoder_tokenize_text(dc_encoder_model *em, const char *prefix, const char *text,
                                   size_t len, uint32_t max_len, dc_enc_seq *seq) {
    memset(seq, 0, sizeof *seq);
    char *joined = NULL;
    const char *src = text;
    size_t slen = len;
    if (prefix && *prefix) {
        size_t pl = strlen(prefix);
        joined = malloc(pl + len + 1);
        if (!joined) return dc_fail(DC_ERR_OUT_OF_MEMORY, "prefixing %zu bytes", len);
        memcpy(joined, prefix, pl);
        if (len) memcpy(joined + pl, text, len);
        joined[pl + len] = 0;
        src = joined;
        slen = pl + len;
    }
    dc_encode_options o;
    dc_tokenizer_default_options(em->tok, &o);
    o.add_special_tokens = true;
    o.padding.enabled = false;
    o.truncation.enabled = true;
    o.truncation.max_length = max_len;
    o.truncation.stride = 0;
    o.truncation.strategy = DC_TRUNC_LONGEST_FIRST;
    o.truncation.direction = DC_SIDE_RIGHT;
    dc_encoding enc;
    dc_status st = dc_tokenizer_encode(em->tok, src ? src : "", slen, &o, &enc);
    free(joined);
    if (st != DC_OK) return st;
    seq->ids = malloc((enc.len ? enc.len : 1) * sizeof *seq->ids);
    if (!seq->ids) {
        dc_encoding_free(&enc);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "token ids");
    }
    memcpy(seq->ids, enc.ids, enc.len * sizeof *seq->ids);
    seq->len = (uint32_t)enc.len;
    seq->tokens_used = (uint32_t)enc.len;
    seq->truncated = enc.truncated;
    dc_encoding_free(&enc);
    return DC_OK;
}

static dc_status default_tokenize(dc_encoder_model *em, const dc_input *in, dc_enc_seq *seq) {
    const char *prefix = em->recipe->prefix ? em->recipe->prefix(in) : NULL;
    return dc_encoder_tokenize_text(em, prefix, in->content, in->content_len, em->max_len, seq);
}

dc_status dc_encoder_tokenize_all(dc_encoder_model *em, const dc_input *inputs, size_t n,
                                  dc_enc_seq **out) {
    *out = NULL;
    dc_enc_seq *seqs = calloc(n ? n : 1, sizeof *seqs);
    if (!seqs) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%zu sequences", n);
    for (size_t i = 0; i < n; i++) {
        dc_status st = em->recipe->tokenize ? em->recipe->tokenize(em, &inputs[i], &seqs[i])
                                            : default_tokenize(em, &inputs[i], &seqs[i]);
        if (st != DC_OK) {
            for (size_t j = 0; j <= i; j++) dc_enc_seq_free(&seqs[j]);
            free(seqs);
            return dc_fail_context(st, "input %zu", i);
        }
    }
    *out = seqs;
    return DC_OK;
}

/* ---- forward over packed chunks ---- */

static atomic_uint_fast64_t forwards;

uint64_t dc_pretrained_forward_count(void) { return atomic_load(&forwards); }

dc_status dc_encoder_run(dc_encoder_model *em, const dc_enc_seq *seqs, size_t n,
                         dc_enc_rows_fn fn, void *ctx) {
    atomic_fetch_add(&forwards, 1);
    const uint32_t H = dc_bert_config_of(em->bert)->hidden;
    const size_t budget = em->opt.max_batch_tokens ? em->opt.max_batch_tokens
                                                   : DC_DEFAULT_BATCH_TOKENS;
    size_t i = 0;
    dc_status st = DC_OK;
    while (i < n) {
        /* consecutive sequences while they fit the budget (at least one) */
        size_t j = i, rows = 0;
        bool any_mask = false, any_global = false;
        while (j < n && (j == i || rows + seqs[j].len <= budget)) {
            rows += seqs[j].len;
            any_mask |= seqs[j].mask != NULL;
            any_global |= seqs[j].global != NULL;
            j++;
        }
        size_t cnt = j - i;
        uint32_t *start = malloc((cnt + 1) * sizeof *start);
        uint32_t *ids = malloc((rows ? rows : 1) * sizeof *ids);
        uint8_t *mask = any_mask ? malloc(rows ? rows : 1) : NULL;
        uint8_t *global = any_global ? calloc(rows ? rows : 1, 1) : NULL;
        float *hidden = malloc((rows ? rows : 1) * H * sizeof *hidden);
        if (!start || !ids || (any_mask && !mask) || (any_global && !global) || !hidden) {
            st = dc_fail(DC_ERR_OUT_OF_MEMORY, "batch of %zu tokens", rows);
        } else {
            size_t r = 0;
            for (size_t s = 0; s < cnt; s++) {
                const dc_enc_seq *q = &seqs[i + s];
                start[s] = (uint32_t)r;
                memcpy(ids + r, q->ids, q->len * sizeof *ids);
                if (mask) {
                    if (q->mask) memcpy(mask + r, q->mask, q->len);
                    else memset(mask + r, 1, q->len);
                }
                if (global && q->global) memcpy(global + r, q->global, q->len);
                r += q->len;
            }
            start[cnt] = (uint32_t)r;
            dc_bert_batch b = {(uint32_t)cnt, start, ids, NULL, mask};
            st = dc_bert_forward_global(em->bert, &b, global, hidden);
            for (size_t s = 0; st == DC_OK && s < cnt; s++)
                st = fn(ctx, i + s, hidden + (size_t)start[s] * H);
        }
        free(start);
        free(ids);
        free(mask);
        free(global);
        free(hidden);
        if (st != DC_OK) return st;
        i = j;
    }
    return DC_OK;
}

/* ---- default head: sentence-transformers pooling ---- */

static dc_status default_finish(dc_encoder_model *em, const dc_input *in, const dc_enc_seq *seq,
                                const float *rows, float *vec) {
    (void)in;
    const uint32_t H = dc_bert_config_of(em->bert)->hidden;
    dc_pool(&em->st.pooling, rows, seq->len, H, seq->mask, vec);
    if (em->normalize) dc_l2_normalize_eps(vec, em->info->dim, 1e-12);
    return DC_OK;
}

/* ---- pooling / normalize overrides ---- */

bool dc_pretrained_takes_overrides(dc_model_id id) {
    return id == DC_MODEL_SEMANTIC || id == DC_MODEL_CAUSAL || id == DC_MODEL_CODE ||
           id == DC_MODEL_GRAPH || id == DC_MODEL_ENTITY;
}

static dc_status check_overrides(dc_model_id id, const dc_pretrained_options *opt) {
    const dc_model_info *info = dc_model_info_get(id);
    if ((unsigned)opt->pooling > DC_POOLING_LASTTOKEN ||
        (unsigned)opt->normalize > DC_NORMALIZE_FALSE)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "model create: unknown pooling %d / normalize %d",
                       (int)opt->pooling, (int)opt->normalize);
    if ((opt->pooling != DC_POOLING_AUTO || opt->normalize != DC_NORMALIZE_AUTO) &&
        !dc_pretrained_takes_overrides(id))
        return dc_fail(DC_ERR_INVALID_ARGUMENT,
                       "%s (%s): pooling \"%s\" / normalize \"%s\": its pooling is fixed, only "
                       "auto is accepted", info ? info->label : "?", info ? info->name : "?",
                       dc_pooling_mode_name(opt->pooling), dc_normalize_mode_name(opt->normalize));
    return DC_OK;
}

/* One sentence-transformers mode in place of the folder's / recipe's; the pooled width is the
 * hidden size for each of them. */
static void override_pooling(dc_pooling_config *p, dc_pooling_mode mode) {
    p->cls = mode == DC_POOLING_CLS;
    p->max = mode == DC_POOLING_MAX;
    p->mean = mode == DC_POOLING_MEAN;
    p->mean_sqrt_len = mode == DC_POOLING_MEAN_SQRT_LEN;
    p->weightedmean = mode == DC_POOLING_WEIGHTEDMEAN;
    p->lasttoken = mode == DC_POOLING_LASTTOKEN;
}

/* ---- vtable ---- */

static void em_release(dc_encoder_model *em) {
    if (em->recipe->free_head && em->head) em->recipe->free_head(em);
    em->head = NULL;
    em->head_bytes = 0;
    dc_bert_destroy(em->bert);
    em->bert = NULL;
    dc_tokenizer_free(em->tok);
    em->tok = NULL;
    dc_model_backend_close(em->be);
    em->be = NULL;
    em->backend_desc[0] = '\0';
}

static dc_status em_load(dc_model *m) {
    dc_encoder_model *em = dc_encoder_model_of(m);
    dc_status st;
    char path[4200];
    dc_weights *w = NULL;
    if (!em->dir_given[0])
        return dc_fail(DC_ERR_MODEL_NOT_FOUND, "no model folder configured for %s", em->info->label);
    if ((st = dc_model_dir_resolve(em->dir_given, em->dir, sizeof em->dir))) return st;
    dc_bert_config cfg;
    snprintf(path, sizeof path, "%s/config.json", em->dir);
    if ((st = dc_bert_config_read(path, &cfg))) return st;
    if (em->recipe->read_st_files) {
        if ((st = dc_st_config_read(em->dir, &em->st))) return st;
        if (em->opt.pooling != DC_POOLING_AUTO) override_pooling(&em->st.pooling, em->opt.pooling);
        uint32_t pooled = dc_pooling_dim(&em->st.pooling, cfg.hidden);
        if (em->st.pooling.word_embedding_dimension &&
            em->st.pooling.word_embedding_dimension != cfg.hidden)
            return dc_fail(DC_ERR_MODEL_LOAD,
                           "%s: pooling word_embedding_dimension %u differs from hidden_size %u",
                           em->dir, em->st.pooling.word_embedding_dimension, cfg.hidden);
        if (pooled != em->info->dim)
            return dc_fail(DC_ERR_INVALID_DIMENSION,
                           "%s: the pooled vector has %u values; %s needs %u", em->dir, pooled,
                           em->info->label, em->info->dim);
    }
    if (!em->recipe->read_st_files && em->opt.pooling != DC_POOLING_AUTO)
        override_pooling(&em->st.pooling, em->opt.pooling);
    em->normalize = em->opt.normalize == DC_NORMALIZE_AUTO
                        ? em->recipe->normalize || em->st.normalize
                        : em->opt.normalize == DC_NORMALIZE_TRUE;
    /* sequence limit: the recipe (or max_seq_length), capped by positions and options */
    uint32_t lim = em->recipe->max_tokens;
    if (em->st.max_seq_length) lim = em->st.max_seq_length;
    if (lim > dc_bert_max_tokens(&cfg)) lim = dc_bert_max_tokens(&cfg);
    if (em->opt.max_tokens && em->opt.max_tokens < lim) lim = em->opt.max_tokens;
    em->max_len = lim;

    if ((st = dc_model_backend_open(&em->opt, &em->be, em->backend_desc,
                                    sizeof em->backend_desc)))
        goto fail;
    if ((st = dc_tokenizer_load(em->dir, &em->tok))) goto fail;
    if (dc_tokenizer_vocab_size(em->tok, true) > cfg.vocab_size) {
        st = dc_fail(DC_ERR_MODEL_LOAD, "%s: the tokenizer has %zu tokens but vocab_size is %u",
                     em->dir, dc_tokenizer_vocab_size(em->tok, true), cfg.vocab_size);
        goto fail;
    }
    if ((st = dc_bert_weights_path(em->dir, path, sizeof path))) goto fail;
    if ((st = dc_weights_open(path, &w))) goto fail;
    cfg.weights = em->opt.weights;
    cfg.host_weights = em->opt.device.host_weights;
    if ((st = dc_bert_create(w, &cfg, em->be, &em->bert))) goto fail;
    if (em->recipe->load_head && (st = em->recipe->load_head(em, w))) goto fail;
    dc_weights_close(w);
    dc_model_backend_note_reads(em->be, em->backend_desc, sizeof em->backend_desc);
    return DC_OK;
fail:
    dc_weights_close(w);
    em_release(em);
    return st;
}

static dc_status em_unload(dc_model *m) {
    em_release(dc_encoder_model_of(m));
    return DC_OK;
}

/* Extras asked for by dc_pretrained_embed_ex, handed to em_embed (called on the same thread
 * through dc_model_embed_batch, so the wrapper's checks apply unchanged). */
typedef struct em_extras {
    const dc_pretokenized *pre;
    const bool *want;
    dc_sparse_vector *sparse;
    dc_token_matrix *rows;
} em_extras;

static _Thread_local const em_extras *tl_extras;

static bool wants(const em_extras *x, size_t i) { return x && (!x->want || x->want[i]); }

typedef struct embed_ctx {
    dc_encoder_model *em;
    const dc_input *inputs;
    const dc_enc_seq *seqs;
    dc_model_embedding *out;
    float *vec;
    const em_extras *x;
    const size_t *which; /* query-row pass: sequence k is input which[k] */
} embed_ctx;

static dc_status embed_one(void *p, size_t i, const float *rows) {
    embed_ctx *c = p;
    dc_encoder_model *em = c->em;
    const dc_model_id id = em->info->id;
    const bool extra = wants(c->x, i);
    dc_status st;
    if (id == DC_MODEL_SPARSE && extra && c->x->sparse)
        st = dc_e6_finish_ex(em, &c->seqs[i], rows, c->vec, &c->x->sparse[i]);
    else if (em->recipe->finish && em->opt.pooling == DC_POOLING_AUTO)
        st = em->recipe->finish(em, &c->inputs[i], &c->seqs[i], rows, c->vec);
    else
        st = default_finish(em, &c->inputs[i], &c->seqs[i], rows, c->vec);
    if (st != DC_OK) return st;
    /* a document's rows come from the rows its vector was pooled from */
    if (id == DC_MODEL_LATE_INTERACTION && extra && c->x->rows &&
        c->inputs[i].role != DC_ROLE_QUERY &&
        (st = dc_e12_rows(em, &c->seqs[i], rows, &c->x->rows[i])) != DC_OK)
        return st;
    st = dc_model_embedding_init(&c->out[i], id, c->vec, em->info->dim);
    if (st != DC_OK) return st;
    c->out[i].tokens_used = c->seqs[i].tokens_used;
    c->out[i].truncated = c->seqs[i].truncated;
    return DC_OK;
}

static dc_status query_rows_one(void *p, size_t k, const float *rows) {
    embed_ctx *c = p;
    return dc_e12_rows(c->em, &c->seqs[k], rows, &c->x->rows[c->which[k]]);
}

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A sequence from a shared encoding, as the recipe's own tokenisation would build it. */
static dc_status seq_from_encoding(dc_encoder_model *em, const dc_encoding *e, dc_enc_seq *seq) {
    if (em->info->id == DC_MODEL_LATE_INTERACTION) return dc_e12_seq_from_encoding(e, false, seq);
    memset(seq, 0, sizeof *seq);
    seq->ids = malloc((e->len ? e->len : 1) * sizeof *seq->ids);
    if (!seq->ids) return dc_fail(DC_ERR_OUT_OF_MEMORY, "token ids");
    if (e->len) memcpy(seq->ids, e->ids, e->len * sizeof *seq->ids);
    seq->len = (uint32_t)e->len;
    seq->tokens_used = (uint32_t)e->len;
    seq->truncated = e->truncated;
    if (em->info->id == DC_MODEL_CAUSAL) { /* Longformer: global attention on <s> (e5_causal.c) */
        seq->global = calloc(e->len ? e->len : 1, 1);
        if (!seq->global) {
            dc_enc_seq_free(seq);
            return dc_fail(DC_ERR_OUT_OF_MEMORY, "global attention mask");
        }
        if (e->len) seq->global[0] = 1;
    }
    return DC_OK;
}

static dc_status prepare_seqs(dc_encoder_model *em, const dc_input *inputs, size_t n,
                              const em_extras *x, dc_enc_seq **out) {
    if (!x || !x->pre) return dc_encoder_tokenize_all(em, inputs, n, out);
    *out = NULL;
    dc_enc_seq *seqs = calloc(n ? n : 1, sizeof *seqs);
    if (!seqs) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%zu sequences", n);
    dc_status st = DC_OK;
    for (size_t i = 0; i < n && st == DC_OK; i++) {
        if (x->pre[i].n && x->pre[i].enc[0]) {
            st = seq_from_encoding(em, x->pre[i].enc[0], &seqs[i]);
        } else {
            dc_enc_seq *one = NULL;
            st = dc_encoder_tokenize_all(em, &inputs[i], 1, &one);
            if (st == DC_OK) {
                seqs[i] = *one;
                free(one);
            }
        }
        if (st != DC_OK) dc_fail_context(st, "input %zu", i);
    }
    if (st != DC_OK) {
        for (size_t i = 0; i < n; i++) dc_enc_seq_free(&seqs[i]);
        free(seqs);
        return st;
    }
    *out = seqs;
    return DC_OK;
}

/* E12 rows of the query inputs that want them: a second, query-mode sequence each. */
static dc_status query_rows(dc_encoder_model *em, const dc_input *inputs, size_t n,
                            const em_extras *x) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += wants(x, i) && inputs[i].role == DC_ROLE_QUERY;
    if (!k) return DC_OK;
    dc_enc_seq *seqs = calloc(k, sizeof *seqs);
    size_t *which = malloc(k * sizeof *which);
    dc_status st = seqs && which ? DC_OK : dc_fail(DC_ERR_OUT_OF_MEMORY, "query rows");
    k = 0;
    for (size_t i = 0; i < n && st == DC_OK; i++) {
        if (!wants(x, i) || inputs[i].role != DC_ROLE_QUERY) continue;
        const dc_pretokenized *pt = x->pre ? &x->pre[i] : NULL;
        st = pt && pt->n == 2 && pt->enc[1] ? dc_e12_seq_from_encoding(pt->enc[1], true, &seqs[k])
                                            : dc_e12_query_seq(em, &inputs[i], &seqs[k]);
        which[k++] = i;
    }
    embed_ctx c = {.em = em, .inputs = inputs, .seqs = seqs, .x = x, .which = which};
    if (st == DC_OK) st = dc_encoder_run(em, seqs, k, query_rows_one, &c);
    for (size_t i = 0; seqs && i < k; i++) dc_enc_seq_free(&seqs[i]);
    free(seqs);
    free(which);
    return st;
}

static void free_extras(const em_extras *x, size_t n) {
    for (size_t i = 0; x && i < n; i++) {
        if (x->sparse) dc_sparse_vector_free(&x->sparse[i]);
        if (x->rows) dc_token_matrix_free(&x->rows[i]);
    }
}

static dc_status em_embed(dc_model *m, const dc_input *inputs, size_t n, dc_model_embedding *out) {
    dc_encoder_model *em = dc_encoder_model_of(m);
    const em_extras *x = tl_extras;
    uint64_t t0 = now_us();
    dc_enc_seq *seqs = NULL;
    dc_status st = prepare_seqs(em, inputs, n, x, &seqs);
    if (st != DC_OK) return st;
    embed_ctx c = {em, inputs, seqs, out, malloc(em->info->dim * sizeof(float)), x, NULL};
    if (!c.vec) st = dc_fail(DC_ERR_OUT_OF_MEMORY, "output vector");
    else st = dc_encoder_run(em, seqs, n, embed_one, &c);
    free(c.vec);
    for (size_t i = 0; i < n; i++) dc_enc_seq_free(&seqs[i]);
    free(seqs);
    if (st == DC_OK && x && x->rows && em->info->id == DC_MODEL_LATE_INTERACTION)
        st = query_rows(em, inputs, n, x);
    if (st != DC_OK) {
        for (size_t i = 0; i < n; i++) dc_model_embedding_free(&out[i]);
        free_extras(x, n);
        return st;
    }
    uint64_t dt = now_us() - t0;
    for (size_t i = 0; i < n; i++) out[i].latency_us = dt;
    return DC_OK;
}

static size_t em_memory(const dc_model *m) {
    const dc_encoder_model *em = (const dc_encoder_model *)m->impl;
    return dc_bert_memory_bytes(em->bert) + em->head_bytes;
}

static void em_destroy(dc_model *m) {
    dc_encoder_model *em = dc_encoder_model_of(m);
    em_release(em);
    free(em);
    free(m);
}

static const dc_model_vtable em_vt = {em_load, em_unload, em_embed, em_memory, em_destroy};

dc_status dc_encoder_model_create(const dc_encoder_recipe *recipe, const dc_pretrained_options *opt,
                                  dc_model **out) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "model create: NULL output");
    *out = NULL;
    if (!opt || !opt->model_dir || !opt->model_dir[0])
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "model create: no model folder");
    dc_encoder_model *em = calloc(1, sizeof *em);
    dc_model *m = calloc(1, sizeof *m);
    if (!em || !m) {
        free(em);
        free(m);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "model");
    }
    if (strlen(opt->model_dir) >= sizeof em->dir_given) {
        free(em);
        free(m);
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "model folder path is too long");
    }
    dc_status ws = dc_pretrained_check_weights(opt);
    if (ws != DC_OK) {
        free(em);
        free(m);
        return ws;
    }
    dc_status cs = check_overrides(recipe->id, opt);
    if (cs != DC_OK) {
        free(em);
        free(m);
        return cs;
    }
    snprintf(em->dir_given, sizeof em->dir_given, "%s", opt->model_dir);
    em->opt = *opt;
    em->opt.model_dir = em->dir_given;
    em->recipe = recipe;
    em->info = dc_model_info_get(recipe->id);
    dc_status st = dc_model_init(m, recipe->id, &em_vt, em);
    if (st != DC_OK) {
        free(em);
        free(m);
        return st;
    }
    *out = m;
    return DC_OK;
}

/* ---- the shared public entry points of pretrained.h ---- */

dc_status dc_pretrained_embed_unchecked(dc_model *m, const dc_input *inputs, size_t n,
                                        dc_model_embedding *out) {
    if (m && m->info && m->info->id == DC_MODEL_MULTIMODAL) return dc_e10_embed_unchecked(m, inputs, n, out);
    if (!m || !m->loaded || m->vt != &em_vt)
        return dc_fail(DC_ERR_NOT_INITIALIZED, "embed: not a loaded pretrained model");
    if (n) memset(out, 0, n * sizeof *out);
    return em_embed(m, inputs, n, out);
}

dc_status dc_pretrained_embed_ex(dc_model *m, const dc_input *inputs, size_t n,
                                 const dc_pretokenized *pre, const bool *want_extra,
                                 dc_model_embedding *out, dc_sparse_vector *sparse,
                                 dc_token_matrix *rows) {
    if (sparse && n) memset(sparse, 0, n * sizeof *sparse);
    if (rows && n) memset(rows, 0, n * sizeof *rows);
    if (!m || m->vt != &em_vt) return dc_model_embed_batch(m, inputs, n, out); /* E10, others */
    const bool e6 = m->info->id == DC_MODEL_SPARSE, e12 = m->info->id == DC_MODEL_LATE_INTERACTION;
    em_extras x = {pre, want_extra, e6 ? sparse : NULL, e12 ? rows : NULL};
    tl_extras = &x;
    dc_status st = dc_model_embed_batch(m, inputs, n, out);
    tl_extras = NULL;
    if (st != DC_OK) free_extras(&x, n); /* em_embed succeeded but the wrapper refused */
    return st;
}

dc_status dc_pretrained_token_requests(dc_model *m, const dc_input *in, bool want_extra,
                                       dc_token_request req[2], uint32_t *n) {
    *n = 0;
    if (!m || !m->loaded || m->vt != &em_vt || !in) return DC_OK;
    if (in->type != DC_INPUT_TEXT && in->type != DC_INPUT_CODE) return DC_OK;
    dc_encoder_model *em = dc_encoder_model_of(m);
    const dc_model_id id = em->info->id;
    if (id == DC_MODEL_LATE_INTERACTION) {
        dc_e12_requests(em, in, want_extra, req, n);
        return DC_OK;
    }
    /* a recipe with its own tokenisation tokenises for itself (E5's differs only by the
     * global mask seq_from_encoding adds) */
    if (em->recipe->tokenize && id != DC_MODEL_CAUSAL) return DC_OK;
    dc_token_request_init(&req[0], DC_TOK_FAMILY_BERT_UNCASED);
    req[0].prefix = em->recipe->prefix ? em->recipe->prefix(in) : NULL;
    req[0].max_length = em->max_len;
    *n = 1;
    return DC_OK;
}

/* Adds a file's name and bytes to h; false when it cannot be opened. */
static bool hash_file(XXH3_state_t *h, const char *dir, const char *name, bool *io_error) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    XXH3_128bits_update(h, name, strlen(name) + 1);
    char buf[65536];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) XXH3_128bits_update(h, buf, got);
    if (ferror(f)) *io_error = true;
    fclose(f);
    return true;
}

dc_status dc_pretrained_tokenizer_source(dc_model *m, char *dir, size_t cap, dc_hash128 *fp) {
    if (!m || !m->loaded || m->vt != &em_vt)
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT, "tokenizer source: not a loaded encoder model");
    dc_encoder_model *em = dc_encoder_model_of(m);
    XXH3_state_t *h = XXH3_createState();
    if (!h) return dc_fail(DC_ERR_OUT_OF_MEMORY, "hash state");
    XXH3_128bits_reset(h);
    /* what dc_tokenizer_load reads: tokenizer.json, else the slow-tokenizer files */
    static const char *const legacy[] = {"vocab.json", "merges.txt", "vocab.txt",
                                         "tokenizer_config.json", "special_tokens_map.json"};
    bool io_error = false, any = hash_file(h, em->dir, "tokenizer.json", &io_error);
    bool json = any;
    for (size_t i = 0; !json && i < sizeof legacy / sizeof legacy[0]; i++)
        if (hash_file(h, em->dir, legacy[i], &io_error) && i < 3) any = true;
    XXH128_hash_t d = XXH3_128bits_digest(h);
    XXH3_freeState(h);
    if (io_error) return dc_fail(DC_ERR_IO, "reading the tokenizer files of %s", em->dir);
    if (!any) return dc_fail(DC_ERR_UNSUPPORTED_FORMAT, "%s: no tokenizer files", em->dir);
    fp->lo = d.low64;
    fp->hi = d.high64;
    snprintf(dir, cap, "%s", em->dir);
    return DC_OK;
}

typedef struct hidden_ctx {
    float *rows;
    size_t bytes;
} hidden_ctx;

static dc_status copy_rows(void *p, size_t i, const float *rows) {
    (void)i;
    hidden_ctx *c = p;
    memcpy(c->rows, rows, c->bytes);
    return DC_OK;
}

dc_status dc_pretrained_hidden(dc_model *m, const dc_input *in, float **rows, uint32_t *n_tokens,
                               uint32_t *dim) {
    *rows = NULL;
    if (m && m->loaded && m->info && m->info->id == DC_MODEL_MULTIMODAL)
        return dc_fail(DC_ERR_UNSUPPORTED_MODALITY, "hidden: E10 (CLIP) has two towers; hidden states are not exposed");
    if (!m || !m->loaded || m->vt != &em_vt)
        return dc_fail(DC_ERR_NOT_INITIALIZED, "hidden: not a loaded pretrained model");
    dc_encoder_model *em = dc_encoder_model_of(m);
    dc_enc_seq *seq = NULL;
    dc_status st = dc_encoder_tokenize_all(em, in, 1, &seq);
    if (st != DC_OK) return st;
    const uint32_t H = dc_bert_config_of(em->bert)->hidden;
    hidden_ctx c = {malloc(((size_t)seq->len ? seq->len : 1) * H * sizeof(float)),
                    (size_t)seq->len * H * sizeof(float)};
    if (!c.rows) st = dc_fail(DC_ERR_OUT_OF_MEMORY, "hidden states");
    else st = dc_encoder_run(em, seq, 1, copy_rows, &c);
    if (st == DC_OK) {
        *rows = c.rows;
        *n_tokens = seq->len;
        *dim = H;
    } else {
        free(c.rows);
    }
    dc_enc_seq_free(seq);
    free(seq);
    return st;
}

void dc_pretrained_options_from_config(dc_model_id id, const dc_model_config *cfg,
                                       const char *models_dir, char *dirbuf, size_t cap,
                                       dc_pretrained_options *out) {
    memset(out, 0, sizeof *out);
    const dc_model_info *info = dc_model_info_get(id);
    if (cfg && cfg->path[0]) snprintf(dirbuf, cap, "%s", cfg->path);
    else snprintf(dirbuf, cap, "%s/%s", models_dir ? models_dir : ".", info ? info->name : "");
    out->model_dir = dirbuf;
    out->max_tokens = cfg ? cfg->max_tokens : 0;
    out->pooling = cfg ? cfg->pooling : DC_POOLING_AUTO;
    out->normalize = cfg ? cfg->normalize : DC_NORMALIZE_AUTO;
    out->weights = DC_WEIGHTS_F32;
    if (cfg && dc_pretrained_weight_format(cfg->quantization, &out->weights) != DC_OK) {
        out->weights = DC_WEIGHTS_F32;
        dc_error_clear();
    }
}

dc_status dc_pretrained_weight_format(dc_quantization q, dc_weight_format *out) {
    switch (q) {
    case DC_QUANTIZATION_NONE: *out = DC_WEIGHTS_F32; return DC_OK;
    case DC_QUANTIZATION_BF16: *out = DC_WEIGHTS_BF16; return DC_OK;
    case DC_QUANTIZATION_INT8: *out = DC_WEIGHTS_INT8; return DC_OK;
    default: break;
    }
    return dc_fail(DC_ERR_UNSUPPORTED_FORMAT,
                   "quantization \"%s\": the CPU backend runs none (fp32), bf16 and int8",
                   dc_quantization_name(q));
}

dc_status dc_pretrained_check_weights(const dc_pretrained_options *opt) {
    const bool cuda = opt->device.kind == DC_DEVICE_CUDA;
    switch (opt->weights) {
    case DC_WEIGHTS_F32:
    case DC_WEIGHTS_BF16: return DC_OK;
    case DC_WEIGHTS_INT8:
        if (!cuda) return DC_OK;
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT,
                       "model create: int8 weights run on the CPU backend only");
    case DC_WEIGHTS_F16:
    case DC_WEIGHTS_FP8_E4M3:
    case DC_WEIGHTS_NVFP4:
    case DC_WEIGHTS_MXFP4:
        if (cuda) return DC_OK;
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT,
                       "model create: %s weights need the CUDA backend (device cuda:N)",
                       dc_weight_format_name(opt->weights));
    }
    return dc_fail(DC_ERR_INVALID_ARGUMENT, "model create: unknown weight format %d",
                   (int)opt->weights);
}

const char *dc_pretrained_backend_desc(const dc_model *m) {
    if (!m || !m->loaded || !m->info) return "";
    if (m->info->id == DC_MODEL_MULTIMODAL) return dc_e10_backend_desc(m);
    if (m->vt != &em_vt) return "";
    return ((const dc_encoder_model *)m->impl)->backend_desc;
}

void dc_pretrained_graph_stats(const dc_model *m, uint64_t *recorded, uint64_t *launches,
                               uint64_t *failures) {
    *recorded = *launches = *failures = 0;
    if (!m || !m->loaded) return;
    dc_backend *be = m->vt == &em_vt ? ((const dc_encoder_model *)m->impl)->be : dc_e10_backend(m);
    dc_cuda_graph_stats gs;
    if (!dc_backend_is_cuda(be) || dc_backend_cuda_graph_stats(be, &gs) != DC_OK) return;
    *recorded = gs.recorded;
    *launches = gs.launches;
    *failures = gs.failures;
}

/* "the" k times as a passage (code for a model that takes no text). text has room for k
 * words. */
static dc_input warm_input(const dc_model *m, char *text, uint32_t k) {
    size_t n = 0;
    for (uint32_t i = 0; i < k; i++) n += (size_t)sprintf(text + n, i ? " the" : "the");
    return dc_model_accepts(m->info->id, DC_INPUT_TEXT) ? dc_input_text(text, n, DC_ROLE_PASSAGE)
                                                        : dc_input_code(text, n, NULL);
}

/* The tokens that input makes in the model (0 when truncated). */
static dc_status warm_tokens(dc_model *m, char *text, uint32_t k, uint32_t *len) {
    const dc_input in = warm_input(m, text, k);
    if (m->vt != &em_vt) return dc_e10_count_tokens(m, &in, len);
    dc_encoder_model *em = m->impl;
    dc_enc_seq seq = {0};
    dc_status st = em->recipe->tokenize ? em->recipe->tokenize(em, &in, &seq)
                                        : default_tokenize(em, &in, &seq);
    *len = st == DC_OK && !seq.truncated ? seq.len : 0;
    dc_enc_seq_free(&seq);
    return st;
}

/* The bucket a one-input forward of len tokens runs in (encoder_graphs.h; cap: the forward's
 * own limit). */
static uint32_t bucket_of(uint32_t len, uint32_t cap) {
    const uint32_t l = dc_graph_bucket_len(len);
    return l < cap ? l : cap;
}

dc_status dc_pretrained_warm_graphs(dc_model *m, uint32_t max_tokens, uint32_t *layouts) {
    *layouts = 0;
    uint32_t max_len = 0, cap = 0;
    if (!m || !m->loaded) return DC_OK;
    if (m->vt == &em_vt) {
        const dc_encoder_model *em = m->impl;
        if (!dc_bert_graphs_on(em->bert)) return DC_OK;
        max_len = em->max_len;
        cap = dc_bert_max_tokens(dc_bert_config_of(em->bert));
    } else if (!dc_e10_graph_limits(m, &max_len, &cap)) {
        return DC_OK;
    }
    const uint32_t limit = max_tokens < max_len ? max_tokens : max_len;
    char *text = malloc((size_t)limit * 4 + 8);
    if (!text) return dc_fail(DC_ERR_OUT_OF_MEMORY, "graph warm-up text");
    /* tokens = base + per · words (the specials and the prefix, then each word's pieces) */
    uint32_t one = 0, two = 0;
    dc_status st = warm_tokens(m, text, 1, &one);
    if (!st) st = warm_tokens(m, text, 2, &two);
    const uint32_t per = two > one && two - one <= one ? two - one : 0, base = one - per;
    /* every bucket a length up to the limit can fall in: any length of a bucket records its
     * graph, since the forward is padded to the bucket */
    for (uint32_t len = one, L; st == DC_OK && per && len <= limit; len = L + 1) {
        L = bucket_of(len, cap);
        const uint32_t top = L < limit ? L : limit, k = (top - base) / per;
        uint32_t got = 0;
        if ((st = warm_tokens(m, text, k, &got)) || !got || bucket_of(got, cap) != L) continue;
        const dc_input in = warm_input(m, text, k);
        for (int pass = 0; pass < 2 && st == DC_OK; pass++) {
            dc_model_embedding e;
            if ((st = dc_model_embed_batch(m, &in, 1, &e)) == DC_OK) dc_model_embedding_free(&e);
        }
        *layouts += st == DC_OK;
    }
    free(text);
    bool vision = false;
    if (st == DC_OK && m->vt != &em_vt && (st = dc_e10_warm_vision(m, &vision)) == DC_OK)
        *layouts += vision;
    return st;
}

bool dc_pretrained_supports(dc_model_id id) {
    return id == DC_MODEL_SEMANTIC || id == DC_MODEL_CAUSAL || id == DC_MODEL_SPARSE ||
           id == DC_MODEL_CODE || id == DC_MODEL_GRAPH || id == DC_MODEL_MULTIMODAL ||
           id == DC_MODEL_ENTITY || id == DC_MODEL_LATE_INTERACTION;
}

dc_status dc_pretrained_create(dc_model_id id, const dc_pretrained_options *opt, dc_model **out) {
    if (opt && dc_pretrained_supports(id)) {
        dc_status st = check_overrides(id, opt);
        if (st != DC_OK) {
            if (out) *out = NULL;
            return st;
        }
    }
    switch (id) {
    case DC_MODEL_SEMANTIC: return dc_e1_create(opt, out);
    case DC_MODEL_CAUSAL: return dc_e5_create(opt, out);
    case DC_MODEL_SPARSE: return dc_e6_create(opt, out);
    case DC_MODEL_CODE: return dc_e7_create(opt, out);
    case DC_MODEL_MULTIMODAL: return dc_e10_create(opt, out);
    case DC_MODEL_GRAPH: return dc_e8_create(opt, out);
    case DC_MODEL_ENTITY: return dc_e11_create(opt, out);
    case DC_MODEL_LATE_INTERACTION: return dc_e12_create(opt, out);
    default: break;
    }
    if (out) *out = NULL;
    return dc_fail(DC_ERR_MODEL_NOT_FOUND, "model id %d is not a pretrained model",
                   (int)id);
}

/* The encoder's recorded forwards (models/encoder_graphs.c and bert.c's graph path) on the CPU:
 * a fake backend wraps the CPU backend with graph_* ops that really record (each op the layers
 * use is kept with its arguments, the attention's offsets and mask copied, as the CUDA backend
 * uploads its plan) and replay them at launch, so a replay computes with the CPU's kernels and
 * must give, bit for bit, what a direct forward of the same layout gives. Small batches run
 * padded to their bucket where graphs are on, so the output is compared with the plain CPU
 * model's within 2e-5, and a replay with the direct run of the same padded layout bit for bit.
 * Checked: a layout is recorded on its second sighting and replayed after, with new token ids
 * (RoBERTa's positions follow them); lengths in one bucket share a graph; the key mask is data
 * that the graph reads from the activation block; a refused graph_begin (another thread recording) is
 * tried again, "graphs off" stops all tries, a failed recording runs the forward directly and
 * is not tried again for that layout; at most DC_GRAPH_CACHE_MAX layouts are kept; closing
 * the model destroys every graph and returns every buffer. Longformer (global rows gathered and
 * scattered inside the graph) and CLIP's text tower (causal) and vision tower too. The CUDA side of the same path runs in gpu.emulated_graphs and on a GPU. */
#include "models/bert.h"
#include "models/clip.h"
#include "models/encoder_graphs.h"
#pragma GCC diagnostic push /* the golden-file helpers are not used here */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "test_encoder_util.h"
#pragma GCC diagnostic pop

/* ---- the recording fake ---- */

typedef enum { OP_LINEAR, OP_LAYERNORM, OP_ACT, OP_ADD, OP_ATTN, OP_COPY_ROWS } op_kind;
typedef struct op {
    op_kind kind;
    const dc_linear *l;
    const float *x, *res, *g, *b, *k, *v;
    float *y;
    size_t rows, cols, ld_q, ld_kv, ld_out;
    float eps, scale;
    dc_activation act;
    uint32_t heads, hd, n_seqs, left, right, n_rows;
    bool ex; /* attention_ex */
    /* copies, as the CUDA backend uploads its plan: offsets, key mask, global mask, query rows
     * (copy_rows: its two row lists in list and list2) */
    uint32_t *start, *list, *list2;
    uint8_t *mask, *gmask;
    bool mask_kept; /* mask is backend memory, read at each launch (not a copy) */
} op;

struct dc_graph {
    op *ops;
    size_t n;
};

static struct {
    dc_backend *cpu;
    dc_backend_ops ops;
    dc_backend be;
    bool recording;
    dc_graph *rec;
    bool broken;
    dc_status begin_result; /* what graph_begin answers (DC_OK: records) */
    bool fail_end;
    int begins, ends, launches, made, destroyed;
    long live_buffers;
    struct { const char *p; size_t n; } blocks[64]; /* live allocations: backend memory */
} fk;

/* Whether p is backend memory (inside a live allocation): a recording keeps such a pointer
 * and reads it at each launch, as the CUDA backend does; host arrays are copied (staged). */
static bool is_backend(const void *p) {
    for (size_t i = 0; p && i < sizeof fk.blocks / sizeof *fk.blocks; i++)
        if (fk.blocks[i].p && (const char *)p >= fk.blocks[i].p &&
            (const char *)p < fk.blocks[i].p + fk.blocks[i].n)
            return true;
    return false;
}

static void push(const op *o) {
    fk.rec->ops = realloc(fk.rec->ops, (fk.rec->n + 1) * sizeof *fk.rec->ops);
    fk.rec->ops[fk.rec->n++] = *o;
}

static dc_status f_alloc(dc_backend *be, size_t bytes, void **out) {
    (void)be;
    dc_status st = fk.cpu->ops->alloc(fk.cpu, bytes, out);
    if (st) return st;
    fk.live_buffers++;
    for (size_t i = 0; i < sizeof fk.blocks / sizeof *fk.blocks; i++)
        if (!fk.blocks[i].p) {
            fk.blocks[i].p = *out;
            fk.blocks[i].n = bytes;
            break;
        }
    return st;
}
static void f_release(dc_backend *be, void *p) {
    (void)be;
    if (p) fk.live_buffers--;
    for (size_t i = 0; p && i < sizeof fk.blocks / sizeof *fk.blocks; i++)
        if (fk.blocks[i].p == p) fk.blocks[i].p = NULL;
    fk.cpu->ops->release(fk.cpu, p);
}
static dc_status f_copy(dc_backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (fk.recording) { /* waits for the device: a recording cannot hold it */
        fk.broken = true;
        return DC_ERR_INVALID_ARGUMENT;
    }
    memmove(dst, src, bytes);
    return DC_OK;
}
static dc_status f_linear(dc_backend *be, const dc_linear *l, const float *x, size_t rows, float *y) {
    (void)be;
    if (fk.recording) return push(&(op){.kind = OP_LINEAR, .l = l, .x = x, .rows = rows, .y = y}), DC_OK;
    return fk.cpu->ops->linear_forward(fk.cpu, l, x, rows, y);
}
static void f_layernorm(dc_backend *be, const float *x, const float *res, const float *g,
                        const float *b, float eps, size_t rows, size_t cols, float *y) {
    (void)be;
    if (fk.recording)
        push(&(op){.kind = OP_LAYERNORM, .x = x, .res = res, .g = g, .b = b, .eps = eps,
                   .rows = rows, .cols = cols, .y = y});
    else fk.cpu->ops->layernorm(fk.cpu, x, res, g, b, eps, rows, cols, y);
}
static void f_act(dc_backend *be, dc_activation a, float *x, size_t n) {
    (void)be;
    if (fk.recording) push(&(op){.kind = OP_ACT, .act = a, .y = x, .cols = n});
    else fk.cpu->ops->activation(fk.cpu, a, x, n);
}
static void f_add(dc_backend *be, float *y, const float *x, size_t n) {
    (void)be;
    if (fk.recording) push(&(op){.kind = OP_ADD, .y = y, .x = x, .cols = n});
    else fk.cpu->ops->add(fk.cpu, y, x, n);
}
static void *copy_of(const void *p, size_t bytes) {
    if (!p) return NULL;
    void *d = malloc(bytes ? bytes : 1);
    memcpy(d, p, bytes);
    return d;
}
static void f_copy_rows(dc_backend *be, float *dst, const uint32_t *dr, const float *src,
                        const uint32_t *sr, size_t n, size_t cols) {
    (void)be;
    if (fk.recording)
        push(&(op){.kind = OP_COPY_ROWS, .y = dst, .x = src, .list = copy_of(dr, n * sizeof *dr),
                   .list2 = copy_of(sr, n * sizeof *sr), .n_rows = (uint32_t)n, .cols = cols});
    else fk.cpu->ops->copy_rows(fk.cpu, dst, dr, src, sr, n, cols);
}
static dc_status f_attn_ex(dc_backend *be, const float *q, size_t ld_q, const float *k,
                           const float *v, size_t ld_kv, float *out, size_t ld_out, uint32_t heads,
                           uint32_t hd, float scale, const dc_seq_batch *s, const dc_attn_opts *ao) {
    (void)be;
    if (!fk.recording)
        return fk.cpu->ops->attention_ex(fk.cpu, q, ld_q, k, v, ld_kv, out, ld_out, heads, hd,
                                         scale, s, ao);
    const size_t T = s->start[s->n_seqs];
    op o = {.kind = OP_ATTN, .ex = true, .left = ao->left, .right = ao->right, .x = q,
            .ld_q = ld_q, .k = k, .v = v, .ld_kv = ld_kv, .y = out, .ld_out = ld_out,
            .heads = heads, .hd = hd, .scale = scale, .n_seqs = s->n_seqs, .n_rows = ao->n_rows};
    o.start = copy_of(s->start, (s->n_seqs + 1) * sizeof *o.start);
    o.mask_kept = is_backend(s->key_mask);
    o.mask = o.mask_kept ? (uint8_t *)s->key_mask : copy_of(s->key_mask, T);
    o.gmask = copy_of(ao->global_mask, T);
    o.list = copy_of(ao->rows, ao->n_rows * sizeof *ao->rows);
    push(&o);
    return DC_OK;
}
static dc_status f_attn(dc_backend *be, const float *q, size_t ld_q, const float *k, const float *v,
                        size_t ld_kv, float *out, size_t ld_out, uint32_t heads, uint32_t hd,
                        float scale, const dc_seq_batch *s) {
    (void)be;
    if (!fk.recording)
        return fk.cpu->ops->attention(fk.cpu, q, ld_q, k, v, ld_kv, out, ld_out, heads, hd, scale, s);
    op o = {.kind = OP_ATTN, .x = q, .ld_q = ld_q, .k = k, .v = v, .ld_kv = ld_kv, .y = out,
            .ld_out = ld_out, .heads = heads, .hd = hd, .scale = scale, .n_seqs = s->n_seqs};
    o.start = malloc((s->n_seqs + 1) * sizeof *o.start);
    memcpy(o.start, s->start, (s->n_seqs + 1) * sizeof *o.start);
    o.mask_kept = is_backend(s->key_mask);
    o.mask = o.mask_kept ? (uint8_t *)s->key_mask : copy_of(s->key_mask, s->start[s->n_seqs]);
    push(&o);
    return DC_OK;
}
static dc_status f_begin(dc_backend *be) {
    (void)be;
    fk.begins++;
    if (fk.begin_result) return fk.begin_result;
    fk.rec = calloc(1, sizeof *fk.rec);
    fk.recording = true;
    fk.broken = false;
    return DC_OK;
}
static void free_graph(dc_graph *g) {
    for (size_t i = 0; i < g->n; i++) {
        op *o = &g->ops[i];
        free(o->start), free(o->gmask), free(o->list), free(o->list2);
        if (!o->mask_kept) free(o->mask);
    }
    free(g->ops);
    free(g);
}
static dc_status f_end(dc_backend *be, dc_graph **out) {
    (void)be;
    fk.ends++;
    fk.recording = false;
    *out = NULL;
    if (fk.broken || fk.fail_end) {
        free_graph(fk.rec);
        return DC_ERR_GPU;
    }
    *out = fk.rec;
    fk.made++;
    return DC_OK;
}
static dc_status f_launch(dc_backend *be, dc_graph *g) {
    (void)be;
    fk.launches++;
    for (size_t i = 0; i < g->n; i++) {
        const op *o = &g->ops[i];
        dc_status st = DC_OK;
        switch (o->kind) {
        case OP_LINEAR: st = fk.cpu->ops->linear_forward(fk.cpu, o->l, o->x, o->rows, o->y); break;
        case OP_LAYERNORM:
            fk.cpu->ops->layernorm(fk.cpu, o->x, o->res, o->g, o->b, o->eps, o->rows, o->cols, o->y);
            break;
        case OP_ACT: fk.cpu->ops->activation(fk.cpu, o->act, o->y, o->cols); break;
        case OP_ADD: fk.cpu->ops->add(fk.cpu, o->y, o->x, o->cols); break;
        case OP_COPY_ROWS:
            fk.cpu->ops->copy_rows(fk.cpu, o->y, o->list, o->x, o->list2, o->n_rows, o->cols);
            break;
        case OP_ATTN: {
            dc_seq_batch s = {o->n_seqs, o->start, o->mask};
            dc_attn_opts ao = {o->left, o->right, o->gmask, o->list, o->n_rows};
            st = o->ex ? fk.cpu->ops->attention_ex(fk.cpu, o->x, o->ld_q, o->k, o->v, o->ld_kv,
                                                   o->y, o->ld_out, o->heads, o->hd, o->scale, &s, &ao)
                       : fk.cpu->ops->attention(fk.cpu, o->x, o->ld_q, o->k, o->v, o->ld_kv, o->y,
                                                o->ld_out, o->heads, o->hd, o->scale, &s);
            break;
        }
        }
        if (st) return st;
    }
    return DC_OK;
}
static void f_destroy(dc_backend *be, dc_graph *g) {
    (void)be;
    fk.destroyed++;
    free_graph(g);
}

static dc_backend *fake_open(void) {
    memset(&fk, 0, sizeof fk);
    assert_ok(dc_backend_cpu_create(NULL, &fk.cpu));
    fk.ops = *fk.cpu->ops;
    fk.ops.name = "fake-graphs";
    fk.ops.alloc = f_alloc;
    fk.ops.release = f_release;
    fk.ops.upload = f_copy;
    fk.ops.download = f_copy;
    fk.ops.linear_forward = f_linear;
    fk.ops.layernorm = f_layernorm;
    fk.ops.activation = f_act;
    fk.ops.attention = f_attn;
    fk.ops.attention_ex = f_attn_ex;
    fk.ops.add = f_add;
    fk.ops.copy_rows = f_copy_rows;
    fk.ops.graph_begin = f_begin;
    fk.ops.graph_end = f_end;
    fk.ops.graph_launch = f_launch;
    fk.ops.graph_destroy = f_destroy;
    /* prepared linears and parameters are the CPU backend's own */
    fk.be = (dc_backend){.ops = &fk.ops, .impl = fk.cpu->impl};
    return &fk.be;
}

/* ---- models and batches ---- */

static dc_bert *load_on(const char *dir, dc_backend *be) {
    char path[4200];
    dc_bert_config cfg;
    snprintf(path, sizeof path, "%s/config.json", dir);
    assert_ok(dc_bert_config_read(path, &cfg));
    assert_ok(dc_bert_weights_path(dir, path, sizeof path));
    dc_weights *w = NULL;
    assert_ok(dc_weights_open(path, &w));
    dc_bert *m = NULL;
    assert_ok(dc_bert_create(w, &cfg, be, &m));
    dc_weights_close(w);
    return m;
}

typedef struct batch {
    uint32_t n, start[17], ids[512];
    uint8_t mask[512];
    bool masked;
} batch;

static void make(batch *b, const uint32_t *lens, uint32_t n, uint32_t seed, uint32_t vocab,
                 uint32_t pad) {
    memset(b, 0, sizeof *b);
    b->n = n;
    for (uint32_t s = 0; s < n; s++) b->start[s + 1] = b->start[s] + lens[s];
    assert_true(b->start[n] <= 512);
    for (uint32_t r = 0; r < b->start[n]; r++) {
        b->ids[r] = 5 + (seed * 7919u + r * 104729u) % (vocab - 6);
        if (seed % 2 && r % 5 == 2) b->ids[r] = pad; /* RoBERTa: positions skip pads */
        b->mask[r] = 1;
    }
}

/* got equals want within 2e-5 (a padded forward adds in another order at most). */
static void close_to(const float *want, const float *got, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(want[i] - got[i]) <= 2e-5f)) fail_msg("value %zu: %g, want %g", i, got[i], want[i]);
}

/* The graphed model's output, into got (n floats), checked against the plain CPU model's. */
static void run_into(dc_bert *ref, dc_bert *m, const batch *b, float *got) {
    const size_t n = (size_t)b->start[b->n] * dc_bert_config_of(ref)->hidden;
    dc_bert_batch bb = {b->n, b->start, b->ids, NULL, b->masked ? b->mask : NULL};
    float *want = malloc(n * sizeof *want);
    assert_ok(dc_bert_forward(ref, &bb, want));
    assert_ok(dc_bert_forward(m, &bb, got));
    close_to(want, got, n);
    free(want);
}

static void same(dc_bert *ref, dc_bert *m, const batch *b) {
    float *got = malloc((size_t)b->start[b->n] * dc_bert_config_of(ref)->hidden * sizeof *got);
    run_into(ref, m, b, got);
    free(got);
}

typedef struct env {
    char *dir;
    dc_backend *cpu, *fake;
    dc_bert *ref, *m;
    uint32_t vocab, pad;
} env;

static void env_open(env *e, const char *fixture) {
    e->dir = fx_make(fixture, NULL);
    e->fake = fake_open();
    assert_ok(dc_backend_cpu_create(NULL, &e->cpu));
    e->ref = load_on(e->dir, e->cpu);
    e->m = load_on(e->dir, e->fake);
    e->vocab = dc_bert_config_of(e->ref)->vocab_size;
    e->pad = dc_bert_config_of(e->ref)->pad_token_id;
}

static void env_close(env *e) {
    const int made = fk.made;
    dc_bert_destroy(e->m);
    assert_int_equal(fk.destroyed, made);   /* every graph destroyed with the model */
    assert_int_equal(fk.live_buffers, 0);   /* and every buffer returned */
    dc_bert_destroy(e->ref);
    dc_backend_destroy(e->cpu);
    dc_backend_destroy(fk.cpu);
    fx_drop(e->dir);
}

static const uint32_t lens[] = {7, 19, 1, 12};

static void test_record_then_replay(const char *fixture) {
    env e;
    env_open(&e, fixture);
    const size_t n = 39 * (size_t)dc_bert_config_of(e.ref)->hidden;
    float *direct = malloc(n * sizeof *direct), *got = malloc(n * sizeof *got);
    batch b;
    make(&b, lens, 4, 1, e.vocab, e.pad); /* padded to 4 sequences of 24 rows */
    run_into(e.ref, e.m, &b, direct);
    assert_int_equal(fk.begins, 0); /* first sighting: nothing recorded */
    run_into(e.ref, e.m, &b, got);
    assert_int_equal(fk.made, 1);
    assert_int_equal(fk.launches, 1); /* recorded, then launched: nothing ran while recording */
    assert_memory_equal(direct, got, n * sizeof *got);
    run_into(e.ref, e.m, &b, got); /* a replay computes what the direct run did, bit for bit */
    assert_memory_equal(direct, got, n * sizeof *got);
    for (uint32_t seed = 2; seed < 6; seed++) { /* replays with other ids (and pads) */
        make(&b, lens, 4, seed, e.vocab, e.pad);
        same(e.ref, e.m, &b);
    }
    assert_int_equal(fk.made, 1);
    assert_int_equal(fk.launches, 6);
    /* the same offsets with key masks: the same layout, each mask read as data */
    b.masked = true;
    for (uint32_t k = 0; k < 3; k++) {
        for (uint32_t r = 0; r < b.start[4]; r++) b.mask[r] = (r + k) % 3 != 1;
        for (int s = 0; s < 4; s++) b.mask[b.start[s]] = 1;
        same(e.ref, e.m, &b);
    }
    assert_int_equal(fk.made, 1);
    assert_int_equal(fk.launches, 9);
    /* other lengths in the same bucket (1 to 4 sequences, the longest 17 to 24): the same graph */
    const uint32_t other[][4] = {{24, 3, 3, 9}, {17, 20}, {5, 18, 2}};
    const uint32_t count[] = {4, 2, 3};
    b.masked = false;
    make(&b, other[0], count[0], 7, e.vocab, e.pad);
    same(e.ref, e.m, &b);
    make(&b, other[2], count[2], 8, e.vocab, e.pad);
    same(e.ref, e.m, &b);
    const uint32_t full[4] = {24, 24, 24, 24}; /* fills the bucket: the same layout still */
    make(&b, full, 4, 10, e.vocab, e.pad);
    same(e.ref, e.m, &b);
    assert_int_equal(fk.made, 1);
    assert_int_equal(fk.launches, 12);
    make(&b, other[1], count[1], 9, e.vocab, e.pad); /* 2 sequences: another bucket */
    same(e.ref, e.m, &b);
    same(e.ref, e.m, &b);
    assert_int_equal(fk.made, 2);
    free(direct);
    free(got);
    env_close(&e);
}

/* The ladder and the bucket of a batch: lengths to 8, 12, 16, 24, ..., counts to powers of two,
 * capped at the model's limit; refused past doubling (plus 64 rows) or past the limit. */
static void test_buckets(void **state) {
    (void)state;
    static const uint32_t len[][2] = {{0, 8}, {1, 8}, {8, 8}, {9, 12}, {12, 12}, {13, 16},
                                      {17, 24}, {25, 32}, {33, 48}, {100, 128}, {129, 192},
                                      {385, 512}, {513, 768}};
    for (size_t i = 0; i < sizeof len / sizeof *len; i++)
        assert_int_equal(dc_graph_bucket_len(len[i][0]), len[i][1]);
    dc_graph_bucket bk;
    const uint32_t a[4] = {0, 9, 20, 30}; /* 9, 11, 10 rows */
    assert_true(dc_graph_bucket_of(3, a, 512, &bk));
    assert_int_equal(bk.n_seqs, 4);
    assert_int_equal(bk.len, 12);
    const uint32_t b[2] = {0, 70}; /* 70 rows under a limit of 77: 96 capped to 77 */
    assert_true(dc_graph_bucket_of(1, b, 77, &bk));
    assert_int_equal(bk.len, 77);
    assert_false(dc_graph_bucket_of(1, b, 64, &bk)); /* longer than the limit */
    const uint32_t c[4] = {0, 100, 101, 102};        /* 4 × 128 rows for 102: refused */
    assert_false(dc_graph_bucket_of(3, c, 512, &bk));
}

static void test_bert_graphs(void **state) {
    (void)state;
    test_record_then_replay("bert");
}

static void test_roberta_graphs(void **state) {
    (void)state;
    test_record_then_replay("roberta");
}

static void test_refusals(void **state) {
    (void)state;
    env e;
    env_open(&e, "bert");
    batch b;
    make(&b, lens, 3, 3, e.vocab, e.pad);
    /* another thread recording: run directly, try again next time */
    fk.begin_result = DC_ERR_OVERLOADED;
    same(e.ref, e.m, &b);
    same(e.ref, e.m, &b);
    assert_int_equal(fk.begins, 1);
    fk.begin_result = DC_OK;
    same(e.ref, e.m, &b);
    assert_int_equal(fk.made, 1);
    /* a recording that fails: the forward runs directly, the layout is not tried again */
    make(&b, lens, 2, 4, e.vocab, e.pad);
    fk.fail_end = true;
    same(e.ref, e.m, &b);
    const int begins = fk.begins;
    same(e.ref, e.m, &b);
    assert_int_equal(fk.begins, begins + 1);
    same(e.ref, e.m, &b);
    assert_int_equal(fk.begins, begins + 1);
    assert_int_equal(fk.made, 1);
    fk.fail_end = false;
    /* graphs off for the backend: no layout is tried again */
    make(&b, lens, 1, 5, e.vocab, e.pad);
    fk.begin_result = DC_ERR_UNSUPPORTED_FORMAT;
    same(e.ref, e.m, &b);
    same(e.ref, e.m, &b);
    fk.begin_result = DC_OK;
    const int after_off = fk.begins;
    make(&b, lens, 4, 6, e.vocab, e.pad);
    for (int i = 0; i < 3; i++) same(e.ref, e.m, &b);
    assert_int_equal(fk.begins, after_off);
    env_close(&e);
}

/* Longformer: banded attention with global tokens, whose rows are gathered, projected and
 * scattered back inside the graph; the global rows are part of the layout. */
static void test_longformer_graphs(void **state) {
    (void)state;
    env e;
    env_open(&e, "longformer");
    const size_t H = dc_bert_config_of(e.ref)->hidden;
    const uint32_t lf_lens[] = {40, 9, 23};
    batch b;
    uint8_t gm[128] = {0};
    float *want = malloc(72 * H * sizeof *want), *got = malloc(72 * H * sizeof *got);
    for (uint32_t run = 0; run < 5; run++) {
        make(&b, lf_lens, 3, run, e.vocab, e.pad);
        memset(gm, 0, sizeof gm);
        for (int s = 0; s < 3; s++) gm[b.start[s]] = 1; /* <s> of each sequence */
        if (run >= 3) gm[b.start[0] + 7] = 1;            /* another global row: another layout */
        dc_bert_batch bb = {b.n, b.start, b.ids, NULL, NULL};
        assert_ok(dc_bert_forward_global(e.ref, &bb, gm, want));
        assert_ok(dc_bert_forward_global(e.m, &bb, gm, got));
        close_to(want, got, (size_t)b.start[3] * H);
    }
    assert_int_equal(fk.made, 2);    /* runs 1 and 4 recorded */
    assert_int_equal(fk.launches, 3); /* runs 1, 2 and 4 */
    free(want);
    free(got);
    env_close(&e);
}

static void test_lru(void **state) {
    (void)state;
    env e;
    env_open(&e, "bert");
    /* DC_GRAPH_CACHE_MAX + 4 buckets (1, 2, 4 or 8 sequences of 8 to 32 rows), each seen
     * twice, one row short of the bucket, then the first one again */
    static const uint32_t counts[] = {1, 2, 4, 8}, blen[] = {8, 12, 16, 24, 32};
    assert_int_equal(4 * 5, DC_GRAPH_CACHE_MAX + 4);
    batch b;
    uint32_t l[8];
    for (uint32_t i = 0; i < 20; i++) {
        for (uint32_t s = 0; s < 8; s++) l[s] = blen[i % 5] - 1;
        make(&b, l, counts[i / 5], i, e.vocab, e.pad);
        same(e.ref, e.m, &b);
        same(e.ref, e.m, &b);
    }
    assert_int_equal(fk.made, DC_GRAPH_CACHE_MAX + 4);
    assert_int_equal(fk.destroyed, 4); /* the least recently used made room */
    for (uint32_t s = 0; s < 8; s++) l[s] = 7;
    make(&b, l, 1, 0, e.vocab, e.pad);
    same(e.ref, e.m, &b); /* evicted: seen anew */
    assert_int_equal(fk.made, DC_GRAPH_CACHE_MAX + 4);
    /* a batch that padding would more than double runs unpadded, graphed by its own offsets */
    const uint32_t lop[3] = {36, 1, 1};
    make(&b, lop, 3, 1, e.vocab, e.pad);
    same(e.ref, e.m, &b);
    same(e.ref, e.m, &b);
    assert_int_equal(fk.made, DC_GRAPH_CACHE_MAX + 5);
    env_close(&e);
}

static dc_clip *clip_on(const char *dir, dc_backend *be) {
    char path[4200];
    dc_clip_config cfg;
    snprintf(path, sizeof path, "%s/config.json", dir);
    assert_ok(dc_clip_config_read(path, &cfg));
    assert_ok(dc_bert_weights_path(dir, path, sizeof path));
    dc_weights *w = NULL;
    assert_ok(dc_weights_open(path, &w));
    dc_clip *m = NULL;
    assert_ok(dc_clip_create(w, &cfg, be, &m));
    dc_weights_close(w);
    return m;
}

/* CLIP: text batches (causal attention) and image batches (a fixed layout per image count). */
static void test_clip_graphs(void **state) {
    (void)state;
    char *dir = fx_make("clip", NULL);
    dc_backend *fake = fake_open(), *cpu = NULL;
    assert_ok(dc_backend_cpu_create(NULL, &cpu));
    dc_clip *ref = clip_on(dir, cpu), *m = clip_on(dir, fake);
    const dc_clip_config *c = dc_clip_config_of(ref);
    const uint32_t P = c->projection_dim, vocab = c->vocab_size;
    const uint32_t start[3] = {0, 5, 13};
    uint32_t ids[13];
    float want[3 * 1024], got[3 * 1024];
    assert_true(P <= 1024);
    for (uint32_t run = 0; run < 4; run++) {
        for (uint32_t r = 0; r < 13; r++) ids[r] = 1 + (run * 31 + r * 17) % (vocab - 2);
        assert_ok(dc_clip_text_features(ref, 2, start, ids, want));
        assert_ok(dc_clip_text_features(m, 2, start, ids, got));
        close_to(want, got, 2 * P);
    }
    assert_int_equal(fk.made, 1);
    assert_int_equal(fk.launches, 3);
    const size_t px = (size_t)c->num_channels * c->image_size * c->image_size;
    float *pix = malloc(2 * px * sizeof *pix);
    for (uint32_t run = 0; run < 3; run++) {
        for (size_t i = 0; i < 2 * px; i++) pix[i] = (float)((i * 7 + run * 13) % 29) / 29.0f - 0.5f;
        assert_ok(dc_clip_image_features(ref, 2, pix, want));
        assert_ok(dc_clip_image_features(m, 2, pix, got));
        assert_memory_equal(want, got, 2 * P * sizeof *got);
    }
    assert_int_equal(fk.made, 2); /* the vision tower's layout is its own */
    assert_int_equal(fk.launches, 5);
    free(pix);
    dc_clip_destroy(m);
    assert_int_equal(fk.destroyed, 2);
    assert_int_equal(fk.live_buffers, 0);
    dc_clip_destroy(ref);
    dc_backend_destroy(cpu);
    dc_backend_destroy(fk.cpu);
    fx_drop(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_bert_graphs),
        cmocka_unit_test(test_roberta_graphs),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_longformer_graphs),
        cmocka_unit_test(test_lru),
        cmocka_unit_test(test_clip_graphs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

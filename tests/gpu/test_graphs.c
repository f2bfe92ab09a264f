/* CUDA graphs (dc_backend_ops.graph_*, models/encoder_graphs.c): a model on a stream context
 * with graphs on must give what the same model gives on a context with them off, for every
 * input, whether its forward was run directly, recorded or replayed:
 *   - a layout seen once runs directly; the second time it is recorded; later it is replayed,
 *     with other token ids (RoBERTa's positions depend on them: pad tokens included);
 *   - small batches run padded to their bucket (4 sequences of 32 rows here): other lengths in
 *     the same bucket replay the same graph, and the key mask is data the graph reads, so
 *     another mask on the same offsets replays it too;
 *   - two threads replaying one layout at once each get their own input's result;
 *   - graphs off: nothing is recorded;
 *   - a recording that uses a host-synchronous op fails, says why, and the context goes on;
 *   - closing the model returns the graphs' memory to the pool.
 * fp32 and bf16 linears. Runs on a GPU and on the CPU emulation (gpu.emulated_graphs).
 * Exits 77 without a device. */
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bert_gpu_common.h"
#include "gpu_common.h"
#include "check.h"
#include "models/bert.h"

#include "../tools/bert_fixture.c"

static int failures, checks;

#define T_MAX 96
typedef struct batch {
    uint32_t n, start[8], ids[T_MAX];
    uint8_t mask[T_MAX];
    bool masked;
} batch;

static uint32_t rows(const batch *b) { return b->start[b->n]; }

static void make_batch(batch *b, const uint32_t *lens, uint32_t n, uint32_t vocab, uint32_t pad,
                       bool with_pads) {
    memset(b, 0, sizeof *b);
    b->n = n;
    for (uint32_t s = 0; s < n; s++) b->start[s + 1] = b->start[s] + lens[s];
    for (uint32_t r = 0; r < rows(b); r++) {
        b->ids[r] = 5 + (uint32_t)(rnd(0, 1) * (float)(vocab - 6));
        if (with_pads && r % 7 == 3) b->ids[r] = pad;
        b->mask[r] = 1;
    }
}

static dc_status forward(dc_bert *m, const batch *b, float *out) {
    dc_bert_batch bb = {b->n, b->start, b->ids, NULL, b->masked ? b->mask : NULL};
    return dc_bert_forward(m, &bb, out);
}

/* Whether the backend is the CPU emulation, whose GEMMs are exact functions of their inputs. */
static bool g_emulated;

/* The graphed model's output for b equals the reference model's: bit for bit on the
 * emulation; on a GPU the graphs' GEMMs run on their own cuBLAS handle, which may pick
 * another kernel, so a row cosine of 0.999999 is accepted there (and said). */
static bool same_output(dc_bert *ref, dc_bert *m, const batch *b, size_t H, const char *what) {
    const size_t n = (size_t)rows(b) * H;
    float *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got);
    dc_status a = forward(ref, b, want), g = forward(m, b, got);
    bool ok = !a && !g && !memcmp(want, got, n * sizeof *got);
    if (!ok && !a && !g && !g_emulated && min_cosine(got, want, rows(b), H) >= 0.999999) {
        printf("note %s: not bit-identical, min row cosine %.8f\n", what,
               min_cosine(got, want, rows(b), H));
        ok = true;
    }
    checks++;
    if (!ok) {
        failures++;
        printf("FAIL %s: %s%s (min row cosine %.8f)\n", what, a || g ? "forward failed: " : "outputs differ",
               a || g ? dc_error_detail() : "", a || g ? -1.0 : min_cosine(got, want, rows(b), H));
    }
    free(want);
    free(got);
    return ok;
}

static dc_cuda_graph_stats stats(dc_backend *be) {
    dc_cuda_graph_stats s;
    if (dc_backend_cuda_graph_stats(be, &s)) memset(&s, 0, sizeof s);
    return s;
}

typedef struct worker {
    dc_bert *ref, *m;
    size_t H;
    int seed, iters, bad;
    const uint32_t *lens;
    uint32_t n, vocab;
} worker;

static void *run_worker(void *arg) {
    worker *w = arg;
    for (int i = 0; i < w->iters; i++) {
        batch b;
        make_batch(&b, w->lens, w->n, w->vocab, 1, false);
        for (uint32_t r = 0; r < rows(&b); r++) b.ids[r] = 5 + (uint32_t)((w->seed * 131 + i * 17 + r * 7) % (w->vocab - 6));
        const size_t n = (size_t)rows(&b) * w->H;
        float *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got);
        if (forward(w->m, &b, got) || forward(w->ref, &b, want) ||
            (memcmp(want, got, n * sizeof *got) &&
             (g_emulated || min_cosine(got, want, rows(&b), w->H) < 0.999999)))
            w->bad++;
        free(want);
        free(got);
    }
    return NULL;
}

static void run_fixture(const char *name, dc_backend *plain, dc_backend *graphed,
                        dc_weight_format fmt) {
    dc_fixture_spec spec;
    if (!dc_fixture_named(name, &spec)) exit(1);
    spec.hidden = 128, spec.heads = 4, spec.intermediate = 256, spec.layers = 2;
    char dir[] = "/tmp/dc_gpu_graphs_XXXXXX";
    if (!mkdtemp(dir) || dc_fixture_write(dir, &spec) != 0) exit(1);
    dc_bert *ref = NULL, *m = NULL;
    dc_cuda_pool_stats before;
    const dc_cuda_api *api = NULL;
    if (dc_cuda_load(&api)) exit(1);
    api->pool_stats(graphed, &before);
    if (load(dir, plain, fmt, &ref) || load(dir, graphed, fmt, &m)) {
        fprintf(stderr, "%s: %s\n", name, dc_error_detail());
        exit(1);
    }
    const dc_bert_config *cfg = dc_bert_config_of(ref);
    const size_t H = cfg->hidden;
    const uint32_t pad = cfg->pad_token_id, vocab = cfg->vocab_size;
    const bool roberta = cfg->kind == DC_BERT_KIND_ROBERTA;
    char what[160];
#define WHAT(...) (snprintf(what, sizeof what, __VA_ARGS__), what)
    const dc_cuda_graph_stats s0 = stats(graphed);

    const uint32_t lens[] = {9, 30, 1, 17};
    batch b;
    make_batch(&b, lens, 4, vocab, pad, false);
    same_output(ref, m, &b, H, WHAT("%s %s first sighting", name, dc_weight_format_name(fmt)));
    dc_cuda_graph_stats s = stats(graphed);
    CHECK(s.recorded == s0.recorded && s.launches == s0.launches, "%s: a layout seen once is not recorded", name);
    same_output(ref, m, &b, H, WHAT("%s %s recorded", name, dc_weight_format_name(fmt)));
    s = stats(graphed);
    CHECK(s.recorded == s0.recorded + 1 && s.launches == s0.launches + 1,
          "%s: the second sighting records and launches (recorded %llu, launches %llu)", name,
          (unsigned long long)(s.recorded - s0.recorded), (unsigned long long)(s.launches - s0.launches));
    CHECK(s.nodes > 0 && s.alive == s0.alive + 1, "%s: the graph is alive with %llu nodes", name,
          (unsigned long long)s.nodes);
    for (int i = 0; i < 3; i++) { /* replays with new ids (pads change RoBERTa's positions) */
        make_batch(&b, lens, 4, vocab, pad, roberta && i == 1);
        same_output(ref, m, &b, H, WHAT("%s %s replay %d", name, dc_weight_format_name(fmt), i));
    }
    s = stats(graphed);
    CHECK(s.recorded == s0.recorded + 1 && s.launches == s0.launches + 4,
          "%s: replays launch the recorded graph (launches %llu)", name,
          (unsigned long long)(s.launches - s0.launches));

    /* the same offsets with key masks: the same padded layout, each mask read as data */
    b.masked = true;
    for (int i = 0; i < 3; i++) {
        for (uint32_t r = 0; r < rows(&b); r++) b.mask[r] = (r + (uint32_t)i) % 5 != 2;
        b.mask[0] = b.mask[b.start[1]] = b.mask[b.start[2]] = b.mask[b.start[3]] = 1;
        same_output(ref, m, &b, H, WHAT("%s %s masked, run %d", name, dc_weight_format_name(fmt), i));
    }
    /* other lengths in the same bucket: the same graph again */
    const uint32_t lens_b[] = {31, 2, 25, 20}, lens_c[] = {8, 32, 4};
    make_batch(&b, lens_b, 4, vocab, pad, false);
    same_output(ref, m, &b, H, WHAT("%s %s same bucket, 4 sequences", name, dc_weight_format_name(fmt)));
    make_batch(&b, lens_c, 3, vocab, pad, false);
    same_output(ref, m, &b, H, WHAT("%s %s same bucket, 3 sequences", name, dc_weight_format_name(fmt)));
    s = stats(graphed);
    CHECK(s.recorded == s0.recorded + 1 && s.launches == s0.launches + 9,
          "%s: masks and lengths in one bucket replay one graph (recorded %llu, launches %llu)",
          name, (unsigned long long)(s.recorded - s0.recorded),
          (unsigned long long)(s.launches - s0.launches));

    /* two threads on one layout: one replays, the other runs directly while it is busy */
    const uint32_t lens2[] = {12, 20};
    batch w0;
    make_batch(&w0, lens2, 2, vocab, pad, false);
    same_output(ref, m, &w0, H, WHAT("%s threads warm-up", name));
    same_output(ref, m, &w0, H, WHAT("%s threads warm-up recorded", name));
    worker w[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        w[i] = (worker){ref, m, H, i + 1, 6, 0, lens2, 2, vocab};
        pthread_create(&t[i], NULL, run_worker, &w[i]);
    }
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    CHECK(w[0].bad == 0 && w[1].bad == 0, "%s: concurrent forwards of one layout (%d, %d wrong)",
          name, w[0].bad, w[1].bad);
    s = stats(graphed);
    printf("ok   %s %s: %llu graphs, %llu launches, %llu nodes, %zu KiB held\n", name,
           dc_weight_format_name(fmt), (unsigned long long)(s.recorded - s0.recorded),
           (unsigned long long)(s.launches - s0.launches), (unsigned long long)s.nodes,
           s.bytes >> 10);
    CHECK(stats(plain).recorded == 0, "%s: the context with graphs off recorded none", name);

    dc_bert_destroy(m);
    dc_bert_destroy(ref);
    s = stats(graphed);
    dc_cuda_pool_stats after;
    api->pool_stats(graphed, &after);
    CHECK(s.alive == 0 && s.bytes == 0 && s.nodes == 0, "%s: closing the model destroys its graphs", name);
    CHECK(after.in_use == before.in_use, "%s: the graphs' blocks went back to the pool (%zu vs %zu in use)",
          name, after.in_use, before.in_use);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* The backend contract without a model. */
static void contract(dc_backend *plain, dc_backend *graphed) {
    const dc_backend_ops *ops = graphed->ops;
    CHECK(plain->ops->graph_begin(plain) == DC_ERR_UNSUPPORTED_FORMAT, "graphs off: graph_begin refuses");
    float *d = NULL;
    float host[64] = {0};
    if (ops->alloc(graphed, sizeof host, (void **)&d)) exit(1);
    const uint64_t failed0 = stats(graphed).failures;
    CHECK(ops->graph_begin(graphed) == DC_OK, "graph_begin");
    CHECK(ops->graph_begin(graphed) == DC_ERR_INVALID_ARGUMENT, "no nested recording on one thread");
    CHECK(ops->upload(graphed, d, host, sizeof host) != DC_OK, "an upload inside a recording fails");
    dc_graph *g = (dc_graph *)1;
    CHECK(ops->graph_end(graphed, &g) != DC_OK && g == NULL, "the recording then makes no graph");
    dc_cuda_graph_stats s = stats(graphed);
    CHECK(s.failures == failed0 + 1 && s.last_failure[0], "the failure is counted and said: %s", s.last_failure);
    CHECK(ops->upload(graphed, d, host, sizeof host) == DC_OK, "the context works after it");
    CHECK(ops->graph_end(graphed, &g) == DC_ERR_INVALID_ARGUMENT, "graph_end without a recording");
    /* an element-wise op recorded, replayed twice on new contents of its buffer */
    for (int i = 0; i < 64; i++) host[i] = (float)i - 32;
    CHECK(ops->upload(graphed, d, host, sizeof host) == DC_OK, "upload");
    CHECK(ops->graph_begin(graphed) == DC_OK, "graph_begin");
    ops->activation(graphed, DC_ACT_RELU, d, 64);
    g = NULL;
    CHECK(ops->graph_end(graphed, &g) == DC_OK && g, "a recording of one kernel");
    float back[64];
    CHECK(ops->download(graphed, back, d, sizeof back) == DC_OK && back[0] == -32.0f,
          "nothing ran while recording (got %g)", back[0]);
    for (int rep = 0; rep < 2; rep++) {
        for (int i = 0; i < 64; i++) host[i] = (float)(rep ? 40 - i : i - 32);
        ops->upload(graphed, d, host, sizeof host);
        CHECK(ops->graph_launch(graphed, g) == DC_OK, "graph_launch");
        ops->download(graphed, back, d, sizeof back);
        bool ok = true;
        for (int i = 0; i < 64; i++) ok &= back[i] == (host[i] > 0 ? host[i] : 0.0f);
        CHECK(ok, "replay %d computes on the buffer's new contents", rep);
    }
    ops->graph_destroy(graphed, g);
    ops->release(graphed, d);
}

int main(void) {
    dc_cuda_options off = {.device = 0, .graphs = false}, on = {.device = 0, .graphs = true};
    dc_backend *plain = NULL, *graphed = NULL;
    if (dc_backend_cuda_acquire(&off, &plain)) {
        printf("test_graphs: SKIP: %s\n", dc_error_detail());
        return DC_SKIP;
    }
    if (dc_backend_cuda_acquire(&on, &graphed)) {
        fprintf(stderr, "second context: %s\n", dc_error_detail());
        return 1;
    }
    const dc_cuda_api *api = NULL;
    g_emulated = dc_cuda_load(&api) == DC_OK && strstr(api->build, "emulation") != NULL;
    contract(plain, graphed);
    run_fixture("bert", plain, graphed, DC_WEIGHTS_F32);
    run_fixture("roberta", plain, graphed, DC_WEIGHTS_F32);
    run_fixture("bert", plain, graphed, DC_WEIGHTS_BF16);
    dc_backend_cuda_release(graphed);
    dc_backend_cuda_release(plain);
    printf("test_graphs: %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}

/* Stream contexts on one device (dc_backend_cuda_acquire, docs/gpu.md "Streams"): every acquire
 * gets its own stream over the device's one pool. Checked: a block released by one context and
 * taken by another is handed over through the pool's wait (pool_stats.cross_stream; on the
 * emulation, the event record and stream wait themselves); two contexts running a small layer
 * chain (linear, LayerNorm, GELU) in two threads at once give what each gives alone; the pool
 * adds up afterwards; the device's state goes with its last context; with green_partitions the
 * contexts land on different SM partitions (the emulation with DC_CUDA_EMU_GREEN=1, or a GPU
 * whose driver has green contexts) or fall back to ordinary streams with a reason. Exit 77
 * without the CUDA library, a driver or a device. */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_common.h"

static int failures;
#define CHECK(cond, ...)                                                                        \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                \
            fprintf(stderr, __VA_ARGS__);                                                       \
            fprintf(stderr, "\n");                                                              \
            failures++;                                                                         \
        }                                                                                       \
    } while (0)

enum { K = 64, N = 64, ROWS = 24, ITERS = 8 };

static const dc_cuda_api *api;
static float *w_host, *b_host, *g_host, *beta_host, *x_host;

/* The emulation's record / wait counters (absent on a GPU). */
typedef void (*counters_fn)(uint64_t *, uint64_t *, uint64_t *);
static counters_fn emu_counters;

/* One context's layer: its weights and LayerNorm parameters in its own backend memory. */
typedef struct layer {
    dc_backend *be;
    dc_linear *lin;
    float *gamma, *beta;
    float out[ROWS * N];
    int failures;
} layer;

static dc_status upload_new(dc_backend *be, const float *h, size_t n, float **dev) {
    dc_status st = be->ops->alloc(be, n * sizeof(float), (void **)dev);
    if (st == DC_OK) st = be->ops->upload(be, *dev, h, n * sizeof(float));
    return st;
}

static dc_status layer_open(layer *l, dc_backend *be) {
    memset(l, 0, sizeof *l);
    l->be = be;
    dc_status st = be->ops->linear_create(be, w_host, b_host, N, K, DC_WEIGHTS_F32, &l->lin);
    if (st == DC_OK) st = upload_new(be, g_host, N, &l->gamma);
    if (st == DC_OK) st = upload_new(be, beta_host, N, &l->beta);
    return st;
}

static void layer_close(layer *l) {
    if (l->lin) l->be->ops->linear_destroy(l->be, l->lin);
    l->be->ops->release(l->be, l->gamma);
    l->be->ops->release(l->be, l->beta);
}

/* y = GELU(LN(x·Wᵀ + b)) into l->out, with fresh pool blocks each time (as a forward does). */
static dc_status layer_run(layer *l) {
    dc_backend *be = l->be;
    float *dx = NULL, *dy = NULL;
    dc_status st = upload_new(be, x_host, (size_t)ROWS * K, &dx);
    if (st == DC_OK) st = be->ops->alloc(be, (size_t)ROWS * N * sizeof(float), (void **)&dy);
    if (st == DC_OK) st = be->ops->linear_forward(be, l->lin, dx, ROWS, dy);
    if (st == DC_OK) {
        be->ops->layernorm(be, dy, NULL, l->gamma, l->beta, 1e-5f, ROWS, N, dy);
        be->ops->activation(be, DC_ACT_GELU_ERF, dy, (size_t)ROWS * N);
        st = be->ops->download(be, l->out, dy, sizeof l->out); /* reports a void op's failure */
    }
    be->ops->release(be, dx);
    be->ops->release(be, dy);
    return st;
}

static void *run_many(void *arg) {
    layer *l = arg;
    float first[ROWS * N];
    for (int i = 0; i < ITERS; i++) {
        if (layer_run(l) != DC_OK) {
            l->failures++;
            break;
        }
        if (!i) memcpy(first, l->out, sizeof first);
        else if (memcmp(first, l->out, sizeof first)) l->failures++; /* not repeatable */
    }
    return NULL;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* Two contexts: each alone, then both in two threads at once; results must agree. */
static void run_pair(dc_backend *a, dc_backend *b, const char *what) {
    layer la, lb;
    dc_status sa = layer_open(&la, a), sb = layer_open(&lb, b);
    CHECK(sa == DC_OK && sb == DC_OK, "%s: layers: %s", what, dc_error_detail());
    if (sa == DC_OK && sb == DC_OK) {
        float alone_a[ROWS * N], alone_b[ROWS * N];
        CHECK(layer_run(&la) == DC_OK, "%s: a alone: %s", what, dc_error_detail());
        memcpy(alone_a, la.out, sizeof alone_a);
        CHECK(layer_run(&lb) == DC_OK, "%s: b alone: %s", what, dc_error_detail());
        memcpy(alone_b, lb.out, sizeof alone_b);
        /* the same weights and input: one context's result is the other's */
        CHECK(max_diff(alone_a, alone_b, ROWS * N) <= 1e-5, "%s: a and b differ alone (%g)",
              what, max_diff(alone_a, alone_b, ROWS * N));
        dc_cuda_pool_stats before, after;
        api->pool_stats(a, &before);
        pthread_t t[2];
        bool started = pthread_create(&t[0], NULL, run_many, &la) == 0;
        if (started && pthread_create(&t[1], NULL, run_many, &lb) != 0) {
            run_many(&lb);
        }
        if (started) {
            pthread_join(t[0], NULL);
            pthread_join(t[1], NULL);
        } else {
            run_many(&la);
            run_many(&lb);
        }
        api->pool_stats(b, &after); /* the same pool seen from either context */
        CHECK(la.failures == 0 && lb.failures == 0, "%s: concurrent runs failed or varied", what);
        double da = max_diff(la.out, alone_a, ROWS * N), db = max_diff(lb.out, alone_b, ROWS * N);
        printf("%s: two contexts in two threads, %d layers each: max |diff| to alone %.3g, %.3g\n",
               what, ITERS, da, db);
        CHECK(da <= 1e-5 && db <= 1e-5, "%s: concurrent results differ from alone (%g, %g)",
              what, da, db);
        /* each run takes two blocks (input, output) and returns them */
        CHECK(after.in_use == before.in_use, "%s: %zu bytes in use after, %zu before", what,
              after.in_use, before.in_use);
        CHECK(after.hits + after.misses >= before.hits + before.misses + 4 * ITERS,
              "%s: allocations not counted", what);
        CHECK(after.peak >= after.in_use + after.cached + after.weights &&
                  (!after.limit || after.peak <= after.limit),
              "%s: peak %zu, in use %zu, cached %zu, limit %zu", what, after.peak, after.in_use,
              after.cached, after.limit);
        printf("%s: pool hits %llu, misses %llu, handed across streams %llu\n", what,
               (unsigned long long)after.hits, (unsigned long long)after.misses,
               (unsigned long long)after.cross_stream);
    }
    layer_close(&la);
    layer_close(&lb);
}

/* A block released by a and taken by b: counted, and (emulation) b's stream waited. */
static void test_handover(dc_backend *a, dc_backend *b) {
    dc_cuda_pool_stats st0, st1;
    uint64_t r0 = 0, w0 = 0, g = 0, r1 = 0, w1 = 0;
    /* a size class nothing else here uses, so the one cached block is a's */
    const size_t bytes = (size_t)3 << 20;
    void *x = NULL, *y = NULL, *z = NULL;
    CHECK(a->ops->alloc(a, bytes, &x) == DC_OK, "alloc on a: %s", dc_error_detail());
    CHECK(a->ops->upload(a, x, x_host, (size_t)ROWS * K * sizeof(float)) == DC_OK, "upload");
    a->ops->release(a, x);
    api->pool_stats(a, &st0);
    if (emu_counters) emu_counters(&r0, &w0, &g);
    CHECK(b->ops->alloc(b, bytes, &y) == DC_OK, "alloc on b: %s", dc_error_detail());
    api->pool_stats(b, &st1);
    if (emu_counters) emu_counters(&r1, &w1, &g);
    CHECK(y == x, "b did not get a's cached block");
    CHECK(st1.cross_stream == st0.cross_stream + 1 && st1.hits == st0.hits + 1,
          "hand-over not counted (cross_stream %llu → %llu)",
          (unsigned long long)st0.cross_stream, (unsigned long long)st1.cross_stream);
    if (emu_counters)
        CHECK(r1 == r0 + 1 && w1 == w0 + 1, "no event recorded / waited (%llu, %llu)",
              (unsigned long long)(r1 - r0), (unsigned long long)(w1 - w0));
    /* back on b's own stream: no further wait */
    b->ops->release(b, y);
    if (emu_counters) emu_counters(&r0, &w0, &g);
    CHECK(b->ops->alloc(b, bytes, &z) == DC_OK && z == y, "b's own block again");
    if (emu_counters) {
        emu_counters(&r1, &w1, &g);
        CHECK(r1 == r0 && w1 == w0, "a same-stream reuse waited");
    }
    b->ops->release(b, z);
    printf("hand-over: a block released on one stream reached the other through a wait\n");
}

static void fill_host(void) {
    w_host = rnd_array((size_t)N * K, -0.2f, 0.2f);
    b_host = rnd_array(N, -0.1f, 0.1f);
    g_host = rnd_array(N, 0.5f, 1.5f);
    beta_host = rnd_array(N, -0.1f, 0.1f);
    x_host = rnd_array((size_t)ROWS * K, -1.0f, 1.0f);
}

int main(void) {
    char why[256];
    if (dc_cuda_check(0, why, sizeof why) != DC_OK) {
        printf("skipped: %s\n", why);
        return DC_SKIP;
    }
    if (dc_cuda_load(&api) != DC_OK) return 1;
    const char *lib = getenv("DC_CUDA_LIBRARY");
    void *h = lib ? dlopen(lib, RTLD_NOW | RTLD_NOLOAD) : NULL;
    if (h) {
        void *sym = dlsym(h, "dc_cuda_emu_counters");
        memcpy(&emu_counters, &sym, sizeof sym);
    }
    fill_host();

    /* ordinary streams: two contexts, one device state */
    dc_cuda_options o = {.device = 0, .pool_limit = (size_t)1 << 30};
    dc_backend *a = NULL, *b = NULL;
    CHECK(dc_backend_cuda_acquire(&o, &a) == DC_OK && dc_backend_cuda_acquire(&o, &b) == DC_OK,
          "acquire: %s", dc_error_detail());
    if (a && b) {
        dc_cuda_stream_info ia, ib;
        api->stream_info(a, &ia);
        api->stream_info(b, &ib);
        CHECK(a != b && ia.contexts == 2 && ib.contexts == 2 && !ia.green && !ib.green,
              "two ordinary contexts on one device (%u, %u)", ia.contexts, ib.contexts);
        dc_cuda_pool_stats sa, sb;
        api->pool_stats(a, &sa);
        api->pool_stats(b, &sb);
        CHECK(sa.limit == ((size_t)1 << 30) && sb.limit == sa.limit, "one pool, one cap");
        test_handover(a, b);
        run_pair(a, b, "ordinary streams");
    }
    dc_backend_cuda_release(b);
    dc_backend_cuda_release(a);

    /* the device state went with its last context: green partitions are made afresh */
    o.green_partitions = 4;
    a = b = NULL;
    uint64_t r = 0, w = 0, g0 = 0, g1 = 0;
    if (emu_counters) emu_counters(&r, &w, &g0);
    CHECK(dc_backend_cuda_acquire(&o, &a) == DC_OK && dc_backend_cuda_acquire(&o, &b) == DC_OK,
          "acquire (green): %s", dc_error_detail());
    if (emu_counters) emu_counters(&r, &w, &g1);
    if (a && b) {
        dc_cuda_stream_info ia, ib;
        api->stream_info(a, &ia);
        api->stream_info(b, &ib);
        CHECK(ia.contexts == 2 && ib.contexts == 2, "a fresh device state (%u contexts)",
              ia.contexts);
        const char *env = getenv("DC_CUDA_EMU_GREEN");
        const bool emu_green = emu_counters && env && !strcmp(env, "1");
        if (ia.green) {
            printf("green contexts: %u partitions; a on %u (%u SMs), b on %u (%u SMs)\n",
                   ia.n_partitions, ia.partition, ia.sm_count, ib.partition, ib.sm_count);
            CHECK(ib.green && ia.n_partitions >= 2 && ia.partition != ib.partition &&
                      ia.sm_count >= 8 && ib.sm_count >= 8,
                  "the two contexts share a partition or one is not green");
            if (emu_counters) CHECK(g1 == g0 + 2, "%llu green streams made", (unsigned long long)(g1 - g0));
        } else {
            printf("green contexts not used: %s\n", ia.reason);
            CHECK(!emu_green, "the emulation's green contexts were not used: %s", ia.reason);
            CHECK(!ib.green && ia.reason[0] && !strcmp(ia.reason, ib.reason),
                  "a fallback without a reason");
        }
        if (emu_green) CHECK(ia.green && ia.n_partitions == 2, "emulated: 2 partitions of 8 SMs");
        run_pair(a, b, ia.green ? "green contexts" : "green fallback");
    }
    dc_backend_cuda_release(b);
    dc_backend_cuda_release(a);

    free(w_host), free(b_host), free(g_host), free(beta_host), free(x_host);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("stream contexts: all checks passed\n");
    return 0;
}

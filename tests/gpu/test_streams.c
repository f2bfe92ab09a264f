/* Stream contexts on one device (dc_backend_cuda_acquire, docs/gpu.md "Streams"): every acquire
 * gets its own stream over the device's one pool. Checked: a block released by one context and
 * taken by another is handed over through the pool's wait (pool_stats.cross_stream; on the
 * emulation, the event record and stream wait themselves); two contexts running a small layer
 * chain (linear, LayerNorm, GELU) in two threads at once give what each gives alone; the pool
 * adds up afterwards; the device's state goes with its last context; with green_partitions the
 * contexts land on different SM partitions (the emulation with DC_CUDA_EMU_GREEN=1, or a GPU
 * whose driver has green contexts) or fall back to ordinary streams with a reason; each context's
 * cuBLAS workspace is the pool's weights memory (the emulation: the handle's own), and a cap
 * without room for it refuses the context. Exit 77 without the CUDA library, a driver or a
 * device. */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_common.h"
#include "check.h"

static int failures, checks;

enum { K = 64, N = 64, ROWS = 24, ITERS = 8 };

static const dc_cuda_api *api;
static float *w_host, *b_host, *g_host, *beta_host, *x_host;

/* The emulation's record / wait counters (absent on a GPU). */
typedef void (*counters_fn)(uint64_t *, uint64_t *, uint64_t *);
static counters_fn emu_counters;
/* The emulation's live cuBLAS handles and their workspaces, the size of the device block at a
 * pointer, and what is live on the device (absent on a GPU). */
typedef size_t (*blas_ws_fn)(const void **, size_t *, size_t);
typedef size_t (*device_block_fn)(const void *);
typedef void (*live_fn)(uint64_t *, uint64_t *, uint64_t *, uint64_t *);
static blas_ws_fn emu_blas_ws;
static device_block_fn emu_device_block;
static live_fn emu_live;

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

/* cuBLAS's workspace (gemm.c): NVIDIA's recommended size, in the pool's weights memory, made
 * with each context and returned with it; a cap without room for it refuses the context with
 * DC_ERR_OUT_OF_MEMORY and a reason, leaving nothing behind. Runs with no context open on
 * device 0, so that each acquire below makes the device state (and its cap) afresh. */
static void test_workspace(void) {
    dc_cuda_device_info info;
    if (api->device_info(0, &info) != DC_OK) {
        CHECK(false, "device_info: %s", dc_error_detail());
        return;
    }
    const size_t want = info.cc_major >= 9 ? (size_t)32 << 20 : (size_t)4 << 20;
    uint64_t blocks0 = 0, bytes0 = 0, streams0 = 0, events0 = 0, blocks1, bytes1, streams1, events1;
    const void *ws[4] = {NULL};
    size_t wsb[4] = {0};
    if (emu_live) emu_live(&blocks0, &bytes0, &streams0, &events0);
    if (emu_blas_ws) CHECK(emu_blas_ws(ws, wsb, 4) == 0, "cuBLAS handles live before the test");

    dc_cuda_options o = {.device = 0, .pool_limit = (size_t)1 << 30};
    dc_backend *a = NULL, *b = NULL;
    CHECK(dc_backend_cuda_acquire(&o, &a) == DC_OK, "acquire: %s", dc_error_detail());
    if (!a) return;
    dc_cuda_pool_stats st;
    api->pool_stats(a, &st);
    CHECK(st.weights == want && st.in_use == 0,
          "one context: %zu bytes of weights memory, not the %zu of the workspace (sm_%d%d)",
          st.weights, want, info.cc_major, info.cc_minor);
    if (emu_blas_ws) {
        CHECK(emu_blas_ws(ws, wsb, 4) == 1 && ws[0] && wsb[0] == want,
              "the handle's workspace: %p, %zu bytes (want %zu)", ws[0], wsb[0], want);
        /* the pool's weights allocation itself: one device block of exactly that size */
        CHECK(emu_device_block(ws[0]) == want, "the workspace is not one %zu-byte block", want);
    }
    CHECK(dc_backend_cuda_acquire(&o, &b) == DC_OK, "second acquire: %s", dc_error_detail());
    if (b) {
        api->pool_stats(b, &st);
        CHECK(st.weights == 2 * want, "two contexts: %zu bytes of weights memory", st.weights);
        if (emu_blas_ws)
            CHECK(emu_blas_ws(ws, wsb, 4) == 2 && ws[1] && ws[1] != ws[0] && wsb[1] == want &&
                      emu_device_block(ws[1]) == want,
                  "the second context's handle has a workspace of its own");
        /* the shared buffer serves cuBLAS (f32) and, on 8.9 and later, cuBLASLt (fp8) */
        layer l;
        CHECK(layer_open(&l, b) == DC_OK && layer_run(&l) == DC_OK, "f32 layer: %s",
              dc_error_detail());
        layer_close(&l);
        if (info.cc_major * 10 + info.cc_minor >= 89) {
            dc_linear *lin = NULL;
            float *dx = NULL, *dy = NULL;
            dc_status s8 =
                b->ops->linear_create(b, w_host, b_host, N, K, DC_WEIGHTS_FP8_E4M3, &lin);
            if (s8 == DC_OK) s8 = upload_new(b, x_host, (size_t)ROWS * K, &dx);
            if (s8 == DC_OK) s8 = b->ops->alloc(b, (size_t)ROWS * N * sizeof(float), (void **)&dy);
            if (s8 == DC_OK) s8 = b->ops->linear_forward(b, lin, dx, ROWS, dy);
            if (s8 == DC_OK) s8 = b->ops->download(b, l.out, dy, sizeof l.out);
            CHECK(s8 == DC_OK, "fp8 layer on the shared workspace: %s", dc_error_detail());
            if (lin) b->ops->linear_destroy(b, lin);
            b->ops->release(b, dx);
            b->ops->release(b, dy);
            api->pool_stats(b, &st);
            CHECK(st.weights == 2 * want, "fp8 added weights memory: %zu bytes", st.weights);
        }
        const void *gone = ws[1];
        dc_backend_cuda_release(b);
        api->pool_stats(a, &st);
        CHECK(st.weights == want, "closing a context left %zu bytes of weights memory (want %zu)",
              st.weights, want);
        if (emu_blas_ws)
            CHECK(emu_blas_ws(ws, wsb, 4) == 1 && emu_device_block(gone) == 0,
                  "the closed context's handle or workspace is still live");
    }
    const void *first = ws[0];
    dc_backend_cuda_release(a);
    if (emu_blas_ws)
        CHECK(emu_blas_ws(ws, wsb, 4) == 0 && emu_device_block(first) == 0,
              "a handle or workspace outlived the device state");

    /* a cap without room for the workspace: refused, with the reason, and nothing left */
    o.pool_limit = want - 256;
    a = NULL;
    dc_status s = dc_backend_cuda_acquire(&o, &a);
    const char *why = dc_error_detail();
    printf("cap of %zu bytes: %s (%s)\n", o.pool_limit, dc_status_str(s), why);
    CHECK(s == DC_ERR_OUT_OF_MEMORY && !a, "a %zu-byte cap took a %zu-byte workspace (%d)",
          o.pool_limit, want, (int)s);
    CHECK(strstr(why, "cuBLAS workspace") && strstr(why, "cap"), "no reason given: %s", why);
    if (a) dc_backend_cuda_release(a);
    if (emu_live) {
        emu_live(&blocks1, &bytes1, &streams1, &events1);
        CHECK(blocks1 == blocks0 && bytes1 == bytes0 && streams1 == streams0 && events1 == events0,
              "left behind: %lld blocks (%lld bytes), %lld streams, %lld events",
              (long long)(blocks1 - blocks0), (long long)(bytes1 - bytes0),
              (long long)(streams1 - streams0), (long long)(events1 - events0));
        CHECK(emu_blas_ws(ws, wsb, 4) == 0, "a cuBLAS handle left behind");
    }
    /* the device is usable again with a cap that holds it */
    o.pool_limit = want;
    a = NULL;
    CHECK(dc_backend_cuda_acquire(&o, &a) == DC_OK, "a cap of exactly the workspace: %s",
          dc_error_detail());
    dc_backend_cuda_release(a);
    printf("cuBLAS workspace: %zu MiB per context in the pool's weights memory\n", want >> 20);
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
        void *ws = dlsym(h, "dc_cuda_emu_blas_workspaces");
        void *blk = dlsym(h, "dc_cuda_emu_device_block"), *live = dlsym(h, "dc_cuda_emu_live");
        if (ws && blk && live) {
            memcpy(&emu_blas_ws, &ws, sizeof ws);
            memcpy(&emu_device_block, &blk, sizeof blk);
            memcpy(&emu_live, &live, sizeof live);
        }
    }
    fill_host();
    test_workspace();

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
        fprintf(stderr, "%d of %d checks failed\n", failures, checks);
        return 1;
    }
    printf("stream contexts: all %d checks passed\n", checks);
    return 0;
}

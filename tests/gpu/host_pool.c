/* The device pool's bookkeeping on the CPU: src/gpu/pool.c compiled against stand-ins for
 * cudaMalloc/cudaFree (host malloc with an adjustable capacity) and for the event calls, so the
 * size classes, the block table (insert, backward-shift delete under churn), hits/misses/peak,
 * the cap, the trim-and-retry on allocation failure and the hand-over of blocks between
 * streams (a wait on the releasing stream's event, recorded after the release) are checked
 * without a GPU. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/cu_internal.h"

static size_t dev_capacity = SIZE_MAX, dev_used;
static int n_malloc, n_free;
static cudaError_t last = cudaSuccess;

/* ---- stand-ins for the runtime calls pool.c makes ---- */
cudaError_t cudaMalloc(void **p, size_t bytes) {
    if (bytes > dev_capacity - dev_used) return last = cudaErrorMemoryAllocation;
    size_t *h = malloc(bytes + 16);
    if (!h) return last = cudaErrorMemoryAllocation;
    h[0] = bytes;
    dev_used += bytes;
    n_malloc++;
    *p = h + 2;
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
    if (!p) return cudaSuccess;
    size_t *h = (size_t *)p - 2;
    dev_used -= h[0];
    n_free++;
    free(h);
    return cudaSuccess;
}
/* Streams are the numbers 1..NS cast to handles; each view's event remembers the stream it
 * was last recorded on. waits[s][t]: waits of stream s on an event last recorded on stream t. */
enum { NS = 4 };
typedef struct fake_event {
    int recorded_on;
    unsigned long records;
} fake_event;
static unsigned long waits[NS + 1][NS + 1], records, syncs[NS + 1];
static int fail_wait; /* cudaStreamWaitEvent fails: the pool must synchronise instead */
static int stream_no(cudaStream_t s) { return (int)(uintptr_t)s; }
static cudaStream_t stream_of(int n) { return (cudaStream_t)(uintptr_t)n; }

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags) {
    (void)flags;
    *e = calloc(1, sizeof(fake_event));
    return *e ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
    free(e);
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    fake_event *f = (fake_event *)(void *)e;
    f->recorded_on = stream_no(s);
    f->records++;
    records++;
    return cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags) {
    (void)flags;
    if (fail_wait) return last = cudaErrorInvalidValue;
    const fake_event *f = (const fake_event *)(void *)e;
    if (!f->records) return cudaSuccess; /* waiting on a never-recorded event waits for nothing */
    waits[stream_no(s)][f->recorded_on]++;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    syncs[stream_no(s)]++;
    return cudaSuccess;
}
cudaError_t cudaGetLastError(void) {
    cudaError_t e = last;
    last = cudaSuccess;
    return e;
}
const char *cudaGetErrorString(cudaError_t e) { return e ? "out of memory" : "no error"; }

static char detail[256];
static dc_status record(dc_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return s;
}
dc_status (*dc_cu_fail_fn)(dc_status s, const char *fmt, ...) = record;

static int failures;
#define CHECK(c)                                                                               \
    do {                                                                                       \
        if (!(c)) {                                                                            \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #c);                               \
            failures++;                                                                        \
        }                                                                                      \
    } while (0)

/* Blocks changing streams: the taker waits on the releaser's event, recorded after the release;
 * a stream's own blocks (and a closed view's) come back without a wait. */
static void test_streams(void) {
    dc_cu_pool_core core;
    dc_cu_pool a, b;
    dc_cuda_pool_stats st;
    CHECK(dc_pool_core_init(&core, 0) == DC_OK);
    CHECK(dc_pool_attach(&a, &core, stream_of(1)) == DC_OK);
    CHECK(dc_pool_attach(&b, &core, stream_of(2)) == DC_OK);
    void *x = NULL, *y = NULL, *z = NULL;
    CHECK(dc_pool_alloc(&a, 1000, &x) == DC_OK);
    dc_pool_release(&a, x);
    CHECK(dc_pool_alloc(&a, 1000, &y) == DC_OK && y == x); /* same stream: in order already */
    CHECK(records == 0 && waits[1][1] == 0);
    dc_pool_release(&a, y);
    CHECK(dc_pool_alloc(&b, 1000, &z) == DC_OK && z == x); /* a's block, handed to b ... */
    CHECK(records == 1 && waits[2][1] == 1);               /* ... after b waits on a's work */
    dc_pool_stats(&a, &st);
    CHECK(st.cross_stream == 1 && st.hits == 2 && st.misses == 1);
    dc_pool_release(&b, z);
    CHECK(dc_pool_alloc(&a, 1000, &x) == DC_OK && x == z && waits[1][2] == 1); /* and back */
    /* own blocks first: a's and b's blocks cached, b's on top; a takes its own, no wait */
    CHECK(dc_pool_alloc(&b, 1000, &y) == DC_OK && y != x);
    dc_pool_release(&a, x);
    dc_pool_release(&b, y);
    unsigned long w = waits[1][2] + waits[2][1];
    CHECK(dc_pool_alloc(&a, 1000, &z) == DC_OK && z == x && waits[1][2] + waits[2][1] == w);
    /* a wait that fails: the releasing stream is synchronised on the host instead */
    fail_wait = 1;
    unsigned long s2 = syncs[2];
    void *q = NULL;
    CHECK(dc_pool_alloc(&a, 1000, &q) == DC_OK && q == y && syncs[2] == s2 + 1);
    CHECK(cudaGetLastError() == cudaSuccess); /* cleared */
    fail_wait = 0;
    dc_pool_release(&a, z);
    dc_pool_release(&a, q);
    /* a closed view's blocks are idle: no wait for them */
    CHECK(dc_pool_alloc(&b, 5000, &y) == DC_OK);
    dc_pool_release(&b, y);
    dc_pool_detach(&b); /* the backend synchronises the stream first */
    w = waits[1][2];
    CHECK(dc_pool_alloc(&a, 5000, &z) == DC_OK && z == y && waits[1][2] == w);
    dc_pool_release(&a, z);
    dc_pool_stats(&a, &st);
    CHECK(st.in_use == 0 && st.cross_stream == 3 && st.hits + st.misses == 9);
    dc_pool_detach(&a);
    dc_pool_core_destroy(&core);
}

/* Two threads, a stream each, churning one pool: every block that arrives from the other
 * stream came with a wait of this stream on the other's event; the counters add up. */
enum { T_ROUNDS = 3000, T_LIVE = 12 };
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    void *ptr;
    int stream;
} seen[256];
static int n_seen;

static void note_release(void *ptr, int stream) {
    pthread_mutex_lock(&seen_mu);
    int i = 0;
    while (i < n_seen && seen[i].ptr != ptr) i++;
    if (i == n_seen && n_seen < 256) seen[n_seen++].ptr = ptr;
    if (i < 256) seen[i].stream = stream;
    pthread_mutex_unlock(&seen_mu);
}

static int released_by(void *ptr) {
    pthread_mutex_lock(&seen_mu);
    int s = 0;
    for (int i = 0; i < n_seen; i++)
        if (seen[i].ptr == ptr) s = seen[i].stream;
    pthread_mutex_unlock(&seen_mu);
    return s;
}

typedef struct worker {
    dc_cu_pool view;
    int me, other;
    unsigned long allocs;
    int failures;
} worker;

static void *churn(void *arg) {
    worker *w = arg;
    void *live[T_LIVE] = {0};
    uint64_t r = 7 + (uint64_t)w->me;
    for (int i = 0; i < T_ROUNDS; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        size_t slot = (size_t)(r >> 33) % T_LIVE;
        if (live[slot]) {
            note_release(live[slot], w->me);
            dc_pool_release(&w->view, live[slot]);
            live[slot] = NULL;
            continue;
        }
        /* only this thread makes its stream wait, so the count is read without a race */
        unsigned long before = waits[w->me][w->other];
        if (dc_pool_alloc(&w->view, 300u << ((r >> 40) % 3), &live[slot]) != DC_OK) {
            w->failures++;
            break;
        }
        w->allocs++;
        if (released_by(live[slot]) == w->other && waits[w->me][w->other] <= before)
            w->failures++; /* another stream's block without a wait */
    }
    for (size_t s = 0; s < T_LIVE; s++)
        if (live[s]) {
            note_release(live[s], w->me);
            dc_pool_release(&w->view, live[s]);
        }
    return NULL;
}

/* A recording (a graph's memory): what it allocates and releases stays its own and serves its
 * later allocations; kept blocks are fresh and never reused in it; blocks from before it join it when
 * released; blocks still busy at its end are the caller's; nothing reaches the pool (nor the
 * context's own allocations) before dc_pool_rec_free; the cap still holds, and a recording
 * never frees the cache to make room (cudaFree would wait for the capture). */
static void test_recording(void) {
    dc_cu_pool_core core;
    dc_cu_pool own, rec_view;
    CHECK(dc_pool_core_init(&core, 1 << 20) == DC_OK);
    CHECK(dc_pool_attach(&own, &core, stream_of(1)) == DC_OK);
    dc_pool_rec rec = {.home = &own};
    rec_view = own;
    rec_view.rec = &rec;
    void *before = NULL, *a = NULL, *b = NULL, *c = NULL, *k = NULL, *held = NULL, *x = NULL;
    CHECK(dc_pool_alloc(&own, 1000, &before) == DC_OK);
    CHECK(dc_pool_alloc(&rec_view, 1000, &a) == DC_OK && a != before);
    dc_pool_release(&rec_view, a);
    CHECK(dc_pool_alloc(&rec_view, 900, &b) == DC_OK && b == a); /* reused inside the graph */
    dc_pool_release(&rec_view, b);
    /* an uploaded constant: never a block the graph used before (a's) */
    CHECK(dc_pool_alloc_kept(&rec_view, 1000, &k) == DC_OK && k != a);
    dc_pool_release(&rec_view, k);
    CHECK(dc_pool_alloc(&rec_view, 1000, &c) == DC_OK && c == a); /* nor after: not k */
    dc_pool_release(&rec_view, c);
    dc_pool_release(&rec_view, before); /* joins the recording, reusable in it */
    CHECK(dc_pool_alloc(&rec_view, 5000, &held) == DC_OK); /* busy at the end: the caller's */
    dc_cuda_pool_stats st;
    dc_pool_stats(&own, &st);
    const size_t in_use = st.in_use;
    CHECK(in_use == 3 * 1024 + 8192 && st.cached == 0);
    dc_pool_rec_end(&rec);
    CHECK(rec.n == 3 && rec.bytes == 3 * 1024);
    /* meanwhile the context's own allocations never get the graph's blocks */
    CHECK(dc_pool_alloc(&own, 1000, &x) == DC_OK && x != a && x != k && x != before);
    dc_pool_release(&own, x);
    /* the cap: past it a recording fails instead of freeing the cache */
    void *big = NULL;
    int frees = n_free;
    CHECK(dc_pool_alloc(&rec_view, 1 << 20, &big) == DC_ERR_OUT_OF_MEMORY && n_free == frees);
    dc_pool_rec_free(&rec);
    dc_pool_stats(&own, &st);
    CHECK(st.in_use == 8192 && rec.n == 0); /* only the caller's block */
    dc_pool_release(&own, held);
    dc_pool_detach(&own);
    dc_pool_core_destroy(&core);
}

static void test_threads(void) {
    dc_cu_pool_core core;
    worker w[2] = {{.me = 3, .other = 4}, {.me = 4, .other = 3}};
    CHECK(dc_pool_core_init(&core, 0) == DC_OK);
    for (int i = 0; i < 2; i++)
        CHECK(dc_pool_attach(&w[i].view, &core, stream_of(w[i].me)) == DC_OK);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) CHECK(pthread_create(&t[i], NULL, churn, &w[i]) == 0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    CHECK(w[0].failures == 0 && w[1].failures == 0);
    dc_cuda_pool_stats st;
    dc_pool_stats(&w[0].view, &st);
    CHECK(st.in_use == 0 && st.hits + st.misses == w[0].allocs + w[1].allocs);
    CHECK(st.cached == dev_used && st.peak >= st.cached);
    CHECK(st.cross_stream == waits[3][4] + waits[4][3]);
    printf("two streams: %lu allocations, %llu hits, %llu handed across streams\n",
           w[0].allocs + w[1].allocs, (unsigned long long)st.hits,
           (unsigned long long)st.cross_stream);
    for (int i = 0; i < 2; i++) dc_pool_detach(&w[i].view);
    dc_pool_core_destroy(&core);
}

int main(void) {
    test_recording();
    CHECK(dc_pool_bucket(1) == 0 && dc_pool_bucket(256) == 0 && dc_pool_bucket(257) == 1);
    CHECK(dc_pool_bucket((size_t)1 << 20) == 12 && dc_pool_bucket(((size_t)1 << 20) + 1) == 13);

    dc_cu_pool_core core;
    dc_cu_pool p;
    dc_cuda_pool_stats st;
    CHECK(dc_pool_core_init(&core, 0) == DC_OK && dc_pool_attach(&p, &core, stream_of(1)) == DC_OK);
    /* churn: 4000 operations over up to 600 live blocks, random sizes, random releases */
    enum { LIVE = 600 };
    void *live[LIVE] = {0};
    size_t cls[LIVE] = {0}, expect_in_use = 0;
    uint64_t r = 42;
    for (int i = 0; i < 4000; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        size_t slot = (size_t)(r >> 33) % LIVE;
        if (live[slot]) {
            dc_pool_release(&p, live[slot]);
            expect_in_use -= cls[slot];
            live[slot] = NULL;
        } else {
            size_t bytes = 1 + (size_t)(r >> 40) % 70000;
            CHECK(dc_pool_alloc(&p, bytes, &live[slot]) == DC_OK);
            cls[slot] = (size_t)256 << dc_pool_bucket(bytes);
            expect_in_use += cls[slot];
        }
        dc_pool_stats(&p, &st);
        if (st.in_use != expect_in_use) {
            CHECK(st.in_use == expect_in_use);
            break;
        }
    }
    /* every handed-out pointer is distinct */
    for (size_t a = 0; a < LIVE; a++)
        for (size_t b = a + 1; live[a] && b < LIVE; b++) CHECK(live[a] != live[b]);
    for (size_t s = 0; s < LIVE; s++) dc_pool_release(&p, live[s]);
    dc_pool_stats(&p, &st);
    CHECK(st.in_use == 0 && core.live_n == 0);
    CHECK(st.hits > 0 && st.misses > 0 && st.hits + st.misses > 1000);
    CHECK(st.peak >= st.cached && dev_used == st.cached);
    dc_pool_release(&p, (void *)&st); /* a pointer the pool never gave: ignored */
    dc_pool_trim(&p);
    dc_pool_stats(&p, &st);
    CHECK(st.cached == 0 && dev_used == 0);
    CHECK(st.cross_stream == 0 && records == 0); /* one stream: no event, no wait */
    dc_pool_detach(&p);
    dc_pool_core_destroy(&core);
    CHECK(n_malloc == n_free);

    /* the cap: four 256 KiB classes fit 1 MiB, the fifth is refused and counted */
    CHECK(dc_pool_core_init(&core, (size_t)1 << 20) == DC_OK &&
          dc_pool_attach(&p, &core, stream_of(1)) == DC_OK);
    void *b[5] = {0};
    for (int i = 0; i < 4; i++) CHECK(dc_pool_alloc(&p, 200000, &b[i]) == DC_OK);
    CHECK(dc_pool_alloc(&p, 200000, &b[4]) == DC_ERR_OUT_OF_MEMORY && b[4] == NULL);
    CHECK(strstr(detail, "in use") != NULL);
    /* a cached block of another class is dropped to make room under the cap */
    dc_pool_release(&p, b[0]);
    CHECK(dc_pool_alloc(&p, 100000, &b[0]) == DC_OK); /* 128 KiB class: cache dropped first */
    dc_pool_stats(&p, &st);
    CHECK(st.failures == 1 && st.peak <= ((size_t)1 << 20) && st.cached == 0);
    for (int i = 0; i < 4; i++) dc_pool_release(&p, b[i]);
    dc_pool_detach(&p);
    dc_pool_core_destroy(&core);

    /* the device runs out: the cache is returned and the request retried, then refused */
    CHECK(dc_pool_core_init(&core, 0) == DC_OK && dc_pool_attach(&p, &core, stream_of(1)) == DC_OK);
    dev_capacity = 3u << 20;
    void *c1 = NULL, *c2 = NULL, *c3 = NULL;
    CHECK(dc_pool_alloc(&p, 1u << 20, &c1) == DC_OK && dc_pool_alloc(&p, 1u << 20, &c2) == DC_OK);
    dc_pool_release(&p, c2);                                   /* 1 MiB cached */
    CHECK(dc_pool_alloc(&p, 2u << 20, &c3) == DC_OK);          /* fits only after the trim */
    dc_pool_stats(&p, &st);
    CHECK(st.cached == 0 && st.in_use == (3u << 20));
    CHECK(dc_pool_alloc(&p, 1, &c2) == DC_ERR_OUT_OF_MEMORY); /* device full */
    CHECK(cudaGetLastError() == cudaSuccess);                 /* the error was cleared */
    dc_pool_release(&p, c1);
    dc_pool_release(&p, c3);
    dc_pool_detach(&p);
    dc_pool_core_destroy(&core);
    CHECK(dev_used == 0 && n_malloc == n_free);
    dev_capacity = SIZE_MAX;

    test_streams();
    test_threads();
    CHECK(dev_used == 0 && n_malloc == n_free);

    printf("%s: %d failure(s)\n", failures ? "FAIL" : "ok", failures);
    return failures ? 1 : 0;
}

/* The device pool's bookkeeping on the CPU: src/gpu/pool.c compiled against stand-ins for
 * cudaMalloc/cudaFree (host malloc with an adjustable capacity), so the size classes, the block
 * table (insert, backward-shift delete under churn), hits/misses/peak, the cap and the
 * trim-and-retry on allocation failure are checked without a GPU. */
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

int main(void) {
    CHECK(dc_pool_bucket(1) == 0 && dc_pool_bucket(256) == 0 && dc_pool_bucket(257) == 1);
    CHECK(dc_pool_bucket((size_t)1 << 20) == 12 && dc_pool_bucket(((size_t)1 << 20) + 1) == 13);

    dc_cu_pool p;
    dc_cuda_pool_stats st;
    CHECK(dc_pool_init(&p, 0) == DC_OK);
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
    CHECK(st.in_use == 0 && p.live_n == 0);
    CHECK(st.hits > 0 && st.misses > 0 && st.hits + st.misses > 1000);
    CHECK(st.peak >= st.cached && dev_used == st.cached);
    dc_pool_release(&p, (void *)&st); /* a pointer the pool never gave: ignored */
    dc_pool_trim(&p);
    dc_pool_stats(&p, &st);
    CHECK(st.cached == 0 && dev_used == 0);
    dc_pool_destroy(&p);
    CHECK(n_malloc == n_free);

    /* the cap: four 256 KiB classes fit 1 MiB, the fifth is refused and counted */
    CHECK(dc_pool_init(&p, (size_t)1 << 20) == DC_OK);
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
    dc_pool_destroy(&p);

    /* the device runs out: the cache is returned and the request retried, then refused */
    CHECK(dc_pool_init(&p, 0) == DC_OK);
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
    dc_pool_destroy(&p);
    CHECK(dev_used == 0 && n_malloc == n_free);

    printf("%s: %d failure(s)\n", failures ? "FAIL" : "ok", failures);
    return failures ? 1 : 0;
}

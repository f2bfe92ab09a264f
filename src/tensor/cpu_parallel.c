/* See cpu_parallel.h. The libgomp entry points are the ones `#pragma omp parallel` compiles
 * to (GOMP_parallel, GCC ≥ 4.9 ABI); pieces are claimed with an atomic counter so uneven
 * items (sequences of different lengths) balance themselves. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "tensor/cpu_parallel.h"

/* ThreadSanitizer cannot see libgomp's fork and join (the library is not instrumented), so
 * the team's reads of the job and its context look racy against whatever the caller writes
 * next at the same stack address; these annotations state the two edges. */
#if defined(__SANITIZE_THREAD__)
#define DC_PARALLEL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define DC_PARALLEL_TSAN 1
#endif
#endif
#ifdef DC_PARALLEL_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define tsan_acquire(p) __tsan_acquire(p)
#define tsan_release(p) __tsan_release(p)
#else
#define tsan_acquire(p) ((void)(p))
#define tsan_release(p) ((void)(p))
#endif

typedef void (*gomp_parallel_fn)(void (*)(void *), void *, unsigned, unsigned);
typedef int (*omp_int_fn)(void);

static gomp_parallel_fn gomp_parallel;
static omp_int_fn omp_max_threads, omp_thread_num, omp_in_parallel;
static pthread_once_t lookup_once = PTHREAD_ONCE_INIT;

static void *sym(void *self, const char *name) {
    void *p = dlsym(self, name);
    return p;
}

static void lookup(void) {
    void *self = dlopen(NULL, RTLD_NOW);
    if (!self) return;
    void *p[4] = {sym(self, "GOMP_parallel"), sym(self, "omp_get_max_threads"),
                  sym(self, "omp_get_thread_num"), sym(self, "omp_in_parallel")};
    if (p[0] && p[1] && p[2] && p[3]) {
        memcpy(&gomp_parallel, &p[0], sizeof gomp_parallel);
        memcpy(&omp_max_threads, &p[1], sizeof omp_max_threads);
        memcpy(&omp_thread_num, &p[2], sizeof omp_thread_num);
        memcpy(&omp_in_parallel, &p[3], sizeof omp_in_parallel);
    }
    dlclose(self);
}

unsigned dc_cpu_parallel_threads(void) {
    pthread_once(&lookup_once, lookup);
    if (!gomp_parallel || omp_in_parallel()) return 1;
    int n = omp_max_threads();
    return n > 1 ? (unsigned)n : 1;
}

typedef struct job {
    dc_parallel_fn fn;
    void *ctx;
    size_t n, grain;
    atomic_size_t next;
} job;

static void run_pieces(job *j, unsigned tid) {
    for (;;) {
        size_t lo = atomic_fetch_add_explicit(&j->next, j->grain, memory_order_relaxed);
        if (lo >= j->n) break;
        size_t hi = j->n - lo < j->grain ? j->n : lo + j->grain;
        j->fn(j->ctx, lo, hi, tid);
    }
}

static void trampoline(void *arg) {
    job *j = arg;
    tsan_acquire(j); /* the fork: the caller's writes before gomp_parallel */
    run_pieces(j, (unsigned)omp_thread_num());
    tsan_release(j); /* the join: this member's accesses before gomp_parallel returns */
}

void dc_cpu_parallel_for(size_t n, size_t grain, unsigned max_threads, dc_parallel_fn fn,
                         void *ctx) {
    if (!n) return;
    if (!grain) grain = 1;
    unsigned team = dc_cpu_parallel_threads();
    if (max_threads && max_threads < team) team = max_threads;
    size_t pieces = (n + grain - 1) / grain;
    if (pieces < team) team = (unsigned)pieces;
    if (team <= 1) {
        fn(ctx, 0, n, 0);
        return;
    }
    job j = {fn, ctx, n, grain, 0};
    tsan_release(&j);
    gomp_parallel(trampoline, &j, team, 0);
    tsan_acquire(&j);
}

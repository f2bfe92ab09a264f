/* Parallel loops for the CPU backend's own kernels, on the OpenMP team oneDNN already runs.
 *
 * oneDNN (Debian's build) runs its matrix products on libgomp. Between two products its worker
 * threads spin waiting for the next region; running attention, LayerNorm and the activations
 * on the same team turns that spin into work, and never oversubscribes the cores the backend
 * was given. The library does not link OpenMP itself: GOMP_parallel and the omp_* queries are
 * looked up at run time; without them (another oneDNN threading runtime) every loop runs on
 * the calling thread. The team size is OpenMP's setting for the calling thread, which
 * dc_backend_cpu_bind_threads sets at the start of each forward. */
#ifndef DC_TENSOR_CPU_PARALLEL_H
#define DC_TENSOR_CPU_PARALLEL_H

#include <stddef.h>

/* Runs fn(ctx, lo, hi, tid) over [0, n) in pieces of `grain` items (the last may be shorter),
 * handed out dynamically to at most `max_threads` threads (0 = the team size); tid is the
 * running thread's index, below the value dc_cpu_parallel_threads returned. Returns when every
 * piece is done. */
typedef void (*dc_parallel_fn)(void *ctx, size_t lo, size_t hi, unsigned tid);
void dc_cpu_parallel_for(size_t n, size_t grain, unsigned max_threads, dc_parallel_fn fn,
                         void *ctx);

/* Threads a dc_cpu_parallel_for may use from the calling thread (≥ 1). */
unsigned dc_cpu_parallel_threads(void);

#endif

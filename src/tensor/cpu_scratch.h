/* Per-thread scratch memory for the CPU kernels: grows to the largest request a thread has made
 * and is kept for the next, so a warm forward allocates nothing; freed when the thread ends. */
#ifndef DC_TENSOR_CPU_SCRATCH_H
#define DC_TENSOR_CPU_SCRATCH_H

#include <stddef.h>

/* One buffer per use, so a caller holding one can run code that takes another. */
typedef enum dc_scratch_slot {
    DC_SCRATCH_INT8,  /* the int8 linear layer's quantised rows and partial maxima */
    DC_SCRATCH_SGEMM, /* the packed GEMM's input rows (the calling thread) */
    DC_SCRATCH_WIDEN, /* the packed GEMM's widened bf16 panels (every thread of the team) */
    DC_SCRATCH_PAIRS, /* a panel's input rows rounded to bf16 pairs (every thread of the team) */
    DC_SCRATCH_SLOTS
} dc_scratch_slot;

/* The calling thread's buffer for `slot`, at least `bytes` (64-byte aligned), or NULL when out
 * of memory. Earlier contents are not kept when it grows. */
void *dc_cpu_scratch(dc_scratch_slot slot, size_t bytes);

/* Frees the calling thread's buffer for `slot` if it is larger than `keep` bytes. */
void dc_cpu_scratch_trim(dc_scratch_slot slot, size_t keep);

#endif

/* Internal entry points of cpu_kernels.c that the CPU backend threads over (backend.h has the
 * portable kernels every backend may use). */
#ifndef DC_TENSOR_CPU_KERNELS_H
#define DC_TENSOR_CPU_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Attention within one sequence of `len` rows, one head h, optionally banded (dc_attn_opts):
 * the queries are q rows 0..n_q-1 at sequence positions qpos[i] (NULL: n_q = len and row i
 * is position i); globals are the n_glob positions glist[] (also flagged in gflag[], which may
 * be NULL when n_glob is 0); skip_global skips queries whose position is global. `kt` holds
 * dc_kernel_attention_kv_floats(len, head_dim) floats (the head's keys, transposed in blocks,
 * its value rows and a flag per key), `sc` dc_kernel_attention_scores_floats(band, n_glob)
 * floats, band = min(len, left + right + 1). Heads (and sequences) are independent: threads
 * may run different heads at once with their own kt and sc. */
void dc_kernel_attention_head(const float *q, size_t ld_q, const float *k, const float *v,
                              size_t ld_kv, float *out, size_t ld_out, uint32_t len,
                              const uint8_t *key_mask, uint32_t h, uint32_t head_dim, float scale,
                              uint32_t left, uint32_t right, const uint32_t *qpos, uint32_t n_q,
                              const uint32_t *glist, uint32_t n_glob, const uint8_t *gflag,
                              bool skip_global, float *kt, float *sc);
size_t dc_kernel_attention_scores_floats(size_t band, uint32_t n_glob);
size_t dc_kernel_attention_kv_floats(uint32_t len, uint32_t head_dim);

#endif

/* The seeded sparse random projection of SPLADE weights, 30522 → 1536 (seed L33,
 * reference/methods.md §5.3): every input column j has exactly `nnz` non-zeros ±1/√nnz at
 * distinct rows drawn from a SplitMix64 stream seeded by (seed, j), so every column has norm 1
 * and a one-hot input maps to a unit vector.
 *
 * File format (little-endian): magic "DCSPRJ\0\0" (8 bytes), u32 version (1), u32 nnz,
 * u32 d_in, u32 d_out, u64 seed, u64 XXH3-64 of the entry array, then d_in·nnz u16 entries
 * (row in bits 0–14, sign in bit 15: set = −1), column-major. Loading checks every field,
 * the checksum, the row range and distinctness, and that the entries are the ones the seed
 * generates. */
#ifndef DC_MODELS_E6_PROJECTION_H
#define DC_MODELS_E6_PROJECTION_H

#include <stddef.h>
#include <stdint.h>

#include "dodeca/status.h"

#define DC_SPARSE_PROJECTION_SEED    42u
#define DC_SPARSE_PROJECTION_NNZ     8u
#define DC_SPARSE_PROJECTION_VERSION 1u

typedef struct dc_sparse_projection dc_sparse_projection;

/* d_out ≤ 32768, 1 ≤ nnz ≤ min(d_out, 64). */
dc_status dc_sparse_projection_create(uint64_t seed, uint32_t d_in, uint32_t d_out, uint32_t nnz,
                                      dc_sparse_projection **out);
void dc_sparse_projection_free(dc_sparse_projection *p);
size_t dc_sparse_projection_bytes(const dc_sparse_projection *p);

uint64_t dc_sparse_projection_seed(const dc_sparse_projection *p);
uint32_t dc_sparse_projection_d_in(const dc_sparse_projection *p);
uint32_t dc_sparse_projection_d_out(const dc_sparse_projection *p);
uint64_t dc_sparse_projection_checksum(const dc_sparse_projection *p);

/* y[d_out] = R·x for a dense x[d_in] (zeros skipped). */
void dc_sparse_projection_apply_dense(const dc_sparse_projection *p, const float *x, float *y);
/* y[d_out] = R·x for a sparse x; indices ≥ d_in are DC_ERR_INVALID_VALUE. */
dc_status dc_sparse_projection_apply(const dc_sparse_projection *p, const uint32_t *indices,
                                     const float *values, uint32_t nnz, float *y);

/* Encoded file bytes (malloc'ed) and writing/reading files. */
dc_status dc_sparse_projection_encode(const dc_sparse_projection *p, uint8_t **bytes,
                                      size_t *len);
dc_status dc_sparse_projection_decode(const uint8_t *bytes, size_t len, const char *origin,
                                      dc_sparse_projection **out);
dc_status dc_sparse_projection_save(const dc_sparse_projection *p, const char *path);
dc_status dc_sparse_projection_load(const char *path, dc_sparse_projection **out);

#endif

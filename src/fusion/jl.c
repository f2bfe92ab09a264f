/* The shared map S: a seeded sparse Johnson–Lindenstrauss projection 8320 → 1536.
 *
 * Each input column has `nnz` entries ±1/√nnz, one in each of nnz equal row bands (Kane–Nelson
 * block construction), so the rows of a column are distinct and E[(Sx)·(Sy)] = x·y with the
 * variance of a dense Gaussian projection, at nnz multiply-adds per input value. S is a pure
 * function of (seed, nnz): it is regenerated, never stored. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "fusion/internal.h"
#include "fusion/rng.h"

#define DC_JL_STREAM 0x4A4C4D4150ull /* "JLMAP" */

dc_status dc_jl_create(uint64_t seed, uint32_t nnz, dc_jl_map **out) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "jl map: NULL output");
    *out = NULL;
    if (nnz == 0 || nnz > 64 || DC_FUSION_OUT % nnz != 0)
        return dc_fail(DC_ERR_CONFIG,
                       "fusion jl_nnz (%u) must divide %d and be between 1 and 64", nnz,
                       DC_FUSION_OUT);
    dc_jl_map *m = calloc(1, sizeof *m);
    uint16_t *col = m ? malloc((size_t)DC_FUSION_IN * nnz * sizeof *col) : NULL;
    if (!col) {
        free(m);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "jl map %u x %u (nnz %u)", DC_FUSION_OUT,
                       DC_FUSION_IN, nnz);
    }
    const uint32_t band = DC_FUSION_OUT / nnz;
    for (uint32_t c = 0; c < DC_FUSION_IN; c++) {
        for (uint32_t j = 0; j < nnz; j++) {
            uint64_t r = dc_rand64(seed, DC_JL_STREAM, (uint64_t)c * nnz + j);
            uint32_t row = j * band + (uint32_t)(((r >> 32) * (uint64_t)band) >> 32);
            col[(size_t)c * nnz + j] = (uint16_t)(row | ((r & 1u) << 15));
        }
    }
    m->seed = seed;
    m->nnz = nnz;
    m->scale = (float)(1.0 / sqrt((double)nnz));
    m->col = col;
    *out = m;
    return DC_OK;
}

void dc_jl_destroy(dc_jl_map *m) {
    if (!m) return;
    free(m->col);
    free(m);
}

void dc_jl_accumulate(const dc_jl_map *m, const float *z, uint32_t c0, uint32_t c1, float *y) {
    const uint32_t nnz = m->nnz;
    for (uint32_t c = c0; c < c1; c++) {
        float v = z[c];
        if (v == 0.0f) continue; /* absent blocks cost nothing */
        float pos = v * m->scale, neg = -pos;
        const uint16_t *e = m->col + (size_t)c * nnz;
        for (uint32_t j = 0; j < nnz; j++) y[e[j] & 0x7fff] += (e[j] >> 15) ? neg : pos;
    }
}

void dc_jl_apply(const dc_jl_map *m, const float *z, float *y) {
    memset(y, 0, DC_FUSION_OUT * sizeof *y);
    dc_jl_accumulate(m, z, 0, DC_FUSION_IN, y);
}

/* The shared map S: a seeded sparse Johnson–Lindenstrauss projection 8320 → 1536.
 *
 * Each input column has `nnz` entries ±1/√nnz, one in each of nnz equal row bands (Kane–Nelson
 * block construction), so the rows of a column are distinct and E[(Sx)·(Sy)] = x·y with the
 * variance of a dense Gaussian projection, at nnz multiply-adds per input value. S is a pure
 * function of (seed, nnz): it is regenerated, never stored. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
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
    /* the same matrix by rows: the full product then gathers instead of scattering */
    m->row_ptr = calloc(DC_FUSION_OUT + 1, sizeof *m->row_ptr);
    m->row_col = malloc((size_t)DC_FUSION_IN * nnz * sizeof *m->row_col);
    if (!m->row_ptr || !m->row_col) {
        dc_jl_destroy(m);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "jl map rows");
    }
    for (size_t i = 0; i < (size_t)DC_FUSION_IN * nnz; i++) m->row_ptr[(col[i] & 0x7fff) + 1]++;
    for (uint32_t r = 0; r < DC_FUSION_OUT; r++) m->row_ptr[r + 1] += m->row_ptr[r];
    uint32_t fill[DC_FUSION_OUT];
    memcpy(fill, m->row_ptr, sizeof fill);
    for (uint32_t c = 0; c < DC_FUSION_IN; c++) /* ascending c: rows come out sorted */
        for (uint32_t j = 0; j < nnz; j++) {
            uint16_t e = col[(size_t)c * nnz + j];
            m->row_col[fill[e & 0x7fff]++] = (uint16_t)(c | (e & 0x8000u));
        }
    *out = m;
    return DC_OK;
}

void dc_jl_destroy(dc_jl_map *m) {
    if (!m) return;
    free(m->col);
    free(m->row_ptr);
    free(m->row_col);
    free(m);
}

void dc_jl_accumulate(const dc_jl_map *m, const float *z, uint32_t c0, uint32_t c1, float *y) {
    const uint32_t nnz = m->nnz;
    for (uint32_t c = c0; c < c1; c++) {
        float v = z[c];
        if (v == 0.0f) continue; /* absent blocks cost nothing */
        uint32_t bits = dc_f32_bits(v * m->scale);
        const uint16_t *e = m->col + (size_t)c * nnz;
        /* the sign goes in by flipping the float's sign bit: random signs would make a
         * branch mispredict half the time */
        for (uint32_t j = 0; j < nnz; j++)
            y[e[j] & 0x7fff] += dc_f32_from_bits(bits ^ ((uint32_t)(e[j] >> 15) << 31));
    }
}

/* ±z[c] for one packed entry: the sign flips the float's sign bit (no branch) */
static inline float signed_at(const float *z, uint16_t e) {
    return dc_f32_from_bits(dc_f32_bits(z[e & 0x7fff]) ^ ((uint32_t)(e >> 15) << 31));
}

void dc_jl_apply(const dc_jl_map *m, const float *z, float *y) {
    /* gather by rows: independent loads, four named accumulators so the adds overlap (an
     * array of accumulators stays in memory at -O2 and chains through store forwarding) */
    const uint16_t *rc = m->row_col;
    for (uint32_t r = 0; r < DC_FUSION_OUT; r++) {
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
        uint32_t i = m->row_ptr[r], end = m->row_ptr[r + 1];
        for (; i + 4 <= end; i += 4) {
            a0 += signed_at(z, rc[i]);
            a1 += signed_at(z, rc[i + 1]);
            a2 += signed_at(z, rc[i + 2]);
            a3 += signed_at(z, rc[i + 3]);
        }
        for (; i < end; i++) a0 += signed_at(z, rc[i]);
        y[r] = ((a0 + a1) + (a2 + a3)) * m->scale;
    }
}

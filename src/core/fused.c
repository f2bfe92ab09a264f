/* Fused embedding (seed F05): aux data ownership and validation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "dodeca/types.h"

/* The seed allows the gate weights to be off by this much from 1 (rounding in fp32). */
#define DC_GATE_SUM_TOLERANCE 0.01

void dc_fused_init(dc_fused_embedding *f) { memset(f, 0, sizeof *f); }

void dc_fused_free(dc_fused_embedding *f) {
    if (!f) return;
    free(f->colbert.data);
    free(f->sparse.indices);
    free(f->sparse.values);
    dc_fused_init(f);
}

static dc_status check_colbert(const float *rows, uint32_t n_tokens, uint32_t dim) {
    if (n_tokens == 0) return DC_OK;
    if (!rows || dim == 0)
        return dc_fail(DC_ERR_INVALID_DIMENSION, "colbert: %u tokens with dim %u and no data",
                       (unsigned)n_tokens, (unsigned)dim);
    if ((uint64_t)n_tokens * dim > (uint64_t)SIZE_MAX / sizeof(float))
        return dc_fail(DC_ERR_INVALID_DIMENSION, "colbert: %u × %u floats is too large",
                       (unsigned)n_tokens, (unsigned)dim);
    return dc_vec_check_finite(rows, (size_t)n_tokens * dim, "colbert");
}

static dc_status check_sparse(const uint32_t *indices, const float *values, uint32_t nnz,
                              uint32_t vocab_size) {
    if (nnz == 0) return DC_OK;
    if (!indices || !values)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "sparse: %u entries and no data", (unsigned)nnz);
    if (nnz > vocab_size)
        return dc_fail(DC_ERR_INVALID_DIMENSION, "sparse: %u entries exceed vocabulary size %u",
                       (unsigned)nnz, (unsigned)vocab_size);
    for (uint32_t i = 0; i < nnz; i++) {
        if (indices[i] >= vocab_size)
            return dc_fail(DC_ERR_INVALID_VALUE, "sparse: index[%u] = %u is outside vocabulary %u",
                           (unsigned)i, (unsigned)indices[i], (unsigned)vocab_size);
        if (i && indices[i] <= indices[i - 1])
            return dc_fail(DC_ERR_INVALID_VALUE,
                           "sparse: indices must be strictly increasing (index[%u] = %u after %u)",
                           (unsigned)i, (unsigned)indices[i], (unsigned)indices[i - 1]);
    }
    return dc_vec_check_finite(values, nnz, "sparse value");
}

static void *dup_bytes(const void *src, size_t n) {
    void *p = malloc(n ? n : 1);
    if (p && n) memcpy(p, src, n);
    return p;
}

dc_status dc_fused_set_colbert(dc_fused_embedding *f, const float *rows, uint32_t n_tokens,
                               uint32_t dim) {
    if (!f) return dc_fail(DC_ERR_INVALID_ARGUMENT, "fused embedding is NULL");
    dc_status st = check_colbert(rows, n_tokens, dim);
    if (st != DC_OK) return st;
    float *copy = NULL;
    if (n_tokens) {
        copy = dup_bytes(rows, (size_t)n_tokens * dim * sizeof(float));
        if (!copy) return dc_fail(DC_ERR_OUT_OF_MEMORY, "colbert matrix %u × %u", n_tokens, dim);
    }
    free(f->colbert.data);
    f->colbert = (dc_token_matrix){copy, n_tokens, n_tokens ? dim : 0};
    return DC_OK;
}

dc_status dc_fused_set_sparse(dc_fused_embedding *f, const uint32_t *indices, const float *values,
                              uint32_t nnz, uint32_t vocab_size) {
    if (!f) return dc_fail(DC_ERR_INVALID_ARGUMENT, "fused embedding is NULL");
    dc_status st = check_sparse(indices, values, nnz, vocab_size);
    if (st != DC_OK) return st;
    uint32_t *idx = NULL;
    float *val = NULL;
    if (nnz) {
        idx = dup_bytes(indices, (size_t)nnz * sizeof *idx);
        val = dup_bytes(values, (size_t)nnz * sizeof *val);
        if (!idx || !val) {
            free(idx);
            free(val);
            return dc_fail(DC_ERR_OUT_OF_MEMORY, "sparse vector of %u entries", (unsigned)nnz);
        }
    }
    free(f->sparse.indices);
    free(f->sparse.values);
    f->sparse = (dc_sparse_vector){idx, val, nnz, vocab_size};
    return DC_OK;
}

dc_status dc_fused_validate(const dc_fused_embedding *f) {
    if (!f) return dc_fail(DC_ERR_INVALID_ARGUMENT, "fused embedding is NULL");
    dc_status st = dc_vec_check_finite(f->vector, DC_DIM_FUSED, "fused vector");
    if (st != DC_OK) return st;
    double sum = 0.0;
    for (int i = 0; i < DC_NUM_EXPERTS; i++) {
        float w = f->expert_weights[i];
        if (!isfinite(w) || w < 0.0f || w > 1.0f)
            return dc_fail(DC_ERR_INVALID_VALUE, "expert_weights[%d] = %g is not a probability",
                           i, (double)w);
        sum += w;
    }
    if (fabs(sum - 1.0) > DC_GATE_SUM_TOLERANCE)
        return dc_fail(DC_ERR_INVALID_VALUE, "expert weights sum to %.6f, expected 1 (±%.2f)", sum,
                       DC_GATE_SUM_TOLERANCE);
    if (f->num_selected < 1 || f->num_selected > DC_NUM_EXPERTS)
        return dc_fail(DC_ERR_INVALID_VALUE, "num_selected = %u, expected 1..%d",
                       (unsigned)f->num_selected, DC_NUM_EXPERTS);
    unsigned seen = 0;
    for (unsigned i = 0; i < f->num_selected; i++) {
        unsigned e = f->selected_experts[i];
        if (e >= DC_NUM_EXPERTS)
            return dc_fail(DC_ERR_INVALID_VALUE, "selected_experts[%u] = %u, expected < %d", i, e,
                           DC_NUM_EXPERTS);
        if (seen & (1u << e))
            return dc_fail(DC_ERR_INVALID_VALUE, "expert %u is selected twice", e);
        seen |= 1u << e;
    }
    if (f->present_mask & ~DC_ALL_MODELS_MASK)
        return dc_fail(DC_ERR_INVALID_VALUE, "present_mask 0x%x names models beyond E12",
                       (unsigned)f->present_mask);
    if ((st = check_colbert(f->colbert.data, f->colbert.n_tokens, f->colbert.dim)) != DC_OK)
        return st;
    return check_sparse(f->sparse.indices, f->sparse.values, f->sparse.nnz, f->sparse.vocab_size);
}

/* Linear layers from a checkpoint, by the backend's file reader or by the host (linear_load.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "models/bert.h"
#include "models/linear_load.h"

#define DC_LINEAR_MAX_PARTS 3

typedef struct names {
    char w[DC_LINEAR_MAX_PARTS][256], b[DC_LINEAR_MAX_PARTS][256];
    const char *wp[DC_LINEAR_MAX_PARTS], *bp[DC_LINEAR_MAX_PARTS];
} names;

static void names_make(names *nm, const char *base, const char *const *parts, uint32_t np) {
    for (uint32_t p = 0; p < np; p++) {
        const char *dot = parts ? "." : "", *part = parts ? parts[p] : "";
        snprintf(nm->w[p], sizeof nm->w[p], "%s%s%s.weight", base, dot, part);
        snprintf(nm->b[p], sizeof nm->b[p], "%s%s%s.bias", base, dot, part);
        nm->wp[p] = nm->w[p];
        nm->bp[p] = nm->b[p];
    }
}

/* The part of the stack that tensor `name` is, when the backend can read it itself. */
static bool file_part(const dc_weights *w, const char *name, uint32_t n, uint32_t k,
                      dc_linear_file_part *out) {
    const dc_tensor_view *t = dc_weights_find(w, name);
    if (!t || t->ndim != 2 || t->shape[0] != n || t->shape[1] != k) return false;
    switch (t->dtype) {
    case DC_DTYPE_F32: out->type = DC_FILE_F32; break;
    case DC_DTYPE_BF16: out->type = DC_FILE_BF16; break;
    case DC_DTYPE_F16: out->type = DC_FILE_F16; break;
    default: return false;
    }
    out->name = t->name;
    out->rows = n;
    return dc_weights_file_span(w, t, &out->path, &out->offset);
}

/* The stacked biases as one host array (*b NULL when there are none). */
static dc_status load_bias(const dc_weights *w, const char *prefix, const char *const *bnames,
                           uint32_t np, uint32_t n, float **b) {
    *b = NULL;
    if (!bnames) return DC_OK;
    float *B = malloc((size_t)np * n * sizeof *B);
    if (!B) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: bias %s", dc_weights_path(w), bnames[0]);
    for (uint32_t p = 0; p < np; p++) {
        float *t = NULL;
        dc_status st = dc_bert_tensor_f32(w, prefix, bnames[p], 1, (uint64_t[]){n}, &t);
        if (st) {
            free(B);
            return st;
        }
        memcpy(B + (size_t)p * n, t, (size_t)n * sizeof *B);
        free(t);
    }
    *b = B;
    return DC_OK;
}

/* The host path: every part converted to f32, stacked, handed to linear_create. */
static dc_status load_host(dc_backend *be, const dc_weights *w, const char *prefix,
                           const char *const *wnames, uint32_t np, uint32_t n, uint32_t k,
                           const float *B, dc_weight_format fmt, dc_linear **out) {
    float *W = malloc((size_t)np * n * k * sizeof *W);
    if (!W) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: %s", dc_weights_path(w), wnames[0]);
    dc_status st = DC_OK;
    for (uint32_t p = 0; p < np && !st; p++) {
        float *t = NULL;
        st = dc_bert_tensor_f32(w, prefix, wnames[p], 2, (uint64_t[]){n, k}, &t);
        if (!st) memcpy(W + (size_t)p * n * k, t, (size_t)n * k * sizeof *W);
        free(t);
    }
    if (!st) st = be->ops->linear_create(be, W, B, np * n, k, fmt, out);
    free(W);
    return st;
}

dc_status dc_linear_load(dc_backend *be, const dc_weights *w, const char *prefix,
                         const char *base, const char *const *parts, uint32_t np, bool has_bias,
                         uint32_t n, uint32_t k, dc_weight_format fmt, bool direct,
                         dc_linear **out) {
    *out = NULL;
    if (!np || np > DC_LINEAR_MAX_PARTS || (np > 1 && !parts))
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "%s: a linear of %u parts (1 to %d)", base, np,
                       DC_LINEAR_MAX_PARTS);
    names nm;
    names_make(&nm, base, parts, np);
    const char *const *wnames = nm.wp;
    float *B = NULL;
    dc_status st = load_bias(w, prefix, has_bias ? nm.bp : NULL, np, n, &B);
    if (st) return st;
    dc_linear_file_part fp[DC_LINEAR_MAX_PARTS];
    bool from_file = direct && be->ops->linear_create_from_file;
    for (uint32_t p = 0; p < np && from_file; p++) {
        char name[512];
        snprintf(name, sizeof name, "%s%s", prefix ? prefix : "", wnames[p]);
        from_file = file_part(w, name, n, k, &fp[p]);
    }
    if (from_file) {
        st = be->ops->linear_create_from_file(be, fp, np, B, np * n, k, fmt, out);
        if (st == DC_ERR_UNSUPPORTED_FORMAT) {
            dc_error_clear(); /* a format the backend encodes from host f32 (FP4) */
            from_file = false;
        }
    }
    if (!from_file) st = load_host(be, w, prefix, wnames, np, n, k, B, fmt, out);
    free(B);
    return st;
}

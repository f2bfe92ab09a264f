/* Vector helpers, per-model embeddings (seed F03) and the concatenation (seed F04). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "dodeca/types.h"

double dc_vec_l2_norm(const float *v, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)v[i] * (double)v[i];
    return sqrt(s);
}

bool dc_vec_normalize(float *v, size_t n) {
    double norm = dc_vec_l2_norm(v, n);
    if (norm == 0.0 || !isfinite(norm)) return false;
    double inv = 1.0 / norm;
    for (size_t i = 0; i < n; i++) v[i] = (float)(v[i] * inv);
    return true;
}

double dc_vec_cosine(const float *a, const float *b, size_t n) {
    double dot = 0.0, na = 0.0, nb = 0.0;
    for (size_t i = 0; i < n; i++) {
        dot += (double)a[i] * b[i];
        na += (double)a[i] * a[i];
        nb += (double)b[i] * b[i];
    }
    if (na == 0.0 || nb == 0.0) return 0.0;
    return dot / (sqrt(na) * sqrt(nb));
}

dc_status dc_vec_check_finite(const float *v, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return dc_fail(DC_ERR_INVALID_VALUE, "%s[%zu] is %s", what, i,
                           isnan(v[i]) ? "NaN" : "infinite");
    return DC_OK;
}

dc_status dc_model_embedding_init(dc_model_embedding *e, dc_model_id model, const float *vector,
                                  uint32_t dim) {
    if (!e || (!vector && dim)) return dc_fail(DC_ERR_INVALID_ARGUMENT, "NULL embedding or vector");
    if (!dc_model_info_get(model))
        return dc_fail(DC_ERR_MODEL_NOT_FOUND, "model id %d is out of range", (int)model);
    memset(e, 0, sizeof *e);
    e->model = model;
    if (dim) {
        e->vector = malloc((size_t)dim * sizeof(float));
        if (!e->vector)
            return dc_fail(DC_ERR_OUT_OF_MEMORY, "embedding of %u floats", (unsigned)dim);
        memcpy(e->vector, vector, (size_t)dim * sizeof(float));
    }
    e->dim = dim;
    return DC_OK;
}

void dc_model_embedding_free(dc_model_embedding *e) {
    if (!e) return;
    free(e->vector);
    e->vector = NULL;
    e->dim = 0;
}

dc_status dc_model_embedding_validate(const dc_model_embedding *e) {
    if (!e) return dc_fail(DC_ERR_INVALID_ARGUMENT, "embedding is NULL");
    const dc_model_info *info = dc_model_info_get(e->model);
    if (!info) return dc_fail(DC_ERR_MODEL_NOT_FOUND, "model id %d is out of range", (int)e->model);
    if (e->dim != info->dim || !e->vector)
        return dc_fail(DC_ERR_INVALID_DIMENSION, "%s (%s) embedding has %u values, expected %u",
                       info->label, info->name, (unsigned)e->dim, (unsigned)info->dim);
    dc_status st = dc_vec_check_finite(e->vector, e->dim, info->name);
    if (st != DC_OK) return dc_fail_context(st, "%s embedding", info->label);
    return DC_OK;
}

void dc_concat_init(dc_concat_embedding *c, dc_hash128 content_hash) {
    memset(c, 0, sizeof *c);
    c->content_hash = content_hash;
}

dc_status dc_concat_set(dc_concat_embedding *c, const dc_model_embedding *e) {
    if (!c) return dc_fail(DC_ERR_INVALID_ARGUMENT, "concatenation is NULL");
    dc_status st = dc_model_embedding_validate(e);
    if (st != DC_OK) return st;
    const dc_model_info *info = dc_model_info_get(e->model);
    float *block = c->vector + info->offset;
    memcpy(block, e->vector, info->dim * sizeof(float));
    if (!dc_vec_normalize(block, info->dim)) memset(block, 0, info->dim * sizeof(float));
    c->present_mask |= 1u << e->model;
    c->latency_us[e->model] = e->latency_us;
    return DC_OK;
}

const float *dc_concat_block(const dc_concat_embedding *c, dc_model_id id) {
    const dc_model_info *info = dc_model_info_get(id);
    return c && info ? c->vector + info->offset : NULL;
}

bool dc_concat_has(const dc_concat_embedding *c, dc_model_id id) {
    return c && (unsigned)id < DC_NUM_MODELS && (c->present_mask & (1u << id));
}

bool dc_concat_is_complete(const dc_concat_embedding *c) {
    return c && (c->present_mask & DC_ALL_MODELS_MASK) == DC_ALL_MODELS_MASK;
}

size_t dc_concat_missing(const dc_concat_embedding *c, dc_model_id out[DC_NUM_MODELS]) {
    size_t n = 0;
    for (int i = 0; i < DC_NUM_MODELS; i++)
        if (!dc_concat_has(c, (dc_model_id)i)) out[n++] = (dc_model_id)i;
    return n;
}

uint64_t dc_concat_total_latency_us(const dc_concat_embedding *c) {
    uint64_t total = 0;
    for (int i = 0; i < DC_NUM_MODELS; i++)
        if (dc_concat_has(c, (dc_model_id)i)) total += c->latency_us[i];
    return total;
}

/* Training pairs: JSON-lines I/O, the synthetic task, and paired recall@1 (train.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <oneapi/dnnl/dnnl.h>

#include "core/error.h"
#include "fusion/internal.h"
#include "fusion/rng.h"
#include "fusion/train.h"

#define IN DC_FUSION_IN

dc_status dc_fusion_dataset_alloc(size_t n, dc_fusion_dataset *d) {
    memset(d, 0, sizeof *d);
    if (n > (SIZE_MAX / sizeof(float)) / IN / 2)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "dataset of %zu pairs is too large", n);
    size_t m = n ? n : 1;
    d->a = malloc(m * IN * sizeof(float));
    d->b = malloc(m * IN * sizeof(float));
    d->mask_a = malloc(m * sizeof(uint32_t));
    d->mask_b = malloc(m * sizeof(uint32_t));
    if (!d->a || !d->b || !d->mask_a || !d->mask_b) {
        dc_fusion_dataset_free(d);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "dataset of %zu pairs", n);
    }
    d->n = n;
    return DC_OK;
}

void dc_fusion_dataset_free(dc_fusion_dataset *d) {
    if (!d) return;
    free(d->a);
    free(d->b);
    free(d->mask_a);
    free(d->mask_b);
    memset(d, 0, sizeof *d);
}

/* ---- JSON lines ---- */

static uint32_t infer_mask(const float *v) {
    uint32_t mask = 0;
    for (int m = 0; m < DC_NUM_MODELS; m++) {
        const dc_model_info *info = dc_model_info_get((dc_model_id)m);
        for (uint32_t i = 0; i < info->dim; i++)
            if (v[info->offset + i] != 0.0f) {
                mask |= 1u << m;
                break;
            }
    }
    return mask;
}

static dc_status read_side(const cJSON *root, const char *key, const char *mkey, size_t line,
                           float *dst, uint32_t *mask) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!cJSON_IsArray(arr))
        return dc_fail(DC_ERR_SERIALIZATION, "line %zu: \"%s\" must be an array of %d numbers",
                       line, key, IN);
    int count = cJSON_GetArraySize(arr);
    if (count != IN)
        return dc_fail(DC_ERR_INVALID_DIMENSION, "line %zu: \"%s\" has %d values, expected %d",
                       line, key, count, IN);
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || fabs(it->valuedouble) > 1e30)
            return dc_fail(DC_ERR_INVALID_VALUE, "line %zu: \"%s\"[%d] is not a finite number",
                           line, key, i);
        dst[i++] = (float)it->valuedouble;
    }
    const cJSON *mk = cJSON_GetObjectItemCaseSensitive(root, mkey);
    if (mk) {
        if (!cJSON_IsNumber(mk) || mk->valuedouble < 0 || mk->valuedouble > DC_ALL_MODELS_MASK ||
            mk->valuedouble != floor(mk->valuedouble))
            return dc_fail(DC_ERR_INVALID_VALUE, "line %zu: \"%s\" must be an integer 0..%u", line,
                           mkey, DC_ALL_MODELS_MASK);
        *mask = (uint32_t)mk->valuedouble;
    } else {
        *mask = infer_mask(dst);
    }
    if (!*mask) return dc_fail(DC_ERR_FUSION, "line %zu: \"%s\" has no model present", line, key);
    return DC_OK;
}

dc_status dc_fusion_dataset_read_jsonl(const char *path, dc_fusion_dataset *out) {
    if (!path || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "dataset read: NULL argument");
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "r");
    if (!f) return dc_fail(DC_ERR_IO, "open %s: %s", path, strerror(errno));
    dc_fusion_dataset d;
    dc_status st = dc_fusion_dataset_alloc(0, &d);
    size_t cap = 0, lineno = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while (st == DC_OK && (len = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        size_t k = 0;
        while (k < (size_t)len && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r' || line[k] == '\n')) k++;
        if (k == (size_t)len) continue; /* blank */
        cJSON *root = cJSON_ParseWithLength(line, (size_t)len);
        if (!cJSON_IsObject(root)) {
            cJSON_Delete(root);
            st = dc_fail(DC_ERR_SERIALIZATION, "line %zu is not a JSON object", lineno);
            break;
        }
        if (d.n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            float *na = realloc(d.a, nc * IN * sizeof(float));
            if (na) d.a = na;
            float *nb = na ? realloc(d.b, nc * IN * sizeof(float)) : NULL;
            if (nb) d.b = nb;
            uint32_t *nma = nb ? realloc(d.mask_a, nc * sizeof(uint32_t)) : NULL;
            if (nma) d.mask_a = nma;
            uint32_t *nmb = nma ? realloc(d.mask_b, nc * sizeof(uint32_t)) : NULL;
            if (nmb) d.mask_b = nmb;
            if (!nmb) {
                cJSON_Delete(root);
                st = dc_fail(DC_ERR_OUT_OF_MEMORY, "dataset at line %zu", lineno);
                break;
            }
            cap = nc;
        }
        st = read_side(root, "a", "mask_a", lineno, d.a + d.n * IN, &d.mask_a[d.n]);
        if (st == DC_OK) st = read_side(root, "b", "mask_b", lineno, d.b + d.n * IN, &d.mask_b[d.n]);
        cJSON_Delete(root);
        if (st == DC_OK) d.n++;
    }
    free(line);
    if (st == DC_OK && ferror(f)) st = dc_fail(DC_ERR_IO, "read %s: %s", path, strerror(errno));
    fclose(f);
    if (st == DC_OK && d.n == 0) st = dc_fail(DC_ERR_EMPTY_INPUT, "%s has no pairs", path);
    if (st != DC_OK) {
        dc_fusion_dataset_free(&d);
        return dc_fail_context(st, "%s", path);
    }
    *out = d;
    return DC_OK;
}

static void write_vec(FILE *f, const float *v) {
    fputc('[', f);
    for (int i = 0; i < IN; i++) {
        if (v[i] == 0.0f) fputs(i ? ",0" : "0", f);
        else fprintf(f, i ? ",%.9g" : "%.9g", (double)v[i]);
    }
    fputc(']', f);
}

dc_status dc_fusion_dataset_write_jsonl(const dc_fusion_dataset *d, const char *path) {
    if (!d || !path) return dc_fail(DC_ERR_INVALID_ARGUMENT, "dataset write: NULL argument");
    FILE *f = fopen(path, "w");
    if (!f) return dc_fail(DC_ERR_IO, "create %s: %s", path, strerror(errno));
    for (size_t i = 0; i < d->n; i++) {
        fputs("{\"a\":", f);
        write_vec(f, d->a + i * IN);
        fputs(",\"b\":", f);
        write_vec(f, d->b + i * IN);
        fprintf(f, ",\"mask_a\":%u,\"mask_b\":%u}\n", d->mask_a[i], d->mask_b[i]);
    }
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0) bad = true;
    return bad ? dc_fail(DC_ERR_IO, "write %s: %s", path, strerror(errno)) : DC_OK;
}

/* ---- the synthetic task ---- */

void dc_fusion_synth_options_default(dc_fusion_synth_options *o) {
    o->n = 512;
    o->structure_seed = 1;
    o->item_seed = 2;
    o->informative = (1u << DC_MODEL_SEMANTIC) | (1u << DC_MODEL_CODE) | (1u << DC_MODEL_ENTITY);
    o->rank = 16;
    o->noise = 1.0f;
    o->clusters = 8;
    o->cluster_strength = 1.0f;
}

static void unit_random(float *v, uint32_t n, dc_rng *r) {
    for (uint32_t i = 0; i < n; i++) v[i] = (float)dc_rng_fast_normal(r);
    dc_vec_normalize(v, n);
}

dc_status dc_fusion_synth(const dc_fusion_synth_options *o, dc_fusion_dataset *out) {
    if (!o || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "synth: NULL argument");
    if (o->n < 2 || o->rank < 1 || o->rank > 128 || !(o->noise >= 0.0f) || o->clusters < 1 ||
        o->clusters > 4096 || !(o->cluster_strength >= 0.0f) || !(o->informative & DC_ALL_MODELS_MASK))
        return dc_fail(DC_ERR_CONFIG, "synth: options out of range (n >= 2, rank 1..128, noise >= 0, "
                                      "clusters 1..4096, an informative block)");
    dc_status st = dc_fusion_dataset_alloc(o->n, out);
    if (st != DC_OK) return st;
    /* structure: bases Q_m (d_m × rank) and cluster centres, from structure_seed */
    size_t qsize = 0;
    for (int m = 0; m < DC_NUM_MODELS; m++)
        qsize += (size_t)dc_model_info_get((dc_model_id)m)->dim;
    float *Q = malloc(qsize * o->rank * sizeof(float));
    float *C = malloc((size_t)o->clusters * IN * sizeof(float));
    float *tmp = malloc(IN * sizeof(float)), *u = malloc(o->rank * sizeof(float));
    if (!Q || !C || !tmp || !u) {
        free(Q); free(C); free(tmp); free(u);
        dc_fusion_dataset_free(out);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "synth structure");
    }
    dc_rng rs = dc_rng_make(o->structure_seed, 0x5354525543ull);
    for (size_t i = 0; i < qsize * o->rank; i++) Q[i] = (float)dc_rng_fast_normal(&rs);
    for (uint32_t c = 0; c < o->clusters; c++)
        for (int m = 0; m < DC_NUM_MODELS; m++) {
            const dc_model_info *info = dc_model_info_get((dc_model_id)m);
            unit_random(C + (size_t)c * IN + info->offset, info->dim, &rs);
        }
    dc_rng ri = dc_rng_make(o->item_seed, 0x4954454D53ull);
    for (size_t i = 0; i < o->n; i++) {
        for (uint32_t j = 0; j < o->rank; j++) u[j] = (float)dc_rng_fast_normal(&ri);
        for (int side = 0; side < 2; side++) {
            /* each side its own cluster: the shared cluster component links unrelated items */
            uint32_t cluster = dc_rng_below(&ri, o->clusters);
            float *x = (side ? out->b : out->a) + i * IN;
            for (int m = 0; m < DC_NUM_MODELS; m++) {
                const dc_model_info *info = dc_model_info_get((dc_model_id)m);
                float *blk = x + info->offset;
                unit_random(tmp, info->dim, &ri); /* this side's own noise */
                if (o->informative & (1u << m)) {
                    const float *q = Q + (size_t)info->offset * o->rank;
                    for (uint32_t d = 0; d < info->dim; d++) {
                        double s = 0.0;
                        for (uint32_t j = 0; j < o->rank; j++) s += (double)q[(size_t)d * o->rank + j] * u[j];
                        blk[d] = (float)s;
                    }
                    dc_vec_normalize(blk, info->dim);
                    for (uint32_t d = 0; d < info->dim; d++) blk[d] += o->noise * tmp[d];
                } else {
                    const float *c = C + (size_t)cluster * IN + info->offset;
                    for (uint32_t d = 0; d < info->dim; d++)
                        blk[d] = o->cluster_strength * c[d] + tmp[d];
                }
                if (!dc_vec_normalize(blk, info->dim)) memset(blk, 0, info->dim * sizeof(float));
            }
        }
        out->mask_a[i] = out->mask_b[i] = DC_ALL_MODELS_MASK;
    }
    free(Q);
    free(C);
    free(tmp);
    free(u);
    return DC_OK;
}

/* ---- evaluation ---- */

static dc_status fuse_side(dc_fusemoe *f, const float *x, const uint32_t *mask, size_t n,
                           float *dst) {
    const size_t chunk = 64;
    dc_concat_embedding *cs = calloc(chunk, sizeof *cs);
    const dc_concat_embedding **in = calloc(chunk, sizeof *in);
    dc_fused_embedding *fe = calloc(chunk, sizeof *fe);
    dc_status st = (cs && in && fe) ? DC_OK : dc_fail(DC_ERR_OUT_OF_MEMORY, "recall buffers");
    for (size_t s0 = 0; st == DC_OK && s0 < n; s0 += chunk) {
        size_t m = n - s0 < chunk ? n - s0 : chunk;
        for (size_t i = 0; i < m; i++) {
            memcpy(cs[i].vector, x + (s0 + i) * IN, IN * sizeof(float));
            cs[i].present_mask = mask[s0 + i];
            in[i] = &cs[i];
        }
        st = dc_fusemoe_forward(f, in, m, fe);
        for (size_t i = 0; st == DC_OK && i < m; i++)
            memcpy(dst + (s0 + i) * DC_FUSION_OUT, fe[i].vector, DC_FUSION_OUT * sizeof(float));
    }
    free(cs);
    free(in);
    free(fe);
    return st;
}

dc_status dc_fusion_recall_at_1(dc_fusion_weights *w, const dc_fusion_dataset *d, double *recall) {
    if (!w || !d || !recall) return dc_fail(DC_ERR_INVALID_ARGUMENT, "recall: NULL argument");
    if (d->n == 0) return dc_fail(DC_ERR_EMPTY_INPUT, "recall: no pairs");
    dc_fusemoe *f = NULL;
    dc_status st = dc_fusemoe_create_from(w, NULL, &f);
    if (st != DC_OK) return st;
    size_t n = d->n;
    float *fa = malloc(n * DC_FUSION_OUT * sizeof(float));
    float *fb = malloc(n * DC_FUSION_OUT * sizeof(float));
    float *sim = malloc(n * n * sizeof(float));
    if (!fa || !fb || !sim) st = dc_fail(DC_ERR_OUT_OF_MEMORY, "recall over %zu pairs", n);
    if (st == DC_OK) st = fuse_side(f, d->a, d->mask_a, n, fa);
    if (st == DC_OK) st = fuse_side(f, d->b, d->mask_b, n, fb);
    if (st == DC_OK &&
        dnnl_sgemm('N', 'T', (dnnl_dim_t)n, (dnnl_dim_t)n, DC_FUSION_OUT, 1.0f, fa, DC_FUSION_OUT,
                   fb, DC_FUSION_OUT, 0.0f, sim, (dnnl_dim_t)n) != dnnl_success)
        st = dc_fail(DC_ERR_INTERNAL, "recall: similarity product failed");
    if (st == DC_OK) {
        size_t hits = 0;
        for (size_t i = 0; i < n; i++) {
            size_t best = 0;
            for (size_t j = 1; j < n; j++)
                if (sim[i * n + j] > sim[i * n + best]) best = j;
            hits += best == i;
        }
        *recall = (double)hits / (double)n;
    }
    free(fa);
    free(fb);
    free(sim);
    dc_fusemoe_destroy(f);
    return st;
}

/* Pooling modes and the sentence-transformers folder files. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "models/pooling.h"

static dc_status slurp(const char *path, char **data, size_t *len, bool *exists) {
    *exists = false;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return DC_OK;
        return dc_fail(DC_ERR_IO, "open %s: %s", path, strerror(errno));
    }
    *exists = true;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) return dc_fail(DC_ERR_OUT_OF_MEMORY, "reading %s", path);
    buf[n] = 0;
    *data = buf;
    *len = n;
    return DC_OK;
}

static dc_status json_bool(const cJSON *o, const char *origin, const char *key, bool dflt,
                           bool *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        *out = dflt;
        return DC_OK;
    }
    if (!cJSON_IsBool(v))
        return dc_fail(DC_ERR_MODEL_LOAD, "%s: field \"%s\" must be true or false", origin, key);
    *out = cJSON_IsTrue(v);
    return DC_OK;
}

dc_status dc_pooling_config_parse(const char *json, size_t len, const char *origin,
                                  dc_pooling_config *out) {
    memset(out, 0, sizeof *out);
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return dc_fail(DC_ERR_MODEL_LOAD, "%s: not a JSON object", origin);
    }
    dc_status st = DC_OK;
    const cJSON *dim = cJSON_GetObjectItemCaseSensitive(root, "word_embedding_dimension");
    if (dim && !cJSON_IsNull(dim)) {
        if (!cJSON_IsNumber(dim) || dim->valuedouble < 1 || dim->valuedouble > 1e6 ||
            dim->valuedouble != floor(dim->valuedouble)) {
            st = dc_fail(DC_ERR_MODEL_LOAD, "%s: field \"word_embedding_dimension\" must be a positive integer", origin);
            goto done;
        }
        out->word_embedding_dimension = (uint32_t)dim->valuedouble;
    }
    if ((st = json_bool(root, origin, "pooling_mode_cls_token", false, &out->cls)) ||
        (st = json_bool(root, origin, "pooling_mode_mean_tokens", false, &out->mean)) ||
        (st = json_bool(root, origin, "pooling_mode_max_tokens", false, &out->max)) ||
        (st = json_bool(root, origin, "pooling_mode_mean_sqrt_len_tokens", false,
                        &out->mean_sqrt_len)) ||
        (st = json_bool(root, origin, "pooling_mode_weightedmean_tokens", false,
                        &out->weightedmean)) ||
        (st = json_bool(root, origin, "pooling_mode_lasttoken", false, &out->lasttoken)) ||
        (st = json_bool(root, origin, "include_prompt", true, &out->include_prompt)))
        goto done;
    /* newer files: "pooling_mode": "mean" */
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(root, "pooling_mode");
    if (cJSON_IsString(mode)) {
        const char *s = mode->valuestring;
        if (!strcmp(s, "mean")) out->mean = true;
        else if (!strcmp(s, "cls")) out->cls = true;
        else if (!strcmp(s, "max")) out->max = true;
        else if (!strcmp(s, "mean_sqrt_len_tokens")) out->mean_sqrt_len = true;
        else if (!strcmp(s, "weightedmean")) out->weightedmean = true;
        else if (!strcmp(s, "lasttoken")) out->lasttoken = true;
        else {
            st = dc_fail(DC_ERR_MODEL_LOAD, "%s: field \"pooling_mode\" has unknown value \"%.40s\"", origin, s);
            goto done;
        }
    }
    if (!(out->cls || out->mean || out->max || out->mean_sqrt_len || out->weightedmean ||
          out->lasttoken))
        st = dc_fail(DC_ERR_MODEL_LOAD, "%s: no pooling mode is enabled", origin);
done:
    cJSON_Delete(root);
    return st;
}

/* "sentence_transformers.models.Pooling" and "sentence_transformers.base.modules.pooling.Pooling"
 * both end in the class name. */
static const char *last_component(const char *type) {
    const char *dot = strrchr(type, '.');
    return dot ? dot + 1 : type;
}

dc_status dc_st_config_read(const char *dir, dc_st_config *out) {
    memset(out, 0, sizeof *out);
    out->pooling.mean = true;
    out->pooling.include_prompt = true;
    char path[4096], *data = NULL;
    size_t len;
    bool exists;
    dc_status st;
    cJSON *root = NULL;

    snprintf(path, sizeof path, "%s/sentence_bert_config.json", dir);
    if ((st = slurp(path, &data, &len, &exists))) return st;
    if (exists) {
        root = cJSON_ParseWithLength(data, len);
        free(data);
        data = NULL;
        if (!cJSON_IsObject(root)) {
            cJSON_Delete(root);
            return dc_fail(DC_ERR_MODEL_LOAD, "%s: not a JSON object", path);
        }
        const cJSON *msl = cJSON_GetObjectItemCaseSensitive(root, "max_seq_length");
        if (msl && !cJSON_IsNull(msl)) {
            if (!cJSON_IsNumber(msl) || msl->valuedouble < 1 || msl->valuedouble > 1e7 ||
                msl->valuedouble != floor(msl->valuedouble)) {
                cJSON_Delete(root);
                return dc_fail(DC_ERR_MODEL_LOAD, "%s: field \"max_seq_length\" must be a positive integer", path);
            }
            out->max_seq_length = (uint32_t)msl->valuedouble;
        }
        st = json_bool(root, path, "do_lower_case", false, &out->do_lower_case);
        cJSON_Delete(root);
        root = NULL;
        if (st) return st;
    }

    snprintf(path, sizeof path, "%s/modules.json", dir);
    if ((st = slurp(path, &data, &len, &exists))) return st;
    if (!exists) return DC_OK; /* plain HF folder: Transformer + mean pooling */
    out->has_modules = true;
    root = cJSON_ParseWithLength(data, len);
    free(data);
    if (!cJSON_IsArray(root)) {
        cJSON_Delete(root);
        return dc_fail(DC_ERR_MODEL_LOAD, "%s: not a JSON array", path);
    }
    char pooling_dir[1024] = "";
    bool has_transformer = false, has_pooling = false;
    int i = 0;
    const cJSON *mod;
    cJSON_ArrayForEach(mod, root) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(mod, "type");
        const cJSON *mpath = cJSON_GetObjectItemCaseSensitive(mod, "path");
        if (!cJSON_IsString(type) || !cJSON_IsString(mpath)) {
            cJSON_Delete(root);
            return dc_fail(DC_ERR_MODEL_LOAD, "%s: module %d needs string fields \"type\" and \"path\"", path, i);
        }
        const char *cls = last_component(type->valuestring);
        if (!strcmp(cls, "Transformer") || !strcmp(cls, "MLMTransformer")) {
            has_transformer = true;
        } else if (!strcmp(cls, "Pooling")) {
            has_pooling = true;
            snprintf(pooling_dir, sizeof pooling_dir, "%s", mpath->valuestring);
        } else if (!strcmp(cls, "Normalize")) {
            out->normalize = true;
        } else {
            st = dc_fail(DC_ERR_MODEL_LOAD, "%s: module %d has type \"%.80s\", which this engine does not run", path, i, type->valuestring);
            cJSON_Delete(root);
            return st;
        }
        i++;
    }
    cJSON_Delete(root);
    if (!has_transformer)
        return dc_fail(DC_ERR_MODEL_LOAD, "%s: no Transformer module", path);
    if (!has_pooling) return DC_OK;
    snprintf(path, sizeof path, "%s/%s/config.json", dir, pooling_dir);
    if ((st = slurp(path, &data, &len, &exists))) return st;
    if (!exists) return dc_fail(DC_ERR_MODEL_LOAD, "%s is missing", path);
    st = dc_pooling_config_parse(data, len, path, &out->pooling);
    free(data);
    return st;
}

uint32_t dc_pooling_dim(const dc_pooling_config *p, uint32_t hidden) {
    uint32_t k = (uint32_t)p->cls + p->max + p->mean + p->mean_sqrt_len + p->weightedmean +
                 p->lasttoken;
    return k * hidden;
}

void dc_pool(const dc_pooling_config *p, const float *rows, uint32_t n, uint32_t dim,
             const uint8_t *mask, float *out) {
    float *o = out;
    if (p->cls) {
        for (uint32_t d = 0; d < dim; d++) o[d] = n ? rows[d] : 0.0f;
        o += dim;
    }
    if (p->max) {
        /* masked rows count as −1e9, as sentence-transformers sets them */
        for (uint32_t d = 0; d < dim; d++) {
            float mx = -1e9f;
            for (uint32_t r = 0; r < n; r++) {
                float v = (!mask || mask[r]) ? rows[(size_t)r * dim + d] : -1e9f;
                if (v > mx) mx = v;
            }
            o[d] = mx;
        }
        o += dim;
    }
    if (p->mean || p->mean_sqrt_len) {
        double cnt = 0;
        for (uint32_t r = 0; r < n; r++) cnt += (!mask || mask[r]) ? 1.0 : 0.0;
        double div_mean = cnt > 1e-9 ? cnt : 1e-9;
        double div_sqrt = sqrt(div_mean);
        for (uint32_t pass = 0; pass < 2; pass++) {
            if ((pass == 0 && !p->mean) || (pass == 1 && !p->mean_sqrt_len)) continue;
            double div = pass == 0 ? div_mean : div_sqrt;
            for (uint32_t d = 0; d < dim; d++) {
                double s = 0;
                for (uint32_t r = 0; r < n; r++)
                    if (!mask || mask[r]) s += rows[(size_t)r * dim + d];
                o[d] = (float)(s / div);
            }
            o += dim;
        }
    }
    if (p->weightedmean) {
        double wsum = 0;
        for (uint32_t r = 0; r < n; r++) wsum += (!mask || mask[r]) ? (double)(r + 1) : 0.0;
        if (wsum < 1e-9) wsum = 1e-9;
        for (uint32_t d = 0; d < dim; d++) {
            double s = 0;
            for (uint32_t r = 0; r < n; r++)
                if (!mask || mask[r]) s += (double)(r + 1) * rows[(size_t)r * dim + d];
            o[d] = (float)(s / wsum);
        }
        o += dim;
    }
    if (p->lasttoken) {
        int64_t last = -1;
        for (uint32_t r = 0; r < n; r++)
            if (!mask || mask[r]) last = r;
        for (uint32_t d = 0; d < dim; d++) o[d] = last >= 0 ? rows[(size_t)last * dim + d] : 0.0f;
    }
}

void dc_l2_normalize_eps(float *v, size_t n, double eps) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)v[i] * v[i];
    double norm = sqrt(s);
    if (norm < eps) norm = eps;
    for (size_t i = 0; i < n; i++) v[i] = (float)(v[i] / norm);
}

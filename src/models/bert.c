/* BERT encoder: config, weight loading (prefixes, legacy names, shape checks) and the forward
 * pass over packed batches. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "models/bert.h"
#include "models/encoder_graphs.h"
#include "models/linear_load.h"
#include "models/model_backend.h"

/* ---- config.json ---- */

static dc_status read_file(const char *path, char **data, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        return dc_fail(e == ENOENT ? DC_ERR_MODEL_NOT_FOUND : DC_ERR_IO, "open %s: %s", path,
                       strerror(e));
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return dc_fail(DC_ERR_OUT_OF_MEMORY, "reading %s", path);
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return dc_fail(DC_ERR_IO, "read %s", path);
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    return DC_OK;
}

static dc_status cfg_u32(const cJSON *root, const char *origin, const char *key, bool required,
                         uint32_t dflt, uint32_t lo, uint32_t hi, uint32_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) {
        if (required) return dc_fail(DC_ERR_MODEL_LOAD, "%s: field \"%s\" is missing", origin, key);
        *out = dflt;
        return DC_OK;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi)
        return dc_fail(DC_ERR_MODEL_LOAD, "%s: field \"%s\" must be an integer in [%u, %u]", origin,
                       key, lo, hi);
    *out = (uint32_t)v->valuedouble;
    return DC_OK;
}

dc_status dc_bert_config_parse(const char *json, size_t len, const char *origin,
                               dc_bert_config *out) {
    memset(out, 0, sizeof *out);
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return dc_fail(DC_ERR_MODEL_LOAD, "%s: not a JSON object", origin);
    }
    dc_status st = DC_OK;
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (!cJSON_IsString(mt)) {
        st = dc_fail(DC_ERR_MODEL_LOAD, "%s: field \"model_type\" is missing", origin);
        goto done;
    }
    if (!strcmp(mt->valuestring, "bert")) out->kind = DC_BERT_KIND_BERT;
    else if (!strcmp(mt->valuestring, "roberta")) out->kind = DC_BERT_KIND_ROBERTA;
    else if (!strcmp(mt->valuestring, "longformer")) out->kind = DC_BERT_KIND_LONGFORMER;
    else {
        st = dc_fail(DC_ERR_MODEL_LOAD,
                     "%s: field \"model_type\" is \"%.40s\"; this encoder reads \"bert\", "
                     "\"roberta\" or \"longformer\"",
                     origin, mt->valuestring);
        goto done;
    }
    snprintf(out->model_type, sizeof out->model_type, "%s", mt->valuestring);
    if ((st = cfg_u32(root, origin, "vocab_size", true, 0, 1, 1u << 24, &out->vocab_size)) ||
        (st = cfg_u32(root, origin, "hidden_size", true, 0, 1, 65536, &out->hidden)) ||
        (st = cfg_u32(root, origin, "num_hidden_layers", true, 0, 0, 1024, &out->layers)) ||
        (st = cfg_u32(root, origin, "num_attention_heads", true, 0, 1, 4096, &out->heads)) ||
        (st = cfg_u32(root, origin, "intermediate_size", true, 0, 1, 1u << 20,
                      &out->intermediate)) ||
        (st = cfg_u32(root, origin, "max_position_embeddings", true, 0, 1, 1u << 20,
                      &out->max_position)) ||
        (st = cfg_u32(root, origin, "type_vocab_size", false, 2, 0, 1u << 16, &out->type_vocab)) ||
        (st = cfg_u32(root, origin, "pad_token_id", false, out->kind == DC_BERT_KIND_BERT ? 0 : 1,
                      0, 1u << 24, &out->pad_token_id)))
        goto done;
    if (out->kind != DC_BERT_KIND_BERT && out->max_position <= out->pad_token_id + 1) {
        st = dc_fail(DC_ERR_MODEL_LOAD,
                     "%s: field \"max_position_embeddings\" (%u) leaves no position after "
                     "pad_token_id + 1 (%u)",
                     origin, out->max_position, out->pad_token_id + 1);
        goto done;
    }
    if (out->kind == DC_BERT_KIND_LONGFORMER) {
        const cJSON *aw = cJSON_GetObjectItemCaseSensitive(root, "attention_window");
        if (out->layers > DC_BERT_MAX_WINDOW_LAYERS) {
            st = dc_fail(DC_ERR_MODEL_LOAD, "%s: field \"num_hidden_layers\" (%u) exceeds %u",
                         origin, out->layers, DC_BERT_MAX_WINDOW_LAYERS);
            goto done;
        }
        if (cJSON_IsArray(aw) && cJSON_GetArraySize(aw) != (int)out->layers) {
            st = dc_fail(DC_ERR_MODEL_LOAD,
                         "%s: field \"attention_window\" has %d entries for %u layers", origin,
                         cJSON_GetArraySize(aw), out->layers);
            goto done;
        }
        for (uint32_t i = 0; i < out->layers; i++) {
            const cJSON *e = cJSON_IsArray(aw) ? cJSON_GetArrayItem(aw, (int)i) : aw;
            if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) ||
                e->valuedouble < 2 || e->valuedouble > 1 << 20 || (int)e->valuedouble % 2) {
                st = dc_fail(DC_ERR_MODEL_LOAD,
                             "%s: field \"attention_window\" (layer %u) must be an even integer "
                             ">= 2",
                             origin, i);
                goto done;
            }
            out->attention_window[i] = (uint32_t)e->valuedouble;
        }
    }
    if (out->hidden % out->heads) {
        st = dc_fail(DC_ERR_MODEL_LOAD,
                     "%s: field \"num_attention_heads\" (%u) does not divide hidden_size (%u)",
                     origin, out->heads, out->hidden);
        goto done;
    }
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(root, "layer_norm_eps");
    if (!eps || cJSON_IsNull(eps)) {
        out->eps = 1e-12f; /* BertConfig's default */
    } else if (!cJSON_IsNumber(eps) || !(eps->valuedouble > 0) || eps->valuedouble > 1) {
        st = dc_fail(DC_ERR_MODEL_LOAD, "%s: field \"layer_norm_eps\" must be in (0, 1]", origin);
        goto done;
    } else {
        out->eps = (float)eps->valuedouble;
    }
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (!act || cJSON_IsNull(act)) {
        out->act = DC_ACT_GELU_ERF;
    } else if (!cJSON_IsString(act) || !dc_activation_parse(act->valuestring, &out->act) ||
               out->act == DC_ACT_NONE) {
        st = dc_fail(DC_ERR_MODEL_LOAD, "%s: field \"hidden_act\" is not a supported activation",
                     origin);
        goto done;
    }
    const cJSON *pet = cJSON_GetObjectItemCaseSensitive(root, "position_embedding_type");
    if (pet && !cJSON_IsNull(pet) &&
        (!cJSON_IsString(pet) || strcmp(pet->valuestring, "absolute") != 0)) {
        st = dc_fail(DC_ERR_MODEL_LOAD,
                     "%s: field \"position_embedding_type\" must be \"absolute\"", origin);
        goto done;
    }
done:
    cJSON_Delete(root);
    return st;
}

uint32_t dc_bert_max_tokens(const dc_bert_config *cfg) {
    if (cfg->kind == DC_BERT_KIND_BERT) return cfg->max_position;
    return cfg->max_position > cfg->pad_token_id + 1 ? cfg->max_position - cfg->pad_token_id - 1 : 0;
}

dc_status dc_bert_config_read(const char *path, dc_bert_config *out) {
    char *data = NULL;
    size_t len = 0;
    dc_status st = read_file(path, &data, &len);
    if (st != DC_OK) return st;
    st = dc_bert_config_parse(data, len, path, out);
    free(data);
    return st;
}

static bool file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

dc_status dc_bert_weights_path(const char *dir, char *buf, size_t cap) {
    static const char *names[] = {"model.safetensors", "model.safetensors.index.json",
                                  "pytorch_model.bin"};
    for (size_t i = 0; i < 3; i++) {
        int n = snprintf(buf, cap, "%s/%s", dir, names[i]);
        if (n < 0 || (size_t)n >= cap) return dc_fail(DC_ERR_INVALID_ARGUMENT, "path too long: %s", dir);
        if (file_exists(buf)) return DC_OK;
    }
    return dc_fail(DC_ERR_MODEL_NOT_FOUND,
                   "%s: no model.safetensors, model.safetensors.index.json or pytorch_model.bin",
                   dir);
}

/* ---- tensors ---- */

static const dc_tensor_view *find_named(const dc_weights *w, const char *prefix, const char *name,
                                        char *used, size_t cap) {
    if ((size_t)snprintf(used, cap, "%s%s", prefix ? prefix : "", name) >= cap) return NULL;
    const dc_tensor_view *t = dc_weights_find(w, used);
    if (t) return t;
    /* transformers renames LayerNorm gamma/beta to weight/bias when loading old checkpoints */
    size_t n = strlen(used);
    if (strstr(used, "LayerNorm") || strstr(used, "layer_norm")) {
        char alt[512];
        if (n > 7 && strcmp(used + n - 7, ".weight") == 0 && n < sizeof alt) {
            snprintf(alt, sizeof alt, "%.*s.gamma", (int)(n - 7), used);
            if ((t = dc_weights_find(w, alt))) return t;
        } else if (n > 5 && strcmp(used + n - 5, ".bias") == 0 && n < sizeof alt) {
            snprintf(alt, sizeof alt, "%.*s.beta", (int)(n - 5), used);
            if ((t = dc_weights_find(w, alt))) return t;
        }
    }
    return NULL;
}

static void shape_str(uint32_t ndim, const uint64_t *shape, char *buf, size_t cap) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, cap - o, "[");
    for (uint32_t i = 0; i < ndim && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%llu", i ? ", " : "",
                              (unsigned long long)shape[i]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

static dc_status tensor_get(const dc_weights *w, const char *prefix, const char *name,
                            uint32_t ndim, const uint64_t *shape, bool optional, float **out) {
    *out = NULL;
    char used[512];
    const dc_tensor_view *t = find_named(w, prefix, name, used, sizeof used);
    if (!t) {
        if (optional) return DC_OK;
        return dc_fail(DC_ERR_NOT_FOUND, "%s: tensor \"%s\" is missing", dc_weights_path(w), used);
    }
    bool same = t->ndim == ndim;
    for (uint32_t i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char got[128], want[128];
        shape_str(t->ndim, t->shape, got, sizeof got);
        shape_str(ndim, shape, want, sizeof want);
        return dc_fail(DC_ERR_INVALID_DIMENSION, "%s: tensor \"%s\" has shape %s, config.json implies %s",
                       dc_weights_path(w), t->name, got, want);
    }
    dc_status st = dc_tensor_view_to_f32(t, out);
    if (st != DC_OK) return dc_fail_context(st, "%s", dc_weights_path(w));
    for (uint64_t i = 0; i < t->numel; i++)
        if (!isfinite((*out)[i])) {
            free(*out);
            *out = NULL;
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: tensor \"%s\" has a non-finite value at %llu",
                           dc_weights_path(w), t->name, (unsigned long long)i);
        }
    return DC_OK;
}

dc_status dc_bert_tensor_f32(const dc_weights *w, const char *prefix, const char *name,
                             uint32_t ndim, const uint64_t *shape, float **out) {
    return tensor_get(w, prefix, name, ndim, shape, false, out);
}

dc_status dc_bert_tensor_f32_opt(const dc_weights *w, const char *prefix, const char *name,
                                 uint32_t ndim, const uint64_t *shape, float **out) {
    return tensor_get(w, prefix, name, ndim, shape, true, out);
}

/* ---- the model ---- */

typedef struct dc_bert_layer {
    dc_linear *qkv, *attn_out, *inter, *out;
    dc_linear *q_global, *kv_global; /* Longformer: query_global, key_global + value_global */
    float *ln1_g, *ln1_b, *ln2_g, *ln2_b;
} dc_bert_layer;

struct dc_bert {
    dc_bert_config cfg;
    dc_backend *be;
    char prefix[16];
    /* embedding tables and LayerNorm parameters: backend memory (moved there at load; on the
     * CPU backend that is where they were read) */
    float *word, *pos, *type;
    float *emb_ln_g, *emb_ln_b;
    dc_bert_layer *layer;
    size_t bytes;
    /* the activation block of the last forward, kept for the next (see ws_take) */
    pthread_mutex_t ws_lock;
    void *ws;
    size_t ws_bytes;
    bool params_moved; /* the parameter arrays are backend memory (params_to_backend ran) */
    dc_graph_cache graphs; /* recorded forwards by batch layout (backends with graphs) */
};

const char *dc_bert_prefix(const dc_bert *m) { return m->prefix; }
const dc_bert_config *dc_bert_config_of(const dc_bert *m) { return &m->cfg; }
dc_backend *dc_bert_backend(const dc_bert *m) { return m->be; }
const float *dc_bert_word_embeddings(const dc_bert *m) {
    return dc_be_is_host(m->be) ? m->word : NULL;
}
size_t dc_bert_memory_bytes(const dc_bert *m) { return m ? m->bytes : 0; }
bool dc_bert_graphs_on(const dc_bert *m) { return m && dc_graph_cache_on(&m->graphs); }

/* The i-th parameter array an op reads (tables, LayerNorm γ/β) and its length; false past
 * the last. */
static bool param_at(void *model, size_t i, float ***p, size_t *n) {
    dc_bert *m = model;
    const dc_bert_config *c = &m->cfg;
    const size_t H = c->hidden;
    float **emb[5] = {&m->word, &m->pos, &m->type, &m->emb_ln_g, &m->emb_ln_b};
    const size_t rows[5] = {c->vocab_size, c->max_position, c->type_vocab, 1, 1};
    if (i < 5) {
        *p = emb[i];
        *n = rows[i] * H;
        return true;
    }
    i -= 5;
    if (!m->layer || i >= 4 * (size_t)c->layers) return false;
    dc_bert_layer *L = &m->layer[i / 4];
    float **ln[4] = {&L->ln1_g, &L->ln1_b, &L->ln2_g, &L->ln2_b};
    *p = ln[i % 4];
    *n = H;
    return true;
}

void dc_bert_destroy(dc_bert *m) {
    if (!m) return;
    dc_graph_cache_clear(&m->graphs, m->be); /* the graphs read the weights: first */
    if (m->ws) m->be->ops->release(m->be, m->ws);
    pthread_mutex_destroy(&m->ws_lock);
    if (m->layer) {
        for (uint32_t i = 0; i < m->cfg.layers; i++) {
            dc_bert_layer *L = &m->layer[i];
            dc_linear *ls[6] = {L->qkv, L->attn_out, L->inter, L->out, L->q_global, L->kv_global};
            for (int j = 0; j < 6; j++)
                if (ls[j]) m->be->ops->linear_destroy(m->be, ls[j]);
        }
    }
    dc_be_params_free(m->be, m, param_at, m->params_moved);
    free(m->layer);
    free(m);
}

/* One encoder linear: base.weight / .bias, or the np tensors base.<part>.weight / .bias
 * stacked. Read by the backend from the file where it can (linear_load.h). */
static dc_status make_linear(dc_bert *m, const dc_weights *w, const char *base,
                             const char *const *parts, uint32_t np, uint32_t n, uint32_t k,
                             dc_linear **out) {
    dc_status st = dc_linear_load(m->be, w, m->prefix, base, parts, np, true, n, k,
                                  m->cfg.weights, !m->cfg.host_weights, out);
    if (st == DC_OK) m->bytes += m->be->ops->linear_bytes(*out);
    return st;
}

static dc_status load_ln(dc_bert *m, const dc_weights *w, const char *base, float **g, float **b) {
    char name[256];
    uint32_t H = m->cfg.hidden;
    snprintf(name, sizeof name, "%s.weight", base);
    dc_status st = dc_bert_tensor_f32(w, m->prefix, name, 1, (uint64_t[]){H}, g);
    if (st != DC_OK) return st;
    snprintf(name, sizeof name, "%s.bias", base);
    st = dc_bert_tensor_f32(w, m->prefix, name, 1, (uint64_t[]){H}, b);
    if (st == DC_OK) m->bytes += 2 * (size_t)H * sizeof(float);
    return st;
}

/* Q, K and V become one [3H, H] product: the three weights stacked, then the three biases
 * (or any `np` ≤ 3 of the attention.self projections, e.g. Longformer's key_global +
 * value_global). */
static dc_status make_stacked(dc_bert *m, const dc_weights *w, uint32_t li, const char *const *parts,
                              uint32_t np, dc_linear **out) {
    char base[128];
    snprintf(base, sizeof base, "encoder.layer.%u.attention.self", li);
    return make_linear(m, w, base, parts, np, m->cfg.hidden, m->cfg.hidden, out);
}

/* Those arrays into backend memory once, so that a forward uploads only its inputs; nothing
 * moves on the CPU backend. Afterwards every pointer left is backend memory, even on failure
 * (the host arrays not yet moved are freed). */
static dc_status params_to_backend(dc_bert *m) {
    m->params_moved = true;
    return dc_be_params_move(m->be, m, param_at);
}

dc_status dc_bert_create(const dc_weights *w, const dc_bert_config *cfg, dc_backend *be,
                         dc_bert **out) {
    *out = NULL;
    if (!w || !cfg || !be) return dc_fail(DC_ERR_INVALID_ARGUMENT, "bert create: NULL argument");
    dc_bert *m = calloc(1, sizeof *m);
    if (!m) return dc_fail(DC_ERR_OUT_OF_MEMORY, "bert");
    pthread_mutex_init(&m->ws_lock, NULL);
    dc_graph_cache_init(&m->graphs, be);
    m->cfg = *cfg;
    m->be = be;
    const uint32_t H = cfg->hidden, I = cfg->intermediate;
    dc_status st = DC_OK;
    /* The prefix: plain base-model checkpoints have none, task models save the
     * base_model_prefix ("bert.", "roberta.", "longformer."). */
    char used[512];
    static const char *const prefixes[] = {"", "bert.", "roberta.", "longformer."};
    size_t pi = 0;
    while (pi < 4 && !find_named(w, prefixes[pi], "embeddings.word_embeddings.weight", used, sizeof used))
        pi++;
    if (pi == 4) {
        st = dc_fail(DC_ERR_NOT_FOUND,
                     "%s: tensor \"embeddings.word_embeddings.weight\" is missing (also tried the "
                     "\"bert.\", \"roberta.\" and \"longformer.\" prefixes)",
                     dc_weights_path(w));
        goto fail;
    }
    snprintf(m->prefix, sizeof m->prefix, "%s", prefixes[pi]);
    if ((st = dc_bert_tensor_f32(w, m->prefix, "embeddings.word_embeddings.weight", 2,
                                 (uint64_t[]){cfg->vocab_size, H}, &m->word)) ||
        (st = dc_bert_tensor_f32(w, m->prefix, "embeddings.position_embeddings.weight", 2,
                                 (uint64_t[]){cfg->max_position, H}, &m->pos)))
        goto fail;
    if (cfg->type_vocab &&
        (st = dc_bert_tensor_f32(w, m->prefix, "embeddings.token_type_embeddings.weight", 2,
                                 (uint64_t[]){cfg->type_vocab, H}, &m->type)))
        goto fail;
    m->bytes += ((size_t)cfg->vocab_size + cfg->max_position + cfg->type_vocab) * H * sizeof(float);
    if ((st = load_ln(m, w, "embeddings.LayerNorm", &m->emb_ln_g, &m->emb_ln_b))) goto fail;
    /* A layer beyond num_hidden_layers means config and weights disagree. */
    char extra[64];
    snprintf(extra, sizeof extra, "encoder.layer.%u.attention.self.query.weight", cfg->layers);
    if (find_named(w, m->prefix, extra, used, sizeof used)) {
        st = dc_fail(DC_ERR_MODEL_LOAD,
                     "%s: tensor \"%s\" exists but config.json says num_hidden_layers = %u",
                     dc_weights_path(w), used, cfg->layers);
        goto fail;
    }
    m->layer = calloc(cfg->layers ? cfg->layers : 1, sizeof *m->layer);
    if (!m->layer) {
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "bert layers");
        goto fail;
    }
    for (uint32_t i = 0; i < cfg->layers; i++) {
        dc_bert_layer *L = &m->layer[i];
        char base[128];
        static const char *const qkv[3] = {"query", "key", "value"};
        static const char *const kvg[2] = {"key_global", "value_global"};
        static const char *const qg[1] = {"query_global"};
        if ((st = make_stacked(m, w, i, qkv, 3, &L->qkv))) goto fail;
        if (cfg->kind == DC_BERT_KIND_LONGFORMER &&
            ((st = make_stacked(m, w, i, qg, 1, &L->q_global)) ||
             (st = make_stacked(m, w, i, kvg, 2, &L->kv_global))))
            goto fail;
        snprintf(base, sizeof base, "encoder.layer.%u.attention.output.dense", i);
        if ((st = make_linear(m, w, base, NULL, 1, H, H, &L->attn_out))) goto fail;
        snprintf(base, sizeof base, "encoder.layer.%u.attention.output.LayerNorm", i);
        if ((st = load_ln(m, w, base, &L->ln1_g, &L->ln1_b))) goto fail;
        snprintf(base, sizeof base, "encoder.layer.%u.intermediate.dense", i);
        if ((st = make_linear(m, w, base, NULL, 1, I, H, &L->inter))) goto fail;
        snprintf(base, sizeof base, "encoder.layer.%u.output.dense", i);
        if ((st = make_linear(m, w, base, NULL, 1, H, I, &L->out))) goto fail;
        snprintf(base, sizeof base, "encoder.layer.%u.output.LayerNorm", i);
        if ((st = load_ln(m, w, base, &L->ln2_g, &L->ln2_b))) goto fail;
    }
    if ((st = params_to_backend(m))) goto fail;
    *out = m;
    return DC_OK;
fail:
    dc_bert_destroy(m);
    return st;
}

/* ---- forward ---- */

/* One Longformer self-attention (HF LongformerSelfAttention): every non-global row attends the
 * keys within attention_window/2 on each side plus the global keys, with the ordinary q/k/v;
 * each global row attends every unmasked key through query_global / key_global /
 * value_global. The band kernel keeps the work linear in the sequence length. */
static dc_status longformer_attention(dc_bert *m, const dc_bert_layer *L, uint32_t li,
                                      const float *x, const float *qkv, float *ctx, size_t T,
                                      const dc_seq_batch *sb, const uint32_t *grows,
                                      uint32_t n_glob, const uint8_t *gmask, float *xg, float *qg,
                                      float *kvg, float *ctxg) {
    const dc_bert_config *c = &m->cfg;
    const uint32_t H = c->hidden, hd = H / c->heads, w = c->attention_window[li] / 2;
    const float scale = 1.0f / sqrtf((float)hd);
    dc_backend *be = m->be;
    const dc_backend_ops *ops = be->ops;
    dc_attn_opts local = {w, w, n_glob ? gmask : NULL, NULL, 0};
    dc_status st = ops->attention_ex(be, qkv, 3 * (size_t)H, qkv + H, qkv + 2 * (size_t)H,
                                     3 * (size_t)H, ctx, H, c->heads, hd, scale, sb, &local);
    if (st != DC_OK || !n_glob) return st;
    ops->copy_rows(be, xg, NULL, x, grows, n_glob, H); /* gather the global rows */
    if ((st = ops->linear_forward(be, L->q_global, xg, n_glob, qg)) ||
        (st = ops->linear_forward(be, L->kv_global, x, T, kvg)))
        return st;
    dc_attn_opts full = {DC_ATTN_UNBOUNDED, DC_ATTN_UNBOUNDED, NULL, grows, n_glob};
    if ((st = ops->attention_ex(be, qg, H, kvg, kvg + H, 2 * (size_t)H, ctxg, H, c->heads, hd,
                                scale, sb, &full)))
        return st;
    ops->copy_rows(be, ctx, grows, ctxg, NULL, n_glob, H); /* and scatter their results */
    return DC_OK;
}

/* Activation memory of a forward. Allocating it fresh every time costs page faults (and the
 * kernel zeroing pages) of the order of the non-matrix work of a short input; so the block of
 * the last forward is kept, up to DC_BERT_KEEP_BYTES, and a forward that fits takes it.
 * Concurrent forwards each get their own block; only one is kept. */
#define DC_BERT_KEEP_BYTES ((size_t)32 << 20)

static dc_status ws_take(dc_bert *m, size_t *bytes, void **out) {
    pthread_mutex_lock(&m->ws_lock);
    if (m->ws && m->ws_bytes >= *bytes) {
        *out = m->ws;
        *bytes = m->ws_bytes;
        m->ws = NULL;
        pthread_mutex_unlock(&m->ws_lock);
        return DC_OK;
    }
    pthread_mutex_unlock(&m->ws_lock);
    return m->be->ops->alloc(m->be, *bytes, out);
}

static void ws_give(dc_bert *m, void *p, size_t bytes) {
    if (!p) return;
    if (bytes <= DC_BERT_KEEP_BYTES) {
        pthread_mutex_lock(&m->ws_lock);
        if (!m->ws || m->ws_bytes < bytes) {
            void *old = m->ws;
            m->ws = p;
            m->ws_bytes = bytes;
            p = old;
        }
        pthread_mutex_unlock(&m->ws_lock);
    }
    if (p) m->be->ops->release(m->be, p);
}

/* Longformer's global rows and their buffers (n = 0: none). */
typedef struct fwd_globals {
    const uint32_t *rows;
    uint32_t n;
    const uint8_t *mask;
    float *xg, *qg, *kvg, *ctxg;
} fwd_globals;

/* The forward's activations, Longformer's global rows' included: one block, each part 64-byte
 * aligned (the block is a recorded layout's own when the forward runs as a graph). */
typedef struct fwd_bufs {
    float *x, *qkv, *ctx, *tmp, *ffn;
} fwd_bufs;

static size_t aligned(size_t n) { return (n + 15) / 16 * 16; }

static size_t fwd_bytes(const dc_bert_config *c, size_t T, uint32_t n_glob) {
    const size_t H = c->hidden, nH = aligned(T * H), nG = aligned((size_t)n_glob * H);
    return (6 * nH + aligned(T * c->intermediate) + (n_glob ? 3 * nG + 2 * nH : 0)) * sizeof(float);
}

static fwd_bufs fwd_split(const dc_bert_config *c, void *ws, size_t T, fwd_globals *g) {
    const size_t H = c->hidden, nH = aligned(T * H), nG = aligned((size_t)g->n * H);
    fwd_bufs f;
    f.x = ws;
    f.qkv = f.x + nH;
    f.ctx = f.qkv + 3 * nH;
    f.tmp = f.ctx + nH;
    f.ffn = f.tmp + nH;
    if (g->n) {
        g->kvg = f.ffn + aligned(T * c->intermediate);
        g->xg = g->kvg + 2 * nH;
        g->qg = g->xg + nG;
        g->ctxg = g->qg + nG;
    }
    return f;
}

/* From the summed embeddings in f->x to the last hidden state in f->x: only stream-ordered
 * ops, so a recording can hold it. */
typedef struct layers_args {
    dc_bert *m;
    const fwd_bufs *f;
    size_t T;
    const dc_seq_batch *sb;
    const fwd_globals *g;
} layers_args;

static dc_status run_layers(void *ctx) {
    const layers_args *a = ctx;
    dc_bert *m = a->m;
    const fwd_bufs *f = a->f;
    const size_t T = a->T;
    const dc_seq_batch *sb = a->sb;
    const fwd_globals *g = a->g;
    const dc_bert_config *c = &m->cfg;
    const uint32_t H = c->hidden, I = c->intermediate, hd = H / c->heads;
    dc_backend *be = m->be;
    const dc_backend_ops *ops = be->ops;
    const float scale = 1.0f / sqrtf((float)hd);
    dc_status st = DC_OK;
    ops->layernorm(be, f->x, NULL, m->emb_ln_g, m->emb_ln_b, c->eps, T, H, f->x);
    for (uint32_t li = 0; li < c->layers; li++) {
        const dc_bert_layer *L = &m->layer[li];
        if ((st = ops->linear_forward(be, L->qkv, f->x, T, f->qkv))) return st;
        if (c->kind != DC_BERT_KIND_LONGFORMER) {
            if ((st = ops->attention(be, f->qkv, 3 * (size_t)H, f->qkv + H, f->qkv + 2 * (size_t)H,
                                     3 * (size_t)H, f->ctx, H, c->heads, hd, scale, sb)))
                return st;
        } else if ((st = longformer_attention(m, L, li, f->x, f->qkv, f->ctx, T, sb, g->rows, g->n,
                                              g->mask, g->xg, g->qg, g->kvg, g->ctxg))) {
            return st;
        }
        if ((st = ops->linear_forward(be, L->attn_out, f->ctx, T, f->tmp))) return st;
        ops->layernorm(be, f->tmp, f->x, L->ln1_g, L->ln1_b, c->eps, T, H, f->x);
        if ((st = ops->linear_forward(be, L->inter, f->x, T, f->ffn))) return st;
        ops->activation(be, c->act, f->ffn, T * I);
        if ((st = ops->linear_forward(be, L->out, f->ffn, T, f->tmp))) return st;
        ops->layernorm(be, f->tmp, f->x, L->ln2_g, L->ln2_b, c->eps, T, H, f->x);
    }
    return DC_OK;
}

/* The graph key: everything the recorded ops depend on besides the token ids (which the
 * embedding sum reads before the graph) and the key mask (which is written into the block):
 * rows, offsets, whether there is a mask, and Longformer's global rows. NULL on no memory. */
static uint8_t *layout_key(const dc_bert_batch *b, size_t T, const fwd_globals *g, size_t *len) {
    const size_t offs = ((size_t)b->n_seqs + 1) * sizeof *b->start;
    *len = sizeof(uint64_t) + offs + 2 + (g->n ? T : 0);
    uint8_t *k = malloc(*len), *p = k;
    if (!k) return NULL;
    const uint64_t t = T;
    memcpy(p, &t, sizeof t);
    memcpy(p += sizeof t, b->start, offs);
    *(p += offs) = b->key_mask != NULL;
    *++p = g->n != 0;
    p++;
    if (g->n) memcpy(p, g->mask, T);
    return k;
}

dc_status dc_bert_forward(dc_bert *m, const dc_bert_batch *b, float *hidden_out) {
    return dc_bert_forward_global(m, b, NULL, hidden_out);
}

/* The forward of a checked batch. Where graphs are on, the key mask is copied into the
 * activation block, so that a recorded layout reads it as data: the same offsets with another
 * mask replay the same graph. */
static dc_status forward(dc_bert *m, const dc_bert_batch *b, const uint8_t *global_mask,
                         float *hidden_out) {
    const dc_bert_config *c = &m->cfg;
    const uint32_t H = c->hidden;
    const size_t T = b->start[b->n_seqs];
    dc_backend *be = m->be;
    const dc_backend_ops *ops = be->ops;
    dc_backend_cpu_bind_threads(be);
    dc_status st = DC_OK;
    uint32_t *pos = malloc(T * sizeof *pos), *types = NULL, *grows = NULL;
    void *ws = NULL;
    size_t ws_bytes = 0;
    dc_graph_use gu = {0};
    fwd_globals g = {0};
    if (!pos) return dc_fail(DC_ERR_OUT_OF_MEMORY, "positions for %zu tokens", T);
    if (c->kind == DC_BERT_KIND_BERT) {
        /* BERT positions count from 0 in each sequence, whatever the padding. */
        for (uint32_t s = 0; s < b->n_seqs; s++)
            for (uint32_t r = b->start[s]; r < b->start[s + 1]; r++) pos[r] = r - b->start[s];
    } else {
        /* RoBERTa: pad + cumulative count of non-pad tokens; a pad token keeps position pad */
        for (uint32_t s = 0; s < b->n_seqs; s++) {
            uint32_t n = 0;
            for (uint32_t r = b->start[s]; r < b->start[s + 1]; r++)
                pos[r] = b->ids[r] == c->pad_token_id ? c->pad_token_id : c->pad_token_id + ++n;
        }
    }
    /* Longformer's global rows (ascending batch rows) */
    if (c->kind == DC_BERT_KIND_LONGFORMER && global_mask) {
        for (size_t r = 0; r < T; r++) g.n += global_mask[r] != 0;
        if (g.n) {
            grows = malloc(g.n * sizeof *grows);
            if (!grows) {
                st = dc_fail(DC_ERR_OUT_OF_MEMORY, "global rows");
                goto done;
            }
            g.n = 0;
            for (size_t r = 0; r < T; r++)
                if (global_mask[r]) grows[g.n++] = (uint32_t)r;
            g.rows = grows;
            g.mask = global_mask;
        }
    }
    if (m->type && !b->type_ids) {
        types = calloc(T, sizeof *types);
        if (!types) {
            st = dc_fail(DC_ERR_OUT_OF_MEMORY, "type ids for %zu tokens", T);
            goto done;
        }
    }
    const bool graphs = dc_graph_cache_on(&m->graphs);
    const bool mask_in_block = graphs && b->key_mask;
    const size_t mask_at = fwd_bytes(c, T, g.n);
    ws_bytes = mask_at + (mask_in_block ? (T + 63) / 64 * 64 : 0);
    if (graphs) { /* a recorded graph, where the backend has them */
        size_t klen = 0;
        uint8_t *key = layout_key(b, T, &g, &klen);
        if (key) ws = dc_graph_use_begin(&m->graphs, be, key, klen, ws_bytes, &gu);
        free(key);
    }
    if (!ws && (st = ws_take(m, &ws_bytes, &ws))) goto done;
    const fwd_bufs f = fwd_split(c, ws, T, &g);
    ops->embed_sum(be, T, H, m->word, b->ids, m->pos, pos, m->type,
                   b->type_ids ? b->type_ids : types, f.x);
    dc_seq_batch sb = {b->n_seqs, b->start, b->key_mask};
    if (mask_in_block) {
        sb.key_mask = (const uint8_t *)ws + mask_at;
        st = ops->upload(be, (void *)sb.key_mask, b->key_mask, T);
    }
    layers_args la = {m, &f, T, &sb, &g};
    if (!st) st = dc_graph_use_run(&gu, be, run_layers, &la);
    if (!st) st = ops->download(be, hidden_out, f.x, T * H * sizeof(float));
done:
    /* the layout's buffers are free for its next forward after the download */
    if (gu.entry) dc_graph_use_end(&m->graphs, be, &gu);
    else ws_give(m, ws, ws_bytes);
    free(pos);
    free(types);
    free(grows);
    return st;
}

/* The batch padded to its bucket (encoder_graphs.h): every sequence to bk->len rows of pad
 * tokens, masked as keys; the added sequences are pad tokens that attend only their first row
 * (a softmax over no key is not defined), global there when the batch has global rows. The
 * real rows come back packed, as an unpadded forward returns them. */
static dc_status forward_padded(dc_bert *m, const dc_bert_batch *b, const uint8_t *global_mask,
                                const dc_graph_bucket *bk, float *hidden_out) {
    const dc_bert_config *c = &m->cfg;
    const uint32_t n = bk->n_seqs, L = bk->len, H = c->hidden;
    const size_t rows = (size_t)n * L;
    uint32_t *start = malloc(((size_t)n + 1) * sizeof *start), *ids = malloc(rows * sizeof *ids);
    uint32_t *types = b->type_ids ? calloc(rows, sizeof *types) : NULL;
    uint8_t *mask = malloc(rows), *glob = global_mask ? calloc(rows, 1) : NULL;
    float *hidden = malloc(rows * H * sizeof *hidden);
    dc_status st = DC_OK;
    if (!start || !ids || (b->type_ids && !types) || !mask || (global_mask && !glob) || !hidden) {
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "padded batch of %zu rows", rows);
        goto done;
    }
    for (uint32_t s = 0; s <= n; s++) start[s] = s * L;
    for (uint32_t s = 0; s < n; s++) {
        const uint32_t from = s < b->n_seqs ? b->start[s] : 0;
        const uint32_t len = s < b->n_seqs ? b->start[s + 1] - from : 0;
        for (uint32_t r = 0; r < L; r++) {
            const size_t to = (size_t)s * L + r;
            if (r < len) {
                ids[to] = b->ids[from + r];
                mask[to] = b->key_mask ? b->key_mask[from + r] : 1;
                if (types) types[to] = b->type_ids[from + r];
                if (glob) glob[to] = global_mask[from + r];
            } else {
                ids[to] = c->pad_token_id;
                mask[to] = len == 0 && r == 0;
                if (glob) glob[to] = len == 0 && r == 0;
            }
        }
    }
    const dc_bert_batch pb = {n, start, ids, types, mask};
    if ((st = forward(m, &pb, glob, hidden))) goto done;
    for (uint32_t s = 0; s < b->n_seqs; s++)
        memcpy(hidden_out + (size_t)b->start[s] * H, hidden + (size_t)s * L * H,
               (size_t)(b->start[s + 1] - b->start[s]) * H * sizeof *hidden);
done:
    free(start);
    free(ids);
    free(types);
    free(mask);
    free(glob);
    free(hidden);
    return st;
}

dc_status dc_bert_forward_global(dc_bert *m, const dc_bert_batch *b, const uint8_t *global_mask,
                                 float *hidden_out) {
    if (!m || !b || (b->n_seqs && (!b->start || !b->ids)) || !hidden_out)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "bert forward: NULL argument");
    const dc_bert_config *c = &m->cfg;
    if (b->n_seqs == 0) return DC_OK;
    if (b->start[0] != 0) return dc_fail(DC_ERR_INVALID_ARGUMENT, "bert forward: start[0] must be 0");
    for (uint32_t s = 0; s < b->n_seqs; s++) {
        if (b->start[s + 1] < b->start[s])
            return dc_fail(DC_ERR_INVALID_ARGUMENT, "bert forward: sequence %u has negative length", s);
        if (b->start[s + 1] - b->start[s] > dc_bert_max_tokens(c))
            return dc_fail(DC_ERR_INPUT_TOO_LONG, "sequence %u has %u tokens; the model takes %u",
                           s, b->start[s + 1] - b->start[s], dc_bert_max_tokens(c));
    }
    const size_t T = b->start[b->n_seqs];
    if (T == 0) return DC_OK;
    for (size_t r = 0; r < T; r++) {
        if (b->ids[r] >= c->vocab_size)
            return dc_fail(DC_ERR_INVALID_VALUE, "token %zu: id %u is outside the vocabulary (%u)", r,
                           b->ids[r], c->vocab_size);
        if (b->type_ids && b->type_ids[r] >= c->type_vocab)
            return dc_fail(DC_ERR_INVALID_VALUE, "token %zu: type id %u is outside type_vocab_size (%u)",
                           r, b->type_ids[r], c->type_vocab);
    }
    uint32_t n_glob = 0;
    for (size_t r = 0; c->kind == DC_BERT_KIND_LONGFORMER && global_mask && r < T; r++)
        n_glob += global_mask[r] != 0;
    /* where graphs are on, a small batch runs padded to its bucket, so that its layout recurs
     * (one that fills its bucket too: the key mask, all ones then, keeps its key the same) */
    dc_graph_bucket bk;
    if (dc_graph_cache_on(&m->graphs) && c->pad_token_id < c->vocab_size &&
        dc_graph_bucket_of(b->n_seqs, b->start, dc_bert_max_tokens(c), &bk) &&
        fwd_bytes(c, (size_t)bk.n_seqs * bk.len, n_glob ? n_glob + bk.n_seqs : 0) <=
            DC_GRAPH_MAX_BUFFER_BYTES)
        return forward_padded(m, b, n_glob ? global_mask : NULL, &bk, hidden_out);
    return forward(m, b, global_mask, hidden_out);
}

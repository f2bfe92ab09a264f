/* CLIP text and vision towers: config, weights and the two forwards (see clip.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "models/bert.h"
#include "models/clip.h"
#include "models/encoder_graphs.h"
#include "models/linear_load.h"
#include "models/model_backend.h"

/* ---- config.json ---- */

static dc_status u32_field(const cJSON *o, const char *origin, const char *sect, const char *key,
                           uint32_t dflt, uint32_t lo, uint32_t hi, uint32_t *out) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    if (!v || cJSON_IsNull(v)) {
        *out = dflt;
        return DC_OK;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi)
        return dc_fail(DC_ERR_MODEL_LOAD, "%s: field \"%s%s\" must be an integer in [%u, %u]",
                       origin, sect, key, lo, hi);
    *out = (uint32_t)v->valuedouble;
    return DC_OK;
}

/* One tower: its size fields, eps and activation, with the defaults given. */
static dc_status tower_parse(const cJSON *o, const char *origin, const char *sect,
                             dc_clip_tower_config *t) {
    dc_status st;
    if ((st = u32_field(o, origin, sect, "hidden_size", t->hidden, 1, 65536, &t->hidden)) ||
        (st = u32_field(o, origin, sect, "num_hidden_layers", t->layers, 0, 1024, &t->layers)) ||
        (st = u32_field(o, origin, sect, "num_attention_heads", t->heads, 1, 4096, &t->heads)) ||
        (st = u32_field(o, origin, sect, "intermediate_size", t->intermediate, 1, 1u << 20,
                        &t->intermediate)))
        return st;
    if (t->hidden % t->heads)
        return dc_fail(DC_ERR_MODEL_LOAD,
                       "%s: field \"%snum_attention_heads\" (%u) does not divide hidden_size (%u)",
                       origin, sect, t->heads, t->hidden);
    const cJSON *eps = o ? cJSON_GetObjectItemCaseSensitive(o, "layer_norm_eps") : NULL;
    if (eps && !cJSON_IsNull(eps)) {
        if (!cJSON_IsNumber(eps) || !(eps->valuedouble > 0) || eps->valuedouble > 1)
            return dc_fail(DC_ERR_MODEL_LOAD, "%s: field \"%slayer_norm_eps\" must be in (0, 1]",
                           origin, sect);
        t->eps = (float)eps->valuedouble;
    }
    const cJSON *act = o ? cJSON_GetObjectItemCaseSensitive(o, "hidden_act") : NULL;
    if (act && !cJSON_IsNull(act) &&
        (!cJSON_IsString(act) || !dc_activation_parse(act->valuestring, &t->act) ||
         t->act == DC_ACT_NONE))
        return dc_fail(DC_ERR_MODEL_LOAD,
                       "%s: field \"%shidden_act\" is not a supported activation", origin, sect);
    return DC_OK;
}

static const cJSON *section(const cJSON *root, const char *a, const char *b) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, a);
    if (!cJSON_IsObject(s)) s = cJSON_GetObjectItemCaseSensitive(root, b);
    return cJSON_IsObject(s) ? s : NULL;
}

dc_status dc_clip_config_parse(const char *json, size_t len, const char *origin,
                               dc_clip_config *out) {
    /* CLIPTextConfig / CLIPVisionConfig defaults */
    *out = (dc_clip_config){
        .text = {512, 12, 8, 2048, 1e-5f, DC_ACT_QUICK_GELU},
        .vision = {768, 12, 12, 3072, 1e-5f, DC_ACT_QUICK_GELU},
        .vocab_size = 49408,
        .max_position = 77,
        .eos_token_id = 49407,
        .image_size = 224,
        .patch_size = 32,
        .num_channels = 3,
        .projection_dim = 512,
    };
    cJSON *root = cJSON_ParseWithLength(json, len);
    dc_status st = DC_OK;
    if (!cJSON_IsObject(root)) {
        st = dc_fail(DC_ERR_MODEL_LOAD, "%s: not a JSON object", origin);
        goto done;
    }
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (!cJSON_IsString(mt) || strcmp(mt->valuestring, "clip") != 0) {
        st = dc_fail(DC_ERR_MODEL_LOAD, "%s: field \"model_type\" must be \"clip\"", origin);
        goto done;
    }
    const cJSON *tc = section(root, "text_config", "text_config_dict");
    const cJSON *vc = section(root, "vision_config", "vision_config_dict");
    if ((st = u32_field(root, origin, "", "projection_dim", 512, 1, 65536, &out->projection_dim)) ||
        (st = tower_parse(tc, origin, "text_config.", &out->text)) ||
        (st = tower_parse(vc, origin, "vision_config.", &out->vision)) ||
        (st = u32_field(tc, origin, "text_config.", "vocab_size", 49408, 1, 1u << 24,
                        &out->vocab_size)) ||
        (st = u32_field(tc, origin, "text_config.", "max_position_embeddings", 77, 1, 1u << 16,
                        &out->max_position)) ||
        (st = u32_field(tc, origin, "text_config.", "eos_token_id", 49407, 0, 1u << 24,
                        &out->eos_token_id)) ||
        (st = u32_field(vc, origin, "vision_config.", "image_size", 224, 1, 8192,
                        &out->image_size)) ||
        (st = u32_field(vc, origin, "vision_config.", "patch_size", 32, 1, 8192,
                        &out->patch_size)) ||
        (st = u32_field(vc, origin, "vision_config.", "num_channels", 3, 3, 3, &out->num_channels)))
        goto done;
    if (out->image_size % out->patch_size) {
        st = dc_fail(DC_ERR_MODEL_LOAD,
                     "%s: vision_config.patch_size %u does not divide image_size %u", origin,
                     out->patch_size, out->image_size);
        goto done;
    }
done:
    cJSON_Delete(root);
    return st;
}

dc_status dc_clip_config_read(const char *path, dc_clip_config *out) {
    FILE *f = fopen(path, "rb");
    if (!f) return dc_fail(DC_ERR_MODEL_NOT_FOUND, "%s: cannot open", path);
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 16384;
            char *nb = cap > (16u << 20) ? NULL : realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return dc_fail(DC_ERR_MODEL_LOAD, "%s: too large", path);
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (!got) break;
    }
    fclose(f);
    dc_status st = dc_clip_config_parse(buf, n, path, out);
    free(buf);
    return st;
}

/* ---- weights ---- */

typedef struct clip_layer {
    dc_linear *qkv, *out, *fc1, *fc2;
    float *ln1_g, *ln1_b, *ln2_g, *ln2_b;
} clip_layer;

typedef struct clip_tower {
    dc_clip_tower_config c;
    clip_layer *layer;
    float *final_g, *final_b; /* text: final_layer_norm; vision: post_layernorm */
    dc_linear *proj;          /* no bias */
} clip_tower;

struct dc_clip {
    dc_clip_config cfg;
    dc_backend *be;
    clip_tower text, vision;
    float *tok_emb, *text_pos;                  /* text embeddings */
    float *class_emb, *vis_pos, *pre_g, *pre_b; /* vision embeddings */
    dc_linear *patch;                           /* [hidden, 3·p·p], no bias */
    size_t bytes;
    bool params_moved; /* the float arrays above are backend memory (params_to_backend ran) */
    dc_graph_cache graphs; /* recorded tower forwards by batch layout (backends with graphs) */
};

const dc_clip_config *dc_clip_config_of(const dc_clip *m) {
    return &m->cfg;
}
bool dc_clip_graphs_on(const dc_clip *m) { return m && dc_graph_cache_on(&m->graphs); }
size_t dc_clip_memory_bytes(const dc_clip *m) {
    return m ? m->bytes : 0;
}

static void tower_free(dc_backend *be, clip_tower *t) {
    if (t->layer) {
        for (uint32_t i = 0; i < t->c.layers; i++) {
            clip_layer *L = &t->layer[i];
            dc_linear *ls[4] = {L->qkv, L->out, L->fc1, L->fc2};
            for (int j = 0; j < 4; j++)
                if (ls[j]) be->ops->linear_destroy(be, ls[j]);
        }
    }
    if (t->proj) be->ops->linear_destroy(be, t->proj);
}

/* The i-th float array an op reads (embeddings, LayerNorm γ/β) and its length; false past
 * the last. */
static bool param_at(void *model, size_t i, float ***p, size_t *n) {
    dc_clip *m = model;
    const dc_clip_config *c = &m->cfg;
    const size_t Ht = c->text.hidden, Hv = c->vision.hidden;
    const size_t grid = c->patch_size ? c->image_size / c->patch_size : 0;
    float **fixed[10] = {&m->tok_emb,      &m->text_pos,       &m->class_emb,
                         &m->vis_pos,      &m->pre_g,          &m->pre_b,
                         &m->text.final_g, &m->text.final_b,   &m->vision.final_g,
                         &m->vision.final_b};
    const size_t len[10] = {(size_t)c->vocab_size * Ht, (size_t)c->max_position * Ht, Hv,
                            (grid * grid + 1) * Hv, Hv, Hv, Ht, Ht, Hv, Hv};
    if (i < 10) {
        *p = fixed[i];
        *n = len[i];
        return true;
    }
    i -= 10;
    clip_tower *towers[2] = {&m->text, &m->vision};
    for (int t = 0; t < 2; t++) {
        const size_t k = towers[t]->layer ? 4 * (size_t)towers[t]->c.layers : 0;
        if (i >= k) {
            i -= k;
            continue;
        }
        clip_layer *L = &towers[t]->layer[i / 4];
        float **ln[4] = {&L->ln1_g, &L->ln1_b, &L->ln2_g, &L->ln2_b};
        *p = ln[i % 4];
        *n = towers[t]->c.hidden;
        return true;
    }
    return false;
}

/* Those arrays into backend memory once (nothing moves on the CPU backend); afterwards every
 * pointer left is backend memory, even on failure (host arrays not yet moved are freed). */
static dc_status params_to_backend(dc_clip *m) {
    m->params_moved = true;
    return dc_be_params_move(m->be, m, param_at);
}

void dc_clip_destroy(dc_clip *m) {
    if (!m) return;
    dc_graph_cache_clear(&m->graphs, m->be); /* the graphs read the weights: first */
    tower_free(m->be, &m->text);
    tower_free(m->be, &m->vision);
    if (m->patch) m->be->ops->linear_destroy(m->be, m->patch);
    dc_be_params_free(m->be, m, param_at, m->params_moved);
    free(m->text.layer);
    free(m->vision.layer);
    free(m);
}

static dc_status get(dc_clip *m, const dc_weights *w, const char *name, uint32_t ndim,
                     const uint64_t *shape, float **out) {
    dc_status st = dc_bert_tensor_f32(w, "", name, ndim, shape, out);
    if (st == DC_OK) {
        uint64_t n = 1;
        for (uint32_t i = 0; i < ndim; i++) n *= shape[i];
        m->bytes += (size_t)n * sizeof(float);
    }
    return st;
}

static dc_status ln(dc_clip *m, const dc_weights *w, const char *base, uint32_t H, float **g,
                    float **b) {
    char n[256];
    snprintf(n, sizeof n, "%s.weight", base);
    dc_status st = get(m, w, n, 1, (uint64_t[]){H}, g);
    if (st) return st;
    snprintf(n, sizeof n, "%s.bias", base);
    return get(m, w, n, 1, (uint64_t[]){H}, b);
}

/* The stacked product of `np` ≤ 3 projections base.<part>.weight/.bias (bias optional when
 * has_bias is false), read by the backend from the file where it can (linear_load.h). */
static dc_status linear(dc_clip *m, const dc_weights *w, dc_weight_format fmt, const char *base,
                        const char *const *parts, uint32_t np, uint32_t n, uint32_t k, bool has_bias, dc_linear **out) {
    dc_status st = dc_linear_load(m->be, w, "", base, parts, np, has_bias, n, k, fmt,
                                  !m->cfg.host_weights, out);
    if (st == DC_OK) m->bytes += m->be->ops->linear_bytes(*out);
    return st;
}

static dc_status tower_load(dc_clip *m, const dc_weights *w, const char *name, clip_tower *t) {
    const uint32_t H = t->c.hidden, I = t->c.intermediate;
    char extra[160], used[160];
    snprintf(extra, sizeof extra, "%s.encoder.layers.%u.self_attn.q_proj.weight", name,
             t->c.layers);
    if (dc_weights_find(w, extra)) {
        snprintf(used, sizeof used, "%s", extra);
        return dc_fail(DC_ERR_MODEL_LOAD, "%s: tensor \"%s\" exists but config.json says %u layers",
                       dc_weights_path(w), used, t->c.layers);
    }
    t->layer = calloc(t->c.layers ? t->c.layers : 1, sizeof *t->layer);
    if (!t->layer) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s layers", name);
    static const char *const qkv[3] = {"q_proj", "k_proj", "v_proj"};
    dc_status st;
    for (uint32_t i = 0; i < t->c.layers; i++) {
        clip_layer *L = &t->layer[i];
        char b[160];
        snprintf(b, sizeof b, "%s.encoder.layers.%u.self_attn", name, i);
        if ((st = linear(m, w, m->cfg.weights, b, qkv, 3, H, H, true, &L->qkv))) return st;
        snprintf(b, sizeof b, "%s.encoder.layers.%u.self_attn.out_proj", name, i);
        if ((st = linear(m, w, m->cfg.weights, b, NULL, 1, H, H, true, &L->out))) return st;
        snprintf(b, sizeof b, "%s.encoder.layers.%u.mlp.fc1", name, i);
        if ((st = linear(m, w, m->cfg.weights, b, NULL, 1, I, H, true, &L->fc1))) return st;
        snprintf(b, sizeof b, "%s.encoder.layers.%u.mlp.fc2", name, i);
        if ((st = linear(m, w, m->cfg.weights, b, NULL, 1, H, I, true, &L->fc2))) return st;
        snprintf(b, sizeof b, "%s.encoder.layers.%u.layer_norm1", name, i);
        if ((st = ln(m, w, b, H, &L->ln1_g, &L->ln1_b))) return st;
        snprintf(b, sizeof b, "%s.encoder.layers.%u.layer_norm2", name, i);
        if ((st = ln(m, w, b, H, &L->ln2_g, &L->ln2_b))) return st;
    }
    return DC_OK;
}

dc_status dc_clip_create(const dc_weights *w, const dc_clip_config *cfg, dc_backend *be,
                         dc_clip **out) {
    *out = NULL;
    if (!w || !cfg || !be) return dc_fail(DC_ERR_INVALID_ARGUMENT, "clip create: NULL argument");
    dc_clip *m = calloc(1, sizeof *m);
    if (!m) return dc_fail(DC_ERR_OUT_OF_MEMORY, "clip");
    m->cfg = *cfg;
    m->be = be;
    dc_graph_cache_init(&m->graphs, be);
    m->text.c = cfg->text;
    m->vision.c = cfg->vision;
    const uint32_t Ht = cfg->text.hidden, Hv = cfg->vision.hidden, P = cfg->projection_dim;
    const uint32_t p = cfg->patch_size, grid = cfg->image_size / p;
    dc_status st;
    float *pw = NULL;
    if ((st = get(m, w, "text_model.embeddings.token_embedding.weight", 2,
                  (uint64_t[]){cfg->vocab_size, Ht}, &m->tok_emb)) ||
        (st = get(m, w, "text_model.embeddings.position_embedding.weight", 2,
                  (uint64_t[]){cfg->max_position, Ht}, &m->text_pos)) ||
        (st = tower_load(m, w, "text_model", &m->text)) ||
        (st = ln(m, w, "text_model.final_layer_norm", Ht, &m->text.final_g, &m->text.final_b)) ||
        (st = linear(m, w, DC_WEIGHTS_F32, "text_projection", NULL, 1, P, Ht, false,
                     &m->text.proj)) ||
        (st = get(m, w, "vision_model.embeddings.class_embedding", 1, (uint64_t[]){Hv},
                  &m->class_emb)) ||
        (st = get(m, w, "vision_model.embeddings.position_embedding.weight", 2,
                  (uint64_t[]){(uint64_t)grid * grid + 1, Hv}, &m->vis_pos)) ||
        (st = ln(m, w, "vision_model.pre_layrnorm", Hv, &m->pre_g, &m->pre_b)) ||
        (st = tower_load(m, w, "vision_model", &m->vision)) ||
        (st =
             ln(m, w, "vision_model.post_layernorm", Hv, &m->vision.final_g, &m->vision.final_b)) ||
        (st = linear(m, w, DC_WEIGHTS_F32, "visual_projection", NULL, 1, P, Hv, false,
                     &m->vision.proj)))
        goto fail;
    /* the Conv2d [Hv, 3, p, p] is the matrix [Hv, 3·p·p] of a linear over flattened patches */
    if ((st = dc_bert_tensor_f32(w, "", "vision_model.embeddings.patch_embedding.weight", 4,
                                 (uint64_t[]){Hv, cfg->num_channels, p, p}, &pw)))
        goto fail;
    st = be->ops->linear_create(be, pw, NULL, Hv, cfg->num_channels * p * p, DC_WEIGHTS_F32,
                                &m->patch);
    free(pw);
    if (st) goto fail;
    m->bytes += be->ops->linear_bytes(m->patch);
    if ((st = params_to_backend(m))) goto fail;
    *out = m;
    return DC_OK;
fail:
    dc_clip_destroy(m);
    return st;
}

/* ---- forward ---- */

/* A tower forward's activations: x (the residual stream) and the work areas, one block, each
 * part 64-byte aligned; the block is a recorded layout's own when it runs as a graph. */
typedef struct tower_bufs {
    float *x, *h, *qkv, *ctx, *ffn;
} tower_bufs;

static size_t tower_bytes(const clip_tower *t, size_t T, size_t *nH) {
    const size_t al = 16, nI = (T * t->c.intermediate + al - 1) / al * al;
    *nH = (T * t->c.hidden + al - 1) / al * al;
    return (6 * *nH + nI) * sizeof(float);
}

static tower_bufs tower_split(void *block, size_t nH) {
    tower_bufs b;
    b.x = block;
    b.h = b.x + nH;
    b.qkv = b.h + nH;
    b.ctx = b.qkv + 3 * nH;
    b.ffn = b.ctx + nH;
    return b;
}

/* Pre-LN blocks over a packed batch: x += attn(LN1(x)); x += fc2(act(fc1(LN2(x)))). Only
 * stream-ordered ops: a recording can hold it. */
typedef struct tower_args {
    dc_clip *m;
    const clip_tower *t;
    const tower_bufs *b;
    size_t T;
    const dc_seq_batch *sb;
    const dc_attn_opts *ao;
} tower_args;

static dc_status tower_run(void *ctx) {
    const tower_args *a = ctx;
    const clip_tower *t = a->t;
    const tower_bufs *b = a->b;
    const size_t T = a->T;
    dc_backend *be = a->m->be;
    const dc_backend_ops *ops = be->ops;
    const uint32_t H = t->c.hidden, I = t->c.intermediate, hd = H / t->c.heads;
    const float scale = 1.0f / sqrtf((float)hd);
    dc_status st;
    for (uint32_t li = 0; li < t->c.layers; li++) {
        const clip_layer *L = &t->layer[li];
        ops->layernorm(be, b->x, NULL, L->ln1_g, L->ln1_b, t->c.eps, T, H, b->h);
        if ((st = ops->linear_forward(be, L->qkv, b->h, T, b->qkv))) return st;
        if ((st = ops->attention_ex(be, b->qkv, 3 * (size_t)H, b->qkv + H, b->qkv + 2 * (size_t)H,
                                    3 * (size_t)H, b->ctx, H, t->c.heads, hd, scale, a->sb, a->ao)))
            return st;
        if ((st = ops->linear_forward(be, L->out, b->ctx, T, b->h))) return st;
        ops->add(be, b->x, b->h, T * H);
        ops->layernorm(be, b->x, NULL, L->ln2_g, L->ln2_b, t->c.eps, T, H, b->h);
        if ((st = ops->linear_forward(be, L->fc1, b->h, T, b->ffn))) return st;
        ops->activation(be, t->c.act, b->ffn, T * I);
        if ((st = ops->linear_forward(be, L->fc2, b->ffn, T, b->h))) return st;
        ops->add(be, b->x, b->h, T * H);
    }
    return DC_OK;
}

/* The block for a tower forward of this layout: a recorded layout's (u->entry set) or a new
 * one of the caller's. tag tells the towers apart in the key. */
static dc_status tower_block(dc_clip *m, char tag, uint32_t n, const uint32_t *start,
                             size_t bytes, dc_graph_use *u, void **block) {
    *block = NULL;
    memset(u, 0, sizeof *u);
    if (dc_graph_cache_on(&m->graphs)) {
        const size_t len = 1 + ((size_t)n + 1) * sizeof *start;
        uint8_t *key = malloc(len);
        if (key) {
            key[0] = (uint8_t)tag;
            memcpy(key + 1, start, len - 1);
            *block = dc_graph_use_begin(&m->graphs, m->be, key, len, bytes, u);
            free(key);
        }
    }
    return *block ? DC_OK : m->be->ops->alloc(m->be, bytes, block);
}

static void tower_block_end(dc_clip *m, dc_graph_use *u, void *block) {
    if (u->entry) dc_graph_use_end(&m->graphs, m->be, u);
    else if (block) m->be->ops->release(m->be, block);
}

/* final LayerNorm on the n pooled rows, then the projection into out */
static dc_status pool_project(dc_clip *m, const clip_tower *t, const float *x, const uint32_t *rows,
                              uint32_t n, float *out) {
    const uint32_t H = t->c.hidden;
    dc_backend *be = m->be;
    float *pooled = NULL, *proj = NULL;
    dc_status st;
    if ((st = be->ops->alloc(be, (size_t)n * H * sizeof(float), (void **)&pooled)) ||
        (st =
             be->ops->alloc(be, (size_t)n * m->cfg.projection_dim * sizeof(float), (void **)&proj)))
        goto done;
    for (uint32_t s = 0; s < n; s++) /* backend to backend (memmove on the CPU) */
        if ((st = be->ops->upload(be, pooled + (size_t)s * H, x + (size_t)rows[s] * H,
                                  H * sizeof(float))))
            goto done;
    be->ops->layernorm(be, pooled, NULL, t->final_g, t->final_b, t->c.eps, n, H, pooled);
    if ((st = be->ops->linear_forward(be, t->proj, pooled, n, proj))) goto done;
    st = be->ops->download(be, out, proj, (size_t)n * m->cfg.projection_dim * sizeof(float));
done:
    if (pooled) be->ops->release(be, pooled);
    if (proj) be->ops->release(be, proj);
    return st;
}

dc_status dc_clip_text_features(dc_clip *m, uint32_t n, const uint32_t *start, const uint32_t *ids,
                                float *out) {
    if (!m || (n && (!start || !ids || !out)))
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "clip text: NULL argument");
    if (!n) return DC_OK;
    const dc_clip_config *c = &m->cfg;
    const uint32_t H = c->text.hidden;
    if (start[0] != 0) return dc_fail(DC_ERR_INVALID_ARGUMENT, "clip text: start[0] must be 0");
    for (uint32_t s = 0; s < n; s++) {
        if (start[s + 1] <= start[s])
            return dc_fail(DC_ERR_INVALID_ARGUMENT, "clip text: sequence %u is empty", s);
        if (start[s + 1] - start[s] > c->max_position)
            return dc_fail(DC_ERR_INPUT_TOO_LONG,
                           "clip text: sequence %u has %u tokens; the model takes %u", s,
                           start[s + 1] - start[s], c->max_position);
    }
    const size_t T = start[n];
    for (size_t r = 0; r < T; r++)
        if (ids[r] >= c->vocab_size)
            return dc_fail(DC_ERR_INVALID_VALUE,
                           "clip text: token %zu: id %u is outside the vocabulary (%u)", r, ids[r],
                           c->vocab_size);
    dc_backend *be = m->be;
    dc_backend_cpu_bind_threads(be);
    /* where graphs are on, a small batch runs padded to its bucket (encoder_graphs.h), so that
     * its layout recurs: causal attention keeps the trailing pad rows out of the real ones */
    dc_graph_bucket bk = {n, 0};
    const bool pad = dc_graph_cache_on(&m->graphs) &&
                     dc_graph_bucket_of(n, start, c->max_position, &bk) &&
                     (size_t)bk.n_seqs * bk.len != T;
    const uint32_t fn = pad ? bk.n_seqs : n;
    const size_t FT = pad ? (size_t)bk.n_seqs * bk.len : T;
    uint32_t *pos = malloc(FT * sizeof *pos), *rows = malloc(n * sizeof *rows);
    uint32_t *pstart = pad ? malloc(((size_t)fn + 1) * sizeof *pstart) : NULL;
    uint32_t *pids = pad ? calloc(FT, sizeof *pids) : NULL; /* pad rows: id 0 */
    void *block = NULL;
    dc_graph_use gu;
    memset(&gu, 0, sizeof gu);
    dc_status st = DC_OK;
    if (!pos || !rows || (pad && (!pstart || !pids))) {
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "clip text positions");
        goto done;
    }
    for (uint32_t s = 0; pad && s <= fn; s++) pstart[s] = s * bk.len;
    for (uint32_t s = 0; s < n; s++) {
        uint32_t best = start[s];
        for (uint32_t r = start[s]; r < start[s + 1]; r++) {
            /* transformers: argmax(ids) (first maximum) under the legacy eos id 2, else the
             * first eos (position 0 when there is none) */
            if (c->eos_token_id == 2 ? ids[r] > ids[best]
                                     : (ids[r] == c->eos_token_id && ids[best] != c->eos_token_id))
                best = r;
        }
        rows[s] = (pad ? pstart[s] : start[s]) + best - start[s];
        if (pad) memcpy(pids + pstart[s], ids + start[s], (start[s + 1] - start[s]) * sizeof *ids);
    }
    const uint32_t *fstart = pad ? pstart : start, *fids = pad ? pids : ids;
    for (uint32_t s = 0; s < fn; s++)
        for (uint32_t r = fstart[s]; r < fstart[s + 1]; r++) pos[r] = r - fstart[s];
    size_t nH;
    if ((st = tower_block(m, 't', fn, fstart, tower_bytes(&m->text, FT, &nH), &gu, &block)))
        goto done;
    const tower_bufs tb = tower_split(block, nH);
    be->ops->embed_sum(be, FT, H, m->tok_emb, fids, m->text_pos, pos, NULL, NULL, tb.x);
    dc_seq_batch sb = {fn, fstart, NULL};
    dc_attn_opts causal = {DC_ATTN_UNBOUNDED, 0, NULL, NULL, 0};
    tower_args ta = {m, &m->text, &tb, FT, &sb, &causal};
    if ((st = dc_graph_use_run(&gu, be, tower_run, &ta))) goto done;
    st = pool_project(m, &m->text, tb.x, rows, n, out);
done:
    tower_block_end(m, &gu, block);
    free(pos);
    free(rows);
    free(pstart);
    free(pids);
    return st;
}

dc_status dc_clip_image_features(dc_clip *m, uint32_t n, const float *pixels, float *out) {
    if (!m || (n && (!pixels || !out)))
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "clip image: NULL argument");
    if (!n) return DC_OK;
    const dc_clip_config *c = &m->cfg;
    const uint32_t H = c->vision.hidden, p = c->patch_size, S = c->image_size, grid = S / p;
    const uint32_t np = grid * grid, L = np + 1, K = c->num_channels * p * p;
    const size_t T = (size_t)n * L;
    dc_backend *be = m->be;
    dc_backend_cpu_bind_threads(be);
    float *patches = NULL, *emb = NULL, *x = NULL;
    uint32_t *start = malloc((n + 1) * sizeof *start), *rows = malloc(n * sizeof *rows);
    void *block = NULL;
    dc_graph_use gu;
    memset(&gu, 0, sizeof gu);
    dc_status st = DC_OK;
    if (!start || !rows) {
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "clip image batch");
        goto done;
    }
    for (uint32_t i = 0; i <= n; i++) start[i] = i * L;
    size_t nH;
    if ((st = be->ops->alloc(be, (size_t)n * np * K * sizeof(float), (void **)&patches)) ||
        (st = be->ops->alloc(be, (size_t)n * np * H * sizeof(float), (void **)&emb)) ||
        (st = tower_block(m, 'v', n, start, tower_bytes(&m->vision, T, &nH), &gu, &block)))
        goto done;
    const tower_bufs tb = tower_split(block, nH);
    x = tb.x;
    /* patch (py, px) as a row: channel, then kernel row, then kernel column (the Conv2d
     * weight's flattening); built on the host, straight into `patches` on the CPU backend */
    const bool host = dc_be_is_host(be);
    const size_t pbytes = (size_t)n * np * K * sizeof(float);
    float *hp = host ? patches : malloc(pbytes);
    if (!hp) {
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "clip image patches");
        goto done;
    }
    for (uint32_t i = 0; i < n; i++) {
        const float *img = pixels + (size_t)i * c->num_channels * S * S;
        for (uint32_t py = 0; py < grid; py++)
            for (uint32_t px = 0; px < grid; px++) {
                float *row = hp + ((size_t)i * np + (size_t)py * grid + px) * K;
                for (uint32_t ch = 0; ch < c->num_channels; ch++)
                    for (uint32_t ky = 0; ky < p; ky++)
                        memcpy(row + ((size_t)ch * p + ky) * p,
                               img + ((size_t)ch * S + (size_t)py * p + ky) * S + (size_t)px * p,
                               p * sizeof(float));
            }
    }
    if (!host) {
        st = be->ops->upload(be, patches, hp, pbytes);
        free(hp);
        if (st) goto done;
    }
    if ((st = be->ops->linear_forward(be, m->patch, patches, (size_t)n * np, emb))) goto done;
    for (uint32_t i = 0; i < n; i++) {
        float *xi = x + (size_t)i * L * H;
        /* backend to backend: [class] then the patch rows, plus the positions */
        if ((st = be->ops->upload(be, xi, m->class_emb, H * sizeof(float))) ||
            (st = be->ops->upload(be, xi + H, emb + (size_t)i * np * H,
                                  (size_t)np * H * sizeof(float))))
            goto done;
        be->ops->add(be, xi, m->vis_pos, (size_t)L * H);
        rows[i] = i * L;
    }
    be->ops->layernorm(be, x, NULL, m->pre_g, m->pre_b, c->vision.eps, T, H, x);
    dc_seq_batch sb = {n, start, NULL};
    dc_attn_opts full = {DC_ATTN_UNBOUNDED, DC_ATTN_UNBOUNDED, NULL, NULL, 0};
    tower_args ta = {m, &m->vision, &tb, T, &sb, &full};
    if ((st = dc_graph_use_run(&gu, be, tower_run, &ta))) goto done;
    st = pool_project(m, &m->vision, x, rows, n, out);
done:
    if (patches) be->ops->release(be, patches);
    if (emb) be->ops->release(be, emb);
    tower_block_end(m, &gu, block);
    free(start);
    free(rows);
    return st;
}

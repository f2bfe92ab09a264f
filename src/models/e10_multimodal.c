/* E10 multimodal: openai/clip-vit-large-patch14 (768-d, text and images in one space).
 *
 * Text: the CLIP tokenizer (tokenizer.json, or vocab.json + merges.txt), truncated to 77 ids
 * (<|startoftext|> + 75 + <|endoftext|>), the text tower, pooled at the first end-of-text
 * token, text_projection. Images: decoded (PNG, JPEG, WebP, GIF first frame; the declared
 * format must match the bytes), transformers' CLIPImageProcessor from preprocessor_config.json
 * (short side to 224 with Pillow's bicubic, centre crop 224, CLIP mean/std), the vision tower,
 * visual_projection. Both vectors are L2-normalised, as CLIPModel does before its logits.
 * tokens_used is the number of text ids, or the patches + class token of an image. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/error.h"
#include "io/image.h"
#include "models/bert.h"
#include "models/clip.h"
#include "models/encoder_model.h"
#include "models/model_backend.h"
#include "models/pooling.h"
#include "models/pretrained.h"
#include "text/tokenizer.h"

#define E10_IMAGE_BATCH 8u

typedef struct e10 {
    char dir[4096], dir_given[4096];
    dc_pretrained_options opt;
    dc_backend *be;
    dc_tokenizer *tok;
    dc_clip *clip;
    dc_image_preprocess pp;
    uint32_t max_len;
    char backend_desc[256]; /* dc_pretrained_backend_desc */
} e10;

static void e10_release(e10 *e) {
    dc_clip_destroy(e->clip);
    e->clip = NULL;
    dc_tokenizer_free(e->tok);
    e->tok = NULL;
    dc_model_backend_close(e->be);
    e->be = NULL;
    e->backend_desc[0] = '\0';
}

static dc_status e10_load(dc_model *m) {
    e10 *e = m->impl;
    dc_status st;
    char path[4200];
    dc_weights *w = NULL;
    if ((st = dc_model_dir_resolve(e->dir_given, e->dir, sizeof e->dir))) return st;
    dc_clip_config cfg;
    snprintf(path, sizeof path, "%s/config.json", e->dir);
    if ((st = dc_clip_config_read(path, &cfg))) return st;
    if (cfg.projection_dim != m->info->dim)
        return dc_fail(DC_ERR_INVALID_DIMENSION, "%s: projection_dim %u; E10 needs %u", e->dir,
                       cfg.projection_dim, m->info->dim);
    snprintf(path, sizeof path, "%s/preprocessor_config.json", e->dir);
    struct stat sb;
    if (stat(path, &sb) == 0) {
        if ((st = dc_image_preprocess_read(path, &e->pp))) return st;
    } else {
        dc_image_preprocess_clip(&e->pp);
    }
    if (!e->pp.do_center_crop || e->pp.crop_width != cfg.image_size ||
        e->pp.crop_height != cfg.image_size)
        return dc_fail(
            DC_ERR_MODEL_LOAD,
            "%s: preprocessor_config.json must centre-crop to the model's %u x %u images", e->dir,
            cfg.image_size, cfg.image_size);
    e->max_len = cfg.max_position;
    if (e->opt.max_tokens && e->opt.max_tokens < e->max_len) e->max_len = e->opt.max_tokens;
    if (e->max_len < 2) e->max_len = 2;
    if ((st = dc_model_backend_open(&e->opt, &e->be, e->backend_desc, sizeof e->backend_desc)))
        goto fail;
    if ((st = dc_tokenizer_load(e->dir, &e->tok))) goto fail;
    if (dc_tokenizer_vocab_size(e->tok, true) > cfg.vocab_size) {
        st = dc_fail(DC_ERR_MODEL_LOAD, "%s: the tokenizer has %zu tokens but vocab_size is %u",
                     e->dir, dc_tokenizer_vocab_size(e->tok, true), cfg.vocab_size);
        goto fail;
    }
    if ((st = dc_bert_weights_path(e->dir, path, sizeof path))) goto fail;
    if ((st = dc_weights_open(path, &w))) goto fail;
    cfg.weights = e->opt.weights;
    cfg.host_weights = e->opt.device.host_weights;
    if ((st = dc_clip_create(w, &cfg, e->be, &e->clip))) goto fail;
    dc_weights_close(w);
    dc_model_backend_note_reads(e->be, e->backend_desc, sizeof e->backend_desc);
    return DC_OK;
fail:
    dc_weights_close(w);
    e10_release(e);
    return st;
}

static dc_status e10_unload(dc_model *m) {
    e10_release(m->impl);
    return DC_OK;
}

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Token ids of one text, truncated to max_len (specials included). */
static dc_status e10_tokenize(e10 *e, const dc_input *in, dc_encoding *enc) {
    dc_encode_options o;
    dc_tokenizer_default_options(e->tok, &o);
    o.add_special_tokens = true;
    o.padding.enabled = false;
    o.truncation.enabled = true;
    o.truncation.max_length = e->max_len;
    o.truncation.stride = 0;
    o.truncation.strategy = DC_TRUNC_LONGEST_FIRST;
    o.truncation.direction = DC_SIDE_RIGHT;
    return dc_tokenizer_encode(e->tok, in->content ? in->content : "", in->content_len, &o, enc);
}

static dc_status embed_texts(e10 *e, const dc_input *inputs, const size_t *which, size_t n,
                             dc_model_embedding *out, const dc_model_info *info) {
    const uint32_t P = dc_clip_config_of(e->clip)->projection_dim;
    uint32_t *start = calloc(n + 1, sizeof *start), *ids = NULL;
    float *vec = malloc(n * P * sizeof *vec);
    bool *trunc = calloc(n, sizeof *trunc);
    dc_status st = DC_OK;
    if (!start || !vec || !trunc) {
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "E10 text batch");
        goto done;
    }
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        dc_encoding enc;
        if ((st = e10_tokenize(e, &inputs[which[i]], &enc))) {
            st = dc_fail_context(st, "input %zu", which[i]);
            goto done;
        }
        uint32_t *nid = realloc(ids, (total + enc.len + 1) * sizeof *ids);
        if (!nid) {
            dc_encoding_free(&enc);
            st = dc_fail(DC_ERR_OUT_OF_MEMORY, "E10 token ids");
            goto done;
        }
        ids = nid;
        memcpy(ids + total, enc.ids, enc.len * sizeof *ids);
        total += enc.len;
        start[i + 1] = (uint32_t)total;
        trunc[i] = enc.truncated;
        dc_encoding_free(&enc);
        if (start[i + 1] == start[i]) {
            st = dc_fail(DC_ERR_TOKENIZATION, "input %zu: no tokens", which[i]);
            goto done;
        }
    }
    if ((st = dc_clip_text_features(e->clip, (uint32_t)n, start, ids, vec))) goto done;
    for (size_t i = 0; i < n && st == DC_OK; i++) {
        dc_l2_normalize_eps(vec + i * P, P, 1e-12);
        st = dc_model_embedding_init(&out[which[i]], info->id, vec + i * P, P);
        out[which[i]].tokens_used = start[i + 1] - start[i];
        out[which[i]].truncated = trunc[i];
    }
done:
    free(start);
    free(ids);
    free(vec);
    free(trunc);
    return st;
}

static dc_status embed_images(e10 *e, const dc_input *inputs, const size_t *which, size_t n,
                              dc_model_embedding *out, const dc_model_info *info) {
    const dc_clip_config *c = dc_clip_config_of(e->clip);
    const uint32_t P = c->projection_dim, S = c->image_size, grid = S / c->patch_size;
    const size_t per = (size_t)3 * S * S;
    const uint32_t chunk = n < E10_IMAGE_BATCH ? (uint32_t)n : E10_IMAGE_BATCH;
    float *pix = malloc(chunk * per * sizeof *pix), *vec = malloc(chunk * P * sizeof *vec);
    dc_status st = DC_OK;
    if (!pix || !vec) {
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "E10 image batch");
        goto done;
    }
    for (size_t i0 = 0; i0 < n; i0 += chunk) {
        uint32_t k = (uint32_t)(n - i0 < chunk ? n - i0 : chunk);
        for (uint32_t j = 0; j < k; j++) {
            const dc_input *in = &inputs[which[i0 + j]];
            dc_image img;
            st = dc_image_decode_as(in->bytes, in->bytes_len, in->image_format, &img);
            if (st == DC_OK) st = dc_image_to_pixels(&img, &e->pp, pix + j * per);
            dc_image_free(&img);
            if (st) {
                st = dc_fail_context(st, "input %zu", which[i0 + j]);
                goto done;
            }
        }
        if ((st = dc_clip_image_features(e->clip, k, pix, vec))) goto done;
        for (uint32_t j = 0; j < k && st == DC_OK; j++) {
            dc_l2_normalize_eps(vec + (size_t)j * P, P, 1e-12);
            st = dc_model_embedding_init(&out[which[i0 + j]], info->id, vec + (size_t)j * P, P);
            out[which[i0 + j]].tokens_used = grid * grid + 1;
        }
        if (st) goto done;
    }
done:
    free(pix);
    free(vec);
    return st;
}

static dc_status e10_embed(dc_model *m, const dc_input *inputs, size_t n, dc_model_embedding *out) {
    e10 *e = m->impl;
    uint64_t t0 = now_us();
    size_t *texts = malloc((n ? n : 1) * sizeof *texts),
           *images = malloc((n ? n : 1) * sizeof *images);
    size_t nt = 0, ni = 0;
    dc_status st = DC_OK;
    if (!texts || !images) st = dc_fail(DC_ERR_OUT_OF_MEMORY, "E10 batch");
    for (size_t i = 0; st == DC_OK && i < n; i++) {
        if (inputs[i].type == DC_INPUT_IMAGE)
            images[ni++] = i;
        else if (inputs[i].type == DC_INPUT_TEXT)
            texts[nt++] = i;
        else
            st = dc_fail(DC_ERR_UNSUPPORTED_MODALITY, "input %zu: E10 embeds text and images", i);
    }
    if (st == DC_OK && nt) st = embed_texts(e, inputs, texts, nt, out, m->info);
    if (st == DC_OK && ni) st = embed_images(e, inputs, images, ni, out, m->info);
    free(texts);
    free(images);
    if (st != DC_OK) {
        for (size_t i = 0; i < n; i++) dc_model_embedding_free(&out[i]);
        return st;
    }
    uint64_t dt = now_us() - t0;
    for (size_t i = 0; i < n; i++) out[i].latency_us = dt;
    return DC_OK;
}

static size_t e10_memory(const dc_model *m) {
    const e10 *e = m->impl;
    return dc_clip_memory_bytes(e->clip);
}

static void e10_destroy(dc_model *m) {
    e10_release(m->impl);
    free(m->impl);
    free(m);
}

static const dc_model_vtable e10_vt = {e10_load, e10_unload, e10_embed, e10_memory, e10_destroy};

dc_status dc_e10_create(const dc_pretrained_options *opt, dc_model **out) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "model create: NULL output");
    *out = NULL;
    if (!opt || !opt->model_dir || !opt->model_dir[0])
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "model create: no model folder");
    if (strlen(opt->model_dir) >= sizeof((e10 *)0)->dir_given)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "model folder path is too long");
    dc_status ws = dc_pretrained_check_weights(opt);
    if (ws != DC_OK) return ws;
    e10 *e = calloc(1, sizeof *e);
    dc_model *m = calloc(1, sizeof *m);
    if (!e || !m) {
        free(e);
        free(m);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "model");
    }
    snprintf(e->dir_given, sizeof e->dir_given, "%s", opt->model_dir);
    e->opt = *opt;
    e->opt.model_dir = e->dir_given;
    dc_status st = dc_model_init(m, DC_MODEL_MULTIMODAL, &e10_vt, e);
    if (st != DC_OK) {
        free(e);
        free(m);
        return st;
    }
    *out = m;
    return DC_OK;
}

/* The warm-up's view of a loaded E10 (NULL for anything else). */
static e10 *loaded_e10(const dc_model *m) {
    return m && m->loaded && m->vt == &e10_vt ? m->impl : NULL;
}

dc_backend *dc_e10_backend(const dc_model *m) {
    const e10 *e = loaded_e10(m);
    return e ? e->be : NULL;
}

bool dc_e10_graph_limits(const dc_model *m, uint32_t *max_len, uint32_t *cap) {
    const e10 *e = loaded_e10(m);
    if (!e || !dc_clip_graphs_on(e->clip)) return false;
    *max_len = e->max_len;
    *cap = dc_clip_config_of(e->clip)->max_position;
    return true;
}

dc_status dc_e10_count_tokens(const dc_model *m, const dc_input *in, uint32_t *len) {
    e10 *e = loaded_e10(m);
    *len = 0;
    if (!e) return dc_fail(DC_ERR_NOT_INITIALIZED, "E10 is not loaded");
    dc_encoding enc;
    dc_status st = e10_tokenize(e, in, &enc);
    if (st) return st;
    *len = enc.truncated ? 0 : (uint32_t)enc.len;
    dc_encoding_free(&enc);
    return DC_OK;
}

dc_status dc_e10_warm_vision(dc_model *m, bool *ran) {
    e10 *e = loaded_e10(m);
    *ran = false;
    if (!e || !dc_clip_graphs_on(e->clip)) return DC_OK;
    /* a one-image batch's layout depends on nothing else: a blank image, twice, records it */
    const dc_clip_config *c = dc_clip_config_of(e->clip);
    float *pixels = calloc((size_t)c->num_channels * c->image_size * c->image_size, sizeof *pixels);
    float *out = malloc((size_t)c->projection_dim * sizeof *out);
    dc_status st = pixels && out ? DC_OK : dc_fail(DC_ERR_OUT_OF_MEMORY, "E10 warm-up image");
    for (int pass = 0; pass < 2 && st == DC_OK; pass++)
        st = dc_clip_image_features(e->clip, 1, pixels, out);
    free(pixels);
    free(out);
    *ran = st == DC_OK;
    return st;
}

const char *dc_e10_backend_desc(const dc_model *m) {
    if (!m || !m->loaded || m->vt != &e10_vt) return "";
    return ((const e10 *)m->impl)->backend_desc;
}

dc_status dc_e10_embed_unchecked(dc_model *m, const dc_input *inputs, size_t n,
                                 dc_model_embedding *out) {
    if (!m || !m->loaded || m->vt != &e10_vt)
        return dc_fail(DC_ERR_NOT_INITIALIZED, "embed: not a loaded E10 model");
    if (n) memset(out, 0, n * sizeof *out);
    return e10_embed(m, inputs, n, out);
}

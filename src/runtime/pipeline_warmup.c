/* Warm-up (seed S16): each loaded model and the fusion at the configured batch shapes, so the
 * first real request does not pay for first-touch page faults, lazily built kernels and cold
 * caches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/pretrained.h"
#include "runtime/pipeline_internal.h"

static const char *const words[] = {"the", "quick", "brown", "fox", "jumps", "over", "lazy",
                                    "dog", "embedding", "pipeline", "model", "vector", "token",
                                    "search", "query", "document", "graph", "entity", "time"};

/* Deterministic synthetic text of about `nwords` words (seed 42). */
static size_t synth_text(uint64_t seed, size_t nwords, char *buf, size_t cap) {
    size_t len = 0;
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 42;
    for (size_t i = 0; i < nwords; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        const char *w = words[x % (sizeof words / sizeof *words)];
        int n = snprintf(buf + len, cap - len, "%s%s", i ? " " : "", w);
        if (n < 0 || (size_t)n >= cap - len) break;
        len += (size_t)n;
    }
    return len;
}

static void make_inputs(dc_model_id id, size_t n, dc_input *ins, char (*texts)[512]) {
    for (size_t i = 0; i < n; i++) {
        size_t len = synth_text(i + 1, 8 + (i * 13) % 48, texts[i], sizeof texts[i]);
        ins[i] = dc_model_accepts(id, DC_INPUT_TEXT) ? dc_input_text(texts[i], len, DC_ROLE_PASSAGE)
                                                     : dc_input_code(texts[i], len, NULL);
        ins[i].has_t_event = true;
        ins[i].t_event = 1700000000.0 + (double)i * 3600.0;
        ins[i].has_t_ref = true;
        ins[i].t_ref = 1700100000.0;
        ins[i].has_position = true;
        ins[i].position = (int64_t)i;
    }
}

static size_t shapes_for(uint32_t maxb, uint32_t out[4]) {
    static const uint32_t base[3] = {1, 4, 16};
    size_t k = 0;
    for (int i = 0; i < 3; i++)
        if (base[i] < maxb) out[k++] = base[i];
    out[k++] = maxb;
    return k;
}

static void warm_model(dc_pipeline *p, dc_model_id id, dc_warmup_model *r) {
    memset(r, 0, sizeof *r);
    dc_rt_model *m = NULL;
    if (!dc_model_accepts(id, DC_INPUT_TEXT) && !dc_model_accepts(id, DC_INPUT_CODE)) return;
    if (dc_registry_acquire(p->reg, id, false, &m) != DC_OK) {
        dc_error_clear();
        return; /* not loaded: nothing to warm (lazy loading warms on first use) */
    }
    uint32_t maxb = p->cfg.batch.max_batch_size;
    if (p->cfg.models.model[id].max_batch_size < maxb) maxb = p->cfg.models.model[id].max_batch_size;
    uint32_t shapes[4];
    size_t ns = shapes_for(maxb, shapes);
    dc_input *ins = malloc(maxb * sizeof *ins);
    char(*texts)[512] = malloc((size_t)maxb * sizeof *texts);
    dc_model_embedding *outs = calloc(maxb, sizeof *outs);
    uint64_t t0 = dc_rt_now_ns();
    r->status = ins && texts && outs ? DC_OK : dc_fail(DC_ERR_OUT_OF_MEMORY, "warm-up inputs");
    for (size_t s = 0; s < ns && r->status == DC_OK; s++) {
        make_inputs(id, shapes[s], ins, texts);
        uint64_t b0 = dc_rt_now_ns();
        r->status = dc_model_embed_batch(m->model, ins, shapes[s], outs);
        uint64_t us = (dc_rt_now_ns() - b0) / 1000;
        if (s == 0) r->first_us = us;
        r->final_us = us;
        if (r->status == DC_OK) {
            r->samples += shapes[s];
            for (uint32_t i = 0; i < shapes[s]; i++) dc_model_embedding_free(&outs[i]);
        }
    }
    /* a second single-item pass: "final" is the steady state at batch 1 */
    if (r->status == DC_OK) {
        uint64_t b0 = dc_rt_now_ns();
        r->status = dc_model_embed_batch(m->model, ins, 1, outs);
        r->final_us = (dc_rt_now_ns() - b0) / 1000;
        if (r->status == DC_OK) dc_model_embedding_free(&outs[0]);
    }
    /* the recorded forwards (CUDA graphs) of single inputs of every padded length */
    if (r->status == DC_OK)
        r->status = dc_pretrained_warm_graphs(m->model, DC_WARMUP_GRAPH_TOKENS, &r->graph_layouts);
    r->duration_us = (dc_rt_now_ns() - t0) / 1000;
    r->warmed = r->status == DC_OK;
    if (!r->warmed)
        dc_rt_log(&p->log, DC_RT_LOG_WARN, "warm-up of %s failed: %s", dc_model_info_get(id)->label,
                  dc_error_detail());
    free(ins);
    free(texts);
    free(outs);
    dc_registry_release(p->reg, m);
}

static dc_status warm_fusion(dc_pipeline *p, uint64_t *us) {
    uint32_t maxb = p->cfg.batch.max_batch_size, shapes[4];
    size_t ns = shapes_for(maxb, shapes);
    dc_concat_embedding *c = malloc((size_t)maxb * sizeof *c);
    const dc_concat_embedding **ptr = malloc(maxb * sizeof *ptr);
    dc_fused_embedding *f = calloc(maxb, sizeof *f);
    dc_status st = c && ptr && f ? DC_OK : dc_fail(DC_ERR_OUT_OF_MEMORY, "fusion warm-up");
    uint64_t t0 = dc_rt_now_ns();
    float *v = malloc(DC_DIM_CONCATENATED * sizeof *v);
    if (!v && st == DC_OK) st = dc_fail(DC_ERR_OUT_OF_MEMORY, "fusion warm-up");
    for (uint32_t i = 0; st == DC_OK && i < maxb; i++) {
        dc_hash128 h = {i, 42};
        dc_concat_init(&c[i], h);
        uint64_t x = i + 1;
        for (uint32_t k = 0; k < DC_DIM_CONCATENATED; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            v[k] = (float)((double)(x >> 40) / 16777216.0 - 0.5);
        }
        for (int m = 0; m < DC_NUM_MODELS && st == DC_OK; m++) {
            const dc_model_info *info = dc_model_info_get((dc_model_id)m);
            dc_model_embedding e = {.model = (dc_model_id)m, .vector = v + info->offset, .dim = info->dim};
            st = dc_concat_set(&c[i], &e);
        }
        ptr[i] = &c[i];
    }
    for (size_t s = 0; s < ns && st == DC_OK; s++) {
        st = dc_fusemoe_forward(p->fusion, ptr, shapes[s], f);
        for (uint32_t i = 0; i < shapes[s]; i++) dc_fused_free(&f[i]);
    }
    *us = (dc_rt_now_ns() - t0) / 1000;
    free(v);
    free(c);
    free(ptr);
    free(f);
    return st;
}

typedef struct warm_arg {
    dc_pipeline *p;
    dc_model_id id;
    dc_warmup_model *r;
} warm_arg;

static void *warm_thread(void *a) {
    warm_arg *w = a;
    warm_model(w->p, w->id, w->r);
    return NULL;
}

dc_status dc_pipeline_warmup(dc_pipeline *p, dc_warmup_report *out) {
    if (!p || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "warm-up: NULL argument");
    memset(out, 0, sizeof *out);
    uint64_t t0 = dc_rt_now_ns();
    /* models warm in parallel, as they run in production (one executor each) */
    pthread_t th[DC_NUM_MODELS];
    warm_arg args[DC_NUM_MODELS];
    bool started[DC_NUM_MODELS] = {false};
    uint32_t loaded = dc_registry_loaded_mask(p->reg);
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        if (!((loaded >> i) & 1u)) continue;
        args[i] = (warm_arg){p, (dc_model_id)i, &out->model[i]};
        if (pthread_create(&th[i], NULL, warm_thread, &args[i]) == 0) started[i] = true;
        else warm_model(p, (dc_model_id)i, &out->model[i]);
    }
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        if (started[i]) pthread_join(th[i], NULL);
        if (out->model[i].warmed) out->models_warmed++;
        else if ((loaded >> i) & 1u && out->model[i].status != DC_OK) out->models_failed++;
    }
    dc_status st = warm_fusion(p, &out->fusion_us);
    out->fusion_warmed = st == DC_OK;
    out->total_us = (dc_rt_now_ns() - t0) / 1000;
    pthread_mutex_lock(&p->warm_mu);
    p->warm = *out;
    pthread_mutex_unlock(&p->warm_mu);
    dc_rt_log(&p->log, DC_RT_LOG_INFO, "warm-up: %u models in %.1f ms, fusion %.1f ms",
              out->models_warmed, (double)out->total_us / 1000.0, (double)out->fusion_us / 1000.0);
    return st != DC_OK ? dc_fail_context(DC_ERR_FUSION, "fusion warm-up") : DC_OK;
}

void dc_pipeline_warmup_report(dc_pipeline *p, dc_warmup_report *out) {
    if (!out) return;
    memset(out, 0, sizeof *out);
    if (!p) return;
    pthread_mutex_lock(&p->warm_mu);
    *out = p->warm;
    pthread_mutex_unlock(&p->warm_mu);
}

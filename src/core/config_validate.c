/* Configuration validation (seed F12–F15 plus the rules the rest of dodeca relies on). Every
 * failure names the key, its value, and where the value was set. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/config_internal.h"
#include "core/error.h"
#include "privacy/custom.h"

/* Fails naming the keys; the location prefix is the first of key_a / key_b that was not left
 * at its default (that is the line the user has to change). */
static dc_status vfail(const dc_config *c, const char *key_a, const char *key_b, const char *fmt,
                       ...) DC_PRINTF(4, 5);
static dc_status vfail(const dc_config *c, const char *key_a, const char *key_b, const char *fmt,
                       ...) {
    char msg[512], where[DC_CONFIG_PATH_MAX + 64] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *keys[2] = {key_a, key_b};
    for (int i = 0; i < 2 && !where[0]; i++) {
        dc_cfg_setting s;
        if (keys[i] && dc_cfg_lookup(keys[i], &s)) dc_cfg_where(c, s.index, where, sizeof where);
    }
    return dc_fail(DC_ERR_CONFIG, "%s%s", where, msg);
}

static bool finite_at_least(double v, double lo) {
    return isfinite(v) && v >= lo;
}

/* Pooling / normalize overrides make sense only where a vector is pooled from encoder token
 * rows by a choice of recipe: E1, E5, E7, E8, E11. E2-E4 and E9 pool nothing, E6 (SPLADE) is max
 * over the MLM logits by definition, E10 (CLIP) pools EOS/CLS as part of its architecture, E12
 * (ColBERT) pools its own normalised token rows. */
static bool takes_pooling_override(dc_model_id id) {
    return id == DC_MODEL_SEMANTIC || id == DC_MODEL_CAUSAL || id == DC_MODEL_CODE ||
           id == DC_MODEL_GRAPH || id == DC_MODEL_ENTITY;
}

static dc_status validate_pooling(const dc_config *c, dc_model_id id, const dc_model_config *mc) {
    const dc_model_info *info = dc_model_info_get(id);
    char key[96];
    if ((unsigned)mc->pooling > DC_POOLING_LASTTOKEN) {
        snprintf(key, sizeof key, "models.%s.pooling", info->name);
        return vfail(c, key, NULL, "%s has an invalid value %d", key, (int)mc->pooling);
    }
    if ((unsigned)mc->normalize > DC_NORMALIZE_FALSE) {
        snprintf(key, sizeof key, "models.%s.normalize", info->name);
        return vfail(c, key, NULL, "%s has an invalid value %d", key, (int)mc->normalize);
    }
    if (takes_pooling_override(id)) return DC_OK;
    if (mc->pooling != DC_POOLING_AUTO) {
        snprintf(key, sizeof key, "models.%s.pooling", info->name);
        return vfail(c, key, NULL,
                     "%s = \"%s\": %s (%s) has a fixed pooling; only semantic, causal, code, "
                     "graph and entity take an override (use \"auto\")",
                     key, dc_pooling_mode_name(mc->pooling), info->label, info->name);
    }
    if (mc->normalize != DC_NORMALIZE_AUTO) {
        snprintf(key, sizeof key, "models.%s.normalize", info->name);
        return vfail(c, key, NULL,
                     "%s = \"%s\": %s (%s) has a fixed normalisation; only semantic, causal, "
                     "code, graph and entity take an override (use \"auto\")",
                     key, dc_normalize_mode_name(mc->normalize), info->label, info->name);
    }
    return DC_OK;
}

static dc_status validate_models(const dc_config *c) {
    const dc_models_config *m = &c->models;
    if (!m->models_dir[0])
        return vfail(c, "models.models_dir", NULL, "models.models_dir must not be empty");
    if (m->max_concurrent_loads == 0)
        return vfail(c, "models.max_concurrent_loads", NULL,
                     "models.max_concurrent_loads (0) must be at least 1");
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        const dc_model_config *mc = &m->model[i];
        const dc_model_info *info = dc_model_info_get((dc_model_id)i);
        char key[96];
        if (!mc->enabled && i == DC_MODEL_SEMANTIC) {
            snprintf(key, sizeof key, "models.%s.enabled", info->name);
            return vfail(c, key, NULL,
                         "%s = false: the semantic model (E1) is required by the pipeline", key);
        }
        if ((unsigned)mc->device.kind > DC_DEVICE_CUDA ||
            (unsigned)mc->quantization > DC_QUANTIZATION_MXFP4) {
            snprintf(key, sizeof key, "models.%s", info->name);
            return vfail(c, NULL, NULL, "[%s] has an invalid device or quantization value", key);
        }
        if (mc->max_batch_size == 0) {
            snprintf(key, sizeof key, "models.%s.max_batch_size", info->name);
            return vfail(c, key, NULL, "%s (0) must be at least 1", key);
        }
        if (mc->max_tokens > info->max_tokens) {
            snprintf(key, sizeof key, "models.%s.max_tokens", info->name);
            if (info->max_tokens == 0)
                return vfail(c, key, NULL, "%s (%u) must be 0: %s takes no text", key,
                             (unsigned)mc->max_tokens, info->name);
            return vfail(c, key, NULL, "%s (%u) exceeds the model's limit of %u", key,
                         (unsigned)mc->max_tokens, (unsigned)info->max_tokens);
        }
        dc_status st = validate_pooling(c, (dc_model_id)i, mc);
        if (st != DC_OK) return st;
        if (mc->device.kind == DC_DEVICE_CUDA) {
            snprintf(key, sizeof key, "models.%s.device", info->name);
            if (!c->gpu.enabled)
                return vfail(c, key, "gpu.enabled", "%s = \"cuda:%u\" but gpu.enabled = false", key,
                             (unsigned)mc->device.index);
            bool listed = false;
            for (uint32_t g = 0; g < c->gpu.device_count; g++)
                listed = listed || c->gpu.device_ids[g] == mc->device.index;
            if (!listed)
                return vfail(c, key, "gpu.device_ids", "%s = \"cuda:%u\" is not in gpu.device_ids",
                             key, (unsigned)mc->device.index);
        }
    }
    for (uint32_t i = 0; i < m->preload_count; i++) {
        dc_model_id id = m->preload[i];
        if ((unsigned)id >= DC_NUM_MODELS)
            return vfail(c, "models.preload", NULL, "models.preload has an invalid model id %d",
                         (int)id);
        if (!m->model[id].enabled) {
            char key[96];
            snprintf(key, sizeof key, "models.%s.enabled", dc_model_info_get(id)->name);
            return vfail(c, "models.preload", key, "models.preload lists \"%s\" but %s = false",
                         dc_model_info_get(id)->name, key);
        }
        for (uint32_t j = 0; j < i; j++)
            if (m->preload[j] == id)
                return vfail(c, "models.preload", NULL, "models.preload lists \"%s\" twice",
                             dc_model_info_get(id)->name);
    }
    return DC_OK;
}

static dc_status validate_batch(const dc_config *c) {
    const dc_batch_config *b = &c->batch;
    if (b->max_batch_size == 0)
        return vfail(c, "batch.max_batch_size", NULL, "batch.max_batch_size (0) must be > 0");
    if (b->min_batch_size == 0)
        return vfail(c, "batch.min_batch_size", NULL, "batch.min_batch_size (0) must be >= 1");
    if (b->min_batch_size > b->max_batch_size)
        return vfail(c, "batch.min_batch_size", "batch.max_batch_size",
                     "batch.min_batch_size (%u) > batch.max_batch_size (%u)",
                     (unsigned)b->min_batch_size, (unsigned)b->max_batch_size);
    if (b->min_batch_size > 1 && b->max_wait_ms == 0)
        return vfail(c, "batch.max_wait_ms", "batch.min_batch_size",
                     "batch.max_wait_ms (0) must be > 0 when batch.min_batch_size (%u) > 1, or a "
                     "partial batch would wait forever",
                     (unsigned)b->min_batch_size);
    if ((unsigned)b->padding_strategy > DC_PADDING_BUCKET)
        return vfail(c, NULL, NULL, "batch.padding_strategy has an invalid value %d",
                     (int)b->padding_strategy);
    if (b->max_tokens_per_batch == 0)
        return vfail(c, "batch.max_tokens_per_batch", NULL,
                     "batch.max_tokens_per_batch (0) must be > 0");
    if (b->queue_capacity < b->max_batch_size)
        return vfail(c, "batch.queue_capacity", "batch.max_batch_size",
                     "batch.queue_capacity (%u) < batch.max_batch_size (%u): a full batch could "
                     "never queue",
                     (unsigned)b->queue_capacity, (unsigned)b->max_batch_size);
    if (b->padding_strategy == DC_PADDING_BUCKET && b->bucket_count == 0)
        return vfail(c, "batch.bucket_sizes", "batch.padding_strategy",
                     "batch.padding_strategy = \"bucket\" needs a non-empty batch.bucket_sizes");
    for (uint32_t i = 0; i < b->bucket_count; i++) {
        if (b->bucket_sizes[i] == 0)
            return vfail(c, "batch.bucket_sizes", NULL, "batch.bucket_sizes[%u] is 0", (unsigned)i);
        if (i > 0 && b->bucket_sizes[i] <= b->bucket_sizes[i - 1])
            return vfail(c, "batch.bucket_sizes", NULL,
                         "batch.bucket_sizes must increase (%u after %u)",
                         (unsigned)b->bucket_sizes[i], (unsigned)b->bucket_sizes[i - 1]);
    }
    return DC_OK;
}

/* A string setting that must be one of `names` (NULL-terminated). */
static dc_status vname(const dc_config *c, const char *key, const char *value,
                       const char *const *names) {
    char list[160] = "";
    for (const char *const *n = names; *n; n++) {
        if (!strcmp(value, *n)) return DC_OK;
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s\"%s\"", used ? ", " : "", *n);
    }
    return vfail(c, key, NULL, "%s = \"%s\" is not one of %s", key, value, list);
}

static dc_status validate_fusion(const dc_config *c) {
    const dc_fusion_config *f = &c->fusion;
    if (f->num_experts == 0 || f->num_experts > DC_NUM_EXPERTS)
        return vfail(c, "fusion.num_experts", NULL,
                     "fusion.num_experts (%u) must be between 1 and %d", (unsigned)f->num_experts,
                     DC_NUM_EXPERTS);
    if (f->top_k < 1 || f->top_k > f->num_experts)
        return vfail(c, "fusion.top_k", "fusion.num_experts",
                     "fusion.top_k (%u) must be between 1 and fusion.num_experts (%u)",
                     (unsigned)f->top_k, (unsigned)f->num_experts);
    if (f->output_dim != DC_DIM_FUSED)
        return vfail(c, "fusion.output_dim", NULL,
                     "fusion.output_dim (%u) must be %d: the fused vector has that width",
                     (unsigned)f->output_dim, DC_DIM_FUSED);
    if (f->expert_hidden_dim == 0)
        return vfail(c, "fusion.expert_hidden_dim", NULL,
                     "fusion.expert_hidden_dim (0) must be > 0");
    if (!isfinite(f->temperature) || f->temperature <= 0)
        return vfail(c, "fusion.temperature", NULL, "fusion.temperature (%g) must be > 0",
                     f->temperature);
    if (!finite_at_least(f->capacity_factor, 1.0))
        return vfail(c, "fusion.capacity_factor", NULL,
                     "fusion.capacity_factor (%g) must be >= 1.0", f->capacity_factor);
    if (!finite_at_least(f->laplace_alpha, 0.0))
        return vfail(c, "fusion.laplace_alpha", NULL, "fusion.laplace_alpha (%g) must be >= 0",
                     f->laplace_alpha);
    if (!finite_at_least(f->noise_std, 0.0))
        return vfail(c, "fusion.noise_std", NULL, "fusion.noise_std (%g) must be >= 0",
                     f->noise_std);
    if (!finite_at_least(f->load_balance_coef, 0.0))
        return vfail(c, "fusion.load_balance_coef", NULL,
                     "fusion.load_balance_coef (%g) must be >= 0", f->load_balance_coef);
    static const char *const gatings[] = {"softmax", "laplace", NULL};
    static const char *const inits[] = {"zeros",           "xavier_uniform", "xavier_normal",
                                        "kaiming_uniform", "kaiming_normal", "orthogonal",
                                        NULL};
    static const char *const dtypes[] = {"f32", "bf16", NULL};
    dc_status st = DC_OK;
    if ((st = vname(c, "fusion.gating", f->gating, gatings)) ||
        (st = vname(c, "fusion.gate_init", f->gate_init, inits)) ||
        (st = vname(c, "fusion.expert_init", f->expert_init, inits)) ||
        (st = vname(c, "fusion.output_init", f->output_init, inits)) ||
        (st = vname(c, "fusion.weights", f->weights, dtypes)))
        return st;
    if ((unsigned)f->device.kind > DC_DEVICE_CUDA)
        return vfail(c, "fusion.device", NULL, "fusion.device has an invalid value");
    if (f->device.kind == DC_DEVICE_CUDA) {
        if (!c->gpu.enabled)
            return vfail(c, "fusion.device", "gpu.enabled",
                         "fusion.device = \"cuda:%u\" but gpu.enabled = false",
                         (unsigned)f->device.index);
        bool listed = false;
        for (uint32_t g = 0; g < c->gpu.device_count; g++)
            listed = listed || c->gpu.device_ids[g] == f->device.index;
        if (!listed)
            return vfail(c, "fusion.device", "gpu.device_ids",
                         "fusion.device = \"cuda:%u\" is not in gpu.device_ids",
                         (unsigned)f->device.index);
    }
    if (f->jl_nnz == 0 || f->jl_nnz > 64 || DC_DIM_FUSED % f->jl_nnz != 0)
        return vfail(c, "fusion.jl_nnz", NULL,
                     "fusion.jl_nnz (%u) must divide %d and be between 1 and 64",
                     (unsigned)f->jl_nnz, DC_DIM_FUSED);
    if (!finite_at_least(f->came_ab_blend, 0.0) || f->came_ab_blend > 1.0)
        return vfail(c, "fusion.came_ab_blend", NULL,
                     "fusion.came_ab_blend (%g) must be between 0 and 1", f->came_ab_blend);
    if (f->came_ab_blend > 0.0 && !f->came_ab)
        return vfail(c, "fusion.came_ab_blend", "fusion.came_ab",
                     "fusion.came_ab_blend (%g) > 0 needs fusion.came_ab = true",
                     f->came_ab_blend);
    if (f->history > 64)
        return vfail(c, "fusion.history", NULL, "fusion.history (%u) must be at most 64",
                     (unsigned)f->history);
    if (f->checkpoint_strict && !f->checkpoint[0])
        return vfail(c, "fusion.checkpoint_strict", "fusion.checkpoint",
                     "fusion.checkpoint_strict = true needs fusion.checkpoint");
    double weight_sum = 0.0;
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        double w = c->models.model[i].fusion_weight;
        if (!finite_at_least(w, 0.0)) {
            char key[96];
            snprintf(key, sizeof key, "models.%s.fusion_weight",
                     dc_model_info_get((dc_model_id)i)->name);
            return vfail(c, key, NULL, "%s (%g) must be finite and >= 0", key, w);
        }
        weight_sum += w;
    }
    if (!(weight_sum > 0.0))
        return vfail(c, NULL, NULL, "every models.<name>.fusion_weight is 0: at least one "
                                    "model must count in the fusion");
    return DC_OK;
}

static dc_status validate_cache(const dc_config *c) {
    const dc_cache_config *k = &c->cache;
    if ((unsigned)k->eviction_policy > DC_EVICTION_ARC)
        return vfail(c, NULL, NULL, "cache.eviction_policy has an invalid value %d",
                     (int)k->eviction_policy);
    if (k->enabled && k->max_entries == 0)
        return vfail(c, "cache.max_entries", "cache.enabled",
                     "cache.max_entries (0) must be > 0 when the cache is enabled");
    if (k->enabled && k->max_bytes == 0)
        return vfail(c, "cache.max_bytes", "cache.enabled",
                     "cache.max_bytes (0) must be > 0 when the cache is enabled");
    if (k->persist_to_disk && !k->disk_path[0])
        return vfail(c, "cache.persist_to_disk", "cache.disk_path",
                     "cache.persist_to_disk = true needs cache.disk_path");
    if (k->eviction_policy == DC_EVICTION_TTL_LRU && k->ttl_seconds == 0)
        return vfail(c, "cache.eviction_policy", "cache.ttl_seconds",
                     "cache.eviction_policy = \"ttl_lru\" needs cache.ttl_seconds > 0");
    if (k->redis_url[0] && strncmp(k->redis_url, "redis://", 8) != 0 &&
        strncmp(k->redis_url, "rediss://", 9) != 0 && strncmp(k->redis_url, "unix://", 7) != 0)
        return vfail(c, "cache.redis_url", NULL,
                     "cache.redis_url (\"%.200s\") must start with redis://, rediss:// or unix://",
                     k->redis_url);
    return DC_OK;
}

static dc_status validate_gpu(const dc_config *c) {
    const dc_gpu_config *g = &c->gpu;
    double fr = g->memory_fraction;
    if (g->enabled && (!isfinite(fr) || fr <= 0.0 || fr > 1.0))
        return vfail(c, "gpu.memory_fraction", NULL, "gpu.memory_fraction (%g) must be in (0, 1]",
                     fr);
    if (!g->enabled && (!isfinite(fr) || fr < 0.0 || fr > 1.0))
        return vfail(c, "gpu.memory_fraction", NULL, "gpu.memory_fraction (%g) must be in [0, 1]",
                     fr);
    if (g->enabled && g->device_count == 0)
        return vfail(c, "gpu.device_ids", "gpu.enabled",
                     "gpu.device_ids must list at least one device when the GPU is enabled");
    for (uint32_t i = 0; i < g->device_count; i++)
        for (uint32_t j = 0; j < i; j++)
            if (g->device_ids[i] == g->device_ids[j])
                return vfail(c, "gpu.device_ids", NULL, "gpu.device_ids lists device %u twice",
                             (unsigned)g->device_ids[i]);
    if (g->green_partitions < 2 || g->green_partitions > 16)
        return vfail(c, "gpu.green_partitions", NULL,
                     "gpu.green_partitions (%u) must be in [2, 16]", (unsigned)g->green_partitions);
    return DC_OK;
}

static dc_status validate_server(const dc_config *c) {
    const dc_server_config *s = &c->server;
    if (!s->host[0]) return vfail(c, "server.host", NULL, "server.host must not be empty");
    if (s->port < 1 || s->port > 65535)
        return vfail(c, "server.port", NULL, "server.port (%u) must be between 1 and 65535",
                     (unsigned)s->port);
    if (s->threads > 4096)
        return vfail(c, "server.threads", NULL, "server.threads (%u) must be at most 4096",
                     (unsigned)s->threads);
    if (s->max_body_bytes == 0)
        return vfail(c, "server.max_body_bytes", NULL, "server.max_body_bytes (0) must be > 0");
    if (s->max_batch_items == 0)
        return vfail(c, "server.max_batch_items", NULL, "server.max_batch_items (0) must be > 0");
    if (s->max_input_chars == 0)
        return vfail(c, "server.max_input_chars", NULL, "server.max_input_chars (0) must be > 0");
    return DC_OK;
}

static dc_status validate_rest(const dc_config *c) {
    double r = c->trace.sample_rate;
    if (!isfinite(r) || r < 0.0 || r > 1.0)
        return vfail(c, "trace.sample_rate", NULL, "trace.sample_rate (%g) must be in [0, 1]", r);
    const char *ep = c->trace.otlp_endpoint;
    if (ep[0] && strncmp(ep, "http://", 7) && strncmp(ep, "https://", 8))
        return vfail(c, "trace.otlp_endpoint", NULL,
                     "trace.otlp_endpoint \"%s\" must start with http:// or https://", ep);
    if (c->trace.otlp_header_count > DC_CONFIG_MAX_OTLP_HEADERS)
        return vfail(c, "trace.otlp_headers", NULL, "trace.otlp_headers has more than %d entries",
                     DC_CONFIG_MAX_OTLP_HEADERS);
    for (uint32_t i = 0; i < c->trace.otlp_header_count; i++) {
        const char *h = c->trace.otlp_headers[i], *colon = strchr(h, ':');
        size_t name = colon ? (size_t)(colon - h) : 0;
        bool ok = name > 0 && strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789-_") == name && !strpbrk(h, "\r\n");
        if (!ok)
            return vfail(c, "trace.otlp_headers", NULL,
                         "trace.otlp_headers[%u] \"%.60s\" must read \"Name: value\" (letters, "
                         "digits, - and _ in the name; one line)", (unsigned)i, h);
    }
    uint32_t enabled = 0;
    for (int i = 0; i < DC_NUM_MODELS; i++) enabled += c->models.model[i].enabled ? 1u : 0u;
    uint32_t mm = c->pipeline.min_models;
    if (mm < 1 || mm > DC_NUM_MODELS)
        return vfail(c, "pipeline.min_models", NULL,
                     "pipeline.min_models (%u) must be between 1 and %d", (unsigned)mm,
                     DC_NUM_MODELS);
    if (mm > enabled)
        return vfail(c, "pipeline.min_models", NULL,
                     "pipeline.min_models (%u) exceeds the %u enabled models", (unsigned)mm,
                     (unsigned)enabled);
    return DC_OK;
}

static dc_status validate_pii(const dc_config *c) {
    const dc_pii_config *p = &c->pii;
    if ((unsigned)p->mode > DC_PII_OFF)
        return vfail(c, "pii.mode", NULL, "pii.mode has an invalid value %d", (int)p->mode);
    if ((unsigned)p->sensitivity > DC_PII_STRICT)
        return vfail(c, "pii.sensitivity", NULL, "pii.sensitivity has an invalid value %d",
                     (int)p->sensitivity);
    /* The key itself is never echoed: only its length. */
    size_t klen = strlen(p->hmac_key);
    if (klen && klen < DC_PII_HMAC_KEY_MIN)
        return vfail(c, "pii.hmac_key", NULL,
                     "pii.hmac_key is %zu bytes long; a key needs at least %d bytes", klen,
                     DC_PII_HMAC_KEY_MIN);
    if (klen && p->hmac_key_file[0])
        return vfail(c, "pii.hmac_key_file", "pii.hmac_key",
                     "set pii.hmac_key or pii.hmac_key_file, not both");
    if (p->enabled && p->mode == DC_PII_HASH && !klen && !p->hmac_key_file[0])
        return vfail(c, "pii.mode", NULL,
                     "pii.mode = \"hash\" needs a key: set pii.hmac_key or pii.hmac_key_file");
    if (p->custom_pattern_count > DC_CONFIG_MAX_PII_PATTERNS)
        return vfail(c, "pii.custom_patterns", NULL, "pii.custom_patterns has too many entries");
    for (uint32_t i = 0; i < p->custom_pattern_count; i++) {
        char why[256];
        if (!dc_pii_custom_pattern_check(p->custom_patterns[i], why, sizeof why))
            return vfail(c, "pii.custom_patterns", NULL, "pii.custom_patterns[%u]: %s",
                         (unsigned)i, why);
    }
    return DC_OK;
}

dc_status dc_config_validate(const dc_config *c) {
    if (!c) return dc_fail(DC_ERR_INVALID_ARGUMENT, "dc_config_validate: NULL config");
    dc_status st = validate_models(c);
    if (!st) st = validate_batch(c);
    if (!st) st = validate_fusion(c);
    if (!st) st = validate_cache(c);
    if (!st) st = validate_gpu(c);
    if (!st) st = validate_server(c);
    if (!st) st = validate_rest(c);
    if (!st) st = validate_pii(c);
    return st;
}

/* Configuration: enumerations, defaults, and the table of settings with the typed assignment
 * every layer goes through. The layers (file, environment, overrides) live in config_load.c,
 * validation in config_validate.c, the TOML writer in config_write.c. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/config_internal.h"
#include "core/error.h"

/* ---------------------------------------------------------------- enumerations */

/* Case-insensitive comparison that ignores '_' and '-': "DynamicMax" matches "dynamic_max". */
static bool loose_equal(const char *s, const char *name) {
    for (;;) {
        while (*s == '_' || *s == '-') s++;
        while (*name == '_') name++;
        if (!*s || !*name) return !*s && !*name;
        if (tolower((unsigned char)*s) != *name) return false;
        s++;
        name++;
    }
}

static dc_status enum_parse(const char *s, const char *const *names, int n, const char *what,
                            int *out) {
    for (int i = 0; s && i < n; i++) {
        if (loose_equal(s, names[i])) {
            *out = i;
            return DC_OK;
        }
    }
    char list[256] = "";
    for (int i = 0; i < n; i++) {
        size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, "%s%s",
                 i == 0       ? ""
                 : i + 1 == n ? " or "
                              : ", ",
                 names[i]);
    }
    return dc_fail(DC_ERR_CONFIG, "unknown %s \"%s\" (expected %s)", what, s ? s : "", list);
}

static const char *const quant_names[] = {"none", "int8", "fp16", "bf16", "fp8", "nvfp4", "mxfp4"};
static const char *const padding_names[] = {"max_length", "dynamic_max", "power_of_two", "bucket"};
static const char *const eviction_names[] = {"lru", "lfu", "ttl_lru", "arc"};
static const char *const pii_names[] = {"placeholder", "redact", "mask", "hash", "off"};
static const char *const sensitivity_names[] = {"permissive", "moderate", "strict"};
static const char *const pooling_names[] = {"auto", "mean", "cls", "max",
                                            "mean_sqrt_len", "weightedmean", "lasttoken"};
static const char *const normalize_names[] = {"auto", "true", "false"};
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

dc_status dc_quantization_parse(const char *s, dc_quantization *out) {
    int v = 0;
    dc_status st = enum_parse(s, quant_names, COUNT(quant_names), "quantization", &v);
    if (!st) *out = (dc_quantization)v;
    return st;
}
const char *dc_quantization_name(dc_quantization q) {
    return (unsigned)q < (unsigned)COUNT(quant_names) ? quant_names[q] : "unknown";
}

dc_status dc_padding_strategy_parse(const char *s, dc_padding_strategy *out) {
    int v = 0;
    dc_status st = enum_parse(s, padding_names, COUNT(padding_names), "padding strategy", &v);
    if (!st) *out = (dc_padding_strategy)v;
    return st;
}
const char *dc_padding_strategy_name(dc_padding_strategy p) {
    return (unsigned)p < (unsigned)COUNT(padding_names) ? padding_names[p] : "unknown";
}

dc_status dc_eviction_policy_parse(const char *s, dc_eviction_policy *out) {
    int v = 0;
    dc_status st = enum_parse(s, eviction_names, COUNT(eviction_names), "eviction policy", &v);
    if (!st) *out = (dc_eviction_policy)v;
    return st;
}
const char *dc_eviction_policy_name(dc_eviction_policy p) {
    return (unsigned)p < (unsigned)COUNT(eviction_names) ? eviction_names[p] : "unknown";
}

dc_status dc_pii_mode_parse(const char *s, dc_pii_mode *out) {
    int v = 0;
    dc_status st = enum_parse(s, pii_names, COUNT(pii_names), "PII mode", &v);
    if (!st) *out = (dc_pii_mode)v;
    return st;
}
const char *dc_pii_mode_name(dc_pii_mode m) {
    return (unsigned)m < (unsigned)COUNT(pii_names) ? pii_names[m] : "unknown";
}

dc_status dc_pii_sensitivity_parse(const char *s, dc_pii_sensitivity *out) {
    int v = 0;
    dc_status st =
        enum_parse(s, sensitivity_names, COUNT(sensitivity_names), "PII sensitivity", &v);
    if (!st) *out = (dc_pii_sensitivity)v;
    return st;
}
const char *dc_pii_sensitivity_name(dc_pii_sensitivity s) {
    return (unsigned)s < (unsigned)COUNT(sensitivity_names) ? sensitivity_names[s] : "unknown";
}

dc_status dc_pooling_mode_parse(const char *s, dc_pooling_mode *out) {
    int v = 0;
    dc_status st = enum_parse(s, pooling_names, COUNT(pooling_names), "pooling", &v);
    if (!st) *out = (dc_pooling_mode)v;
    return st;
}
const char *dc_pooling_mode_name(dc_pooling_mode p) {
    return (unsigned)p < (unsigned)COUNT(pooling_names) ? pooling_names[p] : "unknown";
}

dc_status dc_normalize_mode_parse(const char *s, dc_normalize_mode *out) {
    int v = 0;
    dc_status st = enum_parse(s, normalize_names, COUNT(normalize_names), "normalize", &v);
    if (!st) *out = (dc_normalize_mode)v;
    return st;
}
const char *dc_normalize_mode_name(dc_normalize_mode n) {
    return (unsigned)n < (unsigned)COUNT(normalize_names) ? normalize_names[n] : "unknown";
}

#define DC_MAX_CUDA_ORDINAL 1023

dc_status dc_device_parse(const char *s, dc_device *out) {
    static const char *const names[] = {"auto", "cpu", "cuda"};
    const char *expected = "expected auto, cpu, cuda or cuda:N";
    if (!s) return dc_fail(DC_ERR_CONFIG, "missing device (%s)", expected);
    const char *colon = strchr(s, ':');
    char head[8];
    size_t hl = colon ? (size_t)(colon - s) : strlen(s);
    if (hl >= sizeof head) return dc_fail(DC_ERR_CONFIG, "unknown device \"%s\" (%s)", s, expected);
    memcpy(head, s, hl);
    head[hl] = '\0';
    for (int i = 0; i < 3; i++) {
        if (!loose_equal(head, names[i])) continue;
        if (i != DC_DEVICE_CUDA && colon) break;
        uint32_t index = 0;
        if (colon) {
            const char *d = colon + 1;
            if (!*d) break;
            for (; *d; d++) {
                if (!isdigit((unsigned char)*d) || index > DC_MAX_CUDA_ORDINAL)
                    return dc_fail(DC_ERR_CONFIG, "bad CUDA device \"%s\" (%s, N <= %d)", s,
                                   expected, DC_MAX_CUDA_ORDINAL);
                index = index * 10 + (uint32_t)(*d - '0');
            }
            if (index > DC_MAX_CUDA_ORDINAL)
                return dc_fail(DC_ERR_CONFIG, "bad CUDA device \"%s\" (%s, N <= %d)", s, expected,
                               DC_MAX_CUDA_ORDINAL);
        }
        out->kind = (dc_device_kind)i;
        out->index = index;
        return DC_OK;
    }
    return dc_fail(DC_ERR_CONFIG, "unknown device \"%s\" (%s)", s, expected);
}

const char *dc_device_name(dc_device d, char *buf, size_t cap) {
    if (!buf || cap == 0) return "";
    switch (d.kind) {
    case DC_DEVICE_AUTO:
        snprintf(buf, cap, "auto");
        break;
    case DC_DEVICE_CPU:
        snprintf(buf, cap, "cpu");
        break;
    case DC_DEVICE_CUDA:
        snprintf(buf, cap, "cuda:%u", (unsigned)d.index);
        break;
    default:
        snprintf(buf, cap, "unknown");
        break;
    }
    return buf;
}

/* ---------------------------------------------------------------- defaults */

void dc_config_defaults(dc_config *c) {
    memset(c, 0, sizeof *c);
    dc_models_config *m = &c->models;
    snprintf(m->models_dir, sizeof m->models_dir, "./models");
    m->lazy_loading = true;
    m->auto_download = false;
    m->max_concurrent_loads = 2;
    m->memory_budget_bytes = 0;
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        dc_model_config *mc = &m->model[i];
        mc->enabled = true;
        mc->device.kind = DC_DEVICE_AUTO;
        mc->quantization = DC_QUANTIZATION_NONE;
        mc->max_batch_size = 32;
        mc->use_flash_attention = true;
        mc->max_tokens = 0;
        mc->fusion_weight = 1.0;
    }

    dc_batch_config *b = &c->batch;
    b->max_batch_size = 32;
    b->min_batch_size = 1;
    b->max_wait_ms = 50;
    b->dynamic_batching = true;
    b->padding_strategy = DC_PADDING_DYNAMIC_MAX;
    static const uint32_t buckets[] = {64, 128, 256, 512};
    memcpy(b->bucket_sizes, buckets, sizeof buckets);
    b->bucket_count = 4;
    b->sort_by_length = true;
    b->max_tokens_per_batch = 16384;
    b->queue_capacity = 1024;

    dc_fusion_config *f = &c->fusion;
    f->num_experts = DC_NUM_EXPERTS;
    f->top_k = DC_DEFAULT_TOP_K;
    f->output_dim = DC_DIM_FUSED;
    f->expert_hidden_dim = 1024;
    f->load_balance_coef = 0.01;
    f->capacity_factor = 1.25;
    f->temperature = 1.0;
    f->noise_std = 0.0;
    f->laplace_alpha = 0.01;
    f->seed = 42;
    strcpy(f->gating, "softmax");
    f->jl_nnz = 8;
    strcpy(f->gate_init, "xavier_uniform");
    strcpy(f->expert_init, "kaiming_uniform");
    strcpy(f->output_init, "zeros");
    f->checkpoint[0] = '\0';
    f->checkpoint_strict = false;
    f->verify_checksum = true;
    f->came_ab = false;
    f->came_ab_blend = 0.0;
    strcpy(f->weights, "f32");
    f->small_batch = 16;
    f->history = 4;
    f->device = (dc_device){DC_DEVICE_CPU, 0};

    dc_cache_config *k = &c->cache;
    k->enabled = true;
    k->max_entries = 100000;
    k->max_bytes = 1073741824ull;
    k->ttl_seconds = 0;
    k->eviction_policy = DC_EVICTION_LRU;
    k->persist_to_disk = false;

    dc_gpu_config *g = &c->gpu;
    g->enabled = true;
    g->device_ids[0] = 0;
    g->device_count = 1;
    g->memory_fraction = 0.9;
    g->use_cuda_graphs = true;
    g->mixed_precision = true;
    g->green_contexts = false;
    g->green_partitions = 4;
    g->direct_weights = true;

    c->pii.enabled = true;
    c->pii.mode = DC_PII_PLACEHOLDER;
    c->pii.sensitivity = DC_PII_MODERATE;

    dc_server_config *s = &c->server;
    snprintf(s->host, sizeof s->host, "127.0.0.1");
    s->port = 8080;
    s->threads = 0;
    s->max_body_bytes = 8u * 1024u * 1024u;
    s->max_batch_items = 256;
    s->max_input_chars = 262144;

    c->trace.enabled = false;
    c->trace.sample_rate = 1.0;

    c->pipeline.deadline_ms = 0;
    c->pipeline.min_models = 7;
}

uint32_t dc_config_deadline_ms(const dc_config *c, bool on_gpu) {
    if (c && c->pipeline.deadline_ms) return c->pipeline.deadline_ms;
    return on_gpu ? DC_DEADLINE_MS_GPU : DC_DEADLINE_MS_CPU;
}

/* ---------------------------------------------------------------- the settings table */

#define MEMBER_SIZE(type, member) sizeof(((type *)0)->member)
#define CF(sec, name, kind, member)                                                                \
    { sec, name, kind, offsetof(dc_config, member), MEMBER_SIZE(dc_config, member), 0, 0 }
#define CL(sec, name, kind, member, count)                                                         \
    {                                                                                              \
        sec, name, kind, offsetof(dc_config, member),                                              \
            MEMBER_SIZE(dc_config, member) / MEMBER_SIZE(dc_config, member[0]),                    \
            offsetof(dc_config, count), 0                                                          \
    }
/* A list of fixed-size strings: char member[N][M]. */
#define CS(sec, name, member, count)                                                               \
    {                                                                                              \
        sec, name, DC_CFG_STRING_LIST, offsetof(dc_config, member),                                \
            MEMBER_SIZE(dc_config, member) / MEMBER_SIZE(dc_config, member[0]),                    \
            offsetof(dc_config, count), MEMBER_SIZE(dc_config, member[0])                          \
    }
#define MF(name, kind, member)                                                                     \
    {                                                                                              \
        NULL, name, kind, offsetof(dc_model_config, member), MEMBER_SIZE(dc_model_config, member), \
            0, 0                                                                                   \
    }

const char *const dc_cfg_sections[] = {"models", "batch",  "fusion", "cache",   "gpu",
                                       "pii",    "server", "trace",  "pipeline"};
const size_t dc_cfg_section_count = sizeof dc_cfg_sections / sizeof dc_cfg_sections[0];

/* Grouped by section, in the order dc_cfg_sections lists them and the writer prints them. */
static const dc_cfg_field general_fields[] = {
    CF("models", "models_dir", DC_CFG_STRING, models.models_dir),
    CF("models", "lazy_loading", DC_CFG_BOOL, models.lazy_loading),
    CL("models", "preload", DC_CFG_MODEL_LIST, models.preload, models.preload_count),
    CF("models", "auto_download", DC_CFG_BOOL, models.auto_download),
    CF("models", "hub_endpoint", DC_CFG_STRING, models.hub_endpoint),
    CF("models", "hub_token", DC_CFG_STRING, models.hub_token),
    CF("models", "hub_cache_dir", DC_CFG_STRING, models.hub_cache_dir),
    CF("models", "max_concurrent_loads", DC_CFG_U32, models.max_concurrent_loads),
    CF("models", "memory_budget_bytes", DC_CFG_U64, models.memory_budget_bytes),

    CF("batch", "max_batch_size", DC_CFG_U32, batch.max_batch_size),
    CF("batch", "min_batch_size", DC_CFG_U32, batch.min_batch_size),
    CF("batch", "max_wait_ms", DC_CFG_U32, batch.max_wait_ms),
    CF("batch", "dynamic_batching", DC_CFG_BOOL, batch.dynamic_batching),
    CF("batch", "padding_strategy", DC_CFG_PADDING, batch.padding_strategy),
    CL("batch", "bucket_sizes", DC_CFG_U32_LIST, batch.bucket_sizes, batch.bucket_count),
    CF("batch", "sort_by_length", DC_CFG_BOOL, batch.sort_by_length),
    CF("batch", "max_tokens_per_batch", DC_CFG_U32, batch.max_tokens_per_batch),
    CF("batch", "queue_capacity", DC_CFG_U32, batch.queue_capacity),

    CF("fusion", "num_experts", DC_CFG_U32, fusion.num_experts),
    CF("fusion", "top_k", DC_CFG_U32, fusion.top_k),
    CF("fusion", "output_dim", DC_CFG_U32, fusion.output_dim),
    CF("fusion", "expert_hidden_dim", DC_CFG_U32, fusion.expert_hidden_dim),
    CF("fusion", "load_balance_coef", DC_CFG_F64, fusion.load_balance_coef),
    CF("fusion", "capacity_factor", DC_CFG_F64, fusion.capacity_factor),
    CF("fusion", "temperature", DC_CFG_F64, fusion.temperature),
    CF("fusion", "noise_std", DC_CFG_F64, fusion.noise_std),
    CF("fusion", "laplace_alpha", DC_CFG_F64, fusion.laplace_alpha),
    CF("fusion", "seed", DC_CFG_U64, fusion.seed),
    CF("fusion", "gating", DC_CFG_STRING, fusion.gating),
    CF("fusion", "jl_nnz", DC_CFG_U32, fusion.jl_nnz),
    CF("fusion", "gate_init", DC_CFG_STRING, fusion.gate_init),
    CF("fusion", "expert_init", DC_CFG_STRING, fusion.expert_init),
    CF("fusion", "output_init", DC_CFG_STRING, fusion.output_init),
    CF("fusion", "checkpoint", DC_CFG_STRING, fusion.checkpoint),
    CF("fusion", "checkpoint_strict", DC_CFG_BOOL, fusion.checkpoint_strict),
    CF("fusion", "verify_checksum", DC_CFG_BOOL, fusion.verify_checksum),
    CF("fusion", "came_ab", DC_CFG_BOOL, fusion.came_ab),
    CF("fusion", "came_ab_blend", DC_CFG_F64, fusion.came_ab_blend),
    CF("fusion", "weights", DC_CFG_STRING, fusion.weights),
    CF("fusion", "small_batch", DC_CFG_U32, fusion.small_batch),
    CF("fusion", "history", DC_CFG_U32, fusion.history),
    CF("fusion", "device", DC_CFG_DEVICE, fusion.device),

    CF("cache", "enabled", DC_CFG_BOOL, cache.enabled),
    CF("cache", "max_entries", DC_CFG_U64, cache.max_entries),
    CF("cache", "max_bytes", DC_CFG_U64, cache.max_bytes),
    CF("cache", "ttl_seconds", DC_CFG_U64, cache.ttl_seconds),
    CF("cache", "eviction_policy", DC_CFG_EVICTION, cache.eviction_policy),
    CF("cache", "persist_to_disk", DC_CFG_BOOL, cache.persist_to_disk),
    CF("cache", "disk_path", DC_CFG_STRING, cache.disk_path),
    CF("cache", "redis_url", DC_CFG_STRING, cache.redis_url),

    CF("gpu", "enabled", DC_CFG_BOOL, gpu.enabled),
    CL("gpu", "device_ids", DC_CFG_U32_LIST, gpu.device_ids, gpu.device_count),
    CF("gpu", "memory_fraction", DC_CFG_F64, gpu.memory_fraction),
    CF("gpu", "use_cuda_graphs", DC_CFG_BOOL, gpu.use_cuda_graphs),
    CF("gpu", "mixed_precision", DC_CFG_BOOL, gpu.mixed_precision),
    CF("gpu", "green_contexts", DC_CFG_BOOL, gpu.green_contexts),
    CF("gpu", "green_partitions", DC_CFG_U32, gpu.green_partitions),
    CF("gpu", "direct_weights", DC_CFG_BOOL, gpu.direct_weights),

    CF("pii", "enabled", DC_CFG_BOOL, pii.enabled),
    CF("pii", "mode", DC_CFG_PII, pii.mode),
    CF("pii", "sensitivity", DC_CFG_PII_SENSITIVITY, pii.sensitivity),
    CF("pii", "hmac_key", DC_CFG_STRING, pii.hmac_key),
    CF("pii", "hmac_key_file", DC_CFG_STRING, pii.hmac_key_file),
    CS("pii", "custom_patterns", pii.custom_patterns, pii.custom_pattern_count),

    CF("server", "host", DC_CFG_STRING, server.host),
    CF("server", "port", DC_CFG_U32, server.port),
    CF("server", "threads", DC_CFG_U32, server.threads),
    CF("server", "max_body_bytes", DC_CFG_U64, server.max_body_bytes),
    CF("server", "max_batch_items", DC_CFG_U32, server.max_batch_items),
    CF("server", "max_input_chars", DC_CFG_U64, server.max_input_chars),
    CF("server", "api_key", DC_CFG_STRING, server.api_key),

    CF("trace", "enabled", DC_CFG_BOOL, trace.enabled),
    CF("trace", "sample_rate", DC_CFG_F64, trace.sample_rate),
    CF("trace", "chrome_path", DC_CFG_STRING, trace.chrome_path),
    CF("trace", "otlp_endpoint", DC_CFG_STRING, trace.otlp_endpoint),
    CS("trace", "otlp_headers", trace.otlp_headers, trace.otlp_header_count),
    CF("trace", "otlp_ca_file", DC_CFG_STRING, trace.otlp_ca_file),

    CF("pipeline", "deadline_ms", DC_CFG_U32, pipeline.deadline_ms),
    CF("pipeline", "min_models", DC_CFG_U32, pipeline.min_models),
};

static const dc_cfg_field model_fields[] = {
    MF("enabled", DC_CFG_BOOL, enabled),
    MF("device", DC_CFG_DEVICE, device),
    MF("quantization", DC_CFG_QUANT, quantization),
    MF("max_batch_size", DC_CFG_U32, max_batch_size),
    MF("use_flash_attention", DC_CFG_BOOL, use_flash_attention),
    MF("max_tokens", DC_CFG_U32, max_tokens),
    MF("path", DC_CFG_STRING, path),
    MF("fusion_weight", DC_CFG_F64, fusion_weight),
    MF("pooling", DC_CFG_POOLING, pooling),
    MF("normalize", DC_CFG_NORMALIZE, normalize),
};

#define N_GENERAL      (sizeof general_fields / sizeof general_fields[0])
#define N_MODEL_FIELDS (sizeof model_fields / sizeof model_fields[0])
_Static_assert(N_GENERAL + DC_NUM_MODELS * N_MODEL_FIELDS <= DC_CONFIG_MAX_SETTINGS,
               "DC_CONFIG_MAX_SETTINGS must cover every setting");

size_t dc_cfg_setting_count(void) {
    return N_GENERAL + DC_NUM_MODELS * N_MODEL_FIELDS;
}

dc_cfg_setting dc_cfg_setting_at(size_t index) {
    dc_cfg_setting s = {NULL, -1, index};
    if (index < N_GENERAL) {
        s.field = &general_fields[index];
    } else if (index < dc_cfg_setting_count()) {
        size_t k = index - N_GENERAL;
        s.model = (int)(k / N_MODEL_FIELDS);
        s.field = &model_fields[k % N_MODEL_FIELDS];
    }
    return s;
}

bool dc_cfg_lookup(const char *dotted, dc_cfg_setting *out) {
    const char *dot = strchr(dotted, '.');
    if (!dot) return false;
    size_t sl = (size_t)(dot - dotted);
    const char *rest = dot + 1;
    if (sl == 6 && strncmp(dotted, "models", 6) == 0) {
        const char *dot2 = strchr(rest, '.');
        if (dot2) {
            for (int m = 0; m < DC_NUM_MODELS; m++) {
                const char *name = dc_model_info_get((dc_model_id)m)->name;
                if (strlen(name) != (size_t)(dot2 - rest) || strncmp(rest, name, strlen(name)))
                    continue;
                for (size_t k = 0; k < N_MODEL_FIELDS; k++) {
                    if (strcmp(dot2 + 1, model_fields[k].key) == 0) {
                        *out = dc_cfg_setting_at(N_GENERAL + (size_t)m * N_MODEL_FIELDS + k);
                        return true;
                    }
                }
                return false;
            }
            return false;
        }
    }
    for (size_t i = 0; i < N_GENERAL; i++) {
        const dc_cfg_field *f = &general_fields[i];
        if (strlen(f->section) == sl && strncmp(dotted, f->section, sl) == 0 &&
            strcmp(rest, f->key) == 0) {
            *out = dc_cfg_setting_at(i);
            return true;
        }
    }
    return false;
}

void dc_cfg_key_name(const dc_cfg_setting *s, char *buf, size_t cap) {
    if (s->model >= 0)
        snprintf(buf, cap, "models.%s.%s", dc_model_info_get((dc_model_id)s->model)->name,
                 s->field->key);
    else
        snprintf(buf, cap, "%s.%s", s->field->section, s->field->key);
}

void dc_cfg_env_name(const dc_cfg_setting *s, char *buf, size_t cap) {
    char key[160];
    dc_cfg_key_name(s, key, sizeof key);
    snprintf(buf, cap, "DODECA_%s", key);
    for (char *p = buf; *p; p++) *p = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
}

void *dc_cfg_ptr(dc_config *c, const dc_cfg_setting *s) {
    char *base = s->model >= 0 ? (char *)&c->models.model[s->model] : (char *)c;
    return base + s->field->offset;
}

const void *dc_cfg_cptr(const dc_config *c, const dc_cfg_setting *s) {
    return dc_cfg_ptr((dc_config *)c, s);
}

void dc_cfg_where(const dc_config *c, size_t index, char *buf, size_t cap) {
    uint32_t line = index < DC_CONFIG_MAX_SETTINGS ? c->provenance.line[index] : 0;
    dc_cfg_setting s = dc_cfg_setting_at(index);
    char env[192];
    if (line == 0 || !s.field) {
        buf[0] = '\0';
    } else if (line == DC_CONFIG_FROM_ENV) {
        dc_cfg_env_name(&s, env, sizeof env);
        snprintf(buf, cap, "environment variable %s: ", env);
    } else if (line == DC_CONFIG_FROM_OVERRIDE) {
        snprintf(buf, cap, "override: ");
    } else {
        snprintf(buf, cap, "%s:%u: ", c->provenance.file, (unsigned)line);
    }
}

/* ---------------------------------------------------------------- assigning values */

dc_status dc_cfg_fail(const char *where, const char *key, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return dc_fail(DC_ERR_CONFIG, "%s%s%s: %s", where, *where ? ": " : "", key, msg);
}

static const char *a_type(dc_toml_type t) {
    switch (t) {
    case DC_TOML_STRING:
        return "a string";
    case DC_TOML_INTEGER:
        return "an integer";
    case DC_TOML_FLOAT:
        return "a float";
    case DC_TOML_BOOLEAN:
        return "a boolean";
    case DC_TOML_ARRAY:
        return "an array";
    case DC_TOML_TABLE:
        return "a table";
    }
    return "a value";
}

static dc_status want_uint(const char *where, const char *key, const dc_toml_value *v, uint64_t max,
                           uint64_t *out) {
    if (v->type != DC_TOML_INTEGER)
        return dc_cfg_fail(where, key, "expected an integer, got %s", a_type(v->type));
    if (v->as.integer < 0)
        return dc_cfg_fail(where, key, "%lld is negative", (long long)v->as.integer);
    if ((uint64_t)v->as.integer > max)
        return dc_cfg_fail(where, key, "%lld is too large (at most %llu)", (long long)v->as.integer,
                           (unsigned long long)max);
    *out = (uint64_t)v->as.integer;
    return DC_OK;
}

static dc_status assign_list(void *p, const dc_cfg_field *f, uint32_t *count,
                             const dc_toml_value *v, const char *where, const char *key) {
    if (v->type != DC_TOML_ARRAY)
        return dc_cfg_fail(where, key, "expected an array, got %s", a_type(v->type));
    if (v->as.array.len > f->size)
        return dc_cfg_fail(where, key, "has %zu entries (at most %zu)", v->as.array.len, f->size);
    uint32_t tmp[DC_CONFIG_MAX_GPUS + DC_CONFIG_MAX_BUCKETS + DC_NUM_MODELS];
    for (size_t i = 0; i < v->as.array.len; i++) {
        const dc_toml_value *item = &v->as.array.items[i];
        if (f->kind == DC_CFG_U32_LIST) {
            uint64_t u;
            dc_status st = want_uint(where, key, item, UINT32_MAX, &u);
            if (st) return st;
            tmp[i] = (uint32_t)u;
            continue;
        }
        if (item->type != DC_TOML_STRING)
            return dc_cfg_fail(where, key, "expected model names, got %s", a_type(item->type));
        dc_model_id id;
        if (dc_model_id_parse(item->as.string.data, &id) != DC_OK)
            return dc_cfg_fail(where, key,
                               "unknown model \"%s\" (expected a name such as \"semantic\","
                               " a label such as \"E1\" or a model such as \"e5-large-v2\")",
                               item->as.string.data);
        for (size_t j = 0; j < i; j++)
            if (tmp[j] == (uint32_t)id)
                return dc_cfg_fail(where, key, "lists model \"%s\" twice",
                                   dc_model_info_get(id)->name);
        tmp[i] = (uint32_t)id;
    }
    for (size_t i = 0; i < v->as.array.len; i++) {
        if (f->kind == DC_CFG_U32_LIST)
            ((uint32_t *)p)[i] = tmp[i];
        else
            ((dc_model_id *)p)[i] = (dc_model_id)tmp[i];
    }
    *count = (uint32_t)v->as.array.len;
    return DC_OK;
}

/* All entries are checked before any is stored, so a bad entry leaves the list as it was. */
static dc_status assign_strings(void *p, const dc_cfg_field *f, uint32_t *count,
                                const dc_toml_value *v, const char *where, const char *key) {
    if (v->type != DC_TOML_ARRAY)
        return dc_cfg_fail(where, key, "expected an array of strings, got %s", a_type(v->type));
    if (v->as.array.len > f->size)
        return dc_cfg_fail(where, key, "has %zu entries (at most %zu)", v->as.array.len, f->size);
    for (size_t i = 0; i < v->as.array.len; i++) {
        const dc_toml_value *item = &v->as.array.items[i];
        if (item->type != DC_TOML_STRING)
            return dc_cfg_fail(where, key, "entry %zu: expected a string, got %s", i,
                               a_type(item->type));
        if (item->as.string.len + 1 > f->item_size)
            return dc_cfg_fail(where, key, "entry %zu is %zu bytes long (at most %zu)", i,
                               item->as.string.len, f->item_size - 1);
        if (memchr(item->as.string.data, '\0', item->as.string.len))
            return dc_cfg_fail(where, key, "entry %zu contains a NUL character", i);
    }
    char *dst = p;
    for (size_t i = 0; i < v->as.array.len; i++) {
        const dc_toml_value *item = &v->as.array.items[i];
        memcpy(dst + i * f->item_size, item->as.string.data, item->as.string.len + 1);
    }
    for (size_t i = v->as.array.len; i < f->size; i++) dst[i * f->item_size] = '\0';
    *count = (uint32_t)v->as.array.len;
    return DC_OK;
}

dc_status dc_cfg_assign(dc_config *c, const dc_cfg_setting *s, const dc_toml_value *v,
                        const char *where) {
    char key[160];
    dc_cfg_key_name(s, key, sizeof key);
    const dc_cfg_field *f = s->field;
    void *p = dc_cfg_ptr(c, s);
    uint64_t u = 0;
    dc_status st = DC_OK;
    switch (f->kind) {
    case DC_CFG_BOOL:
        if (v->type != DC_TOML_BOOLEAN)
            return dc_cfg_fail(where, key, "expected true or false, got %s", a_type(v->type));
        *(bool *)p = v->as.boolean;
        break;
    case DC_CFG_U32:
        if ((st = want_uint(where, key, v, UINT32_MAX, &u))) return st;
        *(uint32_t *)p = (uint32_t)u;
        break;
    case DC_CFG_U64:
        if ((st = want_uint(where, key, v, (uint64_t)INT64_MAX, &u))) return st;
        *(uint64_t *)p = u;
        break;
    case DC_CFG_F64:
        if (v->type == DC_TOML_INTEGER)
            *(double *)p = (double)v->as.integer;
        else if (v->type == DC_TOML_FLOAT)
            *(double *)p = v->as.floating;
        else
            return dc_cfg_fail(where, key, "expected a number, got %s", a_type(v->type));
        break;
    case DC_CFG_STRING:
        if (v->type != DC_TOML_STRING)
            return dc_cfg_fail(where, key, "expected a string, got %s", a_type(v->type));
        if (v->as.string.len + 1 > f->size)
            return dc_cfg_fail(where, key, "is %zu bytes long (at most %zu)", v->as.string.len,
                               f->size - 1);
        memcpy(p, v->as.string.data, v->as.string.len + 1);
        break;
    case DC_CFG_DEVICE:
    case DC_CFG_QUANT:
    case DC_CFG_PADDING:
    case DC_CFG_EVICTION:
    case DC_CFG_PII:
    case DC_CFG_PII_SENSITIVITY:
    case DC_CFG_POOLING:
    case DC_CFG_NORMALIZE: {
        /* normalize = true / false reads as the string would */
        if (f->kind == DC_CFG_NORMALIZE && v->type == DC_TOML_BOOLEAN) {
            *(dc_normalize_mode *)p = v->as.boolean ? DC_NORMALIZE_TRUE : DC_NORMALIZE_FALSE;
            break;
        }
        if (v->type != DC_TOML_STRING)
            return dc_cfg_fail(where, key, "expected a string, got %s", a_type(v->type));
        const char *text = v->as.string.data;
        if (f->kind == DC_CFG_DEVICE)
            st = dc_device_parse(text, (dc_device *)p);
        else if (f->kind == DC_CFG_QUANT)
            st = dc_quantization_parse(text, (dc_quantization *)p);
        else if (f->kind == DC_CFG_PADDING)
            st = dc_padding_strategy_parse(text, (dc_padding_strategy *)p);
        else if (f->kind == DC_CFG_EVICTION)
            st = dc_eviction_policy_parse(text, (dc_eviction_policy *)p);
        else if (f->kind == DC_CFG_PII)
            st = dc_pii_mode_parse(text, (dc_pii_mode *)p);
        else if (f->kind == DC_CFG_POOLING)
            st = dc_pooling_mode_parse(text, (dc_pooling_mode *)p);
        else if (f->kind == DC_CFG_NORMALIZE)
            st = dc_normalize_mode_parse(text, (dc_normalize_mode *)p);
        else
            st = dc_pii_sensitivity_parse(text, (dc_pii_sensitivity *)p);
        if (st) return dc_fail_context(DC_ERR_CONFIG, "%s%s%s", where, *where ? ": " : "", key);
        break;
    }
    case DC_CFG_U32_LIST:
    case DC_CFG_MODEL_LIST: {
        uint32_t *count =
            (uint32_t *)((s->model >= 0 ? (char *)&c->models.model[s->model] : (char *)c) +
                         f->count_offset);
        if ((st = assign_list(p, f, count, v, where, key))) return st;
        break;
    }
    case DC_CFG_STRING_LIST: {
        uint32_t *count = (uint32_t *)((char *)c + f->count_offset);
        if ((st = assign_strings(p, f, count, v, where, key))) return st;
        break;
    }
    }
    return DC_OK;
}

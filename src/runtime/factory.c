/* Built-in factory: custom models from their options, pretrained ones from folders. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <xxhash.h>

#include "models/custom.h"
#include "models/encoder_model.h"
#include "models/pretrained.h"
#include "runtime/factory.h"
#include "runtime/registry.h"

bool dc_builtin_is_pretrained(dc_model_id id) {
    const dc_model_info *info = dc_model_info_get(id);
    return info && info->kind == DC_MODEL_KIND_PRETRAINED && dc_pretrained_supports(id);
}

static bool is_file(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* A usable folder: resolves (hub layout) and holds config.json. */
static bool folder_ok(const char *dir) {
    char res[DC_FOLDER_MAX], cfgp[DC_FOLDER_MAX + 16];
    dc_error_clear();
    if (dc_model_dir_resolve(dir, res, sizeof res) != DC_OK) return false;
    snprintf(cfgp, sizeof cfgp, "%s/config.json", res);
    return is_file(cfgp);
}

dc_status dc_model_folder_find(dc_model_id id, const dc_model_config *cfg, const char *models_dir,
                               char *out, size_t cap) {
    const dc_model_info *info = dc_model_info_get(id);
    if (!info) return dc_fail(DC_ERR_MODEL_NOT_FOUND, "model id %d is out of range", (int)id);
    if (cfg && cfg->path[0]) {
        if (!folder_ok(cfg->path))
            return dc_fail(DC_ERR_MODEL_NOT_FOUND,
                           "models.%s.path: %s is not a model folder (no config.json)",
                           info->name, cfg->path);
        snprintf(out, cap, "%s", cfg->path);
        return DC_OK;
    }
    const char *base = models_dir && models_dir[0] ? models_dir : ".";
    char hub[512] = "", repo_name[256] = "";
    if (info->repo) {
        /* "org/name" → "models--org--name" (the huggingface_hub cache folder) and "name" */
        snprintf(hub, sizeof hub, "models--%s", info->repo);
        for (char *s = strchr(hub + 8, '/'); s; s = strchr(s, '/')) {
            memmove(s + 2, s + 1, strlen(s + 1) + 1);
            s[0] = s[1] = '-';
        }
        const char *slash = strrchr(info->repo, '/');
        snprintf(repo_name, sizeof repo_name, "%s", slash ? slash + 1 : info->repo);
    }
    const char *cands[5][2] = {{"", info->name},      {"", info->short_name}, {"", repo_name},
                               {"", hub},             {"hub/", hub}};
    for (size_t i = 0; i < 5; i++) {
        if (!cands[i][1] || !cands[i][1][0]) continue;
        int n = snprintf(out, cap, "%s/%s%s", base, cands[i][0], cands[i][1]);
        if (n < 0 || (size_t)n >= cap) continue;
        if (folder_ok(out)) return DC_OK;
    }
    out[0] = 0;
    return dc_fail(DC_ERR_MODEL_NOT_FOUND,
                   "%s (%s): no model folder under %s (looked for %s, %s, %s%s%s)", info->label,
                   info->name, base, info->name, info->short_name, hub[0] ? hub : "",
                   hub[0] ? " and hub/" : "", hub);
}

/* Sum of the weight files' sizes in a resolved folder (0 when none found). */
static uint64_t weights_bytes(const char *dir, uint64_t *mtime_sum) {
    static const char *const names[] = {"model.safetensors", "pytorch_model.bin",
                                        "model.safetensors.index.json"};
    uint64_t total = 0;
    if (mtime_sum) *mtime_sum = 0;
    for (size_t i = 0; i < 3; i++) {
        char p[DC_FOLDER_MAX + 64];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        if (stat(p, &sb) != 0) continue;
        total += (uint64_t)sb.st_size;
        if (mtime_sum)
            *mtime_sum += (uint64_t)sb.st_mtim.tv_sec * 1000000000ull + (uint64_t)sb.st_mtim.tv_nsec;
    }
    return total;
}

dc_hash128 dc_registry_config_version(dc_model_id id, const dc_model_config *cfg,
                                      const char *models_dir) {
    XXH3_state_t *st = XXH3_createState();
    dc_hash128 h = {0, 0};
    if (!st) return h;
    XXH3_128bits_reset(st);
    static const char tag[] = "dodeca-model-version-1";
    XXH3_128bits_update(st, tag, sizeof tag);
    uint32_t v[3] = {(uint32_t)id, cfg ? cfg->max_tokens : 0,
                     cfg ? (uint32_t)cfg->quantization : 0};
    XXH3_128bits_update(st, v, sizeof v);
    if (cfg && cfg->path[0]) XXH3_128bits_update(st, cfg->path, strlen(cfg->path));
    if (cfg && (cfg->pooling != DC_POOLING_AUTO || cfg->normalize != DC_NORMALIZE_AUTO)) {
        uint32_t ov[2] = {(uint32_t)cfg->pooling, (uint32_t)cfg->normalize}; /* auto: unchanged */
        XXH3_128bits_update(st, ov, sizeof ov);
    }
    if (dc_builtin_is_pretrained(id)) {
        char dir[DC_FOLDER_MAX], res[DC_FOLDER_MAX];
        dc_error_clear();
        if (dc_model_folder_find(id, cfg, models_dir, dir, sizeof dir) == DC_OK &&
            dc_model_dir_resolve(dir, res, sizeof res) == DC_OK) {
            /* the resolved snapshot path names the revision; size and mtime name the bytes */
            uint64_t mt = 0, sz = weights_bytes(res, &mt);
            XXH3_128bits_update(st, res, strlen(res));
            XXH3_128bits_update(st, &sz, sizeof sz);
            XXH3_128bits_update(st, &mt, sizeof mt);
        }
    }
    XXH128_hash_t r = XXH3_128bits_digest(st);
    XXH3_freeState(st);
    h.lo = r.low64;
    h.hi = r.high64;
    return h;
}

static dc_status fx_create(void *ctx, dc_model_id id, const dc_model_config *cfg, dc_model **out) {
    dc_builtin_factory *f = ctx;
    const dc_model_info *info = dc_model_info_get(id);
    *out = NULL;
    const bool pretrained = dc_builtin_is_pretrained(id);
    if (!pretrained && cfg && cfg->device.kind == DC_DEVICE_CUDA)
        return dc_fail(DC_ERR_GPU, "models.%s.device = cuda:%u: %s has no CUDA implementation "
                       "(it runs on the CPU: use \"cpu\" or \"auto\")",
                       info->name, cfg->device.index, info->label);
    if (!pretrained && cfg && cfg->quantization != DC_QUANTIZATION_NONE)
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT,
                       "models.%s.quantization = %s: %s has no weights to quantise", info->name,
                       dc_quantization_name(cfg->quantization), info->label);
    /* device and weight format (an unusable cuda:N or format fails here, naming the key) */
    dc_pretrained_options place = {0};
    if (pretrained) {
        dc_status st = dc_pretrained_place(id, cfg, &f->gpu, &place);
        if (st != DC_OK) return st;
    }
    char where[256];
    if (place.device.kind == DC_DEVICE_CUDA)
        snprintf(where, sizeof where, "cuda:%u (%s)", place.device.index,
                 dc_weight_format_name(place.weights));
    else if (place.device.note[0])
        snprintf(where, sizeof where, "cpu (auto: %.200s)", place.device.note);
    else
        snprintf(where, sizeof where, "cpu");
    pthread_mutex_lock(&f->placed_mu);
    snprintf(f->placed[id], sizeof f->placed[id], "%s", where);
    pthread_mutex_unlock(&f->placed_mu);
    switch (id) {
    case DC_MODEL_TEMPORAL_RECENT: return dc_temporal_recent_create(NULL, out);
    case DC_MODEL_TEMPORAL_PERIODIC: return dc_temporal_periodic_create(NULL, out);
    case DC_MODEL_TEMPORAL_POSITIONAL: return dc_temporal_positional_create(NULL, out);
    case DC_MODEL_HDC: {
        dc_hdc_options o = dc_hdc_options_default();
        if (cfg && cfg->max_tokens) o.max_chars = cfg->max_tokens;
        return dc_hdc_create(&o, out);
    }
    default: break;
    }
    if (!pretrained)
        return dc_fail(DC_ERR_MODEL_NOT_FOUND, "%s (%s) is not implemented in this build",
                       info->label, info->name);
    char dir[DC_FOLDER_MAX];
    if (cfg && cfg->path[0]) {
        dc_status st = dc_model_folder_find(id, cfg, f->models_dir, dir, sizeof dir);
        if (st != DC_OK) return st;
    } else if (f->folder[id][0]) {
        snprintf(dir, sizeof dir, "%s", f->folder[id]);
    } else {
        dc_status st = dc_model_folder_find(id, cfg, f->models_dir, dir, sizeof dir);
        if (st != DC_OK) return st;
    }
    dc_pretrained_options o = {.model_dir = dir,
                               .threads = f->threads,
                               .max_tokens = cfg ? cfg->max_tokens : 0,
                               .max_batch_tokens = f->max_batch_tokens,
                               .weights = place.weights,
                               .pooling = cfg ? cfg->pooling : DC_POOLING_AUTO,
                               .normalize = cfg ? cfg->normalize : DC_NORMALIZE_AUTO,
                               .device = place.device};
    return dc_pretrained_create(id, &o, out);
}

static uint64_t fx_estimate(void *ctx, dc_model_id id) {
    dc_builtin_factory *f = ctx;
    const dc_model_info *info = dc_model_info_get(id);
    if (!info) return 0;
    if (dc_builtin_is_pretrained(id) && f->folder[id][0]) {
        char res[DC_FOLDER_MAX];
        dc_error_clear();
        if (dc_model_dir_resolve(f->folder[id], res, sizeof res) == DC_OK) {
            uint64_t b = weights_bytes(res, NULL);
            /* fp32 weights plus the packed GEMM copies and activations of one batch */
            if (b) return b * 2 + (32ull << 20);
        }
    }
    return info->memory_estimate;
}

dc_status dc_builtin_factory_create(const dc_config *cfg, dc_builtin_factory **out) {
    if (!cfg || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "factory: NULL config or output");
    dc_builtin_factory *f = calloc(1, sizeof *f);
    if (!f) return dc_fail(DC_ERR_OUT_OF_MEMORY, "factory");
    snprintf(f->models_dir, sizeof f->models_dir, "%s", cfg->models.models_dir);
    f->max_batch_tokens = cfg->batch.max_tokens_per_batch;
    f->gpu = cfg->gpu;
    pthread_mutex_init(&f->placed_mu, NULL);
    f->base.ctx = f;
    f->base.create = fx_create;
    f->base.estimate_memory = fx_estimate;
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        const dc_model_info *info = dc_model_info_get((dc_model_id)i);
        const dc_model_config *mc = &cfg->models.model[i];
        if (info->kind == DC_MODEL_KIND_CUSTOM) {
            f->base.supported_mask |= 1u << i;
            continue;
        }
        if (!dc_builtin_is_pretrained((dc_model_id)i)) {
            snprintf(f->reason[i], sizeof f->reason[i], "%s (%s) is not implemented in this build",
                     info->label, info->name);
            continue;
        }
        dc_error_clear();
        if (dc_model_folder_find((dc_model_id)i, mc, f->models_dir, f->folder[i],
                                 sizeof f->folder[i]) == DC_OK) {
            f->base.supported_mask |= 1u << i;
        } else {
            snprintf(f->reason[i], sizeof f->reason[i], "%s", dc_error_detail());
        }
    }
    dc_error_clear();
    *out = f;
    return DC_OK;
}

void dc_builtin_factory_destroy(dc_builtin_factory *f) {
    if (!f) return;
    pthread_mutex_destroy(&f->placed_mu);
    free(f);
}

void dc_builtin_factory_placement(dc_builtin_factory *f, dc_model_id id, char *buf, size_t cap) {
    if (!cap) return;
    buf[0] = '\0';
    if (!f || (unsigned)id >= DC_NUM_MODELS) return;
    pthread_mutex_lock(&f->placed_mu);
    snprintf(buf, cap, "%s", f->placed[id]);
    pthread_mutex_unlock(&f->placed_mu);
}

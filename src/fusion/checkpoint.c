/* FuseMoE checkpoints (seed L31): safetensors with metadata, SHA-256 over the tensors, atomic
 * writes, load order checkpoint → seeded fallback, and a directory registry of versions.
 *
 * Metadata keys (all strings, safetensors "__metadata__"):
 *   format "dodeca-fusemoe", format_version "1", version, created (ISO 8601 UTC), seed,
 *   checksum "sha256:<hex>", gating, num_experts, hidden, top_k, temperature, laplace_alpha,
 *   jl_nnz, block_weights (JSON array of 12), bridge ("true"/"false"), came_ab_blend,
 *   metrics (JSON object: epoch, loss, validation_loss, learning_rate, recall_at_1) when trained.
 * Structure and trained hyper-parameters come from the file; run-time choices (top_k,
 * came_ab_blend, capacity_factor, noise_std, load_balance_coef) from the caller's options. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/bytes.h"
#include "core/error.h"
#include "fusion/internal.h"
#include "fusion/registry.h"
#include "io/weights.h"

#define FORMAT_NAME "dodeca-fusemoe"
#define FORMAT_VERSION "1"

/* ---- save ---- */

static void meta_str(cJSON *meta, const char *k, const char *v) {
    cJSON_AddItemToObject(meta, k, cJSON_CreateString(v));
}

/* Integers print exactly; doubles with 17 significant digits so they read back identical. */
static void meta_num(cJSON *meta, const char *k, bool integer, double v) {
    char buf[64];
    if (integer) snprintf(buf, sizeof buf, "%.0f", v);
    else snprintf(buf, sizeof buf, "%.17g", v);
    meta_str(meta, k, buf);
}

static void now_iso(char out[32]) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static cJSON *build_header(const dc_fusion_weights *w, const char *version, const char *created,
                           const char *checksum) {
    const dc_fusion_options *o = &w->opt;
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = cJSON_CreateObject();
    if (!root || !meta) {
        cJSON_Delete(root);
        cJSON_Delete(meta);
        return NULL;
    }
    cJSON_AddItemToObject(root, "__metadata__", meta);
    meta_str(meta, "format", FORMAT_NAME);
    meta_str(meta, "format_version", FORMAT_VERSION);
    meta_str(meta, "version", version);
    meta_str(meta, "created", created);
    char buf[512];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)o->seed);
    meta_str(meta, "seed", buf);
    meta_str(meta, "checksum", checksum);
    meta_str(meta, "gating", dc_gating_kind_name(o->gating));
    meta_num(meta, "num_experts", true, o->num_experts);
    meta_num(meta, "hidden", true, o->hidden);
    meta_num(meta, "top_k", true, o->top_k);
    meta_num(meta, "temperature", false, o->temperature);
    meta_num(meta, "laplace_alpha", false, o->laplace_alpha);
    meta_num(meta, "jl_nnz", true, o->jl_nnz);
    size_t at = 0;
    at += (size_t)snprintf(buf + at, sizeof buf - at, "[");
    for (int m = 0; m < DC_NUM_MODELS; m++)
        at += (size_t)snprintf(buf + at, sizeof buf - at, "%s%.9g", m ? "," : "",
                               (double)o->block_weights[m]);
    snprintf(buf + at, sizeof buf - at, "]");
    meta_str(meta, "block_weights", buf);
    meta_str(meta, "bridge", o->bridge ? "true" : "false");
    meta_num(meta, "came_ab_blend", false, o->bridge_blend);
    if (w->info.metrics.present) {
        const dc_fusion_metrics *mt = &w->info.metrics;
        snprintf(buf, sizeof buf,
                 "{\"epoch\":%u,\"loss\":%.9g,\"validation_loss\":%.9g,\"learning_rate\":%.9g,"
                 "\"recall_at_1\":%.9g}",
                 mt->epoch, mt->loss, mt->validation_loss, mt->learning_rate, mt->recall_at_1);
        meta_str(meta, "metrics", buf);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->layout.n_tensors; i++) {
        const dc_fusion_tensor *t = &w->layout.tensors[i];
        cJSON *ent = cJSON_CreateObject();
        cJSON_AddItemToObject(root, t->name, ent);
        cJSON_AddItemToObject(ent, "dtype", cJSON_CreateString("F32"));
        cJSON *shape = cJSON_CreateArray();
        for (uint32_t d = 0; d < t->ndim; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        cJSON_AddItemToObject(ent, "shape", shape);
        cJSON *offs = cJSON_CreateArray();
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        off += (uint64_t)t->numel * 4;
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToObject(ent, "data_offsets", offs);
    }
    return root;
}

static dc_status write_all(int fd, const void *p, size_t n, const char *path) {
    const uint8_t *b = p;
    while (n) {
        ssize_t k = write(fd, b, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return dc_fail(DC_ERR_IO, "write %s: %s", path, strerror(errno));
        }
        b += k;
        n -= (size_t)k;
    }
    return DC_OK;
}

dc_status dc_fusion_weights_save(const dc_fusion_weights *w, const char *path,
                                 const char *version) {
    if (!w || !path) return dc_fail(DC_ERR_INVALID_ARGUMENT, "fusion save: NULL argument");
    char checksum[80], created[32];
    dc_status st = dc_fusion_checksum(&w->layout, w->arena, checksum);
    if (st != DC_OK) return st;
    now_iso(created);
    cJSON *root = build_header(w, version ? version : w->info.version, created, checksum);
    char *json = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!json) return dc_fail(DC_ERR_OUT_OF_MEMORY, "fusion save: checkpoint header");
    size_t hlen = strlen(json), padded = (hlen + 7) / 8 * 8;
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        free(json);
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "fusion save: path too long");
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        free(json);
        return dc_fail(DC_ERR_IO, "fusion save: create %s: %s", tmp, strerror(errno));
    }
    uint8_t len8[8];
    dc_put_u64le(len8, padded);
    st = write_all(fd, len8, 8, tmp);
    if (st == DC_OK) st = write_all(fd, json, hlen, tmp);
    for (size_t i = hlen; st == DC_OK && i < padded; i++) st = write_all(fd, " ", 1, tmp);
    free(json);
    uint8_t buf[1 << 16];
    for (size_t t = 0; st == DC_OK && t < w->layout.n_tensors; t++) {
        const dc_fusion_tensor *ts = &w->layout.tensors[t];
        const float *p = w->arena + ts->offset;
        size_t i = 0;
        while (st == DC_OK && i < ts->numel) {
            size_t k = 0;
            for (; i < ts->numel && k + 4 <= sizeof buf; i++, k += 4)
                dc_put_u32le(buf + k, dc_f32_bits(p[i]));
            st = write_all(fd, buf, k, tmp);
        }
    }
    if (st == DC_OK && fsync(fd) != 0)
        st = dc_fail(DC_ERR_IO, "fusion save: fsync %s: %s", tmp, strerror(errno));
    if (close(fd) != 0 && st == DC_OK)
        st = dc_fail(DC_ERR_IO, "fusion save: close %s: %s", tmp, strerror(errno));
    if (st == DC_OK && rename(tmp, path) != 0)
        st = dc_fail(DC_ERR_IO, "fusion save: rename %s to %s: %s", tmp, path, strerror(errno));
    if (st != DC_OK) unlink(tmp);
    return st;
}

/* ---- load ---- */

/* Re-raises the current failure as CHECKPOINT_CORRUPTED with the same detail (copied first:
 * the detail buffer is where dc_fail writes). */
static dc_status as_corrupted(void) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", dc_error_detail());
    return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s", buf);
}

static dc_status meta_u64(const dc_weights *f, const char *key, uint64_t lo, uint64_t hi,
                          uint64_t *out) {
    const char *v = dc_weights_metadata_get(f, key);
    if (!v) return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "metadata \"%s\" is missing", key);
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-' || x < lo || x > hi)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "metadata \"%s\" = \"%s\" is not an integer in [%llu, %llu]", key, v,
                       (unsigned long long)lo, (unsigned long long)hi);
    *out = x;
    return DC_OK;
}

static dc_status meta_f64(const dc_weights *f, const char *key, double *out) {
    const char *v = dc_weights_metadata_get(f, key);
    if (!v) return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "metadata \"%s\" is missing", key);
    char *end = NULL;
    double x = strtod(v, &end);
    if (end == v || *end || !isfinite(x))
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "metadata \"%s\" = \"%s\" is not a number",
                       key, v);
    *out = x;
    return DC_OK;
}

/* Copies with truncation to cap − 1 bytes. */
static void copy_str(char *dst, size_t cap, const char *src) {
    size_t n = src ? strlen(src) : 0;
    if (n >= cap) n = cap - 1;
    if (n) memcpy(dst, src, n);
    dst[n] = 0;
}

static dc_status parse_metrics(const char *json, dc_fusion_metrics *m) {
    cJSON *root = cJSON_Parse(json);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "metadata \"metrics\" is not a JSON object");
    }
    memset(m, 0, sizeof *m);
    m->present = true;
    m->recall_at_1 = -1.0;
    const cJSON *it;
    if ((it = cJSON_GetObjectItemCaseSensitive(root, "epoch")) && cJSON_IsNumber(it) &&
        it->valuedouble >= 0 && it->valuedouble < 4e9)
        m->epoch = (uint32_t)it->valuedouble;
    if ((it = cJSON_GetObjectItemCaseSensitive(root, "loss")) && cJSON_IsNumber(it))
        m->loss = it->valuedouble;
    if ((it = cJSON_GetObjectItemCaseSensitive(root, "validation_loss")) && cJSON_IsNumber(it))
        m->validation_loss = it->valuedouble;
    if ((it = cJSON_GetObjectItemCaseSensitive(root, "learning_rate")) && cJSON_IsNumber(it))
        m->learning_rate = it->valuedouble;
    if ((it = cJSON_GetObjectItemCaseSensitive(root, "recall_at_1")) && cJSON_IsNumber(it))
        m->recall_at_1 = it->valuedouble;
    cJSON_Delete(root);
    return DC_OK;
}

/* Options described by a checkpoint's metadata, over `base` (run-time choices). */
static dc_status options_from_meta(const dc_weights *f, const dc_fusion_options *base,
                                   dc_fusion_options *o) {
    *o = *base;
    const char *fmt = dc_weights_metadata_get(f, "format");
    if (!fmt || strcmp(fmt, FORMAT_NAME) != 0)
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT,
                       "metadata \"format\" is \"%s\", expected \"" FORMAT_NAME "\"",
                       fmt ? fmt : "(missing)");
    const char *fv = dc_weights_metadata_get(f, "format_version");
    if (!fv || strcmp(fv, FORMAT_VERSION) != 0)
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT,
                       "metadata \"format_version\" is \"%s\", this build reads " FORMAT_VERSION,
                       fv ? fv : "(missing)");
    uint64_t v;
    dc_status st;
    if ((st = meta_u64(f, "num_experts", 1, DC_NUM_EXPERTS, &v)) != DC_OK) return st;
    o->num_experts = (uint32_t)v;
    if ((st = meta_u64(f, "hidden", 1, 65536, &v)) != DC_OK) return st;
    o->hidden = (uint32_t)v;
    if ((st = meta_u64(f, "jl_nnz", 1, 64, &v)) != DC_OK) return st;
    o->jl_nnz = (uint32_t)v;
    if ((st = meta_u64(f, "seed", 0, UINT64_MAX, &v)) != DC_OK) return st;
    o->seed = v;
    if ((st = meta_f64(f, "temperature", &o->temperature)) != DC_OK) return st;
    if ((st = meta_f64(f, "laplace_alpha", &o->laplace_alpha)) != DC_OK) return st;
    const char *g = dc_weights_metadata_get(f, "gating");
    if (!g) return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "metadata \"gating\" is missing");
    if ((st = dc_gating_kind_parse(g, &o->gating)) != DC_OK)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "metadata \"gating\" = \"%s\" is unknown", g);
    const char *br = dc_weights_metadata_get(f, "bridge");
    o->bridge = br && !strcmp(br, "true");
    if (!o->bridge) o->bridge_blend = 0.0f;
    if (o->top_k > o->num_experts) o->top_k = o->num_experts;
    const char *bw = dc_weights_metadata_get(f, "block_weights");
    cJSON *arr = bw ? cJSON_Parse(bw) : NULL;
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != DC_NUM_MODELS) {
        cJSON_Delete(arr);
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "metadata \"block_weights\" must be a JSON array of %d numbers",
                       DC_NUM_MODELS);
    }
    for (int m = 0; m < DC_NUM_MODELS; m++) {
        const cJSON *x = cJSON_GetArrayItem(arr, m);
        if (!cJSON_IsNumber(x)) {
            cJSON_Delete(arr);
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "metadata block_weights[%d] is not a number",
                           m);
        }
        o->block_weights[m] = (float)x->valuedouble;
    }
    cJSON_Delete(arr);
    st = dc_fusion_options_validate(o);
    if (st != DC_OK) return as_corrupted();
    return DC_OK;
}

static dc_status load_open(dc_weights *f, const char *path, const dc_fusion_options *base,
                           dc_fusion_weights **out) {
    dc_fusion_options o;
    dc_status st = options_from_meta(f, base, &o);
    if (st != DC_OK) return st;
    dc_fusion_weights *w = NULL;
    if ((st = dc_fusion_weights_alloc(&o, &w)) != DC_OK) return st;
    /* every expected tensor, with its exact shape, and nothing else */
    if (dc_weights_count(f) != w->layout.n_tensors) {
        st = dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%zu tensors, expected %zu for %u experts%s",
                     dc_weights_count(f), w->layout.n_tensors, o.num_experts,
                     o.bridge ? " and the bridge" : "");
        goto fail;
    }
    for (size_t i = 0; i < w->layout.n_tensors; i++) {
        const dc_fusion_tensor *t = &w->layout.tensors[i];
        const dc_tensor_view *v = NULL;
        if ((st = dc_weights_get(f, t->name, &v)) != DC_OK) {
            st = as_corrupted();
            goto fail;
        }
        bool ok = v->ndim == t->ndim && v->shape[0] == t->shape[0] &&
                  (t->ndim < 2 || v->shape[1] == t->shape[1]);
        if (!ok) {
            st = dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                         "tensor %s has shape [%llu%s%llu], expected [%llu%s%llu]", t->name,
                         (unsigned long long)v->shape[0], v->ndim > 1 ? ", " : "",
                         v->ndim > 1 ? (unsigned long long)v->shape[1] : 0ull,
                         (unsigned long long)t->shape[0], t->ndim > 1 ? ", " : "",
                         t->ndim > 1 ? (unsigned long long)t->shape[1] : 0ull);
            goto fail;
        }
        if (v->dtype != DC_DTYPE_F32) {
            st = dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "tensor %s is %s, expected F32", t->name,
                         dc_dtype_name(v->dtype));
            goto fail;
        }
        if ((st = dc_tensor_view_copy_f32(v, w->arena + t->offset, t->numel)) != DC_OK) goto fail;
        if ((st = dc_vec_check_finite(w->arena + t->offset, t->numel, t->name)) != DC_OK) {
            st = as_corrupted();
            goto fail;
        }
    }
    if ((st = dc_fusion_checksum(&w->layout, w->arena, w->info.checksum)) != DC_OK) goto fail;
    const char *want = dc_weights_metadata_get(f, "checksum");
    if (base->verify_checksum) {
        if (!want) {
            st = dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "metadata \"checksum\" is missing");
            goto fail;
        }
        if (strcmp(want, w->info.checksum) != 0) {
            st = dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                         "checksum mismatch: metadata says %s, the tensors hash to %s", want,
                         w->info.checksum);
            goto fail;
        }
    }
    const char *ver = dc_weights_metadata_get(f, "version");
    copy_str(w->info.version, sizeof w->info.version, ver && *ver ? ver : "unversioned");
    copy_str(w->info.created, sizeof w->info.created, dc_weights_metadata_get(f, "created"));
    copy_str(w->info.source, sizeof w->info.source, path);
    const char *mt = dc_weights_metadata_get(f, "metrics");
    if (mt && (st = parse_metrics(mt, &w->info.metrics)) != DC_OK) goto fail;
    *out = w;
    return DC_OK;
fail:
    dc_fusion_weights_release(w);
    return st;
}

dc_status dc_fusion_weights_load(const char *path, const dc_fusion_options *o,
                                 dc_fusion_weights **out) {
    if (!path || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "fusion load: NULL argument");
    *out = NULL;
    dc_fusion_options base;
    if (o) base = *o;
    else dc_fusion_options_default(&base);
    dc_weights *f = NULL;
    dc_status st = dc_weights_open(path, &f);
    if (st == DC_OK) st = load_open(f, path, &base, out);
    dc_weights_close(f);
    if (st != DC_OK) return dc_fail_context(st, "fusion checkpoint %s", path);
    return DC_OK;
}

dc_status dc_fusion_weights_load_memory(const void *buf, size_t len, const char *label,
                                        const dc_fusion_options *o, dc_fusion_weights **out) {
    if (!buf || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "fusion load: NULL argument");
    *out = NULL;
    dc_fusion_options base;
    if (o) base = *o;
    else dc_fusion_options_default(&base);
    const char *name = label ? label : "(memory)";
    dc_weights *f = NULL;
    dc_status st = dc_weights_open_memory(buf, len, name, &f);
    if (st == DC_OK) st = load_open(f, name, &base, out);
    dc_weights_close(f);
    if (st != DC_OK) return dc_fail_context(st, "fusion checkpoint %s", name);
    return DC_OK;
}

dc_status dc_fusion_weights_resolve(const dc_fusion_options *o, dc_fusion_weights **out) {
    if (!o || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "fusion resolve: NULL argument");
    char reason[256] = "";
    if (o->checkpoint && *o->checkpoint) {
        dc_status st = dc_fusion_weights_load(o->checkpoint, o, out);
        if (st == DC_OK || o->checkpoint_strict) return st;
        snprintf(reason, sizeof reason, "%s: %s", dc_status_name(st), dc_error_detail());
    }
    dc_status st = dc_fusion_weights_init(o, out);
    if (st == DC_OK) copy_str((*out)->info.fallback_reason, sizeof (*out)->info.fallback_reason,
                              reason);
    return st;
}

dc_status dc_fusion_checkpoint_verify(const char *path, dc_fusion_version *info) {
    dc_fusion_options o;
    dc_fusion_options_default(&o);
    o.verify_checksum = true;
    dc_fusion_weights *w = NULL;
    dc_status st = dc_fusion_weights_load(path, &o, &w);
    if (st != DC_OK) return st;
    if (info) *info = w->info;
    dc_fusion_weights_release(w);
    return DC_OK;
}

/* ---- registry: a directory of versioned checkpoints ---- */

struct dc_fusion_registry {
    char dir[4096];
};

#define REG_PREFIX "fusemoe-"
#define REG_SUFFIX ".safetensors"

dc_status dc_fusion_registry_open(const char *dir, dc_fusion_registry **out) {
    if (!dir || !*dir || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "fusion registry: no directory");
    *out = NULL;
    if (strlen(dir) >= 3900) return dc_fail(DC_ERR_INVALID_ARGUMENT, "fusion registry: path too long");
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return dc_fail(DC_ERR_IO, "fusion registry: mkdir %s: %s", dir, strerror(errno));
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return dc_fail(DC_ERR_IO, "fusion registry: %s is not a directory", dir);
    dc_fusion_registry *r = calloc(1, sizeof *r);
    if (!r) return dc_fail(DC_ERR_OUT_OF_MEMORY, "fusion registry");
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    *out = r;
    return DC_OK;
}

void dc_fusion_registry_close(dc_fusion_registry *r) { free(r); }

dc_status dc_fusion_registry_path(const dc_fusion_registry *r, const char *version, char *buf,
                                  size_t cap) {
    dc_status st = dc_fusion_version_check(version);
    if (st != DC_OK) return st;
    if ((size_t)snprintf(buf, cap, "%s/" REG_PREFIX "%s" REG_SUFFIX, r->dir, version) >= cap)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "fusion registry: path too long");
    return DC_OK;
}

dc_status dc_fusion_registry_save(dc_fusion_registry *r, const dc_fusion_weights *w,
                                  const char *version) {
    if (!r || !w) return dc_fail(DC_ERR_INVALID_ARGUMENT, "fusion registry save: NULL argument");
    const char *v = version ? version : w->info.version;
    char path[4200];
    dc_status st = dc_fusion_registry_path(r, v, path, sizeof path);
    if (st != DC_OK) return st;
    if (access(path, F_OK) == 0)
        return dc_fail(DC_ERR_INVALID_ARGUMENT,
                       "fusion registry: version %s already exists (%s); versions are immutable",
                       v, path);
    return dc_fusion_weights_save(w, path, v);
}

dc_status dc_fusion_registry_load(dc_fusion_registry *r, const char *version,
                                  const dc_fusion_options *o, dc_fusion_weights **out) {
    if (!r || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "fusion registry load: NULL argument");
    char path[4200];
    dc_status st = dc_fusion_registry_path(r, version, path, sizeof path);
    if (st != DC_OK) return st;
    if (access(path, F_OK) != 0)
        return dc_fail(DC_ERR_NOT_FOUND, "fusion registry: no version %s in %s", version, r->dir);
    return dc_fusion_weights_load(path, o, out);
}

static int version_cmp(const void *a, const void *b) {
    const dc_fusion_version *x = a, *y = b;
    int c = strcmp(x->created, y->created);
    return c ? c : strcmp(x->version, y->version);
}

dc_status dc_fusion_registry_list(dc_fusion_registry *r, dc_fusion_version **out, size_t *n) {
    if (!r || !out || !n) return dc_fail(DC_ERR_INVALID_ARGUMENT, "fusion registry list: NULL");
    *out = NULL;
    *n = 0;
    DIR *d = opendir(r->dir);
    if (!d) return dc_fail(DC_ERR_IO, "fusion registry: opendir %s: %s", r->dir, strerror(errno));
    dc_fusion_version *list = NULL;
    size_t count = 0, cap = 0;
    dc_status st = DC_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name), pl = strlen(REG_PREFIX), sl = strlen(REG_SUFFIX);
        if (len <= pl + sl || strncmp(e->d_name, REG_PREFIX, pl) != 0 ||
            strcmp(e->d_name + len - sl, REG_SUFFIX) != 0)
            continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", r->dir, e->d_name);
        dc_weights *f = NULL;
        if (dc_weights_open(path, &f) != DC_OK) continue; /* not ours or damaged: not a version */
        const char *fmt = dc_weights_metadata_get(f, "format");
        if (fmt && !strcmp(fmt, FORMAT_NAME)) {
            if (count == cap) {
                size_t nc = cap ? cap * 2 : 8;
                dc_fusion_version *nl = realloc(list, nc * sizeof *nl);
                if (!nl) {
                    dc_weights_close(f);
                    st = dc_fail(DC_ERR_OUT_OF_MEMORY, "fusion registry list");
                    break;
                }
                list = nl;
                cap = nc;
            }
            dc_fusion_version *v = &list[count++];
            memset(v, 0, sizeof *v);
            copy_str(v->version, sizeof v->version, dc_weights_metadata_get(f, "version"));
            copy_str(v->created, sizeof v->created, dc_weights_metadata_get(f, "created"));
            copy_str(v->checksum, sizeof v->checksum, dc_weights_metadata_get(f, "checksum"));
            copy_str(v->source, sizeof v->source, path);
            const char *seed = dc_weights_metadata_get(f, "seed");
            v->seed = seed ? strtoull(seed, NULL, 10) : 0;
            v->metrics.recall_at_1 = -1.0;
            const char *mt = dc_weights_metadata_get(f, "metrics");
            if (mt && parse_metrics(mt, &v->metrics) != DC_OK) v->metrics.present = false;
        }
        dc_weights_close(f);
    }
    closedir(d);
    if (st != DC_OK) {
        free(list);
        return st;
    }
    if (count) qsort(list, count, sizeof *list, version_cmp);
    *out = list;
    *n = count;
    return DC_OK;
}

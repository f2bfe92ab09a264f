/* safetensors reader: validates the JSON header the way the reference implementation does
 * (huggingface/safetensors, tensor.rs) and exposes tensors as zero-copy views into the file.
 *
 * Layout: u64 little-endian N, N bytes of UTF-8 JSON (an object, right-padded with spaces),
 * then the data buffer. Each tensor entry {dtype, shape, data_offsets:[begin,end]} addresses
 * the data buffer; sorted by offset, the spans must tile it exactly (no overlap, no hole, no
 * trailing bytes) and each span must equal numel × element size. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "io/weights_internal.h"

#define DC_ST_MAX_HEADER 100000000ull
/* 2^53: every integer up to here is exact in the double cJSON stores. */
#define DC_ST_MAX_INT 9007199254740992.0

typedef struct dc_st_entry {
    const char *name;
    uint64_t begin, end;
} dc_st_entry;

static int dc_st_entry_cmp(const void *a, const void *b) {
    const dc_st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static bool dc_json_uint(const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return false;
    double d = item->valuedouble;
    if (!(d >= 0.0) || d > DC_ST_MAX_INT || floor(d) != d) return false;
    *out = (uint64_t)d;
    return true;
}

/* cJSON decodes "\u0000" into a NUL that silently truncates the string, which would let two
 * distinct keys compare equal (or "F32\u0000junk" pass as "F32"). Refuse the escape. */
static bool dc_json_has_nul_escape(const char *h, size_t n, size_t *at) {
    for (size_t i = 0; i < n; i++) {
        if (h[i] != '\\') continue;
        if (i + 5 < n && h[i + 1] == 'u' && memcmp(h + i + 2, "0000", 4) == 0) {
            *at = i;
            return true;
        }
        i++; /* skip the escaped character, so "\\u0000" (an escaped backslash) is fine */
    }
    return false;
}

/* Finds the member `key` of object `obj`, rejecting a repeated key. */
static dc_status dc_json_member(const cJSON *obj, const char *key, const cJSON **out,
                                const char *label, const char *tensor) {
    *out = NULL;
    for (const cJSON *c = obj->child; c; c = c->next) {
        if (c->string && strcmp(c->string, key) == 0) {
            if (*out)
                return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                               "%s: tensor \"%s\": duplicate field \"%s\"", label, tensor, key);
            *out = c;
        }
    }
    if (!*out)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: tensor \"%s\": missing field \"%s\"",
                       label, tensor, key);
    return DC_OK;
}

static dc_status dc_st_metadata(dc_weights *w, const cJSON *meta, const char *label,
                                bool keep) {
    if (cJSON_IsNull(meta)) return DC_OK; /* the reference reader treats null as absent */
    if (!cJSON_IsObject(meta))
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: __metadata__ is not an object", label);
    for (const cJSON *c = meta->child; c; c = c->next) {
        if (!cJSON_IsString(c))
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                           "%s: __metadata__ value for \"%s\" is not a string", label, c->string);
        if (!keep) continue;
        if (!dc_utf8_valid(c->string, strlen(c->string), NULL))
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: __metadata__ key is not UTF-8",
                           label);
        dc_status st = dc_weights_metadata_add(w, c->string, strlen(c->string), c->valuestring,
                                               strlen(c->valuestring), label);
        if (st) return st;
    }
    return DC_OK;
}

/* Parses one entry into shape/dtype/offsets and adds the tensor. */
static dc_status dc_st_tensor(dc_weights *w, const cJSON *entry, const uint8_t *data,
                              uint64_t data_len, uint64_t data_start, const char *label,
                              dc_st_entry *out) {
    const char *name = entry->string;
    if (!cJSON_IsObject(entry))
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: tensor \"%s\": entry is not an object",
                       label, name);
    const cJSON *jdtype, *jshape, *joff;
    dc_status st = dc_json_member(entry, "dtype", &jdtype, label, name);
    if (!st) st = dc_json_member(entry, "shape", &jshape, label, name);
    if (!st) st = dc_json_member(entry, "data_offsets", &joff, label, name);
    if (st) return st;

    if (!cJSON_IsString(jdtype))
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: tensor \"%s\": dtype is not a string",
                       label, name);
    dc_dtype dtype;
    st = dc_dtype_parse(jdtype->valuestring, &dtype);
    if (st) return dc_fail_context(st, "%s: tensor \"%s\"", label, name);

    if (!cJSON_IsArray(jshape))
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: tensor \"%s\": shape is not an array",
                       label, name);
    uint64_t shape[DC_TENSOR_MAX_DIMS];
    uint32_t ndim = 0;
    for (const cJSON *d = jshape->child; d; d = d->next) {
        if (ndim == DC_TENSOR_MAX_DIMS)
            return dc_fail(DC_ERR_UNSUPPORTED_FORMAT,
                           "%s: tensor \"%s\": more than %d dimensions", label, name,
                           DC_TENSOR_MAX_DIMS);
        if (!dc_json_uint(d, &shape[ndim]))
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                           "%s: tensor \"%s\": shape[%u] is not a non-negative integer", label,
                           name, (unsigned)ndim);
        ndim++;
    }

    if (!cJSON_IsArray(joff) || cJSON_GetArraySize(joff) != 2)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: tensor \"%s\": data_offsets is not a [begin, end] pair", label, name);
    uint64_t begin, end;
    if (!dc_json_uint(joff->child, &begin) || !dc_json_uint(joff->child->next, &end))
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: tensor \"%s\": data_offsets are not non-negative integers", label,
                       name);
    if (begin > end)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: tensor \"%s\": data_offsets [%llu, %llu] end before they begin",
                       label, name, (unsigned long long)begin, (unsigned long long)end);
    if (end > data_len)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: tensor \"%s\": data_offsets [%llu, %llu] run past the data buffer "
                       "(%llu bytes; file byte offset %llu is past the end)",
                       label, name, (unsigned long long)begin, (unsigned long long)end,
                       (unsigned long long)data_len, (unsigned long long)(data_start + end));
    uint64_t span;
    st = dc_dtype_span(dtype, ndim, shape, NULL, &span);
    if (st) return dc_fail_context(st, "%s: tensor \"%s\"", label, name);
    if (span != end - begin)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: tensor \"%s\": dtype %s and shape need %llu bytes but data_offsets "
                       "[%llu, %llu] span %llu (file byte offset %llu)",
                       label, name, dc_dtype_name(dtype), (unsigned long long)span,
                       (unsigned long long)begin, (unsigned long long)end,
                       (unsigned long long)(end - begin), (unsigned long long)(data_start + begin));
    st = dc_weights_add(w, name, strlen(name), dtype, ndim, shape, data + begin, end - begin,
                        label);
    if (st) return st;
    out->name = name;
    out->begin = begin;
    out->end = end;
    return DC_OK;
}

/* Checks that the sorted spans tile [0, data_len) exactly. */
static dc_status dc_st_check_coverage(dc_st_entry *e, size_t n, uint64_t data_len,
                                      uint64_t data_start, const char *label) {
    qsort(e, n, sizeof *e, dc_st_entry_cmp);
    uint64_t pos = 0;
    const char *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        if (e[i].begin < pos)
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                           "%s: tensor \"%s\" (data_offsets [%llu, %llu]) overlaps tensor \"%s\" "
                           "which ends at %llu (file byte offset %llu)",
                           label, e[i].name, (unsigned long long)e[i].begin,
                           (unsigned long long)e[i].end, prev, (unsigned long long)pos,
                           (unsigned long long)(data_start + e[i].begin));
        if (e[i].begin > pos)
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                           "%s: hole in the data buffer: bytes [%llu, %llu) before tensor \"%s\" "
                           "belong to no tensor (file byte offset %llu)",
                           label, (unsigned long long)pos, (unsigned long long)e[i].begin,
                           e[i].name, (unsigned long long)(data_start + pos));
        pos = e[i].end;
        prev = e[i].name;
    }
    if (pos != data_len)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: data buffer has %llu bytes after the last tensor that belong to no "
                       "tensor (file byte offset %llu)",
                       label, (unsigned long long)(data_len - pos),
                       (unsigned long long)(data_start + pos));
    return DC_OK;
}

static dc_status dc_st_parse(dc_weights *w, const uint8_t *buf, size_t len, const char *label,
                             bool keep_metadata) {
    if (len < 8)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: %zu bytes is shorter than the 8-byte header length", label, len);
    uint64_t n = dc_get_u64le(buf);
    if (n > DC_ST_MAX_HEADER)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: header length %llu at byte offset 0 exceeds the %llu-byte limit",
                       label, (unsigned long long)n, DC_ST_MAX_HEADER);
    if (n > len - 8)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: header length %llu at byte offset 0 runs past the end of the "
                       "%zu-byte file",
                       label, (unsigned long long)n, len);
    const char *h = (const char *)buf + 8;
    if (n < 2 || h[0] != '{')
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: header at byte offset 8 does not start with '{'", label);
    size_t bad = 0;
    if (!dc_utf8_valid(h, (size_t)n, &bad))
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: header is not valid UTF-8 (byte offset %zu)", label, 8 + bad);
    size_t nul_at;
    if (dc_json_has_nul_escape(h, (size_t)n, &nul_at))
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: header contains a \\u0000 escape at byte offset %zu", label,
                       8 + nul_at);

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(h, (size_t)n, &end, 0);
    if (!root) {
        size_t at = end && end >= h ? (size_t)(end - h) : 0;
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: header is not valid JSON (error near byte offset %zu)", label,
                       8 + at);
    }
    for (const char *p = end; p < h + n; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                           "%s: unexpected bytes after the JSON header at byte offset %zu", label,
                           8 + (size_t)(p - h));
        }
    }
    dc_status st = DC_OK;
    dc_st_entry *entries = NULL;
    if (!cJSON_IsObject(root)) {
        st = dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: header is not a JSON object", label);
        goto done;
    }

    size_t count = 0;
    for (const cJSON *c = root->child; c; c = c->next) count++;
    entries = malloc((count ? count : 1) * sizeof *entries);
    if (!entries) {
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory", label);
        goto done;
    }
    uint64_t data_start = 8 + n;
    uint64_t data_len = len - data_start;
    const uint8_t *data = buf + data_start;
    size_t ntensors = 0;
    bool seen_meta = false;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__") == 0) {
            if (seen_meta) {
                st = dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: duplicate key \"__metadata__\"",
                             label);
                goto done;
            }
            seen_meta = true;
            st = dc_st_metadata(w, c, label, keep_metadata);
        } else {
            st = dc_st_tensor(w, c, data, data_len, data_start, label, &entries[ntensors]);
            ntensors++;
        }
        if (st) goto done;
    }
    st = dc_st_check_coverage(entries, ntensors, data_len, data_start, label);
done:
    free(entries);
    cJSON_Delete(root);
    return st;
}

dc_status dc_safetensors_load(dc_weights *w, const uint8_t *buf, size_t len, const char *label) {
    return dc_st_parse(w, buf, len, label, true);
}

/* A shard file name from weight_map: a plain name in the index's folder. */
static bool dc_shard_name_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 255) return false;
    if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0) return false;
    if (strchr(s, '/') || strchr(s, '\\')) return false;
    return dc_utf8_valid(s, n, NULL);
}

static int dc_str_cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Index of `name` in the sorted shard list; nshards when absent. */
static size_t dc_shard_index(const char **shards, size_t nshards, const char *name) {
    const char **hit = bsearch(&name, shards, nshards, sizeof *shards, dc_str_cmp);
    return hit ? (size_t)(hit - shards) : nshards;
}

dc_status dc_safetensors_index_load(dc_weights *w, const char *path, const uint8_t *buf,
                                    size_t len) {
    if (len > DC_ST_MAX_HEADER)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: index of %zu bytes is too large", path,
                       len);
    cJSON *root = cJSON_ParseWithLength((const char *)buf, len);
    if (!root)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: not valid JSON", path);
    dc_status st = DC_OK;
    const char **shards = NULL;
    size_t *first = NULL;
    bool *add = NULL;
    size_t nshards = 0;
    char *shard_path = NULL;

    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(root) || !cJSON_IsObject(map)) {
        st = dc_fail(DC_ERR_UNSUPPORTED_FORMAT,
                     "%s: JSON without a \"weight_map\" object is not a safetensors index", path);
        goto done;
    }
    size_t nmap = 0;
    for (const cJSON *c = map->child; c; c = c->next) nmap++;
    shards = malloc((nmap ? nmap : 1) * sizeof *shards);
    first = malloc((nmap + 1) * sizeof *first);
    if (!shards || !first) {
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        goto done;
    }
    for (const cJSON *c = map->child; c; c = c->next) {
        if (!cJSON_IsString(c) || !dc_shard_name_ok(c->valuestring)) {
            st = dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                         "%s: weight_map entry \"%s\" names shard \"%.100s\", which is not a "
                         "plain file name in this folder",
                         path, c->string, cJSON_IsString(c) ? c->valuestring : "(not a string)");
            goto done;
        }
        shards[nshards++] = c->valuestring;
    }
    /* distinct shard names, sorted (so loading order is the shards' numbering) */
    qsort(shards, nshards, sizeof *shards, dc_str_cmp);
    size_t uniq = 0;
    for (size_t i = 0; i < nshards; i++)
        if (uniq == 0 || strcmp(shards[uniq - 1], shards[i]) != 0) shards[uniq++] = shards[i];
    nshards = uniq;

    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    shard_path = malloc(dir_len + 256 + 1);
    if (!shard_path) {
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        goto done;
    }
    memcpy(shard_path, path, dir_len);
    for (size_t i = 0; i < nshards; i++) {
        strcpy(shard_path + dir_len, shards[i]);
        const uint8_t *sbuf;
        size_t slen;
        st = dc_weights_map_file(w, shard_path, &sbuf, &slen);
        if (st) goto done;
        first[i] = dc_weights_count(w);
        /* Keep the first shard's __metadata__ only: every shard repeats {"format": "pt"}. */
        st = dc_st_parse(w, sbuf, slen, shard_path, i == 0);
        if (st) goto done;
    }
    first[nshards] = dc_weights_count(w);

    /* Every indexed tensor must be in the shard the index names. */
    for (const cJSON *c = map->child; c; c = c->next) {
        const dc_tensor_view *t = dc_weights_find(w, c->string);
        size_t s = dc_shard_index(shards, nshards, c->valuestring);
        size_t idx = t ? (size_t)(t - dc_weights_tensor(w, 0)) : 0;
        if (!t || s == nshards || idx < first[s] || idx >= first[s + 1]) {
            st = dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: tensor \"%s\" is not in shard %s",
                         path, c->string, c->valuestring);
            goto done;
        }
    }

    /* The index's "metadata" (total_size) joins the shard's; the shard's own keys win. Decide
     * what to add while the shard keys are sealed for O(log n) lookups. */
    st = dc_weights_metadata_seal(w, path);
    if (st) goto done;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    if (cJSON_IsObject(meta)) {
        size_t nmeta = 0;
        for (const cJSON *m = meta->child; m; m = m->next) nmeta++;
        add = calloc(nmeta ? nmeta : 1, sizeof *add);
        if (!add) {
            st = dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
            goto done;
        }
        size_t i = 0;
        for (const cJSON *m = meta->child; m; m = m->next, i++)
            add[i] = (cJSON_IsString(m) || cJSON_IsNumber(m)) &&
                     !dc_weights_metadata_get(w, m->string);
        i = 0;
        for (const cJSON *m = meta->child; m; m = m->next, i++) {
            if (!add[i]) continue;
            char num[32];
            const char *v = m->valuestring;
            if (cJSON_IsNumber(m)) {
                snprintf(num, sizeof num, "%.0f", m->valuedouble);
                v = num;
            }
            st = dc_weights_metadata_add(w, m->string, strlen(m->string), v, strlen(v), path);
            if (st) goto done;
        }
    }
done:
    free(add);
    free(shard_path);
    free(first);
    free(shards);
    cJSON_Delete(root);
    return st;
}

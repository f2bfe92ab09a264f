/* pytorch_model.bin reader for both torch.save containers.
 *
 * Zip (torch >= 1.6): "<archive>/data.pkl" is the pickled state dict; each tensor is
 * torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks), where
 * storage is a persistent id ('storage', <torch.XStorage>, key, location, numel) whose bytes are
 * the entry "<archive>/data/<key>". The archive folder name varies ("archive", the file stem).
 * An optional "<archive>/byteorder" says "little" or "big".
 *
 * Legacy (_use_new_zipfile_serialization=False): five pickles back to back (magic number
 * 0x1950a86a20f9469cfc6c, protocol version 1001, sys_info dict, the object, the list of storage
 * keys), then for each key in that order an 8-byte little-endian element count and the raw
 * storage bytes. Persistent ids have a sixth field: None, or (view_key, offset, size) for a
 * view into the root storage.
 *
 * Tensors must be C-contiguous; each tensor's span must lie inside its storage. Entries of the
 * state dict that are not tensors are ignored. When the top-level dict holds no tensors, one
 * level of the usual wrappers is unwrapped: "state_dict", "model_state_dict", "model",
 * "module" (up to two levels deep). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "core/error.h"
#include "io/pickle.h"
#include "io/weights_internal.h"
#include "io/zip.h"

typedef struct dc_tb_storage {
    const char *key;
    size_t key_len;
    dc_dtype dtype;
    uint64_t numel;  /* in elements of dtype (bytes for untyped storages) */
    uint64_t nbytes; /* numel × element size */
    const uint8_t *data;
    bool resolved;
    bool used;       /* referenced by a tensor we keep */
    uint64_t at;     /* pickle offset of the first persistent id naming it */
} dc_tb_storage;

typedef struct dc_tb_tensor {
    const char *name;
    size_t name_len;
    dc_dtype dtype;
    uint32_t ndim;
    uint64_t shape[DC_TENSOR_MAX_DIMS];
    size_t storage;
    uint64_t byte_off, nbytes;
} dc_tb_tensor;

typedef struct dc_tb {
    dc_weights *w;
    const char *label; /* file and pickle, for details */
    dc_tb_storage *st;
    size_t nst, st_cap;
    uint32_t *slots; /* storage index + 1 by key hash */
    size_t nslots;
    dc_tb_tensor *t;
    size_t nt, t_cap;
} dc_tb;

static void dc_tb_free(dc_tb *tb) {
    free(tb->st);
    free(tb->slots);
    free(tb->t);
}

static dc_status dc_tb_bad(const dc_tb *tb, const dc_pk_value *v, const char *what) {
    return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: %s (pickle byte offset %llu)", tb->label,
                   what, (unsigned long long)(v ? v->offset : 0));
}

/* ---- storage table ---- */

static size_t dc_tb_slot(const dc_tb *tb, const char *key, size_t len) {
    size_t mask = tb->nslots - 1;
    size_t i = (size_t)XXH3_64bits(key, len) & mask;
    while (tb->slots[i]) {
        const dc_tb_storage *s = &tb->st[tb->slots[i] - 1];
        if (s->key_len == len && memcmp(s->key, key, len) == 0) return i;
        i = (i + 1) & mask;
    }
    return i;
}

static dc_status dc_tb_rehash(dc_tb *tb) {
    size_t n = tb->nslots ? tb->nslots * 2 : 64;
    uint32_t *slots = calloc(n, sizeof *slots);
    if (!slots) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory", tb->label);
    free(tb->slots);
    tb->slots = slots;
    tb->nslots = n;
    for (size_t k = 0; k < tb->nst; k++)
        tb->slots[dc_tb_slot(tb, tb->st[k].key, tb->st[k].key_len)] = (uint32_t)(k + 1);
    return DC_OK;
}

static bool dc_tb_find_storage(const dc_tb *tb, const char *key, size_t len, size_t *idx) {
    if (!tb->nslots) return false;
    size_t slot = dc_tb_slot(tb, key, len);
    if (!tb->slots[slot]) return false;
    *idx = tb->slots[slot] - 1;
    return true;
}

static dc_dtype dc_tb_storage_dtype(dc_pk_global g) {
    switch (g) {
    case DC_PKG_STORAGE_FLOAT: return DC_DTYPE_F32;
    case DC_PKG_STORAGE_DOUBLE: return DC_DTYPE_F64;
    case DC_PKG_STORAGE_HALF: return DC_DTYPE_F16;
    case DC_PKG_STORAGE_BFLOAT16: return DC_DTYPE_BF16;
    case DC_PKG_STORAGE_LONG: return DC_DTYPE_I64;
    case DC_PKG_STORAGE_INT: return DC_DTYPE_I32;
    case DC_PKG_STORAGE_SHORT: return DC_DTYPE_I16;
    case DC_PKG_STORAGE_CHAR: return DC_DTYPE_I8;
    case DC_PKG_STORAGE_BYTE: return DC_DTYPE_U8;
    case DC_PKG_STORAGE_BOOL: return DC_DTYPE_BOOL;
    case DC_PKG_STORAGE_COMPLEX_FLOAT: return DC_DTYPE_C64;
    case DC_PKG_STORAGE_UNTYPED: return DC_DTYPE_U8;
    default: return DC_DTYPE_UNKNOWN;
    }
}

static dc_dtype dc_tb_torch_dtype(dc_pk_global g) {
    switch (g) {
    case DC_PKG_DTYPE_FLOAT32: return DC_DTYPE_F32;
    case DC_PKG_DTYPE_FLOAT64: return DC_DTYPE_F64;
    case DC_PKG_DTYPE_FLOAT16: return DC_DTYPE_F16;
    case DC_PKG_DTYPE_BFLOAT16: return DC_DTYPE_BF16;
    case DC_PKG_DTYPE_INT64: return DC_DTYPE_I64;
    case DC_PKG_DTYPE_INT32: return DC_DTYPE_I32;
    case DC_PKG_DTYPE_INT16: return DC_DTYPE_I16;
    case DC_PKG_DTYPE_INT8: return DC_DTYPE_I8;
    case DC_PKG_DTYPE_UINT8: return DC_DTYPE_U8;
    case DC_PKG_DTYPE_BOOL: return DC_DTYPE_BOOL;
    case DC_PKG_DTYPE_UINT16: return DC_DTYPE_U16;
    case DC_PKG_DTYPE_UINT32: return DC_DTYPE_U32;
    case DC_PKG_DTYPE_UINT64: return DC_DTYPE_U64;
    case DC_PKG_DTYPE_FLOAT8_E4M3FN: return DC_DTYPE_F8_E4M3;
    case DC_PKG_DTYPE_FLOAT8_E5M2: return DC_DTYPE_F8_E5M2;
    case DC_PKG_DTYPE_FLOAT8_E4M3FNUZ: return DC_DTYPE_F8_E4M3FNUZ;
    case DC_PKG_DTYPE_FLOAT8_E5M2FNUZ: return DC_DTYPE_F8_E5M2FNUZ;
    case DC_PKG_DTYPE_FLOAT8_E8M0FNU: return DC_DTYPE_F8_E8M0;
    default: return DC_DTYPE_UNKNOWN;
    }
}

/* A storage reference after resolving legacy views: bytes [base, base + limit) of storage
 * `idx`. */
typedef struct dc_tb_ref {
    size_t idx;
    uint64_t base, limit;
    bool untyped;
} dc_tb_ref;

static bool dc_tb_int(const dc_pk_value *v, uint64_t *out) {
    if (!v || v->kind != DC_PK_INT || v->u.i < 0) return false;
    *out = (uint64_t)v->u.i;
    return true;
}

/* Validates a persistent id and records its storage (once per key). */
static dc_status dc_tb_register(dc_tb *tb, const dc_pk_value *pid_node, dc_tb_ref *ref) {
    if (!pid_node || pid_node->kind != DC_PK_PERSID)
        return dc_tb_bad(tb, pid_node, "tensor storage is not a persistent id");
    const dc_pk_value *pid = pid_node->u.persid;
    if (pid->kind != DC_PK_TUPLE || (pid->u.seq.len != 5 && pid->u.seq.len != 6))
        return dc_tb_bad(tb, pid, "persistent id is not a 5- or 6-tuple");
    dc_pk_value **f = pid->u.seq.items;
    if (!dc_pk_str_eq(f[0], "storage"))
        return dc_tb_bad(tb, pid, "persistent id does not start with 'storage'");
    if (f[1]->kind != DC_PK_GLOBAL || dc_tb_storage_dtype(f[1]->u.global) == DC_DTYPE_UNKNOWN)
        return dc_tb_bad(tb, pid, "persistent id does not name a storage type");
    dc_dtype dtype = dc_tb_storage_dtype(f[1]->u.global);
    if (f[2]->kind != DC_PK_STR || f[3]->kind != DC_PK_STR)
        return dc_tb_bad(tb, pid, "persistent id key or location is not a string");
    uint64_t numel;
    if (!dc_tb_int(f[4], &numel))
        return dc_tb_bad(tb, pid, "persistent id storage size is not a non-negative integer");
    size_t elsize = dc_dtype_size(dtype);
    if (numel > UINT64_MAX / elsize)
        return dc_tb_bad(tb, pid, "storage byte size overflows");
    const char *key = f[2]->u.str.ptr;
    size_t key_len = f[2]->u.str.len;
    if (key_len == 0 || key_len > 4096 || memchr(key, '\0', key_len) || memchr(key, '/', key_len))
        return dc_tb_bad(tb, pid, "storage key is empty, too long or contains '/' or NUL");

    size_t idx;
    if (dc_tb_find_storage(tb, key, key_len, &idx)) {
        const dc_tb_storage *s = &tb->st[idx];
        if (s->dtype != dtype || s->numel != numel)
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                           "%s: storage \"%.*s\" is declared as %llu × %s at pickle byte offset "
                           "%llu but as %llu × %s at %llu",
                           tb->label, (int)key_len, key, (unsigned long long)s->numel,
                           dc_dtype_name(s->dtype), (unsigned long long)s->at,
                           (unsigned long long)numel, dc_dtype_name(dtype),
                           (unsigned long long)pid->offset);
    } else {
        if ((tb->nst + 1) * 2 > tb->nslots) {
            dc_status st = dc_tb_rehash(tb);
            if (st) return st;
        }
        if (tb->nst == tb->st_cap) {
            size_t ncap = tb->st_cap ? tb->st_cap * 2 : 16;
            dc_tb_storage *n = realloc(tb->st, ncap * sizeof *n);
            if (!n) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory", tb->label);
            tb->st = n;
            tb->st_cap = ncap;
        }
        idx = tb->nst++;
        dc_tb_storage *s = &tb->st[idx];
        memset(s, 0, sizeof *s);
        s->key = key;
        s->key_len = key_len;
        s->dtype = dtype;
        s->numel = numel;
        s->nbytes = numel * elsize;
        s->at = pid->offset;
        tb->slots[dc_tb_slot(tb, key, key_len)] = (uint32_t)(idx + 1);
    }
    if (!ref) return DC_OK;
    ref->idx = idx;
    ref->base = 0;
    ref->limit = numel * elsize;
    ref->untyped = f[1]->u.global == DC_PKG_STORAGE_UNTYPED;
    if (pid->u.seq.len == 6 && f[5]->kind != DC_PK_NONE) {
        /* legacy view: (view_key, offset, size) in elements of the root storage */
        const dc_pk_value *view = f[5];
        uint64_t voff, vsize;
        if (view->kind != DC_PK_TUPLE || view->u.seq.len != 3 ||
            !dc_tb_int(view->u.seq.items[1], &voff) || !dc_tb_int(view->u.seq.items[2], &vsize))
            return dc_tb_bad(tb, view, "storage view metadata is not (key, offset, size)");
        if (voff > numel || vsize > numel - voff)
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                           "%s: storage view [%llu, +%llu) at pickle byte offset %llu lies "
                           "outside storage \"%.*s\" of %llu elements",
                           tb->label, (unsigned long long)voff, (unsigned long long)vsize,
                           (unsigned long long)view->offset, (int)key_len, key,
                           (unsigned long long)numel);
        ref->base = voff * elsize;
        ref->limit = vsize * elsize;
    }
    return DC_OK;
}

/* ---- tensors ---- */

static bool dc_tb_is_tensor(const dc_pk_value *v) {
    if (!v || v->kind != DC_PK_CALL) return false;
    switch (v->u.call.fn) {
    case DC_PKG_REBUILD_TENSOR:
    case DC_PKG_REBUILD_TENSOR_V2:
    case DC_PKG_REBUILD_TENSOR_V3:
    case DC_PKG_REBUILD_PARAMETER:
    case DC_PKG_REBUILD_PARAMETER_WITH_STATE:
        return true;
    default:
        return false;
    }
}

static dc_status dc_tb_tuple_dims(const dc_tb *tb, const dc_pk_value *v, uint64_t *out,
                                  uint32_t *n, const char *what, const char *name) {
    char msg[160];
    if (!v || v->kind != DC_PK_TUPLE) {
        snprintf(msg, sizeof msg, "tensor \"%.60s\": %s is not a tuple", name, what);
        return dc_tb_bad(tb, v, msg);
    }
    if (v->u.seq.len > DC_TENSOR_MAX_DIMS)
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT,
                       "%s: tensor \"%.60s\" has %zu dimensions (at most %d supported; pickle "
                       "byte offset %llu)",
                       tb->label, name, v->u.seq.len, DC_TENSOR_MAX_DIMS,
                       (unsigned long long)v->offset);
    for (size_t i = 0; i < v->u.seq.len; i++) {
        if (!dc_tb_int(v->u.seq.items[i], &out[i])) {
            snprintf(msg, sizeof msg, "tensor \"%.60s\": %s[%zu] is not a non-negative integer",
                     name, what, i);
            return dc_tb_bad(tb, v, msg);
        }
    }
    *n = (uint32_t)v->u.seq.len;
    return DC_OK;
}

static dc_status dc_tb_add_tensor(dc_tb *tb, const dc_pk_value *key, const dc_pk_value *v) {
    char name[256];
    if (key->kind != DC_PK_STR) return dc_tb_bad(tb, key, "state dict key is not a string");
    snprintf(name, sizeof name, "%.*s", (int)(key->u.str.len > 200 ? 200 : key->u.str.len),
             key->u.str.ptr);
    /* _rebuild_parameter(tensor, requires_grad, hooks[, state]) wraps a tensor */
    for (int unwrap = 0; unwrap < 2 && dc_tb_is_tensor(v) &&
                         (v->u.call.fn == DC_PKG_REBUILD_PARAMETER ||
                          v->u.call.fn == DC_PKG_REBUILD_PARAMETER_WITH_STATE);
         unwrap++) {
        const dc_pk_value *args = v->u.call.args;
        if (args->u.seq.len < 1) return dc_tb_bad(tb, v, "_rebuild_parameter without a tensor");
        v = args->u.seq.items[0];
    }
    if (!dc_tb_is_tensor(v) || v->u.call.fn == DC_PKG_REBUILD_PARAMETER ||
        v->u.call.fn == DC_PKG_REBUILD_PARAMETER_WITH_STATE) {
        char msg[160];
        snprintf(msg, sizeof msg, "tensor \"%.60s\": parameter does not wrap a tensor", name);
        return dc_tb_bad(tb, v, msg);
    }
    const dc_pk_value *args = v->u.call.args;
    size_t nargs = args->u.seq.len;
    dc_pk_global fn = v->u.call.fn;
    bool ok = (fn == DC_PKG_REBUILD_TENSOR && nargs == 4) ||
              (fn == DC_PKG_REBUILD_TENSOR_V2 && (nargs == 6 || nargs == 7)) ||
              (fn == DC_PKG_REBUILD_TENSOR_V3 && (nargs == 7 || nargs == 8));
    if (!ok) {
        char msg[200];
        snprintf(msg, sizeof msg, "tensor \"%.60s\": %s called with %zu arguments", name,
                 dc_pk_global_name(fn), nargs);
        return dc_tb_bad(tb, v, msg);
    }
    dc_pk_value **a = args->u.seq.items;
    dc_tb_ref ref;
    dc_status st = dc_tb_register(tb, a[0], &ref);
    if (st) return dc_fail_context(st, "tensor \"%s\"", name);
    const dc_tb_storage *s = &tb->st[ref.idx];
    dc_dtype dtype = s->dtype;
    if (fn == DC_PKG_REBUILD_TENSOR_V3) {
        if (a[6]->kind != DC_PK_GLOBAL || dc_tb_torch_dtype(a[6]->u.global) == DC_DTYPE_UNKNOWN)
            return dc_tb_bad(tb, a[6], "_rebuild_tensor_v3 dtype is not a torch dtype");
        if (!ref.untyped)
            return dc_tb_bad(tb, a[0], "_rebuild_tensor_v3 with a typed storage");
        dtype = dc_tb_torch_dtype(a[6]->u.global);
    } else if (ref.untyped) {
        return dc_tb_bad(tb, a[0], "tensor over an untyped storage without a dtype");
    }
    uint64_t offset;
    if (!dc_tb_int(a[1], &offset)) {
        char msg[160];
        snprintf(msg, sizeof msg, "tensor \"%.60s\": storage offset is not a non-negative integer",
                 name);
        return dc_tb_bad(tb, a[1], msg);
    }
    dc_tb_tensor t;
    memset(&t, 0, sizeof t);
    uint64_t stride[DC_TENSOR_MAX_DIMS];
    uint32_t nstride;
    if ((st = dc_tb_tuple_dims(tb, a[2], t.shape, &t.ndim, "size", name))) return st;
    if ((st = dc_tb_tuple_dims(tb, a[3], stride, &nstride, "stride", name))) return st;
    if (nstride != t.ndim) {
        char msg[160];
        snprintf(msg, sizeof msg, "tensor \"%.60s\": %u sizes but %u strides", name,
                 (unsigned)t.ndim, (unsigned)nstride);
        return dc_tb_bad(tb, a[3], msg);
    }
    uint64_t numel, nbytes;
    if ((st = dc_dtype_span(dtype, t.ndim, t.shape, &numel, &nbytes)))
        return dc_fail_context(st, "%s: tensor \"%s\"", tb->label, name);
    if (numel > 0) {
        /* C-contiguous: stride[i] == product of the sizes after i (size-1 dims are free) */
        uint64_t expect = 1;
        for (uint32_t i = t.ndim; i-- > 0;) {
            if (t.shape[i] != 1 && stride[i] != expect)
                return dc_fail(DC_ERR_UNSUPPORTED_FORMAT,
                               "%s: tensor \"%s\" is not contiguous (stride[%u] is %llu, "
                               "expected %llu; pickle byte offset %llu); save it with "
                               ".contiguous()",
                               tb->label, name, (unsigned)i, (unsigned long long)stride[i],
                               (unsigned long long)expect, (unsigned long long)a[3]->offset);
            expect *= t.shape[i];
        }
    }
    size_t elsize = dc_dtype_size(dtype);
    if (offset > ref.limit / elsize || nbytes > ref.limit - offset * elsize)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: tensor \"%s\" (offset %llu, %llu elements of %s) runs past the end "
                       "of storage \"%.*s\" (%llu bytes; pickle byte offset %llu)",
                       tb->label, name, (unsigned long long)offset, (unsigned long long)numel,
                       dc_dtype_name(dtype), (int)s->key_len, s->key,
                       (unsigned long long)ref.limit, (unsigned long long)a[1]->offset);
    t.name = key->u.str.ptr;
    t.name_len = key->u.str.len;
    t.dtype = dtype;
    t.storage = ref.idx;
    t.byte_off = ref.base + offset * elsize;
    t.nbytes = nbytes;
    if (tb->nt == tb->t_cap) {
        size_t ncap = tb->t_cap ? tb->t_cap * 2 : 64;
        dc_tb_tensor *n = realloc(tb->t, ncap * sizeof *n);
        if (!n) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory", tb->label);
        tb->t = n;
        tb->t_cap = ncap;
    }
    tb->t[tb->nt++] = t;
    tb->st[ref.idx].used = true;
    return DC_OK;
}

static bool dc_tb_dict_has_tensor(const dc_pk_value *d) {
    for (size_t i = 0; i < d->u.dict.len; i++)
        if (dc_tb_is_tensor(d->u.dict.vals[i])) return true;
    return false;
}

/* The dict whose tensor entries we load: the root, or a conventional wrapper key. */
static dc_status dc_tb_state_dict(const dc_tb *tb, const dc_pk_value *root,
                                  const dc_pk_value **out) {
    static const char *const wrappers[] = {"state_dict", "model_state_dict", "model", "module"};
    if (!root || root->kind != DC_PK_DICT)
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT,
                       "%s: the pickled object is not a dict of tensors (a whole pickled model "
                       "or another object cannot be loaded)",
                       tb->label);
    const dc_pk_value *d = root;
    for (int depth = 0; depth < 2 && !dc_tb_dict_has_tensor(d); depth++) {
        const dc_pk_value *next = NULL;
        for (size_t w = 0; w < sizeof wrappers / sizeof *wrappers && !next; w++)
            for (size_t i = 0; i < d->u.dict.len && !next; i++)
                if (dc_pk_str_eq(d->u.dict.keys[i], wrappers[w]) &&
                    d->u.dict.vals[i]->kind == DC_PK_DICT)
                    next = d->u.dict.vals[i];
        if (!next) break;
        d = next;
    }
    *out = d;
    return DC_OK;
}

static dc_status dc_tb_collect(dc_tb *tb, const dc_pickle *pk) {
    /* Register every storage first: the legacy stream stores all of them, including those
     * of values we skip, and we need their sizes to walk it. */
    for (size_t i = 0; i < dc_pickle_persid_count(pk); i++) {
        dc_status st = dc_tb_register(tb, dc_pickle_persid_at(pk, i), NULL);
        if (st) return st;
    }
    const dc_pk_value *sd = NULL;
    dc_status st = dc_tb_state_dict(tb, dc_pickle_root(pk), &sd);
    if (st) return st;
    for (size_t i = 0; i < sd->u.dict.len; i++) {
        if (!dc_tb_is_tensor(sd->u.dict.vals[i])) continue;
        st = dc_tb_add_tensor(tb, sd->u.dict.keys[i], sd->u.dict.vals[i]);
        if (st) return st;
    }
    return DC_OK;
}

static dc_status dc_tb_emit(dc_tb *tb, const char *file_label) {
    for (size_t i = 0; i < tb->nt; i++) {
        const dc_tb_tensor *t = &tb->t[i];
        const dc_tb_storage *s = &tb->st[t->storage];
        if (!s->resolved)
            return dc_fail(DC_ERR_INTERNAL, "%s: storage \"%.*s\" was not resolved", file_label,
                           (int)s->key_len, s->key);
        const uint8_t *data = t->nbytes ? s->data + t->byte_off : NULL;
        dc_status st = dc_weights_add(tb->w, t->name, t->name_len, t->dtype, t->ndim, t->shape,
                                      data, t->nbytes, file_label);
        if (st) return st;
    }
    return DC_OK;
}

/* ---- zip container ---- */

/* Finds "<prefix>/data.pkl" with a single-component prefix. */
static dc_status dc_tb_find_pickle(const dc_zip *z, const char *label,
                                   const dc_zip_entry **out, size_t *prefix_len) {
    const dc_zip_entry *found = NULL;
    for (size_t i = 0; i < dc_zip_count(z); i++) {
        const dc_zip_entry *e = dc_zip_entry_at(z, i);
        const char *slash = strchr(e->name, '/');
        if (!slash || slash == e->name || strcmp(slash + 1, "data.pkl") != 0) continue;
        if (found)
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: zip holds both %s and %s", label,
                           found->name, e->name);
        found = e;
        *prefix_len = (size_t)(slash - e->name);
    }
    if (!found)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: zip archive has no <archive>/data.pkl (not a torch.save file)",
                       label);
    *out = found;
    return DC_OK;
}

static dc_status dc_tb_check_byteorder(const dc_zip *z, const char *prefix, size_t prefix_len,
                                       const char *label) {
    char name[512];
    snprintf(name, sizeof name, "%.*s/byteorder", (int)prefix_len, prefix);
    const dc_zip_entry *e = dc_zip_find(z, name);
    if (!e) return DC_OK; /* older writers omit it; they were little-endian only */
    const uint8_t *data;
    void *owned;
    dc_status st = dc_zip_read(z, e, &data, &owned);
    if (st) return st;
    bool little = e->size == 6 && memcmp(data, "little", 6) == 0;
    bool big = e->size == 3 && memcmp(data, "big", 3) == 0;
    free(owned);
    if (big)
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT, "%s: %s says the tensors are big-endian",
                       label, name);
    if (!little)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: %s is neither \"little\" nor \"big\"",
                       label, name);
    return DC_OK;
}

static dc_status dc_tb_zip_storages(dc_tb *tb, const dc_zip *z, const char *prefix,
                                    size_t prefix_len, const char *label) {
    for (size_t i = 0; i < tb->nst; i++) {
        dc_tb_storage *s = &tb->st[i];
        if (!s->used) continue;
        char name[4200];
        snprintf(name, sizeof name, "%.*s/data/%.*s", (int)prefix_len, prefix, (int)s->key_len,
                 s->key);
        const dc_zip_entry *e = dc_zip_find(z, name);
        if (!e)
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                           "%s: storage \"%.*s\" (pickle byte offset %llu) has no entry %s", label,
                           (int)s->key_len, s->key, (unsigned long long)s->at, name);
        if (e->size != s->nbytes)
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                           "%s: entry %s holds %llu bytes but storage \"%.*s\" declares %llu "
                           "× %s = %llu bytes",
                           label, name, (unsigned long long)e->size, (int)s->key_len, s->key,
                           (unsigned long long)s->numel, dc_dtype_name(s->dtype),
                           (unsigned long long)s->nbytes);
        const uint8_t *data;
        void *owned;
        dc_status st = dc_zip_read(z, e, &data, &owned);
        if (st) return st;
        if (owned && (st = dc_weights_adopt(tb->w, owned))) return st;
        s->data = data;
        s->resolved = true;
    }
    return DC_OK;
}

dc_status dc_torch_zip_load(dc_weights *w, const uint8_t *buf, size_t len, const char *label) {
    dc_zip *z = NULL;
    dc_pickle *pk = NULL;
    void *pkl_owned = NULL;
    dc_tb tb = {.w = w, .label = label};
    char pkl_label[1024];
    dc_status st = dc_zip_open(buf, len, label, &z);
    if (st) return st;
    const dc_zip_entry *pe = NULL;
    size_t prefix_len = 0;
    st = dc_tb_find_pickle(z, label, &pe, &prefix_len);
    if (!st) st = dc_tb_check_byteorder(z, pe->name, prefix_len, label);
    const uint8_t *pkl = NULL;
    if (!st) st = dc_zip_read(z, pe, &pkl, &pkl_owned);
    if (!st) {
        snprintf(pkl_label, sizeof pkl_label, "%s: %s", label, pe->name);
        tb.label = pkl_label;
        st = dc_pickle_parse(pkl, (size_t)pe->size, 0, pkl_label, &pk, NULL);
    }
    if (!st) st = dc_tb_collect(&tb, pk);
    if (!st) st = dc_tb_zip_storages(&tb, z, pe->name, prefix_len, label);
    if (!st) st = dc_tb_emit(&tb, label);
    dc_tb_free(&tb);
    dc_pickle_free(pk);
    free(pkl_owned);
    dc_zip_close(z);
    return st;
}

/* ---- legacy stream ---- */

/* 0x1950a86a20f9469cfc6c as LONG1 stores it: little-endian two's complement. */
static const uint8_t dc_tb_magic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

static dc_status dc_tb_legacy_header(const uint8_t *buf, size_t len, const char *label,
                                     size_t *pos) {
    dc_pickle *pk = NULL;
    size_t used;
    /* 1: magic number */
    dc_status st = dc_pickle_parse(buf, len, 0, label, &pk, &used);
    if (st) return st;
    const dc_pk_value *v = dc_pickle_root(pk);
    bool magic = v->kind == DC_PK_BIGINT && v->u.str.len == sizeof dc_tb_magic &&
                 memcmp(v->u.str.ptr, dc_tb_magic, sizeof dc_tb_magic) == 0;
    dc_pickle_free(pk);
    if (!magic)
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT,
                       "%s: a pickle without the torch.save magic number (a plain pickle, not a "
                       "PyTorch checkpoint)",
                       label);
    *pos = used;
    /* 2: protocol version */
    if ((st = dc_pickle_parse(buf + *pos, len - *pos, *pos, label, &pk, &used))) return st;
    v = dc_pickle_root(pk);
    bool proto = v->kind == DC_PK_INT && v->u.i == 1001;
    int64_t got = v->kind == DC_PK_INT ? v->u.i : -1;
    dc_pickle_free(pk);
    if (!proto)
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT,
                       "%s: legacy protocol version %lld at byte offset %zu (only 1001 is known)",
                       label, (long long)got, *pos);
    *pos += used;
    /* 3: sys_info */
    size_t info_at = *pos;
    if ((st = dc_pickle_parse(buf + *pos, len - *pos, *pos, label, &pk, &used))) return st;
    v = dc_pickle_root(pk);
    st = DC_OK;
    if (v->kind != DC_PK_DICT) {
        st = dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                     "%s: sys_info at byte offset %zu is not a dict", label, info_at);
    } else {
        for (size_t i = 0; i < v->u.dict.len; i++) {
            if (!dc_pk_str_eq(v->u.dict.keys[i], "little_endian")) continue;
            const dc_pk_value *le = v->u.dict.vals[i];
            if (le->kind != DC_PK_BOOL || !le->u.b)
                st = dc_fail(DC_ERR_UNSUPPORTED_FORMAT,
                             "%s: sys_info at byte offset %zu says the file is big-endian", label,
                             info_at);
        }
    }
    dc_pickle_free(pk);
    *pos += used;
    return st;
}

static dc_status dc_tb_legacy_storages(dc_tb *tb, const uint8_t *buf, size_t len, size_t *pos,
                                       const char *label) {
    dc_pickle *pk = NULL;
    size_t used, keys_at = *pos;
    dc_status st = dc_pickle_parse(buf + *pos, len - *pos, *pos, label, &pk, &used);
    if (st) return st;
    *pos += used;
    const dc_pk_value *keys = dc_pickle_root(pk);
    if (keys->kind != DC_PK_LIST) {
        dc_pickle_free(pk);
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: storage key list at byte offset %zu is not a list", label, keys_at);
    }
    size_t nkeys = keys->u.seq.len;
    for (size_t i = 0; i < nkeys && !st; i++) {
        const dc_pk_value *k = keys->u.seq.items[i];
        size_t idx;
        if (k->kind != DC_PK_STR || !dc_tb_find_storage(tb, k->u.str.ptr, k->u.str.len, &idx)) {
            st = dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                         "%s: storage key %zu in the list at byte offset %zu is not used by "
                         "any tensor",
                         label, i, keys_at);
            break;
        }
        dc_tb_storage *s = &tb->st[idx];
        if (s->resolved) {
            st = dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                         "%s: storage \"%.*s\" is listed twice (byte offset %zu)", label,
                         (int)s->key_len, s->key, keys_at);
            break;
        }
        if (len - *pos < 8) {
            st = dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                         "%s: file ends at byte offset %zu inside the size of storage \"%.*s\"",
                         label, len, (int)s->key_len, s->key);
            break;
        }
        uint64_t count = dc_get_u64le(buf + *pos);
        if (count != s->numel) {
            st = dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                         "%s: storage \"%.*s\" at byte offset %zu holds %llu elements but the "
                         "pickle declares %llu",
                         label, (int)s->key_len, s->key, *pos, (unsigned long long)count,
                         (unsigned long long)s->numel);
            break;
        }
        *pos += 8;
        if (s->nbytes > len - *pos) {
            st = dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                         "%s: storage \"%.*s\" (%llu bytes at byte offset %zu) runs past the end "
                         "of the %zu-byte file",
                         label, (int)s->key_len, s->key, (unsigned long long)s->nbytes, *pos,
                         len);
            break;
        }
        s->data = buf + *pos;
        s->resolved = true;
        *pos += (size_t)s->nbytes;
    }
    dc_pickle_free(pk);
    if (st) return st;
    for (size_t i = 0; i < tb->nst; i++)
        if (!tb->st[i].resolved)
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                           "%s: storage \"%.*s\" (pickle byte offset %llu) is missing from the "
                           "storage list",
                           label, (int)tb->st[i].key_len, tb->st[i].key,
                           (unsigned long long)tb->st[i].at);
    if (*pos != len)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: %zu unexpected bytes after the last storage at byte offset %zu",
                       label, len - *pos, *pos);
    return DC_OK;
}

dc_status dc_torch_legacy_load(dc_weights *w, const uint8_t *buf, size_t len,
                               const char *label) {
    size_t pos = 0, used;
    dc_status st = dc_tb_legacy_header(buf, len, label, &pos);
    if (st) return st;
    dc_pickle *pk = NULL;
    dc_tb tb = {.w = w, .label = label};
    st = dc_pickle_parse(buf + pos, len - pos, pos, label, &pk, &used);
    if (!st) {
        pos += used;
        st = dc_tb_collect(&tb, pk);
    }
    /* Keys borrow from the object pickle's bytes (the file), not from the pickle tree. */
    if (!st) st = dc_tb_legacy_storages(&tb, buf, len, &pos, label);
    if (!st) st = dc_tb_emit(&tb, label);
    dc_tb_free(&tb);
    dc_pickle_free(pk);
    return st;
}

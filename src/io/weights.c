/* dc_weights: the container-independent tensor table, file mapping and dtype helpers. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "core/error.h"
#include "io/weights_internal.h"

/* ---- dtypes ---- */

static const struct {
    const char *name;
    unsigned bits;
} dc_dtype_table[DC_DTYPE_COUNT] = {
    [DC_DTYPE_UNKNOWN] = {"UNKNOWN", 0},
    [DC_DTYPE_F32] = {"F32", 32},
    [DC_DTYPE_F16] = {"F16", 16},
    [DC_DTYPE_BF16] = {"BF16", 16},
    [DC_DTYPE_F64] = {"F64", 64},
    [DC_DTYPE_I64] = {"I64", 64},
    [DC_DTYPE_I32] = {"I32", 32},
    [DC_DTYPE_I16] = {"I16", 16},
    [DC_DTYPE_I8] = {"I8", 8},
    [DC_DTYPE_U8] = {"U8", 8},
    [DC_DTYPE_BOOL] = {"BOOL", 8},
    [DC_DTYPE_F8_E4M3] = {"F8_E4M3", 8},
    [DC_DTYPE_F8_E5M2] = {"F8_E5M2", 8},
    [DC_DTYPE_U16] = {"U16", 16},
    [DC_DTYPE_U32] = {"U32", 32},
    [DC_DTYPE_U64] = {"U64", 64},
    [DC_DTYPE_C64] = {"C64", 64},
    [DC_DTYPE_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 8},
    [DC_DTYPE_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 8},
    [DC_DTYPE_F8_E8M0] = {"F8_E8M0", 8},
    [DC_DTYPE_F4] = {"F4", 4},
    [DC_DTYPE_F6_E2M3] = {"F6_E2M3", 6},
    [DC_DTYPE_F6_E3M2] = {"F6_E3M2", 6},
};

const char *dc_dtype_name(dc_dtype t) {
    if ((unsigned)t >= DC_DTYPE_COUNT) return "UNKNOWN";
    return dc_dtype_table[t].name;
}

unsigned dc_dtype_bits(dc_dtype t) {
    if ((unsigned)t >= DC_DTYPE_COUNT) return 0;
    return dc_dtype_table[t].bits;
}

size_t dc_dtype_size(dc_dtype t) {
    unsigned bits = dc_dtype_bits(t);
    return bits % 8 ? 0 : bits / 8;
}

dc_status dc_dtype_parse(const char *name, dc_dtype *out) {
    for (int t = 1; t < DC_DTYPE_COUNT; t++) {
        if (strcmp(name, dc_dtype_table[t].name) == 0) {
            *out = (dc_dtype)t;
            return DC_OK;
        }
    }
    *out = DC_DTYPE_UNKNOWN;
    return dc_fail(DC_ERR_UNSUPPORTED_FORMAT, "unknown dtype \"%.64s\"", name);
}

dc_status dc_dtype_span(dc_dtype t, uint32_t ndim, const uint64_t *shape, uint64_t *numel,
                        uint64_t *nbytes) {
    unsigned bits = dc_dtype_bits(t);
    if (bits == 0) return dc_fail(DC_ERR_UNSUPPORTED_FORMAT, "unknown dtype");
    if (ndim > DC_TENSOR_MAX_DIMS)
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT, "%u dimensions (at most %d supported)",
                       (unsigned)ndim, DC_TENSOR_MAX_DIMS);
    uint64_t n = 1;
    for (uint32_t i = 0; i < ndim; i++) {
        if (shape[i] != 0 && n > UINT64_MAX / shape[i])
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "shape overflows 64 bits at dimension %u",
                           (unsigned)i);
        n *= shape[i];
    }
    if (n > UINT64_MAX / bits)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "byte size of %llu elements overflows",
                       (unsigned long long)n);
    uint64_t total_bits = n * bits;
    if (total_bits % 8)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%llu elements of %s do not fill whole bytes", (unsigned long long)n,
                       dc_dtype_name(t));
    if (numel) *numel = n;
    *nbytes = total_bits / 8;
    return DC_OK;
}

/* ---- the table ---- */

typedef struct dc_map {
    const uint8_t *data;
    size_t len;
    bool mapped;
    char *path; /* the mapped file (dc_weights_file_span); NULL for memory */
} dc_map;

typedef struct dc_meta_pair {
    char *key;
    char *value;
} dc_meta_pair;

struct dc_weights {
    const char *format;
    char *path;
    dc_map *maps;
    size_t nmaps, maps_cap;
    dc_tensor_view *tensors;
    size_t count, cap;
    uint32_t *slots; /* tensor index + 1; 0 is empty. Power-of-two size, load <= 1/2. */
    size_t nslots;
    void **owned;
    size_t nowned, owned_cap;
    dc_meta_pair *meta; /* file order */
    size_t nmeta, meta_cap;
    dc_meta_pair *meta_sorted; /* by key, for lookups; valid for the first nsorted pairs */
    size_t nsorted;
};

/* Grows a vector of `elem` bytes to hold at least `need` items. */
static bool dc_grow(void **vec, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t ncap = *cap ? *cap : 8;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / elem) return false;
        ncap *= 2;
    }
    void *p = realloc(*vec, ncap * elem);
    if (!p) return false;
    *vec = p;
    *cap = ncap;
    return true;
}

dc_status dc_weights_adopt(dc_weights *w, void *buf) {
    if (!dc_grow((void **)&w->owned, &w->owned_cap, w->nowned + 1, sizeof *w->owned)) {
        free(buf);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "out of memory tracking buffers");
    }
    w->owned[w->nowned++] = buf;
    return DC_OK;
}

void *dc_weights_alloc(dc_weights *w, size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 1) != 0) return NULL;
    if (dc_weights_adopt(w, p) != DC_OK) return NULL;
    return p;
}

static char *dc_weights_strndup(dc_weights *w, const char *s, size_t len) {
    if (len == SIZE_MAX) return NULL;
    char *p = malloc(len + 1);
    if (!p) return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    if (dc_weights_adopt(w, p) != DC_OK) return NULL;
    return p;
}

static uint64_t dc_name_hash(const char *s, size_t len) { return XXH3_64bits(s, len); }

/* Finds the slot holding `name` or the empty slot where it would go. */
static size_t dc_slot_find(const dc_weights *w, const char *name, size_t len) {
    size_t mask = w->nslots - 1;
    size_t i = (size_t)dc_name_hash(name, len) & mask;
    while (w->slots[i]) {
        const char *other = w->tensors[w->slots[i] - 1].name;
        if (strlen(other) == len && memcmp(other, name, len) == 0) return i;
        i = (i + 1) & mask;
    }
    return i;
}

static dc_status dc_slots_rebuild(dc_weights *w, size_t nslots) {
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (!slots) return dc_fail(DC_ERR_OUT_OF_MEMORY, "out of memory for the tensor index");
    free(w->slots);
    w->slots = slots;
    w->nslots = nslots;
    for (size_t t = 0; t < w->count; t++) {
        const char *name = w->tensors[t].name;
        size_t i = dc_slot_find(w, name, strlen(name));
        w->slots[i] = (uint32_t)(t + 1);
    }
    return DC_OK;
}

dc_status dc_weights_add(dc_weights *w, const char *name, size_t name_len, dc_dtype dtype,
                         uint32_t ndim, const uint64_t *shape, const void *data, uint64_t nbytes,
                         const char *label) {
    if (memchr(name, '\0', name_len))
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: tensor name contains a NUL byte",
                       label);
    if (!dc_utf8_valid(name, name_len, NULL))
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: tensor name is not valid UTF-8", label);
    if (w->count >= UINT32_MAX - 1)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: too many tensors", label);
    uint64_t numel, span;
    dc_status st = dc_dtype_span(dtype, ndim, shape, &numel, &span);
    if (st) return dc_fail_context(st, "%s: tensor \"%.*s\"", label, (int)name_len, name);
    if (span != nbytes)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: tensor \"%.*s\": shape and dtype %s need %llu bytes but %llu are given",
                       label, (int)name_len, name, dc_dtype_name(dtype),
                       (unsigned long long)span, (unsigned long long)nbytes);
    if (nbytes > SIZE_MAX)
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT, "%s: tensor \"%.*s\" is too large", label,
                       (int)name_len, name);

    if (w->nslots == 0 || (w->count + 1) * 2 > w->nslots) {
        st = dc_slots_rebuild(w, w->nslots ? w->nslots * 2 : 64);
        if (st) return st;
    }
    size_t slot = dc_slot_find(w, name, name_len);
    if (w->slots[slot])
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: duplicate tensor name \"%.*s\"", label,
                       (int)name_len, name);
    if (!dc_grow((void **)&w->tensors, &w->cap, w->count + 1, sizeof *w->tensors))
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory for the tensor table", label);

    /* Callers cast data to the element type; copy when the file layout leaves it misaligned
     * (legacy torch storages sit at arbitrary offsets). */
    size_t align = dc_dtype_size(dtype);
    if (align > 8) align = 8;
    if (nbytes == 0) {
        data = NULL;
    } else if (align > 1 && (uintptr_t)data % align != 0) {
        void *copy = dc_weights_alloc(w, (size_t)nbytes);
        if (!copy) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory", label);
        memcpy(copy, data, (size_t)nbytes);
        data = copy;
    }

    char *owned_name = dc_weights_strndup(w, name, name_len);
    if (!owned_name) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory", label);
    dc_tensor_view *t = &w->tensors[w->count];
    memset(t, 0, sizeof *t);
    t->name = owned_name;
    t->dtype = dtype;
    t->ndim = ndim;
    for (uint32_t i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->numel = numel;
    t->data = data;
    t->nbytes = nbytes;
    w->count++;
    w->slots[slot] = (uint32_t)w->count;
    return DC_OK;
}

dc_status dc_weights_metadata_add(dc_weights *w, const char *key, size_t key_len,
                                  const char *value, size_t value_len, const char *label) {
    if (!dc_grow((void **)&w->meta, &w->meta_cap, w->nmeta + 1, sizeof *w->meta))
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory", label);
    char *k = dc_weights_strndup(w, key, key_len);
    char *v = k ? dc_weights_strndup(w, value, value_len) : NULL;
    if (!v) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory", label);
    w->meta[w->nmeta].key = k;
    w->meta[w->nmeta].value = v;
    w->nmeta++;
    return DC_OK;
}

static int dc_meta_cmp(const void *a, const void *b) {
    return strcmp(((const dc_meta_pair *)a)->key, ((const dc_meta_pair *)b)->key);
}

dc_status dc_weights_metadata_seal(dc_weights *w, const char *label) {
    free(w->meta_sorted);
    w->meta_sorted = NULL;
    w->nsorted = 0;
    if (w->nmeta == 0) return DC_OK;
    w->meta_sorted = malloc(w->nmeta * sizeof *w->meta_sorted);
    if (!w->meta_sorted) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory", label);
    memcpy(w->meta_sorted, w->meta, w->nmeta * sizeof *w->meta);
    qsort(w->meta_sorted, w->nmeta, sizeof *w->meta_sorted, dc_meta_cmp);
    for (size_t i = 1; i < w->nmeta; i++)
        if (strcmp(w->meta_sorted[i - 1].key, w->meta_sorted[i].key) == 0)
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: duplicate metadata key \"%.100s\"",
                           label, w->meta_sorted[i].key);
    w->nsorted = w->nmeta;
    return DC_OK;
}

static dc_status dc_map_path(const char *path, dc_map *out) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return dc_fail(DC_ERR_IO, "open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return dc_fail(DC_ERR_IO, "stat %s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return dc_fail(DC_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: file is empty", path);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return dc_fail(DC_ERR_IO, "%s: file too large to map", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return dc_fail(DC_ERR_IO, "mmap %s: %s", path, strerror(e));
    out->data = p;
    out->len = (size_t)st.st_size;
    out->mapped = true;
    return DC_OK;
}

dc_status dc_weights_map_file(dc_weights *w, const char *path, const uint8_t **buf,
                              size_t *len) {
    if (!dc_grow((void **)&w->maps, &w->maps_cap, w->nmaps + 1, sizeof *w->maps))
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "out of memory");
    dc_map m;
    dc_status st = dc_map_path(path, &m);
    if (st) return st;
    size_t n = strlen(path);
    m.path = malloc(n + 1);
    if (!m.path) {
        munmap((void *)m.data, m.len);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "out of memory");
    }
    memcpy(m.path, path, n + 1);
    w->maps[w->nmaps++] = m;
    *buf = m.data;
    *len = m.len;
    return DC_OK;
}

static dc_weights *dc_weights_new(const char *label) {
    dc_weights *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    size_t n = strlen(label);
    w->path = malloc(n + 1);
    if (!w->path) {
        free(w);
        return NULL;
    }
    memcpy(w->path, label, n + 1);
    return w;
}

void dc_weights_close(dc_weights *w) {
    if (!w) return;
    for (size_t i = 0; i < w->nmaps; i++) {
        if (w->maps[i].mapped) munmap((void *)w->maps[i].data, w->maps[i].len);
        free(w->maps[i].path);
    }
    for (size_t i = 0; i < w->nowned; i++) free(w->owned[i]);
    free(w->maps);
    free(w->owned);
    free(w->tensors);
    free(w->slots);
    free(w->meta);
    free(w->meta_sorted);
    free(w->path);
    free(w);
}

/* True when the bytes look like JSON text (an index file) rather than a binary container. */
static bool dc_looks_like_json(const uint8_t *buf, size_t len) {
    size_t i = 0;
    if (len >= 3 && buf[0] == 0xEF && buf[1] == 0xBB && buf[2] == 0xBF) i = 3;
    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r')) i++;
    return i < len && buf[i] == '{';
}

/* Picks the reader from the leading bytes. `path` is NULL for in-memory buffers. */
static dc_status dc_weights_detect(dc_weights *w, const char *path, const uint8_t *buf,
                                   size_t len) {
    const char *label = w->path;
    if (len >= 4 && memcmp(buf, "PK\x03\x04", 4) == 0) {
        w->format = "pytorch-zip";
        return dc_torch_zip_load(w, buf, len, label);
    }
    if (len >= 4 && memcmp(buf, "PK\x05\x06", 4) == 0)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: empty zip archive (no data.pkl)", label);
    /* safetensors first: a header length of 0x..0280 also starts with 80 02 */
    if (len >= 9 && buf[8] == '{') {
        w->format = "safetensors";
        return dc_safetensors_load(w, buf, len, label);
    }
    if (len >= 2 && buf[0] == 0x80 && buf[1] == 0x02) {
        w->format = "pytorch-legacy";
        return dc_torch_legacy_load(w, buf, len, label);
    }
    if (dc_looks_like_json(buf, len)) {
        if (!path)
            return dc_fail(DC_ERR_UNSUPPORTED_FORMAT,
                           "%s: a JSON index names other files; open it by path", label);
        w->format = "safetensors-sharded";
        return dc_safetensors_index_load(w, path, buf, len);
    }
    if (len >= 262 && memcmp(buf + 257, "ustar", 5) == 0)
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT,
                       "%s: tar checkpoint (torch < 0.4 format) is not supported", label);
    if (len < 9)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: %zu bytes is too short to be a checkpoint", label, len);
    return dc_fail(DC_ERR_UNSUPPORTED_FORMAT,
                   "%s: unrecognised checkpoint format (first bytes %02x %02x %02x %02x); "
                   "expected safetensors or a PyTorch .bin",
                   label, buf[0], buf[1], buf[2], buf[3]);
}

static dc_status dc_weights_dispatch(dc_weights *w, const char *path, const uint8_t *buf,
                                     size_t len) {
    dc_status st = dc_weights_detect(w, path, buf, len);
    if (!st) st = dc_weights_metadata_seal(w, w->path);
    return st;
}

dc_status dc_weights_open(const char *path, dc_weights **out) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "dc_weights_open: out is NULL");
    *out = NULL;
    if (!path) return dc_fail(DC_ERR_INVALID_ARGUMENT, "dc_weights_open: path is NULL");
    dc_weights *w = dc_weights_new(path);
    if (!w) return dc_fail(DC_ERR_OUT_OF_MEMORY, "out of memory opening %s", path);
    const uint8_t *buf;
    size_t len;
    dc_status st = dc_weights_map_file(w, path, &buf, &len);
    if (!st) st = dc_weights_dispatch(w, path, buf, len);
    if (st) {
        dc_weights_close(w);
        return st;
    }
    *out = w;
    return DC_OK;
}

dc_status dc_weights_open_memory(const void *buf, size_t len, const char *label,
                                 dc_weights **out) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "dc_weights_open_memory: out is NULL");
    *out = NULL;
    if (!buf && len) return dc_fail(DC_ERR_INVALID_ARGUMENT, "dc_weights_open_memory: NULL");
    if (!label) label = "<memory>";
    if (len == 0) return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: buffer is empty", label);
    dc_weights *w = dc_weights_new(label);
    if (!w) return dc_fail(DC_ERR_OUT_OF_MEMORY, "out of memory opening %s", label);
    dc_status st = dc_weights_dispatch(w, NULL, buf, len);
    if (st) {
        dc_weights_close(w);
        return st;
    }
    *out = w;
    return DC_OK;
}

const char *dc_weights_format_name(const dc_weights *w) {
    return w && w->format ? w->format : "unknown";
}

const char *dc_weights_path(const dc_weights *w) { return w ? w->path : ""; }

bool dc_weights_file_span(const dc_weights *w, const dc_tensor_view *t, const char **path,
                          uint64_t *offset) {
    /* safetensors only: its reader checked that every span tiles the file's data buffer, and
     * a view is the file's own bytes unless dc_weights_add had to copy it for alignment */
    if (!w || !t || !t->data || !w->format || strncmp(w->format, "safetensors", 11) != 0)
        return false;
    const uint8_t *p = t->data;
    for (size_t i = 0; i < w->nmaps; i++) {
        const dc_map *m = &w->maps[i];
        if (!m->path || p < m->data || p >= m->data + m->len) continue;
        if (t->nbytes > m->len - (size_t)(p - m->data)) return false;
        *path = m->path;
        *offset = (uint64_t)(p - m->data);
        return true;
    }
    return false;
}

size_t dc_weights_count(const dc_weights *w) { return w ? w->count : 0; }

const dc_tensor_view *dc_weights_tensor(const dc_weights *w, size_t i) {
    if (!w || i >= w->count) return NULL;
    return &w->tensors[i];
}

const dc_tensor_view *dc_weights_find(const dc_weights *w, const char *name) {
    if (!w || !name || w->nslots == 0) return NULL;
    size_t slot = dc_slot_find(w, name, strlen(name));
    return w->slots[slot] ? &w->tensors[w->slots[slot] - 1] : NULL;
}

dc_status dc_weights_get(const dc_weights *w, const char *name, const dc_tensor_view **out) {
    if (!w || !name || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "dc_weights_get: NULL");
    *out = dc_weights_find(w, name);
    if (!*out)
        return dc_fail(DC_ERR_NOT_FOUND, "%s: no tensor named \"%s\"", w->path, name);
    return DC_OK;
}

const char *dc_weights_metadata_get(const dc_weights *w, const char *key) {
    if (!w || !key) return NULL;
    if (w->nsorted == w->nmeta && w->nmeta) {
        dc_meta_pair probe = {.key = (char *)(uintptr_t)key};
        const dc_meta_pair *hit =
            bsearch(&probe, w->meta_sorted, w->nsorted, sizeof *w->meta_sorted, dc_meta_cmp);
        return hit ? hit->value : NULL;
    }
    for (size_t i = 0; i < w->nmeta; i++)
        if (strcmp(w->meta[i].key, key) == 0) return w->meta[i].value;
    return NULL;
}

size_t dc_weights_metadata_count(const dc_weights *w) { return w ? w->nmeta : 0; }

bool dc_weights_metadata_at(const dc_weights *w, size_t i, const char **key,
                            const char **value) {
    if (!w || i >= w->nmeta) return false;
    if (key) *key = w->meta[i].key;
    if (value) *value = w->meta[i].value;
    return true;
}

/* ---- conversions ---- */

float dc_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1F;
    uint32_t mant = h & 0x3FF;
    uint32_t bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (mant << 13);
    } else if (exp == 0) {
        /* zero or subnormal: mant × 2^-24, exact in f32 */
        float v = (float)mant * 0x1p-24f;
        return sign ? -v : v;
    } else {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

float dc_bf16_to_f32(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

float dc_f8_e4m3_to_f32(uint8_t v) {
    int sign = v >> 7;
    unsigned exp = (v >> 3) & 0xF;
    unsigned mant = v & 0x7;
    float r;
    if (exp == 0xF && mant == 0x7) return NAN; /* e4m3fn has no infinities */
    if (exp == 0)
        r = ldexpf((float)mant / 8.0f, -6);
    else
        r = ldexpf(1.0f + (float)mant / 8.0f, (int)exp - 7);
    return sign ? -r : r;
}

float dc_f8_e5m2_to_f32(uint8_t v) {
    /* e5m2 is the top byte of an IEEE half */
    return dc_f16_to_f32((uint16_t)((uint16_t)v << 8));
}

dc_status dc_tensor_view_copy_f32(const dc_tensor_view *t, float *dst, size_t count) {
    if (!t || (!dst && count))
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "dc_tensor_view_copy_f32: NULL");
    if (count != t->numel)
        return dc_fail(DC_ERR_INVALID_DIMENSION,
                       "tensor \"%s\" has %llu elements, destination holds %zu", t->name,
                       (unsigned long long)t->numel, count);
    const uint8_t *p = t->data;
    size_t n = count;
    switch (t->dtype) {
    case DC_DTYPE_F32:
        if (n) memcpy(dst, p, n * sizeof(float));
        return DC_OK;
    case DC_DTYPE_F16:
        for (size_t i = 0; i < n; i++) dst[i] = dc_f16_to_f32(dc_get_u16le(p + 2 * i));
        return DC_OK;
    case DC_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) dst[i] = dc_bf16_to_f32(dc_get_u16le(p + 2 * i));
        return DC_OK;
    case DC_DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            uint64_t bits = dc_get_u64le(p + 8 * i);
            double d;
            memcpy(&d, &bits, sizeof d);
            dst[i] = (float)d;
        }
        return DC_OK;
    case DC_DTYPE_F8_E4M3:
        for (size_t i = 0; i < n; i++) dst[i] = dc_f8_e4m3_to_f32(p[i]);
        return DC_OK;
    case DC_DTYPE_F8_E5M2:
        for (size_t i = 0; i < n; i++) dst[i] = dc_f8_e5m2_to_f32(p[i]);
        return DC_OK;
    case DC_DTYPE_I64:
        for (size_t i = 0; i < n; i++) dst[i] = (float)(int64_t)dc_get_u64le(p + 8 * i);
        return DC_OK;
    case DC_DTYPE_U64:
        for (size_t i = 0; i < n; i++) dst[i] = (float)dc_get_u64le(p + 8 * i);
        return DC_OK;
    case DC_DTYPE_I32:
        for (size_t i = 0; i < n; i++) dst[i] = (float)(int32_t)dc_get_u32le(p + 4 * i);
        return DC_OK;
    case DC_DTYPE_U32:
        for (size_t i = 0; i < n; i++) dst[i] = (float)dc_get_u32le(p + 4 * i);
        return DC_OK;
    case DC_DTYPE_I16:
        for (size_t i = 0; i < n; i++) dst[i] = (float)(int16_t)dc_get_u16le(p + 2 * i);
        return DC_OK;
    case DC_DTYPE_U16:
        for (size_t i = 0; i < n; i++) dst[i] = (float)dc_get_u16le(p + 2 * i);
        return DC_OK;
    case DC_DTYPE_I8:
        for (size_t i = 0; i < n; i++) dst[i] = (float)(int8_t)p[i];
        return DC_OK;
    case DC_DTYPE_U8:
        for (size_t i = 0; i < n; i++) dst[i] = (float)p[i];
        return DC_OK;
    case DC_DTYPE_BOOL:
        for (size_t i = 0; i < n; i++) dst[i] = p[i] ? 1.0f : 0.0f;
        return DC_OK;
    default:
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT, "tensor \"%s\": no f32 conversion for dtype %s",
                       t->name, dc_dtype_name(t->dtype));
    }
}

dc_status dc_tensor_view_to_f32(const dc_tensor_view *t, float **out) {
    if (!t || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "dc_tensor_view_to_f32: NULL");
    *out = NULL;
    if (t->numel > SIZE_MAX / sizeof(float))
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "tensor \"%s\" is too large", t->name);
    float *buf = malloc(t->numel ? (size_t)t->numel * sizeof(float) : sizeof(float));
    if (!buf)
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "out of memory converting tensor \"%s\"", t->name);
    dc_status st = dc_tensor_view_copy_f32(t, buf, (size_t)t->numel);
    if (st) {
        free(buf);
        return st;
    }
    *out = buf;
    return DC_OK;
}

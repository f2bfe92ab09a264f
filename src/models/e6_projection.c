/* Seeded sparse random projection for SPLADE vectors and its file format. */
#include <errno.h>
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "core/error.h"
#include "models/e6_projection.h"

static const uint8_t dc_sprj_magic[8] = {'D', 'C', 'S', 'P', 'R', 'J', 0, 0};
#define DC_SPRJ_HEADER 40u

struct dc_sparse_projection {
    uint64_t seed;
    uint32_t d_in, d_out, nnz;
    uint16_t *entries; /* d_in · nnz, column-major: row | sign << 15 */
    float scale;       /* 1/√nnz */
    uint64_t checksum;
};

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void generate(uint64_t seed, uint32_t d_in, uint32_t d_out, uint32_t nnz, uint16_t *e) {
    for (uint32_t j = 0; j < d_in; j++) {
        uint64_t s = seed ^ ((uint64_t)j * 0xD1B54A32D192ED03ull);
        uint16_t *col = e + (size_t)j * nnz;
        uint32_t got = 0;
        while (got < nnz) {
            uint64_t r = splitmix(&s);
            /* row by multiply-shift of the high 32 bits; sign from the lowest bit */
            uint32_t row = (uint32_t)(((r >> 32) * (uint64_t)d_out) >> 32);
            bool dup = false;
            for (uint32_t k = 0; k < got; k++) dup |= (col[k] & 0x7fff) == row;
            if (dup) continue;
            col[got++] = (uint16_t)(row | ((r & 1u) << 15));
        }
    }
}

static uint64_t entries_hash(const uint16_t *e, size_t count) {
    /* hash the little-endian bytes so the checksum is the same on every host */
    XXH3_state_t *st = XXH3_createState();
    if (!st) return 0;
    XXH3_64bits_reset(st);
    uint8_t buf[512];
    size_t i = 0;
    while (i < count) {
        size_t n = 0;
        for (; i < count && n + 2 <= sizeof buf; i++) {
            buf[n++] = (uint8_t)(e[i] & 0xff);
            buf[n++] = (uint8_t)(e[i] >> 8);
        }
        XXH3_64bits_update(st, buf, n);
    }
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return h;
}

static dc_status check_dims(uint32_t d_in, uint32_t d_out, uint32_t nnz, const char *what) {
    if (d_in == 0 || d_in > (1u << 24) || d_out == 0 || d_out > 32768 || nnz == 0 ||
        nnz > d_out || nnz > 64)
        return dc_fail(DC_ERR_INVALID_VALUE,
                       "%s: sparse projection dims d_in %u, d_out %u, nnz %u are out of range", what,
                       d_in, d_out, nnz);
    return DC_OK;
}

static dc_status alloc_proj(uint64_t seed, uint32_t d_in, uint32_t d_out, uint32_t nnz,
                            dc_sparse_projection **out) {
    dc_sparse_projection *p = calloc(1, sizeof *p);
    if (!p) return dc_fail(DC_ERR_OUT_OF_MEMORY, "sparse projection");
    p->entries = malloc((size_t)d_in * nnz * sizeof *p->entries);
    if (!p->entries) {
        free(p);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "sparse projection entries");
    }
    p->seed = seed;
    p->d_in = d_in;
    p->d_out = d_out;
    p->nnz = nnz;
    p->scale = (float)(1.0 / sqrt((double)nnz));
    *out = p;
    return DC_OK;
}

dc_status dc_sparse_projection_create(uint64_t seed, uint32_t d_in, uint32_t d_out, uint32_t nnz,
                                      dc_sparse_projection **out) {
    *out = NULL;
    dc_status st = check_dims(d_in, d_out, nnz, "create");
    if (st != DC_OK) return st;
    dc_sparse_projection *p = NULL;
    if ((st = alloc_proj(seed, d_in, d_out, nnz, &p))) return st;
    generate(seed, d_in, d_out, nnz, p->entries);
    p->checksum = entries_hash(p->entries, (size_t)d_in * nnz);
    *out = p;
    return DC_OK;
}

void dc_sparse_projection_free(dc_sparse_projection *p) {
    if (!p) return;
    free(p->entries);
    free(p);
}

size_t dc_sparse_projection_bytes(const dc_sparse_projection *p) {
    return p ? sizeof *p + (size_t)p->d_in * p->nnz * sizeof *p->entries : 0;
}
uint64_t dc_sparse_projection_seed(const dc_sparse_projection *p) { return p->seed; }
uint32_t dc_sparse_projection_d_in(const dc_sparse_projection *p) { return p->d_in; }
uint32_t dc_sparse_projection_d_out(const dc_sparse_projection *p) { return p->d_out; }
uint64_t dc_sparse_projection_checksum(const dc_sparse_projection *p) { return p->checksum; }

static void add_column(const dc_sparse_projection *p, uint32_t j, float x, float *y) {
    const uint16_t *col = p->entries + (size_t)j * p->nnz;
    float v = x * p->scale;
    for (uint32_t k = 0; k < p->nnz; k++) y[col[k] & 0x7fff] += (col[k] & 0x8000) ? -v : v;
}

void dc_sparse_projection_apply_dense(const dc_sparse_projection *p, const float *x, float *y) {
    memset(y, 0, (size_t)p->d_out * sizeof *y);
    for (uint32_t j = 0; j < p->d_in; j++)
        if (x[j] != 0.0f) add_column(p, j, x[j], y);
}

dc_status dc_sparse_projection_apply(const dc_sparse_projection *p, const uint32_t *indices,
                                     const float *values, uint32_t nnz, float *y) {
    memset(y, 0, (size_t)p->d_out * sizeof *y);
    for (uint32_t i = 0; i < nnz; i++) {
        if (indices[i] >= p->d_in)
            return dc_fail(DC_ERR_INVALID_VALUE, "sparse index %u at %u is outside %u", indices[i],
                           i, p->d_in);
        add_column(p, indices[i], values[i], y);
    }
    return DC_OK;
}

static void put32(uint8_t *b, uint32_t v) {
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *b, uint64_t v) {
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static uint64_t get64(const uint8_t *b) { return (uint64_t)get32(b) | (uint64_t)get32(b + 4) << 32; }

dc_status dc_sparse_projection_encode(const dc_sparse_projection *p, uint8_t **bytes,
                                      size_t *len) {
    size_t count = (size_t)p->d_in * p->nnz;
    size_t n = DC_SPRJ_HEADER + 2 * count;
    uint8_t *b = malloc(n);
    if (!b) return dc_fail(DC_ERR_OUT_OF_MEMORY, "sparse projection file");
    memcpy(b, dc_sprj_magic, 8);
    put32(b + 8, DC_SPARSE_PROJECTION_VERSION);
    put32(b + 12, p->nnz);
    put32(b + 16, p->d_in);
    put32(b + 20, p->d_out);
    put64(b + 24, p->seed);
    put64(b + 32, p->checksum);
    for (size_t i = 0; i < count; i++) {
        b[DC_SPRJ_HEADER + 2 * i] = (uint8_t)(p->entries[i] & 0xff);
        b[DC_SPRJ_HEADER + 2 * i + 1] = (uint8_t)(p->entries[i] >> 8);
    }
    *bytes = b;
    *len = n;
    return DC_OK;
}

dc_status dc_sparse_projection_decode(const uint8_t *b, size_t len, const char *origin,
                                      dc_sparse_projection **out) {
    *out = NULL;
    if (!origin) origin = "sparse projection";
    if (len < DC_SPRJ_HEADER)
        return dc_fail(DC_ERR_SERIALIZATION, "%s: %zu bytes is shorter than the %u-byte header",
                       origin, len, DC_SPRJ_HEADER);
    if (memcmp(b, dc_sprj_magic, 8) != 0)
        return dc_fail(DC_ERR_SERIALIZATION, "%s: bad magic (not a dodeca sparse projection)", origin);
    uint32_t version = get32(b + 8), nnz = get32(b + 12), d_in = get32(b + 16), d_out = get32(b + 20);
    uint64_t seed = get64(b + 24), sum = get64(b + 32);
    if (version != DC_SPARSE_PROJECTION_VERSION)
        return dc_fail(DC_ERR_SERIALIZATION, "%s: version %u is not supported (expected %u)", origin,
                       version, DC_SPARSE_PROJECTION_VERSION);
    dc_status st = check_dims(d_in, d_out, nnz, origin);
    if (st != DC_OK) return dc_fail(DC_ERR_SERIALIZATION, "%s", dc_error_detail());
    size_t count = (size_t)d_in * nnz;
    if (len != DC_SPRJ_HEADER + 2 * count)
        return dc_fail(DC_ERR_SERIALIZATION, "%s: %zu bytes, the header implies %zu", origin, len,
                       DC_SPRJ_HEADER + 2 * count);
    dc_sparse_projection *p = NULL;
    if ((st = alloc_proj(seed, d_in, d_out, nnz, &p))) return st;
    for (size_t i = 0; i < count; i++)
        p->entries[i] = (uint16_t)(b[DC_SPRJ_HEADER + 2 * i] | b[DC_SPRJ_HEADER + 2 * i + 1] << 8);
    p->checksum = entries_hash(p->entries, count);
    if (p->checksum != sum) {
        uint64_t got = p->checksum;
        dc_sparse_projection_free(p);
        return dc_fail(DC_ERR_SERIALIZATION, "%s: checksum mismatch (file %016llx, data %016llx)",
                       origin, (unsigned long long)sum, (unsigned long long)got);
    }
    /* the entries must be exactly what the seed generates: a silent change is an error */
    uint16_t *expect = malloc(count * sizeof *expect);
    if (!expect) {
        dc_sparse_projection_free(p);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "sparse projection check");
    }
    generate(seed, d_in, d_out, nnz, expect);
    size_t bad = count;
    for (size_t i = 0; i < count && bad == count; i++)
        if (expect[i] != p->entries[i]) bad = i;
    free(expect);
    if (bad != count) {
        dc_sparse_projection_free(p);
        return dc_fail(DC_ERR_SERIALIZATION,
                       "%s: entry %zu (column %zu) differs from the projection seed %llu generates",
                       origin, bad, bad / nnz, (unsigned long long)seed);
    }
    *out = p;
    return DC_OK;
}

dc_status dc_sparse_projection_save(const dc_sparse_projection *p, const char *path) {
    uint8_t *b;
    size_t n;
    dc_status st = dc_sparse_projection_encode(p, &b, &n);
    if (st != DC_OK) return st;
    FILE *f = fopen(path, "wb");
    if (!f) {
        st = dc_fail(DC_ERR_IO, "create %s: %s", path, strerror(errno));
    } else {
        if (fwrite(b, 1, n, f) != n) st = dc_fail(DC_ERR_IO, "write %s: %s", path, strerror(errno));
        if (fclose(f) != 0 && st == DC_OK) st = dc_fail(DC_ERR_IO, "close %s: %s", path, strerror(errno));
    }
    free(b);
    return st;
}

dc_status dc_sparse_projection_load(const char *path, dc_sparse_projection **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return dc_fail(DC_ERR_IO, "open %s: %s", path, strerror(errno));
    uint8_t *b = NULL;
    size_t n = 0, cap = 0;
    dc_status st = DC_OK;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            uint8_t *nb = realloc(b, cap);
            if (!nb) {
                st = dc_fail(DC_ERR_OUT_OF_MEMORY, "reading %s", path);
                break;
            }
            b = nb;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (!got) break;
    }
    if (st == DC_OK && ferror(f)) st = dc_fail(DC_ERR_IO, "read %s", path);
    fclose(f);
    if (st == DC_OK) st = dc_sparse_projection_decode(b, n, path, out);
    free(b);
    return st;
}

/* Helpers shared by the checkpoint tests (test_safetensors, test_zip, test_pickle,
 * test_torch_bin): a byte builder, a small ZIP writer for hostile archives, and the comparison
 * of a fixture against tests/data/weights/expected.json (written by gen_weights.py). */
#ifndef DC_TEST_WEIGHTS_FIXTURE_H
#define DC_TEST_WEIGHTS_FIXTURE_H

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <zlib.h>

#include "io/weights.h"
#include "test_support.h"

/* ---- growable byte buffer ---- */

typedef struct dc_tbuf {
    uint8_t *data;
    size_t len, cap;
} dc_tbuf;

static inline void dc_tbuf_put(dc_tbuf *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        b->data = realloc(b->data, cap);
        assert_non_null(b->data);
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
}

static inline void dc_tbuf_u8(dc_tbuf *b, uint8_t v) { dc_tbuf_put(b, &v, 1); }
static inline void dc_tbuf_u16(dc_tbuf *b, uint16_t v) {
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    dc_tbuf_put(b, x, 2);
}
static inline void dc_tbuf_u32(dc_tbuf *b, uint32_t v) {
    for (int i = 0; i < 4; i++) dc_tbuf_u8(b, (uint8_t)(v >> (8 * i)));
}
static inline void dc_tbuf_u64(dc_tbuf *b, uint64_t v) {
    for (int i = 0; i < 8; i++) dc_tbuf_u8(b, (uint8_t)(v >> (8 * i)));
}
static inline void dc_tbuf_str(dc_tbuf *b, const char *s) { dc_tbuf_put(b, s, strlen(s)); }

/* ---- safetensors ---- */

/* u64 header length + header + data; the header is padded with spaces to `pad_to`
 * (1 for none). */
static inline uint8_t *dc_st_build(const char *header, size_t pad_to, const void *data,
                                   size_t data_len, size_t *len) {
    dc_tbuf b = {0};
    size_t n = strlen(header);
    size_t padded = (n + pad_to - 1) / pad_to * pad_to;
    dc_tbuf_u64(&b, padded);
    dc_tbuf_str(&b, header);
    for (size_t i = n; i < padded; i++) dc_tbuf_u8(&b, ' ');
    dc_tbuf_put(&b, data, data_len);
    *len = b.len;
    return b.data;
}

/* Opens bytes from an exact-size heap copy so AddressSanitizer sees any overread; on success
 * reads every tensor byte, then closes. */
static inline dc_status dc_open_bytes(const void *bytes, size_t len) {
    void *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len) memcpy(copy, bytes, len);
    dc_weights *w = NULL;
    dc_status st = dc_weights_open_memory(copy, len, "test-bytes", &w);
    if (st == DC_OK) {
        unsigned sum = 0;
        for (size_t i = 0; i < dc_weights_count(w); i++) {
            const dc_tensor_view *t = dc_weights_tensor(w, i);
            for (uint64_t k = 0; k < t->nbytes; k++) sum += ((const uint8_t *)t->data)[k];
        }
        (void)sum;
        dc_weights_close(w);
    } else {
        assert_null(w);
        if (dc_error_detail()[0] == '\0') fail_msg("failure without a detail");
    }
    free(copy);
    return st;
}

/* ---- zip writer ---- */

typedef struct dc_tzip_entry {
    const char *name;
    size_t name_len; /* 0: strlen(name) */
    const void *data;
    size_t len;
    uint16_t method; /* 0 stored, 8 deflate (compressed here), other: written as stored */
    uint16_t flags;
    uint32_t crc_xor; /* flips CRC bits to fake a mismatch */
} dc_tzip_entry;

typedef struct dc_tzip_opts {
    bool zip64;               /* write ZIP64 EOCD + locator (torch always does) */
    bool saturate;            /* classic EOCD fields 0xFFFF/0xFFFFFFFF (needs zip64) */
    int64_t cd_offset_delta;  /* added to the recorded central directory offset */
    int64_t count_override;   /* >= 0: recorded entry count */
    int64_t size_override;    /* >= 0: declared uncompressed size of every entry */
} dc_tzip_opts;

static inline size_t dc_tzip_deflate(const void *src, size_t n, uint8_t **out) {
    z_stream s;
    memset(&s, 0, sizeof s);
    assert_int_equal(deflateInit2(&s, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&s, (uLong)n) + 16;
    *out = malloc(cap);
    assert_non_null(*out);
    s.next_in = (Bytef *)(uintptr_t)src;
    s.avail_in = (uInt)n;
    s.next_out = *out;
    s.avail_out = (uInt)cap;
    assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
    size_t got = cap - s.avail_out;
    deflateEnd(&s);
    return got;
}

static inline uint8_t *dc_tzip_build(const dc_tzip_entry *e, size_t n, const dc_tzip_opts *o,
                                     size_t *len) {
    dc_tzip_opts none = {.count_override = -1, .size_override = -1};
    if (!o) o = &none;
    dc_tbuf b = {0};
    uint64_t *offs = calloc(n ? n : 1, sizeof *offs);
    uint64_t *csizes = calloc(n ? n : 1, sizeof *csizes);
    assert_non_null(offs);
    assert_non_null(csizes);
    for (size_t i = 0; i < n; i++) {
        size_t nl = e[i].name_len ? e[i].name_len : strlen(e[i].name);
        uint8_t *comp = NULL;
        const void *payload = e[i].data;
        size_t plen = e[i].len;
        if (e[i].method == 8) {
            plen = dc_tzip_deflate(e[i].data, e[i].len, &comp);
            payload = comp;
        }
        offs[i] = b.len;
        csizes[i] = plen;
        uint32_t crc = (uint32_t)crc32(0, (const Bytef *)e[i].data, (uInt)e[i].len) ^ e[i].crc_xor;
        dc_tbuf_u32(&b, 0x04034b50);
        dc_tbuf_u16(&b, 20);
        dc_tbuf_u16(&b, e[i].flags);
        dc_tbuf_u16(&b, e[i].method);
        dc_tbuf_u32(&b, 0);
        dc_tbuf_u32(&b, crc);
        dc_tbuf_u32(&b, (uint32_t)plen);
        dc_tbuf_u32(&b, (uint32_t)(o->size_override >= 0 ? (uint64_t)o->size_override : e[i].len));
        dc_tbuf_u16(&b, (uint16_t)nl);
        dc_tbuf_u16(&b, 0);
        dc_tbuf_put(&b, e[i].name, nl);
        dc_tbuf_put(&b, payload, plen);
        free(comp);
    }
    uint64_t cd_start = b.len;
    for (size_t i = 0; i < n; i++) {
        size_t nl = e[i].name_len ? e[i].name_len : strlen(e[i].name);
        uint32_t crc = (uint32_t)crc32(0, (const Bytef *)e[i].data, (uInt)e[i].len) ^ e[i].crc_xor;
        dc_tbuf_u32(&b, 0x02014b50);
        dc_tbuf_u16(&b, 20);
        dc_tbuf_u16(&b, 20);
        dc_tbuf_u16(&b, e[i].flags);
        dc_tbuf_u16(&b, e[i].method);
        dc_tbuf_u32(&b, 0);
        dc_tbuf_u32(&b, crc);
        dc_tbuf_u32(&b, (uint32_t)csizes[i]);
        dc_tbuf_u32(&b, (uint32_t)(o->size_override >= 0 ? (uint64_t)o->size_override : e[i].len));
        dc_tbuf_u16(&b, (uint16_t)nl);
        dc_tbuf_u16(&b, 0);
        dc_tbuf_u16(&b, 0);
        dc_tbuf_u16(&b, 0);
        dc_tbuf_u16(&b, 0);
        dc_tbuf_u32(&b, 0);
        dc_tbuf_u32(&b, (uint32_t)offs[i]);
        dc_tbuf_put(&b, e[i].name, nl);
    }
    uint64_t cd_size = b.len - cd_start;
    uint64_t count = o->count_override >= 0 ? (uint64_t)o->count_override : n;
    uint64_t cd_off = (uint64_t)((int64_t)cd_start + o->cd_offset_delta);
    if (o->zip64) {
        uint64_t z64 = b.len;
        dc_tbuf_u32(&b, 0x06064b50);
        dc_tbuf_u64(&b, 44);
        dc_tbuf_u16(&b, 45);
        dc_tbuf_u16(&b, 45);
        dc_tbuf_u32(&b, 0);
        dc_tbuf_u32(&b, 0);
        dc_tbuf_u64(&b, count);
        dc_tbuf_u64(&b, count);
        dc_tbuf_u64(&b, cd_size);
        dc_tbuf_u64(&b, cd_off);
        dc_tbuf_u32(&b, 0x07064b50);
        dc_tbuf_u32(&b, 0);
        dc_tbuf_u64(&b, z64);
        dc_tbuf_u32(&b, 1);
    }
    dc_tbuf_u32(&b, 0x06054b50);
    dc_tbuf_u16(&b, 0);
    dc_tbuf_u16(&b, 0);
    dc_tbuf_u16(&b, o->saturate ? 0xFFFF : (uint16_t)count);
    dc_tbuf_u16(&b, o->saturate ? 0xFFFF : (uint16_t)count);
    dc_tbuf_u32(&b, o->saturate ? 0xFFFFFFFFu : (uint32_t)cd_size);
    dc_tbuf_u32(&b, o->saturate ? 0xFFFFFFFFu : (uint32_t)cd_off);
    dc_tbuf_u16(&b, 0);
    free(offs);
    free(csizes);
    *len = b.len;
    return b.data;
}

/* ---- expected.json ---- */

static inline cJSON *dc_expected_load(void) {
    size_t len;
    char *text = dc_test_read_file(dc_test_data_path("weights/expected.json"), &len);
    assert_non_null(text);
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    assert_non_null(root);
    return root;
}

static inline void dc_hex_decode(const char *hex, uint8_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

/* Compares one tensor with its expected.json record: dtype, shape, raw bytes, f32 values. */
static inline void dc_check_tensor(const dc_tensor_view *t, const cJSON *exp) {
    const char *name = cJSON_GetObjectItem(exp, "name")->valuestring;
    assert_string_equal(t->name, name);
    assert_string_equal(dc_dtype_name(t->dtype), cJSON_GetObjectItem(exp, "dtype")->valuestring);
    const cJSON *shape = cJSON_GetObjectItem(exp, "shape");
    assert_int_equal(t->ndim, cJSON_GetArraySize(shape));
    uint64_t numel = 1;
    for (uint32_t d = 0; d < t->ndim; d++) {
        assert_int_equal(t->shape[d], (uint64_t)cJSON_GetArrayItem(shape, (int)d)->valuedouble);
        numel *= t->shape[d];
    }
    assert_int_equal(t->numel, numel);
    const char *hex = cJSON_GetObjectItem(exp, "hex")->valuestring;
    size_t nbytes = strlen(hex) / 2;
    assert_int_equal(t->nbytes, nbytes);
    if (nbytes) {
        assert_non_null(t->data);
        size_t align = dc_dtype_size(t->dtype);
        if (align > 8) align = 8;
        if (align) assert_int_equal((uintptr_t)t->data % align, 0);
        uint8_t *raw = malloc(nbytes);
        assert_non_null(raw);
        dc_hex_decode(hex, raw, nbytes);
        if (memcmp(raw, t->data, nbytes) != 0) fail_msg("tensor %s: bytes differ", name);
        free(raw);
    }
    float *vals = NULL;
    assert_ok(dc_tensor_view_to_f32(t, &vals));
    double sum = 0;
    for (uint64_t i = 0; i < t->numel; i++) sum += vals[i];
    double want = cJSON_GetObjectItem(exp, "sum")->valuedouble;
    if (fabs(sum - want) > 1e-5 * fmax(1.0, fabs(want)))
        fail_msg("tensor %s: sum %.9g, expected %.9g", name, sum, want);
    const cJSON *first = cJSON_GetObjectItem(exp, "first");
    for (int i = 0; i < cJSON_GetArraySize(first); i++) {
        float w = (float)cJSON_GetArrayItem(first, i)->valuedouble;
        if (vals[i] != w) fail_msg("tensor %s[%d]: %.9g, expected %.9g", name, i, vals[i], w);
    }
    free(vals);
}

/* Opens tests/data/weights/<rel> and checks format, metadata and every tensor against
 * expected.json. Returns the open weights for further checks (caller closes). */
static inline dc_weights *dc_check_fixture(const char *rel) {
    cJSON *root = dc_expected_load();
    const cJSON *files = cJSON_GetObjectItem(root, "files");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(files, rel);
    if (!exp) fail_msg("expected.json has no entry for %s", rel);
    char path[1024];
    char rel_path[512];
    snprintf(rel_path, sizeof rel_path, "weights/%s", rel);
    snprintf(path, sizeof path, "%s", dc_test_data_path(rel_path));
    dc_weights *w = NULL;
    assert_ok(dc_weights_open(path, &w));
    assert_string_equal(dc_weights_format_name(w),
                        cJSON_GetObjectItem(exp, "format")->valuestring);
    const cJSON *meta = cJSON_GetObjectItem(exp, "metadata");
    assert_int_equal(dc_weights_metadata_count(w), cJSON_GetArraySize(meta));
    for (const cJSON *m = meta->child; m; m = m->next) {
        const char *v = dc_weights_metadata_get(w, m->string);
        assert_non_null(v);
        assert_string_equal(v, m->valuestring);
    }
    const cJSON *tensors = cJSON_GetObjectItem(exp, "tensors");
    assert_int_equal(dc_weights_count(w), cJSON_GetArraySize(tensors));
    for (const cJSON *t = tensors->child; t; t = t->next) {
        const char *name = cJSON_GetObjectItem(t, "name")->valuestring;
        const dc_tensor_view *v = dc_weights_find(w, name);
        if (!v) fail_msg("%s: tensor %s missing", rel, name);
        dc_check_tensor(v, t);
    }
    cJSON_Delete(root);
    return w;
}

#endif

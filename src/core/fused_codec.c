/* Versioned binary encoding of a fused embedding. All integers and floats little-endian:
 *
 *   0  "DCFE"            magic
 *   4  u16 version       DC_FUSED_FORMAT_VERSION
 *   6  u16 reserved      0
 *   8  u32 dim           1536
 *  12  u32 num_experts   8
 *  16  u32 num_selected  k
 *  20  u32 present_mask
 *  24  u64 pipeline_latency_us
 *  32  u64 hash.lo, u64 hash.hi
 *  48  f32 vector[dim], f32 expert_weights[num_experts], u8 selected[k]
 *      u32 colbert_tokens, u32 colbert_dim, f32 rows[tokens × dim]
 *      u32 sparse_vocab, u32 sparse_nnz, u32 indices[nnz], f32 values[nnz]
 *      u64 XXH3-64 of every byte before it
 *
 * Decoding checks every length against the bytes that remain before reading, then the checksum,
 * then the value rules of dc_fused_validate. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "core/bytes.h"
#include "core/error.h"
#include "dodeca/types.h"

#define HEADER_BYTES 48u
#define CHECKSUM_BYTES 8u
static const uint8_t dc_fused_magic[4] = {'D', 'C', 'F', 'E'};

size_t dc_fused_encoded_size(const dc_fused_embedding *f) {
    size_t n = HEADER_BYTES;
    n += 4u * DC_DIM_FUSED + 4u * DC_NUM_EXPERTS + f->num_selected;
    n += 8 + 4u * (size_t)f->colbert.n_tokens * f->colbert.dim;
    n += 8 + 8u * (size_t)f->sparse.nnz;
    return n + CHECKSUM_BYTES;
}

static uint8_t *put_f32s(uint8_t *p, const float *v, size_t n) {
    for (size_t i = 0; i < n; i++, p += 4) dc_put_u32le(p, dc_f32_bits(v[i]));
    return p;
}

dc_status dc_fused_encode(const dc_fused_embedding *f, void *buf, size_t cap, size_t *written) {
    if (!f || !buf) return dc_fail(DC_ERR_INVALID_ARGUMENT, "NULL fused embedding or buffer");
    dc_status st = dc_fused_validate(f);
    if (st != DC_OK) return dc_fail_context(st, "refusing to encode an invalid fused embedding");
    size_t need = dc_fused_encoded_size(f);
    if (cap < need)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "buffer of %zu bytes is too small; need %zu", cap,
                       need);
    uint8_t *p = buf;
    memcpy(p, dc_fused_magic, 4);
    dc_put_u16le(p + 4, DC_FUSED_FORMAT_VERSION);
    dc_put_u16le(p + 6, 0);
    dc_put_u32le(p + 8, DC_DIM_FUSED);
    dc_put_u32le(p + 12, DC_NUM_EXPERTS);
    dc_put_u32le(p + 16, f->num_selected);
    dc_put_u32le(p + 20, f->present_mask);
    dc_put_u64le(p + 24, f->pipeline_latency_us);
    dc_put_u64le(p + 32, f->content_hash.lo);
    dc_put_u64le(p + 40, f->content_hash.hi);
    p += HEADER_BYTES;
    p = put_f32s(p, f->vector, DC_DIM_FUSED);
    p = put_f32s(p, f->expert_weights, DC_NUM_EXPERTS);
    memcpy(p, f->selected_experts, f->num_selected);
    p += f->num_selected;
    dc_put_u32le(p, f->colbert.n_tokens);
    dc_put_u32le(p + 4, f->colbert.dim);
    p = put_f32s(p + 8, f->colbert.data, (size_t)f->colbert.n_tokens * f->colbert.dim);
    dc_put_u32le(p, f->sparse.vocab_size);
    dc_put_u32le(p + 4, f->sparse.nnz);
    p += 8;
    for (uint32_t i = 0; i < f->sparse.nnz; i++, p += 4) dc_put_u32le(p, f->sparse.indices[i]);
    p = put_f32s(p, f->sparse.values, f->sparse.nnz);
    dc_put_u64le(p, XXH3_64bits(buf, (size_t)(p - (uint8_t *)buf)));
    p += CHECKSUM_BYTES;
    if (written) *written = (size_t)(p - (uint8_t *)buf);
    return DC_OK;
}

/* A bounds-checked reader over the encoded bytes. */
typedef struct reader {
    const uint8_t *p;
    size_t left;
    size_t offset;
} reader;

static dc_status take(reader *r, size_t n, const char *what, const uint8_t **out) {
    *out = NULL;
    if (n > r->left)
        return dc_fail(DC_ERR_SERIALIZATION,
                       "fused embedding truncated: %s needs %zu bytes at offset %zu, %zu remain",
                       what, n, r->offset, r->left);
    *out = r->p;
    r->p += n;
    r->left -= n;
    r->offset += n;
    return DC_OK;
}

static dc_status take_u32(reader *r, const char *what, uint32_t *v) {
    const uint8_t *p = NULL;
    dc_status st = take(r, 4, what, &p);
    if (st == DC_OK) *v = dc_get_u32le(p);
    return st;
}

static dc_status take_f32s(reader *r, float *dst, size_t n, const char *what) {
    const uint8_t *p = NULL;
    dc_status st = take(r, n * 4, what, &p);
    for (size_t i = 0; st == DC_OK && i < n; i++) dst[i] = dc_f32_from_bits(dc_get_u32le(p + 4 * i));
    return st;
}

/* Reads an element count and checks that count × elem_size bytes can still follow. */
static dc_status take_count(reader *r, uint32_t *count, uint64_t elem_size, const char *what) {
    dc_status st = take_u32(r, what, count);
    if (st == DC_OK && elem_size && *count > r->left / elem_size)
        return dc_fail(DC_ERR_SERIALIZATION,
                       "fused embedding: %s = %u at offset %zu needs more bytes than remain (%zu)",
                       what, (unsigned)*count, r->offset - 4, r->left);
    return st;
}

static dc_status decode_body(reader *r, dc_fused_embedding *out) {
    const uint8_t *h = NULL;
    dc_status st = take(r, HEADER_BYTES, "header", &h);
    if (st != DC_OK) return st;
    if (memcmp(h, dc_fused_magic, 4) != 0)
        return dc_fail(DC_ERR_SERIALIZATION, "not a fused embedding: bad magic");
    uint16_t version = dc_get_u16le(h + 4);
    if (version != DC_FUSED_FORMAT_VERSION)
        return dc_fail(DC_ERR_SERIALIZATION, "fused embedding format version %u; this build reads %d",
                       (unsigned)version, DC_FUSED_FORMAT_VERSION);
    if (dc_get_u16le(h + 6) != 0)
        return dc_fail(DC_ERR_SERIALIZATION, "fused embedding: reserved field at offset 6 is not 0");
    uint32_t dim = dc_get_u32le(h + 8), experts = dc_get_u32le(h + 12), k = dc_get_u32le(h + 16);
    if (dim != DC_DIM_FUSED || experts != DC_NUM_EXPERTS)
        return dc_fail(DC_ERR_INVALID_DIMENSION,
                       "fused embedding has dim %u and %u experts; expected %d and %d",
                       (unsigned)dim, (unsigned)experts, DC_DIM_FUSED, DC_NUM_EXPERTS);
    if (k < 1 || k > DC_NUM_EXPERTS)
        return dc_fail(DC_ERR_SERIALIZATION, "fused embedding: num_selected = %u at offset 16",
                       (unsigned)k);
    out->num_selected = (uint8_t)k;
    out->present_mask = dc_get_u32le(h + 20);
    out->pipeline_latency_us = dc_get_u64le(h + 24);
    out->content_hash.lo = dc_get_u64le(h + 32);
    out->content_hash.hi = dc_get_u64le(h + 40);

    if ((st = take_f32s(r, out->vector, DC_DIM_FUSED, "vector")) != DC_OK) return st;
    if ((st = take_f32s(r, out->expert_weights, DC_NUM_EXPERTS, "expert weights")) != DC_OK)
        return st;
    const uint8_t *sel = NULL;
    if ((st = take(r, k, "selected experts", &sel)) != DC_OK) return st;
    memcpy(out->selected_experts, sel, k);

    uint32_t rows, cols;
    if ((st = take_u32(r, "colbert token count", &rows)) != DC_OK) return st;
    if ((st = take_count(r, &cols, 4ull * rows, "colbert dim")) != DC_OK) return st;
    if (rows && cols) {
        out->colbert.data = malloc((size_t)rows * cols * sizeof(float));
        if (!out->colbert.data)
            return dc_fail(DC_ERR_OUT_OF_MEMORY, "colbert matrix %u × %u", rows, cols);
        out->colbert.n_tokens = rows;
        out->colbert.dim = cols;
        if ((st = take_f32s(r, out->colbert.data, (size_t)rows * cols, "colbert rows")) != DC_OK)
            return st;
    } else if (rows || cols) {
        return dc_fail(DC_ERR_SERIALIZATION, "fused embedding: colbert matrix %u × %u", rows, cols);
    }

    uint32_t vocab, nnz;
    if ((st = take_u32(r, "sparse vocabulary size", &vocab)) != DC_OK) return st;
    if ((st = take_count(r, &nnz, 8, "sparse entry count")) != DC_OK) return st;
    out->sparse.vocab_size = vocab;
    if (nnz) {
        out->sparse.indices = malloc((size_t)nnz * sizeof(uint32_t));
        out->sparse.values = malloc((size_t)nnz * sizeof(float));
        if (!out->sparse.indices || !out->sparse.values)
            return dc_fail(DC_ERR_OUT_OF_MEMORY, "sparse vector of %u entries", (unsigned)nnz);
        out->sparse.nnz = nnz;
        const uint8_t *idx = NULL;
        if ((st = take(r, 4ull * nnz, "sparse indices", &idx)) != DC_OK) return st;
        for (uint32_t i = 0; i < nnz; i++) out->sparse.indices[i] = dc_get_u32le(idx + 4 * i);
        if ((st = take_f32s(r, out->sparse.values, nnz, "sparse values")) != DC_OK) return st;
    }
    return DC_OK;
}

dc_status dc_fused_decode(const void *buf, size_t len, dc_fused_embedding *out) {
    if (!buf || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "NULL buffer or output");
    dc_fused_init(out);
    if (len < HEADER_BYTES + CHECKSUM_BYTES)
        return dc_fail(DC_ERR_SERIALIZATION, "fused embedding truncated: %zu bytes", len);
    /* The checksum comes first so corrupted bytes are reported as corruption, not as whichever
     * field they happened to land in. */
    size_t body = len - CHECKSUM_BYTES;
    uint64_t want = dc_get_u64le((const uint8_t *)buf + body);
    if (XXH3_64bits(buf, body) != want)
        return dc_fail(DC_ERR_SERIALIZATION,
                       "fused embedding checksum mismatch (%zu bytes): corrupted or truncated", len);
    reader r = {buf, body, 0};
    dc_status st = decode_body(&r, out);
    if (st == DC_OK && r.left != 0)
        st = dc_fail(DC_ERR_SERIALIZATION, "fused embedding: %zu unexpected bytes at offset %zu",
                     r.left, r.offset);
    if (st == DC_OK) st = dc_fused_validate(out);
    if (st != DC_OK) dc_fused_free(out);
    return st;
}

/* Cache record codec. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "core/bytes.h"
#include "core/error.h"
#include "runtime/record.h"

static const uint8_t magic[4] = {'D', 'C', 'P', 'R'};

/* Floats are little-endian IEEE-754 in the record; on such hosts a block copy does it. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define DC_LE_HOST 1
#endif

static void put_f32s(uint8_t *dst, const float *v, uint32_t n) {
#ifdef DC_LE_HOST
    memcpy(dst, v, (size_t)n * 4);
#else
    for (uint32_t k = 0; k < n; k++) dc_put_u32le(dst + 4 * k, dc_f32_bits(v[k]));
#endif
}

static void get_f32s(float *v, const uint8_t *src, uint32_t n) {
#ifdef DC_LE_HOST
    memcpy(v, src, (size_t)n * 4);
#else
    for (uint32_t k = 0; k < n; k++) v[k] = dc_f32_from_bits(dc_get_u32le(src + 4 * k));
#endif
}
#define HEAD 28u

dc_status dc_record_encode(const dc_pipeline_result *r, uint8_t **out, size_t *len) {
    *out = NULL;
    *len = 0;
    size_t flen = dc_fused_encoded_size(&r->fused);
    size_t total = HEAD + flen + 8;
    for (int i = 0; i < DC_NUM_MODELS; i++)
        if ((r->ok_mask >> i) & 1u) {
            if (!r->models[i].vector) return dc_fail(DC_ERR_INTERNAL, "record: model %d has no vector", i);
            total += 8 + (size_t)r->models[i].dim * 4;
        }
    uint8_t *b = malloc(total);
    if (!b) return dc_fail(DC_ERR_OUT_OF_MEMORY, "cache record of %zu bytes", total);
    memcpy(b, magic, 4);
    dc_put_u16le(b + 4, DC_RECORD_VERSION);
    dc_put_u16le(b + 6, 0);
    dc_put_u64le(b + 8, dc_f64_bits(r->t_ref));
    dc_put_u32le(b + 16, r->ok_mask);
    dc_put_u32le(b + 20, r->truncated_mask);
    dc_put_u32le(b + 24, (uint32_t)flen);
    size_t w = 0;
    dc_status st = dc_fused_encode(&r->fused, b + HEAD, flen, &w);
    if (st != DC_OK || w != flen) {
        free(b);
        return st != DC_OK ? st : dc_fail(DC_ERR_INTERNAL, "record: fused size changed");
    }
    size_t off = HEAD + flen;
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        if (!((r->ok_mask >> i) & 1u)) continue;
        const dc_model_result *m = &r->models[i];
        dc_put_u32le(b + off, m->tokens_used);
        dc_put_u32le(b + off + 4, m->dim);
        off += 8;
        put_f32s(b + off, m->vector, m->dim);
        off += (size_t)m->dim * 4;
    }
    dc_put_u64le(b + off, XXH3_64bits(b, off));
    *out = b;
    *len = total;
    return DC_OK;
}

/* Walks the layout; with r == NULL only checks it. `verify` = check the record checksum
 * (values from outside the process); the fused part is always checked by its decoder. */
static dc_status parse(const uint8_t *b, size_t len, dc_pipeline_result *r, bool verify) {
    if (len < HEAD + 8) return dc_fail(DC_ERR_SERIALIZATION, "cache record: %zu bytes is too short", len);
    if (memcmp(b, magic, 4) != 0) return dc_fail(DC_ERR_SERIALIZATION, "cache record: bad magic");
    if (dc_get_u16le(b + 4) != DC_RECORD_VERSION || dc_get_u16le(b + 6) != 0)
        return dc_fail(DC_ERR_SERIALIZATION, "cache record: version %u flags %u not readable",
                       dc_get_u16le(b + 4), dc_get_u16le(b + 6));
    if (verify && dc_get_u64le(b + len - 8) != XXH3_64bits(b, len - 8))
        return dc_fail(DC_ERR_SERIALIZATION, "cache record: checksum mismatch");
    uint64_t tb = dc_get_u64le(b + 8);
    double t_ref;
    memcpy(&t_ref, &tb, 8);
    uint32_t ok = dc_get_u32le(b + 16), trunc = dc_get_u32le(b + 20), flen = dc_get_u32le(b + 24);
    if (!isfinite(t_ref) || (ok & ~DC_ALL_MODELS_MASK) || (trunc & ~ok) || flen > len - HEAD - 8)
        return dc_fail(DC_ERR_SERIALIZATION, "cache record: bad header fields");
    /* decode straight into the result (no 6 KB copy); a check-only call uses a local */
    dc_fused_embedding local;
    dc_fused_embedding *fp = r ? &r->fused : &local;
    if (r) dc_fused_free(fp); /* r may hold nothing else: it is in the init state */
    dc_status st = dc_fused_decode(b + HEAD, flen, fp);
    if (st != DC_OK) return dc_fail_context(DC_ERR_SERIALIZATION, "cache record");
    size_t off = HEAD + flen, end = len - 8;
    float *vec[DC_NUM_MODELS] = {NULL};
    uint32_t dims[DC_NUM_MODELS] = {0}, toks[DC_NUM_MODELS] = {0};
    for (int i = 0; i < DC_NUM_MODELS && st == DC_OK; i++) {
        if (!((ok >> i) & 1u)) continue;
        if (end - off < 8) {
            st = dc_fail(DC_ERR_SERIALIZATION, "cache record: model %d truncated", i);
            break;
        }
        toks[i] = dc_get_u32le(b + off);
        dims[i] = dc_get_u32le(b + off + 4);
        off += 8;
        if (dims[i] != dc_model_info_get((dc_model_id)i)->dim || (end - off) / 4 < dims[i]) {
            st = dc_fail(DC_ERR_SERIALIZATION, "cache record: model %d has a bad width", i);
            break;
        }
        if (r) {
            vec[i] = malloc((size_t)dims[i] * sizeof(float));
            if (!vec[i]) {
                st = dc_fail(DC_ERR_OUT_OF_MEMORY, "cache record vector");
                break;
            }
            get_f32s(vec[i], b + off, dims[i]);
        }
        off += (size_t)dims[i] * 4;
    }
    if (st == DC_OK && off != end) st = dc_fail(DC_ERR_SERIALIZATION, "cache record: trailing bytes");
    if (st != DC_OK || !r) {
        dc_fused_free(fp);
        for (int i = 0; i < DC_NUM_MODELS; i++) free(vec[i]);
        return st;
    }
    r->t_ref = t_ref;
    r->ok_mask = ok;
    r->truncated_mask = trunc;
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        if (!((ok >> i) & 1u)) continue;
        dc_model_result *m = &r->models[i];
        m->status = DC_RUN_OK;
        m->error = DC_OK;
        m->detail[0] = 0;
        m->vector = vec[i];
        m->dim = dims[i];
        m->tokens_used = toks[i];
        m->truncated = (trunc >> i) & 1u;
    }
    return DC_OK;
}

dc_status dc_record_decode(const uint8_t *bytes, size_t len, dc_pipeline_result *r) {
    if (!bytes || !r) return dc_fail(DC_ERR_INVALID_ARGUMENT, "record decode: NULL argument");
    return parse(bytes, len, r, true);
}

dc_status dc_record_decode_trusted(const uint8_t *bytes, size_t len, dc_pipeline_result *r) {
    if (!bytes || !r) return dc_fail(DC_ERR_INVALID_ARGUMENT, "record decode: NULL argument");
    return parse(bytes, len, r, false);
}

bool dc_record_check(const uint8_t *bytes, size_t len) {
    return bytes && parse(bytes, len, NULL, true) == DC_OK;
}

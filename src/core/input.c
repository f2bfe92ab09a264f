/* Inputs: constructors, validation rules (seed F06) and the canonical content hash. */
#include <math.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "core/bytes.h"
#include "core/error.h"
#include "core/utf8.h"
#include "dodeca/types.h"

dc_input dc_input_text(const char *text, size_t len, dc_text_role role) {
    dc_input in = {0};
    in.type = DC_INPUT_TEXT;
    in.content = text;
    in.content_len = len;
    in.role = role;
    return in;
}

dc_input dc_input_code(const char *code, size_t len, const char *language) {
    dc_input in = {0};
    in.type = DC_INPUT_CODE;
    in.content = code;
    in.content_len = len;
    in.language = language;
    return in;
}

dc_input dc_input_image(const uint8_t *bytes, size_t len, dc_image_format format) {
    dc_input in = {0};
    in.type = DC_INPUT_IMAGE;
    in.bytes = bytes;
    in.bytes_len = len;
    in.image_format = format;
    return in;
}

dc_input dc_input_audio(const uint8_t *bytes, size_t len, uint32_t sample_rate, uint8_t channels) {
    dc_input in = {0};
    in.type = DC_INPUT_AUDIO;
    in.bytes = bytes;
    in.bytes_len = len;
    in.sample_rate = sample_rate;
    in.channels = channels;
    return in;
}

static dc_status check_utf8(const char *s, size_t len, const char *what) {
    size_t bad;
    if (!dc_utf8_valid(s, len, &bad))
        return dc_fail(DC_ERR_INVALID_VALUE, "%s is not valid UTF-8 (byte offset %zu)", what, bad);
    return DC_OK;
}

static dc_status check_optional_tag(const char *s, const char *what) {
    if (!s) return DC_OK;
    size_t len = strlen(s);
    if (len == 0) return dc_fail(DC_ERR_INVALID_VALUE, "%s is empty (omit it instead)", what);
    return check_utf8(s, len, what);
}

dc_status dc_input_validate(const dc_input *in) {
    if (!in) return dc_fail(DC_ERR_INVALID_ARGUMENT, "input is NULL");
    dc_status st;
    switch (in->type) {
    case DC_INPUT_TEXT:
    case DC_INPUT_CODE: {
        const char *what = in->type == DC_INPUT_TEXT ? "text" : "code";
        if (!in->content || in->content_len == 0)
            return dc_fail(DC_ERR_EMPTY_INPUT, "%s input is empty", what);
        if ((st = check_utf8(in->content, in->content_len, what)) != DC_OK) return st;
        if (in->type == DC_INPUT_TEXT) {
            if (in->role != DC_ROLE_PASSAGE && in->role != DC_ROLE_QUERY)
                return dc_fail(DC_ERR_INVALID_VALUE, "text role %d is not passage or query",
                               (int)in->role);
            if ((st = check_optional_tag(in->instruction, "instruction")) != DC_OK) return st;
        } else if ((st = check_optional_tag(in->language, "code language")) != DC_OK) {
            return st;
        }
        break;
    }
    case DC_INPUT_IMAGE:
        if (!in->bytes || in->bytes_len == 0)
            return dc_fail(DC_ERR_EMPTY_INPUT, "image input has no bytes");
        if ((unsigned)in->image_format > DC_IMAGE_GIF)
            return dc_fail(DC_ERR_INVALID_VALUE, "image format %d is not png, jpeg, webp or gif",
                           (int)in->image_format);
        break;
    case DC_INPUT_AUDIO:
        if (!in->bytes || in->bytes_len == 0)
            return dc_fail(DC_ERR_EMPTY_INPUT, "audio input has no bytes");
        if (in->sample_rate == 0)
            return dc_fail(DC_ERR_INVALID_VALUE, "audio sample_rate must be > 0");
        if (in->channels != 1 && in->channels != 2)
            return dc_fail(DC_ERR_INVALID_VALUE, "audio channels is %u; expected 1 or 2",
                           (unsigned)in->channels);
        break;
    default:
        return dc_fail(DC_ERR_INVALID_VALUE, "input type %d is not text, code, image or audio",
                       (int)in->type);
    }
    if (in->has_t_event && !isfinite(in->t_event))
        return dc_fail(DC_ERR_INVALID_VALUE, "t_event is not a finite number of seconds");
    if (in->has_t_ref && !isfinite(in->t_ref))
        return dc_fail(DC_ERR_INVALID_VALUE, "t_ref is not a finite number of seconds");
    if (in->has_position && in->position < 0)
        return dc_fail(DC_ERR_INVALID_VALUE, "position %lld is negative", (long long)in->position);
    return DC_OK;
}

size_t dc_input_byte_size(const dc_input *in) {
    if (!in) return 0;
    return in->type == DC_INPUT_TEXT || in->type == DC_INPUT_CODE ? in->content_len
                                                                  : in->bytes_len;
}

/* The canonical encoding feeds every field as (tag, little-endian length, bytes), so no two
 * different inputs share a byte stream and the hash is the same on every platform. Fields that
 * a type does not use (a role on code, say) are not hashed. */
static void hash_field(XXH3_state_t *st, uint8_t tag, const void *p, size_t n) {
    uint8_t head[9];
    head[0] = tag;
    dc_put_u64le(head + 1, (uint64_t)n);
    XXH3_128bits_update(st, head, sizeof head);
    if (n) XXH3_128bits_update(st, p, n);
}

static void hash_u64(XXH3_state_t *st, uint8_t tag, uint64_t v) {
    uint8_t b[8];
    dc_put_u64le(b, v);
    hash_field(st, tag, b, 8);
}

static void hash_str(XXH3_state_t *st, uint8_t tag, const char *s) {
    if (s) hash_field(st, tag, s, strlen(s));
}

static void hash_time(XXH3_state_t *st, uint8_t tag, double t) {
    if (t == 0.0) t = 0.0; /* -0.0 and 0.0 are the same time */
    hash_u64(st, tag, dc_f64_bits(t));
}

enum { H_TYPE = 1, H_CONTENT, H_ROLE, H_INSTRUCTION, H_LANGUAGE, H_BYTES, H_FORMAT, H_RATE,
       H_CHANNELS, H_T_EVENT, H_T_REF, H_POSITION };

dc_hash128 dc_input_hash(const dc_input *in) {
    static const char domain[] = "dodeca.input.v1";
    XXH3_state_t st;
    XXH3_128bits_reset(&st);
    XXH3_128bits_update(&st, domain, sizeof domain - 1);
    hash_u64(&st, H_TYPE, (uint64_t)in->type);
    switch (in->type) {
    case DC_INPUT_TEXT:
        hash_field(&st, H_CONTENT, in->content, in->content_len);
        hash_u64(&st, H_ROLE, (uint64_t)in->role);
        hash_str(&st, H_INSTRUCTION, in->instruction);
        break;
    case DC_INPUT_CODE:
        hash_field(&st, H_CONTENT, in->content, in->content_len);
        hash_str(&st, H_LANGUAGE, in->language);
        break;
    case DC_INPUT_IMAGE:
        hash_field(&st, H_BYTES, in->bytes, in->bytes_len);
        hash_u64(&st, H_FORMAT, (uint64_t)in->image_format);
        break;
    case DC_INPUT_AUDIO:
        hash_field(&st, H_BYTES, in->bytes, in->bytes_len);
        hash_u64(&st, H_RATE, in->sample_rate);
        hash_u64(&st, H_CHANNELS, in->channels);
        break;
    }
    if (in->has_t_event) hash_time(&st, H_T_EVENT, in->t_event);
    if (in->has_t_ref) hash_time(&st, H_T_REF, in->t_ref);
    if (in->has_position) hash_u64(&st, H_POSITION, (uint64_t)in->position);
    XXH128_hash_t h = XXH3_128bits_digest(&st);
    return (dc_hash128){h.low64, h.high64};
}

bool dc_hash128_equal(dc_hash128 a, dc_hash128 b) { return a.lo == b.lo && a.hi == b.hi; }

void dc_hash128_hex(dc_hash128 h, char out[33]) {
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[i] = hex[(h.hi >> (60 - 4 * i)) & 15];
        out[16 + i] = hex[(h.lo >> (60 - 4 * i)) & 15];
    }
    out[32] = '\0';
}

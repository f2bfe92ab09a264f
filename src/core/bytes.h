/* Little-endian byte encoding helpers shared by every binary format we write or read. */
#ifndef DC_CORE_BYTES_H
#define DC_CORE_BYTES_H

#include <stdint.h>
#include <string.h>

static inline void dc_put_u16le(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void dc_put_u32le(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void dc_put_u64le(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t dc_get_u16le(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t dc_get_u32le(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}
static inline uint64_t dc_get_u64le(const uint8_t *p) {
    return (uint64_t)dc_get_u32le(p) | ((uint64_t)dc_get_u32le(p + 4) << 32);
}
static inline uint32_t dc_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float dc_f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline uint64_t dc_f64_bits(double d) {
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

#endif

/* Counter-based seeded random numbers for fusion initialisation and the synthetic task.
 *
 * Every value is a pure function of (seed, stream, index), so a parameter tensor is the same on
 * every host and thread count, and a tensor can be regenerated without generating the others. */
#ifndef DC_FUSION_RNG_H
#define DC_FUSION_RNG_H

#include <math.h>
#include <stdint.h>

static inline uint64_t dc_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The i-th 64-bit value of stream `stream` under `seed`. */
static inline uint64_t dc_rand64(uint64_t seed, uint64_t stream, uint64_t i) {
    return dc_mix64(dc_mix64(seed ^ dc_mix64(stream + 0x9E3779B97F4A7C15ull)) +
                    i * 0x9E3779B97F4A7C15ull);
}

/* Uniform in [0, 1) with 53 bits. */
static inline double dc_rand_unit(uint64_t seed, uint64_t stream, uint64_t i) {
    return (double)(dc_rand64(seed, stream, i) >> 11) * 0x1.0p-53;
}

/* Standard normal (Box–Muller on two counter values; the cosine branch only, so index i maps
 * to exactly one value). */
static inline double dc_rand_normal(uint64_t seed, uint64_t stream, uint64_t i) {
    double u1 = dc_rand_unit(seed, stream, 2 * i), u2 = dc_rand_unit(seed, stream, 2 * i + 1);
    if (u1 < 0x1.0p-60) u1 = 0x1.0p-60;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* A small sequential generator for loops that want a stream of values (tests, synthetic data). */
typedef struct dc_rng {
    uint64_t seed, stream, next;
} dc_rng;

static inline dc_rng dc_rng_make(uint64_t seed, uint64_t stream) {
    dc_rng r = {seed, stream, 0};
    return r;
}
static inline uint64_t dc_rng_u64(dc_rng *r) { return dc_rand64(r->seed, r->stream, r->next++); }
static inline double dc_rng_unit(dc_rng *r) { return dc_rand_unit(r->seed, r->stream, r->next++); }
static inline double dc_rng_normal(dc_rng *r) {
    return dc_rand_normal(r->seed, r->stream, r->next++);
}
/* Cheap approximately normal value (Irwin–Hall sum of four 16-bit uniforms, mean 0, variance
 * 1): for synthetic data, where only iid zero-mean coordinates matter. */
static inline double dc_rng_fast_normal(dc_rng *r) {
    uint64_t x = dc_rng_u64(r);
    uint32_t s = (uint32_t)(x & 0xffff) + (uint32_t)((x >> 16) & 0xffff) +
                 (uint32_t)((x >> 32) & 0xffff) + (uint32_t)(x >> 48);
    return ((double)s / 65536.0 - 2.0) * 1.7320508075688772;
}
/* Uniform integer in [0, n). */
static inline uint32_t dc_rng_below(dc_rng *r, uint32_t n) {
    return (uint32_t)(((dc_rng_u64(r) >> 32) * (uint64_t)n) >> 32);
}

#endif

/* Shared by the GPU test programs: the CUDA backend or a skip (exit 77), random data, errors. */
#ifndef DC_TESTS_GPU_COMMON_H
#define DC_TESTS_GPU_COMMON_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dodeca/status.h"
#include "tensor/backend_loader.h"

#define DC_SKIP 77

static uint64_t g_rng = 0x1234567u;
static inline float rnd(float lo, float hi) {
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return lo + (hi - lo) * (float)((z >> 40) * (1.0 / 16777216.0));
}
static inline float *rnd_array(size_t n, float lo, float hi) {
    float *a = malloc((n ? n : 1) * sizeof *a);
    if (!a) abort();
    for (size_t i = 0; i < n; i++) a[i] = rnd(lo, hi);
    return a;
}

/* v[0..n) random in [-1, 1), then scaled to unit L2 norm (an embedding block). */
static inline void rnd_unit(float *v, size_t n) {
    double s = 0;
    for (size_t j = 0; j < n; j++) {
        v[j] = rnd(-1.0f, 1.0f);
        s += (double)v[j] * v[j];
    }
    for (size_t j = 0; j < n; j++) v[j] = (float)(v[j] / sqrt(s));
}

/* The CUDA backend, or exit 77 naming why there is none. */
static inline dc_backend *gpu_or_skip(const char *prog, const dc_cuda_options *opt) {
    dc_backend *be = NULL;
    if (dc_backend_cuda_create(opt, &be) != DC_OK) {
        printf("%s: SKIP: %s\n", prog, dc_error_detail());
        exit(DC_SKIP);
    }
    return be;
}

/* Normalised mean squared error Σ(a−b)² / Σb² (llama.cpp's test-backend-ops measure). */
static inline double nmse(const float *a, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    if (den == 0) return num == 0 ? 0 : INFINITY;
    return num / den;
}

static inline bool all_finite(const float *a, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(a[i])) return false;
    return true;
}

#endif

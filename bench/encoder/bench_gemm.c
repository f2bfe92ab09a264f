/* GEMM throughput of the CPU backend's prepared linear layers (oneDNN), the peak the encoder
 * benchmark reports its fraction against. Build (until CMake builds bench/):
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude -Isrc bench/encoder/bench_gemm.c \
 *      build/libdodeca.a $(pkg-config --libs libcjson libxxhash zlib libutf8proc libpcre2-8) \
 *      -ldnnl -lpthread -lm -o bench_gemm
 * Run: OMP_NUM_THREADS=N ./bench_gemm   (ONEDNN_VERBOSE=1 shows the kernel oneDNN chose) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tensor/backend.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(void) {
    static const unsigned shapes[][3] = {/* M, N, K */
                                         {16, 768, 768},   {128, 768, 768},  {128, 3072, 768},
                                         {128, 768, 3072}, {4096, 768, 768}, {4096, 3072, 1024},
                                         {1024, 1024, 1024}};
    dc_backend *be;
    if (dc_backend_cpu_create(NULL, &be) != DC_OK) return 1;
    printf("kernels: %s\n%-18s %10s %10s  %s\n", dc_cpu_kernel_isa(), "M x N x K", "best ms",
           "GFLOP/s", "oneDNN impl");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        unsigned m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *w = malloc((size_t)n * k * sizeof *w), *b = calloc(n, sizeof *b);
        float *x = malloc((size_t)m * k * sizeof *x), *y = malloc((size_t)m * n * sizeof *y);
        for (size_t i = 0; i < (size_t)n * k; i++) w[i] = (float)(i % 13) * 0.01f;
        for (size_t i = 0; i < (size_t)m * k; i++) x[i] = (float)(i % 7) * 0.1f;
        dc_linear *l;
        if (be->ops->linear_create(be, w, b, n, k, DC_WEIGHTS_F32, &l) != DC_OK) return 1;
        for (int i = 0; i < 3; i++) be->ops->linear_forward(be, l, x, m, y);
        double best = 1e9, flop = 2.0 * m * n * k;
        int reps = flop > 1e9 ? 10 : 50;
        for (int i = 0; i < reps; i++) {
            double t = now();
            be->ops->linear_forward(be, l, x, m, y);
            t = now() - t;
            if (t < best) best = t;
        }
        printf("%4u x %4u x %4u %10.3f %10.1f  %s\n", m, n, k, best * 1e3, flop / best * 1e-9,
               dc_cpu_linear_impl(l));
        be->ops->linear_destroy(be, l);
        free(w);
        free(b);
        free(x);
        free(y);
    }
    dc_backend_destroy(be);
    return 0;
}

/* The fusion at its default shape (8 experts, top-2, hidden 1024, trained-like output layers) on
 * the CPU and with the experts on CUDA (f32 grouped, f32 forced fallback, bf16): milliseconds
 * per batch and per item, and the max-abs difference of the fused vectors against the CPU's
 * f32. Not a test (no thresholds): for a GPU machine (scripts/gpu-check.sh). Exits 77 without
 * a device. Timings on the CPU emulation of CUDA mean nothing.
 * Usage: bench_fusion_gpu [--hidden H] [--iters N] [--cpu-iters N] [--batches 1,8,32,128] */
#include <time.h>

#include "fusion/internal.h"
#include "gpu_common.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static dc_concat_embedding *inputs(size_t n) {
    dc_concat_embedding *c = calloc(n, sizeof *c);
    if (!c) abort();
    for (size_t i = 0; i < n; i++) {
        c[i].present_mask = DC_ALL_MODELS_MASK;
        for (int m = 0; m < DC_NUM_MODELS; m++) {
            const dc_model_info *info = dc_model_info_get((dc_model_id)m);
            rnd_unit(c[i].vector + info->offset, info->dim);
        }
    }
    return c;
}

/* Best seconds per forward of the batch over iters runs after one warm-up. */
static double time_forward(dc_fusemoe *f, const dc_concat_embedding *const *in, size_t n,
                           dc_fused_embedding *out, int iters) {
    if (dc_fusemoe_forward(f, in, n, out) != DC_OK) return -1;
    double best = 1e30;
    for (int i = 0; i < iters; i++) {
        double t0 = now_s();
        if (dc_fusemoe_forward(f, in, n, out) != DC_OK) return -1;
        double t = now_s() - t0;
        if (t < best) best = t;
    }
    return best;
}

static double max_abs(const dc_fused_embedding *a, const dc_fused_embedding *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < DC_DIM_FUSED; c++)
            d = fmax(d, fabs((double)a[i].vector[c] - b[i].vector[c]));
    return d;
}

int main(int argc, char **argv) {
    uint32_t hidden = 1024;
    int iters = 20, cpu_iters = 3;
    size_t batches[8] = {1, 8, 32, 128}, nb = 4;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--hidden")) hidden = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--iters")) iters = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--cpu-iters")) cpu_iters = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batches")) {
            nb = 0;
            for (char *s = argv[i + 1]; *s && nb < 8;) {
                batches[nb++] = strtoul(s, &s, 10);
                if (*s == ',') s++;
                else if (*s) break;
            }
        }
    }
    if (!hidden || iters < 1 || cpu_iters < 1 || !nb) {
        fprintf(stderr, "usage: %s [--hidden H] [--iters N] [--cpu-iters N] [--batches 1,8,32]\n",
                argv[0]);
        return 2;
    }
    dc_backend *probe = gpu_or_skip("bench_fusion_gpu", NULL);
    dc_backend_destroy(probe);
    dc_cuda_device_info info;
    if (dc_cuda_device_query(0, &info) == DC_OK)
        printf("device: %s, library %s\n", info.name, dc_cuda_library_path());
    dc_fusion_options o;
    dc_fusion_options_default(&o);
    o.hidden = hidden;
    o.output_init = DC_INIT_KAIMING_UNIFORM; /* every expert works, as trained ones do */
    dc_fusion_weights *w = NULL;
    if (dc_fusion_weights_init(&o, &w) != DC_OK) {
        fprintf(stderr, "weights: %s\n", dc_error_detail());
        return 1;
    }
    const char *names[4] = {"cpu f32", "cuda f32 grouped", "cuda f32 fallback", "cuda bf16"};
    dc_fusemoe *f[4] = {0};
    for (int v = 0; v < 4; v++) {
        dc_fusion_options ov = o;
        ov.device = (dc_device){v ? DC_DEVICE_CUDA : DC_DEVICE_CPU, 0};
        if (v == 3) ov.weights = DC_FUSION_WEIGHTS_BF16;
        double t0 = now_s();
        if (dc_fusemoe_create_from(w, &ov, &f[v]) != DC_OK) {
            fprintf(stderr, "%s: %s\n", names[v], dc_error_detail());
            return 1;
        }
        printf("%-18s prepared in %.0f ms (%s)\n", names[v], 1e3 * (now_s() - t0),
               dc_fusemoe_device(f[v]));
    }
    printf("%-18s %6s %12s %12s %14s\n", "variant", "batch", "ms/batch", "ms/item",
           "max|d| vs cpu");
    for (size_t b = 0; b < nb; b++) {
        size_t n = batches[b];
        if (!n) continue;
        dc_concat_embedding *c = inputs(n);
        const dc_concat_embedding **in = malloc(n * sizeof *in);
        dc_fused_embedding *ref = calloc(n, sizeof *ref), *out = calloc(n, sizeof *out);
        if (!in || !ref || !out) abort();
        for (size_t i = 0; i < n; i++) in[i] = &c[i];
        for (int v = 0; v < 4; v++) {
            dc_fusion_gpu_force_fallback(v == 2);
            double t = time_forward(f[v], in, n, v ? out : ref, v ? iters : cpu_iters);
            if (t < 0) {
                fprintf(stderr, "%s, batch %zu: %s\n", names[v], n, dc_error_detail());
                return 1;
            }
            printf("%-18s %6zu %12.3f %12.4f %14.2e\n", names[v], n, 1e3 * t, 1e3 * t / n,
                   v ? max_abs(out, ref, n) : 0.0);
        }
        dc_fusion_gpu_force_fallback(false);
        free(c);
        free(in);
        free(ref);
        free(out);
    }
    for (int v = 0; v < 4; v++) dc_fusemoe_destroy(f[v]);
    dc_fusion_weights_release(w);
    return 0;
}

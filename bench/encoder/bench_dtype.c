/* fp32, bf16 and int8 weights side by side on BERT-base shapes: the four linear layers of one
 * encoder layer (Q/K/V 2304×768, attention output 768×768, intermediate 3072×768, output
 * 768×3072) at batch 1×128 and 32×128 token rows, and, given a model folder, a whole model
 * embedding 32 texts of about 128 tokens. Formats are timed round-robin in the same run; the
 * best of the repetitions is reported with its speed-up over fp32 (> 1 = faster).
 * Usage: OMP_NUM_THREADS=N bench_dtype [--reps R] [--layers 0|1] [--model-dir PATH --model E11]
 * (--layers 0: the whole model only; --only fp32|bf16|int8 times that format alone, for a
 * profiler, and its ratios mean nothing). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dodeca/dodeca.h"
#include "models/pretrained.h"
#include "tensor/backend.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static const dc_weight_format fmts[3] = {DC_WEIGHTS_F32, DC_WEIGHTS_BF16, DC_WEIGHTS_INT8};
static unsigned timed = 7; /* bit f: fmts[f] is timed (--only) */

static int bench_layers(int reps) {
    static const unsigned nk[4][2] = {{2304, 768}, {768, 768}, {3072, 768}, {768, 3072}};
    static const unsigned rows[2] = {128, 4096};
    dc_backend *be;
    if (dc_backend_cpu_create(NULL, &be) != DC_OK) return 1;
    dc_linear *l[3][4];
    float *w[4], *b[4];
    for (int j = 0; j < 4; j++) {
        size_t n = nk[j][0], k = nk[j][1];
        w[j] = malloc(n * k * sizeof(float));
        b[j] = malloc(n * sizeof(float));
        for (size_t i = 0; i < n * k; i++) w[j][i] = (float)((i * 2654435761u) % 1000) * 1e-4f - 0.05f;
        for (size_t i = 0; i < n; i++) b[j][i] = 0.01f * (float)(i % 7);
        for (int f = 0; f < 3; f++)
            if (be->ops->linear_create(be, w[j], b[j], nk[j][0], nk[j][1], fmts[f], &l[f][j]) !=
                DC_OK) {
                fprintf(stderr, "linear: %s\n", dc_error_detail());
                return 1;
            }
    }
    printf("kernels: %s\n", dc_cpu_kernel_isa());
    for (int f = 0; f < 3; f++)
        printf("  %-5s %s\n", dc_weight_format_name(fmts[f]), dc_cpu_linear_impl(l[f][0]));
    printf("  weight bytes of one layer: fp32 %.1f MB, bf16 %.1f MB, int8 %.1f MB\n",
           (double)(be->ops->linear_bytes(l[0][0]) + be->ops->linear_bytes(l[0][1]) +
                    be->ops->linear_bytes(l[0][2]) + be->ops->linear_bytes(l[0][3])) / 1e6,
           (double)(be->ops->linear_bytes(l[1][0]) + be->ops->linear_bytes(l[1][1]) +
                    be->ops->linear_bytes(l[1][2]) + be->ops->linear_bytes(l[1][3])) / 1e6,
           (double)(be->ops->linear_bytes(l[2][0]) + be->ops->linear_bytes(l[2][1]) +
                    be->ops->linear_bytes(l[2][2]) + be->ops->linear_bytes(l[2][3])) / 1e6);
    printf("\nBERT-base linear layers of one encoder layer (best of %d)\n", reps);
    printf("%-10s %12s %12s %12s %10s %10s\n", "batch", "fp32 ms", "bf16 ms", "int8 ms",
           "bf16 ×", "int8 ×");
    for (int s = 0; s < 2; s++) {
        unsigned m = rows[s];
        float *x = malloc((size_t)m * 3072 * sizeof *x), *y = malloc((size_t)m * 3072 * sizeof *y);
        for (size_t i = 0; i < (size_t)m * 3072; i++) x[i] = (float)((i * 40503u) % 2000) * 1e-3f - 1.0f;
        double best[3] = {1e9, 1e9, 1e9};
        for (int r = 0; r < reps + 1; r++)
            for (int f = 0; f < 3; f++) {
                if (!(timed >> f & 1)) continue;
                double t = now();
                for (int j = 0; j < 4; j++)
                    if (be->ops->linear_forward(be, l[f][j], x, m, y) != DC_OK) {
                        fprintf(stderr, "forward: %s\n", dc_error_detail());
                        return 1;
                    }
                t = now() - t;
                if (r && t < best[f]) best[f] = t; /* the first round warms up */
            }
        char label[32];
        snprintf(label, sizeof label, "%ux128", m / 128);
        printf("%-10s %12.2f %12.2f %12.2f %10.2f %10.2f\n", label, best[0] * 1e3, best[1] * 1e3,
               best[2] * 1e3, best[0] / best[1], best[0] / best[2]);
        free(x);
        free(y);
    }
    for (int j = 0; j < 4; j++) {
        for (int f = 0; f < 3; f++) be->ops->linear_destroy(be, l[f][j]);
        free(w[j]);
        free(b[j]);
    }
    dc_backend_destroy(be);
    return 0;
}

/* 32 texts of about 128 word pieces. */
static int bench_model(const char *dir, const char *model, int reps) {
    dc_model_id id;
    if (dc_model_id_parse(model, &id) != DC_OK || !dc_pretrained_supports(id)) {
        fprintf(stderr, "--model must name a pretrained model (E1, E5, E6, E7, E8, E11, E12)\n");
        return 2;
    }
    enum { N = 32 };
    static char text[N][1200];
    static const char *words[] = {"the", "model", "reads", "a", "sentence", "about", "cats",
                                  "and", "weather", "in", "northern", "cities", "quickly"};
    dc_input in[N];
    for (int i = 0; i < N; i++) {
        size_t o = 0;
        for (int k = 0; k < 120; k++)
            o += (size_t)snprintf(text[i] + o, sizeof text[i] - o, "%s ", words[(i * 7 + k * 3) % 13]);
        in[i] = dc_input_text(text[i], o, DC_ROLE_PASSAGE);
    }
    dc_model *m[3] = {NULL, NULL, NULL};
    for (int f = 0; f < 3; f++) {
        dc_pretrained_options o = {.model_dir = dir, .weights = fmts[f]};
        if (dc_pretrained_create(id, &o, &m[f]) != DC_OK || dc_model_load(m[f]) != DC_OK) {
            fprintf(stderr, "%s: %s\n", dir, dc_error_detail());
            return 1;
        }
    }
    double best[3] = {1e9, 1e9, 1e9};
    dc_model_embedding out[N];
    uint32_t tokens = 0;
    for (int r = 0; r < reps + 1; r++)
        for (int f = 0; f < 3; f++) {
            if (!(timed >> f & 1)) continue;
            double t = now();
            if (dc_model_embed_batch(m[f], in, N, out) != DC_OK) {
                fprintf(stderr, "embed: %s\n", dc_error_detail());
                return 1;
            }
            t = now() - t;
            if (r && t < best[f]) best[f] = t;
            tokens = out[0].tokens_used;
            for (int i = 0; i < N; i++) dc_model_embedding_free(&out[i]);
        }
    printf("\n%s (%s), 32 texts x %u tokens, whole model (best of %d)\n", model, dir,
           tokens, reps);
    printf("%12s %12s %12s %10s %10s\n", "fp32 ms", "bf16 ms", "int8 ms", "bf16 ×", "int8 ×");
    printf("%12.1f %12.1f %12.1f %10.2f %10.2f\n", best[0] * 1e3, best[1] * 1e3, best[2] * 1e3,
           best[0] / best[1], best[0] / best[2]);
    printf("memory: fp32 %.1f MB, bf16 %.1f MB, int8 %.1f MB\n", dc_model_memory_usage(m[0]) / 1e6,
           dc_model_memory_usage(m[1]) / 1e6, dc_model_memory_usage(m[2]) / 1e6);
    for (int f = 0; f < 3; f++) dc_model_destroy(m[f]);
    return 0;
}

int main(int argc, char **argv) {
    int reps = 3, layers = 1;
    const char *dir = NULL, *model = "E11";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--model-dir")) dir = argv[i + 1];
        else if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else if (!strcmp(argv[i], "--layers")) layers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--only")) {
            dc_weight_format f;
            if (!dc_weight_format_parse(argv[i + 1], &f)) return 2;
            timed = f == DC_WEIGHTS_F32 ? 1 : f == DC_WEIGHTS_BF16 ? 2 : 4;
        }
        else {
            fprintf(stderr, "usage: bench_dtype [--reps R] [--layers 0|1] [--only FMT] [--model-dir PATH [--model ID]]\n");
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    int rc = layers ? bench_layers(reps) : 0;
    if (!rc && dir) rc = bench_model(dir, model, reps);
    return rc;
}

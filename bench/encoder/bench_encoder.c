/* Forward-pass time of the encoders at real sizes, against the measured peak of the backend's
 * f32 GEMM (packed or oneDNN: DC_CPU_GEMM).
 *
 *   bench_encoder --dir DIR --model NAME --shapes 1x16,1x128,32x128 [--threads N]
 *                 [--budget SECONDS] [--dump DUMPDIR] [--dtype fp32|bf16|int8]
 *
 * DIR holds the model folders peers.py writes (DIR/<name>/config.json + model.safetensors:
 * seeded random weights at the published sizes). NAME is bert-base, bert-large, roberta-base,
 * longformer-base, clip-text or clip-vision; a shape is BATCHxTOKENS (CLIP vision: BATCH
 * images of 224×224). Inputs follow the formulas peers.py uses, so --dump files (the output of
 * one forward, f32) can be compared with PyTorch's. Prints, per shape:
 *   ours <model> <shape> <median ms> <reps> <peak RSS MiB> <GFLOP> <GFLOP/s> <fraction of peak>
 *        <median CPU ms> <fraction of the peak per CPU-second>
 * after a line "gemm_peak <GFLOP/s> <GFLOP per CPU-second>" (best of two large prepared linears
 * at this thread count). CPU ms is the process CPU time of one forward (all threads): on a
 * shared machine it measures the work, where wall time also holds other processes' slices.
 * Each shape runs as many times as fit in the budget (at least once, at most 15); RSS is the
 * process high-water mark, reset (/proc/self/clear_refs) before the shape's runs. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "models/bert.h"
#include "models/clip.h"
#include "tensor/backend.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* CPU time of every thread of the process: on a loaded machine the work done, where wall time
 * also counts the time slices other processes took (pool threads must sleep when idle, not
 * spin, for it to mean that: OMP_WAIT_POLICY=PASSIVE). */
static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void peak_reset(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return;
    fputs("5", f);
    fclose(f);
}

static double peak_mib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kib = 0;
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0) kib = strtod(line + 6, NULL);
    fclose(f);
    return kib / 1024.0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void die(const char *what, dc_status st) {
    fprintf(stderr, "bench_encoder: %s: %s (%s)\n", what, dc_status_str(st), dc_error_detail());
    exit(1);
}

/* Best GFLOP/s (wall) and GFLOP per CPU-second of two large products through the backend's
 * prepared linears. */
static double gemm_peak(dc_backend *be, double *per_cpu) {
    static const unsigned shapes[][3] = {{512, 3072, 768}, {1024, 1024, 1024}};
    double best_rate = 0;
    *per_cpu = 0;
    for (size_t s = 0; s < 2; s++) {
        unsigned m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *w = malloc((size_t)n * k * sizeof *w), *b = calloc(n, sizeof *b);
        float *x = malloc((size_t)m * k * sizeof *x), *y = malloc((size_t)m * n * sizeof *y);
        if (!w || !b || !x || !y) exit(1);
        for (size_t i = 0; i < (size_t)n * k; i++) w[i] = (float)(i % 13) * 0.01f;
        for (size_t i = 0; i < (size_t)m * k; i++) x[i] = (float)(i % 7) * 0.1f;
        dc_linear *l;
        dc_status st = be->ops->linear_create(be, w, b, n, k, DC_WEIGHTS_F32, &l);
        if (st) die("gemm peak", st);
        dc_backend_cpu_bind_threads(be);
        be->ops->linear_forward(be, l, x, m, y);
        for (int i = 0; i < 6; i++) {
            double t = now(), c = cpu_now();
            be->ops->linear_forward(be, l, x, m, y);
            t = now() - t;
            c = cpu_now() - c;
            double rate = 2.0 * m * n * k / t * 1e-9, crate = 2.0 * m * n * k / c * 1e-9;
            if (rate > best_rate) best_rate = rate;
            if (crate > *per_cpu) *per_cpu = crate;
        }
        be->ops->linear_destroy(be, l);
        free(w);
        free(b);
        free(x);
        free(y);
    }
    return best_rate;
}

typedef enum { K_BERT, K_ROBERTA, K_LONGFORMER, K_CLIP_TEXT, K_CLIP_VISION } kind_t;

typedef struct bench {
    kind_t kind;
    dc_backend *be;
    dc_bert *bert;
    dc_clip *clip;
    dc_weight_format weights; /* of the encoder layers: --dtype */
    /* one shape's inputs */
    uint32_t batch, seq;
    uint32_t *start, *ids;
    uint8_t *global;
    float *pixels, *out;
    size_t out_floats;
} bench;

/* The ids peers.py builds: 3 + (r·7919 + s·131 + 17) mod (vocab − 4), with <s> first for
 * RoBERTa/Longformer and CLIP's start/end tokens around the text. */
static void make_inputs(bench *b, uint32_t batch, uint32_t seq) {
    b->batch = batch;
    b->seq = seq;
    if (b->kind == K_CLIP_VISION) {
        const dc_clip_config *c = dc_clip_config_of(b->clip);
        size_t n = (size_t)batch * c->num_channels * c->image_size * c->image_size;
        b->pixels = malloc(n * sizeof *b->pixels);
        if (!b->pixels) exit(1);
        for (uint64_t i = 0; i < n; i++)
            b->pixels[i] = (float)((i * 2654435761u) % 4096) / 2048.0f - 1.0f;
        b->out_floats = (size_t)batch * c->projection_dim;
    } else {
        size_t T = (size_t)batch * seq;
        uint32_t vocab = b->kind == K_CLIP_TEXT ? 49407 : dc_bert_config_of(b->bert)->vocab_size;
        b->start = malloc((batch + 1) * sizeof *b->start);
        b->ids = malloc(T * sizeof *b->ids);
        b->global = calloc(T, 1);
        if (!b->start || !b->ids || !b->global) exit(1);
        for (uint32_t s = 0; s <= batch; s++) b->start[s] = s * seq;
        for (uint32_t s = 0; s < batch; s++) {
            uint32_t *row = b->ids + (size_t)s * seq;
            for (uint32_t r = 0; r < seq; r++)
                row[r] = 3 + (uint32_t)(((uint64_t)r * 7919 + (uint64_t)s * 131 + 17) % (vocab - 4));
            if (b->kind == K_ROBERTA || b->kind == K_LONGFORMER) row[0] = 0;
            if (b->kind == K_CLIP_TEXT) {
                row[0] = 49406;
                row[seq - 1] = 49407;
            }
            b->global[(size_t)s * seq] = 1; /* Longformer: global attention on <s> */
        }
        b->out_floats = b->kind == K_CLIP_TEXT
                            ? (size_t)batch * dc_clip_config_of(b->clip)->projection_dim
                            : T * dc_bert_config_of(b->bert)->hidden;
    }
    b->out = malloc(b->out_floats * sizeof *b->out);
    if (!b->out) exit(1);
}

static void free_inputs(bench *b) {
    free(b->start);
    free(b->ids);
    free(b->global);
    free(b->pixels);
    free(b->out);
    b->start = b->ids = NULL;
    b->global = NULL;
    b->pixels = b->out = NULL;
}

static void forward(bench *b) {
    dc_status st;
    switch (b->kind) {
    case K_CLIP_TEXT: st = dc_clip_text_features(b->clip, b->batch, b->start, b->ids, b->out); break;
    case K_CLIP_VISION: st = dc_clip_image_features(b->clip, b->batch, b->pixels, b->out); break;
    default: {
        dc_bert_batch bb = {b->batch, b->start, b->ids, NULL, NULL};
        st = dc_bert_forward_global(b->bert, &bb, b->kind == K_LONGFORMER ? b->global : NULL,
                                    b->out);
    }
    }
    if (st) die("forward", st);
}

/* Floating-point operations of one forward: the matrix products as computed (Longformer's
 * global key/value projection runs over every row, as in transformers) and the attention
 * products (QKᵀ and PV over the keys each query sees). */
static double flops(const bench *b) {
    double B = b->batch, S = b->seq;
    if (b->kind == K_CLIP_TEXT || b->kind == K_CLIP_VISION) {
        const dc_clip_config *c = dc_clip_config_of(b->clip);
        const dc_clip_tower_config *t = b->kind == K_CLIP_TEXT ? &c->text : &c->vision;
        double H = t->hidden, I = t->intermediate, L = t->layers, f = 0;
        double keys; /* keys per query summed over a sequence */
        if (b->kind == K_CLIP_VISION) {
            double np = (double)(c->image_size / c->patch_size) * (c->image_size / c->patch_size);
            S = np + 1;
            f += 2 * B * np * H * c->num_channels * c->patch_size * c->patch_size;
            keys = S * S;
        } else {
            keys = S * (S + 1) / 2; /* causal */
        }
        f += L * B * S * 2 * (4 * H * H + 2 * H * I) + L * B * 4 * keys * H;
        return f + 2 * B * H * c->projection_dim;
    }
    const dc_bert_config *c = dc_bert_config_of(b->bert);
    double H = c->hidden, I = c->intermediate, L = c->layers, T = B * S;
    double f = L * T * 2 * (4 * H * H + 2 * H * I);
    if (b->kind != K_LONGFORMER) return f + L * B * 4 * S * S * H;
    double f_attn = 0;
    for (uint32_t li = 0; li < c->layers; li++) {
        double w = c->attention_window[li] / 2, band = fmin(S, 2 * w + 1);
        f_attn += B * 4 * S * (band + 1) * H /* local keys + the global one */
                  + B * 4 * S * H             /* the global row over every key */
                  + 2 * T * 2 * H * H + 2 * B * H * H; /* key/value_global, query_global */
    }
    return f + f_attn;
}

static void write_dump(const char *dir, const char *model, const char *shape, const bench *b) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s_%s.f32", dir, model, shape);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->out, sizeof(float), b->out_floats, f) != b->out_floats) {
        fprintf(stderr, "bench_encoder: cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

static void load(bench *b, const char *dir, const char *model) {
    char folder[2048], path[4200];
    const bool clip = b->kind == K_CLIP_TEXT || b->kind == K_CLIP_VISION;
    snprintf(folder, sizeof folder, "%s/%s", dir, clip ? "clip-vit-l-14" : model);
    dc_weights *w = NULL;
    dc_status st;
    if (clip) {
        dc_clip_config cfg;
        snprintf(path, sizeof path, "%s/config.json", folder);
        if ((st = dc_clip_config_read(path, &cfg))) die(path, st);
        cfg.weights = b->weights;
        if ((st = dc_bert_weights_path(folder, path, sizeof path))) die(folder, st);
        if ((st = dc_weights_open(path, &w))) die(path, st);
        if ((st = dc_clip_create(w, &cfg, b->be, &b->clip))) die(folder, st);
    } else {
        dc_bert_config cfg;
        snprintf(path, sizeof path, "%s/config.json", folder);
        if ((st = dc_bert_config_read(path, &cfg))) die(path, st);
        cfg.weights = b->weights;
        if ((st = dc_bert_weights_path(folder, path, sizeof path))) die(folder, st);
        if ((st = dc_weights_open(path, &w))) die(path, st);
        if ((st = dc_bert_create(w, &cfg, b->be, &b->bert))) die(folder, st);
    }
    dc_weights_close(w);
}

int main(int argc, char **argv) {
    const char *dir = NULL, *model = NULL, *shapes = NULL, *dump = NULL, *dtype = "fp32";
    unsigned threads = 2;
    double budget = 4.0;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--dir") && v) dir = argv[++i];
        else if (!strcmp(argv[i], "--model") && v) model = argv[++i];
        else if (!strcmp(argv[i], "--shapes") && v) shapes = argv[++i];
        else if (!strcmp(argv[i], "--dump") && v) dump = argv[++i];
        else if (!strcmp(argv[i], "--threads") && v) threads = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--budget") && v) budget = atof(argv[++i]);
        else if (!strcmp(argv[i], "--dtype") && v) dtype = argv[++i];
        else {
            fprintf(stderr, "usage: bench_encoder --dir DIR --model NAME --shapes BxS[,BxS...] "
                            "[--threads N] [--budget S] [--dump DIR] [--dtype fp32|bf16|int8]\n");
            return 2;
        }
    }
    if (!dir || !model || !shapes) {
        fprintf(stderr, "bench_encoder: --dir, --model and --shapes are required\n");
        return 2;
    }
    bench b;
    memset(&b, 0, sizeof b);
    if (!strcmp(model, "bert-base") || !strcmp(model, "bert-large")) b.kind = K_BERT;
    else if (!strcmp(model, "roberta-base")) b.kind = K_ROBERTA;
    else if (!strcmp(model, "longformer-base")) b.kind = K_LONGFORMER;
    else if (!strcmp(model, "clip-text")) b.kind = K_CLIP_TEXT;
    else if (!strcmp(model, "clip-vision")) b.kind = K_CLIP_VISION;
    else {
        fprintf(stderr, "bench_encoder: unknown model %s\n", model);
        return 2;
    }
    if (!strcmp(dtype, "bf16")) b.weights = DC_WEIGHTS_BF16;
    else if (!strcmp(dtype, "int8")) b.weights = DC_WEIGHTS_INT8;
    else if (strcmp(dtype, "fp32") != 0) {
        fprintf(stderr, "bench_encoder: --dtype %s: expected fp32, bf16 or int8\n", dtype);
        return 2;
    }
    dc_cpu_backend_options opt = {threads};
    dc_status st = dc_backend_cpu_create(&opt, &b.be);
    if (st) die("backend", st);
    double peak_cpu = 0, peak = gemm_peak(b.be, &peak_cpu);
    printf("gemm_peak %.1f %.1f\n", peak, peak_cpu);
    load(&b, dir, model);
    /* warm-up on a small input: JIT kernels, first-touch of the weights */
    make_inputs(&b, 1, b.kind == K_CLIP_TEXT ? 77 : 16);
    forward(&b);
    free_inputs(&b);
    char *list = strdup(shapes);
    for (char *save = NULL, *sh = strtok_r(list, ",", &save); sh; sh = strtok_r(NULL, ",", &save)) {
        unsigned batch = 0, seq = 0;
        if (sscanf(sh, "%ux%u", &batch, &seq) < 1 || !batch ||
            (b.kind != K_CLIP_VISION && !seq)) {
            fprintf(stderr, "bench_encoder: bad shape %s\n", sh);
            return 2;
        }
        make_inputs(&b, batch, seq);
        double first = now(), first_cpu = cpu_now();
        peak_reset();
        forward(&b);
        first = now() - first;
        first_cpu = cpu_now() - first_cpu;
        if (dump) write_dump(dump, model, sh, &b);
        double times[16], cpus[16];
        int reps = 0;
        /* a short first run is a warm-up at this shape (page faults of new buffers) */
        if (first * 3 > budget) {
            cpus[reps] = first_cpu;
            times[reps++] = first;
        }
        double end = now() + budget - first;
        while (reps < 15 && (reps == 0 || now() < end)) {
            double t = now(), c = cpu_now();
            forward(&b);
            times[reps] = now() - t;
            cpus[reps++] = cpu_now() - c;
        }
        qsort(times, (size_t)reps, sizeof times[0], cmp_double);
        qsort(cpus, (size_t)reps, sizeof cpus[0], cmp_double);
        double med = reps % 2 ? times[reps / 2] : 0.5 * (times[reps / 2 - 1] + times[reps / 2]);
        double cmed = reps % 2 ? cpus[reps / 2] : 0.5 * (cpus[reps / 2 - 1] + cpus[reps / 2]);
        double gf = flops(&b) * 1e-9;
        printf("ours %s %s %.3f %d %.0f %.2f %.1f %.3f %.3f %.3f\n", model, sh, med * 1e3, reps,
               peak_mib(), gf, gf / med, gf / med / peak, cmed * 1e3, gf / cmed / peak_cpu);
        fflush(stdout);
        free_inputs(&b);
    }
    free(list);
    dc_bert_destroy(b.bert);
    dc_clip_destroy(b.clip);
    dc_backend_destroy(b.be);
    return 0;
}

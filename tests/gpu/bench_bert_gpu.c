/* BERT-base-sized encoder (random weights, tests/tools/bert_fixture.c) on the CPU backend and on
 * the CUDA backend in every weight format: milliseconds per packed batch, tokens per second,
 * and the worst row cosine against the CPU's fp32 output. Each CUDA format runs once per
 * attention kernel named by --attn (DC_CUDA_ATTN: "basic" = one block per query and head,
 * "tiled" = query tiles with K/V in shared memory; default both, side by side). Not a test (no
 * thresholds): run by scripts/gpu-check.sh. Exits 77 without a device.
 * --graphs SHAPES (e.g. 1x13,1x128,8x100): instead, CUDA graphs off and on for each batch shape
 * (fp32 and bf16, the default attention): ms per batch both ways, the ratio, and how close the
 * replayed output is to the direct one. With graphs on, a batch runs padded to its bucket
 * (1x13 as 1x16, 8x100 as 8x128: models/encoder_graphs.h), so the ratio is the whole trade,
 * padded rows included.
 * Usage: bench_bert_gpu [--seqs N] [--len L] [--layers N] [--iters N] [--cpu-iters N]
 *                       [--attn basic,tiled] [--graphs SHAPES]
 *                       [--fixture DIR]   (write the checkpoint there and keep it, for peers) */
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bert_gpu_common.h"
#include "gpu_common.h"
#include "models/bert.h"

#include "../tools/bert_fixture.c"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Seconds per forward (best of iters after one warm-up). */
static double time_forward(dc_bert *m, const dc_bert_batch *b, float *out, int iters) {
    if (dc_bert_forward(m, b, out)) return -1;
    double best = 1e30;
    for (int i = 0; i < iters; i++) {
        double t0 = now_s();
        if (dc_bert_forward(m, b, out)) return -1;
        double t = now_s() - t0;
        if (t < best) best = t;
    }
    return best;
}

/* Graphs off and on (two stream contexts of the device, one model on each) per batch shape. */
static int bench_graphs(const char *dir, const char *shapes, int iters) {
    dc_cuda_options off = {.device = 0}, on = {.device = 0, .graphs = true};
    dc_backend *plain = NULL, *graphed = NULL;
    if (dc_backend_cuda_acquire(&off, &plain) || dc_backend_cuda_acquire(&on, &graphed)) {
        fprintf(stderr, "graphs: %s\n", dc_error_detail());
        return 1;
    }
    printf("%-6s %-9s %12s %12s %8s %s\n", "format", "shape", "direct ms", "graph ms", "ratio",
           "output");
    const dc_weight_format fmts[] = {DC_WEIGHTS_F32, DC_WEIGHTS_BF16};
    for (size_t f = 0; f < 2; f++) {
        dc_bert *a = NULL, *g = NULL;
        if (load(dir, plain, fmts[f], &a) || load(dir, graphed, fmts[f], &g)) {
            fprintf(stderr, "graphs: %s\n", dc_error_detail());
            return 1;
        }
        char buf[128];
        snprintf(buf, sizeof buf, "%s", shapes);
        for (char *sv = NULL, *sh = strtok_r(buf, ",", &sv); sh; sh = strtok_r(NULL, ",", &sv)) {
            unsigned ns = 0, len = 0;
            if (sscanf(sh, "%ux%u", &ns, &len) != 2 || !ns || !len || len > 510) {
                fprintf(stderr, "--graphs: %s is not SEQSxLEN\n", sh);
                return 2;
            }
            const uint32_t T = ns * len;
            uint32_t *start = calloc(ns + 1, sizeof *start), *ids = malloc(T * sizeof *ids);
            for (uint32_t s = 0; s < ns; s++) start[s + 1] = start[s] + len;
            for (uint32_t r = 0; r < T; r++) ids[r] = 5 + (uint32_t)(rnd(0, 1) * 60.0f);
            dc_bert_batch b = {ns, start, ids, NULL, NULL};
            float *y0 = malloc((size_t)T * 768 * 4), *y1 = malloc((size_t)T * 768 * 4);
            /* the graphed model's first forward records nothing; its second records */
            dc_bert_forward(g, &b, y1);
            const double td = time_forward(a, &b, y0, iters), tg = time_forward(g, &b, y1, iters);
            dc_cuda_graph_stats gs;
            dc_backend_cuda_graph_stats(graphed, &gs);
            const bool ran = td > 0 && tg > 0;
            char how[64];
            if (!ran) snprintf(how, sizeof how, "FAILED: %s", dc_error_detail());
            else if (!memcmp(y0, y1, (size_t)T * 768 * 4)) snprintf(how, sizeof how, "bit-identical");
            else snprintf(how, sizeof how, "min row cosine %.7f", min_cosine(y1, y0, T, 768));
            printf("%-6s %-9s %12.3f %12.3f %8.2f %s (graphs %llu, launches %llu)\n",
                   dc_weight_format_name(fmts[f]), sh, td * 1e3, tg * 1e3, td / tg, how,
                   (unsigned long long)gs.recorded, (unsigned long long)gs.launches);
            free(start), free(ids), free(y0), free(y1);
        }
        dc_bert_destroy(a);
        dc_bert_destroy(g);
    }
    dc_backend_cuda_release(graphed);
    dc_backend_cuda_release(plain);
    return 0;
}

int main(int argc, char **argv) {
    uint32_t seqs = 32, len = 128, layers = 12;
    int iters = 10, cpu_iters = 2;
    const char *keep = NULL, *attn = "basic,tiled", *graphs = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--seqs")) seqs = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--len")) len = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--layers")) layers = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--iters")) iters = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--cpu-iters")) cpu_iters = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--fixture")) keep = argv[i + 1];
        else if (!strcmp(argv[i], "--attn")) attn = argv[i + 1];
        else if (!strcmp(argv[i], "--graphs")) graphs = argv[i + 1];
    }
    /* the attention kernels to time, each a DC_CUDA_ATTN value */
    const char *kernels[4];
    int n_kernels = 0;
    char attn_buf[64];
    snprintf(attn_buf, sizeof attn_buf, "%s", attn);
    for (char *sv = NULL, *k = strtok_r(attn_buf, ",", &sv); k && n_kernels < 4;
         k = strtok_r(NULL, ",", &sv)) {
        if (strcmp(k, "basic") && strcmp(k, "tiled") && strcmp(k, "auto")) {
            fprintf(stderr, "--attn: %s is not basic, tiled or auto\n", k);
            return 2;
        }
        kernels[n_kernels++] = k;
    }
    if (!seqs || !len || len > 510 || !layers || iters < 1 || cpu_iters < 1 || !n_kernels) {
        fprintf(stderr, "usage: %s [--seqs N] [--len L≤510] [--layers N] [--iters N] [--cpu-iters N] [--attn basic,tiled]\n", argv[0]);
        return 2;
    }
    dc_backend *gpu = gpu_or_skip("bench_bert_gpu", NULL), *cpu = NULL;
    const dc_cuda_api *api = NULL;
    if (dc_cuda_load(&api) || dc_backend_cpu_create(NULL, &cpu)) return 1;
    dc_cuda_device_info info;
    api->device_info(0, &info);
    dc_fixture_spec spec;
    dc_fixture_named("bert", &spec);
    spec.hidden = 768, spec.heads = 12, spec.intermediate = 3072, spec.layers = layers;
    spec.max_position = 512;
    char dir[4096] = "/tmp/dc_gpu_bench_XXXXXX";
    if (keep) snprintf(dir, sizeof dir, "%s", keep);
    if ((!keep && !mkdtemp(dir)) || dc_fixture_write(dir, &spec) != 0) return 1;
    uint32_t *start = calloc(seqs + 1, sizeof *start), T = seqs * len;
    uint32_t *ids = malloc(T * sizeof *ids);
    for (uint32_t s = 0; s < seqs; s++) start[s + 1] = start[s] + len;
    for (uint32_t r = 0; r < T; r++) ids[r] = 5 + (uint32_t)(rnd(0, 1) * 60.0f);
    dc_bert_batch b = {seqs, start, ids, NULL, NULL};
    float *ref = malloc((size_t)T * 768 * 4), *out = malloc((size_t)T * 768 * 4);
    if (graphs) {
        printf("BERT-base shape (768/12 heads/3072), %u layers; device %s; CUDA graphs off/on\n",
               layers, info.name);
        int rc = bench_graphs(dir, graphs, iters);
        dc_backend_destroy(gpu);
        dc_backend_destroy(cpu);
        if (!keep) {
            char cmd[4200];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
            if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
        }
        free(start), free(ids), free(ref), free(out);
        return rc;
    }
    printf("BERT-base shape (768/12 heads/3072), %u layers, %u sequences x %u tokens = %u tokens\n",
           layers, seqs, len, T);
    printf("device: %s (sm_%d%d, %d SMs); cpu: %ld online cores, kernel isa %s\n", info.name,
           info.cc_major, info.cc_minor, info.sm_count, sysconf(_SC_NPROCESSORS_ONLN),
           dc_cpu_kernel_isa());
    printf("%-6s %-6s %-6s %12s %14s %12s\n", "device", "format", "attn", "ms/batch", "tokens/s",
           "min cos");
    dc_bert *m = NULL;
    if (load(dir, cpu, DC_WEIGHTS_F32, &m)) return fprintf(stderr, "%s\n", dc_error_detail()), 1;
    double t = time_forward(m, &b, ref, cpu_iters);
    printf("%-6s %-6s %-6s %12.2f %14.0f %12s\n", "cpu", "fp32", "-", t * 1e3, T / t,
           "(reference)");
    dc_bert_destroy(m);
    const dc_weight_format fmts[] = {DC_WEIGHTS_F32, DC_WEIGHTS_BF16, DC_WEIGHTS_F16,
                                     DC_WEIGHTS_FP8_E4M3};
    for (int tf = 0; tf < 2; tf++) {
        dc_backend *g = gpu;
        dc_cuda_options o = {.device = 0, .allow_tf32 = true};
        if (tf && dc_backend_cuda_create(&o, &g)) break;
        for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
            if (tf && fmts[i] != DC_WEIGHTS_F32) continue;
            m = NULL;
            dc_status st = load(dir, g, fmts[i], &m);
            const char *name = tf ? "tf32" : dc_weight_format_name(fmts[i]);
            for (int k = 0; k < n_kernels; k++) {
                setenv("DC_CUDA_ATTN", kernels[k], 1); /* read by the backend per call */
                t = st ? -1 : time_forward(m, &b, out, iters);
                if (t < 0) printf("%-6s %-6s %-6s %s\n", "cuda", name, kernels[k], dc_error_detail());
                else
                    printf("%-6s %-6s %-6s %12.2f %14.0f %12.7f\n", "cuda", name, kernels[k],
                           t * 1e3, T / t, min_cosine(out, ref, T, 768));
            }
            unsetenv("DC_CUDA_ATTN");
            dc_bert_destroy(m);
        }
        if (tf) dc_backend_destroy(g);
    }
    dc_cuda_pool_stats ps;
    api->pool_stats(gpu, &ps);
    printf("pool: %llu hits, %llu misses, peak %.1f MiB\n", (unsigned long long)ps.hits,
           (unsigned long long)ps.misses, (double)ps.peak / (1 << 20));
    if (!keep) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    }
    dc_backend_destroy(gpu);
    dc_backend_destroy(cpu);
    free(start), free(ids), free(ref), free(out);
    return 0;
}

/* The in-process side of bench/server: the same request mix as post.lua (mixed lengths, every
 * 5th request a list of 4, every input new) sent straight to dc_pipeline_embed_batch_ex from N
 * threads, with the options `dodeca serve` uses for /v1/embeddings (fused vector, no SPLADE or
 * ColBERT aux). Comparing it with the wrk run of the server gives the cost of HTTP + JSON.
 * Usage: bench_server [--threads N] [--seconds S] [--set key=value]... */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dodeca/dodeca.h"

static const char *const words[] = {"the",   "quick",   "brown",     "fox",    "jumps",  "over",
                                    "lazy",  "dog",     "paris",     "capital", "france", "embedding",
                                    "vector", "model",  "server",    "request", "latency", "memory"};
static const size_t lengths[] = {16, 64, 256, 1024, 4000};

typedef struct worker {
    pthread_t thread;
    int id;
    dc_pipeline *p;
    double seconds;
    uint64_t requests, errors;
    uint64_t *lat_us;
    size_t lat_n, lat_cap;
} worker;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void make_text(char *out, size_t n, const char *salt) {
    size_t len = (size_t)snprintf(out, n + 1, "%s", salt);
    for (size_t i = 1; len < n; i++) {
        const char *w = words[(i * 7 + n) % (sizeof words / sizeof words[0])];
        len += (size_t)snprintf(out + len, n + 1 - len, " %s", w);
    }
    out[n] = '\0';
}

static void *run(void *arg) {
    worker *w = arg;
    char *buf[4];
    for (int k = 0; k < 4; k++) buf[k] = malloc(4096 + 64);
    dc_embed_options opt = {0};
    opt.no_aux = true;
    double end = now_s() + w->seconds;
    for (uint64_t c = 1; now_s() < end; c++) {
        size_t n = lengths[c % 5];
        size_t items = c % 5 == 0 ? 4 : 1;
        dc_input in[4];
        dc_pipeline_result res[4];
        dc_status st[4];
        for (size_t k = 0; k < items; k++) {
            char salt[64];
            snprintf(salt, sizeof salt, "t%dr%" PRIu64 "i%zu", w->id, c, k);
            make_text(buf[k], n, salt);
            in[k] = dc_input_text(buf[k], strlen(buf[k]), DC_ROLE_PASSAGE);
            dc_pipeline_result_init(&res[k]);
        }
        double t0 = now_s();
        dc_status s = dc_pipeline_embed_batch_ex(w->p, in, items, &opt, res, st);
        uint64_t us = (uint64_t)((now_s() - t0) * 1e6);
        for (size_t k = 0; k < items; k++) dc_pipeline_result_free(&res[k]);
        if (s != DC_OK) w->errors++;
        w->requests++;
        if (w->lat_n == w->lat_cap) {
            w->lat_cap = w->lat_cap ? 2 * w->lat_cap : 4096;
            w->lat_us = realloc(w->lat_us, w->lat_cap * sizeof *w->lat_us);
        }
        w->lat_us[w->lat_n++] = us;
    }
    for (int k = 0; k < 4; k++) free(buf[k]);
    return NULL;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int threads = 64;
    double seconds = 20;
    dc_config *cfg = malloc(sizeof *cfg);
    dc_config_defaults(cfg);
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) {
            threads = atoi(argv[i + 1]);
        } else if (!strcmp(argv[i], "--seconds")) {
            seconds = atof(argv[i + 1]);
        } else if (!strcmp(argv[i], "--set")) {
            char *eq = strchr(argv[i + 1], '=');
            if (!eq) return 2;
            *eq = '\0';
            if (dc_config_set(cfg, argv[i + 1], eq + 1) != DC_OK) {
                fprintf(stderr, "bench_server: --set: %s\n", dc_error_detail());
                return 2;
            }
        } else {
            fprintf(stderr, "usage: bench_server [--threads N] [--seconds S] [--set k=v]...\n");
            return 2;
        }
    }
    if (threads < 1 || threads > 1024 || !(seconds > 0)) return 2;
    dc_pipeline *p = NULL;
    if (dc_pipeline_open(cfg, &p) != DC_OK) {
        fprintf(stderr, "bench_server: open: %s\n", dc_error_detail());
        return 1;
    }
    worker *ws = calloc((size_t)threads, sizeof *ws);
    double t0 = now_s();
    for (int i = 0; i < threads; i++) {
        ws[i].id = i + 1;
        ws[i].p = p;
        ws[i].seconds = seconds;
        pthread_create(&ws[i].thread, NULL, run, &ws[i]);
    }
    uint64_t req = 0, err = 0, n = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(ws[i].thread, NULL);
        req += ws[i].requests;
        err += ws[i].errors;
        n += ws[i].lat_n;
    }
    double elapsed = now_s() - t0;
    uint64_t *all = malloc((n ? n : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < threads; i++) {
        memcpy(all + k, ws[i].lat_us, ws[i].lat_n * sizeof *all);
        k += ws[i].lat_n;
        free(ws[i].lat_us);
    }
    qsort(all, n, sizeof *all, cmp_u64);
    printf("INPROC threads=%d requests=%" PRIu64 " errors=%" PRIu64 " requests/s=%.1f "
           "p50=%.2fms p99=%.2fms\n",
           threads, req, err, (double)req / elapsed, n ? all[n / 2] / 1000.0 : 0.0,
           n ? all[(size_t)((double)n * 0.99)] / 1000.0 : 0.0);
    free(all);
    free(ws);
    dc_pipeline_close(p);
    free(cfg);
    return 0;
}

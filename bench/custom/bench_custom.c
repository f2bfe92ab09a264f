/* Benchmark of the custom models E2, E3, E4 and E9 on one core: microseconds per input through
 * the dc_model interface (what the pipeline calls) and, for E9, megabytes of text per second.
 * Build and run: see bench/custom/README.md. Usage: bench_custom [seconds per case, default 1] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dodeca/dodeca.h"
#include "models/custom.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct result {
    double wall_us, cpu_us; /* median over rounds, per input */
} result;

/* Embeds inputs[i % n] one at a time for about `seconds`, in 9 rounds; medians per input. */
static result run(dc_model *m, const dc_input *inputs, size_t n, double seconds) {
    dc_model_embedding e;
    /* calibrate: how many calls fit in a round */
    size_t calls = 0;
    double t0 = now_s();
    while (now_s() - t0 < 0.05) {
        if (dc_model_embed(m, &inputs[calls % n], &e) != DC_OK) {
            fprintf(stderr, "embed failed: %s\n", dc_error_detail());
            exit(1);
        }
        dc_model_embedding_free(&e);
        calls++;
    }
    size_t per_round = (size_t)(calls * (seconds / 9) / 0.05) + 1;
    double wall[9], cpu[9];
    for (int r = 0; r < 9; r++) {
        double w0 = now_s(), c0 = cpu_s();
        for (size_t i = 0; i < per_round; i++) {
            dc_model_embed(m, &inputs[i % n], &e);
            dc_model_embedding_free(&e);
        }
        wall[r] = (now_s() - w0) * 1e6 / per_round;
        cpu[r] = (cpu_s() - c0) * 1e6 / per_round;
    }
    qsort(wall, 9, sizeof wall[0], cmp_double);
    qsort(cpu, 9, sizeof cpu[0], cmp_double);
    return (result){wall[4], cpu[4]};
}

/* Deterministic English-like text of exactly `len` bytes: words drawn with Zipf frequencies
 * (rank r with probability ~ r^-0.6) from a 160-word list; its share of distinct trigrams
 * (printed) is close to that of prose: 0.5-0.65 per KB, 0.3-0.45 per 4 KB. */
static char *make_text(size_t len, unsigned seed) {
    static const char *words[] = {
        "the",       "of",        "and",       "to",          "a",           "in",
        "is",        "that",      "for",       "it",          "as",          "with",
        "was",       "on",        "be",        "by",          "this",        "are",
        "from",      "or",        "at",        "an",          "which",       "not",
        "have",      "but",       "its",       "they",        "one",         "all",
        "were",      "their",     "can",       "has",         "more",        "when",
        "there",     "been",      "other",     "would",       "time",        "into",
        "only",      "some",      "these",     "two",         "may",         "first",
        "then",      "any",       "like",      "such",        "over",        "also",
        "after",     "model",     "vector",    "system",      "between",     "each",
        "where",     "under",     "through",   "server",      "request",     "memory",
        "search",    "query",     "result",    "embedding",   "similar",     "document",
        "language",  "number",    "value",     "function",    "process",     "because",
        "without",   "different", "important", "government",  "history",     "water",
        "people",    "morning",   "question",  "problem",     "country",     "example",
        "however",   "several",   "during",    "against",     "information", "development",
        "structure", "research",  "measure",   "quickly",     "probably",    "certainly",
        "morning",   "evening",   "thousand",  "mountain",    "river",       "village",
        "library",   "musician",  "kitchen",   "orchestra",   "winter",      "summer",
        "journey",   "pattern",   "signal",    "channel",     "network",     "protocol",
        "database",  "compiler",  "variable",  "pointer",     "buffer",      "thread",
        "kernel",    "matrix",    "gradient",  "temperature", "pressure",    "velocity",
        "economy",   "market",    "interest",  "inflation",   "election",    "parliament",
        "festival",  "painting",  "sculpture", "novel",       "poetry",      "theatre",
        "hospital",  "medicine",  "vaccine",   "patient",     "student",     "teacher",
        "lecture",   "seminar",   "exam",      "garden",      "flower",      "forest",
        "ocean",     "island",    "harbour",   "bridge",      "tunnel",      "railway",
        "airport"};
    enum { NW = sizeof words / sizeof words[0] };
    static double cdf[NW];
    if (cdf[NW - 1] == 0) {
        double z = 0;
        for (int r = 0; r < NW; r++) cdf[r] = (z += pow(r + 1, -0.6));
        for (int r = 0; r < NW; r++) cdf[r] /= z;
    }
    char *s = malloc(len + 1);
    size_t n = 0;
    unsigned x = seed * 2654435761u + 1;
    while (n < len) {
        x = x * 1103515245u + 12345u;
        double u = (x >> 8) / 16777216.0;
        int r = 0;
        while (r < NW - 1 && cdf[r] < u) r++;
        for (const char *w = words[r]; *w && n < len; w++) s[n++] = *w;
        if (n < len) s[n++] = (x >> 4) % 13 == 0 ? '.' : (x >> 4) % 13 == 1 ? ',' : ' ';
    }
    s[len] = '\0';
    return s;
}

/* Share of a text's character trigrams that are distinct (E9 bundles each distinct one once). */
static double distinct_trigrams(const char *s, size_t len) {
    if (len < 3) return 1.0;
    size_t n = len - 2, d = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < i && memcmp(s + k, s + i, 3) != 0) k++;
        d += k == i;
    }
    return (double)d / n;
}

static dc_model *open_model(dc_model_id id) {
    dc_model *m = NULL;
    dc_status st;
    switch (id) {
    case DC_MODEL_TEMPORAL_RECENT:
        st = dc_temporal_recent_create(NULL, &m);
        break;
    case DC_MODEL_TEMPORAL_PERIODIC:
        st = dc_temporal_periodic_create(NULL, &m);
        break;
    case DC_MODEL_TEMPORAL_POSITIONAL:
        st = dc_temporal_positional_create(NULL, &m);
        break;
    default:
        st = dc_hdc_create(NULL, &m);
        break;
    }
    if (st == DC_OK) st = dc_model_load(m);
    if (st != DC_OK) {
        fprintf(stderr, "cannot open model: %s\n", dc_error_detail());
        exit(1);
    }
    return m;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    if (!(seconds > 0)) seconds = 1.0;
    char cpu[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "model name", 10) == 0) {
                char *c = strchr(line, ':');
                if (c) snprintf(cpu, sizeof cpu, "%s", c + 2);
                cpu[strcspn(cpu, "\n")] = '\0';
                break;
            }
        fclose(f);
    }
    printf("dodeca %s custom-model benchmark, one thread\n", dc_version());
    printf("cpu: %s; avx2: %s\n", cpu,
#if defined(__x86_64__)
           __builtin_cpu_supports("avx2") ? "yes" : "no"
#else
           "n/a"
#endif
    );
    printf("median of 9 rounds; wall and thread-CPU time per input through dc_model_embed\n\n");
    printf("%-4s %-22s %10s %10s %12s  %s\n", "id", "input", "wall us", "cpu us", "MB/s (cpu)",
           "distinct trigrams");

    enum { NT = 64 };
    dc_input tin[NT];
    for (int i = 0; i < NT; i++) {
        tin[i] = dc_input_text("x", 1, DC_ROLE_PASSAGE);
        tin[i].has_t_event = tin[i].has_t_ref = tin[i].has_position = true;
        tin[i].t_ref = 1.7e9 + i * 3607.25;
        tin[i].t_event = tin[i].t_ref - pow(1.6, i % 48);
        tin[i].position = i * 3;
    }
    const dc_model_id temporal[] = {DC_MODEL_TEMPORAL_RECENT, DC_MODEL_TEMPORAL_PERIODIC,
                                    DC_MODEL_TEMPORAL_POSITIONAL};
    for (int k = 0; k < 3; k++) {
        dc_model *m = open_model(temporal[k]);
        result r = run(m, tin, NT, seconds);
        printf("%-4s %-22s %10.2f %10.2f %12s\n", dc_model_info_get(temporal[k])->label,
               "one timestamp", r.wall_us, r.cpu_us, "-");
        dc_model_destroy(m);
    }

    dc_model *hdc = open_model(DC_MODEL_HDC);
    const size_t sizes[] = {64, 1024, 4096};
    const char *names[] = {"64 B text", "1 KB text", "4 KB text (4096 ch)"};
    for (int k = 0; k < 3; k++) {
        enum { NX = 8 };
        char *texts[NX];
        dc_input xin[NX];
        for (int i = 0; i < NX; i++) {
            texts[i] = make_text(sizes[k], (unsigned)(i + 1));
            xin[i] = dc_input_text(texts[i], sizes[k], DC_ROLE_PASSAGE);
        }
        result r = run(hdc, xin, NX, seconds);
        printf("%-4s %-22s %10.2f %10.2f %12.1f  %.2f\n", "E9", names[k], r.wall_us, r.cpu_us,
               sizes[k] / r.cpu_us, distinct_trigrams(texts[0], sizes[k]));
        for (int i = 0; i < NX; i++) free(texts[i]);
    }
    dc_model_destroy(hdc);
    return 0;
}

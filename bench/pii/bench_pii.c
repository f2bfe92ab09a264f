/* PII scrubber evaluation and throughput (issue 10).
 *
 * Precision and recall per category on the labelled corpus (tests/data/pii/corpus.jsonl), for
 * the "holdout" templates (written after tuning), the "test" and "dev" templates (both looked at
 * while tuning) and all of them, at one sensitivity; then MB/s
 * on one core for ordinary text (tests/data/pii/ordinary.txt) and for the PII-dense corpus.
 *
 * A detection matches a labelled span when the categories agree and the spans overlap by at
 * least half of their union (IoU >= 0.5); each span and detection matches at most once.
 * "exact" counts matches with identical boundaries. "leak" is the share of labelled bytes that
 * no detection of any category covers: what would reach the embedder in the clear.
 *
 * Usage: bench_pii [--data DIR] [--sensitivity permissive|moderate|strict] [--seconds S]
 *                  [--errors N]  (prints up to N misses and false alarms, with their text)
 * Build and run: bench/pii/run.sh. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dodeca/dodeca.h"
#include "dodeca/privacy.h"

typedef struct span {
    int cat;
    size_t start, end;
} span;

typedef struct record {
    char *text;
    size_t len;
    int split; /* 0 dev, 1 test, 2 holdout */
    span *gold;
    size_t ngold;
} record;

typedef struct counts {
    long tp, fp, fn, exact;
} counts;

static double now_s(clockid_t clk) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    if (len) *len = (size_t)n;
    return buf;
}

static record *load_corpus(const char *path, size_t *count) {
    size_t len;
    char *all = read_all(path, &len);
    if (!all) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    size_t cap = 4096, n = 0;
    record *recs = malloc(cap * sizeof *recs);
    for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        if (!j) continue;
        if (n == cap) recs = realloc(recs, (cap *= 2) * sizeof *recs);
        record *r = &recs[n++];
        const char *t = cJSON_GetObjectItem(j, "text")->valuestring;
        r->len = strlen(t);
        r->text = malloc(r->len + 1);
        memcpy(r->text, t, r->len + 1);
        const char *sp = cJSON_GetObjectItem(j, "split")->valuestring;
        r->split = strcmp(sp, "holdout") == 0 ? 2 : strcmp(sp, "test") == 0 ? 1 : 0;
        cJSON *spans = cJSON_GetObjectItem(j, "spans");
        r->ngold = (size_t)cJSON_GetArraySize(spans);
        r->gold = calloc(r->ngold + 1, sizeof *r->gold);
        for (size_t k = 0; k < r->ngold; k++) {
            cJSON *s = cJSON_GetArrayItem(spans, (int)k);
            dc_pii_category c;
            if (dc_pii_category_parse(cJSON_GetObjectItem(s, "category")->valuestring, &c)) {
                fprintf(stderr, "bad category in %s\n", line);
                exit(1);
            }
            r->gold[k].cat = (int)c;
            r->gold[k].start = (size_t)cJSON_GetObjectItem(s, "start")->valuedouble;
            r->gold[k].end = (size_t)cJSON_GetObjectItem(s, "end")->valuedouble;
        }
        cJSON_Delete(j);
    }
    free(all);
    *count = n;
    return recs;
}

static double iou(size_t a0, size_t a1, size_t b0, size_t b1) {
    size_t lo = a0 > b0 ? a0 : b0, hi = a1 < b1 ? a1 : b1;
    if (hi <= lo) return 0.0;
    size_t u0 = a0 < b0 ? a0 : b0, u1 = a1 > b1 ? a1 : b1;
    return (double)(hi - lo) / (double)(u1 - u0);
}

static void show(const char *what, const record *r, int cat, size_t a, size_t b) {
    size_t lo = a > 30 ? a - 30 : 0, hi = b + 30 < r->len ? b + 30 : r->len;
    printf("  %-5s %-15s [%.*s]  in: ...%.*s...\n", what, dc_pii_category_name((dc_pii_category)cat),
           (int)(b - a), r->text + a, (int)(hi - lo), r->text + lo);
}

/* Scores one record: per-category counts for its split and overall, leaked bytes. */
static void score(const record *r, const dc_scrub_result *res, counts (*by)[DC_PII_CAT_COUNT],
                  size_t *gold_bytes, size_t *leaked, int *errors_left) {
    char used_det[4096] = {0}, used_gold[4096] = {0};
    for (size_t g = 0; g < r->ngold && g < 4096; g++) {
        const span *gs = &r->gold[g];
        double best = 0.5;
        size_t bi = SIZE_MAX;
        for (size_t d = 0; d < res->count && d < 4096; d++) {
            const dc_pii_detection *x = &res->detections[d];
            if (used_det[d] || (int)x->category != gs->cat) continue;
            double v = iou(gs->start, gs->end, x->start, x->end);
            if (v >= best) {
                best = v;
                bi = d;
            }
        }
        if (bi != SIZE_MAX) {
            used_det[bi] = used_gold[g] = 1;
            for (int s = 0; s < 2; s++) {
                by[s][gs->cat].tp++;
                if (res->detections[bi].start == gs->start && res->detections[bi].end == gs->end)
                    by[s][gs->cat].exact++;
            }
        }
        for (size_t b = gs->start; b < gs->end; b++) {
            bool covered = false;
            for (size_t d = 0; d < res->count && !covered; d++)
                covered = res->detections[d].start <= b && b < res->detections[d].end;
            *leaked += !covered;
        }
        *gold_bytes += gs->end - gs->start;
    }
    for (size_t g = 0; g < r->ngold && g < 4096; g++) {
        if (used_gold[g]) continue;
        for (int s = 0; s < 2; s++) by[s][r->gold[g].cat].fn++;
        if (*errors_left > 0) {
            (*errors_left)--;
            show("MISS", r, r->gold[g].cat, r->gold[g].start, r->gold[g].end);
        }
    }
    for (size_t d = 0; d < res->count && d < 4096; d++) {
        if (used_det[d]) continue;
        const dc_pii_detection *x = &res->detections[d];
        for (int s = 0; s < 2; s++) by[s][x->category].fp++;
        if (*errors_left > 0) {
            (*errors_left)--;
            show("FALSE", r, (int)x->category, x->start, x->end);
        }
    }
}

static void report(const char *title, counts *c) {
    printf("\n%s\n%-16s %6s %6s %6s %9s %7s %6s %6s\n", title, "category", "gold", "TP", "FP",
           "precision", "recall", "F2", "exact");
    counts all = {0};
    for (int k = 0; k < DC_PII_CAT_COUNT; k++) {
        counts x = c[k];
        if (!x.tp && !x.fp && !x.fn) continue;
        all.tp += x.tp;
        all.fp += x.fp;
        all.fn += x.fn;
        all.exact += x.exact;
        double p = x.tp + x.fp ? (double)x.tp / (double)(x.tp + x.fp) : 1.0;
        double r = x.tp + x.fn ? (double)x.tp / (double)(x.tp + x.fn) : 1.0;
        double f2 = p + r > 0 ? 5 * p * r / (4 * p + r) : 0.0;
        printf("%-16s %6ld %6ld %6ld %9.3f %7.3f %6.3f %6.2f\n",
               dc_pii_category_name((dc_pii_category)k), x.tp + x.fn, x.tp, x.fp, p, r, f2,
               x.tp ? (double)x.exact / (double)x.tp : 0.0);
    }
    double p = all.tp + all.fp ? (double)all.tp / (double)(all.tp + all.fp) : 1.0;
    double r = all.tp + all.fn ? (double)all.tp / (double)(all.tp + all.fn) : 1.0;
    printf("%-16s %6ld %6ld %6ld %9.3f %7.3f %6.3f %6.2f\n", "all", all.tp + all.fn, all.tp,
           all.fp, p, r, p + r > 0 ? 5 * p * r / (4 * p + r) : 0.0,
           all.tp ? (double)all.exact / (double)all.tp : 0.0);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Scrubs the chunks for about `seconds` in 7 rounds; median MB/s of thread CPU and wall. */
static void throughput(const char *name, const dc_scrubber *sc, char **chunks, size_t *lens,
                       size_t n, double seconds) {
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) bytes += lens[i];
    double cpu[7], wall[7];
    for (int round = 0; round < 7; round++) {
        double c0 = now_s(CLOCK_THREAD_CPUTIME_ID), w0 = now_s(CLOCK_MONOTONIC);
        size_t done = 0;
        int reps = 0;
        do {
            for (size_t i = 0; i < n; i++) {
                dc_scrub_result r;
                if (dc_scrubber_scrub(sc, chunks[i], lens[i], &r)) {
                    fprintf(stderr, "scrub failed: %s\n", dc_error_detail());
                    exit(1);
                }
                dc_scrub_result_free(&r);
            }
            done += bytes;
            reps++;
        } while (now_s(CLOCK_MONOTONIC) - w0 < seconds / 7);
        cpu[round] = done / 1e6 / (now_s(CLOCK_THREAD_CPUTIME_ID) - c0);
        wall[round] = done / 1e6 / (now_s(CLOCK_MONOTONIC) - w0);
    }
    qsort(cpu, 7, sizeof cpu[0], cmp_double);
    qsort(wall, 7, sizeof wall[0], cmp_double);
    printf("%-40s %8.1f MB/s cpu (%.1f..%.1f)  %8.1f MB/s wall\n", name, cpu[3], cpu[0], cpu[6],
           wall[3]);
}

int main(int argc, char **argv) {
    const char *dir = "tests/data/pii";
    double seconds = 3.0;
    int errors = 0;
    dc_config cfg;
    dc_config_defaults(&cfg);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--errors") && i + 1 < argc) errors = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--sensitivity") && i + 1 < argc) {
            if (dc_pii_sensitivity_parse(argv[++i], &cfg.pii.sensitivity)) {
                fprintf(stderr, "%s\n", dc_error_detail());
                return 2;
            }
        } else {
            fprintf(stderr, "usage: bench_pii [--data DIR] [--sensitivity S] [--seconds S] "
                            "[--errors N]\n");
            return 2;
        }
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/corpus.jsonl", dir);
    size_t n = 0;
    record *recs = load_corpus(path, &n);
    dc_scrubber *sc;
    if (dc_scrubber_create(&cfg.pii, &sc)) {
        fprintf(stderr, "%s\n", dc_error_detail());
        return 1;
    }
    counts split[3][DC_PII_CAT_COUNT], total[DC_PII_CAT_COUNT];
    memset(split, 0, sizeof split);
    memset(total, 0, sizeof total);
    size_t gold_bytes = 0, leaked = 0, corpus_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        dc_scrub_result res;
        if (dc_scrubber_scrub(sc, recs[i].text, recs[i].len, &res)) {
            fprintf(stderr, "record %zu: %s\n", i, dc_error_detail());
            return 1;
        }
        counts by[2][DC_PII_CAT_COUNT];
        memset(by, 0, sizeof by);
        score(&recs[i], &res, by, &gold_bytes, &leaked, &errors);
        for (int k = 0; k < DC_PII_CAT_COUNT; k++) {
            counts *t = &split[recs[i].split][k];
            t->tp += by[0][k].tp;
            t->fp += by[0][k].fp;
            t->fn += by[0][k].fn;
            t->exact += by[0][k].exact;
            total[k].tp += by[1][k].tp;
            total[k].fp += by[1][k].fp;
            total[k].fn += by[1][k].fn;
            total[k].exact += by[1][k].exact;
        }
        corpus_bytes += recs[i].len;
        dc_scrub_result_free(&res);
    }
    printf("corpus: %zu records, %zu bytes; sensitivity %s\n", n, corpus_bytes,
           dc_pii_sensitivity_name(cfg.pii.sensitivity));
    report("holdout templates (written after tuning, scored once)", split[2]);
    report("test templates (seen while tuning)", split[1]);
    report("dev templates (tuned on)", split[0]);
    report("all", total);
    printf("\nleak: %zu of %zu labelled bytes (%.2f%%) not covered by any detection\n", leaked,
           gold_bytes, gold_bytes ? 100.0 * (double)leaked / (double)gold_bytes : 0.0);

    /* Throughput on one core. */
    printf("\nthroughput (one thread, median of 7 rounds, %.1f s per case)\n", seconds);
    snprintf(path, sizeof path, "%s/ordinary.txt", dir);
    size_t olen = 0;
    char *ordinary = read_all(path, &olen);
    if (!ordinary) {
        fprintf(stderr, "cannot read %s\n", path);
        return 1;
    }
    /* 4 KiB paragraphs (a typical input), and the whole 64 KiB text at once. */
    size_t nchunks = 0;
    char *chunks[64];
    size_t lens[64];
    for (size_t off = 0; off < olen && nchunks < 64; nchunks++) {
        size_t l = olen - off < 4096 ? olen - off : 4096;
        while (off + l < olen && l > 1 && ((unsigned char)ordinary[off + l] & 0xC0) == 0x80) l--;
        chunks[nchunks] = ordinary + off;
        lens[nchunks] = l;
        off += l;
    }
    throughput("ordinary text, 4 KiB inputs", sc, chunks, lens, nchunks, seconds);
    char *whole[1] = {ordinary};
    size_t wlen[1] = {olen};
    throughput("ordinary text, one 64 KiB input", sc, whole, wlen, 1, seconds);
    char **texts = malloc(n * sizeof *texts);
    size_t *tl = malloc(n * sizeof *tl);
    for (size_t i = 0; i < n; i++) {
        texts[i] = recs[i].text;
        tl[i] = recs[i].len;
    }
    throughput("PII corpus, one record per input", sc, texts, tl, n, seconds);
    free(texts);
    free(tl);
    free(ordinary);
    for (size_t i = 0; i < n; i++) {
        free(recs[i].text);
        free(recs[i].gold);
    }
    free(recs);
    dc_scrubber_destroy(sc);
    return 0;
}

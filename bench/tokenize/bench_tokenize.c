/* Single-thread tokenizer throughput: encodes every line of a corpus (one document per line,
 * JSON lines {"text": ...} or plain text) with offsets, as the pipeline does, and prints
 * MB/s, tokens/s and a checksum of all ids (compared with the reference by run.sh).
 * usage: bench_tokenize TOKENIZER CORPUS [SECONDS] */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "text/jsonl.h"
#include "text/tokenizer.h"

typedef struct doc {
    char *s;
    size_t n;
} doc;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s TOKENIZER CORPUS [SECONDS]\n", argv[0]);
        return 2;
    }
    double min_seconds = argc > 3 ? atof(argv[3]) : 3.0;
    dc_tokenizer *tok;
    if (dc_tokenizer_load(argv[1], &tok)) {
        fprintf(stderr, "load %s: %s\n", argv[1], dc_error_detail());
        return 1;
    }
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    doc *docs = NULL;
    size_t ndocs = 0, bytes = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        size_t len = (size_t)n;
        if (line[len - 1] == '\n') len--;
        doc d = {0};
        const char *v;
        size_t vl;
        if (len && line[0] == '{' && dc_jsonl_field(line, len, "text", &v, &vl) == DC_OK) {
            if (dc_json_decode_string(v, vl, &d.s, &d.n)) continue;
        } else {
            d.s = malloc(len + 1);
            memcpy(d.s, line, len);
            d.n = len;
        }
        docs = realloc(docs, (ndocs + 1) * sizeof *docs);
        docs[ndocs++] = d;
        bytes += d.n;
    }
    free(line);
    fclose(f);

    dc_encode_options o;
    dc_tokenizer_default_options(tok, &o);
    o.truncation.enabled = false;
    o.padding.enabled = false;
    /* one pass fills the caches and gives the checksum; then timed passes */
    uint64_t sum = 1469598103934665603ull, tokens = 0;
    for (size_t i = 0; i < ndocs; i++) {
        dc_encoding e;
        if (dc_tokenizer_encode(tok, docs[i].s, docs[i].n, &o, &e)) {
            fprintf(stderr, "encode: %s\n", dc_error_detail());
            return 1;
        }
        for (size_t k = 0; k < e.len; k++) sum = (sum ^ e.ids[k]) * 1099511628211ull;
        tokens += e.len;
        dc_encoding_free(&e);
    }
    double t0 = now(), t;
    size_t passes = 0;
    do {
        for (size_t i = 0; i < ndocs; i++) {
            dc_encoding e;
            dc_tokenizer_encode(tok, docs[i].s, docs[i].n, &o, &e);
            dc_encoding_free(&e);
        }
        passes++;
        t = now() - t0;
    } while (t < min_seconds);
    double per = t / (double)passes;
    printf("{\"impl\": \"dodeca\", \"docs\": %zu, \"bytes\": %zu, \"tokens\": %llu, \"seconds_per_pass\": %.6f, "
           "\"mb_per_s\": %.3f, \"tokens_per_s\": %.0f, \"checksum\": \"%016llx\"}\n",
           ndocs, bytes, (unsigned long long)tokens, per, (double)bytes / per / 1e6,
           (double)tokens / per, (unsigned long long)sum);
    for (size_t i = 0; i < ndocs; i++) free(docs[i].s);
    free(docs);
    dc_tokenizer_free(tok);
    return 0;
}

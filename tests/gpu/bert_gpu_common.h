/* What the BERT-on-GPU test and benchmark share: loading a fixture folder on a backend in a
 * weight format, and the worst row cosine between two outputs. */
#ifndef DC_TESTS_GPU_BERT_GPU_COMMON_H
#define DC_TESTS_GPU_BERT_GPU_COMMON_H

#include <math.h>
#include <stdio.h>

#include "io/weights.h"
#include "models/bert.h"

/* The fixture in `dir` from the checkpoint `weights`; host_weights as dc_bert_config has it. */
static inline dc_status load_weights(const char *dir, const char *weights, dc_backend *be,
                                     dc_weight_format fmt, bool host_weights, dc_bert **out) {
    char path[4200];
    dc_bert_config cfg;
    snprintf(path, sizeof path, "%s/config.json", dir);
    dc_status st = dc_bert_config_read(path, &cfg);
    if (st) return st;
    cfg.weights = fmt;
    cfg.host_weights = host_weights;
    dc_weights *w = NULL;
    if ((st = dc_weights_open(weights, &w))) return st;
    st = dc_bert_create(w, &cfg, be, out);
    dc_weights_close(w);
    return st;
}

static inline dc_status load(const char *dir, dc_backend *be, dc_weight_format fmt,
                             dc_bert **out) {
    char path[4200];
    dc_status st = dc_bert_weights_path(dir, path, sizeof path);
    return st ? st : load_weights(dir, path, be, fmt, false, out);
}

static inline double min_cosine(const float *a, const float *b, size_t rows, size_t cols) {
    double worst = 1.0;
    for (size_t r = 0; r < rows; r++) {
        double ab = 0, aa = 0, bb = 0;
        for (size_t c = 0; c < cols; c++) {
            double x = a[r * cols + c], y = b[r * cols + c];
            ab += x * y, aa += x * x, bb += y * y;
        }
        double cs = (aa == 0 && bb == 0) ? 1.0 : ab / sqrt(aa * bb);
        if (!(cs >= worst)) worst = cs; /* NaN counts as worst */
    }
    return worst;
}

#endif

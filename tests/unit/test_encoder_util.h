/* Helpers for the encoder tests: the fixture generator (compiled in), temporary folders, the
 * JSON goldens written by tests/data/encoder/gen_goldens.py, and vector comparisons. */
#ifndef DC_TEST_ENCODER_UTIL_H
#define DC_TEST_ENCODER_UTIL_H

#include <dirent.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../tools/bert_fixture.c"
#include "test_support.h"

/* rm -r of a fixture folder (two levels at most). */
static void fx_remove(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) fx_remove(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Writes fixture `name` (optionally modified by `tweak`) into a fresh temp folder. */
static char *fx_make(const char *name, void (*tweak)(dc_fixture_spec *)) {
    dc_fixture_spec s;
    assert_true(dc_fixture_named(name, &s));
    if (tweak) tweak(&s);
    char *dir = malloc(64);
    snprintf(dir, 64, "/tmp/dc_fx_XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(dc_fixture_write(dir, &s), 0);
    return dir;
}

static void fx_drop(char *dir) {
    fx_remove(dir);
    free(dir);
}

static cJSON *golden_open(const char *rel) {
    size_t len;
    char *data = dc_test_read_file(dc_test_data_path(rel), &len);
    assert_non_null(data);
    cJSON *root = cJSON_ParseWithLength(data, len);
    free(data);
    assert_non_null(root);
    return root;
}

static const char *golden_text(const cJSON *root, size_t i) {
    return cJSON_GetArrayItem(cJSON_GetObjectItem(root, "texts"), (int)i)->valuestring;
}

static size_t golden_count(const cJSON *root) {
    return (size_t)cJSON_GetArraySize(cJSON_GetObjectItem(root, "texts"));
}

/* Copies a JSON number array into a new float array; *n gets its length. */
static float *golden_floats(const cJSON *arr, size_t *n) {
    size_t k = (size_t)cJSON_GetArraySize(arr);
    float *v = malloc((k ? k : 1) * sizeof *v);
    for (size_t i = 0; i < k; i++) v[i] = (float)cJSON_GetArrayItem(arr, (int)i)->valuedouble;
    *n = k;
    return v;
}

typedef struct parity {
    double min_cos, max_abs;
} parity;

static void parity_init(parity *p) {
    p->min_cos = 1.0;
    p->max_abs = 0.0;
}

/* Cosine (skipped when the reference is all zeros) and max-abs of one vector pair. */
static void parity_add(parity *p, const float *got, const float *ref, size_t n) {
    double mx = 0, rn = 0;
    for (size_t i = 0; i < n; i++) {
        mx = fmax(mx, fabs((double)got[i] - ref[i]));
        rn += (double)ref[i] * ref[i];
    }
    if (rn > 0) p->min_cos = fmin(p->min_cos, dc_vec_cosine(got, ref, n));
    p->max_abs = fmax(p->max_abs, mx);
}

static void parity_check(const parity *p, const char *what) {
    print_message("%s: min cosine %.8f, max-abs %.3g\n", what, p->min_cos, p->max_abs);
    if (p->min_cos < 0.99999 || p->max_abs > 1e-4)
        fail_msg("%s: parity out of bounds (cosine %.8f, max-abs %.3g)", what, p->min_cos,
                 p->max_abs);
}

#endif

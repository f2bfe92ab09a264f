/* Fake models for the runtime tests: any of the twelve ids, with a controllable delay, load
 * failure, memory size and output seed, and counters of what the runtime asked of them.
 * Outputs are deterministic functions of (seed, input content), so tests can tell which
 * weights answered. */
#ifndef DC_TEST_RUNTIME_FAKE_H
#define DC_TEST_RUNTIME_FAKE_H

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "dodeca/dodeca.h"
#include "test_support.h"

typedef struct fake_ctl {
    atomic_int delay_ms;        /* sleep per embed_batch call */
    atomic_int hold;            /* embed_batch waits while this is non-zero (at most 60 s):
                                 * a condition for tests instead of a guessed delay */
    atomic_int load_delay_ms;   /* sleep in load */
    atomic_int fail_load;       /* load returns DC_ERR_MODEL_LOAD */
    atomic_int fail_embed;      /* embed_batch returns DC_ERR_INTERNAL */
    atomic_int zero_output;     /* embed returns zero vectors (a broken model) */
    atomic_ullong bytes;        /* memory_usage once loaded */
    atomic_int creates, loads, unloads, destroys, embeds, items, max_batch, in_flight, overlap;
    atomic_int unsorted;        /* batches whose content lengths were not ascending */
} fake_ctl;

typedef struct fake_factory {
    dc_model_factory base;
    fake_ctl ctl[DC_NUM_MODELS];
    uint64_t estimate[DC_NUM_MODELS];
} fake_factory;

typedef struct fake_impl {
    fake_ctl *ctl;
    uint64_t seed;
} fake_impl;

static inline void fake_sleep_ms(int ms) {
    if (ms <= 0) return;
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static inline dc_status fake_load(dc_model *m) {
    fake_impl *f = m->impl;
    atomic_fetch_add(&f->ctl->loads, 1);
    fake_sleep_ms(atomic_load(&f->ctl->load_delay_ms));
    if (atomic_load(&f->ctl->fail_load)) return dc_fail(DC_ERR_MODEL_LOAD, "fake load failure");
    return DC_OK;
}

static inline dc_status fake_unload(dc_model *m) {
    fake_impl *f = m->impl;
    atomic_fetch_add(&f->ctl->unloads, 1);
    return DC_OK;
}

static inline uint64_t fake_mix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* The vector a fake model with `seed` gives for `content`. */
static inline void fake_vector(uint64_t seed, dc_model_id id, const char *content, size_t len,
                        float *v, uint32_t dim) {
    uint64_t h = seed * 31 + (uint64_t)id;
    for (size_t i = 0; i < len; i++) h = fake_mix(h ^ (unsigned char)content[i]);
    for (uint32_t i = 0; i < dim; i++) {
        h = fake_mix(h);
        v[i] = (float)((double)(h >> 11) / 9007199254740992.0 - 0.5);
    }
}

static inline dc_status fake_embed(dc_model *m, const dc_input *in, size_t n, dc_model_embedding *out) {
    fake_impl *f = m->impl;
    if (atomic_fetch_add(&f->ctl->in_flight, 1) > 0) atomic_fetch_add(&f->ctl->overlap, 1);
    atomic_fetch_add(&f->ctl->embeds, 1);
    atomic_fetch_add(&f->ctl->items, (int)n);
    int mb = atomic_load(&f->ctl->max_batch);
    while ((int)n > mb && !atomic_compare_exchange_weak(&f->ctl->max_batch, &mb, (int)n)) {
    }
    for (size_t i = 1; i < n; i++)
        if (in[i].content_len < in[i - 1].content_len) {
            atomic_fetch_add(&f->ctl->unsorted, 1);
            break;
        }
    fake_sleep_ms(atomic_load(&f->ctl->delay_ms));
    for (int waited = 0; atomic_load(&f->ctl->hold) && waited < 60000; waited++) fake_sleep_ms(1);
    dc_status st = DC_OK;
    /* content starting with "FAIL" is an input this model cannot embed */
    for (size_t i = 0; i < n; i++)
        if (in[i].content && in[i].content_len >= 4 && !memcmp(in[i].content, "FAIL", 4))
            st = dc_fail(DC_ERR_TOKENIZATION, "fake: item %zu is unembeddable", i);
    if (atomic_load(&f->ctl->fail_embed)) st = dc_fail(DC_ERR_INTERNAL, "fake embed failure");
    uint32_t dim = m->info->dim;
    float *v = malloc(dim * sizeof *v);
    for (size_t i = 0; st == DC_OK && i < n; i++) {
        const char *c = in[i].content ? in[i].content : (const char *)in[i].bytes;
        size_t len = in[i].content ? in[i].content_len : in[i].bytes_len;
        fake_vector(f->seed, m->info->id, c, len, v, dim);
        if (atomic_load(&f->ctl->zero_output)) memset(v, 0, dim * sizeof *v);
        st = dc_model_embedding_init(&out[i], m->info->id, v, dim);
        out[i].tokens_used = (uint32_t)(len / 4 + 1);
        out[i].truncated = len > 1000;
    }
    free(v);
    atomic_fetch_sub(&f->ctl->in_flight, 1);
    return st;
}

static inline size_t fake_memory(const dc_model *m) {
    fake_impl *f = m->impl;
    return (size_t)atomic_load(&f->ctl->bytes);
}

static inline void fake_destroy(dc_model *m) {
    fake_impl *f = m->impl;
    atomic_fetch_add(&f->ctl->destroys, 1);
    free(f);
    free(m);
}

static const dc_model_vtable fake_vt = {fake_load, fake_unload, fake_embed, fake_memory,
                                        fake_destroy};

/* cfg->path, when set, is parsed as the seed: "7" → seed 7 (so a swap can name new weights). */
static inline dc_status fake_create(void *ctx, dc_model_id id, const dc_model_config *cfg,
                             dc_model **out) {
    fake_factory *ff = ctx;
    dc_model *m = calloc(1, sizeof *m);
    fake_impl *f = calloc(1, sizeof *f);
    if (!m || !f) {
        free(m);
        free(f);
        return DC_ERR_OUT_OF_MEMORY;
    }
    f->ctl = &ff->ctl[id];
    f->seed = cfg && cfg->path[0] ? strtoull(cfg->path, NULL, 10) : 1;
    atomic_fetch_add(&f->ctl->creates, 1);
    dc_status st = dc_model_init(m, id, &fake_vt, f);
    if (st != DC_OK) {
        free(m);
        free(f);
        return st;
    }
    *out = m;
    return DC_OK;
}

static inline uint64_t fake_estimate(void *ctx, dc_model_id id) {
    fake_factory *ff = ctx;
    return ff->estimate[id];
}

/* A factory for the models in `mask`, each 1 MiB, no delay. Free with free(). */
/* Polls `cond` every millisecond for at most 60 s (then the caller asserts it). */
#define fake_wait_until(cond)                                                                  \
    for (int dc__i = 0; !(cond) && dc__i < 60000; dc__i++) fake_sleep_ms(1)

static inline fake_factory *fake_factory_new(uint32_t mask) {
    fake_factory *ff = calloc(1, sizeof *ff);
    assert_non_null(ff);
    ff->base.ctx = ff;
    ff->base.supported_mask = mask;
    ff->base.create = fake_create;
    ff->base.estimate_memory = fake_estimate;
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        ff->estimate[i] = 1u << 20;
        atomic_store(&ff->ctl[i].bytes, 1u << 20);
    }
    return ff;
}

/* rm -r (a few levels deep). */
static inline void rt_remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        unlink(dir);
        return;
    }
    struct dirent *e;
    char p[4400];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        size_t a = strlen(dir), b = strlen(e->d_name);
        if (a + b + 2 > sizeof p) continue;
        memcpy(p, dir, a);
        p[a] = '/';
        memcpy(p + a + 1, e->d_name, b + 1);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) rt_remove_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static inline void rt_mkdir_p(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0755);
            *p = '/';
        }
    mkdir(tmp, 0755);
}

#endif

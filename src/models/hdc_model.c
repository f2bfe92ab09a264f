/* E9 hyperdimensional model behind the dc_model vtable. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "models/custom.h"
#include "models/hdc.h"

typedef struct hdc_model {
    dc_model base; /* first: the dc_model handed out is this struct */
    dc_hdc_options opt;
    char *path; /* owned copy of opt.item_memory_path, or NULL */
    dc_hdc_memory *mem;
    /* One idle scratch kept between calls (its ~70 KB would otherwise be allocated and
     * faulted in per call); a concurrent call finding none makes its own. */
    _Atomic(dc_hdc_scratch *) spare;
} hdc_model;

dc_hdc_options dc_hdc_options_default(void) {
    dc_hdc_options o = {0};
    o.seed = DC_HDC_DEFAULT_SEED;
    o.ngram = DC_HDC_DEFAULT_NGRAM;
    o.max_chars = DC_HDC_DEFAULT_MAX_CHARS;
    o.symbols = DC_HDC_DEFAULT_SYMBOLS;
    return o;
}

/* Latency accounting only. */
static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A file made for other options would silently change every embedding: refuse it. */
static dc_status check_matches(const dc_hdc_memory *mem, const dc_hdc_options *o,
                               const char *path) {
    if (mem->seed != o->seed)
        return dc_fail(DC_ERR_CONFIG,
                       "%s holds the item memory of seed %llu, but E9 is configured with seed %llu "
                       "(configure that seed, or delete the file to regenerate it)",
                       path, (unsigned long long)mem->seed, (unsigned long long)o->seed);
    if (mem->ngram != o->ngram)
        return dc_fail(DC_ERR_CONFIG, "%s was made for ngram %u, but E9 is configured with %u",
                       path, (unsigned)mem->ngram, (unsigned)o->ngram);
    if (mem->symbols != o->symbols)
        return dc_fail(DC_ERR_CONFIG, "%s holds %u symbols, but E9 is configured with %u", path,
                       (unsigned)mem->symbols, (unsigned)o->symbols);
    return DC_OK;
}

static dc_status hdc_load(dc_model *m) {
    hdc_model *hm = (hdc_model *)m;
    const dc_hdc_options *o = &hm->opt;
    dc_hdc_memory *mem = NULL;
    dc_status st;
    if (!hm->path) {
        st = dc_hdc_memory_generate(o->seed, o->ngram, o->symbols, &mem);
    } else {
        st = dc_hdc_memory_load(hm->path, &mem);
        if (st == DC_OK) {
            st = check_matches(mem, o, hm->path);
        } else if (st == DC_ERR_NOT_FOUND) {
            /* Missing: regenerate from the seed (the same vectors) and keep them. */
            st = dc_hdc_memory_generate(o->seed, o->ngram, o->symbols, &mem);
            if (st == DC_OK) st = dc_hdc_memory_save(mem, hm->path);
        }
    }
    if (st != DC_OK) {
        dc_hdc_memory_free(mem);
        return st;
    }
    hm->mem = mem;
    return DC_OK;
}

static dc_status hdc_unload(dc_model *m) {
    hdc_model *hm = (hdc_model *)m;
    dc_hdc_memory_free(hm->mem);
    hm->mem = NULL;
    dc_hdc_scratch_free(atomic_exchange(&hm->spare, NULL));
    return DC_OK;
}

static size_t hdc_memory(const dc_model *m) {
    const hdc_model *hm = (const hdc_model *)m;
    return sizeof *hm + dc_hdc_memory_bytes(hm->mem);
}

static void hdc_destroy(dc_model *m) {
    hdc_model *hm = (hdc_model *)m;
    free(hm->path);
    free(hm);
}

static dc_status hdc_embed(dc_model *m, const dc_input *inputs, size_t n, dc_model_embedding *out) {
    hdc_model *hm = (hdc_model *)m;
    /* Concurrent calls share only the read-only item memory; each has its own scratch. */
    dc_hdc_scratch *s = atomic_exchange(&hm->spare, NULL);
    dc_status st = s ? DC_OK : dc_hdc_scratch_create(&s);
    if (st != DC_OK) return st;
    float v[DC_HDC_OUT_DIM];
    for (size_t i = 0; i < n && st == DC_OK; i++) {
        uint64_t start = now_us();
        dc_hdc_result r;
        st = dc_hdc_encode(hm->mem, s, inputs[i].content, inputs[i].content_len, hm->opt.max_chars,
                           hm->opt.case_sensitive, v, &r);
        if (st != DC_OK) {
            dc_fail_context(st, "item %zu", i);
            break;
        }
        if ((st = dc_model_embedding_init(&out[i], m->info->id, v, DC_HDC_OUT_DIM)) != DC_OK) break;
        out[i].tokens_used = r.chars_used;
        out[i].truncated = r.truncated;
        out[i].latency_us = now_us() - start;
    }
    dc_hdc_scratch *none = NULL;
    if (!atomic_compare_exchange_strong(&hm->spare, &none, s)) dc_hdc_scratch_free(s);
    return st;
}

static const dc_model_vtable hdc_vt = {hdc_load, hdc_unload, hdc_embed, hdc_memory, hdc_destroy};

dc_status dc_hdc_create(const dc_hdc_options *opt, dc_model **out) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "HDC create: NULL output");
    *out = NULL;
    dc_hdc_options o = opt ? *opt : dc_hdc_options_default();
    if (o.ngram < 1 || o.ngram > DC_HDC_MAX_NGRAM)
        return dc_fail(DC_ERR_CONFIG, "E9 ngram = %u; expected 1 .. %u", (unsigned)o.ngram,
                       DC_HDC_MAX_NGRAM);
    if (o.max_chars < 1 || o.max_chars > DC_HDC_MAX_MAX_CHARS)
        return dc_fail(DC_ERR_CONFIG, "E9 max_chars = %u; expected 1 .. %u", (unsigned)o.max_chars,
                       DC_HDC_MAX_MAX_CHARS);
    if (o.symbols > DC_HDC_MAX_SYMBOLS)
        return dc_fail(DC_ERR_CONFIG, "E9 symbols = %u; at most %u", (unsigned)o.symbols,
                       DC_HDC_MAX_SYMBOLS);
    if (o.item_memory_path && !o.item_memory_path[0])
        return dc_fail(DC_ERR_CONFIG, "E9 item_memory_path is empty (omit it instead)");
    hdc_model *hm = calloc(1, sizeof *hm);
    if (!hm) return dc_fail(DC_ERR_OUT_OF_MEMORY, "E9 model");
    if (o.item_memory_path) {
        size_t n = strlen(o.item_memory_path) + 1;
        hm->path = malloc(n);
        if (!hm->path) {
            free(hm);
            return dc_fail(DC_ERR_OUT_OF_MEMORY, "E9 model: path");
        }
        memcpy(hm->path, o.item_memory_path, n);
    }
    dc_status st = dc_model_init(&hm->base, DC_MODEL_HDC, &hdc_vt, hm);
    if (st != DC_OK) {
        free(hm->path);
        free(hm);
        return st;
    }
    o.item_memory_path = hm->path;
    hm->opt = o;
    atomic_init(&hm->spare, NULL);
    *out = &hm->base;
    return DC_OK;
}

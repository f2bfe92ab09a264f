/* bench/pipeline — the whole pipeline: single-input latency (p50/p95/p99), throughput of
 * embed_batch at 8/16/32/64, per-stage and per-model time, cache-hit latency, and the
 * pipeline's own overhead as a fraction of model time.
 *
 * Two configurations: the custom models alone (always available), then — when a models folder
 * is given or --fixtures writes one — the custom models plus the BERT-family models found there.
 * --fixtures DIR writes random-weight checkpoints at the real architecture sizes (E1 BERT-large,
 * E5 Longformer-base, E6 and E12 BERT-base, E7 RoBERTa-base, E8 and E11 MiniLM-L6, E10 CLIP
 * ViT-L/14) with the small test vocabulary, so the encoder cost is real but SPLADE's
 * 30522-wide MLM head is not (see README).
 *
 * --device LIST runs the pretrained configuration once per device of the comma-separated list
 * (cpu, cuda, cuda:N, auto; default cpu), all on the same fixtures and inputs, so one run
 * compares the CPU with the GPU; --dtype fp32|bf16|fp16|fp8|int8 sets every pretrained
 * model's quantization (fp32 = none; fp16/fp8 run on CUDA only, int8 on the CPU only).
 *
 * Usage: bench_pipeline [--models-dir DIR | --fixtures DIR] [--device LIST] [--dtype T]
 *                       [--requests N] [--quick] */
#include <math.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../tests/tools/bert_fixture.c"
#include "dodeca/dodeca.h"
#include "dodeca/pipeline.h"
#include "runtime/rt.h"

static const char *const words[] = {
    "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "search", "engines", "rank",
    "documents", "by", "relevance", "to", "a", "query", "while", "graphs", "connect", "entities",
    "through", "typed", "relations", "and", "time", "matters", "for", "recent", "events"};

/* Deterministic text of n words, distinct per seed. */
static size_t make_text(uint64_t seed, size_t n, char *buf, size_t cap) {
    size_t len = (size_t)snprintf(buf, cap, "#%llu", (unsigned long long)seed);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n && len + 16 < cap; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        len += (size_t)snprintf(buf + len, cap - len, " %s", words[x % (sizeof words / sizeof *words)]);
    }
    return len;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, size_t n, double q) {
    if (!n) return 0;
    qsort(v, n, sizeof *v, cmp_u64);
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i];
}

static void die(const char *what, dc_status st) {
    fprintf(stderr, "bench_pipeline: %s: %s (%s)\n", what, dc_status_name(st), dc_error_detail());
    exit(1);
}

typedef struct run_cfg {
    const char *label;
    const char *models_dir; /* NULL: custom models only */
    dc_device device;       /* of every pretrained model */
    dc_quantization quant;  /* of every pretrained model */
    size_t requests;
    size_t rounds;
    size_t words;
} run_cfg;

static void bench_one(const run_cfg *rc, uint64_t *seed) {
    dc_config cfg;
    dc_config_defaults(&cfg);
    cfg.models.lazy_loading = false;
    cfg.pipeline.deadline_ms = 600000; /* measure the work, not the policy */
    cfg.pipeline.min_models = 1;
    cfg.batch.queue_capacity = 4096;
    if (rc->models_dir) snprintf(cfg.models.models_dir, sizeof cfg.models.models_dir, "%s", rc->models_dir);
    else snprintf(cfg.models.models_dir, sizeof cfg.models.models_dir, "/nonexistent-dodeca-models");
    for (int i = 0; i < DC_NUM_MODELS; i++)
        if (dc_model_info_get((dc_model_id)i)->kind == DC_MODEL_KIND_PRETRAINED) {
            cfg.models.model[i].device = rc->device;
            cfg.models.model[i].quantization = rc->quant;
        }
    dc_pipeline_options o;
    dc_pipeline_options_default(&o);
    dc_pipeline *p = NULL;
    uint64_t t0 = dc_rt_now_ns();
    dc_status st = dc_pipeline_open_ex(&cfg, &o, &p);
    if (st != DC_OK) die("open", st);
    double open_s = (double)(dc_rt_now_ns() - t0) / 1e9;
    dc_warmup_report w;
    dc_pipeline_warmup_report(p, &w);
    dc_pipeline_health h;
    dc_pipeline_health_get(p, &h);
    printf("\n== %s: %u models loaded (mask 0x%03x), open %.2f s (warm-up %.1f ms, fusion %.1f ms)\n",
           rc->label, h.models_loaded, h.loaded_mask, open_s, (double)w.total_us / 1e3,
           (double)w.fusion_us / 1e3);
    dc_pipeline_stats bk;
    if (rc->models_dir && dc_pipeline_stats_get(p, &bk) == DC_OK) {
        printf("   backends:");
        for (int i = 0; i < DC_NUM_MODELS; i++)
            if (bk.model[i].state == DC_MODEL_STATE_LOADED &&
                dc_model_info_get((dc_model_id)i)->kind == DC_MODEL_KIND_PRETRAINED)
                printf(" %s %s;", dc_model_info_get((dc_model_id)i)->label, bk.model[i].backend);
        printf("\n");
    }
    for (int i = 0; i < DC_NUM_MODELS; i++)
        if (w.model[i].warmed)
            printf("   warm-up %-4s %8.1f ms  (first batch-1 %.2f ms, steady batch-1 %.2f ms)\n",
                   dc_model_info_get((dc_model_id)i)->label, (double)w.model[i].duration_us / 1e3,
                   (double)w.model[i].first_us / 1e3, (double)w.model[i].final_us / 1e3);

    char text[1024];
    dc_embed_options nocache = {.no_cache = true};
    /* 1. single-input latency, sequential, every input new */
    size_t n = rc->requests;
    uint64_t *tot = calloc(n, sizeof *tot), *ovh = calloc(n, sizeof *ovh);
    double sum_prep = 0, sum_tok = 0, sum_models = 0, sum_fusion = 0, sum_model_crit = 0, sum_fwd[DC_NUM_MODELS] = {0};
    double sum_ovh = 0, sum_work = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = make_text((*seed)++, rc->words, text, sizeof text);
        dc_input in = dc_input_text(text, len, DC_ROLE_PASSAGE);
        dc_pipeline_result r;
        if ((st = dc_pipeline_embed_ex(p, &in, &nocache, &r)) != DC_OK) die("embed", st);
        uint64_t crit = 0;
        for (int m = 0; m < DC_NUM_MODELS; m++) {
            if (r.models[m].status != DC_RUN_OK) continue;
            sum_fwd[m] += (double)r.models[m].forward_us;
            if (r.models[m].forward_us > crit) crit = r.models[m].forward_us;
        }
        /* model time = tokenising (once per tokenizer) + the slowest model (they run in
         * parallel) + the fusion forward */
        uint64_t work = r.timings.tokenise_us + crit + r.timings.fusion_us;
        tot[i] = r.timings.total_us;
        ovh[i] = tot[i] > work ? tot[i] - work : 0;
        sum_prep += (double)r.timings.prepare_us;
        sum_tok += (double)r.timings.tokenise_us;
        sum_models += (double)r.timings.models_us;
        sum_fusion += (double)r.timings.fusion_us;
        sum_model_crit += (double)crit;
        sum_ovh += (double)ovh[i];
        sum_work += (double)work;
        dc_pipeline_result_free(&r);
    }
    printf("single input (%zu sequential, %zu words, cache off): p50 %.2f ms  p95 %.2f ms  p99 %.2f ms\n", n,
           rc->words, (double)pct(tot, n, 0.50) / 1e3, (double)pct(tot, n, 0.95) / 1e3,
           (double)pct(tot, n, 0.99) / 1e3);
    printf("   stages (mean): prepare %.1f us, tokenise %.1f us, models %.2f ms (slowest model forward %.2f ms), fusion %.2f ms\n",
           sum_prep / (double)n, sum_tok / (double)n, sum_models / (double)n / 1e3,
           sum_model_crit / (double)n / 1e3, sum_fusion / (double)n / 1e3);
    dc_pipeline_stats ps;
    if (dc_pipeline_stats_get(p, &ps) == DC_OK && ps.embeddings)
        printf("   shared tokenizations: %.2f per input (%u tokenizers among the loaded encoders)\n",
               (double)ps.tokenizations / (double)ps.embeddings, ps.shared_tokenizers);
    printf("   per-model forward (mean, batch of 1):");
    for (int m = 0; m < DC_NUM_MODELS; m++)
        if (sum_fwd[m] > 0) printf(" %s %.2f ms", dc_model_info_get((dc_model_id)m)->label, sum_fwd[m] / (double)n / 1e3);
    printf("\n   pipeline overhead (total - tokenise - slowest model - fusion): mean %.1f us, p50 %.1f us = %.2f %% of model time\n",
           sum_ovh / (double)n, (double)pct(ovh, n, 0.5), 100.0 * sum_ovh / (sum_work > 0 ? sum_work : 1));
    free(tot);
    free(ovh);

    /* 2. throughput with embed_batch */
    static const size_t sizes[4] = {8, 16, 32, 64};
    for (int s = 0; s < 4; s++) {
        size_t b = sizes[s];
        dc_input *ins = calloc(b, sizeof *ins);
        char(*texts)[1024] = calloc(b, sizeof *texts);
        dc_pipeline_result *rs = calloc(b, sizeof *rs);
        uint64_t start = dc_rt_now_ns(), items = 0;
        for (size_t r = 0; r < rc->rounds; r++) {
            for (size_t i = 0; i < b; i++) {
                size_t len = make_text((*seed)++, rc->words, texts[i], sizeof texts[i]);
                ins[i] = dc_input_text(texts[i], len, DC_ROLE_PASSAGE);
            }
            if ((st = dc_pipeline_embed_batch_ex(p, ins, b, &nocache, rs, NULL)) != DC_OK) die("embed_batch", st);
            for (size_t i = 0; i < b; i++) dc_pipeline_result_free(&rs[i]);
            items += b;
        }
        double sec = (double)(dc_rt_now_ns() - start) / 1e9;
        printf("throughput batch %2zu: %8.1f inputs/s  (%.2f ms per batch)\n", b, (double)items / sec,
               sec * 1e3 / (double)rc->rounds);
        free(ins);
        free(texts);
        free(rs);
    }

    dc_pipeline_stats bs;
    if (dc_pipeline_stats_get(p, &bs) == DC_OK) {
        printf("   per model so far (batches, mean items per batch, mean forward per batch, failures):\n  ");
        for (int m = 0; m < DC_NUM_MODELS; m++) {
            const dc_pipeline_model_stats *ms = &bs.model[m];
            if (!ms->batches) continue;
            printf(" %s %" PRIu64 "/%.1f/%.2f ms/%" PRIu64, dc_model_info_get((dc_model_id)m)->label,
                   ms->batches, (double)ms->batch_items / (double)ms->batches,
                   ms->forward.mean_us / 1e3, ms->failures);
        }
        printf("\n");
        bool any = false; /* CUDA graphs (recorded/launched/failed), where any were tried */
        for (int m = 0; m < DC_NUM_MODELS; m++) {
            const dc_pipeline_model_stats *ms = &bs.model[m];
            if (!ms->graphs && !ms->graph_failures) continue;
            printf("%s %s %" PRIu64 "/%" PRIu64 "/%" PRIu64, any ? "" : "   cuda graphs (recorded/launched/failed):",
                   dc_model_info_get((dc_model_id)m)->label, ms->graphs, ms->graph_launches,
                   ms->graph_failures);
            any = true;
        }
        if (any) printf("\n");
    }

    /* 3. cache hits */
    size_t len = make_text((*seed)++, rc->words, text, sizeof text);
    dc_input in = dc_input_text(text, len, DC_ROLE_PASSAGE);
    dc_pipeline_result r;
    if ((st = dc_pipeline_embed(p, &in, &r)) != DC_OK) die("embed", st);
    dc_pipeline_result_free(&r);
    size_t hits = 20000;
    uint64_t *hl = calloc(hits, sizeof *hl);
    for (size_t i = 0; i < hits; i++) {
        uint64_t a = dc_rt_now_ns();
        if ((st = dc_pipeline_embed(p, &in, &r)) != DC_OK || !r.cache_hit) die("cache hit", st);
        hl[i] = dc_rt_now_ns() - a;
        dc_pipeline_result_free(&r);
    }
    printf("cache hit (in-process, %zu calls incl. decode and free): p50 %.2f us  p99 %.2f us\n", hits,
           (double)pct(hl, hits, 0.5) / 1e3, (double)pct(hl, hits, 0.99) / 1e3);
    free(hl);
    dc_pipeline_close(p);
}

static void write_fixtures(const char *dir) {
    /* kind, hidden, layers, heads, intermediate, max_position, max_seq_length, seed */
    struct {
        const char *folder;
        dc_fixture_spec s;
    } fx[8] = {
        {"semantic", {.kind = DC_FIXTURE_ST_NORM, .hidden = 1024, .layers = 24, .heads = 16,
                      .intermediate = 4096, .max_position = 512, .max_seq_length = 512, .seed = 101}},
        {"sparse", {.kind = DC_FIXTURE_SPLADE, .hidden = 768, .layers = 12, .heads = 12,
                    .intermediate = 3072, .max_position = 512, .seed = 106, .bert_prefix = true}},
        {"graph", {.kind = DC_FIXTURE_ST, .hidden = 384, .layers = 6, .heads = 12,
                   .intermediate = 1536, .max_position = 512, .max_seq_length = 128, .seed = 108}},
        {"entity", {.kind = DC_FIXTURE_ST_NORM, .hidden = 384, .layers = 6, .heads = 12,
                    .intermediate = 1536, .max_position = 512, .max_seq_length = 256, .seed = 111}},
        {"late_interaction", {.kind = DC_FIXTURE_COLBERT, .hidden = 768, .layers = 12, .heads = 12,
                              .intermediate = 3072, .max_position = 512, .seed = 112, .bert_prefix = true}},
        /* Longformer-base, 4098 positions; the fixture's windows grow 42·(layer+1) = 42…504
         * (the real model uses 512 in every layer) */
        {"causal", {.kind = DC_FIXTURE_LONGFORMER, .hidden = 768, .layers = 12, .heads = 12,
                    .intermediate = 3072, .max_position = 4098, .seed = 105, .window = 42}},
        {"code", {.kind = DC_FIXTURE_ROBERTA, .hidden = 768, .layers = 12, .heads = 12,
                  .intermediate = 3072, .max_position = 514, .seed = 107, .bert_prefix = true}},
        /* CLIP ViT-L/14: text 12 × 768, vision 24 × 1024, projections to 768 */
        {"multimodal", {.kind = DC_FIXTURE_CLIP, .hidden = 768, .layers = 12, .heads = 12,
                        .intermediate = 3072, .max_position = 77, .seed = 110, .vision_hidden = 1024,
                        .vision_layers = 24, .vision_heads = 16, .vision_intermediate = 4096,
                        .projection_dim = 768}},
    };
    mkdir(dir, 0755);
    for (int i = 0; i < 8; i++) {
        char p[4096], cfgp[4200];
        snprintf(p, sizeof p, "%s/%s", dir, fx[i].folder);
        snprintf(cfgp, sizeof cfgp, "%s/config.json", p);
        struct stat sb;
        if (stat(cfgp, &sb) == 0) continue; /* already written */
        uint64_t t0 = dc_rt_now_ns();
        if (dc_fixture_write(p, &fx[i].s) != 0) {
            fprintf(stderr, "bench_pipeline: cannot write fixture %s\n", p);
            exit(1);
        }
        printf("wrote %s (%u layers x %u) in %.1f s\n", p, fx[i].s.layers, fx[i].s.hidden,
               (double)(dc_rt_now_ns() - t0) / 1e9);
    }
}

int main(int argc, char **argv) {
    const char *models_dir = getenv("DODECA_BENCH_MODELS_DIR");
    const char *fixtures = NULL;
    size_t requests = 0;
    bool quick = false;
    const char *devices = "cpu", *dtype = "fp32";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--models-dir") && i + 1 < argc) models_dir = argv[++i];
        else if (!strcmp(argv[i], "--fixtures") && i + 1 < argc) fixtures = argv[++i];
        else if (!strcmp(argv[i], "--requests") && i + 1 < argc) requests = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--quick")) quick = true;
        else if (!strcmp(argv[i], "--device") && i + 1 < argc) devices = argv[++i];
        else if (!strcmp(argv[i], "--dtype") && i + 1 < argc) dtype = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--models-dir DIR | --fixtures DIR] [--device cpu,cuda:0,...] "
                            "[--dtype fp32|bf16|fp16|fp8|int8] [--requests N] [--quick]\n", argv[0]);
            return 2;
        }
    }
    dc_quantization quant = DC_QUANTIZATION_NONE;
    if (strcmp(dtype, "fp32") && dc_quantization_parse(dtype, &quant) != DC_OK) {
        fprintf(stderr, "bench_pipeline: --dtype %s: %s\n", dtype, dc_error_detail());
        return 2;
    }
    dc_device dev_list[8];
    char dev_names[8][32];
    size_t n_dev = 0;
    for (const char *d = devices; *d && n_dev < 8;) {
        size_t len = strcspn(d, ",");
        snprintf(dev_names[n_dev], sizeof dev_names[n_dev], "%.*s", (int)len, d);
        if (dc_device_parse(dev_names[n_dev], &dev_list[n_dev]) != DC_OK) {
            fprintf(stderr, "bench_pipeline: --device %s: %s\n", dev_names[n_dev], dc_error_detail());
            return 2;
        }
        n_dev++;
        d += len;
        if (*d == ',') d++;
    }
    if (fixtures) {
        write_fixtures(fixtures);
        models_dir = fixtures;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* a run cut short by a time limit keeps what it printed */
    const char *omp = getenv("OMP_NUM_THREADS");
    printf("dodeca %s pipeline benchmark; OMP_NUM_THREADS=%s\n", dc_version(), omp ? omp : "(unset)");
    uint64_t seed = 1;
    run_cfg custom = {"custom models (E2, E3, E4, E9)", NULL, {DC_DEVICE_CPU, 0},
                      DC_QUANTIZATION_NONE, requests ? requests : (quick ? 200 : 2000),
                      quick ? 20 : 200, 24};
    bench_one(&custom, &seed);
    for (size_t d = 0; models_dir && d < n_dev; d++) {
        char label[128];
        snprintf(label, sizeof label, "custom + pretrained models on %s (%s)", dev_names[d], dtype);
        run_cfg all = {label, models_dir, dev_list[d], quant,
                       requests ? requests : (quick ? 5 : 30), quick ? 1 : 3, 24};
        uint64_t dseed = seed; /* every device embeds the same inputs */
        bench_one(&all, &dseed);
    }
    return 0;
}

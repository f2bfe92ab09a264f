/* The whole pipeline on the CUDA backend: the eight pretrained models from the random-weight
 * fixtures of the unit tests, opened with every model on "cpu" (fp32) and on "cuda:0" in fp32
 * and in bf16, the same inputs through each. Each model's vector must agree with the CPU's fp32
 * one (cosine ≥ 0.9999, the bar for bf16 too), the
 * SPLADE weights and ColBERT rows must come through, and the stats must say where each model
 * ran. The inputs go into the CUDA pipeline from one thread each at once (the models run side
 * by side on their own streams); the bf16 run asks for green contexts. The fp32 run then sends
 * each input three more times, so the encoders record and replay CUDA graphs, and checks the
 * replays' results and that graphs were recorded and launched; then warms the pipeline up and
 * checks that an input of a length not seen before replays a graph in each encoder, CLIP's
 * text tower included (the warm-up recorded every padded length). Inputs: a passage (every text model, E5's Longformer global token included), a query
 * (E12 query mode) and a code snippet, and an image (E10's vision tower) when the test data
 * is found next to this file. Exit 77 (skipped) without the CUDA library, a driver or a
 * device. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tools/bert_fixture.c"
#include "dodeca/pipeline.h"
#include "tensor/backend_loader.h"
#include "check.h"

static int failures, checks;

static char root[64];

static void rm_tree(const char *dir) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

static int mkdir_p(const char *path) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
    return system(cmd);
}

static int put_fixture(const char *name, const char *folder, bool hub) {
    dc_fixture_spec spec;
    if (!dc_fixture_named(name, &spec)) return -1;
    char p[512];
    if (!hub) {
        snprintf(p, sizeof p, "%s/%s", root, folder);
        return dc_fixture_write(p, &spec);
    }
    snprintf(p, sizeof p, "%s/%s/snapshots/0123abcd", root, folder);
    if (mkdir_p(p) || dc_fixture_write(p, &spec)) return -1;
    snprintf(p, sizeof p, "%s/%s/refs", root, folder);
    if (mkdir_p(p)) return -1;
    strcat(p, "/main");
    FILE *f = fopen(p, "w");
    if (!f) return -1;
    fputs("0123abcd\n", f);
    fclose(f);
    return 0;
}

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = n > 0 ? malloc((size_t)n) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = b ? (size_t)n : 0;
    return b;
}

static double cosine(const float *a, const float *b, uint32_t n) {
    double ab = 0, aa = 0, bb = 0;
    for (uint32_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : (aa == bb ? 1.0 : 0.0);
}

static const uint32_t pretrained_mask =
    1u << DC_MODEL_SEMANTIC | 1u << DC_MODEL_CAUSAL | 1u << DC_MODEL_SPARSE |
    1u << DC_MODEL_CODE | 1u << DC_MODEL_GRAPH | 1u << DC_MODEL_MULTIMODAL |
    1u << DC_MODEL_ENTITY | 1u << DC_MODEL_LATE_INTERACTION;

static dc_pipeline *open_on(const char *device, dc_quantization q, bool green) {
    dc_config cfg;
    dc_config_defaults(&cfg);
    cfg.gpu.green_contexts = green;
    cfg.fusion.expert_hidden_dim = 64;
    cfg.batch.max_batch_size = 4; /* the warm-up's shapes: 1 and 4 */
    cfg.models.lazy_loading = false;
    cfg.pipeline.deadline_ms = 600000; /* the CPU emulation of CUDA is slow */
    snprintf(cfg.models.models_dir, sizeof cfg.models.models_dir, "%s", root);
    for (int i = 0; i < DC_NUM_MODELS; i++)
        if ((pretrained_mask >> i) & 1u) {
            if (dc_device_parse(device, &cfg.models.model[i].device) != DC_OK) return NULL;
            cfg.models.model[i].quantization = q;
        }
    dc_pipeline_options o;
    dc_pipeline_options_default(&o);
    o.warmup = false;
    dc_pipeline *p = NULL;
    if (dc_pipeline_open_ex(&cfg, &o, &p) != DC_OK) {
        fprintf(stderr, "open (%s): %s\n", device, dc_error_detail());
        return NULL;
    }
    return p;
}

#define N_IN 4

/* nnz_slack: how many SPLADE terms may appear or vanish (weights near zero cross the ReLU) */
static void compare(const dc_pipeline_result *c, const dc_pipeline_result *g, const char *what,
                    long nnz_slack) {
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        const dc_model_result *a = &c->models[i], *b = &g->models[i];
        const char *label = dc_model_info_get((dc_model_id)i)->label;
        CHECK(a->status == b->status, "%s %s: status %s on cpu, %s on cuda (%s)", what, label,
              dc_run_status_name(a->status), dc_run_status_name(b->status), b->detail);
        if (a->status != DC_RUN_OK || b->status != DC_RUN_OK) continue;
        CHECK(a->dim == b->dim, "%s %s: dim %u vs %u", what, label, a->dim, b->dim);
        double cs = cosine(a->vector, b->vector, a->dim);
        printf("  %-8s %-4s cosine %.7f\n", what, label, cs);
        CHECK(cs >= 0.9999, "%s %s: cosine %.7f < 0.9999", what, label, cs);
    }
    CHECK(labs((long)c->fused.sparse.nnz - (long)g->fused.sparse.nnz) <= nnz_slack,
          "%s: SPLADE nnz %u on cpu, %u on cuda", what, c->fused.sparse.nnz, g->fused.sparse.nnz);
    CHECK(c->fused.colbert.n_tokens == g->fused.colbert.n_tokens,
          "%s: ColBERT rows %u on cpu, %u on cuda", what, c->fused.colbert.n_tokens,
          g->fused.colbert.n_tokens);
    if (c->fused.colbert.n_tokens == g->fused.colbert.n_tokens && c->fused.colbert.n_tokens) {
        double worst = 1;
        for (uint32_t t = 0; t < c->fused.colbert.n_tokens; t++) {
            const size_t o = (size_t)t * c->fused.colbert.dim;
            double cs = cosine(c->fused.colbert.data + o, g->fused.colbert.data + o,
                               c->fused.colbert.dim);
            if (cs < worst) worst = cs;
        }
        CHECK(worst >= 0.9999, "%s: worst ColBERT row cosine %.7f", what, worst);
    }
    double fc = cosine(c->fused.vector, g->fused.vector, DC_DIM_FUSED);
    printf("  %-8s fused cosine %.7f\n", what, fc);
    CHECK(fc >= 0.9999, "%s: fused cosine %.7f", what, fc);
}

typedef struct embed_job {
    dc_pipeline *p;
    const dc_input *in;
    dc_pipeline_result *out;
    dc_status st;
    char detail[256];
} embed_job;

static void *embed_one(void *arg) {
    embed_job *j = arg;
    const dc_embed_options eo = {.no_cache = true};
    j->st = dc_pipeline_embed_ex(j->p, j->in, &eo, j->out);
    if (j->st != DC_OK) snprintf(j->detail, sizeof j->detail, "%s", dc_error_detail());
    return NULL;
}

/* The same inputs through the pipeline with every pretrained model on cuda:0 in format q, each
 * result compared with the CPU's fp32 one. The inputs go in from one thread each, at once: the
 * models (each with its own stream on the device) run side by side, several calls queue up per
 * model, and pool blocks move between the models' streams. green: gpu.green_contexts = true
 * (green partitions where the driver has them, else ordinary streams and the reason). */
static void run_cuda(dc_quantization q, const char *fmt, bool green, const dc_input *in,
                     const char *const *names, size_t n_in, const dc_pipeline_result *cpu_r) {
    dc_pipeline_result gpu_r[N_IN];
    memset(gpu_r, 0, sizeof gpu_r);
    dc_pipeline *p = open_on("cuda:0", q, green);
    CHECK(p != NULL, "open on cuda:0 (%s)", fmt);
    if (!p) return;
    embed_job job[N_IN];
    pthread_t th[N_IN];
    bool started[N_IN] = {false};
    for (size_t i = 0; i < n_in; i++) {
        job[i] = (embed_job){.p = p, .in = &in[i], .out = &gpu_r[i], .st = DC_OK};
        started[i] = pthread_create(&th[i], NULL, embed_one, &job[i]) == 0;
        if (!started[i]) embed_one(&job[i]);
    }
    for (size_t i = 0; i < n_in; i++) {
        if (started[i]) pthread_join(th[i], NULL);
        CHECK(job[i].st == DC_OK, "cuda %s %s: %s", fmt, names[i], job[i].detail);
    }
    dc_pipeline_stats s;
    CHECK(dc_pipeline_stats_get(p, &s) == DC_OK, "stats");
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        const char *label = dc_model_info_get((dc_model_id)i)->label;
        if ((pretrained_mask >> i) & 1u) {
            printf("  %-4s runs on %s\n", label, s.model[i].backend);
            CHECK(!strncmp(s.model[i].backend, "cuda:0", 6) && strstr(s.model[i].backend, fmt),
                  "%s runs on \"%s\", not cuda:0 (%s)", label, s.model[i].backend, fmt);
            CHECK(s.model[i].state == DC_MODEL_STATE_LOADED, "%s is not loaded: %s", label,
                  s.model[i].reason);
            /* green contexts asked for: a partition, or why none */
            if (green)
                CHECK(strstr(s.model[i].backend, "green context") != NULL,
                      "%s: \"%s\" says nothing of green contexts", label, s.model[i].backend);
        }
    }
    const long extra = q == DC_QUANTIZATION_NONE ? 0 : 1;
    for (int pass = 0; pass < (q == DC_QUANTIZATION_NONE ? 4 : 1) && !failures; pass++) {
        /* fp32: three times more, one input at a time, so every single-input layout is seen,
         * recorded as a CUDA graph and replayed at least once (the first pass may have batched
         * inputs together); the replays must agree with the CPU too */
        if (pass) {
            const dc_embed_options eo = {.no_cache = true};
            for (size_t i = 0; i < n_in; i++) {
                dc_pipeline_result_free(&gpu_r[i]);
                CHECK(dc_pipeline_embed_ex(p, &in[i], &eo, &gpu_r[i]) == DC_OK, "cuda %s %s pass %d: %s",
                      fmt, names[i], pass, dc_error_detail());
            }
        }
        for (size_t i = 0; i < n_in; i++) {
            char what[48];
            snprintf(what, sizeof what, "%s %s%s", fmt, names[i], pass == 3 ? " (graphs)" : "");
            long slack = 2 + extra * (long)cpu_r[i].fused.sparse.nnz / 20;
            compare(&cpu_r[i], &gpu_r[i], what, slack);
        }
    }
    if (q == DC_QUANTIZATION_NONE && !failures) {
        uint64_t graphs = 0, launches = 0, failed = 0;
        CHECK(dc_pipeline_stats_get(p, &s) == DC_OK, "stats");
        for (int i = 0; i < DC_NUM_MODELS; i++) {
            graphs += s.model[i].graphs;
            launches += s.model[i].graph_launches;
            failed += s.model[i].graph_failures;
        }
        printf("  cuda graphs: %llu recorded, %llu launched, %llu failed\n", (unsigned long long)graphs,
               (unsigned long long)launches, (unsigned long long)failed);
        CHECK(graphs > 0 && launches >= 2 * graphs && failed == 0,
              "repeated inputs are recorded and replayed as CUDA graphs");
        /* the warm-up records one-input forwards of every padded length, so an input of a
         * length not seen before is a replay in each encoder (E10: its text tower) */
        dc_warmup_report wr;
        CHECK(dc_pipeline_warmup(p, &wr) == DC_OK, "warm-up: %s", dc_error_detail());
        dc_pipeline_stats before;
        CHECK(dc_pipeline_stats_get(p, &before) == DC_OK, "stats");
        static const char fresh[] = "A sentence that no earlier pass sent, of its own length.";
        dc_input nin = dc_input_text(fresh, sizeof fresh - 1, DC_ROLE_PASSAGE);
        nin.has_t_ref = true;
        nin.t_ref = 1700000100.0;
        dc_pipeline_result nr;
        const dc_embed_options neo = {.no_cache = true};
        CHECK(dc_pipeline_embed_ex(p, &nin, &neo, &nr) == DC_OK, "after warm-up: %s", dc_error_detail());
        dc_pipeline_result_free(&nr);
        CHECK(dc_pipeline_stats_get(p, &s) == DC_OK, "stats");
        for (int i = 0; i < DC_NUM_MODELS; i++) {
            if (!((pretrained_mask >> i) & 1u)) continue;
            const char *label = dc_model_info_get((dc_model_id)i)->label;
            printf("  %-4s warm-up recorded %u layouts; the new input: %llu recorded, %llu launched\n",
                   label, wr.model[i].graph_layouts,
                   (unsigned long long)(s.model[i].graphs - before.model[i].graphs),
                   (unsigned long long)(s.model[i].graph_launches - before.model[i].graph_launches));
            /* E10: its 8 text buckets (8 ... 64, and 77) and the one-image vision batch */
            if (i == DC_MODEL_MULTIMODAL)
                CHECK(wr.model[i].graph_layouts == 9, "E10: warm-up recorded %u layouts, not 8 + 1",
                      wr.model[i].graph_layouts);
            else
                CHECK(wr.model[i].graph_layouts >= 3, "%s: warm-up recorded %u layouts", label,
                      wr.model[i].graph_layouts);
            CHECK(s.model[i].graphs == before.model[i].graphs &&
                      s.model[i].graph_launches > before.model[i].graph_launches,
                  "%s: a new input after the warm-up replays a graph", label);
        }
    }
    for (size_t i = 0; i < n_in; i++) dc_pipeline_result_free(&gpu_r[i]);
    dc_pipeline_close(p);
}

int main(void) {
    char why[256];
    if (dc_cuda_check(0, why, sizeof why) != DC_OK) {
        printf("skipped: %s\n", why);
        return 77;
    }
    snprintf(root, sizeof root, "/tmp/dc_gpupl_XXXXXX");
    if (!mkdtemp(root)) return 1;
    if (put_fixture("e1", "semantic", false) || put_fixture("e8", "graph", false) ||
        put_fixture("e11", "all-MiniLM-L6-v2", false) ||
        put_fixture("e6", "models--naver--splade-cocondenser-ensembledistil", true) ||
        put_fixture("e12", "models--colbert-ir--colbertv2.0", true) ||
        put_fixture("e5", "causal", false) || put_fixture("e7", "codebert-base", false) ||
        put_fixture("clip", "models--openai--clip-vit-large-patch14", true)) {
        fprintf(stderr, "could not write the fixtures under %s\n", root);
        rm_tree(root);
        return 1;
    }
    static const char passage[] = "Paris is the capital of France, said the passage.";
    static const char query[] = "capital of France";
    static const char code[] = "def add(a, b):\n    return a + b\n";
    dc_input in[N_IN];
    const char *names[N_IN] = {"passage", "query", "code", "image"};
    size_t n_in = 3;
    in[0] = dc_input_text(passage, sizeof passage - 1, DC_ROLE_PASSAGE);
    in[1] = dc_input_text(query, sizeof query - 1, DC_ROLE_QUERY);
    in[2] = dc_input_code(code, sizeof code - 1, "python");
    for (size_t i = 0; i < 3; i++) {
        in[i].has_t_event = in[i].has_t_ref = true;
        in[i].t_event = 1700000000.0;
        in[i].t_ref = 1700000100.0;
    }
    /* the image next to this source file, when the tree is there */
    char img_path[1024];
    snprintf(img_path, sizeof img_path, "%s", __FILE__);
    char *slash = strrchr(img_path, '/');
    unsigned char *png = NULL;
    size_t png_len = 0;
    if (slash) {
        snprintf(slash, sizeof img_path - (size_t)(slash - img_path),
                 "/../data/images/gray_224x224.png");
        png = read_file(img_path, &png_len);
    }
    if (png) {
        in[3] = dc_input_image(png, png_len, DC_IMAGE_PNG);
        in[3].has_t_ref = true;
        in[3].t_ref = 1700000100.0;
        n_in = 4;
    } else {
        printf("(no test image at %s: the vision tower is not compared)\n", img_path);
    }

    dc_pipeline_result cpu_r[N_IN];
    memset(cpu_r, 0, sizeof cpu_r);
    const dc_embed_options eo = {.no_cache = true};
    dc_pipeline *p = open_on("cpu", DC_QUANTIZATION_NONE, false);
    CHECK(p != NULL, "open on the CPU");
    for (size_t i = 0; p && i < n_in; i++)
        CHECK(dc_pipeline_embed_ex(p, &in[i], &eo, &cpu_r[i]) == DC_OK, "cpu %s: %s", names[i],
              dc_error_detail());
    if (p) {
        dc_pipeline_stats s;
        CHECK(dc_pipeline_stats_get(p, &s) == DC_OK, "stats");
        for (int i = 0; i < DC_NUM_MODELS; i++)
            if ((pretrained_mask >> i) & 1u)
                CHECK(!strcmp(s.model[i].backend, "cpu"), "cpu run: %s runs on \"%s\"",
                      dc_model_info_get((dc_model_id)i)->label, s.model[i].backend);
        dc_pipeline_close(p);
    }
    if (failures) goto out;

    run_cuda(DC_QUANTIZATION_NONE, "fp32", false, in, names, n_in, cpu_r);
    /* the bar for reduced precision: every model within cosine 0.9999 of CPU fp32;
     * this run with gpu.green_contexts = true */
    if (!failures) run_cuda(DC_QUANTIZATION_BF16, "bf16", true, in, names, n_in, cpu_r);
out:
    for (size_t i = 0; i < n_in; i++) dc_pipeline_result_free(&cpu_r[i]);
    free(png);
    rm_tree(root);
    if (failures) {
        fprintf(stderr, "%d of %d checks failed\n", failures, checks);
        return 1;
    }
    printf("pipeline on cuda:0 (fp32 and bf16) agrees with the CPU\n");
    return 0;
}

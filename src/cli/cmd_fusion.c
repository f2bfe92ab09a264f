/* `dodeca fusion ...`: FuseMoE checkpoints, training and evaluation.
 *
 *   fusion info    [--checkpoint PATH] [options]     what a FuseMoE built from these settings is
 *   fusion init    --out PATH [options]              write the seeded initialisation
 *   fusion train   --pairs FILE --out PATH [...]     contrastive training on concatenation pairs
 *   fusion eval    --pairs FILE [--checkpoint PATH]  paired recall@1
 *   fusion synth   --out FILE [--n N] [--seed N]     the synthetic pairs task (JSON lines)
 *   fusion verify  PATH                              recompute a checkpoint's SHA-256
 *   fusion list    DIR                               the versions in a registry directory */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "dodeca/dodeca.h"
#include "fusion/fusemoe.h"
#include "fusion/registry.h"
#include "fusion/train.h"


static int fail_st(dc_status st, const char *what) {
    fprintf(stderr, "dodeca fusion %s: %s: %s\n", what, dc_status_name(st), dc_error_detail());
    return DC_EXIT_FAILURE;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: dodeca fusion <command> [options]\n\n"
            "  info   [--checkpoint PATH] [model options]   describe a FuseMoE\n"
            "  init   --out PATH [model options] [--version V]   write the seeded weights\n"
            "  train  --pairs FILE --out PATH [--from CKPT] [--eval FILE] [training options]\n"
            "         [model options] [--version V] [--quiet]\n"
            "  eval   --pairs FILE [--checkpoint PATH] [model options]   paired recall@1\n"
            "  synth  --out FILE [--n N] [--seed N] [--structure-seed N]   synthetic pairs\n"
            "  verify PATH                                   check a checkpoint's SHA-256\n"
            "  list   DIR                                    versions in a registry directory\n\n"
            "model options: --config FILE (its [fusion] section), --experts N, --top-k N,\n"
            "  --hidden N, --gating softmax|laplace, --temperature X, --seed N, --bridge\n"
            "training options: --epochs N (10), --batch N (64), --lr X (1e-3), --tau X (0.1),\n"
            "  --weight-decay X (0.01), --balance X (load-balance weight), --train-seed N\n"
            "pairs files are JSON lines {\"a\": [8320 numbers], \"b\": [8320 numbers],\n"
            "  \"mask_a\": 4095, \"mask_b\": 4095} (masks optional)\n");
}

static int parse_u64(const char *flag, const char *v, uint64_t lo, uint64_t hi, uint64_t *out) {
    if (!v) {
        fprintf(stderr, "dodeca fusion: %s needs a value\n", flag);
        return -1;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-' || x < lo || x > hi) {
        fprintf(stderr, "dodeca fusion: %s \"%s\" must be an integer in [%" PRIu64 ", %" PRIu64 "]\n",
                flag, v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

static int parse_f64(const char *flag, const char *v, double lo, double hi, double *out) {
    if (!v) {
        fprintf(stderr, "dodeca fusion: %s needs a value\n", flag);
        return -1;
    }
    char *end = NULL;
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= lo && x <= hi)) {
        fprintf(stderr, "dodeca fusion: %s \"%s\" must be a number in [%g, %g]\n", flag, v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

typedef struct args {
    dc_fusion_options opt;
    dc_fusion_train_options train;
    dc_fusion_synth_options synth;
    const char *checkpoint, *out, *pairs, *from, *eval, *version, *config;
    bool quiet;
    const char *positional;
    char config_checkpoint[DC_CONFIG_PATH_MAX]; /* fusion.checkpoint of --config (opt borrows it) */
} args;

/* Parses every flag any subcommand takes; returns 0, or -1 after printing the problem. */
static int parse_args(int argc, char **argv, args *a) {
    memset(a, 0, sizeof *a);
    dc_fusion_options_default(&a->opt);
    dc_fusion_train_options_default(&a->train);
    dc_fusion_synth_options_default(&a->synth);
    /* --config first, so flags override the file */
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "dodeca fusion: --config needs a file\n");
                return -1;
            }
            a->config = argv[i + 1];
            dc_config cfg;
            dc_status st = dc_config_load_file(a->config, &cfg);
            if (st != DC_OK) {
                fprintf(stderr, "dodeca fusion: %s: %s\n", dc_status_name(st), dc_error_detail());
                return -1;
            }
            dc_fusion_options_from_config(&cfg, &a->opt);
            if (a->opt.checkpoint) {
                snprintf(a->config_checkpoint, sizeof a->config_checkpoint, "%s",
                         a->opt.checkpoint);
                a->opt.checkpoint = a->config_checkpoint;
            }
        }
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t u = 0;
        double d = 0.0;
        int r = 0;
        if (!strcmp(f, "--config")) { i++; continue; }
        if (!strcmp(f, "--checkpoint")) { a->checkpoint = v; i++; }
        else if (!strcmp(f, "--out")) { a->out = v; i++; }
        else if (!strcmp(f, "--pairs")) { a->pairs = v; i++; }
        else if (!strcmp(f, "--from")) { a->from = v; i++; }
        else if (!strcmp(f, "--eval")) { a->eval = v; i++; }
        else if (!strcmp(f, "--version")) { a->version = v; i++; }
        else if (!strcmp(f, "--quiet")) a->quiet = true;
        else if (!strcmp(f, "--bridge")) a->opt.bridge = true;
        else if (!strcmp(f, "--experts")) { r = parse_u64(f, v, 1, DC_NUM_EXPERTS, &u); a->opt.num_experts = (uint32_t)u; i++; }
        else if (!strcmp(f, "--top-k")) { r = parse_u64(f, v, 1, DC_NUM_EXPERTS, &u); a->opt.top_k = (uint32_t)u; i++; }
        else if (!strcmp(f, "--hidden")) { r = parse_u64(f, v, 1, 65536, &u); a->opt.hidden = (uint32_t)u; i++; }
        else if (!strcmp(f, "--seed")) { r = parse_u64(f, v, 0, UINT64_MAX, &u); a->opt.seed = u; a->synth.item_seed = u; i++; }
        else if (!strcmp(f, "--structure-seed")) { r = parse_u64(f, v, 0, UINT64_MAX, &u); a->synth.structure_seed = u; i++; }
        else if (!strcmp(f, "--train-seed")) { r = parse_u64(f, v, 0, UINT64_MAX, &u); a->train.seed = u; i++; }
        else if (!strcmp(f, "--n")) { r = parse_u64(f, v, 2, 10000000, &u); a->synth.n = (size_t)u; i++; }
        else if (!strcmp(f, "--epochs")) { r = parse_u64(f, v, 1, 100000, &u); a->train.epochs = (uint32_t)u; i++; }
        else if (!strcmp(f, "--batch")) { r = parse_u64(f, v, 2, 65536, &u); a->train.batch = (uint32_t)u; i++; }
        else if (!strcmp(f, "--lr")) { r = parse_f64(f, v, 1e-9, 10, &d); a->train.lr = d; i++; }
        else if (!strcmp(f, "--tau")) { r = parse_f64(f, v, 1e-4, 10, &d); a->train.tau = d; i++; }
        else if (!strcmp(f, "--weight-decay")) { r = parse_f64(f, v, 0, 0.999, &d); a->train.weight_decay = d; i++; }
        else if (!strcmp(f, "--balance")) { r = parse_f64(f, v, 0, 100, &d); a->train.load_balance_coef = d; i++; }
        else if (!strcmp(f, "--temperature")) { r = parse_f64(f, v, 1e-6, 1e6, &d); a->opt.temperature = d; i++; }
        else if (!strcmp(f, "--gating")) {
            if (!v || dc_gating_kind_parse(v, &a->opt.gating) != DC_OK) {
                fprintf(stderr, "dodeca fusion: --gating must be softmax or laplace\n");
                return -1;
            }
            i++;
        } else if (f[0] == '-' && f[1] == '-') {
            fprintf(stderr, "dodeca fusion: unknown option %s\n", f);
            return -1;
        } else if (!a->positional) {
            a->positional = f;
            continue;
        } else {
            fprintf(stderr, "dodeca fusion: unexpected argument \"%s\"\n", f);
            return -1;
        }
        if (r) return -1;
        if (i >= argc) {
            fprintf(stderr, "dodeca fusion: %s needs a value\n", f);
            return -1;
        }
    }
    if (a->opt.top_k > a->opt.num_experts) {
        fprintf(stderr, "dodeca fusion: --top-k (%u) must be <= --experts (%u)\n", a->opt.top_k,
                a->opt.num_experts);
        return -1;
    }
    return 0;
}

static void print_version(const dc_fusion_version *v) {
    printf("version      %s\nsource       %s\n", v->version, v->source);
    if (v->created[0]) printf("created      %s\n", v->created);
    printf("seed         %" PRIu64 "\nchecksum     %s\n", v->seed, v->checksum);
    if (v->metrics.present) {
        printf("metrics      epoch %u, loss %.4f, learning rate %g", v->metrics.epoch,
               v->metrics.loss, v->metrics.learning_rate);
        if (v->metrics.recall_at_1 >= 0) printf(", recall@1 %.4f", v->metrics.recall_at_1);
        printf("\n");
    }
    if (v->fallback_reason[0]) printf("fallback     %s\n", v->fallback_reason);
}

/* The weights the options describe: --checkpoint (strict) or the seeded initialisation. */
static dc_status weights_for(const args *a, const char *ckpt, dc_fusion_weights **out) {
    dc_fusion_options o = a->opt;
    o.checkpoint = ckpt;
    o.checkpoint_strict = true;
    return dc_fusion_weights_resolve(&o, out);
}

static int cmd_info(const args *a) {
    dc_fusion_weights *w = NULL;
    dc_status st = weights_for(a, a->checkpoint ? a->checkpoint : a->positional, &w);
    if (st != DC_OK) return fail_st(st, "info");
    const dc_fusion_options *o = dc_fusion_weights_options(w);
    printf("experts      %u (top-%u), hidden %u, gating %s, temperature %g, smoothing %g\n",
           o->num_experts, o->top_k, o->hidden, dc_gating_kind_name(o->gating), o->temperature,
           o->laplace_alpha);
    printf("shared map   sparse JL 8320 -> 1536, %u non-zeros per column, seed %" PRIu64 "\n",
           o->jl_nnz, o->seed);
    printf("block weights");
    for (int m = 0; m < DC_NUM_MODELS; m++) printf(" %.4g", (double)o->block_weights[m]);
    printf("\nbridge       %s\n", o->bridge ? "CAME-AB (5 modality groups)" : "off");
    printf("parameters   %zu (%.1f MiB fp32)\n", dc_fusion_weights_param_count(w),
           (double)dc_fusion_weights_bytes(w) / (1024.0 * 1024.0));
    print_version(dc_fusion_weights_version(w));
    dc_fusion_weights_release(w);
    return DC_EXIT_OK;
}

static int cmd_init(const args *a) {
    if (!a->out) {
        fprintf(stderr, "dodeca fusion init: --out PATH is required\n");
        return DC_EXIT_USAGE;
    }
    dc_fusion_weights *w = NULL;
    dc_status st = dc_fusion_weights_init(&a->opt, &w);
    if (st == DC_OK) st = dc_fusion_weights_save(w, a->out, a->version);
    if (st == DC_OK) printf("wrote %s (%s, %s)\n", a->out, a->version ? a->version : "0.0.0-init",
                            dc_fusion_weights_version(w)->checksum);
    dc_fusion_weights_release(w);
    return st == DC_OK ? DC_EXIT_OK : fail_st(st, "init");
}

static void progress(void *ctx, uint32_t epoch, uint32_t step, double loss, double balance) {
    const args *a = ctx;
    if (a->quiet) return;
    fprintf(stderr, "epoch %u step %u: loss %.4f, load balance %.3f\n", epoch + 1, step, loss,
            balance);
}

static int cmd_train(args *a) {
    if (!a->pairs || !a->out) {
        fprintf(stderr, "dodeca fusion train: --pairs FILE and --out PATH are required\n");
        return DC_EXIT_USAGE;
    }
    dc_fusion_dataset d, ev;
    memset(&ev, 0, sizeof ev);
    dc_status st = dc_fusion_dataset_read_jsonl(a->pairs, &d);
    if (st != DC_OK) return fail_st(st, "train");
    if (a->eval && (st = dc_fusion_dataset_read_jsonl(a->eval, &ev)) != DC_OK) {
        dc_fusion_dataset_free(&d);
        return fail_st(st, "train");
    }
    const dc_fusion_dataset *test = a->eval ? &ev : &d;
    dc_fusion_weights *w0 = NULL, *w1 = NULL;
    double before = -1.0, after = -1.0;
    dc_fusion_metrics mt;
    a->train.progress = progress;
    a->train.ctx = a;
    st = weights_for(a, a->from, &w0);
    if (st == DC_OK) st = dc_fusion_recall_at_1(w0, test, &before);
    if (st == DC_OK) {
        if (!a->quiet)
            fprintf(stderr, "training on %zu pairs (%s), recall@1 before: %.4f\n", d.n, a->pairs,
                    before);
        st = dc_fusion_train(&d, w0, &a->train, &w1, &mt);
    }
    if (st == DC_OK) st = dc_fusion_recall_at_1(w1, test, &after);
    if (st == DC_OK) {
        mt.recall_at_1 = after;
        st = dc_fusion_weights_set_version(w1, a->version ? a->version : "1.0.0", &mt);
    }
    if (st == DC_OK) st = dc_fusion_weights_save(w1, a->out, NULL);
    if (st == DC_OK)
        printf("recall@1 on %s: %.4f before, %.4f after; loss %.4f; wrote %s (%s)\n",
               a->eval ? a->eval : a->pairs, before, after, mt.loss, a->out,
               dc_fusion_weights_version(w1)->version);
    dc_fusion_weights_release(w0);
    dc_fusion_weights_release(w1);
    dc_fusion_dataset_free(&d);
    dc_fusion_dataset_free(&ev);
    return st == DC_OK ? DC_EXIT_OK : fail_st(st, "train");
}

static int cmd_eval(const args *a) {
    if (!a->pairs) {
        fprintf(stderr, "dodeca fusion eval: --pairs FILE is required\n");
        return DC_EXIT_USAGE;
    }
    dc_fusion_dataset d;
    dc_status st = dc_fusion_dataset_read_jsonl(a->pairs, &d);
    if (st != DC_OK) return fail_st(st, "eval");
    dc_fusion_weights *w = NULL;
    double r = 0.0;
    st = weights_for(a, a->checkpoint, &w);
    if (st == DC_OK) st = dc_fusion_recall_at_1(w, &d, &r);
    if (st == DC_OK)
        printf("recall@1 %.4f over %zu pairs (%s)\n", r, d.n, dc_fusion_weights_version(w)->version);
    dc_fusion_weights_release(w);
    dc_fusion_dataset_free(&d);
    return st == DC_OK ? DC_EXIT_OK : fail_st(st, "eval");
}

static int cmd_synth(const args *a) {
    if (!a->out) {
        fprintf(stderr, "dodeca fusion synth: --out FILE is required\n");
        return DC_EXIT_USAGE;
    }
    dc_fusion_dataset d;
    dc_status st = dc_fusion_synth(&a->synth, &d);
    if (st == DC_OK) st = dc_fusion_dataset_write_jsonl(&d, a->out);
    if (st == DC_OK) printf("wrote %zu pairs to %s\n", d.n, a->out);
    dc_fusion_dataset_free(&d);
    return st == DC_OK ? DC_EXIT_OK : fail_st(st, "synth");
}

static int cmd_verify(const args *a) {
    const char *path = a->positional ? a->positional : a->checkpoint;
    if (!path) {
        fprintf(stderr, "dodeca fusion verify: a checkpoint path is required\n");
        return DC_EXIT_USAGE;
    }
    dc_fusion_version v;
    dc_status st = dc_fusion_checkpoint_verify(path, &v);
    if (st != DC_OK) return fail_st(st, "verify");
    printf("ok %s %s %s\n", path, v.version, v.checksum);
    return DC_EXIT_OK;
}

static int cmd_list(const args *a) {
    if (!a->positional) {
        fprintf(stderr, "dodeca fusion list: a registry directory is required\n");
        return DC_EXIT_USAGE;
    }
    dc_fusion_registry *r = NULL;
    dc_fusion_version *v = NULL;
    size_t n = 0;
    dc_status st = dc_fusion_registry_open(a->positional, &r);
    if (st == DC_OK) st = dc_fusion_registry_list(r, &v, &n);
    for (size_t i = 0; st == DC_OK && i < n; i++) {
        printf("%-16s %-20s %s", v[i].version, v[i].created, v[i].checksum);
        if (v[i].metrics.present && v[i].metrics.recall_at_1 >= 0)
            printf(" recall@1=%.4f", v[i].metrics.recall_at_1);
        printf("\n");
    }
    free(v);
    dc_fusion_registry_close(r);
    return st == DC_OK ? DC_EXIT_OK : fail_st(st, "list");
}

int dc_cmd_fusion(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return DC_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        usage(stdout);
        return DC_EXIT_OK;
    }
    args a;
    if (parse_args(argc, argv, &a) != 0) return DC_EXIT_USAGE;
    if (!strcmp(sub, "info")) return cmd_info(&a);
    if (!strcmp(sub, "init")) return cmd_init(&a);
    if (!strcmp(sub, "train")) return cmd_train(&a);
    if (!strcmp(sub, "eval")) return cmd_eval(&a);
    if (!strcmp(sub, "synth")) return cmd_synth(&a);
    if (!strcmp(sub, "verify")) return cmd_verify(&a);
    if (!strcmp(sub, "list")) return cmd_list(&a);
    fprintf(stderr, "dodeca fusion: unknown command \"%s\"\n\n", sub);
    usage(stderr);
    return DC_EXIT_USAGE;
}

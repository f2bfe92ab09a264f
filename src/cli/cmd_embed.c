/* `dodeca embed`: items from arguments, stdin or files through the twelve-model pipeline, in
 * chunks of --batch-size, to JSON lines, a FusedEmbedding stream or a .npy matrix. Long jobs
 * resume (--resume), bad lines are reported with their file and line, Ctrl-C stops cleanly
 * after the chunk in progress. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/embed_input.h"
#include "cli/embed_output.h"
#include "cli/embed_progress.h"
#include "cli/embed_resume.h"
#include "core/error.h"
#include "dodeca/dodeca.h"
#include "models/temporal_encode.h"

extern char **environ; /* POSIX; not declared by <unistd.h> without _GNU_SOURCE */

/* The orchestrator deadline of an offline job when neither --deadline-ms nor
 * pipeline.deadline_ms sets one: long enough for a CPU to run a full batch of long texts
 * through the large models, so a slow machine is not mistaken for a failed model. */
#define DC_EMBED_DEFAULT_DEADLINE_MS 60000u
#define DC_EXIT_INTERRUPTED 130

static void dc_embed_usage(FILE *out) {
    fputs(
        "usage: dodeca embed [options] [TEXT...]\n"
        "  Embeds each item with the twelve-model pipeline: one 1536-d fused vector per item\n"
        "  (and, on request, each model's vector, SPLADE weights, ColBERT rows, routing).\n"
        "  The custom models E2, E3, E4 and E9 always run; the pretrained ones when their\n"
        "  folders are under models.models_dir (--models-dir; docs/runtime.md, docs/models.md).\n"
        "\n"
        "input (default: stdin when no TEXT and no -i):\n"
        "  TEXT...                one item per argument (text; a JSON object with --format jsonl);\n"
        "                         after --, arguments starting with '-' are texts too\n"
        "  -i, --input FILE       read items from FILE (\"-\" = stdin); repeatable\n"
        "  --format F             auto (default: JSON lines when a source's first non-blank line\n"
        "                         starts with '{', else text), text (one item a line) or jsonl:\n"
        "                         {\"id\": any, \"text\"|\"code\"|\"image\": ..., \"language\": \"c\",\n"
        "                          \"role\": \"query\"|\"passage\", \"instruction\": \"...\",\n"
        "                          \"t_event\": T, \"t_ref\": T, \"position\": N}\n"
        "                         T is Unix seconds or RFC 3339; \"image\" is a file path (relative\n"
        "                         to the input file's folder). Blank lines are skipped. An item\n"
        "                         without an id gets its 0-based line number, counted across\n"
        "                         the arguments and the inputs in order.\n"
        "  --allow-extra-keys     ignore unknown JSON keys (default: an error, to catch typos)\n"
        "  --t-ref T|now          t_ref for items without one: Unix seconds, RFC 3339, or now\n"
        "                         (one clock reading for the whole run). Default: each\n"
        "                         request's receive time, echoed as \"t_ref\" in the output\n"
        "  --skip-errors          report bad or failed items (stderr and {\"id\", \"error\"} lines)\n"
        "                         and go on; default: stop at the first, after writing the rest\n"
        "                         of its batch, and exit 1\n"
        "\n",
        out);
    fputs(
        "output:\n"
        "  -o, --output FILE      write here (default stdout)\n"
        "  --output-format F      jsonl (default): {\"id\", \"embedding\": [1536], \"t_ref\",\n"
        "                         \"truncated\"} per line; binary: \"DCFS\" u32 version 1, then per\n"
        "                         item u32 id length, id (JSON), f64 t_ref, u32 length, one\n"
        "                         dc_fused_encode record (little-endian; docs/cli.md); npy: a\n"
        "                         float32 N x 1536 matrix, rows in input order. Default:\n"
        "                         npy when -o ends in .npy, binary for .dcfs, else jsonl\n"
        "  --ids FILE             npy: the id of each row, one JSON value a line\n"
        "  --per-model            jsonl: \"models\": each model's status and vector, by E1..E12\n"
        "  --sparse               jsonl: \"sparse\": E6 SPLADE weights as [[index, weight], ...]\n"
        "  --colbert              jsonl: \"colbert\": E12 token rows (128 floats each)\n"
        "  --routing              jsonl: \"routing\": the 8 gate probabilities, selected experts,\n"
        "                         the models present\n"
        "  --timings              jsonl: \"timings\": per stage and per model, cache hit\n"
        "  --resume               with -o FILE (jsonl): skip the ids already in FILE and append\n"
        "                         the rest; a partial last line (a killed run) is cut off and\n"
        "                         error lines are dropped so their items run again\n"
        "\n",
        out);
    fputs(
        "pipeline:\n"
        "  --config FILE          configuration (default $DODECA_CONFIG); then DODECA_* variables\n"
        "  --set KEY=VALUE        one setting, e.g. --set pii.enabled=false; repeatable\n"
        "  --models-dir DIR       models.models_dir: where the pretrained model folders are\n"
        "  --models LIST          run only these, e.g. E1,E9 or semantic,hdc (default: all\n"
        "                         available)\n"
        "  --batch-size N         items per pipeline call (default batch.max_batch_size)\n"
        "  --deadline-ms N        per batch of batch.max_batch_size items (default\n"
        "                         pipeline.deadline_ms, or 60000 when that is 0/auto)\n"
        "  --no-cache             neither read nor fill the embedding cache\n"
        "  --progress             progress on stderr even when it is not a terminal\n"
        "  --quiet                no progress and no summary (default: progress when stderr is\n"
        "                         a terminal and input comes from -i files)\n"
        "\n"
        "exit status: 0 every item embedded; 1 an item failed (also with --skip-errors), or an\n"
        "  I/O or pipeline error; 2 usage error; 130 interrupted (SIGINT/SIGTERM: the batch in\n"
        "  progress is finished and written first, so --resume can go on).\n",
        out);
}

static int dc_embed_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int dc_embed_usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "dodeca embed: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(dodeca embed --help lists the options)\n");
    va_end(ap);
    return DC_EXIT_USAGE;
}

static bool dc_embed_parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out) {
    char *end;
    errno = 0;
    if (*s == '-' || *s == '+') return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = (uint32_t)v;
    return true;
}

static bool dc_embed_parse_mask(const char *list, uint32_t *mask) {
    char buf[512];
    if (strlen(list) >= sizeof buf) return false;
    strcpy(buf, list);
    *mask = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ", ", &save); tok;
         tok = strtok_r(NULL, ", ", &save)) {
        dc_model_id id;
        if (dc_model_id_parse(tok, &id) != DC_OK) return false;
        *mask |= 1u << (unsigned)id;
    }
    return *mask != 0;
}

static volatile sig_atomic_t dc_embed_interrupted;

static void dc_embed_on_signal(int sig) {
    (void)sig;
    dc_embed_interrupted = 1;
}

static void dc_embed_catch_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = dc_embed_on_signal;
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C kills at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

typedef struct dc_embed_args {
    char **texts;
    size_t ntexts;
    char **files;
    size_t nfiles;
    char **sets;
    size_t nsets;
    dc_embed_reader_options in;
    dc_embed_output_options out;
    const char *config, *models_dir, *t_ref;
    uint32_t mask, batch_size, deadline_ms;
    bool no_cache, skip_errors, resume, progress, quiet, format_given;
} dc_embed_args;

/* Fills *a from argv; returns -1 to go on, else the exit code. */
static int dc_embed_parse_args(int argc, char **argv, dc_embed_args *a) {
    a->texts = calloc((size_t)argc, sizeof *a->texts);
    a->files = calloc((size_t)argc, sizeof *a->files);
    a->sets = calloc((size_t)argc, sizeof *a->sets);
    if (!a->texts || !a->files || !a->sets) {
        fprintf(stderr, "dodeca embed: out of memory\n");
        return DC_EXIT_FAILURE;
    }
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (options_done || o[0] != '-' || strcmp(o, "-") == 0) {
            a->texts[a->ntexts++] = argv[i];
            continue;
        }
        if (strcmp(o, "--") == 0) options_done = true;
        else if (strcmp(o, "-h") == 0 || strcmp(o, "--help") == 0) {
            dc_embed_usage(stdout);
            return DC_EXIT_OK;
        } else if (strcmp(o, "--allow-extra-keys") == 0) a->in.allow_extra_keys = true;
        else if (strcmp(o, "--skip-errors") == 0) a->skip_errors = true;
        else if (strcmp(o, "--per-model") == 0) a->out.per_model = true;
        else if (strcmp(o, "--sparse") == 0) a->out.sparse = true;
        else if (strcmp(o, "--colbert") == 0) a->out.colbert = true;
        else if (strcmp(o, "--routing") == 0) a->out.routing = true;
        else if (strcmp(o, "--timings") == 0) a->out.timings = true;
        else if (strcmp(o, "--resume") == 0) a->resume = true;
        else if (strcmp(o, "--no-cache") == 0) a->no_cache = true;
        else if (strcmp(o, "--progress") == 0) a->progress = true;
        else if (strcmp(o, "--quiet") == 0 || strcmp(o, "-q") == 0) a->quiet = true;
        else {
            static const char *const valued[] = {
                "-i", "--input", "-o", "--output", "--format", "--output-format", "--ids",
                "--t-ref", "--config", "--set", "--models-dir", "--models", "--batch-size",
                "--deadline-ms"};
            bool known = false;
            for (size_t k = 0; k < sizeof valued / sizeof *valued; k++)
                known = known || strcmp(o, valued[k]) == 0;
            if (!known) return dc_embed_usage_error("unknown option \"%s\"", o);
            if (i + 1 >= argc) return dc_embed_usage_error("%s needs a value", o);
            const char *v = argv[++i];
            if (strcmp(o, "-i") == 0 || strcmp(o, "--input") == 0) a->files[a->nfiles++] = argv[i];
            else if (strcmp(o, "-o") == 0 || strcmp(o, "--output") == 0) a->out.path = v;
            else if (strcmp(o, "--ids") == 0) a->out.ids_path = v;
            else if (strcmp(o, "--t-ref") == 0) a->t_ref = v;
            else if (strcmp(o, "--config") == 0) a->config = v;
            else if (strcmp(o, "--set") == 0) a->sets[a->nsets++] = argv[i];
            else if (strcmp(o, "--models-dir") == 0) a->models_dir = v;
            else if (strcmp(o, "--format") == 0) {
                if (dc_embed_format_parse(v, &a->in.format) != DC_OK)
                    return dc_embed_usage_error("--format \"%s\" is not auto, text or jsonl", v);
            } else if (strcmp(o, "--output-format") == 0) {
                a->format_given = true;
                if (dc_embed_output_format_parse(v, &a->out.format) != DC_OK)
                    return dc_embed_usage_error("--output-format \"%s\" is not jsonl, binary or npy", v);
            } else if (strcmp(o, "--models") == 0) {
                if (!dc_embed_parse_mask(v, &a->mask))
                    return dc_embed_usage_error("--models \"%s\": not a list of E1..E12 or model names", v);
            } else if (strcmp(o, "--batch-size") == 0) {
                if (!dc_embed_parse_u32(v, 1, 65536, &a->batch_size))
                    return dc_embed_usage_error("--batch-size \"%s\" is not 1..65536", v);
            } else if (!dc_embed_parse_u32(v, 1, 86400000, &a->deadline_ms)) {
                return dc_embed_usage_error("--deadline-ms \"%s\" is not 1..86400000", v);
            }
        }
    }
    if (!a->format_given && a->out.path) { /* -o x.npy means npy, -o x.dcfs a binary stream */
        size_t n = strlen(a->out.path);
        if (n > 4 && strcmp(a->out.path + n - 4, ".npy") == 0) a->out.format = DC_EMBED_OUT_NPY;
        if (n > 5 && strcmp(a->out.path + n - 5, ".dcfs") == 0) a->out.format = DC_EMBED_OUT_BINARY;
    }
    if (a->resume && (!a->out.path || strcmp(a->out.path, "-") == 0))
        return dc_embed_usage_error("--resume needs -o FILE (it reads the ids already there)");
    if (a->resume && a->out.format != DC_EMBED_OUT_JSONL)
        return dc_embed_usage_error("--resume works with --output-format jsonl only");
    if (a->out.ids_path && a->out.format != DC_EMBED_OUT_NPY)
        return dc_embed_usage_error("--ids goes with --output-format npy");
    if (a->out.format != DC_EMBED_OUT_JSONL &&
        (a->out.per_model || a->out.sparse || a->out.colbert || a->out.routing || a->out.timings))
        return dc_embed_usage_error("--per-model, --sparse, --colbert, --routing and --timings "
                                    "are JSON lines fields (the binary records carry sparse, "
                                    "ColBERT and routing)");
    if (a->out.format != DC_EMBED_OUT_JSONL && (!a->out.path || strcmp(a->out.path, "-") == 0) &&
        isatty(STDOUT_FILENO))
        return dc_embed_usage_error("refusing to write binary output to a terminal; use -o FILE");
    if (a->out.path && strcmp(a->out.path, "-") != 0) {
        for (size_t k = 0; k < a->nfiles; k++)
            if (strcmp(a->files[k], a->out.path) == 0)
                return dc_embed_usage_error("-o %s is also an input", a->out.path);
    }
    return -1;
}

static dc_status dc_embed_config(const dc_embed_args *a, dc_config *c) {
    dc_config_defaults(c);
    const char *path = a->config;
    if (!path) {
        const char *env = getenv("DODECA_CONFIG");
        if (env && *env) path = env;
    }
    dc_status st = path ? dc_config_apply_file(c, path) : DC_OK;
    if (st == DC_OK) st = dc_config_apply_env(c, environ);
    if (st == DC_OK && a->models_dir) st = dc_config_set(c, "models.models_dir", a->models_dir);
    for (size_t k = 0; st == DC_OK && k < a->nsets; k++) {
        char key[256];
        const char *eq = strchr(a->sets[k], '=');
        size_t kn = eq ? (size_t)(eq - a->sets[k]) : 0;
        if (!eq || kn == 0 || kn >= sizeof key)
            return dc_fail(DC_ERR_CONFIG, "--set \"%s\" is not KEY=VALUE", a->sets[k]);
        memcpy(key, a->sets[k], kn);
        key[kn] = '\0';
        st = dc_config_set(c, key, eq + 1);
    }
    return st == DC_OK ? dc_config_validate(c) : st;
}

/* The models asked for with --models must be able to run. */
static dc_status dc_embed_check_models(dc_pipeline *p, uint32_t mask) {
    if (!mask) return DC_OK;
    dc_pipeline_stats *s = malloc(sizeof *s);
    if (!s) return dc_fail(DC_ERR_OUT_OF_MEMORY, "stats");
    dc_status st = dc_pipeline_stats_get(p, s);
    for (int i = 0; st == DC_OK && i < DC_NUM_MODELS; i++) {
        if (!((mask >> i) & 1u) || s->model[i].state != DC_MODEL_STATE_UNAVAILABLE) continue;
        st = dc_fail(DC_ERR_MODEL_NOT_FOUND, "%s (%s) was asked for with --models but is not "
                     "available: %s", dc_model_info_get((dc_model_id)i)->label,
                     dc_model_info_get((dc_model_id)i)->name,
                     s->model[i].reason[0] ? s->model[i].reason : "no model folder");
    }
    free(s);
    return st;
}

typedef struct dc_embed_run {
    const dc_embed_args *a;
    dc_pipeline *p;
    dc_embed_writer *w;
    dc_embed_options eo;
    size_t embedded, failed, skipped;
    int rc;
    bool stop;
} dc_embed_run;

/* Records a failed item: stderr, and an {"id", "error"} line with --skip-errors; without it
 * the run stops after the rest of this chunk is written. False when the output failed. */
static bool dc_embed_failed(dc_embed_run *run, const char *id, const char *message) {
    run->failed++;
    run->rc = DC_EXIT_FAILURE;
    fprintf(stderr, "dodeca embed: %s\n", message);
    if (!run->a->skip_errors) {
        run->stop = true;
        return true;
    }
    if (dc_embed_writer_error(run->w, id, message) == DC_OK) return true;
    fprintf(stderr, "dodeca embed: %s\n", dc_error_detail());
    return false;
}

/* Embeds the items of a chunk that have no error yet and writes every item in input order. A
 * failed item is tried once more on its own: that gives its own error detail (a batch call
 * reports only the first), and a transient failure (a timeout under load) a second chance. */
static void dc_embed_chunk(dc_embed_run *run, dc_embed_item *items, size_t n, dc_input *ins,
                           dc_pipeline_result *res, dc_status *ist) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!items[i].error) ins[m++] = items[i].in;
    if (m) (void)dc_pipeline_embed_batch_ex(run->p, ins, m, &run->eo, res, ist);
    size_t k = 0; /* index into res/ist */
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        dc_embed_item *it = &items[i];
        if (!ok) {
            if (!it->error) dc_pipeline_result_free(&res[k++]);
            continue;
        }
        if (it->error) {
            ok = dc_embed_failed(run, it->id, it->error);
            continue;
        }
        dc_pipeline_result *r = &res[k];
        dc_status st = ist[k++];
        if (st != DC_OK) {
            dc_pipeline_result_free(r);
            st = dc_pipeline_embed_ex(run->p, &it->in, &run->eo, r);
        }
        if (st != DC_OK) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s:%zu: id %s: %s: %s", it->source, it->line, it->id,
                     dc_status_name(st), dc_error_detail());
            ok = dc_embed_failed(run, it->id, msg);
            continue;
        }
        dc_status ws = dc_embed_writer_result(run->w, it->id, r);
        dc_pipeline_result_free(r);
        if (ws != DC_OK) {
            fprintf(stderr, "dodeca embed: %s\n", dc_error_detail());
            ok = false;
            continue;
        }
        run->embedded++;
    }
    if (ok && dc_embed_writer_flush(run->w) != DC_OK) {
        fprintf(stderr, "dodeca embed: %s\n", dc_error_detail());
        ok = false;
    }
    if (!ok) {
        run->rc = DC_EXIT_FAILURE;
        run->stop = true;
    }
}

static double dc_embed_wall_clock(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static dc_status dc_embed_parse_t_ref(const char *s, double *out) {
    if (strcmp(s, "now") == 0) {
        *out = dc_embed_wall_clock();
        return DC_OK;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!errno && end != s && !*end) {
        *out = v;
        return dc_temporal_check_time(v, "--t-ref");
    }
    return dc_temporal_parse_rfc3339(s, out);
}

static int dc_embed_main(dc_embed_args *a) {
    bool has_t_ref = false;
    double t_ref = 0;
    if (a->t_ref) {
        if (dc_embed_parse_t_ref(a->t_ref, &t_ref) != DC_OK)
            return dc_embed_usage_error("--t-ref \"%s\": %s", a->t_ref, dc_error_detail());
        has_t_ref = true;
    }
    dc_config *cfg = malloc(sizeof *cfg);
    if (!cfg) {
        fprintf(stderr, "dodeca embed: out of memory\n");
        return DC_EXIT_FAILURE;
    }
    dc_status st = dc_embed_config(a, cfg);
    if (st != DC_OK) {
        fprintf(stderr, "dodeca embed: %s: %s\n", dc_status_name(st), dc_error_detail());
        free(cfg);
        return st == DC_ERR_IO ? DC_EXIT_FAILURE : DC_EXIT_USAGE;
    }
    uint32_t batch = a->batch_size ? a->batch_size : cfg->batch.max_batch_size;
    if (batch > cfg->batch.queue_capacity) batch = cfg->batch.queue_capacity;

    dc_embed_run run = {.a = a, .rc = DC_EXIT_OK};
    run.eo.model_mask = a->mask;
    run.eo.no_cache = a->no_cache;
    run.eo.no_aux = !a->out.sparse && !a->out.colbert && a->out.format == DC_EMBED_OUT_JSONL;
    run.eo.deadline_ms = a->deadline_ms ? a->deadline_ms
                         : cfg->pipeline.deadline_ms ? cfg->pipeline.deadline_ms
                                                     : DC_EMBED_DEFAULT_DEADLINE_MS;

    dc_embed_done *done = NULL;
    dc_embed_reader *reader = NULL;
    dc_embed_item *items = calloc(batch, sizeof *items);
    dc_input *ins = calloc(batch, sizeof *ins);
    dc_pipeline_result *res = calloc(batch, sizeof *res);
    dc_status *ist = calloc(batch, sizeof *ist);
    if (!items || !ins || !res || !ist) st = dc_fail(DC_ERR_OUT_OF_MEMORY, "%u items", batch);
    if (st == DC_OK && a->resume) {
        dc_embed_resume_report rep;
        st = dc_embed_resume_scan(a->out.path, &done, &rep);
        if (st == DC_OK && !a->quiet && (rep.done || rep.cut_tail || rep.errors_removed))
            fprintf(stderr,
                    "dodeca embed: resuming %s: %zu items done%s, %zu error lines dropped\n",
                    a->out.path, rep.done,
                    rep.cut_tail ? ", a partial last line cut off" : "", rep.errors_removed);
    }
    if (st == DC_OK)
        st = dc_embed_reader_open(a->texts, a->ntexts, a->files, a->nfiles, &a->in, &reader);
    if (st == DC_OK) {
        dc_pipeline_options po;
        dc_pipeline_options_default(&po);
        po.warmup = false; /* a one-off job: the first batch warms what it uses */
        st = dc_pipeline_open_ex(cfg, &po, &run.p);
    }
    if (st == DC_OK) st = dc_embed_check_models(run.p, a->mask);
    if (st == DC_OK) {
        a->out.append = a->resume;
        st = dc_embed_writer_open(&a->out, &run.w);
    }
    free(cfg);
    if (st != DC_OK) {
        fprintf(stderr, "dodeca embed: %s: %s\n", dc_status_name(st), dc_error_detail());
        run.rc = DC_EXIT_FAILURE;
        run.stop = true;
    }

    dc_embed_progress prog;
    bool tty = isatty(STDERR_FILENO) != 0;
    dc_embed_progress_init(&prog, !a->quiet && (a->progress || (tty && a->nfiles > 0)), tty,
                           reader ? dc_embed_reader_bytes_total(reader) : 0);
    dc_embed_catch_signals();
    if (run.p && a->ntexts == 0 && a->nfiles == 0 && isatty(STDIN_FILENO) && !a->quiet)
        fprintf(stderr, "dodeca embed: reading items from the terminal, one a line; end with "
                        "Ctrl-D\n");
    bool eof = false;
    while (!run.stop && !eof) {
        size_t n = 0;
        while (n < batch && !eof && !run.stop) {
            dc_embed_item *it = &items[n];
            memset(it, 0, sizeof *it);
            dc_status rs = dc_embed_reader_next(reader, it, &eof);
            if (rs != DC_OK && eof) { /* I/O error */
                fprintf(stderr, "dodeca embed: %s: %s\n", dc_status_name(rs), dc_error_detail());
                run.rc = DC_EXIT_FAILURE;
                run.stop = true;
            } else if (rs != DC_OK) { /* a bad line: reported in order with its chunk */
                char msg[1024];
                snprintf(msg, sizeof msg, "%s:%zu: %s: %s", it->source, it->line,
                         dc_status_name(rs), dc_error_detail());
                size_t len = strlen(msg);
                if ((it->error = malloc(len + 1)) != NULL) memcpy(it->error, msg, len + 1);
                if (!it->error || !a->skip_errors) run.stop = true; /* read no further */
                if (it->error) {
                    n++;
                    continue;
                }
            } else if (!eof && done && dc_embed_done_has(done, it->id)) {
                run.skipped++;
            } else if (!eof) {
                if (has_t_ref && !it->in.has_t_ref) {
                    it->in.has_t_ref = true;
                    it->in.t_ref = t_ref;
                }
                n++;
                continue; /* keep it */
            }
            dc_embed_item_free(it);
        }
        if (n) dc_embed_chunk(&run, items, n, ins, res, ist);
        for (size_t i = 0; i < n; i++) dc_embed_item_free(&items[i]);
        dc_embed_progress_update(&prog, run.embedded, run.failed, run.skipped,
                                 reader ? dc_embed_reader_bytes_read(reader) : 0, false);
        if (dc_embed_interrupted) {
            fprintf(stderr, "%sdodeca embed: interrupted; the output holds every item finished "
                            "so far (--resume goes on)\n", prog.drawn && prog.tty ? "\n" : "");
            run.rc = DC_EXIT_INTERRUPTED;
            break;
        }
    }
    if (prog.drawn || (prog.on && run.embedded))
        dc_embed_progress_update(&prog, run.embedded, run.failed, run.skipped,
                                 reader ? dc_embed_reader_bytes_read(reader) : 0, true);
    if (run.w && dc_embed_writer_close(run.w) != DC_OK) {
        fprintf(stderr, "dodeca embed: %s\n", dc_error_detail());
        if (run.rc == DC_EXIT_OK) run.rc = DC_EXIT_FAILURE;
    }
    dc_pipeline_close(run.p);
    dc_embed_reader_close(reader);
    dc_embed_done_free(done);
    free(items);
    free(ins);
    free(res);
    free(ist);
    if (!a->quiet && (run.failed || run.skipped || prog.on)) {
        fprintf(stderr, "dodeca embed: %zu embedded, %zu failed", run.embedded, run.failed);
        if (a->resume) fprintf(stderr, ", %zu already in %s", run.skipped, a->out.path);
        fprintf(stderr, "\n");
    }
    return run.rc;
}

int dc_cmd_embed(int argc, char **argv) {
    dc_embed_args a;
    memset(&a, 0, sizeof a);
    int rc = dc_embed_parse_args(argc, argv, &a);
    if (rc < 0) rc = dc_embed_main(&a);
    free(a.texts);
    free(a.files);
    free(a.sets);
    return rc;
}

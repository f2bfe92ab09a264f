/* `dodeca pull`: downloads the pretrained models' files from the Hugging Face hub into the
 * huggingface_hub cache, or checks what the cache holds (--check, --offline). Several models
 * download at once (--jobs), one file after the other within each. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "core/error.h"
#include "dodeca/dodeca.h"
#include "io/hub.h"
#include "io/hub_model.h"
#include "io/manifest.h"

static void usage(FILE *out) {
    fputs("usage: dodeca pull [MODEL...|--all] [options]\n"
          "  MODEL: E1, semantic, e5-large-v2 or intfloat/e5-large-v2 (default: all pretrained)\n"
          "options:\n"
          "  --cache-dir DIR     hub cache (default: HF_HUB_CACHE, HF_HOME/hub or\n"
          "                      ~/.cache/huggingface/hub)\n"
          "  --revision R        branch, tag or commit instead of the manifest's pin\n"
          "  --offline           no network: report what the cache holds (also HF_HUB_OFFLINE=1)\n"
          "  --check             verify the cache: ready, missing or corrupt (size, sha256);\n"
          "                      exit 0 only when every model asked for is ready\n"
          "  --list              print the manifest (repos, revisions, files) and exit\n"
          "  --quiet             no progress, only errors and the summary\n"
          "  --config FILE       read models.hub_endpoint, hub_token, hub_cache_dir from FILE\n"
          "  --endpoint URL      hub address (default: HF_ENDPOINT or https://huggingface.co)\n"
          "  --retries N         attempts after the first on network errors and 5xx (default 5)\n"
          "  --retry-delay-ms MS first backoff, doubled each retry (default 1000)\n"
          "  --timeout S         connect timeout and stall limit in seconds (default 30/60)\n"
          "  --jobs N            models downloaded at once (default 4; 1 = one after the other)\n"
          "  HF_TOKEN authenticates (gated or private repos).\n",
          out);
}

/* ---- progress ---- */

/* Lines on stdout and stderr, whole, when several models download at once. */
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;

typedef struct progress {
    bool tty, quiet;
    struct timespec start, last;
    uint64_t start_bytes, shown;
    bool active;
    const char *file;
} progress;

static double secs_since(const struct timespec *a) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - a->tv_sec) + (double)(now.tv_nsec - a->tv_nsec) / 1e9;
}

static void human(uint64_t b, char *out, size_t cap) {
    const char *u[] = {"B", "kB", "MB", "GB", "TB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1000.0 && i < 4) v /= 1000.0, i++;
    snprintf(out, cap, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

static void on_progress(void *user, const char *repo, const char *file, uint64_t done,
                        uint64_t total) {
    progress *p = user;
    if (p->quiet) return;
    if (!p->active || p->file != file) {
        p->active = true;
        p->file = file;
        clock_gettime(CLOCK_MONOTONIC, &p->start);
        p->last.tv_sec = 0;
        p->start_bytes = done;
        p->shown = UINT64_MAX;
    }
    if (!p->tty) {
        /* logs: one line per file once it is complete */
        if (total && done >= total && p->shown != done) {
            char t[32];
            human(total, t, sizeof t);
            pthread_mutex_lock(&out_mu);
            fprintf(stderr, "  %s %s (%s)\n", repo, file, t);
            pthread_mutex_unlock(&out_mu);
            p->shown = done;
        }
        return;
    }
    if (done == p->shown || (p->last.tv_sec && secs_since(&p->last) < 0.1 && done < total)) return;
    p->shown = done;
    clock_gettime(CLOCK_MONOTONIC, &p->last);
    double el = secs_since(&p->start);
    double rate = el > 0.05 ? (double)(done - p->start_bytes) / el : 0.0;
    char d[32], t[32], r[32], eta[32] = "--:--";
    human(done, d, sizeof d);
    human(total, t, sizeof t);
    human((uint64_t)rate, r, sizeof r);
    if (rate > 0 && total > done) {
        unsigned long s = (unsigned long)((double)(total - done) / rate);
        snprintf(eta, sizeof eta, "%02lu:%02lu", s / 60, s % 60);
    }
    int width = 24, fill = total ? (int)((double)done / (double)total * width) : 0;
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\r  %-28.28s [%s] %9s / %-9s %9s/s ETA %s ", file, bar, d, t, r, eta);
    fflush(stderr);
}

static void progress_end(progress *p) {
    if (p->active && p->tty && !p->quiet) fprintf(stderr, "\r\033[K");
    p->active = false;
    p->file = NULL;
}

/* ---- one model ---- */

typedef struct pull_args {
    const char *revision; /* NULL: the manifest's */
    bool check, quiet;
    uint32_t jobs;        /* models at once */
} pull_args;

static void print_report(const dc_hub_model_report *r, bool verified, double secs) {
    const dc_model_info *info = dc_model_info_get(r->id);
    const dc_model_manifest *mf = dc_manifest_get(r->id);
    char size[32], got[32];
    human(r->bytes, size, sizeof size);
    human(r->fetched, got, sizeof got);
    pthread_mutex_lock(&out_mu);
    printf("%-4s %-18s %s@%s  ", info->label, info->name, mf->repo, r->revision);
    if (r->corrupt[0]) printf("corrupt: %s\n", r->corrupt);
    else if (!r->ready) printf("missing: %s\n", r->missing);
    else if (secs < 0) printf("ready (%u files, %s%s)\n", r->files, size, verified ? ", verified" : "");
    else
        printf("ready (%u files, %s; %s downloaded in %.1f s; commit %.12s)\n", r->files, size, got,
               secs, r->commit);
    fflush(stdout); /* in order with the progress lines on stderr */
    pthread_mutex_unlock(&out_mu);
}

static void print_error(void) {
    pthread_mutex_lock(&out_mu);
    fprintf(stderr, "dodeca pull: %s\n", dc_error_detail());
    pthread_mutex_unlock(&out_mu);
}

/* --check and --offline: what the cache holds. */
static bool report_local(const dc_hub_options *o, dc_model_id id, const char *rev, bool verify) {
    dc_hub_model_report r;
    if (dc_hub_check_model(o->cache_dir, id, rev, verify, &r) != DC_OK) {
        print_error();
        return false;
    }
    print_report(&r, verify, -1.0);
    return r.ready;
}

static bool pull_model(const dc_hub_options *o, dc_model_id id, const char *rev, progress *pg) {
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    dc_hub_model_report r;
    dc_status st = dc_hub_pull_model(o, id, rev, &r);
    progress_end(pg);
    if (st) {
        print_error();
        return false;
    }
    print_report(&r, false, secs_since(&t0));
    return true;
}

/* ---- the models, some at once ---- */

typedef struct pull_queue {
    const dc_hub_options *o;
    const pull_args *pa;
    const dc_model_id *ids;
    int n, next, ok, bad;
    bool tty;
    pthread_mutex_t mu;
} pull_queue;

/* Takes models off the queue until it is empty; each worker has its own progress state. */
static void *pull_worker(void *arg) {
    pull_queue *q = arg;
    dc_hub_options o = *q->o;
    progress pg = {.tty = q->tty, .quiet = q->pa->quiet};
    o.progress = on_progress;
    o.progress_user = &pg;
    for (;;) {
        pthread_mutex_lock(&q->mu);
        const int i = q->next++;
        pthread_mutex_unlock(&q->mu);
        if (i >= q->n) break;
        const dc_model_id id = q->ids[i];
        const char *rev = q->pa->revision;
        const bool good = q->pa->check ? report_local(&o, id, rev, true)
                          : o.offline  ? report_local(&o, id, rev, false)
                                       : pull_model(&o, id, rev, &pg);
        pthread_mutex_lock(&q->mu);
        good ? q->ok++ : q->bad++;
        pthread_mutex_unlock(&q->mu);
    }
    return NULL;
}

/* Pulls (or checks) the n models with up to jobs workers; one alone runs here, with the
 * live progress bar on a terminal. */
static void pull_all(pull_queue *q, uint32_t jobs) {
    pthread_mutex_init(&q->mu, NULL);
    uint32_t workers = jobs < (uint32_t)q->n ? jobs : (uint32_t)q->n;
    if (workers <= 1) {
        pull_worker(q);
    } else {
        q->tty = false; /* one line per finished file: several bars would overwrite each other */
        pthread_t t[16];
        uint32_t started = 0;
        while (started < workers && pthread_create(&t[started], NULL, pull_worker, q) == 0)
            started++;
        if (!started) pull_worker(q); /* no thread: this one does it all */
        for (uint32_t i = 0; i < started; i++) pthread_join(t[i], NULL);
    }
    pthread_mutex_destroy(&q->mu);
}

/* ---- arguments ---- */

static bool parse_u32(const char *s, uint32_t *out) {
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (!s[0] || *end || v > 0xFFFFFFFFul) return false;
    *out = (uint32_t)v;
    return true;
}

static bool model_arg(const char *a, dc_model_id *id) {
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        const dc_model_info *m = dc_model_info_get((dc_model_id)i);
        if (m->repo && !strcmp(a, m->repo)) {
            *id = (dc_model_id)i;
            return true;
        }
    }
    return dc_model_id_parse(a, id) == DC_OK;
}

static void print_list(void) {
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        const dc_model_manifest *mf = dc_manifest_get((dc_model_id)i);
        const dc_model_info *info = dc_model_info_get((dc_model_id)i);
        if (!mf) {
            printf("%-4s %-18s computed, nothing to download\n", info->label, info->name);
            continue;
        }
        char sz[32];
        human(mf->approx_bytes, sz, sizeof sz);
        printf("%-4s %-18s %s@%s  ~%s  license: %s\n", info->label, info->name, mf->repo,
               mf->revision, sz, mf->license);
        printf("     revision: %s\n     files:", mf->revision_note);
        for (size_t k = 0; k < mf->nfiles; k++)
            printf(" %s%s", mf->files[k].name,
                   mf->files[k].need == DC_MANIFEST_OPTIONAL  ? "?"
                   : mf->files[k].need == DC_MANIFEST_WEIGHTS ? "*"
                                                              : "");
        printf("\n");
    }
    printf("(? optional, * weights: the first one the repo has)\n");
}

int dc_cmd_pull(int argc, char **argv) {
    dc_hub_options o;
    dc_hub_options_init(&o);
    pull_args pa = {.jobs = 4};
    bool want[DC_NUM_MODELS] = {false}, any = false, all = false, list = false;
    const char *config = NULL, *cache = NULL, *endpoint = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = !strcmp(a, "--cache-dir") || !strcmp(a, "--revision") ||
                     !strcmp(a, "--config") || !strcmp(a, "--endpoint") ||
                     !strcmp(a, "--retries") || !strcmp(a, "--retry-delay-ms") ||
                     !strcmp(a, "--timeout") || !strcmp(a, "--jobs");
        if (takes && !v) {
            fprintf(stderr, "dodeca pull: %s needs a value\n", a);
            return DC_EXIT_USAGE;
        }
        uint32_t n = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return DC_EXIT_OK;
        } else if (!strcmp(a, "--all")) {
            all = true;
        } else if (!strcmp(a, "--offline")) {
            o.offline = true;
        } else if (!strcmp(a, "--check")) {
            pa.check = true;
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            pa.quiet = true;
        } else if (!strcmp(a, "--list")) {
            list = true;
        } else if (!strcmp(a, "--cache-dir")) {
            cache = argv[++i];
        } else if (!strcmp(a, "--revision")) {
            pa.revision = argv[++i];
        } else if (!strcmp(a, "--config")) {
            config = argv[++i];
        } else if (!strcmp(a, "--endpoint")) {
            endpoint = argv[++i];
        } else if (!strcmp(a, "--jobs")) {
            if (!parse_u32(v, &n) || n < 1 || n > 16) {
                fprintf(stderr, "dodeca pull: --jobs \"%s\" is not a number from 1 to 16\n", v);
                return DC_EXIT_USAGE;
            }
            pa.jobs = n;
            i++;
        } else if (!strcmp(a, "--retries") || !strcmp(a, "--retry-delay-ms") ||
                   !strcmp(a, "--timeout")) {
            if (!parse_u32(v, &n) || (!strcmp(a, "--timeout") && n == 0)) {
                fprintf(stderr, "dodeca pull: %s \"%s\" is not a valid number\n", a, v);
                return DC_EXIT_USAGE;
            }
            if (!strcmp(a, "--retries")) o.retries = n;
            else if (!strcmp(a, "--retry-delay-ms")) o.retry_delay_ms = n;
            else o.connect_timeout_s = o.stall_timeout_s = n;
            i++;
        } else if (a[0] == '-') {
            fprintf(stderr, "dodeca pull: unknown option %s\n", a);
            usage(stderr);
            return DC_EXIT_USAGE;
        } else {
            dc_model_id id;
            if (!model_arg(a, &id)) {
                fprintf(stderr, "dodeca pull: unknown model \"%s\" (see dodeca models)\n", a);
                return DC_EXIT_USAGE;
            }
            want[id] = any = true;
        }
    }
    if (list) {
        print_list();
        return DC_EXIT_OK;
    }
    if (all && any) {
        fprintf(stderr, "dodeca pull: give model names or --all, not both\n");
        return DC_EXIT_USAGE;
    }
    if (config) {
        dc_config cfg;
        if (dc_config_load_file(config, &cfg) != DC_OK) {
            fprintf(stderr, "dodeca pull: %s\n", dc_error_detail());
            return DC_EXIT_FAILURE;
        }
        snprintf(o.endpoint, sizeof o.endpoint, "%s", cfg.models.hub_endpoint);
        snprintf(o.token, sizeof o.token, "%s", cfg.models.hub_token);
        snprintf(o.cache_dir, sizeof o.cache_dir, "%s", cfg.models.hub_cache_dir);
    }
    if (cache) snprintf(o.cache_dir, sizeof o.cache_dir, "%s", cache);
    if (endpoint) snprintf(o.endpoint, sizeof o.endpoint, "%s", endpoint);
    if (dc_hub_options_resolve(&o) != DC_OK) {
        fprintf(stderr, "dodeca pull: %s\n", dc_error_detail());
        return DC_EXIT_FAILURE;
    }
    dc_model_id ids[DC_NUM_MODELS];
    int n_ids = 0;
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        if (any && !want[i]) continue;
        if (!dc_manifest_get((dc_model_id)i)) {
            if (any) printf("%-4s %-18s computed, nothing to download\n",
                            dc_model_info_get((dc_model_id)i)->label,
                            dc_model_info_get((dc_model_id)i)->name);
            continue;
        }
        ids[n_ids++] = (dc_model_id)i;
    }
    fflush(stdout);
    pull_queue q = {.o = &o, .pa = &pa, .ids = ids, .n = n_ids, .tty = isatty(STDERR_FILENO) != 0};
    pull_all(&q, pa.check || o.offline ? 1 : pa.jobs);
    const int ok = q.ok, bad = q.bad;
    if (!pa.quiet && !pa.check && ok > 0)
        fprintf(stderr, "cache: %s (set models.models_dir to this folder to use it)\n",
                o.cache_dir);
    if (bad) {
        fprintf(stderr, "dodeca pull: %d of %d models %s\n", bad, ok + bad,
                pa.check || o.offline ? "not ready" : "failed");
        return DC_EXIT_FAILURE;
    }
    return DC_EXIT_OK;
}

/* `dodeca serve`: opens the pipeline and serves the HTTP API until SIGINT or SIGTERM, then
 * stops accepting, lets the requests in flight finish (up to --drain-timeout), and closes. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include "cli/commands.h"
#include "dodeca/dodeca.h"
#include "server/server.h"

extern char **environ; /* POSIX; not declared by <unistd.h> without _GNU_SOURCE */

static void serve_usage(FILE *out) {
    fputs("usage: dodeca serve [options]\n"
          "  Serves the HTTP API (docs/http-api.md): POST /v1/embeddings (OpenAI), /embed,\n"
          "  /embed_sparse, /embed_multi, /similarity; GET /health, /info, /metrics.\n"
          "  Settings: defaults, then --config FILE (default $DODECA_CONFIG), then\n"
          "  DODECA_<SECTION>_<KEY> variables (the API key: DODECA_SERVER_API_KEY), then --set.\n"
          "options:\n"
          "  --config FILE          configuration file (TOML)\n"
          "  --set KEY=VALUE        one setting, e.g. --set models.models_dir=/models\n"
          "  --host ADDR            listen address (server.host, default 127.0.0.1)\n"
          "  --port N               listen port (server.port, default 8080); 0 picks a free one\n"
          "  --max-concurrent N     requests inside the pipeline at once; more get 429\n"
          "                         (default server.threads, or 64 when that is 0)\n"
          "  --max-connections N    open connections, one thread each (default 1024)\n"
          "  --idle-timeout S       close a connection silent this long (default 60)\n"
          "  --drain-timeout S      on SIGINT/SIGTERM, wait this long for requests in flight\n"
          "                         (default 30)\n"
          "  --no-warmup            skip the warm-up at start\n"
          "  --access-log           one line per request on stderr\n"
          "  The bound address is printed on stderr: \"dodeca serve: listening on http://H:P\".\n",
          out);
}

static int serve_fail(const char *what) {
    fprintf(stderr, "dodeca serve: %s%s%s\n", what ? what : "", what ? ": " : "", dc_error_detail());
    return DC_EXIT_FAILURE;
}

static bool parse_u32(const char *s, uint32_t max, uint32_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || !s[0] || *end || s[0] == '-' || v > max) return false;
    *out = (uint32_t)v;
    return true;
}

int dc_cmd_serve(int argc, char **argv) {
    const char *file = NULL, *host = NULL;
    dc_server_options so;
    dc_server_options_default(&so);
    uint32_t drain_s = 30, v = 0;
    bool warmup = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            serve_usage(stdout);
            return DC_EXIT_OK;
        } else if (!strcmp(a, "--access-log")) {
            so.access_log = true;
        } else if (!strcmp(a, "--no-warmup")) {
            warmup = false;
        } else if (!has) {
            fprintf(stderr, "dodeca serve: %s needs a value\n\n", a);
            serve_usage(stderr);
            return DC_EXIT_USAGE;
        } else if (!strcmp(a, "--config")) {
            file = argv[++i];
        } else if (!strcmp(a, "--set")) {
            if (!strchr(argv[++i], '=')) {
                fprintf(stderr, "dodeca serve: --set takes KEY=VALUE\n");
                return DC_EXIT_USAGE;
            }
        } else if (!strcmp(a, "--host")) {
            host = argv[++i];
        } else if (!strcmp(a, "--port") && parse_u32(argv[i + 1], 65535, &v)) {
            so.port = (int32_t)v;
            i++;
        } else if (!strcmp(a, "--max-concurrent") && parse_u32(argv[i + 1], 1000000, &v) && v) {
            so.max_concurrent = v;
            i++;
        } else if (!strcmp(a, "--max-connections") && parse_u32(argv[i + 1], 1000000, &v) && v) {
            so.max_connections = v;
            i++;
        } else if (!strcmp(a, "--idle-timeout") && parse_u32(argv[i + 1], 86400, &v) && v) {
            so.idle_timeout_s = v;
            i++;
        } else if (!strcmp(a, "--drain-timeout") && parse_u32(argv[i + 1], 86400, &v)) {
            drain_s = v;
            i++;
        } else {
            fprintf(stderr, "dodeca serve: bad option or value: %s %s\n\n", a, argv[i + 1]);
            serve_usage(stderr);
            return DC_EXIT_USAGE;
        }
    }
    if (!file) {
        const char *env = getenv("DODECA_CONFIG");
        if (env && *env) file = env;
    }
    dc_config *cfg = malloc(sizeof *cfg);
    if (!cfg) return serve_fail("out of memory");
    dc_config_defaults(cfg);
    int rc = DC_EXIT_OK;
    if (file && dc_config_apply_file(cfg, file)) rc = serve_fail(NULL);
    if (!rc && dc_config_apply_env(cfg, environ)) rc = serve_fail(NULL);
    for (int i = 1; !rc && i < argc; i++) {
        if (strcmp(argv[i], "--set") != 0) continue;
        char *arg = argv[++i];
        char *eq = strchr(arg, '=');
        *eq = '\0'; /* split in place: argv strings are writable */
        dc_status st = dc_config_set(cfg, arg, eq + 1);
        *eq = '=';
        if (st) rc = serve_fail("--set");
    }
    if (!rc && host) {
        if (dc_config_set(cfg, "server.host", host)) rc = serve_fail("--host");
    }
    if (!rc && dc_config_validate(cfg)) rc = serve_fail(NULL);
    if (rc) {
        free(cfg);
        return rc;
    }

    /* Signals go to this thread only (sigwait below); every thread started from here on,
     * the pipeline's and libmicrohttpd's, inherits the blocked mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    dc_pipeline_options po;
    dc_pipeline_options_default(&po);
    po.warmup = warmup;
    dc_pipeline *p = NULL;
    if (dc_pipeline_open_ex(cfg, &po, &p)) {
        rc = serve_fail("opening the pipeline");
        free(cfg);
        return rc;
    }
    dc_server *srv = NULL;
    if (dc_server_start(p, cfg, &so, &srv)) {
        rc = serve_fail(NULL);
        dc_pipeline_close(p);
        free(cfg);
        return rc;
    }
    const char *h = dc_server_host(srv);
    bool v6 = strchr(h, ':') != NULL;
    fprintf(stderr, "dodeca serve: listening on http://%s%s%s:%u\n", v6 ? "[" : "", h,
            v6 ? "]" : "", (unsigned)dc_server_port(srv));
    fflush(stderr);

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {
    }
    fprintf(stderr, "dodeca serve: %s: finishing requests in flight (up to %us)\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM", (unsigned)drain_s);
    dc_server_begin_shutdown(srv);
    if (!dc_server_drain(srv, drain_s * 1000u))
        fprintf(stderr, "dodeca serve: requests still running after %us; closing them\n",
                (unsigned)drain_s);
    dc_server_stop(srv);
    dc_pipeline_close(p);
    free(cfg);
    fprintf(stderr, "dodeca serve: stopped\n");
    return DC_EXIT_OK;
}

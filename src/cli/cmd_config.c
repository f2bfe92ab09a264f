/* `dodeca config`: validate a configuration file, or print the effective configuration. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "dodeca/dodeca.h"

extern char **environ; /* POSIX; not declared by <unistd.h> without _GNU_SOURCE */

static void usage(FILE *out) {
    fprintf(out, "usage: dodeca config check FILE\n"
                 "       dodeca config show [FILE] [--set SECTION.KEY=VALUE]...\n"
                 "\n"
                 "  check  validate FILE (defaults + FILE); prints \"FILE: ok\"\n"
                 "  show   print the effective configuration as TOML: defaults, then FILE\n"
                 "         (default: $DODECA_CONFIG when set), then DODECA_<SECTION>_<KEY>\n"
                 "         environment variables, then each --set\n");
}

static int failed(const char *what) {
    fprintf(stderr, "dodeca: config: %s%s%s\n", what ? what : "", what ? ": " : "",
            dc_error_detail());
    return DC_EXIT_FAILURE;
}

static int cmd_check(int argc, char **argv) {
    if (argc != 2 || argv[1][0] == '-') {
        usage(stderr);
        return DC_EXIT_USAGE;
    }
    dc_config *c = malloc(sizeof *c);
    if (!c) {
        fprintf(stderr, "dodeca: config: out of memory\n");
        return DC_EXIT_FAILURE;
    }
    dc_status st = dc_config_load_file(argv[1], c);
    free(c);
    if (st) return failed(NULL);
    printf("%s: ok\n", argv[1]);
    return DC_EXIT_OK;
}

static int cmd_show(int argc, char **argv) {
    const char *file = NULL;
    /* First pass: arguments only, so usage errors come before any file is read. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--set") == 0) {
            if (i + 1 >= argc || !strchr(argv[i + 1], '=')) {
                fprintf(stderr, "dodeca: config: --set needs SECTION.KEY=VALUE\n");
                usage(stderr);
                return DC_EXIT_USAGE;
            }
            i++;
        } else if (argv[i][0] == '-' || file) {
            fprintf(stderr, "dodeca: config: unexpected argument \"%s\"\n", argv[i]);
            usage(stderr);
            return DC_EXIT_USAGE;
        } else {
            file = argv[i];
        }
    }
    if (!file) {
        const char *env = getenv("DODECA_CONFIG");
        if (env && *env) file = env;
    }
    dc_config *c = malloc(sizeof *c);
    if (!c) {
        fprintf(stderr, "dodeca: config: out of memory\n");
        return DC_EXIT_FAILURE;
    }
    dc_config_defaults(c);
    int rc = DC_EXIT_OK;
    if (file && dc_config_apply_file(c, file)) rc = failed(NULL);
    if (!rc && dc_config_apply_env(c, environ)) rc = failed(NULL);
    for (int i = 1; !rc && i < argc; i++) {
        if (strcmp(argv[i], "--set") != 0) continue;
        char *arg = argv[++i];
        char *eq = strchr(arg, '=');
        *eq = '\0'; /* split in place: argv strings are writable */
        dc_status st = dc_config_set(c, arg, eq + 1);
        *eq = '=';
        if (st) rc = failed("--set");
    }
    if (!rc && dc_config_validate(c)) rc = failed(NULL);
    if (!rc && (dc_config_write_toml(c, stdout) || fflush(stdout) != 0))
        rc = failed("writing the configuration");
    free(c);
    return rc;
}

int dc_cmd_config(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return DC_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        usage(stdout);
        return DC_EXIT_OK;
    }
    if (strcmp(sub, "check") == 0) return cmd_check(argc - 1, argv + 1);
    if (strcmp(sub, "show") == 0) return cmd_show(argc - 1, argv + 1);
    fprintf(stderr, "dodeca: config: unknown subcommand \"%s\"\n", sub);
    usage(stderr);
    return DC_EXIT_USAGE;
}

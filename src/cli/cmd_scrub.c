/* `dodeca scrub`: the PII and secret scrubber on its own (docs/privacy.md).
 *
 *   dodeca scrub [options] [FILE]          text in, scrubbed text out (stdin/stdout by default)
 *   dodeca scrub --jsonl [options] [FILE]  JSON lines in; each line's "text" field scrubbed and a
 *                                          "pii" array of detections added
 *
 * Settings come from the configuration ([pii]: defaults, then --config FILE or $DODECA_CONFIG,
 * then DODECA_PII_* variables), then the flags. Nothing the scrubber found is ever printed in
 * the clear: detections carry category, byte span and confidence, and a line that cannot be
 * scrubbed is answered with an error record that does not repeat it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "dodeca/dodeca.h"
#include "dodeca/privacy.h"
#include "text/jsonl.h"


extern char **environ; /* POSIX; not declared by <unistd.h> without _GNU_SOURCE */

static void scrub_usage(FILE *out) {
    fprintf(out,
            "usage: dodeca scrub [--jsonl [--field NAME]] [--mode MODE] [--sensitivity LEVEL]\n"
            "                    [--key-file PATH] [--pattern NAME=REGEX]... [--config FILE]\n"
            "                    [--report PATH] [FILE]\n"
            "\n"
            "Finds personal data and secrets and rewrites them before anything is embedded.\n"
            "Reads FILE (default stdin) and writes to stdout.\n"
            "\n"
            "  --jsonl              JSON lines in and out: the field is scrubbed in place and\n"
            "                       \"pii\": [{\"category\",\"start\",\"end\",\"confidence\"}] is "
            "added\n"
            "                       (byte offsets into the field's original text)\n"
            "  --field NAME         the field --jsonl scrubs (default \"text\")\n"
            "  --mode MODE          placeholder (<EMAIL>, default), redact ([REDACTED]), mask\n"
            "                       (keep the last 4), hash (<EMAIL_3fa2c1d94b0e>, keyed) or off\n"
            "                       (report only)\n"
            "  --sensitivity LEVEL  permissive, moderate (default) or strict\n"
            "  --key-file PATH      the HMAC key of --mode hash (or pii.hmac_key[_file], or\n"
            "                       DODECA_PII_HMAC_KEY)\n"
            "  --pattern NAME=REGEX an extra recognizer (PCRE2); may be repeated\n"
            "  --config FILE        read [pii] from FILE (default $DODECA_CONFIG)\n"
            "  --report PATH        plain text: write the detections as one JSON object to PATH\n"
            "                       (\"-\" for stderr)\n");
}

/* Writes s[0..n) as a JSON string (UTF-8 passes through; the input was validated). */
static void put_json(FILE *out, const char *s, size_t n) {
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
        else if (c == '\n') fputs("\\n", out);
        else if (c == '\t') fputs("\\t", out);
        else if (c == '\r') fputs("\\r", out);
        else if (c < 0x20 || c == 0x7f) fprintf(out, "\\u%04x", c);
        else fputc(c, out);
    }
    fputc('"', out);
}

static void put_detections(FILE *out, const dc_scrub_result *r) {
    fputc('[', out);
    for (size_t k = 0; k < r->count; k++) {
        const dc_pii_detection *d = &r->detections[k];
        fprintf(out, "%s{\"category\":\"%s\",\"start\":%zu,\"end\":%zu,\"confidence\":%.2f}",
                k ? "," : "", d->label, d->start, d->end, (double)d->confidence);
    }
    fputc(']', out);
}

static char *read_all(FILE *in, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, in);
        n += got;
        if (got == 0) break;
    }
    if (buf && ferror(in)) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static int scrub_text_stream(const dc_scrubber *sc, FILE *in, const char *report) {
    size_t len = 0;
    char *text = read_all(in, &len);
    if (!text) {
        fprintf(stderr, "dodeca scrub: cannot read the input: %s\n", strerror(errno));
        return DC_EXIT_FAILURE;
    }
    dc_scrub_result r;
    dc_status st = dc_scrubber_scrub(sc, text, len, &r);
    free(text);
    if (st) {
        fprintf(stderr, "dodeca scrub: %s: %s\n", dc_status_str(st), dc_error_detail());
        return DC_EXIT_FAILURE;
    }
    fwrite(r.text, 1, r.len, stdout);
    int rc = DC_EXIT_OK;
    if (report) {
        FILE *rep = strcmp(report, "-") == 0 ? stderr : fopen(report, "w");
        char *audit = NULL;
        if (!rep || dc_scrub_result_audit_json(&r, &audit, NULL)) {
            fprintf(stderr, "dodeca scrub: cannot write the report %s\n", report);
            rc = DC_EXIT_FAILURE;
        } else {
            fprintf(rep, "%s\n", audit);
        }
        free(audit);
        if (rep && rep != stderr && fclose(rep) != 0) rc = DC_EXIT_FAILURE;
    }
    dc_scrub_result_free(&r);
    if (fflush(stdout) != 0) rc = DC_EXIT_FAILURE;
    return rc;
}

static int scrub_jsonl(const dc_scrubber *sc, FILE *in, const char *field) {
    char *line = NULL;
    size_t cap = 0, lineno = 0, failures = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, in)) > 0) {
        lineno++;
        size_t len = (size_t)got;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' ' ||
                       line[len - 1] == '\t'))
            len--;
        size_t k = 0;
        while (k < len && (line[k] == ' ' || line[k] == '\t')) k++;
        if (k == len) continue;
        const char *raw = NULL;
        size_t rawlen = 0;
        char *text = NULL;
        size_t tlen = 0;
        dc_scrub_result r = {0};
        dc_status st = dc_jsonl_field(line, len, field, &raw, &rawlen);
        if (!st && (rawlen < 2 || raw[0] != '"'))
            st = DC_ERR_SERIALIZATION;
        if (!st) st = dc_json_decode_string(raw, rawlen, &text, &tlen);
        if (!st) st = dc_scrubber_scrub(sc, text, tlen, &r);
        free(text);
        if (st) {
            /* The record is not repeated: it may hold exactly what had to be removed. */
            failures++;
            const char *why = st == DC_ERR_NOT_FOUND         ? "no such field"
                              : st == DC_ERR_SERIALIZATION ? "not a JSON object with a string field"
                                                           : dc_error_detail();
            fprintf(stderr, "dodeca scrub: line %zu: %s\n", lineno, why);
            fprintf(stdout, "{\"line\":%zu,\"error\":", lineno);
            put_json(stdout, why, strlen(why));
            fputs("}\n", stdout);
            continue;
        }
        /* the record with the field's value replaced, and "pii" added before the last '}' */
        size_t close = len;
        while (close > 0 && line[close - 1] != '}') close--;
        size_t vstart = (size_t)(raw - line), vend = vstart + rawlen;
        if (close == 0 || close - 1 < vend) { /* dc_jsonl_field accepted it: cannot happen */
            dc_scrub_result_free(&r);
            failures++;
            fprintf(stdout, "{\"line\":%zu,\"error\":\"not a JSON object\"}\n", lineno);
            continue;
        }
        fwrite(line, 1, vstart, stdout);
        put_json(stdout, r.text, r.len);
        fwrite(line + vend, 1, close - 1 - vend, stdout);
        fputs(",\"pii\":", stdout);
        put_detections(stdout, &r);
        fputs("}\n", stdout);
        dc_scrub_result_free(&r);
    }
    free(line);
    if (ferror(in)) {
        fprintf(stderr, "dodeca scrub: error reading the input\n");
        return DC_EXIT_FAILURE;
    }
    if (fflush(stdout) != 0) return DC_EXIT_FAILURE;
    return failures ? DC_EXIT_FAILURE : DC_EXIT_OK;
}

int dc_cmd_scrub(int argc, char **argv) {
    const char *file = NULL, *config = NULL, *report = NULL, *field = "text";
    const char *mode = NULL, *sensitivity = NULL, *key_file = NULL;
    const char *patterns[DC_CONFIG_MAX_PII_PATTERNS];
    size_t npatterns = 0;
    int jsonl = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            scrub_usage(stdout);
            return DC_EXIT_OK;
        } else if (!strcmp(a, "--jsonl")) {
            jsonl = 1;
            continue;
        } else if (!strcmp(a, "--field")) slot = &field;
        else if (!strcmp(a, "--mode")) slot = &mode;
        else if (!strcmp(a, "--sensitivity")) slot = &sensitivity;
        else if (!strcmp(a, "--key-file")) slot = &key_file;
        else if (!strcmp(a, "--config")) slot = &config;
        else if (!strcmp(a, "--report")) slot = &report;
        else if (!strcmp(a, "--pattern")) {
            if (npatterns == DC_CONFIG_MAX_PII_PATTERNS || i + 1 >= argc) {
                fprintf(stderr, "dodeca scrub: --pattern needs NAME=REGEX (at most %d)\n",
                        DC_CONFIG_MAX_PII_PATTERNS);
                return DC_EXIT_USAGE;
            }
            patterns[npatterns++] = argv[++i];
            continue;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "dodeca scrub: unknown option \"%s\"\n\n", a);
            scrub_usage(stderr);
            return DC_EXIT_USAGE;
        } else if (file) {
            fprintf(stderr, "dodeca scrub: one input file at most\n");
            return DC_EXIT_USAGE;
        } else {
            file = a;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "dodeca scrub: %s needs a value\n", a);
            return DC_EXIT_USAGE;
        }
        *slot = argv[++i];
    }
    if (!config) {
        const char *env = getenv("DODECA_CONFIG");
        if (env && *env) config = env;
    }
    dc_config *c = malloc(sizeof *c);
    if (!c) {
        fprintf(stderr, "dodeca scrub: out of memory\n");
        return DC_EXIT_FAILURE;
    }
    dc_config_defaults(c);
    dc_status st = DC_OK;
    if (config) st = dc_config_apply_file(c, config);
    if (!st) st = dc_config_apply_env(c, environ);
    if (!st && mode) st = dc_config_set(c, "pii.mode", mode);
    if (!st && sensitivity) st = dc_config_set(c, "pii.sensitivity", sensitivity);
    if (!st && key_file) {
        c->pii.hmac_key[0] = '\0';
        st = dc_config_set(c, "pii.hmac_key_file", key_file);
    }
    for (size_t k = 0; !st && k < npatterns; k++) {
        uint32_t n = c->pii.custom_pattern_count;
        if (n == DC_CONFIG_MAX_PII_PATTERNS) {
            fprintf(stderr, "dodeca scrub: more than %d custom patterns\n",
                    DC_CONFIG_MAX_PII_PATTERNS);
            free(c);
            return DC_EXIT_USAGE;
        }
        if (strlen(patterns[k]) >= DC_CONFIG_PII_PATTERN_MAX) {
            fprintf(stderr, "dodeca scrub: --pattern longer than %d bytes\n",
                    DC_CONFIG_PII_PATTERN_MAX - 1);
            free(c);
            return DC_EXIT_USAGE;
        }
        snprintf(c->pii.custom_patterns[n], DC_CONFIG_PII_PATTERN_MAX, "%s", patterns[k]);
        c->pii.custom_pattern_count = n + 1;
    }
    c->pii.enabled = true; /* asking for a scrub is enabling it */
    if (!st) st = dc_config_validate(c);
    dc_scrubber *sc = NULL;
    if (!st) st = dc_scrubber_create(&c->pii, &sc);
    free(c);
    if (st) {
        fprintf(stderr, "dodeca scrub: %s\n", dc_error_detail());
        return st == DC_ERR_CONFIG || st == DC_ERR_INVALID_ARGUMENT ? DC_EXIT_USAGE
                                                                    : DC_EXIT_FAILURE;
    }
    FILE *in = stdin;
    if (file && strcmp(file, "-") != 0) {
        in = fopen(file, "rb");
        if (!in) {
            fprintf(stderr, "dodeca scrub: cannot open %s: %s\n", file, strerror(errno));
            dc_scrubber_destroy(sc);
            return DC_EXIT_FAILURE;
        }
    }
    int rc = jsonl ? scrub_jsonl(sc, in, field) : scrub_text_stream(sc, in, report);
    if (in != stdin) fclose(in);
    dc_scrubber_destroy(sc);
    return rc;
}

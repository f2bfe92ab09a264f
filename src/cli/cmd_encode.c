/* `dodeca encode --model E2|E3|E4|E9` (the pretrained models are handed to
 * encode_pretrained.c): embeds JSON lines from stdin with one custom model and
 * writes one JSON line per input to stdout. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli/commands.h"
#include "cli/encode_pretrained.h"
#include "core/error.h"
#include "dodeca/dodeca.h"
#include "models/custom.h"
#include "models/temporal_encode.h"

static void dc_encode_usage(FILE *out) {
    fputs(
        "usage: dodeca encode --model ID [options] < in.jsonl > out.jsonl\n"
        "  Embeds one JSON object per input line with a custom model:\n"
        "    {\"id\": any, \"text\": \"...\", \"type\": \"text\"|\"code\", \"language\": \"c\",\n"
        "     \"t_event\": T, \"t_ref\": T, \"position\": N}\n"
        "  T is Unix seconds (a number) or an RFC 3339 string (\"2024-02-29T12:00:00Z\").\n"
        "  Writes {\"id\", \"model\", \"dim\", \"vector\", \"truncated\", \"tokens_used\"} per "
        "line,\n"
        "  plus \"t_ref\" for E2-E4. E2-E4 ignore the text, which may then be omitted.\n"
        "  A line without t_ref gets the time it was read (as the pipeline does), unless\n"
        "  --no-clock is given: then the model's own rule applies (docs/custom-models.md).\n"
        "options:\n"
        "  --model ID          E2, E3, E4 or E9 (or temporal_recent, ..., hdc);\n"
        "                      the pretrained models need --model-dir (see --model E11 --help)\n"
        "  --no-clock          never read the clock; a missing t_ref stays missing\n"
        "  --utc-offset MIN    E3: local time is UTC + MIN minutes (default 0)\n"
        "  --seed N            E9: seed of the item memory (default 42)\n"
        "  --ngram N           E9: characters per n-gram, 1..8 (default 3)\n"
        "  --max-chars N       E9: characters read (default 4096); more sets truncated\n"
        "  --case-sensitive    E9: do not lower-case\n"
        "  --item-memory PATH  E9: item memory file, read or (when missing) generated and saved\n",
        out);
}

static int dc_encode_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int dc_encode_usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "dodeca encode: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n\n");
    va_end(ap);
    dc_encode_usage(stderr);
    return DC_EXIT_USAGE;
}

static bool dc_encode_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static bool dc_encode_parse_u64(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    if (*s == '-') return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end) return false;
    *out = v;
    return true;
}

/* A time given as Unix seconds or an RFC 3339 string. */
static dc_status dc_encode_time(const cJSON *v, const char *key, double *out) {
    if (cJSON_IsNumber(v)) {
        *out = v->valuedouble;
        return dc_temporal_check_time(*out, key);
    }
    if (cJSON_IsString(v)) {
        dc_status st = dc_temporal_parse_rfc3339(v->valuestring, out);
        return st == DC_OK ? st : dc_fail_context(st, "%s", key);
    }
    return dc_fail(DC_ERR_INVALID_VALUE,
                   "%s must be a number of Unix seconds or an RFC 3339 "
                   "string",
                   key);
}

/* Fills `in` from one JSON object; text and language point into `obj`. */
static dc_status dc_encode_input(const cJSON *obj, bool temporal, dc_input *in) {
    static const char *const known[] = {"id",      "text",  "type",    "language",
                                        "t_event", "t_ref", "position"};
    for (const cJSON *it = obj->child; it; it = it->next) {
        bool ok = false;
        for (size_t k = 0; k < sizeof known / sizeof known[0] && !ok; k++)
            ok = it->string && strcmp(it->string, known[k]) == 0;
        if (!ok)
            return dc_fail(DC_ERR_INVALID_VALUE,
                           "unknown key \"%s\" (known: id, text, type, "
                           "language, t_event, t_ref, position)",
                           it->string ? it->string : "");
    }
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(obj, "text");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(obj, "type");
    const cJSON *lang = cJSON_GetObjectItemCaseSensitive(obj, "language");
    dc_input_type t = DC_INPUT_TEXT;
    if (type) {
        if (!cJSON_IsString(type) || dc_input_type_parse(type->valuestring, &t) != DC_OK ||
            (t != DC_INPUT_TEXT && t != DC_INPUT_CODE))
            return dc_fail(DC_ERR_INVALID_VALUE, "type must be \"text\" or \"code\"");
    }
    if (text && !cJSON_IsString(text))
        return dc_fail(DC_ERR_INVALID_VALUE, "text must be a string");
    if (lang && !cJSON_IsString(lang))
        return dc_fail(DC_ERR_INVALID_VALUE, "language must be a string");
    /* The temporal models read no text; the input rules still want some. */
    const char *s = text ? text->valuestring : temporal ? "-" : NULL;
    if (!s) return dc_fail(DC_ERR_EMPTY_INPUT, "\"text\" is missing");
    *in = t == DC_INPUT_CODE ? dc_input_code(s, strlen(s), lang ? lang->valuestring : NULL)
                             : dc_input_text(s, strlen(s), DC_ROLE_PASSAGE);
    dc_status st;
    const cJSON *te = cJSON_GetObjectItemCaseSensitive(obj, "t_event");
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(obj, "t_ref");
    const cJSON *pos = cJSON_GetObjectItemCaseSensitive(obj, "position");
    if (te && !cJSON_IsNull(te)) {
        if ((st = dc_encode_time(te, "t_event", &in->t_event)) != DC_OK) return st;
        in->has_t_event = true;
    }
    if (tr && !cJSON_IsNull(tr)) {
        if ((st = dc_encode_time(tr, "t_ref", &in->t_ref)) != DC_OK) return st;
        in->has_t_ref = true;
    }
    if (pos && !cJSON_IsNull(pos)) {
        double p = pos->valuedouble;
        if (!cJSON_IsNumber(pos) || p < 0 || p > 9007199254740992.0 || p != floor(p))
            return dc_fail(DC_ERR_INVALID_VALUE, "position must be an integer 0 .. 2^53");
        in->has_position = true;
        in->position = (int64_t)p;
    }
    return DC_OK;
}

static double dc_encode_wall_clock(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One output line. Floats print with 9 significant digits, enough to round-trip exactly. */
static bool dc_encode_write(const cJSON *id, const dc_model_info *info, const dc_model_embedding *e,
                            const dc_input *in, bool temporal) {
    char *id_text = id ? cJSON_PrintUnformatted(id) : NULL;
    if (id && !id_text) return false;
    printf("{\"id\":%s,\"model\":\"%s\",\"dim\":%u,\"vector\":[", id_text ? id_text : "null",
           info->label, (unsigned)e->dim);
    free(id_text);
    for (uint32_t i = 0; i < e->dim; i++) printf(i ? ",%.9g" : "%.9g", (double)e->vector[i]);
    printf("],\"truncated\":%s,\"tokens_used\":%u", e->truncated ? "true" : "false",
           (unsigned)e->tokens_used);
    if (temporal && in->has_t_ref) printf(",\"t_ref\":%.17g", in->t_ref);
    printf("}\n");
    return !ferror(stdout);
}

static dc_status dc_encode_create(dc_model_id id, const dc_temporal_options *topt,
                                  const dc_hdc_options *hopt, dc_model **m) {
    switch (id) {
    case DC_MODEL_TEMPORAL_RECENT:
        return dc_temporal_recent_create(topt, m);
    case DC_MODEL_TEMPORAL_PERIODIC:
        return dc_temporal_periodic_create(topt, m);
    case DC_MODEL_TEMPORAL_POSITIONAL:
        return dc_temporal_positional_create(topt, m);
    default:
        return dc_hdc_create(hopt, m);
    }
}

/* The value of --model, if given, so the pretrained models can take over the whole command. */
static const char *dc_encode_model_arg(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--model") == 0) return argv[i + 1];
    return NULL;
}

int dc_cmd_encode(int argc, char **argv) {
    dc_model_id pretrained;
    const char *requested = dc_encode_model_arg(argc, argv);
    if (requested && dc_model_id_parse(requested, &pretrained) == DC_OK &&
        dc_cli_is_pretrained(pretrained))
        return dc_cmd_encode_pretrained(argc, argv);

    const char *model_name = NULL;
    bool no_clock = false;
    dc_temporal_options topt = dc_temporal_options_default();
    dc_hdc_options hopt = dc_hdc_options_default();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        int64_t v;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            dc_encode_usage(stdout);
            return DC_EXIT_OK;
        } else if (strcmp(a, "--no-clock") == 0) {
            no_clock = true;
        } else if (strcmp(a, "--case-sensitive") == 0) {
            hopt.case_sensitive = true;
        } else if (!has_value && a[0] == '-' && a[1] == '-') {
            return dc_encode_usage_error("%s needs a value (or is unknown)", a);
        } else if (strcmp(a, "--model") == 0) {
            model_name = argv[++i];
        } else if (strcmp(a, "--utc-offset") == 0) {
            if (!dc_encode_parse_i64(argv[++i], -DC_TEMPORAL_MAX_UTC_OFFSET_MINUTES,
                                     DC_TEMPORAL_MAX_UTC_OFFSET_MINUTES, &v))
                return dc_encode_usage_error("--utc-offset \"%s\" is not minutes in -1080..1080",
                                             argv[i]);
            topt.utc_offset_minutes = (int32_t)v;
        } else if (strcmp(a, "--seed") == 0) {
            if (!dc_encode_parse_u64(argv[++i], &hopt.seed))
                return dc_encode_usage_error("--seed \"%s\" is not an unsigned integer", argv[i]);
        } else if (strcmp(a, "--ngram") == 0) {
            if (!dc_encode_parse_i64(argv[++i], 1, DC_HDC_MAX_NGRAM, &v))
                return dc_encode_usage_error("--ngram \"%s\" is not 1..8", argv[i]);
            hopt.ngram = (uint32_t)v;
        } else if (strcmp(a, "--max-chars") == 0) {
            if (!dc_encode_parse_i64(argv[++i], 1, DC_HDC_MAX_MAX_CHARS, &v))
                return dc_encode_usage_error("--max-chars \"%s\" is not 1..1048576", argv[i]);
            hopt.max_chars = (uint32_t)v;
        } else if (strcmp(a, "--item-memory") == 0) {
            hopt.item_memory_path = argv[++i];
        } else {
            return dc_encode_usage_error("unknown option \"%s\"", a);
        }
    }
    if (!model_name) return dc_encode_usage_error("--model is required");
    dc_model_id id;
    if (dc_model_id_parse(model_name, &id) != DC_OK)
        return dc_encode_usage_error("unknown model \"%s\"", model_name);
    bool temporal = id == DC_MODEL_TEMPORAL_RECENT || id == DC_MODEL_TEMPORAL_PERIODIC ||
                    id == DC_MODEL_TEMPORAL_POSITIONAL;
    if (!temporal && id != DC_MODEL_HDC) /* pretrained ids were handed over above */
        return dc_encode_usage_error("encode cannot run %s", model_name);

    dc_model *m = NULL;
    dc_status st = dc_encode_create(id, &topt, &hopt, &m);
    if (st == DC_OK) st = dc_model_load(m);
    if (st != DC_OK) {
        fprintf(stderr, "dodeca encode: %s: %s\n", dc_status_name(st), dc_error_detail());
        dc_model_destroy(m);
        return DC_EXIT_FAILURE;
    }
    const dc_model_info *info = dc_model_info_get(id);
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    int rc = DC_EXIT_OK;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        lineno++;
        size_t n = (size_t)len;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) n--;
        if (n == 0) continue;
        cJSON *obj = cJSON_ParseWithLength(line, n);
        dc_input in;
        dc_model_embedding e;
        if (!obj || !cJSON_IsObject(obj))
            st = dc_fail(DC_ERR_SERIALIZATION, "not a JSON object");
        else if ((st = dc_encode_input(obj, temporal, &in)) == DC_OK) {
            if (temporal && !in.has_t_ref && !no_clock) {
                in.has_t_ref = true; /* the request's receive time, echoed in the output */
                in.t_ref = dc_encode_wall_clock();
            }
            if ((st = dc_model_embed(m, &in, &e)) == DC_OK) {
                bool ok = dc_encode_write(cJSON_GetObjectItemCaseSensitive(obj, "id"), info, &e,
                                          &in, temporal);
                dc_model_embedding_free(&e);
                if (!ok) st = dc_fail(DC_ERR_IO, "cannot write to stdout");
            }
        }
        cJSON_Delete(obj);
        if (st != DC_OK) {
            fprintf(stderr, "dodeca encode: line %zu: %s: %s\n", lineno, dc_status_name(st),
                    dc_error_detail());
            rc = DC_EXIT_FAILURE;
            break;
        }
    }
    free(line);
    dc_model_destroy(m);
    if (fflush(stdout) != 0 && rc == DC_EXIT_OK) {
        fprintf(stderr, "dodeca encode: cannot write to stdout\n");
        rc = DC_EXIT_FAILURE;
    }
    return rc;
}

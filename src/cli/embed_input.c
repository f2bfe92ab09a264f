/* `dodeca embed` input: arguments, stdin or files; JSON lines or plain text, one item a line.
 * Every problem with a line names the source and the line, so a user can fix it. */
#include "cli/embed_input.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "io/image.h"
#include "models/temporal_encode.h"

#define DC_EMBED_MAX_IMAGE_BYTES (64u << 20) /* an image file larger than this is refused */

struct dc_embed_reader {
    dc_embed_reader_options opt;
    char *const *args;
    size_t nargs, next_arg;
    char *const *files;
    size_t nfiles, next_file; /* next_file: index of the file to open next */
    bool from_stdin;          /* neither args nor files: read stdin once */
    FILE *f;                  /* the open source, NULL between sources */
    bool f_is_stdin;
    const char *name;         /* its name for messages */
    char dir[4096];           /* its folder, for relative image paths ("" = current folder) */
    dc_embed_format fmt;      /* of the open source, AUTO until its first non-blank line */
    size_t line;              /* lines read in the open source */
    size_t global_line;       /* lines read across all sources: the default id */
    char *buf;
    size_t cap;
    uint64_t bytes_read, bytes_total;
};

dc_status dc_embed_format_parse(const char *s, dc_embed_format *out) {
    if (strcmp(s, "auto") == 0) *out = DC_EMBED_FORMAT_AUTO;
    else if (strcmp(s, "text") == 0) *out = DC_EMBED_FORMAT_TEXT;
    else if (strcmp(s, "jsonl") == 0 || strcmp(s, "json") == 0) *out = DC_EMBED_FORMAT_JSONL;
    else return dc_fail(DC_ERR_INVALID_ARGUMENT, "format \"%s\" is not text, jsonl or auto", s);
    return DC_OK;
}

void dc_embed_item_free(dc_embed_item *it) {
    if (!it) return;
    free(it->id);
    free(it->text);
    free(it->language);
    free(it->instruction);
    free(it->bytes);
    free(it->error);
    memset(it, 0, sizeof *it);
}

dc_status dc_embed_reader_open(char *const *args, size_t nargs, char *const *files, size_t nfiles,
                               const dc_embed_reader_options *opt, dc_embed_reader **out) {
    dc_embed_reader *r = calloc(1, sizeof *r);
    if (!r) return dc_fail(DC_ERR_OUT_OF_MEMORY, "input reader");
    r->opt = *opt;
    r->args = args;
    r->nargs = nargs;
    r->files = files;
    r->nfiles = nfiles;
    r->from_stdin = nargs == 0 && nfiles == 0;
    /* Check every file up front: a typo in the last -i should not surface after hours. */
    for (size_t i = 0; i < nfiles; i++) {
        if (strcmp(files[i], "-") == 0) continue;
        struct stat sb;
        if (stat(files[i], &sb) != 0) {
            dc_status st = dc_fail(DC_ERR_IO, "%s: %s", files[i], strerror(errno));
            free(r);
            return st;
        }
        if (S_ISDIR(sb.st_mode)) {
            free(r);
            return dc_fail(DC_ERR_IO, "%s: is a directory", files[i]);
        }
        if (S_ISREG(sb.st_mode)) r->bytes_total += (uint64_t)sb.st_size;
    }
    *out = r;
    return DC_OK;
}

static void dc_embed_reader_close_source(dc_embed_reader *r) {
    if (r->f && !r->f_is_stdin) fclose(r->f);
    r->f = NULL;
}

void dc_embed_reader_close(dc_embed_reader *r) {
    if (!r) return;
    dc_embed_reader_close_source(r);
    free(r->buf);
    free(r);
}

uint64_t dc_embed_reader_bytes_read(const dc_embed_reader *r) { return r->bytes_read; }
uint64_t dc_embed_reader_bytes_total(const dc_embed_reader *r) { return r->bytes_total; }

/* Opens the next file source; false when there is none. */
static dc_status dc_embed_reader_open_source(dc_embed_reader *r, bool *none) {
    *none = false;
    const char *path = NULL;
    if (r->from_stdin) {
        r->from_stdin = false;
        path = "-";
    } else if (r->next_file < r->nfiles) {
        path = r->files[r->next_file++];
    } else {
        *none = true;
        return DC_OK;
    }
    r->line = 0;
    r->fmt = r->opt.format;
    r->dir[0] = '\0';
    if (strcmp(path, "-") == 0) {
        r->f = stdin;
        r->f_is_stdin = true;
        r->name = "<stdin>";
        return DC_OK;
    }
    r->f = fopen(path, "rb");
    if (!r->f) return dc_fail(DC_ERR_IO, "%s: %s", path, strerror(errno));
    r->f_is_stdin = false;
    r->name = path;
    const char *slash = strrchr(path, '/');
    if (slash) {
        size_t n = (size_t)(slash - path) + 1;
        if (n >= sizeof r->dir) n = sizeof r->dir - 1;
        memcpy(r->dir, path, n);
        r->dir[n] = '\0';
    }
    return DC_OK;
}

static char *dc_embed_strdup(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* A time given as Unix seconds or an RFC 3339 string. */
static dc_status dc_embed_time(const cJSON *v, const char *key, double *out) {
    if (cJSON_IsNumber(v)) {
        *out = v->valuedouble;
        return dc_temporal_check_time(*out, key);
    }
    if (cJSON_IsString(v)) {
        dc_status st = dc_temporal_parse_rfc3339(v->valuestring, out);
        return st == DC_OK ? st : dc_fail_context(st, "%s", key);
    }
    return dc_fail(DC_ERR_INVALID_VALUE, "%s must be Unix seconds or an RFC 3339 string", key);
}

static dc_status dc_embed_read_image(dc_embed_reader *r, const char *path, dc_embed_item *it) {
    char full[8192];
    if (path[0] == '/' || !r->dir[0]) snprintf(full, sizeof full, "%s", path);
    else snprintf(full, sizeof full, "%s%s", r->dir, path);
    FILE *f = fopen(full, "rb");
    if (!f) return dc_fail(DC_ERR_IO, "image %s: %s", full, strerror(errno));
    size_t cap = 1u << 16, n = 0;
    uint8_t *b = malloc(cap);
    dc_status st = b ? DC_OK : dc_fail(DC_ERR_OUT_OF_MEMORY, "image %s", full);
    while (st == DC_OK) {
        if (n == cap) {
            if (cap >= DC_EMBED_MAX_IMAGE_BYTES) {
                st = dc_fail(DC_ERR_INPUT_TOO_LONG, "image %s is larger than %u MiB", full,
                             DC_EMBED_MAX_IMAGE_BYTES >> 20);
                break;
            }
            uint8_t *nb = realloc(b, cap * 2);
            if (!nb) {
                st = dc_fail(DC_ERR_OUT_OF_MEMORY, "image %s", full);
                break;
            }
            b = nb;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) st = dc_fail(DC_ERR_IO, "image %s: read error", full);
            break;
        }
    }
    fclose(f);
    dc_image_format fmt = DC_IMAGE_PNG;
    if (st == DC_OK && (st = dc_image_detect(b, n, &fmt)) != DC_OK)
        st = dc_fail_context(st, "image %s", full);
    if (st != DC_OK) {
        free(b);
        return st;
    }
    it->bytes = b;
    it->in = dc_input_image(b, n, fmt);
    return DC_OK;
}

static const char *const dc_embed_known_keys[] = {
    "id", "text", "code", "image", "type", "language", "role", "instruction",
    "t_event", "t_ref", "position"};

static dc_status dc_embed_string_key(const cJSON *obj, const char *key, const cJSON **out) {
    *out = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (*out && cJSON_IsNull(*out)) *out = NULL;
    if (*out && !cJSON_IsString(*out))
        return dc_fail(DC_ERR_INVALID_VALUE, "\"%s\" must be a string", key);
    return DC_OK;
}

/* Fills `it` from one JSON object. */
static dc_status dc_embed_from_json(dc_embed_reader *r, const cJSON *obj, dc_embed_item *it) {
    if (!r->opt.allow_extra_keys) {
        for (const cJSON *k = obj->child; k; k = k->next) {
            bool ok = false;
            for (size_t i = 0; i < sizeof dc_embed_known_keys / sizeof *dc_embed_known_keys; i++)
                ok = ok || (k->string && strcmp(k->string, dc_embed_known_keys[i]) == 0);
            if (!ok)
                return dc_fail(DC_ERR_INVALID_VALUE,
                               "unknown key \"%s\" (known: id, text, code, image, type, language, "
                               "role, instruction, t_event, t_ref, position; --allow-extra-keys "
                               "ignores others)",
                               k->string ? k->string : "");
        }
    }
    const cJSON *text, *code, *image, *type, *lang, *role, *instr;
    dc_status st;
    if ((st = dc_embed_string_key(obj, "text", &text)) != DC_OK ||
        (st = dc_embed_string_key(obj, "code", &code)) != DC_OK ||
        (st = dc_embed_string_key(obj, "image", &image)) != DC_OK ||
        (st = dc_embed_string_key(obj, "type", &type)) != DC_OK ||
        (st = dc_embed_string_key(obj, "language", &lang)) != DC_OK ||
        (st = dc_embed_string_key(obj, "role", &role)) != DC_OK ||
        (st = dc_embed_string_key(obj, "instruction", &instr)) != DC_OK)
        return st;
    if (!!text + !!code + !!image != 1)
        return dc_fail(text || code || image ? DC_ERR_INVALID_VALUE : DC_ERR_EMPTY_INPUT,
                       "give exactly one of \"text\", \"code\" or \"image\"");
    dc_input_type t = text ? DC_INPUT_TEXT : code ? DC_INPUT_CODE : DC_INPUT_IMAGE;
    if (type) { /* "type": "code" with "text", as `dodeca encode` reads it */
        dc_input_type declared;
        if (dc_input_type_parse(type->valuestring, &declared) != DC_OK ||
            declared == DC_INPUT_AUDIO)
            return dc_fail(DC_ERR_INVALID_VALUE, "\"type\" must be text, code or image");
        if (declared != t && !(text && declared == DC_INPUT_CODE))
            return dc_fail(DC_ERR_INVALID_VALUE, "\"type\": \"%s\" does not match the content",
                           type->valuestring);
        t = declared;
    }
    dc_text_role rl = DC_ROLE_PASSAGE;
    if (role) {
        if (strcmp(role->valuestring, "query") == 0) rl = DC_ROLE_QUERY;
        else if (strcmp(role->valuestring, "passage") != 0)
            return dc_fail(DC_ERR_INVALID_VALUE, "\"role\" must be \"query\" or \"passage\"");
    }
    if (t == DC_INPUT_IMAGE) {
        if ((st = dc_embed_read_image(r, image->valuestring, it)) != DC_OK) return st;
    } else {
        const char *s = text ? text->valuestring : code->valuestring;
        size_t n = strlen(s);
        if (!(it->text = dc_embed_strdup(s, n))) return dc_fail(DC_ERR_OUT_OF_MEMORY, "text");
        if (lang && !(it->language = dc_embed_strdup(lang->valuestring, strlen(lang->valuestring))))
            return dc_fail(DC_ERR_OUT_OF_MEMORY, "language");
        it->in = t == DC_INPUT_CODE ? dc_input_code(it->text, n, it->language)
                                    : dc_input_text(it->text, n, rl);
        if (instr && t == DC_INPUT_TEXT) {
            if (!(it->instruction = dc_embed_strdup(instr->valuestring, strlen(instr->valuestring))))
                return dc_fail(DC_ERR_OUT_OF_MEMORY, "instruction");
            it->in.instruction = it->instruction;
        }
    }
    if (t != DC_INPUT_TEXT && (role || instr))
        return dc_fail(DC_ERR_INVALID_VALUE, "\"role\" and \"instruction\" apply to text only");
    if (t != DC_INPUT_CODE && lang)
        return dc_fail(DC_ERR_INVALID_VALUE, "\"language\" applies to code only");
    const cJSON *te = cJSON_GetObjectItemCaseSensitive(obj, "t_event");
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(obj, "t_ref");
    const cJSON *pos = cJSON_GetObjectItemCaseSensitive(obj, "position");
    if (te && !cJSON_IsNull(te)) {
        if ((st = dc_embed_time(te, "t_event", &it->in.t_event)) != DC_OK) return st;
        it->in.has_t_event = true;
    }
    if (tr && !cJSON_IsNull(tr)) {
        if ((st = dc_embed_time(tr, "t_ref", &it->in.t_ref)) != DC_OK) return st;
        it->in.has_t_ref = true;
    }
    if (pos && !cJSON_IsNull(pos)) {
        double p = cJSON_IsNumber(pos) ? pos->valuedouble : -1;
        if (p < 0 || p > 9007199254740992.0 || p != floor(p))
            return dc_fail(DC_ERR_INVALID_VALUE, "\"position\" must be an integer 0 .. 2^53");
        it->in.has_position = true;
        it->in.position = (int64_t)p;
    }
    return DC_OK;
}

static dc_status dc_embed_set_line_id(dc_embed_item *it, size_t global_line) {
    char num[32];
    snprintf(num, sizeof num, "%zu", global_line);
    free(it->id);
    it->id = dc_embed_strdup(num, strlen(num));
    return it->id ? DC_OK : dc_fail(DC_ERR_OUT_OF_MEMORY, "id");
}

/* One line (without its newline) into `it`. */
static dc_status dc_embed_parse_line(dc_embed_reader *r, const char *s, size_t n,
                                     dc_embed_format fmt, dc_embed_item *it) {
    dc_status st = dc_embed_set_line_id(it, r->global_line - 1);
    if (st != DC_OK) return st;
    if (fmt == DC_EMBED_FORMAT_TEXT) {
        if (!(it->text = dc_embed_strdup(s, n))) return dc_fail(DC_ERR_OUT_OF_MEMORY, "text");
        it->in = dc_input_text(it->text, n, DC_ROLE_PASSAGE);
    } else {
        cJSON *obj = cJSON_ParseWithLength(s, n);
        if (!obj || !cJSON_IsObject(obj)) {
            cJSON_Delete(obj);
            return dc_fail(DC_ERR_SERIALIZATION, "not a JSON object");
        }
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "id");
        if (id && !cJSON_IsNull(id)) {
            char *idt = cJSON_PrintUnformatted(id);
            if (!idt) {
                cJSON_Delete(obj);
                return dc_fail(DC_ERR_OUT_OF_MEMORY, "id");
            }
            free(it->id);
            it->id = idt;
        }
        st = dc_embed_from_json(r, obj, it);
        cJSON_Delete(obj);
        if (st != DC_OK) return st;
    }
    return dc_input_validate(&it->in);
}

static bool dc_embed_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\f' && s[i] != '\v')
            return false;
    return true;
}

dc_status dc_embed_reader_next(dc_embed_reader *r, dc_embed_item *it, bool *eof) {
    *eof = false;
    for (;;) {
        if (r->next_arg < r->nargs) {
            const char *a = r->args[r->next_arg++];
            r->global_line++;
            it->source = "<argument>";
            it->line = r->next_arg;
            dc_embed_format fmt =
                r->opt.format == DC_EMBED_FORMAT_JSONL ? DC_EMBED_FORMAT_JSONL : DC_EMBED_FORMAT_TEXT;
            return dc_embed_parse_line(r, a, strlen(a), fmt, it);
        }
        if (!r->f) {
            bool none;
            dc_status st = dc_embed_reader_open_source(r, &none);
            if (st != DC_OK || none) {
                *eof = true;
                return st;
            }
        }
        errno = 0;
        ssize_t len = getline(&r->buf, &r->cap, r->f);
        if (len < 0) {
            bool err = ferror(r->f) != 0;
            int e = errno;
            const char *name = r->name;
            dc_embed_reader_close_source(r);
            if (err) {
                *eof = true;
                return dc_fail(DC_ERR_IO, "%s: read error: %s", name, strerror(e));
            }
            continue;
        }
        r->bytes_read += (uint64_t)len;
        r->line++;
        r->global_line++;
        size_t n = (size_t)len;
        while (n && (r->buf[n - 1] == '\n' || r->buf[n - 1] == '\r')) n--;
        if (dc_embed_blank(r->buf, n)) continue; /* blank lines count, but are not items */
        it->source = r->name;
        it->line = r->line;
        if (r->fmt == DC_EMBED_FORMAT_AUTO) {
            size_t i = 0;
            while (i < n && (r->buf[i] == ' ' || r->buf[i] == '\t')) i++;
            /* A UTF-8 byte order mark before the first line is not content. */
            if (r->line == 1 && n - i >= 3 && memcmp(r->buf + i, "\xEF\xBB\xBF", 3) == 0) i += 3;
            r->fmt = r->buf[i] == '{' ? DC_EMBED_FORMAT_JSONL : DC_EMBED_FORMAT_TEXT;
        }
        const char *s = r->buf;
        if (r->line == 1 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
            s += 3;
            n -= 3;
        }
        return dc_embed_parse_line(r, s, n, r->fmt, it);
    }
}

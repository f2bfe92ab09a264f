/* `dodeca tokenize --tokenizer PATH [--max-length N] [--pad-to N] [--no-special-tokens]
 *                  [--byte-offsets] [--replace-invalid-utf8]`
 * Reads JSON lines {"id": ..., "text": "..."} on stdin and writes one line per record:
 * {"id": ..., "ids": [...], "offsets": [[s,e],...]} with code-point offsets (as Hugging Face
 * `tokenizers` gives them), so any corpus can be compared with the reference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "dodeca/dodeca.h"
#include "text/jsonl.h"
#include "text/tokenizer.h"

static void tokenize_usage(FILE *out) {
    fprintf(out,
            "usage: dodeca tokenize --tokenizer PATH [--max-length N] [--pad-to N]\n"
            "                       [--no-special-tokens] [--byte-offsets] [--replace-invalid-utf8]\n"
            "\n"
            "Reads JSON lines {\"id\": ..., \"text\": \"...\"} on stdin; writes\n"
            "{\"id\": ..., \"ids\": [...], \"offsets\": [[start,end],...]} per line (code points).\n"
            "\n"
            "  --tokenizer PATH        tokenizer.json, or a model folder (tokenizer.json, vocab.txt,\n"
            "                          or vocab.json + merges.txt)\n"
            "  --max-length N          truncate to N tokens, special tokens included (0: never);\n"
            "                          default: the truncation written in tokenizer.json\n"
            "  --pad-to N              pad to N tokens (0: never); default: tokenizer.json's padding\n"
            "  --no-special-tokens     do not add [CLS]/[SEP], <s>/</s>, ...\n"
            "  --byte-offsets          also write \"byte_offsets\" (UTF-8 bytes)\n"
            "  --replace-invalid-utf8  encode invalid UTF-8 as U+FFFD instead of failing the line\n");
}

static int parse_count(FILE *err, const char *flag, const char *v, long *out) {
    char *end;
    long n = v ? strtol(v, &end, 10) : -1;
    if (!v || *end || n < 0 || n > 1000000000L) {
        fprintf(err, "dodeca tokenize: %s needs a count, got \"%s\"\n", flag, v ? v : "");
        return -1;
    }
    *out = n;
    return 0;
}

/* Writes s as a JSON string. */
static void put_json_string(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(out, "\\%c", *p);
        else if (*p < 0x20) fprintf(out, "\\u%04x", *p);
        else fputc(*p, out);
    }
    fputc('"', out);
}

/* The id of the pad token: the file's padding, else a conventional pad token, else 0. */
static uint32_t default_pad_id(const dc_tokenizer *tok, const dc_encode_options *o) {
    if (o->padding.enabled) return o->padding.pad_id;
    static const char *names[] = {"[PAD]", "<pad>", "<|endoftext|>"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int64_t id = dc_tokenizer_token_to_id(tok, names[i]);
        if (id >= 0) return (uint32_t)id;
    }
    return 0;
}

static void write_record(FILE *out, const char *id, size_t idlen, const dc_encoding *e,
                         int byte_offsets) {
    fputs("{\"id\":", out);
    if (id) fwrite(id, 1, idlen, out);
    else fputs("null", out);
    fputs(",\"ids\":[", out);
    for (size_t i = 0; i < e->len; i++) fprintf(out, i ? ",%u" : "%u", e->ids[i]);
    fputs("],\"offsets\":[", out);
    for (size_t i = 0; i < e->len; i++)
        fprintf(out, i ? ",[%u,%u]" : "[%u,%u]", e->offsets[i].start, e->offsets[i].end);
    fputc(']', out);
    if (byte_offsets) {
        fputs(",\"byte_offsets\":[", out);
        for (size_t i = 0; i < e->len; i++)
            fprintf(out, i ? ",[%u,%u]" : "[%u,%u]", e->byte_offsets[i].start,
                    e->byte_offsets[i].end);
        fputc(']', out);
    }
    fputs("}\n", out);
}

/* The command on explicit streams (the unit test drives it with files). */
static int run_tokenize(int argc, char **argv, FILE *in, FILE *out, FILE *err) {
    const char *path = NULL;
    long max_length = -1, pad_to = -1;
    int special = 1, byte_offsets = 0, replace = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--tokenizer") && i + 1 < argc) path = argv[++i];
        else if (!strncmp(a, "--tokenizer=", 12)) path = a + 12;
        else if (!strcmp(a, "--max-length")) {
            if (parse_count(err, a, i + 1 < argc ? argv[++i] : NULL, &max_length)) return DC_EXIT_USAGE;
        } else if (!strcmp(a, "--pad-to")) {
            if (parse_count(err, a, i + 1 < argc ? argv[++i] : NULL, &pad_to)) return DC_EXIT_USAGE;
        } else if (!strcmp(a, "--no-special-tokens")) special = 0;
        else if (!strcmp(a, "--byte-offsets")) byte_offsets = 1;
        else if (!strcmp(a, "--replace-invalid-utf8")) replace = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            tokenize_usage(out);
            return DC_EXIT_OK;
        } else {
            fprintf(err, "dodeca tokenize: unknown argument \"%s\"\n\n", a);
            tokenize_usage(err);
            return DC_EXIT_USAGE;
        }
    }
    if (!path) {
        tokenize_usage(err);
        return DC_EXIT_USAGE;
    }
    dc_tokenizer *tok;
    dc_status st = dc_tokenizer_load(path, &tok);
    if (st) {
        fprintf(err, "dodeca tokenize: %s: %s\n", dc_status_str(st), dc_error_detail());
        return DC_EXIT_FAILURE;
    }
    dc_encode_options o;
    dc_tokenizer_default_options(tok, &o);
    o.add_special_tokens = special;
    o.replace_invalid_utf8 = replace;
    if (max_length == 0) o.truncation.enabled = false;
    if (max_length > 0) {
        o.truncation.enabled = true;
        o.truncation.max_length = (uint32_t)max_length;
        o.truncation.strategy = DC_TRUNC_LONGEST_FIRST;
        o.truncation.direction = DC_SIDE_RIGHT;
        o.truncation.stride = 0;
    }
    if (pad_to == 0) o.padding.enabled = false;
    if (pad_to > 0) {
        uint32_t pad_id = default_pad_id(tok, &o);
        o.padding.enabled = true;
        o.padding.fixed = true;
        o.padding.length = (uint32_t)pad_to;
        o.padding.pad_id = pad_id;
    }

    char *line = NULL;
    size_t cap = 0, lineno = 0, failures = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, in)) > 0) {
        lineno++;
        size_t len = (size_t)n;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        size_t k = 0;
        while (k < len && (line[k] == ' ' || line[k] == '\t')) k++;
        if (k == len) continue;
        const char *id = NULL, *tv;
        size_t idlen = 0, tvlen;
        char *text = NULL;
        size_t tlen = 0;
        if (dc_jsonl_field(line, len, "id", &id, &idlen) != DC_OK) id = NULL;
        st = dc_jsonl_field(line, len, "text", &tv, &tvlen);
        if (!st) st = dc_json_decode_string(tv, tvlen, &text, &tlen);
        dc_encoding e;
        if (!st) st = dc_tokenizer_encode(tok, text, tlen, &o, &e);
        free(text);
        if (st) {
            failures++;
            fprintf(err, "dodeca tokenize: line %zu: %s\n", lineno, dc_error_detail());
            fputs("{\"id\":", out);
            if (id) fwrite(id, 1, idlen, out);
            else fputs("null", out);
            fputs(",\"error\":", out);
            put_json_string(out, dc_error_detail());
            fputs("}\n", out);
            continue;
        }
        write_record(out, id, idlen, &e, byte_offsets);
        dc_encoding_free(&e);
    }
    free(line);
    fflush(out);
    dc_tokenizer_free(tok);
    if (ferror(in)) {
        fprintf(err, "dodeca tokenize: error reading stdin\n");
        return DC_EXIT_FAILURE;
    }
    return failures ? DC_EXIT_FAILURE : DC_EXIT_OK;
}

int dc_cmd_tokenize(int argc, char **argv) {
    static char outbuf[1 << 16];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    return run_tokenize(argc, argv, stdin, stdout, stderr);
}

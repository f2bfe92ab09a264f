/* `dodeca encode` for the pretrained models: reads {"id", "text", "role"} lines on stdin (or
 * {"id", "code", "language"} for E5/E7, {"id", "image": "path"} for E10) and writes {"id",
 * "model", "dim", "embedding", "tokens_used", "truncated"} lines, plus "sparse": [[index,
 * weight], ...] for E6, "tokens": [[...], ...] for E12 and "language" for code; --hidden
 * writes {"id", "hidden": [[...], ...]} (the last hidden states) instead, for parity checks. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/commands.h"
#include "cli/encode_pretrained.h"
#include "core/error.h"
#include "dodeca/dodeca.h"
#include "io/image.h"
#include "models/pretrained.h"

#define EP_MAX_IMAGE_BYTES ((size_t)256 << 20)

static void ep_usage(FILE *out) {
    fputs("usage: dodeca encode --model E1|E5|E6|E7|E8|E10|E11|E12 --model-dir PATH [options] < in.jsonl\n"
          "  Reads {\"id\": any, \"text\": \"...\", \"role\": \"query\"|\"passage\"} per line;\n"
          "  E5 and E7 also {\"id\", \"code\": \"...\", \"language\": \"python\"}, E10 also\n"
          "  {\"id\", \"image\": \"path\"} (PNG, JPEG, WebP or GIF).\n"
          "options:\n"
          "  --model-dir PATH    Hugging Face model folder (or hub cache models--org--name)\n"
          "  --mode query|document  E12: ColBERT query or document mode (default: by role)\n"
          "  --hidden            write the last hidden states instead of the embedding\n"
          "  --dtype fp32|bf16|int8  weights of the encoder's linear layers (default fp32;\n"
          "                      embeddings, LayerNorm and heads stay fp32; docs/precision.md)\n"
          "  --threads N         intra-op threads (default: OMP_NUM_THREADS or every core)\n"
          "  --max-tokens N      lower the model's token limit\n"
          "  --pooling auto|mean|cls|max|mean_sqrt_len|weightedmean|lasttoken\n"
          "                      E1, E5, E7, E8, E11: pool the token rows this way (default auto:\n"
          "                      the model's recipe); as models.<name>.pooling\n"
          "  --normalize auto|true|false  E1, E5, E7, E8, E11: L2 of the vector (default auto)\n",
          out);
}

bool dc_cli_is_pretrained(dc_model_id id) { return dc_pretrained_supports(id); }

static void put_floats(FILE *out, const float *v, size_t n) {
    fputc('[', out);
    for (size_t i = 0; i < n; i++) fprintf(out, "%s%.9g", i ? "," : "", (double)v[i]);
    fputc(']', out);
}

static void put_rows(FILE *out, const float *rows, size_t n, size_t dim) {
    fputc('[', out);
    for (size_t r = 0; r < n; r++) {
        if (r) fputc(',', out);
        put_floats(out, rows + r * dim, dim);
    }
    fputc(']', out);
}

static bool parse_u32(const char *s, uint32_t *out) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v > 1000000ul) return false;
    *out = (uint32_t)v;
    return true;
}

/* Reads an image file whole (bounded) and detects its format. */
static dc_status read_image(const char *path, uint8_t **bytes, size_t *len, dc_image_format *fmt) {
    *bytes = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return dc_fail(DC_ERR_IO, "%s: %s", path, strerror(errno));
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    dc_status st = DC_OK;
    for (;;) {
        if (n == cap) {
            if (cap >= EP_MAX_IMAGE_BYTES) {
                st = dc_fail(DC_ERR_INPUT_TOO_LONG, "%s: larger than %zu bytes", path, EP_MAX_IMAGE_BYTES);
                break;
            }
            cap = cap ? cap * 2 : 65536;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                st = dc_fail(DC_ERR_OUT_OF_MEMORY, "%s", path);
                break;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (!got) {
            if (ferror(f)) st = dc_fail(DC_ERR_IO, "%s: read failed", path);
            break;
        }
    }
    fclose(f);
    if (st == DC_OK) st = dc_image_detect(buf, n, fmt);
    if (st != DC_OK) {
        free(buf);
        return dc_fail_context(st, "%s", path);
    }
    *bytes = buf;
    *len = n;
    return DC_OK;
}

static int ep_line(dc_model *m, const char *line, size_t len, bool hidden, dc_colbert_mode mode,
                   size_t lineno) {
    cJSON *root = cJSON_ParseWithLength(line, len);
    const cJSON *text = root ? cJSON_GetObjectItemCaseSensitive(root, "text") : NULL;
    const cJSON *code = root ? cJSON_GetObjectItemCaseSensitive(root, "code") : NULL;
    const cJSON *image = root ? cJSON_GetObjectItemCaseSensitive(root, "image") : NULL;
    const cJSON *lang = root ? cJSON_GetObjectItemCaseSensitive(root, "language") : NULL;
    if (!cJSON_IsObject(root) ||
        (!cJSON_IsString(text) && !cJSON_IsString(code) && !cJSON_IsString(image))) {
        fprintf(stderr,
                "dodeca encode: line %zu: expected an object with a string \"text\", \"code\" or "
                "\"image\"\n",
                lineno);
        cJSON_Delete(root);
        return DC_EXIT_FAILURE;
    }
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(root, "role");
    dc_text_role r = cJSON_IsString(role) && !strcmp(role->valuestring, "query") ? DC_ROLE_QUERY
                                                                                : DC_ROLE_PASSAGE;
    dc_input in;
    uint8_t *img = NULL;
    dc_status st = DC_OK;
    const char *language = cJSON_IsString(lang) ? lang->valuestring : NULL;
    if (cJSON_IsString(text)) {
        in = dc_input_text(text->valuestring, strlen(text->valuestring), r);
    } else if (cJSON_IsString(code)) {
        in = dc_input_code(code->valuestring, strlen(code->valuestring), language);
    } else {
        size_t n = 0;
        dc_image_format fmt = DC_IMAGE_PNG;
        st = read_image(image->valuestring, &img, &n, &fmt);
        in = dc_input_image(img, n, fmt);
    }
    char *id = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(root, "id"));
    int rc = DC_EXIT_OK;
    const dc_model_info *info = dc_model_info_get(dc_model_id_of(m));
    if (st == DC_OK && !dc_model_accepts(info->id, in.type))
        st = dc_fail(DC_ERR_UNSUPPORTED_MODALITY, "%s does not embed %s input", info->label,
                     dc_input_type_name(in.type));
    if (st == DC_OK && hidden && info->id == DC_MODEL_MULTIMODAL)
        st = dc_fail(DC_ERR_UNSUPPORTED_MODALITY, "--hidden is not available for E10");
    if (st != DC_OK) {
        /* reported below */
    } else if (hidden) {
        float *rows;
        uint32_t n, dim;
        st = dc_pretrained_hidden(m, &in, &rows, &n, &dim);
        if (st == DC_OK) {
            printf("{\"id\":%s,\"model\":\"%s\",\"dim\":%u,\"hidden\":", id ? id : "null", info->label, dim);
            put_rows(stdout, rows, n, dim);
            printf("}\n");
            free(rows);
        }
    } else {
        dc_model_embedding e;
        st = dc_pretrained_embed_unchecked(m, &in, 1, &e);
        if (st == DC_OK) {
            printf("{\"id\":%s,\"model\":\"%s\",\"dim\":%u,\"tokens_used\":%u,\"truncated\":%s,",
                   id ? id : "null", info->label, e.dim, e.tokens_used, e.truncated ? "true" : "false");
            if (in.type == DC_INPUT_CODE && language) {
                char *lj = cJSON_PrintUnformatted(lang);
                printf("\"language\":%s,", lj ? lj : "null");
                cJSON_free(lj);
            }
            printf("\"embedding\":");
            put_floats(stdout, e.vector, e.dim);
            dc_model_embedding_free(&e);
            if (info->id == DC_MODEL_SPARSE) {
                dc_sparse_vector sv;
                st = dc_splade_encode(m, &in, 1, &sv);
                if (st == DC_OK) {
                    printf(",\"sparse\":[");
                    for (uint32_t k = 0; k < sv.nnz; k++)
                        printf("%s[%u,%.9g]", k ? "," : "", sv.indices[k], (double)sv.values[k]);
                    printf("]");
                    dc_sparse_vector_free(&sv);
                }
            } else if (info->id == DC_MODEL_LATE_INTERACTION) {
                dc_token_matrix t;
                st = dc_colbert_encode(m, &in, mode, &t);
                if (st == DC_OK) {
                    printf(",\"tokens\":");
                    put_rows(stdout, t.data, t.n_tokens, t.dim);
                    dc_token_matrix_free(&t);
                }
            }
            printf("}\n");
        }
    }
    if (st != DC_OK) {
        fprintf(stderr, "dodeca encode: line %zu: %s: %s\n", lineno, dc_status_name(st), dc_error_detail());
        rc = DC_EXIT_FAILURE;
    }
    cJSON_free(id);
    cJSON_Delete(root);
    free(img);
    return rc;
}

int dc_cmd_encode_pretrained(int argc, char **argv) {
    const char *model = NULL, *dir = NULL;
    bool hidden = false;
    dc_colbert_mode mode = DC_COLBERT_AUTO;
    dc_pretrained_options o = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--hidden")) {
            hidden = true;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            ep_usage(stdout);
            return DC_EXIT_OK;
        }
        if (!v) {
            fprintf(stderr, "dodeca encode: unknown option or missing value: %s\n\n", a);
            ep_usage(stderr);
            return DC_EXIT_USAGE;
        }
        i++;
        if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--model-dir")) dir = v;
        else if (!strcmp(a, "--mode")) {
            if (!strcmp(v, "query")) mode = DC_COLBERT_QUERY;
            else if (!strcmp(v, "document")) mode = DC_COLBERT_DOCUMENT;
            else {
                fprintf(stderr, "dodeca encode: --mode must be query or document\n");
                return DC_EXIT_USAGE;
            }
        } else if (!strcmp(a, "--dtype")) {
            if (!dc_weight_format_parse(v, &o.weights) || !strcmp(v, "none")) {
                fprintf(stderr, "dodeca encode: --dtype must be fp32, bf16 or int8\n");
                return DC_EXIT_USAGE;
            }
        } else if (!strcmp(a, "--threads")) {
            if (!parse_u32(v, &o.threads)) return fprintf(stderr, "dodeca encode: bad --threads\n"), DC_EXIT_USAGE;
        } else if (!strcmp(a, "--max-tokens")) {
            if (!parse_u32(v, &o.max_tokens)) return fprintf(stderr, "dodeca encode: bad --max-tokens\n"), DC_EXIT_USAGE;
        } else if (!strcmp(a, "--pooling") || !strcmp(a, "--normalize")) {
            dc_status ps = a[2] == 'p' ? dc_pooling_mode_parse(v, &o.pooling)
                                       : dc_normalize_mode_parse(v, &o.normalize);
            if (ps != DC_OK) {
                fprintf(stderr, "dodeca encode: %s: %s\n", a, dc_error_detail());
                return DC_EXIT_USAGE;
            }
        } else {
            fprintf(stderr, "dodeca encode: unknown option %s\n\n", a);
            ep_usage(stderr);
            return DC_EXIT_USAGE;
        }
    }
    dc_model_id id;
    if (!model || dc_model_id_parse(model, &id) != DC_OK || !dc_pretrained_supports(id)) {
        fprintf(stderr, "dodeca encode: --model must be E1, E5, E6, E7, E8, E10, E11 or E12\n\n");
        ep_usage(stderr);
        return DC_EXIT_USAGE;
    }
    if (!dir) {
        fprintf(stderr, "dodeca encode: --model-dir is required for %s\n\n", model);
        ep_usage(stderr);
        return DC_EXIT_USAGE;
    }
    o.model_dir = dir;
    dc_model *m = NULL;
    dc_status st = dc_pretrained_create(id, &o, &m);
    if (st == DC_OK) st = dc_model_load(m);
    if (st != DC_OK) {
        fprintf(stderr, "dodeca encode: %s: %s\n", dc_status_name(st), dc_error_detail());
        dc_model_destroy(m);
        return DC_EXIT_FAILURE;
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t got;
    int rc = DC_EXIT_OK;
    while ((got = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        size_t len = (size_t)got;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        if (!len) continue;
        if (ep_line(m, line, len, hidden, mode, lineno) != DC_EXIT_OK) rc = DC_EXIT_FAILURE;
    }
    free(line);
    dc_model_destroy(m);
    return rc;
}

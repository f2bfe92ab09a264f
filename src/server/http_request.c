/* Request body parsing for the embedding routes (see http_request.h). */
#include "server/http_request.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "core/base64.h"
#include "core/error.h"
#include "core/utf8.h"
#include "dodeca/pipeline.h"
#include "io/image.h"

static const char *const route_names[DC_HTTP_ROUTE_COUNT] = {
    "/v1/embeddings", "/embed", "/embed_sparse", "/embed_multi", "/similarity",
    "/health",        "/info",  "/metrics",      "/v1/models",  "other"};

const char *dc_http_route_name(dc_http_route r) {
    return (unsigned)r < DC_HTTP_ROUTE_COUNT ? route_names[r] : "other";
}

dc_http_route dc_http_route_of(const char *path) {
    if (!path) return DC_HTTP_ROUTE_OTHER;
    /* OpenAI clients built with base_url ".../v1" post to /v1/embeddings; some send /embeddings. */
    if (!strcmp(path, "/embeddings")) return DC_HTTP_ROUTE_OPENAI;
    for (int i = 0; i < DC_HTTP_ROUTE_OTHER; i++)
        if (!strcmp(path, route_names[i])) return (dc_http_route)i;
    return DC_HTTP_ROUTE_OTHER;
}

dc_status dc_http_model_parse(const char *name, int *out) {
    *out = -1;
    if (!strcasecmp(name, DC_HTTP_FUSED_MODEL) || !strcasecmp(name, "fused") ||
        !strcasecmp(name, DC_PROVIDER_MODEL_NAME))
        return DC_OK;
    dc_model_id id;
    if (dc_model_id_parse(name, &id) == DC_OK) {
        *out = (int)id;
        return DC_OK;
    }
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        const dc_model_info *info = dc_model_info_get((dc_model_id)i);
        if ((info->repo && !strcasecmp(name, info->repo)) || !strcasecmp(name, info->short_name) ||
            !strcasecmp(name, info->name) || !strcasecmp(name, info->label)) {
            *out = i;
            return DC_OK;
        }
    }
    return dc_fail(DC_ERR_MODEL_NOT_FOUND,
                   "model: \"%.64s\" is not served here (use \"%s\", E1..E12, a model name such "
                   "as \"e5-large-v2\" or \"hdc\", or a Hugging Face repo id; GET /info lists them)",
                   name, DC_HTTP_FUSED_MODEL);
}

void dc_http_request_init(dc_http_request *r) {
    memset(r, 0, sizeof *r);
    r->model = -1;
    r->normalize = true;
    r->truncate = true;
    r->role = DC_ROLE_PASSAGE;
    r->type = DC_INPUT_TEXT;
}

void dc_http_request_free(dc_http_request *r) {
    for (size_t i = 0; r->images && i < r->n; i++) free(r->images[i]);
    free(r->images);
    free(r->image_formats);
    free(r->texts);
    free(r->lens);
    cJSON_Delete((cJSON *)r->doc_);
    dc_http_request_init(r);
}

/* Code points in valid UTF-8 (continuation bytes do not start one). */
static uint64_t utf8_chars(const char *s, size_t n) {
    uint64_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static dc_status check_text(const char *field, size_t index, bool indexed, const cJSON *v,
                            const dc_http_limits *lim, const char **text, size_t *len) {
    char where[64];
    if (indexed)
        snprintf(where, sizeof where, "%s[%zu]", field, index);
    else
        snprintf(where, sizeof where, "%s", field);
    if (cJSON_IsNumber(v) || cJSON_IsArray(v))
        return dc_fail(DC_ERR_INVALID_VALUE,
                       "%s: token ids are not accepted; send the text as a string", where);
    if (!cJSON_IsString(v) || !v->valuestring)
        return dc_fail(DC_ERR_INVALID_VALUE, "%s: must be a string", where);
    size_t n = strlen(v->valuestring);
    if (n == 0) return dc_fail(DC_ERR_EMPTY_INPUT, "%s: empty string", where);
    size_t bad = 0;
    if (!dc_utf8_valid(v->valuestring, n, &bad))
        return dc_fail(DC_ERR_INVALID_VALUE, "%s: invalid UTF-8 at byte %zu", where, bad);
    uint64_t chars = utf8_chars(v->valuestring, n);
    if (chars > lim->max_input_chars)
        return dc_fail(DC_ERR_INPUT_TOO_LONG,
                       "%s: %llu characters, more than the limit of %llu (server.max_input_chars)",
                       where, (unsigned long long)chars, (unsigned long long)lim->max_input_chars);
    *text = v->valuestring;
    *len = n;
    return DC_OK;
}

static dc_status alloc_inputs(dc_http_request *r, size_t n) {
    r->texts = calloc(n ? n : 1, sizeof *r->texts);
    r->lens = calloc(n ? n : 1, sizeof *r->lens);
    if (r->type == DC_INPUT_IMAGE) {
        r->images = calloc(n ? n : 1, sizeof *r->images);
        r->image_formats = calloc(n ? n : 1, sizeof *r->image_formats);
    }
    if (!r->texts || !r->lens || (r->type == DC_INPUT_IMAGE && (!r->images || !r->image_formats)))
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "request inputs");
    r->n = n;
    return DC_OK;
}

/* An image input: "data:image/...;base64,<payload>" or the bare payload, decoded, and its
 * format known by its first bytes. URLs are refused: the server fetches nothing. */
static dc_status check_image(const char *field, size_t index, bool indexed, const cJSON *v,
                             uint8_t **bytes, size_t *len, dc_image_format *fmt) {
    char where[64];
    if (indexed) snprintf(where, sizeof where, "%s[%zu]", field, index);
    else snprintf(where, sizeof where, "%s", field);
    if (!cJSON_IsString(v) || !v->valuestring)
        return dc_fail(DC_ERR_INVALID_VALUE, "%s: must be a string (a data: URI or base64)", where);
    const char *s = v->valuestring;
    size_t n = strlen(s);
    if (n == 0) return dc_fail(DC_ERR_EMPTY_INPUT, "%s: empty string", where);
    if (!strncasecmp(s, "http://", 7) || !strncasecmp(s, "https://", 8))
        return dc_fail(DC_ERR_INVALID_VALUE,
                       "%s: image URLs are not fetched; send the image's bytes as base64 or a "
                       "data: URI", where);
    if (!strncasecmp(s, "data:", 5)) {
        const char *comma = memchr(s, ',', n);
        if (!comma || strncasecmp(s + 5, "image/", 6) ||
            (size_t)(comma - s) < 7 || strncasecmp(comma - 7, ";base64", 7))
            return dc_fail(DC_ERR_INVALID_VALUE,
                           "%s: a data: URI must read data:image/<type>;base64,<bytes>", where);
        n -= (size_t)(comma + 1 - s);
        s = comma + 1;
    }
    size_t bad = 0;
    dc_status st = dc_base64_decode(s, n, DC_BASE64_PADDING | DC_BASE64_SPACE, bytes, len, &bad);
    if (st == DC_ERR_INVALID_VALUE)
        return dc_fail(st, bad < n ? "%s: not base64 at character %zu"
                                   : "%s: base64 ends in the middle of a byte", where, bad);
    if (st) return dc_fail_context(st, "%s", where);
    if (*len == 0) return dc_fail(DC_ERR_EMPTY_INPUT, "%s: no image bytes", where);
    if (dc_image_detect(*bytes, *len, fmt) != DC_OK)
        return dc_fail(DC_ERR_INVALID_VALUE, "%s: %zu bytes that are not a PNG, JPEG, WebP or GIF image",
                       where, *len);
    return DC_OK;
}

/* Input i of the request: a text, or an image when the request's type is "image". */
static dc_status check_input(dc_http_request *r, const char *field, size_t i, bool indexed,
                             const cJSON *v, const dc_http_limits *lim) {
    if (r->type == DC_INPUT_IMAGE)
        return check_image(field, i, indexed, v, &r->images[i], &r->lens[i], &r->image_formats[i]);
    return check_text(field, i, indexed, v, lim, &r->texts[i], &r->lens[i]);
}

/* A string or a non-empty array of strings, stored from slot `first` on. */
static dc_status parse_inputs(dc_http_request *r, const char *field, const cJSON *v,
                              const dc_http_limits *lim, size_t first) {
    if (!v) return dc_fail(DC_ERR_EMPTY_INPUT, "%s: missing", field);
    if (cJSON_IsString(v)) {
        dc_status st = alloc_inputs(r, first + 1);
        if (st) return st;
        return check_input(r, field, first, false, v, lim);
    }
    if (!cJSON_IsArray(v))
        return dc_fail(DC_ERR_INVALID_VALUE, "%s: must be a string or an array of strings", field);
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (n == 0) return dc_fail(DC_ERR_EMPTY_INPUT, "%s: empty array", field);
    if (n > lim->max_items)
        return dc_fail(DC_ERR_BATCH, "%s: %zu items, more than the limit of %zu (server.max_batch_items)",
                       field, n, lim->max_items);
    dc_status st = alloc_inputs(r, first + n);
    if (st) return st;
    size_t i = 0;
    for (const cJSON *it = v->child; it; it = it->next, i++) {
        st = check_input(r, field, first + i, true, it, lim);
        if (st) return st;
    }
    return DC_OK;
}

static const cJSON *field_of(const cJSON *obj, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNull(v) ? NULL : v; /* null means "not given", as in the OpenAI API */
}

static dc_status parse_bool(const cJSON *obj, const char *name, bool *out) {
    const cJSON *v = field_of(obj, name);
    if (!v) return DC_OK;
    if (!cJSON_IsBool(v)) return dc_fail(DC_ERR_INVALID_VALUE, "%s: must be true or false", name);
    *out = cJSON_IsTrue(v);
    return DC_OK;
}

static dc_status parse_common(dc_http_request *r, const cJSON *obj) {
    const cJSON *v = field_of(obj, "model");
    if (v) {
        if (!cJSON_IsString(v)) return dc_fail(DC_ERR_INVALID_VALUE, "model: must be a string");
        dc_status st = dc_http_model_parse(v->valuestring, &r->model);
        if (st) return st;
        r->model_name = v->valuestring;
    }
    if ((v = field_of(obj, "encoding_format"))) {
        if (!cJSON_IsString(v) ||
            (strcmp(v->valuestring, "float") && strcmp(v->valuestring, "base64")))
            return dc_fail(DC_ERR_INVALID_VALUE,
                           "encoding_format: must be \"float\" or \"base64\"");
        r->base64 = !strcmp(v->valuestring, "base64");
    }
    if ((v = field_of(obj, "dimensions"))) {
        double d = v->valuedouble;
        if (!cJSON_IsNumber(v) || d != floor(d) || d < 1 || d > 1e9)
            return dc_fail(DC_ERR_INVALID_VALUE, "dimensions: must be a positive integer");
        uint32_t dim = r->model < 0 ? DC_DIM_FUSED : dc_model_info_get((dc_model_id)r->model)->dim;
        if (d > dim)
            return dc_fail(DC_ERR_INVALID_VALUE, "dimensions: %.0f is more than the %u of %s", d,
                           (unsigned)dim,
                           r->model < 0 ? DC_HTTP_FUSED_MODEL
                                        : dc_model_info_get((dc_model_id)r->model)->label);
        r->dimensions = (uint32_t)d;
    }
    if ((v = field_of(obj, "role"))) {
        if (!cJSON_IsString(v) ||
            (strcmp(v->valuestring, "query") && strcmp(v->valuestring, "passage")))
            return dc_fail(DC_ERR_INVALID_VALUE, "role: must be \"query\" or \"passage\"");
        r->role = strcmp(v->valuestring, "query") ? DC_ROLE_PASSAGE : DC_ROLE_QUERY;
    }
    if ((v = field_of(obj, "type"))) {
        if (!cJSON_IsString(v) || (strcmp(v->valuestring, "text") &&
                                   strcmp(v->valuestring, "code") && strcmp(v->valuestring, "image")))
            return dc_fail(DC_ERR_INVALID_VALUE, "type: must be \"text\", \"code\" or \"image\"");
        r->type = !strcmp(v->valuestring, "code")    ? DC_INPUT_CODE
                  : !strcmp(v->valuestring, "image") ? DC_INPUT_IMAGE
                                                     : DC_INPUT_TEXT;
        if (r->type == DC_INPUT_IMAGE && r->route != DC_HTTP_ROUTE_OPENAI &&
            r->route != DC_HTTP_ROUTE_EMBED)
            return dc_fail(DC_ERR_INVALID_VALUE,
                           "type: \"image\" is taken by /v1/embeddings and /embed, not %s",
                           dc_http_route_name(r->route));
    }
    if ((v = field_of(obj, "user")) && !cJSON_IsString(v))
        return dc_fail(DC_ERR_INVALID_VALUE, "user: must be a string");
    dc_status st = parse_bool(obj, "normalize", &r->normalize);
    if (!st) st = parse_bool(obj, "truncate", &r->truncate);
    return st;
}

/* /embed "models": "all" or an array of model names. */
static dc_status parse_per_model(dc_http_request *r, const cJSON *obj) {
    const cJSON *v = field_of(obj, "models");
    if (!v) return DC_OK;
    if (cJSON_IsString(v) && !strcmp(v->valuestring, "all")) {
        r->per_model_mask = DC_ALL_MODELS_MASK;
        return DC_OK;
    }
    if (!cJSON_IsArray(v))
        return dc_fail(DC_ERR_INVALID_VALUE, "models: must be \"all\" or an array of model names");
    size_t i = 0;
    for (const cJSON *it = v->child; it; it = it->next, i++) {
        int id = -1;
        if (!cJSON_IsString(it)) return dc_fail(DC_ERR_INVALID_VALUE, "models[%zu]: must be a string", i);
        dc_status st = dc_http_model_parse(it->valuestring, &id);
        if (st) return dc_fail_context(st, "models[%zu]", i);
        if (id < 0)
            return dc_fail(DC_ERR_INVALID_VALUE,
                           "models[%zu]: the fused vector is always returned; list E1..E12 here", i);
        r->per_model_mask |= 1u << id;
    }
    return DC_OK;
}

static dc_status parse_similarity(dc_http_request *r, const cJSON *obj, const dc_http_limits *lim) {
    const cJSON *in = field_of(obj, "inputs");
    if (!in) return dc_fail(DC_ERR_EMPTY_INPUT, "inputs: missing");
    if (!cJSON_IsObject(in))
        return dc_fail(DC_ERR_INVALID_VALUE,
                       "inputs: must be an object {\"source_sentence\": ..., \"sentences\": [...]}");
    const cJSON *src = field_of(in, "source_sentence");
    const cJSON *list = field_of(in, "sentences");
    if (!src) return dc_fail(DC_ERR_EMPTY_INPUT, "inputs.source_sentence: missing");
    if (!list) return dc_fail(DC_ERR_EMPTY_INPUT, "inputs.sentences: missing");
    if (!cJSON_IsArray(list))
        return dc_fail(DC_ERR_INVALID_VALUE, "inputs.sentences: must be an array of strings");
    dc_http_limits one_less = *lim;
    one_less.max_items = lim->max_items > 1 ? lim->max_items - 1 : 1;
    dc_status st = parse_inputs(r, "inputs.sentences", list, &one_less, 1);
    if (st) return st;
    return check_text("inputs.source_sentence", 0, false, src, lim, &r->texts[0], &r->lens[0]);
}

dc_status dc_http_request_parse(dc_http_route route, const char *body, size_t len,
                                const dc_http_limits *limits, dc_http_request *out) {
    dc_http_request_init(out);
    out->route = route;
    if (route > DC_HTTP_ROUTE_SIMILARITY)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "%s takes no body", dc_http_route_name(route));
    if (!body || len == 0) return dc_fail(DC_ERR_EMPTY_INPUT, "body: empty; send a JSON object");
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (!doc) {
        size_t at = end && end >= body && end <= body + len ? (size_t)(end - body) : 0;
        return dc_fail(DC_ERR_SERIALIZATION, "body: not valid JSON (at byte %zu)", at);
    }
    out->doc_ = doc;
    dc_status st = DC_OK;
    if (!cJSON_IsObject(doc)) {
        st = dc_fail(DC_ERR_INVALID_VALUE, "body: must be a JSON object");
    } else {
        st = parse_common(out, doc);
        if (!st && route == DC_HTTP_ROUTE_EMBED) st = parse_per_model(out, doc);
        if (!st && route == DC_HTTP_ROUTE_SIMILARITY)
            st = parse_similarity(out, doc, limits);
        else if (!st)
            st = parse_inputs(out, route == DC_HTTP_ROUTE_OPENAI ? "input" : "inputs",
                              field_of(doc, route == DC_HTTP_ROUTE_OPENAI ? "input" : "inputs"),
                              limits, 0);
    }
    if (st) {
        dc_http_request_free(out);
        out->route = route;
    }
    return st;
}

/* Request bodies of the embedding routes: JSON → the inputs and options of one call.
 * Pure parsing and validation (no pipeline, no sockets), so it is fuzzed on its own
 * (tests/fuzz/fuzz_http_request.c). Every failure is a dc_status with a detail that names the
 * field at fault ("input[3]: ...", "dimensions: ..."); the server answers them with 422, or 404
 * for DC_ERR_MODEL_NOT_FOUND (an unknown `model`). */
#ifndef DC_SERVER_HTTP_REQUEST_H
#define DC_SERVER_HTTP_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dodeca/types.h"

typedef enum dc_http_route {
    DC_HTTP_ROUTE_OPENAI = 0,  /* POST /v1/embeddings */
    DC_HTTP_ROUTE_EMBED,       /* POST /embed */
    DC_HTTP_ROUTE_SPARSE,      /* POST /embed_sparse */
    DC_HTTP_ROUTE_MULTI,       /* POST /embed_multi */
    DC_HTTP_ROUTE_SIMILARITY,  /* POST /similarity */
    DC_HTTP_ROUTE_HEALTH,      /* GET /health */
    DC_HTTP_ROUTE_INFO,        /* GET /info */
    DC_HTTP_ROUTE_METRICS,     /* GET /metrics */
    DC_HTTP_ROUTE_MODELS,      /* GET /v1/models (OpenAI model list) */
    DC_HTTP_ROUTE_OTHER,       /* anything else (404 / 405) */
} dc_http_route;

#define DC_HTTP_ROUTE_COUNT 10

/* "/v1/embeddings", ... "other": the `route` label of the HTTP metrics. */
const char *dc_http_route_name(dc_http_route r);
/* The route of a path (query string already removed by the HTTP layer). */
dc_http_route dc_http_route_of(const char *path);

/* The name clients use for the fused vector in `model`. */
#define DC_HTTP_FUSED_MODEL "dodeca-fused"
/* `model` value → -1 (fused) or a model id. Accepts dodeca-fused / fused / fusemoe-12-pipeline,
 * the ids E1..E12, the snake_case names, the short names (e5-large-v2) and the Hugging Face
 * repo ids (intfloat/e5-large-v2). Case-insensitive. DC_ERR_MODEL_NOT_FOUND otherwise. */
dc_status dc_http_model_parse(const char *name, int *out);

typedef struct dc_http_limits {
    size_t max_items;          /* server.max_batch_items */
    uint64_t max_input_chars;  /* server.max_input_chars (code points) */
} dc_http_limits;

typedef struct dc_http_request {
    dc_http_route route;
    size_t n;               /* inputs; for /similarity 1 + the sentences (source first) */
    const char **texts;     /* n NUL-free UTF-8 strings, borrowed from the parsed document
                             * (NULL for images) */
    size_t *lens;           /* bytes of each text, or of each decoded image */
    uint8_t **images;       /* type "image": n decoded images, owned; else NULL */
    dc_image_format *image_formats;
    int model;              /* -1: the fused vector; else the model whose vector is returned */
    const char *model_name; /* as the client spelled it (echoed by /v1/embeddings) */
    bool base64;            /* encoding_format "base64" */
    uint32_t dimensions;    /* 0: all; else truncate to this many and renormalise */
    bool normalize;         /* /embed: L2-normalise per-model vectors (default true) */
    bool truncate;          /* /embed: false refuses inputs longer than a model's limit */
    uint32_t per_model_mask;/* /embed: the models whose own vectors are returned too */
    dc_text_role role;      /* "query" | "passage" (default) */
    dc_input_type type;     /* "text" (default) | "code" | "image" (each input a data: URI
                             * or bare base64 of PNG, JPEG, WebP or GIF bytes; /v1/embeddings
                             * and /embed only) */
    void *doc_;             /* owns the strings */
} dc_http_request;

void dc_http_request_init(dc_http_request *r);
void dc_http_request_free(dc_http_request *r);

/* Parses and validates `len` bytes of `body` for `route`. On failure *out is in the init state.
 * Errors: DC_ERR_SERIALIZATION (not JSON: the detail gives the byte offset), DC_ERR_EMPTY_INPUT,
 * DC_ERR_INPUT_TOO_LONG, DC_ERR_BATCH (too many inputs), DC_ERR_INVALID_VALUE (a field of the
 * wrong type or out of range), DC_ERR_MODEL_NOT_FOUND, DC_ERR_OUT_OF_MEMORY. */
dc_status dc_http_request_parse(dc_http_route route, const char *body, size_t len,
                                const dc_http_limits *limits, dc_http_request *out);

#endif

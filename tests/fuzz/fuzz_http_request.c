/* libFuzzer target: HTTP request bodies of `dodeca serve` (JSON → inputs and options), for
 * every embedding route. Whatever the bytes, parsing must not crash or leak; a body that parses
 * must respect the limits (item count, characters per input), hold non-empty valid UTF-8 texts
 * whose lengths match (or, for type "image", decoded bytes of the format it names), and options
 * in range. The error path must leave a detail. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "dodeca/dodeca.h"
#include "io/image.h"
#include "server/http_buf.h"
#include "server/http_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_request(const dc_http_request *r, const dc_http_limits *lim) {
    if (r->n == 0) abort();
    size_t max = lim->max_items + (r->route == DC_HTTP_ROUTE_SIMILARITY ? 1 : 0);
    if (r->n > max) abort();
    if (r->type == DC_INPUT_IMAGE) { /* decoded bytes of a known format, on the two routes */
        if (r->route != DC_HTTP_ROUTE_OPENAI && r->route != DC_HTTP_ROUTE_EMBED) abort();
        for (size_t i = 0; i < r->n; i++) {
            dc_image_format f;
            if (!r->images[i] || r->lens[i] == 0 || r->texts[i]) abort();
            if (dc_image_detect(r->images[i], r->lens[i], &f) != DC_OK || f != r->image_formats[i])
                abort();
        }
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        if (!r->texts[i] || r->lens[i] == 0 || strlen(r->texts[i]) != r->lens[i]) abort();
        if (!dc_utf8_valid(r->texts[i], r->lens[i], NULL)) abort();
        uint64_t chars = 0;
        for (size_t k = 0; k < r->lens[i]; k++) chars += ((unsigned char)r->texts[i][k] & 0xC0) != 0x80;
        if (chars > lim->max_input_chars) abort();
    }
    if (r->model < -1 || r->model >= DC_NUM_MODELS) abort();
    uint32_t dim = r->model < 0 ? DC_DIM_FUSED : dc_model_info_get((dc_model_id)r->model)->dim;
    if (r->dimensions > dim) abort();
    if (r->per_model_mask & ~DC_ALL_MODELS_MASK) abort();
    /* The texts go back out as JSON strings in some answers. */
    dc_http_buf b;
    dc_http_buf_init(&b);
    for (size_t i = 0; i < r->n; i++) dc_http_buf_json_string(&b, r->texts[i], r->lens[i]);
    dc_http_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const dc_http_limits lim = {16, 64};
    static const dc_http_route routes[] = {DC_HTTP_ROUTE_OPENAI, DC_HTTP_ROUTE_EMBED,
                                           DC_HTTP_ROUTE_SPARSE, DC_HTTP_ROUTE_MULTI,
                                           DC_HTTP_ROUTE_SIMILARITY};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        dc_http_request r;
        dc_status st = dc_http_request_parse(routes[i], (const char *)data, size, &lim, &r);
        if (st == DC_OK) {
            check_request(&r, &lim);
        } else if (!dc_error_detail()[0] || r.n || r.texts) {
            abort(); /* a failure names its field and leaves nothing behind */
        }
        dc_http_request_free(&r);
    }
    /* The model names a client may send. */
    char *name = malloc(size + 1);
    if (!name) return 0;
    memcpy(name, data, size);
    name[size] = '\0';
    int model = 0;
    if (dc_http_model_parse(name, &model) == DC_OK && (model < -1 || model >= DC_NUM_MODELS))
        abort();
    free(name);
    return 0;
}

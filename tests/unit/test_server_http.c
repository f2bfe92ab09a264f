/* The server's pure pieces: float text that reads back to the same float32, base64 of float32,
 * JSON string escaping, and request parsing (fields, limits, the field named in errors). */
#include <math.h>

#include "test_support.h"

#include "core/float_text.h"
#include "server/http_buf.h"
#include "server/http_request.h"
#include "server/internal.h"

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static uint32_t rnd32(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 32);
}

static void roundtrip(float v) {
    char s[DC_FLOAT_TEXT_MAX];
    size_t n = dc_format_float(v, s);
    assert_int_equal(n, strlen(s));
    char *end = NULL;
    float back = strtof(s, &end);
    assert_ptr_equal(end, s + n);
    if (memcmp(&back, &v, 4) != 0 && !(v == 0 && back == 0)) {
        print_error("%.9g printed as %s reads back as %.9g\n", (double)v, s, (double)back);
        fail();
    }
}

static void test_float_roundtrip(void **state) {
    (void)state;
    const float special[] = {1.0f, -1.0f, 0.5f, 0.1f, 1e-5f, 1.5e-5f, 9.99999e-6f, 123456789.0f,
                             1e9f, 1e10f, 3.4028235e38f, 1.17549435e-38f, 1.4e-45f, -2.5e-40f,
                             0.999999940f, 9.99999994e-1f, 1e8f, 99999999.0f, 0.0123456789f};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) roundtrip(special[i]);
    for (int i = 0; i < 300000; i++) { /* random bit patterns: every exponent */
        uint32_t u = rnd32();
        float v;
        memcpy(&v, &u, 4);
        if (isfinite(v)) roundtrip(v);
    }
    for (int i = 0; i < 300000; i++) /* unit-vector sized values */
        roundtrip(((float)rnd32() / 4294967296.0f - 0.5f) * 0.2f);
    char s[DC_FLOAT_TEXT_MAX];
    dc_format_float(0.0f, s);
    assert_string_equal(s, "0");
    dc_format_float(NAN, s);
    assert_string_equal(s, "0"); /* JSON has no NaN */
    dc_format_float(0.25f, s);
    assert_string_equal(s, "0.25");
    dc_format_float(-3.0f, s);
    assert_string_equal(s, "-3");
    dc_format_float(1.0f / 16777216.0f, s); /* 2^-24 */
    assert_string_equal(s, "5.96046448e-08");
    dc_format_float(1e20f, s);
    assert_string_equal(s, "1.00000002e+20");
}

static void test_base64_and_strings(void **state) {
    (void)state;
    dc_http_buf b;
    dc_http_buf_init(&b);
    const float v[2] = {1.0f, -2.0f}; /* 00 00 80 3f 00 00 00 c0 */
    dc_http_buf_float_base64(&b, v, 2);
    dc_http_buf_puts(&b, " ");
    dc_http_buf_float_base64(&b, v, 1);
    dc_http_buf_puts(&b, " ");
    dc_http_buf_json_string(&b, "a\"b\\c\n\x01", 7);
    size_t len = 0;
    char *s = dc_http_buf_take(&b, &len);
    assert_non_null(s);
    assert_string_equal(s, "\"AACAPwAAAMA=\" \"AACAPw==\" \"a\\\"b\\\\c\\n\\u0001\"");
    assert_int_equal(len, strlen(s));
    free(s);
}

static const dc_http_limits lim = {4, 10};

static void expect_error(dc_http_route route, const char *body, dc_status st, const char *field) {
    dc_http_request r;
    dc_status got = dc_http_request_parse(route, body, strlen(body), &lim, &r);
    if (got != st || !strstr(dc_error_detail(), field)) {
        print_error("%s: got %s \"%s\", expected %s naming %s\n", body, dc_status_name(got),
                    dc_error_detail(), dc_status_name(st), field);
        fail();
    }
    assert_int_equal(r.n, 0);
    dc_http_request_free(&r);
}

static void test_parse(void **state) {
    (void)state;
    dc_http_request r;
    const char *body = "{\"input\":[\"héllo\",\"b\"],\"model\":\"E9\",\"dimensions\":16,"
                       "\"encoding_format\":\"base64\",\"user\":\"u\"}";
    assert_status(dc_http_request_parse(DC_HTTP_ROUTE_OPENAI, body, strlen(body), &lim, &r), DC_OK);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.texts[0], "héllo");
    assert_int_equal(r.lens[0], 6);
    assert_int_equal(r.model, DC_MODEL_HDC);
    assert_int_equal(r.dimensions, 16);
    assert_true(r.base64);
    dc_http_request_free(&r);

    body = "{\"inputs\":{\"source_sentence\":\"s\",\"sentences\":[\"a\",\"b\",\"c\"]}}";
    assert_status(dc_http_request_parse(DC_HTTP_ROUTE_SIMILARITY, body, strlen(body), &lim, &r), DC_OK);
    assert_int_equal(r.n, 4);
    assert_string_equal(r.texts[0], "s");
    assert_string_equal(r.texts[3], "c");
    dc_http_request_free(&r);

    body = "{\"inputs\":\"x\",\"models\":[\"e5-large-v2\",\"hdc\"],\"role\":\"query\"}";
    assert_status(dc_http_request_parse(DC_HTTP_ROUTE_EMBED, body, strlen(body), &lim, &r), DC_OK);
    assert_int_equal(r.per_model_mask, (1u << DC_MODEL_SEMANTIC) | (1u << DC_MODEL_HDC));
    assert_int_equal(r.role, DC_ROLE_QUERY);
    dc_http_request_free(&r);

    int m = 0;
    assert_status(dc_http_model_parse("intfloat/e5-large-v2", &m), DC_OK);
    assert_int_equal(m, DC_MODEL_SEMANTIC);
    assert_status(dc_http_model_parse("Dodeca-Fused", &m), DC_OK);
    assert_int_equal(m, -1);

    expect_error(DC_HTTP_ROUTE_OPENAI, "{\"input\":", DC_ERR_SERIALIZATION, "byte");
    expect_error(DC_HTTP_ROUTE_OPENAI, "{}", DC_ERR_EMPTY_INPUT, "input: missing");
    expect_error(DC_HTTP_ROUTE_OPENAI, "{\"input\":[\"a\",\"\"]}", DC_ERR_EMPTY_INPUT, "input[1]");
    expect_error(DC_HTTP_ROUTE_OPENAI, "{\"input\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", DC_ERR_BATCH,
                 "max_batch_items");
    expect_error(DC_HTTP_ROUTE_OPENAI, "{\"input\":\"éééééééééééé\"}", DC_ERR_INPUT_TOO_LONG,
                 "12 characters");
    expect_error(DC_HTTP_ROUTE_OPENAI, "{\"input\":\"x\",\"dimensions\":1537}", DC_ERR_INVALID_VALUE,
                 "dimensions");
    expect_error(DC_HTTP_ROUTE_OPENAI, "{\"input\":\"x\",\"model\":\"hdc\",\"dimensions\":1025}",
                 DC_ERR_INVALID_VALUE, "1024 of E9");
    expect_error(DC_HTTP_ROUTE_OPENAI, "{\"input\":\"x\",\"model\":\"gpt\"}", DC_ERR_MODEL_NOT_FOUND,
                 "model");
    expect_error(DC_HTTP_ROUTE_OPENAI, "{\"input\":[1,2]}", DC_ERR_INVALID_VALUE, "token ids");
    expect_error(DC_HTTP_ROUTE_EMBED, "{\"inputs\":\"x\",\"truncate\":1}", DC_ERR_INVALID_VALUE,
                 "truncate");
    expect_error(DC_HTTP_ROUTE_SIMILARITY,
                 "{\"inputs\":{\"source_sentence\":\"s\",\"sentences\":[\"a\",\"b\",\"c\",\"d\"]}}",
                 DC_ERR_BATCH, "inputs.sentences");
}

/* Images: data: URIs or bare base64 (whitespace, no padding), decoded and known by their first
 * bytes; URLs, other data: URIs, broken base64 and bytes that are no image are refused, naming
 * the input. */
static void test_images(void **state) {
    (void)state;
    static const uint8_t png[15] = {0x89, 'P', 'N', 'G', 13, 10, 26, 10, 'I', 'H', 'D', 'R', 'x', 'y', 'z'};
    static const uint8_t gif[11] = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0};
    dc_http_request r;
    const char *body = "{\"input\":[\"data:image/png;base64,iVBORw0KGgpJSERSeHl6\","
                       "\"R0lG\\nODlhAQAB AAA\"],\"type\":\"image\",\"model\":\"E10\"}";
    assert_status(dc_http_request_parse(DC_HTTP_ROUTE_OPENAI, body, strlen(body), &lim, &r), DC_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.type, DC_INPUT_IMAGE);
    assert_int_equal(r.lens[0], sizeof png);
    assert_memory_equal(r.images[0], png, sizeof png);
    assert_int_equal(r.image_formats[0], DC_IMAGE_PNG);
    assert_int_equal(r.lens[1], sizeof gif);
    assert_memory_equal(r.images[1], gif, sizeof gif);
    assert_int_equal(r.image_formats[1], DC_IMAGE_GIF);
    dc_http_request_free(&r);
    body = "{\"inputs\":\"R0lGODlhAQABAAA=\",\"type\":\"image\"}";
    assert_status(dc_http_request_parse(DC_HTTP_ROUTE_EMBED, body, strlen(body), &lim, &r), DC_OK);
    assert_int_equal(r.lens[0], sizeof gif);
    dc_http_request_free(&r);

    expect_error(DC_HTTP_ROUTE_OPENAI, "{\"input\":\"https://x/cat.png\",\"type\":\"image\"}",
                 DC_ERR_INVALID_VALUE, "URLs are not fetched");
    expect_error(DC_HTTP_ROUTE_OPENAI,
                 "{\"input\":[\"R0lGODlhAQABAAA=\",\"data:text/plain;base64,aGk=\"],\"type\":\"image\"}",
                 DC_ERR_INVALID_VALUE, "input[1]: a data: URI must read");
    expect_error(DC_HTTP_ROUTE_OPENAI, "{\"input\":\"R0l*ODlh\",\"type\":\"image\"}",
                 DC_ERR_INVALID_VALUE, "not base64 at character 3");
    expect_error(DC_HTTP_ROUTE_OPENAI, "{\"input\":\"R0lGO\",\"type\":\"image\"}",
                 DC_ERR_INVALID_VALUE, "middle of a byte");
    expect_error(DC_HTTP_ROUTE_OPENAI, "{\"input\":\"R0lGODlhAQABAAA=A\",\"type\":\"image\"}",
                 DC_ERR_INVALID_VALUE, "not base64 at character 16");
    expect_error(DC_HTTP_ROUTE_OPENAI, "{\"input\":\"aGVsbG8gd29ybGQ=\",\"type\":\"image\"}",
                 DC_ERR_INVALID_VALUE, "11 bytes that are not a PNG");
    expect_error(DC_HTTP_ROUTE_OPENAI, "{\"input\":[7],\"type\":\"image\"}", DC_ERR_INVALID_VALUE,
                 "input[0]: must be a string");
    expect_error(DC_HTTP_ROUTE_OPENAI, "{\"input\":\"data:image/png;base64,\",\"type\":\"image\"}",
                 DC_ERR_EMPTY_INPUT, "no image bytes");
    expect_error(DC_HTTP_ROUTE_SPARSE, "{\"inputs\":\"R0lGODlhAQABAAA=\",\"type\":\"image\"}",
                 DC_ERR_INVALID_VALUE, "type");
    expect_error(DC_HTTP_ROUTE_OPENAI, "{\"input\":\"x\",\"type\":\"audio\"}", DC_ERR_INVALID_VALUE,
                 "type");
}

/* Pipeline statuses → HTTP: what clients retry (429, 503), what they fix (422), what is ours. */
static void test_status_map(void **state) {
    (void)state;
    const struct {
        dc_status st;
        unsigned code;
        const char *type;
    } cases[] = {
        {DC_ERR_OVERLOADED, 429, "Overloaded"},     {DC_ERR_TIMEOUT, 504, "Timeout"},
        {DC_ERR_EMPTY_INPUT, 422, "Validation"},    {DC_ERR_INPUT_TOO_LONG, 422, "Validation"},
        {DC_ERR_BATCH, 422, "Validation"},          {DC_ERR_SERIALIZATION, 422, "Validation"},
        {DC_ERR_UNSUPPORTED_MODALITY, 422, "Validation"},
        {DC_ERR_MODEL_NOT_FOUND, 404, "NotFound"},  {DC_ERR_FUSION, 503, "Unhealthy"},
        {DC_ERR_NOT_INITIALIZED, 503, "Unhealthy"}, {DC_ERR_MODEL_LOAD, 424, "Backend"},
        {DC_ERR_GPU, 424, "Backend"},               {DC_ERR_INTERNAL, 500, "Internal"},
        {DC_ERR_CANCELLED, 499, "Cancelled"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned code = 0;
        const char *type = NULL;
        dc_http_status_map(cases[i].st, &code, &type);
        assert_int_equal(code, cases[i].code);
        assert_string_equal(type, cases[i].type);
    }
    dc_http_response r = {0};
    dc_http_error(&r, 429, "Overloaded", "queue \"%s\" full", "E1");
    assert_int_equal(r.code, 429);
    assert_true(r.retry_after);
    assert_string_equal(r.body, "{\"error\":\"queue \\\"E1\\\" full\",\"error_type\":\"Overloaded\"}");
    free(r.body);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_float_roundtrip),
        cmocka_unit_test(test_base64_and_strings),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_images),
        cmocka_unit_test(test_status_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* `dodeca tokenize`: JSON lines in, ids and code-point offsets out. The command is compiled in
 * here and driven on memory streams, so it is tested whether or not main.c dispatches to it. */
#define _DEFAULT_SOURCE /* fmemopen, open_memstream */
#include "test_support.h"

#include <cjson/cJSON.h>

#include "cli/cmd_tokenize.c"

typedef struct cli_out {
    int rc;
    char *out, *err;
    size_t out_len, err_len;
} cli_out;

static cli_out run(const char *input, int argc, const char **argv) {
    cli_out r;
    memset(&r, 0, sizeof r);
    FILE *in = fmemopen((void *)input, strlen(input), "r");
    FILE *out = open_memstream(&r.out, &r.out_len);
    FILE *err = open_memstream(&r.err, &r.err_len);
    assert_non_null(in);
    r.rc = run_tokenize(argc, (char **)argv, in, out, err);
    fclose(in);
    fclose(out);
    fclose(err);
    return r;
}

static void drop(cli_out *r) {
    free(r->out);
    free(r->err);
}

static const char *fixture(void) { return dc_test_data_path("tokenizer/bert_tiny.json"); }

/* The n-th output line parsed. */
static cJSON *line_json(const cli_out *r, int n) {
    const char *p = r->out;
    for (int i = 0; i < n && p; i++) {
        p = strchr(p, '\n');
        if (p) p++;
    }
    assert_non_null(p);
    const char *e = strchr(p, '\n');
    assert_non_null(e);
    cJSON *j = cJSON_ParseWithLength(p, (size_t)(e - p));
    assert_non_null(j);
    return j;
}

/* The same text through the library, for comparison. */
static void expect_ids(const cJSON *rec, const char *text, size_t len, const dc_encode_options *o) {
    dc_tokenizer *tok;
    assert_ok(dc_tokenizer_load(fixture(), &tok));
    dc_encoding e;
    assert_ok(dc_tokenizer_encode(tok, text, len, o, &e));
    const cJSON *ids = cJSON_GetObjectItem(rec, "ids"), *offs = cJSON_GetObjectItem(rec, "offsets");
    assert_int_equal(cJSON_GetArraySize(ids), e.len);
    assert_int_equal(cJSON_GetArraySize(offs), e.len);
    for (size_t i = 0; i < e.len; i++) {
        assert_int_equal((uint32_t)cJSON_GetArrayItem(ids, (int)i)->valuedouble, e.ids[i]);
        const cJSON *p = cJSON_GetArrayItem(offs, (int)i);
        assert_int_equal((uint32_t)cJSON_GetArrayItem(p, 0)->valuedouble, e.offsets[i].start);
        assert_int_equal((uint32_t)cJSON_GetArrayItem(p, 1)->valuedouble, e.offsets[i].end);
    }
    dc_encoding_free(&e);
    dc_tokenizer_free(tok);
}

static void test_lines(void **state) {
    (void)state;
    const char *argv[] = {"tokenize", "--tokenizer", fixture()};
    cli_out r = run("{\"id\": 1, \"text\": \"Hello, world!\"}\n"
                    "\n"
                    "{\"text\": \"caf\\u00e9 x\\u0000y\", \"id\": \"b-2\"}\n"
                    "{\"id\": {\"nested\": [1, 2]}, \"text\": \"\"}\n",
                    3, argv);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.err_len, 0);
    dc_encode_options o;
    dc_tokenizer_default_options(NULL, &o);
    cJSON *a = line_json(&r, 0), *b = line_json(&r, 1), *c = line_json(&r, 2);
    assert_int_equal(cJSON_GetObjectItem(a, "id")->valuedouble, 1);
    expect_ids(a, "Hello, world!", 13, &o);
    assert_string_equal(cJSON_GetObjectItem(b, "id")->valuestring, "b-2");
    expect_ids(b, "caf\xc3\xa9 x\0y", 9, &o);
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(c, "id")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(c, "ids")), 2);
    assert_null(cJSON_GetObjectItem(a, "byte_offsets"));
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(c);
    drop(&r);
}

static void test_options(void **state) {
    (void)state;
    const char *argv[] = {"tokenize", "--tokenizer", fixture(), "--max-length", "4", "--pad-to", "6",
                          "--byte-offsets"};
    cli_out r = run("{\"id\": 0, \"text\": \"the quick brown fox\"}\n", 8, argv);
    assert_int_equal(r.rc, 0);
    cJSON *a = line_json(&r, 0);
    dc_tokenizer *tok;
    assert_ok(dc_tokenizer_load(fixture(), &tok));
    dc_encode_options o;
    dc_tokenizer_default_options(tok, &o);
    o.truncation = (dc_truncation){true, 4, 0, DC_TRUNC_LONGEST_FIRST, DC_SIDE_RIGHT};
    o.padding = (dc_padding){true, true, 6, 0, (uint32_t)dc_tokenizer_token_to_id(tok, "[PAD]"), 0,
                             DC_SIDE_RIGHT};
    dc_tokenizer_free(tok);
    expect_ids(a, "the quick brown fox", 19, &o);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(a, "ids")), 6);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(a, "byte_offsets")), 6);
    cJSON_Delete(a);
    drop(&r);

    const char *argv2[] = {"tokenize", "--tokenizer", fixture(), "--no-special-tokens"};
    r = run("{\"id\": 0, \"text\": \"fox\"}\n", 4, argv2);
    assert_int_equal(r.rc, 0);
    a = line_json(&r, 0);
    o.truncation.enabled = false;
    o.padding.enabled = false;
    o.add_special_tokens = false;
    expect_ids(a, "fox", 3, &o);
    cJSON_Delete(a);
    drop(&r);
}

static void test_bad_lines_and_usage(void **state) {
    (void)state;
    const char *argv[] = {"tokenize", "--tokenizer", fixture()};
    cli_out r = run("{\"id\": 5}\nnot json\n{\"id\": 6, \"text\": \"ok\"}\n{\"id\": 7, \"text\": \"\\ud800\"}\n",
                    3, argv);
    assert_int_equal(r.rc, DC_EXIT_FAILURE); /* some lines failed; the others were written */
    cJSON *a = line_json(&r, 0), *b = line_json(&r, 1), *c = line_json(&r, 2), *d = line_json(&r, 3);
    assert_non_null(cJSON_GetObjectItem(a, "error"));
    assert_non_null(cJSON_GetObjectItem(b, "error"));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(b, "id")));
    assert_non_null(cJSON_GetObjectItem(c, "ids"));
    assert_non_null(cJSON_GetObjectItem(d, "ids")); /* a lone surrogate decodes to U+FFFD */
    assert_non_null(strstr(r.err, "line 1"));
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(c);
    cJSON_Delete(d);
    drop(&r);

    const char *none[] = {"tokenize"};
    r = run("", 1, none);
    assert_int_equal(r.rc, DC_EXIT_USAGE);
    drop(&r);
    const char *unknown[] = {"tokenize", "--tokenizer", fixture(), "--frobnicate"};
    r = run("", 4, unknown);
    assert_int_equal(r.rc, DC_EXIT_USAGE);
    assert_non_null(strstr(r.err, "--frobnicate"));
    drop(&r);
    const char *badn[] = {"tokenize", "--tokenizer", fixture(), "--max-length", "ten"};
    r = run("", 5, badn);
    assert_int_equal(r.rc, DC_EXIT_USAGE);
    drop(&r);
    const char *missing[] = {"tokenize", "--tokenizer", "/nonexistent/tok.json"};
    r = run("", 3, missing);
    assert_int_equal(r.rc, DC_EXIT_FAILURE);
    assert_non_null(strstr(r.err, "/nonexistent/tok.json"));
    drop(&r);
    const char *help[] = {"tokenize", "--help"};
    r = run("", 2, help);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "--max-length"));
    drop(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_bad_lines_and_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

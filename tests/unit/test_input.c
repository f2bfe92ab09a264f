#include <math.h>

#include "test_support.h"

static const char hello[] = "hello world";

static void test_constructors_set_type_and_payload(void **state) {
    (void)state;
    dc_input t = dc_input_text(hello, 11, DC_ROLE_QUERY);
    assert_int_equal(t.type, DC_INPUT_TEXT);
    assert_int_equal(t.role, DC_ROLE_QUERY);
    assert_int_equal(dc_input_byte_size(&t), 11);
    dc_input c = dc_input_code("fn main() {}", 12, "rust");
    assert_int_equal(c.type, DC_INPUT_CODE);
    assert_string_equal(c.language, "rust");
    static const uint8_t png[] = {0x89, 'P', 'N', 'G'};
    dc_input im = dc_input_image(png, sizeof png, DC_IMAGE_PNG);
    assert_int_equal(im.type, DC_INPUT_IMAGE);
    assert_int_equal(dc_input_byte_size(&im), 4);
    assert_false(t.has_t_event || t.has_t_ref || t.has_position);
}

static void test_valid_inputs_pass(void **state) {
    (void)state;
    static const uint8_t bytes[] = {1, 2, 3};
    dc_input ok[] = {
        dc_input_text(hello, 11, DC_ROLE_PASSAGE),
        dc_input_code("x = 1", 5, NULL),
        dc_input_image(bytes, 3, DC_IMAGE_WEBP),
        dc_input_audio(bytes, 3, 16000, 2),
        dc_input_text("caf\xc3\xa9 \xf0\x9f\x98\x80", 10, DC_ROLE_QUERY),
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) assert_ok(dc_input_validate(&ok[i]));
}

static void test_empty_content_is_rejected(void **state) {
    (void)state;
    dc_input t = dc_input_text("", 0, DC_ROLE_PASSAGE);
    assert_status(dc_input_validate(&t), DC_ERR_EMPTY_INPUT);
    assert_detail_contains("text");
    dc_input c = dc_input_code(NULL, 0, "c");
    assert_status(dc_input_validate(&c), DC_ERR_EMPTY_INPUT);
    dc_input im = dc_input_image(NULL, 0, DC_IMAGE_PNG);
    assert_status(dc_input_validate(&im), DC_ERR_EMPTY_INPUT);
    assert_detail_contains("image");
}

static void test_invalid_utf8_names_offset(void **state) {
    (void)state;
    const char *bad[] = {
        "ab\xff",         /* invalid lead byte */
        "ab\xc3",         /* truncated sequence */
        "ab\xc0\xaf",     /* overlong '/' */
        "ab\xed\xa0\x80", /* UTF-16 surrogate */
        "ab\xf4\x90\x80\x80", /* above U+10FFFF */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        dc_input t = dc_input_text(bad[i], strlen(bad[i]), DC_ROLE_PASSAGE);
        assert_status(dc_input_validate(&t), DC_ERR_INVALID_VALUE);
        assert_detail_contains("byte offset 2");
    }
    dc_input c = dc_input_code("ok", 2, "ru\xffst");
    assert_status(dc_input_validate(&c), DC_ERR_INVALID_VALUE);
    assert_detail_contains("language");
}

static void test_audio_rules(void **state) {
    (void)state;
    static const uint8_t pcm[] = {0, 0};
    dc_input a = dc_input_audio(pcm, 2, 0, 1);
    assert_status(dc_input_validate(&a), DC_ERR_INVALID_VALUE);
    assert_detail_contains("sample_rate");
    a = dc_input_audio(pcm, 2, 16000, 3);
    assert_status(dc_input_validate(&a), DC_ERR_INVALID_VALUE);
    assert_detail_contains("channels");
}

static void test_bad_enums_and_times(void **state) {
    (void)state;
    dc_input t = dc_input_text(hello, 11, (dc_text_role)7);
    assert_status(dc_input_validate(&t), DC_ERR_INVALID_VALUE);
    assert_detail_contains("role");
    static const uint8_t b[] = {1};
    dc_input im = dc_input_image(b, 1, (dc_image_format)9);
    assert_status(dc_input_validate(&im), DC_ERR_INVALID_VALUE);
    t = dc_input_text(hello, 11, DC_ROLE_PASSAGE);
    t.type = (dc_input_type)12;
    assert_status(dc_input_validate(&t), DC_ERR_INVALID_VALUE);
    t = dc_input_text(hello, 11, DC_ROLE_PASSAGE);
    t.has_t_event = true;
    t.t_event = NAN;
    assert_status(dc_input_validate(&t), DC_ERR_INVALID_VALUE);
    assert_detail_contains("t_event");
    t.t_event = 1.7e9;
    t.has_t_ref = true;
    t.t_ref = INFINITY;
    assert_status(dc_input_validate(&t), DC_ERR_INVALID_VALUE);
    assert_detail_contains("t_ref");
    t.t_ref = 1.7e9;
    t.has_position = true;
    t.position = -1;
    assert_status(dc_input_validate(&t), DC_ERR_INVALID_VALUE);
    assert_detail_contains("position");
    t.position = 3;
    assert_ok(dc_input_validate(&t));
    t.instruction = "";
    assert_status(dc_input_validate(&t), DC_ERR_INVALID_VALUE);
    assert_status(dc_input_validate(NULL), DC_ERR_INVALID_ARGUMENT);
}

/* Golden values come from an independent Python implementation of the canonical encoding
 * (tests/data/hash/gen_input_hashes.py); the hash is stored with results and keys caches, so it
 * must not drift. */
static void expect_golden_hash(const char *name, const dc_input *in) {
    size_t len;
    char *text = dc_test_read_file(dc_test_data_path("hash/input_hashes.txt"), &len);
    assert_non_null(text);
    char want[64] = "";
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        size_t n = strlen(name);
        if (strncmp(line, name, n) == 0 && line[n] == ' ') snprintf(want, sizeof want, "%s", line + n + 1);
    }
    free(text);
    if (!want[0]) fail_msg("no golden hash named %s", name);
    char hex[33];
    dc_hash128_hex(dc_input_hash(in), hex);
    if (strcmp(hex, want) != 0) fail_msg("%s: hash %s, golden %s", name, hex, want);
}

static void test_hash_matches_independent_implementation(void **state) {
    (void)state;
    dc_input t = dc_input_text(hello, 11, DC_ROLE_PASSAGE);
    expect_golden_hash("text_passage", &t);
    const char *cafe = "caf\xc3\xa9 \xe2\x98\x95";
    dc_input q = dc_input_text(cafe, strlen(cafe), DC_ROLE_QUERY);
    q.instruction = "Represent this sentence";
    q.has_t_event = true, q.t_event = 1700000000.25;
    q.has_t_ref = true, q.t_ref = 1700003600.0;
    q.has_position = true, q.position = 7;
    expect_golden_hash("text_query_instruction_times", &q);
    dc_input c = dc_input_code("fn main() {}", 12, "rust");
    expect_golden_hash("code_rust", &c);
    static const uint8_t png[] = {0x89, 0x50, 0x4E, 0x47};
    dc_input im = dc_input_image(png, 4, DC_IMAGE_PNG);
    expect_golden_hash("image_png", &im);
    static const uint8_t pcm[] = {0, 1, 2, 3};
    dc_input a = dc_input_audio(pcm, 4, 16000, 1);
    expect_golden_hash("audio_16k_mono", &a);
    char copy[] = "hello world"; /* the hash depends on bytes, not on addresses */
    dc_input t2 = dc_input_text(copy, 11, DC_ROLE_PASSAGE);
    assert_true(dc_hash128_equal(dc_input_hash(&t), dc_input_hash(&t2)));
}

static void test_hash_distinguishes_every_field(void **state) {
    (void)state;
    dc_input base = dc_input_text(hello, 11, DC_ROLE_PASSAGE);
    dc_hash128 h0 = dc_input_hash(&base);
    dc_input v[8];
    for (int i = 0; i < 8; i++) v[i] = base;
    v[0].role = DC_ROLE_QUERY;
    v[1].instruction = "Represent this";
    v[2].content_len = 10;
    v[3].has_t_event = true;
    v[4].has_t_ref = true, v[4].t_ref = 5;
    v[5].has_position = true;
    v[6].type = DC_INPUT_CODE; /* same bytes, other type */
    v[7].has_t_event = true, v[7].t_event = 1.0;
    dc_hash128 seen[9] = {h0};
    for (int i = 0; i < 8; i++) {
        seen[i + 1] = dc_input_hash(&v[i]);
        for (int j = 0; j <= i; j++) assert_false(dc_hash128_equal(seen[i + 1], seen[j]));
    }
    /* t_event 0.0 and -0.0 are the same instant. */
    dc_input z1 = base, z2 = base;
    z1.has_t_event = z2.has_t_event = true;
    z1.t_event = 0.0;
    z2.t_event = -0.0;
    assert_true(dc_hash128_equal(dc_input_hash(&z1), dc_input_hash(&z2)));
    /* Fields a type does not use are not hashed. */
    dc_input c1 = dc_input_code("x", 1, "c"), c2 = c1;
    c2.role = DC_ROLE_QUERY;
    assert_true(dc_hash128_equal(dc_input_hash(&c1), dc_input_hash(&c2)));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constructors_set_type_and_payload),
        cmocka_unit_test(test_valid_inputs_pass),
        cmocka_unit_test(test_empty_content_is_rejected),
        cmocka_unit_test(test_invalid_utf8_names_offset),
        cmocka_unit_test(test_audio_rules),
        cmocka_unit_test(test_bad_enums_and_times),
        cmocka_unit_test(test_hash_matches_independent_implementation),
        cmocka_unit_test(test_hash_distinguishes_every_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

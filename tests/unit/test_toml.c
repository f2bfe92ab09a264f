/* The TOML subset parser: each supported feature, and each error with its line, column and key. */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/toml.h"
#include "test_support.h"

static dc_toml_table *parse_ok(const char *text) {
    dc_toml_table *t = NULL;
    assert_ok(dc_toml_parse(text, strlen(text), "t.toml", &t));
    assert_non_null(t);
    return t;
}

/* Parses text expecting DC_ERR_CONFIG; the detail must contain each non-NULL needle. */
#define FAILS(text, n1, n2)                                                                        \
    do {                                                                                           \
        dc_toml_table *t_ = (dc_toml_table *)1;                                                    \
        const char *s_ = (text);                                                                   \
        assert_status(dc_toml_parse(s_, strlen(s_), "t.toml", &t_), DC_ERR_CONFIG);                \
        assert_null(t_);                                                                           \
        if (n1) assert_detail_contains(n1);                                                        \
        if (n2) assert_detail_contains(n2);                                                        \
    } while (0)

static const dc_toml_value *path(const dc_toml_table *t, const char *p) {
    const dc_toml_value *v = dc_toml_get_path(t, p);
    if (!v) fail_msg("missing %s", p);
    return v;
}

static void test_comments_blank_lines_and_crlf(void **state) {
    (void)state;
    dc_toml_table *t = parse_ok("# leading comment\r\n\r\n  a = 1 # trailing\r\n\t\n# end");
    assert_int_equal(t->len, 1);
    assert_int_equal(path(t, "a")->as.integer, 1);
    dc_toml_free(t);
    t = parse_ok("");
    assert_int_equal(t->len, 0);
    dc_toml_free(t);
    t = parse_ok("\xEF\xBB\xBFk = true\n"); /* a UTF-8 byte-order mark is skipped */
    assert_true(path(t, "k")->as.boolean);
    dc_toml_free(t);
}

static void test_tables_and_dotted_headers(void **state) {
    (void)state;
    dc_toml_table *t = parse_ok("top = 1\n"
                                "[models]\n"
                                "dir = \"./m\"\n"
                                "[models.semantic]\n"
                                "device = \"cpu\"\n"
                                "[ models . late_interaction ]  # spaces around dots\n"
                                "device = \"auto\"\n"
                                "[x.y.z]\n"
                                "[x]\n" /* an implicit table may be defined once afterwards */
                                "w = 2\n");
    assert_string_equal(path(t, "models.dir")->as.string.data, "./m");
    assert_string_equal(path(t, "models.semantic.device")->as.string.data, "cpu");
    assert_string_equal(path(t, "models.late_interaction.device")->as.string.data, "auto");
    assert_int_equal(path(t, "x.w")->as.integer, 2);
    assert_int_equal(path(t, "x.y.z")->type, DC_TOML_TABLE);
    const dc_toml_table *models = dc_toml_get_table(t, "models");
    assert_non_null(models);
    assert_int_equal(models->len, 3); /* dir, semantic, late_interaction in file order */
    assert_string_equal(models->entries[0].key, "dir");
    assert_string_equal(models->entries[1].key, "semantic");
    assert_string_equal(models->entries[2].key, "late_interaction");
    dc_toml_free(t);
}

static void test_bare_quoted_and_dotted_keys(void **state) {
    (void)state;
    dc_toml_table *t = parse_ok("bare_key-1 = 1\n"
                                "\"quoted key\" = 2\n"
                                "'literal key' = 3\n"
                                "\"\" = 4\n"
                                "a.b.c = 5\n"
                                "a . b . d = 6\n"
                                "\"dotted.inside\" = 7\n"
                                "[fruit]\n"
                                "apple.color = \"red\"\n"
                                "[fruit.apple.texture]\n" /* sub-table of a dotted table */
                                "smooth = true\n");
    assert_int_equal(dc_toml_get(t, "bare_key-1")->as.integer, 1);
    assert_int_equal(dc_toml_get(t, "quoted key")->as.integer, 2);
    assert_int_equal(dc_toml_get(t, "literal key")->as.integer, 3);
    assert_int_equal(dc_toml_get(t, "")->as.integer, 4);
    assert_int_equal(path(t, "a.b.c")->as.integer, 5);
    assert_int_equal(path(t, "a.b.d")->as.integer, 6);
    assert_int_equal(dc_toml_get(t, "dotted.inside")->as.integer, 7);
    assert_string_equal(path(t, "fruit.apple.color")->as.string.data, "red");
    assert_true(path(t, "fruit.apple.texture.smooth")->as.boolean);
    dc_toml_free(t);
}

static void test_basic_string_escapes(void **state) {
    (void)state;
    dc_toml_table *t = parse_ok("s = \"a\\b\\t\\n\\f\\r\\\"\\\\z\"\n"
                                "u = \"\\u00e9\\u20AC\\U0001F600\"\n"
                                "raw = \"caf\xC3\xA9 \xE2\x82\xAC\"\n"
                                "tab = \"a\tb\"\n");
    const dc_toml_value *s = path(t, "s");
    assert_int_equal(s->as.string.len, 9);
    assert_memory_equal(s->as.string.data, "a\b\t\n\f\r\"\\z", 10);
    assert_string_equal(path(t, "u")->as.string.data, "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
    assert_string_equal(path(t, "raw")->as.string.data, "caf\xC3\xA9 \xE2\x82\xAC");
    assert_string_equal(path(t, "tab")->as.string.data, "a\tb");
    dc_toml_free(t);
}

static void test_literal_strings(void **state) {
    (void)state;
    dc_toml_table *t = parse_ok("path = 'C:\\Users\\x\\n'\nq = 'say \"hi\"'\n");
    assert_string_equal(path(t, "path")->as.string.data, "C:\\Users\\x\\n");
    assert_string_equal(path(t, "q")->as.string.data, "say \"hi\"");
    dc_toml_free(t);
}

static void test_multiline_strings(void **state) {
    (void)state;
    dc_toml_table *t = parse_ok("a = \"\"\"\nline1\nline2\"\"\"\n"
                                "b = \"\"\"one \\\n     two \\\n\n  three\"\"\"\n"
                                "c = '''\nraw \\n text\n'''\n"
                                "d = \"\"\"quote \"\" inside\"\"\"\"\"\n"
                                "e = '''x'''''\n"
                                "f = \"\"\"crlf\r\nline\"\"\"\n");
    assert_string_equal(path(t, "a")->as.string.data, "line1\nline2");
    assert_string_equal(path(t, "b")->as.string.data, "one two three");
    assert_string_equal(path(t, "c")->as.string.data, "raw \\n text\n");
    assert_string_equal(path(t, "d")->as.string.data, "quote \"\" inside\"\"");
    assert_string_equal(path(t, "e")->as.string.data, "x''");
    assert_string_equal(path(t, "f")->as.string.data, "crlf\nline");
    assert_int_equal(path(t, "f")->line, 13);
    dc_toml_free(t);
}

static void test_integers(void **state) {
    (void)state;
    dc_toml_table *t = parse_ok("a = 42\nb = +17\nc = -5\nd = 0\ne = 1_000_000\n"
                                "f = 0xDEAD_beef\ng = 0o755\nh = 0b1101\n"
                                "max = 9223372036854775807\nmin = -9223372036854775808\n"
                                "hmax = 0x7FFFFFFFFFFFFFFF\nneg0 = -0\n");
    int64_t v;
    assert_true(dc_toml_get_int(t, "a", &v) && v == 42);
    assert_true(dc_toml_get_int(t, "b", &v) && v == 17);
    assert_true(dc_toml_get_int(t, "c", &v) && v == -5);
    assert_true(dc_toml_get_int(t, "d", &v) && v == 0);
    assert_true(dc_toml_get_int(t, "e", &v) && v == 1000000);
    assert_true(dc_toml_get_int(t, "f", &v) && v == 0xDEADBEEF);
    assert_true(dc_toml_get_int(t, "g", &v) && v == 0755);
    assert_true(dc_toml_get_int(t, "h", &v) && v == 13);
    assert_true(dc_toml_get_int(t, "max", &v) && v == INT64_MAX);
    assert_true(dc_toml_get_int(t, "min", &v) && v == INT64_MIN);
    assert_true(dc_toml_get_int(t, "hmax", &v) && v == INT64_MAX);
    assert_true(dc_toml_get_int(t, "neg0", &v) && v == 0);
    double d;
    assert_true(dc_toml_get_float(t, "a", &d) && d == 42.0); /* integers read as floats too */
    dc_toml_free(t);
}

static void test_floats(void **state) {
    (void)state;
    dc_toml_table *t = parse_ok("a = 1.5\nb = -0.01\nc = 5e+22\nd = 1e06\ne = -2E-2\n"
                                "f = 6.626e-34\ng = 224_617.445_991\nh = inf\ni = -inf\n"
                                "j = nan\nk = +nan\nl = -0.0\nm = 1e-400\n");
    double v;
    assert_true(dc_toml_get_float(t, "a", &v) && v == 1.5);
    assert_true(dc_toml_get_float(t, "b", &v) && v == -0.01);
    assert_true(dc_toml_get_float(t, "c", &v) && v == 5e22);
    assert_true(dc_toml_get_float(t, "d", &v) && v == 1e6);
    assert_true(dc_toml_get_float(t, "e", &v) && v == -2e-2);
    assert_true(dc_toml_get_float(t, "f", &v) && v == 6.626e-34);
    assert_true(dc_toml_get_float(t, "g", &v) && v == 224617.445991);
    assert_true(dc_toml_get_float(t, "h", &v) && isinf(v) && v > 0);
    assert_true(dc_toml_get_float(t, "i", &v) && isinf(v) && v < 0);
    assert_true(dc_toml_get_float(t, "j", &v) && isnan(v));
    assert_true(dc_toml_get_float(t, "k", &v) && isnan(v));
    assert_true(dc_toml_get_float(t, "l", &v) && v == 0.0 && signbit(v));
    assert_true(dc_toml_get_float(t, "m", &v) && v == 0.0); /* underflow rounds to zero */
    assert_int_equal(path(t, "a")->type, DC_TOML_FLOAT);
    int64_t i;
    assert_false(dc_toml_get_int(t, "a", &i)); /* a float never reads as an integer */
    dc_toml_free(t);
}

static void test_booleans(void **state) {
    (void)state;
    dc_toml_table *t = parse_ok("t = true\nf = false\n");
    bool b = false;
    assert_true(dc_toml_get_bool(t, "t", &b) && b);
    assert_true(dc_toml_get_bool(t, "f", &b) && !b);
    assert_int_equal(path(t, "t")->type, DC_TOML_BOOLEAN);
    dc_toml_free(t);
    FAILS("t = True\n", "t.toml:1:5", "'True'");
    FAILS("t = truex\n", "t.toml:1:5", "'truex'");
}

static void test_arrays(void **state) {
    (void)state;
    dc_toml_table *t = parse_ok("empty = []\n"
                                "ints = [1, 2, 3]\n"
                                "multi = [\n"
                                "  \"a\", # first\n"
                                "  'b',\n"
                                "\n"
                                "  \"c\",  # trailing comma\n"
                                "]\n"
                                "mixed = [1, 2.5, true, \"s\"]\n"
                                "spaced = [ 1 , 2 ]\n");
    assert_int_equal(path(t, "empty")->as.array.len, 0);
    const dc_toml_value *ints = path(t, "ints");
    assert_int_equal(ints->type, DC_TOML_ARRAY);
    assert_int_equal(ints->as.array.len, 3);
    assert_int_equal(ints->as.array.items[2].as.integer, 3);
    const dc_toml_value *multi = path(t, "multi");
    assert_int_equal(multi->as.array.len, 3);
    assert_string_equal(multi->as.array.items[1].as.string.data, "b");
    assert_int_equal(multi->as.array.items[2].line, 7);
    const dc_toml_value *mixed = path(t, "mixed");
    assert_int_equal(mixed->as.array.items[1].type, DC_TOML_FLOAT);
    assert_int_equal(mixed->as.array.items[2].type, DC_TOML_BOOLEAN);
    assert_int_equal(mixed->as.array.items[3].type, DC_TOML_STRING);
    assert_int_equal(path(t, "spaced")->as.array.len, 2);
    dc_toml_free(t);
}

static void test_line_and_column_are_recorded(void **state) {
    (void)state;
    dc_toml_table *t = parse_ok("\n# c\n[batch]\n\n  max = 3\n\"\xC3\xA9t\xC3\xA9\" = \"x\"\n");
    const dc_toml_entry *sec = dc_toml_find(t, "batch");
    assert_non_null(sec);
    assert_int_equal(sec->line, 3);
    const dc_toml_entry *e = dc_toml_find(sec->value.as.table, "max");
    assert_non_null(e);
    assert_int_equal(e->line, 5);
    assert_int_equal(e->value.line, 5);
    assert_int_equal(e->value.column, 9);
    /* columns count characters: the value after a two-character UTF-8 key */
    FAILS("[a]\n\"\xC3\xA9t\xC3\xA9\" = 1 2\n", "t.toml:2:11:", NULL);
    dc_toml_free(t);
}

static void test_lookup_helpers_and_many_keys(void **state) {
    (void)state;
    /* 5000 keys in one table: the index keeps lookups fast and every key findable */
    size_t cap = 5000 * 24;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t n = 0;
    for (int i = 0; i < 5000; i++) n += (size_t)snprintf(text + n, cap - n, "k%d = %d\n", i, i);
    dc_toml_table *t = NULL;
    assert_ok(dc_toml_parse(text, n, "many.toml", &t));
    for (int i = 0; i < 5000; i += 7) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        int64_t v = -1;
        assert_true(dc_toml_get_int(t, key, &v));
        assert_int_equal(v, i);
    }
    assert_null(dc_toml_get(t, "k5000"));
    dc_toml_free(t);
    /* a duplicate among many keys is still found */
    n += (size_t)snprintf(text + n, cap - n, "k4321 = 0\n");
    assert_status(dc_toml_parse(text, n, "many.toml", &t), DC_ERR_CONFIG);
    assert_detail_contains("many.toml:5001:1: duplicate key 'k4321' (first defined at line 4322)");
    free(text);

    t = parse_ok("[a]\ns = \"x\"\ni = 1\n");
    const char *s = NULL;
    int64_t i = 0;
    bool b;
    assert_true(dc_toml_get_string(dc_toml_get_table(t, "a"), "s", &s));
    assert_string_equal(s, "x");
    assert_false(dc_toml_get_string(dc_toml_get_table(t, "a"), "i", &s));
    assert_false(dc_toml_get_bool(dc_toml_get_table(t, "a"), "s", &b));
    assert_false(dc_toml_get_int(dc_toml_get_table(t, "a"), "missing", &i));
    assert_null(dc_toml_get_table(t, "missing"));
    assert_null(dc_toml_get_path(t, "a.s.deeper"));
    assert_null(dc_toml_get_path(t, "b.s"));
    assert_string_equal(dc_toml_type_name(DC_TOML_ARRAY), "array");
    dc_toml_free(t);
}

static void test_buffer_is_length_bounded(void **state) {
    (void)state;
    /* Only len bytes are read: the text after them would be an error. */
    const char *text = "a = 12 garbage";
    dc_toml_table *t = NULL;
    assert_ok(dc_toml_parse(text, 6, "t.toml", &t));
    assert_int_equal(dc_toml_get(t, "a")->as.integer, 12);
    dc_toml_free(t);
    assert_ok(dc_toml_parse(NULL, 0, "t.toml", &t));
    dc_toml_free(t);
    /* a raw NUL byte inside the buffer is a control character */
    assert_status(dc_toml_parse("a = \"x\0y\"", 9, "t.toml", &t), DC_ERR_CONFIG);
    assert_detail_contains("t.toml:1:7: control character U+0000");
}

static void test_duplicate_keys(void **state) {
    (void)state;
    FAILS("a = 1\nb = 2\na = 3\n", "t.toml:3:1: duplicate key 'a' (first defined at line 1)", NULL);
    FAILS("[s]\nx = 1\n\"x\" = 2\n", "t.toml:3:1:", "duplicate key 's.x'");
    FAILS("a.b = 1\na.b = 2\n", "t.toml:2:1:", "duplicate key 'a.b'");
    FAILS("a.b = 1\na = 2\n", "t.toml:2:1:", "duplicate key 'a'");
    FAILS("a = 1\na.b = 2\n", "t.toml:2:1:", "'a' is already a value (line 1)");
}

static void test_redefined_tables(void **state) {
    (void)state;
    FAILS("[a]\nx = 1\n[b]\n[a]\n", "t.toml:4:1: table [a] is already defined (line 1)", NULL);
    FAILS("[a.b]\n[a.b]\n", "t.toml:2:1:", "table [a.b] is already defined");
    FAILS("[x.y]\n[x]\n[x]\n", "t.toml:3:1:", "table [x] is already defined");
    FAILS("a.b = 1\n[a]\n", "t.toml:2:1:", "[a] is already defined by dotted keys");
    FAILS("[fruit]\napple.color = 1\n[fruit.apple]\n",
          "t.toml:3:1:", "[fruit.apple] is already defined by dotted keys");
    FAILS("a = 1\n[a]\n", "t.toml:2:1:", "cannot define table [a]: 'a' is already a value");
    FAILS("a = 1\n[a.b]\n", "t.toml:2:1:", "'a' is already a value (line 1)");
    FAILS("[a.b.c]\n[a]\nb.c.d = 1\n", "t.toml:3:1:",
          "cannot set 'a.b.c.d' with a dotted key: table [a.b] is defined elsewhere");
}

static void test_bad_escapes(void **state) {
    (void)state;
    FAILS("k = \"\\q\"\n", "t.toml:1:6: invalid escape sequence '\\q'", NULL);
    FAILS("k = \"\\e\"\n", "t.toml:1:6:", "'\\e'"); /* TOML 1.1 only */
    FAILS("k = \"\\x41\"\n", "t.toml:1:6:", "'\\x'");
    FAILS("k = \"\\u12\"\n", "t.toml:1:6:", "needs 4 hexadecimal digits");
    FAILS("k = \"\\U0001F60\"\n", "t.toml:1:6:", "needs 8 hexadecimal digits");
    FAILS("k = \"\\uD800\"\n", "t.toml:1:6:", "not a Unicode scalar value");
    FAILS("k = \"\\U00110000\"\n", "t.toml:1:6:", "not a Unicode scalar value");
    FAILS("k = \"\\u0000\"\n", "t.toml:1:6:", "NUL character");
    FAILS("k = \"\\\n\"\n", "t.toml:1:6:", "invalid escape");
}

static void test_invalid_utf8(void **state) {
    (void)state;
    FAILS("a = 1\nb = \"\xFF\"\n", "t.toml:2:6: invalid UTF-8 (byte 0xFF)", NULL);
    FAILS("a = \"\xC0\xAF\"\n", "t.toml:1:6:", "invalid UTF-8");            /* overlong '/' */
    FAILS("a = \"\xED\xA0\x80\"\n", "t.toml:1:6:", "invalid UTF-8");        /* encoded surrogate */
    FAILS("a = \"\xE2\x82\"\n", "t.toml:1:6:", "invalid UTF-8");            /* truncated */
    FAILS("# comment \xF5\x80\x80\x80\n", "t.toml:1:11:", "invalid UTF-8"); /* > U+10FFFF */
    FAILS("\xC3(= 1\n", "t.toml:1:1:", "invalid UTF-8");
}

static void test_unterminated_strings_and_control_chars(void **state) {
    (void)state;
    FAILS("a = \"abc", "t.toml:1:5: unterminated string", NULL);
    FAILS("[server]\nhost = \"abc\n", "t.toml:2:8: unterminated string", "(key 'server.host')");
    FAILS("[s]\nk = [1, \"\\q\"]\n", "t.toml:2:10: invalid escape", "(key 's.k')");
    FAILS("a = \"abc\nb = 1\n", "t.toml:1:5: unterminated string", "newline");
    FAILS("a = 'abc\n", "t.toml:1:5: unterminated string", NULL);
    FAILS("a = \"\"\"abc\n\n", "t.toml:1:5: unterminated string", NULL);
    FAILS("a = '''abc''", "t.toml:1:5: unterminated string", NULL);
    FAILS("a = \"x\x01y\"\n", "t.toml:1:7: control character U+0001", NULL);
    FAILS("a = 'x\x7fy'\n", "t.toml:1:7: control character U+007F", NULL);
    FAILS("a = 1 # bell \x07\n", "t.toml:1:14: control character U+0007 in a comment", NULL);
    FAILS("a = 1\rb = 2\n", "t.toml:1:6: carriage return not followed by a line feed", NULL);
}

static void test_missing_equals_and_garbage(void **state) {
    (void)state;
    FAILS("[batch]\nmax_batch_size 32\n",
          "t.toml:2:16: expected '=' after key 'batch.max_batch_size'", NULL);
    FAILS("a\n= 1\n", "t.toml:1:2:", "expected '=' after key 'a'");
    FAILS("a = 1 2\n", "t.toml:1:7: unexpected text after the value of 'a'", NULL);
    FAILS("a = \"x\" y\n", "t.toml:1:9:", "after the value of 'a'");
    FAILS("a = [1] ,\n", "t.toml:1:9:", "after the value of 'a'");
    FAILS("[a] b = 1\n", "t.toml:1:5: unexpected text after the table header", NULL);
    FAILS("[a\nb = 1\n", "t.toml:1:3: expected ']'", NULL);
    FAILS("[]\n", "t.toml:1:2: unexpected ']' where a key was expected", NULL);
    FAILS("= 1\n", "t.toml:1:1: expected a key", NULL);
    FAILS("a. = 1\n", "t.toml:1:4:", "expected a key");
    FAILS("a = \n", "t.toml:1:5: missing value for key 'a'", NULL);
    FAILS("a =", "t.toml:1:4: missing value for key 'a'", NULL);
    FAILS("[s]\nname = hello\n", "t.toml:2:8: invalid value 'hello' for key 's.name'",
          "strings need quotes");
    FAILS("k = \"\"\"x\"\"\" = 1\n", "t.toml:1:13:", NULL);
    FAILS("\"\"\"k\"\"\" = 1\n", "t.toml:1:1: multi-line strings cannot be keys", NULL);
    FAILS("a$ = 1\n", "t.toml:1:2:", "expected '=' after key 'a'");
    FAILS("$ = 1\n", "t.toml:1:1:", "unexpected '$'");
}

static void test_numbers_rejected(void **state) {
    (void)state;
    FAILS("big = 9223372036854775808\n",
          "t.toml:1:7:", "integer 9223372036854775808 for key 'big' does not fit in 64 bits");
    FAILS("neg = -9223372036854775809\n", "t.toml:1:7:", "does not fit in 64 bits");
    FAILS("huge = 123456789012345678901234567890\n", "t.toml:1:8:", "does not fit in 64 bits");
    FAILS("h = 0x8000000000000000\n", "t.toml:1:5:", "does not fit in 64 bits");
    FAILS("b = 0b1111111111111111111111111111111111111111111111111111111111111111\n",
          "t.toml:1:5:", "does not fit in 64 bits");
    FAILS("f = 1e400\n", "t.toml:1:5: float 1e400 for key 'f' is out of range", NULL);
    FAILS("f = -1.8e308\n", "t.toml:1:5:", "out of range");
    FAILS("z = 012\n", "t.toml:1:5:", "invalid value '012'");
    FAILS("z = 00.5\n", "t.toml:1:5:", "invalid value");
    FAILS("u = 1__000\n", "t.toml:1:5:", "invalid value");
    FAILS("u = _1\n", "t.toml:1:5:", "invalid value");
    FAILS("u = 1_\n", "t.toml:1:5:", "invalid value");
    FAILS("u = 1_.5\n", "t.toml:1:5:", "invalid value");
    FAILS("h = +0x10\n", "t.toml:1:5:", "invalid value");
    FAILS("h = 0xG1\n", "t.toml:1:5:", "invalid value");
    FAILS("h = 0o8\n", "t.toml:1:5:", "invalid value");
    FAILS("f = 1.\n", "t.toml:1:5:", "invalid value");
    FAILS("f = .5\n", "t.toml:1:5:", "invalid value");
    FAILS("f = 1e\n", "t.toml:1:5:", "invalid value");
    FAILS("f = 1.5.2\n", "t.toml:1:5:", "invalid value");
    FAILS("f = infinity\n", "t.toml:1:5:", "invalid value");
    FAILS("f = +\n", "t.toml:1:5:", "invalid value");
}

static void test_unsupported_constructs(void **state) {
    (void)state;
    FAILS("a = [[1, 2], [3]]\n", "t.toml:1:6: nested arrays are not supported (key 'a')", NULL);
    FAILS("a = { x = 1 }\n", "t.toml:1:5: inline tables are not supported (key 'a')", NULL);
    FAILS("a = [{ x = 1 }]\n", "t.toml:1:6:", "inline tables are not supported");
    FAILS("[[products]]\nname = 1\n", "t.toml:1:1: arrays of tables", NULL);
    FAILS("d = 1979-05-27\n", "t.toml:1:5: dates and times are not supported (key 'd')", NULL);
    FAILS("d = 07:32:00\n", "t.toml:1:5:", "dates and times are not supported");
    FAILS("d = 1979-05-27T07:32:00Z\n", "t.toml:1:5:", "dates and times");
}

static void test_arrays_rejected(void **state) {
    (void)state;
    FAILS("a = [1, 2\n", "t.toml:1:5: unterminated array for key 'a'", NULL);
    FAILS("a = [1, 2\nb = 3\n", "t.toml:2:1:", "expected ',' or ']'");
    FAILS("a = [1 2]\n", "t.toml:1:8: expected ',' or ']' after an array element of key 'a'", NULL);
    FAILS("a = [,]\n", "t.toml:1:6:", "missing value for key 'a'");
    FAILS("a = [1,,2]\n", "t.toml:1:8:", "missing value");
    FAILS("a = [\"x\", \"y]\n", "t.toml:1:11: unterminated string", NULL);
}

static char *repeat(char c, size_t n, const char *prefix, const char *suffix) {
    size_t pl = strlen(prefix), sl = strlen(suffix);
    char *s = malloc(pl + n + sl + 1);
    assert_non_null(s);
    memcpy(s, prefix, pl);
    memset(s + pl, c, n);
    memcpy(s + pl + n, suffix, sl + 1);
    return s;
}

static void test_hostile_nesting(void **state) {
    (void)state;
    /* 100 000 '[' characters: as a header, as a value and after a header. None may recurse. */
    char *s = repeat('[', 100000, "", "");
    FAILS(s, "t.toml:1:1: arrays of tables", NULL);
    free(s);
    s = repeat('[', 100000, "a = ", "");
    FAILS(s, "t.toml:1:6: nested arrays are not supported", NULL);
    free(s);
    s = repeat(']', 100000, "[a", "");
    FAILS(s, "t.toml:1:4: unexpected text after the table header", NULL);
    free(s);
    s = repeat('{', 100000, "a = ", "");
    FAILS(s, "inline tables are not supported", NULL);
    free(s);
    /* dotted keys and headers deeper than DC_TOML_MAX_DEPTH */
    char *deep = malloc(100000 * 2 + 16);
    assert_non_null(deep);
    size_t n = 0;
    for (int i = 0; i < 100000; i++) n += (size_t)sprintf(deep + n, "a.");
    sprintf(deep + n, "a = 1\n");
    FAILS(deep, "t.toml:1:", "more than 32 dotted parts");
    deep[0] = '[';
    n = 1;
    for (int i = 0; i < 40; i++) n += (size_t)sprintf(deep + n, "a.");
    sprintf(deep + n, "a]\n");
    FAILS(deep, "t.toml:1:", "more than 32 dotted parts");
    /* 32 header parts, then 31 dotted parts below: 63 levels is too deep */
    n = (size_t)sprintf(deep, "[");
    for (int i = 0; i < 31; i++) n += (size_t)sprintf(deep + n, "h.");
    n += (size_t)sprintf(deep + n, "h]\n");
    for (int i = 0; i < 31; i++) n += (size_t)sprintf(deep + n, "d.");
    sprintf(deep + n, "d = 1\n");
    FAILS(deep, "t.toml:2:1:", "nests deeper than 32 levels");
    free(deep);
    /* the deepest allowed nesting parses and frees */
    dc_toml_table *t =
        parse_ok("[a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p]\nq.r.s.t.u.v.w.x.y.z.A.B.C.D.E.F = 1\n");
    assert_int_equal(
        path(t, "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.A.B.C.D.E.F")->as.integer, 1);
    dc_toml_free(t);
}

static void test_long_single_line_array(void **state) {
    (void)state;
    /* 200 000 elements on one line: positions are tracked incrementally, not rescanned */
    size_t count = 200000, cap = count * 2 + 16;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t n = (size_t)sprintf(s, "a = [");
    for (size_t i = 0; i < count; i++) {
        s[n++] = '7';
        s[n++] = ',';
    }
    s[n++] = ']';
    dc_toml_table *t = NULL;
    assert_ok(dc_toml_parse(s, n, "t.toml", &t));
    const dc_toml_value *a = dc_toml_get(t, "a");
    assert_int_equal(a->as.array.len, count);
    assert_int_equal(a->as.array.items[count - 1].column, 6 + 2 * (count - 1));
    dc_toml_free(t);
    free(s);
}

static void check_float_round_trip(double v) {
    char buf[64], text[96];
    dc_toml_format_float(v, buf, sizeof buf);
    snprintf(text, sizeof text, "v = %s\n", buf);
    dc_toml_table *t = NULL;
    assert_ok(dc_toml_parse(text, strlen(text), "f.toml", &t));
    const dc_toml_value *x = dc_toml_get(t, "v");
    assert_int_equal(x->type, DC_TOML_FLOAT);
    if (isnan(v))
        assert_true(isnan(x->as.floating));
    else
        assert_memory_equal(&x->as.floating, &v, sizeof v);
    dc_toml_free(t);
}

static void test_format_float(void **state) {
    (void)state;
    char buf[64];
    dc_toml_format_float(1.0, buf, sizeof buf);
    assert_string_equal(buf, "1.0");
    dc_toml_format_float(0.01, buf, sizeof buf);
    assert_string_equal(buf, "0.01");
    dc_toml_format_float(0.9, buf, sizeof buf);
    assert_string_equal(buf, "0.9");
    dc_toml_format_float(-INFINITY, buf, sizeof buf);
    assert_string_equal(buf, "-inf");
    const double values[] = {0.0,
                             -0.0,
                             1.25,
                             0.1,
                             1.0 / 3.0,
                             1e-300,
                             4.9e-324,
                             1.7976931348623157e308,
                             123456789012345678.0,
                             1e22,
                             -2.5e-5,
                             NAN,
                             INFINITY};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) check_float_round_trip(values[i]);
    /* The text is TOML's regardless of the C locale's decimal separator. */
    if (setlocale(LC_NUMERIC, "de_DE.UTF-8") || setlocale(LC_NUMERIC, "fr_FR.UTF-8")) {
        dc_toml_format_float(1.25, buf, sizeof buf);
        assert_string_equal(buf, "1.25");
        check_float_round_trip(0.1);
        setlocale(LC_NUMERIC, "C");
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_comments_blank_lines_and_crlf),
        cmocka_unit_test(test_tables_and_dotted_headers),
        cmocka_unit_test(test_bare_quoted_and_dotted_keys),
        cmocka_unit_test(test_basic_string_escapes),
        cmocka_unit_test(test_literal_strings),
        cmocka_unit_test(test_multiline_strings),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_floats),
        cmocka_unit_test(test_booleans),
        cmocka_unit_test(test_arrays),
        cmocka_unit_test(test_line_and_column_are_recorded),
        cmocka_unit_test(test_lookup_helpers_and_many_keys),
        cmocka_unit_test(test_buffer_is_length_bounded),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_redefined_tables),
        cmocka_unit_test(test_bad_escapes),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_unterminated_strings_and_control_chars),
        cmocka_unit_test(test_missing_equals_and_garbage),
        cmocka_unit_test(test_numbers_rejected),
        cmocka_unit_test(test_unsupported_constructs),
        cmocka_unit_test(test_arrays_rejected),
        cmocka_unit_test(test_hostile_nesting),
        cmocka_unit_test(test_long_single_line_array),
        cmocka_unit_test(test_format_float),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

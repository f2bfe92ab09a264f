/* Tokenizer engine: reference outputs of small fixture tokenizers (tests/data/tokenizer, made
 * by gen_fixtures.py with Hugging Face `tokenizers` 0.22.2) covering the components the public
 * goldens do not use; errors; queries; linear work on 10 MB inputs; concurrent use. */
#define _DEFAULT_SOURCE
#include "test_support.h"

#include <cjson/cJSON.h>
#include <pthread.h>

#include "text/jsonl.h"
#include "text/tok_internal.h"
#include "text/tokenizer.h"

static const char *fixtures[] = {"bert_tiny", "bytelevel_tiny", "metaspace_tiny", "split_tiny",
                                 "whitespace_tiny"};

typedef struct fx_case {
    char *id;
    char *text;
    size_t len;
} fx_case;

static fx_case *fx_corpus;
static size_t fx_n;

static void load_fx_corpus(void) {
    if (fx_corpus) return;
    size_t len;
    char *data = dc_test_read_file(dc_test_data_path("tokenizer/corpus.jsonl"), &len);
    assert_non_null(data);
    size_t i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && data[e] != '\n') e++;
        if (e > i) {
            fx_corpus = realloc(fx_corpus, (fx_n + 1) * sizeof *fx_corpus);
            fx_case *c = &fx_corpus[fx_n++];
            const char *v;
            size_t vl, il;
            assert_ok(dc_jsonl_field(data + i, e - i, "id", &v, &vl));
            assert_ok(dc_json_decode_string(v, vl, &c->id, &il));
            assert_ok(dc_jsonl_field(data + i, e - i, "text", &v, &vl));
            assert_ok(dc_json_decode_string(v, vl, &c->text, &c->len));
        }
        i = e + 1;
    }
    free(data);
}

static dc_tokenizer *load_fixture(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "tokenizer/%s.json", name);
    dc_tokenizer *t = NULL;
    assert_ok(dc_tokenizer_load(dc_test_data_path(rel), &t));
    return t;
}

static bool same_u32(const cJSON *a, const uint32_t *v, size_t n) {
    if ((size_t)cJSON_GetArraySize(a) != n) return false;
    for (size_t i = 0; i < n; i++)
        if ((uint32_t)cJSON_GetArrayItem(a, (int)i)->valuedouble != v[i]) return false;
    return true;
}

static bool same_spans(const cJSON *a, const dc_span *v, size_t n) {
    if ((size_t)cJSON_GetArraySize(a) != n) return false;
    for (size_t i = 0; i < n; i++) {
        const cJSON *p = cJSON_GetArrayItem(a, (int)i);
        if ((uint32_t)cJSON_GetArrayItem(p, 0)->valuedouble != v[i].start ||
            (uint32_t)cJSON_GetArrayItem(p, 1)->valuedouble != v[i].end)
            return false;
    }
    return true;
}

static bool same_mask(const cJSON *a, const uint8_t *v, size_t n) {
    if ((size_t)cJSON_GetArraySize(a) != n) return false;
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)cJSON_GetArrayItem(a, (int)i)->valuedouble != v[i]) return false;
    return true;
}

/* Runs one fixture golden file; returns mismatches. */
static size_t check_fixture(const char *name, bool as_file) {
    load_fx_corpus();
    dc_tokenizer *tok = load_fixture(name);
    dc_encode_options o;
    dc_tokenizer_default_options(tok, &o);
    if (!as_file) {
        o.truncation.enabled = false;
        o.padding.enabled = false;
    }
    char rel[256];
    snprintf(rel, sizeof rel, "tokenizer/%s.%s.jsonl", name, as_file ? "expected" : "plain");
    size_t len, bad = 0, total = 0;
    char *data = dc_test_read_file(dc_test_data_path(rel), &len);
    assert_non_null(data);
    size_t i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && data[e] != '\n') e++;
        if (e > i) {
            cJSON *g = cJSON_ParseWithLength(data + i, e - i);
            assert_non_null(g);
            const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(g, "id"));
            const fx_case *c = NULL;
            for (size_t k = 0; k < fx_n; k++)
                if (!strcmp(fx_corpus[k].id, id)) c = &fx_corpus[k];
            assert_non_null(c);
            dc_encoding enc;
            assert_ok(dc_tokenizer_encode(tok, c->text, c->len, &o, &enc));
            total++;
            bool ok = same_u32(cJSON_GetObjectItem(g, "ids"), enc.ids, enc.len) &&
                      same_spans(cJSON_GetObjectItem(g, "offsets"), enc.offsets, enc.len) &&
                      same_mask(cJSON_GetObjectItem(g, "attention_mask"), enc.attention_mask, enc.len);
            if (!ok && bad++ < 4) {
                printf("  MISMATCH %s %s: got", rel, id);
                for (size_t k = 0; k < enc.len; k++)
                    printf(" %u[%u,%u]", enc.ids[k], enc.offsets[k].start, enc.offsets[k].end);
                char *w = cJSON_PrintUnformatted(g);
                printf("\n    want %s\n", w);
                free(w);
            }
            dc_encoding_free(&enc);
            cJSON_Delete(g);
        }
        i = e + 1;
    }
    free(data);
    printf("tokenizer fixture %-36s %zu/%zu passed\n", rel, total - bad, total);
    dc_tokenizer_free(tok);
    return bad;
}

static void test_fixtures_match_reference(void **state) {
    (void)state;
    size_t bad = 0;
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
        bad += check_fixture(fixtures[i], false);
        bad += check_fixture(fixtures[i], true);
    }
    assert_int_equal(bad, 0);
}

/* ---------- behaviour ---------- */

static void test_invalid_utf8(void **state) {
    (void)state;
    dc_tokenizer *tok = load_fixture("bert_tiny");
    dc_encoding e;
    const char bad[] = "abc\xC3(def";
    assert_status(dc_tokenizer_encode(tok, bad, sizeof bad - 1, NULL, &e), DC_ERR_INVALID_VALUE);
    assert_detail_contains("byte offset 3");
    assert_int_equal(e.len, 0);
    assert_null(e.ids);
    dc_encode_options o;
    dc_tokenizer_default_options(tok, &o);
    o.replace_invalid_utf8 = true;
    assert_ok(dc_tokenizer_encode(tok, bad, sizeof bad - 1, &o, &e));
    /* [CLS] abc [UNK](U+FFFD) ( def [SEP]: the repaired text has 8 code points */
    assert_true(e.len >= 5);
    assert_int_equal(e.offsets[e.len - 2].end, 8);
    dc_encoding_free(&e);
    dc_tokenizer_free(tok);
}

static void test_empty_and_options(void **state) {
    (void)state;
    dc_tokenizer *tok = load_fixture("bert_tiny");
    dc_encoding e;
    assert_ok(dc_tokenizer_encode(tok, "", 0, NULL, &e));
    assert_int_equal(e.len, 2); /* [CLS] [SEP] */
    assert_int_equal(e.ids[0], dc_tokenizer_token_to_id(tok, "[CLS]"));
    assert_int_equal(e.special_tokens_mask[0], 1);
    dc_encoding_free(&e);

    dc_encode_options o;
    dc_tokenizer_default_options(tok, &o);
    o.add_special_tokens = false;
    assert_ok(dc_tokenizer_encode(tok, "hello world", 11, &o, &e));
    assert_int_equal(e.len, 2);
    assert_int_equal(e.ids[0], dc_tokenizer_token_to_id(tok, "hello"));
    assert_int_equal(e.byte_offsets[1].start, 6);
    dc_encoding_free(&e);

    /* truncation counts the special tokens; left keeps the end */
    o.add_special_tokens = true;
    o.truncation = (dc_truncation){true, 3, 0, DC_TRUNC_LONGEST_FIRST, DC_SIDE_LEFT};
    assert_ok(dc_tokenizer_encode(tok, "the quick brown fox", 19, &o, &e));
    assert_int_equal(e.len, 3);
    assert_true(e.truncated);
    assert_int_equal(e.untruncated_len, 4);
    assert_int_equal(e.ids[1], dc_tokenizer_token_to_id(tok, "fox"));
    dc_encoding_free(&e);
    o.truncation.max_length = 1; /* below the two special tokens */
    assert_status(dc_tokenizer_encode(tok, "x", 1, &o, &e), DC_ERR_INVALID_ARGUMENT);

    /* fixed padding on the left */
    o.truncation.enabled = false;
    o.padding = (dc_padding){true, true, 6, 0, 0, 0, DC_SIDE_LEFT};
    assert_ok(dc_tokenizer_encode(tok, "fox", 3, &o, &e));
    assert_int_equal(e.len, 6);
    assert_int_equal(e.attention_mask[0], 0);
    assert_int_equal(e.attention_mask[3], 1);
    assert_int_equal(e.ids[4], dc_tokenizer_token_to_id(tok, "fox"));
    dc_encoding_free(&e);
    dc_tokenizer_free(tok);
}

static void test_queries(void **state) {
    (void)state;
    dc_tokenizer *tok = load_fixture("bytelevel_tiny");
    assert_int_equal(dc_tokenizer_num_special_tokens(tok), 2);
    int64_t mask = dc_tokenizer_token_to_id(tok, "<mask>");
    assert_true(mask >= 0);
    assert_string_equal(dc_tokenizer_id_to_token(tok, (uint32_t)mask), "<mask>");
    assert_int_equal(dc_tokenizer_token_to_id(tok, "no such token"), -1);
    assert_null(dc_tokenizer_id_to_token(tok, 999999));
    assert_true(dc_tokenizer_vocab_size(tok, true) > dc_tokenizer_vocab_size(tok, false));
    dc_tokenizer_free(tok);
}

static void expect_load_error(const char *json, dc_status want, const char *needle) {
    dc_tokenizer *t = (dc_tokenizer *)1;
    assert_status(dc_tokenizer_load_json(json, strlen(json), "x.json", &t), want);
    assert_null(t);
    assert_detail_contains(needle);
}

static void test_load_errors(void **state) {
    (void)state;
    expect_load_error("{\"model\": ", DC_ERR_SERIALIZATION, "x.json: invalid JSON");
    expect_load_error("[]", DC_ERR_INVALID_VALUE, "not a JSON object");
    expect_load_error("{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", DC_ERR_UNSUPPORTED_FORMAT,
                      "model type \"Unigram\"");
    expect_load_error("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}},"
                      " \"normalizer\": {\"type\": \"Precompiled\"}}",
                      DC_ERR_UNSUPPORTED_FORMAT, "x.json: normalizer: normalizer type \"Precompiled\"");
    expect_load_error("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": -1}}}", DC_ERR_INVALID_VALUE,
                      "model.vocab");
    expect_load_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a c\"]}}",
                      DC_ERR_INVALID_VALUE, "merges[0]");
    expect_load_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [], \"dropout\": 0.1}}",
                      DC_ERR_UNSUPPORTED_FORMAT, "dropout");
    expect_load_error("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}, \"pre_tokenizer\":"
                      " {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": \"Removed\"}}",
                      DC_ERR_UNSUPPORTED_FORMAT, "does not compile");
    expect_load_error("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}, \"post_processor\":"
                      " {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"[X]\"}}],"
                      " \"special_tokens\": {}}}",
                      DC_ERR_INVALID_VALUE, "special_tokens: \"[X]\" is missing");
    dc_tokenizer *t;
    assert_status(dc_tokenizer_load("/nonexistent/tokenizer.json", &t), DC_ERR_IO);
    assert_detail_contains("/nonexistent/tokenizer.json");
    assert_status(dc_tokenizer_load(dc_test_data_path("hash"), &t), DC_ERR_NOT_FOUND);
}

/* A model without the unknown token fails the encode clearly. */
static void test_missing_unk(void **state) {
    (void)state;
    const char *json = "{\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\","
                       " \"vocab\": {\"a\": 0}}, \"pre_tokenizer\": {\"type\": \"WhitespaceSplit\"}}";
    dc_tokenizer *t;
    assert_ok(dc_tokenizer_load_json(json, strlen(json), "mini", &t));
    dc_encoding e;
    assert_ok(dc_tokenizer_encode(t, "a a", 3, NULL, &e));
    assert_int_equal(e.len, 2);
    dc_encoding_free(&e);
    assert_status(dc_tokenizer_encode(t, "a b", 3, NULL, &e), DC_ERR_TOKENIZATION);
    assert_detail_contains("[UNK]");
    dc_tokenizer_free(t);
}

/* ---------- linear work on 10 MB ---------- */

static char *make_text(size_t n, int kind) {
    char *s = malloc(n + 1);
    static const char *words[] = {"the ", "quick ", "Brown ", "fox, ", "jumps ", "\xc3\xa9t\xc3\xa9 ",
                                  "tokenization ", "12345 ", "\xe4\xb8\xad\xe6\x96\x87 ", "a-b ", "\n"};
    size_t k = 0, w = 0;
    while (k < n) {
        if (kind == 1) { /* one enormous word */
            s[k] = (char)('a' + (k * 7 + k / 13) % 26);
            k++;
            continue;
        }
        if (kind == 2) { /* long whitespace runs */
            s[k] = (k / 1000) % 2 ? ' ' : 'x';
            k++;
            continue;
        }
        const char *t = words[(w++ * 2654435761u) % (sizeof words / sizeof words[0])];
        size_t tl = strlen(t);
        if (k + tl > n) {
            while (k < n) s[k++] = 'z';
            break;
        }
        memcpy(s + k, t, tl);
        k += tl;
    }
    s[n] = '\0';
    return s;
}

static uint64_t work_for(const dc_tokenizer *tok, const char *text, size_t n) {
    uint64_t before = dc_tokenizer_work();
    dc_encoding e;
    assert_ok(dc_tokenizer_encode(tok, text, n, NULL, &e));
    dc_encoding_free(&e);
    return dc_tokenizer_work() - before;
}

static void test_linear_work_10mb(void **state) {
    (void)state;
    const size_t big = 10u * 1000u * 1000u, small = big / 10;
    for (size_t f = 0; f < 2; f++) {
        dc_tokenizer *tok = load_fixture(f ? "bytelevel_tiny" : "bert_tiny");
        for (int kind = 0; kind < 3; kind++) {
            char *text = make_text(big, kind);
            uint64_t w_small = work_for(tok, text, small);
            uint64_t w_big = work_for(tok, text, big);
            printf("tokenizer work %s kind %d: %llu units for 1 MB, %llu for 10 MB\n",
                   f ? "bytelevel" : "bert", kind, (unsigned long long)w_small,
                   (unsigned long long)w_big);
            /* linear: ten times the input costs about ten times the work, and a bounded amount
             * per byte */
            assert_true(w_big <= 11 * w_small + 1000);
            assert_true(w_big <= 40 * big);
            free(text);
        }
        dc_tokenizer_free(tok);
    }
}

/* ---------- concurrent use ---------- */

typedef struct thr_arg {
    const dc_tokenizer *tok;
    int bad;
} thr_arg;

static void *encode_all(void *p) {
    thr_arg *a = p;
    for (int round = 0; round < 20; round++)
        for (size_t i = 0; i < fx_n; i++) {
            dc_encoding e1, e2;
            if (dc_tokenizer_encode(a->tok, fx_corpus[i].text, fx_corpus[i].len, NULL, &e1)) {
                a->bad++;
                continue;
            }
            if (dc_tokenizer_encode(a->tok, fx_corpus[i].text, fx_corpus[i].len, NULL, &e2) ||
                e1.len != e2.len || memcmp(e1.ids, e2.ids, e1.len * 4) ||
                memcmp(e1.offsets, e2.offsets, e1.len * sizeof *e1.offsets))
                a->bad++;
            dc_encoding_free(&e1);
            dc_encoding_free(&e2);
        }
    return NULL;
}

static void test_concurrent_encodes(void **state) {
    (void)state;
    load_fx_corpus();
    dc_tokenizer *tok = load_fixture("bytelevel_tiny");
    pthread_t th[4];
    thr_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thr_arg){tok, 0};
        assert_int_equal(pthread_create(&th[i], NULL, encode_all, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].bad, 0);
    }
    dc_tokenizer_free(tok);
}

/* ---------- JSON lines helper ---------- */

static void test_jsonl(void **state) {
    (void)state;
    const char *line = "{\"a\": [1, {\"x\": \"}\"}], \"id\": 7, \"text\": \"nul\\u0000 \\ud83d\\ude00 \\\"q\\\"\"}";
    const char *v;
    size_t vl;
    assert_ok(dc_jsonl_field(line, strlen(line), "id", &v, &vl));
    assert_int_equal(vl, 1);
    assert_int_equal(v[0], '7');
    assert_ok(dc_jsonl_field(line, strlen(line), "text", &v, &vl));
    char *s;
    size_t sl;
    assert_ok(dc_json_decode_string(v, vl, &s, &sl));
    assert_int_equal(sl, 3 + 1 + 1 + 4 + 1 + 3);
    assert_memory_equal(s, "nul\0 \xf0\x9f\x98\x80 \"q\"", sl);
    free(s);
    assert_status(dc_jsonl_field(line, strlen(line), "missing", &v, &vl), DC_ERR_NOT_FOUND);
    assert_status(dc_jsonl_field("[1]", 3, "id", &v, &vl), DC_ERR_SERIALIZATION);
    assert_status(dc_json_decode_string("\"\\x\"", 4, &s, &sl), DC_ERR_SERIALIZATION);
}

static int teardown(void **state) {
    (void)state;
    for (size_t i = 0; i < fx_n; i++) {
        free(fx_corpus[i].id);
        free(fx_corpus[i].text);
    }
    free(fx_corpus);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_match_reference),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_empty_and_options),
        cmocka_unit_test(test_queries),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_missing_unk),
        cmocka_unit_test(test_jsonl),
        cmocka_unit_test(test_concurrent_encodes),
        cmocka_unit_test(test_linear_work_10mb),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}

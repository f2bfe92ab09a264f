/* Tokenization manager: per-model encodings equal direct encodes, one tokenization per family
 * and prefix, LRU cache accounting, markers, concurrency; and, with the conformance data, the
 * prefix sharing checked on the real BERT tokenizer over the whole test corpus. */
#include "test_support.h"

#include <pthread.h>

#include "text/jsonl.h"
#include "text/token_manager.h"

static dc_tokenizer *fixture(const char *name) {
    char rel[128];
    snprintf(rel, sizeof rel, "tokenizer/%s.json", name);
    dc_tokenizer *t;
    assert_ok(dc_tokenizer_load(dc_test_data_path(rel), &t));
    return t;
}

static dc_token_manager *make(size_t entries, size_t tokens) {
    dc_token_manager *m;
    assert_ok(dc_token_manager_create(entries, tokens, &m));
    assert_ok(dc_token_manager_set_tokenizer(m, DC_TOK_FAMILY_BERT_UNCASED, fixture("bert_tiny")));
    assert_ok(dc_token_manager_set_tokenizer(m, DC_TOK_FAMILY_ROBERTA_BPE, fixture("bytelevel_tiny")));
    assert_ok(dc_token_manager_set_tokenizer(m, DC_TOK_FAMILY_CLIP_BPE, fixture("whitespace_tiny")));
    return m;
}

static const char *texts[] = {
    "Hello, world!", "the quick brown fox", "Caf\xc3\xa9 na\xc3\xafve \xe4\xb8\xad\xe6\x96\x87", "",
    "special <mask> and [CLS] here", "tokenization of internationalization is unbelievable",
};
#define NTEXTS (sizeof texts / sizeof texts[0])

/* The direct encode a request should equal. */
static void direct(const dc_tokenizer *t, const dc_token_request *r, const char *text,
                   dc_encoding *e) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s%s", r->prefix ? r->prefix : "", text);
    dc_encode_options o;
    memset(&o, 0, sizeof o);
    o.add_special_tokens = r->add_special_tokens;
    if (r->max_length)
        o.truncation = (dc_truncation){true, r->max_length, 0, DC_TRUNC_LONGEST_FIRST, r->truncation_side};
    if (r->pad_to) o.padding = (dc_padding){true, true, r->pad_to, 0, (uint32_t)r->pad_id, 0, DC_SIDE_RIGHT};
    assert_ok(dc_tokenizer_encode(t, buf, strlen(buf), &o, e));
}

static void same_ids(const dc_encoding *a, const dc_encoding *b) {
    assert_int_equal(a->len, b->len);
    for (size_t i = 0; i < a->len; i++) {
        assert_int_equal(a->ids[i], b->ids[i]);
        assert_int_equal(a->attention_mask[i], b->attention_mask[i]);
    }
}

static void test_matches_direct_encode(void **state) {
    (void)state;
    dc_token_manager *m = make(64, 100000);
    dc_token_request reqs[4];
    dc_token_request_init(&reqs[0], DC_TOK_FAMILY_BERT_UNCASED);
    reqs[0].max_length = 6;
    dc_token_request_init(&reqs[1], DC_TOK_FAMILY_BERT_UNCASED);
    reqs[1].prefix = "query: ";
    reqs[1].pad_to = 12;
    reqs[1].pad_id = 0;
    dc_token_request_init(&reqs[2], DC_TOK_FAMILY_ROBERTA_BPE);
    reqs[2].prefix = "x "; /* byte-level: not composable, tokenized as one string */
    dc_token_request_init(&reqs[3], DC_TOK_FAMILY_CLIP_BPE);
    reqs[3].max_length = 5;
    reqs[3].truncation_side = DC_SIDE_LEFT;
    reqs[3].add_special_tokens = false;
    for (size_t k = 0; k < NTEXTS; k++) {
        dc_encoding outs[4];
        assert_ok(dc_token_manager_encode_many(m, reqs, 4, texts[k], strlen(texts[k]), outs));
        for (int r = 0; r < 4; r++) {
            dc_encoding d;
            direct(dc_token_manager_tokenizer(m, reqs[r].family), &reqs[r], texts[k], &d);
            same_ids(&outs[r], &d);
            dc_encoding_free(&d);
        }
        /* offsets refer to the text, not to the prefix */
        size_t plen = strlen("query: ");
        dc_encoding d;
        direct(dc_token_manager_tokenizer(m, DC_TOK_FAMILY_BERT_UNCASED), &reqs[1], texts[k], &d);
        for (size_t i = 0; i < d.len; i++)
            if (d.byte_offsets[i].start >= plen && d.attention_mask[i] && !d.special_tokens_mask[i])
                assert_int_equal(outs[1].byte_offsets[i].start, d.byte_offsets[i].start - plen);
        dc_encoding_free(&d);
        for (int r = 0; r < 4; r++) dc_encoding_free(&outs[r]);
    }
    dc_token_manager_destroy(m);
}

static void test_sharing_and_cache(void **state) {
    (void)state;
    dc_token_manager *m = make(2, 100000);
    dc_token_request r[3];
    for (int i = 0; i < 3; i++) dc_token_request_init(&r[i], DC_TOK_FAMILY_BERT_UNCASED);
    r[0].max_length = 512;
    r[1].max_length = 128;
    r[2].max_length = 32;
    dc_encoding outs[3];
    const char *t = "the quick brown fox";
    assert_ok(dc_token_manager_encode_many(m, r, 3, t, strlen(t), outs));
    dc_token_manager_stats s;
    dc_token_manager_stats_get(m, &s);
    assert_int_equal(s.misses, 1); /* three models, one tokenization */
    assert_int_equal(s.hits, 0);
    assert_int_equal(s.entries, 1);
    for (int i = 0; i < 3; i++) dc_encoding_free(&outs[i]);
    dc_encoding e;
    assert_ok(dc_token_manager_encode(m, &r[1], t, strlen(t), &e));
    dc_encoding_free(&e);
    dc_token_manager_stats_get(m, &s);
    assert_int_equal(s.hits, 1);
    assert_true(s.tokenize_ns > 0);
    /* a prefix is a different tokenization */
    r[0].prefix = "passage: ";
    assert_ok(dc_token_manager_encode(m, &r[0], t, strlen(t), &e));
    dc_encoding_free(&e);
    dc_token_manager_stats_get(m, &s);
    assert_int_equal(s.misses, 2);
    /* a third distinct input evicts the least recently used */
    assert_ok(dc_token_manager_encode(m, &r[1], "fox", 3, &e));
    dc_encoding_free(&e);
    dc_token_manager_stats_get(m, &s);
    assert_int_equal(s.entries, 2);
    assert_int_equal(s.evictions, 1);
    dc_token_manager_clear(m);
    dc_token_manager_stats_get(m, &s);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.cached_tokens, 0);
    dc_token_manager_destroy(m);

    /* no cache at all: still one tokenization per call and family */
    m = make(0, 0);
    assert_ok(dc_token_manager_encode_many(m, r, 3, t, strlen(t), outs));
    for (int i = 0; i < 3; i++) dc_encoding_free(&outs[i]);
    dc_token_manager_stats_get(m, &s);
    assert_int_equal(s.misses, 2); /* r[0] has a prefix now */
    assert_int_equal(s.entries, 0);
    dc_token_manager_destroy(m);
}

static void test_marker_and_errors(void **state) {
    (void)state;
    dc_token_manager *m = make(8, 1000);
    const dc_tokenizer *bert = dc_token_manager_tokenizer(m, DC_TOK_FAMILY_BERT_UNCASED);
    dc_token_request q;
    dc_token_request_init(&q, DC_TOK_FAMILY_BERT_UNCASED);
    q.marker_id = dc_tokenizer_token_to_id(bert, "[MASK]");
    q.max_length = 5;
    q.pad_to = 8;
    q.pad_id = q.marker_id;
    dc_encoding e;
    assert_ok(dc_token_manager_encode(m, &q, "the quick brown fox", 19, &e));
    /* [CLS] [marker] the quick [SEP] then padding */
    assert_int_equal(e.len, 8);
    assert_int_equal(e.ids[0], dc_tokenizer_token_to_id(bert, "[CLS]"));
    assert_int_equal(e.ids[1], q.marker_id);
    assert_int_equal(e.ids[2], dc_tokenizer_token_to_id(bert, "the"));
    assert_int_equal(e.ids[3], dc_tokenizer_token_to_id(bert, "quick"));
    assert_int_equal(e.ids[4], dc_tokenizer_token_to_id(bert, "[SEP]"));
    assert_int_equal(e.attention_mask[5], 0);
    assert_true(e.truncated);
    dc_encoding_free(&e);

    assert_status(dc_token_manager_encode(m, &q, "\xff", 1, &e), DC_ERR_INVALID_VALUE);
    q.family = (dc_tok_family)7;
    assert_status(dc_token_manager_encode(m, &q, "a", 1, &e), DC_ERR_INVALID_ARGUMENT);
    dc_token_manager_destroy(m);

    dc_token_manager *empty;
    assert_ok(dc_token_manager_create(4, 100, &empty));
    dc_token_request_init(&q, DC_TOK_FAMILY_CLIP_BPE);
    assert_status(dc_token_manager_encode(empty, &q, "a", 1, &e), DC_ERR_NOT_INITIALIZED);
    dc_token_manager_destroy(empty);
}

typedef struct thr {
    dc_token_manager *m;
    int seed, bad;
} thr;

static void *worker(void *p) {
    thr *a = p;
    dc_token_request r[2];
    dc_token_request_init(&r[0], DC_TOK_FAMILY_BERT_UNCASED);
    dc_token_request_init(&r[1], DC_TOK_FAMILY_ROBERTA_BPE);
    r[1].max_length = 7;
    for (int i = 0; i < 400; i++) {
        const char *t = texts[(size_t)(i * 7 + a->seed) % NTEXTS];
        dc_encoding outs[2];
        if (dc_token_manager_encode_many(a->m, r, 2, t, strlen(t), outs)) {
            a->bad++;
            continue;
        }
        for (int k = 0; k < 2; k++) {
            dc_encoding d;
            direct(dc_token_manager_tokenizer(a->m, r[k].family), &r[k], t, &d);
            if (d.len != outs[k].len || memcmp(d.ids, outs[k].ids, d.len * sizeof *d.ids)) a->bad++;
            dc_encoding_free(&d);
            dc_encoding_free(&outs[k]);
        }
    }
    return NULL;
}

static void test_concurrent(void **state) {
    (void)state;
    dc_token_manager *m = make(3, 60); /* small: constant eviction under load */
    pthread_t th[4];
    thr a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (thr){m, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, worker, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(a[i].bad, 0);
    }
    dc_token_manager_stats s;
    dc_token_manager_stats_get(m, &s);
    assert_int_equal(s.hits + s.misses, 4 * 400 * 2);
    assert_true(s.entries <= 3);
    dc_token_manager_destroy(m);
}

/* E1's "query: " / "passage: " prefixes on the real BERT tokenizer: the shared tokenization must
 * give exactly the ids of tokenizing prefix + text, on every conformance case. */
static void test_prefix_sharing_real_bert(void **state) {
    (void)state;
    const char *dir = dc_test_conformance_dir();
    if (!dir) skip();
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizers/bert-base-uncased/tokenizer.json", dir);
    dc_tokenizer *t;
    if (dc_tokenizer_load(path, &t) != DC_OK) skip();
    dc_token_manager *m;
    assert_ok(dc_token_manager_create(16, 100000, &m));
    assert_ok(dc_token_manager_set_tokenizer(m, DC_TOK_FAMILY_BERT_UNCASED, t));
    snprintf(path, sizeof path, "%s/tokenizers/cases.jsonl", dir);
    size_t len;
    char *data = dc_test_read_file(path, &len);
    assert_non_null(data);
    size_t i = 0, cases = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && data[e] != '\n') e++;
        const char *v;
        size_t vl;
        if (e > i && dc_jsonl_field(data + i, e - i, "text", &v, &vl) == DC_OK) {
            char *text;
            size_t tl;
            assert_ok(dc_json_decode_string(v, vl, &text, &tl));
            dc_token_request r[2];
            dc_token_request_init(&r[0], DC_TOK_FAMILY_BERT_UNCASED);
            dc_token_request_init(&r[1], DC_TOK_FAMILY_BERT_UNCASED);
            r[0].prefix = "query: ";
            r[1].prefix = "passage: ";
            r[0].max_length = r[1].max_length = 512;
            dc_encoding outs[2];
            assert_ok(dc_token_manager_encode_many(m, r, 2, text, tl, outs));
            for (int k = 0; k < 2; k++) {
                size_t pl = strlen(r[k].prefix);
                char *full = malloc(pl + tl + 1);
                memcpy(full, r[k].prefix, pl);
                memcpy(full + pl, text, tl);
                dc_encode_options o;
                dc_tokenizer_default_options(t, &o);
                o.truncation = (dc_truncation){true, 512, 0, DC_TRUNC_LONGEST_FIRST, DC_SIDE_RIGHT};
                dc_encoding d;
                assert_ok(dc_tokenizer_encode(t, full, pl + tl, &o, &d));
                same_ids(&outs[k], &d);
                dc_encoding_free(&d);
                dc_encoding_free(&outs[k]);
                free(full);
            }
            free(text);
            cases++;
        }
        i = e + 1;
    }
    free(data);
    printf("prefix sharing checked on %zu conformance cases\n", cases);
    assert_true(cases > 300);
    dc_token_manager_destroy(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_direct_encode),
        cmocka_unit_test(test_sharing_and_cache),
        cmocka_unit_test(test_marker_and_errors),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_prefix_sharing_real_bert),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

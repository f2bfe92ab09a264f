/* The RoBERTa encoder (positions from pad_token_id + 1, one token type, eps 1e-5) on the
 * random-weight fixture against transformers' RobertaModel (tests/data/models5/roberta.json,
 * computed there from a batch padded to the longest text), read from model.safetensors and
 * from the torch.save'd pytorch_model.bin in both the zip and the legacy format; the vocab.json
 * + merges.txt tokenizer gives transformers' ids. */
#include "models/bert.h"
#include "test_encoder_util.h"
#include "text/tokenizer.h"

typedef struct loaded {
    dc_backend *be;
    dc_bert *bert;
    dc_tokenizer *tok;
} loaded;

static dc_status load_weights(const char *dir, const char *weights, loaded *l) {
    memset(l, 0, sizeof *l);
    char path[4200];
    dc_bert_config cfg;
    snprintf(path, sizeof path, "%s/config.json", dir);
    dc_status st = dc_bert_config_read(path, &cfg);
    if (st) return st;
    if ((st = dc_backend_cpu_create(NULL, &l->be))) return st;
    dc_weights *w = NULL;
    if ((st = dc_weights_open(weights, &w))) return st;
    st = dc_bert_create(w, &cfg, l->be, &l->bert);
    dc_weights_close(w);
    if (st) return st;
    return dc_tokenizer_load(dir, &l->tok);
}

static void unload(loaded *l) {
    dc_bert_destroy(l->bert);
    dc_backend_destroy(l->be);
    dc_tokenizer_free(l->tok);
}

/* Tokenises every golden text (ids checked against transformers'), runs one packed forward
 * and compares every hidden row. */
static void check_hidden(const char *weights_rel, const char *what) {
    char *dir = fx_make("roberta", NULL);
    char wpath[4200];
    if (weights_rel)
        snprintf(wpath, sizeof wpath, "%s", dc_test_data_path(weights_rel));
    else
        snprintf(wpath, sizeof wpath, "%s/model.safetensors", dir);
    loaded l;
    assert_ok(load_weights(dir, wpath, &l));
    const dc_bert_config *c = dc_bert_config_of(l.bert);
    assert_int_equal(c->kind, DC_BERT_KIND_ROBERTA);
    assert_int_equal(c->pad_token_id, 1);
    assert_int_equal(dc_bert_max_tokens(c), c->max_position - 2);
    assert_true(fabsf(c->eps - 1e-5f) < 1e-12f);
    cJSON *g = golden_open("models5/roberta.json");
    size_t n = golden_count(g);
    const uint32_t H = c->hidden;
    uint32_t *start = calloc(n + 1, sizeof *start), *ids = NULL;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const char *t = golden_text(g, i);
        dc_encode_options o;
        dc_tokenizer_default_options(l.tok, &o);
        o.truncation.enabled = true;
        o.truncation.max_length = dc_bert_max_tokens(c);
        dc_encoding e;
        assert_ok(dc_tokenizer_encode(l.tok, t, strlen(t), &o, &e));
        const cJSON *ref = cJSON_GetArrayItem(cJSON_GetObjectItem(g, "ids"), (int)i);
        assert_int_equal(e.len, cJSON_GetArraySize(ref));
        ids = realloc(ids, (total + e.len) * sizeof *ids);
        for (size_t k = 0; k < e.len; k++) {
            assert_int_equal(e.ids[k], cJSON_GetArrayItem(ref, (int)k)->valueint);
            ids[total + k] = e.ids[k];
        }
        total += e.len;
        start[i + 1] = (uint32_t)total;
        dc_encoding_free(&e);
    }
    float *h = malloc(total * H * sizeof *h);
    dc_bert_batch b = {(uint32_t)n, start, ids, NULL, NULL};
    assert_ok(dc_bert_forward(l.bert, &b, h));
    parity p;
    parity_init(&p);
    for (size_t i = 0; i < n; i++) {
        size_t k;
        float *ref =
            golden_floats(cJSON_GetArrayItem(cJSON_GetObjectItem(g, "hidden"), (int)i), &k);
        assert_int_equal(k, (size_t)(start[i + 1] - start[i]) * H);
        for (uint32_t r = 0; r < start[i + 1] - start[i]; r++)
            parity_add(&p, h + (size_t)(start[i] + r) * H, ref + (size_t)r * H, H);
        free(ref);
    }
    parity_check(&p, what);
    free(h);
    free(ids);
    free(start);
    cJSON_Delete(g);
    unload(&l);
    fx_drop(dir);
}

static void test_roberta_safetensors(void **s) {
    (void)s;
    check_hidden(NULL, "RoBERTa hidden states (model.safetensors)");
}
static void test_roberta_bin_zip(void **s) {
    (void)s;
    check_hidden("models5/roberta/pytorch_model.bin",
                 "RoBERTa hidden states (pytorch_model.bin, zip)");
}
static void test_roberta_bin_legacy(void **s) {
    (void)s;
    check_hidden("models5/roberta/pytorch_model_legacy.bin",
                 "RoBERTa hidden states (pytorch_model.bin, legacy)");
}

/* A pad id inside a sequence takes position pad_token_id and is not counted: the rows after it
 * equal those of the sequence without it when the pad is masked as a key. */
static void test_roberta_pad_positions(void **state) {
    (void)state;
    char *dir = fx_make("roberta", NULL);
    char w[4200];
    snprintf(w, sizeof w, "%s/model.safetensors", dir);
    loaded l;
    assert_ok(load_weights(dir, w, &l));
    const uint32_t H = dc_bert_config_of(l.bert)->hidden;
    uint32_t with_pad[6] = {0, 40, 1, 41, 42, 2}, plain[5] = {0, 40, 41, 42, 2};
    uint8_t mask[6] = {1, 1, 0, 1, 1, 1};
    uint32_t s1[2] = {0, 6}, s2[2] = {0, 5};
    float *a = malloc(6 * H * sizeof *a), *b = malloc(5 * H * sizeof *b);
    dc_bert_batch ba = {1, s1, with_pad, NULL, mask}, bb = {1, s2, plain, NULL, NULL};
    assert_ok(dc_bert_forward(l.bert, &ba, a));
    assert_ok(dc_bert_forward(l.bert, &bb, b));
    const int map[5] = {0, 1, 3, 4, 5};
    for (int r = 0; r < 5; r++)
        for (uint32_t d = 0; d < H; d++)
            assert_true(fabsf(a[(size_t)map[r] * H + d] - b[(size_t)r * H + d]) < 1e-5f);
    /* the limit is max_position − 2 tokens */
    uint32_t n = dc_bert_max_tokens(dc_bert_config_of(l.bert)) + 1;
    uint32_t *ids = malloc(n * sizeof *ids), s3[2] = {0, n};
    for (uint32_t i = 0; i < n; i++) ids[i] = 40;
    float *c = malloc((size_t)n * H * sizeof *c);
    dc_bert_batch bc = {1, s3, ids, NULL, NULL};
    assert_status(dc_bert_forward(l.bert, &bc, c), DC_ERR_INPUT_TOO_LONG);
    s3[1] = n - 1;
    assert_ok(dc_bert_forward(l.bert, &bc, c));
    free(ids);
    free(c);
    free(a);
    free(b);
    unload(&l);
    fx_drop(dir);
}

static void test_roberta_config_errors(void **state) {
    (void)state;
    dc_bert_config c;
    const char *unknown = "{\"model_type\": \"gpt2\", \"vocab_size\": 10, \"hidden_size\": 8, "
                          "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
                          "\"intermediate_size\": 8, \"max_position_embeddings\": 8}";
    assert_status(dc_bert_config_parse(unknown, strlen(unknown), "c.json", &c), DC_ERR_MODEL_LOAD);
    assert_detail_contains("model_type");
    const char *no_room = "{\"model_type\": \"roberta\", \"vocab_size\": 10, \"hidden_size\": 8, "
                          "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
                          "\"intermediate_size\": 8, \"max_position_embeddings\": 2, "
                          "\"pad_token_id\": 1}";
    assert_status(dc_bert_config_parse(no_room, strlen(no_room), "c.json", &c), DC_ERR_MODEL_LOAD);
    assert_detail_contains("max_position_embeddings");
    const char *ok = "{\"model_type\": \"roberta\", \"vocab_size\": 10, \"hidden_size\": 8, "
                     "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
                     "\"intermediate_size\": 8, \"max_position_embeddings\": 514}";
    assert_ok(dc_bert_config_parse(ok, strlen(ok), "c.json", &c));
    assert_int_equal(c.pad_token_id, 1); /* RobertaConfig's default */
    assert_int_equal(dc_bert_max_tokens(&c), 512);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roberta_safetensors),   cmocka_unit_test(test_roberta_bin_zip),
        cmocka_unit_test(test_roberta_bin_legacy),    cmocka_unit_test(test_roberta_pad_positions),
        cmocka_unit_test(test_roberta_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

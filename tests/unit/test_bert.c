/* The BERT encoder on a random-weight fixture (tests/tools/bert_fixture.c) against
 * transformers' BertModel (tests/data/encoder/fixture_bert.json): one packed forward over
 * inputs of mixed lengths (empty, at and beyond the limit), naming variants, key masks, and
 * bad checkpoints that must fail with the tensor or field named. */
#include "models/bert.h"
#include "test_encoder_util.h"
#include "text/tokenizer.h"

typedef struct loaded {
    dc_backend *be;
    dc_bert *bert;
    dc_tokenizer *tok;
} loaded;

static dc_status load_dir(const char *dir, loaded *l) {
    memset(l, 0, sizeof *l);
    char path[4200];
    dc_bert_config cfg;
    snprintf(path, sizeof path, "%s/config.json", dir);
    dc_status st = dc_bert_config_read(path, &cfg);
    if (st) return st;
    if ((st = dc_backend_cpu_create(NULL, &l->be))) return st;
    if ((st = dc_bert_weights_path(dir, path, sizeof path))) return st;
    dc_weights *w = NULL;
    if ((st = dc_weights_open(path, &w))) return st;
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

/* Tokenises the golden texts truncated at max_len into one packed batch. */
typedef struct packed {
    uint32_t n, *start, *ids;
} packed;

static void pack(const loaded *l, const cJSON *g, uint32_t max_len, packed *p) {
    size_t n = golden_count(g);
    p->n = (uint32_t)n;
    p->start = calloc(n + 1, sizeof *p->start);
    p->ids = NULL;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const char *t = golden_text(g, i);
        dc_encode_options o;
        dc_tokenizer_default_options(l->tok, &o);
        o.truncation.enabled = true;
        o.truncation.max_length = max_len;
        dc_encoding e;
        assert_ok(dc_tokenizer_encode(l->tok, t, strlen(t), &o, &e));
        cJSON *ref = cJSON_GetArrayItem(cJSON_GetObjectItem(g, "ids"), (int)i);
        assert_int_equal(e.len, cJSON_GetArraySize(ref));
        p->ids = realloc(p->ids, (total + e.len) * sizeof *p->ids);
        for (size_t k = 0; k < e.len; k++) {
            assert_int_equal(e.ids[k], cJSON_GetArrayItem(ref, (int)k)->valueint);
            p->ids[total + k] = e.ids[k];
        }
        total += e.len;
        p->start[i + 1] = (uint32_t)total;
        dc_encoding_free(&e);
    }
}

static void test_bert_matches_transformers(void **state) {
    (void)state;
    char *dir = fx_make("bert", NULL);
    loaded l;
    assert_ok(load_dir(dir, &l));
    cJSON *g = golden_open("encoder/fixture_bert.json");
    uint32_t H = (uint32_t)cJSON_GetObjectItem(g, "dim")->valueint;
    assert_int_equal(H, dc_bert_config_of(l.bert)->hidden);
    packed p;
    pack(&l, g, (uint32_t)cJSON_GetObjectItem(g, "max_length")->valueint, &p);
    float *h = malloc((size_t)p.start[p.n] * H * sizeof *h);
    dc_bert_batch b = {p.n, p.start, p.ids, NULL, NULL};
    assert_ok(dc_bert_forward(l.bert, &b, h));
    parity par;
    parity_init(&par);
    for (uint32_t i = 0; i < p.n; i++) {
        size_t n;
        float *ref = golden_floats(cJSON_GetArrayItem(cJSON_GetObjectItem(g, "hidden"), (int)i), &n);
        assert_int_equal(n, (size_t)(p.start[i + 1] - p.start[i]) * H);
        for (uint32_t r = p.start[i]; r < p.start[i + 1]; r++)
            parity_add(&par, h + (size_t)r * H, ref + (size_t)(r - p.start[i]) * H, H);
        free(ref);
    }
    parity_check(&par, "BERT fixture last_hidden_state (per token row)");

    /* each sequence alone equals its rows in the packed batch */
    for (uint32_t i = 0; i < p.n; i++) {
        uint32_t len = p.start[i + 1] - p.start[i];
        uint32_t st1[2] = {0, len};
        float *one = malloc(((size_t)len ? len : 1) * H * sizeof *one);
        dc_bert_batch b1 = {1, st1, p.ids + p.start[i], NULL, NULL};
        assert_ok(dc_bert_forward(l.bert, &b1, one));
        for (size_t k = 0; k < (size_t)len * H; k++)
            assert_true(fabsf(one[k] - h[(size_t)p.start[i] * H + k]) < 1e-5f);
        free(one);
    }

    /* masked keys: junk appended with mask 0 leaves the real rows unchanged */
    uint32_t len0 = p.start[2] - p.start[1];
    uint32_t *ids = malloc((len0 + 5) * sizeof *ids);
    uint8_t *mask = malloc(len0 + 5);
    memcpy(ids, p.ids + p.start[1], len0 * sizeof *ids);
    memset(mask, 1, len0);
    for (uint32_t k = 0; k < 5; k++) {
        ids[len0 + k] = 20 + 7 * k;
        mask[len0 + k] = 0;
    }
    uint32_t stm[2] = {0, len0 + 5};
    float *hm = malloc((size_t)(len0 + 5) * H * sizeof *hm);
    dc_bert_batch bm = {1, stm, ids, NULL, mask};
    assert_ok(dc_bert_forward(l.bert, &bm, hm));
    for (size_t k = 0; k < (size_t)len0 * H; k++)
        assert_true(fabsf(hm[k] - h[(size_t)p.start[1] * H + k]) < 1e-5f);
    free(ids);
    free(mask);
    free(hm);

    /* bad inputs */
    uint32_t bad_id = 100000, st_bad[2] = {0, 1};
    dc_bert_batch bb = {1, st_bad, &bad_id, NULL, NULL};
    assert_status(dc_bert_forward(l.bert, &bb, h), DC_ERR_INVALID_VALUE);
    uint32_t *many = calloc(41, sizeof *many), st_long[2] = {0, 41};
    dc_bert_batch bl = {1, st_long, many, NULL, NULL};
    assert_status(dc_bert_forward(l.bert, &bl, h), DC_ERR_INPUT_TOO_LONG);
    free(many);

    free(h);
    free(p.start);
    free(p.ids);
    cJSON_Delete(g);
    unload(&l);
    fx_drop(dir);
}

static void variant_prefix_legacy(dc_fixture_spec *s) {
    s->bert_prefix = true;
    s->legacy_names = true;
    s->position_ids = true;
}

static void test_bert_name_variants_are_equivalent(void **state) {
    (void)state;
    char *a = fx_make("bert", NULL), *b = fx_make("bert", variant_prefix_legacy);
    loaded la, lb;
    assert_ok(load_dir(a, &la));
    assert_ok(load_dir(b, &lb));
    assert_string_equal(dc_bert_prefix(lb.bert), "bert.");
    assert_string_equal(dc_bert_prefix(la.bert), "");
    uint32_t ids[6] = {4, 60, 61, 62, 12, 5}, st[2] = {0, 6};
    uint32_t H = dc_bert_config_of(la.bert)->hidden;
    float *ha = malloc(6 * H * sizeof *ha), *hb = malloc(6 * H * sizeof *hb);
    dc_bert_batch bt = {1, st, ids, NULL, NULL};
    assert_ok(dc_bert_forward(la.bert, &bt, ha));
    assert_ok(dc_bert_forward(lb.bert, &bt, hb));
    assert_memory_equal(ha, hb, 6 * H * sizeof *ha);
    free(ha);
    free(hb);
    unload(&la);
    unload(&lb);
    fx_drop(a);
    fx_drop(b);
}

/* ---- bad checkpoints ---- */

static void drop_bias(dc_fixture_spec *s) { s->drop_tensor = "encoder.layer.1.output.dense.bias"; }
static void bad_shape(dc_fixture_spec *s) { s->bad_shape = "encoder.layer.0.intermediate.dense.weight"; }
static void drop_ln(dc_fixture_spec *s) { s->drop_tensor = "embeddings.LayerNorm.weight"; }

static void expect_load_failure(void (*tweak)(dc_fixture_spec *), dc_status want, const char *needle) {
    char *dir = fx_make("bert", tweak);
    loaded l;
    assert_status(load_dir(dir, &l), want);
    assert_detail_contains(needle);
    unload(&l);
    fx_drop(dir);
}

static void rewrite_config(const char *dir, const char *from, const char *to) {
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t len;
    char *raw = dc_test_read_file(path, &len);
    assert_non_null(raw);
    char *s = malloc(len + 1); /* the read is not NUL-terminated */
    memcpy(s, raw, len);
    s[len] = 0;
    free(raw);
    char *at = strstr(s, from);
    assert_non_null(at);
    FILE *f = fopen(path, "w");
    fprintf(f, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
    fclose(f);
    free(s);
}

static void test_bad_checkpoints_name_the_fault(void **state) {
    (void)state;
    expect_load_failure(drop_bias, DC_ERR_NOT_FOUND, "encoder.layer.1.output.dense.bias");
    expect_load_failure(bad_shape, DC_ERR_INVALID_DIMENSION,
                        "encoder.layer.0.intermediate.dense.weight");
    expect_load_failure(drop_ln, DC_ERR_NOT_FOUND, "embeddings.LayerNorm.weight");

    struct {
        const char *from, *to;
        dc_status want;
        const char *needle;
    } cfgs[] = {
        {"\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1", DC_ERR_MODEL_LOAD, "num_hidden_layers"},
        {"\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3", DC_ERR_NOT_FOUND, "encoder.layer.2."},
        {"\"hidden_size\": 32", "\"hidden_size\": 64", DC_ERR_INVALID_DIMENSION, "embeddings.word_embeddings.weight"},
        {"\"model_type\": \"bert\"", "\"model_type\": \"gpt2\"", DC_ERR_MODEL_LOAD, "model_type"},
        {"\"hidden_act\": \"gelu\"", "\"hidden_act\": \"swishy\"", DC_ERR_MODEL_LOAD, "hidden_act"},
        {"\"num_attention_heads\": 4", "\"num_attention_heads\": 5", DC_ERR_MODEL_LOAD, "num_attention_heads"},
        {"\"vocab_size\"", "\"vocab_sizes\"", DC_ERR_MODEL_LOAD, "vocab_size"},
        {"\"position_embedding_type\": \"absolute\"", "\"position_embedding_type\": \"relative_key\"",
         DC_ERR_MODEL_LOAD, "position_embedding_type"},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        char *dir = fx_make("bert", NULL);
        rewrite_config(dir, cfgs[i].from, cfgs[i].to);
        loaded l;
        assert_status(load_dir(dir, &l), cfgs[i].want);
        assert_detail_contains(cfgs[i].needle);
        unload(&l);
        fx_drop(dir);
    }

    /* truncated weights file */
    char *dir = fx_make("bert", NULL);
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(truncate(path, sb.st_size / 2), 0);
    loaded l;
    dc_status st = load_dir(dir, &l);
    assert_true(st != DC_OK);
    assert_detail_contains("model.safetensors");
    unload(&l);
    /* no weights at all */
    unlink(path);
    assert_status(load_dir(dir, &l), DC_ERR_MODEL_NOT_FOUND);
    unload(&l);
    fx_drop(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bert_matches_transformers),
        cmocka_unit_test(test_bert_name_variants_are_equivalent),
        cmocka_unit_test(test_bad_checkpoints_name_the_fault),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

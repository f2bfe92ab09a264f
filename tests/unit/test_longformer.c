/* Longformer (sliding window per layer + global attention on <s>) on random-weight fixtures
 * against transformers' LongformerModel (tests/data/models5/longformer.json, e5.json):
 * lengths below, at (8, 16, 40) and across (9, 17) the window boundaries (windows 4 and 8:
 * one-sided 2 and 4), computed there on a batch padded to the longest text and to a multiple
 * of the window; no global attention (LongformerModel's default); an input truncated to 4096
 * tokens; E5 as a dc_model (mean over real tokens, L2, truncation); and the banded attention op
 * against a dense reference. */
#include "models/bert.h"
#include "models/pretrained.h"
#include "test_encoder_util.h"
#include "text/tokenizer.h"

typedef struct loaded {
    dc_backend *be;
    dc_bert *bert;
    dc_tokenizer *tok;
} loaded;

static void load_dir(const char *dir, loaded *l) {
    memset(l, 0, sizeof *l);
    char path[4200];
    dc_bert_config cfg;
    snprintf(path, sizeof path, "%s/config.json", dir);
    assert_ok(dc_bert_config_read(path, &cfg));
    assert_int_equal(cfg.kind, DC_BERT_KIND_LONGFORMER);
    assert_ok(dc_backend_cpu_create(NULL, &l->be));
    assert_ok(dc_bert_weights_path(dir, path, sizeof path));
    dc_weights *w = NULL;
    assert_ok(dc_weights_open(path, &w));
    assert_ok(dc_bert_create(w, &cfg, l->be, &l->bert));
    dc_weights_close(w);
    assert_ok(dc_tokenizer_load(dir, &l->tok));
}

static void unload(loaded *l) {
    dc_bert_destroy(l->bert);
    dc_backend_destroy(l->be);
    dc_tokenizer_free(l->tok);
}

static uint32_t *encode(const loaded *l, const char *t, uint32_t *len) {
    dc_encoding e;
    assert_ok(dc_tokenizer_encode(l->tok, t, strlen(t), NULL, &e));
    uint32_t *ids = malloc(e.len * sizeof *ids);
    memcpy(ids, e.ids, e.len * sizeof *ids);
    *len = (uint32_t)e.len;
    dc_encoding_free(&e);
    return ids;
}

static void test_longformer_hidden(void **state) {
    (void)state;
    char *dir = fx_make("longformer", NULL);
    loaded l;
    load_dir(dir, &l);
    const dc_bert_config *c = dc_bert_config_of(l.bert);
    assert_int_equal(c->attention_window[0], 4);
    assert_int_equal(c->attention_window[1], 8);
    assert_int_equal(dc_bert_max_tokens(c), 4096);
    cJSON *g = golden_open("models5/longformer.json");
    const uint32_t H = c->hidden;
    size_t n = golden_count(g);
    uint32_t *start = calloc(n + 1, sizeof *start), *ids = NULL;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t len;
        uint32_t *one = encode(&l, golden_text(g, i), &len);
        const cJSON *ref = cJSON_GetArrayItem(cJSON_GetObjectItem(g, "ids"), (int)i);
        assert_int_equal(len, cJSON_GetArraySize(ref));
        for (uint32_t k = 0; k < len; k++)
            assert_int_equal(one[k], cJSON_GetArrayItem(ref, (int)k)->valueint);
        ids = realloc(ids, (total + len) * sizeof *ids);
        memcpy(ids + total, one, len * sizeof *ids);
        total += len;
        start[i + 1] = (uint32_t)total;
        free(one);
    }
    uint8_t *global = calloc(total, 1);
    for (size_t i = 0; i < n; i++) global[start[i]] = 1;
    float *h = malloc(total * H * sizeof *h);
    dc_bert_batch b = {(uint32_t)n, start, ids, NULL, NULL};
    assert_ok(dc_bert_forward_global(l.bert, &b, global, h));
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
    parity_check(
        &p,
        "Longformer hidden states, global <s>, lengths 3..47 (8, 16, 17, 40 at window boundaries)");
    free(h);
    free(global);
    free(ids);
    free(start);

    /* no global attention: LongformerModel's default */
    const cJSON *ng = cJSON_GetObjectItem(g, "no_global");
    uint32_t len;
    uint32_t *one = encode(&l, cJSON_GetObjectItem(ng, "text")->valuestring, &len);
    uint32_t s1[2] = {0, len};
    h = malloc((size_t)len * H * sizeof *h);
    dc_bert_batch b1 = {1, s1, one, NULL, NULL};
    assert_ok(dc_bert_forward(l.bert, &b1, h));
    size_t k;
    float *ref = golden_floats(cJSON_GetObjectItem(ng, "hidden"), &k);
    assert_int_equal(k, (size_t)len * H);
    parity_init(&p);
    for (uint32_t r = 0; r < len; r++) parity_add(&p, h + (size_t)r * H, ref + (size_t)r * H, H);
    parity_check(&p, "Longformer hidden states, no global attention");
    free(ref);
    free(h);
    free(one);

    /* a long input, truncated to the 4096 tokens the positions allow: pooled mean, first and
     * last rows */
    const cJSON *lg = cJSON_GetObjectItem(g, "long");
    const char *lt = cJSON_GetObjectItem(lg, "text")->valuestring;
    dc_encode_options eo;
    dc_tokenizer_default_options(l.tok, &eo);
    eo.truncation.enabled = true;
    eo.truncation.max_length = dc_bert_max_tokens(c);
    dc_encoding le;
    assert_ok(dc_tokenizer_encode(l.tok, lt, strlen(lt), &eo, &le));
    assert_true(le.truncated);
    len = (uint32_t)le.len;
    one = malloc(len * sizeof *one);
    memcpy(one, le.ids, len * sizeof *one);
    dc_encoding_free(&le);
    assert_int_equal(len, 4096);
    assert_int_equal(len, cJSON_GetObjectItem(lg, "n_tokens")->valueint);
    s1[1] = len;
    b1.ids = one;
    uint8_t *g1 = calloc(len, 1);
    g1[0] = 1;
    h = malloc((size_t)len * H * sizeof *h);
    assert_ok(dc_bert_forward_global(l.bert, &b1, g1, h));
    float *mean = calloc(H, sizeof *mean);
    for (uint32_t d = 0; d < H; d++) {
        double s = 0;
        for (uint32_t r = 0; r < len; r++) s += h[(size_t)r * H + d];
        mean[d] = (float)(s / len);
    }
    parity_init(&p);
    ref = golden_floats(cJSON_GetObjectItem(lg, "mean"), &k);
    parity_add(&p, mean, ref, H);
    free(ref);
    ref = golden_floats(cJSON_GetObjectItem(lg, "first"), &k);
    parity_add(&p, h, ref, H);
    free(ref);
    ref = golden_floats(cJSON_GetObjectItem(lg, "last"), &k);
    parity_add(&p, h + (size_t)(len - 1) * H, ref, H);
    free(ref);
    char what[96];
    snprintf(what, sizeof what, "Longformer %u tokens (mean, first, last rows)", len);
    parity_check(&p, what);
    free(mean);
    free(g1);
    free(h);
    free(one);
    cJSON_Delete(g);
    unload(&l);
    fx_drop(dir);
}

static void test_e5_parity(void **state) {
    (void)state;
    char *dir = fx_make("e5", NULL);
    dc_pretrained_options o = {.model_dir = dir, .max_batch_tokens = 64};
    dc_model *m = NULL;
    assert_ok(dc_pretrained_create(DC_MODEL_CAUSAL, &o, &m));
    assert_ok(dc_model_load(m));
    cJSON *g = golden_open("models5/e5.json");
    size_t n = golden_count(g);
    dc_input *in = calloc(n, sizeof *in);
    for (size_t i = 0; i < n; i++) {
        const char *t = golden_text(g, i);
        in[i] = i % 3 == 1 ? dc_input_code(t, strlen(t), "python")
                           : dc_input_text(t, strlen(t), DC_ROLE_PASSAGE);
    }
    dc_model_embedding *out = calloc(n, sizeof *out);
    assert_ok(dc_model_embed_batch(m, in, n, out));
    parity p;
    parity_init(&p);
    for (size_t i = 0; i < n; i++) {
        size_t k;
        float *ref =
            golden_floats(cJSON_GetArrayItem(cJSON_GetObjectItem(g, "embeddings"), (int)i), &k);
        assert_int_equal(k, DC_DIM_CAUSAL);
        parity_add(&p, out[i].vector, ref, k);
        assert_true(fabs(dc_vec_l2_norm(out[i].vector, k) - 1.0) < 1e-5);
        /* only the last text passes the fixture's 128 tokens */
        assert_int_equal(out[i].truncated, i == n - 1);
        if (i == n - 1)
            assert_int_equal(out[i].tokens_used, cJSON_GetObjectItem(g, "max_tokens")->valueint);
        free(ref);
        dc_model_embedding_free(&out[i]);
    }
    parity_check(&p, "E5 Longformer fixture (global <s>, mean, L2)");
    free(out);
    free(in);
    cJSON_Delete(g);
    dc_model_destroy(m);
    fx_drop(dir);
}

/* The banded op against a dense double-precision reference: band {w, w} with global rows,
 * causal {MAX, 0}, and a query subset. */
static void ref_attention(const float *q, const float *k, const float *v, uint32_t len, uint32_t nh,
                          uint32_t hd, float scale, const uint8_t *allow /* len×len */, uint32_t i,
                          float *out) {
    for (uint32_t h = 0; h < nh; h++) {
        double mx = -INFINITY, den = 0, acc[64] = {0};
        double s[64];
        for (uint32_t j = 0; j < len; j++) {
            s[j] = -INFINITY;
            if (!allow[i * len + j]) continue;
            double d = 0;
            for (uint32_t x = 0; x < hd; x++)
                d += (double)q[h * hd + x] * k[(size_t)j * nh * hd + h * hd + x];
            s[j] = d * scale;
            if (s[j] > mx) mx = s[j];
        }
        for (uint32_t j = 0; j < len; j++) {
            if (!allow[i * len + j]) continue;
            double e = exp(s[j] - mx);
            den += e;
            for (uint32_t x = 0; x < hd; x++) acc[x] += e * v[(size_t)j * nh * hd + h * hd + x];
        }
        for (uint32_t x = 0; x < hd; x++) out[h * hd + x] = den > 0 ? (float)(acc[x] / den) : 0.0f;
    }
}

/* Head widths 8 (the kernel's scalar value columns) and 40 (a 32-column block and the rest). */
static void band_attention_op(uint32_t hd) {
    dc_backend *be;
    assert_ok(dc_backend_cpu_create(NULL, &be));
    const uint32_t nh = 2, W = nh * hd, lens[3] = {13, 1, 40};
    uint32_t start[4] = {0, 13, 14, 54};
    const uint32_t T = 54;
    float *q = malloc(T * W * sizeof *q), *k = malloc(T * W * sizeof *k),
          *v = malloc(T * W * sizeof *v);
    uint64_t s = 7;
    for (uint32_t i = 0; i < T * W; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        q[i] = (float)((s >> 40) % 2000) / 1000.0f - 1.0f;
        k[i] = (float)((s >> 20) % 2000) / 1000.0f - 1.0f;
        v[i] = (float)((s >> 8) % 2000) / 1000.0f - 1.0f;
    }
    uint8_t *key_mask = malloc(T), *gmask = calloc(T, 1);
    memset(key_mask, 1, T);
    key_mask[5] = key_mask[30] = 0;
    gmask[0] = gmask[14] = gmask[14 + 20] = 1;
    dc_seq_batch sb = {3, start, key_mask};
    const float scale = 0.35f;
    struct {
        uint32_t left, right;
        bool global;
    } cases[] = {{3, 3, true},
                 {DC_ATTN_UNBOUNDED, 0, false},
                 {0, 2, false},
                 {DC_ATTN_UNBOUNDED, DC_ATTN_UNBOUNDED, false}};
    float *out = malloc(T * W * sizeof *out), *out2 = malloc(T * W * sizeof *out2), want[128];
    uint8_t allow[64 * 64];
    for (size_t c = 0; c < 4; c++) {
        for (uint32_t i = 0; i < T * W; i++) out[i] = 42.0f;
        dc_attn_opts o = {cases[c].left, cases[c].right, cases[c].global ? gmask : NULL, NULL, 0};
        assert_ok(be->ops->attention_ex(be, q, W, k, v, W, out, W, nh, hd, scale, &sb, &o));
        for (uint32_t sq = 0; sq < 3; sq++) {
            uint32_t r0 = start[sq], len = lens[sq];
            for (uint32_t i = 0; i < len; i++)
                for (uint32_t j = 0; j < len; j++) {
                    bool band = (cases[c].left == DC_ATTN_UNBOUNDED || j + cases[c].left >= i) &&
                                (cases[c].right == DC_ATTN_UNBOUNDED || j <= i + cases[c].right);
                    allow[i * len + j] =
                        key_mask[r0 + j] && (band || (cases[c].global && gmask[r0 + j]));
                }
            for (uint32_t i = 0; i < len; i++) {
                const float *got = out + (size_t)(r0 + i) * W;
                if (cases[c].global && gmask[r0 + i]) {
                    for (uint32_t x = 0; x < W; x++) assert_true(got[x] == 42.0f); /* left alone */
                    continue;
                }
                ref_attention(q + (size_t)(r0 + i) * W, k + (size_t)r0 * W, v + (size_t)r0 * W, len,
                              nh, hd, scale, allow, i, want);
                for (uint32_t x = 0; x < W; x++) assert_true(fabsf(got[x] - want[x]) < 2e-6f);
            }
        }
        /* masked keys add exactly 0: poisoned, not a bit of the output changes */
        float *vp = malloc(T * W * sizeof *vp);
        memcpy(vp, v, T * W * sizeof *vp);
        for (uint32_t r = 0; r < T; r++)
            if (!key_mask[r])
                for (uint32_t x = 0; x < W; x++) vp[(size_t)r * W + x] = NAN;
        memcpy(out2, out, T * W * sizeof *out2);
        assert_ok(be->ops->attention_ex(be, q, W, k, vp, W, out2, W, nh, hd, scale, &sb, &o));
        assert_memory_equal(out, out2, T * W * sizeof *out);
        free(vp);
    }
    /* a query subset: rows 0 and 34 with their own (compact) q rows, full attention */
    uint32_t rows[2] = {0, 34};
    float qs[2 * 128], os[2 * 128];
    memcpy(qs, q, W * sizeof *qs);
    memcpy(qs + W, q + 34 * W, W * sizeof *qs);
    dc_attn_opts sub = {DC_ATTN_UNBOUNDED, DC_ATTN_UNBOUNDED, NULL, rows, 2};
    assert_ok(be->ops->attention_ex(be, qs, W, k, v, W, os, W, nh, hd, scale, &sb, &sub));
    const uint32_t seq_of[2] = {0, 2};
    for (int r = 0; r < 2; r++) {
        uint32_t sq = seq_of[r], r0 = start[sq], len = lens[sq];
        for (uint32_t i = 0; i < len; i++)
            for (uint32_t j = 0; j < len; j++) allow[i * len + j] = key_mask[r0 + j];
        ref_attention(qs + r * W, k + (size_t)r0 * W, v + (size_t)r0 * W, len, nh, hd, scale, allow,
                      rows[r] - r0, want);
        for (uint32_t x = 0; x < W; x++) assert_true(fabsf(os[r * W + x] - want[x]) < 2e-6f);
    }
    uint32_t bad[2] = {34, 0};
    sub.rows = bad;
    assert_status(be->ops->attention_ex(be, qs, W, k, v, W, os, W, nh, hd, scale, &sb, &sub),
                  DC_ERR_INVALID_ARGUMENT);
    free(q);
    free(k);
    free(v);
    free(out);
    free(out2);
    free(key_mask);
    free(gmask);
    dc_backend_destroy(be);
}

static void test_band_attention_op(void **state) {
    (void)state;
    band_attention_op(8);
    band_attention_op(40);
}

static void drop_query_global(dc_fixture_spec *s) {
    s->drop_tensor = "longformer.encoder.layer.1.attention.self.query_global.weight";
}

static void test_longformer_config_errors(void **state) {
    (void)state;
    dc_bert_config c;
    const char *odd = "{\"model_type\": \"longformer\", \"vocab_size\": 10, \"hidden_size\": 8, "
                      "\"num_hidden_layers\": 2, \"num_attention_heads\": 2, "
                      "\"intermediate_size\": 8, \"max_position_embeddings\": 20, "
                      "\"attention_window\": [4, 5]}";
    assert_status(dc_bert_config_parse(odd, strlen(odd), "c.json", &c), DC_ERR_MODEL_LOAD);
    assert_detail_contains("attention_window");
    const char *count = "{\"model_type\": \"longformer\", \"vocab_size\": 10, \"hidden_size\": 8, "
                        "\"num_hidden_layers\": 2, \"num_attention_heads\": 2, "
                        "\"intermediate_size\": 8, \"max_position_embeddings\": 20, "
                        "\"attention_window\": [4]}";
    assert_status(dc_bert_config_parse(count, strlen(count), "c.json", &c), DC_ERR_MODEL_LOAD);
    assert_detail_contains("2 layers");
    const char *one = "{\"model_type\": \"longformer\", \"vocab_size\": 10, \"hidden_size\": 8, "
                      "\"num_hidden_layers\": 3, \"num_attention_heads\": 2, "
                      "\"intermediate_size\": 8, \"max_position_embeddings\": 4098, "
                      "\"attention_window\": 512}";
    assert_ok(dc_bert_config_parse(one, strlen(one), "c.json", &c));
    assert_int_equal(c.attention_window[2], 512);
    assert_int_equal(dc_bert_max_tokens(&c), 4096);
    /* a checkpoint without the global projections names the missing tensor */
    char *dir = fx_make("longformer", drop_query_global);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    assert_ok(dc_bert_config_read(path, &c));
    dc_backend *be;
    assert_ok(dc_backend_cpu_create(NULL, &be));
    dc_weights *w;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    assert_ok(dc_weights_open(path, &w));
    dc_bert *b = NULL;
    assert_status(dc_bert_create(w, &c, be, &b), DC_ERR_NOT_FOUND);
    assert_detail_contains("longformer.encoder.layer.1.attention.self.query_global.weight");
    dc_weights_close(w);
    dc_backend_destroy(be);
    fx_drop(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_longformer_hidden),
        cmocka_unit_test(test_e5_parity),
        cmocka_unit_test(test_band_attention_op),
        cmocka_unit_test(test_longformer_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The pipeline with the built-in factory on real model code: the four custom models and the
 * eight pretrained models from random-weight fixtures in a models folder (E1, E5, E7, E8, E11 as
 * plain folders found by name, short name or repo name; E6, E10 and E12 in the huggingface_hub
 * cache layout). Checks that per-model vectors equal
 * the models run on their own, that the SPLADE weights and ColBERT rows come through, and that
 * warm-up and eager loading work on real models. */
#include "../tools/bert_fixture.c"
#include "models/custom.h"
#include "models/pretrained.h"
#include "text/token_manager.h"
#include "test_runtime_pipeline.h"


/* ThreadSanitizer: oneDNN is not instrumented, so the lazy set-up of its primitive cache when
 * two models load in parallel shows up as a race inside libdnnl; libgomp is not either, so the
 * hand-off of a parallel-for's job to its OpenMP team (a barrier TSan cannot see) shows up as a
 * race in cpu_parallel.c. Our own threads stay checked. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void) {
    return "called_from_lib:libdnnl.so.2\n"
           "race:run_pieces\n"
           "race:dc_cpu_parallel_for\n";
}

static char root[64];

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void put_fixture(const char *name, const char *folder, bool hub) {
    dc_fixture_spec spec;
    assert_true(dc_fixture_named(name, &spec));
    char p[512];
    if (hub) {
        snprintf(p, sizeof p, "%s/%s/snapshots/0123abcd", root, folder);
        rt_mkdir_p(p);
        assert_int_equal(dc_fixture_write(p, &spec), 0);
        snprintf(p, sizeof p, "%s/%s/refs", root, folder);
        rt_mkdir_p(p);
        strcat(p, "/main");
        write_text(p, "0123abcd\n");
    } else {
        snprintf(p, sizeof p, "%s/%s", root, folder);
        assert_int_equal(dc_fixture_write(p, &spec), 0);
    }
}

static int setup(void **state) {
    (void)state;
    snprintf(root, sizeof root, "/tmp/dc_plm_XXXXXX");
    if (!mkdtemp(root)) return -1;
    put_fixture("e1", "semantic", false);
    put_fixture("e8", "graph", false);
    put_fixture("e11", "all-MiniLM-L6-v2", false); /* found by its short name */
    put_fixture("e6", "models--naver--splade-cocondenser-ensembledistil", true);
    put_fixture("e12", "models--colbert-ir--colbertv2.0", true);
    put_fixture("e5", "causal", false);
    put_fixture("e7", "codebert-base", false);
    put_fixture("clip", "models--openai--clip-vit-large-patch14", true);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    rt_remove_tree(root);
    return 0;
}

static const uint32_t fixture_models = DC_ALL_MODELS_MASK; /* all twelve */

static void open_builtin(dc_pipeline **p, bool eager, bool warm) {
    dc_config cfg;
    dc_config_defaults(&cfg);
    cfg.fusion.expert_hidden_dim = 64;
    cfg.models.lazy_loading = !eager;
    snprintf(cfg.models.models_dir, sizeof cfg.models.models_dir, "%s", root);
    dc_pipeline_options o;
    dc_pipeline_options_default(&o);
    o.warmup = warm;
    assert_ok(dc_pipeline_open_ex(&cfg, &o, p));
}

static void test_fixture_models_through_pipeline(void **state) {
    (void)state;
    dc_pipeline *p = NULL;
    open_builtin(&p, false, false);
    static const char text[] = "Paris is the capital of France, said the passage.";
    dc_input in = dc_input_text(text, sizeof text - 1, DC_ROLE_PASSAGE);
    in.has_t_event = true;
    in.t_event = 1700000000.0;
    dc_pipeline_result r;
    assert_ok(dc_pipeline_embed(p, &in, &r));
    assert_int_equal(r.ok_mask, fixture_models);
    assert_int_equal(r.fused.present_mask, fixture_models);
    for (int i = 0; i < DC_NUM_MODELS; i++)
        if (!((fixture_models >> i) & 1u)) assert_int_equal(r.models[i].status, DC_RUN_SKIPPED);

    /* per-model vectors are what each model gives on its own (with the t_ref the pipeline used) */
    dc_input same = in;
    same.has_t_ref = true;
    same.t_ref = r.t_ref;
    const dc_model_id pre[3] = {DC_MODEL_SEMANTIC, DC_MODEL_ENTITY, DC_MODEL_GRAPH};
    const char *dirs[3] = {"semantic", "all-MiniLM-L6-v2", "graph"};
    for (int k = 0; k < 3; k++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/%s", root, dirs[k]);
        dc_pretrained_options po = {.model_dir = dir};
        dc_model *m = NULL;
        assert_ok(dc_pretrained_create(pre[k], &po, &m));
        assert_ok(dc_model_load(m));
        dc_model_embedding e;
        assert_ok(dc_model_embed(m, &same, &e));
        assert_int_equal(e.dim, r.models[pre[k]].dim);
        assert_memory_equal(e.vector, r.models[pre[k]].vector, e.dim * sizeof(float));
        assert_int_equal(e.tokens_used, r.models[pre[k]].tokens_used);
        dc_model_embedding_free(&e);
        dc_model_destroy(m);
    }
    dc_model *t = NULL;
    assert_ok(dc_temporal_recent_create(NULL, &t));
    assert_ok(dc_model_load(t));
    dc_model_embedding e2;
    assert_ok(dc_model_embed(t, &same, &e2));
    assert_memory_equal(e2.vector, r.models[DC_MODEL_TEMPORAL_RECENT].vector, e2.dim * sizeof(float));
    dc_model_embedding_free(&e2);
    dc_model_destroy(t);

    /* SPLADE weights (E6) and ColBERT rows (E12) */
    assert_true(r.fused.sparse.nnz > 0);
    for (uint32_t i = 1; i < r.fused.sparse.nnz; i++)
        assert_true(r.fused.sparse.indices[i] > r.fused.sparse.indices[i - 1]);
    assert_true(r.fused.colbert.n_tokens > 0);
    assert_int_equal(r.fused.colbert.dim, DC_DIM_LATE_INTERACTION);
    /* the pooled E12 vector is the renormalised mean of those rows */
    double mean[DC_DIM_LATE_INTERACTION] = {0};
    for (uint32_t t2 = 0; t2 < r.fused.colbert.n_tokens; t2++)
        for (uint32_t d = 0; d < DC_DIM_LATE_INTERACTION; d++)
            mean[d] += r.fused.colbert.data[(size_t)t2 * DC_DIM_LATE_INTERACTION + d];
    float mf[DC_DIM_LATE_INTERACTION];
    for (int d = 0; d < DC_DIM_LATE_INTERACTION; d++) mf[d] = (float)mean[d];
    dc_vec_normalize(mf, DC_DIM_LATE_INTERACTION);
    assert_true(dc_vec_cosine(mf, r.models[DC_MODEL_LATE_INTERACTION].vector, DC_DIM_LATE_INTERACTION) > 0.99999);
    assert_ok(dc_fused_validate(&r.fused));

    /* the cache hands the same aux data back */
    dc_pipeline_result h;
    assert_ok(dc_pipeline_embed(p, &in, &h));
    assert_true(h.cache_hit);
    assert_int_equal(h.fused.sparse.nnz, r.fused.sparse.nnz);
    assert_memory_equal(h.fused.colbert.data, r.fused.colbert.data,
                        (size_t)r.fused.colbert.n_tokens * DC_DIM_LATE_INTERACTION * sizeof(float));
    dc_pipeline_result_free(&h);
    /* no_aux skips them */
    dc_embed_options o = {.no_aux = true, .no_cache = true};
    assert_ok(dc_pipeline_embed_ex(p, &in, &o, &h));
    assert_int_equal(h.fused.sparse.nnz, 0);
    assert_int_equal(h.fused.colbert.n_tokens, 0);
    dc_pipeline_result_free(&h);
    dc_pipeline_result_free(&r);
    /* a query's token matrix is in ColBERT query mode: [MASK]-padded to 32 rows */
    dc_input q = dc_input_text("capital of France", 17, DC_ROLE_QUERY);
    assert_ok(dc_pipeline_embed(p, &q, &h));
    assert_int_equal(h.fused.colbert.n_tokens, 32);
    dc_pipeline_result_free(&h);

    /* an image goes to E10 alone */
    size_t ilen = 0;
    uint8_t *png = dc_test_read_file(dc_test_data_path("images/gray_224x224.png"), &ilen);
    assert_non_null(png);
    dc_input img = dc_input_image(png, ilen, DC_IMAGE_PNG);
    assert_ok(dc_pipeline_embed(p, &img, &h));
    assert_int_equal(h.ok_mask, 1u << DC_MODEL_MULTIMODAL);
    assert_int_equal(h.models[DC_MODEL_MULTIMODAL].dim, DC_DIM_MULTIMODAL);
    assert_true(fabs(rt_norm(h.fused.vector, DC_DIM_FUSED) - 1.0) < 1e-4);
    dc_pipeline_result_free(&h);
    free(png);

    dc_pipeline_health hl;
    assert_ok(dc_pipeline_health_get(p, &hl));
    assert_int_equal(hl.models_ready, 12);
    assert_true(hl.healthy);
    assert_true(hl.minimum_viable);
    dc_pipeline_close(p);
}

static void test_eager_loading_and_warmup(void **state) {
    (void)state;
    dc_pipeline *p = NULL;
    open_builtin(&p, true, true);
    dc_warmup_report w;
    dc_pipeline_warmup_report(p, &w);
    assert_int_equal(w.models_warmed, 12);
    assert_true(w.fusion_warmed);
    assert_true(w.model[DC_MODEL_SEMANTIC].samples > 0);
    dc_pipeline_stats s;
    assert_ok(dc_pipeline_stats_get(p, &s));
    assert_true(s.model[DC_MODEL_SEMANTIC].memory_bytes > 0);
    assert_true(s.memory_bytes > 0);
    for (int i = 0; i < DC_NUM_MODELS; i++) assert_int_equal(s.model[i].state, DC_MODEL_STATE_LOADED);
    static const char code[] = "def add(a, b):\n    return a + b\n";
    dc_input in = dc_input_code(code, sizeof code - 1, "python");
    dc_pipeline_result r;
    assert_ok(dc_pipeline_embed(p, &in, &r));
    for (int i = 0; i < DC_NUM_MODELS; i++)
        if (r.models[i].status == DC_RUN_OK) assert_true(dc_model_accepts((dc_model_id)i, DC_INPUT_CODE));
    dc_pipeline_result_free(&r);
    dc_pipeline_close(p);
}

/* ---- one forward for every output, shared tokenizations (DESIGN §3) ---- */

static dc_model *load_fixture(dc_model_id id, const char *folder) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", root, folder);
    dc_pretrained_options po = {.model_dir = dir};
    dc_model *m = NULL;
    assert_ok(dc_pretrained_create(id, &po, &m));
    assert_ok(dc_model_load(m));
    return m;
}

static void assert_same_sparse(const dc_sparse_vector *a, const dc_sparse_vector *b) {
    assert_int_equal(a->nnz, b->nnz);
    assert_true(a->nnz > 0);
    assert_memory_equal(a->indices, b->indices, a->nnz * sizeof *a->indices);
    assert_memory_equal(a->values, b->values, a->nnz * sizeof *a->values);
}

static void assert_same_rows(const dc_token_matrix *a, const dc_token_matrix *b) {
    assert_int_equal(a->n_tokens, b->n_tokens);
    assert_int_equal(a->dim, b->dim);
    assert_true(a->n_tokens > 0);
    assert_memory_equal(a->data, b->data, (size_t)a->n_tokens * a->dim * sizeof(float));
}

/* The shared tokenizations a caller would hand over: each model's requests, one
 * dc_token_manager_encode_many per input. */
static void share_tokens(dc_model *m, const dc_input *in, size_t n, dc_encoding (*enc)[2],
                         dc_pretokenized *pre) {
    char dir[4096];
    dc_hash128 fp;
    assert_ok(dc_pretrained_tokenizer_source(m, dir, sizeof dir, &fp));
    dc_tokenizer *tok = NULL;
    assert_ok(dc_tokenizer_load(dir, &tok));
    dc_token_manager *tm = NULL;
    assert_ok(dc_token_manager_create(0, 0, &tm));
    assert_ok(dc_token_manager_set_tokenizer(tm, DC_TOK_FAMILY_BERT_UNCASED, tok));
    for (size_t i = 0; i < n; i++) {
        dc_token_request req[2];
        uint32_t k = 0;
        assert_ok(dc_pretrained_token_requests(m, &in[i], true, req, &k));
        assert_true(k >= 1);
        assert_ok(dc_token_manager_encode_many(tm, req, k, in[i].content, in[i].content_len, enc[i]));
        pre[i].n = k;
        pre[i].enc[0] = &enc[i][0];
        pre[i].enc[1] = k > 1 ? &enc[i][1] : NULL;
    }
    dc_token_manager_destroy(tm);
}

static void test_one_forward_for_every_output(void **state) {
    (void)state;
    static const char a[] = "Paris is the capital of France, said the passage.";
    static const char b[] = "what is the capital of france?";
    const dc_input in[2] = {dc_input_text(a, sizeof a - 1, DC_ROLE_PASSAGE),
                            dc_input_text(b, sizeof b - 1, DC_ROLE_QUERY)};
    dc_model_embedding sep[2], one[2];
    dc_encoding enc[2][2];
    dc_pretokenized pre[2];
    memset(enc, 0, sizeof enc);

    /* E6: the SPLADE weights come from the forward that gave the vectors */
    dc_model *m = load_fixture(DC_MODEL_SPARSE, "models--naver--splade-cocondenser-ensembledistil");
    dc_sparse_vector sp_sep[2], sp_one[2];
    assert_ok(dc_model_embed_batch(m, in, 2, sep));
    assert_ok(dc_splade_encode(m, in, 2, sp_sep));
    for (int shared = 0; shared < 2; shared++) {
        if (shared) share_tokens(m, in, 2, enc, pre);
        uint64_t f0 = dc_pretrained_forward_count();
        assert_ok(dc_pretrained_embed_ex(m, in, 2, shared ? pre : NULL, NULL, one, sp_one, NULL));
        assert_int_equal(dc_pretrained_forward_count() - f0, 1);
        for (int i = 0; i < 2; i++) {
            assert_memory_equal(one[i].vector, sep[i].vector, sep[i].dim * sizeof(float));
            assert_int_equal(one[i].tokens_used, sep[i].tokens_used);
            assert_same_sparse(&sp_one[i], &sp_sep[i]);
            dc_model_embedding_free(&one[i]);
            dc_sparse_vector_free(&sp_one[i]);
        }
        for (int i = 0; shared && i < 2; i++) {
            dc_encoding_free(&enc[i][0]);
            dc_encoding_free(&enc[i][1]);
        }
    }
    /* items that do not want the weights get none */
    const bool want[2] = {false, true};
    assert_ok(dc_pretrained_embed_ex(m, in, 2, NULL, want, one, sp_one, NULL));
    assert_int_equal(sp_one[0].nnz, 0);
    assert_null(sp_one[0].indices);
    assert_same_sparse(&sp_one[1], &sp_sep[1]);
    for (int i = 0; i < 2; i++) {
        dc_model_embedding_free(&one[i]);
        dc_model_embedding_free(&sep[i]);
        dc_sparse_vector_free(&sp_one[i]);
        dc_sparse_vector_free(&sp_sep[i]);
    }
    dc_model_destroy(m);

    /* E12: a document's rows are the rows its vector was pooled from (one forward); a query's
     * rows are query mode, a second sequence */
    m = load_fixture(DC_MODEL_LATE_INTERACTION, "models--colbert-ir--colbertv2.0");
    dc_token_matrix tm_sep[2], tm_one[2];
    /* one input per forward on both sides: packing several sequences into one forward may move
     * the last bits (the GEMM shapes differ) */
    for (int i = 0; i < 2; i++) {
        assert_ok(dc_model_embed(m, &in[i], &sep[i]));
        assert_ok(dc_colbert_encode(m, &in[i], DC_COLBERT_AUTO, &tm_sep[i]));
    }
    for (int shared = 0; shared < 2; shared++) {
        if (shared) share_tokens(m, in, 2, enc, pre);
        uint64_t f0 = dc_pretrained_forward_count();
        assert_ok(dc_pretrained_embed_ex(m, in, 1, shared ? pre : NULL, NULL, one, NULL, tm_one));
        assert_int_equal(dc_pretrained_forward_count() - f0, 1); /* the document alone */
        assert_memory_equal(one[0].vector, sep[0].vector, sep[0].dim * sizeof(float));
        assert_same_rows(&tm_one[0], &tm_sep[0]);
        dc_model_embedding_free(&one[0]);
        dc_token_matrix_free(&tm_one[0]);
        assert_ok(dc_pretrained_embed_ex(m, &in[1], 1, shared ? &pre[1] : NULL, NULL, one, NULL, tm_one));
        assert_memory_equal(one[0].vector, sep[1].vector, sep[1].dim * sizeof(float));
        assert_int_equal(one[0].tokens_used, sep[1].tokens_used);
        assert_same_rows(&tm_one[0], &tm_sep[1]);
        assert_int_equal(tm_one[0].n_tokens, 32); /* query mode: [MASK]-padded to 32 */
        dc_model_embedding_free(&one[0]);
        dc_token_matrix_free(&tm_one[0]);
        for (int i = 0; shared && i < 2; i++) {
            dc_encoding_free(&enc[i][0]);
            dc_encoding_free(&enc[i][1]);
        }
    }
    for (int i = 0; i < 2; i++) {
        dc_model_embedding_free(&sep[i]);
        dc_token_matrix_free(&tm_sep[i]);
    }
    dc_model_destroy(m);

    /* the plain models: a shared tokenization gives the vector the model gives on its own */
    static const struct { dc_model_id id; const char *folder; } plain[] = {
        {DC_MODEL_SEMANTIC, "semantic"}, {DC_MODEL_GRAPH, "graph"},
        {DC_MODEL_ENTITY, "all-MiniLM-L6-v2"}, {DC_MODEL_CAUSAL, "causal"},
        {DC_MODEL_CODE, "codebert-base"}};
    for (size_t k = 0; k < sizeof plain / sizeof plain[0]; k++) {
        m = load_fixture(plain[k].id, plain[k].folder);
        assert_ok(dc_model_embed_batch(m, in, 2, sep));
        share_tokens(m, in, 2, enc, pre);
        assert_ok(dc_pretrained_embed_ex(m, in, 2, pre, NULL, one, NULL, NULL));
        for (int i = 0; i < 2; i++) {
            assert_memory_equal(one[i].vector, sep[i].vector, sep[i].dim * sizeof(float));
            assert_int_equal(one[i].tokens_used, sep[i].tokens_used);
            assert_int_equal(one[i].truncated, sep[i].truncated);
            dc_model_embedding_free(&one[i]);
            dc_model_embedding_free(&sep[i]);
            dc_encoding_free(&enc[i][0]);
            dc_encoding_free(&enc[i][1]);
        }
        dc_model_destroy(m);
    }
}

/* Through the pipeline: one tokenization per input and tokenizer (the tokenise stage), one
 * forward per encoder, and E6/E12 extras equal to the separate calls. */
static void test_pipeline_tokenises_once(void **state) {
    (void)state;
    dc_pipeline *p = NULL;
    open_builtin(&p, true, false); /* loaded: the tokenise stage serves loaded encoders */
    dc_pipeline_stats st;
    static const char text[] = "Tokenise me once, said the passage to the twelve models.";
    dc_input in = dc_input_text(text, sizeof text - 1, DC_ROLE_PASSAGE);
    dc_embed_options o = {.no_cache = true};
    dc_pipeline_result r;
    uint64_t f0 = dc_pretrained_forward_count();
    assert_ok(dc_pipeline_embed_ex(p, &in, &o, &r));
    /* seven encoders (E1, E5, E6, E7, E8, E11, E12), one forward each: the extras come along */
    assert_int_equal(dc_pretrained_forward_count() - f0, 7);
    assert_ok(dc_pipeline_stats_get(p, &st));
    const uint32_t groups = st.shared_tokenizers; /* known once the encoders were seen */
    assert_true(groups >= 1 && groups <= 3); /* BERT uncased, RoBERTa BPE (E5, E7 may differ) */
    /* one shared tokenization per tokenizer (inside the BERT one the token manager tokenises
     * E1's "passage: " + text apart from the plain text) */
    assert_int_equal(st.tokenizations, groups);
    assert_int_equal(st.tokenise.count, 1);

    /* the extras equal the separate calls on the same input, bit for bit */
    dc_input same = in;
    same.has_t_ref = true;
    same.t_ref = r.t_ref;
    dc_model *m = load_fixture(DC_MODEL_SPARSE, "models--naver--splade-cocondenser-ensembledistil");
    dc_sparse_vector sv;
    assert_ok(dc_splade_encode(m, &same, 1, &sv));
    assert_same_sparse(&r.fused.sparse, &sv);
    dc_sparse_vector_free(&sv);
    dc_model_embedding e;
    assert_ok(dc_model_embed(m, &same, &e));
    assert_memory_equal(e.vector, r.models[DC_MODEL_SPARSE].vector, e.dim * sizeof(float));
    dc_model_embedding_free(&e);
    dc_model_destroy(m);
    m = load_fixture(DC_MODEL_LATE_INTERACTION, "models--colbert-ir--colbertv2.0");
    dc_token_matrix tm;
    assert_ok(dc_colbert_encode(m, &same, DC_COLBERT_AUTO, &tm));
    assert_same_rows(&r.fused.colbert, &tm);
    dc_token_matrix_free(&tm);
    dc_model_destroy(m);
    dc_pipeline_result_free(&r);

    /* a query: E12 adds its query-mode sequence, still one tokenization per tokenizer */
    dc_input q = dc_input_text("capital of France", 17, DC_ROLE_QUERY);
    uint64_t runs = st.tokenizations;
    f0 = dc_pretrained_forward_count();
    assert_ok(dc_pipeline_embed_ex(p, &q, &o, &r));
    assert_int_equal(dc_pretrained_forward_count() - f0, 8);
    assert_int_equal(r.fused.colbert.n_tokens, 32);
    assert_ok(dc_pipeline_stats_get(p, &st));
    assert_int_equal(st.tokenizations - runs, groups);
    dc_pipeline_result_free(&r);
    dc_pipeline_close(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_models_through_pipeline),
        cmocka_unit_test(test_eager_loading_and_warmup),
        cmocka_unit_test(test_one_forward_for_every_output),
        cmocka_unit_test(test_pipeline_tokenises_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

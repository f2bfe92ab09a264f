/* [models.<name>] pooling / normalize overrides: the config keys (parse, validation naming the
 * key, which models take them), their way to the model options, and what they do to the
 * vector of random-weight fixtures, compared with the model's own hidden states. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tools/bert_fixture.c"
#include "core/config_internal.h"
#include "models/pretrained.h"
#include "runtime/registry.h"
#include "test_support.h"

/* Fixture `name` in a fresh temp folder (files and 1_Pooling/ only, one level deep). */
static char *fx_make(const char *name) {
    dc_fixture_spec s;
    assert_true(dc_fixture_named(name, &s));
    char *dir = malloc(64);
    snprintf(dir, 64, "/tmp/dc_ov_XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(dc_fixture_write(dir, &s), 0);
    return dir;
}

static void fx_drop(char *dir) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(dir);
}

static dc_config *new_defaults(void) {
    dc_config *c = malloc(sizeof *c);
    assert_non_null(c);
    dc_config_defaults(c);
    return c;
}

static dc_status apply(dc_config *c, const char *toml) {
    return dc_config_apply_toml(c, toml, strlen(toml), "t.toml");
}

/* ---- configuration ---- */

static void test_config_keys_parse(void **state) {
    (void)state;
    dc_config *c = new_defaults();
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        assert_int_equal(c->models.model[i].pooling, DC_POOLING_AUTO);
        assert_int_equal(c->models.model[i].normalize, DC_NORMALIZE_AUTO);
    }
    assert_ok(apply(c, "[models.entity]\npooling = \"cls\"\nnormalize = \"false\"\n"
                       "[models.code]\npooling = \"MeanSqrtLen\"\nnormalize = true\n"
                       "[models.graph]\nnormalize = false\npooling = \"lasttoken\"\n"));
    assert_int_equal(c->models.model[DC_MODEL_ENTITY].pooling, DC_POOLING_CLS);
    assert_int_equal(c->models.model[DC_MODEL_ENTITY].normalize, DC_NORMALIZE_FALSE);
    assert_int_equal(c->models.model[DC_MODEL_CODE].pooling, DC_POOLING_MEAN_SQRT_LEN);
    assert_int_equal(c->models.model[DC_MODEL_CODE].normalize, DC_NORMALIZE_TRUE);
    assert_int_equal(c->models.model[DC_MODEL_GRAPH].normalize, DC_NORMALIZE_FALSE);
    assert_int_equal(c->models.model[DC_MODEL_GRAPH].pooling, DC_POOLING_LASTTOKEN);
    assert_ok(dc_config_validate(c));

    /* environment and set layers, and the writer's round trip */
    char *env[] = {"DODECA_MODELS_SEMANTIC_POOLING=max", "DODECA_MODELS_CAUSAL_NORMALIZE=false",
                   NULL};
    assert_ok(dc_config_apply_env(c, env));
    assert_int_equal(c->models.model[DC_MODEL_SEMANTIC].pooling, DC_POOLING_MAX);
    assert_int_equal(c->models.model[DC_MODEL_CAUSAL].normalize, DC_NORMALIZE_FALSE);
    assert_ok(dc_config_set(c, "models.entity.pooling", "weightedmean"));
    assert_int_equal(c->models.model[DC_MODEL_ENTITY].pooling, DC_POOLING_WEIGHTEDMEAN);
    char *text = NULL;
    size_t len = 0;
    assert_ok(dc_config_to_toml(c, &text, &len));
    assert_non_null(strstr(text, "pooling = \"weightedmean\""));
    dc_config *d = new_defaults();
    assert_ok(dc_config_apply_toml(d, text, len, "written"));
    assert_true(dc_config_equal(c, d));
    free(text);
    free(d);
    free(c);
}

static void test_config_bad_values_name_the_key(void **state) {
    (void)state;
    dc_config *c = new_defaults();
    assert_status(apply(c, "[models.entity]\npooling = \"median\"\n"), DC_ERR_CONFIG);
    assert_detail_contains("models.entity.pooling");
    assert_detail_contains("cls");
    assert_status(apply(c, "[models.entity]\nnormalize = \"maybe\"\n"), DC_ERR_CONFIG);
    assert_detail_contains("models.entity.normalize");
    assert_status(apply(c, "[models.entity]\npooling = 3\n"), DC_ERR_CONFIG);
    assert_detail_contains("models.entity.pooling");
    assert_status(dc_config_set(c, "models.code.normalize", "yes"), DC_ERR_CONFIG);
    assert_detail_contains("models.code.normalize");
    free(c);
}

/* Overrides only where a recipe chooses the pooling: E1, E5, E7, E8, E11. */
static void test_config_models_that_refuse(void **state) {
    (void)state;
    static const struct {
        const char *toml, *key;
    } bad[] = {
        {"[models.sparse]\npooling = \"mean\"\n", "models.sparse.pooling"},
        {"[models.late_interaction]\nnormalize = \"false\"\n", "models.late_interaction.normalize"},
        {"[models.multimodal]\npooling = \"cls\"\n", "models.multimodal.pooling"},
        {"[models.temporal_recent]\nnormalize = \"true\"\n", "models.temporal_recent.normalize"},
        {"[models.temporal_periodic]\npooling = \"max\"\n", "models.temporal_periodic.pooling"},
        {"[models.temporal_positional]\npooling = \"cls\"\n",
         "models.temporal_positional.pooling"},
        {"[models.hdc]\nnormalize = false\n", "models.hdc.normalize"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dc_config *c = new_defaults();
        assert_ok(apply(c, bad[i].toml));
        assert_status(dc_config_validate(c), DC_ERR_CONFIG);
        assert_detail_contains(bad[i].key);
        assert_detail_contains("t.toml:");
        free(c);
    }
    dc_config *c = new_defaults();
    assert_ok(apply(c, "[models.semantic]\npooling = \"cls\"\n[models.causal]\npooling = \"max\"\n"
                       "[models.code]\nnormalize = \"false\"\n[models.graph]\nnormalize = true\n"
                       "[models.entity]\npooling = \"mean_sqrt_len\"\n"
                       "[models.sparse]\npooling = \"auto\"\nnormalize = \"auto\"\n"));
    assert_ok(dc_config_validate(c));
    /* the model options and the model's version (which keys the cache) carry the override */
    dc_pretrained_options o;
    char dir[256];
    dc_pretrained_options_from_config(DC_MODEL_ENTITY, &c->models.model[DC_MODEL_ENTITY], "/m",
                                      dir, sizeof dir, &o);
    assert_int_equal(o.pooling, DC_POOLING_MEAN_SQRT_LEN);
    assert_int_equal(o.normalize, DC_NORMALIZE_AUTO);
    dc_model_config plain = c->models.model[DC_MODEL_SPARSE];
    dc_hash128 a = dc_registry_config_version(DC_MODEL_ENTITY, &plain, "/nonexistent");
    dc_hash128 b = dc_registry_config_version(DC_MODEL_ENTITY, &c->models.model[DC_MODEL_ENTITY],
                                              "/nonexistent");
    assert_true(a.lo != b.lo || a.hi != b.hi);
    free(c);

    /* the constructors refuse too, before looking at the folder */
    dc_pretrained_options bad_o = {.model_dir = "/nonexistent", .pooling = DC_POOLING_CLS};
    dc_model *m = NULL;
    static const dc_model_id fixed[] = {DC_MODEL_SPARSE, DC_MODEL_MULTIMODAL,
                                        DC_MODEL_LATE_INTERACTION};
    for (size_t i = 0; i < 3; i++) {
        assert_status(dc_pretrained_create(fixed[i], &bad_o, &m), DC_ERR_INVALID_ARGUMENT);
        assert_null(m);
        assert_detail_contains("auto");
    }
    bad_o.pooling = DC_POOLING_AUTO;
    bad_o.normalize = DC_NORMALIZE_FALSE;
    assert_status(dc_e6_create(&bad_o, &m), DC_ERR_INVALID_ARGUMENT);
    assert_ok(dc_pretrained_create(DC_MODEL_ENTITY, &bad_o, &m));
    dc_model_destroy(m);
}

/* ---- what the overrides do ---- */

static dc_model *open_fx(dc_model_id id, const char *dir, dc_pooling_mode p, dc_normalize_mode n) {
    dc_pretrained_options o = {.model_dir = dir, .pooling = p, .normalize = n};
    dc_model *m = NULL;
    assert_ok(dc_pretrained_create(id, &o, &m));
    assert_ok(dc_model_load(m));
    return m;
}

static const char *const texts[] = {"The quick brown fox jumps over the lazy dog.",
                                    "hello", "Paris is the capital of France; Berlin of Germany."};
#define N_TEXTS (sizeof texts / sizeof texts[0])

/* vec of every text through m, one forward each (the shape dc_pretrained_hidden runs, so the
 * rows agree bit for bit); out[i] is malloc'ed */
static void embed_all(dc_model *m, float **out, uint32_t *dim) {
    dc_model_embedding e[N_TEXTS];
    for (size_t i = 0; i < N_TEXTS; i++) {
        dc_input in = dc_input_text(texts[i], strlen(texts[i]), DC_ROLE_PASSAGE);
        assert_ok(dc_model_embed(m, &in, &e[i]));
    }
    for (size_t i = 0; i < N_TEXTS; i++) {
        *dim = e[i].dim;
        out[i] = malloc(e[i].dim * sizeof(float));
        memcpy(out[i], e[i].vector, e[i].dim * sizeof(float));
        dc_model_embedding_free(&e[i]);
    }
}

static void free_all(float **v) {
    for (size_t i = 0; i < N_TEXTS; i++) free(v[i]);
}

static void test_e11_cls_and_unnormalised(void **state) {
    (void)state;
    char *dir = fx_make("e11");
    dc_model *ref = open_fx(DC_MODEL_ENTITY, dir, DC_POOLING_AUTO, DC_NORMALIZE_AUTO);
    dc_model *cls = open_fx(DC_MODEL_ENTITY, dir, DC_POOLING_CLS, DC_NORMALIZE_FALSE);
    dc_model *raw = open_fx(DC_MODEL_ENTITY, dir, DC_POOLING_AUTO, DC_NORMALIZE_FALSE);
    dc_model *same = open_fx(DC_MODEL_ENTITY, dir, DC_POOLING_MEAN, DC_NORMALIZE_TRUE);
    float *v_ref[N_TEXTS], *v_cls[N_TEXTS], *v_raw[N_TEXTS], *v_same[N_TEXTS];
    uint32_t dim = 0;
    embed_all(ref, v_ref, &dim);
    embed_all(cls, v_cls, &dim);
    embed_all(raw, v_raw, &dim);
    embed_all(same, v_same, &dim);
    assert_int_equal(dim, 384);
    for (size_t i = 0; i < N_TEXTS; i++) {
        dc_input in = dc_input_text(texts[i], strlen(texts[i]), DC_ROLE_PASSAGE);
        float *rows = NULL;
        uint32_t n = 0, h = 0;
        assert_ok(dc_pretrained_hidden(ref, &in, &rows, &n, &h));
        assert_int_equal(h, dim);
        assert_true(n >= 3);
        /* cls, not normalised: exactly the first row ([CLS]) of the hidden states */
        assert_memory_equal(v_cls[i], rows, dim * sizeof(float));
        assert_true(fabs(dc_vec_l2_norm(v_cls[i], dim) - 1.0) > 1e-3);
        /* auto pooling (mean, from 1_Pooling), not normalised: the plain mean of the rows */
        for (uint32_t d = 0; d < dim; d++) {
            double s = 0;
            for (uint32_t r = 0; r < n; r++) s += rows[(size_t)r * dim + d];
            assert_float_equal(v_raw[i][d], (float)(s / n), 0.0f);
        }
        double norm = dc_vec_l2_norm(v_raw[i], dim);
        assert_true(fabs(norm - 1.0) > 1e-3);
        /* auto: that mean over its norm, as modules.json's Normalize says */
        assert_true(fabs(dc_vec_l2_norm(v_ref[i], dim) - 1.0) < 1e-6);
        for (uint32_t d = 0; d < dim; d++)
            assert_float_equal(v_ref[i][d], v_raw[i][d] / norm, 1e-6);
        /* overrides that name the folder's own recipe change nothing, bit for bit */
        assert_memory_equal(v_same[i], v_ref[i], dim * sizeof(float));
        free(rows);
    }
    free_all(v_ref);
    free_all(v_cls);
    free_all(v_raw);
    free_all(v_same);
    dc_model_destroy(ref);
    dc_model_destroy(cls);
    dc_model_destroy(raw);
    dc_model_destroy(same);
    fx_drop(dir);
}

/* E1 and E7 run a recipe of their own (E1 always normalises, E7 means over the content
 * tokens): normalize = false drops only the L2 step; a pooling override pools every row. */
static void test_recipe_models(void **state) {
    (void)state;
    static const dc_model_id ids[] = {DC_MODEL_SEMANTIC, DC_MODEL_CODE};
    static const char *const fx[] = {"e1", "e7"};
    for (size_t k = 0; k < 2; k++) {
        char *dir = fx_make(fx[k]);
        dc_model *ref = open_fx(ids[k], dir, DC_POOLING_AUTO, DC_NORMALIZE_AUTO);
        dc_model *raw = open_fx(ids[k], dir, DC_POOLING_AUTO, DC_NORMALIZE_FALSE);
        dc_model *mx = open_fx(ids[k], dir, DC_POOLING_MAX, DC_NORMALIZE_FALSE);
        float *v_ref[N_TEXTS], *v_raw[N_TEXTS], *v_mx[N_TEXTS];
        uint32_t dim = 0;
        embed_all(ref, v_ref, &dim);
        embed_all(raw, v_raw, &dim);
        embed_all(mx, v_mx, &dim);
        for (size_t i = 0; i < N_TEXTS; i++) {
            double norm = dc_vec_l2_norm(v_raw[i], dim);
            assert_true(fabs(norm - 1.0) > 1e-3);
            assert_true(fabs(dc_vec_l2_norm(v_ref[i], dim) - 1.0) < 1e-6);
            for (uint32_t d = 0; d < dim; d++)
                assert_float_equal(v_ref[i][d], v_raw[i][d] / norm, 1e-6);
            dc_input in = dc_input_text(texts[i], strlen(texts[i]), DC_ROLE_PASSAGE);
            float *rows = NULL;
            uint32_t n = 0, h = 0;
            assert_ok(dc_pretrained_hidden(ref, &in, &rows, &n, &h));
            assert_int_equal(h, dim);
            for (uint32_t d = 0; d < dim; d++) {
                float best = rows[d];
                for (uint32_t r = 1; r < n; r++)
                    if (rows[(size_t)r * dim + d] > best) best = rows[(size_t)r * dim + d];
                assert_float_equal(v_mx[i][d], best, 0.0f);
            }
            free(rows);
        }
        free_all(v_ref);
        free_all(v_raw);
        free_all(v_mx);
        dc_model_destroy(ref);
        dc_model_destroy(raw);
        dc_model_destroy(mx);
        fx_drop(dir);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_keys_parse),
        cmocka_unit_test(test_config_bad_values_name_the_key),
        cmocka_unit_test(test_config_models_that_refuse),
        cmocka_unit_test(test_e11_cls_and_unnormalised),
        cmocka_unit_test(test_recipe_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

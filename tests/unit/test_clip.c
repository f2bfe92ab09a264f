/* E10 CLIP on the random-weight fixture against transformers' CLIPModel
 * (tests/data/models5/clip.json): text features (causal mask, quick-GELU, pooled at the first
 * end-of-text token, 77 ids with truncation) and image features of the generated test images
 * through the whole image pipeline (decode, Pillow bicubic, crop, normalise), both as
 * dc_model inputs; the ids of the folder's vocab.json + merges.txt tokenizer; load errors. */
#include "models/clip.h"
#include "models/pretrained.h"
#include "test_encoder_util.h"
#include "text/tokenizer.h"

static void normalize_ref(float *v, size_t n) {
    dc_vec_normalize(v, n);
}

static void test_clip_text_and_images(void **state) {
    (void)state;
    char *dir = fx_make("clip", NULL);
    dc_pretrained_options o = {.model_dir = dir};
    dc_model *m = NULL;
    assert_ok(dc_pretrained_create(DC_MODEL_MULTIMODAL, &o, &m));
    assert_ok(dc_model_load(m));
    cJSON *g = golden_open("models5/clip.json");
    /* the tokenizer gives transformers' ids */
    dc_tokenizer *tok;
    assert_ok(dc_tokenizer_load(dir, &tok));
    size_t nt = golden_count(g);
    for (size_t i = 0; i < nt; i++) {
        const char *t = golden_text(g, i);
        dc_encode_options eo;
        dc_tokenizer_default_options(tok, &eo);
        eo.truncation.enabled = true;
        eo.truncation.max_length = 77;
        dc_encoding e;
        assert_ok(dc_tokenizer_encode(tok, t, strlen(t), &eo, &e));
        const cJSON *ref = cJSON_GetArrayItem(cJSON_GetObjectItem(g, "ids"), (int)i);
        assert_int_equal(e.len, cJSON_GetArraySize(ref));
        for (size_t k = 0; k < e.len; k++)
            assert_int_equal(e.ids[k], cJSON_GetArrayItem(ref, (int)k)->valueint);
        dc_encoding_free(&e);
    }
    dc_tokenizer_free(tok);
    /* texts and images in one batch */
    const cJSON *imgs = cJSON_GetObjectItem(g, "images");
    size_t ni = (size_t)cJSON_GetArraySize(imgs), n = nt + ni;
    dc_input *in = calloc(n, sizeof *in);
    uint8_t **bytes = calloc(ni, sizeof *bytes);
    for (size_t i = 0; i < nt; i++) {
        const char *t = golden_text(g, i);
        in[i] = dc_input_text(t, strlen(t), DC_ROLE_PASSAGE);
    }
    for (size_t i = 0; i < ni; i++) {
        char rel[256];
        const char *file =
            cJSON_GetObjectItem(cJSON_GetArrayItem(imgs, (int)i), "file")->valuestring;
        snprintf(rel, sizeof rel, "images/%s", file);
        size_t len;
        bytes[i] = dc_test_read_file(dc_test_data_path(rel), &len);
        assert_non_null(bytes[i]);
        dc_image_format f = strstr(file, ".png")    ? DC_IMAGE_PNG
                            : strstr(file, ".jpg")  ? DC_IMAGE_JPEG
                            : strstr(file, ".webp") ? DC_IMAGE_WEBP
                                                    : DC_IMAGE_GIF;
        in[nt + i] = dc_input_image(bytes[i], len, f);
    }
    dc_model_embedding *out = calloc(n, sizeof *out);
    assert_ok(dc_pretrained_embed_unchecked(m, in, n, out));
    parity pt, pi;
    parity_init(&pt);
    parity_init(&pi);
    bool any_trunc = false;
    for (size_t i = 0; i < n; i++) {
        size_t k;
        const cJSON *src =
            i < nt ? cJSON_GetArrayItem(cJSON_GetObjectItem(g, "text_features"), (int)i)
                   : cJSON_GetObjectItem(cJSON_GetArrayItem(imgs, (int)(i - nt)), "features");
        float *ref = golden_floats(src, &k);
        assert_int_equal(k, DC_DIM_MULTIMODAL);
        normalize_ref(ref, k);
        parity_add(i < nt ? &pt : &pi, out[i].vector, ref, k);
        if (i < nt) {
            const cJSON *ids = cJSON_GetArrayItem(cJSON_GetObjectItem(g, "ids"), (int)i);
            assert_int_equal(out[i].tokens_used, cJSON_GetArraySize(ids));
            any_trunc |= out[i].truncated;
        } else {
            assert_int_equal(out[i].tokens_used, 257);
        }
        free(ref);
        dc_model_embedding_free(&out[i]);
    }
    assert_true(any_trunc);
    parity_check(&pt, "E10 CLIP text features (L2)");
    parity_check(&pi, "E10 CLIP image features (L2, whole image pipeline)");
    /* the checked interface: image modality accepted, code refused, format mismatch named */
    dc_model_embedding e;
    assert_ok(dc_model_embed(m, &in[nt], &e));
    dc_model_embedding_free(&e);
    dc_input wrong = in[nt];
    wrong.image_format = wrong.image_format == DC_IMAGE_PNG ? DC_IMAGE_JPEG : DC_IMAGE_PNG;
    assert_status(dc_model_embed(m, &wrong, &e), DC_ERR_INVALID_VALUE);
    assert_detail_contains("declared as");
    dc_input code = dc_input_code("x = 1", 5, "python");
    assert_status(dc_model_embed(m, &code, &e), DC_ERR_UNSUPPORTED_MODALITY);
    dc_input trunc = dc_input_image(bytes[0], 100, in[nt].image_format);
    assert_status(dc_model_embed(m, &trunc, &e), DC_ERR_SERIALIZATION);
    for (size_t i = 0; i < ni; i++) free(bytes[i]);
    free(bytes);
    free(out);
    free(in);
    cJSON_Delete(g);
    dc_model_destroy(m);
    fx_drop(dir);
}

static void test_clip_load_errors(void **state) {
    (void)state;
    dc_clip_config c;
    const char *bert = "{\"model_type\": \"bert\"}";
    assert_status(dc_clip_config_parse(bert, strlen(bert), "c.json", &c), DC_ERR_MODEL_LOAD);
    assert_detail_contains("clip");
    const char *bad =
        "{\"model_type\": \"clip\", \"vision_config\": {\"image_size\": 224, \"patch_size\": 15}}";
    assert_status(dc_clip_config_parse(bad, strlen(bad), "c.json", &c), DC_ERR_MODEL_LOAD);
    assert_detail_contains("patch_size");
    const char *dflt =
        "{\"model_type\": \"clip\", \"text_config\": {\"hidden_act\": \"quick_gelu\"}}";
    assert_ok(dc_clip_config_parse(dflt, strlen(dflt), "c.json", &c));
    assert_int_equal(c.text.hidden, 512);
    assert_int_equal(c.vision.hidden, 768);
    assert_int_equal(c.patch_size, 32);
    assert_int_equal(c.eos_token_id, 49407);
    /* a text tower missing a tensor names it */
    char *dir = fx_make("clip", NULL);
    dc_backend *be;
    assert_ok(dc_backend_cpu_create(NULL, &be));
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    assert_ok(dc_clip_config_read(path, &c));
    c.projection_dim = 512;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    dc_weights *w;
    assert_ok(dc_weights_open(path, &w));
    dc_clip *clip = NULL;
    assert_status(dc_clip_create(w, &c, be, &clip), DC_ERR_INVALID_DIMENSION);
    assert_detail_contains("text_projection");
    dc_weights_close(w);
    dc_backend_destroy(be);
    fx_drop(dir);
    /* E10 needs a 768-d projection: an E1 BERT folder is not CLIP */
    dir = fx_make("e1", NULL);
    dc_pretrained_options o = {.model_dir = dir};
    dc_model *m;
    assert_ok(dc_e10_create(&o, &m));
    assert_status(dc_model_load(m), DC_ERR_MODEL_LOAD);
    assert_detail_contains("model_type");
    dc_model_destroy(m);
    fx_drop(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clip_text_and_images),
        cmocka_unit_test(test_clip_load_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

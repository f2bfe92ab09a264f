/* models.<name>.device without a usable CUDA library (DC_CUDA_LIBRARY points at a file that
 * does not exist, so the outcome is the same on a GPU machine): "cuda:0" fails naming the key
 * and the reason, "auto" runs on the CPU and says why, the stats name the backend; and the
 * weight formats each backend refuses. The runs on a device are tests/gpu/test_pipeline.c. */
#include "../tools/bert_fixture.c"
#include "models/pretrained.h"
#include "test_runtime_pipeline.h"

static char root[64];

static int setup(void **state) {
    (void)state;
    /* before anything loads the library (the loader remembers its first answer) */
    setenv("DC_CUDA_LIBRARY", "/nonexistent/dodeca-test/libdodeca_cuda.so", 1);
    snprintf(root, sizeof root, "/tmp/dc_pldev_XXXXXX");
    if (!mkdtemp(root)) return -1;
    dc_fixture_spec spec;
    if (!dc_fixture_named("e1", &spec)) return -1;
    char p[512];
    snprintf(p, sizeof p, "%s/semantic", root);
    return dc_fixture_write(p, &spec);
}

static int teardown(void **state) {
    (void)state;
    rt_remove_tree(root);
    return 0;
}

static void config_for(dc_config *cfg, const char *device) {
    dc_config_defaults(cfg);
    cfg->fusion.expert_hidden_dim = 64;
    cfg->models.lazy_loading = false;
    snprintf(cfg->models.models_dir, sizeof cfg->models.models_dir, "%s", root);
    assert_ok(dc_device_parse(device, &cfg->models.model[DC_MODEL_SEMANTIC].device));
}

static dc_status open_with(const dc_config *cfg, dc_pipeline **p) {
    dc_pipeline_options o;
    dc_pipeline_options_default(&o);
    o.warmup = false;
    o.load_retry_ms = 0;
    return dc_pipeline_open_ex(cfg, &o, p);
}

static void test_cuda_without_library_is_a_clear_error(void **state) {
    (void)state;
    dc_config cfg;
    config_for(&cfg, "cuda:0");
    dc_pipeline *p = NULL;
    dc_status st = open_with(&cfg, &p);
    /* E1 is required: the open fails, or the model is failed with the reason */
    char detail[512];
    snprintf(detail, sizeof detail, "%s", dc_error_detail());
    if (st == DC_OK) {
        dc_pipeline_stats s;
        assert_ok(dc_pipeline_stats_get(p, &s));
        assert_int_equal(s.model[DC_MODEL_SEMANTIC].state, DC_MODEL_STATE_FAILED);
        snprintf(detail, sizeof detail, "%s", s.model[DC_MODEL_SEMANTIC].reason);
        dc_pipeline_close(p);
    }
    assert_non_null(strstr(detail, "models.semantic.device = cuda:0"));
    assert_non_null(strstr(detail, "libdodeca_cuda.so"));
    assert_non_null(strstr(detail, "did not load"));
}

static void test_auto_without_library_runs_on_the_cpu(void **state) {
    (void)state;
    dc_config cfg;
    config_for(&cfg, "auto");
    dc_pipeline *p = NULL;
    assert_ok(open_with(&cfg, &p));
    static const char text[] = "hello world";
    dc_input in = dc_input_text(text, sizeof text - 1, DC_ROLE_PASSAGE);
    dc_pipeline_result r;
    assert_ok(dc_pipeline_embed(p, &in, &r));
    assert_int_equal(r.models[DC_MODEL_SEMANTIC].status, DC_RUN_OK);
    dc_pipeline_result_free(&r);
    dc_pipeline_stats s;
    assert_ok(dc_pipeline_stats_get(p, &s));
    const char *be = s.model[DC_MODEL_SEMANTIC].backend;
    assert_true(!strncmp(be, "cpu (auto: ", 11));
    assert_non_null(strstr(be, "did not load"));
    /* the custom models run on the CPU; the JSON metrics carry it too */
    assert_string_equal(s.model[DC_MODEL_HDC].backend, "cpu");
    char *json = NULL;
    assert_ok(dc_pipeline_metrics_json(p, &json));
    assert_non_null(strstr(json, "\"backend\":\"cpu (auto: "));
    free(json);
    dc_pipeline_close(p);

    /* "cpu" says just that */
    config_for(&cfg, "cpu");
    assert_ok(open_with(&cfg, &p));
    assert_ok(dc_pipeline_stats_get(p, &s));
    assert_string_equal(s.model[DC_MODEL_SEMANTIC].backend, "cpu");
    dc_pipeline_close(p);
}

static void test_place_resolves_device_and_format(void **state) {
    (void)state;
    dc_config cfg;
    dc_config_defaults(&cfg);
    dc_model_config *mc = &cfg.models.model[DC_MODEL_SEMANTIC];
    dc_pretrained_options o;
    /* auto: the reason why not CUDA is kept */
    memset(&o, 0, sizeof o);
    assert_ok(dc_pretrained_place(DC_MODEL_SEMANTIC, mc, &cfg.gpu, &o));
    assert_int_equal(o.device.kind, DC_DEVICE_CPU);
    assert_non_null(strstr(o.device.note, "did not load"));
    cfg.gpu.enabled = false;
    assert_ok(dc_pretrained_place(DC_MODEL_SEMANTIC, mc, &cfg.gpu, &o));
    assert_string_equal(o.device.note, "gpu.enabled = false");
    cfg.gpu.enabled = true;
    mc->quantization = DC_QUANTIZATION_INT8;
    assert_ok(dc_pretrained_place(DC_MODEL_SEMANTIC, mc, &cfg.gpu, &o));
    assert_int_equal(o.weights, DC_WEIGHTS_INT8);
    assert_non_null(strstr(o.device.note, "int8 runs on the CPU only"));
    /* fp16 / fp8 have no CPU path: the existing error, naming the key */
    mc->quantization = DC_QUANTIZATION_FP16;
    assert_int_equal(dc_pretrained_place(DC_MODEL_SEMANTIC, mc, &cfg.gpu, &o),
                     DC_ERR_UNSUPPORTED_FORMAT);
    assert_non_null(strstr(dc_error_detail(), "models.semantic.quantization = fp16"));
    /* cpu: no note */
    mc->quantization = DC_QUANTIZATION_BF16;
    mc->device.kind = DC_DEVICE_CPU;
    assert_ok(dc_pretrained_place(DC_MODEL_SEMANTIC, mc, &cfg.gpu, &o));
    assert_int_equal(o.device.kind, DC_DEVICE_CPU);
    assert_string_equal(o.device.note, "");
    assert_int_equal(o.weights, DC_WEIGHTS_BF16);
    /* cuda:1 without the library */
    mc->device = (dc_device){DC_DEVICE_CUDA, 1};
    assert_int_equal(dc_pretrained_place(DC_MODEL_SEMANTIC, mc, &cfg.gpu, &o), DC_ERR_GPU);
    assert_non_null(strstr(dc_error_detail(), "models.semantic.device = cuda:1: "));
}

static void test_weight_formats_per_backend(void **state) {
    (void)state;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/semantic", root);
    dc_pretrained_options o = {.model_dir = dir, .weights = DC_WEIGHTS_F16};
    dc_model *m = NULL;
    assert_int_equal(dc_pretrained_create(DC_MODEL_SEMANTIC, &o, &m), DC_ERR_UNSUPPORTED_FORMAT);
    assert_non_null(strstr(dc_error_detail(), "need the CUDA backend"));
    o.weights = DC_WEIGHTS_FP8_E4M3;
    assert_int_equal(dc_pretrained_create(DC_MODEL_MULTIMODAL, &o, &m), DC_ERR_UNSUPPORTED_FORMAT);
    o.weights = DC_WEIGHTS_INT8;
    o.device.kind = DC_DEVICE_CUDA;
    assert_int_equal(dc_pretrained_create(DC_MODEL_SEMANTIC, &o, &m), DC_ERR_UNSUPPORTED_FORMAT);
    assert_non_null(strstr(dc_error_detail(), "CPU backend only"));
    /* a model made directly (zero device options) runs on the CPU and says so once loaded */
    o.weights = DC_WEIGHTS_F32;
    o.device.kind = DC_DEVICE_AUTO;
    assert_ok(dc_pretrained_create(DC_MODEL_SEMANTIC, &o, &m));
    assert_string_equal(dc_pretrained_backend_desc(m), "");
    assert_ok(dc_model_load(m));
    assert_string_equal(dc_pretrained_backend_desc(m), "cpu");
    dc_model_destroy(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cuda_without_library_is_a_clear_error),
        cmocka_unit_test(test_auto_without_library_runs_on_the_cpu),
        cmocka_unit_test(test_place_resolves_device_and_format),
        cmocka_unit_test(test_weight_formats_per_backend),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* fusion.device without a usable CUDA library: cuda:N is a clear error naming the key, auto
 * runs on the CPU and says why, the config key is parsed and validated. The CUDA path itself is
 * tested by tests/gpu/test_fusion_gpu.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dodeca/config.h"
#include "fusion/fusemoe.h"

static void small(dc_fusion_options *o) {
    dc_fusion_options_default(o);
    o->num_experts = 2;
    o->top_k = 1;
    o->hidden = 8;
}

static void test_cuda_without_library_is_a_clear_error(void **state) {
    (void)state;
    dc_fusion_options o;
    small(&o);
    o.device = (dc_device){DC_DEVICE_CUDA, 0};
    dc_fusemoe *f = NULL;
    assert_int_equal(dc_fusemoe_create_ex(&o, &f), DC_ERR_GPU);
    assert_null(f);
    const char *d = dc_error_detail();
    assert_non_null(strstr(d, "fusion.device = \"cuda:0\""));
    assert_non_null(strstr(d, "DC_CUDA_LIBRARY")); /* the loader's reason follows */
}

static void test_auto_falls_back_with_reason(void **state) {
    (void)state;
    dc_fusion_options o;
    small(&o);
    o.device = (dc_device){DC_DEVICE_AUTO, 0};
    dc_fusemoe *f = NULL;
    assert_int_equal(dc_fusemoe_create_ex(&o, &f), DC_OK);
    const char *where = dc_fusemoe_device(f);
    assert_true(strncmp(where, "cpu (auto: cuda:", 16) == 0);
    assert_string_equal(dc_fusemoe_backend(f)->ops->name, "cpu");
    dc_fusion_stats st;
    dc_fusemoe_stats(f, &st);
    assert_string_equal(st.device, where);
    dc_fusemoe_destroy(f);

    o.gpu_enabled = false;
    assert_int_equal(dc_fusemoe_create_ex(&o, &f), DC_OK);
    assert_string_equal(dc_fusemoe_device(f), "cpu (auto: gpu.enabled = false)");
    dc_fusemoe_destroy(f);

    o.device = (dc_device){DC_DEVICE_CPU, 0};
    assert_int_equal(dc_fusemoe_create_ex(&o, &f), DC_OK);
    assert_string_equal(dc_fusemoe_device(f), "cpu");
    dc_fusemoe_destroy(f);
}

static dc_status apply(dc_config *c, const char *toml) {
    dc_config_defaults(c);
    dc_status st = dc_config_apply_toml(c, toml, strlen(toml), "test.toml");
    return st != DC_OK ? st : dc_config_validate(c);
}

static void test_config_key(void **state) {
    (void)state;
    dc_config *c = malloc(sizeof *c);
    assert_non_null(c);
    dc_config_defaults(c);
    assert_int_equal(c->fusion.device.kind, DC_DEVICE_CPU); /* the default */
    dc_fusion_options o;
    assert_int_equal(apply(c, "[fusion]\ndevice = \"auto\"\n[gpu]\nenabled = false\n"), DC_OK);
    dc_fusion_options_from_config(c, &o);
    assert_int_equal(o.device.kind, DC_DEVICE_AUTO);
    assert_false(o.gpu_enabled);
    o.num_experts = 2;
    o.top_k = 1;
    o.hidden = 8;
    o.gpu_memory_fraction = 0.0; /* allowed with gpu.enabled = false; never read on the CPU */
    dc_fusemoe *f = NULL;
    assert_int_equal(dc_fusemoe_create_ex(&o, &f), DC_OK);
    assert_string_equal(dc_fusemoe_device(f), "cpu (auto: gpu.enabled = false)");
    dc_fusemoe_destroy(f);
    assert_int_equal(apply(c, "[fusion]\ndevice = \"cuda:1\"\n[gpu]\ndevice_ids = [0, 1]\n"),
                     DC_OK);
    dc_fusion_options_from_config(c, &o);
    assert_int_equal(o.device.kind, DC_DEVICE_CUDA);
    assert_int_equal(o.device.index, 1);
    assert_true(o.gpu_enabled);

    assert_int_equal(apply(c, "[fusion]\ndevice = \"gpu0\"\n"), DC_ERR_CONFIG);
    assert_non_null(strstr(dc_error_detail(), "device"));
    assert_int_equal(apply(c, "[fusion]\ndevice = \"cuda:3\"\n"), DC_ERR_CONFIG);
    assert_non_null(strstr(dc_error_detail(), "fusion.device = \"cuda:3\" is not in gpu.device_ids"));
    assert_int_equal(apply(c, "[fusion]\ndevice = \"cuda:0\"\n[gpu]\nenabled = false\n"),
                     DC_ERR_CONFIG);
    assert_non_null(strstr(dc_error_detail(), "gpu.enabled = false"));
    free(c);
}

int main(void) {
    /* a library that cannot load: the same answer on every machine */
    setenv("DC_CUDA_LIBRARY", "/nonexistent/libdodeca_cuda.so", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cuda_without_library_is_a_clear_error),
        cmocka_unit_test(test_auto_falls_back_with_reason),
        cmocka_unit_test(test_config_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

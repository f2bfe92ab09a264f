#include <string.h>

#include "core/error.h"
#include "test_support.h"

static void test_every_status_has_a_distinct_name(void **state) {
    (void)state;
    for (int i = 0; i < DC_STATUS_COUNT; i++) {
        const char *name = dc_status_name((dc_status)i);
        assert_string_not_equal(name, "UNKNOWN_STATUS");
        assert_true(strlen(dc_status_str((dc_status)i)) > 0);
        for (int j = 0; j < i; j++) assert_string_not_equal(name, dc_status_name((dc_status)j));
    }
    assert_string_equal(dc_status_name(DC_OK), "OK");
    assert_string_equal(dc_status_name(DC_ERR_CHECKPOINT_CORRUPTED), "CHECKPOINT_CORRUPTED");
    /* values are ABI: never renumbered */
    assert_int_equal(DC_ERR_INTERNAL, 26);
    assert_int_equal(DC_ERR_CANCELLED, 27);
    assert_string_equal(dc_status_name(DC_ERR_CANCELLED), "CANCELLED");
}

static void test_out_of_range_status_is_named_unknown(void **state) {
    (void)state;
    assert_string_equal(dc_status_name((dc_status)DC_STATUS_COUNT), "UNKNOWN_STATUS");
    assert_string_equal(dc_status_name((dc_status)-1), "UNKNOWN_STATUS");
    assert_string_equal(dc_status_str((dc_status)999), "unknown status");
}

static void test_fail_records_detail_and_returns_status(void **state) {
    (void)state;
    dc_error_clear();
    assert_string_equal(dc_error_detail(), "");
    assert_int_equal(dc_fail(DC_ERR_IO, "open %s: %s", "x.bin", "No such file"), DC_ERR_IO);
    assert_string_equal(dc_error_detail(), "open x.bin: No such file");
}

static void test_fail_context_prepends(void **state) {
    (void)state;
    dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "tensor w: offset 12 past end");
    assert_int_equal(dc_fail_context(DC_ERR_CHECKPOINT_CORRUPTED, "model.safetensors"),
                     DC_ERR_CHECKPOINT_CORRUPTED);
    assert_string_equal(dc_error_detail(), "model.safetensors: tensor w: offset 12 past end");
}

static void test_long_details_are_truncated_safely(void **state) {
    (void)state;
    char big[4000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    dc_fail(DC_ERR_IO, "%s", big);
    assert_true(strlen(dc_error_detail()) < 1024);
    dc_fail_context(DC_ERR_IO, "%s", big);
    assert_true(strlen(dc_error_detail()) < 1024);
    dc_fail(DC_ERR_IO, "inner");
    dc_fail_context(DC_ERR_IO, "outer");
    assert_string_equal(dc_error_detail(), "outer: inner");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_status_has_a_distinct_name),
        cmocka_unit_test(test_out_of_range_status_is_named_unknown),
        cmocka_unit_test(test_fail_records_detail_and_returns_status),
        cmocka_unit_test(test_fail_context_prepends),
        cmocka_unit_test(test_long_details_are_truncated_safely),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

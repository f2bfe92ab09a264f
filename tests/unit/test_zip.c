/* ZIP reader: the torch.save archive fixture plus archives built here to break one rule each. */
#include "weights_fixture.h"

#include "io/zip.h"

static const char payload[] = "the quick brown fox jumps over the lazy dog, again and again";

static dc_status open_zip(const uint8_t *buf, size_t len, dc_zip **z) {
    return dc_zip_open(buf, len, "t.zip", z);
}

static void test_torch_archive(void **state) {
    (void)state;
    size_t len;
    uint8_t *file = dc_test_read_file(dc_test_data_path("weights/pytorch_model.bin"), &len);
    assert_non_null(file);
    dc_zip *z = NULL;
    assert_ok(open_zip(file, len, &z));
    assert_true(dc_zip_count(z) >= 10);
    const dc_zip_entry *e = dc_zip_find(z, "pytorch_model/data.pkl");
    assert_non_null(e);
    assert_int_equal(e->method, 0);
    /* torch aligns record data to 64 bytes inside the file */
    assert_int_equal(e->data_offset % 64, 0);
    for (size_t i = 0; i < dc_zip_count(z); i++) {
        const dc_zip_entry *x = dc_zip_entry_at(z, i);
        assert_ptr_equal(dc_zip_find(z, x->name), x);
        const uint8_t *data;
        void *owned;
        assert_ok(dc_zip_read(z, x, &data, &owned));
        assert_null(owned); /* stored: zero-copy */
        assert_ptr_equal(data, file + x->data_offset);
    }
    const dc_zip_entry *bo = dc_zip_find(z, "pytorch_model/byteorder");
    assert_non_null(bo);
    assert_int_equal(bo->size, 6);
    assert_null(dc_zip_find(z, "pytorch_model/nope"));
    assert_null(dc_zip_entry_at(z, dc_zip_count(z)));
    dc_zip_close(z);
    free(file);
}

static void test_stored_deflated_and_zip64(void **state) {
    (void)state;
    dc_tzip_entry e[2] = {
        {.name = "a/stored", .data = payload, .len = sizeof payload},
        {.name = "a/deflated", .data = payload, .len = sizeof payload, .method = 8},
    };
    for (int variant = 0; variant < 3; variant++) {
        dc_tzip_opts o = {.count_override = -1, .size_override = -1, .zip64 = variant > 0,
                          .saturate = variant == 2};
        size_t len;
        uint8_t *buf = dc_tzip_build(e, 2, &o, &len);
        dc_zip *z = NULL;
        assert_ok(open_zip(buf, len, &z));
        assert_int_equal(dc_zip_count(z), 2);
        for (int i = 0; i < 2; i++) {
            const dc_zip_entry *x = dc_zip_find(z, e[i].name);
            assert_non_null(x);
            const uint8_t *data;
            void *owned;
            assert_ok(dc_zip_read(z, x, &data, &owned));
            assert_int_equal(x->size, sizeof payload);
            assert_memory_equal(data, payload, sizeof payload);
            if (i == 1) {
                assert_non_null(owned);
                assert_true(x->comp_size < x->size);
            }
            free(owned);
        }
        dc_zip_close(z);
        free(buf);
    }
}

static void test_bad_eocd(void **state) {
    (void)state;
    dc_zip *z = NULL;
    uint8_t tiny[10] = "PK\x05\x06";
    assert_status(open_zip(tiny, sizeof tiny, &z), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("too short");
    dc_tzip_entry e = {.name = "x", .data = payload, .len = 4};
    size_t len;
    uint8_t *buf = dc_tzip_build(&e, 1, NULL, &len);
    buf[len - 22] = 'X'; /* break the signature */
    assert_status(open_zip(buf, len, &z), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("end-of-central-directory");
    buf[len - 22] = 'P';
    buf[len - 2] = 5; /* comment length past the end of the file */
    assert_status(open_zip(buf, len, &z), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("end-of-central-directory");
    buf[len - 2] = 0;
    assert_ok(open_zip(buf, len, &z));
    dc_zip_close(z);
    free(buf);
    /* saturated values without a ZIP64 locator */
    dc_tzip_opts o = {.count_override = -1, .size_override = -1, .saturate = true};
    buf = dc_tzip_build(&e, 1, &o, &len);
    assert_status(open_zip(buf, len, &z), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("ZIP64");
    free(buf);
}

static void test_central_directory_outside_file(void **state) {
    (void)state;
    dc_tzip_entry e = {.name = "x", .data = payload, .len = 8};
    dc_tzip_opts o = {.count_override = -1, .size_override = -1, .cd_offset_delta = 1000};
    size_t len;
    uint8_t *buf = dc_tzip_build(&e, 1, &o, &len);
    dc_zip *z = NULL;
    assert_status(open_zip(buf, len, &z), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("central directory");
    assert_detail_contains("outside the file");
    free(buf);
    o.zip64 = true;
    o.saturate = true;
    buf = dc_tzip_build(&e, 1, &o, &len);
    assert_status(open_zip(buf, len, &z), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("outside the file");
    free(buf);
    /* a ZIP64 locator that points outside the file */
    o.cd_offset_delta = 0;
    buf = dc_tzip_build(&e, 1, &o, &len);
    buf[len - 22 - 20 + 8] = 0xEE;
    assert_status(open_zip(buf, len, &z), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("ZIP64");
    free(buf);
}

static void test_absurd_counts(void **state) {
    (void)state;
    dc_tzip_entry e = {.name = "x", .data = payload, .len = 8};
    dc_tzip_opts o = {.count_override = 60000, .size_override = -1};
    size_t len;
    uint8_t *buf = dc_tzip_build(&e, 1, &o, &len);
    dc_zip *z = NULL;
    assert_status(open_zip(buf, len, &z), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("60000 entries");
    free(buf);
    o.count_override = 2; /* fits by size but the second header is not there */
    dc_tzip_entry two[2] = {e, {.name = "y", .data = payload, .len = 8}};
    buf = dc_tzip_build(two, 1, &o, &len);
    assert_status(open_zip(buf, len, &z), DC_ERR_CHECKPOINT_CORRUPTED);
    free(buf);
}

static void test_crc_mismatch(void **state) {
    (void)state;
    dc_tzip_entry e[2] = {
        {.name = "s", .data = payload, .len = sizeof payload, .crc_xor = 1},
        {.name = "d", .data = payload, .len = sizeof payload, .method = 8, .crc_xor = 0x100},
    };
    size_t len;
    uint8_t *buf = dc_tzip_build(e, 2, NULL, &len);
    dc_zip *z = NULL;
    assert_ok(open_zip(buf, len, &z));
    for (int i = 0; i < 2; i++) {
        const uint8_t *data = (const uint8_t *)1;
        void *owned = (void *)1;
        assert_status(dc_zip_read(z, dc_zip_find(z, e[i].name), &data, &owned),
                      DC_ERR_CHECKPOINT_CORRUPTED);
        assert_detail_contains("CRC-32");
        assert_detail_contains(e[i].name);
        assert_null(data);
        assert_null(owned);
    }
    dc_zip_close(z);
    free(buf);
}

static void test_encrypted_and_methods(void **state) {
    (void)state;
    dc_tzip_entry e = {.name = "secret", .data = payload, .len = 8, .flags = 1};
    size_t len;
    uint8_t *buf = dc_tzip_build(&e, 1, NULL, &len);
    dc_zip *z = NULL;
    assert_status(open_zip(buf, len, &z), DC_ERR_UNSUPPORTED_FORMAT);
    assert_detail_contains("encrypted");
    assert_detail_contains("secret");
    free(buf);
    e.flags = 0;
    e.method = 12; /* bzip2 */
    buf = dc_tzip_build(&e, 1, NULL, &len);
    assert_status(open_zip(buf, len, &z), DC_ERR_UNSUPPORTED_FORMAT);
    assert_detail_contains("method 12");
    free(buf);
}

static void test_names_and_overlap(void **state) {
    (void)state;
    dc_tzip_entry e = {.name = "a\0b", .name_len = 3, .data = payload, .len = 8};
    size_t len;
    uint8_t *buf = dc_tzip_build(&e, 1, NULL, &len);
    dc_zip *z = NULL;
    assert_status(open_zip(buf, len, &z), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("NUL");
    free(buf);
    /* two directory entries for one local record: shared bytes */
    dc_tzip_entry same[2] = {{.name = "x", .data = payload, .len = 8},
                             {.name = "x", .data = payload, .len = 8}};
    buf = dc_tzip_build(same, 2, NULL, &len);
    /* point the second central entry at the first local header */
    size_t cd = len - 22 - 2 * (46 + 1);
    uint8_t *second = buf + cd + 46 + 1;
    memset(second + 42, 0, 4);
    assert_status(open_zip(buf, len, &z), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("overlap");
    free(buf);
    buf = dc_tzip_build(same, 2, NULL, &len);
    assert_status(open_zip(buf, len, &z), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("duplicate entry name \"x\"");
    free(buf);
}

static void test_local_header_checks(void **state) {
    (void)state;
    dc_tzip_entry e = {.name = "name", .data = payload, .len = 8};
    size_t len;
    uint8_t *buf = dc_tzip_build(&e, 1, NULL, &len);
    dc_zip *z = NULL;
    buf[30] = 'N'; /* local name differs from the central one */
    assert_status(open_zip(buf, len, &z), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("different file");
    buf[30] = 'n';
    buf[0] = 'Q';
    assert_status(open_zip(buf, len, &z), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("local header");
    buf[0] = 'P';
    buf[28] = 0xFF; /* local extra field runs into the central directory */
    assert_status(open_zip(buf, len, &z), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("central directory");
    free(buf);
}

static void test_deflate_sizes_enforced(void **state) {
    (void)state;
    dc_tzip_entry e = {.name = "d", .data = payload, .len = sizeof payload, .method = 8};
    dc_tzip_opts o = {.count_override = -1, .size_override = sizeof payload - 1};
    size_t len;
    uint8_t *buf = dc_tzip_build(&e, 1, &o, &len);
    dc_zip *z = NULL;
    assert_ok(open_zip(buf, len, &z));
    const uint8_t *data;
    void *owned;
    assert_status(dc_zip_read(z, dc_zip_find(z, "d"), &data, &owned), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("declared");
    dc_zip_close(z);
    free(buf);
    o.size_override = sizeof payload + 1;
    buf = dc_tzip_build(&e, 1, &o, &len);
    assert_ok(open_zip(buf, len, &z));
    assert_status(dc_zip_read(z, dc_zip_find(z, "d"), &data, &owned), DC_ERR_CHECKPOINT_CORRUPTED);
    dc_zip_close(z);
    free(buf);
    o.size_override = 1u << 30; /* a bomb's claim */
    buf = dc_tzip_build(&e, 1, &o, &len);
    assert_status(open_zip(buf, len, &z), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("claims");
    free(buf);
    /* corrupt deflate data */
    o.size_override = -1;
    buf = dc_tzip_build(&e, 1, &o, &len);
    buf[30 + 1] ^= 0xFF;
    buf[30 + 2] ^= 0xFF;
    assert_ok(open_zip(buf, len, &z));
    dc_status st = dc_zip_read(z, dc_zip_find(z, "d"), &data, &owned);
    assert_int_not_equal(st, DC_OK);
    if (st == DC_OK) free(owned);
    dc_zip_close(z);
    free(buf);
}

static void test_every_truncation(void **state) {
    (void)state;
    size_t len;
    uint8_t *file = dc_test_read_file(dc_test_data_path("weights/pytorch_model.bin"), &len);
    assert_non_null(file);
    for (size_t n = 0; n < len; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, file, n);
        dc_zip *z = NULL;
        dc_status st = open_zip(copy, n, &z);
        if (st == DC_OK) fail_msg("prefix %zu/%zu accepted", n, len);
        assert_null(z);
        free(copy);
    }
    free(file);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torch_archive),
        cmocka_unit_test(test_stored_deflated_and_zip64),
        cmocka_unit_test(test_bad_eocd),
        cmocka_unit_test(test_central_directory_outside_file),
        cmocka_unit_test(test_absurd_counts),
        cmocka_unit_test(test_crc_mismatch),
        cmocka_unit_test(test_encrypted_and_methods),
        cmocka_unit_test(test_names_and_overlap),
        cmocka_unit_test(test_local_header_checks),
        cmocka_unit_test(test_deflate_sizes_enforced),
        cmocka_unit_test(test_every_truncation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

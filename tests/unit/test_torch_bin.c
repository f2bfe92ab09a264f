/* pytorch_model.bin: real torch.save output in both containers (tests/data/weights, written by
 * gen_weights.py) and hand-built archives/streams that break one rule each. */
#include "weights_fixture.h"

#include "io/pickle.h"
#include "io/zip.h"

/* ---- a protocol-2 state-dict pickle with one tensor, built byte by byte ---- */

typedef struct tensor_spec {
    const char *name;
    const char *storage_type; /* "FloatStorage", ... */
    const char *key;
    int64_t numel;            /* storage elements */
    int64_t offset;           /* storage offset */
    int ndim;
    int64_t size[9];
    int64_t stride[9];
    const char *view;         /* legacy view: "(offset,size)" as two ints, or NULL */
    int64_t view_offset, view_size;
} tensor_spec;

static void pk_str(dc_tbuf *b, const char *s) {
    dc_tbuf_u8(b, 'X');
    dc_tbuf_u32(b, (uint32_t)strlen(s));
    dc_tbuf_str(b, s);
}

static void pk_int(dc_tbuf *b, int64_t v) {
    dc_tbuf_u8(b, 'J');
    dc_tbuf_u32(b, (uint32_t)(int32_t)v);
}

static void pk_tensor(dc_tbuf *b, const tensor_spec *t, bool legacy) {
    pk_str(b, t->name);
    dc_tbuf_str(b, "ctorch._utils\n_rebuild_tensor_v2\n((");
    pk_str(b, "storage");
    dc_tbuf_str(b, "ctorch\n");
    dc_tbuf_str(b, t->storage_type);
    dc_tbuf_u8(b, '\n');
    pk_str(b, t->key);
    pk_str(b, "cpu");
    pk_int(b, t->numel);
    if (legacy) {
        if (t->view) {
            pk_str(b, t->view);
            pk_int(b, t->view_offset);
            pk_int(b, t->view_size);
            dc_tbuf_u8(b, 0x87); /* TUPLE3 */
        } else {
            dc_tbuf_u8(b, 'N');
        }
    }
    dc_tbuf_str(b, "tQ");
    pk_int(b, t->offset);
    dc_tbuf_u8(b, '(');
    for (int i = 0; i < t->ndim; i++) pk_int(b, t->size[i]);
    dc_tbuf_str(b, "t(");
    for (int i = 0; i < t->ndim; i++) pk_int(b, t->stride[i]);
    dc_tbuf_str(b, "t\x89");
    dc_tbuf_str(b, "ccollections\nOrderedDict\n)RtR");
}

static void pk_state_dict(dc_tbuf *b, const tensor_spec *t, size_t n, bool legacy) {
    dc_tbuf_str(b, "\x80\x02}(");
    for (size_t i = 0; i < n; i++) pk_tensor(b, &t[i], legacy);
    dc_tbuf_str(b, "u.");
}

static const float storage_data[8] = {1, 2, 3, 4, 5, 6, 7, 8};

/* A torch zip: archive/data.pkl + archive/data/<key> for each spec (+ extra entries). */
static uint8_t *torch_zip(const tensor_spec *t, size_t n, const char *byteorder,
                          size_t data_bytes, size_t *len) {
    dc_tbuf pkl = {0};
    pk_state_dict(&pkl, t, n, false);
    dc_tzip_entry e[8];
    size_t ne = 0;
    e[ne++] = (dc_tzip_entry){.name = "archive/data.pkl", .data = pkl.data, .len = pkl.len};
    if (byteorder)
        e[ne++] = (dc_tzip_entry){.name = "archive/byteorder", .data = byteorder,
                                  .len = strlen(byteorder)};
    char names[4][64];
    for (size_t i = 0; i < n && i < 4; i++) {
        bool dup = false;
        for (size_t j = 0; j < i; j++) dup |= strcmp(t[i].key, t[j].key) == 0;
        if (dup) continue;
        snprintf(names[i], sizeof names[i], "archive/data/%s", t[i].key);
        e[ne++] = (dc_tzip_entry){.name = names[i], .data = storage_data, .len = data_bytes};
    }
    uint8_t *buf = dc_tzip_build(e, ne, NULL, len);
    free(pkl.data);
    return buf;
}

/* The magic, protocol and sys_info pickles of the legacy fixture. */
static void legacy_header(dc_tbuf *b) {
    size_t len;
    uint8_t *file = dc_test_read_file(dc_test_data_path("weights/pytorch_model_legacy.bin"), &len);
    assert_non_null(file);
    size_t pos = 0;
    for (int i = 0; i < 3; i++) {
        dc_pickle *pk = NULL;
        size_t used;
        assert_ok(dc_pickle_parse(file + pos, len - pos, pos, "legacy", &pk, &used));
        dc_pickle_free(pk);
        pos += used;
    }
    dc_tbuf_put(b, file, pos);
    free(file);
}

/* A legacy stream: header, state dict, key list, then (count, bytes) per key. */
static uint8_t *torch_legacy(const tensor_spec *t, size_t n, const char *const *keys,
                             size_t nkeys, const uint64_t *counts, size_t *len) {
    dc_tbuf b = {0};
    legacy_header(&b);
    pk_state_dict(&b, t, n, true);
    dc_tbuf_str(&b, "\x80\x02](");
    for (size_t i = 0; i < nkeys; i++) pk_str(&b, keys[i]);
    dc_tbuf_str(&b, "e.");
    for (size_t i = 0; i < nkeys; i++) {
        dc_tbuf_u64(&b, counts[i]);
        dc_tbuf_put(&b, storage_data, counts[i] * 4 > sizeof storage_data ? sizeof storage_data
                                                                           : counts[i] * 4);
    }
    *len = b.len;
    return b.data;
}

static const tensor_spec good = {.name = "w", .storage_type = "FloatStorage", .key = "0",
                                 .numel = 4, .offset = 0, .ndim = 2, .size = {2, 2},
                                 .stride = {2, 1}};

/* ---- fixtures ---- */

static void test_zip_fixture(void **state) {
    (void)state;
    dc_weights *w = dc_check_fixture("pytorch_model.bin");
    const dc_tensor_view *enc = dc_weights_find(w, "encoder.weight");
    const dc_tensor_view *dec = dc_weights_find(w, "decoder.weight");
    const dc_tensor_view *row = dc_weights_find(w, "row");
    /* stored records are used in place: the tied tensor shares bytes, the view is an offset */
    assert_ptr_equal(enc->data, dec->data);
    assert_ptr_equal(row->data, (const uint8_t *)enc->data + 16);
    /* state-dict order is kept */
    assert_string_equal(dc_weights_tensor(w, 0)->name, "encoder.weight");
    assert_string_equal(dc_weights_tensor(w, 12)->name, "row");
    assert_int_equal(dc_weights_metadata_count(w), 0);
    dc_weights_close(w);
}

static void test_legacy_fixture(void **state) {
    (void)state;
    dc_weights *w = dc_check_fixture("pytorch_model_legacy.bin");
    assert_string_equal(dc_weights_tensor(w, 0)->name, "encoder.weight");
    dc_weights_close(w);
}

static void test_protocol4_fixture(void **state) {
    (void)state;
    dc_weights_close(dc_check_fixture("pytorch_model_p4.bin"));
}

static void test_deflated_fixture(void **state) {
    (void)state;
    dc_weights_close(dc_check_fixture("pytorch_model_deflated.bin"));
}

static void test_wrapped_parameters(void **state) {
    (void)state;
    /* {"epoch": 3, "state_dict": {name: nn.Parameter}}: unwrapped, parameters rebuilt */
    dc_weights_close(dc_check_fixture("wrapped.bin"));
}

static void test_hostile_fixtures(void **state) {
    (void)state;
    static const struct {
        const char *file, *global;
    } cases[] = {
        {"weights/hostile/os_system_legacy.bin", "os.system"},
        {"weights/hostile/builtins_eval_legacy.bin", "eval"},
        {"weights/hostile/posix_system_p2_zip.bin", "posix.system"},
        {"weights/hostile/posix_system_p4_zip.bin", "posix.system"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        dc_weights *w = NULL;
        assert_status(dc_weights_open(dc_test_data_path(cases[i].file), &w), DC_ERR_UNSAFE_PICKLE);
        assert_detail_contains(cases[i].global);
        assert_detail_contains("byte offset");
        assert_null(w);
    }
}

/* ---- zip container rules ---- */

static void test_storage_offset_past_end(void **state) {
    (void)state;
    tensor_spec t = good;
    t.offset = 3; /* 4 elements from offset 3 in a 4-element storage */
    size_t len;
    uint8_t *buf = torch_zip(&t, 1, "little", 16, &len);
    assert_status(dc_open_bytes(buf, len), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("\"w\"");
    assert_detail_contains("runs past the end of storage \"0\"");
    free(buf);
    t.offset = -1;
    buf = torch_zip(&t, 1, "little", 16, &len);
    assert_status(dc_open_bytes(buf, len), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("storage offset");
    free(buf);
    /* the good one loads, and its values come from the record */
    buf = torch_zip(&good, 1, "little", 16, &len);
    assert_ok(dc_open_bytes(buf, len));
    free(buf);
}

static void test_non_contiguous_rejected(void **state) {
    (void)state;
    tensor_spec t = good;
    t.stride[0] = 1;
    t.stride[1] = 2; /* a transpose */
    size_t len;
    uint8_t *buf = torch_zip(&t, 1, NULL, 16, &len);
    assert_status(dc_open_bytes(buf, len), DC_ERR_UNSUPPORTED_FORMAT);
    assert_detail_contains("not contiguous");
    assert_detail_contains("\"w\"");
    free(buf);
    /* size-1 dimensions may carry any stride */
    t.size[0] = 1;
    t.size[1] = 4;
    t.stride[0] = 99;
    t.stride[1] = 1;
    buf = torch_zip(&t, 1, NULL, 16, &len);
    assert_ok(dc_open_bytes(buf, len));
    free(buf);
    t = good;
    t.ndim = 9;
    buf = torch_zip(&t, 1, NULL, 16, &len);
    assert_status(dc_open_bytes(buf, len), DC_ERR_UNSUPPORTED_FORMAT);
    assert_detail_contains("dimensions");
    free(buf);
}

static void test_storage_records(void **state) {
    (void)state;
    size_t len;
    uint8_t *buf = torch_zip(&good, 1, "little", 12, &len);
    assert_status(dc_open_bytes(buf, len), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("archive/data/0 holds 12 bytes");
    free(buf);
    tensor_spec t = good;
    t.key = "7";
    /* record data/7 is written, but point the pickle at a key with no record */
    dc_tbuf pkl = {0};
    pk_state_dict(&pkl, &good, 1, false);
    dc_tzip_entry e[2] = {{.name = "archive/data.pkl", .data = pkl.data, .len = pkl.len},
                          {.name = "archive/data/7", .data = storage_data, .len = 16}};
    buf = dc_tzip_build(e, 2, NULL, &len);
    assert_status(dc_open_bytes(buf, len), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("has no entry archive/data/0");
    free(buf);
    free(pkl.data);
    /* keys are record names: no path separators */
    t.key = "../0";
    buf = torch_zip(&t, 1, NULL, 16, &len);
    assert_status(dc_open_bytes(buf, len), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("storage key");
    free(buf);
}

static void test_storage_declared_twice_differently(void **state) {
    (void)state;
    tensor_spec t[2] = {good, good};
    t[1].name = "v";
    t[1].storage_type = "IntStorage";
    size_t len;
    uint8_t *buf = torch_zip(t, 2, NULL, 16, &len);
    assert_status(dc_open_bytes(buf, len), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("storage \"0\" is declared as 4 × F32");
    free(buf);
    /* the same storage twice with the same type is sharing (tied weights) */
    t[1].storage_type = "FloatStorage";
    t[1].offset = 2;
    t[1].ndim = 1;
    t[1].size[0] = 2;
    t[1].stride[0] = 1;
    buf = torch_zip(t, 2, NULL, 16, &len);
    assert_ok(dc_open_bytes(buf, len));
    free(buf);
}

static void test_byteorder(void **state) {
    (void)state;
    size_t len;
    uint8_t *buf = torch_zip(&good, 1, "big", 16, &len);
    assert_status(dc_open_bytes(buf, len), DC_ERR_UNSUPPORTED_FORMAT);
    assert_detail_contains("big-endian");
    free(buf);
    buf = torch_zip(&good, 1, "middle", 16, &len);
    assert_status(dc_open_bytes(buf, len), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("byteorder");
    free(buf);
}

static void test_zip_without_pickle(void **state) {
    (void)state;
    dc_tzip_entry e = {.name = "archive/data/0", .data = storage_data, .len = 16};
    size_t len;
    uint8_t *buf = dc_tzip_build(&e, 1, NULL, &len);
    assert_status(dc_open_bytes(buf, len), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("data.pkl");
    free(buf);
    /* two archives in one zip are ambiguous */
    dc_tzip_entry two[2] = {{.name = "a/data.pkl", .data = "\x80\x02}.", .len = 4},
                            {.name = "b/data.pkl", .data = "\x80\x02}.", .len = 4}};
    buf = dc_tzip_build(two, 2, NULL, &len);
    assert_status(dc_open_bytes(buf, len), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("both");
    free(buf);
    /* an empty state dict is a valid, empty checkpoint */
    buf = dc_tzip_build(two, 1, NULL, &len);
    assert_ok(dc_open_bytes(buf, len));
    free(buf);
    /* a pickled list is not a state dict */
    dc_tzip_entry list = {.name = "a/data.pkl", .data = "\x80\x02].", .len = 4};
    buf = dc_tzip_build(&list, 1, NULL, &len);
    assert_status(dc_open_bytes(buf, len), DC_ERR_UNSUPPORTED_FORMAT);
    assert_detail_contains("not a dict");
    free(buf);
}

static void test_crc_mismatch_in_torch_zip(void **state) {
    (void)state;
    size_t len;
    uint8_t *file = dc_test_read_file(dc_test_data_path("weights/pytorch_model.bin"), &len);
    assert_non_null(file);
    dc_zip *z = NULL;
    assert_ok(dc_zip_open(file, len, "t", &z));
    const dc_zip_entry *e = dc_zip_find(z, "pytorch_model/data/0");
    assert_non_null(e);
    uint64_t at = e->data_offset;
    dc_zip_close(z);
    file[at] ^= 0x01;
    assert_status(dc_open_bytes(file, len), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("CRC-32");
    assert_detail_contains("pytorch_model/data/0");
    free(file);
}

static void test_every_truncation(void **state) {
    (void)state;
    static const char *const files[] = {"weights/pytorch_model.bin",
                                        "weights/pytorch_model_legacy.bin",
                                        "weights/pytorch_model_deflated.bin"};
    for (size_t f = 0; f < 3; f++) {
        size_t len;
        uint8_t *file = dc_test_read_file(dc_test_data_path(files[f]), &len);
        assert_non_null(file);
        for (size_t n = 0; n < len; n++)
            if (dc_open_bytes(file, n) == DC_OK) fail_msg("%s: prefix %zu/%zu accepted", files[f], n, len);
        assert_ok(dc_open_bytes(file, len));
        free(file);
    }
}

/* ---- legacy stream rules ---- */

static void test_legacy_built(void **state) {
    (void)state;
    const char *keys[] = {"0"};
    uint64_t counts[] = {4};
    size_t len;
    uint8_t *buf = torch_legacy(&good, 1, keys, 1, counts, &len);
    dc_weights *w = NULL;
    assert_ok(dc_weights_open_memory(buf, len, "legacy", &w));
    const dc_tensor_view *t = dc_weights_find(w, "w");
    assert_non_null(t);
    float vals[4];
    assert_ok(dc_tensor_view_copy_f32(t, vals, 4));
    assert_true(vals[0] == 1 && vals[3] == 4);
    dc_weights_close(w);
    free(buf);
}

static void test_legacy_count_and_length(void **state) {
    (void)state;
    const char *keys[] = {"0"};
    uint64_t counts[] = {3};
    size_t len;
    uint8_t *buf = torch_legacy(&good, 1, keys, 1, counts, &len);
    assert_status(dc_open_bytes(buf, len), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("holds 3 elements but the pickle declares 4");
    free(buf);
    counts[0] = 4;
    buf = torch_legacy(&good, 1, keys, 1, counts, &len);
    assert_status(dc_open_bytes(buf, len - 1), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("runs past the end");
    uint8_t *more = malloc(len + 3);
    memcpy(more, buf, len);
    memset(more + len, 0, 3);
    assert_status(dc_open_bytes(more, len + 3), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("3 unexpected bytes");
    free(more);
    free(buf);
}

static void test_legacy_key_list(void **state) {
    (void)state;
    const char *keys[] = {"0", "9"};
    uint64_t counts[] = {4, 1};
    size_t len;
    uint8_t *buf = torch_legacy(&good, 1, keys, 2, counts, &len);
    assert_status(dc_open_bytes(buf, len), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("not used by any tensor");
    free(buf);
    buf = torch_legacy(&good, 1, keys, 0, counts, &len);
    assert_status(dc_open_bytes(buf, len), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("missing from the storage list");
    free(buf);
    const char *twice[] = {"0", "0"};
    uint64_t c2[] = {4, 4};
    buf = torch_legacy(&good, 1, twice, 2, c2, &len);
    assert_status(dc_open_bytes(buf, len), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("listed twice");
    free(buf);
}

static void test_legacy_views(void **state) {
    (void)state;
    tensor_spec t = good;
    t.view = "v";
    t.view_offset = 2;
    t.view_size = 2;
    t.ndim = 1;
    t.size[0] = 2;
    t.stride[0] = 1;
    const char *keys[] = {"0"};
    uint64_t counts[] = {4};
    size_t len;
    uint8_t *buf = torch_legacy(&t, 1, keys, 1, counts, &len);
    dc_weights *w = NULL;
    assert_ok(dc_weights_open_memory(buf, len, "legacy", &w));
    float vals[2];
    assert_ok(dc_tensor_view_copy_f32(dc_weights_find(w, "w"), vals, 2));
    assert_true(vals[0] == 3 && vals[1] == 4);
    dc_weights_close(w);
    free(buf);
    t.offset = 1; /* 2 elements from offset 1 in a 2-element view */
    buf = torch_legacy(&t, 1, keys, 1, counts, &len);
    assert_status(dc_open_bytes(buf, len), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("runs past the end of storage");
    free(buf);
    t.offset = 0;
    t.view_offset = 3;
    buf = torch_legacy(&t, 1, keys, 1, counts, &len);
    assert_status(dc_open_bytes(buf, len), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("storage view");
    free(buf);
}

static void test_legacy_header_checks(void **state) {
    (void)state;
    /* a plain pickle is not a checkpoint */
    assert_status(dc_open_bytes("\x80\x02K\x01.", 5), DC_ERR_UNSUPPORTED_FORMAT);
    assert_detail_contains("magic number");
    /* magic, then protocol version 1000 */
    dc_tbuf b = {0};
    legacy_header(&b);
    size_t magic_len = 15;
    dc_tbuf bad = {0};
    dc_tbuf_put(&bad, b.data, magic_len);
    dc_tbuf_str(&bad, "\x80\x02M\xe8\x03.");
    assert_status(dc_open_bytes(bad.data, bad.len), DC_ERR_UNSUPPORTED_FORMAT);
    assert_detail_contains("protocol version 1000");
    free(bad.data);
    /* big-endian sys_info */
    dc_tbuf be = {0};
    dc_tbuf_put(&be, b.data, magic_len);
    dc_tbuf_str(&be, "\x80\x02M\xe9\x03.");
    static const char info[] = "\x80\x02}X\x0d\x00\x00\x00little_endian\x89s.";
    dc_tbuf_put(&be, info, sizeof info - 1);
    assert_status(dc_open_bytes(be.data, be.len), DC_ERR_UNSUPPORTED_FORMAT);
    assert_detail_contains("big-endian");
    free(be.data);
    free(b.data);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zip_fixture),
        cmocka_unit_test(test_legacy_fixture),
        cmocka_unit_test(test_protocol4_fixture),
        cmocka_unit_test(test_deflated_fixture),
        cmocka_unit_test(test_wrapped_parameters),
        cmocka_unit_test(test_hostile_fixtures),
        cmocka_unit_test(test_storage_offset_past_end),
        cmocka_unit_test(test_non_contiguous_rejected),
        cmocka_unit_test(test_storage_records),
        cmocka_unit_test(test_storage_declared_twice_differently),
        cmocka_unit_test(test_byteorder),
        cmocka_unit_test(test_zip_without_pickle),
        cmocka_unit_test(test_crc_mismatch_in_torch_zip),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_legacy_built),
        cmocka_unit_test(test_legacy_count_and_length),
        cmocka_unit_test(test_legacy_key_list),
        cmocka_unit_test(test_legacy_views),
        cmocka_unit_test(test_legacy_header_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* safetensors reader and the format-independent dc_weights API: fixtures written by
 * safetensors.torch.save_file (tests/data/weights/gen_weights.py) and hostile headers. */
#include "weights_fixture.h"

#include <sys/wait.h>
#include <unistd.h>

static const uint8_t zeros[64];

/* Builds a file from a header (padded to 8) and `data_len` zero bytes, opens it in memory and
 * returns the status. */
static dc_status open_header(const char *header, size_t data_len) {
    size_t len;
    uint8_t *file = dc_st_build(header, 8, zeros, data_len, &len);
    dc_status st = dc_open_bytes(file, len);
    free(file);
    return st;
}

static void test_fixture_matches_torch(void **state) {
    (void)state;
    dc_weights *w = dc_check_fixture("model.safetensors");
    /* aliases are stored once in safetensors (like transformers does) */
    assert_null(dc_weights_find(w, "decoder.weight"));
    const dc_tensor_view *s = dc_weights_find(w, "scale");
    assert_non_null(s);
    assert_int_equal(s->ndim, 0);
    assert_int_equal(s->numel, 1);
    const dc_tensor_view *e = dc_weights_find(w, "empty");
    assert_int_equal(e->numel, 0);
    assert_int_equal(e->nbytes, 0);
    dc_weights_close(w);
}

static void test_data_is_zero_copy(void **state) {
    (void)state;
    size_t len;
    uint8_t *file = dc_test_read_file(dc_test_data_path("weights/model.safetensors"), &len);
    assert_non_null(file);
    dc_weights *w = NULL;
    assert_ok(dc_weights_open_memory(file, len, "mem", &w));
    for (size_t i = 0; i < dc_weights_count(w); i++) {
        const dc_tensor_view *t = dc_weights_tensor(w, i);
        if (t->nbytes == 0) continue;
        const uint8_t *p = t->data;
        assert_true(p > file && p + t->nbytes <= file + len);
    }
    dc_weights_close(w);
    free(file);
}

static void test_find_get_and_order(void **state) {
    (void)state;
    dc_weights *w = NULL;
    assert_ok(dc_weights_open(dc_test_data_path("weights/model.safetensors"), &w));
    assert_int_equal(dc_weights_count(w), 11);
    for (size_t i = 0; i < dc_weights_count(w); i++) {
        const dc_tensor_view *t = dc_weights_tensor(w, i);
        assert_ptr_equal(dc_weights_find(w, t->name), t);
    }
    assert_null(dc_weights_tensor(w, 11));
    assert_null(dc_weights_find(w, "encoder.weigh"));
    const dc_tensor_view *t = NULL;
    assert_status(dc_weights_get(w, "no.such.tensor", &t), DC_ERR_NOT_FOUND);
    assert_detail_contains("no.such.tensor");
    assert_detail_contains("model.safetensors");
    assert_null(t);
    assert_ok(dc_weights_get(w, "encoder.bias", &t));
    assert_string_equal(t->name, "encoder.bias");
    assert_string_equal(dc_weights_metadata_get(w, "format"), "pt");
    assert_null(dc_weights_metadata_get(w, "nope"));
    const char *k, *v;
    assert_true(dc_weights_metadata_at(w, 0, &k, &v));
    assert_string_equal(k, "format");
    assert_false(dc_weights_metadata_at(w, 1, &k, &v));
    dc_weights_close(w);
}

/* dc_weights_file_span: every tensor's bytes at its offset in its own file (the shard for an
 * index); nothing for memory, torch files or a tensor copied for alignment. */
static void check_spans(const char *rel, bool want) {
    dc_weights *w = NULL;
    assert_ok(dc_weights_open(dc_test_data_path(rel), &w));
    for (size_t i = 0; i < dc_weights_count(w); i++) {
        const dc_tensor_view *t = dc_weights_tensor(w, i);
        const char *path = NULL;
        uint64_t off = 0;
        bool got = dc_weights_file_span(w, t, &path, &off);
        assert_int_equal(got, want && t->nbytes > 0);
        if (!got) continue;
        size_t len;
        uint8_t *file = dc_test_read_file(path, &len);
        assert_non_null(file);
        assert_true(off + t->nbytes <= len && !memcmp(file + off, t->data, t->nbytes));
        free(file);
    }
    dc_weights_close(w);
}

static void test_file_span(void **state) {
    (void)state;
    check_spans("weights/model.safetensors", true);
    check_spans("weights/sharded/model.safetensors.index.json", true);
    check_spans("weights/pytorch_model.bin", false);
    size_t len;
    uint8_t *file = dc_test_read_file(dc_test_data_path("weights/model.safetensors"), &len);
    dc_weights *w = NULL;
    assert_ok(dc_weights_open_memory(file, len, "mem", &w));
    const char *path;
    uint64_t off;
    assert_false(dc_weights_file_span(w, dc_weights_tensor(w, 0), &path, &off));
    dc_weights_close(w);
    free(file);
    /* an F32 at an odd offset is copied at open: not the file's bytes in place */
    const char *h = "{\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                    "\"f\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[1,5]}}";
    uint8_t data[5] = {0};
    file = dc_st_build(h, 8, data, sizeof data, &len);
    const char *tmp = dc_test_write_temp(file, len, ".safetensors");
    assert_ok(dc_weights_open(tmp, &w));
    assert_true(dc_weights_file_span(w, dc_weights_find(w, "b"), &path, &off));
    assert_string_equal(path, tmp);
    assert_int_equal(off, 8 + (len - 8 - 5));
    assert_false(dc_weights_file_span(w, dc_weights_find(w, "f"), &path, &off));
    dc_weights_close(w);
    free(file);
}

static void test_sharded_index(void **state) {
    (void)state;
    dc_weights *w = dc_check_fixture("sharded/model.safetensors.index.json");
    dc_weights_close(w);
}

static void test_sharded_index_hostile(void **state) {
    (void)state;
    const char *idx = "{\"weight_map\": {\"a\": \"../model.safetensors\"}}";
    const char *p = dc_test_write_temp(idx, strlen(idx), ".json");
    dc_weights *w = NULL;
    assert_status(dc_weights_open(p, &w), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("../model.safetensors");
    idx = "{\"weight_map\": {\"a\": \"missing-shard.safetensors\"}}";
    p = dc_test_write_temp(idx, strlen(idx), ".json");
    assert_status(dc_weights_open(p, &w), DC_ERR_IO);
    assert_detail_contains("missing-shard.safetensors");
    idx = "{\"something\": 1}";
    p = dc_test_write_temp(idx, strlen(idx), ".json");
    assert_status(dc_weights_open(p, &w), DC_ERR_UNSUPPORTED_FORMAT);
    assert_detail_contains("weight_map");
    /* an index in memory cannot name its shards */
    assert_status(dc_open_bytes(idx, strlen(idx)), DC_ERR_UNSUPPORTED_FORMAT);
    assert_null(w);
}

static void test_every_truncation_fails_cleanly(void **state) {
    (void)state;
    size_t len;
    uint8_t *file = dc_test_read_file(dc_test_data_path("weights/model.safetensors"), &len);
    assert_non_null(file);
    for (size_t n = 0; n < len; n++) {
        dc_status st = dc_open_bytes(file, n);
        if (st == DC_OK) fail_msg("prefix of %zu/%zu bytes was accepted", n, len);
    }
    assert_ok(dc_open_bytes(file, len));
    /* and one trailing byte too many is a hole at the end */
    uint8_t *more = malloc(len + 1);
    memcpy(more, file, len);
    more[len] = 0;
    assert_status(dc_open_bytes(more, len + 1), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("after the last tensor");
    free(more);
    free(file);
}

static void test_header_length_limits(void **state) {
    (void)state;
    uint8_t file[16] = {0};
    uint64_t n = 100000001;
    for (int i = 0; i < 8; i++) file[i] = (uint8_t)(n >> (8 * i));
    memcpy(file + 8, "{}      ", 8);
    assert_status(dc_open_bytes(file, sizeof file), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("100000001");
    memset(file, 0xFF, 8);
    assert_status(dc_open_bytes(file, sizeof file), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("header length");
    n = 9; /* one more than the file has */
    memset(file, 0, 8);
    file[0] = (uint8_t)n;
    assert_status(dc_open_bytes(file, sizeof file), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("runs past the end");
}

static void test_header_not_json(void **state) {
    (void)state;
    assert_status(open_header("{not json at all", 0), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("not valid JSON");
    assert_detail_contains("byte offset");
    assert_status(open_header("{\"a\": {}} trailing", 0), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("after the JSON header");
    assert_status(open_header("{\"a\": 1}", 0), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("\"a\"");
    /* the header must be an object: anything else is not recognised as safetensors */
    assert_status(open_header("[1, 2, 3]", 0), DC_ERR_UNSUPPORTED_FORMAT);
}

static void test_empty_header_and_padding(void **state) {
    (void)state;
    assert_ok(open_header("{}", 0));
    size_t len;
    uint8_t *file = dc_st_build("{\"__metadata__\": {\"k\": \"v\"}}\n\t\r ", 64, NULL, 0, &len);
    assert_ok(dc_open_bytes(file, len));
    free(file);
}

static void test_overlapping_spans(void **state) {
    (void)state;
    assert_status(open_header("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                              " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
                              12),
                  DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("overlaps");
    assert_detail_contains("\"b\"");
    assert_detail_contains("byte offset");
    /* the same span twice is an overlap as well */
    assert_status(open_header("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                              " \"b\": {\"dtype\": \"I32\", \"shape\": [2], \"data_offsets\": [0, 8]}}",
                              8),
                  DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("overlaps");
}

static void test_out_of_file_offsets(void **state) {
    (void)state;
    assert_status(open_header("{\"a\": {\"dtype\": \"U8\", \"shape\": [1000], \"data_offsets\": [0, 1000]}}",
                              8),
                  DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("\"a\"");
    assert_detail_contains("past the data buffer");
    assert_status(open_header("{\"a\": {\"dtype\": \"U8\", \"shape\": [0], \"data_offsets\": "
                              "[18446744073709551615, 18446744073709551615]}}",
                              0),
                  DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("not non-negative integers");
    assert_status(open_header("{\"a\": {\"dtype\": \"U8\", \"shape\": [0], \"data_offsets\": [4, 2]}}",
                              4),
                  DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("end before they begin");
}

static void test_holes(void **state) {
    (void)state;
    assert_status(open_header("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                              " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}",
                              12),
                  DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("hole");
    assert_detail_contains("\"b\"");
    assert_status(open_header("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8),
                  DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("hole");
    assert_status(open_header("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 8),
                  DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("after the last tensor");
}

static void test_span_must_match_shape(void **state) {
    (void)state;
    assert_status(open_header("{\"w\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8),
                  DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("\"w\"");
    assert_detail_contains("need 12 bytes");
    /* overflowing shape products are caught, not wrapped */
    assert_status(open_header("{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 16],"
                              " \"data_offsets\": [0, 0]}}",
                              0),
                  DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("overflow");
    assert_status(open_header("{\"w\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 0]}}", 0),
                  DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("shape[0]");
    assert_status(open_header("{\"w\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 0]}}", 0),
                  DC_ERR_CHECKPOINT_CORRUPTED);
    assert_status(open_header("{\"w\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1],"
                              " \"data_offsets\": [0, 4]}}",
                              4),
                  DC_ERR_UNSUPPORTED_FORMAT);
    assert_detail_contains("dimensions");
}

static void test_unknown_dtype(void **state) {
    (void)state;
    assert_status(open_header("{\"q\": {\"dtype\": \"Q4_K\", \"shape\": [2], \"data_offsets\": [0, 1]}}", 1),
                  DC_ERR_UNSUPPORTED_FORMAT);
    assert_detail_contains("Q4_K");
    assert_detail_contains("\"q\"");
    assert_status(open_header("{\"q\": {\"dtype\": \"f32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4),
                  DC_ERR_UNSUPPORTED_FORMAT);
    assert_status(open_header("{\"q\": {\"dtype\": 7, \"shape\": [1], \"data_offsets\": [0, 4]}}", 4),
                  DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("dtype is not a string");
}

static void test_missing_and_repeated_fields(void **state) {
    (void)state;
    assert_status(open_header("{\"w\": {\"dtype\": \"F32\", \"shape\": [1]}}", 0), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("data_offsets");
    assert_status(open_header("{\"w\": {\"dtype\": \"F32\", \"dtype\": \"F16\", \"shape\": [1],"
                              " \"data_offsets\": [0, 4]}}",
                              4),
                  DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("duplicate field");
    assert_status(open_header("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", 4),
                  DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("[begin, end]");
}

static void test_non_utf8_key(void **state) {
    (void)state;
    assert_status(open_header("{\"\xff\xfe\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]}}", 1),
                  DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("UTF-8");
    assert_detail_contains("byte offset 10");
    /* overlong encoding of '/' */
    assert_status(open_header("{\"\xc0\xaf\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]}}", 1),
                  DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("UTF-8");
    /* an escaped NUL would truncate the key inside cJSON */
    assert_status(open_header("{\"a\\u0000b\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]}}", 1),
                  DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("\\u0000");
    /* an escaped backslash followed by u0000 is an ordinary key */
    assert_ok(open_header("{\"a\\\\u0000b\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]}}", 1));
    /* valid escapes and non-ASCII keys are fine */
    assert_ok(open_header("{\"caf\xc3\xa9\\u00e9\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]}}", 1));
}

static void test_duplicate_keys(void **state) {
    (void)state;
    assert_status(open_header("{\"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]},"
                              " \"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [1, 2]}}",
                              2),
                  DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("duplicate tensor name \"a\"");
    assert_status(open_header("{\"__metadata__\": {}, \"__metadata__\": {}}", 0), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("__metadata__");
    assert_status(open_header("{\"__metadata__\": {\"k\": \"1\", \"k\": \"2\"}}", 0), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("duplicate metadata key \"k\"");
}

static void test_metadata_rules(void **state) {
    (void)state;
    assert_status(open_header("{\"__metadata__\": {\"n\": 3}}", 0), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("\"n\" is not a string");
    assert_status(open_header("{\"__metadata__\": [\"x\"]}", 0), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("not an object");
}

static void test_misaligned_data_is_copied(void **state) {
    (void)state;
    /* a 1-byte hole-free U8 then an F32: the F32 starts at an odd file offset */
    const char *h = "{\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                    "\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1,9]}}";
    uint8_t data[9] = {7};
    float vals[2] = {1.5f, -2.25f};
    memcpy(data + 1, vals, sizeof vals);
    size_t len;
    uint8_t *file = dc_st_build(h, 8, data, sizeof data, &len);
    dc_weights *w = NULL;
    assert_ok(dc_weights_open_memory(file, len, "mem", &w));
    const dc_tensor_view *f = dc_weights_find(w, "f");
    assert_non_null(f);
    assert_int_equal((uintptr_t)f->data % 4, 0);
    assert_true(memcmp(f->data, vals, sizeof vals) == 0);
    const float *fp = f->data;
    assert_true(fp[1] == -2.25f);
    dc_weights_close(w);
    free(file);
}

static void test_sub_byte_dtypes(void **state) {
    (void)state;
    assert_ok(open_header("{\"x\": {\"dtype\": \"F4\", \"shape\": [4], \"data_offsets\": [0, 2]}}", 2));
    assert_status(open_header("{\"x\": {\"dtype\": \"F4\", \"shape\": [3], \"data_offsets\": [0, 2]}}", 2),
                  DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("whole bytes");
    /* listed but not convertible */
    size_t len;
    uint8_t *file = dc_st_build("{\"x\": {\"dtype\": \"C64\", \"shape\": [1], \"data_offsets\": [0, 8]}}", 8,
                                zeros, 8, &len);
    dc_weights *w = NULL;
    assert_ok(dc_weights_open_memory(file, len, "mem", &w));
    float *out = NULL;
    assert_status(dc_tensor_view_to_f32(dc_weights_find(w, "x"), &out), DC_ERR_UNSUPPORTED_FORMAT);
    assert_detail_contains("C64");
    assert_null(out);
    float one;
    assert_status(dc_tensor_view_copy_f32(dc_weights_find(w, "x"), &one, 2), DC_ERR_INVALID_DIMENSION);
    dc_weights_close(w);
    free(file);
}

static void test_open_errors(void **state) {
    (void)state;
    dc_weights *w = (dc_weights *)&w;
    assert_status(dc_weights_open("/nonexistent/dir/model.safetensors", &w), DC_ERR_IO);
    assert_null(w);
    assert_detail_contains("/nonexistent/dir/model.safetensors");
    assert_detail_contains("No such file");
    assert_status(dc_weights_open(dc_test_data_path("weights"), &w), DC_ERR_IO);
    assert_detail_contains("not a regular file");
    const char *p = dc_test_write_temp("", 0, ".safetensors");
    assert_status(dc_weights_open(p, &w), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("empty");
    p = dc_test_write_temp("hello world, not a checkpoint", 29, ".bin");
    assert_status(dc_weights_open(p, &w), DC_ERR_UNSUPPORTED_FORMAT);
    assert_detail_contains("unrecognised");
    assert_status(dc_weights_open(NULL, &w), DC_ERR_INVALID_ARGUMENT);
}

static void test_committed_hostile_files(void **state) {
    (void)state;
    static const struct {
        const char *file;
        dc_status status;
        const char *needle;
    } cases[] = {
        {"overlap.safetensors", DC_ERR_CHECKPOINT_CORRUPTED, "overlaps"},
        {"hole.safetensors", DC_ERR_CHECKPOINT_CORRUPTED, "hole"},
        {"out_of_file.safetensors", DC_ERR_CHECKPOINT_CORRUPTED, "past the data buffer"},
        {"span_mismatch.safetensors", DC_ERR_CHECKPOINT_CORRUPTED, "need 8 bytes"},
        {"unknown_dtype.safetensors", DC_ERR_UNSUPPORTED_FORMAT, "Q4"},
        {"duplicate_key.safetensors", DC_ERR_CHECKPOINT_CORRUPTED, "duplicate tensor name"},
        {"non_utf8_key.safetensors", DC_ERR_CHECKPOINT_CORRUPTED, "UTF-8"},
        {"nul_escape.safetensors", DC_ERR_CHECKPOINT_CORRUPTED, "\\u0000"},
        {"huge_header_len.safetensors", DC_ERR_CHECKPOINT_CORRUPTED, "100000001"},
        {"overflow_shape.safetensors", DC_ERR_CHECKPOINT_CORRUPTED, "overflow"},
        {"misaligned_ok.safetensors", DC_OK, NULL},
        {"metadata_ok.safetensors", DC_OK, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "weights/hostile/%s", cases[i].file);
        dc_weights *w = NULL;
        assert_status(dc_weights_open(dc_test_data_path(rel), &w), cases[i].status);
        if (cases[i].needle) {
            assert_detail_contains(cases[i].needle);
            assert_detail_contains(cases[i].file);
        }
        dc_weights_close(w);
    }
}

/* Runs `dodeca ARGS`, capturing stdout and stderr; returns the exit code. */
static int run_cli(const char *args, char **out) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", DC_CLI_PATH, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    dc_tbuf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0) dc_tbuf_put(&b, chunk, n);
    dc_tbuf_u8(&b, 0);
    int rc = pclose(p);
    *out = (char *)b.data;
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void test_inspect_cli(void **state) {
    (void)state;
    if (access(DC_CLI_PATH, X_OK) != 0) skip();
    char args[1024], *out;
    snprintf(args, sizeof args, "inspect '%s'", dc_test_data_path("weights/pytorch_model.bin"));
    assert_int_equal(run_cli(args, &out), 0);
    assert_non_null(strstr(out, "format: pytorch-zip"));
    assert_non_null(strstr(out, "tensors: 13"));
    /* sorted by name, shape in brackets, byte size */
    char *dec = strstr(out, "decoder.weight");
    char *enc = strstr(out, "encoder.weight");
    assert_true(dec && enc && dec < enc);
    assert_non_null(strstr(out, "[3, 4]"));
    assert_non_null(strstr(out, "[1, 6]"));
    free(out);

    /* a model folder resolves to its checkpoint; metadata is listed */
    snprintf(args, sizeof args, "inspect --json '%s'", dc_test_data_path("weights"));
    assert_int_equal(run_cli(args, &out), 0);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "format")->valuestring, "safetensors");
    assert_int_equal((int)cJSON_GetObjectItem(j, "tensor_count")->valuedouble, 11);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "metadata"), "format")->valuestring,
                        "pt");
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "tensors"), 0);
    assert_string_equal(cJSON_GetObjectItem(first, "name")->valuestring, "double");
    assert_int_equal((int)cJSON_GetObjectItem(first, "nbytes")->valuedouble, 16);
    cJSON_Delete(j);
    free(out);

    snprintf(args, sizeof args, "inspect '%s'", dc_test_data_path("weights/hostile/os_system_legacy.bin"));
    assert_int_equal(run_cli(args, &out), 1);
    assert_non_null(strstr(out, "dodeca: inspect: "));
    assert_non_null(strstr(out, "os.system"));
    free(out);
    assert_int_equal(run_cli("inspect", &out), 2);
    free(out);
    assert_int_equal(run_cli("inspect --bogus x", &out), 2);
    free(out);
    assert_int_equal(run_cli("inspect a b", &out), 2);
    free(out);
}

static void test_dtype_helpers(void **state) {
    (void)state;
    dc_dtype t;
    for (int i = 1; i < DC_DTYPE_COUNT; i++) {
        assert_ok(dc_dtype_parse(dc_dtype_name((dc_dtype)i), &t));
        assert_int_equal(t, i);
        assert_true(dc_dtype_bits((dc_dtype)i) > 0);
    }
    assert_status(dc_dtype_parse("F31", &t), DC_ERR_UNSUPPORTED_FORMAT);
    assert_detail_contains("F31");
    assert_int_equal(dc_dtype_size(DC_DTYPE_F32), 4);
    assert_int_equal(dc_dtype_size(DC_DTYPE_BF16), 2);
    assert_int_equal(dc_dtype_size(DC_DTYPE_C64), 8);
    assert_int_equal(dc_dtype_size(DC_DTYPE_F4), 0);
    assert_int_equal(dc_dtype_bits(DC_DTYPE_F6_E2M3), 6);
    assert_string_equal(dc_dtype_name((dc_dtype)999), "UNKNOWN");
    uint64_t shape[2] = {3, 5}, numel, nbytes;
    assert_ok(dc_dtype_span(DC_DTYPE_BF16, 2, shape, &numel, &nbytes));
    assert_int_equal(numel, 15);
    assert_int_equal(nbytes, 30);
    assert_ok(dc_dtype_span(DC_DTYPE_F32, 0, shape, &numel, &nbytes));
    assert_int_equal(numel, 1);
    assert_int_equal(nbytes, 4);
}

static void test_scalar_conversions(void **state) {
    (void)state;
    assert_true(dc_f16_to_f32(0x3C00) == 1.0f);
    assert_true(dc_f16_to_f32(0xC000) == -2.0f);
    assert_true(dc_f16_to_f32(0x7BFF) == 65504.0f);
    assert_true(dc_f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(dc_f16_to_f32(0x03FF) == 1023 * 0x1p-24f);
    assert_true(isinf(dc_f16_to_f32(0x7C00)) && dc_f16_to_f32(0x7C00) > 0);
    assert_true(isnan(dc_f16_to_f32(0x7E00)));
    assert_true(signbit(dc_f16_to_f32(0x8000)));
    assert_true(dc_bf16_to_f32(0x3F80) == 1.0f);
    assert_true(dc_bf16_to_f32(0xC0A0) == -5.0f);
    assert_true(dc_f8_e4m3_to_f32(0x38) == 1.0f);
    assert_true(dc_f8_e4m3_to_f32(0x7E) == 448.0f);
    assert_true(dc_f8_e4m3_to_f32(0x01) == 0x1p-9f);
    assert_true(isnan(dc_f8_e4m3_to_f32(0x7F)));
    assert_true(isnan(dc_f8_e4m3_to_f32(0xFF)));
    assert_true(dc_f8_e4m3_to_f32(0xC0) == -2.0f);
    assert_true(dc_f8_e5m2_to_f32(0x3C) == 1.0f);
    assert_true(dc_f8_e5m2_to_f32(0x7B) == 57344.0f);
    assert_true(isinf(dc_f8_e5m2_to_f32(0x7C)));
    assert_true(dc_f8_e5m2_to_f32(0x01) == 0x1p-16f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_matches_torch),
        cmocka_unit_test(test_data_is_zero_copy),
        cmocka_unit_test(test_find_get_and_order),
        cmocka_unit_test(test_sharded_index),
        cmocka_unit_test(test_file_span),
        cmocka_unit_test(test_sharded_index_hostile),
        cmocka_unit_test(test_every_truncation_fails_cleanly),
        cmocka_unit_test(test_header_length_limits),
        cmocka_unit_test(test_header_not_json),
        cmocka_unit_test(test_empty_header_and_padding),
        cmocka_unit_test(test_overlapping_spans),
        cmocka_unit_test(test_out_of_file_offsets),
        cmocka_unit_test(test_holes),
        cmocka_unit_test(test_span_must_match_shape),
        cmocka_unit_test(test_unknown_dtype),
        cmocka_unit_test(test_missing_and_repeated_fields),
        cmocka_unit_test(test_non_utf8_key),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_metadata_rules),
        cmocka_unit_test(test_misaligned_data_is_copied),
        cmocka_unit_test(test_sub_byte_dtypes),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_committed_hostile_files),
        cmocka_unit_test(test_inspect_cli),
        cmocka_unit_test(test_dtype_helpers),
        cmocka_unit_test(test_scalar_conversions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* E9 item memory persistence (seed L32): round trips, hostile files, and the model's
 * load-or-regenerate behaviour. */
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/bytes.h"
#include "models/custom.h"
#include "models/hdc.h"
#include "test_support.h"

static char dir[64];

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/dc-hdc-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *path_in_dir(const char *name) {
    static char p[8][128];
    static int slot;
    char *s = p[slot++ % 8];
    snprintf(s, 128, "%s/%s", dir, name);
    return s;
}

static uint8_t *encode_mem(const dc_hdc_memory *m, size_t *len) {
    *len = dc_hdc_memory_encoded_size(m);
    uint8_t *buf = malloc(*len);
    size_t written = 0;
    assert_ok(dc_hdc_memory_encode(m, buf, *len, &written));
    assert_int_equal(written, *len);
    return buf;
}

/* Recomputes the checksum after an edit, so a test reaches the check behind it. */
static void reseal(uint8_t *buf, size_t len) {
    memset(buf + 32, 0, 8);
    dc_put_u64le(buf + 32, XXH3_64bits(buf, len));
}

static void embed_with(const dc_hdc_memory *m, const char *text, float out[DC_HDC_OUT_DIM]) {
    dc_hdc_scratch *s = NULL;
    assert_ok(dc_hdc_scratch_create(&s));
    dc_hdc_result r;
    assert_ok(dc_hdc_encode(m, s, text, strlen(text), 4096, false, out, &r));
    dc_hdc_scratch_free(s);
}

static const char *sample = "persistence: the same vectors after a restart, ÅÉÎ and 中文";

static void test_encode_decode_round_trip(void **state) {
    (void)state;
    dc_hdc_memory *m = NULL, *back = NULL;
    assert_ok(dc_hdc_memory_generate(42, 3, 300, &m));
    size_t len;
    uint8_t *buf = encode_mem(m, &len);
    assert_int_equal(len, 64 + 3 * 4 + (2 + 300) * 1280);
    assert_memory_equal(buf, "HDCV", 4);
    assert_int_equal(dc_get_u32le(buf + 4), 1);
    assert_int_equal(dc_get_u64le(buf + 8), 42);
    assert_int_equal(dc_get_u32le(buf + 16), 10240);
    assert_ok(dc_hdc_memory_decode(buf, len, "test", &back));
    size_t len2;
    uint8_t *buf2 = encode_mem(back, &len2);
    assert_int_equal(len, len2);
    assert_memory_equal(buf, buf2, len);
    float a[DC_HDC_OUT_DIM], b[DC_HDC_OUT_DIM];
    embed_with(m, sample, a);
    embed_with(back, sample, b);
    assert_memory_equal(a, b, sizeof a);
    uint8_t small[10];
    assert_status(dc_hdc_memory_encode(m, small, sizeof small, NULL), DC_ERR_INVALID_ARGUMENT);
    free(buf);
    free(buf2);
    dc_hdc_memory_free(m);
    dc_hdc_memory_free(back);
}

static void test_save_and_load_give_identical_embeddings(void **state) {
    (void)state;
    dc_hdc_memory *m = NULL, *back = NULL;
    assert_ok(dc_hdc_memory_generate(7, 4, 1000, &m));
    const char *p = path_in_dir("saved.hdcv");
    assert_ok(dc_hdc_memory_save(m, p));
    assert_ok(dc_hdc_memory_load(p, &back));
    assert_true(back->seed == 7 && back->ngram == 4 && back->symbols == 1000);
    float a[DC_HDC_OUT_DIM], b[DC_HDC_OUT_DIM];
    embed_with(m, sample, a);
    embed_with(back, sample, b);
    assert_memory_equal(a, b, sizeof a);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal((size_t)st.st_size, dc_hdc_memory_encoded_size(m));
    dc_hdc_memory_free(m);
    dc_hdc_memory_free(back);
    assert_status(dc_hdc_memory_load(path_in_dir("absent.hdcv"), &back), DC_ERR_NOT_FOUND);
    assert_null(back);
    assert_status(dc_hdc_memory_load(dir, &back), DC_ERR_IO); /* a folder */
    assert_status(dc_hdc_memory_save(NULL, p), DC_ERR_INVALID_ARGUMENT);
}

typedef struct hostile {
    const char *name;
    size_t offset;  /* byte to change */
    uint32_t value; /* u32 written there */
    bool reseal;    /* fix the checksum afterwards */
    dc_status want;
    const char *detail;
} hostile;

static void test_hostile_files_are_rejected_with_a_reason(void **state) {
    (void)state;
    dc_hdc_memory *m = NULL, *out = NULL;
    assert_ok(dc_hdc_memory_generate(42, 3, 16, &m));
    size_t len;
    uint8_t *good = encode_mem(m, &len);
    uint8_t *buf = malloc(len + 1);
    const hostile cases[] = {
        {"magic", 0, 0x46464952 /* "RIFF" */, true, DC_ERR_CHECKPOINT_CORRUPTED, "magic"},
        {"version", 4, 2, true, DC_ERR_UNSUPPORTED_FORMAT, "version 2"},
        {"bits", 16, 10241, true, DC_ERR_CHECKPOINT_CORRUPTED, "dimension"},
        {"symbols", 20, 17, true, DC_ERR_CHECKPOINT_CORRUPTED, "payload length"},
        {"huge symbols", 20, 0x7FFFFFFF, true, DC_ERR_CHECKPOINT_CORRUPTED, "symbols"},
        {"ngram 0", 24, 0, true, DC_ERR_CHECKPOINT_CORRUPTED, "ngram"},
        {"ngram 9", 24, 9, true, DC_ERR_CHECKPOINT_CORRUPTED, "ngram"},
        {"flags", 28, 1, true, DC_ERR_CHECKPOINT_CORRUPTED, "reserved"},
        {"reserved", 60, 5, true, DC_ERR_CHECKPOINT_CORRUPTED, "reserved"},
        {"payload length", 40, 12, true, DC_ERR_CHECKPOINT_CORRUPTED, "payload length"},
        {"payload bit flip", 64 + 12 + 700, 0xDEADBEEF, false, DC_ERR_CHECKPOINT_CORRUPTED,
         "checksum"},
        {"checksum field", 32, 1, false, DC_ERR_CHECKPOINT_CORRUPTED, "checksum"},
        {"shift not whole words", 64, 65, true, DC_ERR_CHECKPOINT_CORRUPTED, "shift"},
        {"shift too large", 68, 10240, true, DC_ERR_CHECKPOINT_CORRUPTED, "shift"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const hostile *h = &cases[i];
        memcpy(buf, good, len);
        dc_put_u32le(buf + h->offset, h->value);
        if (h->reseal) reseal(buf, len);
        dc_status st = dc_hdc_memory_decode(buf, len, "item.hdcv", &out);
        if (st != h->want || !strstr(dc_error_detail(), h->detail))
            fail_msg("case '%s': got %s (%s), want %s containing '%s'", h->name, dc_status_name(st),
                     dc_error_detail(), dc_status_name(h->want), h->detail);
        assert_null(out);
        assert_non_null(strstr(dc_error_detail(), "item.hdcv"));
    }
    /* lengths: empty, header only, one byte short, one byte extra */
    assert_status(dc_hdc_memory_decode(good, 0, "f", &out), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_status(dc_hdc_memory_decode(good, 63, "f", &out), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("header");
    assert_status(dc_hdc_memory_decode(good, 64, "f", &out), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_status(dc_hdc_memory_decode(good, len - 1, "f", &out), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("truncated");
    memcpy(buf, good, len);
    buf[len] = 0;
    assert_status(dc_hdc_memory_decode(buf, len + 1, "f", &out), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_status(dc_hdc_memory_decode(NULL, 0, "f", &out), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_ok(dc_hdc_memory_decode(good, len, NULL, &out)); /* the untouched bytes are fine */
    dc_hdc_memory_free(out);
    free(buf);
    free(good);
    dc_hdc_memory_free(m);
}

/* The fuzz corpus is written by an independent Python encoder (tests/data/hdc/
 * gen_memory_corpus.py): its valid files must decode here, and every other file must not. */
static void test_python_written_corpus_decodes_as_named(void **state) {
    (void)state;
    static const char *names[] = {"valid_ngram3_2sym.bin",
                                  "valid_ngram1_0sym.bin",
                                  "valid_ngram8_1sym.bin",
                                  "valid_same_shifts.bin",
                                  "bad_magic.bin",
                                  "version2.bin",
                                  "bits_mismatch.bin",
                                  "ngram0.bin",
                                  "flags.bin",
                                  "payload_len_lies.bin",
                                  "huge_symbols_header_only.bin",
                                  "shift_not_words.bin",
                                  "bad_checksum.bin",
                                  "truncated.bin",
                                  "header_only.bin",
                                  "short.bin",
                                  "empty.bin"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "../fuzz/corpus/hdc_memory/%s", names[i]);
        dc_hdc_memory *m = NULL;
        dc_status st = dc_hdc_memory_load(dc_test_data_path(rel), &m);
        bool valid = strncmp(names[i], "valid", 5) == 0;
        if (valid != (st == DC_OK))
            fail_msg("%s: %s (%s)", names[i], dc_status_name(st), dc_error_detail());
        if (valid && strcmp(names[i], "valid_ngram3_2sym.bin") == 0) {
            /* same vectors as generated here */
            dc_hdc_memory *g = NULL;
            assert_ok(dc_hdc_memory_generate(42, 3, 2, &g));
            float a[DC_HDC_OUT_DIM], b[DC_HDC_OUT_DIM];
            embed_with(m, sample, a);
            embed_with(g, sample, b);
            assert_memory_equal(a, b, sizeof a);
            dc_hdc_memory_free(g);
        }
        dc_hdc_memory_free(m);
    }
}

/* ---- the model's use of item_memory_path ---- */

static dc_model *model_at(const char *path, uint64_t seed, uint32_t symbols) {
    dc_hdc_options o = dc_hdc_options_default();
    o.item_memory_path = path;
    o.seed = seed;
    o.symbols = symbols;
    dc_model *m = NULL;
    assert_ok(dc_hdc_create(&o, &m));
    return m;
}

static void model_embed(dc_model *m, float out[DC_HDC_OUT_DIM]) {
    dc_input in = dc_input_text(sample, strlen(sample), DC_ROLE_PASSAGE);
    dc_model_embedding e;
    assert_ok(dc_model_embed(m, &in, &e));
    memcpy(out, e.vector, DC_HDC_OUT_DIM * sizeof(float));
    dc_model_embedding_free(&e);
}

static void test_model_regenerates_a_missing_file_then_reuses_it(void **state) {
    (void)state;
    const char *p = path_in_dir("model.hdcv");
    float plain[DC_HDC_OUT_DIM], first[DC_HDC_OUT_DIM], second[DC_HDC_OUT_DIM];
    dc_model *m0 = model_at(NULL, 42, 512);
    assert_ok(dc_model_load(m0));
    model_embed(m0, plain);
    dc_model_destroy(m0);

    struct stat st;
    assert_int_not_equal(stat(p, &st), 0);
    dc_model *m1 = model_at(p, 42, 512);
    assert_ok(dc_model_load(m1)); /* missing: generated from the seed and saved */
    assert_int_equal(stat(p, &st), 0);
    model_embed(m1, first);
    dc_model_destroy(m1);
    assert_memory_equal(plain, first, sizeof plain);

    dc_model *m2 = model_at(p, 42, 512); /* a restart: read from the file */
    assert_ok(dc_model_load(m2));
    model_embed(m2, second);
    assert_memory_equal(first, second, sizeof first);
    dc_model_destroy(m2);
}

static void test_model_refuses_mismatched_or_corrupted_files(void **state) {
    (void)state;
    const char *p = path_in_dir("seed7.hdcv");
    dc_hdc_memory *m7 = NULL;
    assert_ok(dc_hdc_memory_generate(7, 3, 512, &m7));
    assert_ok(dc_hdc_memory_save(m7, p));

    dc_model *m = model_at(p, 42, 512);
    assert_status(dc_model_load(m), DC_ERR_CONFIG);
    assert_detail_contains("seed 7");
    assert_detail_contains("seed 42");
    assert_false(dc_model_is_loaded(m));
    dc_model_destroy(m);
    m = model_at(p, 7, 100);
    assert_status(dc_model_load(m), DC_ERR_CONFIG);
    assert_detail_contains("symbols");
    dc_model_destroy(m);

    /* one flipped byte in the middle of the file */
    size_t len;
    uint8_t *buf = encode_mem(m7, &len);
    buf[len / 2] ^= 0x10;
    const char *bad = path_in_dir("corrupt.hdcv");
    FILE *f = fopen(bad, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
    m = model_at(bad, 7, 512);
    assert_status(dc_model_load(m), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("checksum");
    assert_detail_contains("corrupt.hdcv");
    dc_model_destroy(m);

    /* the file is authoritative: a well-formed file with other vectors changes embeddings */
    float ref[DC_HDC_OUT_DIM], changed[DC_HDC_OUT_DIM];
    buf[len / 2] ^= 0x10;
    m = model_at(p, 7, 512);
    assert_ok(dc_model_load(m));
    model_embed(m, ref);
    dc_model_destroy(m);
    size_t a_vec = 64 + 3 * 4 + (2 + 'a') * 1280; /* base vector of 'a' */
    for (int k = 0; k < 1280; k++) buf[a_vec + k] ^= 0xFF;
    reseal(buf, len);
    const char *other = path_in_dir("other.hdcv");
    f = fopen(other, "wb");
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
    m = model_at(other, 7, 512);
    assert_ok(dc_model_load(m));
    model_embed(m, changed);
    assert_memory_not_equal(ref, changed, sizeof ref);
    dc_model_destroy(m);

    /* cannot regenerate into a folder that does not exist */
    m = model_at(path_in_dir("no/such/folder/x.hdcv"), 7, 512);
    assert_status(dc_model_load(m), DC_ERR_IO);
    assert_detail_contains("no/such/folder");
    dc_model_destroy(m);
    free(buf);
    dc_hdc_memory_free(m7);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_decode_round_trip),
        cmocka_unit_test(test_save_and_load_give_identical_embeddings),
        cmocka_unit_test(test_hostile_files_are_rejected_with_a_reason),
        cmocka_unit_test(test_python_written_corpus_decodes_as_named),
        cmocka_unit_test(test_model_regenerates_a_missing_file_then_reuses_it),
        cmocka_unit_test(test_model_refuses_mismatched_or_corrupted_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

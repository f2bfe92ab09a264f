/* Tokenizer conformance: every golden file of ../shared/conformance/tokenizers (or
 * $DODECA_CONFORMANCE_DIR/tokenizers) must match Hugging Face `tokenizers` on ids, code-point
 * offsets and byte offsets for every case — plain, truncated and padded variants — both with the
 * published tokenizer.json and with the tokenizer built from the folder's vocabulary files.
 * Prints per-file pass counts; skips (never passes) when the data is absent. */
#define _DEFAULT_SOURCE /* mkdtemp, symlink */
#include "test_support.h"

#include <cjson/cJSON.h>
#include <unistd.h>

#include "text/jsonl.h"
#include "text/tokenizer.h"

typedef struct tc_case {
    char *id;
    char *text;
    size_t len;
} tc_case;

typedef struct tc_corpus {
    tc_case *v;
    size_t n;
} tc_corpus;

static char tc_dir[2048];

static char *tc_path(const char *rel) {
    static char buf[8][4096];
    static int slot;
    char *p = buf[slot++ % 8];
    snprintf(p, 4096, "%s/%s", tc_dir, rel);
    return p;
}

/* Calls fn on each non-empty line of a file. */
static void for_lines(const char *path, void (*fn)(const char *, size_t, void *), void *arg) {
    size_t len;
    char *data = dc_test_read_file(path, &len);
    if (!data) fail_msg("cannot read %s", path);
    size_t i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && data[e] != '\n') e++;
        if (e > i) fn(data + i, e - i, arg);
        i = e + 1;
    }
    free(data);
}

static char *raw_string(const char *line, size_t len, const char *key) {
    const char *v;
    size_t vl;
    if (dc_jsonl_field(line, len, key, &v, &vl) != DC_OK) fail_msg("no %s in %.80s", key, line);
    char *s;
    size_t sl;
    if (dc_json_decode_string(v, vl, &s, &sl) != DC_OK) fail_msg("bad %s in %.80s", key, line);
    return s;
}

static void corpus_line(const char *line, size_t len, void *arg) {
    tc_corpus *c = arg;
    c->v = realloc(c->v, (c->n + 1) * sizeof *c->v);
    tc_case *k = &c->v[c->n++];
    k->id = raw_string(line, len, "id");
    const char *v;
    size_t vl;
    assert_int_equal(dc_jsonl_field(line, len, "text", &v, &vl), DC_OK);
    assert_int_equal(dc_json_decode_string(v, vl, &k->text, &k->len), DC_OK);
}

static const tc_case *corpus_find(const tc_corpus *c, const char *id) {
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->v[i].id, id)) return &c->v[i];
    return NULL;
}

typedef struct tc_run {
    const dc_tokenizer *tok;
    const dc_encode_options *opts;
    const tc_corpus *corpus;
    const char *file;
    size_t total, passed, shown;
} tc_run;

static bool spans_equal(const cJSON *arr, const dc_span *s, size_t n) {
    if (!cJSON_IsArray(arr) || (size_t)cJSON_GetArraySize(arr) != n) return false;
    size_t i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, arr) {
        const cJSON *a = cJSON_GetArrayItem(p, 0), *b = cJSON_GetArrayItem(p, 1);
        if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b) || (uint32_t)a->valuedouble != s[i].start ||
            (uint32_t)b->valuedouble != s[i].end)
            return false;
        i++;
    }
    return true;
}

static bool u32_equal(const cJSON *arr, const uint32_t *v, size_t n) {
    if (!cJSON_IsArray(arr) || (size_t)cJSON_GetArraySize(arr) != n) return false;
    size_t i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, arr) {
        if (!cJSON_IsNumber(p) || (uint32_t)p->valuedouble != v[i]) return false;
        i++;
    }
    return true;
}

static bool u8_equal(const cJSON *arr, const uint8_t *v, size_t n) {
    if (!arr) return true;
    if (!cJSON_IsArray(arr) || (size_t)cJSON_GetArraySize(arr) != n) return false;
    size_t i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, arr) {
        if (!cJSON_IsNumber(p) || (uint8_t)p->valuedouble != v[i]) return false;
        i++;
    }
    return true;
}

static void golden_line(const char *line, size_t len, void *arg) {
    tc_run *r = arg;
    cJSON *g = cJSON_ParseWithLength(line, len);
    if (!g) fail_msg("%s: bad golden line %.80s", r->file, line);
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(g, "id"));
    const tc_case *k = id ? corpus_find(r->corpus, id) : NULL;
    if (!k) fail_msg("%s: golden case %s is not in cases.jsonl", r->file, id ? id : "?");
    r->total++;
    dc_encoding e;
    dc_status st = dc_tokenizer_encode(r->tok, k->text, k->len, r->opts, &e);
    bool ok = st == DC_OK;
    bool ids = ok && u32_equal(cJSON_GetObjectItemCaseSensitive(g, "ids"), e.ids, e.len);
    bool offs = ok && spans_equal(cJSON_GetObjectItemCaseSensitive(g, "offsets"), e.offsets, e.len);
    bool boffs = ok && spans_equal(cJSON_GetObjectItemCaseSensitive(g, "byte_offsets"), e.byte_offsets, e.len);
    bool mask = ok && u8_equal(cJSON_GetObjectItemCaseSensitive(g, "attention_mask"), e.attention_mask, e.len);
    if (ids && offs && boffs && mask) {
        r->passed++;
    } else if (r->shown++ < 6) {
        printf("  MISMATCH %s %s:%s%s%s%s%s\n", r->file, id, ok ? "" : " error:", ok ? "" : dc_error_detail(),
               ids ? "" : " ids", offs ? "" : " offsets", boffs ? "" : " byte_offsets");
        if (ok) {
            printf("    got ids:");
            for (size_t i = 0; i < e.len && i < 40; i++) printf(" %u", e.ids[i]);
            printf("\n    got offsets:");
            for (size_t i = 0; i < e.len && i < 40; i++) printf(" [%u,%u]", e.offsets[i].start, e.offsets[i].end);
            char *want = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(g, "ids"));
            char *wo = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(g, "offsets"));
            printf("\n    want ids: %.400s\n    want offsets: %.600s\n", want, wo);
            free(want);
            free(wo);
        }
    }
    if (ok) dc_encoding_free(&e);
    cJSON_Delete(g);
}

/* Options of a manifest variant: null disables, an object sets, a string keeps the file's. */
static void variant_options(const dc_tokenizer *tok, const cJSON *v, dc_encode_options *o) {
    dc_tokenizer_default_options(tok, o);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "truncation");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(v, "padding");
    if (cJSON_IsNull(t)) o->truncation.enabled = false;
    if (cJSON_IsObject(t)) {
        o->truncation.enabled = true;
        o->truncation.max_length = (uint32_t)cJSON_GetObjectItemCaseSensitive(t, "max_length")->valuedouble;
        o->truncation.stride = 0;
        o->truncation.strategy = DC_TRUNC_LONGEST_FIRST;
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(t, "direction");
        o->truncation.direction = cJSON_IsString(d) && !strcmp(d->valuestring, "Left") ? DC_SIDE_LEFT : DC_SIDE_RIGHT;
    }
    if (cJSON_IsNull(p)) o->padding.enabled = false;
    if (cJSON_IsObject(p)) fail_msg("padding objects in the manifest are not handled by this test");
}

static size_t run_file(const dc_tokenizer *tok, const dc_encode_options *o, const tc_corpus *corpus,
                       const char *file, const char *label, size_t *total) {
    tc_run r = {tok, o, corpus, file, 0, 0, 0};
    for_lines(tc_path(file), golden_line, &r);
    printf("tokenizer conformance %-44s %-10s %zu/%zu passed\n", file, label, r.passed, r.total);
    *total += r.total;
    return r.passed;
}

static void load_corpus(tc_corpus *c) {
    memset(c, 0, sizeof *c);
    for_lines(tc_path("cases.jsonl"), corpus_line, c);
    assert_true(c->n > 0);
}

static void free_corpus(tc_corpus *c) {
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].id);
        free(c->v[i].text);
    }
    free(c->v);
}

static cJSON *load_manifest(void) {
    size_t len;
    char *m = dc_test_read_file(tc_path("manifest.json"), &len);
    if (!m) fail_msg("cannot read %s", tc_path("manifest.json"));
    cJSON *j = cJSON_ParseWithLength(m, len);
    free(m);
    if (!j) fail_msg("bad manifest.json");
    return j;
}

static int setup(void **state) {
    (void)state;
    const char *dir = dc_test_conformance_dir();
    if (!dir) return 0;
    snprintf(tc_dir, sizeof tc_dir, "%s/tokenizers", dir);
    if (access(tc_dir, R_OK) != 0) tc_dir[0] = '\0';
    return 0;
}

/* Every variant of every tokenizer in the manifest, with its tokenizer.json. */
static void test_goldens_tokenizer_json(void **state) {
    (void)state;
    if (!tc_dir[0]) skip();
    tc_corpus corpus;
    load_corpus(&corpus);
    cJSON *man = load_manifest();
    size_t total = 0, passed = 0;
    const cJSON *tk;
    cJSON_ArrayForEach(tk, cJSON_GetObjectItemCaseSensitive(man, "tokenizers")) {
        const char *file = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(tk, "tokenizer"));
        dc_tokenizer *tok;
        assert_ok(dc_tokenizer_load(tc_path(file), &tok));
        const cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(tk, "variants")) {
            dc_encode_options o;
            variant_options(tok, v, &o);
            const char *gf = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(v, "file"));
            passed += run_file(tok, &o, &corpus, gf, "json", &total);
        }
        dc_tokenizer_free(tok);
    }
    cJSON_Delete(man);
    free_corpus(&corpus);
    printf("tokenizer conformance total (tokenizer.json): %zu/%zu passed\n", passed, total);
    assert_true(total > 0);
    if (passed != total) fail_msg("%zu of %zu golden cases differ", total - passed, total);
}

/* The same goldens (plain variant) with the tokenizer built from vocab.txt or
 * vocab.json + merges.txt, as for model folders that ship no tokenizer.json. */
static void test_goldens_vocab_files(void **state) {
    (void)state;
    if (!tc_dir[0]) skip();
    static const struct {
        const char *folder;
        const char *files[5];
    } sets[] = {
        {"bert-base-uncased", {"vocab.txt", "tokenizer_config.json", NULL}},
        {"roberta-base", {"vocab.json", "merges.txt", NULL}},
        {"clip-vit-large-patch14",
         {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json", NULL}},
    };
    tc_corpus corpus;
    load_corpus(&corpus);
    size_t total = 0, passed = 0;
    for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++) {
        char tmpl[] = "/tmp/dodeca-tokfolder-XXXXXX";
        char *tmp = mkdtemp(tmpl);
        assert_non_null(tmp);
        for (int f = 0; sets[s].files[f]; f++) {
            char src[4096], dst[4200], rel[512];
            snprintf(rel, sizeof rel, "%s/%s", sets[s].folder, sets[s].files[f]);
            snprintf(src, sizeof src, "%s", tc_path(rel));
            snprintf(dst, sizeof dst, "%s/%s", tmp, sets[s].files[f]);
            assert_int_equal(symlink(src, dst), 0);
        }
        dc_tokenizer *tok;
        dc_status st = dc_tokenizer_load(tmp, &tok);
        for (int f = 0; sets[s].files[f]; f++) {
            char dst[4200];
            snprintf(dst, sizeof dst, "%s/%s", tmp, sets[s].files[f]);
            unlink(dst);
        }
        rmdir(tmp);
        assert_status(st, DC_OK);
        dc_encode_options o;
        dc_tokenizer_default_options(tok, &o);
        char gf[512];
        snprintf(gf, sizeof gf, "%s/expected.jsonl", sets[s].folder);
        passed += run_file(tok, &o, &corpus, gf, "vocab-files", &total);
        dc_tokenizer_free(tok);
    }
    free_corpus(&corpus);
    printf("tokenizer conformance total (vocabulary files): %zu/%zu passed\n", passed, total);
    if (passed != total) fail_msg("%zu of %zu golden cases differ", total - passed, total);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_goldens_tokenizer_json),
        cmocka_unit_test(test_goldens_vocab_files),
    };
    int failed = cmocka_run_group_tests(tests, setup, NULL);
    /* without the data every test skipped: tell ctest (SKIP_RETURN_CODE 77) instead of passing */
    if (!failed && !tc_dir[0]) return 77;
    return failed;
}

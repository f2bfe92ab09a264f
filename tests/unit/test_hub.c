/* The pure parts of the hub client (URLs, headers, layout paths), the cache layout on disk
 * (store, lookup, verify, .no_exist) and the model manifest. The network side is tested
 * against a fake hub in tests/hub/pull.sh. */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/hub.h"
#include "io/hub_model.h"
#include "io/manifest.h"
#include "runtime/factory.h"

static void test_repo_folder(void **state) {
    (void)state;
    char out[256];
    assert_ok(dc_hub_repo_folder("sentence-transformers/all-MiniLM-L6-v2", out, sizeof out));
    assert_string_equal(out, "models--sentence-transformers--all-MiniLM-L6-v2");
    assert_ok(dc_hub_repo_folder("gpt2", out, sizeof out));
    assert_string_equal(out, "models--gpt2");
    const char *bad[] = {"", "/x", "x/", "a/../b", "a//b", "a/b/c", "a b/c", "a/b\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_status(dc_hub_repo_folder(bad[i], out, sizeof out), DC_ERR_INVALID_ARGUMENT);
    assert_status(dc_hub_repo_folder("org/name", out, 12), DC_ERR_INVALID_ARGUMENT);
}

static void test_file_names(void **state) {
    (void)state;
    assert_true(dc_hub_file_name_ok("config.json"));
    assert_true(dc_hub_file_name_ok("1_Pooling/config.json"));
    assert_true(dc_hub_file_name_ok("refs/pr/7"));
    const char *bad[] = {"", "/etc/passwd", "../x", "a/../b", "a/./b", "a//b", "a/", ".",
                         "a\\b", "a\tb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(dc_hub_file_name_ok(bad[i]));
}

static void test_url(void **state) {
    (void)state;
    char u[512];
    assert_ok(dc_hub_url("https://huggingface.co", "intfloat/e5-large-v2", "main", "config.json",
                         u, sizeof u));
    assert_string_equal(u, "https://huggingface.co/intfloat/e5-large-v2/resolve/main/config.json");
    /* revision fully encoded, file keeps its '/', endpoint's trailing '/' dropped */
    assert_ok(dc_hub_url("http://127.0.0.1:8080/", "org/m", "refs/pr/7", "1_Pooling/config.json",
                         u, sizeof u));
    assert_string_equal(u, "http://127.0.0.1:8080/org/m/resolve/refs%2Fpr%2F7/1_Pooling/config.json");
    assert_ok(dc_hub_url(NULL, "org/m", NULL, "a b+c.json", u, sizeof u));
    assert_string_equal(u, "https://huggingface.co/org/m/resolve/main/a%20b%2Bc.json");
    assert_status(dc_hub_url(NULL, "org/m", "main", "../x", u, sizeof u), DC_ERR_INVALID_ARGUMENT);
    assert_status(dc_hub_url(NULL, "org/m", "main", "config.json", u, 30), DC_ERR_INVALID_ARGUMENT);
}

static void test_etag(void **state) {
    (void)state;
    char e[80];
    dc_hub_etag_normalize("W/\"abc\"", 7, e, sizeof e);
    assert_string_equal(e, "abc");
    dc_hub_etag_normalize(" \"0123\" \r\n", 10, e, sizeof e);
    assert_string_equal(e, "0123");
    dc_hub_etag_normalize("plain", 5, e, sizeof e);
    assert_string_equal(e, "plain");
    dc_hub_etag_normalize("\"\"", 2, e, sizeof e);
    assert_string_equal(e, "");
    assert_true(dc_hub_is_commit("3b0952feddeffad0063f274080e3c23d75e7eb39"));
    assert_false(dc_hub_is_commit("3b0952f"));
    assert_false(dc_hub_is_commit("3b0952feddeffad0063f274080e3c23d75e7eb3z"));
}

static void feed(dc_hub_meta *m, const char *line) { dc_hub_meta_header(m, line, strlen(line)); }

static void test_headers(void **state) {
    (void)state;
    dc_hub_meta m;
    dc_hub_meta_reset(&m);
    /* an LFS file: the hub's 302 carries the metadata */
    feed(&m, "HTTP/1.1 302 Found\r\n");
    feed(&m, "x-repo-commit: 3b0952feddeffad0063f274080e3c23d75e7eb39\r\n");
    feed(&m, "X-Linked-Etag: \"a2bf730a0c7debf160f7a6b50b3aaf3703e7e88ac73de7a314903141db026dcb\"\r\n");
    feed(&m, "ETag: W/\"91-abc\"\r\n");
    feed(&m, "X-Linked-Size: 1710540580\r\n");
    feed(&m, "Content-Length: 1164\r\n");
    feed(&m, "Location: https://cdn-lfs.hf.co/repos/x?sig=1\r\n");
    assert_int_equal(m.status, 302);
    assert_string_equal(m.commit, "3b0952feddeffad0063f274080e3c23d75e7eb39");
    assert_string_equal(dc_hub_meta_blob_etag(&m),
                        "a2bf730a0c7debf160f7a6b50b3aaf3703e7e88ac73de7a314903141db026dcb");
    uint64_t size = 0;
    assert_true(dc_hub_meta_size(&m, &size));
    assert_int_equal(size, 1710540580ull);
    assert_string_equal(m.location, "https://cdn-lfs.hf.co/repos/x?sig=1");
    /* a new response forgets the previous one */
    feed(&m, "HTTP/2 206\r\n");
    feed(&m, "content-range: bytes 2000000-6256447/6256448\r\n");
    feed(&m, "content-length: 4256448\r\n");
    assert_int_equal(m.status, 206);
    assert_string_equal(m.commit, "");
    assert_true(m.has_range);
    assert_int_equal(m.range_start, 2000000);
    assert_true(dc_hub_meta_size(&m, &size));
    assert_int_equal(size, 4256448);
    /* a small file: ETag is the git blob id; errors carry codes */
    feed(&m, "HTTP/1.1 404 Not Found\r\n");
    feed(&m, "X-Error-Code: EntryNotFound\r\n");
    feed(&m, "X-Error-Message: Entry not found\r\n");
    feed(&m, "Content-Length: 12x\r\n"); /* not a number: ignored */
    assert_string_equal(m.error_code, "EntryNotFound");
    assert_string_equal(m.error_message, "Entry not found");
    assert_false(dc_hub_meta_size(&m, &size));
    feed(&m, "no colon here");
    feed(&m, "X-Linked-Size: 99999999999999999999999\r\n"); /* overflow: ignored */
    assert_false(m.has_linked_size);
}

static void test_link_target(void **state) {
    (void)state;
    char t[256];
    assert_ok(dc_hub_link_target("config.json", "abc", t, sizeof t));
    assert_string_equal(t, "../../blobs/abc");
    assert_ok(dc_hub_link_target("1_Pooling/config.json", "abc", t, sizeof t));
    assert_string_equal(t, "../../../blobs/abc");
    assert_ok(dc_hub_link_target("a/b/c", "e", t, sizeof t));
    assert_string_equal(t, "../../../../blobs/e");
}

static void test_default_cache(void **state) {
    (void)state;
    char out[512];
    char *saved[4];
    const char *names[4] = {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"};
    for (int i = 0; i < 4; i++) {
        const char *v = getenv(names[i]);
        saved[i] = v ? strdup(v) : NULL;
        unsetenv(names[i]);
    }
    setenv("HOME", getenv("HOME") ? getenv("HOME") : "/root", 1);
    char expect[512];
    snprintf(expect, sizeof expect, "%s/.cache/huggingface/hub", getenv("HOME"));
    assert_ok(dc_hub_default_cache(out, sizeof out));
    assert_string_equal(out, expect);
    setenv("XDG_CACHE_HOME", "/x", 1);
    assert_ok(dc_hub_default_cache(out, sizeof out));
    assert_string_equal(out, "/x/huggingface/hub");
    setenv("HF_HOME", "/h", 1);
    assert_ok(dc_hub_default_cache(out, sizeof out));
    assert_string_equal(out, "/h/hub");
    setenv("HF_HUB_CACHE", "/c", 1);
    assert_ok(dc_hub_default_cache(out, sizeof out));
    assert_string_equal(out, "/c");
    setenv("HF_HUB_OFFLINE", "True", 1);
    assert_true(dc_hub_env_offline());
    setenv("HF_HUB_OFFLINE", "0", 1);
    assert_false(dc_hub_env_offline());
    unsetenv("HF_HUB_OFFLINE");
    for (int i = 0; i < 4; i++) {
        if (saved[i]) setenv(names[i], saved[i], 1);
        else unsetenv(names[i]);
        free(saved[i]);
    }
}

/* ---- the layout on disk ---- */

static char tmpdir[256];

static void rm_rf(const char *p) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
    if (system(cmd) != 0) print_error("could not remove %s\n", p);
}

static int setup_dir(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dc_test_hub_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state) {
    (void)state;
    rm_rf(tmpdir);
    return 0;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

#define COMMIT "d46f7701826b96cba8ae31f4b54fd066f8059af4"
#define CFG_TEXT "{\"model_type\": \"bert\"}\n"

static void stage(const char *name, const char *text, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s", tmpdir, name);
    write_file(out, text);
}

static void test_store_lookup_verify(void **state) {
    (void)state;
    const char *repo = "sentence-transformers/all-MiniLM-L6-v2";
    char cache[512], src[512];
    snprintf(cache, sizeof cache, "%s/hub", tmpdir);
    /* a 64-hex etag is a sha256: sha256("hello\n") */
    const char *sha = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
    stage("w.part", "hello\n", src, sizeof src);
    assert_ok(dc_hub_store(cache, repo, "main", COMMIT, "model.safetensors", sha, src, false));
    stage("p.part", "pool\n", src, sizeof src);
    assert_ok(dc_hub_store(cache, repo, "main", COMMIT, "1_Pooling/config.json", "etag-not-hex",
                           src, false));

    char p[1024], t[1024];
    snprintf(p, sizeof p, "%s/models--sentence-transformers--all-MiniLM-L6-v2/refs/main", cache);
    size_t len = 0;
    char *ref = dc_test_read_file(p, &len);
    assert_non_null(ref);
    assert_string_equal(ref, COMMIT); /* no newline, as huggingface_hub writes it */
    free(ref);
    snprintf(p, sizeof p,
             "%s/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/" COMMIT
             "/1_Pooling/config.json",
             cache);
    ssize_t n = readlink(p, t, sizeof t - 1);
    assert_true(n > 0);
    t[n] = 0;
    assert_string_equal(t, "../../../blobs/etag-not-hex");

    dc_hub_local loc;
    assert_ok(dc_hub_lookup(cache, repo, "main", "model.safetensors", true, 6, &loc));
    assert_int_equal(loc.state, DC_HUB_READY);
    assert_string_equal(loc.commit, COMMIT);
    assert_int_equal(loc.size, 6);
    /* by commit, without refs */
    assert_ok(dc_hub_lookup(cache, repo, COMMIT, "model.safetensors", false, 0, &loc));
    assert_int_equal(loc.state, DC_HUB_READY);
    /* wrong size from the manifest, unknown revision, missing file */
    assert_ok(dc_hub_lookup(cache, repo, "main", "model.safetensors", true, 7, &loc));
    assert_int_equal(loc.state, DC_HUB_CORRUPT);
    assert_non_null(strstr(loc.why, "size 6, expected 7"));
    assert_ok(dc_hub_lookup(cache, repo, "v2", "model.safetensors", false, 0, &loc));
    assert_int_equal(loc.state, DC_HUB_MISSING);
    /* an abbreviated commit with no ref of its own finds the snapshot it names */
    assert_ok(dc_hub_lookup(cache, repo, "d46f770", "model.safetensors", false, 0, &loc));
    assert_int_equal(loc.state, DC_HUB_READY);
    assert_string_equal(loc.commit, COMMIT);
    assert_ok(dc_hub_lookup(cache, repo, "d46f771", "model.safetensors", false, 0, &loc));
    assert_int_equal(loc.state, DC_HUB_MISSING);
    assert_ok(dc_hub_lookup(cache, repo, "main", "vocab.txt", false, 0, &loc));
    assert_int_equal(loc.state, DC_HUB_MISSING);
    assert_ok(dc_hub_mark_absent(cache, repo, "main", COMMIT, "vocab.txt"));
    assert_ok(dc_hub_lookup(cache, repo, "main", "vocab.txt", false, 0, &loc));
    assert_int_equal(loc.state, DC_HUB_ABSENT);

    /* a flipped byte in the blob is found by the sha256 the blob is named after */
    snprintf(p, sizeof p, "%s/models--sentence-transformers--all-MiniLM-L6-v2/blobs/%s", cache, sha);
    write_file(p, "hellO\n");
    assert_ok(dc_hub_lookup(cache, repo, "main", "model.safetensors", true, 0, &loc));
    assert_int_equal(loc.state, DC_HUB_CORRUPT);
    assert_non_null(strstr(loc.why, "sha256"));
    assert_status(dc_hub_verify_blob(p, sha, 0), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains(sha);

    /* refusals: names that would leave the cache */
    assert_status(dc_hub_store(cache, repo, "main", COMMIT, "../evil", "e", src, false),
                  DC_ERR_INVALID_ARGUMENT);
    assert_status(dc_hub_store(cache, repo, "main", COMMIT, "x", "../e", src, false),
                  DC_ERR_INVALID_ARGUMENT);
    assert_status(dc_hub_link(cache, repo, "main", "../../x", "x", "e", false),
                  DC_ERR_INVALID_ARGUMENT);
    assert_status(dc_hub_lookup(cache, repo, "../main", "x", false, 0, &loc),
                  DC_ERR_INVALID_ARGUMENT);
}

static void test_git_blob_sha1(void **state) {
    (void)state;
    char p[512];
    stage("cfg.json", CFG_TEXT, p, sizeof p);
    /* git hash-object of the same bytes */
    char cmd[700], want[64] = "";
    snprintf(cmd, sizeof cmd, "git hash-object '%s' 2>/dev/null", p);
    FILE *g = popen(cmd, "r");
    if (g) {
        if (!fgets(want, sizeof want, g)) want[0] = 0;
        pclose(g);
        want[strcspn(want, "\n")] = 0;
    }
    if (!dc_hub_is_commit(want)) skip(); /* no git here */
    assert_ok(dc_hub_verify_blob(p, want, 0));
    want[0] = want[0] == '0' ? '1' : '0';
    assert_status(dc_hub_verify_blob(p, want, 0), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("git blob sha1");
    /* an etag that is no hash: size only */
    assert_ok(dc_hub_verify_blob(p, "opaque", strlen(CFG_TEXT)));
    assert_status(dc_hub_verify_blob(p, "opaque", 3), DC_ERR_CHECKPOINT_CORRUPTED);
}

/* After a pull, the pipeline's discovery finds the snapshot under models.models_dir. */
static void test_discovery_finds_the_cache(void **state) {
    (void)state;
    char home[300], cache[320], src[512];
    snprintf(home, sizeof home, "%s/hf_home", tmpdir);
    snprintf(cache, sizeof cache, "%s/hub", home); /* HF_HOME/hub */
    const char *repo = dc_model_info_get(DC_MODEL_ENTITY)->repo;
    stage("c.part", CFG_TEXT, src, sizeof src);
    assert_ok(dc_hub_store(cache, repo, "main", COMMIT, "config.json", "cfgetag", src, false));
    char dir[4096];
    /* models_dir = the hub cache, or HF_HOME (the folder holding hub/) */
    assert_ok(dc_model_folder_find(DC_MODEL_ENTITY, NULL, cache, dir, sizeof dir));
    assert_non_null(strstr(dir, "models--sentence-transformers--all-MiniLM-L6-v2"));
    assert_ok(dc_model_folder_find(DC_MODEL_ENTITY, NULL, home, dir, sizeof dir));
    assert_non_null(strstr(dir, "/hub/models--sentence-transformers--all-MiniLM-L6-v2"));
    assert_status(dc_model_folder_find(DC_MODEL_GRAPH, NULL, cache, dir, sizeof dir),
                  DC_ERR_MODEL_NOT_FOUND);
}

/* A whole model: ready when every required file and one weights file is in the cache. */
static void test_check_model(void **state) {
    (void)state;
    char cache[320], src[512];
    snprintf(cache, sizeof cache, "%s/hub", tmpdir);
    const dc_model_manifest *mf = dc_manifest_get(DC_MODEL_ENTITY);
    dc_hub_model_report r;
    assert_ok(dc_hub_check_model(cache, DC_MODEL_ENTITY, NULL, true, &r));
    assert_false(r.ready);
    assert_string_equal(r.revision, mf->revision);
    assert_non_null(strstr(r.missing, "config.json"));
    char etag[32];
    for (size_t k = 0; k < mf->nfiles; k++) {
        if (mf->files[k].need != DC_MANIFEST_REQUIRED) continue;
        stage("f.part", mf->files[k].name, src, sizeof src);
        snprintf(etag, sizeof etag, "e%zu", k);
        assert_ok(dc_hub_store(cache, mf->repo, "main", COMMIT, mf->files[k].name, etag, src, false));
    }
    assert_ok(dc_hub_check_model(cache, DC_MODEL_ENTITY, "main", true, &r));
    assert_false(r.ready);
    assert_string_equal(r.missing, "weights");
    stage("w.part", "weights", src, sizeof src);
    assert_ok(dc_hub_store(cache, mf->repo, "main", COMMIT, "pytorch_model.bin", "w", src, false));
    assert_ok(dc_hub_check_model(cache, DC_MODEL_ENTITY, "main", true, &r));
    assert_true(r.ready);
    assert_string_equal(r.commit, COMMIT);
    assert_non_null(strstr(r.dir, "/snapshots/" COMMIT));
    /* offline pull answers from the cache */
    dc_hub_options o;
    dc_hub_options_init(&o);
    o.offline = true;
    snprintf(o.cache_dir, sizeof o.cache_dir, "%s", cache);
    assert_ok(dc_hub_pull_model(&o, DC_MODEL_ENTITY, "main", &r));
    assert_true(r.ready);
    assert_status(dc_hub_pull_model(&o, DC_MODEL_GRAPH, NULL, &r), DC_ERR_MODEL_NOT_FOUND);
    assert_detail_contains("offline");
    assert_status(dc_hub_check_model(cache, DC_MODEL_HDC, NULL, false, &r), DC_ERR_INVALID_ARGUMENT);
    assert_detail_contains("computed");
}

/* ---- the manifest ---- */

static void test_manifest(void **state) {
    (void)state;
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        const dc_model_info *info = dc_model_info_get((dc_model_id)i);
        const dc_model_manifest *mf = dc_manifest_get((dc_model_id)i);
        if (info->kind == DC_MODEL_KIND_CUSTOM) {
            assert_null(mf);
            continue;
        }
        assert_non_null(mf);
        assert_int_equal(mf->id, i);
        assert_string_equal(mf->repo, info->repo);
        char folder[256];
        assert_ok(dc_hub_repo_folder(mf->repo, folder, sizeof folder));
        /* a branch or an (abbreviated) commit */
        size_t rl = strlen(mf->revision);
        assert_true(!strcmp(mf->revision, "main") ||
                    (rl >= 7 && rl <= 40 && dc_hub_is_hex(mf->revision, rl)));
        assert_non_null(mf->revision_note);
        assert_non_null(mf->license);
        assert_true(mf->approx_bytes > 0);
        bool config = false, weights = false;
        for (size_t k = 0; k < mf->nfiles; k++) {
            const dc_manifest_file *f = &mf->files[k];
            assert_true(dc_hub_file_name_ok(f->name));
            for (size_t j = 0; j < k; j++) assert_string_not_equal(f->name, mf->files[j].name);
            config |= !strcmp(f->name, "config.json") && f->need == DC_MANIFEST_REQUIRED;
            weights |= f->need == DC_MANIFEST_WEIGHTS;
        }
        assert_true(config);
        assert_true(weights);
    }
    /* the facts models.md records */
    assert_null(dc_manifest_get((dc_model_id)DC_NUM_MODELS));
    const dc_model_id bin_only[] = {DC_MODEL_CAUSAL, DC_MODEL_SPARSE, DC_MODEL_CODE};
    for (size_t i = 0; i < 3; i++) {
        const dc_model_manifest *mf = dc_manifest_get(bin_only[i]);
        for (size_t k = 0; k < mf->nfiles; k++)
            if (mf->files[k].need == DC_MANIFEST_WEIGHTS)
                assert_string_equal(mf->files[k].name, "pytorch_model.bin");
    }
    const dc_model_id st[] = {DC_MODEL_GRAPH, DC_MODEL_ENTITY};
    for (size_t i = 0; i < 2; i++) {
        const dc_model_manifest *mf = dc_manifest_get(st[i]);
        int found = 0;
        for (size_t k = 0; k < mf->nfiles; k++)
            found += (!strcmp(mf->files[k].name, "modules.json") ||
                      !strcmp(mf->files[k].name, "1_Pooling/config.json")) &&
                     mf->files[k].need == DC_MANIFEST_REQUIRED;
        assert_int_equal(found, 2);
    }
    assert_string_equal(dc_manifest_get(DC_MODEL_CODE)->revision,
                        "3b0952feddeffad0063f274080e3c23d75e7eb39");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repo_folder),
        cmocka_unit_test(test_file_names),
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_etag),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_link_target),
        cmocka_unit_test(test_default_cache),
        cmocka_unit_test_setup_teardown(test_store_lookup_verify, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_git_blob_sha1, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_discovery_finds_the_cache, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_check_model, setup_dir, teardown_dir),
        cmocka_unit_test(test_manifest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

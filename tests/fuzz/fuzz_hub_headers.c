/* libFuzzer target: the hub client's handling of what a server (or a hostile mirror) sends:
 * response header lines, etags, and names that end up as cache paths. Whatever the bytes: no
 * crash, every field NUL-terminated inside its buffer, and a name accepted as a file name or
 * repo id never climbs out of the cache folder. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/hub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_terminated(const char *s, size_t cap) {
    if (!memchr(s, 0, cap)) abort();
}

static void check_name(const char *name) {
    if (!dc_hub_file_name_ok(name)) return;
    /* accepted: relative, no "." or ".." component, no empty component */
    if (name[0] == '/' || strstr(name, "//") || strstr(name, "\\")) abort();
    const char *seg = name;
    for (;;) {
        const char *end = strchr(seg, '/');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);
        if (len == 0 || (len == 1 && seg[0] == '.') || (len == 2 && !strncmp(seg, "..", 2))) abort();
        if (!end) break;
        seg = end + 1;
    }
    char url[DC_HUB_URL_MAX], target[DC_HUB_PATH_MAX];
    if (dc_hub_url("http://h", "org/m", name, name, url, sizeof url) == DC_OK) {
        /* the revision is one encoded path segment: no '/', '?', '#', space or control left */
        const char *rev = url + strlen("http://h/org/m/resolve/");
        const char *slash = strchr(rev, '/');
        if (!slash) abort();
        for (const char *p = rev; p < slash; p++)
            if (*p == '?' || *p == '#' || *p == ' ' || (unsigned char)*p < 0x20) abort();
        for (const char *p = url; *p; p++)
            if (*p == ' ' || *p == '?' || *p == '#' || (unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) abort();
    }
    if (dc_hub_link_target(name, "etag", target, sizeof target) == DC_OK &&
        strncmp(target, "../../", 6) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;

    dc_hub_meta m;
    dc_hub_meta_reset(&m);
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i == size || text[i] == '\n') {
            dc_hub_meta_header(&m, text + start, i - start);
            start = i + 1;
        }
    }
    check_terminated(m.commit, sizeof m.commit);
    check_terminated(m.etag, sizeof m.etag);
    check_terminated(m.linked_etag, sizeof m.linked_etag);
    check_terminated(m.location, sizeof m.location);
    check_terminated(m.error_code, sizeof m.error_code);
    check_terminated(m.error_message, sizeof m.error_message);
    uint64_t sz = 0;
    (void)dc_hub_meta_size(&m, &sz);
    const char *etag = dc_hub_meta_blob_etag(&m);
    check_terminated(etag, DC_HUB_ETAG_MAX);

    char e[64];
    dc_hub_etag_normalize(text, size, e, sizeof e);
    check_terminated(e, sizeof e);

    /* the first line as a file name and as a repo id */
    char *nl = strchr(text, '\n');
    if (nl) *nl = 0;
    check_name(text);
    char folder[512];
    if (dc_hub_repo_folder(text, folder, sizeof folder) == DC_OK) {
        if (strncmp(folder, "models--", 8) != 0 || strchr(folder, '/') || strstr(folder, ".."))
            abort();
    }
    free(text);
    return 0;
}

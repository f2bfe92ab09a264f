/* The pure parts of the hub protocol: repo folders, URLs, etags, response headers. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "io/hub.h"

static bool repo_char_ok(char c) {
    return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-' || c == '/';
}

dc_status dc_hub_repo_folder(const char *repo, char *out, size_t cap) {
    if (!repo || !repo[0]) return dc_fail(DC_ERR_INVALID_ARGUMENT, "empty repo id");
    size_t n = strlen(repo), slashes = 0;
    if (repo[0] == '/' || repo[n - 1] == '/' || strstr(repo, "..") || strstr(repo, "//"))
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "repo id \"%s\" is not org/name", repo);
    for (size_t i = 0; i < n; i++) {
        if (!repo_char_ok(repo[i]))
            return dc_fail(DC_ERR_INVALID_ARGUMENT, "repo id \"%s\": character %zu is not allowed",
                           repo, i);
        slashes += repo[i] == '/';
    }
    if (slashes > 1) return dc_fail(DC_ERR_INVALID_ARGUMENT, "repo id \"%s\" is not org/name", repo);
    size_t o = 0;
    const char prefix[] = "models--";
    if (cap < sizeof prefix + n + 1) return dc_fail(DC_ERR_INVALID_ARGUMENT, "repo id too long");
    memcpy(out, prefix, sizeof prefix - 1);
    o = sizeof prefix - 1;
    for (size_t i = 0; i < n; i++) {
        if (repo[i] == '/') {
            out[o++] = '-';
            out[o++] = '-';
        } else {
            out[o++] = repo[i];
        }
    }
    out[o] = 0;
    return DC_OK;
}

bool dc_hub_file_name_ok(const char *file) {
    if (!file || !file[0] || file[0] == '/') return false;
    const char *seg = file;
    for (const char *p = file;; p++) {
        if (*p == '/' || *p == 0) {
            size_t len = (size_t)(p - seg);
            if (len == 0) return false;
            if (len == 1 && seg[0] == '.') return false;
            if (len == 2 && seg[0] == '.' && seg[1] == '.') return false;
            if (*p == 0) return true;
            seg = p + 1;
        } else if (*p == '\\' || (unsigned char)*p < 0x20 || *p == 0x7f) {
            return false;
        }
    }
}

bool dc_hub_is_hex(const char *s, size_t n) {
    if (!s || strlen(s) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i])) return false;
    return true;
}

bool dc_hub_is_commit(const char *rev) { return dc_hub_is_hex(rev, 40); }

/* Appends s percent-encoded; '/' stays when keep_slash. Unreserved characters per RFC 3986. */
static bool put_encoded(char *out, size_t cap, size_t *o, const char *s, bool keep_slash) {
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool plain = isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
                     (keep_slash && c == '/');
        size_t need = plain ? 1 : 3;
        if (*o + need >= cap) return false;
        if (plain) {
            out[(*o)++] = (char)c;
        } else {
            out[(*o)++] = '%';
            out[(*o)++] = hex[c >> 4];
            out[(*o)++] = hex[c & 15];
        }
    }
    out[*o] = 0;
    return true;
}

static bool put_raw(char *out, size_t cap, size_t *o, const char *s, size_t n) {
    if (*o + n >= cap) return false;
    memcpy(out + *o, s, n);
    *o += n;
    out[*o] = 0;
    return true;
}

dc_status dc_hub_url(const char *endpoint, const char *repo, const char *revision,
                     const char *file, char *out, size_t cap) {
    if (!endpoint || !endpoint[0]) endpoint = DC_HUB_DEFAULT_ENDPOINT;
    char folder[512];
    dc_status st = dc_hub_repo_folder(repo, folder, sizeof folder);
    if (st) return st;
    if (!revision || !revision[0]) revision = "main";
    if (!dc_hub_file_name_ok(file))
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "file name \"%s\" is not a path inside a repo",
                       file ? file : "");
    size_t elen = strlen(endpoint);
    while (elen > 0 && endpoint[elen - 1] == '/') elen--;
    size_t o = 0;
    out[0] = 0;
    bool ok = put_raw(out, cap, &o, endpoint, elen) && put_raw(out, cap, &o, "/", 1) &&
              put_encoded(out, cap, &o, repo, true) &&
              put_raw(out, cap, &o, "/resolve/", 9) &&
              put_encoded(out, cap, &o, revision, false) && put_raw(out, cap, &o, "/", 1) &&
              put_encoded(out, cap, &o, file, true);
    if (!ok) return dc_fail(DC_ERR_INVALID_ARGUMENT, "URL for %s/%s is too long", repo, file);
    return DC_OK;
}

void dc_hub_etag_normalize(const char *raw, size_t len, char *out, size_t cap) {
    while (len > 0 && (raw[0] == ' ' || raw[0] == '\t')) raw++, len--;
    while (len > 0 && (raw[len - 1] == ' ' || raw[len - 1] == '\t' || raw[len - 1] == '\r' ||
                       raw[len - 1] == '\n'))
        len--;
    if (len >= 2 && raw[0] == 'W' && raw[1] == '/') raw += 2, len -= 2;
    if (len > 0 && raw[0] == '"') raw++, len--;
    if (len > 0 && raw[len - 1] == '"') len--;
    if (cap == 0) return;
    if (len >= cap) len = cap - 1;
    memcpy(out, raw, len);
    out[len] = 0;
}

void dc_hub_meta_reset(dc_hub_meta *m) { memset(m, 0, sizeof *m); }

static void copy_value(char *dst, size_t cap, const char *v, size_t n) {
    if (n >= cap) n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = 0;
}

static bool parse_u64(const char *v, size_t n, uint64_t *out) {
    uint64_t x = 0;
    size_t i = 0;
    if (n == 0) return false;
    for (; i < n && v[i] >= '0' && v[i] <= '9'; i++) {
        if (x > (UINT64_MAX - 9) / 10) return false;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    if (i == 0 || i != n) return false;
    *out = x;
    return true;
}

void dc_hub_meta_header(dc_hub_meta *m, const char *line, size_t len) {
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n')) len--;
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* a new response: keep nothing from the previous one but remember its status */
        const char *sp = memchr(line, ' ', len);
        dc_hub_meta_reset(m);
        if (sp) m->status = strtol(sp + 1, NULL, 10);
        return;
    }
    const char *colon = memchr(line, ':', len);
    if (!colon) return;
    size_t nlen = (size_t)(colon - line);
    const char *v = colon + 1;
    size_t vlen = len - nlen - 1;
    while (vlen > 0 && (*v == ' ' || *v == '\t')) v++, vlen--;
    while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t')) vlen--;
#define IS(name) (nlen == sizeof(name) - 1 && strncasecmp(line, name, nlen) == 0)
    if (IS("X-Repo-Commit")) {
        copy_value(m->commit, sizeof m->commit, v, vlen);
    } else if (IS("X-Linked-Etag")) {
        dc_hub_etag_normalize(v, vlen, m->linked_etag, sizeof m->linked_etag);
    } else if (IS("ETag")) {
        dc_hub_etag_normalize(v, vlen, m->etag, sizeof m->etag);
    } else if (IS("X-Linked-Size")) {
        m->has_linked_size = parse_u64(v, vlen, &m->linked_size);
    } else if (IS("Content-Length")) {
        m->has_content_length = parse_u64(v, vlen, &m->content_length);
    } else if (IS("Location")) {
        copy_value(m->location, sizeof m->location, v, vlen);
    } else if (IS("X-Error-Code")) {
        copy_value(m->error_code, sizeof m->error_code, v, vlen);
    } else if (IS("X-Error-Message")) {
        copy_value(m->error_message, sizeof m->error_message, v, vlen);
    } else if (IS("Content-Range")) {
        /* "bytes 100-199/200" */
        if (vlen > 6 && strncasecmp(v, "bytes ", 6) == 0) {
            const char *d = memchr(v + 6, '-', vlen - 6);
            if (d) m->has_range = parse_u64(v + 6, (size_t)(d - (v + 6)), &m->range_start);
        }
    }
#undef IS
}

const char *dc_hub_meta_blob_etag(const dc_hub_meta *m) {
    return m->linked_etag[0] ? m->linked_etag : m->etag;
}

bool dc_hub_meta_size(const dc_hub_meta *m, uint64_t *size) {
    if (m->has_linked_size) {
        *size = m->linked_size;
        return true;
    }
    if (m->has_content_length) {
        *size = m->content_length;
        return true;
    }
    return false;
}

dc_status dc_hub_link_target(const char *file, const char *etag, char *out, size_t cap) {
    if (!dc_hub_file_name_ok(file)) return dc_fail(DC_ERR_INVALID_ARGUMENT, "bad file name");
    size_t o = 0;
    out[0] = 0;
    bool ok = put_raw(out, cap, &o, "../../", 6);
    for (const char *p = file; *p && ok; p++)
        if (*p == '/') ok = put_raw(out, cap, &o, "../", 3);
    ok = ok && put_raw(out, cap, &o, "blobs/", 6) && put_raw(out, cap, &o, etag, strlen(etag));
    if (!ok) return dc_fail(DC_ERR_INVALID_ARGUMENT, "link target for %s is too long", file);
    return DC_OK;
}

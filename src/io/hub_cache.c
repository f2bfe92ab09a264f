/* The huggingface_hub cache layout: where things are, looking them up, checking and storing. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/error.h"
#include "io/hub.h"

const char *dc_hub_state_name(dc_hub_state s) {
    switch (s) {
    case DC_HUB_READY: return "ready";
    case DC_HUB_MISSING: return "missing";
    case DC_HUB_ABSENT: return "absent upstream";
    case DC_HUB_CORRUPT: return "corrupt";
    }
    return "unknown";
}

/* snprintf for messages that may be cut short (the -Wformat-truncation checks do not apply). */
static void msg(char *out, size_t cap, const char *fmt, ...) DC_PRINTF(3, 4);
static void msg(char *out, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, cap, fmt, ap);
    va_end(ap);
}

static const char *env_nonempty(const char *name) {
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

dc_status dc_hub_default_cache(char *out, size_t cap) {
    const char *v;
    int n;
    if ((v = env_nonempty("HF_HUB_CACHE")) || (v = env_nonempty("HUGGINGFACE_HUB_CACHE")))
        n = snprintf(out, cap, "%s", v);
    else if ((v = env_nonempty("HF_HOME")))
        n = snprintf(out, cap, "%s/hub", v);
    else if ((v = env_nonempty("XDG_CACHE_HOME")))
        n = snprintf(out, cap, "%s/huggingface/hub", v);
    else if ((v = env_nonempty("HOME")))
        n = snprintf(out, cap, "%s/.cache/huggingface/hub", v);
    else
        return dc_fail(DC_ERR_CONFIG, "no cache folder: set HF_HUB_CACHE, HF_HOME or HOME");
    if (n < 0 || (size_t)n >= cap) return dc_fail(DC_ERR_CONFIG, "cache folder path too long");
    return DC_OK;
}

static bool truthy(const char *v) {
    return v && (!strcasecmp(v, "1") || !strcasecmp(v, "on") || !strcasecmp(v, "yes") ||
                 !strcasecmp(v, "true"));
}

bool dc_hub_env_offline(void) {
    return truthy(getenv("HF_HUB_OFFLINE")) || truthy(getenv("TRANSFORMERS_OFFLINE"));
}

/* A blob name we are willing to use as a file name. */
static bool etag_ok(const char *etag) {
    if (!etag || !etag[0] || etag[0] == '.') return false;
    for (const char *p = etag; *p; p++)
        if (!(*p >= '0' && *p <= '9') && !(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
            *p != '-' && *p != '_' && *p != '.')
            return false;
    return true;
}

/* Revisions name files under refs/: branch or tag names, possibly with '/' (refs/pr/7). */
static bool revision_ok(const char *rev) { return dc_hub_file_name_ok(rev); }

static dc_status path_join(char *out, size_t cap, const char *a, const char *b, const char *c,
                           const char *d) {
    int n = snprintf(out, cap, "%s%s%s%s%s%s%s", a, b ? "/" : "", b ? b : "", c ? "/" : "",
                     c ? c : "", d ? "/" : "", d ? d : "");
    if (n < 0 || (size_t)n >= cap) return dc_fail(DC_ERR_INVALID_ARGUMENT, "path too long: %s/%s", a, b ? b : "");
    return DC_OK;
}

/* mkdir -p of the folder that will hold path. */
static dc_status mkdirs_for(const char *path) {
    char buf[DC_HUB_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    char *slash = strrchr(buf, '/');
    if (!slash) return DC_OK;
    *slash = 0;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return dc_fail(DC_ERR_IO, "mkdir %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return dc_fail(DC_ERR_IO, "mkdir %s: %s", buf, strerror(errno));
    return DC_OK;
}

/* Reads refs/<revision>; "" when absent. */
static dc_status read_ref(const char *repo_dir, const char *revision, char *commit, size_t cap) {
    char p[DC_HUB_PATH_MAX];
    commit[0] = 0;
    dc_status st = path_join(p, sizeof p, repo_dir, "refs", revision, NULL);
    if (st) return st;
    FILE *f = fopen(p, "r");
    if (!f) return errno == ENOENT || errno == ENOTDIR ? DC_OK : dc_fail(DC_ERR_IO, "open %s: %s", p, strerror(errno));
    char buf[DC_HUB_COMMIT_MAX] = "";
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    buf[strcspn(buf, " \t\r\n")] = 0;
    if (!dc_hub_is_commit(buf)) return dc_fail(DC_ERR_SERIALIZATION, "%s does not hold a commit id", p);
    snprintf(commit, cap, "%s", buf);
    return DC_OK;
}

/* An abbreviated commit without a ref (a cache another tool filled from a branch): the one
 * snapshot whose commit starts with it. Two matches are ambiguous and count as none. */
static void snapshot_by_prefix(const char *repo_dir, const char *prefix, char *commit, size_t cap) {
    char snaps[DC_HUB_PATH_MAX];
    commit[0] = 0;
    if (path_join(snaps, sizeof snaps, repo_dir, "snapshots", NULL, NULL) != DC_OK) return;
    DIR *d = opendir(snaps);
    if (!d) return;
    struct dirent *e;
    int found = 0;
    size_t n = strlen(prefix);
    while ((e = readdir(d)))
        if (dc_hub_is_commit(e->d_name) && strncasecmp(e->d_name, prefix, n) == 0 &&
            found++ == 0 && cap > 40)
            memcpy(commit, e->d_name, 41); /* 40 hex digits and the NUL */
    closedir(d);
    if (found != 1) commit[0] = 0;
}

/* ---- hashing ---- */

static dc_status hash_file(const char *path, const EVP_MD *md, const char *git_prefix,
                           size_t prefix_len, char *hex, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return dc_fail(DC_ERR_IO, "open %s: %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *buf = malloc(1 << 20);
    dc_status st = DC_OK;
    if (!ctx || !buf || !EVP_DigestInit_ex(ctx, md, NULL)) {
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "hashing %s", path);
        goto out;
    }
    if (git_prefix) EVP_DigestUpdate(ctx, git_prefix, prefix_len);
    size_t n;
    while ((n = fread(buf, 1, 1 << 20, f)) > 0) EVP_DigestUpdate(ctx, buf, n);
    if (ferror(f)) {
        st = dc_fail(DC_ERR_IO, "read %s: %s", path, strerror(errno));
        goto out;
    }
    unsigned char dig[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    EVP_DigestFinal_ex(ctx, dig, &dlen);
    if (cap < 2 * (size_t)dlen + 1) {
        st = dc_fail(DC_ERR_INTERNAL, "digest buffer");
        goto out;
    }
    for (unsigned i = 0; i < dlen; i++) snprintf(hex + 2 * i, 3, "%02x", dig[i]);
out:
    free(buf);
    EVP_MD_CTX_free(ctx);
    fclose(f);
    return st;
}

dc_status dc_hub_verify_blob(const char *path, const char *etag, uint64_t expect_size) {
    struct stat sb;
    if (stat(path, &sb) != 0) return dc_fail(DC_ERR_IO, "stat %s: %s", path, strerror(errno));
    uint64_t size = (uint64_t)sb.st_size;
    if (expect_size && size != expect_size)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: size %llu, expected %llu", path,
                       (unsigned long long)size, (unsigned long long)expect_size);
    char hex[2 * EVP_MAX_MD_SIZE + 1] = "";
    dc_status st;
    if (dc_hub_is_hex(etag, 64)) {
        if ((st = hash_file(path, EVP_sha256(), NULL, 0, hex, sizeof hex))) return st;
        if (strcasecmp(hex, etag) != 0)
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: sha256 %s, expected %s", path, hex,
                           etag);
    } else if (dc_hub_is_hex(etag, 40)) {
        /* small files: the etag is git's blob id, sha1("blob <size>\0" + content) */
        char pre[48];
        int n = snprintf(pre, sizeof pre, "blob %llu", (unsigned long long)size);
        if ((st = hash_file(path, EVP_sha1(), pre, (size_t)n + 1, hex, sizeof hex))) return st;
        if (strcasecmp(hex, etag) != 0)
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: git blob sha1 %s, expected %s", path,
                           hex, etag);
    }
    return DC_OK;
}

/* ---- lookup ---- */

dc_status dc_hub_lookup(const char *cache_dir, const char *repo, const char *revision,
                        const char *file, bool verify, uint64_t expect_size, dc_hub_local *out) {
    memset(out, 0, sizeof *out);
    out->state = DC_HUB_MISSING;
    char folder[512], repo_dir[DC_HUB_PATH_MAX];
    dc_status st = dc_hub_repo_folder(repo, folder, sizeof folder);
    if (st) return st;
    if (!revision || !revision[0]) revision = "main";
    if (!revision_ok(revision))
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "revision \"%s\" is not a ref name", revision);
    if (!dc_hub_file_name_ok(file))
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "file name \"%s\" is not a path inside a repo", file);
    if ((st = path_join(repo_dir, sizeof repo_dir, cache_dir, folder, NULL, NULL))) return st;
    if (dc_hub_is_commit(revision)) {
        snprintf(out->commit, sizeof out->commit, "%s", revision);
    } else {
        if ((st = read_ref(repo_dir, revision, out->commit, sizeof out->commit))) return st;
        if (!out->commit[0] && strlen(revision) >= 7 && dc_hub_is_hex(revision, strlen(revision)))
            snapshot_by_prefix(repo_dir, revision, out->commit, sizeof out->commit);
        if (!out->commit[0]) {
            msg(out->why, sizeof out->why, "no refs/%s in %s", revision, repo_dir);
            return DC_OK;
        }
    }
    if ((st = path_join(out->path, sizeof out->path, repo_dir, "snapshots", out->commit, file)))
        return st;
    struct stat sb;
    if (stat(out->path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        char marker[DC_HUB_PATH_MAX];
        if (path_join(marker, sizeof marker, repo_dir, ".no_exist", out->commit, file) == DC_OK &&
            access(marker, F_OK) == 0) {
            out->state = DC_HUB_ABSENT;
            msg(out->why, sizeof out->why, "marked absent at %.12s", out->commit);
        } else {
            msg(out->why, sizeof out->why, "%s not in snapshot %.12s", file, out->commit);
        }
        out->path[0] = 0;
        return DC_OK;
    }
    out->size = (uint64_t)sb.st_size;
    char target[DC_HUB_PATH_MAX];
    ssize_t tl = readlink(out->path, target, sizeof target - 1);
    const char *etag = "";
    if (tl > 0) {
        target[tl] = 0;
        const char *base = strrchr(target, '/');
        etag = base ? base + 1 : target;
        path_join(out->blob, sizeof out->blob, repo_dir, "blobs", etag, NULL);
    }
    out->state = DC_HUB_READY;
    if (verify) {
        dc_error_clear();
        if (dc_hub_verify_blob(out->path, etag, expect_size) != DC_OK) {
            out->state = DC_HUB_CORRUPT;
            msg(out->why, sizeof out->why, "%s", dc_error_detail());
            dc_error_clear();
        }
    }
    return DC_OK;
}

/* ---- storing ---- */

static dc_status write_ref(const char *repo_dir, const char *revision, const char *commit) {
    if (!revision || !revision[0] || strcmp(revision, commit) == 0) return DC_OK;
    char p[DC_HUB_PATH_MAX], tmp[DC_HUB_PATH_MAX + 32], cur[DC_HUB_COMMIT_MAX];
    dc_status st;
    if ((st = read_ref(repo_dir, revision, cur, sizeof cur)) == DC_OK && strcmp(cur, commit) == 0)
        return DC_OK;
    dc_error_clear();
    if ((st = path_join(p, sizeof p, repo_dir, "refs", revision, NULL))) return st;
    if ((st = mkdirs_for(p))) return st;
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return dc_fail(DC_ERR_IO, "create %s: %s", tmp, strerror(errno));
    bool ok = fputs(commit, f) >= 0; /* no newline, as huggingface_hub writes it */
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, p) != 0) {
        unlink(tmp);
        return dc_fail(DC_ERR_IO, "write %s: %s", p, strerror(errno));
    }
    return DC_OK;
}

static dc_status copy_file(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb");
    if (!in) return dc_fail(DC_ERR_IO, "open %s: %s", src, strerror(errno));
    FILE *out = fopen(dst, "wb");
    if (!out) {
        fclose(in);
        return dc_fail(DC_ERR_IO, "create %s: %s", dst, strerror(errno));
    }
    char *buf = malloc(1 << 20);
    bool ok = buf != NULL;
    size_t n;
    while (ok && (n = fread(buf, 1, 1 << 20, in)) > 0) ok = fwrite(buf, 1, n, out) == n;
    ok = ok && !ferror(in);
    free(buf);
    fclose(in);
    ok = (fclose(out) == 0) && ok;
    if (!ok) return dc_fail(DC_ERR_IO, "copy %s to %s: %s", src, dst, strerror(errno));
    return DC_OK;
}

/* Every name that becomes a path must stay inside the repo folder. */
static dc_status check_names(const char *repo, const char *revision, const char *commit,
                             const char *file, const char *etag) {
    if (strlen(commit) < 7 || !dc_hub_is_hex(commit, strlen(commit)) || !etag_ok(etag) ||
        !dc_hub_file_name_ok(file) || (revision && revision[0] && !revision_ok(revision)))
        return dc_fail(DC_ERR_INVALID_ARGUMENT,
                       "%s: refusing to store %s (revision \"%s\", commit \"%s\", etag \"%s\")",
                       repo, file, revision ? revision : "", commit, etag);
    return DC_OK;
}

dc_status dc_hub_link(const char *cache_dir, const char *repo, const char *revision,
                      const char *commit, const char *file, const char *etag, bool copy) {
    char folder[512], repo_dir[DC_HUB_PATH_MAX], snap[DC_HUB_PATH_MAX], blob[DC_HUB_PATH_MAX];
    char target[DC_HUB_PATH_MAX], tmp[DC_HUB_PATH_MAX + 32];
    dc_status st;
    if ((st = dc_hub_repo_folder(repo, folder, sizeof folder))) return st;
    if ((st = check_names(repo, revision, commit, file, etag))) return st;
    if ((st = path_join(repo_dir, sizeof repo_dir, cache_dir, folder, NULL, NULL)) ||
        (st = path_join(snap, sizeof snap, repo_dir, "snapshots", commit, file)) ||
        (st = path_join(blob, sizeof blob, repo_dir, "blobs", etag, NULL)) ||
        (st = dc_hub_link_target(file, etag, target, sizeof target)))
        return st;
    if ((st = mkdirs_for(snap))) return st;
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", snap, (long)getpid());
    unlink(tmp);
    bool linked = false;
    if (!copy) {
        if (symlink(target, tmp) == 0) linked = true;
        else if (errno != EPERM && errno != ENOTSUP && errno != EOPNOTSUPP)
            return dc_fail(DC_ERR_IO, "symlink %s: %s", tmp, strerror(errno));
    }
    if (!linked && (st = copy_file(blob, tmp))) return st;
    if (rename(tmp, snap) != 0) {
        unlink(tmp);
        return dc_fail(DC_ERR_IO, "rename %s: %s", snap, strerror(errno));
    }
    return write_ref(repo_dir, revision, commit);
}

dc_status dc_hub_store(const char *cache_dir, const char *repo, const char *revision,
                       const char *commit, const char *file, const char *etag, const char *src,
                       bool copy) {
    char folder[512], blob[DC_HUB_PATH_MAX];
    dc_status st;
    if ((st = dc_hub_repo_folder(repo, folder, sizeof folder))) return st;
    if ((st = check_names(repo, revision, commit, file, etag))) return st;
    if ((st = path_join(blob, sizeof blob, cache_dir, folder, "blobs", etag))) return st;
    if ((st = mkdirs_for(blob))) return st;
    if (rename(src, blob) != 0) return dc_fail(DC_ERR_IO, "rename %s to %s: %s", src, blob, strerror(errno));
    return dc_hub_link(cache_dir, repo, revision, commit, file, etag, copy);
}

dc_status dc_hub_mark_absent(const char *cache_dir, const char *repo, const char *revision,
                             const char *commit, const char *file) {
    char folder[512], repo_dir[DC_HUB_PATH_MAX], marker[DC_HUB_PATH_MAX];
    dc_status st;
    if ((st = dc_hub_repo_folder(repo, folder, sizeof folder))) return st;
    if (!dc_hub_is_hex(commit, strlen(commit)) || strlen(commit) < 7 || !dc_hub_file_name_ok(file))
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "%s: bad commit or file name", repo);
    if ((st = path_join(repo_dir, sizeof repo_dir, cache_dir, folder, NULL, NULL)) ||
        (st = path_join(marker, sizeof marker, repo_dir, ".no_exist", commit, file)) ||
        (st = mkdirs_for(marker)))
        return st;
    int fd = open(marker, O_WRONLY | O_CREAT, 0644);
    if (fd < 0) return dc_fail(DC_ERR_IO, "create %s: %s", marker, strerror(errno));
    close(fd);
    return write_ref(repo_dir, revision, commit);
}

/* Downloads from the hub with libcurl: metadata by HEAD, the body by GET with Range resume,
 * bounded exponential backoff on connection errors and 5xx, never on other 4xx. */
#define _DEFAULT_SOURCE /* flock(2), the lock huggingface_hub takes too */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "core/error.h"
#include "dodeca/dodeca.h"
#include "io/curl_global.h"
#include "io/hub.h"

#define MAX_RELATIVE_REDIRECTS 5
#define MAX_BACKOFF_MS 30000u


/* vsnprintf that reports a cut: paths and URLs must never be silently shortened. */
static bool fits(char *out, size_t cap, const char *fmt, ...) DC_PRINTF(3, 4);
static bool fits(char *out, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < cap;
}

static const char *env_nonempty(const char *name) {
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

void dc_hub_options_init(dc_hub_options *o) {
    memset(o, 0, sizeof *o);
    o->offline = dc_hub_env_offline();
    o->retries = 5;
    o->retry_delay_ms = 1000;
    o->connect_timeout_s = 30;
    o->stall_timeout_s = 60;
    const char *ds = getenv("HF_HUB_DISABLE_SYMLINKS");
    o->copy = ds && (!strcmp(ds, "1") || !strcasecmp(ds, "true") || !strcasecmp(ds, "yes") ||
                     !strcasecmp(ds, "on"));
}

/* The token file `hf auth login` (formerly huggingface-cli login) writes. */
static void read_token_file(char *out, size_t cap) {
    char p[DC_HUB_PATH_MAX];
    const char *v = env_nonempty("HF_TOKEN_PATH");
    if (v) snprintf(p, sizeof p, "%s", v);
    else if ((v = env_nonempty("HF_HOME"))) snprintf(p, sizeof p, "%s/token", v);
    else if ((v = env_nonempty("XDG_CACHE_HOME"))) snprintf(p, sizeof p, "%s/huggingface/token", v);
    else if ((v = env_nonempty("HOME"))) snprintf(p, sizeof p, "%s/.cache/huggingface/token", v);
    else return;
    FILE *f = fopen(p, "r");
    if (!f) return;
    if (!fgets(out, (int)cap, f)) out[0] = 0;
    fclose(f);
    out[strcspn(out, " \t\r\n")] = 0;
}

dc_status dc_hub_options_resolve(dc_hub_options *o) {
    const char *v;
    if (!o->endpoint[0])
        snprintf(o->endpoint, sizeof o->endpoint, "%s",
                 (v = env_nonempty("HF_ENDPOINT")) ? v : DC_HUB_DEFAULT_ENDPOINT);
    if (!o->token[0]) {
        if ((v = env_nonempty("HF_TOKEN")) || (v = env_nonempty("HUGGING_FACE_HUB_TOKEN")))
            snprintf(o->token, sizeof o->token, "%s", v);
        else
            read_token_file(o->token, sizeof o->token);
    }
    if (!o->cache_dir[0]) return dc_hub_default_cache(o->cache_dir, sizeof o->cache_dir);
    return DC_OK;
}

/* ---- one request ---- */

typedef struct xfer {
    dc_hub_meta meta;
    FILE *f;                /* body destination (NULL: discard) */
    uint64_t base;          /* bytes already in f when the request started */
    uint64_t got;           /* body bytes written by this request */
    uint64_t total;         /* expected file size (for progress) */
    bool started;           /* the first body byte decided how to write */
    bool refused;           /* the response could not be used (wrong range) */
    const dc_hub_options *o;
    const char *repo, *file;
} xfer;

static size_t on_header(char *data, size_t size, size_t n, void *user) {
    xfer *x = user;
    dc_hub_meta_header(&x->meta, data, size * n);
    return size * n;
}

static size_t on_body(char *data, size_t size, size_t n, void *user) {
    xfer *x = user;
    size_t len = size * n;
    if (!x->f || (x->meta.status != 200 && x->meta.status != 206)) return len; /* error page */
    if (!x->started) {
        x->started = true;
        if (x->meta.status == 206) {
            if (!x->meta.has_range || x->meta.range_start != x->base) {
                x->refused = true;
                return 0;
            }
        } else if (x->base > 0) {
            /* the server ignored Range: start over */
            if (fflush(x->f) != 0 || ftruncate(fileno(x->f), 0) != 0) return 0;
            rewind(x->f);
            x->base = 0;
        }
    }
    if (fwrite(data, 1, len, x->f) != len) return 0;
    x->got += len;
    return len;
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    (void)dltotal, (void)ultotal, (void)ulnow;
    xfer *x = user;
    if (x->o->progress && x->f)
        x->o->progress(x->o->progress_user, x->repo, x->file, x->base + (uint64_t)dlnow, x->total);
    return 0;
}

static CURL *new_handle(const dc_hub_options *o, xfer *x, struct curl_slist **headers) {
    CURL *c = curl_easy_init();
    if (!c) return NULL;
    char ua[64], auth[1100];
    snprintf(ua, sizeof ua, "dodeca/%s", dc_version());
    *headers = curl_slist_append(NULL, "Accept-Encoding: identity");
    if (o->token[0]) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", o->token);
        *headers = curl_slist_append(*headers, auth);
    }
    curl_easy_setopt(c, CURLOPT_USERAGENT, ua);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, *headers);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)(o->connect_timeout_s ? o->connect_timeout_s : 30));
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)(o->stall_timeout_s ? o->stall_timeout_s : 60));
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    return c;
}

/* What to do after a failed attempt. */
typedef enum { FAIL_RETRY, FAIL_FINAL } fail_kind;

static bool retryable_status(long s) { return s >= 500 || s == 429 || s == 408; }

static dc_status http_error(long s, const dc_hub_meta *m, const dc_hub_options *o,
                            const char *repo, const char *revision, const char *file) {
    const char *msg = m->error_message[0] ? m->error_message : "";
    if (s == 401)
        return dc_fail(DC_ERR_IO,
                       "%s/%s at %s: HTTP 401 (%s%s%s): %s", repo, file, revision,
                       m->error_code[0] ? m->error_code : "unauthorized", msg[0] ? ": " : "", msg,
                       o->token[0] ? "the token was refused; check HF_TOKEN (or the repo does not exist)"
                                   : "set HF_TOKEN to a Hugging Face access token (or the repo does not exist)");
    if (s == 403)
        return dc_fail(DC_ERR_IO,
                       "%s/%s at %s: HTTP 403 (forbidden%s%s): %s", repo, file, revision,
                       msg[0] ? ": " : "", msg,
                       o->token[0] ? "the token has no access; accept the model's terms on its page "
                                     "or use another HF_TOKEN"
                                   : "set HF_TOKEN to a token with access to this repo");
    if (s == 404) {
        if (!strcmp(m->error_code, "RepoNotFound"))
            return dc_fail(DC_ERR_NOT_FOUND, "repository %s not found (HTTP 404; private? set HF_TOKEN)", repo);
        if (!strcmp(m->error_code, "RevisionNotFound"))
            return dc_fail(DC_ERR_NOT_FOUND, "revision %s not found in %s (HTTP 404)", revision, repo);
        return dc_fail(DC_ERR_NOT_FOUND, "%s not found in %s at revision %s (HTTP 404%s%s)", file,
                       repo, revision, msg[0] ? ": " : "", msg);
    }
    return dc_fail(DC_ERR_IO, "%s/%s at %s: HTTP %ld%s%s", repo, file, revision, s,
                   msg[0] ? ": " : "", msg);
}

static void backoff(const dc_hub_options *o, uint32_t attempt) {
    uint64_t ms = o->retry_delay_ms;
    for (uint32_t i = 0; i < attempt && ms < MAX_BACKOFF_MS; i++) ms *= 2;
    if (ms > MAX_BACKOFF_MS) ms = MAX_BACKOFF_MS;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* scheme://host[:port] of url, to resolve a relative redirect. */
static void origin_of(const char *url, char *out, size_t cap) {
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    const char *end = strchr(p, '/');
    size_t n = end ? (size_t)(end - url) : strlen(url);
    if (n >= cap) n = cap - 1;
    memcpy(out, url, n);
    out[n] = 0;
}

/* HEAD with retries; follows relative redirects only (an absolute one is the LFS storage). */
static dc_status head(const dc_hub_options *o, const char *url0, const char *repo,
                      const char *revision, const char *file, dc_hub_meta *meta) {
    char url[DC_HUB_URL_MAX];
    snprintf(url, sizeof url, "%s", url0);
    uint32_t attempt = 0, redirects = 0;
    for (;;) {
        xfer x;
        memset(&x, 0, sizeof x);
        x.o = o;
        struct curl_slist *hdr = NULL;
        CURL *c = new_handle(o, &x, &hdr);
        if (!c) return dc_fail(DC_ERR_OUT_OF_MEMORY, "curl handle");
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)(o->stall_timeout_s ? o->stall_timeout_s : 60));
        CURLcode rc = curl_easy_perform(c);
        long s = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &s);
        curl_easy_cleanup(c);
        curl_slist_free_all(hdr);
        *meta = x.meta;
        if (rc == CURLE_OK && s >= 300 && s < 400 && x.meta.location[0] == '/' &&
            redirects < MAX_RELATIVE_REDIRECTS) {
            char origin[DC_HUB_URL_MAX];
            origin_of(url, origin, sizeof origin);
            char next[DC_HUB_URL_MAX];
            if (!fits(next, sizeof next, "%s%s", origin, x.meta.location))
                return dc_fail(DC_ERR_IO, "%s/%s: redirect URL too long", repo, file);
            snprintf(url, sizeof url, "%s", next);
            redirects++;
            continue;
        }
        if (rc == CURLE_OK && s >= 200 && s < 400) return DC_OK;
        if (rc == CURLE_OK && !retryable_status(s)) return http_error(s, &x.meta, o, repo, revision, file);
        if (attempt >= o->retries) {
            if (rc != CURLE_OK)
                return dc_fail(DC_ERR_IO, "%s/%s at %s: %s (after %u attempts)", repo, file,
                               revision, curl_easy_strerror(rc), attempt + 1);
            http_error(s, &x.meta, o, repo, revision, file);
            return dc_fail_context(DC_ERR_IO, "after %u attempts", attempt + 1);
        }
        backoff(o, attempt++);
    }
}

/* GET into `part` (appending from its current size) until it holds `size` bytes. */
static dc_status get_body(const dc_hub_options *o, const char *url, const char *repo,
                          const char *revision, const char *file, const char *part,
                          uint64_t size, dc_hub_result *res) {
    uint32_t attempt = 0;
    for (;;) {
        FILE *f = fopen(part, "ab+");
        if (!f) return dc_fail(DC_ERR_IO, "open %s: %s", part, strerror(errno));
        fseek(f, 0, SEEK_END);
        long have = ftell(f);
        if (have < 0 || (uint64_t)have > size) {
            /* more than the file should hold: not ours to trust */
            if (ftruncate(fileno(f), 0) != 0) {
                fclose(f);
                return dc_fail(DC_ERR_IO, "truncate %s: %s", part, strerror(errno));
            }
            fseek(f, 0, SEEK_END);
            have = 0;
        }
        if ((uint64_t)have == size && size > 0) {
            fclose(f);
            return DC_OK;
        }
        xfer x;
        memset(&x, 0, sizeof x);
        x.o = o, x.f = f, x.base = (uint64_t)have, x.total = size, x.repo = repo, x.file = file;
        struct curl_slist *hdr = NULL;
        CURL *c = new_handle(o, &x, &hdr);
        if (!c) {
            fclose(f);
            return dc_fail(DC_ERR_OUT_OF_MEMORY, "curl handle");
        }
        char range[48];
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
        if (have > 0) {
            snprintf(range, sizeof range, "%lld-", (long long)have);
            curl_easy_setopt(c, CURLOPT_RANGE, range);
        }
        res->attempts++;
        CURLcode rc = curl_easy_perform(c);
        long s = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &s);
        curl_easy_cleanup(c);
        curl_slist_free_all(hdr);
        res->bytes_fetched += x.got;
        bool flushed = fflush(f) == 0 && fsync(fileno(f)) == 0;
        fseek(f, 0, SEEK_END);
        long now = ftell(f);
        fclose(f);
        if (!flushed) return dc_fail(DC_ERR_IO, "write %s: %s", part, strerror(errno));
        if (rc == CURLE_OK && (s == 200 || s == 206)) {
            if (now >= 0 && (uint64_t)now == size) return DC_OK;
            if (now >= 0 && (uint64_t)now > size) {
                unlink(part);
                return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                               "%s/%s: received %ld bytes, the hub announced %llu", repo, file,
                               now, (unsigned long long)size);
            }
            /* a short body without a transfer error: resume like a dropped connection */
        } else if (rc == CURLE_OK && s == 416) {
            unlink(part); /* our partial file does not fit the server's: start over */
        } else if (rc == CURLE_OK && !retryable_status(s)) {
            return http_error(s, &x.meta, o, repo, revision, file);
        } else if (x.refused) {
            unlink(part);
        }
        if (attempt >= o->retries) {
            if (rc != CURLE_OK)
                return dc_fail(DC_ERR_IO, "%s/%s at %s: %s after %u attempts (%ld of %llu bytes kept "
                               "in %s; run again to resume)",
                               repo, file, revision, curl_easy_strerror(rc), attempt + 1, now,
                               (unsigned long long)size, part);
            return dc_fail(DC_ERR_IO, "%s/%s at %s: HTTP %ld after %u attempts", repo, file,
                           revision, s, attempt + 1);
        }
        backoff(o, attempt++);
    }
}

static dc_status fetch_locked(const dc_hub_options *o, const char *repo, const char *revision,
                              const char *file, const char *url, const char *repo_dir,
                              const dc_hub_meta *m, dc_hub_result *res) {
    char blob[DC_HUB_PATH_MAX], part[DC_HUB_PATH_MAX + 16];
    if (!fits(blob, sizeof blob, "%s/blobs/%s", repo_dir, res->etag) ||
        !fits(part, sizeof part, "%s.incomplete", blob))
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "blob path too long in %s", repo_dir);
    struct stat sb;
    if (stat(blob, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == res->size)
        return dc_hub_link(o->cache_dir, repo, revision, res->commit, file, res->etag, o->copy);
    (void)m;
    dc_status st;
    if (res->size == 0) {
        FILE *f = fopen(part, "wb");
        if (!f || fclose(f) != 0) return dc_fail(DC_ERR_IO, "create %s: %s", part, strerror(errno));
    } else if ((st = get_body(o, url, repo, revision, file, part, res->size, res))) {
        return st;
    }
    res->downloaded = true;
    if ((st = dc_hub_verify_blob(part, res->etag, res->size))) {
        unlink(part); /* never keep bytes that failed their check */
        return dc_fail_context(st, "%s/%s at %s: download does not match the hub's checksum",
                               repo, file, revision);
    }
    return dc_hub_store(o->cache_dir, repo, revision, res->commit, file, res->etag, part, o->copy);
}

static dc_status mkdir_p(const char *dir) {
    char buf[DC_HUB_PATH_MAX];
    snprintf(buf, sizeof buf, "%s/", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return dc_fail(DC_ERR_IO, "mkdir %s: %s", buf, strerror(errno));
        *p = '/';
    }
    return DC_OK;
}

dc_status dc_hub_fetch(const dc_hub_options *o, const char *repo, const char *revision,
                       const char *file, dc_hub_result *out) {
    memset(out, 0, sizeof *out);
    if (!revision || !revision[0]) revision = "main";
    dc_hub_local loc;
    dc_status st;
    if (o->offline) {
        if ((st = dc_hub_lookup(o->cache_dir, repo, revision, file, false, 0, &loc))) return st;
        out->absent = loc.state == DC_HUB_ABSENT;
        if (loc.state != DC_HUB_READY)
            return dc_fail(loc.state == DC_HUB_ABSENT ? DC_ERR_NOT_FOUND : DC_ERR_MODEL_NOT_FOUND,
                           "%s/%s at %s is not in the cache %s (offline: %s)", repo, file, revision,
                           o->cache_dir, loc.why);
        snprintf(out->path, sizeof out->path, "%s", loc.path);
        snprintf(out->commit, sizeof out->commit, "%s", loc.commit);
        out->size = loc.size;
        return DC_OK;
    }
    const CURLcode ready = dc_curl_global();
    if (ready != CURLE_OK) return dc_fail(DC_ERR_IO, "libcurl: %s", curl_easy_strerror(ready));
    char url[DC_HUB_URL_MAX], folder[512], repo_dir[DC_HUB_PATH_MAX];
    if ((st = dc_hub_url(o->endpoint, repo, revision, file, url, sizeof url))) return st;
    if ((st = dc_hub_repo_folder(repo, folder, sizeof folder))) return st;
    if (!fits(repo_dir, sizeof repo_dir, "%s/%s", o->cache_dir, folder))
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "cache path too long: %s", o->cache_dir);

    dc_hub_meta m;
    dc_hub_meta_reset(&m);
    if ((st = head(o, url, repo, revision, file, &m))) {
        /* like huggingface_hub: a 404 is remembered; a dead network falls back to the cache */
        if (st == DC_ERR_NOT_FOUND && strcmp(m.error_code, "RepoNotFound") != 0 &&
            strcmp(m.error_code, "RevisionNotFound") != 0) {
            out->absent = true;
            char saved[512];
            snprintf(saved, sizeof saved, "%s", dc_error_detail());
            if (dc_hub_is_commit(m.commit))
                dc_hub_mark_absent(o->cache_dir, repo, revision, m.commit, file);
            return dc_fail(st, "%s", saved);
        }
        /* the hub's own refusal (4xx) is an answer; only an unreachable or failing hub is not */
        bool refused = m.status >= 400 && m.status < 500 && !retryable_status(m.status);
        if (st == DC_ERR_IO && !refused) {
            char saved[512];
            snprintf(saved, sizeof saved, "%s", dc_error_detail());
            if (dc_hub_lookup(o->cache_dir, repo, revision, file, false, 0, &loc) == DC_OK &&
                loc.state == DC_HUB_READY) {
                snprintf(out->path, sizeof out->path, "%s", loc.path);
                snprintf(out->commit, sizeof out->commit, "%s", loc.commit);
                out->size = loc.size;
                return DC_OK;
            }
            if (loc.state == DC_HUB_ABSENT) {
                out->absent = true; /* known not to exist: an optional file needs no network */
                return dc_fail(DC_ERR_NOT_FOUND, "%s not in %s at %s (%s; hub unreachable: %s)",
                               file, repo, revision, loc.why, saved);
            }
            return dc_fail(st, "%s", saved);
        }
        return st;
    }
    if (!dc_hub_is_commit(m.commit))
        return dc_fail(DC_ERR_SERIALIZATION,
                       "%s/%s at %s: the server sent no X-Repo-Commit (is %s a Hugging Face hub?)",
                       repo, file, revision, o->endpoint);
    const char *etag = dc_hub_meta_blob_etag(&m);
    if (!etag[0])
        return dc_fail(DC_ERR_SERIALIZATION, "%s/%s at %s: the server sent no ETag", repo, file,
                       revision);
    if (!dc_hub_meta_size(&m, &out->size))
        return dc_fail(DC_ERR_SERIALIZATION, "%s/%s at %s: the server sent no size", repo, file,
                       revision);
    snprintf(out->commit, sizeof out->commit, "%s", m.commit);
    snprintf(out->etag, sizeof out->etag, "%s", etag);
    /* a pinned revision must resolve to itself */
    if (dc_hub_is_hex(revision, strlen(revision)) && strlen(revision) >= 7 &&
        strncasecmp(m.commit, revision, strlen(revision)) != 0)
        return dc_fail(DC_ERR_SERIALIZATION, "%s at %s: the hub answered with commit %s", repo,
                       revision, m.commit);

    char lockdir[DC_HUB_PATH_MAX], lock[DC_HUB_PATH_MAX + DC_HUB_ETAG_MAX + 8];
    if (!fits(lockdir, sizeof lockdir, "%s/.locks/%s", o->cache_dir, folder))
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "cache path too long: %s", o->cache_dir);
    char blobs[DC_HUB_PATH_MAX + 8];
    if (!fits(blobs, sizeof blobs, "%s/blobs", repo_dir) ||
        !fits(lock, sizeof lock, "%s/%s.lock", lockdir, etag))
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "cache path too long: %s", o->cache_dir);
    if ((st = mkdir_p(lockdir)) || (st = mkdir_p(blobs))) return st;
    if (strchr(etag, '/') || etag[0] == '.')
        return dc_fail(DC_ERR_SERIALIZATION, "%s/%s: etag \"%s\" is not a file name", repo, file, etag);
    int fd = open(lock, O_RDWR | O_CREAT, 0644);
    if (fd < 0) return dc_fail(DC_ERR_IO, "open %s: %s", lock, strerror(errno));
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            close(fd);
            return dc_fail(DC_ERR_IO, "lock %s: %s", lock, strerror(errno));
        }
    }
    st = fetch_locked(o, repo, revision, file, url, repo_dir, &m, out);
    flock(fd, LOCK_UN);
    close(fd);
    if (st) return st;
    if (!fits(out->path, sizeof out->path, "%s/snapshots/%s/%s", repo_dir, out->commit, file))
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "snapshot path too long for %s", file);
    return DC_OK;
}

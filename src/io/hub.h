/* Hugging Face hub downloads into the huggingface_hub cache layout (seed S13).
 *
 * A file is fetched from {endpoint}/{repo}/resolve/{revision}/{file} and stored the way the
 * Python huggingface_hub stores it, so both share one cache:
 *   <cache>/models--org--name/blobs/<etag>                 the bytes (etag = sha256 for LFS files,
 *                                                          the git blob sha1 for small ones)
 *   <cache>/models--org--name/snapshots/<commit>/<file>    relative symlink to ../../blobs/<etag>
 *   <cache>/models--org--name/refs/<revision>              the commit a branch or tag resolved to
 *   <cache>/models--org--name/.no_exist/<commit>/<file>    marker: the file does not exist there
 *   <cache>/.locks/models--org--name/<etag>.lock           flock shared with huggingface_hub
 * Downloads go to blobs/<etag>.incomplete, resume with Range after a dropped connection, are
 * checked (size, then sha256 or git sha1 against the etag) and renamed into place. */
#ifndef DC_IO_HUB_H
#define DC_IO_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dodeca/status.h"

#define DC_HUB_PATH_MAX 4096
#define DC_HUB_URL_MAX 4096
#define DC_HUB_ETAG_MAX 160
#define DC_HUB_COMMIT_MAX 80
#define DC_HUB_DEFAULT_ENDPOINT "https://huggingface.co"

/* ---- pure helpers (no I/O) ---- */

/* "org/name" → "models--org--name". DC_ERR_INVALID_ARGUMENT for an empty id, "..", a leading
 * or trailing '/', or characters outside [A-Za-z0-9._-/]. */
dc_status dc_hub_repo_folder(const char *repo, char *out, size_t cap);

/* True for a safe relative file name inside a repo: not empty, no leading '/', no "." or ".."
 * component, no empty component, no backslash or control character. */
bool dc_hub_file_name_ok(const char *file);

/* True when s is exactly n lowercase or uppercase hex digits. */
bool dc_hub_is_hex(const char *s, size_t n);

/* True for a full 40-hex commit id. */
bool dc_hub_is_commit(const char *rev);

/* {endpoint}/{repo}/resolve/{revision}/{file}: the revision percent-encoded with no safe
 * characters ("refs/pr/7" → "refs%2Fpr%2F7"), each path segment of file percent-encoded (its
 * '/' kept), a trailing '/' of the endpoint dropped. */
dc_status dc_hub_url(const char *endpoint, const char *repo, const char *revision,
                     const char *file, char *out, size_t cap);

/* Removes a leading "W/" and surrounding quotes; "" when nothing is left. */
void dc_hub_etag_normalize(const char *raw, size_t len, char *out, size_t cap);

/* What the hub says about a file, collected from response headers. */
typedef struct dc_hub_meta {
    long status;                       /* HTTP status of the last response seen */
    char commit[DC_HUB_COMMIT_MAX];    /* X-Repo-Commit */
    char etag[DC_HUB_ETAG_MAX];        /* ETag, normalised */
    char linked_etag[DC_HUB_ETAG_MAX]; /* X-Linked-Etag (LFS: sha256 of the content) */
    uint64_t content_length;
    bool has_content_length;
    uint64_t linked_size; /* X-Linked-Size */
    bool has_linked_size;
    uint64_t range_start; /* Content-Range: bytes <start>-... */
    bool has_range;
    char location[DC_HUB_URL_MAX]; /* Location */
    char error_code[64];           /* X-Error-Code (EntryNotFound, RepoNotFound, ...) */
    char error_message[256];       /* X-Error-Message */
} dc_hub_meta;

void dc_hub_meta_reset(dc_hub_meta *m);
/* Feeds one raw header line as libcurl delivers it ("Name: value\r\n"). A status line
 * ("HTTP/1.1 302 Found") starts a new response and clears what the previous one said. */
void dc_hub_meta_header(dc_hub_meta *m, const char *line, size_t len);
/* The blob name: X-Linked-Etag, else ETag. */
const char *dc_hub_meta_blob_etag(const dc_hub_meta *m);
/* The file size: X-Linked-Size, else Content-Length; false when neither was sent. */
bool dc_hub_meta_size(const dc_hub_meta *m, uint64_t *size);

/* The relative symlink target from snapshots/<commit>/<file> to blobs/<etag>:
 * "../../blobs/<etag>" plus one "../" per folder in file. */
dc_status dc_hub_link_target(const char *file, const char *etag, char *out, size_t cap);

/* ---- the cache ---- */

/* The cache folder: HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else
 * $XDG_CACHE_HOME/huggingface/hub, else $HOME/.cache/huggingface/hub. */
dc_status dc_hub_default_cache(char *out, size_t cap);

/* True when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is 1/on/yes/true, any case. */
bool dc_hub_env_offline(void);

/* What the cache holds for one file of one revision. */
typedef enum dc_hub_state {
    DC_HUB_READY = 0,  /* present and (when checked) intact */
    DC_HUB_MISSING,    /* not in the cache (or the revision is unknown there) */
    DC_HUB_ABSENT,     /* a .no_exist marker says the file does not exist upstream */
    DC_HUB_CORRUPT,    /* present but size or checksum is wrong */
} dc_hub_state;

const char *dc_hub_state_name(dc_hub_state s);

typedef struct dc_hub_local {
    dc_hub_state state;
    char commit[DC_HUB_COMMIT_MAX];
    char path[DC_HUB_PATH_MAX]; /* snapshots/<commit>/<file> */
    char blob[DC_HUB_PATH_MAX]; /* what the link points to ("" for a copied file) */
    uint64_t size;
    char why[256]; /* for MISSING and CORRUPT: what was found */
} dc_hub_local;

/* Looks a file up without any network access: the revision is used as the commit when it is
 * 40 hex digits, otherwise resolved through refs/<revision>. With verify, the blob's size is
 * compared with expect_size (when non-zero) and its content with the blob name (sha256 for a
 * 64-hex name, git blob sha1 for a 40-hex one). Fails only on I/O errors; the answer is in
 * out->state. */
dc_status dc_hub_lookup(const char *cache_dir, const char *repo, const char *revision,
                        const char *file, bool verify, uint64_t expect_size, dc_hub_local *out);

/* Checks a file against an etag: size (when expect_size is non-zero) and sha256 (64-hex etag)
 * or git blob sha1 (40-hex etag); other etags are not content hashes and only the size is
 * checked. DC_ERR_CHECKPOINT_CORRUPTED naming both values on a mismatch. */
dc_status dc_hub_verify_blob(const char *path, const char *etag, uint64_t expect_size);

/* Puts src (a finished download, moved) into the cache as blobs/<etag>, links
 * snapshots/<commit>/<file> to it and, when revision is not the commit, writes
 * refs/<revision>. With copy, the snapshot gets a copy instead of a symlink. */
dc_status dc_hub_store(const char *cache_dir, const char *repo, const char *revision,
                       const char *commit, const char *file, const char *etag, const char *src,
                       bool copy);

/* Links an existing blob into snapshots/<commit>/<file> and writes refs/<revision>. */
dc_status dc_hub_link(const char *cache_dir, const char *repo, const char *revision,
                      const char *commit, const char *file, const char *etag, bool copy);

/* Writes the .no_exist/<commit>/<file> marker (and refs/<revision>). */
dc_status dc_hub_mark_absent(const char *cache_dir, const char *repo, const char *revision,
                             const char *commit, const char *file);

/* ---- downloads ---- */

typedef void (*dc_hub_progress_fn)(void *user, const char *repo, const char *file,
                                   uint64_t done, uint64_t total);

typedef struct dc_hub_options {
    char endpoint[1024];        /* "" = HF_ENDPOINT, else DC_HUB_DEFAULT_ENDPOINT */
    char token[1024];           /* "" = HF_TOKEN, else $HF_HOME/token, else none */
    char cache_dir[DC_HUB_PATH_MAX]; /* "" = dc_hub_default_cache() */
    bool offline;               /* never touch the network */
    uint32_t retries;           /* 5: attempts after the first on connection errors and 5xx */
    uint32_t retry_delay_ms;    /* 1000: first backoff, doubled each time, capped at 30 s */
    uint32_t connect_timeout_s; /* 30 */
    uint32_t stall_timeout_s;   /* 60: a transfer slower than 1 byte/s this long is retried */
    bool copy;                  /* snapshot copies instead of symlinks (HF_HUB_DISABLE_SYMLINKS) */
    dc_hub_progress_fn progress;
    void *progress_user;
} dc_hub_options;

/* Defaults, plus HF_HUB_OFFLINE and HF_HUB_DISABLE_SYMLINKS from the environment. */
void dc_hub_options_init(dc_hub_options *o);
/* Fills what is still "" in o: endpoint from HF_ENDPOINT, token from HF_TOKEN (or
 * HUGGING_FACE_HUB_TOKEN, or the token file `hf auth login` writes under HF_HOME), cache_dir
 * from dc_hub_default_cache(). */
dc_status dc_hub_options_resolve(dc_hub_options *o);

typedef struct dc_hub_result {
    char path[DC_HUB_PATH_MAX]; /* snapshots/<commit>/<file> */
    char commit[DC_HUB_COMMIT_MAX];
    char etag[DC_HUB_ETAG_MAX];
    uint64_t size;
    bool downloaded;        /* false: the blob was already in the cache */
    uint64_t bytes_fetched; /* body bytes received over the network */
    uint32_t attempts;      /* requests made for the body */
    bool absent;            /* the failure was a 404 for the file itself (repo and revision exist) */
} dc_hub_result;

/* Fetches one file into the cache (or finds it there). Offline: the local lookup only.
 * Errors: DC_ERR_NOT_FOUND for a 404 (the detail names repo, file and revision; a
 * .no_exist marker is written when the commit is known), DC_ERR_IO for 401/403 (the detail
 * says to set HF_TOKEN), other 4xx, and connection errors or 5xx once the retries are spent,
 * DC_ERR_CHECKPOINT_CORRUPTED when the bytes do not match the size or checksum (nothing is
 * left in the cache then). */
dc_status dc_hub_fetch(const dc_hub_options *o, const char *repo, const char *revision,
                       const char *file, dc_hub_result *out);

#endif

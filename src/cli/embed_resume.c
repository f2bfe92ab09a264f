/* `dodeca embed --resume`: reads the ids of a JSON lines output into a hash set, cuts off a
 * partial last line and drops error lines, so that appending the remaining items leaves every
 * id exactly once. The file is checked completely before it is changed. */
#include "cli/embed_resume.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <xxhash.h>

#include "core/error.h"

struct dc_embed_done {
    char **slot; /* open addressing; NULL = empty */
    size_t cap, n;
};

static dc_status dc_embed_done_put(dc_embed_done *d, const char *id);

static dc_status dc_embed_done_grow(dc_embed_done *d) {
    size_t cap = d->cap ? d->cap * 2 : 1024;
    char **old = d->slot;
    size_t old_cap = d->cap;
    d->slot = calloc(cap, sizeof *d->slot);
    if (!d->slot) {
        d->slot = old;
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "resume id set");
    }
    d->cap = cap;
    d->n = 0;
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i]) continue;
        size_t j = XXH3_64bits(old[i], strlen(old[i])) & (cap - 1);
        while (d->slot[j]) j = (j + 1) & (cap - 1);
        d->slot[j] = old[i];
        d->n++;
    }
    free(old);
    return DC_OK;
}

static dc_status dc_embed_done_put(dc_embed_done *d, const char *id) {
    if ((d->n + 1) * 2 > d->cap) {
        dc_status st = dc_embed_done_grow(d);
        if (st != DC_OK) return st;
    }
    size_t j = XXH3_64bits(id, strlen(id)) & (d->cap - 1);
    while (d->slot[j]) {
        if (strcmp(d->slot[j], id) == 0) return DC_OK;
        j = (j + 1) & (d->cap - 1);
    }
    size_t n = strlen(id);
    if (!(d->slot[j] = malloc(n + 1))) return dc_fail(DC_ERR_OUT_OF_MEMORY, "resume id set");
    memcpy(d->slot[j], id, n + 1);
    d->n++;
    return DC_OK;
}

bool dc_embed_done_has(const dc_embed_done *d, const char *id) {
    if (!d || !d->cap) return false;
    size_t j = XXH3_64bits(id, strlen(id)) & (d->cap - 1);
    while (d->slot[j]) {
        if (strcmp(d->slot[j], id) == 0) return true;
        j = (j + 1) & (d->cap - 1);
    }
    return false;
}

void dc_embed_done_free(dc_embed_done *d) {
    if (!d) return;
    for (size_t i = 0; i < d->cap; i++) free(d->slot[i]);
    free(d->slot);
    free(d);
}

/* What one complete line is: 1 an embedding (its id into *id), 0 an error line, -1 bad. */
static int dc_embed_resume_line(const char *s, size_t n, char **id) {
    *id = NULL;
    cJSON *obj = cJSON_ParseWithLength(s, n);
    int kind = -1;
    const cJSON *v = obj && cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, "id") : NULL;
    if (v) {
        if (cJSON_GetObjectItemCaseSensitive(obj, "error")) kind = 0;
        else if ((*id = cJSON_PrintUnformatted(v)) != NULL) kind = 1;
    }
    cJSON_Delete(obj);
    return kind;
}

/* Copies every complete line but the error lines down over the gaps, then truncates. */
static dc_status dc_embed_resume_compact(const char *path, off_t end) {
    FILE *in = fopen(path, "rb");
    int fd = open(path, O_WRONLY);
    dc_status st = in && fd >= 0 ? DC_OK : dc_fail(DC_ERR_IO, "%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    off_t r = 0, w = 0;
    while (st == DC_OK && r < end) {
        ssize_t len = getline(&line, &cap, in);
        if (len <= 0) break;
        r += len;
        char *id = NULL;
        int kind = dc_embed_resume_line(line, (size_t)len, &id);
        free(id);
        if (kind == 0) continue;
        if (w != r - len) { /* w < r: the bytes it overwrites were already read */
            ssize_t put = pwrite(fd, line, (size_t)len, w);
            if (put != len) st = dc_fail(DC_ERR_IO, "%s: rewrite: %s", path, strerror(errno));
        }
        w += len;
    }
    if (st == DC_OK && ftruncate(fd, w) != 0)
        st = dc_fail(DC_ERR_IO, "%s: truncate: %s", path, strerror(errno));
    free(line);
    if (in) fclose(in);
    if (fd >= 0) close(fd);
    return st;
}

dc_status dc_embed_resume_scan(const char *path, dc_embed_done **out, dc_embed_resume_report *rep) {
    memset(rep, 0, sizeof *rep);
    dc_embed_done *d = calloc(1, sizeof *d);
    if (!d) return dc_fail(DC_ERR_OUT_OF_MEMORY, "resume id set");
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) {
            *out = d;
            return DC_OK;
        }
        dc_embed_done_free(d);
        return dc_fail(DC_ERR_IO, "%s: %s", path, strerror(errno));
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    off_t off = 0, complete_end = 0;
    dc_status st = DC_OK;
    ssize_t len;
    while (st == DC_OK && (len = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (line[len - 1] != '\n') { /* a killed write: cut it off */
            rep->cut_tail = true;
            rep->tail_bytes = (unsigned long long)len;
            break;
        }
        off += len;
        complete_end = off;
        char *id = NULL;
        int kind = dc_embed_resume_line(line, (size_t)len, &id);
        if (kind < 0) {
            st = dc_fail(DC_ERR_SERIALIZATION,
                         "%s:%zu: not an output line of dodeca embed (a JSON object with \"id\"); "
                         "refusing to append to it",
                         path, lineno);
        } else if (kind == 0) {
            rep->errors_removed++;
        } else {
            st = dc_embed_done_put(d, id);
        }
        free(id);
    }
    if (st == DC_OK && ferror(f)) st = dc_fail(DC_ERR_IO, "%s: read error", path);
    free(line);
    fclose(f);
    if (st == DC_OK && rep->errors_removed) st = dc_embed_resume_compact(path, complete_end);
    else if (st == DC_OK && rep->cut_tail && truncate(path, complete_end) != 0)
        st = dc_fail(DC_ERR_IO, "%s: truncate: %s", path, strerror(errno));
    if (st != DC_OK) {
        dc_embed_done_free(d);
        return st;
    }
    rep->done = d->n;
    *out = d;
    return DC_OK;
}

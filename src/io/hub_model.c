/* Whole models: the manifest's files fetched or checked one by one. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "io/hub_model.h"
#include "io/manifest.h"

/* Appends ", item" (or "item") to a fixed buffer; a full buffer ends in "...". */
static void append(char *buf, size_t cap, const char *fmt, ...) DC_PRINTF(3, 4);
static void append(char *buf, size_t cap, const char *fmt, ...) {
    size_t len = strlen(buf);
    if (len + 4 >= cap) return;
    if (len) {
        memcpy(buf + len, ", ", 3);
        len += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - len) memcpy(buf + cap - 4, "...", 4);
}

static dc_status start(dc_model_id id, const char *revision, dc_hub_model_report *r,
                       const dc_model_manifest **mf) {
    memset(r, 0, sizeof *r);
    r->id = id;
    const dc_model_info *info = dc_model_info_get(id);
    if (!info) return dc_fail(DC_ERR_INVALID_ARGUMENT, "model id %d is out of range", (int)id);
    *mf = dc_manifest_get(id);
    if (!*mf)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "%s (%s) is computed: nothing to download",
                       info->label, info->name);
    snprintf(r->revision, sizeof r->revision, "%s",
             revision && revision[0] ? revision : (*mf)->revision);
    return DC_OK;
}

static void set_dir(const char *path, const char *file, dc_hub_model_report *r) {
    /* snapshots/<commit>/<file> minus the file */
    size_t pl = strlen(path), fl = strlen(file);
    if (pl > fl + 1 && pl - fl - 1 < sizeof r->dir) {
        memcpy(r->dir, path, pl - fl - 1);
        r->dir[pl - fl - 1] = 0;
    }
}

dc_status dc_hub_check_model(const char *cache_dir, dc_model_id id, const char *revision,
                             bool verify, dc_hub_model_report *r) {
    const dc_model_manifest *mf = NULL;
    dc_status st = start(id, revision, r, &mf);
    if (st) return st;
    bool weights = false, any_weights = false;
    for (size_t i = 0; i < mf->nfiles; i++) {
        const dc_manifest_file *f = &mf->files[i];
        if (f->need == DC_MANIFEST_WEIGHTS) {
            any_weights = true;
            if (weights) continue;
        }
        dc_hub_local loc;
        if ((st = dc_hub_lookup(cache_dir, mf->repo, r->revision, f->name, verify, f->size, &loc)))
            return st;
        if (loc.commit[0]) snprintf(r->commit, sizeof r->commit, "%s", loc.commit);
        if (loc.state == DC_HUB_READY) {
            r->files++;
            r->bytes += loc.size;
            if (!r->dir[0]) set_dir(loc.path, f->name, r);
            if (f->need == DC_MANIFEST_WEIGHTS) weights = true;
        } else if (loc.state == DC_HUB_CORRUPT) {
            if (f->need == DC_MANIFEST_WEIGHTS) weights = true;
            append(r->corrupt, sizeof r->corrupt, "%s", loc.why);
        } else if (f->need == DC_MANIFEST_REQUIRED) {
            append(r->missing, sizeof r->missing, "%s", f->name);
        }
    }
    if (any_weights && !weights) append(r->missing, sizeof r->missing, "weights");
    r->ready = !r->missing[0] && !r->corrupt[0];
    return DC_OK;
}

dc_status dc_hub_pull_model(const dc_hub_options *o, dc_model_id id, const char *revision,
                            dc_hub_model_report *r) {
    const dc_model_manifest *mf = NULL;
    dc_status st = start(id, revision, r, &mf);
    if (st) return st;
    if (o->offline) {
        char rev[DC_HUB_COMMIT_MAX];
        snprintf(rev, sizeof rev, "%s", r->revision);
        if ((st = dc_hub_check_model(o->cache_dir, id, rev, false, r))) return st;
        if (r->ready) return DC_OK;
        return dc_fail(DC_ERR_MODEL_NOT_FOUND, "%s (%s) at %s is not in the cache %s (offline): %s",
                       dc_model_info_get(id)->label, mf->repo, rev, o->cache_dir,
                       r->corrupt[0] ? r->corrupt : r->missing);
    }
    const dc_model_info *info = dc_model_info_get(id);
    bool weights = false, any_weights = false;
    char tried[256] = "";
    for (size_t i = 0; i < mf->nfiles; i++) {
        const dc_manifest_file *f = &mf->files[i];
        if (f->need == DC_MANIFEST_WEIGHTS) {
            any_weights = true;
            if (weights) continue;
        }
        dc_hub_result res;
        dc_error_clear();
        st = dc_hub_fetch(o, mf->repo, r->revision, f->name, &res);
        r->fetched += res.bytes_fetched;
        if (st == DC_ERR_NOT_FOUND && res.absent && f->need != DC_MANIFEST_REQUIRED) {
            if (f->need == DC_MANIFEST_WEIGHTS) append(tried, sizeof tried, "%s", f->name);
            continue;
        }
        if (st) {
            if (f->need == DC_MANIFEST_REQUIRED || st != DC_ERR_NOT_FOUND)
                append(r->missing, sizeof r->missing, "%s", f->name);
            return dc_fail_context(st, "%s (%s)", info->label, mf->repo);
        }
        if (f->size && res.size != f->size)
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s (%s): %s is %llu bytes, the manifest says %llu",
                           info->label, mf->repo, f->name, (unsigned long long)res.size,
                           (unsigned long long)f->size);
        if (f->need == DC_MANIFEST_WEIGHTS) weights = true;
        snprintf(r->commit, sizeof r->commit, "%s", res.commit);
        if (!r->dir[0]) set_dir(res.path, f->name, r);
        r->files++;
        r->bytes += res.size;
    }
    if (any_weights && !weights) {
        append(r->missing, sizeof r->missing, "weights");
        return dc_fail(DC_ERR_NOT_FOUND, "%s (%s): no weights file at %s (tried %s)", info->label,
                       mf->repo, r->revision, tried);
    }
    r->ready = true;
    return DC_OK;
}

/* Whole models from the hub: every file of a model's manifest fetched into the cache, or what
 * the cache holds checked (seed S13: ensure a model, readiness report). The CLI's `dodeca pull`
 * and the pipeline's auto-download both go through these. */
#ifndef DC_IO_HUB_MODEL_H
#define DC_IO_HUB_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "dodeca/types.h"
#include "io/hub.h"

typedef struct dc_hub_model_report {
    dc_model_id id;
    bool ready;                     /* every required file and one weights file is there, intact */
    char revision[DC_HUB_COMMIT_MAX]; /* as asked (a branch, tag or commit) */
    char commit[DC_HUB_COMMIT_MAX]; /* what it resolved to ("" when unknown) */
    char dir[DC_HUB_PATH_MAX];      /* snapshots/<commit> when known */
    uint32_t files;                 /* files present */
    uint64_t bytes;                 /* their size */
    uint64_t fetched;               /* bytes downloaded by this call */
    char missing[512];              /* required files not in the cache, comma-separated */
    char corrupt[1024];             /* what failed its size or checksum */
} dc_hub_model_report;

/* Fetches every file of the model's manifest at `revision` (NULL: the manifest's pin) into
 * o->cache_dir: required files, optional ones the repo has, and the first weights file it has.
 * DC_ERR_INVALID_ARGUMENT for a computed model (E2-E4, E9: nothing to fetch); otherwise the
 * first failure's status with the detail naming model, repo and file (see dc_hub_fetch).
 * Offline options give the same answer as dc_hub_check_model without verification. */
dc_status dc_hub_pull_model(const dc_hub_options *o, dc_model_id id, const char *revision,
                            dc_hub_model_report *r);

/* What the cache holds for the model, without any network access; with verify every file is
 * re-hashed against its blob name and the manifest's size. Fails only on bad arguments; the
 * answer is r->ready, r->missing and r->corrupt. */
dc_status dc_hub_check_model(const char *cache_dir, dc_model_id id, const char *revision,
                             bool verify, dc_hub_model_report *r);

#endif

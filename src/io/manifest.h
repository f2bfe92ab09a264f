/* The files each pretrained model needs from the Hugging Face hub, and at which revision.
 * The custom models (E2, E3, E4, E9) need nothing and have no manifest. */
#ifndef DC_IO_MANIFEST_H
#define DC_IO_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "dodeca/types.h"

typedef enum dc_manifest_need {
    DC_MANIFEST_REQUIRED = 0, /* the model does not load without it */
    DC_MANIFEST_OPTIONAL,     /* read when present (a 404 is fine) */
    DC_MANIFEST_WEIGHTS,      /* one weights file: the first of these the repo has */
} dc_manifest_need;

typedef struct dc_manifest_file {
    const char *name;      /* path inside the repo, e.g. "1_Pooling/config.json" */
    dc_manifest_need need;
    uint64_t size;         /* exact bytes when known from models.md, else 0 */
} dc_manifest_file;

typedef struct dc_model_manifest {
    dc_model_id id;
    const char *repo;       /* "org/name", the same as dc_model_info.repo */
    const char *revision;   /* a commit (possibly abbreviated) or "main" */
    const char *revision_note; /* why this revision */
    const dc_manifest_file *files;
    size_t nfiles;
    uint64_t approx_bytes;  /* download size of the files, for planning */
    const char *license;    /* what the model card says (see docs/models.md) */
} dc_model_manifest;

/* The manifest of a pretrained model; NULL for the custom ones or an id out of range. */
const dc_model_manifest *dc_manifest_get(dc_model_id id);

#endif

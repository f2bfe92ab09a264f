/* `dodeca embed --resume`: the ids already in a JSON lines output, so a long job can go on
 * where it stopped. */
#ifndef DC_CLI_EMBED_RESUME_H
#define DC_CLI_EMBED_RESUME_H

#include <stdbool.h>
#include <stddef.h>

#include "dodeca/dodeca.h"

typedef struct dc_embed_done dc_embed_done;

typedef struct dc_embed_resume_report {
    size_t done;          /* distinct ids with an embedding in the file */
    size_t errors_removed; /* {"id","error"} lines dropped so those items run again */
    bool cut_tail;        /* the last line had no newline (a killed write) and was cut off */
    unsigned long long tail_bytes; /* bytes cut */
} dc_embed_resume_report;

/* Reads `path` (a missing file is an empty set). A last line without its newline is cut off;
 * error lines are removed (the file is compacted in place) so their items are retried. Any
 * other line that is not a JSON object with an "id" is DC_ERR_SERIALIZATION naming the line,
 * and the file is left as it was. */
dc_status dc_embed_resume_scan(const char *path, dc_embed_done **out, dc_embed_resume_report *rep);
/* Whether `id` (compact JSON text, as in dc_embed_item.id) is done. */
bool dc_embed_done_has(const dc_embed_done *d, const char *id);
void dc_embed_done_free(dc_embed_done *d);

#endif

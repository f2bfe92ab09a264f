/* `dodeca embed` progress line on stderr: items, rate and, when the input size is known, a bar
 * with the share done and the time left. */
#ifndef DC_CLI_EMBED_PROGRESS_H
#define DC_CLI_EMBED_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dc_embed_progress {
    bool on;
    bool tty;            /* redraw in place with \r; otherwise one line per update */
    double start, last;  /* monotonic seconds */
    uint64_t total_bytes;
    bool drawn;
} dc_embed_progress;

void dc_embed_progress_init(dc_embed_progress *p, bool on, bool tty, uint64_t total_bytes);
/* Redraws at most 10 times a second (and always when `final`). */
void dc_embed_progress_update(dc_embed_progress *p, size_t done, size_t failed, size_t skipped,
                              uint64_t bytes_done, bool final);

#endif

/* Internal helpers for reporting failures with a detail message. */
#ifndef DC_CORE_ERROR_H
#define DC_CORE_ERROR_H

#include "dodeca/status.h"

#if defined(__GNUC__)
#define DC_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define DC_PRINTF(f, a)
#endif

/* Records the detail (printf-style) for this thread and returns s, so callers can write
 * `return dc_fail(DC_ERR_IO, "open %s: %s", path, strerror(errno));`. */
dc_status dc_fail(dc_status s, const char *fmt, ...) DC_PRINTF(2, 3);

/* Prepends "prefix: " to the current detail, to add context while a failure propagates. */
dc_status dc_fail_context(dc_status s, const char *fmt, ...) DC_PRINTF(2, 3);

#endif

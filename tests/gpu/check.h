/* CHECK(cond, fmt, ...) for the GPU test programs: counts the check in `checks` and, when cond is
 * false, the failure in `failures` (both ints the test defines) and prints where and why. */
#ifndef DC_TESTS_GPU_CHECK_H
#define DC_TESTS_GPU_CHECK_H

#include <stdio.h>

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

#endif

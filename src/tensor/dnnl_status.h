/* oneDNN status codes as dodeca errors, shared by the CPU backend's linear layers. */
#ifndef DC_TENSOR_DNNL_STATUS_H
#define DC_TENSOR_DNNL_STATUS_H

#include <oneapi/dnnl/dnnl.h>

#include "core/error.h"

static inline const char *dc_dnnl_status_text(dnnl_status_t s) {
    switch (s) {
    case dnnl_success: return "success";
    case dnnl_out_of_memory: return "out of memory";
    case dnnl_invalid_arguments: return "invalid arguments";
    case dnnl_unimplemented: return "unimplemented";
    case dnnl_iterator_ends: return "iterator ends";
    case dnnl_runtime_error: return "runtime error";
    case dnnl_not_required: return "not required";
    }
    return "unknown";
}

/* Runs a oneDNN call; on failure sets `st` (a dc_status in scope) with the detail naming
 * `what` and jumps to the `done` label. */
#define DNNL_TRY(call, what)                                                                  \
    do {                                                                                      \
        dnnl_status_t dc__s = (call);                                                         \
        if (dc__s != dnnl_success) {                                                          \
            st = dc_fail(dc__s == dnnl_out_of_memory ? DC_ERR_OUT_OF_MEMORY : DC_ERR_INTERNAL, \
                         "oneDNN %s: %s", (what), dc_dnnl_status_text(dc__s));                \
            goto done;                                                                        \
        }                                                                                     \
    } while (0)

#endif

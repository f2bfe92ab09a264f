/* oneDNN status codes as dodeca errors, and the name of the implementation a primitive
 * descriptor chose; shared by the CPU backend's f32 and quantised linear layers. */
#ifndef DC_TENSOR_DNNL_STATUS_H
#define DC_TENSOR_DNNL_STATUS_H

#include <stdio.h>

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

/* Writes the implementation name of `pd` ("gemm:jit", ...; "unknown") into buf. */
static inline void dc_dnnl_impl_name(const_dnnl_primitive_desc_t pd, char *buf, size_t cap) {
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl)
        impl = "unknown";
    snprintf(buf, cap, "%s", impl);
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

/* Running a prepared oneDNN matmul on caller buffers: what the f32 and the quantised linear
 * layers of the CPU backend share. */
#ifndef DC_TENSOR_DNNL_MATMUL_H
#define DC_TENSOR_DNNL_MATMUL_H

#include <stddef.h>

#include <oneapi/dnnl/dnnl.h>

#include "dodeca/status.h"

/* The operands of y[rows, n] = x[rows, k] · W (+ bias). */
typedef struct dc_dnnl_matmul_args {
    size_t rows;
    dnnl_dim_t k, n;
    dnnl_data_type_t sdt;           /* x: dense rows of k */
    const void *x;
    dnnl_data_type_t ddt;           /* y: rows of n with row stride ldd elements */
    dnnl_dim_t ldd;
    void *y;
    const dnnl_memory_desc_t *wmd;  /* W's layout, as the primitive was created with */
    const void *w;
    const float *bias;              /* [n] f32, or NULL */
} dc_dnnl_matmul_args;

/* Executes `prim` (created from `pd` with a user scratchpad, so one primitive serves several
 * threads at once) with a scratchpad allocated for this call, and waits for it. */
dc_status dc_dnnl_matmul_execute(dnnl_engine_t eng, const_dnnl_primitive_desc_t pd,
                                 dnnl_primitive_t prim, const dc_dnnl_matmul_args *a);

#endif

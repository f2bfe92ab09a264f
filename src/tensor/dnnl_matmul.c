/* Running a prepared oneDNN matmul (see dnnl_matmul.h). */
#include "tensor/dnnl_matmul.h"

#include <stdlib.h>

#include "core/error.h"
#include "tensor/dnnl_status.h"

dc_status dc_dnnl_matmul_execute(dnnl_engine_t eng, const_dnnl_primitive_desc_t pd,
                                 dnnl_primitive_t prim, const dc_dnnl_matmul_args *a) {
    dc_status st = DC_OK;
    dnnl_memory_t ma = NULL, mw = NULL, mb = NULL, mc = NULL, msp = NULL;
    dnnl_stream_t stream = NULL;
    void *scratch = NULL;
    dnnl_memory_desc_t amd, cmd, bmd;
    dnnl_dims_t ad = {(dnnl_dim_t)a->rows, a->k}, cd = {(dnnl_dim_t)a->rows, a->n},
                cs = {a->ldd, 1}, bd = {1, a->n};
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&amd, 2, ad, a->sdt, dnnl_ab), "src descriptor");
    DNNL_TRY(dnnl_memory_desc_init_by_strides(&cmd, 2, cd, a->ddt, cs), "dst descriptor");
    DNNL_TRY(dnnl_memory_create(&ma, &amd, eng, (void *)a->x), "src memory");
    DNNL_TRY(dnnl_memory_create(&mc, &cmd, eng, a->y), "dst memory");
    DNNL_TRY(dnnl_memory_create(&mw, a->wmd, eng, (void *)a->w), "weights memory");
    dnnl_exec_arg_t args[5];
    int nargs = 0;
    args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, ma};
    args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, mw};
    args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_DST, mc};
    if (a->bias) {
        DNNL_TRY(dnnl_memory_desc_init_by_tag(&bmd, 2, bd, dnnl_f32, dnnl_ab), "bias descriptor");
        DNNL_TRY(dnnl_memory_create(&mb, &bmd, eng, (void *)a->bias), "bias memory");
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, mb};
    }
    const dnnl_memory_desc_t *spmd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t spbytes = spmd ? dnnl_memory_desc_get_size(spmd) : 0;
    if (spbytes) {
        if (posix_memalign(&scratch, 64, spbytes) != 0) {
            scratch = NULL;
            st = dc_fail(DC_ERR_OUT_OF_MEMORY, "matmul scratchpad of %zu bytes", spbytes);
            goto done;
        }
        DNNL_TRY(dnnl_memory_create(&msp, spmd, eng, scratch), "scratchpad memory");
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, msp};
    }
    DNNL_TRY(dnnl_stream_create(&stream, eng, dnnl_stream_default_flags), "stream");
    DNNL_TRY(dnnl_primitive_execute(prim, stream, nargs, args), "matmul");
    DNNL_TRY(dnnl_stream_wait(stream), "matmul");
done:
    if (stream) dnnl_stream_destroy(stream);
    if (msp) dnnl_memory_destroy(msp);
    free(scratch);
    if (ma) dnnl_memory_destroy(ma);
    if (mw) dnnl_memory_destroy(mw);
    if (mb) dnnl_memory_destroy(mb);
    if (mc) dnnl_memory_destroy(mc);
    return st;
}

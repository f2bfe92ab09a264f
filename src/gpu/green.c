/* SM partitioning with green contexts (driver API, resolved at run time through the runtime's
 * cudaGetDriverEntryPointByVersion so the library needs no libcuda link and loads on drivers
 * without the calls). Steps: the device's SM resource → cuDevSmResourceSplitByCount → one
 * descriptor and one green context per group → a non-blocking stream in each. Any failure
 * undoes what was made and reports one partition (the single-context fallback) with the reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda.h>

#include "gpu/cu_internal.h"

#define DC_GREEN_MAX 16

struct dc_cu_green {
    uint32_t n;
    CUgreenCtx ctx[DC_GREEN_MAX];
    CUstream stream[DC_GREEN_MAX];
};

typedef CUresult (*get_res_fn)(CUdevice, CUdevResource *, CUdevResourceType);
typedef CUresult (*split_fn)(CUdevResource *, unsigned *, const CUdevResource *, CUdevResource *,
                             unsigned, unsigned);
typedef CUresult (*gen_desc_fn)(CUdevResourceDesc *, CUdevResource *, unsigned);
typedef CUresult (*create_fn)(CUgreenCtx *, CUdevResourceDesc, CUdevice, unsigned);
typedef CUresult (*destroy_fn)(CUgreenCtx);
typedef CUresult (*stream_fn)(CUstream *, CUgreenCtx, unsigned, int);
typedef CUresult (*stream_destroy_fn)(CUstream);

static void *entry(const char *name, unsigned version) {
    void *fn = NULL;
    enum cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
    if (cudaGetDriverEntryPointByVersion(name, &fn, version, cudaEnableDefault, &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess) {
        (void)cudaGetLastError();
        return NULL;
    }
    return fn;
}

#define RESOLVE(var, type, name, ver)                                                          \
    type var = NULL;                                                                           \
    do {                                                                                       \
        void *p_ = entry(name, ver);                                                           \
        memcpy(&var, &p_, sizeof p_);                                                          \
    } while (0)

static void fallback(dc_cuda_partition *out, const char *why, int sms) {
    memset(out, 0, sizeof *out);
    out->n = 1;
    out->green = false;
    out->sm_count[0] = sms > 0 ? (uint32_t)sms : 0;
    snprintf(out->reason, sizeof out->reason, "%s", why);
}

static void destroy_all(struct dc_cu_green *g) {
    RESOLVE(gdestroy, destroy_fn, "cuGreenCtxDestroy", 12040);
    RESOLVE(sdestroy, stream_destroy_fn, "cuStreamDestroy", 12000);
    for (uint32_t i = 0; i < g->n; i++) {
        if (g->stream[i] && sdestroy) sdestroy(g->stream[i]);
        if (g->ctx[i] && gdestroy) gdestroy(g->ctx[i]);
    }
    g->n = 0;
}

void dc_cu_green_destroy(dc_cu_backend *cb) {
    if (!cb->green) return;
    destroy_all(cb->green);
    free(cb->green);
    cb->green = NULL;
}

dc_status dc_cu_green_split(dc_backend *be, uint32_t want, uint32_t min_sms,
                            dc_cuda_partition *out) {
    dc_cu_backend *cb = dc_cu_of(be);
    dc_status st = dc_cu_enter(cb);
    if (st) return st;
    int sms = 0;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, cb->device);
    if (want <= 1) {
        fallback(out, "one partition requested", sms);
        return DC_OK;
    }
    if (want > DC_GREEN_MAX) want = DC_GREEN_MAX;
    if (cb->green) dc_cu_green_destroy(cb);
    RESOLVE(get_res, get_res_fn, "cuDeviceGetDevResource", 12040);
    RESOLVE(split, split_fn, "cuDevSmResourceSplitByCount", 12040);
    RESOLVE(gen, gen_desc_fn, "cuDevResourceGenerateDesc", 12040);
    RESOLVE(create, create_fn, "cuGreenCtxCreate", 12040);
    RESOLVE(mkstream, stream_fn, "cuGreenCtxStreamCreate", 12050);
    if (!get_res || !split || !gen || !create || !mkstream) {
        fallback(out, "the driver has no green-context calls", sms);
        return DC_OK;
    }
    CUdevResource whole, groups[DC_GREEN_MAX], rest;
    memset(&whole, 0, sizeof whole);
    memset(groups, 0, sizeof groups);
    memset(&rest, 0, sizeof rest);
    CUresult r = get_res((CUdevice)cb->device, &whole, CU_DEV_RESOURCE_TYPE_SM);
    if (r != CUDA_SUCCESS) {
        fallback(out, "cuDeviceGetDevResource failed", sms);
        return DC_OK;
    }
    unsigned n = want;
    r = split(groups, &n, &whole, &rest, 0, min_sms ? min_sms : 8);
    if (r != CUDA_SUCCESS || n == 0) {
        char why[96];
        snprintf(why, sizeof why, "cuDevSmResourceSplitByCount: error %d", (int)r);
        fallback(out, why, sms);
        return DC_OK;
    }
    struct dc_cu_green *g = calloc(1, sizeof *g);
    if (!g) return dc_cu_fail(DC_ERR_OUT_OF_MEMORY, "green contexts");
    for (unsigned i = 0; i < n; i++) {
        CUdevResourceDesc desc = NULL;
        r = gen(&desc, &groups[i], 1);
        if (r == CUDA_SUCCESS)
            r = create(&g->ctx[i], desc, (CUdevice)cb->device, CU_GREEN_CTX_DEFAULT_STREAM);
        if (r == CUDA_SUCCESS) {
            g->n = i + 1;
            r = mkstream(&g->stream[i], g->ctx[i], CU_STREAM_NON_BLOCKING, 0);
        }
        if (r != CUDA_SUCCESS) {
            char why[96];
            snprintf(why, sizeof why, "green context %u: error %d", i, (int)r);
            destroy_all(g);
            free(g);
            fallback(out, why, sms);
            return DC_OK;
        }
    }
    cb->green = g;
    memset(out, 0, sizeof *out);
    out->n = n;
    out->green = true;
    for (unsigned i = 0; i < n; i++) out->sm_count[i] = groups[i].sm.smCount;
    return DC_OK;
}

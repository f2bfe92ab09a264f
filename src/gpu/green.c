/* SM partitioning with green contexts (driver API, resolved at run time through the runtime's
 * cudaGetDriverEntryPointByVersion so the library needs no libcuda link and loads on drivers
 * without the calls). Steps, once per device: the device's SM resource →
 * cuDevSmResourceSplitByCount → one descriptor and one green context per group. Each stream
 * context made after that gets a non-blocking stream on one partition (cuGreenCtxStreamCreate;
 * cuda_backend.c deals them out in turn). Any failure undoes what was made and reports one
 * partition (ordinary streams) with the reason, which stream_info hands on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda.h>

#include "gpu/cu_internal.h"

#define DC_GREEN_MAX 16

struct dc_cu_green {
    uint32_t n;
    CUgreenCtx ctx[DC_GREEN_MAX];
    uint32_t sms[DC_GREEN_MAX];
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

static void describe(const struct dc_cu_green *g, dc_cuda_partition *out) {
    memset(out, 0, sizeof *out);
    out->n = g->n;
    out->green = true;
    for (uint32_t i = 0; i < g->n; i++) out->sm_count[i] = g->sms[i];
}

static void destroy_all(struct dc_cu_green *g) {
    RESOLVE(gdestroy, destroy_fn, "cuGreenCtxDestroy", 12040);
    for (uint32_t i = 0; i < g->n; i++)
        if (g->ctx[i] && gdestroy) gdestroy(g->ctx[i]);
    g->n = 0;
}

void dc_cu_green_destroy(dc_cu_device *dev) {
    if (!dev->green) return;
    destroy_all(dev->green);
    free(dev->green);
    dev->green = NULL;
}

uint32_t dc_cu_green_count(const dc_cu_device *dev) { return dev->green ? dev->green->n : 0; }

uint32_t dc_cu_green_sms(const dc_cu_device *dev, uint32_t partition) {
    return dev->green && partition < dev->green->n ? dev->green->sms[partition] : 0;
}

dc_status dc_cu_green_stream(dc_cu_device *dev, uint32_t partition, cudaStream_t *out) {
    *out = NULL;
    RESOLVE(mkstream, stream_fn, "cuGreenCtxStreamCreate", 12050);
    if (!dev->green || partition >= dev->green->n || !mkstream)
        return dc_cu_fail(DC_ERR_GPU, "green context %u: no such partition", partition);
    CUstream s = NULL;
    CUresult r = mkstream(&s, dev->green->ctx[partition], CU_STREAM_NON_BLOCKING, 0);
    if (r != CUDA_SUCCESS)
        return dc_cu_fail(DC_ERR_GPU, "cuGreenCtxStreamCreate on partition %u: error %d",
                          partition, (int)r);
    *out = (cudaStream_t)s; /* the runtime takes driver streams as they are */
    return DC_OK;
}

void dc_cu_green_stream_destroy(cudaStream_t s) {
    RESOLVE(sdestroy, stream_destroy_fn, "cuStreamDestroy", 12000);
    if (s && sdestroy) sdestroy((CUstream)s);
}

void dc_cu_green_make(dc_cu_device *dev, uint32_t want, uint32_t min_sms, dc_cuda_partition *out) {
    const int sms = dev->sm_count;
    dev->green_reason[0] = '\0';
    if (dev->green) {
        describe(dev->green, out);
        return;
    }
#define GIVE_UP(...)                                                                           \
    do {                                                                                       \
        snprintf(dev->green_reason, sizeof dev->green_reason, __VA_ARGS__);                    \
        fallback(out, dev->green_reason, sms);                                                 \
        return;                                                                                \
    } while (0)
    if (want <= 1) GIVE_UP("one partition requested");
    if (want > DC_GREEN_MAX) want = DC_GREEN_MAX;
    RESOLVE(get_res, get_res_fn, "cuDeviceGetDevResource", 12040);
    RESOLVE(split, split_fn, "cuDevSmResourceSplitByCount", 12040);
    RESOLVE(gen, gen_desc_fn, "cuDevResourceGenerateDesc", 12040);
    RESOLVE(create, create_fn, "cuGreenCtxCreate", 12040);
    RESOLVE(mkstream, stream_fn, "cuGreenCtxStreamCreate", 12050);
    if (!get_res || !split || !gen || !create || !mkstream)
        GIVE_UP("the driver has no green-context calls");
    CUdevResource whole, groups[DC_GREEN_MAX], rest;
    memset(&whole, 0, sizeof whole);
    memset(groups, 0, sizeof groups);
    memset(&rest, 0, sizeof rest);
    CUresult r = get_res((CUdevice)dev->device, &whole, CU_DEV_RESOURCE_TYPE_SM);
    if (r != CUDA_SUCCESS) GIVE_UP("cuDeviceGetDevResource: error %d (MIG?)", (int)r);
    unsigned n = want;
    r = split(groups, &n, &whole, &rest, 0, min_sms ? min_sms : 8);
    if (r != CUDA_SUCCESS || n == 0)
        GIVE_UP("cuDevSmResourceSplitByCount(%u x %u SMs): error %d", want, min_sms ? min_sms : 8,
                (int)r);
    if (n < 2) GIVE_UP("only one partition of %u SMs fits", min_sms ? min_sms : 8);
    struct dc_cu_green *g = calloc(1, sizeof *g);
    if (!g) GIVE_UP("out of host memory");
    for (unsigned i = 0; i < n; i++) {
        CUdevResourceDesc desc = NULL;
        r = gen(&desc, &groups[i], 1);
        if (r == CUDA_SUCCESS)
            r = create(&g->ctx[i], desc, (CUdevice)dev->device, CU_GREEN_CTX_DEFAULT_STREAM);
        if (r != CUDA_SUCCESS) {
            destroy_all(g);
            free(g);
            GIVE_UP("green context %u: error %d", i, (int)r);
        }
        g->n = i + 1;
        g->sms[i] = groups[i].sm.smCount;
    }
#undef GIVE_UP
    dev->green = g;
    describe(g, out);
}

dc_status dc_cu_green_split(dc_backend *be, uint32_t want, uint32_t min_sms,
                            dc_cuda_partition *out) {
    dc_cu_backend *cb = dc_cu_of(be);
    dc_status st = dc_cu_enter(cb);
    if (st) return st;
    pthread_mutex_lock(&cb->dev->mu);
    dc_cu_green_make(cb->dev, want, min_sms, out);
    pthread_mutex_unlock(&cb->dev->mu);
    return DC_OK;
}

/* Where the fusion experts run: fusion.device (cpu, auto, cuda:N) → a backend. On CUDA that is
 * a stream context of its own over the device's shared pool (dc_backend_cuda_acquire). */
#include <stdio.h>

#include "core/error.h"
#include "fusion/internal.h"
#include "tensor/backend_loader.h"

static dc_status open_cuda(const dc_fusion_options *o, uint32_t dev, dc_backend **out, char *desc,
                           size_t cap) {
    dc_cuda_device_info info;
    dc_status st = dc_cuda_device_query((int)dev, &info);
    if (st != DC_OK) return st;
    double frac = o->gpu_memory_fraction > 0.0 && o->gpu_memory_fraction <= 1.0
                      ? o->gpu_memory_fraction
                      : 0.9;
    dc_cuda_options co = {.device = (int)dev,
                          .pool_limit = (size_t)((double)info.total_bytes * frac),
                          .allow_tf32 = false};
    if ((st = dc_backend_cuda_acquire(&co, out)) != DC_OK) return st;
    snprintf(desc, cap, "cuda:%u (%s)", dev, info.name);
    return DC_OK;
}

dc_status dc_fusion_backend_open(const dc_fusion_options *o, dc_backend **out, bool *cuda,
                                 char *desc, size_t cap) {
    *out = NULL;
    *cuda = false;
    char why[192] = "";
    if (o->device.kind == DC_DEVICE_CUDA) {
        const uint32_t dev = o->device.index;
        dc_status st = dc_cuda_check((int)dev, why, sizeof why);
        if (st == DC_OK) st = open_cuda(o, dev, out, desc, cap);
        if (st != DC_OK)
            return dc_fail(DC_ERR_GPU, "fusion.device = \"cuda:%u\": %s", dev,
                           why[0] ? why : dc_error_detail());
        *cuda = true;
        return DC_OK;
    }
    if (o->device.kind == DC_DEVICE_AUTO) {
        if (!o->gpu_enabled) {
            snprintf(why, sizeof why, "gpu.enabled = false");
        } else if (dc_cuda_check((int)o->gpu_device, why, sizeof why) == DC_OK) {
            if (open_cuda(o, o->gpu_device, out, desc, cap) == DC_OK) {
                *cuda = true;
                return DC_OK;
            }
            snprintf(why, sizeof why, "%s", dc_error_detail());
        }
        dc_error_clear(); /* auto falls back; desc keeps the reason */
        snprintf(desc, cap, "cpu (auto: %s)", why);
    } else {
        snprintf(desc, cap, "cpu");
    }
    return dc_backend_cpu_create(NULL, out);
}

void dc_fusion_backend_close(dc_backend *be, bool cuda) {
    if (!be) return;
    if (cuda) dc_backend_cuda_release(be);
    else dc_backend_destroy(be);
}

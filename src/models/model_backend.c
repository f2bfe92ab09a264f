/* Backend choice and host ↔ backend moves for the pretrained models (model_backend.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "models/model_backend.h"
#include "tensor/backend_loader.h"

bool dc_be_is_host(const dc_backend *be) {
    return be && be->ops && be->ops->name && !strcmp(be->ops->name, "cpu");
}

dc_status dc_model_backend_open(const dc_pretrained_options *o, dc_backend **out, char *desc,
                                size_t cap) {
    *out = NULL;
    const dc_pretrained_device *d = &o->device;
    if (d->kind != DC_DEVICE_CUDA) {
        dc_cpu_backend_options bo = {.threads = o->threads};
        if (desc && cap) {
            if (d->note[0]) snprintf(desc, cap, "cpu (auto: %s)", d->note);
            else snprintf(desc, cap, "cpu");
        }
        return dc_backend_cpu_create(&bo, out);
    }
    dc_cuda_device_info info;
    dc_status st = dc_cuda_device_query((int)d->index, &info);
    if (st != DC_OK) return dc_fail_context(st, "cuda:%u", d->index);
    double frac = d->memory_fraction > 0 && d->memory_fraction <= 1 ? d->memory_fraction : 0.9;
    dc_cuda_options co = {.device = (int)d->index,
                          .pool_limit = (size_t)((double)info.total_bytes * frac),
                          .allow_tf32 = d->allow_tf32,
                          .green_partitions = d->green_partitions,
                          .graphs = d->graphs,
                          .basic_attention = d->basic_attention};
    if ((st = dc_backend_cuda_acquire(&co, out)) != DC_OK)
        return dc_fail_context(st, "cuda:%u", d->index);
    if (desc && cap) {
        /* the model's own stream: on which SM partition, or why on none when one was asked for */
        char where[192] = "";
        dc_cuda_stream_info si;
        if (dc_backend_cuda_stream_info(*out, &si) == DC_OK) {
            if (si.green)
                snprintf(where, sizeof where, ", green context %u of %u: %u SMs", si.partition + 1,
                         si.n_partitions, si.sm_count);
            else if (d->green_partitions >= 2 && si.reason[0])
                snprintf(where, sizeof where, "; no green contexts: %.150s", si.reason);
        }
        snprintf(desc, cap, "cuda:%u (%s, %s%s%s)", d->index, info.name,
                 dc_weight_format_name(o->weights), d->allow_tf32 ? ", tf32" : "", where);
    }
    return DC_OK;
}

void dc_model_backend_close(dc_backend *be) {
    if (!be) return;
    if (dc_backend_is_cuda(be)) dc_backend_cuda_release(be);
    else dc_backend_destroy(be);
}

/* "418.0 MB read by cuFile (GDS) at 9.8 GB/s"; "" for no bytes */
static void path_desc(char *buf, size_t cap, uint64_t bytes, double seconds, const char *how) {
    buf[0] = '\0';
    if (bytes)
        snprintf(buf, cap, "%.1f MB read by %s at %.3g GB/s", (double)bytes / 1e6, how,
                 seconds > 0 ? (double)bytes / seconds / 1e9 : 0.0);
}

void dc_file_stats_desc(const dc_cuda_file_stats *s, char *buf, size_t cap) {
    char g[96], p[96], why[160] = "";
    path_desc(g, sizeof g, s->gds_bytes, s->gds_seconds, "cuFile (GDS)");
    path_desc(p, sizeof p, s->posix_bytes, s->posix_seconds, "pread+copy");
    if (p[0] && s->gds_reason[0]) snprintf(why, sizeof why, " (GDS: %s)", s->gds_reason);
    if (!cap) return;
    buf[0] = '\0';
    if (g[0] || p[0])
        snprintf(buf, cap, "weights %s%s%s%s", g, g[0] && p[0] ? ", " : "", p, why);
}

void dc_model_backend_note_reads(dc_backend *be, char *desc, size_t cap) {
    dc_cuda_file_stats fs;
    if (!dc_backend_is_cuda(be) || dc_backend_cuda_file_stats(be, &fs) != DC_OK) return;
    char note[256];
    dc_file_stats_desc(&fs, note, sizeof note);
    size_t n = strlen(desc);
    if (note[0] && n < cap) snprintf(desc + n, cap - n, "; %s", note);
}

dc_status dc_be_in(dc_backend *be, const void *host, size_t bytes, void **dev) {
    if (dc_be_is_host(be)) {
        *dev = (void *)(uintptr_t)host; /* the CPU backend reads host memory as it is */
        return DC_OK;
    }
    *dev = NULL;
    dc_status st = be->ops->alloc(be, bytes ? bytes : 1, dev);
    if (st == DC_OK && bytes) st = be->ops->upload(be, *dev, host, bytes);
    if (st != DC_OK && *dev) {
        be->ops->release(be, *dev);
        *dev = NULL;
    }
    return st;
}

dc_status dc_be_out(dc_backend *be, void *host, size_t bytes, void **dev) {
    if (dc_be_is_host(be)) {
        *dev = host;
        return DC_OK;
    }
    *dev = NULL;
    return be->ops->alloc(be, bytes ? bytes : 1, dev);
}

dc_status dc_be_fetch(dc_backend *be, void *host, const void *dev, size_t bytes) {
    if (host == dev || !bytes) return DC_OK;
    return be->ops->download(be, host, dev, bytes);
}

void dc_be_drop(dc_backend *be, void *dev, const void *host) {
    if (dev && dev != host) be->ops->release(be, dev);
}

dc_status dc_be_param(dc_backend *be, float **p, size_t n) {
    if (!*p || dc_be_is_host(be)) return DC_OK;
    void *d = NULL;
    dc_status st = dc_be_in(be, *p, n * sizeof **p, &d);
    free(*p); /* never half-moved: either a backend copy or nothing */
    *p = st == DC_OK ? d : NULL;
    return st;
}

void dc_be_param_free(dc_backend *be, float *p) {
    if (!p) return;
    if (dc_be_is_host(be)) free(p);
    else be->ops->release(be, p);
}

dc_status dc_be_params_move(dc_backend *be, void *model, dc_be_param_iter at) {
    dc_status st = DC_OK;
    float **p = NULL;
    size_t n = 0;
    for (size_t i = 0; at(model, i, &p, &n); i++) {
        if (st == DC_OK) {
            st = dc_be_param(be, p, n);
        } else {
            free(*p);
            *p = NULL;
        }
    }
    return st;
}

void dc_be_params_free(dc_backend *be, void *model, dc_be_param_iter at, bool moved) {
    float **p = NULL;
    size_t n = 0;
    for (size_t i = 0; at(model, i, &p, &n); i++) {
        if (moved) dc_be_param_free(be, *p);
        else free(*p);
    }
}

/* ---- placement from the configuration ---- */

static dc_status weights_for(dc_device_kind kind, dc_quantization q, dc_weight_format *out) {
    if (kind != DC_DEVICE_CUDA) return dc_pretrained_weight_format(q, out);
    switch (q) {
    case DC_QUANTIZATION_NONE: *out = DC_WEIGHTS_F32; return DC_OK;
    case DC_QUANTIZATION_BF16: *out = DC_WEIGHTS_BF16; return DC_OK;
    case DC_QUANTIZATION_FP16: *out = DC_WEIGHTS_F16; return DC_OK;
    case DC_QUANTIZATION_FP8: *out = DC_WEIGHTS_FP8_E4M3; return DC_OK;
    case DC_QUANTIZATION_NVFP4: *out = DC_WEIGHTS_NVFP4; return DC_OK;
    case DC_QUANTIZATION_MXFP4: *out = DC_WEIGHTS_MXFP4; return DC_OK;
    default: break;
    }
    return dc_fail(DC_ERR_UNSUPPORTED_FORMAT,
                   "quantization \"%s\": the CUDA backend runs none (fp32), bf16, fp16, fp8, "
                   "nvfp4 and mxfp4",
                   dc_quantization_name(q));
}

dc_status dc_pretrained_place(dc_model_id id, const struct dc_model_config *mc,
                              const dc_gpu_config *gpu, dc_pretrained_options *o) {
    const dc_model_info *info = dc_model_info_get(id);
    const char *name = info ? info->name : "?";
    const dc_device want = mc ? mc->device : (dc_device){DC_DEVICE_AUTO, 0};
    const dc_quantization q = mc ? mc->quantization : DC_QUANTIZATION_NONE;
    memset(&o->device, 0, sizeof o->device);
    o->device.kind = DC_DEVICE_CPU;
    char why[192] = "";
    dc_weight_format wf = DC_WEIGHTS_F32;
    if (want.kind == DC_DEVICE_CUDA) {
        if (dc_cuda_check((int)want.index, why, sizeof why) != DC_OK)
            return dc_fail(DC_ERR_GPU, "models.%s.device = cuda:%u: %s", name, want.index, why);
        o->device.kind = DC_DEVICE_CUDA;
        o->device.index = want.index;
    } else if (want.kind == DC_DEVICE_AUTO) {
        const uint32_t dev = gpu && gpu->device_count ? gpu->device_ids[0] : 0;
        if (!gpu || !gpu->enabled) {
            snprintf(o->device.note, sizeof o->device.note, "gpu.enabled = false");
        } else if (weights_for(DC_DEVICE_CUDA, q, &wf) != DC_OK) {
            snprintf(o->device.note, sizeof o->device.note,
                     "quantization %s runs on the CPU only", dc_quantization_name(q));
        } else if (dc_cuda_check((int)dev, why, sizeof why) != DC_OK) {
            snprintf(o->device.note, sizeof o->device.note, "%s", why);
        } else {
            o->device.kind = DC_DEVICE_CUDA;
            o->device.index = dev;
        }
        dc_error_clear(); /* auto falls back silently; the note keeps the reason */
    }
    if (o->device.kind == DC_DEVICE_CUDA) {
        /* TF32 would cost the default its agreement with the CPU (docs/gpu.md) */
        o->device.allow_tf32 = false;
        o->device.memory_fraction = gpu && gpu->memory_fraction > 0 ? gpu->memory_fraction : 0.9;
        o->device.green_partitions = gpu && gpu->green_contexts ? gpu->green_partitions : 0;
        o->device.host_weights = gpu && !gpu->direct_weights;
        o->device.graphs = gpu && gpu->use_cuda_graphs;
        o->device.basic_attention = mc && !mc->use_flash_attention;
    }
    if (weights_for(o->device.kind, q, &wf) != DC_OK) {
        if (o->device.kind == DC_DEVICE_CUDA)
            return dc_fail(DC_ERR_UNSUPPORTED_FORMAT,
                           "models.%s.quantization = %s: the CUDA backend runs none, bf16, fp16, "
                           "fp8, nvfp4 and mxfp4 (int8 needs device = \"cpu\")",
                           name, dc_quantization_name(q));
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT,
                       "models.%s.quantization = %s: the CPU backend runs none, bf16 and int8",
                       name, dc_quantization_name(q));
    }
    o->weights = wf;
    return DC_OK;
}

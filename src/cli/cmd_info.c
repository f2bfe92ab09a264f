/* `dodeca info`: version, what the CPU offers (kernel ISA, oneDNN, the f32 matmul implementation
 * a layer gets), which backend a default run would use and why, and the GPUs when there are any. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "cli/commands.h"
#include "dodeca/dodeca.h"
#include "tensor/backend_loader.h"

static void print_cpu(void) {
    const dnnl_version_t *v = dnnl_version();
    printf("cpu:\n  kernel isa: %s\n", dc_cpu_kernel_isa());
    printf("  onednn: %d.%d.%d (%s)\n", v->major, v->minor, v->patch, v->hash ? v->hash : "");
    /* the f32 matmul a BERT-base-sized layer gets (DC_CPU_GEMM: ours or oneDNN's choice) */
    dc_backend *be = NULL;
    dc_linear *l = NULL;
    const uint32_t n = 768, k = 768;
    float *w = calloc((size_t)n * k, sizeof *w);
    if (w && dc_backend_cpu_create(NULL, &be) == DC_OK &&
        be->ops->linear_create(be, w, NULL, n, k, DC_WEIGHTS_F32, &l) == DC_OK)
        printf("  f32 matmul (%ux%u): %s\n", n, k, dc_cpu_linear_impl(l));
    else
        printf("  f32 matmul: unavailable (%s)\n", dc_error_detail());
    if (l) be->ops->linear_destroy(be, l);
    dc_backend_destroy(be);
    free(w);
}

static void print_gpus(const dc_cuda_api *api) {
    int n = 0;
    char why[160] = "";
    printf("cuda:\n  library: %s (%s)\n", dc_cuda_library_path(), api->build);
    if (api->probe(dc_cuda_host_table(), &n, why, sizeof why) != DC_OK) {
        printf("  devices: none (%s)\n", why);
        return;
    }
    for (int d = 0; d < n; d++) {
        dc_cuda_device_info info;
        if (api->device_info(d, &info) != DC_OK) {
            printf("  device %d: %s\n", d, dc_error_detail());
            continue;
        }
        printf("  device %d: %s, compute capability %d.%d, %d SMs, %.1f GiB (%.1f GiB free), "
               "driver %d.%d, runtime %d.%d\n",
               d, info.name, info.cc_major, info.cc_minor, info.sm_count,
               (double)info.total_bytes / (1u << 30), (double)info.free_bytes / (1u << 30),
               info.driver_version / 1000, info.driver_version % 1000 / 10,
               info.runtime_version / 1000, info.runtime_version % 1000 / 10);
    }
}

int dc_cmd_info(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: dodeca info\n\nPrints the version, the CPU kernels, the backend a run "
                   "would use (and why), and the CUDA devices.\nDC_CUDA_LIBRARY=PATH names the "
                   "CUDA backend library explicitly.\n");
            return DC_EXIT_OK;
        }
        fprintf(stderr, "dodeca info: unknown option %s\n", argv[i]);
        return DC_EXIT_USAGE;
    }
    printf("dodeca %s\n", dc_version());
    print_cpu();
    const dc_cuda_api *api = NULL;
    if (dc_cuda_load(&api) == DC_OK) print_gpus(api);
    else printf("cuda:\n  %s\n", dc_error_detail());

    dc_backend *be = NULL;
    const char *active = "cpu";
    char why[512] = "";
    dc_status st = dc_backend_select("auto", NULL, NULL, &be, &active, why, sizeof why);
    if (st != DC_OK) {
        fprintf(stderr, "dodeca info: no backend: %s\n", dc_error_detail());
        return DC_EXIT_FAILURE;
    }
    if (why[0]) printf("backend: %s (%s)\n", active, why);
    else printf("backend: %s\n", active);
    dc_backend_destroy(be);
    return DC_EXIT_OK;
}

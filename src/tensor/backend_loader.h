/* Choosing a backend at run time: the CPU backend, or the CUDA backend from libdodeca_cuda.so
 * loaded with dlopen (the library itself never links CUDA). When the CUDA library, the driver or
 * a device is missing, "auto" falls back to the CPU and says why. */
#ifndef DC_TENSOR_BACKEND_LOADER_H
#define DC_TENSOR_BACKEND_LOADER_H

#include "gpu/cuda_api.h"
#include "tensor/backend.h"

/* Loads the CUDA library once per process (later calls return the same result). Searched:
 * $DC_CUDA_LIBRARY (a path), next to the executable or libdodeca.so, in ../lib from there, then
 * the dynamic loader's path. DC_ERR_GPU with "cuda: libdodeca_cuda.so not found (...)" etc. */
dc_status dc_cuda_load(const dc_cuda_api **api);
/* What the CUDA library is handed (the host's dc_fail), for direct calls into its table. */
const dc_cuda_host *dc_cuda_host_table(void);
/* Where the library was found ("" before a successful load). */
const char *dc_cuda_library_path(void);

/* Loads the library, checks driver and device, creates the backend. opt may be NULL. */
dc_status dc_backend_cuda_create(const dc_cuda_options *opt, dc_backend **out);
bool dc_backend_is_cuda(const dc_backend *be);

/* DC_OK when device `device` can be used: the library loads, a driver answers and the
 * ordinal is below the device count. Otherwise DC_ERR_GPU (or DC_ERR_INVALID_ARGUMENT for an
 * ordinal out of range) with the reason both in the error detail and in reason. */
dc_status dc_cuda_check(int device, char *reason, size_t cap);
/* Name and memory of a device (the library must load). */
dc_status dc_cuda_device_query(int device, dc_cuda_device_info *out);

/* A stream context on device opt->device for one user (a model, the fusion): its own stream
 * and cuBLAS handles, so users in different threads run side by side, and the pool of that
 * device, which every context there shares (one memory cap per device). The first acquire of
 * a device makes its state with its options (pool_limit, green_partitions); later ones share
 * it and keep their own allow_tf32. The device's state goes with its last release. */
dc_status dc_backend_cuda_acquire(const dc_cuda_options *opt, dc_backend **out);
void dc_backend_cuda_release(dc_backend *be);
/* Where a CUDA backend's stream runs (green partition or not, and why not). */
dc_status dc_backend_cuda_stream_info(dc_backend *be, dc_cuda_stream_info *out);
/* What a CUDA backend's stream context read from files (weights), by path. */
dc_status dc_backend_cuda_file_stats(dc_backend *be, dc_cuda_file_stats *out);
/* What a CUDA backend's stream context recorded and replayed as graphs. */
dc_status dc_backend_cuda_graph_stats(dc_backend *be, dc_cuda_graph_stats *out);

/* want: "cpu", "cuda" or "auto" (NULL = "auto"). "cuda" fails when CUDA is unusable; "auto"
 * takes the CPU then. *active is "cpu" or "cuda"; reason (may be NULL) gets why CUDA was not
 * used ("" when it was, or when "cpu" was asked for). */
dc_status dc_backend_select(const char *want, const dc_cpu_backend_options *cpu,
                            const dc_cuda_options *cuda, dc_backend **out, const char **active,
                            char *reason, size_t cap);

#endif

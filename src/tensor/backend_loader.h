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

/* The backend of one device shared by every model on it (created by the first acquire with
 * its options, destroyed by the last release). Sharing is safe: the backend's pool and cuBLAS
 * handles are locked, and every op runs on its one stream, in the order the threads enqueue.
 * Backends are keyed by (device, allow_tf32); the pool limit of the first acquire holds. */
dc_status dc_backend_cuda_acquire(const dc_cuda_options *opt, dc_backend **out);
void dc_backend_cuda_release(dc_backend *be);

/* want: "cpu", "cuda" or "auto" (NULL = "auto"). "cuda" fails when CUDA is unusable; "auto"
 * takes the CPU then. *active is "cpu" or "cuda"; reason (may be NULL) gets why CUDA was not
 * used ("" when it was, or when "cpu" was asked for). */
dc_status dc_backend_select(const char *want, const dc_cpu_backend_options *cpu,
                            const dc_cuda_options *cuda, dc_backend **out, const char **active,
                            char *reason, size_t cap);

#endif

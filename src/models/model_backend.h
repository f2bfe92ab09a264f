/* The backend a pretrained model runs on, and the host ↔ backend moves its code makes.
 *
 * Every pointer a backend op takes or fills is backend memory (tensor/backend.h); on the CUDA
 * backend that is device memory, which host code must never read or write. Model code keeps
 * host copies for what the host computes (pooling, row selection, masks) and moves data with
 * the helpers below. On the CPU backend backend memory is host memory: the helpers then hand
 * the host pointer back and copy nothing, so the CPU path costs what it did. Internal header. */
#ifndef DC_MODELS_MODEL_BACKEND_H
#define DC_MODELS_MODEL_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include "gpu/cuda_api.h"
#include "models/pretrained.h"
#include "tensor/backend.h"

/* The CPU backend for o->device.kind cpu/auto (o->threads), or a stream context of its own on
 * CUDA device o->device.index, whose pool every model there shares (limit
 * o->device.memory_fraction of its memory; green partitions per o->device.green_partitions).
 * desc (cap bytes) says which: see dc_pretrained_backend_desc. */
dc_status dc_model_backend_open(const dc_pretrained_options *o, dc_backend **out, char *desc,
                                size_t cap);
void dc_model_backend_close(dc_backend *be);
/* What a CUDA stream context read from files, for a person: "weights 418.0 MB read by
 * pread+copy at 2.1 GB/s (GDS: libcufile.so.0 not found)", "weights 418.0 MB read by cuFile
 * (GDS) at 9.8 GB/s", or both paths' shares; "" when nothing was read. */
void dc_file_stats_desc(const dc_cuda_file_stats *s, char *buf, size_t cap);
/* Appends "; " and dc_file_stats_desc of be's reads to desc once a model's weights are
 * loaded (nothing on the CPU backend or when the host read every weight). */
void dc_model_backend_note_reads(dc_backend *be, char *desc, size_t cap);

/* true for the CPU backend: backend memory is host memory. */
bool dc_be_is_host(const dc_backend *be);

/* Backend memory holding a copy of `bytes` of host data; on the CPU *dev = host (no copy).
 * Give it back with dc_be_drop(be, *dev, host). */
dc_status dc_be_in(dc_backend *be, const void *host, size_t bytes, void **dev);
/* Backend memory for an op to write `bytes` into, later fetched into `host`; on the CPU
 * *dev = host. */
dc_status dc_be_out(dc_backend *be, void *host, size_t bytes, void **dev);
/* host ← dev (nothing when they are the same memory). */
dc_status dc_be_fetch(dc_backend *be, void *host, const void *dev, size_t bytes);
/* Releases what dc_be_in / dc_be_out allocated (nothing when dev is host; NULL is fine). */
void dc_be_drop(dc_backend *be, void *dev, const void *host);

/* Moves a malloc'ed host parameter array (n floats) into backend memory once, at load: *p is
 * replaced by the backend copy and the host array freed. Unchanged on the CPU. Free either
 * kind with dc_be_param_free. */
dc_status dc_be_param(dc_backend *be, float **p, size_t n);
void dc_be_param_free(dc_backend *be, float *p);

/* A model's parameter arrays one by one: the i-th array's address and length in floats; false
 * past the last. */
typedef bool (*dc_be_param_iter)(void *model, size_t i, float ***p, size_t *n);
/* dc_be_param over every array of the model; afterwards every pointer is backend memory or
 * NULL, even on failure (the arrays not yet moved are freed). */
dc_status dc_be_params_move(dc_backend *be, void *model, dc_be_param_iter at);
/* Frees every array: backend memory once moved, host memory before. */
void dc_be_params_free(dc_backend *be, void *model, dc_be_param_iter at, bool moved);

#endif

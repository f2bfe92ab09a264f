/* A linear layer of a checkpoint onto a backend: through the backend's own file reader where
 * it has one (dc_backend_ops.linear_create_from_file: CUDA reads safetensors weights straight
 * into device memory, docs/gpu.md) and the tensors allow it, else the host reads them as f32
 * and calls linear_create. Both give the same layer. Internal header. */
#ifndef DC_MODELS_LINEAR_LOAD_H
#define DC_MODELS_LINEAR_LOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "io/weights.h"
#include "tensor/backend.h"

/* The layer whose weight is the row-wise stack of the np tensors base.<parts[p]>.weight (parts
 * NULL, np = 1: base.weight), each [n, k] (so np·n outputs, e.g. Q, K and V as one), and whose
 * bias is the stack of the .bias tensors (has_bias false: none). Names are looked up under
 * `prefix` as dc_bert_tensor_f32 does. The backend reads the weights from the file when
 * `direct` is true and every part is an F32, BF16 or F16 tensor stored contiguously in a file
 * (dc_weights_file_span: safetensors, single or sharded); a format the backend does not take
 * that way falls back to the host. Errors name the file and the tensor. */
dc_status dc_linear_load(dc_backend *be, const dc_weights *w, const char *prefix,
                         const char *base, const char *const *parts, uint32_t np, bool has_bias,
                         uint32_t n, uint32_t k, dc_weight_format fmt, bool direct,
                         dc_linear **out);

#endif

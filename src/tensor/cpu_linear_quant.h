/* The CPU backend's bf16 and int8 linear layers (cpu_linear_quant.c), which cpu_backend.c
 * delegates to for every format but f32. Internal header.
 *
 * int8: u8 activations (per row, quantised at each forward) × s8 weights (per output channel,
 * packed once) through oneDNN's int8 matmul into int32, dequantised with the bias in f32.
 * bf16: where oneDNN has a bf16 matmul that is not its reference kernel (avx512_core_bf16,
 * AMX), activations are rounded to bf16 at each forward and multiplied by packed bf16 weights
 * into f32. Elsewhere (AVX2) the bf16 weights are widened to f32 one block of output channels
 * at a time, into a buffer that lives for one forward, and multiplied by oneDNN's f32 matmul:
 * half the weight memory, f32 arithmetic. */
#ifndef DC_TENSOR_CPU_LINEAR_QUANT_H
#define DC_TENSOR_CPU_LINEAR_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include <oneapi/dnnl/dnnl.h>

#include "dodeca/status.h"
#include "tensor/backend.h"

typedef struct dc_cpu_qlinear dc_cpu_qlinear;

/* weight [n, k] and bias [n] (may be NULL) as for dc_backend_ops.linear_create; fmt is
 * DC_WEIGHTS_BF16 or DC_WEIGHTS_INT8. */
dc_status dc_cpu_qlinear_create(dnnl_engine_t eng, const float *weight, const float *bias,
                                uint32_t n, uint32_t k, dc_weight_format fmt,
                                dc_cpu_qlinear **out);
void dc_cpu_qlinear_destroy(dc_cpu_qlinear *q);
dc_status dc_cpu_qlinear_forward(dnnl_engine_t eng, const dc_cpu_qlinear *q, const float *x,
                                 size_t rows, float *y);
/* Bytes held (weights in their stored format, scales, bias). */
size_t dc_cpu_qlinear_bytes(const dc_cpu_qlinear *q);
/* "int8 u8s8s32 (255/63): gemm:jit", "bf16 f32 blocks of 336: gemm:jit", ... */
const char *dc_cpu_qlinear_impl(const dc_cpu_qlinear *q);

#endif

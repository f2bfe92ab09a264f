/* Shared between the FP8 and FP4 codecs. */
#ifndef DC_TENSOR_QUANT_FP_INTERNAL_H
#define DC_TENSOR_QUANT_FP_INTERNAL_H

#include <stdint.h>

/* Code of the finite, non-negative `a` rounded (ties to even) to a minifloat with `mbits`
 * mantissa bits and exponent bias `bias`, unbounded above: larger than the format's largest
 * code when `a` overflows it. */
uint32_t dc_minifloat_round(float a, int mbits, int bias);

#endif

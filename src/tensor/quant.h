/* Reduced-precision weights of the linear layers (bf16, int8): the conversions and quantisers
 * every backend shares, and plain-C reference products the tests check the backends against.
 * Internal header.
 *
 * bf16: weights rounded to nearest even (NaN stays NaN), half the bytes of f32.
 * int8: weights per output channel, symmetric: W[n,:] ≈ sw[n]·qw[n,:], qw in [−w_max, w_max];
 * activations per row, asymmetric u8 quantised at every forward: x[m,:] ≈ sx[m]·(qx[m,:] − zx[m]),
 * qx in [0, act_max]; products accumulate in int32 and are dequantised in f32:
 *   y[m,n] = sx[m]·sw[n]·(Σ_k qx[m,k]·qw[n,k] − zx[m]·Σ_k qw[n,k]) + b[n].
 * Transformer activations carry a few outlier channels (input columns far larger than the
 * rest, e.g. after LayerNorm); one of them would set every row's scale and leave the other
 * channels a handful of levels. So each forward picks the columns of x whose largest
 * magnitude exceeds a ratio (dc_int8_ranges) × the median column's (at most
 * k / DC_INT8_OUTLIER_SHARE of them), quantises the rows without them (qx = zx there, so they
 * add exactly 0) and adds their part in f32 against the dequantised weights:
 *   y[m,n] += Σ_{j outlier} x[m,j]·sw[n]·qw[n,j]. */
#ifndef DC_TENSOR_QUANT_H
#define DC_TENSOR_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dodeca/status.h"

uint16_t dc_quant_bf16_from_f32(float f);
float dc_quant_bf16_to_f32(uint16_t b);
void dc_quant_bf16_pack(const float *src, size_t n, uint16_t *dst);
void dc_quant_bf16_unpack(const uint16_t *src, size_t n, float *dst);

/* The integer ranges of an int8 product, and the outlier threshold used with them. */
typedef struct dc_int8_ranges {
    int32_t act_max;     /* activations are u8 in [0, act_max] */
    int32_t w_max;       /* weights are s8 in [−w_max, w_max] */
    float outlier_ratio; /* outlier columns: largest magnitude > ratio × the median column's */
} dc_int8_ranges;

/* The ranges the CPU's int8 matrix product computes exactly. With VNNI (vpdpbusd) that is the
 * full 255 / 127 (outlier ratio DC_INT8_OUTLIER_RATIO). Without it oneDNN multiplies u8·s8
 * pairs into a saturating int16 (vpmaddubsw), so a pair must stay within 32767: the
 * activations keep 7 bits and the weights 8 (127 / 127: a pair reaches 2·127·127 = 32258),
 * with outlier ratio DC_INT8_OUTLIER_RATIO_U7. Measured on the real all-MiniLM-L6-v2
 * (docs/precision.md), that split beat 8-bit activations with 7-bit weights (255 / 63). */
dc_int8_ranges dc_quant_int8_ranges_cpu(void);

/* Quantises W [n, k] (nn.Linear layout) per output channel: q [n, k], scale [n] and
 * colsum[n] = Σ_k q[n,k]. A non-finite weight is DC_ERR_INVALID_VALUE naming its row. */
dc_status dc_quant_int8_weights(const float *w, uint32_t n, uint32_t k, int32_t w_max, int8_t *q,
                                float *scale, int32_t *colsum);

#define DC_INT8_OUTLIER_RATIO 4.0f
#define DC_INT8_OUTLIER_RATIO_U7 3.0f
#define DC_INT8_OUTLIER_SHARE 32u

/* The outlier columns of x [rows, k] as described above, ascending, into idx (room for
 * k / DC_INT8_OUTLIER_SHARE); `work` holds 2·k floats. Returns their count. Non-finite values
 * are ignored here (the row quantiser makes their rows NaN). The same in two steps, so rows
 * can be scanned in parallel pieces: dc_quant_int8_colmax raises colmax[k] to the largest
 * magnitude of each column over `rows` rows (NaN leaves a column as it was), and
 * dc_quant_int8_outliers_pick chooses from the finished colmax (`work`: k floats). */
uint32_t dc_quant_int8_outliers(const float *x, size_t rows, uint32_t k, float ratio,
                                uint32_t *idx, float *work);
void dc_quant_int8_colmax(const float *x, size_t rows, uint32_t k, float *colmax);
uint32_t dc_quant_int8_outliers_pick(const float *colmax, uint32_t k, float ratio, uint32_t *idx,
                                     float *work);

/* Quantises each of `rows` rows of x [rows, k] to u8 with its own scale and zero point (the
 * range always holds 0), leaving out the n_skip columns skip[] (ascending; they get the zero
 * point; `work` is unused and may be NULL). A row holding a
 * non-finite value outside them gets scale NaN, so its outputs are NaN as in f32. Values round
 * to nearest, ties away from zero. */
void dc_quant_int8_rows(const float *x, size_t rows, uint32_t k, int32_t act_max,
                        const uint32_t *skip, uint32_t n_skip, uint8_t *q, float *scale,
                        int32_t *zero, float *work);

/* Dequantises in place: y holds the int32 sums acc[rows, n] (row stride ld elements) and
 * receives sx[m]·sw[n]·(acc − zx[m]·colsum[n]) + bias[n] (bias may be NULL). */
void dc_quant_int8_dequant(float *y, size_t rows, uint32_t n, size_t ld, const float *sx,
                           const int32_t *zx, const float *sw, const int32_t *colsum,
                           const float *bias);

/* The most inputs of an int8 layer: the int32 sums hold 255·127·k. */
#define DC_INT8_MAX_K 32768u

/* wo[t, c] = sw[c]·qw[c, skip[t]]: the dequantised weights of the n_skip outlier columns. */
void dc_quant_int8_outlier_weights(const int8_t *qw, const float *sw, uint32_t n, uint32_t k,
                                   const uint32_t *skip, uint32_t n_skip, float *wo);

/* dc_quant_int8_dequant, then adds the outlier columns' part in f32 (in this order):
 *   y[m, c] += Σ_t x[m, skip[t]]·wo[t, c]
 * x [rows, k] being the layer's input rows matching y's (x and skip may be NULL when n_skip
 * is 0; k ≤ DC_INT8_MAX_K). */
void dc_quant_int8_dequant_outliers(float *y, size_t rows, uint32_t n, size_t ld,
                                    const float *sx, const int32_t *zx, const float *sw,
                                    const int32_t *colsum, const float *bias, const float *x,
                                    uint32_t k, const uint32_t *skip, uint32_t n_skip,
                                    const float *wo);

/* Plain-C references of whole layers: y[rows, n] = x·Wᵀ + b with the int8 scheme above (w
 * already quantised by dc_quant_int8_weights), or with bf16 weights w16 [n, k] (round_x: the
 * activations are rounded to bf16 too, as a native bf16 product does). */
dc_status dc_quant_linear_int8_ref(const float *x, size_t rows, uint32_t k, uint32_t n,
                                   const int8_t *qw, const float *sw, const int32_t *colsum,
                                   const float *bias, dc_int8_ranges r, float *y);
void dc_quant_linear_bf16_ref(const float *x, size_t rows, uint32_t k, uint32_t n,
                              const uint16_t *w16, const float *bias, bool round_x, float *y);

#endif

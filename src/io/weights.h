/* A format-independent, read-only view of a checkpoint: a list of named tensors.
 *
 * dc_weights_open() detects the container from the bytes, not the file name:
 *   - safetensors (8-byte little-endian header length, then a JSON header starting with '{');
 *   - a sharded safetensors index (model.safetensors.index.json: JSON with a "weight_map");
 *   - PyTorch zip (torch.save since 1.6: "PK\x03\x04", data.pkl + data/<key>);
 *   - PyTorch legacy (torch.save(..., _use_new_zipfile_serialization=False): a pickle
 *     protocol-2 stream that starts with the magic number 0x1950a86a20f9469cfc6c).
 * Tensor data points into the memory-mapped file where the layout allows (safetensors, stored
 * zip entries), so opening a checkpoint costs page faults, not copies. Data is copied only when
 * a zip entry is deflated or a tensor would be misaligned for its element type: every `data`
 * pointer is aligned to at least its element size (up to 8).
 *
 * Pickles are read by a restricted interpreter that builds values and never executes anything
 * (src/io/pickle.h). Every offset and size in a file is validated before it is used.
 *
 * A dc_weights is immutable after open and may be read from any number of threads. */
#ifndef DC_IO_WEIGHTS_H
#define DC_IO_WEIGHTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dodeca/status.h"

/* Element types. Names follow safetensors ("F32", "BF16", "F8_E4M3", ...). Types without a
 * conversion below (complex, sub-byte, e8m0, fnuz) are listed and exposed as raw bytes;
 * converting them fails with DC_ERR_UNSUPPORTED_FORMAT. */
typedef enum dc_dtype {
    DC_DTYPE_UNKNOWN = 0,
    DC_DTYPE_F32,
    DC_DTYPE_F16,
    DC_DTYPE_BF16,
    DC_DTYPE_F64,
    DC_DTYPE_I64,
    DC_DTYPE_I32,
    DC_DTYPE_I16,
    DC_DTYPE_I8,
    DC_DTYPE_U8,
    DC_DTYPE_BOOL,
    DC_DTYPE_F8_E4M3,     /* e4m3fn: no infinities, 0x7f/0xff are NaN */
    DC_DTYPE_F8_E5M2,
    DC_DTYPE_U16,
    DC_DTYPE_U32,
    DC_DTYPE_U64,
    DC_DTYPE_C64,         /* complex64: two f32 */
    DC_DTYPE_F8_E4M3FNUZ,
    DC_DTYPE_F8_E5M2FNUZ,
    DC_DTYPE_F8_E8M0,
    DC_DTYPE_F4,          /* 4 bits per element, two per byte */
    DC_DTYPE_F6_E2M3,     /* 6 bits per element, packed */
    DC_DTYPE_F6_E3M2,
    DC_DTYPE_COUNT
} dc_dtype;

/* "F32", "BF16", ...; "UNKNOWN" for values out of range. */
const char *dc_dtype_name(dc_dtype t);
/* Bytes per element; 0 for sub-byte types (F4, F6_*) and DC_DTYPE_UNKNOWN. */
size_t dc_dtype_size(dc_dtype t);
/* Bits per element (4 for F4, 32 for F32); 0 for DC_DTYPE_UNKNOWN. */
unsigned dc_dtype_bits(dc_dtype t);
/* Parses a safetensors dtype name (exact, upper case). DC_ERR_UNSUPPORTED_FORMAT naming the
 * string when it is not one of ours. */
dc_status dc_dtype_parse(const char *name, dc_dtype *out);

/* Checked byte size of a tensor: product(shape) elements of `t`. DC_ERR_CHECKPOINT_CORRUPTED
 * on overflow or when a sub-byte tensor does not end on a byte boundary. Sets *numel too
 * (may be NULL). */
dc_status dc_dtype_span(dc_dtype t, uint32_t ndim, const uint64_t *shape, uint64_t *numel,
                        uint64_t *nbytes);

#define DC_TENSOR_MAX_DIMS 8

/* One tensor. All pointers stay valid until dc_weights_close(). Data is little-endian, C order
 * (row-major, contiguous); a 0-d tensor has ndim 0 and one element. */
typedef struct dc_tensor_view {
    const char *name;  /* NUL-terminated UTF-8 */
    dc_dtype dtype;
    uint32_t ndim;
    uint64_t shape[DC_TENSOR_MAX_DIMS];
    uint64_t numel;    /* product of shape (1 for 0-d) */
    const void *data;  /* nbytes bytes; NULL only when nbytes is 0 */
    uint64_t nbytes;
} dc_tensor_view;

typedef struct dc_weights dc_weights;

/* Opens and fully validates a checkpoint file. On failure *out is NULL and the detail names
 * the file, the tensor and the byte offset at fault. */
dc_status dc_weights_open(const char *path, dc_weights **out);
/* Same for bytes already in memory; the buffer is borrowed and must outlive the dc_weights.
 * `label` names the source in error details (may be NULL). Sharded indexes are not accepted
 * here (they name other files). */
dc_status dc_weights_open_memory(const void *buf, size_t len, const char *label,
                                 dc_weights **out);
void dc_weights_close(dc_weights *w);

/* "safetensors", "safetensors-sharded", "pytorch-zip" or "pytorch-legacy". */
const char *dc_weights_format_name(const dc_weights *w);
/* The path or label given at open. */
const char *dc_weights_path(const dc_weights *w);
/* Where a tensor of `w` lies in its file, for reading it again without the mapping (e.g.
 * straight into device memory): true with the file (the shard, for a sharded index) and the
 * byte offset of its first byte when its nbytes are stored there contiguously, as they are in
 * safetensors files. false for torch files, weights opened from memory and tensors copied at
 * open for alignment. The path stays valid until dc_weights_close; the bytes are what was
 * mapped at open only while the file is not rewritten. */
bool dc_weights_file_span(const dc_weights *w, const dc_tensor_view *t, const char **path,
                          uint64_t *offset);
size_t dc_weights_count(const dc_weights *w);
/* Tensors in file order (safetensors header order; state-dict order for torch files). NULL
 * when i is out of range. */
const dc_tensor_view *dc_weights_tensor(const dc_weights *w, size_t i);
/* O(1) lookup by exact name; NULL when absent. */
const dc_tensor_view *dc_weights_find(const dc_weights *w, const char *name);
/* Like dc_weights_find, but DC_ERR_NOT_FOUND naming the tensor and file when absent. */
dc_status dc_weights_get(const dc_weights *w, const char *name, const dc_tensor_view **out);

/* safetensors "__metadata__" (string to string), e.g. "format" -> "pt"; NULL when absent.
 * Torch files have none. */
const char *dc_weights_metadata_get(const dc_weights *w, const char *key);
size_t dc_weights_metadata_count(const dc_weights *w);
/* i-th metadata pair in file order; false when i is out of range. */
bool dc_weights_metadata_at(const dc_weights *w, size_t i, const char **key, const char **value);

/* Converts a tensor to f32 into dst (room for `count` floats, which must equal t->numel).
 * F32, F16, BF16, F64, F8_E4M3, F8_E5M2 and the integer and bool types convert; the others
 * fail with DC_ERR_UNSUPPORTED_FORMAT naming the tensor and dtype. */
dc_status dc_tensor_view_copy_f32(const dc_tensor_view *t, float *dst, size_t count);
/* Same into a new malloc'ed array of t->numel floats (at least one float is allocated so an
 * empty tensor still yields a non-NULL pointer); release with free(). */
dc_status dc_tensor_view_to_f32(const dc_tensor_view *t, float **out);

/* Scalar conversions used above; exposed for the quantization code and tests. */
float dc_f16_to_f32(uint16_t h);
float dc_bf16_to_f32(uint16_t b);
float dc_f8_e4m3_to_f32(uint8_t v);
float dc_f8_e5m2_to_f32(uint8_t v);

#endif

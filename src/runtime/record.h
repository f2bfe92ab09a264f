/* The cached form of a pipeline result: the dc_fused_encode bytes (so a hit returns the
 * identical fused embedding) plus the per-model vectors and the t_ref that was used. Internal.
 *
 * Layout (little-endian): magic "DCPR", u16 version (1), u16 flags (0), f64 t_ref,
 * u32 ok_mask, u32 truncated_mask, u32 fused_len, fused bytes; then for each model in ok_mask,
 * in id order: u32 tokens_used, u32 dim, dim × f32; then an XXH3-64 of everything before. */
#ifndef DC_RUNTIME_RECORD_H
#define DC_RUNTIME_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "dodeca/pipeline.h"

#define DC_RECORD_VERSION 1u

/* Encodes the cacheable part of r (malloc'ed bytes; caller frees). */
dc_status dc_record_encode(const dc_pipeline_result *r, uint8_t **out, size_t *len);
/* Fills r (fused, models[].vector/dim/tokens_used/truncated/status, masks, t_ref) from bytes.
 * Models outside ok_mask are left as they are. On failure r holds no allocations. */
dc_status dc_record_decode(const uint8_t *bytes, size_t len, dc_pipeline_result *r);
/* The same for bytes this process wrote or already checked (the in-process cache, whose file
 * entries were checked at load): skips the record checksum. */
dc_status dc_record_decode_trusted(const uint8_t *bytes, size_t len, dc_pipeline_result *r);
/* Checksum, lengths and the fused encoding are all sound (for untrusted files and Redis). */
bool dc_record_check(const uint8_t *bytes, size_t len);

#endif

/* Builder interface between dc_weights and the container readers (safetensors.c,
 * torch_bin.c). Not for use outside src/io. */
#ifndef DC_IO_WEIGHTS_INTERNAL_H
#define DC_IO_WEIGHTS_INTERNAL_H

#include "core/bytes.h"
#include "core/utf8.h"
#include "io/weights.h"

/* Readers: each parses `len` bytes at `buf` (the whole file) and adds tensors to `w`. `label`
 * names the file in details. The buffer outlives `w`. */
dc_status dc_safetensors_load(dc_weights *w, const uint8_t *buf, size_t len, const char *label);
dc_status dc_torch_zip_load(dc_weights *w, const uint8_t *buf, size_t len, const char *label);
dc_status dc_torch_legacy_load(dc_weights *w, const uint8_t *buf, size_t len, const char *label);
/* model.safetensors.index.json at `path`: maps each shard named in "weight_map" (in the same
 * folder) and loads it. */
dc_status dc_safetensors_index_load(dc_weights *w, const char *path, const uint8_t *buf,
                                    size_t len);

/* Adds a tensor. `name` (name_len bytes, copied) must be UTF-8 without NUL and unique; shape × dtype must span exactly nbytes. `data` must stay valid for the life of
 * `w` (a pointer into the file or a buffer from dc_weights_alloc). If `data` is not aligned to
 * the element size it is copied into an aligned owned buffer. */
dc_status dc_weights_add(dc_weights *w, const char *name, size_t name_len, dc_dtype dtype,
                         uint32_t ndim, const uint64_t *shape, const void *data, uint64_t nbytes,
                         const char *label);

/* Buffer of n bytes (64-byte aligned), freed by dc_weights_close. NULL when out of memory. */
void *dc_weights_alloc(dc_weights *w, size_t n);

/* Takes ownership of a malloc'ed buffer, freed by dc_weights_close (freed at once on failure). */
dc_status dc_weights_adopt(dc_weights *w, void *buf);

/* Maps another file (a shard) for the life of `w`. */
dc_status dc_weights_map_file(dc_weights *w, const char *path, const uint8_t **buf, size_t *len);

/* Records a metadata pair (both copied). Duplicates are found by dc_weights_metadata_seal,
 * which dc_weights_open runs after the reader; a reader may seal early to look keys up with
 * dc_weights_metadata_get in O(log n). */
dc_status dc_weights_metadata_add(dc_weights *w, const char *key, size_t key_len,
                                  const char *value, size_t value_len, const char *label);
dc_status dc_weights_metadata_seal(dc_weights *w, const char *label);

#endif

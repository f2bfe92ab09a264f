/* Read-only ZIP reader over a memory buffer, sufficient for PyTorch checkpoints (torch.save
 * since 1.6 writes stored entries, 64-byte aligned, with ZIP64 end records).
 *
 * dc_zip_open validates the whole directory up front: the end-of-central-directory record (and
 * the ZIP64 locator/record when present), every central entry, every local header, that each
 * entry's bytes lie inside the file before the central directory, that no two entries overlap,
 * that names are unique and free of NUL, and that no entry is encrypted. Work is linear in the
 * file size plus a sort. Data is only decompressed and CRC-checked on dc_zip_read. */
#ifndef DC_IO_ZIP_H
#define DC_IO_ZIP_H

#include <stddef.h>
#include <stdint.h>

#include "dodeca/status.h"

typedef struct dc_zip_entry {
    const char *name;      /* NUL-terminated copy of the stored name */
    uint64_t local_offset; /* file offset of the local header */
    uint64_t data_offset;  /* file offset of the first (compressed) data byte */
    uint64_t comp_size;
    uint64_t size;         /* uncompressed size */
    uint32_t crc32;
    uint16_t method;       /* 0 stored, 8 deflate */
    uint16_t flags;
} dc_zip_entry;

typedef struct dc_zip dc_zip;

/* Parses the archive in buf (borrowed; must outlive the dc_zip). `label` names the file in
 * details. DC_ERR_CHECKPOINT_CORRUPTED for malformed structure, DC_ERR_UNSUPPORTED_FORMAT for
 * encryption, multi-disk archives or methods other than stored/deflate. */
dc_status dc_zip_open(const uint8_t *buf, size_t len, const char *label, dc_zip **out);
void dc_zip_close(dc_zip *z);

size_t dc_zip_count(const dc_zip *z);
/* Entries in central-directory order; NULL when out of range. */
const dc_zip_entry *dc_zip_entry_at(const dc_zip *z, size_t i);
/* Exact-name lookup (binary search); NULL when absent. */
const dc_zip_entry *dc_zip_find(const dc_zip *z, const char *name);

/* Returns the entry's bytes in *data (e->size of them) after checking the CRC-32. Stored
 * entries point into the archive buffer and *owned is NULL; deflated entries are inflated into
 * a malloc'ed buffer returned in *owned (== *data), which the caller frees. The inflated size
 * must equal the declared size exactly. */
dc_status dc_zip_read(const dc_zip *z, const dc_zip_entry *e, const uint8_t **data,
                      void **owned);

#endif

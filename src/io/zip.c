/* Read-only ZIP reader (PKWARE APPNOTE 6.3: EOCD, ZIP64 EOCD + locator, central directory,
 * local headers, stored and deflate methods). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "core/error.h"
#include "io/weights_internal.h"
#include "io/zip.h"

#define DC_ZIP_EOCD_SIZE 22u
#define DC_ZIP_LOCATOR_SIZE 20u
#define DC_ZIP64_EOCD_MIN 56u
#define DC_ZIP_CDH_SIZE 46u
#define DC_ZIP_LFH_SIZE 30u
/* Deflate cannot expand data by more than about 1032:1; a larger claim is a bomb or a lie. */
#define DC_ZIP_MAX_RATIO 1032u

struct dc_zip {
    const uint8_t *buf;
    size_t len;
    const char *label;
    dc_zip_entry *entries;
    size_t count;
    size_t *by_name; /* entry indices sorted by name */
    char *names;     /* storage for all entry names */
};

size_t dc_zip_count(const dc_zip *z) { return z ? z->count : 0; }

const dc_zip_entry *dc_zip_entry_at(const dc_zip *z, size_t i) {
    if (!z || i >= z->count) return NULL;
    return &z->entries[i];
}

void dc_zip_close(dc_zip *z) {
    if (!z) return;
    free(z->entries);
    free(z->by_name);
    free(z->names);
    free(z);
}

/* qsort has no context argument: the comparators reach the entries through this pointer,
 * set on the opening thread for the duration of the sorts. */
static _Thread_local const dc_zip_entry *dc_zip_sort_base;

static int dc_zip_cmp_name(const void *a, const void *b) {
    const dc_zip_entry *x = &dc_zip_sort_base[*(const size_t *)a];
    const dc_zip_entry *y = &dc_zip_sort_base[*(const size_t *)b];
    return strcmp(x->name, y->name);
}

static int dc_zip_cmp_offset(const void *a, const void *b) {
    const dc_zip_entry *x = &dc_zip_sort_base[*(const size_t *)a];
    const dc_zip_entry *y = &dc_zip_sort_base[*(const size_t *)b];
    if (x->local_offset != y->local_offset) return x->local_offset < y->local_offset ? -1 : 1;
    return 0;
}

const dc_zip_entry *dc_zip_find(const dc_zip *z, const char *name) {
    if (!z || !name) return NULL;
    size_t lo = 0, hi = z->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const dc_zip_entry *e = &z->entries[z->by_name[mid]];
        int c = strcmp(e->name, name);
        if (c == 0) return e;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Locates the end-of-central-directory record: the last "PK\5\6" whose comment length
 * reaches exactly the end of the file. */
static dc_status dc_zip_find_eocd(const uint8_t *buf, size_t len, const char *label,
                                  size_t *pos) {
    if (len < DC_ZIP_EOCD_SIZE)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: %zu bytes is too short for a zip end-of-central-directory record",
                       label, len);
    size_t start = len - DC_ZIP_EOCD_SIZE;
    size_t stop = start > 0xFFFF ? start - 0xFFFF : 0;
    for (size_t p = start + 1; p-- > stop;) {
        if (memcmp(buf + p, "PK\x05\x06", 4) == 0 &&
            p + DC_ZIP_EOCD_SIZE + dc_get_u16le(buf + p + 20) == len) {
            *pos = p;
            return DC_OK;
        }
    }
    return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                   "%s: no zip end-of-central-directory record in the last %zu bytes", label,
                   len - stop);
}

typedef struct dc_zip_dir {
    uint64_t count;
    uint64_t cd_offset;
    uint64_t cd_size;
    uint64_t cd_limit; /* first byte after the space the central directory may use */
} dc_zip_dir;

static dc_status dc_zip_read_dir(const uint8_t *buf, size_t len, const char *label,
                                 dc_zip_dir *dir) {
    size_t eocd = 0;
    dc_status st = dc_zip_find_eocd(buf, len, label, &eocd);
    if (st) return st;
    const uint8_t *e = buf + eocd;
    uint16_t disk = dc_get_u16le(e + 4), cd_disk = dc_get_u16le(e + 6);
    uint16_t n_disk = dc_get_u16le(e + 8), n_total = dc_get_u16le(e + 10);
    uint32_t cd_size = dc_get_u32le(e + 12), cd_off = dc_get_u32le(e + 16);
    dir->count = n_total;
    dir->cd_size = cd_size;
    dir->cd_offset = cd_off;
    dir->cd_limit = eocd;

    bool has_locator = eocd >= DC_ZIP_LOCATOR_SIZE &&
                       memcmp(buf + eocd - DC_ZIP_LOCATOR_SIZE, "PK\x06\x07", 4) == 0;
    bool saturated = n_disk == 0xFFFF || n_total == 0xFFFF || cd_size == 0xFFFFFFFFu ||
                     cd_off == 0xFFFFFFFFu || disk == 0xFFFF || cd_disk == 0xFFFF;
    if (saturated && !has_locator)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: end-of-central-directory record at byte offset %zu needs ZIP64 "
                       "values but there is no ZIP64 locator",
                       label, eocd);
    if (has_locator) {
        size_t loc = eocd - DC_ZIP_LOCATOR_SIZE;
        uint32_t z64_disk = dc_get_u32le(buf + loc + 4);
        uint64_t z64_off = dc_get_u64le(buf + loc + 8);
        uint32_t ndisks = dc_get_u32le(buf + loc + 16);
        if (z64_disk != 0 || ndisks > 1)
            return dc_fail(DC_ERR_UNSUPPORTED_FORMAT,
                           "%s: multi-disk zip archives are not supported (ZIP64 locator at "
                           "byte offset %zu)",
                           label, loc);
        if (z64_off > loc || loc - z64_off < DC_ZIP64_EOCD_MIN)
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                           "%s: ZIP64 locator at byte offset %zu points to %llu, outside the file",
                           label, loc, (unsigned long long)z64_off);
        const uint8_t *r = buf + z64_off;
        if (memcmp(r, "PK\x06\x06", 4) != 0)
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                           "%s: no ZIP64 end-of-central-directory record at byte offset %llu",
                           label, (unsigned long long)z64_off);
        uint64_t rec_size = dc_get_u64le(r + 4);
        if (rec_size < DC_ZIP64_EOCD_MIN - 12 || rec_size > loc - z64_off - 12)
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                           "%s: ZIP64 end-of-central-directory record at byte offset %llu has "
                           "bad size %llu",
                           label, (unsigned long long)z64_off, (unsigned long long)rec_size);
        uint32_t d64 = dc_get_u32le(r + 16), cd64 = dc_get_u32le(r + 20);
        uint64_t n64_disk = dc_get_u64le(r + 24), n64_total = dc_get_u64le(r + 32);
        uint64_t size64 = dc_get_u64le(r + 40), off64 = dc_get_u64le(r + 48);
        if (d64 != 0 || cd64 != 0 || n64_disk != n64_total)
            return dc_fail(DC_ERR_UNSUPPORTED_FORMAT, "%s: multi-disk zip archives are not "
                           "supported", label);
        /* Values present in both records must agree. */
        if ((n_total != 0xFFFF && n_total != n64_total) ||
            (cd_size != 0xFFFFFFFFu && cd_size != size64) ||
            (cd_off != 0xFFFFFFFFu && cd_off != off64))
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                           "%s: ZIP64 record at byte offset %llu disagrees with the "
                           "end-of-central-directory record at %zu",
                           label, (unsigned long long)z64_off, eocd);
        dir->count = n64_total;
        dir->cd_size = size64;
        dir->cd_offset = off64;
        dir->cd_limit = z64_off;
    } else if (disk != 0 || cd_disk != 0 || n_disk != n_total) {
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT, "%s: multi-disk zip archives are not supported",
                       label);
    }
    if (dir->cd_offset > dir->cd_limit || dir->cd_size > dir->cd_limit - dir->cd_offset)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: central directory [%llu, +%llu) lies outside the file (it must end "
                       "by byte offset %llu)",
                       label, (unsigned long long)dir->cd_offset,
                       (unsigned long long)dir->cd_size, (unsigned long long)dir->cd_limit);
    if (dir->count > dir->cd_size / DC_ZIP_CDH_SIZE)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: %llu entries cannot fit in a %llu-byte central directory", label,
                       (unsigned long long)dir->count, (unsigned long long)dir->cd_size);
    return DC_OK;
}

/* Applies the ZIP64 extended-information extra field (id 0x0001) to the saturated values. */
static dc_status dc_zip_apply_zip64(const uint8_t *extra, size_t extra_len, uint32_t usize32,
                                    uint32_t csize32, uint32_t off32, dc_zip_entry *e,
                                    const char *label, uint64_t at) {
    size_t p = 0;
    while (p < extra_len) {
        if (extra_len - p < 4)
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                           "%s: entry \"%s\": truncated extra field at byte offset %llu", label,
                           e->name, (unsigned long long)(at + p));
        uint16_t id = dc_get_u16le(extra + p), sz = dc_get_u16le(extra + p + 2);
        if (sz > extra_len - p - 4)
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                           "%s: entry \"%s\": extra field at byte offset %llu overruns its entry",
                           label, e->name, (unsigned long long)(at + p));
        if (id == 0x0001) {
            const uint8_t *f = extra + p + 4;
            size_t q = 0;
            uint64_t *targets[3] = {&e->size, &e->comp_size, &e->local_offset};
            bool need[3] = {usize32 == 0xFFFFFFFFu, csize32 == 0xFFFFFFFFu,
                            off32 == 0xFFFFFFFFu};
            for (int k = 0; k < 3; k++) {
                if (!need[k]) continue;
                if (sz - q < 8)
                    return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                                   "%s: entry \"%s\": ZIP64 extra field at byte offset %llu is "
                                   "too short",
                                   label, e->name, (unsigned long long)(at + p));
                *targets[k] = dc_get_u64le(f + q);
                q += 8;
            }
            return DC_OK;
        }
        p += 4u + sz;
    }
    if (usize32 == 0xFFFFFFFFu || csize32 == 0xFFFFFFFFu || off32 == 0xFFFFFFFFu)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: entry \"%s\": sizes need a ZIP64 extra field that is missing", label,
                       e->name);
    return DC_OK;
}

static dc_status dc_zip_check_local(const dc_zip *z, dc_zip_entry *e, uint64_t cd_offset) {
    const char *label = z->label;
    if (e->local_offset > cd_offset || cd_offset - e->local_offset < DC_ZIP_LFH_SIZE)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: entry \"%s\": local header offset %llu is outside the file data",
                       label, e->name, (unsigned long long)e->local_offset);
    const uint8_t *l = z->buf + e->local_offset;
    if (memcmp(l, "PK\x03\x04", 4) != 0)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: entry \"%s\": no local header signature at byte offset %llu", label,
                       e->name, (unsigned long long)e->local_offset);
    uint16_t lflags = dc_get_u16le(l + 6);
    if (lflags & 0x0041)
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT,
                       "%s: entry \"%s\" is encrypted (local header at byte offset %llu)", label,
                       e->name, (unsigned long long)e->local_offset);
    uint64_t n = dc_get_u16le(l + 26), m = dc_get_u16le(l + 28);
    uint64_t data_off = e->local_offset + DC_ZIP_LFH_SIZE + n + m;
    if (data_off > cd_offset)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: entry \"%s\": local header at byte offset %llu runs into the central "
                       "directory",
                       label, e->name, (unsigned long long)e->local_offset);
    if (n != strlen(e->name) || memcmp(l + DC_ZIP_LFH_SIZE, e->name, (size_t)n) != 0)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: entry \"%s\": local header at byte offset %llu names a different "
                       "file",
                       label, e->name, (unsigned long long)e->local_offset);
    if (e->comp_size > cd_offset - data_off)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: entry \"%s\": %llu bytes of data at byte offset %llu run past the "
                       "entries into the central directory",
                       label, e->name, (unsigned long long)e->comp_size,
                       (unsigned long long)data_off);
    e->data_offset = data_off;
    return DC_OK;
}

static dc_status dc_zip_parse(dc_zip *z) {
    const char *label = z->label;
    dc_zip_dir dir;
    dc_status st = dc_zip_read_dir(z->buf, z->len, label, &dir);
    if (st) return st;
    size_t count = (size_t)dir.count;
    z->entries = calloc(count ? count : 1, sizeof *z->entries);
    z->by_name = malloc((count ? count : 1) * sizeof *z->by_name);
    /* Names total less than the directory size; one NUL each on top. */
    z->names = malloc((size_t)dir.cd_size + count + 1);
    if (!z->entries || !z->by_name || !z->names)
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory reading the zip directory",
                       label);
    size_t names_used = 0;
    uint64_t pos = dir.cd_offset, end = dir.cd_offset + dir.cd_size;
    for (size_t i = 0; i < count; i++) {
        if (end - pos < DC_ZIP_CDH_SIZE)
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                           "%s: central directory entry %zu at byte offset %llu is truncated",
                           label, i, (unsigned long long)pos);
        const uint8_t *c = z->buf + pos;
        if (memcmp(c, "PK\x01\x02", 4) != 0)
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                           "%s: no central directory signature at byte offset %llu (entry %zu)",
                           label, (unsigned long long)pos, i);
        dc_zip_entry *e = &z->entries[i];
        e->flags = dc_get_u16le(c + 8);
        e->method = dc_get_u16le(c + 10);
        e->crc32 = dc_get_u32le(c + 16);
        uint32_t csize32 = dc_get_u32le(c + 20), usize32 = dc_get_u32le(c + 24);
        uint16_t n = dc_get_u16le(c + 28), m = dc_get_u16le(c + 30), k = dc_get_u16le(c + 32);
        uint32_t off32 = dc_get_u32le(c + 42);
        if ((uint64_t)n + m + k > end - pos - DC_ZIP_CDH_SIZE)
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                           "%s: central directory entry %zu at byte offset %llu overruns the "
                           "directory",
                           label, i, (unsigned long long)pos);
        const char *raw = (const char *)c + DC_ZIP_CDH_SIZE;
        if (memchr(raw, '\0', n))
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                           "%s: entry %zu name at byte offset %llu contains a NUL byte", label,
                           i, (unsigned long long)(pos + DC_ZIP_CDH_SIZE));
        e->name = z->names + names_used;
        memcpy(z->names + names_used, raw, n);
        z->names[names_used + n] = '\0';
        names_used += (size_t)n + 1;
        e->comp_size = csize32;
        e->size = usize32;
        e->local_offset = off32;
        st = dc_zip_apply_zip64(c + DC_ZIP_CDH_SIZE + n, m, usize32, csize32, off32, e, label,
                                pos + DC_ZIP_CDH_SIZE + n);
        if (st) return st;
        if (e->flags & 0x0041)
            return dc_fail(DC_ERR_UNSUPPORTED_FORMAT,
                           "%s: entry \"%s\" is encrypted (central directory byte offset %llu)",
                           label, e->name, (unsigned long long)pos);
        if (e->method != 0 && e->method != 8)
            return dc_fail(DC_ERR_UNSUPPORTED_FORMAT,
                           "%s: entry \"%s\" uses compression method %u (only stored and "
                           "deflate are supported)",
                           label, e->name, (unsigned)e->method);
        if (e->method == 0 && e->comp_size != e->size)
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                           "%s: stored entry \"%s\" has compressed size %llu but size %llu",
                           label, e->name, (unsigned long long)e->comp_size,
                           (unsigned long long)e->size);
        if (e->method == 8 && e->size / DC_ZIP_MAX_RATIO > e->comp_size + 1)
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                           "%s: deflated entry \"%s\" claims %llu bytes from %llu compressed",
                           label, e->name, (unsigned long long)e->size,
                           (unsigned long long)e->comp_size);
        st = dc_zip_check_local(z, e, dir.cd_offset);
        if (st) return st;
        pos += DC_ZIP_CDH_SIZE + (uint64_t)n + m + k;
        z->by_name[i] = i;
    }
    z->count = count;

    /* Entries must not share bytes: overlapping entries are how zip bombs amplify. */
    dc_zip_sort_base = z->entries;
    qsort(z->by_name, count, sizeof *z->by_name, dc_zip_cmp_offset);
    for (size_t i = 1; i < count; i++) {
        const dc_zip_entry *a = &z->entries[z->by_name[i - 1]];
        const dc_zip_entry *b = &z->entries[z->by_name[i]];
        if (b->local_offset < a->data_offset + a->comp_size)
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                           "%s: entries \"%s\" and \"%s\" overlap at byte offset %llu", label,
                           a->name, b->name, (unsigned long long)b->local_offset);
    }
    qsort(z->by_name, count, sizeof *z->by_name, dc_zip_cmp_name);
    for (size_t i = 1; i < count; i++) {
        const dc_zip_entry *a = &z->entries[z->by_name[i - 1]];
        const dc_zip_entry *b = &z->entries[z->by_name[i]];
        if (strcmp(a->name, b->name) == 0)
            return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                           "%s: duplicate entry name \"%s\" (local headers at byte offsets %llu "
                           "and %llu)",
                           label, a->name, (unsigned long long)a->local_offset,
                           (unsigned long long)b->local_offset);
    }
    dc_zip_sort_base = NULL;
    return DC_OK;
}

dc_status dc_zip_open(const uint8_t *buf, size_t len, const char *label, dc_zip **out) {
    *out = NULL;
    dc_zip *z = calloc(1, sizeof *z);
    if (!z) return dc_fail(DC_ERR_OUT_OF_MEMORY, "out of memory");
    z->buf = buf;
    z->len = len;
    z->label = label ? label : "<zip>";
    dc_status st = dc_zip_parse(z);
    if (st) {
        dc_zip_close(z);
        return st;
    }
    *out = z;
    return DC_OK;
}

static uint32_t dc_crc32_big(const uint8_t *p, uint64_t n) {
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)crc;
}

/* Inflates into dst, which has room for e->size + 1 bytes: the spare byte catches streams that
 * decode to more than the declared size. */
static dc_status dc_zip_inflate(const dc_zip *z, const dc_zip_entry *e, uint8_t *dst) {
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, -MAX_WBITS) != Z_OK)
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: inflateInit failed", z->label);
    const uint8_t *src = z->buf + e->data_offset;
    uint64_t in_left = e->comp_size, out_left = e->size + 1;
    int rc;
    s.next_out = dst;
    for (;;) {
        if (s.avail_in == 0 && in_left > 0) {
            uInt chunk = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
            s.next_in = (Bytef *)(uintptr_t)src;
            s.avail_in = chunk;
            src += chunk;
            in_left -= chunk;
        }
        if (s.avail_out == 0 && out_left > 0) {
            uInt chunk = out_left > (1u << 30) ? (1u << 30) : (uInt)out_left;
            s.avail_out = chunk;
            out_left -= chunk;
        }
        rc = inflate(&s, Z_NO_FLUSH);
        if (rc != Z_OK) break; /* Z_BUF_ERROR: no progress possible; others are final */
    }
    uint64_t produced = e->size + 1 - out_left - s.avail_out;
    inflateEnd(&s);
    if (rc != Z_STREAM_END && rc != Z_BUF_ERROR)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: entry \"%s\": deflate data at byte offset %llu is corrupt", z->label,
                       e->name, (unsigned long long)e->data_offset);
    if (rc != Z_STREAM_END || produced != e->size)
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: entry \"%s\": deflate stream at byte offset %llu does not inflate to "
                       "its declared %llu bytes",
                       z->label, e->name, (unsigned long long)e->data_offset,
                       (unsigned long long)e->size);
    return DC_OK;
}

dc_status dc_zip_read(const dc_zip *z, const dc_zip_entry *e, const uint8_t **data,
                      void **owned) {
    *data = NULL;
    *owned = NULL;
    const uint8_t *bytes;
    uint8_t *buf = NULL;
    if (e->method == 0) {
        bytes = z->buf + e->data_offset;
    } else {
        if (e->size > SIZE_MAX - 1)
            return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: entry \"%s\" is too large", z->label,
                           e->name);
        buf = malloc((size_t)e->size + 1);
        if (!buf)
            return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: out of memory inflating \"%s\"", z->label,
                           e->name);
        dc_status st = dc_zip_inflate(z, e, buf);
        if (st) {
            free(buf);
            return st;
        }
        bytes = buf;
    }
    uint32_t crc = dc_crc32_big(bytes, e->size);
    if (crc != e->crc32) {
        free(buf);
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                       "%s: entry \"%s\" at byte offset %llu fails its CRC-32 check (stored "
                       "%08x, computed %08x)",
                       z->label, e->name, (unsigned long long)e->data_offset,
                       (unsigned)e->crc32, (unsigned)crc);
    }
    *data = bytes;
    *owned = buf;
    return DC_OK;
}

/* The in-process embedding cache (seed L18, L19): sharded (LRU, LFU or ARC), keyed by 128-bit
 * hashes, with entry and byte budgets, optional TTL, hit/miss/eviction metrics and a
 * persistence file.
 * Values are immutable byte strings (the pipeline stores encoded records), shared by reference:
 * a hit hands out the very bytes that were stored. Internal header; thread-safe throughout. */
#ifndef DC_RUNTIME_CACHE_H
#define DC_RUNTIME_CACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dodeca/config.h"
#include "dodeca/types.h"
#include "runtime/rt.h"

typedef struct dc_cache dc_cache;

/* One stored value. Read-only; release each reference you were given. */
typedef struct dc_cache_blob {
    atomic_uint refs;
    size_t len;
    uint8_t data[];
} dc_cache_blob;

void dc_cache_blob_release(const dc_cache_blob *b);

typedef enum dc_cache_policy {
    DC_CACHE_LRU = 0,
    DC_CACHE_LFU = 1, /* approximate: the least-used of the 8 least-recent entries goes */
    DC_CACHE_ARC = 2, /* adaptive replacement: recency and frequency lists, ghosts (cache.c) */
} dc_cache_policy;

typedef struct dc_cache_options {
    uint64_t max_entries;  /* 0 = no entry limit */
    uint64_t max_bytes;    /* 0 = no byte limit; counts values plus per-entry overhead */
    uint64_t ttl_seconds;  /* 0 = entries never expire */
    dc_cache_policy policy;
    uint32_t shards;       /* power of two; 0 = 16 */
    /* Wall-clock seconds for TTL (NULL = CLOCK_REALTIME); tests use a fake clock. */
    double (*now)(void *ctx);
    void *now_ctx;
    /* Checks each value read from a file (NULL = accept). A file with one bad value is
     * discarded as a whole. */
    bool (*validate)(void *ctx, const uint8_t *bytes, size_t len);
    void *validate_ctx;
    dc_rt_logger *log;
} dc_cache_options;

/* Options from the [cache] section (policy lru and ttl_lru → DC_CACHE_LRU, lfu, arc). */
void dc_cache_options_from_config(const dc_cache_config *cfg, dc_rt_logger *log,
                                  dc_cache_options *out);

typedef struct dc_cache_stats {
    uint64_t hits, misses, insertions, replacements, evictions, expirations, rejected;
    uint64_t entries, bytes;
    double hit_rate; /* hits / (hits + misses); 0 before any lookup */
} dc_cache_stats;

/* Per-entry bookkeeping counted against max_bytes on top of the value length. */
#define DC_CACHE_ENTRY_OVERHEAD 96u

dc_status dc_cache_create(const dc_cache_options *opt, dc_cache **out);
void dc_cache_destroy(dc_cache *c);

/* A hit gives a new reference in *out and makes the entry most recent. DC_ERR_NOT_FOUND on a
 * miss (or an expired entry, which is dropped). */
dc_status dc_cache_get(dc_cache *c, dc_hash128 key, const dc_cache_blob **out);
/* Copies the bytes in (replacing an entry with the same key) and evicts least-recent entries
 * until both budgets hold. A value larger than a shard's byte budget is refused (counted as
 * rejected; DC_ERR_CACHE). */
dc_status dc_cache_put(dc_cache *c, dc_hash128 key, const void *bytes, size_t len);
bool dc_cache_contains(dc_cache *c, dc_hash128 key);
bool dc_cache_remove(dc_cache *c, dc_hash128 key);
void dc_cache_clear(dc_cache *c);
void dc_cache_stats_get(dc_cache *c, dc_cache_stats *out);
void dc_cache_stats_reset(dc_cache *c);

/* ---- persistence ----
 * File layout (little-endian): magic "DCCACHE\0", u32 version (1), u32 flags (0), u64 entry
 * count, then per entry u64 key lo, u64 key hi, f64 creation time (Unix s), u32 hits, u32 value
 * length, value bytes; then an XXH3-64 of everything before it. Entries are written most recent
 * first, so a reload keeps the LRU order. */
#define DC_CACHE_FILE_VERSION 1u

/* All entries as file bytes (malloc'ed; caller frees). */
dc_status dc_cache_serialize(dc_cache *c, uint8_t **out, size_t *len);
/* Inserts the entries of file bytes. All or nothing: any defect (magic, version, checksum,
 * lengths, a value the validator refuses) is DC_ERR_SERIALIZATION and inserts nothing. Expired
 * entries are skipped. *loaded (may be NULL) receives the number inserted. */
dc_status dc_cache_deserialize(dc_cache *c, const uint8_t *bytes, size_t len, size_t *loaded);
/* Writes the file atomically (temporary file in the same folder, fsync, rename). */
dc_status dc_cache_save(dc_cache *c, const char *path);
/* Reads a file written by dc_cache_save. A missing file is DC_ERR_NOT_FOUND; a corrupted one is
 * DC_ERR_SERIALIZATION (logged as a warning, nothing inserted). */
dc_status dc_cache_load(dc_cache *c, const char *path, size_t *loaded);

#endif

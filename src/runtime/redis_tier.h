/* Shared cache tier in Redis (hiredis), so several processes share results. Internal header.
 *
 * Read-through with a timeout; write-behind through a bounded queue and a writer thread.
 * Values are the versioned cache records; keys are "dodeca:v1:<32 hex>" with the cache TTL.
 * An outage never fails a request: a lookup that cannot reach Redis is a miss, writes are
 * dropped (counted), and the connection is retried at most every retry_ms. */
#ifndef DC_RUNTIME_REDIS_TIER_H
#define DC_RUNTIME_REDIS_TIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dodeca/types.h"
#include "runtime/rt.h"

typedef struct dc_redis_tier dc_redis_tier;

typedef struct dc_redis_options {
    const char *url;        /* redis://[:password@]host[:port][/db] */
    uint32_t timeout_ms;    /* connect and per-command: 50 */
    uint32_t retry_ms;      /* after a failure, the next connection attempt: 1000 */
    uint32_t queue_cap;     /* pending writes: 1024 */
    uint64_t ttl_seconds;   /* 0 = no expiry */
    bool (*validate)(void *ctx, const uint8_t *bytes, size_t len); /* NULL = accept */
    void *validate_ctx;
    dc_rt_logger *log;
} dc_redis_options;

typedef struct dc_redis_stats {
    uint64_t hits, misses, errors, writes, writes_dropped, invalid;
    bool up;
} dc_redis_stats;

/* DC_ERR_CONFIG for a bad URL; DC_ERR_UNSUPPORTED_FORMAT when built without hiredis. Never
 * fails because Redis is down (it connects lazily). */
dc_status dc_redis_tier_create(const dc_redis_options *opt, dc_redis_tier **out);
void dc_redis_tier_destroy(dc_redis_tier *t);
/* DC_OK with malloc'ed bytes, DC_ERR_NOT_FOUND on a miss, an invalid value or an outage. */
dc_status dc_redis_tier_get(dc_redis_tier *t, dc_hash128 key, uint8_t **bytes, size_t *len);
/* Queues a write (copied); drops it when the queue is full. */
void dc_redis_tier_put(dc_redis_tier *t, dc_hash128 key, const uint8_t *bytes, size_t len);
/* Waits until queued writes were attempted (for tests and shutdown), at most timeout_ms. */
void dc_redis_tier_drain(dc_redis_tier *t, uint32_t timeout_ms);
void dc_redis_tier_stats(dc_redis_tier *t, dc_redis_stats *out);

/* Parses a redis URL; host must hold 256 bytes, password 256. */
dc_status dc_redis_url_parse(const char *url, char *host, int *port, char *password, int *db);

#endif

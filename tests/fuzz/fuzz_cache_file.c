/* Fuzz target: the cache persistence file (and the cache records inside it). Input byte 0
 * picks the mode: even = the bytes as they are (the checksum must reject nearly everything),
 * odd = the rest with a recomputed trailing checksum, so the entry parser and the record
 * decoder behind it see arbitrary contents. A file that loads must save and load back to the
 * same entries, and every loaded value must be a decodable record. */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "core/bytes.h"
#include "runtime/cache.h"
#include "runtime/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool check_record(void *ctx, const uint8_t *b, size_t len) {
    (void)ctx;
    return dc_record_check(b, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t *buf = malloc(size);
    if (!buf) return 0;
    size_t len = size - 1;
    memcpy(buf, data + 1, len);
    if ((data[0] & 1) && len >= 8) dc_put_u64le(buf + len - 8, XXH3_64bits(buf, len - 8));
    dc_cache_options o = {.max_entries = 256, .max_bytes = 1u << 24, .validate = check_record};
    dc_cache *c = NULL, *d = NULL;
    if (dc_cache_create(&o, &c) != DC_OK) abort();
    size_t loaded = 0;
    if (dc_cache_deserialize(c, buf, len, &loaded) == DC_OK) {
        uint8_t *img = NULL;
        size_t ilen = 0, again = 0;
        if (dc_cache_serialize(c, &img, &ilen) != DC_OK) abort();
        if (dc_cache_create(&o, &d) != DC_OK || dc_cache_deserialize(d, img, ilen, &again) != DC_OK ||
            again != loaded)
            abort(); /* what we wrote must read back whole */
        dc_cache_stats s;
        dc_cache_stats_get(d, &s);
        if (s.entries != loaded) abort();
        free(img);
        dc_cache_destroy(d);
    }
    dc_cache_destroy(c);
    free(buf);
    return 0;
}

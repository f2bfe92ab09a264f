/* In-process cache: identical bytes on a hit, LRU/LFU/ARC eviction under entry and byte budgets
 * (ARC: scans do not push out what is used again, ghosts adapt it, a randomised model check of
 * every policy against a plain map), TTL, metrics, persistence (round trip, every corrupted byte and truncation discarded with a
 * warning, validator refusals), and concurrent use. */
#include <pthread.h>

#include "runtime/cache.h"
#include "test_runtime_fake.h"

static double fake_now_value;
static double fake_now(void *ctx) {
    (void)ctx;
    return fake_now_value;
}

static int warnings_seen;
static void count_log(void *ctx, int level, const char *msg) {
    (void)ctx;
    (void)msg;
    if (level <= 1) warnings_seen++;
}

static dc_hash128 key_of(uint64_t i) {
    dc_hash128 k = {fake_mix(i), fake_mix(i ^ 0xABCDEFull)};
    return k;
}

static void value_of(uint64_t i, uint8_t *buf, size_t len) {
    uint64_t h = i;
    for (size_t j = 0; j < len; j++) {
        h = fake_mix(h);
        buf[j] = (uint8_t)h;
    }
}

static dc_cache *make_cache(uint64_t entries, uint64_t bytes, uint64_t ttl, dc_cache_policy pol,
                            dc_rt_logger *log) {
    dc_cache_options o = {.max_entries = entries, .max_bytes = bytes, .ttl_seconds = ttl,
                          .policy = pol, .now = fake_now, .log = log};
    dc_cache *c = NULL;
    assert_ok(dc_cache_create(&o, &c));
    return c;
}

static void test_hit_returns_identical_bytes(void **state) {
    (void)state;
    dc_cache *c = make_cache(1000, 1u << 20, 0, DC_CACHE_LRU, NULL);
    uint8_t v[300];
    value_of(1, v, sizeof v);
    const dc_cache_blob *b = NULL;
    assert_status(dc_cache_get(c, key_of(1), &b), DC_ERR_NOT_FOUND);
    assert_null(b);
    assert_ok(dc_cache_put(c, key_of(1), v, sizeof v));
    v[0] ^= 1; /* the cache copied the bytes */
    assert_ok(dc_cache_get(c, key_of(1), &b));
    assert_int_equal(b->len, sizeof v);
    v[0] ^= 1;
    assert_memory_equal(b->data, v, sizeof v);
    const dc_cache_blob *b2 = NULL;
    assert_ok(dc_cache_get(c, key_of(1), &b2));
    assert_ptr_equal(b, b2); /* shared, never re-encoded */
    /* a replaced entry stays valid for whoever holds it */
    uint8_t w[10] = {1, 2, 3};
    assert_ok(dc_cache_put(c, key_of(1), w, sizeof w));
    assert_memory_equal(b->data, v, sizeof v);
    dc_cache_blob_release(b);
    dc_cache_blob_release(b2);
    assert_ok(dc_cache_get(c, key_of(1), &b));
    assert_int_equal(b->len, 10);
    dc_cache_blob_release(b);
    dc_cache_stats s;
    dc_cache_stats_get(c, &s);
    assert_int_equal(s.hits, 3);
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.insertions, 2);
    assert_int_equal(s.replacements, 1);
    assert_int_equal(s.entries, 1);
    assert_int_equal(s.bytes, 10 + DC_CACHE_ENTRY_OVERHEAD);
    assert_true(s.hit_rate > 0.74 && s.hit_rate < 0.76);
    assert_true(dc_cache_remove(c, key_of(1)));
    assert_false(dc_cache_contains(c, key_of(1)));
    dc_cache_destroy(c);
}

static void test_lru_entry_budget(void **state) {
    (void)state;
    dc_cache *c = make_cache(16, 0, 0, DC_CACHE_LRU, NULL);
    uint8_t v[8];
    for (uint64_t i = 0; i < 16; i++) {
        value_of(i, v, sizeof v);
        assert_ok(dc_cache_put(c, key_of(i), v, sizeof v));
    }
    const dc_cache_blob *b;
    assert_ok(dc_cache_get(c, key_of(0), &b)); /* 0 becomes most recent */
    dc_cache_blob_release(b);
    for (uint64_t i = 16; i < 20; i++) assert_ok(dc_cache_put(c, key_of(i), v, sizeof v));
    assert_true(dc_cache_contains(c, key_of(0)));
    for (uint64_t i = 1; i <= 4; i++) assert_false(dc_cache_contains(c, key_of(i)));
    for (uint64_t i = 5; i < 20; i++) assert_true(dc_cache_contains(c, key_of(i)));
    dc_cache_stats s;
    dc_cache_stats_get(c, &s);
    assert_int_equal(s.entries, 16);
    assert_int_equal(s.evictions, 4);
    dc_cache_destroy(c);
}

static void test_byte_budget(void **state) {
    (void)state;
    uint64_t cost = 1000 + DC_CACHE_ENTRY_OVERHEAD;
    dc_cache *c = make_cache(0, 5 * cost, 0, DC_CACHE_LRU, NULL);
    uint8_t v[1000];
    for (uint64_t i = 0; i < 8; i++) assert_ok(dc_cache_put(c, key_of(i), v, sizeof v));
    dc_cache_stats s;
    dc_cache_stats_get(c, &s);
    assert_int_equal(s.entries, 5);
    assert_true(s.bytes <= 5 * cost);
    assert_false(dc_cache_contains(c, key_of(2)));
    assert_true(dc_cache_contains(c, key_of(7)));
    /* a value bigger than the whole budget is refused, not stored by evicting everything */
    uint8_t *big = calloc(1, 6 * cost);
    assert_status(dc_cache_put(c, key_of(100), big, 6 * cost), DC_ERR_CACHE);
    free(big);
    dc_cache_stats_get(c, &s);
    assert_int_equal(s.entries, 5);
    assert_int_equal(s.rejected, 1);
    dc_cache_destroy(c);
}

static void test_lfu_keeps_frequent(void **state) {
    (void)state;
    dc_cache *c = make_cache(16, 0, 0, DC_CACHE_LFU, NULL);
    uint8_t v[4] = {0};
    for (uint64_t i = 0; i < 16; i++) assert_ok(dc_cache_put(c, key_of(i), v, sizeof v));
    const dc_cache_blob *b;
    for (int r = 0; r < 3; r++) { /* 0 is the least recent but the most used */
        assert_ok(dc_cache_get(c, key_of(0), &b));
        dc_cache_blob_release(b);
    }
    for (uint64_t i = 1; i < 16; i++) { /* make everything else more recent than 0 */
        assert_ok(dc_cache_get(c, key_of(i), &b));
        dc_cache_blob_release(b);
    }
    assert_ok(dc_cache_put(c, key_of(99), v, sizeof v));
    assert_true(dc_cache_contains(c, key_of(0)));
    assert_false(dc_cache_contains(c, key_of(1)));
    dc_cache_destroy(c);
}

static bool has(dc_cache *c, uint64_t i) { return dc_cache_contains(c, key_of(i)); }

/* Puts keys [from, to) with an 8-byte value. */
static void put_range(dc_cache *c, uint64_t from, uint64_t to) {
    static const uint8_t v[8] = {0};
    for (uint64_t i = from; i < to; i++) assert_ok(dc_cache_put(c, key_of(i), v, sizeof v));
}

static void touch(dc_cache *c, uint64_t i) {
    const dc_cache_blob *b;
    assert_ok(dc_cache_get(c, key_of(i), &b));
    dc_cache_blob_release(b);
}

/* 8 entries used twice, then a scan of 100 one-off entries through a 16-entry cache: ARC keeps
 * the 8 (they are in T2, the scan churns T1); LRU keeps none of them. */
static void test_arc_resists_scans(void **state) {
    (void)state;
    const dc_cache_policy pol[2] = {DC_CACHE_ARC, DC_CACHE_LRU};
    for (int k = 0; k < 2; k++) {
        dc_cache *c = make_cache(16, 0, 0, pol[k], NULL);
        put_range(c, 0, 8);
        for (uint64_t i = 0; i < 8; i++) touch(c, i);
        put_range(c, 100, 200);
        for (uint64_t i = 0; i < 8; i++) assert_int_equal(has(c, i), pol[k] == DC_CACHE_ARC);
        dc_cache_stats st;
        dc_cache_stats_get(c, &st);
        assert_int_equal(st.entries, 16);
        assert_true(has(c, 199)); /* the newest of the scan is there under both */
        dc_cache_destroy(c);
    }
}

/* An entry evicted from T1 leaves a ghost: not visible (contains, get, remove), but its next
 * put goes to T2 and raises T1's target, so it then outlives a scan (under LRU it does not). */
static void test_arc_ghosts(void **state) {
    (void)state;
    const dc_cache_policy pol[2] = {DC_CACHE_ARC, DC_CACHE_LRU};
    for (int k = 0; k < 2; k++) {
        dc_cache *c = make_cache(4, 0, 0, pol[k], NULL);
        put_range(c, 0, 5);
        assert_false(has(c, 0)); /* evicted (a ghost under ARC) */
        const dc_cache_blob *b = NULL;
        assert_status(dc_cache_get(c, key_of(0), &b), DC_ERR_NOT_FOUND);
        assert_null(b);
        put_range(c, 0, 1); /* seen again */
        put_range(c, 10, 20);
        assert_int_equal(has(c, 0), pol[k] == DC_CACHE_ARC);
        assert_false(dc_cache_remove(c, key_of(10))); /* a ghost now: nothing to remove */
        assert_true(dc_cache_remove(c, key_of(19)));
        dc_cache_destroy(c);
    }
}

/* Every policy under entry and byte budgets, against a plain map of what was last put: a hit
 * returns exactly the last value put for its key, a removed key misses, and the budgets hold
 * after every operation. */
static void test_policies_model_check(void **state) {
    (void)state;
    enum { KEYS = 64, OPS = 20000 };
    const dc_cache_policy pol[3] = {DC_CACHE_LRU, DC_CACHE_LFU, DC_CACHE_ARC};
    for (int k = 0; k < 3; k++)
        for (int bytes_mode = 0; bytes_mode < 2; bytes_mode++) {
            const uint64_t max_bytes = bytes_mode ? 12 * (40 + DC_CACHE_ENTRY_OVERHEAD) : 0;
            dc_cache *c = make_cache(bytes_mode ? 0 : 12, max_bytes, 0, pol[k], NULL);
            uint32_t version[KEYS] = {0}; /* 0: absent, else the last value put */
            uint64_t x = 12345 + (uint64_t)k;
            for (int op = 0; op < OPS; op++) {
                x = fake_mix(x);
                const uint64_t key = x % KEYS;
                const int what = (int)((x >> 20) % 10);
                uint8_t v[80];
                if (what < 4) { /* put a new version, of a length that depends on it */
                    const uint32_t ver = (uint32_t)op + 1;
                    const size_t len = 8 + ver % 64;
                    value_of(key * 1000003u + ver, v, len);
                    assert_ok(dc_cache_put(c, key_of(key), v, len));
                    version[key] = ver;
                } else if (what < 9) {
                    const dc_cache_blob *b = NULL;
                    dc_status st = dc_cache_get(c, key_of(key), &b);
                    if (st == DC_OK) {
                        assert_true(version[key] != 0);
                        const size_t len = 8 + version[key] % 64;
                        value_of(key * 1000003u + version[key], v, len);
                        assert_int_equal(b->len, len);
                        assert_memory_equal(b->data, v, len);
                        dc_cache_blob_release(b);
                    } else {
                        assert_int_equal(st, DC_ERR_NOT_FOUND);
                    }
                } else {
                    dc_cache_remove(c, key_of(key));
                    version[key] = 0;
                    assert_false(has(c, key));
                }
                dc_cache_stats st;
                dc_cache_stats_get(c, &st);
                if (bytes_mode) assert_true(st.bytes <= max_bytes);
                else assert_true(st.entries <= 12);
            }
            dc_cache_destroy(c);
        }
}

static void test_ttl(void **state) {
    (void)state;
    fake_now_value = 1000.0;
    dc_cache *c = make_cache(100, 0, 60, DC_CACHE_LRU, NULL);
    uint8_t v[4] = {9};
    assert_ok(dc_cache_put(c, key_of(1), v, sizeof v));
    fake_now_value = 1059.0;
    const dc_cache_blob *b;
    assert_ok(dc_cache_get(c, key_of(1), &b));
    dc_cache_blob_release(b);
    fake_now_value = 1060.0;
    assert_status(dc_cache_get(c, key_of(1), &b), DC_ERR_NOT_FOUND);
    dc_cache_stats s;
    dc_cache_stats_get(c, &s);
    assert_int_equal(s.expirations, 1);
    assert_int_equal(s.entries, 0);
    dc_cache_destroy(c);
}

static dc_cache *filled_cache(int n) {
    dc_cache *c = make_cache(1000, 0, 0, DC_CACHE_LRU, NULL);
    uint8_t v[64];
    for (int i = 0; i < n; i++) {
        value_of((uint64_t)i, v, sizeof v);
        assert_ok(dc_cache_put(c, key_of((uint64_t)i), v, (size_t)(16 + i)));
    }
    return c;
}

static void test_persistence_round_trip(void **state) {
    (void)state;
    fake_now_value = 5000.0;
    dc_cache *c = filled_cache(20);
    const dc_cache_blob *b;
    assert_ok(dc_cache_get(c, key_of(3), &b));
    dc_cache_blob_release(b);
    char path[] = "/tmp/dc_cache_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_ok(dc_cache_save(c, path));
    dc_cache_destroy(c);

    dc_cache *d = make_cache(1000, 0, 0, DC_CACHE_LRU, NULL);
    size_t loaded = 0;
    assert_ok(dc_cache_load(d, path, &loaded));
    assert_int_equal(loaded, 20);
    uint8_t v[64];
    for (int i = 0; i < 20; i++) {
        value_of((uint64_t)i, v, sizeof v);
        assert_ok(dc_cache_get(d, key_of((uint64_t)i), &b));
        assert_int_equal(b->len, 16 + i);
        assert_memory_equal(b->data, v, b->len);
        dc_cache_blob_release(b);
    }
    /* a smaller cache keeps the most recent entries of the file */
    dc_cache *e = make_cache(4, 0, 0, DC_CACHE_LRU, NULL);
    assert_ok(dc_cache_load(e, path, &loaded));
    assert_int_equal(loaded, 4);
    assert_true(dc_cache_contains(e, key_of(3))); /* touched last before saving */
    assert_true(dc_cache_contains(e, key_of(19)));
    assert_false(dc_cache_contains(e, key_of(0)));
    dc_cache_destroy(e);
    /* expired entries are not loaded */
    fake_now_value = 5000.0 + 3600.0;
    dc_cache *t = make_cache(1000, 0, 60, DC_CACHE_LRU, NULL);
    assert_ok(dc_cache_load(t, path, &loaded));
    assert_int_equal(loaded, 0);
    dc_cache_destroy(t);
    dc_cache_destroy(d);
    unlink(path);
    dc_cache *m = make_cache(10, 0, 0, DC_CACHE_LRU, NULL);
    assert_status(dc_cache_load(m, path, &loaded), DC_ERR_NOT_FOUND);
    dc_cache_destroy(m);
}

/* Under ARC, an entry saved with hits comes back in T2: a scan after the load leaves it. */
static void test_arc_persistence(void **state) {
    (void)state;
    fake_now_value = 5000.0;
    dc_cache *c = filled_cache(20);
    touch(c, 3);
    char path[] = "/tmp/dc_cache_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_ok(dc_cache_save(c, path));
    dc_cache_destroy(c);
    dc_cache *d = make_cache(8, 0, 0, DC_CACHE_ARC, NULL);
    size_t loaded = 0;
    assert_ok(dc_cache_load(d, path, &loaded));
    assert_true(has(d, 3) && has(d, 19));
    put_range(d, 100, 140);
    assert_true(has(d, 3));   /* used before the save: T2 */
    assert_false(has(d, 19)); /* never used: scanned out of T1 */
    dc_cache_destroy(d);
    unlink(path);
}

static void test_corrupted_file_discarded(void **state) {
    (void)state;
    dc_cache *c = filled_cache(3);
    uint8_t *img = NULL;
    size_t len = 0;
    assert_ok(dc_cache_serialize(c, &img, &len));
    dc_cache_destroy(c);
    dc_rt_logger log = {.fn = count_log};
    /* every single flipped byte is caught */
    for (size_t i = 0; i < len; i++) {
        img[i] ^= 0x20;
        dc_cache *d = make_cache(100, 0, 0, DC_CACHE_LRU, &log);
        size_t loaded = 99;
        assert_status(dc_cache_deserialize(d, img, len, &loaded), DC_ERR_SERIALIZATION);
        assert_int_equal(loaded, 0);
        dc_cache_stats s;
        dc_cache_stats_get(d, &s);
        assert_int_equal(s.entries, 0);
        dc_cache_destroy(d);
        img[i] ^= 0x20;
    }
    /* and every truncation */
    for (size_t n = 0; n < len; n++) {
        dc_cache *d = make_cache(100, 0, 0, DC_CACHE_LRU, &log);
        assert_status(dc_cache_deserialize(d, img, n, NULL), DC_ERR_SERIALIZATION);
        dc_cache_destroy(d);
    }
    /* through the file API: a warning is logged and the file is not trusted */
    const char *path = dc_test_write_temp(img, len - 1, ".cache");
    warnings_seen = 0;
    dc_cache *d = make_cache(100, 0, 0, DC_CACHE_LRU, &log);
    assert_status(dc_cache_load(d, path, NULL), DC_ERR_SERIALIZATION);
    assert_detail_contains(path);
    assert_int_equal(warnings_seen, 1);
    assert_int_equal(dc_rt_get(&log.warnings), 1);
    dc_cache_destroy(d);
    free(img);
}

static bool refuse_odd(void *ctx, const uint8_t *bytes, size_t len) {
    (void)ctx;
    (void)bytes;
    return len % 2 == 0;
}

static void test_validator_refusal_discards_file(void **state) {
    (void)state;
    dc_cache *c = filled_cache(4); /* lengths 16, 17, 18, 19 */
    uint8_t *img = NULL;
    size_t len = 0;
    assert_ok(dc_cache_serialize(c, &img, &len));
    dc_cache_destroy(c);
    dc_cache_options o = {.max_entries = 100, .validate = refuse_odd, .now = fake_now};
    dc_cache *d = NULL;
    assert_ok(dc_cache_create(&o, &d));
    assert_status(dc_cache_deserialize(d, img, len, NULL), DC_ERR_SERIALIZATION);
    assert_detail_contains("does not decode");
    dc_cache_stats s;
    dc_cache_stats_get(d, &s);
    assert_int_equal(s.entries, 0);
    dc_cache_destroy(d);
    free(img);
}

typedef struct worker_arg {
    dc_cache *c;
    int id;
    int bad;
} worker_arg;

static void *cache_worker(void *p) {
    worker_arg *a = p;
    uint8_t v[200], want[200];
    uint64_t r = (uint64_t)a->id;
    for (int it = 0; it < 20000; it++) {
        r = fake_mix(r);
        uint64_t k = r % 500;
        size_t len = 20 + k % 180;
        if ((r >> 20) & 1) {
            value_of(k, v, len);
            if (dc_cache_put(a->c, key_of(k), v, len) != DC_OK) a->bad++;
        } else {
            const dc_cache_blob *b = NULL;
            if (dc_cache_get(a->c, key_of(k), &b) == DC_OK) {
                value_of(k, want, len);
                if (b->len != len || memcmp(b->data, want, len) != 0) a->bad++;
                dc_cache_blob_release(b);
            }
        }
    }
    return NULL;
}

static void concurrent_use(dc_cache_policy policy) {
    dc_cache_options o = {.max_entries = 300, .max_bytes = 64u << 10, .policy = policy};
    dc_cache *c = NULL;
    assert_ok(dc_cache_create(&o, &c));
    enum { T = 4 };
    pthread_t th[T];
    worker_arg a[T];
    for (int i = 0; i < T; i++) {
        a[i] = (worker_arg){c, i + 1, 0};
        assert_int_equal(pthread_create(&th[i], NULL, cache_worker, &a[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(a[i].bad, 0);
    }
    dc_cache_stats s;
    dc_cache_stats_get(c, &s);
    assert_true(s.entries <= 300);
    assert_true(s.bytes <= (64u << 10));
    assert_true(s.hits > 0 && s.evictions > 0);
    dc_cache_destroy(c);
}

static void test_concurrent_use(void **state) {
    (void)state;
    concurrent_use(DC_CACHE_LRU);
    concurrent_use(DC_CACHE_ARC); /* its ghosts and lists under the same shard locks */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_returns_identical_bytes),
        cmocka_unit_test(test_lru_entry_budget),
        cmocka_unit_test(test_byte_budget),
        cmocka_unit_test(test_lfu_keeps_frequent),
        cmocka_unit_test(test_arc_resists_scans),
        cmocka_unit_test(test_arc_ghosts),
        cmocka_unit_test(test_policies_model_check),
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_persistence_round_trip),
        cmocka_unit_test(test_arc_persistence),
        cmocka_unit_test(test_corrupted_file_discarded),
        cmocka_unit_test(test_validator_refusal_discards_file),
        cmocka_unit_test(test_concurrent_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

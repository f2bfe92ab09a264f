/* Redis cache tier: a small pool of read connections, a write-behind thread, outage backoff. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "runtime/redis_tier.h"

#define POOL 4

typedef struct pending_write {
    char key[48];
    uint8_t *bytes;
    size_t len;
} pending_write;

typedef struct conn {
    pthread_mutex_t mu;
    redisContext *ctx;
    uint64_t gen; /* outage generation it was opened in */
} conn;

struct dc_redis_tier {
    dc_redis_options opt;
    char host[256], password[256];
    int port, db;
    conn pool[POOL];
    atomic_uint next_conn;
    _Atomic uint64_t down_until_ns; /* no connection attempts before this */
    _Atomic uint64_t gen;           /* bumped by each failure: older connections are stale */
    /* write-behind */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pending_write *q;
    size_t head, count, cap;
    bool stop, writing;
    pthread_t writer;
    bool writer_started;
    redisContext *wctx;
    uint64_t wgen;
    atomic_uint_fast64_t hits, misses, errors, writes, dropped, invalid;
};

/* The URL for error messages, with the password (if any) replaced by "***". */
static const char *url_for_message(const char *url, char *buf, size_t size) {
    const char *at = strrchr(url, '@');
    if (!at || strncmp(url, "redis://", 8) != 0) return url;
    snprintf(buf, size, "redis://***%s", at);
    return buf;
}

dc_status dc_redis_url_parse(const char *url, char *host, int *port, char *password, int *db) {
    host[0] = password[0] = 0;
    char shown[600];
    *port = 6379;
    *db = 0;
    if (!url || strncmp(url, "redis://", 8) != 0)
        return dc_fail(DC_ERR_CONFIG, "cache.redis_url %s: expected redis://[:password@]host[:port][/db]",
                       url ? url_for_message(url, shown, sizeof shown) : "(null)");
    const char *s = url + 8, *at = strrchr(s, '@');
    if (at) {
        const char *colon = memchr(s, ':', (size_t)(at - s));
        const char *pw = colon ? colon + 1 : s;
        size_t n = (size_t)(at - pw);
        if (n >= 256) return dc_fail(DC_ERR_CONFIG, "cache.redis_url: password too long");
        memcpy(password, pw, n);
        password[n] = 0;
        s = at + 1;
    }
    const char *end = s + strcspn(s, "/");
    const char *colon = memchr(s, ':', (size_t)(end - s));
    size_t hl = colon ? (size_t)(colon - s) : (size_t)(end - s);
    if (!hl || hl >= 256) return dc_fail(DC_ERR_CONFIG, "cache.redis_url %s: bad host",
                                   url_for_message(url, shown, sizeof shown));
    memcpy(host, s, hl);
    host[hl] = 0;
    if (colon) {
        char *e = NULL;
        long v = strtol(colon + 1, &e, 10);
        if (e != end || v <= 0 || v > 65535) return dc_fail(DC_ERR_CONFIG, "cache.redis_url %s: bad port",
                                   url_for_message(url, shown, sizeof shown));
        *port = (int)v;
    }
    if (*end == '/' && end[1]) {
        char *e = NULL;
        long v = strtol(end + 1, &e, 10);
        if (*e || v < 0 || v > 1000000) return dc_fail(DC_ERR_CONFIG, "cache.redis_url %s: bad database",
                                   url_for_message(url, shown, sizeof shown));
        *db = (int)v;
    }
    return DC_OK;
}

static struct timeval tv_ms(uint32_t ms) {
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    return tv;
}

static bool is_down(dc_redis_tier *t) { return dc_rt_now_ns() < atomic_load(&t->down_until_ns); }

static void mark_down(dc_redis_tier *t, const char *what, const char *why) {
    uint64_t until = dc_rt_now_ns() + (uint64_t)t->opt.retry_ms * 1000000ull;
    uint64_t prev = atomic_exchange(&t->down_until_ns, until);
    atomic_fetch_add(&t->gen, 1);
    dc_rt_add(&t->errors, 1);
    if (prev < dc_rt_now_ns()) /* log once per outage window */
        dc_rt_log(t->opt.log, DC_RT_LOG_WARN, "redis %s:%d %s: %s; using the local cache only for %u ms",
                  t->host, t->port, what, why, t->opt.retry_ms);
}

/* A connected, authenticated context, or NULL (the tier is marked down). */
static redisContext *connect_one(dc_redis_tier *t) {
    redisContext *c = redisConnectWithTimeout(t->host, t->port, tv_ms(t->opt.timeout_ms));
    if (!c || c->err) {
        mark_down(t, "connect", c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv_ms(t->opt.timeout_ms));
    redisReply *r = NULL;
    if (t->password[0]) {
        r = redisCommand(c, "AUTH %s", t->password);
        if (!r || r->type == REDIS_REPLY_ERROR) goto bad;
        freeReplyObject(r);
    }
    if (t->db) {
        r = redisCommand(c, "SELECT %d", t->db);
        if (!r || r->type == REDIS_REPLY_ERROR) goto bad;
        freeReplyObject(r);
    }
    return c;
bad:
    mark_down(t, "handshake", r && r->str ? r->str : c->errstr);
    if (r) freeReplyObject(r);
    redisFree(c);
    return NULL;
}

static void key_text(dc_hash128 k, char out[48]) {
    char hex[33];
    dc_hash128_hex(k, hex);
    snprintf(out, 48, "dodeca:v1:%s", hex);
}

dc_status dc_redis_tier_get(dc_redis_tier *t, dc_hash128 key, uint8_t **bytes, size_t *len) {
    *bytes = NULL;
    *len = 0;
    if (!t || is_down(t)) {
        if (t) dc_rt_add(&t->misses, 1);
        return DC_ERR_NOT_FOUND;
    }
    char k[48];
    key_text(key, k);
    unsigned start = atomic_fetch_add(&t->next_conn, 1);
    conn *c = NULL;
    for (unsigned i = 0; i < POOL && !c; i++)
        if (pthread_mutex_trylock(&t->pool[(start + i) % POOL].mu) == 0) c = &t->pool[(start + i) % POOL];
    if (!c) {
        c = &t->pool[start % POOL];
        pthread_mutex_lock(&c->mu);
    }
    dc_status st = DC_ERR_NOT_FOUND;
    if (c->ctx && c->gen != atomic_load(&t->gen)) {
        /* opened before the last failure: its server may be gone, reconnect */
        redisFree(c->ctx);
        c->ctx = NULL;
    }
    if (!c->ctx && !is_down(t)) {
        c->gen = atomic_load(&t->gen);
        c->ctx = connect_one(t);
    }
    if (c->ctx) {
        redisReply *r = redisCommand(c->ctx, "GET %s", k);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            mark_down(t, "GET", r && r->str ? r->str : c->ctx->errstr);
            redisFree(c->ctx);
            c->ctx = NULL;
        } else if (r->type == REDIS_REPLY_STRING) {
            if (t->opt.validate && !t->opt.validate(t->opt.validate_ctx, (const uint8_t *)r->str, r->len)) {
                dc_rt_add(&t->invalid, 1); /* a foreign or damaged value is a miss, never trusted */
            } else if ((*bytes = malloc(r->len ? r->len : 1))) {
                memcpy(*bytes, r->str, r->len);
                *len = r->len;
                st = DC_OK;
            }
        }
        if (r) freeReplyObject(r);
    }
    pthread_mutex_unlock(&c->mu);
    dc_rt_add(st == DC_OK ? &t->hits : &t->misses, 1);
    return st;
}

void dc_redis_tier_put(dc_redis_tier *t, dc_hash128 key, const uint8_t *bytes, size_t len) {
    if (!t) return;
    if (is_down(t)) {
        dc_rt_add(&t->dropped, 1);
        return;
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) {
        dc_rt_add(&t->dropped, 1);
        return;
    }
    memcpy(copy, bytes, len);
    pthread_mutex_lock(&t->mu);
    if (t->count == t->cap || t->stop) {
        pthread_mutex_unlock(&t->mu);
        free(copy);
        dc_rt_add(&t->dropped, 1);
        return;
    }
    pending_write *w = &t->q[(t->head + t->count) % t->cap];
    key_text(key, w->key);
    w->bytes = copy;
    w->len = len;
    t->count++;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void *writer_main(void *p) {
    dc_redis_tier *t = p;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        while (!t->count && !t->stop) pthread_cond_wait(&t->cv, &t->mu);
        if (!t->count) break;
        pending_write w = t->q[t->head];
        t->head = (t->head + 1) % t->cap;
        t->count--;
        t->writing = true;
        pthread_mutex_unlock(&t->mu);
        bool done = false;
        if (t->wctx && t->wgen != atomic_load(&t->gen)) {
            redisFree(t->wctx);
            t->wctx = NULL;
        }
        if (!is_down(t)) {
            if (!t->wctx) {
                t->wgen = atomic_load(&t->gen);
                t->wctx = connect_one(t);
            }
            if (t->wctx) {
                char ttl[24];
                snprintf(ttl, sizeof ttl, "%" PRIu64, t->opt.ttl_seconds);
                redisReply *r = t->opt.ttl_seconds
                                    ? redisCommand(t->wctx, "SET %s %b EX %s", w.key, w.bytes, w.len, ttl)
                                    : redisCommand(t->wctx, "SET %s %b", w.key, w.bytes, w.len);
                if (!r || r->type == REDIS_REPLY_ERROR) {
                    mark_down(t, "SET", r && r->str ? r->str : t->wctx->errstr);
                    redisFree(t->wctx);
                    t->wctx = NULL;
                } else {
                    done = true;
                }
                if (r) freeReplyObject(r);
            }
        }
        dc_rt_add(done ? &t->writes : &t->dropped, 1);
        free(w.bytes);
        pthread_mutex_lock(&t->mu);
        t->writing = false;
        pthread_cond_broadcast(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

dc_status dc_redis_tier_create(const dc_redis_options *opt, dc_redis_tier **out) {
    *out = NULL;
    if (!opt || !opt->url) return dc_fail(DC_ERR_INVALID_ARGUMENT, "redis tier: no URL");
    dc_redis_tier *t = calloc(1, sizeof *t);
    if (!t) return dc_fail(DC_ERR_OUT_OF_MEMORY, "redis tier");
    dc_status st = dc_redis_url_parse(opt->url, t->host, &t->port, t->password, &t->db);
    if (st != DC_OK) {
        free(t);
        return st;
    }
    t->opt = *opt;
    t->opt.url = NULL; /* not kept: the caller's string */
    if (!t->opt.timeout_ms) t->opt.timeout_ms = 50;
    if (!t->opt.retry_ms) t->opt.retry_ms = 1000;
    t->cap = t->opt.queue_cap ? t->opt.queue_cap : 1024;
    t->q = calloc(t->cap, sizeof *t->q);
    if (!t->q) {
        free(t);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "redis write queue");
    }
    for (int i = 0; i < POOL; i++) pthread_mutex_init(&t->pool[i].mu, NULL);
    pthread_mutex_init(&t->mu, NULL);
    dc_rt_cond_init(&t->cv);
    if (pthread_create(&t->writer, NULL, writer_main, t) != 0) {
        dc_redis_tier_destroy(t);
        return dc_fail(DC_ERR_INTERNAL, "redis tier: cannot start the writer thread");
    }
    t->writer_started = true;
    *out = t;
    return DC_OK;
}

void dc_redis_tier_drain(dc_redis_tier *t, uint32_t timeout_ms) {
    if (!t) return;
    uint64_t until = dc_rt_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    pthread_mutex_lock(&t->mu);
    while ((t->count || t->writing) && dc_rt_now_ns() < until) dc_rt_cond_wait_until(&t->cv, &t->mu, until);
    pthread_mutex_unlock(&t->mu);
}

void dc_redis_tier_destroy(dc_redis_tier *t) {
    if (!t) return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    /* what is still queued is dropped: shutdown must not wait on an unreachable server */
    while (t->count) {
        free(t->q[t->head].bytes);
        t->head = (t->head + 1) % t->cap;
        t->count--;
        dc_rt_add(&t->dropped, 1);
    }
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    if (t->writer_started) pthread_join(t->writer, NULL);
    if (t->wctx) redisFree(t->wctx);
    for (int i = 0; i < POOL; i++) {
        if (t->pool[i].ctx) redisFree(t->pool[i].ctx);
        pthread_mutex_destroy(&t->pool[i].mu);
    }
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t->q);
    free(t);
}

void dc_redis_tier_stats(dc_redis_tier *t, dc_redis_stats *o) {
    memset(o, 0, sizeof *o);
    if (!t) return;
    o->hits = dc_rt_get(&t->hits);
    o->misses = dc_rt_get(&t->misses);
    o->errors = dc_rt_get(&t->errors);
    o->writes = dc_rt_get(&t->writes);
    o->writes_dropped = dc_rt_get(&t->dropped);
    o->invalid = dc_rt_get(&t->invalid);
    o->up = !is_down(t);
}

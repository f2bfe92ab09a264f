/* Runtime helpers: clocks, log sink, histograms. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "runtime/rt.h"

uint64_t dc_rt_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double dc_rt_wall_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void dc_rt_deadline_ts(uint64_t abs_ns, struct timespec *ts) {
    ts->tv_sec = (time_t)(abs_ns / 1000000000ull);
    ts->tv_nsec = (long)(abs_ns % 1000000000ull);
}

int dc_rt_cond_init(pthread_cond_t *c) {
    pthread_condattr_t a;
    int rc = pthread_condattr_init(&a);
    if (rc) return rc;
    rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (!rc) rc = pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
    return rc;
}

bool dc_rt_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, uint64_t abs_ns) {
    struct timespec ts;
    dc_rt_deadline_ts(abs_ns, &ts);
    return pthread_cond_timedwait(c, m, &ts) == ETIMEDOUT;
}

void dc_rt_sleep_ns(uint64_t ns) {
    struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- log ---- */

static int env_log_level(void) {
    const char *s = getenv("DODECA_LOG_LEVEL");
    if (!s || !*s) return DC_RT_LOG_WARN;
    if (!strcasecmp(s, "off") || !strcasecmp(s, "none")) return -1;
    if (!strcasecmp(s, "error")) return DC_RT_LOG_ERROR;
    if (!strcasecmp(s, "info")) return DC_RT_LOG_INFO;
    if (!strcasecmp(s, "debug") || !strcasecmp(s, "trace")) return DC_RT_LOG_DEBUG;
    return DC_RT_LOG_WARN;
}

void dc_rt_log(dc_rt_logger *lg, dc_rt_level level, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (lg && level <= DC_RT_LOG_WARN) dc_rt_add(&lg->warnings, 1);
    if (lg && lg->fn) {
        lg->fn(lg->ctx, (int)level, msg);
        return;
    }
    if ((int)level > env_log_level()) return;
    static const char *const names[] = {"error", "warning", "info", "debug"};
    fprintf(stderr, "dodeca: %s: %s\n", names[level], msg);
}

/* ---- histogram ---- */

static unsigned bucket_of(uint64_t us) {
    if (us < DC_HIST_SUB) return (unsigned)us; /* 0..3 exact */
    unsigned msb = 63u - (unsigned)__builtin_clzll(us);
    unsigned sub = (unsigned)((us >> (msb - 2)) & (DC_HIST_SUB - 1));
    unsigned b = (msb - 1) * DC_HIST_SUB + sub;
    return b < DC_HIST_BUCKETS ? b : DC_HIST_BUCKETS - 1;
}

/* Largest value that falls into bucket b. */
static uint64_t bucket_upper(unsigned b) {
    if (b < DC_HIST_SUB) return b;
    unsigned msb = b / DC_HIST_SUB + 1, sub = b % DC_HIST_SUB;
    uint64_t lo = (1ull << msb) + ((uint64_t)sub << (msb - 2));
    return lo + (1ull << (msb - 2)) - 1;
}

void dc_hist_record(dc_hist *h, uint64_t us) {
    dc_rt_add(&h->count, 1);
    dc_rt_add(&h->sum_us, us);
    dc_rt_max(&h->max_us, us);
    dc_rt_add(&h->bucket[bucket_of(us)], 1);
}

uint64_t dc_hist_count(const dc_hist *h) { return dc_rt_get(&h->count); }

double dc_hist_mean(const dc_hist *h) {
    uint64_t n = dc_rt_get(&h->count);
    return n ? (double)dc_rt_get(&h->sum_us) / (double)n : 0.0;
}

uint64_t dc_hist_quantile(const dc_hist *h, double q) {
    uint64_t total = 0;
    for (unsigned b = 0; b < DC_HIST_BUCKETS; b++) total += dc_rt_get(&h->bucket[b]);
    if (!total) return 0;
    if (q < 0) q = 0;
    if (q > 1) q = 1;
    uint64_t rank = (uint64_t)(q * (double)(total - 1)) + 1, seen = 0;
    uint64_t mx = dc_rt_get(&h->max_us);
    for (unsigned b = 0; b < DC_HIST_BUCKETS; b++) {
        seen += dc_rt_get(&h->bucket[b]);
        if (seen >= rank) {
            uint64_t u = bucket_upper(b);
            return u < mx ? u : mx;
        }
    }
    return mx;
}

void dc_hist_reset(dc_hist *h) {
    atomic_store(&h->count, 0);
    atomic_store(&h->sum_us, 0);
    atomic_store(&h->max_us, 0);
    for (unsigned b = 0; b < DC_HIST_BUCKETS; b++) atomic_store(&h->bucket[b], 0);
}

void dc_rt_capture_detail(char *buf, size_t cap) {
    if (!cap) return;
    snprintf(buf, cap, "%s", dc_error_detail());
}

void dc_rt_buf_printf(dc_rt_buf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->p && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + (size_t)n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

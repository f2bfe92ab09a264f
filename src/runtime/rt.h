/* Internal helpers shared by the runtime: clocks, the log sink, latency histograms and small
 * synchronisation utilities. Nothing here is part of the public API. */
#ifndef DC_RUNTIME_RT_H
#define DC_RUNTIME_RT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* ---- clocks ---- */

/* Monotonic nanoseconds (CLOCK_MONOTONIC). */
uint64_t dc_rt_now_ns(void);
/* Unix time in seconds with sub-second precision (CLOCK_REALTIME). */
double dc_rt_wall_seconds(void);
/* Absolute CLOCK_MONOTONIC timespec `ns` from now, for pthread_cond_timedwait on a condition
 * created by dc_rt_cond_init. */
void dc_rt_deadline_ts(uint64_t abs_ns, struct timespec *ts);
/* A condition variable that waits on CLOCK_MONOTONIC (wall-clock jumps do not shorten or
 * stretch deadlines). */
int dc_rt_cond_init(pthread_cond_t *c);
/* Waits until signalled or until the monotonic time abs_ns; returns true on timeout. */
bool dc_rt_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, uint64_t abs_ns);
void dc_rt_sleep_ns(uint64_t ns);

/* ---- log sink ---- */

typedef enum dc_rt_level {
    DC_RT_LOG_ERROR = 0,
    DC_RT_LOG_WARN = 1,
    DC_RT_LOG_INFO = 2,
    DC_RT_LOG_DEBUG = 3,
} dc_rt_level;

typedef void (*dc_rt_log_fn)(void *ctx, int level, const char *msg);

typedef struct dc_rt_logger {
    dc_rt_log_fn fn; /* NULL: stderr, filtered by DODECA_LOG_LEVEL (default warn) */
    void *ctx;
    atomic_uint_fast64_t warnings; /* warnings and errors emitted, for stats and tests */
} dc_rt_logger;

void dc_rt_log(dc_rt_logger *lg, dc_rt_level level, const char *fmt, ...) DC_PRINTF(3, 4);

/* ---- latency histogram ----
 * Log-linear buckets over microseconds: 4 sub-buckets per power of two up to ~2^40 µs, so a
 * percentile is within 19 % of the true value. Lock-free recording (relaxed atomics). */
#define DC_HIST_SUB 4
#define DC_HIST_BUCKETS (41 * DC_HIST_SUB)

typedef struct dc_hist {
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_us;
    atomic_uint_fast64_t max_us;
    atomic_uint_fast64_t bucket[DC_HIST_BUCKETS];
} dc_hist;

void dc_hist_record(dc_hist *h, uint64_t us);
/* q in [0,1]; 0 when empty. Returns the upper edge of the bucket holding the quantile, clamped
 * to the largest value seen. */
uint64_t dc_hist_quantile(const dc_hist *h, double q);
uint64_t dc_hist_count(const dc_hist *h);
double dc_hist_mean(const dc_hist *h);
void dc_hist_reset(dc_hist *h);

static inline void dc_rt_add(atomic_uint_fast64_t *a, uint64_t v) {
    atomic_fetch_add_explicit(a, v, memory_order_relaxed);
}
static inline uint64_t dc_rt_get(const atomic_uint_fast64_t *a) {
    return atomic_load_explicit(a, memory_order_relaxed);
}
static inline void dc_rt_max(atomic_uint_fast64_t *a, uint64_t v) {
    uint64_t cur = atomic_load_explicit(a, memory_order_relaxed);
    while (cur < v && !atomic_compare_exchange_weak_explicit(a, &cur, v, memory_order_relaxed,
                                                             memory_order_relaxed)) {
    }
}

/* ---- growable text buffer ---- */
typedef struct dc_rt_buf {
    char *p;
    size_t len, cap;
    bool oom;
} dc_rt_buf;
void dc_rt_buf_printf(dc_rt_buf *b, const char *fmt, ...) DC_PRINTF(2, 3);

/* ---- detail capture: the thread-local error detail, copied so another thread can report it */
#define DC_RT_DETAIL_MAX 384
void dc_rt_capture_detail(char *buf, size_t cap);

#endif

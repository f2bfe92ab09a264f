/* `dodeca embed` progress line (see embed_progress.h). The rate counts items embedded in this
 * run; the time left scales the elapsed time by the bytes of input still unread. */
#include "cli/embed_progress.h"

#include <stdio.h>
#include <time.h>

static double dc_embed_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void dc_embed_progress_init(dc_embed_progress *p, bool on, bool tty, uint64_t total_bytes) {
    p->on = on;
    p->tty = tty;
    p->start = p->last = dc_embed_now();
    p->total_bytes = total_bytes;
    p->drawn = false;
}

static void dc_embed_duration(double s, char *out, size_t cap) {
    if (s < 0 || s > 359999) {
        snprintf(out, cap, "--:--");
        return;
    }
    unsigned long t = (unsigned long)(s + 0.5);
    if (t >= 3600) snprintf(out, cap, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
    else snprintf(out, cap, "%lu:%02lu", t / 60, t % 60);
}

void dc_embed_progress_update(dc_embed_progress *p, size_t done, size_t failed, size_t skipped,
                              uint64_t bytes_done, bool final) {
    if (!p->on) return;
    double now = dc_embed_now();
    if (!final && p->drawn && now - p->last < (p->tty ? 0.1 : 1.0)) return;
    p->last = now;
    p->drawn = true;
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)done / elapsed : 0;
    char line[256], el[32];
    int n = 0;
    dc_embed_duration(elapsed, el, sizeof el);
    if (p->total_bytes) {
        double frac = (double)bytes_done / (double)p->total_bytes;
        if (frac > 1) frac = 1;
        char eta[32];
        dc_embed_duration(frac > 0 ? elapsed * (1 - frac) / frac : -1, eta, sizeof eta);
        char bar[21];
        int fill = (int)(frac * 20 + 0.5);
        for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : '.';
        bar[20] = '\0';
        n = snprintf(line, sizeof line, "[%s] %3d%% %zu items  %.1f/s  elapsed %s  eta %s", bar,
                     (int)(frac * 100), done, rate, el, final ? "0:00" : eta);
    } else {
        n = snprintf(line, sizeof line, "%zu items  %.1f/s  elapsed %s", done, rate, el);
    }
    if (failed && n > 0 && (size_t)n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, "  %zu failed", failed);
    if (skipped && n > 0 && (size_t)n < sizeof line)
        snprintf(line + n, sizeof line - (size_t)n, "  %zu skipped (done before)", skipped);
    if (p->tty) fprintf(stderr, "\r\033[K%s%s", line, final ? "\n" : "");
    else fprintf(stderr, "%s\n", line);
    fflush(stderr);
}

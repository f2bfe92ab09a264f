/* The watcher of client_watch.h: one thread, poll(2) over a snapshot of the watched sockets. */
#define _GNU_SOURCE /* POLLRDHUP: the peer closed its side (Linux) */
#include "server/client_watch.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "core/error.h"

#ifndef POLLRDHUP
#define POLLRDHUP 0 /* elsewhere a closed peer shows as POLLHUP or POLLERR only */
#endif

/* How long a poll waits, so that new sockets and stop are seen soon enough. */
#define DC_WATCH_TICK_MS 20

typedef struct watch_slot {
    int fd;                 /* -1: free */
    dc_cancel_token *token;
    uint64_t gen;           /* changes at every add: a stale snapshot never hits a new one */
    bool fired;
} watch_slot;

struct dc_client_watch {
    pthread_mutex_t mu;
    pthread_cond_t wake; /* a socket added, or stop */
    pthread_t thread;
    watch_slot *slot;
    uint32_t cap;
    uint64_t next_gen;
    bool stop;
};

static void *watch_loop(void *arg) {
    dc_client_watch *w = arg;
    struct pollfd *pf = malloc(w->cap * sizeof *pf);
    uint32_t *idx = malloc(w->cap * sizeof *idx);
    uint64_t *gen = malloc(w->cap * sizeof *gen);
    if (!pf || !idx || !gen) { /* nothing is watched: requests run to their end, as before */
        free(pf), free(idx), free(gen);
        return NULL;
    }
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        nfds_t n = 0;
        for (uint32_t i = 0; i < w->cap; i++)
            if (w->slot[i].fd >= 0 && !w->slot[i].fired) {
                pf[n] = (struct pollfd){.fd = w->slot[i].fd, .events = POLLRDHUP};
                idx[n] = i;
                gen[n++] = w->slot[i].gen;
            }
        if (!n) {
            pthread_cond_wait(&w->wake, &w->mu);
            continue;
        }
        pthread_mutex_unlock(&w->mu);
        int ready = poll(pf, n, DC_WATCH_TICK_MS);
        pthread_mutex_lock(&w->mu);
        for (nfds_t k = 0; ready > 0 && k < n; k++) {
            watch_slot *s = &w->slot[idx[k]];
            if (!(pf[k].revents & (POLLRDHUP | POLLHUP | POLLERR)) || s->gen != gen[k] ||
                s->fd < 0 || s->fired)
                continue;
            s->fired = true; /* cancelled under the lock: remove() cannot have freed it */
            dc_cancel_token_cancel(s->token);
        }
    }
    pthread_mutex_unlock(&w->mu);
    free(pf), free(idx), free(gen);
    return NULL;
}

dc_status dc_client_watch_start(uint32_t capacity, dc_client_watch **out) {
    *out = NULL;
    dc_client_watch *w = calloc(1, sizeof *w);
    if (!w || !capacity || !(w->slot = calloc(capacity, sizeof *w->slot))) {
        free(w);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "client watch of %u sockets", capacity);
    }
    w->cap = capacity;
    for (uint32_t i = 0; i < capacity; i++) w->slot[i].fd = -1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->wake, NULL);
    int e = pthread_create(&w->thread, NULL, watch_loop, w);
    if (e) {
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->mu);
        free(w->slot);
        free(w);
        return dc_fail(DC_ERR_INTERNAL, "client watch thread: error %d", e);
    }
    *out = w;
    return DC_OK;
}

void dc_client_watch_stop(dc_client_watch *w) {
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->mu);
    free(w->slot);
    free(w);
}

dc_status dc_client_watch_add(dc_client_watch *w, int fd, dc_cancel_token *t, uint32_t *slot) {
    if (!w || fd < 0 || !t) return dc_fail(DC_ERR_INVALID_ARGUMENT, "client watch: bad argument");
    pthread_mutex_lock(&w->mu);
    for (uint32_t i = 0; i < w->cap; i++)
        if (w->slot[i].fd < 0) {
            w->slot[i] = (watch_slot){fd, t, ++w->next_gen, false};
            *slot = i;
            pthread_cond_signal(&w->wake);
            pthread_mutex_unlock(&w->mu);
            return DC_OK;
        }
    pthread_mutex_unlock(&w->mu);
    return dc_fail(DC_ERR_OVERLOADED, "client watch: all %u slots taken", w->cap);
}

void dc_client_watch_remove(dc_client_watch *w, uint32_t slot) {
    if (!w || slot >= w->cap) return;
    pthread_mutex_lock(&w->mu);
    w->slot[slot].fd = -1;
    w->slot[slot].token = NULL;
    pthread_mutex_unlock(&w->mu);
}

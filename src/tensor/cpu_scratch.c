#include "tensor/cpu_scratch.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

typedef struct scratch {
    void *p[DC_SCRATCH_SLOTS];
    size_t cap[DC_SCRATCH_SLOTS];
} scratch;

static _Thread_local scratch tls_scratch;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static bool scratch_key_ok;

static void scratch_release(void *p) {
    scratch *s = p;
    for (int i = 0; i < DC_SCRATCH_SLOTS; i++) {
        free(s->p[i]);
        s->p[i] = NULL;
        s->cap[i] = 0;
    }
}

static void scratch_key_make(void) {
    scratch_key_ok = pthread_key_create(&scratch_key, scratch_release) == 0;
}

void *dc_cpu_scratch(dc_scratch_slot slot, size_t bytes) {
    scratch *s = &tls_scratch;
    if (s->cap[slot] >= bytes && s->p[slot]) return s->p[slot];
    pthread_once(&scratch_once, scratch_key_make);
    free(s->p[slot]);
    s->p[slot] = NULL;
    s->cap[slot] = 0;
    if (posix_memalign(&s->p[slot], 64, bytes ? bytes : 64) != 0) {
        s->p[slot] = NULL;
        return NULL;
    }
    s->cap[slot] = bytes;
    /* a thread that ends frees its buffers; the main thread's live to the exit */
    if (scratch_key_ok) pthread_setspecific(scratch_key, s);
    return s->p[slot];
}

void dc_cpu_scratch_trim(dc_scratch_slot slot, size_t keep) {
    scratch *s = &tls_scratch;
    if (s->cap[slot] <= keep) return;
    free(s->p[slot]);
    s->p[slot] = NULL;
    s->cap[slot] = 0;
}

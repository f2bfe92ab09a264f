/* The dc_pipeline object, shared by the pipeline's source files. Internal header. */
#ifndef DC_RUNTIME_PIPELINE_INTERNAL_H
#define DC_RUNTIME_PIPELINE_INTERNAL_H

#include <stdatomic.h>

#include "dodeca/pipeline.h"
#include "fusion/fusemoe.h"
#include "runtime/batch.h"
#include "runtime/cache.h"
#include "runtime/factory.h"
#include "runtime/redis_tier.h"
#include "runtime/registry.h"
#include "runtime/tokenise.h"
#include "runtime/rt.h"
#include "runtime/trace.h"

#if defined(__has_include)
#if __has_include("dodeca/privacy.h")
#define DC_HAVE_PRIVACY 1
#include "dodeca/privacy.h"
#endif
#endif

typedef struct dc_model_counters {
    atomic_uint_fast64_t ok, timeouts, failures, skipped;
    _Atomic uint32_t recent;  /* last 20 outcomes, bit = timeout or failure */
    _Atomic uint32_t recent_n;
} dc_model_counters;

/* Errors per second over the last minute. */
typedef struct dc_err_window {
    pthread_mutex_t mu;
    uint64_t second[60];
    uint32_t count[60];
} dc_err_window;

struct dc_pipeline {
    dc_config cfg;
    dc_pipeline_options opt;
    dc_rt_logger log;
    dc_builtin_factory *builtin;
    const dc_model_factory *factory;
    dc_registry *reg;
    dc_batch_queue *queue[DC_NUM_MODELS];
    dc_fusemoe *fusion;
    dc_hash128 fusion_version;
    dc_cache *cache;          /* NULL when cache.enabled is false */
    dc_redis_tier *redis;     /* NULL without cache.redis_url */
    dc_tracer *tracer;
    dc_tok_share *tok;        /* the tokenise stage; NULL with a factory of the caller's */
    bool trace_on;
#ifdef DC_HAVE_PRIVACY
    dc_scrubber *scrubber;    /* NULL when pii.enabled is false */
#endif
    uint32_t deadline_ms;
    uint64_t open_ns;
    atomic_uint_fast64_t next_request;

    pthread_mutex_t mu;       /* calls in flight, for close */
    pthread_cond_t cv;
    uint32_t inflight;
    bool closing;

    atomic_uint_fast64_t requests, embeddings, errors, overloaded, timeouts, cancelled;
    dc_hist h_total, h_prepare, h_lookup, h_tokenise, h_models, h_fusion, h_store;
    dc_model_counters mc[DC_NUM_MODELS];
    dc_err_window errs;

    pthread_mutex_t warm_mu;
    dc_warmup_report warm;
};

struct dc_cancel_token {
    atomic_bool cancelled;
};

void dc_pl_errors_add(dc_err_window *w, uint32_t n);
uint32_t dc_pl_errors_last_minute(dc_err_window *w);

#endif

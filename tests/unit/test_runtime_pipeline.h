/* Helpers for the pipeline tests: a pipeline over fake models with a small fusion. */
#ifndef DC_TEST_RUNTIME_PIPELINE_H
#define DC_TEST_RUNTIME_PIPELINE_H

#include <math.h>
#include <pthread.h>

#include "dodeca/pipeline.h"
#include "runtime/rt.h"
#include "test_runtime_fake.h"

typedef struct rt_env {
    fake_factory *ff;
    dc_config cfg;
    dc_pipeline_options opt;
    dc_pipeline *p;
    atomic_int warnings;
} rt_env;

static inline void rt_count_log(void *ctx, int level, const char *msg) {
    rt_env *e = ctx;
    (void)msg;
    if (level <= 1) atomic_fetch_add(&e->warnings, 1);
}

/* Defaults for fast tests: a small fusion (same algorithm, narrow experts), short deadline. */
static inline void rt_env_init(rt_env *e, uint32_t mask) {
    memset(e, 0, sizeof *e);
    e->ff = fake_factory_new(mask);
    dc_config_defaults(&e->cfg);
    e->cfg.fusion.expert_hidden_dim = 64;
    e->cfg.pipeline.deadline_ms = 2000;
    dc_pipeline_options_default(&e->opt);
    e->opt.factory = &e->ff->base;
    e->opt.warmup = false;
    e->opt.log = rt_count_log;
    e->opt.log_ctx = e;
    e->opt.load_retry_ms = 0;
}

static inline void rt_env_open(rt_env *e) {
    assert_ok(dc_pipeline_open_ex(&e->cfg, &e->opt, &e->p));
}

static inline void rt_env_close(rt_env *e) {
    dc_pipeline_close(e->p);
    e->p = NULL;
    free(e->ff);
    e->ff = NULL;
}

/* Checks each OK model's vector against the fake model's formula. */
static inline void rt_check_models(const dc_pipeline_result *r, const char *content, size_t len,
                                   uint64_t seed) {
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        const dc_model_result *m = &r->models[i];
        if (m->status != DC_RUN_OK) {
            assert_null(m->vector);
            continue;
        }
        uint32_t dim = dc_model_info_get((dc_model_id)i)->dim;
        assert_int_equal(m->dim, dim);
        float *want = malloc(dim * sizeof *want);
        fake_vector(seed, (dc_model_id)i, content, len, want, dim);
        assert_memory_equal(m->vector, want, dim * sizeof *want);
        free(want);
    }
}

static inline double rt_norm(const float *v, size_t n) { return dc_vec_l2_norm(v, n); }

#endif

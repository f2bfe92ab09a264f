/* E2 temporal-recent, E3 temporal-periodic, E4 temporal-positional behind the dc_model vtable.
 *
 * Missing times (docs/custom-models.md): the event time is t_event, else t_ref, else 0 (the Unix
 * epoch); the reference time is t_ref, else the event time. So a missing t_event or t_ref gives
 * E2 dt = 0, and E3/E4 encode t_ref when t_event is absent. The pipeline always fills t_ref. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "models/custom.h"
#include "models/temporal_encode.h"

typedef struct temporal_model {
    dc_model base; /* first: the dc_model handed out is this struct */
    dc_temporal_options opt;
    dc_temporal_tables tables;
} temporal_model;

dc_temporal_options dc_temporal_options_default(void) {
    dc_temporal_options o = {0};
    return o;
}

/* Latency accounting only; the monotonic clock never enters a vector. */
static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static dc_status resolve_times(const dc_input *in, size_t item, double *event, double *ref) {
    dc_status st;
    if (in->has_t_event && (st = dc_temporal_check_time(in->t_event, "t_event")) != DC_OK)
        return dc_fail_context(st, "item %zu", item);
    if (in->has_t_ref && (st = dc_temporal_check_time(in->t_ref, "t_ref")) != DC_OK)
        return dc_fail_context(st, "item %zu", item);
    *event = in->has_t_event ? in->t_event : in->has_t_ref ? in->t_ref : 0.0;
    *ref = in->has_t_ref ? in->t_ref : *event;
    return DC_OK;
}

static dc_status temporal_load(dc_model *m) {
    (void)m; /* the tables are built at creation; nothing to read */
    return DC_OK;
}

static dc_status temporal_unload(dc_model *m) {
    (void)m;
    return DC_OK;
}

static size_t temporal_memory(const dc_model *m) {
    (void)m;
    return sizeof(temporal_model);
}

static void temporal_destroy(dc_model *m) {
    free(m);
}

static dc_status temporal_embed(dc_model *m, const dc_input *inputs, size_t n,
                                dc_model_embedding *out) {
    const temporal_model *tm = (const temporal_model *)m;
    float v[DC_TEMPORAL_DIM];
    for (size_t i = 0; i < n; i++) {
        uint64_t start = now_us();
        double event = 0, ref = 0;
        dc_status st = resolve_times(&inputs[i], i, &event, &ref);
        if (st != DC_OK) return st;
        switch (m->info->id) {
        case DC_MODEL_TEMPORAL_RECENT:
            dc_temporal_recent_encode(&tm->tables, event, ref, v);
            break;
        case DC_MODEL_TEMPORAL_PERIODIC:
            dc_temporal_periodic_encode(event, tm->opt.utc_offset_minutes, v);
            break;
        default:
            dc_temporal_positional_encode(&tm->tables, event,
                                          inputs[i].has_position ? inputs[i].position : 0, v);
            break;
        }
        if ((st = dc_model_embedding_init(&out[i], m->info->id, v, DC_TEMPORAL_DIM)) != DC_OK)
            return st;
        out[i].tokens_used = 0; /* no text is read */
        out[i].truncated = false;
        out[i].latency_us = now_us() - start;
    }
    return DC_OK;
}

static const dc_model_vtable temporal_vt = {temporal_load, temporal_unload, temporal_embed,
                                            temporal_memory, temporal_destroy};

static dc_status temporal_create(dc_model_id id, const dc_temporal_options *opt, dc_model **out) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "temporal create: NULL output");
    *out = NULL;
    dc_temporal_options o = opt ? *opt : dc_temporal_options_default();
    if (o.utc_offset_minutes < -DC_TEMPORAL_MAX_UTC_OFFSET_MINUTES ||
        o.utc_offset_minutes > DC_TEMPORAL_MAX_UTC_OFFSET_MINUTES)
        return dc_fail(DC_ERR_CONFIG, "utc_offset_minutes = %d is outside -1080 .. 1080 (+-18 h)",
                       (int)o.utc_offset_minutes);
    temporal_model *tm = calloc(1, sizeof *tm);
    if (!tm) return dc_fail(DC_ERR_OUT_OF_MEMORY, "temporal model: %zu bytes", sizeof *tm);
    dc_status st = dc_model_init(&tm->base, id, &temporal_vt, tm);
    if (st != DC_OK) {
        free(tm);
        return st;
    }
    tm->opt = o;
    dc_temporal_tables_init(&tm->tables);
    *out = &tm->base;
    return DC_OK;
}

dc_status dc_temporal_recent_create(const dc_temporal_options *opt, dc_model **out) {
    return temporal_create(DC_MODEL_TEMPORAL_RECENT, opt, out);
}

dc_status dc_temporal_periodic_create(const dc_temporal_options *opt, dc_model **out) {
    return temporal_create(DC_MODEL_TEMPORAL_PERIODIC, opt, out);
}

dc_status dc_temporal_positional_create(const dc_temporal_options *opt, dc_model **out) {
    return temporal_create(DC_MODEL_TEMPORAL_POSITIONAL, opt, out);
}

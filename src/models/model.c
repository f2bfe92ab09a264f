/* The model interface: rules shared by every implementation (seed F09, F10). */
#include <string.h>

#include "core/error.h"
#include "dodeca/model.h"

dc_status dc_model_init(dc_model *m, dc_model_id id, const dc_model_vtable *vt, void *impl) {
    if (!m || !vt || !vt->load || !vt->unload || !vt->embed_batch || !vt->destroy)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "model init: NULL model or incomplete vtable");
    const dc_model_info *info = dc_model_info_get(id);
    if (!info) return dc_fail(DC_ERR_MODEL_NOT_FOUND, "model id %d is out of range", (int)id);
    memset(m, 0, sizeof *m);
    m->vt = vt;
    m->info = info;
    m->impl = impl;
    return DC_OK;
}

dc_status dc_model_load(dc_model *m) {
    if (!m) return dc_fail(DC_ERR_INVALID_ARGUMENT, "model is NULL");
    if (m->loaded) return DC_OK;
    dc_status st = m->vt->load(m);
    if (st != DC_OK) return dc_fail_context(st, "loading %s (%s)", m->info->label, m->info->name);
    m->loaded = true;
    return DC_OK;
}

dc_status dc_model_unload(dc_model *m) {
    if (!m) return dc_fail(DC_ERR_INVALID_ARGUMENT, "model is NULL");
    if (!m->loaded) return DC_OK;
    dc_status st = m->vt->unload(m);
    /* Whatever unload reports, the model is no longer usable. */
    m->loaded = false;
    return st;
}

bool dc_model_is_loaded(const dc_model *m) { return m && m->loaded; }
dc_model_id dc_model_id_of(const dc_model *m) { return m->info->id; }
uint32_t dc_model_dimension(const dc_model *m) { return m->info->dim; }
uint32_t dc_model_max_tokens(const dc_model *m) { return m->info->max_tokens; }

bool dc_model_supports(const dc_model *m, dc_input_type type) {
    return m && dc_model_accepts(m->info->id, type);
}

size_t dc_model_memory_usage(const dc_model *m) {
    return m && m->loaded && m->vt->memory_usage ? m->vt->memory_usage(m) : 0;
}

static void free_outputs(dc_model_embedding *out, size_t n) {
    for (size_t i = 0; i < n; i++) dc_model_embedding_free(&out[i]);
}

dc_status dc_model_embed_batch(dc_model *m, const dc_input *inputs, size_t n,
                               dc_model_embedding *out) {
    if (!m || (n && (!inputs || !out)))
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "embed_batch: NULL model, inputs or outputs");
    const dc_model_info *info = m->info;
    if (!m->loaded)
        return dc_fail(DC_ERR_NOT_INITIALIZED, "%s (%s) is not loaded", info->label, info->name);
    for (size_t i = 0; i < n; i++) {
        dc_status st = dc_input_validate(&inputs[i]);
        if (st != DC_OK) return dc_fail_context(st, "%s: input %zu", info->label, i);
        if (!dc_model_accepts(info->id, inputs[i].type))
            return dc_fail(DC_ERR_UNSUPPORTED_MODALITY, "%s (%s) does not accept %s input (item %zu)",
                           info->label, info->name, dc_input_type_name(inputs[i].type), i);
    }
    if (n == 0) return DC_OK;
    memset(out, 0, n * sizeof *out);
    dc_status st = m->vt->embed_batch(m, inputs, n, out);
    if (st != DC_OK) {
        free_outputs(out, n);
        return dc_fail_context(st, "%s (%s)", info->label, info->name);
    }
    for (size_t i = 0; i < n; i++) {
        if (out[i].model != info->id) {
            st = dc_fail(DC_ERR_INTERNAL, "%s returned an embedding labelled as model %d (item %zu)",
                         info->label, (int)out[i].model, i);
        } else if ((st = dc_model_embedding_validate(&out[i])) != DC_OK) {
            dc_fail_context(st, "item %zu", i);
        }
        if (st != DC_OK) {
            free_outputs(out, n);
            return st;
        }
    }
    return DC_OK;
}

dc_status dc_model_embed(dc_model *m, const dc_input *input, dc_model_embedding *out) {
    return dc_model_embed_batch(m, input, 1, out);
}

void dc_model_destroy(dc_model *m) {
    if (!m) return;
    if (m->loaded) dc_model_unload(m);
    m->vt->destroy(m);
}

dc_status dc_model_factory_create(const dc_model_factory *f, dc_model_id id,
                                  const struct dc_model_config *cfg, dc_model **out) {
    if (!f || !f->create || !out)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "factory create: NULL factory or output");
    *out = NULL;
    const dc_model_info *info = dc_model_info_get(id);
    if (!info) return dc_fail(DC_ERR_MODEL_NOT_FOUND, "model id %d is out of range", (int)id);
    if (!(f->supported_mask & (1u << id)))
        return dc_fail(DC_ERR_MODEL_NOT_FOUND, "this factory cannot create %s (%s)", info->label,
                       info->name);
    dc_status st = f->create(f->ctx, id, cfg, out);
    if (st == DC_OK && (!*out || (*out)->loaded || (*out)->info != info)) {
        if (*out) dc_model_destroy(*out);
        *out = NULL;
        return dc_fail(DC_ERR_INTERNAL, "factory returned an invalid model for %s", info->label);
    }
    return st;
}

uint64_t dc_model_factory_estimate_memory(const dc_model_factory *f, dc_model_id id) {
    const dc_model_info *info = dc_model_info_get(id);
    if (!info) return 0;
    if (f && f->estimate_memory) return f->estimate_memory(f->ctx, id);
    return info->memory_estimate;
}

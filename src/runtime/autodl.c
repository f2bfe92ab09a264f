/* models.auto_download: missing pretrained models fetched at pipeline open, one at a time. */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "io/hub.h"
#include "io/hub_model.h"
#include "io/manifest.h"
#include "runtime/autodl.h"

/* An open should not hang for minutes on an unreachable hub: fewer, shorter retries than
 * `dodeca pull` (5 from 1 s), which is the tool for large downloads on a flaky network. */
#define AUTODL_RETRIES 2
#define AUTODL_RETRY_DELAY_MS 500

const char *dc_autodl_cache_dir(const dc_config *cfg) {
    if (cfg->models.hub_cache_dir[0]) return cfg->models.hub_cache_dir;
    return cfg->models.models_dir[0] ? cfg->models.models_dir : ".";
}

static void use(dc_builtin_factory *f, dc_model_id id, const char *dir) {
    snprintf(f->folder[id], sizeof f->folder[id], "%s", dir);
    f->reason[id][0] = 0;
    f->base.supported_mask |= 1u << id;
}

void dc_autodl_run(const dc_config *cfg, dc_builtin_factory *f, dc_rt_logger *log) {
    if (!cfg || !f || !cfg->models.auto_download) return;
    dc_hub_options o;
    dc_hub_options_init(&o); /* HF_HUB_OFFLINE, HF_HUB_DISABLE_SYMLINKS */
    o.retries = AUTODL_RETRIES;
    o.retry_delay_ms = AUTODL_RETRY_DELAY_MS;
    snprintf(o.endpoint, sizeof o.endpoint, "%s", cfg->models.hub_endpoint);
    snprintf(o.token, sizeof o.token, "%s", cfg->models.hub_token);
    snprintf(o.cache_dir, sizeof o.cache_dir, "%s", dc_autodl_cache_dir(cfg));
    bool resolved = false;
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        dc_model_id id = (dc_model_id)i;
        const dc_model_info *info = dc_model_info_get(id);
        const dc_model_config *mc = &cfg->models.model[i];
        /* an explicit models.<name>.path is the user's choice: never replaced by a download */
        if (!mc->enabled || mc->path[0] || !dc_builtin_is_pretrained(id) || !dc_manifest_get(id) ||
            ((f->base.supported_mask >> i) & 1u))
            continue;
        dc_hub_model_report r;
        dc_error_clear();
        if (dc_hub_check_model(o.cache_dir, id, NULL, false, &r) == DC_OK && r.ready && r.dir[0]) {
            use(f, id, r.dir);
            continue;
        }
        if (o.offline) {
            dc_rt_log(log, DC_RT_LOG_WARN,
                      "models.auto_download: %s (%s) is not in %s and HF_HUB_OFFLINE is set: "
                      "not downloaded",
                      info->label, info->name, o.cache_dir);
            continue;
        }
        if (!resolved) {
            if (dc_hub_options_resolve(&o) != DC_OK) {
                dc_rt_log(log, DC_RT_LOG_WARN, "models.auto_download: %s", dc_error_detail());
                return;
            }
            resolved = true;
        }
        /* a warning so that a long download at open is never silent (default level: warn) */
        const dc_model_manifest *mf = dc_manifest_get(id);
        dc_rt_log(log, DC_RT_LOG_WARN,
                  "models.auto_download: %s (%s) not found, downloading %s@%s (~%llu MB) from %s "
                  "into %s",
                  info->label, info->name, mf->repo, mf->revision,
                  (unsigned long long)(mf->approx_bytes / 1000000u), o.endpoint, o.cache_dir);
        dc_error_clear();
        dc_status st = dc_hub_pull_model(&o, id, NULL, &r);
        /* a network or server failure (DC_ERR_IO) probably hits the next model too: one
         * attempt each from here on, so a dead hub costs one backoff, not one per model */
        if (st == DC_ERR_IO) o.retries = 0;
        if (st != DC_OK) {
            /* the detail names repo, file and revision, never the token */
            dc_rt_log(log, DC_RT_LOG_WARN,
                      "models.auto_download: %s (%s) not downloaded, it stays unavailable: %s",
                      info->label, info->name, dc_error_detail());
            snprintf(f->reason[i], sizeof f->reason[i], "auto_download failed: %.200s",
                     dc_error_detail());
            continue;
        }
        if (!r.ready || !r.dir[0]) {
            dc_rt_log(log, DC_RT_LOG_WARN,
                      "models.auto_download: %s (%s) incomplete after download (missing: %s)",
                      info->label, info->name, r.missing[0] ? r.missing : "?");
            continue;
        }
        dc_rt_log(log, DC_RT_LOG_INFO, "models.auto_download: %s ready in %s (%llu bytes fetched)",
                  info->label, r.dir, (unsigned long long)r.fetched);
        use(f, id, r.dir);
    }
    dc_error_clear();
}

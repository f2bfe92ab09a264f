/* models.auto_download: at pipeline open, the enabled pretrained models whose folder was not
 * found are fetched from the hub (seed S13) into the huggingface_hub cache layout, and the
 * factory is pointed at what arrived. Internal header. */
#ifndef DC_RUNTIME_AUTODL_H
#define DC_RUNTIME_AUTODL_H

#include "dodeca/config.h"
#include "runtime/factory.h"
#include "runtime/rt.h"

/* The cache the downloads go to: models.hub_cache_dir when set, else models.models_dir (where
 * discovery looks for models--org--name folders). */
const char *dc_autodl_cache_dir(const dc_config *cfg);

/* For every enabled pretrained model f could not find: the cache is checked first (no network),
 * then, unless offline, the model is pulled at its manifest revision. A model that arrives is
 * added to f->base.supported_mask with f->folder set to its snapshot; a failure is logged as a
 * warning naming the model and the reason and leaves it unavailable (f->reason says why).
 * Never fails: the pipeline opens with whatever is there. Does nothing unless
 * cfg->models.auto_download. */
void dc_autodl_run(const dc_config *cfg, dc_builtin_factory *f, dc_rt_logger *log);

#endif

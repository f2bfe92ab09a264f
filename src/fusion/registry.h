/* A directory of versioned FuseMoE checkpoints (seed L31): <dir>/fusemoe-<version>.safetensors.
 * Versions are immutable once saved; list them, load one, hot-swap it into a dc_fusemoe with
 * dc_fusemoe_swap and go back with dc_fusemoe_rollback. */
#ifndef DC_FUSION_REGISTRY_H
#define DC_FUSION_REGISTRY_H

#include "fusion/fusemoe.h"

typedef struct dc_fusion_registry dc_fusion_registry;

/* Opens (creating it if needed) the directory. */
dc_status dc_fusion_registry_open(const char *dir, dc_fusion_registry **out);
void dc_fusion_registry_close(dc_fusion_registry *r);
/* Writes `w` as `version` (NULL: the weights' own); refuses to overwrite an existing version. */
dc_status dc_fusion_registry_save(dc_fusion_registry *r, const dc_fusion_weights *w,
                                  const char *version);
/* Loads and checks one version (checksum verified unless o->verify_checksum is false). */
dc_status dc_fusion_registry_load(dc_fusion_registry *r, const char *version,
                                  const dc_fusion_options *o, dc_fusion_weights **out);
/* Every checkpoint in the directory, oldest first (by created, then version); metadata only,
 * no checksum verification (use dc_fusion_checkpoint_verify). *out is malloc'ed: free() it. */
dc_status dc_fusion_registry_list(dc_fusion_registry *r, dc_fusion_version **out, size_t *n);
/* The file a version lives in. */
dc_status dc_fusion_registry_path(const dc_fusion_registry *r, const char *version, char *buf,
                                  size_t cap);

#endif

/* dodeca — one input, twelve embedding models, one fused 1536-d vector.
 * Umbrella header: include this one. */
#ifndef DODECA_H
#define DODECA_H

#include "dodeca/status.h"
#include "dodeca/types.h"
#include "dodeca/config.h"
#include "dodeca/model.h"
#include "dodeca/pipeline.h"
#include "dodeca/privacy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Library version, "MAJOR.MINOR.PATCH". */
const char *dc_version(void);

#ifdef __cplusplus
}
#endif
#endif

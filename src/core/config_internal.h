/* Internal: the table of configuration settings shared by the loader, the validator and the
 * TOML writer. Every setting is described once here, so the file keys, the environment names,
 * the writer and the equality check cannot drift apart. */
#ifndef DC_CORE_CONFIG_INTERNAL_H
#define DC_CORE_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "core/toml.h"
#include "dodeca/config.h"

typedef enum dc_cfg_kind {
    DC_CFG_BOOL,
    DC_CFG_U32,
    DC_CFG_U64, /* 0 .. INT64_MAX (TOML integers are signed 64-bit) */
    DC_CFG_F64,
    DC_CFG_STRING, /* fixed char array; too long is an error, never truncated */
    DC_CFG_DEVICE,
    DC_CFG_QUANT,
    DC_CFG_PADDING,
    DC_CFG_EVICTION,
    DC_CFG_PII,
    DC_CFG_PII_SENSITIVITY,
    DC_CFG_POOLING,   /* dc_pooling_mode */
    DC_CFG_NORMALIZE, /* dc_normalize_mode; a TOML boolean is accepted too */
    DC_CFG_U32_LIST,    /* uint32_t array + uint32_t count */
    DC_CFG_MODEL_LIST,  /* dc_model_id array + uint32_t count */
    DC_CFG_STRING_LIST, /* char[size][item_size] + uint32_t count; too long is an error */
} dc_cfg_kind;

typedef struct dc_cfg_field {
    const char *section; /* "batch"; NULL for a per-model field ([models.<name>]) */
    const char *key;
    dc_cfg_kind kind;
    size_t offset;       /* into dc_config, or into dc_model_config for per-model fields */
    size_t size;         /* strings: buffer bytes; lists: capacity in elements */
    size_t count_offset; /* lists: offset of the element count */
    size_t item_size;    /* string lists: bytes of one entry, including the NUL */
} dc_cfg_field;

/* One concrete setting: a field, plus the model for per-model fields. `index` is its slot in
 * dc_config_provenance.line. */
typedef struct dc_cfg_setting {
    const dc_cfg_field *field;
    int model; /* dc_model_id, or -1 for section fields */
    size_t index;
} dc_cfg_setting;

/* Sections in file order. */
extern const char *const dc_cfg_sections[];
extern const size_t dc_cfg_section_count;

size_t dc_cfg_setting_count(void);
dc_cfg_setting dc_cfg_setting_at(size_t index);
/* Finds "batch.max_batch_size" or "models.semantic.device"; false when unknown. */
bool dc_cfg_lookup(const char *dotted, dc_cfg_setting *out);
/* "batch.max_batch_size" / "models.semantic.device". */
void dc_cfg_key_name(const dc_cfg_setting *s, char *buf, size_t cap);
/* "DODECA_BATCH_MAX_BATCH_SIZE" / "DODECA_MODELS_SEMANTIC_DEVICE". */
void dc_cfg_env_name(const dc_cfg_setting *s, char *buf, size_t cap);

void *dc_cfg_ptr(dc_config *c, const dc_cfg_setting *s);
const void *dc_cfg_cptr(const dc_config *c, const dc_cfg_setting *s);

/* "f.toml:12: ", "environment variable DODECA_X: ", "override: " or "" (a default). */
void dc_cfg_where(const dc_config *c, size_t index, char *buf, size_t cap);

/* DC_ERR_CONFIG with "WHERE: KEY: message" (WHERE may be ""). */
dc_status dc_cfg_fail(const char *where, const char *key, const char *fmt, ...) DC_PRINTF(3, 4);

/* Stores v into the setting after checking its type and range. `where` prefixes messages. */
dc_status dc_cfg_assign(dc_config *c, const dc_cfg_setting *s, const dc_toml_value *v,
                        const char *where);

#endif

/* The four custom models (E2, E3, E4, E9): constructors and their options.
 *
 * None of them has weights to download; their meaning is the formulas in
 * docs/custom-models.md. None reads the wall clock: times come from the dc_input.
 * Each constructor returns an unloaded model; release it with dc_model_destroy. */
#ifndef DC_MODELS_CUSTOM_H
#define DC_MODELS_CUSTOM_H

#include <stdbool.h>
#include <stdint.h>

#include "dodeca/model.h"

/* ---- E2, E3, E4 ---- */

/* Local civil time for E3 is UTC plus this fixed offset (no daylight saving rules). */
#define DC_TEMPORAL_MAX_UTC_OFFSET_MINUTES (18 * 60)

typedef struct dc_temporal_options {
    int32_t utc_offset_minutes; /* E3 only; 0 (UTC) by default; |offset| <= 18 h */
} dc_temporal_options;

dc_temporal_options dc_temporal_options_default(void);

/* `opt` may be NULL for the defaults. DC_ERR_CONFIG for an out-of-range option. */
dc_status dc_temporal_recent_create(const dc_temporal_options *opt, dc_model **out);
dc_status dc_temporal_periodic_create(const dc_temporal_options *opt, dc_model **out);
dc_status dc_temporal_positional_create(const dc_temporal_options *opt, dc_model **out);

/* ---- E9 ---- */

#define DC_HDC_DEFAULT_SEED      42u
#define DC_HDC_DEFAULT_NGRAM     3u
#define DC_HDC_MAX_NGRAM         8u
#define DC_HDC_DEFAULT_MAX_CHARS 4096u
#define DC_HDC_MAX_MAX_CHARS     (1u << 20)
#define DC_HDC_DEFAULT_SYMBOLS   4096u /* code points U+0000..U+0FFF kept in the item memory */

typedef struct dc_hdc_options {
    uint64_t seed;                /* 42: every base vector derives from it and the code point */
    uint32_t ngram;               /* 3: characters per n-gram, 1..8 */
    uint32_t max_chars;           /* 4096: code points read; longer input sets `truncated` */
    uint32_t symbols;             /* 4096: code points 0..symbols-1 held in memory (and saved) */
    bool case_sensitive;          /* false: code points are lower-cased (Unicode simple mapping) */
    const char *item_memory_path; /* NULL: generate in memory; else load, or generate + save */
} dc_hdc_options;

dc_hdc_options dc_hdc_options_default(void);

/* `opt` may be NULL for the defaults; the path string is copied. DC_ERR_CONFIG for an
 * out-of-range option. The item memory is built (or read) by dc_model_load. */
dc_status dc_hdc_create(const dc_hdc_options *opt, dc_model **out);

#endif

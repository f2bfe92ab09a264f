/* Internal: the text the recognizers see. Sanitation folds away what hides PII from patterns
 * and keeps, for every byte it produces, the span of original bytes it came from, so
 * detections map back to the original text exactly. */
#ifndef DC_PRIVACY_SANITIZE_H
#define DC_PRIVACY_SANITIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dodeca/status.h"

/* Longest text a scrubber takes: offsets are 32-bit. */
#define DC_PII_TEXT_MAX ((size_t)UINT32_MAX - 1)

/* The map from sanitized bytes back to the original: pieces in output order. A linear piece
 * maps byte out0 + k to original byte orig0 + k (text copied unchanged); any other piece maps
 * all its bytes to the whole original span [orig0, orig1) (a folded, composed or re-encoded
 * character). A piece ends where the next begins. */
typedef struct dc_pii_piece {
    uint32_t out0, orig0, orig1;
    uint32_t linear;
} dc_pii_piece;

typedef struct dc_pii_text {
    const char *s; /* the sanitized bytes (the input itself when nothing changed) */
    size_t n;
    char *owned;           /* s when sanitation produced a copy; freed by dc_pii_text_free */
    dc_pii_piece *pieces;  /* NULL when s is the input unchanged */
    size_t npieces;
} dc_pii_text;

/* Validates UTF-8 (DC_ERR_INVALID_VALUE naming the offset) and sanitizes:
 *  - default-ignorable code points are removed: zero-width space/joiners, soft hyphen, word
 *    joiner, BOM, bidirectional controls (LRM, RLM, ALM, LRE..RLO, LRI..PDI), variation
 *    selectors, tags;
 *  - NFC composition (decomposed "e\u0301" reads as "é");
 *  - full-width ASCII (U+FF01..FF5E), decimal digits of any script, Unicode spaces, dashes,
 *    and a few look-alike '@' and '.' are folded to their ASCII form.
 * Text that needs none of this (all ASCII, or already clean) is used as is, without a copy. */
dc_status dc_pii_sanitize(const char *in, size_t len, dc_pii_text *out);
void dc_pii_text_free(dc_pii_text *t);

/* The original span of sanitized bytes [a, b) (b > a). */
size_t dc_pii_text_orig_start(const dc_pii_text *t, size_t a);
size_t dc_pii_text_orig_end(const dc_pii_text *t, size_t b);

/* The ASCII character a code point folds to, or 0 when it does not fold. */
uint32_t dc_pii_fold_ascii(uint32_t cp);

#endif

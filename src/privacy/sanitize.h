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

typedef struct dc_pii_text {
    const char *s; /* the sanitized bytes (the input itself when nothing changed) */
    size_t n;
    char *owned;      /* s when sanitation produced a copy; freed by dc_pii_text_free */
    uint32_t *ostart; /* n entries: first original byte of the character that made s[i] */
    uint32_t *oend;   /* n entries: one past its last original byte; NULL when identity */
} dc_pii_text;

/* Validates UTF-8 once (DC_ERR_INVALID_VALUE naming the offset) and sanitizes:
 *  - default-ignorable code points are removed: zero-width space/joiners, soft hyphen, word
 *    joiner, BOM, bidirectional controls (LRM, RLM, ALM, LRE..RLO, LRI..PDI), variation
 *    selectors, tags;
 *  - NFC composition (decomposed "e\u0301" reads as "é");
 *  - full-width ASCII (U+FF01..FF5E), decimal digits of any script, Unicode spaces, dashes,
 *    and a few look-alike '@' and '.' are folded to their ASCII form.
 * Pure-ASCII text is used as is, without a copy or a map. */
dc_status dc_pii_sanitize(const char *in, size_t len, dc_pii_text *out);
void dc_pii_text_free(dc_pii_text *t);

/* The original span of sanitized bytes [a, b) (b > a). */
static inline size_t dc_pii_text_orig_start(const dc_pii_text *t, size_t a) {
    return t->ostart ? t->ostart[a] : a;
}
static inline size_t dc_pii_text_orig_end(const dc_pii_text *t, size_t b) {
    return t->oend ? t->oend[b - 1] : b;
}

/* The ASCII character a code point folds to, or 0 when it does not fold. */
uint32_t dc_pii_fold_ascii(uint32_t cp);

#endif

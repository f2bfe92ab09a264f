/* Internal: custom recognizers from pii.custom_patterns ("NAME=REGEX"), shared by the
 * configuration validator and the scrubber so both accept exactly the same entries. */
#ifndef DC_PRIVACY_CUSTOM_H
#define DC_PRIVACY_CUSTOM_H

#include <stdbool.h>
#include <stddef.h>

#define DC_PII_NAME_MAX 32 /* bytes of a custom NAME */

/* PCRE2 options of custom patterns: UTF with Unicode properties (the sanitized text is valid
 * UTF-8, checked once, so matching skips the check). */
#define DC_PII_CUSTOM_COMPILE_OPTIONS (PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK)

/* Splits "NAME=REGEX": copies NAME into name (DC_PII_NAME_MAX + 1 bytes) and points *regex
 * after the '='. False with the reason in why when the entry is malformed. */
bool dc_pii_custom_split(const char *entry, char *name, const char **regex, char *why,
                         size_t cap);

/* True when the entry splits and its regex compiles; otherwise false with the reason (and the
 * regex error offset) in why. */
bool dc_pii_custom_pattern_check(const char *entry, char *why, size_t cap);

#endif

/* Custom recognizers: parsing and checking "NAME=REGEX" entries. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "privacy/custom.h"

#include <pcre2.h>
#include <stdio.h>
#include <string.h>

bool dc_pii_custom_split(const char *entry, char *name, const char **regex, char *why,
                         size_t cap) {
    const char *eq = entry ? strchr(entry, '=') : NULL;
    if (!eq) {
        snprintf(why, cap, "expected NAME=REGEX (no '=')");
        return false;
    }
    size_t nl = (size_t)(eq - entry);
    if (nl == 0 || nl > DC_PII_NAME_MAX) {
        snprintf(why, cap, "NAME must be 1 to %d characters", DC_PII_NAME_MAX);
        return false;
    }
    /* Upper-case like the built-in categories, so placeholders look alike: <EMPLOYEE_ID>. */
    for (size_t i = 0; i < nl; i++) {
        char ch = entry[i];
        bool ok = (ch >= 'A' && ch <= 'Z') || (i > 0 && ((ch >= '0' && ch <= '9') || ch == '_'));
        if (!ok) {
            snprintf(why, cap, "NAME \"%.*s\" must match [A-Z][A-Z0-9_]*", (int)nl, entry);
            return false;
        }
    }
    if (!eq[1]) {
        snprintf(why, cap, "empty REGEX after \"%.*s=\"", (int)nl, entry);
        return false;
    }
    memcpy(name, entry, nl);
    name[nl] = '\0';
    *regex = eq + 1;
    return true;
}

bool dc_pii_custom_pattern_check(const char *entry, char *why, size_t cap) {
    char name[DC_PII_NAME_MAX + 1];
    const char *regex = NULL;
    if (!dc_pii_custom_split(entry, name, &regex, why, cap)) return false;
    int err = 0;
    PCRE2_SIZE off = 0;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED,
                                   DC_PII_CUSTOM_COMPILE_OPTIONS, &err, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        snprintf(why, cap, "%s: regex error at offset %zu: %s", name, (size_t)off,
                 (const char *)msg);
        return false;
    }
    /* A pattern that matches the empty string would "detect" everywhere. */
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    int rc = md ? pcre2_match(re, (PCRE2_SPTR) "", 0, 0, 0, md, NULL) : -1;
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    if (rc >= 0) {
        snprintf(why, cap, "%s: the regex matches the empty string", name);
        return false;
    }
    return true;
}

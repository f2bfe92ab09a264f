#include "text/unicode.h"

#include <utf8proc.h>

bool dc_uc_is_whitespace(uint32_t cp) {
    if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
    if (cp < 0x85) return false;
    switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
        return true;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

static inline int dc_cat(uint32_t cp) { return (int)utf8proc_category((utf8proc_int32_t)cp); }

bool dc_uc_is_bert_punct(uint32_t cp) {
    if (cp < 0x80)
        return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) ||
               (cp >= 0x5B && cp <= 0x60) || (cp >= 0x7B && cp <= 0x7E);
    int c = dc_cat(cp);
    return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}

bool dc_uc_is_other(uint32_t cp) {
    if (cp < 0x80) return cp < 0x20 || cp == 0x7F;
    int c = dc_cat(cp);
    return c == UTF8PROC_CATEGORY_CC || c == UTF8PROC_CATEGORY_CF || c == UTF8PROC_CATEGORY_CO;
}

bool dc_uc_is_mn(uint32_t cp) {
    if (cp < 0x300) return false;
    return dc_cat(cp) == UTF8PROC_CATEGORY_MN;
}

bool dc_uc_is_numeric(uint32_t cp) {
    if (cp < 0x80) return cp >= '0' && cp <= '9';
    int c = dc_cat(cp);
    return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}

bool dc_uc_is_word(uint32_t cp) {
    if (cp < 0x80)
        return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
               cp == '_';
    if (cp == 0x200C || cp == 0x200D) return true;
    /* Other_Alphabetic symbols: circled and squared Latin letters. */
    if ((cp >= 0x24B6 && cp <= 0x24E9) || (cp >= 0x1F130 && cp <= 0x1F149) ||
        (cp >= 0x1F150 && cp <= 0x1F169) || (cp >= 0x1F170 && cp <= 0x1F189))
        return true;
    int c = dc_cat(cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_ND) ||
           c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_PC;
}

bool dc_uc_is_chinese(uint32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

uint32_t dc_uc_lower(uint32_t cp, uint32_t out[3]) {
    if (cp < 0x80) {
        out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
        return 1;
    }
    /* The one unconditional multi-code-point lowercase mapping (SpecialCasing.txt); utf8proc
     * only has the simple mapping. */
    if (cp == 0x130) {
        out[0] = 0x69;
        out[1] = 0x307;
        return 2;
    }
    out[0] = (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
    return 1;
}

uint8_t dc_uc_ccc(uint32_t cp) {
    if (cp < 0x300) return 0;
    return (uint8_t)utf8proc_get_property((utf8proc_int32_t)cp)->combining_class;
}

uint32_t dc_uc_decompose(uint32_t cp, bool compat, uint32_t out[32]) {
    if (cp < 0xA0) {
        out[0] = cp;
        return 1;
    }
    utf8proc_int32_t buf[32];
    int boundclass = 0;
    utf8proc_option_t opt = (utf8proc_option_t)(UTF8PROC_DECOMPOSE | (compat ? UTF8PROC_COMPAT : 0));
    utf8proc_ssize_t n = utf8proc_decompose_char((utf8proc_int32_t)cp, buf, 32, opt, &boundclass);
    if (n <= 0 || n > 32) {
        out[0] = cp;
        return 1;
    }
    for (utf8proc_ssize_t i = 0; i < n; i++) out[i] = (uint32_t)buf[i];
    return (uint32_t)n;
}

bool dc_uc_may_compose_second(uint32_t cp) {
    if (cp < 0x300) return false;
    if (cp >= 0x1161 && cp <= 0x11C2) return true; /* Hangul V and T jamo */
    const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)cp);
    if (p->combining_class) return true;
    int c = p->category;
    return c == UTF8PROC_CATEGORY_MN || c == UTF8PROC_CATEGORY_MC || c == UTF8PROC_CATEGORY_ME;
}

uint32_t dc_uc_compose(uint32_t first, uint32_t second) {
    /* utf8proc composes a decomposed buffer; on a starter + one code point it yields one code
     * point exactly when a primary composite exists (STABLE keeps composition exclusions out). */
    utf8proc_int32_t buf[2] = {(utf8proc_int32_t)first, (utf8proc_int32_t)second};
    utf8proc_ssize_t n =
        utf8proc_normalize_utf32(buf, 2, (utf8proc_option_t)(UTF8PROC_COMPOSE | UTF8PROC_STABLE));
    return n == 1 ? (uint32_t)buf[0] : 0;
}

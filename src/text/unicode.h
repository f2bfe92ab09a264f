/* Unicode helpers for the tokenizers: UTF-8 coding and the character classes the Hugging Face
 * `tokenizers` components use (Rust char::is_whitespace, char::to_lowercase, general categories),
 * backed by utf8proc. */
#ifndef DC_TEXT_UNICODE_H
#define DC_TEXT_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the UTF-8 sequence that starts with byte b (1 for stray bytes, so loops advance). */
static inline uint32_t dc_u8_len(uint8_t b) {
    if (b < 0x80) return 1;
    if (b >= 0xF0) return 4;
    if (b >= 0xE0) return 3;
    if (b >= 0xC0) return 2;
    return 1;
}

/* Decodes the code point at s (valid UTF-8 assumed); stores its length in *n. */
static inline uint32_t dc_u8_decode(const char *str, uint32_t *n) {
    const uint8_t *s = (const uint8_t *)str;
    uint8_t b = s[0];
    if (b < 0x80) {
        *n = 1;
        return b;
    }
    if (b >= 0xF0) {
        *n = 4;
        return ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
               ((uint32_t)(s[2] & 0x3F) << 6) | (uint32_t)(s[3] & 0x3F);
    }
    if (b >= 0xE0) {
        *n = 3;
        return ((uint32_t)(b & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) |
               (uint32_t)(s[2] & 0x3F);
    }
    *n = 2;
    return ((uint32_t)(b & 0x1F) << 6) | (uint32_t)(s[1] & 0x3F);
}

/* Encodes cp into out (4 bytes room); returns the length. */
static inline uint32_t dc_u8_encode(uint32_t cp, char *out) {
    uint8_t *o = (uint8_t *)out;
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | (cp >> 6));
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | (cp >> 18));
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

static inline uint32_t dc_u8_cplen(uint32_t cp) {
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/* Rust char::is_whitespace: the Unicode White_Space property. */
bool dc_uc_is_whitespace(uint32_t cp);
/* Rust char::is_ascii_punctuation || general category P* (BertPreTokenizer, Punctuation). */
bool dc_uc_is_bert_punct(uint32_t cp);
/* General category Cc, Cf or Co (unicode_categories' is_other, used by BERT clean_text). */
bool dc_uc_is_other(uint32_t cp);
/* General category Mn. */
bool dc_uc_is_mn(uint32_t cp);
/* Rust char::is_numeric: Nd, Nl, No. */
bool dc_uc_is_numeric(uint32_t cp);
/* The regex crate's \w (Unicode word characters), for added tokens' single_word. */
bool dc_uc_is_word(uint32_t cp);
/* The CJK ideograph ranges BERT isolates. */
bool dc_uc_is_chinese(uint32_t cp);
/* Rust char::to_lowercase: the full mapping (U+0130 gives two code points). Returns the count
 * written to out (at most 3). */
uint32_t dc_uc_lower(uint32_t cp, uint32_t out[3]);
/* Canonical combining class. */
uint8_t dc_uc_ccc(uint32_t cp);
/* Full canonical (compat=false) or compatibility decomposition of one code point into out
 * (room for 32); returns the count (1 when cp does not decompose). */
uint32_t dc_uc_decompose(uint32_t cp, bool compat, uint32_t out[32]);
/* The primary composite of a starter and a following code point, or 0. */
uint32_t dc_uc_compose(uint32_t first, uint32_t second);
/* True when cp may be the second half of a canonical composition (a cheap filter). */
bool dc_uc_may_compose_second(uint32_t cp);

#endif

/* The built-in patterns, compiled once per scrubber, and the one place that runs them.
 *
 * Token repeats are possessive ({m,n}+): a token longer than its bound fails at once instead of
 * backtracking through every shorter length.
 *
 * Every repetition is bounded and every pattern either starts on a literal or is anchored at a
 * position the C scanner chose, so a match attempt does bounded work and a scan is linear in
 * the text (tests/unit/test_pii_linear.c counts the steps). */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "privacy/internal.h"

/* Month names (English, German, French, Spanish, Italian, Portuguese), for dates of birth. */
#define MONTH                                                                                      \
    "(jan(?:uary|uar|vier)?|janeiro|feb(?:ruary|ruar|rero)?|f\\xc3\\xa9v(?:rier)?|fevereiro|"      \
    "mar(?:ch|s|zo|\\xc3\\xa7o)?|m\\xc3\\xa4rz|apr(?:il|ile)?|avr(?:il)?|abr(?:il)?|"              \
    "may(?:o)?|mai|maggio|maio|jun(?:e|i|io|ho)?|juin|giugno|jul(?:y|i|io|ho)?|juil(?:let)?|"      \
    "luglio|aug(?:ust)?|ao\\xc3\\xbbt|ago(?:sto)?|sep(?:t(?:ember|embre|iembre)?)?|settembre|"     \
    "setembro|oct(?:ober|obre|ubre)?|okt(?:ober)?|ott(?:obre)?|outubro|nov(?:ember|embre|"         \
    "iembre|embro)?|dec(?:ember)?|d\\xc3\\xa9c(?:embre)?|dez(?:ember|embro)?|dic(?:iembre|embre)?|" \
    "ene(?:ro)?|gen(?:naio)?)"

typedef struct pattern {
    const char *source;
    uint32_t options;
} pattern;

static const pattern patterns[DC_RX_COUNT] = {
    /* The password may hold '?', '#' and '@' written raw; the last '@' before the host ends it. */
    [DC_RX_URL_CREDS] = {"://([^\\s/?#@:\"'`<>]{0,128}:[^\\s/\"'`<>]{1,256})@"
                         "(?=[A-Za-z0-9\\[\\x80-\\xff])",
                         0},
    [DC_RX_AWS] = {"(?<![A-Za-z0-9])(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}"
                   "(?![A-Za-z0-9])",
                   0},
    [DC_RX_GITHUB] = {"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,251}+|"
                      "github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})(?![A-Za-z0-9_])",
                      0},
    [DC_RX_SLACK] = {"(?<![A-Za-z0-9])(?:xox[abposre]-[A-Za-z0-9-]{10,250}+|"
                     "xapp-\\d-[A-Za-z0-9-]{20,250}+)(?![A-Za-z0-9-])",
                     0},
    [DC_RX_STRIPE] = {"(?<![A-Za-z0-9])(?:(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,247}+|"
                      "whsec_[A-Za-z0-9]{24,64}+)(?![A-Za-z0-9])",
                      0},
    [DC_RX_SK] = {"(?<![A-Za-z0-9_-])sk-(?:ant-[a-z]{2,8}\\d\\d-[A-Za-z0-9_-]{32,200}+|"
                  "[A-Za-z0-9_-]{20,250}+)(?![A-Za-z0-9_-])",
                  0},
    [DC_RX_JWT] = {"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,4096}+\\.eyJ[A-Za-z0-9_-]{5,8192}+\\."
                   "[A-Za-z0-9_-]{0,2048}+(?![A-Za-z0-9_-])",
                   0},
    [DC_RX_GCP] = {"(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])", 0},
    [DC_RX_PEM] = {"-{4,5} ?BEGIN (?:[A-Z0-9]{1,12} ){0,4}PRIVATE KEY(?: BLOCK)? ?-{4,5}", 0},
    [DC_RX_PUTTY] = {"PuTTY-User-Key-File-[23]: ", 0},
    [DC_RX_DOB_CONTEXT] =
        {"(?i)(?:(?<![a-z])(?:date\\s{1,3}of\\s{1,3}birth|birth\\s{0,3}date|birthday|"
         "born(?:\\s{1,3}on)?|d\\.\\s?o\\.\\s?b\\.?|dob|geburtsdatum|geburtstag|"
         "geboren(?:\\s{1,3}am)?|date\\s{1,3}de\\s{1,3}naissance|n\\xc3\\xa9e?\\s{1,3}le|"
         "fecha\\s{1,3}de\\s{1,3}nacimiento|nacid[oa](?:\\s{1,3}el)?|naci\\xc3\\xb3(?:\\s{1,3}el)?|"
         "nasceu(?:\\s{1,3}em)?|"
         "data\\s{1,3}di\\s{1,3}nascita|nat[oa]\\s{1,3}il|data\\s{1,3}de\\s{1,3}nascimento|"
         "nascid[oa]\\s{1,3}em|urodzon[ya]|data\\s{1,3}urodzenia|geboortedatum|"
         "f\\xc3\\xb6delsedatum|f\\xc3\\xb8dselsdato)(?![a-z])|"
         "\\xe7\\x94\\x9f\\xe5\\xb9\\xb4\\xe6\\x9c\\x88\\xe6\\x97\\xa5|\\xe5\\x87\\xba\\xe7\\x94\\x9f|"
         "\\xe7\\x94\\x9f\\xe6\\x97\\xa5|\\xec\\x83\\x9d\\xeb\\x85\\x84\\xec\\x9b\\x94\\xec\\x9d\\xbc)",
         0},
    [DC_RX_PASSWORD_IS] = {"(?i)(?<![a-z0-9_])(?:password|passwd|passphrase|passcode)"
                           "(?:\\s{1,3}for\\s{1,3}[^\\s]{1,40})?\\s{1,3}(?:is|was)\\s{0,3}:?\\s{1,3}"
                           "[\"'`]?([^\\s\"'`]{4,200})",
                           0},
    [DC_RX_ENTROPY] = {"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{24,256}+={0,2}+(?![A-Za-z0-9+/=_-])",
                       0},
    [DC_RX_DATE] = {"(?i)(?<![0-9a-z])(?:(\\d{4})[-/.](\\d{1,2})[-/.](\\d{1,2})|"
                    "(\\d{1,2})[-/.](\\d{1,2})[-/.](\\d{4}|\\d{2})|" MONTH
                    "\\.?\\s{1,3}(\\d{1,2})(?:st|nd|rd|th)?,?\\s{1,3}(\\d{4})|"
                    "(\\d{1,2})(?:st|nd|rd|th|er)?\\.?\\s{1,3}(?:of\\s{1,3}|de\\s{1,3})?" MONTH
                    "\\.?,?\\s{1,3}(?:de\\s{1,3})?(\\d{4})|"
                    "(\\d{4})\\s?(?:\\xe5\\xb9\\xb4|\\xeb\\x85\\x84)\\s?(\\d{1,2})\\s?"
                    "(?:\\xe6\\x9c\\x88|\\xec\\x9b\\x94)\\s?(\\d{1,2})\\s?(?:\\xe6\\x97\\xa5|"
                    "\\xec\\x9d\\xbc))(?![0-9a-z])",
                    0},
    [DC_RA_EMAIL] = {"[A-Za-z0-9_%+'\\x80-\\xff-][A-Za-z0-9._%+'\\x80-\\xff-]{0,63}@"
                     "((?:[A-Za-z0-9\\x80-\\xff](?:[A-Za-z0-9\\x80-\\xff-]{0,61}"
                     "[A-Za-z0-9\\x80-\\xff])?\\.){1,8}[A-Za-z\\x80-\\xff][A-Za-z0-9\\x80-\\xff-]{1,62})"
                     "(?![A-Za-z0-9_\\x80-\\xff-])",
                     PCRE2_ANCHORED},
    [DC_RA_CARD] = {"(?<![\\w.-])\\d(?:[ -]?\\d){11,18}(?![\\w-]|\\.\\d)", PCRE2_ANCHORED},
    [DC_RA_SSN] = {"(?<![\\w.-])\\d{3}([ .-]?)\\d{2}\\1\\d{4}(?![\\w-]|\\.\\d)", PCRE2_ANCHORED},
    [DC_RA_PHONE_NANP] = {"(?<![\\w+.-])(?:\\+?1[ .-]?)?(?:\\([2-9]\\d{2}\\)[ .-]?|[2-9]\\d{2}[ .-])"
                          "(\\d)\\d{2}[ .-]\\d{4}(?:\\s?(?:x|ext\\.?)\\s?\\d{1,5})?"
                          "(?![\\w-]|\\.\\d)",
                          PCRE2_ANCHORED},
    [DC_RA_PHONE_BARE] = {"(?<![\\w+.-])1?[2-9]\\d{2}[2-9]\\d{6}(?![\\w-]|\\.\\d)", PCRE2_ANCHORED},
    [DC_RA_PHONE_INTL] = {"(?<![\\w+])\\+[1-9]\\d{0,2}(?:[ .-]?\\(0\\))?"
                          "(?:[ .-]?\\(?\\d{1,5}\\)?){1,7}(?![\\w-]|\\.\\d)",
                          PCRE2_ANCHORED},
    [DC_RA_PHONE_NATIONAL] = {"(?<![\\w+.-])(?:(?:\\(0\\d{1,4}\\)|0\\d{1,4})(?:[ /-]\\d{2,8}){1,4}|"
                              "0\\d(?:\\.\\d{2}){4})(?![\\w-]|\\.\\d)",
                              PCRE2_ANCHORED},
    [DC_RA_IPV4] = {"(?<![\\w.-])(?:(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)\\.){3}"
                    "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(?:/(?:3[0-2]|[12]?\\d))?"
                    "(?![\\w-]|\\.\\d)",
                    PCRE2_ANCHORED},
    [DC_RA_SLACK_HOOK] = {"hooks\\.slack\\.com/(?:services|workflows|triggers)/T[A-Z0-9]{6,12}/"
                          "[A-Za-z0-9_/-]{10,200}",
                          PCRE2_ANCHORED},
};

/* Work bound of one match attempt; the built-in patterns stay far below it on any input. */
#define DC_PII_MATCH_LIMIT 200000u

dc_status dc_pii_patterns_compile(struct dc_scrubber *sc) {
    uint32_t extra = sc->counting ? PCRE2_AUTO_CALLOUT : 0;
    sc->max_ovector = 1;
    for (int i = 0; i < DC_RX_COUNT; i++) {
        int err = 0;
        PCRE2_SIZE off = 0;
        sc->rx[i] = pcre2_compile((PCRE2_SPTR)patterns[i].source, PCRE2_ZERO_TERMINATED,
                                  patterns[i].options | extra, &err, &off, NULL);
        if (!sc->rx[i]) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(err, msg, sizeof msg);
            return dc_fail(DC_ERR_INTERNAL, "PII pattern %d does not compile at %zu: %s", i,
                           (size_t)off, (const char *)msg);
        }
        /* Without JIT (unsupported CPU) pcre2_match interprets: slower, same results. */
        if (!sc->counting) (void)pcre2_jit_compile(sc->rx[i], PCRE2_JIT_COMPLETE);
        uint32_t groups = 0;
        pcre2_pattern_info(sc->rx[i], PCRE2_INFO_CAPTURECOUNT, &groups);
        if (groups + 1 > sc->max_ovector) sc->max_ovector = groups + 1;
    }
    sc->mctx = pcre2_match_context_create(NULL);
    if (!sc->mctx) return dc_fail(DC_ERR_OUT_OF_MEMORY, "PII scrubber: out of memory");
    pcre2_set_match_limit(sc->mctx, DC_PII_MATCH_LIMIT);
    pcre2_set_depth_limit(sc->mctx, DC_PII_MATCH_LIMIT);
    return DC_OK;
}

void dc_pii_patterns_free(struct dc_scrubber *sc) {
    for (int i = 0; i < DC_RX_COUNT; i++) {
        pcre2_code_free(sc->rx[i]);
        sc->rx[i] = NULL;
    }
    pcre2_match_context_free(sc->mctx);
    sc->mctx = NULL;
}

bool dc_pii_match(dc_pii_scan *scan, const pcre2_code *re, size_t from, size_t limit,
                  PCRE2_SIZE **ov) {
    if (scan->err || from > limit) return false;
    uint32_t opts = 0;
    uint32_t compiled = 0;
    pcre2_pattern_info(re, PCRE2_INFO_ALLOPTIONS, &compiled);
    if (compiled & PCRE2_UTF) opts |= PCRE2_NO_UTF_CHECK; /* checked once by sanitation */
    int rc = pcre2_match(re, (PCRE2_SPTR)scan->s, limit, from, opts, scan->md, scan->mctx);
    if (rc >= 0) {
        *ov = pcre2_get_ovector_pointer(scan->md);
        return true;
    }
    if (rc != PCRE2_ERROR_NOMATCH && rc != PCRE2_ERROR_PARTIAL) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(rc, msg, sizeof msg);
        /* Fail closed: text a recognizer could not finish scanning is not passed on. */
        scan->err = dc_fail(DC_ERR_INVALID_VALUE,
                            "PII scrub: a pattern gave up near byte %zu (%s); the text is "
                            "refused rather than passed on unscanned",
                            from, (const char *)msg);
    }
    return false;
}

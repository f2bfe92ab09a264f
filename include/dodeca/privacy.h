/* dodeca — PII and secret scrubbing (seed M03-L25, L37; DESIGN §3: before the cache key,
 * tokenisation and any log line).
 *
 * A dc_scrubber finds personal data and secrets in UTF-8 text and rewrites them according to
 * pii.mode. The text is sanitized first (NFC, zero-width and bidirectional controls removed,
 * full-width and other Unicode digits and punctuation folded to ASCII) so that
 * "a\u200b@b.com" and "４１１１ １１１１ ..." are still caught; every detection is reported
 * as a byte span of the ORIGINAL text, and the rewrite is applied to the original text.
 *
 * Nothing here ever copies matched text into an error message, a log line or an audit record:
 * those carry the category, the byte span and the confidence only. */
#ifndef DODECA_PRIVACY_H
#define DODECA_PRIVACY_H

#include <stddef.h>

#include "dodeca/config.h"
#include "dodeca/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a detection is. Names (dc_pii_category_name) are the placeholders' text: <EMAIL>. */
typedef enum dc_pii_category {
    DC_PII_CAT_EMAIL = 0,
    DC_PII_CAT_PHONE = 1,           /* E.164, North American, common national formats */
    DC_PII_CAT_CREDIT_CARD = 2,     /* Luhn and known IIN ranges */
    DC_PII_CAT_IBAN = 3,            /* country length and mod-97 */
    DC_PII_CAT_US_SSN = 4,          /* SSA area/group/serial rules */
    DC_PII_CAT_IP_ADDRESS = 5,      /* IPv4, IPv6 */
    DC_PII_CAT_URL_CREDENTIALS = 6, /* the user:password of scheme://user:password@host */
    DC_PII_CAT_CRYPTO = 7,          /* Bitcoin base58check / bech32(m), Ethereum (EIP-55) */
    DC_PII_CAT_DATE_OF_BIRTH = 8,   /* a date next to born / DOB / birthday / geboren / ... */
    DC_PII_CAT_AWS_KEY = 9,         /* access key ids; secret keys next to aws_secret... */
    DC_PII_CAT_GITHUB_TOKEN = 10,
    DC_PII_CAT_SLACK_TOKEN = 11,    /* xox?- tokens and hooks.slack.com webhooks */
    DC_PII_CAT_STRIPE_KEY = 12,
    DC_PII_CAT_OPENAI_KEY = 13,     /* sk-... style keys */
    DC_PII_CAT_ANTHROPIC_KEY = 14,  /* sk-ant-... */
    DC_PII_CAT_JWT = 15,
    DC_PII_CAT_PRIVATE_KEY = 16,    /* PEM / OpenSSH / PGP private key blocks, PuTTY key files */
    DC_PII_CAT_SECRET = 17,         /* generic: a value assigned to key/secret/token/password */
    DC_PII_CAT_CUSTOM = 18,         /* a pii.custom_patterns entry; its NAME is the label */
} dc_pii_category;
#define DC_PII_CAT_COUNT 19

/* "EMAIL", "PHONE", ..., "CUSTOM"; "UNKNOWN" for a bad value. */
const char *dc_pii_category_name(dc_pii_category c);
/* Reads a name as dc_pii_category_name writes it (case-insensitive). */
dc_status dc_pii_category_parse(const char *name, dc_pii_category *out);

typedef struct dc_pii_detection {
    dc_pii_category category;
    const char *label;    /* the category name, or a custom pattern's NAME; owned by the
                           * scrubber (valid until dc_scrubber_destroy) */
    size_t start, end;    /* bytes [start, end) of the original text */
    size_t out_start;     /* bytes [out_start, out_end) of the replacement in the result */
    size_t out_end;       /* text (equal to start/end shifted when mode is off) */
    float confidence;     /* 0..1; 1 = validated by a checksum or an unmistakable format */
} dc_pii_detection;

typedef struct dc_scrub_result {
    char *text;                   /* the rewritten text, NUL-terminated; owned */
    size_t len;                   /* bytes of text, without the NUL */
    dc_pii_detection *detections; /* sorted by start, never overlapping; owned */
    size_t count;
} dc_scrub_result;

typedef struct dc_scrubber dc_scrubber;

/* Compiles every recognizer (built-in and custom) once. Mode "hash" needs a key
 * (cfg->hmac_key, or cfg->hmac_key_file which is read here): DC_ERR_CONFIG without one, never
 * an unkeyed hash. A custom pattern that does not compile is DC_ERR_CONFIG naming its index
 * and the regex error. cfg->enabled is not looked at: the caller decides whether to scrub. */
dc_status dc_scrubber_create(const dc_pii_config *cfg, dc_scrubber **out);
void dc_scrubber_destroy(dc_scrubber *s);

/* Scrubs text[0..len) (UTF-8; invalid UTF-8 is DC_ERR_INVALID_VALUE naming the byte offset,
 * and nothing else of the text). Thread-safe: any number of threads may scrub with one
 * scrubber. On success *out holds the result (free it with dc_scrub_result_free); on failure
 * *out is zeroed. Work is linear in len for the built-in recognizers; a custom pattern that
 * exceeds its work bound fails the call (DC_ERR_INVALID_VALUE) rather than letting text through
 * unscanned. */
dc_status dc_scrubber_scrub(const dc_scrubber *s, const char *text, size_t len,
                            dc_scrub_result *out);
void dc_scrub_result_free(dc_scrub_result *r);

/* The audit record of a result, one JSON object (malloc'ed, NUL-terminated; *len may be NULL):
 * {"count":N,"detections":[{"category":"EMAIL","start":5,"end":22,"confidence":0.95},...]}.
 * Categories, spans and confidences only: never the matched text. */
dc_status dc_scrub_result_audit_json(const dc_scrub_result *r, char **out, size_t *len);

#ifdef __cplusplus
}
#endif
#endif

/* Internal: the scrubber's compiled state and the per-call scan that recognizers fill with
 * candidates. */
#ifndef DC_PRIVACY_INTERNAL_H
#define DC_PRIVACY_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dodeca/privacy.h"
#include "privacy/custom.h"

/* Built-in patterns. Byte-mode PCRE2 (no UTF): sanitation has already folded look-alikes to
 * ASCII, every pattern starts on an ASCII byte, and bytes >= 0x80 appear only inside classes
 * that take whole UTF-8 sequences, so matches never split a character. "FULL" patterns scan
 * the whole text; "AT" patterns are compiled anchored and run only where the C scanner found
 * a trigger ('@', a digit run, ':' ...), which keeps the text to a single fast pass. */
enum {
    DC_RX_URL_CREDS,   /* FULL: scheme://user:password@ */
    DC_RX_AWS,         /* FULL */
    DC_RX_GITHUB,      /* FULL */
    DC_RX_SLACK,       /* FULL */
    DC_RX_STRIPE,      /* FULL */
    DC_RX_SK,          /* FULL: sk-... (OpenAI, Anthropic and look-alikes) */
    DC_RX_JWT,         /* FULL */
    DC_RX_GCP,         /* FULL: AIza... API keys (generic secret) */
    DC_RX_PEM,         /* FULL: -----BEGIN ... PRIVATE KEY----- */
    DC_RX_PUTTY,       /* FULL */
    DC_RX_DOB_CONTEXT, /* FULL: born / DOB / birthday / geboren / ... */
    DC_RX_PASSWORD_IS, /* FULL: "password is X" */
    DC_RX_ENTROPY,     /* FULL, strict only: long high-entropy tokens anywhere */
    DC_RX_DATE,        /* near a DOB context word only (bounded window) */
    DC_RA_EMAIL,       /* AT the local part before an '@' */
    DC_RA_CARD,        /* AT the start of a digit group */
    DC_RA_SSN,
    DC_RA_PHONE_NANP,
    DC_RA_PHONE_BARE,
    DC_RA_PHONE_INTL,
    DC_RA_PHONE_NATIONAL,
    DC_RA_IPV4,
    DC_RA_SLACK_HOOK, /* AT "hooks.slack.com/" */
    DC_RX_COUNT
};

struct dc_scrubber {
    dc_pii_mode mode;
    dc_pii_sensitivity sensitivity;
    float threshold; /* detections below this confidence are dropped */
    unsigned char key[1024]; /* pii.hmac_key, or the contents of pii.hmac_key_file */
    size_t key_len;
    bool counting; /* tests: interpreter with auto-callouts counting every pattern step */
    pcre2_code *rx[DC_RX_COUNT];
    pcre2_code *custom[DC_CONFIG_MAX_PII_PATTERNS];
    char custom_name[DC_CONFIG_MAX_PII_PATTERNS][DC_PII_NAME_MAX + 1];
    size_t ncustom;
    uint32_t max_ovector;
    pcre2_match_context *mctx; /* work limits; read-only once built, shared by all threads */
};

/* A candidate detection, in bytes of the sanitized text. */
typedef struct dc_pii_cand {
    uint32_t start, end;
    float score;
    uint8_t cat;     /* dc_pii_category */
    uint8_t custom;  /* index into custom_name for DC_PII_CAT_CUSTOM */
} dc_pii_cand;

typedef struct dc_pii_scan {
    const struct dc_scrubber *sc;
    const char *s; /* sanitized text */
    size_t n;
    pcre2_match_data *md;
    pcre2_match_context *mctx; /* sc->mctx, or a per-call one that carries the step counter */
    dc_pii_cand *cands;
    size_t ncands, cap;
    uint64_t steps;    /* work: pattern steps (counting mode) plus bytes the C scanners visit */
    dc_status err;     /* first failure; scanning stops */
    size_t pem_end_from, pem_end_at; /* PEM END-marker search memo (keeps the search linear) */
} dc_pii_scan;

/* Compiles the built-in patterns (JIT unless counting). DC_ERR_INTERNAL if one fails. */
dc_status dc_pii_patterns_compile(struct dc_scrubber *sc);
void dc_pii_patterns_free(struct dc_scrubber *sc);

/* Runs pattern id from `from` over s[0..limit): true with the ovector on a match; false at no
 * match or on an error (recorded in scan->err). */
bool dc_pii_match(dc_pii_scan *scan, const pcre2_code *re, size_t from, size_t limit,
                  PCRE2_SIZE **ov);

/* Adds a candidate (ignored when empty or out of range). */
void dc_pii_add(dc_pii_scan *scan, dc_pii_category cat, size_t start, size_t end, float score);

/* Runs every recognizer over scan->s, filling scan->cands. */
void dc_pii_recognize(dc_pii_scan *scan);

/* Tests only: a scrubber whose patterns run in the interpreter with every step counted, and a
 * scan that reports the total work (pattern steps plus C scanner bytes) and the number of
 * detections. Used to prove linear work on adversarial inputs without timing anything. */
dc_status dc_scrubber_create_counting(const dc_pii_config *cfg, dc_scrubber **out);
dc_status dc_scrubber_count_work(const dc_scrubber *s, const char *text, size_t len,
                                 uint64_t *steps, size_t *detections);

#endif

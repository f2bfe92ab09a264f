/* The PII scrubber as users rely on it: what is caught and what is left alone, sanitation and
 * span mapping, the five modes, sensitivity, custom patterns, idempotence, determinism, thread
 * safety, and that no raw value ever reaches an error message or an audit record. */
#include <pthread.h>

#include "dodeca/privacy.h"
#include "test_support.h"

static dc_scrubber *make(dc_pii_mode mode, dc_pii_sensitivity sens) {
    dc_config c;
    dc_config_defaults(&c);
    c.pii.mode = mode;
    c.pii.sensitivity = sens;
    snprintf(c.pii.hmac_key, sizeof c.pii.hmac_key, "test-key-0123456789");
    dc_scrubber *s = NULL;
    assert_ok(dc_scrubber_create(&c.pii, &s));
    return s;
}

/* Scrubs with placeholders and returns the text (caller frees); *count gets the detections. */
static char *scrub_text(const dc_scrubber *s, const char *text, size_t *count) {
    dc_scrub_result r;
    assert_ok(dc_scrubber_scrub(s, text, strlen(text), &r));
    char *out = strdup(r.text);
    assert_int_equal(strlen(out), r.len);
    if (count) *count = r.count;
    dc_scrub_result_free(&r);
    return out;
}

typedef struct finds {
    const char *text;
    dc_pii_category cat;
    const char *value; /* the exact span reported */
} finds;

/* One true positive per recognizer (and per format where formats differ). */
static const finds positives[] = {
    {"mail jane.doe@example.com today", DC_PII_CAT_EMAIL, "jane.doe@example.com"},
    {"write to ÉLISE@exämple.fr!", DC_PII_CAT_EMAIL, "ÉLISE@exämple.fr"},
    {"call (415) 555-2671 now", DC_PII_CAT_PHONE, "(415) 555-2671"},
    {"tel: +44 20 7946 0958.", DC_PII_CAT_PHONE, "+44 20 7946 0958"},
    {"phone +4915112345678", DC_PII_CAT_PHONE, "+4915112345678"},
    {"Telefon 030 12345678", DC_PII_CAT_PHONE, "030 12345678"},
    {"appelez le 01 23 45 67 89", DC_PII_CAT_PHONE, "01 23 45 67 89"},
    {"card 4111 1111 1111 1111 exp", DC_PII_CAT_CREDIT_CARD, "4111 1111 1111 1111"},
    {"amex 3782-822463-10005.", DC_PII_CAT_CREDIT_CARD, "3782-822463-10005"},
    {"pan=5555555555554444;", DC_PII_CAT_CREDIT_CARD, "5555555555554444"},
    {"IBAN GB82 WEST 1234 5698 7654 32 please", DC_PII_CAT_IBAN, "GB82 WEST 1234 5698 7654 32"},
    {"iban de89370400440532013000", DC_PII_CAT_IBAN, "de89370400440532013000"},
    {"SSN 536-22-1234.", DC_PII_CAT_US_SSN, "536-22-1234"},
    {"my ssn is 536221234", DC_PII_CAT_US_SSN, "536221234"},
    {"from 192.168.1.20.", DC_PII_CAT_IP_ADDRESS, "192.168.1.20"},
    {"route 10.0.0.0/8 via", DC_PII_CAT_IP_ADDRESS, "10.0.0.0/8"},
    {"host 2001:db8::1 up", DC_PII_CAT_IP_ADDRESS, "2001:db8::1"},
    {"peer ::ffff:10.0.0.1 down", DC_PII_CAT_IP_ADDRESS, "::ffff:10.0.0.1"},
    {"loopback ::1", DC_PII_CAT_IP_ADDRESS, "::1"},
    {"postgres://app:S3cr3t!@db:5432/x", DC_PII_CAT_URL_CREDENTIALS, "app:S3cr3t!"},
    {"to 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2 now", DC_PII_CAT_CRYPTO,
     "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"},
    {"bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3", DC_PII_CAT_CRYPTO,
     "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3"},
    {"eth 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", DC_PII_CAT_CRYPTO,
     "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"},
    {"DOB: 03/14/1985", DC_PII_CAT_DATE_OF_BIRTH, "03/14/1985"},
    {"she was born on 12 May 1990 in Rome", DC_PII_CAT_DATE_OF_BIRTH, "12 May 1990"},
    {"geboren am 3. März 1985", DC_PII_CAT_DATE_OF_BIRTH, "3. März 1985"},
    {"生年月日 1985年3月12日", DC_PII_CAT_DATE_OF_BIRTH, "1985年3月12日"},
    {"key AKIAQWERTYUIOPASDFGH leaked", DC_PII_CAT_AWS_KEY, "AKIAQWERTYUIOPASDFGH"},
    {"aws_secret_access_key = wJalrXUtnFEMIK7MDENGbPxRfiCYzEXAMPLEKEY1", DC_PII_CAT_AWS_KEY,
     "wJalrXUtnFEMIK7MDENGbPxRfiCYzEXAMPLEKEY1"},
    {"token ghp_abcdefghijklmnopqrstuvwxyz0123456789", DC_PII_CAT_GITHUB_TOKEN,
     "ghp_abcdefghijklmnopqrstuvwxyz0123456789"},
    {"xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy", DC_PII_CAT_SLACK_TOKEN,
     "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"},
    {"https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
     DC_PII_CAT_SLACK_TOKEN,
     "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"},
    {"stripe('sk_live_4eC39HqLyjWDarjtT1zdp7dc')", DC_PII_CAT_STRIPE_KEY,
     "sk_live_4eC39HqLyjWDarjtT1zdp7dc"},
    {"OPENAI_API_KEY=sk-abcdefghij0123456789T3BlbkFJabcdefghij0123456789", DC_PII_CAT_OPENAI_KEY,
     "sk-abcdefghij0123456789T3BlbkFJabcdefghij0123456789"},
    {"key sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_aa"
     "AA end",
     DC_PII_CAT_ANTHROPIC_KEY,
     "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_aaAA"},
    {"Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9l"
     "IiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
     DC_PII_CAT_JWT,
     "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9l"
     "IiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"},
    {"x\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0"
     "gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMgh"
     "\n-----END RSA PRIVATE KEY-----\ny",
     DC_PII_CAT_PRIVATE_KEY,
     "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0"
     "gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMgh"
     "\n-----END RSA PRIVATE KEY-----"},
    {"DB_PASSWORD=\"Tr0ub4dor&3\"", DC_PII_CAT_SECRET, "Tr0ub4dor&3"},
    {"\"client_secret\": \"9f8e7d6c5b4a39281706f5e4d3c2b1a0\"", DC_PII_CAT_SECRET,
     "9f8e7d6c5b4a39281706f5e4d3c2b1a0"},
    {"my password is hunter2!", DC_PII_CAT_SECRET, "hunter2!"},
    {"Authorization: Bearer aB3dE5fG7hJ9kL1mN3pQ5rS7", DC_PII_CAT_SECRET,
     "aB3dE5fG7hJ9kL1mN3pQ5rS7"},
};

/* Near misses and hard negatives: nothing may be reported at the default sensitivity. */
static const char *const negatives[] = {
    "AKIAQWERTYUIOPASDFG is one short",         /* AKIA + 15 */
    "docs use AKIAIOSFODNN7EXAMPLE as the key", /* AWS's documentation key */
    "card 4111 1111 1111 1112 was declined",    /* Luhn fails */
    "IBAN GB83 WEST 1234 5698 7654 32 bounced", /* mod 97 fails */
    "SSN 000-12-3456, 666-12-3456, 123-00-4567, 123-45-0000, 078-05-1120",
    "octets 256.1.1.1 and 1.2.3",
    "upgrade to version 10.4.2.1 first",
    "id 550e8400-e29b-41d4-a716-446655440000",
    "ISBN 978-3-16-148410-0",
    "at 2024-01-15T10:30:00Z and 10:30:45",
    "commit 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
    "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "git@github.com:org/repo.git",
    "use icon@2x.png and lodash@4.17.21",
    "password: ${DB_PASSWORD}",
    "password = os.environ['DB_PASSWORD']",
    "token: null",
    "api_key: <your-api-key>",
    "MAC 00:1A:2B:3C:4D:5E",
    "std::vector<int> v; crate::fmt",
    "meeting on 03/04/2024 at 10:00",
    "the project was born in 2019 and shipped 2.1.0 on 2021-04-01",
    "user@localhost and admin@server01",
    "max_tokens: 4096",
    "sk-learn is a typo",
    "order 123456789 shipped", /* nine digits, no SSN context */
    "",
};

static void test_each_recognizer_finds_its_kind(void **state) {
    (void)state;
    dc_scrubber *s = make(DC_PII_PLACEHOLDER, DC_PII_MODERATE);
    for (size_t i = 0; i < sizeof positives / sizeof positives[0]; i++) {
        const finds *f = &positives[i];
        dc_scrub_result r;
        assert_ok(dc_scrubber_scrub(s, f->text, strlen(f->text), &r));
        bool found = false;
        for (size_t k = 0; k < r.count; k++) {
            const dc_pii_detection *d = &r.detections[k];
            if (d->category == f->cat && d->end - d->start == strlen(f->value) &&
                memcmp(f->text + d->start, f->value, d->end - d->start) == 0) {
                found = true;
                assert_true(d->confidence >= 0.5f && d->confidence <= 1.0f);
                assert_string_equal(d->label, dc_pii_category_name(f->cat));
            }
        }
        if (!found) {
            fprintf(stderr, "case %zu: %zu detections\n", i, r.count);
            for (size_t k = 0; k < r.count; k++)
                fprintf(stderr, "  %s [%zu,%zu)\n", r.detections[k].label, r.detections[k].start,
                        r.detections[k].end);
            fail_msg("case %zu: %s [%s] not found in \"%s\"", i, dc_pii_category_name(f->cat),
                     f->value, f->text);
        }
        /* the placeholder replaced it */
        char ph[64];
        snprintf(ph, sizeof ph, "<%s>", dc_pii_category_name(f->cat));
        assert_non_null(strstr(r.text, ph));
        dc_scrub_result_free(&r);
    }
    dc_scrubber_destroy(s);
}

static void test_near_misses_are_left_alone(void **state) {
    (void)state;
    dc_scrubber *s = make(DC_PII_PLACEHOLDER, DC_PII_MODERATE);
    for (size_t i = 0; i < sizeof negatives / sizeof negatives[0]; i++) {
        size_t n = 0;
        char *out = scrub_text(s, negatives[i], &n);
        if (n) fail_msg("negative %zu \"%s\" became \"%s\"", i, negatives[i], out);
        assert_string_equal(out, negatives[i]);
        free(out);
    }
    dc_scrubber_destroy(s);
}

/* Zero-width and bidi characters inside a value, full-width and Arabic-Indic digits: caught,
 * and the reported span is the original bytes, so replacing it leaves nothing behind. */
static void test_sanitation_sees_through_obfuscation(void **state) {
    (void)state;
    dc_scrubber *s = make(DC_PII_PLACEHOLDER, DC_PII_MODERATE);
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"a\u200b@b.com", "<EMAIL>"},
        {"x jo\u200dhn@exam\u202eple.org y", "x <EMAIL> y"},
        {"card \uff14\uff11\uff11\uff11 \uff11\uff11\uff11\uff11 \uff11\uff11\uff11\uff11 "
         "\uff11\uff11\uff11\uff11.",
         "card <CREDIT_CARD>."},
        {"ssn \u0665\u0663\u0666-\u0662\u0662-\u0661\u0662\u0663\u0664", "ssn <US_SSN>"},
        {"mail jane\uff20example.com", "mail <EMAIL>"},
        {"\u202aCall 415\u2011555\u20112671\u202c", "\u202aCall <PHONE>\u202c"},
        {"caf\u00e9 na\u0131ve \u65e5\u672c\u8a9e x@y.io \u00e9", "caf\u00e9 na\u0131ve "
                                                               "\u65e5\u672c\u8a9e <EMAIL> \u00e9"},
        {"cafe\u0301 mail x@y.io", "cafe\u0301 mail <EMAIL>"}, /* decomposed text kept as is */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = scrub_text(s, cases[i].in, NULL);
        if (strcmp(out, cases[i].out) != 0)
            fail_msg("case %zu: \"%s\" -> \"%s\", expected \"%s\"", i, cases[i].in, out,
                     cases[i].out);
        free(out);
    }
    /* spans are byte offsets of the original: multibyte text before a match does not shift them */
    const char *text = "日本語 \u00e9\u00e9 a\u200b@b.com";
    dc_scrub_result r;
    assert_ok(dc_scrubber_scrub(s, text, strlen(text), &r));
    assert_int_equal(r.count, 1);
    assert_int_equal(r.detections[0].start, strlen("日本語 \u00e9\u00e9 "));
    assert_int_equal(r.detections[0].end, strlen(text));
    assert_int_equal(r.detections[0].out_start, r.detections[0].start);
    assert_int_equal(r.detections[0].out_end, r.detections[0].start + strlen("<EMAIL>"));
    dc_scrub_result_free(&r);
    dc_scrubber_destroy(s);
}

static void test_modes(void **state) {
    (void)state;
    const char *text = "Mail jane@example.com, SSN 536-22-1234, card 4111-1111-1111-1111.";
    static const struct {
        dc_pii_mode mode;
        const char *out;
    } cases[] = {
        {DC_PII_PLACEHOLDER, "Mail <EMAIL>, SSN <US_SSN>, card <CREDIT_CARD>."},
        {DC_PII_REDACT, "Mail [REDACTED], SSN [REDACTED], card [REDACTED]."},
        {DC_PII_MASK, "Mail ****@******e.com, SSN ***-**-1234, card ****-****-****-1111."},
        {DC_PII_OFF, "Mail jane@example.com, SSN 536-22-1234, card 4111-1111-1111-1111."},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dc_scrubber *s = make(cases[i].mode, DC_PII_MODERATE);
        dc_scrub_result r;
        assert_ok(dc_scrubber_scrub(s, text, strlen(text), &r));
        assert_string_equal(r.text, cases[i].out);
        assert_int_equal(r.count, 3); /* off still reports what it found */
        for (size_t k = 0; k < r.count; k++) {
            assert_true(r.detections[k].out_end <= r.len);
            assert_true(r.detections[k].out_start <= r.detections[k].out_end);
        }
        dc_scrub_result_free(&r);
        dc_scrubber_destroy(s);
    }
}

static void test_keyed_hash_is_stable_and_keyed(void **state) {
    (void)state;
    dc_config c;
    dc_config_defaults(&c);
    c.pii.mode = DC_PII_HASH;
    /* no key: refused, never an unkeyed hash */
    dc_scrubber *s = NULL;
    assert_status(dc_scrubber_create(&c.pii, &s), DC_ERR_CONFIG);
    assert_detail_contains("needs a key");
    assert_null(s);
    snprintf(c.pii.hmac_key, sizeof c.pii.hmac_key, "short");
    assert_status(dc_scrubber_create(&c.pii, &s), DC_ERR_CONFIG);
    assert_null(strstr(dc_error_detail(), "short"));

    snprintf(c.pii.hmac_key, sizeof c.pii.hmac_key, "k1-0123456789abcdef");
    dc_scrubber *a = NULL, *b = NULL, *other = NULL;
    assert_ok(dc_scrubber_create(&c.pii, &a));
    assert_ok(dc_scrubber_create(&c.pii, &b)); /* another process, same key */
    const char *text = "call +1 (415) 555-2671 or mail JANE@EXAMPLE.COM";
    char *x = scrub_text(a, text, NULL), *y = scrub_text(b, text, NULL);
    assert_string_equal(x, y);
    assert_int_equal(strncmp(x, "call <PHONE_", 12), 0);
    assert_non_null(strstr(x, " or mail <EMAIL_"));
    /* values are normalised first: the same number or address written differently hashes alike */
    char *z = scrub_text(a, "call 14155552671 ... or mail jane@example.com", NULL);
    dc_scrubber *strict = NULL;
    c.pii.sensitivity = DC_PII_STRICT;
    assert_ok(dc_scrubber_create(&c.pii, &strict));
    free(z);
    z = scrub_text(strict, "call 14155552671 or mail jane@example.com", NULL);
    assert_string_equal(z, x);
    /* another key, other tags */
    snprintf(c.pii.hmac_key, sizeof c.pii.hmac_key, "k2-0123456789abcdef");
    assert_ok(dc_scrubber_create(&c.pii, &other));
    char *w = scrub_text(other, text, NULL);
    assert_string_not_equal(w, x);
    free(x);
    free(y);
    free(z);
    free(w);
    dc_scrubber_destroy(a);
    dc_scrubber_destroy(b);
    dc_scrubber_destroy(strict);
    dc_scrubber_destroy(other);

    /* the key from a file; a trailing newline is not part of it */
    c.pii.hmac_key[0] = '\0';
    c.pii.sensitivity = DC_PII_MODERATE;
    const char *path = dc_test_write_temp("k1-0123456789abcdef\n", 20, ".key");
    snprintf(c.pii.hmac_key_file, sizeof c.pii.hmac_key_file, "%s", path);
    assert_ok(dc_scrubber_create(&c.pii, &a));
    snprintf(c.pii.hmac_key, sizeof c.pii.hmac_key, "k1-0123456789abcdef");
    c.pii.hmac_key_file[0] = '\0';
    assert_ok(dc_scrubber_create(&c.pii, &b));
    x = scrub_text(a, text, NULL);
    y = scrub_text(b, text, NULL);
    assert_string_equal(x, y);
    free(x);
    free(y);
    dc_scrubber_destroy(a);
    dc_scrubber_destroy(b);
    c.pii.hmac_key[0] = '\0';
    snprintf(c.pii.hmac_key_file, sizeof c.pii.hmac_key_file, "%s",
             dc_test_write_temp("tiny\n", 5, ".key"));
    assert_status(dc_scrubber_create(&c.pii, &a), DC_ERR_CONFIG);
    assert_detail_contains("the key is 4 bytes");
    snprintf(c.pii.hmac_key_file, sizeof c.pii.hmac_key_file, "/nonexistent/pii.key");
    assert_status(dc_scrubber_create(&c.pii, &a), DC_ERR_CONFIG);
    assert_detail_contains("/nonexistent/pii.key");
}

/* scrub(scrub(x)) == scrub(x): no mode's output is detected again. */
static void test_idempotent_in_every_mode(void **state) {
    (void)state;
    const char *text = "Jane <jane.doe@example.com>, +44 20 7946 0958, 4111 1111 1111 1111, "
                       "GB82 WEST 1234 5698 7654 32, 536-22-1234, 10.1.2.3, fe80::1, "
                       "password=\"Tr0ub4dor&3\", token ghp_abcdefghijklmnopqrstuvwxyz0123456789, "
                       "born 1985-03-12, postgres://u:Pa55word!@h/db";
    for (int m = DC_PII_PLACEHOLDER; m <= DC_PII_HASH; m++) {
        for (int sens = DC_PII_PERMISSIVE; sens <= DC_PII_STRICT; sens++) {
            dc_scrubber *s = make((dc_pii_mode)m, (dc_pii_sensitivity)sens);
            size_t n1 = 0, n2 = 0;
            char *once = scrub_text(s, text, &n1);
            char *twice = scrub_text(s, once, &n2);
            if (strcmp(once, twice) != 0 || n2 != 0)
                fail_msg("mode %s, %s: not idempotent:\n%s\n%s", dc_pii_mode_name((dc_pii_mode)m),
                         dc_pii_sensitivity_name((dc_pii_sensitivity)sens), once, twice);
            assert_true(n1 >= 8);
            free(once);
            free(twice);
            dc_scrubber_destroy(s);
        }
    }
}

/* Overlapping candidates give one well-formed output: sorted, disjoint, inside the text. */
static void test_overlaps_resolve_to_disjoint_spans(void **state) {
    (void)state;
    dc_scrubber *s = make(DC_PII_PLACEHOLDER, DC_PII_STRICT);
    const char *text = "https://bob:p@ss@mail.example.com/ api_key=\"ghp_abcdefghijklmnopqrstuvwxyz"
                       "0123456789\" ::ffff:10.0.0.1 +1 415 555 2671";
    dc_scrub_result r;
    assert_ok(dc_scrubber_scrub(s, text, strlen(text), &r));
    for (size_t k = 0; k < r.count; k++) {
        assert_true(r.detections[k].start < r.detections[k].end);
        assert_true(r.detections[k].end <= strlen(text));
        if (k) assert_true(r.detections[k - 1].end <= r.detections[k].start);
    }
    assert_string_equal(r.text, "https://<URL_CREDENTIALS>@mail.example.com/ api_key=\"<GITHUB_TOKEN>\" "
                                "<IP_ADDRESS> <PHONE>");
    dc_scrub_result_free(&r);
    dc_scrubber_destroy(s);
}

static void test_sensitivity_levels(void **state) {
    (void)state;
    const char *bare = "ref 536221234";           /* nine digits, no context: weak */
    const char *phone = "ring 415-555-2671 later"; /* a phone with a context word */
    const char *plain = "or 415-555-2671 later";   /* a phone without one */
    dc_scrubber *perm = make(DC_PII_PLACEHOLDER, DC_PII_PERMISSIVE);
    dc_scrubber *mod = make(DC_PII_PLACEHOLDER, DC_PII_MODERATE);
    dc_scrubber *strict = make(DC_PII_PLACEHOLDER, DC_PII_STRICT);
    size_t n;
    free(scrub_text(strict, bare, &n));
    assert_int_equal(n, 1);
    free(scrub_text(mod, bare, &n));
    assert_int_equal(n, 0);
    free(scrub_text(perm, phone, &n));
    assert_int_equal(n, 1);
    free(scrub_text(perm, plain, &n));
    assert_int_equal(n, 0);
    free(scrub_text(mod, plain, &n));
    assert_int_equal(n, 1);
    /* strict also flags high-entropy tokens with no keyword nearby */
    const char *tok = "see Zk3pQ9vR2mX7wL4nB8cT1yH6 for details";
    free(scrub_text(strict, tok, &n));
    assert_int_equal(n, 1);
    free(scrub_text(mod, tok, &n));
    assert_int_equal(n, 0);
    dc_scrubber_destroy(perm);
    dc_scrubber_destroy(mod);
    dc_scrubber_destroy(strict);
}

static void test_custom_patterns(void **state) {
    (void)state;
    dc_config c;
    dc_config_defaults(&c);
    c.pii.custom_pattern_count = 2;
    snprintf(c.pii.custom_patterns[0], DC_CONFIG_PII_PATTERN_MAX, "EMPLOYEE_ID=\\bEMP-\\d{6}\\b");
    snprintf(c.pii.custom_patterns[1], DC_CONFIG_PII_PATTERN_MAX, "CODENAME=\\p{Lu}\\p{Ll}+-\\d");
    dc_scrubber *s = NULL;
    assert_ok(dc_scrubber_create(&c.pii, &s));
    dc_scrub_result r;
    const char *text = "EMP-123456 works on Éclair-7 (not EMP-1234567).";
    assert_ok(dc_scrubber_scrub(s, text, strlen(text), &r));
    assert_string_equal(r.text, "<EMPLOYEE_ID> works on <CODENAME> (not EMP-1234567).");
    assert_int_equal(r.count, 2);
    assert_int_equal(r.detections[0].category, DC_PII_CAT_CUSTOM);
    assert_string_equal(r.detections[0].label, "EMPLOYEE_ID");
    assert_string_equal(r.detections[1].label, "CODENAME");
    dc_scrub_result_free(&r);
    dc_scrubber_destroy(s);

    snprintf(c.pii.custom_patterns[1], DC_CONFIG_PII_PATTERN_MAX, "BAD=(unclosed");
    assert_status(dc_scrubber_create(&c.pii, &s), DC_ERR_CONFIG);
    assert_detail_contains("pii.custom_patterns[1]");
    assert_detail_contains("missing closing parenthesis");
    /* a catastrophic user pattern fails the call instead of letting the text through */
    c.pii.custom_pattern_count = 1;
    snprintf(c.pii.custom_patterns[0], DC_CONFIG_PII_PATTERN_MAX, "SLOW=(a+)+$");
    assert_ok(dc_scrubber_create(&c.pii, &s));
    char input[4096];
    memset(input, 'a', sizeof input - 2);
    input[sizeof input - 2] = 'b';
    input[sizeof input - 1] = '\0';
    assert_status(dc_scrubber_scrub(s, input, strlen(input), &r), DC_ERR_INVALID_VALUE);
    assert_detail_contains("refused");
    assert_null(r.text);
    dc_scrubber_destroy(s);
}

static void test_bad_input(void **state) {
    (void)state;
    dc_scrubber *s = make(DC_PII_PLACEHOLDER, DC_PII_MODERATE);
    dc_scrub_result r;
    const char bad[] = "mail jane@example.com then \xff\xfe";
    assert_status(dc_scrubber_scrub(s, bad, sizeof bad - 1, &r), DC_ERR_INVALID_VALUE);
    assert_detail_contains("not valid UTF-8 at byte 27");
    assert_null(r.text);
    assert_status(dc_scrubber_scrub(NULL, "x", 1, &r), DC_ERR_INVALID_ARGUMENT);
    assert_status(dc_scrubber_scrub(s, NULL, 3, &r), DC_ERR_INVALID_ARGUMENT);
    assert_status(dc_scrubber_scrub(s, "x", 1, NULL), DC_ERR_INVALID_ARGUMENT);
    /* empty text, and NUL bytes inside the text */
    assert_ok(dc_scrubber_scrub(s, NULL, 0, &r));
    assert_int_equal(r.len, 0);
    assert_string_equal(r.text, "");
    dc_scrub_result_free(&r);
    const char nul[] = "a\0jane@example.com\0b";
    assert_ok(dc_scrubber_scrub(s, nul, sizeof nul - 1, &r));
    assert_int_equal(r.count, 1);
    assert_int_equal(r.len, 11);
    assert_memory_equal(r.text, "a\0<EMAIL>\0b", 11);
    dc_scrub_result_free(&r);
    dc_scrub_result_free(NULL);
    dc_scrubber_destroy(NULL);
    dc_config c;
    dc_config_defaults(&c);
    c.pii.mode = (dc_pii_mode)9;
    dc_scrubber *x = NULL;
    assert_status(dc_scrubber_create(&c.pii, &x), DC_ERR_CONFIG);
    assert_status(dc_scrubber_create(NULL, &x), DC_ERR_INVALID_ARGUMENT);
    dc_scrubber_destroy(s);
}

/* Error messages and audit records carry categories and positions, never the values. */
static void test_no_raw_pii_in_errors_or_audit(void **state) {
    (void)state;
    static const char *const values[] = {
        "jane.doe@example.com", "536-22-1234", "4111 1111 1111 1111", "GB82 WEST 1234 5698 7654 32",
        "hunter2!x", "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "+44 20 7946 0958",
        "S3cr3t!", "1985-03-12",
    };
    char text[1024];
    snprintf(text, sizeof text,
             "mail %s, ssn %s, card %s, iban %s, password: %s, %s, tel %s, "
             "redis://u:%s@h, DOB %s",
             values[0], values[1], values[2], values[3], values[4], values[5], values[6],
             values[7], values[8]);
    for (int m = DC_PII_PLACEHOLDER; m <= DC_PII_OFF; m++) {
        dc_scrubber *s = make((dc_pii_mode)m, DC_PII_MODERATE);
        dc_scrub_result r;
        assert_ok(dc_scrubber_scrub(s, text, strlen(text), &r));
        assert_int_equal(r.count, sizeof values / sizeof values[0]);
        char *audit = NULL;
        size_t alen = 0;
        assert_ok(dc_scrub_result_audit_json(&r, &audit, &alen));
        assert_int_equal(strlen(audit), alen);
        for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
            if (strstr(audit, values[v])) fail_msg("audit record holds \"%s\": %s", values[v], audit);
            if (m != DC_PII_OFF && strstr(r.text, values[v]))
                fail_msg("mode %d left \"%s\" in the text", m, values[v]);
        }
        assert_non_null(strstr(audit, "\"category\":\"EMAIL\",\"start\":5,\"end\":25"));
        free(audit);
        dc_scrub_result_free(&r);

        /* a failure on the same text names the offset only */
        char bad[1100];
        size_t bl = (size_t)snprintf(bad, sizeof bad, "%s \xc3", text);
        assert_status(dc_scrubber_scrub(s, bad, bl, &r), DC_ERR_INVALID_VALUE);
        for (size_t v = 0; v < sizeof values / sizeof values[0]; v++)
            assert_null(strstr(dc_error_detail(), values[v]));
        dc_scrubber_destroy(s);
    }
    /* the work-bound failure of a custom pattern does not quote the text either */
    dc_config c;
    dc_config_defaults(&c);
    c.pii.custom_pattern_count = 1;
    snprintf(c.pii.custom_patterns[0], DC_CONFIG_PII_PATTERN_MAX, "SLOW=(\\w+\\s?)+$");
    dc_scrubber *s = NULL;
    assert_ok(dc_scrubber_create(&c.pii, &s));
    char slow[3000];
    snprintf(slow, sizeof slow, "%s ", "secretvalueXYZ");
    for (size_t k = strlen(slow); k < sizeof slow - 2; k++) slow[k] = 'a';
    slow[sizeof slow - 2] = '!';
    slow[sizeof slow - 1] = '\0';
    dc_scrub_result r;
    assert_status(dc_scrubber_scrub(s, slow, strlen(slow), &r), DC_ERR_INVALID_VALUE);
    assert_null(strstr(dc_error_detail(), "secretvalueXYZ"));
    assert_null(strstr(dc_error_detail(), "aaaa"));
    dc_scrubber_destroy(s);
    /* and the audit record of an empty result */
    dc_scrub_result empty = {0};
    char *audit = NULL;
    assert_ok(dc_scrub_result_audit_json(&empty, &audit, NULL));
    assert_string_equal(audit, "{\"count\":0,\"detections\":[]}");
    free(audit);
}

typedef struct worker {
    const dc_scrubber *s;
    const char *text;
    const char *expect;
    int failures;
} worker;

static void *work(void *arg) {
    worker *w = arg;
    for (int i = 0; i < 200; i++) {
        dc_scrub_result r;
        if (dc_scrubber_scrub(w->s, w->text, strlen(w->text), &r) != DC_OK ||
            strcmp(r.text, w->expect) != 0)
            w->failures++;
        dc_scrub_result_free(&r);
    }
    return NULL;
}

static void test_threads_share_one_scrubber(void **state) {
    (void)state;
    dc_scrubber *s = make(DC_PII_HASH, DC_PII_MODERATE);
    const char *texts[4] = {
        "mail jane@example.com and call +1 415 555 2671",
        "café ssn 536-22-1234 \u200b card 4111111111111111",
        "token=ghp_abcdefghijklmnopqrstuvwxyz0123456789 DOB: 1990-01-02",
        "ip 10.0.0.1 and fe80::1, iban DE89 3704 0044 0532 0130 00",
    };
    worker w[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        w[i].s = s;
        w[i].text = texts[i % 4];
        w[i].expect = scrub_text(s, texts[i % 4], NULL);
        w[i].failures = 0;
    }
    for (int i = 0; i < 8; i++) assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
        free((char *)w[i].expect);
    }
    dc_scrubber_destroy(s);
}

static void test_category_names(void **state) {
    (void)state;
    for (int i = 0; i < DC_PII_CAT_COUNT; i++) {
        dc_pii_category c;
        assert_ok(dc_pii_category_parse(dc_pii_category_name((dc_pii_category)i), &c));
        assert_int_equal(c, i);
    }
    dc_pii_category c;
    assert_ok(dc_pii_category_parse("us_ssn", &c));
    assert_int_equal(c, DC_PII_CAT_US_SSN);
    assert_status(dc_pii_category_parse("SSN", &c), DC_ERR_INVALID_ARGUMENT);
    assert_string_equal(dc_pii_category_name((dc_pii_category)99), "UNKNOWN");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_recognizer_finds_its_kind),
        cmocka_unit_test(test_near_misses_are_left_alone),
        cmocka_unit_test(test_sanitation_sees_through_obfuscation),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_keyed_hash_is_stable_and_keyed),
        cmocka_unit_test(test_idempotent_in_every_mode),
        cmocka_unit_test(test_overlaps_resolve_to_disjoint_spans),
        cmocka_unit_test(test_sensitivity_levels),
        cmocka_unit_test(test_custom_patterns),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_no_raw_pii_in_errors_or_audit),
        cmocka_unit_test(test_threads_share_one_scrubber),
        cmocka_unit_test(test_category_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The scrubber does linear work on hostile input. No timing: a counting scrubber runs every
 * pattern in the PCRE2 interpreter with an automatic callout before each pattern item, counting
 * the item and the distance the match position moved (so repeats and backtracking are counted
 * character by character), and adds the bytes its C scanners visit. Sizes stay above 5000 bytes,
 * where PCRE2 stops using its required-character shortcut. For each
 * adversarial shape (long runs of digits, '@', dots, colons, assignment operators, unclosed key
 * blocks, token prefixes...) the work on 4n bytes must be about four times the work on n bytes,
 * and the work per byte must stay under a constant. */
#include "privacy/internal.h"
#include "test_support.h"

static char *repeat(const char *unit, size_t n) {
    char *s = malloc(n + 1);
    assert_non_null(s);
    size_t ul = strlen(unit);
    for (size_t i = 0; i < n; i++) s[i] = unit[i % ul];
    s[n] = '\0';
    return s;
}

static const char *const units[] = {
    "1", "1 ", "1-", "1.", "12.", "1.2.3.", "+1 ", "+", "(1", "(555) ", "0", "0 1", "00",
    "4111 ", "4111-", "536-22-", "@", "a@", "a.", ".", "a@a.", "@a.b", "a@b.c-", "xn--",
    ":", "::", "1:", "a:", "f::", "ffff:", "1.1:", "=", "a=", "key=", "password=", "token: ",
    "api_key=\"", "Authorization: Bearer ", "password is ", "-----BEGIN PRIVATE KEY-----\n",
    "-----BEGIN RSA PRIVATE KEY-----\nAAAA", "END ", "-----END PRIVATE KEY-----",
    "---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----", "PuTTY-User-Key-File-2: ", "eyJ", "eyJa.",
    "eyJhbGciOiJIUzI1NiJ9.", "born ", "DOB ", "born 1/1/", "date of birth ", "sk-", "sk-ant-",
    "ghp_", "xoxb-", "AKIA", "AIza", "://", "://a:", "://a:b@", "0x", "0xf", "bc1", "bc1q",
    "1A", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy ", "GB82 ", "GB82WEST", "hooks.slack.com/",
    "\xe2\x80\x8b", "e\xcc\x81", "\xcc\x81", "\xef\xbc\x91", "a\xe2\x80\x8b@", "Zk3pQ9vR2mX7",
    "\xe7\x94\x9f\xe5\xb9\xb4\xe6\x9c\x88\xe6\x97\xa5 ",
};

#define SMALL 16384
#define MAX_STEPS_PER_BYTE 400.0

/* Work on n, 2n and 4n bytes. PCRE2 looks for a pattern's required character only within the
 * last 5000 bytes of the subject, so work is c*n - d rather than c*n; the increments tell
 * linear (the second is twice the first) from quadratic (four times). */
static void check(const dc_scrubber *s, const char *name, char *text, double *worst_growth,
                  double *worst_per_byte) {
    uint64_t w[3] = {0, 0, 0};
    size_t sizes[3] = {SMALL, 2 * SMALL, 4 * SMALL};
    for (int k = 0; k < 3; k++) {
        size_t n = sizes[k];
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80) n--; /* whole characters */
        sizes[k] = n;
        dc_status st = dc_scrubber_count_work(s, text, n, &w[k], NULL);
        if (st) fail_msg("%s: %s", name, dc_error_detail());
    }
    double per_byte = (double)w[2] / (double)sizes[2];
    double inc1 = (double)w[1] - (double)w[0], inc2 = (double)w[2] - (double)w[1];
    double growth = inc1 >= (double)SMALL ? inc2 / inc1 : 2.0;
    if (growth > 2.5 || per_byte > MAX_STEPS_PER_BYTE)
        fail_msg("\"%s\": %llu, %llu, %llu steps on %zu, %zu, %zu bytes (growth %.2f, %.1f per "
                 "byte)",
                 name, (unsigned long long)w[0], (unsigned long long)w[1],
                 (unsigned long long)w[2], sizes[0], sizes[1], sizes[2], growth, per_byte);
    if (growth > *worst_growth) *worst_growth = growth;
    if (per_byte > *worst_per_byte) *worst_per_byte = per_byte;
}

static void test_adversarial_shapes_are_linear(void **state) {
    (void)state;
    dc_config c;
    dc_config_defaults(&c);
    c.pii.sensitivity = DC_PII_STRICT; /* every recognizer, the entropy scan included */
    dc_scrubber *s = NULL;
    assert_ok(dc_scrubber_create_counting(&c.pii, &s));
    double worst_growth = 0, worst_per_byte = 0;
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        char *text = repeat(units[u], 4 * SMALL + 8);
        check(s, units[u], text, &worst_growth, &worst_per_byte);
        free(text);
    }
    /* random mixtures of the characters that trigger recognizers */
    static const char alphabet[] = "1111@@::==++((..--//  aAfFxX0eyJ_";
    uint64_t seed = 42;
    for (int round = 0; round < 6; round++) {
        char *text = malloc(4 * SMALL + 1);
        assert_non_null(text);
        for (size_t i = 0; i < 4 * SMALL; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            text[i] = alphabet[(seed >> 33) % (sizeof alphabet - 1)];
        }
        text[4 * SMALL] = '\0';
        check(s, "random mixture", text, &worst_growth, &worst_per_byte);
        free(text);
    }
    print_message("worst growth of the work increment when the input doubles: %.2f (linear: 2, "
                  "quadratic: 4); worst %.1f steps per byte\n",
                  worst_growth, worst_per_byte);
    dc_scrubber_destroy(s);
}

/* The counter is real: a pattern that backtracks shows it. */
static void test_counter_sees_backtracking(void **state) {
    (void)state;
    dc_config c;
    dc_config_defaults(&c);
    c.pii.custom_pattern_count = 1;
    snprintf(c.pii.custom_patterns[0], DC_CONFIG_PII_PATTERN_MAX, "QUAD=a[a ]*[bc]");
    dc_scrubber *s = NULL;
    assert_ok(dc_scrubber_create_counting(&c.pii, &s));
    char *text = repeat("a ", 8192);
    uint64_t a = 0, b = 0;
    assert_ok(dc_scrubber_count_work(s, text, 2048, &a, NULL));
    assert_ok(dc_scrubber_count_work(s, text, 8192, &b, NULL));
    assert_true((double)b / (double)a > 10.0); /* quadratic: about 16x */
    free(text);
    dc_scrubber_destroy(s);
    /* and the ordinary scrubber refuses counting */
    dc_scrubber *plain = NULL;
    c.pii.custom_pattern_count = 0;
    assert_ok(dc_scrubber_create(&c.pii, &plain));
    assert_status(dc_scrubber_count_work(plain, "x", 1, &a, NULL), DC_ERR_INVALID_ARGUMENT);
    dc_scrubber_destroy(plain);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adversarial_shapes_are_linear),
        cmocka_unit_test(test_counter_sees_backtracking),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* PII validators: published test vectors pass, one changed character fails. */
#include <math.h>

#include "privacy/validate.h"
#include "test_support.h"

static void test_luhn_and_card_ranges(void **state) {
    (void)state;
    assert_true(dc_pii_luhn("4111111111111111", 16));
    assert_true(dc_pii_luhn("378282246310005", 15));  /* Amex test number */
    assert_true(dc_pii_luhn("5555555555554444", 16)); /* Mastercard test number */
    assert_false(dc_pii_luhn("4111111111111112", 16));
    assert_false(dc_pii_luhn("4111111111111121", 16)); /* two digits swapped */
    assert_false(dc_pii_luhn("", 0));
    assert_true(dc_pii_card_iin_ok("4111111111111111", 16));
    assert_true(dc_pii_card_iin_ok("378282246310005", 15));
    assert_true(dc_pii_card_iin_ok("2221000000000009", 16)); /* Mastercard 2-series */
    assert_false(dc_pii_card_iin_ok("378282246310005", 16)); /* Amex is 15 digits */
    assert_false(dc_pii_card_iin_ok("9111111111111111", 16)); /* no network issues 9 */
    assert_false(dc_pii_card_iin_ok("41111111111", 11));
}

static void test_iban(void **state) {
    (void)state;
    assert_int_equal(dc_pii_iban_length('G', 'B'), 22);
    assert_int_equal(dc_pii_iban_length('D', 'E'), 22);
    assert_int_equal(dc_pii_iban_length('N', 'O'), 15);
    assert_int_equal(dc_pii_iban_length('X', 'X'), 0);
    assert_true(dc_pii_iban_mod97("GB82WEST12345698765432", 22));
    assert_true(dc_pii_iban_mod97("DE89370400440532013000", 22));
    assert_false(dc_pii_iban_mod97("GB83WEST12345698765432", 22)); /* check digit changed */
    assert_false(dc_pii_iban_mod97("GB82WEST12345698765423", 22)); /* digits swapped */
    assert_false(dc_pii_iban_mod97("GB82west12345698765432", 22)); /* callers upper-case first */
}

static void test_ssn_rules(void **state) {
    (void)state;
    assert_true(dc_pii_ssn_valid("536221234"));
    assert_false(dc_pii_ssn_valid("078051120")); /* the Woolworth wallet card */
    assert_false(dc_pii_ssn_valid("219099999")); /* an SSA advertisement */
    assert_false(dc_pii_ssn_valid("000123456")); /* area 000 */
    assert_false(dc_pii_ssn_valid("666123456")); /* area 666 */
    assert_false(dc_pii_ssn_valid("912701234")); /* 9xx: ITINs, never SSNs */
    assert_false(dc_pii_ssn_valid("123004567")); /* group 00 */
    assert_false(dc_pii_ssn_valid("123450000")); /* serial 0000 */
    assert_false(dc_pii_ssn_valid("111111111")); /* one digit repeated */
    assert_false(dc_pii_ssn_valid("12345678x"));
}

static void test_bitcoin(void **state) {
    (void)state;
    const char *p2pkh = "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2";
    const char *p2sh = "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy";
    assert_true(dc_pii_base58check(p2pkh, strlen(p2pkh)));
    assert_true(dc_pii_base58check(p2sh, strlen(p2sh)));
    assert_false(dc_pii_base58check("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3", 34)); /* last char */
    assert_false(dc_pii_base58check("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN", 33));  /* truncated */
    assert_false(dc_pii_base58check("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNV0I", 34)); /* not base58 */
    /* BIP-173 / BIP-350 vectors */
    const char *valid[] = {
        "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4",
        "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3",
        "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
    };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        if (!dc_pii_bech32_address(valid[i], strlen(valid[i]))) fail_msg("rejected %s", valid[i]);
    const char *invalid[] = {
        "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5",        /* checksum */
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd", /* bech32, v1 */
        "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7kv8f3t4",        /* mixed case */
        "bc1zw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",        /* checksum for another data */
        "ltc1qw508d6qejxtdg4y5r3zarvary0c5xw7kgmn4n9",       /* another coin's hrp */
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        if (dc_pii_bech32_address(invalid[i], strlen(invalid[i])))
            fail_msg("accepted %s", invalid[i]);
}

static void test_ethereum(void **state) {
    (void)state;
    uint8_t h[32];
    dc_pii_keccak256((const uint8_t *)"", 0, h);
    assert_int_equal(h[0], 0xc5); /* keccak256("") = c5d24601... (not SHA3-256's a7ffc6f8) */
    assert_int_equal(h[1], 0xd2);
    assert_int_equal(h[31], 0x70);
    /* EIP-55 examples */
    assert_int_equal(dc_pii_eip55("5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"), 1);
    assert_int_equal(dc_pii_eip55("fB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"), 1);
    assert_int_equal(dc_pii_eip55("dbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB"), 1);
    assert_int_equal(dc_pii_eip55("D1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb"), 1);
    assert_int_equal(dc_pii_eip55("5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"), 0);
    assert_int_equal(dc_pii_eip55("5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED"), 0);
    assert_int_equal(dc_pii_eip55("5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"), -1);
}

static void test_jwt(void **state) {
    (void)state;
    const char *jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
                      "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
                      "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    assert_true(dc_pii_jwt_valid(jwt, strlen(jwt)));
    const char *unsigned_jwt = "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.";
    assert_true(dc_pii_jwt_valid(unsigned_jwt, strlen(unsigned_jwt)));
    /* {"typ":"JWT"}: no alg */
    const char *no_alg = "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.c2ln";
    assert_false(dc_pii_jwt_valid(no_alg, strlen(no_alg)));
    const char *garbage = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ.eyJzdWIi.x";
    assert_false(dc_pii_jwt_valid(garbage, strlen(garbage)));
    assert_false(dc_pii_jwt_valid("eyJhbGciOiJIUzI1NiJ9", 20)); /* one part */
}

static void test_entropy_and_dates(void **state) {
    (void)state;
    assert_true(dc_pii_entropy("aaaa", 4) == 0.0);
    assert_true(fabs(dc_pii_entropy("abcd", 4) - 2.0) < 1e-12);
    assert_true(dc_pii_entropy("", 0) == 0.0);
    assert_true(dc_pii_date_valid(2000, 2, 29));
    assert_false(dc_pii_date_valid(1900, 2, 29));
    assert_false(dc_pii_date_valid(2023, 2, 29));
    assert_true(dc_pii_date_valid(1985, 12, 31));
    assert_false(dc_pii_date_valid(1985, 13, 1));
    assert_false(dc_pii_date_valid(1985, 4, 31));
    assert_false(dc_pii_date_valid(1899, 1, 1));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_luhn_and_card_ranges), cmocka_unit_test(test_iban),
        cmocka_unit_test(test_ssn_rules),            cmocka_unit_test(test_bitcoin),
        cmocka_unit_test(test_ethereum),             cmocka_unit_test(test_jwt),
        cmocka_unit_test(test_entropy_and_dates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

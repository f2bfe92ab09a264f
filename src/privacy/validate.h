/* Internal: validators that turn a pattern match into a confident detection (checksums,
 * registries, calendar and range rules). Each takes the candidate's bytes and never keeps or
 * reports them. */
#ifndef DC_PRIVACY_VALIDATE_H
#define DC_PRIVACY_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Luhn over ASCII digits (no separators). */
bool dc_pii_luhn(const char *digits, size_t n);

/* Card brand check: IIN prefix and a length that network issues (Visa, Mastercard incl. 2-series,
 * Amex, Discover, Diners, JCB, UnionPay, Maestro, Mir). */
bool dc_pii_card_iin_ok(const char *digits, size_t n);

/* IBAN length registered for a country code (upper-case letters), 0 when none. */
int dc_pii_iban_length(char c0, char c1);
/* ISO 7064 mod 97-10 over an upper-case alphanumeric IBAN without separators: remainder 1. */
bool dc_pii_iban_mod97(const char *iban, size_t n);

/* US SSN rules on 9 digits: no area 000, 666 or 900-999, no group 00, no serial 0000, not all
 * one digit, not a publicised sample number. */
bool dc_pii_ssn_valid(const char *d9);

/* Bitcoin: base58check P2PKH/P2SH (mainnet and testnet versions), and bech32 / bech32m segwit
 * addresses (BIP-173 / BIP-350: hrp bc or tb, checksum variant by witness version, program
 * length). */
bool dc_pii_base58check(const char *s, size_t n);
bool dc_pii_bech32_address(const char *s, size_t n);

/* Ethereum address "0x" + 40 hex: 1 when mixed case and the EIP-55 checksum holds, 0 when
 * single-case (carries no checksum), -1 when mixed case and the checksum fails. */
int dc_pii_eip55(const char *hex40);
void dc_pii_keccak256(const uint8_t *in, size_t n, uint8_t out[32]);

/* A JWT "header.payload.signature": header and payload are base64url JSON objects and the
 * header names an "alg". */
bool dc_pii_jwt_valid(const char *s, size_t n);

/* Shannon entropy in bits per byte. */
double dc_pii_entropy(const char *s, size_t n);

/* A calendar date with a year in 1900..2099. */
bool dc_pii_date_valid(int y, int m, int d);

#endif

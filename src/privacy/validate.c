/* Validators for the PII recognizers: checksums and issuing rules. */
#include "privacy/validate.h"

#include "core/base64.h"
#include "core/error.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

bool dc_pii_luhn(const char *d, size_t n) {
    unsigned sum = 0;
    bool dbl = false;
    for (size_t i = n; i-- > 0;) {
        unsigned v = (unsigned)(d[i] - '0');
        if (v > 9) return false;
        if (dbl) {
            v *= 2;
            if (v > 9) v -= 9;
        }
        sum += v;
        dbl = !dbl;
    }
    return n > 0 && sum % 10 == 0;
}

static unsigned prefix(const char *d, size_t k) {
    unsigned v = 0;
    for (size_t i = 0; i < k; i++) v = v * 10 + (unsigned)(d[i] - '0');
    return v;
}

bool dc_pii_card_iin_ok(const char *d, size_t n) {
    if (n < 12 || n > 19) return false;
    unsigned p1 = prefix(d, 1), p2 = prefix(d, 2), p3 = prefix(d, 3), p4 = prefix(d, 4);
    if (p1 == 4) return n == 13 || n == 16 || n == 19;                        /* Visa */
    if (p2 >= 51 && p2 <= 55) return n == 16;                                 /* Mastercard */
    if (p4 >= 2221 && p4 <= 2720) return n == 16;                             /* Mastercard 2 */
    if (p4 >= 2200 && p4 <= 2204) return n >= 16;                             /* Mir */
    if (p2 == 34 || p2 == 37) return n == 15;                                 /* Amex */
    if ((p3 >= 300 && p3 <= 305) || p4 == 3095 || p2 == 36 || p2 == 38 || p2 == 39)
        return n >= 14;                                                       /* Diners */
    if (p4 >= 3528 && p4 <= 3589) return n >= 16;                             /* JCB */
    if (p4 == 6011 || (p3 >= 644 && p3 <= 649) || p2 == 65 || p2 == 62) return n >= 16;
    if (p2 == 50 || (p2 >= 56 && p2 <= 69)) return n >= 12;                   /* Maestro */
    return false;
}

/* ---------------------------------------------------------------- IBAN */

/* SWIFT IBAN registry: country code and total length. */
static const struct {
    char cc[3];
    unsigned char len;
} iban_lengths[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16},
    {"BG", 22}, {"BH", 22}, {"BI", 27}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22},
    {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DJ", 27}, {"DK", 18}, {"DO", 28}, {"EE", 20},
    {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FK", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22},
    {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28},
    {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30},
    {"KZ", 20}, {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21},
    {"LY", 25}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MN", 20}, {"MR", 27},
    {"MT", 31}, {"MU", 30}, {"NI", 28}, {"NL", 18}, {"NO", 15}, {"OM", 23}, {"PK", 24},
    {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"RU", 33},
    {"SA", 24}, {"SC", 31}, {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27},
    {"SO", 23}, {"ST", 25}, {"SV", 28}, {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29},
    {"VA", 22}, {"VG", 24}, {"XK", 20}, {"YE", 30},
};

int dc_pii_iban_length(char c0, char c1) {
    for (size_t i = 0; i < sizeof iban_lengths / sizeof iban_lengths[0]; i++)
        if (iban_lengths[i].cc[0] == c0 && iban_lengths[i].cc[1] == c1) return iban_lengths[i].len;
    return 0;
}

bool dc_pii_iban_mod97(const char *s, size_t n) {
    if (n < 5) return false;
    unsigned r = 0;
    for (size_t k = 0; k < n; k++) {
        char ch = s[(k + 4) % n]; /* the first four characters move to the end */
        unsigned v;
        if (ch >= '0' && ch <= '9') v = (unsigned)(ch - '0');
        else if (ch >= 'A' && ch <= 'Z') v = (unsigned)(ch - 'A') + 10;
        else return false;
        r = v >= 10 ? (r * 100 + v) % 97 : (r * 10 + v) % 97;
    }
    return r == 1;
}

/* ---------------------------------------------------------------- SSN */

bool dc_pii_ssn_valid(const char *d) {
    for (int i = 0; i < 9; i++)
        if (d[i] < '0' || d[i] > '9') return false;
    unsigned area = prefix(d, 3), group = prefix(d + 3, 2), serial = prefix(d + 5, 4);
    if (area == 0 || area == 666 || area >= 900) return false; /* 9xx are ITINs */
    if (group == 0 || serial == 0) return false;
    bool same = true;
    for (int i = 1; i < 9; i++) same = same && d[i] == d[0];
    if (same) return false;
    /* Numbers printed in advertising and documentation, never issued to a person. */
    static const char *const samples[] = {"078051120", "219099999", "123456789", "457555462"};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
        if (memcmp(d, samples[i], 9) == 0) return false;
    return true;
}

/* ---------------------------------------------------------------- Bitcoin */

static const char b58_alphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

bool dc_pii_base58check(const char *s, size_t n) {
    if (n < 26 || n > 35) return false;
    uint8_t num[25] = {0}; /* big-endian; an address decodes to exactly 25 bytes */
    for (size_t i = 0; i < n; i++) {
        const char *p = memchr(b58_alphabet, s[i], 58);
        if (!p || !s[i]) return false;
        unsigned carry = (unsigned)(p - b58_alphabet);
        for (int k = 24; k >= 0; k--) {
            carry += 58u * num[k];
            num[k] = (uint8_t)carry;
            carry >>= 8;
        }
        if (carry) return false; /* more than 25 bytes */
    }
    /* Leading '1's are leading zero bytes: their count must agree with the number's. */
    size_t ones = 0, zeros = 0;
    while (ones < n && s[ones] == '1') ones++;
    while (zeros < 25 && num[zeros] == 0) zeros++;
    if (ones != zeros) return false;
    uint8_t h1[32], h2[32];
    SHA256(num, 21, h1);
    SHA256(h1, 32, h2);
    if (memcmp(h2, num + 21, 4) != 0) return false;
    return num[0] == 0x00 || num[0] == 0x05 || num[0] == 0x6F || num[0] == 0xC4;
}

static uint32_t bech32_polymod(const uint8_t *v, size_t n) {
    static const uint32_t gen[5] = {0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3};
    uint32_t chk = 1;
    for (size_t i = 0; i < n; i++) {
        uint32_t top = chk >> 25;
        chk = ((chk & 0x1ffffff) << 5) ^ v[i];
        for (int k = 0; k < 5; k++)
            if ((top >> k) & 1) chk ^= gen[k];
    }
    return chk;
}

bool dc_pii_bech32_address(const char *s, size_t n) {
    static const char charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    if (n < 14 || n > 90) return false;
    bool lower = false, upper = false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= 'a' && s[i] <= 'z') lower = true;
        if (s[i] >= 'A' && s[i] <= 'Z') upper = true;
    }
    if (lower && upper) return false;
    size_t sep = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '1') sep = i; /* the last '1' separates the hrp */
    if (sep != 2) return false;
    char hrp[2] = {(char)(s[0] | 0x20), (char)(s[1] | 0x20)};
    if (!((hrp[0] == 'b' && hrp[1] == 'c') || (hrp[0] == 't' && hrp[1] == 'b'))) return false;
    uint8_t v[2 * 2 + 1 + 90];
    size_t k = 0;
    for (int i = 0; i < 2; i++) v[k++] = (uint8_t)(hrp[i] >> 5);
    v[k++] = 0;
    for (int i = 0; i < 2; i++) v[k++] = (uint8_t)(hrp[i] & 31);
    size_t data0 = k;
    for (size_t i = sep + 1; i < n; i++) {
        const char *p = memchr(charset, s[i] | 0x20, 32);
        if (!p || !s[i]) return false;
        v[k++] = (uint8_t)(p - charset);
    }
    size_t ndata = k - data0;
    if (ndata < 7) return false;
    uint32_t pm = bech32_polymod(v, k);
    unsigned wver = v[data0];
    if (wver > 16) return false;
    if (pm != (wver == 0 ? 1u : 0x2bc830a3u)) return false; /* bech32 for v0, bech32m after */
    size_t prog_bits = (ndata - 1 - 6) * 5, prog_len = prog_bits / 8;
    if (prog_bits % 8 >= 5) return false; /* more than 4 bits of padding */
    if (prog_len < 2 || prog_len > 40) return false;
    if (wver == 0 && prog_len != 20 && prog_len != 32) return false;
    return true;
}

/* ---------------------------------------------------------------- Ethereum */

static const uint64_t keccak_rc[24] = {
    0x0000000000000001ull, 0x0000000000008082ull, 0x800000000000808Aull, 0x8000000080008000ull,
    0x000000000000808Bull, 0x0000000080000001ull, 0x8000000080008081ull, 0x8000000000008009ull,
    0x000000000000008Aull, 0x0000000000000088ull, 0x0000000080008009ull, 0x000000008000000Aull,
    0x000000008000808Bull, 0x800000000000008Bull, 0x8000000000008089ull, 0x8000000000008003ull,
    0x8000000000008002ull, 0x8000000000000080ull, 0x000000000000800Aull, 0x800000008000000Aull,
    0x8000000080008081ull, 0x8000000000008080ull, 0x0000000080000001ull, 0x8000000080008008ull,
};
static const unsigned keccak_rot[24] = {1,  3,  6,  10, 15, 21, 28, 36, 45, 55, 2,  14,
                                        27, 41, 56, 8,  25, 43, 62, 18, 39, 61, 20, 44};
static const unsigned keccak_pi[24] = {10, 7,  11, 17, 18, 3, 5,  16, 8,  21, 24, 4,
                                       15, 23, 19, 13, 12, 2, 20, 14, 22, 9,  6,  1};

static uint64_t rotl64(uint64_t x, unsigned r) {
    return (x << r) | (x >> (64 - r));
}

static void keccak_f(uint64_t st[25]) {
    for (int round = 0; round < 24; round++) {
        uint64_t bc[5];
        for (int i = 0; i < 5; i++)
            bc[i] = st[i] ^ st[i + 5] ^ st[i + 10] ^ st[i + 15] ^ st[i + 20];
        for (int i = 0; i < 5; i++) {
            uint64_t t = bc[(i + 4) % 5] ^ rotl64(bc[(i + 1) % 5], 1);
            for (int j = 0; j < 25; j += 5) st[j + i] ^= t;
        }
        uint64_t t = st[1];
        for (int i = 0; i < 24; i++) {
            unsigned j = keccak_pi[i];
            uint64_t tmp = st[j];
            st[j] = rotl64(t, keccak_rot[i]);
            t = tmp;
        }
        for (int j = 0; j < 25; j += 5) {
            for (int i = 0; i < 5; i++) bc[i] = st[j + i];
            for (int i = 0; i < 5; i++) st[j + i] ^= (~bc[(i + 1) % 5]) & bc[(i + 2) % 5];
        }
        st[0] ^= keccak_rc[round];
    }
}

/* Keccak-256 as Ethereum uses it: the original padding (0x01), not SHA3-256's (0x06). */
void dc_pii_keccak256(const uint8_t *in, size_t n, uint8_t out[32]) {
    enum { RATE = 136 };
    uint64_t st[25] = {0};
    uint8_t block[RATE];
    for (;;) {
        size_t take = n < RATE ? n : RATE;
        memset(block, 0, RATE);
        memcpy(block, in, take);
        bool last = take < RATE;
        if (last) {
            block[take] ^= 0x01;
            block[RATE - 1] ^= 0x80;
        }
        for (int i = 0; i < RATE / 8; i++) {
            uint64_t w = 0;
            for (int b = 7; b >= 0; b--) w = (w << 8) | block[i * 8 + b];
            st[i] ^= w;
        }
        keccak_f(st);
        if (last) break;
        in += take;
        n -= take;
    }
    for (int i = 0; i < 4; i++)
        for (int b = 0; b < 8; b++) out[i * 8 + b] = (uint8_t)(st[i] >> (8 * b));
}

int dc_pii_eip55(const char *hex) {
    bool lower = false, upper = false;
    char low[40];
    for (int i = 0; i < 40; i++) {
        char ch = hex[i];
        if (ch >= 'a' && ch <= 'f') lower = true;
        if (ch >= 'A' && ch <= 'F') {
            upper = true;
            ch = (char)(ch | 0x20);
        }
        low[i] = ch;
    }
    if (!(lower && upper)) return 0;
    uint8_t h[32];
    dc_pii_keccak256((const uint8_t *)low, 40, h);
    for (int i = 0; i < 40; i++) {
        char ch = hex[i];
        if (!((ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F'))) continue;
        unsigned nib = (i % 2 == 0) ? (h[i / 2] >> 4) : (h[i / 2] & 15);
        bool want_upper = nib >= 8;
        if (want_upper != (ch >= 'A' && ch <= 'F')) return -1;
    }
    return 1;
}

/* ---------------------------------------------------------------- JWT */

static bool b64url_json_object(const char *s, size_t n, const char *need_key) {
    size_t len = 0, bad = 0;
    uint8_t *json = NULL;
    if (dc_base64_decode(s, n, DC_BASE64_URL, &json, &len, &bad) != DC_OK) {
        dc_error_clear();
        return false;
    }
    cJSON *root = cJSON_ParseWithLength((const char *)json, len);
    bool ok = cJSON_IsObject(root) && (!need_key || cJSON_GetObjectItemCaseSensitive(root, need_key));
    cJSON_Delete(root);
    free(json);
    return ok;
}

bool dc_pii_jwt_valid(const char *s, size_t n) {
    const char *d1 = memchr(s, '.', n);
    if (!d1) return false;
    const char *rest = d1 + 1;
    const char *d2 = memchr(rest, '.', (size_t)(s + n - rest));
    if (!d2) return false;
    return b64url_json_object(s, (size_t)(d1 - s), "alg") &&
           b64url_json_object(rest, (size_t)(d2 - rest), NULL);
}

/* ---------------------------------------------------------------- misc */

double dc_pii_entropy(const char *s, size_t n) {
    if (!n) return 0.0;
    unsigned counts[256] = {0};
    for (size_t i = 0; i < n; i++) counts[(unsigned char)s[i]]++;
    double h = 0.0;
    for (int c = 0; c < 256; c++) {
        if (!counts[c]) continue;
        double p = (double)counts[c] / (double)n;
        h -= p * log2(p);
    }
    return h;
}

bool dc_pii_date_valid(int y, int m, int d) {
    static const int days[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1900 || y > 2099 || m < 1 || m > 12 || d < 1 || d > days[m - 1]) return false;
    if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return false;
    return true;
}

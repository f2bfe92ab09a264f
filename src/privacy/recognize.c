/* The recognizers: where each kind of PII or secret is looked for, how a match is validated,
 * and how confident the result is.
 *
 * Scores follow Presidio's scheme (methods.md §7.1): a pattern gives a base score, a validator
 * that passes (a checksum, a registry length) lifts it to about 1, one that fails drops the
 * match, and context words in the 40 bytes before a weak match add 0.35. The scrubber keeps
 * what reaches its sensitivity's threshold (permissive 0.8, moderate 0.5, strict 0.3).
 *
 * Linear time: one C pass over the text finds the places worth a closer look ('@', the start
 * of a digit group, '+', '(', ':', '='); only there do anchored patterns run, each doing
 * bounded work. The remaining patterns scan the text themselves and start on rare literals.
 * Every backward or forward look from a trigger is bounded by a constant. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "privacy/internal.h"
#include "privacy/validate.h"

/* ---------------------------------------------------------------- byte classes */

static inline bool is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}
static inline bool is_alpha(unsigned char c) {
    return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}
static inline bool is_alnum(unsigned char c) {
    return is_digit(c) || is_alpha(c);
}
static inline bool is_word(unsigned char c) {
    return is_alnum(c) || c == '_';
}
static inline bool is_hex(unsigned char c) {
    return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}
static inline unsigned char lower(unsigned char c) {
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

#define U(s, i) ((unsigned char)(s)[i])

/* memmem is not POSIX: the first occurrence of needle in h[0..hn), or NULL. */
static const char *find_bytes(const char *h, size_t hn, const char *needle, size_t nn) {
    if (nn == 0 || hn < nn) return NULL;
    const char *end = h + hn - nn + 1;
    for (const char *p = h; p < end;) {
        const char *c = memchr(p, needle[0], (size_t)(end - p));
        if (!c) return NULL;
        if (memcmp(c, needle, nn) == 0) return c;
        p = c + 1;
    }
    return NULL;
}

/* ---------------------------------------------------------------- candidates and context */

void dc_pii_add(dc_pii_scan *scan, dc_pii_category cat, size_t start, size_t end, float score) {
    if (end <= start || end > scan->n || scan->err) return;
    if (score > 1.0f) score = 1.0f;
    if (score < scan->sc->threshold) return;
    if (scan->ncands == scan->cap) {
        size_t cap = scan->cap ? scan->cap * 2 : 64;
        dc_pii_cand *c = realloc(scan->cands, cap * sizeof *c);
        if (!c) {
            scan->err = DC_ERR_OUT_OF_MEMORY;
            return;
        }
        scan->cands = c;
        scan->cap = cap;
    }
    dc_pii_cand *c = &scan->cands[scan->ncands++];
    c->start = (uint32_t)start;
    c->end = (uint32_t)end;
    c->score = score;
    c->cat = (uint8_t)cat;
    c->custom = 0;
}

#define CONTEXT_WINDOW 40

/* True when one of `words` (lower-case; ASCII words must stand alone) occurs in the
 * CONTEXT_WINDOW bytes before pos, after the previous digit: in "SSN: 163-47-2771, staff no.
 * 639840569" the label belongs to the first number, not the second. */
static bool context_before(dc_pii_scan *scan, size_t pos, const char *const *words) {
    size_t lo = pos > CONTEXT_WINDOW ? pos - CONTEXT_WINDOW : 0;
    for (size_t i = pos; i > lo; i--) {
        if (is_digit(U(scan->s, i - 1))) {
            lo = i;
            break;
        }
    }
    unsigned char buf[CONTEXT_WINDOW];
    size_t len = pos - lo;
    for (size_t i = 0; i < len; i++) buf[i] = lower(U(scan->s, lo + i));
    scan->steps += len;
    /* Words are tried only where one can begin: at the start of an ASCII word, or at a
     * non-ASCII byte (CJK words have no spaces around them). */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = buf[i];
        bool start = c >= 0x80 || (is_alpha(c) && (i ? !is_alpha(buf[i - 1])
                                                      : lo == 0 || !is_alpha(U(scan->s, lo - 1))));
        if (!start) continue;
        for (const char *const *w = words; *w; w++) {
            if ((unsigned char)(*w)[0] != c) continue;
            size_t wl = strlen(*w);
            if (i + wl > len || memcmp(buf + i, *w, wl) != 0) continue;
            if (c >= 0x80 || i + wl == len || !is_alpha(buf[i + wl])) return true;
        }
    }
    return false;
}

static const char *const phone_context[] = {
    "phone", "tel", "tel.", "telephone", "call", "calling", "mobile", "mob", "cell", "contacts",
    "cellphone", "fax", "contact", "reach", "whatsapp", "sms", "text", "ring", "dial",
    "hotline", "telefon", "telefonnummer", "handy", "rufnummer", "telefono", "tel\xc3\xa9" "fono",
    "t\xc3\xa9l\xc3\xa9phone", "t\xc3\xa9l", "portable", "m\xc3\xb3vil", "celular", "cellulare",
    "\xe9\x9b\xbb\xe8\xa9\xb1", "\xe6\x90\xba\xe5\xb8\xaf", "\xe6\x89\x8b\xe6\x9c\xba",
    "\xe7\x94\xb5\xe8\xaf\x9d", "\xec\xa0\x84\xed\x99\x94", NULL};
static const char *const phone_negative[] = {"isbn", "order", "invoice", "ref", "reference",
                                             "tracking", "serial", "sku", "ticket", "batch",
                                             "lot", "part", "build", "version", NULL};
static const char *const ssn_context[] = {"ssn", "ssn#", "ss#", "social security",
                                          "social-security", "soc sec", "soc. sec.",
                                          "taxpayer", "tax id", NULL};
static const char *const ip_negative[] = {"version", "ver", "release", "build", "firmware",
                                          "upgrade", "upgraded", "update", "updated", "install",
                                          "installed", "patch", "downgrade", "section",
                                          "chapter", "step", "figure", "fig", "table", "rule",
                                          "article", "clause", "oid", NULL};
static const char *const card_negative[] = {"ean", "upc", "gtin", "sku", "isbn", "imei",
                                            "barcode", "tracking", "fedex", "ups", "usps",
                                            "dhl", "serial", "order", "invoice", "account",
                                            "acct", "iban", "routing", NULL};

/* ---------------------------------------------------------------- email */

static bool is_local_char(unsigned char c) {
    return is_alnum(c) || c >= 0x80 || c == '.' || c == '_' || c == '%' || c == '+' ||
           c == '-' || c == '\'';
}

static bool file_extension_tld(const char *t, size_t n) {
    static const char *const ext[] = {"png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp",
                                      "css", "js", "mjs", "ts", "tsx", "jsx", "json", "map",
                                      "txt", "yml", "yaml", "toml", "xml", "html", "htm", "lock",
                                      "log", "zip", "gz", "tgz", "pdf", NULL};
    for (const char *const *e = ext; *e; e++)
        if (strlen(*e) == n && memcmp(*e, t, n) == 0) return true;
    return false;
}

static void email_at(dc_pii_scan *scan, size_t at) {
    const char *s = scan->s;
    size_t j = at;
    while (j > 0 && at - j < 64 && is_local_char(U(s, j - 1))) j--;
    scan->steps += at - j;
    if (j > 0 && is_local_char(U(s, j - 1))) return; /* local part longer than 64 */
    while (j < at && s[j] == '.') j++;
    if (j == at) return;
    PCRE2_SIZE *ov;
    if (!dc_pii_match(scan, scan->sc->rx[DC_RA_EMAIL], j, scan->n, &ov)) return;
    size_t end = ov[1], dom = ov[2];
    scan->steps += end - j;
    if (s[at - 1] == '.') return;
    for (size_t i = j; i + 1 < at; i++)
        if (s[i] == '.' && s[i + 1] == '.') return;
    /* Top-level domain: letters (or an IDN "xn--" label), no trailing hyphen. */
    size_t tld = end;
    while (tld > dom && s[tld - 1] != '.') tld--;
    size_t tl = end - tld;
    if (s[end - 1] == '-') return;
    bool letters = true;
    for (size_t i = tld; i < end; i++) letters = letters && (is_alpha(U(s, i)) || U(s, i) >= 0x80);
    if (!letters && !(tl > 4 && memcmp(s + tld, "xn--", 4) == 0)) return;
    /* "icon@2x.png" and friends are file names, not addresses. */
    size_t first = dom;
    while (first < end && s[first] != '.') first++;
    bool retina = first - dom >= 2 && s[first - 1] == 'x';
    for (size_t i = dom; retina && i + 1 < first; i++) retina = is_digit(U(s, i));
    if (retina) return;
    if (first == tld - 1 && file_extension_tld(s + tld, tl)) {
        bool tld_lower = true;
        for (size_t i = tld; i < end; i++) tld_lower = tld_lower && !(s[i] >= 'A' && s[i] <= 'Z');
        if (tld_lower && (tl <= 3 || strncmp(s + tld, "json", 4) == 0)) return;
    }
    /* git@github.com:org/repo is an SSH remote, not a mailbox. */
    if (at - j == 3 && memcmp(s + j, "git", 3) == 0 && end < scan->n && s[end] == ':') return;
    dc_pii_add(scan, DC_PII_CAT_EMAIL, j, end, 0.9f);
}

/* ---------------------------------------------------------------- numbers */

/* True when the number at a continues a longer sequence of digit groups ("AT69 2128 0997 ...":
 * a card or phone cannot start at "0997"). */
static bool continues_number(const char *s, size_t a) {
    if (s[a] == '+' || s[a] == '(') return false; /* an explicit start */
    return a >= 2 && (s[a - 1] == ' ' || s[a - 1] == '-' || s[a - 1] == '.' || s[a - 1] == '/') &&
           is_digit(U(s, a - 2));
}

/* Digits of s[a..b) into d (room for 64); returns the count (stops at 64). */
static size_t digits_of(const char *s, size_t a, size_t b, char *d) {
    size_t k = 0;
    for (size_t i = a; i < b && k < 64; i++)
        if (is_digit(U(s, i))) d[k++] = s[i];
    return k;
}

static bool card_ok(const char *s, size_t a, size_t b) {
    char d[64];
    size_t n = digits_of(s, a, b, d);
    return dc_pii_card_iin_ok(d, n) && dc_pii_luhn(d, n);
}

static void card_at(dc_pii_scan *scan, size_t i) {
    PCRE2_SIZE *ov;
    if (!dc_pii_match(scan, scan->sc->rx[DC_RA_CARD], i, scan->n, &ov)) return;
    const char *s = scan->s;
    size_t a = ov[0], b = ov[1];
    scan->steps += b - a;
    if (continues_number(s, a)) return;
    /* One separator style throughout, and groups of 4 to 6 digits before the last. */
    char sep = 0;
    size_t group = 0;
    size_t cuts[24];
    size_t ncuts = 0;
    for (size_t k = a; k < b; k++) {
        if (is_digit(U(s, k))) {
            group++;
            continue;
        }
        if (sep && s[k] != sep) return;
        sep = s[k];
        if (group < 4 || group > 6) return;
        if (ncuts < 24) cuts[ncuts++] = k;
        group = 0;
    }
    if (context_before(scan, a, card_negative)) return; /* barcodes, parcels, orders */
    if (card_ok(s, a, b)) {
        dc_pii_add(scan, DC_PII_CAT_CREDIT_CARD, a, b, 1.0f);
        return;
    }
    /* A longer run of groups: the card may be a prefix ending at a group boundary. */
    for (size_t c = ncuts; c-- > 0;) {
        if (card_ok(s, a, cuts[c])) {
            dc_pii_add(scan, DC_PII_CAT_CREDIT_CARD, a, cuts[c], 1.0f);
            return;
        }
    }
}

static void ssn_at(dc_pii_scan *scan, size_t i) {
    PCRE2_SIZE *ov;
    if (!dc_pii_match(scan, scan->sc->rx[DC_RA_SSN], i, scan->n, &ov)) return;
    char d[64];
    size_t a = ov[0], b = ov[1];
    if (continues_number(scan->s, a)) return;
    if (digits_of(scan->s, a, b, d) != 9 || !dc_pii_ssn_valid(d)) return;
    char sep = scan->s[a + 3];
    float score = sep == '-' ? 0.85f : is_digit((unsigned char)sep) ? 0.3f : 0.6f;
    if (context_before(scan, a, ssn_context)) score += 0.35f;
    dc_pii_add(scan, DC_PII_CAT_US_SSN, a, b, score);
}

static float phone_context_adjust(dc_pii_scan *scan, size_t a, float score) {
    if (continues_number(scan->s, a)) return 0.0f;
    if (context_before(scan, a, phone_context)) return score + 0.35f;
    if (context_before(scan, a, phone_negative)) return score - 0.3f;
    return score;
}

static void nanp_at(dc_pii_scan *scan, size_t i) {
    PCRE2_SIZE *ov;
    const dc_scrubber *sc = scan->sc;
    if (dc_pii_match(scan, sc->rx[DC_RA_PHONE_NANP], i, scan->n, &ov)) {
        size_t a = ov[0], b = ov[1];
        /* exchange codes start with 2-9; "555-123-4567" is how examples are written, though */
        float score = scan->s[ov[2]] >= '2' ? 0.6f : 0.5f;
        dc_pii_add(scan, DC_PII_CAT_PHONE, a, b, phone_context_adjust(scan, a, score));
        return;
    }
    if (dc_pii_match(scan, sc->rx[DC_RA_PHONE_BARE], i, scan->n, &ov)) {
        size_t a = ov[0], b = ov[1];
        dc_pii_add(scan, DC_PII_CAT_PHONE, a, b, phone_context_adjust(scan, a, 0.3f));
    }
}

/* International numbers: 8 to 15 digits (E.164) after the '+'; a "(0)" trunk prefix does not
 * count. A run longer than that is cut back to the last group boundary that fits. */
static void intl_at(dc_pii_scan *scan, size_t i) {
    PCRE2_SIZE *ov;
    if (!dc_pii_match(scan, scan->sc->rx[DC_RA_PHONE_INTL], i, scan->n, &ov)) return;
    const char *s = scan->s;
    size_t a = ov[0], b = ov[1], digits = 0, best = 0;
    for (size_t k = a; k < b; k++) {
        if (s[k] == '(' && k + 2 < b && s[k + 1] == '0' && s[k + 2] == ')') {
            k += 2;
            continue;
        }
        if (is_digit(U(s, k))) {
            digits++;
            bool group_end = k + 1 == b || !is_digit(U(s, k + 1));
            if (group_end && digits >= 8 && digits <= 15) best = k + 1 + (k + 1 < b && s[k + 1] == ')');
        }
    }
    if (!best) return;
    dc_pii_add(scan, DC_PII_CAT_PHONE, a, best, phone_context_adjust(scan, a, 0.7f));
}

static void national_at(dc_pii_scan *scan, size_t i) {
    PCRE2_SIZE *ov;
    if (!dc_pii_match(scan, scan->sc->rx[DC_RA_PHONE_NATIONAL], i, scan->n, &ov)) return;
    char d[64];
    size_t a = ov[0], b = ov[1];
    size_t n = digits_of(scan->s, a, b, d);
    bool intl_prefix = n >= 2 && d[0] == '0' && d[1] == '0';
    if (intl_prefix ? (n < 11 || n > 17) : (n < 9 || n > 12)) return;
    float score = n >= 10 ? 0.55f : 0.45f;
    dc_pii_add(scan, DC_PII_CAT_PHONE, a, b, phone_context_adjust(scan, a, score));
}

static void ipv4_at(dc_pii_scan *scan, size_t i) {
    PCRE2_SIZE *ov;
    if (!dc_pii_match(scan, scan->sc->rx[DC_RA_IPV4], i, scan->n, &ov)) return;
    size_t a = ov[0], b = ov[1];
    if (context_before(scan, a, ip_negative)) return;
    dc_pii_add(scan, DC_PII_CAT_IP_ADDRESS, a, b, 0.85f);
}

/* IBAN from its country code at p: the registry length of alphanumerics, separators (one space
 * or hyphen) allowed after every fourth character, then mod 97. */
static void iban_at(dc_pii_scan *scan, size_t p) {
    const char *s = scan->s;
    char c0 = (char)(U(s, p) & ~0x20), c1 = (char)(U(s, p + 1) & ~0x20);
    int len = dc_pii_iban_length(c0, c1);
    if (!len) return;
    char buf[40];
    int k = 0;
    size_t i = p;
    while (i < scan->n && k < len) {
        unsigned char c = U(s, i);
        if (is_alnum(c)) {
            buf[k++] = (char)(is_alpha(c) ? (c & ~0x20) : c);
            i++;
        } else if ((c == ' ' || c == '-') && k % 4 == 0 && k > 0 && i + 1 < scan->n &&
                   is_alnum(U(s, i + 1))) {
            i++;
        } else {
            break;
        }
    }
    scan->steps += i - p;
    if (k != len || (i < scan->n && is_alnum(U(s, i)))) return;
    for (int q = 2; q < 4; q++)
        if (!is_digit((unsigned char)buf[q])) return;
    if (!dc_pii_iban_mod97(buf, (size_t)len)) return;
    dc_pii_add(scan, DC_PII_CAT_IBAN, p, i, 1.0f);
}

static size_t alnum_run(dc_pii_scan *scan, size_t i, size_t max) {
    size_t j = i;
    while (j < scan->n && j - i <= max && is_alnum(U(scan->s, j))) j++;
    scan->steps += j - i;
    return j - i;
}

static void crypto_at(dc_pii_scan *scan, size_t i) {
    const char *s = scan->s;
    unsigned char c = U(s, i);
    bool boundary = i == 0 || !is_alnum(U(s, i - 1));
    if (boundary && (c == '1' || c == '3')) {
        size_t len = alnum_run(scan, i, 36);
        if (len >= 26 && len <= 35 && dc_pii_base58check(s + i, len))
            dc_pii_add(scan, DC_PII_CAT_CRYPTO, i, i + len, 1.0f);
    }
    if (c == '1' && i >= 2 && (i == 2 || !is_alnum(U(s, i - 3)))) {
        char h0 = (char)lower(U(s, i - 2)), h1 = (char)lower(U(s, i - 1));
        if ((h0 == 'b' && h1 == 'c') || (h0 == 't' && h1 == 'b')) {
            size_t len = alnum_run(scan, i - 2, 91);
            if (len >= 14 && len <= 90 && dc_pii_bech32_address(s + i - 2, len))
                dc_pii_add(scan, DC_PII_CAT_CRYPTO, i - 2, i - 2 + len, 1.0f);
        }
    }
    if (boundary && c == '0' && i + 42 <= scan->n && (s[i + 1] | 0x20) == 'x') {
        size_t k = i + 2;
        while (k < i + 42 && is_hex(U(s, k))) k++;
        scan->steps += k - i;
        if (k == i + 42 && (k == scan->n || !is_alnum(U(s, k)))) {
            int eip = dc_pii_eip55(s + i + 2);
            if (eip >= 0) dc_pii_add(scan, DC_PII_CAT_CRYPTO, i, k, eip ? 1.0f : 0.7f);
        }
    }
}

/* The numeric shapes worth trying where a digit group (or '+' / '(') starts. */
static void numeric_at(dc_pii_scan *scan, size_t i) {
    const char *s = scan->s;
    size_t n = scan->n;
    unsigned char c = U(s, i);
    /* A look ahead over the characters numbers are written with decides which shapes can fit. */
    size_t digits = 0, dots = 0, k = i;
    while (k < n && k - i < 40) {
        unsigned char x = U(s, k);
        if (is_digit(x)) digits++;
        else if (x == '.') dots++;
        else if (!(x == ' ' || x == '-' || x == '(' || x == ')' || x == '/' || x == '+')) break;
        k++;
    }
    scan->steps += k - i;
    if (c == '+') {
        if (digits >= 8) intl_at(scan, i);
        return;
    }
    if (c == '(') {
        if (digits >= 10) nanp_at(scan, i);
        if (digits >= 9 && i + 1 < n && s[i + 1] == '0') national_at(scan, i);
        return;
    }
    if (digits >= 12) card_at(scan, i);
    if (digits >= 9) ssn_at(scan, i);
    if (digits >= 10) nanp_at(scan, i);
    if (digits >= 9 && c == '0') national_at(scan, i);
    if (dots >= 3 && digits >= 4) ipv4_at(scan, i);
}

/* ---------------------------------------------------------------- IPv6 */

static void ipv6_at(dc_pii_scan *scan, size_t colon, size_t *resume) {
    const char *s = scan->s;
    size_t n = scan->n;
    if (colon < *resume) return;
    size_t j = colon;
    while (j > 0 && colon - j < 4 && is_hex(U(s, j - 1))) j--;
    if (j > 0) {
        unsigned char p = U(s, j - 1);
        if (is_word(p) || p == ':' || p == '.' || p == '-') return;
    }
    size_t e = j;
    while (e < n && e - j < 45 && (is_hex(U(s, e)) || s[e] == ':' || s[e] == '.')) e++;
    scan->steps += e - j;
    *resume = e;
    if (e < n && (is_word(U(s, e)) || s[e] == '-')) return;
    while (e > j && s[e - 1] == '.') e--;
    if (e > j + 1 && s[e - 1] == ':' && s[e - 2] != ':') e--;
    size_t len = e - j;
    if (len < 2 || len > 45) return;
    int colons = 0, digits = 0, groups = 0;
    bool dbl = false;
    for (size_t k = j; k < e; k++) {
        if (s[k] == ':') {
            colons++;
            if (k + 1 < e && s[k + 1] == ':') dbl = true;
        } else {
            if (is_digit(U(s, k))) digits++;
            if (k == j || s[k - 1] == ':') groups++;
        }
    }
    if (!dbl && colons < 7) return;
    if (!digits && groups < 3) return; /* "add::be" is more likely code than an address */
    char buf[64];
    memcpy(buf, s + j, len);
    buf[len] = '\0';
    struct in6_addr addr;
    if (inet_pton(AF_INET6, buf, &addr) != 1) return;
    size_t end = e;
    if (end + 1 < n && s[end] == '/' && is_digit(U(s, end + 1))) {
        size_t q = end + 1;
        while (q < n && q - end <= 3 && is_digit(U(s, q))) q++;
        end = q;
    }
    dc_pii_add(scan, DC_PII_CAT_IP_ADDRESS, j, end, 0.85f);
}

/* ---------------------------------------------------------------- secrets by assignment */

enum { KEY_NONE, KEY_PASSWORD, KEY_SECRET };

static bool in_list(const char *w, size_t n, const char *const *list) {
    for (const char *const *e = list; *e; e++)
        if ((*e)[0] == w[0] && strlen(*e) == n && memcmp(*e, w, n) == 0) return true;
    return false;
}

/* Classifies an identifier ("DB_PASSWORD", "apiKey", "X-Api-Token", "aws_secret_access_key")
 * by its words; *aws tells whether it names an AWS secret. */
static int key_kind(const char *id, size_t n, bool *aws) {
    static const char *const password_words[] = {"password", "passwd", "pwd", "pass", "passphrase",
                                                 "passcode", "pw", NULL};
    static const char *const secret_words[] = {"secret", "token", "apikey", "credential",
                                               "credentials", "creds", "auth", "authorization",
                                               "bearer", "pat", "secretkey", "accesskey",
                                               "privatekey", "signingkey", NULL};
    static const char *const key_qualifiers[] = {"api", "access", "secret", "private", "auth",
                                                 "client", "master", "encryption", "signing",
                                                 "app", "consumer", "license", "service",
                                                 "account", "subscription", "admin", "session",
                                                 NULL};
    static const char *const negative[] = {
        "public", "pub", "hash", "sha", "sha1", "sha256", "md5", "checksum", "digest", "etag",
        "commit", "cache", "sort", "partition", "primary", "foreign", "name", "type", "path",
        "file", "dir", "url", "uri", "endpoint", "length", "len", "size", "count", "max", "min",
        "expires", "expiry", "ttl", "timeout", "format", "prefix", "header", "field", "kind",
        "version", "index", "limit", "mode", "algorithm", "alg", "usage", "ref", "env", "var",
        "label", "hint", "policy", "enabled", "required", "tokens", "id", "ids", "strength",
        "placeholder", "input", "regex", "pattern", "rule", "rules", "salt", "column", "table",
        NULL};
    char words[16][24];
    size_t wl[16], nw = 0;
    char joined[96];
    size_t jl = 0;
    size_t k = 0;
    while (k < n && nw < 16) {
        while (k < n && !is_alnum(U(id, k))) k++;
        size_t st = k, len = 0;
        while (k < n && is_alnum(U(id, k))) {
            /* a camelCase boundary ends the word */
            if (k > st && id[k] >= 'A' && id[k] <= 'Z' && id[k - 1] >= 'a' && id[k - 1] <= 'z')
                break;
            if (len < sizeof words[0]) words[nw][len++] = (char)lower(U(id, k));
            if (jl < sizeof joined) joined[jl++] = (char)lower(U(id, k));
            k++;
        }
        if (len) wl[nw++] = len;
    }
    *aws = false;
    int kind = KEY_NONE;
    bool has_key = false, qualified = false;
    for (size_t w = 0; w < nw; w++) {
        if (in_list(words[w], wl[w], negative)) return KEY_NONE;
        if (in_list(words[w], wl[w], password_words)) kind = KEY_PASSWORD;
        else if (kind == KEY_NONE && in_list(words[w], wl[w], secret_words)) kind = KEY_SECRET;
        if (wl[w] == 3 && memcmp(words[w], "key", 3) == 0) has_key = true;
        if (wl[w] == 3 && memcmp(words[w], "aws", 3) == 0) *aws = true;
        if (in_list(words[w], wl[w], key_qualifiers)) qualified = true;
    }
    if (kind == KEY_NONE && has_key && (qualified || nw == 1)) kind = KEY_SECRET;
    if (kind == KEY_NONE) {
        /* glued words: "dbpassword", "myapikey" */
        static const char *const glued[] = {"password", "passwd", "apikey", "secretkey",
                                            "accesskey", "privatekey", "authtoken", NULL};
        for (const char *const *g = glued; *g; g++) {
            size_t gl = strlen(*g);
            for (size_t i = 0; i + gl <= jl; i++)
                if (memcmp(joined + i, *g, gl) == 0) kind = (*g)[0] == 'p' && (*g)[1] == 'a'
                                                                ? KEY_PASSWORD
                                                                : KEY_SECRET;
        }
    }
    return kind;
}

/* A value that stands for a secret rather than being one: variables, templates, calls,
 * masks, documentation words. */
static bool placeholder_value(const char *v, size_t n, bool quoted) {
    static const char *const words[] = {
        "null", "none", "nil", "true", "false", "undefined", "required", "optional", "string",
        "str", "int", "bool", "boolean", "env", "secret", "password", "passwd", "token", "yes",
        "no", "on", "off", "changeme", "example", "redacted", "hidden", "masked", "empty",
        "dummy", "placeholder", "value", "default", "unset", "todo", "tbd", "xxx", "na", "n/a",
        "bearer", "basic", "mypassword", "yourpassword", "your_password", "your-password",
        "secret_key", "api_key", "apikey", "access_token", "pass", "pw", "pwd", NULL};
    unsigned char c0 = U(v, 0);
    if (c0 == '$' || c0 == '%' || c0 == '{' || c0 == '<' || c0 == '[' || c0 == '(' ||
        c0 == '#' || c0 == '\\')
        return true;
    char low[64] = {0};
    size_t ln = n < sizeof low ? n : sizeof low;
    for (size_t i = 0; i < ln; i++) low[i] = (char)lower(U(v, i));
    if (n <= sizeof low && in_list(low, n, words)) return true;
    bool has_dot = false, ident = true, upper_ident = true, has_us = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = U(v, i);
        if (c == '(' || c == '<' || c == '>' || c == '{' || c == '}' || c == '[') return true;
        if (c == '.') has_dot = true;
        if (c == '_') has_us = true;
        if (!(is_alpha(c) || c == '_' || c == '.')) ident = false;
        if (!((c >= 'A' && c <= 'Z') || is_digit(c) || c == '_')) upper_ident = false;
    }
    /* Unquoted, these name a variable (os.environ, settings.SECRET_KEY, DB_PASSWORD); quoted,
     * they are literal strings. */
    if (!quoted && ident && has_dot) return true;
    if (!quoted && upper_ident && has_us) return true;
    for (size_t i = 0; i + 4 <= ln; i++) {
        if (memcmp(low + i, "xxxx", 4) == 0 || memcmp(low + i, "****", 4) == 0 ||
            memcmp(low + i, "....", 4) == 0 || memcmp(low + i, "your", 4) == 0)
            return true;
    }
    if (n >= 7 && (memcmp(low, "http://", 7) == 0 || (n >= 8 && memcmp(low, "https://", 8) == 0)))
        return true;
    return false;
}

/* Scores a value assigned to a password or secret key; 0 when it does not look like one. */
static float secret_value_score(dc_pii_scan *scan, int kind, const char *v, size_t n,
                                bool quoted) {
    if (n < 4 || placeholder_value(v, n, quoted)) return 0.0f;
    bool digit = false, up = false, low = false, other = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = U(v, i);
        if (is_digit(c)) digit = true;
        else if (c >= 'A' && c <= 'Z') up = true;
        else if (c >= 'a' && c <= 'z') low = true;
        else other = true;
    }
    scan->steps += n;
    if (kind == KEY_PASSWORD) {
        if (!up && !low && !other) return n >= 4 ? 0.7f : 0.0f; /* a PIN */
        if (!digit && !other) return n >= 5 ? 0.6f : 0.0f;     /* a word-like password */
        return 0.85f;
    }
    if (n < 8) return 0.0f;
    if (!up && !low) return 0.0f; /* counts, ports, timestamps */
    double h = dc_pii_entropy(v, n);
    bool mixed = digit && (up || low);
    if (h >= 3.5 && n >= 12 && mixed) return 0.8f;
    if (h >= 3.0 && mixed) return 0.6f;
    if (h >= 3.0 && n >= 20 && up && low) return 0.55f;
    return 0.35f;
}

static void assign_at(dc_pii_scan *scan, size_t p) {
    const char *s = scan->s;
    size_t n = scan->n;
    size_t oplen = 1;
    if (s[p] == ':') {
        if (p + 1 < n && (s[p + 1] == ':' || s[p + 1] == '/')) return; /* a::b, scheme:// */
        if (p > 0 && s[p - 1] == ':') return;
        if (p + 1 < n && s[p + 1] == '=') oplen = 2;
    } else {
        if (p > 0 && (s[p - 1] == '=' || s[p - 1] == '!' || s[p - 1] == '<' || s[p - 1] == '>' ||
                      s[p - 1] == ':'))
            return;
        if (p + 1 < n && s[p + 1] == '=') return;
        if (p + 1 < n && s[p + 1] == '>') oplen = 2;
    }
    /* the key: back over spaces, a closing bracket and quote, then the identifier */
    size_t k = p, lim = p > 72 ? p - 72 : 0;
    while (k > lim && (s[k - 1] == ' ' || s[k - 1] == '\t')) k--;
    if (k > lim && s[k - 1] == ']') k--;
    if (k > lim && (s[k - 1] == '"' || s[k - 1] == '\'')) k--;
    size_t ke = k;
    while (k > lim && (is_alnum(U(s, k - 1)) || s[k - 1] == '_' || s[k - 1] == '-' ||
                       s[k - 1] == '.'))
        k--;
    scan->steps += p - k;
    if (k == ke) return;
    bool aws = false;
    int kind = key_kind(s + k, ke - k, &aws);
    if (kind == KEY_NONE) return;
    /* the value */
    size_t v = p + oplen, vlim = v + 8;
    while (v < n && v < vlim && (s[v] == ' ' || s[v] == '\t')) v++;
    static const char *const schemes[] = {"bearer ", "basic ", "token ", NULL};
    for (const char *const *sch = schemes; *sch; sch++) {
        size_t sl = strlen(*sch);
        if (v + sl > n) continue;
        bool eq = true;
        for (size_t i = 0; i < sl && eq; i++) eq = lower(U(s, v + i)) == (unsigned char)(*sch)[i];
        if (eq) {
            v += sl;
            break;
        }
    }
    char quote = 0;
    if (v < n && (s[v] == '"' || s[v] == '\'' || s[v] == '`')) quote = s[v++];
    size_t e = v;
    if (quote) {
        while (e < n && e - v <= 300 && s[e] != quote && s[e] != '\n') e++;
        if (e >= n || s[e] != quote) return;
    } else {
        while (e < n && e - v <= 300 && !strchr(" \t\r\n\"'`,;&)]}>", s[e]) && s[e]) e++;
        while (e > v && s[e - 1] == '.') e--;
    }
    scan->steps += e - v;
    if (e - v > 300 || e == v) return;
    /* An AWS secret access key: 40 base64 characters assigned to an aws...secret key, or to a
     * "secret_key" in a block that names AWS just before ("provider \"aws\" { ... }"). */
    if (!aws && e - v == 40 && kind == KEY_SECRET) {
        size_t lo = k > 256 ? k - 256 : 0;
        for (size_t i = lo; i + 3 <= k && !aws; i++)
            aws = lower(U(s, i)) == 'a' && lower(U(s, i + 1)) == 'w' && lower(U(s, i + 2)) == 's' &&
                  (i == 0 || !is_alpha(U(s, i - 1))) && (i + 3 == k || !is_alpha(U(s, i + 3)));
        scan->steps += k - lo;
    }
    if (aws && e - v == 40) {
        bool b64 = true;
        for (size_t i = v; i < e && b64; i++)
            b64 = is_alnum(U(s, i)) || s[i] == '/' || s[i] == '+';
        if (b64) {
            dc_pii_add(scan, DC_PII_CAT_AWS_KEY, v, e, 0.9f);
            return;
        }
    }
    float score = secret_value_score(scan, kind, s + v, e - v, quote != 0);
    if (score > 0.0f) dc_pii_add(scan, DC_PII_CAT_SECRET, v, e, score);
}

/* ---------------------------------------------------------------- the trigger pass */

static void scan_triggers(dc_pii_scan *scan) {
    static const unsigned char trigger[256] = {
        ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,
        ['7'] = 1, ['8'] = 1, ['9'] = 1, ['@'] = 1, [':'] = 1, ['='] = 1, ['+'] = 1,
        ['('] = 1,
    };
    const char *s = scan->s;
    size_t n = scan->n, ipv6_resume = 0;
    for (size_t i = 0; i < n && !scan->err; i++) {
        while (i < n && !trigger[U(s, i)]) i++; /* the tight loop: most bytes trigger nothing */
        if (i == n) break;
        unsigned char c = U(s, i);
        switch (c) {
        case '@':
            email_at(scan, i);
            break;
        case ':':
            ipv6_at(scan, i, &ipv6_resume);
            assign_at(scan, i);
            break;
        case '=':
            assign_at(scan, i);
            break;
        case '+':
            if (i + 1 < n && is_digit(U(s, i + 1))) numeric_at(scan, i);
            break;
        case '(':
            if (i + 1 < n && is_digit(U(s, i + 1))) numeric_at(scan, i);
            break;
        default: /* a digit */
            if (i > 0 && is_digit(U(s, i - 1))) break;
            crypto_at(scan, i);
            if (i >= 2 && is_alpha(U(s, i - 1)) && is_alpha(U(s, i - 2)) &&
                (i == 2 || !is_alnum(U(s, i - 3))) && i + 1 < n && is_digit(U(s, i + 1)))
                iban_at(scan, i - 2);
            if (i > 0 && is_alpha(U(s, i - 1))) break;
            numeric_at(scan, i);
            break;
        }
    }
    scan->steps += n;
}

/* ---------------------------------------------------------------- full-text patterns */

/* Iterates matches of one pattern over the text, calling fn with each. */
typedef void (*match_fn)(dc_pii_scan *scan, const PCRE2_SIZE *ov);

static void each_match(dc_pii_scan *scan, int rx, match_fn fn) {
    size_t from = 0;
    PCRE2_SIZE *ov;
    while (from <= scan->n && dc_pii_match(scan, scan->sc->rx[rx], from, scan->n, &ov)) {
        size_t a = ov[0], b = ov[1];
        fn(scan, ov); /* may run other patterns: ov is stale afterwards */
        from = b > a ? b : a + 1;
    }
}

static void on_url_creds(dc_pii_scan *scan, const PCRE2_SIZE *ov) {
    size_t a = ov[2], b = ov[3];
    const char *colon = memchr(scan->s + a, ':', b - a);
    if (!colon) return;
    size_t pw = (size_t)(colon - scan->s) + 1;
    if (pw >= b || placeholder_value(scan->s + pw, b - pw, true)) return;
    dc_pii_add(scan, DC_PII_CAT_URL_CREDENTIALS, a, b, 0.95f);
}

static void on_aws(dc_pii_scan *scan, const PCRE2_SIZE *ov) {
    /* AWS's documentation key ends in EXAMPLE (AKIAIOSFODNN7EXAMPLE). */
    if (ov[1] - ov[0] >= 7 && memcmp(scan->s + ov[1] - 7, "EXAMPLE", 7) == 0) return;
    dc_pii_add(scan, DC_PII_CAT_AWS_KEY, ov[0], ov[1], 0.95f);
}

static void on_github(dc_pii_scan *scan, const PCRE2_SIZE *ov) {
    dc_pii_add(scan, DC_PII_CAT_GITHUB_TOKEN, ov[0], ov[1], 0.95f);
}

static void on_slack(dc_pii_scan *scan, const PCRE2_SIZE *ov) {
    bool digit = false;
    for (size_t i = ov[0] + 5; i < ov[1]; i++) digit = digit || is_digit(U(scan->s, i));
    dc_pii_add(scan, DC_PII_CAT_SLACK_TOKEN, ov[0], ov[1], digit ? 0.95f : 0.5f);
}

static void on_stripe(dc_pii_scan *scan, const PCRE2_SIZE *ov) {
    dc_pii_add(scan, DC_PII_CAT_STRIPE_KEY, ov[0], ov[1], 0.95f);
}

static bool contains(const char *s, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(s + i, needle, k) == 0) return true;
    return false;
}

static void on_sk(dc_pii_scan *scan, const PCRE2_SIZE *ov) {
    const char *s = scan->s + ov[0];
    size_t n = ov[1] - ov[0];
    if (n > 7 && memcmp(s, "sk-ant-", 7) == 0) {
        dc_pii_add(scan, DC_PII_CAT_ANTHROPIC_KEY, ov[0], ov[1], 0.97f);
        return;
    }
    const char *body = s + 3;
    size_t bl = n - 3;
    float score = 0.0f;
    if (contains(body, bl, "T3BlbkFJ")) { /* base64 of "OpenAI" */
        score = 0.97f;
    } else if ((bl > 5 && memcmp(body, "proj-", 5) == 0) ||
               (bl > 8 && memcmp(body, "svcacct-", 8) == 0) ||
               (bl > 6 && memcmp(body, "admin-", 6) == 0)) {
        score = bl >= 40 ? 0.9f : 0.0f;
    } else {
        bool digit = false, up = false, low = false;
        for (size_t i = 0; i < bl; i++) {
            unsigned char c = U(body, i);
            digit = digit || is_digit(c);
            up = up || (c >= 'A' && c <= 'Z');
            low = low || (c >= 'a' && c <= 'z');
        }
        if (digit && up && low && dc_pii_entropy(body, bl) >= 3.5) score = bl == 48 ? 0.9f : 0.6f;
    }
    if (score > 0.0f) dc_pii_add(scan, DC_PII_CAT_OPENAI_KEY, ov[0], ov[1], score);
}

static void on_jwt(dc_pii_scan *scan, const PCRE2_SIZE *ov) {
    size_t n = ov[1] - ov[0];
    scan->steps += n;
    bool valid = dc_pii_jwt_valid(scan->s + ov[0], n);
    dc_pii_add(scan, DC_PII_CAT_JWT, ov[0], ov[1], valid ? 0.97f : 0.5f);
}

static void on_gcp(dc_pii_scan *scan, const PCRE2_SIZE *ov) {
    dc_pii_add(scan, DC_PII_CAT_SECRET, ov[0], ov[1], 0.9f);
}

/* First occurrence of needle at or after `from`, remembered so that repeated questions cost
 * one pass over the text in all (SIZE_MAX: none). */
typedef struct next_memo {
    size_t asked, at; /* "the first occurrence at or after `asked` is `at`" */
    bool valid;
} next_memo;

static size_t memo_find(dc_pii_scan *scan, next_memo *m, size_t from, const char *needle) {
    if (m->valid && from >= m->asked && (m->at == SIZE_MAX || m->at >= from)) return m->at;
    size_t nl = strlen(needle);
    const char *hit = from < scan->n ? find_bytes(scan->s + from, scan->n - from, needle, nl) : NULL;
    size_t at = hit ? (size_t)(hit - scan->s) : SIZE_MAX;
    scan->steps += (hit ? at : scan->n) - from;
    m->asked = from;
    m->at = at;
    m->valid = true;
    return at;
}

static bool is_b64(unsigned char c) {
    return is_alnum(c) || c == '+' || c == '/' || c == '=';
}

/* The END line that closes a block: "-----END <TYPE> PRIVATE KEY( BLOCK)?-----" (four or five
 * dashes, SSH2 puts spaces inside). Returns the byte after its dashes, or SIZE_MAX. */
static size_t pem_end_marker(const char *s, size_t n, size_t at) {
    size_t q = at + 4, lim = at + 64 < n ? at + 64 : n;
    while (q < lim && ((s[q] >= 'A' && s[q] <= 'Z') || is_digit((unsigned char)s[q]) || s[q] == ' '))
        q++;
    if (q - at < 15 || memcmp(s + q - 11, "PRIVATE KEY", 11) != 0) {
        if (!(q - at >= 21 && memcmp(s + q - 17, "PRIVATE KEY BLOCK", 17) == 0)) return SIZE_MAX;
    }
    if (q >= n || s[q] != '-') return SIZE_MAX;
    while (q < n && s[q] == '-') q++;
    return q;
}

static void on_pem(dc_pii_scan *scan, const PCRE2_SIZE *ov, next_memo *end_memo) {
    const char *s = scan->s;
    size_t a = ov[0], b = ov[1], n = scan->n;
    size_t end = SIZE_MAX, body_end = b;
    /* The first END marker after the BEGIN line; base64 never holds "END ". */
    size_t e = memo_find(scan, end_memo, b, "END ");
    while (e != SIZE_MAX && end == SIZE_MAX) {
        size_t t = e > 0 && s[e - 1] == '-' ? pem_end_marker(s, n, e) : SIZE_MAX;
        if (t == SIZE_MAX && e > 1 && s[e - 1] == ' ' && s[e - 2] == '-') t = pem_end_marker(s, n, e);
        if (t != SIZE_MAX) {
            body_end = e;
            end = t;
        } else {
            e = memo_find(scan, end_memo, e + 1, "END ");
        }
    }
    if (end == SIZE_MAX) {
        /* Truncated block: take the base64 lines that follow. */
        size_t q = b;
        while (q < n && q - b < 65536 && (is_b64(U(s, q)) || s[q] == '\n' || s[q] == '\r' ||
                                          s[q] == ' ' || s[q] == ':' || s[q] == ',' || s[q] == '\\'))
            q++;
        end = body_end = q;
    }
    size_t body = 0;
    for (size_t q = b; q < body_end; q++) body += is_b64(U(s, q));
    scan->steps += end - a;
    dc_pii_add(scan, DC_PII_CAT_PRIVATE_KEY, a, end, body >= 64 ? 0.99f : 0.4f);
}

/* A PuTTY key file runs from its header to the "Private-MAC:" line (or, cut short, to the next
 * blank line); returns where it ends so the search resumes after it. */
static size_t on_putty(dc_pii_scan *scan, const PCRE2_SIZE *ov, next_memo *mac_memo,
                       next_memo *blank_memo) {
    size_t a = ov[0], n = scan->n;
    size_t mac = memo_find(scan, mac_memo, ov[1], "Private-MAC:");
    size_t end;
    if (mac != SIZE_MAX && mac - a < 16384) {
        end = mac;
        while (end < n && end - mac < 256 && scan->s[end] != '\n' && scan->s[end] != '\r') end++;
    } else {
        end = memo_find(scan, blank_memo, ov[1], "\n\n");
        if (end == SIZE_MAX || end - a > 16384) end = a + 16384 < n ? a + 16384 : n;
    }
    dc_pii_add(scan, DC_PII_CAT_PRIVATE_KEY, a, end, 0.95f);
    return end;
}

static int month_of(const char *w, size_t n) {
    char m[4] = {0};
    size_t k = 0;
    for (size_t i = 0; i < n && k < 3; i++) m[k++] = (char)lower(U(w, i));
    if (k < 3) return 0;
    static const struct {
        char p[4];
        int month;
    } table[] = {{"jan", 1},  {"ene", 1},  {"gen", 1},  {"feb", 2},  {"f\xc3\xa9", 2},
                 {"fev", 2},  {"mar", 3},  {"m\xc3\xa4", 3}, {"apr", 4},  {"avr", 4},
                 {"abr", 4},  {"may", 5},  {"mai", 5},  {"mag", 5},  {"jun", 6},
                 {"giu", 6},  {"jul", 7},  {"lug", 7},  {"aug", 8},  {"ao\xc3", 8},
                 {"ago", 8},  {"sep", 9},  {"set", 9},  {"oct", 10}, {"okt", 10},
                 {"ott", 10}, {"out", 10}, {"nov", 11}, {"dec", 12}, {"d\xc3\xa9", 12},
                 {"dez", 12}, {"dic", 12}};
    if (memcmp(m, "jui", 3) == 0) return n >= 4 && lower(U(w, 3)) == 'n' ? 6 : 7; /* juin, juil */
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (memcmp(m, table[i].p, 3) == 0) return table[i].month;
    return 0;
}

static int num(const char *s, const PCRE2_SIZE *ov, int g) {
    size_t a = ov[2 * g], b = ov[2 * g + 1];
    if (a == PCRE2_UNSET) return -1;
    int v = 0;
    for (size_t i = a; i < b; i++) v = v * 10 + (s[i] - '0');
    return v;
}

static bool group_set(const PCRE2_SIZE *ov, int g) {
    return ov[2 * g] != PCRE2_UNSET;
}

static int full_year(int y) {
    return y < 100 ? (y <= 30 ? 2000 + y : 1900 + y) : y;
}

static bool date_from_match(const char *s, const PCRE2_SIZE *ov) {
    if (group_set(ov, 1)) return dc_pii_date_valid(num(s, ov, 1), num(s, ov, 2), num(s, ov, 3));
    if (group_set(ov, 4)) {
        int a = num(s, ov, 4), b = num(s, ov, 5), y = full_year(num(s, ov, 6));
        return dc_pii_date_valid(y, a, b) || dc_pii_date_valid(y, b, a); /* US or day-first */
    }
    if (group_set(ov, 7)) {
        int m = month_of(s + ov[14], ov[15] - ov[14]);
        return dc_pii_date_valid(num(s, ov, 9), m, num(s, ov, 8));
    }
    if (group_set(ov, 10)) {
        int m = month_of(s + ov[22], ov[23] - ov[22]);
        return dc_pii_date_valid(num(s, ov, 12), m, num(s, ov, 10));
    }
    if (group_set(ov, 13)) return dc_pii_date_valid(num(s, ov, 13), num(s, ov, 14), num(s, ov, 15));
    return false;
}

/* Bytes between a context word and the date: room for "on", "am", ":", "(MM/DD/YYYY):", and no
 * digits ("born in 2019 and reached 3.12 on ..." is not a birth date). */
#define DOB_GAP 24

static void on_dob_context(dc_pii_scan *scan, const PCRE2_SIZE *ov) {
    size_t from = ov[1];
    size_t limit = from + DOB_GAP + 48 < scan->n ? from + DOB_GAP + 48 : scan->n;
    PCRE2_SIZE *dv;
    if (!dc_pii_match(scan, scan->sc->rx[DC_RX_DATE], from, limit, &dv)) return;
    scan->steps += limit - from;
    size_t a = dv[0], b = dv[1];
    if (a > from + DOB_GAP) return;
    for (size_t i = from; i < a; i++)
        if (is_digit(U(scan->s, i)) || scan->s[i] == '\n') return;
    if (!date_from_match(scan->s, dv)) return;
    dc_pii_add(scan, DC_PII_CAT_DATE_OF_BIRTH, a, b, 0.9f);
}

static void on_password_is(dc_pii_scan *scan, const PCRE2_SIZE *ov) {
    size_t a = ov[2], b = ov[3];
    while (b > a && (scan->s[b - 1] == '.' || scan->s[b - 1] == ',')) b--;
    float score = secret_value_score(scan, KEY_PASSWORD, scan->s + a, b - a, true);
    if (score > 0.0f) dc_pii_add(scan, DC_PII_CAT_SECRET, a, b, score);
}

static void on_entropy(dc_pii_scan *scan, const PCRE2_SIZE *ov) {
    const char *s = scan->s + ov[0];
    size_t n = ov[1] - ov[0];
    bool digit = false, up = false, low = false, hex = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = U(s, i);
        digit = digit || is_digit(c);
        up = up || (c >= 'A' && c <= 'Z');
        low = low || (c >= 'a' && c <= 'z');
        hex = hex && (is_hex(c) || c == '-');
    }
    scan->steps += n;
    if (hex || !(digit && up && low)) return; /* hashes, UUIDs, words */
    /* our own keyed-hash tags, <EMAIL_3fa2c1d94b0e>, are not secrets */
    if (ov[0] > 0 && scan->s[ov[0] - 1] == '<' && ov[1] < scan->n && scan->s[ov[1]] == '>') return;
    if (dc_pii_entropy(s, n) < 4.0) return;
    dc_pii_add(scan, DC_PII_CAT_SECRET, ov[0], ov[1], 0.35f);
}

static void slack_hooks(dc_pii_scan *scan) {
    static const char needle[] = "hooks.slack.com/";
    size_t from = 0;
    for (;;) {
        const char *hit = from < scan->n ? find_bytes(scan->s + from, scan->n - from, needle,
                                                      sizeof needle - 1)
                                         : NULL;
        size_t at = hit ? (size_t)(hit - scan->s) : scan->n;
        scan->steps += at - from;
        if (!hit) return;
        PCRE2_SIZE *ov;
        if (dc_pii_match(scan, scan->sc->rx[DC_RA_SLACK_HOOK], at, scan->n, &ov)) {
            size_t a = at;
            if (a >= 8 && memcmp(scan->s + a - 8, "https://", 8) == 0) a -= 8;
            dc_pii_add(scan, DC_PII_CAT_SLACK_TOKEN, a, ov[1], 0.95f);
            from = ov[1];
        } else {
            from = at + 1;
        }
        if (scan->err) return;
    }
}

static void custom_patterns(dc_pii_scan *scan) {
    const dc_scrubber *sc = scan->sc;
    for (size_t k = 0; k < sc->ncustom && !scan->err; k++) {
        size_t from = 0;
        PCRE2_SIZE *ov;
        while (from <= scan->n && dc_pii_match(scan, sc->custom[k], from, scan->n, &ov)) {
            size_t a = ov[0], b = ov[1];
            if (b > a) {
                size_t before = scan->ncands;
                dc_pii_add(scan, DC_PII_CAT_CUSTOM, a, b, 1.0f);
                if (scan->ncands > before) scan->cands[before].custom = (uint8_t)k;
                from = b;
            } else {
                from = a + 1; /* step over one whole UTF-8 character */
                while (from < scan->n && (U(scan->s, from) & 0xC0) == 0x80) from++;
            }
        }
    }
}

void dc_pii_recognize(dc_pii_scan *scan) {
    const dc_scrubber *sc = scan->sc;
    scan_triggers(scan);
    each_match(scan, DC_RX_URL_CREDS, on_url_creds);
    each_match(scan, DC_RX_AWS, on_aws);
    each_match(scan, DC_RX_GITHUB, on_github);
    each_match(scan, DC_RX_SLACK, on_slack);
    each_match(scan, DC_RX_STRIPE, on_stripe);
    each_match(scan, DC_RX_SK, on_sk);
    each_match(scan, DC_RX_JWT, on_jwt);
    each_match(scan, DC_RX_GCP, on_gcp);
    slack_hooks(scan);
    {
        next_memo end_memo = {0, 0, false};
        size_t from = 0;
        PCRE2_SIZE *ov;
        while (dc_pii_match(scan, sc->rx[DC_RX_PEM], from, scan->n, &ov)) {
            size_t before = scan->ncands, b = ov[1];
            on_pem(scan, ov, &end_memo);
            /* the block's own lines are not searched again */
            from = scan->ncands > before ? scan->cands[before].end : b;
            if (from < b) from = b;
        }
    }
    {
        next_memo mac_memo = {0, 0, false}, blank_memo = {0, 0, false};
        size_t from = 0;
        PCRE2_SIZE *ov;
        while (dc_pii_match(scan, sc->rx[DC_RX_PUTTY], from, scan->n, &ov)) {
            size_t b = ov[1];
            from = on_putty(scan, ov, &mac_memo, &blank_memo);
            if (from < b) from = b;
        }
    }
    each_match(scan, DC_RX_DOB_CONTEXT, on_dob_context);
    each_match(scan, DC_RX_PASSWORD_IS, on_password_is);
    if (sc->sensitivity == DC_PII_STRICT) each_match(scan, DC_RX_ENTROPY, on_entropy);
    custom_patterns(scan);
}

/* The E9 item memory: generation from the seed and the versioned, checksummed file (seed L32). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/bytes.h"
#include "core/error.h"
#include "models/custom.h"
#include "models/hdc.h"

#define HV_BYTES (DC_HV_WORDS * 8u)

static uint64_t *symbol_slot(const dc_hdc_memory *m, uint32_t s) {
    return m->base2 + (size_t)s * 2 * DC_HV_WORDS;
}

/* Stores v twice in a row (see dc_hdc_memory.base2). */
static void store_doubled(uint64_t *dst, const dc_hv *v) {
    memcpy(dst, v->w, HV_BYTES);
    memcpy(dst + DC_HV_WORDS, v->w, HV_BYTES);
}

static dc_status memory_alloc(uint64_t seed, uint32_t ngram, uint32_t symbols,
                              dc_hdc_memory **out) {
    dc_hdc_memory *m = calloc(1, sizeof *m);
    /* calloc(0) may return NULL; keep one slot so base2 is never NULL */
    size_t words = (size_t)(symbols ? symbols : 1) * 2 * DC_HV_WORDS;
    uint64_t *base = m ? calloc(words, sizeof *base) : NULL;
    if (!m || !base) {
        free(m);
        free(base);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "HDC item memory: %zu bytes for %u symbols", words * 8,
                       (unsigned)symbols);
    }
    m->seed = seed;
    m->ngram = ngram;
    m->symbols = symbols;
    m->base2 = base;
    *out = m;
    return DC_OK;
}

static dc_status check_shape(uint32_t ngram, uint32_t symbols, const char *what) {
    if (ngram < 1 || ngram > DC_HDC_MAX_NGRAM)
        return dc_fail(DC_ERR_CONFIG, "%s: ngram = %u; expected 1 .. %u", what, (unsigned)ngram,
                       DC_HDC_MAX_NGRAM);
    if (symbols > DC_HDC_MAX_SYMBOLS)
        return dc_fail(DC_ERR_CONFIG, "%s: symbols = %u; at most %u (every code point)", what,
                       (unsigned)symbols, DC_HDC_MAX_SYMBOLS);
    return DC_OK;
}

dc_status dc_hdc_memory_generate(uint64_t seed, uint32_t ngram, uint32_t symbols,
                                 dc_hdc_memory **out) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "HDC memory generate: NULL output");
    *out = NULL;
    dc_status st = check_shape(ngram, symbols, "HDC item memory");
    if (st != DC_OK) return st;
    dc_hdc_memory *m = NULL;
    if ((st = memory_alloc(seed, ngram, symbols, &m)) != DC_OK) return st;
    for (uint32_t j = 0; j < ngram; j++) m->shift[j] = 64 * (ngram - 1 - j);
    dc_hv_random(&m->tie, dc_hdc_key(seed, DC_HDC_KEY_TIE, 0));
    dc_hv_random(&m->sign, dc_hdc_key(seed, DC_HDC_KEY_SIGN, 0));
    dc_hv v;
    for (uint32_t s = 0; s < symbols; s++) {
        dc_hv_random(&v, dc_hdc_key(seed, DC_HDC_KEY_SYMBOL, s));
        store_doubled(symbol_slot(m, s), &v);
    }
    *out = m;
    return DC_OK;
}

void dc_hdc_memory_free(dc_hdc_memory *m) {
    if (!m) return;
    free(m->base2);
    free(m);
}

size_t dc_hdc_memory_bytes(const dc_hdc_memory *m) {
    return m ? sizeof *m + (size_t)m->symbols * 2 * HV_BYTES : 0;
}

void dc_hdc_memory_symbol(const dc_hdc_memory *m, uint32_t cp, dc_hv *out) {
    if (cp < m->symbols)
        memcpy(out->w, symbol_slot(m, cp), HV_BYTES);
    else
        dc_hv_random(out, dc_hdc_key(m->seed, DC_HDC_KEY_SYMBOL, cp));
}

/* ---- file format ---- */

static uint64_t payload_size(uint32_t ngram, uint32_t symbols) {
    return (uint64_t)ngram * 4 + (2 + (uint64_t)symbols) * HV_BYTES;
}

size_t dc_hdc_memory_encoded_size(const dc_hdc_memory *m) {
    return DC_HDC_MEMORY_HEADER + (size_t)payload_size(m->ngram, m->symbols);
}

static uint8_t *put_hv(uint8_t *p, const uint64_t *w) {
    for (int i = 0; i < DC_HV_WORDS; i++, p += 8) dc_put_u64le(p, w[i]);
    return p;
}

static const uint8_t *get_hv(const uint8_t *p, uint64_t *w) {
    for (int i = 0; i < DC_HV_WORDS; i++, p += 8) w[i] = dc_get_u64le(p);
    return p;
}

dc_status dc_hdc_memory_encode(const dc_hdc_memory *m, uint8_t *buf, size_t cap, size_t *written) {
    if (!m || !buf) return dc_fail(DC_ERR_INVALID_ARGUMENT, "HDC memory encode: NULL argument");
    size_t total = dc_hdc_memory_encoded_size(m);
    if (cap < total)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "HDC memory encode: buffer of %zu bytes; need %zu",
                       cap, total);
    memset(buf, 0, DC_HDC_MEMORY_HEADER);
    memcpy(buf, DC_HDC_MEMORY_MAGIC, 4);
    dc_put_u32le(buf + 4, DC_HDC_MEMORY_VERSION);
    dc_put_u64le(buf + 8, m->seed);
    dc_put_u32le(buf + 16, DC_HV_BITS);
    dc_put_u32le(buf + 20, m->symbols);
    dc_put_u32le(buf + 24, m->ngram);
    dc_put_u64le(buf + 40, payload_size(m->ngram, m->symbols));
    uint8_t *p = buf + DC_HDC_MEMORY_HEADER;
    for (uint32_t j = 0; j < m->ngram; j++, p += 4) dc_put_u32le(p, m->shift[j]);
    p = put_hv(p, m->tie.w);
    p = put_hv(p, m->sign.w);
    for (uint32_t s = 0; s < m->symbols; s++) p = put_hv(p, symbol_slot(m, s));
    dc_put_u64le(buf + 32, XXH3_64bits(buf, total)); /* computed with the field still zero */
    if (written) *written = total;
    return DC_OK;
}

static bool all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

dc_status dc_hdc_memory_decode(const uint8_t *buf, size_t len, const char *what,
                               dc_hdc_memory **out) {
    if (!out || (!buf && len)) return dc_fail(DC_ERR_INVALID_ARGUMENT, "HDC memory decode: NULL");
    *out = NULL;
    if (!what) what = "HDC item memory";
    const dc_status bad = DC_ERR_CHECKPOINT_CORRUPTED;
    if (len < DC_HDC_MEMORY_HEADER)
        return dc_fail(bad, "%s: %zu bytes is shorter than the %u-byte header", what, len,
                       DC_HDC_MEMORY_HEADER);
    if (memcmp(buf, DC_HDC_MEMORY_MAGIC, 4) != 0)
        return dc_fail(bad, "%s: bad magic at byte 0 (not an HDC item memory file)", what);
    uint32_t version = dc_get_u32le(buf + 4);
    if (version != DC_HDC_MEMORY_VERSION)
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT, "%s: format version %u; this build reads %u",
                       what, (unsigned)version, DC_HDC_MEMORY_VERSION);
    uint64_t seed = dc_get_u64le(buf + 8);
    uint32_t bits = dc_get_u32le(buf + 16), symbols = dc_get_u32le(buf + 20);
    uint32_t ngram = dc_get_u32le(buf + 24), flags = dc_get_u32le(buf + 28);
    uint64_t checksum = dc_get_u64le(buf + 32), payload = dc_get_u64le(buf + 40);
    if (bits != DC_HV_BITS)
        return dc_fail(bad, "%s: dimension %u bits (byte 16); expected %u", what, (unsigned)bits,
                       DC_HV_BITS);
    if (ngram < 1 || ngram > DC_HDC_MAX_NGRAM)
        return dc_fail(bad, "%s: ngram %u (byte 24); expected 1 .. %u", what, (unsigned)ngram,
                       DC_HDC_MAX_NGRAM);
    if (symbols > DC_HDC_MAX_SYMBOLS)
        return dc_fail(bad, "%s: %u symbols (byte 20); at most %u", what, (unsigned)symbols,
                       DC_HDC_MAX_SYMBOLS);
    if (flags != 0 || !all_zero(buf + 48, 16))
        return dc_fail(bad, "%s: reserved header bytes (28..31, 48..63) are not zero", what);
    uint64_t want = payload_size(ngram, symbols);
    if (payload != want)
        return dc_fail(bad, "%s: payload length %llu (byte 40); %u symbols and ngram %u need %llu",
                       what, (unsigned long long)payload, (unsigned)symbols, (unsigned)ngram,
                       (unsigned long long)want);
    if (len - DC_HDC_MEMORY_HEADER != want)
        return dc_fail(bad, "%s: %zu bytes; header promises %llu (truncated or padded file)", what,
                       len, (unsigned long long)(want + DC_HDC_MEMORY_HEADER));
    /* Checksum over the file with its checksum field read as zero. */
    XXH3_state_t *hs = XXH3_createState();
    if (!hs) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: checksum state", what);
    static const uint8_t zero8[8];
    XXH3_64bits_reset(hs);
    XXH3_64bits_update(hs, buf, 32);
    XXH3_64bits_update(hs, zero8, 8);
    XXH3_64bits_update(hs, buf + 40, len - 40);
    uint64_t got = XXH3_64bits_digest(hs);
    XXH3_freeState(hs);
    if (got != checksum)
        return dc_fail(bad,
                       "%s: checksum mismatch (stored %016llx, computed %016llx): the file is "
                       "corrupted",
                       what, (unsigned long long)checksum, (unsigned long long)got);
    const uint8_t *p = buf + DC_HDC_MEMORY_HEADER;
    uint32_t shift[DC_HDC_MAX_NGRAM];
    for (uint32_t j = 0; j < ngram; j++, p += 4) {
        shift[j] = dc_get_u32le(p);
        if (shift[j] % 64 != 0 || shift[j] >= DC_HV_BITS)
            return dc_fail(bad, "%s: slot %u shift %u (byte %zu) is not a multiple of 64 below %u",
                           what, (unsigned)j, (unsigned)shift[j], (size_t)(p - buf), DC_HV_BITS);
    }
    dc_hdc_memory *m = NULL;
    dc_status st = memory_alloc(seed, ngram, symbols, &m);
    if (st != DC_OK) return st;
    memcpy(m->shift, shift, ngram * sizeof shift[0]);
    p = get_hv(p, m->tie.w);
    p = get_hv(p, m->sign.w);
    dc_hv v;
    for (uint32_t s = 0; s < symbols; s++) {
        p = get_hv(p, v.w);
        store_doubled(symbol_slot(m, s), &v);
    }
    *out = m;
    return DC_OK;
}

dc_status dc_hdc_memory_save(const dc_hdc_memory *m, const char *path) {
    if (!m || !path) return dc_fail(DC_ERR_INVALID_ARGUMENT, "HDC memory save: NULL argument");
    size_t total = dc_hdc_memory_encoded_size(m);
    uint8_t *buf = malloc(total);
    if (!buf) return dc_fail(DC_ERR_OUT_OF_MEMORY, "HDC memory save: %zu bytes", total);
    dc_status st = dc_hdc_memory_encode(m, buf, total, NULL);
    size_t plen = strlen(path);
    char *tmp = st == DC_OK ? malloc(plen + 8) : NULL;
    if (st == DC_OK && !tmp) st = dc_fail(DC_ERR_OUT_OF_MEMORY, "HDC memory save: path");
    int fd = -1;
    if (st == DC_OK) {
        memcpy(tmp, path, plen);
        memcpy(tmp + plen, ".XXXXXX", 8);
        fd = mkstemp(tmp);
        if (fd < 0)
            st = dc_fail(DC_ERR_IO, "cannot create a temporary file for %s: %s", path,
                         strerror(errno));
    }
    if (st == DC_OK) {
        FILE *f = fdopen(fd, "wb");
        bool ok = f && fwrite(buf, 1, total, f) == total && fflush(f) == 0 && fsync(fd) == 0;
        int err = errno;
        if (f ? fclose(f) != 0 : close(fd) != 0) ok = false;
        if (!ok)
            st = dc_fail(DC_ERR_IO, "cannot write %s: %s", tmp, strerror(err));
        else if (rename(tmp, path) != 0)
            st = dc_fail(DC_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        if (st != DC_OK) unlink(tmp);
    }
    free(tmp);
    free(buf);
    return st;
}

dc_status dc_hdc_memory_load(const char *path, dc_hdc_memory **out) {
    if (!path || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "HDC memory load: NULL argument");
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int err = errno;
        return dc_fail(err == ENOENT ? DC_ERR_NOT_FOUND : DC_ERR_IO, "cannot open %s: %s", path,
                       strerror(err));
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        int err = errno;
        fclose(f);
        return dc_fail(DC_ERR_IO, "cannot stat %s: %s", path, strerror(err));
    }
    if (!S_ISREG(sb.st_mode)) {
        fclose(f);
        return dc_fail(DC_ERR_IO, "%s is not a regular file (a folder?)", path);
    }
    long long size = (long long)sb.st_size;
    /* The largest valid file (every code point) is about 1.4 GB; refuse more before reading. */
    uint64_t max = DC_HDC_MEMORY_HEADER + payload_size(DC_HDC_MAX_NGRAM, DC_HDC_MAX_SYMBOLS);
    if ((uint64_t)size > max) {
        fclose(f);
        return dc_fail(DC_ERR_CHECKPOINT_CORRUPTED, "%s: %lld bytes is larger than any item memory",
                       path, size);
    }
    uint8_t *buf = malloc(size > 0 ? (size_t)size : 1);
    if (!buf) {
        fclose(f);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s: %lld bytes", path, size);
    }
    size_t got = fread(buf, 1, (size_t)size, f);
    int err = errno;
    fclose(f);
    dc_status st;
    if (got != (size_t)size)
        st = dc_fail(DC_ERR_IO, "cannot read %s: %s", path, strerror(err));
    else
        st = dc_hdc_memory_decode(buf, got, path, out);
    free(buf);
    return st;
}

/* libFuzzer target: the PII scrubber. The first byte picks the mode and sensitivity, the rest
 * is the text. Whatever the bytes: no crash or leak; invalid UTF-8 is refused, valid text is
 * scrubbed; detections are sorted, disjoint, on character boundaries; everything outside them
 * is copied unchanged; the output is valid UTF-8; mode off returns the input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "dodeca/dodeca.h"
#include "dodeca/privacy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static dc_scrubber *scrubbers[5][3];

static const dc_scrubber *get(int mode, int sens) {
    if (!scrubbers[mode][sens]) {
        dc_config c;
        dc_config_defaults(&c);
        c.pii.mode = (dc_pii_mode)mode;
        c.pii.sensitivity = (dc_pii_sensitivity)sens;
        snprintf(c.pii.hmac_key, sizeof c.pii.hmac_key, "fuzz-key-0123456789");
        c.pii.custom_pattern_count = 1;
        snprintf(c.pii.custom_patterns[0], DC_CONFIG_PII_PATTERN_MAX, "TICKET=\\bT-\\d{4,8}\\b");
        if (dc_scrubber_create(&c.pii, &scrubbers[mode][sens]) != DC_OK) abort();
    }
    return scrubbers[mode][sens];
}

static int is_cont(uint8_t b) {
    return (b & 0xC0) == 0x80;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    int mode = data[0] % 5, sens = (data[0] / 5) % 3;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    const dc_scrubber *s = get(mode, sens);
    dc_scrub_result r;
    dc_status st = dc_scrubber_scrub(s, text, len, &r);
    bool valid = dc_utf8_valid(text, len, NULL);
    if (!valid) {
        if (st != DC_ERR_INVALID_VALUE) abort();
        return 0;
    }
    if (st != DC_OK) {
        /* only the custom pattern's work bound may refuse valid text */
        if (st != DC_ERR_INVALID_VALUE || !strstr(dc_error_detail(), "refused")) abort();
        return 0;
    }
    if (!r.text || r.text[r.len] != '\0') abort();
    if (!dc_utf8_valid(r.text, r.len, NULL)) abort();
    size_t in_pos = 0, out_pos = 0;
    for (size_t k = 0; k < r.count; k++) {
        const dc_pii_detection *d = &r.detections[k];
        if (d->start >= d->end || d->end > len || d->start < in_pos) abort();
        if (is_cont((uint8_t)text[d->start]) || (d->end < len && is_cont((uint8_t)text[d->end])))
            abort();
        if ((unsigned)d->category >= DC_PII_CAT_COUNT || !d->label) abort();
        if (d->confidence <= 0.0f || d->confidence > 1.0f) abort();
        /* the bytes between detections are copied unchanged */
        size_t gap = d->start - in_pos;
        if (d->out_start != out_pos + gap || d->out_end < d->out_start || d->out_end > r.len)
            abort();
        if (memcmp(r.text + out_pos, text + in_pos, gap) != 0) abort();
        if (mode == DC_PII_OFF &&
            (d->out_end - d->out_start != d->end - d->start ||
             memcmp(r.text + d->out_start, text + d->start, d->end - d->start) != 0))
            abort();
        in_pos = d->end;
        out_pos = d->out_end;
    }
    if (r.len - out_pos != len - in_pos || memcmp(r.text + out_pos, text + in_pos, len - in_pos))
        abort();
    if (mode == DC_PII_OFF && (r.len != len || memcmp(r.text, text, len) != 0)) abort();
    char *audit = NULL;
    if (dc_scrub_result_audit_json(&r, &audit, NULL) != DC_OK) abort();
    free(audit);
    dc_scrub_result_free(&r);
    return 0;
}

/* Fuzz target: the E9 item memory file decoder. Any bytes must decode or fail with a status;
 * a file that decodes must re-encode to the same bytes and be usable by the encoder. The same
 * bytes are also encoded as text (malformed UTF-8 included) and must give a unit vector. */
#include <stdlib.h>
#include <string.h>

#include "models/hdc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_unit(const float *v) {
    double sq = 0;
    for (int i = 0; i < DC_HDC_OUT_DIM; i++) {
        if (!(v[i] >= -1.0f && v[i] <= 1.0f)) abort();
        sq += (double)v[i] * v[i];
    }
    if (sq < 0.9999 || sq > 1.0001) abort();
}

/* Any bytes as text, with a small table so most code points take the on-demand path. */
static void encode_as_text(const uint8_t *data, size_t size) {
    static dc_hdc_memory *mem;
    static dc_hdc_scratch *s;
    if (!mem && (dc_hdc_memory_generate(42, 3, 64, &mem) != DC_OK ||
                 dc_hdc_scratch_create(&s) != DC_OK))
        abort();
    float v[DC_HDC_OUT_DIM];
    dc_hdc_result r;
    dc_status st = dc_hdc_encode(mem, s, (const char *)data, size, 512, false, v, &r);
    if (size == 0) {
        if (st != DC_ERR_EMPTY_INPUT) abort();
        return;
    }
    if (st != DC_OK || r.chars_used == 0 || r.chars_used > 512) abort();
    check_unit(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    encode_as_text(data, size);
    dc_hdc_memory *m = NULL;
    if (dc_hdc_memory_decode(data, size, "fuzz", &m) != DC_OK) {
        if (m) abort(); /* failure leaves no object behind */
        return 0;
    }
    size_t cap = dc_hdc_memory_encoded_size(m), written = 0;
    uint8_t *buf = malloc(cap);
    if (!buf || cap != size || dc_hdc_memory_encode(m, buf, cap, &written) != DC_OK ||
        written != size || memcmp(buf, data, size) != 0)
        abort(); /* a decoded item memory must round-trip exactly */
    free(buf);
    dc_hdc_scratch *s = NULL;
    float v[DC_HDC_OUT_DIM];
    dc_hdc_result r;
    static const char text[] = "fuzzed item memory, \xce\xbb and \xe6\xbc\xa2";
    if (dc_hdc_scratch_create(&s) != DC_OK ||
        dc_hdc_encode(m, s, text, sizeof text - 1, 4096, false, v, &r) != DC_OK)
        abort();
    check_unit(v);
    dc_hdc_scratch_free(s);
    dc_hdc_memory_free(m);
    return 0;
}

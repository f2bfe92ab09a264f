/* Fuzz target: the E9 item memory file decoder. Any bytes must decode or fail with a status;
 * a file that decodes must re-encode to the same bytes and be usable by the encoder. */
#include <stdlib.h>
#include <string.h>

#include "models/hdc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
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
    for (int i = 0; i < DC_HDC_OUT_DIM; i++)
        if (!(v[i] >= -1.0f && v[i] <= 1.0f)) abort();
    dc_hdc_scratch_free(s);
    dc_hdc_memory_free(m);
    return 0;
}

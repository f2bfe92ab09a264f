/* Fuzz target: the fused-embedding binary decoder. Any bytes must decode cleanly or fail with a
 * status; a successful decode must re-encode to the same bytes. */
#include <stdlib.h>
#include <string.h>

#include "dodeca/dodeca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dc_fused_embedding f;
    if (dc_fused_decode(data, size, &f) != DC_OK) return 0;
    size_t cap = dc_fused_encoded_size(&f), written = 0;
    uint8_t *buf = malloc(cap);
    if (!buf || dc_fused_encode(&f, buf, cap, &written) != DC_OK || written != size ||
        memcmp(buf, data, size) != 0)
        abort(); /* a decoded embedding must round-trip exactly */
    free(buf);
    dc_fused_free(&f);
    return 0;
}

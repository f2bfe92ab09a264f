/* libFuzzer target: dc_weights_open_memory on arbitrary bytes (safetensors seeds). Every
 * accepted tensor is read end to end and converted, so a span that escapes the buffer shows up
 * under AddressSanitizer. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/weights.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* an exact-size copy: libFuzzer's buffer may have slack after `size` */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    dc_weights *w = NULL;
    if (dc_weights_open_memory(copy, size, "fuzz", &w) == DC_OK) {
        volatile unsigned sink = 0;
        for (size_t i = 0; i < dc_weights_count(w); i++) {
            const dc_tensor_view *t = dc_weights_tensor(w, i);
            if (dc_weights_find(w, t->name) != t) abort();
            for (uint64_t k = 0; k < t->nbytes; k++) sink += ((const uint8_t *)t->data)[k];
            float *f = NULL;
            if (t->numel <= (1u << 20) && dc_tensor_view_to_f32(t, &f) == DC_OK) free(f);
        }
        for (size_t i = 0; i < dc_weights_metadata_count(w); i++) {
            const char *k, *v;
            if (!dc_weights_metadata_at(w, i, &k, &v) || dc_weights_metadata_get(w, k) == NULL)
                abort();
        }
        (void)sink;
        dc_weights_close(w);
    }
    free(copy);
    return 0;
}

/* libFuzzer target for the PyTorch readers: the same bytes go through the restricted
 * unpickler, the zip reader (every entry read and CRC-checked) and dc_weights_open_memory
 * (torch zip / legacy seeds). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/pickle.h"
#include "io/weights.h"
#include "io/zip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);

    /* a legacy stream is pickles back to back: parse as many as there are */
    size_t pos = 0;
    for (int i = 0; i < 6 && pos < size; i++) {
        dc_pickle *pk = NULL;
        size_t used = 0;
        if (dc_pickle_parse(copy + pos, size - pos, pos, "fuzz", &pk, &used) != DC_OK) break;
        if (!dc_pickle_root(pk) || used == 0) abort();
        dc_pickle_free(pk);
        pos += used;
    }

    dc_zip *z = NULL;
    if (dc_zip_open(copy, size, "fuzz", &z) == DC_OK) {
        for (size_t i = 0; i < dc_zip_count(z); i++) {
            const dc_zip_entry *e = dc_zip_entry_at(z, i);
            if (dc_zip_find(z, e->name) != e) abort();
            const uint8_t *bytes;
            void *owned;
            if (e->size <= (1u << 24) && dc_zip_read(z, e, &bytes, &owned) == DC_OK) {
                volatile unsigned sink = 0;
                for (uint64_t k = 0; k < e->size; k++) sink += bytes[k];
                (void)sink;
                free(owned);
            }
        }
        dc_zip_close(z);
    }

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
        (void)sink;
        dc_weights_close(w);
    }
    free(copy);
    return 0;
}

/* Fuzz target: arbitrary bytes as tokenizer.json. Loading must succeed or fail with a status;
 * a tokenizer that loads must encode a few fixed texts without crashing, and give the same
 * result twice (the BPE cache must not change answers). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const texts[] = {
    "Hello, world! The quick brown fox.",
    "  caf\xc3\xa9 cafe\xcc\x81 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 12,345 don't [CLS] <s> <mask> ",
    "\xc4\xb0stanbul \xef\xac\x81 \xe2\x91\xa0 \t\n\r\x01 \xe2\x80\x8b \xef\xbb\xbf end",
    "",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dc_tokenizer *tok;
    if (dc_tokenizer_load_json((const char *)data, size, "fuzz", &tok) != DC_OK) return 0;
    dc_encode_options o;
    dc_tokenizer_default_options(tok, &o);
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        dc_encoding a, b;
        dc_status sa = dc_tokenizer_encode(tok, texts[i], strlen(texts[i]), &o, &a);
        dc_status sb = dc_tokenizer_encode(tok, texts[i], strlen(texts[i]), &o, &b);
        if (sa != sb) abort();
        if (sa == DC_OK) {
            if (a.len != b.len || (a.len && memcmp(a.ids, b.ids, a.len * sizeof *a.ids))) abort();
            for (size_t k = 0; k < a.len; k++)
                if (a.byte_offsets[k].end > strlen(texts[i]) && a.attention_mask[k]) abort();
            dc_encoding_free(&a);
            dc_encoding_free(&b);
        }
    }
    dc_tokenizer_free(tok);
    return 0;
}

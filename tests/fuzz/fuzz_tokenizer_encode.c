/* Fuzz target: arbitrary bytes encoded by the fixture tokenizers of tests/data/tokenizer. The
 * first byte picks the tokenizer and the options; the rest is the text. An encode succeeds, or
 * fails only for invalid UTF-8; offsets stay inside the text; ids are known tokens; encoding
 * twice gives the same answer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "text/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {"bert_tiny", "bytelevel_tiny", "metaspace_tiny", "split_tiny",
                                    "whitespace_tiny"};
#define NTOK (sizeof names / sizeof names[0])
static dc_tokenizer *toks[NTOK];

/* The fixtures live next to this file: <repo>/tests/data/tokenizer (or $DODECA_TOKENIZER_FIXTURES). */
static void load_all(void) {
    char dir[4096];
    const char *env = getenv("DODECA_TOKENIZER_FIXTURES");
    if (env && *env) {
        snprintf(dir, sizeof dir, "%s", env);
    } else {
        snprintf(dir, sizeof dir, "%s", __FILE__);
        char *cut = strstr(dir, "tests/fuzz/fuzz_tokenizer_encode.c");
        if (!cut) {
            fprintf(stderr, "fuzz_tokenizer_encode: set DODECA_TOKENIZER_FIXTURES\n");
            abort();
        }
        snprintf(cut, sizeof dir - (size_t)(cut - dir), "tests/data/tokenizer");
    }
    for (size_t i = 0; i < NTOK; i++) {
        char path[4300];
        snprintf(path, sizeof path, "%s/%s.json", dir, names[i]);
        if (dc_tokenizer_load(path, &toks[i]) != DC_OK) {
            fprintf(stderr, "fuzz_tokenizer_encode: cannot load %s: %s\n", path, dc_error_detail());
            abort();
        }
    }
}

static size_t count_cp(const uint8_t *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += (s[i] & 0xC0) != 0x80;
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!toks[0]) load_all();
    if (size < 1) return 0;
    uint8_t sel = data[0];
    const dc_tokenizer *tok = toks[sel % NTOK];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    dc_encode_options o;
    dc_tokenizer_default_options(tok, &o);
    o.add_special_tokens = (sel >> 3) & 1;
    o.replace_invalid_utf8 = (sel >> 4) & 1;
    if ((sel >> 5) & 1) o.truncation = (dc_truncation){true, 3 + (sel >> 6), 0, DC_TRUNC_LONGEST_FIRST,
                                                       (sel >> 7) ? DC_SIDE_LEFT : DC_SIDE_RIGHT};
    if ((sel >> 6) & 1) o.padding = (dc_padding){true, (sel >> 7) & 1, 7, (sel >> 5) & 1 ? 4 : 0, 0, 0,
                                                 (sel >> 3) & 1 ? DC_SIDE_LEFT : DC_SIDE_RIGHT};
    dc_encoding a, b;
    dc_status st = dc_tokenizer_encode(tok, text, len, &o, &a);
    bool valid = dc_utf8_valid(text, len, NULL);
    if (st != DC_OK) {
        /* only invalid UTF-8 (not repaired) and a truncation below the special tokens may fail */
        if (st == DC_ERR_INVALID_VALUE && !valid && !o.replace_invalid_utf8) return 0;
        if (st == DC_ERR_INVALID_ARGUMENT && o.truncation.enabled) return 0;
        fprintf(stderr, "unexpected failure: %s\n", dc_error_detail());
        abort();
    }
    if (dc_tokenizer_encode(tok, text, len, &o, &b) != DC_OK || a.len != b.len ||
        (a.len && (memcmp(a.ids, b.ids, a.len * sizeof *a.ids) ||
                   memcmp(a.offsets, b.offsets, a.len * sizeof *a.offsets))))
        abort();
    /* the repaired text may be longer than the input: U+FFFD is 3 bytes */
    size_t blen = valid ? len : len * 3, clen = valid ? count_cp((const uint8_t *)text, len) : len;
    for (size_t i = 0; i < a.len; i++) {
        if (a.byte_offsets[i].end > blen || a.offsets[i].end > clen) abort();
        if (!dc_tokenizer_id_to_token(tok, a.ids[i])) abort();
    }
    dc_encoding_free(&a);
    dc_encoding_free(&b);
    return 0;
}

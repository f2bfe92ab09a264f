/* dodeca — text tokenizers: a tokenizer.json engine that reproduces Hugging Face `tokenizers`
 * (normalizers, pre-tokenizers, WordPiece / BPE / WordLevel models, added tokens,
 * post-processors, truncation, padding, offsets in code points and in bytes).
 *
 * A dc_tokenizer is immutable after loading (its BPE word cache is internally locked), so one
 * tokenizer may be used from any number of threads at once. Encodings belong to the caller and
 * are released with dc_encoding_free. */
#ifndef DC_TEXT_TOKENIZER_H
#define DC_TEXT_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dodeca/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dc_tokenizer dc_tokenizer;

/* A half-open range [start, end). */
typedef struct dc_span {
    uint32_t start, end;
} dc_span;

typedef enum dc_trunc_strategy {
    DC_TRUNC_LONGEST_FIRST = 0,
    DC_TRUNC_ONLY_FIRST = 1,
    DC_TRUNC_ONLY_SECOND = 2,
} dc_trunc_strategy;

typedef enum dc_side { DC_SIDE_RIGHT = 0, DC_SIDE_LEFT = 1 } dc_side;

typedef struct dc_truncation {
    bool enabled;
    uint32_t max_length; /* counts the special tokens the post-processor adds */
    uint32_t stride;     /* kept for completeness; overflowing pieces are not returned */
    dc_trunc_strategy strategy;
    dc_side direction; /* RIGHT drops the end, LEFT drops the beginning */
} dc_truncation;

typedef struct dc_padding {
    bool enabled;
    bool fixed;          /* true: pad to `length`; false: "BatchLongest" (own length) */
    uint32_t length;
    uint32_t multiple_of; /* 0: none */
    uint32_t pad_id;
    uint32_t pad_type_id;
    dc_side direction;
} dc_padding;

typedef struct dc_encode_options {
    bool add_special_tokens;  /* the post-processor's [CLS]/[SEP], <s>/</s>, ... */
    bool replace_invalid_utf8; /* invalid UTF-8 becomes U+FFFD instead of an error; offsets
                                  then refer to the repaired text */
    dc_truncation truncation;
    dc_padding padding;
} dc_encode_options;

/* One encoded sequence. All arrays have `len` entries. */
typedef struct dc_encoding {
    size_t len;
    uint32_t *ids;
    uint32_t *type_ids;
    uint8_t *attention_mask;      /* 0 on padding */
    uint8_t *special_tokens_mask; /* 1 on tokens added by the post-processor and on padding */
    dc_span *offsets;             /* Unicode code points of the input; [0,0] for added ones */
    dc_span *byte_offsets;        /* UTF-8 bytes of the input */
    size_t untruncated_len;       /* tokens of the text before truncation (no specials) */
    bool truncated;
} dc_encoding;

/* Loads a tokenizer from a tokenizer.json file, or from a model folder: its tokenizer.json, or
 * else vocab.txt (BERT WordPiece) or vocab.json + merges.txt (RoBERTa or CLIP byte-level BPE),
 * configured from tokenizer_config.json / special_tokens_map.json when present. */
dc_status dc_tokenizer_load(const char *path, dc_tokenizer **out);
/* Parses tokenizer.json content held in memory; `origin` names it in error details. */
dc_status dc_tokenizer_load_json(const char *json, size_t len, const char *origin,
                                 dc_tokenizer **out);
void dc_tokenizer_free(dc_tokenizer *tok);

/* The options a plain encode uses: special tokens on, and the truncation and padding written in
 * tokenizer.json (disabled when absent). */
void dc_tokenizer_default_options(const dc_tokenizer *tok, dc_encode_options *opts);

/* Encodes one sequence. `opts` NULL means dc_tokenizer_default_options. On failure *out is
 * zeroed. Invalid UTF-8 gives DC_ERR_INVALID_VALUE naming the byte offset (unless
 * opts->replace_invalid_utf8). */
dc_status dc_tokenizer_encode(const dc_tokenizer *tok, const char *text, size_t len,
                              const dc_encode_options *opts, dc_encoding *out);
void dc_encoding_free(dc_encoding *enc);

/* Number of special tokens the post-processor adds to a single sequence. */
size_t dc_tokenizer_num_special_tokens(const dc_tokenizer *tok);
/* Model vocabulary size, plus added tokens that are not in it when with_added. */
size_t dc_tokenizer_vocab_size(const dc_tokenizer *tok, bool with_added);
/* Id of a token string (added tokens first, then the model vocabulary); -1 when absent. */
int64_t dc_tokenizer_token_to_id(const dc_tokenizer *tok, const char *token);
/* Token string of an id, NUL-terminated and owned by the tokenizer; NULL when absent. */
const char *dc_tokenizer_id_to_token(const dc_tokenizer *tok, uint32_t id);

#ifdef __cplusplus
}
#endif
#endif

/* The shared tokenization manager (seed task L29): an input is tokenized once per tokenizer
 * family and shared by the models of that family (twelve models, three tokenizations); each
 * model's own prefix, maximum length, marker token and padding are applied on top. Family
 * tokenizations are kept in an LRU cache keyed by (family, prefix, input hash) with hit, miss
 * and time metrics. Every function may be called from any number of threads at once. */
#ifndef DC_TEXT_TOKEN_MANAGER_H
#define DC_TEXT_TOKEN_MANAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "text/tokenizer.h"

typedef enum dc_tok_family {
    DC_TOK_FAMILY_BERT_UNCASED = 0, /* E1, E6, E8, E11, E12 */
    DC_TOK_FAMILY_ROBERTA_BPE = 1,  /* E5, E7 */
    DC_TOK_FAMILY_CLIP_BPE = 2,     /* E10 */
} dc_tok_family;
#define DC_TOK_FAMILY_COUNT 3

/* What one model needs from the shared tokenization. */
typedef struct dc_token_request {
    dc_tok_family family;
    const char *prefix;       /* text put before the input ("query: "); NULL for none */
    uint32_t max_length;      /* tokens, special ones included; 0: no limit */
    dc_side truncation_side;  /* RIGHT keeps the beginning */
    bool add_special_tokens;  /* the family's [CLS]/[SEP], <s>/</s>, ... */
    int64_t marker_id;        /* token put right after the first special token (ColBERT [Q]/[D]),
                                 counted in max_length; -1: none */
    uint32_t pad_to;          /* pad to this many tokens; 0: no padding */
    int64_t pad_id;           /* -1: the tokenizer's pad token ([PAD], <pad>, or 0) */
} dc_token_request;

/* A request with the defaults: special tokens, no prefix, marker, limit or padding. */
void dc_token_request_init(dc_token_request *r, dc_tok_family family);

typedef struct dc_token_manager_stats {
    uint64_t hits, misses, evictions;
    uint64_t entries, cached_tokens;
    uint64_t tokenize_ns; /* spent tokenizing on misses */
    uint64_t finish_ns;   /* spent deriving per-model encodings */
} dc_token_manager_stats;

typedef struct dc_token_manager dc_token_manager;

/* max_entries / max_tokens bound the cache (0 / 0 disables it; sharing within one
 * dc_token_manager_encode_many call still happens). */
dc_status dc_token_manager_create(size_t max_entries, size_t max_tokens, dc_token_manager **out);
void dc_token_manager_destroy(dc_token_manager *m);

/* Gives the manager the tokenizer of a family (it takes ownership, also on failure). Set every
 * family before concurrent use; replacing one clears that family's cached entries. */
dc_status dc_token_manager_set_tokenizer(dc_token_manager *m, dc_tok_family family,
                                         dc_tokenizer *tok);
const dc_tokenizer *dc_token_manager_tokenizer(const dc_token_manager *m, dc_tok_family family);

/* One model's encoding of text (UTF-8; invalid input is an error). Offsets refer to `text`;
 * tokens of the prefix have [0,0]. */
dc_status dc_token_manager_encode(dc_token_manager *m, const dc_token_request *req,
                                  const char *text, size_t len, dc_encoding *out);
/* Several models' encodings of one text: each (family, prefix) is tokenized once. On failure
 * every out[i] is left empty. */
dc_status dc_token_manager_encode_many(dc_token_manager *m, const dc_token_request *reqs,
                                       size_t n, const char *text, size_t len, dc_encoding *outs);

void dc_token_manager_stats_get(dc_token_manager *m, dc_token_manager_stats *s);
void dc_token_manager_clear(dc_token_manager *m);

#endif

/* Internal structures of the tokenizer engine (src/text). Not part of the public API.
 *
 * Offsets follow the Hugging Face `NormalizedString` model: every byte of a normalized string
 * carries the byte range of the original text it came from. Here those ranges are absolute
 * (relative to the whole input), so splitting a piece is a view and never copies. */
#ifndef DC_TEXT_TOK_INTERNAL_H
#define DC_TEXT_TOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "text/tokenizer.h"

/* ---------- small containers ---------- */

/* Grows *p (elements of `elem` bytes, capacity *cap) to hold at least `need`. */
dc_status dc_tok_grow(void **p, size_t *cap, size_t need, size_t elem);
#define DC_GROW(ptr, cap, need)                                                              \
    (((need) <= (cap)) ? DC_OK : dc_tok_grow((void **)&(ptr), &(cap), (need), sizeof *(ptr)))

typedef struct dc_strent {
    uint32_t off, len, hash, value;
} dc_strent;

/* Open-addressing map from byte strings to uint32 values. Keys live in one blob. */
typedef struct dc_strmap {
    uint32_t *slots; /* entry index + 1; 0 = empty */
    uint32_t mask;
    dc_strent *ents;
    size_t n, cap;
    char *blob;
    size_t blob_len, blob_cap;
} dc_strmap;

uint32_t dc_strmap_hash(const char *k, size_t len);
/* Inserts or overwrites. */
dc_status dc_strmap_put(dc_strmap *m, const char *k, size_t len, uint32_t value);
bool dc_strmap_get(const dc_strmap *m, const char *k, size_t len, uint32_t *value);
bool dc_strmap_get_h(const dc_strmap *m, const char *k, size_t len, uint32_t h, uint32_t *value);
void dc_strmap_clear(dc_strmap *m);
void dc_strmap_free(dc_strmap *m);

/* Open-addressing map from a pair of ids to (rank, new id): the BPE merges. */
typedef struct dc_pairmap {
    uint64_t *keys; /* UINT64_MAX = empty */
    uint64_t *vals;
    uint32_t mask;
    size_t n;
} dc_pairmap;

dc_status dc_pairmap_init(dc_pairmap *m, size_t expected);
/* Inserts or overwrites: like the reference's HashMap, a repeated merge keeps its last rank. */
dc_status dc_pairmap_put(dc_pairmap *m, uint32_t a, uint32_t b, uint32_t rank, uint32_t id);
static inline bool dc_pairmap_get(const dc_pairmap *m, uint32_t a, uint32_t b, uint32_t *rank,
                                  uint32_t *id) {
    if (!m->n) return false;
    uint64_t k = ((uint64_t)a << 32) | b;
    uint64_t h = k * 0x9E3779B97F4A7C15ull;
    uint32_t i = (uint32_t)(h >> 32) & m->mask;
    for (;;) {
        uint64_t kk = m->keys[i];
        if (kk == k) {
            *rank = (uint32_t)(m->vals[i] >> 32);
            *id = (uint32_t)m->vals[i];
            return true;
        }
        if (kk == UINT64_MAX) return false;
        i = (i + 1) & m->mask;
    }
}
void dc_pairmap_free(dc_pairmap *m);

/* ---------- regular expressions (PCRE2, Oniguruma semantics) ---------- */

typedef struct dc_regex {
    pcre2_code *code;
    bool jit;
} dc_regex;

/* Compiles an Oniguruma-style pattern as tokenizers writes them; `where` names it in errors. */
dc_status dc_regex_compile(dc_regex *re, const char *pattern, size_t len, const char *where);
void dc_regex_free(dc_regex *re);

/* A literal string or a regex, as in tokenizer.json {"String": ...} / {"Regex": ...}. */
typedef struct dc_pattern {
    bool is_regex;
    char *lit;
    size_t lit_len;
    dc_regex re;
} dc_pattern;

void dc_pattern_free(dc_pattern *p);

/* ---------- pieces of the text being encoded ---------- */

/* A substring under work: its normalized bytes, the original range of each byte, and its place
 * in the original text. */
typedef struct dc_piece {
    const char *s;
    const dc_span *al; /* per byte; NULL: same layout as the input from byte `ident` on */
    uint32_t len;
    uint32_t ident;
    uint32_t ostart, oend; /* original range (absolute bytes) */
    int32_t token;         /* >= 0: an added token with this id */
    uint8_t bytelevel;     /* the model sees the byte-level image of s */
} dc_piece;

/* A token of the encoding before post-processing. */
typedef struct dc_tok {
    uint32_t id;
    uint32_t bstart, bend; /* absolute byte offsets */
    uint32_t cstart, cend; /* code-point offsets */
    uint16_t lead_ws, trail_ws;
    uint8_t special;
    uint32_t type_id;
} dc_tok;

typedef struct dc_bpe_sym {
    uint32_t id;
    int32_t prev, next;
    uint32_t len; /* bytes of the word; 0 = merged away */
} dc_bpe_sym;

typedef struct dc_bpe_merge {
    uint32_t rank, pos, id;
} dc_bpe_merge;

/* Per-call working state (one per dc_tokenizer_encode). */
typedef struct dc_ctx {
    const struct dc_tokenizer *tok;
    const char *in;
    size_t in_len;
    dc_piece *pieces, *tmp;
    size_t npieces, cap_pieces, ntmp, cap_tmp;
    dc_tok *toks;
    size_t ntoks, cap_toks;
    void **owned;
    size_t nowned, cap_owned;
    dc_span *matches;
    size_t nmatches, cap_matches;
    pcre2_match_data *md;
    char *scratch;
    size_t cap_scratch;
    dc_bpe_sym *syms;
    size_t cap_syms;
    dc_bpe_merge *heap;
    size_t cap_heap;
    uint32_t *cached;
    size_t cap_cached;
    uint32_t *wp_len; /* byte lengths of the WordPiece tokens of the current word */
    size_t cap_wp_len, n_wp_len;
    /* while a normalizer runs on one piece, buffers owned from index norm_mark on are private to
     * that piece: a pass may free its input once it has written its output */
    bool norm_active;
    size_t norm_mark;
    /* pieces the current pre-tokenizer stage produces: stored in tmp, or, for the last stage,
     * handed straight to the model (no list of millions of pieces for long inputs) */
    bool sink_model;
    uint8_t emit_bytelevel;
} dc_ctx;

/* Work counter: elementary steps taken by encodes on this thread (tests check linear time). */
uint64_t dc_tokenizer_work(void);
void dc_tokenizer_work_add(uint64_t n);

dc_status dc_ctx_own(dc_ctx *c, void *p);
/* Original byte range of byte i of a piece. */
dc_span dc_piece_span(const dc_ctx *c, const dc_piece *p, uint32_t i);
/* Sub-piece [a, b) of p as a view. */
dc_piece dc_piece_slice(const dc_ctx *c, const dc_piece *p, uint32_t a, uint32_t b);
/* Gives p its own byte-level string (when a later step needs the characters). */
dc_status dc_piece_materialize_bytelevel(dc_ctx *c, dc_piece *p);

/* Rewrites a piece char by char with the reference's alignment rules:
 * emit(cp, 0) replaces the next original char, emit(cp, +1) inserts (aligned with the previous
 * char), emit(cp, -n) replaces the next char and removes n more; skip(n) removes n chars. */
typedef struct dc_tx {
    dc_ctx *c;
    const dc_piece *src;
    uint32_t pos; /* byte position in src */
    char *out;
    dc_span *oal;
    size_t olen, cap_out, cap_al;
    bool ident;
    dc_status err;
} dc_tx;

void dc_tx_begin(dc_tx *t, dc_ctx *c, const dc_piece *src);
void dc_tx_skip(dc_tx *t, uint32_t nchars);
void dc_tx_emit(dc_tx *t, uint32_t cp, int32_t change);
/* Copies the next n bytes of src unchanged (whole chars, change 0). */
void dc_tx_copy(dc_tx *t, uint32_t nbytes);
/* Finishes: *dst becomes src with the new string (buffers owned by the context). */
dc_status dc_tx_end(dc_tx *t, dc_piece *dst);

/* Splits p at the given matches (sorted, non-overlapping, covering all of p, each flagged as a
 * delimiter or not) with a delimiter behavior; appends non-empty views to c->tmp. */
typedef enum dc_split_behavior {
    DC_SPLIT_REMOVED,
    DC_SPLIT_ISOLATED,
    DC_SPLIT_MERGED_PREV,
    DC_SPLIT_MERGED_NEXT,
    DC_SPLIT_CONTIGUOUS,
} dc_split_behavior;

typedef struct dc_match {
    uint32_t start, end;
    bool is_match;
} dc_match;

dc_status dc_split_piece(dc_ctx *c, const dc_piece *p, dc_match *m, size_t nm,
                         dc_split_behavior b);
/* Emits one produced piece (dropping empty ones): into c->tmp, or to the model. */
dc_status dc_emit_piece(dc_ctx *c, const dc_piece *p);
/* Feeds one final piece to the model (an added-token piece becomes its token). */
dc_status dc_tokenize_piece(dc_ctx *c, const dc_piece *p);
/* Finds a pattern's matches in s (reference find_matches: whole string covered). */
dc_status dc_pattern_find(dc_ctx *c, const dc_pattern *pat, const char *s, uint32_t len,
                          bool invert, dc_match **out, size_t *n);
/* All regex matches [start, end) in s, Oniguruma find_iter semantics. */
dc_status dc_regex_find_all(dc_ctx *c, const dc_regex *re, const char *s, uint32_t len);

/* ---------- components ---------- */

typedef enum dc_norm_kind {
    DC_NORM_BERT,
    DC_NORM_STRIP,
    DC_NORM_STRIP_ACCENTS,
    DC_NORM_NFC,
    DC_NORM_NFD,
    DC_NORM_NFKC,
    DC_NORM_NFKD,
    DC_NORM_LOWERCASE,
    DC_NORM_REPLACE,
    DC_NORM_PREPEND,
    DC_NORM_BYTELEVEL,
    DC_NORM_NMT,
    DC_NORM_SEQUENCE,
} dc_norm_kind;

typedef struct dc_normalizer {
    dc_norm_kind kind;
    bool clean_text, chinese, strip_accents, lowercase; /* Bert */
    bool left, right;                                   /* Strip */
    dc_pattern pat;                                     /* Replace */
    char *str;                                          /* Replace content, Prepend */
    size_t str_len;
    struct dc_normalizer *items; /* Sequence */
    size_t nitems;
} dc_normalizer;

typedef enum dc_pre_kind {
    DC_PRE_BERT,
    DC_PRE_BYTELEVEL,
    DC_PRE_WHITESPACE,
    DC_PRE_WHITESPACE_SPLIT,
    DC_PRE_SPLIT,
    DC_PRE_PUNCT,
    DC_PRE_DIGITS,
    DC_PRE_METASPACE,
    DC_PRE_DELIMITER,
    DC_PRE_SEQUENCE,
} dc_pre_kind;

typedef struct dc_pretok {
    dc_pre_kind kind;
    bool add_prefix_space, use_regex; /* ByteLevel, Metaspace (legacy) */
    dc_pattern pat;                   /* Split; ByteLevel's GPT-2 regex; Whitespace's regex */
    bool invert;
    dc_split_behavior behavior;
    bool individual_digits;
    uint32_t ch;           /* Metaspace replacement, CharDelimiterSplit delimiter */
    int prepend_scheme;    /* Metaspace: 0 never, 1 first, 2 always */
    bool split;            /* Metaspace */
    struct dc_pretok *items; /* Sequence */
    size_t nitems;
} dc_pretok;

typedef enum dc_tmodel_kind { DC_MODEL_WORDPIECE, DC_MODEL_BPE, DC_MODEL_WORDLEVEL } dc_tmodel_kind;

#define DC_BPE_CACHE_SHARDS 16

typedef struct dc_bpe_cache_shard {
    pthread_mutex_t mu;
    dc_strmap map; /* word → offset in vals */
    uint32_t *vals; /* [count, id, len, id, len, ...] per word */
    size_t nvals, cap_vals;
} dc_bpe_cache_shard;

typedef struct dc_tmodel {
    dc_tmodel_kind kind;
    dc_strmap vocab;
    uint32_t *rev_off, *rev_len; /* id → key in vocab.blob; rev_len UINT32_MAX = hole */
    uint8_t *lead_ws, *trail_ws; /* per id: spaces ByteLevel trimming sees in the token */
    size_t nrev;
    int64_t unk_id;
    char *unk;
    /* WordPiece */
    char *prefix;
    size_t prefix_len;
    uint32_t max_chars;
    size_t max_key_len;
    /* BPE */
    dc_pairmap merges;
    char *cont_prefix; /* NULL: none */
    char *eow_suffix;  /* NULL: none */
    bool fuse_unk, byte_fallback, ignore_merges;
    int32_t byte_ids[4][256]; /* byte-level initial symbols: [is_last*2 + !is_first][byte] */
    bool byte_ids_ready;
    dc_bpe_cache_shard *cache;
} dc_tmodel;

typedef struct dc_added {
    char *content;
    size_t len;
    char *match; /* what is searched for: the content, normalized when `normalized` */
    size_t match_len;
    uint32_t id;
    bool single_word, lstrip, rstrip, normalized, special;
} dc_added;

typedef struct dc_trie_node {
    int32_t child, sibling; /* first child, next sibling; -1 none */
    int32_t added;          /* index into tok->added of the token ending here; -1 none */
    uint8_t byte;
} dc_trie_node;

typedef struct dc_trie {
    dc_trie_node *nodes;
    size_t n, cap;
    bool first[256];
    size_t count;
} dc_trie;

typedef enum dc_post_kind {
    DC_POST_BERT,
    DC_POST_ROBERTA,
    DC_POST_TEMPLATE,
    DC_POST_BYTELEVEL,
    DC_POST_SEQUENCE,
} dc_post_kind;

typedef struct dc_tpl_item {
    bool is_seq;
    uint32_t type_id;
    uint32_t *ids;
    size_t nids;
} dc_tpl_item;

typedef struct dc_post {
    dc_post_kind kind;
    uint32_t cls_id, sep_id;
    bool trim_offsets, add_prefix_space;
    dc_tpl_item *items;
    size_t nitems;
    struct dc_post *seq;
    size_t nseq;
} dc_post;

struct dc_tokenizer {
    char *origin;
    dc_normalizer *normalizer;
    dc_pretok *pretok;
    dc_tmodel model;
    dc_post *post;
    dc_added *added;
    size_t nadded;
    dc_trie raw_trie, norm_trie;
    dc_strmap added_map; /* content → id */
    dc_truncation trunc;
    dc_padding pad;
};

/* Component entry points. */
dc_status dc_normalize(dc_ctx *c, const dc_normalizer *n, dc_piece *p);
dc_status dc_pretokenize(dc_ctx *c, const dc_pretok *pt);
dc_status dc_tmodel_tokenize(dc_ctx *c, const dc_tmodel *m, const dc_piece *p);
dc_status dc_tmodel_finish(dc_tmodel *m, const char *where); /* reverse vocab, tables, checks */
void dc_tmodel_free(dc_tmodel *m);
void dc_normalizer_free(dc_normalizer *n);
void dc_pretok_free(dc_pretok *p);
void dc_post_free(dc_post *p);
size_t dc_post_added(const dc_post *p);
/* Post-processes c->toks in place (trimming, special tokens). */
dc_status dc_post_process(dc_ctx *c, const dc_post *p, bool add_special);

dc_status dc_trie_add(dc_trie *t, const char *s, size_t len, int32_t added);
void dc_trie_free(dc_trie *t);

/* The two halves of dc_tokenizer_encode, for sharing one tokenization between models:
 * the text's tokens before truncation and post-processing (*toks malloc'ed, caller frees), and
 * truncation + post-processing + padding of such tokens. `marker` >= 0 is an extra token put
 * right after the first special token (ColBERT's [Q]/[D]) and counted in the length. */
dc_status dc_tokenizer_tokens(const struct dc_tokenizer *tok, const char *text, size_t len,
                              bool replace_invalid, dc_tok **toks, size_t *n);
dc_status dc_tokenizer_finish_tokens(const struct dc_tokenizer *tok, const dc_tok *toks, size_t n,
                                     const dc_encode_options *opts, int64_t marker,
                                     dc_encoding *out);

/* Context lifetime. */
dc_status dc_ctx_init(dc_ctx *c, const struct dc_tokenizer *tok, const char *in, size_t len);
void dc_ctx_free(dc_ctx *c);

/* The byte-level alphabet (GPT-2): printable bytes stand for themselves, the other 68 bytes
 * take the code points from U+0100 on, in byte order. */
static inline uint32_t dc_bytelevel_cp(uint8_t b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) return b;
    if (b <= 0x20) return 0x100u + b;
    if (b <= 0xA0) return 0x121u + (uint32_t)(b - 0x7F);
    return 0x143; /* 0xAD */
}

#endif

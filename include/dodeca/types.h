/* dodeca — core value types: model ids, inputs, per-model, concatenated and fused embeddings.
 *
 * Conventions: values are plain structs; pointers inside a dc_input are borrowed (the caller
 * keeps the bytes alive for the call). Embedding buffers that the library allocates are released
 * with the matching *_free function. */
#ifndef DODECA_TYPES_H
#define DODECA_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dodeca/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Model ids (seed F01). The value is the block index in the concatenation. ---- */
typedef enum dc_model_id {
    DC_MODEL_SEMANTIC = 0,            /* E1  intfloat/e5-large-v2 */
    DC_MODEL_TEMPORAL_RECENT = 1,     /* E2  custom decay features */
    DC_MODEL_TEMPORAL_PERIODIC = 2,   /* E3  custom calendar Fourier features */
    DC_MODEL_TEMPORAL_POSITIONAL = 3, /* E4  custom sinusoidal time + position */
    DC_MODEL_CAUSAL = 4,              /* E5  allenai/longformer-base-4096 */
    DC_MODEL_SPARSE = 5,              /* E6  naver/splade-cocondenser-ensembledistil */
    DC_MODEL_CODE = 6,                /* E7  microsoft/codebert-base */
    DC_MODEL_GRAPH = 7,               /* E8  sentence-transformers/paraphrase-MiniLM-L6-v2 */
    DC_MODEL_HDC = 8,                 /* E9  custom hyperdimensional encoder */
    DC_MODEL_MULTIMODAL = 9,          /* E10 openai/clip-vit-large-patch14 */
    DC_MODEL_ENTITY = 10,             /* E11 sentence-transformers/all-MiniLM-L6-v2 */
    DC_MODEL_LATE_INTERACTION = 11,   /* E12 colbert-ir/colbertv2.0 */
} dc_model_id;

#define DC_NUM_MODELS 12
#define DC_ALL_MODELS_MASK 0x0FFFu

/* ---- Dimensions (seed F02): the width of each model's block in the concatenation. ---- */
#define DC_DIM_SEMANTIC 1024
#define DC_DIM_TEMPORAL_RECENT 512
#define DC_DIM_TEMPORAL_PERIODIC 512
#define DC_DIM_TEMPORAL_POSITIONAL 512
#define DC_DIM_CAUSAL 768
#define DC_DIM_SPARSE_PROJECTED 1536
#define DC_DIM_CODE 768
#define DC_DIM_GRAPH 384
#define DC_DIM_HDC 1024
#define DC_DIM_MULTIMODAL 768
#define DC_DIM_ENTITY 384
#define DC_DIM_LATE_INTERACTION 128
#define DC_DIM_CONCATENATED 8320
#define DC_DIM_FUSED 1536

#define DC_SPARSE_VOCAB_SIZE 30522 /* SPLADE's BERT vocabulary */
#define DC_HDC_BITS 10240
#define DC_NUM_EXPERTS 8
#define DC_DEFAULT_TOP_K 2

_Static_assert(DC_DIM_SEMANTIC + DC_DIM_TEMPORAL_RECENT + DC_DIM_TEMPORAL_PERIODIC +
                       DC_DIM_TEMPORAL_POSITIONAL + DC_DIM_CAUSAL + DC_DIM_SPARSE_PROJECTED +
                       DC_DIM_CODE + DC_DIM_GRAPH + DC_DIM_HDC + DC_DIM_MULTIMODAL +
                       DC_DIM_ENTITY + DC_DIM_LATE_INTERACTION ==
                   DC_DIM_CONCATENATED,
               "model block dimensions must sum to the concatenated dimension");

/* ---- Input types (seed F07). ---- */
typedef enum dc_input_type {
    DC_INPUT_TEXT = 0,
    DC_INPUT_CODE = 1,
    DC_INPUT_IMAGE = 2,
    DC_INPUT_AUDIO = 3, /* accepted as a type; no model embeds it */
} dc_input_type;

#define DC_NUM_INPUT_TYPES 4
#define DC_INPUT_BIT(t) (1u << (unsigned)(t))

typedef enum dc_model_kind {
    DC_MODEL_KIND_CUSTOM = 0,     /* computed from formulas, no weights to download */
    DC_MODEL_KIND_PRETRAINED = 1, /* a published checkpoint */
} dc_model_kind;

/* Static facts about one model (seed F01/F02/F10). */
typedef struct dc_model_info {
    dc_model_id id;
    const char *name;        /* snake_case id used in config and APIs: "semantic" */
    const char *label;       /* "E1" … "E12" */
    const char *short_name;  /* the model people know it by: "e5-large-v2", "temporal-recent" */
    dc_model_kind kind;
    const char *repo;        /* Hugging Face repo id; NULL for custom models */
    uint32_t native_dim;     /* the model's own output width (30522 for SPLADE, 10240 bits HDC) */
    uint32_t dim;            /* its block width in the concatenation */
    uint32_t offset;         /* first index of its block in the concatenation */
    uint32_t max_tokens;     /* max input tokens (HDC: characters; temporal: 0 = no text) */
    uint32_t input_mask;     /* DC_INPUT_BIT() of accepted input types */
    const char *tokenizer;   /* "bert-uncased", "roberta-bpe", "clip-bpe", or NULL */
    uint64_t memory_estimate;/* conservative resident bytes when loaded in fp32 */
} dc_model_info;

/* Facts for `id`, or NULL when id is out of range. */
const dc_model_info *dc_model_info_get(dc_model_id id);
/* Parses "semantic", "E1"/"e1" or the short name ("e5-large-v2"); DC_ERR_MODEL_NOT_FOUND otherwise. */
dc_status dc_model_id_parse(const char *name, dc_model_id *out);
bool dc_model_accepts(dc_model_id id, dc_input_type type);
const char *dc_input_type_name(dc_input_type type); /* "text", "code", "image", "audio" */
dc_status dc_input_type_parse(const char *name, dc_input_type *out);

/* ---- 128-bit content hash (XXH3-128). ---- */
typedef struct dc_hash128 {
    uint64_t lo;
    uint64_t hi;
} dc_hash128;

bool dc_hash128_equal(dc_hash128 a, dc_hash128 b);
/* Writes 32 lowercase hex digits (hi then lo) and a NUL into out[33]. */
void dc_hash128_hex(dc_hash128 h, char out[33]);

/* ---- Input (seed F06). ---- */
typedef enum dc_text_role {
    DC_ROLE_PASSAGE = 0, /* a document to be searched (default) */
    DC_ROLE_QUERY = 1,   /* a search query; e5 and ColBERT embed queries differently */
} dc_text_role;

typedef enum dc_image_format {
    DC_IMAGE_PNG = 0,
    DC_IMAGE_JPEG = 1,
    DC_IMAGE_WEBP = 2,
    DC_IMAGE_GIF = 3,
} dc_image_format;

/* One item to embed. A view: every pointer is borrowed. Build it with the dc_input_* helpers,
 * then set the optional fields. Text and code are UTF-8 with an explicit length. */
typedef struct dc_input {
    dc_input_type type;
    const char *content;     /* text or code */
    size_t content_len;
    dc_text_role role;       /* text only */
    const char *instruction; /* text only; optional NUL-terminated task instruction */
    const char *language;    /* code only; optional NUL-terminated language tag ("rust") */
    const uint8_t *bytes;    /* image or audio payload */
    size_t bytes_len;
    dc_image_format image_format;
    uint32_t sample_rate;    /* audio, Hz */
    uint8_t channels;        /* audio, 1 or 2 */
    /* Time facts for E2–E4, in Unix seconds. t_ref defaults to the request's receive time,
     * which the pipeline records so a call can be repeated exactly. */
    bool has_t_event;
    double t_event;
    bool has_t_ref;
    double t_ref;
    bool has_position;
    int64_t position;        /* index of the item within its parent (chunk, turn), >= 0 */
} dc_input;

dc_input dc_input_text(const char *text, size_t len, dc_text_role role);
dc_input dc_input_code(const char *code, size_t len, const char *language);
dc_input dc_input_image(const uint8_t *bytes, size_t len, dc_image_format format);
dc_input dc_input_audio(const uint8_t *bytes, size_t len, uint32_t sample_rate, uint8_t channels);

/* Checks the rules: non-empty content, valid UTF-8 for text/code, known enum values, audio
 * sample rate > 0 and 1–2 channels, finite times, position >= 0. */
dc_status dc_input_validate(const dc_input *in);
/* Stable XXH3-128 over a canonical encoding of every field that changes an embedding. Equal
 * inputs hash equal on every platform; the hash is part of cache keys and stored results. */
dc_hash128 dc_input_hash(const dc_input *in);
/* Payload size in bytes (content or bytes). */
size_t dc_input_byte_size(const dc_input *in);

/* ---- One model's embedding (seed F03). ---- */
typedef struct dc_model_embedding {
    dc_model_id model;
    float *vector;        /* owned; `dim` floats */
    uint32_t dim;
    uint64_t latency_us;
    uint32_t tokens_used; /* tokens (or characters for HDC) consumed */
    bool truncated;       /* the input was longer than the model's limit */
} dc_model_embedding;

/* Copies `dim` floats into a new owned buffer. */
dc_status dc_model_embedding_init(dc_model_embedding *e, dc_model_id model, const float *vector,
                                  uint32_t dim);
void dc_model_embedding_free(dc_model_embedding *e);
/* Length equals the model's block width; every value finite. */
dc_status dc_model_embedding_validate(const dc_model_embedding *e);

/* ---- Vector helpers. ---- */
/* Euclidean norm, accumulated in double. */
double dc_vec_l2_norm(const float *v, size_t n);
/* Scales to unit length; a zero vector stays zero (returns false then). */
bool dc_vec_normalize(float *v, size_t n);
/* Cosine similarity in double precision; 0 when either vector is zero. */
double dc_vec_cosine(const float *a, const float *b, size_t n);
/* DC_ERR_INVALID_VALUE naming the first NaN/Inf index, else DC_OK. */
dc_status dc_vec_check_finite(const float *v, size_t n, const char *what);

/* ---- Concatenated embedding (seed F04): the 8320 floats in canonical E1…E12 order. ---- */
typedef struct dc_concat_embedding {
    float vector[DC_DIM_CONCATENATED]; /* missing blocks are zero */
    uint32_t present_mask;             /* bit i set when model i contributed */
    uint64_t latency_us[DC_NUM_MODELS]; /* each contributing model's latency */
    dc_hash128 content_hash;
} dc_concat_embedding;

void dc_concat_init(dc_concat_embedding *c, dc_hash128 content_hash);
/* Validates `e`, L2-normalises a copy into its block (DESIGN §2: no model dominates by scale)
 * and marks it present. Setting a model twice replaces its block. */
dc_status dc_concat_set(dc_concat_embedding *c, const dc_model_embedding *e);
const float *dc_concat_block(const dc_concat_embedding *c, dc_model_id id);
bool dc_concat_has(const dc_concat_embedding *c, dc_model_id id);
bool dc_concat_is_complete(const dc_concat_embedding *c);
/* Writes the absent ids in canonical order into out (room for DC_NUM_MODELS); returns count. */
size_t dc_concat_missing(const dc_concat_embedding *c, dc_model_id out[DC_NUM_MODELS]);
/* Sum of the contributing models' latencies. */
uint64_t dc_concat_total_latency_us(const dc_concat_embedding *c);

/* ---- Auxiliary outputs carried with a fused embedding. ---- */
typedef struct dc_sparse_vector {
    uint32_t *indices; /* strictly increasing, < vocab_size; owned */
    float *values;     /* finite, > 0 for SPLADE; owned */
    uint32_t nnz;
    uint32_t vocab_size;
} dc_sparse_vector;

typedef struct dc_token_matrix {
    float *data;       /* n_tokens × dim, row-major; owned */
    uint32_t n_tokens;
    uint32_t dim;
} dc_token_matrix;

/* ---- Fused embedding (seed F05). ---- */
typedef struct dc_fused_embedding {
    float vector[DC_DIM_FUSED];                 /* L2-normalised */
    float expert_weights[DC_NUM_EXPERTS];       /* all gate probabilities; sum to 1 */
    uint8_t selected_experts[DC_NUM_EXPERTS];   /* the top-k expert indices, first k used */
    uint8_t num_selected;                       /* k, 1..DC_NUM_EXPERTS */
    uint32_t present_mask;                      /* which of the 12 models contributed */
    uint64_t pipeline_latency_us;
    dc_hash128 content_hash;
    dc_token_matrix colbert;                    /* E12 token vectors; n_tokens 0 when absent */
    dc_sparse_vector sparse;                    /* E6 SPLADE weights; nnz 0 when absent */
} dc_fused_embedding;

/* Zeroes every field (no aux data). */
void dc_fused_init(dc_fused_embedding *f);
/* Releases the aux buffers and leaves `f` in the dc_fused_init state. */
void dc_fused_free(dc_fused_embedding *f);
/* Copies aux data into `f` (replacing any), after checking it. */
dc_status dc_fused_set_colbert(dc_fused_embedding *f, const float *rows, uint32_t n_tokens,
                               uint32_t dim);
dc_status dc_fused_set_sparse(dc_fused_embedding *f, const uint32_t *indices, const float *values,
                              uint32_t nnz, uint32_t vocab_size);
/* Rules: finite vector; weights finite, in [0,1], summing to 1 within 0.01; 1 <= k <= 8 distinct
 * expert indices < 8; aux well formed (rows finite; indices sorted, in range; values finite). */
dc_status dc_fused_validate(const dc_fused_embedding *f);

/* Versioned little-endian binary encoding: magic "DCFE", version, lengths, payload and an
 * XXH3-64 checksum. Round-trips bit-exactly; corrupted or truncated bytes are rejected. */
#define DC_FUSED_FORMAT_VERSION 1
size_t dc_fused_encoded_size(const dc_fused_embedding *f);
/* Writes at most `cap` bytes; DC_ERR_INVALID_ARGUMENT (nothing written) when cap is too small. */
dc_status dc_fused_encode(const dc_fused_embedding *f, void *buf, size_t cap, size_t *written);
/* On success `out` owns new aux buffers; on failure `out` is left in the dc_fused_init state. */
dc_status dc_fused_decode(const void *buf, size_t len, dc_fused_embedding *out);

#ifdef __cplusplus
}
#endif
#endif

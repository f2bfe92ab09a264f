/* The BERT-family encoder (post-LayerNorm blocks), fp32 reference path, on a dc_backend.
 *
 * Loads Hugging Face folders: config.json + model.safetensors (or a sharded index, or
 * pytorch_model.bin). Tensor names are accepted with or without the `bert.` prefix, and with
 * the legacy LayerNorm names gamma/beta. Query, key and value are fused into one prepared
 * [3H, H] matrix product. Batches are packed: sequences of any lengths run in one forward.
 * Errors name the file, the tensor or the config field at fault. */
#ifndef DC_MODELS_BERT_H
#define DC_MODELS_BERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dodeca/status.h"
#include "io/weights.h"
#include "tensor/backend.h"

/* The encoder variants this file runs: the same post-LayerNorm block, with RoBERTa's
 * positions (counted from pad_token_id + 1 over the non-pad tokens) for RoBERTa and
 * Longformer, and Longformer's sliding-window + global attention. */
typedef enum dc_bert_kind {
    DC_BERT_KIND_BERT = 0,
    DC_BERT_KIND_ROBERTA = 1,
    DC_BERT_KIND_LONGFORMER = 2,
} dc_bert_kind;

#define DC_BERT_MAX_WINDOW_LAYERS 128

typedef struct dc_bert_config {
    char model_type[32];     /* "bert", "roberta" or "longformer" */
    dc_bert_kind kind;
    uint32_t vocab_size;
    uint32_t hidden;
    uint32_t layers;
    uint32_t heads;
    uint32_t intermediate;
    uint32_t max_position;   /* max_position_embeddings */
    uint32_t type_vocab;     /* type_vocab_size */
    uint32_t pad_token_id;
    float eps;               /* layer_norm_eps */
    dc_activation act;       /* hidden_act */
    /* Longformer: attention_window per layer (even, > 0); the one-sided window is half. */
    uint32_t attention_window[DC_BERT_MAX_WINDOW_LAYERS];
    /* Not from config.json: the format of the encoder layers' linear weights (Q/K/V, attention
     * output, intermediate, output); set by the caller, F32 after parsing. */
    dc_weight_format weights;
    /* Not from config.json: true makes the host read those weights even where the backend
     * could read them from the file itself (gpu.direct_weights = false; linear_load.h). */
    bool host_weights;
} dc_bert_config;

/* Tokens one sequence may have: max_position for BERT, max_position − pad_token_id − 1 for
 * RoBERTa and Longformer (their positions start at pad_token_id + 1). */
uint32_t dc_bert_max_tokens(const dc_bert_config *cfg);

/* Reads and checks config.json (file path). Unknown model_type, a missing or out-of-range
 * field, an unknown hidden_act or a non-absolute position_embedding_type are DC_ERR_MODEL_LOAD
 * naming the field. */
dc_status dc_bert_config_read(const char *path, dc_bert_config *out);
dc_status dc_bert_config_parse(const char *json, size_t len, const char *origin,
                               dc_bert_config *out);

/* Finds the weights of a model folder: model.safetensors, model.safetensors.index.json, then
 * pytorch_model.bin; DC_ERR_MODEL_NOT_FOUND naming the folder when none exists. Writes the
 * path into buf. */
dc_status dc_bert_weights_path(const char *dir, char *buf, size_t cap);

/* Looks a tensor up under the model's prefix choices ("" / "bert." / "roberta." /
 * "longformer."), with the gamma/beta
 * aliases, checks dtype convertibility and shape, and returns a malloc'ed f32 copy.
 * ndim/shape give the expected shape; DC_ERR_NOT_FOUND or DC_ERR_INVALID_DIMENSION name the
 * tensor. `prefix` is the prefix detected at load ("" when NULL). */
dc_status dc_bert_tensor_f32(const dc_weights *w, const char *prefix, const char *name,
                             uint32_t ndim, const uint64_t *shape, float **out);
/* Same, but a missing tensor is not an error: *out is NULL then. */
dc_status dc_bert_tensor_f32_opt(const dc_weights *w, const char *prefix, const char *name,
                                 uint32_t ndim, const uint64_t *shape, float **out);

typedef struct dc_bert dc_bert;

/* Builds the encoder from open weights and a parsed config. The backend is borrowed and must
 * outlive the encoder. The weights can be closed afterwards (everything is copied). */
dc_status dc_bert_create(const dc_weights *w, const dc_bert_config *cfg, dc_backend *be,
                         dc_bert **out);
void dc_bert_destroy(dc_bert *m);

/* The prefix the checkpoint uses for encoder tensors ("", "bert.", "roberta.", "longformer."). */
const char *dc_bert_prefix(const dc_bert *m);
const dc_bert_config *dc_bert_config_of(const dc_bert *m);
dc_backend *dc_bert_backend(const dc_bert *m);
/* Host copy of the word embedding matrix [vocab, hidden] (tied MLM decoders); NULL when the
 * model runs on a device backend (the table lives there: read it from the weights again). */
const float *dc_bert_word_embeddings(const dc_bert *m);
size_t dc_bert_memory_bytes(const dc_bert *m);
/* Whether forwards may be recorded as graphs (the backend has them and has not refused them);
 * small batches then run padded to their bucket (models/encoder_graphs.h). */
bool dc_bert_graphs_on(const dc_bert *m);

/* A packed batch: sequence s is rows [start[s], start[s+1]) of ids / type_ids / key_mask. */
typedef struct dc_bert_batch {
    uint32_t n_seqs;
    const uint32_t *start;
    const uint32_t *ids;
    const uint32_t *type_ids; /* NULL: all 0 */
    const uint8_t *key_mask;  /* NULL: every token may be attended to */
} dc_bert_batch;

/* Last hidden states, rows × hidden floats (host memory) in `hidden_out`. Ids outside the
 * vocabulary are DC_ERR_INVALID_VALUE; a sequence longer than dc_bert_max_tokens is
 * DC_ERR_INPUT_TOO_LONG. RoBERTa/Longformer positions follow transformers'
 * create_position_ids_from_input_ids (a pad id inside a sequence gets position pad_token_id
 * and is not counted). Longformer runs without padding to a multiple of the window: padded
 * keys are excluded from every softmax in the reference, so they cannot change a real row. */
dc_status dc_bert_forward(dc_bert *m, const dc_bert_batch *b, float *hidden_out);
/* The same with Longformer's global attention: global_mask has one byte per row, 1 = global
 * (HF global_attention_mask); NULL = none, as LongformerModel does by default. Ignored by the
 * other kinds. */
dc_status dc_bert_forward_global(dc_bert *m, const dc_bert_batch *b, const uint8_t *global_mask,
                                 float *hidden_out);

#endif

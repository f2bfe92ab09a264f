/* Constructors of the pretrained models (E1, E5, E6, E7, E8, E10, E11, E12) and their extra
 * outputs. Internal header.
 *
 * Each constructor returns an unloaded dc_model; dc_model_load reads the Hugging Face folder
 * (config.json, tokenizer.json, weights, sentence-transformers files). Release with
 * dc_model_destroy. */
#ifndef DC_MODELS_PRETRAINED_H
#define DC_MODELS_PRETRAINED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dodeca/config.h"
#include "dodeca/model.h"
#include "text/token_manager.h"
#include "tensor/backend.h"

/* Where a model runs: dc_pretrained_place resolves models.<name>.device under [gpu] into this.
 * All zero (kind auto) runs on the CPU: only dc_pretrained_place looks for a GPU. */
typedef struct dc_pretrained_device {
    dc_device_kind kind;    /* DC_DEVICE_CPU or DC_DEVICE_CUDA; DC_DEVICE_AUTO = the CPU */
    uint32_t index;         /* CUDA ordinal */
    double memory_fraction; /* of the device's memory for the shared backend's pool; 0 = 0.9 */
    bool allow_tf32;        /* f32 linears on TF32 tensor cores (dc_pretrained_place: never) */
    uint32_t green_partitions; /* gpu.green_partitions when gpu.green_contexts, else 0 */
    bool graphs;            /* gpu.use_cuda_graphs: repeated shapes replay as CUDA graphs */
    bool basic_attention;   /* !models.<name>.use_flash_attention: no tiled attention kernel */
    bool host_weights;      /* !gpu.direct_weights: the host reads the linears' weights */
    char note[192];         /* why "auto" stayed on the CPU ("" otherwise) */
} dc_pretrained_device;

typedef struct dc_pretrained_options {
    const char *model_dir; /* a model folder, or a hub cache repo folder (models--org--name) */
    uint32_t threads;      /* intra-op threads; 0 = OpenMP's default (OMP_NUM_THREADS / cores) */
    uint32_t max_tokens;   /* 0 = the recipe's limit; otherwise min(this, recipe limit) */
    uint32_t max_batch_tokens; /* token rows per forward; 0 = 16384 */
    /* How the encoder's linear layers hold their weights (embeddings, LayerNorm and the heads
     * stay f32; docs/precision.md). 0 = DC_WEIGHTS_F32. */
    dc_weight_format weights;
    /* [models.<name>] pooling / normalize (0 = auto: the model's recipe). Only the models
     * dc_pretrained_takes_overrides names accept others; creating any other model with one
     * is DC_ERR_INVALID_ARGUMENT. A pooling override pools every token row (specials
     * included) as sentence-transformers' Pooling does. */
    dc_pooling_mode pooling;
    dc_normalize_mode normalize;
    dc_pretrained_device device;
} dc_pretrained_options;

/* models.<name>.device and .quantization under [gpu] into o->device and o->weights:
 * "cpu" → the CPU; "cuda:N" → device N, or DC_ERR_GPU naming the key and why it cannot be had
 * (no library, no driver, no device, N out of range); "auto" → gpu.device_ids[0] when
 * gpu.enabled, the library loads and the device exists (and the quantization runs there),
 * else the CPU with the reason in o->device.note. Weights: none → fp32 (on CUDA without TF32),
 * bf16 → bf16, fp16 / fp8 → the CUDA formats (DC_ERR_UNSUPPORTED_FORMAT on the CPU), int8 →
 * the CPU's int8 (DC_ERR_UNSUPPORTED_FORMAT on CUDA). mc / gpu may be NULL (auto, none,
 * GPU disabled). */
dc_status dc_pretrained_place(dc_model_id id, const struct dc_model_config *mc,
                              const dc_gpu_config *gpu, dc_pretrained_options *o);

/* Where a loaded pretrained model runs: "cpu", "cuda:0 (NVIDIA H200)", or "cpu (auto: why
 * not cuda)"; "" for a model that is not loaded or not made by dc_pretrained_create. */
const char *dc_pretrained_backend_desc(const dc_model *m);
/* The CUDA graphs a loaded encoder model's stream context recorded and launched (all zero on
 * the CPU, or for a model not made by dc_pretrained_create). */
void dc_pretrained_graph_stats(const dc_model *m, uint64_t *recorded, uint64_t *launches,
                               uint64_t *failures);
/* Records the CUDA graphs of one-input forwards ahead of traffic: for each bucket
 * (models/encoder_graphs.h) up to max_tokens and the model's own limit, a text that the
 * model's tokenizer puts in that bucket is embedded twice (a layout is recorded on its second
 * sighting). The BERT family and E10, whose one-image vision batch is recorded too. *layouts:
 * the layouts recorded; 0 with DC_OK for a model whose backend has no graphs, or one not made
 * by dc_pretrained_create. */
dc_status dc_pretrained_warm_graphs(dc_model *m, uint32_t max_tokens, uint32_t *layouts);
/* E10's half of dc_pretrained_backend_desc. */
const char *dc_e10_backend_desc(const dc_model *m);
/* E10's halves of dc_pretrained_graph_stats and dc_pretrained_warm_graphs: its backend (NULL
 * unless loaded); whether its text forwards may be recorded, with the tokenizer's limit and
 * the tower's (false otherwise); the tokens a text input makes (0 when truncated). */
dc_backend *dc_e10_backend(const dc_model *m);
bool dc_e10_graph_limits(const dc_model *m, uint32_t *max_len, uint32_t *cap);
dc_status dc_e10_count_tokens(const dc_model *m, const dc_input *in, uint32_t *len);
/* Records E10's one-image vision forward (*ran: it did; false without graphs). */
dc_status dc_e10_warm_vision(dc_model *m, bool *ran);
/* o->weights against o->device: fp16 / fp8 need CUDA, int8 the CPU (DC_ERR_UNSUPPORTED_FORMAT
 * saying so); DC_ERR_INVALID_ARGUMENT for a value outside the enum. */
dc_status dc_pretrained_check_weights(const dc_pretrained_options *o);

/* E1, E5, E7, E8, E11: the models whose pooling and normalisation a configuration may
 * override (E6, E10, E12 pool by definition). */
bool dc_pretrained_takes_overrides(dc_model_id id);

/* Which models this file family implements. */
bool dc_pretrained_supports(dc_model_id id);

/* Creates E1, E5, E6, E7, E8, E10, E11 or E12. The options (and the directory string) are copied.
 * DC_ERR_MODEL_NOT_FOUND for other ids. */
dc_status dc_pretrained_create(dc_model_id id, const dc_pretrained_options *opt, dc_model **out);

/* Per-model constructors (the same as dc_pretrained_create with that id). */
dc_status dc_e1_create(const dc_pretrained_options *opt, dc_model **out);
dc_status dc_e5_create(const dc_pretrained_options *opt, dc_model **out);
dc_status dc_e6_create(const dc_pretrained_options *opt, dc_model **out);
dc_status dc_e7_create(const dc_pretrained_options *opt, dc_model **out);
dc_status dc_e8_create(const dc_pretrained_options *opt, dc_model **out);
dc_status dc_e10_create(const dc_pretrained_options *opt, dc_model **out);
dc_status dc_e11_create(const dc_pretrained_options *opt, dc_model **out);
dc_status dc_e12_create(const dc_pretrained_options *opt, dc_model **out);

/* The weight format a `quantization` config value asks for: none → F32, bf16, int8;
 * DC_ERR_UNSUPPORTED_FORMAT naming the value for the others (fp16, fp8: no CPU path). */
dc_status dc_pretrained_weight_format(dc_quantization q, dc_weight_format *out);

/* Options from a [models.<name>] section: path (or models_dir/<name>), max_tokens,
 * quantization (an unsupported one leaves F32: the factory refuses it first). `dirbuf`
 * receives the directory the options point to. */
void dc_pretrained_options_from_config(dc_model_id id, const dc_model_config *cfg,
                                       const char *models_dir, char *dirbuf, size_t cap,
                                       dc_pretrained_options *out);

/* Last hidden states of one input as the model runs it (after its prefix / markers):
 * *rows is malloc'ed n_tokens × dim floats. For parity checks (`--hidden`). */
dc_status dc_pretrained_hidden(dc_model *m, const dc_input *in, float **rows, uint32_t *n_tokens,
                               uint32_t *dim);

/* Like dc_model_embed_batch but without the non-empty-content rule, so the empty string can be
 * embedded as the references do ([CLS] [SEP]). The model must be loaded. Works for every model
 * dc_pretrained_create makes (E10 included). */
dc_status dc_pretrained_embed_unchecked(dc_model *m, const dc_input *inputs, size_t n,
                                        dc_model_embedding *out);

/* ---- shared tokenisation and one forward for every output (DESIGN §3) ---- */

/* What a loaded encoder model (E1, E5, E6, E7, E8, E11, E12; not E10) asks of a shared
 * tokenization for one input: req[0] for its vector and, for an E12 query input whose token
 * rows are wanted, req[1] for the query-mode rows. The family field is left to the caller (it
 * names the caller's tokenizer slot). *n = 0: this model tokenises for itself. */
dc_status dc_pretrained_token_requests(dc_model *m, const dc_input *in, bool want_extra,
                                       dc_token_request req[2], uint32_t *n);

/* The folder a loaded encoder model read its tokenizer.json from and the XXH3-128 of that
 * file: models with the same fingerprint tokenise alike. DC_ERR_UNSUPPORTED_FORMAT when the
 * model has no tokenizer.json (or is not an encoder model). */
dc_status dc_pretrained_tokenizer_source(dc_model *m, char *dir, size_t cap, dc_hash128 *fp);

/* One input tokenised elsewhere, as dc_pretrained_token_requests asked (n = 0: not given). */
typedef struct dc_pretokenized {
    const dc_encoding *enc[2];
    uint32_t n;
} dc_pretokenized;

/* dc_model_embed_batch (same validation and errors) that also returns E6's SPLADE weights
 * (sparse) or E12's token rows (rows, query mode for DC_ROLE_QUERY inputs) for the items whose
 * want_extra is true, from the same forward that gives the vectors — E12 query inputs run a
 * second, query-mode sequence. pre (NULL, or n entries) gives shared tokenizations; the rest
 * are tokenised here. sparse / rows: n entries or NULL; entries not wanted stay empty. Works
 * for every pretrained model (E10 and models with no extra output just embed). The outputs
 * equal dc_model_embed_batch + dc_splade_encode / dc_colbert_encode bit for bit. On failure
 * nothing is left allocated. */
dc_status dc_pretrained_embed_ex(dc_model *m, const dc_input *inputs, size_t n,
                                 const dc_pretokenized *pre, const bool *want_extra,
                                 dc_model_embedding *out, dc_sparse_vector *sparse,
                                 dc_token_matrix *rows);

/* Encoder forwards (dc_encoder_run calls) since the process started; for tests. */
uint64_t dc_pretrained_forward_count(void);

/* ---- E10 CLIP ---- */

/* dc_pretrained_embed_unchecked for E10 (text and image inputs; "" embeds as
 * <|startoftext|><|endoftext|>). */
dc_status dc_e10_embed_unchecked(dc_model *m, const dc_input *inputs, size_t n,
                                 dc_model_embedding *out);

/* ---- E6 SPLADE ---- */

/* The SPLADE weights over the vocabulary (indices ascending, values > 0) for each input;
 * out[i] is released with dc_sparse_vector_free. */
dc_status dc_splade_encode(dc_model *m, const dc_input *inputs, size_t n, dc_sparse_vector *out);
void dc_sparse_vector_free(dc_sparse_vector *v);

/* ---- E12 ColBERT ---- */

typedef enum dc_colbert_mode {
    DC_COLBERT_AUTO = 0,     /* query for DC_ROLE_QUERY inputs, document otherwise */
    DC_COLBERT_QUERY = 1,    /* [Q] marker, [MASK] padding to the query length (32) */
    DC_COLBERT_DOCUMENT = 2, /* [D] marker, punctuation skiplist, doc max length */
} dc_colbert_mode;

/* Token rows (L2-normalised, 128 wide) of one input; release with dc_token_matrix_free. */
dc_status dc_colbert_encode(dc_model *m, const dc_input *in, dc_colbert_mode mode,
                            dc_token_matrix *out);
void dc_token_matrix_free(dc_token_matrix *t);
/* MaxSim: Σ over query rows of the max dot product with any document row. */
double dc_colbert_maxsim(const dc_token_matrix *query, const dc_token_matrix *doc);

#endif

/* The machinery shared by the pretrained BERT-family models: folder resolution, tokenizer,
 * encoder, sentence-transformers files, packed batching under a token budget, and a recipe
 * table through which each model (one file each) supplies its tokenisation and its head. */
#ifndef DC_MODELS_ENCODER_MODEL_H
#define DC_MODELS_ENCODER_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dodeca/model.h"
#include "io/weights.h"
#include "models/bert.h"
#include "models/pooling.h"
#include "models/pretrained.h"
#include "tensor/backend.h"
#include "text/tokenizer.h"

typedef struct dc_encoder_model dc_encoder_model;

/* One input as token rows. mask NULL = every row may be attended to. */
typedef struct dc_enc_seq {
    uint32_t *ids;
    uint8_t *mask;
    uint8_t *global;   /* Longformer global attention per row; NULL = none */
    uint32_t len;
    uint32_t tokens_used;
    bool truncated;
    int mode;          /* recipe-defined (ColBERT query / document) */
} dc_enc_seq;

void dc_enc_seq_free(dc_enc_seq *s);

typedef struct dc_encoder_recipe {
    dc_model_id id;
    uint32_t max_tokens;   /* the recipe's limit when the folder does not give one */
    bool read_st_files;    /* modules.json & co. decide pooling / normalisation */
    bool normalize;        /* L2 always (E1, E5, E7), whatever modules.json says */
    /* Optional: reads head tensors after the encoder (weights still open). */
    dc_status (*load_head)(dc_encoder_model *em, const dc_weights *w);
    void (*free_head)(dc_encoder_model *em);
    /* Optional: tokenises one input; default = text (with prefix()) truncated to max_len. */
    dc_status (*tokenize)(dc_encoder_model *em, const dc_input *in, dc_enc_seq *seq);
    /* Optional: text prepended before tokenising (E1 "query: " / "passage: "). */
    const char *(*prefix)(const dc_input *in);
    /* Turns the rows of one sequence into its vector of info->dim floats; default = the
     * sentence-transformers pooling (+ L2 when em->normalize). Not called when the options
     * override the pooling (the default runs then); must honour em->normalize. */
    dc_status (*finish)(dc_encoder_model *em, const dc_input *in, const dc_enc_seq *seq,
                        const float *rows, float *vec);
} dc_encoder_recipe;

struct dc_encoder_model {
    const dc_encoder_recipe *recipe;
    const dc_model_info *info;
    char dir[4096];       /* resolved at load */
    char dir_given[4096];
    dc_pretrained_options opt;
    dc_backend *be;
    dc_tokenizer *tok;
    dc_bert *bert;
    dc_st_config st;      /* pooling here is the effective one (after an override) */
    bool normalize;       /* effective: the override, else recipe->normalize || st.normalize */
    uint32_t max_len;     /* tokens incl. specials */
    char backend_desc[256]; /* where it runs (dc_pretrained_backend_desc); set at load */
    void *head;           /* recipe state */
    size_t head_bytes;
};

/* Creates an unloaded model running `recipe`. */
dc_status dc_encoder_model_create(const dc_encoder_recipe *recipe, const dc_pretrained_options *opt,
                                  dc_model **out);
dc_encoder_model *dc_encoder_model_of(dc_model *m);

/* Resolves a hub cache repo folder (models--org--name: refs/main → snapshots/<sha>) or returns
 * the folder itself. */
dc_status dc_model_dir_resolve(const char *dir, char *out, size_t cap);

/* Tokenises `text` (prefix + text) with truncation at max_len into seq. */
dc_status dc_encoder_tokenize_text(dc_encoder_model *em, const char *prefix, const char *text,
                                   size_t len, uint32_t max_len, dc_enc_seq *seq);

/* Runs the encoder over n prepared sequences (packed, split under the token budget) and
 * calls fn(ctx, i, rows) for each sequence in order. */
typedef dc_status (*dc_enc_rows_fn)(void *ctx, size_t i, const float *rows);
dc_status dc_encoder_run(dc_encoder_model *em, const dc_enc_seq *seqs, size_t n,
                         dc_enc_rows_fn fn, void *ctx);

/* Tokenises each input through the recipe. On failure nothing is left allocated. */
dc_status dc_encoder_tokenize_all(dc_encoder_model *em, const dc_input *inputs, size_t n,
                                  dc_enc_seq **out);

#endif

/* Deterministic random-weight BERT, RoBERTa, Longformer and CLIP checkpoints in the exact
 * Hugging Face folder layout (config.json, model.safetensors, tokenizer.json or vocab.txt —
 * BERT — or vocab.json + merges.txt — RoBERTa/Longformer/CLIP byte-level BPE —,
 * tokenizer_config.json, special_tokens_map.json, preprocessor_config.json for CLIP, and the
 * sentence-transformers files where the kind has them).
 *
 * Self-contained C (no library, no Python): every value comes from SplitMix64 seeded by the
 * spec's seed and the tensor name, so a fixture is byte-identical on every run and host.
 * The vocabulary is small (specials, [unused0]/[unused1], punctuation, digits, letters and
 * their ## forms, a few words) and the tokenizer.json matches it. */
#ifndef DC_TESTS_BERT_FIXTURE_H
#define DC_TESTS_BERT_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

typedef enum dc_fixture_kind {
    DC_FIXTURE_BERT = 0,     /* plain BertModel, no sentence-transformers files */
    DC_FIXTURE_ST_NORM,      /* + modules.json Transformer → Pooling(mean) → Normalize */
    DC_FIXTURE_ST,           /* + modules.json Transformer → Pooling(mean), no Normalize */
    DC_FIXTURE_SPLADE,       /* BertForMaskedLM ("bert." prefix, cls.predictions.*, tied decoder) */
    DC_FIXTURE_COLBERT,      /* HF_ColBERT ("bert." prefix, linear.weight [128, H]) */
    DC_FIXTURE_ROBERTA,      /* RobertaModel (+ pooler), "roberta." prefix when bert_prefix */
    DC_FIXTURE_LONGFORMER,   /* LongformerForMaskedLM layout: "longformer." prefix + lm_head */
    DC_FIXTURE_CLIP,         /* CLIPModel: text and vision towers, projections, logit_scale */
} dc_fixture_kind;

typedef struct dc_fixture_spec {
    dc_fixture_kind kind;
    uint32_t hidden, layers, heads, intermediate, max_position;
    uint32_t max_seq_length;  /* sentence_bert_config.json (ST kinds) */
    uint64_t seed;
    bool bert_prefix;         /* prefix encoder tensors with "bert." (SPLADE/ColBERT always) */
    bool legacy_names;        /* LayerNorm gamma/beta instead of weight/bias */
    bool position_ids;        /* add the int64 embeddings.position_ids buffer */
    const char *drop_tensor;  /* omit this tensor (bad-checkpoint tests); NULL = none */
    const char *bad_shape;    /* give this tensor one extra row (bad-checkpoint tests) */
    uint32_t window;          /* Longformer: attention_window of layer i is window·(i+1) */
    /* CLIP: the text tower uses hidden/layers/heads/intermediate (77 positions); the vision
     * tower these (224×224 images, 14×14 patches); both project to projection_dim. */
    uint32_t vision_hidden, vision_layers, vision_heads, vision_intermediate;
    uint32_t projection_dim;
} dc_fixture_spec;

/* The spec each model's parity fixture uses ("e1", "e6", "e8", "e11", "e12", "bert", "e7",
 * "roberta", "e5", "longformer", "clip");
 * false for an unknown name. */
bool dc_fixture_named(const char *name, dc_fixture_spec *out);

/* Writes the folder (created if needed). Returns 0, or -1 with a message on stderr. */
int dc_fixture_write(const char *dir, const dc_fixture_spec *spec);

#endif

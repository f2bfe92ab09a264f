/* The model manifest (seed S13): repos, pinned revisions and files, from
 * reference/models.md. Revisions are the commits models.md saw on main where it names one;
 * the others follow main (docs/models.md says which and why). */
#include "io/manifest.h"

#define REQ DC_MANIFEST_REQUIRED
#define OPT DC_MANIFEST_OPTIONAL
#define WTS DC_MANIFEST_WEIGHTS
#define MB (1000ull * 1000ull)
#define N(a) (sizeof(a) / sizeof((a)[0]))

/* BERT WordPiece tokenizer files (tokenizer.json is what the tokenizer reads; vocab.txt is
 * the fallback and the reference for other tools). */
#define BERT_TOKENIZER                                                                             \
    {"tokenizer.json", REQ, 0}, {"tokenizer_config.json", OPT, 0},                                \
        {"special_tokens_map.json", OPT, 0}, {"vocab.txt", OPT, 0}

/* sentence-transformers recipe: module list, max_seq_length, pooling mode. */
#define ST_FILES                                                                                   \
    {"modules.json", REQ, 0}, {"sentence_bert_config.json", REQ, 0},                              \
        {"1_Pooling/config.json", REQ, 0}

static const dc_manifest_file e1_files[] = {
    {"config.json", REQ, 0}, BERT_TOKENIZER, ST_FILES,
    {"model.safetensors", WTS, 0}, {"pytorch_model.bin", WTS, 0},
};
/* main has pytorch_model.bin only; tokenizer.json was copied from roberta-large */
static const dc_manifest_file e5_files[] = {
    {"config.json", REQ, 0},        {"tokenizer.json", REQ, 0},    {"tokenizer_config.json", OPT, 0},
    {"vocab.json", OPT, 0},         {"merges.txt", OPT, 0},        {"pytorch_model.bin", WTS, 0},
};
static const dc_manifest_file e6_files[] = {
    {"config.json", REQ, 0}, BERT_TOKENIZER, {"pytorch_model.bin", WTS, 0},
};
/* no tokenizer.json: the BPE is built from vocab.json + merges.txt */
static const dc_manifest_file e7_files[] = {
    {"config.json", REQ, 0},          {"vocab.json", REQ, 0},
    {"merges.txt", REQ, 0},           {"tokenizer_config.json", OPT, 0},
    {"special_tokens_map.json", OPT, 0}, {"pytorch_model.bin", WTS, 0},
};
static const dc_manifest_file st_minilm_files[] = {
    {"config.json", REQ, 0}, BERT_TOKENIZER, ST_FILES,
    {"config_sentence_transformers.json", OPT, 0},
    {"model.safetensors", WTS, 0}, {"pytorch_model.bin", WTS, 0},
};
static const dc_manifest_file e10_files[] = {
    {"config.json", REQ, 0},
    {"preprocessor_config.json", REQ, 0},
    {"tokenizer.json", REQ, 0},
    {"tokenizer_config.json", OPT, 0},
    {"special_tokens_map.json", OPT, 0},
    {"vocab.json", OPT, 0},
    {"merges.txt", OPT, 0},
    {"model.safetensors", WTS, 1710540580ull}, /* size from models.md */
    {"pytorch_model.bin", WTS, 0},
};
static const dc_manifest_file e12_files[] = {
    {"config.json", REQ, 0}, BERT_TOKENIZER, {"artifact.metadata", OPT, 0},
    {"model.safetensors", WTS, 0}, {"pytorch_model.bin", WTS, 0},
};

static const dc_model_manifest manifests[] = {
    {DC_MODEL_SEMANTIC, "intfloat/e5-large-v2", "main",
     "main: models.md names b322e09 only for config.json, not for the merged model.safetensors",
     e1_files, N(e1_files), 1345 * MB, "MIT"},
    {DC_MODEL_CAUSAL, "allenai/longformer-base-4096", "6daa1ab",
     "main as models.md saw it (pytorch_model.bin only)", e5_files, N(e5_files), 599 * MB,
     "Apache-2.0"},
    {DC_MODEL_SPARSE, "naver/splade-cocondenser-ensembledistil", "25178a6",
     "main as models.md saw it (pytorch_model.bin only)", e6_files, N(e6_files), 440 * MB,
     "CC BY-NC-SA 4.0 (non-commercial)"},
    {DC_MODEL_CODE, "microsoft/codebert-base", "3b0952feddeffad0063f274080e3c23d75e7eb39",
     "main as models.md saw it (pytorch_model.bin, no tokenizer.json)", e7_files, N(e7_files),
     500 * MB, "no license on the model card; the CodeBERT code repository is MIT"},
    {DC_MODEL_GRAPH, "sentence-transformers/paraphrase-MiniLM-L6-v2", "3bf4ae7",
     "the tree models.md read (model.safetensors merged in PR #4)", st_minilm_files,
     N(st_minilm_files), 92 * MB, "Apache-2.0"},
    {DC_MODEL_MULTIMODAL, "openai/clip-vit-large-patch14", "main",
     "main: models.md gives no commit (its facts come from copies of the repo)", e10_files,
     N(e10_files), 1716 * MB,
     "no license on the model card; the openai/CLIP code repository is MIT"},
    {DC_MODEL_ENTITY, "sentence-transformers/all-MiniLM-L6-v2", "main",
     "main: models.md gives no commit", st_minilm_files, N(st_minilm_files), 92 * MB,
     "Apache-2.0"},
    {DC_MODEL_LATE_INTERACTION, "colbert-ir/colbertv2.0", "c1e8412",
     "main as models.md saw it on 2024-04-05 (model.safetensors merged in #3)", e12_files,
     N(e12_files), 440 * MB, "MIT"},
};

const dc_model_manifest *dc_manifest_get(dc_model_id id) {
    for (size_t i = 0; i < N(manifests); i++)
        if (manifests[i].id == id) return &manifests[i];
    return NULL;
}

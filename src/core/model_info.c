/* The static table of the twelve models (DESIGN §2, seed F01/F02/F07/F10). */
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "dodeca/types.h"

#define TEXT DC_INPUT_BIT(DC_INPUT_TEXT)
#define CODE DC_INPUT_BIT(DC_INPUT_CODE)
#define IMAGE DC_INPUT_BIT(DC_INPUT_IMAGE)
#define MB (1024ull * 1024ull)

/* Memory estimates are conservative resident sizes in fp32: the checkpoint plus working buffers
 * for one max-length batch. The seed's figures are raised where the published checkpoint is
 * larger (e5-large-v2 1.34 GB, CLIP ViT-L/14 1.71 GB). Offsets are filled in by position. */
static const dc_model_info dc_models[DC_NUM_MODELS] = {
    {DC_MODEL_SEMANTIC, "semantic", "E1", "e5-large-v2", DC_MODEL_KIND_PRETRAINED,
     "intfloat/e5-large-v2", 1024, DC_DIM_SEMANTIC, 0, 512, TEXT, "bert-uncased", 1536 * MB},
    {DC_MODEL_TEMPORAL_RECENT, "temporal_recent", "E2", "temporal-recent", DC_MODEL_KIND_CUSTOM,
     NULL, 512, DC_DIM_TEMPORAL_RECENT, 1024, 0, TEXT | CODE, NULL, 10 * MB},
    {DC_MODEL_TEMPORAL_PERIODIC, "temporal_periodic", "E3", "temporal-periodic",
     DC_MODEL_KIND_CUSTOM, NULL, 512, DC_DIM_TEMPORAL_PERIODIC, 1536, 0, TEXT | CODE, NULL,
     10 * MB},
    {DC_MODEL_TEMPORAL_POSITIONAL, "temporal_positional", "E4", "temporal-positional",
     DC_MODEL_KIND_CUSTOM, NULL, 512, DC_DIM_TEMPORAL_POSITIONAL, 2048, 0, TEXT | CODE, NULL,
     10 * MB},
    {DC_MODEL_CAUSAL, "causal", "E5", "longformer-base-4096", DC_MODEL_KIND_PRETRAINED,
     "allenai/longformer-base-4096", 768, DC_DIM_CAUSAL, 2560, 4096, TEXT | CODE, "roberta-bpe",
     768 * MB},
    {DC_MODEL_SPARSE, "sparse", "E6", "splade-cocondenser-ensembledistil",
     DC_MODEL_KIND_PRETRAINED, "naver/splade-cocondenser-ensembledistil", DC_SPARSE_VOCAB_SIZE,
     DC_DIM_SPARSE_PROJECTED, 3328, 512, TEXT, "bert-uncased", 640 * MB},
    {DC_MODEL_CODE, "code", "E7", "codebert-base", DC_MODEL_KIND_PRETRAINED,
     "microsoft/codebert-base", 768, DC_DIM_CODE, 4864, 512, TEXT | CODE, "roberta-bpe",
     640 * MB},
    {DC_MODEL_GRAPH, "graph", "E8", "paraphrase-MiniLM-L6-v2", DC_MODEL_KIND_PRETRAINED,
     "sentence-transformers/paraphrase-MiniLM-L6-v2", 384, DC_DIM_GRAPH, 5632, 128, TEXT,
     "bert-uncased", 128 * MB},
    {DC_MODEL_HDC, "hdc", "E9", "hdc", DC_MODEL_KIND_CUSTOM, NULL, DC_HDC_BITS, DC_DIM_HDC, 6016,
     4096, TEXT | CODE, NULL, 50 * MB},
    {DC_MODEL_MULTIMODAL, "multimodal", "E10", "clip-vit-large-patch14", DC_MODEL_KIND_PRETRAINED,
     "openai/clip-vit-large-patch14", 768, DC_DIM_MULTIMODAL, 7040, 77, TEXT | IMAGE, "clip-bpe",
     1984 * MB},
    {DC_MODEL_ENTITY, "entity", "E11", "all-MiniLM-L6-v2", DC_MODEL_KIND_PRETRAINED,
     "sentence-transformers/all-MiniLM-L6-v2", 384, DC_DIM_ENTITY, 7808, 256, TEXT,
     "bert-uncased", 128 * MB},
    {DC_MODEL_LATE_INTERACTION, "late_interaction", "E12", "colbertv2.0",
     DC_MODEL_KIND_PRETRAINED, "colbert-ir/colbertv2.0", 128, DC_DIM_LATE_INTERACTION, 8192, 300,
     TEXT, "bert-uncased", 576 * MB},
};

/* The offsets above are written out for readability; these prove they are the running sums. */
_Static_assert(DC_DIM_SEMANTIC + 3 * 512 == 2560, "E5 offset");
_Static_assert(2560 + DC_DIM_CAUSAL + DC_DIM_SPARSE_PROJECTED == 4864, "E7 offset");
_Static_assert(4864 + DC_DIM_CODE + DC_DIM_GRAPH + DC_DIM_HDC == 7040, "E10 offset");
_Static_assert(7040 + DC_DIM_MULTIMODAL + DC_DIM_ENTITY == 8192, "E12 offset");
_Static_assert(8192 + DC_DIM_LATE_INTERACTION == DC_DIM_CONCATENATED, "total");

const dc_model_info *dc_model_info_get(dc_model_id id) {
    if ((unsigned)id >= DC_NUM_MODELS) return NULL;
    return &dc_models[id];
}

dc_status dc_model_id_parse(const char *name, dc_model_id *out) {
    if (!name || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "dc_model_id_parse: NULL argument");
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        const dc_model_info *m = &dc_models[i];
        if (strcmp(name, m->name) == 0 || strcasecmp(name, m->label) == 0 ||
            strcasecmp(name, m->short_name) == 0) {
            *out = m->id;
            return DC_OK;
        }
    }
    return dc_fail(DC_ERR_MODEL_NOT_FOUND,
                   "unknown model \"%s\" (expected a name such as \"semantic\", a label \"E1\".."
                   "\"E12\" or a model name such as \"e5-large-v2\")",
                   name);
}

bool dc_model_accepts(dc_model_id id, dc_input_type type) {
    const dc_model_info *m = dc_model_info_get(id);
    return m && (unsigned)type < DC_NUM_INPUT_TYPES && (m->input_mask & DC_INPUT_BIT(type));
}

static const char *const dc_input_type_names[DC_NUM_INPUT_TYPES] = {"text", "code", "image",
                                                                    "audio"};

const char *dc_input_type_name(dc_input_type type) {
    return (unsigned)type < DC_NUM_INPUT_TYPES ? dc_input_type_names[type] : "unknown";
}

dc_status dc_input_type_parse(const char *name, dc_input_type *out) {
    for (int i = 0; name && i < DC_NUM_INPUT_TYPES; i++) {
        if (strcmp(name, dc_input_type_names[i]) == 0) {
            *out = (dc_input_type)i;
            return DC_OK;
        }
    }
    return dc_fail(DC_ERR_INVALID_ARGUMENT,
                   "unknown input type \"%s\" (expected text, code, image or audio)",
                   name ? name : "(null)");
}

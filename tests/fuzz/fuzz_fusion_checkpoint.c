/* Fuzz target: FuseMoE checkpoints (safetensors + fusion metadata). Any bytes load cleanly or
 * fail with a status; weights that load are finite, have the shapes their metadata promises, and
 * fuse an input into a unit vector with valid routing facts. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dodeca/dodeca.h"
#include "fusion/fusemoe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dc_fusion_options o;
    dc_fusion_options_default(&o);
    o.verify_checksum = size % 2 == 0; /* exercise both: checksum refusal, and the checks after */
    dc_fusion_weights *w = NULL;
    if (dc_fusion_weights_load_memory(data, size, "fuzz", &o, &w) != DC_OK) {
        if (w) abort(); /* a failed load returns nothing */
        return 0;
    }
    const dc_fusion_options *wo = dc_fusion_weights_options(w);
    if (wo->num_experts < 1 || wo->num_experts > DC_NUM_EXPERTS || wo->hidden < 1 ||
        wo->top_k > wo->num_experts)
        abort();
    /* a small hidden size keeps fuzzing fast; larger checkpoints are still fully validated */
    if (wo->hidden <= 64) {
        dc_fusemoe *f = NULL;
        if (dc_fusemoe_create_from(w, NULL, &f) != DC_OK) abort();
        dc_concat_embedding *c = calloc(1, sizeof *c);
        if (!c) abort();
        for (int i = 0; i < DC_DIM_CONCATENATED; i++) c->vector[i] = (float)((i % 7) - 3) * 0.01f;
        c->present_mask = DC_ALL_MODELS_MASK;
        const dc_concat_embedding *in[1] = {c};
        dc_fused_embedding out;
        dc_fused_init(&out);
        dc_status st = dc_fusemoe_forward(f, in, 1, &out);
        /* huge but finite weights may overflow to a non-finite sum: then an error, never NaN */
        if (st == DC_OK && dc_fused_validate(&out) != DC_OK) abort();
        free(c);
        dc_fusemoe_destroy(f);
    }
    dc_fusion_weights_release(w);
    return 0;
}

/* examples/embed.c — the smallest use of libdodeca: open the twelve-model pipeline, embed two
 * texts in one call, print the cosine of their fused vectors.
 *
 *   ./example_embed "The quick brown fox" "A fast auburn fox"
 *
 * The configuration is the defaults plus DODECA_<SECTION>_<KEY> environment variables, e.g.
 * DODECA_MODELS_MODELS_DIR=~/.cache/huggingface/hub to use the models `dodeca pull` fetched
 * (without them the custom models E2, E3, E4 and E9 run alone). Outside this build:
 *   cc embed.c -I include -L build -ldodeca -Wl,-rpath,"$PWD/build" -o example_embed */
#include <stdio.h>
#include <string.h>

#include <dodeca/dodeca.h>

extern char **environ; /* POSIX */

int main(int argc, char **argv) {
    const char *a = argc > 1 ? argv[1] : "The quick brown fox jumps over the lazy dog";
    const char *b = argc > 2 ? argv[2] : "A fast auburn fox leaps over a sleepy dog";

    dc_config cfg;
    dc_config_defaults(&cfg);
    dc_status st = dc_config_apply_env(&cfg, environ);
    dc_pipeline *p = NULL;
    if (st == DC_OK) st = dc_pipeline_open(&cfg, &p);
    if (st != DC_OK) {
        fprintf(stderr, "cannot open the pipeline: %s: %s\n", dc_status_name(st),
                dc_error_detail());
        return 1;
    }

    /* Inputs borrow their bytes; the results own theirs until dc_pipeline_result_free. */
    dc_input in[2] = {dc_input_text(a, strlen(a), DC_ROLE_PASSAGE),
                      dc_input_text(b, strlen(b), DC_ROLE_PASSAGE)};
    dc_pipeline_result r[2];
    st = dc_pipeline_embed_batch(p, in, 2, r, NULL);
    if (st != DC_OK) {
        fprintf(stderr, "embedding failed: %s: %s\n", dc_status_name(st), dc_error_detail());
        for (int i = 0; i < 2; i++) dc_pipeline_result_free(&r[i]);
        dc_pipeline_close(p);
        return 1;
    }

    printf("models:");
    for (int i = 0; i < DC_NUM_MODELS; i++)
        if (r[0].fused.present_mask & (1u << i))
            printf(" %s", dc_model_info_get((dc_model_id)i)->label);
    printf("\ncosine: %.6f\n", dc_vec_cosine(r[0].fused.vector, r[1].fused.vector, DC_DIM_FUSED));

    for (int i = 0; i < 2; i++) dc_pipeline_result_free(&r[i]);
    dc_pipeline_close(p);
    return 0;
}

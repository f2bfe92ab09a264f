/* `dodeca models [--json]`: the twelve-model table. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "dodeca/dodeca.h"

static void input_list(const dc_model_info *m, char *buf, size_t cap) {
    buf[0] = '\0';
    for (int t = 0; t < DC_NUM_INPUT_TYPES; t++) {
        if (!(m->input_mask & DC_INPUT_BIT(t))) continue;
        if (buf[0]) strncat(buf, ",", cap - strlen(buf) - 1);
        strncat(buf, dc_input_type_name((dc_input_type)t), cap - strlen(buf) - 1);
    }
}

static void print_table(void) {
    printf("%-4s %-20s %-10s %-46s %6s %6s %6s %5s  %s\n", "id", "name", "kind", "model", "dim",
           "native", "offset", "max", "inputs");
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        const dc_model_info *m = dc_model_info_get((dc_model_id)i);
        char inputs[64];
        input_list(m, inputs, sizeof inputs);
        printf("%-4s %-20s %-10s %-46s %6u %6u %6u %5u  %s\n", m->label, m->name,
               m->kind == DC_MODEL_KIND_CUSTOM ? "custom" : "pretrained",
               m->repo ? m->repo : "(computed)", (unsigned)m->dim, (unsigned)m->native_dim,
               (unsigned)m->offset, (unsigned)m->max_tokens, inputs);
    }
    printf("concatenated %d -> fused %d (%d experts, top-%d)\n", DC_DIM_CONCATENATED,
           DC_DIM_FUSED, DC_NUM_EXPERTS, DC_DEFAULT_TOP_K);
}

/* Names and repo ids are fixed ASCII from our own table, so no JSON escaping is needed. */
static void print_json(void) {
    printf("[");
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        const dc_model_info *m = dc_model_info_get((dc_model_id)i);
        char inputs[64];
        input_list(m, inputs, sizeof inputs);
        printf("%s\n  {\"id\": \"%s\", \"name\": \"%s\", \"model\": \"%s\", \"kind\": \"%s\", "
               "\"repo\": %s%s%s, \"dim\": %u, \"native_dim\": %u, \"offset\": %u, "
               "\"max_tokens\": %u, \"inputs\": \"%s\", \"memory_estimate\": %llu}",
               i ? "," : "", m->label, m->name, m->short_name,
               m->kind == DC_MODEL_KIND_CUSTOM ? "custom" : "pretrained", m->repo ? "\"" : "",
               m->repo ? m->repo : "null", m->repo ? "\"" : "", (unsigned)m->dim,
               (unsigned)m->native_dim, (unsigned)m->offset, (unsigned)m->max_tokens, inputs,
               (unsigned long long)m->memory_estimate);
    }
    printf("\n]\n");
}

int dc_cmd_models(int argc, char **argv) {
    if (argc == 1) {
        print_table();
        return DC_EXIT_OK;
    }
    if (argc == 2 && strcmp(argv[1], "--json") == 0) {
        print_json();
        return DC_EXIT_OK;
    }
    fprintf(stderr, "usage: dodeca models [--json]\n");
    return DC_EXIT_USAGE;
}

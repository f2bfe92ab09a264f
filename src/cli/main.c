/* `dodeca` — the command-line entry point: dispatches to one subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "dodeca/dodeca.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command dc_commands[] = {
    {"models", dc_cmd_models, "list the twelve models, their dimensions and inputs"},
    {"config", dc_cmd_config, "check a configuration file or show the effective configuration"},
    {"inspect", dc_cmd_inspect, "list the tensors of a safetensors or pytorch_model.bin file"},
    {"tokenize", dc_cmd_tokenize, "tokenize JSON lines with a tokenizer.json or model folder"},
    {"embed", dc_cmd_embed, "embed texts, code or images with the twelve-model pipeline"},
    {"encode", dc_cmd_encode, "embed JSON lines with one model"},
    {"scrub", dc_cmd_scrub, "remove PII and secrets from text or JSON lines"},
    {"fusion", dc_cmd_fusion, "train or inspect the FuseMoE fusion weights"},
    {"pull", dc_cmd_pull, "download model files from the Hugging Face hub, or check the cache"},
    {"serve", dc_cmd_serve, "serve the HTTP API (OpenAI-compatible /v1/embeddings and more)"},
    {"info", dc_cmd_info, "version, CPU kernels, the active backend and why, GPU devices"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: dodeca <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof dc_commands / sizeof dc_commands[0]; i++)
        fprintf(out, "  %-10s %s\n", dc_commands[i].name, dc_commands[i].summary);
    fprintf(out, "\n  --version  print the version\n  --help     print this help\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return DC_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("dodeca %s\n", dc_version());
        return DC_EXIT_OK;
    }
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        usage(stdout);
        return DC_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof dc_commands / sizeof dc_commands[0]; i++)
        if (strcmp(name, dc_commands[i].name) == 0) return dc_commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "dodeca: unknown command \"%s\"\n\n", name);
    usage(stderr);
    return DC_EXIT_USAGE;
}

/* The `dodeca` subcommands. Each takes the arguments after its name (argv[0] is the
 * subcommand) and returns the process exit code:
 *   0 success, 1 the operation failed (detail on stderr), 2 usage error. */
#ifndef DC_CLI_COMMANDS_H
#define DC_CLI_COMMANDS_H

enum { DC_EXIT_OK = 0, DC_EXIT_FAILURE = 1, DC_EXIT_USAGE = 2 };

int dc_cmd_models(int argc, char **argv);
int dc_cmd_config(int argc, char **argv);  /* config check FILE | config show [FILE] */
int dc_cmd_inspect(int argc, char **argv); /* inspect PATH */
int dc_cmd_tokenize(int argc, char **argv); /* tokenize --tokenizer PATH ... (JSONL on stdin) */
int dc_cmd_encode(int argc, char **argv);   /* encode --model ID (JSONL on stdin) */
int dc_cmd_embed(int argc, char **argv);    /* embed [TEXT...] [-i FILE]: the twelve-model pipeline */
int dc_cmd_fusion(int argc, char **argv);   /* fusion train|info ... */
int dc_cmd_scrub(int argc, char **argv);    /* scrub: PII and secrets out of text or JSONL */
int dc_cmd_pull(int argc, char **argv);     /* pull: model files from the Hugging Face hub */
int dc_cmd_serve(int argc, char **argv);    /* serve: the HTTP API */

int dc_cmd_info(int argc, char **argv);     /* info: version, CPU, backend, GPUs */

#endif

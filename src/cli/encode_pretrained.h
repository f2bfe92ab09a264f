/* `dodeca encode --model E1|E5|E6|E7|E8|E10|E11|E12 --model-dir PATH`: the pretrained models
 * over JSON lines (text; code for E5/E7; image paths for E10). Called by dc_cmd_encode for those ids (same argv: argv[0] is "encode"). */
#ifndef DC_CLI_ENCODE_PRETRAINED_H
#define DC_CLI_ENCODE_PRETRAINED_H

#include <stdbool.h>

#include "dodeca/types.h"

/* True for the ids dc_cmd_encode_pretrained serves. */
bool dc_cli_is_pretrained(dc_model_id id);
int dc_cmd_encode_pretrained(int argc, char **argv);

#endif

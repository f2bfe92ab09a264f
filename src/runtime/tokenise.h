/* The tokenise stage (DESIGN §3): before a request's jobs are queued, its text is tokenised
 * once per tokenizer — models whose tokenizer files are the same (E1, E6, E8, E11, E12 share
 * BERT-uncased; E5 and E7 RoBERTa BPE) share one tokenization through a dc_token_manager per
 * tokenizer — and each job carries its model's encoding to the executor. A model not loaded
 * yet, or with no tokenizer files (custom models, E10), tokenises for itself. Internal header. */
#ifndef DC_RUNTIME_TOKENISE_H
#define DC_RUNTIME_TOKENISE_H

#include <stddef.h>

#include "runtime/batch.h"
#include "runtime/registry.h"

typedef struct dc_tok_share dc_tok_share;

dc_status dc_tok_share_create(dc_rt_logger *log, dc_tok_share **out);
void dc_tok_share_destroy(dc_tok_share *s);

/* Fills pre_enc / pre_n / pre_version of the jobs whose model is a loaded encoder; jobs refer
 * to inputs 0..ninputs-1 by input_index. Failures only leave jobs without a shared
 * tokenization. Returns the number of tokenizations run (for tests and metrics). */
size_t dc_tok_share_fill(dc_tok_share *s, dc_registry *reg, dc_job *const *jobs, size_t njobs,
                         size_t ninputs);

/* Tokenizations run so far (one per input and tokenizer) and tokenizers loaded. */
uint64_t dc_tok_share_runs(const dc_tok_share *s);
uint32_t dc_tok_share_tokenizers(const dc_tok_share *s);

#endif

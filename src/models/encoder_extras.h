/* The extra outputs of E6 (SPLADE weights) and E12 (ColBERT rows) computed from the hidden
 * states of the forward that also gives their vectors, and E12's token requests for a shared
 * tokenization. Internal to the models layer (encoder_model.c calls these). */
#ifndef DC_MODELS_ENCODER_EXTRAS_H
#define DC_MODELS_ENCODER_EXTRAS_H

#include "models/encoder_model.h"

/* E6: the vector (as the recipe's finish) and, when sp is not NULL, the SPLADE weights, from
 * one computation of the weights. */
dc_status dc_e6_finish_ex(dc_encoder_model *em, const dc_enc_seq *seq, const float *rows,
                          float *vec, dc_sparse_vector *sp);

/* E12: the requests of one input (document mode for the vector; query mode for the rows of a
 * DC_ROLE_QUERY input when want_rows), the sequence a shared encoding stands for, the
 * query-mode sequence tokenised here, and the token rows of a sequence's hidden states. */
void dc_e12_requests(dc_encoder_model *em, const dc_input *in, bool want_rows,
                     dc_token_request req[2], uint32_t *n);
dc_status dc_e12_seq_from_encoding(const dc_encoding *enc, bool query, dc_enc_seq *seq);
dc_status dc_e12_query_seq(dc_encoder_model *em, const dc_input *in, dc_enc_seq *seq);
dc_status dc_e12_rows(dc_encoder_model *em, const dc_enc_seq *seq, const float *hidden,
                      dc_token_matrix *out);

#endif

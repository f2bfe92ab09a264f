/* `dodeca embed` output: JSON lines, a stream of FusedEmbedding encodings, or a .npy matrix.
 *
 * Binary stream (--output-format binary), all integers little-endian:
 *   header  "DCFS" (4 bytes), u32 version = 1
 *   record  u32 id_len, id_len bytes of the id as compact JSON, f64 t_ref,
 *           u32 enc_len, enc_len bytes of dc_fused_encode output ("DCFE", versioned, checksummed)
 * npy (--output-format npy): format 1.0, '<f4', C order, shape (N, 1536), one row per item in
 * input order; the ids of the rows optionally go to a side file, one JSON value a line. */
#ifndef DC_CLI_EMBED_OUTPUT_H
#define DC_CLI_EMBED_OUTPUT_H

#include <stdbool.h>
#include <stdint.h>

#include "dodeca/dodeca.h"

typedef enum dc_embed_output_format {
    DC_EMBED_OUT_JSONL = 0,
    DC_EMBED_OUT_BINARY = 1,
    DC_EMBED_OUT_NPY = 2,
} dc_embed_output_format;

dc_status dc_embed_output_format_parse(const char *s, dc_embed_output_format *out);

#define DC_EMBED_STREAM_MAGIC "DCFS"
#define DC_EMBED_STREAM_VERSION 1

typedef struct dc_embed_output_options {
    dc_embed_output_format format;
    bool per_model, sparse, colbert, routing, timings; /* JSON lines extras */
    const char *path;     /* NULL or "-": stdout */
    bool append;          /* --resume: add to an existing JSON lines file */
    const char *ids_path; /* npy: write the row ids here (NULL: nowhere) */
} dc_embed_output_options;

typedef struct dc_embed_writer dc_embed_writer;

dc_status dc_embed_writer_open(const dc_embed_output_options *opt, dc_embed_writer **out);
/* One embedded item. */
dc_status dc_embed_writer_result(dc_embed_writer *w, const char *id, const dc_pipeline_result *r);
/* One failed item: a {"id", "error"} line in JSON lines; nothing in the other formats. */
dc_status dc_embed_writer_error(dc_embed_writer *w, const char *id, const char *message);
/* Makes what was written durable in the file (flush); the npy header is final only at close. */
dc_status dc_embed_writer_flush(dc_embed_writer *w);
/* Finishes (npy: writes the row count), closes, frees. An error here means the output is
 * incomplete. NULL is a no-op. */
dc_status dc_embed_writer_close(dc_embed_writer *w);

/* Appends `s` as a JSON string literal (quotes and escapes) to a growable buffer. */
typedef struct dc_embed_buf {
    char *p;
    size_t len, cap;
    bool oom;
} dc_embed_buf;
void dc_embed_buf_puts(dc_embed_buf *b, const char *s);
void dc_embed_buf_printf(dc_embed_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dc_embed_buf_json_string(dc_embed_buf *b, const char *s);

#endif

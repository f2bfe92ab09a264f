/* `dodeca embed` input: items from arguments, stdin or files, as JSON lines or plain text. */
#ifndef DC_CLI_EMBED_INPUT_H
#define DC_CLI_EMBED_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dodeca/dodeca.h"

typedef enum dc_embed_format {
    DC_EMBED_FORMAT_AUTO = 0, /* per source: JSON lines when its first non-blank line is "{..." */
    DC_EMBED_FORMAT_TEXT = 1, /* one text per line */
    DC_EMBED_FORMAT_JSONL = 2,
} dc_embed_format;

dc_status dc_embed_format_parse(const char *s, dc_embed_format *out);

/* One item. `in` points into the owned buffers. */
typedef struct dc_embed_item {
    char *id;           /* the id as compact JSON text (owned); never NULL after a read */
    dc_input in;
    char *text;         /* owned copies of what `in` points to */
    char *language;
    char *instruction;
    uint8_t *bytes;
    const char *source; /* "FILE", "<stdin>" or "<argument>"; borrowed from the reader */
    size_t line;        /* 1-based line (argument number) in `source` */
    char *error;        /* set by the caller: why the item cannot be embedded (owned) */
} dc_embed_item;

void dc_embed_item_free(dc_embed_item *it);

typedef struct dc_embed_reader_options {
    dc_embed_format format;
    bool allow_extra_keys; /* JSON keys other than the known ones are ignored, not errors */
} dc_embed_reader_options;

typedef struct dc_embed_reader dc_embed_reader;

/* Items come from `args` (each one item: a text, or a JSON object with --format jsonl), then
 * from each of `files` ("-" is stdin); from stdin when there are neither. Ids default to the
 * item's 0-based line number counted across all sources in that order. */
dc_status dc_embed_reader_open(char *const *args, size_t nargs, char *const *files, size_t nfiles,
                               const dc_embed_reader_options *opt, dc_embed_reader **out);
void dc_embed_reader_close(dc_embed_reader *r);

/* Reads the next item into *it (in the dc_embed_item state of a fresh zeroed struct).
 * DC_OK with *eof false: an item. DC_OK with *eof true: no more items. Another status: that
 * line is bad (the detail says why; it->source, it->line and it->id name it) and the reader
 * moves on to the next line, or an I/O error (*eof is then true). */
dc_status dc_embed_reader_next(dc_embed_reader *r, dc_embed_item *it, bool *eof);

/* Bytes read so far and the total size of the regular files among the sources (0 when
 * unknown), for the progress bar. */
uint64_t dc_embed_reader_bytes_read(const dc_embed_reader *r);
uint64_t dc_embed_reader_bytes_total(const dc_embed_reader *r);

#endif

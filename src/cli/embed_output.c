/* `dodeca embed` output writers (formats described in embed_output.h). Each JSON line is built
 * in memory and written with one fwrite, so a killed run leaves at most one partial line, which
 * --resume cuts off. Floats print with nine significant digits (dc_format_float), enough to
 * round-trip a float exactly. */
#include "cli/embed_output.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/float_text.h"

struct dc_embed_writer {
    dc_embed_output_options opt;
    FILE *f;
    bool is_stdout;
    const char *name;
    FILE *ids;            /* npy: row ids */
    bool seekable;        /* npy: the header is rewritten at close; else rows are buffered */
    uint64_t rows;
    float *held;          /* npy on a pipe: rows kept until close */
    size_t held_cap;      /* rows */
    dc_embed_buf line;
    uint8_t *enc;
    size_t enc_cap;
};

dc_status dc_embed_output_format_parse(const char *s, dc_embed_output_format *out) {
    if (strcmp(s, "jsonl") == 0 || strcmp(s, "json") == 0) *out = DC_EMBED_OUT_JSONL;
    else if (strcmp(s, "binary") == 0) *out = DC_EMBED_OUT_BINARY;
    else if (strcmp(s, "npy") == 0) *out = DC_EMBED_OUT_NPY;
    else return dc_fail(DC_ERR_INVALID_ARGUMENT, "output format \"%s\" is not jsonl, binary or npy", s);
    return DC_OK;
}

/* ---- growable text buffer ---- */

static bool dc_embed_buf_reserve(dc_embed_buf *b, size_t more) {
    if (b->oom) return false;
    if (b->len + more + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void dc_embed_buf_puts(dc_embed_buf *b, const char *s) {
    size_t n = strlen(s);
    if (!dc_embed_buf_reserve(b, n)) return;
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

void dc_embed_buf_printf(dc_embed_buf *b, const char *fmt, ...) {
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!dc_embed_buf_reserve(b, 64)) return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        if (!dc_embed_buf_reserve(b, (size_t)n)) return;
    }
}

void dc_embed_buf_json_string(dc_embed_buf *b, const char *s) {
    dc_embed_buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') dc_embed_buf_printf(b, "\\%c", *p);
        else if (*p == '\n') dc_embed_buf_puts(b, "\\n");
        else if (*p == '\t') dc_embed_buf_puts(b, "\\t");
        else if (*p < 0x20) dc_embed_buf_printf(b, "\\u%04x", *p);
        else {
            char c[2] = {(char)*p, 0};
            dc_embed_buf_puts(b, c);
        }
    }
    dc_embed_buf_puts(b, "\"");
}

static void dc_embed_buf_floats(dc_embed_buf *b, const float *v, size_t n) {
    dc_embed_buf_puts(b, "[");
    char t[DC_FLOAT_TEXT_MAX + 1];
    for (size_t i = 0; i < n; i++) {
        t[0] = ',';
        dc_format_float(v[i], t + 1);
        dc_embed_buf_puts(b, i ? t : t + 1);
    }
    dc_embed_buf_puts(b, "]");
}

/* ---- npy ---- */

#define DC_NPY_HEADER_BYTES 128 /* room for any row count; a multiple of 64 as numpy prefers */

static void dc_npy_header(uint64_t rows, uint8_t out[DC_NPY_HEADER_BYTES]) {
    memset(out, ' ', DC_NPY_HEADER_BYTES);
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    uint16_t hl = DC_NPY_HEADER_BYTES - 10;
    out[8] = (uint8_t)(hl & 0xff);
    out[9] = (uint8_t)(hl >> 8);
    char dict[DC_NPY_HEADER_BYTES];
    int n = snprintf(dict, sizeof dict,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (%" PRIu64 ", %d), }",
                     rows, DC_DIM_FUSED);
    memcpy(out + 10, dict, (size_t)n);
    out[DC_NPY_HEADER_BYTES - 1] = '\n';
}

static bool dc_embed_little_endian(void) {
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* ---- writer ---- */

dc_status dc_embed_writer_open(const dc_embed_output_options *opt, dc_embed_writer **out) {
    dc_embed_writer *w = calloc(1, sizeof *w);
    if (!w) return dc_fail(DC_ERR_OUT_OF_MEMORY, "output writer");
    w->opt = *opt;
    if (!opt->path || strcmp(opt->path, "-") == 0) {
        w->f = stdout;
        w->is_stdout = true;
        w->name = "<stdout>";
    } else {
        w->name = opt->path;
        w->f = fopen(opt->path, opt->append ? "ab" : "wb");
        if (!w->f) {
            dc_status st = dc_fail(DC_ERR_IO, "%s: %s", opt->path, strerror(errno));
            free(w);
            return st;
        }
    }
    dc_status st = DC_OK;
    if (opt->format == DC_EMBED_OUT_BINARY) {
        uint8_t h[8] = {'D', 'C', 'F', 'S', DC_EMBED_STREAM_VERSION, 0, 0, 0};
        if (fwrite(h, 1, sizeof h, w->f) != sizeof h) st = dc_fail(DC_ERR_IO, "%s: write error", w->name);
    } else if (opt->format == DC_EMBED_OUT_NPY) {
        if (!dc_embed_little_endian())
            st = dc_fail(DC_ERR_UNSUPPORTED_FORMAT, "npy output needs a little-endian machine");
        w->seekable = !w->is_stdout || ftello(w->f) >= 0;
        if (w->seekable && ftello(w->f) != 0) w->seekable = false; /* e.g. stdout opened for append */
        if (st == DC_OK && w->seekable) {
            uint8_t h[DC_NPY_HEADER_BYTES];
            dc_npy_header(0, h);
            if (fwrite(h, 1, sizeof h, w->f) != sizeof h)
                st = dc_fail(DC_ERR_IO, "%s: write error", w->name);
        }
        if (st == DC_OK && opt->ids_path) {
            w->ids = fopen(opt->ids_path, "wb");
            if (!w->ids) st = dc_fail(DC_ERR_IO, "%s: %s", opt->ids_path, strerror(errno));
        }
    }
    if (st != DC_OK) {
        if (!w->is_stdout) fclose(w->f);
        if (w->ids) fclose(w->ids);
        free(w);
        return st;
    }
    *out = w;
    return DC_OK;
}

static dc_status dc_embed_write_line(dc_embed_writer *w) {
    if (w->line.oom) return dc_fail(DC_ERR_OUT_OF_MEMORY, "output line");
    dc_embed_buf_puts(&w->line, "\n");
    if (w->line.oom) return dc_fail(DC_ERR_OUT_OF_MEMORY, "output line");
    if (fwrite(w->line.p, 1, w->line.len, w->f) != w->line.len)
        return dc_fail(DC_ERR_IO, "%s: write error: %s", w->name, strerror(errno));
    return DC_OK;
}

static void dc_embed_json_models(dc_embed_buf *b, const dc_pipeline_result *r) {
    dc_embed_buf_puts(b, ",\"models\":{");
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        const dc_model_result *m = &r->models[i];
        const dc_model_info *info = dc_model_info_get((dc_model_id)i);
        dc_embed_buf_printf(b, "%s\"%s\":{\"name\":\"%s\",\"status\":\"%s\"", i ? "," : "",
                            info->label, info->name, dc_run_status_name(m->status));
        if (m->status == DC_RUN_OK && m->vector) {
            dc_embed_buf_printf(b, ",\"dim\":%u,\"tokens_used\":%u,\"truncated\":%s,\"vector\":",
                                (unsigned)m->dim, (unsigned)m->tokens_used,
                                m->truncated ? "true" : "false");
            dc_embed_buf_floats(b, m->vector, m->dim);
        } else if (m->detail[0]) {
            dc_embed_buf_puts(b, ",\"detail\":");
            dc_embed_buf_json_string(b, m->detail);
        }
        dc_embed_buf_puts(b, "}");
    }
    dc_embed_buf_puts(b, "}");
}

static void dc_embed_json_routing(dc_embed_buf *b, const dc_pipeline_result *r) {
    const dc_fused_embedding *f = &r->fused;
    dc_embed_buf_puts(b, ",\"routing\":{\"expert_weights\":");
    dc_embed_buf_floats(b, f->expert_weights, DC_NUM_EXPERTS);
    dc_embed_buf_puts(b, ",\"selected_experts\":[");
    for (unsigned k = 0; k < f->num_selected && k < DC_NUM_EXPERTS; k++)
        dc_embed_buf_printf(b, k ? ",%u" : "%u", (unsigned)f->selected_experts[k]);
    dc_embed_buf_printf(b, "],\"present_mask\":%" PRIu32 ",\"present\":[", f->present_mask);
    bool first = true;
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        if (!((f->present_mask >> i) & 1u)) continue;
        dc_embed_buf_printf(b, "%s\"%s\"", first ? "" : ",", dc_model_info_get((dc_model_id)i)->label);
        first = false;
    }
    dc_embed_buf_puts(b, "]}");
}

static void dc_embed_json_timings(dc_embed_buf *b, const dc_pipeline_result *r) {
    const dc_pipeline_timings *t = &r->timings;
    dc_embed_buf_printf(b,
                        ",\"timings\":{\"total_us\":%" PRIu64 ",\"prepare_us\":%" PRIu64
                        ",\"cache_lookup_us\":%" PRIu64 ",\"models_us\":%" PRIu64
                        ",\"fusion_us\":%" PRIu64 ",\"cache_store_us\":%" PRIu64
                        ",\"cache_hit\":%s,\"models\":{",
                        t->total_us, t->prepare_us, t->cache_lookup_us, t->models_us,
                        t->fusion_us, t->cache_store_us, r->cache_hit ? "true" : "false");
    bool first = true;
    for (int i = 0; i < DC_NUM_MODELS; i++) {
        const dc_model_result *m = &r->models[i];
        if (m->status != DC_RUN_OK) continue;
        dc_embed_buf_printf(b,
                            "%s\"%s\":{\"queue_us\":%" PRIu64 ",\"forward_us\":%" PRIu64
                            ",\"batch_size\":%u}",
                            first ? "" : ",", dc_model_info_get((dc_model_id)i)->label, m->queue_us,
                            m->forward_us, (unsigned)m->batch_size);
        first = false;
    }
    dc_embed_buf_puts(b, "}}");
}

static dc_status dc_embed_writer_jsonl(dc_embed_writer *w, const char *id,
                                       const dc_pipeline_result *r) {
    dc_embed_buf *b = &w->line;
    b->len = 0;
    dc_embed_buf_printf(b, "{\"id\":%s,\"embedding\":", id);
    dc_embed_buf_floats(b, r->fused.vector, DC_DIM_FUSED);
    dc_embed_buf_printf(b, ",\"t_ref\":%.17g,\"truncated\":%s", r->t_ref,
                        r->truncated_mask ? "true" : "false");
    if (r->truncated_mask) {
        dc_embed_buf_puts(b, ",\"truncated_models\":[");
        bool first = true;
        for (int i = 0; i < DC_NUM_MODELS; i++) {
            if (!((r->truncated_mask >> i) & 1u)) continue;
            dc_embed_buf_printf(b, "%s\"%s\"", first ? "" : ",",
                                dc_model_info_get((dc_model_id)i)->label);
            first = false;
        }
        dc_embed_buf_puts(b, "]");
    }
    if (w->opt.per_model) dc_embed_json_models(b, r);
    if (w->opt.sparse) {
        const dc_sparse_vector *s = &r->fused.sparse;
        dc_embed_buf_puts(b, ",\"sparse\":[");
        for (uint32_t i = 0; i < s->nnz; i++)
            dc_embed_buf_printf(b, i ? ",[%u,%.9g]" : "[%u,%.9g]", (unsigned)s->indices[i],
                                (double)s->values[i]);
        dc_embed_buf_puts(b, "]");
    }
    if (w->opt.colbert) {
        const dc_token_matrix *c = &r->fused.colbert;
        dc_embed_buf_puts(b, ",\"colbert\":[");
        for (uint32_t t = 0; t < c->n_tokens; t++) {
            if (t) dc_embed_buf_puts(b, ",");
            dc_embed_buf_floats(b, c->data + (size_t)t * c->dim, c->dim);
        }
        dc_embed_buf_puts(b, "]");
    }
    if (w->opt.routing) dc_embed_json_routing(b, r);
    if (w->opt.timings) dc_embed_json_timings(b, r);
    dc_embed_buf_puts(b, "}");
    return dc_embed_write_line(w);
}

static void dc_put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static dc_status dc_embed_writer_binary(dc_embed_writer *w, const char *id,
                                        const dc_pipeline_result *r) {
    size_t need = dc_fused_encoded_size(&r->fused);
    if (need > UINT32_MAX) return dc_fail(DC_ERR_INVALID_DIMENSION, "encoding over 4 GiB");
    if (need > w->enc_cap) {
        uint8_t *e = realloc(w->enc, need);
        if (!e) return dc_fail(DC_ERR_OUT_OF_MEMORY, "encoding buffer");
        w->enc = e;
        w->enc_cap = need;
    }
    size_t written = 0;
    dc_status st = dc_fused_encode(&r->fused, w->enc, w->enc_cap, &written);
    if (st != DC_OK) return st;
    size_t idn = strlen(id);
    uint8_t head[4], mid[12];
    dc_put_u32(head, (uint32_t)idn);
    uint64_t bits;
    memcpy(&bits, &r->t_ref, 8);
    for (int i = 0; i < 8; i++) mid[i] = (uint8_t)(bits >> (8 * i));
    dc_put_u32(mid + 8, (uint32_t)written);
    if (fwrite(head, 1, 4, w->f) != 4 || fwrite(id, 1, idn, w->f) != idn ||
        fwrite(mid, 1, 12, w->f) != 12 || fwrite(w->enc, 1, written, w->f) != written)
        return dc_fail(DC_ERR_IO, "%s: write error: %s", w->name, strerror(errno));
    return DC_OK;
}

static dc_status dc_embed_writer_npy(dc_embed_writer *w, const char *id,
                                     const dc_pipeline_result *r) {
    if (w->seekable) {
        if (fwrite(r->fused.vector, sizeof(float), DC_DIM_FUSED, w->f) != DC_DIM_FUSED)
            return dc_fail(DC_ERR_IO, "%s: write error: %s", w->name, strerror(errno));
    } else {
        if (w->rows == w->held_cap) {
            size_t cap = w->held_cap ? w->held_cap * 2 : 64;
            float *h = realloc(w->held, cap * DC_DIM_FUSED * sizeof(float));
            if (!h) return dc_fail(DC_ERR_OUT_OF_MEMORY, "npy rows held for a pipe");
            w->held = h;
            w->held_cap = cap;
        }
        memcpy(w->held + w->rows * DC_DIM_FUSED, r->fused.vector, sizeof r->fused.vector);
    }
    w->rows++;
    if (w->ids && fprintf(w->ids, "%s\n", id) < 0)
        return dc_fail(DC_ERR_IO, "%s: write error", w->opt.ids_path);
    return DC_OK;
}

dc_status dc_embed_writer_result(dc_embed_writer *w, const char *id, const dc_pipeline_result *r) {
    switch (w->opt.format) {
    case DC_EMBED_OUT_BINARY:
        return dc_embed_writer_binary(w, id, r);
    case DC_EMBED_OUT_NPY:
        return dc_embed_writer_npy(w, id, r);
    default:
        return dc_embed_writer_jsonl(w, id, r);
    }
}

dc_status dc_embed_writer_error(dc_embed_writer *w, const char *id, const char *message) {
    if (w->opt.format != DC_EMBED_OUT_JSONL) return DC_OK;
    dc_embed_buf *b = &w->line;
    b->len = 0;
    dc_embed_buf_printf(b, "{\"id\":%s,\"error\":", id);
    dc_embed_buf_json_string(b, message);
    dc_embed_buf_puts(b, "}");
    return dc_embed_write_line(w);
}

dc_status dc_embed_writer_flush(dc_embed_writer *w) {
    if (fflush(w->f) != 0) return dc_fail(DC_ERR_IO, "%s: write error: %s", w->name, strerror(errno));
    if (w->ids && fflush(w->ids) != 0) return dc_fail(DC_ERR_IO, "%s: write error", w->opt.ids_path);
    return DC_OK;
}

dc_status dc_embed_writer_close(dc_embed_writer *w) {
    if (!w) return DC_OK;
    dc_status st = DC_OK;
    if (w->opt.format == DC_EMBED_OUT_NPY) {
        uint8_t h[DC_NPY_HEADER_BYTES];
        dc_npy_header(w->rows, h);
        if (w->seekable) {
            if (fflush(w->f) != 0 || fseeko(w->f, 0, SEEK_SET) != 0 ||
                fwrite(h, 1, sizeof h, w->f) != sizeof h)
                st = dc_fail(DC_ERR_IO, "%s: cannot write the npy header: %s", w->name,
                             strerror(errno));
        } else if (fwrite(h, 1, sizeof h, w->f) != sizeof h ||
                   (w->rows && fwrite(w->held, sizeof(float) * DC_DIM_FUSED, w->rows, w->f) !=
                                   w->rows)) {
            st = dc_fail(DC_ERR_IO, "%s: write error: %s", w->name, strerror(errno));
        }
    }
    if (fflush(w->f) != 0 && st == DC_OK)
        st = dc_fail(DC_ERR_IO, "%s: write error: %s", w->name, strerror(errno));
    if (!w->is_stdout && fclose(w->f) != 0 && st == DC_OK)
        st = dc_fail(DC_ERR_IO, "%s: close: %s", w->name, strerror(errno));
    if (w->ids && fclose(w->ids) != 0 && st == DC_OK)
        st = dc_fail(DC_ERR_IO, "%s: close: %s", w->opt.ids_path, strerror(errno));
    free(w->held);
    free(w->line.p);
    free(w->enc);
    free(w);
    return st;
}

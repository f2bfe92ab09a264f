/* attention / attention_ex of the CUDA backend: the host builds, per query, its batch row and
 * sequence, per sequence its global rows and, for the tiled kernel, the query tiles; one upload
 * carries them all, then one kernel. DC_CUDA_ATTN picks the kernel (docs/gpu.md): "auto" = the
 * tiled one where it applies (no band, no global tokens, head_dim <= 128), else the per-query
 * one; "basic" = always the per-query one; "tiled" = the tiled one, and a call it cannot serve
 * fails (so a benchmark knows what it timed). Read per call; unset, the context's
 * basic_attention (models.<name>.use_flash_attention = false) means "basic", else "auto". */
#include <stdlib.h>
#include <string.h>

#include "gpu/cu_internal.h"
#include "gpu/kernels.h"

typedef enum { ATTN_AUTO, ATTN_BASIC, ATTN_TILED } attn_mode;

static dc_status attn_mode_of(const dc_cu_backend *cb, attn_mode *mode) {
    const char *e = getenv("DC_CUDA_ATTN");
    *mode = cb->basic_attention ? ATTN_BASIC : ATTN_AUTO;
    if (!e || !*e) return DC_OK;
    *mode = ATTN_AUTO;
    if (!strcmp(e, "auto")) return DC_OK;
    if (!strcmp(e, "basic")) *mode = ATTN_BASIC;
    else if (!strcmp(e, "tiled")) *mode = ATTN_TILED;
    else return dc_cu_fail(DC_ERR_INVALID_ARGUMENT, "DC_CUDA_ATTN=%s: expected auto, basic or tiled", e);
    return DC_OK;
}

static dc_status run(dc_backend *be, const float *q, size_t ld_q, const float *k,
                     const float *v, size_t ld_kv, float *out, size_t ld_out, uint32_t n_heads,
                     uint32_t head_dim, float scale, const dc_seq_batch *seqs,
                     const dc_attn_opts *o) {
    dc_cu_backend *cb = dc_cu_of(be);
    dc_status st = dc_cu_enter(cb);
    if (st || (st = dc_cu_take_sticky(cb))) return st;
    if (!seqs || !seqs->start) return dc_cu_fail(DC_ERR_INVALID_ARGUMENT, "attention: no sequences");
    if (head_dim > DC_CUK_ATTN_MAX_HEAD_DIM)
        return dc_cu_fail(DC_ERR_INVALID_ARGUMENT, "attention: head_dim %u exceeds %u", head_dim,
                          DC_CUK_ATTN_MAX_HEAD_DIM);
    attn_mode mode;
    if ((st = attn_mode_of(cb, &mode))) return st;
    const uint32_t ns = seqs->n_seqs;
    /* the offsets may be device memory already; the host needs them to plan */
    uint32_t *start = malloc(((size_t)ns + 1) * sizeof *start);
    if (!start) return dc_cu_fail(DC_ERR_OUT_OF_MEMORY, "attention: %u offsets", ns);
    if (dc_cu_is_device(seqs->start)) {
        /* on the backend's stream (non-blocking): a plain cudaMemcpy would not wait for work
         * queued there that writes the offsets */
        st = dc_cu_status(cudaMemcpyAsync(start, seqs->start, ((size_t)ns + 1) * sizeof *start,
                                          cudaMemcpyDeviceToHost, cb->stream),
                          "attention offsets");
        if (!st) st = dc_cu_status(cudaStreamSynchronize(cb->stream), "attention offsets");
        if (st) {
            free(start);
            return st;
        }
    } else {
        memcpy(start, seqs->start, ((size_t)ns + 1) * sizeof *start);
    }
    for (uint32_t s = 0; s < ns; s++)
        if (start[s + 1] < start[s]) {
            free(start);
            return dc_cu_fail(DC_ERR_INVALID_ARGUMENT, "attention: sequence %u ends before it starts", s);
        }
    const uint32_t T = start[ns];
    const uint8_t *gmask_host = o && o->global_mask && !dc_cu_is_device(o->global_mask) ? o->global_mask : NULL;
    if (o && o->global_mask && !gmask_host) {
        free(start);
        return dc_cu_fail(DC_ERR_INVALID_ARGUMENT, "attention: the global mask must be host memory");
    }
    const bool by_rows = o && o->rows;
    if (by_rows && dc_cu_is_device(o->rows)) {
        free(start);
        return dc_cu_fail(DC_ERR_INVALID_ARGUMENT, "attention: the query row list must be host memory");
    }
    const uint32_t n_q = by_rows ? o->n_rows : T;
    uint32_t n_glob = 0;
    for (uint32_t r = 0; gmask_host && r < T; r++) n_glob += gmask_host[r] != 0;
    const bool banded = o && (o->left != DC_ATTN_UNBOUNDED || o->right != DC_ATTN_UNBOUNDED);
    const bool tiled = mode != ATTN_BASIC && !banded && !n_glob &&
                       head_dim <= DC_CUK_ATTN_TILED_MAX_HEAD_DIM;
    if (mode == ATTN_TILED && !tiled) {
        free(start);
        return dc_cu_fail(DC_ERR_INVALID_ARGUMENT,
                          "attention: DC_CUDA_ATTN=tiled, but this call has %s",
                          banded ? "a band" : n_glob ? "global tokens" : "head_dim over 128");
    }
    /* tiles never span two sequences: at most one partial tile per sequence */
    const size_t max_tiles = tiled ? (size_t)n_q / DC_CUK_ATTN_TILE_Q + ns : 0;
    /* one host block: q_row[n_q], q_seq[n_q], start[ns+1], gstart[ns+1], glist[n_glob],
     * tile_q0[n_tiles+1] */
    size_t words = 2 * (size_t)n_q + 2 * ((size_t)ns + 1) + n_glob + (tiled ? max_tiles + 1 : 0);
    uint32_t *h = malloc((words ? words : 1) * sizeof *h);
    if (!h) {
        free(start);
        return dc_cu_fail(DC_ERR_OUT_OF_MEMORY, "attention: plan of %zu words", words);
    }
    uint32_t *q_row = h, *q_seq = h + n_q, *hstart = q_seq + n_q, *gstart = hstart + ns + 1,
             *glist = gstart + ns + 1;
    memcpy(hstart, start, ((size_t)ns + 1) * sizeof *start);
    uint32_t s = 0;
    for (uint32_t i = 0; i < n_q; i++) {
        uint32_t row = by_rows ? o->rows[i] : i;
        if (row >= T || (by_rows && i && row <= o->rows[i - 1])) {
            st = dc_cu_fail(DC_ERR_INVALID_ARGUMENT, "attention: query row list is not ascending in range");
            goto done;
        }
        while (s < ns && start[s + 1] <= row) s++;
        q_row[i] = row;
        q_seq[i] = s;
    }
    uint32_t g = 0;
    for (uint32_t t = 0; t < ns; t++) {
        gstart[t] = g;
        for (uint32_t r = start[t]; gmask_host && r < start[t + 1]; r++)
            if (gmask_host[r]) glist[g++] = r;
    }
    gstart[ns] = g;
    uint32_t *tile_q0 = glist + n_glob, n_tiles = 0;
    for (uint32_t i = 0; tiled && i < n_q; i++)
        if (!n_tiles || q_seq[i] != q_seq[i - 1] || i - tile_q0[n_tiles - 1] == DC_CUK_ATTN_TILE_Q)
            tile_q0[n_tiles++] = i;
    if (tiled) tile_q0[n_tiles] = n_q;

    void *dplan = NULL, *tmask = NULL, *tg = NULL;
    const void *dp_c = NULL, *dmask = NULL, *dg = NULL;
    if ((st = dc_cu_stage(cb, h, words * sizeof *h, &dp_c, &dplan)) ||
        (st = dc_cu_stage(cb, seqs->key_mask, T, &dmask, &tmask)) ||
        (st = dc_cu_stage(cb, gmask_host, T, &dg, &tg)))
        goto release;
    if (!dplan && words) {
        st = dc_cu_fail(DC_ERR_INTERNAL, "attention: plan not staged");
        goto release;
    }
    const uint32_t *dp = dp_c;
    dc_cuk_attn a = {
        .q = q, .k = k, .v = v, .out = out, .ld_q = ld_q, .ld_kv = ld_kv, .ld_out = ld_out,
        .n_heads = n_heads, .head_dim = head_dim, .scale = scale, .n_q = n_q,
        .q_row = dp, .q_seq = dp + n_q, .q_by_index = by_rows, .start = dp + 2 * (size_t)n_q,
        .key_mask = dmask,
        .left = o ? o->left : DC_ATTN_UNBOUNDED, .right = o ? o->right : DC_ATTN_UNBOUNDED,
        .gflag = n_glob ? dg : NULL, .gstart = dp + 2 * (size_t)n_q + ns + 1,
        .glist = n_glob ? dp + 2 * (size_t)n_q + 2 * ((size_t)ns + 1) : NULL,
        .skip_global = !by_rows && n_glob > 0,
        .tile_q0 = tiled ? dp + (words - max_tiles - 1) : NULL, .n_tiles = n_tiles,
    };
    st = dc_cu_status((cudaError_t)dc_cuk_attention(cb->stream, &a), "attention kernel");
release:
    dc_pool_release(&cb->pool, dplan);
    dc_pool_release(&cb->pool, tmask);
    dc_pool_release(&cb->pool, tg);
done:
    free(h);
    free(start);
    return st;
}

dc_status dc_cu_attention(dc_backend *be, const float *q, size_t ld_q, const float *k,
                          const float *v, size_t ld_kv, float *out, size_t ld_out,
                          uint32_t n_heads, uint32_t head_dim, float scale,
                          const dc_seq_batch *seqs) {
    return run(be, q, ld_q, k, v, ld_kv, out, ld_out, n_heads, head_dim, scale, seqs, NULL);
}

dc_status dc_cu_attention_ex(dc_backend *be, const float *q, size_t ld_q, const float *k,
                             const float *v, size_t ld_kv, float *out, size_t ld_out,
                             uint32_t n_heads, uint32_t head_dim, float scale,
                             const dc_seq_batch *seqs, const dc_attn_opts *opts) {
    if (!opts) return dc_cu_fail(DC_ERR_INVALID_ARGUMENT, "attention: NULL options");
    return run(be, q, ld_q, k, v, ld_kv, out, ld_out, n_heads, head_dim, scale, seqs, opts);
}

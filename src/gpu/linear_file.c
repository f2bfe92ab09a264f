/* Linear layers whose weights the backend reads from the checkpoint file itself
 * (dc_backend_ops.linear_create_from_file): cuFile straight into device memory, or pread into
 * pinned memory and a copy (cufile.c), then on the device whatever linear_create would do with
 * the same values. The host neither converts nor holds the matrix.
 *
 * Parts whose element type is the layer's storage type (f32 → fp32, bf16 → bf16, f16 → fp16)
 * are read into the layer's own buffer: no staging at all. Otherwise the matrix is assembled
 * in f32 (the layer's buffer for fp32, else a pool block): f32 parts are read into it, bf16 and
 * f16 parts into a staging block and widened (exactly) into it; then dc_cu_linear_from_f32
 * converts or quantises it as linear_create does after its upload — the same kernels on the
 * same f32 values, so the layer is bit for bit the host path's. Every part is checked for
 * Inf/NaN on the device, as the host path checks its f32 copy. FP4 formats are encoded by the
 * CPU codec and keep the host path (DC_ERR_UNSUPPORTED_FORMAT here). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "gpu/cu_internal.h"
#include "gpu/kernels.h"

static size_t part_elem(dc_file_elem t) { return t == DC_FILE_F32 ? 4 : 2; }

/* The storage type of fmt when a file part of that type can be read into it as is. */
static bool stored_as(dc_weight_format fmt, dc_file_elem t) {
    return (fmt == DC_WEIGHTS_F32 && t == DC_FILE_F32) ||
           (fmt == DC_WEIGHTS_BF16 && t == DC_FILE_BF16) ||
           (fmt == DC_WEIGHTS_F16 && t == DC_FILE_F16);
}

/* A file that shrank since the checkpoint was opened fails here, naming the tensor, before
 * any byte is read. */
static dc_status part_check(const dc_linear_file_part *p, uint64_t bytes) {
    struct stat sb;
    if (stat(p->path, &sb) != 0)
        return dc_cu_fail(DC_ERR_IO, "%s (tensor \"%s\"): cannot stat the file", p->path, p->name);
    if ((uint64_t)sb.st_size < p->offset || (uint64_t)sb.st_size - p->offset < bytes)
        return dc_cu_fail(DC_ERR_IO,
                          "%s (tensor \"%s\"): bytes [%llu, %llu) lie past the end of the "
                          "%llu-byte file (truncated after it was opened?)",
                          p->path, p->name, (unsigned long long)p->offset,
                          (unsigned long long)(p->offset + bytes), (unsigned long long)sb.st_size);
    return DC_OK;
}

/* The flags of dc_cuk_first_nonfinite, one per part: the first part with an Inf or NaN. */
static dc_status check_finite(dc_cu_backend *cb, const dc_linear_file_part *parts,
                              uint32_t nparts, const unsigned *flags) {
    unsigned host[64];
    dc_status st = dc_cu_status(cudaMemcpyAsync(host, flags, nparts * sizeof *host,
                                                cudaMemcpyDeviceToHost, cb->stream),
                                "linear weights check");
    if (!st) st = dc_cu_status(cudaStreamSynchronize(cb->stream), "linear weights check");
    for (uint32_t p = 0; !st && p < nparts; p++)
        if (host[p])
            st = dc_cu_fail(DC_ERR_CHECKPOINT_CORRUPTED,
                            "%s: tensor \"%s\" has a non-finite value at %llu", parts[p].path,
                            parts[p].name, (unsigned long long)(0xffffffffu - host[p]));
    return st;
}

dc_status dc_cu_linear_create_from_file(dc_backend *be, const dc_linear_file_part *parts,
                                        uint32_t nparts, const float *bias, uint32_t n_out,
                                        uint32_t k_in, dc_weight_format fmt, dc_linear **out) {
    dc_cu_backend *cb = dc_cu_of(be);
    *out = NULL;
    if (fmt != DC_WEIGHTS_F32 && fmt != DC_WEIGHTS_BF16 && fmt != DC_WEIGHTS_F16 &&
        fmt != DC_WEIGHTS_FP8_E4M3)
        return dc_cu_fail(DC_ERR_UNSUPPORTED_FORMAT,
                          "linear from a file: weight format %d is encoded on the host", (int)fmt);
    if (!parts || !nparts || nparts > 64)
        return dc_cu_fail(DC_ERR_INVALID_ARGUMENT, "linear from a file: %u parts (1 to 64)",
                          nparts);
    uint64_t rows = 0;
    size_t stage_bytes = 0; /* the largest part that must be widened */
    bool direct = true;     /* every part is stored as is */
    for (uint32_t p = 0; p < nparts; p++) {
        if (parts[p].type != DC_FILE_F32 && parts[p].type != DC_FILE_BF16 &&
            parts[p].type != DC_FILE_F16)
            return dc_cu_fail(DC_ERR_UNSUPPORTED_FORMAT, "%s (tensor \"%s\"): element type %d",
                              parts[p].path, parts[p].name, (int)parts[p].type);
        rows += parts[p].rows;
        direct = direct && stored_as(fmt, parts[p].type);
        size_t b = (size_t)parts[p].rows * k_in * part_elem(parts[p].type);
        if (parts[p].type != DC_FILE_F32 && b > stage_bytes) stage_bytes = b;
    }
    if (rows != n_out)
        return dc_cu_fail(DC_ERR_INVALID_DIMENSION,
                          "linear from a file: the parts hold %llu rows, the layer %u",
                          (unsigned long long)rows, n_out);
    dc_linear *l = NULL;
    dc_status st = dc_cu_linear_new(cb, n_out, k_in, fmt, &l);
    if (st) return st;
    char *w = dc_cu_linear_weights(l);
    float *f32 = NULL;  /* the assembled f32 matrix when it is not the layer's buffer */
    void *stage = NULL; /* bf16 / f16 parts before widening */
    unsigned *flags = NULL;
    if (!direct && fmt != DC_WEIGHTS_F32)
        st = dc_pool_alloc(&cb->pool, (size_t)n_out * k_in * 4, (void **)&f32);
    if (!st && !direct && stage_bytes) st = dc_pool_alloc(&cb->pool, stage_bytes, &stage);
    if (!st) st = dc_pool_alloc(&cb->pool, nparts * sizeof *flags, (void **)&flags);
    if (!st)
        st = dc_cu_status(cudaMemsetAsync(flags, 0, nparts * sizeof *flags, cb->stream),
                          "linear weights check");
    float *asm32 = fmt == DC_WEIGHTS_F32 ? (float *)w : f32;
    size_t row = 0;
    for (uint32_t p = 0; !st && p < nparts; p++) {
        const dc_linear_file_part *pt = &parts[p];
        const size_t count = (size_t)pt->rows * k_in, bytes = count * part_elem(pt->type);
        void *dst = direct ? w + row * k_in * part_elem(pt->type)
                    : pt->type == DC_FILE_F32 ? (void *)(asm32 + row * k_in)
                                              : stage;
        if ((st = part_check(pt, bytes))) break;
        /* stream order: the previous part's widening of `stage` is enqueued before this read,
         * whose copies (or cuFile, after a stream synchronisation) come after it */
        if ((st = dc_cu_file_read_tensor(be, pt->path, pt->name, pt->offset, bytes, dst))) break;
        st = dc_cu_status((cudaError_t)dc_cuk_first_nonfinite(cb->stream, dst, count,
                                                              (int)pt->type, flags + p),
                          "linear weights check");
        if (!st && dst == stage)
            st = dc_cu_status((cudaError_t)dc_cuk_half_to_f32(cb->stream, stage, asm32 + row * k_in,
                                                              count, pt->type == DC_FILE_BF16),
                              "linear weights widening");
        row += pt->rows;
    }
    if (!st) st = check_finite(cb, parts, nparts, flags);
    if (!st && !direct && fmt != DC_WEIGHTS_F32) st = dc_cu_linear_from_f32(cb, l, f32);
    if (!st) st = dc_cu_linear_set_bias(l, bias);
    if (st) {
        dc_cu_linear_free(cb, l); /* waits for the stream: the blocks below are idle then */
        l = NULL;
    }
    dc_pool_release(&cb->pool, f32);
    dc_pool_release(&cb->pool, stage);
    dc_pool_release(&cb->pool, flags);
    *out = l;
    return st;
}

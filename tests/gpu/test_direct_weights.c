/* Weights read by the CUDA backend from the checkpoint file (dc_backend_ops.
 * linear_create_from_file, src/models/linear_load.c) against the host path (f32 on the host,
 * then linear_create): the random-weight BERT fixture (tests/tools/bert_fixture.c) in its F32
 * safetensors, rewritten with BF16 or F16 linear weights, and sharded; every weight format the
 * file path takes gives bit-identical hidden states, FP4 and a PyTorch .bin silently take the
 * host path, the bytes read are counted, a NaN weight and a file truncated after it was opened
 * fail naming the file and the tensor, and leave nothing allocated. Exits 77 without a device. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bert_gpu_common.h"
#include "gpu_common.h"
#include "models/bert.h"
#include "models/model_backend.h"
#include "tensor/quant.h"

#include "../tools/bert_fixture.c"
#include "check.h"

static int failures, checks;
static dc_backend *gpu;
static const dc_cuda_api *api;
static void (*emu_live)(uint64_t *, uint64_t *, uint64_t *, uint64_t *);

/* ---- checkpoints: the fixture's tensors rewritten ---- */

/* f32 → f16, rounding toward zero (the values only need to be some finite halves: both paths
 * read the same file) */
static uint16_t to_f16(float f) {
    uint32_t b;
    memcpy(&b, &f, 4);
    uint16_t sign = (uint16_t)((b >> 16) & 0x8000u);
    int e = (int)((b >> 23) & 0xff) - 127;
    if (e < -14) return sign;
    return (uint16_t)(sign | (uint16_t)((e + 15) << 10) | (uint16_t)((b >> 13) & 0x3ffu));
}

static bool is_linear_weight(const dc_tensor_view *t) {
    size_t n = strlen(t->name);
    return t->ndim == 2 && strstr(t->name, "encoder.layer.") && n > 7 &&
           !strcmp(t->name + n - 7, ".weight");
}

typedef struct rewrite {
    dc_dtype linear; /* dtype of the linear weights (F32, BF16, F16) */
    const char *last;     /* this tensor's bytes go last in the file (NULL: file order) */
    const char *nan_in;   /* a NaN at element 5 of this tensor */
} rewrite;

/* The tensors [from, to) of src in `order` into one safetensors file. */
static int write_st(const dc_weights *src, const size_t *order, size_t from, size_t to,
                    const rewrite *rw, const char *path) {
    char *h = malloc(1 << 20);
    size_t o = (size_t)sprintf(h, "{\"__metadata__\":{\"format\":\"pt\"}"), off = 0;
    for (size_t j = from; j < to; j++) {
        const dc_tensor_view *t = dc_weights_tensor(src, order[j]);
        dc_dtype d = is_linear_weight(t) ? rw->linear : t->dtype;
        size_t bytes = (size_t)t->numel * dc_dtype_size(d);
        o += (size_t)sprintf(h + o, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name,
                             dc_dtype_name(d));
        for (uint32_t i = 0; i < t->ndim; i++)
            o += (size_t)sprintf(h + o, "%s%llu", i ? "," : "", (unsigned long long)t->shape[i]);
        o += (size_t)sprintf(h + o, "],\"data_offsets\":[%zu,%zu]}", off, off + bytes);
        off += bytes;
    }
    o += (size_t)sprintf(h + o, "}");
    while (o % 8) h[o++] = ' ';
    FILE *f = fopen(path, "wb");
    uint64_t n = o;
    int ok = f && fwrite(&n, 8, 1, f) == 1 && fwrite(h, 1, o, f) == o;
    for (size_t j = from; ok && j < to; j++) {
        const dc_tensor_view *t = dc_weights_tensor(src, order[j]);
        bool lin = is_linear_weight(t);
        if (!lin || rw->linear == DC_DTYPE_F32) {
            ok = fwrite(t->data, 1, t->nbytes, f) == t->nbytes;
            continue;
        }
        uint16_t *v = malloc(t->numel * 2);
        for (size_t i = 0; i < t->numel; i++) {
            float x = ((const float *)t->data)[i];
            if (rw->nan_in && !strcmp(t->name, rw->nan_in) && i == 5) x = NAN;
            v[i] = rw->linear == DC_DTYPE_BF16 ? dc_quant_bf16_from_f32(x) : to_f16(x);
        }
        ok = fwrite(v, 2, t->numel, f) == t->numel;
        free(v);
    }
    free(h);
    if (f && fclose(f) != 0) ok = 0;
    return ok ? 0 : -1;
}

/* dir/model.safetensors (F32 fixture) rewritten as `out` in dir: one file, or two shards and
 * an index when shards is true. */
static void rewrite_checkpoint(const char *dir, const rewrite *rw, const char *out, bool shards) {
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    dc_weights *src = NULL;
    if (dc_weights_open(path, &src)) {
        printf("open %s: %s\n", path, dc_error_detail());
        exit(1);
    }
    size_t n = dc_weights_count(src), *order = malloc(n * sizeof *order), k = 0, last = n;
    for (size_t i = 0; i < n; i++) {
        if (rw->last && !strcmp(dc_weights_tensor(src, i)->name, rw->last)) last = i;
        else order[k++] = i;
    }
    if (last < n) order[k++] = last;
    int bad;
    if (!shards) {
        snprintf(path, sizeof path, "%s/%s", dir, out);
        bad = write_st(src, order, 0, n, rw, path);
    } else {
        snprintf(path, sizeof path, "%s/shard-1.safetensors", dir);
        bad = write_st(src, order, 0, n / 2, rw, path);
        snprintf(path, sizeof path, "%s/shard-2.safetensors", dir);
        bad = bad || write_st(src, order, n / 2, n, rw, path);
        snprintf(path, sizeof path, "%s/%s", dir, out);
        FILE *f = fopen(path, "w");
        fprintf(f, "{\"metadata\":{},\"weight_map\":{");
        for (size_t j = 0; j < n; j++)
            fprintf(f, "%s\"%s\":\"shard-%d.safetensors\"", j ? "," : "",
                    dc_weights_tensor(src, order[j])->name, j < n / 2 ? 1 : 2);
        fprintf(f, "}}\n");
        bad = bad || fclose(f) != 0;
    }
    if (bad) {
        printf("writing %s failed\n", path);
        exit(1);
    }
    free(order);
    dc_weights_close(src);
}

/* ---- models ---- */

/* Hidden states of a fixed batch of two sequences (rows × hidden floats, malloc'ed). */
static float *hidden(dc_bert *m, size_t *count) {
    const dc_bert_config *c = dc_bert_config_of(m);
    static const uint32_t start[3] = {0, 5, 14};
    uint32_t ids[14];
    for (uint32_t r = 0; r < 14; r++) ids[r] = 5 + (r * 7) % (c->vocab_size - 6);
    dc_bert_batch b = {2, start, ids, NULL, NULL};
    *count = 14 * (size_t)c->hidden;
    float *y = malloc(*count * sizeof *y);
    if (dc_bert_forward(m, &b, y)) {
        printf("forward: %s\n", dc_error_detail());
        exit(1);
    }
    return y;
}

static uint64_t bytes_read(void) {
    dc_cuda_file_stats fs;
    api->file_stats(gpu, &fs);
    return fs.gds_bytes + fs.posix_bytes;
}

/* What the linear weights of a checkpoint take in its file(s). */
static uint64_t linear_bytes(const char *weights) {
    dc_weights *w = NULL;
    if (dc_weights_open(weights, &w)) return 0;
    uint64_t sum = 0;
    for (size_t i = 0; i < dc_weights_count(w); i++)
        if (is_linear_weight(dc_weights_tensor(w, i))) sum += dc_weights_tensor(w, i)->nbytes;
    dc_weights_close(w);
    return sum;
}

/* The model from `weights` through the file path and through the host path: the same hidden
 * states bit for bit; the file path read `want_read` bytes, the host path none. */
static void same(const char *what, const char *dir, const char *weights, dc_weight_format fmt,
                 uint64_t want_read) {
    dc_bert *a = NULL, *b = NULL;
    uint64_t r0 = bytes_read();
    dc_status sa = load_weights(dir, weights, gpu, fmt, false, &a);
    uint64_t r1 = bytes_read();
    dc_status sb = sa ? sa : load_weights(dir, weights, gpu, fmt, true, &b);
    uint64_t r2 = bytes_read();
    if (sa || sb) {
        CHECK(false, "%s %s: load: %s", what, dc_weight_format_name(fmt), dc_error_detail());
    } else {
        size_t n;
        float *ya = hidden(a, &n), *yb = hidden(b, &n);
        CHECK(!memcmp(ya, yb, n * sizeof *ya), "%s %s: file and host paths differ", what,
              dc_weight_format_name(fmt));
        CHECK(r1 - r0 == want_read && r2 == r1, "%s %s: %llu bytes read from the file (want %llu), "
              "%llu by the host path", what, dc_weight_format_name(fmt),
              (unsigned long long)(r1 - r0), (unsigned long long)want_read,
              (unsigned long long)(r2 - r1));
        printf("ok   %-28s %-5s identical, %llu bytes read by the backend\n", what,
               dc_weight_format_name(fmt), (unsigned long long)(r1 - r0));
        free(ya);
        free(yb);
    }
    dc_bert_destroy(a);
    dc_bert_destroy(b);
}

/* Device memory in use, to tell a leak: the emulation's live blocks, else the pool's view. */
static uint64_t live_bytes(void) {
    api->pool_trim(gpu);
    if (emu_live) {
        uint64_t blocks, bytes, streams, events;
        emu_live(&blocks, &bytes, &streams, &events);
        return bytes;
    }
    dc_cuda_pool_stats ps;
    api->pool_stats(gpu, &ps);
    return ps.in_use + ps.cached + ps.weights;
}

/* A load that must fail with `want` naming both `file` and `tensor`, leaving nothing behind. */
static void fails(const char *what, const char *dir, const char *weights, dc_status want,
                  const char *file, const char *tensor, dc_weights *held) {
    uint64_t before = live_bytes();
    dc_bert *m = NULL;
    char path[4200];
    dc_bert_config cfg;
    snprintf(path, sizeof path, "%s/config.json", dir);
    dc_status st = dc_bert_config_read(path, &cfg);
    dc_weights *w = held;
    if (!st && !w) st = dc_weights_open(weights, &w);
    if (!st) st = dc_bert_create(w, &cfg, gpu, &m);
    const char *d = dc_error_detail();
    CHECK(st == want && strstr(d, file) && strstr(d, tensor), "%s: status %d (want %d): %s", what,
          (int)st, (int)want, d);
    if (st == want) printf("ok   %-28s %s\n", what, d);
    dc_bert_destroy(m);
    if (w != held) dc_weights_close(w);
    uint64_t after = live_bytes();
    CHECK(after == before, "%s: %llu bytes of device memory left behind", what,
          (unsigned long long)(after - before));
}

static void remove_dir(const char *dir) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void) {
    gpu = gpu_or_skip("test_direct_weights", NULL);
    if (dc_cuda_load(&api)) return 1;
    const char *lib = getenv("DC_CUDA_LIBRARY");
    void *h = lib ? dlopen(lib, RTLD_NOW | RTLD_NOLOAD) : NULL;
    void *sym = h ? dlsym(h, "dc_cuda_emu_live") : NULL;
    if (sym) memcpy(&emu_live, &sym, sizeof sym);
    dc_cuda_device_info info;
    bool fp8 = api->device_info(0, &info) == DC_OK && info.cc_major * 10 + info.cc_minor >= 89;

    dc_fixture_spec spec;
    if (!dc_fixture_named("bert", &spec)) return 1;
    char dir[] = "/tmp/dc_direct_XXXXXX", path[4200];
    if (!mkdtemp(dir) || dc_fixture_write(dir, &spec) != 0) return 1;

    /* the generator's F32 file: every format the file path takes, and FP4 through the host */
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    const uint64_t f32_bytes = linear_bytes(path);
    same("f32 file", dir, path, DC_WEIGHTS_F32, f32_bytes);
    same("f32 file", dir, path, DC_WEIGHTS_BF16, f32_bytes);
    same("f32 file", dir, path, DC_WEIGHTS_F16, f32_bytes);
    if (fp8) same("f32 file", dir, path, DC_WEIGHTS_FP8_E4M3, f32_bytes);
    same("f32 file, fp4 via the host", dir, path, DC_WEIGHTS_NVFP4, 0);

    /* what the counters say, as the pipeline stats show it */
    dc_cuda_file_stats fs;
    char desc[256];
    api->file_stats(gpu, &fs);
    dc_file_stats_desc(&fs, desc, sizeof desc);
    printf("     report: %s\n", desc);
    CHECK(!strncmp(desc, "weights ", 8) && strstr(desc, " MB read by ") && strstr(desc, " GB/s"),
          "report \"%s\"", desc);
    CHECK(fs.gds_bytes || strstr(desc, "pread+copy"), "report \"%s\" names no path", desc);

    /* BF16 and F16 linear weights: read as stored, or widened on the device */
    const rewrite bf16 = {DC_DTYPE_BF16, NULL, NULL}, f16 = {DC_DTYPE_F16, NULL, NULL};
    rewrite_checkpoint(dir, &bf16, "bf16.safetensors", false);
    snprintf(path, sizeof path, "%s/bf16.safetensors", dir);
    const uint64_t half_bytes = linear_bytes(path);
    CHECK(half_bytes * 2 == f32_bytes, "bf16 file: %llu bytes of linears",
          (unsigned long long)half_bytes);
    same("bf16 file", dir, path, DC_WEIGHTS_BF16, half_bytes);
    same("bf16 file", dir, path, DC_WEIGHTS_F32, half_bytes);
    same("bf16 file", dir, path, DC_WEIGHTS_F16, half_bytes);
    rewrite_checkpoint(dir, &f16, "f16.safetensors", false);
    snprintf(path, sizeof path, "%s/f16.safetensors", dir);
    same("f16 file", dir, path, DC_WEIGHTS_F16, half_bytes);
    same("f16 file", dir, path, DC_WEIGHTS_F32, half_bytes);
    if (fp8) same("f16 file", dir, path, DC_WEIGHTS_FP8_E4M3, half_bytes);

    /* sharded: each part read from its own shard */
    rewrite_checkpoint(dir, &bf16, "model.safetensors.index.json", true);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    same("bf16 shards", dir, path, DC_WEIGHTS_BF16, half_bytes);

    /* a NaN weight: refused as the host path refuses it */
    const char *bad = "encoder.layer.1.intermediate.dense.weight";
    const rewrite nan = {DC_DTYPE_BF16, NULL, bad};
    rewrite_checkpoint(dir, &nan, "nan.safetensors", false);
    snprintf(path, sizeof path, "%s/nan.safetensors", dir);
    fails("NaN weight", dir, path, DC_ERR_CHECKPOINT_CORRUPTED, "nan.safetensors", bad, NULL);

    /* a file cut short after it was opened (its last tensor is a linear weight, so the host
     * never touches the missing bytes through the mapping) */
    const char *cut = "encoder.layer.1.output.dense.weight";
    const rewrite last = {DC_DTYPE_F32, cut, NULL};
    rewrite_checkpoint(dir, &last, "cut.safetensors", false);
    snprintf(path, sizeof path, "%s/cut.safetensors", dir);
    dc_weights *w = NULL;
    if (dc_weights_open(path, &w)) return 1;
    const dc_tensor_view *t = dc_weights_find(w, cut);
    const char *fpath;
    uint64_t off;
    CHECK(t && dc_weights_file_span(w, t, &fpath, &off) && !strcmp(fpath, path),
          "file span of %s", cut);
    if (t && truncate(path, (off_t)(off + t->nbytes / 2)) == 0)
        fails("truncated file", dir, path, DC_ERR_IO, "cut.safetensors", cut, w);
    dc_weights_close(w);

    /* a PyTorch .bin (the RoBERTa fixture torch.save'd): the host path, silently */
    char rdir[] = "/tmp/dc_direct_rb_XXXXXX";
    dc_fixture_spec rs;
    if (!dc_fixture_named("roberta", &rs) || !mkdtemp(rdir) || dc_fixture_write(rdir, &rs) != 0)
        return 1;
    char bin[4200], st[4200];
    const char *data = getenv("DC_TEST_DATA_DIR"); /* a checkout elsewhere (gpu-check.sh) */
    snprintf(bin, sizeof bin, "%s/models5/roberta/pytorch_model.bin",
             data && *data ? data : DC_TEST_DATA_DIR);
    snprintf(st, sizeof st, "%s/model.safetensors", rdir);
    same("pytorch .bin", rdir, bin, DC_WEIGHTS_F32, 0);
    dc_bert *a = NULL, *b = NULL;
    uint64_t r0 = bytes_read();
    if (!load_weights(rdir, bin, gpu, DC_WEIGHTS_F32, false, &a) &&
        !load_weights(rdir, st, gpu, DC_WEIGHTS_F32, false, &b)) {
        size_t n;
        float *ya = hidden(a, &n), *yb = hidden(b, &n);
        CHECK(!memcmp(ya, yb, n * sizeof *ya), "pytorch .bin and safetensors differ");
        CHECK(bytes_read() - r0 == linear_bytes(st), "only the safetensors linears were read");
        free(ya);
        free(yb);
    } else {
        CHECK(false, "roberta: %s", dc_error_detail());
    }
    dc_bert_destroy(a);
    dc_bert_destroy(b);

    remove_dir(dir);
    remove_dir(rdir);
    dc_backend_destroy(gpu);
    printf("%d of %d checks passed\n", checks - failures, checks);
    return failures ? 1 : 0;
}

/* Every op of the CUDA backend against the CPU backend on random inputs (normalised error,
 * as llama.cpp's test-backend-ops), plus the CUDA-only calls: grouped GEMM (grouped vs the
 * per-problem fallback vs a double reference, f32 and bf16/f16 → f32), f32 → bf16/f16 on the
 * device (bit-exact vs round to nearest even), weights memory, the pool (hits, cap → DC_ERR_OUT_OF_MEMORY),
 * file reads (cuFile or fallback vs forced pread) and green-context splitting. Exits 77 without
 * the CUDA library, a driver or a device; prints one line per check and fails on any miss. */
#include <stdint.h>
#include <unistd.h>

#include "gpu_common.h"
#include "tensor/quant.h"

static int failures, checks;
static dc_backend *cpu, *gpu;
static const dc_cuda_api *api;

static void report(const char *op, const char *what, double err, double tol) {
    bool ok = err <= tol;
    checks++;
    if (!ok) failures++;
    printf("%-4s %-14s %-44s nmse %.3g (tol %.1g)\n", ok ? "ok" : "FAIL", op, what, err, tol);
}

static void expect(bool cond, const char *op, const char *what) {
    checks++;
    if (!cond) failures++;
    printf("%-4s %-14s %s%s%s\n", cond ? "ok" : "FAIL", op, what, cond ? "" : ": ",
           cond ? "" : dc_error_detail());
}

static void *dev(const void *h, size_t bytes) {
    void *d = NULL;
    if (gpu->ops->alloc(gpu, bytes ? bytes : 4, &d) || gpu->ops->upload(gpu, d, h, bytes)) {
        fprintf(stderr, "device buffer of %zu bytes: %s\n", bytes, dc_error_detail());
        exit(1);
    }
    return d;
}

static float *host_of(const void *d, size_t n) {
    float *h = malloc((n ? n : 1) * sizeof *h);
    if (!h || gpu->ops->download(gpu, h, d, n * sizeof *h)) {
        fprintf(stderr, "download: %s\n", dc_error_detail());
        exit(1);
    }
    return h;
}

/* ---- linear ---- */

static void test_linear(dc_weight_format fmt, double tol) {
    static const uint32_t shapes[][2] = {{64, 64}, {768, 768}, {3072, 768}, {768, 3072}, {40, 72}};
    static const size_t rows[] = {1, 7, 128};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        uint32_t n = shapes[s][0], k = shapes[s][1];
        float *w = rnd_array((size_t)n * k, -0.1f, 0.1f), *b = rnd_array(n, -1, 1);
        dc_linear *lc = NULL, *lg = NULL;
        if (cpu->ops->linear_create(cpu, w, b, n, k, DC_WEIGHTS_F32, &lc)) exit(1);
        dc_status st = gpu->ops->linear_create(gpu, w, b, n, k, fmt, &lg);
        char what[96];
        if (fmt == DC_WEIGHTS_FP8_E4M3 && (k % 16 || n % 16)) {
            snprintf(what, sizeof what, "%ux%u refused (not multiples of 16)", n, k);
            expect(st == DC_ERR_UNSUPPORTED_FORMAT, "linear fp8", what);
            cpu->ops->linear_destroy(cpu, lc);
            free(w), free(b);
            continue;
        }
        if (st) {
            snprintf(what, sizeof what, "%s %ux%u create", dc_weight_format_name(fmt), n, k);
            expect(false, "linear", what);
            cpu->ops->linear_destroy(cpu, lc);
            free(w), free(b);
            continue;
        }
        for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
            size_t m = rows[r];
            float *x = rnd_array(m * k, -1, 1), *yc = malloc(m * n * sizeof *yc);
            float *dx = dev(x, m * k * sizeof *x), *dy = NULL;
            gpu->ops->alloc(gpu, m * n * sizeof *dy, (void **)&dy);
            if (cpu->ops->linear_forward(cpu, lc, x, m, yc)) exit(1);
            st = gpu->ops->linear_forward(gpu, lg, dx, m, dy);
            float *yg = host_of(dy, m * n);
            snprintf(what, sizeof what, "%s %ux%u rows %zu", dc_weight_format_name(fmt), n, k, m);
            if (st) expect(false, "linear", what);
            else report("linear", what, all_finite(yg, m * n) ? nmse(yg, yc, m * n) : INFINITY, tol);
            gpu->ops->release(gpu, dx);
            gpu->ops->release(gpu, dy);
            free(x), free(yc), free(yg);
        }
        cpu->ops->linear_destroy(cpu, lc);
        gpu->ops->linear_destroy(gpu, lg);
        free(w), free(b);
    }
}

/* ---- element-wise ---- */

static void test_layernorm(void) {
    static const size_t cols[] = {768, 1000, 33};
    for (size_t c = 0; c < 3; c++)
        for (int res = 0; res < 2; res++) {
            size_t rows = 9, n = rows * cols[c];
            float *x = rnd_array(n, -3, 3), *r = rnd_array(n, -1, 1);
            float *g = rnd_array(cols[c], 0.5f, 1.5f), *b = rnd_array(cols[c], -0.2f, 0.2f);
            float *yc = malloc(n * sizeof *yc);
            cpu->ops->layernorm(cpu, x, res ? r : NULL, g, b, 1e-12f, rows, cols[c], yc);
            float *dx = dev(x, n * 4), *dr = dev(r, n * 4), *dg = dev(g, cols[c] * 4);
            /* y aliases x on the GPU; beta stays a host array (the models pass host params) */
            gpu->ops->layernorm(gpu, dx, res ? dr : NULL, dg, b, 1e-12f, rows, cols[c], dx);
            float *yg = host_of(dx, n);
            char what[64];
            snprintf(what, sizeof what, "%zux%zu%s, in place, host beta", rows, cols[c],
                     res ? " +residual" : "");
            report("layernorm", what, nmse(yg, yc, n), 1e-10);
            gpu->ops->release(gpu, dx), gpu->ops->release(gpu, dr), gpu->ops->release(gpu, dg);
            free(x), free(r), free(g), free(b), free(yc), free(yg);
        }
}

static void test_activation_add(void) {
    const size_t n = 100003;
    for (int a = DC_ACT_GELU_ERF; a <= DC_ACT_RELU; a++) {
        float *x = rnd_array(n, -8, 8), *xc = malloc(n * 4);
        memcpy(xc, x, n * 4);
        cpu->ops->activation(cpu, (dc_activation)a, xc, n);
        float *dx = dev(x, n * 4);
        gpu->ops->activation(gpu, (dc_activation)a, dx, n);
        float *yg = host_of(dx, n);
        report("activation", dc_activation_name((dc_activation)a), nmse(yg, xc, n), 1e-10);
        gpu->ops->release(gpu, dx);
        free(x), free(xc), free(yg);
    }
    float *y = rnd_array(n, -1, 1), *x = rnd_array(n, -1, 1), *yc = malloc(n * 4);
    memcpy(yc, y, n * 4);
    cpu->ops->add(cpu, yc, x, n);
    float *dy = dev(y, n * 4), *dx = dev(x, n * 4);
    gpu->ops->add(gpu, dy, dx, n);
    float *yg = host_of(dy, n);
    report("add", "100003", nmse(yg, yc, n), 0);
    gpu->ops->release(gpu, dy), gpu->ops->release(gpu, dx);
    free(y), free(x), free(yc), free(yg);
}

/* SPLADE's max pooling: a vocabulary-wide row, a NaN (ignored) and the exact maxima. */
static void test_col_max(void) {
    static const size_t shapes[][2] = {{1, 30522}, {77, 30522}, {300, 1000}};
    for (size_t i = 0; i < 3; i++) {
        const size_t rows = shapes[i][0], cols = shapes[i][1], n = rows * cols;
        float *x = rnd_array(n, -10, 4), *wc = malloc(cols * 4);
        if (rows > 1) x[n / 2] = NAN; /* its column still has finite rows */
        cpu->ops->col_max(cpu, x, rows, cols, wc);
        float *dx = dev(x, n * 4), *dw = NULL;
        expect(gpu->ops->alloc(gpu, cols * 4, (void **)&dw) == DC_OK, "col_max", "output buffer");
        gpu->ops->col_max(gpu, dx, rows, cols, dw);
        float *wg = host_of(dw, cols);
        char what[64];
        snprintf(what, sizeof what, "%zux%zu%s", rows, cols, rows > 1 ? ", one NaN" : "");
        report("col_max", what, all_finite(wg, cols) ? nmse(wg, wc, cols) : INFINITY, 0);
        gpu->ops->release(gpu, dx), gpu->ops->release(gpu, dw);
        free(x), free(wc), free(wg);
    }
}

/* Longformer's gather of global rows and the scatter back: both row lists, one, none. */
static void test_copy_rows(void) {
    const size_t rows = 40, cols = 768, n = 5;
    const uint32_t list[5] = {0, 3, 17, 18, 39}, other[5] = {2, 0, 4, 1, 3};
    const struct {
        const uint32_t *dr, *sr;
        const char *what;
    } cases[] = {{NULL, list, "gather 5 of 40 rows"},
                 {list, NULL, "scatter 5 rows into 40"},
                 {list, other, "rows to rows, both lists"},
                 {NULL, NULL, "5 rows in order"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float *src = rnd_array(rows * cols, -2, 2), *dst = rnd_array(rows * cols, -2, 2);
        float *want = malloc(rows * cols * 4);
        memcpy(want, dst, rows * cols * 4);
        cpu->ops->copy_rows(cpu, want, cases[c].dr, src, cases[c].sr, n, cols);
        float *ds = dev(src, rows * cols * 4), *dd = dev(dst, rows * cols * 4);
        gpu->ops->copy_rows(gpu, dd, cases[c].dr, ds, cases[c].sr, n, cols);
        float *got = host_of(dd, rows * cols);
        report("copy_rows", cases[c].what, nmse(got, want, rows * cols), 0);
        gpu->ops->release(gpu, ds), gpu->ops->release(gpu, dd);
        free(src), free(dst), free(want), free(got);
    }
}

static void test_embed_sum(void) {
    const size_t rows = 37, cols = 96, vocab = 500, npos = 64;
    float *t0 = rnd_array(vocab * cols, -1, 1), *t1 = rnd_array(npos * cols, -1, 1),
          *t2 = rnd_array(2 * cols, -1, 1);
    uint32_t i0[37], i1[37], i2[37];
    for (size_t r = 0; r < rows; r++)
        i0[r] = (uint32_t)(rnd(0, 1) * (vocab - 1)), i1[r] = (uint32_t)r, i2[r] = r % 2;
    float *yc = malloc(rows * cols * 4);
    for (int on_dev = 0; on_dev < 2; on_dev++)
        for (int with2 = 0; with2 < 2; with2++) {
            cpu->ops->embed_sum(cpu, rows, cols, t0, i0, t1, i1, with2 ? t2 : NULL, i2, yc);
            float *d0 = on_dev ? dev(t0, vocab * cols * 4) : t0;
            float *d1 = on_dev ? dev(t1, npos * cols * 4) : t1;
            float *d2 = on_dev ? dev(t2, 2 * cols * 4) : t2;
            float *dy = NULL;
            gpu->ops->alloc(gpu, rows * cols * 4, (void **)&dy);
            gpu->ops->embed_sum(gpu, rows, cols, d0, i0, d1, i1, with2 ? d2 : NULL, i2, dy);
            float *yg = host_of(dy, rows * cols);
            char what[64];
            snprintf(what, sizeof what, "%s tables, %d tables", on_dev ? "device" : "host",
                     with2 ? 3 : 2);
            report("embed_sum", what, nmse(yg, yc, rows * cols), 1e-14);
            if (on_dev) gpu->ops->release(gpu, d0), gpu->ops->release(gpu, d1), gpu->ops->release(gpu, d2);
            gpu->ops->release(gpu, dy);
            free(yg);
        }
    free(t0), free(t1), free(t2), free(yc);
}

/* ---- attention ---- */

typedef struct attn_case {
    const char *name;
    uint32_t heads, hd;
    uint32_t n_seqs, lens[6];
    bool key_mask, ex, global, rows;
    uint32_t left, right;
} attn_case;

/* kernel: "basic" (one block per query and head) or "tiled" (query tiles, K/V tiles in shared
 * memory): DC_CUDA_ATTN, read by the backend per call; "tiled" makes a call it cannot serve
 * fail, so a pass says the tiled kernel ran. */
static void run_attention(const attn_case *c, const char *kernel) {
    uint32_t start[7] = {0};
    for (uint32_t s = 0; s < c->n_seqs; s++) start[s + 1] = start[s] + c->lens[s];
    const uint32_t T = start[c->n_seqs], H = c->heads * c->hd;
    const size_t ld = 3 * (size_t)H; /* fused QKV rows */
    float *qkv = rnd_array((size_t)T * ld, -1, 1);
    uint8_t *km = malloc(T ? T : 1), *gm = malloc(T ? T : 1);
    for (uint32_t r = 0; r < T; r++) km[r] = rnd(0, 1) > 0.2f, gm[r] = 0;
    if (c->key_mask && c->n_seqs > 1) /* a sequence with every key masked: zeros */
        for (uint32_t r = start[1]; r < start[2]; r++) km[r] = 0;
    for (uint32_t s = 0; c->global && s < c->n_seqs; s++)
        if (c->lens[s]) gm[start[s]] = 1, gm[start[s] + c->lens[s] / 2] = 1;
    uint32_t rows[64], n_rows = 0;
    for (uint32_t r = 0; c->rows && r < T && n_rows < 64; r += 3) rows[n_rows++] = r;
    const uint32_t nq = c->rows ? n_rows : T;
    float *oc = rnd_array((size_t)nq * H, -1, 1), *og0 = malloc((size_t)nq * H * 4);
    memcpy(og0, oc, (size_t)nq * H * 4); /* rows the op skips keep these values on both */
    float *q = c->rows ? rnd_array((size_t)nq * H, -1, 1) : qkv;
    const size_t ldq = c->rows ? H : ld;
    dc_seq_batch sb = {c->n_seqs, start, c->key_mask ? km : NULL};
    dc_attn_opts o = {c->left, c->right, c->global ? gm : NULL, c->rows ? rows : NULL, n_rows};
    const float scale = 1.0f / sqrtf((float)c->hd);
    setenv("DC_CUDA_ATTN", kernel, 1);
    dc_status sc = c->ex ? cpu->ops->attention_ex(cpu, q, ldq, qkv + H, qkv + 2 * H, ld, oc, H,
                                                  c->heads, c->hd, scale, &sb, &o)
                         : cpu->ops->attention(cpu, q, ldq, qkv + H, qkv + 2 * H, ld, oc, H,
                                               c->heads, c->hd, scale, &sb);
    float *dqkv = dev(qkv, (size_t)T * ld * 4), *dq = c->rows ? dev(q, (size_t)nq * H * 4) : dqkv;
    float *dout = dev(og0, (size_t)nq * H * 4);
    dc_status sg = c->ex ? gpu->ops->attention_ex(gpu, dq, ldq, dqkv + H, dqkv + 2 * H, ld, dout,
                                                  H, c->heads, c->hd, scale, &sb, &o)
                         : gpu->ops->attention(gpu, dq, ldq, dqkv + H, dqkv + 2 * H, ld, dout, H,
                                               c->heads, c->hd, scale, &sb);
    unsetenv("DC_CUDA_ATTN");
    float *og = host_of(dout, (size_t)nq * H);
    char what[96];
    snprintf(what, sizeof what, "%s %s (%u tokens, %ux%u)", kernel, c->name, T, c->heads, c->hd);
    if (sc || sg) expect(false, "attention", what);
    else report("attention", what, nmse(og, oc, (size_t)nq * H), 1e-10);
    gpu->ops->release(gpu, dqkv), gpu->ops->release(gpu, dout);
    if (c->rows) gpu->ops->release(gpu, dq), free(q);
    free(qkv), free(km), free(gm), free(oc), free(og0), free(og);
}

static void test_attention(void) {
    const uint32_t U = DC_ATTN_UNBOUNDED;
    const attn_case cases[] = {
        {"full", 4, 32, 4, {5, 17, 64, 1}, false, false, false, false, U, U},
        {"key mask, masked seq", 12, 64, 5, {9, 30, 0, 128, 3}, true, false, false, false, U, U},
        {"long (online softmax)", 2, 64, 1, {700}, true, false, false, false, U, U},
        {"band 4/4", 4, 32, 3, {40, 7, 100}, true, true, false, false, 4, 4},
        {"causal", 4, 32, 2, {33, 20}, false, true, false, false, U, 0},
        {"band + globals", 4, 32, 3, {60, 9, 130}, true, true, true, false, 8, 8},
        {"rows + globals", 4, 32, 3, {60, 9, 130}, false, true, true, true, 8, 8},
        {"head_dim 80", 3, 80, 2, {50, 19}, true, false, false, false, U, U},
        /* tile edges (64 queries, 32 keys per tile), packed sequences of mixed lengths */
        {"lengths 1..65", 2, 64, 5, {1, 7, 31, 64, 65}, false, false, false, false, U, U},
        {"128 + 257, masked seq", 2, 32, 3, {128, 257, 7}, true, false, false, false, U, U},
        {"head_dim 128", 2, 128, 4, {65, 31, 1, 64}, true, false, false, false, U, U},
        {"head_dim 30 (unaligned)", 3, 30, 2, {33, 70}, true, false, false, false, U, U},
        {"query rows, no band", 4, 32, 3, {60, 9, 130}, true, true, false, true, U, U},
    };
    /* both kernels against the CPU; cases with a band or globals have only the basic one */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const attn_case *c = &cases[i];
        run_attention(c, "basic");
        if (!c->global && c->left == U && c->right == U && c->hd <= 128) run_attention(c, "tiled");
    }
    /* DC_CUDA_ATTN=tiled refuses what the tiled kernel cannot do (a band), naming it */
    float *d = NULL; /* 4 tokens of one head of 32: nothing is read before the refusal */
    if (gpu->ops->alloc(gpu, 4 * 96 * sizeof *d, (void **)&d)) exit(1);
    uint32_t start[2] = {0, 4};
    dc_seq_batch sb = {1, start, NULL};
    dc_attn_opts o = {2, 2, NULL, NULL, 0};
    setenv("DC_CUDA_ATTN", "tiled", 1);
    dc_status st = gpu->ops->attention_ex(gpu, d, 96, d, d, 96, d, 32, 1, 32, 1.0f, &sb, &o);
    unsetenv("DC_CUDA_ATTN");
    expect(st == DC_ERR_INVALID_ARGUMENT && strstr(dc_error_detail(), "band"), "attention",
           "DC_CUDA_ATTN=tiled refuses a band");
    gpu->ops->release(gpu, d);
}

/* One attention call (4 sequences, 4 heads of 32, no mask) on `be` with DC_CUDA_ATTN = env
 * (NULL: unset); the output on the host. */
static float *attention_on(dc_backend *be, const char *env, const float *qkv, uint32_t T,
                           const uint32_t *start) {
    const uint32_t H = 128, n = T * H;
    float *d = NULL, *out = malloc(n * sizeof *out);
    if (be->ops->alloc(be, (size_t)4 * n * sizeof *d, (void **)&d) ||
        be->ops->upload(be, d, qkv, (size_t)3 * n * sizeof *d))
        exit(1);
    dc_seq_batch sb = {4, start, NULL};
    if (env) setenv("DC_CUDA_ATTN", env, 1);
    dc_status st = be->ops->attention(be, d, 3 * H, d + H, d + 2 * H, 3 * H, d + 3 * (size_t)n,
                                      H, 4, 32, 0.17677669f, &sb);
    unsetenv("DC_CUDA_ATTN");
    if (st || be->ops->download(be, out, d + 3 * (size_t)n, n * sizeof *out)) exit(1);
    be->ops->release(be, d);
    return out;
}

/* dc_cuda_options.basic_attention (models.<name>.use_flash_attention = false): that context's
 * calls run the per-query kernel, the default one's the tiled kernel; DC_CUDA_ATTN still wins. */
static void test_attention_option(void) {
    dc_cuda_options bo = {.device = 0, .basic_attention = true};
    dc_backend *basic = NULL;
    if (dc_backend_cuda_create(&bo, &basic)) {
        expect(false, "attention", "a context with basic_attention");
        return;
    }
    const uint32_t start[5] = {0, 5, 22, 86, 87}, T = 87;
    float *qkv = rnd_array((size_t)T * 384, -1, 1);
    const size_t bytes = (size_t)T * 128 * sizeof(float);
    float *want_basic = attention_on(gpu, "basic", qkv, T, start);
    float *want_tiled = attention_on(gpu, "tiled", qkv, T, start);
    float *by_option = attention_on(basic, NULL, qkv, T, start);
    float *by_default = attention_on(gpu, NULL, qkv, T, start);
    float *env_wins = attention_on(basic, "tiled", qkv, T, start);
    const bool kernels_differ = memcmp(want_basic, want_tiled, bytes) != 0;
    printf("note attention     basic and tiled outputs %s bit for bit on this device\n",
           kernels_differ ? "differ" : "agree (the checks below cannot tell them apart)");
    expect(!memcmp(by_option, want_basic, bytes), "attention", "basic_attention runs the basic kernel");
    expect(!memcmp(by_default, want_tiled, bytes), "attention", "the default runs the tiled kernel");
    expect(!memcmp(env_wins, want_tiled, bytes), "attention", "DC_CUDA_ATTN overrides basic_attention");
    free(qkv), free(want_basic), free(want_tiled), free(by_option), free(by_default), free(env_wins);
    dc_backend_destroy(basic);
}

/* ---- CUDA-only calls ---- */

/* f16 bits of the finite or infinite f32 x, round to nearest even (a reference independent of
 * CUDA's: binary search over the non-negative f16 codes, which order like their values). */
static double f16_value(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return h & 0x8000 ? -v : v;
}

static uint16_t f16_rne(float x) {
    const uint16_t sign = signbit(x) ? 0x8000 : 0;
    const double a = fabs((double)x);
    if (a >= 65520.0) return sign | 0x7c00; /* past max + half an ulp: infinity */
    uint16_t lo = 0, hi = 0x7bff;           /* largest code with value <= a */
    while (lo < hi) {
        uint16_t mid = (uint16_t)((lo + hi + 1) / 2);
        if (f16_value(mid) <= a) lo = mid;
        else hi = (uint16_t)(mid - 1);
    }
    if (lo == 0x7bff) return sign | lo;
    double dl = a - f16_value(lo), du = f16_value((uint16_t)(lo + 1)) - a;
    uint16_t r = dl < du ? lo : du < dl ? (uint16_t)(lo + 1) : (lo & 1) ? (uint16_t)(lo + 1) : lo;
    return sign | r;
}

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Half of x (bf16 or f16), as the test's reference rounds it. */
static uint16_t half_ref(float x, dc_gemm_dtype t) {
    return t == DC_GEMM_BF16 ? dc_quant_bf16_from_f32(x) : f16_rne(x);
}

static float half_value(uint16_t h, dc_gemm_dtype t) {
    return t == DC_GEMM_BF16 ? dc_quant_bf16_to_f32(h) : (float)f16_value(h);
}

static void test_to_half(dc_gemm_dtype t) {
    const char *name = t == DC_GEMM_BF16 ? "bf16" : "f16";
    enum { N = 5000 };
    float *x = rnd_array(N, -1, 1);
    size_t i = 0;
    /* specials, ties (even and odd kept bit), just off ties, subnormals, overflow */
    const uint32_t special[] = {0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u,
                                0x3f808000u, 0x3f818000u, 0x3f807fffu, 0x3f808001u, 0x00000001u,
                                0x00018000u, 0x807fffffu, 0x7f7fffffu, 0x7f7f8000u, 0x3f801000u,
                                0x3f803000u, 0x3f800fffu, 0x33800000u, 0x33000000u, 0x33000001u,
                                0x477fe000u, 0x477ff000u, 0x477fefffu, 0x38800000u, 0x387fc000u};
    for (; i < sizeof special / sizeof special[0]; i++) x[i] = from_bits(special[i]);
    for (; i < N / 2; i++) x[i] = ldexpf(x[i], (int)(i % 60) - 30); /* exponents ±30 */
    for (; i < 3 * N / 4; i++) { /* exact ties of both formats */
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        x[i] = from_bits(t == DC_GEMM_BF16 ? (u & 0xffff0000u) | 0x8000u
                                           : (u & 0xffffe000u) | 0x1000u);
    }
    float *dx = dev(x, N * sizeof *x);
    void *dy = NULL;
    gpu->ops->alloc(gpu, N * sizeof(uint16_t), &dy);
    dc_status st = api->to_half(gpu, dx, dy, N, t);
    uint16_t *y = calloc(N, sizeof *y);
    if (st == DC_OK) st = gpu->ops->download(gpu, y, dy, N * sizeof *y);
    size_t bad = 0, first = N;
    for (size_t j = 0; st == DC_OK && j < N; j++) {
        uint16_t r = half_ref(x[j], t);
        bool same = isnan(x[j]) ? isnan(half_value(y[j], t)) : y[j] == r;
        if (!same && first == N) first = j;
        bad += !same;
    }
    char what[128];
    snprintf(what, sizeof what, "f32 -> %s, %d values bit-exact (%zu differ)", name, N, bad);
    if (first < N) {
        uint32_t u;
        memcpy(&u, &x[first], sizeof u);
        fprintf(stderr, "to_half %s: x bits %08x gave %04x, expected %04x\n", name, (unsigned)u,
                y[first], half_ref(x[first], t));
    }
    expect(st == DC_OK && bad == 0, "to_half", what);
    expect(api->to_half(gpu, dx, dy, N, DC_GEMM_F32) == DC_ERR_UNSUPPORTED_FORMAT, "to_half",
           "an f32 target is DC_ERR_UNSUPPORTED_FORMAT");
    gpu->ops->release(gpu, dx), gpu->ops->release(gpu, dy);
    free(x), free(y);
}

/* Grouped GEMM with f32, bf16 or f16 inputs and f32 output: the grouped call and the forced
 * per-problem fallback against a double reference on the inputs as the device sees them (half
 * inputs rounded first: their products are exact in f32, only the f32 accumulation differs). */
static void test_grouped(dc_gemm_dtype t) {
    const bool half = t != DC_GEMM_F32;
    const char *name = t == DC_GEMM_BF16 ? "bf16" : half ? "f16" : "f32";
    const char *op = half ? "grouped gemm ex" : "grouped gemm";
    const size_t es = half ? 2 : 4;
    const uint32_t ms[] = {0, 1, 7, 128, 33}, n = 96, k = 72, np = 5;
    dc_gemm_problem p[5], pf[5];
    float *ref[5];
    for (uint32_t i = 0; i < np; i++) {
        uint32_t m = ms[i];
        size_t nx = (size_t)m * k, nw = (size_t)n * k;
        float *hx = rnd_array(nx, -1, 1), *hw = rnd_array(nw, -1, 1);
        uint16_t *qx = malloc((nx + 1) * 2), *qw = malloc(nw * 2);
        if (half) {
            for (size_t j = 0; j < nx; j++) qx[j] = half_ref(hx[j], t), hx[j] = half_value(qx[j], t);
            for (size_t j = 0; j < nw; j++) qw[j] = half_ref(hw[j], t), hw[j] = half_value(qw[j], t);
        }
        ref[i] = calloc((size_t)m * n + 1, 4);
        for (uint32_t r = 0; r < m; r++)
            for (uint32_t c = 0; c < n; c++) {
                double acc = 0;
                for (uint32_t j = 0; j < k; j++) acc += (double)hx[r * k + j] * hw[c * k + j];
                ref[i][(size_t)r * n + c] = (float)acc;
            }
        p[i] = (dc_gemm_problem){m, n, k, dev(half ? (void *)qx : hx, nx * es),
                                 dev(half ? (void *)qw : hw, nw * es), NULL};
        gpu->ops->alloc(gpu, (size_t)m * n * 4 + 4, &p[i].y);
        pf[i] = p[i];
        gpu->ops->alloc(gpu, (size_t)m * n * 4 + 4, &pf[i].y);
        free(hx), free(hw), free(qx), free(qw);
    }
    char what[96];
    for (int forced = 0; forced <= 1; forced++) {
        dc_gemm_problem *q = forced ? pf : p;
        dc_status st = half ? api->grouped_gemm_ex(gpu, t, DC_GEMM_F32, q, np, forced)
                            : api->grouped_gemm(gpu, DC_GEMM_F32, q, np, forced);
        snprintf(what, sizeof what, "%s -> f32 %s, m in {0,1,7,128,33}", name,
                 forced ? "forced per-problem fallback" : "grouped call");
        expect(st == DC_OK, op, what);
        double worst = 0;
        for (uint32_t i = 0; i < np; i++) {
            size_t cnt = (size_t)ms[i] * n;
            if (!cnt) continue;
            float *y = host_of(q[i].y, cnt);
            double e = nmse(y, ref[i], cnt);
            worst = e > worst ? e : worst;
            free(y);
        }
        snprintf(what, sizeof what, "%s -> f32 %s vs double reference", name,
                 forced ? "fallback" : "grouped");
        report(op, what, worst, 1e-10);
    }
    if (half) {
        snprintf(what, sizeof what, "f32 -> %s is DC_ERR_UNSUPPORTED_FORMAT", name);
        expect(api->grouped_gemm_ex(gpu, DC_GEMM_F32, t, p, np, false) == DC_ERR_UNSUPPORTED_FORMAT,
               op, what);
    }
    for (uint32_t i = 0; i < np; i++) {
        gpu->ops->release(gpu, (void *)p[i].x), gpu->ops->release(gpu, (void *)p[i].w);
        gpu->ops->release(gpu, p[i].y), gpu->ops->release(gpu, pf[i].y);
        free(ref[i]);
    }
}

/* What a fresh context holds of its pool: cuBLAS's workspace, in weights memory (gemm.c). */
static size_t context_weights(void) {
    dc_cuda_options o = {.device = 0};
    dc_backend *be = NULL;
    dc_cuda_pool_stats ps = {0};
    if (dc_backend_cuda_create(&o, &be) == DC_OK) api->pool_stats(be, &ps);
    dc_backend_destroy(be);
    return ps.weights;
}

/* Weights memory: exact sizes outside the classes, counted in the stats and under the cap
 * (1 MiB above what the context itself holds). */
static void test_weights(void) {
    const size_t ws = context_weights();
    dc_cuda_options o = {.device = 0, .pool_limit = ws + (1u << 20)};
    dc_backend *small = NULL;
    if (dc_backend_cuda_create(&o, &small)) {
        expect(false, "weights", "backend with a 1 MiB cap");
        return;
    }
    void *w1 = NULL, *w2 = NULL, *w3 = NULL, *b = NULL;
    dc_cuda_pool_stats ps;
    dc_status s1 = api->weights_alloc(small, 300000, &w1);
    dc_status s2 = api->weights_alloc(small, 500001, &w2);
    api->pool_stats(small, &ps);
    expect(s1 == DC_OK && s2 == DC_OK && ps.weights == ws + 800001 && ps.in_use == 0,
           "weights", "two allocations counted at their exact sizes (800001 bytes)");
    /* the weights hold the cap: a 256 KiB pool class no longer fits, nor do more weights */
    dc_status sb = small->ops->alloc(small, 200000, &b);
    dc_status s3 = api->weights_alloc(small, 300000, &w3);
    expect(sb == DC_ERR_OUT_OF_MEMORY && s3 == DC_ERR_OUT_OF_MEMORY, "weights",
           "the cap bounds pool blocks and weights together (DC_ERR_OUT_OF_MEMORY)");
    float h[64], back[64];
    for (int i = 0; i < 64; i++) h[i] = (float)i * 0.5f;
    bool rt = s2 == DC_OK && small->ops->upload(small, w2, h, sizeof h) == DC_OK &&
              small->ops->download(small, back, w2, sizeof back) == DC_OK &&
              !memcmp(h, back, sizeof h);
    expect(rt, "weights", "upload and download through weights memory");
    api->weights_free(small, w1);
    api->weights_free(small, NULL);
    sb = small->ops->alloc(small, 200000, &b);
    api->pool_stats(small, &ps);
    expect(sb == DC_OK && ps.weights == ws + 500001 && ps.peak <= o.pool_limit, "weights",
           "freed weights make room again; peak within the cap");
    small->ops->release(small, b);
    api->weights_free(small, w2);
    api->pool_stats(small, &ps);
    expect(ps.weights == ws && ps.in_use == 0, "weights", "every weights allocation released");
    dc_backend_destroy(small);
}

static void test_pool(void) {
    dc_cuda_options o = {.device = 0, .pool_limit = context_weights() + (1u << 20)};
    dc_backend *small = NULL;
    if (dc_backend_cuda_create(&o, &small)) {
        expect(false, "pool", "backend with a 1 MiB cap");
        return;
    }
    void *a[5] = {0};
    bool ok = true;
    for (int i = 0; i < 4; i++) ok = ok && small->ops->alloc(small, 200000, &a[i]) == DC_OK;
    expect(ok, "pool", "four 200 kB blocks under a 1 MiB cap");
    dc_status st = small->ops->alloc(small, 200000, &a[4]);
    expect(st == DC_ERR_OUT_OF_MEMORY, "pool", "the fifth is DC_ERR_OUT_OF_MEMORY, no abort");
    small->ops->release(small, a[3]);
    dc_cuda_pool_stats before, after;
    api->pool_stats(small, &before);
    ok = small->ops->alloc(small, 150000, &a[3]) == DC_OK; /* same 256 KiB class */
    api->pool_stats(small, &after);
    expect(ok && after.hits == before.hits + 1 && after.misses == before.misses,
           "pool", "a released block serves the next request of its class (hit)");
    expect(after.peak <= o.pool_limit && after.failures >= 1 && after.in_use == 4u * 262144u,
           "pool", "peak within the cap, failure counted, in_use by class");
    for (int i = 0; i < 4; i++) small->ops->release(small, a[i]);
    api->pool_trim(small);
    api->pool_stats(small, &after);
    expect(after.cached == 0 && after.in_use == 0, "pool", "trim returns the cache");
    dc_backend_destroy(small);
}

/* What a new context takes from the device beyond its pool (cuBLAS and cuBLASLt handles, the
 * stream, driver state): measured, not asserted (cudaMemGetInfo moves in 2 MiB pages, and other
 * processes may allocate meanwhile); docs/gpu.md asks this question of a device run. */
static void measure_context_overhead(void) {
    dc_cuda_device_info a, b;
    dc_backend *ctx = NULL;
    dc_cuda_options o = {.device = 0};
    if (api->device_info(0, &a) || dc_backend_cuda_create(&o, &ctx)) {
        expect(false, "pool", "a context to measure");
        return;
    }
    dc_cuda_pool_stats ps;
    api->pool_stats(ctx, &ps);
    if (api->device_info(0, &b) == DC_OK) {
        const double taken = ((double)a.free_bytes - (double)b.free_bytes) / 1048576.0;
        const double pooled = (double)(ps.in_use + ps.cached + ps.weights) / 1048576.0;
        if (taken < pooled) /* the emulation reports a constant free size */
            printf("note pool           no measure of a context's memory outside the cap: free "
                   "device memory fell by %.1f MiB, less than its pool holds (%.1f MiB)\n",
                   taken, pooled);
        else
            printf("note pool           a new context took %.1f MiB of device memory, %.1f MiB of "
                   "it through its pool (cap %.0f MiB): %.1f MiB outside the cap\n",
                   taken, pooled, (double)ps.limit / 1048576.0, taken - pooled);
    }
    dc_backend_destroy(ctx);
}

static void test_file_read(void) {
    char path[] = "/tmp/dc_gpu_file_XXXXXX";
    int fd = mkstemp(path);
    const size_t size = (3u << 20) + 5;
    uint8_t *data = malloc(size);
    for (size_t i = 0; i < size; i++) data[i] = (uint8_t)(i * 131 + (i >> 9));
    if (fd < 0 || write(fd, data, size) != (ssize_t)size) {
        expect(false, "file_read", "temporary file");
        return;
    }
    close(fd);
    const uint64_t off = 4097;
    const size_t len = (1u << 20) + 3;
    void *d1 = NULL, *d2 = NULL;
    gpu->ops->alloc(gpu, len, &d1);
    gpu->ops->alloc(gpu, len, &d2);
    bool gds = false, posix_gds = true;
    dc_status a = api->file_read(gpu, path, off, len, d1, false, &gds);
    dc_status b = api->file_read(gpu, path, off, len, d2, true, &posix_gds);
    uint8_t *h1 = malloc(len), *h2 = malloc(len);
    gpu->ops->download(gpu, h1, d1, len);
    gpu->ops->download(gpu, h2, d2, len);
    char what[96];
    snprintf(what, sizeof what, "unaligned %zu bytes at %llu via %s", len,
             (unsigned long long)off, gds ? "cuFile" : "pread fallback");
    expect(a == DC_OK && !memcmp(h1, data + off, len), "file_read", what);
    expect(b == DC_OK && !posix_gds && !memcmp(h2, data + off, len), "file_read", "forced pread");
    bool gone = false;
    expect(api->file_read(gpu, "/nonexistent/x", 0, 16, d1, false, &gone) == DC_ERR_IO,
           "file_read", "a missing file is DC_ERR_IO");
    gpu->ops->release(gpu, d1), gpu->ops->release(gpu, d2);
    unlink(path);
    free(data), free(h1), free(h2);
}

static void test_green(void) {
    dc_cuda_partition part;
    dc_status st = api->green_split(gpu, 4, 8, &part);
    char what[200];
    if (st == DC_OK && part.green) {
        bool ok = part.n >= 1;
        for (uint32_t i = 0; i < part.n; i++) ok = ok && part.sm_count[i] >= 8;
        snprintf(what, sizeof what, "%u green contexts, SMs %u %u %u %u", part.n, part.sm_count[0],
                 part.sm_count[1], part.sm_count[2], part.sm_count[3]);
        expect(ok, "green", what);
    } else {
        snprintf(what, sizeof what, "fallback to one context (%s)", part.reason);
        expect(st == DC_OK && part.n == 1 && part.reason[0], "green", what);
    }
}

int main(void) {
    dc_cuda_options o = {.device = 0};
    gpu = gpu_or_skip("test_backend_ops", &o);
    if (dc_cuda_load(&api) || dc_backend_cpu_create(NULL, &cpu)) return 1;
    dc_cuda_device_info info;
    if (api->device_info(0, &info) == DC_OK)
        printf("device: %s (sm_%d%d), library %s\n", info.name, info.cc_major, info.cc_minor,
               dc_cuda_library_path());
    test_linear(DC_WEIGHTS_F32, 1e-10);
    test_linear(DC_WEIGHTS_BF16, 1e-4);
    test_linear(DC_WEIGHTS_F16, 1e-5);
    if (info.cc_major * 10 + info.cc_minor >= 89) test_linear(DC_WEIGHTS_FP8_E4M3, 1e-2);
    dc_cuda_options tf = {.device = 0, .allow_tf32 = true};
    dc_backend *keep = gpu;
    if (dc_backend_cuda_create(&tf, &gpu) == DC_OK) {
        test_linear(DC_WEIGHTS_F32, 1e-5); /* tf32: 10-bit mantissa products */
        dc_backend_destroy(gpu);
    }
    gpu = keep;
    test_layernorm();
    test_activation_add();
    test_col_max();
    test_copy_rows();
    test_embed_sum();
    test_attention();
    test_attention_option();
    test_grouped(DC_GEMM_F32);
    test_grouped(DC_GEMM_BF16);
    test_grouped(DC_GEMM_F16);
    test_to_half(DC_GEMM_BF16);
    test_to_half(DC_GEMM_F16);
    test_weights();
    test_pool();
    measure_context_overhead();
    test_file_read();
    test_green();
    dc_cuda_pool_stats ps;
    api->pool_stats(gpu, &ps);
    printf("pool: %llu hits, %llu misses, peak %zu bytes, %zu in use at the end\n",
           (unsigned long long)ps.hits, (unsigned long long)ps.misses, ps.peak, ps.in_use);
    expect(ps.in_use == 0, "pool", "every test buffer released");
    dc_backend_destroy(gpu);
    dc_backend_destroy(cpu);
    printf("%d of %d checks passed\n", checks - failures, checks);
    return failures ? 1 : 0;
}

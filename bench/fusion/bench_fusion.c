/* FuseMoE forward latency (issue 7 item 10): the default configuration (8 experts, top-2, hidden
 * 1024, 8320 → 1536), single item and batch 32, with the experts' output layers at zero (as
 * initialised: the experts are skipped) and non-zero (the cost of trained weights): fp32 on the
 * small-batch kernel (the default), fp32 with every expert group on oneDNN, bf16 weights, and
 * row by row; GFLOP/s of the expert products against the machine's sgemm peak; whether oneDNN
 * offers a bf16 matmul here. Prints the median of rounds, wall and thread-CPU time.
 *
 * usage: bench_fusion [seconds per case (1)] [hidden (1024)] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <oneapi/dnnl/dnnl.h>

#include "fusion/fusemoe.h"
#include "fusion/internal.h"
#include "fusion/rng.h"

static double now(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void random_concat(dc_concat_embedding *c, dc_rng *r) {
    memset(c, 0, sizeof *c);
    for (int m = 0; m < DC_NUM_MODELS; m++) {
        const dc_model_info *info = dc_model_info_get((dc_model_id)m);
        float *v = c->vector + info->offset;
        for (uint32_t i = 0; i < info->dim; i++) v[i] = (float)dc_rng_fast_normal(r);
        dc_vec_normalize(v, info->dim);
    }
    c->present_mask = DC_ALL_MODELS_MASK;
}

typedef struct result {
    double wall_ms, cpu_ms;
} result;

/* Median over rounds of one call on `n` items (64 distinct inputs in rotation). */
static result time_case(dc_fusemoe *f, dc_concat_embedding *pool, size_t pool_n, size_t n,
                        dc_fusion_exec exec, double seconds) {
    const dc_concat_embedding *in[64];
    dc_fused_embedding *out = calloc(n, sizeof *out);
    dc_fusion_call call;
    dc_fusion_call_init(&call);
    call.exec = exec;
    double walls[4096], cpus[4096];
    size_t rounds = 0, at = 0;
    double end = now(CLOCK_MONOTONIC) + seconds;
    for (int warm = 0; warm < 2; warm++) {
        for (size_t i = 0; i < n; i++) in[i] = &pool[(at + i) % pool_n];
        if (dc_fusemoe_forward_ex(f, in, n, &call, out) != DC_OK) {
            fprintf(stderr, "forward failed: %s\n", dc_error_detail());
            exit(1);
        }
    }
    while (rounds < 4096 && (rounds < 5 || now(CLOCK_MONOTONIC) < end)) {
        for (size_t i = 0; i < n; i++) in[i] = &pool[(at + i) % pool_n];
        at += n;
        double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
        dc_status st = dc_fusemoe_forward_ex(f, in, n, &call, out);
        double w1 = now(CLOCK_MONOTONIC), c1 = now(CLOCK_PROCESS_CPUTIME_ID);
        if (st != DC_OK) exit(1);
        walls[rounds] = (w1 - w0) * 1e3;
        cpus[rounds] = (c1 - c0) * 1e3;
        rounds++;
    }
    qsort(walls, rounds, sizeof *walls, cmp);
    qsort(cpus, rounds, sizeof *cpus, cmp);
    free(out);
    return (result){walls[rounds / 2], cpus[rounds / 2]};
}

/* The machine's measured sgemm throughput on a large product (GFLOP/s). */
static double sgemm_peak(double seconds) {
    const int m = 256, n = 1024, k = 8320;
    float *a = malloc((size_t)m * k * sizeof *a), *b = malloc((size_t)n * k * sizeof *b),
          *c = malloc((size_t)m * n * sizeof *c);
    for (size_t i = 0; i < (size_t)m * k; i++) a[i] = (float)(i % 17) * 0.01f;
    for (size_t i = 0; i < (size_t)n * k; i++) b[i] = (float)(i % 13) * 0.01f;
    dnnl_sgemm('N', 'T', m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
    double best = 0.0, end = now(CLOCK_MONOTONIC) + seconds;
    int reps = 0;
    while (reps < 3 || now(CLOCK_MONOTONIC) < end) {
        double t0 = now(CLOCK_MONOTONIC);
        dnnl_sgemm('N', 'T', m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
        double g = 2.0 * m * n * k / (now(CLOCK_MONOTONIC) - t0) * 1e-9;
        if (g > best) best = g;
        reps++;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

static const char *bf16_matmul_impl(void) {
    static char buf[128];
    dnnl_engine_t eng;
    if (dnnl_engine_create(&eng, dnnl_cpu, 0) != dnnl_success) return "(no engine)";
    dnnl_memory_desc_t a, b, c;
    dnnl_dims_t ad = {32, DC_FUSION_IN}, bd = {DC_FUSION_IN, 1024}, cd = {32, 1024};
    dnnl_memory_desc_init_by_tag(&a, 2, ad, dnnl_bf16, dnnl_ab);
    dnnl_memory_desc_init_by_tag(&b, 2, bd, dnnl_bf16, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&c, 2, cd, dnnl_f32, dnnl_ab);
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd;
    snprintf(buf, sizeof buf, "unimplemented");
    if (dnnl_matmul_desc_init(&md, &a, &b, NULL, &c) == dnnl_success &&
        dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL) == dnnl_success) {
        const char *impl = NULL;
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
        snprintf(buf, sizeof buf, "%s", impl ? impl : "?");
        dnnl_primitive_desc_destroy(pd);
    }
    dnnl_engine_destroy(eng);
    return buf;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    uint32_t hidden = argc > 2 ? (uint32_t)atoi(argv[2]) : DC_FUSION_DEFAULT_HIDDEN;
    if (!(seconds > 0) || hidden < 1) {
        fprintf(stderr, "usage: bench_fusion [seconds per case] [hidden]\n");
        return 2;
    }
    const size_t pool_n = 64;
    dc_concat_embedding *pool = calloc(pool_n, sizeof *pool);
    dc_rng r = dc_rng_make(7, 7);
    for (size_t i = 0; i < pool_n; i++) random_concat(&pool[i], &r);

    printf("FuseMoE 8320 -> 1536, 8 experts top-2, hidden %u, one process (OMP_NUM_THREADS=%s)\n",
           hidden, getenv("OMP_NUM_THREADS") ? getenv("OMP_NUM_THREADS") : "unset");
    double peak = sgemm_peak(seconds);
    /* expert products per item: top-2 × (8320·H + H·1536) multiply-adds */
    double flop_item = 2.0 * 2.0 * ((double)DC_FUSION_IN * hidden + (double)hidden * DC_FUSION_OUT);
    printf("machine sgemm (256x1024x8320): %.1f GFLOP/s; expert work %.1f MFLOP per item\n", peak,
           flop_item * 1e-6);
    printf("oneDNN bf16 matmul on this CPU: %s\n\n", bf16_matmul_impl());
    printf("%-36s %6s %10s %10s %10s %9s %7s\n", "case", "batch", "wall ms", "cpu ms",
           "ms/item", "GFLOP/s", "%peak");
    /* 0 untrained f32; 1 trained-shape f32 on the small-batch kernel; 2 the same with every
     * expert group on oneDNN (small_batch 0); 3 trained-shape bf16 */
    static const char *const names[4] = {"fp32, untrained (experts 0)", "fp32, trained-shape",
                                         "fp32, trained-shape, oneDNN", "bf16, trained-shape"};
    for (int variant = 0; variant < 4; variant++) {
        const int trained = variant > 0;
        dc_fusion_options o;
        dc_fusion_options_default(&o);
        o.hidden = hidden;
        if (trained) o.output_init = DC_INIT_XAVIER_UNIFORM;
        if (variant == 2) o.small_batch = 0;
        if (variant == 3) o.weights = DC_FUSION_WEIGHTS_BF16;
        dc_fusemoe *f = NULL;
        double t0 = now(CLOCK_MONOTONIC);
        if (dc_fusemoe_create_ex(&o, &f) != DC_OK) {
            fprintf(stderr, "create: %s\n", dc_error_detail());
            return 1;
        }
        double t_create = now(CLOCK_MONOTONIC) - t0;
        const size_t batches[2] = {1, 32};
        for (int bi = 0; bi < 2; bi++)
            for (int ex = 0; ex < (variant == 1 && batches[bi] > 1 ? 2 : 1); ex++) {
                result res = time_case(f, pool, pool_n, batches[bi],
                                       ex ? DC_FUSION_EXEC_ROWWISE : DC_FUSION_EXEC_GROUPED, seconds);
                char name[64];
                snprintf(name, sizeof name, "%s%s", names[variant], ex ? ", row-by-row" : "");
                double per = res.wall_ms / (double)batches[bi];
                double gf = trained ? flop_item * batches[bi] / (res.wall_ms * 1e-3) * 1e-9 : 0.0;
                if (trained)
                    printf("%-36s %6zu %10.3f %10.3f %10.3f %9.1f %6.0f%%\n", name, batches[bi],
                           res.wall_ms, res.cpu_ms, per, gf, 100.0 * gf / peak);
                else
                    printf("%-36s %6zu %10.3f %10.3f %10.3f %9s %7s\n", name, batches[bi],
                           res.wall_ms, res.cpu_ms, per, "-", "-");
            }
        printf("  (create: %.2f s, %.1f MiB host + prepared)\n", t_create,
               (double)dc_fusemoe_bytes(f) / (1024.0 * 1024.0));
        dc_fusemoe_destroy(f);
    }
    free(pool);
    return 0;
}

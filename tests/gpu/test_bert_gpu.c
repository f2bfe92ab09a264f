/* End to end: the random-weight BERT and Longformer fixtures (tests/tools/bert_fixture.c) run on
 * the CPU backend in fp32 and on the CUDA backend in fp32, bf16 and fp16 (and fp8 where the
 * device has it); every token row must match the CPU's by cosine (fp32 ≥ 0.99999, bf16/fp16
 * ≥ 0.9999, fp8 ≥ 0.99). Packed batch of mixed lengths with a key mask; Longformer through
 * the banded attention_ex, with a global token at the start of each sequence (its rows gathered
 * and scattered on the device by copy_rows). Exits 77 without a device. */
#include <sys/stat.h>
#include <unistd.h>

#include "bert_gpu_common.h"
#include "gpu_common.h"
#include "models/bert.h"

#include "../tools/bert_fixture.c"

static int failures, checks;

static void remove_dir(const char *dir) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

static void run_fixture(const char *name, dc_backend *cpu, dc_backend *gpu, bool fp8) {
    dc_fixture_spec spec;
    if (!dc_fixture_named(name, &spec)) exit(1);
    spec.hidden = 256, spec.heads = 4, spec.intermediate = 1024, spec.layers = 2;
    char dir[] = "/tmp/dc_gpu_fx_XXXXXX";
    if (!mkdtemp(dir) || dc_fixture_write(dir, &spec) != 0) exit(1);
    dc_bert *ref = NULL;
    if (load(dir, cpu, DC_WEIGHTS_F32, &ref)) {
        fprintf(stderr, "%s on the cpu: %s\n", name, dc_error_detail());
        exit(1);
    }
    const dc_bert_config *cfg = dc_bert_config_of(ref);
    const uint32_t lens[] = {1, 17, 33, 8, 30};
    uint32_t start[6] = {0};
    for (int s = 0; s < 5; s++) start[s + 1] = start[s] + lens[s];
    const uint32_t T = start[5], H = cfg->hidden;
    uint32_t ids[128];
    uint8_t mask[128];
    for (uint32_t r = 0; r < T; r++) {
        ids[r] = 5 + (uint32_t)(rnd(0, 1) * (float)(cfg->vocab_size - 6));
        mask[r] = rnd(0, 1) > 0.1f;
    }
    for (int s = 0; s < 5; s++) mask[start[s]] = 1; /* every sequence sees at least one key */
    dc_bert_batch b = {5, start, ids, NULL, mask};
    /* Longformer: global attention on each sequence's first token, as E5 puts it on <s> */
    uint8_t global[128] = {0};
    const bool lf = cfg->kind == DC_BERT_KIND_LONGFORMER;
    for (int s = 0; s < 5; s++) global[start[s]] = 1;
    const uint8_t *gm = lf ? global : NULL;
    float *yc = malloc((size_t)T * H * sizeof *yc), *yg = malloc((size_t)T * H * sizeof *yg);
    dc_status st = dc_bert_forward_global(ref, &b, gm, yc);
    if (st) {
        fprintf(stderr, "%s forward on the cpu: %s\n", name, dc_error_detail());
        exit(1);
    }
    const struct {
        dc_weight_format f;
        double min_cos;
    } runs[] = {{DC_WEIGHTS_F32, 0.99999}, {DC_WEIGHTS_BF16, 0.9999}, {DC_WEIGHTS_F16, 0.9999},
                {DC_WEIGHTS_FP8_E4M3, 0.99}};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        if (runs[i].f == DC_WEIGHTS_FP8_E4M3 && !fp8) continue;
        dc_bert *m = NULL;
        checks++;
        st = load(dir, gpu, runs[i].f, &m);
        if (!st) st = dc_bert_forward_global(m, &b, gm, yg);
        double cs = st ? -1 : min_cosine(yg, yc, T, H);
        bool ok = st == DC_OK && cs >= runs[i].min_cos;
        if (!ok) failures++;
        printf("%-4s %-11s %-5s %u tokens: min row cosine %.7f (need %.5f)%s%s\n", ok ? "ok" : "FAIL",
               name, dc_weight_format_name(runs[i].f), T, cs, runs[i].min_cos, st ? ": " : "",
               st ? dc_error_detail() : "");
        dc_bert_destroy(m);
    }
    dc_bert_destroy(ref);
    free(yc), free(yg);
    remove_dir(dir);
}

int main(void) {
    dc_backend *gpu = gpu_or_skip("test_bert_gpu", NULL), *cpu = NULL;
    const dc_cuda_api *api = NULL;
    if (dc_cuda_load(&api) || dc_backend_cpu_create(NULL, &cpu)) return 1;
    dc_cuda_device_info info;
    bool fp8 = api->device_info(0, &info) == DC_OK && info.cc_major * 10 + info.cc_minor >= 89;
    run_fixture("bert", cpu, gpu, fp8);
    run_fixture("roberta", cpu, gpu, fp8);
    run_fixture("longformer", cpu, gpu, fp8);
    dc_backend_destroy(gpu);
    dc_backend_destroy(cpu);
    printf("%d of %d checks passed\n", checks - failures, checks);
    return failures ? 1 : 0;
}

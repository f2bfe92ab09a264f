/* FuseMoE weight registry: checkpoints, checksum, fallback, versions, hot swap, rollback, and a
 * concurrent test that every result comes from exactly one weights version (seed L31). */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fusion/fusemoe.h"
#include "fusion/internal.h"
#include "fusion/registry.h"
#include "fusion/rng.h"
#include "test_support.h"

static void small_options(dc_fusion_options *o, uint64_t seed) {
    dc_fusion_options_default(o);
    o->hidden = 24;
    o->seed = seed;
    o->output_init = DC_INIT_XAVIER_UNIFORM; /* experts that change the output */
}

static void random_concat(dc_concat_embedding *c, uint32_t mask, dc_rng *r) {
    memset(c, 0, sizeof *c);
    for (int m = 0; m < DC_NUM_MODELS; m++) {
        if (!(mask & (1u << m))) continue;
        const dc_model_info *info = dc_model_info_get((dc_model_id)m);
        float *v = c->vector + info->offset;
        for (uint32_t i = 0; i < info->dim; i++) v[i] = (float)dc_rng_normal(r);
        dc_vec_normalize(v, info->dim);
    }
    c->present_mask = mask;
}

static char tmpdir[256];

static int setup_dir(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dc_fusion_reg_%ld", (long)getpid());
    mkdir(tmpdir, 0755);
    return 0;
}

static int teardown_dir(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int slot;
    char *b = buf[slot++ % 4];
    snprintf(b, 512, "%s/%s", tmpdir, name);
    return b;
}

static void test_save_load_round_trip(void **state) {
    (void)state;
    dc_fusion_options o;
    small_options(&o, 5);
    o.gating = DC_GATING_LAPLACE;
    o.temperature = 0.7;
    o.block_weights[DC_MODEL_CODE] = 0.3f;
    dc_fusion_weights *w = NULL;
    assert_ok(dc_fusion_weights_init(&o, &w));
    dc_fusion_metrics mt = {.present = true, .epoch = 3, .loss = 1.25, .validation_loss = 1.5,
                            .learning_rate = 1e-3, .recall_at_1 = 0.875};
    assert_ok(dc_fusion_weights_set_version(w, "1.2.0", &mt));
    assert_status(dc_fusion_weights_set_version(w, "../evil", NULL), DC_ERR_INVALID_VALUE);
    const char *path = tmp_path("a.safetensors");
    assert_ok(dc_fusion_weights_save(w, path, NULL));
    dc_fusion_weights *back = NULL;
    assert_ok(dc_fusion_weights_load(path, NULL, &back));
    const dc_fusion_version *v = dc_fusion_weights_version(back);
    assert_string_equal(v->version, "1.2.0");
    assert_string_equal(v->source, path);
    assert_int_equal(strlen(v->created), 20); /* 2026-01-02T03:04:05Z */
    assert_string_equal(v->checksum, dc_fusion_weights_version(w)->checksum);
    assert_int_equal(strncmp(v->checksum, "sha256:", 7), 0);
    assert_int_equal(strlen(v->checksum), 7 + 64);
    assert_int_equal(v->seed, 5);
    assert_true(v->metrics.present);
    assert_int_equal(v->metrics.epoch, 3);
    assert_true(v->metrics.recall_at_1 == 0.875);
    const dc_fusion_options *bo = dc_fusion_weights_options(back);
    assert_int_equal(bo->gating, DC_GATING_LAPLACE);
    assert_true(bo->temperature == 0.7);
    assert_int_equal(bo->hidden, 24);
    assert_memory_equal(bo->block_weights, dc_fusion_weights_options(w)->block_weights,
                        sizeof bo->block_weights);
    assert_int_equal(back->layout.total, w->layout.total);
    assert_memory_equal(back->arena, w->arena, w->layout.total * sizeof(float));
    /* a fusemoe from the checkpoint computes what the seeded one computes */
    dc_fusemoe *fa = NULL, *fb = NULL;
    assert_ok(dc_fusemoe_create_ex(&o, &fa));
    dc_fusion_options oc = o;
    oc.checkpoint = path;
    oc.checkpoint_strict = true;
    assert_ok(dc_fusemoe_create_ex(&oc, &fb));
    dc_concat_embedding *c = calloc(1, sizeof *c);
    dc_rng r = dc_rng_make(1, 1);
    random_concat(c, DC_ALL_MODELS_MASK, &r);
    const dc_concat_embedding *in[1] = {c};
    dc_fused_embedding x, y;
    dc_fused_init(&x);
    dc_fused_init(&y);
    assert_ok(dc_fusemoe_forward(fa, in, 1, &x));
    dc_fusion_call call;
    dc_fusion_call_init(&call);
    assert_ok(dc_fusemoe_forward_ex(fb, in, 1, &call, &y));
    assert_string_equal(call.version, "1.2.0");
    assert_memory_equal(x.vector, y.vector, sizeof x.vector);
    free(c);
    dc_fusemoe_destroy(fa);
    dc_fusemoe_destroy(fb);
    dc_fusion_version info;
    assert_ok(dc_fusion_checkpoint_verify(path, &info));
    assert_string_equal(info.version, "1.2.0");
    dc_fusion_weights_release(w);
    dc_fusion_weights_release(back);
}

static void corrupt_byte(const char *path, long from_end) {
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, -from_end, SEEK_END);
    int ch = fgetc(f);
    fseek(f, -from_end, SEEK_END);
    fputc(ch ^ 0x01, f);
    fclose(f);
}

static void test_checksum_and_corruption(void **state) {
    (void)state;
    dc_fusion_options o;
    small_options(&o, 6);
    o.num_experts = 2;
    o.top_k = 1;
    dc_fusion_weights *w = NULL;
    assert_ok(dc_fusion_weights_init(&o, &w));
    const char *path = tmp_path("c.safetensors");
    assert_ok(dc_fusion_weights_save(w, path, "2.0.0"));
    corrupt_byte(path, 9); /* one bit of the last expert's output bias */
    dc_fusion_weights *back = NULL;
    assert_status(dc_fusion_weights_load(path, NULL, &back), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("checksum mismatch");
    assert_detail_contains(path);
    assert_null(back);
    assert_status(dc_fusion_checkpoint_verify(path, NULL), DC_ERR_CHECKPOINT_CORRUPTED);
    /* verification can be turned off (the tensors are still checked for shape and NaN) */
    dc_fusion_options lax = o;
    lax.verify_checksum = false;
    assert_ok(dc_fusion_weights_load(path, &lax, &back));
    dc_fusion_weights_release(back);
    /* truncation */
    size_t len = 0;
    uint8_t *bytes = dc_test_read_file(path, &len);
    assert_non_null(bytes);
    const char *trunc = tmp_path("t.safetensors");
    FILE *f = fopen(trunc, "wb");
    fwrite(bytes, 1, len - 100, f);
    fclose(f);
    assert_int_not_equal(dc_fusion_weights_load(trunc, NULL, &back), DC_OK);
    assert_null(back);
    /* a NaN in a tensor is refused even without checksum verification */
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)bytes[i] << (8 * i);
    const float nan = NAN;
    memcpy(bytes + 8 + hlen + 4 * 10, &nan, 4); /* gate.norm.weight[10] */
    f = fopen(trunc, "wb");
    fwrite(bytes, 1, len, f);
    fclose(f);
    assert_status(dc_fusion_weights_load(trunc, &lax, &back), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("gate.norm.weight");
    free(bytes);
    /* not a FuseMoE checkpoint */
    assert_int_not_equal(dc_fusion_weights_load(dc_test_data_path("weights"), NULL, &back), DC_OK);
    dc_fusion_weights_release(w);
}

static void test_fallback_and_strict(void **state) {
    (void)state;
    dc_fusion_options o;
    small_options(&o, 9);
    o.checkpoint = tmp_path("missing.safetensors");
    dc_fusion_weights *w = NULL;
    assert_ok(dc_fusion_weights_resolve(&o, &w));
    const dc_fusion_version *v = dc_fusion_weights_version(w);
    assert_string_equal(v->version, "0.0.0-init");
    assert_string_equal(v->source, "zero-shot-seed-9");
    assert_non_null(strstr(v->fallback_reason, "missing.safetensors"));
    dc_fusion_weights_release(w);
    o.checkpoint_strict = true;
    assert_int_not_equal(dc_fusion_weights_resolve(&o, &w), DC_OK);
    dc_fusemoe *f = NULL;
    assert_int_not_equal(dc_fusemoe_create_ex(&o, &f), DC_OK);
    assert_null(f);
    /* no checkpoint configured: seeded, no reason */
    o.checkpoint = NULL;
    assert_ok(dc_fusion_weights_resolve(&o, &w));
    assert_string_equal(dc_fusion_weights_version(w)->fallback_reason, "");
    dc_fusion_weights_release(w);
}

static void test_registry_versions(void **state) {
    (void)state;
    dc_fusion_registry *r = NULL;
    assert_ok(dc_fusion_registry_open(tmp_path("reg"), &r));
    dc_fusion_options o;
    small_options(&o, 1);
    o.num_experts = 2;
    o.top_k = 1;
    dc_fusion_weights *w1 = NULL, *w2 = NULL;
    assert_ok(dc_fusion_weights_init(&o, &w1));
    o.seed = 2;
    assert_ok(dc_fusion_weights_init(&o, &w2));
    assert_ok(dc_fusion_registry_save(r, w1, "1.0.0"));
    assert_ok(dc_fusion_registry_save(r, w2, "1.1.0"));
    assert_status(dc_fusion_registry_save(r, w2, "1.1.0"), DC_ERR_INVALID_ARGUMENT);
    assert_detail_contains("already exists");
    assert_status(dc_fusion_registry_save(r, w2, "a/b"), DC_ERR_INVALID_VALUE);
    dc_fusion_version *list = NULL;
    size_t n = 0;
    assert_ok(dc_fusion_registry_list(r, &list, &n));
    assert_int_equal(n, 2);
    assert_string_equal(list[0].version, "1.0.0");
    assert_string_equal(list[1].version, "1.1.0");
    assert_int_equal(list[1].seed, 2);
    assert_string_equal(list[1].checksum, dc_fusion_weights_version(w2)->checksum);
    free(list);
    dc_fusion_weights *back = NULL;
    assert_ok(dc_fusion_registry_load(r, "1.1.0", NULL, &back));
    assert_memory_equal(back->arena, w2->arena, w2->layout.total * sizeof(float));
    dc_fusion_weights_release(back);
    assert_status(dc_fusion_registry_load(r, "9.9.9", NULL, &back), DC_ERR_NOT_FOUND);
    dc_fusion_weights_release(w1);
    dc_fusion_weights_release(w2);
    dc_fusion_registry_close(r);
}

static void test_swap_and_rollback(void **state) {
    (void)state;
    dc_fusion_options o;
    small_options(&o, 11);
    o.history = 2;
    dc_fusemoe *f = NULL;
    assert_ok(dc_fusemoe_create_ex(&o, &f));
    dc_fusion_weights *a = dc_fusemoe_weights(f), *b = NULL, *c = NULL, *bad = NULL;
    o.seed = 12;
    assert_ok(dc_fusion_weights_init(&o, &b));
    assert_ok(dc_fusion_weights_set_version(b, "b", NULL));
    o.seed = 13;
    assert_ok(dc_fusion_weights_init(&o, &c));
    assert_ok(dc_fusion_weights_set_version(c, "c", NULL));
    o.num_experts = 4;
    o.top_k = 2;
    assert_ok(dc_fusion_weights_init(&o, &bad));
    dc_concat_embedding *x = calloc(1, sizeof *x);
    dc_rng r = dc_rng_make(4, 4);
    random_concat(x, DC_ALL_MODELS_MASK, &r);
    const dc_concat_embedding *in[1] = {x};
    dc_fused_embedding ra, rb, out;
    dc_fusion_call call;
    dc_fusion_call_init(&call);
    assert_ok(dc_fusemoe_forward_ex(f, in, 1, &call, &ra));
    assert_int_equal(call.serial, dc_fusion_weights_version(a)->serial);
    assert_status(dc_fusemoe_swap(f, bad), DC_ERR_FUSION);
    assert_detail_contains("4 experts");
    assert_ok(dc_fusemoe_swap(f, b));
    assert_status(dc_fusion_weights_set_version(b, "b2", NULL), DC_ERR_INVALID_ARGUMENT);
    assert_ok(dc_fusemoe_forward_ex(f, in, 1, &call, &rb));
    assert_string_equal(call.version, "b");
    assert_memory_not_equal(ra.vector, rb.vector, sizeof ra.vector);
    assert_ok(dc_fusemoe_swap(f, c));
    assert_ok(dc_fusemoe_rollback(f)); /* c → b */
    assert_ok(dc_fusemoe_forward_ex(f, in, 1, &call, &out));
    assert_string_equal(call.version, "b");
    assert_memory_equal(out.vector, rb.vector, sizeof out.vector);
    assert_ok(dc_fusemoe_rollback(f)); /* b → a */
    assert_ok(dc_fusemoe_forward_ex(f, in, 1, &call, &out));
    assert_int_equal(call.serial, dc_fusion_weights_version(a)->serial);
    assert_memory_equal(out.vector, ra.vector, sizeof out.vector);
    assert_status(dc_fusemoe_rollback(f), DC_ERR_NOT_FOUND);
    /* history is bounded: with room for 2, the oldest falls off */
    assert_ok(dc_fusemoe_swap(f, b));
    assert_ok(dc_fusemoe_swap(f, c));
    assert_ok(dc_fusemoe_swap(f, b));
    assert_ok(dc_fusemoe_rollback(f));
    assert_ok(dc_fusemoe_rollback(f));
    assert_status(dc_fusemoe_rollback(f), DC_ERR_NOT_FOUND);
    free(x);
    dc_fusion_weights_release(a);
    dc_fusion_weights_release(b);
    dc_fusion_weights_release(c);
    dc_fusion_weights_release(bad);
    dc_fusemoe_destroy(f);
}

/* ---- concurrency: no torn reads ---- */

#define N_ROWS 6
#define N_READERS 3

typedef struct shared_state {
    dc_fusemoe *f;
    const dc_concat_embedding *const *in;
    dc_fused_embedding expect[2][N_ROWS];
    uint64_t serial[2];
    atomic_int stop;
    atomic_int calls, mixed, bad_serial, mismatched, errors;
    atomic_int seen[2];
} shared_state;

static double max_diff(const float *a, const float *b) {
    double m = 0.0;
    for (int i = 0; i < DC_DIM_FUSED; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static void *reader(void *p) {
    shared_state *s = p;
    dc_fused_embedding out[N_ROWS];
    while (!atomic_load(&s->stop)) {
        dc_fusion_call call;
        dc_fusion_call_init(&call);
        if (dc_fusemoe_forward_ex(s->f, s->in, N_ROWS, &call, out) != DC_OK) {
            atomic_fetch_add(&s->errors, 1);
            continue;
        }
        int ver = call.serial == s->serial[0] ? 0 : call.serial == s->serial[1] ? 1 : -1;
        if (ver < 0) {
            atomic_fetch_add(&s->bad_serial, 1);
            continue;
        }
        atomic_fetch_add(&s->seen[ver], 1);
        /* every row from the version the call reports, none from the other */
        for (int i = 0; i < N_ROWS; i++) {
            double own = max_diff(out[i].vector, s->expect[ver][i].vector);
            double other = max_diff(out[i].vector, s->expect[1 - ver][i].vector);
            if (own > 1e-6) atomic_fetch_add(&s->mismatched, 1);
            if (other <= 1e-6) atomic_fetch_add(&s->mixed, 1);
            if (memcmp(out[i].selected_experts, s->expect[ver][i].selected_experts,
                       DC_NUM_EXPERTS) != 0)
                atomic_fetch_add(&s->mismatched, 1);
        }
        atomic_fetch_add(&s->calls, 1);
    }
    return NULL;
}

static void test_concurrent_swap_no_torn_reads(void **state) {
    (void)state;
    dc_fusion_options o;
    small_options(&o, 21);
    o.hidden = 16;
    o.history = 1;
    dc_fusemoe *f = NULL;
    assert_ok(dc_fusemoe_create_ex(&o, &f));
    dc_fusion_weights *a = dc_fusemoe_weights(f), *b = NULL;
    o.seed = 22;
    assert_ok(dc_fusion_weights_init(&o, &b));
    assert_ok(dc_fusion_weights_set_version(b, "b", NULL));
    dc_concat_embedding *xs = calloc(N_ROWS, sizeof *xs);
    const dc_concat_embedding *in[N_ROWS];
    dc_rng r = dc_rng_make(8, 8);
    for (int i = 0; i < N_ROWS; i++) {
        random_concat(&xs[i], DC_ALL_MODELS_MASK, &r);
        in[i] = &xs[i];
    }
    shared_state *s = calloc(1, sizeof *s);
    s->f = f;
    s->in = in;
    assert_ok(dc_fusemoe_forward(f, in, N_ROWS, s->expect[0]));
    assert_ok(dc_fusemoe_swap(f, b));
    assert_ok(dc_fusemoe_forward(f, in, N_ROWS, s->expect[1]));
    assert_ok(dc_fusemoe_rollback(f));
    s->serial[0] = dc_fusion_weights_version(a)->serial;
    s->serial[1] = dc_fusion_weights_version(b)->serial;
    for (int i = 0; i < N_ROWS; i++) /* the versions really differ on every row */
        assert_true(max_diff(s->expect[0][i].vector, s->expect[1][i].vector) > 1e-3);
    pthread_t th[N_READERS];
    for (int t = 0; t < N_READERS; t++) assert_int_equal(pthread_create(&th[t], NULL, reader, s), 0);
    int swaps = 0;
    while (swaps < 400 && (atomic_load(&s->calls) < 60 || swaps < 40)) {
        assert_ok(dc_fusemoe_swap(f, swaps % 2 ? a : b));
        if (swaps % 7 == 3) assert_ok(dc_fusemoe_rollback(f));
        swaps++;
        nanosleep(&(struct timespec){0, 200000}, NULL);
    }
    atomic_store(&s->stop, 1);
    for (int t = 0; t < N_READERS; t++) pthread_join(th[t], NULL);
    print_message("%d swaps/rollbacks under %d readers: %d calls (%d on A, %d on B), torn %d, "
                  "mismatched %d\n",
                  swaps, N_READERS, atomic_load(&s->calls), atomic_load(&s->seen[0]),
                  atomic_load(&s->seen[1]), atomic_load(&s->mixed), atomic_load(&s->mismatched));
    assert_int_equal(atomic_load(&s->errors), 0);
    assert_int_equal(atomic_load(&s->bad_serial), 0);
    assert_int_equal(atomic_load(&s->mixed), 0);
    assert_int_equal(atomic_load(&s->mismatched), 0);
    assert_true(atomic_load(&s->calls) > 0);
    free(s);
    free(xs);
    dc_fusion_weights_release(a);
    dc_fusion_weights_release(b);
    dc_fusemoe_destroy(f);
}

/* A checkpoint written by tests/data/fusion/gen_fuzz_corpus.py (Python, stdlib only) from the
 * documented layout and checksum: the format does not depend on our writer. */
static void test_external_checkpoint(void **state) {
    (void)state;
    dc_fusion_weights *w = NULL;
    assert_ok(dc_fusion_weights_load(dc_test_data_path("fusion/python_h1.safetensors"), NULL, &w));
    const dc_fusion_version *v = dc_fusion_weights_version(w);
    assert_string_equal(v->version, "py-1");
    assert_true(v->metrics.present && v->metrics.epoch == 2 && v->metrics.recall_at_1 == 0.9);
    const dc_fusion_options *o = dc_fusion_weights_options(w);
    assert_int_equal(o->num_experts, 1);
    assert_int_equal(o->hidden, 1);
    assert_int_equal(o->top_k, 1); /* the run-time default 2 clamped to the file's 1 expert */
    /* the Python writer's fc1.weight[0][i] = ((13·i) mod 17 − 8)·0.002 */
    const float *fc1 = w->arena + w->layout.fc1_w[0];
    for (int i = 0; i < 40; i++) assert_float_equal(fc1[i], ((i * 13) % 17 - 8) * 0.002f, 1e-9f);
    dc_fusemoe *f = NULL;
    assert_ok(dc_fusemoe_create_from(w, NULL, &f));
    dc_concat_embedding *c = calloc(1, sizeof *c);
    dc_rng r = dc_rng_make(1, 2);
    random_concat(c, DC_ALL_MODELS_MASK, &r);
    const dc_concat_embedding *in[1] = {c};
    dc_fused_embedding out;
    dc_fused_init(&out);
    assert_ok(dc_fusemoe_forward(f, in, 1, &out));
    assert_ok(dc_fused_validate(&out));
    assert_int_equal(out.num_selected, 1);
    free(c);
    dc_fusemoe_destroy(f);
    dc_fusion_weights_release(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_load_round_trip),
        cmocka_unit_test(test_checksum_and_corruption),
        cmocka_unit_test(test_fallback_and_strict),
        cmocka_unit_test(test_registry_versions),
        cmocka_unit_test(test_swap_and_rollback),
        cmocka_unit_test(test_concurrent_swap_no_torn_reads),
        cmocka_unit_test(test_external_checkpoint),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}

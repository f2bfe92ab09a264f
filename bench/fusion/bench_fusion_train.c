/* Training on the synthetic pairs task with the default router (8 experts, top-2): paired
 * recall@1 on held-out pairs before and after, and the time per step.
 *
 * usage: bench_fusion_train [pairs (1024)] [epochs (3)] [hidden (32)] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "fusion/fusemoe.h"
#include "fusion/train.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    size_t n = argc > 1 ? (size_t)atol(argv[1]) : 1024;
    uint32_t epochs = argc > 2 ? (uint32_t)atoi(argv[2]) : 3;
    uint32_t hidden = argc > 3 ? (uint32_t)atoi(argv[3]) : 32;
    dc_fusion_synth_options so;
    dc_fusion_synth_options_default(&so);
    so.n = n;
    dc_fusion_dataset train, held;
    if (dc_fusion_synth(&so, &train) != DC_OK) return 1;
    so.n = 256;
    so.item_seed = 3;
    if (dc_fusion_synth(&so, &held) != DC_OK) return 1;
    dc_fusion_options o;
    dc_fusion_options_default(&o);
    o.hidden = hidden;
    dc_fusion_weights *w0 = NULL, *w1 = NULL;
    if (dc_fusion_weights_init(&o, &w0) != DC_OK) return 1;
    double before = 0.0, after = 0.0;
    dc_fusion_recall_at_1(w0, &held, &before);
    dc_fusion_train_options t;
    dc_fusion_train_options_default(&t);
    t.epochs = epochs;
    dc_fusion_metrics mt;
    double t0 = now();
    if (dc_fusion_train(&train, w0, &t, &w1, &mt) != DC_OK) {
        fprintf(stderr, "train: %s\n", dc_error_detail());
        return 1;
    }
    double secs = now() - t0;
    dc_fusion_recall_at_1(w1, &held, &after);
    size_t steps = (n / t.batch) * epochs;
    printf("synthetic task, %zu training pairs, 256 held-out: recall@1 %.3f -> %.3f "
           "(8 experts top-2, hidden %u, %u epochs, batch %u, lr %g, tau %g); %.1f s, %.0f ms/step\n",
           n, before, after, hidden, epochs, t.batch, t.lr, t.tau, secs, secs * 1e3 / (double)steps);
    dc_fusion_weights_release(w0);
    dc_fusion_weights_release(w1);
    dc_fusion_dataset_free(&train);
    dc_fusion_dataset_free(&held);
    return 0;
}

// Timing of the Swin MAE training step (not a test; run by hand):
//   build/bench_model [batch=10] [threads=2] [steps=3] [config|paper] [infer|train] [fp32|bf16]
// Allocates the model (training mode) plus two more parameter-sized buffers standing in for the
// AdamW state, runs forward+backward `steps` times after one warm-up step, and prints img/s,
// GFLOP/s, peak RSS and a per-part profile of the Swin blocks (wall seconds per step).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "model/swinmae/swin_mae.h"
#include "nn/nn.h"
#include "nn/swin_block.h"
#include "model/swinmae/flops.h"
#include "util/error.h"
#include "util/rng.h"
#include "util/timer.h"

static double cpu_seconds(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

int main(int argc, char **argv) {
    int B = argc > 1 ? atoi(argv[1]) : 10, threads = argc > 2 ? atoi(argv[2]) : 2, steps = argc > 3 ? atoi(argv[3]) : 3;
    swinmae_config cfg;
    swinmae_config_default(&cfg);
    if (argc > 4 && strcmp(argv[4], "paper") && swinmae_config_parse(&cfg, argv[4], "config")) return 1;
    nn_set_threads(threads);
    int prec = NN_FP32;
    if (argc > 6 && (nn_precision_parse(argv[6], &prec) || nn_set_precision(prec))) {
        fprintf(stderr, "bench_model: %s\n", as_error());
        return 1;
    }
    swinmae m;
    int infer = argc > 5 && !strcmp(argv[5], "infer");
    if (swinmae_create(&m, &cfg, B, !infer)) return 1;
    params_init(&m.table, m.params, 1);
    float *adam = calloc(2 * m.table.n_floats, sizeof(float));  // AdamW m and v
    for (size_t i = 0; i < 2 * m.table.n_floats; i++) adam[i] = 1e-3f;
    const int L = swinmae_num_tokens(&cfg);
    size_t nimg = (size_t)B * cfg.in_chans * cfg.img_size * cfg.img_size;
    float *img = malloc(nimg * sizeof(float));
    uint8_t *mask = malloc((size_t)B * L);
    rng r;
    rng_seed(&r, 5);
    for (size_t i = 0; i < nimg; i++) img[i] = (float)rng_uniform(&r);
    for (int i = 0; i < B * L; i++) mask[i] = rng_uniform(&r) < 0.35;

    if (!infer) swinmae_zero_grad(&m);
    swinmae_forward(&m, img, mask, B, !infer, 0);
    if (!infer) swinmae_backward(&m);
    nn_profile_on = 1;
    memset(nn_profile_sec, 0, sizeof nn_profile_sec);
    double tf = 0, tb = 0, c0 = cpu_seconds(), w0 = now_seconds();
    for (int s = 0; s < steps; s++) {
        if (!infer) swinmae_zero_grad(&m);
        double t0 = now_seconds();
        swinmae_forward(&m, img, mask, B, !infer, (uint64_t)s);
        double t1 = now_seconds();
        if (!infer) swinmae_backward(&m);
        tb += now_seconds() - t1;
        tf += t1 - t0;
    }
    double wall = now_seconds() - w0, cpu = cpu_seconds() - c0;
    double flops = (infer ? swinmae_flops_forward(&cfg) : swinmae_flops_train(&cfg)) * B * steps;
    printf("precision %s (%s)\n", nn_precision_name(prec), prec == NN_BF16 ? nn_bf16_kernel() : "sgemm");
    printf("batch %d threads %d: forward %.3f s, backward %.3f s per step; %.2f img/s, %.1f GFLOP/s; "
           "cpu/wall %.2f\n", B, threads, tf / steps, tb / steps, B * steps / wall, flops / wall * 1e-9, cpu / wall);
    printf("arena %.1f MiB, params+grads+adam %.1f MiB, peak RSS %.1f MiB\n", m.arena_floats * 4.0 / 1048576.0,
           m.table.n_floats * 16.0 / 1048576.0, peak_rss_bytes() / 1048576.0);
    double tot = 0;
    for (int k = 0; k < NN_PROF_COUNT; k++) tot += nn_profile_sec[k];
    for (int k = 0; k < NN_PROF_COUNT; k++)
        printf("  %-16s %7.3f s/step (%4.1f%%)\n", nn_profile_names[k], nn_profile_sec[k] / steps,
               100.0 * nn_profile_sec[k] / tot);
    printf("  blocks total     %7.3f s/step of %.3f\n", tot / steps, wall / steps);
    free(adam);
    free(img);
    free(mask);
    swinmae_free(&m);
    return 0;
}

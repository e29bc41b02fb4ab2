// Timing of autoDDPM detection (not a test; run by hand):
//   build/bench_autoddpm [config|paper] [batch=1] [threads=2] [full|forward] [reps=1]
// forward: times `reps` U-Net forwards of `batch` slices (after one warm-up; the mean) and prints the seconds
// per slice that autoDDPM's (t_recon + 1) + t_inpaint * resample forwards add up to; full: also
// runs the whole inference (reconstruct, mask, stitch, re-sample) of `batch` slices and times it.
// Prints wall and CPU seconds (on a shared machine CPU / threads is the steadier number).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "model/autoddpm/ddpm.h"
#include "nn/nn.h"
#include "util/rng.h"
#include "util/timer.h"

static double cpu_seconds(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

int main(int argc, char **argv) {
    ddpm_config c;
    ddpm_config_default(&c);
    if (argc > 1 && strcmp(argv[1], "paper") && ddpm_config_parse(&c, argv[1], "config")) {
        fprintf(stderr, "bench_autoddpm: bad config\n");
        return 1;
    }
    const int B = argc > 2 ? atoi(argv[2]) : 1, threads = argc > 3 ? atoi(argv[3]) : 2;
    const int full = argc > 4 && !strcmp(argv[4], "full"), reps = argc > 5 && atoi(argv[5]) > 0 ? atoi(argv[5]) : 1;
    nn_set_threads(threads);
    unet u;
    if (unet_create(&u, &c, B, 0)) return 1;
    rng r;
    rng_seed(&r, 1);
    for (size_t i = 0; i < u.table.n_floats; i++) u.params[i] = (float)(0.02 * rng_normal(&r));
    const size_t img = (size_t)c.in_chans * c.img_size * c.img_size, n = (size_t)B * img;
    float *x = malloc(sizeof(float) * n), t[64];
    for (size_t i = 0; i < n; i++) x[i] = (float)rng_uniform(&r);
    for (int b = 0; b < B; b++) t[b] = 100.0f;
    unet_forward(&u, x, t, B);
    double w = now_seconds(), cpu = cpu_seconds();
    for (int i = 0; i < reps; i++) unet_forward(&u, x, t, B);
    w = (now_seconds() - w) / reps, cpu = (cpu_seconds() - cpu) / reps;
    const int fwd = (c.t_recon + 1) + c.t_inpaint * c.resample;
    printf("autoDDPM: %zu parameters, %d px, batch %d, %d threads\n", u.table.n_floats, c.img_size, B, threads);
    printf("one U-Net forward (mean of %d): %.3f s wall, %.3f s CPU (%.3f s CPU / thread)\n", reps, w, cpu, cpu / threads);
    printf("%d forwards per slice: %.1f s/slice wall, %.1f s/slice CPU/thread (from the forward)\n", fwd, w * fwd / B,
           cpu / threads * fwd / B);
    if (full) {
        ddpm_sched s;
        ddpm_sched_init(&s, &c);
        ddpm_noise nz;
        ddpm_noise_init(&nz, c.seed, x, B, img, NULL);
        float *amap = malloc(sizeof(float) * n);
        w = now_seconds(), cpu = cpu_seconds();
        autoddpm_infer(&u, &s, x, B, &nz, NULL, NULL, NULL, amap);
        w = now_seconds() - w, cpu = cpu_seconds() - cpu;
        printf("full inference: %.2f s/slice wall, %.2f s/slice CPU/thread\n", w / B, cpu / threads / B);
        free(amap);
        ddpm_sched_free(&s);
    }
    free(x);
    unet_free(&u);
    return 0;
}

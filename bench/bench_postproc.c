// Timing of the A.1 post-processing on one synthetic 224x224 slice (not a test; run by hand):
//   build/bench_postproc [reps]
// Prints the median milliseconds per slice for the brats and mslub presets, with and without a
// finding (a slice whose filtered map is empty skips the segmentation).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/postproc.h"
#include "util/rng.h"
#include "util/timer.h"

enum { N = 224 };

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_ms(const float *map, const float *img, uint8_t *mask, const postproc_params *p, int reps) {
    double *t = malloc(sizeof(double) * reps);
    for (int r = 0; r < reps; r++) {
        double t0 = now_seconds();
        postprocess(mask, NULL, map, img, NULL, N, N, 1, p);
        t[r] = (now_seconds() - t0) * 1e3;
    }
    qsort(t, reps, sizeof(double), cmp_d);
    double m = t[reps / 2];
    free(t);
    return m;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 30;
    if (reps < 1) reps = 1;
    static float img[N * N], map[N * N], empty[N * N];
    static uint8_t mask[N * N];
    rng r;
    rng_seed(&r, 3);
    // Brain-like disc with tissue rings and noise, two lesions; a blocky map like 64/32 px windows.
    for (int y = 0; y < N; y++)
        for (int x = 0; x < N; x++) {
            double rr = hypot((x - 112) / 0.85, y - 112);
            double v = rr > 100 ? 0 : rr > 85 ? 0.3 : rr > 50 ? 0.55 : 0.45;
            if (hypot(x - 140, y - 90) < 14 || hypot(x - 80, y - 150) < 6) v = 0.9;
            img[x + N * y] = v > 0 ? (float)(v + 0.03 * rng_normal(&r)) : 0.0f;
            double m = 0.15 + 0.1 * rng_uniform(&r);
            if (x >= 120 && x < 160 && y >= 70 && y < 110) m = 0.8 + 0.2 * rng_uniform(&r);
            if (x >= 64 && x < 96 && y >= 134 && y < 166) m = 0.6 + 0.1 * rng_uniform(&r);
            map[x + N * y] = (float)m;
            empty[x + N * y] = (float)(0.3 * rng_uniform(&r));
        }
    const char *presets[] = {"brats", "mslub"};
    for (int i = 0; i < 2; i++) {
        postproc_params p;
        postproc_preset(&p, presets[i]);
        double with = median_ms(map, img, mask, &p, reps);
        double without = median_ms(empty, img, mask, &p, reps);
        p.seg_classes = 0;
        double filter_only = median_ms(map, img, mask, &p, reps);
        printf("%-6s 224x224: %.2f ms/slice with findings (segmentation + refinement), %.2f ms filter only, "
               "%.2f ms with no finding (median of %d)\n",
               presets[i], with, filter_only, without, reps);
    }
    return 0;
}

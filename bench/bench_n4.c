// Timing of N4 bias correction (src/prep/n4.c) on one 240x240x155 1 mm volume, the grid of
// `anoswin prep`'s output (not a test; run by hand):
//   build/bench_n4 [threads=1] [reps=3] [template=ch2bet]
// The Colin27 brain is centred on the grid, multiplied by a smooth 0.7..1.3 field, and corrected
// with the default options and the brain mask, then with no mask (Otsu foreground). Prints the
// median wall seconds of each and the correlation of the recovered log bias with the applied one.
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "data/synth.h"  // SYNTH_DEFAULT_TEMPLATE, SYNTH_NX/NY/NZ
#include "data/volume.h"
#include "prep/n4.h"
#include "util/error.h"
#include "util/timer.h"

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double corr_in(const float *a, const float *b, const uint8_t *m, size_t n) {
    double sa = 0, sb = 0, c = 0, saa = 0, sbb = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (m[i]) {
            sa += a[i];
            sb += b[i];
            k++;
        }
    sa /= k;
    sb /= k;
    for (size_t i = 0; i < n; i++)
        if (m[i]) {
            c += (a[i] - sa) * (b[i] - sb);
            saa += (a[i] - sa) * (a[i] - sa);
            sbb += (b[i] - sb) * (b[i] - sb);
        }
    return c / sqrt(saa * sbb);
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1, reps = argc > 2 ? atoi(argv[2]) : 3;
    const char *tpl = argc > 3 ? argv[3] : SYNTH_DEFAULT_TEMPLATE;
    omp_set_num_threads(threads < 1 ? 1 : threads);
    volume t;
    if (volume_read(&t, tpl) != 0) {
        fprintf(stderr, "bench_n4: %s\n", as_error());
        return 1;
    }
    int nx = SYNTH_NX, ny = SYNTH_NY, nz = SYNTH_NZ;
    size_t n = (size_t)nx * ny * nz;
    float *img = as_calloc(n, sizeof(float)), *truth = as_malloc(sizeof(float) * n);
    float *out = as_malloc(sizeof(float) * n), *lb = as_malloc(sizeof(float) * n);
    uint8_t *brain = as_calloc(n, 1);
    int sh[3] = {(nx - t.nx) / 2, (ny - t.ny) / 2, (nz - t.nz) / 2};
    for (int k = 0; k < nz; k++)
        for (int j = 0; j < ny; j++)
            for (int i = 0; i < nx; i++) {
                int si = i - sh[0], sj = j - sh[1], sk = k - sh[2];
                if (si < 0 || sj < 0 || sk < 0 || si >= t.nx || sj >= t.ny || sk >= t.nz) continue;
                float x = t.data[(size_t)si + (size_t)t.nx * ((size_t)sj + (size_t)t.ny * sk)];
                size_t p = (size_t)i + (size_t)nx * ((size_t)j + (size_t)ny * k);
                img[p] = x;
                brain[p] = x > 0;
            }
    volume_free(&t);
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < nz; k++)
        for (int j = 0; j < ny; j++)
            for (int i = 0; i < nx; i++) {
                double x = 2.0 * i / (nx - 1) - 1, y = 2.0 * j / (ny - 1) - 1, z = 2.0 * k / (nz - 1) - 1;
                // the field of tests/test_prep_n4.c
                double f = 0.5 * x - 0.3 * y + 0.4 * x * z + 0.6 * exp(-((x - 0.3) * (x - 0.3) + (y + 0.2) * (y + 0.2) + z * z) / 0.4) -
                           0.4 * exp(-((x + 0.5) * (x + 0.5) + (y - 0.5) * (y - 0.5) + (z + 0.3) * (z + 0.3)) / 0.3);
                truth[(size_t)i + (size_t)nx * ((size_t)j + (size_t)ny * k)] = (float)f;
                lo = fmin(lo, f);
                hi = fmax(hi, f);
            }
    for (size_t i = 0; i < n; i++) {
        truth[i] = (float)(log(0.7) + (truth[i] - lo) / (hi - lo) * (log(1.3) - log(0.7)));
        img[i] *= expf(truth[i]);
    }
    float sp[3] = {1, 1, 1};
    double *sec = as_malloc(sizeof(double) * (reps > 0 ? reps : 1));
    for (int m = 0; m < 2; m++) {
        for (int r = 0; r < reps; r++) {
            double t0 = now_seconds();
            if (n4_correct(img, m ? NULL : brain, nx, ny, nz, sp, NULL, out, lb) != 0) {
                fprintf(stderr, "bench_n4: %s\n", as_error());
                return 1;
            }
            sec[r] = now_seconds() - t0;
        }
        qsort(sec, reps, sizeof(double), cmp_d);
        printf("n4 %dx%dx%d, %s, %d thread(s): median %.3f s of %d (min %.3f), corr(log bias, truth) %.4f\n", nx, ny, nz,
               m ? "Otsu foreground" : "brain mask", threads, sec[reps / 2], reps, sec[0], corr_in(lb, truth, brain, n));
    }
    free(sec);
    free(img);
    free(truth);
    free(out);
    free(lb);
    free(brain);
    return 0;
}

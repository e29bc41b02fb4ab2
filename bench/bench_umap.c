// Timing of the UMAP embedding (not a test; run by hand), issue #20's budget of 30 s for 5,000
// latents on 2 cores:
//   OMP_NUM_THREADS=2 build/bench_umap [n=5000] [d=768] [init=spectral|random]
// Points from 4 Gaussian clusters in d dimensions (seed 1), embedded with umap-learn's defaults;
// prints the wall and CPU seconds and the 5-NN purity of the clusters in the embedding.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "latent/umap.h"
#include "util/error.h"
#include "util/rng.h"
#include "util/timer.h"

static double cpu_seconds(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 5000, d = argc > 2 ? atoi(argv[2]) : 768;
    umap_params p;
    umap_params_default(&p);
    if (argc > 3 && !strcmp(argv[3], "random")) p.init = UMAP_INIT_RANDOM;
    p.verbose = 1;
    rng r;
    rng_seed(&r, 1);
    float *X = malloc(sizeof(float) * (size_t)n * d), *C = malloc(sizeof(float) * 4 * (size_t)d);
    int *lab = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < 4 * d; i++) C[i] = (float)(rng_normal(&r) * 0.3);
    for (int i = 0; i < n; i++) {
        lab[i] = (int)rng_below(&r, 4);
        for (int c = 0; c < d; c++) X[(size_t)i * d + c] = C[lab[i] * d + c] + (float)rng_normal(&r) * 0.5f;
    }
    float *Y = malloc(sizeof(float) * (size_t)n * 2);
    double w0 = now_seconds(), c0 = cpu_seconds();
    if (umap_embed(X, n, d, &p, Y)) {
        fprintf(stderr, "bench_umap: %s\n", as_error());
        return 1;
    }
    double wall = now_seconds() - w0, cpu = cpu_seconds() - c0;
    int *idx = malloc(sizeof(int) * (size_t)n * 6);
    float *dist = malloc(sizeof(float) * (size_t)n * 6);
    umap_knn(Y, n, 2, 6, idx, dist);
    int pure = 0;
    for (int i = 0; i < n; i++) {
        int ok = 1;
        for (int j = 1; j < 6; j++) ok &= lab[idx[(size_t)i * 6 + j]] == lab[i];
        pure += ok;
    }
    printf("umap: %d points, %d-D -> 2-D, %s start, %d threads: %.2f s wall, %.2f s CPU; 5-NN purity %.3f\n", n, d,
           p.init == UMAP_INIT_RANDOM ? "random" : "spectral", omp_get_max_threads(), wall, cpu, (double)pure / n);
    free(dist);
    free(idx);
    free(Y);
    free(lab);
    free(C);
    free(X);
    return 0;
}

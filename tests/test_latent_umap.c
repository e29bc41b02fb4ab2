// UMAP (src/latent/umap.c) against umap-learn's formulas and pynndescent (tools/umap_ref.py):
// on scikit-learn's digits (1797 x 64, integer pixels: many exact distance ties) the exact k-NN
// graph equals NumPy's (same neighbours, ties by index; distances to 1e-6) and covers
// pynndescent's approximate graph; sigma and rho equal umap-learn's smooth_knn_dist; the fuzzy
// union equals A + A' - A o A' built with scipy.sparse as fuzzy_simplicial_set does; (a, b)
// equal scipy's curve_fit of find_ab_params. The embedding is a pure function of the seed (two
// runs, one and two threads: the same bits; another seed: other bits), and a disconnected graph
// (three far-apart blobs: umap's multi-component start) keeps its clusters apart.
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/testutil.h"
#include "latent/umap.h"
#include "util/error.h"

static const char *dir;

static const char *in_dir(const char *name) {
    static char buf[8][4200];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static float *load_data(const char *name, int *n, int *d, int64_t **labels) {
    char args[4400], sub[4200];
    snprintf(sub, sizeof sub, "%s", in_dir(name));
    snprintf(args, sizeof args, "data %s %s", name, sub);
    tu_run_python("tools/umap_ref.py", args);
    char sp[4300];
    snprintf(sp, sizeof sp, "%s/shape.txt", sub);
    FILE *f = fopen(sp, "r");
    if (!f || fscanf(f, "%d %d", n, d) != 2) abort();
    fclose(f);
    snprintf(sp, sizeof sp, "%s/X.f32", sub);
    float *X = tu_read_f32(sp, (size_t)*n * *d);
    snprintf(sp, sizeof sp, "%s/labels.i64", sub);
    *labels = tu_read_i64(sp, (size_t)*n);
    return X;
}

static void test_ab(void) {
    const float cases[][2] = {{1.0f, 0.1f}, {1.0f, 0.001f}, {2.0f, 0.5f}, {1.0f, 0.8f}};
    for (int c = 0; c < 4; c++) {
        char out[4300], args[4500];
        snprintf(out, sizeof out, "%s", in_dir("ab.txt"));
        snprintf(args, sizeof args, "ab %g %g > %s", cases[c][0], cases[c][1], out);
        tu_run_python("tools/umap_ref.py", args);
        FILE *f = fopen(out, "r");
        double ra = 0, rb = 0;
        int ok = f && fscanf(f, "%lf %lf", &ra, &rb) == 2;
        if (f) fclose(f);
        float a, b;
        umap_find_ab(cases[c][0], cases[c][1], &a, &b);
        CHECK(ok && fabs(a - ra) <= 1e-4 * ra && fabs(b - rb) <= 1e-4 * rb,
              "find_ab(spread %g, min_dist %g): a %.6f b %.6f, scipy curve_fit a %.6f b %.6f", cases[c][0], cases[c][1],
              a, b, ra, rb);
    }
}

static void test_graph(void) {
    int n, d;
    int64_t *lab;
    float *X = load_data("digits", &n, &d, &lab);
    const int k = 15;
    char xp[4300], args[9000];
    snprintf(xp, sizeof xp, "%s/X.f32", in_dir("digits"));
    snprintf(args, sizeof args, "graph %s %d %d %d %s", xp, n, d, k, in_dir("graph"));
    tu_run_python("tools/umap_ref.py", args);
    int *idx = malloc(sizeof(int) * (size_t)n * k);
    float *dist = malloc(sizeof(float) * (size_t)n * k);
    umap_knn(X, n, d, k, idx, dist);
    char p[4400];
    snprintf(p, sizeof p, "%s/graph/knn_idx.i64", dir);
    int64_t *ridx = tu_read_i64(p, (size_t)n * k);
    snprintf(p, sizeof p, "%s/graph/knn_dist.f32", dir);
    float *rdist = tu_read_f32(p, (size_t)n * k);
    int rows_same = 0;
    for (int i = 0; i < n; i++) {
        int same = 1;
        for (int j = 0; j < k; j++) same &= idx[(size_t)i * k + j] == ridx[(size_t)i * k + j];
        rows_same += same;
    }
    CHECK(rows_same == n, "k-NN: %d of %d rows list NumPy's neighbours in NumPy's order (ties by index)", rows_same,
          n);
    tu_allclose("k-NN distances vs NumPy", dist, rdist, (size_t)n * k, 1e-6, 1e-6);

    // pynndescent (approximate): its neighbours lie within our k-th distance.
    snprintf(p, sizeof p, "%s/graph/pynn_idx.i64", dir);
    int64_t *pidx = tu_read_i64(p, (size_t)n * k);
    snprintf(p, sizeof p, "%s/graph/pynn_dist.f32", dir);
    float *pdist = tu_read_f32(p, (size_t)n * k);
    long covered = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++) covered += pidx[(size_t)i * k + j] >= 0 &&
                                               pdist[(size_t)i * k + j] <= dist[(size_t)i * k + k - 1] * (1 + 1e-5f);
    double recall = (double)covered / ((double)n * k);
    CHECK(recall >= 0.99, "pynndescent's neighbours within our k-th distance: %.4f (>= 0.99)", recall);

    float *sigma = malloc(sizeof(float) * (size_t)n), *rho = malloc(sizeof(float) * (size_t)n);
    umap_graph g;
    umap_fuzzy_simplicial_set(idx, dist, n, k, &g, sigma, rho);
    snprintf(p, sizeof p, "%s/graph/sigma.f32", dir);
    float *rs = tu_read_f32(p, (size_t)n);
    snprintf(p, sizeof p, "%s/graph/rho.f32", dir);
    float *rr = tu_read_f32(p, (size_t)n);
    tu_allclose("smooth_knn_dist sigma vs umap-learn (NumPy)", sigma, rs, (size_t)n, 1e-6, 1e-5);
    tu_allclose("smooth_knn_dist rho vs umap-learn (NumPy)", rho, rr, (size_t)n, 0, 1e-6);
    snprintf(p, sizeof p, "%s/graph/union.f32", dir);
    float *ru = tu_read_f32(p, (size_t)n * n);
    float *dense = calloc((size_t)n * n, sizeof(float));
    int sorted = 1, symmetric = 1;
    for (int i = 0; i < n; i++)
        for (int q = g.row_ptr[i]; q < g.row_ptr[i + 1]; q++) {
            dense[(size_t)i * n + g.col[q]] = g.val[q];
            if (q > g.row_ptr[i]) sorted &= g.col[q] > g.col[q - 1];
        }
    long rnnz = 0;
    for (size_t i = 0; i < (size_t)n * n; i++) rnnz += ru[i] != 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++) symmetric &= dense[(size_t)i * n + j] == dense[(size_t)j * n + i];
    CHECK(sorted && symmetric, "fuzzy union: rows sorted by column, symmetric");
    CHECK(g.nnz == rnnz, "fuzzy union: %d entries, scipy %ld", g.nnz, rnnz);
    tu_allclose("fuzzy union vs A + A' - A o A' (scipy.sparse)", dense, ru, (size_t)n * n, 1e-6, 1e-5);
    umap_graph_free(&g);
    free(dense);
    free(ru);
    free(rr);
    free(rs);
    free(rho);
    free(sigma);
    free(pdist);
    free(pidx);
    free(rdist);
    free(ridx);
    free(dist);
    free(idx);
    free(lab);
    free(X);
}

// Fraction of points whose 5 nearest embedded neighbours all share its label.
static double knn5_purity(const float *Y, int n, int dim, const int64_t *lab) {
    int pure = 0;
    int *idx = malloc(sizeof(int) * (size_t)n * 6);
    float *dist = malloc(sizeof(float) * (size_t)n * 6);
    umap_knn(Y, n, dim, 6, idx, dist);
    for (int i = 0; i < n; i++) {
        int ok = 1;
        for (int j = 1; j < 6; j++) ok &= lab[idx[(size_t)i * 6 + j]] == lab[i];
        pure += ok;
    }
    free(dist);
    free(idx);
    return (double)pure / n;
}

static void test_reproducible(void) {
    int n, d;
    int64_t *lab;
    float *X = load_data("blobs", &n, &d, &lab);
    umap_params p;
    umap_params_default(&p);
    p.seed = 5;
    p.n_epochs = 200;
    float *Y1 = malloc(sizeof(float) * (size_t)n * 2), *Y2 = malloc(sizeof(float) * (size_t)n * 2);
    float *Y3 = malloc(sizeof(float) * (size_t)n * 2);
    omp_set_num_threads(1);
    CHECK(umap_embed(X, n, d, &p, Y1) == 0, "umap_embed on the blobs: %s", as_error());
    omp_set_num_threads(2);
    CHECK(umap_embed(X, n, d, &p, Y2) == 0, "umap_embed, 2 threads");
    p.seed = 6;
    CHECK(umap_embed(X, n, d, &p, Y3) == 0, "umap_embed, seed 6");
    CHECK(!memcmp(Y1, Y2, sizeof(float) * (size_t)n * 2), "same seed, 1 and 2 threads: the same embedding");
    CHECK(memcmp(Y1, Y3, sizeof(float) * (size_t)n * 2) != 0, "another seed: another embedding");
    int finite = 1;
    for (int i = 0; i < 2 * n; i++) finite &= isfinite(Y1[i]);
    double pur = knn5_purity(Y1, n, 2, lab);
    CHECK(finite && pur == 1.0, "three disconnected blobs stay apart: 5-NN purity %.3f", pur);
    p.init = UMAP_INIT_RANDOM;
    CHECK(umap_embed(X, n, d, &p, Y3) == 0, "random start");
    pur = knn5_purity(Y3, n, 2, lab);
    CHECK(pur >= 0.99, "random start: 5-NN purity %.3f", pur);

    // Bad input: an error naming the problem, nothing else.
    X[7] = NAN;
    CHECK(umap_embed(X, n, d, &p, Y3) == -1 && strstr(as_error(), "non-finite"), "NaN refused: %s", as_error());
    CHECK(umap_embed(X, 2, d, &p, Y3) == -1 && strstr(as_error(), "at least 3"), "2 points refused: %s", as_error());
    free(Y3);
    free(Y2);
    free(Y1);
    free(lab);
    free(X);
}

int main(void) {
    dir = tu_scratch_dir("test_latent_umap");
    test_ab();
    test_graph();
    test_reproducible();
    return tu_finish();
}

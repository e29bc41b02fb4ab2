// Gaussian mixture EM and k-means (src/detect/segment.c) against scikit-learn
// (tools/ref_gmm.py); the Potts MRF term cleans a noisy synthetic segmentation.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/segment.h"
#include "helpers/testutil.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/rng.h"

static int close_rel(double a, double b, double rtol, double atol) { return fabs(a - b) <= atol + rtol * fabs(b); }

// Data: n samples from a k-class mixture; initial parameters deliberately off.
static void gmm_case(int id, int k, size_t n, double sep, double sd, int max_iter, double tol) {
    char dir[256], p[4096], args[4400];
    snprintf(dir, sizeof dir, "%s/case%d", tu_scratch_dir("detect_segment"), id);
    fs_mkdirs(dir);
    rng r;
    rng_seed_stream(&r, 99, (uint64_t)id);
    float *x = as_malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) {
        int c = (int)rng_below(&r, (uint32_t)(k + 1));
        if (c >= k) c = k - 1;  // last class twice as likely: unequal weights
        x[i] = (float)(0.1 + sep * c + sd * (1 + 0.3 * c) * rng_normal(&r));
    }
    fs_join(p, sizeof p, dir, "x.f32");
    tu_write_f32(p, x, n);
    gmm1d g = {.k = k};
    double c0[GMM_MAX_CLASSES];
    for (int j = 0; j < k; j++) {
        g.weight[j] = 1.0 / k;
        g.mean[j] = 0.1 + sep * j + 0.3 * sep * (j % 2 ? 1 : -1);
        g.var[j] = (2 * sd) * (2 * sd);
        c0[j] = 0.05 + sep * j * 1.1;
    }
    fs_join(p, sizeof p, dir, "init.txt");
    FILE *f = fopen(p, "w");
    for (int j = 0; j < k; j++) fprintf(f, "%.17g\n", g.weight[j]);
    for (int j = 0; j < k; j++) fprintf(f, "%.17g\n", g.mean[j]);
    for (int j = 0; j < k; j++) fprintf(f, "%.17g\n", g.var[j]);
    for (int j = 0; j < k; j++) fprintf(f, "%.17g\n", c0[j]);
    fclose(f);
    const double reg = 1e-6;
    const int km_iter = 300;
    snprintf(args, sizeof args, "%s %d %d %g %g %d", dir, k, max_iter, tol, reg, km_iter);
    tu_run_python("tools/ref_gmm.py", args);

    double lb;
    int it = gmm1d_em(&g, &lb, NULL, x, n, max_iter, tol, reg);
    double score = gmm1d_score(&g, x, n);
    int *lab = as_malloc(sizeof(int) * n);
    int kit = kmeans1d(c0, lab, x, n, k, km_iter);

    fs_join(p, sizeof p, dir, "ref.txt");
    f = fopen(p, "r");
    double ref[4 * GMM_MAX_CLASSES + 8];
    int nref = 0;
    while (nref < 4 * k + 4 && fscanf(f, "%lf", &ref[nref]) == 1) nref++;
    fclose(f);
    CHECK(nref == 4 * k + 4, "case %d: reference has %d numbers", id, nref);
    const double rtol = 1e-4;
    int ok = 1;
    for (int j = 0; j < k; j++) {
        ok &= close_rel(g.weight[j], ref[j], rtol, 0);
        ok &= close_rel(g.mean[j], ref[k + j], rtol, 1e-9);
        ok &= close_rel(g.var[j], ref[2 * k + j], rtol, 0);
    }
    CHECK(ok, "case %d (k=%d, n=%zu): weights, means, variances equal sklearn within %g relative", id, k, n, rtol);
    if (!ok)
        for (int j = 0; j < k; j++)
            printf("  class %d: w %.8g/%.8g  mu %.8g/%.8g  var %.8g/%.8g\n", j, g.weight[j], ref[j], g.mean[j],
                   ref[k + j], g.var[j], ref[2 * k + j]);
    CHECK(close_rel(lb, ref[3 * k], rtol, 0), "case %d: lower bound %.10g vs sklearn %.10g", id, lb, ref[3 * k]);
    CHECK(close_rel(score, ref[3 * k + 1], rtol, 0), "case %d: log-likelihood %.10g vs sklearn score %.10g", id,
          score, ref[3 * k + 1]);
    CHECK(it == (int)ref[3 * k + 2], "case %d: %d EM iterations, sklearn %d", id, it, (int)ref[3 * k + 2]);
    ok = 1;
    for (int j = 0; j < k; j++) ok &= close_rel(c0[j], ref[3 * k + 3 + j], 1e-6, 1e-9);
    CHECK(ok, "case %d: k-means centres equal sklearn KMeans within 1e-6", id);
    CHECK(kit == (int)ref[4 * k + 3], "case %d: %d k-means iterations, sklearn %d", id, kit, (int)ref[4 * k + 3]);
    fs_join(p, sizeof p, dir, "kmeans_labels.f32");
    float *rl = tu_read_f32(p, n);
    size_t diff = 0;
    for (size_t i = 0; i < n; i++) diff += lab[i] != (int)rl[i];
    CHECK(diff == 0, "case %d: k-means labels equal sklearn (%zu differ)", id, diff);
    printf("case %d: k=%d n=%zu EM iterations %d, log-likelihood %.8f (sklearn %.8f)\n", id, k, n, it, score,
           ref[3 * k + 1]);
    free(rl);
    free(lab);
    free(x);
}

// 5 classes in 32x32 blocks, class means 0.1..0.9, Gaussian noise: error rate of the
// segmentation against the truth without and with the MRF.
static double noisy_error(float beta, double sd, int *gt_out_ok) {
    enum { N = 128 };
    static float img[N * N];
    static uint8_t gt[N * N], lab[N * N];
    rng r;
    rng_seed(&r, 5);
    for (int y = 0; y < N; y++)
        for (int x = 0; x < N; x++) {
            int c = ((x / 32) + 2 * (y / 32) + (x / 32 == 1 && y >= 64 ? 3 : 0)) % 5;
            gt[x + N * y] = (uint8_t)(c + 1);
            img[x + N * y] = (float)(0.1 + 0.2 * c + sd * rng_normal(&r));
        }
    atropos_params p;
    atropos_defaults(&p);
    p.mrf_beta = beta;
    gmm1d g;
    int rc = atropos_segment(lab, &g, img, NULL, N, N, 1, &p);
    int means_ok = rc == 0;
    for (int j = 0; j < 5; j++) means_ok &= fabs(g.mean[j] - (0.1 + 0.2 * j)) < 0.03;
    *gt_out_ok = means_ok;
    int wrong = 0;
    for (int i = 0; i < N * N; i++) wrong += lab[i] != gt[i];
    return (double)wrong / (N * N);
}

static void test_mrf_cleans(void) {
    int ok0, ok1, ok2;
    double e0 = noisy_error(0.0f, 0.08, &ok0);
    double e1 = noisy_error(0.2f, 0.08, &ok1);
    double e2 = noisy_error(1.0f, 0.08, &ok2);
    printf("noisy 5-class image (sd 0.08, class spacing 0.2): error %.4f without MRF, %.4f with beta 0.2 "
           "(%.1fx fewer), %.4f with beta 1.0\n",
           e0, e1, e0 / (e1 > 0 ? e1 : 1e-9), e2);
    CHECK(ok0 && ok1 && ok2, "class means recovered in order");
    CHECK(e0 > 0.08, "the noise really confuses the plain mixture (error %.4f)", e0);
    CHECK(e1 < e0 / 1.5, "MRF beta 0.2 cuts the error by 1.5x or more (%.4f -> %.4f)", e0, e1);
    CHECK(e2 < e1, "stronger smoothing cleans more (%.4f -> %.4f)", e1, e2);
}

static void test_masks_and_edges(void) {
    enum { NX = 21, NY = 17, NZ = 3 };
    float img[NX * NY * NZ];
    uint8_t mask[NX * NY * NZ], lab[NX * NY * NZ], lab2[NX * NY * NZ];
    rng r;
    rng_seed(&r, 7);
    for (int i = 0; i < NX * NY * NZ; i++) {
        img[i] = (float)rng_uniform(&r);
        mask[i] = (i % 7) != 0;
    }
    atropos_params p;
    atropos_defaults(&p);
    p.ndim = 3;
    CHECK(atropos_segment(lab, NULL, img, mask, NX, NY, NZ, &p) == 0, "3-D segmentation runs");
    int ok = 1;
    for (int i = 0; i < NX * NY * NZ; i++) ok &= mask[i] ? lab[i] >= 1 && lab[i] <= 5 : lab[i] == 0;
    CHECK(ok, "labels 1..5 inside the mask, 0 outside");
    atropos_segment(lab2, NULL, img, mask, NX, NY, NZ, &p);
    CHECK(!memcmp(lab, lab2, sizeof lab), "deterministic");
    memset(mask, 0, sizeof mask);
    CHECK(atropos_segment(lab, NULL, img, mask, NX, NY, NZ, &p) == 0, "empty mask accepted");
    ok = 1;
    for (int i = 0; i < NX * NY * NZ; i++) ok &= lab[i] == 0;
    CHECK(ok, "empty mask gives no labels");
    for (int i = 0; i < NX * NY * NZ; i++) img[i] = 0.5f;
    gmm1d g;
    CHECK(atropos_segment(lab, &g, img, NULL, NX, NY, NZ, &p) == 0, "constant image accepted");
    ok = 1;
    for (int j = 0; j < 5; j++) ok &= isfinite(g.mean[j]) && isfinite(g.var[j]) && g.var[j] > 0;
    for (int i = 0; i < NX * NY * NZ; i++) ok &= lab[i] >= 1 && lab[i] <= 5;
    CHECK(ok, "constant image: finite model, valid labels");
    p.classes = 0;
    CHECK(atropos_segment(lab, NULL, img, NULL, NX, NY, NZ, &p) == -1 && strstr(as_error(), "classes"),
          "0 classes refused: %s", as_error());
}

int main(void) {
    gmm_case(0, 5, 20000, 0.2, 0.04, 300, 1e-6);
    gmm_case(1, 3, 5001, 0.25, 0.06, 5, 1e-3);  // stops at max_iter, not converged
    gmm_case(2, 5, 12345, 0.12, 0.05, 500, 1e-5);  // heavy overlap
    test_mrf_cleans();
    test_masks_and_edges();
    return tu_finish();
}

// The latent analysis' pieces against references: the Swin MAE's latent hook (mean of the
// bottleneck tokens, with and without hidden tokens) equals the PyTorch reference model's
// forward_encoder averaged over tokens (tools/latent_ref.py encode), the VAE's equals mu of
// tools/vae_ref.py's module with the hidden tokens' pixels zeroed (encode-vae); silhouette,
// leave-one-out and leave-one-subject-out k-NN accuracy, adjusted Rand index, 2-means inertia and the covariance ellipse equal
// scikit-learn / NumPy (tools/latent_ref.py separation); PCA scores equal numpy.linalg.svd's.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/testutil.h"
#include "latent/linalg.h"
#include "latent/separation.h"
#include "model/model.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/rng.h"

static const char *dir;

static const char *in_dir(const char *name) {
    static char buf[8][4200];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void write_i32(const char *path, const int *v, int n) {
    if (fs_write_all(path, v, sizeof(int) * (size_t)n)) abort();
}

static void test_hook(void) {
    char ck[4300], args[20000];
    snprintf(ck, sizeof ck, "%s", in_dir("tiny.safetensors"));
    snprintf(args, sizeof args, "ckpt %s --config img_size=64,patch_size=4,in_chans=3,embed_dim=16,depths=1/2/1/1,"
             "num_heads=1/1/2/2,window=2,mlp_ratio=2 --seed 5 > /dev/null", ck);
    tu_run_python("tools/detect_check.py", args);
    model m;
    CHECK(model_load(&m, ck, 3) == 0, "load the tiny checkpoint: %s", as_error());
    CHECK(m.method->latent != NULL, "the Swin MAE has a latent hook");
    const int B = 3, S = 64, C = 3, L = model_tokens(&m);
    int D = m.method->latent(&m, NULL, NULL, NULL, 0);
    CHECK(D == 16 * 8, "latent length 8C = %d", D);
    rng r;
    rng_seed(&r, 11);
    float *img = malloc(sizeof(float) * (size_t)B * C * S * S), *z = malloc(sizeof(float) * (size_t)B * D);
    uint8_t *tm = calloc((size_t)B * L, 1);
    for (int i = 0; i < B * C * S * S; i++) img[i] = (float)rng_uniform(&r);
    for (int i = L; i < B * L; i++) tm[i] = rng_uniform(&r) < (i < 2 * L ? 0.3 : 0.9);  // image 0 unmasked
    m.method->latent(&m, z, img, tm, B);
    tu_write_f32(in_dir("img.f32"), img, (size_t)B * C * S * S);
    if (fs_write_all(in_dir("mask.u8"), tm, (size_t)B * L)) abort();
    snprintf(args, sizeof args, "encode %s %s %s %d %s", ck, in_dir("img.f32"), in_dir("mask.u8"), B,
             in_dir("z.f32"));
    tu_run_python("tools/latent_ref.py", args);
    float *ref = tu_read_f32(in_dir("z.f32"), (size_t)B * D);
    tu_allclose("latent hook vs PyTorch forward_encoder, mean over tokens", z, ref, (size_t)B * D, 1e-5, 1e-4);
    // The hook must not depend on what ran before it (the arena is shared with the decoder).
    float *z2 = malloc(sizeof(float) * (size_t)B * D), *rec = malloc(sizeof(float) * (size_t)B * C * S * S);
    m.method->predict(&m, rec, img, tm, B);
    m.method->latent(&m, z2, img, tm, B);
    CHECK(!memcmp(z, z2, sizeof(float) * (size_t)B * D), "latent after a predict: the same bits");
    free(rec);
    free(z2);
    free(ref);
    free(tm);
    free(z);
    free(img);
    model_free(&m);
}

// The VAE's hook: mu of the evaluation forward, hidden tokens as zero pixels, against
// tools/vae_ref.py's PyTorch module (float64) fed the same images with those pixels zeroed.
static void test_vae_hook(void) {
    model m;
    const int B = 3;
    CHECK(model_create(&m, "vae", "img_size=32,in_chans=2,patch_size=8,res=4,z_dim=6,base_ch=8,max_ch=16", B, 0,
                       "test") == 0, "model_create vae: %s", as_error());
    m.method->init_params(&m, 7);
    char ck[4300], args[20000];
    snprintf(ck, sizeof ck, "%s", in_dir("vae.safetensors"));
    CHECK(model_save(&m, ck, NULL, 0) == 0, "model_save vae: %s", as_error());
    const int S = 32, C = 2, L = model_tokens(&m), D = m.method->latent(&m, NULL, NULL, NULL, 0);
    CHECK(D == 6 && L == 16, "VAE latent length z_dim %d, %d tokens", D, L);
    rng r;
    rng_seed(&r, 12);
    float *img = malloc(sizeof(float) * (size_t)B * C * S * S), *z = malloc(sizeof(float) * (size_t)B * D);
    uint8_t *tm = calloc((size_t)B * L, 1);
    for (int i = 0; i < B * C * S * S; i++) img[i] = (float)rng_uniform(&r);
    for (int i = L; i < B * L; i++) tm[i] = rng_uniform(&r) < 0.4;
    m.method->latent(&m, z, img, tm, B);
    tu_write_f32(in_dir("vimg.f32"), img, (size_t)B * C * S * S);
    if (fs_write_all(in_dir("vmask.u8"), tm, (size_t)B * L)) abort();
    snprintf(args, sizeof args, "encode-vae %s %s %s %d %s", ck, in_dir("vimg.f32"), in_dir("vmask.u8"), B,
             in_dir("vz.f32"));
    tu_run_python("tools/latent_ref.py", args);
    float *ref = tu_read_f32(in_dir("vz.f32"), (size_t)B * D);
    tu_allclose("VAE latent hook vs PyTorch mu (hidden tokens zeroed)", z, ref, (size_t)B * D, 1e-5, 1e-4);
    float *z0 = malloc(sizeof(float) * (size_t)B * D);
    uint8_t *none = calloc((size_t)B * L, 1);
    m.method->latent(&m, z0, img, none, B);
    CHECK(memcmp(z0 + D, z + D, sizeof(float) * D) != 0, "hidden tokens change the VAE's latent");
    free(none);
    free(z0);
    free(ref);
    free(tm);
    free(z);
    free(img);
    model_free(&m);
}

static void separation_case(const char *name, const float *X, int n, int d, const int *lab, int k) {
    int *asg = malloc(sizeof(int) * (size_t)n), *km = malloc(sizeof(int) * (size_t)n);
    int *subj = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) subj[i] = lab[i] * 1000 + (i / 3) % 11;  // "scans" of one group each
    rng r;
    rng_seed(&r, 3);
    for (int i = 0; i < n; i++) asg[i] = lab[i] ^ (rng_uniform(&r) < 0.2) ? (int)rng_below(&r, 3) : lab[i];
    float *cent = malloc(sizeof(float) * 2 * (size_t)d);
    double inertia = sep_kmeans(X, n, d, 2, 10, 0, km, cent);
    double sil = sep_silhouette(X, n, d, lab), acc = sep_knn_accuracy(X, n, d, lab, NULL, k);
    double ari = sep_adjusted_rand(asg, lab, n), acc_s = sep_knn_accuracy(X, n, d, lab, subj, k);
    tu_write_f32(in_dir("X.f32"), X, (size_t)n * d);
    write_i32(in_dir("lab.i32"), lab, n);
    write_i32(in_dir("asg.i32"), asg, n);
    write_i32(in_dir("km.i32"), km, n);
    write_i32(in_dir("subj.i32"), subj, n);
    char args[30000];
    snprintf(args, sizeof args, "separation %s %d %d %s %d %s %s %s > %s", in_dir("X.f32"), n, d, in_dir("lab.i32"),
             k, in_dir("asg.i32"), in_dir("km.i32"), in_dir("subj.i32"), in_dir("sep.txt"));
    tu_run_python("tools/latent_ref.py", args);
    FILE *f = fopen(in_dir("sep.txt"), "r");
    double v[11] = {0};
    int got = 0;
    while (f && got < 11 && fscanf(f, "%lf", &v[got]) == 1) got++;
    if (f) fclose(f);
    CHECK(got == (d == 2 ? 11 : 6), "%s: scikit-learn's numbers read", name);
    CHECK(fabs(acc_s - v[5]) <= 1e-8, "%s: leave-one-scan-out %d-NN accuracy %.6f, NumPy %.6f", name, k, acc_s, v[5]);
    CHECK(fabs(sil - v[0]) <= 1e-6, "%s: silhouette %.8f, scikit-learn %.8f", name, sil, v[0]);
    CHECK(fabs(acc - v[1]) <= 1e-8, "%s: %d-NN accuracy %.6f, NumPy %.6f", name, k, acc, v[1]);
    CHECK(fabs(ari - v[2]) <= 1e-9, "%s: adjusted Rand %.8f, scikit-learn %.8f", name, ari, v[2]);
    CHECK(fabs(inertia - v[3]) <= 1e-4 * v[3], "%s: 2-means inertia %.6g = recomputed %.6g", name, inertia, v[3]);
    CHECK(inertia <= v[4] * (1 + 1e-6), "%s: 2-means inertia %.6g <= scikit-learn KMeans %.6g", name, inertia, v[4]);
    if (d == 2) {
        sep_ellipse e;
        int m = sep_ellipse_of(X, n, km, 0, &e);
        double da = fabs(e.angle - v[10]);
        da = fmin(da, M_PI - da);  // an axis, not a direction
        CHECK(m > 0 && fabs(e.cx - v[6]) <= 1e-5 && fabs(e.cy - v[7]) <= 1e-5 && fabs(e.sd1 - v[8]) <= 1e-5 * v[8] &&
                  fabs(e.sd2 - v[9]) <= 1e-5 * v[9] && da <= 1e-5,
              "%s: ellipse (%.5f, %.5f) sd %.5f %.5f angle %.5f; NumPy (%.5f, %.5f) sd %.5f %.5f angle %.5f", name, e.cx,
              e.cy, e.sd1, e.sd2, e.angle, v[6], v[7], v[8], v[9], v[10]);
    }
    free(cent);
    free(subj);
    free(km);
    free(asg);
}

static void test_separation(void) {
    rng r;
    rng_seed(&r, 9);
    enum { N = 301, D = 16 };
    float *X = malloc(sizeof(float) * N * D), *Y = malloc(sizeof(float) * N * 2);
    int *lab = malloc(sizeof(int) * N);
    for (int i = 0; i < N; i++) {
        lab[i] = i % 3 == 0;  // unbalanced groups
        for (int t = 0; t < D; t++) X[i * D + t] = (float)(rng_normal(&r) + (lab[i] ? 1.2 * (t < 4) : 0));
        Y[2 * i] = (float)(rng_normal(&r) * 2 + 3 * lab[i]), Y[2 * i + 1] = (float)(rng_normal(&r) + Y[2 * i] * 0.5);
    }
    separation_case("16-D, overlapping groups", X, N, D, lab, 5);
    separation_case("2-D, correlated", Y, N, 2, lab, 7);
    int one[4] = {0, 0, 0, 0};
    CHECK(isnan(sep_silhouette(Y, 4, 2, one)), "one group only: silhouette NAN");
    free(lab);
    free(Y);
    free(X);
}

static void test_pca(void) {
    rng r;
    rng_seed(&r, 4);
    enum { N = 200, D = 40, K = 3 };
    float *X = malloc(sizeof(float) * N * D), *P = malloc(sizeof(float) * N * K);
    for (int i = 0; i < N; i++) {
        double a = rng_normal(&r) * 5, b = rng_normal(&r) * 3, c = rng_normal(&r) * 2;
        for (int t = 0; t < D; t++)
            X[i * D + t] = (float)(a * sin(t + 1.0) + b * cos(0.3 * t) + c * (t % 2 ? 1 : -1) * 0.2 + rng_normal(&r) * 0.1 +
                                   7.0);
    }
    linalg_pca(X, N, D, K, P, NULL);
    tu_write_f32(in_dir("pX.f32"), X, N * D);
    char args[20000];
    snprintf(args, sizeof args, "pca %s %d %d %d %s", in_dir("pX.f32"), N, D, K, in_dir("pca.f32"));
    tu_run_python("tools/latent_ref.py", args);
    float *ref = tu_read_f32(in_dir("pca.f32"), N * K);
    tu_allclose("PCA scores vs numpy.linalg.svd", P, ref, N * K, 1e-3, 1e-4);
    free(ref);
    free(P);
    free(X);
}

int main(void) {
    dir = tu_scratch_dir("test_latent_separation");
    test_hook();
    test_vae_hook();
    test_separation();
    test_pca();
    return tu_finish();
}

// The convolutional baselines' layers against torch autograd (tools/nn_conv_ref.py, float64
// from float32 inputs): Conv2d, ConvTranspose2d, BatchNorm2d (training with the running-statistics
// update, and eval), LeakyReLU/ReLU/sigmoid/tanh, L1/MSE, the VAE's reparameterisation and KL term.
// Tolerances as tests/test_nn_layers.c: |got-ref| <= atol + rtol*|ref| with atol 1e-5, rtol 1e-4
// for values and atol 1e-4, rtol 1e-3 for gradients summed over many terms, and a relative L2
// error <= 1e-5 per tensor.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/testutil.h"
#include "nn/nn.h"

static void cmp(const char *tag, const char *what, const float *got, const float *ref, size_t n, double atol) {
    char name[300];
    snprintf(name, sizeof name, "%.100s %.100s", tag, what);
    tu_cmp(name, got, ref, n, atol);
}

static void test_conv(const char *tag, int B, int IC, int H, int W, int OC, int k, int s, int p, int bias) {
    const int OH = conv_out_size(H, k, s, p), OW = conv_out_size(W, k, s, p);
    const size_t nx = (size_t)B * IC * H * W, nw = (size_t)OC * IC * k * k, ny = (size_t)B * OC * OH * OW;
    float *x = tu_ref(tag, "x", nx), *w = tu_ref(tag, "w", nw), *g = tu_ref(tag, "g", ny),
          *b = bias ? tu_ref(tag, "b", OC) : NULL;
    // dw has a guard of 64 floats behind it (a neighbouring gradient in a model's buffer).
    float *y = tu_zeros(ny), *dx = tu_zeros(nx), *dw = tu_zeros(nw + 64), *db = bias ? tu_zeros(OC) : NULL;
    // The scratch starts as garbage (NaN), as in a model's arena after other layers used it.
    const size_t nc = conv2d_scratch_floats(B, IC, OC, k, OH, OW);
    float *cols = tu_zeros(nc);
    for (size_t i = 0; i < nc; i++) cols[i] = NAN;
    conv2d_forward(y, cols, x, w, b, B, IC, H, W, OC, k, s, p);
    conv2d_backward(dx, dw, db, cols, g, x, w, B, IC, H, W, OC, k, s, p);
    int guard = 1;
    for (int i = 0; i < 64; i++) guard &= dw[nw + i] == 0.0f;
    CHECK(guard, "%s: the weight gradient writes nothing past its %zu floats", tag, nw);
    if (!strncmp(tag, "wino", 4)) {
        // Winograd F(4x4, 3x3) (src/nn/conv.c) rounds an output with an error that scales with the
        // products summed into it, not with the output: where they cancel to a small value the
        // elementwise bound is taken relative to the output's RMS (observed: about 10x im2col's
        // error, relative L2 about 1e-6, held to the same 1e-5 below).
        const float *ry = tu_ref(tag, "y", ny);
        double ss = 0.0;
        for (size_t i = 0; i < ny; i++) ss += (double)ry[i] * ry[i];
        const double rms = sqrt(ss / (double)ny);
        char name[300];
        snprintf(name, sizeof name, "%.100s y (atol 2e-5 x RMS %.2f)", tag, rms);
        tu_allclose(name, y, ry, ny, 2e-5 * (rms > 1.0 ? rms : 1.0), 1e-4);
        snprintf(name, sizeof name, "%.100s y (rel L2)", tag);
        tu_rel_l2(name, y, ry, ny, 1e-5);
    } else {
        cmp(tag, "y", y, tu_ref(tag, "y", ny), ny, 1e-5);
    }
    cmp(tag, "dx", dx, tu_ref(tag, "dx", nx), nx, 1e-4);
    cmp(tag, "dw", dw, tu_ref(tag, "dw", nw), nw, 1e-4);
    if (bias) cmp(tag, "db", db, tu_ref(tag, "db", OC), OC, 1e-4);
    // Gradients accumulate: a second backward doubles them.
    conv2d_backward(dx, dw, NULL, cols, g, x, w, B, IC, H, W, OC, k, s, p);
    float *dx2 = tu_zeros(nx);
    for (size_t i = 0; i < nx; i++) dx2[i] = 2.0f * tu_ref(tag, "dx", nx)[i];
    cmp(tag, "dx accumulates", dx, dx2, nx, 1e-4);
    // conv2d_backward_set overwrites dinp (here full of NaN) with what += gives from zeros, bit for bit.
    float *dx0 = tu_zeros(nx), *dxs = tu_zeros(nx), *dw0 = tu_zeros(nw);
    for (size_t i = 0; i < nx; i++) dxs[i] = NAN;
    conv2d_backward(dx0, NULL, NULL, cols, g, x, w, B, IC, H, W, OC, k, s, p);
    conv2d_backward_set(dxs, dw0, NULL, cols, g, x, w, B, IC, H, W, OC, k, s, p);
    CHECK(!memcmp(dxs, dx0, sizeof(float) * nx), "%s: conv2d_backward_set's dx equals += from zeros", tag);
    cmp(tag, "dw from conv2d_backward_set", dw0, tu_ref(tag, "dw", nw), nw, 1e-4);
}

static void test_convt(const char *tag, int B, int IC, int H, int W, int OC, int k, int s, int p, int op, int bias) {
    const int OH = convt_out_size(H, k, s, p, op), OW = convt_out_size(W, k, s, p, op);
    const size_t nx = (size_t)B * IC * H * W, nw = (size_t)IC * OC * k * k, ny = (size_t)B * OC * OH * OW;
    float *x = tu_ref(tag, "x", nx), *w = tu_ref(tag, "w", nw), *g = tu_ref(tag, "g", ny),
          *b = bias ? tu_ref(tag, "b", OC) : NULL;
    float *y = tu_zeros(ny), *dx = tu_zeros(nx), *dw = tu_zeros(nw), *db = bias ? tu_zeros(OC) : NULL;
    float *cols = tu_zeros(conv_transpose2d_scratch_floats(B, IC, OC, k, H, W));
    conv_transpose2d_forward(y, cols, x, w, b, B, IC, H, W, OC, k, s, p, op);
    conv_transpose2d_backward(dx, dw, db, cols, g, x, w, B, IC, H, W, OC, k, s, p, op);
    cmp(tag, "y", y, tu_ref(tag, "y", ny), ny, 1e-5);
    cmp(tag, "dx", dx, tu_ref(tag, "dx", nx), nx, 1e-4);
    cmp(tag, "dw", dw, tu_ref(tag, "dw", nw), nw, 1e-4);
    if (bias) cmp(tag, "db", db, tu_ref(tag, "db", OC), OC, 1e-4);
}

static void test_bn(const char *tag, int B, int C, int H, int W, int training) {
    const size_t P = (size_t)H * W, n = (size_t)B * C * P;
    float *x = tu_ref(tag, "x", n), *w = tu_ref(tag, "w", C), *b = tu_ref(tag, "b", C), *g = tu_ref(tag, "g", n);
    float *rm = tu_zeros(C), *rv = tu_zeros(C);
    memcpy(rm, tu_ref(tag, "rm0", C), sizeof(float) * C);
    memcpy(rv, tu_ref(tag, "rv0", C), sizeof(float) * C);
    float *y = tu_zeros(n), *mean = tu_zeros(C), *rstd = tu_zeros(C), *dx = tu_zeros(n), *dw = tu_zeros(C),
          *db = tu_zeros(C);
    batchnorm2d_forward(y, mean, rstd, x, w, b, rm, rv, B, C, P, 0.1f, training);
    batchnorm2d_backward(dx, dw, db, g, x, mean, rstd, w, B, C, P, training);
    cmp(tag, "y", y, tu_ref(tag, "y", n), n, 1e-5);
    cmp(tag, "dx", dx, tu_ref(tag, "dx", n), n, 1e-4);
    cmp(tag, "dw", dw, tu_ref(tag, "dw", C), C, 1e-4);
    cmp(tag, "db", db, tu_ref(tag, "db", C), C, 1e-4);
    cmp(tag, "running_mean", rm, tu_ref(tag, "rm", C), C, 1e-5);
    cmp(tag, "running_var", rv, tu_ref(tag, "rv", C), C, 1e-5);
    if (training) {
        // In place the input is gone, but the forward must not need it twice.
        float *xi = tu_zeros(n);
        memcpy(xi, x, sizeof(float) * n);
        memcpy(rm, tu_ref(tag, "rm0", C), sizeof(float) * C);
        memcpy(rv, tu_ref(tag, "rv0", C), sizeof(float) * C);
        batchnorm2d_forward(xi, mean, rstd, x, w, b, NULL, NULL, B, C, P, 0.1f, 1);
        CHECK(!memcmp(xi, y, sizeof(float) * n), "%s: NULL running statistics give the same output", tag);
    }
}

static void test_pointwise(void) {
    const size_t n = 1001;
    float *x = tu_ref("", "pw_x", n), *g = tu_ref("", "pw_g", n);
    struct {
        const char *tag;
        float slope;
        int kind;  // 0 leaky, 1 sigmoid, 2 tanh
    } cases[] = {{"leaky03", 0.3f, 0}, {"leaky001", 0.01f, 0}, {"relu", 0.0f, 0}, {"sigmoid", 0, 1}, {"tanh", 0, 2}};
    for (int c = 0; c < 5; c++) {
        float *y = tu_zeros(n), *dx = tu_zeros(n);
        if (cases[c].kind == 0) {
            leaky_relu_forward(y, x, n, cases[c].slope);
            leaky_relu_backward(dx, g, y, n, cases[c].slope);
        } else if (cases[c].kind == 1) {
            sigmoid_forward(y, x, n);
            sigmoid_backward(dx, g, y, n);
        } else {
            tanh_forward(y, x, n);
            tanh_backward(dx, g, y, n);
        }
        cmp(cases[c].tag, "y", y, tu_ref(cases[c].tag, "y", n), n, 1e-6);
        cmp(cases[c].tag, "dx", dx, tu_ref(cases[c].tag, "dx", n), n, 1e-6);
        // The in-place backward overwrites instead of adding.
        float *d2 = tu_zeros(n);
        memcpy(d2, g, sizeof(float) * n);
        if (cases[c].kind == 0) leaky_relu_backward(d2, d2, y, n, cases[c].slope);
        else if (cases[c].kind == 1) sigmoid_backward(d2, d2, y, n);
        else tanh_backward(d2, d2, y, n);
        // Compared as values: 0*(-g) is -0.0 in place and +0.0 once added to a zero.
        int same = 1;
        for (size_t i = 0; i < n; i++) same &= d2[i] == dx[i];
        CHECK(same, "%s: in-place backward equals the accumulating one from 0", cases[c].tag);
    }
}

static void test_losses(void) {
    const size_t n = 3 * 2 * 7 * 5;
    float *p = tu_ref("", "loss_pred", n), *t = tu_ref("", "loss_target", n);
    float l1 = l1_loss_forward(p, t, n, 1.0f / (float)n), l1r = tu_ref("", "l1_loss", 1)[0];
    CHECK(fabsf(l1 - l1r) <= 1e-6f * fabsf(l1r), "l1 loss %.9g vs torch %.9g", l1, l1r);
    float *d = tu_zeros(n);
    l1_loss_backward(d, p, t, n, 1.0f / (float)n);
    cmp("l1", "dpred (sign(0) = 0 at ties)", d, tu_ref("", "l1_dpred", n), n, 1e-7);
    float mse = mse_loss_forward(p, t, n, 1.0f / 3.0f), mser = tu_ref("", "mse_loss", 1)[0];
    CHECK(fabsf(mse - mser) <= 1e-6f * fabsf(mser), "mse loss %.9g vs torch %.9g", mse, mser);
    float *dm = tu_zeros(n);
    mse_loss_backward(dm, p, t, n, 1.0f / 3.0f);
    cmp("mse", "dpred", dm, tu_ref("", "mse_dpred", n), n, 1e-6);
}

static void test_kl(void) {
    const int B = 3, Z = 7;
    const size_t n = (size_t)B * Z;
    const float beta = 0.7f;
    float *mu = tu_ref("kl", "mu", n), *ls = tu_ref("kl", "ls", n), *eps = tu_ref("kl", "eps", n),
          *gz = tu_ref("kl", "gz", n);
    float *z = tu_zeros(n), *sigma = tu_zeros(n), *dmu = tu_zeros(n), *dls = tu_zeros(n);
    vae_sample_forward(z, sigma, mu, ls, eps, n);
    float kl = vae_kl_forward(mu, ls, n, 1.0f / B), klr = tu_ref("kl", "kl", 1)[0];
    vae_sample_backward(dmu, dls, gz, eps, sigma, n);
    vae_kl_backward(dmu, dls, mu, ls, n, beta / B);
    cmp("kl", "z", z, tu_ref("kl", "z", n), n, 1e-5);
    CHECK(fabsf(kl - klr) <= 1e-6f * fabsf(klr), "kl %.9g vs torch %.9g", kl, klr);
    cmp("kl", "dmu", dmu, tu_ref("kl", "dmu", n), n, 1e-5);
    cmp("kl", "dlog_sigma", dls, tu_ref("kl", "dls", n), n, 1e-5);
}

static float *noise(size_t n, unsigned *state) {
    float *x = tu_zeros(n);
    for (size_t i = 0; i < n; i++) {
        *state = *state * 1664525u + 1013904223u;
        x[i] = (float)(*state >> 8) / (float)(1u << 24) - 0.5f;
    }
    return x;
}

// The layers multiply a few images at a time (about 2048 columns a product, src/nn/conv.c): a batch
// of three 32x32 images runs as a chunk of two and a chunk of one, and must match the images one
// by one (single-image products, no channel-major copies). With 16 channels the 3x3 layer runs
// Winograd, whose chunks hold about 1024 tiles: three 64x64 images (256 tiles each) are one chunk,
// three 96x96 ones (576) a chunk of two and a chunk of one.
static void test_chunks(int transposed, int IC, int OC, int H) {
    const int B = 3, W = H, k = 3, s = transposed ? 2 : 1, p = 1, op = transposed;
    const int OH = transposed ? convt_out_size(H, k, s, p, op) : conv_out_size(H, k, s, p);
    const int OW = transposed ? convt_out_size(W, k, s, p, op) : conv_out_size(W, k, s, p);
    const size_t nx = (size_t)IC * H * W, ny = (size_t)OC * OH * OW, nw = (size_t)IC * OC * k * k;
    unsigned st = 12345u + (unsigned)transposed;
    float *x = noise(B * nx, &st), *g = noise(B * ny, &st), *w = noise(nw, &st), *b = noise(OC, &st);
    float *y = tu_zeros(B * ny), *dx = tu_zeros(B * nx), *dw = tu_zeros(nw), *db = tu_zeros(OC);
    float *y1 = tu_zeros(B * ny), *dx1 = tu_zeros(B * nx), *dw1 = tu_zeros(nw), *db1 = tu_zeros(OC);
    const size_t sc = transposed ? conv_transpose2d_scratch_floats(B, IC, OC, k, H, W)
                                 : conv2d_scratch_floats(B, IC, OC, k, OH, OW);
    float *cols = tu_zeros(sc);
    for (int i = -1; i < B; i++) {  // i = -1: the whole batch; then image i alone
        const int n = i < 0 ? B : 1, o = i < 0 ? 0 : i;
        float *yy = (i < 0 ? y : y1) + o * ny, *dd = (i < 0 ? dx : dx1) + o * nx;
        float *ww = i < 0 ? dw : dw1, *bb = i < 0 ? db : db1;
        if (transposed) {
            conv_transpose2d_forward(yy, cols, x + o * nx, w, b, n, IC, H, W, OC, k, s, p, op);
            conv_transpose2d_backward(dd, ww, bb, cols, g + o * ny, x + o * nx, w, n, IC, H, W, OC, k, s, p, op);
        } else {
            conv2d_forward(yy, cols, x + o * nx, w, b, n, IC, H, W, OC, k, s, p);
            conv2d_backward(dd, ww, bb, cols, g + o * ny, x + o * nx, w, n, IC, H, W, OC, k, s, p);
        }
    }
    const char *tag = transposed ? "convt_chunks" : IC >= 16 ? "wino_chunks" : "conv_chunks";
    cmp(tag, "y", y, y1, B * ny, 1e-5);
    cmp(tag, "dx", dx, dx1, B * nx, 1e-5);
    cmp(tag, "dw", dw, dw1, nw, 1e-4);
    cmp(tag, "db", db, db1, OC, 1e-4);
}

int main(void) {
    tu_ref_run("test_nn_conv", "tools/nn_conv_ref.py");
    test_conv("conv_odd", 3, 3, 11, 9, 5, 3, 2, 1, 1);
    test_conv("conv_baur", 2, 4, 16, 16, 6, 5, 2, 2, 1);
    test_conv("conv_dcgan", 2, 3, 10, 12, 4, 4, 2, 1, 1);
    test_conv("conv_1x1", 1, 2, 7, 7, 3, 1, 1, 0, 0);
    test_convt("convt_baur", 3, 4, 5, 7, 3, 5, 2, 2, 1, 1);
    test_convt("convt_dcgan", 2, 3, 6, 4, 5, 4, 2, 1, 0, 1);
    test_convt("convt_start", 2, 6, 1, 1, 4, 4, 1, 0, 0, 0);
    test_convt("convt_odd", 1, 2, 5, 3, 3, 3, 2, 1, 0, 1);
    test_conv("conv_3x3", 2, 3, 9, 7, 5, 3, 1, 1, 1);
    test_conv("wino_odd", 3, 16, 9, 7, 17, 3, 1, 1, 1);
    test_conv("wino_even", 2, 20, 8, 6, 16, 3, 1, 1, 0);
    test_conv("wino_thin", 2, 16, 1, 2, 16, 3, 1, 1, 1);
    test_conv("wino_wide", 1, 32, 5, 5, 64, 3, 1, 1, 1);
    test_conv("wino_rows", 2, 16, 10, 13, 16, 3, 1, 1, 1);
    test_conv("wino_rows12", 1, 16, 6, 12, 16, 3, 1, 1, 0);
    test_chunks(0, 2, 3, 32);
    test_chunks(1, 2, 3, 32);
    test_chunks(0, 16, 16, 64);
    test_chunks(0, 16, 16, 96);
    test_bn("bn_train", 3, 5, 7, 5, 1);
    test_bn("bn_eval", 2, 4, 3, 5, 0);
    test_pointwise();
    test_losses();
    test_kl();
    tu_free_kept();
    return tu_finish();
}

// The f-AnoGAN baseline's own layers against torch autograd (tools/nn_gan_ref.py, float64 from
// float32 inputs): 2x2 mean pooling, nearest 2x upsampling, the per-sample LayerNorm (forward,
// backward, its tangent and the reverse of forward + tangent, which torch takes by double
// backward), and the gradient penalty. Tolerances as tests/test_nn_conv.c: atol 1e-5 / rtol 1e-4
// for values, atol 1e-4 / rtol 1e-3 for gradients, relative L2 <= 1e-5 per tensor.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/testutil.h"
#include "nn/gan.h"

static float *rd(const char *name, size_t n) { return tu_ref("", name, n); }

static void cmp(const char *what, const float *got, const char *ref, size_t n, double atol) {
    tu_cmp(what, got, rd(ref, n), n, atol);
}

static void test_pool_up(void) {
    // pool: (2, 3, 6, 10) -> (2, 3, 3, 5); up: (5, 1, 3, 4) -> (5, 1, 6, 8).
    const size_t np = 2 * 3 * 6 * 10, npo = np / 4;
    float *y = tu_zeros(npo), *dx = tu_zeros(np);
    mean_pool2_forward(y, rd("pool_x", np), 6, 6, 10);
    mean_pool2_backward(dx, rd("pool_g", npo), 6, 6, 10);
    cmp("mean_pool2 y", y, "pool_y", npo, 1e-5);
    cmp("mean_pool2 dx", dx, "pool_dx", np, 1e-4);
    const size_t nu = 5 * 3 * 4, nuo = 4 * nu;
    float *yu = tu_zeros(nuo), *dxu = tu_zeros(nu);
    upsample2_forward(yu, rd("up_x", nu), 5, 3, 4);
    upsample2_backward(dxu, rd("up_g", nuo), 5, 3, 4);
    cmp("upsample2 y", yu, "up_y", nuo, 1e-5);
    cmp("upsample2 dx", dxu, "up_dx", nu, 1e-4);
}

static void test_layernorm2d(void) {
    const int B = 3, C = 5;
    const size_t P = 3 * 7, n = (size_t)B * C * P;
    const float *x = rd("ln_x", n), *w = rd("ln_w", C), *b = rd("ln_b", C), *xt = rd("ln_xt", n);
    const float *g = rd("ln_g", n), *h = rd("ln_h", n);
    float *y = tu_zeros(n), *mean = tu_zeros(B), *rstd = tu_zeros(B), *dx = tu_zeros(n), *dw = tu_zeros(C),
          *db = tu_zeros(C);
    layernorm2d_forward(y, mean, rstd, x, w, b, B, C, P);
    cmp("layernorm2d y", y, "ln_y", n, 1e-5);
    layernorm2d_backward(dx, dw, db, g, x, mean, rstd, w, B, C, P);
    cmp("layernorm2d dx", dx, "ln_dx", n, 1e-4);
    cmp("layernorm2d dw", dw, "ln_dw", C, 1e-4);
    cmp("layernorm2d db", db, "ln_db", C, 1e-4);
    float *yt = tu_zeros(n);
    layernorm2d_tangent(yt, xt, x, mean, rstd, w, B, C, P);
    cmp("layernorm2d tangent", yt, "ln_yt", n, 1e-5);
    float *ddx = tu_zeros(n), *ddxt = tu_zeros(n), *ddw = tu_zeros(C), *ddb = tu_zeros(C);
    layernorm2d_dual_backward(ddx, ddxt, ddw, ddb, g, h, x, xt, mean, rstd, w, B, C, P);
    cmp("layernorm2d dual: d x (second-order terms)", ddx, "ln_ddx", n, 1e-4);
    cmp("layernorm2d dual: d x_t", ddxt, "ln_ddxt", n, 1e-4);
    cmp("layernorm2d dual: d w", ddw, "ln_ddw", C, 1e-4);
    cmp("layernorm2d dual: d b", ddb, "ln_ddb", C, 1e-4);
    // The second-order part is not negligible here (else the test above could not see it).
    const float *dx1 = rd("ln_dx", n), *dd = rd("ln_ddx", n);
    double diff = 0, norm = 0;
    for (size_t i = 0; i < n; i++) {
        diff += ((double)dd[i] - dx1[i]) * ((double)dd[i] - dx1[i]);
        norm += (double)dd[i] * dd[i];
    }
    CHECK(sqrt(diff) > 0.05 * sqrt(norm), "the tangent's dependence on x moves dx by %.3g of its norm",
          sqrt(diff / norm));
}

static void test_gp(void) {
    const int B = 4;
    const size_t n = 23;
    float *dg = tu_zeros(B * n);
    float loss = gradient_penalty_forward(dg, rd("gp_g", B * n), B, n, 10.0f);
    const float ref = rd("gp_loss", 1)[0];
    CHECK(fabsf(loss - ref) <= 1e-5f * fabsf(ref), "gradient penalty %.9g vs torch %.9g", loss, ref);
    cmp("gradient penalty d g", dg, "gp_dg", B * n, 1e-5);
}

int main(void) {
    tu_ref_run("test_nn_gan", "tools/nn_gan_ref.py");
    test_pool_up();
    test_layernorm2d();
    test_gp();
    tu_free_kept();
    return tu_finish();
}

// Every layer's forward and backward against torch autograd (tools/nn_layer_ref.py, computed in
// float64 from float32 inputs). Tolerances: |got-ref| <= atol + rtol*|ref| with atol 1e-5,
// rtol 1e-4 for outputs and atol 1e-4, rtol 1e-3 for gradients that sum over many rows or
// terms; plus the relative L2 error of each tensor <= 1e-5 (observed: <= 1e-6).
// Cases: odd batch sizes (B=3, B=1), both shift settings, the 7x7 stage with shift, a
// non-square grid, DropPath with explicit per-sample scales, head_dim 8 (general attention
// code) and 32 (the fast path).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/testutil.h"
#include "nn/nn.h"
#include "nn/swin_block.h"
#include "util/rng.h"

static const char *dir;  // the reference files

static float *rd(const char *name, size_t n) { return tu_ref("", name, n); }

static void test_linear(void) {
    const int N = 37, IC = 24, OC = 40;
    float *x = rd("linear_x", N * IC), *w = rd("linear_w", OC * IC), *b = rd("linear_b", OC),
          *g = rd("linear_g", N * OC);
    float *y = tu_zeros(N * OC), *dx = tu_zeros(N * IC), *dw = tu_zeros(OC * IC), *db = tu_zeros(OC);
    linear_forward(y, x, w, b, N, IC, OC);
    linear_backward(dx, dw, db, g, x, w, N, IC, OC);
    tu_cmp("linear y", y, rd("linear_y", N * OC), N * OC, 1e-5);
    tu_cmp("linear dx", dx, rd("linear_dx", N * IC), N * IC, 1e-5);
    tu_cmp("linear dw", dw, rd("linear_dw", OC * IC), OC * IC, 1e-4);
    tu_cmp("linear db", db, rd("linear_db", OC), OC, 1e-4);
}

static void test_layernorm(void) {
    const int N = 37, C = 20;
    float *x = rd("ln_x", N * C), *w = rd("ln_w", C), *b = rd("ln_b", C), *g = rd("ln_g", N * C);
    float *y = tu_zeros(N * C), *mean = tu_zeros(N), *rstd = tu_zeros(N), *dx = tu_zeros(N * C), *dw = tu_zeros(C),
          *db = tu_zeros(C);
    layernorm_forward(y, mean, rstd, x, w, b, NULL, 1, N, C);
    layernorm_backward(dx, dw, db, g, x, mean, rstd, w, NULL, 1, N, C);
    tu_cmp("layernorm y", y, rd("ln_y", N * C), N * C, 1e-5);
    tu_cmp("layernorm dx", dx, rd("ln_dx", N * C), N * C, 1e-5);
    tu_cmp("layernorm dw", dw, rd("ln_dw", C), C, 1e-4);
    tu_cmp("layernorm db", db, rd("ln_db", C), C, 1e-4);
    // The permuted variant writes row i to (i/L)*L + perm[i%L] and reads the gradient there.
    const int L = 37;
    int perm[37];
    for (int i = 0; i < L; i++) perm[i] = (i * 5 + 3) % L;
    float *yp = tu_zeros(N * C), *dxp = tu_zeros(N * C), *dwp = tu_zeros(C), *dbp = tu_zeros(C), *gp = tu_zeros(N * C);
    for (int i = 0; i < N; i++) memcpy(gp + (size_t)perm[i] * C, g + (size_t)i * C, sizeof(float) * C);
    layernorm_forward(yp, NULL, NULL, x, w, b, perm, L, N, C);
    layernorm_backward(dxp, dwp, dbp, gp, x, mean, rstd, w, perm, L, N, C);
    int same = 1;
    for (int i = 0; i < N; i++) same &= !memcmp(yp + (size_t)perm[i] * C, y + (size_t)i * C, sizeof(float) * C);
    CHECK(same, "layernorm with perm writes permuted rows");
    CHECK(!memcmp(dxp, dx, sizeof(float) * N * C), "layernorm backward with perm reads permuted rows");
}

static void test_gelu(void) {
    const int n = 1001;
    float *x = rd("gelu_x", n), *g = rd("gelu_g", n), *y = tu_zeros(n), *dx = tu_zeros(n);
    gelu_forward(y, x, n);
    gelu_backward(dx, g, x, n);
    tu_cmp("gelu y", y, rd("gelu_y", n), n, 1e-6);
    tu_cmp("gelu dx", dx, rd("gelu_dx", n), n, 1e-6);
    // The AVX-512 spans (in-place backward, forward) repeat the scalar operations exactly.
    float *dxi = tu_zeros(n), *ys = tu_zeros(n);
    memcpy(dxi, g, sizeof(float) * n);
    gelu_backward(dxi, dxi, x, n);
    CHECK(!memcmp(dxi, dx, sizeof(float) * n), "gelu in place (vector span) = accumulating loop, bit for bit");
    for (int i = 0; i < n; i++) ys[i] = x[i] * (0.5f * (1.0f + nn_erf(x[i] * 0.70710678118654752f)));
    CHECK(!memcmp(ys, y, sizeof(float) * n), "gelu forward (vector span) = scalar x Phi(x), bit for bit");
    // The backward's one-pass value and derivative: the forward's values, and the factor that
    // gelu_backward applies (g * factor = its in-place result), bit for bit.
    float *act = tu_zeros(n), *xg = tu_zeros(n);
    memcpy(xg, x, sizeof(float) * n);
    gelu_value_grad(act, xg, n);
    CHECK(!memcmp(act, y, sizeof(float) * n), "gelu_value_grad's value = gelu_forward, bit for bit");
    int same = 1;
    for (int i = 0; i < n; i++) same &= g[i] * xg[i] == dxi[i];
    CHECK(same, "gelu_value_grad's derivative times g = gelu_backward in place, bit for bit");
    double worst = 0;
    for (int i = -4000; i <= 4000; i++) {
        double v = i * 1e-3;
        worst = fmax(worst, fabs(nn_erf((float)v) - erf(v)));
    }
    CHECK(worst < 1e-6, "nn_erf within 1e-6 of erf on [-4, 4] (worst %.3g)", worst);
}

static void test_patch_embed(void) {
    const int B = 3, IC = 3, H = 16, W = 16, p = 4, OC = 8, L = 16, K = IC * p * p, N = B * L;
    float *img = rd("pe_img", B * IC * H * W), *w = rd("pe_w", OC * K), *b = rd("pe_b", OC), *g = rd("pe_g", N * OC);
    float *cols = tu_zeros(N * K), *y = tu_zeros(N * OC), *dw = tu_zeros(OC * K), *db = tu_zeros(OC);
    patch_im2col(cols, img, B, IC, H, W, p);
    patch_embed_forward(y, cols, w, b, N, K, OC);
    patch_embed_backward(dw, db, g, cols, N, K, OC);
    tu_cmp("patch_embed y", y, rd("pe_y", N * OC), N * OC, 1e-5);
    tu_cmp("patch_embed dw", dw, rd("pe_dw", OC * K), OC * K, 1e-4);
    tu_cmp("patch_embed db", db, rd("pe_db", OC), OC, 1e-4);
}

static const char *block_names[13] = {"norm1_w", "norm1_b", "rpb", "qkv_w", "qkv_b", "proj_w", "proj_b",
                                      "norm2_w", "norm2_b", "fc1_w", "fc1_b", "fc2_w", "fc2_b"};

static void test_block(const char *tag, int B, int H, int W, int C, int heads, int ws, int shift, int drop) {
    swin_geom geom;
    CHECK(swin_geom_init(&geom, H, W, ws, shift) == 0, "%s: geometry", tag);
    const int hid = 4 * C, T = ws * ws, N = B * H * W, K = (2 * ws - 1) * (2 * ws - 1);
    size_t sizes[13] = {C, C, (size_t)K * heads, 3 * C * C, 3 * C, C * C, C, C, C, hid * C, hid, C * hid, C};
    float *pw[13], *pg[13];
    char name[256];
    for (int i = 0; i < 13; i++) {
        snprintf(name, sizeof name, "%s_%s", tag, block_names[i]);
        pw[i] = rd(name, sizes[i]);
        pg[i] = tu_zeros(sizes[i]);
    }
    swin_block_weights w = {pw[0], pw[1], pw[2], pw[3],  pw[4],  pw[5], pw[6],
                            pw[7], pw[8], pw[9], pw[10], pw[11], pw[12]};
    swin_block_weights dw = {pg[0], pg[1], pg[2], pg[3],  pg[4],  pg[5], pg[6],
                             pg[7], pg[8], pg[9], pg[10], pg[11], pg[12]};
    char path[4096];
    snprintf(path, sizeof path, "%s/%s_relpos.i64", dir, tag);
    int64_t *rp64 = tu_keep(tu_read_i64(path, (size_t)T * T));
    int *relpos = tu_keep(malloc(sizeof(int) * T * T));
    for (int i = 0; i < T * T; i++) relpos[i] = (int)rp64[i];
    swin_block_dims d = {B, C, heads, hid, &geom, relpos};

    snprintf(name, sizeof name, "%s_x", tag);
    float *x = rd(name, (size_t)N * C);
    snprintf(name, sizeof name, "%s_g", tag);
    float *dx = rd(name, (size_t)N * C);
    snprintf(name, sizeof name, "%s_drop", tag);
    float *dropv = rd(name, 2 * (size_t)B);
    float *y = tu_zeros((size_t)N * C), *cbuf = tu_zeros(swin_block_cache_floats(&d)),
          *scratch = tu_zeros(swin_block_scratch_floats(&d));
    swin_block_cache cache;
    swin_block_cache_init(&cache, cbuf, &d);
    swin_block_forward(y, &cache, scratch, x, &w, &d, drop ? dropv : NULL);
    swin_block_backward(dx, &dw, scratch, &cache, x, &w, &d, drop ? dropv : NULL);

    char what[300];
    snprintf(name, sizeof name, "%s_y", tag);
    snprintf(what, sizeof what, "%.100s y", tag);
    tu_cmp(what, y, rd(name, (size_t)N * C), (size_t)N * C, 1e-5);
    snprintf(name, sizeof name, "%s_dx", tag);
    snprintf(what, sizeof what, "%s dx", tag);
    tu_cmp(what, dx, rd(name, (size_t)N * C), (size_t)N * C, 1e-4);  // sums of O(1) terms: float32 cancellation
    for (int i = 0; i < 13; i++) {
        snprintf(name, sizeof name, "%s_d%s", tag, block_names[i]);
        snprintf(what, sizeof what, "%s d%s", tag, block_names[i]);
        tu_cmp(what, pg[i], rd(name, sizes[i]), sizes[i], 1e-4);
    }

    // Inference path: cache in shared buffers with x_mid == out, in place on the input copy.
    float *xi = tu_zeros((size_t)N * C);
    memcpy(xi, x, sizeof(float) * (size_t)N * C);
    swin_block_cache ic = cache;
    ic.ln1_mean = ic.ln1_rstd = ic.ln2_mean = ic.ln2_rstd = NULL;
    ic.x_mid = xi;
    swin_block_forward(xi, &ic, scratch, xi, &w, &d, NULL);
    if (!drop) {
        snprintf(what, sizeof what, "%s in-place inference equals training forward", tag);
        CHECK(!memcmp(xi, y, sizeof(float) * (size_t)N * C), "%s", what);
    }
    swin_geom_free(&geom);
}

// The AVX-512 attention kernels against the portable loops (each checked against torch above) on
// every window size the tail masks distinguish (T below 16, at 16, between, 49, the full 64), with
// and without a region mask, head_dim 32. Where the CPU lacks AVX-512F both runs take the loops.
static void test_attention_paths(void) {
    static const int Ts[] = {4, 9, 16, 25, 36, 49, 64};
    rng r;
    rng_seed(&r, 11);
    for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++)
        for (int masked = 0; masked < 2; masked++) {
            const int T = Ts[ti], heads = 2, C = 64, nW = 2, nwin = 3;
            const size_t nq = (size_t)nwin * T * 3 * C, no = (size_t)nwin * T * C, nb = (size_t)heads * T * T;
            float *qkv = tu_zeros(nq), *bias = tu_zeros(nb), *g = tu_zeros(no);
            for (size_t i = 0; i < nq; i++) qkv[i] = (float)(2 * rng_uniform(&r) - 1);
            for (size_t i = 0; i < nb; i++) bias[i] = (float)(rng_uniform(&r) - 0.5);
            for (size_t i = 0; i < no; i++) g[i] = (float)(2 * rng_uniform(&r) - 1);
            int *region = tu_keep(malloc(sizeof(int) * nW * T));
            for (int i = 0; i < nW * T; i++) region[i] = (int)(3 * rng_uniform(&r));
            const int *reg = masked ? region : NULL;
            float *out[2], *dqkv[2], *dbias[2];
            for (int fast = 0; fast < 2; fast++) {
                nn_attention_allow_avx512(fast);
                out[fast] = tu_zeros(no), dqkv[fast] = tu_zeros(nq), dbias[fast] = tu_zeros(nb);
                window_attention_forward(out[fast], qkv, bias, reg, nwin, nW, T, C, heads);
                window_attention_backward(dqkv[fast], dbias[fast], g, qkv, bias, reg, nwin, nW, T, C, heads);
            }
            char what[96];
            snprintf(what, sizeof what, "attention T %d%s: avx512 out = loops", T, masked ? " masked" : "");
            tu_cmp(what, out[1], out[0], no, 1e-5);
            snprintf(what, sizeof what, "attention T %d%s: avx512 dqkv = loops", T, masked ? " masked" : "");
            tu_cmp(what, dqkv[1], dqkv[0], nq, 1e-4);
            snprintf(what, sizeof what, "attention T %d%s: avx512 dbias = loops", T, masked ? " masked" : "");
            tu_cmp(what, dbias[1], dbias[0], nb, 1e-4);
        }
    nn_attention_allow_avx512(1);
}

static void test_merge(void) {
    const int B = 3, H = 6, W = 10, C = 8, N2 = B * (H / 2) * (W / 2);
    float *x = rd("merge_x", B * H * W * C), *nw = rd("merge_nw", 4 * C), *nb = rd("merge_nb", 4 * C);
    float *rw = rd("merge_rw", 8 * C * C), *g = rd("merge_g", N2 * 2 * C);
    float *m = tu_zeros(N2 * 4 * C), *mn = tu_zeros(N2 * 4 * C), *mean = tu_zeros(N2), *rstd = tu_zeros(N2),
          *y = tu_zeros(N2 * 2 * C);
    merge_gather_forward(m, x, B, H, W, C);
    layernorm_forward(mn, mean, rstd, m, nw, nb, NULL, 1, N2, 4 * C);
    linear_forward(y, mn, rw, NULL, N2, 4 * C, 2 * C);
    float *dmn = tu_zeros(N2 * 4 * C), *dm = tu_zeros(N2 * 4 * C), *dx = tu_zeros(B * H * W * C);
    float *dnw = tu_zeros(4 * C), *dnb = tu_zeros(4 * C), *drw = tu_zeros(8 * C * C);
    linear_backward(dmn, drw, NULL, g, mn, rw, N2, 4 * C, 2 * C);
    layernorm_backward(dm, dnw, dnb, dmn, m, mean, rstd, nw, NULL, 1, N2, 4 * C);
    merge_gather_backward(dx, dm, B, H, W, C);
    tu_cmp("merge y", y, rd("merge_y", N2 * 2 * C), N2 * 2 * C, 1e-5);
    tu_cmp("merge dx", dx, rd("merge_dx", B * H * W * C), B * H * W * C, 1e-5);
    tu_cmp("merge dnorm_w", dnw, rd("merge_dnw", 4 * C), 4 * C, 1e-4);
    tu_cmp("merge dnorm_b", dnb, rd("merge_dnb", 4 * C), 4 * C, 1e-4);
    tu_cmp("merge dreduction_w", drw, rd("merge_drw", 8 * C * C), 8 * C * C, 1e-4);
}

static void test_expand(void) {
    const int B = 3, H = 5, W = 4, C = 8, c = C / 2, N = B * H * W, N4 = 4 * N;
    float *x = rd("expand_x", N * C), *ew = rd("expand_ew", 2 * C * C), *nw = rd("expand_nw", c),
          *nb = rd("expand_nb", c);
    float *g = rd("expand_g", N4 * c);
    float *e = tu_zeros(N * 2 * C), *r = tu_zeros(N4 * c), *y = tu_zeros(N4 * c), *mean = tu_zeros(N4),
          *rstd = tu_zeros(N4);
    linear_forward(e, x, ew, NULL, N, C, 2 * C);
    expand_regroup_forward(r, e, B, H, W, c);
    layernorm_forward(y, mean, rstd, r, nw, nb, NULL, 1, N4, c);
    float *dr = tu_zeros(N4 * c), *de = tu_zeros(N * 2 * C), *dx = tu_zeros(N * C), *dew = tu_zeros(2 * C * C),
          *dnw = tu_zeros(c), *dnb = tu_zeros(c);
    layernorm_backward(dr, dnw, dnb, g, r, mean, rstd, nw, NULL, 1, N4, c);
    expand_regroup_backward(de, dr, B, H, W, c);
    linear_backward(dx, dew, NULL, de, x, ew, N, C, 2 * C);
    tu_cmp("expand y", y, rd("expand_y", N4 * c), N4 * c, 1e-5);
    tu_cmp("expand dx", dx, rd("expand_dx", N * C), N * C, 1e-5);
    tu_cmp("expand dexpand_w", dew, rd("expand_dew", 2 * C * C), 2 * C * C, 1e-4);
    tu_cmp("expand dnorm_w", dnw, rd("expand_dnw", c), c, 1e-4);
    tu_cmp("expand dnorm_b", dnb, rd("expand_dnb", c), c, 1e-4);
}

static void test_loss(void) {
    const int B = 3, C = 3, H = 16, W = 16, p = 4, L = 16, K = 48, N = B * L;
    float *img = rd("loss_img", B * C * H * W), *pred = rd("loss_pred", N * K), *maskf = rd("loss_mask", N);
    uint8_t mask[48];
    for (int i = 0; i < N; i++) mask[i] = maskf[i] != 0.0f;
    float *t = tu_zeros(N * K), *dp = tu_zeros(N * K), *back = tu_zeros(B * C * H * W);
    patchify(t, img, B, C, H, W, p);
    CHECK(!memcmp(t, rd("loss_target", N * K), sizeof(float) * N * K), "patchify matches the (p,q,c) layout");
    unpatchify(back, t, B, C, H, W, p);
    CHECK(!memcmp(back, img, sizeof(float) * B * C * H * W), "unpatchify inverts patchify");
    float loss = masked_mse_forward(pred, t, mask, N, K);
    float ref = rd("loss_loss", 1)[0];
    CHECK(fabs(loss - ref) <= 1e-6 * fabs(ref), "masked mse %.9g vs torch %.9g", loss, ref);
    masked_mse_backward(dp, pred, t, mask, N, K, 1.0f);
    tu_cmp("masked mse dpred", dp, rd("loss_dpred", N * K), N * K, 1e-7);
    uint8_t none[48] = {0};
    CHECK(masked_mse_forward(pred, t, none, N, K) == 0.0f, "nothing masked gives loss 0");
}

static void test_mask_token_droppath(void) {
    const int N = 5, C = 3;
    float x[15], tok[3] = {7, 8, 9}, dtok[3] = {0};
    for (int i = 0; i < 15; i++) x[i] = (float)i;
    uint8_t mask[5] = {0, 1, 0, 0, 1};
    mask_token_forward(x, mask, tok, N, C);
    CHECK(x[3] == 7 && x[5] == 9 && x[12] == 7 && x[0] == 0 && x[6] == 6, "mask token replaces masked rows only");
    float dx[15];
    for (int i = 0; i < 15; i++) dx[i] = 1.0f;
    mask_token_backward(dtok, dx, mask, N, C);
    CHECK(dtok[0] == 2 && dx[3] == 0 && dx[0] == 1, "mask token gradient sums masked rows and stops there");

    float s1[1000], s2[1000];
    droppath_scales(s1, 1000, 0.1f, 42, 3);
    droppath_scales(s2, 1000, 0.1f, 42, 3);
    CHECK(!memcmp(s1, s2, sizeof s1), "droppath: same seed, same draws");
    int zeros_n = 0, ok = 1;
    for (int i = 0; i < 1000; i++) {
        zeros_n += s1[i] == 0.0f;
        ok &= s1[i] == 0.0f || fabsf(s1[i] - 1.0f / 0.9f) < 1e-7f;
    }
    CHECK(ok && zeros_n > 60 && zeros_n < 140, "droppath: values 0 or 1/(1-p), %d/1000 dropped at p=0.1", zeros_n);
    droppath_scales(s1, 10, 0.0f, 42, 3);
    CHECK(s1[0] == 1.0f && s1[9] == 1.0f, "droppath rate 0 keeps everything");
}

int main(void) {
    dir = tu_ref_run("test_nn_layers", "tools/nn_layer_ref.py");
    test_linear();
    test_layernorm();
    test_gelu();
    test_patch_embed();
    test_block("blk_s0", 3, 14, 14, 16, 2, 7, 0, 0);
    test_block("blk_s3", 3, 14, 14, 64, 2, 7, 3, 1);  // head_dim 32: fast attention path
    test_block("blk_7x7", 3, 7, 7, 64, 2, 7, 3, 0);
    printf("head_dim 32 again on the portable attention loops:\n");
    nn_attention_allow_avx512(0);
    test_block("blk_s3", 3, 14, 14, 64, 2, 7, 3, 1);
    test_block("blk_7x7", 3, 7, 7, 64, 2, 7, 3, 0);
    nn_attention_allow_avx512(1);
    test_attention_paths();
    test_block("blk_rect", 1, 14, 21, 8, 1, 7, 3, 0);
    test_merge();
    test_expand();
    test_loss();
    test_mask_token_droppath();
    tu_free_kept();
    return tu_finish();
}

// The diffusion U-Net's layers against torch autograd (tools/nn_ddpm_ref.py, float64 from float32
// inputs): GroupNorm (3, 1 and C groups), SiLU, nearest 2x upsampling, the sinusoidal timestep
// embedding, multi-head full self-attention. Tolerances as tests/test_nn_conv.c: |got-ref| <=
// atol + rtol*|ref| with atol 1e-5 / rtol 1e-4 for values, 1e-4 / 1e-3 for gradients, and a
// relative L2 error <= 1e-5 per tensor.
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

static void test_groupnorm(const char *tag, int B, int C, int H, int W, int G) {
    const size_t P = (size_t)H * W, n = (size_t)B * C * P;
    float *x = tu_ref(tag, "x", n), *w = tu_ref(tag, "w", C), *b = tu_ref(tag, "b", C), *g = tu_ref(tag, "g", n);
    float *y = tu_zeros(n), *dx = tu_zeros(n), *dw = tu_zeros(C), *db = tu_zeros(C), *mean = tu_zeros(B * G),
          *rstd = tu_zeros(B * G);
    groupnorm_forward(y, mean, rstd, x, w, b, B, C, P, G, 1e-6f);
    groupnorm_backward(dx, dw, db, g, x, mean, rstd, w, B, C, P, G);
    cmp(tag, "y", y, tu_ref(tag, "y", n), n, 1e-5);
    cmp(tag, "dx", dx, tu_ref(tag, "dx", n), n, 1e-4);
    cmp(tag, "dw", dw, tu_ref(tag, "dw", C), C, 1e-4);
    cmp(tag, "db", db, tu_ref(tag, "db", C), C, 1e-4);
    // Gradients accumulate, and the inference form (no statistics kept) gives the same output.
    groupnorm_backward(dx, NULL, NULL, g, x, mean, rstd, w, B, C, P, G);
    float *dx2 = tu_zeros(n), *ref = tu_ref(tag, "dx", n), *y2 = tu_zeros(n);
    for (size_t i = 0; i < n; i++) dx2[i] = 2.0f * ref[i];
    cmp(tag, "dx accumulates", dx, dx2, n, 1e-4);
    groupnorm_forward(y2, NULL, NULL, x, w, b, B, C, P, G, 1e-6f);
    CHECK(!memcmp(y, y2, sizeof(float) * n), "%s: the forward without statistics is the same", tag);
}

static void test_silu(void) {
    const size_t n = 1003;
    float *x = tu_ref("silu", "x", n), *g = tu_ref("silu", "g", n), *y = tu_zeros(n), *dx = tu_zeros(n);
    silu_forward(y, x, n);
    silu_backward(dx, g, x, n);
    cmp("silu", "y", y, tu_ref("silu", "y", n), n, 1e-5);
    cmp("silu", "dx", dx, tu_ref("silu", "dx", n), n, 1e-4);
    float *d2 = tu_zeros(n);
    memcpy(d2, g, sizeof(float) * n);
    silu_backward(d2, d2, x, n);  // in place
    cmp("silu", "dx in place", d2, tu_ref("silu", "dx", n), n, 1e-4);
}

static void test_upsample(void) {
    const int B = 2, C = 3, H = 3, W = 5;
    const size_t nx = (size_t)B * C * H * W, ny = 4 * nx;
    float *x = tu_ref("up", "x", nx), *g = tu_ref("up", "g", ny), *y = tu_zeros(ny), *dx = tu_zeros(nx);
    upsample2x_forward(y, x, B, C, H, W);
    upsample2x_backward(dx, g, B, C, H, W);
    cmp("up", "y", y, tu_ref("up", "y", ny), ny, 1e-6);
    cmp("up", "dx", dx, tu_ref("up", "dx", nx), nx, 1e-5);
}

static void test_temb(void) {
    float *t = tu_ref("temb", "t", 5), *e10 = tu_zeros(50), *e7 = tu_zeros(35);
    timestep_embedding(e10, t, 5, 10);
    timestep_embedding(e7, t, 5, 7);
    cmp("temb", "dim 10", e10, tu_ref("temb", "10", 50), 50, 1e-6);
    cmp("temb", "dim 7 (odd: zero pad)", e7, tu_ref("temb", "7", 35), 35, 1e-6);
}

static void test_attention(const char *tag, int B, int T, int C, int heads) {
    const size_t nq = (size_t)B * T * 3 * C, ny = (size_t)B * T * C;
    float *qkv = tu_ref(tag, "qkv", nq), *g = tu_ref(tag, "g", ny), *y = tu_zeros(ny), *dqkv = tu_zeros(nq);
    float *scratch = tu_zeros(full_attention_scratch_floats(T));
    full_attention_forward(y, scratch, NULL, qkv, B, T, C, heads);
    full_attention_backward(dqkv, scratch, NULL, g, qkv, B, T, C, heads);
    cmp(tag, "y", y, tu_ref(tag, "y", ny), ny, 1e-5);
    cmp(tag, "dqkv", dqkv, tu_ref(tag, "dqkv", nq), nq, 1e-4);
    // With the softmax kept by the forward (training) instead of recomputed: the same numbers.
    float *probs = tu_zeros((size_t)B * heads * T * T), *y2 = tu_zeros(ny), *dqkv2 = tu_zeros(nq);
    for (size_t i = 0; i < full_attention_scratch_floats(T); i++) scratch[i] = NAN;
    full_attention_forward(y2, scratch, probs, qkv, B, T, C, heads);
    for (size_t i = 0; i < full_attention_scratch_floats(T); i++) scratch[i] = NAN;
    full_attention_backward(dqkv2, scratch, probs, g, qkv, B, T, C, heads);
    CHECK(!memcmp(y2, y, sizeof(float) * ny), "%s: y with kept softmax equals y without", tag);
    CHECK(!memcmp(dqkv2, dqkv, sizeof(float) * nq), "%s: dqkv with kept softmax equals dqkv recomputed", tag);
}

static void test_transpose(void) {
    const int B = 2, C = 3, P = 5;
    const size_t n = (size_t)B * C * P;
    float *x = tu_zeros(n), *t = tu_zeros(n), *back = tu_zeros(n);
    for (size_t i = 0; i < n; i++) x[i] = (float)i;
    channels_last(t, x, B, C, P);
    CHECK(t[(size_t)1 * P * C + 4 * C + 2] == x[((size_t)1 * C + 2) * P + 4], "channels_last puts (b,c,p) at (b,p,c)");
    channels_first(back, t, B, C, P, 0);
    CHECK(!memcmp(back, x, sizeof(float) * n), "channels_first inverts channels_last");
    channels_first(back, t, B, C, P, 1);
    CHECK(back[7] == 2 * x[7], "channels_first accumulates");
}

int main(void) {
    tu_ref_run("test_nn_ddpm", "tools/nn_ddpm_ref.py");
    test_groupnorm("gn3", 2, 12, 5, 7, 3);
    test_groupnorm("gn1", 3, 4, 3, 3, 1);
    test_groupnorm("gnc", 1, 6, 4, 5, 6);
    test_silu();
    test_upsample();
    test_temb();
    test_attention("attn2", 2, 13, 12, 3);
    test_attention("attn1", 1, 70, 16, 1);
    test_attention("attn3", 2, 200, 16, 2);
    test_transpose();
    tu_free_kept();
    return tu_finish();
}

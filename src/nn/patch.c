// Patch embedding (conv as GEMM), mask-token substitution, patch-merging gather and
// patch-expanding regroup. The LayerNorms and Linears around them are the generic layers.
#include <string.h>

#include "nn/nn.h"

void patch_im2col(float *cols, const float *img, int B, int IC, int H, int W, int p) {
    const int Hp = H / p, Wp = W / p, K = IC * p * p;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int hp = 0; hp < Hp; hp++)
            for (int wp = 0; wp < Wp; wp++) {
                float *c = cols + (((size_t)b * Hp + hp) * Wp + wp) * K;
                for (int ic = 0; ic < IC; ic++)
                    for (int kh = 0; kh < p; kh++) {
                        const float *src = img + (((size_t)b * IC + ic) * H + (size_t)hp * p + kh) * W + (size_t)wp * p;
                        memcpy(c + (ic * p + kh) * p, src, sizeof(float) * p);
                    }
            }
}

void patch_embed_forward(float *out, const float *cols, const float *weight, const float *bias, int N, int K,
                         int OC) {
    // The conv weight (OC, IC, p, p) flattened is (OC, K) with K in (ic, kh, kw) order = im2col's.
    linear_forward(out, cols, weight, bias, N, K, OC);
}

void patch_embed_backward(float *dweight, float *dbias, const float *dout, const float *cols, int N, int K, int OC) {
    linear_backward(NULL, dweight, dbias, dout, cols, NULL, N, K, OC);
}

void mask_token_forward(float *x, const uint8_t *mask, const float *token, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++)
        if (mask[i]) memcpy(x + (size_t)i * C, token, sizeof(float) * C);
}

void mask_token_backward(float *dtoken, float *dx, const uint8_t *mask, int N, int C) {
    for (int i = 0; i < N; i++)
        if (mask[i]) {
            float *d = dx + (size_t)i * C;
            for (int c = 0; c < C; c++) {
                dtoken[c] += d[c];
                d[c] = 0.0f;
            }
        }
}

// Source offset (row, col parity) of chunk k of the merged channel axis: x0 = [0::2, 0::2],
// x1 = [1::2, 0::2], x2 = [0::2, 1::2], x3 = [1::2, 1::2].
static const int merge_dr[4] = {0, 1, 0, 1}, merge_dc[4] = {0, 0, 1, 1};

void merge_gather_forward(float *out, const float *inp, int B, int H, int W, int C) {
    const int H2 = H / 2, W2 = W / 2;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int i = 0; i < H2; i++)
            for (int j = 0; j < W2; j++) {
                float *o = out + (((size_t)b * H2 + i) * W2 + j) * 4 * C;
                for (int k = 0; k < 4; k++) {
                    const float *s = inp + (((size_t)b * H + 2 * i + merge_dr[k]) * W + 2 * j + merge_dc[k]) * C;
                    memcpy(o + (size_t)k * C, s, sizeof(float) * C);
                }
            }
}

void merge_gather_backward(float *dinp, const float *dout, int B, int H, int W, int C) {
    const int H2 = H / 2, W2 = W / 2;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int i = 0; i < H2; i++)
            for (int j = 0; j < W2; j++) {
                const float *g = dout + (((size_t)b * H2 + i) * W2 + j) * 4 * C;
                for (int k = 0; k < 4; k++) {
                    float *d = dinp + (((size_t)b * H + 2 * i + merge_dr[k]) * W + 2 * j + merge_dc[k]) * C;
                    for (int c = 0; c < C; c++) d[c] += g[(size_t)k * C + c];
                }
            }
}

void expand_regroup_forward(float *out, const float *inp, int B, int H, int W, int C4) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int w = 0; w < W; w++) {
                const float *s = inp + (((size_t)b * H + h) * W + w) * 4 * C4;
                for (int p1 = 0; p1 < 2; p1++)
                    for (int p2 = 0; p2 < 2; p2++) {
                        float *o = out + (((size_t)b * 2 * H + 2 * h + p1) * 2 * W + 2 * w + p2) * C4;
                        memcpy(o, s + (size_t)(p1 * 2 + p2) * C4, sizeof(float) * C4);
                    }
            }
}

void expand_regroup_backward(float *dinp, const float *dout, int B, int H, int W, int C4) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int w = 0; w < W; w++) {
                float *d = dinp + (((size_t)b * H + h) * W + w) * 4 * C4;
                for (int p1 = 0; p1 < 2; p1++)
                    for (int p2 = 0; p2 < 2; p2++) {
                        const float *g = dout + (((size_t)b * 2 * H + 2 * h + p1) * 2 * W + 2 * w + p2) * C4;
                        float *dd = d + (size_t)(p1 * 2 + p2) * C4;
                        for (int c = 0; c < C4; c++) dd[c] += g[c];
                    }
            }
}

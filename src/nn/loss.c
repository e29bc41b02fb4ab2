// Patchify / unpatchify in the reference's (p, q, c) layout and the masked MSE loss.
#include "nn/nn.h"

void patchify(float *target, const float *img, int B, int C, int H, int W, int p) {
    const int Hp = H / p, Wp = W / p, K = p * p * C;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < Hp; h++)
            for (int w = 0; w < Wp; w++) {
                float *t = target + (((size_t)b * Hp + h) * Wp + w) * K;
                for (int i = 0; i < p; i++)
                    for (int j = 0; j < p; j++)
                        for (int c = 0; c < C; c++)
                            t[(i * p + j) * C + c] = img[(((size_t)b * C + c) * H + (size_t)p * h + i) * W + (size_t)p * w + j];
            }
}

void unpatchify(float *img, const float *pred, int B, int C, int H, int W, int p) {
    const int Hp = H / p, Wp = W / p, K = p * p * C;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < Hp; h++)
            for (int w = 0; w < Wp; w++) {
                const float *t = pred + (((size_t)b * Hp + h) * Wp + w) * K;
                for (int i = 0; i < p; i++)
                    for (int j = 0; j < p; j++)
                        for (int c = 0; c < C; c++)
                            img[(((size_t)b * C + c) * H + (size_t)p * h + i) * W + (size_t)p * w + j] = t[(i * p + j) * C + c];
            }
}

float masked_mse_forward(const float *pred, const float *target, const uint8_t *mask, int N, int K) {
    // Serial, in double: ~10^6 terms, and the result does not depend on the thread count.
    double num = 0.0;
    long cnt = 0;
    for (int i = 0; i < N; i++) {
        if (!mask[i]) continue;
        const float *a = pred + (size_t)i * K, *t = target + (size_t)i * K;
        double s = 0.0;
        for (int k = 0; k < K; k++) {
            double d = (double)a[k] - (double)t[k];
            s += d * d;
        }
        num += s / K;
        cnt++;
    }
    return cnt ? (float)(num / (double)cnt) : 0.0f;
}

void masked_mse_backward(float *dpred, const float *pred, const float *target, const uint8_t *mask, int N, int K,
                         float dloss) {
    long cnt = 0;
    for (int i = 0; i < N; i++) cnt += mask[i] != 0;
    if (!cnt) return;
    const float g = 2.0f * dloss / ((float)K * (float)cnt);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        if (!mask[i]) continue;
        float *d = dpred + (size_t)i * K;
        const float *a = pred + (size_t)i * K, *t = target + (size_t)i * K;
        for (int k = 0; k < K; k++) d[k] += g * (a[k] - t[k]);
    }
}

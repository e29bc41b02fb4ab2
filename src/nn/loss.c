// Patchify / unpatchify in the reference's (p, q, c) layout, the masked MSE loss, and the plain
// reconstruction losses and VAE latent terms of the convolutional baselines.
#include <math.h>

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

// ---- L1 / MSE with a caller's scale, the VAE's reparameterisation and KL term -------------------
// The sums run serially in double, so a loss does not depend on the thread count.

float l1_loss_forward(const float *pred, const float *target, size_t n, float scale) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += fabs((double)pred[i] - (double)target[i]);
    return (float)(scale * s);
}

void l1_loss_backward(float *dpred, const float *pred, const float *target, size_t n, float scale) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float d = pred[i] - target[i];
        dpred[i] += d > 0.0f ? scale : (d < 0.0f ? -scale : 0.0f);
    }
}

float mse_loss_forward(const float *pred, const float *target, size_t n, float scale) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)pred[i] - (double)target[i];
        s += d * d;
    }
    return (float)(scale * s);
}

void mse_loss_backward(float *dpred, const float *pred, const float *target, size_t n, float scale) {
    const float g = 2.0f * scale;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) dpred[i] += g * (pred[i] - target[i]);
}

void vae_sample_forward(float *z, float *sigma, const float *mu, const float *log_sigma, const float *eps, size_t n) {
    for (size_t i = 0; i < n; i++) {
        sigma[i] = expf(log_sigma[i]);
        z[i] = mu[i] + eps[i] * sigma[i];
    }
}

void vae_sample_backward(float *dmu, float *dlog_sigma, const float *dz, const float *eps, const float *sigma,
                         size_t n) {
    // dz/dlog_sigma = eps * d exp(log_sigma) = eps*sigma.
    for (size_t i = 0; i < n; i++) {
        dmu[i] += dz[i];
        dlog_sigma[i] += dz[i] * eps[i] * sigma[i];
    }
}

float vae_kl_forward(const float *mu, const float *log_sigma, size_t n, float scale) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double m = mu[i], ls = log_sigma[i];
        s += m * m + exp(2.0 * ls) - 2.0 * ls - 1.0;
    }
    return (float)(scale * 0.5 * s);
}

void vae_kl_backward(float *dmu, float *dlog_sigma, const float *mu, const float *log_sigma, size_t n, float scale) {
    // d/dmu = mu; d/dlog_sigma of 0.5*(exp(2 ls) - 2 ls) = exp(2 ls) - 1.
    for (size_t i = 0; i < n; i++) {
        dmu[i] += scale * mu[i];
        dlog_sigma[i] += scale * (expf(2.0f * log_sigma[i]) - 1.0f);
    }
}

// BatchNorm2d over (B, C, H*W) with PyTorch's training and eval semantics.
#include <math.h>

#include "nn/nn.h"

void batchnorm2d_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                         float *running_mean, float *running_var, int B, int C, size_t P, float momentum,
                         int training) {
    const double n = (double)B * (double)P;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double mu, var;
        if (training) {
            // Two passes in double: the mean, then the centred squares (no cancellation); each sum
            // as several vector accumulators (one is a chain of dependent adds, scalar speed).
            double s = 0.0;
            for (int bb = 0; bb < B; bb++) {
                const float *x = inp + ((size_t)bb * C + c) * P;
#pragma omp simd reduction(+ : s)
                for (size_t i = 0; i < P; i++) s += x[i];
            }
            mu = s / n;
            double q = 0.0;
            for (int bb = 0; bb < B; bb++) {
                const float *x = inp + ((size_t)bb * C + c) * P;
#pragma omp simd reduction(+ : q)
                for (size_t i = 0; i < P; i++) {
                    double d = x[i] - mu;
                    q += d * d;
                }
            }
            var = q / n;
            if (running_mean) {
                // PyTorch keeps the unbiased variance in running_var (and fails for n == 1).
                double unbiased = n > 1 ? q / (n - 1) : var;
                running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * mu);
                running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * unbiased);
            }
        } else {
            mu = running_mean[c];
            var = running_var[c];
        }
        const float m = (float)mu, r = (float)(1.0 / sqrt(var + (double)NN_BN_EPS));
        mean[c] = m;
        rstd[c] = r;
        const float scale = w[c] * r, shift = b[c] - m * scale;
        for (int bb = 0; bb < B; bb++) {
            const float *x = inp + ((size_t)bb * C + c) * P;
            float *o = out + ((size_t)bb * C + c) * P;
            for (size_t i = 0; i < P; i++) o[i] = x[i] * scale + shift;
        }
    }
}

void batchnorm2d_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *mean,
                          const float *rstd, const float *w, int B, int C, size_t P, int training) {
    const double n = (double)B * (double)P;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        const float m = mean[c], r = rstd[c];
        // sum_dy = sum dy, sum_dyx = sum dy * xhat: db and dw, and the two batch-statistic terms.
        double sum_dy = 0.0, sum_dyx = 0.0;
        for (int bb = 0; bb < B; bb++) {
            const float *x = inp + ((size_t)bb * C + c) * P, *g = dout + ((size_t)bb * C + c) * P;
#pragma omp simd reduction(+ : sum_dy, sum_dyx)
            for (size_t i = 0; i < P; i++) {
                sum_dy += g[i];
                sum_dyx += (double)g[i] * ((x[i] - m) * r);
            }
        }
        dw[c] += (float)sum_dyx;
        db[c] += (float)sum_dy;
        // Training: xhat depends on every x of the channel through mean and rstd, so
        // dx = w*rstd * (dy - mean(dy) - xhat * mean(dy*xhat)). Eval: dx = w*rstd*dy.
        const float k = w[c] * r;
        const float a = training ? (float)(sum_dy / n) : 0.0f, q = training ? (float)(sum_dyx / n) : 0.0f;
        for (int bb = 0; bb < B; bb++) {
            const float *x = inp + ((size_t)bb * C + c) * P, *g = dout + ((size_t)bb * C + c) * P;
            float *d = dinp + ((size_t)bb * C + c) * P;
            for (size_t i = 0; i < P; i++) d[i] += k * (g[i] - a - (x[i] - m) * r * q);
        }
    }
}

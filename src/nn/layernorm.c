// LayerNorm over the last axis (eps 1e-6, biased variance as in PyTorch), optionally writing
// rows through a per-image permutation (fuses the cyclic shift + window partition).
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"
#include "util/error.h"

static inline size_t perm_row(const int *perm, int L, size_t i) {
    return perm ? (i / (size_t)L) * (size_t)L + (size_t)perm[i % (size_t)L] : i;
}

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                       const int *perm, int L, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C;
        float *o = out + perm_row(perm, L, (size_t)i) * C;
        float m = 0.0f;
#pragma omp simd reduction(+ : m)
        for (int c = 0; c < C; c++) m += x[c];
        m /= (float)C;
        float v = 0.0f;
#pragma omp simd reduction(+ : v)
        for (int c = 0; c < C; c++) {
            float d = x[c] - m;
            v += d * d;
        }
        v /= (float)C;
        float s = 1.0f / sqrtf(v + NN_LN_EPS);
        for (int c = 0; c < C; c++) o[c] = (x[c] - m) * s * w[c] + b[c];
        if (mean) mean[i] = m;
        if (rstd) rstd[i] = s;
    }
}

void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *mean,
                        const float *rstd, const float *w, const int *perm, int L, int N, int C) {
    // With xhat = (x - mean) * rstd and g = dout * w:
    //   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  dw += dout * xhat,  db += dout.
#pragma omp parallel
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        size_t r0 = (size_t)N * t / nt, r1 = (size_t)N * (t + 1) / nt;
        float *part = as_malloc(2 * (size_t)C * sizeof(float));  // dw part, db part
        memset(part, 0, 2 * (size_t)C * sizeof(float));
        float *pw = part, *pb = part + C;
        for (size_t i = r0; i < r1; i++) {
            const float *x = inp + i * C;
            const float *go = dout + perm_row(perm, L, i) * C;
            float *dx = dinp + i * C;
            float m = mean[i], s = rstd[i];
            float gm = 0.0f, gxm = 0.0f;
#pragma omp simd reduction(+ : gm, gxm)
            for (int c = 0; c < C; c++) {
                float xh = (x[c] - m) * s;
                float g = go[c] * w[c];
                gm += g;
                gxm += g * xh;
                pw[c] += go[c] * xh;
                pb[c] += go[c];
            }
            gm /= (float)C;
            gxm /= (float)C;
            for (int c = 0; c < C; c++) {
                float xh = (x[c] - m) * s;
                dx[c] += s * (go[c] * w[c] - gm - xh * gxm);
            }
        }
#pragma omp for ordered schedule(static, 1)
        for (int k = 0; k < nt; k++) {
#pragma omp ordered
            for (int c = 0; c < C; c++) {
                dw[c] += pw[c];
                db[c] += pb[c];
            }
        }
        free(part);
    }
}

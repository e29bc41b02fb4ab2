// Mean pooling, nearest upsampling, the per-sample LayerNorm with its tangent and dual passes, and
// the gradient penalty (see gan.h).
#include "nn/gan.h"

#include <math.h>

void mean_pool2_forward(float *out, const float *inp, int N, int H, int W) {
    const int OH = H / 2, OW = W / 2;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * H * W;
        float *o = out + (size_t)n * OH * OW;
        for (int i = 0; i < OH; i++)
            for (int j = 0; j < OW; j++) {
                const float *r0 = x + (size_t)(2 * i) * W + 2 * j, *r1 = r0 + W;
                o[i * OW + j] = 0.25f * (r0[0] + r0[1] + r1[0] + r1[1]);
            }
    }
}

void mean_pool2_backward(float *dinp, const float *dout, int N, int H, int W) {
    const int OH = H / 2, OW = W / 2;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float *d = dinp + (size_t)n * H * W;
        const float *g = dout + (size_t)n * OH * OW;
        for (int i = 0; i < OH; i++)
            for (int j = 0; j < OW; j++) {
                const float v = 0.25f * g[i * OW + j];
                float *r0 = d + (size_t)(2 * i) * W + 2 * j, *r1 = r0 + W;
                r0[0] += v;
                r0[1] += v;
                r1[0] += v;
                r1[1] += v;
            }
    }
}

void upsample2_forward(float *out, const float *inp, int N, int H, int W) {
    const int OW = 2 * W;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * H * W;
        float *o = out + (size_t)n * 4 * H * W;
        for (int i = 0; i < H; i++) {
            float *r0 = o + (size_t)(2 * i) * OW, *r1 = r0 + OW;
            for (int j = 0; j < W; j++) {
                const float v = x[i * W + j];
                r0[2 * j] = r0[2 * j + 1] = r1[2 * j] = r1[2 * j + 1] = v;
            }
        }
    }
}

void upsample2_backward(float *dinp, const float *dout, int N, int H, int W) {
    const int OW = 2 * W;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float *d = dinp + (size_t)n * H * W;
        const float *g = dout + (size_t)n * 4 * H * W;
        for (int i = 0; i < H; i++) {
            const float *r0 = g + (size_t)(2 * i) * OW, *r1 = r0 + OW;
            for (int j = 0; j < W; j++) d[i * W + j] += r0[2 * j] + r0[2 * j + 1] + r1[2 * j] + r1[2 * j + 1];
        }
    }
}

// ---- LayerNorm over (C, P) ------------------------------------------------------------------------
// Per sample, N = C*P values, x̂ = (a - mean) * rstd. Sums run in double: N reaches 10^5.

void layernorm2d_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                         int B, int C, size_t P) {
    const size_t N = (size_t)C * P;
    for (int s = 0; s < B; s++) {
        const float *x = inp + s * N;
        double sum = 0.0, sq = 0.0;
        for (size_t i = 0; i < N; i++) sum += x[i];
        const double mu = sum / (double)N;
        for (size_t i = 0; i < N; i++) sq += ((double)x[i] - mu) * ((double)x[i] - mu);
        const float m = (float)mu, r = (float)(1.0 / sqrt(sq / (double)N + (double)NN_LN2D_EPS));
        mean[s] = m;
        rstd[s] = r;
        float *o = out + s * N;
#pragma omp parallel for schedule(static)
        for (int c = 0; c < C; c++)
            for (size_t i = (size_t)c * P; i < (size_t)(c + 1) * P; i++) o[i] = w[c] * ((x[i] - m) * r) + b[c];
    }
}

// mean(v) and mean(v x̂) of one sample.
static void two_means(double *mv, double *mvx, const float *v, const float *x, float m, float r, size_t N) {
    double s1 = 0.0, s2 = 0.0;
    for (size_t i = 0; i < N; i++) {
        s1 += v[i];
        s2 += (double)v[i] * ((x[i] - m) * r);
    }
    *mv = s1 / (double)N;
    *mvx = s2 / (double)N;
}

void layernorm2d_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *mean,
                          const float *rstd, const float *w, int B, int C, size_t P) {
    // d x̂ = w*dout; dinp = rstd * (dx̂ - mean(dx̂) - x̂ mean(dx̂ x̂)) (the mean and the variance
    // both move with every input of the sample).
    const size_t N = (size_t)C * P;
    for (int s = 0; s < B; s++) {
        const float *x = inp + s * N, *g = dout + s * N;
        const float m = mean[s], r = rstd[s];
        double s1 = 0.0, s2 = 0.0;
        for (int c = 0; c < C; c++)
            for (size_t i = (size_t)c * P; i < (size_t)(c + 1) * P; i++) {
                const double v = (double)w[c] * g[i];
                s1 += v;
                s2 += v * ((x[i] - m) * r);
            }
        const float a1 = (float)(s1 / (double)N), a2 = (float)(s2 / (double)N);
        float *d = dinp + s * N;
#pragma omp parallel for schedule(static)
        for (int c = 0; c < C; c++) {
            double gw = 0.0, gb = 0.0;
            for (size_t i = (size_t)c * P; i < (size_t)(c + 1) * P; i++) {
                const float xh = (x[i] - m) * r;
                d[i] += r * (w[c] * g[i] - a1 - xh * a2);
                gw += (double)g[i] * xh;
                gb += g[i];
            }
            if (dw) dw[c] += (float)gw;
            if (db) db[c] += (float)gb;
        }
    }
}

void layernorm2d_tangent(float *out_t, const float *inp_t, const float *inp, const float *mean, const float *rstd,
                         const float *w, int B, int C, size_t P) {
    const size_t N = (size_t)C * P;
    for (int s = 0; s < B; s++) {
        const float *x = inp + s * N, *t = inp_t + s * N;
        const float m = mean[s], r = rstd[s];
        double mt, mtx;
        two_means(&mt, &mtx, t, x, m, r, N);
        const float a1 = (float)mt, a2 = (float)mtx;
        float *o = out_t + s * N;
#pragma omp parallel for schedule(static)
        for (int c = 0; c < C; c++)
            for (size_t i = (size_t)c * P; i < (size_t)(c + 1) * P; i++)
                o[i] = w[c] * r * (t[i] - a1 - (x[i] - m) * r * a2);
    }
}

void layernorm2d_dual_backward(float *dinp, float *dinp_t, float *dw, float *db, const float *dout,
                               const float *dout_t, const float *inp, const float *inp_t, const float *mean,
                               const float *rstd, const float *w, int B, int C, size_t P) {
    // Per sample, with x̂ = (a - μ) r, ẋ̂ = r (ȧ - mean ȧ - x̂ m), m = mean(x̂ ȧ), out = w x̂ + b,
    // out_t = w ẋ̂, adjoints g (of out) and h (of out_t), u = w h:
    //  - dinp_t: ẋ̂ is LayerNorm's Jacobian applied to ȧ, a self-adjoint map of u:
    //    r (u - mean u - x̂ mean(u x̂)).
    //  - dinp: L = Σ u ẋ̂ depends on a through x̂ and r. As a function of x̂ and σ = 1/r,
    //    ∂L/∂x̂_i = -r (ȧ_i S/N + m u_i) with S = Σ u x̂, and ∂L/∂σ = -r L. x̂'s own backward maps
    //    the first (added to w g, the primal's d x̂) to dinp; ∂σ/∂a_i = x̂_i / N adds the second.
    //  - dw: Σ g x̂ + h ẋ̂ per channel; db: Σ g.
    const size_t N = (size_t)C * P;
    const double invN = 1.0 / (double)N;
    for (int s = 0; s < B; s++) {
        const float *x = inp + s * N, *t = inp_t + s * N, *g = dout + s * N, *h = dout_t + s * N;
        const float m = mean[s], r = rstd[s];
        double st = 0.0, stx = 0.0, su = 0.0, sux = 0.0, sut = 0.0;
        for (int c = 0; c < C; c++)
            for (size_t i = (size_t)c * P; i < (size_t)(c + 1) * P; i++) {
                const double xh = (double)((x[i] - m) * r), u = (double)w[c] * h[i];
                st += t[i];
                stx += xh * t[i];
                su += u;
                sux += u * xh;
                sut += u * t[i];
            }
        const double mt = st * invN, mx = stx * invN;  // mean ȧ, m
        // L = r (Σ u ȧ - N mean(ȧ) mean(u) ... ) written out: Σ u ẋ̂ = r (Σ u ȧ - mt Σ u - mx Σ u x̂).
        const double L = (double)r * (sut - mt * su - mx * sux);
        // dx̂ total = w g + X̄, X̄_i = -r (ȧ_i S/N + m u_i); its two means for x̂'s backward.
        double sv = 0.0, svx = 0.0;
        for (int c = 0; c < C; c++)
            for (size_t i = (size_t)c * P; i < (size_t)(c + 1) * P; i++) {
                const double xh = (double)((x[i] - m) * r), u = (double)w[c] * h[i];
                const double v = (double)w[c] * g[i] - (double)r * (t[i] * sux * invN + mx * u);
                sv += v;
                svx += v * xh;
            }
        const double mv = sv * invN, mvx = svx * invN, mu = su * invN, mux = sux * invN;
        const double sig_term = -(double)r * L * invN;  // ∂L/∂σ · ∂σ/∂a_i = -r L x̂_i / N
        float *d = dinp + s * N, *dt = dinp_t + s * N;
#pragma omp parallel for schedule(static)
        for (int c = 0; c < C; c++) {
            double gw = 0.0, gb = 0.0;
            for (size_t i = (size_t)c * P; i < (size_t)(c + 1) * P; i++) {
                const double xh = (double)((x[i] - m) * r), u = (double)w[c] * h[i];
                const double v = (double)w[c] * g[i] - (double)r * (t[i] * sux * invN + mx * u);
                d[i] += (float)((double)r * (v - mv - xh * mvx) + sig_term * xh);
                dt[i] += (float)((double)r * (u - mu - xh * mux));
                const double xt = (double)r * (t[i] - mt - xh * mx);  // ẋ̂
                gw += (double)g[i] * xh + (double)h[i] * xt;
                gb += g[i];
            }
            if (dw) dw[c] += (float)gw;
            if (db) db[c] += (float)gb;
        }
    }
}

float gradient_penalty_forward(float *dg, const float *g, int B, size_t n, float lambda) {
    double loss = 0.0;
    for (int s = 0; s < B; s++) {
        const float *x = g + s * n;
        double sq = 0.0;
        for (size_t i = 0; i < n; i++) sq += (double)x[i] * x[i];
        const double norm = sqrt(sq), e = norm - 1.0;
        loss += e * e;
        // d/dg of (||g|| - 1)^2 = 2 (||g|| - 1) g / ||g||; 0 at g = 0 as torch's norm backward.
        const double k = norm > 0.0 ? 2.0 * (double)lambda / B * e / norm : 0.0;
        float *d = dg + s * n;
        for (size_t i = 0; i < n; i++) d[i] = (float)(k * x[i]);
    }
    return (float)((double)lambda * loss / B);
}

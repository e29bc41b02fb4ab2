// Exact GELU, residual adds (with window un-permutation and DropPath scale), DropPath draws.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nn/fastmath.h"
#include "nn/nn.h"
#include "util/rng.h"

float nn_erf(float x) { return erf_poly(x); }

// ---- GELU -----------------------------------------------------------------------------------
static int gelu_zmm(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    return __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}

#if defined(__x86_64__) && defined(__GNUC__)
static inline __mmask16 span_mask(size_t left) { return left >= 16 ? 0xffff : tail_mask((int)left); }

AVX512_TARGET static void gelu_span_zmm(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = span_mask(n - i);
        const __m512 x = _mm512_maskz_loadu_ps(m, inp + i);
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(x, normal_cdf16(x)));
    }
}

AVX512_TARGET static void gelu_grad_span_zmm(float *dinp, const float *dout, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = span_mask(n - i);
        const __m512 x = _mm512_maskz_loadu_ps(m, inp + i);
        const __m512 cdf = normal_cdf16(x);
        const __m512 e = exp_neg16(_mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(-0.5f), x), x));
        const __m512 pdf = _mm512_mul_ps(_mm512_set1_ps(0.39894228040143268f), e);
        const __m512 g = _mm512_maskz_loadu_ps(m, dout + i);
        _mm512_mask_storeu_ps(dinp + i, m, _mm512_mul_ps(g, _mm512_add_ps(cdf, _mm512_mul_ps(x, pdf))));
    }
}
// act = x Φ(x) and, in place of x, Φ(x) + x φ(x): the same operations as the two spans above.
AVX512_TARGET static void gelu_value_grad_span_zmm(float *act, float *x_grad, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = span_mask(n - i);
        const __m512 x = _mm512_maskz_loadu_ps(m, x_grad + i);
        const __m512 cdf = normal_cdf16(x);
        const __m512 e = exp_neg16(_mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(-0.5f), x), x));
        const __m512 pdf = _mm512_mul_ps(_mm512_set1_ps(0.39894228040143268f), e);
        _mm512_mask_storeu_ps(act + i, m, _mm512_mul_ps(x, cdf));
        _mm512_mask_storeu_ps(x_grad + i, m, _mm512_add_ps(cdf, _mm512_mul_ps(x, pdf)));
    }
}
#endif

static void gelu_value_grad_span(float *act, float *x_grad, size_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (gelu_zmm()) {
        gelu_value_grad_span_zmm(act, x_grad, n);
        return;
    }
#endif
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float x = x_grad[i];
        float cdf = normal_cdf(x);
        float pdf = 0.39894228040143268f * exp_neg(-0.5f * x * x);
        act[i] = x * cdf;
        x_grad[i] = cdf + x * pdf;
    }
}

void gelu_span(float *out, const float *inp, size_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (gelu_zmm()) {
        gelu_span_zmm(out, inp, n);
        return;
    }
#endif
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = x * normal_cdf(x);
    }
}

void gelu_grad_span(float *dinp, const float *dout, const float *inp, size_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (gelu_zmm()) {
        gelu_grad_span_zmm(dinp, dout, inp, n);
        return;
    }
#endif
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float cdf = normal_cdf(x);
        float pdf = 0.39894228040143268f * exp_neg(-0.5f * x * x);
        dinp[i] = dout[i] * (cdf + x * pdf);
    }
}

// Elementwise, so the chunks' split over threads does not change any value.
enum { GELU_CHUNK = 4096 };

void gelu_forward(float *out, const float *inp, size_t n) {
    const long nchunks = (long)((n + GELU_CHUNK - 1) / GELU_CHUNK);
#pragma omp parallel for schedule(static)
    for (long c = 0; c < nchunks; c++) {
        size_t i = (size_t)c * GELU_CHUNK, m = n - i < GELU_CHUNK ? n - i : GELU_CHUNK;
        gelu_span(out + i, inp + i, m);
    }
}

void gelu_value_grad(float *act, float *x_grad, size_t n) {
    const long nchunks = (long)((n + GELU_CHUNK - 1) / GELU_CHUNK);
#pragma omp parallel for schedule(static)
    for (long c = 0; c < nchunks; c++) {
        size_t i = (size_t)c * GELU_CHUNK, m = n - i < GELU_CHUNK ? n - i : GELU_CHUNK;
        gelu_value_grad_span(act + i, x_grad + i, m);
    }
}

void gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    // d/dx [x Φ(x)] = Φ(x) + x φ(x), φ(x) = exp(-x²/2) / sqrt(2π).
    if (dinp == dout) {
        const long nchunks = (long)((n + GELU_CHUNK - 1) / GELU_CHUNK);
#pragma omp parallel for schedule(static)
        for (long c = 0; c < nchunks; c++) {
            size_t i = (size_t)c * GELU_CHUNK, m = n - i < GELU_CHUNK ? n - i : GELU_CHUNK;
            gelu_grad_span(dinp + i, dout + i, inp + i, m);
        }
    } else {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) {
            float x = inp[i];
            float cdf = normal_cdf(x);
            float pdf = 0.39894228040143268f * exp_neg(-0.5f * x * x);
            dinp[i] += dout[i] * (cdf + x * pdf);
        }
    }
}

// ---- residual ---------------------------------------------------------------------------------
static inline size_t perm_row(const int *perm, int L, size_t i) {
    return perm ? (i / (size_t)L) * (size_t)L + (size_t)perm[i % (size_t)L] : i;
}

void residual_forward(float *out, const float *x, const float *y, const float *bias, const float *scale,
                      const int *perm, int L, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        const float *yr = y + perm_row(perm, L, (size_t)i) * C;
        const float *xr = x + (size_t)i * C;
        float *o = out + (size_t)i * C;
        float s = scale ? scale[i / L] : 1.0f;
        if (bias)
            for (int c = 0; c < C; c++) o[c] = xr[c] + s * (yr[c] + bias[c]);
        else
            for (int c = 0; c < C; c++) o[c] = xr[c] + s * yr[c];
    }
}

void residual_backward(float *dy, float *dbias, const float *dout, const float *scale, const int *perm, int L,
                       int N, int C) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        float *d = dy + perm_row(perm, L, (size_t)i) * C;
        const float *g = dout + (size_t)i * C;
        float s = scale ? scale[i / L] : 1.0f;
        for (int c = 0; c < C; c++) d[c] = s * g[c];
    }
    if (dbias) colsum_accumulate(dbias, dy, N, C);
}

void droppath_scales(float *scale, int B, float rate, uint64_t seed, uint64_t stream) {
    // timm's DropPath: keep a sample with probability 1-rate and divide it by 1-rate.
    rng r;
    rng_seed_stream(&r, seed, stream);
    for (int b = 0; b < B; b++) {
        double u = rng_uniform(&r);
        scale[b] = (rate <= 0.0f) ? 1.0f : (u < (double)rate ? 0.0f : 1.0f / (1.0f - rate));
    }
}

// ---- LeakyReLU / ReLU, sigmoid, tanh ------------------------------------------------------------

void leaky_relu_forward(float *out, const float *inp, size_t n, float slope) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : slope * inp[i];
}

void leaky_relu_backward(float *dinp, const float *dout, const float *out, size_t n, float slope) {
    if (dinp == dout) {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) dinp[i] = out[i] > 0.0f ? dout[i] : slope * dout[i];
    } else {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) dinp[i] += out[i] > 0.0f ? dout[i] : slope * dout[i];
    }
}

void sigmoid_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = 1.0f / (1.0f + expf(-inp[i]));
}

void sigmoid_backward(float *dinp, const float *dout, const float *out, size_t n) {
    if (dinp == dout) {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) dinp[i] = dout[i] * out[i] * (1.0f - out[i]);
    } else {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * out[i] * (1.0f - out[i]);
    }
}

void tanh_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = tanhf(inp[i]);
}

void tanh_backward(float *dinp, const float *dout, const float *out, size_t n) {
    if (dinp == dout) {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) dinp[i] = dout[i] * (1.0f - out[i] * out[i]);
    } else {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * (1.0f - out[i] * out[i]);
    }
}

// ---- SiLU ------------------------------------------------------------------------------------
// sigmoid from exp(-|x|) <= 1: the vectorisable exp_neg, no overflow on either side.
static inline float sigmoid_fast(float x) {
    float e = exp_neg(-fabsf(x)), r = 1.0f / (1.0f + e);
    return x >= 0.0f ? r : e * r;
}

void silu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = x * sigmoid_fast(x);
    }
}

void silu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    // d/dx [x s(x)] = s + x s (1 - s).
    const int add = dinp != dout;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i], s = sigmoid_fast(x);
        float g = dout[i] * (s + x * s * (1.0f - s));
        dinp[i] = add ? dinp[i] + g : g;
    }
}

// Branch-free erf / exp polynomials that the compiler vectorises (internal to src/nn).
#ifndef ANOSWIN_NN_FASTMATH_H
#define ANOSWIN_NN_FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

// ---- vectorisable erf / exp -----------------------------------------------------------------
// libm's erff/expf are scalar calls (no vector variants without -ffast-math), and GELU runs
// over ~10^8 values per training step, so both are written as branch-free polynomials that the
// compiler vectorises.

// Rational approximation of erf on [-4, 4] (erf is +-1 in float beyond), the same form as
// Eigen's float erf: |error| ~ 1e-7.
static inline float erf_poly(float x) {
    // Ternaries, not fminf/fmaxf: those are library calls (NaN rules) that stop vectorisation.
    x = x < -4.0f ? -4.0f : (x > 4.0f ? 4.0f : x);
    float x2 = x * x;
    float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
    p = x2 * p + -2.10102402082508e-06f;
    p = x2 * p + -5.69250639462346e-05f;
    p = x2 * p + -7.34990630326855e-04f;
    p = x2 * p + -2.95459980854025e-03f;
    p = x2 * p + -1.60960333262415e-02f;
    p = x * p;
    float q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
    q = x2 * q + -1.68282697438203e-03f;
    q = x2 * q + -7.37332916720468e-03f;
    q = x2 * q + -1.42647390514189e-02f;
    return p / q;
}

// Φ(x) = P(Z <= x), the standard normal CDF: exact GELU is x·Φ(x).
static inline float normal_cdf(float x) { return 0.5f * (1.0f + erf_poly(x * 0.70710678118654752f)); }

// Cephes-style expf for x <= 0 (all GELU needs): 2^n * poly(r), |relative error| ~ 2e-7.
static inline float exp_neg(float x) {
    x = x < -87.0f ? -87.0f : x;
    // n = round(x / ln 2) by the 1.5*2^23 trick (floorf would stop vectorisation).
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;  // 2^n
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

#endif

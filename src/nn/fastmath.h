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

// ---- the same on 16 lanes (AVX-512F, x86-64 GCC/clang) -------------------------------------------
// Operation for operation the scalar functions above (no FMA: the scalar ones are compiled in ISO C
// mode, which does not contract), so vector and scalar results are bit-identical; the 512-bit
// forms exist because GCC tunes -march=native for Intel to 256-bit vectors.
#if defined(__x86_64__) && defined(__GNUC__)
#include "nn/amx.h"

AVX512_TARGET static inline __m512 erf_poly16(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-4.0f)), _mm512_set1_ps(4.0f));
    const __m512 x2 = _mm512_mul_ps(x, x);
#define FM_STEP(a, c) _mm512_add_ps(_mm512_mul_ps(x2, a), _mm512_set1_ps(c))
    __m512 p = FM_STEP(_mm512_set1_ps(-2.72614225801306e-10f), 2.77068142495902e-08f);
    p = FM_STEP(p, -2.10102402082508e-06f);
    p = FM_STEP(p, -5.69250639462346e-05f);
    p = FM_STEP(p, -7.34990630326855e-04f);
    p = FM_STEP(p, -2.95459980854025e-03f);
    p = FM_STEP(p, -1.60960333262415e-02f);
    p = _mm512_mul_ps(x, p);
    __m512 q = FM_STEP(_mm512_set1_ps(-1.45660718464996e-05f), -2.13374055278905e-04f);
    q = FM_STEP(q, -1.68282697438203e-03f);
    q = FM_STEP(q, -7.37332916720468e-03f);
    q = FM_STEP(q, -1.42647390514189e-02f);
#undef FM_STEP
    return _mm512_div_ps(p, q);
}

AVX512_TARGET static inline __m512 normal_cdf16(__m512 x) {
    const __m512 half = _mm512_set1_ps(0.5f);
    return _mm512_mul_ps(half, _mm512_add_ps(_mm512_set1_ps(1.0f),
                                             erf_poly16(_mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f)))));
}

AVX512_TARGET static inline __m512 exp_neg16(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    __m512 n = _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), magic), magic);
    __m512 r = _mm512_add_ps(_mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(0.693359375f))),
                             _mm512_mul_ps(n, _mm512_set1_ps(2.12194440e-4f)));
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(p, r), r), r), _mm512_set1_ps(1.0f));
    const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
}
#endif

// ---- denormals ------------------------------------------------------------------------------
// A masked attention score (-100) gives a probability near 1e-38 and products of it below
// FLT_MIN; on Intel cores every arithmetic instruction that reads or makes a denormal takes a
// microcode assist of ~100 cycles, which made a shifted-window block's attention 20x slower than
// an unshifted one's. The window attention kernels therefore run with flush-to-zero and
// denormals-are-zero (MXCSR) on their threads: results change only where a value is below 1.2e-38.
#if defined(__x86_64__) && defined(__GNUC__)
#include <xmmintrin.h>
static inline unsigned denormals_off(void) {
    const unsigned old = _mm_getcsr();
    _mm_setcsr(old | 0x8040);  // FTZ (bit 15) | DAZ (bit 6)
    return old;
}
static inline void denormals_restore(unsigned old) { _mm_setcsr(old); }
#else
static inline unsigned denormals_off(void) { return 0; }
static inline void denormals_restore(unsigned old) { (void)old; }
#endif

// Serial spans for callers that run their own threads (the fused MLP's row tiles), AVX-512 where
// the CPU has it: out = GELU(inp); dinp = dout * GELU'(inp) (dinp may be dout).
void gelu_span(float *out, const float *inp, size_t n);
void gelu_grad_span(float *dinp, const float *dout, const float *inp, size_t n);

#endif

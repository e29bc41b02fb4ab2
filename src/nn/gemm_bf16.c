// bf16 GEMM with fp32 accumulation (AVX512-BF16 vdpbf16ps) and the precision switch of the
// linear layers. Debian 12's OpenBLAS exports no sbgemm, so this is our own Goto-style kernel:
// each thread owns a block of C's rows (or columns), packs the KC x NC block of B and the
// MC x KC block of A it needs into private bf16 buffers, and runs an MR x NR register-tile
// microkernel over them. Every element of C is summed over K by one thread in the same order
// (KC blocks in sequence, pairs of k within a block) whatever the thread count, so results are
// reproducible, and independent of the threads too.
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"
#include "util/error.h"

// ---- conversion -------------------------------------------------------------------------------
uint16_t bf16_from_float(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    // NaN stays a (quiet) NaN; adding the rounding bias could carry it into infinity.
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);
    // Round to nearest, ties to even: what torch's float -> bfloat16 conversion does (denormals kept).
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

// ---- precision switch ---------------------------------------------------------------------------
static int g_precision = NN_FP32;

int nn_bf16_supported(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

int nn_set_precision(int p) {
    if (p != NN_FP32 && p != NN_BF16) return as_fail("precision: unknown value %d", p);
    if (p == NN_BF16 && !nn_bf16_supported())
        return as_fail("precision bf16: this CPU has no AVX512-BF16 instructions (use --precision fp32)");
    g_precision = p;
    return 0;
}

int nn_precision(void) { return g_precision; }

const char *nn_precision_name(int p) { return p == NN_BF16 ? "bf16" : "fp32"; }

int nn_precision_parse(const char *s, int *p) {
    if (s && !strcmp(s, "fp32")) *p = NN_FP32;
    else if (s && !strcmp(s, "bf16")) *p = NN_BF16;
    else return as_fail("precision '%s': expected fp32 or bf16", s ? s : "");
    return 0;
}

void gemm_prec(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
               int ldb, float beta, float *C, int ldc) {
    if (g_precision == NN_BF16)
        gemm_bf16(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else
        gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// ---- kernel -------------------------------------------------------------------------------------
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

// MR x NR = 8 x 32: 16 zmm accumulators, 2 B loads and 8 broadcasts per pair of k. KC pairs of
// k (2*KC_PAIRS values) make a B micro-panel of 16 KiB (L1); an MC x KC block of A 64 KiB (L2).
enum { MR = 8, NR = 32, KC_PAIRS = 128, MC = 128, NC = 1024 };

#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

// Two bf16 of consecutive k in one 32-bit word, low half first: vdpbf16ps multiplies such pairs.
static inline uint32_t pair(float lo, float hi) {
    return (uint32_t)bf16_from_float(lo) | (uint32_t)bf16_from_float(hi) << 16;
}

// Ap[panel][kp][MR] for rows i0..i0+mc, k in k0..k0+kc (pairs past kc and rows past mc are 0).
static void pack_a(uint32_t *Ap, const float *A, int lda, int trans, int i0, int mc, int k0, int kc) {
    const int kp_n = (kc + 1) / 2;
    for (int p = 0; p * MR < mc; p++) {
        uint32_t *dst = Ap + (size_t)p * kp_n * MR;
        for (int r = 0; r < MR; r++) {
            const int i = p * MR + r;
            if (i >= mc) {
                for (int kp = 0; kp < kp_n; kp++) dst[(size_t)kp * MR + r] = 0;
                continue;
            }
            for (int kp = 0; kp < kp_n; kp++) {
                const int k = k0 + 2 * kp;
                const int has2 = 2 * kp + 1 < kc;
                float lo, hi;
                if (trans) {  // A(i, k) = A[k*lda + i]
                    lo = A[(size_t)k * lda + i0 + i];
                    hi = has2 ? A[(size_t)(k + 1) * lda + i0 + i] : 0.0f;
                } else {
                    const float *row = A + (size_t)(i0 + i) * lda + k;
                    lo = row[0];
                    hi = has2 ? row[1] : 0.0f;
                }
                dst[(size_t)kp * MR + r] = pair(lo, hi);
            }
        }
    }
}

// Bp[panel][kp][NR] for columns j0..j0+nc, k in k0..k0+kc (zero-padded like pack_a).
static void pack_b(uint32_t *Bp, const float *B, int ldb, int trans, int j0, int nc, int k0, int kc) {
    const int kp_n = (kc + 1) / 2;
    for (int p = 0; p * NR < nc; p++) {
        uint32_t *dst = Bp + (size_t)p * kp_n * NR;
        const int jn = nc - p * NR < NR ? nc - p * NR : NR;
        if (trans) {  // B(k, j) = B[j*ldb + k]: each column is a contiguous row of B
            for (int jj = 0; jj < NR; jj++) {
                if (jj >= jn) {
                    for (int kp = 0; kp < kp_n; kp++) dst[(size_t)kp * NR + jj] = 0;
                    continue;
                }
                const float *col = B + (size_t)(j0 + p * NR + jj) * ldb + k0;
                for (int kp = 0; kp < kp_n; kp++) {
                    const int has2 = 2 * kp + 1 < kc;
                    dst[(size_t)kp * NR + jj] = pair(col[2 * kp], has2 ? col[2 * kp + 1] : 0.0f);
                }
            }
        } else {  // B(k, j) = B[k*ldb + j]
            for (int kp = 0; kp < kp_n; kp++) {
                const int has2 = 2 * kp + 1 < kc;
                const float *r0 = B + (size_t)(k0 + 2 * kp) * ldb + j0 + p * NR;
                const float *r1 = has2 ? r0 + ldb : NULL;
                uint32_t *d = dst + (size_t)kp * NR;
                for (int jj = 0; jj < jn; jj++) d[jj] = pair(r0[jj], r1 ? r1[jj] : 0.0f);
                for (int jj = jn; jj < NR; jj++) d[jj] = 0;
            }
        }
    }
}

// C[0..mr, 0..nr] (ldc) = alpha*Ap·Bp + (first ? beta*C : C). beta 0 never reads C (it may be
// uninitialised).
BF16_TARGET static void micro_kernel(int kp_n, const uint32_t *Ap, const uint32_t *Bp, float *C, int ldc, int mr,
                                     int nr, float alpha, float beta, int first) {
    __m512 c[MR][2];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = _mm512_setzero_ps();
    for (int kp = 0; kp < kp_n; kp++) {
        const __m512i b0 = _mm512_loadu_si512(Bp + (size_t)kp * NR), b1 = _mm512_loadu_si512(Bp + (size_t)kp * NR + 16);
        const uint32_t *a = Ap + (size_t)kp * MR;
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            const __m512i ar = _mm512_set1_epi32((int)a[r]);
            c[r][0] = _mm512_dpbf16_ps(c[r][0], (__m512bh)ar, (__m512bh)b0);
            c[r][1] = _mm512_dpbf16_ps(c[r][1], (__m512bh)ar, (__m512bh)b1);
        }
    }
    const __mmask16 m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
    const __mmask16 m1 = nr >= 32 ? 0xffff : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(first ? beta : 1.0f);
    const int keep = !first || beta != 0.0f;
    for (int r = 0; r < mr; r++) {
        float *cr = C + (size_t)r * ldc;
        __m512 v0 = _mm512_mul_ps(va, c[r][0]), v1 = _mm512_mul_ps(va, c[r][1]);
        if (keep) {
            v0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, cr), v0);
            v1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, cr + 16), v1);
        }
        _mm512_mask_storeu_ps(cr, m0, v0);
        _mm512_mask_storeu_ps(cr + 16, m1, v1);
    }
}

// One thread's block C[m0..m1, n0..n1].
static void gemm_bf16_block(int ta, int tb, int m0, int m1, int n0, int n1, int K, float alpha, const float *A,
                            int lda, const float *B, int ldb, float beta, float *C, int ldc, uint32_t *Ap,
                            uint32_t *Bp) {
    const int KC = 2 * KC_PAIRS;
    for (int jc = n0; jc < n1; jc += NC) {
        const int nc = n1 - jc < NC ? n1 - jc : NC;
        for (int pc = 0; pc < K; pc += KC) {
            const int kc = K - pc < KC ? K - pc : KC, kp_n = (kc + 1) / 2;
            pack_b(Bp, B, ldb, tb, jc, nc, pc, kc);
            for (int ic = m0; ic < m1; ic += MC) {
                const int mc = m1 - ic < MC ? m1 - ic : MC;
                pack_a(Ap, A, lda, ta, ic, mc, pc, kc);
                for (int jr = 0; jr < nc; jr += NR)
                    for (int ir = 0; ir < mc; ir += MR)
                        micro_kernel(kp_n, Ap + (size_t)(ir / MR) * kp_n * MR, Bp + (size_t)(jr / NR) * kp_n * NR,
                                     C + (size_t)(ic + ir) * ldc + jc + jr, ldc, mc - ir < MR ? mc - ir : MR,
                                     nc - jr < NR ? nc - jr : NR, alpha, beta, pc == 0);
            }
        }
    }
}

void gemm_bf16(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
               int ldb, float beta, float *C, int ldc) {
    if (!nn_bf16_supported()) {  // keeps the binary usable anywhere; nn_set_precision says so first
        gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {  // C = beta*C, as sgemm
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        return;
    }
    // The same split as gemm(): rows when C has enough of them, else columns (weight gradients
    // of narrow layers). Splits fall on MR / NR boundaries so that every tile but the last is full.
    const int by_rows = M >= N || M >= 256;
#pragma omp parallel
    {
        const int nt = omp_get_num_threads(), t = omp_get_thread_num();
        const int unit = by_rows ? MR : NR, n = by_rows ? M : N, units = (n + unit - 1) / unit;
        int lo = (int)((long)units * t / nt) * unit, hi = (int)((long)units * (t + 1) / nt) * unit;
        if (hi > n) hi = n;
        if (hi > lo) {
            uint32_t *Ap = as_malloc(sizeof(uint32_t) * (size_t)MC * KC_PAIRS);
            uint32_t *Bp = as_malloc(sizeof(uint32_t) * (size_t)NC * KC_PAIRS);
            if (by_rows)
                gemm_bf16_block(trans_a, trans_b, lo, hi, 0, N, K, alpha, A, lda, B, ldb, beta, C, ldc, Ap, Bp);
            else
                gemm_bf16_block(trans_a, trans_b, 0, M, lo, hi, K, alpha, A, lda, B, ldb, beta, C, ldc, Ap, Bp);
            free(Ap);
            free(Bp);
        }
    }
}
#else
void gemm_bf16(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
               int ldb, float beta, float *C, int ldc) {
    gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
#endif

// Shifted-window geometry, relative position bias, and windowed multi-head self-attention.
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nn/amx.h"  // AVX512_TARGET, tail_mask
#include "nn/fastmath.h"
#include "nn/nn.h"
#include "util/error.h"

// ---- geometry ---------------------------------------------------------------------------------
int swin_geom_init(swin_geom *g, int H, int W, int ws, int shift) {
    memset(g, 0, sizeof *g);
    if (ws <= 0 || H % ws || W % ws)
        return as_fail("swin: resolution %dx%d is not a multiple of the window size %d", H, W, ws);
    if (shift < 0 || shift >= ws) return as_fail("swin: shift %d outside [0, window %d)", shift, ws);
    g->H = H;
    g->W = W;
    g->ws = ws;
    g->shift = shift;
    g->T = ws * ws;
    g->nW = (H / ws) * (W / ws);
    g->perm = as_malloc((size_t)H * W * sizeof(int));
    if (shift > 0) g->region = as_malloc((size_t)H * W * sizeof(int));
    for (int h = 0; h < H; h++)
        for (int w = 0; w < W; w++) {
            // torch.roll(x, -shift): token h lands at h' = h - shift (mod H).
            int hs = (h - shift + H) % H, wsft = (w - shift + W) % W;
            int win = (hs / ws) * (W / ws) + wsft / ws;
            int row = win * g->T + (hs % ws) * ws + (wsft % ws);
            g->perm[h * W + w] = row;
            if (shift > 0) {
                // The reference labels the shifted grid with slices (0,-ws), (-ws,-shift),
                // (-shift,None) per axis; an id per (row slice, col slice) pair.
                int hi = hs < H - ws ? 0 : (hs < H - shift ? 1 : 2);
                int wi = wsft < W - ws ? 0 : (wsft < W - shift ? 1 : 2);
                g->region[row] = hi * 3 + wi;
            }
        }
    return 0;
}

void swin_geom_free(swin_geom *g) {
    free(g->perm);
    free(g->region);
    memset(g, 0, sizeof *g);
}

// ---- relative position bias -------------------------------------------------------------------
void relpos_bias_forward(float *bias, const float *table, const int *index, int heads, int T) {
    for (int h = 0; h < heads; h++)
        for (int k = 0; k < T * T; k++) bias[(size_t)h * T * T + k] = table[(size_t)index[k] * heads + h];
}

void relpos_bias_backward(float *dtable, const float *dbias, const int *index, int heads, int T) {
    for (int h = 0; h < heads; h++)
        for (int k = 0; k < T * T; k++) dtable[(size_t)index[k] * heads + h] += dbias[(size_t)h * T * T + k];
}

// ---- attention --------------------------------------------------------------------------------
// s[j] = exp(s[j] - mx) for j < T, and their sum: a softmax's exponentials (the one loop of the
// three softmaxes below; vectorised since the build's -fno-trapping-math). AVX-512 CPUs take the
// register-blocked kernels further down instead.
static float exp_shift_sum(float *s, int T, float mx) {
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < T; j++) {
        s[j] = exp_neg(s[j] - mx);
        sum += s[j];
    }
    return sum;
}

// One (window, head) pair per task. The window's q, k, v slices are copied into small contiguous
// tiles (kᵀ and vᵀ padded to TP = T rounded up to 16 columns) so that every inner loop runs over
// a contiguous, vector-length axis.

// S (T, TP) = softmax(q kᵀ + bias + mask) with q already scaled; columns >= T are left as 0.
static void attn_probs(float *S, const float *q, const float *kT, const float *bh, const int *reg, int T, int TP,
                       int hd) {
    for (int i = 0; i < T; i++) {
        float *s = S + (size_t)i * TP;
        for (int j = 0; j < TP; j++) s[j] = 0.0f;
        for (int d = 0; d < hd; d++) {
            float qd = q[i * hd + d];
            const float *kr = kT + (size_t)d * TP;
            for (int j = 0; j < TP; j++) s[j] += qd * kr[j];
        }
        const float *br = bh + (size_t)i * T;
        if (reg) {
            int ri = reg[i];
            for (int j = 0; j < T; j++) s[j] += br[j] + (reg[j] != ri ? -100.0f : 0.0f);
        } else {
            for (int j = 0; j < T; j++) s[j] += br[j];
        }
        float mx = s[0];
        for (int j = 1; j < T; j++) mx = s[j] > mx ? s[j] : mx;
        float inv = 1.0f / exp_shift_sum(s, T, mx);
        for (int j = 0; j < T; j++) s[j] *= inv;
        for (int j = T; j < TP; j++) s[j] = 0.0f;
    }
}

// ---- fast path: head_dim 32, T <= 64 (the paper's 7x7 windows) ----------------------------------
// Same math as the tile code below, arranged so that each output row's accumulators stay in
// vector registers: a score row (64 floats) while summing over d, an output row (32 floats)
// while summing over j. Compile-time sizes let the compiler unroll and keep them there.
#define FA_TP 64
#define FA_HD 32

// Scores of query row qi (scaled) against kT (FA_HD, FA_TP), plus bias/mask, softmax in place.
// s (FA_TP) holds the scores of row i; adds bias and mask, softmax in place, zeros past T.
static inline void fa_softmax_row(float *restrict s, const float *restrict br, const int *reg, int i, int T) {
    if (reg) {
        int ri = reg[i];
        for (int j = 0; j < T; j++) s[j] += br[j] + (reg[j] != ri ? -100.0f : 0.0f);
    } else {
        for (int j = 0; j < T; j++) s[j] += br[j];
    }
    float mx = s[0];
    for (int j = 1; j < T; j++) mx = s[j] > mx ? s[j] : mx;
    float inv = 1.0f / exp_shift_sum(s, T, mx);
    for (int j = 0; j < T; j++) s[j] *= inv;
    for (int j = T; j < FA_TP; j++) s[j] = 0.0f;
}

static inline void fa_prob_row(float *restrict s, const float *restrict qi, const float *restrict kT,
                               const float *restrict br, const int *reg, int i, int T) {
    float acc[FA_TP];
    for (int j = 0; j < FA_TP; j++) acc[j] = 0.0f;
    for (int d = 0; d < FA_HD; d++) {
        float qd = qi[d];
        const float *kr = kT + d * FA_TP;
        for (int j = 0; j < FA_TP; j++) acc[j] += qd * kr[j];
    }
    fa_softmax_row(acc, br, reg, i, T);
    memcpy(s, acc, sizeof acc);
}

static void fa_forward(float *out, const float *qkv, const float *bias, const int *region, int nwin, int nW, int T,
                       int C, int heads) {
    const float scale = 1.0f / sqrtf((float)FA_HD);
    const size_t C3 = 3 * (size_t)C;
#pragma omp parallel
    {
        const unsigned csr = denormals_off();  // see fastmath.h
        float q[FA_TP * FA_HD] __attribute__((aligned(64)));
        float v[FA_TP * FA_HD] __attribute__((aligned(64)));
        float kT[FA_HD * FA_TP] __attribute__((aligned(64)));
        float s[FA_TP] __attribute__((aligned(64)));
        memset(kT, 0, sizeof kT);
#pragma omp for schedule(static)
        for (long task = 0; task < (long)nwin * heads; task++) {
            int w = (int)(task / heads), h = (int)(task % heads);
            const float *base = qkv + (size_t)w * T * C3 + (size_t)h * FA_HD;
            for (int i = 0; i < T; i++) {
                const float *r = base + (size_t)i * C3;
                for (int d = 0; d < FA_HD; d++) {
                    q[i * FA_HD + d] = r[d] * scale;
                    kT[d * FA_TP + i] = r[C + d];
                    v[i * FA_HD + d] = r[2 * C + d];
                }
            }
            const float *bh = bias + (size_t)h * T * T;
            const int *reg = region ? region + (size_t)(w % nW) * T : NULL;
            for (int i = 0; i < T; i++) {
                fa_prob_row(s, q + i * FA_HD, kT, bh + (size_t)i * T, reg, i, T);
                float o[FA_HD];
                for (int d = 0; d < FA_HD; d++) o[d] = 0.0f;
                for (int j = 0; j < T; j++) {
                    float pj = s[j];
                    const float *vr = v + j * FA_HD;
                    for (int d = 0; d < FA_HD; d++) o[d] += pj * vr[d];
                }
                float *dst = out + ((size_t)w * T + i) * C + (size_t)h * FA_HD;
                for (int d = 0; d < FA_HD; d++) dst[d] = o[d];
            }
        }
        denormals_restore(csr);
    }
}

static void fa_backward(float *dqkv, float *parts, int *nt_used, const float *dout, const float *qkv,
                        const float *bias, const int *region, int nwin, int nW, int T, int C, int heads) {
    const float scale = 1.0f / sqrtf((float)FA_HD);
    const size_t C3 = 3 * (size_t)C, TT = (size_t)T * T;
#pragma omp parallel
    {
        const unsigned csr = denormals_off();  // see fastmath.h
#pragma omp single
        *nt_used = omp_get_num_threads();
        float *part = parts + (size_t)omp_get_thread_num() * heads * TT;
        float q[FA_TP * FA_HD] __attribute__((aligned(64)));
        float k[FA_TP * FA_HD] __attribute__((aligned(64)));
        float dO[FA_TP * FA_HD] __attribute__((aligned(64)));
        float kT[FA_HD * FA_TP] __attribute__((aligned(64)));
        float vT[FA_HD * FA_TP] __attribute__((aligned(64)));
        float P[FA_TP * FA_TP] __attribute__((aligned(64)));
        float dS[FA_TP * FA_TP] __attribute__((aligned(64)));
        memset(kT, 0, sizeof kT);
        memset(vT, 0, sizeof vT);
#pragma omp for schedule(static)
        for (long task = 0; task < (long)nwin * heads; task++) {
            int w = (int)(task / heads), h = (int)(task % heads);
            const float *base = qkv + (size_t)w * T * C3 + (size_t)h * FA_HD;
            for (int i = 0; i < T; i++) {
                const float *r = base + (size_t)i * C3;
                const float *g = dout + ((size_t)w * T + i) * C + (size_t)h * FA_HD;
                for (int d = 0; d < FA_HD; d++) {
                    q[i * FA_HD + d] = r[d] * scale;
                    k[i * FA_HD + d] = r[C + d];
                    kT[d * FA_TP + i] = r[C + d];
                    vT[d * FA_TP + i] = r[2 * C + d];
                    dO[i * FA_HD + d] = g[d];
                }
            }
            const float *bh = bias + (size_t)h * T * T;
            const int *reg = region ? region + (size_t)(w % nW) * T : NULL;
            float *pb = part + (size_t)h * TT;
            float *dbase = dqkv + (size_t)w * T * C3 + (size_t)h * FA_HD;
            // Rows: P, dP = dO vᵀ, dS = P (dP - rowsum(P dP)), dq = scale * dS k.
            for (int i = 0; i < T; i++) {
                float *p = P + i * FA_TP, *ds = dS + i * FA_TP;
                fa_prob_row(p, q + i * FA_HD, kT, bh + (size_t)i * T, reg, i, T);
                float dp[FA_TP];
                for (int j = 0; j < FA_TP; j++) dp[j] = 0.0f;
                const float *go = dO + i * FA_HD;
                for (int d = 0; d < FA_HD; d++) {
                    float gd = go[d];
                    const float *vr = vT + d * FA_TP;
                    for (int j = 0; j < FA_TP; j++) dp[j] += gd * vr[j];
                }
                float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
                for (int j = 0; j < FA_TP; j++) dot += p[j] * dp[j];  // p is 0 beyond T
                for (int j = 0; j < FA_TP; j++) ds[j] = p[j] * (dp[j] - dot);
                for (int j = 0; j < T; j++) pb[(size_t)i * T + j] += ds[j];
                float dq[FA_HD];
                for (int d = 0; d < FA_HD; d++) dq[d] = 0.0f;
                for (int j = 0; j < T; j++) {
                    float sj = ds[j];
                    const float *kj = k + j * FA_HD;
                    for (int d = 0; d < FA_HD; d++) dq[d] += sj * kj[d];
                }
                float *r = dbase + (size_t)i * C3;
                for (int d = 0; d < FA_HD; d++) r[d] += scale * dq[d];
            }
            // Columns: dk = dSᵀ q_s, dv = Pᵀ dO.
            for (int j = 0; j < T; j++) {
                float dk[FA_HD], dv[FA_HD];
                for (int d = 0; d < FA_HD; d++) dk[d] = dv[d] = 0.0f;
                for (int i = 0; i < T; i++) {
                    float sij = dS[i * FA_TP + j], pij = P[i * FA_TP + j];
                    const float *qi = q + i * FA_HD, *gi = dO + i * FA_HD;
                    for (int d = 0; d < FA_HD; d++) {
                        dk[d] += sij * qi[d];
                        dv[d] += pij * gi[d];
                    }
                }
                float *r = dbase + (size_t)j * C3;
                for (int d = 0; d < FA_HD; d++) {
                    r[C + d] += dk[d];
                    r[2 * C + d] += dv[d];
                }
            }
        }
        denormals_restore(csr);
    }
}

// ---- AVX-512 path: the fast path as register-blocked micro-kernels --------------------------------
// Where the CPU has AVX-512F (checked at run time), the fp32 fast path runs here instead of the
// loops above: GCC tunes -march=native for Intel to 256-bit vectors and, in ISO C mode, never
// contracts a*b+c into an FMA, so those loops ran at about a quarter of the FMA rate (9 GFLOP/s on
// 2 cores, a third of the training step). Each block of ZR query rows keeps its scores (ZR x 64)
// in 16 zmm registers while summing over d and through the softmax, and every product is an FMA
// chain over the same index order as above: results differ from the loops only by the fused
// roundings and the order of the softmax and rowsum(P dP) reductions.
#if defined(__x86_64__) && defined(__GNUC__)
enum { ZR = 4 };  // query rows (or key columns) per register block

static int g_zm_allow = 1;  // nn_attention_allow_avx512(0) tests the portable loops on this CPU
void nn_attention_allow_avx512(int on) { g_zm_allow = on != 0; }
static int use_zm(void) { return g_zm_allow && __builtin_cpu_supports("avx512f"); }

// The task's tiles: q (scaled) and the row-major copies as 64 x 32, kᵀ and vᵀ as 32 x 64. Rows and
// columns past T are never written (zero from the thread's first memset).
AVX512_TARGET static void zm_load(float *restrict q, float *restrict k, float *restrict kT, float *restrict v,
                                  float *restrict vT, float *restrict dO, const float *base, const float *go, size_t C3,
                                  int C, int T, float scale) {
    const __m512 s = _mm512_set1_ps(scale);
    for (int i = 0; i < T; i++) {
        const float *r = base + (size_t)i * C3;
        _mm512_store_ps(q + i * FA_HD, _mm512_mul_ps(s, _mm512_loadu_ps(r)));
        _mm512_store_ps(q + i * FA_HD + 16, _mm512_mul_ps(s, _mm512_loadu_ps(r + 16)));
        if (k) {
            _mm512_store_ps(k + i * FA_HD, _mm512_loadu_ps(r + C));
            _mm512_store_ps(k + i * FA_HD + 16, _mm512_loadu_ps(r + C + 16));
        }
        if (v) {
            _mm512_store_ps(v + i * FA_HD, _mm512_loadu_ps(r + 2 * C));
            _mm512_store_ps(v + i * FA_HD + 16, _mm512_loadu_ps(r + 2 * C + 16));
        }
        if (dO) {
            const float *g = go + (size_t)i * C;
            _mm512_store_ps(dO + i * FA_HD, _mm512_loadu_ps(g));
            _mm512_store_ps(dO + i * FA_HD + 16, _mm512_loadu_ps(g + 16));
        }
        for (int d = 0; d < FA_HD; d++) kT[d * FA_TP + i] = r[C + d];
        if (vT)
            for (int d = 0; d < FA_HD; d++) vT[d * FA_TP + i] = r[2 * C + d];
    }
}

// a[r] (ZR rows x 64 columns) = A rows i0.. (ld FA_HD) times Bt (FA_HD x FA_TP): q kᵀ or dO vᵀ.
#define ZM_ROWS_X_T(a, A, Bt, i0)                                                        \
    do {                                                                                 \
        for (int r_ = 0; r_ < ZR; r_++)                                                  \
            for (int c_ = 0; c_ < 4; c_++) a[r_][c_] = _mm512_setzero_ps();              \
        for (int d_ = 0; d_ < FA_HD; d_++) {                                             \
            const __m512 b0_ = _mm512_load_ps(Bt + d_ * FA_TP);                          \
            const __m512 b1_ = _mm512_load_ps(Bt + d_ * FA_TP + 16);                     \
            const __m512 b2_ = _mm512_load_ps(Bt + d_ * FA_TP + 32);                     \
            const __m512 b3_ = _mm512_load_ps(Bt + d_ * FA_TP + 48);                     \
            for (int r_ = 0; r_ < ZR; r_++) {                                            \
                const __m512 x_ = _mm512_set1_ps(A[((i0) + r_) * FA_HD + d_]);           \
                a[r_][0] = _mm512_fmadd_ps(x_, b0_, a[r_][0]);                           \
                a[r_][1] = _mm512_fmadd_ps(x_, b1_, a[r_][1]);                           \
                a[r_][2] = _mm512_fmadd_ps(x_, b2_, a[r_][2]);                           \
                a[r_][3] = _mm512_fmadd_ps(x_, b3_, a[r_][3]);                           \
            }                                                                            \
        }                                                                                \
    } while (0)

// o[r] (ZR rows x FA_HD) = S rows (ld FA_TP, ZR of them from Sb) times X (rows j < T, ld FA_HD):
// P v, dS k.
#define ZM_ROWS_X_HD(o, Sb, X, T)                                                        \
    do {                                                                                 \
        for (int r_ = 0; r_ < ZR; r_++) o[r_][0] = o[r_][1] = _mm512_setzero_ps();      \
        for (int j_ = 0; j_ < (T); j_++) {                                               \
            const __m512 x0_ = _mm512_load_ps(X + j_ * FA_HD);                           \
            const __m512 x1_ = _mm512_load_ps(X + j_ * FA_HD + 16);                      \
            for (int r_ = 0; r_ < ZR; r_++) {                                            \
                const __m512 s_ = _mm512_set1_ps(Sb[r_ * FA_TP + j_]);                   \
                o[r_][0] = _mm512_fmadd_ps(s_, x0_, o[r_][0]);                           \
                o[r_][1] = _mm512_fmadd_ps(s_, x1_, o[r_][1]);                           \
            }                                                                            \
        }                                                                                \
    } while (0)

// P rows i0..i0+ZR-1 (ld FA_TP) = softmax(q kᵀ + bias + mask), columns >= T and rows >= T zero.
AVX512_TARGET static inline void zm_probs(float *restrict Pb, const float *restrict q, const float *restrict kT,
                                          const float *bh, const int *reg, const __m512i *regv, int i0, int T) {
    __m512 a[ZR][4];
    ZM_ROWS_X_T(a, q, kT, i0);
    const __mmask16 vm[4] = {tail_mask(T), tail_mask(T - 16), tail_mask(T - 32), tail_mask(T - 48)};
    for (int r = 0; r < ZR; r++) {
        const int i = i0 + r;
        float *p = Pb + r * FA_TP;
        if (i >= T) {
            for (int c = 0; c < 4; c++) _mm512_store_ps(p + 16 * c, _mm512_setzero_ps());
            continue;
        }
        const float *br = bh + (size_t)i * T;
        __m512 mx = _mm512_set1_ps(-INFINITY);
        for (int c = 0; c < 4; c++) {
            __m512 b = _mm512_maskz_loadu_ps(vm[c], br + 16 * c);
            if (reg) {
                const __mmask16 off = _mm512_mask_cmpneq_epi32_mask(vm[c], regv[c], _mm512_set1_epi32(reg[i]));
                b = _mm512_add_ps(b, _mm512_maskz_mov_ps(off, _mm512_set1_ps(-100.0f)));
            }
            a[r][c] = _mm512_add_ps(a[r][c], b);
            mx = _mm512_mask_max_ps(mx, vm[c], mx, a[r][c]);
        }
        const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
        __m512 sum = _mm512_setzero_ps();
        for (int c = 0; c < 4; c++) {
            a[r][c] = _mm512_maskz_mov_ps(vm[c], exp_neg16(_mm512_sub_ps(a[r][c], m)));
            sum = _mm512_add_ps(sum, a[r][c]);
        }
        const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
        for (int c = 0; c < 4; c++) _mm512_store_ps(p + 16 * c, _mm512_mul_ps(a[r][c], inv));
    }
}

AVX512_TARGET static inline void zm_region(__m512i regv[4], const int *reg, int T) {
    for (int c = 0; c < 4; c++) regv[c] = reg ? _mm512_maskz_loadu_epi32(tail_mask(T - 16 * c), reg + 16 * c) : _mm512_setzero_si512();
}

AVX512_TARGET static void zm_forward(float *out, const float *qkv, const float *bias, const int *region, int nwin,
                                     int nW, int T, int C, int heads) {
    const float scale = 1.0f / sqrtf((float)FA_HD);
    const size_t C3 = 3 * (size_t)C;
#pragma omp parallel
    {
        const unsigned csr = denormals_off();  // see fastmath.h
        float q[FA_TP * FA_HD] __attribute__((aligned(64)));
        float v[FA_TP * FA_HD] __attribute__((aligned(64)));
        float kT[FA_HD * FA_TP] __attribute__((aligned(64)));
        float P[ZR * FA_TP] __attribute__((aligned(64)));
        memset(q, 0, sizeof q);
        memset(kT, 0, sizeof kT);
#pragma omp for schedule(static)
        for (long task = 0; task < (long)nwin * heads; task++) {
            int w = (int)(task / heads), h = (int)(task % heads);
            const float *base = qkv + (size_t)w * T * C3 + (size_t)h * FA_HD;
            zm_load(q, NULL, kT, v, NULL, NULL, base, NULL, C3, C, T, scale);
            const float *bh = bias + (size_t)h * T * T;
            const int *reg = region ? region + (size_t)(w % nW) * T : NULL;
            __m512i regv[4];
            zm_region(regv, reg, T);
            for (int i0 = 0; i0 < T; i0 += ZR) {
                zm_probs(P, q, kT, bh, reg, regv, i0, T);
                __m512 o[ZR][2];
                ZM_ROWS_X_HD(o, P, v, T);
                for (int r = 0; r < ZR && i0 + r < T; r++) {
                    float *dst = out + ((size_t)w * T + i0 + r) * C + (size_t)h * FA_HD;
                    _mm512_storeu_ps(dst, o[r][0]);
                    _mm512_storeu_ps(dst + 16, o[r][1]);
                }
            }
        }
        denormals_restore(csr);
    }
}

AVX512_TARGET static void zm_backward(float *dqkv, float *parts, int *nt_used, const float *dout, const float *qkv,
                                      const float *bias, const int *region, int nwin, int nW, int T, int C, int heads) {
    const float scale = 1.0f / sqrtf((float)FA_HD);
    const size_t C3 = 3 * (size_t)C, TT = (size_t)T * T;
    const __mmask16 vm[4] = {tail_mask(T), tail_mask(T - 16), tail_mask(T - 32), tail_mask(T - 48)};
#pragma omp parallel
    {
        const unsigned csr = denormals_off();  // see fastmath.h
#pragma omp single
        *nt_used = omp_get_num_threads();
        float *part = parts + (size_t)omp_get_thread_num() * heads * TT;
        float q[FA_TP * FA_HD] __attribute__((aligned(64)));
        float k[FA_TP * FA_HD] __attribute__((aligned(64)));
        float dO[FA_TP * FA_HD] __attribute__((aligned(64)));
        float kT[FA_HD * FA_TP] __attribute__((aligned(64)));
        float vT[FA_HD * FA_TP] __attribute__((aligned(64)));
        float P[FA_TP * FA_TP] __attribute__((aligned(64)));
        float dS[FA_TP * FA_TP] __attribute__((aligned(64)));
        memset(q, 0, sizeof q);
        memset(dO, 0, sizeof dO);
        memset(kT, 0, sizeof kT);
        memset(vT, 0, sizeof vT);
#pragma omp for schedule(static)
        for (long task = 0; task < (long)nwin * heads; task++) {
            int w = (int)(task / heads), h = (int)(task % heads);
            const float *base = qkv + (size_t)w * T * C3 + (size_t)h * FA_HD;
            zm_load(q, k, kT, NULL, vT, dO, base, dout + (size_t)w * T * C + (size_t)h * FA_HD, C3, C, T, scale);
            const float *bh = bias + (size_t)h * T * T;
            const int *reg = region ? region + (size_t)(w % nW) * T : NULL;
            __m512i regv[4];
            zm_region(regv, reg, T);
            float *pb = part + (size_t)h * TT;
            float *dbase = dqkv + (size_t)w * T * C3 + (size_t)h * FA_HD;
            // Rows: P, dP = dO vᵀ, dS = P (dP - rowsum(P dP)), dq = scale * dS k.
            for (int i0 = 0; i0 < T; i0 += ZR) {
                float *Pb = P + i0 * FA_TP, *dSb = dS + i0 * FA_TP;
                zm_probs(Pb, q, kT, bh, reg, regv, i0, T);
                __m512 a[ZR][4];
                ZM_ROWS_X_T(a, dO, vT, i0);
                for (int r = 0; r < ZR; r++) {
                    const float *p = Pb + r * FA_TP;
                    float *ds = dSb + r * FA_TP;
                    __m512 pc[4];
                    for (int c = 0; c < 4; c++) pc[c] = _mm512_load_ps(p + 16 * c);
                    const __m512 dot = _mm512_set1_ps(_mm512_reduce_add_ps(
                        _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(pc[0], a[r][0]), _mm512_mul_ps(pc[1], a[r][1])),
                                      _mm512_add_ps(_mm512_mul_ps(pc[2], a[r][2]), _mm512_mul_ps(pc[3], a[r][3])))));
                    for (int c = 0; c < 4; c++) {
                        const __m512 d = _mm512_mul_ps(pc[c], _mm512_sub_ps(a[r][c], dot));
                        _mm512_store_ps(ds + 16 * c, d);
                        if (i0 + r < T) {
                            float *pr = pb + (size_t)(i0 + r) * T + 16 * c;
                            _mm512_mask_storeu_ps(pr, vm[c], _mm512_add_ps(_mm512_maskz_loadu_ps(vm[c], pr), d));
                        }
                    }
                }
                __m512 o[ZR][2];
                ZM_ROWS_X_HD(o, dSb, k, T);
                const __m512 s = _mm512_set1_ps(scale);
                for (int r = 0; r < ZR && i0 + r < T; r++) {
                    float *dst = dbase + (size_t)(i0 + r) * C3;
                    _mm512_storeu_ps(dst, _mm512_add_ps(_mm512_loadu_ps(dst), _mm512_mul_ps(s, o[r][0])));
                    _mm512_storeu_ps(dst + 16, _mm512_add_ps(_mm512_loadu_ps(dst + 16), _mm512_mul_ps(s, o[r][1])));
                }
            }
            // Columns: dk = dSᵀ q_s, dv = Pᵀ dO, ZR columns j at a time.
            for (int j0 = 0; j0 < T; j0 += ZR) {
                __m512 dk[ZR][2], dv[ZR][2];
                for (int r = 0; r < ZR; r++) dk[r][0] = dk[r][1] = dv[r][0] = dv[r][1] = _mm512_setzero_ps();
                for (int i = 0; i < T; i++) {
                    const __m512 q0 = _mm512_load_ps(q + i * FA_HD), q1 = _mm512_load_ps(q + i * FA_HD + 16);
                    const __m512 g0 = _mm512_load_ps(dO + i * FA_HD), g1 = _mm512_load_ps(dO + i * FA_HD + 16);
                    const float *sr = dS + i * FA_TP + j0, *pr = P + i * FA_TP + j0;
                    for (int r = 0; r < ZR; r++) {
                        const __m512 sv = _mm512_set1_ps(sr[r]), pv = _mm512_set1_ps(pr[r]);
                        dk[r][0] = _mm512_fmadd_ps(sv, q0, dk[r][0]);
                        dk[r][1] = _mm512_fmadd_ps(sv, q1, dk[r][1]);
                        dv[r][0] = _mm512_fmadd_ps(pv, g0, dv[r][0]);
                        dv[r][1] = _mm512_fmadd_ps(pv, g1, dv[r][1]);
                    }
                }
                for (int r = 0; r < ZR && j0 + r < T; r++) {
                    float *dst = dbase + (size_t)(j0 + r) * C3;
                    for (int e = 0; e < FA_HD; e += 16) {
                        _mm512_storeu_ps(dst + C + e, _mm512_add_ps(_mm512_loadu_ps(dst + C + e), dk[r][e / 16]));
                        _mm512_storeu_ps(dst + 2 * C + e, _mm512_add_ps(_mm512_loadu_ps(dst + 2 * C + e), dv[r][e / 16]));
                    }
                }
            }
        }
        denormals_restore(csr);
    }
}
#else
void nn_attention_allow_avx512(int on) { (void)on; }
static int use_zm(void) { return 0; }
static void zm_forward(float *out, const float *qkv, const float *bias, const int *region, int nwin, int nW, int T,
                       int C, int heads) {
    fa_forward(out, qkv, bias, region, nwin, nW, T, C, heads);
}
static void zm_backward(float *dqkv, float *parts, int *nt_used, const float *dout, const float *qkv,
                        const float *bias, const int *region, int nwin, int nW, int T, int C, int heads) {
    fa_backward(dqkv, parts, nt_used, dout, qkv, bias, region, nwin, nW, T, C, heads);
}
#endif

// ---- long windows: T > FA_TP (the ViT's global attention over every token) ------------------------
// Each (window, head) task's products are single-threaded sgemm calls straight on the strided q,
// k, v columns of qkv (ld 3C) and on the (T, T) scores; the row softmax is the fast path's. At
// T in the hundreds the products dominate and the tile loops below would run them far from the
// machine's sgemm rate.
// With bf16 on AMX the products run on the tiles (bf16 operands, fp32 accumulation; gemm_thread),
// as the linear layers do: in fp32 sgemm they took about a quarter of the ViT-B/16 bf16 step.
// Scores, softmax, dS and the bias gradient stay fp32.
static void long_forward(float *out, const float *qkv, const float *bias, const int *region, int nwin, int nW, int T,
                         int C, int heads) {
    const int hd = C / heads, C3 = 3 * C, bf = gemm_thread_bf16();
    const float scale = 1.0f / sqrtf((float)hd);
    nn_blas_single_threaded();
#pragma omp parallel
    {
        float *S = as_malloc(sizeof(float) * (size_t)T * T);
#pragma omp for schedule(static)
        for (long task = 0; task < (long)nwin * heads; task++) {
            int w = (int)(task / heads), h = (int)(task % heads);
            const float *q = qkv + (size_t)w * T * C3 + (size_t)h * hd, *k = q + C, *v = q + 2 * C;
            const float *bh = bias + (size_t)h * T * T;
            const int *reg = region ? region + (size_t)(w % nW) * T : NULL;
            gemm_thread(bf, 0, 1, T, T, hd, scale, q, C3, k, C3, 0.0f, S, T);
            for (int i = 0; i < T; i++) fa_softmax_row(S + (size_t)i * T, bh + (size_t)i * T, reg, i, T);
            gemm_thread(bf, 0, 0, T, hd, T, 1.0f, S, T, v, C3, 0.0f, out + (size_t)w * T * C + (size_t)h * hd, C);
        }
        free(S);
    }
}

static void long_backward(float *dqkv, float *parts, int *nt_used, const float *dout, const float *qkv,
                          const float *bias, const int *region, int nwin, int nW, int T, int C, int heads) {
    const int hd = C / heads, C3 = 3 * C, bf = gemm_thread_bf16();
    const float scale = 1.0f / sqrtf((float)hd);
    const size_t TT = (size_t)T * T;
    nn_blas_single_threaded();
#pragma omp parallel
    {
#pragma omp single
        *nt_used = omp_get_num_threads();
        float *part = parts + (size_t)omp_get_thread_num() * heads * TT;
        float *P = as_malloc(sizeof(float) * 2 * TT), *dP = P + TT;
#pragma omp for schedule(static)
        for (long task = 0; task < (long)nwin * heads; task++) {
            int w = (int)(task / heads), h = (int)(task % heads);
            const size_t off = (size_t)w * T * C3 + (size_t)h * hd;
            const float *q = qkv + off, *k = q + C, *v = q + 2 * C, *dO = dout + (size_t)w * T * C + (size_t)h * hd;
            float *dq = dqkv + off, *dk = dq + C, *dv = dq + 2 * C, *pb = part + (size_t)h * TT;
            const float *bh = bias + (size_t)h * TT;
            const int *reg = region ? region + (size_t)(w % nW) * T : NULL;
            gemm_thread(bf, 0, 1, T, T, hd, scale, q, C3, k, C3, 0.0f, P, T);
            for (int i = 0; i < T; i++) fa_softmax_row(P + (size_t)i * T, bh + (size_t)i * T, reg, i, T);
            gemm_thread(bf, 0, 1, T, T, hd, 1.0f, dO, C, v, C3, 0.0f, dP, T);
            gemm_thread(bf, 1, 0, T, hd, T, 1.0f, P, T, dO, C, 1.0f, dv, C3);
            for (int i = 0; i < T; i++) {  // dP becomes dS = P (dP - rowsum(P dP))
                const float *p = P + (size_t)i * T;
                float *ds = dP + (size_t)i * T, *pbi = pb + (size_t)i * T, dot = 0.0f;
                for (int j = 0; j < T; j++) dot += p[j] * ds[j];
                for (int j = 0; j < T; j++) {
                    ds[j] = p[j] * (ds[j] - dot);
                    pbi[j] += ds[j];
                }
            }
            gemm_thread(bf, 0, 0, T, hd, T, scale, dP, T, k, C3, 1.0f, dq, C3);
            gemm_thread(bf, 1, 0, T, hd, T, scale, dP, T, q, C3, 1.0f, dk, C3);
        }
        free(P);
    }
}

// ---- general path -------------------------------------------------------------------------------
void window_attention_forward(float *out, const float *qkv, const float *bias, const int *region, int nwin,
                              int nW, int T, int C, int heads) {
    const int hd = C / heads, TP = (T + 15) & ~15;
    if (hd == FA_HD && T <= FA_TP) {
        if (use_zm())
            zm_forward(out, qkv, bias, region, nwin, nW, T, C, heads);
        else
            fa_forward(out, qkv, bias, region, nwin, nW, T, C, heads);
        return;
    }
    if (T > FA_TP) {
        long_forward(out, qkv, bias, region, nwin, nW, T, C, heads);
        return;
    }
    const float scale = 1.0f / sqrtf((float)hd);
    const size_t C3 = 3 * (size_t)C;
#pragma omp parallel
    {
        const unsigned csr = denormals_off();  // see fastmath.h
        float *q = as_malloc(sizeof(float) * ((size_t)T * hd * 2 + (size_t)hd * TP + (size_t)T * TP));
        float *v = q + (size_t)T * hd, *kT = v + (size_t)T * hd, *S = kT + (size_t)hd * TP;
        memset(kT, 0, sizeof(float) * (size_t)hd * TP);
#pragma omp for schedule(static)
        for (long task = 0; task < (long)nwin * heads; task++) {
            int w = (int)(task / heads), h = (int)(task % heads);
            const float *base = qkv + (size_t)w * T * C3 + (size_t)h * hd;
            for (int i = 0; i < T; i++) {
                const float *r = base + (size_t)i * C3;
                for (int d = 0; d < hd; d++) {
                    q[i * hd + d] = r[d] * scale;
                    kT[(size_t)d * TP + i] = r[C + d];
                    v[i * hd + d] = r[2 * C + d];
                }
            }
            attn_probs(S, q, kT, bias + (size_t)h * T * T, region ? region + (size_t)(w % nW) * T : NULL, T, TP, hd);
            for (int i = 0; i < T; i++) {
                float *o = out + ((size_t)w * T + i) * C + (size_t)h * hd;
                const float *s = S + (size_t)i * TP;
                for (int d = 0; d < hd; d++) o[d] = 0.0f;
                for (int j = 0; j < T; j++) {
                    float p = s[j];
                    const float *vr = v + (size_t)j * hd;
                    for (int d = 0; d < hd; d++) o[d] += p * vr[d];
                }
            }
        }
        free(q);
        denormals_restore(csr);
    }
}

void window_attention_backward(float *dqkv, float *dbias, const float *dout, const float *qkv, const float *bias,
                               const int *region, int nwin, int nW, int T, int C, int heads) {
    // With P = softmax(S), O = P v, S = q_s kᵀ + bias (q_s = q * scale):
    //   dP = dO vᵀ, dv = Pᵀ dO, dS = P ∘ (dP - rowsum(dP ∘ P)),
    //   dbias += dS, dq = scale * dS k, dk = dSᵀ q_s.
    const int hd = C / heads, TP = (T + 15) & ~15;
    const float scale = 1.0f / sqrtf((float)hd);
    const size_t C3 = 3 * (size_t)C, TT = (size_t)T * T;
    int nt_max = omp_get_max_threads();
    float *parts = as_calloc((size_t)nt_max * heads * TT, sizeof(float));
    int nt_used = 1;
    if (hd == FA_HD && T <= FA_TP) {
        if (use_zm())
            zm_backward(dqkv, parts, &nt_used, dout, qkv, bias, region, nwin, nW, T, C, heads);
        else
            fa_backward(dqkv, parts, &nt_used, dout, qkv, bias, region, nwin, nW, T, C, heads);
        goto reduce;
    }
    if (T > FA_TP) {
        long_backward(dqkv, parts, &nt_used, dout, qkv, bias, region, nwin, nW, T, C, heads);
        goto reduce;
    }
#pragma omp parallel
    {
        const unsigned csr = denormals_off();  // see fastmath.h
        int t = omp_get_thread_num();
#pragma omp single
        nt_used = omp_get_num_threads();
        float *part = parts + (size_t)t * heads * TT;
        size_t tile = (size_t)T * hd;
        float *q = as_malloc(sizeof(float) * (tile * 6 + 2 * (size_t)hd * TP + 2 * (size_t)T * TP));
        float *k = q + tile, *dO = k + tile, *dq = dO + tile, *dk = dq + tile, *dv = dk + tile;
        float *kT = dv + tile, *vT = kT + (size_t)hd * TP, *P = vT + (size_t)hd * TP, *dP = P + (size_t)T * TP;
        memset(kT, 0, sizeof(float) * 2 * (size_t)hd * TP);
#pragma omp for schedule(static)
        for (long task = 0; task < (long)nwin * heads; task++) {
            int w = (int)(task / heads), h = (int)(task % heads);
            const float *base = qkv + (size_t)w * T * C3 + (size_t)h * hd;
            for (int i = 0; i < T; i++) {
                const float *r = base + (size_t)i * C3;
                const float *g = dout + ((size_t)w * T + i) * C + (size_t)h * hd;
                for (int d = 0; d < hd; d++) {
                    q[i * hd + d] = r[d] * scale;
                    k[i * hd + d] = r[C + d];
                    kT[(size_t)d * TP + i] = r[C + d];
                    vT[(size_t)d * TP + i] = r[2 * C + d];
                    dO[i * hd + d] = g[d];
                }
            }
            attn_probs(P, q, kT, bias + (size_t)h * T * T, region ? region + (size_t)(w % nW) * T : NULL, T, TP, hd);
            memset(dq, 0, sizeof(float) * tile * 3);  // dq, dk, dv
            float *pb = part + (size_t)h * TT;
            for (int i = 0; i < T; i++) {
                float *dp = dP + (size_t)i * TP;
                const float *p = P + (size_t)i * TP;
                const float *go = dO + (size_t)i * hd;
                for (int j = 0; j < TP; j++) dp[j] = 0.0f;
                for (int d = 0; d < hd; d++) {
                    float gd = go[d];
                    const float *vr = vT + (size_t)d * TP;
                    for (int j = 0; j < TP; j++) dp[j] += gd * vr[j];
                }
                float dot = 0.0f;
                for (int j = 0; j < T; j++) dot += p[j] * dp[j];
                for (int j = 0; j < T; j++) dp[j] = p[j] * (dp[j] - dot);  // now dS
                for (int j = 0; j < T; j++) pb[(size_t)i * T + j] += dp[j];
                float *dqi = dq + (size_t)i * hd;
                const float *qi = q + (size_t)i * hd;
                for (int j = 0; j < T; j++) {
                    float ds = dp[j], pj = p[j];
                    const float *kj = k + (size_t)j * hd;
                    float *dkj = dk + (size_t)j * hd, *dvj = dv + (size_t)j * hd;
                    for (int d = 0; d < hd; d++) {
                        dqi[d] += ds * kj[d];
                        dkj[d] += ds * qi[d];
                        dvj[d] += pj * go[d];
                    }
                }
            }
            float *dbase = dqkv + (size_t)w * T * C3 + (size_t)h * hd;
            for (int i = 0; i < T; i++) {
                float *r = dbase + (size_t)i * C3;
                for (int d = 0; d < hd; d++) {
                    r[d] += scale * dq[i * hd + d];
                    r[C + d] += dk[i * hd + d];
                    r[2 * C + d] += dv[i * hd + d];
                }
            }
        }
        free(q);
        denormals_restore(csr);
    }
reduce:
    // Partial sums added in thread order: reproducible for a given thread count.
    for (int t = 0; t < nt_used; t++) {
        const float *part = parts + (size_t)t * heads * TT;
        for (size_t k = 0; k < heads * TT; k++) dbias[k] += part[k];
    }
    free(parts);
}

// ---- full attention over a feature map ------------------------------------------------------------
// Every token of an image attends to every other (T = H*W up to thousands), so the score matrix
// is a GEMM product rather than the window path's register tiles: per (image, head),
// S = scale q kᵀ (T, T) in the scratch, row softmax, out = S v.

static void softmax_rows(float *S, int T) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < T; i++) {
        float *s = S + (size_t)i * T, mx = s[0];
        // A vector max: without the reduction clause GCC compiled a scalar chain of dependent compares.
#pragma omp simd reduction(max : mx)
        for (int j = 1; j < T; j++) mx = s[j] > mx ? s[j] : mx;
        const float inv = 1.0f / exp_shift_sum(s, T, mx);
        for (int j = 0; j < T; j++) s[j] *= inv;
    }
}

size_t full_attention_scratch_floats(int T) { return 2 * (size_t)T * T; }

void full_attention_forward(float *out, float *scratch, float *probs, const float *qkv, int B, int T, int C,
                            int heads) {
    const int hd = C / heads, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < heads; h++) {
            const float *q = qkv + (size_t)b * T * C3 + (size_t)h * hd, *k = q + C, *v = q + 2 * C;
            float *P = probs ? probs + ((size_t)b * heads + h) * T * T : scratch;
            gemm(0, 1, T, T, hd, scale, q, C3, k, C3, 0.0f, P, T);
            softmax_rows(P, T);
            gemm(0, 0, T, hd, T, 1.0f, P, T, v, C3, 0.0f, out + (size_t)b * T * C + (size_t)h * hd, C);
        }
}

void full_attention_backward(float *dqkv, float *scratch, const float *probs, const float *dout, const float *qkv,
                             int B, int T, int C, int heads) {
    // P = softmax(S) (kept or recomputed); dv = Pᵀ dO, dP = dO vᵀ, dS = P ∘ (dP - rowsum(P ∘ dP)),
    // dq = scale dS k, dk = scale dSᵀ q.
    const int hd = C / heads, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hd);
    float *dS = scratch + (size_t)T * T;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < heads; h++) {
            const size_t off = (size_t)b * T * C3 + (size_t)h * hd;
            const float *q = qkv + off, *k = q + C, *v = q + 2 * C;
            const float *go = dout + (size_t)b * T * C + (size_t)h * hd;
            float *dq = dqkv + off, *dk = dq + C, *dv = dq + 2 * C;
            const float *P = probs ? probs + ((size_t)b * heads + h) * T * T : scratch;
            if (!probs) {
                gemm(0, 1, T, T, hd, scale, q, C3, k, C3, 0.0f, scratch, T);
                softmax_rows(scratch, T);
            }
            gemm(1, 0, T, hd, T, 1.0f, P, T, go, C, 1.0f, dv, C3);
            gemm(0, 1, T, T, hd, 1.0f, go, C, v, C3, 0.0f, dS, T);
#pragma omp parallel for schedule(static)
            for (int i = 0; i < T; i++) {
                const float *p = P + (size_t)i * T;
                float *ds = dS + (size_t)i * T;
                double acc = 0.0;  // rowsum(P dP) is subtracted from each dP: keep its rounding small
#pragma omp simd reduction(+ : acc)
                for (int j = 0; j < T; j++) acc += (double)p[j] * ds[j];
                const float dot = (float)acc;
                for (int j = 0; j < T; j++) ds[j] = p[j] * (ds[j] - dot);
            }
            gemm(0, 0, T, hd, T, scale, dS, T, k, C3, 1.0f, dq, C3);
            gemm(1, 0, T, hd, T, scale, dS, T, q, C3, 1.0f, dk, C3);
        }
}

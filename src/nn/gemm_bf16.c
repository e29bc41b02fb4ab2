// bf16 GEMM with fp32 accumulation (AMX-BF16 tiles, else AVX512-BF16 vdpbf16ps) and the
// precision switch of the linear layers. Debian 12's OpenBLAS exports no sbgemm, so this is our
// own Goto-style kernel:
// each thread owns a block of C's rows (or columns), packs the KC x NC block of B and the
// MC x KC block of A it needs into private bf16 buffers, and runs an MR x NR register-tile
// microkernel over them. Every element of C is summed over K by one thread in a fixed order
// (KC blocks in sequence, pairs of k within a block), so results are reproducible, and except
// for long weight gradients on AMX (amx_ksplit) independent of the thread count too.
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
// Each thread's packing buffers live as long as the thread (OpenMP keeps its pool): a fresh
// malloc per call of these 0.5-4 MiB came back from mmap and was zeroed page by page on first
// touch, about 5% of a bf16 training step in page faults.
static _Thread_local void *g_pack[2];
static _Thread_local size_t g_pack_bytes[2];

// Buffer `which` (0: B's packing, 1: A's) of this thread, at least `bytes` long, cache-line
// aligned (a 64-byte tile row then loads one line, not two).
static void *pack_buffer(int which, size_t bytes) {
    if (bytes > g_pack_bytes[which]) {
        free(g_pack[which]);
        g_pack[which] = as_malloc(bytes + 64);
        g_pack_bytes[which] = bytes;
    }
    return (void *)(((uintptr_t)g_pack[which] + 63) & ~(uintptr_t)63);
}

#include "nn/amx.h"

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

// ---- AMX-BF16 ----------------------------------------------------------------------------------
// Where the CPU has AMX (Sapphire Rapids and later) one tdpbf16ps multiplies a 16x32 by a 32x16
// bf16 tile into 16x16 fp32: measured here 1.75 TFLOP/s on one core against 0.11 for fp32 FMA
// and 0.06 for vdpbf16ps, which this CPU runs at half the FMA's rate. The macro-kernel is
// the one above with 32 x 32 register tiles (4 accumulator tiles), K padded to 32.
#include <sys/syscall.h>
#include <unistd.h>

// AMX_KC: the convolutions' K = 9 * channels (576 .. 4608) fit in one to four blocks, split
// evenly (a 512 + 64 split paid a whole pass of C's stores for the last 64); a 64 x 1152 block of
// A and a 1152 x 512 block of B (1.3 MiB) stay in L2. Chosen on f-AnoGAN's conv shapes and the
// ViT's linear shapes (docs/baselines.md, f-AnoGAN Speed): 12-20% less time than 512 / 128 / 512.
enum { AMX_T = 32, AMX_KC = 1152, AMX_MC = 64, AMX_NC = 512 };
// Largest packed copy of a thread's whole A (bf16 elements), see amx_a_elems.
#define AMX_A_FULL_MAX ((size_t)8 << 20)

static int g_amx = -1;       // -1: not probed; 0: unusable; 1: ready
static int g_amx_allow = 1;  // nn_bf16_allow_amx(0) tests the vdpbf16ps kernel on an AMX CPU

// Linux hands out the 8 KiB tile state only on request (arch_prctl, kernel >= 5.16).
static int amx_ready(void) {
    if (g_amx < 0) {
        g_amx = 0;
        if (__builtin_cpu_supports("amx-tile") && __builtin_cpu_supports("amx-bf16") &&
            __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
            enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
            g_amx = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
        }
    }
    return g_amx && g_amx_allow;
}

void nn_bf16_allow_amx(int on) { g_amx_allow = on != 0; }

const char *nn_bf16_kernel(void) {
    return amx_ready() ? "amx-bf16" : nn_bf16_supported() ? "avx512-bf16" : "fp32 (no bf16 instructions)";
}

// r[i] lane j -> r[j] lane i for 16 x 16 32-bit words (unpacks, then 128-bit lane shuffles): the
// transposing packs below, which scattered one word at a time before.
AVX512_TARGET static inline void transpose16(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) {
            t[8 * i + j] = _mm512_shuffle_i32x4(r[8 * i + j], r[8 * i + j + 4], 0x88);
            t[8 * i + j + 4] = _mm512_shuffle_i32x4(r[8 * i + j], r[8 * i + j + 4], 0xdd);
        }
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_i32x4(t[j], t[j + 8], 0x88);
        r[j + 8] = _mm512_shuffle_i32x4(t[j], t[j + 8], 0xdd);
    }
}

// Ap[panel of 32 rows][row][kcp] bf16 for rows i0..i0+mc, k in k0..k0+kc; kcp = kc rounded up
// to 32; zero past mc and kc.
AVX512_TARGET static void amx_pack_a(uint16_t *Ap, const float *A, int lda, int trans, int i0, int mc, int k0, int kc,
                                     int kcp) {
    const int rows = (mc + AMX_T - 1) / AMX_T * AMX_T;
    if (!trans) {
        for (int i = 0; i < rows; i++) {
            uint16_t *d = Ap + (size_t)i * kcp;
            if (i >= mc) {
                memset(d, 0, sizeof(uint16_t) * (size_t)kcp);
                continue;
            }
            const float *src = A + (size_t)(i0 + i) * lda + k0;
            for (int k = 0; k < kcp; k += 16) {
                const __mmask16 m = tail_mask(kc - k > 0 ? kc - k : 0);
                _mm256_storeu_si256((__m256i *)(d + k), _mm512_cvtepi32_epi16(rne16(_mm512_maskz_loadu_ps(m, src + k))));
            }
        }
        return;
    }
    // A(i, k) = A[k*lda + i]: rows k and k+1 of A's storage give the (k, k+1) pairs of 16 rows
    // i at once; 16 such vectors (32 k) transposed in registers are 16 rows' runs of 32 k.
    for (int i = 0; i < rows; i += 16) {
        const __mmask16 m = tail_mask(mc - i);
        for (int k = 0; k < kcp; k += 32) {
            __m512i r[16];
            for (int q = 0; q < 16; q++) {
                const int kk = k + 2 * q;
                const float *lo = kk < kc ? A + (size_t)(k0 + kk) * lda + i0 + i : NULL;
                const __m512 vl = lo ? _mm512_maskz_loadu_ps(m, lo) : _mm512_setzero_ps();
                const __m512 vh = kk + 1 < kc ? _mm512_maskz_loadu_ps(m, lo + lda) : _mm512_setzero_ps();
                r[q] = _mm512_or_si512(rne16(vl), _mm512_slli_epi32(rne16(vh), 16));
            }
            transpose16(r);
            for (int l = 0; l < 16; l++) _mm512_storeu_si512(Ap + (size_t)(i + l) * kcp + k, r[l]);
        }
    }
}

// Bp[panel of 32 columns][kcp/2][32] pairs (k even low, k odd high) for columns j0..j0+nc.
AVX512_TARGET static void amx_pack_b(uint32_t *Bp, const float *B, int ldb, int trans, int j0, int nc, int k0, int kc,
                                     int kcp) {
    const int cols = (nc + AMX_T - 1) / AMX_T * AMX_T, kpn = kcp / 2;
    if (!trans) {  // B(k, j) = B[k*ldb + j]: interleave rows k and k+1
        // Rows outermost: each pair of rows is read once, front to back (column strips of 32
        // down the block ran 3x slower, stalled on memory).
        for (int kp = 0; kp < kpn; kp++)
            for (int p = 0; p < cols / AMX_T; p++) {
                uint32_t *d = Bp + ((size_t)p * kpn + kp) * AMX_T;
                const int k = 2 * kp;
                for (int h = 0; h < AMX_T; h += 16) {
                    const int j = p * AMX_T + h, n = nc - j > 0 ? (nc - j < 16 ? nc - j : 16) : 0;
                    const __mmask16 m = tail_mask(n);
                    const __m512 lo = k < kc ? _mm512_maskz_loadu_ps(m, B + (size_t)(k0 + k) * ldb + j0 + j)
                                             : _mm512_setzero_ps();
                    const __m512 hi = k + 1 < kc ? _mm512_maskz_loadu_ps(m, B + (size_t)(k0 + k + 1) * ldb + j0 + j)
                                                 : _mm512_setzero_ps();
                    _mm512_storeu_si512(d + h, _mm512_or_si512(rne16(lo), _mm512_slli_epi32(rne16(hi), 16)));
                }
            }
        return;
    }
    // B(k, j) = B[j*ldb + k]: column j is contiguous in k, already in pair order once rounded;
    // 16 columns' 16 pairs (32 k) transposed in registers are 16 pair rows of those columns.
    for (int j = 0; j < cols; j += 16) {
        uint32_t *d = Bp + (size_t)(j / AMX_T) * kpn * AMX_T + j % AMX_T;
        for (int k = 0; k < kcp; k += 32) {
            const int n = kc - k < 32 ? kc - k : 32;
            __m512i r[16];
            for (int c = 0; c < 16; c++) {
                if (j + c >= nc) {
                    r[c] = _mm512_setzero_si512();
                    continue;
                }
                const float *src = B + (size_t)(j0 + j + c) * ldb + k0 + k;
                const __m512 x0 = _mm512_maskz_loadu_ps(tail_mask(n), src);
                const __m512 x1 = _mm512_maskz_loadu_ps(tail_mask(n > 16 ? n - 16 : 0), src + 16);
                // cvtepi32_epi16 keeps the lane order: 16 bf16 of x0 then 16 of x1 = 16 pairs.
                r[c] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi32_epi16(rne16(x0))),
                                          _mm512_cvtepi32_epi16(rne16(x1)), 1);
            }
            transpose16(r);
            for (int q = 0; q < 16; q++) _mm512_storeu_si512(d + (size_t)(k / 2 + q) * AMX_T, r[q]);
        }
    }
}

typedef struct amx_tilecfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_tilecfg;

// Every tile 16 rows x 64 bytes: C 16x16 fp32, A 16 rows x 32 bf16, B 16 pairs x 16 columns.
AMX_TARGET void amx_tiles_config(void) {
    amx_tilecfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 8; t++) c.rows[t] = 16, c.colsb[t] = 64;
    // GCC 12's ldtilecfg builtin does not tell the optimiser that it reads c: without this
    // barrier the stores above were dropped (a garbage configuration, SIGSEGV).
    __asm__ volatile("" : : "r"(&c) : "memory");
    _tile_loadconfig(&c);
}

AMX_TARGET void amx_tiles_release(void) { _tile_release(); }

int amx_available(void) { return amx_ready(); }

// out (32 x 32, row stride ld floats) = Ap (32 rows x kcp) · Bp (kcp x 32).
AMX_TARGET static void amx_kernel(int kcp, const uint16_t *Ap, const uint32_t *Bp, float *out, size_t ld) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    const size_t as = (size_t)kcp * sizeof(uint16_t);
    for (int k = 0; k < kcp; k += 32) {
        _tile_loadd(4, Ap + k, as);
        _tile_loadd(5, Ap + (size_t)16 * kcp + k, as);
        _tile_loadd(6, Bp + (size_t)k / 2 * AMX_T, AMX_T * sizeof(uint32_t));
        _tile_loadd(7, Bp + (size_t)k / 2 * AMX_T + 16, AMX_T * sizeof(uint32_t));
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, out, ld * sizeof(float));
    _tile_stored(1, out + 16, ld * sizeof(float));
    _tile_stored(2, out + 16 * ld, ld * sizeof(float));
    _tile_stored(3, out + 16 * ld + 16, ld * sizeof(float));
}

// C[0..mr, 0..nr] = alpha*tmp + (first ? beta*C : C), as micro_kernel's tail.
AVX512_TARGET static void amx_store(float *C, int ldc, const float *tmp, int mr, int nr, float alpha, float beta,
                                    int first) {
    const __mmask16 m0 = tail_mask(nr), m1 = tail_mask(nr > 16 ? nr - 16 : 0);
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(first ? beta : 1.0f);
    const int keep = !first || beta != 0.0f;
    for (int r = 0; r < mr; r++) {
        float *cr = C + (size_t)r * ldc;
        const float *t = tmp + (size_t)r * AMX_T;
        __m512 v0 = _mm512_mul_ps(va, _mm512_loadu_ps(t)), v1 = _mm512_mul_ps(va, _mm512_loadu_ps(t + 16));
        if (keep) {
            v0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, cr), v0);
            v1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, cr + 16), v1);
        }
        _mm512_mask_storeu_ps(cr, m0, v0);
        _mm512_mask_storeu_ps(cr + 16, m1, v1);
    }
}

// The same into Cᵀ: C[c*ldc + r] for tmp's (r, c). A column of tmp is gathered 16 rows at a time
// (the scalar loop this replaces took as long as the tile products of the weight gradients).
AVX512_TARGET static void amx_store_t(float *C, int ldc, const float *tmp, int mr, int nr, float alpha, float beta,
                                      int first) {
    const __mmask16 m0 = tail_mask(mr), m1 = tail_mask(mr > 16 ? mr - 16 : 0);
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(first ? beta : 1.0f);
    const __m512i rows = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi32(AMX_T));
    const int keep = !first || beta != 0.0f;
    for (int c = 0; c < nr; c++) {
        float *cc = C + (size_t)c * ldc;
        __m512 v0 = _mm512_mul_ps(va, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m0, rows, tmp + c, 4));
        __m512 v1 = _mm512_mul_ps(va, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m1, rows, tmp + 16 * AMX_T + c, 4));
        if (keep) {
            v0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, cc), v0);
            v1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, cc + 16), v1);
        }
        _mm512_mask_storeu_ps(cc, m0, v0);
        _mm512_mask_storeu_ps(cc + 16, m1, v1);
    }
}

// bf16 elements of a thread's A packing for its block C[rows, cols] over K: one MC x KC block, or,
// where C has several AMX_NC-column blocks, every block of A, packed on the first column block
// and reused by the others (ViT-B's fc1 converted each fp32 activation 6 times otherwise).
static size_t amx_a_elems(int rows, int cols, int K) {
    const size_t blk = (size_t)AMX_MC * AMX_KC;
    if (cols <= AMX_NC) return blk;
    const size_t all = (size_t)((rows + AMX_MC - 1) / AMX_MC) * ((K + AMX_KC - 1) / AMX_KC) * blk;
    return all <= AMX_A_FULL_MAX ? all : blk;
}

// ct: the product computed is Cᵀ (rows of the problem are columns of C). Ap holds
// amx_a_elems(m1 - m0, n1 - n0, K) elements.
static void amx_block(int ta, int tb, int m0, int m1, int n0, int n1, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc, int ct, uint16_t *Ap, uint32_t *Bp) {
    float tmp[AMX_T * AMX_T] __attribute__((aligned(64)));
    // K blocks of equal size (at most AMX_KC each, a multiple of 32): block pc / kstep.
    const int nkb = (K + AMX_KC - 1) / AMX_KC, kstep = ((K + nkb - 1) / nkb + 31) / 32 * 32;
    const size_t blk = (size_t)AMX_MC * AMX_KC;
    const int a_all = amx_a_elems(m1 - m0, n1 - n0, K) > blk;
    for (int jc = n0; jc < n1; jc += AMX_NC) {
        const int nc = n1 - jc < AMX_NC ? n1 - jc : AMX_NC;
        for (int pc = 0; pc < K; pc += kstep) {
            const int kc = K - pc < kstep ? K - pc : kstep, kcp = (kc + 31) / 32 * 32;
            amx_pack_b(Bp, B, ldb, tb, jc, nc, pc, kc, kcp);
            for (int ic = m0; ic < m1; ic += AMX_MC) {
                const int mc = m1 - ic < AMX_MC ? m1 - ic : AMX_MC;
                uint16_t *a = a_all ? Ap + ((size_t)(ic - m0) / AMX_MC * nkb + pc / kstep) * blk : Ap;
                if (!a_all || jc == n0) amx_pack_a(a, A, lda, ta, ic, mc, pc, kc, kcp);
                for (int jr = 0; jr < nc; jr += AMX_T)
                    for (int ir = 0; ir < mc; ir += AMX_T) {
                        const uint16_t *at = a + (size_t)ir * kcp;
                        const uint32_t *bt = Bp + (size_t)(jr / AMX_T) * (kcp / 2) * AMX_T;
                        const int mr = mc - ir < AMX_T ? mc - ir : AMX_T, nr = nc - jr < AMX_T ? nc - jr : AMX_T;
                        // A full tile of C that this K block overwrites as it is (alpha 1, beta 0)
                        // goes straight from the tiles to C: the trip through tmp and amx_store
                        // cost about a fifth of the small-K products (C = 96). Same values.
                        if (!ct && pc == 0 && beta == 0.0f && alpha == 1.0f && mr == AMX_T && nr == AMX_T) {
                            amx_kernel(kcp, at, bt, C + (size_t)(ic + ir) * ldc + jc + jr, (size_t)ldc);
                            continue;
                        }
                        amx_kernel(kcp, at, bt, tmp, AMX_T);
                        if (ct)
                            amx_store_t(C + (size_t)(jc + jr) * ldc + ic + ir, ldc, tmp, mr, nr, alpha, beta, pc == 0);
                        else
                            amx_store(C + (size_t)(ic + ir) * ldc + jc + jr, ldc, tmp, mr, nr, alpha, beta, pc == 0);
                    }
            }
        }
    }
}

// Weight gradients (Aᵀ·B, K = tokens, C small): split by rows or columns, every thread would pack
// the whole of the operand it shares, the transposed one included. Split K instead: each thread
// multiplies its K range into a private C, then the partial Cs are added in thread order (so a
// result depends on the thread count, reproducibly, as fp32's reductions do). The problem as
// amx_block takes it (after the Cᵀ swap: ct).
static void amx_ksplit(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                       float *C, int ldc, int ct) {
    const int rows = ct ? N : M, cols = ct ? M : N;
    float *parts = NULL;
    int nt = 1;
#pragma omp parallel
    {
#pragma omp single
        {
            nt = omp_get_num_threads();
            parts = as_malloc(sizeof(float) * (size_t)nt * rows * cols);
        }
        const int t = omp_get_thread_num(), units = (K + AMX_T - 1) / AMX_T;
        int k0 = (int)((long)units * t / nt) * AMX_T, k1 = (int)((long)units * (t + 1) / nt) * AMX_T;
        if (k1 > K) k1 = K;
        float *part = parts + (size_t)t * rows * cols;
        if (k1 > k0) {
            const size_t na = amx_a_elems(M, N, k1 - k0), nb = (size_t)AMX_NC * AMX_KC / 2;
            uint32_t *Bp = pack_buffer(0, sizeof(uint32_t) * nb);
            uint16_t *Ap = pack_buffer(1, sizeof(uint16_t) * na);
            amx_tiles_config();
            // Aᵀ·B: both operands are k-major, so a K range starts k0 rows in.
            amx_block(1, 0, 0, M, 0, N, k1 - k0, alpha, A + (size_t)k0 * lda, lda, B + (size_t)k0 * ldb, ldb, 0.0f,
                      part, cols, ct, Ap, Bp);
            amx_tiles_release();
        } else {
            memset(part, 0, sizeof(float) * (size_t)rows * cols);
        }
#pragma omp barrier
#pragma omp for schedule(static)
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) {
                float v = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
                for (int u = 0; u < nt; u++) v += parts[((size_t)u * rows + i) * cols + j];
                C[(size_t)i * ldc + j] = v;
            }
    }
    free(parts);
}

int gemm_bf16_serial(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc) {
    if (!amx_ready()) return -1;
    if (M <= 0 || N <= 0 || K <= 0) return -1;
    int ct = 0;
    if (trans_a && !trans_b && N < M) {  // Cᵀ = Bᵀ·A, as gemm_bf16 does
        const float *t = A;
        A = B, B = t;
        int ti = lda;
        lda = ldb, ldb = ti;
        ti = M, M = N, N = ti;
        ct = 1;
    }
    const size_t na = amx_a_elems(M, N, K), nb = (size_t)AMX_NC * AMX_KC / 2;
    uint32_t *Bp = pack_buffer(0, sizeof(uint32_t) * nb);
    uint16_t *Ap = pack_buffer(1, sizeof(uint16_t) * na);
    amx_tiles_config();
    amx_block(trans_a, trans_b, 0, M, 0, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ct, Ap, Bp);
    amx_tiles_release();
    return 0;
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
    const int amx = amx_ready();
    // AMX wants A with k contiguous: a transposed A is repacked through a transpose, the slow part
    // of the weight gradients' Aᵀ·B (K = tokens). Cᵀ = Bᵀ·A then transposes the smaller operand.
    int ct = 0;
    if (amx && trans_a && !trans_b && N < M) {
        const float *t = A;
        A = B, B = t;
        int ti = lda;
        lda = ldb, ldb = ti;
        ti = M, M = N, N = ti;
        ct = 1;
    }
    if (amx && trans_a && !trans_b && K >= 2048 && K >= 4 * (M > N ? M : N) && (long)M * N <= (1L << 20) &&
        omp_get_max_threads() > 1) {
        amx_ksplit(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ct);
        return;
    }
    // The same split as gemm(): rows when C has enough of them, else columns (weight gradients
    // of narrow layers). Splits fall on tile boundaries so that every tile but the last is full.
    const int by_rows = M >= N || M >= 256;
#pragma omp parallel
    {
        const int nt = omp_get_num_threads(), t = omp_get_thread_num();
        const int unit = amx ? AMX_T : by_rows ? MR : NR, n = by_rows ? M : N, units = (n + unit - 1) / unit;
        int lo = (int)((long)units * t / nt) * unit, hi = (int)((long)units * (t + 1) / nt) * unit;
        if (hi > n) hi = n;
        const int m0 = by_rows ? lo : 0, m1 = by_rows ? hi : M, n0 = by_rows ? 0 : lo, n1 = by_rows ? N : hi;
        if (hi > lo && amx) {
            const size_t na = amx_a_elems(m1 - m0, n1 - n0, K), nb = (size_t)AMX_NC * AMX_KC / 2;
            uint32_t *Bp = pack_buffer(0, sizeof(uint32_t) * nb);
            uint16_t *Ap = pack_buffer(1, sizeof(uint16_t) * na);
            amx_tiles_config();
            // Swapped (ct), the operands keep their flags: B stored (K, N) is Bᵀ transposed.
            amx_block(trans_a, trans_b, m0, m1, n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc, ct, Ap, Bp);
            amx_tiles_release();
        } else if (hi > lo) {
            uint32_t *Bp = pack_buffer(0, sizeof(uint32_t) * (size_t)NC * KC_PAIRS);
            uint32_t *Ap = pack_buffer(1, sizeof(uint32_t) * (size_t)MC * KC_PAIRS);
            gemm_bf16_block(trans_a, trans_b, m0, m1, n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc, Ap, Bp);
        }
    }
}
#else
int amx_available(void) { return 0; }
int gemm_bf16_serial(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc) {
    (void)trans_a, (void)trans_b, (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda, (void)B, (void)ldb;
    (void)beta, (void)C, (void)ldc;
    return -1;
}
void amx_tiles_config(void) {}
void amx_tiles_release(void) {}
void gemm_bf16(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
               int ldb, float beta, float *C, int ldc) {
    gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void nn_bf16_allow_amx(int on) { (void)on; }
const char *nn_bf16_kernel(void) { return "fp32 (no bf16 instructions)"; }
#endif

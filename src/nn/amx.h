// Internal to src/nn: the AMX-BF16 tile state, the vector bf16 rounding and the AVX-512 target
// macros of gemm_bf16.c and the AVX-512 kernels (x86-64 with GCC/clang; the functions exist
// elsewhere and report no AMX).
#ifndef ANOSWIN_NN_AMX_H
#define ANOSWIN_NN_AMX_H

#include <stdint.h>

// 1 when the CPU has AMX-BF16, Linux granted the tile state, and nn_bf16_allow_amx has not
// turned it off. Call outside parallel regions (the first call asks the kernel).
int amx_available(void);
// Per thread, around tile use: every tile 16 rows x 64 bytes (C 16x16 fp32, A 16 x 32 bf16,
// B 16 pairs x 16 columns).
void amx_tiles_config(void);
void amx_tiles_release(void);
// gemm_bf16's product on AMX tiles on the calling thread alone, for code that already runs its own
// products on every thread (inside a parallel region). Returns -1 and does nothing without AMX or
// with M, N or K <= 0 (the caller then runs sgemm).
// One thread's product inside a parallel region: gemm_bf16_serial where bf16 is set (from
// gemm_thread_bf16(): the precision is bf16 and AMX is there; call that outside the region),
// else single-threaded sgemm. In linear.c.
int gemm_thread_bf16(void);
void gemm_thread(int bf16, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc);
int gemm_bf16_serial(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc);

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AMX_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,amx-tile,amx-bf16")))
#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl")))

// 16 floats rounded to bf16 (as bf16_from_float: nearest even, denormals kept, NaN quiet), one
// per 32-bit lane, in the low half.
AVX512_TARGET static inline __m512i rne16(__m512 x) {
    const __m512i u = _mm512_castps_si512(x);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    return _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x0040));
}

static inline __mmask16 tail_mask(int n) { return n >= 16 ? 0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }
#endif

#endif

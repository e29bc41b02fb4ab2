// Linear layers through OpenBLAS sgemm, bias sums, thread settings.
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nn/amx.h"  // gemm_bf16_serial
#include "nn/fastmath.h"
#include "nn/nn.h"
#include "util/error.h"

// One thread pool, OpenMP's: OpenBLAS runs single-threaded inside it and each thread multiplies
// its own block of rows. With OpenBLAS's own pthreads as well, OpenMP's workers spin between
// parallel regions while OpenBLAS's threads want the same cores: the training step ran at 2.96
// img/s that way and at 5.2 img/s with one pool (2 cores, batch 10).
void nn_blas_single_threaded(void) {
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}

void nn_set_threads(int n) {
    nn_blas_single_threaded();
    if (n <= 0) return;
    omp_set_num_threads(n);
}

int nn_threads(void) { return omp_get_max_threads(); }

void gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
          int ldb, float beta, float *C, int ldc) {
    const enum CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
    // Split C by rows when it has enough of them (the usual token-major case), else by columns
    // (weight gradients of narrow layers); each element is summed over K by one thread, in the
    // same order whatever the split.
    const int by_rows = M >= N || M >= 256;
    nn_blas_single_threaded();  // also for callers that never set threads
#pragma omp parallel
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int n = by_rows ? M : N, lo = (int)((long)n * t / nt), hi = (int)((long)n * (t + 1) / nt);
        if (hi > lo) {
            if (by_rows) {
                const float *a = trans_a ? A + lo : A + (size_t)lo * lda;
                cblas_sgemm(CblasRowMajor, ta, tb, hi - lo, N, K, alpha, a, lda, B, ldb, beta, C + (size_t)lo * ldc, ldc);
            } else {
                const float *b = trans_b ? B + (size_t)lo * ldb : B + lo;
                cblas_sgemm(CblasRowMajor, ta, tb, M, hi - lo, K, alpha, A, lda, b, ldb, beta, C + lo, ldc);
            }
        }
    }
}

int gemm_thread_bf16(void) { return nn_precision() == NN_BF16 && amx_available(); }

void gemm_thread(int bf16, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc) {
    if (bf16 && !gemm_bf16_serial(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, A, lda, B, ldb, beta, C, ldc);
}

// Rows r0..r1 of out (ld OC) set to the bias.
static void bias_rows(float *out, const float *bias, size_t r0, size_t r1, int OC) {
    for (size_t i = r0; i < r1; i++) memcpy(out + i * OC, bias, sizeof(float) * (size_t)OC);
}

void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int IC, int OC) {
    if (bias && nn_precision() == NN_FP32) {
        // out starts as the bias and sgemm adds inp · Wᵀ (beta 1): for beta 0 OpenBLAS zeroes out
        // in a pass of its own (sgemm_beta: 6% of a demo detection's profile, all beta-0 products
        // together), and the bias would take another. Same sums: the kernel adds its register
        // total to C once per K block, so for IC within one block (OpenBLAS's GEMM_Q, hundreds)
        // C = b + x·w either way.
#pragma omp parallel for schedule(static)
        for (int i = 0; i < N; i++) bias_rows(out, bias, (size_t)i, (size_t)i + 1, OC);
        gemm(0, 1, N, OC, IC, 1.0f, inp, IC, weight, IC, 1.0f, out, OC);
        return;
    }
    // out = inp · Wᵀ, then the bias row by row (bf16: its kernels write C without a zeroing pass).
    gemm_prec(0, 1, N, OC, IC, 1.0f, inp, IC, weight, IC, 0.0f, out, OC);
    if (!bias) return;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        float *o = out + (size_t)i * OC;
        for (int j = 0; j < OC; j++) o[j] += bias[j];
    }
}

void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int N, int IC, int OC) {
    // dinp (N, IC) += dout (N, OC) · W (OC, IC)
    if (dinp) gemm_prec(0, 0, N, IC, OC, 1.0f, dout, OC, weight, IC, 1.0f, dinp, IC);
    // dW (OC, IC) += doutᵀ (OC, N) · inp (N, IC)
    if (dweight) gemm_prec(1, 0, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dweight, IC);
    if (dbias) colsum_accumulate(dbias, dout, N, OC);
}

void colsum_accumulate(float *dst, const float *src, int N, int C) {
    // Each thread sums a fixed contiguous block of rows; the parts are added in thread order
    // (ordered loop), so the result does not depend on scheduling.
#pragma omp parallel
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        size_t r0 = (size_t)N * t / nt, r1 = (size_t)N * (t + 1) / nt;
        float *part = as_malloc((size_t)C * sizeof(float));
        memset(part, 0, (size_t)C * sizeof(float));
        for (size_t i = r0; i < r1; i++) {
            const float *s = src + i * C;
            for (int j = 0; j < C; j++) part[j] += s[j];
        }
#pragma omp for ordered schedule(static, 1)
        for (int k = 0; k < nt; k++) {
#pragma omp ordered
            for (int j = 0; j < C; j++) dst[j] += part[j];
        }
        free(part);
    }
}

void mlp_forward(float *y, float *pre, float *act, const float *x, const float *w1, const float *b1, const float *w2,
                 int N, int C, int hid, int tile_rows) {
    // One thread per row tile: the tile's (rows, hid) activations stay in cache from fc1 through
    // the GELU to fc2, instead of three passes over the whole (N, hid) buffers in memory.
    // With bf16 on AMX the tiles' products run on the tiles too (each tile repacks the weights,
    // which larger tiles amortise: the caller's tile_rows); bf16 without AMX runs unfused.
    const int bf = gemm_thread_bf16();
    if (nn_precision() == NN_BF16 && !bf) {
        linear_forward(pre, x, w1, b1, N, C, hid);
        gelu_forward(act, pre, (size_t)N * hid);
        linear_forward(y, act, w2, NULL, N, hid, C);
        return;
    }
    const int ntiles = (N + tile_rows - 1) / tile_rows;
    nn_blas_single_threaded();
#pragma omp parallel for schedule(static)
    for (int t = 0; t < ntiles; t++) {
        const int r0 = t * tile_rows, nr = N - r0 < tile_rows ? N - r0 : tile_rows;
        float *p = pre + (size_t)r0 * hid, *a = act + (size_t)r0 * hid;
        if (bf) {
            gemm_thread(bf, 0, 1, nr, hid, C, 1.0f, x + (size_t)r0 * C, C, w1, C, 0.0f, p, hid);
            for (int i = 0; i < nr; i++) {
                float *pr = p + (size_t)i * hid;
#pragma omp simd
                for (int j = 0; j < hid; j++) pr[j] += b1[j];
            }
        } else {  // sgemm onto the bias, as linear_forward
            bias_rows(p, b1, 0, (size_t)nr, hid);
            gemm_thread(0, 0, 1, nr, hid, C, 1.0f, x + (size_t)r0 * C, C, w1, C, 1.0f, p, hid);
        }
        gelu_span(a, p, (size_t)nr * hid);
        gemm_thread(bf, 0, 1, nr, C, hid, 1.0f, a, hid, w2, hid, 0.0f, y + (size_t)r0 * C, C);
    }
}

// d[i] *= g[i] over n values (the GELU derivative's factor).
static void scale_span(float *restrict d, const float *restrict g, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) d[i] *= g[i];
}

void mlp_backward_act(float *dact, const float *dy, const float *w2, const float *dgelu, int N, int C, int hid,
                      int tile_rows) {
    // By row tiles, as mlp_forward: fc2's input gradient of a tile is still in cache when the GELU's
    // derivative scales it, instead of a memset, a GEMM pass and a GELU pass over (N, hid) in memory.
    const int bf = gemm_thread_bf16();
    if (nn_precision() == NN_BF16 && !bf) {
        gemm_prec(0, 0, N, hid, C, 1.0f, dy, C, w2, hid, 0.0f, dact, hid);
        const size_t n = (size_t)N * hid, chunk = 4096;
        const long nchunks = (long)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(static)
        for (long c = 0; c < nchunks; c++) {
            size_t i = (size_t)c * chunk;
            scale_span(dact + i, dgelu + i, n - i < chunk ? n - i : chunk);
        }
        return;
    }
    const int ntiles = (N + tile_rows - 1) / tile_rows;
    nn_blas_single_threaded();
#pragma omp parallel for schedule(static)
    for (int t = 0; t < ntiles; t++) {
        const int r0 = t * tile_rows, nr = N - r0 < tile_rows ? N - r0 : tile_rows;
        float *d = dact + (size_t)r0 * hid;
        gemm_thread(bf, 0, 0, nr, hid, C, 1.0f, dy + (size_t)r0 * C, C, w2, hid, 0.0f, d, hid);
        scale_span(d, dgelu + (size_t)r0 * hid, (size_t)nr * hid);
    }
}

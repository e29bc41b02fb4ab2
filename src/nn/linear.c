// Linear layers through OpenBLAS sgemm, bias sums, thread settings.
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"
#include "util/error.h"

void nn_set_threads(int n) {
    if (n <= 0) return;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int nn_threads(void) { return omp_get_max_threads(); }

void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int IC, int OC) {
    // out = inp · Wᵀ (RowMajor, B transposed), then the bias row by row.
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, IC, 1.0f, inp, IC, weight, IC, 0.0f, out, OC);
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
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IC, OC, 1.0f, dout, OC, weight, IC, 1.0f, dinp, IC);
    // dW (OC, IC) += doutᵀ (OC, N) · inp (N, IC)
    if (dweight)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dweight, IC);
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

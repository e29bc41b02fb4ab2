// The diffusion U-Net's shape layers: nearest 2x upsampling, the sinusoidal timestep embedding,
// and the (B, C, P) <-> (B, P, C) transposes around its attention blocks.
#include <math.h>

#include "nn/nn.h"

void upsample2x_forward(float *out, const float *inp, int B, int C, int H, int W) {
    const int W2 = 2 * W;
#pragma omp parallel for schedule(static)
    for (long bc = 0; bc < (long)B * C; bc++) {
        const float *x = inp + (size_t)bc * H * W;
        float *y = out + (size_t)bc * 4 * H * W;
        for (int h = 0; h < H; h++) {
            float *r0 = y + (size_t)(2 * h) * W2, *r1 = r0 + W2;
            for (int w = 0; w < W; w++) r0[2 * w] = r0[2 * w + 1] = x[(size_t)h * W + w];
            for (int w = 0; w < W2; w++) r1[w] = r0[w];
        }
    }
}

void upsample2x_backward(float *dinp, const float *dout, int B, int C, int H, int W) {
    const int W2 = 2 * W;
#pragma omp parallel for schedule(static)
    for (long bc = 0; bc < (long)B * C; bc++) {
        float *dx = dinp + (size_t)bc * H * W;
        const float *g = dout + (size_t)bc * 4 * H * W;
        for (int h = 0; h < H; h++) {
            const float *r0 = g + (size_t)(2 * h) * W2, *r1 = r0 + W2;
            for (int w = 0; w < W; w++) dx[(size_t)h * W + w] += r0[2 * w] + r0[2 * w + 1] + r1[2 * w] + r1[2 * w + 1];
        }
    }
}

void timestep_embedding(float *out, const float *t, int B, int dim) {
    // Computed in double: the arguments reach t = 999 radians, where float32 rounding of the
    // frequency alone moves cos/sin by ~1e-4.
    const int half = dim / 2;
    for (int b = 0; b < B; b++) {
        float *e = out + (size_t)b * dim;
        for (int i = 0; i < half; i++) {
            double a = (double)t[b] * exp(-log(10000.0) * i / half);
            e[i] = (float)cos(a);
            e[half + i] = (float)sin(a);
        }
        if (dim % 2) e[dim - 1] = 0.0f;
    }
}

void channels_last(float *out, const float *inp, int B, int C, int P) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            const float *x = inp + ((size_t)b * C + c) * P;
            float *y = out + (size_t)b * P * C + c;
            for (int p = 0; p < P; p++) y[(size_t)p * C] = x[p];
        }
}

void channels_first(float *out, const float *inp, int B, int C, int P, int accumulate) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            const float *x = inp + (size_t)b * P * C + c;
            float *y = out + ((size_t)b * C + c) * P;
            if (accumulate)
                for (int p = 0; p < P; p++) y[p] += x[(size_t)p * C];
            else
                for (int p = 0; p < P; p++) y[p] = x[(size_t)p * C];
        }
}

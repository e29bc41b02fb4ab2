// Conv2d and ConvTranspose2d as im2col + gemm, one image at a time (each product is already
// split over the threads inside gemm), and per-channel bias sums.
#include <string.h>

#include "nn/nn.h"

void conv_im2col(float *cols, const float *img, int C, int H, int W, int k, int stride, int pad, int OH, int OW) {
    const int rows = C * k * k;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const int c = r / (k * k), kh = (r / k) % k, kw = r % k;
        const float *src = img + (size_t)c * H * W;
        float *dst = cols + (size_t)r * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            const int h = oh * stride - pad + kh;
            float *d = dst + (size_t)oh * OW;
            if (h < 0 || h >= H) {
                memset(d, 0, sizeof(float) * (size_t)OW);
                continue;
            }
            const float *s = src + (size_t)h * W;
            for (int ow = 0; ow < OW; ow++) {
                const int w = ow * stride - pad + kw;
                d[ow] = (w >= 0 && w < W) ? s[w] : 0.0f;
            }
        }
    }
}

void conv_col2im(float *img, const float *cols, int C, int H, int W, int k, int stride, int pad, int OH, int OW) {
    // One thread per channel: the k*k rows of a channel overlap in the image, other channels do not.
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        float *dst = img + (size_t)c * H * W;
        for (int kh = 0; kh < k; kh++)
            for (int kw = 0; kw < k; kw++) {
                const float *src = cols + ((size_t)(c * k + kh) * k + kw) * OH * OW;
                for (int oh = 0; oh < OH; oh++) {
                    const int h = oh * stride - pad + kh;
                    if (h < 0 || h >= H) continue;
                    float *d = dst + (size_t)h * W;
                    const float *s = src + (size_t)oh * OW;
                    for (int ow = 0; ow < OW; ow++) {
                        const int w = ow * stride - pad + kw;
                        if (w >= 0 && w < W) d[w] += s[ow];
                    }
                }
            }
    }
}

size_t conv2d_scratch_floats(int IC, int k, int OH, int OW) { return (size_t)IC * k * k * OH * OW; }

size_t conv_transpose2d_scratch_floats(int OC, int k, int H, int W) { return (size_t)OC * k * k * H * W; }

void channel_sum_accumulate(float *dst, const float *src, int B, int C, size_t P) {
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double s = 0.0;
        for (int b = 0; b < B; b++) {
            const float *x = src + ((size_t)b * C + c) * P;
            for (size_t i = 0; i < P; i++) s += x[i];
        }
        dst[c] += (float)s;
    }
}

static void add_channel_bias(float *out, const float *bias, int C, size_t P) {
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        float *o = out + (size_t)c * P;
        for (size_t i = 0; i < P; i++) o[i] += bias[c];
    }
}

// ---- Conv2d ------------------------------------------------------------------------------------
// Per image: cols (K = IC*k*k, P = OH*OW), out_b (OC, P) = weight (OC, K) · cols.

void conv2d_forward(float *out, float *cols, const float *inp, const float *weight, const float *bias, int B, int IC,
                    int H, int W, int OC, int k, int stride, int pad) {
    const int OH = conv_out_size(H, k, stride, pad), OW = conv_out_size(W, k, stride, pad), K = IC * k * k;
    const int P = OH * OW;
    for (int b = 0; b < B; b++) {
        float *o = out + (size_t)b * OC * P;
        conv_im2col(cols, inp + (size_t)b * IC * H * W, IC, H, W, k, stride, pad, OH, OW);
        gemm(0, 0, OC, P, K, 1.0f, weight, K, cols, P, 0.0f, o, P);
        if (bias) add_channel_bias(o, bias, OC, (size_t)P);
    }
}

void conv2d_backward(float *dinp, float *dweight, float *dbias, float *cols, const float *dout, const float *inp,
                     const float *weight, int B, int IC, int H, int W, int OC, int k, int stride, int pad) {
    const int OH = conv_out_size(H, k, stride, pad), OW = conv_out_size(W, k, stride, pad), K = IC * k * k;
    const int P = OH * OW;
    for (int b = 0; b < B; b++) {
        const float *g = dout + (size_t)b * OC * P;
        if (dweight) {
            // dW (OC, K) += dout_b (OC, P) · colsᵀ (P, K)
            conv_im2col(cols, inp + (size_t)b * IC * H * W, IC, H, W, k, stride, pad, OH, OW);
            gemm(0, 1, OC, K, P, 1.0f, g, P, cols, P, 1.0f, dweight, K);
        }
        if (dinp) {
            // dcols (K, P) = Wᵀ (K, OC) · dout_b, then scattered back to the pixels they came from.
            gemm(1, 0, K, P, OC, 1.0f, weight, K, g, P, 0.0f, cols, P);
            conv_col2im(dinp + (size_t)b * IC * H * W, cols, IC, H, W, k, stride, pad, OH, OW);
        }
    }
    if (dbias) channel_sum_accumulate(dbias, dout, B, OC, (size_t)P);
}

// ---- ConvTranspose2d ------------------------------------------------------------------------------
// The same geometry read backwards: the output (OC, OH, OW) plays the convolution's input and the
// input (IC, H, W) its output. With the weight viewed as (IC, K = OC*k*k):
// cols (K, H*W) = weightᵀ · inp_b, out_b = col2im(cols).

void conv_transpose2d_forward(float *out, float *cols, const float *inp, const float *weight, const float *bias, int B,
                              int IC, int H, int W, int OC, int k, int stride, int pad, int out_pad) {
    const int OH = convt_out_size(H, k, stride, pad, out_pad), OW = convt_out_size(W, k, stride, pad, out_pad);
    const int K = OC * k * k, P = H * W;
    for (int b = 0; b < B; b++) {
        float *o = out + (size_t)b * OC * OH * OW;
        gemm(1, 0, K, P, IC, 1.0f, weight, K, inp + (size_t)b * IC * P, P, 0.0f, cols, P);
        memset(o, 0, sizeof(float) * (size_t)OC * OH * OW);
        conv_col2im(o, cols, OC, OH, OW, k, stride, pad, H, W);
        if (bias) add_channel_bias(o, bias, OC, (size_t)OH * OW);
    }
}

void conv_transpose2d_backward(float *dinp, float *dweight, float *dbias, float *cols, const float *dout,
                               const float *inp, const float *weight, int B, int IC, int H, int W, int OC, int k,
                               int stride, int pad, int out_pad) {
    const int OH = convt_out_size(H, k, stride, pad, out_pad), OW = convt_out_size(W, k, stride, pad, out_pad);
    const int K = OC * k * k, P = H * W;
    for (int b = 0; b < B; b++) {
        // dcols (K, P) = im2col of dout_b: the gradient each input pixel's window received.
        conv_im2col(cols, dout + (size_t)b * OC * OH * OW, OC, OH, OW, k, stride, pad, H, W);
        // dinp_b (IC, P) += W (IC, K) · dcols
        if (dinp) gemm(0, 0, IC, P, K, 1.0f, weight, K, cols, P, 1.0f, dinp + (size_t)b * IC * P, P);
        // dW (IC, K) += inp_b (IC, P) · dcolsᵀ
        if (dweight) gemm(0, 1, IC, K, P, 1.0f, inp + (size_t)b * IC * P, P, cols, P, 1.0f, dweight, K);
    }
    if (dbias) channel_sum_accumulate(dbias, dout, B, OC, (size_t)OH * OW);
}

// Conv2d and ConvTranspose2d as im2col + gemm over a chunk of images at once, and per-channel bias
// sums. One product per chunk rather than per image: the deep, low-resolution layers have only a
// few dozen pixels per image, too few columns for sgemm to run near its peak, and the weight
// gradient is then one long sum instead of B short ones added up. The products follow the
// precision switch (gemm_prec: bf16 operands, fp32 accumulation, as the linear layers); the
// copies, bias sums and col2im's additions stay fp32.
#include <string.h>

#include "nn/nn.h"

// Images per product: enough for about CONV_COLS columns (an image of the 64 px layers already
// has that many, and copying it channel-major would only add memory traffic), and never more than
// CONV_CHUNK_FLOATS (32 MiB) of scratch, so that a large batch does not grow the arena without bound.
#define CONV_COLS 2048
#define CONV_CHUNK_FLOATS ((size_t)8 << 20)

static int chunk_images(int B, size_t P, size_t per_image) {
    size_t nb = (CONV_COLS + P - 1) / P;
    if (nb * per_image > CONV_CHUNK_FLOATS) nb = CONV_CHUNK_FLOATS / per_image;
    if (nb < 1) nb = 1;
    return nb < (size_t)B ? (int)nb : B;
}

// cols (C*k*k, ld) of B images img (B, C, H, W): image b fills columns b*OH*OW .. (b+1)*OH*OW - 1.
static void im2col_batch(float *cols, size_t ld, const float *img, int B, int C, int H, int W, int k, int stride,
                         int pad, int OH, int OW) {
    const int rows = C * k * k;
#pragma omp parallel for collapse(2) schedule(static)
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < B; b++) {
            const int c = r / (k * k), kh = (r / k) % k, kw = r % k;
            const float *src = img + ((size_t)b * C + c) * H * W;
            float *dst = cols + (size_t)r * ld + (size_t)b * OH * OW;
            // Columns ow in [lo, hi) read inside the image; the rest is padding.
            int lo = 0, hi = OW;
            while (lo < OW && lo * stride - pad + kw < 0) lo++;
            while (hi > lo && (hi - 1) * stride - pad + kw >= W) hi--;
            for (int oh = 0; oh < OH; oh++) {
                const int h = oh * stride - pad + kh;
                float *d = dst + (size_t)oh * OW;
                if (h < 0 || h >= H) {
                    memset(d, 0, sizeof(float) * (size_t)OW);
                    continue;
                }
                const float *s = src + (size_t)h * W;
                const int w0 = kw - pad;
                for (int ow = 0; ow < lo; ow++) d[ow] = 0.0f;
                if (stride == 1) {
                    if (hi > lo) memcpy(d + lo, s + lo + w0, sizeof(float) * (size_t)(hi - lo));
                } else if (stride == 2) {  // a constant stride lets the compiler vectorise the gather
                    for (int ow = lo; ow < hi; ow++) d[ow] = s[2 * ow + w0];
                } else {
                    for (int ow = lo; ow < hi; ow++) d[ow] = s[ow * stride + w0];
                }
                for (int ow = hi; ow < OW; ow++) d[ow] = 0.0f;
            }
        }
}

// The adjoint: img (B, C, H, W) += (or =, when overwrite) the columns scattered back.
static void col2im_batch(float *img, const float *cols, size_t ld, int B, int C, int H, int W, int k, int stride,
                         int pad, int OH, int OW, int overwrite) {
    // One thread per (image, channel): the k*k rows of a channel overlap in the image, nothing else does.
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            float *dst = img + ((size_t)b * C + c) * H * W;
            if (overwrite) memset(dst, 0, sizeof(float) * (size_t)H * W);
            for (int kh = 0; kh < k; kh++)
                for (int kw = 0; kw < k; kw++) {
                    const float *src = cols + ((size_t)(c * k + kh) * k + kw) * ld + (size_t)b * OH * OW;
                    int lo = 0, hi = OW;
                    while (lo < OW && lo * stride - pad + kw < 0) lo++;
                    while (hi > lo && (hi - 1) * stride - pad + kw >= W) hi--;
                    for (int oh = 0; oh < OH; oh++) {
                        const int h = oh * stride - pad + kh;
                        if (h < 0 || h >= H) continue;
                        float *d = dst + (size_t)h * W;
                        const float *s = src + (size_t)oh * OW;
                        const int w0 = kw - pad;
                        if (stride == 1) {  // contiguous: a plain vector add
                            float *dd = d + lo + w0;
                            const float *ss = s + lo;
#pragma omp simd
                            for (int i = 0; i < hi - lo; i++) dd[i] += ss[i];
                        } else {
                            for (int ow = lo; ow < hi; ow++) d[ow * stride + w0] += s[ow];
                        }
                    }
                }
        }
}

void conv_im2col(float *cols, const float *img, int C, int H, int W, int k, int stride, int pad, int OH, int OW) {
    im2col_batch(cols, (size_t)OH * OW, img, 1, C, H, W, k, stride, pad, OH, OW);
}

void conv_col2im(float *img, const float *cols, int C, int H, int W, int k, int stride, int pad, int OH, int OW) {
    col2im_batch(img, cols, (size_t)OH * OW, 1, C, H, W, k, stride, pad, OH, OW, 0);
}

// dst (C, B*P) = src (B, C, P) with the channels outermost, the layout one product over B images needs.
static void to_channel_major(float *dst, const float *src, int B, int C, size_t P) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int c = 0; c < C; c++)
        for (int b = 0; b < B; b++)
            memcpy(dst + ((size_t)c * B + b) * P, src + ((size_t)b * C + c) * P, sizeof(float) * P);
}

// dst (B, C, P) = (or += when accumulate) src (C, B*P) + bias (C, or NULL).
static void from_channel_major(float *dst, const float *src, const float *bias, int accumulate, int B, int C,
                               size_t P) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            float *d = dst + ((size_t)b * C + c) * P;
            const float *s = src + ((size_t)c * B + b) * P;
            const float bc = bias ? bias[c] : 0.0f;
            if (accumulate) {
                for (size_t i = 0; i < P; i++) d[i] += s[i];
            } else {
                for (size_t i = 0; i < P; i++) d[i] = s[i] + bc;
            }
        }
}

static size_t conv2d_image_floats(int IC, int OC, int k, int OH, int OW) {
    return (size_t)OH * OW * ((size_t)IC * k * k + (size_t)OC);
}

static size_t convt_image_floats(int IC, int OC, int k, int H, int W) {
    return (size_t)H * W * ((size_t)OC * k * k + (size_t)IC);
}

size_t conv2d_scratch_floats(int B, int IC, int OC, int k, int OH, int OW) {
    const size_t per = conv2d_image_floats(IC, OC, k, OH, OW);
    return per * (size_t)chunk_images(B, (size_t)OH * OW, per);
}

size_t conv_transpose2d_scratch_floats(int B, int IC, int OC, int k, int H, int W) {
    const size_t per = convt_image_floats(IC, OC, k, H, W);
    return per * (size_t)chunk_images(B, (size_t)H * W, per);
}

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

static void add_channel_bias(float *out, const float *bias, int B, int C, size_t P) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            float *o = out + ((size_t)b * C + c) * P;
            for (size_t i = 0; i < P; i++) o[i] += bias[c];
        }
}

// ---- Conv2d ------------------------------------------------------------------------------------
// Per chunk of n images, N = n*OH*OW: cols (K = IC*k*k, N), y (OC, N) = weight (OC, K) · cols,
// then y back to (n, OC, OH, OW). The scratch holds cols, then y. A single image is its own
// channel-major layout, and a 1x1 convolution with stride 1 its own im2col, so those skip the copies.

void conv2d_forward(float *out, float *scratch, const float *inp, const float *weight, const float *bias, int B,
                    int IC, int H, int W, int OC, int k, int stride, int pad) {
    const int OH = conv_out_size(H, k, stride, pad), OW = conv_out_size(W, k, stride, pad), K = IC * k * k;
    const size_t P = (size_t)OH * OW;
    const int nb = chunk_images(B, P, conv2d_image_floats(IC, OC, k, OH, OW));
    const int pointwise = k == 1 && stride == 1 && pad == 0;
    for (int b0 = 0; b0 < B; b0 += nb) {
        const int n = B - b0 < nb ? B - b0 : nb;
        const size_t N = (size_t)n * P;
        const float *x = inp + (size_t)b0 * IC * H * W, *cols = x;
        float *o = out + (size_t)b0 * OC * P, *y = n == 1 ? o : scratch + (size_t)K * N;
        if (!(pointwise && n == 1)) {
            im2col_batch(scratch, N, x, n, IC, H, W, k, stride, pad, OH, OW);
            cols = scratch;
        }
        gemm_prec(0, 0, OC, (int)N, K, 1.0f, weight, K, cols, (int)N, 0.0f, y, (int)N);
        if (n > 1) {
            from_channel_major(o, y, bias, 0, n, OC, P);
        } else if (bias) {
            add_channel_bias(o, bias, 1, OC, P);
        }
    }
}

void conv2d_backward(float *dinp, float *dweight, float *dbias, float *scratch, const float *dout, const float *inp,
                     const float *weight, int B, int IC, int H, int W, int OC, int k, int stride, int pad) {
    const int OH = conv_out_size(H, k, stride, pad), OW = conv_out_size(W, k, stride, pad), K = IC * k * k;
    const size_t P = (size_t)OH * OW;
    const int nb = chunk_images(B, P, conv2d_image_floats(IC, OC, k, OH, OW));
    const int pointwise = k == 1 && stride == 1 && pad == 0;
    for (int b0 = 0; b0 < B && (dinp || dweight); b0 += nb) {
        const int n = B - b0 < nb ? B - b0 : nb;
        const size_t N = (size_t)n * P;
        const float *g = dout + (size_t)b0 * OC * P, *x = inp + (size_t)b0 * IC * H * W;
        float *dx = dinp ? dinp + (size_t)b0 * IC * H * W : NULL;
        if (n > 1) {
            to_channel_major(scratch + (size_t)K * N, g, n, OC, P);
            g = scratch + (size_t)K * N;
        }
        if (dweight) {
            // dW (OC, K) += g (OC, N) · colsᵀ (N, K)
            const float *cols = x;
            if (!(pointwise && n == 1)) {
                im2col_batch(scratch, N, x, n, IC, H, W, k, stride, pad, OH, OW);
                cols = scratch;
            }
            gemm_prec(0, 1, OC, K, (int)N, 1.0f, g, (int)N, cols, (int)N, 1.0f, dweight, K);
        }
        if (dx && pointwise && n == 1) {
            gemm_prec(1, 0, K, (int)N, OC, 1.0f, weight, K, g, (int)N, 1.0f, dx, (int)N);
        } else if (dx) {
            // dcols (K, N) = Wᵀ (K, OC) · g, then scattered back to the pixels they came from.
            gemm_prec(1, 0, K, (int)N, OC, 1.0f, weight, K, g, (int)N, 0.0f, scratch, (int)N);
            col2im_batch(dx, scratch, N, n, IC, H, W, k, stride, pad, OH, OW, 0);
        }
    }
    if (dbias) channel_sum_accumulate(dbias, dout, B, OC, P);
}

// ---- ConvTranspose2d ------------------------------------------------------------------------------
// The same geometry read backwards: the output (OC, OH, OW) plays the convolution's input and the
// input (IC, H, W) its output. With the weight viewed as (IC, K = OC*k*k) and N = n*H*W:
// x (IC, N) = the chunk's input channel-major, cols (K, N) = weightᵀ · x, out = col2im(cols).
// The scratch holds cols, then x.

void conv_transpose2d_forward(float *out, float *scratch, const float *inp, const float *weight, const float *bias,
                              int B, int IC, int H, int W, int OC, int k, int stride, int pad, int out_pad) {
    const int OH = convt_out_size(H, k, stride, pad, out_pad), OW = convt_out_size(W, k, stride, pad, out_pad);
    const int K = OC * k * k;
    const size_t P = (size_t)H * W, Q = (size_t)OH * OW;
    const int nb = chunk_images(B, P, convt_image_floats(IC, OC, k, H, W));
    for (int b0 = 0; b0 < B; b0 += nb) {
        const int n = B - b0 < nb ? B - b0 : nb;
        const size_t N = (size_t)n * P;
        const float *x = inp + (size_t)b0 * IC * P;
        float *cols = scratch, *o = out + (size_t)b0 * OC * Q;
        if (n > 1) {
            to_channel_major(scratch + (size_t)K * N, x, n, IC, P);
            x = scratch + (size_t)K * N;
        }
        gemm_prec(1, 0, K, (int)N, IC, 1.0f, weight, K, x, (int)N, 0.0f, cols, (int)N);
        col2im_batch(o, cols, N, n, OC, OH, OW, k, stride, pad, H, W, 1);
        if (bias) add_channel_bias(o, bias, n, OC, Q);
    }
}

void conv_transpose2d_backward(float *dinp, float *dweight, float *dbias, float *scratch, const float *dout,
                               const float *inp, const float *weight, int B, int IC, int H, int W, int OC, int k,
                               int stride, int pad, int out_pad) {
    const int OH = convt_out_size(H, k, stride, pad, out_pad), OW = convt_out_size(W, k, stride, pad, out_pad);
    const int K = OC * k * k;
    const size_t P = (size_t)H * W, Q = (size_t)OH * OW;
    const int nb = chunk_images(B, P, convt_image_floats(IC, OC, k, H, W));
    for (int b0 = 0; b0 < B && (dinp || dweight); b0 += nb) {
        const int n = B - b0 < nb ? B - b0 : nb;
        const size_t N = (size_t)n * P;
        float *cols = scratch, *xs = scratch + (size_t)K * N;
        // dcols (K, N) = im2col of dout: the gradient each input pixel's window received.
        im2col_batch(cols, N, dout + (size_t)b0 * OC * Q, n, OC, OH, OW, k, stride, pad, H, W);
        if (dinp && n == 1) {
            // dinp (IC, N) += W (IC, K) · dcols
            gemm_prec(0, 0, IC, (int)N, K, 1.0f, weight, K, cols, (int)N, 1.0f, dinp + (size_t)b0 * IC * P, (int)N);
        } else if (dinp) {
            gemm_prec(0, 0, IC, (int)N, K, 1.0f, weight, K, cols, (int)N, 0.0f, xs, (int)N);
            from_channel_major(dinp + (size_t)b0 * IC * P, xs, NULL, 1, n, IC, P);
        }
        if (dweight) {
            // dW (IC, K) += x (IC, N) · dcolsᵀ
            const float *x = inp + (size_t)b0 * IC * P;
            if (n > 1) {
                to_channel_major(xs, x, n, IC, P);
                x = xs;
            }
            gemm_prec(0, 1, IC, K, (int)N, 1.0f, x, (int)N, cols, (int)N, 1.0f, dweight, K);
        }
    }
    if (dbias) channel_sum_accumulate(dbias, dout, B, OC, Q);
}

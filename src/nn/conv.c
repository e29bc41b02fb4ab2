// Conv2d and ConvTranspose2d as im2col + gemm over a chunk of images at once, and per-channel bias
// sums. One product per chunk rather than per image: the deep, low-resolution layers have only a
// few dozen pixels per image, too few columns for sgemm to run near its peak, and the weight
// gradient is then one long sum instead of B short ones added up. The products follow the
// precision switch (gemm_prec: bf16 operands, fp32 accumulation, as the linear layers); the
// copies, bias sums and col2im's additions stay fp32.
#include <stdlib.h>
#include <string.h>

#include "nn/amx.h"  // gemm_thread
#include "nn/nn.h"
#include "util/error.h"

// Images per product: enough for about CONV_COLS columns (an image of the 64 px layers already
// has that many, and copying it channel-major would only add memory traffic), and never more than
// CONV_CHUNK_FLOATS (32 MiB) of scratch, so that a large batch does not grow the arena without bound.
#define CONV_COLS 2048
#define CONV_CHUNK_FLOATS ((size_t)8 << 20)
// Winograd needs channels to fill its products (K = IC or OC): below this im2col is faster.
#define WINO_MIN_CH 16

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

static size_t wino_scratch_floats(int B, int IC, int OC, int OH, int OW);

size_t conv2d_scratch_floats(int B, int IC, int OC, int k, int OH, int OW) {
    const size_t per = conv2d_image_floats(IC, OC, k, OH, OW);
    size_t n = per * (size_t)chunk_images(B, (size_t)OH * OW, per);
    // Stride and padding are not known here: any 3x3 layer with enough channels may run Winograd.
    if (k == 3 && IC >= WINO_MIN_CH && OC >= WINO_MIN_CH) {
        const size_t w = wino_scratch_floats(B, IC, OC, OH, OW);
        if (w > n) n = w;
    }
    return n;
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

// ---- Winograd F(2x2, 3x3) ----------------------------------------------------------------------
// The 3x3 layers with stride 1 and padding 1 (f-AnoGAN's and the DDPM U-Net's), in fp32: each 2x2
// output tile is Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A of the 4x4 input tile d around it (Lavin & Gray 2016),
// so one layer is 16 products over the input channels with 16 multiplies per 4 outputs instead
// of 36, a 2.25x cut of the flops that bound f-AnoGAN's and autoDDPM's steps; the transforms are
// a few adds per value. The input gradient is the same convolution of dout with the flipped,
// transposed weight, whose transform is the weight's with indices 0 and 3 swapped in both
// directions (G's rows read backwards are G's rows 3, 1, 2, 0); the weight gradient is the adjoint,
// G^T [sum over tiles of (A dY A^T) ⊙ V] G. Exact in real arithmetic; in fp32 it rounds
// differently from im2col (tests/test_nn_conv.c holds it to PyTorch like every layer). bf16 keeps
// im2col: the transforms would add their rounding to bf16's.
// Layouts: V (16, C, T) holds the transformed tiles of a chunk, T = n*th*tw tiles in (image,
// tile row, tile column) order; U (16, OC, IC) the transformed weight.

static int use_winograd(int IC, int OC, int k, int stride, int pad) {
    return k == 3 && stride == 1 && pad == 1 && IC >= WINO_MIN_CH && OC >= WINO_MIN_CH && nn_precision() == NN_FP32;
}

static size_t wino_image_floats(int IC, int OC, int OH, int OW) {
    return (size_t)16 * (size_t)((OH + 1) / 2) * (size_t)((OW + 1) / 2) * ((size_t)IC + OC);
}

static int wino_chunk(int B, int IC, int OC, int OH, int OW) {
    return chunk_images(B, (size_t)((OH + 1) / 2) * ((OW + 1) / 2), wino_image_floats(IC, OC, OH, OW));
}

// Stride of the 16 matrices of n floats each in a (16, rows, cols) buffer. The padding keeps the
// 16 streams a transform reads or writes off the same cache sets: unpadded, a power-of-two
// matrix size (64 channels x 1024 tiles) put all 16 on one set and the transforms ran 2x slower.
#define WINO_PAD 16
static size_t wino_plane(size_t n) { return n + WINO_PAD; }

// U, and dU for the backward, then a chunk's V and products.
static size_t wino_scratch_floats(int B, int IC, int OC, int OH, int OW) {
    return (size_t)32 * wino_plane((size_t)IC * OC) + (size_t)32 * WINO_PAD +
           wino_image_floats(IC, OC, OH, OW) * (size_t)wino_chunk(B, IC, OC, OH, OW);
}

// One row of tiles of one channel: rows (4, W) of the image (NULL: outside, zeros) -> v[x*plane
// + tx], x = 0..15. The padded rows are split into even and odd columns (E[k] = column 2k-1,
// O[k] = column 2k), so that tile tx reads E[tx], O[tx], E[tx+1], O[tx+1] and every loop runs
// unit-stride. A function of its own: inside the OpenMP region GCC left these loops scalar.
static void wino_input_row(float *restrict v, size_t plane, const float *const rows[4], int W, int tw,
                           float *restrict buf) {
    const int L = tw + 1;
    float *restrict E = buf, *restrict O = buf + 4 * L, *restrict TE = buf + 8 * L, *restrict TO = buf + 12 * L;
    for (int i = 0; i < 4; i++) {
        float *restrict e = E + i * L, *restrict o = O + i * L;
        const float *restrict r = rows[i];
        if (!r) {
            memset(e, 0, sizeof(float) * (size_t)L);
            memset(o, 0, sizeof(float) * (size_t)L);
            continue;
        }
        const int ne = W / 2, no = (W + 1) / 2;  // columns 2k-1 (k = 1..ne) and 2k (k < no) inside
        e[0] = 0.0f;
#pragma omp simd
        for (int k = 1; k <= ne; k++) e[k] = r[2 * k - 1];
#pragma omp simd
        for (int k = ne + 1; k < L; k++) e[k] = 0.0f;
#pragma omp simd
        for (int k = 0; k < no; k++) o[k] = r[2 * k];
#pragma omp simd
        for (int k = no; k < L; k++) o[k] = 0.0f;
    }
    // Bᵀ over the rows: t0 = d0 - d2, t1 = d1 + d2, t2 = d2 - d1, t3 = d1 - d3.
#pragma omp simd
    for (int k = 0; k < L; k++) {
        TE[k] = E[k] - E[2 * L + k];
        TE[L + k] = E[L + k] + E[2 * L + k];
        TE[2 * L + k] = E[2 * L + k] - E[L + k];
        TE[3 * L + k] = E[L + k] - E[3 * L + k];
        TO[k] = O[k] - O[2 * L + k];
        TO[L + k] = O[L + k] + O[2 * L + k];
        TO[2 * L + k] = O[2 * L + k] - O[L + k];
        TO[3 * L + k] = O[L + k] - O[3 * L + k];
    }
    // The same over the columns of each tile: (E[tx], O[tx], E[tx+1], O[tx+1]).
    for (int i = 0; i < 4; i++) {
        const float *restrict te = TE + i * L, *restrict to = TO + i * L;
        float *restrict v0 = v + (size_t)(4 * i) * plane, *restrict v1 = v0 + plane, *restrict v2 = v1 + plane,
                        *restrict v3 = v2 + plane;
#pragma omp simd
        for (int tx = 0; tx < tw; tx++) {
            v0[tx] = te[tx] - te[tx + 1];
            v1[tx] = to[tx] + te[tx + 1];
            v2[tx] = te[tx + 1] - to[tx];
            v3[tx] = to[tx] - to[tx + 1];
        }
    }
}

// V (16, C, T) = Bᵀ d B of every 4x4 tile d of img (n, C, H, W), tile (ty, tx) reading rows
// 2ty-1 .. 2ty+2 and columns 2tx-1 .. 2tx+2 (0 outside).
static void wino_input(float *V, const float *img, int n, int C, int H, int W, int th, int tw) {
    const size_t TT = (size_t)th * tw, plane = wino_plane((size_t)C * n * TT);
#pragma omp parallel
    {
        float *buf = as_malloc(sizeof(float) * 16 * (size_t)(tw + 1));
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < n; b++)
            for (int c = 0; c < C; c++) {
                const float *src = img + ((size_t)b * C + c) * H * W;
                for (int ty = 0; ty < th; ty++) {
                    const float *rows[4];
                    for (int i = 0; i < 4; i++) {
                        const int h = 2 * ty - 1 + i;
                        rows[i] = h >= 0 && h < H ? src + (size_t)h * W : NULL;
                    }
                    wino_input_row(V + (size_t)c * n * TT + (size_t)b * TT + (size_t)ty * tw, plane, rows, W, tw, buf);
                }
            }
        free(buf);
    }
}

// Z (16, C, T) = A dY Aᵀ of every 2x2 tile of dout (n, C, OH, OW) (0 outside): the gradient
// reaching the transformed products from the output tiles, for the weight gradient.
static void wino_dout(float *Z, const float *dout, int n, int C, int OH, int OW, int th, int tw) {
    const size_t TT = (size_t)th * tw, plane = wino_plane((size_t)C * n * TT);
#pragma omp parallel
    {
        float *buf = as_malloc(sizeof(float) * 8 * (size_t)tw);
        float *restrict e0 = buf, *restrict o0 = buf + tw, *restrict e1 = buf + 2 * tw, *restrict o1 = buf + 3 * tw;
        float *restrict re = buf + 4 * tw, *restrict ro = buf + 6 * tw;  // rows 1 and 2 of A dY: e0 ± e1, o0 ± o1
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < n; b++)
            for (int c = 0; c < C; c++) {
                const float *src = dout + ((size_t)b * C + c) * OH * OW;
                for (int ty = 0; ty < th; ty++) {
                    for (int i = 0; i < 2; i++) {
                        float *restrict e = i ? e1 : e0, *restrict o = i ? o1 : o0;
                        const int y = 2 * ty + i;
                        if (y >= OH) {
                            memset(e, 0, sizeof(float) * (size_t)tw);
                            memset(o, 0, sizeof(float) * (size_t)tw);
                            continue;
                        }
                        const float *restrict r = src + (size_t)y * OW;
#pragma omp simd
                        for (int k = 0; k < tw; k++) e[k] = r[2 * k];
#pragma omp simd
                        for (int k = 0; k < tw; k++) o[k] = 2 * k + 1 < OW ? r[2 * k + 1] : 0.0f;
                    }
#pragma omp simd
                    for (int k = 0; k < tw; k++) {
                        re[k] = e0[k] + e1[k];
                        re[tw + k] = e0[k] - e1[k];
                        ro[k] = o0[k] + o1[k];
                        ro[tw + k] = o0[k] - o1[k];
                    }
                    // Rows of A dY: (g0, g0 + g1, g0 - g1, -g1); then the same over each row's pair.
                    float *z = Z + (size_t)c * n * TT + (size_t)b * TT + (size_t)ty * tw;
                    for (int i = 0; i < 4; i++) {
                        const float *restrict e = i == 0 ? e0 : i == 3 ? e1 : re + (i - 1) * tw;
                        const float *restrict o = i == 0 ? o0 : i == 3 ? o1 : ro + (i - 1) * tw;
                        const float sg = i == 3 ? -1.0f : 1.0f;
                        float *restrict z0 = z + (size_t)(4 * i) * plane, *restrict z1 = z0 + plane,
                                        *restrict z2 = z1 + plane, *restrict z3 = z2 + plane;
#pragma omp simd
                        for (int tx = 0; tx < tw; tx++) {
                            z0[tx] = sg * e[tx];
                            z1[tx] = sg * (e[tx] + o[tx]);
                            z2[tx] = sg * (e[tx] - o[tx]);
                            z3[tx] = -sg * o[tx];
                        }
                    }
                }
            }
        free(buf);
    }
}

// out (n, C, OH, OW) = (or += when accumulate) Aᵀ m A of every tile's 16 products in M (16, C, T),
// plus bias (C, or NULL). Per row of tiles the four outputs of every tile are formed unit-stride,
// then interleaved into the two image rows.
static void wino_output(float *out, const float *M, const float *bias, int accumulate, int n, int C, int OH, int OW,
                        int th, int tw) {
    const size_t TT = (size_t)th * tw, plane = wino_plane((size_t)C * n * TT);
#pragma omp parallel
    {
        float *buf = as_malloc(sizeof(float) * 4 * (size_t)tw);
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < n; b++)
            for (int c = 0; c < C; c++) {
                float *o = out + ((size_t)b * C + c) * OH * OW;
                const float bc = bias ? bias[c] : 0.0f;
                for (int ty = 0; ty < th; ty++) {
                    const float *restrict m = M + (size_t)c * n * TT + (size_t)b * TT + (size_t)ty * tw;
                    float *restrict y00 = buf, *restrict y01 = buf + tw, *restrict y10 = buf + 2 * tw,
                                    *restrict y11 = buf + 3 * tw;
#pragma omp simd
                    for (int tx = 0; tx < tw; tx++) {
                        float r0[4], r1[4];
                        for (int j = 0; j < 4; j++) {
                            const float a0 = m[(size_t)j * plane + tx], a1 = m[(size_t)(4 + j) * plane + tx];
                            const float a2 = m[(size_t)(8 + j) * plane + tx], a3 = m[(size_t)(12 + j) * plane + tx];
                            r0[j] = a0 + a1 + a2;
                            r1[j] = a1 - a2 - a3;
                        }
                        y00[tx] = r0[0] + r0[1] + r0[2] + bc;
                        y01[tx] = r0[1] - r0[2] - r0[3] + bc;
                        y10[tx] = r1[0] + r1[1] + r1[2] + bc;
                        y11[tx] = r1[1] - r1[2] - r1[3] + bc;
                    }
                    for (int i = 0; i < 2 && 2 * ty + i < OH; i++) {
                        float *restrict row = o + (size_t)(2 * ty + i) * OW;
                        const float *restrict ye = i ? y10 : y00, *restrict yo = i ? y11 : y01;
                        const int full = OW / 2;  // tiles whose two columns are both inside
                        if (accumulate) {
#pragma omp simd
                            for (int tx = 0; tx < full; tx++) {
                                row[2 * tx] += ye[tx];
                                row[2 * tx + 1] += yo[tx];
                            }
                            if (OW % 2) row[OW - 1] += ye[full];
                        } else {
#pragma omp simd
                            for (int tx = 0; tx < full; tx++) {
                                row[2 * tx] = ye[tx];
                                row[2 * tx + 1] = yo[tx];
                            }
                            if (OW % 2) row[OW - 1] = ye[full];
                        }
                    }
                }
            }
        free(buf);
    }
}

// U (16, OC, IC) = G g Gᵀ of every 3x3 filter g of weight (OC, IC, 3, 3).
static void wino_weight(float *U, const float *weight, int OC, int IC) {
    const size_t nf = (size_t)OC * IC, plane = wino_plane(nf);
#pragma omp parallel for schedule(static)
    for (size_t f = 0; f < nf; f++) {
        const float *g = weight + f * 9;
        float t[4][3];
        for (int j = 0; j < 3; j++) {
            t[0][j] = g[j];
            t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
            t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
            t[3][j] = g[6 + j];
        }
        for (int i = 0; i < 4; i++) {
            U[(size_t)(4 * i + 0) * plane + f] = t[i][0];
            U[(size_t)(4 * i + 1) * plane + f] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
            U[(size_t)(4 * i + 2) * plane + f] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
            U[(size_t)(4 * i + 3) * plane + f] = t[i][2];
        }
    }
}

// dweight (OC, IC, 3, 3) += Gᵀ dU G: the weight transform's adjoint.
static void wino_weight_grad(float *dweight, const float *dU, int OC, int IC) {
    const size_t nf = (size_t)OC * IC, plane = wino_plane(nf);
#pragma omp parallel for schedule(static)
    for (size_t f = 0; f < nf; f++) {
        float r[3][4];
        for (int j = 0; j < 4; j++) {
            const float u0 = dU[(size_t)j * plane + f], u1 = dU[(size_t)(4 + j) * plane + f];
            const float u2 = dU[(size_t)(8 + j) * plane + f], u3 = dU[(size_t)(12 + j) * plane + f];
            r[0][j] = u0 + 0.5f * (u1 + u2);
            r[1][j] = 0.5f * (u1 - u2);
            r[2][j] = 0.5f * (u1 + u2) + u3;
        }
        float *g = dweight + f * 9;
        for (int i = 0; i < 3; i++) {
            g[3 * i + 0] += r[i][0] + 0.5f * (r[i][1] + r[i][2]);
            g[3 * i + 1] += 0.5f * (r[i][1] - r[i][2]);
            g[3 * i + 2] += 0.5f * (r[i][1] + r[i][2]) + r[i][3];
        }
    }
}

// The 16 products C[x] (M, N) = op(A[a(x)]) · op(B[x]) (+ beta C), one thread each (single-threaded
// sgemm), so every element is summed in the same order whatever the thread count. a(4i + j) =
// 4 flip(i) + flip(j) when flip_a (the flipped weight's transform), else 4i + j.
static void wino_products(int trans_a, int trans_b, int flip_a, int M, int N, int K, const float *A, const float *B,
                          float beta, float *C) {
    static const int flip[4] = {3, 1, 2, 0};
    const size_t sa = wino_plane((size_t)M * K), sb = wino_plane((size_t)K * N), sc = wino_plane((size_t)M * N);
    const int lda = trans_a ? M : K, ldb = trans_b ? K : N;
    nn_blas_single_threaded();
#pragma omp parallel for schedule(static)
    for (int x = 0; x < 16; x++) {
        const int a = flip_a ? 4 * flip[x / 4] + flip[x % 4] : x;
        gemm_thread(0, trans_a, trans_b, M, N, K, 1.0f, A + (size_t)a * sa, lda, B + (size_t)x * sb, ldb, beta,
                    C + (size_t)x * sc, N);
    }
}

static void conv2d_forward_winograd(float *out, float *scratch, const float *inp, const float *weight,
                                    const float *bias, int B, int IC, int H, int W, int OC) {
    const int th = (H + 1) / 2, tw = (W + 1) / 2, nb = wino_chunk(B, IC, OC, H, W);
    const size_t TT = (size_t)th * tw;
    float *U = scratch, *work = scratch + 32 * wino_plane((size_t)IC * OC);
    wino_weight(U, weight, OC, IC);
    for (int b0 = 0; b0 < B; b0 += nb) {
        const int n = B - b0 < nb ? B - b0 : nb;
        const size_t T = (size_t)n * TT;
        float *V = work, *M = work + 16 * wino_plane((size_t)IC * T);
        wino_input(V, inp + (size_t)b0 * IC * H * W, n, IC, H, W, th, tw);
        wino_products(0, 0, 0, OC, (int)T, IC, U, V, 0.0f, M);
        wino_output(out + (size_t)b0 * OC * H * W, M, bias, 0, n, OC, H, W, th, tw);
    }
}

static void conv2d_backward_winograd(float *dinp, float *dweight, float *scratch, const float *dout, const float *inp,
                                     const float *weight, int B, int IC, int H, int W, int OC) {
    const int th = (H + 1) / 2, tw = (W + 1) / 2, nb = wino_chunk(B, IC, OC, H, W);
    const size_t TT = (size_t)th * tw;
    float *U = scratch, *dU = U + 16 * wino_plane((size_t)IC * OC), *work = dU + 16 * wino_plane((size_t)IC * OC);
    if (dinp) wino_weight(U, weight, OC, IC);
    for (int b0 = 0; b0 < B; b0 += nb) {
        const int n = B - b0 < nb ? B - b0 : nb;
        const size_t T = (size_t)n * TT;
        const float *g = dout + (size_t)b0 * OC * H * W;
        float *X = work, *Z = work + 16 * wino_plane((size_t)IC * T);  // (16, IC, T) and (16, OC, T)
        if (dweight) {
            // dU[x] (OC, IC) += Z[x] (OC, T) · V[x]ᵀ, summed over the chunks before the adjoint.
            wino_input(X, inp + (size_t)b0 * IC * H * W, n, IC, H, W, th, tw);
            wino_dout(Z, g, n, OC, H, W, th, tw);
            wino_products(0, 1, 0, OC, IC, (int)T, Z, X, b0 ? 1.0f : 0.0f, dU);
        }
        if (dinp) {
            // The flipped weight's products: X[x] (IC, T) = U[a(x)]ᵀ (IC, OC) · Z'[x] (OC, T).
            wino_input(Z, g, n, OC, H, W, th, tw);
            wino_products(1, 0, 1, IC, (int)T, OC, U, Z, 0.0f, X);
            wino_output(dinp + (size_t)b0 * IC * H * W, X, NULL, 1, n, IC, H, W, th, tw);
        }
    }
    if (dweight) wino_weight_grad(dweight, dU, OC, IC);
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
    if (use_winograd(IC, OC, k, stride, pad)) {
        conv2d_forward_winograd(out, scratch, inp, weight, bias, B, IC, H, W, OC);
        return;
    }
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
    if (use_winograd(IC, OC, k, stride, pad)) {
        if (dinp || dweight) conv2d_backward_winograd(dinp, dweight, scratch, dout, inp, weight, B, IC, H, W, OC);
        if (dbias) channel_sum_accumulate(dbias, dout, B, OC, P);
        return;
    }
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

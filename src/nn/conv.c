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
// Tiles per Winograd chunk: half CONV_COLS, so that a chunk's transformed tiles and products
// (36 x (IC + OC) x 1024 floats, 4.7 MB at 16 channels) stay nearer the cache; 2048 (two 128 px
// images) made autoDDPM's training step 3-7% slower on a Zen 3 (bench train, alternating runs).
#define WINO_COLS 1024

static int chunk_images_cols(int B, size_t P, size_t per_image, size_t cols) {
    size_t nb = (cols + P - 1) / P;
    if (nb * per_image > CONV_CHUNK_FLOATS) nb = CONV_CHUNK_FLOATS / per_image;
    if (nb < 1) nb = 1;
    return nb < (size_t)B ? (int)nb : B;
}
static int chunk_images(int B, size_t P, size_t per_image) { return chunk_images_cols(B, P, per_image, CONV_COLS); }

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
#pragma omp simd reduction(+ : s)  // vector accumulators: one is a chain of dependent adds
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

// ---- Winograd F(4x4, 3x3) ----------------------------------------------------------------------
// The 3x3 layers with stride 1 and padding 1 (f-AnoGAN's and the DDPM U-Net's), in fp32: each 4x4
// output tile is Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A of the 6x6 input tile d around it (Lavin & Gray 2016,
// interpolation points 0, ±1, ±2, ∞), so a layer is 36 products over the input channels with 36
// multiplies per 16 outputs instead of 144: a 4x cut of the flops that bound f-AnoGAN's and
// autoDDPM's steps. Both gradients run the algorithm backwards from the same A dY Aᵀ: the weight
// gradient is Gᵀ [sum over tiles of (A dY Aᵀ) ⊙ V] G, the input gradient B [sum over output
// channels of U ⊙ (A dY Aᵀ)] Bᵀ scattered back onto the overlapping tiles.
// Exact in real arithmetic; in fp32 an output's rounding error scales with the products summed
// into it (about 10x im2col's, 1e-6 relative; tests/test_nn_conv.c holds it to PyTorch). bf16
// keeps im2col: the transforms would add to bf16's rounding.
// f-AnoGAN's step on a 2-core Zen 3 (bench train, batch 10): im2col 1.09 img/s, F(2x2, 3x3) 1.40
// (2.25x fewer flops, but tiles 4x the image to transform), F(4x4, 3x3) 1.97 once its transforms
// ran over whole channels instead of a row of tiles at a time (1.47 before).
// Layouts: V (36, C, T) holds the transformed tiles of a chunk, T = n*th*tw tiles in (image, tile
// row, tile column) order; U (36, OC, IC) the transformed weight.

#define WINO_N 36
// Stride of the matrices of n floats each in a (36, rows, cols) buffer. The padding keeps the
// streams a transform reads or writes off the same cache sets: unpadded, a power-of-two matrix
// size (64 channels x 1024 tiles) put them all on one set and the transforms ran 2x slower.
#define WINO_PAD 16
static size_t wino_plane(size_t n) { return n + WINO_PAD; }

static int use_winograd(int IC, int OC, int k, int stride, int pad) {
    return k == 3 && stride == 1 && pad == 1 && IC >= WINO_MIN_CH && OC >= WINO_MIN_CH && nn_precision() == NN_FP32;
}

static size_t wino_tiles(int OH, int OW) { return (size_t)((OH + 3) / 4) * (size_t)((OW + 3) / 4); }

static size_t wino_image_floats(int IC, int OC, int OH, int OW) {
    return (size_t)WINO_N * wino_tiles(OH, OW) * ((size_t)IC + OC);
}

static int wino_chunk(int B, int IC, int OC, int OH, int OW) {
    return chunk_images_cols(B, wino_tiles(OH, OW), wino_image_floats(IC, OC, OH, OW), WINO_COLS);
}

// U, and dU for the backward, then a chunk's V and products.
static size_t wino_scratch_floats(int B, int IC, int OC, int OH, int OW) {
    return (size_t)2 * WINO_N * wino_plane((size_t)IC * OC) + (size_t)2 * WINO_N * WINO_PAD +
           wino_image_floats(IC, OC, OH, OW) * (size_t)wino_chunk(B, IC, OC, OH, OW);
}

// The 1-D transforms, over n columns at once: out[i][k] = sum_j X[i][j] in[j][k].
// X = Bᵀ (6 -> 6): the input's.
static inline void wino_bt(float *const out[6], const float *const in[6], int n) {
#pragma omp simd
    for (int k = 0; k < n; k++) {
        const float d0 = in[0][k], d1 = in[1][k], d2 = in[2][k], d3 = in[3][k], d4 = in[4][k], d5 = in[5][k];
        out[0][k] = 4.0f * d0 - 5.0f * d2 + d4;
        out[1][k] = d3 + d4 - 4.0f * (d1 + d2);
        out[2][k] = d4 - d3 + 4.0f * (d1 - d2);
        out[3][k] = d4 - d2 + 2.0f * (d3 - d1);
        out[4][k] = d4 - d2 + 2.0f * (d1 - d3);
        out[5][k] = 4.0f * d1 - 5.0f * d3 + d5;
    }
}

// X = Aᵀ (6 -> 4): the output's.
static inline void wino_at(float *const out[4], const float *const in[6], int n) {
#pragma omp simd
    for (int k = 0; k < n; k++) {
        const float m0 = in[0][k], m1 = in[1][k], m2 = in[2][k], m3 = in[3][k], m4 = in[4][k], m5 = in[5][k];
        out[0][k] = m0 + m1 + m2 + m3 + m4;
        out[1][k] = m1 - m2 + 2.0f * (m3 - m4);
        out[2][k] = m1 + m2 + 4.0f * (m3 + m4);
        out[3][k] = m1 - m2 + 8.0f * (m3 - m4) + m5;
    }
}

// X = A (4 -> 6): the output transform's adjoint, for the weight gradient.
static inline void wino_a(float *const out[6], const float *const in[4], int n) {
#pragma omp simd
    for (int k = 0; k < n; k++) {
        const float y0 = in[0][k], y1 = in[1][k], y2 = in[2][k], y3 = in[3][k];
        out[0][k] = y0;
        out[1][k] = y0 + y1 + y2 + y3;
        out[2][k] = y0 - y1 + y2 - y3;
        out[3][k] = y0 + 2.0f * y1 + 4.0f * y2 + 8.0f * y3;
        out[4][k] = y0 - 2.0f * y1 + 4.0f * y2 - 8.0f * y3;
        out[5][k] = y3;
    }
}

// The same transforms reading (or, for Aᵀ, writing) one image row, column 4k + j for the k-th tile.
static inline void wino_bt4(float *const out[6], const float *x, int n) {
#pragma omp simd
    for (int k = 0; k < n; k++) {
        const float *d = x + 4 * k;
        const float d0 = d[0], d1 = d[1], d2 = d[2], d3 = d[3], d4 = d[4], d5 = d[5];
        out[0][k] = 4.0f * d0 - 5.0f * d2 + d4;
        out[1][k] = d3 + d4 - 4.0f * (d1 + d2);
        out[2][k] = d4 - d3 + 4.0f * (d1 - d2);
        out[3][k] = d4 - d2 + 2.0f * (d3 - d1);
        out[4][k] = d4 - d2 + 2.0f * (d1 - d3);
        out[5][k] = 4.0f * d1 - 5.0f * d3 + d5;
    }
}

static inline void wino_a4(float *const out[6], const float *x, int n) {
#pragma omp simd
    for (int k = 0; k < n; k++) {
        const float *y = x + 4 * k;
        const float y0 = y[0], y1 = y[1], y2 = y[2], y3 = y[3];
        out[0][k] = y0;
        out[1][k] = y0 + y1 + y2 + y3;
        out[2][k] = y0 - y1 + y2 - y3;
        out[3][k] = y0 + 2.0f * y1 + 4.0f * y2 + 8.0f * y3;
        out[4][k] = y0 - 2.0f * y1 + 4.0f * y2 - 8.0f * y3;
        out[5][k] = y3;
    }
}

static inline void wino_at4(float *x, const float *const in[6], int n) {
#pragma omp simd
    for (int k = 0; k < n; k++) {
        const float m0 = in[0][k], m1 = in[1][k], m2 = in[2][k], m3 = in[3][k], m4 = in[4][k], m5 = in[5][k];
        float *y = x + 4 * k;
        y[0] = m0 + m1 + m2 + m3 + m4;
        y[1] = m1 - m2 + 2.0f * (m3 - m4);
        y[2] = m1 + m2 + 4.0f * (m3 + m4);
        y[3] = m1 - m2 + 8.0f * (m3 - m4) + m5;
    }
}

// The row transforms below work one image row at a time across all its tiles (the columns'
// transform) and then one column index at a time across all the channel's tiles at once (the
// rows'), so that no loop is shorter than a row of tiles and most run over every tile. Between
// the two, a channel's partial results are kept by row phase: image row 4ty + r is tile row ty of
// phase r, so a tile's rows are a fixed offset into the phase arrays whatever the tile.

// V (36, C, T) = Bᵀ d B of every 6x6 tile d of img (n, C, H, W), tile (ty, tx) reading rows
// 4ty-1 .. 4ty+4 and columns 4tx-1 .. 4tx+4 (0 outside).
static void wino_input(float *V, const float *img, int n, int C, int H, int W, int th, int tw) {
    const size_t TT = (size_t)th * tw, plane = wino_plane((size_t)C * n * TT), TP = TT + 2 * (size_t)tw;
    const int Wp = 4 * tw + 4;
    // Tile k reads columns 4k - 1 .. 4k + 4: inside the row for 1 <= k <= ki.
    const int ki = W >= 9 ? (W - 5) / 4 : 0;
#pragma omp parallel
    {
        // Cp (6 columns j, 4 row phases r, TP): the columns' transform of image row 4ty + r at
        // [j][r][tw + ty*tw], with a row of zero tiles before and after (rows -1 and 4th + 4).
        float *Cp = as_malloc(sizeof(float) * (24 * TP + (size_t)Wp)), *x = Cp + 24 * TP;
        for (int q = 0; q < 24; q++) {
            memset(Cp + q * TP, 0, sizeof(float) * (size_t)tw);
            memset(Cp + q * TP + tw + TT, 0, sizeof(float) * (size_t)tw);
        }
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < n; b++)
            for (int c = 0; c < C; c++) {
                const float *src = img + ((size_t)b * C + c) * H * W;
                for (int h = 0; h < 4 * th; h++) {
                    float *out[6];
                    for (int j = 0; j < 6; j++) out[j] = Cp + (size_t)(4 * j + h % 4) * TP + (size_t)(h / 4 + 1) * tw;
                    if (h >= H) {
                        for (int j = 0; j < 6; j++) memset(out[j], 0, sizeof(float) * (size_t)tw);
                        continue;
                    }
                    // Tiles 1 .. ki read the row in place; tile 0 (column -1) and those past
                    // ki (columns from W on) read a zero-padded copy of their columns.
                    const float *row = src + (size_t)h * W;
                    float *tail[6];
                    for (int j = 0; j < 6; j++) tail[j] = out[j] + ki + 1;
                    for (int i = 0; i < 6; i++) x[i] = i >= 1 && i <= W ? row[i - 1] : 0.0f;
                    for (int i = 4 * (ki + 1); i < Wp; i++) x[i] = i <= W ? row[i - 1] : 0.0f;
                    wino_bt4(out, x, 1);
                    if (ki > 0) {
                        float *mid[6];
                        for (int j = 0; j < 6; j++) mid[j] = out[j] + 1;
                        wino_bt4(mid, row + 3, ki);
                    }
                    wino_bt4(tail, x + 4 * (ki + 1), tw - ki - 1);
                }
                // Rows a = 0..5 of tile ty are image rows 4ty + a - 1: phase 3 of tile row ty - 1,
                // phases 0..3 of ty, phase 0 of ty + 1.
                float *v = V + (size_t)c * n * TT + (size_t)b * TT;
                for (int j = 0; j < 6; j++) {
                    const float *cj = Cp + (size_t)4 * j * TP + tw;
                    const float *in[6] = {cj + 3 * TP - tw, cj, cj + TP, cj + 2 * TP, cj + 3 * TP, cj + tw};
                    float *out[6];
                    for (int i = 0; i < 6; i++) out[i] = v + (size_t)(6 * i + j) * plane;
                    wino_bt(out, in, (int)TT);
                }
            }
        free(Cp);
    }
}

// X = B (6 -> 6): the input transform's adjoint, out[a] = sum_i Bᵀ[i][a] in[i]; rows 0 and 5
// of the result go to their own arrays (they overlap the neighbouring tiles' rows 4 and 1).
static inline void wino_b(float *const out[6], const float *const in[6], int n) {
#pragma omp simd
    for (int k = 0; k < n; k++) {
        const float v0 = in[0][k], v1 = in[1][k], v2 = in[2][k], v3 = in[3][k], v4 = in[4][k], v5 = in[5][k];
        out[0][k] = 4.0f * v0;
        out[1][k] = 4.0f * (v2 - v1) + 2.0f * (v4 - v3) + 4.0f * v5;
        out[2][k] = -5.0f * v0 - 4.0f * (v1 + v2) - v3 - v4;
        out[3][k] = v1 - v2 + 2.0f * (v3 - v4) - 5.0f * v5;
        out[4][k] = v0 + v1 + v2 + v3 + v4;
        out[5][k] = v5;
    }
}

// dimg (n, C, H, W) += (or =, when overwrite) B dV Bᵀ of every tile, scattered back where
// wino_input read it: the input gradient as the adjoint of the forward's algorithm, so that it
// reuses the weight gradient's A dY Aᵀ instead of transforming dout a second time. Tiles overlap
// by two rows and two columns, so rows 0 and 5 (and columns 0 and 5) of a tile are added after
// the others.
static void wino_input_adjoint(float *dimg, const float *dV, int n, int C, int H, int W, int th, int tw,
                               int overwrite) {
    const size_t TT = (size_t)th * tw, plane = wino_plane((size_t)C * n * TT), TP = TT + 2 * (size_t)tw;
    const int Wp = 4 * tw + 4;
#pragma omp parallel
    {
        // Cp (6 columns j, 4 row phases r, TP) as in wino_input, then per image row the columns.
        float *Cp = as_malloc(sizeof(float) * (24 * TP + 2 * TT + (size_t)Wp + 2 * (size_t)tw));
        float *e0 = Cp + 24 * TP, *e5 = e0 + TT, *x = e5 + TT, *c4 = x + Wp, *c5 = c4 + tw;
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < n; b++)
            for (int c = 0; c < C; c++) {
                const float *v = dV + (size_t)c * n * TT + (size_t)b * TT;
                for (int j = 0; j < 6; j++) {  // B over the tiles' rows: row a of tile ty is image row 4ty + a - 1
                    float *cj = Cp + (size_t)4 * j * TP;
                    const float *in[6];
                    for (int i = 0; i < 6; i++) in[i] = v + (size_t)(6 * i + j) * plane;
                    float *out[6] = {e0, cj + tw, cj + TP + tw, cj + 2 * TP + tw, cj + 3 * TP + tw, e5};
                    wino_b(out, in, (int)TT);
                    memset(cj + 3 * TP, 0, sizeof(float) * (size_t)tw);   // row -1: dropped
                    memset(cj + TT + tw, 0, sizeof(float) * (size_t)tw);  // row 4th: dropped
                    float *p3 = cj + 3 * TP,
                          *p0 = cj + 2 * (size_t)tw;  // row 0 -> phase 3 of ty - 1; row 5 -> phase 0 of ty + 1
#pragma omp simd
                    for (size_t t = 0; t < TT; t++) p3[t] += e0[t];
#pragma omp simd
                    for (size_t t = 0; t < TT; t++) p0[t] += e5[t];
                }
                float *d = dimg + ((size_t)b * C + c) * H * W;
                for (int h = 0; h < H; h++) {  // then over the columns of image row h, tile column k at 4k - 1
                    const size_t off = (size_t)(h % 4) * TP + (size_t)(h / 4 + 1) * tw;
                    const float *in[6];
                    for (int j = 0; j < 6; j++) in[j] = Cp + (size_t)4 * j * TP + off;
                    float *o4 = c4, *o5 = c5;
#pragma omp simd
                    for (int k = 0; k < tw; k++) {
                        const float v0 = in[0][k], v1 = in[1][k], v2 = in[2][k], v3 = in[3][k], v4 = in[4][k],
                                    v5 = in[5][k];
                        float *y = x + 4 * k;
                        y[0] = 4.0f * v0;
                        y[1] = 4.0f * (v2 - v1) + 2.0f * (v4 - v3) + 4.0f * v5;
                        y[2] = -5.0f * v0 - 4.0f * (v1 + v2) - v3 - v4;
                        y[3] = v1 - v2 + 2.0f * (v3 - v4) - 5.0f * v5;
                        o4[k] = v0 + v1 + v2 + v3 + v4;
                        o5[k] = v5;
                    }
                    x[4 * tw] = x[4 * tw + 1] = 0.0f;
#pragma omp simd
                    for (int k = 0; k < tw; k++) {  // columns 4 and 5 of tile k are 0 and 1 of tile k + 1
                        x[4 * k + 4] += o4[k];
                        x[4 * k + 5] += o5[k];
                    }
                    float *row = d + (size_t)h * W;
                    if (overwrite) {
                        memcpy(row, x + 1, sizeof(float) * (size_t)W);  // x[0] is column -1
                        continue;
                    }
#pragma omp simd
                    for (int i = 0; i < W; i++) row[i] += x[i + 1];
                }
            }
        free(Cp);
    }
}

// Z (36, C, T) = A dY Aᵀ of every 4x4 tile of dout (n, C, OH, OW) (0 outside): the gradient
// reaching the transformed products from the output tiles, for the weight gradient.
static void wino_dout(float *Z, const float *dout, int n, int C, int OH, int OW, int th, int tw) {
    const size_t TT = (size_t)th * tw, plane = wino_plane((size_t)C * n * TT);
    const int kf = OW / 4;
#pragma omp parallel
    {
        float *Cq = as_malloc(sizeof(float) * (24 * TT + 4)), *x = Cq + 24 * TT;  // (6, 4 phases, TT)
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < n; b++)
            for (int c = 0; c < C; c++) {
                const float *src = dout + ((size_t)b * C + c) * OH * OW;
                for (int y = 0; y < 4 * th; y++) {
                    float *out[6];
                    for (int j = 0; j < 6; j++) out[j] = Cq + (size_t)(4 * j + y % 4) * TT + (size_t)(y / 4) * tw;
                    if (y >= OH) {
                        for (int j = 0; j < 6; j++) memset(out[j], 0, sizeof(float) * (size_t)tw);
                        continue;
                    }
                    // The whole tiles read the row in place, a last partial one a zero-padded copy.
                    const float *row = src + (size_t)y * OW;
                    wino_a4(out, row, kf);
                    if (kf < tw) {
                        float *tail[6];
                        for (int j = 0; j < 6; j++) tail[j] = out[j] + kf;
                        for (int i = 0; i < 4; i++) x[i] = 4 * kf + i < OW ? row[4 * kf + i] : 0.0f;
                        wino_a4(tail, x, 1);
                    }
                }
                float *z = Z + (size_t)c * n * TT + (size_t)b * TT;
                for (int j = 0; j < 6; j++) {
                    const float *cj = Cq + (size_t)4 * j * TT;
                    const float *in[4] = {cj, cj + TT, cj + 2 * TT, cj + 3 * TT};
                    float *out[6];
                    for (int i = 0; i < 6; i++) out[i] = z + (size_t)(6 * i + j) * plane;
                    wino_a(out, in, (int)TT);
                }
            }
        free(Cq);
    }
}

// out (n, C, OH, OW) = Aᵀ m A of every tile's 36 products in M (36, C, T), plus bias (C, or NULL).
static void wino_output(float *out, const float *M, const float *bias, int n, int C, int OH, int OW, int th, int tw) {
    const size_t TT = (size_t)th * tw, plane = wino_plane((size_t)C * n * TT);
#pragma omp parallel
    {
        float *R = as_malloc(sizeof(float) * (24 * TT + 4 * (size_t)tw)), *x = R + 24 * TT;  // (4 rows, 6, TT)
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < n; b++)
            for (int c = 0; c < C; c++) {
                const float *m = M + (size_t)c * n * TT + (size_t)b * TT;
                for (int j = 0; j < 6; j++) {  // Aᵀ over the tiles' rows
                    const float *in[6];
                    float *rows[4];
                    for (int a = 0; a < 6; a++) in[a] = m + (size_t)(6 * a + j) * plane;
                    for (int i = 0; i < 4; i++) rows[i] = R + (size_t)(6 * i + j) * TT;
                    wino_at(rows, in, (int)TT);
                }
                float *o = out + ((size_t)b * C + c) * OH * OW;
                const float bc = bias ? bias[c] : 0.0f;
                for (int y = 0; y < OH; y++) {  // then over the columns of image row y = 4ty + i
                    const float *r = R + (size_t)(6 * (y % 4)) * TT + (size_t)(y / 4) * tw;
                    const float *in[6] = {r, r + TT, r + 2 * TT, r + 3 * TT, r + 4 * TT, r + 5 * TT};
                    wino_at4(x, in, tw);
                    float *row = o + (size_t)y * OW;
                    for (int i = 0; i < OW; i++) row[i] = x[i] + bc;
                }
            }
        free(R);
    }
}

// X = G (3 -> 6): the weight's.
static inline void wino_g(float *const out[6], const float *const in[3], int n) {
#pragma omp simd
    for (int k = 0; k < n; k++) {
        const float g0 = in[0][k], g1 = in[1][k], g2 = in[2][k];
        out[0][k] = 0.25f * g0;
        out[1][k] = -(g0 + g1 + g2) * (1.0f / 6.0f);
        out[2][k] = -(g0 - g1 + g2) * (1.0f / 6.0f);
        out[3][k] = g0 * (1.0f / 24.0f) + g1 * (1.0f / 12.0f) + g2 * (1.0f / 6.0f);
        out[4][k] = g0 * (1.0f / 24.0f) - g1 * (1.0f / 12.0f) + g2 * (1.0f / 6.0f);
        out[5][k] = g2;
    }
}

// X = Gᵀ (6 -> 3): the weight transform's adjoint.
static inline void wino_gt(float *const out[3], const float *const in[6], int n) {
#pragma omp simd
    for (int k = 0; k < n; k++) {
        const float u0 = in[0][k], u1 = in[1][k], u2 = in[2][k], u3 = in[3][k], u4 = in[4][k], u5 = in[5][k];
        out[0][k] = 0.25f * u0 - (u1 + u2) * (1.0f / 6.0f) + (u3 + u4) * (1.0f / 24.0f);
        out[1][k] = (u2 - u1) * (1.0f / 6.0f) + (u3 - u4) * (1.0f / 12.0f);
        out[2][k] = (u3 + u4 - u1 - u2) * (1.0f / 6.0f) + u5;
    }
}

// Filters per block of the weight transforms: their 9 taps split into 9 arrays, then G along
// both directions over the whole block at once.
#define WINO_FB 256

// U (36, OC, IC) = G g Gᵀ of every 3x3 filter g of weight (OC, IC, 3, 3).
static void wino_weight(float *U, const float *weight, int OC, int IC) {
    const size_t nf = (size_t)OC * IC, plane = wino_plane(nf);
    const int nblk = (int)((nf + WINO_FB - 1) / WINO_FB);
#pragma omp parallel
    {
        float *g = as_malloc(sizeof(float) * 27 * WINO_FB), *t = g + 9 * WINO_FB;  // (9, FB), (6, 3, FB)
#pragma omp for schedule(static)
        for (int blk = 0; blk < nblk; blk++) {
            const size_t f0 = (size_t)blk * WINO_FB;
            const int n = nf - f0 < WINO_FB ? (int)(nf - f0) : WINO_FB;
            for (int i = 0; i < 9; i++) {
                const float *w = weight + f0 * 9 + i;
                for (int k = 0; k < n; k++) g[i * WINO_FB + k] = w[(size_t)k * 9];
            }
            for (int j = 0; j < 3; j++) {  // G over the filter's rows
                const float *in[3] = {g + j * WINO_FB, g + (3 + j) * WINO_FB, g + (6 + j) * WINO_FB};
                float *out[6];
                for (int i = 0; i < 6; i++) out[i] = t + (3 * i + j) * WINO_FB;
                wino_g(out, in, n);
            }
            for (int i = 0; i < 6; i++) {  // then over its columns
                const float *in[3] = {t + 3 * i * WINO_FB, t + (3 * i + 1) * WINO_FB, t + (3 * i + 2) * WINO_FB};
                float *out[6];
                for (int j = 0; j < 6; j++) out[j] = U + (size_t)(6 * i + j) * plane + f0;
                wino_g(out, in, n);
            }
        }
        free(g);
    }
}

// dweight (OC, IC, 3, 3) += Gᵀ dU G: the weight transform's adjoint.
static void wino_weight_grad(float *dweight, const float *dU, int OC, int IC) {
    const size_t nf = (size_t)OC * IC, plane = wino_plane(nf);
    const int nblk = (int)((nf + WINO_FB - 1) / WINO_FB);
#pragma omp parallel
    {
        float *r = as_malloc(sizeof(float) * 27 * WINO_FB), *g = r + 18 * WINO_FB;  // (3, 6, FB), (9, FB)
#pragma omp for schedule(static)
        for (int blk = 0; blk < nblk; blk++) {
            const size_t f0 = (size_t)blk * WINO_FB;
            const int n = nf - f0 < WINO_FB ? (int)(nf - f0) : WINO_FB;
            for (int j = 0; j < 6; j++) {  // Gᵀ over the rows
                const float *in[6];
                float *out[3];
                for (int i = 0; i < 6; i++) in[i] = dU + (size_t)(6 * i + j) * plane + f0;
                for (int i = 0; i < 3; i++) out[i] = r + (6 * i + j) * WINO_FB;
                wino_gt(out, in, n);
            }
            for (int i = 0; i < 3; i++) {  // then over the columns
                const float *in[6];
                float *out[3];
                for (int j = 0; j < 6; j++) in[j] = r + (6 * i + j) * WINO_FB;
                for (int j = 0; j < 3; j++) out[j] = g + (3 * i + j) * WINO_FB;
                wino_gt(out, in, n);
            }
            for (int i = 0; i < 9; i++) {
                float *d = dweight + f0 * 9 + i;
                for (int k = 0; k < n; k++) d[(size_t)k * 9] += g[i * WINO_FB + k];
            }
        }
        free(r);
    }
}

// The 36 products C[x] (M, N) = op(A[x]) · op(B[x]) (+ beta C), one thread each (single-threaded
// sgemm), so every element is summed in the same order whatever the thread count.
static void wino_products(int trans_a, int trans_b, int M, int N, int K, const float *A, const float *B, float beta,
                          float *C) {
    const size_t sa = wino_plane((size_t)M * K), sb = wino_plane((size_t)K * N), sc = wino_plane((size_t)M * N);
    const int lda = trans_a ? M : K, ldb = trans_b ? K : N;
    nn_blas_single_threaded();
#pragma omp parallel for schedule(static)
    for (int x = 0; x < WINO_N; x++)
        gemm_thread(0, trans_a, trans_b, M, N, K, 1.0f, A + (size_t)x * sa, lda, B + (size_t)x * sb, ldb, beta,
                    C + (size_t)x * sc, N);
}

static void conv2d_forward_winograd(float *out, float *scratch, const float *inp, const float *weight,
                                    const float *bias, int B, int IC, int H, int W, int OC) {
    const int th = (H + 3) / 4, tw = (W + 3) / 4, nb = wino_chunk(B, IC, OC, H, W);
    const size_t TT = (size_t)th * tw;
    float *U = scratch, *work = scratch + 2 * WINO_N * wino_plane((size_t)IC * OC);
    wino_weight(U, weight, OC, IC);
    for (int b0 = 0; b0 < B; b0 += nb) {
        const int n = B - b0 < nb ? B - b0 : nb;
        const size_t T = (size_t)n * TT;
        float *V = work, *M = work + WINO_N * wino_plane((size_t)IC * T);
        wino_input(V, inp + (size_t)b0 * IC * H * W, n, IC, H, W, th, tw);
        wino_products(0, 0, OC, (int)T, IC, U, V, 0.0f, M);
        wino_output(out + (size_t)b0 * OC * H * W, M, bias, n, OC, H, W, th, tw);
    }
}

static void conv2d_backward_winograd(float *dinp, float *dweight, float *scratch, const float *dout, const float *inp,
                                     const float *weight, int B, int IC, int H, int W, int OC, int overwrite) {
    const int th = (H + 3) / 4, tw = (W + 3) / 4, nb = wino_chunk(B, IC, OC, H, W);
    const size_t TT = (size_t)th * tw;
    float *U = scratch, *dU = U + WINO_N * wino_plane((size_t)IC * OC),
          *work = dU + WINO_N * wino_plane((size_t)IC * OC);
    if (dinp) wino_weight(U, weight, OC, IC);
    for (int b0 = 0; b0 < B; b0 += nb) {
        const int n = B - b0 < nb ? B - b0 : nb;
        const size_t T = (size_t)n * TT;
        float *X = work, *Z = work + WINO_N * wino_plane((size_t)IC * T);  // (36, IC, T) and (36, OC, T)
        wino_dout(Z, dout + (size_t)b0 * OC * H * W, n, OC, H, W, th, tw);
        if (dweight) {
            // dU[x] (OC, IC) += Z[x] (OC, T) · V[x]ᵀ, summed over the chunks before the adjoint.
            wino_input(X, inp + (size_t)b0 * IC * H * W, n, IC, H, W, th, tw);
            wino_products(0, 1, OC, IC, (int)T, Z, X, b0 ? 1.0f : 0.0f, dU);
        }
        if (dinp) {
            // dV[x] (IC, T) = U[x]ᵀ (IC, OC) · Z[x] (OC, T), then back through the input transform.
            wino_products(1, 0, IC, (int)T, OC, U, Z, 0.0f, X);
            wino_input_adjoint(dinp + (size_t)b0 * IC * H * W, X, n, IC, H, W, th, tw, overwrite);
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

static void conv2d_backward_to(float *dinp, int overwrite, float *dweight, float *dbias, float *scratch,
                               const float *dout, const float *inp, const float *weight, int B, int IC, int H, int W,
                               int OC, int k, int stride, int pad) {
    const int OH = conv_out_size(H, k, stride, pad), OW = conv_out_size(W, k, stride, pad), K = IC * k * k;
    const size_t P = (size_t)OH * OW;
    const int nb = chunk_images(B, P, conv2d_image_floats(IC, OC, k, OH, OW));
    const int pointwise = k == 1 && stride == 1 && pad == 0;
    if (use_winograd(IC, OC, k, stride, pad)) {
        if (dinp || dweight)
            conv2d_backward_winograd(dinp, dweight, scratch, dout, inp, weight, B, IC, H, W, OC, overwrite);
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
            gemm_prec(1, 0, K, (int)N, OC, 1.0f, weight, K, g, (int)N, overwrite ? 0.0f : 1.0f, dx, (int)N);
        } else if (dx) {
            // dcols (K, N) = Wᵀ (K, OC) · g, then scattered back to the pixels they came from.
            gemm_prec(1, 0, K, (int)N, OC, 1.0f, weight, K, g, (int)N, 0.0f, scratch, (int)N);
            col2im_batch(dx, scratch, N, n, IC, H, W, k, stride, pad, OH, OW, overwrite);
        }
    }
    if (dbias) channel_sum_accumulate(dbias, dout, B, OC, P);
}

void conv2d_backward(float *dinp, float *dweight, float *dbias, float *scratch, const float *dout, const float *inp,
                     const float *weight, int B, int IC, int H, int W, int OC, int k, int stride, int pad) {
    conv2d_backward_to(dinp, 0, dweight, dbias, scratch, dout, inp, weight, B, IC, H, W, OC, k, stride, pad);
}

void conv2d_backward_set(float *dinp, float *dweight, float *dbias, float *scratch, const float *dout, const float *inp,
                         const float *weight, int B, int IC, int H, int W, int OC, int k, int stride, int pad) {
    conv2d_backward_to(dinp, 1, dweight, dbias, scratch, dout, inp, weight, B, IC, H, W, OC, k, stride, pad);
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

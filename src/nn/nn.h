// Neural-network layers of the Swin MAE, each a plain *_forward / *_backward pair on float
// buffers (llm.c style). Conventions:
//  - outputs first, then caches, then inputs and weights, then sizes;
//  - tokens are row-major (N, C) with C fastest; images are (B, C, H, W);
//  - weights are (out, in) as in PyTorch: y = x·Wᵀ + b;
//  - parameter gradients (dweight, dbias, dw, db) and input gradients (dinp) accumulate with
//    `+=` (callers zero them); nothing allocates except small per-thread scratch (row
//    reductions, attention tiles);
//  - reductions over rows (bias / LayerNorm gradients) are split into a fixed number of
//    per-thread parts added in thread order, so a run is reproducible for a given thread count.
// sgemm (OpenBLAS, single-threaded) is only ever called through gemm(), which splits the product
// over the OpenMP threads.
#ifndef ANOSWIN_NN_NN_H
#define ANOSWIN_NN_NN_H

#include <stddef.h>
#include <stdint.h>

// Sets the OpenMP thread count (n <= 0: leave it) and keeps OpenBLAS single-threaded.
void nn_set_threads(int n);
int nn_threads(void);
// Keeps OpenBLAS at one thread, for code that calls cblas_sgemm from every OpenMP thread.
void nn_blas_single_threaded(void);

// C (M, N) = alpha·op(A)·op(B) + beta·C, row-major, op = transpose when trans_* is non-zero:
// cblas_sgemm split over the OpenMP threads. Call it outside parallel regions.
void gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
          int ldb, float beta, float *C, int ldc);

// ---- bf16 mixed precision (gemm_bf16.c) ---------------------------------------------------------
// The same product with A and B rounded to bfloat16 (round to nearest even, as torch's
// .to(torch.bfloat16)) and fp32 accumulation, on AVX512-BF16; the fp32 gemm() on CPUs without
// it. Reproducible for a given thread count. Call it outside parallel regions.
void gemm_bf16(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
               int ldb, float beta, float *C, int ldc);
uint16_t bf16_from_float(float x);
float bf16_to_float(uint16_t h);
// Precision of the layers' big GEMMs (linear layers forward and backward, fused MLP); parameters,
// optimizer, norms, softmax and losses stay fp32 whatever it is. Process-wide, like the threads.
enum { NN_FP32 = 0, NN_BF16 = 1 };
int nn_bf16_supported(void);
// Which kernel gemm_bf16 runs: "amx-bf16" (tile multiply, where the CPU and OS allow it),
// "avx512-bf16" (vdpbf16ps) or "fp32 (no bf16 instructions)".
const char *nn_bf16_kernel(void);
// 0: never use AMX (tests run the vdpbf16ps kernel on an AMX CPU this way); 1: use it if there.
void nn_bf16_allow_amx(int on);
// Returns 0, or -1 with an error (bf16 on a CPU without AVX512-BF16; the precision stays).
int nn_set_precision(int p);
int nn_precision(void);
const char *nn_precision_name(int p);
// "fp32" / "bf16" -> NN_*; -1 with an error otherwise.
int nn_precision_parse(const char *s, int *p);
// gemm() or gemm_bf16() as nn_precision() says.
void gemm_prec(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
               int ldb, float beta, float *C, int ldc);

// ---- Linear ---------------------------------------------------------------------------------
// out (N, OC) = inp (N, IC) · weight (OC, IC)ᵀ + bias (OC); bias may be NULL.
void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int IC, int OC);
// dinp (N, IC) += dout·W (skipped when dinp is NULL); dweight (OC, IC) += doutᵀ·inp (skipped when
// NULL); dbias (OC) += column sums of dout (skipped when NULL).
void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int N, int IC, int OC);
// The MLP of a block, fused by row tiles: pre (N, hid) = x·W1ᵀ + b1 (kept for the backward),
// act (N, hid) = GELU(pre), y (N, C) = act·W2ᵀ (fc2's bias is left to the caller). Same math as
// linear_forward + gelu_forward + linear_forward; worth it where N is large and the weights are
// small (the high-resolution stages), since each weight is packed once per tile.
void mlp_forward(float *y, float *pre, float *act, const float *x, const float *w1, const float *b1, const float *w2,
                 int N, int C, int hid, int tile_rows);
// The MLP's backward from fc2's output gradient dy (N, C) to fc1's: dact (N, hid) =
// (dy·W2) ∘ dgelu, dgelu = GELU'(pre) from gelu_value_grad, overwritten (not accumulated), fused
// by row tiles as mlp_forward. Same values as linear_backward (input gradient only, into zeros)
// + gelu_backward in place, bit for bit.
void mlp_backward_act(float *dact, const float *dy, const float *w2, const float *dgelu, int N, int C, int hid,
                      int tile_rows);
// dst (C) += sum over rows of src (N, C), deterministic for a fixed thread count.
void colsum_accumulate(float *dst, const float *src, int N, int C);

// ---- LayerNorm (eps 1e-6) -------------------------------------------------------------------
#define NN_LN_EPS 1e-6f
// Row i of inp (N, C) is normalised into row r(i) of out, where r(i) = i when perm is NULL and
// r(i) = (i / L) * L + perm[i % L] otherwise (a per-image row permutation, used to fuse the
// cyclic shift + window partition into the norm). mean/rstd (N) are indexed by i; either may
// be NULL (inference).
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                       const int *perm, int L, int N, int C);
// dinp (N, C) += dL/dinp given dout (read at row r(i), see above). dw, db (C) +=.
void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *mean,
                        const float *rstd, const float *w, const int *perm, int L, int N, int C);

// ---- GELU (exact, erf) ----------------------------------------------------------------------
void gelu_forward(float *out, const float *inp, size_t n);
// act = GELU(x) and x_grad, which holds x on entry, becomes GELU'(x): one pass for the backward,
// which needs both (fc2's weight gradient, fc1's output gradient); each value bit for bit
// gelu_forward's and the factor gelu_backward multiplies by.
void gelu_value_grad(float *act, float *x_grad, size_t n);
// dinp += dout * gelu'(inp). dinp may equal dout (then it is overwritten: dinp = dout*gelu').
void gelu_backward(float *dinp, const float *dout, const float *inp, size_t n);
// The erf used by GELU: vectorisable rational approximation, |error| < 1e-6.
float nn_erf(float x);

// ---- Residual with optional row permutation and per-sample DropPath scale -------------------
// out[i] = x[i] + s_b * (y[r(i)] + bias), r as in layernorm_forward, s_b = scale[i / L] (1 when
// scale is NULL), bias (C) may be NULL. out may equal x.
void residual_forward(float *out, const float *x, const float *y, const float *bias, const float *scale,
                      const int *perm, int L, int N, int C);
// The gradient w.r.t. y: dy[r(i)] = s_b * dout[i] (written, not accumulated); dbias (C) += sum dy.
void residual_backward(float *dy, float *dbias, const float *dout, const float *scale, const int *perm, int L,
                       int N, int C);
// DropPath keep scales for B samples: 0 with probability rate, else 1/(1-rate). Seeded.
void droppath_scales(float *scale, int B, float rate, uint64_t seed, uint64_t stream);

// ---- Shifted windows --------------------------------------------------------------------------
// Geometry of one (resolution, window, shift) setting. perm maps a token (h*W + w) of one image
// to its row in window order after torch.roll(x, (-shift, -shift)) and window partition: the
// shifted position (h', w') = ((h - shift) mod H, (w - shift) mod W) lies in window
// (h'/ws)*(W/ws) + w'/ws at row (h' % ws)*ws + w' % ws. Window reverse + roll back is the same
// map read backwards. region (nW*T, only when shift > 0) labels each window-order row with the
// region of the reference's shifted-window mask (-100 between different regions).
typedef struct swin_geom {
    int H, W, ws, shift, T, nW;
    int *perm;    // (H*W)
    int *region;  // (H*W) or NULL when shift == 0
} swin_geom;
// Fails (as_fail) when H or W is not a multiple of ws.
int swin_geom_init(swin_geom *g, int H, int W, int ws, int shift);
void swin_geom_free(swin_geom *g);
// bias (heads, T, T) = table (K, heads)[index (T, T)], T = ws*ws.
void relpos_bias_forward(float *bias, const float *table, const int *index, int heads, int T);
// dtable (K, heads) += scatter of dbias (heads, T, T).
void relpos_bias_backward(float *dtable, const float *dbias, const int *index, int heads, int T);

// ---- Window attention --------------------------------------------------------------------------
// qkv (nwin*T, 3C): rows in window order, columns (3, heads, hd) as in the reference.
// out (nwin*T, C) columns (heads, hd) = softmax(q·scale·kᵀ + bias[h] + mask) · v, where
// mask = -100 between rows of different regions (region (nW*T) per window of an image; window w
// uses region[(w % nW)*T ..]; NULL: no mask). scale = hd^-0.5.
void window_attention_forward(float *out, const float *qkv, const float *bias, const int *region, int nwin,
                              int nW, int T, int C, int heads);
// dqkv (nwin*T, 3C) +=, dbias (heads, T, T) += given dout (nwin*T, C). Recomputes the softmax.
// Allocates a small per-thread buffer for dbias partial sums.
void window_attention_backward(float *dqkv, float *dbias, const float *dout, const float *qkv, const float *bias,
                               const int *region, int nwin, int nW, int T, int C, int heads);
// 0: head_dim-32 windows run the portable loops even where the CPU has AVX-512F (tests compare the
// two that way); 1 (default): the AVX-512 kernels where the CPU has them.
void nn_attention_allow_avx512(int on);

// ---- Patch embedding: Conv2d(IC -> OC, kernel p, stride p) as a GEMM --------------------------
// cols (B*Hp*Wp, IC*p*p) = im2col of img (B, IC, H, W), column order (ic, kh, kw) like the
// conv weight (OC, IC, p, p); Hp = H/p, Wp = W/p.
void patch_im2col(float *cols, const float *img, int B, int IC, int H, int W, int p);
// out (B*Hp*Wp, OC) = cols · weightᵀ + bias.
void patch_embed_forward(float *out, const float *cols, const float *weight, const float *bias, int N, int K,
                         int OC);
void patch_embed_backward(float *dweight, float *dbias, const float *dout, const float *cols, int N, int K, int OC);

// ---- Mask token substitution ------------------------------------------------------------------
// x (N, C): rows with mask[i] != 0 are replaced by token (C).
void mask_token_forward(float *x, const uint8_t *mask, const float *token, int N, int C);
// dtoken (C) += sum of dx over masked rows; those rows of dx are zeroed (nothing flows further).
void mask_token_backward(float *dtoken, float *dx, const uint8_t *mask, int N, int C);

// ---- Patch merging gather ----------------------------------------------------------------------
// out (B, H/2, W/2, 4C) = concat(x[0::2,0::2], x[1::2,0::2], x[0::2,1::2], x[1::2,1::2]) of
// inp (B, H, W, C) (rows, cols), as in the reference. (LN(4C) and Linear(4C->2C) follow.)
void merge_gather_forward(float *out, const float *inp, int B, int H, int W, int C);
// dinp (B, H, W, C) += scatter of dout (B, H/2, W/2, 4C).
void merge_gather_backward(float *dinp, const float *dout, int B, int H, int W, int C);

// ---- Patch expanding regroup --------------------------------------------------------------------
// out (B, 2H, 2W, C4) from inp (B, H, W, 4*C4): `B H W (p1 p2 c) -> B (H p1) (W p2) c`.
void expand_regroup_forward(float *out, const float *inp, int B, int H, int W, int C4);
// dinp (B, H, W, 4*C4) += regroup⁻¹ of dout (B, 2H, 2W, C4).
void expand_regroup_backward(float *dinp, const float *dout, int B, int H, int W, int C4);

// ---- Masked MSE loss ---------------------------------------------------------------------------
// target (B*L, p*p*C) from img (B, C, H, W): target[h*Wp+w][(i*p+j)*C+c] = img[c][p*h+i][p*w+j].
void patchify(float *target, const float *img, int B, int C, int H, int W, int p);
// The inverse: img (B, C, H, W) from pred (B*L, p*p*C).
void unpatchify(float *img, const float *pred, int B, int C, int H, int W, int p);
// loss = sum_t mask_t * mean_k (pred-target)^2 / sum_t mask_t (0 when nothing is masked).
float masked_mse_forward(const float *pred, const float *target, const uint8_t *mask, int N, int K);
// dpred (N, K) += dloss * d loss / d pred.
void masked_mse_backward(float *dpred, const float *pred, const float *target, const uint8_t *mask, int N, int K,
                         float dloss);

// ---- Convolutional layers (the VAE and f-AnoGAN baselines) ------------------------------------
// Images are (B, C, H, W), channels planar as in PyTorch. Zero padding on every side.

// Output side of a convolution: (n + 2*pad - k) / stride + 1.
static inline int conv_out_size(int n, int k, int stride, int pad) { return (n + 2 * pad - k) / stride + 1; }
// Output side of a transposed convolution: (n - 1)*stride - 2*pad + k + out_pad.
static inline int convt_out_size(int n, int k, int stride, int pad, int out_pad) {
    return (n - 1) * stride - 2 * pad + k + out_pad;
}
// cols (C*k*k, OH*OW) of one image img (C, H, W): row (c, kh, kw) like a weight (OC, C, k, k),
// column oh*OW + ow holds img[c][oh*stride - pad + kh][ow*stride - pad + kw] (0 outside).
void conv_im2col(float *cols, const float *img, int C, int H, int W, int k, int stride, int pad, int OH, int OW);
// The adjoint: img (C, H, W) += the columns scattered back (overlapping windows add).
void conv_col2im(float *img, const float *cols, int C, int H, int W, int k, int stride, int pad, int OH, int OW);
// Floats of scratch the conv2d / conv_transpose2d calls below need for batches of up to B images
// (the columns and the channel-major output of a chunk of them).
size_t conv2d_scratch_floats(int B, int IC, int OC, int k, int OH, int OW);
size_t conv_transpose2d_scratch_floats(int B, int IC, int OC, int k, int H, int W);

// out (B, OC, OH, OW) = Conv2d(inp (B, IC, H, W)), weight (OC, IC, k, k), bias (OC) or NULL;
// OH, OW from conv_out_size. cols: conv2d_scratch_floats.
void conv2d_forward(float *out, float *cols, const float *inp, const float *weight, const float *bias, int B, int IC,
                    int H, int W, int OC, int k, int stride, int pad);
// dinp (B, IC, H, W) +=, dweight (OC, IC, k, k) +=, dbias (OC) += given dout (B, OC, OH, OW);
// any of the three may be NULL. cols: as forward (its content is not kept).
void conv2d_backward(float *dinp, float *dweight, float *dbias, float *cols, const float *dout, const float *inp,
                     const float *weight, int B, int IC, int H, int W, int OC, int k, int stride, int pad);
// The same with dinp = instead of += (a work buffer need not be zeroed first; dweight, dbias +=).
void conv2d_backward_set(float *dinp, float *dweight, float *dbias, float *cols, const float *dout, const float *inp,
                         const float *weight, int B, int IC, int H, int W, int OC, int k, int stride, int pad);

// out (B, OC, OH, OW) = ConvTranspose2d(inp (B, IC, H, W)), weight (IC, OC, k, k) as in PyTorch,
// bias (OC) or NULL; OH, OW from convt_out_size. It is conv2d's input gradient: every input pixel
// spreads weight[ic] over a k x k window of the output. cols: conv_transpose2d_scratch_floats.
void conv_transpose2d_forward(float *out, float *cols, const float *inp, const float *weight, const float *bias, int B,
                              int IC, int H, int W, int OC, int k, int stride, int pad, int out_pad);
void conv_transpose2d_backward(float *dinp, float *dweight, float *dbias, float *cols, const float *dout,
                               const float *inp, const float *weight, int B, int IC, int H, int W, int OC, int k,
                               int stride, int pad, int out_pad);
// dst (C) += per-channel sums of src (B, C, P), each channel summed by one thread in a fixed order.
void channel_sum_accumulate(float *dst, const float *src, int B, int C, size_t P);

// ---- BatchNorm2d (eps 1e-5) -------------------------------------------------------------------
#define NN_BN_EPS 1e-5f
// inp, out (B, C, P) with P = H*W. training: normalise with the batch statistics (biased variance),
// write them to mean/rstd (C), and when running_mean/var are given update them as PyTorch does:
// r = (1 - momentum)*r + momentum*batch, the variance unbiased (n/(n-1)). Eval: normalise with the
// running statistics, written to mean/rstd for the backward. out may equal inp only in eval mode.
void batchnorm2d_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                         float *running_mean, float *running_var, int B, int C, size_t P, float momentum,
                         int training);
// dinp (B, C, P) +=, dw, db (C) += given dout; mean/rstd from the forward, training as there (eval:
// the statistics are constants, so dinp = dout*w*rstd).
void batchnorm2d_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *mean,
                          const float *rstd, const float *w, int B, int C, size_t P, int training);

// ---- Pointwise activations ----------------------------------------------------------------------
// out = x > 0 ? x : slope*x (slope 0: ReLU). out may equal inp.
void leaky_relu_forward(float *out, const float *inp, size_t n, float slope);
// dinp += dout * (out > 0 ? 1 : slope), from the forward's output (its sign is the input's for
// slope >= 0, so an in-place forward is fine). dinp may equal dout (then overwritten).
void leaky_relu_backward(float *dinp, const float *dout, const float *out, size_t n, float slope);
void sigmoid_forward(float *out, const float *inp, size_t n);
// dinp += dout * out*(1-out). dinp may equal dout (then overwritten).
void sigmoid_backward(float *dinp, const float *dout, const float *out, size_t n);
void tanh_forward(float *out, const float *inp, size_t n);
// dinp += dout * (1 - out^2). dinp may equal dout (then overwritten).
void tanh_backward(float *dinp, const float *dout, const float *out, size_t n);

// ---- Reconstruction losses and the VAE's latent terms ---------------------------------------------
// scale * sum |pred - target| (computed in double); scale = 1/n gives PyTorch's mean reduction.
float l1_loss_forward(const float *pred, const float *target, size_t n, float scale);
// dpred += scale * sign(pred - target), sign(0) = 0 as torch.sign.
void l1_loss_backward(float *dpred, const float *pred, const float *target, size_t n, float scale);
// scale * sum (pred - target)^2.
float mse_loss_forward(const float *pred, const float *target, size_t n, float scale);
void mse_loss_backward(float *dpred, const float *pred, const float *target, size_t n, float scale);
// Reparameterisation with a log standard deviation: sigma = exp(log_sigma), z = mu + eps*sigma;
// eps ~ N(0, 1) is an input so that a test can fix it. sigma is kept for the backward.
void vae_sample_forward(float *z, float *sigma, const float *mu, const float *log_sigma, const float *eps, size_t n);
// dmu += dz, dlog_sigma += dz * eps*sigma.
void vae_sample_backward(float *dmu, float *dlog_sigma, const float *dz, const float *eps, const float *sigma,
                         size_t n);
// scale * KL(N(mu, sigma^2) || N(0, 1)) summed = scale * 0.5*sum(mu^2 + sigma^2 - 2 log_sigma - 1).
float vae_kl_forward(const float *mu, const float *log_sigma, size_t n, float scale);
// dmu += scale*mu, dlog_sigma += scale*(sigma^2 - 1).
void vae_kl_backward(float *dmu, float *dlog_sigma, const float *mu, const float *log_sigma, size_t n, float scale);

// ---- Diffusion U-Net layers (the autoDDPM baseline) ------------------------------------------------
// GroupNorm over (B, C, P): G groups of C/G consecutive channels, biased variance, eps as given
// (the U-Net's 1e-6), per-channel affine w, b. mean/rstd (B*G) are kept for the backward (either
// may be NULL for inference).
void groupnorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b, int B,
                       int C, size_t P, int G, float eps);
// dinp (B, C, P) += (skipped when NULL), dw, db (C) += (either may be NULL) given dout.
void groupnorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *mean,
                        const float *rstd, const float *w, int B, int C, size_t P, int G);
// SiLU: out = x * sigmoid(x). out may equal inp.
void silu_forward(float *out, const float *inp, size_t n);
// dinp += dout * silu'(inp), from the forward's input. dinp may equal dout (then overwritten).
void silu_backward(float *dinp, const float *dout, const float *inp, size_t n);
// Nearest-neighbour 2x upsampling: out (B, C, 2H, 2W) from inp (B, C, H, W).
void upsample2x_forward(float *out, const float *inp, int B, int C, int H, int W);
// dinp (B, C, H, W) += the 2x2 sums of dout (B, C, 2H, 2W).
void upsample2x_backward(float *dinp, const float *dout, int B, int C, int H, int W);
// Sinusoidal timestep embedding (Ho et al.; MONAI's get_timestep_embedding): out (B, dim) =
// [cos(t f_i), sin(t f_i)], f_i = exp(-ln(10000) i / (dim/2)), i < dim/2, a 0 last when dim is odd.
void timestep_embedding(float *out, const float *t, int B, int dim);
// (B, C, P) -> (B, P, C) tokens, and back (accumulate: out +=).
void channels_last(float *out, const float *inp, int B, int C, int P);
void channels_first(float *out, const float *inp, int B, int C, int P, int accumulate);
// Full multi-head self-attention over T tokens per image: qkv (B*T, 3C) columns (3, heads, hd) as
// the window attention's, out (B*T, C) = softmax(q kᵀ / sqrt(hd)) v, no bias or mask. The scratch
// (full_attention_scratch_floats) holds one (image, head)'s T x T scores; the products run through
// gemm(), so call these outside parallel regions. probs: NULL, or B*heads*T*T floats where the
// forward keeps every softmax for the backward, which otherwise recomputes them (in training that
// product and softmax were about 30% of the backward's time at T = 1024).
size_t full_attention_scratch_floats(int T);
void full_attention_forward(float *out, float *scratch, float *probs, const float *qkv, int B, int T, int C,
                            int heads);
// dqkv (B*T, 3C) += given dout (B*T, C), with the forward's probs (or NULL: recomputed).
void full_attention_backward(float *dqkv, float *scratch, const float *probs, const float *dout, const float *qkv,
                             int B, int T, int C, int heads);

#endif

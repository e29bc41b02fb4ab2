// Layers only the f-AnoGAN baseline needs (the ResNet generator / critic / encoder of Gulrajani et
// al.'s WGAN-GP code, which Schlegl et al. 2019 build on), in nn.h's conventions: images
// (B, C, H, W), outputs first, parameter and input gradients accumulate with `+=`.
//
// The critic's gradient penalty needs the gradient of an input gradient: each critic layer also
// has a tangent (forward-mode) pass and a "dual" backward that differentiates both the primal and
// the tangent stream (reverse over forward mode). Conv2d, mean pooling and ReLU are linear or
// piecewise linear, so their dual passes are their ordinary passes applied to both streams; the
// per-sample LayerNorm is the one layer with second-order terms, and it has them here.
#ifndef ANOSWIN_NN_GAN_H
#define ANOSWIN_NN_GAN_H

#include <stddef.h>

// ---- 2x2 mean pooling, nearest-neighbour 2x upsampling (on N = B*C planes) --------------------
// out (N, H/2, W/2) = mean of each 2x2 block of inp (N, H, W); H, W even.
void mean_pool2_forward(float *out, const float *inp, int N, int H, int W);
// dinp (N, H, W) += dout (N, H/2, W/2) / 4 spread over each block.
void mean_pool2_backward(float *dinp, const float *dout, int N, int H, int W);
// out (N, 2H, 2W): every pixel of inp (N, H, W) repeated 2x2 (TF's concat x4 + depth_to_space).
void upsample2_forward(float *out, const float *inp, int N, int H, int W);
// dinp (N, H, W) += sum of each 2x2 block of dout (N, 2H, 2W).
void upsample2_backward(float *dinp, const float *dout, int N, int H, int W);

// ---- Per-sample LayerNorm over (C, H, W) with a per-channel affine (eps 1e-5) ----------------
// tflib's Layernorm(name, [1, 2, 3], x): mean and (biased) variance over all C*P values of a
// sample, then out = w[c] * x̂ + b[c]. The WGAN-GP critic's normaliser: the penalty is per sample,
// so the critic may not mix samples the way BatchNorm does.
#define NN_LN2D_EPS 1e-5f
// inp, out (B, C, P); mean, rstd (B) are written for the backward passes. out may not equal inp.
void layernorm2d_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                         int B, int C, size_t P);
// dinp (B, C, P) +=, dw, db (C) += given dout. dw/db may be NULL.
void layernorm2d_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *mean,
                          const float *rstd, const float *w, int B, int C, size_t P);
// Tangent: out_t = J inp_t, the directional derivative of the forward at inp along inp_t:
// w[c] * rstd * (ȧ - mean(ȧ) - x̂ mean(x̂ ȧ)) per sample. Written, not accumulated.
void layernorm2d_tangent(float *out_t, const float *inp_t, const float *inp, const float *mean, const float *rstd,
                         const float *w, int B, int C, size_t P);
// Reverse of (forward, tangent): given the adjoints dout of out and dout_t of out_t,
// dinp +=, dinp_t +=, dw += (both streams), db += (the primal's). The tangent's dependence on inp
// (through x̂ and rstd) is the second-order part that reaches dinp.
void layernorm2d_dual_backward(float *dinp, float *dinp_t, float *dw, float *db, const float *dout,
                               const float *dout_t, const float *inp, const float *inp_t, const float *mean,
                               const float *rstd, const float *w, int B, int C, size_t P);

// ---- Gradient penalty ---------------------------------------------------------------------------
// WGAN-GP's lambda * mean_b (||g_b|| - 1)^2 of the input gradients g (B, n), and its gradient
// dg (B, n) (written) with respect to g. Sums in double, serially.
float gradient_penalty_forward(float *dg, const float *g, int B, size_t n, float lambda);

#endif

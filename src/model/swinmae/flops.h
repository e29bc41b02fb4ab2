// Exact FLOP count of the Swin MAE's matrix products (Linear layers, the patch-embedding conv,
// the two attention products) from the config; one multiply-add = 2 FLOPs. Element-wise work
// (LayerNorm, softmax, GELU, bias, residuals, the loss) is left out: it is < 1% of the total and
// not what a GEMM peak measures. At the paper config the forward pass is ~10.9 GFLOP per image.
#ifndef ANOSWIN_MODEL_SWINMAE_FLOPS_H
#define ANOSWIN_MODEL_SWINMAE_FLOPS_H

#include "model/swinmae/config.h"

// Forward FLOPs per image.
double swinmae_flops_forward(const swinmae_config *cfg);
// One training step per image: forward + backward (every product needs a gradient for both
// operands, 2x the forward, except the patch-embedding conv whose input is the image).
double swinmae_flops_train(const swinmae_config *cfg);

#endif

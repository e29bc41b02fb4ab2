// The parameter-table entries of PyTorch's common layers, named and initialised as torch.nn builds
// them, for the methods whose tables are made of plain layers (the VAE and f-AnoGAN baselines).
#ifndef ANOSWIN_MODEL_PARAM_LAYERS_H
#define ANOSWIN_MODEL_PARAM_LAYERS_H

#include "model/params.h"  // param_table
#include "nn/swin_block.h"  // swin_block_weights

// prefix.weight (out, in, k, k), or (in, out, k, k) when transposed, and prefix.bias (out) when
// bias: nn.Conv2d / nn.ConvTranspose2d with their default initialisation.
void param_add_conv(param_table *t, const char *prefix, int in, int out, int k, int transposed, int bias);
// prefix.weight (out, in), prefix.bias (out): nn.Linear.
void param_add_dense(param_table *t, const char *prefix, int in, int out);
// nn.BatchNorm2d(C): weight, bias, then the running statistics (not trainable) and
// num_batches_tracked (an I64 counter).
void param_add_bn(param_table *t, const char *prefix, int C);
// prefix.weight = 1, prefix.bias = 0, (C) each: a per-channel affine (a LayerNorm's).
void param_add_affine(param_table *t, const char *prefix, int C);

// Views of one transformer block's tensors in buf (the parameters or their gradients; NULL: all
// NULL): prefix.norm1, .attn.qkv, .attn.proj, .norm2, .mlp.fc1, .mlp.fc2 (weight and bias each),
// and prefix.attn.relative_position_bias_table where the table has one (else NULL: no bias).
void param_block_views(swin_block_weights *w, const param_table *t, float *buf, const char *prefix);

#endif

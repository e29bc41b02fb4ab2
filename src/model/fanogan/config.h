// f-AnoGAN baseline configuration (Schlegl et al. 2019, the authors' code tSchlegl/f-AnoGAN:
// wgangp_64x64.py and z_encoding_izif.py, which build on Gulrajani et al.'s ResNet WGAN-GP;
// docs/baselines.md says what anoswin keeps and changes).
//
// Channels ch(i) = dim * min(8, 2^i), i = 0..n, n = log2(img_size / 4) (64 px: dim, 2, 4, 8, 8 dim).
// Generator: Linear(z_dim -> 16 ch(n)) viewed (ch(n), 4, 4); n up-blocks ch(n-j) -> ch(n-j-1):
//   shortcut Conv1x1(Upsample(x)); main BN, ReLU, Upsample, Conv3x3 (no bias), BN, ReLU, Conv3x3;
//   then BN, ReLU, Conv3x3 to in_chans, tanh. Images in [-1, 1].
// Critic: Conv3x3(in_chans -> ch(0)); n down-blocks ch(i) -> ch(i+1): shortcut Conv1x1(MeanPool(x));
//   main LN, ReLU, Conv3x3 (no bias), LN, ReLU, Conv3x3, MeanPool; the features f = flatten
//   (16 ch(n)); Linear(-> 1). LN is the per-sample LayerNorm of nn/gan.h (no batch coupling).
// Encoder: the critic's layout with BatchNorm and a Linear(16 ch(n) -> z_dim) output.
// Training (recipe keys, the authors' values): stage 1 WGAN-GP, n_critic critic steps per generator
// step, penalty weight gp_lambda; stage 2 izi_f with G and the critic frozen,
// loss = MSE(x, G(E(x))) + kappa * MSE(f(x), f(G(E(x)))).
#ifndef ANOSWIN_MODEL_FANOGAN_CONFIG_H
#define ANOSWIN_MODEL_FANOGAN_CONFIG_H

#include <stddef.h>

#define FANOGAN_MAX_BLOCKS 8

typedef struct fanogan_config {
    int img_size, in_chans;
    int patch_size;  // only the token grid of the interface's masks (f-AnoGAN reads no mask)
    int dim, z_dim;
    // Recipe.
    int n_critic;
    float gp_lambda, kappa;
    float lr, beta1, beta2;  // Adam of stage 1 (critic and generator alike)
    float enc_lr;            // RMSProp of stage 2 (TF1's: decay 0.9, epsilon 1e-10, slot from 1)
    float gan_frac;          // share of the training steps spent in stage 1; stage 2 takes the rest
} fanogan_config;

void fanogan_config_default(fanogan_config *c);
int fanogan_config_check(const fanogan_config *c);  // -1 with "config: ..." when invalid
// Parses JSON or "key=value,..." on top of *c, then checks; errors name `what`.
int fanogan_config_parse(fanogan_config *c, const char *text, const char *what);
int fanogan_config_to_json(const fanogan_config *c, char *out, size_t n);
void fanogan_config_describe(const fanogan_config *c, char *out, size_t n);

int fanogan_blocks(const fanogan_config *c);     // n
int fanogan_ch(const fanogan_config *c, int i);  // ch(i), i = 0..n
static inline int fanogan_feat(const fanogan_config *c) { return 16 * fanogan_ch(c, fanogan_blocks(c)); }

#endif

// VAE baseline configuration (Baur et al. 2021, the comparative study's dense VAE as its authors'
// code builds it; docs/baselines.md says which variant and why).
//
// Encoder: n = log2(img_size / res) blocks of Conv2d(k x k, stride 2, padding k/2) + BatchNorm2d +
// LeakyReLU(slope), channels min(max_ch, base_ch * 2^i). Bottleneck: Conv2d 1x1 to C/8 channels,
// flatten (res*res*C/8), Linear to mu and to log sigma (z_dim each), z = mu + eps*sigma,
// Linear back, Conv2d 1x1 to C. Decoder: BatchNorm2d + ReLU, n blocks of ConvTranspose2d(k x k,
// stride 2, padding k/2, output padding 1) + BatchNorm2d + LeakyReLU with channels
// max(base_ch, max_ch / 2^i), and a final Conv2d 1x1 to in_chans (no activation).
// Training: dropout (rate `dropout`) on mu, log sigma and the dense decoder output; loss =
// mean over the batch of (per-image sum of |x - x̂| (rec_loss l1) or (x - x̂)^2 (l2)) + beta * KL.
#ifndef ANOSWIN_MODEL_VAE_CONFIG_H
#define ANOSWIN_MODEL_VAE_CONFIG_H

#include <stddef.h>

#define VAE_MAX_BLOCKS 8

typedef struct vae_config {
    int img_size, in_chans;
    int patch_size;  // only the token grid of the interface's masks (the VAE reads no mask)
    int res;         // side of the bottleneck feature map
    int z_dim, base_ch, max_ch, kernel;
    float slope, dropout, beta;
    int rec_l2;  // 0: L1 reconstruction loss (the authors'), 1: squared error
} vae_config;

void vae_config_default(vae_config *c);
int vae_config_check(const vae_config *c);  // -1 with "config: ..." when invalid
// Parses JSON or "key=value,..." on top of *c, then checks; errors name `what`.
int vae_config_parse(vae_config *c, const char *text, const char *what);
int vae_config_to_json(const vae_config *c, char *out, size_t n);
void vae_config_describe(const vae_config *c, char *out, size_t n);

// Derived sizes.
int vae_blocks(const vae_config *c);                  // n
int vae_enc_ch(const vae_config *c, int i);           // output channels of encoder block i
int vae_dec_ch(const vae_config *c, int i);           // output channels of decoder block i
static inline int vae_bottleneck_ch(const vae_config *c) { return vae_enc_ch(c, vae_blocks(c) - 1) / 8; }
static inline int vae_flat(const vae_config *c) { return c->res * c->res * vae_bottleneck_ch(c); }

#endif

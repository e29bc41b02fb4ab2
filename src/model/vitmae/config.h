// ViT masked autoencoder configuration (He et al. 2022, facebookresearch/mae models_mae.py).
//
// Encoder: Conv2d(in_chans -> embed_dim, k = s = patch_size), fixed 2-D sin-cos position
// embedding (a zero row for the cls token), the visible tokens and the cls token through `depth`
// pre-norm blocks (LayerNorm eps 1e-6, global multi-head attention with qkv bias, MLP with
// mlp_ratio * dim hidden units and exact GELU), LayerNorm. Decoder: Linear to decoder_embed_dim,
// the mask token at the hidden places, its own sin-cos embedding, decoder_depth blocks,
// LayerNorm, Linear to p*p*in_chans. Loss: MSE over the hidden patches, against the per-patch
// normalised pixels when norm_pix_loss is 1.
//
// Which tokens are hidden is not part of the model: the trainer's masks (--mask-ratio,
// --mask-size) and detection's sliding windows decide, as for the Swin MAE.
//
// Named configs (the key `preset`, applied where it appears, so later keys override it):
// demo (the default), vit-b16 and vit-l16 (mae_vit_{base,large}_patch16_dec512d8b at 224 px).
#ifndef ANOSWIN_MODEL_VITMAE_CONFIG_H
#define ANOSWIN_MODEL_VITMAE_CONFIG_H

#include <stddef.h>

#define VITMAE_MAX_TOKENS 4096  // patches per image: global attention holds T x T scores per head

typedef struct vitmae_config {
    int img_size, in_chans, patch_size;
    int embed_dim, depth, num_heads;
    int decoder_embed_dim, decoder_depth, decoder_num_heads;
    int mlp_ratio;
    int norm_pix_loss;
} vitmae_config;

void vitmae_config_default(vitmae_config *c);
// The named config (demo, vit-b16, vit-l16) into *c: 0, or -1 for an unknown name.
int vitmae_config_preset(vitmae_config *c, const char *name);
int vitmae_config_check(const vitmae_config *c);  // -1 with "config: ..." when invalid
// Parses JSON or "key=value,..." on top of *c, then checks; errors name `what`.
int vitmae_config_parse(vitmae_config *c, const char *text, const char *what);
int vitmae_config_to_json(const vitmae_config *c, char *out, size_t n);
void vitmae_config_describe(const vitmae_config *c, char *out, size_t n);

static inline int vitmae_grid(const vitmae_config *c) { return c->img_size / c->patch_size; }
static inline int vitmae_tokens(const vitmae_config *c) { return vitmae_grid(c) * vitmae_grid(c); }
static inline int vitmae_patch_dim(const vitmae_config *c) { return c->patch_size * c->patch_size * c->in_chans; }

#endif

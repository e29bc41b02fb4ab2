// Swin MAE model configuration: the few numbers that determine every tensor shape.
// The defaults are the paper's (the reference code's `swin_mae()`): 224 px, patch 4, 3 channels,
// C = 96, depths (2,2,2,2), heads (3,6,12,24), window 7, MLP ratio 4, DropPath 0.1.
//
// Derived quantities (all follow the reference module tree):
//   grid G = img_size / patch_size tokens per side (56); stage i (i = 0..3) runs at
//   resolution G / 2^i with dim C * 2^i and heads num_heads[i]. The decoder starts with
//   `first_patch_expanding` (8C -> 16C linear, regrouped to 2H x 2W x 4C, LN(4C)), then
//   `layers_up.u` for u = 0,1,2 runs depths[2-u] blocks at dim C*2^(2-u) with num_heads[2-u]
//   (u = 0,1 end with a patch expansion to half the dim), then LN(C) and a Linear C -> p*p*in.
//   The reference's `decoder_embed_dim` is therefore always 8C.
#ifndef ANOSWIN_MODEL_CONFIG_H
#define ANOSWIN_MODEL_CONFIG_H

#include <stddef.h>

#define SWINMAE_STAGES 4

typedef struct swinmae_config {
    int img_size, patch_size, in_chans, embed_dim;
    int depths[SWINMAE_STAGES], num_heads[SWINMAE_STAGES];
    int window, mlp_ratio;
    float drop_path_rate;
} swinmae_config;

void swinmae_config_default(swinmae_config *cfg);
// 0 when the config builds a valid model; otherwise -1 with an error "config: <rule broken>"
// (e.g. img_size must be a multiple of patch_size*window*8 so that the 7x7 stage tiles).
int swinmae_config_check(const swinmae_config *cfg);
int swinmae_config_equal(const swinmae_config *a, const swinmae_config *b);

// Derived sizes.
static inline int swinmae_grid(const swinmae_config *c) { return c->img_size / c->patch_size; }
static inline int swinmae_num_tokens(const swinmae_config *c) { return swinmae_grid(c) * swinmae_grid(c); }
static inline int swinmae_stage_dim(const swinmae_config *c, int i) { return c->embed_dim << i; }
static inline int swinmae_stage_res(const swinmae_config *c, int i) { return swinmae_grid(c) >> i; }
static inline int swinmae_patch_dim(const swinmae_config *c) { return c->patch_size * c->patch_size * c->in_chans; }
// DropPath rate of encoder block j of stage i: linspace(0, rate, sum(depths)) (float32 like
// torch.linspace); decoder stage k reuses the rates of encoder stage k.
float swinmae_drop_path(const swinmae_config *c, int stage, int block);

// Compact JSON, e.g. {"img_size":224,...,"depths":[2,2,2,2],...,"drop_path_rate":0.1};
// stored in checkpoints' __metadata__ under "anoswin.config". Returns 0, or -1 if n is too small.
int swinmae_config_to_json(const swinmae_config *cfg, char *out, size_t n);
// Parses either that JSON or a "key=value,..." override list ("img_size=96,embed_dim=48,
// depths=[2,2,2,2]" or "depths=2/2/2/2") ON TOP of the values already in *cfg (start from
// swinmae_config_default). Unknown keys and bad numbers are errors naming `what` (a file name
// or "--config"). The result is validated with swinmae_config_check.
int swinmae_config_parse(swinmae_config *cfg, const char *text, const char *what);
// One line "img 224 patch 4 in 3 C 96 depths 2,2,2,2 heads 3,6,12,24 window 7 mlp 4 dpr 0.1".
void swinmae_config_describe(const swinmae_config *cfg, char *out, size_t n);

#endif

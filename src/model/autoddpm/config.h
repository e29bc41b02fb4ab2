// autoDDPM baseline configuration (Bercea et al., "Mask, Stitch, and Re-Sample", 2023; the
// authors' ci-ber/autoDDPM: projects/autoddpm/autoddpm.yaml, model_zoo/ddpm.py and its copy of
// MONAI generative's DiffusionModelUNet in net_utils/diffusion_unet.py).
//
// U-Net: conv_in 3x3 to ch[0]; `levels` down levels of res_blocks ResnetBlocks (GroupNorm, SiLU,
// 3x3 conv, + Linear(SiLU(temb)), GroupNorm, SiLU, 3x3 conv, 1x1 skip conv when the channels
// change), each followed by a self-attention block where attn[i], and a stride-2 3x3 conv between
// levels; a middle of ResnetBlock, attention, ResnetBlock; `levels` up levels of res_blocks + 1
// ResnetBlocks on the concatenation with the skips (+ attention where attn[i]), nearest 2x + 3x3
// conv between levels; GroupNorm, SiLU, 3x3 conv out. Time embedding: sinusoidal(ch[0]) ->
// Linear(4 ch[0]) -> SiLU -> Linear(4 ch[0]). Attention heads: ch / head_ch (at least 1).
//
// Diffusion: linear betas beta_start..beta_end over `timesteps` steps, epsilon prediction, MSE.
// autoDDPM inference: noise to t_recon and denoise (DDPM ancestral steps), mask from the residual
// (threshold, or each image's 95th percentile when threshold < 0), dilate 3x3, stitch and re-sample
// from t_inpaint with `resample` rounds per step; the map is the final residual times the first.
#ifndef ANOSWIN_MODEL_AUTODDPM_CONFIG_H
#define ANOSWIN_MODEL_AUTODDPM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define DDPM_MAX_LEVELS 6

enum { DDPM_SAMPLER_DDPM = 0, DDPM_SAMPLER_DDIM = 1 };

typedef struct ddpm_config {
    int img_size, in_chans;
    int patch_size;  // only the token grid of the interface's masks (the method reads no mask)
    int levels, ch[DDPM_MAX_LEVELS], attn[DDPM_MAX_LEVELS];
    int res_blocks, head_ch, groups;
    int timesteps;
    float beta_start, beta_end;
    // Inference (autoDDPM): noise levels, resampling rounds, mask threshold, sampling seed.
    int t_recon, t_inpaint, resample;
    float threshold;
    uint64_t seed;
    // The sampler of inference: DDPM ancestral steps (the yaml's), or DDIM (eta 0) stepping
    // timesteps / inference_steps training steps at a time, as the authors' DDIMScheduler.
    int sampler;  // DDPM_SAMPLER_*
    int inference_steps;
} ddpm_config;

void ddpm_config_default(ddpm_config *c);
int ddpm_config_check(const ddpm_config *c);  // -1 with "config: ..." when invalid
// Parses JSON or "key=value,..." on top of *c, then checks; errors name `what`. Lists
// (channels, attention) are written "128-256-256" and "0-1-1".
int ddpm_config_parse(ddpm_config *c, const char *text, const char *what);
int ddpm_config_to_json(const ddpm_config *c, char *out, size_t n);
void ddpm_config_describe(const ddpm_config *c, char *out, size_t n);
// The sampler's timesteps from `level` down to 0 (DDPM: every step; DDIM: level, level - r, ...
// while >= 1, then 0, r = timesteps / inference_steps, as the authors' get_timesteps) into ts
// (level + 2 entries at most). Returns their count.
int ddpm_sampler_timesteps(const ddpm_config *c, int level, int *ts);
// Training steps one sampler step spans (1 for DDPM).
static inline int ddpm_sampler_stride(const ddpm_config *c) {
    return c->sampler == DDPM_SAMPLER_DDIM ? c->timesteps / c->inference_steps : 1;
}
// Floats in one image (in_chans, img_size, img_size).
static inline size_t ddpm_img_floats(const ddpm_config *c) { return (size_t)c->in_chans * c->img_size * c->img_size; }
// Attention heads at a level's channel count.
static inline int ddpm_heads(const ddpm_config *c, int ch) { return ch / c->head_ch > 0 ? ch / c->head_ch : 1; }

#endif

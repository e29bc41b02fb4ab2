// The autoDDPM diffusion U-Net (see config.h): table, buffers, forward and backward. Parameter
// names are the authors' DDPM module's state_dict ("unet." + MONAI generative's
// DiffusionModelUNet names, as tools/autoddpm_ref.py builds them), so checkpoints load there with
// strict=True and back.
//
// The network runs as a tape of steps (conv_in, res blocks, attention, down/up sampling, skip
// concatenations, the output head), each reading earlier activations and writing its own; the
// backward walks the tape in reverse. As in the authors' copy of the U-Net, the attention blocks'
// proj_attn Linear is a parameter that the forward never applies (docs/baselines.md).
#ifndef ANOSWIN_MODEL_AUTODDPM_UNET_H
#define ANOSWIN_MODEL_AUTODDPM_UNET_H

#include "model/autoddpm/config.h"  // ddpm_config
#include "model/params.h"           // param_table

typedef struct unet_act {
    float *x, *d;  // (B, C, side, side) value and gradient (d NULL for inference)
    int C, side;
} unet_act;

typedef struct unet_step {
    int kind;
    char name[PARAM_NAME_MAX];  // parameter prefix
    int in, in2, out;           // activations (in2: the skip of a concatenation)
    int cin, cout, side;        // input channels, output channels, input side
    // Kept for the backward (by kind): GroupNorm outputs and statistics, the time projection,
    // the upsampled map, the attention's q, k, v; in training also the SiLU of n1 and n2 (the
    // convolutions' inputs; inference runs them from a work buffer) and the attention's softmax.
    float *n1, *n2, *c1, *m1, *r1, *m2, *r2, *temb, *up, *qkv, *a1, *a2, *probs;
} unet_step;

typedef struct unet {
    ddpm_config cfg;
    param_table table;
    float *params, *grads;  // grads NULL for inference
    int max_batch, training;
    unet_step *steps;
    int n_steps, n_acts;
    unet_act *acts;  // acts[0]: the input image
    // Time embedding: sinusoid (B, ch0), first Linear (B, 4ch0), SiLU of it, emb, SiLU(emb).
    float *t_sin, *t_e1, *t_s1, *t_emb, *t_semb, *d_semb, *d_emb, *d_s1;
    // Shared scratch: convolution columns, two activation-sized work buffers, tokens, packed
    // q/k/v weights and their gradients, the attention's score matrices.
    float *cols, *w1, *w2, *w3, *tok, *wqkv, *bqkv, *dwqkv, *dbqkv, *att_scratch;
    float *arena;
} unet;

int unet_table_build(param_table *t, const ddpm_config *c);
int unet_create(unet *u, const ddpm_config *c, int max_batch, int training);
void unet_free(unet *u);
// eps (B, in_chans, S, S) = U-Net(x (B, in_chans, S, S), t (B) timesteps). B <= max_batch.
// Returns the output (inside the model; valid until the next forward).
const float *unet_forward(unet *u, const float *x, const float *t, int B);
// grads += d/d params of sum(d_out · eps) for the last forward (training models only).
void unet_backward(unet *u, const float *d_out, int B);

#endif

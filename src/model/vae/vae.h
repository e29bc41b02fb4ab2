// The VAE baseline's state and its forward / backward passes (the model interface wrapper is
// method.c). Parameter names follow tools/vae_ref.py's PyTorch module, so checkpoints load there
// with strict=True and back; BatchNorm running statistics live in the parameter buffer as
// non-trainable tensors (AdamW skips them) and are updated by every training forward.
#ifndef ANOSWIN_MODEL_VAE_VAE_H
#define ANOSWIN_MODEL_VAE_VAE_H

#include "model/params.h"      // param_table
#include "model/vae/config.h"  // vae_config

typedef struct vae_bn {
    float *mean, *rstd;  // (C): the statistics the forward normalised with
} vae_bn;

typedef struct vae {
    vae_config cfg;
    param_table table;
    float *params, *grads;  // grads NULL for inference
    int max_batch, n;       // n: encoder (and decoder) blocks
    float rec, kl;          // the last forward's loss terms (batch means; kl before beta)
    // Activations, all (B, C, H, W) or (B, features), sized for max_batch:
    float *enc_pre[VAE_MAX_BLOCKS], *enc_act[VAE_MAX_BLOCKS];  // conv output; BN + LeakyReLU output
    vae_bn enc_bn[VAE_MAX_BLOCKS];
    float *h;                                  // 1x1 conv to C/8 (B, F) in NCHW order
    float *mu_pre, *ls_pre, *mu, *ls, *sigma, *z;  // (B, z_dim); mu/ls after dropout
    float *dense, *dense_drop;                 // (B, F) before and after dropout
    float *g;                                  // 1x1 conv back to C (B, C, res, res)
    float *dec_in;                             // ReLU(BN(g))
    vae_bn dec_bn0;
    float *dec_pre[VAE_MAX_BLOCKS], *dec_act[VAE_MAX_BLOCKS];
    vae_bn dec_bn[VAE_MAX_BLOCKS];
    float *out;                                // (B, in_chans, H, W)
    const float *eps, *drop[3];                // the last training forward's noise and dropout scales
    float *cols;                               // im2col scratch
    // Gradients of the activations (training only), same shapes.
    float *d_enc_pre[VAE_MAX_BLOCKS], *d_enc_act[VAE_MAX_BLOCKS], *d_h, *d_mu, *d_ls, *d_mu_pre, *d_ls_pre, *d_z;
    float *d_dense, *d_g, *d_dec_in, *d_dec_pre[VAE_MAX_BLOCKS], *d_dec_act[VAE_MAX_BLOCKS], *d_out;
    float *arena;
} vae;

// Builds the parameter table of a (checked) config: state_dict names and order of tools/vae_ref.py.
int vae_table_build(param_table *t, const vae_config *c);
int vae_create(vae *v, const vae_config *c, int max_batch, int training);
void vae_free(vae *v);

// One forward of B <= max_batch images (B, in_chans, H, W) into v->out; returns the loss
// mean_b(rec_b + beta*KL_b). training: BatchNorm with batch statistics (and the running update),
// eps (B, z_dim) the reparameterisation noise; drop[0..2] the dropout scales (0 or 1/(1-p)) of
// mu, log sigma (B, z_dim) and the dense decoder output (B, F), or drop NULL for none. Not
// training: running statistics, z = mu, no dropout (eps and drop are ignored).
float vae_forward(vae *v, const float *images, const float *eps, const float *const *drop, int B, int training);
// grads += d loss / d params of the last training forward (images as given there).
void vae_backward(vae *v, const float *images, int B);

#endif

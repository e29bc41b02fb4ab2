// The ViT MAE's state and its forward / backward passes (the model interface wrapper is
// method.c). Parameter names and order follow tools/vitmae_ref.py (models_mae.py's state_dict),
// so checkpoints load there with strict=True and back; the two position embeddings are frozen
// tensors in the parameter buffer (not trainable, AdamW skips them).
//
// Rows. The encoder holds, per image b, its cls token and then its visible tokens in grid order:
// 1 + n_b rows, images one after another (Ne rows). Images with the same n_b next to each other
// form a group that runs through a block as one batch; the rest run one group at a time, since
// global attention needs the same length within a call. The decoder holds L + 1 rows per image
// (cls, then every token in grid order: Nd = B (L + 1) rows).
#ifndef ANOSWIN_MODEL_VITMAE_VITMAE_H
#define ANOSWIN_MODEL_VITMAE_VITMAE_H

#include <stddef.h>
#include <stdint.h>

#include "model/params.h"         // param_table
#include "model/vitmae/config.h"  // vitmae_config

struct vitmae_plan;  // views into params, grads and the activation arena (vitmae.c)

typedef struct vitmae {
    vitmae_config cfg;
    param_table table;
    float *params, *grads;  // grads NULL for inference
    int max_batch, training;
    int batch;   // B of the last forward (0 before any)
    float loss;  // of the last forward
    struct vitmae_plan *plan;
    float *arena;
} vitmae;

// Builds the parameter table of a (checked) config.
int vitmae_table_build(param_table *t, const vitmae_config *c);
int vitmae_create(vitmae *m, const vitmae_config *c, int max_batch, int training);
void vitmae_free(vitmae *m);
// Fresh parameters as models_mae.py initialises them (xavier Linear layers, N(0, 0.02) tokens,
// sin-cos position embeddings), a pure function of the seed.
void vitmae_init(vitmae *m, uint64_t seed);

// images (B, in_chans, H, W); token_mask (B, L), 1 = hidden. Returns the MSE over the hidden
// patches (0 when none is hidden). B <= max_batch.
float vitmae_forward(vitmae *m, const float *images, const uint8_t *token_mask, int B);
// The encoder only: afterwards vitmae_latent_mean gives each image's mean encoder output.
void vitmae_encode(vitmae *m, const float *images, const uint8_t *token_mask, int B);
// out (B, embed_dim): the mean over each image's visible tokens (cls excluded) of the encoder's
// normalised output of the last forward or encode (models_mae.py's global pool).
void vitmae_latent_mean(const vitmae *m, float *out);
// After a forward on a training model: grads += d loss / d params. Once per forward: it spends
// the forward's cache (the blocks' fc1 becomes GELU'(fc1)).
void vitmae_backward(vitmae *m);
// The last forward's prediction as images (B, in_chans, H, W); with norm_pix_loss the per-patch
// normalisation is undone with the input patch's own mean and deviation (the authors' display).
void vitmae_pixels(const vitmae *m, float *out);
// The last forward's prediction (B, L, p*p*in_chans) in the reference's (p, q, c) layout.
void vitmae_pred(const vitmae *m, float *out);

#endif

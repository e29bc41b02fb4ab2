// The Swin MAE model: forward (masked MSE loss), backward, and the activation arena.
//
// Parameters live in ONE float buffer laid out by the param table (state_dict order); every
// layer reads them through pointer views computed once at create. Activations live in one
// arena sized once for (config, max_batch): in training mode it holds what backward needs
// (block inputs, qkv, MLP pre-activations, LayerNorm statistics, ...) and recomputes the cheap
// rest (LayerNorm outputs, GELU, attention probabilities and outputs); in inference mode blocks
// run in place on one buffer per stage and share a single scratch area.
//
// Tensors: images (B, in_chans, H, W) in [0,1]; tokens (B, Hs, Ws, Cs) row-major; pred
// (B, L, p*p*in_chans) in the reference's (p, q, c) layout.
#ifndef ANOSWIN_MODEL_SWIN_MAE_H
#define ANOSWIN_MODEL_SWIN_MAE_H

#include <stddef.h>
#include <stdint.h>

#include "model/swinmae/config.h"
#include "model/params.h"

struct swinmae_plan;  // per-layer views into params, grads and the arena (swin_mae.c)

typedef struct swinmae {
    swinmae_config cfg;
    param_table table;
    float *params;  // table.n_floats, zero after create: params_init or load a checkpoint
    float *grads;   // table.n_floats, NULL if inference-only
    int max_batch;
    int training;   // 1: grads + backward cache allocated
    // activation arena
    float *arena;
    size_t arena_floats;
    uint8_t *mask;  // (max_batch, L) copy of the last forward's token mask
    int batch;      // B of the last forward (0 before any)
    float loss;     // loss of the last forward
    struct swinmae_plan *plan;
} swinmae;

// Returns 0, or -1 with an error (invalid config, max_batch < 1).
int swinmae_create(swinmae *m, const swinmae_config *cfg, int max_batch, int training);
void swinmae_free(swinmae *m);
// Bytes of the activation arena for (cfg, max_batch, training), without creating the model.
size_t swinmae_arena_bytes(const swinmae_config *cfg, int max_batch, int training);

// images (B, in_chans, H, W) in [0,1]; token_mask (B, L) uint8, 1 = masked
// (L = (H/p)*(W/p)); returns the masked MSE (0 if none masked). drop_path: 1 applies DropPath
// with the config's rates (per-sample draws from drop_seed), 0 = eval. B <= max_batch.
// Under nn_precision() bf16 a model created for inference runs its decoder's tail (last patch
// expansion, last stage, prediction head) in fp32, a training model none (swin_mae.c).
float swinmae_forward(swinmae *m, const float *images, const uint8_t *token_mask, int B, int drop_path,
                      uint64_t drop_seed);
// Inference shortcut for the sliding-mask anomaly map, which reads the prediction at the masked
// tokens only (eval mode; a model created for inference): the same loss, and the same
// prediction at the masked tokens, as swinmae_forward; the last decoder stage runs only the
// windows those tokens depend on, and the prediction at other tokens is left undefined. On a
// training model it is swinmae_forward without DropPath.
float swinmae_forward_masked(swinmae *m, const float *images, const uint8_t *token_mask, int B);
// The encoder only (eval mode): afterwards swinmae_stage_output(m, 3) holds the bottleneck
// (B, G/8, G/8, 8C) of images under token_mask; the decoder does not run.
void swinmae_encode(swinmae *m, const float *images, const uint8_t *token_mask, int B);
void swinmae_zero_grad(swinmae *m);
// After a forward on a training model: grads += d loss / d params. Once per forward: it spends
// the forward's cache (the blocks' fc1 becomes GELU'(fc1)).
void swinmae_backward(swinmae *m);
// Prediction of the last forward, (B, L, p*p*C).
const float *swinmae_pred(const swinmae *m);
// pixel[c][p*h+i][p*w+j] = pred[h*W+w][(i*p+j)*C+c]; images (B, in_chans, H, W).
void swinmae_unpatchify(const swinmae_config *c, const float *pred, float *images, int B);
// Output of encoder stage 0..3 of the last forward (before patch merging), (B, Hs, Ws, Cs).
const float *swinmae_stage_output(const swinmae *m, int stage);

#endif

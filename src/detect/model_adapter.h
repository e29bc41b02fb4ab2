// The Swin MAE behind amap_slice's model callback (anomaly_map.h): eval mode (no DropPath),
// batches split to the model's max_batch, predictions unpatchified to (B, C, H, W). The grey
// slice reaches the model as in_chans copies (amap_slice repeats it; 3 for the paper's model).
//
// Optionally the adapter also assembles the "reconstruction" detect writes: for every scored
// window, the model's prediction (mean over channels) of the pixels of the masked tokens, i.e.
// what the model puts under each window when that window is hidden; pixels outside every scored
// window keep the input (nothing was predicted there).
#ifndef ANOSWIN_DETECT_MODEL_ADAPTER_H
#define ANOSWIN_DETECT_MODEL_ADAPTER_H

#include <stdint.h>

#include "detect/anomaly_map.h"
#include "model/swinmae/swin_mae.h"

typedef struct amap_model_ctx {
    swinmae *model;     // created with max_batch >= 1, inference mode is enough
    float *composite;   // (H, W) or NULL: receives the masked-window predictions (see above)
    long forwards;      // images run through the model so far (statistics)
} amap_model_ctx;

// amap_model_fn for ctx = amap_model_ctx*.
int amap_model_swinmae(void *ctx, float *recon, const float *images, const uint8_t *token_mask, int B);

// amap_params for this model: patch from its config, max_batch = the model's max_batch.
void amap_params_for_model(amap_params *p, const swinmae *m);

// Refuses (-1, as_fail naming `what`, e.g. the checkpoint path) a model that cannot score grey
// slices of side `size` with `window` px masks: in_chans other than 1 or 3, img_size != size, or a
// window that is not a multiple of the patch or larger than the image.
int amap_check_model(const swinmae_config *cfg, int size, int window, const char *what);

// Reads a checkpoint's config, creates an inference model for batches of up to max_batch and
// loads the weights strictly. Errors name the file.
int amap_load_model(swinmae *m, const char *checkpoint, int max_batch);

#endif

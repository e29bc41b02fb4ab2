// A model (model/model.h) behind amap_slice's model callback (anomaly_map.h): the method's
// detection reconstruction, batches split to the model's max_batch, images (B, C, H, W). The grey
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
#include "model/model.h"

typedef struct amap_model_ctx {
    model *model;       // created with max_batch >= 1, inference mode is enough
    float *composite;   // (H, W) or NULL: receives the masked-window predictions (see above)
    long forwards;      // images run through the model so far (statistics)
} amap_model_ctx;

// amap_model_fn for ctx = amap_model_ctx*.
int amap_model_run(void *ctx, float *recon, const float *images, const uint8_t *token_mask, int B);

// amap_params for this model: its patch, max_batch = the model's max_batch.
void amap_params_for_model(amap_params *p, const model *m);

// Refuses (-1, as_fail naming `what`, e.g. the checkpoint path) a model that cannot score grey
// slices of side `size` with `window` px masks: in_chans other than 1 or 3, img_size != size, or a
// window that is not a multiple of the patch or larger than the image.
int amap_check_model(const model *m, int size, int window, const char *what);

#endif

// One interface for every anomaly-detection method (Swin MAE today; VAE, f-AnoGAN, ViT MAE,
// autoDDPM to come): a small table of functions each method fills in its own folder
// (src/model/<method>/), and a registry that finds a method by the type tag its checkpoints
// carry. Training, detection, evaluation and the CLI talk to a `model` through this table only,
// so a new method touches its folder, one registry line and its tests.
//
// Checkpoints name their method in the metadata key "anoswin.method"; a file without it (written
// before the tag existed, or converted from PyTorch) is a Swin MAE.
#ifndef ANOSWIN_MODEL_MODEL_H
#define ANOSWIN_MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "io/safetensors.h"  // st_file, st_kv
#include "model/params.h"    // param_table

typedef struct model_method model_method;

typedef struct model {
    const model_method *method;
    void *impl;                 // the method's own state
    const param_table *table;   // (name, shape) of every parameter: safetensors I/O, AdamW, counts
    float *params;              // table->n_floats
    float *grads;               // table->n_floats; NULL for inference
    int img_size, in_chans;     // input images (B, in_chans, img_size, img_size) in [0, 1]
    int patch_size;             // token side in px: masks for detection come in whole tokens
    int max_batch;
} model;

struct model_method {
    const char *name;  // the type tag ("swinmae")
    // From the method's config JSON (NULL: the default config). training: gradients and what
    // backward needs are allocated. Errors name `what`.
    int (*create)(model *m, const char *config_json, int max_batch, int training, const char *what);
    void (*free)(model *m);
    int (*config_to_json)(const model *m, char *out, size_t n);
    // The config JSON of an open checkpoint of this method (inferred from tensor shapes where the
    // file has no config metadata). Errors name the file.
    int (*checkpoint_config)(const st_file *f, char *out, size_t n);
    // One training batch: forward, loss, and grads += d loss / d params. token_mask (B, L) uint8,
    // 1 = hidden (methods that do not mask ignore it); drop_seed seeds the method's stochastic
    // regularisation, applied when drop_path is 1. Returns the loss.
    float (*train_batch)(model *m, const float *images, const uint8_t *token_mask, int B, int drop_path,
                         uint64_t drop_seed);
    // Detection: the reconstruction out (B, in_chans, H, W) of images whose tokens under
    // token_mask are hidden (or noised); valid at the hidden tokens at least. Returns the loss
    // there. B <= max_batch.
    float (*reconstruct)(model *m, float *out, const float *images, const uint8_t *token_mask, int B);
    // FLOPs per image of a forward pass (training = 0) or a training step (1).
    double (*flops_per_image)(const model *m, int training);
};

// The method of a tag, or NULL.
const model_method *model_method_find(const char *name);
// The method of an open checkpoint: its "anoswin.method" tag, the Swin MAE when untagged; NULL
// with a message naming the file for an unknown tag.
const model_method *model_method_of_checkpoint(const st_file *f);

// Creates a model of the named method (errors name `what`).
int model_create(model *m, const char *method, const char *config_json, int max_batch, int training,
                 const char *what);
void model_free(model *m);
// Reads a checkpoint's method and config, creates an inference model for batches of up to
// max_batch and loads the weights strictly. Errors name the file.
int model_load(model *m, const char *checkpoint, int max_batch);
// Writes the parameters (loadable strictly in PyTorch) with the method tag, the config and
// `extra` metadata (may be NULL / 0).
int model_save(const model *m, const char *path, const st_kv *extra, int n_extra);

#endif
